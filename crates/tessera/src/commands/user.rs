//! `tessera user …`: accounts for the server's own login. Passwords are read from standard
//! input only (never from arguments, which other users can see) and stored as Argon2id hashes.

use anyhow::bail;
use clap::Subcommand;
use tessera_core::secret::Secret;
use tessera_core::store::{ConsentStore, StoreError, UserStore};
use tessera_core::user::User;

use crate::DbArgs;

#[derive(Subcommand)]
pub enum UserCommand {
    /// Create a user; the password is read from standard input.
    Create {
        #[command(flatten)]
        db: DbArgs,
        #[arg(long)]
        username: String,
        #[arg(long)]
        email: Option<String>,
        /// Display name.
        #[arg(long)]
        name: Option<String>,
        /// Read the password from standard input (required).
        #[arg(long, required = true)]
        password_stdin: bool,
        #[arg(long)]
        json: bool,
    },
    /// List users.
    List {
        #[command(flatten)]
        db: DbArgs,
        #[arg(long)]
        json: bool,
    },
    /// Delete a user; every grant and token of theirs is revoked and every session ended.
    Delete {
        username: String,
        #[command(flatten)]
        db: DbArgs,
        #[command(flatten)]
        redis: RedisArgs,
    },
    /// Disable a user: they cannot sign in, and every grant and token of theirs is revoked and
    /// every session ended, as on deletion; the account is kept.
    Disable {
        username: String,
        #[command(flatten)]
        db: DbArgs,
        #[command(flatten)]
        redis: RedisArgs,
    },
    /// Enable a disabled user again: they can sign in (nothing revoked is restored).
    Enable {
        username: String,
        #[command(flatten)]
        db: DbArgs,
    },
    /// List the clients a user has consented to, and the scopes.
    Consents {
        username: String,
        #[command(flatten)]
        db: DbArgs,
        #[arg(long)]
        json: bool,
    },
    /// Withdraw a user's consent for a client; every grant of that user to that client (its
    /// refresh tokens and access tokens) is revoked with it.
    RevokeConsent {
        username: String,
        client_id: String,
        #[command(flatten)]
        db: DbArgs,
        #[command(flatten)]
        redis: RedisArgs,
    },
}

/// Where the server publishes its revocation list (requirement R7.4).
#[derive(clap::Args)]
pub struct RedisArgs {
    /// The server's `redis_url`: the revoked access tokens' `jti`s are published there, so
    /// that resource servers reading the revocation list refuse them at once.
    #[arg(long, env = "TESSERA_REDIS_URL")]
    pub redis_url: Option<String>,
}

/// Publishes the unexpired access tokens of the user's revoked grants (of one client, when
/// given) to the revocation list, when a Redis is configured.
async fn publish_revoked(
    store: &tessera_store::Store,
    redis: &RedisArgs,
    user_id: &str,
    client_id: Option<&tessera_core::client_id::ClientId>,
) -> anyhow::Result<()> {
    use tessera_core::store::GrantStore;
    let Some(url) = redis.redis_url.as_deref().filter(|u| !u.is_empty()) else { return Ok(()) };
    let now = super::now();
    let revoked = store.revoked_user_access_tokens(user_id, client_id, now).await?;
    let list = tessera_server::revocation_list::RevocationList::connect(url)
        .await
        .map_err(|e| anyhow::anyhow!("cannot reach the revocation list at {url}: {e}"))?;
    list.publish(&revoked, now).await;
    Ok(())
}

pub async fn run(cmd: UserCommand) -> anyhow::Result<()> {
    match cmd {
        UserCommand::Create { db, username, email, name, password_stdin: _, json } => {
            let password = Secret::from_string(super::read_stdin_line("password")?);
            let user = User::new(&username, email, name, &password, super::now())
                .map_err(anyhow::Error::msg)?;
            let store = super::open(&db.database_url).await?;
            match store.create_user(&user).await {
                Err(StoreError::Conflict(what)) => bail!("{what} already exists"),
                other => other?,
            }
            if json {
                super::print_json(&to_json(&user));
            } else {
                println!("created user `{}` (sub {})", user.username, user.id);
            }
            Ok(())
        }
        UserCommand::List { db, json } => {
            let users = super::open(&db.database_url).await?.list_users().await?;
            if json {
                super::print_json(&users.iter().map(to_json).collect());
            } else if users.is_empty() {
                println!("no users");
            } else {
                for u in &users {
                    let state = if u.disabled { "disabled" } else { "enabled" };
                    let email = u.email.as_deref().unwrap_or("-");
                    println!("{}\t{}\t{}\t{state}", u.username, u.id, email);
                }
            }
            Ok(())
        }
        UserCommand::Consents { username, db, json } => {
            let store = super::open(&db.database_url).await?;
            let user = find_user(&store, &username).await?;
            let consents = store.list_consents(&user.id).await?;
            if json {
                let rows = consents
                    .iter()
                    .map(|c| serde_json::json!({"client_id": c.client_id.as_str(), "scope": c.scope.to_string(), "granted_at": c.granted_at}))
                    .collect();
                super::print_json(&rows);
            } else if consents.is_empty() {
                println!("`{username}` has consented to no client");
            } else {
                for c in &consents {
                    println!("{}\t{}\t{}", c.client_id, c.scope, c.granted_at);
                }
            }
            Ok(())
        }
        UserCommand::RevokeConsent { username, client_id, db, redis } => {
            let store = super::open(&db.database_url).await?;
            let user = find_user(&store, &username).await?;
            let client_id = tessera_core::client_id::ClientId::parse(&client_id)
                .map_err(|e| anyhow::anyhow!("client_id `{client_id}` {e}"))?;
            if store.revoke_consent(&user.id, &client_id, super::now()).await? {
                publish_revoked(&store, &redis, &user.id, Some(&client_id)).await?;
                println!(
                    "revoked the consent of `{username}` for `{client_id}` and every token of that grant"
                );
                Ok(())
            } else {
                bail!("`{username}` has no consent for `{client_id}`")
            }
        }
        UserCommand::Delete { username, db, redis } => {
            let store = super::open(&db.database_url).await?;
            let user = find_user(&store, &username).await?;
            if store.delete_user(&username, super::now()).await? {
                publish_revoked(&store, &redis, &user.id, None).await?;
                println!("deleted user `{username}`; their grants, tokens and sessions ended");
                Ok(())
            } else {
                bail!("no user `{username}`")
            }
        }
        UserCommand::Disable { username, db, redis } => {
            let store = super::open(&db.database_url).await?;
            let user = find_user(&store, &username).await?;
            if store.set_user_disabled(&username, true, super::now()).await? {
                publish_revoked(&store, &redis, &user.id, None).await?;
                println!("disabled user `{username}`; their grants, tokens and sessions ended");
                Ok(())
            } else {
                bail!("no user `{username}`")
            }
        }
        UserCommand::Enable { username, db } => {
            let store = super::open(&db.database_url).await?;
            if store.set_user_disabled(&username, false, super::now()).await? {
                println!("enabled user `{username}`");
                Ok(())
            } else {
                bail!("no user `{username}`")
            }
        }
    }
}

async fn find_user(store: &tessera_store::Store, username: &str) -> anyhow::Result<User> {
    store
        .find_user_by_username(username)
        .await?
        .ok_or_else(|| anyhow::anyhow!("no user `{username}`"))
}

fn to_json(u: &User) -> serde_json::Value {
    serde_json::json!({
        "sub": u.id,
        "username": u.username,
        "email": u.email,
        "name": u.name,
        "created_at": u.created_at,
        "disabled": u.disabled,
    })
}
