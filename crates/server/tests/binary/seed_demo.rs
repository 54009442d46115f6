//! The seed's walkthrough, replayed against `oauthd serve --demo` from what it prints.
use crate::process::*;

const SEED_CHALLENGE: &str = "n4bQgYhMfWWaL-qgxVrQFaO_TxsrC4Is0V1sFbDwCgg";

#[tokio::test]
async fn demo_prints_credentials_and_the_seed_walkthrough_works_word_for_word() {
    let served = serve(&["--demo"]).await;
    let field = |name: &str| {
        served
            .stdout
            .iter()
            .find_map(|l| l.strip_prefix(&format!("{name}: ")))
            .unwrap_or_else(|| panic!("no {name} line in {:?}", served.stdout))
            .to_owned()
    };
    let (username, password) = (field("username"), field("password"));
    // The seed's URL, with only the host and port being this server's.
    let authorize_url = format!(
        "{}/o/oauth2/authorize?response_type=code&client_id=54321&redirect_uri=myapp://oauth2redirect&code_challenge={SEED_CHALLENGE}",
        served.issuer
    );
    assert!(
        served.stdout.iter().any(|l| l.trim() == authorize_url),
        "{:?}",
        served.stdout
    );
    let curl = format!(
        "curl {}/o/oauth2/token --data 'grant_type=authorization_code&client_id=54321&redirect_uri=myapp://oauth2redirect&code_verifier=test&code=CODE'",
        served.issuer
    );
    assert!(
        served.stdout.iter().any(|l| l.trim() == curl),
        "{:?}",
        served.stdout
    );

    // The issuer says localhost; talk to the address it bound.
    let url = authorize_url.replace(&served.issuer, &served.base);
    let back = sign_in_and_approve(&browser(), &served.base, &url, &username, &password).await;
    let prefix = "myapp://oauth2redirect?code=";
    assert!(back.starts_with(prefix), "{back}");
    let code = back[prefix.len()..].split('&').next().unwrap().to_owned();
    assert!(
        back.ends_with(&format!(
            "&iss={}",
            oauthd_core::form::encode(&served.issuer)
        )),
        "{back}"
    );

    // What `curl --data` sends: the seed's body, form-encoded content type.
    let body = format!(
        "grant_type=authorization_code&client_id=54321&redirect_uri=myapp://oauth2redirect&code_verifier=test&code={code}"
    );
    let r = reqwest::Client::new()
        .post(format!("{}/o/oauth2/token", served.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let json: serde_json::Value = r.json().await.unwrap();
    assert_eq!(json["token_type"], "Bearer");
    assert_eq!(json["expires_in"], 600);
    assert!(json["access_token"].as_str().unwrap().starts_with("oat_"));
    assert!(json["refresh_token"].as_str().unwrap().starts_with("ort_"));
}
