//! The outgoing-request layer: a tower [`Layer`] around any `reqwest` service (a
//! `reqwest::Client` is one) that attaches the bearer token (RFC 6750 §2.1), and when the
//! resource server answers `401` with `error="invalid_token"` (§3.1), gets a new token and
//! retries once — never more, so a token the server keeps refusing cannot cause a loop.
//!
//! tower rather than reqwest-middleware: `reqwest::Client` already implements tower's
//! `Service`, and tower is already in every build through reqwest and axum, where
//! reqwest-middleware would add a crate (and `anyhow`) for the same job.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use reqwest::header::{AUTHORIZATION, HeaderValue, WWW_AUTHENTICATE};
use tower::{Layer, Service};

use crate::error::Error;
use crate::refresh::{RefreshTokenStore, Refresher};
use crate::token_manager::{TokenManager, TokenRequest};
use crate::tokens::SecretString;

/// Where the layer gets its tokens.
pub trait TokenSource: Send + Sync + 'static {
    /// A token to send.
    fn token(&self) -> impl Future<Output = Result<SecretString, Error>> + Send;
    /// A new token because `rejected` was refused with `invalid_token`.
    fn replace(
        &self,
        rejected: &SecretString,
    ) -> impl Future<Output = Result<SecretString, Error>> + Send;
}

/// A service's own tokens: a [`TokenManager`] and what to ask it for.
pub struct ServiceTokens {
    pub manager: TokenManager,
    pub request: TokenRequest,
}

impl TokenSource for ServiceTokens {
    async fn token(&self) -> Result<SecretString, Error> {
        self.manager.token(&self.request).await
    }

    async fn replace(&self, rejected: &SecretString) -> Result<SecretString, Error> {
        self.manager.invalidate(&self.request, rejected);
        self.manager.token(&self.request).await
    }
}

/// A user's tokens, refreshed with their refresh token.
impl<S: RefreshTokenStore + 'static> TokenSource for Refresher<S> {
    async fn token(&self) -> Result<SecretString, Error> {
        self.access_token().await
    }

    async fn replace(&self, rejected: &SecretString) -> Result<SecretString, Error> {
        self.refresh_after_rejection(rejected).await
    }
}

/// Attaches tokens from `T` to every request of the wrapped service.
pub struct BearerLayer<T> {
    source: Arc<T>,
}

impl<T> BearerLayer<T> {
    pub fn new(source: Arc<T>) -> Self {
        Self { source }
    }
}

impl<T> Clone for BearerLayer<T> {
    fn clone(&self) -> Self {
        Self { source: self.source.clone() }
    }
}

impl<T, S> Layer<S> for BearerLayer<T> {
    type Service = Bearer<T, S>;

    fn layer(&self, inner: S) -> Self::Service {
        Bearer { source: self.source.clone(), inner }
    }
}

/// The service [`BearerLayer`] makes.
pub struct Bearer<T, S> {
    source: Arc<T>,
    inner: S,
}

impl<T, S: Clone> Clone for Bearer<T, S> {
    fn clone(&self) -> Self {
        Self { source: self.source.clone(), inner: self.inner.clone() }
    }
}

fn network(url: &str) -> impl FnOnce(reqwest::Error) -> Error + '_ {
    move |source| Error::Network { url: url.to_owned(), source }
}

fn with_bearer(
    mut request: reqwest::Request,
    token: &SecretString,
) -> Result<reqwest::Request, Error> {
    let mut value = HeaderValue::try_from(format!("Bearer {}", token.expose()))
        .map_err(|_| Error::InvalidTokenResponse("the access token is not a valid header value"))?;
    value.set_sensitive(true);
    request.headers_mut().insert(AUTHORIZATION, value);
    Ok(request)
}

/// RFC 6750 §3.1: the token was refused as expired, revoked or invalid (not a missing scope,
/// which a new token of the same scope would not cure).
fn is_invalid_token(response: &reqwest::Response) -> bool {
    response.status() == reqwest::StatusCode::UNAUTHORIZED
        && response.headers().get_all(WWW_AUTHENTICATE).iter().any(|v| {
            v.to_str().is_ok_and(|v| {
                v.get(..6).is_some_and(|s| s.eq_ignore_ascii_case("bearer"))
                    && v.contains("error=\"invalid_token\"")
            })
        })
}

impl<T, S> Service<reqwest::Request> for Bearer<T, S>
where
    T: TokenSource,
    S: Service<reqwest::Request, Response = reqwest::Response, Error = reqwest::Error>
        + Clone
        + Send
        + 'static,
    S::Future: Send,
{
    type Response = reqwest::Response;
    type Error = Error;
    type Future = Pin<Box<dyn Future<Output = Result<reqwest::Response, Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.inner.poll_ready(cx).map_err(|source| Error::Network { url: String::new(), source })
    }

    fn call(&mut self, request: reqwest::Request) -> Self::Future {
        // The inner service that was polled ready goes with this call (tower's rule).
        let fresh = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, fresh);
        let source = self.source.clone();
        Box::pin(async move {
            let url = request.url().to_string();
            // A streaming body cannot be sent twice: such a request is not retried.
            let retry = request.try_clone();
            let token = source.token().await?;
            let response =
                inner.call(with_bearer(request, &token)?).await.map_err(network(&url))?;
            let Some(retry) = retry.filter(|_| is_invalid_token(&response)) else {
                return Ok(response);
            };
            let token = source.replace(&token).await?;
            std::future::poll_fn(|cx| inner.poll_ready(cx)).await.map_err(network(&url))?;
            inner.call(with_bearer(retry, &token)?).await.map_err(network(&url))
        })
    }
}
