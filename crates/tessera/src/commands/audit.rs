//! `tessera audit tail`: the latest events of the audit table (written when the server runs
//! with `audit_to_database = true`).

use clap::Subcommand;
use tessera_core::store::AuditStore;

use crate::DbArgs;

#[derive(Subcommand)]
pub enum AuditCommand {
    /// Print the most recent audit events, oldest first.
    Tail {
        #[command(flatten)]
        db: DbArgs,
        /// How many events.
        #[arg(long, default_value_t = 50)]
        limit: u32,
        #[arg(long)]
        json: bool,
    },
}

pub async fn run(cmd: AuditCommand) -> anyhow::Result<()> {
    let AuditCommand::Tail { db, limit, json } = cmd;
    let events = super::open(&db.database_url).await?.recent_audit_events(limit).await?;
    if json {
        super::print_json(&serde_json::to_value(&events)?);
        return Ok(());
    }
    for e in &events {
        let field = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".to_owned());
        println!(
            "{}\t{}\t{}\tclient={}\tsub={}\tgrant={}\tjti={}\treason={}\tsource={}",
            e.at,
            e.event,
            e.outcome,
            field(&e.client_id),
            field(&e.sub),
            field(&e.grant_type),
            field(&e.jti),
            field(&e.reason),
            field(&e.source)
        );
    }
    Ok(())
}
