//! Trust on first use, done safely: the operator gives the collector CA's
//! SHA-256 fingerprint; the agent fetches the certificate chain the
//! collector presents, keeps the certificate that matches the pin and from
//! then on trusts that CA only.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use base64::Engine;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use crate::endpoint::{CONNECT_TIMEOUT, CollectorUrl};
use crate::error::{Error, Result};

/// A SHA-256 fingerprint of a certificate's DER encoding.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint([u8; 32]);

impl Fingerprint {
    /// The fingerprint of `der`.
    pub fn of(der: &[u8]) -> Self {
        Self(Sha256::digest(der).into())
    }
}

impl FromStr for Fingerprint {
    type Err = Error;

    /// Accepts `sha256:` + 64 hex digits, with or without the prefix, with
    /// or without `:` separators, in any case.
    fn from_str(input: &str) -> Result<Self> {
        let bad = |reason: &str| Error::Fingerprint {
            input: input.to_owned(),
            reason: reason.to_owned(),
        };
        let trimmed = input.trim();
        let body = match trimmed.get(..7) {
            Some(prefix) if prefix.eq_ignore_ascii_case("sha256:") => &trimmed[7..],
            _ => trimmed,
        };
        let hex_digits: String = body.chars().filter(|c| *c != ':').collect();
        if hex_digits.len() != 64 {
            return Err(bad("expected sha256: and 64 hex digits"));
        }
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(&hex_digits, &mut bytes).map_err(|_| bad("not hexadecimal"))?;
        Ok(Self(bytes))
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", hex::encode(self.0))
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// The certificate in `chain` whose fingerprint is `pin`.
pub fn select<'a>(
    chain: &'a [CertificateDer<'a>],
    pin: &Fingerprint,
) -> Result<&'a CertificateDer<'a>> {
    chain
        .iter()
        .find(|cert| Fingerprint::of(cert) == *pin)
        .ok_or_else(|| Error::FingerprintMismatch {
            expected: pin.to_string(),
            presented: if chain.is_empty() {
                "no certificate".to_owned()
            } else {
                chain
                    .iter()
                    .map(|c| Fingerprint::of(c).to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            },
        })
}

/// DER to PEM (`CERTIFICATE`, 64-column base64).
pub fn to_pem(der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut pem = String::from("-----BEGIN CERTIFICATE-----\n");
    for line in b64.as_bytes().chunks(64) {
        pem.push_str(&String::from_utf8_lossy(line));
        pem.push('\n');
    }
    pem.push_str("-----END CERTIFICATE-----\n");
    pem
}

/// Connects to the collector, reads the chain it presents and returns the
/// certificate matching `pin`, as PEM.
pub async fn fetch_pinned_ca(
    url: &CollectorUrl,
    server_name: &str,
    pin: &Fingerprint,
) -> Result<String> {
    let chain = tokio::time::timeout(CONNECT_TIMEOUT, presented_chain(url, server_name))
        .await
        .map_err(|_| Error::Connect {
            url: url.to_string(),
            source: std::io::Error::new(std::io::ErrorKind::TimedOut, "tls handshake timed out"),
        })??;
    select(&chain, pin).map(|cert| to_pem(cert))
}

async fn presented_chain(
    url: &CollectorUrl,
    server_name: &str,
) -> Result<Vec<CertificateDer<'static>>> {
    let connect_error = |source| Error::Connect {
        url: url.to_string(),
        source,
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| connect_error(std::io::Error::other(e)))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AcceptAnyChain { provider }))
        .with_no_client_auth();
    // The collector is a gRPC server: offer h2 as tonic will.
    config.alpn_protocols = vec![b"h2".to_vec()];
    let name = ServerName::try_from(server_name.to_owned())
        .map_err(|e| connect_error(std::io::Error::new(std::io::ErrorKind::InvalidInput, e)))?;
    let tcp = TcpStream::connect((url.host(), url.port()))
        .await
        .map_err(connect_error)?;
    let mut tls = TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .map_err(connect_error)?;
    let chain = tls
        .get_ref()
        .1
        .peer_certificates()
        .map(<[_]>::to_vec)
        .unwrap_or_default();
    // Best effort: tell the collector we are done rather than just hanging up.
    let _ = tls.shutdown().await;
    Ok(chain)
}

/// Accepts whatever chain the collector presents: the pin is checked after
/// the handshake, and the certificate is verified properly (against the
/// pinned CA, with the server name) by the enrollment call that follows.
/// Handshake signatures are still verified, so the peer holds the key of
/// the certificate it presented.
#[derive(Debug)]
struct AcceptAnyChain {
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for AcceptAnyChain {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
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
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
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
mod tests {
    use rustls::pki_types::pem::PemObject;

    use super::*;

    const HEX: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

    #[test]
    fn parses_every_accepted_spelling() {
        let canonical: Fingerprint = format!("sha256:{HEX}").parse().expect("canonical");
        let upper = format!("SHA256:{}", HEX.to_uppercase());
        let colons = HEX
            .as_bytes()
            .chunks(2)
            .map(|p| String::from_utf8_lossy(p).into_owned())
            .collect::<Vec<_>>()
            .join(":");
        for spelling in [
            HEX.to_owned(),
            upper,
            colons.clone(),
            format!("sha256:{colons}"),
        ] {
            let fp: Fingerprint = spelling.parse().expect("accepted");
            assert_eq!(fp, canonical, "{spelling}");
        }
        assert_eq!(canonical.to_string(), format!("sha256:{HEX}"));
    }

    #[test]
    fn rejects_bad_fingerprints() {
        for bad in [
            "",
            "sha256:",
            "sha256:abcd",
            &format!("sha1:{HEX}"),
            &HEX.replace('0', "g"),
        ] {
            assert!(bad.parse::<Fingerprint>().is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn selects_the_pinned_certificate_or_names_what_was_presented() {
        let ca_key = rcgen::KeyPair::generate().expect("key");
        let ca = rcgen::CertificateParams::new(Vec::<String>::new())
            .expect("params")
            .self_signed(&ca_key)
            .expect("ca");
        let server_key = rcgen::KeyPair::generate().expect("key");
        let server = rcgen::CertificateParams::new(vec!["collector".to_owned()])
            .expect("params")
            .self_signed(&server_key)
            .expect("server");
        let chain = vec![server.der().clone(), ca.der().clone()];

        let pin = Fingerprint::of(ca.der());
        let picked = select(&chain, &pin).expect("pinned CA is in the chain");
        assert_eq!(picked, ca.der());

        // PEM round trip gives the same certificate
        let pem = to_pem(picked);
        let back = CertificateDer::from_pem_slice(pem.as_bytes()).expect("pem");
        assert_eq!(Fingerprint::of(&back), pin);

        let other = Fingerprint::of(b"something else");
        let err = select(&chain, &other).expect_err("mismatch").to_string();
        assert!(
            err.starts_with("collector CA fingerprint mismatch: expected sha256:"),
            "{err}"
        );
        assert!(
            err.contains(&Fingerprint::of(ca.der()).to_string()),
            "{err}"
        );
        assert!(
            err.contains(&Fingerprint::of(server.der()).to_string()),
            "{err}"
        );
    }
}
