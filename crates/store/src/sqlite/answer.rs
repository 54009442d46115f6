//! How the writer thread hands each job's outcome back to the task that queued it, waking
//! one task per commit instead of one per job.
//!
//! Waking a task from another thread costs a system call and, worse, the woken request
//! thread preempts the writer at once, runs that one request and blocks again; the writer
//! then wakes the next one. At c=8 that was six thread switches per commit. So the writer
//! stores every outcome of a batch, wakes the first waiting caller only and hands it the
//! others' wakers (its relay); that caller wakes them from its own runtime thread, where a
//! wake is a push onto a local run queue. A caller that goes away before it could pass the
//! relay on wakes the others as it is dropped.
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use crate::{StoreError, StoreResult};

/// One job's outcome, shared by the writer (which fills it) and the caller (which awaits it).
pub(super) struct Slot<R> {
    state: Mutex<SlotState<R>>,
}

struct SlotState<R> {
    outcome: Outcome<R>,
    /// The caller's task, while it waits.
    waker: Option<Waker>,
    /// The caller went away: nobody reads `outcome`, nor passes `relay` on.
    gone: bool,
    /// Other callers of the same batch, for this one to wake.
    relay: Vec<Waker>,
}

enum Outcome<R> {
    Awaited,
    Stored(StoreResult<R>),
    Read,
}

/// A caller whose outcome is stored and who still has to be woken.
pub(super) struct Waiting {
    waker: Waker,
    slot: Arc<dyn Relay>,
}

/// The type-erased part of a slot the writer needs to hand the relay over.
trait Relay: Send + Sync {
    /// Give the caller the wakers it must wake; back if the caller has gone away.
    fn take_over(&self, others: Vec<Waker>) -> Result<(), Vec<Waker>>;
    /// The wakers the caller has not passed on yet.
    fn take_back(&self) -> Vec<Waker>;
}

impl<R> Slot<R> {
    pub(super) fn new() -> Arc<Slot<R>> {
        Arc::new(Slot {
            state: Mutex::new(SlotState {
                outcome: Outcome::Awaited,
                waker: None,
                gone: false,
                relay: Vec::new(),
            }),
        })
    }

    fn lock(&self) -> MutexGuard<'_, SlotState<R>> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl<R: Send + 'static> Slot<R> {
    /// Called once per slot, by its `Reply`.
    fn fill(self: &Arc<Self>, outcome: StoreResult<R>) -> Option<Waiting> {
        let mut state = self.lock();
        if state.gone {
            return None;
        }
        state.outcome = Outcome::Stored(outcome);
        let waker = state.waker.take()?;
        Some(Waiting {
            waker,
            slot: self.clone(),
        })
    }
}

impl<R: Send> Relay for Slot<R> {
    fn take_over(&self, others: Vec<Waker>) -> Result<(), Vec<Waker>> {
        let mut state = self.lock();
        if state.gone {
            return Err(others);
        }
        state.relay.extend(others);
        Ok(())
    }

    fn take_back(&self) -> Vec<Waker> {
        std::mem::take(&mut self.lock().relay)
    }
}

/// The writer's side of a slot. Dropped unfilled (the writer thread died), it answers that
/// the writer has stopped, so no caller waits forever.
pub(super) struct Reply<R: Send + 'static>(Option<Arc<Slot<R>>>);

impl<R: Send + 'static> Reply<R> {
    pub(super) fn new(slot: &Arc<Slot<R>>) -> Reply<R> {
        Reply(Some(slot.clone()))
    }

    /// Store the outcome without waking anyone; the caller to wake, if it waits for it.
    pub(super) fn fill(mut self, outcome: StoreResult<R>) -> Option<Waiting> {
        self.0.take()?.fill(outcome)
    }
}

impl<R: Send + 'static> Drop for Reply<R> {
    fn drop(&mut self) {
        if let Some(slot) = self.0.take() {
            let stopped = StoreError::Unavailable("the database writer has stopped".into());
            if let Some(waiting) = slot.fill(Err(stopped)) {
                waiting.waker.wake();
            }
        }
    }
}

