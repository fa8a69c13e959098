#!/usr/bin/env python3
"""Train a tiny class-conditional DiT on scikit-learn's 8x8 digits, plus a digit classifier.

    python3 weights-tools/train_digits.py              # from the repository root: train + check
    python3 weights-tools/train_digits.py --eval-only  # re-check the written model (and refresh
                                                       # its "ditrt.sampling" from SAMPLING below)
    python3 weights-tools/train_digits.py --eval-only --sweep   # + accuracy over steps x cfg

Training, 2000 steps of batch 64: about 6 minutes on 2 idle cores (~0.17 s/step); the committed
model took 44 min wall / 36 CPU-minutes on 2 cores shared with other jobs.

Writes (atomically, temp file + rename):
  models/dit_digits.safetensors         official DiT keys, EMA weights, f32, metadata
                                        "ditrt.config" (as convert.py writes it) and
                                        "ditrt.sampling" (default sampler / steps / cfg scale)
  models/digits_classifier.safetensors  `weight` f32 [10, 256], `bias` f32 [10]:
                                        logits = weight @ image.flatten() + bias
  /tmp/digits_grid.png                  10 samples of each digit (row = digit), 4x enlarged

Data: sklearn.datasets.load_digits (1797 images, 8x8, values 0..16; bundled, nothing is
downloaded), scaled to [-1, 1] (v / 8 - 1) and upsampled to 16x16 *bilinearly*
(F.interpolate, align_corners=False), 1 channel. The classifier sees exactly these images.

Model: reference/dit.py's DiT (official key names), input 16, patch 2 (64 tokens), 1 channel,
hidden 64, depth 4, 4 heads, mlp ratio 4, 10 classes + the null class (id 10), learn_sigma=True
(333k parameters, 1.3 MB in f32). Labels are dropped to the null class with probability 0.1 for
classifier-free guidance. DiT's training init, except that the label table starts at std 1 rather
than 0.02 (see train()). 2000 steps of batch 64, lr 1e-3.

Diffusion, as facebookresearch/DiT (diffusion/gaussian_diffusion.py, respace.py): linear betas
1e-4..0.02, T = 1000, eps prediction, LEARNED_RANGE variance
    log sigma^2 = frac * log beta_t + (1 - frac) * log beta~_t (clipped),  frac = (v + 1) / 2,
hybrid loss  L = mean((eps - eps_hat)^2) + L_vb,  L_vb = KL(q(x_{t-1}|x_t,x_0) || p(x_{t-1}|x_t))
in bits per dim (the discretised-Gaussian decoder NLL at t = 0), computed with the predicted mean
detached so that it trains only the variance. This is improved-DDPM's L_simple + lambda * L_vlb
with lambda = 0.001 and L_vlb = T * E_t[L_t] (T = 1000), exactly what DiT's MSE loss type computes.
AdamW (no weight decay, as DiT), linear warmup then cosine decay, grad-norm clip 1, EMA of the
weights (the EMA is what is exported).

Sampling check: DiT's DDPM respaced to K steps (timesteps taken as respace.space_timesteps does,
the model is fed the original timestep), learned-range variance, no x0 clipping, no noise at the
last step; guidance eps = eps_u + s * (eps_c - eps_u) on the eps channels (DiT guides "the first
3 channels": with C = 1 that is the single eps channel), the variance channel is the conditional
half's. 10 samples of each digit are classified by the classifier above; the script fails (exit 1)
if fewer than 90% are recognised, or if reference/samplers.py (float64) disagrees with this
sampler. Defaults found with --sweep (SAMPLING): DDPM, 20 steps, cfg scale 3.0 (even step counts
avoid the x.5 ties of DiT's half-to-even timestep rounding).

Everything is seeded (torch.manual_seed / torch.Generator, train_test_split random_state); 2 CPU
threads (bit-identical reruns need the same thread count and CPU kernels).
"""

