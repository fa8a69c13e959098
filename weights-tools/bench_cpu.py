#!/usr/bin/env python3
"""ditrt's CPU backend against PyTorch eager on the same cores, run alternately in one go;
writes docs/BENCHMARKS-CPU.md and the chart of its ratios, docs/benchmarks-cpu.png.

  cargo build --release && python3 weights-tools/bench_cpu.py            # ~10 min on 2 cores
  python3 weights-tools/bench_cpu.py --quick --out /tmp/cpu.md           # a smoke run

PyTorch runs what a user would run instead: diffusers' DiTTransformer2DModel and AutoencoderKL
(decode) where diffusers has the model, else this repo's reference models (U-ViT, DiffiT) with
attention through F.scaled_dot_product_attention (bench_torch.py). Every parameter is drawn
from N(0, 0.02) on both sides. Per case and round: `ditrt bench --json` in f32, then PyTorch
eager f32 in this process, then `ditrt bench --json` in bf16, then PyTorch eager with the model
and its float inputs in bf16 — so drift hits all four — and the reported time is the median
over the rounds of each side's median forward. GFLOP/s use ditrt's count (2 x multiply-adds)
for both. The peak is the faster of ditrt's GEMM (`ditrt bench --gemm 4096`) and torch.matmul
at 4096^3 in f32 (and in bf16 for the bf16 table), each run the same alternating way.
Goals (issue 15): ditrt f32 >= 1.3x PyTorch eager f32; ditrt bf16 >= 1.5x ditrt f32 where the
CPU has AVX-512-BF16.
"""

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import time

import torch

import bench_torch

# (label, ditrt arch, ditrt preset, batch, torch builder, timed forwards per round)
CASES = [
    ("DiT-S/2", "dit", "DiT-S/2", 1, "diffusers-dit", 20),
    ("DiT-S/2", "dit", "DiT-S/2", 8, "diffusers-dit", 5),
    ("DiT-XL/2", "dit", "DiT-XL/2", 1, "diffusers-dit", 3),
    ("U-ViT-H/2", "uvit", "U-ViT-H/2-ImageNet256", 1, "reference", 3),
    ("DiffiT-XL/2", "diffit", "DiffiT-XL/2", 1, "reference", 3),
    ("SD VAE decode 256 px", "vae", "SD-VAE-KL-f8", 1, "diffusers-vae", 3),
]
# diffusers DiT configs of ditrt's presets: (heads, head dim, layers).
DIT = {"DiT-S/2": (6, 64, 12), "DiT-XL/2": (16, 72, 28)}
GOAL_TORCH, GOAL_BF16 = 1.3, 1.5
GEMM_N = 4096


