#!/usr/bin/env bash
# Runs the pharmacy ranking criterion benchmark (rust-core/benches/pharmacy.rs): the R-tree
# ranking against the naive full scan, in the same run, on 100,000 generated pharmacies with
# the 8-item demo prescription and a 4 km radius. Prints the speed-up (ratio of median times)
# and how many pharmacies fell inside the radius.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
target_dir="${CARGO_TARGET_DIR:-target}"
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
cargo bench -q -p carepass-core --bench pharmacy -- --noplot "$@" | tee "$log" >&2
LOG="$log" TARGET_DIR="$target_dir" python3 - <<'PY'
import json, os, pathlib, re
base = pathlib.Path(os.environ["TARGET_DIR"]) / "criterion" / "pharmacy"
def median_ns(name):
    return json.loads((base / name / "new" / "estimates.json").read_text())["median"]["point_estimate"]
log = pathlib.Path(os.environ["LOG"]).read_text()
def figure(key):
    m = re.search(rf"^{key}: (\d+)$", log, re.M)
    return m.group(1) if m else "?"
indexed, scan = median_ns("rank_indexed"), median_ns("rank_scan")
print(f"# catalogue: {figure('pharmacy_catalogue_size')} pharmacies, 8-item prescription, 4 km radius")
print(f"# rank_indexed: {indexed / 1000:.1f} us")
print(f"# rank_scan: {scan / 1000:.1f} us")
print(f"candidates_in_radius: {figure('pharmacy_candidates_in_radius')}")
print(f"ranking_speedup_vs_scan: {scan / indexed:.1f}x")
PY
