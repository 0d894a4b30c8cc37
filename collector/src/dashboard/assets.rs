//! The dashboard's static files (htmx, its SSE extension, uPlot, the app's
//! own stylesheet and script), embedded in the binary and served under
//! `/assets/`.
//!
//! Each file's URL carries a hash of its content (`/assets/htmx-<hash>.js`),
//! so a response can be cached for a year (`immutable`): a new build with a
//! changed file has a new URL, and a page never mixes old and new files.
//! Templates get the URL from [`asset_url`]. Only hashed names are served;
//! anything else under `/assets/` is a 404 with the API's JSON error shape.

use std::collections::HashMap;
use std::sync::LazyLock;

use axum::Router;
use axum::extract::Path;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use sha2::{Digest, Sha256};

use crate::Error;

/// `Cache-Control` of every asset: its URL changes with its content.
const CACHE_FOREVER: &str = "public, max-age=31536000, immutable";

/// One embedded file: the name templates use, its bytes and their type.
struct Embedded {
    name: &'static str,
    bytes: &'static [u8],
    content_type: &'static str,
}

const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";

const fn js(name: &'static str, bytes: &'static [u8]) -> Embedded {
    Embedded {
        name,
        bytes,
        content_type: JS,
    }
}

const fn css(name: &'static str, bytes: &'static [u8]) -> Embedded {
    Embedded {
        name,
        bytes,
        content_type: CSS,
    }
}

/// Every asset the collector serves. The vendored files and where they come
/// from: `collector/assets/vendor/README.md`.
static EMBEDDED: &[Embedded] = &[
    js("htmx.js", include_bytes!("../../assets/vendor/htmx.min.js")),
    js(
        "htmx-ext-sse.js",
        include_bytes!("../../assets/vendor/htmx-ext-sse.min.js"),
    ),
    js(
        "uplot.js",
        include_bytes!("../../assets/vendor/uPlot.iife.min.js"),
    ),
    css(
        "uplot.css",
        include_bytes!("../../assets/vendor/uPlot.min.css"),
    ),
    js("app.js", include_bytes!("../../assets/app.js")),
    css("app.css", include_bytes!("../../assets/app.css")),
];

/// Served when a template names an asset that does not exist: a URL that
/// answers 404, so the page still renders and the mistake shows in the
/// browser's console (and fails the debug-build tests, see [`asset_url`]).
const MISSING: &str = "/assets/missing";

/// The assets indexed both ways, built on first use (hashing ~250 KB once).
struct Table {
    /// Template name → URL (`htmx.js` → `/assets/htmx-<hash>.js`).
    urls: HashMap<&'static str, String>,
    /// URL file name (`htmx-<hash>.js`) → the file.
    files: HashMap<String, &'static Embedded>,
}

static TABLE: LazyLock<Table> = LazyLock::new(|| {
    let mut urls = HashMap::new();
    let mut files = HashMap::new();
    for e in EMBEDDED {
        let file = hashed_file_name(e.name, e.bytes);
        urls.insert(e.name, format!("/assets/{file}"));
        files.insert(file, e);
    }
    Table { urls, files }
});

/// `htmx.js` + content → `htmx-<first 16 hex digits of SHA-256>.js`.
fn hashed_file_name(name: &str, bytes: &[u8]) -> String {
    let digest = hex::encode(Sha256::digest(bytes));
    let hash = &digest[..16];
    match name.rsplit_once('.') {
        Some((stem, ext)) => format!("{stem}-{hash}.{ext}"),
        None => format!("{name}-{hash}"),
    }
}

