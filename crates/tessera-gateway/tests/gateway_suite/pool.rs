//! The upstream connection pool (`tessera_gateway::upstream`): what is reused, and when.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Full};
use hyper_util::rt::TokioIo;
use tessera_gateway::config::{Limits, UpstreamTls};
use tessera_gateway::upstream::{self, ProxyBody, UpstreamClient};

use crate::support::ChannelBody;

/// An HTTP/1.1 upstream counting the connections it accepted. `/stream` answers with a body
/// whose second chunk comes a second after the first; anything else with `ok`. With
/// `one_request`, it closes every connection after its first answer (without saying so).
async fn counting_upstream(one_request: bool) -> (String, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let accepted = Arc::new(AtomicUsize::new(0));
    let counter = accepted.clone();
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            counter.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let service = hyper::service::service_fn(|request: http::Request<_>| async move {
                    let body: ProxyBody = if request.uri().path() == "/stream" {
                        let (tx, rx) = tokio::sync::mpsc::channel(2);
                        tokio::spawn(async move {
                            let _ = tx.send(Bytes::from_static(b"first")).await;
                            tokio::time::sleep(Duration::from_secs(1)).await;
                            let _ = tx.send(Bytes::from_static(b"second")).await;
                        });
                        ChannelBody(rx).map_err(Into::into).boxed_unsync()
                    } else {
                        Full::new(Bytes::from_static(b"ok"))
                            .map_err(|never| match never {})
                            .boxed_unsync()
                    };
                    Ok::<_, Infallible>(http::Response::new(body))
                });
                let connection = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service);
                if one_request {
                    let mut connection = std::pin::pin!(connection);
                    // Serve one answer, then drop the socket while the client thinks it idle.
                    let _ =
                        tokio::time::timeout(Duration::from_millis(200), connection.as_mut()).await;
                } else {
                    let _ = connection.await;
                }
            });
        }
    });
    (url, accepted)
}

fn client() -> UpstreamClient {
    upstream::client(&UpstreamTls::default(), &Limits::default()).unwrap()
}

/// A bodyless GET of `url` through `client`.
async fn send(client: &UpstreamClient, url: &str) -> http::Response<upstream::UpstreamBody> {
    let request = http::Request::get(url)
        .body(Empty::new().map_err(|never| match never {}).boxed_unsync())
        .unwrap();
    client.request(request).await.unwrap()
}

/// [`send`], and the answer read to its end.
async fn get(client: &UpstreamClient, url: &str) -> (http::StatusCode, Bytes) {
    let response = send(client, url).await;
    let status = response.status();
    (status, response.into_body().collect().await.unwrap().to_bytes())
}

// As nginx's `keepalive`: an answer read to its end gives its connection back for the next
// request (RFC 9112 §9.3: persistent connections).
#[tokio::test]
async fn rfc9112_9_3_a_connection_is_reused_once_its_answer_has_been_read() {
    let (url, accepted) = counting_upstream(false).await;
    let client = client();
    for _ in 0..5 {
        assert_eq!(get(&client, &format!("{url}/x")).await, (http::StatusCode::OK, "ok".into()));
    }
    assert_eq!(accepted.load(Ordering::SeqCst), 1);
}

// RFC 9112 §9.3: a connection whose answer was abandoned before its end cannot carry another
// request (the rest of that answer would be read as the next one's): it is not reused.
#[tokio::test]
async fn rfc9112_9_3_a_connection_whose_answer_was_not_read_to_its_end_is_not_reused() {
    let (url, accepted) = counting_upstream(false).await;
    let client = client();
    let mut response = send(&client, &format!("{url}/stream")).await;
    let first = response.body_mut().frame().await.unwrap().unwrap().into_data().unwrap();
    assert_eq!(first, "first");
    drop(response);
    assert_eq!(get(&client, &format!("{url}/x")).await, (http::StatusCode::OK, "ok".into()));
    assert_eq!(accepted.load(Ordering::SeqCst), 2);
}

// RFC 9112 §9.6: an upstream may close an idle connection at any time; the next request goes
// out on a new one instead of failing.
#[tokio::test]
async fn rfc9112_9_6_an_idle_connection_the_upstream_closed_is_not_used() {
    let (url, accepted) = counting_upstream(true).await;
    let client = client();
    for n in 1..=3 {
        assert_eq!(get(&client, &format!("{url}/x")).await, (http::StatusCode::OK, "ok".into()));
        // The upstream drops the connection 200 ms after it opened.
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert_eq!(accepted.load(Ordering::SeqCst), n);
    }
}
