"""The model fixture recipe (tests/fixtures, written by make_fixtures.py): each arch's
archs/<arch>/fixtures.py holds its configs and plugs into the functions here.

A fixtures module provides:
  CONFIGS = {name: (seed, config dict)}
  expected_shapes(cfg) -> {key: shape}: the parameters, in the model's key order
  init_std(name, shape) -> std of the N(0, std^2) draw of a parameter (O(1) activations)
  random_inputs(cfg, rng) -> {"x": ..., and "t", "y", "context" if the model takes them} (a text
    encoder: {"input_ids": ...}), numpy
  reference_model(cfg, weights) -> the float64 PyTorch reference holding exactly `weights`
  path_parts(cfg, weights) -> [(label, key, rows)]: what the path check zeroes, one at a time
and optionally MIN_PATH_EFFECT (a lower floor than the default, with the reason beside it),
MIN_PATH_EFFECTS = {name: floor} (the same for single fixtures, the reason beside it) and
activation_stats(model, inputs) -> a line of internal activation statistics for the log.
"""

import importlib
import json
import os

import numpy as np
import torch

from ckpt_io import write_safetensors

# The committed fixtures: make_fixtures.py's default --out-dir, read by the tests.
FIXTURES = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests",
                                         "fixtures"))

# Zeroing any one path must move the output by at least this much (relative L2).
MIN_PATH_EFFECT = 0.02


def load_spec(arch):
    """archs/<arch>/fixtures.py."""
    return importlib.import_module(f"archs.{arch}.fixtures")


def forward(model, inputs):
    """The model's output (numpy) on the numpy `inputs`, fed as x, t, y, context or input_ids (those
    present)."""
    with torch.no_grad():
        keys = ("x", "t", "y", "context", "input_ids")
        return model(*(torch.from_numpy(inputs[k]) for k in keys if k in inputs)).numpy()


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
        rel = np.linalg.norm(forward(spec.reference_model(cfg, w), inputs) - out) / np.linalg.norm(out)
        worst = min(worst, (rel, label))
    return worst


def write_all(spec, fixtures_dir):
    """Write every fixture of `spec` (fixed seeds: reruns write the same bytes)."""
    for name, (seed, cfg) in spec.CONFIGS.items():
        rng = np.random.default_rng(seed)
        weights = random_weights(spec, spec.expected_shapes(cfg), rng)
        inputs = spec.random_inputs(cfg, rng)
        model = spec.reference_model(cfg, weights)
        out = forward(model, inputs)
        rel, label = path_check(spec, cfg, weights, inputs, out)
        if rel < getattr(spec, "MIN_PATH_EFFECTS", {}).get(name, getattr(spec, "MIN_PATH_EFFECT", MIN_PATH_EFFECT)):
            raise SystemExit(f"{name}: zeroing {label} changes the output by only {rel:.2%}; rescale the init")
        write_safetensors(os.path.join(fixtures_dir, f"{name}.safetensors"), weights,
                          {"ditrt.config": json.dumps(cfg)})
        write_safetensors(os.path.join(fixtures_dir, f"{name}.fixture.safetensors"),
                          dict(inputs, out=out.astype(np.float32)))
        n = sum(w.size for w in weights.values())
        stats = f", {spec.activation_stats(model, inputs)}" if hasattr(spec, "activation_stats") else ""
        print(f"{name}: {n} params, out {list(out.shape)}, rms(out) {np.sqrt((out ** 2).mean()):.2f}{stats}; "
              f"smallest path effect {rel:.1%} ({label})")
