//! The authorization code flow with PKCE, login and consent pages, OpenID Connect and refresh
//! rotation, through the HTTP router (RFC 6749 §4.1, RFC 7636, OIDC Core, RFC 9207).

use crate::common::flow::{Browser, hidden, page_text, redirect_params};
use crate::common::*;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use tessera_core::client::ClientRegistration;
use tessera_core::client_id::ClientId;
use tessera_core::grant_type::GrantType;
use tessera_core::keys::SigningAlg;
use tessera_core::redirect_uri::RedirectUri;
use tessera_core::scope::ScopeSet;
use tessera_core::secret::Secret;
use tessera_core::store::{ClientStore, UserStore};
use tessera_core::user::User;

const REDIRECT: &str = "https://app.example/cb";
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
const PASSWORD: &str = "correct horse battery";

struct Flow {
    app: TestApp,
    secret: String,
    sub: String,
}

/// An app with user `alice` and a confidential web client `web`.
async fn flow_app() -> Flow {
    flow_app_with(false).await
}

async fn flow_app_with(first_party: bool) -> Flow {
    let app = spawn_app().await;
    let user = User::new(
        "alice",
        Some("alice@example.com".into()),
        Some("Alice Example".into()),
        &Secret::from_string(PASSWORD.into()),
        t0(),
    )
    .unwrap();
    app.store.create_user(&user).await.unwrap();
    let (client, secret) = ClientRegistration {
        client_id: Some(ClientId::parse("web").unwrap()),
        client_name: "Web App".into(),
        redirect_uris: vec![RedirectUri::parse_for_registration(REDIRECT).unwrap()],
        post_logout_redirect_uris: vec![
            RedirectUri::parse_for_registration("https://app.example/bye").unwrap(),
        ],
        grant_types: vec![GrantType::AuthorizationCode, GrantType::RefreshToken],
        scope: ScopeSet::parse("openid profile email orders:read orders:write").unwrap(),
        default_scope: ScopeSet::parse("openid").unwrap(),
        first_party,
        ..Default::default()
    }
    .into_client(t0())
    .unwrap();
    app.store.create_client(&client).await.unwrap();
    Flow { app, secret: secret.unwrap().expose().to_owned(), sub: user.id }
}

fn authorize_query(extra: &str) -> String {
    format!(
        "response_type=code&client_id=web&redirect_uri={}&scope=openid+profile+email&state=st%26ate&nonce=n-0S6&code_challenge={CHALLENGE}&code_challenge_method=S256{extra}",
        urlencode(REDIRECT)
    )
}

/// Runs login + consent and returns the redirect with the code.
async fn sign_in_and_approve(flow: &Flow, browser: &mut Browser, extra: &str) -> Response {
    let page = browser.get(&flow.app, &format!("/authorize?{}", authorize_query(extra))).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page_text(&page));
    let consent = browser.login(&flow.app, &page, "alice", PASSWORD).await;
    assert_eq!(consent.status, StatusCode::OK, "{}", page_text(&consent));
    assert!(page_text(&consent).contains("Allow access"), "{}", page_text(&consent));
    let done = browser.decide(&flow.app, &consent, "approve").await;
    assert_eq!(done.status, StatusCode::SEE_OTHER);
    done
}

/// A fresh browser signs in; consent is given unless already remembered. Returns the code.
async fn code_for(flow: &Flow) -> String {
    let mut browser = Browser::default();
    let page = browser.get(&flow.app, &format!("/authorize?{}", authorize_query(""))).await;
    let mut done = browser.login(&flow.app, &page, "alice", PASSWORD).await;
    if done.status == StatusCode::OK {
        done = browser.decide(&flow.app, &done, "approve").await;
    }
    redirect_params(&done)["code"].clone()
}

async fn exchange(flow: &Flow, code: &str, verifier: &str, redirect: &str) -> Response {
    let form = format!(
        "grant_type=authorization_code&code={}&redirect_uri={}&code_verifier={verifier}",
        urlencode(code),
        urlencode(redirect)
    );
    flow.app.token(Some(("web", &flow.secret)), &form).await
}

async fn refresh(flow: &Flow, refresh_token: &str, extra: &str) -> Response {
    let form =
        format!("grant_type=refresh_token&refresh_token={}{extra}", urlencode(refresh_token));
    flow.app.token(Some(("web", &flow.secret)), &form).await
}

