#!/usr/bin/env python3
"""Makes real resources on a running sandbox for schemathesis to reach past "not found",
and prints them as KEY=VALUE lines (ids only: letters, digits, `_`, `-`).

    python3 fixtures.py http://127.0.0.1:PORT ADMIN_TOKEN CONFIG.toml

It also writes CONFIG.toml, a schemathesis configuration whose dictionaries hold these ids:
path parameters and body fields of those names take one of them most of the time, and a
generated value otherwise (so both "found" and "not found" paths are fuzzed).

What it makes, for the demo patient 13800000001 (P1001):

- CAREPASS_PATIENT_TOKEN, CAREPASS_DEVICE_ID: a device enrolled through
  `POST /v1/enrolments` (docs/api.md § Enrolment: the phone, the code 123456 and the
  device's P-256 public key, SEC1 uncompressed, base64url without padding; enrolment itself
  needs no signature) and its session's access token;
- CAREPASS_SPARE_DEVICE_ID: a second device, the one schemathesis may revoke (revoking the
  first would end the session it tests with);
- CAREPASS_BILL_ID: a pending bill (admin `POST /admin/v1/bills`, the demo prescription);
- CAREPASS_PAID_BILL_ID, CAREPASS_QUOTE_ID, CAREPASS_PAYMENT_ID: another bill, quoted and
  paid by card through `POST /v1/payments`, the consent signed by the device key
  (docs/payments.md § 4; the byte layout of rust-core/src/domain/payment/consent.rs,
  checked here against tests/vectors/payments/consent.json);
- CAREPASS_ORDER_ID, CAREPASS_PHARMACY_ID: an order for the patient's prescription
  rx_p1001_chronic at the best-ranked pharmacy, for pickup.
"""

import base64
import json
import os
import re
import secrets
import struct
import sys
import urllib.error
import urllib.request

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

PHONE = "13800000001"
CODE = "123456"
CARD_OK = "card:4242424242424242"
HOME = {"lat": 30.5952, "lon": 114.2999}
CONSENT_CONTEXT = b"carepass-consent-v1\x00"
VECTORS = os.path.join(os.path.dirname(__file__), "..", "vectors", "payments", "consent.json")

# The demo prescription of docs/sandbox.md (a chronic-disease follow-up, ¥511.20).
DEMO_ITEMS = [
    ("110200001", "普通门诊诊查费", "A", 1, 2500),
    ("250102015", "糖化血红蛋白测定", "A", 1, 6000),
    ("250301001", "血清总胆固醇测定", "A", 1, 1500),
    ("XC08CAA010A001010100981", "苯磺酸氨氯地平片 5mg", "A", 2, 1680),
    ("XA10BAD024A001010104402", "盐酸二甲双胍缓释片 0.5g", "A", 2, 2350),
    ("XC10AAA150A001010100264", "阿托伐他汀钙片 20mg", "B", 4, 3290),
    ("ZZ0000000001", "血压计", "C", 1, 19900),
]


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


class Platform:
    def __init__(self, base: str):
        self.base = base.rstrip("/")

    def call(self, method, path, body=None, token=None, headers=None):
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(f"{self.base}{path}", data=data, method=method)
        request.add_header("accept", "application/json")
        if data is not None:
            request.add_header("content-type", "application/json")
        if token:
            request.add_header("authorization", f"Bearer {token}")
        for k, v in (headers or {}).items():
            request.add_header(k, v)
        try:
            with urllib.request.urlopen(request, timeout=15) as answer:
                return json.load(answer)
        except urllib.error.HTTPError as e:
            raise SystemExit(f"{method} {path}: {e.code} {e.read().decode(errors='replace')}")


class Device:
    """A device key and the session it got at enrolment."""

    def __init__(self, platform: Platform, phone: str):
        self.key = ec.generate_private_key(ec.SECP256R1())
        point = self.key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        grant = platform.call(
            "POST",
            "/v1/enrolments",
            {
                "phone": phone,
                "code": CODE,
                "device_public_key": b64url(point),
                "device_name": "schemathesis",
                "platform": "terminal",
            },
        )
        self.person_id = grant["person"]["person_id"]
        self.device_id = grant["device_id"]
        self.token = grant["tokens"]["access_token"]

    def sign(self, message: bytes) -> str:
        """ECDSA P-256 / SHA-256, fixed 64-byte r||s, base64url without padding."""
        r, s = decode_dss_signature(self.key.sign(message, ec.ECDSA(hashes.SHA256())))
        return b64url(r.to_bytes(32, "big") + s.to_bytes(32, "big"))


