//! `clients`: registered OAuth clients.

use tessera_core::client::{
    AccessTokenFormat, ApplicationType, AuthMethod, Client, ClientLinks, DynamicRegistration,
    ExchangePolicy, InitialAccessToken,
};
use tessera_core::client_id::ClientId;
use tessera_core::grant_type::GrantType;
use tessera_core::keys::SigningAlg;
use tessera_core::mtls::CertificateName;
use tessera_core::redirect_uri::RedirectUri;
use tessera_core::scope::{Scope, ScopeSet};
use tessera_core::secret::SecretHash;
use tessera_core::store::{ClientStore, InitialAccessTokenStore, StoreError};

use crate::{Store, conflict_or_db, corrupt, db, json};

const TABLE: &str = "clients";

/// The `SELECT` every read starts with, as a literal for `concat!`.
macro_rules! select_clients {
    () => {
        "SELECT client_id, client_name, secret_hash, token_endpoint_auth_method, redirect_uris, \
         post_logout_redirect_uris, grant_types, scope, default_scope, audience, first_party, \
         introspection, introspection_audience, access_token_format, jwks, jwks_uri, \
         rate_limit_per_second, refresh_token_grace_seconds, application_type, client_uri, \
         logo_uri, tos_uri, policy_uri, registration_token_hash, last_used_at, \
         token_exchange_subject_clients, token_exchange_subject_audiences, \
         require_pushed_authorization_requests, dpop_bound_access_tokens, \
         tls_client_auth_member, tls_client_auth_value, \
         tls_client_certificate_bound_access_tokens, created_at, \
         id_token_signed_response_alg \
         FROM clients"
    };
}

/// A client's list columns, encoded as the JSON text arrays they are stored as.
pub(crate) struct ClientLists {
    pub(crate) redirect_uris: String,
    pub(crate) post_logout_redirect_uris: String,
    pub(crate) grant_types: String,
    pub(crate) scope: String,
    pub(crate) default_scope: String,
    pub(crate) audience: String,
    pub(crate) subject_clients: String,
    pub(crate) subject_audiences: String,
}

impl ClientLists {
    pub(crate) fn of(client: &Client) -> Result<Self, StoreError> {
        let uris = |v: &[RedirectUri]| json::encode(v.iter().map(RedirectUri::as_str));
        let strings = |v: &[String]| json::encode(v.iter().map(String::as_str));
        Ok(ClientLists {
            redirect_uris: uris(&client.redirect_uris)?,
            post_logout_redirect_uris: uris(&client.post_logout_redirect_uris)?,
            grant_types: json::encode(client.grant_types.iter().map(|g| g.as_str()))?,
            scope: json::encode(client.scope.iter().map(Scope::as_str))?,
            default_scope: json::encode(client.default_scope.iter().map(Scope::as_str))?,
            audience: strings(&client.audience)?,
            subject_clients: strings(&client.token_exchange.subject_clients)?,
            subject_audiences: strings(&client.token_exchange.subject_audiences)?,
        })
    }
}

/// Binds `$1` … `$23`, the columns that the client insert (`create_client`) and the admin
/// update (`update_client`) number alike, from `client_id` to `policy_uri`; each statement
/// binds its own columns after them.
macro_rules! bind_client_columns {
    ($query:expr, $client:expr, $lists:expr) => {
        $query
            .bind($client.client_id.as_str())
            .bind($client.client_name.as_str())
            .bind($client.secret_hash.as_ref().map(|h| h.as_bytes().as_slice()))
            .bind($client.token_endpoint_auth_method.as_str())
            .bind($lists.redirect_uris.as_str())
            .bind($lists.post_logout_redirect_uris.as_str())
            .bind($lists.grant_types.as_str())
            .bind($lists.scope.as_str())
            .bind($lists.default_scope.as_str())
            .bind($lists.audience.as_str())
            .bind($client.first_party)
            .bind($client.introspection)
            .bind($client.introspection_audience.as_deref())
            .bind($client.access_token_format.as_str())
            .bind($client.jwks.as_deref())
            .bind($client.jwks_uri.as_deref())
            .bind($client.rate_limit_per_second.map(i64::from))
            .bind(i64::from($client.refresh_token_grace_seconds))
            .bind($client.application_type.map(tessera_core::client::ApplicationType::as_str))
            .bind($client.links.client_uri.as_deref())
            .bind($client.links.logo_uri.as_deref())
            .bind($client.links.tos_uri.as_deref())
            .bind($client.links.policy_uri.as_deref())
    };
}
pub(crate) use bind_client_columns;

