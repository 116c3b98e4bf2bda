#!/usr/bin/env bash
# Builds the release cdylib the way the apps ship it (LTO, opt-level z, stripped, panic=unwind)
# for the host, and prints its size. `lto` is ignored when crate-type includes `lib`, so the
# cdylib is built alone with `cargo rustc --crate-type cdylib`. With --budget BYTES, fails when
# the library is larger (CI uses the budget in the README).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
budget=""
[ "${1:-}" = "--budget" ] && budget="${2:?--budget needs a number of bytes}"

cargo rustc -q -p carepass-ffi --lib --release --no-default-features --crate-type cdylib
case "$(uname -s)" in
  Darwin) lib="target/release/libcarepass_ffi.dylib" ;;
  *) lib="target/release/libcarepass_ffi.so" ;;
esac
bytes=$(wc -c <"$lib")
mb=$(awk -v b="$bytes" 'BEGIN { printf "%.2f", b / 1000000 }')
echo "release cdylib $lib ($(uname -m), stripped, LTO): $bytes bytes ($mb MB)"
if [ -n "$budget" ] && [ "$bytes" -gt "$budget" ]; then
  echo "over the size budget of $budget bytes" >&2
  exit 1
fi
