#!/usr/bin/env bash
# Platform write-path load (sandbox/examples/load.rs), in one run: accepted scans per second
# (POST /v1/scans, fresh valid codes, the scanner's admin token) and bills issued per second
# (POST /admin/v1/bills, the demo bill) against a fresh sandbox per durability mode (group
# commit = durable, the default; relaxed = not durable before the answer, the old behaviour;
# per-write = one flush per write), and the baseline: the core's verifier alone, in-process,
# on codes made the same way, with as many threads as there are HTTP client tasks.
#
# Prints `load scans_per_s durable=… nondurable=… per_write=… verify_only=… ratio=…` and
# `load bills_per_s durable=… nondurable=… per_write=…`, after one `load detail` line per
# phase (counts, 429s, errors, latency, CPU per success, load average).
#
# Settings (environment): LOAD_CONCURRENCY (16), LOAD_SECS (3), LOAD_WARMUP_MS (500),
# LOAD_THREADS (runtime workers each for server and clients; default the core count),
# LOAD_DIR (where the sandboxes' databases go; default the temp dir — put it on the disk
# you mean to measure: fsync on tmpfs costs nothing).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
cargo build -q --release -p carepass-sandbox --example load
exec "${CARGO_TARGET_DIR:-$root/target}/release/examples/load" "$@"
