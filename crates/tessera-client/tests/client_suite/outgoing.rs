//! The outgoing-request layer against Tessera's `/userinfo` (a resource that answers RFC 6750
//! errors): the token attached, `invalid_token` answered by one new token and one retry.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tessera_client::{
    BearerLayer, ManagerConfig, Refresher, ServiceTokens, TokenManager, TokenRequest,
};
use tessera_client::{MemoryRefreshTokenStore, SecretString, TokenSource};
use tessera_core::client::AuthMethod;
use tower::{Layer, Service};

use crate::browser;
use crate::code_flow::{REDIRECT, flow_and_client};
use crate::common::{TestServer, http, now};

fn client() -> reqwest::Client {
    reqwest::Client::builder().pool_max_idle_per_host(0).build().unwrap()
}

async fn get<T: TokenSource>(
    service: &mut tessera_client::outgoing::Bearer<T, reqwest::Client>,
    url: &str,
) -> reqwest::Response {
    std::future::poll_fn(|cx| service.poll_ready(cx)).await.unwrap();
    service.call(reqwest::Request::new(reqwest::Method::GET, url.parse().unwrap())).await.unwrap()
}

#[tokio::test]
async fn rfc6750_3_1_a_revoked_token_is_replaced_once_and_the_request_retried_once() {
    let server = TestServer::start().await;
    let (flow, credentials) = flow_and_client(&server).await;
    let start = flow.start("openid", None).await.unwrap();
    let tokens = flow.callback(&browser::sign_in(start.url.as_str(), REDIRECT).await).await;
    let tokens = tokens.unwrap().tokens;
    let refresher = Refresher::new(
        http(),
        server.issuer.clone(),
        format!("{}/token", server.issuer),
        credentials.clone(),
        MemoryRefreshTokenStore::default(),
    )
    .unwrap();
    refresher.set_current(&tokens).await.unwrap();
    let mut service = BearerLayer::new(Arc::new(refresher)).layer(client());
    let userinfo = format!("{}/userinfo", server.issuer);
    assert_eq!(get(&mut service, &userinfo).await.status(), 200);

    // RFC 7009: the access token is revoked; the resource now answers invalid_token.
    let revoked = credentials
        .token_request_reply(
            &http(),
            &format!("{}/revoke", server.issuer),
            &server.issuer,
            &[("token", tokens.access_token.expose()), ("token_type_hint", "access_token")],
            now(),
        )
        .await
        .unwrap();
    assert_eq!(revoked.status, 200);
    let (token_calls, userinfo_calls) = (server.token_calls(), server.userinfo_calls());
    let response = get(&mut service, &userinfo).await;
    assert_eq!(response.status(), 200);
    assert_eq!(server.token_calls() - token_calls, 1, "one refresh");
    assert_eq!(server.userinfo_calls() - userinfo_calls, 2, "the refused call and one retry");
}

#[tokio::test]
async fn rfc6750_3_1_insufficient_scope_is_not_retried() {
    let server = TestServer::start().await;
    // A client-credentials token without `openid`: /userinfo answers 403 insufficient_scope,
    // which a new token of the same scope would not cure.
    let (id, secret) =
        server.service_client("svc", &["orders:read"], AuthMethod::ClientSecretBasic).await;
    let manager = TokenManager::builder(
        http(),
        server.issuer.clone(),
        format!("{}/token", server.issuer),
        tessera_client::ClientCredentials::secret_basic(id, secret),
    )
    .unwrap()
    .config(ManagerConfig::default())
    .build();
    let source = ServiceTokens { manager, request: TokenRequest::new(["orders:read"], None) };
    let mut service = BearerLayer::new(Arc::new(source)).layer(client());
    let response = get(&mut service, &format!("{}/userinfo", server.issuer)).await;
    assert_eq!(response.status(), 403);
    assert_eq!((server.userinfo_calls(), server.token_calls()), (1, 1));
}

/// A source whose every token the resource refuses (what a user's own source could do).
#[derive(Default)]
struct Refused(AtomicUsize);

impl TokenSource for Refused {
    async fn token(&self) -> Result<SecretString, tessera_client::Error> {
        Ok(SecretString::new("not-a-token"))
    }

    async fn replace(&self, _: &SecretString) -> Result<SecretString, tessera_client::Error> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Ok(SecretString::new("still-not-a-token"))
    }
}

#[tokio::test]
async fn rfc6750_3_1_a_token_refused_again_after_the_retry_is_not_retried_twice() {
    let server = TestServer::start().await;
    let source = Arc::new(Refused::default());
    let mut service = BearerLayer::new(source.clone()).layer(client());
    let response = get(&mut service, &format!("{}/userinfo", server.issuer)).await;
    assert_eq!(response.status(), 401);
    let challenge = response.headers()["www-authenticate"].to_str().unwrap().to_owned();
    assert!(challenge.contains("invalid_token"), "{challenge}");
    assert_eq!(server.userinfo_calls(), 2, "one retry, no more");
    assert_eq!(source.0.load(Ordering::SeqCst), 1, "one replacement");
}
