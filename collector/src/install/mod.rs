//! One-line enrollment: what the collector serves on its agent port for an
//! install script, next to the gRPC services (same TLS listener, the same
//! certificate, chained to the CA that agents pin by fingerprint).
//!
//! - `GET /install.sh`, `GET /install.ps1`: the install scripts
//!   (`deploy/install/`, embedded at build time; see [`oneliner`]);
//! - `GET /ca.pem`: the CA certificate, which a script checks against the
//!   fingerprint it was given before it trusts anything else;
//! - `POST /enroll/check` `{"token": …}`: whether a token may enroll
//!   (tenant, site), using nothing up, so a bad token stops a script before
//!   it installs anything (failures are limited per address like
//!   enrollments);
//! - `GET /download/index.json`, `/download/index.txt`: the signed agent
//!   artifacts of `[releases] dir`, newest first (the verified scan of
//!   [`crate::releases`]);
//! - `GET /download/release.pub`: `[releases] public_key`;
//! - `GET /download/{file}`: an artifact the scan verified, sent only if
//!   the bytes read are the ones verified (same SHA-256), or its
//!   `.minisig` as verified.
//!
//! Every error is JSON (`{"error": …, "code": …}`); a gRPC request for a
//! service the collector does not have still gets gRPC's `UNIMPLEMENTED`.

pub mod oneliner;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Path, Request, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;
use sha2::Digest;
use tonic::transport::server::{TcpConnectInfo, TlsConnectInfo};

use crate::domain::now_millis;
use crate::error::ErrorBody;
use crate::ingest::FailureLimiter;
use crate::releases::{Artifact, Releases, SIGNATURE_SUFFIX};
use crate::tickets::Service;
use crate::{Error, Result};

/// The longest token accepted by `/enroll/check` (tokens are 47 characters).
const MAX_TOKEN_LEN: usize = 256;

/// What the install routes need.
#[derive(Clone)]
pub struct InstallState {
    svc: Service,
    ca_pem: Arc<str>,
    releases: Releases,
    /// `[releases] public_key`'s text, as configured.
    public_key: Option<Arc<str>>,
    limiter: Arc<FailureLimiter>,
}

impl InstallState {
    /// `max_failures` token checks refused per address within `window`
    /// (0 = no limit): the enrollment limit, kept separately.
    pub fn new(
        svc: Service,
        ca_pem: &str,
        releases: Releases,
        public_key: Option<&str>,
        max_failures: u32,
        window: Duration,
    ) -> Self {
        Self {
            svc,
            ca_pem: Arc::from(ca_pem),
            releases,
            public_key: public_key
                .map(|k| {
                    k.lines()
                        .map(str::trim)
                        .find(|l| !l.is_empty() && !l.starts_with("untrusted comment:"))
                        .unwrap_or_default()
                })
                .map(Arc::from),
            limiter: Arc::new(FailureLimiter::new(max_failures, window)),
        }
    }
}

/// The install routes, to be served beside the gRPC services.
pub fn router(state: InstallState) -> Router {
    Router::new()
        .route("/install.sh", get(install_sh))
        .route("/install.ps1", get(install_ps1))
        .route("/ca.pem", get(ca_pem))
        .route("/enroll/check", post(enroll_check))
        .route("/download/index.json", get(index_json))
        .route("/download/index.txt", get(index_txt))
        .route("/download/release.pub", get(release_pub))
        .route("/download/{file}", get(download))
        .fallback(fallback)
        .with_state(state)
}