async fn userinfo(app: &TestApp, token: &str) -> Response {
    app.request(
        Request::get("/userinfo")
            .header(header::AUTHORIZATION, format!("Bearer {token}"))
            .body(Body::empty())
            .unwrap(),
    )
    .await
}

async fn verify_id_token(app: &TestApp, jwt: &str) -> serde_json::Value {
    let (header, claims) = verify_jwt(app, jwt, "web").await;
    assert_eq!(header.alg, jsonwebtoken::Algorithm::RS256, "OIDC Core §15.1: RS256 by default");
    claims
}

#[tokio::test]
async fn rfc6749_4_1_full_flow_issues_code_then_tokens_and_an_oidc_id_token() {
    let flow = flow_app().await;
    let mut browser = Browser::default();
    let done = sign_in_and_approve(&flow, &mut browser, "").await;
    let params = redirect_params(&done);
    assert!(done.header("location").unwrap().starts_with(&format!("{REDIRECT}?")));
    // RFC 6749 §4.1.2: state echoed untouched; RFC 9207 §2: iss in the response.
    assert_eq!(params["state"], "st&ate");
    assert_eq!(params["iss"], ISSUER);
    let code = &params["code"];
    assert!(URL_SAFE_NO_PAD.decode(code).unwrap().len() >= 16, "R1.2: at least 128 bits");

    let res = exchange(&flow, code, VERIFIER, REDIRECT).await;
    assert_eq!(res.status, StatusCode::OK, "{}", page_text(&res));
    assert_eq!(res.header("cache-control"), Some("no-store"));
    let body = res.json();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["scope"], "email openid profile");
    assert!(body["refresh_token"].is_string());
    let access = body["access_token"].as_str().unwrap();

    // OIDC Core §3.1.3.7 / §2.
    let id = verify_id_token(&flow.app, body["id_token"].as_str().unwrap()).await;
    assert_eq!(id["sub"], flow.sub.as_str());
    assert_ne!(id["sub"], "alice@example.com", "sub is never the email");
    assert_eq!(id["nonce"], "n-0S6");
    assert!(id["auth_time"].as_i64().unwrap() <= id["iat"].as_i64().unwrap());
    assert!(id["sid"].is_string());
    assert_eq!(
        id["at_hash"],
        tessera_core::id_token::at_hash(access, tessera_core::keys::SigningAlg::RS256)
    );

    // OIDC Core §5.3: userinfo by scope.
    let info = userinfo(&flow.app, access).await;
    assert_eq!(info.status, StatusCode::OK);
    let info = info.json();
    assert_eq!(info["sub"], flow.sub.as_str());
    assert_eq!(info["email"], "alice@example.com");
    assert_eq!(info["name"], "Alice Example");
    assert_eq!(info["preferred_username"], "alice");
}

#[tokio::test]
async fn rfc6749_4_1_2_replayed_code_is_invalid_grant_and_revokes_its_tokens() {
    let flow = flow_app().await;
    let code = code_for(&flow).await;
    let first = exchange(&flow, &code, VERIFIER, REDIRECT).await.json();
    let access = first["access_token"].as_str().unwrap().to_owned();
    assert_eq!(userinfo(&flow.app, &access).await.status, StatusCode::OK);

    let replay = exchange(&flow, &code, VERIFIER, REDIRECT).await;
    assert_eq!(replay.status, StatusCode::BAD_REQUEST);
    assert_eq!(replay.json()["error"], "invalid_grant");
    // Everything issued from the code is revoked: the access token and the refresh token.
    let res = userinfo(&flow.app, &access).await;
    assert_eq!(res.status, StatusCode::UNAUTHORIZED);
    assert!(res.header("www-authenticate").unwrap().contains("invalid_token"));
    let res = refresh(&flow, first["refresh_token"].as_str().unwrap(), "").await;
    assert_eq!(res.json()["error"], "invalid_grant");
}

