//! `tessera client …`: register and inspect clients. A secret is printed once, at creation.

use anyhow::{Context, bail};
use clap::Subcommand;
use tessera_core::client::Client;
use tessera_core::client_id::ClientId;
use tessera_core::secret::Secret;
use tessera_core::store::ClientStore;
use tessera_server::admin::operations::{self, NewClient, OperationError};
use tessera_server::admin::views::ClientView;

use crate::DbArgs;

#[derive(Subcommand)]
pub enum ClientCommand {
    /// Register a client; prints its secret once.
    Create(Box<CreateArgs>),
    /// List clients.
    List {
        #[command(flatten)]
        db: DbArgs,
        #[arg(long)]
        json: bool,
    },
    /// Show one client.
    Show {
        client_id: String,
        #[command(flatten)]
        db: DbArgs,
        #[arg(long)]
        json: bool,
    },
    /// Delete a client; the server stops accepting it within 5 seconds.
    Delete {
        client_id: String,
        #[command(flatten)]
        db: DbArgs,
    },
}

#[derive(clap::Args)]
pub struct CreateArgs {
    #[command(flatten)]
    db: DbArgs,
    /// A human-readable name.
    #[arg(long)]
    name: String,
    /// The client_id (default: random).
    #[arg(long)]
    client_id: Option<String>,
    /// A redirect URI, matched exactly (repeatable).
    #[arg(long = "redirect-uri", value_name = "URI")]
    redirect_uris: Vec<String>,
    /// A post-logout redirect URI (repeatable).
    #[arg(long = "post-logout-redirect-uri", value_name = "URI")]
    post_logout_redirect_uris: Vec<String>,
    /// A grant type (repeatable; default client_credentials, or authorization_code +
    /// refresh_token when redirect URIs are given).
    #[arg(long = "grant-type", value_name = "GRANT")]
    grant_types: Vec<String>,
    /// An allowed scope in `resource:operation` form (repeatable, or space-separated).
    #[arg(long = "scope", value_name = "SCOPE")]
    scopes: Vec<String>,
    /// A scope granted when a request names none (repeatable; must be allowed).
    #[arg(long = "default-scope", value_name = "SCOPE")]
    default_scopes: Vec<String>,
    /// An audience (resource server identifier) for its access tokens (repeatable; default:
    /// the issuer).
    #[arg(long = "audience", value_name = "URI")]
    audiences: Vec<String>,
    /// Token endpoint auth method: client_secret_basic (default), client_secret_post,
    /// private_key_jwt (with --jwks-file or --jwks-uri), tls_client_auth (with one
    /// --tls-client-auth-* name) or self_signed_tls_client_auth (with --jwks-file or
    /// --jwks-uri holding the certificate's key).
    #[arg(long, value_name = "METHOD")]
    auth_method: Option<String>,
    /// The client's public keys (a JWKS JSON file) for private_key_jwt.
    #[arg(long, value_name = "FILE")]
    jwks_file: Option<std::path::PathBuf>,
    /// Where the client publishes its JWKS, for private_key_jwt (https).
    #[arg(long, value_name = "URI")]
    jwks_uri: Option<String>,
    /// Issue opaque (reference) access tokens instead of JWTs; resource servers introspect them.
    #[arg(long)]
    opaque_access_tokens: bool,
    /// Allow this client to call the introspection endpoint (a resource server).
    #[arg(long)]
    introspection: bool,
    /// With --introspection: describe to it only tokens whose `aud` includes this resource
    /// URI; any other token is inactive to it.
    #[arg(long, value_name = "URI", requires = "introspection")]
    introspection_audience: Option<String>,
    /// Its own rate limit at /token, /revoke and /introspect, in requests per second.
    #[arg(long, value_name = "N")]
    rate_limit: Option<u32>,
    /// Seconds after a rotation during which the client may present the old refresh token
    /// again (two requests that refreshed at once) without its grant being revoked as a
    /// reuse; at most 30 (default 0: none).
    #[arg(long, value_name = "SECONDS", default_value_t = 0)]
    refresh_grace_seconds: u32,
    /// With the token-exchange grant (RFC 8693): it may exchange tokens issued to this
    /// client_id (repeatable). What it obtains is bounded by its --audience and --scope.
    #[arg(long = "exchange-subject-client", value_name = "CLIENT_ID")]
    exchange_subject_clients: Vec<String>,
    /// With the token-exchange grant: it may exchange tokens meant for this audience
    /// (repeatable).
    #[arg(long = "exchange-subject-audience", value_name = "URI")]
    exchange_subject_audiences: Vec<String>,
    /// Its authorization requests must be pushed to /par first (RFC 9126 §6).
    #[arg(long)]
    require_pushed_authorization_requests: bool,
    /// Its token requests must carry a DPoP proof, so all its access tokens are bound to a
    /// key (RFC 9449 §5.2).
    #[arg(long)]
    dpop_bound_access_tokens: bool,
    /// tls_client_auth: the subject DN its certificate carries (RFC 4514, e.g.
    /// "CN=svc,O=Example").
    #[arg(long, value_name = "DN")]
    tls_client_auth_subject_dn: Option<String>,
    /// tls_client_auth: a DNS name among its certificate's SANs.
    #[arg(long, value_name = "NAME")]
    tls_client_auth_san_dns: Option<String>,
    /// tls_client_auth: a URI among its certificate's SANs.
    #[arg(long, value_name = "URI")]
    tls_client_auth_san_uri: Option<String>,
    /// tls_client_auth: an IP address among its certificate's SANs.
    #[arg(long, value_name = "IP")]
    tls_client_auth_san_ip: Option<String>,
    /// tls_client_auth: an e-mail address among its certificate's SANs.
    #[arg(long, value_name = "EMAIL")]
    tls_client_auth_san_email: Option<String>,
    /// Bind its access tokens to the TLS client certificate it presents (RFC 8705 §3).
    #[arg(long)]
    tls_client_certificate_bound_access_tokens: bool,
    /// The JWS algorithm of its ID tokens (OIDC Registration §2
    /// `id_token_signed_response_alg`): RS256 (the default), ES256 or EdDSA.
    #[arg(long, value_name = "ALG")]
    id_token_signed_response_alg: Option<String>,
    /// A public client (no secret; e.g. a native or browser app).
    #[arg(long)]
    public: bool,
    /// A first-party client: consent is implied.
    #[arg(long)]
    first_party: bool,
    /// A first-party administration client: it gets the admin:* scopes of the admin HTTP
    /// API, which no other client may be granted (implies --first-party).
    #[arg(long)]
    admin: bool,
    /// Import an existing secret (≥ 32 characters) from standard input instead of generating one.
    #[arg(long)]
    secret_stdin: bool,
    /// `web` (https redirect URIs on a real host) or `native` (RFC 8252: private-use schemes,
    /// loopback http, https); unset: only the general redirect-URI rules.
    #[arg(long, value_name = "TYPE")]
    application_type: Option<String>,
    /// The client's home page (https), shown on the consent page.
    #[arg(long, value_name = "URL")]
    client_uri: Option<String>,
    /// The client's logo (https).
    #[arg(long, value_name = "URL")]
    logo_uri: Option<String>,
    /// The client's terms of service (https).
    #[arg(long, value_name = "URL")]
    tos_uri: Option<String>,
    /// The client's privacy policy (https).
    #[arg(long, value_name = "URL")]
    policy_uri: Option<String>,
    /// Print `{"client_id": …, "client_secret": …}`.
    #[arg(long)]
    json: bool,
}