import argparse
import json
import math
import os
import sys
import time
import zlib

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from ckpt_io import read_safetensors, write_safetensors  # noqa: E402
from reference.dit import DiT  # noqa: E402

REPO = os.path.dirname(HERE)
NUM_CLASSES = 10
NULL_CLASS = NUM_CLASSES
T = 1000
LABEL_INIT_STD = 1.0

MODEL = dict(input_size=16, patch_size=2, in_channels=1, hidden_size=64, depth=4, num_heads=4,
             mlp_ratio=4.0, num_classes=NUM_CLASSES, learn_sigma=True)
# Default sampling settings written to the checkpoint's "ditrt.sampling" metadata.
SAMPLING = {"sampler": "ddpm", "steps": 20, "cfg_scale": 3.0}


# ----------------------------------------------------------------------------------------- data

def load_images():
    """-> (x float32 [N, 1, 16, 16] in [-1, 1], y int64 [N])."""
    from sklearn.datasets import load_digits

    d = load_digits()
    x8 = torch.tensor(d.images, dtype=torch.float32)[:, None] / 8.0 - 1.0  # 0..16 -> [-1, 1]
    x16 = F.interpolate(x8, size=(16, 16), mode="bilinear", align_corners=False)
    return x16.clamp(-1.0, 1.0), torch.tensor(d.target, dtype=torch.int64)


# ------------------------------------------------------------------------------------ diffusion

def linear_betas(n=T):
    scale = 1000 / n
    return np.linspace(scale * 1e-4, scale * 0.02, n, dtype=np.float64)


def space_timesteps(num_timesteps, count):
    """DiT respace.space_timesteps(num_timesteps, str(count)) for one section: sorted list."""
    frac_stride = 1 if count <= 1 else (num_timesteps - 1) / (count - 1)
    cur, taken = 0.0, []
    for _ in range(count):
        taken.append(round(cur))  # Python round (half to even), accumulated stride, as DiT
        cur += frac_stride
    return sorted(set(taken))


class Diffusion:
    """Gaussian diffusion coefficients (float64 numpy) for the given betas.

    timestep_map[i] is the original timestep fed to the model at index i (respacing)."""

    def __init__(self, betas, timestep_map=None):
        b = np.asarray(betas, dtype=np.float64)
        self.num_timesteps = len(b)
        self.timestep_map = np.arange(len(b)) if timestep_map is None else np.asarray(timestep_map)
        self.betas = b
        ac = np.cumprod(1.0 - b)
        ac_prev = np.append(1.0, ac[:-1])
        self.alphas_cumprod = ac
        self.sqrt_ac = np.sqrt(ac)
        self.sqrt_1m_ac = np.sqrt(1.0 - ac)
        self.sqrt_recip_ac = np.sqrt(1.0 / ac)
        self.sqrt_recipm1_ac = np.sqrt(1.0 / ac - 1.0)
        self.post_var = b * (1.0 - ac_prev) / (1.0 - ac)
        self.post_logvar_clipped = np.log(np.append(self.post_var[1], self.post_var[1:]))
        self.log_betas = np.log(b)
        self.post_c1 = b * np.sqrt(ac_prev) / (1.0 - ac)
        self.post_c2 = (1.0 - ac_prev) * np.sqrt(1.0 - b) / (1.0 - ac)

    @classmethod
    def respaced(cls, steps, base_betas=None):
        base = cls(linear_betas() if base_betas is None else base_betas)
        use = space_timesteps(base.num_timesteps, steps)
        last, betas = 1.0, []
        for t in use:
            betas.append(1.0 - base.alphas_cumprod[t] / last)
            last = base.alphas_cumprod[t]
        return cls(np.array(betas), use)

    def _get(self, arr, t, x):
        return torch.as_tensor(arr, dtype=x.dtype)[t].view(-1, *([1] * (x.dim() - 1)))

    def q_sample(self, x0, t, noise):
        return self._get(self.sqrt_ac, t, x0) * x0 + self._get(self.sqrt_1m_ac, t, x0) * noise

    def posterior_mean(self, x0, xt, t):
        return self._get(self.post_c1, t, xt) * x0 + self._get(self.post_c2, t, xt) * xt

    def x0_from_eps(self, xt, t, eps):
        return self._get(self.sqrt_recip_ac, t, xt) * xt - self._get(self.sqrt_recipm1_ac, t, xt) * eps

    def p_mean_logvar(self, xt, t, eps, v):
        """Learned-range p(x_{t-1} | x_t): (mean, log variance, x0), no clipping."""
        frac = (v + 1) / 2
        logvar = frac * self._get(self.log_betas, t, xt) + (1 - frac) * self._get(self.post_logvar_clipped, t, xt)
        x0 = self.x0_from_eps(xt, t, eps)
        return self.posterior_mean(x0, xt, t), logvar, x0


