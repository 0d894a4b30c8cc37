//! The dashboard's plumbing on a real collector and a real Chromium: the
//! embedded assets are served at content-hashed URLs with the right headers,
//! a page using them from the collector gets working htmx, SSE extension and
//! uPlot, and the browser harness writes a screenshot and a PDF.

mod common;

use std::path::Path;
use std::time::Instant;

use common::Collector;
use common::browser::Browser;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// (name templates use, file under collector/assets, Content-Type).
const ASSETS: &[(&str, &str, &str)] = &[
    (
        "htmx.js",
        "vendor/htmx.min.js",
        "text/javascript; charset=utf-8",
    ),
    (
        "htmx-ext-sse.js",
        "vendor/htmx-ext-sse.min.js",
        "text/javascript; charset=utf-8",
    ),
    (
        "uplot.js",
        "vendor/uPlot.iife.min.js",
        "text/javascript; charset=utf-8",
    ),
    (
        "uplot.css",
        "vendor/uPlot.min.css",
        "text/css; charset=utf-8",
    ),
    ("app.js", "app.js", "text/javascript; charset=utf-8"),
    ("app.css", "app.css", "text/css; charset=utf-8"),
];

/// The asset's bytes as committed, and the URL the collector must serve them
/// at, worked out here independently: `/assets/<stem>-<16 hex of SHA-256>.<ext>`.
fn expected(name: &str, file: &str) -> (Vec<u8>, String) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../collector/assets")
        .join(file);
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let hash = hex::encode(Sha256::digest(&bytes));
    let (stem, ext) = name.rsplit_once('.').expect("name.ext");
    (bytes, format!("/assets/{stem}-{}.{ext}", &hash[..16]))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_assets_load_in_a_real_browser() {
    let collector = Collector::start();
    let base = format!("http://{}", collector.http);
    let http = reqwest::Client::new();

    // Every asset: 200, its type, a year of caching, the committed bytes.
    let mut urls = serde_json::Map::new();
    for &(name, file, content_type) in ASSETS {
        let (bytes, url) = expected(name, file);
        let resp = http.get(format!("{base}{url}")).send().await.expect("GET");
        assert_eq!(resp.status().as_u16(), 200, "{url}");
        let header = |h: &str| {
            resp.headers()
                .get(h)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        assert_eq!(
            header("content-type").as_deref(),
            Some(content_type),
            "{url}"
        );
        assert_eq!(
            header("cache-control").as_deref(),
            Some("public, max-age=31536000, immutable"),
            "{url}"
        );
        assert_eq!(header("x-content-type-options").as_deref(), Some("nosniff"));
        assert_eq!(resp.bytes().await.expect("body"), bytes, "{url}");
        urls.insert(name.to_string(), url.into());
    }

    // Unhashed, stale-hashed or unknown names: 404 with the JSON error shape.
    for path in [
        "/assets/htmx.js",
        "/assets/htmx-0000000000000000.js",
        "/assets/nothing.css",
    ] {
        let resp = http.get(format!("{base}{path}")).send().await.expect("GET");
        assert_eq!(resp.status().as_u16(), 404, "{path}");
        let body: Value = resp.json().await.expect("JSON error body");
        assert!(body["error"].is_string(), "{path}: {body}");
    }

    // In Chromium, from a page that is not the collector's own.
    let out_dir = common::browser::screenshot_dir();
    for f in ["smoke.png", "smoke.pdf"] {
        let _ = std::fs::remove_file(out_dir.join(f));
    }
    let args = json!({ "base_url": base, "assets": urls });
    let started = Instant::now();
    let out = tokio::task::spawn_blocking(move || Browser::run("smoke", args))
        .await
        .expect("browser run");
    eprintln!("smoke scenario took {:?}", started.elapsed());

    let v = &out["value"];
    assert_eq!(v["asset"]["status"], 200, "{out}");
    assert_eq!(v["asset"]["content_type"], "text/javascript; charset=utf-8");
    assert_eq!(
        v["asset"]["cache_control"],
        "public, max-age=31536000, immutable"
    );
    assert!(
        v["asset"]["starts_with"]
            .as_str()
            .is_some_and(|s| s.starts_with("var htmx=")),
        "{out}"
    );
    assert!(
        v["htmx_version"]
            .as_str()
            .is_some_and(|s| s.starts_with("2.")),
        "window.htmx missing or not htmx 2: {out}"
    );
    assert_eq!(v["sse_extension"], true, "htmx-ext-sse not loaded: {out}");
    assert_eq!(v["uplot"], "function", "uPlot not loaded: {out}");
    assert_eq!(v["uplot_css_applied"], true, "uPlot CSS not applied: {out}");
    // Loading the script as a document makes Chromium ask for
    // /favicon.ico, which the collector does not have; nothing else failed.
    let errors = out["console_errors"].as_array().expect("console_errors");
    assert!(
        errors
            .iter()
            .all(|e| e.as_str().is_some_and(|e| e.contains("/favicon.ico"))),
        "{out}"
    );

    for (file, magic) in [("smoke.png", &b"\x89PNG"[..]), ("smoke.pdf", &b"%PDF"[..])] {
        let path = out["files"][file]
            .as_str()
            .unwrap_or_else(|| panic!("no {file} in {out}"));
        assert_eq!(Path::new(path), out_dir.join(file));
        let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{path}: {e}"));
        assert!(bytes.len() > 1000, "{path} is {} bytes", bytes.len());
        assert!(bytes.starts_with(magic), "{path} is not a {file}");
    }
}

/// A scenario that fails shows why: the harness panics with node's stderr.
#[test]
#[should_panic(expected = "cannot load scenario")]
fn a_failing_scenario_fails_the_test_with_its_reason() {
    Browser::run("no-such-scenario", json!({}));
}