pub async fn run(cmd: ClientCommand) -> anyhow::Result<()> {
    match cmd {
        ClientCommand::Create(args) => create(*args).await,
        ClientCommand::List { db, json } => {
            let clients = super::open(&db.database_url).await?.list_clients().await?;
            if json {
                super::print_json(&clients.iter().map(to_json).collect());
            } else if clients.is_empty() {
                println!("no clients");
            } else {
                for c in &clients {
                    let grants: Vec<&str> = c.grant_types.iter().map(|g| g.as_str()).collect();
                    println!(
                        "{}\t{}\t{}\t{}",
                        c.client_id,
                        c.token_endpoint_auth_method,
                        grants.join(","),
                        c.client_name
                    );
                }
            }
            Ok(())
        }
        ClientCommand::Show { client_id, db, json } => {
            let id = parse_id(&client_id)?;
            let store = super::open(&db.database_url).await?;
            let client =
                store.find_client(&id).await?.with_context(|| format!("no client `{id}`"))?;
            if json {
                super::print_json(&to_json(&client));
            } else {
                print_client(&client);
            }
            Ok(())
        }
        ClientCommand::Delete { client_id, db } => {
            let id = parse_id(&client_id)?;
            if super::open(&db.database_url).await?.delete_client(&id).await? {
                println!("deleted client `{id}`");
                Ok(())
            } else {
                bail!("no client `{id}`")
            }
        }
    }
}

