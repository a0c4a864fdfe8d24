//! The token endpoint (RFC 6749 §3.2): parse the form, find the grant, authenticate the
//! client, let the grant's handler decide and mint.

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, header};
use axum::response::{IntoResponse, Response};
use tessera_core::Error;
use tessera_core::client_auth::presented_credentials;
use tessera_core::grants::dpop::{self, check_proof};
use tessera_core::grants::{ClientCertificate, TokenRequest, ensure_grant_allowed};
use tessera_core::params::Params;
use tessera_core::token::IssueContext;
use tessera_http::no_store;

use crate::audit::{self, AuditEvent};
use crate::client_authentication::authenticate_client;
use crate::oauth_error::OAuthError;
use crate::oauth_form::OAuthForm;
use crate::state::AppState;
use crate::tls::PresentedCertificate;
use crate::web::SourceAddr;

pub async fn token(
    State(state): State<AppState>,
    source: SourceAddr,
    certificate: Option<PresentedCertificate>,
    method: Method,
    headers: HeaderMap,
    OAuthForm(params): OAuthForm,
) -> Response {
    let (dpop_proof, refused) = match dpop_proof(&headers) {
        Ok(proof) => (proof, None),
        Err(e) => (None, Some(e)),
    };
    let request = TokenRequest {
        params,
        method: method.as_str().to_owned(),
        url: state.0.settings.issuer.endpoint("/token"),
        dpop_proof,
        client_certificate: certificate
            .as_ref()
            .map(|c| ClientCertificate::from_der(c.der().to_vec())),
    };
    let outcome = match refused {
        Some(e) => Err(e),
        None => issue(&state, &headers, &request, &source, certificate.as_ref()).await,
    };
    let mut response = respond(&state, &headers, &request, outcome);
    // RFC 9449 §8: the nonce to put in the next proof, on every answer (required with
    // `use_dpop_nonce`).
    if state.0.settings.dpop_nonce
        && let Ok(nonce) = HeaderValue::from_str(&state.0.dpop_nonces.current(state.0.clock.now()))
    {
        response.headers_mut().insert("dpop-nonce", nonce);
    }
    response
}

fn respond(
    state: &AppState,
    headers: &HeaderMap,
    request: &TokenRequest,
    outcome: Result<Response, Error>,
) -> Response {
    match outcome {
        Ok(response) => response,
        Err(error) => {
            let params = &request.params;
            let grant_type = grant_label(params);
            let reason = error.code().as_str();
            metrics::counter!("tessera_token_requests_total", "grant_type" => grant_type, "outcome" => reason).increment(1);
            audit::emit_with(state, || AuditEvent {
                event: "token_refused".into(),
                outcome: "refused".into(),
                client_id: presented_client_id(headers, params),
                grant_type: Some(grant_type.into()),
                reason: Some(reason.into()),
                ..Default::default()
            });
            OAuthError(error).into_response()
        }
    }
}

/// RFC 9449 §4.1: the `DPoP` header, carried to the grant handlers. §4.3 check 1: a request
/// with more than one is refused.
fn dpop_proof(headers: &HeaderMap) -> Result<Option<String>, Error> {
    let mut values = headers.get_all("dpop").iter();
    let Some(value) = values.next() else { return Ok(None) };
    if values.next().is_some() {
        return Err(Error::MalformedRequest("more than one DPoP header (RFC 9449 §4.3)".into()));
    }
    let proof = value.to_str().map_err(|_| {
        Error::MalformedRequest("the DPoP header is not a JWT (RFC 9449 §4.2)".into())
    })?;
    Ok(Some(proof.to_owned()))
}

