"""Latent DiffiT fixtures (tests/fixtures/diffit_<...>): DiT-like small configs, every parameter
random (the bias tables too) so each path shows in the output."""

from archs.diffit.checkpoint import expected_shapes, make_config  # noqa: F401  (expected_shapes: spec interface)
from archs.diffit.reference import DiffiT
from archs.dit import fixtures as dit
from archs.dit.fixtures import random_inputs  # noqa: F401  (spec interface: as DiT's)
from reference.fixtures import load_weights, per_key_parts, qkv_parts

CONFIGS = {  # name: (seed, config)
    "diffit_p2": (11, make_config(input_size=8, patch_size=2, in_channels=4, hidden_size=48, depth=2,
                                  num_heads=3, num_classes=10, learn_sigma=True)),
    "diffit_p2_grid6": (12, make_config(input_size=12, patch_size=2, in_channels=3, hidden_size=64, depth=1,
                                        num_heads=2, num_classes=5, learn_sigma=False)),
}


def init_std(name, shape):
    """DiT's, and the relative position bias tables at std 0.5 like pos_embed."""
    if name.endswith("relative_position_bias_table"):
        return 0.5
    return dit.init_std(name, shape)


def reference_model(cfg, weights):
    return load_weights(DiffiT.from_config(cfg).double().eval(), weights)


def path_parts(cfg, weights):
    d = cfg["hidden_size"]
    split = [k for k in weights if k.endswith(("attn.qkv.weight", "attn.qkv.bias", "qkv_temb.weight", "qkv_temb.bias"))]
    parts = per_key_parts(weights, skip=split)
    for k in split:
        parts += qkv_parts(k, d, with_k=k.endswith("attn.qkv.weight"))
    return parts
