#!/usr/bin/env bash
# Builds, HERE, what a GPU machine needs to test and time the CUDA backend without Rust, into
# gpu-bundle/ (git-ignored; the device tool carries it with `carry: ["gpu-bundle"]`):
#   bin/integration        the integration test binary (release, features: cuda only)
#   bin/ops                the per-op benchmark (benches/ops.rs; gpu_run.sh runs its CUDA rows)
#   target/release/ditrt   the CLI (model benchmarks; the CLI tests run it from this path)
#   tests/fixtures/, models/   what the tests read
#   manifest_dir           the repository path compiled into the binaries (fixtures and the
#                          CLI are found under it: scripts/gpu_run.sh links it to the bundle)
# The cubins and PTX of every kernel are embedded in the binaries (build.rs with the pinned wheels,
# scripts/cuda_wheels.sh). Binaries are stripped. Fails if the bundle plus the working tree
# that travels with it exceed the device tool's 64 MiB.
set -euo pipefail
cd "$(dirname "$0")/.."

LIMIT_MIB=64
DITRT_CUDA_WHEELS="$(scripts/cuda_wheels.sh)"
export DITRT_CUDA_WHEELS
build=(--release --no-default-features --features cuda)

# The executable cargo reports for target `$1` in the JSON messages on stdin.
executable() {
  grep "\"name\":\"$1\"" | grep -o '"executable":"[^"]*"' | tail -n 1 | cut -d'"' -f4
}

echo "== building (release, --features cuda)"
cargo build "${build[@]}" --bin ditrt
tests="$(cargo test "${build[@]}" --no-run --test integration --message-format=json | executable integration)"
bench="$(cargo bench --no-default-features --features cuda --no-run --bench ops --message-format=json | executable ops)"
[[ -x "$tests" && -x "$bench" ]] || { echo "gpu_bundle: cargo reported no test or bench executable" >&2; exit 1; }

rm -rf gpu-bundle
mkdir -p gpu-bundle/bin gpu-bundle/target/release gpu-bundle/tests
cp "$tests" gpu-bundle/bin/integration
cp "$bench" gpu-bundle/bin/ops
cp target/release/ditrt gpu-bundle/target/release/ditrt
strip gpu-bundle/bin/* gpu-bundle/target/release/ditrt
cp -r tests/fixtures gpu-bundle/tests/
cp -r models gpu-bundle/
pwd >gpu-bundle/manifest_dir
cp scripts/gpu_run.sh gpu-bundle/
{
  echo "built $(date -u +%FT%TZ) from $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- src kernels build || echo '+changes')"
  echo "NVRTC wheels: $(cat "$DITRT_CUDA_WHEELS/.ditrt-pins" 2>/dev/null || echo "$DITRT_CUDA_WHEELS")"
} >gpu-bundle/BUILD-INFO

bundle_bytes=$(du -sb gpu-bundle | cut -f1)
tree_bytes=$(git ls-files -z --cached --others --exclude-standard | xargs -0 -r du -cb 2>/dev/null | tail -n 1 | cut -f1)
du -b gpu-bundle/bin/* gpu-bundle/target/release/ditrt | awk '{ printf "  %-32s %6.1f MiB\n", $2, $1 / 1048576 }'
awk -v b="$bundle_bytes" -v t="$tree_bytes" -v l="$LIMIT_MIB" 'BEGIN {
  printf "== gpu-bundle: %.1f MiB; with the working tree that travels: %.1f MiB (limit %d MiB)\n", b / 1048576, (b + t) / 1048576, l }'
if (( bundle_bytes + tree_bytes > LIMIT_MIB * 1048576 )); then
  echo "gpu_bundle: too large for the device tool" >&2
  exit 1
fi
