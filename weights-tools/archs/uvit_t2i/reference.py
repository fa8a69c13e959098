"""U-ViT text-to-image (baofff/U-ViT libs/uvit_t2i.py) in PyTorch, state_dict keys = official
checkpoint keys.

Tokens [time (raw sinusoidal features of width D, or their MLP), context_embed(context) (Linear
clip_dim -> D with bias, one token per text token), patches] + one learned position table over
all 1 + num_clip_token + L tokens; U-ViT's in-blocks, mid-block and out-blocks with long skips;
LN -> decoder_pred -> drop the first 1 + num_clip_token tokens -> unpatchify -> optional 3x3 conv.
"""

import torch
import torch.nn as nn

from archs.uvit.reference import LN_EPS, Block
from archs.uvit_t2i.checkpoint import PRESETS, make_config  # noqa: F401  (PRESETS re-exported)
from reference.common import PatchEmbed, timestep_features, unpatchify


class UViTT2I(nn.Module):
    def __init__(self, img_size=32, patch_size=2, in_chans=4, embed_dim=512, depth=12, num_heads=8,
                 mlp_ratio=4.0, mlp_time_embed=False, clip_dim=768, num_clip_token=77, conv=True):
        super().__init__()
        self.config = make_config(img_size, patch_size, in_chans, embed_dim, depth, num_heads, mlp_ratio,
                                  mlp_time_embed, clip_dim, num_clip_token, conv)
        self.embed_dim, self.in_chans, self.patch_size = embed_dim, in_chans, patch_size
        self.patch_embed = PatchEmbed(in_chans, embed_dim, patch_size)
        self.time_embed = nn.Sequential(nn.Linear(embed_dim, 4 * embed_dim), nn.SiLU(),
                                        nn.Linear(4 * embed_dim, embed_dim)) if mlp_time_embed else nn.Identity()
        self.context_embed = nn.Linear(clip_dim, embed_dim)
        self.extras = 1 + num_clip_token
        patches = (img_size // patch_size) ** 2
        self.pos_embed = nn.Parameter(torch.zeros(1, self.extras + patches, embed_dim))
        self.in_blocks = nn.ModuleList(Block(embed_dim, num_heads, mlp_ratio) for _ in range(depth // 2))
        self.mid_block = Block(embed_dim, num_heads, mlp_ratio)
        self.out_blocks = nn.ModuleList(Block(embed_dim, num_heads, mlp_ratio, skip=True) for _ in range(depth // 2))
        self.norm = nn.LayerNorm(embed_dim, eps=LN_EPS)
        self.decoder_pred = nn.Linear(embed_dim, patch_size ** 2 * in_chans)
        self.final_layer = nn.Conv2d(in_chans, in_chans, 3, padding=1) if conv else nn.Identity()
        self.initialize_weights()

    @classmethod
    def from_config(cls, cfg):
        return cls(**{k: v for k, v in cfg.items() if k != "arch"})

    @classmethod
    def from_preset(cls, name):
        """e.g. UViTT2I.from_preset("U-ViT-S/2-MSCOCO")."""
        return cls.from_config(PRESETS[name])

    def initialize_weights(self):
        """Training init of the official code (truncated normal 0.02 for linears and positions,
        unit LayerNorms). Fixtures overwrite all of it with random values."""
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.LayerNorm):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x, t, context):
        """x (B, C, H, W), t (B,) timesteps (may be fractional), context (B, num_clip_token,
        clip_dim) text-encoder states -> (B, C, H, W)."""
        dtype = self.pos_embed.dtype
        x = self.patch_embed(x.to(dtype))
        time = self.time_embed(timestep_features(t.to(dtype), self.embed_dim))
        x = torch.cat([time[:, None], self.context_embed(context.to(dtype)), x], dim=1) + self.pos_embed
        skips = []
        for block in self.in_blocks:
            x = block(x)
            skips.append(x)
        x = self.mid_block(x)
        for block in self.out_blocks:
            x = block(x, skips.pop())
        x = self.decoder_pred(self.norm(x))[:, self.extras:]
        return self.final_layer(unpatchify(x, self.patch_size, self.in_chans))
