//! The server's integration tests, one module per feature, compiled into one test binary.

#[allow(dead_code)] // not every helper is used by every module
mod common;

mod accounts;
mod admin_api;
mod audit_and_maintenance;
mod authorization_code_flow;
mod authorization_errors;
mod browser_flow;
mod client_id_metadata_documents;
mod client_interop;
mod code_exchange;
mod csrf;
mod database_outage;
mod device_flow;
mod dpop;
mod dynamic_registration;
mod features;
mod http_edge;
mod issuer_path_discovery;
mod jose_interop;
mod key_rotation;
mod listener_limits;
mod logout;
mod logs_no_secrets;
mod metrics_exposure;
mod mtls;
mod operations;
mod postgres_instances;
mod private_key_jwt;
mod pushed_authorization;
mod rate_limit_redis;
mod rate_limits;
mod refresh_grace;
mod resource_access;
mod resource_indicators;
mod resource_registry;
mod revocation_introspection;
mod revocation_list_sources;
mod security_limits;
mod token_endpoint;
mod token_exchange;
