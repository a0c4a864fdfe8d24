//! `tessera-client` against real authorization servers: Tessera (the in-process server on a
//! real socket) and, in `oidc_provider`, node's `oidc-provider`.

#[allow(dead_code)] // not every helper is used by every module
mod common;

mod browser;
mod code_flow;
mod discovery;
mod oidc_provider;
mod outgoing;
mod token_manager;
