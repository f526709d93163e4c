//! The panel secret and the keys derived from it.
//!
//! One random secret (at least 32 bytes, in a file with mode 0600) is the root. Each agent
//! gets its own key, `HKDF-SHA256(secret, info = "outfitter agent v1:<id>")`, which the panel
//! prints into the runner's configuration. Rotating one agent's key bumps its generation
//! `n` (kept in its registration); generation `n ≥ 1` derives with info
//! `"outfitter agent v1:<id>:g<n>"`, and generation 0 is the original derivation, so runners
//! configured before generations existed keep their key. From the agent key, two subkeys: one signs
//! jobs (HMAC-SHA256), one seals sensitive inputs (XChaCha20-Poly1305). A compromised server
//! holds only its own agent key, so it can neither forge jobs for another agent nor read
//! another agent's secrets.

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use hkdf::Hkdf;
use sha2::Sha256;

/// Bytes of a freshly created panel secret.
pub const SECRET_LEN: usize = 32;
/// Fewer bytes than this is refused.
pub const MIN_SECRET_LEN: usize = 32;
/// Bytes of every derived key.
pub const KEY_LEN: usize = 32;

/// A 32-byte key. `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct Key(pub [u8; KEY_LEN]);

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Key(…)")
    }
}

impl Key {
    /// Lowercase hex, as written in configuration files.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Reads a key written by [`Key::to_hex`].
    pub fn from_hex(s: &str) -> Result<Self, KeyError> {
        let bytes = hex::decode(s.trim()).map_err(|_| KeyError::BadKey("not hexadecimal"))?;
        let arr: [u8; KEY_LEN] = bytes
            .try_into()
            .map_err(|_| KeyError::BadKey("must be 32 bytes (64 hex digits)"))?;
        Ok(Key(arr))
    }
}

/// Problems with the secret file or a key.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// Creating, inspecting or reading the secret file failed (also: no randomness).
    #[error("panel secret {path}: {source}")]
    Io {
        /// The secret file's path, as shown to the operator.
        path: String,
        /// What the operating system said.
        source: io::Error,
    },
    /// The secret holds fewer than [`MIN_SECRET_LEN`] bytes: too weak to derive keys from.
    #[error("panel secret {path} holds {len} bytes; at least {MIN_SECRET_LEN} are required")]
    TooShort {
        /// The secret file's path, or `(memory)` for [`PanelSecret::from_bytes`].
        path: String,
        /// How many bytes it holds.
        len: usize,
    },
    /// Group or others may read the secret file; it is refused rather than used, since
    /// anyone who reads it can sign jobs for every agent.
    #[error(
        "panel secret {path} is readable by group or others (mode {mode:o}); run: chmod 600 {path}"
    )]
    TooOpen {
        /// The secret file's path.
        path: String,
        /// Its permission bits (`0o777` mask), printed in octal.
        mode: u32,
    },
    /// A hex key from a configuration file does not decode; the text says why, as the end of
    /// the sentence `agent key …`.
    #[error("agent key {0}")]
    BadKey(&'static str),
}

/// The panel's root secret.
#[derive(Clone)]
pub struct PanelSecret(Vec<u8>);

impl std::fmt::Debug for PanelSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PanelSecret(…)")
    }
}

impl PanelSecret {
    /// Reads the secret file, creating it (random bytes, mode 0600, exclusively) if it does
    /// not exist yet. Whoever needs it first creates it; a race between two creators is
    /// settled by `O_EXCL`, and the loser reads the winner's file.
    pub fn load_or_create(path: &Path) -> Result<Self, KeyError> {
        let io_err = |source| KeyError::Io {
            path: path.display().to_string(),
            source,
        };
        if !path.exists() {
            let mut bytes = [0u8; SECRET_LEN];
            getrandom::fill(&mut bytes).map_err(|e| io_err(io::Error::other(e.to_string())))?;
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                fs::create_dir_all(dir).map_err(io_err)?;
            }
            match fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path)
            {
                Ok(mut f) => {
                    f.write_all(&bytes)
                        .and_then(|()| f.sync_all())
                        .map_err(io_err)?;
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(io_err(e)),
            }
        }
        let meta = fs::metadata(path).map_err(io_err)?;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(KeyError::TooOpen {
                path: path.display().to_string(),
                mode,
            });
        }
        let bytes = fs::read(path).map_err(io_err)?;
        if bytes.len() < MIN_SECRET_LEN {
            return Err(KeyError::TooShort {
                path: path.display().to_string(),
                len: bytes.len(),
            });
        }
        Ok(PanelSecret(bytes))
    }

    /// For tests and benchmarks: a secret from given bytes.
    pub fn from_bytes(bytes: Vec<u8>) -> Result<Self, KeyError> {
        if bytes.len() < MIN_SECRET_LEN {
            return Err(KeyError::TooShort {
                path: "(memory)".into(),
                len: bytes.len(),
            });
        }
        Ok(PanelSecret(bytes))
    }

    /// The key of one agent at generation 0 (never rotated).
    pub fn agent_key(&self, agent_id: &str) -> Key {
        self.agent_key_gen(agent_id, 0)
    }

    /// The panel's own sealing key for the secrets an installation keeps between its jobs
    /// (HKDF info `outfitter installation secrets v1`, which no agent id can spell: agent
    /// infos start with `outfitter agent`). Only the panel holds it; no runner can open them.
    pub fn installation_key(&self) -> Key {
        derive(&self.0, "outfitter installation secrets v1")
    }

    /// The panel's own sealing key for webhook secrets (HKDF info `outfitter webhook secrets
    /// v1`); the sealed secret is bound to the webhook id. No runner can open them.
    pub fn webhook_key(&self) -> Key {
        derive(&self.0, "outfitter webhook secrets v1")
    }

    /// The key of one agent at a key generation (0 until its key is first rotated).
    pub fn agent_key_gen(&self, agent_id: &str, generation: u32) -> Key {
        derive(&self.0, &agent_key_info(agent_id, generation))
    }
}

