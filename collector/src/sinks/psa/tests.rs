//! [`PsaSink::deliver`] over an in-memory [`Connector`]: every row of the
//! table in the module header, the lookup before a retried create, and the
//! note naming a closed PSA ticket.

use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;

use super::*;
use crate::domain::TicketState;
use crate::sinks::notification::tests::sample;
use crate::sinks::template::TemplateConfig;

/// What the sink asked of the connector.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Call {
    Create {
        title: String,
        body: String,
        key: String,
    },
    Find {
        key: String,
    },
    Note {
        id: String,
        text: String,
    },
    Close {
        id: String,
        text: String,
    },
}

/// A PSA in memory: records calls; `found` answers `find`, `fail` fails
/// every write.
#[derive(Default)]
struct Memory {
    calls: Mutex<Vec<Call>>,
    found: Option<Created>,
    fail: Option<Outcome>,
}

impl Memory {
    fn calls(&self) -> Vec<Call> {
        self.calls.lock().expect("lock").clone()
    }

    fn record(&self, c: Call) -> Result<(), HttpFailure> {
        self.calls.lock().expect("lock").push(c);
        match &self.fail {
            Some(o) => Err(HttpFailure(o.clone())),
            None => Ok(()),
        }
    }
}

#[async_trait]
impl Connector for Memory {
    async fn create(&self, t: &NewPsaTicket<'_>) -> Result<Created, HttpFailure> {
        self.record(Call::Create {
            title: t.title.to_string(),
            body: t.body.to_string(),
            key: t.key.to_string(),
        })?;
        Ok(Created {
            id: "101".into(),
            url: Some("https://psa.example/101".into()),
        })
    }
    async fn find(&self, t: &NewPsaTicket<'_>) -> Result<Option<Created>, HttpFailure> {
        self.calls.lock().expect("lock").push(Call::Find {
            key: t.key.to_string(),
        });
        Ok(self.found.clone())
    }
    async fn note(&self, id: &str, _n: &Notification, text: &str) -> Result<(), HttpFailure> {
        self.record(Call::Note {
            id: id.into(),
            text: text.into(),
        })
    }
    async fn close(&self, id: &str, _n: &Notification, text: &str) -> Result<(), HttpFailure> {
        self.record(Call::Close {
            id: id.into(),
            text: text.into(),
        })
    }
    async fn closed(&self, open: &[SinkLink]) -> Result<Vec<RemoteClose>, String> {
        Ok(open
            .iter()
            .map(|l| RemoteClose {
                external_id: l.external_id.clone(),
                closed_by: "jdoe".into(),
            })
            .collect())
    }
    async fn health(&self) -> CheckResult {
        Ok("memory is fine".into())
    }
    async fn mapping(&self, tenant: &str) -> CheckResult {
        Ok(format!("mapping of {tenant}"))
    }
    fn request_timeout(&self) -> Duration {
        Duration::from_secs(3)
    }
    fn poll_every(&self) -> Duration {
        Duration::from_secs(7)
    }
    fn vendor(&self) -> &'static str {
        "MemoryPSA"
    }
}

fn sink(m: Memory) -> PsaSink<Memory> {
    let t = Templates::new(TEMPLATES, &TemplateConfig::default()).expect("templates");
    PsaSink::new(m, t, "https://fw.example/")
}

fn event(status: Status, kind: &str) -> Notification {
    let mut n = sample();
    n.status = status;
    n.event = kind.into();
    n.detail = format!("{kind} detail");
    if status == Status::Resolved {
        n.state = TicketState::Resolved;
    }
    n
}

fn link(closed_by: Option<&str>) -> SinkLink {
    SinkLink {
        sink: "cw".into(),
        tenant_id: "t-1".into(),
        ticket_id: 42,
        external_id: "77".into(),
        url: None,
        created_at: 1_800_000_000_000,
        closed_at: closed_by.map(|_| 1_800_000_060_000),
        closed_by: closed_by.map(str::to_string),
    }
}

async fn deliver(
    s: &PsaSink<Memory>,
    n: &Notification,
    link: Option<&SinkLink>,
    attempts: u32,
) -> Outcome {
    s.deliver(&Delivery {
        notification: n,
        key: "key-1",
        attempts,
        link,
    })
    .await
}

