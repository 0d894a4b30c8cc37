//! Enrollment and mTLS refusals: nobody without a valid certificate gets in,
//! and a refused enrollment leaves nothing behind.

mod common;

use std::time::Duration;

use common::{AgentHome, Collector, enroll_ok};
use forewarn_proto::v1 as pb;
use forewarn_proto::v1::ingest_client::IngestClient;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_enrollments_are_refused_and_leave_nothing_behind() {
    let collector = Collector::start();

    // A good token enrolls exactly once (max-uses 1).
    let (token, fp) = collector.token("default", &["--max-uses", "1"]);
    let first = AgentHome::new("");
    let out = first.enroll(&collector, &token, &fp);
    assert!(out.status.success(), "{}", stderr(&out));

    // Used up.
    let second = AgentHome::new("");
    let out = second.enroll(&collector, &token, &fp);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("no uses left"), "{}", stderr(&out));

    // Expired.
    let (expired, _) = collector.token("default", &["--expires-in", "0s"]);
    let out = second.enroll(&collector, &expired, &fp);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("expired"), "{}", stderr(&out));

    // Unknown token.
    let out = second.enroll(&collector, "fwt_not-a-real-token", &fp);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("unknown enrollment token"),
        "{}",
        stderr(&out)
    );

    // Wrong CA fingerprint: the agent refuses to talk to this collector.
    let (token2, _) = collector.token("default", &[]);
    let wrong = format!("sha256:{}", "ab".repeat(32));
    let out = second.enroll(&collector, &token2, &wrong);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("fingerprint"), "{}", stderr(&out));

    // Nothing of the refused attempts exists: one agent, no files written.
    let agents = collector.get("/api/v1/agents").await;
    assert_eq!(agents.as_array().expect("list").len(), 1, "{agents}");
    assert!(!second.dir.path().join("state/agent.key").exists());
    assert!(!second.dir.path().join("state/identity.json").exists());
    // ...and the unused second token still works afterwards.
    let out = second.enroll(&collector, &token2, &fp);
    assert!(out.status.success(), "{}", stderr(&out));
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enrolled_agent_files_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let collector = Collector::start();
    let home = AgentHome::new("");
    enroll_ok(&collector, &home, "default");
    let mode = |p: &str| {
        std::fs::metadata(home.dir.path().join(p))
            .expect(p)
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode("state/agent.key"), 0o600);
    let ca_key = std::fs::metadata(collector.dir.path().join("data/pki/ca.key"))
        .expect("ca.key")
        .permissions()
        .mode();
    assert_eq!(ca_key & 0o777, 0o600);
}

async fn channel(collector: &Collector, identity: Option<Identity>) -> Option<Channel> {
    let mut tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(collector.ca_pem()))
        .domain_name("localhost");
    if let Some(id) = identity {
        tls = tls.identity(id);
    }
    Channel::from_shared(collector.url())
        .expect("url")
        .tls_config(tls)
        .expect("tls")
        .connect_timeout(Duration::from_secs(5))
        .connect()
        .await
        .ok()
}

fn hello(agent_id: &str) -> pb::AgentMessage {
    pb::AgentMessage {
        body: Some(pb::agent_message::Body::Hello(pb::Hello {
            agent_id: agent_id.into(),
            boot_id: "boot".into(),
            host: Some(pb::HostFacts {
                hostname: "intruder".into(),
                ..Default::default()
            }),
            interval_secs: 15,
        })),
    }
}

