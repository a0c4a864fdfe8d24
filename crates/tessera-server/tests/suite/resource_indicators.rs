//! Resource indicators (RFC 8707): `resource` at `/token` and `/authorize` chooses the
//! audience of access tokens among the client's registered resources.

use crate::common::flow::{self, page_text, redirect_params};
use crate::common::*;
use axum::http::StatusCode;
use serde_json::{Value, json};
use tessera_core::client::ClientRegistration;
use tessera_core::client_id::ClientId;
use tessera_core::scope::ScopeSet;

const ORDERS: &str = "https://api.example/orders";
const BILLING: &str = "https://api.example/billing";

struct Setup {
    app: TestApp,
    /// Client credentials, audience [ORDERS, BILLING].
    api: String,
    /// Client credentials, no registered audience.
    svc: String,
    /// A first-party web client, audience [ORDERS, BILLING].
    web: String,
    /// May introspect.
    rs: String,
}

fn resources(list: &[&str]) -> String {
    list.iter().map(|r| format!("&resource={}", urlencode(r))).collect()
}

async fn setup() -> Setup {
    let app = spawn_app().await;
    flow::create_user(&app).await;
    let audience = vec![ORDERS.to_owned(), BILLING.to_owned()];
    let cc = |id: &str| ClientRegistration {
        client_id: Some(ClientId::parse(id).unwrap()),
        client_name: id.into(),
        scope: ScopeSet::parse("orders:read").unwrap(),
        default_scope: ScopeSet::parse("orders:read").unwrap(),
        ..Default::default()
    };
    let api = app.register(ClientRegistration { audience: audience.clone(), ..cc("api") }).await;
    let svc = app.register(cc("svc")).await;
    let rs = app.register(ClientRegistration { introspection: true, ..cc("rs") }).await;
    // `web` introspects its own refresh tokens: nobody else learns about them.
    let web = ClientRegistration { audience, introspection: true, ..flow::web_client("web") };
    let web = app.register(web).await;
    Setup { app, api: api.unwrap(), svc: svc.unwrap(), web: web.unwrap(), rs: rs.unwrap() }
}

impl Setup {
    fn web(&self) -> (&str, &str) {
        ("web", &self.web)
    }

    async fn cc(&self, client: (&str, &str), resource: &[&str]) -> Response {
        let form = format!("grant_type=client_credentials{}", resources(resource));
        self.app.token(Some(client), &form).await
    }

    async fn introspection(&self, token: &str) -> Value {
        let form = format!("token={}", urlencode(token));
        self.app.post_form("/introspect", Some(("rs", &self.rs)), &form).await.json()
    }

    /// Introspects a refresh token as its own client.
    async fn refresh_introspection(&self, token: &str) -> Value {
        let form = format!("token={}", urlencode(token));
        self.app.post_form("/introspect", Some(self.web()), &form).await.json()
    }
}

/// The claims of an access token in a 200 response, verified for `audience`.
async fn access_claims(app: &TestApp, res: &Response, audience: &str) -> Value {
    assert_eq!(res.status, StatusCode::OK, "{}", page_text(res));
    verify_jwt(app, res.json()["access_token"].as_str().unwrap(), audience).await.1
}

fn assert_invalid_target(res: &Response) {
    assert_eq!(res.status, StatusCode::BAD_REQUEST, "{}", page_text(res));
    assert_eq!(res.json()["error"], "invalid_target");
    assert_eq!(res.header("cache-control"), Some("no-store"));
}

#[tokio::test]
async fn rfc8707_2_client_credentials_resource_must_be_a_registered_audience() {
    let s = setup().await;
    let api = ("api", s.api.as_str());
    // One resource: the token is for it alone.
    let res = s.cc(api, &[ORDERS]).await;
    assert_eq!(access_claims(&s.app, &res, ORDERS).await["aud"], ORDERS);
    let res = s.cc(api, &[BILLING]).await;
    assert_eq!(access_claims(&s.app, &res, BILLING).await["aud"], BILLING);
    // Several `resource` parameters are allowed (RFC 8707 §2; the one repeatable parameter).
    let res = s.cc(api, &[ORDERS, BILLING]).await;
    assert_eq!(access_claims(&s.app, &res, ORDERS).await["aud"], json!([ORDERS, BILLING]));
    let res = s.cc(api, &[BILLING, BILLING]).await;
    assert_eq!(access_claims(&s.app, &res, BILLING).await["aud"], BILLING);
    // None asked: every registered resource.
    let res = s.cc(api, &[]).await;
    assert_eq!(access_claims(&s.app, &res, BILLING).await["aud"], json!([ORDERS, BILLING]));

    // Issue 15: compared in the MCP canonical form, a trailing slash or an uppercase host
    // names the same resource; the token carries the audience as registered.
    let res = s.cc(api, &["https://API.example/orders/"]).await;
    assert_eq!(access_claims(&s.app, &res, ORDERS).await["aud"], ORDERS);

    // Not registered, relative, or with a fragment: invalid_target (RFC 8707 §2).
    for bad in [
        &["https://evil.example/api"][..],
        &[ORDERS, "https://evil.example/api"],
        &["https://api.example/orders/more"],
        &["https://api.example"],
        &["/orders"],
        &["orders"],
        &["https://api.example/orders#frag"],
    ] {
        let res = s.cc(api, bad).await;
        assert_invalid_target(&res);
        assert!(res.json()["error_description"].is_string(), "{bad:?}");
    }
    // A client without registered resources gets tokens for the issuer, and no other.
    let svc = ("svc", s.svc.as_str());
    let res = s.cc(svc, &[]).await;
    assert_eq!(access_claims(&s.app, &res, ISSUER).await["aud"], ISSUER);
    assert_invalid_target(&s.cc(svc, &[ORDERS]).await);
    assert_invalid_target(&s.cc(svc, &[ISSUER]).await);
}

