//! The sandbox's answer to anything that goes wrong: an HTTP status with the platform's
//! [`ErrorBody`]. Messages never carry personal data.

use axum::extract::rejection::JsonRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use carepass_core::wire::{ErrorBody, PlatformCode};

#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: PlatformCode,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: PlatformCode, message: impl Into<String>) -> Self {
        ApiError { status, code, message: message.into() }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, PlatformCode::InvalidRequest, message)
    }

    pub fn unauthorized(code: PlatformCode, message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, code, message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, PlatformCode::Internal, message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(ErrorBody { code: self.code, message: self.message })).into_response()
    }
}

impl From<sled::Error> for ApiError {
    fn from(e: sled::Error) -> Self {
        ApiError::internal(format!("storage: {e}"))
    }
}

impl From<serde_json::Error> for ApiError {
    fn from(e: serde_json::Error) -> Self {
        ApiError::internal(format!("stored record unreadable: {e}"))
    }
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        ApiError::bad_request(r.body_text())
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
