//! How oauthd talks to its SQLite file: one writer thread that commits concurrent writes
//! together, and a small pool of reader connections used in place.
//!
//! Group commit: every write is a job sent to the writer thread. The thread takes all jobs
//! waiting, runs them one after another in one `BEGIN IMMEDIATE` transaction, commits once
//! (one WAL fsync with `synchronous=FULL`) and only then answers each job. So no caller sees
//! a result before it is durable, and under load one fsync carries many requests instead of
//! one each. Jobs run one after another, so every compare-and-set sees the jobs before it.
//!
//! A job that fails leaves no trace. Jobs almost never fail, so a batch first runs without a
//! savepoint per job (a savepoint copies every page a job touches into a sub-journal first:
//! 5 % of the server's CPU at c=64). If a job fails, the whole transaction is rolled back and
//! the batch runs again, this time each job inside its own SAVEPOINT, so the failed job's
//! savepoint alone is rolled back. Jobs are therefore `Fn`: running one again on the state
//! it first saw gives the same result, and only the outcome of the run that commits is kept.
//!
//! When to wake the writer: a caller that finds the writer asleep does not wake it at once.
//! It first yields to its runtime (`tokio::task::yield_now`), which hands it back only after
//! every other ready task on that thread has run and the I/O driver has been polled; then it
//! wakes the writer. So the writes the request thread was about to queue join the same
//! commit, and the writer (a normal-priority thread, which preempts the thread that wakes
//! it) runs when that thread has nothing left to do, not in the middle of its work. Outside a
//! runtime the yield returns at once. A caller cancelled while yielding still wakes it; one
//! whose future is never polled again nor dropped does not, and the writer then finds the
//! queued jobs by itself within `OWED_WAKE_BOUND`.
//! The writer has a normal priority so that it is not kept waiting behind a thread hashing a
//! password (Argon2): `SCHED_BATCH`, which deferred it the same way, made token requests
//! wait 15 ms during logins. After the commit the writer wakes one caller per batch, who
//! wakes the others (`answer.rs`).
//!
//! Checkpoints (copying the WAL back into the database file, and its fsync) run on a thread
//! of their own a few times a second, so the writer never stops to copy megabytes while
//! requests wait on it.
//!
//! Reads are indexed point lookups served from SQLite's page cache in microseconds; they run
//! on the calling thread, which costs less than a hop to another thread would. Between
//! batches a read borrows the writer's own connection: every commit empties the page cache
//! of the other connections, so a read on a pooled one starts by reading its pages again
//! (`pread`s from the WAL or the file), while the writer's cache still holds what it just
//! wrote, which is what the next reads ask for (the token just issued, the refresh token
//! just rotated). While a batch runs, reads take a pooled read-only connection instead, so
//! no read ever waits for a commit (WAL readers never wait for the writer) and none sees
//! a batch before it is committed. The writer's connection is not read-only as the pooled ones
//! are: `PRAGMA query_only` between batches would have guarded it, but setting it expires every
//! prepared statement (13 % fewer flows at c=8, BENCHMARKS.md), so a debug assertion checks
//! instead that a read lent it changed nothing.
use std::collections::VecDeque;
use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, TryLockError, mpsc};
use std::time::{Duration, Instant};

use rusqlite::{Connection, OpenFlags};

use super::answer::{self, Answer, Reply, Slot, Waiting};
use super::wal_writes::open_file;
use crate::{StoreError, StoreResult};

/// Jobs committed together at most; bounds the latency one commit adds to the first job.
const MAX_BATCH: usize = 512;
/// A transaction waits this long for another process (the CLI) holding the write lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// Bytes per database page for a new file.
const PAGE_SIZE: i64 = 2048;
/// WAL pages after which the writer checkpoints by itself (≈ 200 MiB).
const WAL_BACKSTOP_PAGES: i64 = 100_000;
/// How often the checkpoint thread copies committed WAL frames into the database file.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(250);
/// Prepared statements kept per connection: every statement the store uses, with room.
const STATEMENT_CACHE: usize = 96;
/// The longest a queued job waits for the wake a caller owes the writer. A caller's future
/// that is polled once and then neither polled again nor dropped never wakes it; the writer
/// then looks at its queue by itself after this long, so no write waits forever.
const OWED_WAKE_BOUND: Duration = Duration::from_millis(100);
/// How the writer waits for more jobs when woken for a batch smaller than its last one
/// (`write_loop`): each next job within about one request's round trip on loopback, and a
/// millisecond in all (BENCHMARKS.md, "What each change bought").
const LINGER: Linger = Linger {
    gap: Duration::from_micros(150),
    total: Duration::from_millis(1),
};

/// See [`LINGER`].
#[derive(Debug, Clone, Copy)]
struct Linger {
    /// The longest wait for the next job; none coming within it ends the wait.
    gap: Duration,
    /// The longest wait in all.
    total: Duration,
}
/// How long the first caller of a batch may take to wake the others when the writer has
/// nothing else to commit (`answer.rs`); otherwise the writer's next commit bounds it.
const RELAY_BOUND: Duration = Duration::from_millis(1);

/// Where the database lives.
#[derive(Debug, Clone)]
pub(crate) enum Location {
    File(PathBuf),
    /// One private in-memory database: a single connection, so reads go to the writer too.
    Memory,
}

impl Location {
    /// `sqlite://path`, `sqlite:path` or `sqlite::memory:`. Query parameters are refused
    /// rather than silently ignored.
    pub(crate) fn parse(url: &str) -> StoreResult<Location> {
        let rest = url
            .strip_prefix("sqlite:")
            .ok_or_else(|| StoreError::UnsupportedUrl("none".into()))?;
        if rest == ":memory:" || rest == "//:memory:" {
            return Ok(Location::Memory);
        }
        let path = rest.strip_prefix("//").unwrap_or(rest);
        if path.is_empty() || path.contains('?') {
            return Err(StoreError::Unavailable(
                "a SQLite URL is sqlite://path/to/file.db (no query parameters)".into(),
            ));
        }
        Ok(Location::File(PathBuf::from(path)))
    }
}

pub(crate) fn unavailable(e: rusqlite::Error) -> StoreError {
    StoreError::Unavailable(Box::new(e))
}

