//! Conformance tests for access: API keys (scope, disable, revoke), scopes
//! of several tenants, operators (unique names, tenants, disable, revoke
//! ending sessions), setup links (once, until they expire) and sessions.

use std::time::Duration;

use super::{NOW, tenant_with_agent};
use crate::access::Access;
use crate::access::sessions::LoginRequest;
use crate::domain::{ApiCaller, NewApiKey, Role, Scope};
use crate::store::OperatorSession;
use crate::tickets::Service;
use crate::{Error, secrets};

fn admin() -> ApiCaller {
    ApiCaller {
        scope: Scope::All,
        name: "cli:test".into(),
        role: Role::MspAdmin,
        source: "cli".into(),
    }
}

fn access(svc: &Service) -> Access {
    Access::new(svc.store().clone(), Duration::from_secs(600))
}

pub async fn api_keys_grant_their_scope_until_disabled_or_revoked(svc: Service) {
    let t = svc.store().create_tenant("acme").await.expect("tenant");
    let a = access(&svc);
    for (id, tenant, hash, role) in [
        ("k1", Some(t.id.clone()), "kh1", Role::Viewer),
        ("k2", None, "kh2", Role::MspAdmin),
    ] {
        svc.store()
            .create_api_key(&NewApiKey {
                id: id.into(),
                tenant_id: tenant,
                name: format!("name-{id}"),
                key_hash: secrets::hash(hash),
                role,
            })
            .await
            .expect("key");
    }
    let k1 = a.key_caller("kh1", "10.0.0.1", NOW).await.expect("k1");
    assert_eq!(k1.scope, Scope::Tenant(t.id.clone()));
    assert!(!k1.can_write(), "viewer");
    assert_eq!(k1.source, "10.0.0.1");
    let k2 = a.key_caller("kh2", "x", NOW).await.expect("k2");
    assert_eq!((k2.scope, k2.role), (Scope::All, Role::MspAdmin));
    assert!(matches!(
        a.key_caller("nope", "x", NOW).await,
        Err(Error::Unauthenticated(_))
    ));

    // The tenant's scope lists its own key only; all tenants list both.
    let listed = a.list_keys(&admin()).await.expect("list");
    assert_eq!(listed.len(), 2);
    assert_eq!(
        listed
            .iter()
            .find(|k| k.id == "k1")
            .and_then(|k| k.last_used_at),
        Some(NOW)
    );
    let scoped = svc
        .store()
        .list_api_keys(&Scope::Tenant(t.id.clone()))
        .await
        .expect("scoped");
    assert_eq!(
        scoped.iter().map(|k| k.id.as_str()).collect::<Vec<_>>(),
        ["k1"]
    );

    // Disabled: refused until enabled. Revoked: refused for good.
    a.set_key_disabled(&admin(), "k1", true, NOW)
        .await
        .expect("disable");
    let e = a.key_caller("kh1", "x", NOW).await.unwrap_err().to_string();
    assert!(e.contains("disabled"), "{e}");
    a.set_key_disabled(&admin(), "k1", false, NOW)
        .await
        .expect("enable");
    a.key_caller("kh1", "x", NOW).await.expect("enabled again");
    a.revoke_key(&admin(), "k1", NOW).await.expect("revoke");
    let e = a.key_caller("kh1", "x", NOW).await.unwrap_err().to_string();
    assert!(e.contains("revoked"), "{e}");
    assert!(matches!(
        a.set_key_disabled(&admin(), "k1", false, NOW).await,
        Err(Error::Conflict(_))
    ));
    assert!(matches!(
        a.revoke_key(&admin(), "k1", NOW).await,
        Err(Error::Conflict(_))
    ));
    // Only msp-admins manage keys; every change is audited with its source.
    assert!(matches!(
        a.list_keys(&k1_like()).await,
        Err(Error::PermissionDenied(_))
    ));
    let audit = svc
        .store()
        .audit_log(&Scope::All, 100)
        .await
        .expect("audit");
    let actions: Vec<_> = audit.iter().map(|e| e.action.as_str()).collect();
    for want in ["api_key.disabled", "api_key.enabled", "api_key.revoked"] {
        assert!(actions.contains(&want), "{actions:?}");
    }
    assert!(audit.iter().all(|e| e.source == "cli"), "{audit:?}");
}

