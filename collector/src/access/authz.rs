//! The one authorization function: every HTTP route, API and dashboard,
//! has a rule here, and [`authorize`] decides every request by it.
//!
//! A rule says what a route needs: nothing ([`Need::Public`]), any
//! signed-in caller ([`Need::Read`]: viewers and up), a technician or
//! msp-admin ([`Need::Work`]), or an msp-admin ([`Need::Admin`]).
//! *Which tenants* a caller reaches is its scope, applied by every store
//! read: another tenant's id is 404, never 403 (existence does not leak).
//! A route with no rule is refused for everyone (fail closed), and the
//! role × route × tenant test fails until the rule is added.

use axum::http::Method;

use crate::domain::{ApiCaller, Role};
use crate::{Error, Result};

/// What a route needs of its caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// Anyone, signed in or not (health, metrics, login, assets).
    Public,
    /// Any signed-in operator or key: reading within the caller's tenants.
    Read,
    /// Technicians and msp-admins: tickets, maintenance windows, silences.
    Work,
    /// Msp-admins: tenants, tokens, agents, policies, sinks, operators, keys.
    Admin,
}

impl Need {
    /// The least role that meets this need (`None`: no caller needed).
    pub fn least_role(self) -> Option<Role> {
        match self {
            Need::Public => None,
            Need::Read => Some(Role::Viewer),
            Need::Work => Some(Role::Technician),
            Need::Admin => Some(Role::MspAdmin),
        }
    }
}

/// A route and what it needs. `path` is the router's pattern
/// (`/api/v1/tickets/{id}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    pub method: &'static str,
    pub path: &'static str,
    pub need: Need,
}

const fn r(method: &'static str, path: &'static str, need: Need) -> Rule {
    Rule { method, path, need }
}

use Need::{Admin, Public, Read, Work};

/// Every route the collector serves over HTTP.
pub const RULES: &[Rule] = &[
    r("GET", "/healthz", Public),
    r("GET", "/metrics", Public),
    r("GET", "/assets/{file}", Public),
    // === dashboard ===
    r("GET", "/login", Public),
    r("POST", "/login", Public),
    r("POST", "/logout", Read),
    r("GET", "/setup", Public),
    r("POST", "/setup", Public),
    // === dashboard: work pages ===
    r("GET", "/tickets", Read),
    r("POST", "/tickets/act", Work),
    r("GET", "/tickets/{id}", Read),
    r("POST", "/tickets/{id}/act", Work),
    r("GET", "/maintenance", Read),
    r("POST", "/maintenance/windows", Work),
    r("POST", "/maintenance/silences", Work),
    r("POST", "/maintenance/{id}/delete", Work),
    r("GET", "/policies", Read),
    r("POST", "/policies/time-zone", Admin),
    r("GET", "/reports", Read),
    r("GET", "/reports/{tenant}/{month}", Read),
    r("GET", "/audit", Read),
    r("GET", "/admin", Admin),
    r("POST", "/admin/operators", Admin),
    r("POST", "/admin/operators/{name}/{op}", Admin),
    r("POST", "/admin/keys", Admin),
    r("POST", "/admin/keys/{id}/{op}", Admin),
    r("GET", "/tokens", Admin),
    r("POST", "/tokens", Admin),
    r("POST", "/tokens/{id}/revoke", Admin),
    r("GET", "/sinks", Admin),
    r("POST", "/sinks/{name}/test", Admin),
    r("POST", "/sinks/retry/{id}", Admin),
    // fleet, host, NOC wall, live updates
    r("GET", "/", Read),
    r("GET", "/hosts/{id}", Read),
    r("GET", "/noc", Read),
    r("GET", "/events", Read),
    // === JSON API ===
    r("GET", "/api/v1/openapi.json", Public),
    r("GET", "/api/v1/tenants", Read),
    r("GET", "/api/v1/agents", Read),
    r("GET", "/api/v1/agents/{id}", Read),
    r("GET", "/api/v1/agents/{id}/metrics", Read),
    r("POST", "/api/v1/agents/{id}/revoke", Admin),
    r("GET", "/api/v1/tickets", Read),
    r("GET", "/api/v1/tickets/{id}", Read),
    r("POST", "/api/v1/tickets/{id}/acknowledge", Work),
    r("POST", "/api/v1/tickets/{id}/assign", Work),
    r("POST", "/api/v1/tickets/{id}/escalate", Work),
    r("POST", "/api/v1/tickets/{id}/notes", Work),
    r("POST", "/api/v1/tickets/{id}/resolve", Work),
    r("GET", "/api/v1/audit", Read),
    r("GET", "/api/v1/kpis", Read),
    r("GET", "/api/v1/outbox", Read),
    r("POST", "/api/v1/outbox/{id}/retry", Work),
    r("POST", "/api/v1/outbox/retry", Admin),
    r("GET", "/api/v1/sinks", Admin),
    r("POST", "/api/v1/sinks/{name}/test", Admin),
    r("GET", "/api/v1/tokens", Admin),
    r("POST", "/api/v1/tokens/{id}/revoke", Admin),
    r("GET", "/api/v1/maintenance", Read),
    r("POST", "/api/v1/maintenance", Work),
    r("DELETE", "/api/v1/maintenance/{id}", Work),
    r("GET", "/api/v1/silences", Read),
    r("POST", "/api/v1/silences", Work),
    r("DELETE", "/api/v1/silences/{id}", Work),
    r("GET", "/api/v1/operators", Admin),
    r("POST", "/api/v1/operators", Admin),
    r("POST", "/api/v1/operators/{name}/disable", Admin),
    r("POST", "/api/v1/operators/{name}/enable", Admin),
    r("POST", "/api/v1/operators/{name}/revoke", Admin),
    r("POST", "/api/v1/operators/{name}/reset", Admin),
    r("GET", "/api/v1/keys", Admin),
    r("POST", "/api/v1/keys", Admin),
    r("POST", "/api/v1/keys/{id}/disable", Admin),
    r("POST", "/api/v1/keys/{id}/enable", Admin),
    r("POST", "/api/v1/keys/{id}/revoke", Admin),
    r("GET", "/api/v1/me", Read),
];

