#!/usr/bin/env bash
# Checks that every LOAD segment of each ELF shared library is aligned to at least 16 KB
# (0x4000), which Android 15+ devices with 16 KB memory pages need to load it.
#
#   android/check-16k.sh LIB...
#
# Prints one line per library and exits non-zero if any library fails (or cannot be read).
# Uses readelf, else llvm-readelf (PATH, then the NDK's); READELF=... overrides.
set -euo pipefail

if [ "$#" -eq 0 ]; then
  echo "usage: $0 LIB..." >&2
  exit 2
fi

readelf_bin="${READELF:-}"
if [ -z "$readelf_bin" ]; then
  if command -v readelf >/dev/null 2>&1; then
    readelf_bin=readelf
  elif command -v llvm-readelf >/dev/null 2>&1; then
    readelf_bin=llvm-readelf
  elif [ -n "${ANDROID_NDK_HOME:-}" ]; then
    for candidate in "$ANDROID_NDK_HOME"/toolchains/llvm/prebuilt/*/bin/llvm-readelf; do
      [ -x "$candidate" ] && readelf_bin="$candidate"
    done
  fi
fi
if [ -z "$readelf_bin" ]; then
  echo "no readelf or llvm-readelf found (install binutils, or set READELF)" >&2
  exit 2
fi

min=16384 # 0x4000
status=0
for lib in "$@"; do
  if [ ! -f "$lib" ]; then
    echo "FAIL $lib: no such file"
    status=1
    continue
  fi
  if ! headers="$("$readelf_bin" -lW "$lib" 2>&1)"; then
    echo "FAIL $lib: $readelf_bin could not read it: $headers"
    status=1
    continue
  fi
  # Program header lines: Type Offset VirtAddr PhysAddr FileSiz MemSiz Flg Align; Align is last.
  aligns="$(printf '%s\n' "$headers" | awk '$1 == "LOAD" { print $NF }')"
  if [ -z "$aligns" ]; then
    echo "FAIL $lib: no LOAD segments (not an ELF shared library?)"
    status=1
    continue
  fi
  bad=""
  count=0
  for align in $aligns; do
    count=$((count + 1))
    case "$align" in
      0x[0-9a-fA-F]*) value=$((align)) ;;
      *) value=0 ;;
    esac
    if [ "$value" -lt "$min" ]; then
      bad="$bad $align"
    fi
  done
  if [ -n "$bad" ]; then
    echo "FAIL $lib: LOAD segments aligned below 0x4000:$bad (link with -Wl,-z,max-page-size=16384)"
    status=1
  else
    distinct="$(printf '%s\n' "$aligns" | sort -u | tr '\n' ' ')"
    echo "ok   $lib: all $count LOAD segments aligned to >= 0x4000 (${distinct% })"
  fi
done
exit "$status"