def normal_kl(mean1, logvar1, mean2, logvar2):
    return 0.5 * (-1.0 + logvar2 - logvar1 + torch.exp(logvar1 - logvar2)
                  + (mean1 - mean2) ** 2 * torch.exp(-logvar2))


def _approx_std_normal_cdf(x):
    return 0.5 * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))


def discretized_gaussian_loglik(x, mean, log_scale):
    """log-likelihood of x in [-1, 1] quantised to 256 bins under N(mean, exp(log_scale)^2)."""
    c = x - mean
    inv = torch.exp(-log_scale)
    cdf_plus = _approx_std_normal_cdf(inv * (c + 1.0 / 255.0))
    cdf_min = _approx_std_normal_cdf(inv * (c - 1.0 / 255.0))
    log_cdf_plus = torch.log(cdf_plus.clamp(min=1e-12))
    log_1m_cdf_min = torch.log((1.0 - cdf_min).clamp(min=1e-12))
    log_delta = torch.log((cdf_plus - cdf_min).clamp(min=1e-12))
    return torch.where(x < -0.999, log_cdf_plus, torch.where(x > 0.999, log_1m_cdf_min, log_delta))


def hybrid_loss(model, diff, x0, y):
    """DiT training_losses (MSE loss type, LEARNED_RANGE): -> (loss, mse, vb) batch means."""
    b, c = x0.shape[:2]
    t = torch.randint(0, diff.num_timesteps, (b,))
    noise = torch.randn_like(x0)
    xt = diff.q_sample(x0, t, noise)
    out = model(xt, t.to(x0.dtype), y)
    eps, v = out[:, :c], out[:, c:]
    mean, logvar, _ = diff.p_mean_logvar(xt, t, eps.detach(), v)  # mean frozen: vb trains v only
    true_mean = diff.posterior_mean(x0, xt, t)
    true_logvar = diff._get(diff.post_logvar_clipped, t, x0)
    kl = normal_kl(true_mean, true_logvar, mean, logvar).mean(dim=(1, 2, 3)) / math.log(2.0)
    nll = -discretized_gaussian_loglik(x0, mean, 0.5 * logvar).mean(dim=(1, 2, 3)) / math.log(2.0)
    vb = torch.where(t == 0, nll, kl)
    mse = ((noise - eps) ** 2).mean(dim=(1, 2, 3))
    return (mse + vb).mean(), mse.mean(), vb.mean()


