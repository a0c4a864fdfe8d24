//! What the admin API and the CLI show of each record: one shape per record, so that
//! `tessera … --json` and `/admin/v1/…` print the same members. Never a secret or a hash.

use serde::Serialize;
use tessera_core::client::Client;
use tessera_core::keys::StoredKey;
use tessera_core::redirect_uri::RedirectUri;
use tessera_core::resource_registry::RegisteredResource;
use tessera_core::store::{AuditEvent, Consent, GrantRecord};
use tessera_core::user::User;
use utoipa::ToSchema;

/// A registered client.
#[derive(Debug, Serialize, ToSchema)]
pub struct ClientView {
    pub client_id: String,
    pub client_name: String,
    pub token_endpoint_auth_method: String,
    pub grant_types: Vec<String>,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    /// Every scope it may be granted, space-separated.
    pub scope: String,
    /// What a request without `scope` gets.
    pub default_scope: String,
    /// The `aud` of its access tokens; empty: the issuer.
    pub audience: Vec<String>,
    pub first_party: bool,
    pub introspection: bool,
    pub introspection_audience: Option<String>,
    /// `jwt` or `opaque`.
    pub access_token_format: String,
    #[schema(value_type = Option<Object>)]
    pub jwks: Option<serde_json::Value>,
    pub jwks_uri: Option<String>,
    pub rate_limit_per_second: Option<u32>,
    pub refresh_token_grace_seconds: u32,
    pub application_type: Option<String>,
    pub client_uri: Option<String>,
    pub logo_uri: Option<String>,
    pub tos_uri: Option<String>,
    pub policy_uri: Option<String>,
    /// Registered itself at `/register` (RFC 7591).
    pub dynamic: bool,
    pub token_exchange_subject_clients: Vec<String>,
    pub token_exchange_subject_audiences: Vec<String>,
    pub require_pushed_authorization_requests: bool,
    pub dpop_bound_access_tokens: bool,
    /// The algorithm of its ID tokens (OIDC Registration §2).
    pub id_token_signed_response_alg: String,
    /// RFC 8705 §2.1.2: the one certificate name `tls_client_auth` checks, under its own
    /// metadata member; the others are absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_client_auth_subject_dn: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_client_auth_san_dns: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_client_auth_san_uri: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_client_auth_san_ip: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_client_auth_san_email: Option<String>,
    pub tls_client_certificate_bound_access_tokens: bool,
    pub created_at: i64,
}

impl From<&Client> for ClientView {
    fn from(c: &Client) -> Self {
        let strings = |v: &[RedirectUri]| v.iter().map(|u| u.as_str().to_owned()).collect();
        let name = |member: &str| {
            c.tls_client_auth_name.as_ref().filter(|n| n.member() == member).map(|n| n.value())
        };
        Self {
            client_id: c.client_id.as_str().to_owned(),
            client_name: c.client_name.clone(),
            token_endpoint_auth_method: c.token_endpoint_auth_method.as_str().to_owned(),
            grant_types: c.grant_types.iter().map(|g| g.as_str().to_owned()).collect(),
            redirect_uris: strings(&c.redirect_uris),
            post_logout_redirect_uris: strings(&c.post_logout_redirect_uris),
            scope: c.scope.to_string(),
            default_scope: c.default_scope.to_string(),
            audience: c.audience.clone(),
            first_party: c.first_party,
            introspection: c.introspection,
            introspection_audience: c.introspection_audience.clone(),
            access_token_format: c.access_token_format.as_str().to_owned(),
            jwks: c.jwks.as_deref().and_then(|j| serde_json::from_str(j).ok()),
            jwks_uri: c.jwks_uri.clone(),
            rate_limit_per_second: c.rate_limit_per_second,
            refresh_token_grace_seconds: c.refresh_token_grace_seconds,
            application_type: c.application_type.map(|t| t.as_str().to_owned()),
            client_uri: c.links.client_uri.clone(),
            logo_uri: c.links.logo_uri.clone(),
            tos_uri: c.links.tos_uri.clone(),
            policy_uri: c.links.policy_uri.clone(),
            dynamic: c.is_dynamic(),
            token_exchange_subject_clients: c.token_exchange.subject_clients.clone(),
            token_exchange_subject_audiences: c.token_exchange.subject_audiences.clone(),
            require_pushed_authorization_requests: c.require_pushed_authorization_requests,
            dpop_bound_access_tokens: c.dpop_bound_access_tokens,
            id_token_signed_response_alg: c.id_token_signed_response_alg.as_str().to_owned(),
            tls_client_auth_subject_dn: name("tls_client_auth_subject_dn"),
            tls_client_auth_san_dns: name("tls_client_auth_san_dns"),
            tls_client_auth_san_uri: name("tls_client_auth_san_uri"),
            tls_client_auth_san_ip: name("tls_client_auth_san_ip"),
            tls_client_auth_san_email: name("tls_client_auth_san_email"),
            tls_client_certificate_bound_access_tokens: c
                .tls_client_certificate_bound_access_tokens,
            created_at: c.created_at,
        }
    }
}

