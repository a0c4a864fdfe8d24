//! What a client may ask for in this request, on top of its own record (issue 15):
//!
//! - `admin:*` scopes only for clients flagged first-party admin (`tessera client create
//!   --admin`); any other client loses them, so that asking for one is `invalid_scope`;
//! - a client the operator did not register (dynamic or metadata-document) gets exactly the
//!   registered resources it names that are open to such clients (else `invalid_target`,
//!   RFC 8707 §2) and only their scopes besides `registration_scopes`
//!   (`tessera_core::resource_registry`).
//!
//! Applied where clients are loaded for a request: the authorization endpoint and client
//! authentication (`/token`, `/par`, `/device_authorization`, …).

use std::sync::Arc;

use tessera_core::Error;
use tessera_core::admin_scope::{has_admin_scope, without_admin_scopes};
use tessera_core::client::Client;
use tessera_core::params::Params;
use tessera_core::resource_registry::admit_unregistered_client;
use tessera_core::store::AdminStore;

use crate::state::AppState;

/// The client as this request may use it.
pub async fn admit(
    state: &AppState,
    client: Arc<Client>,
    params: &Params,
) -> Result<Arc<Client>, Error> {
    let inner = &state.0;
    let mut client = client;
    if has_admin_scope(&client.scope)
        && !(client.is_operator_registered()
            && inner.store.is_admin_client(&client.client_id).await?)
    {
        client = Arc::new(without_admin_scopes(&client));
    }
    if client.is_operator_registered() {
        return Ok(client);
    }
    let registry = inner.resources.current().await?;
    let issuer_scopes = &inner.settings.registration.scopes;
    admit_unregistered_client(&client, params, &registry, issuer_scopes).map(Arc::new)
}
