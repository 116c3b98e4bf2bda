//! HTTP routes of the sandbox platform. Each handler is annotated for OpenAPI, so the
//! document at `/openapi.json` is generated from these definitions. Handlers only translate
//! between HTTP and [`Platform`]; the rules live there and in `carepass-core`.

use std::sync::Arc;

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::Response;
use axum::Json;
use carepass_core::wire::{self, ErrorBody, Health, PersonRecord, PlatformCode, Revoked, SessionGrant, SessionTokens};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::{ApiError, ApiResult};
use crate::platform::{Caller, Platform, CODE_TTL_S};
use carepass_core::domain::family::audit::AuditAction;
use carepass_core::domain::family::Scope;

pub type AppState = Arc<Platform>;

/// JSON body whose rejections answer with the platform's error body.
///
/// A JSON number is read by its value: `2.0` where an integer is due reads as `2` (JSON and
/// the OpenAPI document's JSON Schema do not tell them apart), so a schema-valid body is never
/// refused for how a whole number is spelled. Anything else reads as `axum::Json` reads it.
pub struct Body<T>(pub T);

impl<T, S> FromRequest<S> for Body<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, Self::Rejection> {
        let (parts, body) = req.into_parts();
        let bytes = axum::body::Bytes::from_request(axum::extract::Request::from_parts(parts.clone(), body), state)
            .await
            .map_err(|r| ApiError::bad_request(r.body_text()))?;
        let request = axum::extract::Request::from_parts(parts, axum::body::Body::from(bytes.clone()));
        match axum::Json::<T>::from_request(request, state).await {
            Ok(axum::Json(value)) => Ok(Body(value)),
            Err(JsonRejection::JsonDataError(e)) => match whole_numbers_as_integers(&bytes) {
                Some(respelled) => match axum::Json::<T>::from_bytes(&respelled) {
                    Ok(axum::Json(value)) => Ok(Body(value)),
                    Err(_) => Err(JsonRejection::JsonDataError(e).into()),
                },
                None => Err(JsonRejection::JsonDataError(e).into()),
            },
            Err(rejection) => Err(rejection.into()),
        }
    }
}

/// The JSON text with every whole number spelled as a float (`2.0`, `-1e3`) spelled as an
/// integer; `None` when it has none (or is not JSON). Only floats that stand for exactly one
/// integer (at most 2^53 in magnitude) are respelled.
fn whole_numbers_as_integers(bytes: &[u8]) -> Option<Vec<u8>> {
    fn respell(value: &mut serde_json::Value) -> bool {
        match value {
            serde_json::Value::Number(n) if n.is_f64() => {
                let f = n.as_f64().unwrap_or(f64::NAN);
                if f.fract() == 0.0 && f.abs() <= 9_007_199_254_740_992.0 {
                    *n = serde_json::Number::from(f as i64);
                    true
                } else {
                    false
                }
            }
            serde_json::Value::Array(items) => items.iter_mut().fold(false, |changed, v| respell(v) | changed),
            serde_json::Value::Object(map) => map.values_mut().fold(false, |changed, v| respell(v) | changed),
            _ => false,
        }
    }
    let mut value: serde_json::Value = serde_json::from_slice(bytes).ok()?;
    if !respell(&mut value) {
        return None;
    }
    serde_json::to_vec(&value).ok()
}

/// Query parameters whose rejections answer with the platform's error body.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct Params<T>(pub T);

/// Path parameters whose rejections answer with the platform's error body.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct Segment<T>(pub T);

/// The bearer token of a request, if any.
fn bearer(parts: &Parts) -> Option<&str> {
    parts.headers.get(header::AUTHORIZATION)?.to_str().ok()?.strip_prefix("Bearer ")
}

/// A `401` for a request without valid bearer credentials, with the challenge RFC 6750 § 3
/// asks for: `WWW-Authenticate: Bearer` when none were sent, with `error="invalid_token"`
/// when the token is unknown, revoked or expired.
fn bearer_challenge(error: ApiError, token_sent: bool) -> Response {
    use axum::response::IntoResponse;
    let value =
        if token_sent { r#"Bearer realm="carepass", error="invalid_token""# } else { r#"Bearer realm="carepass""# };
    let mut response = error.into_response();
    response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(value));
    response
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        use axum::response::IntoResponse;
        let Some(token) = bearer(parts) else {
            return Err(bearer_challenge(
                ApiError::unauthorized(PlatformCode::Unauthorized, "missing bearer token"),
                false,
            ));
        };
        let caller = state.caller(token).map_err(|e| match e.status {
            StatusCode::UNAUTHORIZED => bearer_challenge(e, true),
            _ => e.into_response(),
        })?;
        match parts.headers.get(wire::SUBJECT_HEADER) {
            None => Ok(caller),
            Some(v) => {
                let subject = v
                    .to_str()
                    .map_err(|_| ApiError::bad_request("x-carepass-subject: a person id is ASCII").into_response())?;
                state.acting_for(caller, subject).map_err(IntoResponse::into_response)
            }
        }
    }
}

/// Proof that the request carries the admin token (clinic, pharmacy and test-fixture roles).
/// No bearer token is `401` (with `WWW-Authenticate`); another token is `403`, and so is any
/// request while the admin routes are off.
pub struct Admin;

impl FromRequestParts<AppState> for Admin {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        use axum::response::IntoResponse;
        if !state.admin_enabled() {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                PlatformCode::Forbidden,
                "admin routes are off (start with --admin-token)",
            )
            .into_response());
        }
        match bearer(parts) {
            None => {
                Err(bearer_challenge(ApiError::unauthorized(PlatformCode::Unauthorized, "admin token required"), false))
            }
            Some(t) if state.is_admin(t) => Ok(Admin),
            Some(_) => {
                Err(ApiError::new(StatusCode::FORBIDDEN, PlatformCode::Forbidden, "not the admin token")
                    .into_response())
            }
        }
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "CarePass sandbox platform", description = "The platform side of CarePass, played by the sandbox. Every answer carries the `x-carepass-server-time` header (server time, ms since the Unix epoch). Errors answer with `ErrorBody`."),
    components(schemas(ErrorBody)),
    modifiers(&BearerAuth)
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "session",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        components.add_security_scheme(
            "admin",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// All routes with their OpenAPI description.
pub fn router() -> OpenApiRouter<AppState> {
    let mut router = routes();
    conformance::apply(router.get_openapi_mut());
    router
}

fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(healthz))
        .routes(routes!(request_code))
        .routes(routes!(enrol))
        .routes(routes!(challenge))
        .routes(routes!(login))
        .routes(routes!(refresh))
        .routes(routes!(end_session))
        .routes(routes!(me))
        .routes(routes!(revoke_own_device))
        .routes(routes!(scan))
        .routes(routes!(trust_list))
        .routes(routes!(revocation_list))
        .routes(routes!(admin_revoke_device))
        .routes(routes!(inbox))
        .routes(routes!(inbox_stream))
        .routes(routes!(register_push_token))
        .routes(routes!(push_keys))
        .routes(routes!(admin_issue_bill))
        .routes(routes!(admin_cancel_bill))
        .routes(routes!(admin_set_bill_state))
        .routes(routes!(admin_push_outbox))
        .routes(routes!(admin_cut_streams))
        .routes(routes!(prescriptions))
        .routes(routes!(pharmacy_quotes))
        .routes(routes!(place_order, list_orders))
        .routes(routes!(get_order))
        .routes(routes!(cancel_order))
        .routes(routes!(admin_advance_order))
        .routes(routes!(admin_clock, admin_advance_clock))
        .routes(routes!(admin_persons))
        .routes(routes!(admin_prune))
        .routes(routes!(quote_bill))
        .routes(routes!(pay))
        .routes(routes!(get_payment))
        .routes(routes!(confirm_payment))
        .routes(routes!(pay_cash_due))
        .routes(routes!(receipt_keys))
        .routes(routes!(admin_refund))
        .routes(routes!(counter_charge))
        .routes(routes!(credit_line))
        .routes(routes!(sign_credit))
        .routes(routes!(repay_credit))
        .routes(routes!(admin_account, admin_set_balance))
        .routes(routes!(admin_payment))
        .routes(routes!(admin_drive_payments))
        .routes(routes!(family_rules))
        .routes(routes!(family_links, ask_link))
        .routes(routes!(consent_link))
        .routes(routes!(send_link_code))
        .routes(routes!(revoke_link))
        .routes(routes!(renew_link))
        .routes(routes!(assent_link))
        .routes(routes!(audit_trail))
        .routes(routes!(admin_counter_consent))
        .routes(routes!(admin_set_family_rules))
        .routes(routes!(admin_tamper_audit))
}

/// The `Idempotency-Key` header of a request.
pub struct IdempotencyKey(pub String);

impl<S: Send + Sync> FromRequestParts<S> for IdempotencyKey {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let value = parts
            .headers
            .get(wire::IDEMPOTENCY_HEADER)
            .ok_or_else(|| ApiError::bad_request("an Idempotency-Key header is required"))?;
        let key = value.to_str().map_err(|_| ApiError::bad_request("the Idempotency-Key is printable ASCII"))?;
        Ok(IdempotencyKey(key.to_string()))
    }
}

