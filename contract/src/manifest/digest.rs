//! The bundle digest: what panel and runner compare to know they mean the same installer.

use sha2::{Digest, Sha256};

/// Domain separation tag; bump the version if the construction ever changes.
const DOMAIN: &[u8] = b"outfitter-bundle-v1\0";

/// Lowercase hex of
/// `sha256("outfitter-bundle-v1\0" || u64_be(len(m)) || m || u64_be(len(s)) || s)`.
/// The lengths make the split between manifest and script unambiguous.
pub fn bundle_digest(manifest_bytes: &[u8], script_bytes: &[u8]) -> String {
    bundle_digest_with_lifecycle(manifest_bytes, script_bytes, &[])
}

/// [`bundle_digest`] of a bundle with lifecycle scripts: after the install script, each
/// lifecycle script as `u64_be(len(field)) || field || u64_be(len(bytes)) || bytes`, in
/// [`super::Manifest::lifecycle_scripts`] order (`field` is the manifest key, such as
/// `uninstall_script`). A bundle without lifecycle scripts keeps the digest it always had;
/// one with them binds every script the runner may run.
pub fn bundle_digest_with_lifecycle(
    manifest_bytes: &[u8],
    script_bytes: &[u8],
    lifecycle: &[(&str, &[u8])],
) -> String {
    let mut hasher = Sha256::new();
    hasher.update(DOMAIN);
    for part in [manifest_bytes, script_bytes] {
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part);
    }
    for (field, bytes) in lifecycle {
        hasher.update((field.len() as u64).to_be_bytes());
        hasher.update(field.as_bytes());
        hasher.update((bytes.len() as u64).to_be_bytes());
        hasher.update(bytes);
    }
    hex::encode(hasher.finalize())
}
