//! Who may learn about a token or use it (issue 17 findings 6 and 7): introspection callers
//! must authenticate and see refresh tokens only if they are their client; `/userinfo` accepts
//! only tokens meant for the issuer.

use axum::http::StatusCode;
use serde_json::{Value, json};
use tessera_core::client::{AuthMethod, ClientRegistration};
use tessera_core::client_id::ClientId;
use tessera_core::grant_type::GrantType;
use tessera_core::scope::ScopeSet;
use tessera_core::store::ClientStore;

use crate::common::flow::{self, page_text};
use crate::common::*;

const ORDERS: &str = "https://api.example/orders";

fn resource_server(id: &str) -> ClientRegistration {
    ClientRegistration {
        client_id: Some(ClientId::parse(id).unwrap()),
        client_name: id.into(),
        scope: ScopeSet::parse("a:r").unwrap(),
        default_scope: ScopeSet::parse("a:r").unwrap(),
        auth_method: Some(AuthMethod::ClientSecretBasic),
        introspection: true,
        ..Default::default()
    }
}

async fn introspect(app: &TestApp, caller: (&str, &str), token: &str) -> Value {
    let form = format!("token={}", urlencode(token));
    let res = app.post_form("/introspect", Some(caller), &form).await;
    assert_eq!(res.status, StatusCode::OK, "{}", page_text(&res));
    res.json()
}

// RFC 7662 §2.1 / §4: the introspection endpoint requires its callers to authenticate. A
// public client authenticates nothing, so even a record that says it may introspect (written
// before registration refused it) is refused.
#[tokio::test]
async fn rfc7662_4_a_public_client_may_not_introspect() {
    let app = spawn_app().await;
    let public = ClientRegistration {
        public: true,
        introspection: true,
        grant_types: vec![GrantType::AuthorizationCode],
        ..flow::web_client("spa")
    };
    assert!(public.into_client(t0()).is_err(), "registration refuses it");

    let (mut client, _) = ClientRegistration {
        public: true,
        grant_types: vec![GrantType::AuthorizationCode],
        ..flow::web_client("spa")
    }
    .into_client(t0())
    .unwrap();
    client.introspection = true;
    app.store.create_client(&client).await.unwrap();
    let svc = app.client("svc", AuthMethod::ClientSecretBasic, "a:r", "a:r").await;
    let token = app.token(Some(("svc", &svc)), "grant_type=client_credentials").await.json();
    let form = format!("client_id=spa&token={}", token["access_token"].as_str().unwrap());
    let res = app.post_form("/introspect", None, &form).await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST, "{}", page_text(&res));
    assert_eq!(res.json()["error"], "unauthorized_client");
}

// RFC 7662 §2.2: the server may answer `active: false` to a caller that is not allowed to know
// about a token. A refresh token is for its client and this server only (RFC 6749 §1.5): a
// resource server introspecting it learns nothing (issue 17 finding 6).
#[tokio::test]
async fn rfc7662_2_2_refresh_tokens_are_described_only_to_their_client() {
    let app = spawn_app().await;
    flow::create_user(&app).await;
    let web = app
        .register(ClientRegistration { introspection: true, ..flow::web_client("web") })
        .await
        .unwrap();
    let rs = app.register(resource_server("rs")).await.unwrap();
    let tokens = flow::tokens_for(&app, ("web", &web)).await;
    let refresh = tokens["refresh_token"].as_str().unwrap();
    assert_eq!(introspect(&app, ("rs", &rs), refresh).await, json!({ "active": false }));
    let own = introspect(&app, ("web", &web), refresh).await;
    assert_eq!(own["active"], true);
    assert_eq!(own["token_type"], "refresh_token");
    // Access tokens are still described to resource servers.
    let access = tokens["access_token"].as_str().unwrap();
    assert_eq!(introspect(&app, ("rs", &rs), access).await["active"], true);
}