#[derive(sqlx::FromRow)]
struct ClientRow {
    client_id: String,
    client_name: String,
    secret_hash: Option<Vec<u8>>,
    token_endpoint_auth_method: String,
    redirect_uris: String,
    post_logout_redirect_uris: String,
    grant_types: String,
    scope: String,
    default_scope: String,
    audience: String,
    first_party: bool,
    introspection: bool,
    introspection_audience: Option<String>,
    access_token_format: String,
    jwks: Option<String>,
    jwks_uri: Option<String>,
    rate_limit_per_second: Option<i64>,
    refresh_token_grace_seconds: i64,
    application_type: Option<String>,
    client_uri: Option<String>,
    logo_uri: Option<String>,
    tos_uri: Option<String>,
    policy_uri: Option<String>,
    registration_token_hash: Option<Vec<u8>>,
    last_used_at: Option<i64>,
    token_exchange_subject_clients: String,
    token_exchange_subject_audiences: String,
    require_pushed_authorization_requests: bool,
    dpop_bound_access_tokens: bool,
    tls_client_auth_member: Option<String>,
    tls_client_auth_value: Option<String>,
    tls_client_certificate_bound_access_tokens: bool,
    created_at: i64,
    id_token_signed_response_alg: String,
}

impl ClientRow {
    fn into_client(self) -> Result<Client, StoreError> {
        let id = self.client_id.as_str();
        let bad = |column: &str, detail: &dyn std::fmt::Display| corrupt(TABLE, column, id, detail);
        let uris = |column: &str, raw: &str| {
            json::decode(TABLE, column, id, raw, RedirectUri::parse_for_registration)
        };
        let scopes = |column: &str, raw: &str| {
            json::decode(TABLE, column, id, raw, Scope::parse).map(ScopeSet::from_scopes)
        };
        let access_token_format =
            AccessTokenFormat::parse(&self.access_token_format).ok_or_else(|| {
                let raw = &self.access_token_format;
                bad("access_token_format", &format!("unknown format `{raw}`"))
            })?;
        // A stored rate outside u32 is refused, never truncated.
        let rate_limit_per_second = match self.rate_limit_per_second {
            None => None,
            Some(n) => Some(u32::try_from(n).map_err(|_| {
                bad("rate_limit_per_second", &format!("{n} is out of range (0 to {})", u32::MAX))
            })?),
        };
        let grace = self.refresh_token_grace_seconds;
        let refresh_token_grace_seconds = u32::try_from(grace).map_err(|_| {
            bad(
                "refresh_token_grace_seconds",
                &format!("{grace} is out of range (0 to {})", u32::MAX),
            )
        })?;
        let application_type = match &self.application_type {
            None => None,
            Some(raw) => Some(ApplicationType::parse(raw).ok_or_else(|| {
                bad("application_type", &format!("unknown application type `{raw}`"))
            })?),
        };
        let dynamic = match &self.registration_token_hash {
            None => None,
            Some(bytes) => Some(DynamicRegistration {
                access_token_hash: SecretHash::from_bytes(bytes).ok_or_else(|| {
                    bad("registration_token_hash", &format!("{} bytes, expected 32", bytes.len()))
                })?,
                last_used_at: self.last_used_at,
            }),
        };
        let strings = |column: &str, raw: &str| {
            json::decode(TABLE, column, id, raw, |s| Ok::<_, &str>(s.to_owned()))
        };
        let token_exchange = ExchangePolicy {
            subject_clients: strings(
                "token_exchange_subject_clients",
                &self.token_exchange_subject_clients,
            )?,
            subject_audiences: strings(
                "token_exchange_subject_audiences",
                &self.token_exchange_subject_audiences,
            )?,
        };
        let tls_client_auth_name = match (&self.tls_client_auth_member, &self.tls_client_auth_value)
        {
            (Some(member), Some(value)) => Some(
                CertificateName::parse(member, value)
                    .map_err(|e| bad("tls_client_auth_value", &e))?,
            ),
            (None, None) => None,
            _ => return Err(bad("tls_client_auth_member", &"set without its value or back")),
        };
        Ok(Client {
            client_id: ClientId::parse(id).map_err(|e| bad("client_id", &e))?,
            tls_client_auth_name,
            tls_client_certificate_bound_access_tokens: self
                .tls_client_certificate_bound_access_tokens,
            secret_hash: match &self.secret_hash {
                None => None,
                Some(bytes) => Some(SecretHash::from_bytes(bytes).ok_or_else(|| {
                    bad("secret_hash", &format!("{} bytes, expected 32", bytes.len()))
                })?),
            },
            token_endpoint_auth_method: AuthMethod::parse(&self.token_endpoint_auth_method)
                .ok_or_else(|| {
                    bad(
                        "token_endpoint_auth_method",
                        &format!("unknown method `{}`", self.token_endpoint_auth_method),
                    )
                })?,
            redirect_uris: uris("redirect_uris", &self.redirect_uris)?,
            post_logout_redirect_uris: uris(
                "post_logout_redirect_uris",
                &self.post_logout_redirect_uris,
            )?,
            grant_types: json::decode(TABLE, "grant_types", id, &self.grant_types, |s| {
                GrantType::parse(s).ok_or("unknown grant type")
            })?,
            scope: scopes("scope", &self.scope)?,
            default_scope: scopes("default_scope", &self.default_scope)?,
            audience: json::decode(TABLE, "audience", id, &self.audience, |s| {
                Ok::<_, &str>(s.to_owned())
            })?,
            first_party: self.first_party,
            introspection: self.introspection,
            introspection_audience: self.introspection_audience,
            access_token_format,
            rate_limit_per_second,
            refresh_token_grace_seconds,
            token_exchange,
            require_pushed_authorization_requests: self.require_pushed_authorization_requests,
            dpop_bound_access_tokens: self.dpop_bound_access_tokens,
            id_token_signed_response_alg: SigningAlg::parse(&self.id_token_signed_response_alg)
                .ok_or_else(|| {
                    let raw = &self.id_token_signed_response_alg;
                    bad("id_token_signed_response_alg", &format!("unknown algorithm `{raw}`"))
                })?,
            jwks: self.jwks,
            jwks_uri: self.jwks_uri,
            application_type,
            links: ClientLinks {
                client_uri: self.client_uri,
                logo_uri: self.logo_uri,
                tos_uri: self.tos_uri,
                policy_uri: self.policy_uri,
            },
            dynamic,
            metadata_document: false,
            created_at: self.created_at,
            client_name: self.client_name,
        })
    }
}

