#!/usr/bin/env bash
# Builds ios/build/CarePassFFI.xcframework: the Rust library `carepass_ffi` as a static
# library for iOS devices, the iOS simulator (arm64 + x86_64) and, unless --no-macos, macOS
# (arm64 + x86_64, which `swift test` on a Mac needs), with the C header and module map
# (clang module `carepass_ffiFFI`) that the generated Swift bindings import.
#
# The Swift bindings themselves are not copied anywhere: Package.swift compiles the committed
# bindings/generated/swift/CarePassFFI.swift. This script regenerates them from the library
# it just built and stops if they differ from the committed ones, because a mismatch would
# only show up at run time (uniffi's checksum check calls fatalError).
#
# Usage: ios/build-xcframework.sh [--no-macos] [--zip]
#   --no-macos  iOS slices only (an app build does not need macOS; `swift test` does).
#   --zip       also write ios/build/CarePassFFI.xcframework.zip and print its SwiftPM
#               checksum, for a release's .binaryTarget(url:checksum:).
#
# Needs macOS with Xcode (xcodebuild, lipo) and rustup. Bash 3.2 compatible (macOS /bin/bash).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

die() {
  echo "build-xcframework: $*" >&2
  exit 1
}

usage() {
  sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//'
}

with_macos=1
make_zip=0
while [ $# -gt 0 ]; do
  case "$1" in
    --no-macos) with_macos=0 ;;
    --zip) make_zip=1 ;;
    -h | --help)
      usage
      exit 0
      ;;
    *)
      usage >&2
      die "unknown option: $1"
      ;;
  esac
  shift
done

# ---- preconditions ---------------------------------------------------------------------

[ "$(uname -s)" = "Darwin" ] || die "this builds Apple libraries: run it on macOS with Xcode installed (this is $(uname -s))"
for tool in cargo rustup xcodebuild lipo; do
  command -v "$tool" >/dev/null 2>&1 || die "'$tool' not found on PATH"
done
xcodebuild -version >/dev/null 2>&1 || die "xcodebuild does not run: install Xcode and run 'sudo xcode-select -s /Applications/Xcode.app'"

ios_device_target="aarch64-apple-ios"
ios_sim_targets="aarch64-apple-ios-sim x86_64-apple-ios"
macos_targets="aarch64-apple-darwin x86_64-apple-darwin"
targets="$ios_device_target $ios_sim_targets"
[ "$with_macos" = 1 ] && targets="$targets $macos_targets"

installed="$(rustup target list --installed)"
missing=""
for t in $targets; do
  printf '%s\n' "$installed" | grep -qx "$t" || missing="$missing $t"
done
if [ -n "$missing" ]; then
  echo "build-xcframework: Rust targets missing; install them with:" >&2
  echo "  rustup target add$missing" >&2
  exit 1
fi

# ---- paths -----------------------------------------------------------------------------

lib="libcarepass_ffi.a"
target_dir="${CARGO_TARGET_DIR:-$root/target}"
build_dir="$root/ios/build"
work="$build_dir/staging"
out="$build_dir/CarePassFFI.xcframework"
committed="$root/bindings/generated/swift"

rm -rf "$work"
mkdir -p "$work"

# ---- 1. static libraries ---------------------------------------------------------------
# `cargo rustc --crate-type staticlib` rather than `cargo build`: the crate's own crate-type
# list includes `lib`, and with it the release profile's LTO is not applied.
# --no-default-features leaves out the `bindgen` feature (uniffi's CLI), which only the
# uniffi-bindgen binary needs.

for t in $targets; do
  echo "==> cargo rustc --target $t (release, staticlib)"
  case "$t" in
    *-apple-darwin) deployment="MACOSX_DEPLOYMENT_TARGET=12.0" ;;
    *) deployment="IPHONEOS_DEPLOYMENT_TARGET=15.0" ;;
  esac
  env "$deployment" cargo rustc -p carepass-ffi --lib --release --no-default-features \
    --target "$t" --crate-type staticlib -- --print native-static-libs
  [ -f "$target_dir/$t/release/$lib" ] || die "expected $target_dir/$t/release/$lib after building $t"
