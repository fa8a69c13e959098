"""Pieces shared by the reference backbones (DiT, U-ViT, DiffiT, ...)."""

import math

import torch
import torch.nn as nn
import torch.nn.functional as F


def timestep_features(t, dim=256, max_period=10000.0):
    """Sinusoidal timestep features [cos(t f), sin(t f)], cos first (GLIDE / DiT).

    f_i = exp(-ln(max_period) * i / half), i < half = dim // 2; t may be fractional.
    """
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=t.dtype, device=t.device) / half)
    args = t[:, None] * freqs[None, :]
    emb = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
    if dim % 2:  # odd widths get one zero column, as in the official code
        emb = torch.cat([emb, torch.zeros_like(emb[:, :1])], dim=-1)
    return emb


def sincos_1d(dim, pos):
    """(M,) positions -> (M, dim): [sin(pos w), cos(pos w)], w_i = 10000^(-i / (dim/2))."""
    assert dim % 2 == 0
    omega = 10000.0 ** (-torch.arange(dim // 2, dtype=torch.float64) / (dim / 2))
    args = pos.to(torch.float64)[:, None] * omega[None, :]
    return torch.cat([torch.sin(args), torch.cos(args)], dim=1)


def sincos_2d(dim, grid):
    """Fixed 2-D position table (grid*grid, dim) in float64, token m = h*grid + w.

    As in DiT/MAE: the first dim/2 channels encode the column w, the second dim/2 the row h.
    """
    assert dim % 4 == 0, "2-D sin-cos table needs a width divisible by 4"
    h, w = torch.meshgrid(torch.arange(grid), torch.arange(grid), indexing="ij")
    return torch.cat([sincos_1d(dim // 2, w.reshape(-1)), sincos_1d(dim // 2, h.reshape(-1))], dim=1)


def modulate(x, shift, scale):
    """adaLN: x * (1 + scale) + shift with per-sample (B, D) shift/scale over (B, N, D) tokens."""
    return x * (1 + scale[:, None, :]) + shift[:, None, :]


def layer_norm(x, eps=1e-6):
    """LayerNorm over the last axis without affine parameters."""
    return F.layer_norm(x, x.shape[-1:], eps=eps)


def unpatchify(tokens, p, c):
    """(B, g*g, p*p*c) -> (B, c, g*p, g*p): out[b, c, h*p+i, w*p+j] = tok[b, h*g+w, (i*p+j)*c + c]."""
    b, n, _ = tokens.shape
    g = math.isqrt(n)
    assert g * g == n, "unpatchify expects a square token grid"
    x = tokens.reshape(b, g, g, p, p, c)            # (b, h, w, i, j, c)
    x = x.permute(0, 5, 1, 3, 2, 4)                 # (b, c, h, i, w, j)
    return x.reshape(b, c, g * p, g * p)


class PatchEmbed(nn.Module):
    """Conv with kernel = stride = p, tokens in row-major order of the patch grid (timm layout)."""

    def __init__(self, in_channels, dim, p, bias=True):
        super().__init__()
        self.proj = nn.Conv2d(in_channels, dim, kernel_size=p, stride=p, bias=bias)

    def forward(self, x):
        return self.proj(x).flatten(2).transpose(1, 2)  # (B, D, gh, gw) -> (B, gh*gw, D)


class Attention(nn.Module):
    """Multi-head self-attention, qkv one linear laid out [q | k | v], each split into heads.

    Written out explicitly (no fused SDPA) so it runs in float64.
    """

    def __init__(self, dim, num_heads, qkv_bias=True):
        super().__init__()
        assert dim % num_heads == 0
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.qkv = nn.Linear(dim, 3 * dim, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        b, n, d = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]                         # (b, heads, n, head_dim)
        logits = (q @ k.transpose(-2, -1)) / math.sqrt(self.head_dim)
        out = logits.softmax(dim=-1) @ v
        return self.proj(out.transpose(1, 2).reshape(b, n, d))


class Mlp(nn.Module):
    """fc1 -> GELU -> fc2 (timm key names)."""

    def __init__(self, dim, hidden, gelu_approx="tanh"):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)
        self.gelu_approx = gelu_approx

    def forward(self, x):
        return self.fc2(F.gelu(self.fc1(x), approximate=self.gelu_approx))


class PreNormBlock(nn.Module):
    """timm's ViT block (U-ViT, TLDM): x += Attn(norm1(x)); x += Mlp(norm2(x)), LayerNorms with
    affine. Submodules in the official order norm1, attn, norm2, mlp (state_dict order)."""

    def __init__(self, dim, num_heads, mlp_ratio, qkv_bias, gelu_approx, eps):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=eps)
        self.attn = Attention(dim, num_heads, qkv_bias=qkv_bias)
        self.norm2 = nn.LayerNorm(dim, eps=eps)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), gelu_approx=gelu_approx)

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))
