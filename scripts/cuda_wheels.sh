#!/usr/bin/env bash
# Installs the pinned CUDA 12.9 compiler wheels from PyPI into one folder and prints it:
#   nvidia-cuda-nvrtc-cu12==12.9.86  NVRTC, which compiles kernels/*.cu to PTX (build.rs)
#   nvidia-cuda-nvcc-cu12==12.9.86   ptxas, which assembles that PTX for sm_80/sm_90 (scripts/check_kernels.sh)
# The folder is $DITRT_CUDA_WHEELS, default target/cuda-wheels (where ptx_build/toolchain.rs looks).
# nvidia-cuda-runtime-cu12 (CUDA's headers) is not needed: the kernels include no CUDA header.
# Does nothing when the folder already holds these pins.
set -euo pipefail
cd "$(dirname "$0")/.."

dest="${DITRT_CUDA_WHEELS:-$PWD/target/cuda-wheels}"
pins=(nvidia-cuda-nvrtc-cu12==12.9.86 nvidia-cuda-nvcc-cu12==12.9.86)
stamp="$dest/.ditrt-pins"
if [[ ! -f "$stamp" || "$(cat "$stamp")" != "${pins[*]}" ]]; then
  python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore --no-deps --upgrade --target "$dest" "${pins[@]}" >&2
  echo "${pins[*]}" >"$stamp"
fi
echo "$dest"
