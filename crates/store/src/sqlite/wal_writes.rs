//! Opening SQLite files through the VFS of `crates/store/sqlite/wal_writes.c`: SQLite's
//! "unix" VFS, except that the frames a commit appends to the WAL reach the kernel as one
//! write, not two per page (a frame header, then the page). Each `pwrite` costs about 1.7 µs
//! of kernel CPU whatever its size, and a commit at c=8 writes 23 pages (BENCHMARKS.md,
//! eighth session). The bytes, their offsets and their order against every sync are the
//! same, so durability is SQLite's own: the C file says when the gathered bytes are written.
//! The WAL also grows a MiB of zeros at a time, ahead of its frames, so that a commit's
//! fdatasync seldom has blocks to allocate or an inode to write.
use std::path::Path;

use rusqlite::{Connection, OpenFlags};

/// The name `wal_writes.c` registers its VFS under when SQLite initialises.
const WAL_WRITES_VFS: &str = "oauthd";

/// Open a database file through the WAL-writes VFS. A SQLite built without it (under
/// another `LIBSQLITE3_FLAGS` than .cargo/config.toml's) still works, on the "unix" VFS,
/// with a warning: every commit then costs the extra writes.
pub(crate) fn open_file(path: &Path, flags: OpenFlags) -> rusqlite::Result<Connection> {
    open_through(WAL_WRITES_VFS, path, flags)
}

