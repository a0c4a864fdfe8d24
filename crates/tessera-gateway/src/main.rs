//! `tessera-gateway`: the gateway alone, the same command as `tessera gateway` without the
//! authorization server, its store and its pages linked in (a binary of less than half the
//! size, and less resident memory: bench/README.md, "Gateway memory").

use std::process::ExitCode;

use clap::Parser;

/// jemalloc rather than glibc's malloc: a gateway's memory is mostly hyper's two 8 KiB buffers
/// per connection, of which a request touches a page or two. jemalloc leaves a buffer's
/// untouched pages untouched (glibc writes chunk headers on the pages at both ends), and gives
/// freed pages back to the system (glibc keeps most): ≈ 25 MB instead of ≈ 30 MB at 1,000
/// connections (bench/README.md, "Fourth pass").
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's options, read before `main` (its manual's `malloc_conf`; the crate's build
/// prefixes the symbol): a background thread returns freed pages to the system within about a
/// second of their last use (`dirty_decay_ms`), directly rather than by `MADV_FREE`
/// (`muzzy_decay_ms:0`: pages so marked still count as resident until the kernel wants them).
/// Without it, freed memory went back only as later allocations came, and the resident size
/// at 1,000 connections was no better than glibc's.
#[unsafe(export_name = "_rjem_malloc_conf")]
static JEMALLOC_OPTIONS: Option<&u8> =
    Some(&b"background_thread:true,dirty_decay_ms:1000,muzzy_decay_ms:0\0"[0]);

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
    let runtime = match tessera_gateway::cli::runtime() {
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
