//! Sink credentials: from the config, a file or the environment, read once
//! at start, never logged and never returned by the API.
//!
//! In a `[[sinks.<kind>]]` table a secret key takes any of:
//!
//! ```toml
//! password = "inline (fine for a test, not for production)"
//! password = { file = "/etc/forewarn/smtp-password" }   # trailing newline ignored
//! password = { env = "FOREWARN_SMTP_PASSWORD" }
//! ```

use std::path::PathBuf;

use serde::Deserialize;

use crate::{Error, Result};

/// Where a secret comes from, as configured.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum SecretRef {
    Inline(String),
    File { file: PathBuf },
    Env { env: String },
}

impl std::fmt::Debug for SecretRef {
    /// Never the value: the file or the variable it comes from.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SecretRef::Inline(_) => f.write_str("<inline secret>"),
            SecretRef::File { file } => write!(f, "<secret from file {}>", file.display()),
            SecretRef::Env { env } => write!(f, "<secret from ${env}>"),
        }
    }
}

impl SecretRef {
    /// Config problems visible without reading anything (`key` names the
    /// key in the message).
    pub fn problems(&self, key: &str) -> Vec<String> {
        match self {
            SecretRef::Inline(s) if s.is_empty() => vec![format!("{key} must not be empty")],
            SecretRef::Env { env } if env.is_empty() => {
                vec![format!("{key}.env must name an environment variable")]
            }
            _ => Vec::new(),
        }
    }

    /// Reads the secret; the error names `key` and where it looked, never
    /// the value.
    pub fn read(&self, key: &str) -> Result<Secret> {
        let value = match self {
            SecretRef::Inline(s) => s.clone(),
            SecretRef::File { file } => {
                let text = std::fs::read_to_string(file).map_err(|e| {
                    Error::Config(format!("{key}: reading {}: {e}", file.display()))
                })?;
                text.trim_end_matches(['\n', '\r']).to_string()
            }
            SecretRef::Env { env } => std::env::var(env).map_err(|_| {
                Error::Config(format!(
                    "{key}: environment variable {env} is not set (or not UTF-8)"
                ))
            })?,
        };
        if value.is_empty() {
            return Err(Error::Config(format!("{key}: {self:?} is empty")));
        }
        Ok(Secret(value))
    }
}

/// A secret value: its `Debug` and `Display` never show it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<secret>")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> SecretRef {
        #[derive(Deserialize)]
        struct W {
            k: SecretRef,
        }
        toml::from_str::<W>(s).expect("toml").k
    }

    #[test]
    fn reads_inline_file_and_environment() {
        assert_eq!(
            parse("k = \"abc\"").read("k").expect("inline").expose(),
            "abc"
        );
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("s");
        std::fs::write(&path, "from-file\n").expect("write");
        let file = parse(&format!(
            "k = {{ file = {:?} }}",
            path.display().to_string()
        ));
        assert_eq!(file.read("k").expect("file").expose(), "from-file");
        let missing = parse("k = { env = \"FOREWARN_TEST_SECRET_THAT_IS_NOT_SET\" }");
        let err = missing
            .read("sinks.email[0].password")
            .expect_err("unset")
            .to_string();
        assert!(
            err.contains("sinks.email[0].password") && err.contains("not set"),
            "{err}"
        );
    }

    #[test]
    fn debug_never_shows_the_value() {
        let s = parse("k = \"hunter2\"");
        assert!(!format!("{s:?}").contains("hunter2"));
        let v = s.read("k").expect("inline");
        assert!(!format!("{v:?}").contains("hunter2"));
        assert!(format!("{:?}", parse("k = { env = \"X\" }")).contains("$X"));
    }

    #[test]
    fn empty_values_are_config_problems() {
        assert!(!parse("k = \"\"").problems("k").is_empty());
        assert!(!parse("k = { env = \"\" }").problems("k").is_empty());
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("empty");
        std::fs::write(&path, "\n").expect("write");
        let err = parse(&format!(
            "k = {{ file = {:?} }}",
            path.display().to_string()
        ))
        .read("k")
        .expect_err("empty");
        assert!(err.to_string().contains("empty"), "{err}");
    }
}