async fn issue(
    state: &AppState,
    headers: &HeaderMap,
    request: &TokenRequest,
    source: &SourceAddr,
    certificate: Option<&PresentedCertificate>,
) -> Result<Response, Error> {
    let inner = &state.0;
    let params = &request.params;
    let grant_type = params.require("grant_type")?;
    let handler = inner.grants.find(grant_type)?;
    let client = authenticate_client(state, headers, params, source, certificate).await?;
    let bound_to = certificate_binding(&client, request)?;
    ensure_grant_allowed(&client, handler.grant_type())?;
    let now = inner.clock.now();
    let dpop = check_proof(request, &client, now)?;
    if let Some(key) = &dpop {
        // RFC 9449 §8: with server nonces on, a proof must carry a current one.
        if inner.settings.dpop_nonce && !inner.dpop_nonces.accepts(key.nonce(), now) {
            return Err(Error::DpopNonceRequired);
        }
        // RFC 9449 §11.1: a proof is used once (checked after client authentication, so only
        // authenticated clients fill the cache).
        let until = now + dpop::PROOF_MAX_AGE + dpop::PROOF_LEEWAY;
        match inner.dpop_replay.first_use(key.jkt(), key.jti(), until, now).await {
            Ok(true) => {}
            Ok(false) => {
                return Err(Error::DpopProofInvalid("the DPoP proof was already used".into()));
            }
            Err(_) => {
                // Fail closed: an unchecked proof could be a replay.
                return Err(tessera_core::InternalError::new(
                    "dpop replay cache",
                    "Redis unreachable",
                )
                .into());
            }
        }
    }
    let keys = inner.keys.snapshot();
    let ctx = IssueContext {
        issuer: &inner.settings.issuer,
        keys: &keys,
        policy: &inner.settings.policy,
        now,
        dpop: dpop.as_ref(),
        certificate: bound_to.as_deref(),
        // R7.4: a grant revoked by a replay or reuse is published like one revoked at /revoke.
        revocations: inner
            .revocation_list
            .as_ref()
            .map(|list| list as &dyn tessera_core::token::RevocationNotifier),
    };
    let token = handler.handle(&client, request, ctx).await?;
    record_dynamic_client_use(state, client.client(), ctx.now).await;
    let grant = handler.grant_type().as_str();
    metrics::counter!("tessera_token_requests_total", "grant_type" => grant, "outcome" => "issued")
        .increment(1);
    audit::emit_with(state, || AuditEvent {
        event: "token_issued".into(),
        outcome: "issued".into(),
        client_id: Some(client.client().client_id.to_string()),
        sub: Some(token.sub.clone()),
        grant_type: Some(grant.into()),
        jti: Some(token.jti.clone()),
        actor: token.actor.clone(),
        ..Default::default()
    });
    let mut response = axum::Json(token).into_response();
    no_store(&mut response);
    Ok(response)
}

/// RFC 8705 §3.1: the `x5t#S256` the client's access tokens are bound to, for a client
/// registered with `tls_client_certificate_bound_access_tokens`; such a client without a
/// certificate gets no token rather than an unbound one.
fn certificate_binding(
    client: &tessera_core::client_auth::AuthenticatedClient,
    request: &TokenRequest,
) -> Result<Option<String>, Error> {
    if !client.client().tls_client_certificate_bound_access_tokens {
        return Ok(None);
    }
    match &request.client_certificate {
        Some(certificate) => Ok(Some(tessera_core::mtls::thumbprint(certificate.der()))),
        None => Err(Error::MalformedRequest(
            "this client's access tokens are bound to its TLS client certificate, and the \
             request presented none (RFC 8705 §3)"
                .into(),
        )),
    }
}

/// How often a dynamic client's last use is written: often enough for pruning counted in
/// days, rare enough to cost no write per token.
const USE_RECORD_INTERVAL: i64 = 3600;

/// Marks a dynamic client as in use, so that pruning (`dynamic_client_unused_days`) spares it.
/// A failure is logged: the tokens are already issued.
async fn record_dynamic_client_use(
    state: &AppState,
    client: &tessera_core::client::Client,
    now: i64,
) {
    use tessera_core::store::ClientStore;
    let Some(dynamic) = &client.dynamic else { return };
    if dynamic.last_used_at.is_some_and(|t| now - t < USE_RECORD_INTERVAL) {
        return;
    }
    if let Err(e) = state.0.store.record_client_use(&client.client_id, now).await {
        tracing::warn!(client_id = %client.client_id, error = %e, "could not record client use");
    }
}

/// The client_id a refused request claimed, for the audit log (it may not exist).
fn presented_client_id(headers: &HeaderMap, params: &Params) -> Option<String> {
    presented_credentials(headers.get(header::AUTHORIZATION).map(|v| v.as_bytes()), params)
        .ok()
        .map(|p| p.client_id().to_string())
}

/// The metric label for a refused request: only known grant names, so that a caller cannot
/// grow the label set.
fn grant_label(params: &Params) -> &'static str {
    params
        .get("grant_type")
        .and_then(tessera_core::grant_type::GrantType::parse)
        .map_or("other", |g| g.as_str())
}
