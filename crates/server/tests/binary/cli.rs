//! The command line: admin commands, configuration errors, signals.
use std::time::Duration;

use crate::process::*;

#[test]
fn client_commands_round_trip() {
    let (_dir, db) = temp_db();
    let (code, out, err) = run(
        &[
            "client",
            "create",
            "--database",
            &db,
            "--name",
            "Server app",
            "--client-id",
            "srv",
            "--confidential",
            "--redirect-uri",
            "https://app.example/cb",
            "--grant",
            "authorization_code",
            "--scope",
            "a",
            "--json",
        ],
        None,
    );
    assert_eq!(code, 0, "{err}");
    let created: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    let secret = created["client_secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("ocs_"));
    assert_eq!(created["grants"], serde_json::json!(["authorization_code"]));
    let (code, out, _) = run(&["client", "show", "srv", "--database", &db], None);
    assert_eq!(code, 0);
    assert!(
        out.contains("kind: confidential") && out.contains("pkce: strict"),
        "{out}"
    );
    assert!(!out.contains(&secret), "the secret is shown once only");
    let (code, out, _) = run(
        &[
            "client",
            "rotate-secret",
            "srv",
            "--database",
            &db,
            "--json",
        ],
        None,
    );
    assert_eq!(code, 0);
    let rotated: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_ne!(rotated["client_secret"].as_str().unwrap(), secret);
    let (_, out, _) = run(&["client", "list", "--database", &db], None);
    assert!(out.starts_with("srv\tconfidential\tServer app"), "{out}");
    assert_eq!(
        run(&["client", "delete", "srv", "--database", &db], None).0,
        0
    );
    let (code, _, err) = run(&["client", "show", "srv", "--database", &db], None);
    assert_eq!(code, 1);
    assert_eq!(err.trim(), "error: client \"srv\" does not exist");
}

#[test]
fn client_create_validates_redirect_uris() {
    let (_dir, db) = temp_db();
    for (uri, needle) in [
        ("http://app.example/cb", "plain http"),
        ("https://app.example/cb#x", "fragment"),
        ("javascript:alert(1)", "forbidden scheme"),
        ("data:text/html,hi", "forbidden scheme"),
        ("file:///etc/passwd", "forbidden scheme"),
    ] {
        let (code, _, err) = run(
            &[
                "client",
                "create",
                "--database",
                &db,
                "--name",
                "x",
                "--redirect-uri",
                uri,
            ],
            None,
        );
        assert_eq!(code, 2, "{uri}");
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains(needle), "{uri}: {err}");
    }
    let (code, out, err) = run(
        &[
            "client",
            "create",
            "--database",
            &db,
            "--name",
            "x",
            "--redirect-uri",
            "myapp://cb",
        ],
        None,
    );
    assert_eq!(code, 0, "{err}");
    assert!(
        err.starts_with("warning:") && err.contains("reverse-DNS"),
        "{err}"
    );
    assert!(out.contains("kind: public"), "{out}");
    let (code, _, err) = run(
        &[
            "client",
            "create",
            "--database",
            &db,
            "--name",
            "x",
            "--redirect-uri",
            "com.example.app:/cb",
        ],
        None,
    );
    assert_eq!(code, 0);
    assert!(err.is_empty(), "no warning for reverse-DNS schemes: {err}");
}

#[test]
fn user_commands_round_trip() {
    let (_dir, db) = temp_db();
    let (code, _, err) = run(
        &[
            "user",
            "create",
            "--database",
            &db,
            "--username",
            "bob",
            "--password-stdin",
        ],
        Some("short\n"),
    );
    assert_eq!(code, 2);
    assert!(err.contains("at least 8"), "{err}");
    assert_eq!(
        run(
            &[
                "user",
                "create",
                "--database",
                &db,
                "--username",
                "bob",
                "--password-stdin"
            ],
            Some("long enough pw\n")
        )
        .0,
        0
    );
    let (code, _, err) = run(
        &[
            "user",
            "create",
            "--database",
            &db,
            "--username",
            "bob",
            "--password",
            "another pw",
        ],
        None,
    );
    assert_eq!(code, 2);
    assert!(err.contains("already exists"), "{err}");
    let (_, out, _) = run(&["user", "list", "--database", &db, "--json"], None);
    let users: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(users[0]["username"], "bob");
    assert!(!out.contains("argon2"), "hashes are never printed");
    assert_eq!(
        run(
            &[
                "user",
                "set-password",
                "bob",
                "--database",
                &db,
                "--password-stdin"
            ],
            Some("a new password\n")
        )
        .0,
        0
    );
    assert_eq!(
        run(&["user", "delete", "bob", "--database", &db], None).0,
        0
    );
    assert_eq!(
        run(&["user", "delete", "bob", "--database", &db], None).0,
        1
    );
}

