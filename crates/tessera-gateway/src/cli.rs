//! The gateway's command line, `tessera gateway` and the `tessera-gateway` binary alike: run
//! the enforcing reverse proxy from a TOML file, or for one upstream from flags alone.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use tessera_server::config::LogFormat;

use crate::{Gateway, GatewayConfig};

#[derive(Args)]
pub struct GatewayArgs {
    /// A TOML file of routes (see README, "Put a gateway in front of a service").
    #[arg(long, value_name = "FILE", conflicts_with_all = ["issuer", "audience", "upstream"])]
    config: Option<PathBuf>,
    /// Validate the configuration and exit.
    #[arg(long)]
    check: bool,
    /// Quick form: the issuer whose tokens are accepted.
    #[arg(long, value_name = "URL", requires_all = ["audience", "upstream"])]
    issuer: Option<String>,
    /// Quick form: the audience tokens must carry.
    #[arg(long, value_name = "AUD")]
    audience: Option<String>,
    /// Quick form: where requests go once allowed.
    #[arg(long, value_name = "URL")]
    upstream: Option<String>,
    /// Quick form: the address to listen on.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8000")]
    listen: String,
    /// Quick form: a scope every request needs (repeat for several).
    #[arg(long = "scope", value_name = "S")]
    scopes: Vec<String>,
    /// Log lines as JSON (default) or `pretty`.
    #[arg(long, value_name = "FORMAT", default_value = "json")]
    log_format: String,
}

fn config(args: &GatewayArgs) -> anyhow::Result<GatewayConfig> {
    Ok(match (&args.config, &args.issuer, &args.audience, &args.upstream) {
        (Some(path), ..) => GatewayConfig::from_file(path)
            .with_context(|| format!("invalid configuration {}", path.display()))?,
        (None, Some(issuer), Some(audience), Some(upstream)) => {
            GatewayConfig::quick(issuer, audience, upstream, &args.listen, args.scopes.clone())?
        }
        _ => anyhow::bail!("give --config FILE, or --issuer, --audience and --upstream"),
    })
}

/// The runtime the gateway runs on, `tessera gateway` and `tessera-gateway` alike. On one CPU
/// (a process pinned to a core, a container given one) a single-threaded scheduler: there the
/// work-stealing one has no other worker to hand work to, and its bookkeeping cost ≈ 15 % of
/// the requests/s (bench/README.md, "Fourth pass"). On more, the work-stealing one, a worker
/// per CPU.
pub fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    runtime_for(std::thread::available_parallelism().map_or(1, std::num::NonZero::get))
}

fn runtime_for(cpus: usize) -> std::io::Result<tokio::runtime::Runtime> {
    let mut builder = if cpus == 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        tokio::runtime::Builder::new_multi_thread()
    };
    builder.enable_all().build()
}

pub async fn run(args: GatewayArgs) -> anyhow::Result<()> {
    let config = config(&args)?;
    if args.check {
        println!("configuration is valid: {} route(s)", config.routes.len());
        return Ok(());
    }
    let format = if args.log_format == "pretty" { LogFormat::Pretty } else { LogFormat::Json };
    tessera_server::telemetry::init_logging(format);
    if format == LogFormat::Json {
        // The decision events in the same JSON format, written by the gateway itself (the
        // cheaper path; see `tessera_gateway::observe`).
        crate::observe::write_audit_json_to_stderr();
    }
    let listen = config.listen;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let gateway = Gateway::new(config).await?;
    tracing::info!(listen = %listener.local_addr()?, "tessera gateway is serving");
    gateway
        .serve(listener, tessera_server::app::shutdown_signal())
        .await
        .context("the gateway stopped")
}

#[cfg(test)]
mod tests {
    use tokio::runtime::RuntimeFlavor;

    #[test]
    fn one_cpu_gets_the_single_threaded_runtime_more_get_a_worker_each() {
        let flavor = |cpus| super::runtime_for(cpus).unwrap().handle().runtime_flavor();
        assert_eq!(flavor(1), RuntimeFlavor::CurrentThread);
        assert_eq!(flavor(2), RuntimeFlavor::MultiThread);
    }
}
