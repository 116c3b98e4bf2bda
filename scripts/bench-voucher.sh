#!/usr/bin/env bash
# Runs the e-voucher criterion benchmarks (rust-core/benches/voucher.rs) and prints each cost
# as a ratio to its primitives measured in the same run (median times).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
cargo bench -q -p carepass-core --bench voucher -- --noplot "$@" >&2
python3 - <<'PY'
import json, pathlib
base = pathlib.Path("target/criterion/voucher")
def median_ns(name):
    return json.loads((base / name / "new" / "estimates.json").read_text())["median"]["point_estimate"]
t = {n: median_ns(n) for n in ["p256_sign", "qr_encode", "p256_verify", "code_generation", "verify_online", "verify_offline"]}
for name, ns in t.items():
    print(f"# {name}: {ns / 1000:.1f} us")
print(f"code_generation_vs_primitives: {t['code_generation'] / (t['p256_sign'] + t['qr_encode']):.2f}x")
print(f"online_verification_vs_primitive: {t['verify_online'] / t['p256_verify']:.2f}x")
print(f"offline_verification_vs_primitive: {t['verify_offline'] / t['p256_verify']:.2f}x")
PY
