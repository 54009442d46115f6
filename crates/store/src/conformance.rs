//! The storage contract's conformance suite. Every backend runs all of it through
//! [`conformance_suite!`]; a backend is correct when every check passes.
use std::sync::Arc;

use oauthd_core::authorize::{Prompt, ValidAuthorize};
use oauthd_core::client::{AccessTokenFormat, Client, ClientKind, GrantType};
use oauthd_core::code::{IssuedCode, MAX_FAILED_ATTEMPTS};
use oauthd_core::jose::JwsAlg;
use oauthd_core::pkce::{self, ChallengeMethod, CodeChallenge, PkceMode};
use oauthd_core::redirect_uri::RedirectUri;
use oauthd_core::scope::Scope;
use oauthd_core::secret::{DIGEST_BYTES, Secret, SecretHash, SecretKind, random_id};

use crate::*;

pub type DynStore = Arc<dyn Store>;

const NOW: i64 = 1_700_000_000;

/// Generates one `#[tokio::test]` per check, given an async expression making
/// `Some((fresh store, guard))`, the guard cleaning the store up when dropped (a temporary
/// directory, a schema). The expression gives `None` to skip the check, when the backend is
/// not available here; it says why on stderr itself.
#[macro_export]
macro_rules! conformance_suite {
    ($make:expr) => {
        $crate::conformance_suite!(@tests $make;
            clients_round_trip, duplicate_ids_conflict, users_and_password_change, sessions_expire,
            pending_is_consumed_once, consent_merges, code_redeems_once, code_dies_with_its_client_or_user, code_failed_attempts_burn,
            expired_code_is_not_redeemed, redeem_race_has_one_winner, rotation_and_reuse, grace_reissue_once,
            rotate_race_has_one_winner, revoked_grant_kills_tokens, delete_client_cascades, secrets_stored_hashed_only,
            token_info_reports_state, client_and_reads_alongside, access_token_revocation, signing_keys_lifecycle, server_secret_is_stored_once, ops_and_housekeeping, housekeeping_keeps_live_rows,
            purge_is_exact_to_the_second);
    };
    (@tests $make:expr; $($name:ident),*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $name() {
                let Some((store, _guard)): Option<($crate::conformance::DynStore, _)> = $make.await
                else {
                    return;
                };
                $crate::conformance::$name(store).await;
            }
        )*
    };
}

pub fn sample_client(id: &str) -> Client {
    Client {
        client_id: id.into(),
        name: "Sample".into(),
        kind: ClientKind::Public,
        secret_hash: None,
        redirect_uris: vec![
            RedirectUri::register("myapp://cb").unwrap().0,
            RedirectUri::register("http://127.0.0.1/cb").unwrap().0,
        ],
        grants: vec![GrantType::AuthorizationCode, GrantType::RefreshToken],
        scopes: Scope::parse("a b").unwrap(),
        trusted: false,
        pkce: PkceMode::Strict,
        access_token_ttl: 600,
        refresh_token_ttl: 3600,
        access_token_format: AccessTokenFormat::Opaque,
        access_token_alg: JwsAlg::ES256,
        id_token_alg: JwsAlg::RS256,
        audience: vec!["photos-api".into()],
        created_at: NOW,
    }
}

async fn fixture(store: &DynStore) -> (Client, User) {
    let client = sample_client("c1");
    store.insert_client(&client).await.unwrap();
    let user = User {
        id: random_id(),
        username: "alice".into(),
        password_hash: "$argon2id$x".into(),
        email: Some("alice@example.com".into()),
        display_name: Some("Alice".into()),
        created_at: NOW,
    };
    store.insert_user(&user).await.unwrap();
    (client, user)
}

/// Give a code a row, as its first failed verifier does.
async fn seen(store: &DynStore, code: &NewCode) {
    assert_eq!(store.record_failed_attempt(code, NOW).await.unwrap(), 1);
}

fn new_code(client: &Client, user: &User) -> (Secret, NewCode) {
    let secret = Secret::generate(SecretKind::AuthorizationCode);
    let code = NewCode {
        hash: secret.hash(),
        code: IssuedCode {
            client_id: client.client_id.clone(),
            user_id: user.id.clone(),
            redirect_uri: "myapp://cb".into(),
            redirect_uri_sent: true,
            scope: Scope::parse("a").unwrap(),
            code_challenge: CodeChallenge::parse(&pkce::s256_challenge(&"v".repeat(43))).unwrap(),
            pkce_mode: PkceMode::Strict,
            auth_time: NOW,
            expires_at: NOW + 60,
            nonce: Some("n-0S6".into()),
        },
    };
    (secret, code)
}

pub fn new_pair(with_refresh: bool, now: i64) -> (Secret, Option<Secret>, NewPair) {
    let access = Secret::generate(SecretKind::AccessToken);
    let refresh = with_refresh.then(|| Secret::generate(SecretKind::RefreshToken));
    let pair = NewPair {
        access_hash: access.hash(),
        access_scope: Scope::parse("a").unwrap(),
        access_expires_at: now + 600,
        access_kid: None,
        refresh: refresh.as_ref().map(|r| NewRefresh {
            hash: r.hash(),
            expires_at: now + 3600,
        }),
    };
    (access, refresh, pair)
}

fn issue(client: &Client, user: &User, pair: NewPair) -> IssueTokens {
    IssueTokens {
        grant: NewGrant {
            id: random_id(),
            client_id: client.client_id.clone(),
            user_id: user.id.clone(),
            scope: Scope::parse("a").unwrap(),
            auth_time: NOW,
            created_at: NOW,
            expires_at: NOW + 86_400,
        },
        pair,
    }
}

/// A session of `user`, logged in at `NOW`, that lives until `expires_at`.
async fn session_until(store: &DynStore, user: &User, expires_at: i64) -> Secret {
    let sid = Secret::generate(SecretKind::Session);
    store
        .insert_session(&NewSession {
            id_hash: sid.hash(),
            user_id: user.id.clone(),
            auth_time: NOW,
            expires_at,
        })
        .await
        .unwrap();
    sid
}

/// A redeemed code's tokens: (grant id, access, refresh).
async fn redeemed(store: &DynStore, client: &Client, user: &User) -> (String, Secret, Secret) {
    redeemed_expiring_later(store, client, user, 0).await
}

/// As [`redeemed`], with the grant and both tokens expiring `later` seconds after the fixtures'.
async fn redeemed_expiring_later(
    store: &DynStore,
    client: &Client,
    user: &User,
    later: i64,
) -> (String, Secret, Secret) {
    let (_, new) = new_code(client, user);
    let (access, refresh, pair) = new_pair(true, NOW + later);
    let mut issue = issue(client, user, pair);
    issue.grant.expires_at += later;
    assert_eq!(
        store.redeem_code(&new, NOW, &issue).await.unwrap(),
        RedeemOutcome::Redeemed
    );
    (issue.grant.id, access, refresh.unwrap())
}