/// A client's secret, shown once: at creation or rotation. Only its hash is stored.
#[derive(Debug, Serialize, ToSchema)]
pub struct ClientSecretView {
    pub client_id: String,
    pub client_secret: String,
}

/// A client just created, with its secret if it has one (shown once).
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedClientView {
    #[serde(flatten)]
    pub client: ClientView,
    /// Flagged first-party admin: may be granted `admin:*` scopes.
    pub admin: bool,
    pub client_secret: Option<String>,
}

/// A user account.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserView {
    /// The OIDC `sub`.
    pub sub: String,
    pub username: String,
    pub email: Option<String>,
    pub name: Option<String>,
    pub created_at: i64,
    pub disabled: bool,
}

impl From<&User> for UserView {
    fn from(u: &User) -> Self {
        Self {
            sub: u.id.clone(),
            username: u.username.clone(),
            email: u.email.clone(),
            name: u.name.clone(),
            created_at: u.created_at,
            disabled: u.disabled,
        }
    }
}

/// A remembered consent of a user for a client.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConsentView {
    pub client_id: String,
    pub scope: String,
    pub granted_at: i64,
}

impl From<&Consent> for ConsentView {
    fn from(c: &Consent) -> Self {
        Self {
            client_id: c.client_id.as_str().to_owned(),
            scope: c.scope.to_string(),
            granted_at: c.granted_at,
        }
    }
}

/// A grant of a user to a client: a refresh-token family and the access tokens issued from
/// it (never a token itself).
#[derive(Debug, Serialize, ToSchema)]
pub struct GrantView {
    /// What `DELETE /admin/v1/grants/{grant_id}` takes.
    pub id: String,
    pub client_id: String,
    /// The user's `sub`.
    pub sub: String,
    /// Granted scopes, space-separated.
    pub scope: String,
    /// The resource servers its access tokens are for; empty: the client's default.
    pub audience: Vec<String>,
    pub created_at: i64,
    /// The absolute end of its refresh tokens.
    pub expires_at: i64,
    pub revoked: bool,
    pub revoked_at: Option<i64>,
}

impl From<&GrantRecord> for GrantView {
    fn from(r: &GrantRecord) -> Self {
        let g = &r.grant;
        Self {
            id: g.id.clone(),
            client_id: g.client_id.as_str().to_owned(),
            sub: g.user_id.clone(),
            scope: g.scope.to_string(),
            audience: g.audience.clone(),
            created_at: g.created_at,
            expires_at: g.expires_at,
            revoked: r.revoked_at.is_some(),
            revoked_at: r.revoked_at,
        }
    }
}

/// A signing key: its public part and schedule.
#[derive(Debug, Serialize, ToSchema)]
pub struct KeyView {
    pub kid: String,
    pub alg: String,
    /// `next` (published, not yet signing), `active` or `retired` (published, no longer
    /// signing).
    pub state: String,
    pub created_at: i64,
    pub activates_at: i64,
    pub signing_until: Option<i64>,
    pub publish_until: Option<i64>,
}

impl KeyView {
    pub fn of(k: &StoredKey, now: i64) -> Self {
        let state = match k.signing_until {
            Some(until) if until <= now => "retired",
            _ if k.activates_at > now => "next",
            _ => "active",
        };
        Self {
            kid: k.kid.clone(),
            alg: k.alg.as_str().to_owned(),
            state: state.to_owned(),
            created_at: k.created_at,
            activates_at: k.activates_at,
            signing_until: k.signing_until,
            publish_until: k.publish_until,
        }
    }
}

/// A registered resource server.
#[derive(Debug, Serialize, ToSchema)]
pub struct ResourceView {
    /// Its canonical identifier: the `aud` of its tokens.
    pub resource: String,
    /// The scopes it defines, space-separated.
    pub scope: String,
    /// Whether dynamic and metadata-document clients may obtain tokens for it.
    pub dynamic_clients: bool,
    pub created_at: i64,
}

impl From<&RegisteredResource> for ResourceView {
    fn from(r: &RegisteredResource) -> Self {
        Self {
            resource: r.resource.clone(),
            scope: r.scopes.to_string(),
            dynamic_clients: r.dynamic_clients,
            created_at: r.created_at,
        }
    }
}

/// One audit event (never a token, code, secret or password).
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditEventView {
    pub at: i64,
    pub event: String,
    pub outcome: String,
    pub client_id: Option<String>,
    pub sub: Option<String>,
    pub grant_type: Option<String>,
    pub jti: Option<String>,
    pub reason: Option<String>,
    pub source: Option<String>,
    pub actor: Option<String>,
}

impl From<&AuditEvent> for AuditEventView {
    fn from(e: &AuditEvent) -> Self {
        Self {
            at: e.at,
            event: e.event.clone(),
            outcome: e.outcome.clone(),
            client_id: e.client_id.clone(),
            sub: e.sub.clone(),
            grant_type: e.grant_type.clone(),
            jti: e.jti.clone(),
            reason: e.reason.clone(),
            source: e.source.clone(),
            actor: e.actor.clone(),
        }
    }
}
