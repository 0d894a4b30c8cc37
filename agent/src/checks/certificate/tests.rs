//! Certificates made with rcgen: in PEM files, and served on loopback.

use std::net::SocketAddr;
use std::path::Path;

use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use time::{Duration as Span, OffsetDateTime};
use tokio::net::TcpListener;

use super::*;

/// A CA and a certificate for `localhost` valid from `from` to `until`
/// (relative to now), signed by it.
struct Minted {
    ca: CertificateDer<'static>,
    cert: rcgen::Certificate,
    key: KeyPair,
}

fn mint(from: Span, until: Span) -> Minted {
    let now = OffsetDateTime::now_utc();
    let ca_key = KeyPair::generate().expect("key");
    let mut ca_params = CertificateParams::new(Vec::new()).expect("params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).expect("ca");
    let issuer = Issuer::new(ca_params, ca_key);
    let key = KeyPair::generate().expect("key");
    let mut params = CertificateParams::new(vec!["localhost".into()]).expect("params");
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "localhost");
    params.not_before = now + from;
    params.not_after = now + until;
    let cert = params.signed_by(&key, &issuer).expect("sign");
    Minted {
        ca: ca.der().clone(),
        cert,
        key,
    }
}

fn config_for_file(path: &Path) -> CertificateConfig {
    CertificateConfig {
        name: None,
        address: None,
        server_name: None,
        pem_file: Some(path.to_owned()),
        warn_days: 21,
        crit_days: 7,
        timeout_ms: 2000,
        interval_secs: 3600,
    }
}

async fn run(probe: &mut CertificateProbe) -> Evaluation {
    let mut results = probe.run().await;
    assert_eq!(results.len(), 1);
    results.remove(0)
}

async fn check_file(from: Span, until: Span) -> Evaluation {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("site.pem");
    std::fs::write(&path, mint(from, until).cert.pem()).expect("write pem");
    run(&mut CertificateProbe::new(&config_for_file(&path))).await
}

#[tokio::test]
async fn days_left_decide_the_state() {
    let e = check_file(-Span::days(1), Span::days(3)).await;
    assert_eq!(e.state, CheckState::Crit);
    assert!(
        e.message.starts_with("CN=localhost expires in 3 days ("),
        "{}",
        e.message
    );
    assert_eq!(e.metrics[0].name, "days_left");
    assert!((e.metrics[0].value - 3.0).abs() < 0.02, "{:?}", e.metrics);

    let e = check_file(-Span::days(1), Span::days(10)).await;
    assert_eq!(e.state, CheckState::Warn, "{}", e.message);
    let e = check_file(-Span::days(1), Span::days(90)).await;
    assert_eq!(e.state, CheckState::Ok, "{}", e.message);
    assert!(e.item.ends_with("site.pem"));
}

#[tokio::test]
async fn expired_and_not_yet_valid_are_crit() {
    let e = check_file(-Span::days(30), -Span::days(2)).await;
    assert_eq!(e.state, CheckState::Crit);
    assert!(
        e.message.starts_with("CN=localhost expired 2 days ago"),
        "{}",
        e.message
    );
    assert!(e.metrics[0].value < -1.9);
    let e = check_file(Span::days(2), Span::days(90)).await;
    assert_eq!(e.state, CheckState::Crit);
    assert!(e.message.contains("is not valid before"), "{}", e.message);
}

#[tokio::test]
async fn unreadable_files_are_unknown() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("missing.pem");
    let e = run(&mut CertificateProbe::new(&config_for_file(&missing))).await;
    assert_eq!(e.state, CheckState::Unknown);
    assert!(e.message.starts_with("cannot read"), "{}", e.message);
    let empty = dir.path().join("empty.pem");
    std::fs::write(&empty, "nothing here\n").expect("write");
    let e = run(&mut CertificateProbe::new(&config_for_file(&empty))).await;
    assert_eq!(e.state, CheckState::Unknown);
    assert!(e.message.starts_with("no certificate in"), "{}", e.message);
}

#[test]
fn spans_for_people() {
    assert_eq!(describe_span(3 * 86_400 - 5), "3 days");
    assert_eq!(describe_span(36 * 3_600), "36 hours");
    assert_eq!(describe_span(90 * 60), "90 minutes");
    assert_eq!(describe_span(60), "1 minute");
}

/// Serves `minted` over TLS on loopback (handshake, then close).
async fn serve(minted: &Minted) -> SocketAddr {
    let server = rustls::ServerConfig::builder_with_provider(net::provider())
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(
            vec![minted.cert.der().clone()],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(minted.key.serialize_der())),
        )
        .expect("server config");
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(server));
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            if let Ok(mut tls) = acceptor.accept(stream).await {
                let _ = tls.shutdown().await;
            }
        }
    });
    addr
}

#[tokio::test]
async fn endpoints_are_measured_whoever_signed_them() {
    let minted = mint(-Span::days(1), Span::days(30));
    let addr = serve(&minted).await;
    let mut config = config_for_file(Path::new("/unused"));
    config.pem_file = None;
    config.address = Some(format!("localhost:{}", addr.port()));

    // Not trusted by the roots: measured all the same, and said so.
    let mut probe = CertificateProbe::new(&config).with_roots(Arc::new(RootCertStore::empty()));
    let e = run(&mut probe).await;
    assert_eq!(e.state, CheckState::Ok, "{}", e.message);
    assert!(
        e.message.starts_with("CN=localhost expires in 30 days"),
        "{}",
        e.message
    );
    assert!(e.message.contains("; not trusted: "), "{}", e.message);
    assert_eq!(e.item, format!("localhost:{}", addr.port()));

    let mut roots = RootCertStore::empty();
    roots.add(minted.ca.clone()).expect("add ca");
    let mut probe = CertificateProbe::new(&config).with_roots(Arc::new(roots));
    let e = run(&mut probe).await;
    assert_eq!(e.state, CheckState::Ok, "{}", e.message);
    assert!(!e.message.contains("not trusted"), "{}", e.message);

    // Nothing listening: CRIT.
    let closed = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    config.address = Some(closed.local_addr().expect("addr").to_string());
    drop(closed);
    let e = run(&mut CertificateProbe::new(&config)).await;
    assert_eq!(e.state, CheckState::Crit);
    assert!(e.message.starts_with("cannot connect to"), "{}", e.message);
}
