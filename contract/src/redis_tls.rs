//! TLS to Redis (`rediss://`), as the panel and the runner both set it: a CA file to trust
//! instead of the system's roots, and a client certificate with its key for servers that ask
//! for one (`tls-auth-clients yes`). Checked and read here, once, with errors that name the
//! setting; each program then hands the PEM bytes to its Redis client.

use std::path::{Path, PathBuf};

/// The three settings, each optional.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RedisTls {
    /// `redis_ca_file`: PEM certificates to trust for the server (else the system's roots).
    pub ca_file: Option<PathBuf>,
    /// `redis_client_cert`: PEM certificate this program presents.
    pub client_cert: Option<PathBuf>,
    /// `redis_client_key`: PEM private key of `client_cert`.
    pub client_key: Option<PathBuf>,
}

/// What the files hold.
#[derive(Clone, PartialEq, Eq)]
pub struct RedisTlsPem {
    /// The CA certificates, when a CA file is set.
    pub root_cert: Option<Vec<u8>>,
    /// The client certificate and key, when both are set.
    pub client: Option<(Vec<u8>, Vec<u8>)>,
}

impl std::fmt::Debug for RedisTlsPem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The key is a secret; say only what is there.
        f.debug_struct("RedisTlsPem")
            .field("root_cert", &self.root_cert.as_ref().map(Vec::len))
            .field("client", &self.client.is_some())
            .finish()
    }
}

/// Why the TLS settings cannot be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RedisTlsError {
    /// A TLS file is set but the URL is not `rediss://`: the file would be ignored.
    #[error("{field} is set but redis_url {url:?} is not rediss://; TLS settings need a TLS URL")]
    NotTls {
        /// The setting that is set.
        field: &'static str,
        /// The URL, credentials hidden.
        url: String,
    },
    /// One of the client certificate and key without the other.
    #[error(
        "{set} is set without {missing}: a client certificate needs its key and the key its certificate"
    )]
    Half {
        /// The one that is set.
        set: &'static str,
        /// The one that is not.
        missing: &'static str,
    },
    /// A file that cannot be read or holds no PEM block.
    #[error("{field} {path}: {message}")]
    File {
        /// The setting.
        field: &'static str,
        /// The path as given.
        path: String,
        /// What went wrong.
        message: String,
    },
}

/// Whether `url` asks for TLS.
pub fn is_tls_url(url: &str) -> bool {
    url.trim_start()
        .to_ascii_lowercase()
        .starts_with("rediss://")
}

/// `url` with any password replaced by `***`, for messages.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let creds = &url[scheme + 3..at];
            let user = creds.split_once(':').map_or(creds, |(u, _)| u);
            format!("{}{user}:***{}", &url[..scheme + 3], &url[at..])
        }
        _ => url.to_owned(),
    }
}

fn read_pem(field: &'static str, path: &Path) -> Result<Vec<u8>, RedisTlsError> {
    let err = |message: String| RedisTlsError::File {
        field,
        path: path.display().to_string(),
        message,
    };
    let bytes = std::fs::read(path).map_err(|e| err(format!("cannot be read: {e}")))?;
    if !bytes.windows(11).any(|w| w == b"-----BEGIN ") {
        return Err(err("holds no PEM block (-----BEGIN …)".into()));
    }
    Ok(bytes)
}

impl RedisTls {
    /// Whether any of the three is set.
    pub fn is_set(&self) -> bool {
        self.ca_file.is_some() || self.client_cert.is_some() || self.client_key.is_some()
    }

    /// Checks the settings against `url` without reading the files.
    pub fn check(&self, url: &str) -> Result<(), RedisTlsError> {
        match (&self.client_cert, &self.client_key) {
            (Some(_), None) => {
                return Err(RedisTlsError::Half {
                    set: "redis_client_cert",
                    missing: "redis_client_key",
                });
            }
            (None, Some(_)) => {
                return Err(RedisTlsError::Half {
                    set: "redis_client_key",
                    missing: "redis_client_cert",
                });
            }
            _ => {}
        }
        let first = [
            ("redis_ca_file", self.ca_file.is_some()),
            ("redis_client_cert", self.client_cert.is_some()),
        ]
        .into_iter()
        .find(|(_, set)| *set);
        if let Some((field, _)) = first
            && !is_tls_url(url)
        {
            return Err(RedisTlsError::NotTls {
                field,
                url: redact_url(url),
            });
        }
        Ok(())
    }