fn open(location: &Location, writer: bool) -> rusqlite::Result<Connection> {
    let conn = match location {
        Location::Memory => Connection::open_in_memory()?,
        Location::File(path) if writer => open_file(path, OpenFlags::default())?,
        Location::File(path) => open_file(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?,
    };
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    if writer {
        // WAL: readers and the writer do not block each other. FULL: a commit is on disk
        // (the WAL fsynced) before it returns, so a token we answer with survives power loss.
        // Small pages: each commit writes every page it dirtied to the WAL, whole, and a
        // commit dirties the last leaf of about twenty indexes plus the rows it updates, so
        // bytes written grow with the page. 2 KiB beat 4 KiB (−15 to −35 % CPU per flow) and
        // 1 KiB was no better (BENCHMARKS.md). Only takes effect when the file is created.
        conn.pragma_update(None, "page_size", PAGE_SIZE)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        // The checkpoint thread keeps the WAL short; this is only a backstop should it fall
        // behind (a checkpoint here would stall every write waiting on this thread).
        conn.pragma_update(None, "wal_autocheckpoint", WAL_BACKSTOP_PAGES)?;
    }
    Ok(conn)
}

/// A write waiting for the writer thread, type-erased.
trait Job: Send {
    /// Run inside the batch transaction, replacing the outcome of any earlier run (whose
    /// changes were rolled back); `false` when the job failed.
    fn run(&mut self, conn: &Connection) -> bool;
    /// Store the answer for the caller once the batch's fate is known; the caller to wake.
    fn finish(self: Box<Self>, commit: Result<(), &rusqlite::Error>) -> Option<Waiting>;
}

fn run_guarded<R>(work: impl FnOnce() -> StoreResult<R>) -> StoreResult<R> {
    std::panic::catch_unwind(AssertUnwindSafe(work))
        .unwrap_or_else(|_| Err(StoreError::Unavailable("a database write panicked".into())))
}

struct WriteJob<F, R: Send + 'static> {
    work: F,
    outcome: Option<StoreResult<R>>,
    reply: Reply<R>,
}

impl<F, R> Job for WriteJob<F, R>
where
    F: Fn(&Connection) -> StoreResult<R> + Send,
    R: Send + 'static,
{
    fn run(&mut self, conn: &Connection) -> bool {
        let outcome = run_guarded(|| (self.work)(conn));
        let ok = outcome.is_ok();
        self.outcome = Some(outcome);
        ok
    }

    fn finish(self: Box<Self>, commit: Result<(), &rusqlite::Error>) -> Option<Waiting> {
        settle(self.reply, self.outcome, commit)
    }
}

/// A read on the in-memory database's one connection, queued with the writes. It changes
/// nothing, so it never needs undoing, and it runs once: if the batch runs again, the
/// writes before it run again as they first did, so what it read still holds.
struct ReadJob<F, R: Send + 'static> {
    work: Option<F>,
    outcome: Option<StoreResult<R>>,
    reply: Reply<R>,
}

impl<F, R> Job for ReadJob<F, R>
where
    F: FnOnce(&Connection) -> StoreResult<R> + Send,
    R: Send + 'static,
{
    fn run(&mut self, conn: &Connection) -> bool {
        if let Some(work) = self.work.take() {
            self.outcome = Some(run_guarded(|| work(conn)));
        }
        true
    }

    fn finish(self: Box<Self>, commit: Result<(), &rusqlite::Error>) -> Option<Waiting> {
        settle(self.reply, self.outcome, commit)
    }
}

/// Store a job's answer once the batch's fate is known; the caller to wake, if it waits.
fn settle<R: Send + 'static>(
    reply: Reply<R>,
    outcome: Option<StoreResult<R>>,
    commit: Result<(), &rusqlite::Error>,
) -> Option<Waiting> {
    let outcome = match (outcome, commit) {
        // A failed job keeps its own error whatever happened to the batch.
        (Some(Err(e)), _) => Err(e),
        (Some(Ok(r)), Ok(())) => Ok(r),
        (Some(Ok(_)), Err(e)) | (None, Err(e)) => Err(StoreError::Unavailable(
            format!("the transaction could not be committed: {e}").into(),
        )),
        (None, Ok(())) => Err(StoreError::Unavailable("the write did not run".into())),
    };
    // The caller may have gone away (request cancelled); the write stands regardless.
    reply.fill(outcome)
}

/// Jobs waiting for the writer thread, and whether it needs waking.
#[derive(Default)]
struct Queue {
    state: Mutex<QueueState>,
    /// Signalled to wake the writer.
    wake: Condvar,
}

#[derive(Default)]
struct QueueState {
    jobs: VecDeque<Box<dyn Job>>,
    /// The writer is waiting on `wake` (not running a batch): someone must wake it.
    asleep: bool,
    /// A caller has taken it upon itself to wake the writer after its yield.
    wake_owed: bool,
    /// No job is taken any more: the store is gone (the writer finishes what is queued and
    /// stops), or the writer thread has ended (nothing queued would ever run).
    closed: bool,
}

impl QueueState {
    /// A job is queued, or the queue is closed: either way the writer has something to do.
    fn has_work(&self) -> bool {
        !self.jobs.is_empty() || self.closed
    }

    /// Move queued jobs into `batch`, up to `MAX_BATCH` in all.
    fn move_into(&mut self, batch: &mut Vec<Box<dyn Job>>) {
        let n = self.jobs.len().min(MAX_BATCH - batch.len());
        batch.extend(self.jobs.drain(..n));
    }
}

