//! Documents fetched by URL behind the SSRF guard of [`crate::ssrf`] ([`fetch_document`]):
//! JWK sets (a client's `jwks_uri`, cached by [`JwksFetcher`]) and client ID metadata
//! documents (the server caches those itself, per their `Cache-Control`).
//!
//! The URL is chosen by someone else, so fetching it must not become a way into the fetcher's
//! own network: only `https`, no redirects, no proxy (a `HTTP(S)_PROXY` variable would send
//! the request to the proxy, which resolves the name again and so bypasses the address check),
//! a short timeout, a size cap, and the resolved address must be global unicast unless
//! `allow_private_networks` is set (tests and local development). The request goes to the
//! address that was checked, so a second DNS answer cannot swap it.
//!
//! A failed fetch is remembered for [`FAILURE_TTL`], so that requests naming a broken URL do
//! not each make the fetcher knock on it; concurrent requests for one URL share one fetch.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::jwks::Jwks;
use crate::ssrf::is_global_unicast;

/// How long a fetched JWKS is used before it is fetched again.
pub const JWKS_TTL: Duration = Duration::from_secs(300);
/// The least time between two fetches of one URL when a caller asks for a refresh (a `kid`
/// was not found).
pub const REFETCH_AFTER: Duration = Duration::from_secs(10);
/// How long a failed fetch is answered from memory.
pub const FAILURE_TTL: Duration = Duration::from_secs(30);
/// The largest JWKS document read.
pub const MAX_JWKS_BYTES: usize = 64 * 1024;
/// The whole fetch, connection included.
const TIMEOUT: Duration = Duration::from_secs(5);

/// Why a JWKS could not be fetched.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    #[error("the URL cannot be used: {0}")]
    Url(String),
    #[error("{0} resolves to no global unicast address")]
    NotGlobal(String),
    #[error("the fetch failed: {0}")]
    Http(String),
    #[error("the document is not a usable JWKS: {0}")]
    Document(String),
}

struct Entry {
    at: Instant,
    result: Result<Arc<Jwks>, FetchError>,
}

impl Entry {
    /// Whether this entry answers a request made now (`refresh`: the caller found its keys
    /// wanting and would like a newer copy).
    fn answers(&self, refresh: bool) -> bool {
        let age = self.at.elapsed();
        match self.result {
            Ok(_) => age < JWKS_TTL && (!refresh || age < REFETCH_AFTER),
            Err(_) => age < FAILURE_TTL,
        }
    }
}

/// Fetches and caches JWK sets by URL.
///
/// Each fetch builds its own HTTP client pinned to the address that passed the check, so there
/// is no shared client (building one at start-up would also load the system's root
/// certificates, tens of milliseconds of every start).
pub struct JwksFetcher {
    allow_private_networks: bool,
    entries: Mutex<HashMap<String, Entry>>,
    /// One lock per URL being fetched: the first caller fetches, the others wait for it and
    /// then read its result from `entries`.
    in_flight: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every critical section is a single map operation: a panic cannot leave one half-done.
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

impl JwksFetcher {
    pub fn new(allow_private_networks: bool) -> Self {
        Self { allow_private_networks, entries: Mutex::default(), in_flight: Mutex::default() }
    }

    /// The JWKS at `url`, from the cache while it is fresh. `refresh` asks for a new fetch (a
    /// `kid` was not found), honoured at most every [`REFETCH_AFTER`].
    pub async fn get(&self, url: &str, refresh: bool) -> Result<Arc<Jwks>, FetchError> {
        if let Some(result) = self.cached(url, refresh) {
            return result;
        }
        let flight = lock(&self.in_flight).entry(url.to_owned()).or_default().clone();
        let _turn = flight.lock().await;
        // Whoever held the lock before may have just fetched: that answer is fresh enough
        // even for a refresh.
        if let Some(result) = self.cached(url, refresh) {
            return result;
        }
        let result = self.fetch(url).await.map(Arc::new);
        lock(&self.entries)
            .insert(url.to_owned(), Entry { at: Instant::now(), result: result.clone() });
        lock(&self.in_flight).remove(url);
        result
    }

    fn cached(&self, url: &str, refresh: bool) -> Option<Result<Arc<Jwks>, FetchError>> {
        let entries = lock(&self.entries);
        entries.get(url).filter(|e| e.answers(refresh)).map(|e| e.result.clone())
    }

