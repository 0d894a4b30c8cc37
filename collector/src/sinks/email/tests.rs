//! The sink against a scripted SMTP server on loopback: lettre's real
//! client reads the server's replies, and each failure lands where it
//! should (park or retry), with no password in the reason.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

use super::*;
use crate::sinks::SinkContext;
use crate::sinks::config::SinkSpec;
use crate::sinks::notification::tests::sample;
use crate::sinks::secret::SecretRef;
use crate::sinks::template::TemplateConfig;

const PASSWORD: &str = "hunter2-smtp";

/// A scripted SMTP server: `overrides` are (command verb, reply) pairs
/// (`{arg}` in a reply is replaced by the command's argument); the rest
/// get ordinary success replies. Returns its port and the commands it saw.
async fn server(
    overrides: &'static [(&'static str, &'static str)],
) -> (u16, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&seen);
    tokio::spawn(async move {
        while let Ok((sock, _)) = listener.accept().await {
            let log = Arc::clone(&log);
            tokio::spawn(async move {
                let (r, mut w) = sock.into_split();
                let mut lines = BufReader::new(r).lines();
                say(&mut w, "220 fake ESMTP").await;
                while let Ok(Some(line)) = lines.next_line().await {
                    let (verb, arg) = line.split_once(' ').unwrap_or((&line, ""));
                    let verb = verb.to_ascii_uppercase();
                    log.lock().expect("lock").push(verb.clone());
                    let reply = overrides
                        .iter()
                        .find(|(v, _)| *v == verb)
                        .map(|(_, r)| r.replace("{arg}", arg))
                        .unwrap_or_else(|| {
                            match verb.as_str() {
                                "EHLO" => "250-fake\r\n250 AUTH PLAIN LOGIN",
                                "DATA" => "354 go ahead",
                                "QUIT" => "221 bye",
                                _ => "250 ok",
                            }
                            .to_string()
                        });
                    if reply == "HANG" {
                        // Accepts the command and never answers.
                        tokio::time::sleep(Duration::from_secs(3600)).await;
                    }
                    say(&mut w, &reply).await;
                    if verb == "DATA" && reply.starts_with("354") {
                        while let Ok(Some(l)) = lines.next_line().await {
                            if l == "." {
                                break;
                            }
                        }
                        say(&mut w, "250 queued").await;
                    }
                    if verb == "QUIT" {
                        break;
                    }
                }
            });
        }
    });
    (port, seen)
}

async fn say(w: &mut tokio::net::tcp::OwnedWriteHalf, s: &str) {
    let _ = w.write_all(format!("{s}\r\n").as_bytes()).await;
}

/// An email sink on `port` without TLS, logging in as `user` (the parser
/// refuses a password without TLS; the scripted server has none).
fn sink(port: u16, timeout_ms: u64) -> Arc<dyn Sink> {
    sink_tls(port, timeout_ms, "none")
}

fn sink_tls(port: u16, timeout_ms: u64, tls: &str) -> Arc<dyn Sink> {
    let mut s = config::validate(
        toml::from_str(&format!(
            "host = \"127.0.0.1\"\nport = {port}\ntls = \"{tls}\"\ntimeout_ms = {timeout_ms}\n\
             from = \"alerts@msp.example\"\nto = [\"noc@msp.example\"]\n"
        ))
        .expect("toml"),
    )
    .expect("valid");
    s.login = Some(("user".into(), SecretRef::Inline(PASSWORD.into())));
    let templates = Templates::new(TEMPLATES, &TemplateConfig::default()).expect("templates");
    s.build(
        &SinkContext {
            public_url: "https://fw.example".into(),
        },
        templates,
    )
    .expect("builds")
}

async fn deliver(s: &Arc<dyn Sink>) -> Outcome {
    let n = sample();
    s.deliver(&Delivery {
        notification: &n,
        key: "k",
        attempts: 0,
        link: None,
    })
    .await
}

fn reason(o: &Outcome) -> &str {
    match o {
        Outcome::Park(r) | Outcome::Retry { error: r, .. } => r,
        _ => "",
    }
}

