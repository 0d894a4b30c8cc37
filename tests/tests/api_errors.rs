//! Every HTTP error of the real collector is JSON with one shape,
//! `{"error": "<message>", "code": "<stable code>"}`: axum's own rejections
//! (bad JSON, wrong types, unknown fields, oversized body, content type,
//! method, route, query string) included.

mod common;

use common::Collector;
use reqwest::{Client, Method, Response, StatusCode};
use serde_json::Value;

/// Asserts `resp` is `status` with the error shape and `code`, and returns
/// its message.
async fn error_of(resp: Response, status: u16, code: &str) -> String {
    assert_eq!(resp.status().as_u16(), status, "{resp:?}");
    let ct = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    assert_eq!(ct, "application/json", "status {status}: content type");
    let body: Value = resp.json().await.expect("a JSON body");
    let obj = body.as_object().expect("an object");
    assert_eq!(obj.len(), 2, "exactly error and code: {body}");
    assert_eq!(body["code"], code, "{body}");
    let message = body["error"].as_str().expect("error is a string");
    assert!(!message.is_empty(), "{body}");
    message.to_string()
}

struct Api<'a> {
    c: &'a Collector,
    http: Client,
}

impl Api<'_> {
    fn req(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("http://{}{path}", self.c.http))
            .bearer_auth(&self.c.api_key)
    }

    async fn post_raw(&self, path: &str, content_type: Option<&str>, body: Vec<u8>) -> Response {
        let mut r = self.req(Method::POST, path).body(body);
        if let Some(ct) = content_type {
            r = r.header("content-type", ct);
        }
        r.send().await.expect("request")
    }

    async fn get(&self, path: &str) -> Response {
        self.req(Method::GET, path).send().await.expect("request")
    }

    /// GET `path` with `key` as the bearer key, or with no key at all.
    async fn get_as(&self, key: Option<&str>, path: &str) -> Response {
        let mut r = self.http.get(format!("http://{}{path}", self.c.http));
        if let Some(key) = key {
            r = r.bearer_auth(key);
        }
        r.send().await.expect("request")
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_error_is_json_with_one_shape() {
    let c = Collector::start();
    let api = Api {
        c: &c,
        http: Client::new(),
    };
    let json = Some("application/json");
    let notes = "/api/v1/tickets/1/notes";

    // A body that is not JSON: 400.
    let r = api.post_raw(notes, json, b"{not json".to_vec()).await;
    error_of(r, 400, "bad_request").await;

    // JSON of the wrong type, a missing field, an unknown field: 422, the
    // message naming the field.
    let r = api.post_raw(notes, json, br#"{"text": 5}"#.to_vec()).await;
    let m = error_of(r, 422, "unprocessable_entity").await;
    assert!(m.contains("text"), "{m}");
    let r = api.post_raw(notes, json, b"{}".to_vec()).await;
    let m = error_of(r, 422, "unprocessable_entity").await;
    assert!(m.contains("text"), "{m}");
    let r = api
        .post_raw(notes, json, br#"{"text": "x", "colour": 1}"#.to_vec())
        .await;
    let m = error_of(r, 422, "unprocessable_entity").await;
    assert!(m.contains("colour"), "{m}");

    // A body past the limit (64 KiB): 413.
    let big = format!(r#"{{"text": "{}"}}"#, "x".repeat(100 * 1024));
    let r = api.post_raw(notes, json, big.into_bytes()).await;
    error_of(r, 413, "payload_too_large").await;

    // No content type, or another one: 415.
    let r = api
        .post_raw(notes, None, br#"{"text": "x"}"#.to_vec())
        .await;
    error_of(r, 415, "unsupported_media_type").await;
    let r = api
        .post_raw(notes, Some("text/plain"), br#"{"text": "x"}"#.to_vec())
        .await;
    error_of(r, 415, "unsupported_media_type").await;

    // A well-formed body for a ticket that does not exist: 404.
    let r = api
        .post_raw(notes, json, br#"{"text": "x"}"#.to_vec())
        .await;
    error_of(r, 404, "not_found").await;

    // A method the route does not have: 405 with Allow.
    let r = api
        .req(Method::DELETE, "/api/v1/tickets")
        .send()
        .await
        .expect("request");
    let allow = r
        .headers()
        .get("allow")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    assert!(allow.contains("GET"), "Allow: {allow:?}");
    let m = error_of(r, 405, "method_not_allowed").await;
    assert!(m.contains("GET"), "{m}");

    // No such route, inside and outside /api/v1: 404.
    error_of(api.get("/api/v1/nothing-here").await, 404, "not_found").await;
    error_of(api.get("/nothing-here").await, 404, "not_found").await;

    // Bad query strings: 400 naming the parameter.
    for (query, names) in [
        ("limit=abc", "limit"),
        ("limit=0", "limit"),
        ("limit=1001", "limit"),
        ("state=bogus", "state"),
        ("tier=high", "tier"),
        ("colour=red", "colour"),
    ] {
        let r = api.get(&format!("/api/v1/tickets?{query}")).await;
        let m = error_of(r, 400, "bad_request").await;
        assert!(m.contains(names), "{query}: {m}");
    }
    let r = api.get("/api/v1/kpis?from=yesterday").await;
    let m = error_of(r, 400, "bad_request").await;
    assert!(m.contains("from"), "{m}");

    // Bad path parameters: not a ticket, not a window (404).
    error_of(api.get("/api/v1/tickets/abc").await, 404, "not_found").await;
    let r = api
        .req(Method::DELETE, "/api/v1/maintenance/abc")
        .send()
        .await
        .expect("request");
    error_of(r, 404, "not_found").await;

    // No key, an unknown key: 401.
    for key in [None, Some("fwk_unknown")] {
        let r = api.get_as(key, "/api/v1/tickets").await;
        error_of(r, 401, "unauthenticated").await;
    }

    // The OpenAPI document needs no key and is OpenAPI 3.1.
    let r = api.get_as(None, "/api/v1/openapi.json").await;
    assert_eq!(r.status(), StatusCode::OK);
    let doc: Value = r.json().await.expect("json");
    assert_eq!(doc["openapi"], "3.1.0");
    assert!(doc["paths"]["/api/v1/tickets"]["get"].is_object(), "{doc}");
}