fn open_through(vfs: &str, path: &Path, flags: OpenFlags) -> rusqlite::Result<Connection> {
    match Connection::open_with_flags_and_vfs(path, flags, vfs) {
        Err(rusqlite::Error::SqliteFailure(_, Some(message)))
            if message == format!("no such vfs: {vfs}") =>
        {
            static WARNED: std::sync::Once = std::sync::Once::new();
            WARNED.call_once(|| {
                tracing::warn!(
                    "this build's SQLite lacks the {vfs:?} VFS, so each commit writes every WAL \
                     page in two calls; build with .cargo/config.toml's LIBSQLITE3_FLAGS to get it"
                );
            });
            Connection::open_with_flags(path, flags)
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Write system calls made by this thread so far (Linux per-thread I/O accounting).
    fn writes_by_this_thread() -> u64 {
        let io = std::fs::read_to_string("/proc/thread-self/io").unwrap();
        io.lines()
            .find_map(|l| l.strip_prefix("syscw: "))
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    }

    fn wal_db(dir: &tempfile::TempDir, synchronous: &str) -> Connection {
        let conn = open_file(&dir.path().join("w.db"), OpenFlags::default()).unwrap();
        conn.execute_batch(&format!(
            "PRAGMA page_size = 2048; PRAGMA journal_mode = WAL; PRAGMA synchronous = {synchronous};
             CREATE TABLE t (id INTEGER PRIMARY KEY, v BLOB NOT NULL);"
        ))
        .unwrap();
        conn
    }

    fn insert(conn: &Connection, from: i64, rows: i64, bytes: i64) {
        conn.execute(
            "WITH RECURSIVE n(i) AS (SELECT ?1 UNION ALL SELECT i + 1 FROM n WHERE i < ?1 + ?2 - 1)
             INSERT INTO t (id, v) SELECT i, randomblob(?3) FROM n",
            (from, rows, bytes),
        )
        .unwrap();
    }

    /// Frames in the WAL: those after its header that carry its salts. (The file is longer:
    /// it grows ahead of its frames.)
    fn wal_frames(dir: &tempfile::TempDir) -> u64 {
        frames_in(&std::fs::read(dir.path().join("w.db-wal")).unwrap())
    }

    fn frames_in(wal: &[u8]) -> u64 {
        const HEADER: usize = 32;
        const FRAME: usize = 24 + 2048;
        let Some(salts) = wal.get(16..24) else {
            return 0;
        };
        let mut frames = 0;
        while let Some(frame) = wal.get(HEADER + frames * FRAME..HEADER + (frames + 1) * FRAME) {
            if frame[..4] == [0; 4] || &frame[8..16] != salts {
                break;
            }
            frames += 1;
        }
        frames as u64
    }

    /// Copies of the database and its WAL as a crash would leave them, opened: SQLite
    /// recovers the WAL from what the file holds.
    fn crash_copy(dir: &tempfile::TempDir) -> Connection {
        for file in ["w.db", "w.db-wal"] {
            let copy = dir.path().join(file.replace("w.db", "copy.db"));
            std::fs::copy(dir.path().join(file), copy).unwrap();
        }
        Connection::open(dir.path().join("copy.db")).unwrap()
    }

    fn count(conn: &Connection) -> i64 {
        conn.query_row("SELECT COUNT(*) FROM t", [], |r| r.get(0))
            .unwrap()
    }

    /// Rows, and bytes in them.
    fn rows_and_bytes(conn: &Connection) -> (i64, i64) {
        conn.query_row("SELECT COUNT(*), SUM(LENGTH(v)) FROM t", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap()
    }

    fn assert_intact(conn: &Connection) {
        let check: String = conn
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .unwrap();
        assert_eq!(check, "ok");
    }

    #[test]
    fn a_commit_writes_its_wal_frames_in_one_call() {
        let dir = tempfile::tempdir().unwrap();
        let conn = wal_db(&dir, "FULL");
        let frames_before = wal_frames(&dir);
        let before = writes_by_this_thread();
        conn.execute_batch("BEGIN").unwrap();
        insert(&conn, 1, 60, 1000);
        conn.execute_batch("COMMIT").unwrap();
        let writes = writes_by_this_thread() - before;
        let frames = wal_frames(&dir) - frames_before;
        // The "unix" VFS alone makes two writes per frame: 60 rows of 1 000 bytes are more
        // than 30 pages, so more than 60 writes.
        assert!(frames >= 30, "the commit wrote {frames} frames");
        assert_eq!(writes, 1, "{frames} frames took {writes} writes");
        assert_eq!(count(&conn), 60);
    }

    #[test]
    fn a_sqlite_without_the_vfs_opens_on_the_unix_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("u.db");
        let conn = open_through("not-registered", &path, OpenFlags::default()).unwrap();
        conn.execute_batch("CREATE TABLE t (x); INSERT INTO t VALUES (1);")
            .unwrap();
        assert_eq!(count(&conn), 1);
        // Any other failure is still an error.
        let missing = dir.path().join("no-such-dir").join("u.db");
        assert!(open_file(&missing, OpenFlags::SQLITE_OPEN_READ_WRITE).is_err());
    }

    #[test]
    fn a_commit_is_in_the_file_before_it_returns() {
        for synchronous in ["FULL", "NORMAL"] {
            let dir = tempfile::tempdir().unwrap();
            let conn = wal_db(&dir, synchronous);
            insert(&conn, 1, 40, 300);
            // A crash now keeps what the files hold: a copy of them, taken without closing
            // anything, must hold the commit. With NORMAL nothing is synced: the commit frame
            // or the unlock after it puts it there.
            let copy = crash_copy(&dir);
            assert_eq!(count(&copy), 40, "synchronous={synchronous}");
            // Another connection, reading the same WAL through its own file, sees it too.
            let other = Connection::open(dir.path().join("w.db")).unwrap();
            assert_eq!(count(&other), 40, "synchronous={synchronous}");
        }
    }

    #[test]
    fn readers_never_see_a_commit_before_its_frames_are_in_the_file() {
        // With synchronous=NORMAL nothing syncs the WAL, so only the commit-frame rule puts a
        // commit's frames in the file before the wal-index shows them to other connections:
        // the connection lets go of its write lock (where it writes the rest) only after.
        // Each commit opens the window once. Without the rule, this failed in 4 runs of 5 here
        // ("disk I/O error": a short read of a frame not yet in the file).
        const COMMITS: i64 = 40_000;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.db");
        let writer = wal_db(&dir, "NORMAL");
        let done = std::sync::atomic::AtomicBool::new(false);
        let read_until_done = || {
            let conn = open_file(&path, OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
            conn.busy_timeout(std::time::Duration::from_secs(5))
                .unwrap();
            let mut seen = 0;
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                let (rows, bytes) = conn
                    .query_row("SELECT COUNT(*), TOTAL(LENGTH(v)) FROM t", [], |r| {
                        Ok((r.get::<_, i64>(0)?, r.get::<_, f64>(1)?))
                    })
                    .unwrap();
                assert_eq!(bytes, (rows * 700) as f64, "a row read back wrong");
                assert!(rows >= seen, "rows went from {seen} to {rows}");
                seen = rows;
            }
            seen
        };
        std::thread::scope(|scope| {
            let readers = [scope.spawn(read_until_done), scope.spawn(read_until_done)];
            for i in 0..COMMITS {
                insert(&writer, i + 1, 1, 700);
            }
            done.store(true, std::sync::atomic::Ordering::Relaxed);
            for reader in readers {
                assert!(reader.join().unwrap() > 0, "a reader saw no commit");
            }
        });
        assert_eq!(count(&writer), COMMITS);
    }

    #[test]
    fn a_transaction_larger_than_the_page_cache_reads_back_the_pages_it_spilled() {
        let dir = tempfile::tempdir().unwrap();
        let conn = wal_db(&dir, "FULL");
        // Ten pages of cache: the transaction spills its pages to the WAL before it commits,
        // then reads them back from there.
        conn.execute_batch("PRAGMA cache_size = 10").unwrap();
        conn.execute_batch("BEGIN").unwrap();
        let frames_before = wal_frames(&dir);
        insert(&conn, 1, 500, 500);
        let (rows, bytes) = rows_and_bytes(&conn);
        assert_eq!((rows, bytes), (500, 250_000));
        // What it read back from the WAL was written there before it was read.
        assert!(wal_frames(&dir) > frames_before + 20, "nothing spilled");
        conn.execute_batch("ROLLBACK").unwrap();
        assert_eq!(count(&conn), 0);
        conn.execute_batch("BEGIN").unwrap();
        insert(&conn, 1, 500, 500);
        conn.execute_batch("COMMIT").unwrap();
        let other = Connection::open(dir.path().join("w.db")).unwrap();
        assert_eq!(count(&other), 500);
        assert_intact(&other);
    }

    #[test]
    fn a_rolled_back_transaction_never_overwrites_what_another_connection_committed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.db");
        let a = wal_db(&dir, "FULL");
        insert(&a, 1, 10, 100);
        // A transaction that spills its pages to the WAL, then rolls back: those frames are
        // past the WAL's valid end, where the next commit, from any connection, goes.
        // (On the "unix" VFS its frames are in the file before it ends: it does spill.)
        let scratch = tempfile::tempdir().unwrap();
        let plain = Connection::open(scratch.path().join("w.db")).unwrap();
        plain
            .execute_batch(
                "PRAGMA page_size = 2048; PRAGMA journal_mode = WAL; PRAGMA cache_size = 10;
                 CREATE TABLE t (id INTEGER PRIMARY KEY, v BLOB NOT NULL); BEGIN",
            )
            .unwrap();
        insert(&plain, 1_000, 300, 500);
        assert!(wal_frames(&scratch) > 20, "the transaction did not spill");
        // With the WAL empty first, the rollback reads nothing back from it (which would
        // write the gathered frames out while this connection still holds the write lock).
        a.execute_batch("PRAGMA wal_checkpoint(TRUNCATE); PRAGMA cache_size = 10; BEGIN")
            .unwrap();
        insert(&a, 1_000, 300, 500);
        a.execute_batch("ROLLBACK").unwrap();
        // Another connection commits over that stretch of the WAL.
        let b = open_file(&path, OpenFlags::default()).unwrap();
        b.execute_batch("PRAGMA synchronous = FULL").unwrap();
        insert(&b, 2_000, 300, 500);
        // The first connection writes again, elsewhere in the WAL.
        insert(&a, 5_000, 1, 10);
        let c = Connection::open(&path).unwrap();
        let (rows, bytes) = rows_and_bytes(&c);
        assert_eq!((rows, bytes), (311, 10 * 100 + 300 * 500 + 10));
        assert_intact(&c);
    }

    #[test]
    fn commits_larger_than_one_write_are_kept_whole() {
        // 300 KB is more than SQLite's unix VFS takes in one write (it keeps 17 bits of the
        // size); 3 MB is more than the VFS gathers before writing.
        for (rows, bytes) in [(300, 1000), (3000, 1000)] {
            let dir = tempfile::tempdir().unwrap();
            let conn = wal_db(&dir, "FULL");
            conn.execute_batch("BEGIN").unwrap();
            insert(&conn, 1, rows, bytes);
            conn.execute_batch("COMMIT").unwrap();
            let other = Connection::open(dir.path().join("w.db")).unwrap();
            let (n, total) = rows_and_bytes(&other);
            assert_eq!((n, total), (rows, rows * bytes));
            assert_intact(&other);
        }
    }

    #[test]
    fn commits_after_the_wal_restarts_from_its_start_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        let conn = wal_db(&dir, "FULL");
        let mut rows = 0;
        for round in 0..3 {
            for _ in 0..5 {
                insert(&conn, rows + 1, 20, 200);
                rows += 20;
            }
            // Copied into the database file: the next commit writes the WAL again from its
            // first byte, which is not where the last write ended.
            let busy: i64 = conn
                .query_row("PRAGMA wal_checkpoint(RESTART)", [], |r| r.get(0))
                .unwrap();
            assert_eq!(busy, 0, "round {round}");
        }
        insert(&conn, rows + 1, 20, 200);
        rows += 20;
        let other = Connection::open(dir.path().join("w.db")).unwrap();
        assert_eq!(count(&other), rows);
        assert_intact(&other);
    }

    #[test]
    fn the_wal_grows_ahead_of_its_frames_in_zeros() {
        let dir = tempfile::tempdir().unwrap();
        let conn = wal_db(&dir, "FULL");
        conn.execute_batch("PRAGMA wal_autocheckpoint = 0").unwrap();
        let mut rows = 0;
        // Creating the table grew it first.
        let mut len = std::fs::metadata(dir.path().join("w.db-wal"))
            .unwrap()
            .len() as usize;
        let mut grew = 0;
        // About 5 MB of frames: the file grows several times, each time a step ahead.
        for _ in 0..50 {
            insert(&conn, rows + 1, 40, 2000);
            rows += 40;
            let wal = std::fs::read(dir.path().join("w.db-wal")).unwrap();
            let frames_end = 32 + frames_in(&wal) as usize * (24 + 2048);
            // When it grows, it grows a step (1 MiB, less a partial 4 KiB) past the frames.
            if wal.len() != len {
                assert!(
                    wal.len() >= frames_end + 1_000_000,
                    "grown to {} bytes with {frames_end} bytes of frames",
                    wal.len()
                );
                len = wal.len();
                grew += 1;
            }
            assert!(len >= frames_end, "frames past the file's end");
            assert!(
                wal[frames_end..].iter().all(|&b| b == 0),
                "not zeros past the frames"
            );
        }
        assert!(grew >= 4, "the file grew {grew} times");
        // SQLite's recovery stops at the zeros: a crash keeps every commit, no more.
        let copy = crash_copy(&dir);
        assert_eq!(rows_and_bytes(&copy), (rows, rows * 2000));
        assert_intact(&copy);
    }

    #[test]
    fn growing_never_zeroes_frames_another_connection_appended() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.db");
        let a = wal_db(&dir, "FULL");
        a.execute_batch("PRAGMA wal_autocheckpoint = 0").unwrap();
        // `a` has grown the WAL to about a step and knows it.
        insert(&a, 1, 10, 100);
        let b = open_file(&path, OpenFlags::default()).unwrap();
        b.execute_batch("PRAGMA synchronous = FULL; PRAGMA wal_autocheckpoint = 0")
            .unwrap();
        // `b` appends 3 MB of frames, far past where `a` last knew the file to end.
        b.execute_batch("BEGIN").unwrap();
        insert(&b, 1_000, 1_500, 2000);
        b.execute_batch("COMMIT").unwrap();
        // `a` appends after them and grows the file from its real end, not from what it knew.
        insert(&a, 10_000, 10, 100);
        let expected = (1_520, 20 * 100 + 1_500 * 2000);
        let c = Connection::open(&path).unwrap();
        assert_eq!(rows_and_bytes(&c), expected);
        assert_intact(&c);
        let copy = crash_copy(&dir);
        assert_eq!(rows_and_bytes(&copy), expected);
        assert_intact(&copy);
    }
}
