//! Per-route rate limits, shared by two gateway instances through a real Redis.

use crate::support::{RunningGateway, World, standard_toml};

/// Whether the local Redis answers; outside CI a test without it is skipped with the reason.
async fn redis_url(test: &str) -> Option<String> {
    let url =
        std::env::var("TESSERA_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let ping = async {
        let client = redis::Client::open(url.as_str())?;
        let mut conn = client.get_multiplexed_async_connection().await?;
        redis::cmd("PING").query_async::<String>(&mut conn).await
    };
    match tokio::time::timeout(std::time::Duration::from_secs(5), ping).await {
        Ok(Ok(_)) => Some(url),
        _ => {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "CI=true but {test} needs Redis at {url}"
            );
            eprintln!("skipping {test}: Redis at {url} does not answer");
            None
        }
    }
}

// Two gateways sharing Redis enforce one limit per client: 3 requests per minute in total,
// the fourth is 429 with Retry-After (RFC 6585 §4) on whichever instance it reaches.
#[tokio::test]
async fn rate_limit_is_shared_by_two_gateways_through_redis() {
    let Some(redis) = redis_url("rate_limit_is_shared_by_two_gateways_through_redis").await else {
        return;
    };
    let prefix = format!("tessera:test:gw:{}:", crate::support::random());
    let globals = format!("redis_url = \"{redis}\"\nredis_key_prefix = \"{prefix}\"\n");
    let limited = r#"
        [[routes]]
        name = "limited"
        path_prefix = "/limited"
        upstream = "{upstream}"
        audience = "{gateway}/api"
        rate_limit = { requests = 3, per_seconds = 60, key = "client_id" }
    "#;
    let w = World::start_with_globals(&globals, limited).await;
    // The second instance must accept tokens for the first one's audience.
    let second_toml = standard_toml(
        &w.issuer.url,
        &w.upstream.url,
        &limited.replace("{gateway}/api", &w.audience),
    )
    .replace("{gateway}/api", &w.audience);
    let second = RunningGateway::start(&format!("{globals}{second_toml}")).await;
    let token = w.token("orders:read").await;
    let mut statuses = Vec::new();
    for gateway in [&w.gateway, &second, &w.gateway, &second] {
        let response = gateway.get("/limited/x").bearer_auth(&token).send().await.unwrap();
        statuses.push(response.status().as_u16());
        if response.status() == 429 {
            let retry: u64 = response.headers()["retry-after"].to_str().unwrap().parse().unwrap();
            assert!((1..=60).contains(&retry), "{retry}");
        }
    }
    assert_eq!(statuses, [200, 200, 200, 429]);
    // Another route of the same client is not counted against this one.
    assert_eq!(w.gateway.get("/api/x").bearer_auth(&token).send().await.unwrap().status(), 200);
}
