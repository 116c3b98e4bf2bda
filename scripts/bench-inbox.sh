#!/usr/bin/env bash
# Pending-bill figures (tests/benches/inbox.rs): push latency over loopback against a plain
# round trip to the same server, and the inbox's disk use against raw JSON, in one run.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
cargo bench -q -p carepass-journeys --bench inbox
