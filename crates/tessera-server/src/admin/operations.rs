//! The administrative operations that both the CLI (`tessera client|resource …`, working on
//! the database directly) and the admin HTTP API perform, so that each rule lives once: the
//! client's metadata goes through `ClientMetadata::into_registration` and
//! `ClientRegistration::into_client` (the rules `/register` uses too), and the admin flag and
//! the `admin:*` scopes go together.

use serde::Deserialize;
use tessera_core::admin_scope;
use tessera_core::client::{AccessTokenFormat, Client, ClientRegistration, ExchangePolicy};
use tessera_core::client_id::ClientId;
use tessera_core::client_metadata::ClientMetadata;
use tessera_core::resource_registry::RegisteredResource;
use tessera_core::scope::{Scope, ScopeSet};
use tessera_core::secret::Secret;
use tessera_core::store::{AdminStore, ClientStore, ResourceStore, StoreError};
use tessera_store::Store;
use utoipa::ToSchema;

/// Why an operation was refused.
#[derive(Debug, thiserror::Error)]
pub enum OperationError {
    /// The input breaks a rule; the message says which.
    #[error("{0}")]
    Invalid(String),
    /// A record with that identity exists already.
    #[error("{0} already exists")]
    Conflict(String),
    #[error(transparent)]
    Store(StoreError),
}

impl From<StoreError> for OperationError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(what) => Self::Conflict(what),
            other => Self::Store(other),
        }
    }
}

/// A client to register, in RFC 7591 metadata names plus what only an operator may set.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewClient {
    /// Default: random.
    pub client_id: Option<String>,
    pub client_name: String,
    #[serde(default)]
    pub redirect_uris: Vec<String>,
    #[serde(default)]
    pub post_logout_redirect_uris: Vec<String>,
    /// Default: `client_credentials`, or `authorization_code` + `refresh_token` with redirect
    /// URIs.
    #[serde(default)]
    pub grant_types: Vec<String>,
    /// Allowed scopes, space-separated, `resource:operation` or OIDC scopes.
    pub scope: Option<String>,
    /// Scopes granted when a request names none, space-separated; among `scope`.
    pub default_scope: Option<String>,
    /// Audiences of its access tokens (default: the issuer).
    #[serde(default)]
    pub audience: Vec<String>,
    /// `client_secret_basic` (default), `client_secret_post`, `private_key_jwt` or `none`
    /// (a public client).
    pub token_endpoint_auth_method: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub jwks: Option<serde_json::Value>,
    pub jwks_uri: Option<String>,
    /// `jwt` (default) or `opaque`.
    pub access_token_format: Option<String>,
    #[serde(default)]
    pub introspection: bool,
    pub introspection_audience: Option<String>,
    pub rate_limit_per_second: Option<u32>,
    #[serde(default)]
    pub refresh_token_grace_seconds: u32,
    #[serde(default)]
    pub token_exchange_subject_clients: Vec<String>,
    #[serde(default)]
    pub token_exchange_subject_audiences: Vec<String>,
    #[serde(default)]
    pub require_pushed_authorization_requests: bool,
    #[serde(default)]
    pub dpop_bound_access_tokens: bool,
    /// Consent is implied.
    #[serde(default)]
    pub first_party: bool,
    /// A first-party administration client: it gets every `admin:*` scope and is the only
    /// kind of client that may be granted them (implies `first_party`).
    #[serde(default)]
    pub admin: bool,
    /// `web` or `native` (RFC 8252).
    pub application_type: Option<String>,
    pub client_uri: Option<String>,
    pub logo_uri: Option<String>,
    pub tos_uri: Option<String>,
    pub policy_uri: Option<String>,
    /// OIDC Registration §2: `RS256` (default), `ES256` or `EdDSA` for its ID tokens.
    pub id_token_signed_response_alg: Option<String>,
    /// RFC 8705 §2.1.2: for `tls_client_auth`, exactly one name its certificate carries.
    pub tls_client_auth_subject_dn: Option<String>,
    pub tls_client_auth_san_dns: Option<String>,
    pub tls_client_auth_san_uri: Option<String>,
    pub tls_client_auth_san_ip: Option<String>,
    pub tls_client_auth_san_email: Option<String>,
    /// RFC 8705 §3: bind its access tokens to the certificate it presents.
    pub tls_client_certificate_bound_access_tokens: Option<bool>,
    /// A secret imported from another server (the CLI reads it from standard input).
    #[serde(skip)]
    pub imported_secret: Option<Secret>,
}

