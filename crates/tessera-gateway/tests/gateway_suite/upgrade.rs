//! `Upgrade` (RFC 9110 §7.8): passed through on routes with `websocket = true` only.

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::support::{RunningGateway, World, standard_toml};

const HANDSHAKE: &str = "GET /ws/chat HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\n\
                         Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\
                         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";

/// An upstream that switches protocols when asked, then echoes bytes; it records whether the
/// request it got asked for the upgrade.
async fn switching_upstream() -> (String, tokio::sync::oneshot::Receiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let head = read_head(&mut socket).await;
        let _ = tx.send(head.clone());
        if !head.to_ascii_lowercase().contains("upgrade: websocket") {
            let _ = socket.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nno").await;
            return;
        }
        socket
            .write_all(b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
            .await
            .unwrap();
        let mut buf = [0u8; 64];
        while let Ok(n) = socket.read(&mut buf).await {
            if n == 0 || socket.write_all(&buf[..n]).await.is_err() {
                return;
            }
        }
    });
    (url, rx)
}

async fn read_head(socket: &mut TcpStream) -> String {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if socket.read(&mut byte).await.unwrap() == 0 {
            break;
        }
        head.push(byte[0]);
    }
    String::from_utf8_lossy(&head).into_owned()
}

// RFC 9110 §7.8: on a websocket route the handshake reaches the upstream, its 101 the client,
// and bytes then flow both ways.
#[tokio::test]
async fn rfc9110_7_8_websocket_upgrade_passes_on_websocket_routes() {
    let w = World::start().await;
    let (upstream, seen) = switching_upstream().await;
    let route = format!(
        "[[routes]]\nname = \"ws\"\npath_prefix = \"/ws\"\nupstream = \"{upstream}\"\nanonymous = true\nwebsocket = true"
    );
    let gateway =
        RunningGateway::start(&standard_toml(&w.issuer.url, &w.upstream.url, &route)).await;
    let mut socket = TcpStream::connect(gateway.url.trim_start_matches("http://")).await.unwrap();
    socket.write_all(HANDSHAKE.as_bytes()).await.unwrap();
    let answer = read_head(&mut socket).await;
    assert!(answer.starts_with("HTTP/1.1 101"), "{answer}");
    assert!(seen.await.unwrap().to_ascii_lowercase().contains("upgrade: websocket"));
    socket.write_all(b"ping").await.unwrap();
    let mut echo = [0u8; 4];
    socket.read_exact(&mut echo).await.unwrap();
    assert_eq!(&echo, b"ping");
}

// Without `websocket = true`, Upgrade is a hop-by-hop field (RFC 9110 §7.6.1) and is removed:
// the upstream sees a plain request.
#[tokio::test]
async fn upgrade_is_removed_on_other_routes() {
    let w = World::start().await;
    let (upstream, seen) = switching_upstream().await;
    let route = format!(
        "[[routes]]\nname = \"ws\"\npath_prefix = \"/ws\"\nupstream = \"{upstream}\"\nanonymous = true"
    );
    let gateway =
        RunningGateway::start(&standard_toml(&w.issuer.url, &w.upstream.url, &route)).await;
    let mut socket = TcpStream::connect(gateway.url.trim_start_matches("http://")).await.unwrap();
    socket.write_all(HANDSHAKE.as_bytes()).await.unwrap();
    let answer = read_head(&mut socket).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(!seen.await.unwrap().to_ascii_lowercase().contains("upgrade"));
}
