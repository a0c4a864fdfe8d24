//! `bff`: the backend-for-frontend example, configured from the environment (README, "A web app
//! that keeps tokens out of the browser").

use anyhow::Context;

fn var(name: &str) -> anyhow::Result<String> {
    std::env::var(name).with_context(|| format!("{name} is not set"))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = bff::Config {
        issuer: var("BFF_ISSUER")?,
        client_id: var("BFF_CLIENT_ID")?,
        client_secret: var("BFF_CLIENT_SECRET")?,
        public_url: var("BFF_PUBLIC_URL")?.parse().context("BFF_PUBLIC_URL")?,
        api_url: var("BFF_API_URL")?,
        scope: std::env::var("BFF_SCOPE").unwrap_or_else(|_| "openid orders:read".into()),
    };
    let listen = std::env::var("BFF_LISTEN").unwrap_or_else(|_| "127.0.0.1:3000".into());
    let app = bff::app(config).await?;
    let listener = tokio::net::TcpListener::bind(&listen).await?;
    println!("bff listening on http://{listen}");
    axum::serve(listener, app).await?;
    Ok(())
}
