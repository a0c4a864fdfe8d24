//! `tessera gateway`: an enforcing reverse proxy in front of services that know nothing of
//! OAuth (requirements R9). Requests are matched to a route (`routing`), pass the gate
//! (`gate`: `tessera-resource`'s token validation, the route's scopes and rate limit), and are
//! streamed to the route's upstream with the client's identity headers replaced by the
//! verified ones (`proxy`, `headers`, `identity`), and the client's token replaced by
//! one for the upstream on routes that exchange it (`exchange`). `forward_auth` offers the same gate to an
//! nginx, Traefik or Envoy in place; `observe` records one decision per request. `cli` is the
//! command line of both `tessera gateway` and this package's own binary, `tessera-gateway`
//! (the gateway without the authorization server linked in).

pub mod app;
pub mod cli;
pub mod config;
pub mod exchange;
pub mod forward_auth;
pub mod gate;
pub mod headers;
pub mod identity;
pub mod metadata;
pub mod observe;
pub mod proxy;
pub mod routing;
pub mod upstream;

pub use app::{Gateway, StartError};
pub use config::{ConfigError, GatewayConfig};
