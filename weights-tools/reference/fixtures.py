"""Per-arch model fixtures: each module here holds one arch's fixture configs and the plumbing
make_fixtures.py needs to write them (the DiT fixtures live in make_fixtures.py itself).

A spec module provides:
  CONFIGS = {name: (seed, config dict)}
  expected_shapes(cfg) -> {key: shape}: the parameters, in the model's key order
  init_std(name, shape) -> std of the N(0, std^2) draw of a parameter (O(1) activations)
  random_inputs(cfg, rng) -> {"x": ..., and "t", "y" if the model takes them}, numpy
  reference_model(cfg, weights) -> the float64 PyTorch reference holding exactly `weights`
  forward(model, inputs) -> numpy output
  path_parts(cfg, weights) -> [(label, key, rows)]: what the path check zeroes, one at a time
and optionally MIN_PATH_EFFECT (a lower floor than the default, with the reason beside it),
and is listed in SPECS.
"""

import importlib
import json
import os

import numpy as np
import torch

from ckpt_io import write_safetensors

SPECS = ["fixture_specs.diffit", "fixture_specs.diffit_unet", "fixture_specs.vae", "fixture_specs.uvit", "fixture_specs.tldm"]

# Zeroing any one path must move the output by at least this much (relative L2).
MIN_PATH_EFFECT = 0.02


def load_spec(module):
    return importlib.import_module(module)


def random_weights(spec, shapes, rng):
    return {name: (rng.standard_normal(shape) * spec.init_std(name, shape)).astype(np.float32)
            for name, shape in shapes.items()}


def load_weights(model, weights):
    """Put exactly `weights` (f32 arrays) into a float64 model; its buffers stay its own."""
    params = {k for k, _ in model.named_parameters()}
    if params != set(weights):
        raise KeyError(f"weights and model parameters differ: {sorted(params ^ set(weights))[:4]}")
    state = model.state_dict()
    state.update({k: torch.from_numpy(v).double() for k, v in weights.items()})
    model.load_state_dict(state, strict=True)
    return model


def per_key_parts(weights, skip=()):
    """One path per parameter, except those in `skip`."""
    return [(name, name, slice(None)) for name in weights if name not in skip]


def qkv_parts(name, dim, with_k=True):
    """q, k and v of a packed [q | k | v] projection (row blocks of a weight or a bias), one at a
    time. Leave k out (`with_k=False`) for terms constant over the tokens (a bias, a per-sample
    time term): they shift a whole row of logits, which softmax ignores."""
    return [(f"{name}[{'qkv'[i]}]", name, slice(i * dim, (i + 1) * dim)) for i in range(3) if with_k or i != 1]


def path_check(spec, cfg, weights, inputs, out):
    """Smallest relative change of `out` when one path of `spec.path_parts` is zeroed."""
    worst = (np.inf, None)
    for label, name, rows in spec.path_parts(cfg, weights):
        w = {k: v.copy() for k, v in weights.items()}
        w[name][rows] = 0
        rel = np.linalg.norm(spec.forward(spec.reference_model(cfg, w), inputs) - out) / np.linalg.norm(out)
        worst = min(worst, (rel, label))
    return worst


def write_all(spec, fixtures_dir):
    """Write every fixture of `spec` (fixed seeds: reruns write the same bytes)."""
    for name, (seed, cfg) in spec.CONFIGS.items():
        rng = np.random.default_rng(seed)
        weights = random_weights(spec, spec.expected_shapes(cfg), rng)
        inputs = spec.random_inputs(cfg, rng)
        out = spec.forward(spec.reference_model(cfg, weights), inputs)
        rel, label = path_check(spec, cfg, weights, inputs, out)
        if rel < getattr(spec, "MIN_PATH_EFFECT", MIN_PATH_EFFECT):
            raise SystemExit(f"{name}: zeroing {label} changes the output by only {rel:.2%}; rescale the init")
        write_safetensors(os.path.join(fixtures_dir, f"{name}.safetensors"), weights,
                          {"ditrt.config": json.dumps(cfg)})
        write_safetensors(os.path.join(fixtures_dir, f"{name}.fixture.safetensors"),
                          dict(inputs, out=out.astype(np.float32)))
        n = sum(w.size for w in weights.values())
        print(f"{name}: {n} params, out {list(out.shape)}, rms(out) {np.sqrt((out ** 2).mean()):.2f}; "
              f"smallest path effect {rel:.1%} ({label})")