/// Wake the callers of a committed batch: the first one directly, the others through it.
///
/// Returns what was handed to the first caller, if anyone else was waiting: the writer takes
/// back what has not been passed on by its next commit, or after `RELAY_BOUND` with nothing
/// to commit, and wakes those callers itself. So a first caller whose future is not polled
/// again (its task busy elsewhere, or holding the future unpolled) delays the others by that
/// much at most.
pub(super) fn wake(waiting: Vec<Waiting>) -> Option<Handover> {
    let mut waiting = waiting.into_iter();
    while let Some(first) = waiting.next() {
        let others: Vec<Waker> = waiting.by_ref().map(|w| w.waker).collect();
        let handed = !others.is_empty();
        match first.slot.take_over(others) {
            Ok(()) => {
                first.waker.wake();
                return handed.then_some(Handover(first.slot));
            }
            // The first caller went away in between: wake the others from here.
            Err(others) => others.into_iter().for_each(Waker::wake),
        }
    }
    None
}

/// A relay handed to a caller. Dropping it takes the relay back: the callers its holder has
/// not woken yet are woken from the dropping thread.
pub(super) struct Handover(Arc<dyn Relay>);

impl Drop for Handover {
    fn drop(&mut self) {
        self.0.take_back().into_iter().for_each(Waker::wake);
    }
}

/// The caller's side: resolves to the outcome once the writer has stored it.
pub(super) struct Answer<R>(pub(super) Arc<Slot<R>>);

impl<R> Future for Answer<R> {
    type Output = StoreResult<R>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<StoreResult<R>> {
        let mut state = self.0.lock();
        let relay = std::mem::take(&mut state.relay);
        let poll = match std::mem::replace(&mut state.outcome, Outcome::Read) {
            Outcome::Stored(outcome) => Poll::Ready(outcome),
            Outcome::Read => Poll::Ready(Err(StoreError::Unavailable(
                "the answer to a database write was read twice".into(),
            ))),
            Outcome::Awaited => {
                state.outcome = Outcome::Awaited;
                match &mut state.waker {
                    Some(w) if w.will_wake(cx.waker()) => {}
                    w => *w = Some(cx.waker().clone()),
                }
                Poll::Pending
            }
        };
        drop(state);
        relay.into_iter().for_each(Waker::wake);
        poll
    }
}

