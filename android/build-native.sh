#!/usr/bin/env bash
# Builds libcarepass_ffi.so for the Android ABIs the library ships (arm64-v8a, armeabi-v7a,
# x86_64) with cargo-ndk, linked for 16 KB pages, into carepass/src/main/jniLibs/<abi>/, and
# checks each with check-16k.sh. build.gradle.kts runs it (task buildNative) before the
# native libraries are merged into the AAR.
#
#   android/build-native.sh [--debug] [--require-ndk] [--host-check]
#
#   --debug        dev profile instead of release (release: LTO, opt-level z, stripped).
#   --require-ndk  fail, instead of skipping, when ANDROID_NDK_HOME is not set (Gradle).
#   --host-check   also run the host check below when the NDK is there.
#
# Needs ANDROID_NDK_HOME (NDK r23+), cargo-ndk (`cargo install cargo-ndk`) and the targets
# (`rustup target add aarch64-linux-android armv7-linux-androideabi x86_64-linux-android`).
#
# Without the NDK (as in CI here) the cargo-ndk build is skipped, and the same mechanism runs
# on the host instead: the library is relinked for the host with the same page-size flag, read
# from .cargo/config.toml (a copy lands in target/page16k), and check-16k.sh must pass on it
# and must fail on the ordinary debug build, which is linked without the flag.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/.." && pwd)"
cd "$root"

profile=release
require_ndk=0
host_check=0
for arg in "$@"; do
  case "$arg" in
    --debug) profile=debug ;;
    --require-ndk) require_ndk=1 ;;
    --host-check) host_check=1 ;;
    *) echo "unknown option: $arg" >&2; exit 2 ;;
  esac
done

# ABI -> Rust target. Keep in step with abiFilters in carepass/build.gradle.kts.
abis=(arm64-v8a armeabi-v7a x86_64)
declare -A triple=([arm64-v8a]=aarch64-linux-android [armeabi-v7a]=armv7-linux-androideabi [x86_64]=x86_64-linux-android)
# Keep in step with minSdk in carepass/build.gradle.kts.
min_sdk=24
jni_dir="$here/carepass/src/main/jniLibs"

# The page-size flag .cargo/config.toml pins for every Android target; all three must agree.
page_flag=""
for abi in "${abis[@]}"; do
  flag="$(awk -v section="[target.${triple[$abi]}]" '
    /^\[/ { inside = ($0 == section) }
    inside && /^rustflags/ && match($0, /link-arg=[^"]*max-page-size=[0-9]+/) { print substr($0, RSTART, RLENGTH) }
  ' .cargo/config.toml)"
  if [ -z "$flag" ]; then
    echo ".cargo/config.toml pins no max-page-size link-arg for ${triple[$abi]}" >&2
    exit 1
  fi
  if [ -n "$page_flag" ] && [ "$flag" != "$page_flag" ]; then
    echo ".cargo/config.toml: ${triple[$abi]} links with $flag, another target with $page_flag" >&2
    exit 1
  fi
  page_flag="$flag"
done
case "$page_flag" in
  *max-page-size=16384) ;;
  *) echo ".cargo/config.toml links Android with $page_flag, not 16 KB pages" >&2; exit 1 ;;
esac

profile_args=()
[ "$profile" = release ] && profile_args=(--release)

# The cdylib alone (LTO applies only then) without the bindgen CLI feature, as
# bindings/release-size.sh builds it; the page flag is passed to the final link directly too,
# so a RUSTFLAGS in the environment (which replaces config rustflags) cannot drop it.
cdylib_args=(rustc -q -p carepass-ffi --lib --no-default-features --crate-type cdylib "${profile_args[@]}" -- -C "$page_flag")

host_check() {
  local out="target/page16k"
  local lib="target/debug/libcarepass_ffi.so"
  local unflagged="$out/unflagged/libcarepass_ffi.so"
  mkdir -p "$out/unflagged"
  # The ordinary debug build (the one the JVM tests load) is linked without the flag: keep a
  # copy, then relink in the same target dir with the flag. Only carepass-ffi itself is
  # compiled again; every dependency comes from the ordinary build's cache.
  cargo build -q -p carepass-ffi --lib
  cp "$lib" "$unflagged"
  echo "host check: relinking libcarepass_ffi.so for $(uname -m) with -C $page_flag"
  cargo rustc -q -p carepass-ffi --lib --crate-type cdylib -- -C "$page_flag"
  cp "$lib" "$out/libcarepass_ffi.so"
  "$here/check-16k.sh" "$out/libcarepass_ffi.so"

  # The check must reject a library linked without the flag, or it proves nothing.
  echo "host check: the same check on $unflagged (linked without the flag) must fail:"
  if "$here/check-16k.sh" "$unflagged"; then
    echo "check-16k.sh accepted $unflagged, which is linked without the 16 KB flag: the check is broken" >&2
    exit 1
  fi
  echo "host check passed: the flag gives 16 KB LOAD alignment and the check tells the difference"
}

if [ -z "${ANDROID_NDK_HOME:-}" ]; then
  echo "ANDROID_NDK_HOME is not set: skipping the cargo-ndk build of libcarepass_ffi.so for ${abis[*]}."
  if [ "$require_ndk" = 1 ]; then
    echo "Set ANDROID_NDK_HOME to an NDK (r23+) and install cargo-ndk to build the AAR's native libraries." >&2
    exit 1
  fi
  host_check
  exit 0
fi

if ! command -v cargo-ndk >/dev/null 2>&1; then
  echo "cargo-ndk is not installed: cargo install cargo-ndk" >&2
  exit 1
fi

built=()
for abi in "${abis[@]}"; do
  t="${triple[$abi]}"
  echo "building libcarepass_ffi.so for $abi ($t, API $min_sdk, $profile)"
  cargo ndk -t "$abi" --platform "$min_sdk" "${cdylib_args[@]}"
  mkdir -p "$jni_dir/$abi"
  cp "target/$t/$profile/libcarepass_ffi.so" "$jni_dir/$abi/libcarepass_ffi.so"
  built+=("$jni_dir/$abi/libcarepass_ffi.so")
done
"$here/check-16k.sh" "${built[@]}"
[ "$host_check" = 1 ] && host_check
echo "libcarepass_ffi.so for ${abis[*]} in $jni_dir"