impl Queue {
    fn lock(&self) -> MutexGuard<'_, QueueState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queue a job; `true` when the caller must wake the writer (see the module's doc).
    fn push(&self, job: Box<dyn Job>) -> bool {
        let mut state = self.lock();
        if state.closed {
            drop(state);
            // Answers its caller that the writer has stopped.
            drop(job);
            return false;
        }
        state.jobs.push_back(job);
        let must_wake = state.asleep && !state.wake_owed;
        state.wake_owed |= must_wake;
        must_wake
    }

    fn wake_writer(&self) {
        let mut state = self.lock();
        state.wake_owed = false;
        if state.asleep {
            self.wake.notify_one();
        }
    }

    fn close(&self) {
        self.lock().closed = true;
        self.wake.notify_one();
    }

    /// Move up to `MAX_BATCH` jobs into `batch`, waiting for one if none is queued and `wait`;
    /// `false` once the queue is closed and empty.
    fn take(&self, batch: &mut Vec<Box<dyn Job>>, wait: bool) -> bool {
        let mut state = self.lock();
        while wait && !state.has_work() {
            let timed_out;
            (state, timed_out) = self.sleep(state, OWED_WAKE_BOUND);
            if timed_out && !state.jobs.is_empty() {
                // The caller who owed the wake is not coming: the next callers wake it.
                tracing::warn!("a SQLite write waited for a wake-up that never came");
                state.wake_owed = false;
            }
        }
        state.move_into(batch);
        !(state.closed && batch.is_empty())
    }

    /// Wait up to `timeout` for a job, unless one is queued (or the queue closed); the locked
    /// state afterwards.
    fn wait_for_jobs(&self, timeout: Duration) -> MutexGuard<'_, QueueState> {
        let state = self.lock();
        if state.has_work() {
            state
        } else {
            self.sleep(state, timeout).0
        }
    }

    /// Sleep as the writer until a caller wakes it or `timeout` passes; whether it timed out.
    fn sleep<'a>(
        &self,
        mut state: MutexGuard<'a, QueueState>,
        timeout: Duration,
    ) -> (MutexGuard<'a, QueueState>, bool) {
        state.asleep = true;
        let (mut state, waited) = self
            .wake
            .wait_timeout(state, timeout)
            .unwrap_or_else(|e| e.into_inner());
        state.asleep = false;
        (state, waited.timed_out())
    }

    /// Wait up to `linger` for a caller to wake the writer, then add what is queued.
    fn linger(&self, batch: &mut Vec<Box<dyn Job>>, linger: Duration) {
        self.wait_for_jobs(linger).move_into(batch);
    }
}

/// Closes the queue when the writer thread ends, however it ends, and drops what is
/// queued: each dropped job answers its caller that the writer has stopped.
struct WriterGone<'a>(&'a Queue);

impl Drop for WriterGone<'_> {
    fn drop(&mut self) {
        let mut state = self.0.lock();
        state.closed = true;
        let orphans = std::mem::take(&mut state.jobs);
        drop(state);
        drop(orphans);
    }
}

/// Wakes the writer when dropped: after the caller's yield, or if the caller is cancelled
/// while yielding.
struct WakeWriter<'a>(&'a Queue);

impl Drop for WakeWriter<'_> {
    fn drop(&mut self) {
        self.0.wake_writer();
    }
}

pub(crate) struct Db {
    location: Location,
    jobs: Arc<Queue>,
    /// Transactions committed by the writer (the checkpoint thread watches it).
    #[cfg(test)]
    commits: Arc<AtomicU64>,
    /// Dropped with the store, which stops the checkpoint thread.
    _stop_checkpoints: Option<mpsc::Sender<()>>,
    /// The writer's connection: locked by the writer thread from `BEGIN` to the end of the
    /// batch, and lent to reads in between.
    writer: Arc<Mutex<Connection>>,
    /// Idle read connections; empty for an in-memory database (reads go to the writer).
    readers: Mutex<Vec<Connection>>,
    open_readers: AtomicU32,
}

impl Db {
    /// Open the writer connection, let `setup` run on it (migrations), then start the writer.
    pub(crate) async fn start(
        location: Location,
        setup: fn(&mut Connection) -> StoreResult<()>,
    ) -> StoreResult<Db> {
        Db::start_lingering(location, setup, LINGER).await
    }

    /// [`Db::start`] with the writer lingering as `linger` says for more jobs (see
    /// `write_loop`).
    async fn start_lingering(
        location: Location,
        setup: fn(&mut Connection) -> StoreResult<()>,
        linger: Linger,
    ) -> StoreResult<Db> {
        let loc = location.clone();
        let conn = tokio::task::spawn_blocking(move || -> StoreResult<Connection> {
            let mut conn = open(&loc, true).map_err(unavailable)?;
            setup(&mut conn)?;
            if let Location::File(_) = loc {
                truncate_leftover_wal(&conn).map_err(unavailable)?;
            }
            Ok(conn)
        })
        .await
        .map_err(|e| StoreError::Unavailable(Box::new(e)))??;
        let commits = Arc::new(AtomicU64::new(0));
        let stop_checkpoints = match &location {
            Location::File(path) => {
                let (stop, stopped) = mpsc::channel();
                let (path, commits) = (path.clone(), commits.clone());
                std::thread::Builder::new()
                    .name("oauthd-sqlite-checkpoint".into())
                    .spawn(move || checkpoint_loop(&path, &commits, &stopped))
                    .map_err(|e| StoreError::Unavailable(Box::new(e)))?;
                Some(stop)
            }
            Location::Memory => None,
        };
        let jobs = Arc::new(Queue::default());
        let queue = jobs.clone();
        let writer = Arc::new(Mutex::new(conn));
        std::thread::Builder::new()
            .name("oauthd-sqlite-writer".into())
            .spawn({
                let (commits, conn) = (commits.clone(), writer.clone());
                move || write_loop(&conn, &queue, &commits, linger)
            })
            .map_err(|e| StoreError::Unavailable(Box::new(e)))?;
        Ok(Db {
            location,
            jobs,
            #[cfg(test)]
            commits,
            _stop_checkpoints: stop_checkpoints,
            writer,
            readers: Mutex::new(Vec::new()),
            open_readers: AtomicU32::new(0),
        })
    }

    /// Run `work` in the next batch transaction; resolves after the commit is durable.
    /// `work` may run more than once (the module's doc says when); only the changes and the
    /// result of its last run stand, so it must act through `conn` alone.
    pub(crate) async fn write<F, R>(&self, work: F) -> StoreResult<R>
    where
        F: Fn(&Connection) -> StoreResult<R> + Send + 'static,
        R: Send + 'static,
    {
        self.enqueue(|reply| WriteJob {
            work,
            outcome: None,
            reply,
        })
        .await
    }

    /// Queue the job `make` builds around its reply, and wait for its answer.
    async fn enqueue<J, R>(&self, make: impl FnOnce(Reply<R>) -> J) -> StoreResult<R>
    where
        J: Job + 'static,
        R: Send + 'static,
    {
        let slot = Slot::new();
        if self.jobs.push(Box::new(make(Reply::new(&slot)))) {
            let _wake = WakeWriter(&self.jobs);
            tokio::task::yield_now().await;
        }
        Answer(slot).await
    }

