//! `[update]`: signed self-update from the collector (see `update/`).

use serde::Deserialize;

/// `[update]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UpdateConfig {
    /// Take updates the collector offers (each verified before use).
    pub enabled: bool,
    /// The release signing key (minisign public key, `RW…`) updates must be
    /// signed with. Unset: the key compiled in from
    /// `FOREWARN_RELEASE_PUBLIC_KEY` at build time; with neither, every
    /// offer is refused.
    pub public_key: Option<String>,
    /// How long the new binary has to connect and report in its trial
    /// before the update is rolled back.
    pub trial_timeout_secs: u64,
    /// Offers bigger than this are refused.
    pub max_download_bytes: u64,
}

impl Default for UpdateConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            public_key: None,
            trial_timeout_secs: 60,
            max_download_bytes: 128 << 20,
        }
    }
}

impl UpdateConfig {
    /// The key updates must be signed with: the configured one, else the
    /// compiled-in one.
    pub fn release_key(&self) -> Option<&str> {
        self.public_key
            .as_deref()
            .or(crate::RELEASE_PUBLIC_KEY)
            .map(str::trim)
            .filter(|k| !k.is_empty())
    }
}

/// Every bad value of `[update]`, each naming its key.
pub fn validate_update(c: &UpdateConfig, p: &mut Vec<String>) {
    if let Some(k) = &c.public_key
        && let Err(e) = minisign_verify::PublicKey::from_base64(k.trim())
    {
        p.push(format!(
            "update.public_key: not a minisign public key ({e})"
        ));
    }
    if !(1..=3600).contains(&c.trial_timeout_secs) {
        p.push(format!(
            "update.trial_timeout_secs ({}) must be between 1 and 3600",
            c.trial_timeout_secs
        ));
    }
    if c.max_download_bytes < 1024 {
        p.push(format!(
            "update.max_download_bytes ({}) must be at least 1024",
            c.max_download_bytes
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_every_bad_key_named() {
        let c: UpdateConfig = toml::from_str("").expect("parses");
        assert!(c.enabled);
        assert_eq!(c.trial_timeout_secs, 60);
        let mut p = Vec::new();
        validate_update(&c, &mut p);
        assert!(p.is_empty(), "{p:?}");
        let c: UpdateConfig = toml::from_str(
            "public_key = \"RWbogus\"\ntrial_timeout_secs = 0\nmax_download_bytes = 1",
        )
        .expect("parses");
        validate_update(&c, &mut p);
        assert_eq!(p.len(), 3, "{p:?}");
        assert!(p[0].starts_with("update.public_key"), "{p:?}");
        assert!(p[1].starts_with("update.trial_timeout_secs"), "{p:?}");
        assert!(p[2].starts_with("update.max_download_bytes"), "{p:?}");
        assert!(toml::from_str::<UpdateConfig>("enable = true").is_err());
    }
}
