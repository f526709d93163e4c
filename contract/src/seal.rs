//! Sealing sensitive inputs for one agent: XChaCha20-Poly1305 under the agent's sealing key,
//! with the job id as associated data so a sealed blob cannot be moved to another job.

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};

use crate::keys::Key;

const NONCE_LEN: usize = 24;

/// A sealed blob that cannot be opened.
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    /// The blob is not standard base64, so it was never produced by [`seal`].
    #[error("sealed inputs are not valid base64")]
    Encoding,
    /// Shorter than a 24-byte nonce plus the 16-byte Poly1305 tag.
    #[error("sealed inputs are too short")]
    Truncated,
    /// Authentication failed: another agent's key, another job id (the associated data), or
    /// altered bytes. The three cannot be told apart, by design.
    #[error("sealed inputs do not open with this agent's key for this job")]
    Forged,
    /// It opened, but the plaintext is not a JSON object of input name to value.
    #[error("sealed inputs are not a JSON object of strings")]
    Shape,
    /// The operating system gave no random bytes for the nonce (sealing only).
    #[error("no randomness available: {0}")]
    Random(String),
}

/// Seals `values` (name → value) for the agent holding `key`, bound to `job_id`.
pub fn seal(
    key: &Key,
    job_id: &str,
    values: &BTreeMap<String, serde_json::Value>,
) -> Result<String, SealError> {
    let mut nonce = [0u8; NONCE_LEN];
    getrandom::fill(&mut nonce).map_err(|e| SealError::Random(e.to_string()))?;
    let plain = serde_json::to_vec(values).expect("a map of JSON values serializes");
    let cipher = XChaCha20Poly1305::new_from_slice(&key.0).expect("32-byte key");
    let sealed = cipher
        .encrypt(
            &XNonce::from(nonce),
            Payload {
                msg: &plain,
                aad: job_id.as_bytes(),
            },
        )
        .expect("encryption of a small buffer cannot fail");
    let mut out = nonce.to_vec();
    out.extend_from_slice(&sealed);
    Ok(B64.encode(out))
}

/// Opens what [`seal`] produced.
pub fn open(
    key: &Key,
    job_id: &str,
    sealed: &str,
) -> Result<BTreeMap<String, serde_json::Value>, SealError> {
    let bytes = B64.decode(sealed).map_err(|_| SealError::Encoding)?;
    if bytes.len() < NONCE_LEN + 16 {
        return Err(SealError::Truncated);
    }
    let (nonce, body) = bytes.split_at(NONCE_LEN);
    let nonce: [u8; NONCE_LEN] = nonce.try_into().expect("split at NONCE_LEN");
    let cipher = XChaCha20Poly1305::new_from_slice(&key.0).expect("32-byte key");
    let plain = cipher
        .decrypt(
            &XNonce::from(nonce),
            Payload {
                msg: body,
                aad: job_id.as_bytes(),
            },
        )
        .map_err(|_| SealError::Forged)?;
    serde_json::from_slice(&plain).map_err(|_| SealError::Shape)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values() -> BTreeMap<String, serde_json::Value> {
        BTreeMap::from([("db_password".to_owned(), serde_json::json!("hunter2"))])
    }

    #[test]
    fn sealed_values_open_with_the_same_key_and_job() {
        let k = Key([9; 32]);
        let s = seal(&k, "job-1", &values()).unwrap();
        assert!(!s.contains("hunter2"));
        assert_eq!(open(&k, "job-1", &s).unwrap(), values());
    }

    #[test]
    fn sealed_values_do_not_open_for_another_job_or_key() {
        let k = Key([9; 32]);
        let s = seal(&k, "job-1", &values()).unwrap();
        assert!(matches!(open(&k, "job-2", &s), Err(SealError::Forged)));
        assert!(matches!(
            open(&Key([8; 32]), "job-1", &s),
            Err(SealError::Forged)
        ));
        assert!(matches!(open(&k, "job-1", "!!"), Err(SealError::Encoding)));
        assert!(matches!(
            open(&k, "job-1", "AAAA"),
            Err(SealError::Truncated)
        ));
    }
}
