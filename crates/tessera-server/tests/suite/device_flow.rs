//! The device authorization grant (RFC 8628) through the HTTP router: the device
//! authorization endpoint (§3.1–3.2), the verification pages a user signs in and decides on
//! (§3.3), polling the token endpoint with every §3.5 error code, user-code brute force
//! (§5.1), and the single redemption of an approved device code (design invariant 1), also
//! with two instances on one PostgreSQL database.

use crate::common::flow::{Browser, PASSWORD, USERNAME, create_user, hidden, page_text};
use crate::common::*;
use axum::http::StatusCode;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use tessera_core::client::{AuthMethod, ClientRegistration};
use tessera_core::client_id::ClientId;
use tessera_core::device::USER_CODE_ALPHABET;
use tessera_core::grant_type::GrantType;
use tessera_core::keys::{KeyEncryptionKey, SigningAlg};
use tessera_core::scope::ScopeSet;
use tessera_core::store::ClientStore;
use tessera_store::Store;
use tessera_store::testing::TestDb;

const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";
const CLIENT: &str = "tv";
const CLIENT_NAME: &str = "Living Room TV";

/// A public client with the device and refresh grants, as a TV app would be registered.
fn device_client(id: &str, name: &str) -> ClientRegistration {
    ClientRegistration {
        client_id: Some(ClientId::parse(id).unwrap()),
        client_name: name.into(),
        public: true,
        grant_types: vec![GrantType::DeviceCode, GrantType::RefreshToken],
        scope: ScopeSet::parse("openid orders:read").unwrap(),
        ..Default::default()
    }
}

/// An app with user alice (returned: her `sub`) and the public device client `tv`.
async fn device_app() -> (TestApp, String) {
    let app = spawn_app().await;
    let sub = create_user(&app).await;
    app.register(device_client(CLIENT, CLIENT_NAME)).await;
    (app, sub)
}

/// `POST /device_authorization` by public client `client_id`; `extra` is appended.
async fn start(app: &TestApp, client_id: &str, extra: &str) -> Response {
    app.post_form("/device_authorization", None, &format!("client_id={client_id}{extra}")).await
}

/// A device authorization of `tv` for `openid orders:read`; returns the response document.
async fn started(app: &TestApp) -> serde_json::Value {
    let res = start(app, CLIENT, "&scope=openid+orders%3Aread").await;
    assert_eq!(res.status, StatusCode::OK, "{}", page_text(&res));
    res.json()
}

fn field<'a>(doc: &'a serde_json::Value, name: &str) -> &'a str {
    doc[name].as_str().unwrap_or_else(|| panic!("no {name} in {doc}"))
}

/// One poll of the token endpoint by public client `client_id`.
async fn poll(app: &TestApp, client_id: &str, device_code: &str) -> Response {
    let form = format!(
        "grant_type={}&device_code={}&client_id={client_id}",
        urlencode(DEVICE_GRANT),
        urlencode(device_code)
    );
    app.token(None, &form).await
}

/// Asserts that a poll was refused with `error` (RFC 8628 §3.5: a 400 with the code).
#[track_caller]
fn assert_refused(res: &Response, error: &str, context: &str) {
    assert_eq!(res.status, StatusCode::BAD_REQUEST, "{context}: {}", page_text(res));
    assert_eq!(res.json()["error"], error, "{context}: {}", page_text(res));
    assert_eq!(res.header("cache-control"), Some("no-store"), "{context}");
}

/// The value of the code entry field of the `/device` page.
fn entered_code(html: &str) -> String {
    let start = html.find("id=\"user_code\"").unwrap_or_else(|| panic!("no code field in {html}"));
    let rest = &html[start..];
    let value = rest.find("value=\"").unwrap() + "value=\"".len();
    rest[value..value + rest[value..].find('"').unwrap()].to_owned()
}

/// Opens the code entry page (which sets the CSRF cookie) and submits `typed`.
async fn enter_code(app: &TestApp, browser: &mut Browser, typed: &str) -> Response {
    let page = browser.get(app, "/device").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page_text(&page));
    let csrf = hidden(&page_text(&page), "csrf_token");
    browser.post(app, "/device", &[("csrf_token", &csrf), ("user_code", typed)]).await
}

