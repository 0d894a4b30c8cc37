//! Lists of the real collector's API are paged with a `Link` to the next
//! page and filtered by tenant.

mod common;

use common::Collector;
use serde_json::Value;

/// Follows `Link: <…>; rel="next"` from `path` to the end; returns the
/// pages' lengths and all items.
async fn walk(c: &Collector, path: &str) -> (Vec<usize>, Vec<Value>) {
    let http = reqwest::Client::new();
    let mut next = Some(path.to_string());
    let (mut sizes, mut items) = (Vec::new(), Vec::new());
    while let Some(p) = next.take() {
        assert!(sizes.len() < 10, "too many pages: {sizes:?}");
        let resp = http
            .get(format!("http://{}{p}", c.http))
            .bearer_auth(&c.api_key)
            .send()
            .await
            .expect("request");
        assert_eq!(resp.status().as_u16(), 200, "{p}");
        next = resp
            .headers()
            .get("link")
            .and_then(|v| v.to_str().ok())
            .map(|l| {
                assert!(l.ends_with(">; rel=\"next\""), "{l}");
                l.trim_start_matches('<')
                    .trim_end_matches(">; rel=\"next\"")
                    .to_string()
            });
        let page: Vec<Value> = resp.json().await.expect("a JSON array");
        sizes.push(page.len());
        items.extend(page);
    }
    (sizes, items)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_page_with_a_next_link_and_filter_by_tenant() {
    let c = Collector::start();
    assert!(c.cli(&["tenant", "add", "acme"]).status.success());
    for _ in 0..4 {
        c.token("default", &[]);
    }
    c.token("acme", &[]);

    // Five tokens, two per page: 2 + 2 + 1, each once, newest first.
    let (sizes, tokens) = walk(&c, "/api/v1/tokens?limit=2").await;
    assert_eq!(sizes, vec![2, 2, 1]);
    let mut ids: Vec<&str> = tokens.iter().filter_map(|t| t["id"].as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 5, "{tokens:?}");
    assert_eq!(tokens[0]["tenant_name"], "acme", "newest first");

    // A page that is exactly the rest has no next link.
    let (sizes, _) = walk(&c, "/api/v1/tokens?limit=5").await;
    assert_eq!(sizes, vec![5]);

    // The tenant filter, on tokens and on the audit log.
    let tenants = c.get("/api/v1/tenants").await;
    let acme = tenants
        .as_array()
        .and_then(|ts| ts.iter().find(|t| t["name"] == "acme"))
        .and_then(|t| t["id"].as_str())
        .expect("acme")
        .to_string();
    let (_, theirs) = walk(&c, &format!("/api/v1/tokens?tenant={acme}")).await;
    assert_eq!(theirs.len(), 1, "{theirs:?}");
    assert_eq!(theirs[0]["tenant_id"], acme.as_str());
    // Revoking a token of each tenant writes one audit entry each.
    let http = reqwest::Client::new();
    for t in [&tokens[0], &tokens[1]] {
        let id = t["id"].as_str().expect("id");
        let resp = http
            .post(format!("http://{}/api/v1/tokens/{id}/revoke", c.http))
            .bearer_auth(&c.api_key)
            .send()
            .await
            .expect("revoke");
        assert_eq!(resp.status().as_u16(), 200);
    }
    let (sizes, audit) = walk(&c, &format!("/api/v1/audit?tenant={acme}&limit=1")).await;
    assert_eq!(sizes, vec![1], "{audit:?}");
    assert!(
        audit.iter().all(|e| e["tenant_id"] == acme.as_str()),
        "{audit:?}"
    );
    let (sizes, all) = walk(&c, "/api/v1/audit?limit=1").await;
    assert!(sizes.len() >= 2 && sizes.iter().all(|&n| n == 1), "{all:?}");
}
