#!/usr/bin/env bash
# Runs THERE, on a GPU machine, from the repository root with gpu-bundle/ (scripts/gpu_bundle.sh)
# carried along, in one device-tool call:
#   run(command="bash scripts/gpu_run.sh", carry=["gpu-bundle"], timeout_s=600)
# No Rust is needed there. Steps, each under its own time limit (about 9 minutes in all at
# worst, inside the tool's 10), none stopping the others:
#   0. the binaries unpacked from gpu-bundle/bin.tar.xz, the repository path compiled into them
#      linked to this checkout (fixtures, models), the CLI put where the tests run it
#   1. environment: GPU, driver, the cuBLASLt found (cudarc looks for libcublasLt.so(.12); a
#      CUDA 13 machine has .so.13, linked here as libcublasLt.so in a folder put on the path)
#   2. every test of the integration binary with the CUDA backend alone (DITRT_BACKENDS=cuda):
#      ops against f64 references, models against the PyTorch fixtures, misuse errors
#   3. compute-sanitizer memcheck over the op tests (on the JIT-compiled PTX), racecheck over
#      those with shared memory
#   4. benchmarks: benches/ops.rs (per op, CUDA rows) and `ditrt bench` (DiT forwards, CUDA graphs)
#   5. a summary table, printed last
# `--check` stops after step 0, once the binaries have started (lists the tests, prints the
# CLI's version): no GPU needed, so it can be tried anywhere.
# Logs go to $OUT (the device tool brings back at most 8 files): env.txt, tests.log,
# memcheck.log, racecheck.log, cuda_ops.txt, model_bench.txt, summary.txt.
set -uo pipefail
cd "$(dirname "$0")/.."
[[ -d gpu-bundle ]] || cd ..  # also runs as gpu-bundle/gpu_run.sh
check=0
case "${1:-}" in
  "") ;;
  --check) check=1 ;;
  *) echo "usage: gpu_run.sh [--check]" >&2; exit 2 ;;
esac
bundle="$PWD/gpu-bundle"
[[ -f "$bundle/bin.tar.xz" ]] || { echo "gpu_run: no $bundle/bin.tar.xz: run scripts/gpu_bundle.sh here and carry gpu-bundle" >&2; exit 2; }

# 0. The binaries, where they look for what they read.
bin="$(mktemp -d)"
trap 'rm -rf "$bin"' EXIT
if command -v xz >/dev/null; then
  tar -C "$bin" -xJf "$bundle/bin.tar.xz"
else
  python3 -m tarfile -e "$bundle/bin.tar.xz" "$bin"  # Python's lzma when xz is not installed
fi || { echo "gpu_run: could not unpack $bundle/bin.tar.xz" >&2; exit 2; }
tests="$bin/integration"
cli="$bin/ditrt"
# The tests read fixtures, models and sources under the repository path they were built in and
# run the CLI from the path cargo built it at: make both lead here.
manifest="$(cat "$bundle/manifest_dir")"
if [[ ! -e "$manifest" ]]; then
  mkdir -p "$(dirname "$manifest")" && ln -s "$PWD" "$manifest"
fi
built_cli="$(cat "$bundle/cli_path")"
if [[ ! -x "$built_cli" ]]; then
  mkdir -p "$(dirname "$built_cli")" && cp "$cli" "$built_cli"
fi
if (( check )); then
  listed="$("$tests" --list 2>/dev/null | grep -c ': test$')"
  version="$("$cli" --version 2>&1)"
  if (( listed == 0 )) || [[ $version != ditrt* ]]; then
    echo "gpu_run --check: the binaries do not start ($listed tests listed; CLI: $version)" >&2
    exit 1
  fi
  echo "gpu_run --check: $listed tests listed, $version; $manifest -> $(readlink -f "$manifest"); CLI at $built_cli"
  exit 0
fi

OUT="${OUT:-$PWD/gpu-out}"
mkdir -p "$OUT"
summary="$OUT/summary.txt"
: >"$summary"

# Record one step: name, exit status, seconds, note.
record() { printf '%-22s %-8s %5ss  %s\n' "$1" "$([[ $2 == 0 ]] && echo ok || echo "FAIL($2)")" "$3" "$4" >>"$summary"; }
# The libtest result line of a log ("test result: ok. 40 passed; 0 failed; ...").
result_line() { grep -E '^test result:' "$1" | tail -n 1 | sed 's/; finished in.*//'; }

