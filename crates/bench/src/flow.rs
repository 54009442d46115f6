//! One virtual user: a browser (cookie jar, redirects, login and consent forms) plus an app
//! (PKCE S256, code exchange, refresh, introspection with resource-server credentials).
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore as _;
use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use reqwest::{Method, StatusCode};
use sha2::{Digest, Sha256};
use url::Url;

use crate::html;
use crate::stats::Stats;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ClientAuth {
    /// Public client: `client_id` in the body, no secret.
    None,
    /// HTTP Basic with client id and secret.
    Basic,
    /// `client_id` and `client_secret` in the body.
    Post,
}

/// Everything a flow needs, fixed for the whole run.
pub struct Settings {
    pub base: Url,
    pub authorize: Url,
    pub token: Url,
    pub introspect: Url,
    pub client_id: String,
    pub client_secret: Option<String>,
    pub token_auth: ClientAuth,
    pub redirect_uri: String,
    pub scope: Option<String>,
    pub extra_authorize_params: Option<String>,
    pub username: String,
    pub password: String,
    pub introspect_auth: ClientAuth,
    pub introspect_client_id: String,
    pub introspect_client_secret: String,
    pub do_token: bool,
    pub do_refresh: bool,
    pub do_introspect: bool,
    pub refresh_repeat: u32,
    pub introspect_repeat: u32,
    pub max_redirects: u32,
    pub fresh_cookies: bool,
    pub allow_non_loopback: bool,
    pub verbose: bool,
}

/// Shared run state: when the measured window is, and how many flows may still start.
pub struct Window {
    pub start: Instant,
    pub end: Instant,
    pub launched: AtomicU64,
    pub max_flows: u64,
    pub verbose_left: AtomicU64,
}

impl Window {
    fn measured(&self, at: Instant) -> bool {
        at >= self.start && at <= self.end
    }
}

/// A browser's cookie jar for one host (all targets are one origin; paths are ignored, which
/// only ever sends a cookie to more paths than a browser would).
#[derive(Default)]
pub struct Jar(Vec<(String, String)>);

impl Jar {
    fn store(&mut self, headers: &reqwest::header::HeaderMap) {
        for h in headers.get_all(SET_COOKIE) {
            let Ok(h) = h.to_str() else { continue };
            let mut parts = h.split(';');
            let Some((name, value)) = parts.next().and_then(|nv| nv.split_once('=')) else {
                continue;
            };
            let (name, value) = (name.trim(), value.trim());
            let expired = parts.any(|a| {
                let a = a.trim().to_ascii_lowercase();
                a == "max-age=0"
                    || a.starts_with("max-age=-")
                    || (a.starts_with("expires=") && a.contains("1970"))
            });
            self.0.retain(|(n, _)| n != name);
            if !expired {
                self.0.push((name.to_owned(), value.to_owned()));
            }
        }
    }

    fn header(&self) -> Option<String> {
        if self.0.is_empty() {
            return None;
        }
        let mut s = String::new();
        for (i, (n, v)) in self.0.iter().enumerate() {
            if i > 0 {
                s.push_str("; ");
            }
            s.push_str(n);
            s.push('=');
            s.push_str(v);
        }
        Some(s)
    }

    fn clear(&mut self) {
        self.0.clear();
    }
}

pub fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

