//! Issue 17 findings 3 and 4 through HTTP: nobody can lock a named account out, the source of
//! a request is the socket peer unless that peer is a trusted proxy, and a full password-check
//! queue answers `503`.

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode, header};

use crate::common::flow::{
    Browser, PASSWORD, USERNAME, authorize_query, create_user, hidden, page_text, web_client,
};
use crate::common::*;
use tessera_server::config::RawConfig;

/// An app with alice and the first-party client `web`.
async fn app_with(raw: RawConfig) -> TestApp {
    let app = spawn_app_configured(raw).await;
    create_user(&app).await;
    app.register(web_client("web")).await;
    app
}

/// Posts the login form of `page` as if from `peer`, with an `X-Forwarded-For` header if given.
async fn login_from(
    app: &TestApp,
    browser: &mut Browser,
    page: &Response,
    password: &str,
    peer: &str,
    forwarded_for: Option<&str>,
) -> Response {
    let html = page_text(page);
    let form = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs([
            ("csrf_token", hidden(&html, "csrf_token").as_str()),
            ("request", hidden(&html, "request").as_str()),
            ("username", USERNAME),
            ("password", password),
        ])
        .finish();
    let mut request = Request::post("/login")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(form))
        .unwrap();
    if let Some(xff) = forwarded_for {
        request.headers_mut().insert("x-forwarded-for", xff.parse().unwrap());
    }
    let peer: SocketAddr = format!("{peer}:40000").parse().unwrap();
    request.extensions_mut().insert(ConnectInfo(peer));
    browser.send(app, request).await
}

async fn login_page(app: &TestApp, browser: &mut Browser) -> Response {
    browser.get(app, &format!("/authorize?{}", authorize_query("web", ""))).await
}

fn signed_in(res: &Response) -> bool {
    res.status == StatusCode::SEE_OTHER || res.status == StatusCode::FOUND
}

#[tokio::test]
async fn issue17_3_wrong_passwords_from_one_source_do_not_lock_the_owner_out() {
    let app = app_with(RawConfig::default()).await;
    let mut attacker = Browser::default();
    let page = login_page(&app, &mut attacker).await;
    let mut statuses = Vec::new();
    for _ in 0..10 {
        let res = login_from(&app, &mut attacker, &page, "guess", "203.0.113.66", None).await;
        statuses.push(res.status);
    }
    assert!(statuses.contains(&StatusCode::TOO_MANY_REQUESTS), "the attacker is slowed down");
    let mut owner = Browser::default();
    let page = login_page(&app, &mut owner).await;
    let res = login_from(&app, &mut owner, &page, PASSWORD, "198.51.100.7", None).await;
    assert!(signed_in(&res), "the owner signs in from elsewhere: {}", res.status);
}

#[tokio::test]
async fn issue17_4_a_forwarding_header_from_an_untrusted_address_is_ignored() {
    // No trusted proxies: rotating X-Forwarded-For does not make new sources.
    let app = app_with(RawConfig {
        login_failures_before_delay: Some(2),
        // Longer than an Argon2id check in a debug build.
        login_first_delay_seconds: Some(60),
        ..Default::default()
    })
    .await;
    let mut attacker = Browser::default();
    let page = login_page(&app, &mut attacker).await;
    for i in 0..2 {
        let xff = format!("192.0.2.{i}");
        let res = login_from(&app, &mut attacker, &page, "guess", "203.0.113.66", Some(&xff)).await;
        assert_eq!(res.status, StatusCode::UNAUTHORIZED, "failure {i}");
    }
    let res =
        login_from(&app, &mut attacker, &page, "guess", "203.0.113.66", Some("192.0.2.99")).await;
    assert_eq!(res.status, StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn issue17_4_a_trusted_proxy_is_honoured() {
    let app = app_with(RawConfig {
        trusted_proxies: Some(vec!["10.0.0.0/8".into()]),
        login_failures_before_delay: Some(2),
        // Longer than an Argon2id check in a debug build.
        login_first_delay_seconds: Some(60),
        ..Default::default()
    })
    .await;
    let mut attacker = Browser::default();
    let page = login_page(&app, &mut attacker).await;
    // Everyone arrives from the proxy 10.0.0.1; the attacker is 203.0.113.66 behind it, and
    // claims other addresses in vain (they are left of what the proxy appended).
    for claimed in ["1.1.1.1", "1.1.1.2"] {
        let xff = format!("{claimed}, 203.0.113.66");
        let res = login_from(&app, &mut attacker, &page, "guess", "10.0.0.1", Some(&xff)).await;
        assert_eq!(res.status, StatusCode::UNAUTHORIZED);
    }
    let xff = Some("1.1.1.3, 203.0.113.66");
    let res = login_from(&app, &mut attacker, &page, "guess", "10.0.0.1", xff).await;
    assert_eq!(res.status, StatusCode::TOO_MANY_REQUESTS, "the attacker's own source waits");
    // The owner, behind the same proxy, is another source.
    let mut owner = Browser::default();
    let page = login_page(&app, &mut owner).await;
    let res = login_from(&app, &mut owner, &page, PASSWORD, "10.0.0.1", Some("198.51.100.7")).await;
    assert!(signed_in(&res), "the owner signs in through the proxy: {}", res.status);
}

#[tokio::test]
async fn issue17_4_ipv6_sources_in_one_64_share_their_limits() {
    let app = app_with(RawConfig {
        login_failures_before_delay: Some(2),
        // Longer than an Argon2id check in a debug build.
        login_first_delay_seconds: Some(60),
        ..Default::default()
    })
    .await;
    let mut attacker = Browser::default();
    let page = login_page(&app, &mut attacker).await;
    for peer in ["2001:db8:1:2::1", "2001:db8:1:2::2"] {
        let res = login_from(&app, &mut attacker, &page, "guess", &format!("[{peer}]"), None).await;
        assert_eq!(res.status, StatusCode::UNAUTHORIZED);
    }
    let res = login_from(&app, &mut attacker, &page, "guess", "[2001:db8:1:2:ffff::3]", None).await;
    assert_eq!(res.status, StatusCode::TOO_MANY_REQUESTS, "another address of the same /64");
}

#[tokio::test]
async fn issue17_4_a_full_password_check_queue_answers_503_with_retry_after() {
    let app = app_with(RawConfig { password_check_queue: Some(1), ..Default::default() }).await;
    let (mut a, mut b) = (Browser::default(), Browser::default());
    let page_a = login_page(&app, &mut a).await;
    let page_b = login_page(&app, &mut b).await;
    // Two sign-ins at once, with room for one check: one waits for Argon2id, the other is
    // turned away at once.
    let (first, second) = tokio::join!(
        login_from(&app, &mut a, &page_a, PASSWORD, "198.51.100.1", None),
        login_from(&app, &mut b, &page_b, PASSWORD, "198.51.100.2", None),
    );
    let statuses = [first.status, second.status];
    assert!(statuses.contains(&StatusCode::SERVICE_UNAVAILABLE), "{statuses:?}");
    let busy = if first.status == StatusCode::SERVICE_UNAVAILABLE { &first } else { &second };
    assert_eq!(busy.header("retry-after"), Some("1"));
    let other = if first.status == StatusCode::SERVICE_UNAVAILABLE { &second } else { &first };
    assert!(signed_in(other), "{}", other.status);
}