    /// Run a read on this thread: on the writer's connection if no batch holds it (and no
    /// other read), else on a pooled read connection.
    pub(crate) async fn read<F, R>(&self, work: F) -> StoreResult<R>
    where
        F: FnOnce(&Connection) -> StoreResult<R> + Send + 'static,
        R: Send + 'static,
    {
        let Location::File(_) = self.location else {
            return self
                .enqueue(|reply| ReadJob {
                    work: Some(work),
                    outcome: None,
                    reply,
                })
                .await;
        };
        // Only between transactions: a failed rollback could leave one open (`write_loop`).
        // A read that panicked on it poisoned the lock, but left the connection as it was.
        let idle_writer = match self.writer.try_lock() {
            Ok(conn) => Some(conn),
            Err(TryLockError::Poisoned(e)) => Some(e.into_inner()),
            Err(TryLockError::WouldBlock) => None,
        }
        .filter(|conn| conn.is_autocommit());
        if let Some(conn) = idle_writer {
            let changes = conn.total_changes();
            let result = work(&conn);
            debug_assert_eq!(conn.total_changes(), changes, "a read wrote");
            return result;
        }
        let pooled = self.readers.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let conn = match pooled {
            Some(c) => c,
            None => {
                let c = open(&self.location, false).map_err(unavailable)?;
                self.open_readers.fetch_add(1, Ordering::Relaxed);
                c
            }
        };
        let result = work(&conn);
        self.readers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(conn);
        result
    }

    /// Transactions the writer has committed since the store was opened.
    #[cfg(test)]
    fn commits(&self) -> u64 {
        self.commits.load(Ordering::Relaxed)
    }

    /// Whether the writer thread waits for someone to wake it.
    #[cfg(test)]
    fn writer_asleep(&self) -> bool {
        self.jobs.lock().asleep
    }

    /// (open, idle) connections, the writer included.
    pub(crate) fn pool_state(&self) -> (u32, u32) {
        let idle = self.readers.lock().map_or(0, |r| r.len()) as u32;
        (self.open_readers.load(Ordering::Relaxed) + 1, idle)
    }
}

impl Drop for Db {
    /// The writer answers what is still queued, then stops.
    fn drop(&mut self) {
        self.jobs.close();
    }
}

/// Copy what an earlier process left in the WAL into the database file and cut the WAL file
/// to zero bytes, unless another process is using the database at this moment (then nothing
/// waits: the busy timeout is zero). Under load the WAL grows to the backstop (≈ 200 MiB) and
/// is then reused from its start, and a process that stops leaves it at that size. Reused
/// after a restart, when it is no longer in the page cache, it slowed the 1M store's first
/// run to 74 % of its speed at c=8, against 96 % with the WAL cut first (BENCHMARKS.md):
/// 2 KiB frames only partly cover 4 KiB file pages, which are then read back from disk.
fn truncate_leftover_wal(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(Duration::ZERO)?;
    let checkpoint = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
        r.get::<_, i64>(0)
    });
    conn.busy_timeout(BUSY_TIMEOUT)?;
    let busy = match checkpoint {
        Ok(busy) => busy != 0,
        Err(e) if e.sqlite_error_code() == Some(rusqlite::ErrorCode::DatabaseBusy) => true,
        Err(e) => return Err(e),
    };
    if busy {
        tracing::debug!("the SQLite WAL is in use by another process; not truncated");
    }
    Ok(())
}

/// Copy committed WAL frames into the database file whenever there were commits since the
/// last pass (PASSIVE: never waits for, nor blocks, the writer or readers).
fn checkpoint_loop(path: &std::path::Path, commits: &AtomicU64, stop: &mpsc::Receiver<()>) {
    let mut conn = None;
    let mut seen = 0;
    while let Err(mpsc::RecvTimeoutError::Timeout) = stop.recv_timeout(CHECKPOINT_EVERY) {
        let now = commits.load(Ordering::Relaxed);
        if now == seen {
            continue;
        }
        if conn.is_none() {
            conn = open_file(path, OpenFlags::default())
                .and_then(|c| c.busy_timeout(BUSY_TIMEOUT).map(|()| c))
                .map_err(|e| tracing::warn!(error = %e, "SQLite checkpoint connection failed"))
                .ok();
        }
        let Some(c) = &conn else { continue };
        match c.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
            Ok(()) => seen = now,
            Err(e) => tracing::warn!(error = %e, "SQLite checkpoint failed; retrying"),
        }
    }
}

fn write_loop(conn: &Mutex<Connection>, queue: &Queue, commits: &AtomicU64, linger: Linger) {
    let _gone = WriterGone(queue);
    let mut batch: Vec<Box<dyn Job>> = Vec::with_capacity(64);
    let mut last = 0;
    // The relay handed to the last batch's first caller; dropping it wakes whoever that
    // caller has not woken yet.
    let mut handover: Option<answer::Handover> = None;
    // Ends when the store is gone and every job queued before has been answered.
    loop {
        if handover.is_some() && !queue.wait_for_jobs(RELAY_BOUND).has_work() {
            handover = None;
        }
        if !queue.take(&mut batch, true) {
            break;
        }
        if batch.len() == 1 {
            // Woken by a single job: let the request threads run first, so the jobs they
            // are about to send share this commit. On a busy core this halves the commits,
            // fsyncs and thread switches per job; with nothing else to run it costs nothing.
            std::thread::yield_now();
            queue.take(&mut batch, false);
        }
        // Woken for fewer jobs than the last commit held: the callers that commit answered
        // are most likely sending their next writes right now, and a commit costs about as
        // much for one job as for eight. So wait for them, one at a time, until the batch is
        // as large as the last one, no job comes within `linger.gap` (they have stopped
        // writing for now) or `linger.total` has passed. Under steady single writes (c=1)
        // the last batch held one job, so it never waits. At c=8: a fifth less CPU per flow,
        // 14 % more flows and a lower p99 than waiting once, for the next job only
        // (BENCHMARKS.md, eleventh session).
        let deadline = Instant::now() + linger.total;
        while batch.len() < last {
            let before = batch.len();
            let left = deadline.saturating_duration_since(Instant::now());
            queue.linger(&mut batch, linger.gap.min(left));
            if batch.len() == before {
                break;
            }
        }
        last = batch.len();
        let commit = {
            // Held until the transaction has ended either way, so no read sees it half done.
            let conn = conn.lock().unwrap_or_else(|e| e.into_inner());
            let commit = run_batch(&conn, &mut batch);
            if commit.is_err() && !conn.is_autocommit() {
                let _ = conn.execute_batch("ROLLBACK");
            }
            commit
        };
        if commit.is_ok() {
            commits.fetch_add(1, Ordering::Relaxed);
        }
        if let Err(e) = &commit {
            tracing::error!(error = %e, jobs = batch.len(), "a SQLite write transaction failed");
        }
        let waiting = batch
            .drain(..)
            .filter_map(|job| job.finish(commit.as_ref().map(|_| ())))
            .collect();
        // The last batch's first caller has had this whole commit to wake the others.
        drop(handover.take());
        handover = answer::wake(waiting);
    }
}

