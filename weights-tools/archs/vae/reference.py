"""Stable Diffusion KL-f8 VAE decoder (+ post_quant_conv) in PyTorch with diffusers' AutoencoderKL
state_dict keys (diffusers models/autoencoders/vae.py Decoder, unet_2d_blocks.py UNetMidBlock2D /
UpDecoderBlock2D, resnet.py ResnetBlock2D, the mid attention as Attention(_from_deprecated_attn_block));
the math equals CompVis ldm/modules/diffusionmodules/model.py Decoder. No latent scaling: callers
divide by 0.18215 first. Runs in the dtype of its parameters.
"""

import math

import torch.nn as nn
import torch.nn.functional as F

from archs.vae.checkpoint import PRESETS, make_config  # noqa: F401  (PRESETS re-exported)

GN_EPS = 1e-6  # every GroupNorm of the decoder (diffusers resnet_eps, CompVis Normalize)


class ResnetBlock(nn.Module):
    """GN -> SiLU -> conv3x3 -> GN -> SiLU -> conv3x3, plus x (1x1 conv_shortcut when channels change)."""

    def __init__(self, cin, cout, groups):
        super().__init__()
        self.norm1 = nn.GroupNorm(groups, cin, eps=GN_EPS)
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.norm2 = nn.GroupNorm(groups, cout, eps=GN_EPS)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        self.conv_shortcut = nn.Conv2d(cin, cout, 1) if cin != cout else None

    def forward(self, x):
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.conv2(F.silu(self.norm2(h)))
        return (x if self.conv_shortcut is None else self.conv_shortcut(x)) + h


class MidAttention(nn.Module):
    """Single-head self-attention over all pixels: x + to_out(softmax(q k^T / sqrt(C)) v), q, k, v
    linear maps of GN(x) per pixel."""

    def __init__(self, channels, groups):
        super().__init__()
        self.group_norm = nn.GroupNorm(groups, channels, eps=GN_EPS)
        self.to_q = nn.Linear(channels, channels)
        self.to_k = nn.Linear(channels, channels)
        self.to_v = nn.Linear(channels, channels)
        self.to_out = nn.ModuleList([nn.Linear(channels, channels)])

    def forward(self, x):
        b, c, h, w = x.shape
        tokens = self.group_norm(x).reshape(b, c, h * w).transpose(1, 2)  # (B, HW, C)
        q, k, v = self.to_q(tokens), self.to_k(tokens), self.to_v(tokens)
        out = (q @ k.transpose(1, 2) / math.sqrt(c)).softmax(dim=-1) @ v
        return x + self.to_out[0](out).transpose(1, 2).reshape(b, c, h, w)


class MidBlock(nn.Module):
    """resnets.0 -> attentions.0 -> resnets.1 (attentions registered first, as in diffusers)."""

    def __init__(self, channels, groups):
        super().__init__()
        self.attentions = nn.ModuleList([MidAttention(channels, groups)])
        self.resnets = nn.ModuleList([ResnetBlock(channels, channels, groups) for _ in range(2)])

    def forward(self, x):
        return self.resnets[1](self.attentions[0](self.resnets[0](x)))


class Upsample(nn.Module):
    """Nearest x2, then a 3x3 conv."""

    def __init__(self, channels):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x):
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class UpBlock(nn.Module):
    def __init__(self, cin, cout, layers, groups, upsample):
        super().__init__()
        self.resnets = nn.ModuleList(ResnetBlock(cin if j == 0 else cout, cout, groups) for j in range(layers))
        self.upsamplers = nn.ModuleList([Upsample(cout)]) if upsample else None

    def forward(self, x):
        for r in self.resnets:
            x = r(x)
        return self.upsamplers[0](x) if self.upsamplers is not None else x


class Decoder(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        chans, groups = list(reversed(cfg["block_out_channels"])), cfg["norm_num_groups"]
        self.conv_in = nn.Conv2d(cfg["latent_channels"], chans[0], 3, padding=1)
        self.up_blocks = nn.ModuleList(
            UpBlock(chans[max(i - 1, 0)], c, cfg["layers_per_block"] + 1, groups, upsample=i + 1 < len(chans))
            for i, c in enumerate(chans))
        self.mid_block = MidBlock(chans[0], groups)
        self.conv_norm_out = nn.GroupNorm(groups, chans[-1], eps=GN_EPS)
        self.conv_out = nn.Conv2d(chans[-1], cfg["out_channels"], 3, padding=1)

    def forward(self, z):
        h = self.mid_block(self.conv_in(z))
        for block in self.up_blocks:
            h = block(h)
        return self.conv_out(F.silu(self.conv_norm_out(h)))


class VAEDecoder(nn.Module):
    """z (B, latent_channels, h, w) -> image (B, out_channels, 8h, 8w) for 4 levels."""

    def __init__(self, **kwargs):
        super().__init__()
        self.config = make_config(**kwargs)
        z = self.config["latent_channels"]
        self.decoder = Decoder(self.config)
        self.post_quant_conv = nn.Conv2d(z, z, 1)

    @classmethod
    def from_config(cls, cfg):
        return cls(**{k: v for k, v in cfg.items() if k != "arch"})

    def forward(self, z):
        return self.decoder(self.post_quant_conv(z.to(self.post_quant_conv.weight.dtype)))
