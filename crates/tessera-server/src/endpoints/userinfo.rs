//! `/userinfo` (OIDC Core §5.3): claims about the user, by the scopes the access token carries.

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use tessera_core::keys::Expiry;
use tessera_core::store::{GrantStore, UserStore};
use tessera_core::token::ACCESS_TOKEN_TYP;

use crate::oauth_error::no_store;
use crate::state::AppState;

#[derive(Deserialize)]
struct Claims {
    sub: String,
    jti: String,
    #[serde(default)]
    scope: String,
}

/// RFC 6750 §3: the bearer challenge, with an error when a token was presented.
fn challenge(status: StatusCode, error: Option<(&str, &str)>) -> Response {
    let value = match error {
        None => "Bearer realm=\"tessera\"".to_owned(),
        Some((code, description)) => {
            format!(
                "Bearer realm=\"tessera\", error=\"{code}\", error_description=\"{description}\""
            )
        }
    };
    let mut response = status.into_response();
    if let Ok(v) = HeaderValue::from_str(&value) {
        response.headers_mut().insert(header::WWW_AUTHENTICATE, v);
    }
    no_store(&mut response);
    response
}

fn invalid_token(description: &str) -> Response {
    challenge(StatusCode::UNAUTHORIZED, Some(("invalid_token", description)))
}

/// `GET` and `POST /userinfo` with `Authorization: Bearer`.
pub async fn userinfo(State(state): State<AppState>, headers: HeaderMap, _body: Body) -> Response {
    let Some(token) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, t)| t.trim())
    else {
        // RFC 6750 §3.1: no credentials, no error code.
        return challenge(StatusCode::UNAUTHORIZED, None);
    };
    let inner = &state.0;
    let keys = inner.keys.snapshot();
    let now = inner.clock.now();
    let claims: Claims = match keys.verify(
        token,
        ACCESS_TOKEN_TYP,
        inner.settings.issuer.as_str(),
        now,
        Expiry::Enforce,
    ) {
        Ok(c) => c,
        Err(reason) => return invalid_token(reason),
    };
    match state.store().is_access_token_revoked(&claims.jti).await {
        Ok(false) => {}
        Ok(true) => return invalid_token("the token has been revoked"),
        Err(e) => {
            tracing::error!(error = %e, "revocation lookup failed");
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        }
    }
    let scopes: Vec<&str> = claims.scope.split(' ').collect();
    if !scopes.contains(&"openid") {
        return challenge(
            StatusCode::FORBIDDEN,
            Some(("insufficient_scope", "the token lacks the openid scope")),
        );
    }
    let user = match state.store().find_user_by_id(&claims.sub).await {
        Ok(Some(user)) => user,
        Ok(None) => return invalid_token("the user no longer exists"),
        Err(e) => {
            tracing::error!(error = %e, "user lookup failed");
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        }
    };
    let mut body = serde_json::json!({ "sub": user.id });
    // OIDC Core §5.4: claims by scope.
    if scopes.contains(&"profile") {
        body["preferred_username"] = user.username.clone().into();
        if let Some(name) = &user.name {
            body["name"] = name.clone().into();
        }
    }
    if scopes.contains(&"email")
        && let Some(email) = &user.email
    {
        body["email"] = email.clone().into();
        // Tessera does not verify addresses.
        body["email_verified"] = false.into();
    }
    let mut response = axum::Json(body).into_response();
    no_store(&mut response);
    response
}