struct Failure(&'static str, String);

fn fail<T>(step: &'static str, msg: impl Into<String>) -> Result<T, Failure> {
    Err(Failure(step, msg.into()))
}

pub struct User {
    http: reqwest::Client,
    cfg: Arc<Settings>,
    window: Arc<Window>,
    jar: Jar,
    pub stats: Stats,
    verbose: bool,
}

impl User {
    pub fn new(http: reqwest::Client, cfg: Arc<Settings>, window: Arc<Window>) -> Self {
        User {
            http,
            cfg,
            window,
            jar: Jar::default(),
            stats: Stats::default(),
            verbose: false,
        }
    }

    /// Run flows until the window closes or the flow budget is spent.
    pub async fn run(mut self) -> Stats {
        loop {
            if Instant::now() >= self.window.end {
                break;
            }
            if self.window.launched.fetch_add(1, Ordering::Relaxed) >= self.window.max_flows {
                break;
            }
            self.verbose = self.cfg.verbose
                && self
                    .window
                    .verbose_left
                    .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
                    .is_ok();
            if self.cfg.fresh_cookies {
                self.jar.clear();
            }
            let started = Instant::now();
            match self.flow().await {
                Ok(()) => {
                    let done = Instant::now();
                    if self.window.measured(started) && self.window.measured(done) {
                        self.stats.flows += 1;
                        self.stats.sample("flow", micros(done - started));
                    }
                }
                Err(Failure(step, msg)) => {
                    if self.verbose {
                        eprintln!("  ! {step}: {msg}");
                    }
                    if self.window.measured(Instant::now()) {
                        self.stats.error(step, msg);
                    }
                    // A broken session must not poison the next flows; and never spin hot.
                    self.jar.clear();
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            }
        }
        self.stats
    }

    fn record(&mut self, step: &'static str, started: Instant, requests: u64) {
        let done = Instant::now();
        if self.window.measured(done) {
            self.stats.sample(step, micros(done - started));
            self.stats.requests += requests;
        }
    }

    async fn flow(&mut self) -> Result<(), Failure> {
        let verifier = random_b64(32);
        let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
        let state = random_b64(12);

        let t = Instant::now();
        let (code, hops) = self.authorize(&challenge, &state).await?;
        self.record("authorize", t, hops);
        if !self.cfg.do_token {
            return Ok(());
        }

        let t = Instant::now();
        let cfg = self.cfg.clone();
        let body = self
            .token_request(
                "token",
                &[
                    ("grant_type", "authorization_code"),
                    ("code", &code),
                    ("redirect_uri", &cfg.redirect_uri),
                    ("code_verifier", &verifier),
                ],
            )
            .await?;
        self.record("token", t, 1);
        let mut access = json_str(&body, "access_token").ok_or(Failure(
            "token",
            "no access_token in the token response".into(),
        ))?;
        let mut refresh = json_str(&body, "refresh_token");

        if cfg.do_refresh {
            for _ in 0..cfg.refresh_repeat {
                let Some(rt) = refresh.take() else {
                    return fail("refresh", "no refresh_token to refresh with");
                };
                let t = Instant::now();
                let body = self
                    .token_request(
                        "refresh",
                        &[("grant_type", "refresh_token"), ("refresh_token", &rt)],
                    )
                    .await?;
                self.record("refresh", t, 1);
                access = json_str(&body, "access_token")
                    .ok_or(Failure("refresh", "no access_token after refresh".into()))?;
                // Rotation: use the new refresh token; keep the old one if none was returned.
                refresh = json_str(&body, "refresh_token").or(Some(rt));
            }
        }

        if cfg.do_introspect {
            for _ in 0..cfg.introspect_repeat {
                let t = Instant::now();
                let mut req = self.http.post(cfg.introspect.clone());
                let mut form: Vec<(&str, &str)> = vec![("token", &access)];
                match cfg.introspect_auth {
                    ClientAuth::Basic => {
                        req = req.basic_auth(
                            &cfg.introspect_client_id,
                            Some(&cfg.introspect_client_secret),
                        )
                    }
                    ClientAuth::Post => {
                        form.push(("client_id", &cfg.introspect_client_id));
                        form.push(("client_secret", &cfg.introspect_client_secret));
                    }
                    ClientAuth::None => form.push(("client_id", &cfg.introspect_client_id)),
                }
                let (status, body) = send(req.form(&form), "introspect").await?;
                if status != StatusCode::OK {
                    return fail("introspect", format!("HTTP {status}: {}", snippet(&body)));
                }
                if !body.contains("\"active\":true") && !body.contains("\"active\": true") {
                    return fail(
                        "introspect",
                        format!("token not active: {}", snippet(&body)),
                    );
                }
                self.record("introspect", t, 1);
            }
        }
        Ok(())
    }

    /// A token endpoint request with the client's authentication; the JSON body on 200.
    async fn token_request(
        &self,
        step: &'static str,
        params: &[(&str, &str)],
    ) -> Result<String, Failure> {
        let cfg = &self.cfg;
        let mut form: Vec<(&str, &str)> = params.to_vec();
        let mut req = self.http.post(cfg.token.clone());
        let secret = cfg.client_secret.as_deref().unwrap_or("");
        match cfg.token_auth {
            ClientAuth::None => form.push(("client_id", &cfg.client_id)),
            ClientAuth::Basic => req = req.basic_auth(&cfg.client_id, Some(secret)),
            ClientAuth::Post => {
                form.push(("client_id", &cfg.client_id));
                form.push(("client_secret", secret));
            }
        }
        let (status, body) = send(req.form(&form), step).await?;
        if status != StatusCode::OK {
            return fail(step, format!("HTTP {status}: {}", snippet(&body)));
        }
        Ok(body)
    }

    /// The browser part: GET the authorize URL and follow redirects, filling the login form
    /// and approving the consent form, until the redirect URI is reached. Returns the code
    /// and the number of HTTP requests made.
    async fn authorize(&mut self, challenge: &str, state: &str) -> Result<(String, u64), Failure> {
        let cfg = self.cfg.clone();
        let mut url = cfg.authorize.clone();
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("response_type", "code")
                .append_pair("client_id", &cfg.client_id)
                .append_pair("redirect_uri", &cfg.redirect_uri)
                .append_pair("state", state)
                .append_pair("code_challenge", challenge)
                .append_pair("code_challenge_method", "S256");
            if let Some(s) = &cfg.scope {
                q.append_pair("scope", s);
            }
        }
        if let Some(extra) = &cfg.extra_authorize_params {
            let q = format!("{}&{}", url.query().unwrap_or(""), extra);
            url.set_query(Some(&q));
        }

        let mut next: (Method, Url, Vec<(String, String)>) = (Method::GET, url, Vec::new());
        let mut logged_in = false;
        for requests in 1..=u64::from(cfg.max_redirects) + 1 {
            let (method, url, form) = next;
            if !cfg.allow_non_loopback && !is_loopback(&url) {
                return fail("authorize", format!("refusing non-loopback URL {url}"));
            }
            let mut req = self.http.request(method.clone(), url.clone());
            if let Some(c) = self.jar.header() {
                req = req.header(COOKIE, c);
            }
            if method == Method::POST {
                req = req.form(&form);
            }
            let form_step = match form.iter().any(|(n, _)| n == "password") {
                true => Some("login"),
                false if method == Method::POST => Some("consent"),
                false => None,
            };
            let t = Instant::now();
            let resp = req.send().await.map_err(|e| {
                Failure(
                    "authorize",
                    format!("{method} {}: {}", url.path(), err_chain(&e)),
                )
            })?;
            self.jar.store(resp.headers());
            let status = resp.status();
            let location = resp
                .headers()
                .get(LOCATION)
                .and_then(|l| l.to_str().ok())
                .map(str::to_owned);
            let body = resp
                .text()
                .await
                .map_err(|e| Failure("authorize", format!("reading {}: {e}", url.path())))?;
            if let Some(step) = form_step {
                self.record(step, t, 0);
            }
            if self.verbose {
                eprintln!(
                    "  {method} {} -> {status}{}",
                    url.as_str(),
                    location
                        .as_deref()
                        .map(|l| format!(" {l}"))
                        .unwrap_or_default()
                );
            }

            if status.is_redirection() {
                let Some(loc) = location else {
                    return fail("authorize", format!("HTTP {status} without Location"));
                };
                if loc.starts_with(&cfg.redirect_uri) {
                    return finish(&loc, state).map(|code| (code, requests));
                }
                let to = url
                    .join(&loc)
                    .map_err(|e| Failure("authorize", format!("bad Location {loc}: {e}")))?;
                next = (Method::GET, to, Vec::new());
                continue;
            }
            if status != StatusCode::OK {
                return fail(
                    "authorize",
                    format!("HTTP {status} at {}: {}", url.path(), snippet(&body)),
                );
            }
            // A page: the login form or the consent form.
            let forms = html::forms(&body);
            if let Some(f) = forms.iter().find(|f| f.has_password()) {
                if logged_in {
                    return fail("authorize", "login form shown again (wrong credentials?)");
                }
                logged_in = true;
                let mut fields: Vec<(String, String)> = f
                    .hidden()
                    .map(|(n, v)| (n.to_owned(), v.to_owned()))
                    .collect();
                fields.push(("username".into(), cfg.username.clone()));
                fields.push(("password".into(), cfg.password.clone()));
                next = (Method::POST, form_target(&url, f)?, fields);
            } else if let Some(f) = forms.iter().find(|f| f.has_choice("decision", "approve")) {
                let mut fields: Vec<(String, String)> = f
                    .hidden()
                    .map(|(n, v)| (n.to_owned(), v.to_owned()))
                    .collect();
                fields.push(("decision".into(), "approve".into()));
                next = (Method::POST, form_target(&url, f)?, fields);
            } else {
                return fail(
                    "authorize",
                    format!(
                        "page at {} has no login or consent form: {}",
                        url.path(),
                        snippet(&body)
                    ),
                );
            }
        }
        fail(
            "authorize",
            format!(
                "more than {} hops without reaching the redirect URI",
                cfg.max_redirects
            ),
        )
    }
}

fn form_target(page: &Url, form: &html::Form) -> Result<Url, Failure> {
    if !form.method.eq_ignore_ascii_case("post") {
        return fail("authorize", "form method is not POST");
    }
    match form.action.as_deref() {
        None | Some("") => Ok(page.clone()),
        Some(a) => page
            .join(a)
            .map_err(|e| Failure("authorize", format!("bad form action {a}: {e}"))),
    }
}

/// The redirect back to the app: check `state`, refuse `error=`, return the code.
fn finish(location: &str, state: &str) -> Result<String, Failure> {
    let query = location
        .split_once('?')
        .map(|(_, q)| q.split('#').next().unwrap_or(q))
        .unwrap_or("");
    let mut code = None;
    let mut got_state = None;
    for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
        match k.as_ref() {
            "code" => code = Some(v.into_owned()),
            "state" => got_state = Some(v.into_owned()),
            "error" => return fail("authorize", format!("redirected with error={v} ({query})")),
            _ => {}
        }
    }
    if got_state.as_deref() != Some(state) {
        return fail("authorize", "state missing or changed in the redirect");
    }
    code.ok_or(Failure("authorize", "no code in the redirect".into()))
}

