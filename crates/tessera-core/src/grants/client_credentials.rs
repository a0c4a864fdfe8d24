//! The client credentials grant (RFC 6749 §4.4).

use crate::client_auth::AuthenticatedClient;
use crate::error::{Error, Result};
use crate::grant_type::GrantType;
use crate::params::Params;
use crate::resource::requested_audience;
use crate::scope::granted_scope;
use crate::store::TokenStore;
use crate::token::{AccessTokenGrant, IssueContext, TokenResponse, issue_access_token, new_jti};

use super::{GrantHandler, HandlerFuture, TokenRequest};

/// Issues an access token to a confidential client acting on its own behalf.
pub struct ClientCredentialsGrant<S> {
    store: S,
}

impl<S> ClientCredentialsGrant<S> {
    pub fn new(store: S) -> Self {
        Self { store }
    }
}

impl<S: TokenStore + 'static> GrantHandler for ClientCredentialsGrant<S> {
    fn grant_type(&self) -> GrantType {
        GrantType::ClientCredentials
    }

    fn handle<'a>(
        &'a self,
        client: &'a AuthenticatedClient,
        request: &'a TokenRequest,
        ctx: IssueContext<'a>,
    ) -> HandlerFuture<'a> {
        Box::pin(issue(&self.store, client, &request.params, ctx))
    }
}

async fn issue<S: TokenStore>(
    store: &S,
    client: &AuthenticatedClient,
    params: &Params,
    ctx: IssueContext<'_>,
) -> Result<TokenResponse> {
    let client = client.client();
    // RFC 6749 §4.4: "The client credentials grant type MUST only be used by confidential
    // clients." Registration already refuses it for public clients; this keeps the rule true
    // even for a record edited by hand.
    if client.is_public() {
        return Err(Error::GrantTypeNotAllowed(GrantType::ClientCredentials.as_str()));
    }
    let scope = granted_scope(params.get("scope"), &client.scope, &client.default_scope)?;
    let audience = requested_audience(params, &client.audience)?;
    let token = issue_access_token(
        store,
        ctx,
        client.access_token_format,
        AccessTokenGrant {
            // RFC 9068 §2.2: with no resource owner, `sub` identifies the client.
            sub: client.client_id.as_str(),
            client_id: &client.client_id,
            scope: &scope,
            audience: &audience,
            jti: new_jti(),
            act: None,
        },
    )
    .await?;
    // RFC 6749 §4.4.3: "A refresh token SHOULD NOT be included."
    Ok(TokenResponse {
        access_token: token.token,
        token_type: token.token_type,
        expires_in: ctx.policy.access_token_ttl,
        scope: (!scope.is_empty()).then(|| scope.to_string()),
        refresh_token: None,
        id_token: None,
        issued_token_type: None,
        actor: None,
        sub: client.client_id.to_string(),
        jti: token.jti,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scope::ScopeSet;

    fn set(s: &str) -> ScopeSet {
        ScopeSet::parse(s).unwrap()
    }

    #[test]
    fn rfc6749_3_3_omitted_scope_gets_the_default_set() {
        let got = granted_scope(None, &set("a:r a:w"), &set("a:r")).unwrap();
        assert_eq!(got, set("a:r"));
    }

    #[test]
    fn rfc6749_3_3_omitted_scope_without_default_is_invalid_scope() {
        let err = granted_scope(None, &set("a:r"), &ScopeSet::default()).unwrap_err();
        assert_eq!(err.code().as_str(), "invalid_scope");
    }

    #[test]
    fn rfc6749_5_2_scope_beyond_the_allowed_set_is_invalid_scope() {
        let err = granted_scope(Some("a:r b:w"), &set("a:r"), &set("a:r")).unwrap_err();
        assert!(matches!(err, Error::ScopeNotAllowed(ref s) if s == "b:w"));
        assert_eq!(err.code().as_str(), "invalid_scope");
    }

    #[test]
    fn rfc6749_3_3_malformed_scope_is_invalid_scope() {
        let err = granted_scope(Some("a:r  a:w"), &set("a:r a:w"), &set("a:r")).unwrap_err();
        assert_eq!(err.code().as_str(), "invalid_scope");
    }
}