/// An answer kept for an idempotency key, sent as it was first (with `Idempotent-Replayed`
/// on a replay).
fn stored(answer: crate::payments::StoredAnswer, replayed: bool) -> Response {
    use axum::response::IntoResponse;
    let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::OK);
    let mut response = (status, Json(answer.body)).into_response();
    if replayed {
        response.headers_mut().insert(wire::REPLAYED_HEADER, HeaderValue::from_static("true"));
    }
    response
}

/// Adds the server time header to every answer.
pub async fn stamp_server_time(State(state): State<AppState>, mut response: Response) -> Response {
    if let Ok(v) = HeaderValue::from_str(&state.now_ms().to_string()) {
        response.headers_mut().insert(wire::SERVER_TIME_HEADER, v);
    }
    response
}

#[utoipa::path(get, path = "/healthz", tag = "meta", responses((status = 200, body = Health)))]
async fn healthz(State(state): State<AppState>) -> Json<Health> {
    Json(Health { status: "ok".into(), server_time_ms: state.now_ms() })
}

/// Sends a verification code by SMS (in the sandbox every code is `123456`). Answers the same
/// for phones the platform does not know.
#[utoipa::path(post, path = "/v1/verification-codes", tag = "account", request_body = wire::VerificationCodeRequest,
    responses((status = 200, body = wire::VerificationCodeSent)))]
async fn request_code(
    State(state): State<AppState>,
    Body(req): Body<wire::VerificationCodeRequest>,
) -> ApiResult<Json<wire::VerificationCodeSent>> {
    state.request_code(&req.phone)?;
    state.commit().await?;
    Ok(Json(wire::VerificationCodeSent { expires_in_s: CODE_TTL_S }))
}

/// Enrols a device for the insured person who owns the phone; returns a session.
#[utoipa::path(post, path = "/v1/enrolments", tag = "account", request_body = wire::EnrolRequest,
    responses((status = 200, body = SessionGrant),
        (status = 401, description = "`wrong_verification_code`: the code is wrong or expired, or no insured person has that phone", body = ErrorBody)))]
async fn enrol(State(state): State<AppState>, Body(req): Body<wire::EnrolRequest>) -> ApiResult<Json<SessionGrant>> {
    let answer = state.enrol(&req.phone, &req.code, &req.device_public_key, &req.device_name, &req.platform);
    state.commit().await?;
    answer.map(Json)
}

/// A single-use nonce for an enrolled device to sign (valid two minutes).
#[utoipa::path(post, path = "/v1/sessions/challenge", tag = "account", request_body = wire::ChallengeRequest,
    responses((status = 200, body = wire::Challenge),
        (status = 404, description = "`unknown_device`: no such enrolled device (or it is revoked)", body = ErrorBody)))]
async fn challenge(
    State(state): State<AppState>,
    Body(req): Body<wire::ChallengeRequest>,
) -> ApiResult<Json<wire::Challenge>> {
    let (nonce, expires_at_ms) = state.challenge(&req.device_id)?;
    state.commit().await?;
    Ok(Json(wire::Challenge { nonce, expires_at_ms }))
}

/// Signs in on an enrolled device: verification code and the device's signature over the
/// challenge.
#[utoipa::path(post, path = "/v1/sessions", tag = "account", request_body = wire::LoginRequest,
    responses((status = 200, body = SessionGrant),
        (status = 401, description = "`wrong_verification_code`; `challenge_invalid` (the nonce is unknown, used, expired or another device's); `signature_invalid`", body = ErrorBody),
        (status = 404, description = "`unknown_device`: the device is not enrolled for that phone's person, or it is revoked", body = ErrorBody)))]
async fn login(State(state): State<AppState>, Body(req): Body<wire::LoginRequest>) -> ApiResult<Json<SessionGrant>> {
    let answer = state.login(&req.device_id, &req.phone, &req.code, &req.nonce, &req.signature);
    state.commit().await?;
    answer.map(Json)
}

/// Trades a refresh token (single use) for a new token pair.
#[utoipa::path(post, path = "/v1/sessions/refresh", tag = "account", request_body = wire::RefreshRequest,
    responses((status = 200, body = SessionTokens),
        (status = 401, description = "`unauthorized` (an unknown token, an ended session), `refresh_token_expired`, or `refresh_token_reused` (a spent token came back: the session is ended)", body = ErrorBody)))]
async fn refresh(
    State(state): State<AppState>,
    Body(req): Body<wire::RefreshRequest>,
) -> ApiResult<Json<SessionTokens>> {
    let answer = state.refresh(&req.refresh_token);
    state.commit().await?;
    answer.map(Json)
}

/// Ends the caller's session.
#[utoipa::path(delete, path = "/v1/sessions/current", tag = "account", security(("session" = [])),
    responses((status = 200, body = Revoked)))]
async fn end_session(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<Revoked>> {
    state.end_session(&caller.session_id)?;
    state.commit().await?;
    Ok(Json(Revoked { revoked: true }))
}

/// The signed-in insured person.
#[utoipa::path(get, path = "/v1/me", tag = "account", security(("session" = [])),
    responses((status = 200, body = PersonRecord),
        (status = 404, description = "`not_found`: the person is no longer on record", body = ErrorBody)))]
async fn me(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<PersonRecord>> {
    state
        .person(caller.own()?)?
        .map(Json)
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, PlatformCode::NotFound, "person not found"))
}

/// Revokes one of the caller's own devices (a lost phone): its codes and sessions stop at once.
#[utoipa::path(post, path = "/v1/devices/{device_id}/revoke", tag = "voucher", security(("session" = [])),
    params(("device_id" = String, Path, description = "dev_ and 16 hex digits")),
    responses((status = 200, body = Revoked),
        (status = 404, description = "`unknown_device`: no such device of the caller's", body = ErrorBody)))]
async fn revoke_own_device(
    State(state): State<AppState>,
    caller: Caller,
    Segment(device_id): Segment<String>,
) -> ApiResult<Json<Revoked>> {
    state.revoke_device(&device_id, Some(caller.own()?))?;
    state.commit().await?;
    Ok(Json(Revoked { revoked: true }))
}

/// Scanner terminal role (admin token): verify a scanned code for a purpose. Each code is
/// accepted at most once; a rejection answers 200 with `accepted: false` and the reason.
#[utoipa::path(post, path = "/v1/scans", tag = "voucher", security(("admin" = [])), request_body = wire::ScanRequest,
    responses((status = 200, body = wire::ScanOutcome)))]
async fn scan(
    State(state): State<AppState>,
    _scanner: Admin,
    Body(req): Body<wire::ScanRequest>,
) -> ApiResult<Json<wire::ScanOutcome>> {
    if req.payload.len() > 4096 {
        return Err(ApiError::bad_request("payload longer than any code"));
    }
    let answer = state.scan(&req.payload, req.purpose);
    state.commit().await?;
    answer.map(Json)
}

/// The issuer keys offline scanners trust.
#[utoipa::path(get, path = "/v1/voucher/issuers", tag = "voucher", responses((status = 200, body = wire::TrustList)))]
async fn trust_list(State(state): State<AppState>) -> Json<wire::TrustList> {
    Json(state.trust_list())
}

/// The issuer-signed list of revoked devices, for offline scanners to cache.
#[utoipa::path(get, path = "/v1/voucher/revocations", tag = "voucher", responses((status = 200, body = wire::RevocationList)))]
async fn revocation_list(State(state): State<AppState>) -> ApiResult<Json<wire::RevocationList>> {
    state.revocation_list().map(Json)
}

/// Admin role: revoke any device.
#[utoipa::path(post, path = "/admin/v1/devices/{device_id}/revoke", tag = "admin", security(("admin" = [])),
    params(("device_id" = String, Path, description = "dev_ and 16 hex digits")),
    responses((status = 200, body = Revoked),
        (status = 404, description = "`unknown_device`: no such device", body = ErrorBody)))]
async fn admin_revoke_device(
    State(state): State<AppState>,
    _admin: Admin,
    Segment(device_id): Segment<String>,
) -> ApiResult<Json<Revoked>> {
    state.revoke_device(&device_id, None)?;
    state.commit().await?;
    Ok(Json(Revoked { revoked: true }))
}

#[derive(serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct InboxQuery {
    /// Changes after this sequence (0: from the start).
    #[serde(default)]
    after: u64,
    /// At most this many entries (1 to 500, default 200).
    #[param(minimum = 1, maximum = 500)]
    limit: Option<usize>,
}

/// The caller's inbox changes after a cursor: the readable prefix of their log, ascending.
#[utoipa::path(get, path = "/v1/inbox", tag = "bills", security(("session" = [])), params(InboxQuery),
    responses((status = 200, body = wire::InboxPage)))]
async fn inbox(
    State(state): State<AppState>,
    caller: Caller,
    Params(q): Params<InboxQuery>,
) -> ApiResult<Json<wire::InboxPage>> {
    let limit = match q.limit {
        None => 200,
        Some(n @ 1..=500) => n,
        Some(_) => return Err(ApiError::bad_request("limit is 1 to 500")),
    };
    let page = state.inbox_page(caller.subject(Scope::ViewBills)?, q.after, limit)?;
    if !page.entries.is_empty() {
        state.audit_act(&caller, AuditAction::BillsViewed, None, &format!("inbox after {}", q.after))?;
        state.commit().await?;
    }
    Ok(Json(page))
}

