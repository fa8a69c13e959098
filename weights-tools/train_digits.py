#!/usr/bin/env python3
"""Train the bundled class-conditional digit models (one per backbone) and the digit classifier.

    python3 weights-tools/train_digits.py --arch uvit          # from the repository root
    python3 weights-tools/train_digits.py --arch all           # dit, uvit, diffit, tldm in turn
    python3 weights-tools/train_digits.py --arch dit --eval-only   # re-check a written model (and
                                                               # refresh its "ditrt.sampling")
    python3 weights-tools/train_digits.py --arch diffit --eval-only --sweep   # accuracy over steps x cfg

Every model: 16x16x1 digits (digits_data.py), patch 2 (64 tokens), width 64, 4 heads, 10 classes
plus the null class (id 10; labels dropped to it with probability 0.1 for classifier-free
guidance), AdamW lr 1e-3 (no weight decay), linear warm-up then cosine decay, grad-norm clip 1,
EMA of the weights (exported), batch 64; 2000 steps for the DiT, 6000 for the others. The label table starts at std 1 rather than
the official 0.02: with a few thousand steps a 0.02 table's class signal never gets through (the
samples then ignore their label); a unit table makes the conditioning learn within ~500 steps.

  dit     archs/dit/reference.py DiT, depth 4, learned sigma, hybrid loss (digits_losses.py) on
          DiT's linear betas; sampled with DiT's DDPM respaced, DiT guidance on the eps channel.
  uvit    archs/uvit/reference.py U-ViT, depth 7 (3 in-blocks, mid, 3 out-blocks with long skips),
          time and label tokens, no output conv, eps loss on Stable Diffusion's discrete betas with the
          model fed n = index + 1 (U-ViT's libs/schedule: n uniform in 1..1000); sampled with
          DPM-Solver++ as eval_ldm_discrete.py, U-ViT guidance eps = c + s (c - u).
  diffit  archs/diffit/reference.py latent DiffiT, depth 4 (TMSA with the relative-position bias over
          the 8x8 patch grid), learned sigma, hybrid loss on linear betas; sampled with DDPM and
          DiffiT's power-cosine guidance ramp (input 16 <= 32, as its 256 px model).
  tldm    archs/tldm/reference.py in-context transformer LDM, depth 4 ([time, class, patches] in
          one sequence), learned sigma, hybrid loss on linear betas; DDPM with DiT guidance
          (pixel space: the digits need no autoencoder).

Each recipe (SAMPLING) was picked with --sweep. The check samples 10 of each digit with
reference/samplers.py (the float64 oracle of src/sampling) and fails (exit 1) if fewer than 90%
are recognised by the classifier, for two noise seeds.

Writes (atomically, temp file + rename):
  models/<arch>_digits.safetensors      official key names, EMA weights, f32, metadata
                                        "ditrt.config" (as convert.py writes it) and
                                        "ditrt.sampling" (sampler / steps / cfg scale / schedule)
  models/digits_classifier.safetensors  `weight` f32 [10, 256], `bias` f32 [10]:
                                        logits = weight @ image.flatten() + bias
  /tmp/<arch>_digits_grid.png           10 samples of each digit (row = digit), 4x enlarged

Measured training time, 1 thread each, three trainings sharing 2 cores with other jobs: DiT 2000
steps 44 min (2 threads, session 1); DiffiT and TLDM 6000 steps 45 min each; U-ViT 6000 steps
56 min. On 2 idle cores a 2000-step DiT takes about 6 minutes.
Everything is seeded (torch.manual_seed / torch.Generator, train_test_split random_state);
bit-identical reruns need the same thread count and CPU kernels.
"""

import argparse
import json
import os
import sys
import time

import numpy as np
import torch
import torch.nn as nn

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from archs import get_arch  # noqa: E402
from archs.diffit.reference import DiffiT  # noqa: E402
from archs.dit.reference import DiT  # noqa: E402
from archs.tldm.reference import TLDM  # noqa: E402
from archs.uvit.reference import UViT  # noqa: E402
from ckpt_io import read_safetensors, write_safetensors  # noqa: E402
from digits_data import (NULL_CLASS, NUM_CLASSES, SIZE, classify, grid_image, load_images,  # noqa: E402
                         train_classifier, write_png)
from digits_losses import Diffusion, eps_loss, hybrid_loss  # noqa: E402
import train_steps  # noqa: E402
from reference import samplers  # noqa: E402

REPO = os.path.dirname(HERE)
LABEL_INIT_STD = 1.0
_PATCHES = dict(patch_size=2, mlp_ratio=4.0, num_classes=NUM_CLASSES)
_LATENT = dict(_PATCHES, input_size=SIZE, in_channels=1, hidden_size=64, num_heads=4, learn_sigma=True)

