//! Askama templates for the browser-facing pages (login, consent, logout,
//! errors and plain messages). All values are HTML-escaped by askama.

use askama::Template;

/// The sign-in form.
#[derive(Debug, Clone, Template)]
#[template(path = "login.html")]
pub struct LoginPage {
    /// Name of the client application the user is signing in for, if any.
    pub app_name: Option<String>,
    /// Opaque handle of the pending authorization request, if any.
    pub pending: Option<String>,
    pub csrf: String,
    /// Prefilled username (e.g. after a failed attempt).
    pub username: String,
    pub error: Option<String>,
}

/// One requested scope, as shown on the consent page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScopeLine {
    /// The raw scope token, e.g. `read:profile`.
    pub token: String,
    /// Human-readable description.
    pub words: String,
}

/// The consent ("Allow / Deny") page.
#[derive(Debug, Clone, Template)]
#[template(path = "consent.html")]
pub struct ConsentPage {
    pub app_name: String,
    pub scopes: Vec<ScopeLine>,
    pub redirect_uri: String,
    pub pending: String,
    pub csrf: String,
    pub username: String,
}

/// An error page shown when the user cannot be redirected back to the client.
#[derive(Debug, Clone, Template)]
#[template(path = "error.html")]
pub struct ErrorPage {
    pub title: String,
    pub message: String,
}

/// Sign-out confirmation.
#[derive(Debug, Clone, Template)]
#[template(path = "logout.html")]
pub struct LogoutPage {
    pub username: String,
    pub csrf: String,
}

/// A plain heading + paragraph page ("You are signed out", ...).
#[derive(Debug, Clone, Template)]
#[template(path = "message.html")]
pub struct MessagePage {
    pub title: String,
    pub message: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    const EVIL: &str = "<script>alert(1)</script>\"'";