pub async fn clients_round_trip(store: DynStore) {
    let mut c = sample_client("54321");
    c.kind = ClientKind::Confidential;
    c.secret_hash = Some("$argon2id$old".into());
    c.pkce = PkceMode::LiferayCompat;
    c.trusted = true;
    c.access_token_format = AccessTokenFormat::Jwt;
    c.access_token_alg = JwsAlg::EdDSA;
    c.id_token_alg = JwsAlg::ES256;
    c.audience = vec!["a".into(), "b".into()];
    store.insert_client(&c).await.unwrap();
    let mut rs = sample_client("rs");
    rs.kind = ClientKind::ResourceServer;
    rs.redirect_uris = vec![];
    rs.grants = vec![];
    store.insert_client(&rs).await.unwrap();
    assert_eq!(store.client("rs").await.unwrap(), Some(rs));
    assert!(store.delete_client("rs").await.unwrap());
    assert_eq!(store.client("54321").await.unwrap(), Some(c.clone()));
    assert_eq!(store.client("nope").await.unwrap(), None);
    assert!(
        store
            .set_client_secret("54321", "$argon2id$new")
            .await
            .unwrap()
    );
    assert_eq!(
        store
            .client("54321")
            .await
            .unwrap()
            .unwrap()
            .secret_hash
            .as_deref(),
        Some("$argon2id$new")
    );
    store
        .insert_client(&sample_client("0-first"))
        .await
        .unwrap();
    let ids: Vec<_> = store
        .clients()
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.client_id)
        .collect();
    assert_eq!(ids, vec!["0-first", "54321"]);
    assert!(store.delete_client("54321").await.unwrap());
    assert!(!store.delete_client("54321").await.unwrap());
    assert_eq!(store.client("54321").await.unwrap(), None);
}

/// Two stores on one database, as two processes would have (a server and the admin CLI, or two
/// instances): a client changed, deleted or re-created through `elsewhere` is seen by the next
/// lookup through `here`, which had already read it. Each backend's tests call this with two
/// stores it opened on the same database.
pub async fn client_changes_elsewhere_are_seen(here: DynStore, elsewhere: DynStore) {
    let mut c = sample_client("c1");
    c.kind = ClientKind::Confidential;
    c.secret_hash = Some("$argon2id$first".into());
    here.insert_client(&c).await.unwrap();
    for _ in 0..2 {
        assert_eq!(here.client("c1").await.unwrap(), Some(c.clone()));
    }
    assert!(
        elsewhere
            .set_client_secret("c1", "$argon2id$second")
            .await
            .unwrap()
    );
    let seen = here.client("c1").await.unwrap().unwrap();
    assert_eq!(seen.secret_hash.as_deref(), Some("$argon2id$second"));
    assert!(elsewhere.delete_client("c1").await.unwrap());
    assert_eq!(here.client("c1").await.unwrap(), None);
    let mut again = sample_client("c1");
    again.name = "Re-created".into();
    elsewhere.insert_client(&again).await.unwrap();
    assert_eq!(here.client("c1").await.unwrap(), Some(again.clone()));
    // A change to another client also counts: nothing stale is served for this one.
    elsewhere.insert_client(&sample_client("c2")).await.unwrap();
    assert_eq!(here.client("c1").await.unwrap().unwrap().name, "Re-created");
    // The lookup made together with a request's next read is as fresh, cache or not.
    let with_code = || here.client_and("c1", NextRead::Code(SecretHash::of("x")));
    for _ in 0..2 {
        assert_eq!(with_code().await.unwrap().0.unwrap().name, "Re-created");
    }
    assert!(elsewhere.delete_client("c1").await.unwrap());
    assert_eq!(with_code().await.unwrap().0, None);
    // The same when the next read finds its row (the counter may then come back with it).
    let user = User {
        id: random_id(),
        username: "bob".into(),
        password_hash: "$argon2id$x".into(),
        email: None,
        display_name: None,
        created_at: NOW,
    };
    here.insert_user(&user).await.unwrap();
    let sid = session_until(&here, &user, NOW + 100).await;
    let with_session = || here.client_and("c1", NextRead::Session(sid.hash(), NOW));
    elsewhere.insert_client(&again).await.unwrap();
    for _ in 0..2 {
        let (c, read) = with_session().await.unwrap();
        assert_eq!(c.unwrap().name, "Re-created");
        assert!(matches!(read, ReadAlongside::Session(Some(_))));
    }
    assert!(elsewhere.delete_client("c1").await.unwrap());
    let (c, read) = with_session().await.unwrap();
    assert_eq!(
        c, None,
        "a client deleted elsewhere is not served from the cache"
    );
    assert!(matches!(read, ReadAlongside::Session(Some(_))));
}

/// A client and the request's next read, together: each what its own lookup gives, for every
/// kind of read, found or not, and whether or not the client exists.
pub async fn client_and_reads_alongside(store: DynStore) {
    let (client, user) = fixture(&store).await;
    let (code, new) = new_code(&client, &user);
    seen(&store, &new).await;
    let (_, access, refresh) = redeemed(&store, &client, &user).await;
    let sid = session_until(&store, &user, NOW + 100).await;
    let unknown = SecretHash::of("unknown");
    for client_id in ["c1", "nobody"] {
        let expected = store.client(client_id).await.unwrap();
        assert_eq!(expected.is_some(), client_id == "c1");
        let both = |next| {
            let store = store.clone();
            async move { store.client_and(client_id, next).await.unwrap() }
        };
        let (c, read) = both(NextRead::Nothing).await;
        assert_eq!(c, expected);
        assert!(matches!(read, ReadAlongside::Nothing));
        for hash in [code.hash(), unknown.clone()] {
            let (c, read) = both(NextRead::Code(hash.clone())).await;
            assert_eq!(c, expected);
            let ReadAlongside::Code(found) = read else {
                panic!("a code read answers with a code")
            };
            assert_eq!(found, store.code(&hash).await.unwrap());
            assert_eq!(found.is_some(), hash == code.hash());
        }
        for hash in [refresh.hash(), unknown.clone()] {
            let (c, read) = both(NextRead::RefreshState(hash.clone())).await;
            assert_eq!(c, expected);
            let ReadAlongside::RefreshState(found) = read else {
                panic!("a refresh-state read answers with a refresh state")
            };
            assert_eq!(found, store.refresh_state(&hash).await.unwrap());
            assert_eq!(found.is_some(), hash == refresh.hash());
        }
        for hash in [access.hash(), refresh.hash(), unknown.clone()] {
            let (c, read) = both(NextRead::TokenInfo(hash.clone(), NOW + 1)).await;
            assert_eq!(c, expected);
            let ReadAlongside::TokenInfo(found) = read else {
                panic!("a token-info read answers with token info")
            };
            assert_eq!(found, store.token_info(&hash, NOW + 1).await.unwrap());
            assert_eq!(found.is_some(), hash != unknown);
        }
        for (hash, at, live) in [
            (sid.hash(), NOW + 99, true),
            (sid.hash(), NOW + 100, false),
            (unknown.clone(), NOW, false),
        ] {
            let (c, read) = both(NextRead::Session(hash.clone(), at)).await;
            assert_eq!(c, expected);
            let ReadAlongside::Session(found) = read else {
                panic!("a session read answers with a session")
            };
            assert_eq!(found, store.session(&hash, at).await.unwrap());
            assert_eq!(found.is_some(), live);
        }
    }
    // Reads leave nothing open: a write made afterwards is seen by the next combined read.
    let (_, _, pair) = new_pair(true, NOW);
    store
        .rotate_refresh(&refresh.hash(), NOW + 2, &pair)
        .await
        .unwrap();
    let (_, read) = store
        .client_and("c1", NextRead::RefreshState(refresh.hash()))
        .await
        .unwrap();
    let ReadAlongside::RefreshState(Some(state)) = read else {
        panic!("the rotated token is still found")
    };
    assert!(state.used_at.is_some(), "the rotation is seen");
}

