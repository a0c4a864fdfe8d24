//! The gateway's configuration: a TOML file (`--config gateway.toml`) or the one-route quick
//! form of the command line. Parsed once into typed values; every error names its key
//! (`routes[2].upstream: …`).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use http::Method;
use http::header::HeaderValue;
use http::uri::{Authority, Scheme};
use serde::Deserialize;
use url::Url;

/// A configuration that cannot be used: the key and what is wrong with it.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file is not valid TOML or has a key of the wrong type or an unknown key (the
    /// parser's message names the key and the line).
    #[error("{0}")]
    Syntax(String),
    /// A key whose value is not allowed.
    #[error("{key}: {problem}")]
    Key { key: String, problem: String },
    #[error("cannot read {path}: {error}")]
    Read { path: PathBuf, error: std::io::Error },
}

fn bad(key: impl Into<String>, problem: impl Into<String>) -> ConfigError {
    ConfigError::Key { key: key.into(), problem: problem.into() }
}

/// The whole gateway.
#[derive(Clone, Debug)]
pub struct GatewayConfig {
    pub listen: SocketAddr,
    /// The URL clients use to reach the gateway (scheme, host, port): the origin of the RFC
    /// 9728 `resource` identifiers and metadata URLs.
    pub public_url: Url,
    pub issuers: Vec<String>,
    /// Fetch issuer metadata and keys from loopback / private addresses over plain http
    /// (development and tests only).
    pub allow_private_networks: bool,
    pub limits: Limits,
    pub identity: IdentityConfig,
    pub redis_url: Option<String>,
    /// The prefix of the rate-limit keys in Redis (instances that share limits share it).
    pub redis_key_prefix: String,
    pub upstream_tls: UpstreamTls,
    /// TLS on the gateway's own listener and where client certificates come from (RFC 8705).
    pub tls: ListenerTls,
    pub forward_auth: bool,
    pub routes: Vec<RouteConfig>,
}

/// `[tls]`: the listener speaks TLS with `cert_file`/`key_file`, requesting (not requiring) a
/// client certificate; or a TLS-terminating proxy in `trusted_proxies` passes it in
/// `client_cert_header` (URL-encoded PEM). Either way a certificate-bound token (RFC 8705 §3)
/// passes only with its certificate.
#[derive(Clone, Debug)]
pub struct ListenerTls {
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
    /// `trusted_proxies`: the only peers whose certificate header is read.
    pub proxies: tessera_server::source_address::TrustedProxies,
    /// `client_cert_header`.
    pub sources: tessera_server::tls::CertificateSources,
}

impl ListenerTls {
    /// Whether a request can carry a client certificate at all.
    pub fn certificates(&self) -> bool {
        self.cert_file.is_some() || self.sources.header.is_some()
    }
}

/// Timeouts and caps.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Connecting to an upstream (TCP and TLS).
    pub connect_timeout: Duration,
    /// From sending a request upstream to its response's header.
    pub response_header_timeout: Duration,
    /// A client must send a request's header within this (slowloris).
    pub header_read_timeout: Duration,
    /// The longest pause between two pieces of a body, either way (an SSE stream that sends
    /// nothing for longer is ended).
    pub idle_timeout: Duration,
    pub max_connections: usize,
    /// The largest request body passed upstream.
    pub max_body_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(5),
            response_header_timeout: Duration::from_secs(30),
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            max_connections: 10_000,
            max_body_bytes: 10 * 1024 * 1024,
        }
    }
}

/// How the verified identity reaches upstreams.
#[derive(Clone, Debug, Default)]
pub struct IdentityConfig {
    /// Further request headers to remove (lowercase), beside every `x-tessera-*`.
    pub strip_headers: Vec<String>,
    /// Also send a short-lived JWT signed by the gateway (`X-Tessera-Identity`).
    pub jwt: bool,
    /// That JWT's lifetime.
    pub jwt_lifetime: Duration,
}

/// Trust for https upstreams.
#[derive(Clone, Debug, Default)]
pub struct UpstreamTls {
    /// PEM roots to trust instead of the platform's.
    pub ca_file: Option<PathBuf>,
    /// A client certificate chain and its key (PEM) for upstreams that require mTLS.
    pub client_cert_file: Option<PathBuf>,
    pub client_key_file: Option<PathBuf>,
}

/// Whom a rate limit counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RateKey {
    ClientId,
    Subject,
}

