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
            sent_at: None,
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
    // An msp-admin key scoped to another tenant: the role may, the scope
    // does not reach.
    let other = collector.cli_json(&[
        "api-key",
        "create",
        "--name",
        "o",
        "--tenant",
        "other",
        "--role",
        "msp-admin",
        "--json",
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

/// POSTs to an API path with a bearer key; returns (status, JSON body).
async fn post_with(collector: &Collector, key: &str, path: &str) -> (u16, serde_json::Value) {
    let resp = reqwest::Client::new()
        .post(format!("http://{}{path}", collector.http))
        .bearer_auth(key)
        .send()
        .await
        .expect("post");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(serde_json::Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_enrollment_token_is_refused_and_everything_is_audited() {
    let collector = Collector::start();
    let (token, fp) = collector.token("default", &["--max-uses", "5"]);
    let first = AgentHome::new("");
    let out = first.enroll(&collector, &token, &fp);
    assert!(out.status.success(), "{}", stderr(&out));

    // Listed (never the secret) with its uses.
    let tokens = collector.get("/api/v1/tokens").await;
    let list = tokens.as_array().expect("list");
    assert_eq!(list.len(), 1, "{tokens}");
    assert_eq!(list[0]["uses"], 1, "{tokens}");
    assert_eq!(list[0]["max_uses"], 5, "{tokens}");
    assert!(list[0]["revoked_at"].is_null(), "{tokens}");
    assert!(!tokens.to_string().contains(&token), "secret leaked");
    let id = list[0]["id"].as_str().expect("id").to_string();
    let path = format!("/api/v1/tokens/{id}/revoke");

    // Viewers may not revoke; another tenant's key does not see the token.
    let viewer = collector.cli_json(&[
        "api-key", "create", "--name", "v", "--role", "viewer", "--json",
    ]);
    let (status, _) = post_with(&collector, viewer["key"].as_str().expect("key"), &path).await;
    assert_eq!(status, 403);
    assert!(collector.cli(&["tenant", "add", "other"]).status.success());
    // An msp-admin key scoped to another tenant: the role may, the scope
    // does not reach.
    let other = collector.cli_json(&[
        "api-key",
        "create",
        "--name",
        "o",
        "--tenant",
        "other",
        "--role",
        "msp-admin",
        "--json",
    ]);
    let other_key = other["key"].as_str().expect("key");
    let (status, _) = post_with(&collector, other_key, &path).await;
    assert_eq!(status, 404);
    let (status, theirs) = collector.get_with(other_key, "/api/v1/tokens").await;
    assert_eq!((status, theirs.as_array().map(Vec::len)), (200, Some(0)));

    let (status, body) = post_with(&collector, &collector.api_key, &path).await;
    assert_eq!(status, 200, "{body}");
    assert!(!body["revoked_at"].is_null(), "{body}");
    let (status, _) = post_with(&collector, &collector.api_key, &path).await;
    assert_eq!(status, 409, "already revoked");

    // The real agent `enroll` is refused and leaves nothing behind.
    let second = AgentHome::new("");
    let out = second.enroll(&collector, &token, &fp);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("enrollment token revoked"),
        "{}",
        stderr(&out)
    );
    assert!(!second.dir.path().join("state/agent.key").exists());
    assert!(!second.dir.path().join("state/identity.json").exists());
    let agents = collector.get("/api/v1/agents").await;
    assert_eq!(agents.as_array().expect("list").len(), 1, "{agents}");

    // The CLI lists and revokes too.
    let (token2, _) = collector.token("default", &[]);
    let listed = collector.cli_json(&["token", "list", "--tenant", "default", "--json"]);
    let id2 = listed
        .as_array()
        .expect("list")
        .iter()
        .find(|t| t["id"] != id.as_str())
        .and_then(|t| t["id"].as_str())
        .expect("second token listed")
        .to_string();
    let table = collector.cli(&["token", "list"]);
    assert!(table.status.success());
    let table = String::from_utf8_lossy(&table.stdout).into_owned();
    assert!(table.contains(&id) && table.contains(&id2), "{table}");
    assert!(table.contains("1/5"), "{table}");
    assert!(collector.cli(&["token", "revoke", &id2]).status.success());
    assert!(!collector.cli(&["token", "revoke", &id2]).status.success());
    let out = second.enroll(&collector, &token2, &fp);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("revoked"), "{}", stderr(&out));

    // Audit: the enrollment, both refusals and both revocations.
    let audit = collector.get("/api/v1/audit").await;
    let entries = audit.as_array().expect("audit");
    let count = |action: &str| entries.iter().filter(|e| e["action"] == action).count();
    let enrolled = entries
        .iter()
        .find(|e| e["action"] == "agent.enrolled")
        .expect("enrollment audited");
    assert!(
        enrolled["actor"]
            .as_str()
            .is_some_and(|a| a.starts_with("enroll:127.0.0.1:")),
        "{enrolled}"
    );
    assert!(!enrolled["tenant_id"].is_null(), "{enrolled}");
    assert_eq!(count("enrollment_token.revoked"), 2, "{audit}");
    assert_eq!(count("enrollment.refused"), 2, "{audit}");
    assert!(
        entries.iter().all(|e| e["action"] != "enrollment.refused"
            || e["detail"].as_str().is_some_and(|d| d.contains("revoked"))),
        "{audit}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_enrollments_from_one_address_are_rate_limited() {
    use forewarn_proto::v1::enrollment_client::EnrollmentClient;

    let collector = Collector::start();
    let (good, _) = collector.token("default", &[]);
    let ch = channel(&collector, None).await.expect("connect");
    let mut client = EnrollmentClient::new(ch);
    let request = |token: &str| pb::EnrollRequest {
        token: token.into(),
        csr_pem: "not a csr".into(),
        host: Some(pb::HostFacts {
            hostname: "hammer".into(),
            ..Default::default()
        }),
    };
    // The default limit: 10 failures per 60 s, each refused on its merits.
    for i in 0..10 {
        let err = client
            .enroll(request(&format!("fwt_bad-{i}")))
            .await
            .expect_err("a bad token must be refused");
        assert_eq!(
            err.code(),
            tonic::Code::Unauthenticated,
            "attempt {i}: {err}"
        );
    }
    // Then refused up front, even with a good token, which stays unused.
    for token in ["fwt_bad-again", good.as_str()] {
        let err = client
            .enroll(request(token))
            .await
            .expect_err("over the limit");
        assert_eq!(err.code(), tonic::Code::ResourceExhausted, "{err}");
    }
    let tokens = collector.get("/api/v1/tokens").await;
    assert_eq!(tokens[0]["uses"], 0, "{tokens}");
    // Only the ten attempts that reached the store are audited.
    let audit = collector.get("/api/v1/audit").await;
    let refused = audit
        .as_array()
        .expect("audit")
        .iter()
        .filter(|e| e["action"] == "enrollment.refused")
        .count();
    assert_eq!(refused, 10, "{audit}");
    // Both kinds of refusal are counted for monitoring.
    assert_eq!(collector.rejected("enroll_refused").await, 10.0);
    assert_eq!(collector.rejected("enroll_rate").await, 2.0);
    // The collector stays healthy.
    let resp = reqwest::get(format!("http://{}/healthz", collector.http))
        .await
        .expect("healthz");
    assert_eq!(resp.status().as_u16(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_identity_reporting_from_two_processes_is_flagged_as_a_clone() {
    let collector = Collector::start();
    let (token, _) = collector.token("default", &[]);
    let mut original = common::sim::SimAgent::enroll(&collector, &token, "laptop").await;
    original.connect(15).await;
    let mut clone = original.twin();
    clone.connect(15).await;
    // Both keep reporting.
    original.heartbeat().await;
    clone.heartbeat().await;
    common::eventually(Duration::from_secs(10), "a clone audit entry", || async {
        let audit = collector.get("/api/v1/audit").await;
        audit
            .as_array()?
            .iter()
            .find(|e| e["action"] == "agent.clone_suspected")
            .cloned()
    })
    .await;
    assert!(
        collector
            .proc
            .log_text()
            .contains("possible cloned machine"),
        "the collector log says so"
    );
}
