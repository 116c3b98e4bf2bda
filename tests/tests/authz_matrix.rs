//! The authorization matrix, over real HTTP on loopback: every operation the platform's own
//! OpenAPI document lists (so a new route is covered without editing this file) × five callers:
//!
//! | caller | who | expected |
//! |---|---|---|
//! | `anonymous` | no `Authorization` header | 401 on every operation whose `security` is non-empty |
//! | `revoked` | a second device of patient A, enrolled, then revoked by `POST /admin/v1/devices/{id}/revoke` | 401 `unauthorized` on session operations; 403 on admin ones |
//! | `patient-b` | another demo patient (P3001, unrelated to A) on A's resource ids | 403 or 404 where a path parameter is A's; never 2xx where the body names A's resources; never A's data in any answer |
//! | `b-as-a` | patient B's own second session naming A in `x-carepass-subject` | as `patient-b` (the header must not turn B into A), and never 2xx on a session operation: B holds no family link to A |
//! | `patient-a` | A (13800000001 / P1001) on his own resources | no 5xx; 403 on admin operations |
//!
//! Every patient caller on an operation whose `security` names the `admin` scheme must get 403
//! ("a patient on an admin route": a token, but not the admin token), and no cell may answer
//! 5xx or fail to answer.
//! "Public" is what the document says: an operation without `security` (or with an empty
//! requirement). A's data is recognised by his person id, name, phone and his resource ids.
//!
//! Admin-security operations: no token at all is `401 unauthorized` with `WWW-Authenticate`,
//! as on session operations (no credentials); a token that is not the admin token is
//! `403 forbidden` (docs/api.md).
//!
//! Path parameters are filled with A's real resource ids (a pending bill, a paid bill's
//! payment, his order for `rx_p1001_chronic`, his device); header parameters with a fresh
//! value per cell; bodies with the smallest value of the operation's request schema (required
//! properties only, ids again A's). Parameters the document places `in: path` that do not occur
//! in the path template are left out and listed (they are query parameters in the handlers).
//!
//! Callers run in the order anonymous, revoked, patient-b, b-as-a, patient-a, so B tries A's
//! resources before A's own call may change them (A cancels his order, revokes his device,
//! ends his session). After every cell a session caller's token is probed on `GET /v1/me`;
//! a session the cell ended (logout, revoked device, an expired token) is signed in again
//! (`sign_in` enrols afresh when the device is gone), and A's device id is updated.
//!
//! Limits on abuse: a 429 with `Retry-After` of at most two minutes moves the platform clock
//! forward that far (admin `POST /admin/v1/clock`) and the cell is sent once more, so the
//! limits never decide a cell (SMS codes are spaced 30 s; login challenges are 10 a minute per
//! device). A 429 that remains (a longer window) counts as a refusal for every caller but
//! A — a 429 to B leaks nothing — and is listed; a remaining 429 to A is listed too, since it
//! hides A's real answer. Clock moves stay far below the 15-minute access-token lifetime.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use carepass_core::domain::payment::Channel;
use carepass_core::domain::pharmacy::{Fulfilment, GeoPoint, RankQuery};
use carepass_core::io::secrets::MemorySecretStore;
use carepass_core::{CarePass, QuoteOptions};
use carepass_journeys::*;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Patient B: unrelated to A (another household, another region).
const PATIENT_B: &str = "13800000007";
const A_PERSON: &str = "P1001";
const A_NAME: &str = "张伟";
const A_PRESCRIPTION: &str = "rx_p1001_chronic";
const CARD_OK: &str = "card:4242424242424242";
const HOME: GeoPoint = GeoPoint { lat: 30.5952, lon: 114.2999 };
/// The longest wait a 429 may ask for that the test buys by moving the clock.
const MAX_CLOCK_SKIP_S: i64 = 120;
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a server-sent event stream is read before the connection is dropped.
const STREAM_READ: Duration = Duration::from_millis(400);

