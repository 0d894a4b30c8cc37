//! tcp and http probes against servers on loopback, started by each test.

use std::net::SocketAddr;

use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

use super::*;

fn tcp(address: String) -> TcpConfig {
    TcpConfig {
        name: "db".into(),
        address,
        timeout_ms: 2000,
        warn_latency_ms: None,
        interval_secs: 30,
    }
}

fn http(url: String) -> HttpConfig {
    HttpConfig {
        name: "web".into(),
        url,
        expect_status: Vec::new(),
        timeout_ms: 2000,
        warn_latency_ms: None,
        interval_secs: 60,
        body_contains: None,
        body_regex: None,
    }
}

async fn run(probe: &mut dyn Probe) -> Evaluation {
    let mut results = probe.run().await;
    assert_eq!(results.len(), 1);
    results.remove(0)
}

/// A port nothing listens on.
async fn closed_port() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    listener.local_addr().expect("addr")
}

/// Reads one request head from `stream`.
async fn read_head(stream: &mut (impl AsyncReadExt + Unpin)) -> String {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match stream.read(&mut byte).await {
            Ok(1) => head.push(byte[0]),
            _ => break,
        }
    }
    String::from_utf8_lossy(&head).into_owned()
}

/// An HTTP server answering every request with `response`; request heads
/// come out of the channel.
async fn serve(response: impl Into<Vec<u8>>) -> (SocketAddr, mpsc::UnboundedReceiver<String>) {
    let response: Vec<u8> = response.into();
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let head = read_head(&mut stream).await;
            let _ = tx.send(head);
            let _ = stream.write_all(&response).await;
            let _ = stream.shutdown().await;
        }
    });
    (addr, rx)
}

#[test]
fn host_port_shapes() {
    assert_eq!(split_host_port("db:5432"), Some(("db", 5432)));
    assert_eq!(split_host_port("[::1]:443"), Some(("::1", 443)));
    assert_eq!(split_host_port("10.0.0.1:80"), Some(("10.0.0.1", 80)));
    for bad in [
        "db", ":80", "db:0", "db:x", "db:70000", "::1:443", "[::1:443",
    ] {
        assert_eq!(split_host_port(bad), None, "{bad}");
    }
}

#[test]
fn url_shapes() {
    let t = HttpTarget::parse("https://example.com/health?full=1").expect("url");
    assert!(t.tls);
    assert_eq!((t.host.as_str(), t.port), ("example.com", 443));
    assert_eq!(t.path, "/health?full=1");
    assert_eq!(t.authority, "example.com");
    let t = HttpTarget::parse("http://[::1]:8080").expect("url");
    assert_eq!(
        (t.host.as_str(), t.port, t.path.as_str()),
        ("::1", 8080, "/")
    );
    for (bad, why) in [
        ("ftp://example.com/", "http:// or https://"),
        ("example.com/x", "http:// or https://"),
        ("http://user:pw@example.com/", "credentials"),
        ("http:// spaces/", "not a valid URL"),
        ("http://example.com:0/", "port 0"),
    ] {
        let e = HttpTarget::parse(bad).expect_err(bad);
        assert!(e.contains(why), "{bad}: {e}");
    }
}

#[test]
fn not_resolving_is_unknown_and_not_connecting_is_crit() {
    let resolve = ConnectError::Resolve {
        host: "db".into(),
        source: std::io::Error::other("no such host"),
    };
    assert_eq!(resolve.state(), CheckState::Unknown);
    let refused = ConnectError::Connect {
        address: "db:1".into(),
        source: std::io::ErrorKind::ConnectionRefused.into(),
    };
    assert_eq!(refused.state(), CheckState::Crit);
}

#[tokio::test]
async fn tcp_ok_slow_and_refused() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("addr").to_string();
    let mut probe = TcpProbe {
        config: tcp(address.clone()),
    };
    let e = run(&mut probe).await;
    assert_eq!(e.state, CheckState::Ok, "{}", e.message);
    assert_eq!(e.item, "db");
    assert!(
        e.message
            .starts_with(&format!("connected to {address} in "))
    );
    assert_eq!(e.metrics.len(), 1);
    assert_eq!(e.metrics[0].name, "latency_ms");
    assert_eq!(e.metrics[0].unit, "ms");

    probe.config.warn_latency_ms = Some(0);
    let e = run(&mut probe).await;
    assert_eq!(e.state, CheckState::Warn, "{}", e.message);
    assert!(e.message.ends_with("(slower than 0 ms)"), "{}", e.message);

    let closed = closed_port().await.to_string();
    let e = run(&mut TcpProbe {
        config: tcp(closed),
    })
    .await;
    assert_eq!(e.state, CheckState::Crit);
    assert!(e.message.starts_with("cannot connect to"), "{}", e.message);
    assert!(e.metrics.is_empty());
}

