//! Browser sessions: log in, find the caller behind a cookie, log out.
//!
//! The cookie holds 32 random bytes (base64url); the store keeps only
//! their SHA-256, so a copy of the database opens no session. A session
//! expires once unused for [`Access::session_idle`]; its last use is
//! written at most once a minute. Sessions live in the store, so they
//! survive a restart and any replica accepts them.

use serde::Deserialize;

use super::{Access, operator_caller, password};
use crate::domain::{ApiCaller, Millis};
use crate::store::{Audit, OperatorSession};
use crate::{Error, Result, secrets};

/// Last use is recorded at most this often (ms).
const TOUCH_EVERY_MS: Millis = 60_000;

/// The one answer for every failed login (unknown user, wrong password,
/// wrong or missing code, disabled account): nothing to enumerate.
pub const LOGIN_FAILED: &str = "invalid username, password or code";

/// A login form or JSON body.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    pub username: String,
    pub password: String,
    /// The 6-digit TOTP code, for operators who enabled TOTP.
    #[serde(default)]
    pub totp: Option<String>,
}

/// A new session: the cookie value (shown once), its CSRF token and caller.
#[derive(Debug, Clone)]
pub struct NewSession {
    pub cookie: String,
    pub csrf_token: String,
    pub caller: ApiCaller,
}

/// The caller behind a session cookie, and the token its forms carry.
#[derive(Debug, Clone)]
pub struct SessionCaller {
    pub caller: ApiCaller,
    pub csrf_token: String,
    pub operator_id: String,
}

impl Access {
    /// Checks the credentials and opens a session. Rate-limited per account
    /// name and per source; every failure is [`LOGIN_FAILED`].
    pub async fn login(&self, req: &LoginRequest, source: &str, now: Millis) -> Result<NewSession> {
        let username = req.username.trim();
        self.limits.attempt(username, source)?;
        let failed = || Error::Unauthenticated(LOGIN_FAILED.into());
        let op = self.store.operator_by_name(username).await?;
        let Some(op) = op.filter(|o| o.disabled_at.is_none() && o.revoked_at.is_none()) else {
            password::verify_nothing(&req.password);
            return Err(failed());
        };
        let Some(phc) = op.password_hash.as_deref() else {
            password::verify_nothing(&req.password);
            return Err(failed());
        };
        if !password::verify(&req.password, phc) {
            return Err(failed());
        }
        if let Some(secret) = op.totp_secret.as_deref() {
            let code = req.totp.as_deref().unwrap_or("");
            let secs = u64::try_from(now / 1000).unwrap_or(0);
            if password::check_totp(secret, code, secs)?.is_none() {
                return Err(failed());
            }
        }
        let caller = operator_caller(&op, source)
            .ok_or_else(|| Error::Corrupt(format!("operator {} has role {:?}", op.id, op.role)))?;
        let cookie = secrets::generate("");
        let csrf_token = secrets::generate("");
        self.store
            .insert_session(&OperatorSession {
                id_hash: secrets::hash(&cookie),
                operator_id: op.id.clone(),
                csrf_token: csrf_token.clone(),
                created_at: now,
                last_seen_at: now,
                source: source.to_string(),
            })
            .await?;
        self.store.record_login(&op.id, now).await?;
        self.store
            .record_audit(Audit {
                tenant_id: None,
                at: now,
                actor: &op.username,
                source,
                action: "operator.login",
                target: &format!("operator:{}", op.username),
                detail: "",
            })
            .await?;
        Ok(NewSession {
            cookie,
            csrf_token,
            caller,
        })
    }

    /// The caller behind `cookie`, if its session is alive and its
    /// operator still may log in. An expired session is deleted.
    pub async fn session_caller(
        &self,
        cookie: &str,
        source: &str,
        now: Millis,
    ) -> Result<Option<SessionCaller>> {
        if cookie.is_empty() || cookie.len() > 256 {
            return Ok(None);
        }
        let id_hash = secrets::hash(cookie);
        let Some(s) = self.store.session(&id_hash).await? else {
            return Ok(None);
        };
        let idle_ms = Millis::try_from(self.session_idle.as_millis()).unwrap_or(Millis::MAX);
        if now.saturating_sub(s.last_seen_at) > idle_ms {
            self.store.delete_session(&id_hash).await?;
            return Ok(None);
        }
        let Some(op) = self.store.operator(&s.operator_id).await? else {
            return Ok(None);
        };
        if op.disabled_at.is_some() || op.revoked_at.is_some() {
            return Ok(None);
        }
        if now - s.last_seen_at >= TOUCH_EVERY_MS {
            self.store.touch_session(&id_hash, now).await?;
        }
        Ok(operator_caller(&op, source).map(|caller| SessionCaller {
            caller,
            csrf_token: s.csrf_token,
            operator_id: op.id,
        }))
    }

    /// Ends the session behind `cookie` (nothing if there is none).
    pub async fn logout(&self, cookie: &str) -> Result<()> {
        self.store.delete_session(&secrets::hash(cookie)).await
    }
}