impl ClientStore for Store {
    async fn create_client(&self, client: &Client) -> Result<(), StoreError> {
        let lists = ClientLists::of(client)?;
        const SQL: &str = "INSERT INTO clients (client_id, client_name, secret_hash, \
            token_endpoint_auth_method, redirect_uris, post_logout_redirect_uris, grant_types, \
            scope, default_scope, audience, first_party, introspection, introspection_audience, \
            access_token_format, jwks, jwks_uri, rate_limit_per_second, refresh_token_grace_seconds, \
            application_type, client_uri, logo_uri, tos_uri, policy_uri, registration_token_hash, \
            last_used_at, token_exchange_subject_clients, token_exchange_subject_audiences, \
            require_pushed_authorization_requests, dpop_bound_access_tokens, \
            tls_client_auth_member, tls_client_auth_value, \
            tls_client_certificate_bound_access_tokens, created_at, \
            id_token_signed_response_alg) \
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, \
            $18, $19, $20, $21, $22, $23, $24, $25, $26, $27, $28, $29, $30, $31, $32, $33, $34)";
        // RFC 9700 §4.15: a client_id equal to a user's `sub` would let the client's own
        // client-credentials tokens pass for that user's (`sub` = client_id there). Checked
        // in the insert's transaction; `create_user` checks the other way round.
        const SUB_TAKEN: &str = "SELECT EXISTS (SELECT 1 FROM users WHERE id = $1)";
        with_writer!(self, |pool| {
            let mut tx = pool.begin_with(self.begin_write()).await.map_err(db)?;
            let taken: bool = sqlx::query_scalar(SUB_TAKEN)
                .bind(client.client_id.as_str())
                .fetch_one(&mut *tx)
                .await
                .map_err(db)?;
            if taken {
                tx.rollback().await.map_err(db)?;
                return Err(StoreError::Conflict(format!(
                    "a user whose sub is the client_id `{}`",
                    client.client_id
                )));
            }
            bind_client_columns!(sqlx::query(SQL), client, lists)
                .bind(client.dynamic.as_ref().map(|d| d.access_token_hash.as_bytes().as_slice()))
                .bind(client.dynamic.as_ref().and_then(|d| d.last_used_at))
                .bind(lists.subject_clients.as_str())
                .bind(lists.subject_audiences.as_str())
                .bind(client.require_pushed_authorization_requests)
                .bind(client.dpop_bound_access_tokens)
                .bind(client.tls_client_auth_name.as_ref().map(CertificateName::member))
                .bind(client.tls_client_auth_name.as_ref().map(CertificateName::value))
                .bind(client.tls_client_certificate_bound_access_tokens)
                .bind(client.created_at)
                .bind(client.id_token_signed_response_alg.as_str())
                .execute(&mut *tx)
                .await
                .map_err(|e| conflict_or_db(e, || format!("client `{}`", client.client_id)))?;
            tx.commit().await.map_err(db)?;
        });
        Ok(())
    }