/// The two working keys of one agent.
#[derive(Debug, Clone)]
pub struct AgentCrypto {
    /// HMAC-SHA256 key of the agent's job envelopes (HKDF info `outfitter job signing v1`).
    pub signing: Key,
    /// XChaCha20-Poly1305 key of the agent's sensitive inputs (HKDF info
    /// `outfitter input sealing v1`); see [`crate::seal`].
    pub sealing: Key,
}

impl AgentCrypto {
    /// Derives both working keys from an agent key: the panel from [`PanelSecret::agent_key_gen`],
    /// the runner from the hex key in its configuration. Separate keys, so a signature can
    /// never double as a ciphertext key.
    pub fn from_agent_key(agent_key: &Key) -> Self {
        Self {
            signing: derive(&agent_key.0, "outfitter job signing v1"),
            sealing: derive(&agent_key.0, "outfitter input sealing v1"),
        }
    }
}

/// The password of an agent's own Redis user (hex, HKDF info `outfitter redis password v1`):
/// derived from its key, so it changes with each rotation and the panel never stores it.
pub fn redis_password(agent_key: &Key) -> String {
    hex::encode(derive(&agent_key.0, "outfitter redis password v1").0)
}

/// The HKDF info of an agent key. Generation 0 keeps the original, unsuffixed form.
fn agent_key_info(agent_id: &str, generation: u32) -> String {
    if generation == 0 {
        format!("outfitter agent v1:{agent_id}")
    } else {
        format!("outfitter agent v1:{agent_id}:g{generation}")
    }
}

fn derive(ikm: &[u8], info: &str) -> Key {
    let hk = Hkdf::<Sha256>::new(Some(b"outfitter"), ikm);
    let mut out = [0u8; KEY_LEN];
    hk.expand(info.as_bytes(), &mut out)
        .expect("32 bytes is a valid HKDF-SHA256 length");
    Key(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_file_is_created_once_with_mode_0600() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/secret");
        let a = PanelSecret::load_or_create(&path).unwrap();
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let b = PanelSecret::load_or_create(&path).unwrap();
        assert_eq!(a.agent_key("x"), b.agent_key("x"));
    }

    #[test]
    fn short_or_open_secret_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret");
        fs::write(&path, b"short").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        assert!(matches!(
            PanelSecret::load_or_create(&path),
            Err(KeyError::TooShort { .. })
        ));
        fs::write(&path, [7u8; 40]).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(
            PanelSecret::load_or_create(&path),
            Err(KeyError::TooOpen { .. })
        ));
    }

    #[test]
    fn agents_get_different_keys_and_subkeys() {
        let s = PanelSecret::from_bytes(vec![1; 32]).unwrap();
        let a = s.agent_key("a");
        assert_ne!(a, s.agent_key("b"));
        let k = AgentCrypto::from_agent_key(&a);
        assert_ne!(k.signing, k.sealing);
        assert_eq!(Key::from_hex(&a.to_hex()).unwrap(), a);
        assert!(Key::from_hex("abcd").is_err());
    }

    // Known answers computed outside this code (RFC 5869 HKDF-SHA256, salt "outfitter",
    // secret 32 × 0x01): they pin the bytes every configured runner depends on.
    const WEB1_G0: &str = "9e919a617947a9568eb42ccefa571e9731375ff61ff357e9cdc1ec9db52d1c1e";
    const WEB1_G1: &str = "4d7b8952a12448dc50378b1e46ceb52885fd29502fff691f49112fe86c263ef8";

    #[test]
    fn generation_zero_is_the_original_derivation() {
        let s = PanelSecret::from_bytes(vec![1; 32]).unwrap();
        assert_eq!(s.agent_key_gen("web-1", 0).to_hex(), WEB1_G0);
        assert_eq!(s.agent_key("web-1"), s.agent_key_gen("web-1", 0));
        assert_eq!(
            s.agent_key("web-1"),
            derive(&[1; 32], "outfitter agent v1:web-1")
        );
    }

    #[test]
    fn each_generation_derives_a_different_key() {
        let s = PanelSecret::from_bytes(vec![1; 32]).unwrap();
        assert_eq!(s.agent_key_gen("web-1", 1).to_hex(), WEB1_G1);
        let keys: Vec<Key> = (0..5).map(|g| s.agent_key_gen("web-1", g)).collect();
        for (i, a) in keys.iter().enumerate() {
            for b in &keys[i + 1..] {
                assert_ne!(a, b);
            }
        }
        // Another agent's generation never collides with this one's.
        assert_ne!(s.agent_key_gen("web-1", 1), s.agent_key_gen("web-2", 1));
        // The suffix cannot be forged by an id: ids never contain ':'.
        assert!(crate::ids::validate_agent_id("web-1:g1").is_err());
    }
}