def consent_bytes(c: dict) -> bytes:
    def text(v: str) -> bytes:
        raw = v.encode()
        assert len(raw) <= 255, "a consent string is at most 255 bytes"
        return struct.pack(">H", len(raw)) + raw

    kind = {"pay": 1, "cash_due": 2}[c["kind"]]
    out = CONSENT_CONTEXT + bytes([kind])
    for field in ("idempotency_key", "bill_id", "reference", "subject", "actor", "device_id", "link_id"):
        out += text(c[field])
    for field in ("total", "fund", "personal_account", "mutual_aid"):
        out += struct.pack(">q", c[field])
    out += text(c["mutual_aid_from"])
    out += struct.pack(">q", c["cash"])
    out += text(c["channel"])
    out += struct.pack(">q", c["expires_at_ms"])
    return out


def check_consent_vectors() -> None:
    with open(VECTORS) as f:
        cases = [c for c in json.load(f)["cases"] if c.get("check") == "encode" and c.get("expect") == "ok"]
    assert cases, "consent vectors"
    for case in cases:
        got = consent_bytes(case["consent"]).hex()
        assert got == case["signed_bytes_hex"], f"consent bytes differ from the vector '{case['name']}'"


# Which ids each parameter or body field name draws from. The device schemathesis may revoke
# is the spare one: revoking the first would end the session the patient runs use.
DICTIONARIES = {
    "bill_id": ["CAREPASS_BILL_ID", "CAREPASS_PAID_BILL_ID"],
    "payment_id": ["CAREPASS_PAYMENT_ID"],
    "order_id": ["CAREPASS_ORDER_ID"],
    "device_id": ["CAREPASS_SPARE_DEVICE_ID"],
    "person_id": ["CAREPASS_PERSON_ID"],
    "quote_id": ["CAREPASS_QUOTE_ID"],
    "pharmacy_id": ["CAREPASS_PHARMACY_ID"],
    "rx_id": [],
}
BINDINGS = {
    "path.bill_id": "bill_id",
    "path.payment_id": "payment_id",
    "path.order_id": "order_id",
    "path.device_id": "device_id",
    "path.person_id": "person_id",
    "body.bill_id": "bill_id",
    "body.quote_id": "quote_id",
    "body.rx_id": "rx_id",
    "body.pharmacy_id": "pharmacy_id",
    "body.device_id": "device_id",
    "body.subject": "person_id",
    "body.actor": "person_id",
}
PROBABILITY = 0.7

# positive_data_acceptance's statuses (schemathesis' default) and negative_data_rejection's.
POSITIVE_OK = ["2xx", "3xx", "401", "403", "404", "409", "429", "5xx"]
NEGATIVE_OK = ["400", "401", "403", "404", "405", "406", "409", "415", "422", "428", "429", "5xx"]

# Operations where a schema-valid request may still be refused 400, for a rule JSON Schema
# cannot state; the OpenAPI document states every other bound the server enforces
# (sandbox/src/api.rs, `conformance`), so schema-valid data is accepted everywhere else.
SCHEMA_CANNOT_SAY = {
    "POST /v1/enrolments": "the public key must be a point on the P-256 curve",
    "POST /v1/bills/{bill_id}/quotes": "a card number must pass the Luhn check; `none` only when nothing is left for cash",
    "POST /v1/credit/repayments": "a card number must pass the Luhn check",
    "POST /v1/payments/{payment_id}/cash": "a card number must pass the Luhn check",
    "POST /v1/credit/agreement": "`signed_at_ms` must be within 5 minutes of platform time",
    "POST /admin/v1/bills": "quantity × unit price, and the bill's total, must fit in an i64",
    "PUT /admin/v1/family/rules": "the rules must be consistent (bands in rising order from age 0, …)",
}
# Operations whose refusal of some schema-invalid requests is a 200: a counter charge with a
# code the scanner refuses answers `200 accepted: false` (as POST /v1/scans does) before its
# items are read, so a bad item list behind a refused code is not a 4xx.
REFUSED_WITH_200 = {
    "POST /v1/counter/charges": "a refused code answers 200 accepted: false before the items are read",
}


