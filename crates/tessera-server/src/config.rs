//! Configuration: a TOML file, then `TESSERA_*` environment variables, then command-line flags,
//! validated once at start. Every error names the key and what would be valid.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use tessera_core::issuer::{HttpIssuers, Issuer};
use tessera_core::keys::{KeyEncryptionKey, SigningAlg};
use tessera_core::secret::SecretHash;
use tessera_core::token::TokenPolicy;
use tessera_store::SqliteSync;

use crate::features::Features;
use crate::web::throttle::LoginLimits;

/// The configuration as written in the file or the environment, before validation.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    pub issuer: Option<String>,
    pub listen: Option<String>,
    pub database_url: Option<String>,
    pub sqlite_synchronous: Option<String>,
    pub key_encryption_key: Option<String>,
    pub key_encryption_key_file: Option<PathBuf>,
    pub access_token_ttl_seconds: Option<i64>,
    pub access_token_signing_alg: Option<String>,
    pub key_publish_ahead_seconds: Option<i64>,
    pub log_format: Option<String>,
    pub id_token_ttl_seconds: Option<i64>,
    pub code_ttl_seconds: Option<i64>,
    pub refresh_token_idle_ttl_seconds: Option<i64>,
    pub refresh_token_absolute_ttl_seconds: Option<i64>,
    pub session_ttl_seconds: Option<i64>,
    /// Human descriptions of scopes, shown on the consent page.
    pub scopes: Option<BTreeMap<String, String>>,
    pub redis_url: Option<String>,
    pub client_rate_limit_per_second: Option<i64>,
    pub login_attempts_per_account: Option<i64>,
    pub login_attempts_per_source: Option<i64>,
    pub audit_to_database: Option<bool>,
    pub key_rotation_days: Option<i64>,
    pub outbound_allow_private_networks: Option<bool>,
    pub device_code_ttl_seconds: Option<i64>,
    pub device_poll_interval_seconds: Option<i64>,
    /// Optional features to turn off: unmounted and unadvertised (`crate::features`).
    pub disabled_features: Option<Vec<String>>,
    /// A separate listener for `/metrics`, which then leaves the main one.
    pub metrics_listen: Option<String>,
    /// A bearer token `/metrics` requires.
    pub metrics_token: Option<String>,
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
    /// Sign-in attempts allowed per account and per source address in each 15 minutes.
    pub login_limits: LoginLimits,
    /// Also write audit events to the `audit_events` table.
    pub audit_to_database: bool,
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
    pub dev: bool,
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
        if let Some(v) = &overrides.issuer {
            raw.issuer = Some(v.clone());
        }
        if let Some(v) = &overrides.listen {
            raw.listen = Some(v.clone());
        }
        if let Some(v) = &overrides.database_url {
            raw.database_url = Some(v.clone());
        }
        Self::validate(raw, overrides.dev)
    }

    /// Validates raw values; `dev` relaxes what `serve --dev` may default.
    pub fn validate(raw: RawConfig, dev: bool) -> Result<Self, ConfigError> {
        let err = |m: String| Err(ConfigError(m));
        let listen_raw = raw.listen.as_deref().unwrap_or(DEFAULT_LISTEN);
        let listen: SocketAddr = match listen_raw.parse() {
            Ok(a) => a,
            Err(_) => {
                return err(format!(
                    "`listen` = {listen_raw:?} is not an address like 127.0.0.1:8080"
                ));
            }
        };
        let issuer_raw = match (raw.issuer, dev) {
            (Some(i), _) => i,
            (None, true) => format!("http://127.0.0.1:{}", listen.port()),
            (None, false) => {
                return err(
                    "`issuer` is required: set it in the config file, as TESSERA_ISSUER or \
                     with --issuer (e.g. https://auth.example.com)"
                        .into(),
                );
            }
        };
        let http = if dev { HttpIssuers::Allowed } else { HttpIssuers::LoopbackOnly };
        let issuer = match Issuer::parse(&issuer_raw, http) {
            Ok(i) => i,
            Err(e) => return err(format!("`issuer`: {e}")),
        };
        let database_url = raw.database_url.unwrap_or_else(|| DEFAULT_DATABASE_URL.to_owned());
        let sqlite_synchronous = match raw.sqlite_synchronous.as_deref() {
            None => SqliteSync::default(),
            Some(v) => match SqliteSync::parse(v) {
                Some(sync) => sync,
                None => {
                    return err(format!(
                        "`sqlite_synchronous` = {v:?}: must be normal (commits survive kill -9) \
                         or full (they also survive power loss, at one fsync per write)"
                    ));
                }
            },
        };
        let ranged = |key: &str, value: Option<i64>, default: i64, min: i64, max: i64| {
            let v = value.unwrap_or(default);
            if (min..=max).contains(&v) {
                Ok(v)
            } else {
                Err(ConfigError(format!(
                    "`{key}` = {v}: must be between {min} and {max} (default {default})"
                )))
            }
        };
        // R3.2: 15 minutes by default.
        let access_token_ttl =
            ranged("access_token_ttl_seconds", raw.access_token_ttl_seconds, 900, 60, 86_400)?;
        let id_token_ttl =
            ranged("id_token_ttl_seconds", raw.id_token_ttl_seconds, 900, 60, 86_400)?;
        // R1.2: codes live 60 s by default and never more than 10 minutes.
        let code_ttl = ranged("code_ttl_seconds", raw.code_ttl_seconds, 60, 5, 600)?;
        // R1.4: absolute lifetime 30 days by default, at most 90.
        let refresh_token_absolute_ttl = ranged(
            "refresh_token_absolute_ttl_seconds",
            raw.refresh_token_absolute_ttl_seconds,
            30 * 86_400,
            3600,
            90 * 86_400,
        )?;
        let refresh_token_idle_ttl = ranged(
            "refresh_token_idle_ttl_seconds",
            raw.refresh_token_idle_ttl_seconds,
            14 * 86_400,
            300,
            refresh_token_absolute_ttl,
        )?;
        let client_rate_limit_per_second = ranged(
            "client_rate_limit_per_second",
            raw.client_rate_limit_per_second,
            1000,
            1,
            1_000_000,
        )? as u32;
        // R4.2: far above what a person signing in needs, far below what guessing needs.
        let login_limits = LoginLimits::per_15_minutes(
            ranged("login_attempts_per_account", raw.login_attempts_per_account, 10, 1, 1_000_000)?
                as u32,
            ranged("login_attempts_per_source", raw.login_attempts_per_source, 50, 1, 1_000_000)?
                as u32,
        );
        let key_rotation_days = raw
            .key_rotation_days
            .map(|d| ranged("key_rotation_days", Some(d), d, 1, 3650))
            .transpose()?;
        let redis_url = raw.redis_url.filter(|u| !u.is_empty());
        if let Some(url) = &redis_url
            && !(url.starts_with("redis://") || url.starts_with("rediss://"))
        {
            return err(format!("`redis_url` = {url:?}: must start with redis:// or rediss://"));
        }
        // RFC 8628 §3.2: how long a device code lives and how often it may be polled.
        let device_code_ttl =
            ranged("device_code_ttl_seconds", raw.device_code_ttl_seconds, 600, 60, 3600)?;
        let device_poll_interval =
            ranged("device_poll_interval_seconds", raw.device_poll_interval_seconds, 5, 1, 60)?;
        let session_ttl =
            ranged("session_ttl_seconds", raw.session_ttl_seconds, 12 * 3600, 300, 30 * 86_400)?;
        let mut scope_descriptions: BTreeMap<String, String> = DEFAULT_SCOPE_DESCRIPTIONS
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        scope_descriptions.extend(raw.scopes.unwrap_or_default());
        let alg_raw = raw.access_token_signing_alg.as_deref().unwrap_or("ES256");
        let Some(access_token_alg) = SigningAlg::parse(alg_raw) else {
            return err(format!(
                "`access_token_signing_alg` = {alg_raw:?}: must be one of RS256, ES256, EdDSA"
            ));
        };
        let key_publish_ahead = ranged(
            "key_publish_ahead_seconds",
            raw.key_publish_ahead_seconds,
            300,
            0,
            30 * 86_400,
        )?;
        let log_format = match raw.log_format.as_deref() {
            None if dev => LogFormat::Pretty,
            None | Some("json") => LogFormat::Json,
            Some("pretty") => LogFormat::Pretty,
            Some(other) => return err(format!("`log_format` = {other:?}: must be json or pretty")),
        };
        let features =
            Features::parse_disabled(raw.disabled_features.iter().flatten().map(String::as_str))
                .map_err(|e| ConfigError(format!("`disabled_features`: {e}")))?;
        let metrics_listen = match raw.metrics_listen.as_deref().filter(|v| !v.is_empty()) {
            None => None,
            Some(v) => match v.parse::<SocketAddr>() {
                Ok(a) => Some(a),
                Err(_) => {
                    return err(format!(
                        "`metrics_listen` = {v:?} is not an address like 127.0.0.1:9090"
                    ));
                }
            },
        };
        let metrics_token = match raw.metrics_token.filter(|t| !t.is_empty()) {
            None => None,
            Some(t) if t.len() < MIN_METRICS_TOKEN_LEN => {
                return err(format!(
                    "`metrics_token` must be at least {MIN_METRICS_TOKEN_LEN} characters of a \
                     random secret (e.g. `openssl rand -base64 32`)"
                ));
            }
            Some(t) => Some(SecretHash::of(t.as_bytes())),
        };
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
            login_limits,
            audit_to_database: raw.audit_to_database.unwrap_or(false),
            key_rotation_days,
            outbound_allow_private_networks: raw.outbound_allow_private_networks.unwrap_or(dev),
            features,
            metrics_listen,
            metrics_token,
            dev,
        })
    }

    /// The longest lifetime of any token the server signs, plus clock-skew leeway: how long a
    /// retired key stays published.
    pub fn max_signed_token_lifetime(&self) -> i64 {
        self.policy.max_signed_lifetime() + 60
    }

    /// The rate limit of a client at the endpoints that authenticate clients (R4.2): its own,
    /// or the server's default; unknown client_ids get the default.
    pub fn client_limit(
        &self,
        client: Option<&tessera_core::client::Client>,
    ) -> crate::rate_limit::Limit {
        let per_second = client
            .and_then(|c| c.rate_limit_per_second)
            .unwrap_or(self.client_rate_limit_per_second);
        crate::rate_limit::Limit::per_second(per_second)
    }

    /// Whether cookies get the `Secure` attribute: always, except for a plain-http issuer
    /// (`--dev` or loopback), where a browser would drop them.
    pub fn secure_cookies(&self) -> bool {
        self.issuer.as_str().starts_with("https://")
    }
}

