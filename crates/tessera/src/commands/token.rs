//! `tessera token …`: the tokens that `tessera login` stored. `show` decodes the access token's
//! claims for a person to read; it does not verify them (only the issuer's JWKS can).

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use base64::Engine;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use clap::Subcommand;
use serde_json::{Value, json};

use super::token_store::TokenStore;

#[derive(Subcommand)]
pub enum TokenCommand {
    /// Show the stored access token's claims (decoded, not verified) and when it expires.
    Show {
        /// Print one JSON document instead of text (it never holds the tokens themselves).
        #[arg(long)]
        json: bool,
    },
    /// Print a valid access token on standard output, for scripts
    /// (`curl -H "Authorization: Bearer $(tessera token access)"`). An expired one is refreshed
    /// first with the stored refresh token, and the rotated refresh token is saved before the
    /// new access token is printed.
    Access,
}

pub async fn run(cmd: TokenCommand) -> anyhow::Result<()> {
    match cmd {
        TokenCommand::Show { json } => show(json, super::now()),
        TokenCommand::Access => access(super::now()).await,
    }
}

/// A token this close to its expiry is refreshed rather than printed.
const REFRESH_AHEAD: i64 = 30;

async fn access(now: i64) -> anyhow::Result<()> {
    let store = TokenStore::open()?;
    let stored = store.read()?;
    let text = |name: &str| stored.get(name).and_then(Value::as_str);
    let access_token = text("access_token")
        .with_context(|| format!("{} holds no access token; sign in again", store.describe()))?;
    let expires_at =
        stored["obtained_at"].as_i64().zip(stored["expires_in"].as_i64()).map(|(t, e)| t + e);
    if expires_at.is_none_or(|exp| now < exp - REFRESH_AHEAD) {
        println!("{access_token}");
        return Ok(());
    }
    let (Some(refresh_token), Some(issuer), Some(client_id)) =
        (text("refresh_token"), text("issuer"), text("client_id"))
    else {
        bail!("the access token has expired and there is no refresh token; run `tessera login`");
    };
    let http = tessera_client::Http::new()?;
    let metadata = tessera_client::discover(&http, issuer).await?;
    let client = tessera_client::ClientCredentials::public(client_id);
    let form = [("grant_type", "refresh_token"), ("refresh_token", refresh_token)];
    let tokens = client
        .token_request(&http, metadata.endpoint("token_endpoint")?, issuer, &form, now)
        .await
        .context("the refresh was refused; run `tessera login` to sign in again")?;
    let mut renewed = super::login::stored_tokens(&tokens, issuer, client_id, now);
    // RFC 6749 §6: a server that does not rotate keeps the refresh token valid.
    renewed.entry("refresh_token").or_insert_with(|| refresh_token.into());
    // The rotated refresh token is stored before the new access token is used.
    store.write(&Value::Object(renewed))?;
    println!("{}", tokens.access_token.expose());
    Ok(())
}

/// Where `tessera login` keeps its tokens: `$XDG_CONFIG_HOME/tessera/tokens.json`, or
/// `$HOME/.config/tessera/tokens.json` (the XDG base directory rules: a relative or empty
/// `XDG_CONFIG_HOME` is ignored).
pub fn tokens_path() -> anyhow::Result<PathBuf> {
    let absolute = |var: &str| std::env::var_os(var).map(PathBuf::from).filter(|p| p.is_absolute());
    let config = match absolute("XDG_CONFIG_HOME") {
        Some(dir) => dir,
        None => absolute("HOME").map(|home| home.join(".config")).context(
            "neither XDG_CONFIG_HOME nor HOME is set to an absolute path: nowhere to keep tokens",
        )?,
    };
    Ok(config.join("tessera").join("tokens.json"))
}

/// Writes `bytes` to `path` so that no other user can ever read them and no reader ever sees
/// half a file: the directory is created 0700, the bytes go to a temporary file created 0600
/// (never wider, not even for an instant), which is synced and renamed over `path`.
pub fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let dir = path.parent().context("the tokens path has no directory")?;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("cannot create {}", dir.display()))?;
    // A directory that already existed keeps its mode; narrow ours if it is wider (best effort:
    // the file itself is 0600 whatever happens).
    if let Ok(meta) = std::fs::metadata(dir)
        && meta.permissions().mode() & 0o077 != 0
    {
        let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
    }
    let nonce = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("tokens.json");
    let tmp = dir.join(format!(".{name}.{}.{nonce}.tmp", std::process::id()));
    let written = (|| -> std::io::Result<()> {
        // create_new: never follow a planted symlink nor reuse someone else's file.
        let mut file =
            std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&tmp)?;
        // The umask can only narrow 0600; make the mode exact anyway.
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)?;
        // Make the rename itself durable.
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(e).with_context(|| format!("cannot write {}", path.display()));
    }
    Ok(())
}

