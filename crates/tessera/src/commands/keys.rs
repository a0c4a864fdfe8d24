//! `tessera keys …`: inspect and rotate signing keys.

use anyhow::Context;
use clap::Subcommand;
use tessera_core::keys::{KeyEncryptionKey, SigningAlg, StoredKey};
use tessera_core::store::SigningKeyStore;
use tessera_server::Settings;

use crate::{ConfigArgs, DbArgs};

#[derive(Subcommand)]
pub enum KeysCommand {
    /// List published signing keys and their state.
    List {
        #[command(flatten)]
        db: DbArgs,
        #[arg(long)]
        json: bool,
    },
    /// Rotate signing keys: the new key is published now and signs after
    /// `key_publish_ahead_seconds`; the old one stays published until its tokens expire.
    Rotate {
        #[command(flatten)]
        config: ConfigArgs,
        /// Rotate only this algorithm (RS256, ES256 or EdDSA); default all.
        #[arg(long)]
        alg: Option<String>,
    },
    /// Print a new random key-encryption key for `key_encryption_key`.
    GenerateKek,
}

pub async fn run(cmd: KeysCommand) -> anyhow::Result<()> {
    match cmd {
        KeysCommand::List { db, json } => {
            let now = super::now();
            let keys = super::open(&db.database_url).await?.published_keys(now).await?;
            if json {
                super::print_json(&keys.iter().map(|k| to_json(k, now)).collect());
            } else {
                println!("kid\talg\tstate\tactivates_at\tsigning_until\tpublish_until");
                for k in &keys {
                    let t = |v: Option<i64>| v.map_or("-".to_owned(), |v| v.to_string());
                    println!(
                        "{}\t{}\t{}\t{}\t{}\t{}",
                        k.kid,
                        k.alg,
                        state(k, now),
                        k.activates_at,
                        t(k.signing_until),
                        t(k.publish_until)
                    );
                }
            }
            Ok(())
        }
        KeysCommand::Rotate { config, alg } => {
            let settings = Settings::load(&config.overrides())?;
            let algs = match alg.as_deref() {
                Some(a) => vec![SigningAlg::parse(a).with_context(|| {
                    format!("unknown algorithm `{a}`; use RS256, ES256 or EdDSA")
                })?],
                None => SigningAlg::ALL.to_vec(),
            };
            let store = super::open(&settings.database_url).await?;
            let now = super::now();
            for alg in algs {
                let key = tessera_server::key_ring::rotate(
                    &store,
                    &settings.key_encryption_key,
                    alg,
                    now,
                    settings.key_publish_ahead,
                    settings.max_signed_token_lifetime(),
                )
                .await?;
                println!(
                    "{alg}: new key {} published now, signs from {} (in {} s)",
                    key.kid, key.activates_at, settings.key_publish_ahead
                );
            }
            Ok(())
        }
        KeysCommand::GenerateKek => {
            println!("{}", KeyEncryptionKey::generate_encoded());
            Ok(())
        }
    }
}

fn state(k: &StoredKey, now: i64) -> &'static str {
    match k.signing_until {
        Some(until) if until <= now => "retired",
        _ if k.activates_at > now => "next",
        _ => "active",
    }
}

fn to_json(k: &StoredKey, now: i64) -> serde_json::Value {
    serde_json::json!({
        "kid": k.kid,
        "alg": k.alg.as_str(),
        "state": state(k, now),
        "created_at": k.created_at,
        "activates_at": k.activates_at,
        "signing_until": k.signing_until,
        "publish_until": k.publish_until,
    })
}
