//! Bearer API key authentication.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;

use super::AppState;
use crate::domain::ApiCaller;
use crate::{Error, secrets};

/// An authenticated API caller: what it may see and whether it may write.
pub struct Caller(pub ApiCaller);

impl FromRequestParts<AppState> for Caller {
    type Rejection = Error;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let header = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| {
                Error::Unauthenticated("missing Authorization: Bearer <api key>".into())
            })?;
        let key = header
            .strip_prefix("Bearer ")
            .map(str::trim)
            .filter(|k| !k.is_empty() && k.len() <= 256)
            .ok_or_else(|| {
                Error::Unauthenticated("expected Authorization: Bearer <api key>".into())
            })?;
        let caller = state
            .svc
            .store()
            .api_caller(&secrets::hash(key))
            .await?
            .ok_or_else(|| Error::Unauthenticated("unknown API key".into()))?;
        Ok(Caller(caller))
    }
}
