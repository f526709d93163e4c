//! The TLS provider of every HTTP client the tests and the bench build.
//!
//! The panel builds reqwest with rustls and no provider of its own (ring, not aws-lc and its
//! C build). Cargo unifies features across a workspace build, so every reqwest client in
//! the workspace then needs a provider installed before it is built, or building it panics.

/// Installs ring as the process's rustls provider; a second call (or one already installed)
/// changes nothing.
pub fn install_tls_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
