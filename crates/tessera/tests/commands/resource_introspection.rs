//! `tessera-resource` with opaque access tokens (RFC 7662) against a real `tessera serve`.

use std::sync::Arc;

use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair as _};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use tessera_resource::{
    IntrospectionCredentials, IssuerConfig, RejectionKind, TokenValidator, ValidatorConfig,
};

use crate::support::{DevServer, Workdir};

const API: &str = "https://orders.example";

fn request(token: &str) -> axum::http::request::Parts {
    let request = axum::http::Request::builder()
        .uri("/orders")
        .header("authorization", format!("Bearer {token}"))
        .body(())
        .unwrap();
    request.into_parts().0
}

/// An ES256 key pair: its PKCS#8 PEM and its public JWK set.
fn es256_key(kid: &str) -> (String, String) {
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(
        &ECDSA_P256_SHA256_FIXED_SIGNING,
        &aws_lc_rs::rand::SystemRandom::new(),
    )
    .unwrap();
    let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref()).unwrap();
    let point = pair.public_key().as_ref();
    let jwks = serde_json::json!({"keys": [{"kty": "EC", "crv": "P-256", "kid": kid, "alg": "ES256",
        "x": URL_SAFE_NO_PAD.encode(&point[1..33]), "y": URL_SAFE_NO_PAD.encode(&point[33..65])}]});
    let body = STANDARD.encode(pkcs8.as_ref());
    let lines: Vec<&str> =
        body.as_bytes().chunks(64).map(|c| std::str::from_utf8(c).unwrap()).collect();
    (
        format!("-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n", lines.join("\n")),
        jwks.to_string(),
    )
}

async fn opaque_token(server: &DevServer, secret: &str) -> String {
    let answer: serde_json::Value = reqwest::Client::new()
        .post(format!("{}/token", server.issuer()))
        .basic_auth("shop", Some(secret))
        .form(&[("grant_type", "client_credentials"), ("scope", "orders:read")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = answer["access_token"].as_str().unwrap().to_owned();
    assert!(!token.contains('.'), "an opaque token");
    token
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rfc7662_opaque_tokens_are_introspected_once_and_cached_with_either_client_authentication()
{
    let w = Workdir::new("resource-introspection");
    let server = DevServer::start(&w, &[]);
    let shop = w.ok_json(
        &[
            "client",
            "create",
            "--name",
            "shop",
            "--client-id",
            "shop",
            "--scope",
            "orders:read",
            "--audience",
            API,
            "--opaque-access-tokens",
            "--json",
        ],
        None,
    );
    let secret = shop["client_secret"].as_str().unwrap().to_owned();
    let rs = w.ok_json(
        &[
            "client",
            "create",
            "--name",
            "orders api",
            "--client-id",
            "orders-api",
            "--introspection",
            "--introspection-audience",
            API,
            "--json",
        ],
        None,
    );
    let (pem, jwks) = es256_key("rs-key");
    std::fs::write(w.path().join("rs.json"), jwks).unwrap();
    w.ok_json(
        &[
            "client",
            "create",
            "--name",
            "orders api (key)",
            "--client-id",
            "orders-api-key",
            "--auth-method",
            "private_key_jwt",
            "--jwks-file",
            "rs.json",
            "--introspection",
            "--introspection-audience",
            API,
            "--json",
        ],
        None,
    );
    let by_secret = IntrospectionCredentials::client_secret(
        "orders-api",
        rs["client_secret"].as_str().unwrap(),
    );
    let by_key = IntrospectionCredentials::private_key_jwt(
        "orders-api-key",
        "rs-key",
        tessera_jose::Algorithm::ES256,
        pem.as_bytes(),
    )
    .unwrap();
    for credentials in [by_secret, by_key] {
        let config = ValidatorConfig::new(API)
            .issuer(IssuerConfig::new(server.issuer(), API).introspection(credentials))
            .allow_private_networks(true);
        let validator = Arc::new(TokenValidator::discover(config).await.unwrap());
        let issuer = server.issuer();

        // Ten concurrent requests with a new token: one introspection (single flight), and
        // then the cache answers.
        let token = opaque_token(&server, &secret).await;
        let calls: Vec<_> = (0..10)
            .map(|_| {
                let (validator, token) = (validator.clone(), token.clone());
                tokio::spawn(async move { validator.authenticate(&request(&token)).await })
            })
            .collect();
        for call in calls {
            let principal = call.await.unwrap().unwrap();
            assert_eq!(
                (principal.client_id(), principal.scopes().as_str()),
                ("shop", "orders:read")
            );
        }
        assert_eq!(validator.introspections(&issuer), Some(1));
        assert!(validator.authenticate(&request(&token)).await.is_ok());
        assert_eq!(validator.introspections(&issuer), Some(1));

        // An unknown token is inactive, and that answer is cached briefly too.
        for _ in 0..3 {
            let refused =
                validator.authenticate(&request("made-up-opaque-token")).await.unwrap_err();
            assert!(matches!(refused.kind(), RejectionKind::InvalidToken(_)));
        }
        assert_eq!(validator.introspections(&issuer), Some(2));
    }
}
