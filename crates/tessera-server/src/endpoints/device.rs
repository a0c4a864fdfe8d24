//! The device authorization grant's endpoints (RFC 8628): `POST /device_authorization` for the
//! device, and the verification pages for the user — `GET`/`POST /device` (enter the code),
//! `POST /device/login`, `POST /device/decide`.

use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tessera_core::Error;
use tessera_core::client::Client;
use tessera_core::device::{self, normalize_user_code, user_code_hash};
use tessera_core::secret::Secret;
use tessera_core::store::{
    DeviceApproval, DeviceAuthorization, DeviceStore, Session, StoreError, UserStore,
};
use tessera_http::no_store;

use crate::audit::{self, AuditEvent};
use crate::client_authentication::authenticate_client;
use crate::oauth_error::OAuthError;
use crate::oauth_form::{OAuthForm, read_form};
use crate::rate_limit::Limit;
use crate::state::AppState;
use crate::web::SourceAddr;
use crate::web::csrf;
use crate::web::forms::{Decision, PageForm};
use crate::web::pages::{self, ConsentPage, DevicePage, LoginPage};
use crate::web::sign_in::{REFUSED_MESSAGE, SignIn, current_session, sign_in};

/// The longest user code input looked at: a code with its dash, and some slack for spaces
/// (RFC 8628 §6.1: entry is case- and punctuation-insensitive).
const MAX_USER_CODE_INPUT: usize = 16;

/// RFC 8628 §5.1: code guesses allowed per source, and from all sources, in [`GUESS_WINDOW`].
const GUESSES_PER_SOURCE: u32 = 10;
const GUESSES_IN_TOTAL: u32 = 600;
const GUESS_WINDOW: std::time::Duration = std::time::Duration::from_secs(60);

/// `POST /device_authorization` (RFC 8628 §3.1–3.2).
pub async fn device_authorization(
    State(state): State<AppState>,
    source: SourceAddr,
    certificate: Option<crate::tls::PresentedCertificate>,
    headers: HeaderMap,
    OAuthForm(params): OAuthForm,
) -> Response {
    let outcome = async {
        // RFC 8628 §3.1: client authentication as at the token endpoint; public clients by
        // client_id.
        let client =
            authenticate_client(&state, &headers, &params, &source, certificate.as_ref()).await?;
        let inner = &state.0;
        // A new user code may, rarely, equal one still stored (pending or not yet pruned):
        // draw again.
        let mut attempts = 0;
        let (response, record) = loop {
            let (response, record) = device::start(
                &client,
                &params,
                &inner.settings.issuer,
                &inner.settings.policy,
                inner.clock.now(),
            )?;
            match inner.store.insert_device_authorization(&record).await {
                Ok(()) => break (response, record),
                Err(StoreError::Conflict(_)) if attempts < 3 => attempts += 1,
                Err(e) => return Err(Error::from(e)),
            }
        };
        audit::emit(
            &state,
            AuditEvent {
                event: "device_authorization".into(),
                outcome: "started".into(),
                client_id: Some(record.client_id.to_string()),
                grant_type: Some(tessera_core::grant_type::GrantType::DeviceCode.as_str().into()),
                ..Default::default()
            },
        );
        Ok::<_, Error>(response)
    };
    match outcome.await {
        Ok(body) => {
            let mut response = axum::Json(body).into_response();
            no_store(&mut response);
            response
        }
        Err(error) => OAuthError(error).into_response(),
    }
}

#[derive(serde::Deserialize)]
pub struct EntryQuery {
    user_code: Option<String>,
}