pub async fn duplicate_ids_conflict(store: DynStore) {
    let (client, user) = fixture(&store).await;
    assert!(matches!(
        store.insert_client(&client).await,
        Err(StoreError::Conflict(_))
    ));
    let again = User {
        id: random_id(),
        ..user
    };
    assert!(matches!(
        store.insert_user(&again).await,
        Err(StoreError::Conflict(_))
    ));
}

pub async fn users_and_password_change(store: DynStore) {
    let (_, user) = fixture(&store).await;
    assert_eq!(
        store.user_by_username("alice").await.unwrap(),
        Some(user.clone())
    );
    let sid = session_until(&store, &user, NOW + 100).await;
    assert!(store.set_password("alice", "$argon2id$new").await.unwrap());
    assert_eq!(
        store
            .user_by_username("alice")
            .await
            .unwrap()
            .unwrap()
            .password_hash,
        "$argon2id$new"
    );
    assert_eq!(
        store.session(&sid.hash(), NOW).await.unwrap(),
        None,
        "a new password ends sessions"
    );
    assert!(!store.set_password("bob", "x").await.unwrap());
    assert_eq!(store.users().await.unwrap().len(), 1);
    assert!(store.delete_user("alice").await.unwrap());
    assert_eq!(store.user_by_username("alice").await.unwrap(), None);
}

pub async fn sessions_expire(store: DynStore) {
    let (_, user) = fixture(&store).await;
    let sid = session_until(&store, &user, NOW + 100).await;
    let s = store.session(&sid.hash(), NOW + 99).await.unwrap().unwrap();
    assert_eq!(
        (s.user_id.as_str(), s.username.as_str(), s.auth_time),
        (user.id.as_str(), "alice", NOW)
    );
    assert_eq!(store.session(&sid.hash(), NOW + 100).await.unwrap(), None);
    store.delete_session(&sid.hash()).await.unwrap();
    assert_eq!(store.session(&sid.hash(), NOW).await.unwrap(), None);
}

pub async fn pending_is_consumed_once(store: DynStore) {
    let (client, _) = fixture(&store).await;
    let id = Secret::generate(SecretKind::PendingAuthorization);
    let pending = PendingAuthorization {
        id_hash: id.hash(),
        browser_hash: SecretHash::of("browser"),
        request: ValidAuthorize {
            client_id: client.client_id.clone(),
            redirect_uri: "myapp://cb".into(),
            redirect_uri_sent: true,
            scope: Scope::parse("a").unwrap(),
            state: Some("st\u{e9} &x".into()),
            code_challenge: CodeChallenge::parse(&pkce::s256_challenge(&"v".repeat(43))).unwrap(),
            code_challenge_method: ChallengeMethod::S256,
            used_liferay_compat: false,
            nonce: Some("n-1".into()),
            prompt: Prompt {
                none: false,
                login: true,
                consent: true,
            },
            max_age: Some(300),
        },
        login_required: true,
        login_session: None,
        created_at: NOW,
        expires_at: NOW + 600,
    };
    store.insert_pending(&pending).await.unwrap();
    assert_eq!(
        store.pending(&id.hash(), NOW).await.unwrap(),
        Some(pending.clone())
    );
    let session = SecretHash::of("session");
    assert!(store.attach_login(&id.hash(), &session).await.unwrap());
    let pending = PendingAuthorization {
        login_session: Some(session),
        ..pending
    };
    assert_eq!(
        store.pending(&id.hash(), NOW).await.unwrap(),
        Some(pending.clone())
    );
    assert_eq!(
        store.pending(&id.hash(), NOW + 600).await.unwrap(),
        None,
        "expired"
    );
    assert_eq!(
        store.consume_pending(&id.hash(), NOW).await.unwrap(),
        ConsumeOutcome::Consumed
    );
    assert_eq!(
        store.consume_pending(&id.hash(), NOW).await.unwrap(),
        ConsumeOutcome::AlreadyConsumed,
        "one answer, so one code"
    );
    assert_eq!(store.pending(&id.hash(), NOW).await.unwrap(), None);
    let unknown = SecretHash::of("nope");
    assert_eq!(
        store.consume_pending(&unknown, NOW).await.unwrap(),
        ConsumeOutcome::NotFound
    );
}

pub async fn consent_merges(store: DynStore) {
    let (client, user) = fixture(&store).await;
    assert_eq!(
        store.consent(&user.id, &client.client_id).await.unwrap(),
        None
    );
    store
        .remember_consent(
            &user.id,
            &client.client_id,
            &Scope::parse("a").unwrap(),
            NOW,
        )
        .await
        .unwrap();
    store
        .remember_consent(
            &user.id,
            &client.client_id,
            &Scope::parse("b").unwrap(),
            NOW,
        )
        .await
        .unwrap();
    assert_eq!(
        store.consent(&user.id, &client.client_id).await.unwrap(),
        Some(Scope::parse("a b").unwrap())
    );
}

pub async fn code_redeems_once(store: DynStore) {
    let (client, user) = fixture(&store).await;
    let (code, new) = new_code(&client, &user);
    assert_eq!(
        store.code(&code.hash()).await.unwrap(),
        None,
        "issuing a code writes nothing"
    );
    let (access, refresh, pair) = new_pair(true, NOW);
    let first = issue(&client, &user, pair);
    assert_eq!(
        store.redeem_code(&new, NOW + 1, &first).await.unwrap(),
        RedeemOutcome::Redeemed
    );
    assert_eq!(
        store
            .access_token_status(&access.hash(), NOW + 1)
            .await
            .unwrap(),
        TokenStatus::Active
    );
    assert_eq!(
        store
            .refresh_token_status(&refresh.unwrap().hash(), NOW + 1)
            .await
            .unwrap(),
        TokenStatus::Active
    );
    let (access2, _, pair2) = new_pair(true, NOW);
    let second = issue(&client, &user, pair2);
    assert_eq!(
        store.redeem_code(&new, NOW + 2, &second).await.unwrap(),
        RedeemOutcome::AlreadyUsed {
            grant_id: Some(first.grant.id.clone())
        }
    );
    // The loser's grant is not stored (revoking an unknown grant finds nothing).
    assert!(
        !store
            .revoke_grant(&second.grant.id, NOW + 2, "test")
            .await
            .unwrap()
    );
    assert_eq!(
        store
            .access_token_status(&access2.hash(), NOW + 2)
            .await
            .unwrap(),
        TokenStatus::Unknown
    );
    let stored = store.code(&code.hash()).await.unwrap().unwrap();
    assert!(stored.redeemed);
    assert_eq!(stored.failed_attempts, 0);
    assert_eq!(stored.grant_id, Some(first.grant.id));
}

