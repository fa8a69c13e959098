"""Latent DiffiT (arXiv 2312.02139; NVlabs/DiffiT diffit/diffit.py): presets, key list, config
inference from checkpoint shapes, and the relative-position buffers the converter drops.

The latent model has DiT's embedders, sizes and final unpatchify (its config has DiT's fields);
its blocks carry TMSA (`attn.qkv_temb`) and a Swin relative position bias over the whole patch
grid (window = input_size / patch_size). Torch-free.
"""

import numpy as np

from archs import ConvertError
from archs.dit import checkpoint as dit

# The released model (diffit.py `Diffit`): DiT-XL/2's sizes.
PRESETS = {"DiffiT-XL/2": {"depth": 28, "hidden_size": 1152, "num_heads": 16, "patch_size": 2}}

INDEX_SUFFIX = ".attn.relative_position_index"


def make_config(input_size, patch_size, in_channels, hidden_size, depth, num_heads,
                mlp_ratio=4.0, num_classes=1000, learn_sigma=True):
    """The `ditrt.config` JSON object: DiT's fields under arch "diffit"."""
    return dict(dit.make_config(input_size, patch_size, in_channels, hidden_size, depth, num_heads,
                                mlp_ratio, num_classes, learn_sigma), arch="diffit")


def relative_position_index(window):
    """Swin's index (window^2, window^2) int64 into a ((2w-1)^2, heads) bias table, as the
    official DiffiTAttention registers it: token i = (yi, xi) row-major,
    index[i, j] = (yi - yj + w - 1) * (2w - 1) + (xi - xj + w - 1)."""
    y, x = np.meshgrid(np.arange(window), np.arange(window), indexing="ij")
    y, x = y.reshape(-1), x.reshape(-1)
    dy = y[:, None] - y[None, :] + window - 1
    dx = x[:, None] - x[None, :] + window - 1
    return (dy * (2 * window - 1) + dx).astype(np.int64)


def attention_shapes(prefix, dim, temb_dim, heads, window):
    """One TMSA module's parameters in state_dict order: its own table first, then qkv_temb,
    qkv, proj (the index buffer sits after the table in the official state_dict; ditrt
    recomputes it, so it is not listed)."""
    return {
        f"{prefix}.relative_position_bias_table": ((2 * window - 1) ** 2, heads),
        f"{prefix}.qkv_temb.weight": (3 * dim, temb_dim),
        f"{prefix}.qkv_temb.bias": (3 * dim,),
        f"{prefix}.qkv.weight": (3 * dim, dim),
        f"{prefix}.qkv.bias": (3 * dim,),
        f"{prefix}.proj.weight": (dim, dim),
        f"{prefix}.proj.bias": (dim,),
    }


def expected_shapes(cfg):
    """Official key -> shape (parameters only), in the official module order."""
    d, c, p = cfg["hidden_size"], cfg["in_channels"], cfg["patch_size"]
    grid = cfg["input_size"] // p
    hidden = int(d * cfg["mlp_ratio"])
    out_channels = 2 * c if cfg["learn_sigma"] else c
    shapes = dit.embedder_shapes(cfg)
    for i in range(cfg["depth"]):
        shapes.update(attention_shapes(f"blocks.{i}.attn", d, d, cfg["num_heads"], grid))
        shapes.update({
            f"blocks.{i}.mlp.fc1.weight": (hidden, d),
            f"blocks.{i}.mlp.fc1.bias": (hidden,),
            f"blocks.{i}.mlp.fc2.weight": (d, hidden),
            f"blocks.{i}.mlp.fc2.bias": (d,),
        })
    shapes["final_layer.linear.weight"] = (p * p * out_channels, d)
    shapes["final_layer.linear.bias"] = (p * p * out_channels,)
    return shapes


def drop_index_buffers(tensors):
    """Remove the `relative_position_index` buffers after checking each equals Swin's index for
    its window (ditrt rebuilds it when it gathers the bias). -> (tensors, note or None)."""
    keys = [k for k in tensors if k.endswith(INDEX_SUFFIX)]
    for k in keys:
        index = np.asarray(tensors[k])
        n = index.shape[0] if index.ndim == 2 else 0
        window = int(round(n ** 0.5))
        if index.ndim != 2 or index.shape[1] != n or window * window != n:
            raise ConvertError(f"key {k!r}: expected a square (w*w, w*w) index, found shape {list(index.shape)}")
        if not np.array_equal(index, relative_position_index(window)):
            raise ConvertError(f"key {k!r}: not the Swin relative position index of a {window}x{window} window")
    if not keys:
        return tensors, None
    kept = {k: v for k, v in tensors.items() if not k.endswith(INDEX_SUFFIX)}
    return kept, f"dropped {len(keys)} relative_position_index buffer(s) (checked; ditrt recomputes them)"


def canonical_tensors(tensors):
    """convert.py hook: the checkpoint's tensors in ditrt's stored layout, and a note."""
    return drop_index_buffers(tensors)


def infer_config(shapes, num_heads=None, preset=None):
    """DiT's dimensions from the same keys; the head count from the bias table's width."""
    key = "blocks.0.attn.relative_position_bias_table"
    if key not in shapes:
        raise ConvertError(f"missing key {key!r}, needed to infer the DiffiT config")
    rows, heads = tuple(shapes[key])
    if num_heads is not None and num_heads != heads:
        raise ConvertError(f"--num-heads {num_heads} disagrees with {key!r}, which has {heads} heads")
    base = dit.infer_config(shapes, num_heads=heads)
    cfg = make_config(**{k: v for k, v in base.items() if k != "arch"})
    grid = cfg["input_size"] // cfg["patch_size"]
    if rows != (2 * grid - 1) ** 2:
        raise ConvertError(f"key {key!r}: {rows} rows, expected (2*{grid}-1)^2 = {(2 * grid - 1) ** 2} "
                           f"for the {grid}x{grid} patch grid")
    if preset is not None:
        if preset not in PRESETS:
            raise ConvertError(f"unknown --preset {preset!r} (known: {', '.join(PRESETS)})")
        for name, want in PRESETS[preset].items():
            if cfg[name] != want:
                raise ConvertError(f"--preset {preset}: checkpoint has {name} {cfg[name]}, preset has {want}")
    return cfg