/// A per-route rate limit: `requests` per `period`, per client or per subject.
#[derive(Clone, Copy, Debug)]
pub struct RouteRateLimit {
    pub requests: u32,
    pub period: Duration,
    pub key: RateKey,
}

/// One route.
#[derive(Clone, Debug)]
pub struct RouteConfig {
    /// `routes[i]`, or the name given: the label in metrics and audit events.
    pub name: String,
    /// Matched against the request's host (without port), case-insensitively; `None` = any.
    pub host: Option<String>,
    /// Matched at a segment boundary (`/orders` matches `/orders` and `/orders/1`, not
    /// `/ordersx`).
    pub path_prefix: String,
    /// `None` = every method.
    pub methods: Option<Vec<Method>>,
    pub upstream: Url,
    /// `upstream` in the parts request targets are made of.
    pub upstream_base: UpstreamBase,
    /// The audience its tokens must carry; also its RFC 9728 `resource`.
    pub audience: String,
    pub scopes: Vec<String>,
    /// Scopes required for particular methods instead of `scopes`.
    pub method_scopes: BTreeMap<String, Vec<String>>,
    pub anonymous: bool,
    pub forward_token: bool,
    pub websocket: bool,
    pub rate_limit: Option<RouteRateLimit>,
    /// Send the upstream a token of its own audience, obtained by token exchange (RFC 8693),
    /// in place of the client's.
    pub exchange: Option<ExchangeConfig>,
}

/// A route's upstream URL split once into what each forwarded request's URI is made of,
/// instead of formatting and parsing a URI string per request.
#[derive(Clone, Debug)]
pub struct UpstreamBase {
    pub scheme: Scheme,
    pub authority: Authority,
    /// The upstream's path without its trailing `/` (empty for the root), put before the
    /// request's path.
    pub path: String,
    /// `Host` for the upstream (`upstream::host_of`), made once.
    pub host: HeaderValue,
}

impl UpstreamBase {
    pub(crate) fn of(key: &str, upstream: &Url) -> Result<Self, ConfigError> {
        let scheme = Scheme::try_from(upstream.scheme());
        let authority = Authority::try_from(upstream.authority());
        let host = match (&scheme, &authority) {
            (Ok(scheme), Ok(authority)) => crate::upstream::host_of(scheme, authority),
            _ => None,
        };
        match (scheme, authority, host) {
            (Ok(scheme), Ok(authority), Some(host)) => Ok(Self {
                scheme,
                authority,
                path: upstream.path().trim_end_matches('/').to_owned(),
                host,
            }),
            _ => Err(bad(key, "is not usable as an HTTP request target")),
        }
    }
}

/// How the gateway authenticates at the token endpoint (RFC 6749 §2.3.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExchangeAuth {
    ClientSecretBasic,
    ClientSecretPost,
}

/// `[routes.exchange]`: the token the upstream receives.
#[derive(Clone, Debug)]
pub struct ExchangeConfig {
    /// The upstream's audience: sent as `resource` when it is an absolute URI, else as
    /// `audience` (RFC 8693 §2.1).
    pub audience: String,
    /// The scope asked for (empty: the subject token's, as the server decides).
    pub scope: Vec<String>,
    /// The gateway's client at the authorization server.
    pub client_id: String,
    /// Its secret (`Debug` prints nothing of it).
    pub client_secret: tessera_core::secret::Secret,
    pub auth: ExchangeAuth,
    /// The token endpoint; by default the `token_endpoint` of the issuer's metadata.
    pub token_endpoint: Option<Url>,
    /// Act for the caller (`act` names the gateway) rather than impersonate it.
    pub delegation: bool,
}