fn read_file(path: &Path) -> Result<RawConfig, ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigError(format!("cannot read {}: {e}", path.display())))?;
    toml::from_str(&text).map_err(|e| ConfigError(format!("{}: {e}", path.display())))
}

/// Applies `TESSERA_<KEY>` variables. Other `TESSERA_*` names (such as the test suite's) are
/// not configuration and are left alone.
fn apply_env(raw: &mut RawConfig, var: impl Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
    let int = |name: &str| -> Result<Option<i64>, ConfigError> {
        var(name)
            .map(|v| {
                v.trim()
                    .parse()
                    .map_err(|_| ConfigError(format!("{name} = {v:?} is not an integer")))
            })
            .transpose()
    };
    let set = |slot: &mut Option<String>, name: &str| {
        if let Some(v) = var(name) {
            *slot = Some(v);
        }
    };
    set(&mut raw.issuer, "TESSERA_ISSUER");
    set(&mut raw.listen, "TESSERA_LISTEN");
    set(&mut raw.database_url, "TESSERA_DATABASE_URL");
    set(&mut raw.sqlite_synchronous, "TESSERA_SQLITE_SYNCHRONOUS");
    set(&mut raw.key_encryption_key, "TESSERA_KEY_ENCRYPTION_KEY");
    set(&mut raw.access_token_signing_alg, "TESSERA_ACCESS_TOKEN_SIGNING_ALG");
    set(&mut raw.log_format, "TESSERA_LOG_FORMAT");
    set(&mut raw.redis_url, "TESSERA_REDIS_URL");
    set(&mut raw.metrics_listen, "TESSERA_METRICS_LISTEN");
    set(&mut raw.metrics_token, "TESSERA_METRICS_TOKEN");
    if let Some(v) = var("TESSERA_DISABLED_FEATURES") {
        raw.disabled_features = Some(v.split(',').map(|f| f.trim().to_owned()).collect());
    }
    let flag = |name: &str| -> Result<Option<bool>, ConfigError> {
        var(name)
            .map(|v| match v.trim() {
                "true" | "1" => Ok(true),
                "false" | "0" => Ok(false),
                other => Err(ConfigError(format!("{name} = {other:?}: must be true or false"))),
            })
            .transpose()
    };
    if let Some(v) = flag("TESSERA_AUDIT_TO_DATABASE")? {
        raw.audit_to_database = Some(v);
    }
    if let Some(v) = flag("TESSERA_OUTBOUND_ALLOW_PRIVATE_NETWORKS")? {
        raw.outbound_allow_private_networks = Some(v);
    }
    if let Some(v) = var("TESSERA_KEY_ENCRYPTION_KEY_FILE") {
        raw.key_encryption_key_file = Some(v.into());
    }
    if let Some(v) = int("TESSERA_ACCESS_TOKEN_TTL_SECONDS")? {
        raw.access_token_ttl_seconds = Some(v);
    }
    if let Some(v) = int("TESSERA_KEY_PUBLISH_AHEAD_SECONDS")? {
        raw.key_publish_ahead_seconds = Some(v);
    }
    for (slot, name) in [
        (&mut raw.id_token_ttl_seconds, "TESSERA_ID_TOKEN_TTL_SECONDS"),
        (&mut raw.code_ttl_seconds, "TESSERA_CODE_TTL_SECONDS"),
        (&mut raw.refresh_token_idle_ttl_seconds, "TESSERA_REFRESH_TOKEN_IDLE_TTL_SECONDS"),
        (&mut raw.refresh_token_absolute_ttl_seconds, "TESSERA_REFRESH_TOKEN_ABSOLUTE_TTL_SECONDS"),
        (&mut raw.session_ttl_seconds, "TESSERA_SESSION_TTL_SECONDS"),
        (&mut raw.client_rate_limit_per_second, "TESSERA_CLIENT_RATE_LIMIT_PER_SECOND"),
        (&mut raw.login_attempts_per_account, "TESSERA_LOGIN_ATTEMPTS_PER_ACCOUNT"),
        (&mut raw.login_attempts_per_source, "TESSERA_LOGIN_ATTEMPTS_PER_SOURCE"),
        (&mut raw.key_rotation_days, "TESSERA_KEY_ROTATION_DAYS"),
        (&mut raw.device_code_ttl_seconds, "TESSERA_DEVICE_CODE_TTL_SECONDS"),
        (&mut raw.device_poll_interval_seconds, "TESSERA_DEVICE_POLL_INTERVAL_SECONDS"),
    ] {
        if let Some(v) = int(name)? {
            *slot = Some(v);
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
        let m = message(RawConfig { login_attempts_per_account: Some(0), ..raw_with_kek() });
        assert!(m.contains("login_attempts_per_account") && m.contains("between 1 and"), "{m}");
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