/// Parses scopes given space-separated (or in several strings) with the registration rule.
pub fn registered_scopes<'a>(
    values: impl IntoIterator<Item = &'a str>,
) -> Result<ScopeSet, OperationError> {
    let parsed: Result<Vec<Scope>, String> =
        values.into_iter().flat_map(str::split_whitespace).map(Scope::parse_registered).collect();
    Ok(ScopeSet::from_scopes(parsed.map_err(OperationError::Invalid)?))
}

impl NewClient {
    /// Checks it with the shared rules and builds the record; the plaintext secret, if any,
    /// is returned beside it (shown once).
    pub fn into_client(self, now: i64) -> Result<(Client, Option<Secret>), OperationError> {
        let mut scope = registered_scopes(self.scope.as_deref())?;
        if self.admin {
            let admin = admin_scope::ALL.iter().filter_map(|s| Scope::parse(s).ok());
            scope = ScopeSet::from_scopes(scope.iter().cloned().chain(admin));
        } else if let Some(s) = scope.iter().find(|s| admin_scope::is_admin_scope(s)) {
            return Err(OperationError::Invalid(format!(
                "the scope `{}` is for first-party admin clients only (flag the client admin)",
                s.as_str()
            )));
        }
        let format = match self.access_token_format.as_deref() {
            None => AccessTokenFormat::Jwt,
            Some(raw) => AccessTokenFormat::parse(raw).ok_or_else(|| {
                OperationError::Invalid(format!(
                    "`{raw}` is no access token format; use jwt or opaque"
                ))
            })?,
        };
        let metadata = ClientMetadata {
            client_name: Some(self.client_name),
            redirect_uris: self.redirect_uris,
            post_logout_redirect_uris: self.post_logout_redirect_uris,
            grant_types: self.grant_types,
            token_endpoint_auth_method: self.token_endpoint_auth_method,
            scope: Some(scope.to_string()),
            jwks: self.jwks,
            jwks_uri: self.jwks_uri,
            application_type: self.application_type,
            client_uri: self.client_uri,
            logo_uri: self.logo_uri,
            tos_uri: self.tos_uri,
            policy_uri: self.policy_uri,
            id_token_signed_response_alg: self.id_token_signed_response_alg,
            tls_client_auth_subject_dn: self.tls_client_auth_subject_dn,
            tls_client_auth_san_dns: self.tls_client_auth_san_dns,
            tls_client_auth_san_uri: self.tls_client_auth_san_uri,
            tls_client_auth_san_ip: self.tls_client_auth_san_ip,
            tls_client_auth_san_email: self.tls_client_auth_san_email,
            tls_client_certificate_bound_access_tokens: self
                .tls_client_certificate_bound_access_tokens,
            ..Default::default()
        };
        let client_id = self
            .client_id
            .as_deref()
            .map(|raw| {
                ClientId::parse(raw)
                    .map_err(|e| OperationError::Invalid(format!("client_id `{raw}` {e}")))
            })
            .transpose()?;
        let registration = ClientRegistration {
            client_id,
            default_scope: registered_scopes(self.default_scope.as_deref())?,
            audience: self.audience,
            first_party: self.first_party || self.admin,
            imported_secret: self.imported_secret,
            introspection: self.introspection,
            introspection_audience: self.introspection_audience,
            access_token_format: format,
            rate_limit_per_second: self.rate_limit_per_second,
            refresh_token_grace_seconds: self.refresh_token_grace_seconds,
            token_exchange: ExchangePolicy {
                subject_clients: self.token_exchange_subject_clients,
                subject_audiences: self.token_exchange_subject_audiences,
            },
            require_pushed_authorization_requests: self.require_pushed_authorization_requests,
            dpop_bound_access_tokens: self.dpop_bound_access_tokens,
            ..metadata.into_registration().map_err(|e| OperationError::Invalid(e.to_string()))?
        };
        registration.into_client(now).map_err(OperationError::Invalid)
    }
}

