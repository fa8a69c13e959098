"""Latent DiffiT fixtures (tests/fixtures/diffit_<...>): DiT-like small configs, every parameter
random (the bias tables too) so each path shows in the output."""

import numpy as np
import torch

from archs.diffit import expected_shapes, make_config  # noqa: F401  (expected_shapes: spec interface)
from fixture_specs import load_weights, per_key_parts, qkv_parts
from reference.diffit import DiffiT

BATCH = 3
CONFIGS = {  # name: (seed, config)
    "diffit_p2": (11, make_config(input_size=8, patch_size=2, in_channels=4, hidden_size=48, depth=2,
                                  num_heads=3, num_classes=10, learn_sigma=True)),
    "diffit_p2_grid6": (12, make_config(input_size=12, patch_size=2, in_channels=3, hidden_size=64, depth=1,
                                        num_heads=2, num_classes=5, learn_sigma=False)),
}


def init_std(name, shape):
    """Weights ~ gain/sqrt(fan_in), so every linear keeps unit-ish scale."""
    if name == "pos_embed" or name.endswith("relative_position_bias_table"):
        return 0.5
    if name == "y_embedder.embedding_table.weight":
        return 0.6
    if name.endswith(".bias"):
        return 0.3
    gain = 1.5 if name == "t_embedder.mlp.0.weight" else 1.0  # cos/sin features have rms 0.7
    return gain / np.sqrt(int(np.prod(shape[1:])))


def random_inputs(cfg, rng):
    s, k = cfg["input_size"], cfg["num_classes"]
    x = rng.standard_normal((BATCH, cfg["in_channels"], s, s)).astype(np.float32)
    t = rng.uniform(0.0, 999.0, BATCH).astype(np.float32)
    y = rng.integers(0, k, BATCH).astype(np.int64)
    y[-1] = k  # the null class
    return {"x": x, "t": t, "y": y}


def reference_model(cfg, weights):
    return load_weights(DiffiT.from_config(cfg).double().eval(), weights)


def forward(model, inputs):
    with torch.no_grad():
        return model(*(torch.from_numpy(inputs[k]) for k in ("x", "t", "y"))).numpy()


def path_parts(cfg, weights):
    d = cfg["hidden_size"]
    split = [k for k in weights if k.endswith(("attn.qkv.weight", "attn.qkv.bias", "qkv_temb.weight", "qkv_temb.bias"))]
    parts = per_key_parts(weights, skip=split)
    for k in split:
        parts += qkv_parts(k, d, with_k=k.endswith("attn.qkv.weight"))
    return parts