/// Submits the sign-in form of the device flow's sign-in page.
async fn sign_in(app: &TestApp, browser: &mut Browser, page: &Response) -> Response {
    let html = page_text(page);
    assert!(html.contains("action=\"/device/login\""), "not the device sign-in page: {html}");
    let (csrf, code) = (hidden(&html, "csrf_token"), hidden(&html, "user_code"));
    browser
        .post(
            app,
            "/device/login",
            &[
                ("csrf_token", &csrf),
                ("user_code", &code),
                ("username", USERNAME),
                ("password", PASSWORD),
            ],
        )
        .await
}

/// Submits the device consent page with `decision`.
async fn decide(app: &TestApp, browser: &mut Browser, page: &Response, decision: &str) -> Response {
    let html = page_text(page);
    assert!(html.contains("action=\"/device/decide\""), "not the device consent page: {html}");
    let (csrf, code) = (hidden(&html, "csrf_token"), hidden(&html, "user_code"));
    browser
        .post(
            app,
            "/device/decide",
            &[("csrf_token", &csrf), ("user_code", &code), ("decision", decision)],
        )
        .await
}

/// The user enters `user_code`, signs in if the browser has no session, and decides.
async fn user_decides(
    app: &TestApp,
    browser: &mut Browser,
    user_code: &str,
    decision: &str,
) -> Response {
    let mut page = enter_code(app, browser, user_code).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page_text(&page));
    if page_text(&page).contains("action=\"/device/login\"") {
        page = sign_in(app, browser, &page).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page_text(&page));
    }
    let done = decide(app, browser, &page, decision).await;
    assert_eq!(done.status, StatusCode::OK, "{}", page_text(&done));
    done
}

/// The text of the element with `id`, up to the next tag.
fn element_text(html: &str, id: &str) -> String {
    let marker = format!("id=\"{id}\"");
    let start = html.find(&marker).unwrap_or_else(|| panic!("no #{id} in {html}"));
    let open_end = start + html[start..].find('>').unwrap() + 1;
    let close = open_end + html[open_end..].find('<').unwrap();
    html[open_end..close].to_owned()
}

// --- RFC 8628 §3.1–3.2: the device authorization endpoint ---------------------------------

#[tokio::test]
async fn rfc8628_3_2_device_authorization_response_for_a_public_client() {
    let (app, _) = device_app().await;
    let res = start(&app, CLIENT, "&scope=openid+orders%3Aread").await;
    assert_eq!(res.status, StatusCode::OK, "{}", page_text(&res));
    assert_eq!(res.header("cache-control"), Some("no-store"));
    let doc = res.json();

    // The device code: at least 128 bits of base64url (RFC 8628 §5.2 points to RFC 6749 §10.10).
    let device_code = field(&doc, "device_code");
    let bytes = URL_SAFE_NO_PAD.decode(device_code).expect("device_code is base64url");
    assert!(bytes.len() >= 16, "device_code has {} bits", bytes.len() * 8);

    // The user code: XXXX-XXXX from the alphabet without vowels and look-alikes (§6.1).
    let user_code = field(&doc, "user_code");
    assert_eq!(user_code.len(), 9, "{user_code}");
    assert_eq!(&user_code[4..5], "-", "{user_code}");
    for (i, b) in user_code.bytes().enumerate().filter(|(i, _)| *i != 4) {
        assert!(USER_CODE_ALPHABET.contains(&b), "character {i} of {user_code}");
        assert!(b"BCDFGHJKLMNPQRSTVWXZ".contains(&b), "character {i} of {user_code}");
    }

    assert_eq!(field(&doc, "verification_uri"), format!("{ISSUER}/device"));
    assert_eq!(
        field(&doc, "verification_uri_complete"),
        format!("{ISSUER}/device?user_code={user_code}")
    );
    assert_eq!(doc["expires_in"], 600);
    assert_eq!(doc["interval"], 5);

    // A second request gets other codes.
    let again = started(&app).await;
    assert_ne!(field(&again, "device_code"), device_code);
    assert_ne!(field(&again, "user_code"), user_code);
}

#[tokio::test]
async fn rfc8628_3_1_a_client_without_the_device_grant_is_unauthorized_client() {
    let (app, _) = device_app().await;
    // A confidential client that authenticates but may use only client_credentials.
    let secret = app.client("svc", AuthMethod::ClientSecretBasic, "orders:read", "").await;
    let res =
        app.post_form("/device_authorization", Some(("svc", &secret)), "scope=orders%3Aread").await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST, "{}", page_text(&res));
    assert_eq!(res.json()["error"], "unauthorized_client");

    // A public client registered for the authorization code grant only.
    app.register(ClientRegistration {
        grant_types: vec![GrantType::AuthorizationCode],
        redirect_uris: vec![
            tessera_core::redirect_uri::RedirectUri::parse_for_registration(
                "https://app.example/cb",
            )
            .unwrap(),
        ],
        ..device_client("spa", "SPA")
    })
    .await;
    let res = start(&app, "spa", "&scope=openid").await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST, "{}", page_text(&res));
    assert_eq!(res.json()["error"], "unauthorized_client");
}

