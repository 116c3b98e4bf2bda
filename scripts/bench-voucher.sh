#!/usr/bin/env bash
# Runs the e-voucher criterion benchmarks (rust-core/benches/voucher.rs) and prints each cost
# as a ratio to its baseline measured in the same run (median times):
# - making a code (make_code) vs its floor: one raw P-256 signature + one QR encoding of the
#   same text with one fixed mask through the qrcode crate's canvas (online and offline);
# - verifying a code vs one raw P-256 verification.
# Each criterion sample is its fastest short batch (rust-core/benches/support), so other
# processes on the shared machine do not decide the ratios. Built with cargo's bench profile,
# which inherits [profile.release] (what ships); the script prints those settings.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
target_dir="${CARGO_TARGET_DIR:-target}"
cargo bench -q -p carepass-core --bench voucher -- --noplot "$@" >&2
TARGET_DIR="$target_dir" python3 - <<'PY'
import json, os, pathlib, tomllib
release = tomllib.loads(pathlib.Path("Cargo.toml").read_text())["profile"]["release"]
print(f"# profile: bench (inherits release: opt-level {release.get('opt-level')!r}, lto {release.get('lto')}, "
      f"codegen-units {release.get('codegen-units')})")
base = pathlib.Path(os.environ["TARGET_DIR"]) / "criterion" / "voucher"
def median_ns(name):
    return json.loads((base / name / "new" / "estimates.json").read_text())["median"]["point_estimate"]
names = ["p256_sign", "floor_online", "floor_offline", "qr_encode_online", "qr_encode_offline",
         "qr_crate_all_masks_online", "code_generation_online", "code_generation_offline",
         "p256_verify", "verify_online", "verify_offline"]
t = {n: median_ns(n) for n in names}
for name, ns in t.items():
    print(f"# {name}: {ns / 1000:.1f} us")
us = lambda n: f"{t[n] / 1000:.1f} us"
print(f"code_generation_online_vs_floor: {t['code_generation_online'] / t['floor_online']:.2f}x "
      f"({us('code_generation_online')} vs {us('floor_online')})")
print(f"code_generation_offline_vs_floor: {t['code_generation_offline'] / t['floor_offline']:.2f}x "
      f"({us('code_generation_offline')} vs {us('floor_offline')})")
print(f"online_verification_vs_primitive: {t['verify_online'] / t['p256_verify']:.2f}x "
      f"({us('verify_online')} vs {us('p256_verify')})")
print(f"offline_verification_vs_primitive: {t['verify_offline'] / t['p256_verify']:.2f}x "
      f"({us('verify_offline')} vs {us('p256_verify')})")
PY