#[tokio::test]
async fn firing_without_a_link_creates_and_links() {
    let s = sink(Memory::default());
    let out = deliver(&s, &event(Status::Firing, "opened"), None, 0).await;
    assert_eq!(
        out,
        Outcome::Linked {
            external_id: "101".into(),
            url: Some("https://psa.example/101".into())
        }
    );
    let calls = s.connector.calls();
    let [Call::Find { .. }, Call::Create { title, body, key }] = calls.as_slice() else {
        panic!("{calls:?}");
    };
    assert_eq!(title, "CRIT [P1 L1] db1: disk /data");
    assert!(body.contains("https://fw.example/tickets/42"), "{body}");
    assert!(!body.contains("was closed"), "{body}");
    assert_eq!(key, "key-1");
}

#[tokio::test]
async fn firing_acknowledged_and_resolved_on_an_open_link_note_and_close() {
    let s = sink(Memory::default());
    let open = link(None);
    for (status, kind) in [
        (Status::Firing, "escalated"),
        (Status::Firing, "updated"),
        (Status::Firing, "reopened"),
        (Status::Firing, "still_failing"),
        (Status::Acknowledged, "acknowledged"),
    ] {
        let out = deliver(&s, &event(status, kind), Some(&open), 0).await;
        assert_eq!(out, Outcome::Delivered, "{kind}");
    }
    assert_eq!(
        deliver(&s, &event(Status::Resolved, "resolved"), Some(&open), 0).await,
        Outcome::LinkClosed {
            external_id: open.external_id.clone()
        }
    );
    let calls = s.connector.calls();
    assert_eq!(calls.len(), 6, "{calls:?}");
    for (c, kind) in calls[..5].iter().zip([
        "escalated",
        "updated",
        "reopened",
        "still failing",
        "acknowledged",
    ]) {
        let Call::Note { id, text } = c else {
            panic!("{c:?}");
        };
        assert_eq!(id, "77");
        assert!(text.starts_with(&format!("Forewarn: {kind}")), "{text}");
    }
    let Call::Close { id, text } = &calls[5] else {
        panic!("{calls:?}");
    };
    assert_eq!(id, "77");
    assert!(text.contains("resolved detail"), "{text}");
}

#[tokio::test]
async fn a_reminder_on_an_open_link_adds_nothing() {
    let s = sink(Memory::default());
    let out = deliver(&s, &event(Status::Firing, "reminder"), Some(&link(None)), 0).await;
    assert_eq!(out, Outcome::Delivered);
    assert!(s.connector.calls().is_empty());
}

#[tokio::test]
async fn firing_after_a_psa_close_creates_a_new_ticket_naming_the_closed_one() {
    let s = sink(Memory::default());
    let closed = link(Some("jdoe"));
    let out = deliver(
        &s,
        &event(Status::Firing, "still_failing"),
        Some(&closed),
        0,
    )
    .await;
    assert!(matches!(out, Outcome::Linked { ref external_id, .. } if external_id == "101"));
    let calls = s.connector.calls();
    let [Call::Find { .. }, Call::Create { body, .. }] = calls.as_slice() else {
        panic!("{calls:?}");
    };
    assert!(
        body.contains(
            "The problem still fails after MemoryPSA ticket 77 was closed by jdoe at 2027-01-15T08:01:00Z"
        ) && body.contains("the closed one was not reopened"),
        "{body}"
    );
    // Never a note or a status change on the closed one.
    assert!(
        !calls
            .iter()
            .any(|c| matches!(c, Call::Note { .. } | Call::Close { .. }))
    );
}

#[tokio::test]
async fn a_relapse_after_forewarn_closed_the_psa_ticket_opens_a_new_one() {
    let s = sink(Memory::default());
    let closed = link(Some(crate::sinks::CLOSED_BY_FOREWARN));
    let out = deliver(&s, &event(Status::Firing, "reopened"), Some(&closed), 0).await;
    assert!(matches!(out, Outcome::Linked { .. }), "{out:?}");
    let calls = s.connector.calls();
    let [Call::Find { .. }, Call::Create { body, .. }] = calls.as_slice() else {
        panic!("{calls:?}");
    };
    assert!(
        body.contains("The problem came back after MemoryPSA ticket 77 was closed on recovery"),
        "{body}"
    );
}

