//! Password hashing (argon2id, PHC strings) and TOTP codes (RFC 6238:
//! SHA-1, 6 digits, 30 s steps, one step of clock skew either way).

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use totp_rs::{Builder, Secret, Totp};

use crate::{Error, Result};

/// Shortest password accepted (NIST SP 800-63B: at least 8; we ask 12).
pub const MIN_PASSWORD_LEN: usize = 12;

/// An argon2id PHC string for `password`, with a random salt.
pub fn hash(password: &str) -> Result<String> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| Error::Internal(format!("hashing a password: {e}")))
}

/// Whether `password` matches the PHC string `phc`. An unparsable stored
/// hash never matches.
pub fn verify(password: &str, phc: &str) -> bool {
    PasswordHash::new(phc).is_ok_and(|h| {
        Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .is_ok()
    })
}

/// Spends the time a verification takes, so an unknown user answers as
/// slowly as a wrong password.
pub fn verify_nothing(password: &str) {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let phc = DUMMY.get_or_init(|| hash("forewarn-no-such-operator").unwrap_or_default());
    let _ = verify(password, phc);
}

/// Why a new password is refused, if it is.
pub fn check_new(password: &str) -> Result<()> {
    if password.chars().count() < MIN_PASSWORD_LEN {
        return Err(Error::InvalidArgument(format!(
            "password: at least {MIN_PASSWORD_LEN} characters"
        )));
    }
    if password.len() > 1024 {
        return Err(Error::InvalidArgument(
            "password: at most 1024 bytes".into(),
        ));
    }
    Ok(())
}

/// A new random TOTP secret, base32.
pub fn new_totp_secret() -> String {
    let bytes: [u8; 20] = rand::random();
    Secret::from(bytes).to_base32()
}

fn totp(secret_b32: &str, account: &str) -> Result<Totp> {
    let secret = Secret::try_from_base32(secret_b32)
        .map_err(|_| Error::Corrupt("stored TOTP secret is not base32".into()))?;
    Builder::new()
        .with_secret(secret)
        .with_skew(1)
        .with_issuer(Some("Forewarn"))
        .with_account_name(account.replace(':', "_"))
        .build()
        .map_err(|e| Error::Internal(format!("TOTP: {e}")))
}

/// The `otpauth://` URL an authenticator app enrolls from.
pub fn totp_url(secret_b32: &str, account: &str) -> Result<String> {
    totp(secret_b32, account)?
        .to_url()
        .map_err(|e| Error::Internal(format!("TOTP URL: {e}")))
}

/// The time step `code` matches at `unix_secs`, if it does.
pub fn check_totp(secret_b32: &str, code: &str, unix_secs: u64) -> Result<Option<u64>> {
    Ok(totp(secret_b32, "operator")?.check(code.trim(), unix_secs))
}

/// The code for `unix_secs` (tests and the CLI's self-check).
pub fn totp_code(secret_b32: &str, unix_secs: u64) -> Result<String> {
    Ok(totp(secret_b32, "operator")?
        .generate(unix_secs)
        .to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_verifies_its_password_only() {
        let h = hash("correct horse battery").unwrap();
        assert!(h.starts_with("$argon2id$"), "{h}");
        assert!(verify("correct horse battery", &h));
        assert!(!verify("correct horse batterY", &h));
        assert!(!verify("x", "not a phc string"));
    }

    #[test]
    fn short_passwords_are_refused_naming_the_rule() {
        let e = check_new("short").unwrap_err().to_string();
        assert!(e.contains("at least 12"), "{e}");
        check_new("long enough passphrase").unwrap();
    }

    #[test]
    fn totp_codes_match_within_one_step() {
        let s = new_totp_secret();
        let t = 1_800_000_000;
        let code = totp_code(&s, t).unwrap();
        assert_eq!(code.len(), 6);
        assert!(check_totp(&s, &code, t).unwrap().is_some());
        assert!(check_totp(&s, &code, t + 30).unwrap().is_some());
        assert!(check_totp(&s, &code, t + 95).unwrap().is_none());
        assert!(check_totp(&s, "000000x", t).unwrap().is_none());
        assert!(
            totp_url(&s, "alice")
                .unwrap()
                .starts_with("otpauth://totp/")
        );
    }
}
