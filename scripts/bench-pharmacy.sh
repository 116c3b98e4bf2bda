#!/usr/bin/env bash
# Runs the pharmacy ranking criterion benchmark (rust-core/benches/pharmacy.rs): the R-tree
# ranking against the naive full scan, the bounding-box-filtered scan and the floor (pricing
# the ranking's candidates alone), in the same run, on 100,000 generated pharmacies with the
# 8-item demo prescription and a 4 km radius. Prints the speed-ups and the ratio to the floor
# (ratios of criterion medians; each sample is its fastest short batch, see
# rust-core/benches/support, so other processes on the shared machine do not decide them) and
# how many pharmacies fell inside the radius. Built with cargo's bench profile, which inherits
# [profile.release].
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
box_scan, floor = median_ns("rank_box_scan"), median_ns("price_candidates")
search, one = median_ns("ranking_candidates"), median_ns("rank_indexed_limit_1")
print(f"# catalogue: {figure('pharmacy_catalogue_size')} pharmacies, 8-item prescription, 4 km radius")
for name, ns in [("rank_indexed", indexed), ("rank_scan", scan), ("rank_box_scan", box_scan), ("price_candidates", floor),
                 ("ranking_candidates", search), ("rank_indexed_limit_1", one)]:
    print(f"# {name}: {ns / 1000:.1f} us")
print(f"candidates_in_radius: {figure('pharmacy_candidates_in_radius')}")
print(f"ranking_speedup_vs_scan: {scan / indexed:.1f}x ({indexed / 1000:.1f} us vs {scan / 1000:.1f} us)")
print(f"ranking_speedup_vs_box_scan: {box_scan / indexed:.1f}x ({indexed / 1000:.1f} us vs {box_scan / 1000:.1f} us)")
print(f"ranking_vs_pricing_floor: {indexed / floor:.2f}x ({indexed / 1000:.1f} us vs {floor / 1000:.1f} us)")
print(f"# where the ranking's time goes: search + distances + filters {search / 1000:.1f} us, pricing {floor / 1000:.1f} us, "
      f"a full quote {(indexed - one) / 9 / 1000:.1f} us (x10), the rest {(indexed - search - floor - 10 * (indexed - one) / 9) / 1000:.1f} us")
PY
