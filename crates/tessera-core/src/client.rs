//! Client records, with RFC 7591 metadata names so that dynamic registration is a thin layer.

use std::fmt;

use crate::client_id::ClientId;
use crate::grant_type::GrantType;
use crate::keys::SigningAlg;
use crate::redirect_uri::RedirectUri;
use crate::scope::ScopeSet;
use crate::secret::{Secret, SecretHash};

/// How a client authenticates at the token endpoint (RFC 7591 §2 `token_endpoint_auth_method`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthMethod {
    /// RFC 6749 §2.3.1, HTTP Basic: the method every server must support and the default.
    ClientSecretBasic,
    /// RFC 6749 §2.3.1, credentials in the form body.
    ClientSecretPost,
    /// A signed JWT assertion with a key the client registered (RFC 7523 §2.2, OIDC Core §9).
    PrivateKeyJwt,
    /// A public client (RFC 6749 §2.1): no secret.
    None,
    /// RFC 8705 §2.1: a CA-issued TLS client certificate with the registered subject or SAN.
    TlsClientAuth,
    /// RFC 8705 §2.2: a self-signed TLS client certificate whose key the client registered.
    SelfSignedTlsClientAuth,
}

impl AuthMethod {
    pub const ALL: [AuthMethod; 6] = [
        Self::ClientSecretBasic,
        Self::ClientSecretPost,
        Self::PrivateKeyJwt,
        Self::None,
        Self::TlsClientAuth,
        Self::SelfSignedTlsClientAuth,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::ClientSecretBasic => "client_secret_basic",
            Self::ClientSecretPost => "client_secret_post",
            Self::PrivateKeyJwt => "private_key_jwt",
            Self::None => "none",
            Self::TlsClientAuth => "tls_client_auth",
            Self::SelfSignedTlsClientAuth => "self_signed_tls_client_auth",
        }
    }

    /// Whether the client authenticates with its TLS certificate (RFC 8705 §2).
    pub fn uses_certificate(self) -> bool {
        matches!(self, Self::TlsClientAuth | Self::SelfSignedTlsClientAuth)
    }

    /// Whether the method proves a shared secret (and the client therefore has one).
    pub fn uses_secret(self) -> bool {
        matches!(self, Self::ClientSecretBasic | Self::ClientSecretPost)
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.as_str() == raw)
    }
}

impl fmt::Display for AuthMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The form of a client's access tokens (requirements R3.1).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AccessTokenFormat {
    /// Self-contained JWTs per RFC 9068, verifiable against the JWKS.
    #[default]
    Jwt,
    /// Random reference tokens, stored hashed; resource servers introspect them (RFC 7662).
    Opaque,
}

impl AccessTokenFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Jwt => "jwt",
            Self::Opaque => "opaque",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        [Self::Jwt, Self::Opaque].into_iter().find(|f| f.as_str() == raw)
    }
}

/// OIDC Dynamic Client Registration 1.0 §2 `application_type`, with the redirect-URI rules
/// of RFC 8252 for native apps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ApplicationType {
    /// Runs on a web server: https redirect URIs on a real host only.
    Web,
    /// Runs on the user's device (RFC 8252): private-use schemes, loopback http, or https.
    Native,
}

impl ApplicationType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Web => "web",
            Self::Native => "native",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        [Self::Web, Self::Native].into_iter().find(|t| t.as_str() == raw)
    }
}

/// The pages a client names about itself (RFC 7591 §2), https URLs shown on the consent page.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClientLinks {
    pub client_uri: Option<String>,
    pub logo_uri: Option<String>,
    pub tos_uri: Option<String>,
    pub policy_uri: Option<String>,
}

/// What a client registered through `/register` (RFC 7591) carries besides its metadata.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DynamicRegistration {
    /// SHA-256 of its RFC 7592 registration access token.
    pub access_token_hash: SecretHash,
    /// When a token was last issued to it; `None`: it never completed a flow.
    pub last_used_at: Option<i64>,
}

