//! The authorization endpoint and the pages it leads through (RFC 6749 §4.1.1–4.1.2,
//! OIDC Core §3.1.2, RFC 9207): `GET /authorize`, `POST /login`, `POST /consent`.
//!
//! The request travels through the login and consent forms as its original query string and
//! is validated again, in full, at every step: nothing a form carries is trusted. A pushed
//! request (RFC 9126) is taken from the store once, at `GET /authorize`, and travels on as the
//! query string it was pushed as.

use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tessera_core::Error;
use tessera_core::authorize::{
    AuthorizationRequest, JustDone, RedirectTarget, Step, check_redirect_target, mint_code,
    next_step, parse_request,
};
use tessera_core::client_id::ClientId;
use tessera_core::params::Params;
use tessera_core::secret::{Secret, SecretHash};
use tessera_core::store::{
    AuthorizationCodeStore, Consent, ConsentStore, PushedRequestStore, Session, SessionStore,
    UserStore,
};

use crate::audit::{self, AuditEvent};
use crate::features::Feature;
use crate::oauth_form::read_form;
use crate::state::AppState;
use crate::web::SourceAddr;
use crate::web::csrf;
use crate::web::forms::{Decision, PageForm};
use crate::web::pages::{self, ConsentPage, LoginPage};
use crate::web::redirect;
use crate::web::sign_in::{REFUSED_MESSAGE, SignIn, current_session, sign_in};

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
            Self::Page(message) => pages::refused(&message),
            Self::Redirect(target, error) => {
                if error.code() == tessera_core::ErrorCode::ServerError {
                    tracing::error!(error = %error, "authorization failed with a server fault");
                }
                let mut pairs: Vec<(&str, String)> =
                    vec![("error", error.code().as_str().to_owned())];
                if let Some(d) = redirect::error_description(&error) {
                    pairs.push(("error_description", d.into_owned()));
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
    if let Some(s) = target.state() {
        pairs.push(("state", s.to_owned()));
    }
    pairs.push(("iss", state.settings().issuer.as_str().to_owned()));
    let location =
        redirect::append_query(target.redirect_uri(), pairs.iter().map(|(k, v)| (*k, v.as_str())));
    redirect::to(status, &location)
        .unwrap_or_else(|| pages::refused("The redirect URI cannot be used."))
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
    // What this request may ask of the client (admin scopes, registered resources); a refusal
    // is told to the client once its redirect URI is known good.
    let (client, refused) = match client {
        Some(c) => match crate::client_admission::admit(state, c.clone(), &params).await {
            Ok(admitted) => (Some(admitted), None),
            Err(e) => (Some(c), Some(e)),
        },
        None => (None, None),
    };
    let target = check_redirect_target(&params, client).map_err(Failure::Page)?;
    if let Some(e) = refused {
        return Err(Failure::Redirect(target, e));
    }
    parse_request(target.clone(), &params).map_err(|e| Failure::Redirect(target, e))
}

/// RFC 9126 §4: a request naming a `request_uri` (with its `client_id`) is the request that
/// client pushed, taken from the store — once, and only before it expires; its other
/// parameters are ignored. Returns the query to work on and whether it was pushed.
async fn resolve_pushed(state: &AppState, query: String) -> Result<(String, bool), Failure> {
    if !state.settings().features.is_on(Feature::PushedAuthorization) {
        return Ok((query, false));
    }
    let params = Params::parse_form(query.as_bytes()).map_err(|e| Failure::Page(e.to_string()))?;
    let Some(request_uri) = params.get("request_uri") else { return Ok((query, false)) };
    let client_id = params
        .get("client_id")
        .map(ClientId::parse)
        .and_then(Result::ok)
        .ok_or_else(|| Failure::Page("The request has no valid client_id.".into()))?;
    let hash = SecretHash::of(request_uri.as_bytes());
    let now = state.0.clock.now();
    let pushed = state.store().take_pushed_request(&hash, &client_id, now).await.map_err(|e| {
        tracing::error!(error = %e, "taking a pushed authorization request failed");
        Failure::Page("The server could not load the request. Try again later.".into())
    })?;
    match pushed {
        Some(pushed) => Ok((pushed, true)),
        // Not redirected: nothing about this request is known to be the client's.
        None => Err(Failure::Page(
            "This sign-in link has expired or was already used. Start again from the \
             application."
                .into(),
        )),
    }
}

/// `GET /authorize`.
pub async fn authorize(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let flow = async {
        let (query, pushed) = resolve_pushed(&state, query.unwrap_or_default()).await?;
        let request = load_request(&state, &query).await?;
        // RFC 9126 §6: a client registered to push its requests gets no code for one that
        // came through the browser.
        if !pushed && request.target.client().require_pushed_authorization_requests {
            return Err(Failure::Redirect(
                request.target.clone(),
                Error::MissingParameter("request_uri"),
            ));
        }
        let session = current_session(&state, &headers)
            .await
            .map_err(|e| Failure::Redirect(request.target.clone(), e))?;
        let (csrf, csrf_cookie) = csrf::form_token(state.settings(), &headers);
        let mut response =
            proceed(&state, &request, &query, session, JustDone::default(), csrf.as_str(), None)
                .await?;
        if let Some(cookie) = csrf_cookie {
            response.headers_mut().append(header::SET_COOKIE, cookie);
        }
        Ok::<_, Failure>(response)
    };
    flow.await.unwrap_or_else(|f| f.into_response(&state, StatusCode::FOUND))
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
    let client = request.target.client();
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
                action: "/login",
                carry_name: "request",
                carry_value: query,
                username,
                error: (!error.is_empty()).then_some(error),
            };
            let status = if error.is_empty() { StatusCode::OK } else { StatusCode::UNAUTHORIZED };
            Ok(pages::render(status, &page, Some(request.target.redirect_uri())))
        }
        (Step::Consent, Some(session)) => {
            if just.login {
                // The consent that follows may count this sign-in for this request, and only
                // for it (OIDC Core §3.1.2.1): the consent form itself proves no sign-in.
                state
                    .store()
                    .record_sign_in_for(&session.id_hash, &SecretHash::of(query.as_bytes()))
                    .await
                    .map_err(|e| fail(e.into()))?;
            }
            let user = state
                .store()
                .find_user_by_id(&session.user_id)
                .await
                .map_err(|e| fail(e.into()))?;
            let Some(user) = user else { return Err(fail(Error::LoginRequired)) };
            let scopes = pages::scope_lines(&state.settings().scope_descriptions, &request.scope);
            let page = ConsentPage {
                client_name: &client.client_name,
                username: &user.username,
                scopes,
                csrf_token: csrf,
                action: "/consent",
                carry_name: "request",
                carry_value: query,
                user_code: None,
                redirect: pages::RedirectHost::of(request.target.redirect_uri()),
                unverified: !client.is_operator_registered(),
            };
            Ok(pages::render(StatusCode::OK, &page, Some(request.target.redirect_uri())))
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
        let form = PageForm::check(state.settings(), &headers, read_form(&headers, body).await?)
            .map_err(IntoResponse::into_response)?;
        let query = form.field("request").to_owned();
        let request = load_request(&state, &query).await?;
        let csrf = form.field("csrf_token").to_owned();
        let username = form.field("username").to_owned();
        let password = Secret::from_string(form.field("password").to_owned());
        let fail = |e: Error| Failure::Redirect(request.target.clone(), e);
        let (session, cookie) = match sign_in(&state, &headers, &username, password, &source.key())
            .await
            .map_err(fail)?
        {
            SignIn::Signed(session, cookie) => (session, cookie),
            SignIn::Throttled(response) => return Ok(response),
            SignIn::Refused => {
                let error = Some((username.as_str(), REFUSED_MESSAGE));
                return proceed(&state, &request, &query, None, JustDone::default(), &csrf, error)
                    .await;
            }
        };
        let just = JustDone { login: true, consent: false };
        // The new session's forms carry a token bound to it (`web::csrf`).
        let csrf = csrf::session_token(&session);
        let mut response =
            proceed(&state, &request, &query, Some(session), just, csrf.as_str(), None).await?;
        response.headers_mut().append(header::SET_COOKIE, cookie);
        Ok(response)
    };
    flow.await.unwrap_or_else(|f: Failure| f.into_response(&state, StatusCode::SEE_OTHER))
}

