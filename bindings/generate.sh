#!/usr/bin/env bash
# Generates the Kotlin and Swift bindings from the built library (uniffi library mode), into
# bindings/generated/{kotlin,swift}. With --check, regenerates into a temporary directory and
# fails if the committed bindings differ (CI runs this).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

check=0
[ "${1:-}" = "--check" ] && check=1

cargo build -q -p carepass-ffi --lib
cargo build -q -p carepass-ffi --bin uniffi-bindgen
case "$(uname -s)" in
  Darwin) lib="target/debug/libcarepass_ffi.dylib" ;;
  *) lib="target/debug/libcarepass_ffi.so" ;;
esac

out="bindings/generated"
if [ "$check" = 1 ]; then
  out="$(mktemp -d)"
  trap 'rm -rf "$out"' EXIT
fi

rm -rf "$out/kotlin/app" "$out/swift"
mkdir -p "$out/kotlin" "$out/swift"
target/debug/uniffi-bindgen generate --library "$lib" --language kotlin --out-dir "$out/kotlin" --no-format
target/debug/uniffi-bindgen generate --library "$lib" --language swift --out-dir "$out/swift" --no-format

if [ "$check" = 1 ]; then
  if ! diff -r -x .gitkeep "$out/kotlin" bindings/generated/kotlin >/dev/null || ! diff -r "$out/swift" bindings/generated/swift >/dev/null; then
    echo "generated bindings have drifted from the library: run bindings/generate.sh and commit" >&2
    diff -r -x .gitkeep "$out/kotlin" bindings/generated/kotlin | sed -n 1,40p >&2 || true
    diff -r "$out/swift" bindings/generated/swift | sed -n 1,40p >&2 || true
    exit 1
  fi
  echo "generated bindings match the library"
else
  echo "bindings written to $out/kotlin and $out/swift"
fi
