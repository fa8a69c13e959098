#!/usr/bin/env python3
"""Train the bundled text-to-image digits model: a U-ViT text-to-image backbone
(archs/uvit_t2i/reference.py) and a small CLIP-architecture text encoder (transformers'
CLIPTextModel, quick_gelu, causal mask) trained jointly, on CLIP's real BPE vocabulary.

    python3 weights-tools/train_t2i_digits.py --vocab bpe_simple_vocab_16e6.txt.gz --out-dir DIR
    python3 weights-tools/train_t2i_digits.py --vocab ... --out-dir DIR --eval-only --sweep

The vocabulary is CLIP's (open_clip's bpe_simple_vocab_16e6.txt.gz, or a transformers folder
with vocab.json + merges.txt; archs/clip_text/vocab.py). Captions name the digit in the
phrasing families of CAPTIONS, the empty caption (the guidance's unconditional input) replacing
one in ten. Data, classifier and losses as train_digits.py: 16x16x1 digits, eps loss on Stable
Diffusion's discrete betas with the model fed n = index + 1, AdamW lr 1e-3, warm-up then cosine,
grad clip 1, EMA of both models, batch 64.

  text encoder: width 32, 2 layers, 2 heads, MLP 128, 77 positions, the full 49408-id table
                (ids 49406/49407 = start/end; pads are end tokens, as U-ViT's FrozenCLIPEmbedder)
  backbone:     img 16, patch 2, width 64, depth 7, 4 heads, clip_dim 32, 77 text tokens, no conv
  sampling:     DPM-Solver++ (U-ViT's t2i sampler), ε = ε_c + s(ε_c − ε_u), ε_u from "".

Writes DIR/clip/ (model.safetensors, config.json, vocab.json, merges.txt: a transformers folder
that convert.py --arch clip_text reads) and DIR/uvit_t2i.pth (official keys), then checks: 10
samples of each digit for every phrasing family, recognised by the bundled classifier
(models/digits_classifier.safetensors). With --export MODELS_DIR it converts them with
convert.py, in f16 (the two files stay under 5 MB: CLIP's 49408-row token table is most of it),
to MODELS_DIR/uvit_t2i_digits.safetensors (with its recipe, SAMPLING, in "ditrt.sampling") and
MODELS_DIR/clip_digits.safetensors (the text encoder with CLIP's vocabulary).

Measured (2 cores shared with four compiling jobs, 1 thread): 4000 steps x batch 48 in 50 min;
the float64 check at 25 steps, scale 1.0: 97-99% recognised per family, worst digit 80%. The
Rust test (tests/integration/digits.rs) runs the exported f16 files with SAMPLING.
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

from archs.clip_text.vocab import BOS, EOS, read_merges, write_tokenizer_folder  # noqa: E402
from archs.uvit_t2i.reference import UViTT2I  # noqa: E402
from ckpt_io import read_safetensors  # noqa: E402
from digits_data import NUM_CLASSES, SIZE, classify, grid_image, load_images, write_png  # noqa: E402
from digits_losses import Diffusion  # noqa: E402
import train_steps  # noqa: E402
from reference import samplers  # noqa: E402

REPO = os.path.dirname(HERE)
WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
# Phrasing families (each must reach 90% recognised): {d} the numeral, {w} the word.
CAPTIONS = {
    "numeral": "{d}",
    "word": "{w}",
    "handwritten": "a handwritten {w}",
    "the digit": "the digit {d}",
    "photo": "a photo of the number {w}",
}
# Extra phrasings seen in training only.
EXTRA = ["number {d}", "the number {w}", "a handwritten {d}", "{W}.", "a {w}", "an image of the digit {w}"]
CLIP = dict(vocab_size=49408, hidden_size=32, intermediate_size=128, num_hidden_layers=2, num_attention_heads=2,
            max_position_embeddings=77, hidden_act="quick_gelu", layer_norm_eps=1e-5,
            bos_token_id=BOS, eos_token_id=EOS, pad_token_id=EOS)
UVIT = dict(img_size=SIZE, patch_size=2, in_chans=1, embed_dim=64, depth=7, num_heads=4, mlp_ratio=4.0,
            mlp_time_embed=False, clip_dim=32, num_clip_token=77, conv=False)
SAMPLING = {"sampler": "dpm-solver", "steps": 25, "cfg_scale": 1.0, "schedule": "stable-diffusion"}


def caption(template, d):
    return template.format(d=d, w=WORDS[d], W=WORDS[d].capitalize())


def tokenizer(folder):
    from transformers import CLIPTokenizer
    tok = CLIPTokenizer(os.path.join(folder, "vocab.json"), os.path.join(folder, "merges.txt"))
    return lambda texts: torch.tensor(tok(texts, padding="max_length", max_length=77, truncation=True)["input_ids"])


class Pair(nn.Module):
    def __init__(self):
        super().__init__()
        from transformers import CLIPTextConfig, CLIPTextModel
        self.text = CLIPTextModel(CLIPTextConfig(**CLIP))
        self.unet = UViTT2I(**UVIT)

    def encode(self, ids):
        return self.text(input_ids=ids).last_hidden_state

    def forward(self, x, t, ids):
        return self.unet(x, t, self.encode(ids))


def train(x, y, ids_table, steps, batch, lr, seed, log_every=100):
    """ids_table [10, templates, 77] captions, plus the empty caption's ids in row `empty`."""
    torch.manual_seed(seed)
    model, ema = Pair(), Pair()
    ema.load_state_dict(model.state_dict())
    ema.requires_grad_(False)
    opt, sched = train_steps.optimizer(model, lr, steps)
    diff = Diffusion(samplers.stable_diffusion_betas())
    gen = torch.Generator().manual_seed(seed + 1)
    captions, empty = ids_table
    t0, acc = time.time(), 0.0
    for step in range(1, steps + 1):
        idx = torch.randint(0, len(x), (batch,), generator=gen)
        family = torch.randint(0, captions.shape[1], (batch,), generator=gen)
        ids = captions[y[idx], family].clone()
        ids[torch.rand(batch, generator=gen) < 0.1] = empty
        t = torch.randint(0, diff.num_timesteps, (batch,), generator=gen)
        noise = torch.randn(x[idx].shape, generator=gen)
        xt = diff.q_sample(x[idx], t, noise)
        loss = ((noise - model(xt, (t + 1).float(), ids)) ** 2).mean()  # U-ViT feeds n = index + 1
        train_steps.step(model, ema, opt, sched, loss, step)
        acc += loss.item()
        if step % log_every == 0 or step == steps:
            m = log_every if step % log_every == 0 else step % log_every
            print(f"step {step:5d}/{steps}  loss {acc / m:.4f}  lr {sched.get_last_lr()[0]:.2e}  {time.time() - t0:6.1f}s",
                  flush=True)
            acc = 0.0
    return ema.eval()