#[tokio::test]
async fn rfc8628_3_1_a_scope_outside_the_clients_is_invalid_scope() {
    let (app, _) = device_app().await;
    let res = start(&app, CLIENT, "&scope=openid+orders%3Awrite").await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST, "{}", page_text(&res));
    assert_eq!(res.json()["error"], "invalid_scope");
}

#[tokio::test]
async fn rfc8628_3_1_an_unknown_client_is_invalid_client() {
    let (app, _) = device_app().await;
    let res = start(&app, "nobody", "&scope=openid").await;
    assert_eq!(res.status, StatusCode::UNAUTHORIZED, "{}", page_text(&res));
    assert_eq!(res.json()["error"], "invalid_client");

    // Nor does a confidential client get in with a wrong secret.
    app.client("svc", AuthMethod::ClientSecretBasic, "orders:read", "").await;
    let res = app
        .post_form("/device_authorization", Some(("svc", "wrong-secret")), "scope=orders%3Aread")
        .await;
    assert_eq!(res.status, StatusCode::UNAUTHORIZED, "{}", page_text(&res));
    assert_eq!(res.json()["error"], "invalid_client");
}

// --- RFC 8628 §3.5: polling the token endpoint --------------------------------------------

#[tokio::test]
async fn rfc8628_3_5_authorization_pending_before_the_user_decides() {
    let (app, _) = device_app().await;
    let doc = started(&app).await;
    let device_code = field(&doc, "device_code");
    assert_refused(&poll(&app, CLIENT, device_code).await, "authorization_pending", "first poll");
    app.clock.advance(5);
    assert_refused(
        &poll(&app, CLIENT, device_code).await,
        "authorization_pending",
        "a poll after the interval",
    );
}

#[tokio::test]
async fn rfc8628_3_5_slow_down_within_the_interval_which_grows_by_5_seconds() {
    let (app, _) = device_app().await;

    // A device that ignores slow_down and keeps the old interval keeps being told so.
    let doc = started(&app).await;
    let device_code = field(&doc, "device_code");
    assert_refused(&poll(&app, CLIENT, device_code).await, "authorization_pending", "t+0");
    app.clock.advance(1);
    assert_refused(&poll(&app, CLIENT, device_code).await, "slow_down", "t+1: within 5 s");
    app.clock.advance(5);
    assert_refused(
        &poll(&app, CLIENT, device_code).await,
        "slow_down",
        "t+6: 5 s after the last poll, but the interval is now 10 s",
    );

    // A device that adds 5 s after slow_down is answered again.
    let doc = started(&app).await;
    let device_code = field(&doc, "device_code");
    assert_refused(&poll(&app, CLIENT, device_code).await, "authorization_pending", "t+0");
    app.clock.advance(1);
    assert_refused(&poll(&app, CLIENT, device_code).await, "slow_down", "t+1: within 5 s");
    app.clock.advance(10);
    assert_refused(
        &poll(&app, CLIENT, device_code).await,
        "authorization_pending",
        "t+11: old interval + 5 s after the slow_down",
    );
    // The interval stays at 10 s for all subsequent requests: 5 s is too soon, 10 s is not.
    app.clock.advance(5);
    assert_refused(&poll(&app, CLIENT, device_code).await, "slow_down", "t+16: 5 s later");
    app.clock.advance(15);
    assert_refused(
        &poll(&app, CLIENT, device_code).await,
        "authorization_pending",
        "t+31: 15 s (the interval after two slow_downs) later",
    );
}

#[tokio::test]
async fn rfc8628_3_5_access_denied_after_the_user_denies() {
    let (app, _) = device_app().await;
    let doc = started(&app).await;
    let mut browser = Browser::default();
    let done = user_decides(&app, &mut browser, field(&doc, "user_code"), "deny").await;
    assert!(page_text(&done).contains("Request denied"), "{}", page_text(&done));

    let device_code = field(&doc, "device_code");
    assert_refused(&poll(&app, CLIENT, device_code).await, "access_denied", "after denial");
    app.clock.advance(5);
    assert_refused(&poll(&app, CLIENT, device_code).await, "access_denied", "and later");

    // The code cannot be entered again to approve after all.
    let again = enter_code(&app, &mut browser, field(&doc, "user_code")).await;
    assert_eq!(again.status, StatusCode::BAD_REQUEST, "{}", page_text(&again));
}

