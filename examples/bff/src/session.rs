//! Server-side sessions: what the browser's cookie stands for.
//!
//! The cookie carries a random 256-bit session id; the store is keyed by its SHA-256, so a
//! dump of the store gives nobody a usable cookie. The tokens live only here.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tessera_client::{MemoryRefreshTokenStore, Refresher};

/// How long a session lives without being used.
const IDLE: Duration = Duration::from_secs(8 * 60 * 60);

/// One signed-in browser.
pub struct Session {
    /// The user's tokens: the access token, refreshed (rotation stored first) when needed.
    pub tokens: Arc<Refresher<MemoryRefreshTokenStore>>,
    /// The ID token, kept for `id_token_hint` at RP-initiated logout.
    pub id_token: Option<String>,
    /// The CSRF token the page echoes on state-changing requests.
    pub csrf: String,
    /// The user's `sub`, shown on the page.
    pub sub: String,
}

/// Where sessions are kept. A trait so that a deployment with several instances can put them
/// in a shared database; the example keeps them in memory.
pub trait SessionStore: Send + Sync + 'static {
    fn insert(&self, id: &str, session: Arc<Session>);
    fn get(&self, id: &str) -> Option<Arc<Session>>;
    fn remove(&self, id: &str) -> Option<Arc<Session>>;
}

/// Sessions in this process's memory, forgotten after [`IDLE`] without use.
#[derive(Default)]
pub struct MemorySessions(Mutex<HashMap<[u8; 32], Entry>>);

/// A session and when it was last used.
type Entry = (Arc<Session>, Instant);

fn key(id: &str) -> [u8; 32] {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, id.as_bytes());
    let mut key = [0u8; 32];
    key.copy_from_slice(digest.as_ref());
    key
}

impl SessionStore for MemorySessions {
    fn insert(&self, id: &str, session: Arc<Session>) {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        map.retain(|_, (_, used)| used.elapsed() < IDLE);
        map.insert(key(id), (session, Instant::now()));
    }

    fn get(&self, id: &str) -> Option<Arc<Session>> {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let entry = map.get_mut(&key(id)).filter(|(_, used)| used.elapsed() < IDLE)?;
        entry.1 = Instant::now();
        Some(entry.0.clone())
    }

    fn remove(&self, id: &str) -> Option<Arc<Session>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).remove(&key(id)).map(|(s, _)| s)
    }
}