    async fn fetch(&self, url: &str) -> Result<Jwks, FetchError> {
        let document = fetch_document(url, self.allow_private_networks, MAX_JWKS_BYTES).await?;
        // A published JWKS may also hold keys for other uses (encryption): those are skipped;
        // a private or symmetric key still refuses the whole document.
        Jwks::parse_signing_keys(&document.text).map_err(|e| FetchError::Document(e.to_string()))
    }
}

/// A document fetched by [`fetch_document`].
#[derive(Clone, Debug)]
pub struct FetchedDocument {
    pub text: String,
    /// The `max-age` of its `Cache-Control` header (RFC 9111 §5.2.2.1); zero for `no-store`
    /// or `no-cache`; `None` when the header says neither.
    pub max_age: Option<Duration>,
}

/// Fetches a UTF-8 document of at most `max_bytes` from a URL someone else chose, behind the
/// SSRF guard described at the top of this module: https only (http too with
/// `allow_private_networks`, for tests and local development), the resolved address global
/// unicast unless `allow_private_networks`, requested at that very address, no proxy, no
/// redirect (a 3xx is a failure), 5 s in all.
pub async fn fetch_document(
    url: &str,
    allow_private_networks: bool,
    max_bytes: usize,
) -> Result<FetchedDocument, FetchError> {
    let url = reqwest::Url::parse(url).map_err(|e| FetchError::Url(e.to_string()))?;
    let loopback_http = url.scheme() == "http" && allow_private_networks;
    if url.scheme() != "https" && !loopback_http {
        return Err(FetchError::Url("only https is fetched".into()));
    }
    let host = url.host_str().ok_or_else(|| FetchError::Url("no host".into()))?.to_owned();
    let port = url.port_or_known_default().unwrap_or(443);
    // `lookup_host` wants a bare name or address: an IPv6 literal loses its brackets.
    let name = host.trim_start_matches('[').trim_end_matches(']');
    let address = tokio::net::lookup_host((name, port))
        .await
        .map_err(|e| FetchError::Url(format!("cannot resolve {host}: {e}")))?
        .find(|a| allow_private_networks || is_global_unicast(a.ip()))
        .ok_or_else(|| FetchError::NotGlobal(host.clone()))?;
    let client = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(TIMEOUT)
        .resolve(name, SocketAddr::new(address.ip(), port))
        .build()
        .map_err(|e| FetchError::Http(format!("cannot build an HTTP client: {e}")))?;
    let mut response = client.get(url).send().await.map_err(|e| FetchError::Http(e.to_string()))?;
    if !response.status().is_success() {
        return Err(FetchError::Http(format!("answered {}", response.status())));
    }
    let max_age = response
        .headers()
        .get(reqwest::header::CACHE_CONTROL)
        .and_then(|v| v.to_str().ok())
        .and_then(cache_max_age);
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| FetchError::Http(e.to_string()))? {
        body.extend_from_slice(&chunk);
        if body.len() > max_bytes {
            return Err(FetchError::Document(format!("larger than {max_bytes} bytes")));
        }
    }
    let text = String::from_utf8(body).map_err(|_| FetchError::Document("not UTF-8".into()))?;
    Ok(FetchedDocument { text, max_age })
}

/// How long a `Cache-Control` value lets a response be reused (RFC 9111 §5.2.2): `no-store`
/// and `no-cache` mean not at all, `max-age=N` N seconds.
fn cache_max_age(value: &str) -> Option<Duration> {
    let mut max_age = None;
    for directive in value.split(',').map(str::trim) {
        let (name, argument) = directive.split_once('=').unwrap_or((directive, ""));
        match name.to_ascii_lowercase().as_str() {
            "no-store" | "no-cache" => return Some(Duration::ZERO),
            "max-age" => max_age = argument.trim_matches('"').parse().ok().map(Duration::from_secs),
            _ => {}
        }
    }
    max_age
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc9111_5_2_2_cache_control_max_age_and_no_store() {
        assert_eq!(cache_max_age("public, max-age=600"), Some(Duration::from_secs(600)));
        assert_eq!(cache_max_age("max-age=\"60\""), Some(Duration::from_secs(60)));
        assert_eq!(cache_max_age("no-store, max-age=600"), Some(Duration::ZERO));
        assert_eq!(cache_max_age("No-Cache"), Some(Duration::ZERO));
        assert_eq!(cache_max_age("public"), None);
        assert_eq!(cache_max_age("max-age=soon"), None);
    }
}
