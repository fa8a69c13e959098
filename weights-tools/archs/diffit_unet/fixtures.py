"""Image-space DiffiT fixtures (tests/fixtures/diffit_unet_<...>): two and three levels, windows
smaller than and equal to the level's grid, unconditional and class-conditional."""

import numpy as np

from archs.diffit_unet.checkpoint import expected_shapes, make_config  # noqa: F401  (expected_shapes: spec interface)
from archs.diffit_unet.reference import DiffiTUNet
from reference.fixtures import load_weights, per_key_parts, qkv_parts

BATCH = 2
# Path-check floor (reference/fixtures.py MIN_PATH_EFFECT is 2%). In a conv + GroupNorm U-Net the q-side
# terms (q bias, q time term) act only through softmax weights over spatially correlated window
# tokens, and constant shifts are partly undone by the next GroupNorm, so those paths move the
# output by well under 2%. 0.5% is still 500x the f32 tolerance, so f32 checks catch any of them.
MIN_PATH_EFFECT = 0.005
CONFIGS = {  # name: (seed, config)
    "diffit_unet_2lvl": (26, make_config(image_size=8, in_channels=3, channels=[16, 24], blocks_per_level=2,
                                         num_heads=2, window_size=4, mlp_ratio=2.0, time_dim=32, groups=2)),
    "diffit_unet_3lvl_cond": (22, make_config(image_size=16, in_channels=3, channels=[16, 16, 32], blocks_per_level=1,
                                              num_heads=2, window_size=4, mlp_ratio=2.0, time_dim=32, groups=2,
                                              num_classes=10, learn_sigma=True)),
}


def init_std(name, shape):
    """Weights ~ gain/sqrt(fan_in); GroupNorm gains ~ N(0, 1). q/k/v get gain 2 and their biases
    0.5, and the bias tables 1.0, so attention weights vary enough to show in the output."""
    if name.endswith("relative_position_bias_table"):
        return 1.0
    if name == "y_embedder.embedding_table.weight":
        return 0.6
    if name.endswith(("qkv.bias", "qkv_temb.bias")):
        return 0.5
    if name.endswith(".bias"):
        return 0.3
    if len(shape) == 1:  # GroupNorm weight
        return 1.0
    gain = {"t_embedder.mlp.0.weight": 1.5}.get(name, 2.0 if name.endswith(("qkv.weight", "qkv_temb.weight")) else 1.0)
    return gain / np.sqrt(int(np.prod(shape[1:])))


def random_inputs(cfg, rng):
    s = cfg["image_size"]
    inputs = {"x": rng.standard_normal((BATCH, cfg["in_channels"], s, s)).astype(np.float32),
              "t": rng.uniform(0.0, 999.0, BATCH).astype(np.float32)}
    if cfg["num_classes"] > 0:
        y = rng.integers(0, cfg["num_classes"], BATCH).astype(np.int64)
        y[-1] = cfg["num_classes"]  # the null class
        inputs["y"] = y
    return inputs


def reference_model(cfg, weights):
    return load_weights(DiffiTUNet.from_config(cfg).double().eval(), weights)


def path_parts(cfg, weights):
    split = [k for k in weights if k.endswith(("attn.qkv.weight", "attn.qkv.bias", "qkv_temb.weight", "qkv_temb.bias"))]
    parts = per_key_parts(weights, skip=split)
    for k in split:
        parts += qkv_parts(k, weights[k].shape[0] // 3, with_k=k.endswith("attn.qkv.weight"))
    return parts
