"""The reference: transformers' own CLIPTextModel (eager attention), returning
`last_hidden_state`, with parameter names = the stored keys (`text_model.*`)."""

from torch import nn


class CLIPTextReference(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        from transformers import CLIPTextConfig, CLIPTextModel

        config = CLIPTextConfig(vocab_size=cfg["vocab_size"], hidden_size=cfg["width"],
                                intermediate_size=cfg["intermediate"], num_hidden_layers=cfg["layers"],
                                num_attention_heads=cfg["heads"], max_position_embeddings=cfg["max_positions"],
                                hidden_act=cfg["act"], layer_norm_eps=cfg["eps"],
                                bos_token_id=cfg["vocab_size"] - 2, eos_token_id=cfg["vocab_size"] - 1,
                                attn_implementation="eager")
        model = CLIPTextModel(config)
        # transformers 4 nests the transformer as `text_model`; 5 names its parameters without it.
        self.text_model = getattr(model, "text_model", model)

    @classmethod
    def from_config(cls, cfg):
        return cls(cfg)

    def forward(self, input_ids):
        return self.text_model(input_ids=input_ids).last_hidden_state
