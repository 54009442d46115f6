//! Just enough HTML to act like a browser on a login or consent page: the forms, their
//! action, their inputs (hidden ones copied as they are) and their submit buttons.

#[derive(Debug, Default, Clone)]
pub struct Form {
    pub action: Option<String>,
    pub method: String,
    /// `(name, value, type)` of every `<input>` with a name.
    pub inputs: Vec<(String, String, String)>,
    /// `(name, value)` of every named `<button>` (submit choices such as `decision=approve`).
    pub buttons: Vec<(String, String)>,
}

impl Form {
    pub fn has_password(&self) -> bool {
        self.inputs
            .iter()
            .any(|(_, _, t)| t.eq_ignore_ascii_case("password"))
    }

    /// Is there a submit choice `name=value` (a `<button>` or an `<input type=submit>`)?
    pub fn has_choice(&self, name: &str, value: &str) -> bool {
        self.buttons.iter().any(|(n, v)| n == name && v == value)
            || self
                .inputs
                .iter()
                .any(|(n, v, t)| n == name && v == value && t.eq_ignore_ascii_case("submit"))
    }

    /// The hidden inputs, copied as a browser would send them.
    pub fn hidden(&self) -> impl Iterator<Item = (&str, &str)> {
        self.inputs
            .iter()
            .filter(|(_, _, t)| t.eq_ignore_ascii_case("hidden"))
            .map(|(n, v, _)| (n.as_str(), v.as_str()))
    }
}

/// Every `<form>` of the page, in order.
pub fn forms(page: &str) -> Vec<Form> {
    let lower = page.to_ascii_lowercase();
    let mut out = Vec::new();
    let mut pos = 0;
    while let Some(start) = lower[pos..].find("<form").map(|i| i + pos) {
        let end = lower[start..]
            .find("</form")
            .map(|i| i + start)
            .unwrap_or(page.len());
        let tag_end = lower[start..].find('>').map(|i| i + start).unwrap_or(end);
        let tag = &page[start + 5..tag_end];
        let mut form = Form {
            action: attr(tag, "action"),
            method: attr(tag, "method").unwrap_or_else(|| "get".into()),
            ..Form::default()
        };
        for (kind, t) in tags(&page[tag_end..end], &lower[tag_end..end]) {
            let Some(name) = attr(t, "name") else {
                continue;
            };
            let value = attr(t, "value").unwrap_or_default();
            if kind == "input" {
                let ty = attr(t, "type").unwrap_or_else(|| "text".into());
                form.inputs.push((name, value, ty));
            } else {
                form.buttons.push((name, value));
            }
        }
        out.push(form);
        pos = end.max(start + 5);
    }
    out
}

/// The `<input …>` and `<button …>` tags of a fragment, as `(kind, attributes text)`.
fn tags<'a>(frag: &'a str, lower: &str) -> Vec<(&'static str, &'a str)> {
    let mut out = Vec::new();
    let mut pos = 0;
    while let Some(lt) = lower[pos..].find('<').map(|i| i + pos) {
        let rest = &lower[lt + 1..];
        let kind = if rest.starts_with("input") {
            "input"
        } else if rest.starts_with("button") {
            "button"
        } else {
            pos = lt + 1;
            continue;
        };
        let gt = lower[lt..].find('>').map(|i| i + lt).unwrap_or(frag.len());
        out.push((kind, &frag[lt + 1 + kind.len()..gt]));
        pos = gt;
    }
    out
}

/// The value of attribute `name` in a tag's attribute text, entity-decoded.
fn attr(tag: &str, name: &str) -> Option<String> {
    let b = tag.as_bytes();
    let mut i = 0;
    while i < b.len() {
        while i < b.len() && (b[i].is_ascii_whitespace() || b[i] == b'/') {
            i += 1;
        }
        let ks = i;
        while i < b.len() && !b[i].is_ascii_whitespace() && b[i] != b'=' && b[i] != b'>' {
            i += 1;
        }
        let key = &tag[ks..i];
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        let mut value = None;
        if i < b.len() && b[i] == b'=' {
            i += 1;
            while i < b.len() && b[i].is_ascii_whitespace() {
                i += 1;
            }
            if i < b.len() && (b[i] == b'"' || b[i] == b'\'') {
                let q = b[i];
                let vs = i + 1;
                i = vs;
                while i < b.len() && b[i] != q {
                    i += 1;
                }
                value = Some(&tag[vs..i.min(b.len())]);
                i += 1;
            } else {
                let vs = i;
                while i < b.len() && !b[i].is_ascii_whitespace() && b[i] != b'>' {
                    i += 1;
                }
                value = Some(&tag[vs..i]);
            }
        }
        if key.eq_ignore_ascii_case(name) {
            return Some(decode_entities(value.unwrap_or("")));
        }
        if ks == i {
            i += 1;
        }
    }
    None
}

fn decode_entities(s: &str) -> String {
    if !s.contains('&') {
        return s.to_owned();
    }
    s.replace("&quot;", "\"")
        .replace("&#34;", "\"")
        .replace("&#39;", "'")
        .replace("&#x27;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&#x2F;", "/")
        .replace("&#47;", "/")
        .replace("&amp;", "&")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn login_and_consent_forms() {
        let page = r#"<html><form method="post" action="/login">
<input type="hidden" name="csrf" value="abc&amp;d">
<input type="hidden" name="pending" value="opa_x">
<input type="text" id="username" name="username" value="" required autofocus>
<input type="password" id="password" name="password" required>
<button type="submit" class="btn primary">Sign in</button></form>
<form method="post" action='/consent'><input type="hidden" name="csrf" value="c">
<button type="submit" name="decision" value="approve">Allow</button>
<button type="submit" name="decision" value="deny">Deny</button></form>"#;
        let f = forms(page);
        assert_eq!(f.len(), 2);
        assert!(f[0].has_password());
        assert_eq!(f[0].action.as_deref(), Some("/login"));
        let hidden: Vec<_> = f[0].hidden().collect();
        assert_eq!(hidden, vec![("csrf", "abc&d"), ("pending", "opa_x")]);
        assert!(!f[1].has_password());
        assert_eq!(f[1].action.as_deref(), Some("/consent"));
        assert!(f[1].has_choice("decision", "approve"));
        assert!(!f[1].has_choice("decision", "maybe"));
    }
}
