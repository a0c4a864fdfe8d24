//! What ends a user's access (issue 17 finding 1: deleting or disabling a user), and what
//! counts as the user's authentication and consent at the authorization endpoint.

use axum::http::StatusCode;
use tessera_core::client::ClientRegistration;
use tessera_core::client_id::ClientId;
use tessera_core::clock::Clock;
use tessera_core::store::UserStore;

use crate::common::flow::{
    Browser, PASSWORD, USERNAME, authorize_query, create_user, exchange, hidden, page_text,
    redirect_params, refresh, web_client,
};
use crate::common::*;

/// An app with user alice, the first-party web client `web` and a resource server `rs` that
/// may introspect. Returns the app and both clients' secrets.
async fn accounts_app() -> (TestApp, String, String) {
    let app = spawn_app().await;
    create_user(&app).await;
    let web = app.register(web_client("web")).await.unwrap();
    let rs = app
        .register(ClientRegistration {
            client_id: Some(ClientId::parse("rs").unwrap()),
            client_name: "rs".into(),
            introspection: true,
            ..Default::default()
        })
        .await
        .unwrap();
    (app, web, rs)
}

/// A browser signs in as alice and obtains a code (`web` is first-party: no consent page).
async fn signed_in_browser(app: &TestApp) -> (Browser, String) {
    let mut browser = Browser::default();
    let page = browser.get(app, &format!("/authorize?{}", authorize_query("web", ""))).await;
    let done = browser.login(app, &page, USERNAME, PASSWORD).await;
    let code = redirect_params(&done)["code"].clone();
    (browser, code)
}

async fn tokens_from(app: &TestApp, web: &str, code: &str) -> serde_json::Value {
    let res = exchange(app, ("web", web), code, "").await;
    assert_eq!(res.status, StatusCode::OK, "{}", page_text(&res));
    res.json()
}

async fn active(app: &TestApp, rs: &str, token: &str) -> bool {
    let form = format!("token={}", urlencode(token));
    let res = app.post_form("/introspect", Some(("rs", rs)), &form).await;
    assert_eq!(res.status, StatusCode::OK, "{}", page_text(&res));
    res.json()["active"].as_bool().unwrap()
}

/// Asserts that alice's old tokens and browser session give nothing any more: the refresh
/// grant answers `invalid_grant`, introspection and `/userinfo` report the access token
/// inactive, and the browser is sent to the login page, where her password no longer works.
async fn assert_access_ended(
    app: &TestApp,
    rs: &str,
    web: &str,
    tokens: &serde_json::Value,
    browser: &mut Browser,
) {
    let res = refresh(app, ("web", web), tokens["refresh_token"].as_str().unwrap(), "").await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST, "{}", page_text(&res));
    assert_eq!(res.json()["error"], "invalid_grant");
    let access = tokens["access_token"].as_str().unwrap();
    assert!(!active(app, rs, access).await, "the access token is revoked with its grant");
    assert_eq!(app.userinfo(access).await.status, StatusCode::UNAUTHORIZED);

    let page = browser.get(app, &format!("/authorize?{}", authorize_query("web", ""))).await;
    assert_eq!(
        page.status,
        StatusCode::OK,
        "the login page, not a code: {:?}",
        page.header("location")
    );
    assert!(page_text(&page).contains("name=\"password\""), "{}", page_text(&page));
    let refused = browser.login(app, &page, USERNAME, PASSWORD).await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED, "{}", page_text(&refused));
    assert!(refused.header("location").is_none());
}

/// Issue 17 finding 1: deleting a user revokes their grants and tokens and ends their
/// sessions at once (RFC 7009 §2.1 by analogy: everything issued to the account).
#[tokio::test]
async fn issue17_deleting_a_user_ends_refresh_tokens_access_tokens_and_sessions() {
    let (app, web, rs) = accounts_app().await;
    let (mut browser, code) = signed_in_browser(&app).await;
    let tokens = tokens_from(&app, &web, &code).await;
    let access = tokens["access_token"].as_str().unwrap();
    assert!(active(&app, &rs, access).await);
    assert!(app.store.delete_user(USERNAME, t0()).await.unwrap());
    assert_access_ended(&app, &rs, &web, &tokens, &mut browser).await;
}

/// Issue 17 finding 1: disabling a user ends access like a deletion and refuses sign-in;
/// enabling lets the user sign in again, while nothing revoked comes back.
#[tokio::test]
async fn issue17_a_disabled_user_cannot_sign_in_and_loses_every_token() {
    let (app, web, rs) = accounts_app().await;
    let (mut browser, code) = signed_in_browser(&app).await;
    let tokens = tokens_from(&app, &web, &code).await;
    assert!(app.store.set_user_disabled(USERNAME, true, t0()).await.unwrap());
    assert_access_ended(&app, &rs, &web, &tokens, &mut browser).await;

    assert!(app.store.set_user_disabled(USERNAME, false, t0()).await.unwrap());
    let (_, code) = signed_in_browser(&app).await;
    tokens_from(&app, &web, &code).await;
    let res = refresh(&app, ("web", &web), tokens["refresh_token"].as_str().unwrap(), "").await;
    assert_eq!(res.json()["error"], "invalid_grant", "revoked stays revoked");
}