/// Live stream of the caller's inbox changes (server-sent events): first every readable
/// change after `after`, then each new one as it becomes readable; `event: bill`, `id: <seq>`,
/// `data: <InboxEntry JSON>`; a `:` heartbeat every 15 s.
#[utoipa::path(get, path = "/v1/inbox/stream", tag = "bills", security(("session" = [])), params(InboxQuery),
    responses((status = 200, description = "text/event-stream of InboxEntry")))]
async fn inbox_stream(
    State(state): State<AppState>,
    caller: Caller,
    Params(q): Params<InboxQuery>,
) -> ApiResult<Sse<impl tokio_stream::Stream<Item = Result<Event, std::convert::Infallible>>>> {
    let person_id = caller.subject(Scope::ViewBills)?.to_string();
    let proxy = caller.link().map(|_| caller.person_id.clone());
    state.limits().open_stream(&caller.session_id)?;
    // Gives the session's stream place back however the stream task ends.
    struct Place(AppState, String);
    impl Drop for Place {
        fn drop(&mut self) {
            self.0.limits().release_stream(&self.1);
        }
    }
    let place = Place(state.clone(), caller.session_id.clone());
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Event, std::convert::Infallible>>(64);
    let mut wake = state.subscribe_inbox();
    let mut cuts = state.stream_cuts();
    cuts.mark_unchanged();
    let mut shutdown = state.shutdown_signal();
    tokio::spawn(async move {
        let _place = place;
        let mut cursor = q.after;
        loop {
            // A stream opened for a relative ends the moment the link no longer lets the
            // proxy see their bills (revoked, expired, the band changed).
            if let Some(proxy) = &proxy {
                match state.acting_link(proxy, &person_id) {
                    Ok((_, scopes)) if scopes.contains(&Scope::ViewBills) => {}
                    _ => return,
                }
            }
            let page = match state.inbox_page(&person_id, cursor, 200) {
                Ok(page) => page,
                Err(_) => return,
            };
            for entry in &page.entries {
                let Ok(event) = Event::default().event("bill").id(entry.seq.to_string()).json_data(entry) else {
                    return;
                };
                if tx.send(Ok(event)).await.is_err() {
                    return;
                }
            }
            cursor = page.cursor;
            if page.more {
                continue;
            }
            tokio::select! {
                changed = wake.recv() => match changed {
                    Ok(p) if p != person_id => continue,
                    Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                },
                _ = cuts.changed() => return,
                _ = shutdown.wait_for(|stop| *stop) => return,
                _ = tx.closed() => return,
            }
        }
    });
    Ok(Sse::new(tokio_stream::wrappers::ReceiverStream::new(rx))
        .keep_alive(KeepAlive::new().interval(std::time::Duration::from_secs(15)).text("ping")))
}

#[derive(serde::Serialize, utoipa::ToSchema)]
struct Registered {
    registered: bool,
}

/// Registers a push token (FCM, APNs, Huawei, Xiaomi) for the caller: doorbells are relayed to it.
#[utoipa::path(post, path = "/v1/push-tokens", tag = "bills", security(("session" = [])), request_body = wire::PushTokenRegistration,
    responses((status = 200, body = Registered)))]
async fn register_push_token(
    State(state): State<AppState>,
    caller: Caller,
    Body(req): Body<wire::PushTokenRegistration>,
) -> ApiResult<Json<Registered>> {
    state.register_push_token(caller.own()?, &caller.device_id, &req.service, &req.token)?;
    state.commit().await?;
    Ok(Json(Registered { registered: true }))
}

/// The keys doorbells are signed with.
#[utoipa::path(get, path = "/v1/push/keys", tag = "bills", responses((status = 200, body = Vec<wire::PushKey>)))]
async fn push_keys(State(state): State<AppState>) -> Json<Vec<wire::PushKey>> {
    Json(state.push_keys())
}

/// Clinic role: issue a bill to a patient (rings their doorbell).
#[utoipa::path(post, path = "/admin/v1/bills", tag = "admin", security(("admin" = [])), request_body = wire::IssueBillRequest,
    responses((status = 200, body = wire::Bill),
        (status = 404, description = "`not_found`: no insured person has that phone", body = ErrorBody)))]
async fn admin_issue_bill(
    State(state): State<AppState>,
    _clinic: Admin,
    Body(req): Body<wire::IssueBillRequest>,
) -> ApiResult<Json<wire::Bill>> {
    let (bill, change) = state.issue_bill(&req)?;
    state.commit().await?;
    state.publish(change);
    Ok(Json(bill))
}

/// Clinic role: cancel a bill.
#[utoipa::path(post, path = "/admin/v1/bills/{bill_id}/cancel", tag = "admin", security(("admin" = [])),
    params(("bill_id" = String, Path)),
    responses((status = 200, body = wire::Bill),
        (status = 404, description = "`not_found`: no such bill", body = ErrorBody),
        (status = 409, description = "`conflict`: the bill's state does not allow it", body = ErrorBody)))]
async fn admin_cancel_bill(
    State(state): State<AppState>,
    _clinic: Admin,
    Segment(bill_id): Segment<String>,
) -> ApiResult<Json<wire::Bill>> {
    let (bill, change) = state.set_bill_state(&bill_id, wire::BillState::Cancelled)?;
    state.commit().await?;
    state.publish(change);
    Ok(Json(bill))
}

#[derive(serde::Deserialize, utoipa::ToSchema)]
struct NewState {
    state: wire::BillState,
}

/// Test-fixture role: move a bill to another state (paid elsewhere, refunded…), within the
/// state machine.
#[utoipa::path(post, path = "/admin/v1/bills/{bill_id}/state", tag = "admin", security(("admin" = [])),
    params(("bill_id" = String, Path)), request_body = NewState,
    responses((status = 200, body = wire::Bill),
        (status = 404, description = "`not_found`: no such bill", body = ErrorBody),
        (status = 409, description = "`conflict`: the state machine forbids the move", body = ErrorBody)))]
async fn admin_set_bill_state(
    State(state): State<AppState>,
    _admin: Admin,
    Segment(bill_id): Segment<String>,
    Body(req): Body<NewState>,
) -> ApiResult<Json<wire::Bill>> {
    let (bill, change) = state.set_bill_state(&bill_id, req.state)?;
    state.commit().await?;
    state.publish(change);
    Ok(Json(bill))
}

#[derive(serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct OutboxQuery {
    #[serde(default)]
    after: u64,
    person_id: Option<String>,
}

/// Test-fixture role: the push relay outbox — each doorbell the platform would have handed to a
/// push service, per registered token (the stand-in for FCM/APNs delivery).
#[utoipa::path(get, path = "/admin/v1/push-outbox", tag = "admin", security(("admin" = [])), params(OutboxQuery),
    responses((status = 200, body = crate::bills::OutboxPage)))]
async fn admin_push_outbox(
    State(state): State<AppState>,
    _admin: Admin,
    Params(q): Params<OutboxQuery>,
) -> ApiResult<Json<crate::bills::OutboxPage>> {
    state.outbox(q.after, q.person_id.as_deref(), 500).map(Json)
}

#[derive(serde::Serialize, utoipa::ToSchema)]
struct Cut {
    cut: u64,
}

/// Test-fixture role: end every open live stream now (clients reconnect and resync).
#[utoipa::path(post, path = "/admin/v1/streams/cut", tag = "admin", security(("admin" = [])),
    responses((status = 200, body = Cut)))]
async fn admin_cut_streams(State(state): State<AppState>, _admin: Admin) -> Json<Cut> {
    Json(Cut { cut: state.cut_streams() })
}

/// The caller's prescriptions shared to pharmacies (门慢处方共享), newest first.
#[utoipa::path(get, path = "/v1/prescriptions", tag = "pharmacy", security(("session" = [])),
    responses((status = 200, body = Vec<wire::PrescriptionRecord>)))]
async fn prescriptions(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<Json<Vec<wire::PrescriptionRecord>>> {
    let subject = caller.subject(Scope::ViewPrescriptions)?;
    let answer = state.prescriptions(subject)?;
    state.audit_act(&caller, AuditAction::PrescriptionsViewed, None, "")?;
    state.commit().await?;
    Ok(Json(answer))
}

/// Pharmacies near a location ranked by what the caller pays for the prescription after
/// insurance (docs/pharmacy.md).
#[utoipa::path(post, path = "/v1/pharmacy-quotes", tag = "pharmacy", security(("session" = [])), request_body = wire::PharmacyQuoteRequest,
    responses((status = 200, body = carepass_core::domain::pharmacy::Ranking),
        (status = 404, description = "`not_found`: no such prescription of the subject's", body = ErrorBody),
        (status = 410, description = "`expired`: the prescription has expired", body = ErrorBody)))]
async fn pharmacy_quotes(
    State(state): State<AppState>,
    caller: Caller,
    Body(req): Body<wire::PharmacyQuoteRequest>,
) -> ApiResult<Json<carepass_core::domain::pharmacy::Ranking>> {
    state.pharmacy_quotes(caller.subject(Scope::OrderMedicine)?, &req).map(Json)
}

