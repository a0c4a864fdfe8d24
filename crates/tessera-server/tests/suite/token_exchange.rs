//! Token exchange (RFC 8693): impersonation and delegation with nested `act`, the per-client
//! exchange policy, narrowing of scope and audience, and refusal of subject tokens that are
//! no longer valid.

use std::time::Duration;

use crate::common::flow;
use crate::common::*;
use axum::http::StatusCode;
use serde_json::{Value, json};
use tessera_core::client::{AccessTokenFormat, ClientRegistration, ExchangePolicy};
use tessera_core::client_id::ClientId;
use tessera_core::grant_type::GrantType;
use tessera_core::scope::ScopeSet;
use tessera_core::store::{AuditStore, UserStore};
use tessera_server::config::RawConfig;

const ORDERS: &str = "https://api.example/orders";
const BILLING: &str = "https://api.example/billing";
const LEDGER: &str = "https://api.example/ledger";
const EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const ACCESS_TOKEN: &str = "urn:ietf:params:oauth:token-type:access_token";

struct Setup {
    app: TestApp,
    sub: String,
    /// The user's web app: its tokens are for ORDERS.
    web: String,
    /// The orders API: exchanges tokens meant for ORDERS, obtains tokens for BILLING.
    orders: String,
    /// The billing API: exchanges tokens meant for BILLING, obtains opaque tokens for LEDGER.
    billing: String,
    /// May introspect.
    rs: String,
}

/// A confidential service that may use client credentials and token exchange.
fn service(id: &str, scope: &str, audience: &str, from_audience: &str) -> ClientRegistration {
    ClientRegistration {
        client_id: Some(ClientId::parse(id).unwrap()),
        client_name: id.into(),
        grant_types: vec![GrantType::ClientCredentials, GrantType::TokenExchange],
        scope: ScopeSet::parse(scope).unwrap(),
        default_scope: ScopeSet::parse(scope).unwrap(),
        audience: vec![audience.to_owned()],
        token_exchange: ExchangePolicy {
            subject_clients: vec![],
            subject_audiences: vec![from_audience.to_owned()],
        },
        ..Default::default()
    }
}

async fn setup() -> Setup {
    let app =
        spawn_app_configured(RawConfig { audit_to_database: Some(true), ..Default::default() })
            .await;
    let sub = flow::create_user(&app).await;
    let web = ClientRegistration { audience: vec![ORDERS.into()], ..flow::web_client("web") };
    let web = app.register(web).await.unwrap();
    let orders = app.register(service("orders", "profile email", BILLING, ORDERS)).await.unwrap();
    let billing = ClientRegistration {
        access_token_format: AccessTokenFormat::Opaque,
        ..service("billing", "profile", LEDGER, BILLING)
    };
    let billing = app.register(billing).await.unwrap();
    let rs = ClientRegistration {
        client_id: Some(ClientId::parse("rs").unwrap()),
        client_name: "rs".into(),
        introspection: true,
        ..Default::default()
    };
    let rs = app.register(rs).await.unwrap();
    Setup { app, sub, web, orders, billing, rs }
}

impl Setup {
    /// The user's access token, issued to `web` for ORDERS with `openid profile email`.
    async fn user_token(&self) -> String {
        let tokens = flow::tokens_for(&self.app, ("web", &self.web)).await;
        tokens["access_token"].as_str().unwrap().to_owned()
    }

    /// A client-credentials token of `client`, to act with.
    async fn own_token(&self, client: (&str, &str)) -> String {
        let res = self.app.token(Some(client), "grant_type=client_credentials").await;
        assert_eq!(res.status, StatusCode::OK, "{}", flow::page_text(&res));
        res.json()["access_token"].as_str().unwrap().to_owned()
    }

    async fn exchange(&self, client: (&str, &str), subject: &str, extra: &str) -> Response {
        let form = format!(
            "grant_type={EXCHANGE}&subject_token={}&subject_token_type={ACCESS_TOKEN}{extra}",
            urlencode(subject)
        );
        self.app.token(Some(client), &form).await
    }

    async fn introspect(&self, token: &str) -> Value {
        let form = format!("token={}", urlencode(token));
        self.app.post_form("/introspect", Some(("rs", &self.rs)), &form).await.json()
    }
}

fn actor(token: &str) -> String {
    format!("&actor_token={}&actor_token_type={ACCESS_TOKEN}", urlencode(token))
}

