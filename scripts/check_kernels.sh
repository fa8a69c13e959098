#!/usr/bin/env bash
# Checks every CUDA kernel without a GPU: compiles kernels/*.cu to PTX for compute_80 and
# compute_90 with the pinned NVRTC (exactly as the `cuda` build does: ptx_build/kernels.rs),
# assembles each PTX with ptxas -v for sm_80 and sm_90, prints registers, shared memory, stack
# frame and spills per kernel entry, and fails on a spill unless the entry is listed, with a
# reason, in kernels/spill-allowlist.txt. Needs python3 + pip (scripts/cuda_wheels.sh) and rustc.
# With --emulate it then runs the kernels on the host emulator (feature cuda-emu: the planted-bug
# tests, then every kernel at a representative launch) and prints the static performance table
# last (docs/CUDA-STATUS.md keeps it).
set -euo pipefail
cd "$(dirname "$0")/.."
emulate=0
case "${1:-}" in
  --emulate) emulate=1 ;;
  "") ;;
  *) echo "usage: $0 [--emulate]" >&2; exit 2 ;;
esac

start=$SECONDS
wheels="$(scripts/cuda_wheels.sh)"
work=target/kernel-check
mkdir -p "$work"

# The PTX tool is ptx_build/*.rs compiled by plain rustc: no crate build needed.
tool="$work/ptx_tool"
if [[ ! -x "$tool" || -n "$(find ptx_build -name '*.rs' -newer "$tool")" ]]; then
  rustc --edition 2021 -O -o "$tool" ptx_build/ptx_tool.rs
fi
rm -rf "$work/ptx" "$work/ptxas"
mkdir -p "$work/ptxas"
ptxas="$(DITRT_CUDA_WHEELS="$wheels" "$tool" kernels "$work/ptx")"
echo "== PTX: $(ls "$work/ptx" | wc -l) files from $(ls kernels/*.cu | wc -l) kernels, $((SECONDS - start)) s"

# ptxas -v for every (PTX, sm) pair, in parallel; one log per pair.
for ptx in "$work"/ptx/*.ptx; do
  arch="${ptx##*.compute_}"; arch="sm_${arch%.ptx}"
  echo "$ptx $arch"
done | xargs -P "$(nproc)" -n 2 sh -c \
  '"$0" -v -arch="$2" "$1" -o /dev/null 2>"'"$work"'/ptxas/$(basename "$1" .ptx).$2.log" || { cat "'"$work"'/ptxas/$(basename "$1" .ptx).$2.log" >&2; exit 255; }' \
  "$ptxas"

# One row per (function, sm): function arch registers smem stack spill_stores spill_loads. Entries
# and the device functions ptxas keeps out of line (e.g. libdevice's trig slow path) alike;
# the latter have no register line ("-").
for log in "$work"/ptxas/*.log; do
  awk '
    /Compiling entry function/ { gsub(/\047/, ""); arch = $9 }
    /Function properties for/ { fn = $NF; regs[fn] = "-"; smem[fn] = "-"; order[++n] = fn }
    /bytes stack frame/ { stack[fn] = $1; st[fn] = $5; ld[fn] = $9 }
    /Used [0-9]+ registers/ {
      regs[fn] = $5; smem[fn] = 0
      for (i = 1; i < NF; i++) if ($(i + 1) == "bytes" && $(i + 2) ~ /^smem/) smem[fn] = $i
    }
    END { for (i = 1; i <= n; i++) { f = order[i]; print f, arch, regs[f], smem[f], stack[f], st[f], ld[f] } }' "$log"
done | sort -u >"$work/resources.txt"

printf '%-36s | %-28s | %-28s\n' "function" "sm_80 regs/smem/stack/spill" "sm_90 regs/smem/stack/spill"
awk '{ key = $1; row[key, $2] = sprintf("%3s %6s B %3d B %4d/%-4d", $3, $4, $5, $6, $7); keys[key] = 1 }
     END { for (k in keys) printf "%-36s | %-28s | %-28s\n", k, row[k, "sm_80"], row[k, "sm_90"] }' \
  "$work/resources.txt" | sort

# Spills (stores or loads) fail unless allow-listed with a reason.
allow=kernels/spill-allowlist.txt
failed=0
while read -r entry arch regs smem stack st ld; do
  (( st + ld == 0 )) && continue
  reason="$(awk -v e="$entry" '!/^#/ && $1 == e { $1 = ""; sub(/^ +/, ""); print; exit }' "$allow")"
  if [[ -n "$reason" ]]; then
    echo "allowed spill: $entry $arch ($st B stored, $ld B loaded): $reason"
  else
    echo "SPILL: $entry on $arch spills $st B / reloads $ld B; fix it or list it in $allow with a reason" >&2
    failed=1
  fi
done <"$work/resources.txt"
echo "== $(wc -l <"$work/resources.txt") (function, sm) pairs assembled in $((SECONDS - start)) s"
if (( emulate )); then
  emulated=$SECONDS
  export DITRT_CUDA_WHEELS="$wheels" DITRT_PTXAS_RESOURCES="$PWD/$work/resources.txt"
  echo "== emulator: planted bugs (cargo test --features cuda-emu --lib emulated::planted)"
  cargo test --release --features cuda-emu --lib emulated::planted 2>&1 | grep -E "^test |test result"
  table="$(cargo test --release --features cuda-emu --lib emulated::table -- --nocapture 2>&1)" || { echo "$table" >&2; exit 1; }
  echo "== emulator: $((SECONDS - emulated)) s"
  grep -E '^(\||== static)' <<<"$table"
fi
exit "$failed"
