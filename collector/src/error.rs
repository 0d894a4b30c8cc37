//! The collector's error type and the one place that maps it to gRPC and HTTP.

use std::path::PathBuf;

/// Errors at the collector's library boundary.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("config: {0}")]
    Config(String),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("store: {0}")]
    Store(#[from] sqlx::Error),
    #[error("store migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("pki: {0}")]
    Pki(String),
    #[error("not found: {0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    #[error("unauthenticated: {0}")]
    Unauthenticated(String),
    #[error("permission denied: {0}")]
    PermissionDenied(String),
    /// A service the collector needs (its database) cannot be reached.
    #[error("{0}")]
    Unavailable(String),
    /// Data in the store that no write of ours produces (not a conflict:
    /// an internal error, logged).
    #[error("corrupt stored data: {0}")]
    Corrupt(String),
    /// Too many attempts (logins): try again later.
    #[error("{0}")]
    RateLimited(String),
    /// A failure of ours that is not the store's (logged, never shown).
    #[error("internal: {0}")]
    Internal(String),
}

/// Result with the collector's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Whether the store could not be reached at all (connection refused or
    /// lost, pool timed out): worth retrying, not a bad request or a bug.
    pub fn is_unavailable(&self) -> bool {
        match self {
            Error::Unavailable(_) => true,
            Error::Store(sqlx::Error::Database(db)) => {
                // PostgreSQL: connection exceptions (08…) and the server
                // shutting down or restarting (57P01–57P03).
                db.code()
                    .is_some_and(|c| c.starts_with("08") || c.starts_with("57P"))
            }
            Error::Store(e) => matches!(
                e,
                sqlx::Error::Io(_)
                    | sqlx::Error::Tls(_)
                    | sqlx::Error::PoolTimedOut
                    | sqlx::Error::PoolClosed
                    | sqlx::Error::WorkerCrashed
            ),
            _ => false,
        }
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}

impl From<rcgen::Error> for Error {
    fn from(e: rcgen::Error) -> Self {
        Error::Pki(e.to_string())
    }
}

// === mapping to gRPC ===

impl From<Error> for tonic::Status {
    fn from(e: Error) -> Self {
        use tonic::Status;
        match e {
            Error::NotFound(m) => Status::not_found(m),
            Error::Conflict(m) => Status::already_exists(m),
            Error::InvalidArgument(m) => Status::invalid_argument(m),
            Error::Unauthenticated(m) => Status::unauthenticated(m),
            Error::PermissionDenied(m) => Status::permission_denied(m),
            Error::RateLimited(m) => Status::resource_exhausted(m),
            // Internal details (paths, SQL) stay in the collector's log.
            other => {
                tracing::error!(error = %other, "internal error");
                Status::unavailable("collector temporarily unable to process the request")
            }
        }
    }
}

// === mapping to HTTP ===

/// The body of every HTTP error response (`/api/v1`, `/healthz` aside):
/// `{"error": "<what went wrong, naming the field>", "code": "<stable code>"}`.
/// `error` is for people and may change wording; `code` is for programs and
/// is one per HTTP status (see [`ErrorBody::code_for`]).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// What went wrong, for a person: names the parameter or field at fault.
    pub error: String,
    /// Stable machine-readable code, one per HTTP status.
    #[schema(example = "bad_request")]
    pub code: String,
}

impl ErrorBody {
    /// An error body for `status` with `message`.
    pub fn new(status: axum::http::StatusCode, message: impl Into<String>) -> Self {
        ErrorBody {
            error: message.into(),
            code: Self::code_for(status).to_string(),
        }
    }

    /// The stable `code` of an HTTP status: clients branch on it rather
    /// than on the message.
    pub fn code_for(status: axum::http::StatusCode) -> &'static str {
        match status.as_u16() {
            400 => "bad_request",
            401 => "unauthenticated",
            403 => "permission_denied",
            404 => "not_found",
            405 => "method_not_allowed",
            409 => "conflict",
            413 => "payload_too_large",
            415 => "unsupported_media_type",
            422 => "unprocessable_entity",
            429 => "too_many_requests",
            503 => "unavailable",
            s if s >= 500 => "internal",
            _ => "error",
        }
    }

    /// This body as a response with `status`.
    pub fn response(
        status: axum::http::StatusCode,
        message: impl Into<String>,
    ) -> axum::response::Response {
        use axum::response::IntoResponse;
        (status, axum::Json(Self::new(status, message))).into_response()
    }
}

impl axum::response::IntoResponse for Error {
    fn into_response(self) -> axum::response::Response {
        use axum::http::StatusCode;
        let (status, message) = match &self {
            Error::NotFound(m) => (StatusCode::NOT_FOUND, m.clone()),
            Error::Conflict(m) => (StatusCode::CONFLICT, m.clone()),
            Error::InvalidArgument(m) => (StatusCode::BAD_REQUEST, m.clone()),
            Error::Unauthenticated(m) => (StatusCode::UNAUTHORIZED, m.clone()),
            Error::PermissionDenied(m) => (StatusCode::FORBIDDEN, m.clone()),
            Error::RateLimited(m) => (StatusCode::TOO_MANY_REQUESTS, m.clone()),
            e if e.is_unavailable() => {
                tracing::error!(error = %e, "store unavailable");
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "store unavailable, try again".to_string(),
                )
            }
            other => {
                tracing::error!(error = %other, "internal error");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal error".to_string(),
                )
            }
        };
        ErrorBody::response(status, message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::response::IntoResponse;

    /// A store that cannot be reached is 503 with a JSON body (retry), not
    /// a 500.
    #[tokio::test]
    async fn an_unreachable_store_is_503_json() {
        let r = Error::Store(sqlx::Error::PoolTimedOut).into_response();
        assert_eq!(r.status(), axum::http::StatusCode::SERVICE_UNAVAILABLE);
        let body = axum::body::to_bytes(r.into_body(), 1024)
            .await
            .expect("body");
        let v: serde_json::Value = serde_json::from_slice(&body).expect("json");
        assert_eq!(v["error"], "store unavailable, try again");
        assert_eq!(v["code"], "unavailable");
        let r = Error::Store(sqlx::Error::RowNotFound).into_response();
        assert_eq!(r.status(), axum::http::StatusCode::INTERNAL_SERVER_ERROR);
    }
}