/// Orders the prescription from a pharmacy, for pickup or delivery.
#[utoipa::path(post, path = "/v1/orders", tag = "pharmacy", security(("session" = [])), request_body = wire::OrderRequest,
    responses((status = 200, body = wire::Order),
        (status = 404, description = "`not_found`: no such prescription of the subject's, or no such pharmacy", body = ErrorBody),
        (status = 409, description = "`already_ordered`, `incomplete_quote`, or `conflict` (the pharmacy does not deliver there)", body = ErrorBody),
        (status = 410, description = "`expired`: the prescription has expired", body = ErrorBody)))]
async fn place_order(
    State(state): State<AppState>,
    caller: Caller,
    Body(req): Body<wire::OrderRequest>,
) -> ApiResult<Json<wire::Order>> {
    let answer = state.place_order(caller.subject(Scope::OrderMedicine)?, &req);
    if let Ok(order) = &answer {
        state.audit_act(&caller, AuditAction::OrderPlaced, Some(order.quote.net_cost), &order.order_id)?;
    }
    state.commit().await?;
    answer.map(Json)
}

/// The subject's orders, newest first.
#[utoipa::path(get, path = "/v1/orders", tag = "pharmacy", security(("session" = [])),
    responses((status = 200, body = Vec<wire::Order>)))]
async fn list_orders(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<Vec<wire::Order>>> {
    state.orders_of(caller.subject(Scope::OrderMedicine)?).map(Json)
}

/// One of the caller's orders, with its status.
#[utoipa::path(get, path = "/v1/orders/{order_id}", tag = "pharmacy", security(("session" = [])), params(("order_id" = String, Path)),
    responses((status = 200, body = wire::Order),
        (status = 404, description = "`not_found`: no such order of the subject's", body = ErrorBody)))]
async fn get_order(
    State(state): State<AppState>,
    caller: Caller,
    Segment(order_id): Segment<String>,
) -> ApiResult<Json<wire::Order>> {
    state.order(Some(caller.subject(Scope::OrderMedicine)?), &order_id).map(Json)
}

/// Cancels one of the caller's orders while it is still only accepted.
#[utoipa::path(post, path = "/v1/orders/{order_id}/cancel", tag = "pharmacy", security(("session" = [])), params(("order_id" = String, Path)),
    responses((status = 200, body = wire::Order),
        (status = 404, description = "`not_found`: no such order of the subject's", body = ErrorBody),
        (status = 409, description = "`conflict`: the order is past being cancelled", body = ErrorBody)))]
async fn cancel_order(
    State(state): State<AppState>,
    caller: Caller,
    Segment(order_id): Segment<String>,
) -> ApiResult<Json<wire::Order>> {
    let answer = state.cancel_order(caller.subject(Scope::OrderMedicine)?, &order_id);
    state.commit().await?;
    answer.map(Json)
}

/// Pharmacy role: move an order on (accepted → ready / out for delivery → completed).
#[utoipa::path(post, path = "/admin/v1/orders/{order_id}/advance", tag = "admin", security(("admin" = [])), params(("order_id" = String, Path)),
    responses((status = 200, body = wire::Order),
        (status = 404, description = "`not_found`: no such order", body = ErrorBody),
        (status = 409, description = "`conflict`: the order is finished", body = ErrorBody)))]
async fn admin_advance_order(
    State(state): State<AppState>,
    _pharmacy: Admin,
    Segment(order_id): Segment<String>,
) -> ApiResult<Json<wire::Order>> {
    let answer = state.advance_order(&order_id);
    state.commit().await?;
    answer.map(Json)
}

/// Test-fixture role: the platform clock.
#[utoipa::path(get, path = "/admin/v1/clock", tag = "admin", security(("admin" = [])),
    responses((status = 200, body = wire::ClockState)))]
async fn admin_clock(State(state): State<AppState>, _admin: Admin) -> Json<wire::ClockState> {
    Json(wire::ClockState { server_time_ms: state.now_ms(), offset_ms: state.clock().offset_ms() })
}

/// Test-fixture role: move the platform clock (kept across restarts).
#[utoipa::path(post, path = "/admin/v1/clock", tag = "admin", security(("admin" = [])), request_body = wire::ClockAdvance,
    responses((status = 200, body = wire::ClockState)))]
async fn admin_advance_clock(
    State(state): State<AppState>,
    _admin: Admin,
    Body(req): Body<wire::ClockAdvance>,
) -> ApiResult<Json<wire::ClockState>> {
    let offset_ms = state.advance_clock(req.advance_ms)?;
    // Links move with platform time: birthdays and the end of consent periods.
    state.sweep_family()?;
    state.commit().await?;
    Ok(Json(wire::ClockState { server_time_ms: state.now_ms(), offset_ms }))
}

/// Test-fixture role: every insured person.
#[utoipa::path(get, path = "/admin/v1/persons", tag = "admin", security(("admin" = [])),
    responses((status = 200, body = Vec<PersonRecord>)))]
async fn admin_persons(State(state): State<AppState>, _admin: Admin) -> ApiResult<Json<Vec<PersonRecord>>> {
    state.persons().map(Json)
}

/// Test-fixture role: prune now what no rule needs any more (the platform also does it every
/// minute).
#[utoipa::path(post, path = "/admin/v1/prune", tag = "admin", security(("admin" = [])),
    responses((status = 200, body = crate::platform::PruneReport)))]
async fn admin_prune(State(state): State<AppState>, _admin: Admin) -> ApiResult<Json<crate::platform::PruneReport>> {
    let report = state.prune()?;
    state.commit().await?;
    Ok(Json(report))
}

/// Pre-settles a bill (预结算) for its patient with their live coverage: the split per line and
/// in total, the legs, and a five-minute expiry.
#[utoipa::path(post, path = "/v1/bills/{bill_id}/quotes", tag = "payments", security(("session" = [])),
    params(("bill_id" = String, Path)), request_body = wire::QuoteRequest,
    responses((status = 200, body = wire::Quote),
        (status = 404, description = "`not_found`: no such bill of the subject's", body = ErrorBody),
        (status = 409, description = "`bill_not_payable`, `credit_limit_exceeded` (credit chosen, none signed or not enough left), or `conflict` (no settlement rule for the visit)", body = ErrorBody)))]
async fn quote_bill(
    State(state): State<AppState>,
    caller: Caller,
    Segment(bill_id): Segment<String>,
    Body(req): Body<wire::QuoteRequest>,
) -> ApiResult<Json<wire::Quote>> {
    state.quote(&caller, &bill_id, &req).await.map(Json)
}

/// Pays a quote: the device-signed consent to its amounts, under an `Idempotency-Key` (1 to
/// 255 printable ASCII). The first answer is kept for the key and replayed
/// (`Idempotent-Replayed: true`); the same key with another request is 422, a concurrent
/// one 409. A declined card answers 200 with the failed payment.
#[utoipa::path(post, path = "/v1/payments", tag = "payments", security(("session" = [])), request_body = wire::PayRequest,
    params(("Idempotency-Key" = String, Header)),
    responses((status = 200, body = wire::Payment),
        (status = 403, description = "`family_refused`: `x-carepass-subject` names a relative the caller may not pay for, or the payment is over the link's limits", body = ErrorBody),
        (status = 404, description = "`not_found`: no such quote", body = ErrorBody),
        (status = 409, description = "`idempotency_in_progress` (the same key is being answered), `quote_used`, or `bill_not_payable`", body = ErrorBody),
        (status = 410, description = "`quote_expired`: the quote's five minutes are over", body = ErrorBody),
        (status = 422, description = "`consent_mismatch` (the signed fields are not the quote's), or `idempotency_key_reused` (the key was used for another request)", body = ErrorBody)))]
async fn pay(
    State(state): State<AppState>,
    caller: Caller,
    IdempotencyKey(key): IdempotencyKey,
    Body(req): Body<wire::PayRequest>,
) -> ApiResult<Response> {
    let (answer, replayed) = state.pay(&caller, &key, &req).await?;
    Ok(stored(answer, replayed))
}

/// One of the subject's payments as it stands.
#[utoipa::path(get, path = "/v1/payments/{payment_id}", tag = "payments", security(("session" = [])),
    params(("payment_id" = String, Path)),
    responses((status = 200, body = wire::Payment),
        (status = 404, description = "`not_found`: no such payment of the subject's", body = ErrorBody)))]
async fn get_payment(
    State(state): State<AppState>,
    caller: Caller,
    Segment(payment_id): Segment<String>,
) -> ApiResult<Json<wire::Payment>> {
    state.payment_for(caller.subject(Scope::PayBills)?, &payment_id).map(Json)
}

/// The bank's second confirmation of the card hold (the sandbox's code is `123456`).
#[utoipa::path(post, path = "/v1/payments/{payment_id}/confirmation", tag = "payments", security(("session" = [])),
    params(("payment_id" = String, Path)), request_body = wire::ConfirmRequest,
    responses((status = 200, body = wire::Payment),
        (status = 404, description = "`not_found`: no such payment of the caller's", body = ErrorBody),
        (status = 409, description = "`idempotency_in_progress`: the payment is being moved on; retry shortly", body = ErrorBody)))]
async fn confirm_payment(
    State(state): State<AppState>,
    caller: Caller,
    Segment(payment_id): Segment<String>,
    Body(req): Body<wire::ConfirmRequest>,
) -> ApiResult<Json<wire::Payment>> {
    state.confirm(&caller, &payment_id, &req.code).await.map(Json)
}

