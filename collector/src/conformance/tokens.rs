//! Conformance tests for enrollment token administration: listing,
//! revocation (tenant-scoped, closed to viewers, audited, refused like an
//! expired token and leaving nothing behind) and the enrollment audit trail.

use super::{NOW, new_agent as agent};
use crate::Error;
use crate::domain::{ApiCaller, NewEnrollmentToken, Scope};
use crate::store::Audit;
use crate::tickets::Service;

fn caller(scope: Scope, role: &str) -> ApiCaller {
    ApiCaller {
        scope,
        name: format!("key-{role}"),
        role: crate::domain::Role::parse(role).expect("role"),
        source: String::new(),
    }
}

fn token(id: &str, tenant_id: &str, hash: &str) -> NewEnrollmentToken {
    NewEnrollmentToken {
        id: id.into(),
        tenant_id: tenant_id.into(),
        site: "hq".into(),
        token_hash: hash.into(),
        expires_at: NOW + 60_000,
        max_uses: 3,
        role: "server".into(),
    }
}

pub async fn revoked_enrollment_tokens_are_refused_scoped_and_audited(svc: Service) {
    let acme = svc.store().create_tenant("acme").await.expect("tenant");
    let other = svc.store().create_tenant("other").await.expect("tenant");
    svc.store()
        .create_enrollment_token(&token("ta", &acme.id, "ha"))
        .await
        .expect("token");
    svc.store()
        .create_enrollment_token(&token("tb", &other.id, "hb"))
        .await
        .expect("token");
    svc.enroll_agent("ha", NOW, &agent("a1", &acme.id))
        .await
        .expect("enroll");

    // Listing is scoped and shows uses.
    let mine = svc
        .store()
        .list_enrollment_tokens(&Scope::Tenant(acme.id.clone()))
        .await
        .expect("list");
    assert_eq!(mine.len(), 1, "{mine:?}");
    assert_eq!(
        (mine[0].id.as_str(), mine[0].uses, mine[0].max_uses),
        ("ta", 1, 3)
    );
    assert_eq!(mine[0].tenant_name, "acme");
    assert_eq!(mine[0].revoked_at, None);
    assert_eq!(
        svc.store()
            .list_enrollment_tokens(&Scope::All)
            .await
            .expect("list")
            .len(),
        2
    );

    // Viewers may not revoke; another tenant's token is not found.
    let acme_scope = Scope::Tenant(acme.id.clone());
    assert!(matches!(
        svc.revoke_enrollment_token(&caller(acme_scope.clone(), "viewer"), "ta", NOW)
            .await,
        Err(Error::PermissionDenied(_))
    ));
    assert!(matches!(
        svc.revoke_enrollment_token(&caller(acme_scope.clone(), "admin"), "tb", NOW)
            .await,
        Err(Error::NotFound(_))
    ));
    let revoked = svc
        .revoke_enrollment_token(&caller(acme_scope.clone(), "technician"), "ta", NOW + 1)
        .await
        .expect("revoke");
    assert_eq!(revoked.revoked_at, Some(NOW + 1));
    assert!(matches!(
        svc.revoke_enrollment_token(&caller(acme_scope.clone(), "admin"), "ta", NOW + 2)
            .await,
        Err(Error::Conflict(_))
    ));

    // Refused like an expired token; the refusal leaves no agent behind.
    match svc.check_enrollment_token("ha", NOW + 3).await {
        Err(Error::Unauthenticated(m)) => assert!(m.contains("revoked"), "{m}"),
        other => panic!("revoked token accepted: {other:?}"),
    }
    assert!(matches!(
        svc.enroll_agent("ha", NOW + 3, &agent("a2", &acme.id))
            .await,
        Err(Error::Unauthenticated(_))
    ));
    assert!(svc.store().agent_auth("a2").await.expect("auth").is_none());
    let listed = svc
        .store()
        .list_enrollment_tokens(&acme_scope)
        .await
        .expect("list");
    assert_eq!(listed[0].uses, 1, "no use consumed by the refusal");
    // The other tenant's token still works.
    svc.enroll_agent("hb", NOW + 3, &agent("b1", &other.id))
        .await
        .expect("other tenant unaffected");

    // Revocation is audited under the token's tenant only.
    let audit = svc
        .store()
        .audit_log(&acme_scope, 100)
        .await
        .expect("audit");
    assert!(
        audit.iter().any(|e| e.action == "enrollment_token.revoked"
            && e.target == "enrollment_token/ta"
            && e.actor == "key-technician"),
        "{audit:?}"
    );
    let theirs = svc
        .store()
        .audit_log(&Scope::Tenant(other.id.clone()), 100)
        .await
        .expect("audit");
    assert!(theirs.is_empty(), "{theirs:?}");
}

pub async fn enrollment_outcomes_are_audited_with_the_token_tenant(svc: Service) {
    let acme = svc.store().create_tenant("acme").await.expect("tenant");
    svc.store()
        .create_enrollment_token(&token("ta", &acme.id, "ha"))
        .await
        .expect("token");
    svc.store()
        .audit_enrollment(
            "ha",
            Audit {
                tenant_id: None,
                at: NOW,
                actor: "enroll:127.0.0.1:5000",
                source: "",
                action: "agent.enrolled",
                target: "agent/a1",
                detail: "hostname \"h\"",
            },
        )
        .await
        .expect("audit");
    svc.store()
        .audit_enrollment(
            "unknown-hash",
            Audit {
                tenant_id: None,
                at: NOW + 1,
                actor: "enroll:10.0.0.9:5000",
                source: "",
                action: "enrollment.refused",
                target: "enrollment",
                detail: "unknown enrollment token",
            },
        )
        .await
        .expect("audit");
    let mine = svc
        .store()
        .audit_log(&Scope::Tenant(acme.id.clone()), 100)
        .await
        .expect("audit");
    assert_eq!(mine.len(), 1, "{mine:?}");
    assert_eq!(mine[0].action, "agent.enrolled");
    assert_eq!(mine[0].actor, "enroll:127.0.0.1:5000");
    assert_eq!(mine[0].tenant_id.as_deref(), Some(acme.id.as_str()));
    let all = svc
        .store()
        .audit_log(&Scope::All, 100)
        .await
        .expect("audit");
    let refused = all
        .iter()
        .find(|e| e.action == "enrollment.refused")
        .expect("refusal audited");
    assert_eq!(refused.tenant_id, None, "unknown token: no tenant");
    assert_eq!(refused.detail, "unknown enrollment token");
}
