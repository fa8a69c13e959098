"""In-context transformer LDM fixtures (tests/fixtures/tldm_<...>): patch 2, 4 and 8, with and
without learned sigma, and one with a text context (77 tokens); every parameter random
(LayerNorms, positions, output layer too)."""

import numpy as np

from archs.dit import fixtures as dit
from archs.dit.fixtures import path_parts  # noqa: F401  (spec interface: as DiT's)
from archs.tldm.checkpoint import expected_shapes, make_config  # noqa: F401  (expected_shapes: spec interface)
from archs.tldm.reference import TLDM
from reference.fixtures import load_weights

CONFIGS = {  # name: (seed, config)
    "tldm_p2": (41, make_config(input_size=8, patch_size=2, in_channels=4, hidden_size=32, depth=2,
                                num_heads=2, num_classes=10, learn_sigma=True)),
    "tldm_p4": (42, make_config(input_size=16, patch_size=4, in_channels=3, hidden_size=48, depth=2,
                                num_heads=3, num_classes=5, learn_sigma=False)),
    "tldm_p8": (43, make_config(input_size=16, patch_size=8, in_channels=4, hidden_size=32, depth=1,
                                num_heads=1, num_classes=7, learn_sigma=True)),
    "tldm_ctx_p2": (44, make_config(input_size=8, patch_size=2, in_channels=4, hidden_size=32, depth=2,
                                    num_heads=2, num_classes=10, learn_sigma=True, context_dim=24)),
}

# In tldm_ctx_p2 the time token is one of 95 in every attention (77 of them text), so zeroing its
# MLP's first bias moves `out` by only ~0.5%, still ~500x the f32 tolerance; the others keep 2%.
MIN_PATH_EFFECTS = {"tldm_ctx_p2": 0.004}


def init_std(name, shape):
    """DiT's, and LayerNorm gains ~ N(0, 1)."""
    if len(shape) == 1 and not name.endswith(".bias"):
        return 1.0
    return dit.init_std(name, shape)


def random_inputs(cfg, rng):
    """DiT's, and a text context (77 tokens) where the model takes one."""
    inputs = dit.random_inputs(cfg, rng)
    if "context_dim" in cfg:
        inputs["context"] = rng.standard_normal((dit.BATCH, 77, cfg["context_dim"])).astype(np.float32)
    return inputs


def reference_model(cfg, weights):
    return load_weights(TLDM.from_config(cfg).double().eval(), weights)
