//! RFC 9728 protected resource metadata, one document per protected audience, at the
//! well-known path its validator derives from the audience (RFC 9728 §3.1: the well-known
//! segment inserted between host and path). The documents are `tessera-resource`'s.

use axum::Json;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::app::Gateway;

/// `GET /.well-known/oauth-protected-resource[/path]`.
pub async fn serve(State(gateway): State<Gateway>, request: Request) -> Response {
    let Some(gate) = gateway.gate.get() else {
        return (StatusCode::SERVICE_UNAVAILABLE, "issuer keys not loaded yet\n").into_response();
    };
    let path = request.uri().path();
    let found = gate
        .validators()
        .find(|v| url::Url::parse(v.resource_metadata_url()).is_ok_and(|url| url.path() == path));
    match found {
        Some(validator) => Json(validator.metadata_document()).into_response(),
        None => (StatusCode::NOT_FOUND, "no protected resource here\n").into_response(),
    }
}