def randomise(model, seed=0):
    """N(0, 0.02) for every parameter, as ditrt's RandomWeights."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.02)
    return model.requires_grad_(False).eval()


def torch_case(builder, arch, preset, batch, dtype):
    """(forward callable, its input tuples) for one case, parameters and float inputs in `dtype`
    (timesteps stay f32, as a sampler passes them)."""
    gen = torch.Generator().manual_seed(1)
    if builder == "diffusers-dit":
        from diffusers import DiTTransformer2DModel
        heads, head_dim, layers = DIT[preset]
        model = randomise(DiTTransformer2DModel(num_attention_heads=heads, attention_head_dim=head_dim, in_channels=4, out_channels=8,
                                                num_layers=layers, patch_size=2, sample_size=32, num_embeds_ada_norm=1000)).to(dtype)
        inputs = [((torch.rand(batch, 4, 32, 32, generator=gen) * 2 - 1).to(dtype), torch.rand(batch, generator=gen) * 999,
                   torch.randint(0, 1000, (batch,), generator=gen)) for _ in range(4)]
        return (lambda x, t, y: model(hidden_states=x, timestep=t, class_labels=y).sample), inputs
    if builder == "diffusers-vae":
        from diffusers import AutoencoderKL
        vae = randomise(AutoencoderKL(in_channels=3, out_channels=3, latent_channels=4, layers_per_block=2, block_out_channels=(128, 256, 512, 512),
                                      down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4)).to(dtype)
        inputs = [(torch.randn(batch, 4, 32, 32, generator=gen).to(dtype),) for _ in range(4)]
        return (lambda z: vae.decode(z).sample), inputs
    model = bench_torch.use_sdpa(randomise(bench_torch.build(arch, preset))).to(dtype)
    return model, bench_torch.random_inputs(model.config, batch, 4, torch.device("cpu"), dtype, 1)


def time_torch(fn, inputs, warmup, iters):
    with torch.no_grad():
        times = bench_torch.time_calls(fn, inputs, warmup, iters, False)
    return statistics.median(times)


def ditrt_row(args, extra):
    """One `ditrt bench --json` run on the CPU backend."""
    cmd = [args.ditrt, "bench", "--backend", "cpu", "--json", *extra]
    env = dict(os.environ, RAYON_NUM_THREADS=str(args.threads))
    out = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if out.returncode != 0:
        raise SystemExit(f"bench_cpu: {' '.join(cmd)} failed: {out.stderr.strip()}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def cpu_facts():
    model, flags = platform.processor() or "unknown", set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name") and model in ("unknown", ""):
                    model = line.split(":", 1)[1].strip()
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    shown = [f for f in ("avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512_vnni", "avx512_bf16", "amx_bf16", "amx_tile") if f in flags]
    return model, shown, "avx512_bf16" in flags


def run(args):
    rounds, quick = args.rounds, args.quick
    cases = CASES[:1] if quick else CASES
    results = []
    gemm = {"ditrt f32": [], "ditrt bf16": [], "torch f32": [], "torch bf16": []}
    g = torch.Generator().manual_seed(0)
    n = 512 if quick else GEMM_N
    pairs = [tuple(torch.randn(n, n, generator=g) for _ in range(2)) for _ in range(2)]
    pairs_bf16 = [tuple(m.to(torch.bfloat16) for m in pair) for pair in pairs]
    for r in range(rounds):
        gemm["ditrt f32"].append(ditrt_row(args, ["--gemm", str(n), "--iters", "3", "--warmup", "1"])["ms_per_forward"])
        gemm["torch f32"].append(time_torch(torch.matmul, pairs, 1, 3))
        gemm["ditrt bf16"].append(ditrt_row(args, ["--gemm", str(n), "--iters", "3", "--warmup", "1", "--dtype", "bf16"])["ms_per_forward"])
        gemm["torch bf16"].append(time_torch(torch.matmul, pairs_bf16, 1, 3))
        print(f"bench_cpu: gemm {n}^3 round {r + 1}: " + ", ".join(f"{k} {v[-1]:.1f} ms" for k, v in gemm.items()), file=sys.stderr)
    gemm_gflop = 2 * n**3 / 1e9
    peaks = {k: gemm_gflop / (statistics.median(v) / 1e3) for k, v in gemm.items()}
    for label, arch, preset, batch, builder, iters in cases:
        iters = 2 if quick else iters
        fn, inputs = torch_case(builder, arch, preset, batch, torch.float32)
        fn_bf16, inputs_bf16 = torch_case(builder, arch, preset, batch, torch.bfloat16)
        common = ["--arch", arch, "--preset", preset, "--batch", str(batch), "--iters", str(iters), "--warmup", "1"]
        ours, theirs, ours_bf16, theirs_bf16, gflop = [], [], [], [], None
        for r in range(rounds):
            row = ditrt_row(args, common)
            gflop = row["gflop_per_forward"]
            ours.append(row["ms_per_forward"])
            theirs.append(time_torch(fn, inputs, 1, iters))
            ours_bf16.append(ditrt_row(args, common + ["--dtype", "bf16"])["ms_per_forward"])
            theirs_bf16.append(time_torch(fn_bf16, inputs_bf16, 1, iters))
            print(f"bench_cpu: {label} b{batch} round {r + 1}: ditrt {ours[-1]:.1f} ms, torch {theirs[-1]:.1f} ms, "
                  f"ditrt bf16 {ours_bf16[-1]:.1f} ms, torch bf16 {theirs_bf16[-1]:.1f} ms", file=sys.stderr)
        del fn, inputs, fn_bf16, inputs_bf16
        results.append({"case": label, "preset": preset, "batch": batch, "torch_model": builder, "gflop": gflop,
                        "ditrt_ms": statistics.median(ours), "torch_ms": statistics.median(theirs), "ditrt_bf16_ms": statistics.median(ours_bf16),
                        "torch_bf16_ms": statistics.median(theirs_bf16)})
    return results, peaks, n


def chart(results, has_bf16, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    labels = [f"{r['case']} b{r['batch']}" for r in results]
    vs_torch = [r["torch_ms"] / r["ditrt_ms"] for r in results]
    vs_f32 = [r["ditrt_ms"] / r["ditrt_bf16_ms"] for r in results]
    vs_torch_bf16 = [r["torch_bf16_ms"] / r["ditrt_bf16_ms"] for r in results]
    fig, ax = plt.subplots(figsize=(8, 0.9 * len(results) + 1.6))
    ys = range(len(results))
    ax.barh([y - 0.27 for y in ys], vs_torch, height=0.26, label="ditrt f32 / PyTorch eager f32 (goal 1.3x)", color="#3b75af")
    ax.barh(list(ys), vs_f32, height=0.26, label="ditrt bf16 / ditrt f32" + (" (goal 1.5x)" if has_bf16 else ""), color="#ef8636")
    ax.barh([y + 0.27 for y in ys], vs_torch_bf16, height=0.26, label="ditrt bf16 / PyTorch eager bf16", color="#8c8c8c")
    ax.axvline(GOAL_TORCH, color="#3b75af", ls="--", lw=1)
    if has_bf16:
        ax.axvline(GOAL_BF16, color="#ef8636", ls="--", lw=1)
    ax.axvline(1.0, color="black", lw=0.8)
    for y, ratios in enumerate(zip(vs_torch, vs_f32, vs_torch_bf16)):
        for dy, ratio in zip((-0.27, 0, 0.27), ratios):
            ax.text(ratio, y + dy, f" {ratio:.2f}x", va="center", fontsize=8)
    ax.set_yticks(list(ys), labels)
    ax.invert_yaxis()
    ax.set_xlim(0, max(vs_torch + vs_f32 + vs_torch_bf16 + [GOAL_BF16]) * 1.15)
    ax.set_xlabel("speed-up (higher is better; dashed: the goals)")
    ax.set_title("ditrt CPU backend: speed-up over PyTorch eager, and bf16 over f32")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.12 - 0.6 / len(results)), ncol=2, fontsize=8, frameon=False)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def report(args, results, peaks, n):
    model, flags, has_bf16 = cpu_facts()
    peak, peak_bf16 = max(peaks["ditrt f32"], peaks["torch f32"]), max(peaks["ditrt bf16"], peaks["torch bf16"])
    commit = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], capture_output=True, text=True).stdout.strip() or "unknown"
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True).stdout.strip()
    try:
        import diffusers
        diffusers_version = diffusers.__version__
    except ImportError:
        diffusers_version = "not installed"
    chart_name = os.path.basename(args.chart)
    lines = [
        "# CPU backend against PyTorch eager",
        "",
        f"![speed-ups]({chart_name})",
        "",
        f"Written by `python3 weights-tools/bench_cpu.py` on {datetime.date.today().isoformat()}: {model}, {args.threads} threads "
        f"(ditrt: RAYON_NUM_THREADS; torch.set_num_threads), flags {' '.join(flags)}; torch {torch.__version__}, diffusers "
        f"{diffusers_version}; ditrt commit {commit}{' (with uncommitted changes)' if dirty else ''}; {args.rounds} alternating rounds per case.",
        "",
        f"Measured peak: a {n}^3 GEMM — ditrt f32 {peaks['ditrt f32']:.0f} GFLOP/s, torch.matmul f32 {peaks['torch f32']:.0f} GFLOP/s, "
        f"ditrt bf16 {peaks['ditrt bf16']:.0f} GFLOP/s, torch.matmul bf16 {peaks['torch bf16']:.0f} GFLOP/s. The f32 peak below is the "
        f"faster f32 one ({peak:.0f} GFLOP/s), the bf16 peak the faster bf16 one ({peak_bf16:.0f} GFLOP/s).",
        "",
        "| case | batch | PyTorch model | GFLOP | ditrt f32 ms | GFLOP/s | of peak | PyTorch f32 ms | GFLOP/s | of peak | ditrt / PyTorch |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in results:
        ours, theirs = r["gflop"] / (r["ditrt_ms"] / 1e3), r["gflop"] / (r["torch_ms"] / 1e3)
        ratio = r["torch_ms"] / r["ditrt_ms"]
        mark = "" if ratio >= GOAL_TORCH else " (below 1.3x)"
        lines.append(f"| {r['case']} | {r['batch']} | {r['torch_model']} | {r['gflop']:.1f} | {r['ditrt_ms']:.1f} | {ours:.0f} | {ours / peak:.0%} | "
                     f"{r['torch_ms']:.1f} | {theirs:.0f} | {theirs / peak:.0%} | **{ratio:.2f}x**{mark} |")
    if any(r["gflop"] / (min(r["torch_ms"], r["ditrt_ms"]) / 1e3) > peak for r in results):
        lines += ["", "A share above 100% (the VAE): GFLOP counts a direct convolution's multiply-adds. ditrt's 3x3 convolutions "
                  "run as Winograd F(4x4,3x3), a quarter of those multiply-adds; PyTorch's run through oneDNN's direct convolution, "
                  "faster than either 4096^3 GEMM here."]
    lines += ["", "bf16 storage (f32 accumulation; AMX `tdpbf16ps` tiles where the CPU has AMX, else `vdpbf16ps` where it has "
              "AVX-512-BF16) against ditrt's own f32, and against PyTorch eager with its model in bf16:", "",
              "| case | batch | ditrt f32 ms | ditrt bf16 ms | GFLOP/s | of bf16 peak | bf16 / f32 | PyTorch bf16 ms | ditrt / PyTorch bf16 |",
              "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in results:
        ratio, bf16_rate = r["ditrt_ms"] / r["ditrt_bf16_ms"], r["gflop"] / (r["ditrt_bf16_ms"] / 1e3)
        mark = "" if ratio >= GOAL_BF16 or not has_bf16 else " (below 1.5x)"
        lines.append(f"| {r['case']} | {r['batch']} | {r['ditrt_ms']:.1f} | {r['ditrt_bf16_ms']:.1f} | {bf16_rate:.0f} | {bf16_rate / peak_bf16:.0%} | "
                     f"**{ratio:.2f}x**{mark} | {r['torch_bf16_ms']:.1f} | {r['torch_bf16_ms'] / r['ditrt_bf16_ms']:.2f}x |")
    if any(r["preset"] == "SD-VAE-KL-f8" for r in results):
        lines += ["", "The VAE's 3x3 convolutions multiply in f32 under bf16 storage too: Winograd products of bf16-rounded "
                  "transforms exceed the bf16 tolerance at 512 channels (simulated at 1.1x), and bf16 x bf16 products without "
                  "Winograd (4x the multiply-adds at twice the rate) are slower than f32 Winograd. bf16 saves only memory traffic there."]
    lines += ["", "Method: " + " ".join(__doc__.split("\n\n")[2].split()), ""]
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    with open(args.out, "w") as f:
        f.write("\n".join(lines))
    chart(results, has_bf16, args.chart)
    with open(os.path.splitext(args.out)[0] + ".json", "w") as f:
        json.dump({"peaks_gflops": peaks, "cases": results}, f, indent=1)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ditrt", default="target/release/ditrt")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="one case, small GEMM, 2 forwards: checks the script")
    ap.add_argument("--out", default="docs/BENCHMARKS-CPU.md")
    ap.add_argument("--chart", help="default: --out's name in lower case as .png beside it (docs/benchmarks-cpu.png)")
    args = ap.parse_args()
    out_stem = os.path.splitext(os.path.basename(args.out))[0].lower()
    args.chart = args.chart or os.path.join(os.path.dirname(args.out), out_stem + ".png")
    torch.set_num_threads(args.threads)
    if not os.access(args.ditrt, os.X_OK):
        raise SystemExit(f"bench_cpu: no ditrt binary at {args.ditrt} (cargo build --release)")
    started = time.time()
    results, peaks, n = run(args)
    report(args, results, peaks, n)
    print(f"bench_cpu: wrote {args.out} and {args.chart} in {time.time() - started:.0f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
