//! Authorization server metadata (RFC 8414) and OpenID Provider configuration (OpenID Connect
//! Discovery 1.0), fetched, checked and cached.

use std::sync::{Arc, Mutex};

use serde::Deserialize;

use crate::clock::Clock;
use crate::error::Error;
use crate::http::{Http, checked_url};

/// How long a document is served before it is fetched again, by default.
pub const DEFAULT_REFRESH_MS: i64 = 5 * 60 * 1000;
/// After a failed refresh, the last document is served this long before the next attempt.
const RETRY_MS: i64 = 30 * 1000;

/// The members of the metadata document this library uses (RFC 8414 §2, OIDC Discovery §3).
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub struct Metadata {
    pub issuer: String,
    #[serde(default)]
    pub authorization_endpoint: Option<String>,
    #[serde(default)]
    pub token_endpoint: Option<String>,
    #[serde(default)]
    pub jwks_uri: Option<String>,
    #[serde(default)]
    pub userinfo_endpoint: Option<String>,
    #[serde(default)]
    pub revocation_endpoint: Option<String>,
    #[serde(default)]
    pub introspection_endpoint: Option<String>,
    #[serde(default)]
    pub device_authorization_endpoint: Option<String>,
    #[serde(default)]
    pub end_session_endpoint: Option<String>,
    #[serde(default)]
    pub code_challenge_methods_supported: Vec<String>,
    /// RFC 9207 §3: the server puts `iss` in every authorization response.
    #[serde(default)]
    pub authorization_response_iss_parameter_supported: bool,
}

impl Metadata {
    /// The endpoint named `name`, required by the caller's flow: present, and https (or
    /// loopback http).
    pub fn endpoint(&self, name: &'static str) -> Result<&str, Error> {
        let value = match name {
            "authorization_endpoint" => &self.authorization_endpoint,
            "token_endpoint" => &self.token_endpoint,
            "jwks_uri" => &self.jwks_uri,
            "userinfo_endpoint" => &self.userinfo_endpoint,
            "revocation_endpoint" => &self.revocation_endpoint,
            "introspection_endpoint" => &self.introspection_endpoint,
            "device_authorization_endpoint" => &self.device_authorization_endpoint,
            "end_session_endpoint" => &self.end_session_endpoint,
            _ => &None,
        };
        let value = value.as_deref().ok_or_else(|| {
            Error::Discovery(format!("the metadata of {} has no {name}", self.issuer))
        })?;
        checked_url(value, name)?;
        Ok(value)
    }
}

/// The URLs where an issuer's metadata may be, in the order tried:
/// - OIDC Discovery §4: `/.well-known/openid-configuration` appended to the issuer;
/// - RFC 8414 §3.1: `/.well-known/oauth-authorization-server` inserted before the issuer's
///   path;
/// - RFC 8414 §5: the same insertion for `openid-configuration`, which some providers with a
///   path in their issuer use.
///
/// An issuer without a path has the first two only (the third equals the first).
pub fn metadata_urls(issuer: &url::Url) -> Vec<url::Url> {
    let path = issuer.path().trim_end_matches('/');
    let at = |p: String| {
        let mut u = issuer.clone();
        u.set_path(&p);
        u.set_query(None);
        u.set_fragment(None);
        u
    };
    let mut urls = vec![
        at(format!("{path}/.well-known/openid-configuration")),
        at(format!("/.well-known/oauth-authorization-server{path}")),
    ];
    if !path.is_empty() {
        urls.push(at(format!("/.well-known/openid-configuration{path}")));
    }
    urls
}