fn parse_id(raw: &str) -> anyhow::Result<ClientId> {
    ClientId::parse(raw).map_err(|e| anyhow::anyhow!("client_id `{raw}` {e}"))
}

async fn create(args: CreateArgs) -> anyhow::Result<()> {
    let imported_secret = if args.secret_stdin {
        Some(Secret::from_string(super::read_stdin_line("client secret")?))
    } else {
        None
    };
    let jwks = match &args.jwks_file {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            Some(serde_json::from_str(&text).map_err(|e| anyhow::anyhow!("--jwks-file: {e}"))?)
        }
        None => None,
    };
    let auth_method = match (args.public, args.auth_method) {
        (true, Some(m)) if m != "none" => bail!("a public client authenticates with method `none`"),
        (true, _) => Some("none".to_owned()),
        (false, method) => method,
    };
    // The operation the admin API performs too, with the rules of /register (RFC 7591).
    let new = NewClient {
        client_id: args.client_id,
        client_name: args.name,
        redirect_uris: args.redirect_uris,
        post_logout_redirect_uris: args.post_logout_redirect_uris,
        grant_types: args.grant_types,
        scope: Some(args.scopes.join(" ")),
        default_scope: Some(args.default_scopes.join(" ")),
        audience: args.audiences,
        token_endpoint_auth_method: auth_method,
        jwks,
        jwks_uri: args.jwks_uri,
        access_token_format: args.opaque_access_tokens.then(|| "opaque".to_owned()),
        introspection: args.introspection,
        introspection_audience: args.introspection_audience,
        rate_limit_per_second: args.rate_limit,
        refresh_token_grace_seconds: args.refresh_grace_seconds,
        token_exchange_subject_clients: args.exchange_subject_clients,
        token_exchange_subject_audiences: args.exchange_subject_audiences,
        require_pushed_authorization_requests: args.require_pushed_authorization_requests,
        dpop_bound_access_tokens: args.dpop_bound_access_tokens,
        first_party: args.first_party,
        admin: args.admin,
        application_type: args.application_type,
        client_uri: args.client_uri,
        logo_uri: args.logo_uri,
        tos_uri: args.tos_uri,
        policy_uri: args.policy_uri,
        tls_client_auth_subject_dn: args.tls_client_auth_subject_dn,
        tls_client_auth_san_dns: args.tls_client_auth_san_dns,
        tls_client_auth_san_uri: args.tls_client_auth_san_uri,
        tls_client_auth_san_ip: args.tls_client_auth_san_ip,
        tls_client_auth_san_email: args.tls_client_auth_san_email,
        tls_client_certificate_bound_access_tokens: Some(
            args.tls_client_certificate_bound_access_tokens,
        ),
        id_token_signed_response_alg: args.id_token_signed_response_alg,
        imported_secret,
    };
    let store = super::open(&args.db.database_url).await?;
    let (client, secret, admin) = match operations::create_client(&store, new, super::now()).await {
        Err(OperationError::Invalid(why)) => bail!("{why}"),
        other => other?,
    };
    if args.json {
        let mut out = serde_json::json!({ "client_id": client.client_id.as_str() });
        if let Some(secret) = &secret {
            out["client_secret"] = secret.expose().into();
        }
        super::print_json(&out);
    } else {
        print_client(&client);
        if admin {
            println!("admin:          yes (may be granted the admin:* scopes)");
        }
        if let Some(secret) = &secret {
            println!("client_secret:  {}\n(shown once: only its hash is stored)", secret.expose());
        }
    }
    Ok(())
}

fn to_json(c: &Client) -> serde_json::Value {
    serde_json::to_value(ClientView::from(c)).unwrap_or_default()
}

fn print_client(c: &Client) {
    let json = to_json(c);
    if let Some(map) = json.as_object() {
        for (key, value) in map {
            let shown = match value {
                serde_json::Value::String(s) => s.clone(),
                serde_json::Value::Array(items) => {
                    items.iter().filter_map(|i| i.as_str()).collect::<Vec<_>>().join(" ")
                }
                other => other.to_string(),
            };
            println!("{:<16}{shown}", format!("{key}:"));
        }
    }
}
