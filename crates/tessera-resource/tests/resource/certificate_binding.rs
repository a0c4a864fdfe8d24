//! RFC 8705 §3 at the resource: with `CertificateBinding` as the validator's sender
//! constraint, a token with `cnf.x5t#S256` is accepted only when the request carries the
//! `ClientCertificate` (as a TLS listener inserts it) whose SHA-256 it names. The
//! certificates are real ones made by the `openssl` command.

use std::process::Command;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::json;
use tessera_resource::{CertificateBinding, ClientCertificate, TokenValidator};
use tower::ServiceExt;

use crate::support::*;

/// The DER of a fresh self-signed certificate, or `None` without the openssl command.
fn certificate(test: &str, name: &str) -> Option<Vec<u8>> {
    if Command::new("openssl").arg("version").output().is_err() {
        assert!(std::env::var("CI").as_deref() != Ok("true"), "CI=true but {test} needs openssl");
        eprintln!("skipping {test}: the openssl command is not installed");
        return None;
    }
    let dir = std::env::temp_dir().join(format!("tessera-rs-cert-{}", rand_suffix()));
    std::fs::create_dir_all(&dir).unwrap();
    let out = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"])
        .args(["-keyout", "k.pem", "-outform", "DER", "-out", "c.der", "-days", "1"])
        .args(["-subj", &format!("/CN={name}")])
        .current_dir(&dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let der = std::fs::read(dir.join("c.der")).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    Some(der)
}

async fn status(app: &axum::Router, token: &str, presented: Option<&[u8]>) -> StatusCode {
    let mut request = Request::get("/orders")
        .header("authorization", format!("Bearer {token}"))
        .body(Body::empty())
        .unwrap();
    if let Some(der) = presented {
        request.extensions_mut().insert(ClientCertificate(der.to_vec()));
    }
    app.clone().oneshot(request).await.unwrap().status()
}

// RFC 8705 §3: the bound token passes with its certificate only.
#[tokio::test]
async fn rfc8705_3_token_bound_to_other_certificate_is_refused() {
    let test = "rfc8705_3_token_bound_to_other_certificate_is_refused";
    let (Some(mine), Some(theirs)) = (certificate(test, "mine"), certificate(test, "theirs"))
    else {
        return;
    };
    let issuer = TestIssuer::start().await;
    let config = issuer.config().sender_constraint(Arc::new(CertificateBinding));
    let app = app(&TokenValidator::discover(config).await.unwrap());
    let mut claims = issuer.claims();
    claims["cnf"] = json!({ "x5t#S256": ClientCertificate(mine.clone()).thumbprint() });
    let token = issuer.token(&claims);

    assert_eq!(status(&app, &token, Some(&mine)).await, StatusCode::OK);
    assert_eq!(status(&app, &token, Some(&theirs)).await, StatusCode::UNAUTHORIZED);
    assert_eq!(status(&app, &token, None).await, StatusCode::UNAUTHORIZED);
    // An unbound token still passes, certificate or not.
    assert_eq!(status(&app, &issuer.token(&issuer.claims()), None).await, StatusCode::OK);
    // A DPoP-bound token is not this check's to accept.
    let mut dpop = issuer.claims();
    dpop["cnf"] = json!({ "jkt": "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I" });
    assert_eq!(status(&app, &issuer.token(&dpop), Some(&mine)).await, StatusCode::UNAUTHORIZED);
}