#[tokio::test]
async fn rfc7636_4_6_a_wrong_or_missing_verifier_is_refused() {
    let flow = flow_app().await;
    let code = code_for(&flow).await;
    let res = exchange(&flow, &code, &"x".repeat(43), REDIRECT).await;
    assert_eq!(res.json()["error"], "invalid_grant");
    let code = code_for(&flow).await;
    let form = format!(
        "grant_type=authorization_code&code={}&redirect_uri={}",
        urlencode(&code),
        urlencode(REDIRECT)
    );
    let res = flow.app.token(Some(("web", &flow.secret)), &form).await;
    assert_eq!(res.json()["error"], "invalid_request");
}

#[tokio::test]
async fn rfc6749_4_1_3_redirect_uri_and_client_must_match_the_code() {
    let flow = flow_app().await;
    let code = code_for(&flow).await;
    let res = exchange(&flow, &code, VERIFIER, "https://app.example/other").await;
    assert_eq!(res.json()["error"], "invalid_grant");

    let code = code_for(&flow).await;
    let other = register_client(
        &flow.app.store,
        "other",
        tessera_core::client::AuthMethod::ClientSecretBasic,
        "openid",
        "openid",
    )
    .await;
    // Let `other` use the code grant.
    let mut record =
        flow.app.store.find_client(&ClientId::parse("other").unwrap()).await.unwrap().unwrap();
    record.grant_types.push(GrantType::AuthorizationCode);
    flow.app.store.delete_client(&record.client_id).await.unwrap();
    flow.app.store.create_client(&record).await.unwrap();
    let form = format!(
        "grant_type=authorization_code&code={}&redirect_uri={}&code_verifier={VERIFIER}",
        urlencode(&code),
        urlencode(REDIRECT)
    );
    let res = flow.app.token(Some(("other", &other)), &form).await;
    assert_eq!(res.json()["error"], "invalid_grant");
    assert!(res.json()["error_description"].as_str().unwrap().contains("another client"));
}

#[tokio::test]
async fn r1_2_codes_expire_after_their_lifetime() {
    let flow = flow_app().await;
    let code = code_for(&flow).await;
    flow.app.clock.advance(flow.app.state.settings().policy.code_ttl);
    let res = exchange(&flow, &code, VERIFIER, REDIRECT).await;
    assert_eq!(res.json()["error"], "invalid_grant");
}

#[tokio::test]
async fn invariant_3_unregistered_redirect_uris_are_never_redirected_to() {
    let flow = flow_app().await;
    let attacks = [
        "https://app.example/cb/extra",
        "https://app.example/cb?x=1",
        "https://app.example/c",
        "https://app.example:8443/cb",
        "https://evil.example/cb",
        "https://app.example@evil.example/cb",
        "https://good.example@evil.example/cb",
        "https://APP.EXAMPLE/cb",
        "https://app.example/CB",
        "https://app.example/%63b",
        "https://app.example/cb%2F..%2Fevil",
        "https://app.example/cb#frag",
        "http://app.example/cb",
    ];
    for attack in attacks {
        let query = authorize_query("").replace(&urlencode(REDIRECT), &urlencode(attack));
        let res = flow.app.get(&format!("/authorize?{query}")).await;
        assert_eq!(res.status, StatusCode::BAD_REQUEST, "{attack}");
        assert!(res.header("location").is_none(), "redirected to {attack}");
    }
    // An unknown client gets no redirect either.
    let query = authorize_query("").replace("client_id=web", "client_id=ghost");
    let res = flow.app.get(&format!("/authorize?{query}")).await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST);
    assert!(res.header("location").is_none());
}

#[tokio::test]
async fn rfc6749_4_1_2_1_errors_after_the_redirect_check_are_redirected_with_state_and_iss() {
    let flow = flow_app().await;
    let cases = [
        (
            authorize_query("")
                .replace("&code_challenge_method=S256", "&code_challenge_method=plain"),
            "invalid_request",
        ),
        (
            authorize_query("")
                .replace(&format!("&code_challenge={CHALLENGE}&code_challenge_method=S256"), ""),
            "invalid_request",
        ),
        (
            authorize_query("").replace("response_type=code", "response_type=token"),
            "unsupported_response_type",
        ),
        (
            authorize_query("").replace("scope=openid+profile+email", "scope=openid+admin%3Aall"),
            "invalid_scope",
        ),
        (authorize_query("&prompt=none"), "login_required"),
    ];
    for (query, error) in cases {
        let res = flow.app.get(&format!("/authorize?{query}")).await;
        assert_eq!(res.status, StatusCode::FOUND, "{error}: {}", page_text(&res));
        let params = redirect_params(&res);
        assert_eq!(params["error"], error);
        assert_eq!(params["state"], "st&ate");
        assert_eq!(params["iss"], ISSUER);
    }
}

