//! Client certificate renewal: before the certificate expires, a fresh key
//! pair is generated, its CSR sent to `Ingest/Renew` over mutual TLS with
//! the current identity, and the returned certificate stored beside the new
//! key ([`StateDir::replace_key_pair`]: the old pair is replaced only once
//! the new one is complete on disk). The new credentials are then published
//! on a `watch` channel; the session closes its stream gracefully and
//! reconnects with them (whatever was not acknowledged is resent from the
//! spool, so no report is lost).
//!
//! Renewal is due at `renew_at_fraction` (default 0.66) of the certificate's
//! lifetime, counted from when the agent received it (the collector backdates
//! `notBefore` a little for clock skew). Failures are retried with backoff
//! until the certificate expires; after that only re-enrolling helps, which
//! is logged as an error on every attempt.

use std::time::{Duration, SystemTime};

use forewarn_proto::v1 as pb;
use forewarn_proto::v1::ingest_client::IngestClient;
use rcgen::{CertificateParams, KeyPair, PublicKeyData};
use tokio::sync::watch;
use tracing::{error, info, warn};

use crate::backoff::Backoff;
use crate::collectors::{Collectors, Target};
use crate::endpoint::{self, Tls};
use crate::error::{Error, Result, chain};
use crate::identity::{Credentials, StateDir};

/// Where and how often to renew.
#[derive(Debug, Clone)]
pub struct RenewConfig {
    pub state: StateDir,
    /// Tried address by address until one answers.
    pub collectors: Collectors,
    pub server_name: String,
    /// Fraction of the lifetime after which the certificate is renewed.
    pub fraction: f64,
}

/// When a certificate valid `not_before..not_after`, received at
/// `received`, is due for renewal: `fraction` of the way from the later of
/// `not_before` and `received` to `not_after`.
pub fn renew_at(
    not_before: SystemTime,
    not_after: SystemTime,
    received: SystemTime,
    fraction: f64,
) -> SystemTime {
    let start = not_before.max(received).min(not_after);
    let lifetime = not_after.duration_since(start).unwrap_or_default();
    start + lifetime.mul_f64(fraction.clamp(0.0, 1.0))
}

/// `notBefore` and `notAfter` of the first certificate (the leaf) in a PEM
/// chain.
pub fn validity(chain_pem: &str) -> Result<(SystemTime, SystemTime)> {
    let leaf = leaf(chain_pem)?;
    let cert = leaf
        .parse_x509()
        .map_err(|e| Error::Protocol(format!("unreadable certificate: {e}")))?;
    let at = |secs: i64| match u64::try_from(secs) {
        Ok(s) => SystemTime::UNIX_EPOCH + Duration::from_secs(s),
        Err(_) => SystemTime::UNIX_EPOCH,
    };
    let v = cert.validity();
    Ok((at(v.not_before.timestamp()), at(v.not_after.timestamp())))
}

fn leaf(chain_pem: &str) -> Result<x509_parser::pem::Pem> {
    x509_parser::pem::parse_x509_pem(chain_pem.as_bytes())
        .map(|(_, pem)| pem)
        .map_err(|e| Error::Protocol(format!("no certificate in chain: {e}")))
}

/// Renews whenever due until `shutdown`, publishing each new identity on
/// `renewed`. Returns only on shutdown (the session relies on `renewed`
/// staying open).
pub async fn run(
    config: RenewConfig,
    renewed: watch::Sender<Credentials>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut current = renewed.borrow().clone();
    // The certificate on disk was received when it was written.
    let mut received = tokio::fs::metadata(config.state.certificate_path())
        .await
        .and_then(|m| m.modified())
        .unwrap_or(SystemTime::UNIX_EPOCH);
    let mut backoff = Backoff::default();
    loop {
        let (not_before, not_after) = match validity(&current.chain_pem) {
            Ok(v) => v,
            Err(e) => {
                error!(error = %chain(&e), "cannot read the client certificate; no renewal");
                let _ = shutdown.wait_for(|s| *s).await;
                return;
            }
        };
        let due = renew_at(not_before, not_after, received, config.fraction);
        let wait = due.duration_since(SystemTime::now()).unwrap_or_default();
        info!(
            renew_in_secs = wait.as_secs(),
            expires_in_secs = not_after
                .duration_since(SystemTime::now())
                .unwrap_or_default()
                .as_secs(),
            "client certificate renewal scheduled"
        );
        if !sleep_or_stop(wait, &mut shutdown).await {
            return;
        }
        loop {
            match renew_once(&config, &current).await {
                Ok(next) => {
                    current = next;
                    received = SystemTime::now();
                    backoff.reset();
                    info!("client certificate renewed");
                    renewed.send_replace(current.clone());
                    break;
                }
                Err(e) if SystemTime::now() >= not_after => {
                    error!(error = %chain(&e), "certificate expired; re-enroll (forewarn-agent enroll --force)");
                }
                Err(e) => {
                    warn!(error = %chain(&e), "certificate renewal failed; retrying");
                }
            }
            if !sleep_or_stop(backoff.next_delay(), &mut shutdown).await {
                return;
            }
        }
    }
}

