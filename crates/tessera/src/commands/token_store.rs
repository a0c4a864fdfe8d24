//! Where `tessera login` keeps the user's tokens: the OS credential store when one answers
//! (the Secret Service over the D-Bus session bus — GNOME Keyring, KWallet, KeePassXC — or the
//! macOS Keychain), otherwise the 0600 file of [`tokens_path`]. Servers, containers, CI and SSH
//! sessions have no Secret Service, and there the file is the store.
//!
//! The kernel keyutils store is deliberately not used: it is always "available", so it would
//! replace the file everywhere, and its keys are gone at reboot (and after a few idle days in
//! the persistent keyring), signing the user out where the file kept them signed in.

use std::path::PathBuf;

use anyhow::{Context, bail};
use serde_json::Value;

use super::token::{read_stored, tokens_path, write_private};

/// The keyring entry's service and account names.
const SERVICE: &str = "tessera";
const ACCOUNT: &str = "login-tokens";

/// `TESSERA_TOKEN_STORE=file` skips the keyring (a shared desktop session, a script that wants
/// the file).
const CHOICE_VAR: &str = "TESSERA_TOKEN_STORE";

pub enum TokenStore {
    Keyring { entry: keyring::Entry, file: PathBuf },
    File(PathBuf),
}

impl TokenStore {
    /// The OS keyring if it answers now, else the file.
    pub fn open() -> anyhow::Result<Self> {
        let file = tokens_path()?;
        if std::env::var(CHOICE_VAR).is_ok_and(|v| v == "file") {
            return Ok(Self::File(file));
        }
        let Ok(entry) = keyring::Entry::new(SERVICE, ACCOUNT) else {
            return Ok(Self::File(file));
        };
        // A read tells a working store (an entry, or none yet) from an absent one (no session
        // bus, no Secret Service on it, a locked store that refuses).
        match entry.get_password() {
            Ok(_) | Err(keyring::Error::NoEntry) => Ok(Self::Keyring { entry, file }),
            Err(_) => Ok(Self::File(file)),
        }
    }

    /// Where the tokens are, for messages.
    pub fn describe(&self) -> String {
        match self {
            Self::Keyring { .. } => format!("the OS keyring (service `{SERVICE}`)"),
            Self::File(path) => path.display().to_string(),
        }
    }

    /// `"keyring"` or `"file"`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Keyring { .. } => "keyring",
            Self::File(_) => "file",
        }
    }

    /// The file, when the tokens are in it.
    pub fn file(&self) -> Option<&PathBuf> {
        match self {
            Self::File(path) => Some(path),
            Self::Keyring { .. } => None,
        }
    }

    /// The stored tokens. With the keyring and nothing in it, a file left by an earlier
    /// `tessera login` (before a keyring was available) is read; the next write moves it.
    pub fn read(&self) -> anyhow::Result<Value> {
        match self {
            Self::File(path) => read_stored(path),
            Self::Keyring { entry, file } => match entry.get_password() {
                Ok(text) => {
                    let stored: Value = serde_json::from_str(&text).map_err(|e| {
                        anyhow::anyhow!(
                            "the keyring entry `{SERVICE}` is not JSON ({e}); sign in again"
                        )
                    })?;
                    if !stored.get("access_token").is_some_and(Value::is_string) {
                        bail!("the keyring entry `{SERVICE}` holds no access_token; sign in again");
                    }
                    Ok(stored)
                }
                Err(keyring::Error::NoEntry) if file.exists() => read_stored(file),
                Err(keyring::Error::NoEntry) => bail!(
                    "not signed in: no tokens in {} (sign in first with `tessera login --issuer URL --client-id ID`)",
                    self.describe()
                ),
                Err(e) => Err(e).context("cannot read the tokens from the OS keyring"),
            },
        }
    }

    /// Replaces the stored tokens; durable when it returns. Into the keyring, the file is
    /// removed, so that no token stays on disk.
    pub fn write(&self, stored: &Value) -> anyhow::Result<()> {
        match self {
            Self::File(path) => {
                let mut bytes = serde_json::to_vec_pretty(stored)?;
                bytes.push(b'\n');
                write_private(path, &bytes)
            }
            Self::Keyring { entry, file } => {
                entry
                    .set_password(&serde_json::to_string(stored)?)
                    .context("cannot save the tokens in the OS keyring")?;
                match std::fs::remove_file(file) {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                        Err(e).with_context(|| format!("cannot remove {}", file.display()))
                    }
                    _ => Ok(()),
                }
            }
        }
    }
}
