//! The token manager's cost on a cache hit (criterion), then how many token requests N
//! instances × M calls make with a per-instance cache and with the shared Redis cache.
//!
//! The token endpoint here is a minimal HTTP responder on loopback that counts requests and
//! answers one fixed Bearer token: what is measured is the manager, not a server.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use criterion::{Criterion, criterion_group, criterion_main};
use tessera_client::{ClientCredentials, Http, SharedCache, TokenManager, TokenRequest};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const INSTANCES: usize = 8;
const CALLS: usize = 1000;

/// Starts the counting responder; returns its token endpoint URL and the counter.
async fn token_endpoint() -> (String, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/token", listener.local_addr().unwrap());
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else { continue };
            let counter = counter.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 8192];
                let _ = stream.read(&mut buf).await;
                counter.fetch_add(1, Ordering::SeqCst);
                let body =
                    r#"{"access_token":"bench-token","token_type":"Bearer","expires_in":3600}"#;
                let response = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(response.as_bytes()).await;
            });
        }
    });
    (url, calls)
}

fn manager(url: &str, shared: Option<SharedCache>) -> TokenManager {
    let credentials = ClientCredentials::secret_basic("bench", "bench-secret");
    let builder =
        TokenManager::builder(Http::new().unwrap(), "http://127.0.0.1", url, credentials).unwrap();
    match shared {
        Some(shared) => builder.shared(shared).build(),
        None => builder.build(),
    }
}

fn cache_hit(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (url, _) = rt.block_on(token_endpoint());
    let m = manager(&url, None);
    let request = TokenRequest::new(["orders:read"], Some("https://api.example"));
    rt.block_on(m.token(&request)).unwrap();
    c.bench_function("token_manager_cache_hit", |b| {
        b.to_async(&rt).iter(|| async { m.token(&request).await.unwrap() })
    });
}

/// N instances × M concurrent calls each: token endpoint requests with a per-instance cache,
/// then with the shared cache (if Redis answers at `TESSERA_TEST_REDIS_URL`).
fn requests_saved(_: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let request = TokenRequest::new(["orders:read"], None);
        let run = |managers: Vec<TokenManager>| {
            let request = request.clone();
            async move {
                let mut tasks = Vec::new();
                for m in &managers {
                    for _ in 0..CALLS {
                        let (m, request) = (m.clone(), request.clone());
                        tasks.push(tokio::spawn(async move { m.token(&request).await.unwrap() }));
                    }
                }
                for t in tasks {
                    t.await.unwrap();
                }
            }
        };
        let (url, calls) = token_endpoint().await;
        run((0..INSTANCES).map(|_| manager(&url, None)).collect()).await;
        let local = calls.load(Ordering::SeqCst);
        let redis_url = std::env::var("TESSERA_TEST_REDIS_URL")
            .unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
        let prefix = format!("tessera-client-bench:{}", std::process::id());
        let mut shared = Vec::new();
        for _ in 0..INSTANCES {
            match SharedCache::connect(&redis_url, &[9u8; 32], prefix.clone()).await {
                Ok(cache) => shared.push(cache),
                Err(e) => {
                    println!("requests saved: Redis unavailable ({e}); shared figure skipped");
                    break;
                }
            }
        }
        let total = INSTANCES * CALLS;
        println!(
            "requests saved: {INSTANCES} instances x {CALLS} concurrent calls = {total} calls"
        );
        println!("  no cache:               {total} token requests");
        println!("  per-instance cache:     {local} token requests");
        if shared.len() == INSTANCES {
            let (url, calls) = token_endpoint().await;
            run(shared.into_iter().map(|s| manager(&url, Some(s))).collect()).await;
            println!("  shared cache (Redis):   {} token requests", calls.load(Ordering::SeqCst));
        }
    });
}

criterion_group!(benches, cache_hit, requests_saved);
criterion_main!(benches);
