//! `tessera user …`: accounts for the server's own login. Passwords are read from standard
//! input only (never from arguments, which other users can see) and stored as Argon2id hashes.

use anyhow::bail;
use clap::Subcommand;
use tessera_core::secret::Secret;
use tessera_core::store::{StoreError, UserStore};
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
    /// Delete a user.
    Delete {
        username: String,
        #[command(flatten)]
        db: DbArgs,
    },
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
                    println!("{}\t{}\t{}", u.username, u.id, u.email.as_deref().unwrap_or("-"));
                }
            }
            Ok(())
        }
        UserCommand::Delete { username, db } => {
            if super::open(&db.database_url).await?.delete_user(&username).await? {
                println!("deleted user `{username}`");
                Ok(())
            } else {
                bail!("no user `{username}`")
            }
        }
    }
}

fn to_json(u: &User) -> serde_json::Value {
    serde_json::json!({
        "sub": u.id,
        "username": u.username,
        "email": u.email,
        "name": u.name,
        "created_at": u.created_at,
    })
}
