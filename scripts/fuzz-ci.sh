#!/usr/bin/env bash
# Bounded fuzzing for CI: builds every libFuzzer target of fuzz/ once, then runs each for
# FUZZ_SECONDS (default 20) on a scratch copy of its committed seed corpus
# (fuzz/corpus/<target>/, which is never written to), and fails on any crash (a panic
# included), timeout or OOM, printing the path of the input that caused it (kept in
# fuzz/artifacts/<target>/, gitignored). It ends with one line per target:
#   fuzz <target>: <N> executions in <S> s, 0 crashes
#
# Builds with `cargo +nightly` when a nightly toolchain is installed, else with the default
# (stable) one; cargo-fuzz is not needed: the targets are built with cargo and the
# sanitizer-coverage flags cargo-fuzz would pass, and each binary is libFuzzer itself. The
# first build compiles the core and its dependencies with those flags (several minutes);
# later runs reuse fuzz/target.
#
# Settings (environment):
#   FUZZ_SECONDS  time per target, seconds (default 20)
#   FUZZ_TARGETS  space-separated subset (default: every target)
#   FUZZ_SEED     libFuzzer's random seed (default 1, so a failure reproduces with the same
#                 seed and time; 0 lets libFuzzer pick one)
#   FUZZ_ASAN     1 to build with AddressSanitizer too (slower; the core has no unsafe code)
#
# Reproduce a failure: fuzz/target/<triple>/release/<target> fuzz/artifacts/<target>/crash-…
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

seconds="${FUZZ_SECONDS:-20}"
targets="${FUZZ_TARGETS:-voucher doorbell sse settlement wire receipt}"
seed="${FUZZ_SEED:-1}"
asan="${FUZZ_ASAN:-0}"
case "$seconds" in '' | *[!0-9]* | 0) echo "FUZZ_SECONDS must be a positive integer, got '$seconds'" >&2; exit 2 ;; esac

# Nightly when installed (what cargo-fuzz uses; ASan needs it), else the default toolchain:
# the coverage flags below are stable codegen options.
if cargo +nightly --version >/dev/null 2>&1; then
  toolchain=(+nightly)
elif [ "$asan" = 1 ]; then
  echo "fuzz-ci: FUZZ_ASAN=1 needs a nightly Rust toolchain (cargo +nightly); none is installed" >&2
  exit 2
else
  toolchain=()
fi
host="$(rustc "${toolchain[@]}" -vV | sed -n 's/^host: //p')"
toolchain_name="$(rustc "${toolchain[@]}" --version)"
bin_dir="$root/fuzz/target/$host/release"
export CARGO_TERM_COLOR=never
unset CARGO_ENCODED_RUSTFLAGS CARGO_BUILD_RUSTFLAGS
# The sanitizer-coverage instrumentation libFuzzer steers by (what `cargo fuzz build` passes).
# An explicit --target keeps these flags off build scripts and proc macros.
RUSTFLAGS="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4"
RUSTFLAGS+=" -Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table"
RUSTFLAGS+=" -Cllvm-args=-sanitizer-coverage-trace-compares --cfg fuzzing"
if [ "$asan" = 1 ]; then RUSTFLAGS+=" -Zsanitizer=address"; fi
export RUSTFLAGS

build_start=$EPOCHREALTIME
bins=()
for t in $targets; do bins+=(--bin "$t"); done
cargo "${toolchain[@]}" build --release --locked --manifest-path fuzz/Cargo.toml --target "$host" \
  --target-dir "$root/fuzz/target" "${bins[@]}"
build_s=$(awk -v a="$build_start" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')
echo "fuzz-ci: built $(wc -w <<<"$targets") targets in ${build_s} s ($toolchain_name, ASan $asan)"

# The committed corpus must come out as it went in.
corpus_sum() { find fuzz/corpus -type f -print0 | sort -z | xargs -0 sha256sum | sha256sum; }
corpus_before="$(corpus_sum)"

scratch="$(mktemp -d "${TMPDIR:-/tmp}/carepass-fuzz.XXXXXX")"
trap 'rm -rf "$scratch"' EXIT
summary=()
failed=0
for t in $targets; do
  seeds="fuzz/corpus/$t"
  [ -d "$seeds" ] || { echo "fuzz-ci: no seed corpus $seeds" >&2; exit 2; }
  work="$scratch/$t"
  artifacts="$root/fuzz/artifacts/$t"
  mkdir -p "$work/corpus" "$artifacts"
  cp -R "$seeds/." "$work/corpus/"
  log="$work/fuzz.log"
  echo "fuzz-ci: $t for ${seconds} s ($(find "$seeds" -type f | wc -l) seeds)"
  start=$EPOCHREALTIME
  rc=0
  # libFuzzer stops itself after -max_total_time; `timeout` is the backstop should it not
  # (a hang inside one input is already a -timeout crash after 10 s).
  timeout --kill-after=10 $((seconds + 60)) "$bin_dir/$t" \
    -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 -seed="$seed" \
    -print_final_stats=1 -artifact_prefix="$artifacts/" "$work/corpus" >"$log" 2>&1 || rc=$?
  elapsed=$(awk -v a="$start" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')
  execs=$(awk '/^stat::number_of_executed_units:/ { n = $NF } END { print n + 0 }' "$log")
  if [ "$rc" -eq 0 ]; then
    summary+=("fuzz $t: $execs executions in $elapsed s, 0 crashes")
    continue
  fi
  failed=1
  kept="$artifacts/fuzz-$t.log"
  cp "$log" "$kept"
  inputs=$(grep -oE "Test unit written to [^ ]+" "$log" | awk '{ print $NF }' || true)
  if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
    inputs="${inputs:-(libFuzzer did not stop by itself: killed after $((seconds + 60)) s)}"
  fi
  echo "fuzz-ci: $t FAILED (exit $rc); libFuzzer's last lines (whole log: $kept):" >&2
  tail -n 40 "$log" >&2
  if [ -z "$inputs" ]; then inputs="(no input was written; see the log)"; fi
  while IFS= read -r input; do
    echo "fuzz-ci: $t failing input: $input" >&2
  done <<<"$inputs"
  summary+=("fuzz $t: $execs executions in $elapsed s, FAILED (exit $rc): ${inputs//$'\n'/ }")
done

if [ "$(corpus_sum)" != "$corpus_before" ]; then
  echo "fuzz-ci: the committed corpus fuzz/corpus changed during the run" >&2
  failed=1
fi
printf '%s\n' "${summary[@]}"
exit "$failed"
