#!/usr/bin/env python3
"""PyTorch baselines for `ditrt bench`: the reference backbones (archs/*/reference.py) timed in
eager mode (attention through F.scaled_dot_product_attention) and under torch.compile. Prints one JSON
line per (mode, batch) with exactly the fields of `ditrt bench --json` (src/bench.rs ForwardTiming).

  python3 weights-tools/bench_torch.py --arch dit --preset DiT-XL/2 --batch 2,8 --mode eager,compile
  python3 weights-tools/bench_torch.py --gemm 8192   # one matmul row: the device's GEMM peak
  python3 weights-tools/bench_torch.py --env         # {"env": {device, driver, torch, ...}}

Method, as src/bench.rs time_forward: every trained parameter drawn from N(0, 0.02) (weights.rs
RandomWeights; the fixed sin-cos tables stay), x ~ U[-1, 1), t ~ U[0, 999), y uniform class ids
(bench.rs random_session); warm-up forwards untimed; each timed forward starts on an idle device
and ends synchronised (ditrt times run + synchronize), CUDA events on GPU, perf_counter on CPU;
the median is reported; inputs rotate among --rotate pre-generated batches.

gflop_per_forward is ditrt's count (2 x ModelConfig::macs_per_image x batch), read from
--flops-from (compare_torch.sh's results: ditrt's rows for the same preset), so both sides
divide the same work; without it, torch's FlopCounterMode count of one forward.
"""

import argparse
import json
import statistics
import subprocess
import sys
import time

import torch
import torch.nn.functional as F

from archs.diffit import reference as diffit
from archs.dit.reference import DiT
from archs.tldm.reference import TLDM
from archs.uvit.reference import UViT
from reference import common

MODELS = {"dit": DiT, "uvit": UViT, "tldm": TLDM, "diffit": diffit.DiffiT}
DTYPES = {"f32": torch.float32, "bf16": torch.bfloat16, "f16": torch.float16}


class SdpaAttention(common.Attention):
    """common.Attention with softmax(q k^T / sqrt(d)) v through SDPA (same weights, same function)."""

    def forward(self, x):
        b, n, d = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(q, k, v)
        return self.proj(out.transpose(1, 2).reshape(b, n, d))


