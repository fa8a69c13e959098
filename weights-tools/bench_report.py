#!/usr/bin/env python3
"""Markdown tables from scripts/compare_torch.sh's results (JSON lines) -> docs/BENCHMARKS.md.

  python3 weights-tools/bench_report.py RESULTS.jsonl [--command CMD] [--setting K=V ...] [--out F.md]

Lines: {"env": {...}} (bench_torch.py --env), {"gemm": ROW} (bench_torch.py --gemm), and
{"preset": P, "row": ROW} with ROW a `ditrt bench --json` or bench_torch.py line (the fields of
src/bench.rs ForwardTiming). The system is read off ROW["backend"]: "torch-eager (...)",
"torch-compile (...)", anything else is ditrt. Torch-free.
"""

import argparse
import datetime
import json
import math

SYSTEMS = ("ditrt", "torch-eager", "torch-compile")
NONE = "—"


def system(row):
    return next((s for s in SYSTEMS[1:] if row["backend"].startswith(s)), "ditrt")


def num(v):
    """Three significant digits, no exponent."""
    if not v:
        return "0"
    return f"{v:.{max(0, 2 - math.floor(math.log10(abs(v))))}f}"


def read(path):
    env, gemm, rows = {}, None, {}  # rows: (preset, batch) -> {system: row}, in file order
    with open(path) as f:
        for line in f:
            rec = json.loads(line)
            if "env" in rec:
                env = rec["env"]
            elif "gemm" in rec:
                gemm = rec["gemm"]
            else:
                row = rec["row"]
                rows.setdefault((rec["preset"], row["batch"]), {})[system(row)] = row
    presets = list(dict.fromkeys(p for p, _ in rows))  # in order of first appearance
    return env, gemm, dict(sorted(rows.items(), key=lambda kv: (presets.index(kv[0][0]), kv[0][1])))


def backend(rows, name):
    """The backend string of system `name`'s first row."""
    return next((s[name]["backend"] for s in rows.values() if name in s), NONE)


def ratio(rows, other):
    """How many times faster ditrt is than `other` (its ms / ditrt's ms)."""
    if "ditrt" in rows and other in rows:
        return f"{rows[other]['ms_per_forward'] / rows['ditrt']['ms_per_forward']:.2f}×"
    return NONE


def report(env, gemm, rows, command, settings):
    peak = gemm["gflop_per_s"] if gemm else None
    first = next((r for sys_rows in rows.values() for r in sys_rows.values()), {})
    out = [
        "# Benchmarks: ditrt vs PyTorch on the same device",
        "",
        f"Written by `{command}`; do not edit by hand.",
        "",
        "| | |",
        "| --- | --- |",
        f"| device | {env.get('device', NONE)} |",
        f"| driver | {env.get('driver', NONE)} |",
        f"| torch | {env.get('torch', NONE)}" + (f" (CUDA {env['cuda']})" if env.get("cuda", "-") != "-" else "") + " |",
        *[f"| {k} | {v} |" for k, v in (kv.split("=", 1) for kv in settings)],
        f"| date | {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC |",
        f"| dtype | {first.get('dtype', NONE)} |",
        f"| ditrt backend | {backend(rows, 'ditrt')} |",
        f"| torch.compile | {backend(rows, 'torch-compile')} |",
        f"| GEMM peak ({gemm['model']} {gemm['dtype']}, torch.matmul) | {num(peak / 1e3)} TFLOP/s |" if gemm else "| GEMM peak | not measured |",
        "",
        "Method: random weights N(0, 0.02) and inputs as `ditrt bench` draws them; warm-up excluded; "
        "each timed forward starts on an idle device and ends synchronised (CUDA events on GPU); the "
        "median of the timed forwards (torch cycles through pre-generated input batches). TFLOP/s = "
        "2 × multiply-adds (ditrt's `macs_per_image` count for both sides) / median time. "
        "Torch's attention is `F.scaled_dot_product_attention` (archs/*/reference.py through bench_torch.py).",
        "",
        "## ditrt speed-up (torch ms / ditrt ms; above 1: ditrt is faster)",
        "",
        "| model | batch | ditrt ms | eager ms | compile ms | vs eager | vs compile |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    ms = lambda s, k: num(s[k]["ms_per_forward"]) if k in s else NONE  # noqa: E731
    for (preset, batch), s in rows.items():
        out.append(f"| {preset} | {batch} | {ms(s, 'ditrt')} | {ms(s, 'torch-eager')} | {ms(s, 'torch-compile')} "
                   f"| {ratio(s, 'torch-eager')} | {ratio(s, 'torch-compile')} |")
    out += ["", "## Every run", "",
            "| model | batch | system | ms/forward | min ms | images/s | TFLOP/s | of GEMM peak | peak MiB |",
            "| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for (preset, batch), s in rows.items():
        for k in SYSTEMS:
            if k not in s:
                continue
            r = s[k]
            frac = f"{num(100 * r['gflop_per_s'] / peak)}%" if peak else NONE
            out.append(f"| {preset} | {batch} | {k} | {num(r['ms_per_forward'])} | {num(r['ms_min'])} "
                       f"| {num(r['images_per_s'])} | {num(r['gflop_per_s'] / 1e3)} | {frac} "
                       f"| {num(r['peak_mib']) if r['peak_mib'] else NONE} |")
    out += ["", f"{NONE}: no result (failed or out of memory: see the script's stderr). "
            "peak MiB: ditrt's planned weights + arena; torch's `max_memory_allocated` over the timed forwards."]
    return "\n".join(out) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("results")
    ap.add_argument("--command", default="scripts/compare_torch.sh")
    ap.add_argument("--setting", action="append", default=[], metavar="K=V", help="a header row")
    ap.add_argument("--out", help="markdown file (default: stdout)")
    args = ap.parse_args()
    text = report(*read(args.results), args.command, args.setting)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)
    else:
        print(text, end="")


if __name__ == "__main__":
    main()