/// A decoded access token.
#[derive(Debug, PartialEq)]
pub enum Decoded {
    /// A compact JWS: its header and claims, decoded without any signature check.
    Jwt { header: Value, claims: Value },
    /// Anything else: a reference token that only its issuer can read.
    Opaque,
}

/// Decodes a JWT's header and payload (base64url JSON); anything that is not a compact JWS
/// with JSON objects in both is opaque.
pub fn decode(token: &str) -> Decoded {
    const LENIENT: GeneralPurpose = GeneralPurpose::new(
        &base64::alphabet::URL_SAFE,
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
    );
    let part = |s: &str| -> Option<Value> {
        let bytes = LENIENT.decode(s).ok()?;
        serde_json::from_slice::<Value>(&bytes).ok().filter(Value::is_object)
    };
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(_sig), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Decoded::Opaque;
    };
    match (part(h), part(p)) {
        (Some(header), Some(claims)) if header.get("alg").is_some() => {
            Decoded::Jwt { header, claims }
        }
        _ => Decoded::Opaque,
    }
}

/// `2026-01-31 23:59:59 UTC` from a Unix time.
pub fn utc(ts: i64) -> String {
    let (year, month, day) = tessera_core::clock::civil_from_days(ts.div_euclid(86_400));
    let secs = ts.rem_euclid(86_400);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

/// `in 14 minutes`, `3 hours 5 minutes ago`, `now`.
pub fn relative(delta: i64) -> String {
    let n = delta.unsigned_abs();
    let unit = |v: u64, name: &str| format!("{v} {name}{}", if v == 1 { "" } else { "s" });
    let span = match n {
        0 => return "now".into(),
        1..60 => unit(n, "second"),
        60..3600 => unit(n / 60, "minute"),
        3600..86_400 if n % 3600 / 60 == 0 => unit(n / 3600, "hour"),
        3600..86_400 => format!("{} {}", unit(n / 3600, "hour"), unit(n % 3600 / 60, "minute")),
        _ => unit(n / 86_400, "day"),
    };
    if delta > 0 { format!("in {span}") } else { format!("{span} ago") }
}

/// Reads the tokens file, with clear messages for the usual mistakes.
pub fn read_stored(path: &Path) -> anyhow::Result<Value> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => bail!(
            "not signed in: no tokens at {} (sign in first with `tessera login --issuer URL --client-id ID`)",
            path.display()
        ),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    let stored: Value = serde_json::from_slice(&bytes).map_err(|e| {
        anyhow::anyhow!(
            "{} is not a tokens file written by `tessera login` (not JSON: {e}); sign in again",
            path.display()
        )
    })?;
    if !stored.get("access_token").is_some_and(Value::is_string) {
        bail!("{} holds no access_token; sign in again with `tessera login`", path.display());
    }
    Ok(stored)
}

fn show(as_json: bool, now: i64) -> anyhow::Result<()> {
    let store = TokenStore::open()?;
    let stored = store.read()?;
    if let Some(path) = store.file()
        && let Ok(meta) = std::fs::metadata(path)
    {
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            eprintln!(
                "warning: {} is readable by others (mode {mode:04o}); run `chmod 600 {}`",
                path.display(),
                path.display()
            );
        }
    }
    let mut report = summarize(&store.describe(), &stored, now);
    report["store"] = store.kind().into();
    if as_json {
        super::print_json(&report);
    } else {
        print!("{}", render(&report, now));
    }
    Ok(())
}

/// Everything `show` says, as JSON; never the tokens themselves.
pub fn summarize(location: &str, stored: &Value, now: i64) -> Value {
    let access = stored["access_token"].as_str().unwrap_or_default();
    let obtained_at = stored["obtained_at"].as_i64();
    let from_expires_in = obtained_at.zip(stored["expires_in"].as_i64()).map(|(t, e)| t + e);
    let (format, header, claims, expires_at) = match decode(access) {
        Decoded::Jwt { header, claims } => {
            let exp = claims["exp"].as_i64().or(from_expires_in);
            ("jwt", header, claims, exp)
        }
        Decoded::Opaque => ("opaque", Value::Null, Value::Null, from_expires_in),
    };
    let id_token_claims = match stored["id_token"].as_str().map(decode) {
        Some(Decoded::Jwt { claims, .. }) => claims,
        _ => Value::Null,
    };
    json!({
        "file": location,
        "issuer": stored["issuer"],
        "client_id": stored["client_id"],
        "obtained_at": obtained_at,
        "format": format,
        "verified": false,
        "note": "claims (not verified): decoded without checking the signature",
        "header": header,
        "claims": claims,
        "expires_at": expires_at,
        "expired": expires_at.map(|e| e <= now),
        "scope": stored["scope"],
        "refresh_token": stored["refresh_token"].is_string(),
        "id_token_claims": id_token_claims,
    })
}

