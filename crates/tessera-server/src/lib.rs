//! Tessera's HTTP authorization server: routes → endpoint modules → `tessera-core`, with
//! configuration, telemetry and the caches in front of `tessera-store`.

pub mod admin;
pub mod app;
pub mod audit;
pub mod client_admission;
pub mod client_authentication;
pub mod client_cache;
pub mod client_keys;
pub mod config;
pub mod dpop_replay;
pub mod endpoints;
pub mod features;
pub mod issuer_path;
pub mod key_ring;
pub mod metadata_documents;
pub mod oauth_error;
pub mod oauth_form;
pub mod password_checks;
pub mod rate_limit;
pub mod resource_registry;
pub mod revocation_list;
pub mod routes;
pub mod source_address;
pub mod state;
pub mod telemetry;
pub mod tls;
pub mod web;

pub use app::{build_state, build_state_now, router, serve};
pub use config::{Overrides, Settings};
pub use state::AppState;
