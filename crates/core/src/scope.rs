//! Scopes (RFC 6749 §3.3): a space-delimited set of `scope-token`s.
use std::collections::BTreeSet;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scope(BTreeSet<String>);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("scope {0:?} is not a valid scope token (RFC 6749 §3.3)")]
pub struct ScopeError(pub String);

impl Scope {
    /// Parse a scope string; empty or absent means no scope.
    pub fn parse(value: &str) -> Result<Self, ScopeError> {
        let mut set = BTreeSet::new();
        for token in value.split(' ') {
            if token.is_empty() {
                continue;
            }
            // scope-token = 1*( %x21 / %x23-5B / %x5D-7E )
            if !token
                .bytes()
                .all(|b| b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b))
            {
                return Err(ScopeError(token.to_owned()));
            }
            set.insert(token.to_owned());
        }
        Ok(Scope(set))
    }

    pub fn from_tokens<I: IntoIterator<Item = S>, S: AsRef<str>>(
        tokens: I,
    ) -> Result<Self, ScopeError> {
        let joined: Vec<String> = tokens.into_iter().map(|s| s.as_ref().to_owned()).collect();
        Scope::parse(&joined.join(" "))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn is_subset_of(&self, other: &Scope) -> bool {
        self.0.is_subset(&other.0)
    }

    pub fn union(&self, other: &Scope) -> Scope {
        Scope(self.0.union(&other.0).cloned().collect())
    }

    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }

    pub fn contains(&self, token: &str) -> bool {
        self.0.contains(token)
    }
}

impl std::fmt::Display for Scope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut first = true;
        for t in &self.0 {
            if !first {
                f.write_str(" ")?;
            }
            f.write_str(t)?;
            first = false;
        }
        Ok(())
    }
}

/// A scope in words, for the consent page.
pub fn describe(token: &str) -> String {
    match token {
        "openid" => "Confirm who you are".to_owned(),
        "profile" => "See your name and profile".to_owned(),
        "email" => "See your email address".to_owned(),
        "offline_access" => "Stay signed in when you are not using the app".to_owned(),
        other => {
            let (resource, action) = match other.split_once([':', '.']) {
                Some((r, a)) => (r, Some(a)),
                None => (other, None),
            };
            match action {
                Some("read") => format!("Read your {resource}"),
                Some("write") => format!("Change your {resource}"),
                _ => format!("Access \u{201c}{other}\u{201d}"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_normalises_and_validates() {
        let s = Scope::parse("b  a b").unwrap();
        assert_eq!(s.to_string(), "a b");
        assert!(Scope::parse("").unwrap().is_empty());
        assert!(Scope::parse("a\"b").is_err());
        assert!(Scope::parse("a\\b").is_err());
        assert!(Scope::parse("caf\u{e9}").is_err());
    }

    #[test]
    fn subset_and_union() {
        let ab = Scope::parse("a b").unwrap();
        let a = Scope::parse("a").unwrap();
        assert!(a.is_subset_of(&ab));
        assert!(!ab.is_subset_of(&a));
        assert_eq!(a.union(&Scope::parse("c").unwrap()).to_string(), "a c");
    }

    #[test]
    fn descriptions() {
        assert_eq!(describe("photos:read"), "Read your photos");
        assert_eq!(describe("email"), "See your email address");
        assert_eq!(describe("x"), "Access \u{201c}x\u{201d}");
    }
}