#[tokio::test]
async fn r2_1_consent_is_remembered_and_denial_is_access_denied() {
    let flow = flow_app().await;
    let mut browser = Browser::default();
    sign_in_and_approve(&flow, &mut browser, "").await;
    // Same scope set again: straight back with a code.
    let res = browser.get(&flow.app, &format!("/authorize?{}", authorize_query(""))).await;
    assert_eq!(res.status, StatusCode::FOUND);
    assert!(redirect_params(&res).contains_key("code"));
    // prompt=none works now that the user is signed in and has consented.
    let res =
        browser.get(&flow.app, &format!("/authorize?{}", authorize_query("&prompt=none"))).await;
    assert!(redirect_params(&res).contains_key("code"));
    // A wider scope asks again; prompt=consent always asks.
    let wider =
        authorize_query("").replace("scope=openid+profile+email", "scope=openid+orders%3Awrite");
    let res = browser.get(&flow.app, &format!("/authorize?{wider}")).await;
    assert!(page_text(&res).contains("orders:write"));
    let res =
        browser.get(&flow.app, &format!("/authorize?{}", authorize_query("&prompt=consent"))).await;
    assert!(page_text(&res).contains("Allow access"));
    let denied = browser.decide(&flow.app, &res, "deny").await;
    let params = redirect_params(&denied);
    assert_eq!(params["error"], "access_denied");
    assert_eq!(params["state"], "st&ate");
}

#[tokio::test]
async fn oidc_3_1_2_1_prompt_login_asks_for_the_password_again() {
    let flow = flow_app_with(true).await;
    let mut browser = Browser::default();
    let page = browser.get(&flow.app, &format!("/authorize?{}", authorize_query(""))).await;
    let done = browser.login(&flow.app, &page, "alice", PASSWORD).await;
    assert!(redirect_params(&done).contains_key("code"), "first-party: no consent page");
    let res =
        browser.get(&flow.app, &format!("/authorize?{}", authorize_query("&prompt=login"))).await;
    assert!(page_text(&res).contains("Sign in"));
    let done = browser.login(&flow.app, &res, "alice", PASSWORD).await;
    assert!(redirect_params(&done).contains_key("code"));
}

