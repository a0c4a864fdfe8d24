//! The remote JWKS fetcher: SSRF guard, caching of successes and failures, single flight.

mod support;

use std::sync::Arc;
use std::time::Duration;

use support::{JWKS, TestServer};
use tessera_jose::{FetchError, JwksFetcher};

#[tokio::test]
async fn ssrf_a_loopback_jwks_uri_is_refused_without_allow_private_networks() {
    let server = TestServer::start(200, JWKS, Duration::ZERO).await;
    let fetcher = JwksFetcher::new(false);
    let port = server.port;
    assert!(matches!(fetcher.get(&server.url(), false).await, Err(FetchError::Url(_))), "http");
    for url in [
        format!("https://127.0.0.1:{port}/jwks.json"),
        format!("https://localhost:{port}/jwks.json"),
        format!("https://[::1]:{port}/jwks.json"),
        format!("https://[::ffff:127.0.0.1]:{port}/jwks.json"),
        format!("https://[::7f00:1]:{port}/jwks.json"),
        format!("https://[64:ff9b::7f00:1]:{port}/jwks.json"),
        format!("https://[2002:7f00:1::1]:{port}/jwks.json"),
        format!("https://198.18.0.1:{port}/jwks.json"),
        format!("https://240.0.0.1:{port}/jwks.json"),
        format!("https://192.0.0.8:{port}/jwks.json"),
    ] {
        let refused = fetcher.get(&url, false).await;
        assert!(matches!(refused, Err(FetchError::NotGlobal(_))), "{url}: {refused:?}");
    }
    assert_eq!(server.requests(), 0, "no request left the fetcher");
}

#[tokio::test]
async fn a_fetched_jwks_is_cached_and_a_refresh_waits_for_refetch_after() {
    let server = TestServer::start(200, JWKS, Duration::ZERO).await;
    let fetcher = JwksFetcher::new(true);
    let jwks = fetcher.get(&server.url(), false).await.unwrap();
    assert!(jwks.find("1").is_some());
    assert!(fetcher.get(&server.url(), false).await.is_ok());
    // A `kid` miss asks for a refresh, honoured at most every REFETCH_AFTER (10 s).
    assert!(fetcher.get(&server.url(), true).await.is_ok());
    assert_eq!(server.requests(), 1);
}

#[tokio::test]
async fn a_failed_fetch_is_cached_briefly() {
    let server = TestServer::start(500, "{}", Duration::ZERO).await;
    let fetcher = JwksFetcher::new(true);
    for refresh in [false, true, false] {
        assert!(matches!(fetcher.get(&server.url(), refresh).await, Err(FetchError::Http(_))));
    }
    assert_eq!(server.requests(), 1, "the failure was answered from memory");
}

#[tokio::test]
async fn concurrent_fetches_of_one_url_are_one_request() {
    let server = TestServer::start(200, JWKS, Duration::from_millis(300)).await;
    let fetcher = Arc::new(JwksFetcher::new(true));
    let mut tasks = tokio::task::JoinSet::new();
    for n in 0..16 {
        let (fetcher, url) = (fetcher.clone(), server.url());
        tasks.spawn(async move { fetcher.get(&url, n % 2 == 0).await.map(|_| ()) });
    }
    while let Some(done) = tasks.join_next().await {
        assert_eq!(done.unwrap(), Ok(()));
    }
    assert_eq!(server.requests(), 1);
}

#[tokio::test]
async fn a_document_that_is_not_a_public_jwks_is_refused() {
    let private = JWKS.replace(r#""kid":"1""#, r#""kid":"1","d":"AAAA""#);
    let symmetric = r#"{"keys":[{"kty":"oct","kid":"s"}]}"#.to_owned();
    let huge = format!(r#"{{"keys":[],"pad":"{}"}}"#, "a".repeat(70 * 1024));
    for body in [private, symmetric, huge, "not json".to_owned()] {
        let server = TestServer::start(200, &body, Duration::ZERO).await;
        let fetched = JwksFetcher::new(true).get(&server.url(), false).await;
        assert!(matches!(fetched, Err(FetchError::Document(_))), "{fetched:?}");
    }
}