/// A code whose client or user was deleted after it was issued redeems nothing and leaves
/// nothing behind.
pub async fn code_dies_with_its_client_or_user(store: DynStore) {
    let (client, user) = fixture(&store).await;
    let (code_of_user, of_user) = new_code(&client, &user);
    assert!(store.delete_user(&user.username).await.unwrap());
    let (access, _, pair) = new_pair(true, NOW);
    assert_eq!(
        store
            .redeem_code(&of_user, NOW, &issue(&client, &user, pair))
            .await
            .unwrap(),
        RedeemOutcome::NotFound
    );
    assert_eq!(
        store.record_failed_attempt(&of_user, NOW).await.unwrap(),
        MAX_FAILED_ATTEMPTS
    );
    assert_eq!(store.code(&code_of_user.hash()).await.unwrap(), None);
    assert_eq!(
        store
            .access_token_status(&access.hash(), NOW)
            .await
            .unwrap(),
        TokenStatus::Unknown
    );

    let client = sample_client("c2");
    store.insert_client(&client).await.unwrap();
    let user = User {
        id: random_id(),
        username: "bob".into(),
        ..user
    };
    store.insert_user(&user).await.unwrap();
    let (code_of_client, of_client) = new_code(&client, &user);
    assert!(store.delete_client(&client.client_id).await.unwrap());
    let (access, _, pair) = new_pair(true, NOW);
    let issued = issue(&client, &user, pair);
    assert_eq!(
        store.redeem_code(&of_client, NOW, &issued).await.unwrap(),
        RedeemOutcome::NotFound
    );
    assert_eq!(store.code(&code_of_client.hash()).await.unwrap(), None);
    assert!(
        !store
            .revoke_grant(&issued.grant.id, NOW, "test")
            .await
            .unwrap(),
        "no grant was stored"
    );
    assert_eq!(
        store
            .access_token_status(&access.hash(), NOW)
            .await
            .unwrap(),
        TokenStatus::Unknown
    );

    // A redeemed code's row goes with its grant, so with its client or user.
    let client = sample_client("c3");
    store.insert_client(&client).await.unwrap();
    let (code, new) = new_code(&client, &user);
    let (_, _, pair) = new_pair(true, NOW);
    store
        .redeem_code(&new, NOW, &issue(&client, &user, pair))
        .await
        .unwrap();
    assert!(store.code(&code.hash()).await.unwrap().is_some());
    assert!(store.delete_client(&client.client_id).await.unwrap());
    assert_eq!(store.code(&code.hash()).await.unwrap(), None);
}

pub async fn code_failed_attempts_burn(store: DynStore) {
    let (client, user) = fixture(&store).await;
    let (code, new) = new_code(&client, &user);
    for n in 1..=MAX_FAILED_ATTEMPTS {
        assert_eq!(store.record_failed_attempt(&new, NOW).await.unwrap(), n);
    }
    let (_, _, pair) = new_pair(true, NOW);
    assert_eq!(
        store
            .redeem_code(&new, NOW, &issue(&client, &user, pair))
            .await
            .unwrap(),
        RedeemOutcome::AlreadyUsed { grant_id: None }
    );
    let stored = store.code(&code.hash()).await.unwrap().unwrap();
    assert_eq!(
        (stored.failed_attempts, stored.redeemed),
        (MAX_FAILED_ATTEMPTS, false)
    );
    // After its redemption a code counts as burnt, and a failed verifier changes nothing.
    let (redeemed_code, redeemed) = new_code(&client, &user);
    let (_, _, pair) = new_pair(true, NOW);
    store
        .redeem_code(&redeemed, NOW, &issue(&client, &user, pair))
        .await
        .unwrap();
    assert_eq!(
        store.record_failed_attempt(&redeemed, NOW).await.unwrap(),
        MAX_FAILED_ATTEMPTS
    );
    let stored = store.code(&redeemed_code.hash()).await.unwrap().unwrap();
    assert_eq!((stored.failed_attempts, stored.redeemed), (0, true));
    // An expired code is burnt too, and gets no row.
    let (expired_code, expired) = new_code(&client, &user);
    assert_eq!(
        store
            .record_failed_attempt(&expired, expired.code.expires_at)
            .await
            .unwrap(),
        MAX_FAILED_ATTEMPTS
    );
    assert_eq!(store.code(&expired_code.hash()).await.unwrap(), None);
}

pub async fn expired_code_is_not_redeemed(store: DynStore) {
    let (client, user) = fixture(&store).await;
    // Never seen before it expired (it gets no row), and seen before (its row stays unredeemed).
    for seen_before in [false, true] {
        let (code, new) = new_code(&client, &user);
        if seen_before {
            seen(&store, &new).await;
        }
        let (access, _, pair) = new_pair(true, NOW);
        assert_eq!(
            store
                .redeem_code(&new, new.code.expires_at, &issue(&client, &user, pair))
                .await
                .unwrap(),
            RedeemOutcome::NotFound
        );
        assert_eq!(
            store
                .access_token_status(&access.hash(), NOW)
                .await
                .unwrap(),
            TokenStatus::Unknown
        );
        let row = store.code(&code.hash()).await.unwrap();
        assert_eq!(row.is_some(), seen_before);
        assert!(row.is_none_or(|r| !r.redeemed));
    }
}

pub async fn redeem_race_has_one_winner(store: DynStore) {
    let (client, user) = fixture(&store).await;
    // A code seen before (its row exists), and one not (the redemptions race to insert it).
    for seen_before in [true, false] {
        let (code, new) = new_code(&client, &user);
        if seen_before {
            seen(&store, &new).await;
        }
        let mut tasks = Vec::new();
        for _ in 0..16 {
            let (store, client, user, new) =
                (store.clone(), client.clone(), user.clone(), new.clone());
            tasks.push(tokio::spawn(async move {
                let (_, _, pair) = new_pair(true, NOW);
                store
                    .redeem_code(&new, NOW, &issue(&client, &user, pair))
                    .await
                    .unwrap()
            }));
        }
        let mut wins = 0;
        for t in tasks {
            if t.await.unwrap() == RedeemOutcome::Redeemed {
                wins += 1;
            }
        }
        assert_eq!(wins, 1, "seen before: {seen_before}");
        assert!(store.code(&code.hash()).await.unwrap().unwrap().redeemed);
    }
}

/// A server secret is stored by the first caller; every later or concurrent caller gets that
/// value, not its own candidate.
pub async fn server_secret_is_stored_once(store: DynStore) {
    assert_eq!(
        store.server_secret("k", "first", NOW).await.unwrap(),
        "first"
    );
    assert_eq!(
        store.server_secret("k", "second", NOW).await.unwrap(),
        "first"
    );
    let mut tasks = Vec::new();
    for i in 0..8 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            store
                .server_secret("race", &format!("candidate {i}"), NOW)
                .await
                .unwrap()
        }));
    }
    let mut seen = std::collections::BTreeSet::new();
    for t in tasks {
        seen.insert(t.await.unwrap());
    }
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(
        store.server_secret("k", "third", NOW).await.unwrap(),
        "first"
    );
}

