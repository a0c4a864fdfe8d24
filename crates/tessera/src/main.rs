//! `tessera`: the one binary. Parses the command line and hands each subcommand to its module.

mod commands;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

#[derive(Parser)]
#[command(name = "tessera", version, about = "An OAuth 2.1 / OpenID Connect authorization server")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the authorization server.
    Serve(ServeArgs),
    /// Apply pending database migrations and exit.
    Migrate(DbArgs),
    /// Create, list, show and delete clients.
    #[command(subcommand)]
    Client(commands::client::ClientCommand),
    /// Create, list and delete users of the server's own login.
    #[command(subcommand)]
    User(commands::user::UserCommand),
    /// List and rotate signing keys.
    #[command(subcommand)]
    Keys(commands::keys::KeysCommand),
    /// Make initial access tokens for dynamic client registration (RFC 7591 §3).
    #[command(subcommand)]
    RegistrationToken(commands::registration_token::RegistrationTokenCommand),
    /// Read the audit table.
    #[command(subcommand)]
    Audit(commands::audit::AuditCommand),
    /// Register, list and delete resource servers that dynamic clients may ask for.
    #[command(subcommand)]
    Resource(commands::resource::ResourceCommand),
    /// Sign this terminal in with the device flow (RFC 8628) and store the tokens.
    Login(commands::login::LoginArgs),
    /// Inspect the tokens that `tessera login` stored.
    #[command(subcommand)]
    Token(commands::token::TokenCommand),
    /// Load-test an OAuth / OpenID Connect server found through its discovery document.
    Bench(commands::bench::BenchArgs),
    /// Run an enforcing reverse proxy in front of services that know nothing of OAuth.
    Gateway(tessera_gateway::cli::GatewayArgs),
}

/// Where the database is.
#[derive(Args, Clone)]
pub struct DbArgs {
    /// `sqlite://PATH` (created on first use) or `postgres://…`.
    #[arg(long, env = "TESSERA_DATABASE_URL", default_value = tessera_server::config::DEFAULT_DATABASE_URL)]
    pub database_url: String,
}

/// Options shared by `serve` and the commands that need the full configuration.
#[derive(Args, Clone)]
pub struct ConfigArgs {
    /// Development mode: no config file needed, plain-http issuer allowed, a key-encryption
    /// key generated beside the database, a demo client printed on start.
    #[arg(long)]
    pub dev: bool,
    /// A TOML configuration file (see README for the keys).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// `sqlite://PATH` or `postgres://…` (default `sqlite://tessera.db`).
    #[arg(long)]
    pub database_url: Option<String>,
}

#[derive(Args)]
struct ServeArgs {
    #[command(flatten)]
    config: ConfigArgs,
    /// Address to listen on (default 127.0.0.1:8080).
    #[arg(long, value_name = "ADDR")]
    listen: Option<String>,
    /// The issuer URL, exactly as tokens will carry it.
    #[arg(long, value_name = "URL")]
    issuer: Option<String>,
}

impl ConfigArgs {
    pub fn overrides(&self) -> tessera_server::Overrides {
        tessera_server::Overrides {
            config_file: self.config.clone(),
            dev: self.dev,
            database_url: self.database_url.clone(),
            ..Default::default()
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The gateway chooses its runtime by the CPUs it may use; every other command runs on
    // the work-stealing one.
    let runtime = if matches!(cli.command, Command::Gateway(_)) {
        tessera_gateway::cli::runtime()
    } else {
        tokio::runtime::Runtime::new()
    };
    let runtime = match runtime {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Serve(args) => {
                let overrides = tessera_server::Overrides {
                    listen: args.listen,
                    issuer: args.issuer,
                    ..args.config.overrides()
                };
                commands::serve::run(overrides).await
            }
            Command::Migrate(db) => commands::migrate::run(&db).await,
            Command::Client(cmd) => commands::client::run(cmd).await,
            Command::User(cmd) => commands::user::run(cmd).await,
            Command::Keys(cmd) => commands::keys::run(cmd).await,
            Command::RegistrationToken(cmd) => commands::registration_token::run(cmd).await,
            Command::Audit(cmd) => commands::audit::run(cmd).await,
            Command::Resource(cmd) => commands::resource::run(cmd).await,
            Command::Login(args) => commands::login::run(args).await,
            Command::Token(cmd) => commands::token::run(cmd).await,
            Command::Bench(args) => commands::bench::run(args).await,
            Command::Gateway(args) => tessera_gateway::cli::run(args).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
