//! `tessera migrate`: apply pending migrations (the server also applies them on start).

use anyhow::Context;
use tessera_store::Store;

use crate::DbArgs;

pub async fn run(db: &DbArgs) -> anyhow::Result<()> {
    let store = Store::connect_without_migrating(&db.database_url)
        .await
        .with_context(|| format!("cannot open the database {}", db.database_url))?;
    let applied = store.migrate().await.context("migration failed")?;
    println!(
        "{applied} migration(s) applied to the {} database; schema is current",
        store.backend()
    );
    Ok(())
}