class SdpaTMSA(diffit.TMSA):
    """diffit.TMSA through SDPA, its relative-position bias as the additive attn_mask."""

    def forward(self, x, c):
        b, n, d = x.shape
        qkv = self.qkv(x) + self.qkv_temb(c)[:, None, :]
        q, k, v = qkv.reshape(b, n, 3, self.num_heads, d // self.num_heads).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=self.bias()[None])
        return self.proj(out.transpose(1, 2).reshape(b, n, d))


SDPA = {common.Attention: SdpaAttention, diffit.TMSA: SdpaTMSA}


def use_sdpa(model):
    """Swap the hand-written attention modules for their SDPA subclasses, in place."""
    for m in model.modules():
        if type(m) in SDPA:
            m.__class__ = SDPA[type(m)]
    return model


def build(arch, preset):
    """The reference model of one of ditrt's preset names (src/models/*.rs `preset`): DiT, TLDM
    and DiffiT take an optional -256/-512 resolution suffix (latent = res / 8, default 256);
    U-ViT's name a released config."""
    cls = MODELS[arch]
    presets = sys.modules[cls.__module__].PRESETS
    name, res = preset, 256
    head, _, tail = preset.rpartition("-")
    if tail in ("256", "512") and head in presets:
        name, res = head, int(tail)
    if name not in presets:
        raise SystemExit(f"bench_torch: unknown {arch} preset {preset!r} (known: {', '.join(presets)})")
    return cls.from_preset(name) if arch == "uvit" else cls.from_preset(name, input_size=res // 8)


def randomise(model, seed):
    """RandomWeights: N(0, 0.02) for every trained parameter; fixed tables (requires_grad=False) kept."""
    gen = torch.Generator(device=next(model.parameters()).device).manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:
                p.copy_(torch.randn(p.shape, generator=gen, device=p.device) * 0.02)
    return model.requires_grad_(False).eval()


def random_inputs(cfg, batch, count, device, dtype, seed):
    """`count` (x, t, y) batches as bench.rs random_session draws them (y None if unconditional)."""
    gen = torch.Generator().manual_seed(seed)
    s, c = cfg.get("input_size", cfg.get("img_size")), cfg.get("in_channels", cfg.get("in_chans"))
    k = cfg["num_classes"]
    out = []
    for _ in range(count):
        x = torch.rand(batch, c, s, s, generator=gen) * 2 - 1
        t = torch.rand(batch, generator=gen) * 999
        y = torch.randint(0, k, (batch,), generator=gen).to(device) if k else None
        out.append((x.to(device, dtype), t.to(device), y))
    return out


def time_calls(fn, inputs, warmup, iters, cuda):
    """Sorted ms of `iters` calls after `warmup` untimed ones, cycling through `inputs`."""
    for i in range(warmup):
        fn(*inputs[i % len(inputs)])
    if cuda:
        torch.cuda.reset_peak_memory_stats()  # peak_mib: the timed forwards, not compilation
    times = []
    for i in range(iters):
        args = inputs[i % len(inputs)]
        if cuda:
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            torch.cuda.synchronize()
            start.record()
            fn(*args)
            end.record()
            end.synchronize()
            times.append(start.elapsed_time(end))
        else:
            t0 = time.perf_counter()
            fn(*args)
            times.append((time.perf_counter() - t0) * 1e3)
    return sorted(times)


def timing_row(model, backend, dtype, batch, times, gflop, cuda):
    """The ForwardTiming fields (src/bench.rs), in its order."""
    median = statistics.median(times)
    return {"model": model, "backend": backend, "dtype": dtype, "batch": batch, "iters": len(times),
            "ms_per_forward": median, "ms_min": times[0], "images_per_s": batch / (median / 1e3),
            "gflop_per_s": gflop / (median / 1e3), "gflop_per_forward": gflop, "arena_mib": 0.0,
            "peak_mib": torch.cuda.max_memory_allocated() / 2**20 if cuda else 0.0}


def ditrt_gflop_per_image(path, preset):
    """ditrt's gflop_per_forward / batch for `preset` from compare_torch.sh's results lines
    ({"preset": P, "row": <ditrt bench --json>}), or None."""
    with open(path) as f:
        for line in f:
            rec = json.loads(line)
            row = rec.get("row", {})
            if rec.get("preset") == preset and not row["backend"].startswith("torch"):
                return row["gflop_per_forward"] / row["batch"]
    return None


def counted_gflop_per_image(model, inputs):
    """torch's own count (matmuls, convs, SDPA) of one forward, per image."""
    from torch.utils.flop_counter import FlopCounterMode
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(*inputs[0])
    return counter.get_total_flops() / 1e9 / inputs[0][0].shape[0]


def device_name(device):
    return torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu, {torch.get_num_threads()} threads"


def env(device):
    """Device facts for the report header."""
    driver = "-"
    if device.type == "cuda":
        try:
            q = ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"]
            driver = subprocess.run(q, capture_output=True, text=True, check=True).stdout.split("\n")[0].strip()
        except (OSError, subprocess.CalledProcessError):
            pass
    return {"device": device_name(device), "driver": driver, "torch": torch.__version__,
            "cuda": torch.version.cuda if device.type == "cuda" else "-", "cpu_threads": torch.get_num_threads()}


def bench_gemm(args, device, dtype, cuda):
    """One N^3 matmul per timed call (on CUDA that is cuBLAS): the peak the backbones are read against."""
    n = args.gemm
    gen = torch.Generator().manual_seed(0)
    pairs = [tuple(torch.randn(n, n, generator=gen).to(device, dtype) for _ in range(2)) for _ in range(2)]
    times = time_calls(torch.matmul, pairs, args.warmup, args.iters, cuda)
    backend = f"torch-matmul ({device_name(device)})"
    return timing_row(f"matmul {n}^3", backend, args.dtype, 1, times, 2 * n**3 / 1e9, cuda)


def bench_model(args, device, dtype, cuda):
    """Rows for every (mode, batch); out-of-memory ones are skipped with a note on stderr."""
    model = use_sdpa(randomise(build(args.arch, args.preset).to(device, dtype), args.seed))
    gflop_img = ditrt_gflop_per_image(args.flops_from, args.preset) if args.flops_from else None
    for batch in args.batch:
        inputs = random_inputs(model.config, batch, args.rotate, device, dtype, args.seed + batch)
        if gflop_img is None:
            gflop_img = counted_gflop_per_image(model, inputs)
            print(f"bench_torch: {args.preset}: no ditrt count, FlopCounterMode's {gflop_img:.1f} GFLOP/image", file=sys.stderr)
        for mode in args.mode:
            fn, label = model, "eager"
            if mode == "compile":
                torch._dynamo.reset()  # a fresh static-shape graph per batch (no automatic dynamic shapes)
                fn, label = torch.compile(model, mode=args.compile_mode, dynamic=False), args.compile_mode
            if cuda:
                torch.cuda.empty_cache()

            def call(x, t, y):
                if mode == "compile" and cuda:
                    torch.compiler.cudagraph_mark_step_begin()  # max-autotune replays CUDA graphs
                return fn(x, t, y)

            # CUDA graph trees record on the 2nd call and replay from the 3rd: keep both untimed.
            warmup = max(args.warmup, 3) if mode == "compile" and cuda else args.warmup
            try:
                with torch.no_grad():
                    times = time_calls(call, inputs, warmup, args.iters, cuda)
            except torch.OutOfMemoryError:
                print(f"bench_torch: {args.preset} {mode} batch {batch}: out of memory, skipped", file=sys.stderr)
                continue
            backend = f"torch-{mode} ({device_name(device)}" + (f", {label})" if mode == "compile" else ")")
            print(json.dumps(timing_row(args.preset, backend, args.dtype, batch, times, gflop_img * batch, cuda)), flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--arch", choices=sorted(MODELS), default="dit")
    ap.add_argument("--preset", default="DiT-S/2", help="ditrt's preset name (ditrt bench --preset)")
    ap.add_argument("--batch", type=lambda s: [int(b) for b in s.split(",")], default=[1], help="comma list")
    ap.add_argument("--mode", type=lambda s: s.split(","), default=["eager", "compile"], help="eager,compile")
    ap.add_argument("--compile-mode", default="max-autotune", help="torch.compile mode (default: max-autotune)")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--dtype", choices=sorted(DTYPES), help="default bf16 on CUDA, f32 on CPU")
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--iters", type=int, default=20)
    ap.add_argument("--rotate", type=int, default=4, help="pre-generated input batches cycled through")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--flops-from", help="compare_torch.sh results file holding ditrt's rows")
    ap.add_argument("--gemm", type=int, metavar="N", help="time an N^3 matmul instead of a model")
    ap.add_argument("--env", action="store_true", help="print the device facts and exit")
    args = ap.parse_args()
    device = torch.device(args.device)
    cuda = device.type == "cuda"
    args.dtype = args.dtype or ("bf16" if cuda else "f32")
    dtype = DTYPES[args.dtype]
    if args.env:
        print(json.dumps({"env": env(device)}))
    elif args.gemm:
        print(json.dumps(bench_gemm(args, device, dtype, cuda)))
    else:
        bench_model(args, device, dtype, cuda)


if __name__ == "__main__":
    main()
