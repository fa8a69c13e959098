"""CLIP text encoder fixtures (tests/fixtures/clip_text_<...>): `input_ids` (i64 [B, 77]: a start
token, random tokens, an end token at a random place, pads = the end token after it, as CLIP's
tokenizer pads) and `out` (last_hidden_state, f32 [B, 77, width]). The vocabulary is shrunk (the
start and end tokens are its last two ids, as 49406 / 49407 are CLIP's); every parameter is
random (LayerNorms too). clip_text_hd64 has CLIP-L's head dim, 64 (CLIP-L's whole width, 768,
would not fit the 512 KiB fixture cap: tests/integration/real_widths.rs runs it on every backend
against the CPU)."""

import numpy as np

from archs.clip_text.checkpoint import expected_shapes, make_config  # noqa: F401  (expected_shapes: spec interface)
from archs.clip_text.reference import CLIPTextReference
from reference.fixtures import load_weights, per_key_parts

BATCH = 3
CONFIGS = {  # name: (seed, config)
    "clip_text_small": (41, make_config(vocab_size=96, width=32, layers=2, heads=4, intermediate=48)),
    "clip_text_gelu": (42, make_config(vocab_size=64, width=24, layers=1, heads=2, intermediate=40, max_positions=16,
                                       act="gelu", eps=1e-6)),
    "clip_text_hd64": (43, make_config(vocab_size=32, width=128, layers=1, heads=2, intermediate=64)),
}


def init_std(name, shape):
    """Weights ~ gain/sqrt(fan_in); embeddings ~ N(0, 1); LayerNorm gains ~ N(0, 1)."""
    if name.endswith(".bias"):
        return 0.3
    if len(shape) == 1 or "embedding" in name:
        return 1.0
    # larger q, k make attention peaked enough that causality shows
    gain = 2.0 if name.endswith(("q_proj.weight", "k_proj.weight")) else 1.0
    return gain / np.sqrt(int(np.prod(shape[1:])))


def random_inputs(cfg, rng):
    vocab, n = cfg["vocab_size"], cfg["max_positions"]
    start, end = vocab - 2, vocab - 1
    ids = rng.integers(0, vocab - 2, (BATCH, n))
    ids[:, 0] = start
    for b, stop in enumerate(rng.integers(2, n, BATCH)):
        ids[b, stop:] = end
    return {"input_ids": ids.astype(np.int64)}


def reference_model(cfg, weights):
    return load_weights(CLIPTextReference.from_config(cfg).double().eval(), weights)


def path_parts(cfg, weights):
    # k_proj's bias adds q.b_k to a whole row of logits, which softmax ignores.
    return per_key_parts(weights, skip=[k for k in weights if k.endswith("k_proj.bias")])