@torch.no_grad()
def sample_ddpm(model, labels, steps, cfg_scale, noise):
    """DiT DDPM respaced to `steps`, learned-range variance, CFG on the eps channels.

    noise(shape) -> standard normal tensor: called for x_T, then once per step but the last."""
    diff = Diffusion.respaced(steps)
    n = len(labels)
    c = model.config["in_channels"]
    x = noise((n, c, 16, 16))
    y = torch.as_tensor(labels, dtype=torch.int64)
    guided = cfg_scale != 1.0
    for i in reversed(range(diff.num_timesteps)):
        t_model = torch.full((n,), float(diff.timestep_map[i]))
        if guided:
            out = model(torch.cat([x, x]), torch.cat([t_model, t_model]),
                        torch.cat([y, torch.full_like(y, NULL_CLASS)]))
            cond, uncond = out[:n], out[n:]
            eps = uncond[:, :c] + cfg_scale * (cond[:, :c] - uncond[:, :c])
            v = cond[:, c:]
        else:
            out = model(x, t_model, y)
            eps, v = out[:, :c], out[:, c:]
        idx = torch.full((n,), i, dtype=torch.int64)
        mean, logvar, _ = diff.p_mean_logvar(x, idx, eps, v)
        x = mean + torch.exp(0.5 * logvar) * noise(x.shape) if i > 0 else mean
    return x


# ------------------------------------------------------------------------------------- training