/// Registers a client (and its admin flag); returns it with its secret, shown once.
pub async fn create_client(
    store: &Store,
    new: NewClient,
    now: i64,
) -> Result<(Client, Option<Secret>, bool), OperationError> {
    let admin = new.admin;
    let (client, secret) = new.into_client(now)?;
    store.create_client(&client).await?;
    if admin {
        store.set_admin_client(&client.client_id, true).await?;
    }
    Ok((client, secret, admin))
}

/// Replaces what an operator set of a client with `new` (checked by the same rules as at
/// creation; `new.client_id`, if given, must be the client's). A confidential client keeps its
/// secret; one that becomes confidential gets a new secret, returned once. `None`: no such
/// operator-registered client.
pub async fn update_client(
    store: &Store,
    client_id: &ClientId,
    mut new: NewClient,
    now: i64,
) -> Result<Option<(Client, Option<Secret>, bool)>, OperationError> {
    if new.client_id.as_deref().is_some_and(|id| id != client_id.as_str()) {
        return Err(OperationError::Invalid("the client_id of a client cannot change".into()));
    }
    new.client_id = Some(client_id.as_str().to_owned());
    let Some(old) = store.find_client(client_id).await? else { return Ok(None) };
    if !old.is_operator_registered() {
        return Err(OperationError::Invalid(
            "a dynamically registered client is managed through RFC 7592 (/register/{client_id})"
                .into(),
        ));
    }
    let admin = new.admin;
    let (mut client, mut secret) = new.into_client(now)?;
    client.created_at = old.created_at;
    if client.token_endpoint_auth_method.uses_secret() && old.secret_hash.is_some() {
        client.secret_hash = old.secret_hash;
        secret = None;
    }
    if !store.update_client(&client).await? {
        return Ok(None);
    }
    store.set_admin_client(client_id, admin).await?;
    Ok(Some((client, secret, admin)))
}

/// Replaces a confidential client's secret; the new one is returned once. `None`: no such
/// client, or one without a secret.
pub async fn rotate_client_secret(
    store: &Store,
    client_id: &ClientId,
) -> Result<Option<Secret>, OperationError> {
    let secret = Secret::generate();
    let replaced = store.replace_client_secret(client_id, &secret.hash()).await?;
    Ok(replaced.then_some(secret))
}

/// A resource to register (`tessera resource create`, `POST /admin/v1/resources`).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewResource {
    /// Its identifier (an absolute URI without fragment); stored in canonical form.
    pub resource: String,
    /// The scopes it defines, space-separated.
    pub scope: String,
    /// Whether dynamic and metadata-document clients may obtain tokens for it.
    #[serde(default)]
    pub dynamic_clients: bool,
}

/// Registers a resource server.
pub async fn create_resource(
    store: &Store,
    new: NewResource,
    now: i64,
) -> Result<RegisteredResource, OperationError> {
    let scopes = registered_scopes([new.scope.as_str()])?;
    if let Some(s) = scopes.iter().find(|s| admin_scope::is_admin_scope(s)) {
        return Err(OperationError::Invalid(format!(
            "the scope `{}` is reserved for Tessera's admin API",
            s.as_str()
        )));
    }
    let resource = RegisteredResource::new(&new.resource, scopes, new.dynamic_clients, now)
        .map_err(OperationError::Invalid)?;
    store.create_resource(&resource).await?;
    Ok(resource)
}

/// Removes a resource server, named in any spelling of its identifier; whether it existed.
pub async fn delete_resource(store: &Store, resource: &str) -> Result<bool, OperationError> {
    let canonical = tessera_core::resource::canonical(resource).ok_or_else(|| {
        OperationError::Invalid(format!("`{resource}` is not an absolute URI without fragment"))
    })?;
    Ok(store.delete_resource(&canonical).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn r6_2_admin_scopes_only_with_the_admin_flag() {
        let new = NewClient {
            client_name: "ops".into(),
            scope: Some("admin:users".into()),
            ..Default::default()
        };
        assert!(matches!(new.into_client(0), Err(OperationError::Invalid(_))));
        let new = NewClient { client_name: "ops".into(), admin: true, ..Default::default() };
        let (client, secret) = new.into_client(0).unwrap();
        assert!(secret.is_some() && client.first_party);
        for s in admin_scope::ALL {
            assert!(client.scope.contains(&Scope::parse(s).unwrap()), "{s}");
        }
    }
}