#[tokio::test]
async fn rfc8628_3_5_expired_token_after_expires_in() {
    let (app, _) = device_app().await;
    let doc = started(&app).await;
    let device_code = field(&doc, "device_code");
    app.clock.advance(595);
    assert_refused(&poll(&app, CLIENT, device_code).await, "authorization_pending", "at 595 s");
    app.clock.advance(5);
    assert_refused(&poll(&app, CLIENT, device_code).await, "expired_token", "at 600 s");

    // An approval that comes too late does not revive it either.
    let doc = started(&app).await;
    let mut browser = Browser::default();
    user_decides(&app, &mut browser, field(&doc, "user_code"), "approve").await;
    app.clock.advance(600);
    assert_refused(
        &poll(&app, CLIENT, field(&doc, "device_code")).await,
        "expired_token",
        "approved but not redeemed within expires_in",
    );
}

#[tokio::test]
async fn rfc8628_3_5_an_unknown_device_code_is_invalid_grant() {
    let (app, _) = device_app().await;
    started(&app).await;
    let made_up = URL_SAFE_NO_PAD.encode([7u8; 32]);
    assert_refused(&poll(&app, CLIENT, &made_up).await, "invalid_grant", "made-up device code");
    let res = app
        .token(None, &format!("grant_type={}&client_id={CLIENT}", urlencode(DEVICE_GRANT)))
        .await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST, "{}", page_text(&res));
    assert_eq!(res.json()["error"], "invalid_request", "no device_code at all");
}

#[tokio::test]
async fn rfc8628_3_5_a_second_redemption_after_success_is_invalid_grant() {
    let (app, _) = device_app().await;
    let doc = started(&app).await;
    let mut browser = Browser::default();
    user_decides(&app, &mut browser, field(&doc, "user_code"), "approve").await;
    let device_code = field(&doc, "device_code");
    let res = poll(&app, CLIENT, device_code).await;
    assert_eq!(res.status, StatusCode::OK, "{}", page_text(&res));
    app.clock.advance(5);
    assert_refused(&poll(&app, CLIENT, device_code).await, "invalid_grant", "second redemption");
    app.clock.advance(60);
    assert_refused(&poll(&app, CLIENT, device_code).await, "invalid_grant", "and later");
}

/// RFC 8628 §3.5 and, by analogy, RFC 6749 §4.1.2 (issue 17 finding 18): a redeemed device
/// code polled again, even sooner than the interval, is `invalid_grant` (not `slow_down`), and
/// having leaked it revokes the tokens issued from it.
#[tokio::test]
async fn rfc8628_3_5_a_replayed_device_code_is_invalid_grant_and_revokes_its_tokens() {
    let (app, _) = device_app().await;
    let doc = started(&app).await;
    let mut browser = Browser::default();
    user_decides(&app, &mut browser, field(&doc, "user_code"), "approve").await;
    let device_code = field(&doc, "device_code");
    let res = poll(&app, CLIENT, device_code).await;
    assert_eq!(res.status, StatusCode::OK, "{}", page_text(&res));
    let tokens = res.json();
    let access = tokens["access_token"].as_str().unwrap();
    assert_eq!(app.userinfo(access).await.status, StatusCode::OK);

    app.clock.advance(1);
    assert_refused(&poll(&app, CLIENT, device_code).await, "invalid_grant", "replay, too soon");
    assert_eq!(app.userinfo(access).await.status, StatusCode::UNAUTHORIZED, "revoked");
    let form = format!(
        "grant_type=refresh_token&refresh_token={}&client_id={CLIENT}",
        urlencode(tokens["refresh_token"].as_str().unwrap())
    );
    assert_refused(&app.token(None, &form).await, "invalid_grant", "the refresh token too");
}

#[tokio::test]
async fn rfc8628_3_4_the_device_code_of_another_client_is_invalid_grant() {
    let (app, _) = device_app().await;
    app.register(device_client("kiosk", "Kiosk")).await;
    let doc = started(&app).await;
    let mut browser = Browser::default();
    user_decides(&app, &mut browser, field(&doc, "user_code"), "approve").await;
    let device_code = field(&doc, "device_code");

    assert_refused(&poll(&app, "kiosk", device_code).await, "invalid_grant", "another client");
    // The other client's attempt neither redeemed it nor counted as the owner's poll.
    let res = poll(&app, CLIENT, device_code).await;
    assert_eq!(res.status, StatusCode::OK, "{}", page_text(&res));
}