    /// The files' contents for a `rediss://` URL (`None` for a plain one, or for TLS with the
    /// system's roots and no client certificate).
    pub fn load(&self, url: &str) -> Result<Option<RedisTlsPem>, RedisTlsError> {
        self.check(url)?;
        if !self.is_set() {
            return Ok(None);
        }
        let root_cert = self
            .ca_file
            .as_deref()
            .map(|p| read_pem("redis_ca_file", p))
            .transpose()?;
        let client = match (&self.client_cert, &self.client_key) {
            (Some(cert), Some(key)) => Some((
                read_pem("redis_client_cert", cert)?,
                read_pem("redis_client_key", key)?,
            )),
            _ => None,
        };
        Ok(Some(RedisTlsPem { root_cert, client }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PEM: &str = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";

    #[test]
    fn nothing_set_is_plain_redis() {
        let tls = RedisTls::default();
        assert_eq!(tls.load("redis://127.0.0.1/").unwrap(), None);
        assert_eq!(tls.load("rediss://127.0.0.1/").unwrap(), None);
    }

    #[test]
    fn files_need_a_tls_url_and_come_in_pairs() {
        let ca = RedisTls {
            ca_file: Some("/etc/ca.pem".into()),
            ..RedisTls::default()
        };
        let e = ca.check("redis://u:secret@h:6379/").unwrap_err();
        assert_eq!(
            e.to_string(),
            "redis_ca_file is set but redis_url \"redis://u:***@h:6379/\" is not rediss://; TLS settings need a TLS URL"
        );
        let half = RedisTls {
            client_cert: Some("/c.pem".into()),
            ..RedisTls::default()
        };
        assert!(matches!(
            half.check("rediss://h/"),
            Err(RedisTlsError::Half {
                set: "redis_client_cert",
                ..
            })
        ));
        let key_only = RedisTls {
            client_key: Some("/k.pem".into()),
            ..RedisTls::default()
        };
        assert!(key_only.check("rediss://h/").is_err());
    }

    #[test]
    fn files_are_read_and_must_hold_pem() {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("ca.pem");
        std::fs::write(&good, PEM).unwrap();
        let junk = dir.path().join("junk.pem");
        std::fs::write(&junk, "not a certificate").unwrap();
        let tls = RedisTls {
            ca_file: Some(good.clone()),
            client_cert: Some(good.clone()),
            client_key: Some(good),
        };
        let pem = tls.load("rediss://h/").unwrap().unwrap();
        assert_eq!(pem.root_cert.as_deref(), Some(PEM.as_bytes()));
        assert!(pem.client.is_some());
        assert!(!format!("{pem:?}").contains("BEGIN"), "no key in Debug");

        let bad = RedisTls {
            ca_file: Some(junk),
            ..RedisTls::default()
        };
        let e = bad.load("rediss://h/").unwrap_err().to_string();
        assert!(
            e.starts_with("redis_ca_file ") && e.contains("holds no PEM block"),
            "{e}"
        );
        let missing = RedisTls {
            ca_file: Some(dir.path().join("nope.pem")),
            ..RedisTls::default()
        };
        let e = missing.load("rediss://h/").unwrap_err().to_string();
        assert!(e.contains("cannot be read"), "{e}");
    }

    #[test]
    fn urls() {
        assert!(is_tls_url("rediss://h:6380/"));
        assert!(is_tls_url("REDISS://h/"));
        assert!(!is_tls_url("redis://h/"));
        assert_eq!(redact_url("redis://h:6379/"), "redis://h:6379/");
        assert_eq!(redact_url("rediss://:pw@h/"), "rediss://:***@h/");
    }
}
