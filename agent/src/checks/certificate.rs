//! The `certificate` check (`[[checks.certificate]]`): days until a
//! certificate expires, read from a TLS endpoint (`address`: the leaf
//! certificate the server presents) or from a PEM file (`pem_file`: the
//! first certificate in it). WARN under `warn_days`, CRIT under
//! `crit_days`, CRIT once expired or not yet valid.
//!
//! The point is expiry, not trust: the handshake accepts any chain, so an
//! internal or self-signed certificate is still measured. The chain is
//! still verified against the system roots on the side, and a failure is
//! named in the message ("not trusted: …") without changing the state.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio::io::AsyncWriteExt;

use super::limits::{self, MAX_MESSAGE_BYTES};
use super::net::{self, ConnectError};
use super::{BoxFuture, CheckState, Evaluation, Metric, Probe};
use crate::config::CertificateConfig;

/// Every configured certificate check as a probe.
pub fn build(checks: &[CertificateConfig]) -> Vec<Box<dyn Probe>> {
    checks
        .iter()
        .map(|c| Box::new(CertificateProbe::new(c)) as Box<dyn Probe>)
        .collect()
}

/// One `[[checks.certificate]]` instance.
pub struct CertificateProbe {
    config: CertificateConfig,
    /// Roots to judge trust by; `None` = the system roots.
    roots: Option<Arc<RootCertStore>>,
}

/// A leaf certificate as fetched, and whether its chain is trusted.
struct Fetched {
    der: CertificateDer<'static>,
    /// Why the chain is not trusted, when it is not.
    untrusted: Option<String>,
}

impl CertificateProbe {
    pub fn new(config: &CertificateConfig) -> Self {
        Self {
            config: config.clone(),
            roots: None,
        }
    }

    /// Judging trust by `roots` instead of the system's.
    #[cfg(test)]
    fn with_roots(mut self, roots: Arc<RootCertStore>) -> Self {
        self.roots = Some(roots);
        self
    }

    async fn check(&self) -> Evaluation {
        let c = &self.config;
        let fetched = match (&c.address, &c.pem_file) {
            (Some(address), _) => {
                let timeout = Duration::from_millis(c.timeout_ms);
                match tokio::time::timeout(timeout, self.fetch(address)).await {
                    Ok(fetched) => fetched,
                    Err(_) => Err((
                        CheckState::Crit,
                        format!("no TLS handshake with {address} within {} ms", c.timeout_ms),
                    )),
                }
            }
            (None, Some(path)) => read_pem(path).await,
            (None, None) => Err((
                CheckState::Unknown,
                "neither address nor pem_file is set".to_owned(),
            )),
        };
        let (state, message, metrics) = match fetched {
            Ok(fetched) => judge(c, &fetched, SystemTime::now()),
            Err((state, message)) => (state, message, Vec::new()),
        };
        Evaluation {
            item: c.item(),
            state,
            message: limits::clean_text(&message, MAX_MESSAGE_BYTES),
            metrics,
        }
    }

    /// Handshakes with `address` and keeps the leaf certificate.
    async fn fetch(&self, address: &str) -> Result<Fetched, (CheckState, String)> {
        let (host, port) = net::split_host_port(address)
            .ok_or_else(|| (CheckState::Unknown, format!("{address:?} is not host:port")))?;
        let sni = self.config.server_name.as_deref().unwrap_or(host);
        let name = net::server_name(sni).ok_or_else(|| {
            (
                CheckState::Unknown,
                format!("{sni:?} is not a valid TLS server name"),
            )
        })?;
        let roots = match &self.roots {
            Some(roots) => Arc::clone(roots),
            None => net::native_roots().await,
        };
        let verifier = Arc::new(RecordingVerifier::new(roots));
        let config = ClientConfig::builder_with_provider(net::provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| (CheckState::Unknown, e.to_string()))?
            .dangerous()
            .with_custom_certificate_verifier(verifier.clone())
            .with_no_client_auth();
        let tcp = net::connect(host, port)
            .await
            .map_err(|e: ConnectError| (e.state(), e.to_string()))?;
        let mut tls = tokio_rustls::TlsConnector::from(Arc::new(config))
            .connect(name, tcp)
            .await
            .map_err(|e| {
                (
                    CheckState::Crit,
                    format!("TLS handshake with {address} failed: {e}"),
                )
            })?;
        let leaf = tls
            .get_ref()
            .1
            .peer_certificates()
            .and_then(|chain| chain.first())
            .map(|der| der.clone().into_owned());
        // Say goodbye properly; the answer does not matter.
        let _ = tls.shutdown().await;
        let der = leaf.ok_or_else(|| {
            (
                CheckState::Crit,
                format!("{address} presented no certificate"),
            )
        })?;
        Ok(Fetched {
            der,
            untrusted: verifier.outcome(),
        })
    }
}