# arch -> model class, constructor arguments, label table, training steps (the token-conditioned
# models need 6000 for clean digits; 2000 gave 95-97% recognised but blurred, blocky samples),
# training schedule and loss, and the default sampling settings written to the checkpoint's "ditrt.sampling" metadata.
ARCHS = {
    "dit": dict(cls=DiT, model=dict(_LATENT, depth=4), labels="y_embedder.embedding_table", steps=2000,
                betas=samplers.linear_betas, loss=hybrid_loss,
                sampling={"sampler": "ddpm", "steps": 20, "cfg_scale": 3.0}),
    "uvit": dict(cls=UViT, model=dict(img_size=SIZE, patch_size=2, in_chans=1, embed_dim=64, depth=7,
                                      num_heads=4, mlp_ratio=4.0, mlp_time_embed=False,
                                      num_classes=NUM_CLASSES, null_class=True, conv=False),
                 labels="label_emb", steps=6000, betas=samplers.stable_diffusion_betas, loss=eps_loss,
                 sampling={"sampler": "dpm-solver", "steps": 50, "cfg_scale": 3.0,
                           "schedule": "stable-diffusion"}),
    "diffit": dict(cls=DiffiT, model=dict(_LATENT, depth=4), labels="y_embedder.embedding_table", steps=6000,
                   betas=samplers.linear_betas, loss=hybrid_loss,
                   sampling={"sampler": "ddpm", "steps": 20, "cfg_scale": 8.0}),
    "tldm": dict(cls=TLDM, model=dict(_LATENT, depth=4), labels="y_embedder.embedding_table", steps=6000,
                 betas=samplers.linear_betas, loss=hybrid_loss,
                 sampling={"sampler": "ddpm", "steps": 20, "cfg_scale": 3.0}),
}


def model_path(out_dir, arch):
    return os.path.join(out_dir, f"{arch}_digits.safetensors")


# ------------------------------------------------------------------------------------- training

def train(spec, x, y, steps, batch, lr, seed, log_every=100):
    torch.manual_seed(seed)
    model = spec["cls"](**spec["model"])
    nn.init.normal_(model.get_submodule(spec["labels"]).weight, std=LABEL_INIT_STD)
    ema = spec["cls"](**spec["model"])
    ema.load_state_dict(model.state_dict())
    ema.requires_grad_(False)
    opt, sched = train_steps.optimizer(model, lr, steps)
    diff = Diffusion(spec["betas"]())
    gen = torch.Generator().manual_seed(seed + 1)
    t0, c0 = time.time(), time.process_time()
    acc = [0.0, 0.0, 0.0]
    for step in range(1, steps + 1):
        idx = torch.randint(0, len(x), (batch,), generator=gen)
        yb = y[idx].clone()
        yb[torch.rand(batch, generator=gen) < 0.1] = NULL_CLASS
        loss, mse, vb = spec["loss"](model, diff, x[idx], yb)
        train_steps.step(model, ema, opt, sched, loss, step)
        for k, v in enumerate((loss, mse, vb)):
            acc[k] += v.item()
        if step % log_every == 0 or step == steps:
            m = log_every if step % log_every == 0 else step % log_every
            print(f"step {step:5d}/{steps}  loss {acc[0] / m:.4f}  mse {acc[1] / m:.4f}  vb {acc[2] / m:.4f}  "
                  f"lr {sched.get_last_lr()[0]:.2e}  {time.time() - t0:6.1f}s", flush=True)
            acc = [0.0, 0.0, 0.0]
    return ema.eval(), time.time() - t0, time.process_time() - c0


# ------------------------------------------------------------------------------------- sampling

def sample(arch, model, labels, sampling, gen):
    """Samples for `labels` with the recipe `sampling`, through reference/samplers.py."""
    labels = torch.as_tensor(labels, dtype=torch.int64)
    x = torch.randn(len(labels), 1, SIZE, SIZE, generator=gen)
    noise = lambda: torch.randn(x.shape, generator=gen)  # noqa: E731
    steps, scale = sampling["steps"], sampling["cfg_scale"]
    with torch.no_grad():
        if arch == "uvit":
            fn = samplers.guided(model, labels, NULL_CLASS, kind="uvit", scale=scale, channels=1)
            return samplers.dpm_solver_pp_fast(fn, samplers.DiscreteVP(samplers.stable_diffusion_betas()), x, steps)
        fn = samplers.guided(model, labels, NULL_CLASS, kind="diffit" if arch == "diffit" else "dit",
                             scale=scale, channels=1)
        return samplers.SpacedDiffusion(samplers.linear_betas(), steps).p_sample_loop(fn, x, noise)


def evaluate(arch, model, w, b, sampling, seed, per_class=10):
    labels = np.repeat(np.arange(NUM_CLASSES), per_class)
    samples = sample(arch, model, labels, sampling, torch.Generator().manual_seed(seed))
    pred = classify(w, b, samples.float().clamp(-1, 1))
    per_digit = [(pred[labels == d] == d).mean() for d in range(NUM_CLASSES)]
    return samples, float((pred == labels).mean()), per_digit