// --- RFC 8628 §3.3: the verification pages ------------------------------------------------

#[tokio::test]
async fn rfc8628_3_3_user_approves_on_the_pages_and_the_device_gets_tokens() {
    let (app, sub) = device_app().await;
    let doc = started(&app).await;
    let user_code = field(&doc, "user_code").to_owned();
    let device_code = field(&doc, "device_code").to_owned();
    // The device polls while the user is busy.
    assert_refused(&poll(&app, CLIENT, &device_code).await, "authorization_pending", "waiting");

    // verification_uri_complete opens the entry page with the code filled in.
    let mut browser = Browser::default();
    let complete = field(&doc, "verification_uri_complete");
    let path = complete.strip_prefix(ISSUER).unwrap();
    let page = browser.get(&app, path).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page_text(&page));
    assert_eq!(page.header("cache-control"), Some("no-store"));
    let html = page_text(&page);
    assert_eq!(entered_code(&html), user_code);
    let csrf = hidden(&html, "csrf_token");

    // RFC 8628 §6.1: what the user types is case- and dash-insensitive.
    let typed = user_code.replace('-', "").to_lowercase();
    let login =
        browser.post(&app, "/device", &[("csrf_token", &csrf), ("user_code", &typed)]).await;
    assert_eq!(login.status, StatusCode::OK, "{}", page_text(&login));
    let html = page_text(&login);
    assert!(html.contains("action=\"/device/login\""), "a sign-in page: {html}");
    assert!(html.contains(CLIENT_NAME), "{html}");
    assert_eq!(hidden(&html, "user_code"), user_code, "the form carries the normalized code");

    // Signing in leads to the consent page, which shows the code to compare (§5.4).
    let consent = sign_in(&app, &mut browser, &login).await;
    assert_eq!(consent.status, StatusCode::OK, "{}", page_text(&consent));
    let html = page_text(&consent);
    assert!(html.contains("action=\"/device/decide\""), "a consent page: {html}");
    assert_eq!(element_text(&html, "user-code"), user_code);
    assert!(html.contains(CLIENT_NAME) && html.contains("orders:read"), "{html}");
    assert!(
        browser.cookies.contains_key("__Host-tessera_session"),
        "signed in: {:?}",
        browser.cookies
    );

    let done = decide(&app, &mut browser, &consent, "approve").await;
    assert_eq!(done.status, StatusCode::OK, "{}", page_text(&done));
    assert!(page_text(&done).contains("Device connected"), "{}", page_text(&done));

    // The next poll, after the interval, gets the tokens.
    app.clock.advance(5);
    let res = poll(&app, CLIENT, &device_code).await;
    assert_eq!(res.status, StatusCode::OK, "{}", page_text(&res));
    assert_eq!(res.header("cache-control"), Some("no-store"));
    let tokens = res.json();
    assert_eq!(tokens["token_type"], "Bearer");
    assert_eq!(tokens["scope"], "openid orders:read");

    // The access token: audience = the issuer (the client names none), sub = the user.
    let (_, access) = verify_jwt(&app, field(&tokens, "access_token"), ISSUER).await;
    assert_eq!(access["sub"], sub.as_str());
    assert_eq!(access["client_id"], CLIENT);
    assert_eq!(access["scope"], "openid orders:read");

    // The ID token: aud = client_id, sub = the user.
    let (_, id) = verify_jwt(&app, field(&tokens, "id_token"), CLIENT).await;
    assert_eq!(id["sub"], sub.as_str());
    assert!(id["auth_time"].is_i64(), "{id}");

    // The refresh token works for the public client (RFC 6749 §6).
    let refresh = field(&tokens, "refresh_token");
    let res = app
        .token(
            None,
            &format!(
                "grant_type=refresh_token&refresh_token={}&client_id={CLIENT}",
                urlencode(refresh)
            ),
        )
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", page_text(&res));
    let (_, refreshed) = verify_jwt(&app, field(&res.json(), "access_token"), ISSUER).await;
    assert_eq!(refreshed["sub"], sub.as_str());

    // And the access token is the user's at /userinfo.
    let info = app.userinfo(field(&tokens, "access_token")).await;
    assert_eq!(info.status, StatusCode::OK, "{}", page_text(&info));
    assert_eq!(info.json()["sub"], sub.as_str());
}