// ---- raw HTTP ----------------------------------------------------------------------------

/// An answer as it came over the wire.
#[derive(Debug, Clone)]
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    fn value(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    fn code(&self) -> String {
        self.value()["code"].as_str().unwrap_or_default().to_string()
    }
}

/// One HTTP/1.1 request on its own connection (`connection: close`). A `text/event-stream`
/// answer is read for [`STREAM_READ`], then the connection is dropped.
async fn http(
    addr: SocketAddr,
    method: &str,
    target: &str,
    headers: &[(String, String)],
    body: Option<&[u8]>,
) -> std::io::Result<Answer> {
    let mut head =
        format!("{method} {target} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\naccept: application/json\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    if body.is_some() {
        head.push_str("content-type: application/json\r\n");
    }
    head.push_str(&format!("content-length: {}\r\n\r\n", body.map_or(0, |b| b.len())));
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    stream.write_all(head.as_bytes()).await?;
    if let Some(b) = body {
        stream.write_all(b).await?;
    }
    let mut raw = Vec::new();
    let mut deadline = Instant::now() + REQUEST_TIMEOUT;
    let mut streaming = false;
    let mut buf = [0u8; 8192];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, stream.read(&mut buf)).await {
            Ok(Ok(0)) => break,
            Ok(Ok(n)) => raw.extend_from_slice(&buf[..n]),
            Ok(Err(e)) => return Err(e),
            Err(_) if streaming => break,
            Err(_) => return Err(std::io::Error::new(std::io::ErrorKind::TimedOut, "no whole answer in time")),
        }
        if !streaming {
            if let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&raw[..end]).to_ascii_lowercase();
                if head.contains("content-type: text/event-stream") {
                    streaming = true;
                    deadline = Instant::now() + STREAM_READ;
                }
            }
        }
    }
    parse_answer(&raw, streaming)
}

fn parse_answer(raw: &[u8], streaming: bool) -> std::io::Result<Answer> {
    let eof = || std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "the connection ended without an answer");
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").ok_or_else(eof)?;
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status: u16 = lines.next().and_then(|l| l.split(' ').nth(1)).and_then(|s| s.parse().ok()).ok_or_else(eof)?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':').map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string())))
        .collect();
    let rest = &raw[split + 4..];
    let chunked = headers.iter().any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"));
    let body = if streaming {
        // A stream cut short: its raw bytes (chunk sizes and all) are what was sent.
        rest.to_vec()
    } else if chunked {
        let mut out = Vec::new();
        let mut at = 0;
        loop {
            let end = rest[at..].windows(2).position(|w| w == b"\r\n").ok_or_else(eof)? + at;
            let size = usize::from_str_radix(String::from_utf8_lossy(&rest[at..end]).trim(), 16).map_err(|_| eof())?;
            if size == 0 {
                break;
            }
            out.extend_from_slice(rest.get(end + 2..end + 2 + size).ok_or_else(eof)?);
            at = end + 2 + size + 2;
        }
        out
    } else {
        match headers.iter().find(|(k, _)| k == "content-length").and_then(|(_, v)| v.parse::<usize>().ok()) {
            Some(n) => rest.get(..n).ok_or_else(eof)?.to_vec(),
            None => rest.to_vec(),
        }
    };
    Ok(Answer { status, headers, body })
}

async fn admin_call(addr: SocketAddr, method: &str, path: &str, body: Option<Value>) -> Answer {
    let headers = vec![("authorization".to_string(), format!("Bearer {ADMIN_TOKEN}"))];
    let bytes = body.map(|b| serde_json::to_vec(&b).unwrap());
    http(addr, method, path, &headers, bytes.as_deref()).await.expect("an admin answer")
}

// ---- the document ------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Security {
    Public,
    Session,
    Admin,
}

#[derive(Debug, Clone)]
struct Param {
    name: String,
    location: String,
    required: bool,
    schema: Value,
}

