//! Forward-auth: the gate without the proxy, for an nginx, Traefik or Envoy already in place.
//! `200` with the identity headers, or the gate's `401` / `403` / `429` with its
//! `WWW-Authenticate`.
//!
//! The original request is described to the gateway in one of two ways:
//! - nginx `auth_request` and Traefik `ForwardAuth`: `X-Forwarded-Method`, `X-Forwarded-Uri`
//!   and `X-Forwarded-Host` (Traefik sets them itself; the nginx snippet sets them) on a
//!   request to `/_tessera/auth`;
//! - Envoy `ext_authz` (HTTP service): the original method, and the original path appended to
//!   `path_prefix: /_tessera/auth`.
//!
//! The route (and so the audience and scopes) is chosen from that original request exactly
//! as the proxy would choose it.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, Method, StatusCode};

use crate::app::Gateway;
use crate::gate::Gate;
use crate::identity::set_identity_headers;
use crate::observe::{Decision, Event};

const PREFIX: &str = "/_tessera/auth";

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// `ANY /_tessera/auth[/…]`.
pub async fn check(State(gateway): State<Gateway>, request: Request) -> Response {
    let (mut parts, _) = request.into_parts();
    let forwarded_uri = header(&parts.headers, "x-forwarded-uri").map(str::to_owned);
    let (method, target) = match forwarded_uri {
        Some(uri) => {
            let method = header(&parts.headers, "x-forwarded-method")
                .and_then(|m| Method::from_bytes(m.as_bytes()).ok())
                .unwrap_or(Method::GET);
            (method, uri)
        }
        None => {
            let tail = parts.uri.path_and_query().map_or("", |pq| pq.as_str());
            let tail = tail.strip_prefix(PREFIX).unwrap_or(tail);
            let tail = if tail.starts_with('/') { tail.to_owned() } else { format!("/{tail}") };
            (parts.method.clone(), tail)
        }
    };
    let Ok(uri) = target.parse::<http::Uri>() else {
        return (StatusCode::BAD_REQUEST, "the forwarded URI is not a request target\n")
            .into_response();
    };
    let host = header(&parts.headers, "x-forwarded-host")
        .map(|h| h.split(':').next().unwrap_or(h).to_ascii_lowercase())
        .or_else(|| crate::routing::request_host(&parts));
    let Some(route) = gateway.routes.find(host.as_deref(), uri.path(), &method) else {
        Event::new("-", Decision::NoRoute, "forward-auth: no route matches").emit();
        return (StatusCode::FORBIDDEN, "no route\n").into_response();
    };
    // The gate reads the method and the credentials of the original request.
    parts.method = method;
    parts.uri = uri;
    match Gate::check(gateway.gate.get(), route, &parts).await {
        Ok(passed) => {
            passed.event(route).emit();
            let mut response = Response::new(Body::empty());
            if let Some(identity) = passed.identity() {
                set_identity_headers(
                    response.headers_mut(),
                    identity,
                    gateway.signer.as_deref(),
                    route.upstream.as_str(),
                );
            }
            response
        }
        Err(denial) => {
            denial.event(route).emit();
            denial.into_response()
        }
    }
}
