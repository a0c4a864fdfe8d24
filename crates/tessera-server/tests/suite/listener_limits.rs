//! Issue 17 finding 13: the listener's header-read timeout, request timeout and connection cap,
//! over real sockets.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tessera_core::keys::{KeyEncryptionKey, SigningAlg};
use tessera_server::config::RawConfig;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::common::*;

/// A server with `raw` as configuration on a loopback port; its address, and the task serving.
async fn serve(raw: RawConfig) -> (std::net::SocketAddr, tokio::task::JoinHandle<()>, TestDbFile) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (db_path, url) = temp_db();
    let store = tessera_store::Store::connect(&url).await.unwrap();
    let settings =
        settings_from(SigningAlg::ES256, &url, &KeyEncryptionKey::generate_encoded(), raw);
    let clock = Arc::new(tessera_core::clock::SystemClock);
    let state = tessera_server::build_state(settings, store, clock).await.unwrap();
    let task = tokio::spawn(async move {
        let _ = tessera_server::serve(state, listener).await;
    });
    (addr, task, TestDbFile(db_path))
}

/// Removes the database file when dropped.
struct TestDbFile(std::path::PathBuf);

impl Drop for TestDbFile {
    fn drop(&mut self) {
        remove_db(&self.0);
    }
}

/// Reads until the peer closes or `limit` passes; what was read, and whether it closed.
async fn read_until_closed(stream: &mut TcpStream, limit: Duration) -> (String, bool) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 1024];
    let deadline = Instant::now() + limit;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, stream.read(&mut chunk)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return (String::from_utf8_lossy(&buf).into_owned(), true),
            Ok(Ok(n)) => buf.extend_from_slice(&chunk[..n]),
            Err(_) => return (String::from_utf8_lossy(&buf).into_owned(), false),
        }
    }
}

#[tokio::test]
async fn issue17_13_a_client_sending_partial_headers_is_disconnected_after_the_timeout() {
    let (addr, task, _db) =
        serve(RawConfig { header_read_timeout_seconds: Some(1), ..Default::default() }).await;
    let mut slow = TcpStream::connect(addr).await.unwrap();
    let started = Instant::now();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Slow: ").await.unwrap();
    let (answer, closed) = read_until_closed(&mut slow, Duration::from_secs(10)).await;
    assert!(closed, "still connected after 10 s");
    assert!(started.elapsed() >= Duration::from_millis(900), "closed too early");
    assert!(!answer.contains("200 OK"), "{answer}");
    // A whole request is answered as usual.
    let mut fine = TcpStream::connect(addr).await.unwrap();
    fine.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let (answer, _) = read_until_closed(&mut fine, Duration::from_secs(10)).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    task.abort();
}

#[tokio::test]
async fn issue17_13_a_request_whose_body_does_not_arrive_gets_408() {
    let (addr, task, _db) =
        serve(RawConfig { request_timeout_seconds: Some(1), ..Default::default() }).await;
    let mut slow = TcpStream::connect(addr).await.unwrap();
    slow.write_all(
        b"POST /token HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\ngrant_type=",
    )
    .await
    .unwrap();
    let (answer, _) = read_until_closed(&mut slow, Duration::from_secs(10)).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    task.abort();
}

#[tokio::test]
async fn issue17_13_connections_beyond_the_cap_wait_until_one_closes() {
    let (addr, task, _db) =
        serve(RawConfig { max_connections: Some(1), ..Default::default() }).await;
    let request = b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n";
    let mut first = TcpStream::connect(addr).await.unwrap();
    first.write_all(request).await.unwrap();
    let mut chunk = [0u8; 1024];
    let n = first.read(&mut chunk).await.unwrap();
    assert!(String::from_utf8_lossy(&chunk[..n]).starts_with("HTTP/1.1 200"));
    // The first connection stays open (keep-alive): the second is not served meanwhile.
    let mut second = TcpStream::connect(addr).await.unwrap();
    second.write_all(request).await.unwrap();
    let waited = tokio::time::timeout(Duration::from_millis(500), second.read(&mut chunk)).await;
    assert!(waited.is_err(), "served beyond the cap");
    drop(first);
    let n = tokio::time::timeout(Duration::from_secs(10), second.read(&mut chunk))
        .await
        .expect("served once the first connection closed")
        .unwrap();
    assert!(String::from_utf8_lossy(&chunk[..n]).starts_with("HTTP/1.1 200"));
    task.abort();
}

/// Issue 16 item 5, RFC 9112 §9.6: the answer to an oversized body says `Connection: close`,
/// and the server then closes the connection cleanly, since the rest of the body was never
/// read. The request announces 10 MB and sends 20 KiB, more than the 16 KiB a form may have.
#[tokio::test]
async fn issue16_5_an_oversized_body_gets_413_with_connection_close_and_a_clean_close() {
    let (addr, task, _db) = serve(RawConfig::default()).await;
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let head = "POST /token HTTP/1.1\r\nHost: localhost\r\n\
                Content-Type: application/x-www-form-urlencoded\r\n\
                Content-Length: 10000000\r\n\r\n";
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(&[b'a'; 20 * 1024]).await.unwrap();
    let (answer, closed) = read_until_closed(&mut stream, Duration::from_secs(10)).await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.to_ascii_lowercase().contains("\r\nconnection: close\r\n"), "{answer}");
    assert!(answer.contains("invalid_request"), "{answer}");
    assert!(closed, "the server closes the connection after the 413");
    task.abort();
}

/// Issue 16 item 5: a keep-alive client (reqwest's connection pool) whose request got a 413
/// sends its next request without an error: the 413 told it not to reuse that connection.
#[tokio::test]
async fn issue16_5_a_keep_alive_client_carries_on_after_a_413() {
    let (addr, task, _db) = serve(RawConfig::default()).await;
    let client = reqwest::Client::builder().pool_max_idle_per_host(1).build().unwrap();
    let base = format!("http://{addr}");
    // A first request opens the pooled connection.
    assert_eq!(client.get(format!("{base}/healthz")).send().await.unwrap().status(), 200);
    for _ in 0..3 {
        let oversized = client
            .post(format!("{base}/token"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(vec![b'a'; 20 * 1024])
            .send()
            .await
            .expect("the 413 arrives");
        assert_eq!(oversized.status(), 413);
        assert_eq!(oversized.headers()["connection"], "close");
        let next = client.get(format!("{base}/healthz")).send().await.expect("the next request");
        assert_eq!(next.status(), 200);
    }
    task.abort();
}