/// Whether `res` is the login page (and not a redirect with a code).
fn is_login_page(res: &Response) -> bool {
    res.status == StatusCode::OK && page_text(res).contains("name=\"password\"")
}

/// OIDC Core §3.1.2.1: `prompt=login` and `max_age` require the user to authenticate again. A
/// consent form posted with an old session is no authentication: it gets the login page,
/// never a code. The sign-in made for the request counts for the one consent that follows,
/// and the ID token's `auth_time` is the time of that sign-in.
#[tokio::test]
async fn oidc_3_1_2_1_a_consent_form_never_counts_as_authentication() {
    let app = spawn_app().await;
    create_user(&app).await;
    let third_party = ClientRegistration { first_party: false, ..web_client("web") };
    let web = app.register(third_party).await.unwrap();
    let mut browser = Browser::default();
    let page = browser.get(&app, &format!("/authorize?{}", authorize_query("web", ""))).await;
    let consent = browser.login(&app, &page, USERNAME, PASSWORD).await;
    let done = browser.decide(&app, &consent, "approve").await;
    assert!(redirect_params(&done).contains_key("code"));

    app.clock.advance(120);
    for extra in ["&prompt=login", "&max_age=1"] {
        let query = authorize_query("web", extra);
        let page = browser.get(&app, &format!("/authorize?{query}")).await;
        assert!(is_login_page(&page), "{extra}: {}", page_text(&page));
        let csrf = hidden(&page_text(&page), "csrf_token");
        let form = [("csrf_token", csrf.as_str()), ("request", &query), ("decision", "approve")];
        let res = browser.post(&app, "/consent", &form).await;
        assert!(
            is_login_page(&res),
            "{extra}: no code for a consent: {:?}",
            res.header("location")
        );
    }

    let query = authorize_query("web", "&prompt=login+consent");
    let page = browser.get(&app, &format!("/authorize?{query}")).await;
    let signed_in_at = app.clock.now();
    let consent = browser.login(&app, &page, USERNAME, PASSWORD).await;
    assert!(page_text(&consent).contains("Allow access"), "{}", page_text(&consent));
    app.clock.advance(5);
    let done = browser.decide(&app, &consent, "approve").await;
    let code = redirect_params(&done)["code"].clone();
    let again = browser.decide(&app, &consent, "approve").await;
    assert!(is_login_page(&again), "the sign-in counted once: {:?}", again.header("location"));
    let res = exchange(&app, ("web", &web), &code, "").await;
    let id_token = res.json()["id_token"].as_str().unwrap().to_owned();
    let (_, claims) = verify_jwt(&app, &id_token, "web").await;
    assert_eq!(claims["auth_time"], signed_in_at);
}

/// RFC 8252 §8.6 (issue 17 finding 9): any local app can claim a public client's client_id
/// and redirect URI, so a public client never gets a code without the user's interaction in
/// that request: a remembered consent and a live session still show the consent page, and
/// `prompt=none` is `consent_required`.
#[tokio::test]
async fn rfc8252_8_6_a_public_client_gets_no_code_without_interaction() {
    let app = spawn_app().await;
    create_user(&app).await;
    let public = ClientRegistration {
        public: true,
        first_party: false,
        grant_types: vec![tessera_core::grant_type::GrantType::AuthorizationCode],
        ..web_client("cli")
    };
    assert!(app.register(public).await.is_none());
    let mut browser = Browser::default();
    let authorize = |extra: &str| format!("/authorize?{}", authorize_query("cli", extra));
    let page = browser.get(&app, &authorize("")).await;
    let consent = browser.login(&app, &page, USERNAME, PASSWORD).await;
    let done = browser.decide(&app, &consent, "approve").await;
    assert!(redirect_params(&done).contains_key("code"));

    let again = browser.get(&app, &authorize("")).await;
    assert_eq!(again.status, StatusCode::OK, "no code: {:?}", again.header("location"));
    assert!(page_text(&again).contains("Allow access"), "{}", page_text(&again));
    let silent = browser.get(&app, &authorize("&prompt=none")).await;
    assert_eq!(redirect_params(&silent)["error"], "consent_required");
    let done = browser.decide(&app, &again, "approve").await;
    assert!(redirect_params(&done).contains_key("code"), "the interaction gives the code");
}
