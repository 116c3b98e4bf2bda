#!/usr/bin/env bash
# Cold start of the core in fresh processes: open → first displayable code with no network,
# and resident memory after open, against a bare sled open of the same directory in the same
# run (tests/examples/coldstart.rs). Release build, as the apps ship it.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo run -q --release -p carepass-journeys --example coldstart
