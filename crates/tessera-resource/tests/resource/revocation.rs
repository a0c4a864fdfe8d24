//! The revocation list (R7.4) with a real Redis (`TESSERA_TEST_REDIS_URL`, default the local
//! one; skipped with a note outside CI when it does not answer).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::http::StatusCode;
use tessera_resource::{OnOutage, RevocationConfig, TokenValidator};

use crate::support::*;

fn redis_url() -> String {
    std::env::var("TESSERA_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// A raw connection, or `None` (after saying why) when Redis is unreachable outside CI.
async fn redis(test: &str) -> Option<redis::aio::MultiplexedConnection> {
    let connected = async {
        let client = redis::Client::open(redis_url())?;
        client.get_multiplexed_async_connection().await
    };
    match connected.await {
        Ok(conn) => Some(conn),
        Err(e) if std::env::var("CI").as_deref() != Ok("true") => {
            eprintln!("{test}: skipped, Redis at {} is unreachable: {e}", redis_url());
            None
        }
        Err(e) => panic!("{test}: Redis is required under CI: {e}"),
    }
}

async fn revoke(conn: &mut redis::aio::MultiplexedConnection, jti: &str) {
    // What the authorization server writes (tessera_server::revocation_list).
    let key = format!("tessera:revoked:{jti}");
    let _: () =
        redis::cmd("SET").arg(&key).arg("1").arg("EX").arg(60).query_async(conn).await.unwrap();
}

#[tokio::test]
async fn r7_4_a_revoked_jti_is_refused_and_seen_within_the_local_cache_time() {
    let test = "r7_4_a_revoked_jti_is_refused_and_seen_within_the_local_cache_time";
    let Some(mut conn) = redis(test).await else { return };
    let issuer = TestIssuer::start().await;
    let config = issuer.config().revocation_list(RevocationConfig::redis(redis_url()));
    let app = app(&TokenValidator::discover(config).await.unwrap());

    // Revoked before its first use: refused at once.
    let claims = issuer.claims();
    revoke(&mut conn, claims["jti"].as_str().unwrap()).await;
    assert_eq!(get_with(&app, &issuer.token(&claims)).await.status, StatusCode::UNAUTHORIZED);

    // In use, then revoked: refused once the local answer (2 s) has aged out.
    let claims = issuer.claims();
    let token = issuer.token(&claims);
    assert_eq!(get_with(&app, &token).await.status, StatusCode::OK);
    revoke(&mut conn, claims["jti"].as_str().unwrap()).await;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let answer = get_with(&app, &token).await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    assert!(answer.challenge.unwrap().contains("invalid_token"));
    // Other tokens are unaffected.
    assert_eq!(get_with(&app, &issuer.token(&issuer.claims())).await.status, StatusCode::OK);
}

/// A TCP relay to the real Redis that the test can cut, to make Redis unreachable.
struct Relay {
    url: String,
    up: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl Relay {
    async fn start() -> Relay {
        let upstream = redis_url().trim_start_matches("redis://").trim_end_matches('/').to_owned();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("redis://{}", listener.local_addr().unwrap());
        let up = Arc::new(AtomicBool::new(true));
        let flag = up.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else { return };
                let (upstream, flag) = (upstream.clone(), flag.clone());
                tokio::spawn(async move {
                    let Ok(mut outbound) = tokio::net::TcpStream::connect(&upstream).await else {
                        return;
                    };
                    let mut buf_in = [0u8; 4096];
                    let mut buf_out = [0u8; 4096];
                    use tokio::io::{AsyncReadExt, AsyncWriteExt};
                    loop {
                        if !flag.load(Ordering::SeqCst) {
                            return; // both sockets drop: the connection is cut
                        }
                        tokio::select! {
                            n = inbound.read(&mut buf_in) => match n {
                                Ok(n) if n > 0 && flag.load(Ordering::SeqCst) => { if outbound.write_all(&buf_in[..n]).await.is_err() { return } }
                                _ => return,
                            },
                            n = outbound.read(&mut buf_out) => match n {
                                Ok(n) if n > 0 => { if inbound.write_all(&buf_out[..n]).await.is_err() { return } }
                                _ => return,
                            },
                        }
                    }
                });
            }
        });
        Relay { url, up, task }
    }

    fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        self.task.abort();
    }
}

#[tokio::test]
async fn r7_4_redis_down_refuses_when_fail_closed_and_accepts_when_fail_open() {
    let test = "r7_4_redis_down_refuses_when_fail_closed_and_accepts_when_fail_open";
    if redis(test).await.is_none() {
        return;
    }
    let issuer = TestIssuer::start().await;
    for (policy, expected) in [
        (OnOutage::FailClosed, StatusCode::SERVICE_UNAVAILABLE),
        (OnOutage::FailOpen, StatusCode::OK),
    ] {
        let relay = Relay::start().await;
        let list = RevocationConfig::redis(&relay.url).on_outage(policy);
        let app =
            app(&TokenValidator::discover(issuer.config().revocation_list(list)).await.unwrap());
        assert_eq!(get_with(&app, &issuer.token(&issuer.claims())).await.status, StatusCode::OK);
        relay.cut();
        for _ in 0..3 {
            let answer = get_with(&app, &issuer.token(&issuer.claims())).await;
            assert_eq!(answer.status, expected, "{policy:?}");
        }
    }
    // The default is to fail closed.
    assert_eq!(OnOutage::default(), OnOutage::FailClosed);
}
