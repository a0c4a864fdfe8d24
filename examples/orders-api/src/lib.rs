//! An example API protected by `tessera-resource`: what "Protect your API" in the README
//! builds. `GET /health` is anonymous, `GET /orders` needs `orders:read`, `POST /orders` needs
//! `orders:write`, and the RFC 9728 metadata tells clients where to get a token.

use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use tessera_resource::{
    DpopCheck, IssuerConfig, Principal, RequireScope, RevocationConfig, SenderConstraints,
    TokenValidator, ValidatorConfig,
};

/// The API's settings: flags or `ORDERS_API_*` variables.
#[derive(Clone, Debug, clap::Parser)]
#[command(name = "orders-api", about = "An example API protected by Tessera's tokens")]
pub struct Settings {
    /// The authorization server's issuer URL (its metadata is read from it).
    #[arg(long, env = "ORDERS_API_ISSUER")]
    pub issuer: String,
    /// This API's identifier: tokens must name it in `aud`; also the RFC 9728 `resource`.
    #[arg(long, env = "ORDERS_API_AUDIENCE")]
    pub audience: String,
    /// The address to listen on.
    #[arg(long, env = "ORDERS_API_LISTEN", default_value = "127.0.0.1:9000")]
    pub listen: String,
    /// The Redis the authorization server publishes revoked token ids to (its `redis_url`);
    /// when set, revoked tokens are refused here within seconds.
    #[arg(long, env = "ORDERS_API_REDIS_URL")]
    pub redis_url: Option<String>,
    /// The URL clients call this API under (scheme, host, port, optional path prefix): what
    /// their DPoP proofs' `htu` starts with (RFC 9449 §4.3). Default: the audience.
    #[arg(long, env = "ORDERS_API_EXTERNAL_URL")]
    pub external_url: Option<String>,
    /// Allow an issuer on loopback or private addresses over plain http (development only).
    #[arg(long, env = "ORDERS_API_ALLOW_PRIVATE_NETWORKS")]
    pub allow_private_networks: bool,
}

impl Settings {
    /// The validator these settings describe (reads the issuer's metadata and keys).
    pub async fn validator(&self) -> anyhow::Result<TokenValidator> {
        let mut config = ValidatorConfig::new(&self.audience)
            .issuer(IssuerConfig::new(&self.issuer, &self.audience))
            .scopes_supported(["orders:read", "orders:write"])
            .allow_private_networks(self.allow_private_networks);
        // RFC 9449 §7: DPoP-bound tokens are accepted with a proof of their key; with Redis,
        // the proofs' replay cache is shared by every instance of the API.
        let mut dpop = DpopCheck::new(self.external_url.as_deref().unwrap_or(&self.audience))?;
        if let Some(url) = &self.redis_url {
            config = config.revocation_list(RevocationConfig::redis(url));
            dpop = dpop.replay_cache_redis(url).await?;
        }
        let constraints = SenderConstraints::new(Some(Arc::new(dpop)), None);
        config = config.sender_constraint(Arc::new(constraints));
        Ok(TokenValidator::discover(config).await?)
    }
}

/// One order.
#[derive(Clone, Debug, Serialize)]
pub struct Order {
    pub id: u64,
    pub item: String,
    pub quantity: u32,
    /// Who placed it: the token's `sub`.
    pub placed_by: String,
}

/// What `POST /orders` takes.
#[derive(Debug, Deserialize)]
pub struct NewOrder {
    pub item: String,
    pub quantity: u32,
}

/// The orders, in memory (an example keeps no database).
#[derive(Clone, Default)]
pub struct Orders(Arc<Mutex<Vec<Order>>>);

async fn health() -> &'static str {
    "ok"
}

async fn list(principal: Principal, State(orders): State<Orders>) -> Json<Vec<Order>> {
    let all = orders.0.lock().unwrap_or_else(|e| e.into_inner());
    Json(all.iter().filter(|o| o.placed_by == principal.subject()).cloned().collect())
}

async fn place(
    principal: Principal,
    State(orders): State<Orders>,
    Json(new): Json<NewOrder>,
) -> (StatusCode, Json<Order>) {
    let mut all = orders.0.lock().unwrap_or_else(|e| e.into_inner());
    let order = Order {
        id: all.len() as u64 + 1,
        item: new.item,
        quantity: new.quantity,
        placed_by: principal.subject().to_owned(),
    };
    all.push(order.clone());
    (StatusCode::CREATED, Json(order))
}

/// The application: the token layer wraps `/orders` only; `/health` and the metadata are
/// public.
pub fn router(validator: &TokenValidator) -> Router {
    let orders = Router::new()
        .route(
            "/orders",
            get(list)
                .route_layer(RequireScope::all(["orders:read"]))
                .merge(axum::routing::post(place).route_layer(RequireScope::all(["orders:write"]))),
        )
        .layer(validator.layer())
        .with_state(Orders::default());
    Router::new().route("/health", get(health)).merge(orders).merge(validator.metadata_router())
}

/// Serves the application on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    validator: &TokenValidator,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(validator)).with_graceful_shutdown(shutdown).await
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[test]
    fn settings_come_from_the_documented_flags() {
        let settings = Settings::try_parse_from([
            "orders-api",
            "--issuer",
            "https://as.example",
            "--audience",
            "https://orders.example",
            "--listen",
            "0.0.0.0:8081",
        ])
        .unwrap();
        assert_eq!(settings.issuer, "https://as.example");
        assert_eq!(settings.audience, "https://orders.example");
        assert_eq!(settings.listen, "0.0.0.0:8081");
        assert!(!settings.allow_private_networks);
        assert_eq!(settings.redis_url, None);
        assert_eq!(settings.external_url, None);
        assert!(
            Settings::try_parse_from(["orders-api", "--issuer", "https://as.example"]).is_err()
        );
    }
}