#[tokio::test]
async fn http_statuses_decide_the_state() {
    let (addr, mut requests) = serve("HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok").await;
    let mut probe = HttpProbe::new(&http(format!("http://{addr}/health?x=1")));
    let e = run(&mut probe).await;
    assert_eq!(e.state, CheckState::Ok, "{}", e.message);
    assert!(e.message.starts_with("HTTP 200 OK in "), "{}", e.message);
    assert_eq!(e.metrics[1], Metric::new("status", 200.0, ""));
    let head = requests.recv().await.expect("request").to_lowercase();
    assert!(head.starts_with("get /health?x=1 http/1.1\r\n"), "{head}");
    assert!(head.contains(&format!("host: {addr}\r\n")), "{head}");

    let (addr, _) = serve("HTTP/1.1 500 Internal Server Error\r\ncontent-length: 0\r\n\r\n").await;
    let e = run(&mut HttpProbe::new(&http(format!("http://{addr}/")))).await;
    assert_eq!(e.state, CheckState::Crit);
    assert!(
        e.message.starts_with("HTTP 500 Internal Server Error in ")
            && e.message.ends_with("(expected 2xx or 3xx)"),
        "{}",
        e.message
    );
}

#[tokio::test]
async fn redirects_are_reported_not_followed() {
    let (addr, mut requests) =
        serve("HTTP/1.1 301 Moved Permanently\r\nlocation: http://elsewhere/\r\ncontent-length: 0\r\n\r\n")
            .await;
    let mut config = http(format!("http://{addr}/old"));
    let e = run(&mut HttpProbe::new(&config)).await;
    assert_eq!(e.state, CheckState::Ok);
    assert!(e.message.contains("→ http://elsewhere/"), "{}", e.message);
    config.expect_status = vec![200];
    let e = run(&mut HttpProbe::new(&config)).await;
    assert_eq!(e.state, CheckState::Crit);
    assert!(e.message.ends_with("(expected 200)"), "{}", e.message);
    assert_eq!(e.metrics[1].value, 301.0);
    requests.recv().await.expect("first request");
    requests.recv().await.expect("second request");
    assert!(requests.try_recv().is_err(), "the redirect was followed");
}

#[tokio::test]
async fn http_failures_are_crit() {
    let closed = closed_port().await;
    let e = run(&mut HttpProbe::new(&http(format!("http://{closed}/")))).await;
    assert_eq!(e.state, CheckState::Crit);
    assert!(e.message.starts_with("cannot connect to"), "{}", e.message);

    let (addr, _) = serve("SSH-2.0-OpenSSH\r\n\r\n").await;
    let e = run(&mut HttpProbe::new(&http(format!("http://{addr}/")))).await;
    assert_eq!(e.state, CheckState::Crit);
    assert!(
        e.message.starts_with("HTTP exchange failed"),
        "{}",
        e.message
    );

    // Accepts, never answers.
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let mut config = http(format!("http://{addr}/"));
    config.timeout_ms = 300;
    let e = run(&mut HttpProbe::new(&config)).await;
    assert_eq!(e.state, CheckState::Crit);
    assert_eq!(
        e.message,
        format!("no response from http://{addr}/ within 300 ms")
    );
    drop(listener);
}

#[tokio::test]
async fn slow_answers_warn() {
    let (addr, _) = serve("HTTP/1.1 204 No Content\r\n\r\n").await;
    let mut config = http(format!("http://{addr}/"));
    config.warn_latency_ms = Some(0);
    let e = run(&mut HttpProbe::new(&config)).await;
    assert_eq!(e.state, CheckState::Warn);
    assert!(e.message.ends_with("(slower than 0 ms)"), "{}", e.message);
}