fn k1_like() -> ApiCaller {
    ApiCaller {
        role: Role::Technician,
        ..admin()
    }
}

pub async fn a_scope_of_several_tenants_sees_exactly_those(svc: Service) {
    let a = tenant_with_agent(&svc, "a", "agent-a").await;
    let b = tenant_with_agent(&svc, "b", "agent-b").await;
    let _c = tenant_with_agent(&svc, "c", "agent-c").await;
    let scope = Scope::Tenants(vec![a.clone(), b.clone()]);
    let mut seen: Vec<_> = svc
        .list_agents(&scope)
        .await
        .expect("agents")
        .into_iter()
        .map(|x| x.tenant_id)
        .collect();
    seen.sort();
    let mut want = vec![a.clone(), b];
    want.sort();
    assert_eq!(seen, want);
    assert_eq!(
        svc.store()
            .list_tenants(&scope)
            .await
            .expect("tenants")
            .len(),
        2
    );
    assert!(
        svc.get_agent(&scope, "agent-c")
            .await
            .expect("get")
            .is_none()
    );
    assert!(
        svc.get_agent(&scope, "agent-a")
            .await
            .expect("get")
            .is_some()
    );
    // No tenants: nothing at all.
    let none = Scope::Tenants(vec![]);
    assert!(svc.list_agents(&none).await.expect("agents").is_empty());
    assert!(
        svc.store()
            .list_tenants(&none)
            .await
            .expect("tenants")
            .is_empty()
    );
    // A prefix of a tenant id is not that tenant.
    let prefix = Scope::Tenant(a[..8].to_string());
    assert!(svc.list_agents(&prefix).await.expect("agents").is_empty());
}

