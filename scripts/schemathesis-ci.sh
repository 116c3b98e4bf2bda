#!/usr/bin/env bash
# Property-based API testing of the sandbox platform with schemathesis, driven by the
# OpenAPI document the sandbox serves at /openapi.json.
#
#   scripts/schemathesis-ci.sh
#
# 1. Installs schemathesis (pinned in tests/schemathesis/requirements.txt, with
#    `cryptography` for the device key) into its own virtualenv, target/schemathesis-venv
#    (SCHEMATHESIS_VENV), unless that already has them.
# 2. Builds the sandbox binary and starts it on a free loopback port — port 0: the sandbox
#    binds a free port and prints `listening on http://127.0.0.1:PORT`, which is read back,
#    so nothing can take the port between finding and binding it (SCHEMATHESIS_PORT picks
#    one) — with a fresh data dir, the demo seed and a random admin token. A trap stops it
#    on any exit.
# 3. tests/schemathesis/fixtures.py enrols two devices for the demo patient 13800000001
#    (a P-256 key made with `cryptography`; POST /v1/enrolments) — the first one's access
#    token is the patient's bearer token — and makes real resources: a pending bill, a bill
#    paid by card (quote, device-signed consent, POST /v1/payments), an order. It writes a
#    schemathesis config whose dictionaries hold those ids, so path parameters and body
#    fields named bill_id, payment_id, order_id, device_id (the spare device), person_id,
#    rx_id, quote_id, pharmacy_id take a real id 70% of the time and a generated one
#    otherwise: both the "found" and the "not found" paths are fuzzed.
# 4. Runs schemathesis with every check (SCHEMATHESIS_CHECKS, default `all`: no server
#    error; status codes, content types, headers and bodies as documented; schema-valid data
#    accepted and schema-invalid data refused; a missing required header or the bearer token
#    refused; unsupported methods answered 405; no use after free; …), at most
#    SCHEMATHESIS_MAX_EXAMPLES (default 20) examples per operation in the fuzzing phase, a
#    fixed seed (SCHEMATHESIS_SEED), every phase (examples, coverage, fuzzing, stateful),
#    positive and negative data, one worker:
#      a. `patient`: the patient's token, on every operation but the two below;
#      b. `patient-logout`: the patient's token on DELETE /v1/sessions/current alone, after
#         (a): it ends the very session the token belongs to, and run inside (a) it would
#         turn every later patient case into a 401;
#      c. `admin`: the admin token (clinic, pharmacy and test-fixture roles) on every
#         operation, last, since it moves the platform clock (which would expire the
#         patient's 15-minute token) and cancels, refunds and advances the fixtures;
#      d. `document`: GET /openapi.json, which schemathesis leaves out of a run unless it is
#         selected by name (it serves the document under test).
#    Excluded from (a), not a sandbox bug: GET /v1/inbox/stream is a server-sent event
#    stream that never ends by design (a heartbeat every 15 s); schemathesis reads a whole
#    body, so every case would sit out the request timeout (a first try took 196 s). Run (c)
#    still calls it (a token that is not a session's answers 401 at once), and
#    tests/tests/authz_matrix.rs reads it as a stream.
#    Narrowed, for rules JSON Schema cannot state (the OpenAPI document states every other
#    bound the server enforces: sandbox/src/api.rs, `conformance`), in the configuration
#    fixtures.py writes (SCHEMA_CANNOT_SAY, REFUSED_WITH_200):
#      - positive_data_acceptance also takes a 400 on 7 operations: a card number's Luhn
#        check (quotes, cash due, credit repayments; a quote's `none` also depends on the
#        bill), a public key on the P-256 curve (enrolments), a signing time within 5 minutes
#        of platform time (credit agreement), amounts whose product or sum overflows an i64
#        (admin bills), the consistency of family rules (admin PUT rules);
#      - negative_data_rejection also takes a 200 on 1 operation: POST /v1/counter/charges
#        answers a refused code `200 accepted: false` (as POST /v1/scans does, by design)
#        before it reads the items.
#
# Exits non-zero on any failure or error of any run, or if the sandbox dies; ends with
#   schemathesis: <N> cases, <F> failures
# The JSON reports and pytest reproductions of failures are kept in
# target/schemathesis-report (SCHEMATHESIS_REPORT_DIR); the sandbox's log in its
# sandbox.err there.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