impl<R> Drop for Answer<R> {
    fn drop(&mut self) {
        let mut state = self.0.lock();
        state.gone = true;
        state.waker = None;
        let relay = std::mem::take(&mut state.relay);
        drop(state);
        relay.into_iter().for_each(Waker::wake);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::Wake;

    /// A waker that counts how often it was woken.
    struct Count(AtomicUsize);

    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn counter() -> (Arc<Count>, Waker) {
        let c = Arc::new(Count(AtomicUsize::new(0)));
        (c.clone(), Waker::from(c))
    }

    fn woken(c: &Count) -> usize {
        c.0.load(Ordering::SeqCst)
    }

    fn poll<R>(answer: &mut Answer<R>, waker: &Waker) -> Poll<StoreResult<R>> {
        Pin::new(answer).poll(&mut Context::from_waker(waker))
    }

    /// The callers' slots, their answers, and the wakers each was polled with.
    type Callers = (
        Vec<Arc<Slot<u32>>>,
        Vec<Answer<u32>>,
        Vec<(Arc<Count>, Waker)>,
    );

    /// `n` callers, each polled once, so each waits with a counting waker of its own.
    fn waiting_callers(n: usize) -> Callers {
        let slots: Vec<Arc<Slot<u32>>> = (0..n).map(|_| Slot::new()).collect();
        let mut answers: Vec<Answer<u32>> = slots.iter().map(|s| Answer(s.clone())).collect();
        let counters: Vec<(Arc<Count>, Waker)> = (0..n).map(|_| counter()).collect();
        for (a, (_, w)) in answers.iter_mut().zip(&counters) {
            assert!(poll(a, w).is_pending());
        }
        (slots, answers, counters)
    }

    /// The writer's side of a commit: every slot filled with `value`; the callers to wake.
    fn fill_all(slots: &[Arc<Slot<u32>>], value: u32) -> Vec<Waiting> {
        slots
            .iter()
            .filter_map(|s| Reply::new(s).fill(Ok(value)))
            .collect()
    }

    /// How often each caller has been woken so far.
    fn wakes(counters: &[(Arc<Count>, Waker)]) -> Vec<usize> {
        counters.iter().map(|(c, _)| woken(c)).collect()
    }

    /// Three callers wait; the writer wakes the first only, and the first, once polled,
    /// wakes the other two; each gets its own outcome.
    #[test]
    fn one_wake_per_batch_and_the_first_caller_relays_it() {
        let (slots, mut answers, counters) = waiting_callers(3);
        let waiting: Vec<Waiting> = slots
            .iter()
            .enumerate()
            .filter_map(|(i, s)| Reply::new(s).fill(Ok(i as u32)))
            .collect();
        let _relay = wake(waiting);
        assert_eq!(
            wakes(&counters),
            [1, 0, 0],
            "the writer woke the first caller only"
        );
        assert!(matches!(
            poll(&mut answers[0], &counters[0].1),
            Poll::Ready(Ok(0))
        ));
        assert_eq!(
            wakes(&counters),
            [1, 1, 1],
            "the first caller woke the others"
        );
        assert!(matches!(
            poll(&mut answers[1], &counters[1].1),
            Poll::Ready(Ok(1))
        ));
        assert!(matches!(
            poll(&mut answers[2], &counters[2].1),
            Poll::Ready(Ok(2))
        ));
    }

    /// The first caller is cancelled after it was handed the relay: dropping it wakes the
    /// others, so none waits forever.
    #[test]
    fn a_cancelled_first_caller_passes_the_relay_on_as_it_is_dropped() {
        let (slots, mut answers, counters) = waiting_callers(2);
        let _relay = wake(fill_all(&slots, 7));
        assert_eq!(woken(&counters[1].0), 0);
        drop(answers.remove(0));
        assert_eq!(woken(&counters[1].0), 1);
        assert!(matches!(
            poll(&mut answers[0], &counters[1].1),
            Poll::Ready(Ok(7))
        ));
    }

    /// The first caller went away before the writer finished: the writer skips it (its
    /// outcome is not stored) and the next caller gets the wake and the relay.
    #[test]
    fn a_caller_gone_before_the_commit_is_skipped() {
        let (slots, mut answers, counters) = waiting_callers(3);
        drop(answers.remove(0));
        let waiting = fill_all(&slots, 1);
        assert_eq!(waiting.len(), 2);
        let _relay = wake(waiting);
        assert_eq!(wakes(&counters), [0, 1, 0]);
        assert!(poll(&mut answers[0], &counters[1].1).is_ready());
        assert_eq!(woken(&counters[2].0), 1);
    }

    /// A caller that polls after the outcome was stored, but before any wake, gets it at once
    /// and is not counted among those to wake.
    #[test]
    fn an_outcome_stored_before_the_first_poll_is_ready_at_once() {
        let slot: Arc<Slot<u32>> = Slot::new();
        let mut answer = Answer(slot.clone());
        assert!(Reply::new(&slot).fill(Ok(3)).is_none(), "nobody waited yet");
        let (c, w) = counter();
        assert!(matches!(poll(&mut answer, &w), Poll::Ready(Ok(3))));
        assert_eq!(woken(&c), 0);
    }

    /// A first caller that is woken but not polled again: the writer takes the relay back and
    /// wakes the others itself; when the first caller is polled at last, it wakes no one twice.
    #[test]
    fn a_relay_not_passed_on_is_taken_back() {
        let (slots, mut answers, counters) = waiting_callers(3);
        let handover = wake(fill_all(&slots, 5)).expect("others were waiting");
        assert_eq!(wakes(&counters), [1, 0, 0]);
        drop(handover);
        assert_eq!(wakes(&counters), [1, 1, 1], "the writer woke the other two");
        assert!(matches!(
            poll(&mut answers[0], &counters[0].1),
            Poll::Ready(Ok(5))
        ));
        assert_eq!(wakes(&counters), [1, 1, 1], "nobody woken twice");
    }

    /// A job dropped unanswered (its writer thread died) answers an error and wakes its
    /// caller, instead of leaving it waiting.
    #[test]
    fn a_reply_dropped_unfilled_answers_that_the_writer_stopped() {
        let slot: Arc<Slot<u32>> = Slot::new();
        let mut answer = Answer(slot.clone());
        let (c, w) = counter();
        assert!(poll(&mut answer, &w).is_pending());
        drop(Reply::new(&slot));
        assert_eq!(woken(&c), 1);
        assert!(matches!(
            poll(&mut answer, &w),
            Poll::Ready(Err(StoreError::Unavailable(e))) if e.to_string().contains("stopped")
        ));
    }
}
