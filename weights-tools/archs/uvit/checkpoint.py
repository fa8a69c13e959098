"""U-ViT (arXiv 2209.12152; baofff/U-ViT libs/uvit.py): presets of the released checkpoints,
config inference from official checkpoint shapes, key list. Torch-free.

ditrt's config keeps the official nnet fields except `num_classes`, which counts real classes
(0 = unconditional) with `null_class` marking an extra last row of `label_emb` (the
classifier-free-guidance label): the official ImageNet latent configs' num_classes=1001 is
num_classes 1000 + null_class.
"""

import math
import re

from archs import ConvertError, heads_for, preset_entry, shape_of

# (embed_dim, depth, heads) of U-ViT-S/M/L/H; depth as in the configs (depth/2 in-blocks, a
# mid-block, depth/2 out-blocks: the paper's 13/17/21/29 layers).
SIZES = {"S": (512, 12, 8), "M": (768, 16, 12), "L": (1024, 20, 16), "H": (1152, 28, 16)}
# Official head count by width, used when neither --num-heads nor --preset says.
DEFAULT_HEADS = {w: h for (w, _, h) in SIZES.values()}


def make_config(img_size, patch_size, in_chans, embed_dim, depth, num_heads, mlp_ratio=4.0,
                mlp_time_embed=False, num_classes=0, null_class=False, conv=True):
    """The `ditrt.config` JSON object, keys in the order the Rust side documents."""
    return {
        "arch": "uvit",
        "img_size": int(img_size),
        "patch_size": int(patch_size),
        "in_chans": int(in_chans),
        "embed_dim": int(embed_dim),
        "depth": int(depth),
        "num_heads": int(num_heads),
        "mlp_ratio": float(mlp_ratio),
        "mlp_time_embed": bool(mlp_time_embed),
        "num_classes": int(num_classes),
        "null_class": bool(null_class),
        "conv": bool(conv),
    }


def _preset(size, img_size, patch_size, in_chans, num_classes, null_class, conv):
    d, depth, heads = SIZES[size]
    return make_config(img_size, patch_size, in_chans, d, depth, heads, num_classes=num_classes,
                       null_class=null_class, conv=conv)


# The released checkpoints (configs/*.py): pixel-space CIFAR-10, CelebA 64 (unconditional) and
# ImageNet 64 (1000 classes, no null class); ImageNet 256/512 on 4-channel latents (+ null class;
# the huge models have no output conv).
PRESETS = {
    "U-ViT-S/2-CIFAR10": _preset("S", 32, 2, 3, 0, False, True),
    "U-ViT-S/4-CelebA64": _preset("S", 64, 4, 3, 0, False, True),
    "U-ViT-M/4-ImageNet64": _preset("M", 64, 4, 3, 1000, False, True),
    "U-ViT-L/4-ImageNet64": _preset("L", 64, 4, 3, 1000, False, True),
    "U-ViT-L/2-ImageNet256": _preset("L", 32, 2, 4, 1000, True, True),
    "U-ViT-H/2-ImageNet256": _preset("H", 32, 2, 4, 1000, True, False),
    "U-ViT-L/4-ImageNet512": _preset("L", 64, 4, 4, 1000, True, True),
    "U-ViT-H/4-ImageNet512": _preset("H", 64, 4, 4, 1000, True, False),
}


def block_shapes(prefix, d, hidden):
    """One timm block without qkv bias, in module order (norm1, attn, norm2, mlp)."""
    return {
        f"{prefix}.norm1.weight": (d,), f"{prefix}.norm1.bias": (d,),
        f"{prefix}.attn.qkv.weight": (3 * d, d),
        f"{prefix}.attn.proj.weight": (d, d), f"{prefix}.attn.proj.bias": (d,),
        f"{prefix}.norm2.weight": (d,), f"{prefix}.norm2.bias": (d,),
        f"{prefix}.mlp.fc1.weight": (hidden, d), f"{prefix}.mlp.fc1.bias": (hidden,),
        f"{prefix}.mlp.fc2.weight": (d, hidden), f"{prefix}.mlp.fc2.bias": (d,),
    }


