//! Every HTTP error is JSON: [`ErrorBody`] (`{"error": …, "code": …}`).
//!
//! The collector's own errors are built as JSON ([`crate::Error`]'s
//! `IntoResponse`). What axum answers by itself is plain text or empty: a
//! JSON body that does not parse or does not fit the type (400/422), a
//! wrong or missing `Content-Type` (415), a body over [`BODY_LIMIT_BYTES`]
//! (413), a bad query string or path parameter (400), a method the route
//! does not have (405, with `Allow`). [`json_errors`] rewrites any such
//! response into the same shape, keeping its status and headers, so no
//! path through the router can answer an error in another format.

use axum::http::header::{ALLOW, CONTENT_LENGTH, CONTENT_TYPE};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

use crate::error::ErrorBody;

/// The largest request body accepted (413 past it): API bodies are small
/// JSON objects (a note, a window); 64 KiB leaves room for long notes.
pub const BODY_LIMIT_BYTES: usize = 64 * 1024;

/// How much of a plain-text error body is kept as the message.
const MESSAGE_LIMIT_BYTES: usize = 4 * 1024;

/// Rewrites an error response that is not JSON into an [`ErrorBody`] with
/// the same status and headers; anything else passes untouched.
pub async fn json_errors(resp: Response) -> Response {
    let status = resp.status();
    if !(status.is_client_error() || status.is_server_error()) || is_json(resp.headers()) {
        return resp;
    }
    let (parts, body) = resp.into_parts();
    let text = match axum::body::to_bytes(body, MESSAGE_LIMIT_BYTES).await {
        Ok(b) => String::from_utf8_lossy(&b).trim().to_string(),
        Err(_) => String::new(),
    };
    let message = message(status, &parts.headers, text);
    let mut out = ErrorBody::response(status, message);
    for (name, value) in &parts.headers {
        if name != CONTENT_TYPE && name != CONTENT_LENGTH {
            out.headers_mut().append(name, value.clone());
        }
    }
    out
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"))
}

/// axum's text when it has one (it names the field or parameter at fault),
/// else the status's own words; a 405 also says which methods the route has.
fn message(status: StatusCode, headers: &HeaderMap, text: String) -> String {
    if status == StatusCode::METHOD_NOT_ALLOWED {
        let allow = headers
            .get(ALLOW)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        return format!("method not allowed; this route allows {allow}");
    }
    if text.is_empty() {
        return status.canonical_reason().unwrap_or("error").to_lowercase();
    }
    text
}

/// A 404 for every path no route matches.
pub async fn no_route() -> Response {
    ErrorBody::response(StatusCode::NOT_FOUND, "no such route")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A plain-text response, as axum's rejections are.
    fn text(status: StatusCode, body: &'static str) -> Response {
        let mut r = Response::new(axum::body::Body::from(body));
        *r.status_mut() = status;
        r
    }

    async fn json(r: Response) -> serde_json::Value {
        let b = axum::body::to_bytes(r.into_body(), 1 << 16)
            .await
            .expect("body");
        serde_json::from_slice(&b).expect("json")
    }

    #[tokio::test]
    async fn a_plain_text_rejection_becomes_the_error_shape() {
        let r = json_errors(text(StatusCode::UNPROCESSABLE_ENTITY, "text: invalid type")).await;
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let v = json(r).await;
        assert_eq!(v["error"], "text: invalid type");
        assert_eq!(v["code"], "unprocessable_entity");
    }

    #[tokio::test]
    async fn a_bare_405_names_the_allowed_methods_and_keeps_allow() {
        let mut r = text(StatusCode::METHOD_NOT_ALLOWED, "");
        r.headers_mut()
            .insert(ALLOW, "GET,HEAD".parse().expect("header"));
        let r = json_errors(r).await;
        assert_eq!(r.headers()[ALLOW], "GET,HEAD");
        assert_eq!(r.headers()[CONTENT_TYPE], "application/json");
        let v = json(r).await;
        assert_eq!(v["code"], "method_not_allowed");
        assert!(v["error"].as_str().is_some_and(|e| e.contains("GET,HEAD")));
    }

    #[tokio::test]
    async fn success_and_json_errors_pass_untouched() {
        let r = json_errors(text(StatusCode::OK, "fine")).await;
        assert_eq!(
            axum::body::to_bytes(r.into_body(), 64).await.expect("b"),
            "fine"
        );
        let r = json_errors(ErrorBody::response(StatusCode::CONFLICT, "taken")).await;
        assert_eq!(json(r).await["error"], "taken");
    }
}
