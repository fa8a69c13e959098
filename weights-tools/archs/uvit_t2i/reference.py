"""U-ViT text-to-image (baofff/U-ViT libs/uvit_t2i.py) in PyTorch, state_dict keys = official
checkpoint keys.

Tokens [time (raw sinusoidal features of width D, or their MLP), context_embed(context) (Linear
clip_dim -> D with bias, one token per text token), patches] + one learned position table over
all 1 + num_clip_token + L tokens; U-ViT's in-blocks, mid-block and out-blocks with long skips;
LN -> decoder_pred -> drop the first 1 + num_clip_token tokens -> unpatchify -> optional 3x3 conv.
"""

import torch
import torch.nn as nn

from archs.uvit.reference import UViTTrunk
from archs.uvit_t2i.checkpoint import PRESETS, make_config  # noqa: F401  (PRESETS re-exported)


class UViTT2I(UViTTrunk):
    PRESETS = PRESETS

    def __init__(self, img_size=32, patch_size=2, in_chans=4, embed_dim=512, depth=12, num_heads=8,
                 mlp_ratio=4.0, mlp_time_embed=False, clip_dim=768, num_clip_token=77, conv=True):
        super().__init__(img_size, patch_size, in_chans, embed_dim, depth, num_heads, mlp_ratio, mlp_time_embed,
                         1 + num_clip_token, conv, {"context_embed": nn.Linear(clip_dim, embed_dim)})
        self.config = make_config(img_size, patch_size, in_chans, embed_dim, depth, num_heads, mlp_ratio,
                                  mlp_time_embed, clip_dim, num_clip_token, conv)
        self.initialize_weights()

    def forward(self, x, t, context):
        """x (B, C, H, W), t (B,) timesteps (may be fractional), context (B, num_clip_token,
        clip_dim) text-encoder states -> (B, C, H, W)."""
        context = self.context_embed(context.to(self.pos_embed.dtype))
        return self.run(torch.cat([self.time_token(t), context], dim=1), x)