async fn send(
    req: reqwest::RequestBuilder,
    step: &'static str,
) -> Result<(StatusCode, String), Failure> {
    let resp = req.send().await.map_err(|e| Failure(step, err_chain(&e)))?;
    let status = resp.status();
    let body = resp
        .text()
        .await
        .map_err(|e| Failure(step, format!("reading body: {e}")))?;
    Ok((status, body))
}

fn err_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(inner) = src {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        src = inner.source();
    }
    s
}

fn json_str(body: &str, key: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(body).ok()?;
    v.get(key)?.as_str().map(str::to_owned)
}

fn snippet(body: &str) -> String {
    let t: String = body.chars().filter(|c| !c.is_control()).take(160).collect();
    t
}

pub(crate) fn random_b64(n: usize) -> String {
    let mut b = vec![0u8; n];
    rand::rng().fill_bytes(&mut b);
    URL_SAFE_NO_PAD.encode(b)
}

fn micros(d: Duration) -> u64 {
    d.as_micros() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jar_keeps_replaces_and_expires() {
        let mut h = reqwest::header::HeaderMap::new();
        h.append(SET_COOKIE, "a=1; Path=/; HttpOnly".parse().unwrap());
        h.append(SET_COOKIE, "b=2; Max-Age=600".parse().unwrap());
        let mut jar = Jar::default();
        jar.store(&h);
        assert_eq!(jar.header().as_deref(), Some("a=1; b=2"));
        let mut h = reqwest::header::HeaderMap::new();
        h.append(SET_COOKIE, "a=deleted; Path=/; Max-Age=0".parse().unwrap());
        h.append(SET_COOKIE, "b=3".parse().unwrap());
        jar.store(&h);
        assert_eq!(jar.header().as_deref(), Some("b=3"));
    }

    #[test]
    fn finish_checks_state_and_error() {
        assert_eq!(
            finish("myapp://cb?code=abc&state=s1&iss=x", "s1").ok(),
            Some("abc".to_owned())
        );
        assert!(finish("myapp://cb?code=abc&state=s2", "s1").is_err());
        assert!(finish("myapp://cb?error=access_denied&state=s1", "s1").is_err());
    }

    #[test]
    fn loopback_only() {
        assert!(is_loopback(&Url::parse("http://127.0.0.1:8080/").unwrap()));
        assert!(is_loopback(&Url::parse("http://localhost/").unwrap()));
        assert!(is_loopback(&Url::parse("http://[::1]:3000/").unwrap()));
        assert!(!is_loopback(&Url::parse("http://example.com/").unwrap()));
        assert!(!is_loopback(&Url::parse("http://10.0.0.1/").unwrap()));
    }
}
