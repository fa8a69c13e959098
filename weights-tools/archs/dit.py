"""DiT (arXiv 2212.09748): presets, config inference from official checkpoint shapes, key list.

Torch-free, so convert.py can handle safetensors inputs without PyTorch.
"""

import math
import re

from archs import ConvertError

# depth / width / heads of the paper's Table 1, times patch sizes 2, 4, 8 ("DiT-XL/2", ...).
_SIZES = {"S": (12, 384, 6), "B": (12, 768, 12), "L": (24, 1024, 16), "XL": (28, 1152, 16)}
PRESETS = {
    f"DiT-{name}/{p}": {"depth": d, "hidden_size": w, "num_heads": h, "patch_size": p}
    for name, (d, w, h) in _SIZES.items()
    for p in (2, 4, 8)
}
# Official head count by width, used when neither --num-heads nor --preset says.
DEFAULT_HEADS = {w: h for (_, w, h) in _SIZES.values()}

FREQ_DIM = 256  # timestep feature width of the official TimestepEmbedder


def make_config(input_size, patch_size, in_channels, hidden_size, depth, num_heads,
                mlp_ratio=4.0, num_classes=1000, learn_sigma=True):
    """The `ditrt.config` JSON object, keys in the order the Rust side documents."""
    return {
        "arch": "dit",
        "input_size": int(input_size),
        "patch_size": int(patch_size),
        "in_channels": int(in_channels),
        "hidden_size": int(hidden_size),
        "depth": int(depth),
        "num_heads": int(num_heads),
        "mlp_ratio": float(mlp_ratio),
        "num_classes": int(num_classes),
        "learn_sigma": bool(learn_sigma),
    }


def expected_shapes(cfg):
    """Official key -> shape for a config, in the official module order."""
    d, c, p = cfg["hidden_size"], cfg["in_channels"], cfg["patch_size"]
    grid = cfg["input_size"] // p
    hidden = int(d * cfg["mlp_ratio"])  # official Mlp: int(hidden_size * mlp_ratio)
    out_channels = 2 * c if cfg["learn_sigma"] else c
    shapes = {
        "pos_embed": (1, grid * grid, d),
        "x_embedder.proj.weight": (d, c, p, p),
        "x_embedder.proj.bias": (d,),
        "t_embedder.mlp.0.weight": (d, FREQ_DIM),
        "t_embedder.mlp.0.bias": (d,),
        "t_embedder.mlp.2.weight": (d, d),
        "t_embedder.mlp.2.bias": (d,),
        "y_embedder.embedding_table.weight": (cfg["num_classes"] + 1, d),
    }
    for i in range(cfg["depth"]):
        for name, shape in [("attn.qkv", (3 * d, d)), ("attn.proj", (d, d)),
                            ("mlp.fc1", (hidden, d)), ("mlp.fc2", (d, hidden)),
                            ("adaLN_modulation.1", (6 * d, d))]:
            shapes[f"blocks.{i}.{name}.weight"] = shape
            shapes[f"blocks.{i}.{name}.bias"] = shape[:1]
    shapes["final_layer.linear.weight"] = (p * p * out_channels, d)
    shapes["final_layer.linear.bias"] = (p * p * out_channels,)
    shapes["final_layer.adaLN_modulation.1.weight"] = (2 * d, d)
    shapes["final_layer.adaLN_modulation.1.bias"] = (2 * d,)
    return shapes


def _shape(shapes, key, ndim):
    if key not in shapes:
        raise ConvertError(f"missing key {key!r}, needed to infer the DiT config")
    s = tuple(shapes[key])
    if len(s) != ndim:
        raise ConvertError(f"key {key!r}: expected a {ndim}-D tensor, found shape {list(s)}")
    return s


def infer_config(shapes, num_heads=None, preset=None):
    """Read every config value off the tensor shapes; heads come from the options."""
    d, c, p, p2 = _shape(shapes, "x_embedder.proj.weight", 4)
    if p != p2:
        raise ConvertError(f"key 'x_embedder.proj.weight': expected a square p x p kernel, found {p}x{p2}")

    n = _shape(shapes, "pos_embed", 3)[1]
    grid = math.isqrt(n)
    if grid * grid != n:
        raise ConvertError(f"key 'pos_embed': {n} tokens is not a square patch grid")

    num_classes = _shape(shapes, "y_embedder.embedding_table.weight", 2)[0] - 1
    fc1_rows = _shape(shapes, "blocks.0.mlp.fc1.weight", 2)[0]
    mlp_ratio = fc1_rows / d
    if int(d * mlp_ratio) != fc1_rows:  # the MLP width must round-trip through the ratio
        raise ConvertError(f"key 'blocks.0.mlp.fc1.weight': {fc1_rows} rows is not int({d} * mlp_ratio)")

    rows = _shape(shapes, "final_layer.linear.weight", 2)[0]
    if rows == p * p * 2 * c:
        learn_sigma = True
    elif rows == p * p * c:
        learn_sigma = False
    else:
        raise ConvertError(f"key 'final_layer.linear.weight': expected {p * p * c} or {p * p * 2 * c} "
                           f"rows (p*p*C or p*p*2C), found {rows}")

    blocks = {int(m.group(1)) for k in shapes if (m := re.match(r"blocks\.(\d+)\.", k))}
    depth = max(blocks) + 1  # a gap in the numbering is then reported as a missing key

    if preset is not None:
        if preset not in PRESETS:
            raise ConvertError(f"unknown --preset {preset!r} (known: {', '.join(PRESETS)})")
        want = PRESETS[preset]
        found = {"depth": depth, "hidden_size": d, "patch_size": p}
        for name, value in found.items():
            if value != want[name]:
                raise ConvertError(f"--preset {preset}: checkpoint has {name} {value}, preset has {want[name]}")
        if num_heads is not None and num_heads != want["num_heads"]:
            raise ConvertError(f"--preset {preset}: --num-heads {num_heads} disagrees with the preset's "
                               f"{want['num_heads']}")
        num_heads = want["num_heads"]
    if num_heads is None:
        if d not in DEFAULT_HEADS:
            raise ConvertError(f"hidden size {d} has no official head count; pass --num-heads or --preset")
        num_heads = DEFAULT_HEADS[d]
    if num_heads <= 0 or d % num_heads:
        raise ConvertError(f"--num-heads {num_heads} does not divide the hidden size {d}")

    return make_config(grid * p, p, c, d, depth, num_heads, mlp_ratio, num_classes, learn_sigma)