def sample(model, ids, empty_ids, steps, scale, gen):
    """DPM-Solver++ with U-ViT's guidance on the text condition (float64, reference/samplers.py)."""
    b = len(ids)
    x = torch.randn(b, 1, SIZE, SIZE, generator=gen)
    model = model.double()
    with torch.no_grad():
        cond = model.encode(ids)
        uncond = model.encode(empty_ids[None]).expand(b, -1, -1)
        context = torch.cat([cond, uncond])

        def fn(x, t):
            out = model.unet(torch.cat([x, x]), torch.full((2 * b,), t, dtype=torch.float64), context)
            c, u = out[:b], out[b:]
            return c + scale * (c - u)

        out = samplers.dpm_solver_pp_fast(fn, samplers.DiscreteVP(samplers.stable_diffusion_betas()), x.double(), steps)
    model.float()
    return out


def evaluate(model, tok, w, b, steps, scale, seed, per=10):
    """Accuracy per phrasing family (10 digits x `per` samples each)."""
    gen = torch.Generator().manual_seed(seed)
    empty = tok([""])[0]
    result, grids = {}, []
    for name, template in CAPTIONS.items():
        labels = np.repeat(np.arange(NUM_CLASSES), per)
        ids = tok([caption(template, int(d)) for d in labels])
        s = sample(model, ids, empty, steps, scale, gen)
        pred = classify(w, b, s.float().clamp(-1, 1))
        result[name] = [float((pred[labels == d] == d).mean()) for d in range(NUM_CLASSES)]
        grids.append(s.float())
    return result, grids