def write_config(path: str, values: dict) -> None:
    lines = ["# Written by tests/schemathesis/fixtures.py for one sandbox run.", "", "[dictionaries]"]
    for name, keys in DICTIONARIES.items():
        entries = [values[k] for k in keys] + (["rx_p1001_chronic"] if name == "rx_id" else [])
        lines.append(f"{name} = {{ values = {json.dumps(entries)} }}")
    lines += ["", "[parameters]"]
    for key, dictionary in BINDINGS.items():
        lines.append(f'"{key}" = {{ dictionary = "{dictionary}", probability = {PROBABILITY} }}')
    for label, why in SCHEMA_CANNOT_SAY.items():
        lines += ["", f"# {why}", "[[operations]]", f"include-name = {json.dumps(label)}",
                  f"checks.positive_data_acceptance.expected-statuses = {json.dumps(POSITIVE_OK + ['400'])}"]
    for label, why in REFUSED_WITH_200.items():
        lines += ["", f"# {why}", "[[operations]]", f"include-name = {json.dumps(label)}",
                  f"checks.negative_data_rejection.expected-statuses = {json.dumps(NEGATIVE_OK + ['200'])}"]
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def main() -> int:
    if len(sys.argv) != 4:
        print(__doc__, file=sys.stderr)
        return 2
    platform, admin, config_path = Platform(sys.argv[1]), sys.argv[2], sys.argv[3]
    check_consent_vectors()
    me = Device(platform, PHONE)
    spare = Device(platform, PHONE)

    def bill():
        items = [
            {"item_code": c, "name": n, "category": k, "quantity": q, "unit_price_fen": p}
            for (c, n, k, q, p) in DEMO_ITEMS
        ]
        body = {"phone": PHONE, "hospital": "示例市第一人民医院", "department": "内分泌科", "doctor": "李医生", "items": items}
        return platform.call("POST", "/admin/v1/bills", body, token=admin)["bill_id"]

    pending, paid = bill(), bill()
    quote = platform.call(
        "POST", f"/v1/bills/{paid}/quotes", {"channel": CARD_OK, "use_account": True}, token=me.token
    )
    insurance, cash = quote["legs"]["insurance"], quote["legs"]["cash"]
    key = f"schemathesis-fixture-{secrets.token_hex(8)}"
    consent = {
        "kind": "pay",
        "idempotency_key": key,
        "bill_id": quote["bill_id"],
        "reference": quote["quote_id"],
        "subject": quote["subject"],
        "actor": quote["actor"],
        "device_id": quote["device_id"],
        "link_id": quote.get("link_id") or "",
        "total": quote["settlement"]["total"],
        "fund": insurance["fund"],
        "personal_account": insurance["personal_account"],
        "mutual_aid": insurance["mutual_aid"],
        "mutual_aid_from": insurance.get("mutual_aid_from") or "",
        "cash": cash["amount"],
        "channel": cash["channel"],
        "expires_at_ms": quote["expires_at_ms"],
    }
    pay = {
        "quote_id": consent["reference"],
        "bill_id": consent["bill_id"],
        "subject": consent["subject"],
        "actor": consent["actor"],
        "device_id": consent["device_id"],
        "total_fen": consent["total"],
        "fund_fen": consent["fund"],
        "personal_account_fen": consent["personal_account"],
        "mutual_aid_fen": consent["mutual_aid"],
        "cash_fen": consent["cash"],
        "channel": consent["channel"],
        "expires_at_ms": consent["expires_at_ms"],
        "signature": me.sign(consent_bytes(consent)),
    }
    payment = platform.call("POST", "/v1/payments", pay, token=me.token, headers={"Idempotency-Key": key})
    if payment.get("status") != "succeeded":
        raise SystemExit(f"the fixture payment did not succeed: {json.dumps(payment)[:500]}")

    ranking = platform.call(
        "POST", "/v1/pharmacy-quotes", {"rx_id": "rx_p1001_chronic", "options": {"location": HOME}}, token=me.token
    )
    complete = [q for q in ranking["quotes"] if q.get("stock") == "complete"] or ranking["quotes"]
    pharmacy = complete[0]["pharmacy_id"]
    order = platform.call(
        "POST",
        "/v1/orders",
        {"rx_id": "rx_p1001_chronic", "pharmacy_id": pharmacy, "fulfilment": "pickup"},
        token=me.token,
    )

    values = {
        "CAREPASS_PATIENT_TOKEN": me.token,
        "CAREPASS_PERSON_ID": me.person_id,
        "CAREPASS_DEVICE_ID": me.device_id,
        "CAREPASS_SPARE_DEVICE_ID": spare.device_id,
        "CAREPASS_BILL_ID": pending,
        "CAREPASS_PAID_BILL_ID": paid,
        "CAREPASS_QUOTE_ID": quote["quote_id"],
        "CAREPASS_PAYMENT_ID": payment["payment_id"],
        "CAREPASS_ORDER_ID": order["order_id"],
        "CAREPASS_PHARMACY_ID": pharmacy,
    }
    for k, v in values.items():
        if not re.fullmatch(r"[A-Za-z0-9_-]+", v):
            raise SystemExit(f"{k} is not a plain id: {v!r}")
        print(f"{k}={v}")
    write_config(config_path, values)
    print(f"fixtures: {me.person_id}, devices {me.device_id} (+ spare {spare.device_id}), bills {pending} "
          f"(pending) and {paid} (paid: {payment['payment_id']}), order {order['order_id']}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