#[tokio::test]
async fn r4_2_failed_logins_are_generic_and_throttled() {
    let flow = flow_app().await;
    let mut browser = Browser::default();
    let page = browser.get(&flow.app, &format!("/authorize?{}", authorize_query(""))).await;
    let wrong = browser.login(&flow.app, &page, "alice", "wrong password").await;
    let unknown = browser.login(&flow.app, &page, "mallory", "wrong password").await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    let message = |r: &Response| {
        let html = page_text(r);
        let start = html.find("id=\"login-error\">").unwrap();
        html[start..start + 80].to_owned()
    };
    assert_eq!(message(&wrong), message(&unknown), "no user enumeration");
    // R4.2 (issue 17 finding 3): after five failures of this account from this source, the
    // next attempt from it has to wait.
    for _ in 0..4 {
        browser.login(&flow.app, &page, "alice", "wrong password").await;
    }
    let delayed = browser.login(&flow.app, &page, "alice", PASSWORD).await;
    assert_eq!(delayed.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(delayed.header("retry-after").is_some());
}

#[tokio::test]
async fn r4_5_forms_without_the_csrf_token_are_refused() {
    let flow = flow_app().await;
    let mut browser = Browser::default();
    let page = browser.get(&flow.app, &format!("/authorize?{}", authorize_query(""))).await;
    let request = hidden(&page_text(&page), "request");
    let res = browser
        .post(
            &flow.app,
            "/login",
            &[
                ("csrf_token", "forged"),
                ("request", &request),
                ("username", "alice"),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST);
    assert!(!browser.cookies.contains_key("__Host-tessera_session"));
    let mut stranger = Browser::default();
    let res = stranger.login(&flow.app, &page, "alice", PASSWORD).await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST, "a form posted without the CSRF cookie");
}

#[tokio::test]
async fn r4_5_pages_carry_security_headers_and_cookies_are_httponly() {
    let flow = flow_app().await;
    let mut browser = Browser::default();
    let page = browser.get(&flow.app, &format!("/authorize?{}", authorize_query(""))).await;
    let csp = page.header("content-security-policy").unwrap();
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert_eq!(page.header("x-frame-options"), Some("DENY"));
    assert_eq!(page.header("cache-control"), Some("no-store"));
    let consent = browser.login(&flow.app, &page, "alice", PASSWORD).await;
    let session_cookie = consent
        .headers
        .get_all(header::SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|c| c.starts_with("__Host-tessera_session="))
        .unwrap();
    assert!(
        session_cookie.contains("HttpOnly")
            && session_cookie.contains("SameSite=Lax")
            && session_cookie.contains("Secure"),
        "{session_cookie}"
    );
}

#[tokio::test]
async fn r1_4_refresh_tokens_rotate_and_reuse_revokes_the_family() {
    let flow = flow_app().await;
    let code = code_for(&flow).await;
    let first = exchange(&flow, &code, VERIFIER, REDIRECT).await.json();
    let r1 = first["refresh_token"].as_str().unwrap().to_owned();
    let second = refresh(&flow, &r1, "").await;
    assert_eq!(second.status, StatusCode::OK, "{}", page_text(&second));
    let second = second.json();
    let r2 = second["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(r1, r2, "rotated on every use");
    assert!(second["id_token"].is_string());
    let a2 = second["access_token"].as_str().unwrap().to_owned();
    assert_eq!(userinfo(&flow.app, &a2).await.status, StatusCode::OK);

    // Reuse of r1: invalid_grant, and r2 and every access token of the family die with it.
    let reuse = refresh(&flow, &r1, "").await;
    assert_eq!(reuse.json()["error"], "invalid_grant");
    assert_eq!(refresh(&flow, &r2, "").await.json()["error"], "invalid_grant");
    assert_eq!(userinfo(&flow.app, &a2).await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        userinfo(&flow.app, first["access_token"].as_str().unwrap()).await.status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn rfc6749_6_refresh_may_narrow_but_never_widen_the_scope() {
    let flow = flow_app().await;
    let code = code_for(&flow).await;
    let tokens = exchange(&flow, &code, VERIFIER, REDIRECT).await.json();
    let r1 = tokens["refresh_token"].as_str().unwrap().to_owned();
    let wider = refresh(&flow, &r1, "&scope=openid+orders%3Awrite").await;
    assert_eq!(wider.json()["error"], "invalid_scope");
    // The refused request left the token usable.
    let narrow = refresh(&flow, &r1, "&scope=openid").await;
    assert_eq!(narrow.status, StatusCode::OK);
    assert_eq!(narrow.json()["scope"], "openid");
}

#[tokio::test]
async fn r1_4_refresh_tokens_expire_when_idle() {
    let flow = flow_app().await;
    let code = code_for(&flow).await;
    let tokens = exchange(&flow, &code, VERIFIER, REDIRECT).await.json();
    flow.app.clock.advance(flow.app.state.settings().policy.refresh_token_idle_ttl + 1);
    let res = refresh(&flow, tokens["refresh_token"].as_str().unwrap(), "").await;
    assert_eq!(res.json()["error"], "invalid_grant");
}

#[tokio::test]
async fn public_clients_exchange_codes_with_client_id_and_verifier_only() {
    let flow = flow_app().await;
    let (client, _) = ClientRegistration {
        client_id: Some(ClientId::parse("spa").unwrap()),
        client_name: "SPA".into(),
        redirect_uris: vec![RedirectUri::parse_for_registration(REDIRECT).unwrap()],
        scope: ScopeSet::parse("openid profile email").unwrap(),
        public: true,
        first_party: true,
        ..Default::default()
    }
    .into_client(t0())
    .unwrap();
    flow.app.store.create_client(&client).await.unwrap();
    let mut browser = Browser::default();
    let page = browser
        .get(
            &flow.app,
            &format!(
                "/authorize?{}",
                authorize_query("").replace("client_id=web", "client_id=spa")
            ),
        )
        .await;
    let consent = browser.login(&flow.app, &page, "alice", PASSWORD).await;
    // RFC 8252 §8.6: a public client gets the consent page even when first-party.
    assert!(page_text(&consent).contains("Allow access"), "{}", page_text(&consent));
    let done = browser.decide(&flow.app, &consent, "approve").await;
    let code = redirect_params(&done)["code"].clone();
    let form = format!(
        "grant_type=authorization_code&client_id=spa&code={}&redirect_uri={}&code_verifier={VERIFIER}",
        urlencode(&code),
        urlencode(REDIRECT)
    );
    let res = flow.app.token(None, &form).await;
    assert_eq!(res.status, StatusCode::OK, "{}", page_text(&res));
}

#[tokio::test]
async fn rfc6750_3_1_userinfo_challenges_missing_and_bad_tokens() {
    let flow = flow_app().await;
    let res = flow.app.get("/userinfo").await;
    assert_eq!(res.status, StatusCode::UNAUTHORIZED);
    assert_eq!(res.header("www-authenticate"), Some("Bearer realm=\"tessera\""));
    let res = userinfo(&flow.app, "not-a-jwt").await;
    assert_eq!(res.status, StatusCode::UNAUTHORIZED);
    assert!(res.header("www-authenticate").unwrap().contains("error=\"invalid_token\""));
    // A client-credentials token has no openid scope.
    let secret = register_client(
        &flow.app.store,
        "svc",
        tessera_core::client::AuthMethod::ClientSecretBasic,
        "a:r",
        "a:r",
    )
    .await;
    let cc = flow.app.token(Some(("svc", &secret)), "grant_type=client_credentials").await.json();
    let res = userinfo(&flow.app, cc["access_token"].as_str().unwrap()).await;
    assert_eq!(res.status, StatusCode::FORBIDDEN);
    assert!(res.header("www-authenticate").unwrap().contains("insufficient_scope"));
    // An expired token.
    let code = code_for(&flow).await;
    let tokens = exchange(&flow, &code, VERIFIER, REDIRECT).await.json();
    flow.app.clock.advance(flow.app.state.settings().policy.access_token_ttl);
    let res = userinfo(&flow.app, tokens["access_token"].as_str().unwrap()).await;
    assert_eq!(res.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn oidc_rp_initiated_logout_ends_the_session_and_redirects_only_to_registered_uris() {
    let flow = flow_app().await;
    let mut browser = Browser::default();
    let done = sign_in_and_approve(&flow, &mut browser, "").await;
    let code = redirect_params(&done)["code"].clone();
    let tokens = exchange(&flow, &code, VERIFIER, REDIRECT).await.json();
    let hint = tokens["id_token"].as_str().unwrap();

    let bad = browser
        .get(
            &flow.app,
            &format!(
                "/logout?id_token_hint={hint}&post_logout_redirect_uri={}",
                urlencode("https://evil.example/bye")
            ),
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.header("location").is_none());

    let res = browser
        .get(
            &flow.app,
            &format!(
                "/logout?id_token_hint={hint}&post_logout_redirect_uri={}&state=s1",
                urlencode("https://app.example/bye")
            ),
        )
        .await;
    assert_eq!(res.status, StatusCode::SEE_OTHER);
    assert_eq!(res.header("location"), Some("https://app.example/bye?state=s1"));
    // The session is gone: the next request asks for the password.
    let res = browser.get(&flow.app, &format!("/authorize?{}", authorize_query(""))).await;
    assert!(page_text(&res).contains("Sign in"));
}

#[tokio::test]
async fn invariant_1_concurrent_exchanges_of_one_code_have_exactly_one_winner() {
    let flow = flow_app().await;
    for _ in 0..5 {
        let code = code_for(&flow).await;
        let (a, b) = tokio::join!(
            exchange(&flow, &code, VERIFIER, REDIRECT),
            exchange(&flow, &code, VERIFIER, REDIRECT)
        );
        let wins = [a.status, b.status].iter().filter(|s| **s == StatusCode::OK).count();
        assert_eq!(wins, 1, "{} / {}", a.status, b.status);
    }
}

#[tokio::test]
async fn invariant_1_concurrent_refreshes_of_one_token_have_exactly_one_winner() {
    let flow = flow_app().await;
    let code = code_for(&flow).await;
    let mut token = exchange(&flow, &code, VERIFIER, REDIRECT).await.json()["refresh_token"]
        .as_str()
        .unwrap()
        .to_owned();
    for _ in 0..3 {
        let (a, b) = tokio::join!(refresh(&flow, &token, ""), refresh(&flow, &token, ""));
        let winners: Vec<&Response> =
            [&a, &b].into_iter().filter(|r| r.status == StatusCode::OK).collect();
        assert_eq!(winners.len(), 1, "{} / {}", a.status, b.status);
        // The loser presented a rotated token: the family is revoked.
        let next = winners[0].json()["refresh_token"].as_str().unwrap().to_owned();
        assert_eq!(refresh(&flow, &next, "").await.json()["error"], "invalid_grant");
        let code = code_for(&flow).await;
        token = exchange(&flow, &code, VERIFIER, REDIRECT).await.json()["refresh_token"]
            .as_str()
            .unwrap()
            .to_owned();
    }
}

#[tokio::test]
async fn rfc8414_metadata_advertises_the_code_flow_truthfully() {
    let flow = flow_app().await;
    let doc = flow.app.get("/.well-known/openid-configuration").await.json();
    assert_eq!(doc["authorization_endpoint"], format!("{ISSUER}/authorize"));
    assert_eq!(doc["userinfo_endpoint"], format!("{ISSUER}/userinfo"));
    assert_eq!(doc["end_session_endpoint"], format!("{ISSUER}/logout"));
    assert_eq!(doc["response_types_supported"], serde_json::json!(["code"]));
    assert_eq!(doc["code_challenge_methods_supported"], serde_json::json!(["S256"]));
    assert_eq!(doc["authorization_response_iss_parameter_supported"], true);
    assert_eq!(
        doc["grant_types_supported"],
        serde_json::json!([
            "authorization_code",
            "client_credentials",
            "refresh_token",
            "urn:ietf:params:oauth:grant-type:device_code",
            "urn:ietf:params:oauth:grant-type:token-exchange"
        ])
    );
    // Truthful: a client may register any of these as its id_token_signed_response_alg.
    assert_eq!(
        doc["id_token_signing_alg_values_supported"],
        serde_json::json!(["RS256", "ES256", "EdDSA"])
    );
}

/// OIDC Registration §2 `id_token_signed_response_alg`: a client that registered ES256 or
/// EdDSA gets its ID tokens signed so, at the code exchange and at every refresh, verifiable
/// with the published JWKS and with `at_hash` of that algorithm (OIDC Core §3.1.3.6); one that
/// registered nothing gets RS256 (the default).
#[tokio::test]
async fn oidc_registration_2_id_token_is_signed_with_the_clients_registered_alg() {
    let app = spawn_app().await;
    crate::common::flow::create_user(&app).await;
    for (id, registered, expected) in [
        ("default-alg", None, jsonwebtoken::Algorithm::RS256),
        ("es256-alg", Some(SigningAlg::ES256), jsonwebtoken::Algorithm::ES256),
        ("eddsa-alg", Some(SigningAlg::EdDSA), jsonwebtoken::Algorithm::EdDSA),
    ] {
        let secret = app
            .register(ClientRegistration {
                id_token_signed_response_alg: registered,
                ..crate::common::flow::web_client(id)
            })
            .await
            .unwrap();
        let tokens = crate::common::flow::tokens_for(&app, (id, &secret)).await;
        let refreshed = crate::common::flow::refresh(
            &app,
            (id, &secret),
            tokens["refresh_token"].as_str().unwrap(),
            "",
        )
        .await;
        assert_eq!(refreshed.status, StatusCode::OK, "{}", page_text(&refreshed));
        for body in [tokens, refreshed.json()] {
            let (header, claims) = verify_jwt(&app, body["id_token"].as_str().unwrap(), id).await;
            assert_eq!(header.alg, expected, "{id}");
            let alg = registered.unwrap_or(SigningAlg::RS256);
            let access = body["access_token"].as_str().unwrap();
            assert_eq!(claims["at_hash"], tessera_core::id_token::at_hash(access, alg), "{id}");
        }
    }
}