#[tokio::test]
async fn a_reminder_after_a_psa_close_waits_for_still_failing() {
    let s = sink(Memory::default());
    let out = deliver(
        &s,
        &event(Status::Firing, "reminder"),
        Some(&link(Some("jdoe"))),
        0,
    )
    .await;
    assert_eq!(out, Outcome::Delivered);
    assert!(s.connector.calls().is_empty());
}

#[tokio::test]
async fn acknowledged_or_resolved_without_an_open_link_do_nothing() {
    let s = sink(Memory::default());
    let closed = link(Some("jdoe"));
    for l in [None, Some(&closed)] {
        for (status, kind) in [
            (Status::Acknowledged, "acknowledged"),
            (Status::Resolved, "resolved"),
        ] {
            assert_eq!(
                deliver(&s, &event(status, kind), l, 0).await,
                Outcome::Delivered
            );
        }
    }
    assert!(s.connector.calls().is_empty());
}

#[tokio::test]
async fn a_retried_create_finds_the_ticket_a_lost_answer_made() {
    let s = sink(Memory {
        found: Some(Created {
            id: "99".into(),
            url: None,
        }),
        ..Memory::default()
    });
    let n = event(Status::Firing, "opened");
    // Any attempt (a retry here, or a first attempt by a replica taking
    // over from one that died unrecorded): looks up first, finds, creates
    // nothing.
    for attempts in [0, 2] {
        let out = deliver(&s, &n, None, attempts).await;
        assert_eq!(
            out,
            Outcome::Linked {
                external_id: "99".into(),
                url: None
            }
        );
    }
    let calls = s.connector.calls();
    assert_eq!(calls.len(), 2, "{calls:?}");
    assert!(
        calls.iter().all(|c| *c
            == Call::Find {
                key: "key-1".into()
            }),
        "{calls:?}"
    );
}

#[tokio::test]
async fn a_retried_create_that_finds_nothing_creates() {
    let s = sink(Memory::default());
    let out = deliver(&s, &event(Status::Firing, "opened"), None, 1).await;
    assert!(matches!(out, Outcome::Linked { .. }));
    let calls = s.connector.calls();
    assert!(
        matches!(calls.as_slice(), [Call::Find { .. }, Call::Create { .. }]),
        "{calls:?}"
    );
}

#[tokio::test]
async fn connector_failures_and_bad_templates_become_outcomes() {
    let retry = Outcome::Retry {
        error: "HTTP 503".into(),
        after: Some(Duration::from_secs(4)),
    };
    let s = sink(Memory {
        fail: Some(retry.clone()),
        ..Memory::default()
    });
    assert_eq!(
        deliver(&s, &event(Status::Firing, "opened"), None, 0).await,
        retry
    );
    let open = link(None);
    assert_eq!(
        deliver(
            &s,
            &event(Status::Acknowledged, "acknowledged"),
            Some(&open),
            0
        )
        .await,
        retry
    );
    assert_eq!(
        deliver(&s, &event(Status::Resolved, "resolved"), Some(&open), 0).await,
        retry
    );
    // A template that fails to render parks the delivery, naming the part.
    let cfg: TemplateConfig = toml::from_str("note = \"{{ nope }}\"").expect("toml");
    let bad = PsaSink::new(
        Memory::default(),
        Templates::new(TEMPLATES, &cfg).expect("parses"),
        "x",
    );
    let out = deliver(
        &bad,
        &event(Status::Acknowledged, "acknowledged"),
        Some(&open),
        0,
    )
    .await;
    assert!(
        matches!(&out, Outcome::Park(r) if r.contains("note")),
        "{out:?}"
    );
    assert!(bad.connector.calls().is_empty());
}

#[tokio::test]
async fn the_sink_hands_the_rest_to_its_connector() {
    let s = sink(Memory::default());
    assert_eq!(s.request_timeout(), Duration::from_secs(3));
    assert_eq!(s.poll_every(), Some(Duration::from_secs(7)));
    assert_eq!(s.health().await, Ok("memory is fine".into()));
    assert_eq!(s.mapping("acme").await, Ok("mapping of acme".into()));
    let closes = s.closed(&[link(None)]).await.expect("closed");
    assert_eq!(closes[0].closed_by, "jdoe");
}

#[test]
fn still_failing_notifies_as_firing() {
    assert_eq!(Status::for_event("still_failing"), Some(Status::Firing));
    assert_eq!(Status::for_event("closed_remotely"), None);
}
