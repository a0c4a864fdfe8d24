//! The proxy: the gate's answers, what reaches the upstream, streaming and limits.

use std::time::{Duration, Instant};

use crate::support::{RunningGateway, Upstream, World, standard_toml};

fn challenge(response: &reqwest::Response) -> String {
    response.headers()["www-authenticate"].to_str().unwrap().to_owned()
}

// RFC 6750 §3 / RFC 9728 §5.1: a request without a token is answered 401 with a challenge
// that points to the protected resource metadata, and never reaches the upstream.
#[tokio::test]
async fn rfc9728_5_1_no_token_is_401_with_resource_metadata() {
    let w = World::start().await;
    let response = w.gateway.get("/api/orders").send().await.unwrap();
    assert_eq!(response.status(), 401);
    let challenge = challenge(&response);
    let metadata_url = format!("{}/.well-known/oauth-protected-resource/api", w.gateway.url);
    assert!(challenge.contains(&format!("resource_metadata=\"{metadata_url}\"")), "{challenge}");
    assert_eq!(w.upstream.count(), 0);
    // RFC 9728 §3: the document names the resource and the issuer.
    let metadata: serde_json::Value =
        reqwest::get(&metadata_url).await.unwrap().json().await.unwrap();
    assert_eq!(metadata["resource"], w.audience);
    assert_eq!(metadata["authorization_servers"][0], w.issuer.url);
}

// RFC 6750 §3.1: a token without the scope the method needs is 403 insufficient_scope,
// naming every scope needed.
#[tokio::test]
async fn rfc6750_3_1_insufficient_scope_is_403_with_challenge() {
    let w = World::start().await;
    let token = w.token("orders:read").await;
    let response = w
        .gateway
        .client()
        .post(format!("{}/api/orders", w.gateway.url))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    let challenge = challenge(&response);
    assert!(challenge.contains("error=\"insufficient_scope\""), "{challenge}");
    assert!(challenge.contains("scope=\"orders:read orders:write\""), "{challenge}");
    assert!(challenge.contains("resource_metadata="), "{challenge}");
    assert_eq!(w.upstream.count(), 0);
    // GET needs only orders:read.
    let ok = w.gateway.get("/api/orders").bearer_auth(&token).send().await.unwrap();
    assert_eq!(ok.status(), 200);
}

// RFC 8707 / RFC 9068 §4: a token for another audience is refused.
#[tokio::test]
async fn rfc9068_4_token_for_another_audience_is_401() {
    let w = World::start().await;
    let other = "https://elsewhere.example/";
    let id = format!("other-{}", crate::support::random());
    let secret = w.issuer.client(&id, "orders:read", &[other]).await;
    let token = w.issuer.token(&id, &secret, other, "orders:read").await;
    let response = w.gateway.get("/api/x").bearer_auth(&token).send().await.unwrap();
    assert_eq!(response.status(), 401);
    assert!(challenge(&response).contains("invalid_token"));
}

// Identity headers a client sends are removed; the verified ones replace them.
#[tokio::test]
async fn spoofed_identity_headers_are_stripped() {
    let w = World::start().await;
    let token = w.token("orders:read").await;
    let response = w
        .gateway
        .get("/api/orders?x=1")
        .bearer_auth(&token)
        .header("x-tessera-sub", "admin")
        .header("x-tessera-scope", "everything")
        .header("x-tessera-role", "root")
        .header("x-remote-user", "admin")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let seen = w.upstream.last();
    assert_eq!(seen.uri, "/api/orders?x=1");
    assert_eq!(seen.headers["x-tessera-sub"], w.client_id.as_str());
    assert_eq!(seen.headers["x-tessera-client-id"], w.client_id.as_str());
    assert_eq!(seen.headers["x-tessera-scope"], "orders:read");
    assert!(!seen.headers.contains_key("x-tessera-role"));
    assert!(!seen.headers.contains_key("x-remote-user"));
    // Anonymous routes strip them too: nobody is named there.
    w.gateway.get("/public/x").header("x-tessera-sub", "admin").send().await.unwrap();
    assert!(!w.upstream.last().headers.contains_key("x-tessera-sub"));
}

