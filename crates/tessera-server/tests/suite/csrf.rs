//! CSRF protection of the pages' forms (issue 17 finding 11): the token is bound to the
//! browser's session (or, before sign-in, to its CSRF cookie), the cookies carry the `__Host-`
//! prefix on https, and a post from another site is refused by `Sec-Fetch-Site` / `Origin`.

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use tessera_server::config::RawConfig;

use crate::common::flow::*;
use crate::common::*;

/// An app with alice and a third-party web client (so that the consent page is shown).
async fn consent_app() -> TestApp {
    let app = spawn_app().await;
    create_user(&app).await;
    app.register(third_party("web")).await;
    app
}

/// A third-party web client: the consent page is shown.
fn third_party(id: &str) -> tessera_core::client::ClientRegistration {
    tessera_core::client::ClientRegistration { first_party: false, ..web_client(id) }
}

/// A browser signed in as alice, on the consent page for `web`.
async fn on_consent_page(app: &TestApp) -> (Browser, Response) {
    let mut browser = Browser::default();
    let page = browser.get(app, &format!("/authorize?{}", authorize_query("web", ""))).await;
    let consent = browser.login(app, &page, USERNAME, PASSWORD).await;
    assert_eq!(consent.status, StatusCode::OK, "{}", page_text(&consent));
    assert!(page_text(&consent).contains("Allow access"), "{}", page_text(&consent));
    (browser, consent)
}

/// Posts the login form of `page` with extra request headers.
async fn login_with_headers(
    app: &TestApp,
    browser: &mut Browser,
    page: &Response,
    extra: &[(&str, &str)],
) -> Response {
    let html = page_text(page);
    let body: String = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs([
            ("csrf_token", hidden(&html, "csrf_token").as_str()),
            ("request", hidden(&html, "request").as_str()),
            ("username", USERNAME),
            ("password", PASSWORD),
        ])
        .finish();
    let mut request =
        Request::post("/login").header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
    for (name, value) in extra {
        request = request.header(*name, *value);
    }
    browser.send(app, request.body(Body::from(body)).unwrap()).await
}

#[tokio::test]
async fn csrf_token_from_another_session_is_refused() {
    let app = consent_app().await;
    let (mut victim, victim_page) = on_consent_page(&app).await;
    let (mut attacker, attacker_page) = on_consent_page(&app).await;
    // The attacker's own valid token, and — as if planted by cookie tossing — the attacker's
    // CSRF cookie, in a form posted by the victim's signed-in browser. A plain double-submit
    // check (cookie = field) would pass; a token bound to the session does not.
    let attackers_token = hidden(&page_text(&attacker_page), "csrf_token");
    let attackers_cookie = attacker.cookies["__Host-tessera_csrf"].clone();
    for name in ["__Host-tessera_csrf", "tessera_csrf"] {
        victim.cookies.insert(name.into(), attackers_cookie.clone());
    }
    let request = hidden(&page_text(&victim_page), "request");
    for token in [attackers_token.as_str(), attackers_cookie.as_str()] {
        let res = victim
            .post(
                &app,
                "/consent",
                &[("csrf_token", token), ("request", &request), ("decision", "approve")],
            )
            .await;
        assert_eq!(res.status, StatusCode::BAD_REQUEST, "{}", page_text(&res));
        assert!(res.header("location").is_none(), "no code for a forged approval");
    }
    // Each browser's own token still works.
    let res = attacker.decide(&app, &attacker_page, "approve").await;
    assert!(redirect_params(&res).contains_key("code"));
    let res = victim.decide(&app, &victim_page, "deny").await;
    assert_eq!(redirect_params(&res)["error"], "access_denied");
}

#[tokio::test]
async fn csrf_token_from_another_browser_before_sign_in_is_refused() {
    let app = consent_app().await;
    let query = format!("/authorize?{}", authorize_query("web", ""));
    let mut first = Browser::default();
    let page = first.get(&app, &query).await;
    // A second browser with a CSRF cookie of its own posts the first one's token.
    let mut second = Browser::default();
    second.get(&app, &query).await;
    assert!(second.cookies.contains_key("__Host-tessera_csrf"));
    let res = second.login(&app, &page, USERNAME, PASSWORD).await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST, "{}", page_text(&res));
    assert!(!second.cookies.contains_key("__Host-tessera_session"));
    // An old-style token equal to the cookie (plain double submit) is refused too.
    let cookie = second.cookies["__Host-tessera_csrf"].clone();
    let request = hidden(&page_text(&page), "request");
    let res = second
        .post(
            &app,
            "/login",
            &[
                ("csrf_token", &cookie),
                ("request", &request),
                ("username", USERNAME),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST, "{}", page_text(&res));
}

#[tokio::test]
async fn csrf_cross_site_origin_is_refused() {
    let app = consent_app().await;
    let query = format!("/authorize?{}", authorize_query("web", ""));
    for headers in [
        vec![("origin", "https://evil.example")],
        vec![("origin", "null")],
        vec![("origin", "http://auth.test.example")],
        vec![("sec-fetch-site", "cross-site")],
        vec![("sec-fetch-site", "same-site")],
        vec![("sec-fetch-site", "cross-site"), ("origin", ISSUER)],
        vec![("sec-fetch-site", "same-origin"), ("origin", "https://evil.example")],
    ] {
        let mut browser = Browser::default();
        let page = browser.get(&app, &query).await;
        let res = login_with_headers(&app, &mut browser, &page, &headers).await;
        assert_eq!(res.status, StatusCode::BAD_REQUEST, "{headers:?}: {}", page_text(&res));
        assert!(!browser.cookies.contains_key("__Host-tessera_session"), "{headers:?}");
    }
}

#[tokio::test]
async fn csrf_same_origin_form_posts_are_accepted() {
    let app = consent_app().await;
    let query = format!("/authorize?{}", authorize_query("web", ""));
    for headers in [
        vec![("origin", ISSUER), ("sec-fetch-site", "same-origin")],
        vec![("origin", ISSUER)],
        vec![("sec-fetch-site", "same-origin")],
    ] {
        let mut browser = Browser::default();
        let page = browser.get(&app, &query).await;
        let res = login_with_headers(&app, &mut browser, &page, &headers).await;
        assert_eq!(res.status, StatusCode::OK, "{headers:?}: {}", page_text(&res));
        assert!(page_text(&res).contains("Allow access"), "{headers:?}");
        assert!(browser.cookies.contains_key("__Host-tessera_session"), "{headers:?}");
    }
}

#[tokio::test]
async fn rfc6265bis_4_1_3_2_page_cookies_carry_the_host_prefix_only_on_https() {
    let app = consent_app().await;
    let (browser, _) = on_consent_page(&app).await;
    let mut names: Vec<&String> = browser.cookies.keys().collect();
    names.sort();
    assert_eq!(names, ["__Host-tessera_csrf", "__Host-tessera_session"]);

    // A plain-http (loopback) issuer: no `Secure`, so no prefix (a browser would drop it).
    let http = spawn_app_configured(RawConfig {
        issuer: Some("http://127.0.0.1:8080".into()),
        ..Default::default()
    })
    .await;
    create_user(&http).await;
    http.register(third_party("web")).await;
    let mut browser = Browser::default();
    let page = browser.get(&http, &format!("/authorize?{}", authorize_query("web", ""))).await;
    let set_cookie = page.header("set-cookie").unwrap();
    assert!(
        set_cookie.starts_with("tessera_csrf=") && !set_cookie.contains("Secure"),
        "{set_cookie}"
    );
}
