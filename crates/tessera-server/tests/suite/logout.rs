//! RP-initiated logout without proof (issue 17 finding 10; OIDC RP-Initiated Logout 1.0 §2–3):
//! a request without a valid `id_token_hint` for the signed-in user asks the user before the
//! session ends, through a CSRF-protected form.

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use tessera_core::redirect_uri::RedirectUri;

use crate::common::flow::*;
use crate::common::*;

const BYE: &str = "https://app.example/bye";

/// An app with alice and bob, and the first-party client `web` (secret returned).
async fn logout_app() -> (TestApp, String) {
    let app = spawn_app().await;
    create_user(&app).await;
    let bob = tessera_core::user::User::new(
        "bob",
        None,
        None,
        &tessera_core::secret::Secret::from_string("bob's password!".into()),
        t0(),
    )
    .unwrap();
    tessera_core::store::UserStore::create_user(&app.store, &bob).await.unwrap();
    let secret = app
        .register(tessera_core::client::ClientRegistration {
            post_logout_redirect_uris: vec![RedirectUri::parse_for_registration(BYE).unwrap()],
            ..web_client("web")
        })
        .await
        .unwrap();
    (app, secret)
}

/// A browser signed in as `username`, and the ID token `web` got for that session.
async fn signed_in(
    app: &TestApp,
    secret: &str,
    username: &str,
    password: &str,
) -> (Browser, String) {
    let mut browser = Browser::default();
    let page = browser.get(app, &format!("/authorize?{}", authorize_query("web", ""))).await;
    let done = browser.login(app, &page, username, password).await;
    let code = redirect_params(&done)["code"].clone();
    let tokens = exchange(app, ("web", secret), &code, "").await.json();
    (browser, tokens["id_token"].as_str().unwrap().to_owned())
}

/// Whether the browser's session is alive: `/authorize` with `prompt=none` issues a code.
async fn still_signed_in(app: &TestApp, browser: &mut Browser) -> bool {
    let res =
        browser.get(app, &format!("/authorize?{}", authorize_query("web", "&prompt=none"))).await;
    redirect_params(&res).contains_key("code")
}

fn logout_query(extra: &str) -> String {
    format!("/logout?client_id=web&post_logout_redirect_uri={}&state=s1{extra}", urlencode(BYE))
}

#[tokio::test]
async fn oidc_rp_logout_2_without_id_token_hint_asks_before_ending_the_session() {
    let (app, secret) = logout_app().await;
    let (mut browser, _) = signed_in(&app, &secret, USERNAME, PASSWORD).await;

    // A cross-site GET (a link, an image) no longer signs the user out: it shows a question.
    let page = browser.get(&app, &logout_query("")).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page_text(&page));
    assert!(page.header("location").is_none());
    assert!(page_text(&page).contains("Sign out?"), "{}", page_text(&page));
    let csp = page.header("content-security-policy").unwrap();
    assert!(csp.contains("form-action 'self' https://app.example"), "{csp}");
    assert!(still_signed_in(&app, &mut browser).await);

    // The user confirms on the page: signed out, back to the client with its state.
    let html = page_text(&page);
    let form: Vec<(String, String)> =
        ["csrf_token", "client_id", "post_logout_redirect_uri", "state"]
            .into_iter()
            .map(|name| (name.to_owned(), hidden(&html, name)))
            .chain([("confirm".to_owned(), "yes".to_owned())])
            .collect();
    let pairs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let res = browser.post(&app, "/logout", &pairs).await;
    assert_eq!(res.status, StatusCode::SEE_OTHER, "{}", page_text(&res));
    assert_eq!(res.header("location"), Some("https://app.example/bye?state=s1"));
    assert!(!browser.cookies.contains_key("__Host-tessera_session"));
    assert!(!still_signed_in(&app, &mut browser).await);
}

#[tokio::test]
async fn oidc_rp_logout_2_a_forged_confirmation_is_refused() {
    let (app, secret) = logout_app().await;
    let (mut browser, _) = signed_in(&app, &secret, USERNAME, PASSWORD).await;
    // A POST from another site: without the page's token, or with it but cross-site.
    let res = browser.post(&app, "/logout", &[("confirm", "yes"), ("client_id", "web")]).await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST, "{}", page_text(&res));
    let page = browser.get(&app, &logout_query("")).await;
    let body =
        format!("confirm=yes&csrf_token={}", urlencode(&hidden(&page_text(&page), "csrf_token")));
    let cross_site = Request::post("/logout")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::ORIGIN, "https://evil.example")
        .body(Body::from(body))
        .unwrap();
    let res = browser.send(&app, cross_site).await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST, "{}", page_text(&res));
    // A relying party's POST without a hint is a question too, not a sign-out.
    let res = browser.post(&app, "/logout", &[("client_id", "web")]).await;
    assert_eq!(res.status, StatusCode::OK);
    assert!(page_text(&res).contains("Sign out?"));
    assert!(still_signed_in(&app, &mut browser).await);
}

#[tokio::test]
async fn oidc_rp_logout_2_an_id_token_hint_for_another_user_does_not_end_the_session() {
    let (app, secret) = logout_app().await;
    let (mut alice, _) = signed_in(&app, &secret, USERNAME, PASSWORD).await;
    // A valid ID token, but bob's (an attacker signs in as himself and embeds his own hint).
    let (_, bobs_hint) = signed_in(&app, &secret, "bob", "bob's password!").await;
    let res = alice.get(&app, &logout_query(&format!("&id_token_hint={bobs_hint}"))).await;
    assert_eq!(res.status, StatusCode::OK, "{}", page_text(&res));
    assert!(page_text(&res).contains("Sign out?"));
    assert!(still_signed_in(&app, &mut alice).await);
}

#[tokio::test]
async fn oidc_rp_logout_2_a_valid_id_token_hint_for_the_session_ends_it_at_once() {
    let (app, secret) = logout_app().await;
    let (mut browser, hint) = signed_in(&app, &secret, USERNAME, PASSWORD).await;
    let res = browser.get(&app, &logout_query(&format!("&id_token_hint={hint}"))).await;
    assert_eq!(res.status, StatusCode::SEE_OTHER, "{}", page_text(&res));
    assert_eq!(res.header("location"), Some("https://app.example/bye?state=s1"));
    assert!(!still_signed_in(&app, &mut browser).await);
}
