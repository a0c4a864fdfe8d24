//! `/userinfo` (OIDC Core §5.3): claims about the user, by the scopes the access token carries.
//! A protected resource (RFC 6750): every refusal is a core error answered with the Bearer
//! challenge by `oauth_error`.

use axum::body::Body;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use tessera_core::Error;
use tessera_core::introspection::validate_access_token;
use tessera_core::store::UserStore;
use tessera_http::{BearerToken, no_store};

use crate::oauth_error::OAuthError;
use crate::state::AppState;

/// `GET` and `POST /userinfo` with `Authorization: Bearer` (OIDC Core §5.3.1: the header is
/// the method to use; the form-body method of RFC 6750 §2.2 is not offered).
pub async fn userinfo(
    State(state): State<AppState>,
    certificate: Option<crate::tls::PresentedCertificate>,
    headers: HeaderMap,
    _body: Body,
) -> Result<Response, OAuthError> {
    let token = match BearerToken::from_headers(&headers) {
        Ok(Some(token)) => token,
        // RFC 6750 §3.1: no credentials, no error code.
        Ok(None) => return Err(Error::BearerTokenMissing.into()),
        Err(e) => return Err(Error::BearerTokenMalformed(e.description()).into()),
    };
    let inner = &state.0;
    let keys = inner.keys.snapshot();
    let now = inner.clock.now();
    let issuer = inner.settings.issuer.as_str();
    let token = validate_access_token(&inner.store, &keys, issuer, token.as_str(), now)
        .await?
        .ok_or(Error::InvalidToken("the token is invalid, expired or revoked"))?;
    // RFC 9449 §7.2: a DPoP-bound token is not a bearer token; /userinfo takes bearer tokens
    // only, so a bound token (stolen or not) reads nothing here.
    if token.jkt.is_some() {
        return Err(
            Error::InvalidToken("a DPoP-bound token cannot be used as a bearer token").into()
        );
    }
    // RFC 8705 §3: a certificate-bound token is used only with its certificate.
    if let Some(bound) = &token.x5t_s256 {
        let presented = certificate.as_ref().map(|c| tessera_core::mtls::thumbprint(c.der()));
        if presented.as_deref() != Some(bound.as_str()) {
            return Err(Error::InvalidToken(
                "the token is bound to a TLS client certificate that was not presented",
            )
            .into());
        }
    }
    // RFC 9068 §4: a resource server accepts a token only if `aud` names it. A token without
    // an audience restriction is for the issuer itself; one restricted to other resources
    // (RFC 8707) must not read the user's profile (issue 17 finding 7) unless it names the
    // issuer or the configured userinfo audience.
    let userinfo_audience = inner.settings.userinfo_audience.as_deref();
    let for_us = |a: &String| a == issuer || Some(a.as_str()) == userinfo_audience;
    if !token.audience.is_empty() && !token.audience.iter().any(for_us) {
        return Err(Error::InvalidToken("the token is meant for another audience").into());
    }
    // OIDC Core §5.3: the UserInfo endpoint serves tokens granted with `openid`.
    if !token.has_scope("openid") {
        return Err(Error::InsufficientScope { required: "openid" }.into());
    }
    let user = state
        .store()
        .find_user_by_id(&token.sub)
        .await?
        .ok_or(Error::InvalidToken("the user no longer exists"))?;
    let mut body = serde_json::json!({ "sub": user.id });
    // OIDC Core §5.4: claims by scope.
    if token.has_scope("profile") {
        body["preferred_username"] = user.username.clone().into();
        if let Some(name) = &user.name {
            body["name"] = name.clone().into();
        }
    }
    if token.has_scope("email")
        && let Some(email) = &user.email
    {
        body["email"] = email.clone().into();
        // Tessera does not verify addresses.
        body["email_verified"] = false.into();
    }
    let mut response = axum::Json(body).into_response();
    no_store(&mut response);
    Ok(response)
}