/// False when the agent is asked to stop first.
async fn sleep_or_stop(wait: Duration, shutdown: &mut watch::Receiver<bool>) -> bool {
    tokio::select! {
        () = tokio::time::sleep(wait) => true,
        _ = shutdown.wait_for(|s| *s) => false,
    }
}

/// One renewal: new key + CSR, `Renew` with the current identity, the new
/// pair stored. Nothing on disk changes unless the collector answered with
/// a certificate for the new key.
async fn renew_once(config: &RenewConfig, current: &Credentials) -> Result<Credentials> {
    let key = KeyPair::generate()?;
    let csr_pem = CertificateParams::default()
        .serialize_request(&key)?
        .pem()?;
    let chain_pem = config
        .collectors
        .first_answer(|target| renew_at_target(target, config, current, csr_pem.clone()))
        .await?;
    check_for_key(&chain_pem, &key)?;
    let next = Credentials {
        key_pem: key.serialize_pem(),
        chain_pem,
        ..current.clone()
    };
    let (state, key_pem, chain_pem) = (
        config.state.clone(),
        next.key_pem.clone(),
        next.chain_pem.clone(),
    );
    tokio::task::spawn_blocking(move || state.replace_key_pair(&key_pem, &chain_pem)).await??;
    Ok(next)
}

/// `Ingest/Renew` at one address; the new chain.
async fn renew_at_target(
    target: Target,
    config: &RenewConfig,
    current: &Credentials,
    csr_pem: String,
) -> Result<String> {
    let channel = endpoint::connect(
        &target.dial(),
        &Tls {
            ca_pem: &current.ca_pem,
            server_name: &config.server_name,
            client: Some((&current.chain_pem, &current.key_pem)),
        },
    )
    .await?;
    let response = IngestClient::new(channel)
        .renew(pb::RenewRequest { csr_pem })
        .await
        .map_err(|status| Error::rejected("renewal", &status))?
        .into_inner();
    Ok(response.certificate_chain_pem)
}

/// The leaf of `chain_pem` certifies `key`.
fn check_for_key(chain_pem: &str, key: &KeyPair) -> Result<()> {
    let leaf = leaf(chain_pem)?;
    let cert = leaf
        .parse_x509()
        .map_err(|e| Error::Protocol(format!("unreadable certificate: {e}")))?;
    if cert.public_key().raw != key.subject_public_key_info().as_slice() {
        return Err(Error::Protocol(
            "renewed certificate is not for the new key".to_owned(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn due_at_the_fraction_of_the_lifetime() {
        // 7 days, received at notBefore: due after 2/3 of them
        let week = 7 * 86_400;
        assert_eq!(
            renew_at(t(1000), t(1000 + week), t(1000), 0.66),
            t(1000) + Duration::from_secs(week).mul_f64(0.66)
        );
        assert_eq!(renew_at(t(0), t(100), t(0), 0.5), t(50));
    }

    #[test]
    fn backdated_not_before_counts_from_receipt() {
        // notBefore 5 min before issuance, 60 s lifetime after it
        assert_eq!(renew_at(t(700), t(1060), t(1000), 0.1), t(1006));
        // received before notBefore (clock skew): notBefore wins
        assert_eq!(renew_at(t(1000), t(1100), t(900), 0.5), t(1050));
    }

    #[test]
    fn never_after_expiry() {
        // received after expiry (copied file): due at once
        assert_eq!(renew_at(t(0), t(100), t(500), 0.66), t(100));
        assert_eq!(renew_at(t(0), t(100), t(0), 2.0), t(100));
    }

    #[test]
    fn renew_at_fraction_is_validated() {
        let path = std::path::Path::new("agent.toml");
        let parse = |text: &str| crate::config::Config::parse(text, path);
        assert_eq!(parse("").expect("defaults").renew_at_fraction, 0.66);
        assert_eq!(
            parse("renew_at_fraction = 0.1\n")
                .expect("valid")
                .renew_at_fraction,
            0.1
        );
        assert!(
            parse("renew_at_fraction = 0.1\n")
                .expect("valid")
                .validate()
                .is_empty()
        );
        for bad in ["0.05", "0.96", "2.0"] {
            let problems = parse(&format!("renew_at_fraction = {bad}\n"))
                .expect("parses")
                .validate();
            assert!(
                problems.iter().any(|p| p.starts_with("renew_at_fraction")),
                "{problems:?}"
            );
        }
    }

    #[test]
    fn validity_and_key_come_from_the_leaf() {
        let key = KeyPair::generate().expect("key");
        let mut params = CertificateParams::new(vec!["agent".to_owned()]).expect("params");
        params.not_before = time::OffsetDateTime::from_unix_timestamp(1_000).expect("time");
        params.not_after = time::OffsetDateTime::from_unix_timestamp(2_000).expect("time");
        let cert = params.self_signed(&key).expect("cert");
        let other = KeyPair::generate().expect("key");
        let ca = CertificateParams::new(vec!["ca".to_owned()])
            .expect("params")
            .self_signed(&other)
            .expect("ca");
        let chain = format!("{}{}", cert.pem(), ca.pem());
        assert_eq!(validity(&chain).expect("validity"), (t(1_000), t(2_000)));
        check_for_key(&chain, &key).expect("same key");
        assert!(check_for_key(&chain, &other).is_err());
        assert!(validity("garbage").is_err());
    }
}
