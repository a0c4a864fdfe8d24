//! `tessera registration-token …`: initial access tokens for `/register` under
//! `registration_policy = "initial_access_token"` (RFC 7591 §3). A token is printed once;
//! only its SHA-256 is stored.

use clap::Subcommand;
use tessera_core::client::InitialAccessToken;
use tessera_core::secret::Secret;
use tessera_core::store::InitialAccessTokenStore;

use crate::DbArgs;

#[derive(Subcommand)]
pub enum RegistrationTokenCommand {
    /// Make an initial access token; prints it once.
    Create {
        #[command(flatten)]
        db: DbArgs,
        /// Spent by the first registration that presents it.
        #[arg(long)]
        single_use: bool,
        /// Expire it after this many seconds (default: never).
        #[arg(long, value_name = "SECONDS")]
        expires_in: Option<u32>,
        /// Print `{"initial_access_token": …, "expires_at": …}`.
        #[arg(long)]
        json: bool,
    },
}

pub async fn run(cmd: RegistrationTokenCommand) -> anyhow::Result<()> {
    let RegistrationTokenCommand::Create { db, single_use, expires_in, json } = cmd;
    let now = super::now();
    let secret = Secret::generate();
    let token = InitialAccessToken {
        hash: secret.hash(),
        single_use,
        expires_at: expires_in.map(|s| now + i64::from(s)),
        created_at: now,
    };
    super::open(&db.database_url).await?.create_initial_access_token(&token).await?;
    if json {
        super::print_json(&serde_json::json!({
            "initial_access_token": secret.expose(),
            "single_use": single_use,
            "expires_at": token.expires_at,
        }));
    } else {
        println!("initial_access_token: {}", secret.expose());
        println!("(shown once: only its hash is stored; send it as `Authorization: Bearer …`)");
    }
    Ok(())
}
