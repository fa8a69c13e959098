"""DiT fixtures (tests/fixtures/dit_<...>): patch 2, 4 and 8, head dims 16, 72 and 32, with and
without learned sigma. Every parameter is random (DiT zero-inits adaLN and the output layer, which
would hide those paths). TLDM and latent DiffiT share DiT's embedders and take the same inputs."""

import numpy as np
import torch

from archs.dit.checkpoint import expected_shapes, make_config  # noqa: F401  (expected_shapes: spec interface)
from archs.dit.reference import DiT
from reference.fixtures import forward, load_weights, per_key_parts, qkv_parts

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
    """Weights ~ gain/sqrt(fan_in), so every linear keeps unit-ish scale; adaLN outputs come out
    around 0.5 (no saturation anywhere)."""
    if name == "pos_embed":
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
    y[-1] = k  # the null class (classifier-free guidance's unconditional row)
    return {"x": x, "t": t, "y": y}


def reference_model(cfg, weights):
    return load_weights(DiT.from_config(cfg).double().eval(), weights)


def path_parts(cfg, weights):
    """Every parameter; each adaLN chunk (6 in a block: shift, scale, gate x2; 2 in the final
    layer); q, k, v of each qkv weight, q and v of each qkv bias (softmax ignores the key bias)."""
    d = cfg["hidden_size"]
    ada = [k for k in weights if "adaLN_modulation" in k]
    split = [k for k in weights if k.endswith(("attn.qkv.weight", "attn.qkv.bias"))]
    parts = per_key_parts(weights, skip=ada + split)
    for k in ada:
        parts += [(f"{k}[chunk {i}]", k, slice(i * d, (i + 1) * d)) for i in range(weights[k].shape[0] // d)]
    for k in split:
        parts += qkv_parts(k, d, with_k=k.endswith("weight"))
    return parts


def activation_stats(model, inputs):
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
    forward(model, inputs)
    for h in hooks:
        h.remove()
    with torch.no_grad():
        c = model.t_embedder(torch.from_numpy(inputs["t"]).double()) + model.y_embedder(torch.from_numpy(inputs["y"]))
    return (f"rms(c) {c.pow(2).mean().sqrt():.2f}, mean|adaLN| {min(stats['mod']):.2f}..{max(stats['mod']):.2f}, "
            f"logit std {min(stats['logit_std']):.2f}..{max(stats['logit_std']):.2f}, "
            f"max softmax {max(stats['max_prob']):.2f}")
