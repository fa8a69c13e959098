#!/usr/bin/env bash
# ditrt vs PyTorch (eager with SDPA, and torch.compile) on this machine's device, in one go:
#   scripts/compare_torch.sh [--smoke] [--out docs/BENCHMARKS.md]
# For every preset and batch: `ditrt bench --json`, then weights-tools/bench_torch.py (eager and
# compile, same dtype, ditrt's FLOP count); once: the device's torch.matmul GEMM peak. Raw rows
# go to OUT with .jsonl for .md; weights-tools/bench_report.py writes the markdown.
# The real table needs a GPU (ditrt built with --features cuda, e.g. scripts/gpu_bundle.sh).
# --smoke: small presets, batch 1-2, 2 iterations, compile mode "default" (a CPU check).
# Env: DITRT (binary; target/release/ditrt), PRESETS ("arch:preset[:b,b] ..."), BATCHES (b,b,..),
#      ITERS, WARMUP, DTYPE (bf16 on CUDA, f32 on CPU), BACKEND (ditrt's: cuda or cpu), MODES
#      (eager,compile), COMPILE_MODE (max-autotune), GEMM_N, PYTHON, DITRT_COMMIT (without .git).
set -euo pipefail
cd "$(dirname "$0")/.."

out=docs/BENCHMARKS.md
smoke=0
while [[ $# -gt 0 ]]; do
  case "$1" in
    --smoke) smoke=1 ;;
    --out) out="$2"; shift ;;
    -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
    *) echo "compare_torch: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done

py="${PYTHON:-python3}"
ditrt="${DITRT:-target/release/ditrt}"
[[ -x "$ditrt" ]] || { echo "compare_torch: no ditrt binary at $ditrt (cargo build --release [--features cuda], or set DITRT)" >&2; exit 2; }
cuda=$("$py" -c 'import torch; print(int(torch.cuda.is_available()))')
if [[ $cuda == 1 ]]; then dev=cuda dtype=bf16 gemm_n=8192; else dev=cpu dtype=f32 gemm_n=1024; fi
if [[ $smoke == 1 ]]; then
  presets="dit:DiT-S/2 uvit:U-ViT-S/2-CIFAR10 tldm:TLDM-S/2 diffit:DiffiT-XL/2:1" batches=1,2 iters=2 warmup=1 cmode=default
else
  presets="dit:DiT-XL/2 dit:DiT-XL/2-512 uvit:U-ViT-H/2-ImageNet256 diffit:DiffiT-XL/2 tldm:TLDM-XL/2"
  batches=2,8,64,256 iters=50 warmup=5 cmode=max-autotune
fi
presets="${PRESETS:-$presets}" batches="${BATCHES:-$batches}" iters="${ITERS:-$iters}" warmup="${WARMUP:-$warmup}"
dtype="${DTYPE:-$dtype}" backend="${BACKEND:-$dev}" modes="${MODES:-eager,compile}" cmode="${COMPILE_MODE:-$cmode}"
if commit=$(git rev-parse --short=12 HEAD 2>/dev/null); then
  git diff --quiet HEAD -- 2>/dev/null || commit="$commit (with uncommitted changes)"
else
  commit="${DITRT_COMMIT:-unknown}"
fi

raw="${out%.md}.jsonl"
mkdir -p "$(dirname "$out")"
bt=(weights-tools/bench_torch.py --device "$dev" --dtype "$dtype" --warmup "$warmup" --iters "$iters")
# {"preset": P, "row": <line>} for each line on stdin.
tag() { while IFS= read -r row; do printf '{"preset":"%s","row":%s}\n' "$1" "$row"; done; }

"$py" weights-tools/bench_torch.py --device "$dev" --env >"$raw"
echo "compare_torch: GEMM peak (${GEMM_N:-$gemm_n}^3 $dtype)" >&2
if gemm=$("$py" "${bt[@]}" --gemm "${GEMM_N:-$gemm_n}"); then
  printf '{"gemm":%s}\n' "$gemm" >>"$raw"
else
  echo "compare_torch: GEMM peak failed (the table goes without it)" >&2
fi
for entry in $presets; do
  IFS=: read -r arch preset bs <<<"$entry"
  bs="${bs:-$batches}"
  for b in ${bs//,/ }; do
    echo "compare_torch: ditrt $preset batch $b" >&2
    "$ditrt" bench --arch "$arch" --preset "$preset" --batch "$b" --backend "$backend" --dtype "$dtype" \
      --warmup "$warmup" --iters "$iters" --json | tag "$preset" >>"$raw" || echo "compare_torch: ditrt $preset batch $b failed" >&2
  done
  echo "compare_torch: torch $modes $preset batch $bs" >&2
  "$py" "${bt[@]}" --arch "$arch" --preset "$preset" --batch "$bs" --mode "$modes" --compile-mode "$cmode" \
    --flops-from "$raw" | tag "$preset" >>"$raw" || echo "compare_torch: torch $preset failed" >&2
done
"$py" weights-tools/bench_report.py "$raw" --out "$out" --command "scripts/compare_torch.sh$([[ $smoke == 1 ]] && echo ' --smoke')" \
  --setting "ditrt commit=$commit" --setting "forwards per row=$warmup warm-up + $iters timed" --setting "presets=$presets"
echo "compare_torch: wrote $out (raw rows: $raw)" >&2
