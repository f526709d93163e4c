//! The cryptography of webhooks: the signature receivers check, the deterministic delivery
//! id, and new secrets.

use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};

use super::error::{Error, Result};

/// The `X-Outfitter-Signature` value: `sha256=<hex HMAC-SHA256(secret, body)>`, over the raw
/// body exactly as sent (which carries the delivery id and the timestamp, so a receiver that
/// checks both refuses replays).
pub fn signature(secret: &str, body: &[u8]) -> String {
    let mut mac =
        <Hmac<Sha256> as KeyInit>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// The delivery id of one occurrence for one webhook: the same (webhook, event key) always
/// gives the same id, so a second emit of the occurrence finds the delivery already there.
pub fn delivery_id(webhook_id: &str, event_key: &str) -> String {
    let mut h = Sha256::new();
    h.update(b"outfitter webhook delivery v1\n");
    h.update(webhook_id.as_bytes());
    h.update(b"\n");
    h.update(event_key.as_bytes());
    format!("dl_{}", &hex::encode(h.finalize())[..32])
}

/// A new secret: 32 random bytes, hex, with the prefix `whsec_`.
pub fn new_secret() -> Result<String> {
    random_hex("whsec_", 32)
}

/// A new webhook id: `wh_` and 16 hex digits.
pub fn new_webhook_id() -> Result<String> {
    random_hex("wh_", 8)
}

fn random_hex(prefix: &str, n: usize) -> Result<String> {
    let mut bytes = vec![0u8; n];
    getrandom::fill(&mut bytes).map_err(|e| Error::Internal(format!("no randomness: {e}")))?;
    Ok(format!("{prefix}{}", hex::encode(bytes)))
}

/// A fraction in [0, 1) for jitter; 0.5 when the system has no randomness to give.
pub fn jitter_fraction() -> f64 {
    let mut b = [0u8; 4];
    match getrandom::fill(&mut b) {
        Ok(()) => f64::from(u32::from_le_bytes(b)) / (f64::from(u32::MAX) + 1.0),
        Err(_) => 0.5,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_is_hmac_sha256_hex_of_the_body() {
        // RFC 4231 test case 2.
        assert_eq!(
            signature("Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn delivery_ids_are_deterministic_per_webhook_and_key() {
        let a = delivery_id("wh_1", "job.failed:j1:1");
        assert_eq!(a, delivery_id("wh_1", "job.failed:j1:1"));
        assert_ne!(a, delivery_id("wh_2", "job.failed:j1:1"));
        assert_ne!(a, delivery_id("wh_1", "job.failed:j1:2"));
        assert!(a.starts_with("dl_") && a.len() == 35);
    }
}
