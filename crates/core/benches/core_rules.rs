//! Micro-benchmarks of the core rules on the hot path of every flow: PKCE verification,
//! secret generation and hashing, authorization request validation and redirect URI matching.
//!
//! `cargo bench -p oauthd-core --bench core_rules` (see BENCHMARKS.md).
use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};

use oauthd_core::authorize::{parse_query, validate};
use oauthd_core::client::{AccessTokenFormat, Client, ClientKind, GrantType};
use oauthd_core::jose::JwsAlg;
use oauthd_core::pkce::{self, CodeChallenge, PkceMode};
use oauthd_core::redirect_uri::RedirectUri;
use oauthd_core::scope::Scope;
use oauthd_core::secret::{Secret, SecretKind};

/// A 43-character RFC 7636 verifier (the minimum length, what most apps send).
const VERIFIER: &str = "dBjftJeZ4CVP-mJ92K9IHgT4sUx3wLQ2Oq2pELyfE3o";

fn client(uris: &[&str]) -> Client {
    Client {
        client_id: "bench-public".into(),
        name: "Bench".into(),
        kind: ClientKind::Public,
        secret_hash: None,
        redirect_uris: uris
            .iter()
            .map(|u| RedirectUri::register(u).unwrap().0)
            .collect(),
        grants: vec![GrantType::AuthorizationCode, GrantType::RefreshToken],
        scopes: Scope::parse("photos:read profile").unwrap(),
        trusted: false,
        pkce: PkceMode::Strict,
        access_token_ttl: 600,
        refresh_token_ttl: 3600,
        access_token_format: AccessTokenFormat::Opaque,
        access_token_alg: JwsAlg::ES256,
        id_token_alg: JwsAlg::RS256,
        audience: vec![],
        created_at: 0,
    }
}

fn bench_pkce(c: &mut Criterion) {
    let challenge = CodeChallenge::parse(&pkce::s256_challenge(VERIFIER)).unwrap();
    let wrong = CodeChallenge::parse(&pkce::s256_challenge(&VERIFIER.replace('d', "e"))).unwrap();
    let mut g = c.benchmark_group("pkce");
    g.bench_function("verify_s256_ok", |b| {
        b.iter(|| pkce::verify(black_box(VERIFIER), black_box(&challenge), PkceMode::Strict))
    });
    g.bench_function("verify_s256_mismatch", |b| {
        b.iter(|| pkce::verify(black_box(VERIFIER), black_box(&wrong), PkceMode::Strict))
    });
    let long = "a".repeat(128);
    let long_challenge = CodeChallenge::parse(&pkce::s256_challenge(&long)).unwrap();
    g.bench_function("verify_s256_128_chars", |b| {
        b.iter(|| {
            pkce::verify(
                black_box(&long),
                black_box(&long_challenge),
                PkceMode::Strict,
            )
        })
    });
    g.finish();
}

fn bench_secret(c: &mut Criterion) {
    let mut g = c.benchmark_group("secret");
    g.bench_function("generate", |b| {
        b.iter(|| Secret::generate(black_box(SecretKind::AccessToken)))
    });
    let token = Secret::generate(SecretKind::AccessToken);
    g.bench_function("hash", |b| b.iter(|| black_box(&token).hash()));
    // What the server does for each token it issues: a fresh value and its stored hash.
    g.bench_function("generate_and_hash", |b| {
        b.iter(|| {
            let s = Secret::generate(black_box(SecretKind::RefreshToken));
            let h = s.hash();
            (s, h)
        })
    });
    g.finish();
}

fn bench_authorize(c: &mut Criterion) {
    let registered = client(&["myapp://oauth2redirect", "http://127.0.0.1/callback"]);
    let challenge = pkce::s256_challenge(VERIFIER);
    let query = format!(
        "response_type=code&client_id=bench-public&redirect_uri=myapp%3A%2F%2Foauth2redirect\
         &scope=photos%3Aread&state=xyzABC123&code_challenge={challenge}&code_challenge_method=S256"
    );
    let loopback = format!(
        "response_type=code&client_id=bench-public&redirect_uri=http%3A%2F%2F127.0.0.1%3A51004%2Fcallback\
         &scope=photos%3Aread%20profile&state=xyzABC123&code_challenge={challenge}&code_challenge_method=S256"
    );
    let mut g = c.benchmark_group("authorize");
    g.bench_function("parse_query", |b| {
        b.iter(|| parse_query(black_box(query.as_bytes())).unwrap())
    });
    let (params, _) = parse_query(query.as_bytes()).unwrap();
    g.bench_function("validate", |b| {
        b.iter(|| validate(black_box(&params), Some(black_box(&registered))).unwrap())
    });
    g.bench_function("parse_and_validate", |b| {
        b.iter(|| {
            let (params, _) = parse_query(black_box(query.as_bytes())).unwrap();
            validate(&params, Some(&registered)).unwrap()
        })
    });
    g.bench_function("parse_and_validate_loopback_port", |b| {
        b.iter(|| {
            let (params, _) = parse_query(black_box(loopback.as_bytes())).unwrap();
            validate(&params, Some(&registered)).unwrap()
        })
    });
    g.finish();
}

fn bench_redirect_uri(c: &mut Criterion) {
    let custom = RedirectUri::register("com.example.myapp:/oauth2redirect")
        .unwrap()
        .0;
    let loopback = RedirectUri::register("http://127.0.0.1/callback")
        .unwrap()
        .0;
    let mut g = c.benchmark_group("redirect_uri");
    g.bench_function("matches_exact", |b| {
        b.iter(|| custom.matches(black_box("com.example.myapp:/oauth2redirect")))
    });
    g.bench_function("matches_mismatch", |b| {
        b.iter(|| custom.matches(black_box("com.example.myapp:/oauth2redirectX")))
    });
    g.bench_function("matches_loopback_any_port", |b| {
        b.iter(|| loopback.matches(black_box("http://127.0.0.1:51004/callback")))
    });
    g.finish();
}

criterion_group!(
    benches,
    bench_pkce,
    bench_secret,
    bench_authorize,
    bench_redirect_uri
);
criterion_main!(benches);
