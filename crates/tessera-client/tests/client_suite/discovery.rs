//! Discovery against Tessera's metadata documents.

use std::sync::Arc;
use std::time::Duration;

use tessera_client::{Discovery, Error, ManualClock, discover};

use crate::common::{TestServer, http, now};

#[tokio::test]
async fn rfc8414_metadata_of_tessera_is_found_and_names_its_endpoints() {
    let server = TestServer::start().await;
    let metadata = discover(&http(), &server.issuer).await.unwrap();
    assert_eq!(metadata.issuer, server.issuer);
    assert_eq!(metadata.endpoint("token_endpoint").unwrap(), format!("{}/token", server.issuer));
    assert!(metadata.endpoint("jwks_uri").is_ok());
    assert!(metadata.code_challenge_methods_supported.contains(&"S256".to_owned()));
}

#[tokio::test]
async fn rfc8414_3_3_metadata_for_another_issuer_is_refused() {
    // The server calls itself `localhost`; asked as 127.0.0.1, its document names another
    // issuer, and a client must not use it (its endpoints could be anyone's).
    let server = TestServer::start_as(|port| format!("http://localhost:{port}")).await;
    let asked = format!("http://127.0.0.1:{}", server.addr.port());
    let e = discover(&http(), &asked).await.unwrap_err();
    assert!(matches!(&e, Error::Discovery(m) if m.contains("not http://127.0.0.1")), "{e}");
}

#[tokio::test]
async fn discovery_of_a_plain_http_issuer_elsewhere_than_loopback_is_refused_before_any_request() {
    let e = discover(&http(), "http://auth.example.com").await.unwrap_err();
    assert!(matches!(e, Error::InsecureUrl { .. }), "{e}");
}

#[tokio::test]
async fn discovery_is_cached_and_fetched_again_on_schedule_serving_the_last_document_meanwhile() {
    let mut server = TestServer::start().await;
    let clock = Arc::new(ManualClock::at(now()));
    let discovery = Discovery::new(http(), server.issuer.clone(), clock.clone())
        .refresh_every(Duration::from_secs(60));
    let first = discovery.get().await.unwrap();
    // Cached: the server being down changes nothing within the interval.
    server.stop().await;
    assert!(Arc::ptr_eq(&first, &discovery.get().await.unwrap()));
    // Due again: the fetch fails, the last good document is served.
    clock.advance_ms(61_000);
    assert_eq!(discovery.get().await.unwrap(), first);
    // Back: the failed refresh is retried 30 s later (not by every caller), and replaces it.
    server.restart().await;
    assert!(Arc::ptr_eq(&first, &discovery.get().await.unwrap()));
    clock.advance_ms(30_000);
    let again = discovery.get().await.unwrap();
    assert!(!Arc::ptr_eq(&first, &again));
    assert_eq!(*again, *first);
}
