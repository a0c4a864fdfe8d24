//! The refresh token grant (RFC 6749 §6) for a signed-in user's session: the rotated refresh
//! token is stored before the new access token is handed out (RFC 9700 §4.14.2: the old one is
//! never sent again), and one refresh runs at a time, so that two concurrent callers do not
//! present the same refresh token twice and trip the server's reuse detection.

use std::future::Future;
use std::sync::{Arc, Mutex};

use crate::client_auth::ClientCredentials;
use crate::clock::{Clock, SystemClock};
use crate::error::Error;
use crate::http::Http;
use crate::tokens::{SecretString, TokenResponse};

/// Where a session's current refresh token lives (a session row, an encrypted cookie store, a
/// file). `save` must be durable before it returns.
pub trait RefreshTokenStore: Send + Sync {
    fn load(&self) -> impl Future<Output = Result<Option<SecretString>, Error>> + Send;
    fn save(&self, refresh_token: &SecretString) -> impl Future<Output = Result<(), Error>> + Send;
}

/// A [`RefreshTokenStore`] in memory.
#[derive(Default)]
pub struct MemoryRefreshTokenStore(Mutex<Option<SecretString>>);

impl MemoryRefreshTokenStore {
    pub fn new(refresh_token: SecretString) -> Self {
        Self(Mutex::new(Some(refresh_token)))
    }
}

impl RefreshTokenStore for MemoryRefreshTokenStore {
    async fn load(&self) -> Result<Option<SecretString>, Error> {
        Ok(self.0.lock().unwrap_or_else(|e| e.into_inner()).clone())
    }

    async fn save(&self, refresh_token: &SecretString) -> Result<(), Error> {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = Some(refresh_token.clone());
        Ok(())
    }
}

#[derive(Clone)]
struct Current {
    access_token: SecretString,
    exp_ms: i64,
}

/// One session's access token, refreshed with its refresh token when needed.
pub struct Refresher<S> {
    http: Http,
    issuer: String,
    token_endpoint: String,
    credentials: ClientCredentials,
    store: S,
    clock: Arc<dyn Clock>,
    refresh_ahead_ms: i64,
    /// The single flight: held across a refresh.
    current: tokio::sync::Mutex<Option<Current>>,
}

impl<S: RefreshTokenStore> Refresher<S> {
    pub fn new(
        http: Http,
        issuer: impl Into<String>,
        token_endpoint: impl Into<String>,
        credentials: ClientCredentials,
        store: S,
    ) -> Result<Self, Error> {
        let token_endpoint = token_endpoint.into();
        crate::http::checked_url(&token_endpoint, "the token endpoint")?;
        Ok(Self {
            http,
            issuer: issuer.into(),
            token_endpoint,
            credentials,
            store,
            clock: Arc::new(SystemClock),
            refresh_ahead_ms: 30_000,
            current: tokio::sync::Mutex::new(None),
        })
    }

    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    pub fn store(&self) -> &S {
        &self.store
    }

    /// Starts from tokens already obtained (the code exchange).
    pub async fn set_current(&self, tokens: &TokenResponse) -> Result<(), Error> {
        if let Some(refresh) = &tokens.refresh_token {
            self.store.save(refresh).await?;
        }
        *self.current.lock().await = Some(self.current_of(tokens));
        Ok(())
    }

    /// An access token valid for a while yet: the current one, or a refreshed one.
    pub async fn access_token(&self) -> Result<SecretString, Error> {
        let mut current = self.current.lock().await;
        let now = self.clock.now_ms();
        if let Some(c) = current.as_ref().filter(|c| now < c.exp_ms - self.refresh_ahead_ms) {
            return Ok(c.access_token.clone());
        }
        self.refresh_locked(&mut current).await.map(|t| t.access_token)
    }

    /// A new access token because `rejected` was refused (RFC 6750 §3.1 `invalid_token`).
    /// If another caller already replaced it, that token is returned without a new refresh.
    pub async fn refresh_after_rejection(
        &self,
        rejected: &SecretString,
    ) -> Result<SecretString, Error> {
        let mut current = self.current.lock().await;
        if let Some(c) = current.as_ref().filter(|c| &c.access_token != rejected) {
            return Ok(c.access_token.clone());
        }
        self.refresh_locked(&mut current).await.map(|t| t.access_token)
    }

    /// Refreshes now and returns the whole token response.
    pub async fn refresh(&self) -> Result<TokenResponse, Error> {
        let mut current = self.current.lock().await;
        self.refresh_locked(&mut current).await
    }

    async fn refresh_locked(&self, current: &mut Option<Current>) -> Result<TokenResponse, Error> {
        let refresh_token =
            self.store.load().await?.ok_or(Error::InvalidTokenResponse(
                "no refresh token is stored for this session",
            ))?;
        let form = [("grant_type", "refresh_token"), ("refresh_token", refresh_token.expose())];
        let tokens = self
            .credentials
            .token_request(&self.http, &self.token_endpoint, &self.issuer, &form, self.clock.now())
            .await?;
        // RFC 6749 §6 / RFC 9700 §4.14.2: a rotated refresh token replaces the old one before
        // anything else happens; if saving fails, the new access token is not used either.
        if let Some(rotated) = &tokens.refresh_token {
            self.store.save(rotated).await?;
        }
        *current = Some(self.current_of(&tokens));
        Ok(tokens)
    }

    fn current_of(&self, tokens: &TokenResponse) -> Current {
        let lifetime = tokens.expires_in.unwrap_or(300).saturating_mul(1000);
        Current {
            access_token: tokens.access_token.clone(),
            exp_ms: self.clock.now_ms().saturating_add(lifetime),
        }
    }
}
