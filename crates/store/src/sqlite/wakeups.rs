//! The writer thread asks the scheduler not to preempt the request threads when it wakes.
//!
//! A write wakes the writer thread at once. Under Linux's default policy the woken writer
//! usually preempts the thread that sent the job, commits that one job alone (one fsync) and
//! goes back to sleep, and the next job does the same. With `SCHED_BATCH` a woken thread
//! waits until the running thread blocks or its time slice ends (sched(7)): the request
//! thread finishes what it has ready, the jobs it sends meanwhile share one commit, and there
//! are fewer thread switches and fsyncs per request. The writer's CPU share and nice value
//! are unchanged. Measured with oauthd-bench at c=8 on one core: 18 % less CPU per flow,
//! 16–22 % more flows (BENCHMARKS.md).

/// Apply the writer's policy to the calling thread. Best effort: where the call is refused
/// (a seccomp profile, another OS) the writer works the same, with more switches.
pub(super) fn defer_wakeups() {
    #[cfg(target_os = "linux")]
    if let Err(e) = set_batch_policy() {
        tracing::debug!(error = %e, "the SQLite writer keeps the default scheduling policy");
    }
}

#[cfg(target_os = "linux")]
fn set_batch_policy() -> Result<(), String> {
    use thread_priority::{
        NormalThreadSchedulePolicy, ThreadPriority, ThreadPriorityValue, ThreadSchedulePolicy,
        set_thread_priority_and_policy, thread_native_id,
    };
    let batch = ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Batch);
    // The library also sets the thread's nice value, mapped from a 0–99 scale. Keep the nice
    // the thread has (or the next weaker one, should the scale skip it): raising priority
    // needs privileges, and lowering it would leave commits waiting behind Argon2.
    let nice = rustix::process::nice(0).map_err(|e| e.to_string())?;
    let keep = (0..=u8::from(ThreadPriorityValue::MAX))
        .rev()
        .filter_map(|p| ThreadPriorityValue::try_from(p).ok())
        .map(ThreadPriority::Crossplatform)
        .find(|p| p.to_posix(batch).is_ok_and(|n| n >= nice))
        .ok_or("no priority keeps the thread's nice value")?;
    set_thread_priority_and_policy(thread_native_id(), keep, batch).map_err(|e| format!("{e:?}"))
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    /// The policy is the writer thread's own: set on the calling thread, nice unchanged.
    #[test]
    fn sets_batch_on_this_thread_only() {
        use thread_priority::{NormalThreadSchedulePolicy, ThreadSchedulePolicy};
        let (policy, nice) = std::thread::spawn(|| {
            let before = rustix::process::nice(0).unwrap();
            defer_wakeups();
            let policy = thread_priority::unix::thread_schedule_policy().unwrap();
            assert_eq!(rustix::process::nice(0).unwrap(), before, "nice unchanged");
            (policy, before)
        })
        .join()
        .unwrap();
        assert_eq!(
            policy,
            ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Batch)
        );
        assert_eq!(rustix::process::nice(0).unwrap(), nice);
        assert_ne!(
            thread_priority::unix::thread_schedule_policy().unwrap(),
            ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Batch),
            "the calling thread keeps its policy"
        );
    }
}
