//! The OpenAPI 3.1 document of `/api/v1`, generated from the handlers.
//!
//! Each handler carries a `#[utoipa::path]` and is registered with
//! `utoipa_axum::routes!`, which adds the route and its documentation
//! together: a route cannot exist undocumented. This module adds what is
//! common to every operation: the bearer-key security scheme (other schemes,
//! such as a session cookie, go beside it in [`Security`]) and the error
//! responses, all with the one [`ErrorBody`] shape. The document is served
//! at `GET /api/v1/openapi.json` (no key needed).

use utoipa::Modify;
use utoipa::OpenApi;
use utoipa::openapi::path::Operation;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder};

use crate::error::ErrorBody;

/// The name of the API-key scheme in the document.
pub const API_KEY_SCHEME: &str = "api_key";

/// The document's fixed parts; the paths come from the routers.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Forewarn collector API",
        description = "Operator API of the Forewarn collector. Every error is \
            `{\"error\": \"...\", \"code\": \"...\"}` (ErrorBody). Lists answer a JSON array \
            of at most `limit` items (default 100, max 1000) after `offset`; a `Link: <...>; \
            rel=\"next\"` header gives the next page, and its absence means the last page.",
    ),
    components(schemas(ErrorBody)),
    security(("api_key" = [])),
    modifiers(&Security),
    tags(
        (name = "fleet", description = "Tenants and agents"),
        (name = "tickets", description = "Tickets and their actions"),
        (name = "maintenance", description = "Maintenance windows and silences"),
        (name = "admin", description = "Enrollment tokens, audit log, sink outbox, KPIs"),
        (name = "meta", description = "This document"),
    )
)]
pub struct ApiDoc;

/// Completes the document once the routers have added their paths.
pub fn finish(doc: &mut utoipa::openapi::OpenApi) {
    ErrorResponses.modify(doc);
}

/// Adds the security schemes: `Authorization: Bearer <api key>`.
struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            API_KEY_SCHEME,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("fwk_… API key (forewarn-collector api-key create)")
                    .description(Some(
                        "An API key; its role and tenant scope decide what the call may see and do.",
                    ))
                    .build(),
            ),
        );
    }
}

/// Documents, on every operation, the errors it can answer, all with
/// [`ErrorBody`]: what any request can meet (bad parameters, no key,
/// internal and store errors), 404 where the path names a thing, and what
/// only a request with a body or a change can meet.
struct ErrorResponses;

impl Modify for ErrorResponses {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for (path, item) in openapi.paths.paths.iter_mut() {
            let names_a_thing = path.contains('{');
            let open = path.ends_with("/openapi.json");
            let ops = [
                (&mut item.get, false),
                (&mut item.post, true),
                (&mut item.delete, true),
                (&mut item.put, true),
                (&mut item.patch, true),
            ];
            for (op, writes) in ops {
                let Some(op) = op.as_mut() else { continue };
                let has_body = op.request_body.is_some();
                let mut add = |status: &str, why: &str| add_error(op, status, why);
                if !open {
                    add(
                        "400",
                        "A query or path parameter is invalid (named in `error`).",
                    );
                    add("401", "No, malformed or unknown API key.");
                    add("503", "The store is unavailable; try again.");
                }
                add("500", "Internal error (details in the collector's log).");
                if names_a_thing || writes {
                    add(
                        "404",
                        "The path, or a tenant or host the body names, is not in the caller's scope.",
                    );
                }
                if writes {
                    add("403", "The key's role may not do this.");
                    add("409", "The change conflicts with the current state.");
                }
                if has_body {
                    add("413", "The body is larger than 64 KiB.");
                    add("415", "The body is not `Content-Type: application/json`.");
                    add(
                        "422",
                        "The JSON body has a wrong type, a missing or an unknown field (named in `error`).",
                    );
                }
            }
        }
    }
}

fn add_error(op: &mut Operation, status: &str, description: &str) {
    op.responses
        .responses
        .entry(status.to_string())
        .or_insert_with(|| {
            RefOr::T(
                ResponseBuilder::new()
                    .description(description)
                    .content(
                        "application/json",
                        ContentBuilder::new()
                            .schema(Some(Ref::from_schema_name("ErrorBody")))
                            .build(),
                    )
                    .build(),
            )
        });
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    /// The document the collector serves, built as `api::router` builds it.
    fn document() -> Value {
        let (_, doc) = super::super::documented_routes();
        serde_json::to_value(doc).expect("json")
    }

    /// A plugin metric's thresholds are described (nested schemas).
    #[test]
    fn metric_thresholds_are_in_the_schema() {
        let doc = document();
        let schemas = &doc["components"]["schemas"];
        let metric = &schemas["Metric"]["properties"];
        assert!(
            metric.get("warn").is_some() && metric.get("max").is_some(),
            "{metric}"
        );
        assert!(
            schemas["Threshold"]["properties"].get("inside").is_some(),
            "{schemas}"
        );
    }

    #[test]
    fn every_operation_is_secured_and_documents_its_errors() {
        let doc = document();
        assert_eq!(doc["openapi"], "3.1.0");
        assert_eq!(
            doc["components"]["securitySchemes"]["api_key"]["scheme"],
            "bearer"
        );
        let paths = doc["paths"].as_object().expect("paths");
        assert!(paths.len() >= 20, "{:?}", paths.keys());
        for (path, item) in paths {
            assert!(path.starts_with("/api/v1/"), "{path}");
            for (method, op) in item.as_object().expect("item") {
                let responses = op["responses"].as_object().expect("responses");
                assert!(
                    responses.keys().any(|s| s.starts_with('2')),
                    "{method} {path}: no success response"
                );
                let err = &responses["500"]["content"]["application/json"]["schema"]["$ref"];
                assert_eq!(err, "#/components/schemas/ErrorBody", "{method} {path}");
                if path.contains('{') {
                    assert!(responses.contains_key("404"), "{method} {path}");
                }
                if op.get("requestBody").is_some() {
                    for s in ["413", "415", "422"] {
                        assert!(responses.contains_key(s), "{method} {path} {s}");
                    }
                }
            }
        }
        // The document itself needs no key; everything else does.
        assert_eq!(
            doc["paths"]["/api/v1/openapi.json"]["get"]["security"],
            serde_json::json!([{}])
        );
        assert_eq!(doc["security"], serde_json::json!([{"api_key": []}]));
    }

    #[test]
    fn lists_document_their_filters_and_pages() {
        let doc = document();
        let names = |path: &str| -> Vec<String> {
            doc["paths"][path]["get"]["parameters"]
                .as_array()
                .map(|ps| {
                    ps.iter()
                        .filter_map(|p| p["name"].as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default()
        };
        for (path, wanted) in [
            (
                "/api/v1/tickets",
                &["state", "tenant", "agent", "host", "tier", "check", "sort"][..],
            ),
            (
                "/api/v1/agents",
                &["tenant", "site", "search", "state", "overdue"][..],
            ),
            ("/api/v1/audit", &["tenant"][..]),
            ("/api/v1/outbox", &["state", "tenant"][..]),
            ("/api/v1/tokens", &["tenant"][..]),
        ] {
            let got = names(path);
            for w in wanted.iter().chain(&["limit", "offset"]) {
                assert!(got.iter().any(|g| g == w), "{path} lacks {w}: {got:?}");
            }
        }
    }
}
