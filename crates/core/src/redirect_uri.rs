//! Redirect URIs: what may be registered, and how a requested one matches (RFC 6749 §3.1.2,
//! RFC 8252 §7, RFC 9700 §4.1).
use url::{Host, Url};

/// A registered redirect URI, kept exactly as registered (matching is on the string).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedirectUri(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RedirectUriError {
    #[error("redirect URI {0:?} is not an absolute URI")]
    NotAbsolute(String),
    #[error("redirect URI {0:?} has a fragment; fragments are not allowed (RFC 6749 §3.1.2)")]
    Fragment(String),
    #[error(
        "redirect URI {0:?} uses plain http on a non-loopback host; use https, or http://127.0.0.1 / http://[::1] for native apps (RFC 8252 §7.3)"
    )]
    PlainHttp(String),
    #[error(
        "redirect URI {0:?} uses a forbidden scheme (javascript, data, file, vbscript, about, blob)"
    )]
    ForbiddenScheme(String),
    #[error("redirect URI {0:?} has user info; credentials in a redirect URI are not allowed")]
    UserInfo(String),
    #[error("redirect URI {0:?} has whitespace or control characters")]
    BadCharacters(String),
    #[error(
        "redirect URI {0:?} names port 0, which nothing can listen on; give a port from 1 to 65535 or none"
    )]
    PortZero(String),
}

/// Something an operator should know about a registration that is still allowed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RedirectUriWarning {
    /// RFC 8252 §7.1: private-use schemes should be reverse-DNS names the app owns.
    SchemeNotReverseDns(String),
    /// RFC 8252 §8.3: `localhost` may resolve elsewhere; loopback IP literals are safer.
    LocalhostName(String),
}

impl std::fmt::Display for RedirectUriWarning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RedirectUriWarning::SchemeNotReverseDns(u) => write!(
                f,
                "redirect URI {u:?} uses a custom scheme that is not a reverse-DNS name (like com.example.app:/cb); another app could claim it (RFC 8252 §7.1)"
            ),
            RedirectUriWarning::LocalhostName(u) => write!(
                f,
                "redirect URI {u:?} uses the name localhost; prefer http://127.0.0.1 so the port-agnostic loopback match applies (RFC 8252 §8.3)"
            ),
        }
    }
}

const FORBIDDEN_SCHEMES: &[&str] = &["javascript", "data", "file", "vbscript", "about", "blob"];

impl RedirectUri {
    /// Validate a URI for registration. Returns warnings for allowed-but-risky choices.
    pub fn register(value: &str) -> Result<(Self, Vec<RedirectUriWarning>), RedirectUriError> {
        if value
            .bytes()
            .any(|b| b.is_ascii_whitespace() || b.is_ascii_control())
        {
            return Err(RedirectUriError::BadCharacters(value.to_owned()));
        }
        let url = Url::parse(value).map_err(|_| RedirectUriError::NotAbsolute(value.to_owned()))?;
        if value.contains('#') {
            return Err(RedirectUriError::Fragment(value.to_owned()));
        }
        let scheme = url.scheme();
        if FORBIDDEN_SCHEMES.contains(&scheme) {
            return Err(RedirectUriError::ForbiddenScheme(value.to_owned()));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(RedirectUriError::UserInfo(value.to_owned()));
        }
        // A browser cannot be sent to port 0, and a loopback registration with it would match
        // no other port either (found by fuzzing).
        if url.port() == Some(0) {
            return Err(RedirectUriError::PortZero(value.to_owned()));
        }
        let mut warnings = Vec::new();
        match scheme {
            "https" => {}
            "http" => match url.host() {
                Some(Host::Ipv4(ip)) if ip.is_loopback() => {}
                Some(Host::Ipv6(ip)) if ip.is_loopback() => {}
                Some(Host::Domain("localhost")) => {
                    warnings.push(RedirectUriWarning::LocalhostName(value.to_owned()))
                }
                _ => return Err(RedirectUriError::PlainHttp(value.to_owned())),
            },
            custom => {
                if !custom.contains('.') {
                    warnings.push(RedirectUriWarning::SchemeNotReverseDns(value.to_owned()));
                }
            }
        }
        Ok((RedirectUri(value.to_owned()), warnings))
    }

