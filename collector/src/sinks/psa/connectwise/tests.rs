use super::api::{quoted, refine, summary};
use super::*;
use crate::sinks::Outcome;
use crate::sinks::http::{HttpFailure, classify};

const MINIMAL: &str = "url = \"https://api-na.myconnectwise.net\"\ncompany_id = \"acme_msp\"\n\
public_key = \"pub\"\nprivate_key = \"priv-secret\"\nclient_id = \"client-uuid\"\n\
board = \"Help Desk\"\nclosed_status = \"Closed (resolved)\"\n";

fn table(s: &str) -> toml::Table {
    toml::from_str(s).expect("toml")
}

fn errors(s: &str) -> String {
    parse(table(s)).expect_err("invalid").join("\n")
}

fn built(extra: &str) -> ConnectWise {
    let cfg: ConnectWiseConfig = table(&format!("{MINIMAL}{extra}")).try_into().expect("cfg");
    assert!(parse(table(&format!("{MINIMAL}{extra}"))).is_ok());
    let url = reqwest::Url::parse(&cfg.url).expect("url");
    ConnectWise::new(api::Settings {
        api: url.clone(),
        ui: cfg
            .ui_url
            .map_or_else(|| ui_of(&url), |u| reqwest::Url::parse(&u).expect("ui")),
        company_id: cfg.company_id,
        login: "acme_msp+pub:priv".into(),
        client_id: "client-uuid".into(),
        board: cfg.board,
        closed_status: cfg.closed_status,
        companies: cfg.companies,
        boards: cfg.boards,
        priorities: cfg.priorities,
        poll: Duration::from_secs(cfg.poll_secs),
        timeout: Duration::from_millis(cfg.timeout_ms),
    })
    .expect("built")
}

#[test]
fn a_minimal_config_parses_with_defaults() {
    let spec = parse(table(MINIMAL)).expect("valid");
    let text = format!("{spec:?}");
    assert!(text.contains("/v4_6_release/apis/3.0"), "{text}");
    assert!(text.contains("Priority 4 - Schedule Maintenance"), "{text}");
    assert!(text.contains("poll: 60s"), "{text}");
    assert!(
        !text.contains("priv-secret") && !text.contains("client-uuid"),
        "Debug shows a secret: {text}"
    );
}

#[test]
fn every_bad_key_is_named() {
    let err = errors(
        "url = \"ftp://x\"\ncompany_id = \"a+b\"\npublic_key = \"\"\nprivate_key = \"\"\n\
         client_id = { env = \"\" }\nboard = \" \"\nclosed_status = \"\"\napi_path = \"v4\"\n\
         companies.acme = \"\"\nboards.acme = \"\"\npriorities.P9 = \"x\"\npriorities.P1 = \"\"\n\
         poll_secs = 0\ntimeout_ms = 5\n",
    );
    for key in [
        "url",
        "company_id",
        "public_key",
        "private_key",
        "client_id.env",
        "board",
        "closed_status",
        "api_path",
        "companies.acme",
        "boards.acme",
        "priorities.P9",
        "priorities.P1",
        "poll_secs",
        "timeout_ms",
    ] {
        assert!(
            err.lines().any(|l| l.starts_with(key)),
            "{key} not named in:\n{err}"
        );
    }
    let err = errors("url = \"https://x\"\n");
    assert!(err.contains("company_id"), "{err}");
    let err = errors(&format!("{MINIMAL}bogus = 1\n"));
    assert!(err.contains("bogus"), "{err}");
}

#[test]
fn conditions_strings_are_quoted_and_escaped() {
    assert_eq!(quoted("Help Desk"), "\"Help Desk\"");
    assert_eq!(quoted("say \"hi\" \\ bye"), "\"say \\\"hi\\\" \\\\ bye\"");
}

#[test]
fn a_summary_is_one_line_of_at_most_100_characters() {
    assert_eq!(summary("CRIT  db1:\n disk"), "CRIT db1: disk");
    let long = "é".repeat(150);
    assert_eq!(summary(&long).chars().count(), 100);
}

#[test]
fn refusals_are_told_in_connectwise_words() {
    let body = r#"{"code":"InvalidObject","message":"ticket object is invalid","errors":[{"code":"InvalidField","message":"The company field is required.","resource":"ticket","field":"company"}]}"#;
    let out = refine(HttpFailure(classify(400, None, body))).outcome();
    assert_eq!(
        out,
        Outcome::Park(
            "ConnectWise refused the request (HTTP 400 InvalidObject): ticket object is invalid; \
             company: The company field is required."
                .into()
        )
    );
    let out = refine(HttpFailure(classify(401, None, ""))).outcome();
    assert!(
        matches!(&out, Outcome::Park(r) if r.contains("credentials") && r.contains("client_id")),
        "{out:?}"
    );
    // Not JSON, or a retry: left as the shared classification made it.
    let raw = HttpFailure(classify(404, None, "not here"));
    assert_eq!(refine(raw.clone()), raw);
    let retry = HttpFailure(classify(503, None, "{}"));
    assert_eq!(refine(retry.clone()), retry);
}

#[test]
fn links_open_the_ticket_in_the_ui_host() {
    let cw = built("");
    assert_eq!(
        cw.created(1234).url.as_deref(),
        Some(
            "https://na.myconnectwise.net/v4_6_release/services/system_io/Service/fv_sr100_request.rails?service_recid=1234&companyName=acme_msp"
        )
    );
    let onprem = built("ui_url = \"https://cw.example.com/\"\n");
    assert!(
        onprem
            .created(5)
            .url
            .is_some_and(|u| u.starts_with("https://cw.example.com/v4_6_release/services/")),
    );
}

#[test]
fn tenants_find_their_company_and_board_by_name_or_id() {
    let cw = built(
        "companies.acme = \"AcmeCorp\"\ncompanies.t-2 = \"Globex\"\nboards.t-2 = \"Servers\"\n",
    );
    assert_eq!(
        cw.company_of("acme", "t-1").map(String::as_str),
        Some("AcmeCorp")
    );
    assert_eq!(
        cw.company_of("globex", "t-2").map(String::as_str),
        Some("Globex")
    );
    assert_eq!(cw.company_of("initech", "t-3"), None);
    assert_eq!(
        cw.board_of("acme", "t-1"),
        ("board".to_string(), "Help Desk")
    );
    assert_eq!(
        cw.board_of("globex", "t-2"),
        ("boards.t-2".to_string(), "Servers")
    );
}