pub async fn rotation_and_reuse(store: DynStore) {
    let (client, user) = fixture(&store).await;
    let (grant_id, access, refresh) = redeemed(&store, &client, &user).await;
    let state = store.refresh_state(&refresh.hash()).await.unwrap().unwrap();
    assert_eq!(
        (state.grant_id.as_str(), state.client_id.as_str()),
        (grant_id.as_str(), "c1")
    );
    assert_eq!(
        (state.user_id.as_str(), state.auth_time),
        (user.id.as_str(), NOW)
    );
    assert_eq!(
        (
            state.used_at,
            state.successor_used,
            state.grace_used,
            state.revoked
        ),
        (None, false, false, false)
    );
    let (access2, refresh2, pair) = new_pair(true, NOW);
    let refresh2 = refresh2.unwrap();
    assert_eq!(
        store
            .rotate_refresh(&refresh.hash(), NOW + 5, &pair)
            .await
            .unwrap(),
        CasOutcome::Done
    );
    assert_eq!(
        store
            .refresh_token_status(&refresh.hash(), NOW + 5)
            .await
            .unwrap(),
        TokenStatus::Revoked
    );
    assert_eq!(
        store
            .refresh_token_status(&refresh2.hash(), NOW + 5)
            .await
            .unwrap(),
        TokenStatus::Active
    );
    assert_eq!(
        store
            .access_token_status(&access2.hash(), NOW + 5)
            .await
            .unwrap(),
        TokenStatus::Active
    );
    let (_, _, again) = new_pair(true, NOW);
    assert_eq!(
        store
            .rotate_refresh(&refresh.hash(), NOW + 6, &again)
            .await
            .unwrap(),
        CasOutcome::Lost
    );
    let state = store.refresh_state(&refresh.hash()).await.unwrap().unwrap();
    assert_eq!(state.used_at, Some(NOW + 5));
    assert!(!state.successor_used);
    // Using the successor is visible on its predecessor.
    let (_, _, pair3) = new_pair(true, NOW);
    assert_eq!(
        store
            .rotate_refresh(&refresh2.hash(), NOW + 7, &pair3)
            .await
            .unwrap(),
        CasOutcome::Done
    );
    assert!(
        store
            .refresh_state(&refresh.hash())
            .await
            .unwrap()
            .unwrap()
            .successor_used
    );
    assert!(
        store
            .revoke_grant(&grant_id, NOW + 8, "refresh_token_reuse")
            .await
            .unwrap()
    );
    assert!(
        !store
            .revoke_grant(&grant_id, NOW + 8, "again")
            .await
            .unwrap()
    );
    assert_eq!(
        store
            .access_token_status(&access.hash(), NOW + 8)
            .await
            .unwrap(),
        TokenStatus::Revoked
    );
    assert_eq!(
        store
            .access_token_status(&access2.hash(), NOW + 8)
            .await
            .unwrap(),
        TokenStatus::Revoked
    );
    let expired = store
        .refresh_token_status(&SecretHash::of("x"), NOW)
        .await
        .unwrap();
    assert_eq!(expired, TokenStatus::Unknown);
}

pub async fn grace_reissue_once(store: DynStore) {
    let (client, user) = fixture(&store).await;
    let (_, _, refresh) = redeemed(&store, &client, &user).await;
    let (access2, refresh2, pair) = new_pair(true, NOW);
    assert_eq!(
        store
            .rotate_refresh(&refresh.hash(), NOW + 1, &pair)
            .await
            .unwrap(),
        CasOutcome::Done
    );
    let (access3, refresh3, pair3) = new_pair(true, NOW);
    assert_eq!(
        store
            .grace_reissue(&refresh.hash(), NOW + 2, &pair3)
            .await
            .unwrap(),
        CasOutcome::Done
    );
    assert_eq!(
        store
            .access_token_status(&access2.hash(), NOW + 2)
            .await
            .unwrap(),
        TokenStatus::Revoked
    );
    assert_eq!(
        store
            .refresh_token_status(&refresh2.unwrap().hash(), NOW + 2)
            .await
            .unwrap(),
        TokenStatus::Revoked
    );
    assert_eq!(
        store
            .access_token_status(&access3.hash(), NOW + 2)
            .await
            .unwrap(),
        TokenStatus::Active
    );
    let refresh3 = refresh3.unwrap();
    assert_eq!(
        store
            .refresh_token_status(&refresh3.hash(), NOW + 2)
            .await
            .unwrap(),
        TokenStatus::Active
    );
    assert!(
        store
            .refresh_state(&refresh.hash())
            .await
            .unwrap()
            .unwrap()
            .grace_used
    );
    let (_, _, pair4) = new_pair(true, NOW);
    assert_eq!(
        store
            .grace_reissue(&refresh.hash(), NOW + 3, &pair4)
            .await
            .unwrap(),
        CasOutcome::Lost,
        "once only"
    );
    // No grace once the successor has been used.
    let (_, _, pair5) = new_pair(true, NOW);
    assert_eq!(
        store
            .rotate_refresh(&refresh3.hash(), NOW + 4, &pair5)
            .await
            .unwrap(),
        CasOutcome::Done
    );
    let (_, _, r2) = redeemed(&store, &client, &user).await;
    let (_, s2, p) = new_pair(true, NOW);
    store.rotate_refresh(&r2.hash(), NOW + 1, &p).await.unwrap();
    let successor = store.refresh_state(&r2.hash()).await.unwrap().unwrap();
    assert!(!successor.successor_used);
    let (_, _, p2) = new_pair(true, NOW);
    assert_eq!(
        store
            .rotate_refresh(&s2.unwrap().hash(), NOW + 2, &p2)
            .await
            .unwrap(),
        CasOutcome::Done
    );
    let (access6, _, p6) = new_pair(true, NOW);
    assert_eq!(
        store.grace_reissue(&r2.hash(), NOW + 3, &p6).await.unwrap(),
        CasOutcome::Lost,
        "the successor was used: the client got it"
    );
    // Losing there undid the claim: the grace is not spent and nothing was issued.
    let state = store.refresh_state(&r2.hash()).await.unwrap().unwrap();
    assert!(state.successor_used && !state.grace_used);
    assert_eq!(
        store
            .access_token_status(&access6.hash(), NOW + 3)
            .await
            .unwrap(),
        TokenStatus::Unknown
    );
}

pub async fn rotate_race_has_one_winner(store: DynStore) {
    let (client, user) = fixture(&store).await;
    let (_, _, refresh) = redeemed(&store, &client, &user).await;
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let (store, hash) = (store.clone(), refresh.hash());
        tasks.push(tokio::spawn(async move {
            let (_, _, pair) = new_pair(true, NOW);
            store.rotate_refresh(&hash, NOW + 1, &pair).await.unwrap()
        }));
    }
    let mut wins = 0;
    for t in tasks {
        if t.await.unwrap() == CasOutcome::Done {
            wins += 1;
        }
    }
    assert_eq!(wins, 1);
}

pub async fn revoked_grant_kills_tokens(store: DynStore) {
    let (client, user) = fixture(&store).await;
    let (grant_id, access, refresh) = redeemed(&store, &client, &user).await;
    store
        .revoke_grant(&grant_id, NOW + 1, "test")
        .await
        .unwrap();
    assert_eq!(
        store
            .access_token_status(&access.hash(), NOW + 1)
            .await
            .unwrap(),
        TokenStatus::Revoked
    );
    assert_eq!(
        store
            .refresh_token_status(&refresh.hash(), NOW + 1)
            .await
            .unwrap(),
        TokenStatus::Revoked
    );
    let (_, _, pair) = new_pair(true, NOW);
    assert_eq!(
        store
            .rotate_refresh(&refresh.hash(), NOW + 2, &pair)
            .await
            .unwrap(),
        CasOutcome::Lost
    );
    assert!(
        store
            .refresh_state(&refresh.hash())
            .await
            .unwrap()
            .unwrap()
            .grant_revoked
    );
    assert_eq!(
        store
            .access_token_status(&access.hash(), NOW + 10_000)
            .await
            .unwrap(),
        TokenStatus::Revoked
    );
}

