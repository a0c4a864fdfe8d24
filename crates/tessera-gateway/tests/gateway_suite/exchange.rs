//! Routes that send their upstream a token of its own audience, obtained by token exchange
//! (RFC 8693) at a real Tessera server, and one key set for several audiences.

use base64::Engine;
use tessera_core::client::{AuthMethod, ClientRegistration, ExchangePolicy};
use tessera_core::client_id::ClientId;
use tessera_core::grant_type::GrantType;
use tessera_core::scope::ScopeSet;

use crate::support::{Issuer, RunningGateway, Upstream, random, standard_toml};

const BILLING: &str = "https://billing.internal/api";

fn claims(jwt: &str) -> serde_json::Value {
    let payload = jwt.split('.').nth(1).expect("a JWT");
    let json = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).unwrap();
    serde_json::from_slice(&json).unwrap()
}

/// RFC 7519 §4.1.3: `aud` is one string or an array of them.
fn audience_is(claims: &serde_json::Value, audience: &str) -> bool {
    claims["aud"] == audience || claims["aud"] == serde_json::json!([audience])
}

fn bearer(seen: &crate::support::Seen) -> String {
    let value = seen.headers["authorization"].to_str().unwrap();
    value.strip_prefix("Bearer ").expect("a Bearer token").to_owned()
}

/// An issuer behind a recording relay, an upstream, the gateway's own client (allowed to
/// exchange tokens of `shop_id` for [`BILLING`]) and a gateway with `/billing` (delegation)
/// and `/billing-as` (impersonation) exchanging to [`BILLING`].
struct Exchanging {
    issuer: Issuer,
    upstream: Upstream,
    gateway: RunningGateway,
    shop_id: String,
    gateway_id: String,
    audience: String,
    _secret_dir: tempdir::Dir,
}

mod tempdir {
    /// A directory removed when dropped.
    pub struct Dir(pub std::path::PathBuf);
    impl Dir {
        pub fn new() -> Self {
            let path = std::env::temp_dir().join(format!("tessera-gw-x-{}", super::random()));
            std::fs::create_dir_all(&path).unwrap();
            Self(path)
        }
    }
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

impl Exchanging {
    async fn start(token_endpoint: Option<&str>) -> Exchanging {
        let issuer = Issuer::start_relayed().await;
        let upstream = Upstream::start().await;
        let shop_id = format!("shop-{}", random());
        let gateway_id = format!("gateway-{}", random());
        let secret = issuer
            .register(ClientRegistration {
                client_id: Some(ClientId::parse(&gateway_id).unwrap()),
                client_name: "gateway".into(),
                grant_types: vec![GrantType::ClientCredentials, GrantType::TokenExchange],
                scope: ScopeSet::parse("orders:read").unwrap(),
                default_scope: ScopeSet::parse("orders:read").unwrap(),
                audience: vec![BILLING.into()],
                auth_method: Some(AuthMethod::ClientSecretBasic),
                token_exchange: ExchangePolicy {
                    subject_clients: vec![shop_id.clone()],
                    subject_audiences: vec![],
                },
                ..Default::default()
            })
            .await;
        let dir = tempdir::Dir::new();
        let secret_file = dir.0.join("gateway-secret");
        std::fs::write(&secret_file, format!("{secret}\n")).unwrap();
        let endpoint =
            token_endpoint.map_or(String::new(), |e| format!("token_endpoint = \"{e}\""));
        let route = |name: &str, delegation: bool| {
            format!(
                r#"
                [[routes]]
                name = "{name}"
                path_prefix = "/{name}"
                upstream = "{{upstream}}"
                audience = "{{gateway}}/api"
                scopes = ["orders:read"]
                [routes.exchange]
                audience = "{BILLING}"
                scope = ["orders:read"]
                client_id = "{gateway_id}"
                client_secret_file = "{}"
                delegation = {delegation}
                {endpoint}
                "#,
                secret_file.display()
            )
        };
        let routes = format!("{}{}", route("billing", true), route("billing-as", false));
        let gateway =
            RunningGateway::start(&standard_toml(&issuer.url, &upstream.url, &routes)).await;
        let audience = format!("{}/api", gateway.url);
        Exchanging { issuer, upstream, gateway, shop_id, gateway_id, audience, _secret_dir: dir }
    }

