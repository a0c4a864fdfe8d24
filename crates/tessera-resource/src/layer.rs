//! The tower layers: [`AuthLayer`] authenticates, [`RequireScope`] authorizes a route.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::http::Request;
use axum::response::{IntoResponse, Response};
use tower::{Layer, Service};

use crate::principal::Principal;
use crate::rejection::{Rejection, RejectionKind};
use crate::validator::TokenValidator;

type BoxFuture = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

/// Authenticates every request with [`TokenValidator::authenticate`]: a refused request is
/// answered by its [`Rejection`]; an accepted one reaches the service with its [`Principal`]
/// in the request extensions (read it with the `Principal` extractor).
#[derive(Clone, Debug)]
pub struct AuthLayer {
    validator: TokenValidator,
}

impl AuthLayer {
    pub(crate) fn new(validator: TokenValidator) -> Self {
        Self { validator }
    }
}

impl<S> Layer<S> for AuthLayer {
    type Service = AuthService<S>;

    fn layer(&self, inner: S) -> AuthService<S> {
        AuthService { inner, validator: self.validator.clone() }
    }
}

/// The service of [`AuthLayer`].
#[derive(Clone, Debug)]
pub struct AuthService<S> {
    inner: S,
    validator: TokenValidator,
}

impl<S, B> Service<Request<B>> for AuthService<S>
where
    S: Service<Request<B>, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send,
    B: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = BoxFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> BoxFuture {
        // The clone that was polled ready serves this request (tower's usual swap).
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let validator = self.validator.clone();
        Box::pin(async move {
            let (mut parts, body) = request.into_parts();
            match validator.authenticate(&parts).await {
                Ok(principal) => {
                    parts.extensions.insert(principal);
                    inner.call(Request::from_parts(parts, body)).await
                }
                Err(rejection) => Ok(rejection.into_response()),
            }
        })
    }
}

/// A route's scope requirement (RFC 6750 §3.1 `insufficient_scope`): put it on the route with
/// `route_layer`, inside an [`AuthLayer`].
#[derive(Clone, Debug)]
pub struct RequireScope {
    scopes: Arc<[String]>,
}

impl RequireScope {
    /// The token must carry every one of `scopes`.
    pub fn all<S: Into<String>>(scopes: impl IntoIterator<Item = S>) -> Self {
        Self { scopes: scopes.into_iter().map(Into::into).collect() }
    }

    /// Whether `principal` has every scope; otherwise the refusal, naming all of them
    /// (RFC 6750 §3: the `scope` attribute lists the scopes needed, space-separated).
    pub fn check(&self, principal: &Principal) -> Result<(), Rejection> {
        if self.scopes.iter().all(|s| principal.has_scope(s)) {
            return Ok(());
        }
        Err(Rejection::new(
            RejectionKind::InsufficientScope(self.scopes.join(" ")),
            Some(principal.resource_metadata().clone()),
        ))
    }
}

impl<S> Layer<S> for RequireScope {
    type Service = RequireScopeService<S>;

    fn layer(&self, inner: S) -> RequireScopeService<S> {
        RequireScopeService { inner, scope: self.clone() }
    }
}

/// The service of [`RequireScope`].
#[derive(Clone, Debug)]
pub struct RequireScopeService<S> {
    inner: S,
    scope: RequireScope,
}

impl<S, B> Service<Request<B>> for RequireScopeService<S>
where
    S: Service<Request<B>, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send,
    B: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = BoxFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> BoxFuture {
        // Without an AuthLayer in front there is no principal: refused, never let through.
        let refusal = match request.extensions().get::<Principal>() {
            Some(principal) => self.scope.check(principal).err(),
            None => Some(Rejection::new(RejectionKind::MissingToken, None)),
        };
        if let Some(rejection) = refusal {
            return Box::pin(std::future::ready(Ok(rejection.into_response())));
        }
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        Box::pin(async move { inner.call(request).await })
    }
}
