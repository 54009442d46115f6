//! Strict `application/x-www-form-urlencoded` parsing for query strings and token bodies.
//!
//! Stricter than the usual lossy parsers on purpose: invalid percent-escapes and invalid
//! UTF-8 are errors, not replacement characters, and a parameter sent twice is reported
//! (RFC 6749 §3.1 and §3.2: "Request and response parameters MUST NOT be included more than
//! once").

/// Parsed parameters in their original order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Params(Vec<(String, String)>);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormError {
    #[error("the request has a malformed percent-escape")]
    BadEscape,
    #[error("the request is not valid UTF-8")]
    BadUtf8,
}

impl Params {
    pub fn parse(input: &[u8]) -> Result<Self, FormError> {
        let mut out = Vec::new();
        for pair in input.split(|&b| b == b'&') {
            if pair.is_empty() {
                continue;
            }
            let (k, v) = match pair.iter().position(|&b| b == b'=') {
                Some(i) => (&pair[..i], &pair[i + 1..]),
                None => (pair, &[][..]),
            };
            out.push((decode(k)?, decode(v)?));
        }
        Ok(Params(out))
    }

    /// The value of a parameter sent once; `Err(name)` when it was sent more than once.
    /// An empty value counts as absent (RFC 6749 §3.1: "sent without a value MUST be treated
    /// as if they were omitted").
    pub fn single(&self, name: &str) -> Result<Option<&str>, Repeated> {
        let mut found = None;
        for (k, v) in &self.0 {
            if k == name {
                if found.is_some() {
                    return Err(Repeated(name.to_owned()));
                }
                found = Some(v.as_str());
            }
        }
        Ok(found.filter(|v| !v.is_empty()))
    }

    /// The first parameter name that appears more than once, if any.
    pub fn first_repeated(&self) -> Option<&str> {
        self.0.iter().enumerate().find_map(|(i, (k, _))| {
            self.0[..i]
                .iter()
                .any(|(k2, _)| k2 == k)
                .then_some(k.as_str())
        })
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }
}

/// A parameter that was sent more than once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repeated(pub String);

fn decode(raw: &[u8]) -> Result<String, FormError> {
    let mut bytes = Vec::with_capacity(raw.len());
    let mut rest = raw;
    // Copy the runs between escapes whole: most values have none (tokens, ids, verifiers).
    while let Some(i) = rest.iter().position(|&b| b == b'%' || b == b'+') {
        bytes.extend_from_slice(&rest[..i]);
        if rest[i] == b'+' {
            bytes.push(b' ');
            rest = &rest[i + 1..];
            continue;
        }
        let hi = rest.get(i + 1).and_then(|c| hex(*c));
        let lo = rest.get(i + 2).and_then(|c| hex(*c));
        match (hi, lo) {
            (Some(h), Some(l)) => bytes.push(h << 4 | l),
            _ => return Err(FormError::BadEscape),
        }
        rest = &rest[i + 3..];
    }
    bytes.extend_from_slice(rest);
    String::from_utf8(bytes).map_err(|_| FormError::BadUtf8)
}

fn hex(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Percent-encode a value for a query string or form body (RFC 3986 unreserved kept).
pub fn encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push('%');
            out.push(
                char::from_digit(u32::from(b >> 4), 16)
                    .unwrap_or('0')
                    .to_ascii_uppercase(),
            );
            out.push(
                char::from_digit(u32::from(b & 0xf), 16)
                    .unwrap_or('0')
                    .to_ascii_uppercase(),
            );
        }
    }
    out
}

/// Append parameters to a URI's query, keeping the query it already has (RFC 6749 §3.1.2).
pub fn append_query(uri: &str, params: &[(&str, &str)]) -> String {
    let mut out = uri.to_owned();
    let mut sep = if uri.contains('?') { '&' } else { '?' };
    if uri.ends_with('?') || uri.ends_with('&') {
        sep = '\0';
    }
    for (k, v) in params {
        if sep != '\0' {
            out.push(sep);
        }
        out.push_str(&encode(k));
        out.push('=');
        out.push_str(&encode(v));
        sep = '&';
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_decodes() {
        let p = Params::parse(b"a=1&b=x+y%2Fz&c=&d").unwrap();
        assert_eq!(p.single("a"), Ok(Some("1")));
        assert_eq!(p.single("b"), Ok(Some("x y/z")));
        assert_eq!(p.single("c"), Ok(None));
        assert_eq!(p.single("d"), Ok(None));
        assert_eq!(p.single("e"), Ok(None));
    }

    #[test]
    fn repeated_parameters_are_reported() {
        let p = Params::parse(b"a=1&b=2&a=1").unwrap();
        assert_eq!(p.single("a"), Err(Repeated("a".into())));
        assert_eq!(p.first_repeated(), Some("a"));
        assert_eq!(Params::parse(b"a=1&b=2").unwrap().first_repeated(), None);
    }

    #[test]
    fn bad_escapes_and_utf8_are_errors() {
        assert_eq!(Params::parse(b"a=%zz"), Err(FormError::BadEscape));
        assert_eq!(Params::parse(b"a=%4"), Err(FormError::BadEscape));
        assert_eq!(Params::parse(b"a=%ff"), Err(FormError::BadUtf8));
        assert_eq!(Params::parse(b"a=\xff"), Err(FormError::BadUtf8));
    }

    #[test]
    fn append_query_keeps_existing_query() {
        assert_eq!(
            append_query("myapp://cb", &[("code", "x y")]),
            "myapp://cb?code=x%20y"
        );
        assert_eq!(
            append_query(
                "https://a.example/cb?x=1",
                &[("code", "c"), ("iss", "http://l")]
            ),
            "https://a.example/cb?x=1&code=c&iss=http%3A%2F%2Fl"
        );
    }

    proptest::proptest! {
        #[test]
        fn encode_then_parse_round_trips(k in "[a-z_]{1,8}", v in "\\PC{0,40}") {
            let body = format!("{}={}", encode(&k), encode(&v));
            let p = Params::parse(body.as_bytes()).unwrap();
            let expected = if v.is_empty() { None } else { Some(v.as_str()) };
            proptest::prop_assert_eq!(p.single(&k), Ok(expected));
        }

        #[test]
        fn parse_never_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..64)) {
            let _ = Params::parse(&bytes);
        }

        #[test]
        fn decode_agrees_with_a_byte_at_a_time_decoder(
            bytes in proptest::collection::vec(
                proptest::sample::select(b"%+aF09z \xc3\xa9\xff".to_vec()), 0..48)
        ) {
            proptest::prop_assert_eq!(decode(&bytes), byte_at_a_time(&bytes));
        }
    }

    /// The decoder as first written, one byte at a time: what `decode` must still do.
    fn byte_at_a_time(raw: &[u8]) -> Result<String, FormError> {
        let mut bytes = Vec::new();
        let mut i = 0;
        while i < raw.len() {
            match raw[i] {
                b'+' => bytes.push(b' '),
                b'%' => {
                    let hi = raw.get(i + 1).and_then(|c| hex(*c));
                    let lo = raw.get(i + 2).and_then(|c| hex(*c));
                    match (hi, lo) {
                        (Some(h), Some(l)) => bytes.push(h << 4 | l),
                        _ => return Err(FormError::BadEscape),
                    }
                    i += 2;
                }
                b => bytes.push(b),
            }
            i += 1;
        }
        String::from_utf8(bytes).map_err(|_| FormError::BadUtf8)
    }
}