/// An initial access token (RFC 7591 §3) made by the operator: only its hash is stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InitialAccessToken {
    pub hash: SecretHash,
    /// Spent by the first registration that presents it.
    pub single_use: bool,
    pub expires_at: Option<i64>,
    pub created_at: i64,
}

/// RFC 8693 §5: which subject tokens a client may exchange. A subject token is admitted when it
/// was issued to one of `subject_clients` or is meant for one of `subject_audiences`; what the
/// exchange may yield is bounded by the client's own `audience` and `scope`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExchangePolicy {
    pub subject_clients: Vec<String>,
    pub subject_audiences: Vec<String>,
}

impl ExchangePolicy {
    pub fn is_empty(&self) -> bool {
        self.subject_clients.is_empty() && self.subject_audiences.is_empty()
    }

    /// Whether a subject token issued to `client_id` with audience `audience` may be exchanged.
    pub fn admits(&self, client_id: &str, audience: &[String]) -> bool {
        self.subject_clients.iter().any(|c| c == client_id)
            || audience.iter().any(|a| self.subject_audiences.contains(a))
    }
}

/// A registered client.
#[derive(Clone, Debug)]
pub struct Client {
    pub client_id: ClientId,
    pub client_name: String,
    /// SHA-256 of the server-generated secret; `None` for public clients.
    pub secret_hash: Option<SecretHash>,
    pub token_endpoint_auth_method: AuthMethod,
    pub redirect_uris: Vec<RedirectUri>,
    pub post_logout_redirect_uris: Vec<RedirectUri>,
    pub grant_types: Vec<GrantType>,
    /// Every scope the client may be granted.
    pub scope: ScopeSet,
    /// What a request without `scope` gets (RFC 6749 §3.3); a subset of `scope`.
    pub default_scope: ScopeSet,
    /// The `aud` of its access tokens; empty means the issuer itself.
    pub audience: Vec<String>,
    /// A first-party client: consent is implied (used by the authorization endpoint).
    pub first_party: bool,
    /// May call the introspection endpoint (RFC 7662 §2.1: callers must be authorized).
    pub introspection: bool,
    /// When set, introspection describes to this client only tokens whose `aud` includes this
    /// value (the resource it serves, RFC 8707); any other token is `active: false` to it
    /// (RFC 7662 §2.2 lets the answer depend on the caller).
    pub introspection_audience: Option<String>,
    pub access_token_format: AccessTokenFormat,
    /// The client's public keys for `private_key_jwt`, as a JWKS document (RFC 7591 `jwks`).
    pub jwks: Option<String>,
    /// Where the client publishes its JWKS (RFC 7591 `jwks_uri`).
    pub jwks_uri: Option<String>,
    /// Token-endpoint requests per second allowed to this client; `None`: the server default.
    pub rate_limit_per_second: Option<u32>,
    /// For this many seconds after a refresh token was rotated, this client may present it
    /// again and get new tokens instead of having the grant revoked as a reuse: two requests
    /// of one app that refreshed at once (0: none, the default).
    pub refresh_token_grace_seconds: u32,
    /// OIDC Registration §2 `application_type`; `None`: not declared (only the general
    /// redirect-URI rules apply).
    pub application_type: Option<ApplicationType>,
    pub links: ClientLinks,
    /// Set for clients that registered themselves (RFC 7591); never first-party.
    pub dynamic: Option<DynamicRegistration>,
    /// A client known only from the client ID metadata document at its client_id (never
    /// stored).
    pub metadata_document: bool,
    /// Whose tokens it may exchange (RFC 8693); empty unless it has the token-exchange grant.
    pub token_exchange: ExchangePolicy,
    /// RFC 9126 §6: its authorization requests must arrive through the PAR endpoint.
    pub require_pushed_authorization_requests: bool,
    /// RFC 9449 §5.2: its token requests must carry a DPoP proof (so its tokens are bound).
    pub dpop_bound_access_tokens: bool,
    /// RFC 8705 §2.1.2: the subject or SAN its certificate must carry (`tls_client_auth`).
    pub tls_client_auth_name: Option<crate::mtls::CertificateName>,
    /// RFC 8705 §3: its access tokens are bound to the certificate it presented.
    pub tls_client_certificate_bound_access_tokens: bool,
    /// OIDC Registration §2 `id_token_signed_response_alg`: what its ID tokens are signed
    /// with; RS256 unless it asked for another.
    pub id_token_signed_response_alg: SigningAlg,
    pub created_at: i64,
}

