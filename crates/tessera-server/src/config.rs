//! Configuration: a TOML file, then `TESSERA_*` environment variables, then command-line flags,
//! validated once at start. Every error names the key and what would be valid.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use tessera_core::issuer::{HttpIssuers, Issuer};
use tessera_core::keys::{KeyEncryptionKey, SigningAlg};
use tessera_core::secret::SecretHash;
use tessera_core::token::TokenPolicy;
use tessera_store::SqliteSync;

use crate::features::Features;
use crate::rate_limit::{Backoff, Limit};
use crate::source_address::{Cidr, ForwardedHeader, TrustedProxies};

/// How a key is validated: its default and the values it allows. The one description of each
/// key that validation, error messages and the README agree on.
#[derive(Clone, Copy, Debug)]
pub enum Rule {
    /// An integer in `min..=max`, `default` when unset.
    Int { default: i64, min: i64, max: i64 },
    /// An optional integer in `min..=max`: unset means off.
    OptionalInt { min: i64, max: i64 },
    /// One of `values`; `default` when unset.
    OneOf { default: &'static str, values: &'static [&'static str] },
    /// `true` or `false`; `default` when unset.
    Bool { default: bool },
    /// Anything else, checked by its own code; `default` and `allowed` say what in words.
    Other { default: &'static str, allowed: &'static str },
}

/// One configuration key: its name in the file, its environment variable, its rule.
#[derive(Clone, Copy, Debug)]
pub struct Key {
    pub name: &'static str,
    /// `TESSERA_<NAME>`; `None` for tables that only a file can express (`[scopes]`).
    pub env: Option<&'static str>,
    pub rule: Rule,
}

/// Text from an environment variable or a flag, as a key's value.
trait FromText: Sized {
    fn from_text(text: &str) -> Result<Self, String>;
}

impl FromText for String {
    fn from_text(text: &str) -> Result<Self, String> {
        Ok(text.to_owned())
    }
}

impl FromText for PathBuf {
    fn from_text(text: &str) -> Result<Self, String> {
        Ok(text.into())
    }
}

impl FromText for i64 {
    fn from_text(text: &str) -> Result<Self, String> {
        text.trim().parse().map_err(|_| "is not an integer".to_owned())
    }
}

impl FromText for bool {
    fn from_text(text: &str) -> Result<Self, String> {
        match text.trim() {
            "true" | "1" => Ok(true),
            "false" | "0" => Ok(false),
            _ => Err("must be true or false".to_owned()),
        }
    }
}

/// A comma-separated list (`TESSERA_TRUSTED_PROXIES=10.0.0.0/8,fd00::/8`).
impl FromText for Vec<String> {
    fn from_text(text: &str) -> Result<Self, String> {
        Ok(text.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect())
    }
}

impl FromText for BTreeMap<String, String> {
    fn from_text(_: &str) -> Result<Self, String> {
        Err("is a table: set it in the configuration file".to_owned())
    }
}

/// Declares every configuration key once: the file's field (in [`RawConfig`]), its constant in
/// [`keys`] (name, environment variable, rule) and its place in [`TABLE`], through which the
/// file, the environment and the flags are all read.
macro_rules! settings_table {
    ($( $(#[doc = $doc:literal])* $field:ident: $ty:ty, $konst:ident, $env:expr, $rule:expr; )*) => {
        /// The configuration as written in the file, the environment or the flags, before
        /// validation.
        #[derive(Debug, Default, Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct RawConfig {
            $( $(#[doc = $doc])* pub $field: Option<$ty>, )*
        }

        /// Each key's name, environment variable and rule.
        pub mod keys {
            use super::{Key, Rule, int};
            $( $(#[doc = $doc])* pub const $konst: Key =
                Key { name: stringify!($field), env: $env, rule: $rule }; )*
        }

        /// Every key, in the order of the README's configuration section.
        pub const TABLE: &[Key] = &[$( keys::$konst ),*];

        impl RawConfig {
            /// Sets the key called `name` from text; `Ok(false)` if there is no such key.
            fn set_text(&mut self, name: &str, text: &str) -> Result<bool, String> {
                match name {
                    $( stringify!($field) => self.$field = Some(<$ty as FromText>::from_text(text)?), )*
                    _ => return Ok(false),
                }
                Ok(true)
            }
        }
    };
}

const fn int(default: i64, min: i64, max: i64) -> Rule {
    Rule::Int { default, min, max }
}

settings_table! {
    /// The issuer identifier: https, or http on loopback (RFC 8414 §2).
    issuer: String, ISSUER, Some("TESSERA_ISSUER"),
        Rule::Other { default: "required (--dev: http://127.0.0.1:<port>)", allowed: "an https URL; http only on loopback or with --dev" };
    listen: String, LISTEN, Some("TESSERA_LISTEN"),
        Rule::Other { default: "127.0.0.1:8080", allowed: "an address like 0.0.0.0:8080" };
    database_url: String, DATABASE_URL, Some("TESSERA_DATABASE_URL"),
        Rule::Other { default: "sqlite://tessera.db", allowed: "sqlite://PATH or postgres://…" };
    /// When a SQLite commit is durable: `normal` survives `kill -9`, `full` also power loss.
    sqlite_synchronous: String, SQLITE_SYNCHRONOUS, Some("TESSERA_SQLITE_SYNCHRONOUS"),
        Rule::OneOf { default: "normal", values: &["normal", "full"] };
    /// How long a request waits for a database connection before it is answered 503
    /// `temporarily_unavailable` (so that an outage fails fast instead of hanging).
    database_acquire_timeout_ms: i64, DATABASE_ACQUIRE_TIMEOUT_MS, Some("TESSERA_DATABASE_ACQUIRE_TIMEOUT_MS"),
        int(1000, 50, 60_000);
    /// How many database connections one Tessera process keeps at most (PostgreSQL; on SQLite
    /// the sqlx read connections of the cold paths). Every store call holds one for a round
    /// trip, so this bounds the requests that reach the database at once.
    database_max_connections: i64, DATABASE_MAX_CONNECTIONS, Some("TESSERA_DATABASE_MAX_CONNECTIONS"),
        int(10, 1, 1000);
    key_encryption_key: String, KEY_ENCRYPTION_KEY, Some("TESSERA_KEY_ENCRYPTION_KEY"),
        Rule::Other { default: "required (--dev: generated into tessera.kek)", allowed: "32 bytes base64url (tessera keys generate-kek)" };
    key_encryption_key_file: PathBuf, KEY_ENCRYPTION_KEY_FILE, Some("TESSERA_KEY_ENCRYPTION_KEY_FILE"),
        Rule::Other { default: "unset", allowed: "a file holding the key" };
    /// R3.2: 15 minutes by default.
    access_token_ttl_seconds: i64, ACCESS_TOKEN_TTL_SECONDS, Some("TESSERA_ACCESS_TOKEN_TTL_SECONDS"),
        int(900, 60, 86_400);
    access_token_signing_alg: String, ACCESS_TOKEN_SIGNING_ALG, Some("TESSERA_ACCESS_TOKEN_SIGNING_ALG"),
        Rule::OneOf { default: "ES256", values: &["RS256", "ES256", "EdDSA"] };
    /// How long a new key is published before it signs (rotation overlap, R2.5).
    key_publish_ahead_seconds: i64, KEY_PUBLISH_AHEAD_SECONDS, Some("TESSERA_KEY_PUBLISH_AHEAD_SECONDS"),
        int(300, 0, 30 * 86_400);
    log_format: String, LOG_FORMAT, Some("TESSERA_LOG_FORMAT"),
        Rule::OneOf { default: "json (--dev: pretty)", values: &["json", "pretty"] };
    id_token_ttl_seconds: i64, ID_TOKEN_TTL_SECONDS, Some("TESSERA_ID_TOKEN_TTL_SECONDS"),
        int(900, 60, 86_400);
    /// R1.2: codes live 60 s by default and never more than 10 minutes.
    code_ttl_seconds: i64, CODE_TTL_SECONDS, Some("TESSERA_CODE_TTL_SECONDS"), int(60, 5, 600);
    /// At most the absolute lifetime.
    refresh_token_idle_ttl_seconds: i64, REFRESH_TOKEN_IDLE_TTL_SECONDS, Some("TESSERA_REFRESH_TOKEN_IDLE_TTL_SECONDS"),
        int(14 * 86_400, 300, 90 * 86_400);
    /// R1.4: absolute lifetime 30 days by default, at most 90.
    refresh_token_absolute_ttl_seconds: i64, REFRESH_TOKEN_ABSOLUTE_TTL_SECONDS, Some("TESSERA_REFRESH_TOKEN_ABSOLUTE_TTL_SECONDS"),
        int(30 * 86_400, 3600, 90 * 86_400);
    session_ttl_seconds: i64, SESSION_TTL_SECONDS, Some("TESSERA_SESSION_TTL_SECONDS"),
        int(12 * 3600, 300, 30 * 86_400);
    /// RFC 8628 §3.2: how long a device code lives.
    device_code_ttl_seconds: i64, DEVICE_CODE_TTL_SECONDS, Some("TESSERA_DEVICE_CODE_TTL_SECONDS"),
        int(600, 60, 3600);
    /// RFC 8628 §3.2: how often a device code may be polled.
    device_poll_interval_seconds: i64, DEVICE_POLL_INTERVAL_SECONDS, Some("TESSERA_DEVICE_POLL_INTERVAL_SECONDS"),
        int(5, 1, 60);
    /// Human descriptions of scopes, shown on the consent page.
    scopes: BTreeMap<String, String>, SCOPES, None,
        Rule::Other { default: "descriptions of openid, profile, email, offline_access", allowed: "a [scopes] table" };
    redis_url: String, REDIS_URL, Some("TESSERA_REDIS_URL"),
        Rule::Other { default: "unset (limits in process)", allowed: "redis:// or rediss://" };
    client_rate_limit_per_second: i64, CLIENT_RATE_LIMIT_PER_SECOND, Some("TESSERA_CLIENT_RATE_LIMIT_PER_SECOND"),
        int(1000, 1, 1_000_000);
    /// A client must send a request's whole header within this (slowloris).
    header_read_timeout_seconds: i64, HEADER_READ_TIMEOUT_SECONDS, Some("TESSERA_HEADER_READ_TIMEOUT_SECONDS"),
        int(10, 1, 300);
    /// A request, body included, must be answered within this (else 408).
    request_timeout_seconds: i64, REQUEST_TIMEOUT_SECONDS, Some("TESSERA_REQUEST_TIMEOUT_SECONDS"),
        int(30, 1, 3600);
    /// Connections served at once; more wait in the kernel's backlog.
    max_connections: i64, MAX_CONNECTIONS, Some("TESSERA_MAX_CONNECTIONS"),
        int(10_000, 1, 1_000_000);
    /// Failed client authentications (wrong secrets, unknown client_ids) per source per minute.
    client_auth_failures_per_source: i64, CLIENT_AUTH_FAILURES_PER_SOURCE, Some("TESSERA_CLIENT_AUTH_FAILURES_PER_SOURCE"),
        int(60, 1, 1_000_000);
    audit_to_database: bool, AUDIT_TO_DATABASE, Some("TESSERA_AUDIT_TO_DATABASE"),
        Rule::Bool { default: false };
    /// RFC 9449 §8: DPoP proofs at /token must carry a nonce the server handed out.
    dpop_nonce: bool, DPOP_NONCE, Some("TESSERA_DPOP_NONCE"),
        Rule::Bool { default: false };
    key_rotation_days: i64, KEY_ROTATION_DAYS, Some("TESSERA_KEY_ROTATION_DAYS"),
        Rule::OptionalInt { min: 1, max: 3650 };
    outbound_allow_private_networks: bool, OUTBOUND_ALLOW_PRIVATE_NETWORKS, Some("TESSERA_OUTBOUND_ALLOW_PRIVATE_NETWORKS"),
        Rule::Other { default: "false (--dev: true)", allowed: "true or false" };
    /// Failed sign-ins of one account from one source before each further attempt waits
    /// (1 s, then doubling).
    login_failures_before_delay: i64, LOGIN_FAILURES_BEFORE_DELAY, Some("TESSERA_LOGIN_FAILURES_BEFORE_DELAY"),
        int(5, 1, 1000);
    /// The first of those delays; each further failure doubles it.
    login_first_delay_seconds: i64, LOGIN_FIRST_DELAY_SECONDS, Some("TESSERA_LOGIN_FIRST_DELAY_SECONDS"),
        int(1, 1, 3600);
    /// The longest of those delays.
    login_max_delay_seconds: i64, LOGIN_MAX_DELAY_SECONDS, Some("TESSERA_LOGIN_MAX_DELAY_SECONDS"),
        int(900, 1, 86_400);
    /// Failed sign-ins of one account, from all sources together, in 15 minutes.
    login_failures_per_account: i64, LOGIN_FAILURES_PER_ACCOUNT, Some("TESSERA_LOGIN_FAILURES_PER_ACCOUNT"),
        int(100, 1, 1_000_000);
    /// Failed sign-ins from one source, for all accounts together, in 15 minutes.
    login_failures_per_source: i64, LOGIN_FAILURES_PER_SOURCE, Some("TESSERA_LOGIN_FAILURES_PER_SOURCE"),
        int(50, 1, 1_000_000);
    /// Reverse proxies whose forwarding header names the client (CIDR blocks).
    trusted_proxies: Vec<String>, TRUSTED_PROXIES, Some("TESSERA_TRUSTED_PROXIES"),
        Rule::Other { default: "none: the socket peer is the source", allowed: "CIDR blocks, e.g. [\"10.0.0.0/8\", \"fd00::/8\"] (comma-separated in the environment)" };
    /// The header those proxies write.
    forwarded_header: String, FORWARDED_HEADER, Some("TESSERA_FORWARDED_HEADER"),
        Rule::OneOf { default: "x-forwarded-for", values: &["x-forwarded-for", "forwarded"] };
    /// Sign-ins waiting for or in a password check; more are answered 503.
    password_check_queue: i64, PASSWORD_CHECK_QUEUE, Some("TESSERA_PASSWORD_CHECK_QUEUE"),
        int(32, 1, 100_000);
    /// Optional features to turn off: unmounted and unadvertised (`crate::features`).
    disabled_features: Vec<String>, DISABLED_FEATURES, Some("TESSERA_DISABLED_FEATURES"),
        Rule::Other { default: "none", allowed: "device_flow, introspection, revocation, userinfo, logout, token_exchange, pushed_authorization (comma-separated in the environment)" };
    /// A separate listener for `/metrics`, which then leaves the main one.
    metrics_listen: String, METRICS_LISTEN, Some("TESSERA_METRICS_LISTEN"),
        Rule::Other { default: "unset: /metrics on the main listener", allowed: "an address such as 127.0.0.1:9090" };
    /// A bearer token `/metrics` requires.
    metrics_token: String, METRICS_TOKEN, Some("TESSERA_METRICS_TOKEN"),
        Rule::Other { default: "unset: /metrics is open", allowed: "a random secret of at least 32 characters" };
    /// An audience besides the issuer under which `/userinfo` accepts access tokens that carry
    /// an audience restriction (RFC 9068 §4, RFC 8707).
    userinfo_audience: String, USERINFO_AUDIENCE, Some("TESSERA_USERINFO_AUDIENCE"),
        Rule::Other { default: "unset: only the issuer", allowed: "an absolute URI without a fragment" };
    /// Who may register clients at `/register` (RFC 7591): nobody, holders of an initial access
    /// token made with `tessera registration-token create`, or anyone.
    registration_policy: String, REGISTRATION_POLICY, Some("TESSERA_REGISTRATION_POLICY"),
        Rule::OneOf { default: "off", values: &["off", "initial_access_token", "open"] };
    /// Registration attempts per source per hour (registration spam).
    registrations_per_source: i64, REGISTRATIONS_PER_SOURCE, Some("TESSERA_REGISTRATIONS_PER_SOURCE"),
        int(20, 1, 1_000_000);
    /// The scopes a dynamic client may register; it is refused any other.
    registration_scopes: Vec<String>, REGISTRATION_SCOPES, Some("TESSERA_REGISTRATION_SCOPES"),
        Rule::Other { default: "openid, profile, email, offline_access", allowed: "scope names (comma-separated in the environment)" };
    /// A dynamic client that completed no flow for this many days is deleted.
    dynamic_client_unused_days: i64, DYNAMIC_CLIENT_UNUSED_DAYS, Some("TESSERA_DYNAMIC_CLIENT_UNUSED_DAYS"),
        int(30, 1, 3650);
    /// A dynamic client that never completed a flow is deleted this many hours after it
    /// registered.
    dynamic_client_unfinished_hours: i64, DYNAMIC_CLIENT_UNFINISHED_HOURS, Some("TESSERA_DYNAMIC_CLIENT_UNFINISHED_HOURS"),
        int(24, 1, 8760);
    /// Accept https client_ids whose metadata document is fetched from that URL
    /// (draft-ietf-oauth-client-id-metadata-document).
    client_id_metadata_documents: bool, CLIENT_ID_METADATA_DOCUMENTS, Some("TESSERA_CLIENT_ID_METADATA_DOCUMENTS"),
        Rule::Bool { default: false };
    /// Hosts whose metadata documents are accepted (a name also admits its subdomains).
    client_id_metadata_document_hosts: Vec<String>, CLIENT_ID_METADATA_DOCUMENT_HOSTS, Some("TESSERA_CLIENT_ID_METADATA_DOCUMENT_HOSTS"),
        Rule::Other { default: "any host", allowed: "host names (comma-separated in the environment)" };
    /// RFC 8705: serve TLS with this certificate chain (PEM); with `tls_key_file`.
    tls_cert_file: PathBuf, TLS_CERT_FILE, Some("TESSERA_TLS_CERT_FILE"),
        Rule::Other { default: "unset: plain HTTP (TLS terminated in front)", allowed: "a PEM certificate chain" };
    /// The private key of `tls_cert_file` (PEM).
    tls_key_file: PathBuf, TLS_KEY_FILE, Some("TESSERA_TLS_KEY_FILE"),
        Rule::Other { default: "unset", allowed: "a PEM private key" };
    /// RFC 8705 §2.1: the CAs whose certificates `tls_client_auth` clients present.
    tls_client_ca_file: PathBuf, TLS_CLIENT_CA_FILE, Some("TESSERA_TLS_CLIENT_CA_FILE"),
        Rule::Other { default: "unset: no tls_client_auth", allowed: "PEM CA certificates" };
    /// The header in which a TLS-terminating proxy in `trusted_proxies` passes the client
    /// certificate (URL-encoded PEM, nginx's `$ssl_client_escaped_cert`).
    tls_client_cert_header: String, TLS_CLIENT_CERT_HEADER, Some("TESSERA_TLS_CLIENT_CERT_HEADER"),
        Rule::Other { default: "unset", allowed: "a header name, e.g. x-ssl-client-cert" };
    /// Hosts whose metadata documents are refused (a name also refuses its subdomains).
    client_id_metadata_document_denied_hosts: Vec<String>, CLIENT_ID_METADATA_DOCUMENT_DENIED_HOSTS, Some("TESSERA_CLIENT_ID_METADATA_DOCUMENT_DENIED_HOSTS"),
        Rule::Other { default: "none", allowed: "host names (comma-separated in the environment)" };
}

impl Key {
    fn error(&self, why: impl std::fmt::Display) -> ConfigError {
        ConfigError(format!("`{}`{why}", self.name))
    }

    /// The value of an integer key: its default when unset; an error naming the key and the
    /// range when outside it.
    fn int(&self, value: Option<i64>) -> Result<i64, ConfigError> {
        let (default, min, max) = match self.rule {
            Rule::Int { default, min, max } => (default, min, max),
            Rule::OptionalInt { min, max } => (value.unwrap_or(min), min, max),
            _ => return Err(self.error(" is not an integer setting")),
        };
        let v = value.unwrap_or(default);
        if (min..=max).contains(&v) {
            Ok(v)
        } else if matches!(self.rule, Rule::Int { .. }) {
            Err(self.error(format!(" = {v}: must be between {min} and {max} (default {default})")))
        } else {
            Err(self.error(format!(" = {v}: must be between {min} and {max} (default: off)")))
        }
    }

    /// The value of an optional integer key: `None` when unset.
    fn optional_int(&self, value: Option<i64>) -> Result<Option<i64>, ConfigError> {
        value.map(|v| self.int(Some(v))).transpose()
    }

    /// The value of a key with a fixed set of values (`default` when unset).
    fn one_of<'a>(&self, value: Option<&'a str>, default: &'a str) -> Result<&'a str, ConfigError> {
        let Rule::OneOf { values, .. } = self.rule else {
            return Err(self.error(" is not a choice setting"));
        };
        let v = value.unwrap_or(default);
        if values.contains(&v) {
            Ok(v)
        } else {
            Err(self.error(format!(" = {v:?}: must be one of {}", values.join(", "))))
        }
    }

    /// The value of a boolean key.
    fn bool(&self, value: Option<bool>) -> bool {
        match self.rule {
            Rule::Bool { default } => value.unwrap_or(default),
            _ => value.unwrap_or(false),
        }
    }
}

/// Values given on the command line; they win over the file and the environment.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub config_file: Option<PathBuf>,
    pub dev: bool,
    pub issuer: Option<String>,
    pub listen: Option<String>,
    pub database_url: Option<String>,
}

/// Log line format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Json,
    Pretty,
}

/// Where the key-encryption key comes from.
#[derive(Debug)]
pub enum KekSource {
    Configured,
    /// `--dev` generated (or reused) a key file with 0600 permissions.
    DevFile(PathBuf),
}

/// Validated configuration.
#[derive(Debug)]
pub struct Settings {
    pub issuer: Issuer,
    pub listen: SocketAddr,
    pub database_url: String,
    /// When a SQLite commit is durable: `normal` survives `kill -9`, `full` also power loss.
    pub sqlite_synchronous: SqliteSync,
    /// How long a request waits for a database connection before it is answered 503.
    pub database_acquire_timeout: Duration,
    /// The most database connections this process keeps.
    pub database_max_connections: u32,
    pub key_encryption_key: KeyEncryptionKey,
    pub kek_source: KekSource,
    pub policy: TokenPolicy,
    /// How long a new key is published before it signs (rotation overlap, R2.5).
    pub key_publish_ahead: i64,
    pub log_format: LogFormat,
    /// How long a login session lasts.
    pub session_ttl: i64,
    /// Scope descriptions for the consent page (configured ones over the built-in ones).
    pub scope_descriptions: BTreeMap<String, String>,
    /// Shared rate limits and counters across instances (R4.2, R5.3); in-process when `None`.
    pub redis_url: Option<String>,
    /// Requests per second per client at `/token`, `/revoke`, `/introspect`, unless the client
    /// has its own limit.
    pub client_rate_limit_per_second: u32,
    /// Failed client authentications allowed per source (issue 17 finding 5).
    pub client_auth_failure_limit: Limit,
    /// Failed sign-ins: growing delays per account and source, ceilings per account and source.
    pub login_limits: LoginLimits,
    /// Proxies whose forwarding header names the source of a request (issue 17 finding 4).
    pub trusted_proxies: TrustedProxies,
    /// How many sign-ins may wait for or be in a password check; more are answered 503.
    pub password_check_queue: usize,
    /// Header-read and request timeouts, and the connection cap (issue 17 finding 13).
    pub listener: ListenerLimits,
    /// Also write audit events to the `audit_events` table.
    pub audit_to_database: bool,
    /// RFC 9449 §8: DPoP proofs at /token must carry a server nonce.
    pub dpop_nonce: bool,
    /// Rotate signing keys automatically when the active one is this many days old.
    pub key_rotation_days: Option<i64>,
    /// Let outbound fetches (a client's `jwks_uri`) reach loopback and private addresses.
    pub outbound_allow_private_networks: bool,
    /// The optional features that are on (all but `disabled_features`).
    pub features: Features,
    /// Where `/metrics` is served instead of `listen`, if set.
    pub metrics_listen: Option<SocketAddr>,
    /// The hash of the bearer token `/metrics` requires, if set.
    pub metrics_token: Option<SecretHash>,
    /// An audience besides the issuer under which `/userinfo` accepts access tokens that carry
    /// an audience restriction (RFC 9068 §4, RFC 8707).
    pub userinfo_audience: Option<String>,
    /// Dynamic Client Registration (RFC 7591).
    pub registration: RegistrationSettings,
    /// TLS termination and client certificates (RFC 8705).
    pub mtls: MtlsSettings,
    pub dev: bool,
}

/// TLS termination and client certificates (RFC 8705).
#[derive(Clone, Debug, Default)]
pub struct MtlsSettings {
    /// `tls_cert_file` and `tls_key_file`: the listener speaks TLS.
    pub listener: Option<(PathBuf, PathBuf)>,
    /// `tls_client_ca_file`: the trust anchors of `tls_client_auth`.
    pub client_ca: Option<crate::tls::ClientCa>,
    pub sources: crate::tls::CertificateSources,
}

impl MtlsSettings {
    /// Whether requests can carry a client certificate at all (TLS here, or a proxy's header).
    pub fn certificates(&self) -> bool {
        self.listener.is_some() || self.sources.header.is_some()
    }

    /// Whether `tls_client_auth` can succeed: certificates and trust anchors.
    pub fn tls_client_auth(&self) -> bool {
        self.certificates() && self.client_ca.is_some()
    }
}

/// Who may register clients at `/register` (RFC 7591 §3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RegistrationPolicy {
    /// `/register` is not served nor advertised.
    Off,
    /// A registration presents an initial access token made with the CLI (RFC 7591 §3).
    InitialAccessToken,
    /// Anyone may register, within the per-source limit.
    Open,
}

/// Dynamic Client Registration settings (issue 15).
#[derive(Clone, Debug)]
pub struct RegistrationSettings {
    pub policy: RegistrationPolicy,
    /// Registration attempts per source.
    pub per_source: Limit,
    /// The scopes a dynamic client may register.
    pub scopes: tessera_core::scope::ScopeSet,
    /// A dynamic client unused this many seconds is deleted.
    pub unused_ttl: i64,
    /// Client ID metadata documents are accepted.
    pub metadata_documents: bool,
    /// Hosts whose metadata documents are accepted (empty: any) and refused.
    pub document_hosts: Vec<String>,
    pub document_denied_hosts: Vec<String>,
    /// A dynamic client that never completed a flow is deleted this many seconds after it
    /// registered.
    pub unfinished_ttl: i64,
}

/// The listener's limits (issue 17 finding 13), against clients that hold connections open.
#[derive(Clone, Copy, Debug)]
pub struct ListenerLimits {
    /// A client must send a request's whole header within this (slowloris).
    pub header_read_timeout: Duration,
    /// A request, body and answer included, must be done within this.
    pub request_timeout: Duration,
    /// At most this many connections are served at once; further ones wait in the kernel's
    /// backlog until one closes.
    pub max_connections: usize,
    /// Whether plain-TCP connections may speak HTTP/2 with prior knowledge (h2c). Telling it
    /// from HTTP/1.1 means reading the first bytes before hyper does, which leaves every
    /// HTTP/1.1 connection with a 16 KiB read buffer instead of 8 KiB (hyper grows its first
    /// buffer to fit the replayed bytes). Over TLS, ALPN chooses the version either way.
    pub h2c: bool,
}

/// The window of the account-wide and per-source ceilings.
pub const CEILING_WINDOW: Duration = Duration::from_secs(15 * 60);

/// How long failures of one account from one source are remembered after the last attempt.
pub const BACKOFF_MEMORY: Duration = Duration::from_secs(24 * 3600);

/// The sign-in limits.
#[derive(Clone, Copy, Debug)]
pub struct LoginLimits {
    /// Failures of one account from one source: growing delays.
    pub per_account_and_source: Backoff,
    /// Failures of one account from every source.
    pub per_account: Limit,
    /// Failures from one source for every account.
    pub per_source: Limit,
}

impl LoginLimits {
    /// `free` failures before delays start (`first_delay`, then doubling up to `max_delay`);
    /// `per_account` and `per_source` failures in every [`CEILING_WINDOW`].
    pub fn new(
        free: u32,
        first_delay: Duration,
        max_delay: Duration,
        per_account: u32,
        per_source: u32,
    ) -> Self {
        Self {
            per_account_and_source: Backoff {
                free,
                base: first_delay,
                max: max_delay,
                forget_after: BACKOFF_MEMORY,
            },
            per_account: Limit::per_period(per_account, CEILING_WINDOW),
            per_source: Limit::per_period(per_source, CEILING_WINDOW),
        }
    }
}

/// A configuration error, naming the key and the fix.
#[derive(Debug, thiserror::Error)]
#[error("configuration: {0}")]
pub struct ConfigError(String);

/// Descriptions of the standard scopes; `[scopes]` in the configuration adds or overrides.
const DEFAULT_SCOPE_DESCRIPTIONS: [(&str, &str); 4] = [
    ("openid", "Sign you in and know who you are"),
    ("profile", "See your name and username"),
    ("email", "See your email address"),
    ("offline_access", "Stay connected when you are not using it"),
];

/// The default database of the embedded setup (requirements R5.1).
pub const DEFAULT_DATABASE_URL: &str = "sqlite://tessera.db";
const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
/// A metrics token is a bearer secret: at least this long, so that it cannot be guessed.
const MIN_METRICS_TOKEN_LEN: usize = 32;

impl Settings {
    /// Loads and validates the configuration from file, environment and flags.
    pub fn load(overrides: &Overrides) -> Result<Self, ConfigError> {
        let mut raw = match &overrides.config_file {
            Some(path) => read_file(path)?,
            None => RawConfig::default(),
        };
        apply_env(&mut raw, |name| std::env::var(name).ok())?;
        apply_flags(&mut raw, overrides)?;
        Self::validate(raw, overrides.dev)
    }

    /// Validates raw values; `dev` relaxes what `serve --dev` may default.
    pub fn validate(raw: RawConfig, dev: bool) -> Result<Self, ConfigError> {
        let registration = registration_settings(&raw)?;
        let listen_raw = raw.listen.as_deref().unwrap_or(DEFAULT_LISTEN);
        let listen: SocketAddr = listen_raw.parse().map_err(|_| {
            keys::LISTEN.error(format!(" = {listen_raw:?} is not an address like 127.0.0.1:8080"))
        })?;
        let issuer_raw = match (raw.issuer, dev) {
            (Some(i), _) => i,
            (None, true) => format!("http://127.0.0.1:{}", listen.port()),
            (None, false) => {
                return Err(keys::ISSUER.error(
                    " is required: set it in the config file, as TESSERA_ISSUER or with \
                     --issuer (e.g. https://auth.example.com)",
                ));
            }
        };
        let http = if dev { HttpIssuers::Allowed } else { HttpIssuers::LoopbackOnly };
        let issuer =
            Issuer::parse(&issuer_raw, http).map_err(|e| keys::ISSUER.error(format!(": {e}")))?;
        let database_url = raw.database_url.unwrap_or_else(|| DEFAULT_DATABASE_URL.to_owned());
        let sync = keys::SQLITE_SYNCHRONOUS.one_of(raw.sqlite_synchronous.as_deref(), "normal")?;
        // `one_of` admitted only the values `parse` knows.
        let sqlite_synchronous = SqliteSync::parse(sync).unwrap_or_default();
        let database_acquire_timeout = Duration::from_millis(
            keys::DATABASE_ACQUIRE_TIMEOUT_MS.int(raw.database_acquire_timeout_ms)? as u64,
        );
        // The rule bounds it to 1 ..= 1000.
        let database_max_connections =
            keys::DATABASE_MAX_CONNECTIONS.int(raw.database_max_connections)? as u32;
        let access_token_ttl = keys::ACCESS_TOKEN_TTL_SECONDS.int(raw.access_token_ttl_seconds)?;
        let id_token_ttl = keys::ID_TOKEN_TTL_SECONDS.int(raw.id_token_ttl_seconds)?;
        let code_ttl = keys::CODE_TTL_SECONDS.int(raw.code_ttl_seconds)?;
        let refresh_token_absolute_ttl =
            keys::REFRESH_TOKEN_ABSOLUTE_TTL_SECONDS.int(raw.refresh_token_absolute_ttl_seconds)?;
        let refresh_token_idle_ttl =
            keys::REFRESH_TOKEN_IDLE_TTL_SECONDS.int(raw.refresh_token_idle_ttl_seconds)?;
        if refresh_token_idle_ttl > refresh_token_absolute_ttl {
            return Err(keys::REFRESH_TOKEN_IDLE_TTL_SECONDS.error(format!(
                " = {refresh_token_idle_ttl}: must not exceed \
                 `refresh_token_absolute_ttl_seconds` ({refresh_token_absolute_ttl})"
            )));
        }
        let client_rate_limit_per_second =
            keys::CLIENT_RATE_LIMIT_PER_SECOND.int(raw.client_rate_limit_per_second)? as u32;
        // Issue 17 finding 5: failures and unknown clients are limited per source.
        let client_auth_failure_limit = Limit::per_period(
            keys::CLIENT_AUTH_FAILURES_PER_SOURCE.int(raw.client_auth_failures_per_source)? as u32,
            Duration::from_secs(60),
        );
        // R4.2, issue 17 finding 3: failures only, growing delays per account and source, and
        // ceilings per account and per source far above what people mistyping need.
        let login_limits = LoginLimits::new(
            keys::LOGIN_FAILURES_BEFORE_DELAY.int(raw.login_failures_before_delay)? as u32,
            Duration::from_secs(
                keys::LOGIN_FIRST_DELAY_SECONDS.int(raw.login_first_delay_seconds)? as u64,
            ),
            Duration::from_secs(
                keys::LOGIN_MAX_DELAY_SECONDS.int(raw.login_max_delay_seconds)? as u64
            ),
            keys::LOGIN_FAILURES_PER_ACCOUNT.int(raw.login_failures_per_account)? as u32,
            keys::LOGIN_FAILURES_PER_SOURCE.int(raw.login_failures_per_source)? as u32,
        );
        let blocks = raw
            .trusted_proxies
            .unwrap_or_default()
            .iter()
            .map(|b| Cidr::parse(b).map_err(|why| keys::TRUSTED_PROXIES.error(format!(": {why}"))))
            .collect::<Result<Vec<_>, _>>()?;
        let header = match keys::FORWARDED_HEADER
            .one_of(raw.forwarded_header.as_deref(), "x-forwarded-for")?
        {
            "forwarded" => ForwardedHeader::Forwarded,
            _ => ForwardedHeader::XForwardedFor,
        };
        let trusted_proxies = TrustedProxies { blocks, header };
        let password_check_queue =
            keys::PASSWORD_CHECK_QUEUE.int(raw.password_check_queue)? as usize;
        let listener = ListenerLimits {
            header_read_timeout: Duration::from_secs(
                keys::HEADER_READ_TIMEOUT_SECONDS.int(raw.header_read_timeout_seconds)? as u64,
            ),
            request_timeout: Duration::from_secs(
                keys::REQUEST_TIMEOUT_SECONDS.int(raw.request_timeout_seconds)? as u64,
            ),
            max_connections: keys::MAX_CONNECTIONS.int(raw.max_connections)? as usize,
            h2c: true,
        };
        let key_rotation_days = keys::KEY_ROTATION_DAYS.optional_int(raw.key_rotation_days)?;
        let redis_url = raw.redis_url.filter(|u| !u.is_empty());
        if let Some(url) = &redis_url
            && !(url.starts_with("redis://") || url.starts_with("rediss://"))
        {
            return Err(
                keys::REDIS_URL.error(format!(" = {url:?}: must start with redis:// or rediss://"))
            );
        }
        let device_code_ttl = keys::DEVICE_CODE_TTL_SECONDS.int(raw.device_code_ttl_seconds)?;
        let device_poll_interval =
            keys::DEVICE_POLL_INTERVAL_SECONDS.int(raw.device_poll_interval_seconds)?;
        let session_ttl = keys::SESSION_TTL_SECONDS.int(raw.session_ttl_seconds)?;
        let mut scope_descriptions: BTreeMap<String, String> = DEFAULT_SCOPE_DESCRIPTIONS
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        scope_descriptions.extend(raw.scopes.unwrap_or_default());
        let alg = keys::ACCESS_TOKEN_SIGNING_ALG
            .one_of(raw.access_token_signing_alg.as_deref(), "ES256")?;
        let access_token_alg = SigningAlg::parse(alg).ok_or_else(|| {
            keys::ACCESS_TOKEN_SIGNING_ALG.error(format!(" = {alg:?}: not a known algorithm"))
        })?;
        let key_publish_ahead =
            keys::KEY_PUBLISH_AHEAD_SECONDS.int(raw.key_publish_ahead_seconds)?;
        let log_format = match keys::LOG_FORMAT
            .one_of(raw.log_format.as_deref(), if dev { "pretty" } else { "json" })?
        {
            "pretty" => LogFormat::Pretty,
            _ => LogFormat::Json,
        };
        let features =
            Features::parse_disabled(raw.disabled_features.iter().flatten().map(String::as_str))
                .map_err(|e| keys::DISABLED_FEATURES.error(format!(": {e}")))?;
        let metrics_listen = match raw.metrics_listen.as_deref().filter(|v| !v.is_empty()) {
            None => None,
            Some(v) => Some(v.parse::<SocketAddr>().map_err(|_| {
                keys::METRICS_LISTEN
                    .error(format!(" = {v:?} is not an address like 127.0.0.1:9090"))
            })?),
        };
        let metrics_token = match raw.metrics_token.filter(|t| !t.is_empty()) {
            None => None,
            Some(t) if t.len() < MIN_METRICS_TOKEN_LEN => {
                return Err(keys::METRICS_TOKEN.error(format!(
                    " must be at least {MIN_METRICS_TOKEN_LEN} characters of a random secret \
                     (e.g. `openssl rand -base64 32`)"
                )));
            }
            Some(t) => Some(SecretHash::of(t.as_bytes())),
        };
        // RFC 8707 §2: a resource is an absolute URI without a fragment.
        let userinfo_audience = raw.userinfo_audience.filter(|a| !a.is_empty());
        if let Some(a) = &userinfo_audience
            && (url::Url::parse(a).is_err() || a.contains('#'))
        {
            return Err(keys::USERINFO_AUDIENCE
                .error(format!(" = {a:?}: must be an absolute URI without a fragment")));
        }
        let features = features.with_registration(registration.policy != RegistrationPolicy::Off);
        let mtls = mtls_settings(
            raw.tls_cert_file,
            raw.tls_key_file,
            raw.tls_client_ca_file,
            raw.tls_client_cert_header,
            &trusted_proxies,
        )?;
        let (kek, kek_source) = key_encryption_key(
            raw.key_encryption_key,
            raw.key_encryption_key_file,
            dev,
            &database_url,
        )?;
        Ok(Self {
            issuer,
            listen,
            database_url,
            sqlite_synchronous,
            database_acquire_timeout,
            database_max_connections,
            key_encryption_key: kek,
            kek_source,
            policy: TokenPolicy {
                access_token_ttl,
                access_token_alg,
                id_token_ttl,
                code_ttl,
                refresh_token_idle_ttl,
                refresh_token_absolute_ttl,
                device_code_ttl,
                device_poll_interval,
            },
            key_publish_ahead,
            log_format,
            session_ttl,
            scope_descriptions,
            redis_url,
            client_rate_limit_per_second,
            client_auth_failure_limit,
            login_limits,
            trusted_proxies,
            password_check_queue,
            listener,
            audit_to_database: keys::AUDIT_TO_DATABASE.bool(raw.audit_to_database),
            dpop_nonce: keys::DPOP_NONCE.bool(raw.dpop_nonce),
            key_rotation_days,
            outbound_allow_private_networks: raw.outbound_allow_private_networks.unwrap_or(dev),
            features,
            metrics_listen,
            metrics_token,
            userinfo_audience,
            registration,
            mtls,
            dev,
        })
    }

    /// The longest lifetime of any token the server signs, plus clock-skew leeway: how long a
    /// retired key stays published.
    pub fn max_signed_token_lifetime(&self) -> i64 {
        self.policy.max_signed_lifetime() + 60
    }

    /// The rate limit of an authenticated client at the endpoints that authenticate clients
    /// (R4.2): its own, or the server's default.
    pub fn client_limit(&self, client: &tessera_core::client::Client) -> Limit {
        Limit::per_second(client.rate_limit_per_second.unwrap_or(self.client_rate_limit_per_second))
    }

    /// Whether cookies get the `Secure` attribute: always, except for a plain-http issuer
    /// (`--dev` or loopback), where a browser would drop them.
    pub fn secure_cookies(&self) -> bool {
        self.issuer.as_str().starts_with("https://")
    }
}

/// The TLS listener's files and the client-certificate sources, checked at start so that a
/// wrong path stops the server instead of the first handshake.
fn mtls_settings(
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
    client_ca: Option<PathBuf>,
    header: Option<String>,
    proxies: &TrustedProxies,
) -> Result<MtlsSettings, ConfigError> {
    let listener = match (cert, key) {
        (None, None) => None,
        (Some(cert), Some(key)) => {
            crate::tls::acceptor(&cert, &key)
                .map_err(|e| keys::TLS_CERT_FILE.error(format!(": {e}")))?;
            Some((cert, key))
        }
        (Some(_), None) => {
            return Err(keys::TLS_KEY_FILE.error(" is required with `tls_cert_file`"));
        }
        (None, Some(_)) => {
            return Err(keys::TLS_CERT_FILE.error(" is required with `tls_key_file`"));
        }
    };
    let client_ca = client_ca
        .map(|file| {
            crate::tls::ClientCa::load(&file)
                .map_err(|e| keys::TLS_CLIENT_CA_FILE.error(format!(": {}: {e}", file.display())))
        })
        .transpose()?;
    let header = match header.filter(|h| !h.is_empty()) {
        None => None,
        Some(h) => {
            // A header only a trusted proxy may set: without trusted proxies nobody can.
            if proxies.blocks.is_empty() {
                return Err(keys::TLS_CLIENT_CERT_HEADER.error(
                    " needs `trusted_proxies`: the header is read only from those addresses",
                ));
            }
            Some(axum::http::HeaderName::try_from(h.to_ascii_lowercase()).map_err(|_| {
                keys::TLS_CLIENT_CERT_HEADER.error(format!(" = {h:?} is not a header name"))
            })?)
        }
    };
    Ok(MtlsSettings { listener, client_ca, sources: crate::tls::CertificateSources { header } })
}

/// Host names as compared: lowercase, without a leading dot.
fn hosts(names: &Option<Vec<String>>) -> Vec<String> {
    names.iter().flatten().map(|h| h.trim().trim_start_matches('.').to_ascii_lowercase()).collect()
}

/// The registration keys, validated.
fn registration_settings(raw: &RawConfig) -> Result<RegistrationSettings, ConfigError> {
    let policy =
        match keys::REGISTRATION_POLICY.one_of(raw.registration_policy.as_deref(), "off")? {
            "open" => RegistrationPolicy::Open,
            "initial_access_token" => RegistrationPolicy::InitialAccessToken,
            _ => RegistrationPolicy::Off,
        };
    let names: Vec<String> = match &raw.registration_scopes {
        Some(names) => names.clone(),
        None => ["openid", "profile", "email", "offline_access"].map(str::to_owned).to_vec(),
    };
    let scopes = names
        .iter()
        .flat_map(|n| n.split_whitespace())
        .map(|n| {
            tessera_core::scope::Scope::parse_registered(n)
                .map_err(|why| keys::REGISTRATION_SCOPES.error(format!(": {why}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(RegistrationSettings {
        policy,
        per_source: Limit::per_period(
            keys::REGISTRATIONS_PER_SOURCE.int(raw.registrations_per_source)? as u32,
            Duration::from_secs(3600),
        ),
        scopes: tessera_core::scope::ScopeSet::from_scopes(scopes),
        unused_ttl: keys::DYNAMIC_CLIENT_UNUSED_DAYS.int(raw.dynamic_client_unused_days)? * 86_400,
        metadata_documents: keys::CLIENT_ID_METADATA_DOCUMENTS
            .bool(raw.client_id_metadata_documents),
        document_hosts: hosts(&raw.client_id_metadata_document_hosts),
        document_denied_hosts: hosts(&raw.client_id_metadata_document_denied_hosts),
        unfinished_ttl: keys::DYNAMIC_CLIENT_UNFINISHED_HOURS
            .int(raw.dynamic_client_unfinished_hours)?
            * 3600,
    })
}

/// Keys that were replaced, with their replacement: a configuration that still sets one is
/// refused with a hint, instead of running with a different meaning.
pub const REPLACED: [(&str, &str); 2] = [
    ("login_attempts_per_account", "login_failures_per_account (only failures count now)"),
    ("login_attempts_per_source", "login_failures_per_source (only failures count now)"),
];

fn refuse_replaced(is_set: impl Fn(&str) -> bool) -> Result<(), ConfigError> {
    for (old, new) in REPLACED {
        if is_set(old) {
            return Err(ConfigError(format!("`{old}` was replaced by {new}")));
        }
    }
    Ok(())
}

fn read_file(path: &Path) -> Result<RawConfig, ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigError(format!("cannot read {}: {e}", path.display())))?;
    if let Ok(table) = text.parse::<toml::Table>() {
        refuse_replaced(|key| table.contains_key(key))?;
    }
    toml::from_str(&text).map_err(|e| ConfigError(format!("{}: {e}", path.display())))
}

/// Applies `TESSERA_<KEY>` variables, one per key of [`TABLE`]. Other `TESSERA_*` names (such
/// as the test suite's) are not configuration and are left alone.
fn apply_env(raw: &mut RawConfig, var: impl Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
    refuse_replaced(|key| var(&format!("TESSERA_{}", key.to_uppercase())).is_some())?;
    for key in TABLE {
        let Some(name) = key.env else { continue };
        if let Some(value) = var(name) {
            raw.set_text(key.name, &value).map_err(|why| {
                ConfigError(format!("{name} (`{}`) = {value:?}: {why}", key.name))
            })?;
        }
    }
    Ok(())
}

/// Applies the command-line flags, each the value of one key of [`TABLE`].
fn apply_flags(raw: &mut RawConfig, overrides: &Overrides) -> Result<(), ConfigError> {
    let flags = [
        (&keys::ISSUER, &overrides.issuer),
        (&keys::LISTEN, &overrides.listen),
        (&keys::DATABASE_URL, &overrides.database_url),
    ];
    for (key, value) in flags {
        if let Some(value) = value {
            raw.set_text(key.name, value).map_err(|why| {
                ConfigError(format!("--{} = {value:?}: {why}", key.name.replace('_', "-")))
            })?;
        }
    }
    Ok(())
}

fn key_encryption_key(
    inline: Option<String>,
    file: Option<PathBuf>,
    dev: bool,
    database_url: &str,
) -> Result<(KeyEncryptionKey, KekSource), ConfigError> {
    let parse = |text: &str, what: &str| {
        KeyEncryptionKey::from_encoded(text).map_err(|e| {
            ConfigError(format!("{what} {e}; generate one with `tessera keys generate-kek`"))
        })
    };
    match (inline, file) {
        (Some(_), Some(_)) => Err(ConfigError(
            "set either `key_encryption_key` or `key_encryption_key_file`, not both".into(),
        )),
        (Some(text), None) => Ok((parse(&text, "`key_encryption_key`")?, KekSource::Configured)),
        (None, Some(path)) => {
            let text = std::fs::read_to_string(&path).map_err(|e| {
                ConfigError(format!("`key_encryption_key_file` {}: {e}", path.display()))
            })?;
            Ok((parse(&text, "`key_encryption_key_file`")?, KekSource::Configured))
        }
        (None, None) if dev => {
            let path = data_dir(database_url).join("tessera.kek");
            let kek = dev_key_file(&path)?;
            Ok((parse(&kek, &format!("{}", path.display()))?, KekSource::DevFile(path)))
        }
        (None, None) => Err(ConfigError(
            "`key_encryption_key` (or `key_encryption_key_file`) is required: signing keys are \
             stored encrypted under it. Generate one with `tessera keys generate-kek`"
                .into(),
        )),
    }
}

/// The directory of the SQLite file, where `--dev` keeps its key file; else the current one.
fn data_dir(database_url: &str) -> PathBuf {
    let path = database_url
        .strip_prefix("sqlite://")
        .or_else(|| database_url.strip_prefix("sqlite:"))
        .map(|p| p.split('?').next().unwrap_or(p));
    match path.map(Path::new).and_then(Path::parent) {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Reads the dev key file, creating it with 0600 permissions if missing.
fn dev_key_file(path: &Path) -> Result<String, ConfigError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = KeyEncryptionKey::generate_encoded();
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path)
                .map_err(|e| ConfigError(format!("cannot create {}: {e}", path.display())))?;
            file.write_all(key.as_bytes())
                .map_err(|e| ConfigError(format!("cannot write {}: {e}", path.display())))?;
            Ok(key)
        }
        Err(e) => Err(ConfigError(format!("cannot read {}: {e}", path.display()))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw_with_kek() -> RawConfig {
        RawConfig {
            issuer: Some("https://auth.example.com".into()),
            key_encryption_key: Some(KeyEncryptionKey::generate_encoded()),
            ..Default::default()
        }
    }

    fn message(raw: RawConfig) -> String {
        Settings::validate(raw, false).unwrap_err().to_string()
    }

    #[test]
    fn r6_3_defaults_are_fifteen_minute_es256_access_tokens() {
        let s = Settings::validate(raw_with_kek(), false).unwrap();
        assert_eq!(s.policy.access_token_ttl, 900);
        assert_eq!(s.policy.access_token_alg, SigningAlg::ES256);
        assert_eq!(s.database_url, DEFAULT_DATABASE_URL);
        assert_eq!(s.log_format, LogFormat::Json);
        assert_eq!(s.sqlite_synchronous, SqliteSync::Normal);
        assert_eq!(s.database_acquire_timeout, Duration::from_secs(1));
        assert_eq!(s.database_max_connections, 10);
    }

    #[test]
    fn r6_3_errors_name_the_key_and_the_valid_values() {
        let m = message(RawConfig { access_token_ttl_seconds: Some(5), ..raw_with_kek() });
        assert!(
            m.contains("access_token_ttl_seconds") && m.contains("between 60 and 86400"),
            "{m}"
        );
        let m =
            message(RawConfig { access_token_signing_alg: Some("HS256".into()), ..raw_with_kek() });
        assert!(m.contains("access_token_signing_alg") && m.contains("ES256"), "{m}");
        let m = message(RawConfig { key_encryption_key: None, ..raw_with_kek() });
        assert!(m.contains("key_encryption_key"), "{m}");
        let m = message(RawConfig { issuer: None, ..raw_with_kek() });
        assert!(m.contains("`issuer` is required"), "{m}");
        let m = message(RawConfig { listen: Some("nope".into()), ..raw_with_kek() });
        assert!(m.contains("`listen`"), "{m}");
        let m = message(RawConfig { login_failures_per_account: Some(0), ..raw_with_kek() });
        assert!(m.contains("login_failures_per_account") && m.contains("between 1 and"), "{m}");
        let m = message(RawConfig { sqlite_synchronous: Some("off".into()), ..raw_with_kek() });
        assert!(m.contains("`sqlite_synchronous`") && m.contains("normal") && m.contains("full"));
    }

    #[test]
    fn r1_2_and_r1_4_lifetimes_are_bounded() {
        let m = message(RawConfig { code_ttl_seconds: Some(601), ..raw_with_kek() });
        assert!(m.contains("code_ttl_seconds") && m.contains("600"), "{m}");
        let m = message(RawConfig {
            refresh_token_absolute_ttl_seconds: Some(91 * 86_400),
            ..raw_with_kek()
        });
        assert!(m.contains("refresh_token_absolute_ttl_seconds"), "{m}");
        let s = Settings::validate(raw_with_kek(), false).unwrap();
        assert_eq!(s.policy.code_ttl, 60);
        assert_eq!(s.policy.refresh_token_absolute_ttl, 30 * 86_400);
    }

    #[test]
    fn rfc8414_2_plain_http_issuer_is_refused_outside_dev_unless_loopback() {
        let m =
            message(RawConfig { issuer: Some("http://auth.example.com".into()), ..raw_with_kek() });
        assert!(m.contains("plain http"), "{m}");
        let loopback = RawConfig { issuer: Some("http://127.0.0.1:8080".into()), ..raw_with_kek() };
        assert!(Settings::validate(loopback, false).is_ok());
    }

    #[test]
    fn r6_3_environment_overrides_file_values_and_rejects_bad_numbers() {
        let mut raw = raw_with_kek();
        let env = |name: &str| match name {
            "TESSERA_ISSUER" => Some("https://env.example.com".to_owned()),
            "TESSERA_ACCESS_TOKEN_TTL_SECONDS" => Some("600".to_owned()),
            _ => None,
        };
        apply_env(&mut raw, env).unwrap();
        assert_eq!(raw.issuer.as_deref(), Some("https://env.example.com"));
        assert_eq!(raw.access_token_ttl_seconds, Some(600));
        let bad =
            |name: &str| (name == "TESSERA_ACCESS_TOKEN_TTL_SECONDS").then(|| "ten".to_owned());
        let m = apply_env(&mut raw_with_kek(), bad).unwrap_err().to_string();
        assert!(m.contains("TESSERA_ACCESS_TOKEN_TTL_SECONDS"), "{m}");
    }

    #[test]
    fn r6_3_every_key_is_declared_once_with_an_env_var_named_after_it() {
        let mut names: Vec<&str> = TABLE.iter().map(|k| k.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), TABLE.len(), "a key declared twice");
        for key in TABLE {
            if let Some(env) = key.env {
                assert_eq!(env, format!("TESSERA_{}", key.name.to_uppercase()), "{}", key.name);
            }
        }
    }

    #[test]
    fn r6_3_every_integer_key_is_read_from_the_environment_through_the_table() {
        for key in TABLE {
            let (Rule::Int { max: value, .. } | Rule::OptionalInt { max: value, .. }) = key.rule
            else {
                continue;
            };
            let Some(env) = key.env else { continue };
            let mut raw = raw_with_kek();
            apply_env(&mut raw, |name| (name == env).then(|| value.to_string())).unwrap();
            let mut from_file: RawConfig =
                toml::from_str(&format!("{} = {value}", key.name)).unwrap();
            from_file.issuer = raw.issuer.clone();
            from_file.key_encryption_key = raw.key_encryption_key.clone();
            assert_eq!(format!("{raw:?}"), format!("{from_file:?}"), "{}", key.name);
            // One above the range is refused, naming the key.
            let mut raw = raw_with_kek();
            apply_env(&mut raw, |name| (name == env).then(|| (value + 1).to_string())).unwrap();
            let m = message(raw);
            assert!(m.contains(&format!("`{}`", key.name)), "{m}");
        }
    }

    #[test]
    fn r6_3_the_readme_documents_every_key() {
        let readme = include_str!("../../../README.md");
        let section = &readme[readme.find("## Configuration").unwrap()..];
        for key in TABLE {
            assert!(
                section.contains(key.name),
                "README's configuration section lacks {}",
                key.name
            );
        }
    }

    #[test]
    fn r6_3_flags_win_over_the_environment() {
        let mut raw = raw_with_kek();
        apply_env(&mut raw, |name| (name == "TESSERA_LISTEN").then(|| "127.0.0.1:1".to_owned()))
            .unwrap();
        let flags = Overrides { listen: Some("127.0.0.1:2".into()), ..Default::default() };
        apply_flags(&mut raw, &flags).unwrap();
        assert_eq!(raw.listen.as_deref(), Some("127.0.0.1:2"));
    }

    #[test]
    fn issue17_3_the_replaced_sign_in_keys_are_refused_with_their_replacement() {
        let env = |name: &str| (name == "TESSERA_LOGIN_ATTEMPTS_PER_ACCOUNT").then(|| "10".into());
        let m = apply_env(&mut raw_with_kek(), env).unwrap_err().to_string();
        assert!(m.contains("login_failures_per_account"), "{m}");
        let dir = std::env::temp_dir().join(format!("tessera-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("tessera.toml");
        std::fs::write(&file, "login_attempts_per_source = 50\n").unwrap();
        let m = read_file(&file).unwrap_err().to_string();
        assert!(m.contains("login_failures_per_source"), "{m}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    // RFC 8707 §2 / RFC 9068 §4: the userinfo audience is a resource indicator.
    #[test]
    fn rfc8707_2_userinfo_audience_must_be_an_absolute_uri() {
        let with = |a: &str| RawConfig { userinfo_audience: Some(a.into()), ..raw_with_kek() };
        assert!(message(with("userinfo")).contains("`userinfo_audience`"));
        assert!(message(with("https://auth.example/userinfo#x")).contains("`userinfo_audience`"));
        let s = Settings::validate(with("https://auth.example/userinfo"), false).unwrap();
        assert_eq!(s.userinfo_audience.as_deref(), Some("https://auth.example/userinfo"));
    }

    #[test]
    fn r6_3_unknown_file_keys_are_refused() {
        let err = toml::from_str::<RawConfig>("isuer = \"https://x\"").unwrap_err();
        assert!(err.to_string().contains("isuer"), "{err}");
    }

    #[test]
    fn dev_key_file_is_created_with_owner_only_permissions() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("tessera-kek-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let db = format!("sqlite://{}/tessera.db", dir.display());
        let raw = RawConfig::default();
        let s =
            Settings::validate(RawConfig { database_url: Some(db.clone()), ..raw }, true).unwrap();
        let KekSource::DevFile(path) = &s.kek_source else { panic!("expected a dev key file") };
        assert_eq!(path, &dir.join("tessera.kek"));
        let mode = std::fs::metadata(path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        // A second start reuses the same key.
        let again =
            Settings::validate(RawConfig { database_url: Some(db), ..Default::default() }, true);
        assert!(again.is_ok());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
