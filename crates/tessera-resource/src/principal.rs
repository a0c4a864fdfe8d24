//! [`Principal`]: who a valid access token speaks for, made only by the validator.

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use tessera_jose::{AccessTokenClaims, Actor, Confirmation, Scopes};

use crate::introspection::Introspected;
use crate::rejection::{Rejection, RejectionKind};

/// How the token was validated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenSource {
    /// A JWT access token (RFC 9068) verified with the issuer's public keys.
    Jwt,
    /// An opaque token the issuer described as active (RFC 7662).
    Introspection,
}

/// The caller of a request whose access token passed every check. Only
/// [`crate::TokenValidator`] makes one (there is no public constructor), so a handler that
/// receives a `Principal` knows the token was validated.
///
/// Shared, not copied: the validator hands out the one it remembered for a token seen before
/// (`TokenMemo`), and a clone is a reference count.
#[derive(Clone, Debug)]
pub struct Principal(Arc<Fields>);

#[derive(Debug)]
struct Fields {
    issuer: String,
    subject: String,
    client_id: String,
    scopes: Scopes,
    audience: Vec<String>,
    expires_at: i64,
    jti: Option<String>,
    auth_time: Option<i64>,
    confirmation: Option<Confirmation>,
    actor: Option<Actor>,
    source: TokenSource,
    /// Where the challenge of a later refusal (a scope) points (RFC 9728 §5.1).
    resource_metadata: Arc<str>,
}

impl Principal {
    pub(crate) fn from_jwt(claims: AccessTokenClaims, resource_metadata: Arc<str>) -> Self {
        Self(Arc::new(Fields {
            issuer: claims.iss,
            subject: claims.sub,
            client_id: claims.client_id,
            scopes: claims.scope,
            audience: claims.aud.into_vec(),
            expires_at: claims.exp,
            jti: Some(claims.jti),
            auth_time: claims.auth_time,
            confirmation: claims.cnf,
            actor: claims.act,
            source: TokenSource::Jwt,
            resource_metadata,
        }))
    }

    pub(crate) fn from_introspection(
        issuer: &str,
        answer: &Introspected,
        expires_at: i64,
        resource_metadata: Arc<str>,
    ) -> Self {
        let client_id = answer.client_id.clone().unwrap_or_default();
        Self(Arc::new(Fields {
            issuer: issuer.to_owned(),
            // RFC 7662 §2.2: `sub` is optional; a client-credentials token stands for its client.
            subject: answer.sub.clone().unwrap_or_else(|| client_id.clone()),
            client_id,
            scopes: answer.scope.clone(),
            audience: answer.aud.as_slice().to_vec(),
            expires_at,
            jti: answer.jti.clone(),
            auth_time: None,
            confirmation: answer.cnf.clone(),
            actor: None,
            source: TokenSource::Introspection,
            resource_metadata,
        }))
    }

    pub(crate) fn resource_metadata(&self) -> &Arc<str> {
        &self.0.resource_metadata
    }

    /// `iss`: the authorization server that issued the token.
    pub fn issuer(&self) -> &str {
        &self.0.issuer
    }

    /// `sub`: the user, or the client itself for a client-credentials token.
    pub fn subject(&self) -> &str {
        &self.0.subject
    }

    /// `client_id`: the client the token was issued to.
    pub fn client_id(&self) -> &str {
        &self.0.client_id
    }

    pub fn scopes(&self) -> &Scopes {
        &self.0.scopes
    }

    pub fn has_scope(&self, scope: &str) -> bool {
        self.0.scopes.contains(scope)
    }

    pub fn audience(&self) -> &[String] {
        &self.0.audience
    }

    /// `exp`, seconds since the epoch.
    pub fn expires_at(&self) -> i64 {
        self.0.expires_at
    }

    pub fn jti(&self) -> Option<&str> {
        self.0.jti.as_deref()
    }

    pub fn auth_time(&self) -> Option<i64> {
        self.0.auth_time
    }

    /// `cnf` (RFC 7800): the key the token is bound to; its proof was checked.
    pub fn confirmation(&self) -> Option<&Confirmation> {
        self.0.confirmation.as_ref()
    }

    /// `act` (RFC 8693 §4.1): who acts on the subject's behalf.
    pub fn actor(&self) -> Option<&Actor> {
        self.0.actor.as_ref()
    }

    pub fn source(&self) -> TokenSource {
        self.0.source
    }
}

/// The principal the [`crate::AuthLayer`] put on the request. Without that layer in front of
/// the route, the request is answered as unauthenticated: a missing layer must fail closed.
impl<S: Send + Sync> FromRequestParts<S> for Principal {
    type Rejection = Rejection;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Rejection> {
        parts
            .extensions
            .get::<Principal>()
            .cloned()
            .ok_or_else(|| Rejection::new(RejectionKind::MissingToken, None))
    }
}
