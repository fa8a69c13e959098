#!/usr/bin/env python3
"""Write the model fixtures in tests/fixtures (run: python3 weights-tools/make_fixtures.py).

DiT's are made here; every other arch registers its configs from its own module in
fixture_specs/ (same recipe, same file layout).

For each small config below:
  <name>.safetensors          weights, official keys, f32, metadata {"ditrt.config": JSON}
  <name>.fixture.safetensors  x (f32, B x C x H x W), t (f32, B, real in [0, 999]),
                              y (i64, B, the last = num_classes = null class), out (f32)
Every parameter is re-randomised (DiT zero-inits adaLN and the output layer, which would hide
those paths) with scales that keep activations O(1). `out` is computed in float64 from the
f32-rounded weights and inputs, then rounded to f32. Fixed seeds: reruns give the same files.
"""

import json
import os
import sys

import numpy as np
import torch

from archs.dit import expected_shapes, make_config
from ckpt_io import write_safetensors
from fixture_specs import SPECS, load_spec, write_all
from reference.dit import DiT

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures")
BATCH = 3
CONFIGS = {  # name: (seed, config)
    "dit_p2": (1, make_config(input_size=8, patch_size=2, in_channels=4, hidden_size=64, depth=2,
                              num_heads=4, num_classes=10, learn_sigma=True)),
    "dit_p4_hd72": (2, make_config(input_size=16, patch_size=4, in_channels=3, hidden_size=144, depth=2,
                                   num_heads=2, num_classes=5, learn_sigma=False)),
    "dit_p8": (3, make_config(input_size=16, patch_size=8, in_channels=4, hidden_size=96, depth=1,
                              num_heads=3, num_classes=7, learn_sigma=True)),
}


def init_std(name, shape):
    """Std of the N(0, std^2) draw for one parameter: weights ~ gain/sqrt(fan_in), so every
    linear keeps unit-ish scale; adaLN outputs come out around 0.5 (no saturation anywhere)."""
    if name == "pos_embed":
        return 0.5
    if name == "y_embedder.embedding_table.weight":
        return 0.6
    if name.endswith(".bias"):
        return 0.3
    fan_in = int(np.prod(shape[1:]))
    gain = 1.5 if name == "t_embedder.mlp.0.weight" else 1.0  # cos/sin features have rms 0.7
    return gain / np.sqrt(fan_in)


def random_weights(cfg, rng):
    return {name: (rng.standard_normal(shape) * init_std(name, shape)).astype(np.float32)
            for name, shape in expected_shapes(cfg).items()}


def reference_model(cfg, weights):
    """The reference DiT in float64 holding exactly the f32 weights."""
    model = DiT.from_config(cfg).double().eval()
    model.load_state_dict({k: torch.from_numpy(v).double() for k, v in weights.items()}, strict=True)
    return model


def random_inputs(cfg, rng):
    s, k = cfg["input_size"], cfg["num_classes"]
    x = rng.standard_normal((BATCH, cfg["in_channels"], s, s)).astype(np.float32)
    t = rng.uniform(0.0, 999.0, BATCH).astype(np.float32)
    y = rng.integers(0, k, BATCH).astype(np.int64)
    y[-1] = k  # the null class (classifier-free guidance's unconditional row)
    return x, t, y


def forward(model, x, t, y):
    with torch.no_grad():
        return model(torch.from_numpy(x).double(), torch.from_numpy(t).double(), torch.from_numpy(y)).numpy()


def path_check(cfg, weights, inputs, out):
    """Smallest relative change of `out` when one parameter (or one adaLN chunk, or one of q/k/v)
    is zeroed: every path must contribute visibly."""
    d = cfg["hidden_size"]
    parts = []
    for name, w in weights.items():
        if "adaLN_modulation" in name:
            n = w.shape[0] // d  # 6 chunks in blocks (shift, scale, gate x2), 2 in the final layer
            parts += [(f"{name}[chunk {i}]", name, slice(i * d, (i + 1) * d)) for i in range(n)]
        elif name.endswith("attn.qkv.weight") or name.endswith("attn.qkv.bias"):
            # The key bias adds q.b_k to a whole row of logits, which softmax ignores: skip it.
            parts += [(f"{name}[{'qkv'[i]}]", name, slice(i * d, (i + 1) * d)) for i in range(3)
                      if not (name.endswith("bias") and i == 1)]
        else:
            parts.append((name, name, slice(None)))
    worst = (np.inf, None)
    for label, name, rows in parts:
        w = {k: v.copy() for k, v in weights.items()}
        w[name][rows] = 0
        rel = np.linalg.norm(forward(reference_model(cfg, w), *inputs) - out) / np.linalg.norm(out)
        worst = min(worst, (rel, label))
    return worst


def activation_stats(model, x, t, y):
    """rms of c, adaLN outputs' mean |.|, attention logit std and max softmax prob (via hooks)."""
    stats = {"mod": [], "logit_std": [], "max_prob": []}
    heads = model.config["num_heads"]

    def on_qkv(mod, inp, qkv):
        b, n, _ = qkv.shape
        q, k, _ = qkv.reshape(b, n, 3, heads, -1).permute(2, 0, 3, 1, 4)
        logits = q @ k.transpose(-2, -1) / q.shape[-1] ** 0.5
        stats["logit_std"].append(logits.std().item())
        stats["max_prob"].append(logits.softmax(-1).max().item())

    hooks = [b.attn.qkv.register_forward_hook(on_qkv) for b in model.blocks]
    hooks += [m.register_forward_hook(lambda mod, i, o: stats["mod"].append(o.abs().mean().item()))
              for m in [b.adaLN_modulation for b in model.blocks] + [model.final_layer.adaLN_modulation]]
    out = forward(model, x, t, y)
    for h in hooks:
        h.remove()
    with torch.no_grad():
        c = model.t_embedder(torch.from_numpy(t).double()) + model.y_embedder(torch.from_numpy(y))
    return (f"rms(c) {c.pow(2).mean().sqrt():.2f}, mean|adaLN| {min(stats['mod']):.2f}..{max(stats['mod']):.2f}, "
            f"logit std {min(stats['logit_std']):.2f}..{max(stats['logit_std']):.2f}, "
            f"max softmax {max(stats['max_prob']):.2f}, rms(out) {np.sqrt((out ** 2).mean()):.2f}")


def main():
    os.makedirs(FIXTURES, exist_ok=True)
    for name, (seed, cfg) in CONFIGS.items():
        rng = np.random.default_rng(seed)
        weights = random_weights(cfg, rng)
        inputs = random_inputs(cfg, rng)
        model = reference_model(cfg, weights)
        out = forward(model, *inputs)
        rel, label = path_check(cfg, weights, inputs, out)
        if rel < 0.02:
            sys.exit(f"{name}: zeroing {label} changes the output by only {rel:.2%}; rescale the init")
        x, t, y = inputs
        write_safetensors(os.path.join(FIXTURES, f"{name}.safetensors"), weights,
                          {"ditrt.config": json.dumps(cfg)})
        write_safetensors(os.path.join(FIXTURES, f"{name}.fixture.safetensors"),
                          {"x": x, "t": t, "y": y, "out": out.astype(np.float32)})
        n = sum(w.size for w in weights.values())
        print(f"{name}: {n} params, out {list(out.shape)}; {activation_stats(model, x, t, y)}; "
              f"smallest path effect {rel:.1%} ({label})")
    for module in SPECS:  # the other archs: one module each in fixture_specs/
        write_all(load_spec(module), FIXTURES)


if __name__ == "__main__":
    main()