#[tokio::test]
async fn an_accepted_message_is_delivered_after_a_login() {
    let (port, seen) = server(&[]).await;
    assert_eq!(deliver(&sink(port, 2000)).await, Outcome::Delivered);
    let seen = seen.lock().expect("lock").clone();
    assert_eq!(seen[..4], ["EHLO", "AUTH", "MAIL", "RCPT"], "{seen:?}");
    assert!(seen.contains(&"DATA".to_string()), "{seen:?}");
}

#[tokio::test]
async fn a_refused_login_parks_without_the_password() {
    // A server that echoes the login it refused.
    let (port, seen) = server(&[("AUTH", "535 5.7.8 bad credentials {arg}")]).await;
    let out = deliver(&sink(port, 2000)).await;
    assert!(matches!(out, Outcome::Park(_)), "{out:?}");
    let r = reason(&out);
    assert!(
        r.contains("535") && r.contains("authentication failed"),
        "{r}"
    );
    let b64 = base64::engine::general_purpose::STANDARD;
    assert!(!r.contains(PASSWORD), "{r}");
    assert!(
        !r.contains(&b64.encode(format!("\0user\0{PASSWORD}"))),
        "{r}"
    );
    assert!(r.contains("<redacted>"), "the echo was there to scrub: {r}");
    assert!(!seen.lock().expect("lock").contains(&"MAIL".to_string()));
}

#[tokio::test]
async fn a_refused_recipient_parks_and_a_busy_server_retries() {
    let (port, _) = server(&[("RCPT", "550 5.1.1 no such user")]).await;
    let out = deliver(&sink(port, 2000)).await;
    assert!(
        matches!(&out, Outcome::Park(r) if r.contains("550") && r.contains("refused an address")),
        "{out:?}"
    );
    let (port, _) = server(&[("MAIL", "451 4.3.0 try again later")]).await;
    let out = deliver(&sink(port, 2000)).await;
    assert!(
        matches!(&out, Outcome::Retry { error, .. } if error.contains("451")),
        "{out:?}"
    );
    let (port, _) = server(&[("AUTH", "454 4.7.0 temporary authentication failure")]).await;
    assert!(matches!(
        deliver(&sink(port, 2000)).await,
        Outcome::Retry { .. }
    ));
}

#[tokio::test]
async fn no_login_mechanism_in_common_parks() {
    let (port, _) = server(&[("EHLO", "250-fake\r\n250 AUTH CRAM-MD5")]).await;
    let out = deliver(&sink(port, 2000)).await;
    assert!(
        matches!(&out, Outcome::Park(r) if r.contains("authentication mechanism")),
        "{out:?}"
    );
}

#[tokio::test]
async fn a_server_without_starttls_parks_before_any_login() {
    let (port, seen) = server(&[]).await;
    let out = deliver(&sink_tls(port, 2000, "starttls")).await;
    assert!(
        matches!(&out, Outcome::Park(r) if r.contains("STARTTLS")),
        "{out:?}"
    );
    let seen = seen.lock().expect("lock").clone();
    assert!(
        !seen.contains(&"AUTH".to_string()),
        "no login in clear: {seen:?}"
    );
}

#[tokio::test]
async fn a_closed_port_and_a_silent_server_retry() {
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let out = deliver(&sink(closed, 2000)).await;
    assert!(
        matches!(&out, Outcome::Retry { error, .. } if error.starts_with("SMTP connection")),
        "{out:?}"
    );
    let (port, _) = server(&[("MAIL", "HANG")]).await;
    let started = std::time::Instant::now();
    let out = deliver(&sink(port, 300)).await;
    assert!(matches!(out, Outcome::Retry { .. }), "{out:?}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "bounded by timeout_ms"
    );
}

#[tokio::test]
async fn health_logs_in_without_sending() {
    let (port, seen) = server(&[]).await;
    let ok = sink(port, 2000).health().await.expect("healthy");
    assert_eq!(
        ok,
        format!("127.0.0.1:{port} unencrypted, authenticated as user")
    );
    let seen = seen.lock().expect("lock").clone();
    assert!(seen.contains(&"AUTH".to_string()), "{seen:?}");
    assert!(
        !seen.contains(&"MAIL".to_string()),
        "nothing sent: {seen:?}"
    );
    let (port, _) = server(&[("AUTH", "535 5.7.8 no {arg}")]).await;
    let err = sink(port, 2000).health().await.expect_err("refused");
    assert!(
        err.contains("authentication failed") && !err.contains(PASSWORD),
        "{err}"
    );
}
