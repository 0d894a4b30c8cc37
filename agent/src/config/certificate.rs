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