/// Pays the cash still due (the insurance paid; the card was declined at capture) with
/// another card, signed and under an `Idempotency-Key`.
#[utoipa::path(post, path = "/v1/payments/{payment_id}/cash", tag = "payments", security(("session" = [])),
    params(("payment_id" = String, Path), ("Idempotency-Key" = String, Header)), request_body = wire::CashDueRequest,
    responses((status = 200, body = wire::Payment),
        (status = 404, description = "`not_found`: no such payment of the caller's", body = ErrorBody),
        (status = 409, description = "`idempotency_in_progress`, or `bill_not_payable` (no cash is due now)", body = ErrorBody),
        (status = 410, description = "`quote_expired`: the consent's time is over", body = ErrorBody),
        (status = 422, description = "`consent_mismatch` (not the amount due), or `idempotency_key_reused`", body = ErrorBody)))]
async fn pay_cash_due(
    State(state): State<AppState>,
    caller: Caller,
    Segment(payment_id): Segment<String>,
    IdempotencyKey(key): IdempotencyKey,
    Body(req): Body<wire::CashDueRequest>,
) -> ApiResult<Response> {
    let (answer, replayed) = state.pay_cash_due(&caller, &payment_id, &key, &req).await?;
    Ok(stored(answer, replayed))
}

/// The keys e-receipts are signed with.
#[utoipa::path(get, path = "/v1/receipts/keys", tag = "payments", responses((status = 200, body = Vec<wire::ReceiptKey>)))]
async fn receipt_keys(State(state): State<AppState>) -> Json<Vec<wire::ReceiptKey>> {
    Json(state.receipt_keys())
}

/// Clinic role: refund a paid bill, whole or some lines (idempotent by `refund_id`).
#[utoipa::path(post, path = "/admin/v1/bills/{bill_id}/refunds", tag = "admin", security(("admin" = [])),
    params(("bill_id" = String, Path)), request_body = wire::RefundRequest,
    responses((status = 200, body = wire::Refund),
        (status = 404, description = "`not_found`: no such bill", body = ErrorBody),
        (status = 409, description = "`conflict` (only a paid bill is refunded; the lines are not on the bill or already returned), or `idempotency_in_progress`", body = ErrorBody),
        (status = 422, description = "`idempotency_key_reused`: the refund id was used for another refund", body = ErrorBody)))]
async fn admin_refund(
    State(state): State<AppState>,
    _clinic: Admin,
    Segment(bill_id): Segment<String>,
    Body(req): Body<wire::RefundRequest>,
) -> ApiResult<Json<wire::Refund>> {
    state.refund(&bill_id, &req).await.map(Json)
}

/// Cashier role (admin token), 一码付: the patient's scanned code and the items; the platform
/// issues a bill for the code's holder, linked to the scan, and it reaches their phone.
#[utoipa::path(post, path = "/v1/counter/charges", tag = "payments", security(("admin" = [])), request_body = wire::CounterChargeRequest,
    responses((status = 200, body = wire::CounterCharge)))]
async fn counter_charge(
    State(state): State<AppState>,
    _cashier: Admin,
    Body(req): Body<wire::CounterChargeRequest>,
) -> ApiResult<Json<wire::CounterCharge>> {
    state.counter_charge(&req).await.map(Json)
}

/// The caller's credit line (信用就医).
#[utoipa::path(get, path = "/v1/credit", tag = "payments", security(("session" = [])),
    responses((status = 200, body = wire::CreditLine)))]
async fn credit_line(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<wire::CreditLine>> {
    state.credit_line(caller.own()?).map(Json)
}

/// Signs a credit agreement: the device's signature over the terms.
#[utoipa::path(post, path = "/v1/credit/agreement", tag = "payments", security(("session" = [])), request_body = wire::CreditAgreementRequest,
    responses((status = 200, body = wire::CreditLine),
        (status = 409, description = "`credit_limit_exceeded`: the new limit is below what is used", body = ErrorBody)))]
async fn sign_credit(
    State(state): State<AppState>,
    caller: Caller,
    Body(req): Body<wire::CreditAgreementRequest>,
) -> ApiResult<Json<wire::CreditLine>> {
    // A signing time whose distance to now does not fit in an i64 is not now either (and
    // would overflow the platform's own check).
    if req.signed_at_ms.checked_sub(state.now_ms()).and_then(i64::checked_abs).is_none() {
        return Err(ApiError::bad_request("the agreement's signing time is not now"));
    }
    state.sign_credit(&caller, &req).await.map(Json)
}

/// Repays drawn credit from a card, under an `Idempotency-Key`.
#[utoipa::path(post, path = "/v1/credit/repayments", tag = "payments", security(("session" = [])),
    params(("Idempotency-Key" = String, Header)), request_body = wire::CreditRepayRequest,
    responses((status = 200, body = wire::CreditLine),
        (status = 409, description = "`conflict` (more than is owed, or the card was declined), or `idempotency_in_progress`", body = ErrorBody),
        (status = 422, description = "`idempotency_key_reused`: the key was used with another repayment", body = ErrorBody)))]
async fn repay_credit(
    State(state): State<AppState>,
    caller: Caller,
    IdempotencyKey(key): IdempotencyKey,
    Body(req): Body<wire::CreditRepayRequest>,
) -> ApiResult<Json<wire::CreditLine>> {
    state.repay_credit(&caller, &key, &req).await.map(Json)
}

#[derive(serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct AccountView {
    pub account_balance_fen: carepass_core::Fen,
    pub accumulators: std::collections::BTreeMap<String, carepass_core::domain::settlement::YearToDate>,
}

impl From<crate::payments::AccountRecord> for AccountView {
    fn from(a: crate::payments::AccountRecord) -> Self {
        AccountView { account_balance_fen: a.account_balance, accumulators: a.accumulators }
    }
}

#[derive(serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct SetBalance {
    balance_fen: carepass_core::Fen,
}

/// Test-fixture role: a person's personal account and accumulators.
#[utoipa::path(get, path = "/admin/v1/accounts/{person_id}", tag = "admin", security(("admin" = [])),
    params(("person_id" = String, Path)), responses((status = 200, body = AccountView),
        (status = 404, description = "`not_found`: no such person", body = ErrorBody)))]
async fn admin_account(
    State(state): State<AppState>,
    _admin: Admin,
    Segment(person_id): Segment<String>,
) -> ApiResult<Json<AccountView>> {
    state.account(&person_id).map(|a| Json(a.into()))
}

/// Test-fixture role: set a person's personal account balance.
#[utoipa::path(post, path = "/admin/v1/accounts/{person_id}", tag = "admin", security(("admin" = [])),
    params(("person_id" = String, Path)), request_body = SetBalance,
    responses((status = 200, body = AccountView),
        (status = 404, description = "`not_found`: no such person", body = ErrorBody)))]
async fn admin_set_balance(
    State(state): State<AppState>,
    _admin: Admin,
    Segment(person_id): Segment<String>,
    Body(req): Body<SetBalance>,
) -> ApiResult<Json<AccountView>> {
    state.set_account_balance(&person_id, req.balance_fen).await.map(|a| Json(a.into()))
}

/// Test-fixture role: any payment.
#[utoipa::path(get, path = "/admin/v1/payments/{payment_id}", tag = "admin", security(("admin" = [])),
    params(("payment_id" = String, Path)), responses((status = 200, body = wire::Payment),
        (status = 404, description = "`not_found`: no such payment", body = ErrorBody)))]
async fn admin_payment(
    State(state): State<AppState>,
    _admin: Admin,
    Segment(payment_id): Segment<String>,
) -> ApiResult<Json<wire::Payment>> {
    match state.payment_record(&payment_id)? {
        Some(r) => Ok(Json(state.payment_view(&r))),
        None => Err(ApiError::new(StatusCode::NOT_FOUND, PlatformCode::NotFound, "no such payment")),
    }
}

#[derive(serde::Serialize, utoipa::ToSchema)]
struct Driven {
    moved: usize,
}

/// Test-fixture role: run the payment driver now (it also runs every half second).
#[utoipa::path(post, path = "/admin/v1/payments/drive", tag = "admin", security(("admin" = [])),
    responses((status = 200, body = Driven)))]
async fn admin_drive_payments(State(state): State<AppState>, _admin: Admin) -> ApiResult<Json<Driven>> {
    state.drive_open().await.map(|moved| Json(Driven { moved }))
}

// ---- family links (docs/family.md) ------------------------------------------------------

fn link_id(id: &str) -> ApiResult<()> {
    carepass_core::domain::check_id(carepass_core::domain::Field::LinkId, id)
        .map_err(|e| ApiError::bad_request(e.to_string()))
}

/// The family rules in force (versioned data: age bands, relationships, mutual aid).
#[utoipa::path(get, path = "/v1/family/rules", tag = "family",
    responses((status = 200, body = wire::FamilyRules)))]
async fn family_rules(State(state): State<AppState>) -> ApiResult<Json<wire::FamilyRules>> {
    state.family_rules().map(Json)
}

/// The caller's links: those where they act for a relative, and those where a relative acts
/// for them.
#[utoipa::path(get, path = "/v1/family/links", tag = "family", security(("session" = [])),
    responses((status = 200, body = wire::FamilyOverview)))]