/// Opens a session and waits for the first reply; `Ok` only if the
/// collector accepted the session and kept it open.
async fn try_session(ch: Option<Channel>, agent_id: &str) -> Result<(), String> {
    let Some(ch) = ch else {
        return Err("connect refused".into());
    };
    let outbound = tokio_stream::iter(vec![hello(agent_id)]);
    let resp = IngestClient::new(ch)
        .session(outbound)
        .await
        .map_err(|s| format!("{:?}: {}", s.code(), s.message()))?;
    let mut inbound = resp.into_inner();
    match tokio::time::timeout(Duration::from_secs(3), inbound.message()).await {
        Ok(Err(s)) => Err(format!("{:?}: {}", s.code(), s.message())),
        Ok(Ok(_)) | Err(_) => Ok(()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_without_a_valid_client_certificate_are_refused() {
    let collector = Collector::start();
    let home = AgentHome::new("");
    let agent_id = enroll_ok(&collector, &home, "default");
    let tenant_id = home.identity()["tenant_id"]
        .as_str()
        .expect("tenant")
        .to_string();

    // No client certificate at all.
    let err = try_session(channel(&collector, None).await, &agent_id)
        .await
        .expect_err("a session without a client certificate must fail");
    assert!(err.contains("Unauthenticated"), "{err}");

    // A certificate naming the real agent and tenant, but from another CA.
    let other_ca_key = rcgen::KeyPair::generate().expect("key");
    let mut ca_params = rcgen::CertificateParams::default();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let other_ca = ca_params.self_signed(&other_ca_key).expect("ca");
    let issuer = rcgen::Issuer::new(ca_params, other_ca_key);
    let key = rcgen::KeyPair::generate().expect("key");
    let mut p = rcgen::CertificateParams::default();
    p.distinguished_name = rcgen::DistinguishedName::new();
    p.distinguished_name
        .push(rcgen::DnType::CommonName, agent_id.as_str());
    p.distinguished_name
        .push(rcgen::DnType::OrganizationName, tenant_id.as_str());
    p.distinguished_name
        .push(rcgen::DnType::OrganizationalUnitName, "forewarn-agent");
    p.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
    let forged = p.signed_by(&key, &issuer).expect("sign");
    let identity = Identity::from_pem(
        format!("{}{}", forged.pem(), other_ca.pem()),
        key.serialize_pem(),
    );
    let err = try_session(channel(&collector, Some(identity)).await, &agent_id)
        .await
        .expect_err("a certificate from another CA must be refused");
    eprintln!("foreign-CA session refused: {err}");

    // The real agent's own certificate is accepted (the test can fail).
    let state = home.dir.path().join("state");
    let identity = Identity::from_pem(
        std::fs::read(state.join("agent.crt")).expect("crt"),
        std::fs::read(state.join("agent.key")).expect("key"),
    );
    try_session(channel(&collector, Some(identity.clone())).await, &agent_id)
        .await
        .expect("the enrolled agent's certificate is accepted");

    // ...but it cannot claim to be another agent.
    let err = try_session(channel(&collector, Some(identity)).await, "someone-else")
        .await
        .expect_err("hello for another agent id must be refused");
    assert!(err.contains("PermissionDenied"), "{err}");

    // The collector is still healthy.
    let resp = reqwest::get(format!("http://{}/healthz", collector.http))
        .await
        .expect("healthz");
    assert_eq!(resp.status().as_u16(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_agent_is_cut_off_at_once_and_refused_after() {
    let collector = Collector::start();
    let home = AgentHome::new("[checks.cpu]\nenabled = false\n[checks.memory]\nenabled = false\n");
    let agent_id = enroll_ok(&collector, &home, "default");
    let agent = home.run();
    common::eventually(Duration::from_secs(30), "agent online", || async {
        let v = collector.get(&format!("/api/v1/agents/{agent_id}")).await;
        (v["status"] == "online").then_some(())
    })
    .await;

    let http = reqwest::Client::new();
    let post = |key: String, path: String| {
        let http = http.clone();
        let url = format!("http://{}{path}", collector.http);
        async move {
            let r = http.post(url).bearer_auth(key).send().await.expect("post");
            r.status().as_u16()
        }
    };
    // A viewer may not revoke; another tenant's key does not see the agent.
    let viewer = collector.cli_json(&[
        "api-key", "create", "--name", "v", "--role", "viewer", "--json",
    ]);
    let path = format!("/api/v1/agents/{agent_id}/revoke");
    assert_eq!(
        post(viewer["key"].as_str().expect("key").into(), path.clone()).await,
        403
    );
    assert!(collector.cli(&["tenant", "add", "other"]).status.success());
    let other = collector.cli_json(&[
        "api-key", "create", "--name", "o", "--tenant", "other", "--json",
    ]);
    assert_eq!(
        post(other["key"].as_str().expect("key").into(), path.clone()).await,
        404
    );

    let revoked_at = std::time::Instant::now();
    assert_eq!(post(collector.api_key.clone(), path.clone()).await, 200);
    common::eventually(
        Duration::from_secs(10),
        "the open session closed",
        || async {
            collector
                .proc
                .log_text()
                .contains("revoked agent's sessions closed")
                .then_some(())
        },
    )
    .await;
    eprintln!(
        "revocation -> open session closed in {:?}",
        revoked_at.elapsed()
    );
    assert_eq!(
        post(collector.api_key.clone(), path).await,
        409,
        "already revoked"
    );

    // Its certificate is refused from now on.
    let state = home.dir.path().join("state");
    let identity = Identity::from_pem(
        std::fs::read(state.join("agent.crt")).expect("crt"),
        std::fs::read(state.join("agent.key")).expect("key"),
    );
    let err = try_session(channel(&collector, Some(identity)).await, &agent_id)
        .await
        .expect_err("a revoked agent must be refused");
    assert!(err.contains("PermissionDenied"), "{err}");
    let v = collector.get(&format!("/api/v1/agents/{agent_id}")).await;
    assert_eq!(v["revoked"], true);
    let audit = collector.get("/api/v1/audit").await;
    assert!(
        audit
            .as_array()
            .is_some_and(|a| a.iter().any(|e| e["action"] == "agent.revoked")),
        "{audit}"
    );
    drop(agent);
}