def expected_shapes(cfg):
    """Official key -> shape for a config, in the official state_dict order."""
    d, c, p = cfg["embed_dim"], cfg["in_chans"], cfg["patch_size"]
    conditional = cfg["num_classes"] > 0
    extras = 2 if conditional else 1
    patches = (cfg["img_size"] // p) ** 2
    shapes = {
        "pos_embed": (1, extras + patches, d),  # the module's own parameter comes first
        "patch_embed.proj.weight": (d, c, p, p),
        "patch_embed.proj.bias": (d,),
    }
    if cfg["mlp_time_embed"]:
        shapes.update({"time_embed.0.weight": (4 * d, d), "time_embed.0.bias": (4 * d,),
                       "time_embed.2.weight": (d, 4 * d), "time_embed.2.bias": (d,)})
    if conditional:
        shapes["label_emb.weight"] = (cfg["num_classes"] + int(cfg["null_class"]), d)
    shapes.update(trunk_shapes(cfg))
    return shapes


def trunk_shapes(cfg):
    """The blocks, long skips and head (U-ViT and its text-to-image twin share them), in order."""
    d, c, p = cfg["embed_dim"], cfg["in_chans"], cfg["patch_size"]
    hidden = int(d * cfg["mlp_ratio"])
    shapes, skips = {}, cfg["depth"] // 2
    for i in range(skips):
        shapes.update(block_shapes(f"in_blocks.{i}", d, hidden))
    shapes.update(block_shapes("mid_block", d, hidden))
    for i in range(skips):
        shapes.update(block_shapes(f"out_blocks.{i}", d, hidden))
        shapes[f"out_blocks.{i}.skip_linear.weight"] = (d, 2 * d)
        shapes[f"out_blocks.{i}.skip_linear.bias"] = (d,)
    shapes.update({"norm.weight": (d,), "norm.bias": (d,),
                   "decoder_pred.weight": (p * p * c, d), "decoder_pred.bias": (p * p * c,)})
    if cfg["conv"]:
        shapes.update({"final_layer.weight": (c, c, 3, 3), "final_layer.bias": (c,)})
    return shapes


def _count(shapes, prefix):
    """Number of `{prefix}.N.` modules (the highest index + 1; a gap is reported later as a
    missing key)."""
    found = {int(m.group(1)) for k in shapes if (m := re.match(re.escape(prefix) + r"\.(\d+)\.", k))}
    return max(found) + 1 if found else 0


def infer_config(shapes, num_heads=None, preset=None):
    """Read every config value off the tensor shapes; heads come from the options.

    Whether `label_emb`'s last row is a null class is not visible in the shapes: the preset
    says, else a 1001-row table is taken as ImageNet + null (the official convention) and any
    other size as real classes only. An odd official depth builds the same network as the even
    depth below it; the even one is reported.
    """
    shape = lambda key, ndim: shape_of(shapes, key, ndim, "U-ViT")  # noqa: E731
    d, c, p, p2 = shape("patch_embed.proj.weight", 4)
    if p != p2:
        raise ConvertError(f"key 'patch_embed.proj.weight': expected a square p x p kernel, found {p}x{p2}")

    conditional = "label_emb.weight" in shapes
    tokens = shape("pos_embed", 3)[1] - (2 if conditional else 1)
    grid = math.isqrt(max(tokens, 0))
    if tokens <= 0 or grid * grid != tokens:
        raise ConvertError(f"key 'pos_embed': {tokens} patch tokens (after the label/time tokens) "
                           "is not a square patch grid")

    rows = shape("label_emb.weight", 2)[0] if conditional else 0
    fc1_rows = shape("mid_block.mlp.fc1.weight", 2)[0]
    mlp_ratio = fc1_rows / d
    if int(d * mlp_ratio) != fc1_rows:  # the MLP width must round-trip through the ratio
        raise ConvertError(f"key 'mid_block.mlp.fc1.weight': {fc1_rows} rows is not int({d} * mlp_ratio)")
    skips = _count(shapes, "in_blocks")
    if _count(shapes, "out_blocks") != skips:
        raise ConvertError(f"{skips} in_blocks but {_count(shapes, 'out_blocks')} out_blocks "
                           "(U-ViT pairs each in-block with an out-block)")

    if preset is not None:
        want = preset_entry(PRESETS, preset, num_heads)
        num_heads = want["num_heads"]
        null_class = want["null_class"] and conditional
    else:
        null_class = rows == 1001
    num_heads = heads_for(num_heads, d, DEFAULT_HEADS, "embed dim")

    cfg = make_config(grid * p, p, c, d, 2 * skips, num_heads, mlp_ratio,
                      mlp_time_embed="time_embed.0.weight" in shapes,
                      num_classes=rows - int(null_class), null_class=null_class,
                      conv="final_layer.weight" in shapes)
    if preset is not None:
        for name, value in PRESETS[preset].items():
            if cfg[name] != value:
                raise ConvertError(f"--preset {preset}: checkpoint has {name} {cfg[name]}, preset has {value}")
    return cfg
