#!/usr/bin/env python3
"""Writes the committed seed corpora, fuzz/corpus/<target>/, from the shared test vectors
(tests/vectors/) plus a few hand-made inputs, in each target's input format (see the doc
comment at the top of each fuzz_targets/<target>.rs).

Run from anywhere: python3 fuzz/make-seeds.py. It replaces the seed files it writes and
removes none; the fuzzer's own finds go to a scratch corpus (scripts/fuzz-ci.sh), never here.
"""
import base64
import json
import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parent.parent
VECTORS = ROOT / "tests" / "vectors"
CORPUS = ROOT / "fuzz" / "corpus"


def load(rel):
    return json.loads((VECTORS / rel).read_text(encoding="utf-8"))


def slug(name):
    s = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    return s[:60] or "empty"


def compact(value):
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def write(target, name, data):
    d = CORPUS / target
    d.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        data = data.encode("utf-8")
    (d / name).write_bytes(data)


def b45decode(text):
    alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:"
    vals = [alphabet.index(c) for c in text]
    out = bytearray()
    for i in range(0, len(vals), 3):
        g = vals[i:i + 3]
        if len(g) == 3:
            n = g[0] + g[1] * 45 + g[2] * 2025
            out += bytes([n >> 8, n & 0xFF])
        else:
            out.append(g[0] + g[1] * 45)
    return bytes(out)


def voucher():
    codes = load("voucher/codes.json")
    for case in codes["cases"]:
        write("voucher", f"code-{slug(case['name'])}.txt", case["payload"])
    for name in ("valid online", "valid offline"):
        payload = next(c["payload"] for c in codes["cases"] if c["name"] == name)
        write("voucher", f"bytes-{slug(name)}.bin", b45decode(payload[4:]))
    for case in load("voucher/revocations.json")["cases"]:
        write("voucher", f"revocations-{slug(case['name'])}.json", compact(case["list"]))


def doorbell():
    def encode(data):
        return b"\x00".join(k.encode() + b"\x01" + v.encode() for k, v in sorted(data.items()))

    for case in load("bills/doorbells.json")["cases"]:
        write("doorbell", f"{slug(case['name'])}.bin", encode(case["data"]))


def sse():
    def seed(name, max_line, chunk_seed, stream):
        write("sse", name, bytes([max_line, chunk_seed]) + stream)

    entry = b'{"seq":41,"bill":{"bill_id":"bill_00112233aabbccdd"}}'
    seed("inbox-event.bin", 255, 1, b"event: bill\nid: 41\ndata: " + entry + b"\n\n")
    seed("heartbeat-then-event.bin", 200, 7, b": ping\n\nid: 3\nevent: bill\ndata: {\"a\":1}\r\ndata: x\r\n\r\nid: 4\n")
    seed("line-ends.bin", 64, 3, b"data: a\r\rdata: b\n\ndata: c\r\n\r\n")
    seed("crlf-split.bin", 64, 9, b"data: x\r\n\n\r\n\r\r\n")
    seed("line-too-long.bin", 16, 2, b"data: " + b"a" * 40 + b"\n\n")
    seed("event-too-large.bin", 20, 5, b"data: 0123456789\n" * 12 + b"\n")
    seed("not-utf8.bin", 64, 4, b"data: \xff\xfe\n\n")
    seed("bare-fields.bin", 32, 6, b"data\nid\nevent\n\nid:\n\ndata:no-space\n\n")
    seed("zero-limit.bin", 0, 0, b"\n\n\r\n")


def settlement():
    cases = load("settlement/cases.json")
    for case in cases["cases"]:
        request = compact(case["request"])
        if case["policy"] == "demo":
            data = request
        else:
            data = compact(cases["policies"][case["policy"]]) + b"\x00" + request
        write("settlement", f"{slug(case['name'])}.json", data)


