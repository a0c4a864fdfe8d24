//! `audit_events`: the audit trail, appended to and read from its end. Never pruned.

use tessera_core::store::{AuditEvent, AuditStore, StoreError};

use crate::sqlite_engine::{self, Done, error};
use crate::{Store, db};

#[derive(sqlx::FromRow)]
struct AuditRow {
    at: i64,
    event: String,
    outcome: String,
    client_id: Option<String>,
    sub: Option<String>,
    grant_type: Option<String>,
    jti: Option<String>,
    reason: Option<String>,
    source: Option<String>,
    actor: Option<String>,
}

impl From<AuditRow> for AuditEvent {
    fn from(row: AuditRow) -> Self {
        AuditEvent {
            at: row.at,
            event: row.event,
            outcome: row.outcome,
            client_id: row.client_id,
            sub: row.sub,
            grant_type: row.grant_type,
            jti: row.jti,
            reason: row.reason,
            source: row.source,
            actor: row.actor,
        }
    }
}

impl AuditStore for Store {
    async fn record_audit_event(&self, event: &AuditEvent) -> Result<(), StoreError> {
        const SQL: &str = "INSERT INTO audit_events (at, event, outcome, client_id, sub, \
            grant_type, jti, reason, source, actor) \
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)";
        if let Some(engine) = self.engine() {
            let event = event.clone();
            return engine
                .write(move |conn| {
                    let e = &event;
                    sqlite_engine::execute(
                        conn,
                        SQL,
                        &[
                            &e.at,
                            &e.event,
                            &e.outcome,
                            &e.client_id,
                            &e.sub,
                            &e.grant_type,
                            &e.jti,
                            &e.reason,
                            &e.source,
                            &e.actor,
                        ],
                    )
                    .map_err(error)?;
                    Ok(Done::keep(()))
                })
                .await;
        }
        with_writer!(self, |pool| {
            sqlx::query(SQL)
                .bind(event.at)
                .bind(event.event.as_str())
                .bind(event.outcome.as_str())
                .bind(event.client_id.as_deref())
                .bind(event.sub.as_deref())
                .bind(event.grant_type.as_deref())
                .bind(event.jti.as_deref())
                .bind(event.reason.as_deref())
                .bind(event.source.as_deref())
                .bind(event.actor.as_deref())
                .execute(pool)
                .await
                .map_err(db)?;
        });
        Ok(())
    }

    async fn recent_audit_events(&self, limit: u32) -> Result<Vec<AuditEvent>, StoreError> {
        // Newest by time, then by insertion among events of the same second; returned oldest
        // first.
        const SQL: &str = "SELECT at, event, outcome, client_id, sub, grant_type, jti, reason, \
            source, actor FROM (SELECT * FROM audit_events ORDER BY at DESC, id DESC \
            LIMIT $1) recent \
            ORDER BY at, id";
        let rows: Vec<AuditRow> = with_reader!(self, |pool| sqlx::query_as(SQL)
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await
            .map_err(db)?);
        Ok(rows.into_iter().map(AuditEvent::from).collect())
    }
}
