"""Image-space (U-shaped) DiffiT in PyTorch: the layout of checkpoint.py beside it (our reading of
arXiv 2312.02139 Sec. 3.2.1; no official code exists). Runs in the dtype of its parameters.
"""

import torch.nn as nn
import torch.nn.functional as F

from archs.diffit.reference import DiffiTBlock
from archs.diffit_unet.checkpoint import PRESETS, level_windows, make_config  # noqa: F401  (PRESETS re-exported)
from archs.dit.reference import LabelEmbedder, TimestepEmbedder

GN_EPS = 1e-6


def to_windows(x, window):
    """(B, C, H, W) -> (B * windows, window^2, C): windows row-major over the grid, tokens
    row-major inside a window."""
    b, c, h, w = x.shape
    x = x.permute(0, 2, 3, 1).reshape(b, h // window, window, w // window, window, c)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(-1, window * window, c)


def from_windows(tokens, b, h, w, window):
    """Inverse of to_windows -> (B, C, H, W)."""
    c = tokens.shape[-1]
    x = tokens.reshape(b, h // window, w // window, window, window, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(b, h, w, c).permute(0, 3, 1, 2)


class ResBlock(nn.Module):
    """DiffiT ResBlock (Eq. 9-10): x_hat = Conv3x3(SiLU(GN(x))); x = DiffiT-Block(x_hat, c) + x,
    the block's TMSA attending within windows (the time term is per sample, shared by its windows)."""

    def __init__(self, channels, cfg, window):
        super().__init__()
        self.window = window
        self.norm = nn.GroupNorm(cfg["groups"], channels, eps=GN_EPS)
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)
        self.transformer = DiffiTBlock(channels, cfg["num_heads"], cfg["mlp_ratio"], cfg["time_dim"],
                                       window, persistent_index=False)

    def forward(self, x, c):
        b, _, h, w = x.shape
        x_hat = self.conv(F.silu(self.norm(x)))
        windows_per_sample = (h // self.window) * (w // self.window)
        tokens = self.transformer(to_windows(x_hat, self.window), c.repeat_interleave(windows_per_sample, dim=0))
        return x + from_windows(tokens, b, h, w, self.window)


class EncoderLevel(nn.Module):
    def __init__(self, cfg, level, window):
        super().__init__()
        chans = cfg["channels"]
        self.resblocks = nn.ModuleList(ResBlock(chans[level], cfg, window) for _ in range(cfg["blocks_per_level"]))
        # 3x3 stride-2 conv to the next level (none at the bottom).
        self.downsample = (nn.Conv2d(chans[level], chans[level + 1], 3, stride=2, padding=1)
                           if level + 1 < len(chans) else None)


class DecoderLevel(nn.Module):
    def __init__(self, cfg, level, window):
        super().__init__()
        chans = cfg["channels"]
        # nearest x2 then a 3x3 conv from the level below (none at the bottom).
        self.upsample = (nn.Conv2d(chans[level + 1], chans[level], 3, padding=1)
                         if level + 1 < len(chans) else None)
        self.resblocks = nn.ModuleList(ResBlock(chans[level], cfg, window) for _ in range(cfg["blocks_per_level"]))


class DiffiTUNet(nn.Module):
    def __init__(self, **kwargs):
        super().__init__()
        cfg = self.config = make_config(**kwargs)
        chans, windows = cfg["channels"], level_windows(cfg)
        self.out_channels = 2 * cfg["in_channels"] if cfg["learn_sigma"] else cfg["in_channels"]
        self.t_embedder = TimestepEmbedder(cfg["time_dim"])
        self.y_embedder = LabelEmbedder(cfg["num_classes"], cfg["time_dim"]) if cfg["num_classes"] > 0 else None
        self.conv_in = nn.Conv2d(cfg["in_channels"], chans[0], 3, padding=1)
        self.encoder = nn.ModuleList(EncoderLevel(cfg, level, windows[level]) for level in range(len(chans)))
        self.decoder = nn.ModuleList(DecoderLevel(cfg, level, windows[level]) for level in range(len(chans)))
        self.norm_out = nn.GroupNorm(cfg["groups"], chans[0], eps=GN_EPS)
        self.conv_out = nn.Conv2d(chans[0], self.out_channels, 3, padding=1)

    @classmethod
    def from_config(cls, cfg):
        return cls(**{k: v for k, v in cfg.items() if k != "arch"})

    def forward(self, x, t, y=None):
        """x (B, C, H, W), t (B,) real timesteps, y (B,) labels if conditional -> (B, out_channels, H, W)."""
        dtype = self.conv_in.weight.dtype
        c = self.t_embedder(t.to(dtype))
        if self.y_embedder is not None:
            c = c + self.y_embedder(y)
        h = self.conv_in(x.to(dtype))
        skips = []
        for level in self.encoder:
            for block in level.resblocks:
                h = block(h, c)
            skips.append(h)
            if level.downsample is not None:
                h = level.downsample(h)
        for level, skip in zip(reversed(self.decoder), reversed(skips)):
            if level.upsample is not None:
                h = level.upsample(F.interpolate(h, scale_factor=2.0, mode="nearest")) + skip
            for block in level.resblocks:
                h = block(h, c)
        return self.conv_out(F.silu(self.norm_out(h)))
