//! Stopping the server as soon as it says it is listening.
use std::time::Duration;

use crate::flow::*;
use crate::process::*;

/// A supervisor may send SIGTERM the moment `oauthd` reports that it listens; the server
/// must then stop gracefully (exit 0), not die of the signal's default action.
#[tokio::test]
async fn sigterm_right_after_listening_is_graceful() {
    let (_dir, db) = temp_db();
    for attempt in 0..5 {
        let (mut child, _) = start(&db, None).await.expect("starts");
        let pid = child.id().unwrap();
        std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .unwrap();
        let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
            .await
            .expect("exits promptly")
            .unwrap();
        assert!(
            status.success(),
            "attempt {attempt}: SIGTERM just after \"listening on\" was not handled: {status:?}"
        );
    }
}

/// A request in flight when SIGTERM arrives is finished and answered before the process
/// exits (its body is still arriving when the signal comes, so it is surely in flight).
#[tokio::test]
async fn sigterm_drains_a_request_in_flight() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    let (_dir, db) = temp_db();
    let (mut child, base) = start(&db, None).await.expect("starts");
    let addr = base.trim_start_matches("http://").to_owned();
    let body = "grant_type=authorization_code&client_id=nobody&code=c&code_verifier=v";
    let (first, rest) = body.split_at(20);
    let mut conn = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let head = format!(
        "POST /o/oauth2/token HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{first}",
        body.len()
    );
    conn.write_all(head.as_bytes()).await.unwrap();
    // Let the server take the request in before the signal.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let pid = child.id().unwrap();
    std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        child.try_wait().unwrap().is_none(),
        "the server waits for the request in flight"
    );
    conn.write_all(rest.as_bytes()).await.unwrap();
    let mut response = String::new();
    tokio::time::timeout(Duration::from_secs(10), conn.read_to_string(&mut response))
        .await
        .expect("the answer arrives")
        .unwrap();
    // The unknown client is refused, but the request got its whole answer.
    assert!(response.starts_with("HTTP/1.1 401"), "{response}");
    assert!(response.contains("invalid_client"), "{response}");
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .expect("then exits")
        .unwrap();
    assert!(status.success(), "{status:?}");
    // And it no longer accepts connections.
    assert!(tokio::net::TcpStream::connect(&addr).await.is_err());
}