    fn assert_common(html: &str) {
        assert!(html.starts_with("<!DOCTYPE html>"));
        assert!(
            html.contains(
                r#"<meta name="viewport" content="width=device-width, initial-scale=1">"#
            )
        );
        assert!(html.contains(r#"<meta name="referrer" content="no-referrer">"#));
        assert!(html.contains(r#"<link rel="stylesheet" href="/assets/oauthd.css">"#));
        assert!(html.contains("oauthd"));
        assert!(!html.contains("<script"), "raw <script> in output:\n{html}");
        assert!(!html.contains("<style"));
        assert!(!html.contains("style="));
    }

    fn assert_escaped(html: &str) {
        assert!(!html.contains(EVIL));
        assert!(html.contains("&#60;script&#62;alert(1)&#60;/script&#62;&#34;&#39;"));
    }

    #[test]
    fn login_minimal() {
        let html = LoginPage {
            app_name: None,
            pending: None,
            csrf: "tok123".into(),
            username: String::new(),
            error: None,
        }
        .render()
        .unwrap();
        assert_common(&html);
        assert!(html.contains("<h1>Sign in</h1>"));
        assert!(!html.contains("to continue to"));
        assert!(html.contains(r#"<form method="post" action="/login">"#));
        assert!(html.contains(r#"<input type="hidden" name="csrf" value="tok123">"#));
        assert!(!html.contains(r#"name="pending""#));
        assert!(!html.contains(r#"role="alert""#));
        assert!(html.contains(r#"name="username" value="""#));
        assert!(html.contains(r#"autocomplete="username""#));
        assert!(html.contains(r#"autocapitalize="none""#));
        assert!(html.contains(r#"type="password" id="password" name="password""#));
        assert!(html.contains(r#"autocomplete="current-password""#));
        assert!(html.contains(r#"<button type="submit" class="btn primary">Sign in</button>"#));
    }

    #[test]
    fn login_full_and_escaped() {
        let html = LoginPage {
            app_name: Some(EVIL.into()),
            pending: Some("pend-1".into()),
            csrf: "tok123".into(),
            username: EVIL.into(),
            error: Some(EVIL.into()),
        }
        .render()
        .unwrap();
        assert_common(&html);
        assert_escaped(&html);
        assert!(html.contains("to continue to <strong>&#60;script&#62;"));
        assert!(html.contains(r#"<input type="hidden" name="pending" value="pend-1">"#));
        assert!(html.contains(r#"name="username" value="&#60;script&#62;"#));
        assert!(html.contains(r#"<div class="notice error" role="alert">&#60;script&#62;"#));
        // The error box comes before the form.
        assert!(html.find(r#"role="alert""#) < html.find("<form"));
    }

    #[test]
    fn consent_with_scopes_and_escaped() {
        let html = ConsentPage {
            app_name: EVIL.into(),
            scopes: vec![
                ScopeLine {
                    token: "read:profile".into(),
                    words: "Read your profile".into(),
                },
                ScopeLine {
                    token: EVIL.into(),
                    words: EVIL.into(),
                },
            ],
            redirect_uri: EVIL.into(),
            pending: "pend-2".into(),
            csrf: "tok456".into(),
            username: EVIL.into(),
        }
        .render()
        .unwrap();
        assert_common(&html);
        assert_escaped(&html);
        assert!(html.contains("<h1><strong>&#60;script&#62;"));
        assert!(html.contains("</strong> wants to access your account</h1>"));
        assert!(html.contains("Signed in as &#60;script&#62;"));
        assert!(html.contains(r#"Read your profile <code class="small">read:profile</code>"#));
        assert!(!html.contains("Basic access to your account"));
        assert!(html.contains("you will be sent to <code>&#60;script&#62;"));
        assert!(html.contains(r#"<form method="post" action="/consent">"#));
        assert!(html.contains(r#"<input type="hidden" name="csrf" value="tok456">"#));
        assert!(html.contains(r#"<input type="hidden" name="pending" value="pend-2">"#));
        assert!(
            html.contains(r#"name="decision" value="approve" class="btn primary">Allow</button>"#)
        );
        assert!(
            html.contains(r#"name="decision" value="deny" class="btn secondary">Deny</button>"#)
        );
        assert!(html.contains(r#"<a href="/logout">Not you? Sign out</a>"#));
    }

    #[test]
    fn consent_without_scopes() {
        let html = ConsentPage {
            app_name: "Demo".into(),
            scopes: vec![],
            redirect_uri: "http://127.0.0.1:8080/cb".into(),
            pending: "p".into(),
            csrf: "c".into(),
            username: "alice".into(),
        }
        .render()
        .unwrap();
        assert_common(&html);
        assert!(html.contains("Basic access to your account (no additional permissions)"));
        assert!(!html.contains("<ul"));
        assert!(html.contains("<code>http://127.0.0.1:8080/cb</code>"));
    }

    #[test]
    fn error_page_escaped() {
        let html = ErrorPage {
            title: EVIL.into(),
            message: EVIL.into(),
        }
        .render()
        .unwrap();
        assert_common(&html);
        assert_escaped(&html);
        assert!(html.contains("<h1>&#60;script&#62;"));
        assert!(html.contains("You can close this window and return to the app."));
    }

    #[test]
    fn logout_page() {
        let html = LogoutPage {
            username: EVIL.into(),
            csrf: "tok789".into(),
        }
        .render()
        .unwrap();
        assert_common(&html);
        assert_escaped(&html);
        assert!(html.contains("<h1>Sign out of oauthd?</h1>"));
        assert!(html.contains("Signed in as &#60;script&#62;"));
        assert!(html.contains(r#"<form method="post" action="/logout">"#));
        assert!(html.contains(r#"<input type="hidden" name="csrf" value="tok789">"#));
        assert!(html.contains(">Sign out</button>"));
    }

    #[test]
    fn message_page() {
        let html = MessagePage {
            title: "You are signed out".into(),
            message: EVIL.into(),
        }
        .render()
        .unwrap();
        assert_common(&html);
        assert_escaped(&html);
        assert!(html.contains("<h1>You are signed out</h1>"));
        assert!(html.contains("<p>&#60;script&#62;"));
    }
}