impl Client {
    /// Whether the client registered itself at `/register` rather than by an operator.
    pub fn is_dynamic(&self) -> bool {
        self.dynamic.is_some()
    }

    /// Whether an operator registered the client: neither dynamic nor a metadata document.
    pub fn is_operator_registered(&self) -> bool {
        self.dynamic.is_none() && !self.metadata_document
    }

    pub fn is_public(&self) -> bool {
        self.token_endpoint_auth_method == AuthMethod::None
    }

    pub fn allows_grant(&self, grant: GrantType) -> bool {
        self.grant_types.contains(&grant)
    }
}

/// What an administrator asks for when registering a client.
#[derive(Debug, Default)]
pub struct ClientRegistration {
    pub client_id: Option<ClientId>,
    pub client_name: String,
    pub redirect_uris: Vec<RedirectUri>,
    pub post_logout_redirect_uris: Vec<RedirectUri>,
    /// Empty: `authorization_code` + `refresh_token` when redirect URIs are given, else
    /// `client_credentials`.
    pub grant_types: Vec<GrantType>,
    pub scope: ScopeSet,
    pub default_scope: ScopeSet,
    pub audience: Vec<String>,
    pub public: bool,
    pub first_party: bool,
    pub introspection: bool,
    pub introspection_audience: Option<String>,
    pub access_token_format: AccessTokenFormat,
    pub jwks: Option<String>,
    pub jwks_uri: Option<String>,
    pub rate_limit_per_second: Option<u32>,
    pub refresh_token_grace_seconds: u32,
    pub token_exchange: ExchangePolicy,
    pub require_pushed_authorization_requests: bool,
    pub dpop_bound_access_tokens: bool,
    pub tls_client_auth_name: Option<crate::mtls::CertificateName>,
    pub tls_client_certificate_bound_access_tokens: bool,
    /// OIDC Registration §2 `id_token_signed_response_alg`; `None`: RS256, the default.
    pub id_token_signed_response_alg: Option<SigningAlg>,
    /// Auth method for confidential clients; `client_secret_basic` when absent.
    pub auth_method: Option<AuthMethod>,
    /// A secret imported from another server instead of a generated one.
    pub imported_secret: Option<Secret>,
    pub application_type: Option<ApplicationType>,
    pub links: ClientLinks,
}

/// OIDC Registration §2: "The default, if omitted, is RS256."
pub const DEFAULT_ID_TOKEN_ALG: SigningAlg = SigningAlg::RS256;

/// Longest refresh-token grace window: it is for requests sent at the same moment, and every
/// second of it is a second in which a stolen refresh token is not detected as reused.
pub const MAX_REFRESH_TOKEN_GRACE_SECONDS: u32 = 30;

/// Shortest secret accepted on import: 32 characters.
pub const MIN_IMPORTED_SECRET_LEN: usize = 32;

