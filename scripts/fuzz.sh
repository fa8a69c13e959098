#!/usr/bin/env bash
# Fuzz the safetensors reader, the config parser and the weights-to-model binding (fuzz/,
# cargo-fuzz + libFuzzer): build the targets, run each for FUZZ_SECONDS (default 60) from the
# seeds in fuzz/seeds/<target> (new inputs go to fuzz/corpus/<target>), print each one's
# executions, and exit 1 if any crashed, naming the input that reproduces it.
#
#   scripts/fuzz.sh [TARGET...]       FUZZ_SECONDS=600 scripts/fuzz.sh weights_binding
#
# Installs cargo-fuzz into ~/.cargo/bin when missing. Uses the nightly toolchain when rustup
# has one, else the default one with RUSTC_BOOTSTRAP=1 (libFuzzer needs -Z flags);
# FUZZ_TOOLCHAIN=stable forces the latter.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${FUZZ_SECONDS:-60}"
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  targets=(safetensors_reader config_parser weights_binding)
fi

export PATH="$HOME/.cargo/bin:$PATH"
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "== installing cargo-fuzz into ~/.cargo/bin"
  start=$SECONDS
  cargo install cargo-fuzz --version 0.13.2 --locked --root "$HOME/.cargo" 2>&1 | tail -n 1
  echo "   ($((SECONDS - start)) s)"
fi

cargo=(cargo)
if [ "${FUZZ_TOOLCHAIN:-}" != stable ] && command -v rustup >/dev/null && rustup run nightly rustc --version >/dev/null 2>&1; then
  cargo=(cargo +nightly)
else
  export RUSTC_BOOTSTRAP=1
fi
logs=fuzz/target/logs
mkdir -p "$logs"
echo "== fuzz targets: build ($("${cargo[@]}" --version)${RUSTC_BOOTSTRAP:+, RUSTC_BOOTSTRAP=1}; address sanitizer, debug assertions)"
start=$SECONDS
if ! "${cargo[@]}" fuzz build >"$logs/build.log" 2>&1; then
  tail -n 30 "$logs/build.log" >&2
  echo "fuzz: the targets do not build (log $logs/build.log)" >&2
  exit 1
fi
echo "   ($((SECONDS - start)) s)"

# Per target: extra libFuzzer options (the JSON dictionary for the text formats; input sizes).
declare -A options=(
  [safetensors_reader]="-dict=fuzz/json.dict -max_len=4096"
  [config_parser]="-dict=fuzz/json.dict -max_len=4096"
  [weights_binding]="-max_len=512"
)

failed=()
for t in "${targets[@]}"; do
  mkdir -p "fuzz/corpus/$t"
  log="$logs/$t.log"
  status=0
  # shellcheck disable=SC2086
  "${cargo[@]}" fuzz run "$t" "fuzz/corpus/$t" "fuzz/seeds/$t" -- \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 ${options[$t]:-} >"$log" 2>&1 || status=$?
  runs=$(sed -n 's/^Done \([0-9]*\) runs in \([0-9]*\) second.*/\1 executions in \2 s/p' "$log" | tail -n 1)
  if [ "$status" -eq 0 ]; then
    echo "== fuzz $t: ${runs:-? executions}, corpus $(find "fuzz/corpus/$t" -type f | wc -l) inputs, no crash"
    continue
  fi
  failed+=("$t")
  artifact=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -n 1)
  last=$(grep -o '^#[0-9]*' "$log" | tail -n 1 || true)
  at=${last:+after about ${last#\#} executions}
  echo "== fuzz $t: CRASHED (exit $status) ${at:-on a seed or corpus input}; log $log"
  grep -m 1 -A 3 -E "panicked at|ERROR: (libFuzzer|AddressSanitizer)" "$log" | sed 's/^/   /' || tail -n 20 "$log"
  if [ -n "$artifact" ]; then
    echo "   input: ${artifact#"$PWD/"}"
    echo "   reproduce: ${cargo[*]} fuzz run $t ${artifact#"$PWD/"}"
  fi
done

if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: ${#failed[@]} of ${#targets[@]} target(s) crashed: ${failed[*]}" >&2
  exit 1
fi
echo "fuzz: ${#targets[@]} target(s), ${seconds} s each, no crash"
