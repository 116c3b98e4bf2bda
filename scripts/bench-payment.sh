#!/usr/bin/env bash
# Runs the payment benchmark (rust-core/benches/payment.rs) and prints the phone's cost of one
# confirmation (check the quote, build and sign the consent) as a ratio to one raw P-256
# signature over the same bytes, measured in the same run (medians; each sample its fastest
# short batch). Bench profile = release settings (what ships).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
target_dir="${CARGO_TARGET_DIR:-target}"
cargo bench -q -p carepass-core --bench payment -- --noplot "$@" >&2
TARGET_DIR="$target_dir" python3 - <<'PY'
import json, os, pathlib
base = pathlib.Path(os.environ["TARGET_DIR"]) / "criterion" / "payment"
t = {n: json.loads((base / n / "new" / "estimates.json").read_text())["median"]["point_estimate"]
     for n in ["p256_sign", "check_and_sign"]}
for name, ns in t.items():
    print(f"# {name}: {ns / 1000:.1f} us")
print(f"quote_check_and_consent_vs_signature: {t['check_and_sign'] / t['p256_sign']:.2f}x "
      f"({t['check_and_sign'] / 1000:.1f} us vs {t['p256_sign'] / 1000:.1f} us; goal <= 1.5x)")
PY