impl ClientRegistration {
    /// Checks the registration and builds the client record. The plaintext secret, if any, is
    /// returned beside it: it is shown once and never stored.
    pub fn into_client(self, now: i64) -> Result<(Client, Option<Secret>), String> {
        if self.client_name.trim().is_empty() {
            return Err("a client needs a name".into());
        }
        let mut grant_types = self.grant_types;
        if grant_types.is_empty() {
            grant_types = if self.redirect_uris.is_empty() {
                vec![GrantType::ClientCredentials]
            } else {
                vec![GrantType::AuthorizationCode, GrantType::RefreshToken]
            };
        }
        grant_types.sort();
        grant_types.dedup();
        if grant_types.contains(&GrantType::AuthorizationCode) && self.redirect_uris.is_empty() {
            return Err("the authorization_code grant needs at least one redirect URI".into());
        }
        if let Some(s) = self.default_scope.first_outside(&self.scope) {
            return Err(format!(
                "the default scope `{}` is not among the client's allowed scopes",
                s.as_str()
            ));
        }
        if let Some(audience) = &self.introspection_audience {
            if !self.introspection {
                return Err(
                    "an introspection audience needs the client to be allowed to introspect".into(),
                );
            }
            // RFC 8707 §2: a resource is an absolute URI without a fragment.
            if url::Url::parse(audience).is_err() || audience.contains('#') {
                return Err(format!(
                    "the introspection audience `{audience}` is not an absolute URI"
                ));
            }
        }
        let (method, secret) = if self.public {
            // RFC 6749 §4.4: the client credentials grant is for confidential clients only.
            if grant_types.contains(&GrantType::ClientCredentials) {
                return Err("a public client cannot use the client_credentials grant".into());
            }
            if self.imported_secret.is_some() {
                return Err("a public client has no secret".into());
            }
            if self.auth_method.is_some_and(|m| m != AuthMethod::None) {
                return Err("a public client authenticates with method `none`".into());
            }
            // RFC 7662 §2.1 / §4: callers of the introspection endpoint must authenticate; a
            // public client cannot, so anyone could introspect any token in its name.
            if self.introspection {
                return Err("a public client cannot be allowed to introspect tokens".into());
            }
            (AuthMethod::None, None)
        } else if self.auth_method == Some(AuthMethod::PrivateKeyJwt) {
            // RFC 7523 §2.2: the client proves possession of a key it registered.
            if self.jwks.is_none() == self.jwks_uri.is_none() {
                return Err("private_key_jwt needs exactly one of jwks or jwks_uri".into());
            }
            if self.imported_secret.is_some() {
                return Err("a private_key_jwt client has no secret".into());
            }
            (AuthMethod::PrivateKeyJwt, None)
        } else if self.auth_method == Some(AuthMethod::TlsClientAuth) {
            // RFC 8705 §2.1.2: exactly one name the certificate must carry.
            if self.tls_client_auth_name.is_none() {
                return Err("tls_client_auth needs the subject DN or one SAN its certificate \
                            carries (tls_client_auth_subject_dn, _san_dns, _san_uri, _san_ip \
                            or _san_email)"
                    .into());
            }
            if self.imported_secret.is_some() {
                return Err("a tls_client_auth client has no secret".into());
            }
            (AuthMethod::TlsClientAuth, None)
        } else if self.auth_method == Some(AuthMethod::SelfSignedTlsClientAuth) {
            // RFC 8705 §2.2.2: the certificate's key is among the registered ones.
            if self.jwks.is_none() == self.jwks_uri.is_none() {
                return Err(
                    "self_signed_tls_client_auth needs exactly one of jwks or jwks_uri".into()
                );
            }
            if self.imported_secret.is_some() {
                return Err("a self_signed_tls_client_auth client has no secret".into());
            }
            (AuthMethod::SelfSignedTlsClientAuth, None)
        } else {
            let method = self.auth_method.unwrap_or(AuthMethod::ClientSecretBasic);
            if method == AuthMethod::None {
                return Err("a confidential client needs an authentication method".into());
            }
            let secret = match self.imported_secret {
                Some(s) if s.expose().chars().count() < MIN_IMPORTED_SECRET_LEN => {
                    return Err(format!(
                        "an imported secret must have at least {MIN_IMPORTED_SECRET_LEN} characters"
                    ));
                }
                Some(s) => s,
                None => Secret::generate(),
            };
            (method, Some(secret))
        };
        if self.refresh_token_grace_seconds > MAX_REFRESH_TOKEN_GRACE_SECONDS {
            return Err(format!(
                "the refresh-token grace window is at most {MAX_REFRESH_TOKEN_GRACE_SECONDS} seconds"
            ));
        }
        if self.refresh_token_grace_seconds > 0 && !grant_types.contains(&GrantType::RefreshToken) {
            return Err("a refresh-token grace window needs the refresh_token grant".into());
        }
        // RFC 8693 §5: exchanging tokens is powerful; only a confidential client with a policy
        // naming whose tokens it may exchange gets it.
        let exchanges = grant_types.contains(&GrantType::TokenExchange);
        if exchanges && self.public {
            return Err("a public client cannot use the token-exchange grant".into());
        }
        if exchanges && self.token_exchange.is_empty() {
            return Err("the token-exchange grant needs at least one subject client or subject \
                        audience it may exchange from"
                .into());
        }
        if !exchanges && !self.token_exchange.is_empty() {
            return Err("a token-exchange policy needs the token-exchange grant".into());
        }
        if self.require_pushed_authorization_requests
            && !grant_types.contains(&GrantType::AuthorizationCode)
        {
            return Err("requiring pushed authorization requests needs the authorization_code \
                        grant"
                .into());
        }
        if self.tls_client_auth_name.is_some() && method != AuthMethod::TlsClientAuth {
            return Err("a tls_client_auth subject or SAN needs the tls_client_auth method".into());
        }
        // Certificate-bound tokens are JWTs (`cnf.x5t#S256`); opaque tokens keep no binding.
        if self.tls_client_certificate_bound_access_tokens
            && self.access_token_format == AccessTokenFormat::Opaque
        {
            return Err("certificate-bound access tokens are JWTs; drop the opaque format".into());
        }
        // DPoP-bound tokens are JWTs (`cnf.jkt`); opaque tokens keep no binding.
        if self.dpop_bound_access_tokens && self.access_token_format == AccessTokenFormat::Opaque {
            return Err("DPoP-bound access tokens are JWTs; drop the opaque format".into());
        }
        let client_id = match self.client_id {
            Some(id) => id,
            None => ClientId::parse(&crate::secret::random_id::<16>())
                .map_err(|e| format!("generated client_id is invalid: {e}"))?,
        };
        let client = Client {
            client_id,
            client_name: self.client_name,
            secret_hash: secret.as_ref().map(Secret::hash),
            token_endpoint_auth_method: method,
            redirect_uris: self.redirect_uris,
            post_logout_redirect_uris: self.post_logout_redirect_uris,
            grant_types,
            scope: self.scope,
            default_scope: self.default_scope,
            audience: self.audience,
            first_party: self.first_party,
            introspection: self.introspection,
            introspection_audience: self.introspection_audience,
            access_token_format: self.access_token_format,
            jwks: self.jwks,
            jwks_uri: self.jwks_uri,
            rate_limit_per_second: self.rate_limit_per_second,
            refresh_token_grace_seconds: self.refresh_token_grace_seconds,
            application_type: self.application_type,
            links: self.links,
            dynamic: None,
            metadata_document: false,
            token_exchange: self.token_exchange,
            require_pushed_authorization_requests: self.require_pushed_authorization_requests,
            dpop_bound_access_tokens: self.dpop_bound_access_tokens,
            tls_client_auth_name: self.tls_client_auth_name,
            tls_client_certificate_bound_access_tokens: self
                .tls_client_certificate_bound_access_tokens,
            id_token_signed_response_alg: self
                .id_token_signed_response_alg
                .unwrap_or(DEFAULT_ID_TOKEN_ALG),
            created_at: now,
        };
        Ok((client, secret))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registration() -> ClientRegistration {
        ClientRegistration { client_name: "svc".into(), ..Default::default() }
    }

    #[test]
    fn refresh_token_grace_window_is_short_and_needs_the_refresh_grant() {
        let registration = |grace, grant_types: Vec<GrantType>| ClientRegistration {
            client_name: "app".into(),
            grant_types,
            refresh_token_grace_seconds: grace,
            ..Default::default()
        };
        let refreshing = || vec![GrantType::ClientCredentials, GrantType::RefreshToken];
        let (client, _) = registration(30, refreshing()).into_client(0).unwrap();
        assert_eq!(client.refresh_token_grace_seconds, 30);
        assert!(registration(31, refreshing()).into_client(0).is_err());
        assert!(registration(5, vec![GrantType::ClientCredentials]).into_client(0).is_err());
    }

    #[test]
    fn r4_6_confidential_clients_get_a_generated_secret_stored_only_as_hash() {
        let (client, secret) = registration().into_client(0).unwrap();
        let secret = secret.unwrap();
        assert_eq!(client.secret_hash, Some(secret.hash()));
        assert_eq!(client.grant_types, vec![GrantType::ClientCredentials]);
        assert_eq!(client.token_endpoint_auth_method, AuthMethod::ClientSecretBasic);
    }

    #[test]
    fn rfc6749_4_4_public_clients_cannot_use_client_credentials() {
        let reg = ClientRegistration {
            public: true,
            grant_types: vec![GrantType::ClientCredentials],
            ..registration()
        };
        assert!(reg.into_client(0).is_err());
    }

    #[test]
    fn rfc7662_4_public_clients_cannot_be_allowed_to_introspect() {
        let reg = ClientRegistration {
            public: true,
            grant_types: vec![GrantType::RefreshToken],
            introspection: true,
            ..registration()
        };
        assert!(reg.into_client(0).is_err());
    }

    #[test]
    fn rfc8707_2_introspection_audience_is_an_absolute_uri_of_an_introspecting_client() {
        let with = |introspection, audience: &str| ClientRegistration {
            introspection,
            introspection_audience: Some(audience.to_owned()),
            ..registration()
        };
        assert!(with(false, "https://api.example/orders").into_client(0).is_err());
        assert!(with(true, "orders").into_client(0).is_err());
        let (client, _) = with(true, "https://api.example/orders").into_client(0).unwrap();
        assert_eq!(client.introspection_audience.as_deref(), Some("https://api.example/orders"));
    }

    #[test]
    fn imported_secrets_must_be_long_enough() {
        let short = ClientRegistration {
            imported_secret: Some(Secret::from_string("x".repeat(31))),
            ..registration()
        };
        assert!(short.into_client(0).is_err());
        let long = ClientRegistration {
            imported_secret: Some(Secret::from_string("x".repeat(32))),
            ..registration()
        };
        assert!(long.into_client(0).is_ok());
    }

    #[test]
    fn rfc6749_3_3_default_scope_must_be_allowed() {
        let reg = ClientRegistration {
            scope: ScopeSet::parse("a:r").unwrap(),
            default_scope: ScopeSet::parse("a:w").unwrap(),
            ..registration()
        };
        assert!(reg.into_client(0).is_err());
    }

    #[test]
    fn rfc8693_5_token_exchange_needs_a_confidential_client_with_a_policy() {
        let policy =
            ExchangePolicy { subject_clients: vec!["web".into()], subject_audiences: vec![] };
        let with = |public, grant_types: Vec<GrantType>, token_exchange| ClientRegistration {
            public,
            grant_types,
            token_exchange,
            ..registration()
        };
        let exchange = || vec![GrantType::TokenExchange];
        assert!(with(false, exchange(), policy.clone()).into_client(0).is_ok());
        assert!(with(false, exchange(), ExchangePolicy::default()).into_client(0).is_err());
        assert!(with(true, exchange(), policy.clone()).into_client(0).is_err());
        let cc = vec![GrantType::ClientCredentials];
        assert!(with(false, cc, policy.clone()).into_client(0).is_err(), "policy without grant");
        assert!(policy.admits("web", &[]) && !policy.admits("other", &["web".into()]));
    }

    #[test]
    fn authorization_code_needs_a_redirect_uri() {
        let reg = ClientRegistration {
            grant_types: vec![GrantType::AuthorizationCode],
            ..registration()
        };
        assert!(reg.into_client(0).is_err());
    }
}