fn render(report: &Value, now: i64) -> String {
    let mut out = String::new();
    let mut line = |label: &str, value: String| out.push_str(&format!("{label:<15}{value}\n"));
    let text = |v: &Value| v.as_str().map(str::to_owned).unwrap_or_else(|| "(unknown)".into());
    let when = |t: i64| format!("{} ({})", utc(t), relative(t - now));
    line("Stored in:", text(&report["file"]));
    line("Issuer:", text(&report["issuer"]));
    line("Client:", text(&report["client_id"]));
    if let Some(t) = report["obtained_at"].as_i64() {
        line("Obtained:", when(t));
    }
    let kind = if report["format"] == "jwt" {
        let alg = report["header"]["alg"].as_str().unwrap_or("?");
        match report["header"]["kid"].as_str() {
            Some(kid) => format!("JWT ({alg}, key {kid})"),
            None => format!("JWT ({alg})"),
        }
    } else {
        "opaque: a reference token whose claims only the issuer knows (ask its introspection \
         endpoint)"
            .into()
    };
    line("Access token:", kind);
    match report["expires_at"].as_i64() {
        Some(t) if t <= now => line("Expired:", format!("{} — run `tessera login` again", when(t))),
        Some(t) => line("Expires:", when(t)),
        None => line("Expires:", "(unknown)".into()),
    }
    if let Some(scope) = report["scope"].as_str() {
        line("Scope:", scope.into());
    }
    line("Refresh token:", if report["refresh_token"] == true { "stored" } else { "none" }.into());
    if let Some(sub) = report["id_token_claims"]["sub"].as_str() {
        line("ID token:", format!("stored (sub {sub})"));
    }
    if report["format"] == "jwt" {
        let pretty =
            serde_json::to_string_pretty(&report["claims"]).unwrap_or_else(|_| "{}".into());
        out.push_str(&format!(
            "\nAccess token claims (not verified):\n{pretty}\n(decoded without checking the \
             signature; resource servers verify it against the issuer's JWKS)\n"
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(v: &Value) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
    }

    #[test]
    fn a_jws_decodes_and_anything_else_is_opaque() {
        let header = json!({"alg": "ES256", "kid": "k1", "typ": "at+jwt"});
        let claims = json!({"sub": "u1", "exp": 1_700_000_000});
        let jwt = format!("{}.{}.c2ln", b64(&header), b64(&claims));
        assert_eq!(decode(&jwt), Decoded::Jwt { header, claims });
        for opaque in
            ["tsr_abcdef", "a.b.c", "a.b.c.d.e", "", "..", &format!("{}.x.y", b64(&json!(1)))]
        {
            assert_eq!(decode(opaque), Decoded::Opaque, "{opaque}");
        }
    }

    #[test]
    fn times_read_like_a_person_writes_them() {
        assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc(951_782_400), "2000-02-29 00:00:00 UTC");
        assert_eq!(utc(1_767_225_599), "2025-12-31 23:59:59 UTC");
        assert_eq!(relative(840), "in 14 minutes");
        assert_eq!(relative(-1), "1 second ago");
        assert_eq!(relative(3600 * 3 + 300), "in 3 hours 5 minutes");
        assert_eq!(relative(-7200), "2 hours ago");
        assert_eq!(relative(0), "now");
    }

    #[test]
    fn the_summary_never_holds_a_token_and_says_claims_are_unverified() {
        let jwt = format!(
            "{}.{}.sig",
            b64(&json!({"alg": "ES256"})),
            b64(&json!({"exp": 2000, "sub": "u"}))
        );
        let stored = json!({"access_token": jwt, "refresh_token": "r-secret", "issuer": "https://i",
                            "client_id": "c", "obtained_at": 1000, "expires_in": 900});
        let report = summarize("/t/tokens.json", &stored, 1500);
        let text = report.to_string() + &render(&report, 1500);
        assert!(!text.contains(&jwt) && !text.contains("r-secret"));
        assert!(text.contains("not verified"));
        assert_eq!(report["expires_at"], 2000);
        assert_eq!(report["expired"], false);
        let opaque =
            summarize("/t", &json!({"access_token": "x", "obtained_at": 10, "expires_in": 5}), 100);
        assert_eq!(opaque["format"], "opaque");
        assert_eq!(opaque["expired"], true);
        assert!(render(&opaque, 100).contains("opaque"));
    }

    #[test]
    fn private_files_are_0600_in_a_0700_directory_and_replace_atomically() {
        let base = std::env::temp_dir().join(format!("tessera-token-unit-{}", std::process::id()));
        let path = base.join("tessera").join("tokens.json");
        write_private(&path, b"{\"a\":1}").unwrap();
        write_private(&path, b"{\"a\":2}").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"{\"a\":2}");
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(path.parent().unwrap()), 0o700);
        let leftovers = std::fs::read_dir(path.parent().unwrap()).unwrap().count();
        assert_eq!(leftovers, 1, "no temporary file left behind");
        std::fs::remove_dir_all(&base).unwrap();
    }
}