/// Reads the first certificate of a PEM file.
async fn read_pem(path: &std::path::Path) -> Result<Fetched, (CheckState, String)> {
    let shown = path.display();
    let bytes = tokio::fs::read(path)
        .await
        .map_err(|e| (CheckState::Unknown, format!("cannot read {shown}: {e}")))?;
    let der = CertificateDer::pem_slice_iter(&bytes)
        .next()
        .ok_or_else(|| (CheckState::Unknown, format!("no certificate in {shown}")))?
        .map_err(|e| (CheckState::Unknown, format!("bad PEM in {shown}: {e}")))?;
    Ok(Fetched {
        der,
        untrusted: None,
    })
}

/// State, message and `days_left` for a certificate, at `now`.
fn judge(
    c: &CertificateConfig,
    fetched: &Fetched,
    now: SystemTime,
) -> (CheckState, String, Vec<Metric>) {
    let cert = match x509_parser::parse_x509_certificate(&fetched.der) {
        Ok((_, cert)) => cert,
        Err(e) => {
            return (
                CheckState::Unknown,
                format!("cannot parse the certificate: {e}"),
                Vec::new(),
            );
        }
    };
    let now = match now.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(_) => 0,
    };
    let subject = cert.subject().to_string();
    let subject = if subject.is_empty() {
        "certificate".to_owned()
    } else {
        limits::clean_text(&subject, 200)
    };
    let not_after = cert.validity().not_after.timestamp();
    let not_before = cert.validity().not_before.timestamp();
    #[allow(clippy::cast_precision_loss)]
    let days_left = (not_after - now) as f64 / 86_400.0;
    // Two decimals: a quarter of an hour is visible, noise is not.
    let metrics = vec![Metric::new(
        "days_left",
        (days_left * 100.0).round() / 100.0,
        "days",
    )];
    let (state, mut message) = if now > not_after {
        let ago = describe_span(now - not_after);
        (
            CheckState::Crit,
            format!("{subject} expired {ago} ago ({})", format_date(not_after)),
        )
    } else if now < not_before {
        (
            CheckState::Crit,
            format!("{subject} is not valid before {}", format_date(not_before)),
        )
    } else {
        let state = if days_left < f64::from(c.crit_days) {
            CheckState::Crit
        } else if days_left < f64::from(c.warn_days) {
            CheckState::Warn
        } else {
            CheckState::Ok
        };
        let left = describe_span(not_after - now);
        (
            state,
            format!("{subject} expires in {left} ({})", format_date(not_after)),
        )
    };
    if let Some(why) = &fetched.untrusted {
        message.push_str(&format!("; not trusted: {why}"));
    }
    (state, message, metrics)
}

/// `3 days`, `36 hours`, `12 minutes`: rounded to the nearest unit, in
/// hours below two days and minutes below two hours.
fn describe_span(secs: i64) -> String {
    const HOUR: i64 = 3_600;
    const DAY: i64 = 24 * HOUR;
    let (n, unit) = match secs {
        s if s >= 2 * DAY => ((s + DAY / 2) / DAY, "day"),
        s if s >= 2 * HOUR => ((s + HOUR / 2) / HOUR, "hour"),
        s => ((s + 30) / 60, "minute"),
    };
    if n == 1 {
        format!("1 {unit}")
    } else {
        format!("{n} {unit}s")
    }
}

/// `2026-03-01 12:00 UTC`.
fn format_date(timestamp: i64) -> String {
    let format = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute] UTC");
    time::OffsetDateTime::from_unix_timestamp(timestamp)
        .ok()
        .and_then(|t| t.format(&format).ok())
        .unwrap_or_else(|| format!("@{timestamp}"))
}

impl Probe for CertificateProbe {
    fn kind(&self) -> &'static str {
        "certificate"
    }

    fn item(&self) -> String {
        self.config.item()
    }

    fn interval(&self) -> Duration {
        Duration::from_secs(self.config.interval_secs)
    }

    fn run(&mut self) -> BoxFuture<'_, Vec<Evaluation>> {
        Box::pin(async move { vec![self.check().await] })
    }
}

// === impl RecordingVerifier ===

/// Accepts any certificate chain, but verifies it properly on the side and
/// keeps the reason it is not trusted. Handshake signatures are verified
/// for real: the server does hold the key of the certificate it shows.
#[derive(Debug)]
struct RecordingVerifier {
    provider: Arc<CryptoProvider>,
    /// `None` when there are no roots to verify against.
    webpki: Option<Arc<WebPkiServerVerifier>>,
    outcome: Mutex<Option<String>>,
}

impl RecordingVerifier {
    fn new(roots: Arc<RootCertStore>) -> Self {
        let provider = net::provider();
        let webpki = WebPkiServerVerifier::builder_with_provider(roots, Arc::clone(&provider))
            .build()
            .ok();
        Self {
            provider,
            webpki,
            outcome: Mutex::new(None),
        }
    }

    /// Why the chain was not trusted, if it was not.
    fn outcome(&self) -> Option<String> {
        self.outcome
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl ServerCertVerifier for RecordingVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let outcome = match &self.webpki {
            None => Some("no trusted roots to verify against".to_owned()),
            Some(webpki) => webpki
                .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
                .err()
                .map(|e| e.to_string()),
        };
        *self.outcome.lock().unwrap_or_else(PoisonError::into_inner) = outcome;
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

#[cfg(test)]
mod tests;
