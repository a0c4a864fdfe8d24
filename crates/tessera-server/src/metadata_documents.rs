//! Clients identified by a client ID metadata document
//! (draft-ietf-oauth-client-id-metadata-document): the client_id is an https URL, and the
//! document there, fetched through `tessera_jose::get_document` (SSRF guard: global unicast
//! addresses only, no proxy, no redirects, 5 s, [`MAX_DOCUMENT_BYTES`]), describes the client.
//!
//! Documents are cached per their `Cache-Control` (RFC 9111), within
//! [`MAX_TTL`]; [`DEFAULT_TTL`] without one; a failure for [`FAILURE_TTL`]. The cache holds
//! at most [`MAX_ENTRIES`] documents. Such a client is never stored, never first-party, gets
//! only the `registration_scopes`, and sees the consent page every time.
//!
//! Tests reach a loopback HTTP server through the existing `outbound_allow_private_networks`
//! switch (off by default, on only with `--dev`), which also admits `http` client_ids; nothing
//! else loosens the rules.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tessera_core::client::Client;
use tessera_core::client_id::ClientId;
use tessera_core::client_metadata::{MetadataDocument, is_metadata_document_url};
use tessera_core::grant_type::GrantType;

use crate::config::RegistrationSettings;
use crate::resource_registry::ResourceRegistry;

/// The largest document read (§4.2 recommends a small limit; 5 KiB is the draft's example).
pub const MAX_DOCUMENT_BYTES: usize = 5 * 1024;
/// Longest a document is reused, whatever its `Cache-Control` says.
pub const MAX_TTL: Duration = Duration::from_secs(24 * 3600);
/// How long a document without caching directives is reused.
pub const DEFAULT_TTL: Duration = Duration::from_secs(300);
/// How long a failed fetch or a refused document is answered from memory.
pub const FAILURE_TTL: Duration = Duration::from_secs(30);
/// Documents remembered at once.
pub const MAX_ENTRIES: usize = 1000;

/// Documents by client_id: until when the answer holds, and the client (`None`: refused).
type Entries = HashMap<ClientId, (Instant, Option<Arc<Client>>)>;

/// The metadata-document clients, by client_id.
pub struct MetadataDocuments {
    settings: RegistrationSettings,
    allow_private_networks: bool,
    entries: Mutex<Entries>,
    /// The resources such clients may ask for, whose scopes they may register.
    resources: Arc<ResourceRegistry>,
}

impl MetadataDocuments {
    pub fn new(
        settings: RegistrationSettings,
        allow_private_networks: bool,
        resources: Arc<ResourceRegistry>,
    ) -> Self {
        Self { settings, allow_private_networks, entries: Mutex::default(), resources }
    }

    /// Whether `id` names a metadata document this server would fetch.
    pub fn handles(&self, id: &ClientId) -> bool {
        self.settings.metadata_documents
            && is_metadata_document_url(id.as_str(), self.allow_private_networks)
    }

    /// The client the document at `id` describes; `None` when it cannot be fetched, its host
    /// is not allowed, or it breaks a rule (the reason is logged for the operator).
    pub async fn get(&self, id: &ClientId) -> Option<Arc<Client>> {
        let now = Instant::now();
        if let Some((until, client)) = self.lock().get(id)
            && now < *until
        {
            return client.clone();
        }
        let (ttl, client) = match self.load(id).await {
            Ok((client, ttl)) => (ttl, Some(Arc::new(client))),
            Err(why) => {
                tracing::info!(client_id = %id, why = %why, "client ID metadata document refused");
                (FAILURE_TTL, None)
            }
        };
        let mut entries = self.lock();
        if entries.len() >= MAX_ENTRIES {
            entries.retain(|_, (until, _)| now < *until);
            if entries.len() >= MAX_ENTRIES {
                entries.clear();
            }
        }
        entries.insert(id.clone(), (now + ttl, client.clone()));
        client
    }

    async fn load(&self, id: &ClientId) -> Result<(Client, Duration), String> {
        let url = url::Url::parse(id.as_str()).map_err(|e| e.to_string())?;
        let host = url.host_str().unwrap_or_default().to_ascii_lowercase();
        // The operator's domain policy.
        let listed =
            |list: &[String]| list.iter().any(|h| host == *h || host.ends_with(&format!(".{h}")));
        if listed(&self.settings.document_denied_hosts)
            || (!self.settings.document_hosts.is_empty() && !listed(&self.settings.document_hosts))
        {
            return Err(format!("the host {host} is not allowed"));
        }
        let fetched = tessera_jose::get_document(
            id.as_str(),
            self.allow_private_networks,
            MAX_DOCUMENT_BYTES,
        )
        .await
        .map_err(|e| e.to_string())?;
        let document: MetadataDocument =
            serde_json::from_str(&fetched.body).map_err(|e| format!("not a document: {e}"))?;
        let mut registration =
            document.into_registration(id.as_str()).map_err(|e| e.to_string())?;
        if registration.grant_types.contains(&GrantType::ClientCredentials) {
            return Err("the client_credentials grant is for operator-registered clients".into());
        }
        // `registration_scopes` and the scopes of the resources open to such clients (issue
        // 15); which of them a request may use depends on the resources it names.
        let issuer_scopes = &self.settings.scopes;
        let open = self.resources.open_scopes(issuer_scopes).await.map_err(|e| e.to_string())?;
        if let Some(scope) = registration.scope.first_outside(&open) {
            return Err(format!("the scope `{}` is not open to such clients", scope.as_str()));
        }
        if registration.scope.is_empty() {
            registration.scope = open;
            registration.default_scope = issuer_scopes.clone();
        }
        registration.first_party = false;
        let (mut client, _) = registration.into_client(0)?;
        client.metadata_document = true;
        let ttl = fetched.max_age.unwrap_or(DEFAULT_TTL).min(MAX_TTL);
        Ok((client, ttl))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Entries> {
        // Each critical section is one map operation; a panic cannot leave it half-done.
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }
}
