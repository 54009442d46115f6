//! Signing keys through the CLI against a running server sharing the database: rotation
//! with overlap, retirement, and sealing at rest under a key encryption key.
use oauth2::TokenResponse as _;
use oauthd_core::jose::{JwtError, peek_kid, verify_jwt};

use crate::flow::*;
use crate::process::*;

const KEK: &str = "correct horse battery staple, 32+ chars";

fn header_alg(jwt: &str) -> String {
    use base64::Engine as _;
    let header = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(jwt.split('.').next().unwrap())
        .unwrap();
    let header: serde_json::Value = serde_json::from_slice(&header).unwrap();
    header["alg"].as_str().unwrap().to_owned()
}

fn keys_list(db: &str) -> Vec<serde_json::Value> {
    let out = cli_ok(&["keys", "list", "--database", db, "--json"], None);
    serde_json::from_str::<serde_json::Value>(out.trim())
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

fn key_entry<'a>(list: &'a [serde_json::Value], kid: &str) -> &'a serde_json::Value {
    list.iter()
        .find(|k| k["kid"] == kid)
        .unwrap_or_else(|| panic!("no key {kid} in {list:?}"))
}

#[tokio::test]
async fn keys_rotate_and_retire_while_the_server_runs() {
    let (_dir, db) = temp_db();
    create_app(&db, "jwt-app", "photos.read", &["--access-token", "jwt"]);
    let api_secret = create_api(&db, "photos-api");
    create_user(&db, "alice");
    let served = serve(&["--database", &db]).await;
    let base = &served.base;
    let api = ("photos-api", api_secret.as_str());

    let first = tokens_for(base, "jwt-app", "photos.read", "alice").await;
    let token_a = first.access_token().secret().clone();
    assert_eq!(header_alg(&token_a), "ES256");
    let old_kid = peek_kid(&token_a).expect("kid in the header");
    let before = jwks(base).await;
    assert!(kids(&before).contains(&old_kid));
    let claims = verify_jwt(&token_a, &before.keys, "at+jwt").expect("A verifies");
    assert_eq!(claims["client_id"], "jwt-app");

    // Rotate ES256 through the CLI, on the database the server is using.
    let (code, out, err) = run(
        &["keys", "rotate", "--alg", "ES256", "--database", &db],
        None,
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("ES256: "), "{out}");
    assert!(
        out.contains(&format!("{old_kid} stays published until")),
        "{out}"
    );
    let after = jwks(base).await;
    let new_kid = kids(&after)
        .into_iter()
        .find(|k| !kids(&before).contains(k))
        .expect("a new key is published");
    assert!(
        kids(&after).contains(&old_kid),
        "the old key stays published"
    );
    assert_eq!(after.keys.len(), before.keys.len() + 1);
    assert_eq!(
        after.keys.iter().find(|k| k.kid == new_kid).unwrap().alg,
        "ES256"
    );
    verify_jwt(&token_a, &after.keys, "at+jwt").expect("A still verifies during the overlap");

    // The next token is signed with the new key, at once.
    let refreshed = oauth2::basic::BasicClient::new(oauth2::ClientId::new("jwt-app".into()))
        .set_token_uri(oauth2::TokenUrl::new(format!("{base}/o/oauth2/token")).unwrap())
        .exchange_refresh_token(first.refresh_token().unwrap())
        .request_async(&http())
        .await
        .expect("refresh");
    let token_b = refreshed.access_token().secret().clone();
    assert_eq!(peek_kid(&token_b).as_deref(), Some(new_kid.as_str()));
    assert_eq!(header_alg(&token_b), "ES256");
    verify_jwt(&token_b, &after.keys, "at+jwt").expect("B verifies");
    assert_eq!(introspect(base, api, &token_a).await["active"], true);
    assert_eq!(introspect(base, api, &token_b).await["active"], true);

    let list = keys_list(&db);
    let old = key_entry(&list, &old_kid);
    let until = old["publish_until"].as_i64().expect("publish_until");
    assert_eq!(
        old["state"],
        format!("rotated out, published until {until}")
    );
    assert!(old["rotated_at"].is_i64());
    // Past the longest access token (600 s) and ID token lifetime, plus a margin.
    let rotated_at = old["rotated_at"].as_i64().unwrap();
    assert!(until >= rotated_at + 600, "{old}");
    assert_eq!(key_entry(&list, &new_kid)["state"], "active");
    assert_eq!(
        list.iter().filter(|k| k["state"] == "active").count(),
        3,
        "one active key per algorithm: {list:?}"
    );

    // Retiring the active key is refused: nothing could sign ES256 tokens any more.
    let (code, _, err) = run(&["keys", "retire", &new_kid, "--database", &db], None);
    assert_eq!(code, 2, "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("error: ") && err.contains("active") && err.contains("rotate"),
        "{err}"
    );

    // Retire the old key: no longer published, its tokens no longer accepted.
    let (code, out, err) = run(&["keys", "retire", &old_kid, "--database", &db], None);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains(&old_kid), "{out}");
    let retired = jwks(base).await;
    assert!(!kids(&retired).contains(&old_kid), "{:?}", kids(&retired));
    assert!(kids(&retired).contains(&new_kid));
    assert_eq!(
        verify_jwt(&token_a, &retired.keys, "at+jwt").unwrap_err(),
        JwtError::UnknownKey
    );
    verify_jwt(&token_b, &retired.keys, "at+jwt").expect("B still verifies");
    assert_eq!(
        introspect(base, api, &token_a).await,
        serde_json::json!({ "active": false })
    );
    let b = introspect(base, api, &token_b).await;
    assert_eq!(b["active"], true);
    assert_eq!(b["username"], "alice");
    assert_eq!(key_entry(&keys_list(&db), &old_kid)["state"], "retired");

    // Retiring again, or an unknown key, fails without changing anything.
    let (code, _, err) = run(&["keys", "retire", &old_kid, "--database", &db], None);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("already retired"), "{err}");
    let (code, _, err) = run(&["keys", "retire", "no-such-kid", "--database", &db], None);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("does not exist"), "{err}");

    // Only the algorithms the server signs with can be rotated.
    let (code, _, err) = run(
        &["keys", "rotate", "--alg", "HS256", "--database", &db],
        None,
    );
    assert_eq!(code, 2, "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("HS256"), "{err}");
    assert_eq!(
        jwks(base).await,
        retired,
        "a refused rotation changes nothing"
    );
}

