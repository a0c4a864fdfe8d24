//! The public keys of `private_key_jwt` clients (RFC 7523): their registered `jwks`, or the
//! document at their `jwks_uri`, fetched with an SSRF guard and cached.
//!
//! A `jwks_uri` is a URL chosen by a client, so fetching it must not become a way to reach
//! the server's own network: only `https`, no redirects, a short timeout, a size cap, and the
//! resolved address must be public (loopback and private ranges are refused unless
//! `outbound_allow_private_networks` is set, as for tests and local development). The request
//! is sent to the address that was checked, so a second DNS answer cannot swap it.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::JwkSet;
use tessera_core::client::Client;
use tessera_core::client_assertion::validate_jwks;

/// How long a fetched JWKS is used before it is fetched again.
const JWKS_TTL: Duration = Duration::from_secs(300);
/// The least time between two fetches for one client (a `kid` miss refetches at most this often).
const REFETCH_AFTER: Duration = Duration::from_secs(10);
const MAX_JWKS_BYTES: usize = 64 * 1024;

/// Why a client's keys are not available; each is an `invalid_client` for the request.
#[derive(Debug, thiserror::Error)]
pub enum KeysError {
    #[error("the client registered no keys")]
    NoKeys,
    #[error("the client's jwks_uri cannot be used: {0}")]
    Uri(String),
    #[error("the client's JWKS is unusable: {0}")]
    Document(String),
}

/// Cached client key sets.
/// Each fetch builds its own HTTP client pinned to the address that passed the SSRF check, so
/// there is no shared client (building one at start-up would also load the system's root
/// certificates, tens of milliseconds of every start).
pub struct ClientKeys {
    allow_private: bool,
    cache: RwLock<HashMap<String, (Instant, Arc<JwkSet>)>>,
}

impl ClientKeys {
    pub fn new(allow_private: bool) -> Self {
        Self { allow_private, cache: RwLock::default() }
    }

    /// The client's keys. `refresh` asks for a new fetch (a `kid` was not found), honoured at
    /// most every [`REFETCH_AFTER`].
    pub async fn for_client(
        &self,
        client: &Client,
        refresh: bool,
    ) -> Result<Arc<JwkSet>, KeysError> {
        if let Some(inline) = &client.jwks {
            return validate_jwks(inline).map(Arc::new).map_err(KeysError::Document);
        }
        let uri = client.jwks_uri.as_deref().ok_or(KeysError::NoKeys)?;
        let cached = self.cache.read().unwrap_or_else(|e| e.into_inner()).get(uri).cloned();
        if let Some((fetched, set)) = &cached {
            let age = fetched.elapsed();
            if age < JWKS_TTL && (!refresh || age < REFETCH_AFTER) {
                return Ok(set.clone());
            }
        }
        let set = Arc::new(self.fetch(uri).await?);
        self.cache
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(uri.to_owned(), (Instant::now(), set.clone()));
        Ok(set)
    }

    async fn fetch(&self, uri: &str) -> Result<JwkSet, KeysError> {
        let url = reqwest::Url::parse(uri).map_err(|e| KeysError::Uri(e.to_string()))?;
        let loopback_http = url.scheme() == "http" && self.allow_private;
        if url.scheme() != "https" && !loopback_http {
            return Err(KeysError::Uri("only https is fetched".into()));
        }
        let host = url.host_str().ok_or_else(|| KeysError::Uri("no host".into()))?.to_owned();
        let port = url.port_or_known_default().unwrap_or(443);
        let address = tokio::net::lookup_host((host.as_str(), port))
            .await
            .map_err(|e| KeysError::Uri(format!("cannot resolve {host}: {e}")))?
            .find(|a| self.allow_private || is_public(a.ip()))
            .ok_or_else(|| KeysError::Uri(format!("{host} resolves to no public address")))?;
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(5))
            .resolve(&host, SocketAddr::new(address.ip(), port))
            .build()
            .map_err(|e| KeysError::Uri(format!("cannot build an HTTP client: {e}")))?;
        let mut response =
            client.get(url).send().await.map_err(|e| KeysError::Uri(e.to_string()))?;
        if !response.status().is_success() {
            return Err(KeysError::Uri(format!("answered {}", response.status())));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| KeysError::Uri(e.to_string()))? {
            body.extend_from_slice(&chunk);
            if body.len() > MAX_JWKS_BYTES {
                return Err(KeysError::Document("larger than 64 KiB".into()));
            }
        }
        let text = String::from_utf8(body).map_err(|_| KeysError::Document("not UTF-8".into()))?;
        validate_jwks(&text).map_err(KeysError::Document)
    }
}

/// Whether an address is on the public internet (not loopback, private, link-local, unique
/// local, unspecified, multicast or documentation ranges).
fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || v4.octets()[0] == 100 && (v4.octets()[1] & 0xc0) == 64)
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ssrf_guard_refuses_internal_addresses() {
        for internal in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "0.0.0.0",
        ] {
            assert!(!is_public(internal.parse().unwrap()), "{internal}");
        }
        for public in ["93.184.216.34", "2606:4700::1111"] {
            assert!(is_public(public.parse().unwrap()), "{public}");
        }
    }
}