done

echo "==> lipo: iOS simulator (arm64 + x86_64)"
mkdir -p "$work/ios-simulator"
lipo -create \
  "$target_dir/aarch64-apple-ios-sim/release/$lib" \
  "$target_dir/x86_64-apple-ios/release/$lib" \
  -output "$work/ios-simulator/$lib"

if [ "$with_macos" = 1 ]; then
  echo "==> lipo: macOS (arm64 + x86_64)"
  mkdir -p "$work/macos"
  lipo -create \
    "$target_dir/aarch64-apple-darwin/release/$lib" \
    "$target_dir/x86_64-apple-darwin/release/$lib" \
    -output "$work/macos/$lib"
fi

# ---- 2. bindings: regenerate from the built library, compare with the committed ones ----

echo "==> uniffi-bindgen (library mode, from the device library)"
cargo run -q -p carepass-ffi --bin uniffi-bindgen -- generate \
  --library "$target_dir/$ios_device_target/release/$lib" \
  --language swift --out-dir "$work/swift" --no-format

for f in CarePassFFI.swift carepass_ffiFFI.h; do
  [ -f "$work/swift/$f" ] || die "uniffi-bindgen did not write $f"
  if ! cmp -s "$work/swift/$f" "$committed/$f"; then
    diff -u "$committed/$f" "$work/swift/$f" | sed -n 1,40p >&2 || true
    die "bindings/generated/swift/$f does not match the library just built: run bindings/generate.sh, commit, and build again"
  fi
done

# ---- 3. headers and module map, shared by every slice ----------------------------------
# The module map sits at the root of Headers/, where Xcode's explicit-module scanner looks
# for it. It is written here rather than copied from the generated .modulemap: it adds the
# frameworks the static library needs (CoreFoundation and Security, for the operating
# system's TLS verifier and time zone; iconv, which Rust's libc links on Apple targets), so
# an app linking the XCFramework without SwiftPM links them too; and it leaves out uniffi's
# `use "_Builtin_stdbool"` / `use "_Builtin_stdint"` lines, which only matter to strict
# layering checks and which newer Xcode releases are reported to reject.

headers="$work/headers"
mkdir -p "$headers"
cp "$work/swift/carepass_ffiFFI.h" "$headers/"
cat >"$headers/module.modulemap" <<'EOF'
module carepass_ffiFFI {
    header "carepass_ffiFFI.h"
    export *
    link framework "CoreFoundation"
    link framework "Security"
    link "iconv"
}
EOF

# ---- 4. the XCFramework ----------------------------------------------------------------

echo "==> xcodebuild -create-xcframework"
rm -rf "$out"
set -- \
  -library "$target_dir/$ios_device_target/release/$lib" -headers "$headers" \
  -library "$work/ios-simulator/$lib" -headers "$headers"
if [ "$with_macos" = 1 ]; then
  set -- "$@" -library "$work/macos/$lib" -headers "$headers"
fi
xcodebuild -create-xcframework "$@" -output "$out"

echo "==> built $out"
for slice in "$out"/*/; do
  if [ -f "$slice$lib" ]; then
    echo "    $(basename "$slice"): $(lipo -archs "$slice$lib")"
  fi
done

# ---- 5. optional release archive -------------------------------------------------------

if [ "$make_zip" = 1 ]; then
  zip_path="$build_dir/CarePassFFI.xcframework.zip"
  rm -f "$zip_path"
  # ditto keeps the XCFramework directory itself at the root of the archive.
  (cd "$build_dir" && ditto -c -k --sequesterRsrc --keepParent CarePassFFI.xcframework CarePassFFI.xcframework.zip)
  if command -v swift >/dev/null 2>&1; then
    checksum="$(swift package compute-checksum "$zip_path")"
  else
    checksum="$(shasum -a 256 "$zip_path" | cut -d' ' -f1)"
  fi
  echo "==> $zip_path"
  echo "    checksum: $checksum"
  echo "    (put it, with the archive's release URL, in Package.swift's .binaryTarget(url:checksum:))"
fi

rm -rf "$work"
