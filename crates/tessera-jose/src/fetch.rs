//! JWK sets fetched by URL (a client's `jwks_uri`, later an issuer's `jwks_uri`), behind the
//! SSRF guard of [`crate::ssrf`], cached.
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
        fetch_jwks(url, self.allow_private_networks).await.map(|fetched| fetched.jwks)
    }
}

/// A document fetched through [`get_document`].
#[derive(Debug)]
pub struct Document {
    pub body: String,
    /// `Cache-Control: max-age` (RFC 9111 §5.2.2.1) as sent; `Some(ZERO)` for `no-store` or
    /// `no-cache`. Callers bound it to their own range.
    pub max_age: Option<Duration>,
}

/// A JWKS fetched through [`fetch_jwks`], with its freshness as the server stated it.
#[derive(Debug)]
pub struct FetchedJwks {
    pub jwks: Jwks,
    pub max_age: Option<Duration>,
}

/// Fetches the JWKS at `url` behind the guard of [`guarded_client`], without any caching:
/// for callers with a caching policy of their own (the resource-server library's rotation-safe
/// key cache); [`JwksFetcher`] is the cached way.
pub async fn fetch_jwks(
    url: &str,
    allow_private_networks: bool,
) -> Result<FetchedJwks, FetchError> {
    let document = get_document(url, allow_private_networks, MAX_JWKS_BYTES).await?;
    // A published JWKS may also hold keys for other uses (encryption): those are skipped;
    // a private or symmetric key still refuses the whole document.
    let jwks = Jwks::parse_signing_keys(&document.body)
        .map_err(|e| FetchError::Document(e.to_string()))?;
    Ok(FetchedJwks { jwks, max_age: document.max_age })
}

/// GETs `url` behind the guard of [`guarded_client`] and reads at most `max_bytes` of UTF-8:
/// metadata documents (RFC 8414) and JWK sets.
pub async fn get_document(
    url: &str,
    allow_private_networks: bool,
    max_bytes: usize,
) -> Result<Document, FetchError> {
    let (client, url) = guarded_client(url, allow_private_networks).await?;
    let response = client.get(url).send().await.map_err(|e| FetchError::Http(e.to_string()))?;
    if !response.status().is_success() {
        return Err(FetchError::Http(format!("answered {}", response.status())));
    }
    let max_age = max_age(response.headers());
    let body = read_capped(response, max_bytes).await?;
    let body = String::from_utf8(body).map_err(|_| FetchError::Document("not UTF-8".into()))?;
    Ok(Document { body, max_age })
}

/// An HTTP client for one request to `url`, and the parsed URL: only `https` (or `http` with
/// `allow_private_networks`), the name resolved once and checked against
/// [`is_global_unicast`] (unless `allow_private_networks`), the connection pinned to that
/// address, no proxy, no redirects, a 5 s timeout for the whole exchange. Read the answer with
/// [`read_capped`].
pub async fn guarded_client(
    url: &str,
    allow_private_networks: bool,
) -> Result<(reqwest::Client, reqwest::Url), FetchError> {
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
    Ok((client, url))
}

/// Reads an answer's body, refusing it once it passes `max_bytes`.
pub async fn read_capped(
    mut response: reqwest::Response,
    max_bytes: usize,
) -> Result<Vec<u8>, FetchError> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| FetchError::Http(e.to_string()))? {
        body.extend_from_slice(&chunk);
        if body.len() > max_bytes {
            return Err(FetchError::Document(format!("larger than {max_bytes} bytes")));
        }
    }
    Ok(body)
}

/// RFC 9111 §5.2.2: `max-age` of `Cache-Control`; `no-store` and `no-cache` count as zero.
fn max_age(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let value = headers.get(reqwest::header::CACHE_CONTROL)?.to_str().ok()?;
    let mut age = None;
    for directive in value.split(',').map(str::trim) {
        let (name, argument) = directive.split_once('=').unwrap_or((directive, ""));
        if name.eq_ignore_ascii_case("no-store") || name.eq_ignore_ascii_case("no-cache") {
            return Some(Duration::ZERO);
        }
        if name.eq_ignore_ascii_case("max-age") {
            age = argument.trim_matches('"').parse::<u64>().ok().map(Duration::from_secs);
        }
    }
    age
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache_control(value: &'static str) -> Option<Duration> {
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(reqwest::header::CACHE_CONTROL, value.parse().unwrap());
        max_age(&headers)
    }

    #[test]
    fn rfc9111_5_2_2_max_age_is_read_and_no_store_is_zero() {
        assert_eq!(cache_control("public, max-age=600"), Some(Duration::from_secs(600)));
        assert_eq!(cache_control("MAX-AGE=\"7\""), Some(Duration::from_secs(7)));
        assert_eq!(cache_control("no-store"), Some(Duration::ZERO));
        assert_eq!(cache_control("max-age=60, no-cache"), Some(Duration::ZERO));
        assert_eq!(cache_control("max-age=x"), None);
        assert_eq!(cache_control("public"), None);
        assert_eq!(max_age(&reqwest::header::HeaderMap::new()), None);
    }
}
