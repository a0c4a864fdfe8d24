//! The gateway's integration tests: one binary, real peers (a Tessera server as the issuer,
//! upstream services on loopback ports, nginx, Redis).

mod binary;
mod client_certificates;
mod dpop;
mod exchange;
mod forward_auth;
mod pool;
mod proxy;
mod rate_limit;
mod support;
mod upgrade;
mod upstream_tls;