    async fn find_client(&self, id: &ClientId) -> Result<Option<Client>, StoreError> {
        const SQL: &str = concat!(select_clients!(), " WHERE client_id = $1");
        let row: Option<ClientRow> = with_reader!(self, |pool| sqlx::query_as(SQL)
            .bind(id.as_str())
            .fetch_optional(pool)
            .await
            .map_err(db)?);
        row.map(ClientRow::into_client).transpose()
    }

    async fn list_clients(&self) -> Result<Vec<Client>, StoreError> {
        const SQL: &str = concat!(select_clients!(), " ORDER BY client_id");
        let rows: Vec<ClientRow> =
            with_reader!(self, |pool| sqlx::query_as(SQL).fetch_all(pool).await.map_err(db)?);
        rows.into_iter().map(ClientRow::into_client).collect()
    }

    async fn delete_client(&self, id: &ClientId) -> Result<bool, StoreError> {
        const SQL: &str = "DELETE FROM clients WHERE client_id = $1";
        let done = with_writer!(self, |pool| sqlx::query(SQL)
            .bind(id.as_str())
            .execute(pool)
            .await
            .map_err(db)?
            .rows_affected());
        Ok(done > 0)
    }

    async fn update_dynamic_client(&self, client: &Client) -> Result<bool, StoreError> {
        let redirect_uris = json::encode(client.redirect_uris.iter().map(RedirectUri::as_str))?;
        let post_logout_redirect_uris =
            json::encode(client.post_logout_redirect_uris.iter().map(RedirectUri::as_str))?;
        let grant_types = json::encode(client.grant_types.iter().map(|g| g.as_str()))?;
        let scope = json::encode(client.scope.iter().map(Scope::as_str))?;
        let default_scope = json::encode(client.default_scope.iter().map(Scope::as_str))?;
        // RFC 7592 §2.2: the metadata is replaced; the client_id, creation time and
        // registration token are the server's and stay.
        const SQL: &str = "UPDATE clients SET client_name = $2, secret_hash = $3, \
            token_endpoint_auth_method = $4, redirect_uris = $5, post_logout_redirect_uris = $6, \
            grant_types = $7, scope = $8, default_scope = $9, jwks = $10, jwks_uri = $11, \
            application_type = $12, client_uri = $13, logo_uri = $14, tos_uri = $15, \
            policy_uri = $16, tls_client_auth_member = $17, tls_client_auth_value = $18, \
            tls_client_certificate_bound_access_tokens = $19, id_token_signed_response_alg = $20 \
            WHERE client_id = $1 AND registration_token_hash IS NOT NULL";
        let done = with_writer!(self, |pool| sqlx::query(SQL)
            .bind(client.client_id.as_str())
            .bind(client.client_name.as_str())
            .bind(client.secret_hash.as_ref().map(|h| h.as_bytes().as_slice()))
            .bind(client.token_endpoint_auth_method.as_str())
            .bind(redirect_uris.as_str())
            .bind(post_logout_redirect_uris.as_str())
            .bind(grant_types.as_str())
            .bind(scope.as_str())
            .bind(default_scope.as_str())
            .bind(client.jwks.as_deref())
            .bind(client.jwks_uri.as_deref())
            .bind(client.application_type.map(ApplicationType::as_str))
            .bind(client.links.client_uri.as_deref())
            .bind(client.links.logo_uri.as_deref())
            .bind(client.links.tos_uri.as_deref())
            .bind(client.links.policy_uri.as_deref())
            .bind(client.tls_client_auth_name.as_ref().map(CertificateName::member))
            .bind(client.tls_client_auth_name.as_ref().map(CertificateName::value))
            .bind(client.tls_client_certificate_bound_access_tokens)
            .bind(client.id_token_signed_response_alg.as_str())
            .execute(pool)
            .await
            .map_err(db)?
            .rows_affected());
        Ok(done > 0)
    }