#[tokio::test]
async fn r4_5_a_prefilled_code_is_escaped_on_the_entry_page() {
    let (app, _) = device_app().await;
    let res = app.get("/device?user_code=%22%3E%3Cscript%3Ex%3C%2Fscript%3E").await;
    assert_eq!(res.status, StatusCode::OK, "{}", page_text(&res));
    let html = page_text(&res);
    assert!(!html.contains("<script>x"), "{html}");
    let value = entered_code(&html);
    assert!(value.starts_with("&#34;") || value.starts_with("&quot;"), "{value}");
    assert!(!value.contains('<'), "{value}");
}

#[tokio::test]
async fn rfc8628_3_3_an_unknown_or_expired_code_is_a_400_page_with_a_clear_message() {
    let (app, _) = device_app().await;
    let mut browser = Browser::default();
    const MESSAGE: &str = "This code is unknown or has expired";

    for typed in ["BCDF-GHJK", "not a code", ""] {
        let res = enter_code(&app, &mut browser, typed).await;
        assert_eq!(res.status, StatusCode::BAD_REQUEST, "{typed:?}: {}", page_text(&res));
        let html = page_text(&res);
        assert!(element_text(&html, "device-error").contains(MESSAGE), "{typed:?}: {html}");
        assert!(html.contains("action=\"/device\""), "the entry form again: {html}");
    }

    let doc = started(&app).await;
    app.clock.advance(600);
    let res = enter_code(&app, &mut browser, field(&doc, "user_code")).await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST, "{}", page_text(&res));
    assert!(element_text(&page_text(&res), "device-error").contains(MESSAGE));
}

#[tokio::test]
async fn r4_5_device_forms_without_the_csrf_token_are_refused() {
    let (app, _) = device_app().await;
    let doc = started(&app).await;
    let user_code = field(&doc, "user_code");

    // No CSRF cookie nor field.
    let mut browser = Browser::default();
    let res = browser.post(&app, "/device", &[("user_code", user_code)]).await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST, "{}", page_text(&res));
    assert!(page_text(&res).contains("cannot continue"), "{}", page_text(&res));

    // The cookie, but a forged field, at each step.
    browser.get(&app, "/device").await;
    for (path, extra) in [
        ("/device", vec![]),
        ("/device/login", vec![("username", USERNAME), ("password", PASSWORD)]),
        ("/device/decide", vec![("decision", "approve")]),
    ] {
        let mut form = vec![("csrf_token", "forged"), ("user_code", user_code)];
        form.extend(extra);
        let res = browser.post(&app, path, &form).await;
        assert_eq!(res.status, StatusCode::BAD_REQUEST, "{path}: {}", page_text(&res));
        assert!(page_text(&res).contains("cannot continue"), "{path}: {}", page_text(&res));
    }

    // A signed-in browser's forged approval is refused too, and nothing was decided.
    let consent = {
        let page = enter_code(&app, &mut browser, user_code).await;
        sign_in(&app, &mut browser, &page).await
    };
    assert_eq!(consent.status, StatusCode::OK, "{}", page_text(&consent));
    let res = browser
        .post(&app, "/device/decide", &[("user_code", user_code), ("decision", "approve")])
        .await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST, "{}", page_text(&res));
    assert_refused(
        &poll(&app, CLIENT, field(&doc, "device_code")).await,
        "authorization_pending",
        "no approval went through",
    );
}

#[tokio::test]
async fn rfc8628_3_3_a_signed_in_browser_goes_from_code_entry_straight_to_consent() {
    let (app, _) = device_app().await;
    let mut browser = Browser::default();
    let first = started(&app).await;
    user_decides(&app, &mut browser, field(&first, "user_code"), "approve").await;

    let second = started(&app).await;
    let user_code = field(&second, "user_code");
    let consent = enter_code(&app, &mut browser, user_code).await;
    assert_eq!(consent.status, StatusCode::OK, "{}", page_text(&consent));
    let html = page_text(&consent);
    assert!(!html.contains("action=\"/device/login\""), "no sign-in page: {html}");
    assert!(html.contains("action=\"/device/decide\""), "{html}");
    assert_eq!(element_text(&html, "user-code"), user_code);
    let done = decide(&app, &mut browser, &consent, "approve").await;
    assert!(page_text(&done).contains("Device connected"), "{}", page_text(&done));
    let res = poll(&app, CLIENT, field(&second, "device_code")).await;
    assert_eq!(res.status, StatusCode::OK, "{}", page_text(&res));
}