VENV=${SCHEMATHESIS_VENV:-$ROOT/target/schemathesis-venv}
MAX_EXAMPLES=${SCHEMATHESIS_MAX_EXAMPLES:-20}
SEED=${SCHEMATHESIS_SEED:-20261202}
PORT=${SCHEMATHESIS_PORT:-0}
REPORTS=${SCHEMATHESIS_REPORT_DIR:-$ROOT/target/schemathesis-report}
PYTHON=${PYTHON:-python3}
# The checks every case must pass (all of schemathesis' checks; see 4 above).
CHECKS=${SCHEMATHESIS_CHECKS:-all}
ST_VERSION=$(sed -n 's/^schemathesis==//p' tests/schemathesis/requirements.txt)

work=$(mktemp -d "${TMPDIR:-/tmp}/schemathesis-ci.XXXXXX")
sandbox_pid=""
cleanup() {
    local rc=$?
    if [[ -n $sandbox_pid ]] && kill -0 "$sandbox_pid" 2>/dev/null; then
        kill -TERM "$sandbox_pid" 2>/dev/null || true
        wait "$sandbox_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

started=$SECONDS
say() { echo "schemathesis-ci: $*"; }

# ---- 1. schemathesis -------------------------------------------------------------------
t=$SECONDS
if "$VENV/bin/schemathesis" --version 2>/dev/null | grep -qx "schemathesis, version $ST_VERSION" \
    && "$VENV/bin/python" -c 'import cryptography' 2>/dev/null; then
    say "schemathesis $ST_VERSION already installed in $VENV"
else
    rm -rf "$VENV"
    "$PYTHON" -m venv "$VENV"
    "$VENV/bin/pip" install -q --disable-pip-version-check -r tests/schemathesis/requirements.txt
    say "installed schemathesis $ST_VERSION in $((SECONDS - t)) s"
fi
"$VENV/bin/schemathesis" --version

# ---- 2. the sandbox --------------------------------------------------------------------
t=$SECONDS
cargo build -q -p carepass-sandbox --bin carepass-sandbox
say "sandbox built in $((SECONDS - t)) s"
admin_token=$("$VENV/bin/python" -c 'import secrets; print(secrets.token_hex(16))')
target/debug/carepass-sandbox serve --listen "127.0.0.1:$PORT" --data "$work/data" --seed demo \
    --admin-token "$admin_token" >"$work/sandbox.out" 2>"$work/sandbox.err" &
sandbox_pid=$!
url=""
for _ in $(seq 1 200); do
    url=$(sed -n 's/^listening on //p' "$work/sandbox.out")
    [[ -n $url ]] && break
    if ! kill -0 "$sandbox_pid" 2>/dev/null; then
        say "the sandbox did not start:"
        cat "$work/sandbox.err" >&2
        exit 1
    fi
    sleep 0.05
done
[[ -n $url ]] || { say "the sandbox printed no address in 10 s"; exit 1; }
say "sandbox at $url (pid $sandbox_pid)"

# ---- 3. a patient and real resources -----------------------------------------------------
rm -rf "$REPORTS"
mkdir -p "$REPORTS"
"$VENV/bin/python" tests/schemathesis/fixtures.py "$url" "$admin_token" "$work/schemathesis.toml" >"$work/fixtures.env"
while IFS='=' read -r key value; do
    if [[ $key =~ ^CAREPASS_[A-Z_]+$ ]]; then
        export "$key=$value"
    fi
done <"$work/fixtures.env"
[[ -n ${CAREPASS_PATIENT_TOKEN:-} ]] || { say "no patient token"; exit 1; }
cp "$work/schemathesis.toml" "$REPORTS/schemathesis.toml"

# ---- 4. schemathesis runs --------------------------------------------------------------
failed_runs=()

# st NAME TOKEN [schemathesis options...]
st() {
    local name=$1 token=$2
    shift 2
    local t=$SECONDS rc=0
    say "run '$name'"
    # From the scratch dir: schemathesis keeps a cache (.schemathesis/) in its working dir.
    (cd "$work" && "$VENV/bin/schemathesis" --config-file "$work/schemathesis.toml" run "$url/openapi.json" \
        --header "Authorization: Bearer $token" \
        --checks "$CHECKS" \
        --max-examples "$MAX_EXAMPLES" \
        --seed "$SEED" \
        --workers 1 \
        --request-timeout 10 \
        --phases examples,coverage,fuzzing,stateful \
        --generation-database none \
        --no-color \
        --report json,pytest \
        --report-json-path "$REPORTS/$name.json" \
        --report-pytest-path "$REPORTS/$name-failures.py" \
        "$@") || rc=$?
    say "run '$name': exit $rc in $((SECONDS - t)) s"
    if [[ $rc -ne 0 ]]; then
        failed_runs+=("$name")
    fi
}

st patient "$CAREPASS_PATIENT_TOKEN" \
    --exclude-path /v1/inbox/stream \
    --exclude-path /v1/sessions/current
st patient-logout "$CAREPASS_PATIENT_TOKEN" --include-path /v1/sessions/current
st admin "$admin_token"
st document "$admin_token" --include-path /openapi.json

if ! kill -0 "$sandbox_pid" 2>/dev/null; then
    say "the sandbox died during the runs:"
    cat "$work/sandbox.err" >&2
    failed_runs+=("sandbox-died")
fi
cp "$work/sandbox.err" "$REPORTS/sandbox.err"

# ---- summary ---------------------------------------------------------------------------
summary=$("$VENV/bin/python" - "$REPORTS" patient patient-logout admin document <<'PY'
import json, os, sys

reports, names = sys.argv[1], sys.argv[2:]
cases = failures = errors = 0
for name in names:
    path = os.path.join(reports, f"{name}.json")
    if not os.path.exists(path):
        print(f"  {name}: no report (the run did not finish)", file=sys.stderr)
        errors += 1
        continue
    with open(path) as f:
        report = json.load(f)
    tc = report["test_cases"]
    n_fail = max(tc["with_failures"], len(report["failures"]))
    n_err = tc["errored"] + len(report["errors"])
    cases += tc["generated"]
    failures += n_fail
    errors += n_err
    print(
        f"  {name}: {tc['generated']} cases, {n_fail} with failures, {n_err} errors, "
        f"{report['operations']['tested']}/{report['operations']['selected']} operations, "
        f"{report['running_time']:.1f} s",
        file=sys.stderr,
    )
    for failure in report["failures"]:
        print(f"    FAILURE {json.dumps(failure, ensure_ascii=False)[:2000]}", file=sys.stderr)
    for error in report["errors"]:
        print(f"    ERROR {json.dumps(error, ensure_ascii=False)[:2000]}", file=sys.stderr)
print(f"{cases} {failures + errors}")
PY
)
read -r total_cases total_failures <<<"$summary"
say "done in $((SECONDS - started)) s"
if [[ ${#failed_runs[@]} -gt 0 && $total_failures -eq 0 ]]; then
    total_failures=${#failed_runs[@]}
fi
echo "schemathesis: $total_cases cases, $total_failures failures"
if [[ ${#failed_runs[@]} -gt 0 || $total_failures -gt 0 ]]; then
    say "failed: ${failed_runs[*]:-see above}"
    exit 1
fi
