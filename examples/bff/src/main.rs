//! `bff`: the backend-for-frontend example, configured from the environment (README, "A web app
//! that keeps tokens out of the browser").

use std::sync::Arc;

use anyhow::Context;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

fn var(name: &str) -> anyhow::Result<String> {
    std::env::var(name).with_context(|| format!("{name} is not set"))
}

/// `BFF_SESSION_KEY`: 32 bytes in base64 (`openssl rand -base64 32`), the same on every
/// instance.
fn session_key() -> anyhow::Result<[u8; 32]> {
    let text = var("BFF_SESSION_KEY").context("make one with `openssl rand -base64 32`")?;
    let bytes = STANDARD.decode(text.trim()).context("BFF_SESSION_KEY is not base64")?;
    <[u8; 32]>::try_from(bytes.as_slice())
        .map_err(|_| anyhow::anyhow!("BFF_SESSION_KEY must be 32 bytes, not {}", bytes.len()))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // BFF_SESSION_SQLITE=PATH: a SQLite file (one host); else Redis, shared by every host.
    let store: Arc<dyn bff::SessionStore> = match std::env::var_os("BFF_SESSION_SQLITE") {
        Some(path) => Arc::new(
            bff::SqliteSessions::open(path.as_ref())
                .await
                .with_context(|| format!("the session store BFF_SESSION_SQLITE={path:?}"))?,
        ),
        None => {
            let redis_url = std::env::var("BFF_SESSION_REDIS")
                .unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
            Arc::new(
                bff::RedisSessions::connect(&redis_url, "bff")
                    .await
                    .with_context(|| format!("the session store BFF_SESSION_REDIS={redis_url}"))?,
            )
        }
    };
    let config = bff::Config {
        issuer: var("BFF_ISSUER")?,
        client_id: var("BFF_CLIENT_ID")?,
        client_secret: var("BFF_CLIENT_SECRET")?,
        public_url: var("BFF_PUBLIC_URL")?.parse().context("BFF_PUBLIC_URL")?,
        api_url: var("BFF_API_URL")?,
        scope: std::env::var("BFF_SCOPE")
            .unwrap_or_else(|_| "openid orders:read orders:write".into()),
        session_store: store,
        session_key: session_key()?,
    };
    let listen = std::env::var("BFF_LISTEN").unwrap_or_else(|_| "127.0.0.1:3000".into());
    let app = bff::app(config).await?;
    let listener = tokio::net::TcpListener::bind(&listen).await?;
    println!("bff listening on http://{listen}");
    axum::serve(listener, app).await?;
    Ok(())
}
