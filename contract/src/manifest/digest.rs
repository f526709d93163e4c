//! The bundle digest: what panel and runner compare to know they mean the same installer.

use sha2::{Digest, Sha256};

/// Domain separation tag; bump the version if the construction ever changes.
const DOMAIN: &[u8] = b"outfitter-bundle-v1\0";

/// Lowercase hex of
/// `sha256("outfitter-bundle-v1\0" || u64_be(len(m)) || m || u64_be(len(s)) || s)`.
/// The lengths make the split between manifest and script unambiguous.
pub fn bundle_digest(manifest_bytes: &[u8], script_bytes: &[u8]) -> String {
    let mut hasher = Sha256::new();
    hasher.update(DOMAIN);
    hasher.update((manifest_bytes.len() as u64).to_be_bytes());
    hasher.update(manifest_bytes);
    hasher.update((script_bytes.len() as u64).to_be_bytes());
    hasher.update(script_bytes);
    hex::encode(hasher.finalize())
}
