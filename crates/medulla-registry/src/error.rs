//! The registry's errors: Confluent's HTTP statuses, error codes and messages.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// An error answered as `{"error_code": …, "message": …}`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{status} {code}: {message}")]
pub struct ApiError {
    pub status: StatusCode,
    pub code: u32,
    pub message: String,
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn new(status: StatusCode, code: u32, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }

    // 404
    pub fn subject_not_found(subject: &str) -> ApiError {
        ApiError::new(
            StatusCode::NOT_FOUND,
            40401,
            format!("Subject '{subject}' not found."),
        )
    }
    pub fn version_not_found(version: i32) -> ApiError {
        ApiError::new(
            StatusCode::NOT_FOUND,
            40402,
            format!("Version {version} not found."),
        )
    }
    pub fn schema_not_found() -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, 40403, "Schema not found")
    }
    pub fn schema_id_not_found(id: i32) -> ApiError {
        ApiError::new(
            StatusCode::NOT_FOUND,
            40403,
            format!("Schema {id} not found"),
        )
    }
    pub fn subject_soft_deleted(subject: &str) -> ApiError {
        ApiError::new(
            StatusCode::NOT_FOUND,
            40404,
            format!(
                "Subject '{subject}' was soft deleted.Set permanent=true to delete permanently"
            ),
        )
    }
    pub fn subject_not_soft_deleted(subject: &str) -> ApiError {
        ApiError::new(
            StatusCode::NOT_FOUND,
            40405,
            format!("Subject '{subject}' was not deleted first before being permanently deleted"),
        )
    }
    pub fn version_soft_deleted(subject: &str, version: i32) -> ApiError {
        ApiError::new(
            StatusCode::NOT_FOUND,
            40406,
            format!(
                "Subject '{subject}' Version {version} was soft deleted.Set permanent=true to delete permanently"
            ),
        )
    }
    pub fn version_not_soft_deleted(subject: &str, version: i32) -> ApiError {
        ApiError::new(
            StatusCode::NOT_FOUND,
            40407,
            format!(
                "Subject '{subject}' Version {version} was not deleted first before being permanently deleted"
            ),
        )
    }
    pub fn subject_compat_not_configured(subject: &str) -> ApiError {
        ApiError::new(
            StatusCode::NOT_FOUND,
            40408,
            format!("Subject '{subject}' does not have subject-level compatibility configured"),
        )
    }
    pub fn subject_mode_not_configured(subject: &str) -> ApiError {
        ApiError::new(
            StatusCode::NOT_FOUND,
            40409,
            format!("Subject '{subject}' does not have subject-level mode configured"),
        )
    }
    pub fn not_found(what: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, 404, what)
    }

    // 409
    pub fn incompatible(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::CONFLICT, 409, message)
    }

    // 422
    pub fn invalid_schema(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, 42201, message)
    }
    pub fn invalid_version(version: &str) -> ApiError {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            42202,
            format!(
                "The specified version '{version}' is not a valid version id. Allowed values are between [1, 2^31-1] and the string \"latest\""
            ),
        )
    }
    pub fn invalid_compatibility(level: &str) -> ApiError {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            42203,
            format!(
                "Invalid compatibility level. Valid values are none, backward, forward, full, backward_transitive, forward_transitive, and full_transitive (got {level:?})"
            ),
        )
    }
    pub fn invalid_mode(mode: &str) -> ApiError {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            42204,
            format!(
                "Invalid mode. Valid values are READWRITE, READONLY, READONLY_OVERRIDE and IMPORT (got {mode:?})"
            ),
        )
    }
    pub fn not_permitted(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, 42205, message)
    }
    pub fn reference_exists(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, 42206, message)
    }
    pub fn id_does_not_match(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, 42207, message)
    }
    pub fn invalid_subject(subject: &str) -> ApiError {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            42208,
            format!("The specified subject {subject:?} is not a valid subject name"),
        )
    }
    pub fn schema_too_large(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, 42209, message)
    }
    pub fn invalid_ruleset(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, 42210, message)
    }
    pub fn context_not_empty(context: &str) -> ApiError {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            42211,
            format!("The specified context '{context}' is not empty."),
        )
    }
    /// A body that is JSON but not the entity expected (Jersey's 422).
    pub fn unprocessable(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, 422, message)
    }

    // 4xx from the HTTP layer
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, 400, message)
    }
    pub fn unsupported_media_type(got: &str) -> ApiError {
        ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            415,
            format!(
                "HTTP 415 Unsupported Media Type: {got:?}; use application/vnd.schemaregistry.v1+json, application/vnd.schemaregistry+json or application/json"
            ),
        )
    }
    pub fn payload_too_large(limit: usize) -> ApiError {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            413,
            format!("request body larger than registry.request.max.bytes ({limit} bytes)"),
        )
    }

    // 500
    pub fn store(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, 50001, message)
    }
    pub fn timeout(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, 50002, message)
    }
    pub fn forwarding_failed(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, 50003, message)
    }
    pub fn unknown_leader(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, 50004, message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({"error_code": self.code, "message": self.message});
        crate::api::json_response(self.status, &body)
    }
}