async fn family_links(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<wire::FamilyOverview>> {
    let answer = state.family_overview(caller.own()?);
    state.commit().await?;
    answer.map(Json)
}

/// Asks to act for a relative (named by phone). A parent's minor child in the same household
/// register is linked at once; anyone else's link waits for their consent.
#[utoipa::path(post, path = "/v1/family/links", tag = "family", security(("session" = [])), request_body = wire::LinkAsk,
    responses((status = 200, body = wire::LinkView),
        (status = 403, description = "`family_refused`: the caller acts for someone else (links are made for oneself), or a rule refused", body = ErrorBody),
        (status = 404, description = "`not_found`: no insured person has that phone", body = ErrorBody),
        (status = 409, description = "`family_refused`: `already_linked`", body = ErrorBody),
        (status = 422, description = "`family_refused`: a family rule refused the link (`docs/family.md` § 6)", body = ErrorBody)))]
async fn ask_link(
    State(state): State<AppState>,
    caller: Caller,
    Body(ask): Body<wire::LinkAsk>,
) -> ApiResult<Json<wire::LinkView>> {
    let answer = state.ask_link(&caller, &ask);
    state.commit().await?;
    answer.map(Json)
}

/// The principal consents (`own_device`), or the proxy enters the code the principal read out
/// to them (`sms_code`, for bands whose rules allow it; a wrong code is
/// `400 wrong_verification_code`, and too many lock the link's code out with `429`).
#[utoipa::path(post, path = "/v1/family/links/{link_id}/consent", tag = "family", security(("session" = [])),
    params(("link_id" = String, Path)), request_body = wire::LinkConsent,
    responses((status = 200, body = wire::LinkView),
        (status = 403, description = "`family_refused` (`not_the_principal`), or `forbidden` (counter consent is the service counter's)", body = ErrorBody),
        (status = 404, description = "`not_found`: no such link of the caller's", body = ErrorBody),
        (status = 422, description = "`family_refused`: the link or its band does not allow this consent", body = ErrorBody)))]
async fn consent_link(
    State(state): State<AppState>,
    caller: Caller,
    Segment(id): Segment<String>,
    Body(consent): Body<wire::LinkConsent>,
) -> ApiResult<Json<wire::LinkView>> {
    link_id(&id)?;
    let answer = state.consent_link(&caller, &id, &consent);
    state.commit().await?;
    answer.map(Json)
}

/// Sends the consent code to the principal's phone (the sandbox's code is `123456`).
#[utoipa::path(post, path = "/v1/family/links/{link_id}/code", tag = "family", security(("session" = [])),
    params(("link_id" = String, Path)),
    responses((status = 200, body = wire::VerificationCodeSent),
        (status = 404, description = "`not_found`: no such link of the caller's", body = ErrorBody),
        (status = 422, description = "`family_refused`: the link is not pending, or its band has no SMS consent", body = ErrorBody)))]
async fn send_link_code(
    State(state): State<AppState>,
    caller: Caller,
    Segment(id): Segment<String>,
) -> ApiResult<Json<wire::VerificationCodeSent>> {
    link_id(&id)?;
    let expires_in_s = state.send_link_code(&caller, &id)?;
    state.commit().await?;
    Ok(Json(wire::VerificationCodeSent { expires_in_s }))
}

/// Either side ends the link, at once.
#[utoipa::path(post, path = "/v1/family/links/{link_id}/revoke", tag = "family", security(("session" = [])),
    params(("link_id" = String, Path)),
    responses((status = 200, body = wire::LinkView),
        (status = 404, description = "`not_found`: no such link of the caller's", body = ErrorBody),
        (status = 422, description = "`family_refused`: the link is already revoked", body = ErrorBody)))]
async fn revoke_link(
    State(state): State<AppState>,
    caller: Caller,
    Segment(id): Segment<String>,
) -> ApiResult<Json<wire::LinkView>> {
    link_id(&id)?;
    let answer = state.revoke_link(&caller, &id);
    state.commit().await?;
    answer.map(Json)
}

/// The principal renews an adult link for another period.
#[utoipa::path(post, path = "/v1/family/links/{link_id}/renew", tag = "family", security(("session" = [])),
    params(("link_id" = String, Path)),
    responses((status = 200, body = wire::LinkView),
        (status = 403, description = "`family_refused`: only the principal renews", body = ErrorBody),
        (status = 404, description = "`not_found`: no such link of the caller's", body = ErrorBody),
        (status = 422, description = "`family_refused`: the link cannot be renewed now", body = ErrorBody)))]
async fn renew_link(
    State(state): State<AppState>,
    caller: Caller,
    Segment(id): Segment<String>,
) -> ApiResult<Json<wire::LinkView>> {
    link_id(&id)?;
    let answer = state.renew_link(&caller, &id);
    state.commit().await?;
    answer.map(Json)
}

/// The principal (a teen) sets what they assent to of their band's assent scopes.
#[utoipa::path(post, path = "/v1/family/links/{link_id}/assent", tag = "family", security(("session" = [])),
    params(("link_id" = String, Path)), request_body = wire::LinkAssent,
    responses((status = 200, body = wire::LinkView),
        (status = 403, description = "`family_refused`: only the principal assents", body = ErrorBody),
        (status = 404, description = "`not_found`: no such link of the caller's", body = ErrorBody),
        (status = 422, description = "`family_refused`: the link or its band does not take assent", body = ErrorBody)))]
async fn assent_link(
    State(state): State<AppState>,
    caller: Caller,
    Segment(id): Segment<String>,
    Body(assent): Body<wire::LinkAssent>,
) -> ApiResult<Json<wire::LinkView>> {
    link_id(&id)?;
    let answer = state.assent_link(&caller, &id, &assent);
    state.commit().await?;
    answer.map(Json)
}

/// The caller's audit chain: every act done on their behalf and every change to their links.
#[utoipa::path(get, path = "/v1/family/audit", tag = "family", security(("session" = [])),
    responses((status = 200, body = wire::AuditTrail)))]
async fn audit_trail(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<wire::AuditTrail>> {
    state.audit_trail(caller.own()?).map(Json)
}

/// Service-counter role: the principal and the relationship were verified in person.
#[utoipa::path(post, path = "/admin/v1/family/links/{link_id}/counter-consent", tag = "admin", security(("admin" = [])),
    params(("link_id" = String, Path)),
    responses((status = 200, body = wire::LinkView),
        (status = 404, description = "`not_found`: no such link", body = ErrorBody),
        (status = 422, description = "`family_refused`: the link or its band does not allow counter consent", body = ErrorBody)))]
async fn admin_counter_consent(
    State(state): State<AppState>,
    _admin: Admin,
    Segment(id): Segment<String>,
) -> ApiResult<Json<wire::LinkView>> {
    link_id(&id)?;
    let answer = state.counter_consent(&id);
    state.commit().await?;
    answer.map(Json)
}

/// Test-fixture role: replace the family rules (a new version); links are re-evaluated.
#[utoipa::path(put, path = "/admin/v1/family/rules", tag = "admin", security(("admin" = [])), request_body = wire::FamilyRules,
    responses((status = 200, body = wire::FamilyRules)))]
async fn admin_set_family_rules(
    State(state): State<AppState>,
    _admin: Admin,
    Body(rules): Body<wire::FamilyRules>,
) -> ApiResult<Json<wire::FamilyRules>> {
    let answer = state.set_family_rules(&rules);
    state.commit().await?;
    answer?;
    state.family_rules().map(Json)
}

/// A change to one audit record (test fixture).
#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
struct AuditTamper {
    principal: String,
    seq: u64,
    amount_fen: Option<i64>,
}

/// Test-fixture role: overwrite one audit record's amount, to show phones detect it.
#[utoipa::path(post, path = "/admin/v1/family/audit-tamper", tag = "admin", security(("admin" = [])), request_body = AuditTamper,
    responses((status = 204),
        (status = 404, description = "`not_found`: no such audit record", body = ErrorBody)))]