fn text(content_type: &'static str, body: impl Into<axum::body::Body>) -> Response {
    (
        [
            (CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        body.into(),
    )
        .into_response()
}

async fn install_sh() -> Response {
    text("text/x-shellscript; charset=utf-8", oneliner::INSTALL_SH)
}

async fn install_ps1() -> Response {
    text("text/plain; charset=utf-8", oneliner::INSTALL_PS1)
}

async fn ca_pem(State(s): State<InstallState>) -> Response {
    text("application/x-pem-file", s.ca_pem.to_string())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenCheck {
    token: String,
}

/// The peer's address, from the connection info tonic attaches.
fn peer(req_ext: &axum::http::Extensions) -> Option<SocketAddr> {
    req_ext
        .get::<TlsConnectInfo<TcpConnectInfo>>()
        .and_then(|i| i.get_ref().remote_addr())
        .or_else(|| {
            req_ext
                .get::<TcpConnectInfo>()
                .and_then(TcpConnectInfo::remote_addr)
        })
}

/// Whether a token may enroll now: `200 {"tenant", "site", "role"}`, or
/// the refusal enrollment would give (401 unknown, revoked or expired;
/// 403 used up). Uses nothing up.
async fn enroll_check(State(s): State<InstallState>, req: Request) -> Result<Response> {
    let ip = peer(req.extensions()).map(|a| a.ip());
    if let Some(ip) = ip
        && !s.limiter.allowed(ip, Instant::now())
    {
        return Err(Error::RateLimited(
            "too many refused enrollment tokens from this address; try again later".into(),
        ));
    }
    let body = axum::body::to_bytes(req.into_body(), 4 * 1024)
        .await
        .map_err(|_| Error::InvalidArgument("body: at most 4 KiB of JSON".into()))?;
    let check: TokenCheck = serde_json::from_slice(&body).map_err(|e| {
        Error::InvalidArgument(format!("body: expected {{\"token\": \"fwt_…\"}}: {e}"))
    })?;
    if check.token.is_empty() || check.token.len() > MAX_TOKEN_LEN {
        return Err(Error::Unauthenticated("enrollment token missing".into()));
    }
    let hash = crate::secrets::hash(&check.token);
    match s.svc.check_enrollment_token(&hash, now_millis()).await {
        Ok(grant) => Ok(Json(json!({
            "tenant": grant.tenant_name,
            "site": grant.site,
            "role": grant.role,
        }))
        .into_response()),
        Err(e) => {
            if let Some(ip) = ip
                && matches!(e, Error::Unauthenticated(_) | Error::PermissionDenied(_))
            {
                s.limiter.failed(ip, Instant::now());
            }
            Err(e)
        }
    }
}

/// The verified artifacts, newest first.
async fn index(s: &InstallState) -> Result<Vec<Artifact>> {
    let mut artifacts = s.releases.current().await?.artifacts.clone();
    artifacts.sort_by(|a, b| b.version.cmp(&a.version).then_with(|| a.file.cmp(&b.file)));
    Ok(artifacts)
}

async fn index_json(State(s): State<InstallState>) -> Result<Response> {
    Ok(Json(json!({ "artifacts": index(&s).await? })).into_response())
}

/// The index for `sh`: `kind os arch version file`, tab-separated, newest
/// first.
async fn index_txt(State(s): State<InstallState>) -> Result<Response> {
    let mut out = String::new();
    for a in index(&s).await? {
        out.push_str(&format!(
            "{}\t{}\t{}\t{}\t{}\n",
            a.kind, a.os, a.arch, a.version, a.file
        ));
    }
    Ok(text("text/plain; charset=utf-8", out))
}

async fn release_pub(State(s): State<InstallState>) -> Result<Response> {
    let key = s.public_key.as_deref().ok_or_else(|| {
        Error::NotFound("[releases] public_key is not set on this collector".into())
    })?;
    Ok(text(
        "text/plain; charset=utf-8",
        format!("untrusted comment: forewarn release public key\n{key}\n"),
    ))
}

/// Whether a request names a plain file of the releases dir: no path
/// separators, no parent or hidden names. Anything else is refused before
/// the file system is touched.
fn safe_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 255
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '+'))
}

/// An artifact the scan verified, or its signature; a JSON 404 saying why
/// not otherwise.
async fn download(State(s): State<InstallState>, Path(file): Path<String>) -> Result<Response> {
    if !safe_name(&file) {
        return Err(Error::InvalidArgument(format!(
            "file {file:?}: a plain file name is expected (letters, digits, . - _ +)"
        )));
    }
    if s.public_key.is_none() {
        return Err(Error::NotFound(
            "this collector serves no downloads: [releases] public_key is not set".into(),
        ));
    }
    let scan = s.releases.current().await?;
    let (artifact, signature) = match file.strip_suffix(SIGNATURE_SUFFIX) {
        Some(name) => (name, true),
        None => (file.as_str(), false),
    };
    let Some(a) = scan.get(artifact) else {
        let why = scan
            .rejected
            .iter()
            .find(|r| r.file == artifact)
            .map_or_else(|| "no such artifact".to_string(), |r| r.reason.clone());
        return Err(Error::NotFound(format!("{artifact} is not served: {why}")));
    };
    if signature {
        return Ok(text("text/plain; charset=utf-8", a.signature.clone()));
    }
    let body = tokio::fs::read(&a.path)
        .await
        .map_err(|e| Error::NotFound(format!("{artifact}: {e}")))?;
    let sha = hex::encode(sha2::Sha256::digest(&body));
    if sha != a.sha256 {
        tracing::warn!(
            file = artifact,
            "release artifact changed since it was verified; not served"
        );
        return Err(Error::NotFound(format!(
            "{artifact} is not served: it changed since its signature was verified"
        )));
    }
    Ok(text("application/octet-stream", Bytes::from(body)))
}

/// An unknown path: gRPC's `UNIMPLEMENTED` for a gRPC request (an agent
/// newer than this collector), a JSON 404 for anything else.
async fn fallback(headers: HeaderMap) -> Response {
    let grpc = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/grpc"));
    if grpc {
        let (parts, ()) = tonic::Status::unimplemented("")
            .into_http::<()>()
            .into_parts();
        return Response::from_parts(parts, axum::body::Body::empty());
    }
    ErrorBody::response(StatusCode::NOT_FOUND, "no such route")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_file_names_are_safe() {
        assert!(safe_name("forewarn-agent_1.2.3-1_amd64.deb"));
        assert!(safe_name(
            "forewarn-agent-1.2.3-x86_64-unknown-linux-gnu.minisig"
        ));
        for bad in [
            "",
            "../etc/passwd",
            "a/b",
            ".hidden",
            "..",
            "a\\b",
            "a%2fb",
            "a b",
        ] {
            assert!(!safe_name(bad), "{bad:?}");
        }
    }
}