/// `POST /consent`: remember the decision and finish the request.
pub async fn consent(State(state): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    let flow = async {
        let form = PageForm::check(state.settings(), &headers, read_form(&headers, body).await?)
            .map_err(IntoResponse::into_response)?;
        let query = form.field("request").to_owned();
        let csrf = form.field("csrf_token").to_owned();
        let request = load_request(&state, &query).await?;
        let fail = |e: Error| Failure::Redirect(request.target.clone(), e);
        let session = current_session(&state, &headers).await.map_err(fail)?;
        let Some(session) = session else {
            return proceed(&state, &request, &query, None, JustDone::default(), &csrf, None).await;
        };
        let client_id = &request.target.client().client_id;
        match form.decision().map_err(IntoResponse::into_response)? {
            Decision::Approve => {}
            Decision::Deny => {
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
        // OIDC Core §3.1.2.1: consent is not authentication. A posted consent form counts a
        // sign-in only if the session's sign-in was made for this very request (recorded by
        // `POST /login` when it showed the consent page, and spent here); otherwise
        // `prompt=login` and `max_age` are judged on the session's real `auth_time`, so an
        // old session gets the login page, never a code.
        let signed_in_for_this = state
            .store()
            .take_sign_in_for(&session.id_hash, &SecretHash::of(query.as_bytes()))
            .await
            .map_err(|e| fail(e.into()))?;
        let just = JustDone { login: signed_in_for_this, consent: true };
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
