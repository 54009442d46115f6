//! Several `oauthd serve` processes on one PostgreSQL database: migrations race-free at a
//! shared start, one flow hopping between instances, and exactly one winner when a code or a
//! refresh token is presented to all of them at once.
use std::sync::Arc;

use oauthd_core::form::encode;
use oauthd_core::pkce::s256_challenge;

use crate::process::*;
use crate::support::{PgSchema, postgres_url};

const VERIFIER: &str = "multi-instance-verifier-0123456789-abcdefghijklmnop";
const REDIRECT: &str = "http://127.0.0.1:7777/callback";
const PASSWORD: &str = "a long enough password";

/// Three instances started at the same moment on a fresh schema (they race the migrations and
/// the creation of the first signing keys).
async fn three(url: &str) -> Vec<Served> {
    let env = [("OAUTHD_REFRESH_GRACE_PERIOD", "0")];
    let args = ["--database", url];
    let (a, b, c) = tokio::join!(
        serve_with_env(&args, &env),
        serve_with_env(&args, &env),
        serve_with_env(&args, &env)
    );
    vec![a, b, c]
}

fn form_post(base: &str, path: &str, body: String) -> reqwest::RequestBuilder {
    reqwest::Client::new()
        .post(format!("{base}{path}"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
}

/// Authorize on the first instance, log in on the second, consent on the third.
async fn hopping_code(instances: &[Served]) -> String {
    let browser = browser();
    let url = format!(
        "{}/o/oauth2/authorize?response_type=code&client_id=app&redirect_uri={}&scope=profile&code_challenge={}&code_challenge_method=S256&state=hop",
        instances[0].base,
        encode(REDIRECT),
        s256_challenge(VERIFIER)
    );
    let r = browser.get(url).send().await.unwrap();
    assert_eq!(r.status(), 303);
    let login = location(&r);
    let html = browser
        .get(format!("{}{login}", instances[1].base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let form = [
        ("csrf", hidden(&html, "csrf").unwrap()),
        (
            "pending",
            hidden(&html, "pending").expect("the pending request is visible on another instance"),
        ),
        ("username", "alice".to_owned()),
        ("password", PASSWORD.to_owned()),
    ];
    let r = browser
        .post(format!("{}/login", instances[1].base))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303, "login on instance B");
    let consent = location(&r);
    let html = browser
        .get(format!("{}{consent}", instances[2].base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let form = [
        ("csrf", hidden(&html, "csrf").unwrap()),
        (
            "pending",
            hidden(&html, "pending").expect("the session from B is valid on C"),
        ),
        ("decision", "approve".to_owned()),
    ];
    let r = browser
        .post(format!("{}/consent", instances[2].base))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let back = url::Url::parse(&location(&r)).unwrap();
    let get = |k: &str| {
        back.query_pairs()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.into_owned())
    };
    assert_eq!(get("state").as_deref(), Some("hop"));
    get("code").unwrap()
}

fn exchange(code: &str) -> String {
    format!(
        "grant_type=authorization_code&client_id=app&redirect_uri={}&code_verifier={VERIFIER}&code={code}",
        encode(REDIRECT)
    )
}

/// POST the same body to the instances, 16 times at once, spread round-robin; the statuses.
async fn race(instances: &Arc<Vec<String>>, body: String) -> Vec<u16> {
    let mut tasks = Vec::new();
    for i in 0..16 {
        let (bases, body) = (instances.clone(), body.clone());
        tasks.push(tokio::spawn(async move {
            form_post(&bases[i % bases.len()], "/o/oauth2/token", body)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }));
    }
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.unwrap());
    }
    statuses
}

#[tokio::test]
async fn three_instances_share_one_database() {
    let Some(base) = postgres_url() else {
        eprintln!("skipped: OAUTHD_TEST_POSTGRES_URL is not set");
        return;
    };
    let schema = PgSchema::create(&base).await;
    let instances = three(&schema.url).await;
    // They agree on the signing keys: one per algorithm, created once.
    let mut published = Vec::new();
    for s in &instances {
        let jwks: serde_json::Value = reqwest::get(format!("{}/o/oauth2/jwks", s.base))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let mut kids: Vec<String> = jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["kid"].as_str().unwrap().to_owned())
            .collect();
        kids.sort();
        published.push(kids);
    }
    assert_eq!(published[0].len(), 3);
    assert!(
        published.iter().all(|k| *k == published[0]),
        "{published:?}"
    );
    for s in &instances {
        assert_eq!(
            reqwest::get(format!("{}/readyz", s.base))
                .await
                .unwrap()
                .status(),
            200
        );
    }

    let (code, _, err) = run(
        &[
            "client",
            "create",
            "--database",
            &schema.url,
            "--name",
            "App",
            "--client-id",
            "app",
            "--redirect-uri",
            "http://127.0.0.1/callback",
            "--scope",
            "profile",
        ],
        None,
    );
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = run(
        &[
            "client",
            "create",
            "--database",
            &schema.url,
            "--name",
            "API",
            "--client-id",
            "api",
            "--kind",
            "resource-server",
            "--json",
        ],
        None,
    );
    assert_eq!(code, 0, "{err}");
    let api_secret =
        serde_json::from_str::<serde_json::Value>(out.trim()).unwrap()["client_secret"]
            .as_str()
            .unwrap()
            .to_owned();
    let (code, _, err) = run(
        &[
            "user",
            "create",
            "--database",
            &schema.url,
            "--username",
            "alice",
            "--password-stdin",
        ],
        Some(PASSWORD),
    );
    assert_eq!(code, 0, "{err}");

    // One flow across all three: exchange on A, refresh on B, introspect on C.
    let code = hopping_code(&instances).await;
    let r = form_post(&instances[0].base, "/o/oauth2/token", exchange(&code))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let tokens: serde_json::Value = r.json().await.unwrap();
    let refresh = tokens["refresh_token"].as_str().unwrap();
    let r = form_post(
        &instances[1].base,
        "/o/oauth2/token",
        format!("grant_type=refresh_token&client_id=app&refresh_token={refresh}"),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(r.status(), 200);
    let rotated: serde_json::Value = r.json().await.unwrap();
    let introspection: serde_json::Value = reqwest::Client::new()
        .post(format!("{}/o/oauth2/introspect", instances[2].base))
        .basic_auth("api", Some(&api_secret))
        .form(&[("token", rotated["access_token"].as_str().unwrap())])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(introspection["active"], true, "{introspection}");
    assert_eq!(introspection["client_id"], "app");

    // Sixteen redemptions of one code spread over the three: exactly one succeeds.
    let bases = Arc::new(instances.iter().map(|s| s.base.clone()).collect::<Vec<_>>());
    let code = hopping_code(&instances).await;
    let statuses = race(&bases, exchange(&code)).await;
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        1,
        "{statuses:?}"
    );
    assert!(
        statuses.iter().all(|s| *s == 200 || *s == 400),
        "{statuses:?}"
    );

    // The same for one refresh token.
    let code = hopping_code(&instances).await;
    let r = form_post(&bases[0], "/o/oauth2/token", exchange(&code))
        .send()
        .await
        .unwrap();
    let fresh: serde_json::Value = r.json().await.unwrap();
    let body = format!(
        "grant_type=refresh_token&client_id=app&refresh_token={}",
        fresh["refresh_token"].as_str().unwrap()
    );
    let statuses = race(&bases, body).await;
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        1,
        "{statuses:?}"
    );
    assert!(
        statuses.iter().all(|s| *s == 200 || *s == 400),
        "{statuses:?}"
    );
}