impl RouteConfig {
    /// The scopes a request with `method` needs.
    pub fn scopes_for(&self, method: &Method) -> &[String] {
        self.method_scopes.get(method.as_str()).unwrap_or(&self.scopes)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    listen: Option<String>,
    public_url: Option<String>,
    #[serde(default)]
    issuers: Vec<String>,
    #[serde(default)]
    allow_private_networks: bool,
    redis_url: Option<String>,
    redis_key_prefix: Option<String>,
    #[serde(default)]
    forward_auth: bool,
    #[serde(default)]
    limits: RawLimits,
    #[serde(default)]
    identity: RawIdentity,
    #[serde(default)]
    upstream_tls: RawTls,
    #[serde(default)]
    tls: RawListenerTls,
    #[serde(default)]
    routes: Vec<RawRoute>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawListenerTls {
    cert_file: Option<PathBuf>,
    key_file: Option<PathBuf>,
    client_cert_header: Option<String>,
    #[serde(default)]
    trusted_proxies: Vec<String>,
}

impl RawListenerTls {
    fn validate(self) -> Result<ListenerTls, ConfigError> {
        if self.cert_file.is_some() != self.key_file.is_some() {
            return Err(bad("tls.key_file", "cert_file and key_file go together"));
        }
        if let (Some(cert), Some(key)) = (&self.cert_file, &self.key_file) {
            tessera_server::tls::acceptor(cert, key).map_err(|e| bad("tls.cert_file", e))?;
        }
        let mut trusted_proxies = Vec::new();
        for (i, block) in self.trusted_proxies.iter().enumerate() {
            trusted_proxies.push(
                tessera_server::source_address::Cidr::parse(block)
                    .map_err(|e| bad(format!("tls.trusted_proxies[{i}]"), e))?,
            );
        }
        let client_cert_header = match self.client_cert_header {
            None => None,
            Some(name) => {
                // Read only from trusted proxies: without any, nobody may set it.
                if trusted_proxies.is_empty() {
                    return Err(bad(
                        "tls.client_cert_header",
                        "needs tls.trusted_proxies: the header is believed only from them",
                    ));
                }
                Some(
                    http::HeaderName::from_bytes(name.to_ascii_lowercase().as_bytes())
                        .map_err(|_| bad("tls.client_cert_header", "is not a header name"))?,
                )
            }
        };
        Ok(ListenerTls {
            cert_file: self.cert_file,
            key_file: self.key_file,
            proxies: tessera_server::source_address::TrustedProxies {
                blocks: trusted_proxies,
                // Not read here: only the blocks decide whose certificate header counts.
                header: tessera_server::source_address::ForwardedHeader::XForwardedFor,
            },
            sources: tessera_server::tls::CertificateSources { header: client_cert_header },
        })
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawLimits {
    connect_timeout_ms: Option<u64>,
    response_header_timeout_ms: Option<u64>,
    header_read_timeout_ms: Option<u64>,
    idle_timeout_ms: Option<u64>,
    max_connections: Option<usize>,
    max_body_bytes: Option<u64>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawIdentity {
    #[serde(default)]
    strip_headers: Vec<String>,
    #[serde(default)]
    jwt: bool,
    jwt_lifetime_seconds: Option<u64>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawTls {
    ca_file: Option<PathBuf>,
    client_cert_file: Option<PathBuf>,
    client_key_file: Option<PathBuf>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRoute {
    name: Option<String>,
    host: Option<String>,
    path_prefix: Option<String>,
    methods: Option<Vec<String>>,
    upstream: Option<String>,
    audience: Option<String>,
    #[serde(default)]
    scopes: Vec<String>,
    #[serde(default)]
    method_scopes: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    anonymous: bool,
    #[serde(default)]
    forward_token: bool,
    #[serde(default)]
    websocket: bool,
    rate_limit: Option<RawRateLimit>,
    exchange: Option<RawExchange>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawExchange {
    audience: Option<String>,
    #[serde(default)]
    scope: Vec<String>,
    client_id: Option<String>,
    client_secret_file: Option<PathBuf>,
    client_secret_env: Option<String>,
    auth_method: Option<String>,
    token_endpoint: Option<String>,
    delegation: Option<bool>,
}

impl RawExchange {
    fn validate(self, key: &str) -> Result<ExchangeConfig, ConfigError> {
        let key = |k: &str| format!("{key}.{k}");
        let audience = match self.audience {
            Some(a) if !a.is_empty() && !a.contains(char::is_whitespace) => a,
            Some(_) => return Err(bad(key("audience"), "must be a URI or name without spaces")),
            None => return Err(bad(key("audience"), "is required")),
        };
        check_scopes(&key("scope"), &self.scope)?;
        let client_id = match self.client_id {
            Some(id) if !id.is_empty() => id,
            _ => return Err(bad(key("client_id"), "is required")),
        };
        let secret = match (self.client_secret_file, self.client_secret_env) {
            (Some(path), None) => std::fs::read_to_string(&path).map_err(|e| {
                bad(key("client_secret_file"), format!("cannot read {}: {e}", path.display()))
            })?,
            (None, Some(name)) => std::env::var(&name).map_err(|_| {
                bad(key("client_secret_env"), format!("the variable {name} is not set"))
            })?,
            _ => {
                return Err(bad(
                    key("client_secret_file"),
                    "exactly one of client_secret_file and client_secret_env is needed",
                ));
            }
        };
        let secret = secret.trim().to_owned();
        if secret.is_empty() {
            return Err(bad(key("client_secret_file"), "the secret is empty"));
        }
        let auth = match self.auth_method.as_deref() {
            None | Some("client_secret_basic") => ExchangeAuth::ClientSecretBasic,
            Some("client_secret_post") => ExchangeAuth::ClientSecretPost,
            Some(other) => {
                return Err(bad(
                    key("auth_method"),
                    format!("{other:?} is neither client_secret_basic nor client_secret_post"),
                ));
            }
        };
        let token_endpoint = match &self.token_endpoint {
            Some(u) => Some(parse_http_url(&key("token_endpoint"), u)?),
            None => None,
        };
        Ok(ExchangeConfig {
            audience,
            scope: self.scope,
            client_id,
            client_secret: tessera_core::secret::Secret::from_string(secret),
            auth,
            token_endpoint,
            delegation: self.delegation.unwrap_or(true),
        })
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRateLimit {
    requests: u32,
    per_seconds: u64,
    key: Option<String>,
}

/// The longest JWT lifetime: the identity JWT only has to outlive one upstream request.
pub const MAX_IDENTITY_JWT_LIFETIME: Duration = Duration::from_secs(300);

impl GatewayConfig {
    /// Reads and validates a TOML file.
    pub fn from_file(path: &std::path::Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|error| ConfigError::Read { path: path.to_owned(), error })?;
        Self::from_toml(&text)
    }

    /// Validates TOML text.
    pub fn from_toml(text: &str) -> Result<Self, ConfigError> {
        let raw: RawConfig =
            toml::from_str(text).map_err(|e| ConfigError::Syntax(e.to_string()))?;
        raw.validate()
    }

    /// The quick form: one route protecting everything under `/` of `upstream`.
    pub fn quick(
        issuer: &str,
        audience: &str,
        upstream: &str,
        listen: &str,
        scopes: Vec<String>,
    ) -> Result<Self, ConfigError> {
        let listen_addr = parse_listen("--listen", listen)?;
        RawConfig {
            listen: Some(listen.to_owned()),
            public_url: Some(format!("http://{listen_addr}")),
            issuers: vec![issuer.to_owned()],
            // The quick form is for a first try on one machine.
            allow_private_networks: issuer.starts_with("http://"),
            redis_url: None,
            redis_key_prefix: None,
            forward_auth: false,
            limits: RawLimits::default(),
            identity: RawIdentity::default(),
            upstream_tls: RawTls::default(),
            tls: RawListenerTls::default(),
            routes: vec![RawRoute {
                name: Some("default".into()),
                host: None,
                path_prefix: Some("/".into()),
                methods: None,
                upstream: Some(upstream.to_owned()),
                audience: Some(audience.to_owned()),
                scopes,
                method_scopes: BTreeMap::new(),
                anonymous: false,
                forward_token: false,
                websocket: false,
                rate_limit: None,
                exchange: None,
            }],
        }
        .validate()
    }
}

fn parse_listen(key: &str, value: &str) -> Result<SocketAddr, ConfigError> {
    value.parse().map_err(|_| bad(key, format!("{value:?} is not an address like 127.0.0.1:8000")))
}

fn parse_http_url(key: &str, value: &str) -> Result<Url, ConfigError> {
    let url = Url::parse(value).map_err(|e| bad(key, format!("{value:?} is not a URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(bad(key, format!("{value:?} must be an http or https URL with a host")));
    }
    if url.fragment().is_some() || url.query().is_some() {
        return Err(bad(key, "must have neither query nor fragment"));
    }
    Ok(url)
}

fn millis(value: Option<u64>, default: Duration, key: &str) -> Result<Duration, ConfigError> {
    match value {
        None => Ok(default),
        Some(0) => Err(bad(key, "must be more than 0")),
        Some(ms) => Ok(Duration::from_millis(ms)),
    }
}

/// RFC 9110 §5.1: a field name is a token.
fn is_header_name(name: &str) -> bool {
    http::HeaderName::from_bytes(name.as_bytes()).is_ok()
}

impl RawConfig {
    fn validate(self) -> Result<GatewayConfig, ConfigError> {
        let listen_text = self.listen.as_deref().unwrap_or("127.0.0.1:8000");
        let listen = parse_listen("listen", listen_text)?;
        let public_url = match &self.public_url {
            Some(url) => parse_http_url("public_url", url)?,
            None => return Err(bad("public_url", "is required (e.g. \"https://api.example\")")),
        };
        if public_url.path() != "/" {
            return Err(bad("public_url", "must be an origin without a path"));
        }
        if self.issuers.is_empty() && self.routes.iter().any(|r| !r.anonymous) {
            return Err(bad("issuers", "at least one issuer is needed for protected routes"));
        }
        for (i, issuer) in self.issuers.iter().enumerate() {
            let url = parse_http_url(&format!("issuers[{i}]"), issuer)?;
            if url.scheme() == "http" && !self.allow_private_networks {
                return Err(bad(
                    format!("issuers[{i}]"),
                    "must be https (plain http only with allow_private_networks = true)",
                ));
            }
        }
        let defaults = Limits::default();
        let l = &self.limits;
        let limits = Limits {
            connect_timeout: millis(
                l.connect_timeout_ms,
                defaults.connect_timeout,
                "limits.connect_timeout_ms",
            )?,
            response_header_timeout: millis(
                l.response_header_timeout_ms,
                defaults.response_header_timeout,
                "limits.response_header_timeout_ms",
            )?,
            header_read_timeout: millis(
                l.header_read_timeout_ms,
                defaults.header_read_timeout,
                "limits.header_read_timeout_ms",
            )?,
            idle_timeout: millis(
                l.idle_timeout_ms,
                defaults.idle_timeout,
                "limits.idle_timeout_ms",
            )?,
            max_connections: match l.max_connections {
                Some(0) => return Err(bad("limits.max_connections", "must be more than 0")),
                Some(n) => n,
                None => defaults.max_connections,
            },
            max_body_bytes: l.max_body_bytes.unwrap_or(defaults.max_body_bytes),
        };
        let mut strip_headers = Vec::new();
        for (i, name) in self.identity.strip_headers.iter().enumerate() {
            if !is_header_name(name) {
                return Err(bad(format!("identity.strip_headers[{i}]"), "is not a header name"));
            }
            strip_headers.push(name.to_ascii_lowercase());
        }
        let jwt_lifetime = Duration::from_secs(self.identity.jwt_lifetime_seconds.unwrap_or(60));
        if jwt_lifetime.is_zero() || jwt_lifetime > MAX_IDENTITY_JWT_LIFETIME {
            return Err(bad("identity.jwt_lifetime_seconds", "must be between 1 and 300"));
        }
        let tls = self.upstream_tls;
        if tls.client_cert_file.is_some() != tls.client_key_file.is_some() {
            return Err(bad(
                "upstream_tls.client_key_file",
                "client_cert_file and client_key_file go together",
            ));
        }
        if self.routes.is_empty() {
            return Err(bad("routes", "at least one [[routes]] is needed"));
        }
        let mut routes: Vec<RouteConfig> = Vec::with_capacity(self.routes.len());
        for (i, raw) in self.routes.into_iter().enumerate() {
            let route = raw.validate(i)?;
            // The name labels metrics and audit events, and keys a route's exchanged tokens.
            if let Some(j) = routes.iter().position(|r| r.name == route.name) {
                return Err(bad(
                    format!("routes[{i}].name"),
                    format!("is also the name of routes[{j}]"),
                ));
            }
            routes.push(route);
        }
        Ok(GatewayConfig {
            listen,
            public_url,
            issuers: self.issuers,
            allow_private_networks: self.allow_private_networks,
            limits,
            identity: IdentityConfig { strip_headers, jwt: self.identity.jwt, jwt_lifetime },
            redis_url: self.redis_url,
            redis_key_prefix: self.redis_key_prefix.unwrap_or_else(|| "tessera:gw:".into()),
            upstream_tls: UpstreamTls {
                ca_file: tls.ca_file,
                client_cert_file: tls.client_cert_file,
                client_key_file: tls.client_key_file,
            },
            tls: self.tls.validate()?,
            forward_auth: self.forward_auth,
            routes,
        })
    }
}

/// RFC 6749 §3.3: scope tokens are printable ASCII without space, `"` or `\`.
fn is_scope_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes().all(|b| b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b))
}

fn check_scopes(key: &str, scopes: &[String]) -> Result<(), ConfigError> {
    match scopes.iter().position(|s| !is_scope_token(s)) {
        Some(j) => Err(bad(format!("{key}[{j}]"), "is not a scope token (RFC 6749 §3.3)")),
        None => Ok(()),
    }
}

impl RawRoute {
    fn validate(self, i: usize) -> Result<RouteConfig, ConfigError> {
        let key = |k: &str| format!("routes[{i}].{k}");
        let path_prefix = self.path_prefix.unwrap_or_else(|| "/".into());
        if !path_prefix.starts_with('/') || path_prefix.contains(['?', '#']) {
            return Err(bad(key("path_prefix"), "must start with / and have no query"));
        }
        let methods = match self.methods {
            None => None,
            Some(list) => {
                let mut methods = Vec::new();
                for (j, m) in list.iter().enumerate() {
                    let method = Method::from_bytes(m.to_ascii_uppercase().as_bytes())
                        .map_err(|_| bad(format!("{}[{j}]", key("methods")), "is not a method"))?;
                    methods.push(method);
                }
                Some(methods)
            }
        };
        let upstream = match &self.upstream {
            Some(u) => parse_http_url(&key("upstream"), u)?,
            None => return Err(bad(key("upstream"), "is required")),
        };
        let upstream_base = UpstreamBase::of(&key("upstream"), &upstream)?;
        let audience = match (self.audience, self.anonymous) {
            (Some(a), _) => {
                parse_http_url(&key("audience"), &a)?;
                a
            }
            (None, true) => String::new(),
            (None, false) => {
                return Err(bad(key("audience"), "is required unless anonymous = true"));
            }
        };
        check_scopes(&key("scopes"), &self.scopes)?;
        let mut method_scopes = BTreeMap::new();
        for (method, scopes) in self.method_scopes {
            let upper = method.to_ascii_uppercase();
            let mkey = format!("{}.{method}", key("method_scopes"));
            Method::from_bytes(upper.as_bytes()).map_err(|_| bad(&mkey, "is not a method"))?;
            check_scopes(&mkey, &scopes)?;
            method_scopes.insert(upper, scopes);
        }
        let rate_limit = match self.rate_limit {
            None => None,
            Some(r) => {
                if r.requests == 0 || r.per_seconds == 0 {
                    return Err(bad(
                        key("rate_limit"),
                        "requests and per_seconds must be more than 0",
                    ));
                }
                let rate_key = match r.key.as_deref() {
                    None | Some("client_id") => RateKey::ClientId,
                    Some("sub") => RateKey::Subject,
                    Some(other) => {
                        return Err(bad(
                            key("rate_limit.key"),
                            format!("{other:?} is neither \"client_id\" nor \"sub\""),
                        ));
                    }
                };
                Some(RouteRateLimit {
                    requests: r.requests,
                    period: Duration::from_secs(r.per_seconds),
                    key: rate_key,
                })
            }
        };
        if rate_limit.is_some() && self.anonymous {
            return Err(bad(key("rate_limit"), "counts clients, so it needs a protected route"));
        }
        let exchange = match self.exchange {
            None => None,
            Some(_) if self.anonymous => {
                return Err(bad(
                    key("exchange"),
                    "exchanges the client's token: not on an anonymous route",
                ));
            }
            Some(_) if self.forward_token => {
                return Err(bad(key("exchange"), "and forward_token = true exclude each other"));
            }
            Some(raw) => Some(raw.validate(&key("exchange"))?),
        };
        Ok(RouteConfig {
            name: self.name.unwrap_or_else(|| format!("routes[{i}]")),
            host: self.host.map(|h| h.to_ascii_lowercase()),
            path_prefix,
            methods,
            upstream,
            upstream_base,
            audience,
            scopes: self.scopes,
            method_scopes,
            anonymous: self.anonymous,
            forward_token: self.forward_token,
            websocket: self.websocket,
            rate_limit,
            exchange,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
        public_url = "https://api.example"
        issuers = ["https://id.example"]
        [[routes]]
        path_prefix = "/orders"
        upstream = "http://127.0.0.1:9000"
        audience = "https://api.example/orders"
        scopes = ["orders:read"]
        method_scopes = { post = ["orders:write"] }
    "#;

    #[test]
    fn minimal_file_parses_with_per_method_scopes() {
        let config = GatewayConfig::from_toml(MINIMAL).unwrap();
        let route = &config.routes[0];
        assert_eq!(route.scopes_for(&Method::GET), ["orders:read"]);
        assert_eq!(route.scopes_for(&Method::POST), ["orders:write"]);
        assert_eq!(route.name, "routes[0]");
    }

    #[test]
    fn errors_name_the_key() {
        let missing = MINIMAL.replace("upstream = \"http://127.0.0.1:9000\"", "");
        let err = GatewayConfig::from_toml(&missing).unwrap_err().to_string();
        assert!(err.starts_with("routes[0].upstream:"), "{err}");
        let bad_scope = MINIMAL.replace("\"orders:read\"", "\"a b\"");
        let err = GatewayConfig::from_toml(&bad_scope).unwrap_err().to_string();
        assert!(err.starts_with("routes[0].scopes[0]:"), "{err}");
        let unknown = format!("{MINIMAL}\nupstrem = 1");
        let err = GatewayConfig::from_toml(&unknown).unwrap_err().to_string();
        assert!(err.contains("upstrem"), "{err}");
        let limit = MINIMAL.replace(
            "scopes = [",
            "rate_limit = { requests = 1, per_seconds = 1, key = \"ip\" }\nscopes = [",
        );
        let err = GatewayConfig::from_toml(&limit).unwrap_err().to_string();
        assert!(err.starts_with("routes[0].rate_limit.key:"), "{err}");
    }

    #[test]
    fn rfc8693_exchange_route_is_parsed_and_its_errors_name_the_key() {
        let dir = std::env::temp_dir().join(format!("tessera-gw-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let secret = dir.join("secret");
        std::fs::write(&secret, "s3cret\n").unwrap();
        let with = |exchange: &str| {
            format!("{MINIMAL}\n[routes.exchange]\n{exchange}")
                .replace("{secret}", &secret.display().to_string())
        };
        let ok = with(
            "audience = \"https://billing.internal\"\nscope = [\"billing:read\"]\n\
             client_id = \"gw\"\nclient_secret_file = \"{secret}\"",
        );
        let config = GatewayConfig::from_toml(&ok).unwrap();
        let exchange = config.routes[0].exchange.as_ref().unwrap();
        assert_eq!(exchange.client_secret.expose(), "s3cret");
        assert!(exchange.delegation);
        assert_eq!(exchange.auth, ExchangeAuth::ClientSecretBasic);
        assert!(!format!("{config:?}").contains("s3cret"), "the secret is not printed");
        let no_secret = with("audience = \"https://b\"\nclient_id = \"gw\"");
        let err = GatewayConfig::from_toml(&no_secret).unwrap_err().to_string();
        assert!(err.starts_with("routes[0].exchange.client_secret_file:"), "{err}");
        let missing = with(
            "audience = \"https://b\"\nclient_id = \"gw\"\nclient_secret_file = \"/nonexistent/x\"",
        );
        let err = GatewayConfig::from_toml(&missing).unwrap_err().to_string();
        assert!(err.starts_with("routes[0].exchange.client_secret_file:"), "{err}");
        let both = ok.replace("[routes.exchange]", "forward_token = true\n[routes.exchange]");
        let err = GatewayConfig::from_toml(&both).unwrap_err().to_string();
        assert!(err.starts_with("routes[0].exchange:"), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn route_names_are_unique() {
        let twice = format!(
            "{MINIMAL}\n[[routes]]\nname = \"routes[0]\"\nupstream = \"http://127.0.0.1:1\"\nanonymous = true"
        );
        let err = GatewayConfig::from_toml(&twice).unwrap_err().to_string();
        assert!(err.starts_with("routes[1].name:"), "{err}");
    }

    #[test]
    fn plain_http_issuer_needs_private_networks() {
        let http = MINIMAL.replace("https://id.example", "http://127.0.0.1:1");
        let err = GatewayConfig::from_toml(&http).unwrap_err().to_string();
        assert!(err.starts_with("issuers[0]:"), "{err}");
    }

    #[test]
    fn quick_form_protects_everything_under_root() {
        let c = GatewayConfig::quick(
            "http://127.0.0.1:8080",
            "http://127.0.0.1:8000/",
            "http://127.0.0.1:9000",
            "127.0.0.1:8000",
            vec!["read".into()],
        )
        .unwrap();
        assert_eq!(c.routes[0].path_prefix, "/");
        assert!(!c.routes[0].anonymous);
        assert_eq!(c.routes[0].scopes, ["read"]);
    }
}