    async fn record_client_use(&self, id: &ClientId, now: i64) -> Result<(), StoreError> {
        const SQL: &str = "UPDATE clients SET last_used_at = $2 \
            WHERE client_id = $1 AND registration_token_hash IS NOT NULL";
        with_writer!(self, |pool| sqlx::query(SQL)
            .bind(id.as_str())
            .bind(now)
            .execute(pool)
            .await
            .map_err(db)?
            .rows_affected());
        Ok(())
    }

    async fn prune_dynamic_clients(
        &self,
        unused_before: i64,
        unfinished_before: i64,
    ) -> Result<u64, StoreError> {
        const SQL: &str = "DELETE FROM clients WHERE registration_token_hash IS NOT NULL AND \
            ((last_used_at IS NOT NULL AND last_used_at < $1) \
             OR (last_used_at IS NULL AND created_at < $2))";
        let done = with_writer!(self, |pool| sqlx::query(SQL)
            .bind(unused_before)
            .bind(unfinished_before)
            .execute(pool)
            .await
            .map_err(db)?
            .rows_affected());
        Ok(done)
    }
}

impl InitialAccessTokenStore for Store {
    async fn create_initial_access_token(
        &self,
        token: &InitialAccessToken,
    ) -> Result<(), StoreError> {
        const SQL: &str = "INSERT INTO initial_access_tokens \
            (token_hash, single_use, expires_at, created_at) VALUES ($1, $2, $3, $4)";
        with_writer!(self, |pool| sqlx::query(SQL)
            .bind(token.hash.as_bytes().as_slice())
            .bind(token.single_use)
            .bind(token.expires_at)
            .bind(token.created_at)
            .execute(pool)
            .await
            .map_err(|e| conflict_or_db(e, || "the initial access token".to_owned()))?
            .rows_affected());
        Ok(())
    }

    async fn spend_initial_access_token(
        &self,
        hash: &SecretHash,
        now: i64,
    ) -> Result<bool, StoreError> {
        // A single-use token is deleted by the statement that accepts it: of two registrations
        // presenting it at once, only one deletes the row.
        const SPEND: &str = "DELETE FROM initial_access_tokens \
            WHERE token_hash = $1 AND single_use AND (expires_at IS NULL OR expires_at > $2)";
        const LIVE: &str = "SELECT EXISTS (SELECT 1 FROM initial_access_tokens \
            WHERE token_hash = $1 AND NOT single_use AND (expires_at IS NULL OR expires_at > $2))";
        let spent = with_writer!(self, |pool| sqlx::query(SPEND)
            .bind(hash.as_bytes().as_slice())
            .bind(now)
            .execute(pool)
            .await
            .map_err(db)?
            .rows_affected());
        if spent > 0 {
            return Ok(true);
        }
        let live: bool = with_reader!(self, |pool| sqlx::query_scalar(LIVE)
            .bind(hash.as_bytes().as_slice())
            .bind(now)
            .fetch_one(pool)
            .await
            .map_err(db)?);
        Ok(live)
    }
}
