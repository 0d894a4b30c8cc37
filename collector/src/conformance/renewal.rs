//! Conformance test for certificate renewal: the new expiry and its audit
//! entry are written together, scoped to the agent's tenant; a revoked or
//! unknown agent (or a tenant mismatch) is refused and nothing is written.

use super::{NOW, tenant_with_agent};
use crate::Error;
use crate::domain::{ApiCaller, Scope};
use crate::tickets::Service;

pub async fn renewal_moves_the_expiry_and_is_audited(svc: Service) {
    let acme = tenant_with_agent(&svc, "acme", "r1").await;
    let other = tenant_with_agent(&svc, "other", "r2").await;
    let scope = Scope::Tenant(acme.clone());
    let later = NOW + 7 * 86_400_000;
    svc.renew_agent_cert(&acme, "r1", later, NOW, "renew:127.0.0.1:5")
        .await
        .expect("renew");
    let agent = svc
        .get_agent(&scope, "r1")
        .await
        .expect("get")
        .expect("agent");
    assert_eq!(agent.agent.cert_not_after, later);
    let audit = svc.store().audit_log(&scope, 100).await.expect("audit");
    assert!(
        audit.iter().any(|e| e.action == "agent.renewed"
            && e.target == "agent/r1"
            && e.actor == "renew:127.0.0.1:5"
            && e.tenant_id.as_deref() == Some(acme.as_str())),
        "{audit:?}"
    );
    assert!(
        !svc.store()
            .audit_log(&Scope::Tenant(other.clone()), 100)
            .await
            .expect("audit")
            .iter()
            .any(|e| e.action == "agent.renewed"),
        "renewal audited under another tenant"
    );

    // Wrong tenant, unknown agent, revoked agent: refused, nothing written.
    for (tenant, agent) in [(other.as_str(), "r1"), (acme.as_str(), "nobody")] {
        assert!(matches!(
            svc.renew_agent_cert(tenant, agent, later + 1, NOW, "x")
                .await,
            Err(Error::PermissionDenied(_))
        ));
    }
    let admin = ApiCaller {
        scope: scope.clone(),
        name: "key-admin".into(),
        role: crate::domain::Role::MspAdmin,
        source: String::new(),
    };
    svc.revoke_agent(&admin, "r1", NOW + 1)
        .await
        .expect("revoke");
    assert!(matches!(
        svc.renew_agent_cert(&acme, "r1", later + 1, NOW + 2, "x")
            .await,
        Err(Error::PermissionDenied(_))
    ));
    let agent = svc
        .get_agent(&scope, "r1")
        .await
        .expect("get")
        .expect("agent");
    assert_eq!(agent.agent.cert_not_after, later, "refusals write nothing");
    let renewed = svc
        .store()
        .audit_log(&Scope::All, 100)
        .await
        .expect("audit")
        .iter()
        .filter(|e| e.action == "agent.renewed")
        .count();
    assert_eq!(renewed, 1);
}
