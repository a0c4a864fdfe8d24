//! `tessera-gateway`: the gateway alone, the same command as `tessera gateway` without the
//! authorization server, its store and its pages linked in (a binary of less than half the
//! size, and less resident memory: bench/README.md, "Gateway memory").

use std::process::ExitCode;

use clap::Parser;

#[derive(Parser)]
#[command(
    name = "tessera-gateway",
    version,
    about = "Tessera's enforcing reverse proxy: OAuth in front of services that know nothing of it"
)]
struct Cli {
    #[command(flatten)]
    gateway: tessera_gateway::cli::GatewayArgs,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(tessera_gateway::cli::run(cli.gateway)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