def train(x, y, steps, batch, lr, seed, log_every=100):
    torch.manual_seed(seed)
    model = DiT(**MODEL)
    # DiT initialises the label table with std 0.02; with a few thousand steps the class signal
    # then never gets through the zero-initialised adaLN path (samples ignore their label). A unit
    # std table (nn.Embedding's default) makes the conditioning learn within ~500 steps.
    nn.init.normal_(model.y_embedder.embedding_table.weight, std=LABEL_INIT_STD)
    ema = DiT(**MODEL)
    ema.load_state_dict(model.state_dict())
    ema.requires_grad_(False)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    warmup = max(1, steps // 20)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min((s + 1) / warmup, 0.5 * (1 + math.cos(math.pi * min(s, steps) / steps)) * 0.95 + 0.05))
    diff = Diffusion(linear_betas())
    gen = torch.Generator().manual_seed(seed + 1)
    n = len(x)
    ema_params = [p for p in ema.parameters()]
    params = [p for p in model.parameters()]
    t0, c0 = time.time(), time.process_time()
    acc = [0.0, 0.0, 0.0]
    for step in range(1, steps + 1):
        idx = torch.randint(0, n, (batch,), generator=gen)
        yb = y[idx].clone()
        yb[torch.rand(batch, generator=gen) < 0.1] = NULL_CLASS
        loss, mse, vb = hybrid_loss(model, diff, x[idx], yb)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        decay = min(0.999, (1 + step) / (10 + step))
        with torch.no_grad():
            for pe, p in zip(ema_params, params):
                pe.mul_(decay).add_(p.detach(), alpha=1 - decay)
        for k, v in enumerate((loss, mse, vb)):
            acc[k] += v.item()
        if step % log_every == 0 or step == steps:
            m = log_every if step % log_every == 0 else step % log_every
            print(f"step {step:5d}/{steps}  loss {acc[0] / m:.4f}  mse {acc[1] / m:.4f}  vb {acc[2] / m:.4f}  "
                  f"lr {sched.get_last_lr()[0]:.2e}  {time.time() - t0:6.1f}s", flush=True)
            acc = [0.0, 0.0, 0.0]
    return ema, time.time() - t0, time.process_time() - c0


def train_classifier(x, y, seed):
    """Multinomial logistic regression on the flattened 16x16 images; held-out accuracy on 25%."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split

    xf = x.reshape(len(x), -1).numpy().astype(np.float64)
    yn = y.numpy()
    xtr, xte, ytr, yte = train_test_split(xf, yn, test_size=0.25, random_state=seed, stratify=yn)
    clf = LogisticRegression(C=0.1, max_iter=5000)
    clf.fit(xtr, ytr)
    acc = float((clf.predict(xte) == yte).mean())
    w = np.ascontiguousarray(clf.coef_, dtype=np.float32)
    b = np.ascontiguousarray(clf.intercept_, dtype=np.float32)
    return w, b, acc, len(yte)


def classify(w, b, images):
    """images [N, 1, 16, 16] in [-1, 1] -> predicted digits."""
    flat = images.reshape(len(images), -1).double().numpy()
    return np.argmax(flat @ w.T.astype(np.float64) + b.astype(np.float64), axis=1)


# ---------------------------------------------------------------------------------------- output

def write_png(path, gray):
    """8-bit grayscale PNG from a uint8 [H, W] array; atomic."""
    h, w = gray.shape
    raw = b"".join(b"\x00" + gray[r].tobytes() for r in range(h))

    def chunk(kind, data):
        return (len(data).to_bytes(4, "big") + kind + data
                + (zlib.crc32(kind + data) & 0xFFFFFFFF).to_bytes(4, "big"))

    png = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", w.to_bytes(4, "big") + h.to_bytes(4, "big") + bytes([8, 0, 0, 0, 0]))
           + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(png)
    os.replace(tmp, path)


def grid_image(samples, rows, cols, zoom=4, pad=2):
    """samples [rows*cols, 1, 16, 16] in [-1, 1] -> uint8 grid, row r = digit r."""
    img = (127.5 * (samples[:, 0].clamp(-1, 1) + 1)).round().to(torch.uint8).numpy()
    s = 16 * zoom
    out = np.full((rows * (s + pad) + pad, cols * (s + pad) + pad), 64, dtype=np.uint8)
    for k in range(rows * cols):
        r, c = divmod(k, cols)
        big = np.kron(img[k], np.ones((zoom, zoom), dtype=np.uint8))
        out[pad + r * (s + pad):pad + r * (s + pad) + s, pad + c * (s + pad):pad + c * (s + pad) + s] = big
    return out


def export_model(model, path, sampling):
    sd = model.state_dict()
    tensors = {k: np.ascontiguousarray(v.detach().cpu().numpy(), dtype=np.float32) for k, v in sd.items()}
    write_safetensors(path, tensors, {"ditrt.config": json.dumps(model.config),
                                      "ditrt.sampling": json.dumps(sampling)})


def load_model(path):
    tensors, meta = read_safetensors(path)
    cfg = json.loads(meta["ditrt.config"])
    model = DiT.from_config(cfg)
    model.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in tensors.items()})
    return model.eval(), json.loads(meta.get("ditrt.sampling", "{}"))


def evaluate(model, w, b, steps, cfg_scale, seed, per_class=10):
    labels = np.repeat(np.arange(NUM_CLASSES), per_class)
    gen = torch.Generator().manual_seed(seed)
    samples = sample_ddpm(model, labels, steps, cfg_scale, lambda shape: torch.randn(shape, generator=gen))
    pred = classify(w, b, samples.clamp(-1, 1))
    per_digit = [(pred[labels == d] == d).mean() for d in range(NUM_CLASSES)]
    return samples, float((pred == labels).mean()), per_digit


def crosscheck_reference(model, steps, cfg_scale, seed=0):
    """Max |difference| between sample_ddpm (f32) and reference/samplers.py (f64, DiT guidance on
    channel 0) on one sample per digit driven by the same noise."""
    import copy

    from reference import samplers

    labels = torch.arange(NUM_CLASSES)
    gen = torch.Generator().manual_seed(seed)
    noises = [torch.randn(NUM_CLASSES, 1, 16, 16, generator=gen) for _ in range(steps)]
    it = iter(noises)
    ours = sample_ddpm(model, labels, steps, cfg_scale, lambda shape: next(it))
    m64 = copy.deepcopy(model).double()
    fn = samplers.guided(m64, labels, NULL_CLASS, kind="dit", scale=cfg_scale, channels=1)
    it64 = iter(n.double() for n in noises[1:])
    with torch.no_grad():
        ref = samplers.SpacedDiffusion(samplers.linear_betas(), steps).p_sample_loop(
            fn, noises[0].double(), lambda: next(it64))
    return float((ours.double() - ref).abs().max())


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    ap.add_argument("--out-dir", default=os.path.join(REPO, "models"))
    ap.add_argument("--train-steps", type=int, default=2000)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--hidden", type=int, default=MODEL["hidden_size"])
    ap.add_argument("--depth", type=int, default=MODEL["depth"])
    ap.add_argument("--heads", type=int, default=MODEL["num_heads"])
    ap.add_argument("--eval-only", action="store_true", help="reuse the written model, skip training")
    ap.add_argument("--sweep", action="store_true", help="also print accuracy over steps x cfg scales")
    ap.add_argument("--grid", default="/tmp/digits_grid.png")
    args = ap.parse_args()

    torch.set_num_threads(2)
    torch.manual_seed(args.seed)
    MODEL.update(hidden_size=args.hidden, depth=args.depth, num_heads=args.heads)
    os.makedirs(args.out_dir, exist_ok=True)
    dit_path = os.path.join(args.out_dir, "dit_digits.safetensors")
    clf_path = os.path.join(args.out_dir, "digits_classifier.safetensors")

    x, y = load_images()
    print(f"data: {tuple(x.shape)} in [{x.min():.2f}, {x.max():.2f}]", flush=True)

    w, b, clf_acc, n_test = train_classifier(x, y, args.seed)
    print(f"classifier: held-out accuracy {clf_acc:.4f} on {n_test} images", flush=True)
    write_safetensors(clf_path, {"weight": w, "bias": b})

    if args.eval_only:
        model, _ = load_model(dit_path)
        export_model(model, dit_path, SAMPLING)  # same tensors; refreshes "ditrt.sampling"
        model, _ = load_model(dit_path)
    else:
        model, secs, cpu = train(x, y, args.train_steps, args.batch, args.lr, args.seed)
        print(f"training: {args.train_steps} steps x batch {args.batch}: wall {secs:.1f}s ({secs / 60:.1f} min), "
              f"process CPU {cpu:.1f}s over {torch.get_num_threads()} threads", flush=True)
        model.eval()
        export_model(model, dit_path, SAMPLING)
        model, _ = load_model(dit_path)  # check what was written
    n_params = sum(p.numel() for p in model.state_dict().values())
    print(f"model: {json.dumps(model.config)}  {n_params} parameters  "
          f"{os.path.getsize(dit_path)} bytes", flush=True)

    if args.sweep:
        # Even step counts only: with K - 1 odd, i * 999 / (K - 1) is never a half, so DiT's
        # half-to-even rounding and a half-away-from-zero round pick the same timesteps.
        for steps in (10, 20, 30, 50, 100):
            for s in (1.5, 2.0, 3.0, 4.0):
                _, acc, _ = evaluate(model, w, b, steps, s, seed=1000 + args.seed, per_class=20)
                print(f"sweep: steps {steps:3d} cfg {s:.1f}: accuracy {acc:.3f}", flush=True)

    steps, s = SAMPLING["steps"], SAMPLING["cfg_scale"]
    t0 = time.time()
    samples, acc, per_digit = evaluate(model, w, b, steps, s, seed=args.seed)
    print(f"check: ddpm {steps} steps, cfg {s}: accuracy {acc:.3f} ({time.time() - t0:.1f}s)  per digit "
          + " ".join(f"{d}:{a:.1f}" for d, a in enumerate(per_digit)), flush=True)
    write_png(args.grid, grid_image(samples, NUM_CLASSES, 10))
    print(f"grid: {args.grid}")
    _, acc2, per2 = evaluate(model, w, b, steps, s, seed=args.seed + 12345)
    print(f"check (second noise seed): accuracy {acc2:.3f}  per digit "
          + " ".join(f"{d}:{a:.1f}" for d, a in enumerate(per2)), flush=True)
    err = crosscheck_reference(model, steps, s)
    print(f"reference/samplers.py agrees with this sampler to {err:.2e} (max |diff|, f32 vs f64)")
    if min(acc, acc2) < 0.9 or err > 1e-2:
        print("FAIL: sampled accuracy below 90%", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