/// RFC 8693 §2.2.1: impersonation — the new token is the subject's, for the requested target,
/// issued to the exchanging client, with `issued_token_type` and no refresh token.
#[tokio::test]
async fn rfc8693_2_2_1_impersonation_issues_the_subjects_token_for_the_target() {
    let s = setup().await;
    let subject = s.user_token().await;
    let res = s
        .exchange(
            ("orders", &s.orders),
            &subject,
            &format!("&resource={}&scope=profile", urlencode(BILLING)),
        )
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", flow::page_text(&res));
    let body = res.json();
    assert_eq!(body["issued_token_type"], ACCESS_TOKEN);
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["scope"], "profile");
    assert!(body.get("refresh_token").is_none());
    let claims = verify_jwt(&s.app, body["access_token"].as_str().unwrap(), BILLING).await.1;
    assert_eq!(claims["sub"], s.sub.as_str());
    assert_eq!(claims["aud"], BILLING);
    assert_eq!(claims["client_id"], "orders");
    assert!(claims.get("act").is_none(), "impersonation names no actor");
    let subject_claims = verify_jwt(&s.app, &subject, ORDERS).await.1;
    assert!(claims["exp"].as_i64() <= subject_claims["exp"].as_i64(), "never outlives its subject");
}

/// RFC 8693 §4.1: delegation records the actor in `act`; exchanged again by another service,
/// the chain nests with the most recent actor outermost — in a JWT and, for an opaque token,
/// in introspection. The audit trail names subject and actor.
#[tokio::test]
async fn rfc8693_4_1_delegation_chain_is_a_nested_act_claim() {
    let s = setup().await;
    let subject = s.user_token().await;
    let orders_actor = s.own_token(("orders", &s.orders)).await;
    let res = s.exchange(("orders", &s.orders), &subject, &actor(&orders_actor)).await;
    assert_eq!(res.status, StatusCode::OK, "{}", flow::page_text(&res));
    let first = res.json()["access_token"].as_str().unwrap().to_owned();
    let claims = verify_jwt(&s.app, &first, BILLING).await.1;
    assert_eq!(claims["sub"], s.sub.as_str());
    assert_eq!(claims["act"], json!({"sub": "orders"}));
    assert_eq!(claims["scope"], "email profile", "the subject's scope the client may hold");

    let billing_actor = s.own_token(("billing", &s.billing)).await;
    let res = s.exchange(("billing", &s.billing), &first, &actor(&billing_actor)).await;
    assert_eq!(res.status, StatusCode::OK, "{}", flow::page_text(&res));
    let second = res.json()["access_token"].as_str().unwrap().to_owned();
    assert!(!second.starts_with("eyJ"), "billing's tokens are opaque");
    let described = s.introspect(&second).await;
    assert_eq!(described["active"], true);
    assert_eq!(described["sub"], s.sub.as_str());
    assert_eq!(described["aud"], json!([LEDGER]));
    assert_eq!(described["act"], json!({"sub": "billing", "act": {"sub": "orders"}}));

    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let events = s.app.store.recent_audit_events(100).await.unwrap();
        let delegated = events.iter().find(|e| {
            e.grant_type.as_deref() == Some(EXCHANGE) && e.actor.as_deref() == Some("billing")
        });
        if let Some(event) = delegated {
            assert_eq!(event.sub.as_deref(), Some(s.sub.as_str()));
            assert_eq!(event.client_id.as_deref(), Some("billing"));
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no audit event: {events:#?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// RFC 8693 §2.2.2: a target the client may not obtain is `invalid_target`; a subject token
/// its policy does not admit, or an actor token of another client, is `invalid_request`.
#[tokio::test]
async fn rfc8693_2_2_2_disallowed_audience_and_subject_are_refused() {
    let s = setup().await;
    let subject = s.user_token().await;
    let res = s
        .exchange(("orders", &s.orders), &subject, &format!("&resource={}", urlencode(LEDGER)))
        .await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST);
    assert_eq!(res.json()["error"], "invalid_target");
    let res = s.exchange(("orders", &s.orders), &subject, "&audience=elsewhere").await;
    assert_eq!(res.json()["error"], "invalid_target");

    // billing may exchange tokens meant for BILLING only, not the user's ORDERS token.
    let res = s.exchange(("billing", &s.billing), &subject, "").await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST);
    assert_eq!(res.json()["error"], "invalid_request");

    let billing_actor = s.own_token(("billing", &s.billing)).await;
    let res = s.exchange(("orders", &s.orders), &subject, &actor(&billing_actor)).await;
    assert_eq!(res.json()["error"], "invalid_request");
    assert!(
        res.json()["error_description"].as_str().unwrap().contains("not issued to this client")
    );

    // A client without the grant is `unauthorized_client`.
    let res = s.exchange(("web", &s.web), &subject, "").await;
    assert_eq!(res.json()["error"], "unauthorized_client");
}

/// RFC 8693 §2.1: an exchange may only narrow the subject's scope.
#[tokio::test]
async fn rfc8693_2_1_broadened_scope_is_invalid_scope() {
    let s = setup().await;
    let subject = s.user_token().await;
    // `orders:read` is the web client's, but this subject token does not carry it.
    let orders = ClientRegistration {
        client_id: Some(ClientId::parse("wide").unwrap()),
        ..service("wide", "profile orders:read", BILLING, ORDERS)
    };
    let wide = s.app.register(orders).await.unwrap();
    let res = s.exchange(("wide", &wide), &subject, "&scope=profile+orders:read").await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST);
    assert_eq!(res.json()["error"], "invalid_scope");
    assert!(res.json()["error_description"].as_str().unwrap().contains("only narrow"));
    // `openid` is the subject's but not the client's.
    let res = s.exchange(("orders", &s.orders), &subject, "&scope=openid").await;
    assert_eq!(res.json()["error"], "invalid_scope");
}

