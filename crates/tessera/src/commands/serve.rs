//! `tessera serve`: load configuration, open the store, run the server.

use anyhow::Context;
use tessera_core::client::ClientRegistration;
use tessera_core::client_id::ClientId;
use tessera_core::issuer::Issuer;
use tessera_core::scope::{Scope, ScopeSet};
use tessera_core::secret::Secret;
use tessera_core::store::ClientStore;
use tessera_server::config::KekSource;
use tessera_server::{Overrides, Settings};
use tessera_store::Store;

/// The client `--dev` registers so that a first token is one `curl` away.
const DEMO_CLIENT_ID: &str = "demo";

pub async fn run(overrides: Overrides) -> anyhow::Result<()> {
    let settings = Settings::load(&overrides)?;
    tessera_server::telemetry::init_logging(settings.log_format);
    if let KekSource::DevFile(path) = &settings.kek_source {
        tracing::warn!(
            path = %path.display(),
            "development mode: signing keys are encrypted under a key stored in this file; \
             configure key_encryption_key for production"
        );
    }
    let connect = tessera_store::ConnectOptions {
        sqlite_sync: settings.sqlite_synchronous,
        acquire_timeout: settings.database_acquire_timeout,
        max_connections: settings.database_max_connections,
    };
    let store = super::open_with(&settings.database_url, connect).await?;
    let demo_secret = if settings.dev { Some(register_demo_client(&store).await?) } else { None };
    let listener = tokio::net::TcpListener::bind(settings.listen)
        .await
        .with_context(|| format!("cannot listen on {}", settings.listen))?;
    let issuer = settings.issuer.clone();
    let listen = listener.local_addr()?;
    let state = tessera_server::build_state_now(settings, store).await?;
    tracing::info!(%issuer, %listen, "tessera is serving");
    if let Some(secret) = demo_secret {
        print_dev_banner(&issuer, &secret);
    }
    tessera_server::serve(state, listener).await.context("the server stopped with an error")
}

/// (Re)creates the demo client with a fresh secret: secrets are stored only as hashes, so the
/// one from an earlier start cannot be shown again.
async fn register_demo_client(store: &Store) -> anyhow::Result<Secret> {
    let client_id = ClientId::parse(DEMO_CLIENT_ID).map_err(anyhow::Error::msg)?;
    let scope = |s: &str| Scope::parse_registered(s).map_err(anyhow::Error::msg);
    store.delete_client(&client_id).await?;
    let registration = ClientRegistration {
        client_id: Some(client_id),
        client_name: "Demo client (serve --dev)".into(),
        scope: ScopeSet::from_scopes([scope("demo:read")?, scope("demo:write")?]),
        default_scope: ScopeSet::from_scopes([scope("demo:read")?]),
        ..Default::default()
    };
    let (client, secret) = registration.into_client(super::now()).map_err(anyhow::Error::msg)?;
    store.create_client(&client).await?;
    secret.context("a confidential client always gets a secret")
}

fn print_dev_banner(issuer: &Issuer, secret: &Secret) {
    let token = issuer.endpoint("/token");
    let discovery = issuer.endpoint("/.well-known/oauth-authorization-server");
    println!(
        "\nTessera is running in development mode.\n\
         \n  issuer         {issuer}\
         \n  discovery      {discovery}\
         \n  demo client    {DEMO_CLIENT_ID}\
         \n  client secret  {secret} (new at every --dev start)\
         \n\nGet a token:\n\n  curl -s -u {DEMO_CLIENT_ID}:{secret} -d grant_type=client_credentials {token}\n",
        secret = secret.expose(),
    );
}