#[derive(Debug, Clone)]
struct Operation {
    method: String,
    template: String,
    security: Security,
    /// The scheme names of the operation's security requirements.
    schemes: Vec<String>,
    params: Vec<Param>,
    body: Option<Value>,
}

impl Operation {
    fn label(&self) -> String {
        format!("{} {}", self.method, self.template)
    }
}

const METHODS: [&str; 8] = ["get", "put", "post", "delete", "options", "head", "patch", "trace"];

/// Every operation in the document, sorted by path and method.
fn operations(doc: &Value) -> Vec<Operation> {
    let default_security = doc.get("security").cloned().unwrap_or(Value::Array(vec![]));
    let mut out = Vec::new();
    for (template, item) in doc["paths"].as_object().expect("paths") {
        let shared: Vec<Value> = item.get("parameters").and_then(Value::as_array).cloned().unwrap_or_default();
        for method in METHODS {
            let Some(op) = item.get(method) else { continue };
            let security = op.get("security").unwrap_or(&default_security);
            // Public: no requirement at all, or one alternative that is empty (`{}`).
            let requirements = security.as_array().cloned().unwrap_or_default();
            let public =
                requirements.is_empty() || requirements.iter().any(|r| r.as_object().is_some_and(|o| o.is_empty()));
            let schemes: Vec<String> =
                requirements.iter().filter_map(Value::as_object).flat_map(|o| o.keys().cloned()).collect();
            let security = if public {
                Security::Public
            } else if schemes.iter().any(|s| s == "admin") {
                Security::Admin
            } else {
                Security::Session
            };
            let mut params: Vec<Param> = Vec::new();
            for p in shared.iter().chain(op.get("parameters").and_then(Value::as_array).into_iter().flatten()) {
                let p = resolve(doc, p);
                let name = p["name"].as_str().unwrap_or_default().to_string();
                let location = p["in"].as_str().unwrap_or_default().to_string();
                params.retain(|q| !(q.name == name && q.location == location));
                params.push(Param {
                    name,
                    location,
                    required: p["required"].as_bool().unwrap_or(false),
                    schema: p.get("schema").cloned().unwrap_or(Value::Null),
                });
            }
            let body = op
                .get("requestBody")
                .map(|b| resolve(doc, b))
                .and_then(|b| b["content"]["application/json"].get("schema").cloned());
            out.push(Operation {
                method: method.to_ascii_uppercase(),
                template: template.clone(),
                security,
                schemes,
                params,
                body,
            });
        }
    }
    out.sort_by(|a, b| (&a.template, &a.method).cmp(&(&b.template, &b.method)));
    out
}

/// Follows a local `$ref` (`#/components/...`).
fn resolve<'a>(doc: &'a Value, v: &'a Value) -> &'a Value {
    let mut v = v;
    for _ in 0..16 {
        match v.get("$ref").and_then(Value::as_str) {
            Some(r) => match r.strip_prefix('#') {
                Some(pointer) => v = doc.pointer(pointer).unwrap_or(&Value::Null),
                None => return &Value::Null,
            },
            None => return v,
        }
    }
    v
}

// ---- A's resources, and the values that fill parameters and bodies ------------------------

/// A's resource ids: what path parameters and body fields are filled with.
#[derive(Debug, Clone)]
struct Resources {
    device_id: String,
    bill_id: String,
    paid_bill_id: String,
    quote_id: String,
    payment_id: String,
    order_id: String,
    pharmacy_id: String,
}

impl Resources {
    /// The value for a field or parameter called `name`, and whether it is one of A's.
    fn string(&self, name: &str) -> (String, bool) {
        let a = |v: &str| (v.to_string(), true);
        match name {
            "device_id" => a(&self.device_id),
            "bill_id" => a(&self.bill_id),
            "quote_id" => a(&self.quote_id),
            "payment_id" => a(&self.payment_id),
            "order_id" => a(&self.order_id),
            "rx_id" | "prescription_id" => a(A_PRESCRIPTION),
            "person_id" | "subject" | "actor" => a(A_PERSON),
            "phone" | "contact_phone" => a(PATIENT),
            "pharmacy_id" => (self.pharmacy_id.clone(), false),
            "code" => (CODE.to_string(), false),
            "channel" => (CARD_OK.to_string(), false),
            "refresh_token" => ("authz-matrix-not-a-refresh-token".to_string(), false),
            _ => ("authz-matrix".to_string(), false),
        }
    }

