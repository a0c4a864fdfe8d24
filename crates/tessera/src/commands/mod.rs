//! One module per subcommand.

pub mod audit;
pub mod bench;
pub mod client;
pub mod keys;
pub mod login;
pub mod migrate;
pub mod registration_token;
pub mod resource;
pub mod serve;
pub mod token;
pub mod token_store;
pub mod user;

use anyhow::Context;
use tessera_core::clock::{Clock, SystemClock};
use tessera_store::{ConnectOptions, Store};

/// Opens the database, applying migrations.
pub async fn open(database_url: &str) -> anyhow::Result<Store> {
    open_with(database_url, ConnectOptions::default()).await
}

/// Like [`open`], choosing when SQLite commits are durable and how long a caller waits for a
/// connection (`serve` reads both from its settings).
pub async fn open_with(database_url: &str, options: ConnectOptions) -> anyhow::Result<Store> {
    Store::connect_with_options(database_url, options)
        .await
        .with_context(|| format!("cannot open the database {database_url}"))
}

pub fn now() -> i64 {
    SystemClock.now()
}

/// Prints a value as pretty JSON.
pub fn print_json(value: &serde_json::Value) {
    println!("{}", serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string()));
}

/// Reads one line from standard input, without its line ending.
pub fn read_stdin_line(what: &str) -> anyhow::Result<String> {
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .with_context(|| format!("cannot read the {what} from standard input"))?;
    let line = line.trim_end_matches(['\r', '\n']).to_owned();
    anyhow::ensure!(!line.is_empty(), "no {what} on standard input");
    Ok(line)
}
