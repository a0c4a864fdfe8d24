//! `/userinfo` (OIDC Core §5.3): claims about the user, by the scopes the access token carries.

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tessera_core::introspection::validate_access_token;
use tessera_core::store::UserStore;

use crate::oauth_error::no_store;
use crate::state::AppState;

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
    let issuer = inner.settings.issuer.as_str();
    let token = match validate_access_token(&inner.store, &keys, issuer, token, now).await {
        Ok(Some(t)) => t,
        Ok(None) => return invalid_token("the token is invalid, expired or revoked"),
        Err(e) => {
            tracing::error!(error = %e, "access token validation failed");
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        }
    };
    if !token.has_scope("openid") {
        return challenge(
            StatusCode::FORBIDDEN,
            Some(("insufficient_scope", "the token lacks the openid scope")),
        );
    }
    let user = match state.store().find_user_by_id(&token.sub).await {
        Ok(Some(user)) => user,
        Ok(None) => return invalid_token("the user no longer exists"),
        Err(e) => {
            tracing::error!(error = %e, "user lookup failed");
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        }
    };
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
    response
}