pub async fn delete_client_cascades(store: DynStore) {
    let (client, user) = fixture(&store).await;
    let (_, access, refresh) = redeemed(&store, &client, &user).await;
    assert!(store.delete_client(&client.client_id).await.unwrap());
    assert_eq!(
        store
            .access_token_status(&access.hash(), NOW)
            .await
            .unwrap(),
        TokenStatus::Unknown
    );
    assert_eq!(
        store
            .refresh_token_status(&refresh.hash(), NOW)
            .await
            .unwrap(),
        TokenStatus::Unknown
    );
}

/// Only hashes are persisted: looking a token up by its own value finds nothing.
pub async fn secrets_stored_hashed_only(store: DynStore) {
    let (client, user) = fixture(&store).await;
    let (_, access, refresh) = redeemed(&store, &client, &user).await;
    let as_if_hash = SecretHash::from_stored(access.expose().to_owned());
    assert_eq!(
        store.access_token_status(&as_if_hash, NOW).await.unwrap(),
        TokenStatus::Unknown
    );
    let as_if_hash = SecretHash::from_stored(refresh.expose().to_owned());
    assert_eq!(
        store.refresh_token_status(&as_if_hash, NOW).await.unwrap(),
        TokenStatus::Unknown
    );
}

pub async fn token_info_reports_state(store: DynStore) {
    let (client, user) = fixture(&store).await;
    let (grant_id, access, refresh) = redeemed(&store, &client, &user).await;
    let info = store
        .token_info(&access.hash(), NOW + 1)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(info.kind, TokenKind::Access);
    assert_eq!(
        (info.grant_id.as_str(), info.client_id.as_str()),
        (grant_id.as_str(), "c1")
    );
    assert_eq!(
        (info.user_id.as_str(), info.username.as_str()),
        (user.id.as_str(), "alice")
    );
    assert_eq!(info.scope, Scope::parse("a").unwrap());
    assert_eq!(info.audience, vec!["photos-api".to_owned()]);
    assert_eq!(
        (info.issued_at, info.expires_at, info.status),
        (NOW, NOW + 600, TokenStatus::Active)
    );
    assert_eq!(
        store
            .token_info(&access.hash(), NOW + 600)
            .await
            .unwrap()
            .unwrap()
            .status,
        TokenStatus::Expired
    );
    let r = store
        .token_info(&refresh.hash(), NOW + 1)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (r.kind, r.status),
        (TokenKind::Refresh, TokenStatus::Active)
    );
    let (_, _, pair) = new_pair(true, NOW);
    store
        .rotate_refresh(&refresh.hash(), NOW + 2, &pair)
        .await
        .unwrap();
    assert_eq!(
        store
            .token_info(&refresh.hash(), NOW + 2)
            .await
            .unwrap()
            .unwrap()
            .status,
        TokenStatus::Revoked,
        "a rotated-out refresh token is no longer active"
    );
    assert_eq!(
        store
            .token_info(&SecretHash::of("unknown"), NOW)
            .await
            .unwrap(),
        None
    );
}

pub async fn access_token_revocation(store: DynStore) {
    let (client, user) = fixture(&store).await;
    let (_, access, refresh) = redeemed(&store, &client, &user).await;
    assert!(
        store
            .revoke_access_token(&access.hash(), NOW + 1)
            .await
            .unwrap()
    );
    assert!(
        !store
            .revoke_access_token(&access.hash(), NOW + 1)
            .await
            .unwrap()
    );
    assert_eq!(
        store
            .access_token_status(&access.hash(), NOW + 1)
            .await
            .unwrap(),
        TokenStatus::Revoked
    );
    assert_eq!(
        store
            .refresh_token_status(&refresh.hash(), NOW + 1)
            .await
            .unwrap(),
        TokenStatus::Active,
        "revoking an access token leaves its grant alone"
    );
    assert!(
        !store
            .revoke_access_token(&SecretHash::of("unknown"), NOW)
            .await
            .unwrap()
    );
}

fn key(kid: &str, alg: &str) -> StoredKey {
    StoredKey {
        kid: kid.into(),
        alg: alg.into(),
        private_key: format!("plain:{kid}"),
        public_jwk: format!("{{\"kid\":\"{kid}\"}}"),
        created_at: NOW,
        rotated_at: None,
        publish_until: None,
        retired_at: None,
    }
}

pub async fn signing_keys_lifecycle(store: DynStore) {
    let (client, user) = fixture(&store).await;
    assert!(store.insert_active_key(&key("k1", "ES256")).await.unwrap());
    assert!(
        !store.insert_active_key(&key("k1b", "ES256")).await.unwrap(),
        "one active key per algorithm"
    );
    assert!(store.insert_active_key(&key("r1", "RS256")).await.unwrap());
    assert_eq!(
        store
            .rotate_key(&key("k2", "ES256"), NOW + 10, NOW + 100)
            .await
            .unwrap()
            .as_deref(),
        Some("k1")
    );
    let keys = store.signing_keys().await.unwrap();
    let find = |kid: &str| keys.iter().find(|k| k.kid == kid).unwrap().clone();
    assert!(find("k2").is_active() && find("r1").is_active());
    let k1 = find("k1");
    assert_eq!(
        (k1.rotated_at, k1.publish_until),
        (Some(NOW + 10), Some(NOW + 100))
    );
    assert!(!k1.is_active() && k1.is_published(NOW + 99) && !k1.is_published(NOW + 100));
    assert_eq!(k1.private_key, "plain:k1");
    // A JWT access token signed by k2 turns inactive when k2 is retired.
    let (_, new) = new_code(&client, &user);
    let (access, _, mut pair) = new_pair(false, NOW);
    pair.access_kid = Some("k2".into());
    store
        .redeem_code(&new, NOW, &issue(&client, &user, pair))
        .await
        .unwrap();
    assert_eq!(
        store
            .token_info(&access.hash(), NOW)
            .await
            .unwrap()
            .unwrap()
            .status,
        TokenStatus::Active
    );
    assert!(store.retire_key("k2", NOW + 20).await.unwrap());
    assert!(!store.retire_key("k2", NOW + 20).await.unwrap());
    let k2 = store
        .signing_keys()
        .await
        .unwrap()
        .into_iter()
        .find(|k| k.kid == "k2")
        .unwrap();
    assert_eq!(k2.retired_at, Some(NOW + 20));
    assert!(
        !k2.is_active() && !k2.is_published(NOW + 20),
        "a retired key is neither used nor published"
    );
    assert_eq!(
        store
            .token_info(&access.hash(), NOW + 20)
            .await
            .unwrap()
            .unwrap()
            .status,
        TokenStatus::Revoked
    );
    assert!(
        store
            .replace_private_key("k1", "aes256gcm:v1:sealed")
            .await
            .unwrap()
    );
    assert!(!store.replace_private_key("nope", "x").await.unwrap());
    let k1 = store
        .signing_keys()
        .await
        .unwrap()
        .into_iter()
        .find(|k| k.kid == "k1")
        .unwrap();
    assert_eq!(k1.private_key, "aes256gcm:v1:sealed");
    // With its active key retired, an algorithm can get a new first key.
    assert!(store.insert_active_key(&key("k3", "ES256")).await.unwrap());
}

