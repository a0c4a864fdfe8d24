//! The binary's integration tests: its commands run as processes, one module per command.

#[allow(dead_code)] // not every helper is used by every module
mod support;

#[path = "../../../../tests/js/node_tools.rs"]
mod node_tools;

mod admin_api;
mod bench_smoke;
mod bff_browser;
mod cli;
mod device_login;
mod gateway;
mod mcp_gateway;
mod orders_api;
mod registration;
mod resource_introspection;
