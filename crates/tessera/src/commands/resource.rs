//! `tessera resource …`: the registry of resource servers (issue 15) that clients the operator
//! did not register — dynamic and metadata-document clients — may obtain tokens for. The same
//! operations as `/admin/v1/resources`.

use anyhow::bail;
use clap::Subcommand;
use tessera_core::store::ResourceStore;
use tessera_server::admin::operations::{self, NewResource, OperationError};
use tessera_server::admin::views::ResourceView;

use crate::DbArgs;

#[derive(Subcommand)]
pub enum ResourceCommand {
    /// Register a resource server: its identifier (the `aud` of its tokens, stored in
    /// canonical form) and the scopes it defines.
    Create {
        #[command(flatten)]
        db: DbArgs,
        /// The resource identifier: an absolute URI without fragment.
        #[arg(long, value_name = "URL")]
        resource: String,
        /// A scope it defines (repeatable, or space-separated).
        #[arg(long = "scope", value_name = "SCOPE", required = true)]
        scopes: Vec<String>,
        /// Clients the operator did not register (dynamic, metadata-document) may obtain
        /// tokens for it.
        #[arg(long)]
        dynamic_clients: bool,
        #[arg(long)]
        json: bool,
    },
    /// List registered resource servers.
    List {
        #[command(flatten)]
        db: DbArgs,
        #[arg(long)]
        json: bool,
    },
    /// Remove a resource server (servers stop admitting it within 5 seconds).
    Delete {
        /// Its identifier, in any spelling.
        resource: String,
        #[command(flatten)]
        db: DbArgs,
    },
}

pub async fn run(cmd: ResourceCommand) -> anyhow::Result<()> {
    match cmd {
        ResourceCommand::Create { db, resource, scopes, dynamic_clients, json } => {
            let store = super::open(&db.database_url).await?;
            let new = NewResource { resource, scope: scopes.join(" "), dynamic_clients };
            let created = match operations::create_resource(&store, new, super::now()).await {
                Err(OperationError::Invalid(why)) => bail!("{why}"),
                other => other?,
            };
            if json {
                super::print_json(&serde_json::to_value(ResourceView::from(&created))?);
            } else {
                let open = if created.dynamic_clients { "open to" } else { "closed to" };
                println!(
                    "registered resource `{}` (scopes: {}), {open} dynamic clients",
                    created.resource, created.scopes
                );
            }
            Ok(())
        }
        ResourceCommand::List { db, json } => {
            let resources = super::open(&db.database_url).await?.list_resources().await?;
            if json {
                let views: Vec<ResourceView> = resources.iter().map(ResourceView::from).collect();
                super::print_json(&serde_json::to_value(views)?);
            } else if resources.is_empty() {
                println!("no resources");
            } else {
                for r in &resources {
                    let open = if r.dynamic_clients { "dynamic-clients" } else { "-" };
                    println!("{}\t{}\t{open}", r.resource, r.scopes);
                }
            }
            Ok(())
        }
        ResourceCommand::Delete { resource, db } => {
            let store = super::open(&db.database_url).await?;
            match operations::delete_resource(&store, &resource).await {
                Ok(true) => {
                    println!("deleted resource `{resource}`");
                    Ok(())
                }
                Ok(false) => bail!("no resource `{resource}`"),
                Err(OperationError::Invalid(why)) => bail!("{why}"),
                Err(e) => Err(e.into()),
            }
        }
    }
}