/// Every byte of the database's files (main file, WAL, shared memory).
fn database_bytes(dir: &std::path::Path) -> Vec<u8> {
    let mut all = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            all.extend(std::fs::read(&path).unwrap());
        }
    }
    all
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// A keys command with the key encryption key in the environment (or not).
fn keys_cmd(args: &[&str], kek: Option<&str>) -> (i32, String, String) {
    let mut command = std::process::Command::new(BIN);
    command
        .arg("keys")
        .args(args)
        .env_remove(KEK_VAR)
        .env_remove("OAUTHD_DATABASE_URL");
    if let Some(k) = kek {
        command.env(KEK_VAR, k);
    }
    let out = command.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn error_line(stderr: &str) -> &str {
    let errors: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("error: "))
        .collect();
    assert_eq!(errors.len(), 1, "one error line: {stderr}");
    errors[0]
}

#[tokio::test]
async fn signing_keys_are_sealed_at_rest_under_the_key_encryption_key() {
    let (dir, db) = temp_db();

    // First start with a key encryption key: the keys are generated sealed.
    let (child, base) = start(&db, Some(KEK)).await.expect("starts with the KEK");
    let published = jwks(&base).await;
    assert_eq!(published.keys.len(), 3);
    stop(child).await;

    let list = keys_list(&db);
    assert_eq!(list.len(), 3, "{list:?}");
    for k in &list {
        assert_eq!(k["sealed"], true, "{k}");
    }
    let bytes = database_bytes(dir.path());
    assert!(
        contains(&bytes, b"aes256gcm:v1:"),
        "the sealed keys are in the scanned files"
    );
    assert!(
        !contains(&bytes, b"plain:"),
        "no private key stored in clear"
    );
    // The PKCS#8 header of a P-256 private key, base64 and raw DER.
    assert!(!contains(&bytes, b"MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEH"));
    assert!(!contains(
        &bytes,
        &[
            0x02, 0x01, 0x00, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01
        ]
    ));

    // Without the key encryption key the server refuses to start, saying what to set.
    let (code, stderr) = start(&db, None).await.expect_err("refuses without the KEK");
    assert!(code == 1 || code == 2, "{code}: {stderr}");
    let line = error_line(&stderr);
    assert!(line.contains(KEK_VAR), "{line}");
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");

    // With a wrong key, likewise.
    let (code, stderr) = start(&db, Some("a different key encryption key, 32+ chars"))
        .await
        .expect_err("refuses a wrong KEK");
    assert!(code == 1 || code == 2, "{code}: {stderr}");
    let line = error_line(&stderr);
    assert!(
        line.contains("could not be decrypted") && line.contains("wrong"),
        "{line}"
    );
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");

    // A key encryption key too short to be one is a configuration error.
    let (code, stderr) = start(&db, Some("too short"))
        .await
        .expect_err("refuses a short KEK");
    assert_eq!(code, 2, "{stderr}");
    let line = error_line(&stderr);
    assert!(line.contains("at least 32"), "{line}");
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");

    // Rotation needs the key too (the new key is sealed like the others).
    let (code, _, err) = keys_cmd(&["rotate", "--alg", "ES256", "--database", &db], None);
    assert_ne!(code, 0, "rotation without the KEK: {err}");
    assert!(error_line(&err).contains(KEK_VAR), "{err}");
    let (code, _, err) = keys_cmd(&["rotate", "--alg", "ES256", "--database", &db], Some(KEK));
    assert_eq!(code, 0, "{err}");
    let list = keys_list(&db);
    assert_eq!(list.len(), 4, "{list:?}");
    for k in &list {
        assert_eq!(k["sealed"], true, "{k}");
    }

    // With the right key it starts, with the same keys plus the rotated one.
    let (child, base) = start(&db, Some(KEK)).await.expect("starts with the KEK");
    let again = jwks(&base).await;
    for k in &published.keys {
        assert!(again.keys.contains(k), "{} still published", k.kid);
    }
    assert_eq!(again.keys.len(), 4);
    stop(child).await;
    assert!(!contains(&database_bytes(dir.path()), b"plain:"));
}