    /// Rebuild from a stored registration.
    pub fn from_stored(value: String) -> Self {
        RedirectUri(value)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Does `requested` match this registration? Exact string comparison (RFC 9700 §4.1.3),
    /// except that loopback IP literal redirects match on any port (RFC 8252 §7.3).
    pub fn matches(&self, requested: &str) -> bool {
        if self.0 == requested {
            return true;
        }
        match (
            loopback_without_port(&self.0),
            loopback_without_port(requested),
        ) {
            (Some(registered), Some(asked)) => registered == asked,
            _ => false,
        }
    }
}

/// For `http://127.0.0.1[:port]/rest` or `http://[::1][:port]/rest`, the URI with the port
/// removed, compared as raw text (no normalisation: case, dot segments and escapes must
/// already be identical).
fn loopback_without_port(uri: &str) -> Option<String> {
    let rest = uri.strip_prefix("http://")?;
    let host_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(host_end);
    let host = if let Some(v6) = authority.strip_prefix("[::1]") {
        port_ok(v6)?;
        "[::1]"
    } else if let Some(v4) = authority.strip_prefix("127.0.0.1") {
        port_ok(v4)?;
        "127.0.0.1"
    } else {
        return None;
    };
    Some(format!("http://{host}{path}"))
}

/// The text after the host must be empty or `:` followed by 1–5 digits.
fn port_ok(after_host: &str) -> Option<()> {
    if after_host.is_empty() {
        return Some(());
    }
    let digits = after_host.strip_prefix(':')?;
    // A real TCP port: 1 to 65535, digits only.
    (!digits.is_empty()
        && digits.len() <= 5
        && digits.bytes().all(|b| b.is_ascii_digit())
        && digits
            .parse::<u32>()
            .is_ok_and(|p| (1..=65535).contains(&p)))
    .then_some(())
}

/// Pick the redirect URI for an authorize request (RFC 6749 §3.1.2.3): the requested one if
/// it matches a registration, or the only registered one when none was sent.
pub fn resolve<'a>(registered: &'a [RedirectUri], requested: Option<&'a str>) -> Option<&'a str> {
    match requested {
        Some(asked) => registered.iter().any(|r| r.matches(asked)).then_some(asked),
        None => match registered {
            [only] => Some(only.as_str()),
            _ => None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reg(u: &str) -> RedirectUri {
        RedirectUri::register(u).unwrap().0
    }

    #[test]
    fn port_zero_is_refused_at_registration() {
        for u in [
            "http://[::1]:0/cb?x=1",
            "http://127.0.0.1:0/cb",
            "http://127.0.0.1:00/cb",
            "https://app.example:0/cb",
        ] {
            assert!(
                matches!(RedirectUri::register(u), Err(RedirectUriError::PortZero(_))),
                "{u}"
            );
        }
        // The fuzzer's case: had it been registered, its port-less variant would not match.
        assert!(reg("http://[::1]:8000/cb?x=1").matches("http://[::1]/cb?x=1"));
    }

    #[test]
    fn registration_rules() {
        assert!(
            RedirectUri::register("https://app.example/cb")
                .unwrap()
                .1
                .is_empty()
        );
        assert!(
            RedirectUri::register("com.example.app:/oauth2redirect")
                .unwrap()
                .1
                .is_empty()
        );
        assert!(matches!(
            RedirectUri::register("myapp://oauth2redirect")
                .unwrap()
                .1
                .as_slice(),
            [RedirectUriWarning::SchemeNotReverseDns(_)]
        ));
        assert!(RedirectUri::register("http://127.0.0.1/cb").is_ok());
        assert!(RedirectUri::register("http://[::1]:8000/cb").is_ok());
        assert!(matches!(
            RedirectUri::register("http://app.example/cb"),
            Err(RedirectUriError::PlainHttp(_))
        ));
        assert!(matches!(
            RedirectUri::register("https://app.example/cb#x"),
            Err(RedirectUriError::Fragment(_))
        ));
        assert!(matches!(
            RedirectUri::register("https://app.example/cb#"),
            Err(RedirectUriError::Fragment(_))
        ));
        for bad in [
            "javascript:alert(1)",
            "data:text/html,x",
            "file:///etc/passwd",
            "JavaScript:alert(1)",
        ] {
            assert!(
                matches!(
                    RedirectUri::register(bad),
                    Err(RedirectUriError::ForbiddenScheme(_))
                ),
                "{bad}"
            );
        }
        assert!(matches!(
            RedirectUri::register("/relative"),
            Err(RedirectUriError::NotAbsolute(_))
        ));
        assert!(matches!(
            RedirectUri::register("https://u:p@app.example/"),
            Err(RedirectUriError::UserInfo(_))
        ));
        assert!(matches!(
            RedirectUri::register("https://app.example/ cb"),
            Err(RedirectUriError::BadCharacters(_))
        ));
    }

    #[test]
    fn exact_match_traps() {
        let r = reg("https://app.example/cb");
        assert!(r.matches("https://app.example/cb"));
        for trap in [
            "https://app.example:443/cb",
            "https://APP.example/cb",
            "https://app.example/CB",
            "https://app.example/cb/",
            "https://app.example/cb?x=1",
            "https://app.example/cb#frag",
            "https://app.example/./cb",
            "https://app.example/cb%2F",
            "http://app.example/cb",
        ] {
            assert!(!r.matches(trap), "{trap}");
        }
    }

    #[test]
    fn loopback_any_port() {
        let r = reg("http://127.0.0.1/callback");
        assert!(r.matches("http://127.0.0.1:51234/callback"));
        assert!(r.matches("http://127.0.0.1/callback"));
        assert!(!r.matches("http://127.0.0.1:51234/other"));
        assert!(!r.matches("http://127.0.0.1:51234/callback/"));
        assert!(!r.matches("http://127.0.0.1:/callback"));
        assert!(!r.matches("http://127.0.0.1:99x/callback"));
        assert!(
            !r.matches("http://127.0.0.1:99999/callback"),
            "not a TCP port"
        );
        assert!(!r.matches("http://127.0.0.1:0/callback"), "not a TCP port");
        assert!(r.matches("http://127.0.0.1:65535/callback"));
        assert!(!r.matches("http://127.0.0.1@evil.example/callback"));
        assert!(!r.matches("http://127.0.0.1.evil.example/callback"));
        assert!(!r.matches("http://localhost:5000/callback"));
        assert!(!r.matches("https://127.0.0.1:5000/callback"));
        let v6 = reg("http://[::1]/cb");
        assert!(v6.matches("http://[::1]:4000/cb"));
        assert!(!v6.matches("http://127.0.0.1:4000/cb"));
        // The port-free rule applies only to loopback IP literals.
        let host = reg("https://app.example/cb");
        assert!(!host.matches("https://app.example:8443/cb"));
    }

    #[test]
    fn resolve_requires_redirect_uri_with_several_registrations() {
        let one = vec![reg("myapp://cb")];
        assert_eq!(resolve(&one, None), Some("myapp://cb"));
        let two = vec![reg("myapp://cb"), reg("https://a.example/cb")];
        assert_eq!(resolve(&two, None), None);
        assert_eq!(
            resolve(&two, Some("https://a.example/cb")),
            Some("https://a.example/cb")
        );
        assert_eq!(resolve(&two, Some("https://a.example/cb2")), None);
    }
}