// --- RFC 8628 §5.1: user-code brute force -------------------------------------------------

#[tokio::test]
async fn rfc8628_5_1_code_entry_is_limited_to_10_per_source_per_minute() {
    let (app, _) = device_app().await;
    let doc = started(&app).await;
    let mut browser = Browser::default();
    let page = browser.get(&app, "/device").await;
    let csrf = hidden(&page_text(&page), "csrf_token");

    let wrong = ["BCDF-GHJK", "BCDF-GHJL", "BCDF-GHJM", "BCDF-GHJN", "BCDF-GHJP"];
    for i in 0..10 {
        let res = browser
            .post(&app, "/device", &[("csrf_token", &csrf), ("user_code", wrong[i % wrong.len()])])
            .await;
        assert_eq!(res.status, StatusCode::BAD_REQUEST, "entry {}: {}", i + 1, page_text(&res));
    }
    let res =
        browser.post(&app, "/device", &[("csrf_token", &csrf), ("user_code", "BCDF-GHJQ")]).await;
    assert_eq!(res.status, StatusCode::TOO_MANY_REQUESTS, "entry 11: {}", page_text(&res));
    let retry_after: u64 = res.header("retry-after").expect("Retry-After").parse().unwrap();
    assert!((1..=60).contains(&retry_after), "Retry-After: {retry_after}");

    // Within the minute even the right code is not looked up.
    let res = browser
        .post(&app, "/device", &[("csrf_token", &csrf), ("user_code", field(&doc, "user_code"))])
        .await;
    assert_eq!(res.status, StatusCode::TOO_MANY_REQUESTS, "{}", page_text(&res));
}

#[tokio::test]
async fn rfc8628_5_1_the_sign_in_and_decision_forms_are_no_way_around_the_limit() {
    let (app, _) = device_app().await;
    let doc = started(&app).await;
    let mut browser = Browser::default();
    let page = browser.get(&app, "/device").await;
    let csrf = hidden(&page_text(&page), "csrf_token");

    // The decision form looks codes up too: a wrong code there is a guess like any other.
    for i in 0..10 {
        let res = browser
            .post(
                &app,
                "/device/decide",
                &[("csrf_token", &csrf), ("user_code", "BCDF-GHJK"), ("decision", "approve")],
            )
            .await;
        assert_eq!(res.status, StatusCode::BAD_REQUEST, "guess {}: {}", i + 1, page_text(&res));
    }
    for (path, extra) in [
        ("/device/decide", [("decision", "approve"), ("", "")]),
        ("/device/login", [("username", USERNAME), ("password", "wrong")]),
        ("/device", [("", ""), ("", "")]),
    ] {
        // Even the right code is not looked up: a 200 for it and a 400 for a wrong one would
        // tell a guesser which is which.
        let mut form = vec![("csrf_token", csrf.as_str()), ("user_code", field(&doc, "user_code"))];
        form.extend(extra.into_iter().filter(|(k, _)| !k.is_empty()));
        let res = browser.post(&app, path, &form).await;
        assert_eq!(res.status, StatusCode::TOO_MANY_REQUESTS, "{path}: {}", page_text(&res));
        assert!(res.header("retry-after").is_some(), "{path}");
    }
}

// --- Design invariant 1: a device code is redeemed once -----------------------------------

/// Starts a device authorization on `starter`, has the user approve it there with `browser`,
/// then polls twice at once, on `a` and on `b`; asserts exactly one 200.
async fn concurrent_polls_redeem_once(
    starter: &TestApp,
    browser: &mut Browser,
    a: &TestApp,
    b: &TestApp,
) {
    let doc = started(starter).await;
    user_decides(starter, browser, field(&doc, "user_code"), "approve").await;
    let device_code = field(&doc, "device_code");
    let (first, second) = tokio::join!(poll(a, CLIENT, device_code), poll(b, CLIENT, device_code));
    let ok: Vec<&Response> =
        [&first, &second].into_iter().filter(|r| r.status.is_success()).collect();
    assert_eq!(
        ok.len(),
        1,
        "exactly one poll redeems: {} {} / {} {}",
        first.status,
        page_text(&first),
        second.status,
        page_text(&second)
    );
    let refused = if first.status.is_success() { &second } else { &first };
    assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", page_text(refused));
    let error = refused.json()["error"].as_str().unwrap().to_owned();
    assert!(
        error == "invalid_grant" || error == "slow_down",
        "the other poll: {}",
        page_text(refused)
    );
    assert!(ok[0].json()["access_token"].is_string());
}

