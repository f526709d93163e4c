//! Where a webhook may point: an `http` or `https` URL without credentials, and, with
//! `webhook_deny_private`, never a loopback, private, link-local or otherwise internal
//! address — checked on registration for address literals and again at every connection
//! for the addresses a name resolves to (so a name that later resolves inward is refused).

use std::net::{IpAddr, SocketAddr};

use reqwest::Url;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

use super::error::{BadField, Error, Result};

/// Longest URL accepted.
pub const MAX_URL_LEN: usize = 2048;

/// Checks a webhook URL; the problems name the field `url` and the rule.
pub fn check_url(url: &str, deny_private: bool) -> Result<Url> {
    let bad = |rule: &'static str, message: String| {
        Error::Invalid(vec![BadField {
            field: "url",
            rule,
            message,
        }])
    };
    if url.is_empty() {
        return Err(bad("required", "a URL is required".into()));
    }
    if url.len() > MAX_URL_LEN {
        return Err(bad(
            "max_length",
            format!("at most {MAX_URL_LEN} characters"),
        ));
    }
    if url.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(bad(
            "control",
            "the URL holds a control character or white space".into(),
        ));
    }
    let parsed = Url::parse(url).map_err(|e| bad("url", format!("not a URL: {e}")))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(bad(
            "scheme",
            format!(
                "the scheme must be http or https, not {:?}",
                parsed.scheme()
            ),
        ));
    }
    let Some(host) = parsed.host_str().filter(|h| !h.is_empty()) else {
        return Err(bad("host", "the URL names no host".into()));
    };
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(bad(
            "userinfo",
            "credentials in the URL would be logged and shown; put them in the secret".into(),
        ));
    }
    if deny_private {
        let literal = host.trim_start_matches('[').trim_end_matches(']');
        let internal = match literal.parse::<IpAddr>() {
            Ok(ip) => is_internal(ip),
            Err(_) => host.eq_ignore_ascii_case("localhost") || host.ends_with(".localhost"),
        };
        if internal {
            return Err(bad(
                "private",
                format!(
                    "{host} is an internal address, and webhook_deny_private is set on this panel"
                ),
            ));
        }
    }
    Ok(parsed)
}

/// Loopback, private, link-local, shared (CGNAT), unspecified, broadcast, multicast or
/// documentation addresses: nothing a public receiver has.
pub fn is_internal(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || o[0] == 0
                || (o[0] == 100 && (o[1] & 0xc0) == 64)
                || (o[0] == 198 && (o[1] & 0xfe) == 18)
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_internal(IpAddr::V4(v4));
            }
            let s = v6.segments();
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00
                || (s[0] & 0xffc0) == 0xfe80
        }
    }
}

/// The delivery client's resolver: the system's, minus internal addresses when they are
/// denied (a name that resolves only inward fails to connect, with the reason).
#[derive(Debug, Clone, Copy)]
pub struct Resolver {
    pub deny_private: bool,
}

impl Resolve for Resolver {
    fn resolve(&self, name: Name) -> Resolving {
        let deny = self.deny_private;
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .filter(|a| !(deny && is_internal(a.ip())))
                .collect();
            if addrs.is_empty() {
                return Err(format!(
                    "{host} resolves to no address the panel may reach (webhook_deny_private)"
                )
                .into());
            }
            let addrs: Addrs = Box::new(addrs.into_iter());
            Ok(addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(url: &str, deny: bool) -> &'static str {
        match check_url(url, deny) {
            Err(Error::Invalid(f)) => f[0].rule,
            other => panic!("{url}: {other:?}"),
        }
    }

    #[test]
    fn only_http_and_https_urls_without_credentials() {
        assert!(check_url("https://hooks.example.com/x?y=1", true).is_ok());
        assert!(check_url("http://127.0.0.1:9000/hook", false).is_ok());
        assert_eq!(rule("ftp://example.com/", false), "scheme");
        assert_eq!(rule("file:///etc/passwd", false), "scheme");
        assert_eq!(rule("javascript:alert(1)", false), "scheme");
        assert_eq!(rule("http://a b/", false), "control");
        assert_eq!(rule("http://x/\u{7}", false), "control");
        assert_eq!(rule("http://u:p@example.com/", false), "userinfo");
        assert_eq!(rule("not a url", false), "control");
        assert_eq!(rule("nourl", false), "url");
        assert_eq!(rule("", false), "required");
    }

    #[test]
    fn internal_addresses_are_refused_when_denied() {
        for url in [
            "http://127.0.0.1/",
            "http://10.1.2.3/",
            "http://169.254.169.254/latest/meta-data",
            "http://[::1]:8080/",
            "http://[::ffff:192.168.1.1]/",
            "http://localhost:9000/",
            "http://0.0.0.0/",
            "http://100.64.0.1/",
            "http://[fd00::1]/",
        ] {
            assert_eq!(rule(url, true), "private", "{url}");
            assert!(check_url(url, false).is_ok(), "{url}");
        }
        assert!(!is_internal("93.184.216.34".parse().unwrap()));
    }
}
