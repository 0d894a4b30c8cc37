//! Authentication and authorization of every HTTP request, in one layer
//! ([`gate`]): who is calling (a bearer API key or a session cookie),
//! whether a cookie's state-changing request carries its CSRF token, and
//! whether the caller may use the route ([`crate::access::authz::authorize`]).
//! Handlers then take the [`Caller`] the gate found.

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::{ConnectInfo, FromRequestParts, MatchedPath, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};

use super::AppState;
use crate::access::authz;
use crate::domain::{ApiCaller, now_millis};
use crate::{Error, Result};

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "forewarn_session";
/// The form field a state-changing dashboard form carries its token in.
pub const CSRF_FIELD: &str = "_csrf";
/// The header scripts in the dashboard send the token in.
pub const CSRF_HEADER: &str = "x-csrf-token";
/// Largest form body the gate reads to find the CSRF token.
const MAX_FORM_BYTES: usize = 256 * 1024;

/// An authenticated caller: what it may see and whether it may write.
#[derive(Clone)]
pub struct Caller(pub ApiCaller);

/// The signed-in operator's CSRF token (cookie sessions only), for forms.
#[derive(Clone)]
pub struct Csrf(pub String);

impl FromRequestParts<AppState> for Caller {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, _: &AppState) -> Result<Self, Self::Rejection> {
        parts.extensions.get::<Caller>().cloned().ok_or_else(|| {
            Error::Unauthenticated("sign in, or send Authorization: Bearer <api key>".into())
        })
    }
}

impl FromRequestParts<AppState> for Option<Caller> {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &AppState) -> Result<Self, Self::Rejection> {
        Ok(parts.extensions.get::<Caller>().cloned())
    }
}

/// The value of cookie `name`, if the request has one.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// The peer's address (`ip:port`), or `unknown` when the server was not
/// started with connection info (unit tests).
pub fn source(parts_ext: &axum::http::Extensions) -> String {
    parts_ext
        .get::<ConnectInfo<SocketAddr>>()
        .map_or_else(|| "unknown".to_string(), |c| c.0.ip().to_string())
}

fn is_safe(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// Whether an unauthenticated request wants a page (redirect to the
/// login) rather than a JSON error.
fn wants_page(req: &Request) -> bool {
    !req.uri().path().starts_with("/api/")
        && req
            .headers()
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|a| a.contains("text/html"))
}

/// The layer every request passes: authenticate, check CSRF, authorize.
pub async fn gate(State(s): State<AppState>, req: Request, next: Next) -> Response {
    match check(&s, req).await {
        Ok(req) => next.run(req).await,
        Err((Error::Unauthenticated(_), true, path)) => {
            let next = urlencoding_path(&path);
            Redirect::to(&format!("/login?next={next}")).into_response()
        }
        Err((e, _, _)) => e.into_response(),
    }
}

/// Only a local path may be a `next` target (no open redirect).
fn urlencoding_path(path: &str) -> String {
    if !path.starts_with('/') || path.starts_with("//") {
        return "/".into();
    }
    path.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'/' | b'-' | b'_' | b'.' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

async fn check(s: &AppState, req: Request) -> Result<Request, (Error, bool, String)> {
    let page = wants_page(&req);
    let path = req.uri().path().to_string();
    let fail = |e: Error| (e, page, path.clone());
    // An unknown route has no pattern: let it reach the JSON 404 fallback.
    let Some(pattern) = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_string())
    else {
        return Ok(req);
    };
    let method = req.method().clone();
    if authz::rule(&method, &pattern).is_none() && authz::known_path(&pattern) {
        // Another method of a known route: the router answers 405.
        return Ok(req);
    }
    let source = source(req.extensions());
    let now = now_millis();
    let (mut req, caller, csrf) = if let Some(auth) = req.headers().get(header::AUTHORIZATION) {
        let key = auth
            .to_str()
            .ok()
            .and_then(|h| h.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|k| !k.is_empty() && k.len() <= 256)
            .ok_or_else(|| {
                fail(Error::Unauthenticated(
                    "expected Authorization: Bearer <api key>".into(),
                ))
            })?;
        let caller = s.access.key_caller(key, &source, now).await.map_err(fail)?;
        (req, Some(caller), None)
    } else if let Some(cookie) = cookie(req.headers(), SESSION_COOKIE).map(str::to_string) {
        match s
            .access
            .session_caller(&cookie, &source, now)
            .await
            .map_err(fail)?
        {
            Some(sc) => {
                let req = if is_safe(&method) {
                    req
                } else {
                    csrf_checked(req, &sc.csrf_token).await.map_err(fail)?
                };
                (req, Some(sc.caller), Some(sc.csrf_token))
            }
            None => (req, None, None),
        }
    } else {
        (req, None, None)
    };
    authz::authorize(caller.as_ref(), &method, &pattern).map_err(fail)?;
    if let Some(c) = caller {
        req.extensions_mut().insert(Caller(c));
    }
    if let Some(t) = csrf {
        req.extensions_mut().insert(Csrf(t));
    }
    Ok(req)
}

/// The request again if it carries `token` (header, or form field in an
/// urlencoded body, which is read and put back); `PermissionDenied` if not.
async fn csrf_checked(req: Request, token: &str) -> Result<Request> {
    let refused = || {
        Error::PermissionDenied("missing or wrong CSRF token; reload the page and try again".into())
    };
    let matches = |v: &str| constant_time_eq(v.as_bytes(), token.as_bytes());
    if let Some(v) = req.headers().get(CSRF_HEADER).and_then(|v| v.to_str().ok()) {
        return if matches(v) { Ok(req) } else { Err(refused()) };
    }
    let is_form = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/x-www-form-urlencoded"));
    if !is_form {
        return Err(refused());
    }
    let (parts, body) = req.into_parts();
    let bytes = axum::body::to_bytes(body, MAX_FORM_BYTES)
        .await
        .map_err(|_| Error::InvalidArgument(format!("form body over {MAX_FORM_BYTES} bytes")))?;
    let found = form_urlencoded::parse(&bytes).any(|(k, v)| k == CSRF_FIELD && matches(&v));
    if !found {
        return Err(refused());
    }
    Ok(Request::from_parts(parts, Body::from(bytes)))
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