def wire():
    consent = load("payments/consent.json")
    write("wire", "pay-request-example.json", compact(consent["pay_request_example"]["body"]))
    # Every accepted quote, and the first refusal of each kind.
    kinds = set()
    for case in load("payments/quote_checks.json")["cases"]:
        if case["expect"] == "ok" or case["expect"] not in kinds:
            kinds.add(case["expect"])
            write("wire", f"quote-check-{slug(case['name'])}.json", compact(case))
    quote_case = load("payments/quote_checks.json")["cases"][0]
    write("wire", "bill.json", compact(quote_case["bill"]))
    write("wire", "quote.json", compact(quote_case["quote"]))
    write("wire", "revocation-list.json", compact(load("voucher/revocations.json")["cases"][0]["list"]))
    code = load("voucher/codes.json")["cases"][0]["payload"]
    issuer_key = bytes.fromhex(load("voucher/codes.json")["issuers"][0]["public_key_hex"])
    key_b64 = base64.urlsafe_b64encode(issuer_key).rstrip(b"=").decode()
    sig = consent["pay_request_example"]["body"]["signature"]
    item = {"item_code": "A10BA02", "name": "二甲双胍", "category": "A", "quantity": 2, "unit_price_fen": 2390}
    hand = {
        "verification-code-request": {"phone": "13800000001"},
        "enrol-request": {"phone": "13800000001", "code": "123456", "device_public_key": key_b64,
                          "device_name": "Pixel", "platform": "android"},
        "challenge-request": {"device_id": "dev_0011223344556677"},
        "login-request": {"device_id": "dev_0011223344556677", "phone": "13800000001", "code": "123456",
                          "nonce": "n_0011", "signature": sig},
        "refresh-request": {"refresh_token": "rt_0011223344"},
        "push-token": {"service": "fcm", "token": "fcm:abcdef0123456789"},
        "issue-bill-request": {"phone": "13800000001", "hospital": "示例市第一人民医院", "department": "内科",
                               "doctor": "李医生", "items": [item], "due_in_minutes": 1440,
                               "visit_type": "outpatient"},
        "quote-request": {"use_account": True, "channel": "card:4242424242424242"},
        "quote-request-credit": {"channel": "credit"},
        "confirm-request": {"code": "123456"},
        "cash-due-request": {"channel": "card:5555555555554444", "amount_fen": 1120,
                             "expires_at_ms": 1800000300000, "signature": sig},
        "refund-request": {"refund_id": "rf_1", "lines": [{"line": 0, "quantity": 1}], "reason": "returned"},
        "refund-request-whole": {"refund_id": "rf_2", "reason": "cancelled visit"},
        "counter-charge-request": {"payload": code, "purpose": "pharmacy_purchase", "merchant": "示例大药房",
                                   "items": [item]},
        "credit-agreement-request": {"limit_fen": 200000, "term_days": 30, "signed_at_ms": 1795435200000,
                                     "signature": sig},
        "credit-repay-request": {"channel": "card:4242424242424242", "amount_fen": 5000},
        "scan-request": {"payload": code, "purpose": "outpatient_settlement"},
        "pharmacy-quote-request": {"rx_id": "rx_0011", "options": {"location": {"lat": 30.59, "lon": 114.3},
                                   "fulfilment": "pickup", "max_distance_m": 5000, "limit": 20,
                                   "include_partial": True}, "use_account": True},
        "pharmacy-quote-request-delivery-open": {"rx_id": "rx_0011", "options": {
            "location": {"lat": 30.62, "lon": 114.25}, "fulfilment": "delivery", "max_distance_m": 100000,
            "open_at_ms": 1795435200000, "limit": 3, "include_partial": False}, "use_account": False},
        "order-request": {"rx_id": "rx_0011", "pharmacy_id": "ph_0001", "fulfilment": "delivery",
                          "address": {"text": "东湖路 18 号 3 栋 502", "location": {"lat": 30.6, "lon": 114.3},
                                      "contact_phone": "13800000001"}, "use_account": True},
        "clock-advance": {"advance_ms": 60000},
        "error-body": {"code": "quote_expired", "message": "the quote's time is over"},
        "error-body-unknown-code": {"code": "something_new", "message": "?"},
        "trust-list": {"issuers": [{"key_id": 1, "public_key": key_b64}]},
        "scan-outcome": {"accepted": False, "reason": "replayed", "holder": None, "presenter_device_id": None,
                         "presenter_person_id": None, "offline": False, "proxy": False},
    }
    for name, value in hand.items():
        write("wire", f"{name}.json", compact(value))
    write("wire", "signature-der.bin", bytes.fromhex(
        "3044022079be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f8179802201c"
        "7a5ae0b1a6b1b8f5d4c23e4a7c1f2d3b4a5968778695a4b3c2d1e0f1a2b3c4"))


def receipt():
    for case in load("payments/receipts.json")["cases"]:
        if case["check"] != "signed":
            continue
        write("receipt", f"signed-{slug(case['name'])}.json", compact(case["signed"]))
        if "receipt" in case:
            write("receipt", f"body-{slug(case['name'])}.json", compact(case["receipt"]))


if __name__ == "__main__":
    for make in (voucher, doorbell, sse, settlement, wire, receipt):
        make()
    for d in sorted(CORPUS.iterdir()):
        print(f"{d.name}: {len(list(d.iterdir()))} seeds")
