//! What every page shares: the signed-in operator, the CSRF token its
//! forms carry, the navigation, asset URLs, and how a page is sent
//! (HTML, never cached, under a strict Content Security Policy).

use askama::Template;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::api::auth::{Caller, Csrf};
use crate::domain::Role;

/// No inline script or style, nothing from elsewhere: pages load only the
/// collector's own assets, and charts read their data from JSON blocks.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
     connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/// The page frame's context.
pub struct Page {
    pub title: String,
    /// Operator name, empty when signed out.
    pub user: String,
    pub role: String,
    /// The session's CSRF token (empty for API-key callers and signed-out pages).
    pub csrf: String,
    /// Which navigation entry is current (its href).
    pub current: &'static str,
    is_admin: bool,
    can_work: bool,
}

/// One navigation entry.
pub struct NavItem {
    pub href: &'static str,
    pub label: &'static str,
    pub current: bool,
}

impl Page {
    /// A page for a signed-in caller.
    pub fn new(
        caller: &Caller,
        csrf: Option<&Csrf>,
        title: impl Into<String>,
        current: &'static str,
    ) -> Self {
        Self {
            title: title.into(),
            user: caller.0.name.clone(),
            role: caller.0.role.to_string(),
            csrf: csrf.map(|c| c.0.clone()).unwrap_or_default(),
            current,
            is_admin: caller.0.role == Role::MspAdmin,
            can_work: caller.0.role >= Role::Technician,
        }
    }

    /// A page for someone not signed in (login, setup).
    pub fn public(title: impl Into<String>) -> Self {
        Self {
            title: title.into(),
            user: String::new(),
            role: String::new(),
            csrf: String::new(),
            current: "",
            is_admin: false,
            can_work: false,
        }
    }

    pub fn signed_in(&self) -> bool {
        !self.user.is_empty()
    }

    /// Whether the caller may change tickets and maintenance (forms shown).
    pub fn can_work(&self) -> bool {
        self.can_work
    }

    pub fn is_admin(&self) -> bool {
        self.is_admin
    }

    /// The hashed URL of an embedded asset.
    pub fn asset(&self, name: &str) -> &'static str {
        super::asset_url(name)
    }

    /// The navigation the caller's role may use.
    pub fn nav(&self) -> Vec<NavItem> {
        let mut items = vec![
            ("/", "Fleet"),
            ("/tickets", "Tickets"),
            ("/maintenance", "Maintenance"),
            ("/reports", "Reports"),
            ("/noc", "NOC wall"),
            ("/policies", "Policies & sinks"),
            ("/audit", "Audit"),
        ];
        if self.is_admin {
            items.push(("/sinks", "Sinks"));
            items.push(("/admin", "Operators & keys"));
            items.push(("/tokens", "Enrollment"));
        }
        items
            .into_iter()
            .map(|(href, label)| NavItem {
                href,
                label,
                current: href == self.current,
            })
            .collect()
    }
}

/// Sends a rendered page (or a 500 naming nothing internal).
pub fn render(t: &impl Template) -> Response {
    render_with(StatusCode::OK, t)
}

/// Sends a rendered page with a status (a form shown again with its error).
pub fn render_with(status: StatusCode, t: &impl Template) -> Response {
    match t.render() {
        Ok(html) => (
            status,
            [
                (header::CONTENT_TYPE, "text/html; charset=utf-8"),
                (header::CACHE_CONTROL, "no-store"),
                (header::CONTENT_SECURITY_POLICY, CSP),
                (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
                (header::REFERRER_POLICY, "same-origin"),
            ],
            html,
        )
            .into_response(),
        Err(error) => {
            tracing::error!(%error, "page failed to render");
            crate::Error::Internal(format!("template: {error}")).into_response()
        }
    }
}