#[tokio::test]
async fn without_a_key_encryption_key_keys_are_stored_plain() {
    // The control for the scan above: the same scan does find unsealed keys.
    let (dir, db) = temp_db();
    let (child, base) = start(&db, None).await.expect("starts");
    // Served one request: past the start-up window of the SIGTERM race (see shutdown.rs).
    assert_eq!(jwks(&base).await.keys.len(), 3);
    stop(child).await;
    for k in keys_list(&db) {
        assert_eq!(k["sealed"], false, "{k}");
    }
    let bytes = database_bytes(dir.path());
    assert!(contains(&bytes, b"plain:"));
    assert!(contains(&bytes, b"MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEH"));
}

#[tokio::test]
async fn keys_stored_in_clear_are_sealed_once_a_key_encryption_key_is_set() {
    let (_dir, db) = temp_db();
    let (child, _) = start(&db, None).await.expect("starts without a KEK");
    stop(child).await;
    let before = keys_list(&db);
    assert!(before.iter().all(|k| k["sealed"] == false), "{before:?}");

    let (child, base) = start(&db, Some(KEK)).await.expect("starts with the KEK");
    assert_eq!(
        jwks(&base).await.keys.len(),
        3,
        "the same keys are still published"
    );
    stop(child).await;
    let after = keys_list(&db);
    let kids = |l: &[serde_json::Value]| {
        l.iter()
            .map(|k| k["kid"].as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(kids(&after), kids(&before), "sealed in place, not replaced");
    assert!(after.iter().all(|k| k["sealed"] == true), "{after:?}");

    // From now on the key encryption key is required.
    let (code, stderr) = start(&db, None)
        .await
        .expect_err("refuses to start without the KEK");
    assert_ne!(code, 0);
    assert!(
        error_line(&stderr).contains("OAUTHD_KEY_ENCRYPTION_KEY"),
        "{stderr}"
    );
}