/// `GET /device`: the code entry form, filled from `verification_uri_complete`.
pub async fn entry(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<EntryQuery>,
) -> Response {
    let (csrf, csrf_cookie) = csrf::form_token(state.settings(), &headers);
    let typed = q.user_code.unwrap_or_default();
    let shown: String = typed.chars().take(MAX_USER_CODE_INPUT).collect();
    let page = DevicePage { csrf_token: csrf.as_str(), user_code: &shown, error: None };
    let mut response = pages::render(StatusCode::OK, &page, None);
    if let Some(cookie) = csrf_cookie {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    response
}

/// RFC 8628 §5.1: user-code guesses are limited per source and in total, so that the code
/// space (2.6 × 10^10) cannot be searched. Every form that looks a code up checks it.
async fn admit_code_entry(state: &AppState, source: &str) -> Result<(), Response> {
    let per_source = Limit::per_period(GUESSES_PER_SOURCE, GUESS_WINDOW);
    let global = Limit::per_period(GUESSES_IN_TOTAL, GUESS_WINDOW);
    let limiter = &state.0.rate_limiter;
    let checked = match limiter.check(&format!("device-code-source:{source}"), per_source).await {
        Ok(()) => limiter.check("device-code-global", global).await,
        denied => denied,
    };
    checked.map_err(|denied| {
        pages::too_many_attempts(
            "Too many codes were tried. Wait a minute and try again.",
            denied.retry_after_secs(),
        )
    })
}

/// The pending authorization a typed code stands for, with its client.
async fn pending(
    state: &AppState,
    typed: &str,
) -> Result<Option<(DeviceAuthorization, std::sync::Arc<Client>, String)>, Error> {
    let Some(normalized) = normalize_user_code(typed) else { return Ok(None) };
    let found = state
        .store()
        .find_pending_by_user_code(&user_code_hash(&normalized), state.0.clock.now())
        .await?;
    let Some(authorization) = found else { return Ok(None) };
    let Some(client) = state.0.clients.get(&authorization.client_id).await? else {
        return Ok(None);
    };
    let display = format!("{}-{}", &normalized[..4], &normalized[4..]);
    Ok(Some((authorization, client, display)))
}

fn entry_error(csrf: &str, typed: &str, message: &str) -> Response {
    let page = DevicePage { csrf_token: csrf, user_code: typed, error: Some(message) };
    pages::render(StatusCode::BAD_REQUEST, &page, None)
}

fn server_fault(e: Error) -> Response {
    tracing::error!(error = %e, "device verification failed");
    pages::message(
        StatusCode::INTERNAL_SERVER_ERROR,
        "Something went wrong",
        "Try again in a moment.",
    )
}

/// The next page once the code is known: sign-in, or the consent page with the code.
async fn continue_with(
    state: &AppState,
    session: Option<Session>,
    authorization: &DeviceAuthorization,
    client: &Client,
    code: &str,
    csrf: &str,
    login_error: Option<(&str, &str)>,
) -> Result<Response, Error> {
    let Some(session) = session else {
        let (username, error) = login_error.unwrap_or(("", ""));
        let page = LoginPage {
            client_name: &client.client_name,
            csrf_token: csrf,
            action: "/device/login",
            carry_name: "user_code",
            carry_value: code,
            username,
            error: (!error.is_empty()).then_some(error),
        };
        let status = if error.is_empty() { StatusCode::OK } else { StatusCode::UNAUTHORIZED };
        return Ok(pages::render(status, &page, None));
    };
    let Some(user) = state.store().find_user_by_id(&session.user_id).await? else {
        return Ok(pages::message(
            StatusCode::BAD_REQUEST,
            "Sign in again",
            "Your account was not found.",
        ));
    };
    let page = ConsentPage {
        client_name: &client.client_name,
        username: &user.username,
        scopes: pages::scope_lines(&state.settings().scope_descriptions, &authorization.scope),
        csrf_token: csrf,
        action: "/device/decide",
        carry_name: "user_code",
        carry_value: code,
        user_code: Some(code),
        redirect: None,
        unverified: !client.is_operator_registered(),
    };
    Ok(pages::render(StatusCode::OK, &page, None))
}

/// Reads a form of the verification pages: CSRF checked, and counted against the code-entry
/// limit. Every form that looks a user code up goes through here (entry, sign-in, decision:
/// each answers differently for a known code), so none is a way around the limit.
async fn code_form(
    state: &AppState,
    source: &SourceAddr,
    headers: &HeaderMap,
    body: Body,
) -> Result<PageForm, Response> {
    let form = PageForm::check(state.settings(), headers, read_form(headers, body).await?)
        .map_err(IntoResponse::into_response)?;
    admit_code_entry(state, &source.key()).await?;
    Ok(form)
}

/// `POST /device`: the user entered a code.
pub async fn submit_code(
    State(state): State<AppState>,
    source: SourceAddr,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let form = match code_form(&state, &source, &headers, body).await {
        Ok(f) => f,
        Err(response) => return response,
    };
    let csrf = form.field("csrf_token");
    let typed: String = form.field("user_code").chars().take(MAX_USER_CODE_INPUT).collect();
    let flow = async {
        let Some((authorization, client, code)) = pending(&state, &typed).await? else {
            return Ok(entry_error(
                csrf,
                &typed,
                "This code is unknown or has expired. Check the code on your device.",
            ));
        };
        let session = current_session(&state, &headers).await?;
        continue_with(&state, session, &authorization, &client, &code, csrf, None).await
    };
    flow.await.unwrap_or_else(server_fault)
}

/// `POST /device/login`: sign in, then show the consent page with the code.
pub async fn login(
    State(state): State<AppState>,
    source: SourceAddr,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let form = match code_form(&state, &source, &headers, body).await {
        Ok(f) => f,
        Err(response) => return response,
    };
    let csrf = form.field("csrf_token");
    let typed = form.field("user_code");
    let username = form.field("username");
    let password = Secret::from_string(form.field("password").to_owned());
    let flow = async {
        let Some((authorization, client, code)) = pending(&state, typed).await? else {
            return Ok(entry_error(csrf, typed, "This code is unknown or has expired."));
        };
        match sign_in(&state, &headers, username, password, &source.key()).await? {
            SignIn::Throttled(response) => Ok(response),
            SignIn::Refused => {
                let error = Some((username, REFUSED_MESSAGE));
                continue_with(&state, None, &authorization, &client, &code, csrf, error).await
            }
            SignIn::Signed(session, cookie) => {
                // The new session's forms carry a token bound to it (`web::csrf`).
                let csrf = csrf::session_token(&session);
                let mut response = continue_with(
                    &state,
                    Some(session),
                    &authorization,
                    &client,
                    &code,
                    csrf.as_str(),
                    None,
                )
                .await?;
                response.headers_mut().append(header::SET_COOKIE, cookie);
                Ok(response)
            }
        }
    };
    flow.await.unwrap_or_else(server_fault)
}

/// `POST /device/decide`: approve or deny (RFC 8628 §3.3).
pub async fn decide(
    State(state): State<AppState>,
    source: SourceAddr,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let form = match code_form(&state, &source, &headers, body).await {
        Ok(f) => f,
        Err(response) => return response,
    };
    let csrf = form.field("csrf_token");
    let typed = form.field("user_code");
    let flow = async {
        let Some((authorization, client, code)) = pending(&state, typed).await? else {
            return Ok(entry_error(csrf, typed, "This code is unknown or has expired."));
        };
        let Some(session) = current_session(&state, &headers).await? else {
            return continue_with(&state, None, &authorization, &client, &code, csrf, None).await;
        };
        let approve = match form.decision() {
            Ok(decision) => decision == Decision::Approve,
            Err(refused) => return Ok(refused.into_response()),
        };
        let approval = approve.then(|| DeviceApproval {
            user_id: session.user_id.clone(),
            auth_time: session.auth_time,
            sid: session.sid.clone(),
        });
        let decided = state
            .store()
            .decide_device_authorization(
                &authorization.user_code_hash,
                approval.as_ref(),
                state.0.clock.now(),
            )
            .await?;
        if !decided {
            return Ok(entry_error(csrf, typed, "This code is no longer waiting for a decision."));
        }
        audit::emit(
            &state,
            AuditEvent {
                event: "consent".into(),
                outcome: if approve { "granted" } else { "denied" }.into(),
                client_id: Some(client.client_id.to_string()),
                sub: Some(session.user_id.clone()),
                grant_type: Some(tessera_core::grant_type::GrantType::DeviceCode.as_str().into()),
                ..Default::default()
            },
        );
        Ok(if approve {
            pages::message(
                StatusCode::OK,
                "Device connected",
                &format!("{} is now connected. You can return to your device.", client.client_name),
            )
        } else {
            pages::message(StatusCode::OK, "Request denied", "The device was not given access.")
        })
    };
    flow.await.unwrap_or_else(server_fault)
}
