#!/usr/bin/env bash
# The release cdylib's size by crate: builds it exactly as bindings/release-size.sh does (LTO,
# opt-level z, panic=unwind) but keeps its symbol table (strip off, in target/size so the
# shipped build is untouched), then sums the sizes of the code and data symbols `nm` lists by
# the crate their demangled path starts with (a generic instantiated for another crate's type
# counts for the crate that defines the function, except drop glue, which counts for the type's
# crate; ring's C and assembly symbols count for ring). Prints the crates from largest, what no
# symbol accounts for (unwind tables, symbol-less constants, the dynamic symbol table, padding),
# the stripped library's larger sections, and the stripped size the budget is about.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
target="target/size"
CARGO_PROFILE_RELEASE_STRIP=false CARGO_PROFILE_RELEASE_DEBUG=false \
  cargo rustc -q -p carepass-ffi --lib --release --no-default-features --crate-type cdylib --target-dir "$target"
lib="$target/release/libcarepass_ffi.so"
stripped="$(mktemp)"
trap 'rm -f "$stripped"' EXIT
strip -o "$stripped" "$lib"
nm --size-sort -S -C "$lib" | LIB_BYTES="$(wc -c <"$stripped")" python3 -c '
import os, re, sys
by = {}
for line in sys.stdin:
    parts = line.rstrip("\n").split(" ", 3)
    if len(parts) < 4 or parts[2] not in "tTrRdDbBvVwW":
        continue
    size, name = int(parts[1], 16), parts[3]
    n = name.lstrip("<&*").replace("dyn ", "").replace("mut ", "").replace("const ", "")
    n = re.sub(r"^_<", "", n)
    # Drop glue and the like, generic over a type of another crate: that crate.
    n = re.sub(r"^core::ptr::drop_in_place<[&*]?(?:mut |const |dyn )?<?", "", n)
    m = re.match(r"([A-Za-z_][A-Za-z0-9_]*)::", n)
    if m:
        crate = m.group(1)
    elif re.match(r"(uniffi_|UNIFFI_)", n):
        crate = "carepass_ffi"
    elif re.match(r"(ring_core|GFp|p256_|ecp_nistz|aes|bn_|x25519|chacha|LIMBS|CRYPTO|OPENSSL|mulx?4x|sqrx?8x|sha|gcm|poly1305|_?vpaes|rsaz)", n, re.I):
        crate = "ring (C and assembly)"
    else:
        crate = "other symbols (C runtime, unnamed)"
    if crate in ("ring",):
        crate = "ring"
    by[crate] = by.get(crate, 0) + size
total = int(os.environ["LIB_BYTES"])
named = sum(by.values())
print("crate".ljust(40), "bytes".rjust(10), "share".rjust(6))
for crate, size in sorted(by.items(), key=lambda kv: -kv[1]):
    if size * 1000 < total:
        continue
    print(f"{crate:40} {size:>10,} {size / total:>6.1%}")
small = sum(s for s in by.values() if s * 1000 < total)
print("(crates under 0.1% each)".ljust(40), f"{small:>10,} {small / total:>6.1%}")
print("(no symbol: tables, padding, headers)".ljust(40), f"{total - named:>10,} {(total - named) / total:>6.1%}")
print("stripped library".ljust(40), f"{total:>10,}")
'
echo
echo "sections of the stripped library (bytes):"
size -A "$stripped" | awk '$1 ~ /^\./ && $2 >= 10000 { printf "  %-20s %10d\n", $1, $2 }'
