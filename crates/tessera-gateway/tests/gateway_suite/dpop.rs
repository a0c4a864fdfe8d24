//! DPoP at the gateway (RFC 9449 §7): a DPoP-bound token from Tessera passes with a proof of
//! its key for the gateway's public URL; as a bearer token, or with another key's proof, it is
//! refused with a `DPoP` challenge and never reaches the upstream.

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair as _};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use tessera_jose::dpop::access_token_hash;

use crate::support::{World, now, random};

struct ProofKey(EcdsaKeyPair);

impl ProofKey {
    fn generate() -> Self {
        Self(EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap())
    }

    fn jwk(&self) -> Value {
        let point = self.0.public_key().as_ref();
        json!({"kty": "EC", "crv": "P-256", "x": URL_SAFE_NO_PAD.encode(&point[1..33]),
               "y": URL_SAFE_NO_PAD.encode(&point[33..65])})
    }

    /// A proof for `method` `url`, bound to `token` when given (`ath`).
    fn proof(&self, method: &str, url: &str, token: Option<&str>) -> String {
        let header = json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": self.jwk()});
        let mut claims = json!({"jti": random(), "htm": method, "htu": url, "iat": now()});
        if let Some(token) = token {
            claims["ath"] = access_token_hash(token).into();
        }
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let signature = self.0.sign(&SystemRandom::new(), input.as_bytes()).unwrap();
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature.as_ref()))
    }
}

/// A DPoP-bound token (RFC 9449 §5) for the `/api` audience with `orders:read`.
async fn bound_token(w: &World, key: &ProofKey) -> String {
    let token_url = format!("{}/token", w.issuer.url);
    let form = [
        ("grant_type", "client_credentials"),
        ("client_id", w.client_id.as_str()),
        ("client_secret", w.secret.as_str()),
        ("resource", w.audience.as_str()),
        ("scope", "orders:read"),
    ];
    let response = reqwest::Client::new()
        .post(&token_url)
        .header("dpop", key.proof("POST", &token_url, None))
        .form(&form)
        .send()
        .await
        .unwrap();
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["token_type"], "DPoP", "{body}");
    body["access_token"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn rfc9449_7_the_gateway_checks_the_proof_of_a_dpop_bound_token() {
    let w = World::start().await;
    let key = ProofKey::generate();
    let token = bound_token(&w, &key).await;
    let url = format!("{}/api/orders", w.gateway.url);
    let send = |authorization: String, proof: String| {
        let request = w.gateway.get("/api/orders").header("authorization", authorization);
        async move { request.header("dpop", proof).send().await.unwrap() }
    };
    let passed = send(format!("DPoP {token}"), key.proof("GET", &url, Some(&token))).await;
    assert_eq!(passed.status(), 200);
    assert_eq!(w.upstream.count(), 1);
    // §7.2: the same token as a bearer token; §7.1: a proof of another key.
    let thief = ProofKey::generate();
    for (what, authorization, proof) in [
        ("as bearer", format!("Bearer {token}"), key.proof("GET", &url, Some(&token))),
        ("other key", format!("DPoP {token}"), thief.proof("GET", &url, Some(&token))),
    ] {
        let refused = send(authorization, proof).await;
        assert_eq!(refused.status(), 401, "{what}");
        let challenge = refused.headers()["www-authenticate"].to_str().unwrap().to_owned();
        assert!(
            challenge.starts_with("DPoP ") && challenge.contains("invalid_token"),
            "{what}: {challenge}"
        );
    }
    // §4.3: a proof for another URL (the upstream's path, not the public one).
    let wrong = send(
        format!("DPoP {token}"),
        key.proof("GET", "http://elsewhere/api/orders", Some(&token)),
    )
    .await;
    assert_eq!(wrong.status(), 401);
    assert!(wrong.headers()["www-authenticate"].to_str().unwrap().contains("invalid_dpop_proof"));
    assert_eq!(w.upstream.count(), 1, "no refused request reached the upstream");
}