// RFC 9700 §2.3 (and MCP's rule against token passthrough): the client's token stays at the
// gateway unless the route says forward_token = true.
#[tokio::test]
async fn rfc9700_2_3_token_not_forwarded_by_default() {
    let w = World::start_with(
        r#"
        [[routes]]
        name = "passthrough"
        path_prefix = "/legacy"
        upstream = "{upstream}"
        audience = "{gateway}/api"
        forward_token = true
        "#,
    )
    .await;
    let token = w.token("orders:read").await;
    w.gateway.get("/api/a").bearer_auth(&token).send().await.unwrap();
    let seen = w.upstream.last();
    assert!(!seen.headers.contains_key("authorization"));
    assert!(seen.headers.contains_key("x-tessera-identity"));
    w.gateway.get("/legacy/a").bearer_auth(&token).send().await.unwrap();
    let seen = w.upstream.last();
    assert_eq!(seen.headers["authorization"], format!("Bearer {token}").as_str());
}

// The identity JWT verifies with the gateway's own JWKS and is for the upstream.
#[tokio::test]
async fn identity_jwt_verifies_with_the_gateways_jwks() {
    let w = World::start().await;
    let token = w.token("orders:read").await;
    w.gateway.get("/api/a").bearer_auth(&token).send().await.unwrap();
    let jwt = w.upstream.last().headers["x-tessera-identity"].to_str().unwrap().to_owned();
    let jwks = w.gateway.get("/_tessera/jwks.json").send().await.unwrap().text().await.unwrap();
    let verifier = tessera_jose::Verifier::new(tessera_jose::Jwks::parse(&jwks).unwrap());
    let verified = verifier
        .verify::<tessera_jose::BasicClaims>(
            &jwt,
            tessera_jose::Typ::Exactly("tessera-identity+jwt"),
            &w.gateway.url,
            crate::support::now(),
            tessera_jose::Expiry::Enforce,
        )
        .expect("the identity JWT verifies");
    assert!(verified.claims().exp <= crate::support::now() + 60);
}

// An anonymous route passes without a token.
#[tokio::test]
async fn anonymous_route_passes_without_token() {
    let w = World::start().await;
    let response = w.gateway.get("/public/page").send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), "upstream says hi");
    assert_eq!(w.upstream.last().uri, "/public/page");
}

// RFC 9110 §7.6.1: hop-by-hop fields are removed both ways; Forwarded / X-Forwarded-* are set.
#[tokio::test]
async fn rfc9110_7_6_1_hop_by_hop_removed_and_forwarded_set() {
    let w = World::start().await;
    let response = w
        .gateway
        .get("/public/x")
        .header("connection", "x-client-hop")
        .header("x-client-hop", "1")
        .header("x-forwarded-for", "6.6.6.6")
        .send()
        .await
        .unwrap();
    assert!(!response.headers().contains_key("x-upstream-hop"));
    let seen = w.upstream.last();
    assert!(!seen.headers.contains_key("x-client-hop"));
    assert_eq!(seen.headers["x-forwarded-for"], "127.0.0.1");
    let forwarded = seen.headers["forwarded"].to_str().unwrap();
    assert!(forwarded.starts_with("for=127.0.0.1;proto=http;host="), "{forwarded}");
    // RFC 9110 §7.2: the upstream is addressed by its own name and port.
    let upstream = w.upstream.url.trim_start_matches("http://");
    assert_eq!(seen.headers["host"], upstream);
    assert_ne!(seen.headers["host"], w.gateway.url.trim_start_matches("http://"));
}

// An unreachable upstream is a quick 502 whose body says nothing about OAuth.
#[tokio::test]
async fn upstream_down_is_502_without_oauth_body() {
    let issuer = crate::support::Issuer::start().await;
    // A port that was free a moment ago: nothing listens there.
    let dead = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap();
    let gateway =
        RunningGateway::start(&standard_toml(&issuer.url, &format!("http://{dead}"), "")).await;
    let started = Instant::now();
    let response = gateway.get("/public/x").send().await.unwrap();
    assert_eq!(response.status(), 502);
    assert!(!response.headers().contains_key("www-authenticate"));
    let body = response.text().await.unwrap();
    assert!(!body.contains("error") && !body.contains("token"), "{body}");
    assert!(started.elapsed() < Duration::from_secs(3), "{:?}", started.elapsed());
}

// An upstream that does not answer within response_header_timeout_ms is 504, no hang.
#[tokio::test]
async fn slow_upstream_is_504_after_the_header_timeout() {
    let w = World::start_with(SLOW_ROUTE).await;
    let started = Instant::now();
    let response = w.gateway.get("/slow").send().await.unwrap();
    assert_eq!(response.status(), 504);
    assert!(started.elapsed() < Duration::from_millis(2500), "{:?}", started.elapsed());
}

const SLOW_ROUTE: &str = r#"
    [[routes]]
    name = "slow"
    path_prefix = "/slow"
    upstream = "{upstream}"
    anonymous = true
"#;

