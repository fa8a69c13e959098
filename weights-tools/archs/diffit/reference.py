"""Latent DiffiT (Hatamizadeh et al., arXiv 2312.02139) in PyTorch, state_dict keys = the keys of
NVlabs/DiffiT's released checkpoint (diffit/diffit.py).

c = t_emb + y_emb (DiT's embedders) feeds every block's TMSA; no adaLN. Block:
x += Attn(LN(x), c); x += MLP(LN(x)), LN without affine (eps 1e-6), tanh GELU. TMSA:
qkv = Linear(LN(x)) + Linear_t(c) per sample, logits + a per-head Swin relative position bias whose
window is the whole patch grid. Final: Linear(SiLU(LN(x))) -> p*p*out_channels, unpatchify.
The forward pass runs in the dtype of the parameters (float64 for the fixtures).
"""

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from archs.diffit.checkpoint import PRESETS, make_config, relative_position_index  # noqa: F401  (PRESETS re-exported)
from archs.dit.reference import LabelEmbedder, TimestepEmbedder
from reference.common import Mlp, PatchEmbed, layer_norm, sincos_2d, unpatchify


class TMSA(nn.Module):
    """Time-dependent multi-head self-attention over windows of window^2 tokens (diffit.py
    DiffiTAttention): q, k, v = x W_s + b_s + (c W_t + b_t); logits = q k^T / sqrt(d_head) + B,
    B[h, i, j] = table[index[i, j], h]. x is (windows, window^2, dim), c (windows, temb_dim).

    The index is a buffer; the official checkpoint stores it (`persistent_index`), ditrt
    recomputes it."""

    def __init__(self, dim, temb_dim, num_heads, window, persistent_index=True):
        super().__init__()
        assert dim % num_heads == 0
        self.num_heads = num_heads
        self.qkv_temb = nn.Linear(temb_dim, 3 * dim)
        self.relative_position_bias_table = nn.Parameter(torch.zeros((2 * window - 1) ** 2, num_heads))
        index = torch.from_numpy(relative_position_index(window))
        self.register_buffer("relative_position_index", index, persistent=persistent_index)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def bias(self):
        """(heads, N, N) additive logit bias."""
        n = self.relative_position_index.shape[0]
        return self.relative_position_bias_table[self.relative_position_index.reshape(-1)].reshape(n, n, -1).permute(2, 0, 1)

    def forward(self, x, c):
        b, n, d = x.shape
        qkv = self.qkv(x) + self.qkv_temb(c)[:, None, :]
        q, k, v = qkv.reshape(b, n, 3, self.num_heads, d // self.num_heads).permute(2, 0, 3, 1, 4)
        logits = q @ k.transpose(-2, -1) / math.sqrt(d // self.num_heads) + self.bias()[None]
        out = logits.softmax(dim=-1) @ v
        return self.proj(out.transpose(1, 2).reshape(b, n, d))


class DiffiTBlock(nn.Module):
    """x += TMSA(LN(x), c); x += MLP(LN(x)); LN without affine, eps 1e-6; MLP with tanh GELU."""

    def __init__(self, dim, num_heads, mlp_ratio, temb_dim, window, persistent_index=True):
        super().__init__()
        self.attn = TMSA(dim, temb_dim, num_heads, window, persistent_index)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), gelu_approx="tanh")

    def forward(self, x, c):
        x = x + self.attn(layer_norm(x), c)
        return x + self.mlp(layer_norm(x))


class FinalLayer(nn.Module):
    """Linear(SiLU(LN(x))) -> p*p*out_channels per token (no adaLN)."""

    def __init__(self, dim, p, out_channels):
        super().__init__()
        self.linear = nn.Linear(dim, p * p * out_channels)

    def forward(self, x):
        return self.linear(F.silu(layer_norm(x)))


class DiffiT(nn.Module):
    def __init__(self, input_size=32, patch_size=2, in_channels=4, hidden_size=1152, depth=28,
                 num_heads=16, mlp_ratio=4.0, num_classes=1000, learn_sigma=True):
        super().__init__()
        self.config = make_config(input_size, patch_size, in_channels, hidden_size, depth,
                                  num_heads, mlp_ratio, num_classes, learn_sigma)
        self.patch_size = patch_size
        self.out_channels = 2 * in_channels if learn_sigma else in_channels
        grid = input_size // patch_size
        self.x_embedder = PatchEmbed(in_channels, hidden_size, patch_size)
        self.t_embedder = TimestepEmbedder(hidden_size)
        self.y_embedder = LabelEmbedder(num_classes, hidden_size)
        self.pos_embed = nn.Parameter(sincos_2d(hidden_size, grid)[None].float(), requires_grad=False)
        # The official window is the whole patch grid: global attention plus the bias.
        self.blocks = nn.ModuleList(DiffiTBlock(hidden_size, num_heads, mlp_ratio, hidden_size, grid)
                                    for _ in range(depth))
        self.final_layer = FinalLayer(hidden_size, patch_size, self.out_channels)

    @classmethod
    def from_config(cls, cfg):
        return cls(**{k: v for k, v in cfg.items() if k != "arch"})

    @classmethod
    def from_preset(cls, name, **kwargs):
        """e.g. DiffiT.from_preset("DiffiT-XL/2", input_size=32)."""
        return cls(**PRESETS[name], **kwargs)

    def forward(self, x, t, y):
        """x (B, C, H, W), t (B,) real timesteps, y (B,) labels (num_classes = null) -> (B, out_channels, H, W)."""
        dtype = self.pos_embed.dtype
        x = self.x_embedder(x.to(dtype)) + self.pos_embed
        c = self.t_embedder(t.to(dtype)) + self.y_embedder(y)
        for block in self.blocks:
            x = block(x, c)
        return unpatchify(self.final_layer(x), self.patch_size, self.out_channels)
