//! `/register`: Dynamic Client Registration (RFC 7591) and its management protocol (RFC 7592)
//! at `/register/{client_id}`. Served only when `registration_policy` is not `off`.
//!
//! The metadata is checked by `ClientMetadata::into_registration` and
//! `ClientRegistration::into_client`, the same functions `tessera client create` uses; on top
//! of them a dynamic client is never first-party, may register only the configured
//! `registration_scopes`, and may not use the client credentials grant (it acts for users,
//! whose consent it must ask for every time).

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tessera_core::Error;
use tessera_core::client::{Client, ClientRegistration, DynamicRegistration};
use tessera_core::client_id::ClientId;
use tessera_core::client_metadata::ClientMetadata;
use tessera_core::grant_type::GrantType;
use tessera_core::secret::{Secret, SecretHash};
use tessera_core::store::{ClientStore, InitialAccessTokenStore};
use tessera_http::{BearerToken, no_store};

use crate::audit::{self, AuditEvent};
use crate::config::RegistrationPolicy;
use crate::oauth_error::OAuthError;
use crate::state::AppState;
use crate::web::SourceAddr;

/// The largest registration document accepted.
const MAX_BODY: usize = 16 * 1024;

/// `POST /register` (RFC 7591 §3.1).
pub async fn register(
    State(state): State<AppState>,
    source: SourceAddr,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, OAuthError> {
    let inner = &state.0;
    let settings = &inner.settings.registration;
    // Registration spam (issue 15): every attempt from a source counts, accepted or not.
    let key = format!("registration:{source}");
    inner.rate_limiter.check(&key, settings.per_source).await.map_err(Error::from)?;
    // RFC 7591 §3: under this policy the request carries an initial access token (RFC 6750).
    let initial_token = match settings.policy {
        RegistrationPolicy::InitialAccessToken => Some(bearer(&headers)?),
        RegistrationPolicy::Open | RegistrationPolicy::Off => None,
    };
    let metadata = read_metadata(&headers, body).await?;
    let now = inner.clock.now();
    let registration = dynamic_registration(&state, metadata).await?;
    let (mut client, secret) =
        registration.into_client(now).map_err(Error::InvalidClientMetadata)?;
    if let Some(token) = initial_token
        && !inner
            .store
            .spend_initial_access_token(&SecretHash::of(token.as_str().as_bytes()), now)
            .await?
    {
        return Err(
            Error::InvalidToken("the initial access token is unknown, expired or spent").into()
        );
    }
    // RFC 7592 §3: the registration access token, shown once; only its hash is kept.
    let access_token = Secret::generate();
    client.dynamic =
        Some(DynamicRegistration { access_token_hash: access_token.hash(), last_used_at: None });
    inner.store.create_client(&client).await?;
    audit_change(&state, "client_registered", &client, &source);
    let mut body = describe(&state, &client);
    body["client_id_issued_at"] = client.created_at.into();
    body["registration_access_token"] = access_token.expose().into();
    if let Some(secret) = &secret {
        body["client_secret"] = secret.expose().into();
        body["client_secret_expires_at"] = 0.into();
    }
    Ok(answer(StatusCode::CREATED, body))
}

/// `GET /register/{client_id}` (RFC 7592 §2.1).
pub async fn read(
    State(state): State<AppState>,
    Path(client_id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, OAuthError> {
    let client = managed_client(&state, &headers, &client_id).await?;
    Ok(answer(StatusCode::OK, describe(&state, &client)))
}

/// `PUT /register/{client_id}` (RFC 7592 §2.2): the new metadata replaces the old in full.
pub async fn update(
    State(state): State<AppState>,
    source: SourceAddr,
    Path(client_id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, OAuthError> {
    let inner = &state.0;
    let current = managed_client(&state, &headers, &client_id).await?;
    let raw = read_json(&headers, body).await?;
    // RFC 7592 §2.2: the request names the client it updates, and a secret it sends must be
    // the current one.
    if raw.get("client_id").and_then(Value::as_str) != Some(current.client_id.as_str()) {
        return Err(Error::InvalidClientMetadata(
            "client_id must be present and equal the client's own (RFC 7592 §2.2)".into(),
        )
        .into());
    }
    if let Some(presented) = raw.get("client_secret") {
        let matches = presented
            .as_str()
            .is_some_and(|s| current.secret_hash.as_ref().is_some_and(|h| h.verify(s)));
        if !matches {
            return Err(Error::InvalidClientMetadata(
                "client_secret does not match the client's (RFC 7592 §2.2)".into(),
            )
            .into());
        }
    }
    let metadata: ClientMetadata = serde_json::from_value(raw).map_err(not_metadata)?;
    let mut registration = dynamic_registration(&state, metadata).await?;
    registration.client_id = Some(current.client_id.clone());
    let (mut client, new_secret) =
        registration.into_client(current.created_at).map_err(Error::InvalidClientMetadata)?;
    // A client that keeps authenticating with a secret keeps its secret; one that starts to
    // gets a new one, shown in this answer only.
    let new_secret = match (&current.secret_hash, new_secret) {
        (Some(kept), Some(_)) => {
            client.secret_hash = Some(*kept);
            None
        }
        (_, fresh) => fresh,
    };
    client.dynamic = current.dynamic.clone();
    if !inner.store.update_dynamic_client(&client).await? {
        return Err(Error::InvalidToken("the registration access token is not valid").into());
    }
    inner.clients.forget(&client.client_id);
    audit_change(&state, "client_updated", &client, &source);
    let mut body = describe(&state, &client);
    if let Some(secret) = &new_secret {
        body["client_secret"] = secret.expose().into();
        body["client_secret_expires_at"] = 0.into();
    }
    Ok(answer(StatusCode::OK, body))
}

/// `DELETE /register/{client_id}` (RFC 7592 §2.3): the client is gone; `/token` answers
/// `invalid_client` for it from now on, so that it registers again.
pub async fn delete(
    State(state): State<AppState>,
    source: SourceAddr,
    Path(client_id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, OAuthError> {
    let inner = &state.0;
    let client = managed_client(&state, &headers, &client_id).await?;
    inner.store.delete_client(&client.client_id).await?;
    inner.clients.forget(&client.client_id);
    audit_change(&state, "client_deleted", &client, &source);
    let mut response = StatusCode::NO_CONTENT.into_response();
    no_store(&mut response);
    Ok(response)
}

/// The client a management request may act on: a dynamic client whose registration access
/// token is the presented one. RFC 7592 §2: anything else — no token, a wrong one, an
/// operator's client, a client that does not exist — is the same `invalid_token`, so that the
/// answer reveals nothing.
async fn managed_client(
    state: &AppState,
    headers: &HeaderMap,
    client_id: &str,
) -> Result<Client, Error> {
    let token = bearer(headers)?;
    let refused = Error::InvalidToken("the registration access token is not valid");
    let Ok(id) = ClientId::parse(client_id) else { return Err(refused) };
    let Some(client) = state.0.store.find_client(&id).await? else { return Err(refused) };
    match &client.dynamic {
        // Compared as SHA-256 digests in constant time.
        Some(dynamic) if dynamic.access_token_hash.verify(token.as_str()) => Ok(client),
        _ => Err(refused),
    }
}

/// Records a change a client made to its own registration (never a token or secret).
fn audit_change(state: &AppState, event: &str, client: &Client, source: &SourceAddr) {
    audit::emit(
        state,
        AuditEvent {
            event: event.into(),
            outcome: "done".into(),
            client_id: Some(client.client_id.to_string()),
            source: Some(source.key()),
            ..Default::default()
        },
    );
}

/// The bearer token of the request: an initial or a registration access token.
fn bearer(headers: &HeaderMap) -> Result<BearerToken, Error> {
    match BearerToken::from_headers(headers) {
        Ok(Some(token)) => Ok(token),
        Ok(None) => Err(Error::BearerTokenMissing),
        Err(e) => Err(Error::BearerTokenMalformed(e.description())),
    }
}

/// Applies the rules of self-registered clients on top of the shared metadata checks.
async fn dynamic_registration(
    state: &AppState,
    metadata: ClientMetadata,
) -> Result<ClientRegistration, Error> {
    // `registration_scopes` and the scopes of the resources open to dynamic clients (issue
    // 15); which of them a request may use depends on the resources it names.
    let issuer_scopes = &state.0.settings.registration.scopes;
    let allowed = &state.0.resources.open_scopes(issuer_scopes).await?;
    let mut registration = metadata.into_registration()?;
    if registration.grant_types.contains(&GrantType::ClientCredentials) {
        return Err(Error::InvalidClientMetadata(
            "a dynamically registered client acts for users: the client_credentials grant is \
             for clients the operator registers"
                .into(),
        ));
    }
    if registration.redirect_uris.is_empty() {
        return Err(Error::InvalidRedirectUri(
            "redirect_uris is required: a dynamic client uses the authorization code flow".into(),
        ));
    }
    if let Some(scope) = registration.scope.first_outside(allowed) {
        return Err(Error::InvalidClientMetadata(format!(
            "the scope `{}` is not open to dynamically registered clients",
            scope.as_str()
        )));
    }
    // RFC 7591 §2: the server may assign the scope a client did not ask for.
    if registration.scope.is_empty() {
        registration.scope = allowed.clone();
        registration.default_scope = issuer_scopes.clone();
    }
    registration.first_party = false;
    // RFC 8705 §2: a method is registered only where it can succeed (as advertised).
    let mtls = &state.0.settings.mtls;
    let usable = match registration.auth_method {
        Some(tessera_core::client::AuthMethod::TlsClientAuth) => mtls.tls_client_auth(),
        Some(tessera_core::client::AuthMethod::SelfSignedTlsClientAuth) => mtls.certificates(),
        _ => true,
    };
    if !usable {
        return Err(Error::InvalidClientMetadata(
            "this server does not offer that token_endpoint_auth_method (see its metadata)".into(),
        ));
    }
    if registration.tls_client_certificate_bound_access_tokens && !mtls.certificates() {
        return Err(Error::InvalidClientMetadata(
            "this server receives no client certificates: tls_client_certificate_bound_access_tokens \
             cannot be honoured"
                .into(),
        ));
    }
    Ok(registration)
}

/// The body as client metadata; unknown members are ignored (RFC 7591 §2).
async fn read_metadata(headers: &HeaderMap, body: Body) -> Result<ClientMetadata, Error> {
    serde_json::from_value(read_json(headers, body).await?).map_err(not_metadata)
}

/// RFC 7591 §3.1: the request is a JSON object sent as `application/json`.
async fn read_json(headers: &HeaderMap, body: Body) -> Result<Value, Error> {
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"));
    if !is_json {
        return Err(Error::MalformedRequest(
            "the registration must be sent as application/json (RFC 7591 §3.1)".into(),
        ));
    }
    let bytes = axum::body::to_bytes(body, MAX_BODY).await.map_err(|_| {
        Error::MalformedRequest(format!("the request body exceeds {MAX_BODY} bytes").into())
    })?;
    let value: Value = serde_json::from_slice(&bytes).map_err(not_metadata)?;
    if !value.is_object() {
        return Err(Error::InvalidClientMetadata("the body must be a JSON object".into()));
    }
    Ok(value)
}

fn not_metadata(e: serde_json::Error) -> Error {
    Error::InvalidClientMetadata(format!("the body is not valid client metadata: {e}"))
}

/// The client's registered metadata (RFC 7591 §3.2.1, RFC 7592 §3), with where to manage it.
fn describe(state: &AppState, client: &Client) -> Value {
    let uris = |v: &[tessera_core::redirect_uri::RedirectUri]| {
        v.iter().map(|u| u.as_str().to_owned()).collect::<Vec<_>>()
    };
    let mut body = json!({
        "client_id": client.client_id.as_str(),
        "client_name": client.client_name,
        "redirect_uris": uris(&client.redirect_uris),
        "grant_types": client.grant_types.iter().map(|g| g.as_str()).collect::<Vec<_>>(),
        "token_endpoint_auth_method": client.token_endpoint_auth_method.as_str(),
        "scope": client.scope.to_string(),
        // OIDC Registration §3.2: registered values, defaults included.
        "id_token_signed_response_alg": client.id_token_signed_response_alg.as_str(),
        "registration_client_uri": state
            .0
            .settings
            .issuer
            .endpoint(&format!("/register/{}", client.client_id)),
    });
    if client.allows_grant(GrantType::AuthorizationCode) {
        body["response_types"] = json!(["code"]);
    }
    if !client.post_logout_redirect_uris.is_empty() {
        body["post_logout_redirect_uris"] = uris(&client.post_logout_redirect_uris).into();
    }
    if let Some(kind) = client.application_type {
        body["application_type"] = kind.as_str().into();
    }
    if let Some(name) = &client.tls_client_auth_name {
        body[name.member()] = name.value().into();
    }
    if client.tls_client_certificate_bound_access_tokens {
        body["tls_client_certificate_bound_access_tokens"] = true.into();
    }
    let links = &client.links;
    for (member, value) in [
        ("client_uri", &links.client_uri),
        ("logo_uri", &links.logo_uri),
        ("tos_uri", &links.tos_uri),
        ("policy_uri", &links.policy_uri),
        ("jwks_uri", &client.jwks_uri),
    ] {
        if let Some(value) = value {
            body[member] = value.as_str().into();
        }
    }
    if let Some(jwks) = client.jwks.as_deref().and_then(|j| serde_json::from_str::<Value>(j).ok()) {
        body["jwks"] = jwks;
    }
    body
}

fn answer(status: StatusCode, body: Value) -> Response {
    let mut response = (status, axum::Json(body)).into_response();
    // RFC 7591 §3.2.1: the answer carries credentials.
    no_store(&mut response);
    response
}
