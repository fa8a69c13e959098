"""DiT (Peebles & Xie, arXiv 2212.09748) in PyTorch, state_dict keys = official checkpoint keys.

Conditioning c = t_emb + y_emb drives adaLN-Zero in every block and the final layer.
The forward pass runs in the dtype of the parameters (float64 for the fixtures).
"""

import torch
import torch.nn as nn

from archs.dit.checkpoint import FREQ_DIM, PRESETS, make_config  # noqa: F401  (PRESETS re-exported)
from reference.common import (Attention, Mlp, PatchEmbed, layer_norm, modulate, sincos_2d,
                              timestep_features, unpatchify)


class TimestepEmbedder(nn.Module):
    """256 sinusoidal features -> Linear(256, D) -> SiLU -> Linear(D, D)."""

    def __init__(self, dim):
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(FREQ_DIM, dim), nn.SiLU(), nn.Linear(dim, dim))

    def forward(self, t):
        return self.mlp(timestep_features(t, FREQ_DIM))


class LabelEmbedder(nn.Module):
    """Table of num_classes + 1 rows; the last row is the null class for classifier-free guidance."""

    def __init__(self, num_classes, dim):
        super().__init__()
        self.embedding_table = nn.Embedding(num_classes + 1, dim)

    def forward(self, y):
        return self.embedding_table(y)


class DiTBlock(nn.Module):
    """adaLN-Zero block: six modulation vectors from SiLU(c), then gated attention and MLP."""

    def __init__(self, dim, num_heads, mlp_ratio):
        super().__init__()
        self.attn = Attention(dim, num_heads, qkv_bias=True)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), gelu_approx="tanh")
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(dim, 6 * dim))

    def forward(self, x, c):
        shift1, scale1, gate1, shift2, scale2, gate2 = self.adaLN_modulation(c).chunk(6, dim=1)
        x = x + gate1[:, None] * self.attn(modulate(layer_norm(x), shift1, scale1))
        x = x + gate2[:, None] * self.mlp(modulate(layer_norm(x), shift2, scale2))
        return x


class FinalLayer(nn.Module):
    """(shift, scale) from SiLU(c); Linear(modulate(LN(x))) -> p*p*out_channels per token."""

    def __init__(self, dim, p, out_channels):
        super().__init__()
        self.linear = nn.Linear(dim, p * p * out_channels)
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(dim, 2 * dim))

    def forward(self, x, c):
        shift, scale = self.adaLN_modulation(c).chunk(2, dim=1)
        return self.linear(modulate(layer_norm(x), shift, scale))


class DiT(nn.Module):
    def __init__(self, input_size=32, patch_size=2, in_channels=4, hidden_size=1152, depth=28,
                 num_heads=16, mlp_ratio=4.0, num_classes=1000, learn_sigma=True):
        super().__init__()
        self.config = make_config(input_size, patch_size, in_channels, hidden_size, depth,
                                  num_heads, mlp_ratio, num_classes, learn_sigma)
        self.patch_size = patch_size
        self.out_channels = 2 * in_channels if learn_sigma else in_channels
        grid = input_size // patch_size
        self.pos_embed = nn.Parameter(torch.zeros(1, grid * grid, hidden_size), requires_grad=False)
        self.x_embedder = PatchEmbed(in_channels, hidden_size, patch_size)
        self.t_embedder = TimestepEmbedder(hidden_size)
        self.y_embedder = LabelEmbedder(num_classes, hidden_size)
        self.blocks = nn.ModuleList(DiTBlock(hidden_size, num_heads, mlp_ratio) for _ in range(depth))
        self.final_layer = FinalLayer(hidden_size, patch_size, self.out_channels)
        self.initialize_weights()

    @classmethod
    def from_config(cls, cfg):
        return cls(**{k: v for k, v in cfg.items() if k != "arch"})

    @classmethod
    def from_preset(cls, name, **kwargs):
        """e.g. DiT.from_preset("DiT-XL/2", input_size=32)."""
        return cls(**PRESETS[name], **kwargs)

    def initialize_weights(self):
        """Training init of the paper: fixed sin-cos positions, adaLN-Zero (modulation and output
        layers start at zero). Fixtures overwrite all of it with random values."""
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
        for layer in [b.adaLN_modulation[1] for b in self.blocks] + [self.final_layer.adaLN_modulation[1],
                                                                      self.final_layer.linear]:
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)

    def forward(self, x, t, y):
        """x (B, C, H, W), t (B,) real timesteps, y (B,) labels (num_classes = null) -> (B, out_channels, H, W)."""
        dtype = self.pos_embed.dtype
        x = self.x_embedder(x.to(dtype)) + self.pos_embed
        c = self.t_embedder(t.to(dtype)) + self.y_embedder(y)
        for block in self.blocks:
            x = block(x, c)
        return unpatchify(self.final_layer(x, c), self.patch_size, self.out_channels)