// RFC 9068 §4: a resource server checks that `aud` names it. A token restricted by RFC 8707 to
// another resource must not read the user's profile at `/userinfo` (issue 17 finding 7); a
// token without a restriction (audience = the issuer) still does.
#[tokio::test]
async fn rfc9068_4_userinfo_refuses_a_token_meant_for_another_audience() {
    let app = spawn_app().await;
    flow::create_user(&app).await;
    let api = app
        .register(ClientRegistration {
            audience: vec![ORDERS.to_owned()],
            ..flow::web_client("api-web")
        })
        .await
        .unwrap();
    let tokens = flow::tokens_for(&app, ("api-web", &api)).await;
    let res = app.userinfo(tokens["access_token"].as_str().unwrap()).await;
    assert_eq!(res.status, StatusCode::UNAUTHORIZED, "{}", page_text(&res));
    assert_eq!(res.json()["error"], "invalid_token");
    assert!(res.header("www-authenticate").unwrap().contains("error=\"invalid_token\""));

    let web = app.register(flow::web_client("web")).await.unwrap();
    let tokens = flow::tokens_for(&app, ("web", &web)).await;
    let res = app.userinfo(tokens["access_token"].as_str().unwrap()).await;
    assert_eq!(res.status, StatusCode::OK, "{}", page_text(&res));
}

// RFC 7662 §2.2: a resource server registered with an introspection audience learns only about
// tokens meant for it (`aud` includes that resource, RFC 8707); any other token is inactive to
// it (issue 17 finding 6).
#[tokio::test]
async fn rfc7662_2_2_an_introspection_audience_hides_tokens_for_other_resources() {
    const BILLING: &str = "https://api.example/billing";
    let app = spawn_app().await;
    let rs = app
        .register(ClientRegistration {
            introspection_audience: Some(ORDERS.to_owned()),
            ..resource_server("orders-rs")
        })
        .await
        .unwrap();
    let api = app
        .register(ClientRegistration {
            audience: vec![ORDERS.to_owned(), BILLING.to_owned()],
            ..resource_server("api")
        })
        .await
        .unwrap();
    let token_for = |resource: &'static str| {
        let app = &app;
        let api = api.clone();
        async move {
            let form = format!("grant_type=client_credentials&resource={}", urlencode(resource));
            let res = app.token(Some(("api", &api)), &form).await;
            assert_eq!(res.status, StatusCode::OK, "{}", page_text(&res));
            res.json()["access_token"].as_str().unwrap().to_owned()
        }
    };
    let billing = token_for(BILLING).await;
    assert_eq!(introspect(&app, ("orders-rs", &rs), &billing).await, json!({ "active": false }));
    let orders = token_for(ORDERS).await;
    let answer = introspect(&app, ("orders-rs", &rs), &orders).await;
    assert_eq!(answer["active"], true);
    assert_eq!(answer["aud"], json!([ORDERS]));
}

// RFC 9068 §4 with `userinfo_audience`: an operator may name the UserInfo endpoint as a
// resource of its own; tokens restricted to it are accepted there, others still are not.
#[tokio::test]
async fn rfc9068_4_userinfo_accepts_the_configured_userinfo_audience() {
    const USERINFO: &str = "https://auth.example/userinfo";
    let app = spawn_app_configured(tessera_server::config::RawConfig {
        userinfo_audience: Some(USERINFO.to_owned()),
        ..Default::default()
    })
    .await;
    flow::create_user(&app).await;
    let both = ClientRegistration {
        audience: vec![USERINFO.to_owned(), ORDERS.to_owned()],
        ..flow::web_client("web")
    };
    let web = app.register(both).await.unwrap();
    let code = flow::code_for(&app, "web", "").await;
    let res =
        flow::exchange(&app, ("web", &web), &code, &format!("&resource={}", urlencode(USERINFO)))
            .await;
    let access = res.json()["access_token"].as_str().unwrap().to_owned();
    assert_eq!(app.userinfo(&access).await.status, StatusCode::OK);
    let code = flow::code_for(&app, "web", "").await;
    let res =
        flow::exchange(&app, ("web", &web), &code, &format!("&resource={}", urlencode(ORDERS)))
            .await;
    let access = res.json()["access_token"].as_str().unwrap().to_owned();
    assert_eq!(app.userinfo(&access).await.status, StatusCode::UNAUTHORIZED);
}