/// The URL of the embedded asset `name` (`"htmx.js"`, `"htmx-ext-sse.js"`,
/// `"uplot.js"`, `"uplot.css"`, `"app.js"`, `"app.css"`), with its content
/// hash in it, for `<script src>` and `<link href>` in templates.
///
/// An unknown name is a bug in a template: debug builds (the tests) panic,
/// release builds log it and return a URL that answers 404 rather than
/// fail the whole page.
pub fn asset_url(name: &str) -> &'static str {
    // `TABLE` is a static, so its strings live as long as the process.
    match TABLE.urls.get(name) {
        Some(url) => url.as_str(),
        None => {
            debug_assert!(false, "no embedded asset named {name:?}");
            tracing::error!(name, "template names an unknown asset");
            MISSING
        }
    }
}

/// The `/assets/{file}` route.
pub(super) fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new().route("/assets/{file}", get(serve))
}

async fn serve(Path(file): Path<String>) -> Response {
    match TABLE.files.get(&file) {
        Some(e) => (
            [
                (header::CONTENT_TYPE, e.content_type),
                (header::CACHE_CONTROL, CACHE_FOREVER),
                (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            ],
            e.bytes,
        )
            .into_response(),
        None => Error::NotFound(format!("no asset {file:?}")).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_asset_has_a_hashed_url_that_serves_it() {
        for e in EMBEDDED {
            let url = asset_url(e.name);
            let (stem, ext) = e.name.rsplit_once('.').expect("names have an extension");
            let file = url.strip_prefix("/assets/").expect("under /assets/");
            let hash = file
                .strip_prefix(&format!("{stem}-"))
                .and_then(|f| f.strip_suffix(&format!(".{ext}")))
                .unwrap_or_else(|| panic!("{url} is not /assets/{stem}-<hash>.{ext}"));
            assert_eq!(hash.len(), 16, "{url}");
            assert!(hash.bytes().all(|b| b.is_ascii_hexdigit()), "{url}");
            assert!(
                std::ptr::eq(TABLE.files[file], e),
                "{url} serves {}",
                e.name
            );
        }
        assert_eq!(TABLE.files.len(), EMBEDDED.len(), "two assets share a URL");
    }

    #[test]
    fn the_hash_follows_the_content() {
        assert_eq!(
            hashed_file_name("a.js", b"one"),
            hashed_file_name("a.js", b"one")
        );
        assert_ne!(
            hashed_file_name("a.js", b"one"),
            hashed_file_name("a.js", b"two")
        );
    }

    #[test]
    fn the_vendored_files_are_the_real_builds() {
        let text = |name: &str| {
            let e = EMBEDDED.iter().find(|e| e.name == name).expect(name);
            std::str::from_utf8(e.bytes).expect("utf-8")
        };
        assert!(text("htmx.js").starts_with("var htmx=function()"));
        assert!(text("htmx-ext-sse.js").contains("htmx.defineExtension(\"sse\""));
        assert!(text("uplot.js").contains("var uPlot=function()"));
        assert!(text("uplot.css").contains(".uplot"));
    }

    #[tokio::test]
    async fn unknown_and_unhashed_names_are_json_404s() {
        for file in [
            "htmx.js",
            "htmx-0000000000000000.js",
            "missing",
            "..%2Fmain.rs",
        ] {
            let r = serve(Path(file.to_string())).await;
            assert_eq!(r.status(), axum::http::StatusCode::NOT_FOUND, "{file}");
            let body = axum::body::to_bytes(r.into_body(), 1024)
                .await
                .expect("body");
            let v: serde_json::Value = serde_json::from_slice(&body).expect("json");
            assert!(
                v["error"].as_str().is_some_and(|e| e.contains("no asset")),
                "{v}"
            );
        }
    }

    #[tokio::test]
    async fn a_hashed_name_is_served_with_its_type_and_cached_for_a_year() {
        let url = asset_url("uplot.css");
        let r = serve(Path(url["/assets/".len()..].to_string())).await;
        assert_eq!(r.status(), axum::http::StatusCode::OK);
        assert_eq!(r.headers()[header::CONTENT_TYPE], CSS);
        assert_eq!(r.headers()[header::CACHE_CONTROL], CACHE_FOREVER);
    }
}
