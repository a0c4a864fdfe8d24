//! Argon2id password checks on a few dedicated threads.
//!
//! Why not `spawn_blocking`: each Argon2id run needs its memory cost (19 MiB with the default
//! parameters). Spread over tokio's blocking pool, whose threads come and go by the dozen under
//! load, freed blocks stayed in per-thread malloc arenas: 455 MB RSS was measured during a
//! sign-in benchmark. Here a fixed set of threads each keeps one block for good
//! ([`PasswordVerifier`]); their number is the CPUs this process may use (at most
//! [`MAX_THREADS`]), since more concurrent runs than cores only thrash the cache (each run
//! walks its 19 MiB).

use std::sync::{Mutex, mpsc};

use tessera_core::secret::Secret;
use tessera_core::user::PasswordVerifier;
use tokio::sync::oneshot;

/// The most password-checking threads, whatever the machine.
pub const MAX_THREADS: usize = 4;

struct Job {
    password: Secret,
    phc: String,
    answer: oneshot::Sender<bool>,
}

/// A queue of password checks served by dedicated threads.
pub struct PasswordChecks {
    jobs: mpsc::Sender<Job>,
}

impl PasswordChecks {
    /// Starts the threads; they end when this value is dropped.
    pub fn start() -> std::io::Result<Self> {
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(MAX_THREADS);
        let (sender, receiver) = mpsc::channel::<Job>();
        let receiver = std::sync::Arc::new(Mutex::new(receiver));
        for i in 0..threads {
            let receiver = std::sync::Arc::clone(&receiver);
            std::thread::Builder::new().name(format!("password-check-{i}")).spawn(move || {
                // Each thread keeps its Argon2id working memory between checks.
                let mut verifier = PasswordVerifier::default();
                loop {
                    // The lock is held only while taking the next job, not while hashing.
                    let job = match receiver.lock().unwrap_or_else(|e| e.into_inner()).recv() {
                        Ok(job) => job,
                        Err(_) => return, // the sender is gone: the server is shutting down
                    };
                    let matched = verifier.verify(&job.password, &job.phc);
                    // The requester may have gone away (a closed connection): nothing to do.
                    let _ = job.answer.send(matched);
                }
            })?;
        }
        Ok(Self { jobs: sender })
    }

    /// Whether `password` matches the PHC string `phc`; `false` if the threads are gone.
    pub async fn verify(&self, password: Secret, phc: String) -> bool {
        let (answer, result) = oneshot::channel();
        let sent = self.jobs.send(Job { password, phc, answer });
        sent.is_ok() && result.await.unwrap_or(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tessera_core::user::hash_password;

    #[tokio::test]
    async fn r4_6_checks_match_only_the_right_password_also_concurrently() {
        let checks = std::sync::Arc::new(PasswordChecks::start().unwrap());
        let password = Secret::generate();
        let phc = hash_password(&password).unwrap();
        let mut tasks = Vec::new();
        for right in [true, false, true, false] {
            let (checks, phc) = (std::sync::Arc::clone(&checks), phc.clone());
            let presented = if right { password.clone() } else { Secret::generate() };
            tasks.push(tokio::spawn(async move { (right, checks.verify(presented, phc).await) }));
        }
        for task in tasks {
            let (right, matched) = task.await.unwrap();
            assert_eq!(right, matched);
        }
        assert!(!checks.verify(password, "not a PHC string".into()).await);
    }
}
