//! The authorization endpoint and the pages it leads through (RFC 6749 §4.1.1–4.1.2,
//! OIDC Core §3.1.2, RFC 9207): `GET /authorize`, `POST /login`, `POST /consent`.
//!
//! The request travels through the login and consent forms as its original query string and
//! is validated again, in full, at every step: nothing a form carries is trusted.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tessera_core::Error;
use tessera_core::authorize::{
    AuthorizationRequest, JustDone, RedirectTarget, Step, check_redirect_target, mint_code,
    next_step, parse_request,
};
use tessera_core::client_id::ClientId;
use tessera_core::params::Params;
use tessera_core::secret::{Secret, SecretHash, random_id};
use tessera_core::store::{
    AuthorizationCodeStore, Consent, ConsentStore, Session, SessionStore, UserStore,
};
use tessera_core::user::verify_password;

use crate::audit::{self, AuditEvent};
use crate::endpoints::token::read_form;
use crate::state::AppState;
use crate::web::SourceAddr;
use crate::web::cookies::{self, CSRF_COOKIE, SESSION_COOKIE};
use crate::web::pages::{self, ConsentPage, LoginPage, ScopeLine};
use crate::web::throttle::{LoginLimits, admit_sign_in};

/// A request that failed before its redirect URI was trusted, or after.
enum Failure {
    /// RFC 6749 §4.1.2.1: shown to the user, never redirected.
    Page(String),
    Redirect(RedirectTarget, Error),
    Response(Response),
}

impl From<Response> for Failure {
    fn from(r: Response) -> Self {
        Self::Response(r)
    }
}

impl Failure {
    fn into_response(self, state: &AppState, status_for_redirect: StatusCode) -> Response {
        match self {
            Self::Page(message) => {
                pages::message(StatusCode::BAD_REQUEST, "This request cannot continue", &message)
            }
            Self::Redirect(target, error) => {
                if error.code() == tessera_core::ErrorCode::ServerError {
                    tracing::error!(error = %error, "authorization failed with a server fault");
                }
                let mut pairs: Vec<(&str, String)> =
                    vec![("error", error.code().as_str().to_owned())];
                if let Some(d) = error.description() {
                    pairs.push(("error_description", d));
                }
                redirect_to(state, &target, pairs, status_for_redirect)
            }
            Self::Response(r) => r,
        }
    }
}