// Request bodies over max_body_bytes are refused: declared (Content-Length) at once, streamed
// ones when they pass the limit.
#[tokio::test]
async fn body_over_the_limit_is_413() {
    let w = World::start().await;
    let small = w
        .gateway
        .client()
        .post(format!("{}/public/u", w.gateway.url))
        .body(vec![b'a'; 1000])
        .send()
        .await
        .unwrap();
    assert_eq!(small.status(), 200);
    assert_eq!(w.upstream.last().body.len(), 1000);
    let before = w.upstream.count();
    let large = w
        .gateway
        .client()
        .post(format!("{}/public/u", w.gateway.url))
        .body(vec![b'a'; 2000])
        .send()
        .await
        .unwrap();
    assert_eq!(large.status(), 413);
    assert_eq!(w.upstream.count(), before);
    // Chunked (no Content-Length): cut when it passes the limit.
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    tokio::spawn(async move {
        for _ in 0..4 {
            let _ = tx.send(Ok::<_, std::io::Error>(bytes::Bytes::from(vec![b'b'; 600]))).await;
        }
    });
    let stream = futures_stream(rx);
    let chunked = w
        .gateway
        .client()
        .post(format!("{}/public/u", w.gateway.url))
        .body(reqwest::Body::wrap(stream))
        .send()
        .await
        .unwrap();
    assert_eq!(chunked.status(), 413);
}

fn futures_stream(
    rx: tokio::sync::mpsc::Receiver<Result<bytes::Bytes, std::io::Error>>,
) -> impl http_body::Body<Data = bytes::Bytes, Error = std::io::Error> + Send + Sync + 'static {
    struct B(tokio::sync::mpsc::Receiver<Result<bytes::Bytes, std::io::Error>>);
    impl http_body::Body for B {
        type Data = bytes::Bytes;
        type Error = std::io::Error;
        fn poll_frame(
            mut self: std::pin::Pin<&mut Self>,
            cx: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Option<Result<http_body::Frame<bytes::Bytes>, std::io::Error>>>
        {
            self.0.poll_recv(cx).map(|c| c.map(|r| r.map(http_body::Frame::data)))
        }
    }
    B(rx)
}

// Server-Sent Events are streamed: the first event reaches the client while the upstream is
// still writing (it sends the second a second later).
#[tokio::test]
async fn sse_first_event_arrives_before_the_upstream_finishes() {
    let w = World::start_with(&SLOW_ROUTE.replace("slow", "sse")).await;
    let gateway = &w.gateway;
    let started = Instant::now();
    let mut response = gateway.get("/sse").send().await.unwrap();
    assert_eq!(response.status(), 200);
    let first = response.chunk().await.unwrap().unwrap();
    let first_at = started.elapsed();
    assert_eq!(&first[..], b"data: first\n\n");
    assert!(first_at < Duration::from_millis(700), "first event after {first_at:?}");
    let second = response.chunk().await.unwrap().unwrap();
    assert_eq!(&second[..], b"data: second\n\n");
    assert!(started.elapsed() >= Duration::from_millis(900));
}

#[tokio::test]
async fn healthz_readyz_and_metrics_answer() {
    let w = World::start().await;
    assert_eq!(w.gateway.get("/healthz").send().await.unwrap().status(), 200);
    assert_eq!(w.gateway.get("/readyz").send().await.unwrap().status(), 200);
    w.gateway.get("/api/x").send().await.unwrap();
    let metrics = w.gateway.get("/metrics").send().await.unwrap().text().await.unwrap();
    assert!(
        metrics
            .contains("tessera_gateway_requests_total{route=\"api\",decision=\"unauthenticated\"}"),
        "{metrics}"
    );
}

// /readyz is 503 while an issuer's keys cannot be loaded, and protected routes answer 503
// (not 401: the token was never judged).
#[tokio::test]
async fn readyz_is_503_until_issuer_keys_load() {
    let upstream = Upstream::start().await;
    let dead = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap();
    let toml = standard_toml(&format!("http://{dead}"), &upstream.url, "");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let config =
        tessera_gateway::GatewayConfig::from_toml(&toml.replace("{gateway}", &url)).unwrap();
    let gateway = tessera_gateway::Gateway::new(config).await.unwrap();
    let task = tokio::spawn(gateway.serve(listener, std::future::pending()));
    let client = reqwest::Client::new();
    let ready = client.get(format!("{url}/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 503);
    let api = client.get(format!("{url}/api/x")).send().await.unwrap();
    assert_eq!(api.status(), 503);
    let public = client.get(format!("{url}/public/x")).send().await.unwrap();
    assert_eq!(public.status(), 200);
    task.abort();
}