    /// What in an answer to someone else would be A's data.
    fn markers(&self) -> Vec<String> {
        [
            A_PERSON,
            A_NAME,
            PATIENT,
            A_PRESCRIPTION,
            &self.device_id,
            &self.bill_id,
            &self.paid_bill_id,
            &self.quote_id,
            &self.payment_id,
            &self.order_id,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    }
}

/// The smallest value of `schema` (required properties only), with `name` the property or
/// parameter it is for; sets `names_a` when a value is one of A's ids.
fn example(doc: &Value, schema: &Value, name: &str, ids: &Resources, names_a: &mut bool, depth: usize) -> Value {
    let schema = resolve(doc, schema);
    if depth > 12 {
        return Value::Null;
    }
    if let Some(v) = schema.get("const") {
        return v.clone();
    }
    if let Some(first) = schema.get("enum").and_then(Value::as_array).and_then(|e| e.first()) {
        return first.clone();
    }
    for key in ["oneOf", "anyOf"] {
        if let Some(options) = schema.get(key).and_then(Value::as_array) {
            let pick = options.iter().find(|o| resolve(doc, o)["type"] != "null").or(options.first());
            return pick.map_or(Value::Null, |o| example(doc, o, name, ids, names_a, depth + 1));
        }
    }
    if let Some(parts) = schema.get("allOf").and_then(Value::as_array) {
        let mut merged = serde_json::Map::new();
        for part in parts {
            match example(doc, part, name, ids, names_a, depth + 1) {
                Value::Object(o) => merged.extend(o),
                other if parts.len() == 1 => return other,
                _ => {}
            }
        }
        return Value::Object(merged);
    }
    let kind = match &schema["type"] {
        Value::String(t) => t.clone(),
        Value::Array(ts) => ts.iter().filter_map(Value::as_str).find(|t| *t != "null").unwrap_or("null").to_string(),
        _ if schema.get("properties").is_some() => "object".into(),
        _ => "object".into(),
    };
    let minimum = schema["minimum"].as_f64().unwrap_or(0.0).max(0.0);
    match kind.as_str() {
        "string" => {
            let (v, is_a) = ids.string(name);
            *names_a |= is_a;
            Value::String(v)
        }
        "integer" => json!(minimum as i64),
        "number" => match name {
            "lat" => json!(HOME.lat),
            "lon" => json!(HOME.lon),
            _ => json!(minimum),
        },
        "boolean" => json!(true),
        "array" => {
            let n = schema["minItems"].as_u64().unwrap_or(0) as usize;
            let items = schema.get("items").cloned().unwrap_or(Value::Null);
            Value::Array((0..n).map(|_| example(doc, &items, name, ids, names_a, depth + 1)).collect())
        }
        "null" => Value::Null,
        _ => {
            let mut out = serde_json::Map::new();
            let required: Vec<&str> =
                schema["required"].as_array().map(|r| r.iter().filter_map(Value::as_str).collect()).unwrap_or_default();
            for (prop, sub) in schema["properties"].as_object().into_iter().flatten() {
                if required.contains(&prop.as_str()) {
                    out.insert(prop.clone(), example(doc, sub, prop, ids, names_a, depth + 1));
                }
            }
            Value::Object(out)
        }
    }
}

/// A request built for one cell.
struct Request {
    target: String,
    headers: Vec<(String, String)>,
    body: Option<Vec<u8>>,
    /// A path parameter is one of A's ids.
    path_names_a: bool,
    /// The body names one of A's ids.
    body_names_a: bool,
}

fn build(doc: &Value, op: &Operation, ids: &Resources, cell: usize, notes: &mut Vec<String>) -> Request {
    let mut target = op.template.clone();
    let mut query = Vec::new();
    let mut headers = Vec::new();
    let mut path_names_a = false;
    let mut body_names_a = false;
    for p in &op.params {
        let mut names_a = false;
        match p.location.as_str() {
            "path" => {
                let slot = format!("{{{}}}", p.name);
                if target.contains(&slot) {
                    let v = example(doc, &p.schema, &p.name, ids, &mut names_a, 0);
                    let v = v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string());
                    target = target.replace(&slot, &v);
                    path_names_a |= names_a;
                } else {
                    let note = format!(
                        "{}: parameter `{}` is declared `in: path` (required: {}) but the path has no {slot}",
                        op.label(),
                        p.name,
                        p.required
                    );
                    if !notes.contains(&note) {
                        notes.push(note);
                    }
                }
            }
            "query" if p.required => {
                let v = example(doc, &p.schema, &p.name, ids, &mut names_a, 0);
                query.push(format!("{}={}", p.name, v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string())));
            }
            "header" => {
                // A fresh value per cell (an Idempotency-Key never replays another cell).
                let v = if p.name.eq_ignore_ascii_case("idempotency-key") {
                    format!("authz-matrix-{cell}")
                } else {
                    let v = example(doc, &p.schema, &p.name, ids, &mut names_a, 0);
                    v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string())
                };
                headers.push((p.name.to_ascii_lowercase(), v));
            }
            _ => {}
        }
    }
    if !query.is_empty() {
        target = format!("{target}?{}", query.join("&"));
    }
    let body = match &op.body {
        Some(schema) => {
            let v = example(doc, schema, "", ids, &mut body_names_a, 0);
            Some(serde_json::to_vec(&v).unwrap())
        }
        None if matches!(op.method.as_str(), "POST" | "PUT" | "PATCH") => Some(b"{}".to_vec()),
        None => None,
    };
    Request { target, headers, body, path_names_a, body_names_a }
}