# 1. Environment, and a libcublasLt.so that cudarc's loader finds.
libs="$(mktemp -d)"
cublas=""
python_dirs="$(python3 -c 'import site
for d in site.getsitepackages(): print(d + "/nvidia/cublas/lib"); print(d + "/nvidia/cu13/lib")' 2>/dev/null)"
for dir in /usr/local/cuda/lib64 /usr/local/cuda-*/lib64 /usr/lib/x86_64-linux-gnu $python_dirs; do
  for lib in "$dir"/libcublasLt.so.12 "$dir"/libcublasLt.so.13 "$dir"/libcublasLt.so; do
    [[ -z "$cublas" && -e "$lib" ]] && cublas="$(readlink -f "$lib")"
  done
done
[[ -n "$cublas" ]] && ln -s "$cublas" "$libs/libcublasLt.so"
export LD_LIBRARY_PATH="$libs:/usr/local/nvidia/lib64:${LD_LIBRARY_PATH:-}"
{
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.mem --format=csv
  echo "cuBLASLt: ${cublas:-not found (GEMMs fall back to kernels/linear.cu)}"
  cat "$bundle/BUILD-INFO"
} >"$OUT/env.txt" 2>&1
cat "$OUT/env.txt"

export DITRT_BACKENDS=cuda

# 2. Every test with the CUDA backend.
start=$SECONDS
timeout 120 "$tests" --test-threads=4 --nocapture >"$OUT/tests.log" 2>&1
status=$?
cases="$(grep -c '^case: cuda' "$OUT/tests.log") op cases and $(grep -c ' on cuda' "$OUT/tests.log") model checks ran on cuda"
record "tests (cuda)" "$status" $((SECONDS - start)) "$(result_line "$OUT/tests.log"); $cases"
grep -E '^skipping cuda|panicked at' "$OUT/tests.log" | sort | uniq -c | head -n 20

# 3. compute-sanitizer: memcheck over every op test, racecheck over the kernels with shared memory.
# memcheck loads the PTX instead of the cubins (DITRT_CUDA_PTX=1), so the JIT fallback that
# devices without a matching cubin take runs here too.
if command -v compute-sanitizer >/dev/null; then
  start=$SECONDS
  DITRT_CUDA_PTX=1 timeout 100 compute-sanitizer --tool memcheck --error-exitcode 99 "$tests" ops:: --test-threads=1 >"$OUT/memcheck.log" 2>&1
  status=$?
  record "memcheck (ops)" "$status" $((SECONDS - start)) "$(grep -E 'ERROR SUMMARY' "$OUT/memcheck.log" | tail -n 1) $(result_line "$OUT/memcheck.log")"
  start=$SECONDS
  timeout 70 compute-sanitizer --tool racecheck --error-exitcode 99 "$tests" --test-threads=1 \
    ops::attention ops::layernorm ops::layernorm_modulate ops::group_norm ops::gemm ops::conv2d >"$OUT/racecheck.log" 2>&1
  status=$?
  record "racecheck (smem ops)" "$status" $((SECONDS - start)) "$(grep -E 'RACECHECK SUMMARY|ERROR SUMMARY' "$OUT/racecheck.log" | tail -n 1) $(result_line "$OUT/racecheck.log")"
else
  record "compute-sanitizer" 127 0 "not on this machine"
fi

# 4. Benchmarks.
start=$SECONDS
timeout 60 "$bin/ops" --bench --quick --backend cuda >"$OUT/cuda_ops.txt" 2>&1
record "bench cuda_ops" $? $((SECONDS - start)) "$(wc -l <"$OUT/cuda_ops.txt") lines"
cat "$OUT/cuda_ops.txt"
start=$SECONDS
: >"$OUT/model_bench.txt"
bench_status=0
for run in "DiT-XL/2 8 bf16" "DiT-XL/2 8 f32" "DiT-S/2 32 bf16"; do
  read -r preset batch dtype <<<"$run"
  timeout 60 "$cli" bench --backend cuda --preset "$preset" --batch "$batch" --dtype "$dtype" \
    --warmup 3 --iters 20 >>"$OUT/model_bench.txt" 2>&1 || bench_status=$?
done
record "bench models" "$bench_status" $((SECONDS - start)) "$(grep -c 'ms/forward' "$OUT/model_bench.txt") of 3 ran"
grep -E 'ms/forward|rror' "$OUT/model_bench.txt"

echo
echo "== summary (logs in \$OUT)"
cat "$summary"
