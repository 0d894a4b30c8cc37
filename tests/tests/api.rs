//! The HTTP API: authentication and tenant isolation, on real processes.

mod common;

use common::{AgentHome, Collector, enroll_ok};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_requires_a_key_and_scopes_by_tenant() {
    let collector = Collector::start();
    let home = AgentHome::new("");
    let agent_id = enroll_ok(&collector, &home, "default");

    // No key, a malformed header, an unknown key: 401 with a JSON error.
    let resp = reqwest::get(format!("http://{}/api/v1/agents", collector.http))
        .await
        .expect("request");
    assert_eq!(resp.status().as_u16(), 401);
    let (status, body) = collector.get_with("fwk_wrong", "/api/v1/agents").await;
    assert_eq!(status, 401, "{body}");
    assert!(
        body["error"]
            .as_str()
            .is_some_and(|e| e.contains("API key")),
        "{body}"
    );

    // /healthz needs no key.
    let resp = reqwest::get(format!("http://{}/healthz", collector.http))
        .await
        .expect("healthz");
    assert_eq!(resp.status().as_u16(), 200);

    // An MSP-wide key sees the agent.
    let agents = collector.get("/api/v1/agents").await;
    assert_eq!(agents[0]["id"], agent_id.as_str());
    let detail = collector.get(&format!("/api/v1/agents/{agent_id}")).await;
    assert_eq!(detail["tenant_id"], agents[0]["tenant_id"]);

    // A key of another tenant sees nothing of "default": lists are empty,
    // ids are 404 (not 403: existence does not leak).
    let out = collector.cli(&["tenant", "add", "acme"]);
    assert!(out.status.success());
    let acme_key = collector.cli_json(&[
        "api-key", "create", "--name", "acme", "--tenant", "acme", "--json",
    ]);
    let acme_key = acme_key["key"].as_str().expect("key");
    let (status, body) = collector.get_with(acme_key, "/api/v1/agents").await;
    assert_eq!(status, 200);
    assert_eq!(body.as_array().map(Vec::len), Some(0), "{body}");
    let (status, _) = collector
        .get_with(acme_key, &format!("/api/v1/agents/{agent_id}"))
        .await;
    assert_eq!(status, 404);
    let (status, tenants) = collector.get_with(acme_key, "/api/v1/tenants").await;
    assert_eq!(status, 200);
    assert_eq!(tenants.as_array().map(Vec::len), Some(1));
    assert_eq!(tenants[0]["name"], "acme");

    // Bad query values are 400 naming the parameter.
    let (status, body) = collector
        .get_with(&collector.api_key, "/api/v1/tickets?state=bogus")
        .await;
    assert_eq!(status, 400, "{body}");
    let (status, _) = collector
        .get_with(&collector.api_key, "/api/v1/tickets/999999")
        .await;
    assert_eq!(status, 404);
}
