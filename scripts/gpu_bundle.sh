#!/usr/bin/env bash
# Builds, HERE, what a GPU machine needs to test and time the CUDA backend without Rust, into
# gpu-bundle/ (git-ignored; the device tool carries it with `carry: ["gpu-bundle"]`):
#   bin.tar.xz     three stripped release binaries (features cuda,wgpu), xz-compressed together
#                  (they share the library and the bundled models, which one xz stream stores
#                  once): integration (the test binary), ops (the per-op benchmark, benches/ops.rs;
#                  gpu_run.sh runs its CUDA rows) and ditrt (the CLI)
#   manifest_dir   the repository path compiled into the binaries (the tests read tests/fixtures,
#                  models/ and src/ under it: gpu_run.sh links it to the checkout there)
#   cli_path       where the test binary runs the CLI from (cargo's CARGO_BIN_EXE_ditrt:
#                  gpu_run.sh puts the CLI there)
#   gpu_run.sh, BUILD-INFO
# Fixtures and models are not copied: they travel with the working tree. The cubins and PTX of
# every kernel are embedded in the binaries (build.rs with the pinned wheels,
# scripts/cuda_wheels.sh). The features are CI's CUDA step's (.ci/run), so there the binaries
# are already built and only the benchmark is compiled here.
# Fails if the bundle plus the working tree that travels with it exceed LIMIT_MIB (48: the device
# tool takes 64 MiB in all, and the rest is room to grow); CI runs this as that check.
set -euo pipefail
cd "$(dirname "$0")/.."

LIMIT_MIB=48
# Installs the wheels where build.rs looks by default (DITRT_CUDA_WHEELS is not exported: a
# value the earlier builds did not see would rebuild the library).
wheels="$(scripts/cuda_wheels.sh)"
features=(--features cuda,wgpu)

# The executable cargo reports for target `$1` in the JSON messages on stdin.
executable() {
  grep "\"name\":\"$1\"" | grep -o '"executable":"[^"]*"' | tail -n 1 | cut -d'"' -f4
}

echo "== building (release, --features cuda,wgpu)"
# Building the integration test builds the CLI it runs, too.
messages="$(cargo test --release "${features[@]}" --no-run --test integration --message-format=json)"
tests="$(executable integration <<<"$messages")"
cli="$(executable ditrt <<<"$messages")"
bench="$(cargo bench "${features[@]}" --no-run --bench ops --message-format=json | executable ops)"
[[ -x "$tests" && -x "$cli" && -x "$bench" ]] || { echo "gpu_bundle: cargo reported no test, CLI or bench executable" >&2; exit 1; }

rm -rf gpu-bundle
staging="$(mktemp -d)"
trap 'rm -rf "$staging"' EXIT
mkdir -p gpu-bundle
cp "$tests" "$staging/integration"
cp "$bench" "$staging/ops"
cp "$cli" "$staging/ditrt"
strip "$staging"/*
du -b "$staging"/* | awk '{ n = split($2, p, "/"); printf "  %-12s %6.1f MiB stripped\n", p[n], $1 / 1048576 }'
echo "== compressing (xz -9: one stream, so what the binaries share is stored once)"
tar -C "$staging" -cf - integration ops ditrt | xz -9 -T1 >gpu-bundle/bin.tar.xz
pwd >gpu-bundle/manifest_dir
echo "$cli" >gpu-bundle/cli_path
cp scripts/gpu_run.sh gpu-bundle/
{
  echo "built $(date -u +%FT%TZ) from $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- src kernels build.rs || echo '+changes')"
  echo "NVRTC wheels: $(cat "$wheels/.ditrt-pins" 2>/dev/null || echo "$wheels")"
} >gpu-bundle/BUILD-INFO

bundle_bytes=$(du -sb gpu-bundle | cut -f1)
tree_bytes=$(git ls-files -z --cached --others --exclude-standard | du -cb --files0-from=- 2>/dev/null | tail -n 1 | cut -f1)
awk -v b="$bundle_bytes" -v t="$tree_bytes" -v l="$LIMIT_MIB" 'BEGIN {
  printf "== gpu-bundle: %.1f MiB; the working tree that travels: %.1f MiB; together %.1f MiB (limit %d MiB)\n", b / 1048576, t / 1048576, (b + t) / 1048576, l }'
if (( bundle_bytes + tree_bytes > LIMIT_MIB * 1048576 )); then
  echo "gpu_bundle: the bundle and the working tree exceed $LIMIT_MIB MiB (the device tool takes 64 MiB in all)" >&2
  exit 1
fi