pub async fn operators_log_in_through_a_setup_link_and_sessions_end(svc: Service) {
    let t = svc.store().create_tenant("acme").await.expect("tenant");
    let a = access(&svc);
    // The first msp-admin, once.
    let first = a
        .ensure_first_admin(NOW)
        .await
        .expect("first")
        .expect("made");
    assert_eq!(first.operator.status, "pending");
    assert!(a.ensure_first_admin(NOW).await.expect("again").is_none());
    // A technician needs a tenant, and a unique name.
    let e = a
        .create_operator(&admin(), "tech", Role::Technician, &[], NOW)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("tenant"), "{e}");
    let inv = a
        .create_operator(&admin(), "tech", Role::Technician, &["acme".into()], NOW)
        .await
        .expect("tech");
    assert_eq!(inv.operator.tenant_ids, vec![t.id.clone()]);
    assert!(matches!(
        a.create_operator(&admin(), "tech", Role::Viewer, &["acme".into()], NOW)
            .await,
        Err(Error::Conflict(_))
    ));
    // No password yet: no login.
    let login = |pw: &str| LoginRequest {
        username: "tech".into(),
        password: pw.into(),
        totp: None,
    };
    assert!(matches!(
        a.login(&login("whatever-long-pass"), "s1", NOW).await,
        Err(Error::Unauthenticated(_))
    ));
    // The link sets a password once; expired or reused links are refused.
    let token = inv.setup_path.trim_start_matches("/setup?token=");
    assert!(
        a.complete_setup(token, "short", "s1", NOW).await.is_err(),
        "weak password"
    );
    a.complete_setup(token, "a long enough secret", "s1", NOW)
        .await
        .expect("setup");
    assert!(matches!(
        a.complete_setup(token, "another long secret", "s1", NOW)
            .await,
        Err(Error::PermissionDenied(_))
    ));
    let late = a
        .reset_operator(&admin(), "tech", NOW)
        .await
        .expect("reset");
    let late = late.trim_start_matches("/setup?token=");
    let after = NOW + 25 * 3600 * 1000;
    assert!(
        a.complete_setup(late, "a long enough secret", "s1", after)
            .await
            .is_err(),
        "expired"
    );

    // Wrong password and unknown user: the same answer.
    let wrong = a
        .login(&login("not the password!"), "s1", NOW)
        .await
        .unwrap_err()
        .to_string();
    let unknown = a
        .login(
            &LoginRequest {
                username: "ghost".into(),
                password: "x".into(),
                totp: None,
            },
            "s1",
            NOW,
        )
        .await
        .unwrap_err()
        .to_string();
    assert_eq!(wrong, unknown);
    let s = a
        .login(&login("a long enough secret"), "s1", NOW)
        .await
        .expect("login");
    assert_eq!(s.caller.scope, Scope::Tenants(vec![t.id.clone()]));
    assert_eq!(s.caller.role, Role::Technician);
    // Only the hash of the cookie is stored.
    assert!(
        svc.store()
            .session(&s.cookie)
            .await
            .expect("read")
            .is_none()
    );
    let found = a
        .session_caller(&s.cookie, "s2", NOW + 1000)
        .await
        .expect("session")
        .expect("alive");
    assert_eq!(found.csrf_token, s.csrf_token);
    // Idle past the limit: gone.
    let idle = NOW + 601 * 1000;
    assert!(
        a.session_caller(&s.cookie, "s2", idle)
            .await
            .expect("read")
            .is_none()
    );
    assert!(
        svc.store()
            .session(&secrets::hash(&s.cookie))
            .await
            .expect("read")
            .is_none()
    );
    // Disabling ends sessions; enabling lets the operator log in again.
    let s = a
        .login(&login("a long enough secret"), "s1", NOW)
        .await
        .expect("login");
    a.set_operator_disabled(&admin(), "tech", true, NOW)
        .await
        .expect("disable");
    assert!(
        a.session_caller(&s.cookie, "s1", NOW)
            .await
            .expect("read")
            .is_none()
    );
    assert!(
        a.login(&login("a long enough secret"), "s1", NOW)
            .await
            .is_err()
    );
    a.set_operator_disabled(&admin(), "tech", false, NOW)
        .await
        .expect("enable");
    // (A fresh rate limit: this account has used its burst of attempts.)
    let a = access(&svc);
    let s = a
        .login(&login("a long enough secret"), "s1", NOW)
        .await
        .expect("login again");
    a.revoke_operator(&admin(), "tech", NOW)
        .await
        .expect("revoke");
    assert!(
        a.session_caller(&s.cookie, "s1", NOW)
            .await
            .expect("read")
            .is_none()
    );
    assert!(matches!(
        a.set_operator_disabled(&admin(), "tech", false, NOW).await,
        Err(Error::Conflict(_))
    ));
    let ops = a.list_operators(&admin()).await.expect("list");
    let statuses: Vec<_> = ops
        .iter()
        .map(|o| (o.username.as_str(), o.status))
        .collect();
    assert_eq!(statuses, [("admin", "pending"), ("tech", "revoked")]);
    // Sessions older than a cutoff are pruned.
    svc.store()
        .insert_session(&OperatorSession {
            id_hash: "h".into(),
            operator_id: first.operator.id.clone(),
            csrf_token: "c".into(),
            created_at: NOW,
            last_seen_at: NOW,
            source: "s".into(),
        })
        .await
        .expect("insert");
    assert_eq!(svc.store().prune_sessions(NOW + 1).await.expect("prune"), 1);
}

pub async fn totp_is_required_once_enabled(svc: Service) {
    let a = access(&svc);
    let inv = a
        .create_operator(&admin(), "ops", Role::MspAdmin, &[], NOW)
        .await
        .expect("op");
    let token = inv.setup_path.trim_start_matches("/setup?token=");
    a.complete_setup(token, "correct horse battery", "s", NOW)
        .await
        .expect("setup");
    let url = a
        .set_operator_totp(&admin(), "ops", true, NOW)
        .await
        .expect("totp")
        .expect("url");
    let secret = url
        .split("secret=")
        .nth(1)
        .and_then(|s| s.split('&').next())
        .expect("secret in url")
        .to_string();
    let req = |code: Option<String>| LoginRequest {
        username: "ops".into(),
        password: "correct horse battery".into(),
        totp: code,
    };
    assert!(
        a.login(&req(None), "s", NOW).await.is_err(),
        "code required"
    );
    assert!(
        a.login(&req(Some("000000".into())), "s", NOW)
            .await
            .is_err()
            || {
                // One in a million: 000000 is the real code.
                crate::access::password::totp_code(&secret, (NOW / 1000) as u64).expect("code")
                    == "000000"
            }
    );
    let code = crate::access::password::totp_code(&secret, (NOW / 1000) as u64).expect("code");
    a.login(&req(Some(code)), "s", NOW)
        .await
        .expect("login with code");
}