/// RFC 8693 §2.2.2: an expired or revoked subject token is `invalid_request`; and what was
/// derived from a user's token ends with the user's grant.
#[tokio::test]
async fn rfc8693_2_2_2_expired_or_revoked_subject_token_is_refused() {
    let s = setup().await;
    let revoked = s.user_token().await;
    let res = s.app.post_form("/revoke", Some(("web", &s.web)), &format!("token={revoked}")).await;
    assert_eq!(res.status, StatusCode::OK);
    let res = s.exchange(("orders", &s.orders), &revoked, "").await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST);
    assert_eq!(res.json()["error"], "invalid_request");

    let live = s.user_token().await;
    let res = s.exchange(("orders", &s.orders), &live, "").await;
    assert_eq!(res.status, StatusCode::OK);
    let derived = res.json()["access_token"].as_str().unwrap().to_owned();
    assert_eq!(s.introspect(&derived).await["active"], true);
    // Disabling the user revokes her grants, and with them the exchanged token.
    let user = s.app.store.find_user_by_id(&s.sub).await.unwrap().unwrap();
    s.app.store.set_user_disabled(&user.username, true, t0()).await.unwrap();
    assert_eq!(s.introspect(&derived).await["active"], false);
    s.app.store.set_user_disabled(&user.username, false, t0()).await.unwrap();

    let expiring = s.user_token().await;
    s.app.clock.advance(901);
    let res = s.exchange(("orders", &s.orders), &expiring, "").await;
    assert_eq!(res.json()["error"], "invalid_request");
    assert!(res.json()["error_description"].as_str().unwrap().contains("expired or revoked"));
}

/// RFC 8693 §2.1: a refresh token is never issued for a delegated token.
#[tokio::test]
async fn rfc8693_2_1_delegated_refresh_token_is_refused() {
    let s = setup().await;
    let subject = s.user_token().await;
    let own = s.own_token(("orders", &s.orders)).await;
    let extra = format!(
        "{}&requested_token_type=urn:ietf:params:oauth:token-type:refresh_token",
        actor(&own)
    );
    let res = s.exchange(("orders", &s.orders), &subject, &extra).await;
    assert_eq!(res.json()["error"], "invalid_request");
}

/// Discovery advertises the grant only when the feature is on; off, it is unsupported.
#[tokio::test]
async fn rfc8414_token_exchange_is_advertised_only_when_enabled() {
    let s = setup().await;
    let doc = s.app.get("/.well-known/oauth-authorization-server").await.json();
    assert!(doc["grant_types_supported"].as_array().unwrap().contains(&json!(EXCHANGE)));
    let off = spawn_app_configured(RawConfig {
        disabled_features: Some(vec!["token_exchange".into()]),
        ..Default::default()
    })
    .await;
    let doc = off.get("/.well-known/oauth-authorization-server").await.json();
    assert!(!doc["grant_types_supported"].as_array().unwrap().contains(&json!(EXCHANGE)));
    let secret = off.register(service("orders", "profile", BILLING, ORDERS)).await.unwrap();
    let form = format!("grant_type={EXCHANGE}&subject_token=x&subject_token_type={ACCESS_TOKEN}");
    let res = off.token(Some(("orders", &secret)), &form).await;
    assert_eq!(res.json()["error"], "unsupported_grant_type");
}