#[tokio::test]
async fn invariant_1_concurrent_polls_of_an_approved_device_code_redeem_it_once() {
    let (app, _) = device_app().await;
    let mut browser = Browser::default();
    // Four flows: 3 + 2 + 2 + 2 code lookups, within the 10 a source has per minute.
    for _ in 0..4 {
        concurrent_polls_redeem_once(&app, &mut browser, &app, &app).await;
    }
}

/// Instances A and B on one PostgreSQL database with a shared key encryption key.
async fn two_instances(db: &TestDb) -> (TestApp, TestApp) {
    let kek = KeyEncryptionKey::generate_encoded();
    let mut apps = Vec::new();
    for _ in 0..2 {
        let store: Store = db.connect_another().await;
        apps.push(
            TestApp::on_store(store, settings_with_kek(SigningAlg::ES256, &db.url, &kek)).await,
        );
    }
    let b = apps.pop().unwrap();
    (apps.pop().unwrap(), b)
}

#[tokio::test]
async fn invariant_1_concurrent_polls_on_two_postgres_instances_redeem_once() {
    let Some(db) = TestDb::postgres().await else { return };
    let (a, b) = two_instances(&db).await;
    create_user(&a).await;
    let (client, _) = device_client(CLIENT, CLIENT_NAME).into_client(t0()).unwrap();
    db.store.create_client(&client).await.unwrap();

    // B's clock runs 10 s ahead: when A's poll is decided first, B's comes after the interval
    // and must find the code redeemed; the other way round A's is too soon (slow_down).
    b.clock.advance(10);
    let mut browser = Browser::default();
    // Four flows: 3 + 2 + 2 + 2 code lookups, within the 10 a source has per minute.
    for _ in 0..4 {
        concurrent_polls_redeem_once(&a, &mut browser, &a, &b).await;
    }

    a.store.close().await;
    b.store.close().await;
    db.cleanup().await;
}

// --- Discovery -----------------------------------------------------------------------------

#[tokio::test]
async fn rfc8628_4_metadata_advertises_the_device_authorization_endpoint_and_grant() {
    let app = spawn_app().await;
    for path in ["/.well-known/oauth-authorization-server", "/.well-known/openid-configuration"] {
        let doc = app.get(path).await.json();
        assert_eq!(
            doc["device_authorization_endpoint"],
            format!("{ISSUER}/device_authorization"),
            "{path}"
        );
        let grants = doc["grant_types_supported"].as_array().unwrap();
        assert!(grants.iter().any(|g| g == DEVICE_GRANT), "{path}: {grants:?}");
    }
}

/// R7.4: a device code replayed revokes its grant, and the grant's access tokens are published
/// to the revocation list (real Redis, `TESSERA_TEST_REDIS_URL`).
#[tokio::test]
async fn r7_4_a_grant_revoked_by_device_code_replay_publishes_its_access_tokens() {
    use crate::revocation_list_sources::{assert_listed, assert_not_listed, jti_and_exp};
    let test = "r7_4_a_grant_revoked_by_device_code_replay_publishes_its_access_tokens";
    if !redis_available(test).await {
        return;
    }
    let raw =
        tessera_server::config::RawConfig { redis_url: Some(redis_url()), ..Default::default() };
    let app = spawn_app_configured(raw).await;
    create_user(&app).await;
    let client = format!("tv-{}", tessera_core::secret::random_id::<8>());
    app.register(device_client(&client, CLIENT_NAME)).await;
    let res = start(&app, &client, "&scope=openid+orders%3Aread").await;
    let doc = res.json();
    let mut browser = Browser::default();
    user_decides(&app, &mut browser, field(&doc, "user_code"), "approve").await;
    let device_code = field(&doc, "device_code");
    let res = poll(&app, &client, device_code).await;
    assert_eq!(res.status, StatusCode::OK, "{}", page_text(&res));
    let (jti, exp) = jti_and_exp(&app, res.json()["access_token"].as_str().unwrap()).await;
    assert_not_listed(&jti).await;
    app.clock.advance(10);
    assert_refused(&poll(&app, &client, device_code).await, "invalid_grant", "replay");
    assert_listed(&jti, exp).await;
}