/// The rule for a request, if the route has one (`HEAD` is `GET`'s).
pub fn rule(method: &Method, path: &str) -> Option<&'static Rule> {
    let method = if method == Method::HEAD {
        &Method::GET
    } else {
        method
    };
    RULES
        .iter()
        .find(|r| r.path == path && r.method == method.as_str())
}

/// Whether some method of `path` has a rule: a request with another
/// method is the router's 405 (with `Allow`), not a refusal.
pub fn known_path(path: &str) -> bool {
    RULES.iter().any(|r| r.path == path)
}

/// Decides a request: `Ok` if `caller` may call `method path`.
/// No caller where one is needed is `Unauthenticated`; too small a role
/// is `PermissionDenied` naming the role needed; a route without a rule
/// is `PermissionDenied` for everyone.
pub fn authorize(caller: Option<&ApiCaller>, method: &Method, path: &str) -> Result<()> {
    let Some(rule) = rule(method, path) else {
        tracing::error!(%method, path, "route has no access rule; refused");
        return Err(Error::PermissionDenied(format!(
            "{method} {path} has no access rule"
        )));
    };
    let Some(least) = rule.need.least_role() else {
        return Ok(());
    };
    let Some(caller) = caller else {
        return Err(Error::Unauthenticated(
            "sign in, or send Authorization: Bearer <api key>".into(),
        ));
    };
    if caller.role >= least {
        Ok(())
    } else {
        Err(Error::PermissionDenied(format!(
            "{method} {path} needs the {least} role; {:?} is a {}",
            caller.name, caller.role
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Scope;

    fn caller(role: Role) -> ApiCaller {
        ApiCaller {
            scope: Scope::All,
            name: "t".into(),
            role,
            source: String::new(),
        }
    }

    #[test]
    fn rules_are_unique() {
        for (i, a) in RULES.iter().enumerate() {
            for b in &RULES[i + 1..] {
                assert!(
                    !(a.method == b.method && a.path == b.path),
                    "{} {} has two rules",
                    a.method,
                    a.path
                );
            }
        }
    }

    #[test]
    fn each_need_admits_exactly_the_roles_at_or_above_it() {
        for rule in RULES {
            let m = Method::from_bytes(rule.method.as_bytes()).unwrap();
            assert_eq!(
                authorize(None, &m, rule.path).is_ok(),
                rule.need == Need::Public,
                "{rule:?}"
            );
            for role in Role::ALL {
                let ok = authorize(Some(&caller(role)), &m, rule.path).is_ok();
                let want = rule.need.least_role().is_none_or(|least| role >= least);
                assert_eq!(ok, want, "{role} {rule:?}");
            }
        }
    }

    #[test]
    fn a_route_without_a_rule_is_refused_to_everyone() {
        for role in Role::ALL {
            let e = authorize(Some(&caller(role)), &Method::GET, "/api/v1/nothing").unwrap_err();
            assert!(matches!(e, Error::PermissionDenied(_)), "{e}");
        }
    }
}
