//! The audit log (requirements R4.4): one structured event per issuance, refusal, revocation,
//! consent and sign-in, on the log stream under the target `tessera::audit`, and in the
//! `audit_events` table when `audit_to_database` is set (read with `tessera audit tail`).
//! An event never carries a token, code, secret or password: only identifiers.

pub use tessera_core::store::AuditEvent;
use tessera_core::store::AuditStore;

use crate::state::AppState;

/// Records an event. The database write, if enabled, runs in the background so that it adds
/// no latency to the request; a failed write is logged, never fatal.
pub fn emit(state: &AppState, event: AuditEvent) {
    emit_with(state, || event);
}

/// Like [`emit`], building the event only if someone takes it: the log stream at `info` for
/// `tessera::audit`, or the database. On the token path an event is seven strings copied per
/// request (issue 16 item 3); with the audit stream filtered out and no database copy, none
/// is made.
pub fn emit_with(state: &AppState, event: impl FnOnce() -> AuditEvent) {
    let inner = &state.0;
    let logged = tracing::enabled!(target: "tessera::audit", tracing::Level::INFO);
    if !logged && !inner.settings.audit_to_database {
        return;
    }
    let mut event = event();
    event.at = inner.clock.now();
    tracing::info!(
        target: "tessera::audit",
        event = %event.event,
        outcome = %event.outcome,
        client_id = event.client_id.as_deref(),
        sub = event.sub.as_deref(),
        grant_type = event.grant_type.as_deref(),
        jti = event.jti.as_deref(),
        reason = event.reason.as_deref(),
        source = event.source.as_deref(),
        actor = event.actor.as_deref(),
        "audit"
    );
    if inner.settings.audit_to_database {
        let store = inner.store.clone();
        tokio::spawn(async move {
            if let Err(e) = store.record_audit_event(&event).await {
                tracing::warn!(error = %e, "writing an audit event to the database failed");
            }
        });
    }
}
