"""Image-space (U-shaped) DiffiT, arXiv 2312.02139 Sec. 3.2.1: ditrt's own layout, since no code
or checkpoint was released (README.md, "Image-space DiffiT: our choices"). Config, presets and
key list; torch-free. Not a convert.py arch: there is no official checkpoint to convert.

Levels l = 0..L-1 run at image_size / 2^l with channels[l]; each holds `blocks_per_level` DiffiT
ResBlocks (Eq. 9-10: x += DiffiT-Block(Conv3x3(SiLU(GN(x))), c)) whose TMSA works on windows of
min(window_size, resolution)^2 tokens. Encoder: ResBlocks, then a 3x3 stride-2 conv to the next
level's channels. Decoder (bottom to top): nearest x2 + 3x3 conv to the level's channels, plus the
encoder's output at that level, then ResBlocks. Head: GN -> SiLU -> 3x3 conv.
"""

from archs.diffit.checkpoint import attention_shapes
from archs.dit import checkpoint as dit

# CIFAR-10 32x32, unconditional, epsilon prediction (our sizes; see the README).
PRESETS = {
    "DiffiT-CIFAR10": {"image_size": 32, "in_channels": 3, "channels": [128, 256, 256, 256],
                       "blocks_per_level": 2, "num_heads": 4, "window_size": 8, "mlp_ratio": 4.0,
                       "time_dim": 512, "groups": 32, "num_classes": 0, "learn_sigma": False},
}


def make_config(image_size, in_channels, channels, blocks_per_level, num_heads, window_size,
                mlp_ratio=4.0, time_dim=512, groups=32, num_classes=0, learn_sigma=False):
    """The `ditrt.config` JSON object (num_classes 0 = unconditional: no label table, no y)."""
    return {
        "arch": "diffit_unet",
        "image_size": int(image_size),
        "in_channels": int(in_channels),
        "channels": [int(c) for c in channels],
        "blocks_per_level": int(blocks_per_level),
        "num_heads": int(num_heads),
        "window_size": int(window_size),
        "mlp_ratio": float(mlp_ratio),
        "time_dim": int(time_dim),
        "groups": int(groups),
        "num_classes": int(num_classes),
        "learn_sigma": bool(learn_sigma),
    }


def level_windows(cfg):
    """Window side of each level: min(window_size, resolution at that level)."""
    return [min(cfg["window_size"], cfg["image_size"] >> level) for level in range(len(cfg["channels"]))]


def _resblock_shapes(prefix, ch, cfg, window):
    hidden = int(ch * cfg["mlp_ratio"])
    shapes = {
        f"{prefix}.norm.weight": (ch,),
        f"{prefix}.norm.bias": (ch,),
        f"{prefix}.conv.weight": (ch, ch, 3, 3),
        f"{prefix}.conv.bias": (ch,),
    }
    shapes.update(attention_shapes(f"{prefix}.transformer.attn", ch, cfg["time_dim"], cfg["num_heads"], window))
    shapes.update({
        f"{prefix}.transformer.mlp.fc1.weight": (hidden, ch),
        f"{prefix}.transformer.mlp.fc1.bias": (hidden,),
        f"{prefix}.transformer.mlp.fc2.weight": (ch, hidden),
        f"{prefix}.transformer.mlp.fc2.bias": (ch,),
    })
    return shapes


def expected_shapes(cfg):
    """Key -> shape in module order (reference.py)."""
    chans, td, n = cfg["channels"], cfg["time_dim"], cfg["blocks_per_level"]
    windows = level_windows(cfg)
    out_channels = 2 * cfg["in_channels"] if cfg["learn_sigma"] else cfg["in_channels"]
    shapes = {
        "t_embedder.mlp.0.weight": (td, dit.FREQ_DIM),
        "t_embedder.mlp.0.bias": (td,),
        "t_embedder.mlp.2.weight": (td, td),
        "t_embedder.mlp.2.bias": (td,),
    }
    if cfg["num_classes"] > 0:
        shapes["y_embedder.embedding_table.weight"] = (cfg["num_classes"] + 1, td)
    shapes["conv_in.weight"] = (chans[0], cfg["in_channels"], 3, 3)
    shapes["conv_in.bias"] = (chans[0],)
    last = len(chans) - 1
    for level, ch in enumerate(chans):
        for j in range(n):
            shapes.update(_resblock_shapes(f"encoder.{level}.resblocks.{j}", ch, cfg, windows[level]))
        if level < last:
            shapes[f"encoder.{level}.downsample.weight"] = (chans[level + 1], ch, 3, 3)
            shapes[f"encoder.{level}.downsample.bias"] = (chans[level + 1],)
    for level, ch in enumerate(chans):
        if level < last:
            shapes[f"decoder.{level}.upsample.weight"] = (ch, chans[level + 1], 3, 3)
            shapes[f"decoder.{level}.upsample.bias"] = (ch,)
        for j in range(n):
            shapes.update(_resblock_shapes(f"decoder.{level}.resblocks.{j}", ch, cfg, windows[level]))
    shapes["norm_out.weight"] = (chans[0],)
    shapes["norm_out.bias"] = (chans[0],)
    shapes["conv_out.weight"] = (out_channels, chans[0], 3, 3)
    shapes["conv_out.bias"] = (out_channels,)
    return shapes
