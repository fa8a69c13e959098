"""VAE decoder fixtures (tests/fixtures/vae_<...>): `x` is the latent, `out` the decoded image.
Up factors 4 and 8, channel changes (1x1 shortcuts), an odd latent side."""

import numpy as np

from archs.vae.checkpoint import expected_shapes, make_config  # noqa: F401  (expected_shapes: spec interface)
from archs.vae.reference import VAEDecoder
from reference.fixtures import load_weights, per_key_parts

BATCH = 2
CONFIGS = {  # name: (seed, config)
    "vae_f4": (31, make_config(block_out_channels=[16, 24, 24], layers_per_block=2, norm_num_groups=8, latent_size=4)),
    "vae_f8": (32, make_config(block_out_channels=[16, 16, 24, 24], layers_per_block=1, norm_num_groups=8, latent_size=3)),
}


def init_std(name, shape):
    """Conv / linear weights ~ 1/sqrt(fan_in); GroupNorm gains ~ N(0, 1)."""
    if name.endswith(".bias"):
        return 0.3
    if len(shape) == 1:  # GroupNorm weight
        return 1.0
    return 1.0 / np.sqrt(int(np.prod(shape[1:])))


def random_inputs(cfg, rng):
    s = cfg["latent_size"]
    return {"x": rng.standard_normal((BATCH, cfg["latent_channels"], s, s)).astype(np.float32)}


def reference_model(cfg, weights):
    return load_weights(VAEDecoder.from_config(cfg).double().eval(), weights)


def path_parts(cfg, weights):
    # to_k's bias adds q.b_k to a whole row of logits, which softmax ignores.
    return per_key_parts(weights, skip={"decoder.mid_block.attentions.0.to_k.bias"})
