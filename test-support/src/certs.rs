//! Certificates for a test's TLS Redis, made with the `openssl` command: a CA, a server
//! certificate for 127.0.0.1 and localhost signed by it, a client certificate signed by it,
//! and a second CA that signed nothing (to show a server it vouches for is refused).

use std::path::{Path, PathBuf};
use std::process::Command;

/// Why the certificates could not be made.
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    #[error("running openssl (is it installed? scripts/test installs it): {0}")]
    Spawn(std::io::Error),
    #[error("openssl {args}: {stderr}")]
    Failed { args: String, stderr: String },
    #[error("writing {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// The PEM files, all in one directory.
#[derive(Debug, Clone)]
pub struct TestCerts {
    pub ca: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
    /// A CA that signed none of these.
    pub other_ca: PathBuf,
}

fn openssl(dir: &Path, args: &[&str]) -> Result<(), CertError> {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .map_err(CertError::Spawn)?;
    if out.status.success() {
        Ok(())
    } else {
        Err(CertError::Failed {
            args: args.join(" "),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        })
    }
}

/// A self-signed CA `name`.{pem,key}.
fn ca(dir: &Path, name: &str) -> Result<(), CertError> {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            &format!("/CN=Outfitter test {name}"),
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.pem"),
        ],
    )
}

/// `name`.{pem,key} signed by `ca`, with `ext` (subjectAltName, extendedKeyUsage).
fn signed(dir: &Path, name: &str, ext: &str) -> Result<(), CertError> {
    let ext_file = dir.join(format!("{name}.ext"));
    std::fs::write(&ext_file, ext).map_err(|source| CertError::Write {
        path: ext_file.clone(),
        source,
    })?;
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            &format!("/CN={name}"),
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.csr"),
        ],
    )?;
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &format!("{name}.csr"),
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            &format!("{name}.ext"),
            "-out",
            &format!("{name}.pem"),
        ],
    )
}

impl TestCerts {
    /// Makes every file in `dir` (a few hundred milliseconds).
    pub fn generate(dir: &Path) -> Result<Self, CertError> {
        std::fs::create_dir_all(dir).map_err(|source| CertError::Write {
            path: dir.to_owned(),
            source,
        })?;
        ca(dir, "ca")?;
        ca(dir, "other-ca")?;
        signed(
            dir,
            "server",
            "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n",
        )?;
        signed(dir, "client", "extendedKeyUsage=clientAuth\n")?;
        Ok(Self {
            ca: dir.join("ca.pem"),
            server_cert: dir.join("server.pem"),
            server_key: dir.join("server.key"),
            client_cert: dir.join("client.pem"),
            client_key: dir.join("client.key"),
            other_ca: dir.join("other-ca.pem"),
        })
    }
}
