"""U-ViT text-to-image (baofff/U-ViT libs/uvit_t2i.py): presets of the released MS-COCO
checkpoints, config inference from official checkpoint shapes, key list. Torch-free.

Tokens [time, context_embed(context) (num_clip_token of them), patches] + one position table;
the blocks and long skips are U-ViT's (archs/uvit/checkpoint.py block_shapes).
"""

import math

from archs import ConvertError, heads_for, preset_entry, shape_of
from archs.uvit.checkpoint import DEFAULT_HEADS, SIZES, _count, trunk_shapes


def make_config(img_size, patch_size, in_chans, embed_dim, depth, num_heads, mlp_ratio=4.0,
                mlp_time_embed=False, clip_dim=768, num_clip_token=77, conv=True):
    """The `ditrt.config` JSON object, keys in the order the Rust side documents."""
    return {
        "arch": "uvit_t2i",
        "img_size": int(img_size),
        "patch_size": int(patch_size),
        "in_chans": int(in_chans),
        "embed_dim": int(embed_dim),
        "depth": int(depth),
        "num_heads": int(num_heads),
        "mlp_ratio": float(mlp_ratio),
        "mlp_time_embed": bool(mlp_time_embed),
        "clip_dim": int(clip_dim),
        "num_clip_token": int(num_clip_token),
        "conv": bool(conv),
    }


def _preset(size, depth):
    d, _, heads = SIZES[size]
    # configs/mscoco_uvit.py: 32x32x4 SD latents, patch 2, CLIP ViT-L/14 tokens (768 wide, 77),
    # no qkv bias, no time MLP; `conv` is left at uvit_t2i.UViT's default, True.
    return make_config(32, 2, 4, d, depth, heads, clip_dim=768, num_clip_token=77, conv=True)


# The released MS-COCO checkpoints: U-ViT-S/2 (configs/mscoco_uvit.py: depth 12) and U-ViT-S/2
# (Deep) (the paper's Table 3: 17 blocks, i.e. depth 16).
PRESETS = {
    "U-ViT-S/2-MSCOCO": _preset("S", 12),
    "U-ViT-S/2-Deep-MSCOCO": _preset("S", 16),
}


def expected_shapes(cfg):
    """Official key -> shape for a config, in the official state_dict order."""
    d, c, p = cfg["embed_dim"], cfg["in_chans"], cfg["patch_size"]
    patches = (cfg["img_size"] // p) ** 2
    shapes = {
        "pos_embed": (1, 1 + cfg["num_clip_token"] + patches, d),
        "patch_embed.proj.weight": (d, c, p, p),
        "patch_embed.proj.bias": (d,),
    }
    if cfg["mlp_time_embed"]:
        shapes.update({"time_embed.0.weight": (4 * d, d), "time_embed.0.bias": (4 * d,),
                       "time_embed.2.weight": (d, 4 * d), "time_embed.2.bias": (d,)})
    shapes.update({"context_embed.weight": (d, cfg["clip_dim"]), "context_embed.bias": (d,)})
    shapes.update(trunk_shapes(cfg))
    return shapes


def infer_config(shapes, num_heads=None, preset=None):
    """Every config value off the tensor shapes (the context width from `context_embed`, the
    context length from `pos_embed` less the patches); heads come from the options."""
    shape = lambda key, ndim: shape_of(shapes, key, ndim, "U-ViT text-to-image")  # noqa: E731
    d, c, p, p2 = shape("patch_embed.proj.weight", 4)
    if p != p2:
        raise ConvertError(f"key 'patch_embed.proj.weight': expected a square p x p kernel, found {p}x{p2}")
    _, clip_dim = shape("context_embed.weight", 2)
    fc1_rows = shape("mid_block.mlp.fc1.weight", 2)[0]
    mlp_ratio = fc1_rows / d
    if int(d * mlp_ratio) != fc1_rows:
        raise ConvertError(f"key 'mid_block.mlp.fc1.weight': {fc1_rows} rows is not int({d} * mlp_ratio)")
    skips = _count(shapes, "in_blocks")
    if _count(shapes, "out_blocks") != skips:
        raise ConvertError(f"{skips} in_blocks but {_count(shapes, 'out_blocks')} out_blocks "
                           "(U-ViT pairs each in-block with an out-block)")
    tokens = shape("pos_embed", 3)[1]
    if preset is not None:
        want = preset_entry(PRESETS, preset, num_heads)
        num_heads, num_clip_token = want["num_heads"], want["num_clip_token"]
    else:
        num_clip_token = 77  # CLIP's context length, as every released model
    patches = tokens - 1 - num_clip_token
    grid = math.isqrt(max(patches, 0))
    if patches <= 0 or grid * grid != patches:
        raise ConvertError(f"key 'pos_embed': {tokens} tokens less the time token and {num_clip_token} "
                           f"text tokens leaves {patches}, not a square patch grid")
    num_heads = heads_for(num_heads, d, DEFAULT_HEADS, "embed dim")
    cfg = make_config(grid * p, p, c, d, 2 * skips, num_heads, mlp_ratio,
                      mlp_time_embed="time_embed.0.weight" in shapes, clip_dim=clip_dim,
                      num_clip_token=num_clip_token, conv="final_layer.weight" in shapes)
    if preset is not None:
        for name, value in PRESETS[preset].items():
            if cfg[name] != value:
                raise ConvertError(f"--preset {preset}: checkpoint has {name} {cfg[name]}, preset has {value}")
    return cfg