/// Builds the redirect back to the client with `pairs`, `state` and `iss` (RFC 9207 §2).
fn redirect_to(
    state: &AppState,
    target: &RedirectTarget,
    mut pairs: Vec<(&str, String)>,
    status: StatusCode,
) -> Response {
    if let Some(s) = &target.state {
        pairs.push(("state", s.clone()));
    }
    pairs.push(("iss", state.settings().issuer.as_str().to_owned()));
    let query: String =
        url::form_urlencoded::Serializer::new(String::new()).extend_pairs(pairs).finish();
    let separator = if target.redirect_uri.contains('?') { '&' } else { '?' };
    let location = format!("{}{separator}{query}", target.redirect_uri);
    let mut response = status.into_response();
    match HeaderValue::from_str(&location) {
        Ok(v) => {
            response.headers_mut().insert(header::LOCATION, v);
        }
        Err(_) => {
            return pages::message(
                StatusCode::BAD_REQUEST,
                "This request cannot continue",
                "The redirect URI cannot be used.",
            );
        }
    }
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// Parses and validates an authorization request from its query string.
async fn load_request(state: &AppState, query: &str) -> Result<AuthorizationRequest, Failure> {
    let params = Params::parse_form(query.as_bytes()).map_err(|e| Failure::Page(e.to_string()))?;
    let client = match params.get("client_id").map(ClientId::parse) {
        Some(Ok(id)) => state.0.clients.get(&id).await.map_err(|e| {
            tracing::error!(error = %e, "loading a client failed");
            Failure::Page("The server could not load the application. Try again later.".into())
        })?,
        _ => None,
    };
    let target = check_redirect_target(&params, client).map_err(Failure::Page)?;
    parse_request(target.clone(), &params).map_err(|e| Failure::Redirect(target, e))
}

/// The session of this browser, if it has a live one.
async fn current_session(state: &AppState, headers: &HeaderMap) -> Result<Option<Session>, Error> {
    let Some(cookie) = cookies::get(headers, SESSION_COOKIE) else { return Ok(None) };
    let hash = SecretHash::of(cookie.as_bytes());
    Ok(state.store().find_session(&hash, state.0.clock.now()).await?)
}

/// `GET /authorize`.
pub async fn authorize(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let query = query.unwrap_or_default();
    let flow = async {
        let request = load_request(&state, &query).await?;
        let session = current_session(&state, &headers)
            .await
            .map_err(|e| Failure::Redirect(request.target.clone(), e))?;
        let (csrf, new_csrf) = cookies::csrf_token(&headers);
        let mut response =
            proceed(&state, &request, &query, session, JustDone::default(), &csrf, None).await?;
        if new_csrf {
            set_csrf_cookie(&state, &mut response, &csrf);
        }
        Ok::<_, Failure>(response)
    };
    flow.await.unwrap_or_else(|f| f.into_response(&state, StatusCode::FOUND))
}

fn set_csrf_cookie(state: &AppState, response: &mut Response, token: &str) {
    let cookie =
        cookies::set(CSRF_COOKIE, token, 3600, "Strict", state.settings().secure_cookies());
    response.headers_mut().append(header::SET_COOKIE, cookie);
}

/// Runs the decision of [`next_step`] and renders its outcome.
async fn proceed(
    state: &AppState,
    request: &AuthorizationRequest,
    query: &str,
    session: Option<Session>,
    just: JustDone,
    csrf: &str,
    login_error: Option<(&str, &str)>,
) -> Result<Response, Failure> {
    let fail = |e: Error| Failure::Redirect(request.target.clone(), e);
    let client = &request.target.client;
    let consent = match &session {
        Some(s) => state
            .store()
            .find_consent(&s.user_id, &client.client_id)
            .await
            .map_err(|e| fail(e.into()))?,
        None => None,
    };
    let now = state.0.clock.now();
    let step = next_step(request, session.as_ref(), consent.as_ref(), just, now).map_err(fail)?;
    let redirect_status =
        if just.login || just.consent { StatusCode::SEE_OTHER } else { StatusCode::FOUND };
    match (step, session) {
        (Step::Login, _) | (_, None) => {
            let (username, error) =
                login_error.unwrap_or((request.login_hint.as_deref().unwrap_or_default(), ""));
            let page = LoginPage {
                client_name: &client.client_name,
                csrf_token: csrf,
                request: query,
                username,
                error: (!error.is_empty()).then_some(error),
            };
            let status = if error.is_empty() { StatusCode::OK } else { StatusCode::UNAUTHORIZED };
            Ok(pages::render(status, &page, Some(&request.target.redirect_uri)))
        }
        (Step::Consent, Some(session)) => {
            let user = state
                .store()
                .find_user_by_id(&session.user_id)
                .await
                .map_err(|e| fail(e.into()))?;
            let Some(user) = user else { return Err(fail(Error::LoginRequired)) };
            let descriptions = &state.settings().scope_descriptions;
            let scopes = request
                .scope
                .iter()
                .map(|s| ScopeLine {
                    name: s.as_str().to_owned(),
                    description: descriptions.get(s.as_str()).cloned(),
                })
                .collect();
            let page = ConsentPage {
                client_name: &client.client_name,
                username: &user.username,
                scopes,
                csrf_token: csrf,
                request: query,
            };
            Ok(pages::render(StatusCode::OK, &page, Some(&request.target.redirect_uri)))
        }
        (Step::Issue, Some(session)) => {
            let minted = mint_code(request, &session, &state.settings().policy, now);
            state
                .store()
                .insert_grant_with_code(&minted.grant, &minted.stored)
                .await
                .map_err(|e| fail(e.into()))?;
            audit::emit(
                state,
                AuditEvent {
                    event: "code_issued".into(),
                    outcome: "issued".into(),
                    client_id: Some(client.client_id.to_string()),
                    sub: Some(session.user_id.clone()),
                    grant_type: Some("authorization_code".into()),
                    ..Default::default()
                },
            );
            Ok(redirect_to(
                state,
                &request.target,
                vec![("code", minted.code.expose().to_owned())],
                redirect_status,
            ))
        }
    }
}

/// `POST /login`: check the password, open a session, continue the request.
pub async fn login(
    State(state): State<AppState>,
    source: SourceAddr,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let flow = async {
        let form = read_form(&headers, body).await?;
        let query = form.get("request").unwrap_or_default().to_owned();
        if !cookies::csrf_matches(&headers, form.get("csrf_token")) {
            return Err(Failure::Page(stale_form_message()));
        }
        let request = load_request(&state, &query).await?;
        let csrf = form.get("csrf_token").unwrap_or_default().to_owned();
        let username = form.get("username").unwrap_or_default().to_owned();
        let password = Secret::from_string(form.get("password").unwrap_or_default().to_owned());
        let source = source.key();
        let limits = LoginLimits::default();
        if let Err(denied) = admit_sign_in(&state.0.rate_limiter, limits, &username, &source).await
        {
            let mut response = pages::message(
                StatusCode::TOO_MANY_REQUESTS,
                "Too many attempts",
                "Too many sign-in attempts. Wait a few minutes and try again.",
            );
            if let Ok(v) = HeaderValue::from_str(&denied.retry_after_secs().to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, v);
            }
            return Ok(response);
        }
        let fail = |e: Error| Failure::Redirect(request.target.clone(), e);
        let user =
            state.store().find_user_by_username(&username).await.map_err(|e| fail(e.into()))?;
        if !check_password(&state, user.as_ref().map(|u| u.password_hash.clone()), password).await {
            audit::emit(
                &state,
                AuditEvent {
                    event: "login_failed".into(),
                    outcome: "refused".into(),
                    reason: Some("wrong username or password".into()),
                    source: Some(source.clone()),
                    ..Default::default()
                },
            );
            // One message for an unknown user and a wrong password: no user enumeration.
            let error = Some((username.as_str(), "The username or password is incorrect."));
            return proceed(&state, &request, &query, None, JustDone::default(), &csrf, error)
                .await;
        }
        let Some(user) = user else { return Err(fail(Error::LoginRequired)) };
        // A new session at every sign-in (no session fixation); the old one ends.
        if let Some(old) = cookies::get(&headers, SESSION_COOKIE) {
            state
                .store()
                .delete_session(&SecretHash::of(old.as_bytes()))
                .await
                .map_err(|e| fail(e.into()))?;
        }
        let now = state.0.clock.now();
        let secret = Secret::generate();
        let session = Session {
            id_hash: secret.hash(),
            sid: random_id::<16>(),
            user_id: user.id.clone(),
            auth_time: now,
            expires_at: now + state.settings().session_ttl,
        };
        state.store().create_session(&session).await.map_err(|e| fail(e.into()))?;
        audit::emit(
            &state,
            AuditEvent {
                event: "login".into(),
                outcome: "success".into(),
                sub: Some(user.id.clone()),
                source: Some(source.clone()),
                ..Default::default()
            },
        );
        let just = JustDone { login: true, consent: false };
        let mut response =
            proceed(&state, &request, &query, Some(session), just, &csrf, None).await?;
        let cookie = cookies::set(
            SESSION_COOKIE,
            secret.expose(),
            state.settings().session_ttl,
            "Lax",
            state.settings().secure_cookies(),
        );
        response.headers_mut().append(header::SET_COOKIE, cookie);
        Ok(response)
    };
    flow.await.unwrap_or_else(|f: Failure| f.into_response(&state, StatusCode::SEE_OTHER))
}

