"""In-context transformer LDM (Chahal, arXiv 2212.14678) in PyTorch, with ditrt's choices
(docs/models/tldm.md): DiT's embedders and key names, the time and class embeddings (and, with
`context_dim`, a text context's tokens through `context_embedder`) as extra tokens [time, class,
context..., patches] of one sequence through plain pre-LN blocks (no cross-attention, no adaLN),
LN -> linear on the patch tokens -> unpatchify.
The forward pass runs in the dtype of the parameters.
"""

import torch
import torch.nn as nn

from archs.dit.reference import LabelEmbedder, TimestepEmbedder
from archs.tldm.checkpoint import PRESETS, make_config  # noqa: F401  (PRESETS re-exported)
from reference.common import PatchEmbed, PreNormBlock, sincos_2d, unpatchify

LN_EPS = 1e-6  # DiT's


class FinalLayer(nn.Module):
    """Affine LN -> Linear(D, p*p*out_channels) per token."""

    def __init__(self, dim, p, out_channels):
        super().__init__()
        self.norm_final = nn.LayerNorm(dim, eps=LN_EPS)
        self.linear = nn.Linear(dim, p * p * out_channels)

    def forward(self, x):
        return self.linear(self.norm_final(x))


class TLDM(nn.Module):
    def __init__(self, input_size=32, patch_size=2, in_channels=4, hidden_size=1152, depth=28,
                 num_heads=16, mlp_ratio=4.0, num_classes=1000, learn_sigma=True, context_dim=None):
        super().__init__()
        self.config = make_config(input_size, patch_size, in_channels, hidden_size, depth,
                                  num_heads, mlp_ratio, num_classes, learn_sigma, context_dim)
        self.patch_size = patch_size
        self.out_channels = 2 * in_channels if learn_sigma else in_channels
        grid = input_size // patch_size
        # Fixed 2-D sin-cos positions of the patch tokens only (the condition tokens get none).
        self.pos_embed = nn.Parameter(torch.zeros(1, grid * grid, hidden_size), requires_grad=False)
        self.x_embedder = PatchEmbed(in_channels, hidden_size, patch_size)
        self.t_embedder = TimestepEmbedder(hidden_size)
        self.y_embedder = LabelEmbedder(num_classes, hidden_size)
        self.context_embedder = nn.Linear(context_dim, hidden_size) if context_dim is not None else None
        self.blocks = nn.ModuleList(
            PreNormBlock(hidden_size, num_heads, mlp_ratio, qkv_bias=True, gelu_approx="tanh", eps=LN_EPS)
            for _ in range(depth))
        self.final_layer = FinalLayer(hidden_size, patch_size, self.out_channels)
        self.initialize_weights()

    @classmethod
    def from_config(cls, cfg):
        return cls(**{k: v for k, v in cfg.items() if k != "arch"})

    @classmethod
    def from_preset(cls, name, **kwargs):
        """e.g. TLDM.from_preset("TLDM-XL/2", input_size=32)."""
        return cls(**PRESETS[name], **kwargs)

    def initialize_weights(self):
        """DiT-style training init (xavier linears, sin-cos positions, N(0, 0.02) embedders, zero
        output layer). Fixtures overwrite all of it with random values."""
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)
        grid = int(self.pos_embed.shape[1] ** 0.5)
        self.pos_embed.data.copy_(sincos_2d(self.pos_embed.shape[-1], grid)[None])
        w = self.x_embedder.proj.weight
        nn.init.xavier_uniform_(w.data.view(w.shape[0], -1))
        nn.init.zeros_(self.x_embedder.proj.bias)
        nn.init.normal_(self.y_embedder.embedding_table.weight, std=0.02)
        nn.init.normal_(self.t_embedder.mlp[0].weight, std=0.02)
        nn.init.normal_(self.t_embedder.mlp[2].weight, std=0.02)
        nn.init.zeros_(self.final_layer.linear.weight)
        nn.init.zeros_(self.final_layer.linear.bias)

    def forward(self, x, t, y, context=None):
        """x (B, C, H, W), t (B,) real timesteps, y (B,) labels (num_classes = null), context
        (B, 77, context_dim) with `context_dim` -> (B, out_channels, H, W)."""
        dtype = self.pos_embed.dtype
        x = self.x_embedder(x.to(dtype)) + self.pos_embed
        cond = torch.stack([self.t_embedder(t.to(dtype)), self.y_embedder(y)], dim=1)  # [time, class]
        if self.context_embedder is not None:
            cond = torch.cat([cond, self.context_embedder(context.to(dtype))], dim=1)  # [time, class, context...]
        x = torch.cat([cond, x], dim=1)
        for block in self.blocks:
            x = block(x)
        x = self.final_layer(x)[:, cond.shape[1]:]
        return unpatchify(x, self.patch_size, self.out_channels)
