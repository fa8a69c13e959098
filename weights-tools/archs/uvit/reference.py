"""U-ViT (Bao et al., arXiv 2209.12152) in PyTorch, state_dict keys = official checkpoint keys.

Tokens [label (if conditional), time, patches] + a learned position table; depth//2 in-blocks
whose outputs are stacked, a mid-block, depth//2 out-blocks that each start with
skip_linear(cat[x, pop()]) (last in, first out); LN -> decoder_pred -> drop the extra tokens ->
unpatchify -> optional 3x3 conv. The forward pass runs in the dtype of the parameters.
"""

import torch
import torch.nn as nn

from archs.uvit.checkpoint import PRESETS, make_config  # noqa: F401  (PRESETS re-exported)
from reference.common import PatchEmbed, PreNormBlock, timestep_features, unpatchify

LN_EPS = 1e-5  # nn.LayerNorm's default, kept by the official blocks


class Block(PreNormBlock):
    """Pre-LN block without qkv bias, exact GELU; an out-block's `skip_linear` (registered
    last, as in the official state_dict) first maps cat[x, skip] from 2D back to D."""

    def __init__(self, dim, num_heads, mlp_ratio, skip=False):
        super().__init__(dim, num_heads, mlp_ratio, qkv_bias=False, gelu_approx="none", eps=LN_EPS)
        self.skip_linear = nn.Linear(2 * dim, dim) if skip else None

    def forward(self, x, skip=None):
        if self.skip_linear is not None:
            x = self.skip_linear(torch.cat([x, skip], dim=-1))
        return super().forward(x)


class UViTTrunk(nn.Module):
    """What U-ViT's class-conditional and text-to-image models share: the patch embedding, the
    time token (raw timestep features of width D, through Linear-SiLU-Linear only if asked), one
    learned position table over the `extras` leading tokens and the patches, the in/mid/out
    blocks with long skips, and the head (LN -> decoder_pred -> drop the extra tokens ->
    unpatchify -> optional 3x3 conv). Subclasses give their extra tokens' embeddings
    (`embeddings`, registered after time_embed: the official state_dict order) and `PRESETS`."""

    def __init__(self, img_size, patch_size, in_chans, embed_dim, depth, num_heads, mlp_ratio, mlp_time_embed, extras, conv,
                 embeddings):
        super().__init__()
        self.embed_dim, self.in_chans, self.patch_size, self.extras = embed_dim, in_chans, patch_size, extras
        self.patch_embed = PatchEmbed(in_chans, embed_dim, patch_size)
        self.time_embed = nn.Sequential(nn.Linear(embed_dim, 4 * embed_dim), nn.SiLU(),
                                        nn.Linear(4 * embed_dim, embed_dim)) if mlp_time_embed else nn.Identity()
        for name, module in embeddings.items():
            setattr(self, name, module)
        patches = (img_size // patch_size) ** 2
        self.pos_embed = nn.Parameter(torch.zeros(1, extras + patches, embed_dim))
        self.in_blocks = nn.ModuleList(Block(embed_dim, num_heads, mlp_ratio) for _ in range(depth // 2))
        self.mid_block = Block(embed_dim, num_heads, mlp_ratio)
        self.out_blocks = nn.ModuleList(Block(embed_dim, num_heads, mlp_ratio, skip=True) for _ in range(depth // 2))
        self.norm = nn.LayerNorm(embed_dim, eps=LN_EPS)
        self.decoder_pred = nn.Linear(embed_dim, patch_size ** 2 * in_chans)
        self.final_layer = nn.Conv2d(in_chans, in_chans, 3, padding=1) if conv else nn.Identity()

    @classmethod
    def from_config(cls, cfg):
        return cls(**{k: v for k, v in cfg.items() if k != "arch"})

    @classmethod
    def from_preset(cls, name):
        """e.g. UViT.from_preset("U-ViT-H/2-ImageNet256")."""
        return cls.from_config(cls.PRESETS[name])

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

    def time_token(self, t):
        """(B, 1, D): the time token of timesteps t (B,), which may be fractional."""
        return self.time_embed(timestep_features(t.to(self.pos_embed.dtype), self.embed_dim))[:, None]

    def run(self, extra, x):
        """The image (B, C, H, W) from the extra tokens (B, extras, D) and the image x."""
        x = torch.cat([extra, self.patch_embed(x.to(self.pos_embed.dtype))], dim=1) + self.pos_embed
        skips = []
        for block in self.in_blocks:
            x = block(x)
            skips.append(x)
        x = self.mid_block(x)
        for block in self.out_blocks:
            x = block(x, skips.pop())
        x = self.decoder_pred(self.norm(x))[:, self.extras:]
        return self.final_layer(unpatchify(x, self.patch_size, self.in_chans))


class UViT(UViTTrunk):
    PRESETS = PRESETS

    def __init__(self, img_size=32, patch_size=2, in_chans=4, embed_dim=1152, depth=28, num_heads=16,
                 mlp_ratio=4.0, mlp_time_embed=False, num_classes=1000, null_class=True, conv=False):
        label_emb = nn.Embedding(num_classes + int(null_class), embed_dim) if num_classes > 0 else None
        super().__init__(img_size, patch_size, in_chans, embed_dim, depth, num_heads, mlp_ratio, mlp_time_embed,
                         2 if num_classes > 0 else 1, conv, {"label_emb": label_emb})
        self.config = make_config(img_size, patch_size, in_chans, embed_dim, depth, num_heads, mlp_ratio,
                                  mlp_time_embed, num_classes, null_class, conv)
        self.initialize_weights()

    def forward(self, x, t, y=None):
        """x (B, C, H, W), t (B,) timesteps (may be fractional), y (B,) labels or None -> (B, C, H, W)."""
        extra = [self.time_token(t)]
        if self.label_emb is not None:
            extra.insert(0, self.label_emb(y)[:, None])
        return self.run(torch.cat(extra, dim=1), x)