    /// A client registered with `id`, allowed `orders:read` at the gateway's `/api` audience,
    /// and a token of it.
    async fn client_token(&self, id: &str) -> String {
        let secret = self.issuer.client(id, "orders:read", &[&self.audience]).await;
        self.issuer.token(id, &secret, &self.audience, "orders:read").await
    }
}

// RFC 8693 §1.1 / §4.1 and RFC 9700 §2.3: the upstream of an exchanging route receives a token
// of its own audience naming the caller as `sub` and the gateway as actor, never the caller's
// token; concurrent first requests share one exchange, later ones reuse its token.
#[tokio::test]
async fn rfc8693_exchange_route_sends_the_upstream_a_token_for_its_own_audience() {
    let x = Exchanging::start(None).await;
    let token = x.client_token(&x.shop_id.clone()).await;
    let actor_tokens_before = x.issuer.requests_to("/token", "grant_type=client_credentials");
    let calls = (0..8).map(|i| {
        let request = x.gateway.get(&format!("/billing/invoices/{i}")).bearer_auth(&token);
        tokio::spawn(async move { request.send().await.unwrap().status() })
    });
    for call in calls {
        assert_eq!(call.await.unwrap(), 200);
    }
    let exchanged = bearer(&x.upstream.last());
    assert_ne!(exchanged, token, "the client's token is not passed through");
    for seen in x.upstream.seen.lock().unwrap().iter() {
        assert_eq!(bearer(seen), exchanged, "every request got the one exchanged token");
    }
    let c = claims(&exchanged);
    assert_eq!(c["iss"], x.issuer.url);
    assert!(audience_is(&c, BILLING), "{c}");
    assert_eq!(c["sub"], x.shop_id.as_str(), "the caller stays the subject");
    assert_eq!(c["client_id"], x.gateway_id.as_str());
    assert_eq!(c["act"]["sub"], x.gateway_id.as_str(), "the gateway acts for the caller");
    assert_eq!(c["scope"], "orders:read");
    // One exchange and one actor token for eight concurrent requests (single flight).
    assert_eq!(x.issuer.requests_to("/token", "token-exchange"), 1);
    assert_eq!(
        x.issuer.requests_to("/token", "grant_type=client_credentials") - actor_tokens_before,
        1
    );
    // A later request is served from the cache.
    let again = x.gateway.get("/billing/again").bearer_auth(&token).send().await.unwrap();
    assert_eq!(again.status(), 200);
    assert_eq!(bearer(&x.upstream.last()), exchanged);
    assert_eq!(x.issuer.requests_to("/token", "token-exchange"), 1);
    // Impersonation (delegation = false): the caller as subject, no actor.
    let response = x.gateway.get("/billing-as/x").bearer_auth(&token).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let imp = claims(&bearer(&x.upstream.last()));
    assert_eq!(imp["sub"], x.shop_id.as_str());
    assert!(audience_is(&imp, BILLING), "{imp}");
    assert!(imp.get("act").is_none(), "{imp}");
    assert_eq!(x.issuer.requests_to("/token", "token-exchange"), 2);
}

// RFC 8693 §2.2.2 / RFC 6750 §3.1: a token the authorization server will not exchange (its
// client is not one the gateway may exchange for) is 403 with a challenge, and the upstream
// sees nothing.
#[tokio::test]
async fn rfc8693_2_2_2_refused_exchange_is_403_and_never_reaches_the_upstream() {
    let x = Exchanging::start(None).await;
    let stranger = format!("stranger-{}", random());
    let token = x.client_token(&stranger).await;
    let response = x.gateway.get("/billing/invoices").bearer_auth(&token).send().await.unwrap();
    assert_eq!(response.status(), 403);
    let challenge = response.headers()["www-authenticate"].to_str().unwrap().to_owned();
    assert!(challenge.contains("error=\"insufficient_scope\""), "{challenge}");
    assert!(challenge.contains("resource_metadata="), "{challenge}");
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"], "insufficient_scope");
    assert_eq!(x.upstream.count(), 0);
}

// A token endpoint that cannot be reached is the gateway's trouble, not the client's: 502
// with an OAuth-free body, quickly.
#[tokio::test]
async fn exchange_with_unreachable_token_endpoint_is_502_with_an_oauth_free_body() {
    let x = Exchanging::start(Some("http://127.0.0.1:1/token")).await;
    let token = x.client_token(&x.shop_id.clone()).await;
    let started = std::time::Instant::now();
    let response = x.gateway.get("/billing/invoices").bearer_auth(&token).send().await.unwrap();
    assert_eq!(response.status(), 502);
    assert!(response.headers().get("www-authenticate").is_none());
    let body = response.text().await.unwrap();
    assert!(!body.contains("error"), "{body}");
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    assert_eq!(x.upstream.count(), 0);
}

// Two routes with different audiences read the issuer's metadata and key set once (one
// validator's keys, shared), and each still holds its own audience (RFC 9068 §4).
#[tokio::test]
async fn two_audiences_cause_one_jwks_fetch() {
    let issuer = Issuer::start_relayed().await;
    let upstream = Upstream::start().await;
    let other = r#"
        [[routes]]
        name = "other"
        path_prefix = "/other"
        upstream = "{upstream}"
        audience = "{gateway}/other"
    "#;
    let gateway = RunningGateway::start(&standard_toml(&issuer.url, &upstream.url, other)).await;
    assert_eq!(issuer.requests_to("/jwks.json", ""), 1);
    assert_eq!(issuer.requests_to("/.well-known/oauth-authorization-server", ""), 1);
    let (api, other) = (format!("{}/api", gateway.url), format!("{}/other", gateway.url));
    let id = format!("two-{}", random());
    let secret = issuer.client(&id, "orders:read", &[&api, &other]).await;
    let for_api = issuer.token(&id, &secret, &api, "orders:read").await;
    let for_other = issuer.token(&id, &secret, &other, "orders:read").await;
    let status = |path: &'static str, token: &str| {
        let request = gateway.get(path).bearer_auth(token);
        async move { request.send().await.unwrap().status() }
    };
    assert_eq!(status("/api/x", &for_api).await, 200);
    assert_eq!(status("/other/x", &for_other).await, 200);
    assert_eq!(status("/other/x", &for_api).await, 401);
    assert_eq!(status("/api/x", &for_other).await, 401);
    assert_eq!(issuer.requests_to("/jwks.json", ""), 1);
}
