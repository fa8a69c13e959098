#!/usr/bin/env bash
# The WGSL access table (issue 18): every shader at a shape of the released models, one workgroup
# of each dispatch replayed from naga's parse of the very source the backend builds
# (src/backend/wgpu/access_model/): workgroup-memory bank conflicts and storage sectors per
# request. Prints the model's own tests, then the table (kept in docs/WGSL-STATUS.md). No GPU
# or adapter needed.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$SECONDS
out="$(cargo test --release --lib backend::wgpu::access_model -- --include-ignored --nocapture 2>&1)" || { echo "$out" >&2; exit 1; }
grep -E "^test |test result" <<<"$out"
echo "== access model: $((SECONDS - start)) s"
grep -E '^(\||== static)' <<<"$out"