/// Verifies a password off the async executor, bounded by a semaphore (Argon2id costs tens of
/// milliseconds by design). For an unknown user a dummy hash is checked, so that timing does
/// not reveal which usernames exist.
async fn check_password(state: &AppState, stored: Option<String>, password: Secret) -> bool {
    let Ok(_permit) = state.0.password_checks.acquire().await else { return false };
    let dummy = Arc::clone(&state.0.dummy_password_hash);
    let known = stored.is_some();
    let hash = stored.unwrap_or_else(|| dummy.to_string());
    let matched = tokio::task::spawn_blocking(move || verify_password(&password, &hash))
        .await
        .unwrap_or(false);
    known && matched
}

fn stale_form_message() -> String {
    "This form has expired or was not sent from this site. Go back to the application and start again.".into()
}

/// `POST /consent`: remember the decision and finish the request.
pub async fn consent(State(state): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    let flow = async {
        let form = read_form(&headers, body).await?;
        if !cookies::csrf_matches(&headers, form.get("csrf_token")) {
            return Err(Failure::Page(stale_form_message()));
        }
        let query = form.get("request").unwrap_or_default().to_owned();
        let csrf = form.get("csrf_token").unwrap_or_default().to_owned();
        let request = load_request(&state, &query).await?;
        let fail = |e: Error| Failure::Redirect(request.target.clone(), e);
        let session = current_session(&state, &headers).await.map_err(fail)?;
        let Some(session) = session else {
            return proceed(&state, &request, &query, None, JustDone::default(), &csrf, None).await;
        };
        let client_id = &request.target.client.client_id;
        match form.get("decision") {
            Some("approve") => {}
            Some("deny") => {
                audit::emit(
                    &state,
                    AuditEvent {
                        event: "consent".into(),
                        outcome: "denied".into(),
                        client_id: Some(client_id.to_string()),
                        sub: Some(session.user_id.clone()),
                        ..Default::default()
                    },
                );
                return Err(fail(Error::AccessDenied));
            }
            _ => {
                return Err(Failure::Page("The form did not say whether to allow or deny.".into()));
            }
        }
        let now = state.0.clock.now();
        let previous = state
            .store()
            .find_consent(&session.user_id, client_id)
            .await
            .map_err(|e| fail(e.into()))?;
        let scope = match previous {
            Some(p) => tessera_core::scope::ScopeSet::from_scopes(
                p.scope.iter().chain(request.scope.iter()).cloned(),
            ),
            None => request.scope.clone(),
        };
        let consent = Consent {
            user_id: session.user_id.clone(),
            client_id: client_id.clone(),
            scope,
            granted_at: now,
        };
        state.store().save_consent(&consent).await.map_err(|e| fail(e.into()))?;
        audit::emit(
            &state,
            AuditEvent {
                event: "consent".into(),
                outcome: "granted".into(),
                client_id: Some(client_id.to_string()),
                sub: Some(session.user_id.clone()),
                ..Default::default()
            },
        );
        // The consent page was shown only after the login checks passed for this request.
        let just = JustDone { login: true, consent: true };
        proceed(&state, &request, &query, Some(session), just, &csrf, None).await
    };
    flow.await.unwrap_or_else(|f: Failure| f.into_response(&state, StatusCode::SEE_OTHER))
}

/// `GET /assets/tessera.css`.
pub async fn stylesheet() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        pages::STYLESHEET,
    )
}
