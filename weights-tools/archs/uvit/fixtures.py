"""U-ViT fixtures (tests/fixtures/uvit_<...>): conditional (with and without a null class) and
unconditional, with and without the output conv and the time MLP, 2 and 3 long skips and an odd
depth; every parameter random (LayerNorms too) so each path shows in the output."""

import numpy as np

from archs.uvit.checkpoint import expected_shapes, make_config  # noqa: F401  (expected_shapes: spec interface)
from archs.uvit.reference import UViT
from reference.fixtures import load_weights, per_key_parts, qkv_parts

BATCH = 3
CONFIGS = {  # name: (seed, config)
    # latent-like: 4 channels, label + null class, output conv, 2 skips
    "uvit_cond_conv": (31, make_config(img_size=8, patch_size=2, in_chans=4, embed_dim=32, depth=4, num_heads=2,
                                       num_classes=10, null_class=True, conv=True)),
    # pixel-like: unconditional, time MLP, 3 skips (LIFO order over an odd count), mlp_ratio 2
    "uvit_uncond_mlptime": (37, make_config(img_size=16, patch_size=4, in_chans=3, embed_dim=32, depth=6,
                                            num_heads=1, mlp_ratio=2.0, mlp_time_embed=True, conv=True)),
    # odd official depth 5 (2 in-blocks, mid, 2 out), classes without a null row, no output conv
    "uvit_cond_noconv_odd": (33, make_config(img_size=8, patch_size=2, in_chans=4, embed_dim=32, depth=5,
                                             num_heads=4, mlp_time_embed=True, num_classes=7, conv=False)),
}


def init_std(name, shape):
    """Weights ~ gain/sqrt(fan_in), so every linear keeps unit-ish scale; LayerNorm gains ~ N(0, 1)."""
    if name == "pos_embed":
        return 0.5
    if name == "label_emb.weight":
        return 0.6
    if name.endswith(".bias"):
        return 0.3
    if len(shape) == 1:  # LayerNorm weight
        return 1.0
    # cos/sin features have rms 0.7; larger q, k make attention peaked enough to matter
    gain = 1.5 if name == "time_embed.0.weight" or name.endswith("attn.qkv.weight") else 1.0
    return gain / np.sqrt(int(np.prod(shape[1:])))


def random_inputs(cfg, rng):
    s, k = cfg["img_size"], cfg["num_classes"]
    inputs = {"x": rng.standard_normal((BATCH, cfg["in_chans"], s, s)).astype(np.float32),
              "t": rng.uniform(0.0, 999.0, BATCH).astype(np.float32)}
    if k > 0:
        y = rng.integers(0, k, BATCH).astype(np.int64)
        if cfg["null_class"]:
            y[-1] = k  # the null class
        inputs["y"] = y
    return inputs


def reference_model(cfg, weights):
    return load_weights(UViT.from_config(cfg).double().eval(), weights)


def path_parts(cfg, weights):
    """Every parameter; q, k, v of each qkv; the x and skip halves of each skip_linear (so a
    swapped concat order or skip pairing cannot hide)."""
    d = cfg["embed_dim"]
    qkv = [k for k in weights if k.endswith("attn.qkv.weight")]
    skip = [k for k in weights if k.endswith("skip_linear.weight")]
    parts = per_key_parts(weights, skip=qkv + skip)
    for k in qkv:
        parts += qkv_parts(k, d)
    for k in skip:
        parts += [(f"{k}[x half]", k, (slice(None), slice(0, d))), (f"{k}[skip half]", k, (slice(None), slice(d, None)))]
    return parts
