//! The reverse proxy: a request that passed the gate (`gate`) is rewritten (`headers`,
//! `identity`) and streamed to its route's upstream; the answer is streamed back.
//!
//! Nothing is buffered: request and response bodies are passed frame by frame, so Server-Sent
//! Events reach the client as the upstream writes them and large bodies cost no memory.

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::response::{IntoResponse, Response};
use http::header::{self, HeaderValue};
use http::uri::PathAndQuery;
use http::{StatusCode, Uri};
use http_body_util::{BodyExt, LengthLimitError, Limited};

use crate::app::Gateway;
use tessera_http::{Challenge, ErrorCode, ErrorResponse};

use crate::config::{RouteConfig, UpstreamBase};
use crate::exchange::ExchangeError;
use crate::gate::Passed;
use crate::headers;
use crate::identity::set_identity_headers;
use crate::observe::{Decision, Event};
use crate::upstream::{IdleTimeout, ProxyBody};

/// A plain answer of the gateway itself (no route, upstream trouble): no OAuth vocabulary,
/// since it is not about the token (and must not look like a challenge).
fn plain(status: StatusCode, text: &'static str) -> Response {
    let mut response = (status, text).into_response();
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// Every request the router does not serve itself (its fallback).
pub async fn handle(
    State(gateway): State<Gateway>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
) -> Response {
    forward(&gateway, peer, request).await
}

/// Gates `request`, from `peer`, and forwards it to its route's upstream; any body type
/// (hyper's own, from the gateway's front, or axum's, from the router's fallback).
pub async fn forward<B>(gateway: &Gateway, peer: SocketAddr, request: http::Request<B>) -> Response
where
    B: http_body::Body<Data = bytes::Bytes> + Send + Unpin + 'static,
    B::Error: Into<crate::upstream::BoxError>,
{
    let (mut parts, body) = request.into_parts();
    let host = crate::routing::request_host(&parts);
    let Some(route) = gateway.routes.find(host.as_deref(), parts.uri.path(), &parts.method) else {
        Event::new("-", Decision::NoRoute, "no route matches").emit();
        return plain(StatusCode::NOT_FOUND, "no route\n");
    };
    let passed = match crate::gate::Gate::check(gateway.gate.get(), route, &parts).await {
        Ok(passed) => passed,
        Err(denial) => {
            denial.event(route).emit();
            return denial.into_response();
        }
    };
    let upgrade = route.websocket && headers::wants_upgrade(&parts.headers);
    let client_upgrade =
        if upgrade { parts.extensions.remove::<hyper::upgrade::OnUpgrade>() } else { None };
    let event = passed.event(route);
    let exchanged = match (&route.exchange, passed.identity()) {
        (Some(exchange), Some(identity)) => {
            // Boxed: the exchange's state is not carried inside every request's future.
            match Box::pin(exchanged_token(gateway, route, exchange, identity, &parts)).await {
                Ok(token) => Some(token),
                Err((decision, reason, response)) => {
                    event.decision(decision, reason).emit();
                    return response;
                }
            }
        }
        _ => None,
    };
    let forward = match outbound(
        gateway,
        route,
        &passed,
        exchanged.as_deref(),
        parts,
        body,
        peer,
        host.as_deref(),
        upgrade,
    ) {
        Ok(request) => request,
        Err(refused) => {
            let (decision, reason) = match refused {
                Unforwardable::TooLarge => (Decision::TooLarge, "request body over the limit"),
                Unforwardable::BadTarget => (Decision::BadRequest, "target not forwardable"),
                Unforwardable::BadExchangedToken => {
                    (Decision::ExchangeFailed, "exchanged token not a header value")
                }
            };
            event.decision(decision, reason).emit();
            return refused.response();
        }
    };
    let limits = gateway.config.limits;
    let answer =
        tokio::time::timeout(limits.response_header_timeout, gateway.client.request(forward));
    let mut response = match answer.await {
        Err(_) => {
            event.decision(Decision::UpstreamTimeout, "no response header in time").emit();
            return plain(StatusCode::GATEWAY_TIMEOUT, "the upstream did not answer in time\n");
        }
        Ok(Err(e)) => {
            if is_length_limit(&e) {
                event.decision(Decision::TooLarge, "request body over the limit").emit();
                return plain(StatusCode::PAYLOAD_TOO_LARGE, "request body too large\n");
            }
            tracing::warn!(route = %route.name, error = %e, "upstream request failed");
            event.decision(Decision::UpstreamError, "upstream unreachable").emit();
            return plain(StatusCode::BAD_GATEWAY, "the upstream is unavailable\n");
        }
        Ok(Ok(response)) => response,
    };
    event.status(response.status()).emit();
    if response.status() == StatusCode::SWITCHING_PROTOCOLS {
        if let Some(client_upgrade) = client_upgrade {
            let upstream_upgrade = hyper::upgrade::on(&mut response);
            tokio::spawn(splice_upgraded(client_upgrade, upstream_upgrade));
            let (parts, _) = response.into_parts();
            return Response::from_parts(parts, Body::empty());
        }
        // An upstream switching protocols unasked: not passed on.
        return plain(StatusCode::BAD_GATEWAY, "the upstream switched protocols unasked\n");
    }
    headers::remove_hop_by_hop(response.headers_mut(), false);
    response.map(|body| Body::new(IdleTimeout::new(body, limits.idle_timeout))).into_response()
}

/// The token for the upstream, obtained by exchanging the client's (RFC 8693); or the
/// decision and the answer when none could be had.
async fn exchanged_token(
    gateway: &Gateway,
    route: &RouteConfig,
    exchange: &crate::config::ExchangeConfig,
    identity: &crate::identity::Identity,
    parts: &http::request::Parts,
) -> Result<std::sync::Arc<str>, (Decision, &'static str, Response)> {
    let unavailable = || {
        plain(StatusCode::BAD_GATEWAY, "the gateway could not obtain a token for the upstream\n")
    };
    // The gate accepted a token from this header: it is there.
    let Ok(Some(subject)) = tessera_http::BearerToken::from_headers(&parts.headers) else {
        return Err((Decision::ExchangeFailed, "no bearer token to exchange", unavailable()));
    };
    match gateway.exchanges.token_for(exchange, identity.issuer(), subject.as_str()).await {
        Ok(token) => Ok(token),
        Err(ExchangeError::Refused { error }) => {
            tracing::info!(route = %route.name, error, "token exchange refused");
            // RFC 6750 §3.1: the token is valid, but does not entitle its holder to this
            // upstream (the authorization server's exchange policy said no).
            let mut challenge = Challenge::bearer().error(ErrorCode::InsufficientScope, None);
            let metadata =
                gateway.gate.get().and_then(|g| g.resource_metadata_url(&route.audience));
            if let Some(url) = metadata {
                challenge = challenge.resource_metadata(url);
            }
            let response = ErrorResponse::new(ErrorCode::InsufficientScope)
                .description("the token cannot be exchanged for one this upstream accepts")
                .challenge(challenge)
                .into_response();
            Err((Decision::ExchangeRefused, "exchange refused", response))
        }
        Err(ExchangeError::Failed(why)) => {
            tracing::warn!(route = %route.name, error = %why, "token exchange failed");
            Err((Decision::ExchangeFailed, "exchange failed", unavailable()))
        }
    }
}

/// Why a request cannot be forwarded as it is.
enum Unforwardable {
    /// The declared body is over `max_body_bytes`.
    TooLarge,
    /// The request target does not make a URI on the upstream.
    BadTarget,
    /// The authorization server issued a token that cannot be a header value.
    BadExchangedToken,
}

impl Unforwardable {
    fn response(self) -> Response {
        match self {
            Self::TooLarge => plain(StatusCode::PAYLOAD_TOO_LARGE, "request body too large\n"),
            Self::BadTarget => {
                plain(StatusCode::BAD_REQUEST, "the request target cannot be forwarded\n")
            }
            Self::BadExchangedToken => plain(
                StatusCode::BAD_GATEWAY,
                "the gateway could not obtain a token for the upstream\n",
            ),
        }
    }
}

/// Builds the request to the upstream.
#[allow(clippy::too_many_arguments)]
fn outbound<B>(
    gateway: &Gateway,
    route: &RouteConfig,
    passed: &Passed,
    exchanged: Option<&str>,
    mut parts: http::request::Parts,
    body: B,
    peer: SocketAddr,
    host: Option<&str>,
    upgrade: bool,
) -> Result<http::Request<ProxyBody>, Unforwardable>
where
    B: http_body::Body<Data = bytes::Bytes> + Send + Unpin + 'static,
    B::Error: Into<crate::upstream::BoxError>,
{
    let limits = gateway.config.limits;
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limits.max_body_bytes) {
        return Err(Unforwardable::TooLarge);
    }
    let h = &mut parts.headers;
    headers::remove_hop_by_hop(h, upgrade);
    if upgrade {
        h.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    }
    headers::strip_identity(h, &gateway.config.identity.strip_headers);
    // RFC 9700 §2.3 and MCP's rule against token passthrough: the client's credentials stay
    // at the gateway unless the route says otherwise.
    if !route.forward_token {
        h.remove(header::AUTHORIZATION);
        h.remove(crate::headers::DPOP);
    }
    // RFC 8693: the upstream gets a token of its own audience instead.
    if let Some(token) = exchanged {
        let value = HeaderValue::try_from(format!("Bearer {token}"))
            .map_err(|_| Unforwardable::BadExchangedToken)?;
        h.insert(header::AUTHORIZATION, value);
    }
    let proto = gateway.config.public_url.scheme();
    headers::set_forwarded(h, peer, host, proto);
    if let Some(identity) = passed.identity() {
        set_identity_headers(h, identity, gateway.signer.as_deref(), route.upstream.as_str());
    }
    // The upstream is addressed by its own name (as nginx's default `proxy_set_header Host
    // $proxy_host`); the client's host travels in `Forwarded` / `X-Forwarded-Host`.
    h.insert(header::HOST, route.upstream_base.host.clone());
    parts.uri = upstream_uri(&route.upstream_base, std::mem::take(&mut parts.uri))?;
    parts.version = http::Version::HTTP_11;
    // A request without a body (most GETs) is sent with an empty one, which needs neither a
    // limit, nor a timer, nor a box.
    let body = if body.is_end_stream() {
        ProxyBody::default()
    } else {
        let limit = usize::try_from(limits.max_body_bytes).unwrap_or(usize::MAX);
        IdleTimeout::new(Limited::new(body, limit), limits.idle_timeout).boxed_unsync()
    };
    Ok(http::Request::from_parts(parts, body))
}

