//! Bearer secrets (enrollment tokens, API keys): generation and hashing.
//!
//! Secrets are 256 random bits, so a plain SHA-256 is the right storage hash
//! (a slow password hash buys nothing against a key that cannot be guessed).
//! Only the hash is stored; the secret is shown once.

use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};

/// Prefix of enrollment tokens.
pub const TOKEN_PREFIX: &str = "fwt_";
/// Prefix of API keys.
pub const API_KEY_PREFIX: &str = "fwk_";

/// A new random secret: `prefix` + 43 base64url characters.
pub fn generate(prefix: &str) -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!(
        "{prefix}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    )
}

/// The stored form of a secret: lowercase hex SHA-256.
pub fn hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_unique_and_hash_stably() {
        let a = generate(TOKEN_PREFIX);
        let b = generate(TOKEN_PREFIX);
        assert_ne!(a, b);
        assert!(a.starts_with("fwt_"));
        assert_eq!(a.len(), 4 + 43);
        assert_eq!(hash(&a), hash(&a));
        assert_ne!(hash(&a), hash(&b));
        assert_eq!(hash(&a).len(), 64);
    }
}