async fn admin_tamper_audit(
    State(state): State<AppState>,
    _admin: Admin,
    Body(req): Body<AuditTamper>,
) -> ApiResult<StatusCode> {
    state.tamper_audit(&req.principal, req.seq, req.amount_fen.map(carepass_core::Fen))?;
    state.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

/// What the generated document cannot say from the Rust types alone, so that it matches what
/// the server does (`scripts/schemathesis-ci.sh` holds it to that): the answers every route
/// shares (`400` for input that does not parse, `401`/`403` of the bearer checks, `429` of the
/// limits), the bounds the handlers and the core's checks enforce, the integer widths, and the
/// document's own route.
mod conformance {
    use serde_json::{json, Map, Value};

    /// An id (`domain::check_id`): 1 to 64 letters, digits and `_`.
    const ID: &str = "^[A-Za-z0-9_]{1,64}$";
    const PHONE: &str = "^1[0-9]{10}$";
    const VERIFICATION_CODE: &str = "^[0-9]{6}$";
    /// A channel's wire form; a card number must also pass the Luhn check, which a pattern
    /// cannot say (the description does).
    const CHANNEL: &str = "^(none|credit|card:[0-9]{12,19})$";
    const CARD: &str = "^card:[0-9]{12,19}$";
    const CARD_DESCRIPTION: &str = "A card: `card:<12 to 19 digits that pass the Luhn check>`.";
    /// 64 bytes (`r‖s`), base64url without padding: 86 characters, the last with its four
    /// unused bits zero.
    const SIGNATURE: &str = "^[A-Za-z0-9_-]{85}[AQgw]$";
    /// 65 bytes starting `04` (SEC1 uncompressed), base64url without padding: 87 characters.
    const P256_POINT: &str = "^B[A-P][A-Za-z0-9_-]{84}[AEIMQUYcgkosw048]$";
    /// `consent::check_idempotency_key`: 1 to 255 printable ASCII, no space.
    const IDEMPOTENCY_KEY: &str = "^[!-~]{1,255}$";
    const PUSH_TOKEN: &str = "^[!-~]{1,4096}$";
    /// 4 to 200 characters once Rust's `trim` (Unicode White_Space) has removed the ends.
    const ADDRESS_TEXT: &str =
        "^[\\t\\n\\u000B\\f\\r \\u0085\\u00A0\\u1680\\u2000-\\u200A\\u2028\\u2029\\u202F\\u205F\\u3000]*\
        [^\\t\\n\\u000B\\f\\r \\u0085\\u00A0\\u1680\\u2000-\\u200A\\u2028\\u2029\\u202F\\u205F\\u3000][\\s\\S]{2,198}\
        [^\\t\\n\\u000B\\f\\r \\u0085\\u00A0\\u1680\\u2000-\\u200A\\u2028\\u2029\\u202F\\u205F\\u3000]\
        [\\t\\n\\u000B\\f\\r \\u0085\\u00A0\\u1680\\u2000-\\u200A\\u2028\\u2029\\u202F\\u205F\\u3000]*$";

    /// Routes a limit answers `429` on (`docs/api.md` § Limits).
    const LIMITED: &[(&str, &str)] = &[
        ("post", "/v1/verification-codes"),
        ("post", "/v1/enrolments"),
        ("post", "/v1/sessions/challenge"),
        ("post", "/v1/sessions"),
        ("post", "/v1/bills/{bill_id}/quotes"),
        ("post", "/v1/payments"),
        ("post", "/v1/family/links/{link_id}/consent"),
        ("post", "/v1/family/links/{link_id}/code"),
        ("get", "/v1/inbox/stream"),
    ];

    fn fen(minimum: Option<i64>, maximum: Option<i64>) -> Value {
        let mut v = json!({"type": "integer", "format": "int64"});
        if let Some(m) = minimum {
            v["minimum"] = json!(m);
        }
        if let Some(m) = maximum {
            v["maximum"] = json!(m);
        }
        v
    }

    fn u16_field() -> Value {
        json!({"format": "uint16", "minimum": 0, "maximum": u16::MAX})
    }

    /// A `GeoPoint` the handler checks (`GeoPoint::is_valid`). The component itself stays
    /// unbounded: where nothing checks it (a pickup order's ignored address) any number passes.
    fn point_on_earth() -> Value {
        json!({
            "type": "object",
            "required": ["lat", "lon"],
            "properties": {
                "lat": {"type": "number", "format": "double", "minimum": -90, "maximum": 90},
                "lon": {"type": "number", "format": "double", "minimum": -180, "maximum": 180}
            }
        })
    }

    /// `POST /v1/orders`: a delivery needs an address the platform accepts
    /// (`order::check_address`); a pickup's address is not read.
    fn order_request(doc: &mut Value) {
        let schemas = &mut doc["components"]["schemas"];
        let mut base = schemas.get_mut("OrderRequest").map(Value::take).expect("OpenAPI bounds: no OrderRequest");
        let description = base.as_object_mut().and_then(|o| o.remove("description"));
        let delivery_address = json!({
            "type": "object",
            "required": ["text", "location", "contact_phone"],
            "properties": {
                "text": {"type": "string", "pattern": ADDRESS_TEXT},
                "location": point_on_earth(),
                "contact_phone": {"type": "string", "pattern": PHONE}
            }
        });
        let mut order = json!({"allOf": [base, {"anyOf": [
            {"type": "object", "required": ["fulfilment"], "properties": {"fulfilment": {"type": "string", "enum": ["pickup"]}}},
            {"type": "object", "required": ["address"], "properties": {"address": delivery_address}}
        ]}]});
        if let Some(d) = description {
            order["description"] = d;
        }
        schemas["OrderRequest"] = order;
    }

    /// (component, property, what to merge into its schema; a `$ref` property is replaced).
    fn bounds() -> Vec<(&'static str, &'static str, Value)> {
        vec![
            ("VerificationCodeRequest", "phone", json!({"pattern": PHONE})),
            ("EnrolRequest", "phone", json!({"pattern": PHONE})),
            ("EnrolRequest", "code", json!({"pattern": VERIFICATION_CODE})),
            ("EnrolRequest", "device_public_key", json!({"pattern": P256_POINT})),
            ("EnrolRequest", "device_name", json!({"maxLength": 64})),
            ("EnrolRequest", "platform", json!({"enum": ["android", "ios", "terminal"]})),
            ("LoginRequest", "phone", json!({"pattern": PHONE})),
            ("LoginRequest", "code", json!({"pattern": VERIFICATION_CODE})),
            ("LoginRequest", "signature", json!({"pattern": SIGNATURE})),
            ("PushTokenRegistration", "service", json!({"enum": ["fcm", "apns", "huawei", "xiaomi"]})),
            ("PushTokenRegistration", "token", json!({"pattern": PUSH_TOKEN})),
            ("IssueBillRequest", "phone", json!({"pattern": PHONE})),
            ("IssueBillRequest", "hospital", json!({"minLength": 1, "maxLength": 100})),
            ("IssueBillRequest", "department", json!({"minLength": 1, "maxLength": 100})),
            ("IssueBillRequest", "doctor", json!({"minLength": 1, "maxLength": 100})),
            ("IssueBillRequest", "items", json!({"minItems": 1, "maxItems": 200})),
            ("NewBillItem", "item_code", json!({"minLength": 1})),
            ("NewBillItem", "name", json!({"minLength": 1})),
            ("NewBillItem", "quantity", json!({"minimum": 1})),
            ("NewBillItem", "unit_price_fen", fen(Some(0), None)),
            ("CounterChargeRequest", "purpose", json!({"enum": ["pharmacy_purchase", "outpatient_settlement"]})),
            ("CounterChargeRequest", "merchant", json!({"minLength": 1, "maxLength": 100})),
            ("CounterChargeRequest", "payload", json!({"maxLength": 4096})),
            ("CounterChargeRequest", "items", json!({"minItems": 1, "maxItems": 200})),
            ("ScanRequest", "payload", json!({"maxLength": 4096})),
            (
                "QuoteRequest",
                "channel",
                json!({"pattern": CHANNEL, "description": "The cash leg's channel: `none`, `credit`, or `card:<12 to 19 digits \
                    that pass the Luhn check>`; ignored when nothing is left for cash (the quote then says `none`), \
                    and `none` is refused when something is."}),
            ),
            ("PayRequest", "quote_id", json!({"pattern": ID})),
            ("PayRequest", "bill_id", json!({"pattern": ID})),
            ("PayRequest", "subject", json!({"pattern": ID})),
            ("PayRequest", "actor", json!({"pattern": ID})),
            ("PayRequest", "device_id", json!({"pattern": ID})),
            ("PayRequest", "link_id", json!({"pattern": ID})),
            ("PayRequest", "mutual_aid_from", json!({"pattern": ID})),
            ("PayRequest", "channel", json!({"pattern": CHANNEL})),
            ("PayRequest", "signature", json!({"pattern": SIGNATURE})),
            ("CashDueRequest", "channel", json!({"pattern": CARD, "description": CARD_DESCRIPTION})),
            ("CashDueRequest", "signature", json!({"pattern": SIGNATURE})),
            // Only read while the payment awaits a confirmation; any other time the payment is
            // answered as it stands, whatever the code (so no pattern: it would not be refused).
            (
                "ConfirmRequest",
                "code",
                json!({"description": "The code the bank sent: 1 to 16 digits (read only while the payment awaits it)."}),
            ),
            ("RefundRequest", "refund_id", json!({"pattern": "^[A-Za-z0-9_-]{1,64}$"})),
            ("RefundRequest", "reason", json!({"minLength": 1, "maxLength": 200})),
            ("CreditAgreementRequest", "limit_fen", fen(Some(1), Some(500_000))),
            (
                "CreditAgreementRequest",
                "term_days",
                json!({"format": "uint16", "minimum": 30, "maximum": 30, "description": "The sandbox's one term: 30 days."}),
            ),
            ("CreditAgreementRequest", "signature", json!({"pattern": SIGNATURE})),
            ("CreditRepayRequest", "channel", json!({"pattern": CARD, "description": CARD_DESCRIPTION})),
            ("SetBalance", "balance_fen", fen(Some(0), None)),
            ("LinkAsk", "principal_phone", json!({"pattern": PHONE})),
            ("RankOptions", "max_distance_m", json!({"maximum": 100_000})),
            ("RankOptions", "limit", json!({"minimum": 1, "maximum": 200})),
            // The instant and China's UTC+8 offset must add up within an i64.
            ("RankOptions", "open_at_ms", json!({"maximum": i64::MAX - 8 * 3_600_000})),
            ("RankOptions", "location", point_on_earth()),
            // u16 in the types (their schemas say only "not negative").
            ("CreditLine", "term_days", u16_field()),
            ("PushKey", "key_id", u16_field()),
            ("ReceiptKey", "key_id", u16_field()),
            ("TrustedIssuer", "key_id", u16_field()),
            ("SignedBody", "key_id", u16_field()),
            ("RevocationList", "issuer_key_id", u16_field()),
        ]
    }

    /// Applies every rule to the document (a rule that names no schema or property panics).
    pub(super) fn apply(openapi: &mut utoipa::openapi::OpenApi) {
        let mut doc = serde_json::to_value(&*openapi).expect("the OpenAPI document is JSON");
        unsigned_widths(&mut doc);
        for (component, property, patch) in bounds() {
            let target = doc
                .pointer_mut(&format!("/components/schemas/{component}/properties/{property}"))
                .unwrap_or_else(|| panic!("OpenAPI bounds: no property {component}.{property}"));
            merge(target, patch);
        }
        order_request(&mut doc);
        shared_responses(&mut doc);
        parameters(&mut doc);
        doc["paths"]["/openapi.json"] = json!({"get": {
            "tags": ["meta"],
            "summary": "This document: the platform's OpenAPI 3.1 description.",
            "operationId": "openapi",
            "responses": {"200": {
                "description": "The OpenAPI document",
                "content": {"application/json": {"schema": {"type": "object"}}}
            }}
        }});
        let rebuilt: utoipa::openapi::OpenApi =
            serde_json::from_value(doc.clone()).expect("the amended OpenAPI document reads back");
        debug_assert_eq!(serde_json::to_value(&rebuilt).ok().as_ref(), Some(&doc), "the amended document round-trips");
        *openapi = rebuilt;
    }

    fn merge(target: &mut Value, patch: Value) {
        if target.get("$ref").is_some() {
            let description = target.get("description").cloned();
            *target = patch;
            if let Some(d) = description {
                target["description"] = d;
            }
            return;
        }
        let (Some(t), Value::Object(p)) = (target.as_object_mut(), patch) else {
            panic!("OpenAPI bounds: not a schema object");
        };
        t.extend(p);
    }

    /// utoipa writes every unsigned integer as a signed `int32`/`int64` with `minimum: 0`,
    /// which caps u32 and u64 at half their range; they are `uint32`/`uint64` with their
    /// real maximum (u8 and u16 fields get theirs in [`bounds`]).
    fn unsigned_widths(value: &mut Value) {
        match value {
            Value::Object(map) => {
                let integer = match map.get("type") {
                    Some(Value::String(t)) => t == "integer",
                    Some(Value::Array(ts)) => ts.iter().any(|t| t == "integer"),
                    _ => false,
                };
                if integer && map.get("minimum") == Some(&json!(0)) && !map.contains_key("maximum") {
                    let (format, maximum) = match map.get("format").and_then(Value::as_str) {
                        Some("int32") => ("uint32", json!(u32::MAX)),
                        _ => ("uint64", json!(u64::MAX)),
                    };
                    map.insert("format".into(), json!(format));
                    map.insert("maximum".into(), maximum);
                }
                map.values_mut().for_each(unsigned_widths);
            }
            Value::Array(items) => items.iter_mut().for_each(unsigned_widths),
            _ => {}
        }
    }

    fn error_response(description: &str) -> Value {
        json!({
            "description": description,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}
        })
    }

    fn with_header(mut response: Value, name: &str, description: &str, schema: Value) -> Value {
        response["headers"] = json!({name: {"description": description, "schema": schema}});
        response
    }

    fn reference(name: &str) -> Value {
        json!({"$ref": format!("#/components/responses/{name}")})
    }

    fn shared_responses(doc: &mut Value) {
        let challenge = |response: Value| {
            with_header(
                response,
                "WWW-Authenticate",
                "`Bearer realm=\"carepass\"`, with `error=\"invalid_token\"` when a token was sent \
                 (RFC 6750 § 3): on every refusal of the bearer token itself.",
                json!({"type": "string", "pattern": "^Bearer( |$)"}),
            )
        };
        let responses = json!({
            "BadRequest": error_response(
                "`invalid_request`: the body is not JSON of the request's schema (or not sent as \
                 `application/json`), a path, query or header parameter does not parse, \
                 `x-carepass-subject` is not a person id, or a value is out of range."),
            "Unauthorized": challenge(error_response(
                "No valid session: the bearer token is missing, unknown, of an ended session or a \
                 revoked device (`unauthorized`), or expired (`access_token_expired`). Routes that \
                 check a device signature answer `signature_invalid` here too.")),
            "SubjectRefused": error_response(
                "`family_refused`: `x-carepass-subject` names a relative the caller holds no active \
                 link to or whose link does not grant this, or the route is only for the caller \
                 themselves (`docs/family.md`)."),
            "AdminUnauthorized": challenge(error_response("`unauthorized`: no bearer token.")),
            "AdminForbidden": error_response(
                "`forbidden`: the bearer token is not the admin token, or the admin routes are off \
                 (the sandbox was started without `--admin-token`)."),
            "RateLimited": with_header(
                error_response("`rate_limited`: a limit on abuse (`docs/api.md` § Limits); nothing was done."),
                "Retry-After",
                "Seconds to wait before trying again.",
                json!({"type": "integer", "minimum": 1})),
        });
        doc["components"]["responses"] = responses;
        let Some(paths) = doc["paths"].as_object_mut() else { return };
        for (path, item) in paths.iter_mut() {
            let Some(item) = item.as_object_mut() else { continue };
            for (method, op) in item.iter_mut() {
                let schemes: Vec<String> = op
                    .get("security")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_object)
                    .flat_map(|r| r.keys().cloned())
                    .collect();
                let session = schemes.iter().any(|s| s == "session");
                let admin = schemes.iter().any(|s| s == "admin");
                let takes_input = op.get("requestBody").is_some()
                    || op.get("parameters").and_then(Value::as_array).is_some_and(|p| !p.is_empty());
                let limited = LIMITED.contains(&(method.as_str(), path.as_str()));
                let responses: &mut Map<String, Value> =
                    op["responses"].as_object_mut().expect("every operation has responses");
                if takes_input || session {
                    responses.insert("400".into(), reference("BadRequest"));
                }
                if session {
                    responses.insert("401".into(), reference("Unauthorized"));
                    responses.entry("403").or_insert_with(|| reference("SubjectRefused"));
                }
                if admin {
                    responses.insert("401".into(), reference("AdminUnauthorized"));
                    responses.insert("403".into(), reference("AdminForbidden"));
                }
                if limited {
                    responses.insert("429".into(), reference("RateLimited"));
                }
            }
        }
    }

    /// Parameters the handlers check beyond their type.
    fn parameters(doc: &mut Value) {
        let Some(paths) = doc["paths"].as_object_mut() else { return };
        for item in paths.values_mut().filter_map(Value::as_object_mut) {
            for op in item.values_mut() {
                for p in op.get_mut("parameters").and_then(Value::as_array_mut).into_iter().flatten() {
                    let pattern = match (p["in"].as_str(), p["name"].as_str()) {
                        (Some("header"), Some("Idempotency-Key")) => IDEMPOTENCY_KEY,
                        (Some("path"), Some("link_id")) => ID,
                        _ => continue,
                    };
                    p["schema"]["pattern"] = json!(pattern);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::whole_numbers_as_integers as respelled;

    #[test]
    fn whole_floats_are_respelled_as_integers_and_nothing_else_is() {
        let text = |b: Option<Vec<u8>>| b.map(|b| String::from_utf8(b).unwrap());
        assert_eq!(
            text(respelled(br#"{"a":2.0,"b":[1e3,-0.0,1.5],"c":"2.0"}"#)),
            Some(r#"{"a":2,"b":[1000,0,1.5],"c":"2.0"}"#.into())
        );
        assert_eq!(respelled(br#"{"a":2,"b":1.5}"#), None);
        assert_eq!(respelled(b"1e300"), None);
        assert_eq!(respelled(b"not json"), None);
    }

    #[test]
    fn the_document_describes_itself_and_the_shared_answers() {
        let doc: serde_json::Value = serde_json::from_str(&crate::openapi_json()).unwrap();
        assert!(doc["paths"]["/openapi.json"]["get"].is_object());
        let prune = &doc["paths"]["/admin/v1/prune"]["post"]["responses"];
        assert_eq!(prune["401"]["$ref"], "#/components/responses/AdminUnauthorized");
        assert_eq!(prune["403"]["$ref"], "#/components/responses/AdminForbidden");
        assert_eq!(
            doc["paths"]["/v1/payments"]["post"]["responses"]["429"]["$ref"],
            "#/components/responses/RateLimited"
        );
        assert!(doc["components"]["responses"]["RateLimited"]["headers"]["Retry-After"].is_object());
        assert_eq!(doc["components"]["schemas"]["InboxPage"]["properties"]["cursor"]["maximum"], u64::MAX);
        assert_eq!(doc["components"]["schemas"]["CreditAgreementRequest"]["properties"]["term_days"]["maximum"], 30);
    }
}