#[tokio::test]
async fn rfc8707_2_introspection_reports_the_narrowed_audience() {
    let s = setup().await;
    let res = s.cc(("api", &s.api), &[BILLING]).await;
    let token = res.json()["access_token"].as_str().unwrap().to_owned();
    assert_eq!(s.introspection(&token).await["aud"], json!([BILLING]));
}

#[tokio::test]
async fn rfc8707_2_resource_at_authorize_narrows_the_grant_and_the_code_exchange_carries_it() {
    let s = setup().await;
    let code = flow::code_for(&s.app, "web", &resources(&[ORDERS])).await;
    let res = flow::exchange(&s.app, s.web(), &code, "").await;
    assert_eq!(access_claims(&s.app, &res, ORDERS).await["aud"], ORDERS);
    let tokens = res.json();
    let r1 = tokens["refresh_token"].as_str().unwrap();
    assert_eq!(s.refresh_introspection(r1).await["aud"], json!([ORDERS]));
    // The ID token is for the client, whatever the resource (OIDC Core §2).
    verify_jwt(&s.app, tokens["id_token"].as_str().unwrap(), "web").await;

    // A refresh asking for a resource outside the grant: invalid_target, and the refresh
    // token stays usable (the check runs before the rotation).
    let res = flow::refresh(&s.app, s.web(), r1, &resources(&[BILLING])).await;
    assert_invalid_target(&res);
    let res = flow::refresh(&s.app, s.web(), r1, &resources(&[ORDERS, BILLING])).await;
    assert_invalid_target(&res);
    assert_eq!(s.refresh_introspection(r1).await["active"], true);
    let res = flow::refresh(&s.app, s.web(), r1, "").await;
    assert_eq!(access_claims(&s.app, &res, ORDERS).await["aud"], ORDERS);
    // The exchange of a narrowed grant cannot widen it back either.
    let code = flow::code_for(&s.app, "web", &resources(&[ORDERS])).await;
    let res = flow::exchange(&s.app, s.web(), &code, &resources(&[BILLING])).await;
    assert_invalid_target(&res);
}

#[tokio::test]
async fn rfc8707_2_2_token_requests_may_narrow_the_grant_audience_further() {
    let s = setup().await;
    // No resource at /authorize: the grant is for every registered resource.
    let code = flow::code_for(&s.app, "web", "").await;
    let res = flow::exchange(&s.app, s.web(), &code, &resources(&[BILLING])).await;
    assert_eq!(access_claims(&s.app, &res, BILLING).await["aud"], BILLING);
    let r1 = res.json()["refresh_token"].as_str().unwrap().to_owned();
    assert_eq!(s.refresh_introspection(&r1).await["aud"], json!([ORDERS, BILLING]));

    // Refresh without resource: the grant's audience; with one: narrowed.
    let res = flow::refresh(&s.app, s.web(), &r1, "").await;
    assert_eq!(access_claims(&s.app, &res, ORDERS).await["aud"], json!([ORDERS, BILLING]));
    let r2 = res.json()["refresh_token"].as_str().unwrap().to_owned();
    let res = flow::refresh(&s.app, s.web(), &r2, &resources(&[ORDERS])).await;
    assert_eq!(access_claims(&s.app, &res, ORDERS).await["aud"], ORDERS);
    let r3 = res.json()["refresh_token"].as_str().unwrap().to_owned();
    // Narrowing one token does not narrow the grant.
    let res = flow::refresh(&s.app, s.web(), &r3, &resources(&[BILLING])).await;
    assert_eq!(access_claims(&s.app, &res, BILLING).await["aud"], BILLING);
    // Outside the grant: refused, token kept.
    let r4 = res.json()["refresh_token"].as_str().unwrap().to_owned();
    assert_invalid_target(&flow::refresh(&s.app, s.web(), &r4, &resources(&[ISSUER])).await);
    assert_eq!(flow::refresh(&s.app, s.web(), &r4, "").await.status, StatusCode::OK);
}

#[tokio::test]
async fn rfc8707_2_a_disallowed_resource_at_authorize_is_an_invalid_target_error_redirect() {
    let s = setup().await;
    for bad in ["https://evil.example/api", "orders"] {
        let query = flow::authorize_query("web", &resources(&[bad]));
        let res = s.app.get(&format!("/authorize?{query}")).await;
        assert_eq!(res.status, StatusCode::FOUND, "{bad}: {}", page_text(&res));
        let params = redirect_params(&res);
        assert_eq!(params["error"], "invalid_target", "{bad}");
        assert_eq!(params["state"], "xyz");
        assert_eq!(params["iss"], ISSUER);
    }
}