/// Purges everything due at `now`, in batches of two, until nothing more goes.
pub async fn purge_all(store: &DynStore, now: i64) {
    for what in Purge::ALL {
        while store.purge(what, now, 2).await.unwrap() > 0 {}
    }
}

pub async fn ops_and_housekeeping(store: DynStore) {
    store.ping().await.unwrap();
    let (applied, known) = store.schema_version().await.unwrap();
    assert!(known >= 1 && applied == known, "{applied} {known}");
    let (open, idle) = store.pool_state();
    assert!(open >= 1 && idle <= open, "{open} {idle}");

    let (client, user) = fixture(&store).await;
    // Live: a grant whose tokens expire far in the future.
    let (_, live_access, live_refresh) = redeemed(&store, &client, &user).await;
    // Expired: a grant at its absolute cap.
    let (_, old_access, old_refresh) = redeemed(&store, &client, &user).await;
    // Three sessions that expire, one that lives.
    let mut sessions = Vec::new();
    for i in 0..4 {
        let expires_at = if i < 3 { NOW + 10 } else { NOW + 1_000_000 };
        sessions.push(session_until(&store, &user, expires_at).await);
    }
    let (code, new) = new_code(&client, &user);
    seen(&store, &new).await;

    // Batches are bounded: three expired sessions go two, then one.
    assert_eq!(store.purge(Purge::Sessions, NOW + 10, 2).await.unwrap(), 2);
    assert_eq!(store.purge(Purge::Sessions, NOW + 10, 2).await.unwrap(), 1);
    assert_eq!(store.purge(Purge::Sessions, NOW + 10, 2).await.unwrap(), 0);
    assert!(
        store
            .session(&sessions[3].hash(), NOW + 10)
            .await
            .unwrap()
            .is_some(),
        "live session kept"
    );

    // A code past expiry stays for a while (replays are still recognised), then goes.
    purge_all(&store, new.code.expires_at + 1).await;
    assert!(store.code(&code.hash()).await.unwrap().is_some());
    purge_all(&store, new.code.expires_at + CODE_RETENTION).await;
    assert!(store.code(&code.hash()).await.unwrap().is_none());

    // At the grants' absolute cap (NOW + 86400 in these fixtures) they go with their tokens.
    purge_all(&store, NOW + 86_400).await;
    for hash in [old_access.hash(), live_access.hash()] {
        assert_eq!(
            store.access_token_status(&hash, NOW).await.unwrap(),
            TokenStatus::Unknown
        );
    }
    for hash in [old_refresh.hash(), live_refresh.hash()] {
        assert_eq!(
            store.refresh_token_status(&hash, NOW).await.unwrap(),
            TokenStatus::Unknown
        );
    }
    assert!(
        store
            .session(&sessions[3].hash(), NOW + 86_400)
            .await
            .unwrap()
            .is_some(),
        "live session kept"
    );
    assert!(store.user_by_username("alice").await.unwrap().is_some());
    assert!(store.client(&client.client_id).await.unwrap().is_some());
}

pub async fn housekeeping_keeps_live_rows(store: DynStore) {
    let (client, user) = fixture(&store).await;
    let (_, access, refresh) = redeemed(&store, &client, &user).await;
    // Before anything expires, nothing is deleted.
    purge_all(&store, NOW + 1).await;
    assert_eq!(
        store
            .access_token_status(&access.hash(), NOW + 1)
            .await
            .unwrap(),
        TokenStatus::Active
    );
    assert_eq!(
        store
            .refresh_token_status(&refresh.hash(), NOW + 1)
            .await
            .unwrap(),
        TokenStatus::Active
    );
    // The access token (600 s) expires first; the refresh token (3600 s) is untouched.
    purge_all(&store, NOW + 600).await;
    assert_eq!(
        store
            .access_token_status(&access.hash(), NOW + 600)
            .await
            .unwrap(),
        TokenStatus::Unknown
    );
    assert_eq!(
        store
            .refresh_token_status(&refresh.hash(), NOW + 600)
            .await
            .unwrap(),
        TokenStatus::Active
    );
    // A revoked grant is kept a day, then goes.
    let (grant_id, _, revoked_refresh) = redeemed(&store, &client, &user).await;
    store
        .revoke_grant(&grant_id, NOW + 700, "test")
        .await
        .unwrap();
    purge_all(&store, NOW + 701).await;
    assert_eq!(
        store
            .refresh_token_status(&revoked_refresh.hash(), NOW + 701)
            .await
            .unwrap(),
        TokenStatus::Revoked
    );
    purge_all(&store, NOW + 700 + REVOKED_GRANT_RETENTION).await;
    assert_eq!(
        store
            .refresh_token_status(&revoked_refresh.hash(), NOW + 701)
            .await
            .unwrap(),
        TokenStatus::Unknown
    );
}

/// Housekeeping deletes a row in the purge that reaches its expiry (plus its retention), never a
/// second earlier, and every row of that second with it, however many share it.
pub async fn purge_is_exact_to_the_second(store: DynStore) {
    let (client, user) = fixture(&store).await;
    // Three codes, access tokens, refresh tokens and grants expire in the same second; a fourth
    // of each a second later.
    let mut codes = Vec::new();
    let mut tokens = Vec::new();
    for i in 0..4 {
        let later = i64::from(i == 3);
        let (code, mut new) = new_code(&client, &user);
        new.code.expires_at += later;
        seen(&store, &new).await;
        codes.push(code);
        tokens.push(redeemed_expiring_later(&store, &client, &user, later).await);
    }
    // Access tokens at NOW + 600, refresh tokens at NOW + 3600 (the fourth a second later).
    use TokenStatus::{Active, Unknown};
    let access: Vec<_> = tokens.iter().map(|t| t.1.hash()).collect();
    let refresh: Vec<_> = tokens.iter().map(|t| t.2.hash()).collect();
    purge_all(&store, NOW + 599).await;
    assert_eq!(statuses(&store, &access, false).await, [Active; 4]);
    purge_all(&store, NOW + 600).await;
    assert_eq!(
        statuses(&store, &access, false).await,
        [Unknown, Unknown, Unknown, Active]
    );
    assert_eq!(statuses(&store, &refresh, true).await, [Active; 4]);
    purge_all(&store, NOW + 3599).await;
    assert_eq!(statuses(&store, &refresh, true).await, [Active; 4]);
    purge_all(&store, NOW + 3600).await;
    assert_eq!(
        statuses(&store, &refresh, true).await,
        [Unknown, Unknown, Unknown, Active]
    );

    // Codes an hour after they expire at NOW + 60 (the fourth a second later).
    let code_gone = NOW + 60 + CODE_RETENTION;
    purge_all(&store, code_gone - 1).await;
    assert_eq!(codes_kept(&store, &codes).await, [true; 4]);
    purge_all(&store, code_gone).await;
    assert_eq!(
        codes_kept(&store, &codes).await,
        [false, false, false, true]
    );

    // Grants at NOW + 86 400: a grant that is still stored can be revoked, a purged one cannot.
    purge_all(&store, NOW + 86_399).await;
    assert!(
        store
            .revoke_grant(&tokens[0].0, NOW + 86_399, "test")
            .await
            .unwrap()
    );
    purge_all(&store, NOW + 86_400).await;
    for (i, (grant_id, _, _)) in tokens.iter().enumerate().skip(1) {
        let found = store
            .revoke_grant(grant_id, NOW + 86_400, "test")
            .await
            .unwrap();
        assert_eq!(found, i == 3, "grant {i} at its expiry");
    }
}