/// The upstream's base URL with the request's path and query appended.
fn upstream_uri(base: &UpstreamBase, uri: Uri) -> Result<Uri, Unforwardable> {
    let tail = uri.into_parts().path_and_query.unwrap_or_else(|| PathAndQuery::from_static("/"));
    // Origin form only (RFC 9112 §3.2.1): `*` or an authority is no path to put under the
    // upstream's.
    if !tail.as_str().starts_with('/') {
        return Err(Unforwardable::BadTarget);
    }
    let path_and_query = if base.path.is_empty() {
        tail
    } else {
        PathAndQuery::try_from(format!("{}{}", base.path, tail.as_str()))
            .map_err(|_| Unforwardable::BadTarget)?
    };
    let mut parts = http::uri::Parts::default();
    parts.scheme = Some(base.scheme.clone());
    parts.authority = Some(base.authority.clone());
    parts.path_and_query = Some(path_and_query);
    Uri::from_parts(parts).map_err(|_| Unforwardable::BadTarget)
}

fn is_length_limit(e: &crate::upstream::UpstreamError) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    while let Some(err) = source {
        if err.is::<LengthLimitError>() {
            return true;
        }
        source = err.source();
    }
    false
}

/// Copies bytes both ways between the two upgraded connections (RFC 9110 §7.8) until either
/// side closes.
async fn splice_upgraded(client: hyper::upgrade::OnUpgrade, upstream: hyper::upgrade::OnUpgrade) {
    let (client, upstream) = match tokio::try_join!(client, upstream) {
        Ok(pair) => pair,
        Err(e) => {
            tracing::debug!(error = %e, "an upgrade did not complete");
            return;
        }
    };
    let mut client = hyper_util::rt::TokioIo::new(client);
    let mut upstream = hyper_util::rt::TokioIo::new(upstream);
    let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(upstream: &str, request: &str) -> Option<String> {
        let base = UpstreamBase::of("upstream", &upstream.parse().unwrap()).unwrap();
        let uri: Uri = request.parse().unwrap();
        upstream_uri(&base, uri).ok().map(|u| u.to_string())
    }

    #[test]
    fn request_path_and_query_are_put_under_the_upstreams_path() {
        assert_eq!(
            target("http://up:8080", "/api/x?a=1").as_deref(),
            Some("http://up:8080/api/x?a=1")
        );
        assert_eq!(target("http://up/", "/").as_deref(), Some("http://up/"));
        assert_eq!(target("https://up/v1/", "/x").as_deref(), Some("https://up/v1/x"));
        assert_eq!(
            target("http://[::1]:9/v1", "http://client.example/x?q").as_deref(),
            Some("http://[::1]:9/v1/x?q")
        );
        // RFC 9112 §3.2.4: the asterisk form is no path.
        assert_eq!(target("http://up", "*"), None);
    }

    #[test]
    fn rfc9110_7_2_the_upstream_host_leaves_out_the_schemes_default_port() {
        let host = |url: &str| UpstreamBase::of("upstream", &url.parse().unwrap()).unwrap().host;
        assert_eq!(host("http://up:80/v1"), "up");
        assert_eq!(host("https://up:443"), "up");
        assert_eq!(host("http://up:8080"), "up:8080");
        assert_eq!(host("https://[::1]:8443/"), "[::1]:8443");
    }
}