/// Fetches and checks `issuer`'s metadata: the first of [`metadata_urls`] that answers 200,
/// whose `issuer` must be identical to the one asked for (RFC 8414 §3.3, OIDC Discovery
/// §4.3) — otherwise a document could redirect the client's credentials to another server.
pub async fn discover(http: &Http, issuer: &str) -> Result<Metadata, Error> {
    let issuer_url = checked_url(issuer, "the issuer")?;
    let mut last = String::new();
    for url in metadata_urls(&issuer_url) {
        let reply = http.get_json(url.as_str()).await?;
        if reply.status != 200 {
            last = format!("{url} answered HTTP {}", reply.status);
            continue;
        }
        let metadata: Metadata = serde_json::from_value(reply.body)
            .map_err(|e| Error::Discovery(format!("the metadata at {url} is malformed: {e}")))?;
        if metadata.issuer != issuer {
            return Err(Error::Discovery(format!(
                "the metadata at {url} is for issuer {}, not {issuer}",
                metadata.issuer
            )));
        }
        return Ok(metadata);
    }
    Err(Error::Discovery(format!("{issuer} publishes no authorization server metadata ({last})")))
}

/// An issuer's metadata, cached and fetched again once [`DEFAULT_REFRESH_MS`] (or the
/// configured interval) has passed; a failed refresh keeps serving the last good document.
pub struct Discovery {
    http: Http,
    issuer: String,
    refresh_ms: i64,
    clock: Arc<dyn Clock>,
    cached: Mutex<Option<(i64, Arc<Metadata>)>>,
    fetch: tokio::sync::Mutex<()>,
}

impl Discovery {
    pub fn new(http: Http, issuer: impl Into<String>, clock: Arc<dyn Clock>) -> Self {
        Self {
            http,
            issuer: issuer.into(),
            refresh_ms: DEFAULT_REFRESH_MS,
            clock,
            cached: Mutex::new(None),
            fetch: tokio::sync::Mutex::new(()),
        }
    }

    /// Sets how often the document is fetched again.
    pub fn refresh_every(mut self, interval: std::time::Duration) -> Self {
        self.refresh_ms = i64::try_from(interval.as_millis()).unwrap_or(i64::MAX);
        self
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The metadata, from the cache while it is fresh; one fetch at a time.
    pub async fn get(&self) -> Result<Arc<Metadata>, Error> {
        if let Some(fresh) = self.fresh() {
            return Ok(fresh);
        }
        let _turn = self.fetch.lock().await;
        if let Some(fresh) = self.fresh() {
            return Ok(fresh);
        }
        match discover(&self.http, &self.issuer).await {
            Ok(metadata) => {
                let metadata = Arc::new(metadata);
                *lock(&self.cached) = Some((self.clock.now_ms(), metadata.clone()));
                Ok(metadata)
            }
            // The last good document stays valid while the server is briefly unreachable.
            // Retried after RETRY_MS rather than by every caller.
            Err(e) if e.is_transient() => {
                let mut cached = lock(&self.cached);
                match cached.as_mut() {
                    Some((at, stale)) => {
                        *at = self.clock.now_ms() - self.refresh_ms + RETRY_MS;
                        Ok(stale.clone())
                    }
                    None => Err(e),
                }
            }
            Err(e) => Err(e),
        }
    }

    fn fresh(&self) -> Option<Arc<Metadata>> {
        let now = self.clock.now_ms();
        lock(&self.cached)
            .as_ref()
            .filter(|(at, _)| now - at < self.refresh_ms)
            .map(|(_, m)| m.clone())
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Each critical section is one assignment or read: a panic cannot leave it half-done.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn urls(issuer: &str) -> Vec<String> {
        metadata_urls(&url::Url::parse(issuer).unwrap()).into_iter().map(String::from).collect()
    }

    #[test]
    fn rfc8414_3_1_well_known_uris_of_an_issuer_without_path() {
        assert_eq!(
            urls("https://as.example"),
            [
                "https://as.example/.well-known/openid-configuration",
                "https://as.example/.well-known/oauth-authorization-server",
            ]
        );
    }

    #[test]
    fn rfc8414_3_1_well_known_uri_is_inserted_before_the_issuers_path() {
        assert_eq!(
            urls("https://as.example/tenant/one"),
            [
                "https://as.example/tenant/one/.well-known/openid-configuration",
                "https://as.example/.well-known/oauth-authorization-server/tenant/one",
                "https://as.example/.well-known/openid-configuration/tenant/one",
            ]
        );
    }
}
