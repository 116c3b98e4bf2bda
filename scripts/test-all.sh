#!/usr/bin/env bash
# Runs every check and test suite of CarePass: formatting, clippy (-D warnings), the Rust
# tests (unit, vectors, core <-> sandbox journeys over loopback, binaries as processes, the
# authorization matrix), schemathesis against the OpenAPI document, bounded fuzzing of every
# decoder of outside input (fuzz/, libFuzzer on nightly), the
# README's terminal walk-through run as written (scripts/readme-run.py), the
# generated-bindings drift check, the Kotlin JUnit suite on the host JVM against the real
# native library and the real sandbox binary (with androidMain compiled against the Android
# API and the Robolectric tests), the Android packaging checks, and the release library size
# budget.
# This is the README's test command and what CI (.ci/run) runs.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
export CARGO_TERM_COLOR=never

# Size budget of the stripped LTO cdylib for the host (bytes); see the README.
SIZE_BUDGET_BYTES=4650000

need() { command -v "$1" >/dev/null 2>&1; }
section() { printf '\n==> %s\n' "$*"; }

section "tools"
if ! need mvn || ! need javac; then
  echo "installing JDK 17 and Maven from Debian"
  apt-get update -qq && apt-get install -y -qq openjdk-17-jdk-headless maven >/dev/null
fi
# An independent QR reader for the rendered-code tests.
if ! python3 -c "import zxingcpp, PIL" >/dev/null 2>&1; then
  echo "installing zxing-cpp and Pillow from PyPI"
  python3 -m pip install --quiet zxing-cpp pillow
fi
cargo --version; javac -version 2>&1
# Read whole, then print the first line: `mvn -v | head -1` fails at random under pipefail
# (SIGPIPE to mvn while it still writes).
mvn_version="$(mvn -v 2>/dev/null || true)"
printf '%s\n' "${mvn_version%%$'\n'*}"

section "cargo fmt --check"
cargo fmt --all -- --check

section "cargo clippy -D warnings"
cargo clippy -q --workspace --all-targets -- -D warnings

section "Rust tests"
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
cargo test --workspace 2>&1 | tee "$log"
rust_passed=$(awk '/^test result:/ {for (i=1;i<=NF;i++) if ($i ~ /^passed;?$/) s+=$(i-1)} END {print s+0}' "$log")
rust_failed=$(awk '/^test result:/ {for (i=1;i<=NF;i++) if ($i ~ /^failed;?$/) s+=$(i-1)} END {print s+0}' "$log")

section "schemathesis against the sandbox's OpenAPI document (patient and admin; 0 server errors, 0 schema violations)"
scripts/schemathesis-ci.sh

section "fuzzing: every decoder of outside input, bounded (FUZZ_SECONDS per target, default 20)"
scripts/fuzz-ci.sh

section "the README's terminal walk-through runs as written"
python3 scripts/readme-run.py

section "generated bindings match the library"
bindings/generate.sh --check

section "Kotlin JUnit 5 and Robolectric on the host JVM (real libcarepass_ffi.so, real sandbox binary)"
# Two commands: `-p carepass-ffi --lib -p carepass-sandbox` would apply --lib to the sandbox
# too and build no sandbox binary.
cargo build -q -p carepass-ffi --lib
cargo build -q -p carepass-sandbox --bin carepass-sandbox
rm -rf android/target/surefire-reports
mvn -B -q -Dstyle.color=never -f android/pom.xml test
kt_passed=0; kt_failed=0
for report in android/target/surefire-reports/TEST-*.xml; do
  [ -f "$report" ] || continue
  # sed stops at its first match itself (no pipe into head: see above).
  t=$(sed -n 's/.*<testsuite [^>]*tests="\([0-9]*\)".*/\1/p;T;q' "$report")
  f=$(sed -n 's/.*<testsuite [^>]*failures="\([0-9]*\)".*/\1/p;T;q' "$report")
  e=$(sed -n 's/.*<testsuite [^>]*errors="\([0-9]*\)".*/\1/p;T;q' "$report")
  s=$(sed -n 's/.*<testsuite [^>]*skipped="\([0-9]*\)".*/\1/p;T;q' "$report")
  kt_passed=$((kt_passed + ${t:-0} - ${f:-0} - ${e:-0} - ${s:-0}))
  kt_failed=$((kt_failed + ${f:-0} + ${e:-0}))
done
echo "Kotlin: $kt_passed passed, $kt_failed failed"
if [ "$kt_passed" -eq 0 ]; then
  echo "no Kotlin test ran" >&2
  exit 1
fi

# ---- Android shell (issue 14): androidMain is compiled and the Robolectric tests run in the
# mvn run above; here: each Robolectric class ran, 16 KB pages, licence list current. ----------
section "Android: Robolectric tests ran, 16 KB page alignment, third-party licences"
android/check-robolectric-ran.sh
android/build-native.sh
python3 android/third-party-licenses.py --check

section "release library size (budget $SIZE_BUDGET_BYTES bytes)"
bindings/release-size.sh --budget "$SIZE_BUDGET_BYTES"

section "summary"
echo "Rust: $rust_passed passed, $rust_failed failed; Kotlin: $kt_passed passed, $kt_failed failed"
echo "$((rust_passed + kt_passed)) passed, $((rust_failed + kt_failed)) failed"