// ---- the callers -------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Who {
    Anonymous,
    Revoked,
    PatientB,
    BAsA,
    PatientA,
}

impl Who {
    const ALL: [Who; 5] = [Who::Anonymous, Who::Revoked, Who::PatientB, Who::BAsA, Who::PatientA];

    fn name(self) -> &'static str {
        match self {
            Who::Anonymous => "anonymous",
            Who::Revoked => "revoked",
            Who::PatientB => "patient-b",
            Who::BAsA => "b-as-a",
            Who::PatientA => "patient-a",
        }
    }
}

/// A signed-in phone whose token the matrix uses raw.
struct Session {
    app: Arc<CarePass>,
    _dir: tempfile::TempDir,
    phone: String,
    person_id: String,
    device_id: String,
    token: String,
    /// How often the matrix had to sign it in again.
    renewed: u32,
}

async fn sign_in(platform: &TestPlatform, phone_number: &str) -> Session {
    let dir = tempfile::tempdir().unwrap();
    let app = phone(&platform.url(), dir.path(), &MemorySecretStore::new());
    let profile = app.enrol(phone_number, CODE).await.expect("enrols");
    let token = stored_tokens(&app, &profile.person_id).access_token;
    Session {
        app,
        _dir: dir,
        phone: phone_number.into(),
        person_id: profile.person_id,
        device_id: profile.device_id,
        token,
        renewed: 0,
    }
}

