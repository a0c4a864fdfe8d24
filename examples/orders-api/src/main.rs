//! `orders-api --issuer URL --audience AUD --listen ADDR` (or `ORDERS_API_*` variables).

use clap::Parser;
use orders_api::Settings;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("ORDERS_API_LOG")
                .unwrap_or_else(|_| "info".into()),
        )
        .init();
    let settings = Settings::parse();
    let validator = settings.validator().await?;
    let listener = tokio::net::TcpListener::bind(&settings.listen).await?;
    println!("orders-api listening on http://{}", listener.local_addr()?);
    orders_api::serve(listener, &validator, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await?;
    Ok(())
}