/// Run and commit a batch: first without savepoints; if a job fails, roll everything back
/// and run the batch again with a savepoint per job (see the module's doc).
fn run_batch(conn: &Connection, batch: &mut [Box<dyn Job>]) -> rusqlite::Result<()> {
    conn.prepare_cached("BEGIN IMMEDIATE")?.execute([])?;
    let Some(failed) = batch.iter_mut().position(|job| !job.run(conn)) else {
        return conn.prepare_cached("COMMIT")?.execute([]).map(drop);
    };
    // Some errors (a full disk, I/O) already rolled the transaction back.
    if !conn.is_autocommit() {
        conn.prepare_cached("ROLLBACK")?.execute([])?;
    }
    conn.prepare_cached("BEGIN IMMEDIATE")?.execute([])?;
    for (i, job) in batch.iter_mut().enumerate() {
        // The failed job would fail again on the same state; it keeps its first outcome.
        if i == failed {
            continue;
        }
        conn.prepare_cached("SAVEPOINT job")?.execute([])?;
        if !job.run(conn) {
            conn.prepare_cached("ROLLBACK TO job")?.execute([])?;
        }
        conn.prepare_cached("RELEASE job")?.execute([])?;
    }
    conn.prepare_cached("COMMIT")?.execute([])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The bundled SQLite is built with `.cargo/config.toml`'s flags: no statistics mutex
    /// around each allocation, and a page cache per connection instead of one global cache
    /// behind one mutex (BENCHMARKS.md, tenth session), and the VFS registered at start.
    #[test]
    fn sqlite_is_built_with_the_projects_flags() {
        let conn = Connection::open_in_memory().unwrap();
        let options = conn
            .prepare("PRAGMA compile_options")
            .unwrap()
            .query_map([], |r| r.get::<_, String>(0))
            .unwrap()
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        for wanted in ["DEFAULT_MEMSTATUS=0", "EXTRA_INIT=oauthd_sqlite_init"] {
            assert!(options.iter().any(|o| o == wanted), "{wanted}: {options:?}");
        }
        assert!(
            !options.iter().any(|o| o == "ENABLE_MEMORY_MANAGEMENT"),
            "{options:?}"
        );
    }

    #[test]
    fn urls() {
        assert!(matches!(
            Location::parse("sqlite::memory:"),
            Ok(Location::Memory)
        ));
        assert!(
            matches!(Location::parse("sqlite:///tmp/a.db"), Ok(Location::File(p)) if p == std::path::Path::new("/tmp/a.db"))
        );
        assert!(
            matches!(Location::parse("sqlite://oauthd.db"), Ok(Location::File(p)) if p == std::path::Path::new("oauthd.db"))
        );
        assert!(
            matches!(Location::parse("sqlite:rel/x.db"), Ok(Location::File(p)) if p == std::path::Path::new("rel/x.db"))
        );
        assert!(Location::parse("sqlite://x.db?mode=ro").is_err());
        assert!(Location::parse("sqlite://").is_err());
    }

    fn setup(conn: &mut Connection) -> StoreResult<()> {
        conn.execute_batch("CREATE TABLE IF NOT EXISTS t (k TEXT PRIMARY KEY)")
            .map_err(unavailable)
    }

    /// A database file `name` in `dir`, with table `t`.
    async fn file_db(dir: &tempfile::TempDir, name: &str) -> (Db, PathBuf) {
        let path = dir.path().join(name);
        let db = Db::start(Location::File(path.clone()), setup)
            .await
            .unwrap();
        (db, path)
    }

    fn insert(k: &'static str) -> impl Fn(&Connection) -> StoreResult<usize> {
        move |c| {
            c.execute("INSERT INTO t (k) VALUES (?)", [k])
                .map_err(unavailable)
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failed_job_leaves_no_trace_and_others_commit() {
        let dir = tempfile::tempdir().unwrap();
        let db = Arc::new(file_db(&dir, "t.db").await.0);
        // Many concurrent jobs so several share a batch; one half-writes and then fails.
        let mut tasks = Vec::new();
        for i in 0..64 {
            let db = db.clone();
            tasks.push(tokio::spawn(async move {
                if i == 10 {
                    db.write(|c| {
                        c.execute("INSERT INTO t (k) VALUES ('partial')", [])
                            .map_err(unavailable)?;
                        // The same key again: this job always fails, after one insert.
                        c.execute("INSERT INTO t (k) VALUES ('partial')", [])
                            .map_err(unavailable)
                    })
                    .await
                } else {
                    let k: &'static str = Box::leak(format!("k{i}").into_boxed_str());
                    db.write(insert(k)).await
                }
            }));
        }
        let mut ok = 0;
        for t in tasks {
            if t.await.unwrap().is_ok() {
                ok += 1;
            }
        }
        assert_eq!(ok, 63);
        let (n, partial): (i64, i64) = db
            .read(|c| {
                c.query_row("SELECT COUNT(*), SUM(k = 'partial') FROM t", [], |r| {
                    Ok((r.get(0)?, r.get::<_, Option<i64>>(1)?.unwrap_or(0)))
                })
                .map_err(unavailable)
            })
            .await
            .unwrap();
        assert_eq!(partial, 0, "the failed job's first insert was rolled back");
        assert_eq!(n, 63);
    }

    /// Poll a future once by hand, with a waker that does nothing; it must be pending.
    fn poll_pending<F: Future + ?Sized>(future: std::pin::Pin<&mut F>) {
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        assert!(future.poll(&mut cx).is_pending());
    }

    /// Queue `jobs` behind a job that holds the writer until all of them are queued, so they
    /// run as one batch; then await them in order.
    async fn one_batch<R: Send + 'static>(
        db: &Db,
        jobs: Vec<std::pin::Pin<Box<dyn Future<Output = StoreResult<R>> + Send + '_>>>,
    ) -> Vec<StoreResult<R>> {
        let (open, gate) = mpsc::channel::<()>();
        let gate = Mutex::new(gate);
        let (started, running) = mpsc::channel::<()>();
        let started = Mutex::new(started);
        // Waits until `open` is dropped, so it passes at once when the batch runs again.
        let mut held = Box::pin(db.write(move |_| {
            let _ = started.lock().unwrap().send(());
            let _ = gate.lock().unwrap().recv();
            Ok(())
        }));
        poll_pending(held.as_mut());
        // Only once the writer is inside `held` do the jobs queue, all behind it: had the
        // writer not yet taken `held`, it could take it with the first jobs only.
        running.recv().unwrap();
        let mut jobs = jobs;
        // Polling once sends each job to the writer's queue.
        for job in &mut jobs {
            poll_pending(job.as_mut());
        }
        drop(open);
        held.await.unwrap();
        let mut results = Vec::new();
        for job in jobs {
            results.push(job.await);
        }
        results
    }

    fn count(c: &Connection) -> StoreResult<i64> {
        c.query_row("SELECT COUNT(*) FROM t", [], |r| r.get(0))
            .map_err(unavailable)
    }

    /// The batch first runs without savepoints; a failing job sends it round again with one
    /// savepoint per job. The jobs before the failure run twice and answer what their second,
    /// committed run saw; the failed job is not run again; the ones after it run once.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failed_job_sends_its_batch_round_again_with_savepoints() {
        let dir = tempfile::tempdir().unwrap();
        let (db, _) = file_db(&dir, "r.db").await;
        let runs: Arc<[AtomicU32; 3]> = Arc::new(Default::default());
        let job = |i: usize, key: &'static str, twice: bool| {
            let runs = runs.clone();
            Box::pin(db.write(move |c| {
                runs[i].fetch_add(1, Ordering::Relaxed);
                insert(key)(c)?;
                if twice {
                    insert(key)(c)?;
                }
                count(c)
            })) as std::pin::Pin<Box<dyn Future<Output = StoreResult<i64>> + Send>>
        };
        let results = one_batch(
            &db,
            vec![job(0, "a", false), job(1, "b", true), job(2, "c", false)],
        )
        .await;
        assert_eq!(results[0].as_ref().ok(), Some(&1_i64));
        assert!(matches!(results[1], Err(StoreError::Unavailable(_))));
        assert_eq!(results[2].as_ref().ok(), Some(&2), "b left no trace");
        let runs: Vec<u32> = runs.iter().map(|r| r.load(Ordering::Relaxed)).collect();
        assert_eq!(runs, [2, 1, 1]);
        let keys: Vec<String> = db
            .read(|c| {
                let mut s = c
                    .prepare("SELECT k FROM t ORDER BY k")
                    .map_err(unavailable)?;
                s.query_map([], |r| r.get(0))
                    .and_then(Iterator::collect)
                    .map_err(unavailable)
            })
            .await
            .unwrap();
        assert_eq!(keys, ["a", "c"]);
    }

    /// In memory, reads queue with the writes; one read before a failed write is not run
    /// again and still answers what the committed state holds.
    #[tokio::test]
    async fn a_read_queued_with_a_failed_write_answers_the_committed_state() {
        let db = Db::start(Location::Memory, setup).await.unwrap();
        let results = one_batch(
            &db,
            vec![
                Box::pin(db.write(|c| insert("a")(c).map(|_| 0))),
                Box::pin(db.read(count)),
                Box::pin(db.write(|c| {
                    insert("b")(c)?;
                    insert("b")(c).map(|_| 0)
                })),
                Box::pin(db.read(count)),
            ],
        )
        .await;
        let results: Vec<Option<i64>> = results.into_iter().map(Result::ok).collect();
        assert_eq!(results, [Some(0), Some(1), None, Some(1)]);
        assert_eq!(db.read(count).await.unwrap(), 1);
    }

    #[tokio::test]
    async fn a_panicking_job_fails_alone_and_the_writer_goes_on() {
        let db = Db::start(Location::Memory, setup).await.unwrap();
        let r: StoreResult<()> = db.write(|_| panic!("boom")).await;
        assert!(matches!(r, Err(StoreError::Unavailable(_))));
        assert_eq!(db.write(insert("after")).await.unwrap(), 1);
        let n: i64 = db
            .read(|c| {
                c.query_row("SELECT COUNT(*) FROM t", [], |r| r.get(0))
                    .map_err(unavailable)
            })
            .await
            .unwrap();
        assert_eq!(n, 1);
    }

    /// The checkpoint thread copies commits into the database file by itself, within a few
    /// of its periods.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_checkpoint_thread_copies_the_wal_into_the_database() {
        let dir = tempfile::tempdir().unwrap();
        let (db, path) = file_db(&dir, "c.db").await;
        for k in ["a", "b", "c"] {
            db.write(insert(k)).await.unwrap();
        }
        // Look at the main file alone, through a copy without its WAL: checkpointing here
        // ourselves would prove nothing.
        let copy = dir.path().join("copy.db");
        let rows_in_main_file = || {
            std::fs::copy(&path, &copy).unwrap();
            Connection::open(&copy)
                .and_then(|c| c.query_row("SELECT COUNT(*) FROM t", [], |r| r.get::<_, i64>(0)))
                .unwrap_or(0)
        };
        let mut rows = 0;
        for _ in 0..40 {
            // Waiting on the checkpoint thread, which runs on real time.
            tokio::time::sleep(CHECKPOINT_EVERY).await;
            rows = rows_in_main_file();
            if rows == 3 {
                break;
            }
        }
        assert_eq!(
            rows, 3,
            "the checkpoint thread copied the commits into the main file"
        );
        drop(db);
    }

    /// Until the writer thread is waiting to be woken (it runs on real time).
    async fn writer_asleep(db: &Db) {
        for _ in 0..2000 {
            if db.writer_asleep() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        panic!("the writer never went back to sleep");
    }

    /// Writes queued by tasks of one runtime thread while it still has work to do share
    /// one commit: the writer is woken once that thread has run every ready task. Each task
    /// first works 2 ms on the CPU, so a writer woken by the first job would commit it alone.
    #[tokio::test]
    async fn writes_queued_while_the_runtime_is_busy_share_one_commit() {
        let dir = tempfile::tempdir().unwrap();
        let db = Arc::new(file_db(&dir, "b.db").await.0);
        writer_asleep(&db).await;
        let before = db.commits();
        let tasks: Vec<_> = (0..8)
            .map(|i| {
                let db = db.clone();
                tokio::spawn(async move {
                    let busy = std::time::Instant::now();
                    while busy.elapsed() < Duration::from_millis(2) {
                        std::hint::spin_loop();
                    }
                    let k: &'static str = Box::leak(format!("b{i}").into_boxed_str());
                    db.write(insert(k)).await
                })
            })
            .collect();
        for t in tasks {
            assert_eq!(t.await.unwrap().unwrap(), 1);
        }
        assert_eq!(db.commits() - before, 1, "eight writes, one commit");
        assert_eq!(db.read(count).await.unwrap(), 8);
    }

    /// A caller cancelled while it yields, before it woke the writer, still wakes it: its
    /// write is committed and the next caller is not left waiting on a wake that never comes.
    #[tokio::test]
    async fn a_caller_cancelled_before_waking_the_writer_still_wakes_it() {
        let dir = tempfile::tempdir().unwrap();
        let (db, _) = file_db(&dir, "w.db").await;
        writer_asleep(&db).await;
        let mut first = Box::pin(db.write(insert("cancelled")));
        poll_pending(first.as_mut());
        assert!(db.jobs.lock().wake_owed, "the first caller owes the wake");
        drop(first);
        let next = tokio::time::timeout(Duration::from_secs(10), db.write(insert("next")));
        assert_eq!(next.await.expect("the writer was woken").unwrap(), 1);
        assert_eq!(
            db.read(count).await.unwrap(),
            2,
            "the cancelled write stands"
        );
    }

    /// After a commit of two jobs, a job that comes alone does not commit alone: the writer
    /// waits for the next caller to wake it (here: long, as the linger is 10 s in this test),
    /// and both jobs share one commit as soon as they are as many as the last one's, well
    /// before the linger runs out. The lone caller's future is then left unpolled, so the
    /// next caller depends on the writer taking back the relay it handed the lone one.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_small_batch_after_a_bigger_one_waits_for_the_next_writes() {
        let dir = tempfile::tempdir().unwrap();
        let linger = Duration::from_secs(10);
        let path = dir.path().join("g.db");
        let db = Arc::new(
            Db::start_lingering(
                Location::File(path),
                setup,
                Linger {
                    gap: linger,
                    total: linger,
                },
            )
            .await
            .unwrap(),
        );
        writer_asleep(&db).await;
        let results = one_batch(
            &db,
            (0..2)
                .map(|i| {
                    let k: &'static str = Box::leak(format!("g{i}").into_boxed_str());
                    Box::pin(db.write(insert(k)))
                        as std::pin::Pin<Box<dyn Future<Output = StoreResult<usize>> + Send>>
                })
                .collect(),
        )
        .await;
        assert!(results.iter().all(Result::is_ok));
        writer_asleep(&db).await;
        let before = db.commits();
        let started = std::time::Instant::now();
        // Polled twice by hand: the first poll queues the job, the second ends the caller's
        // yield and wakes the writer.
        let mut alone = Box::pin(db.write(insert("alone")));
        poll_pending(alone.as_mut());
        poll_pending(alone.as_mut());
        // Until the writer has taken the job and waits for more; without the wait it would
        // commit the job alone.
        loop {
            let lingering = {
                let state = db.jobs.lock();
                state.asleep && state.jobs.is_empty()
            };
            assert_eq!(db.commits(), before, "the lone job was committed alone");
            if lingering {
                break;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        // The lone caller is not polled again before this returns: the writer wakes this
        // one itself once the relay it handed the lone caller is not passed on.
        let next = tokio::time::timeout(Duration::from_secs(10), db.write(insert("next")));
        assert_eq!(
            next.await.expect("woken without the lone caller").unwrap(),
            1
        );
        assert_eq!(alone.await.unwrap(), 1);
        assert_eq!(db.commits() - before, 1, "the two jobs shared one commit");
        assert!(started.elapsed() < linger, "the next caller ended the wait");
    }

    /// A store whose writer lingers as `linger` says, after one commit of three jobs.
    async fn after_three(dir: &tempfile::TempDir, linger: Linger) -> Arc<Db> {
        let path = dir.path().join("three.db");
        let db = Arc::new(
            Db::start_lingering(Location::File(path), setup, linger)
                .await
                .unwrap(),
        );
        writer_asleep(&db).await;
        let jobs = ["t1", "t2", "t3"]
            .into_iter()
            .map(|k| {
                Box::pin(db.write(insert(k)))
                    as std::pin::Pin<Box<dyn Future<Output = StoreResult<usize>> + Send>>
            })
            .collect();
        assert!(one_batch(&db, jobs).await.iter().all(Result::is_ok));
        writer_asleep(&db).await;
        db
    }

    /// Jobs that come one at a time after a commit of three wait for each other and share
    /// one commit, which happens as soon as the third is there, not when the wait runs out.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn writes_that_come_one_by_one_share_a_commit_as_large_as_the_last() {
        let dir = tempfile::tempdir().unwrap();
        let long = Duration::from_secs(10);
        let db = after_three(
            &dir,
            Linger {
                gap: long,
                total: long,
            },
        )
        .await;
        let before = db.commits();
        let started = Instant::now();
        let mut writes = Vec::new();
        for k in ["w1", "w2", "w3"] {
            let db = Arc::clone(&db);
            writes.push(tokio::spawn(async move { db.write(insert(k)).await }));
            // Real time: the writer's wait runs on it.
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        for write in writes {
            assert_eq!(write.await.unwrap().unwrap(), 1);
        }
        assert_eq!(db.commits() - before, 1, "the three shared one commit");
        assert!(started.elapsed() < long / 2, "the third ended the wait");
    }

    /// The wait ends when no job comes within the gap, and in any case after the total: a
    /// lone job after a commit of three is committed alone, after the shorter of the two.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_wait_for_more_jobs_is_bounded_by_the_gap_and_the_total() {
        let dir = tempfile::tempdir().unwrap();
        for (gap, total) in [
            (Duration::from_millis(200), Duration::from_secs(30)),
            (Duration::from_secs(30), Duration::from_millis(200)),
        ] {
            let db = after_three(&dir, Linger { gap, total }).await;
            let before = db.commits();
            let started = Instant::now();
            assert_eq!(db.write(insert("lone")).await.unwrap(), 1);
            let waited = started.elapsed();
            assert_eq!(db.commits() - before, 1);
            assert!(
                waited >= Duration::from_millis(200) && waited < Duration::from_secs(10),
                "waited {waited:?} with a gap of {gap:?} and a total of {total:?}"
            );
            drop(db);
            std::fs::remove_file(dir.path().join("three.db")).unwrap();
        }
    }

    /// A caller whose future is polled once and then neither polled again nor dropped never
    /// wakes the writer: its write and the ones queued after it still commit, within the
    /// bound, and later callers wake the writer as usual.
    #[tokio::test]
    async fn a_wake_that_never_comes_delays_writes_by_the_bound_only() {
        let dir = tempfile::tempdir().unwrap();
        let (db, _) = file_db(&dir, "f.db").await;
        writer_asleep(&db).await;
        let mut stuck = Box::pin(db.write(insert("stuck")));
        poll_pending(stuck.as_mut());
        std::mem::forget(stuck);
        let next = tokio::time::timeout(Duration::from_secs(10), db.write(insert("next")));
        assert_eq!(next.await.expect("the writer woke by itself").unwrap(), 1);
        assert!(
            !db.jobs.lock().wake_owed,
            "later callers wake the writer again"
        );
        db.write(insert("after")).await.unwrap();
        assert_eq!(db.read(count).await.unwrap(), 3);
    }

    /// Bytes in the WAL file of the database at `path` (0 when there is none).
    fn wal_bytes(path: &std::path::Path) -> u64 {
        std::fs::metadata(format!("{}-wal", path.display())).map_or(0, |m| m.len())
    }

    /// A WAL left behind by an earlier process (here: copied while another connection kept it
    /// open, as a crash leaves it) is checkpointed into the database and cut to zero bytes
    /// when the store starts, and nothing in it is lost.
    #[tokio::test]
    async fn a_leftover_wal_is_checkpointed_and_truncated_at_start() {
        let dir = tempfile::tempdir().unwrap();
        let (db, path) = file_db(&dir, "l.db").await;
        // Keeps the WAL from being removed when the store closes. Opening alone takes no lock,
        // so the store's last connection could still delete the WAL: a read makes this
        // connection hold the database open in WAL mode until it is dropped.
        let keep = Connection::open(&path).unwrap();
        let _: i64 = keep
            .query_row("SELECT count(*) FROM sqlite_schema", [], |r| r.get(0))
            .unwrap();
        for k in ["a", "b", "c"] {
            db.write(insert(k)).await.unwrap();
        }
        drop(db);
        assert!(wal_bytes(&path) > 0, "the WAL is still there");
        let copy = dir.path().join("crashed.db");
        std::fs::copy(&path, &copy).unwrap();
        std::fs::copy(
            format!("{}-wal", path.display()),
            format!("{}-wal", copy.display()),
        )
        .unwrap();
        drop(keep);
        let wal_before = wal_bytes(&copy);
        assert!(wal_before > 0);
        let db = Db::start(Location::File(copy.clone()), setup)
            .await
            .unwrap();
        assert_eq!(
            wal_bytes(&copy),
            0,
            "the WAL was {wal_before} bytes and is cut at start"
        );
        assert_eq!(
            db.read(count).await.unwrap(),
            3,
            "every row of the WAL is kept"
        );
    }

    /// Another process in a read transaction: the store starts anyway, without waiting for it,
    /// and leaves the WAL alone.
    #[tokio::test]
    async fn a_wal_in_use_by_another_process_is_left_alone_without_waiting() {
        let dir = tempfile::tempdir().unwrap();
        let (db, path) = file_db(&dir, "u.db").await;
        db.write(insert("a")).await.unwrap();
        let wal_before = wal_bytes(&path);
        assert!(wal_before > 0);
        let reader = Connection::open(&path).unwrap();
        reader.execute_batch("BEGIN").unwrap();
        let n: i64 = reader
            .query_row("SELECT COUNT(*) FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 1);
        let started = std::time::Instant::now();
        let second = Db::start(Location::File(path.clone()), setup)
            .await
            .unwrap();
        assert!(
            started.elapsed() < BUSY_TIMEOUT,
            "did not wait on the reader"
        );
        assert_eq!(
            wal_bytes(&path),
            wal_before,
            "the WAL in use was left as it was"
        );
        second.write(insert("b")).await.unwrap();
        reader.execute_batch("COMMIT").unwrap();
        assert_eq!(db.read(count).await.unwrap(), 2);
    }

    /// Between batches a read runs on the writer's own connection, whose page cache the
    /// commits leave warm: no read connection is ever opened.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn reads_between_batches_borrow_the_writers_connection() {
        let dir = tempfile::tempdir().unwrap();
        let (db, _) = file_db(&dir, "lend.db").await;
        for (i, k) in ["a", "b", "c"].into_iter().enumerate() {
            db.write(insert(k)).await.unwrap();
            assert_eq!(db.read(count).await.unwrap(), i as i64 + 1);
        }
        assert_eq!(
            db.pool_state(),
            (1, 0),
            "only the writer's connection is open"
        );
    }

    /// The writer's connection lent to a read is not read-only; a read that writes is a bug
    /// the debug build stops at.
    #[cfg(debug_assertions)]
    #[tokio::test]
    #[should_panic(expected = "a read wrote")]
    async fn a_read_that_writes_on_the_writers_connection_is_caught() {
        let dir = tempfile::tempdir().unwrap();
        let (db, _) = file_db(&dir, "sneak.db").await;
        let _ = db.read(insert("sneaked")).await;
    }

    /// While a batch holds the writer's connection, a read takes a pooled read connection: it
    /// does not wait for the batch, and it sees what was committed before it, not the batch.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_read_during_a_batch_does_not_wait_for_it_nor_see_it() {
        let dir = tempfile::tempdir().unwrap();
        let (db, _) = file_db(&dir, "busy.db").await;
        db.write(insert("before")).await.unwrap();
        let (open, gate) = mpsc::channel::<()>();
        let gate = Mutex::new(gate);
        let (started, running) = mpsc::channel::<()>();
        let started = Mutex::new(started);
        let mut held = Box::pin(db.write(move |c| {
            insert("during")(c)?;
            let _ = started.lock().unwrap().send(());
            let _ = gate.lock().unwrap().recv();
            Ok(())
        }));
        poll_pending(held.as_mut());
        running.recv().unwrap();
        // The batch is open and has inserted; the read must neither block nor see it.
        assert_eq!(db.read(count).await.unwrap(), 1);
        assert_eq!(db.pool_state().0, 2, "a read connection was opened");
        drop(open);
        held.await.unwrap();
        assert_eq!(db.read(count).await.unwrap(), 2);
    }

    #[tokio::test]
    async fn an_answered_write_is_committed_and_seen_by_another_connection() {
        let dir = tempfile::tempdir().unwrap();
        let (db, path) = file_db(&dir, "d.db").await;
        db.write(insert("durable")).await.unwrap();
        // A separate connection (another process, as far as SQLite knows) sees it at once.
        let other = Connection::open(&path).unwrap();
        let n: i64 = other
            .query_row("SELECT COUNT(*) FROM t WHERE k = 'durable'", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(n, 1);
    }
}