#[test]
fn bad_configuration_exits_2_with_one_line() {
    let (dir, db) = temp_db();
    type Case<'a> = (Vec<String>, Vec<(&'a str, &'a str)>, &'a str);
    let cases: Vec<Case> = vec![
        (
            vec!["--listen".into(), "nowhere".into()],
            vec![],
            "listen address",
        ),
        (
            vec!["--issuer".into(), "http://auth.example".into()],
            vec![],
            "https",
        ),
        (
            vec![],
            vec![("OAUTHD_CODE_LIFETIME", "9999")],
            "code_lifetime",
        ),
        (
            vec![],
            vec![("OAUTHD_CODE_LIFETIME", "soon")],
            "invalid configuration",
        ),
        (
            vec!["--database".into(), "mysql://x".into()],
            vec![],
            "not supported",
        ),
    ];
    for (args, env, needle) in cases {
        let out = std::process::Command::new(BIN)
            .arg("serve")
            .args(&args)
            .args(if args.iter().any(|a| a == "--database") {
                vec![]
            } else {
                vec!["--database".to_owned(), db.clone()]
            })
            .envs(env.iter().copied())
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?} {env:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(
            err.starts_with("error: ") && err.contains(needle),
            "{needle}: {err}"
        );
    }
    let toml = dir.path().join("oauthd.toml");
    std::fs::write(&toml, "listen = \"127.0.0.1:0\"\ncode_lifetim = 30\n").unwrap();
    let (code, _, err) = run(
        &[
            "serve",
            "--config",
            toml.to_str().unwrap(),
            "--database",
            &db,
        ],
        None,
    );
    assert_eq!(code, 2);
    assert!(err.contains("code_lifetim"), "{err}");
    let (code, _, err) = run(&["serve", "--config", "/nonexistent/oauthd.toml"], None);
    assert_eq!(code, 2);
    assert!(err.contains("does not exist"), "{err}");
}

#[tokio::test]
async fn config_file_and_environment_are_layered_under_flags() {
    let (dir, db) = temp_db();
    let toml = dir.path().join("oauthd.toml");
    std::fs::write(
        &toml,
        format!("database_url = \"{db}\"\nissuer = \"https://from-file.example\"\n"),
    )
    .unwrap();
    let served = serve(&["--config", toml.to_str().unwrap()]).await;
    assert_eq!(served.issuer, "https://from-file.example");
    let meta: serde_json::Value = reqwest::get(format!(
        "{}/.well-known/oauth-authorization-server",
        served.base
    ))
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(meta["issuer"], "https://from-file.example");
    let served = serve(&[
        "--config",
        toml.to_str().unwrap(),
        "--issuer",
        "https://from-flag.example",
    ])
    .await;
    assert_eq!(served.issuer, "https://from-flag.example");
}

#[tokio::test]
async fn sigterm_shuts_down_gracefully() {
    let (_dir, db) = temp_db();
    let mut served = serve(&["--database", &db]).await;
    let pid = served.child.id().unwrap();
    assert!(
        reqwest::get(format!(
            "{}/.well-known/oauth-authorization-server",
            served.base
        ))
        .await
        .unwrap()
        .status()
        .is_success()
    );
    std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    let status = tokio::time::timeout(Duration::from_secs(10), served.child.wait())
        .await
        .expect("exits promptly")
        .unwrap();
    assert!(status.success(), "{status:?}");
}
