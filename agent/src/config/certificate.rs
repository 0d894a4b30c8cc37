//! `[[checks.certificate]]`: certificates whose expiry the agent watches
//! (`agent/src/checks/certificate.rs`), on a TLS endpoint or in a PEM file.

use std::path::PathBuf;

use serde::Deserialize;

use crate::checks::limits::validate_name;
use crate::checks::net;

/// `[[checks.certificate]]`: one certificate to watch.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CertificateConfig {
    /// The item; defaults to `address` or `pem_file`.
    #[serde(default)]
    pub name: Option<String>,
    /// `host:port` of a TLS endpoint. Either this or `pem_file`.
    #[serde(default)]
    pub address: Option<String>,
    /// SNI name to send; defaults to the host of `address`.
    #[serde(default)]
    pub server_name: Option<String>,
    /// A PEM file whose first certificate is checked.
    #[serde(default)]
    pub pem_file: Option<PathBuf>,
    #[serde(default = "default_warn_days")]
    pub warn_days: u32,
    #[serde(default = "default_crit_days")]
    pub crit_days: u32,
    /// Connect + handshake must fit in this (`address` only).
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    #[serde(default = "default_interval_secs")]
    pub interval_secs: u64,
}

fn default_warn_days() -> u32 {
    21
}

fn default_crit_days() -> u32 {
    7
}

fn default_timeout_ms() -> u64 {
    5000
}

fn default_interval_secs() -> u64 {
    3600
}

impl CertificateConfig {
    /// The item results are reported under.
    pub fn item(&self) -> String {
        match (&self.name, &self.address, &self.pem_file) {
            (Some(name), _, _) => name.clone(),
            (None, Some(address), _) => address.clone(),
            (None, None, Some(path)) => path.display().to_string(),
            (None, None, None) => String::new(),
        }
    }
}

/// Every problem in `[[checks.certificate]]`, each naming its key.
pub fn validate_certificate(checks: &[CertificateConfig], p: &mut Vec<String>) {
    let mut seen = Vec::new();
    for (i, c) in checks.iter().enumerate() {
        let prefix = format!("checks.certificate[{i}]");
        match (&c.address, &c.pem_file) {
            (Some(_), Some(_)) | (None, None) => {
                p.push(format!("{prefix} needs exactly one of address or pem_file"));
            }
            (Some(address), None) if net::split_host_port(address).is_none() => {
                p.push(format!(
                    "{prefix}.address ({address:?}) must be host:port with a port in 1..=65535"
                ));
            }
            (None, Some(path)) if !path.is_absolute() => {
                p.push(format!(
                    "{prefix}.pem_file ({}) must be an absolute path",
                    path.display()
                ));
            }
            _ => {}
        }
        if c.server_name.is_some() && c.address.is_none() {
            p.push(format!("{prefix}.server_name needs an address"));
        }
        if let Some(name) = &c.server_name
            && net::server_name(name).is_none()
        {
            p.push(format!(
                "{prefix}.server_name ({name:?}) is not a valid TLS server name"
            ));
        }
        let item = c.item();
        if !item.is_empty() || c.name.is_some() {
            validate_name(&prefix, &item, &mut seen, p);
        }
        if c.warn_days <= c.crit_days {
            p.push(format!(
                "{prefix}.warn_days ({}) must be above {prefix}.crit_days ({})",
                c.warn_days, c.crit_days
            ));
        }
        if c.timeout_ms == 0 {
            p.push(format!("{prefix}.timeout_ms must be greater than 0"));
        }
        if c.interval_secs == 0 {
            p.push(format!("{prefix}.interval_secs must be greater than 0"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> CertificateConfig {
        CertificateConfig {
            name: None,
            address: Some("intranet.example.com:443".into()),
            server_name: None,
            pem_file: None,
            warn_days: 21,
            crit_days: 7,
            timeout_ms: 5000,
            interval_secs: 3600,
        }
    }

    #[test]
    fn validation_names_every_bad_key() {
        let mut p = Vec::new();
        validate_certificate(&[config()], &mut p);
        assert_eq!(p, Vec::<String>::new());
        assert_eq!(config().item(), "intranet.example.com:443");

        let both = CertificateConfig {
            pem_file: Some("/etc/ssl/site.pem".into()),
            ..config()
        };
        let relative = CertificateConfig {
            address: None,
            pem_file: Some("site.pem".into()),
            server_name: Some("x".into()),
            warn_days: 7,
            ..config()
        };
        let twice = config();
        validate_certificate(&[both, relative, twice, config()], &mut p);
        let all = p.join("\n");
        for expected in [
            "checks.certificate[0] needs exactly one of address or pem_file",
            "checks.certificate[1].pem_file (site.pem) must be an absolute path",
            "checks.certificate[1].server_name needs an address",
            "checks.certificate[1].warn_days (7) must be above checks.certificate[1].crit_days (7)",
            "checks.certificate[3].name (\"intranet.example.com:443\") is used twice",
        ] {
            assert!(all.contains(expected), "missing {expected:?} in:\n{all}");
        }
    }
}
