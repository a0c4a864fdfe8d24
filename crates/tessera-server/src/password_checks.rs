//! Argon2id password checks on a few dedicated threads, behind a bounded queue.
//!
//! Why not `spawn_blocking`: each Argon2id run needs its memory cost (19 MiB with the default
//! parameters). Spread over tokio's blocking pool, whose threads come and go by the dozen under
//! load, freed blocks stayed in per-thread malloc arenas: 455 MB RSS was measured during a
//! sign-in benchmark. Here a fixed set of threads each keeps one block for good
//! ([`PasswordVerifier`]); their number is the CPUs this process may use (at most
//! [`MAX_THREADS`]), since more concurrent runs than cores only thrash the cache (each run
//! walks its 19 MiB).
//!
//! The queue is bounded (issue 17 finding 4): a sign-in first takes a [`Slot`] and is answered
//! `503` at once when none is free, instead of piling up behind a flood of guesses. A check
//! whose requester has gone (a closed connection) by the time a thread takes it is skipped.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};

use tessera_core::secret::Secret;
use tessera_core::user::PasswordVerifier;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot};

/// The most password-checking threads, whatever the machine.
pub const MAX_THREADS: usize = 4;

struct Job {
    password: Secret,
    phc: String,
    answer: oneshot::Sender<bool>,
    /// Held until the check is done (or skipped): the place in the queue.
    slot: OwnedSemaphorePermit,
}

/// A queue of password checks served by dedicated threads.
pub struct PasswordChecks {
    jobs: mpsc::Sender<Job>,
    slots: Arc<Semaphore>,
    skipped: Arc<AtomicU64>,
}

/// Every place in the queue is taken: answer `503` and let the client retry.
#[derive(Debug, PartialEq, Eq)]
pub struct Busy;

/// A place in the queue, taken before the check is known to be needed.
pub struct Slot(OwnedSemaphorePermit);

impl PasswordChecks {
    /// Starts the threads, with room for `queue` checks waiting or running; the threads end
    /// when this value is dropped.
    pub fn start(queue: usize) -> std::io::Result<Self> {
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(MAX_THREADS);
        let (sender, receiver) = mpsc::channel::<Job>();
        let receiver = Arc::new(Mutex::new(receiver));
        let skipped = Arc::new(AtomicU64::new(0));
        for i in 0..threads {
            let receiver = Arc::clone(&receiver);
            let skipped = Arc::clone(&skipped);
            std::thread::Builder::new().name(format!("password-check-{i}")).spawn(move || {
                // Each thread keeps its Argon2id working memory between checks.
                let mut verifier = PasswordVerifier::default();
                loop {
                    // The lock is held only while taking the next job, not while hashing.
                    let job = match receiver.lock().unwrap_or_else(|e| e.into_inner()).recv() {
                        Ok(job) => job,
                        Err(_) => return, // the sender is gone: the server is shutting down
                    };
                    if job.answer.is_closed() {
                        // Nobody waits for this answer any more: spend no CPU on it.
                        skipped.fetch_add(1, Ordering::Relaxed);
                        metrics::counter!("tessera_password_checks_skipped_total").increment(1);
                        continue;
                    }
                    let Job { password, phc, answer, slot } = job;
                    let matched = verifier.verify(&password, &phc);
                    // The place is free once the check is done, before the answer is read.
                    drop(slot);
                    // The requester may have gone away meanwhile: nothing to do.
                    let _ = answer.send(matched);
                }
            })?;
        }
        Ok(Self { jobs: sender, slots: Arc::new(Semaphore::new(queue.max(1))), skipped })
    }

    /// Takes a place in the queue, or `Busy` when all are taken.
    pub fn reserve(&self) -> Result<Slot, Busy> {
        Arc::clone(&self.slots).try_acquire_owned().map(Slot).map_err(|_| Busy)
    }

    /// Whether `password` matches the PHC string `phc`; `false` if the threads are gone.
    pub async fn verify(&self, slot: Slot, password: Secret, phc: String) -> bool {
        let (answer, result) = oneshot::channel();
        let sent = self.jobs.send(Job { password, phc, answer, slot: slot.0 });
        sent.is_ok() && result.await.unwrap_or(false)
    }

    /// How many checks were skipped because their requester had gone.
    pub fn skipped(&self) -> u64 {
        self.skipped.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tessera_core::user::hash_password;

    #[tokio::test]
    async fn r4_6_checks_match_only_the_right_password_also_concurrently() {
        let checks = Arc::new(PasswordChecks::start(8).unwrap());
        let password = Secret::generate();
        let phc = hash_password(&password).unwrap();
        let mut tasks = Vec::new();
        for right in [true, false, true, false] {
            let (checks, phc) = (Arc::clone(&checks), phc.clone());
            let presented = if right { password.clone() } else { Secret::generate() };
            tasks.push(tokio::spawn(async move {
                let slot = checks.reserve().unwrap();
                (right, checks.verify(slot, presented, phc).await)
            }));
        }
        for task in tasks {
            let (right, matched) = task.await.unwrap();
            assert_eq!(right, matched);
        }
        let slot = checks.reserve().unwrap();
        assert!(!checks.verify(slot, password, "not a PHC string".into()).await);
    }

    #[tokio::test]
    async fn issue17_4_the_queue_is_bounded_and_frees_its_places() {
        let checks = PasswordChecks::start(2).unwrap();
        let (a, b) = (checks.reserve().unwrap(), checks.reserve().unwrap());
        assert!(matches!(checks.reserve(), Err(Busy)), "a full queue refuses at once");
        drop(a);
        let c = checks.reserve().unwrap();
        let phc = hash_password(&Secret::generate()).unwrap();
        assert!(!checks.verify(b, Secret::generate(), phc).await);
        // The finished check gave its place back.
        let _d = checks.reserve().unwrap();
        drop(c);
    }

    #[tokio::test]
    async fn issue17_4_checks_whose_requester_has_gone_are_skipped() {
        let checks = PasswordChecks::start(64).unwrap();
        let phc = hash_password(&Secret::generate()).unwrap();
        for _ in 0..20 {
            let slot = checks.reserve().unwrap();
            // The request is dropped before a thread takes its check (a closed connection).
            let verify = checks.verify(slot, Secret::generate(), phc.clone());
            let polled = futures_poll_once(verify).await;
            assert!(polled.is_none());
        }
        // Wait until every place is back: each job was skipped or checked.
        let started = std::time::Instant::now();
        while checks.slots.available_permits() < 64 {
            assert!(started.elapsed() < std::time::Duration::from_secs(60), "places not returned");
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        // A thread that took a job before its requester left finishes it; the rest are
        // skipped.
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(MAX_THREADS);
        assert!(checks.skipped() >= 20 - threads as u64, "skipped {}", checks.skipped());
    }

    /// Polls `f` once (sending its job), then drops it.
    async fn futures_poll_once<F: std::future::Future>(f: F) -> Option<F::Output> {
        let mut f = std::pin::pin!(f);
        std::future::poll_fn(|cx| match f.as_mut().poll(cx) {
            std::task::Poll::Ready(v) => std::task::Poll::Ready(Some(v)),
            std::task::Poll::Pending => std::task::Poll::Ready(None),
        })
        .await
    }
}