/// Each token's status as of NOW: refresh tokens if `refresh`, else access tokens.
async fn statuses(store: &DynStore, hashes: &[SecretHash], refresh: bool) -> Vec<TokenStatus> {
    let mut statuses = Vec::new();
    for hash in hashes {
        statuses.push(if refresh {
            store.refresh_token_status(hash, NOW).await.unwrap()
        } else {
            store.access_token_status(hash, NOW).await.unwrap()
        });
    }
    statuses
}

async fn codes_kept(store: &DynStore, codes: &[Secret]) -> Vec<bool> {
    let mut kept = Vec::new();
    for code in codes {
        kept.push(store.code(&code.hash()).await.unwrap().is_some());
    }
    kept
}

/// What a store held before schema 8 (SQLite) or 5 (PostgreSQL), when a stored hash was the
/// whole SHA-256 digest: one of each kind of stored secret, written through the store, whose
/// columns the backend's test then lengthens to their old form ([`Self::lengthen`]) before it
/// sets the schema back and opens the store again, which migrates them.
pub struct HashedBeforeShortHashes {
    session: Secret,
    pending: Secret,
    browser: Secret,
    access: Secret,
    refresh: Secret,
    successor_access: Secret,
    successor: Secret,
    code: Secret,
}

/// The stored form of a secret before schema 8 (SQLite) or 5 (PostgreSQL): its issue time, if
/// any, then the whole SHA-256 digest in hex.
fn full_hash(secret: &Secret) -> String {
    use sha2::Digest as _;
    let short = secret.hash();
    let time = &short.as_str()[..short.as_str().len() - 2 * DIGEST_BYTES];
    let digest: String = sha2::Sha256::digest(secret.expose().as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("{time}{digest}")
}

impl HashedBeforeShortHashes {
    /// `(table, column, stored now, stored before the upgrade)` for each secret written.
    pub fn lengthen(&self) -> Vec<(&'static str, &'static str, String, String)> {
        let row =
            |table, column, s: &Secret| (table, column, s.hash().as_str().to_owned(), full_hash(s));
        vec![
            row("sessions", "id_hash", &self.session),
            row("pending_authorizations", "id_hash", &self.pending),
            row("pending_authorizations", "browser_hash", &self.browser),
            row("pending_authorizations", "login_session", &self.session),
            row("codes", "hash", &self.code),
            row("access_tokens", "hash", &self.access),
            row("access_tokens", "hash", &self.successor_access),
            row("refresh_tokens", "hash", &self.refresh),
            row("refresh_tokens", "hash", &self.successor),
            row("refresh_tokens", "access_hash", &self.access),
            row("refresh_tokens", "access_hash", &self.successor_access),
            row("refresh_tokens", "successor_hash", &self.successor),
        ]
    }
}

/// Writes one secret of each kind: a session, a pending authorization logged in with it, a
/// redeemed code, and its grant's refresh token rotated once.
pub async fn store_secrets_before_short_hashes(store: &DynStore) -> HashedBeforeShortHashes {
    let (client, user) = fixture(store).await;
    let session = session_until(store, &user, NOW + 600).await;
    let pending = Secret::generate(SecretKind::PendingAuthorization);
    let browser = Secret::generate(SecretKind::Browser);
    store
        .insert_pending(&PendingAuthorization {
            id_hash: pending.hash(),
            browser_hash: browser.hash(),
            request: ValidAuthorize {
                client_id: client.client_id.clone(),
                redirect_uri: "myapp://cb".into(),
                redirect_uri_sent: true,
                scope: Scope::parse("a").unwrap(),
                state: None,
                code_challenge: CodeChallenge::parse(&pkce::s256_challenge(&"v".repeat(43)))
                    .unwrap(),
                code_challenge_method: ChallengeMethod::S256,
                used_liferay_compat: false,
                nonce: None,
                prompt: Prompt::default(),
                max_age: None,
            },
            login_required: false,
            login_session: None,
            created_at: NOW,
            expires_at: NOW + 600,
        })
        .await
        .unwrap();
    assert!(
        store
            .attach_login(&pending.hash(), &session.hash())
            .await
            .unwrap()
    );
    let (code, new) = new_code(&client, &user);
    let (access, refresh, pair) = new_pair(true, NOW);
    assert_eq!(
        store
            .redeem_code(&new, NOW, &issue(&client, &user, pair))
            .await
            .unwrap(),
        RedeemOutcome::Redeemed
    );
    let refresh = refresh.unwrap();
    let (successor_access, successor, pair) = new_pair(true, NOW);
    assert_eq!(
        store
            .rotate_refresh(&refresh.hash(), NOW + 1, &pair)
            .await
            .unwrap(),
        CasOutcome::Done
    );
    HashedBeforeShortHashes {
        session,
        pending,
        browser,
        access,
        refresh,
        successor_access,
        successor: successor.unwrap(),
        code,
    }
}

/// After the upgrade, every secret stored in full before it is found by the short hash the
/// new version computes, and the links between rows (a pending authorization's login, a rotated
/// refresh token's successor and the successor's access token) still hold.
pub async fn secrets_stored_before_short_hashes_are_found(
    store: &DynStore,
    before: &HashedBeforeShortHashes,
) {
    assert!(
        store
            .session(&before.session.hash(), NOW)
            .await
            .unwrap()
            .is_some()
    );
    let pending = store
        .pending(&before.pending.hash(), NOW)
        .await
        .unwrap()
        .expect("pending authorization found");
    assert_eq!(pending.browser_hash, before.browser.hash());
    assert_eq!(pending.login_session, Some(before.session.hash()));
    let code = store
        .code(&before.code.hash())
        .await
        .unwrap()
        .expect("the redeemed code's row found");
    assert!(code.redeemed);
    assert_eq!(
        store
            .access_token_status(&before.access.hash(), NOW + 2)
            .await
            .unwrap(),
        TokenStatus::Active
    );
    let state = store
        .refresh_state(&before.refresh.hash())
        .await
        .unwrap()
        .expect("rotated refresh token found");
    assert!(state.used_at.is_some() && !state.successor_used);
    // The lost-response grace finds the successor by the rotated row's successor_hash, and the
    // successor's access token by the successor row's access_hash: it revokes both.
    let (_, _, pair) = new_pair(true, NOW);
    assert_eq!(
        store
            .grace_reissue(&before.refresh.hash(), NOW + 2, &pair)
            .await
            .unwrap(),
        CasOutcome::Done
    );
    assert_eq!(
        store
            .refresh_token_status(&before.successor.hash(), NOW + 2)
            .await
            .unwrap(),
        TokenStatus::Revoked
    );
    assert_eq!(
        store
            .access_token_status(&before.successor_access.hash(), NOW + 2)
            .await
            .unwrap(),
        TokenStatus::Revoked
    );
}