impl Session {
    /// Signs in again when the token no longer works (a cell ended the session, revoked
    /// the device, or the clock outran the token).
    async fn keep_alive(&mut self, platform: &TestPlatform) {
        let headers = vec![("authorization".to_string(), format!("Bearer {}", self.token))];
        let probe = http(platform.addr(), "GET", "/v1/me", &headers, None).await.expect("probe answers");
        if probe.status == 200 {
            return;
        }
        assert_eq!(probe.status, 401, "probe: {}", probe.text());
        let mut tries = 0;
        let profile = loop {
            match self.app.sign_in(&self.phone, CODE).await {
                Ok(p) => break p,
                Err(e) if tries < 3 => {
                    // A login challenge limit: a minute later it is open again.
                    eprintln!("sign-in again for {}: {e:?}; moving the clock a minute", self.person_id);
                    platform.advance_clock(61_000).await;
                    tries += 1;
                }
                Err(e) => panic!("cannot sign {} in again: {e:?}", self.person_id),
            }
        };
        self.device_id = profile.device_id;
        self.token = stored_tokens(&self.app, &self.person_id).access_token;
        self.renewed += 1;
    }
}

// ---- the matrix --------------------------------------------------------------------------

#[derive(Default)]
struct Tally {
    cells: usize,
    violations: Vec<String>,
    /// 429s that remained after the clock moved (each a refusal, or for A a hidden answer).
    limited: Vec<String>,
    clock_moved_ms: i64,
    statuses: BTreeMap<(String, &'static str), String>,
}

/// What the cell must satisfy; returns the violations.
fn judge(op: &Operation, who: Who, req: &Request, answer: &Answer, markers: &[String]) -> Vec<String> {
    let mut bad = Vec::new();
    let status = answer.status;
    let limited = status == 429;
    if status >= 500 {
        bad.push(format!("answered {status} (a server error): {}", answer.text()));
    }
    match (op.security, who) {
        (Security::Public, _) => {}
        (Security::Session, Who::Anonymous) if status != 401 && !limited => {
            bad.push(format!("no token answered {status}, not 401: {}", answer.text()))
        }
        (Security::Session, Who::Revoked) if !limited && (status != 401 || answer.code() != "unauthorized") => {
            bad.push(format!("a revoked device's token answered {status}, not 401 unauthorized: {}", answer.text()))
        }
        (Security::Admin, Who::Anonymous) if !(status == 401 || limited) => {
            bad.push(format!("no token on an admin route answered {status}, not 401: {}", answer.text()))
        }
        (Security::Session | Security::Admin, Who::Anonymous)
            if status == 401 && !answer.header("www-authenticate").is_some_and(|v| v.starts_with("Bearer")) =>
        {
            bad.push(format!("no token answered 401 without `WWW-Authenticate: Bearer`: {:?}", answer.headers))
        }
        (Security::Admin, _) if who != Who::Anonymous && !(status == 403 || (limited && who != Who::PatientA)) => {
            bad.push(format!("a non-admin token answered {status}, not 403: {}", answer.text()))
        }
        (Security::Session, Who::PatientB | Who::BAsA) => {
            let refused = matches!(status, 403 | 404) || limited;
            if req.path_names_a && !refused {
                bad.push(format!("B on A's resource answered {status}, not 403/404: {}", answer.text()));
            } else if req.body_names_a && (200..300).contains(&status) {
                bad.push(format!("B naming A's resources in the body answered {status}: {}", answer.text()));
            }
        }
        _ => {}
    }
    if op.security != Security::Public && who != Who::PatientA {
        let text = answer.text();
        for m in markers {
            if text.contains(m.as_str()) {
                bad.push(format!("the answer ({status}) contains A's `{m}`: {text}"));
            }
        }
    }
    bad
}

async fn run_matrix() -> (usize, Tally, Vec<String>) {
    let platform = TestPlatform::start().await;
    let addr = platform.addr();

    // Patient A and his resources.
    let mut a = sign_in(&platform, PATIENT).await;
    assert_eq!(a.person_id, A_PERSON);
    let bill = platform.issue_bill(PATIENT, None).await;
    let paid_bill = platform.issue_bill(PATIENT, None).await;
    let options =
        QuoteOptions { use_account: true, channel: Channel::parse(CARD_OK).expect("a channel"), mutual_aid: false };
    let quote = a.app.quote(&paid_bill.bill_id, &options, None).await.expect("quotes");
    let payment = a.app.pay(&quote.quote_id, None).await.expect("pays");
    let (rx_id, ranking) = a.app.rank_pharmacies(&RankQuery::near(HOME), None).await.expect("ranks");
    assert_eq!(rx_id, A_PRESCRIPTION);
    let pharmacy_id = ranking.quotes[0].pharmacy_id.clone();
    let order = a.app.place_order(&rx_id, &pharmacy_id, Fulfilment::Pickup, None, None).await.expect("orders");
    let mut ids = Resources {
        device_id: a.device_id.clone(),
        bill_id: bill.bill_id.clone(),
        paid_bill_id: paid_bill.bill_id.clone(),
        quote_id: quote.quote_id.clone(),
        payment_id: payment.payment_id.clone(),
        order_id: order.order_id.clone(),
        pharmacy_id,
    };

    // A's second device, revoked by the admin route.
    let lost = sign_in(&platform, PATIENT).await;
    assert_ne!(lost.device_id, a.device_id);
    let revoked =
        admin_call(addr, "POST", &format!("/admin/v1/devices/{}/revoke", lost.device_id), Some(json!({}))).await;
    assert_eq!(revoked.status, 200, "{}", revoked.text());
    let probe =
        http(addr, "GET", "/v1/me", &[("authorization".into(), format!("Bearer {}", lost.token))], None).await.unwrap();
    assert_eq!(probe.status, 401, "the revoked device's token is dead before the matrix starts");

    // Patient B, twice (one session plain, one naming A as subject).
    let mut b = sign_in(&platform, PATIENT_B).await;
    let mut b_as_a = sign_in(&platform, PATIENT_B).await;
    assert_ne!(b.person_id, A_PERSON);

    let doc = http(addr, "GET", "/openapi.json", &[], None).await.expect("the document").value();
    let ops = operations(&doc);
    assert!(ops.len() > 10, "the document lists the platform's operations");

    let mut tally = Tally::default();
    let mut notes = Vec::new();
    for op in &ops {
        for who in Who::ALL {
            tally.cells += 1;
            let req = build(&doc, op, &ids, tally.cells, &mut notes);
            let mut headers = req.headers.clone();
            let token = match who {
                Who::Anonymous => None,
                Who::Revoked => Some(lost.token.clone()),
                Who::PatientB => Some(b.token.clone()),
                Who::BAsA => Some(b_as_a.token.clone()),
                Who::PatientA => Some(a.token.clone()),
            };
            if let Some(t) = &token {
                headers.push(("authorization".into(), format!("Bearer {t}")));
            }
            if who == Who::BAsA {
                headers.push((carepass_core::wire::SUBJECT_HEADER.into(), A_PERSON.into()));
            }
            let send = || http(addr, &op.method, &req.target, &headers, req.body.as_deref());
            let cell = format!("{} as {}", op.label(), who.name());
            let mut answer = match send().await {
                Ok(a) => a,
                Err(e) => {
                    tally.violations.push(format!("{cell}: no answer: {e}"));
                    continue;
                }
            };
            if answer.status == 429 {
                let wait: i64 = answer.header("retry-after").and_then(|v| v.parse().ok()).unwrap_or(i64::MAX);
                if wait <= MAX_CLOCK_SKIP_S {
                    platform.advance_clock(wait * 1000).await;
                    tally.clock_moved_ms += wait * 1000;
                    answer = match send().await {
                        Ok(a) => a,
                        Err(e) => {
                            tally.violations.push(format!("{cell}: no answer after the clock moved: {e}"));
                            continue;
                        }
                    };
                }
                if answer.status == 429 {
                    tally.limited.push(cell.clone());
                }
            }
            let shown = match answer.status {
                200..=299 => answer.status.to_string(),
                s => format!("{s}:{}", answer.code()),
            };
            tally.statuses.insert((op.label(), who.name()), shown);
            for v in judge(op, who, &req, &answer, &ids.markers()) {
                tally.violations.push(format!("{cell} ({}): {v}", req.target));
            }
            // Keep every session caller signed in for the next cell.
            match who {
                Who::PatientA => {
                    a.keep_alive(&platform).await;
                    ids.device_id = a.device_id.clone();
                }
                Who::PatientB => b.keep_alive(&platform).await,
                Who::BAsA => b_as_a.keep_alive(&platform).await,
                _ => {}
            }
        }
    }
    // The matrix proves something only if A's ids are real: A's own reads of them succeed.
    for op in ops.iter().filter(|op| op.method == "GET" && op.security == Security::Session) {
        let req = build(&doc, op, &ids, 0, &mut Vec::new());
        let status = &tally.statuses[&(op.label(), Who::PatientA.name())];
        if req.path_names_a && !status.starts_with('2') {
            tally.violations.push(format!(
                "{} as patient-a answered {status}: A's own id does not read back, so B's refusal proves nothing",
                op.label()
            ));
        }
    }
    let on_a_ids = ops.iter().filter(|op| build(&doc, op, &ids, 0, &mut Vec::new()).path_names_a).count();
    assert!(on_a_ids >= 5, "only {on_a_ids} operations take one of A's ids in their path");
    notes.push(format!("{on_a_ids} operations take one of A's ids in the path"));
    let subject_ignored: Vec<String> = ops
        .iter()
        .filter(|op| op.security == Security::Session)
        .filter(|op| tally.statuses[&(op.label(), Who::BAsA.name())].starts_with('2'))
        .map(Operation::label)
        .collect();
    // A subject the caller holds no link to is refused on every session operation
    // (docs/family.md § 1): B naming A never gets a 2xx, not even B's own view.
    assert!(
        subject_ignored.is_empty(),
        "`x-carepass-subject: {A_PERSON}` from patient B (no link to A) was answered 2xx on {} operations: {}",
        subject_ignored.len(),
        subject_ignored.join(", ")
    );
    for op in &ops {
        let unknown: Vec<&String> = op.schemes.iter().filter(|s| !matches!(s.as_str(), "session" | "admin")).collect();
        if !unknown.is_empty() {
            notes.push(format!(
                "{}: security scheme {unknown:?} is neither session nor admin; judged as session",
                op.label()
            ));
        }
    }
    notes.push(format!("sessions renewed: A {}, B {}, B-as-A {}", a.renewed, b.renewed, b_as_a.renewed));
    (ops.len(), tally, notes)
}

#[tokio::test]
async fn every_operation_refuses_every_caller_it_must_and_never_fails() {
    let started = Instant::now();
    let (routes, tally, notes) = run_matrix().await;
    if std::env::var_os("AUTHZ_MATRIX_TABLE").is_some() {
        let mut last = String::new();
        for ((label, who), status) in &tally.statuses {
            if *label != last {
                println!();
                print!("{label:<48}");
                last = label.clone();
            }
            print!(" {who}={status}");
        }
        println!();
    }
    for n in &notes {
        println!("note: {n}");
    }
    for l in &tally.limited {
        println!("still 429 after moving the clock (a refusal): {l}");
    }
    println!(
        "platform clock moved {} s for limits; {:.1} s",
        tally.clock_moved_ms / 1000,
        started.elapsed().as_secs_f64()
    );
    for v in &tally.violations {
        println!("VIOLATION {v}");
    }
    println!(
        "authz matrix: {routes} routes × {} callers = {} cells, {} violations",
        Who::ALL.len(),
        tally.cells,
        tally.violations.len()
    );
    assert_eq!(tally.cells, routes * Who::ALL.len());
    assert!(tally.violations.is_empty(), "{} violations (listed above)", tally.violations.len());
    let a_limited: Vec<_> = tally.limited.iter().filter(|l| l.ends_with("as patient-a")).collect();
    assert!(a_limited.is_empty(), "429 hid A's own answer: {a_limited:?}");
}
