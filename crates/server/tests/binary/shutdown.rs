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