#[tokio::test]
async fn the_body_must_contain_and_match() {
    let (addr, _) =
        serve("HTTP/1.1 200 OK\r\ncontent-length: 27\r\n\r\n{\"status\":\"ok\",\"uptime\":42}")
            .await;
    let mut config = http(format!("http://{addr}/health"));
    config.body_contains = Some("\"status\":\"ok\"".into());
    config.body_regex = Some(r#""uptime":\d+"#.into());
    let e = run(&mut HttpProbe::new(&config)).await;
    assert_eq!(e.state, CheckState::Ok, "{}", e.message);

    config.body_contains = Some("\"status\":\"degraded\"".into());
    let e = run(&mut HttpProbe::new(&config)).await;
    assert_eq!(e.state, CheckState::Crit);
    assert!(
        e.message.starts_with("HTTP 200 OK in ")
            && e.message
                .ends_with(r#", but the body does not contain "\"status\":\"degraded\"""#),
        "{}",
        e.message
    );

    // Chunked, and over the cap: only the first 64 KiB are searched.
    let mut chunked = String::from("HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n");
    for part in ["start ", &"x".repeat(BODY_CAP), " MARKER"] {
        chunked.push_str(&format!("{:x}\r\n{part}\r\n", part.len()));
    }
    chunked.push_str("0\r\n\r\n");
    let (addr, _) = serve(chunked).await;
    let mut config = http(format!("http://{addr}/"));
    config.body_regex = Some("^start x+".into());
    let e = run(&mut HttpProbe::new(&config)).await;
    assert_eq!(e.state, CheckState::Ok, "{}", e.message);
    config.body_regex = None;
    config.body_contains = Some("MARKER".into());
    let e = run(&mut HttpProbe::new(&config)).await;
    assert_eq!(e.state, CheckState::Crit);
    assert!(
        e.message
            .ends_with(r#"body does not contain "MARKER" (first 64 KiB searched)"#),
        "{}",
        e.message
    );
}

#[tokio::test]
async fn the_body_is_read_only_when_a_match_is_set() {
    // Promises 100 bytes, sends 2 and closes: only reading the body fails.
    let (addr, _) = serve("HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nok").await;
    let mut config = http(format!("http://{addr}/"));
    let e = run(&mut HttpProbe::new(&config)).await;
    assert_eq!(e.state, CheckState::Ok, "{}", e.message);
    config.body_contains = Some("ok".into());
    let e = run(&mut HttpProbe::new(&config)).await;
    assert_eq!(e.state, CheckState::Crit);
    assert!(
        e.message.starts_with("HTTP exchange failed"),
        "{}",
        e.message
    );

    // A wrong status is reported as such; the body is not judged.
    let (addr, _) = serve("HTTP/1.1 503 Service Unavailable\r\ncontent-length: 2\r\n\r\nok").await;
    let mut config = http(format!("http://{addr}/"));
    config.body_contains = Some("nowhere".into());
    let e = run(&mut HttpProbe::new(&config)).await;
    assert_eq!(e.state, CheckState::Crit);
    assert!(
        e.message.ends_with("(expected 2xx or 3xx)"),
        "{}",
        e.message
    );
}

/// A CA, and a TLS server for `localhost` signed by it answering `200 OK`.
async fn tls_server() -> (CertificateDer<'static>, SocketAddr) {
    let ca_key = KeyPair::generate().expect("key");
    let mut ca_params = CertificateParams::new(Vec::new()).expect("params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).expect("ca");
    let issuer = Issuer::new(ca_params, ca_key);
    let key = KeyPair::generate().expect("key");
    let cert = CertificateParams::new(vec!["localhost".into()])
        .expect("params")
        .signed_by(&key, &issuer)
        .expect("sign");
    let server = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der().clone()],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        )
        .expect("server config");
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(server));
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(stream).await else {
                    return;
                };
                read_head(&mut tls).await;
                let _ = tls
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
                    .await;
                let _ = tls.shutdown().await;
            });
        }
    });
    (ca.der().clone(), addr)
}

#[tokio::test]
async fn https_verifies_the_server_against_the_roots() {
    let (ca, addr) = tls_server().await;
    let url = format!("https://localhost:{}/", addr.port());
    let mut roots = RootCertStore::empty();
    roots.add(ca).expect("add ca");
    let trusting = http_client_config(Arc::new(roots));
    let e = run(&mut HttpProbe::new(&http(url.clone())).with_tls(trusting)).await;
    assert_eq!(e.state, CheckState::Ok, "{}", e.message);

    let strangers = http_client_config(Arc::new(RootCertStore::empty()));
    let e = run(&mut HttpProbe::new(&http(url)).with_tls(strangers)).await;
    assert_eq!(e.state, CheckState::Crit);
    assert!(
        e.message.starts_with("TLS handshake with localhost failed")
            && e.message.contains("UnknownIssuer"),
        "{}",
        e.message
    );
}