def export(clip_dir, pth, models_dir):
    """The bundled files, as convert.py writes them (f16), the recipe added to the backbone's."""
    from convert import convert
    from ckpt_io import write_safetensors
    unet_path = os.path.join(models_dir, "uvit_t2i_digits.safetensors")
    convert("uvit_t2i", pth, unet_path, dtype="f16", num_heads=UVIT["num_heads"])
    tensors, metadata = read_safetensors(unet_path)
    write_safetensors(unet_path, {k: np.array(v) for k, v in tensors.items()},
                      dict(metadata, **{"ditrt.sampling": json.dumps(SAMPLING)}))
    convert("clip_text", clip_dir, os.path.join(models_dir, "clip_digits.safetensors"), dtype="f16")
    for name in ("uvit_t2i_digits", "clip_digits"):
        path = os.path.join(models_dir, f"{name}.safetensors")
        print(f"wrote {path}: {os.path.getsize(path)} bytes")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    ap.add_argument("--vocab", required=True, help="bpe_simple_vocab_16e6.txt.gz or a vocab.json + merges.txt folder")
    ap.add_argument("--out-dir", required=True)
    ap.add_argument("--train-steps", type=int, default=6000)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--eval-only", action="store_true")
    ap.add_argument("--sweep", action="store_true", help="accuracy over steps x guidance scales")
    ap.add_argument("--export", metavar="MODELS_DIR", help="convert the trained models into MODELS_DIR and stop")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    clip_dir = os.path.join(args.out_dir, "clip")
    write_tokenizer_folder(read_merges(args.vocab), clip_dir)
    tok = tokenizer(clip_dir)
    x, y = load_images()
    templates = list(CAPTIONS.values()) + EXTRA
    captions = torch.stack([tok([caption(t, d) for t in templates]) for d in range(NUM_CLASSES)])
    empty = tok([""])[0]
    pth = os.path.join(args.out_dir, "uvit_t2i.pth")
    if args.export:
        export(clip_dir, pth, args.export)
        return 0
    if args.eval_only:
        from transformers import CLIPTextModel
        model = Pair()
        model.text = CLIPTextModel.from_pretrained(clip_dir)
        model.unet.load_state_dict(torch.load(pth))
        model.eval()
    else:
        t0 = time.time()
        model = train(x, y, (captions, empty), args.train_steps, args.batch, args.lr, args.seed)
        print(f"training {args.train_steps} steps x batch {args.batch}: {(time.time() - t0) / 60:.1f} min", flush=True)
        model.text.save_pretrained(clip_dir)
        torch.save(model.unet.state_dict(), pth)
    tensors, _ = read_safetensors(os.path.join(REPO, "models", "digits_classifier.safetensors"))
    w, b = np.array(tensors["weight"]), np.array(tensors["bias"])
    grid = [(SAMPLING["steps"], SAMPLING["cfg_scale"])]
    if args.sweep:
        grid = [(s, c) for s in (15, 25, 50) for c in (0.0, 1.0, 2.0, 3.0)]
    ok = True
    for steps, scale in grid:
        t0 = time.time()
        result, grids = evaluate(model, tok, w, b, steps, scale, seed=args.seed)
        worst = min(min(v) for v in result.values())
        print(f"steps {steps} scale {scale}: worst digit x family {worst:.2f} ({time.time() - t0:.0f}s); " +
              "; ".join(f"{k}: {np.mean(v):.3f} (min {min(v):.1f})" for k, v in result.items()), flush=True)
        if (steps, scale) == (SAMPLING["steps"], SAMPLING["cfg_scale"]):
            ok = worst >= 0.9
            path = os.path.join(args.out_dir, "t2i_digits_grid.png")
            write_png(path, grid_image(torch.cat(grids), NUM_CLASSES * len(CAPTIONS), 10))
            print(f"grid: {path}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