def sweep_grid(arch):
    """(steps, cfg scales) tried by --sweep, in the backbone's guidance convention. Even DDPM step
    counts only: with K - 1 odd, i * 999 / (K - 1) is never a half, so DiT's half-to-even rounding
    and a half-away-from-zero round pick the same timesteps."""
    if arch == "uvit":
        return (15, 25, 50), (0.0, 1.0, 2.0, 3.0)
    if arch == "diffit":  # the ramp guides only the last steps: larger scales than DiT's
        return (20, 50), (4.0, 6.0, 8.0, 10.0)
    return (10, 20, 50), (1.5, 2.0, 3.0, 4.0)


# ---------------------------------------------------------------------------------------- output

def export_model(model, path, sampling):
    """As convert.py writes a checkpoint: exactly the arch's keys in official order (buffers such
    as DiffiT's relative_position_index dropped: ditrt recomputes them), f32."""
    sd = model.state_dict()
    keys = get_arch(model.config["arch"]).expected_shapes(model.config)
    tensors = {k: np.ascontiguousarray(sd[k].detach().cpu().numpy(), dtype=np.float32) for k in keys}
    write_safetensors(path, tensors, {"ditrt.config": json.dumps(model.config),
                                      "ditrt.sampling": json.dumps(sampling)})


def load_model(spec, path):
    tensors, _ = read_safetensors(path)
    model = spec["cls"](**spec["model"])
    missing, unexpected = model.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in tensors.items()}, strict=False)
    buffers = {k for k, _ in model.named_buffers()}
    if unexpected or not set(missing) <= buffers:
        raise ValueError(f"{path}: unexpected keys {unexpected}, missing parameters {sorted(set(missing) - buffers)}")
    return model.eval()


def run_arch(arch, args, x, y, w, b):
    spec = ARCHS[arch]
    path = model_path(args.out_dir, arch)
    if not args.eval_only:
        steps = args.train_steps or spec["steps"]
        model, secs, cpu = train(spec, x, y, steps, args.batch, args.lr, args.seed)
        print(f"{arch}: training {steps} steps x batch {args.batch}: wall {secs:.1f}s "
              f"({secs / 60:.1f} min), process CPU {cpu:.1f}s over {torch.get_num_threads()} thread(s)", flush=True)
        export_model(model, path, spec["sampling"])
    else:
        export_model(load_model(spec, path), path, spec["sampling"])  # same tensors, fresh metadata
    model = load_model(spec, path)  # check what was written
    n_params = sum(p.numel() for p in model.parameters())
    print(f"{arch}: {json.dumps(model.config)}  {n_params} parameters  {os.path.getsize(path)} bytes", flush=True)

    if args.sweep:
        steps_list, scales = sweep_grid(arch)
        for steps in steps_list:
            for s in scales:
                _, acc, _ = evaluate(arch, model, w, b, dict(spec["sampling"], steps=steps, cfg_scale=s),
                                     seed=1000 + args.seed, per_class=20)
                print(f"{arch} sweep: steps {steps:3d} cfg {s:.1f}: accuracy {acc:.3f}", flush=True)

    ok = True
    for k, seed in enumerate((args.seed, args.seed + 12345)):
        t0 = time.time()
        samples, acc, per_digit = evaluate(arch, model, w, b, spec["sampling"], seed)
        print(f"{arch} check (noise seed {seed}): {spec['sampling']}: accuracy {acc:.3f} ({time.time() - t0:.1f}s)  "
              "per digit " + " ".join(f"{d}:{a:.1f}" for d, a in enumerate(per_digit)), flush=True)
        ok &= acc >= 0.9
        if k == 0:
            grid = os.path.join(args.grid_dir, f"{arch}_digits_grid.png")
            write_png(grid, grid_image(samples.float(), NUM_CLASSES, 10))
            print(f"{arch} grid: {grid}")
    if not ok:
        print(f"FAIL: {arch}: sampled accuracy below 90%", file=sys.stderr)
    return ok


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    ap.add_argument("--arch", choices=[*ARCHS, "all"], default="dit")
    ap.add_argument("--out-dir", default=os.path.join(REPO, "models"))
    ap.add_argument("--train-steps", type=int, help="default: the arch's (ARCHS steps)")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--eval-only", action="store_true", help="reuse the written model, skip training")
    ap.add_argument("--sweep", action="store_true", help="also print accuracy over steps x cfg scales")
    ap.add_argument("--grid-dir", default="/tmp")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    os.makedirs(args.out_dir, exist_ok=True)
    x, y = load_images()
    print(f"data: {tuple(x.shape)} in [{x.min():.2f}, {x.max():.2f}]", flush=True)
    w, b, clf_acc, n_test = train_classifier(x, y, args.seed)
    print(f"classifier: held-out accuracy {clf_acc:.4f} on {n_test} images", flush=True)
    write_safetensors(os.path.join(args.out_dir, "digits_classifier.safetensors"), {"weight": w, "bias": b})

    archs = list(ARCHS) if args.arch == "all" else [args.arch]
    results = [run_arch(arch, args, x, y, w, b) for arch in archs]
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
