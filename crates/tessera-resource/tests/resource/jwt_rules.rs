//! RFC 9068 §4 and RFC 8725: what a JWT access token must be to be accepted.

use axum::http::StatusCode;
use serde_json::json;
use tessera_resource::{IssuerConfig, TokenValidator};

use crate::support::*;

async fn refused(app: &axum::Router, token: &str) {
    let answer = get_with(app, token).await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{}", answer.body);
    assert!(answer.challenge.unwrap().contains("error=\"invalid_token\""));
}

#[tokio::test]
async fn rfc9068_4_a_valid_token_is_accepted_with_its_principal() {
    let issuer = TestIssuer::start().await;
    let app = app(&issuer.validator().await);
    let answer = get_with(&app, &issuer.token(&issuer.claims())).await;
    assert_eq!((answer.status, answer.body.as_str()), (StatusCode::OK, "orders of alice"));
}

#[tokio::test]
async fn rfc8725_3_1_a_token_with_alg_none_is_refused() {
    let issuer = TestIssuer::start().await;
    let app = app(&issuer.validator().await);
    let header = b64(json!({"alg": "none", "typ": "at+jwt", "kid": "k1"}).to_string().as_bytes());
    let claims = b64(issuer.claims().to_string().as_bytes());
    refused(&app, &format!("{header}.{claims}.")).await;
    // Even with the signature of a real token appended.
    let real = issuer.token(&issuer.claims());
    let signature = real.rsplit('.').next().unwrap();
    refused(&app, &format!("{header}.{claims}.{signature}")).await;
}

#[tokio::test]
async fn rfc8725_3_1_hs256_signed_with_the_public_key_is_refused() {
    let issuer = TestIssuer::start().await;
    let app = app(&issuer.validator().await);
    // The classic confusion: HMAC keyed with the issuer's public key, which anyone can read.
    let header = b64(json!({"alg": "HS256", "typ": "at+jwt", "kid": "k1"}).to_string().as_bytes());
    let input = format!("{header}.{}", b64(issuer.claims().to_string().as_bytes()));
    for secret in [issuer.key.jwk().to_string(), issuer.key.jwk()["x"].as_str().unwrap().to_owned()]
    {
        let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, secret.as_bytes());
        let tag = aws_lc_rs::hmac::sign(&key, input.as_bytes());
        refused(&app, &format!("{input}.{}", b64(tag.as_ref()))).await;
    }
}

#[tokio::test]
async fn rfc9068_4_a_token_without_typ_at_jwt_is_refused_an_id_token_included() {
    let issuer = TestIssuer::start().await;
    let app = app(&issuer.validator().await);
    for typ in ["JWT", "id_token+jwt", ""] {
        refused(&app, &issuer.key.sign(typ, &issuer.claims())).await;
    }
    let header = json!({"alg": "ES256", "kid": "k1"});
    refused(&app, &issuer.key.sign_with_header(&header, &issuer.claims())).await;
    // `application/at+jwt` is the same media type (RFC 9068 §2.1).
    let ok = get_with(&app, &issuer.key.sign("application/at+jwt", &issuer.claims())).await;
    assert_eq!(ok.status, StatusCode::OK);
}

#[tokio::test]
async fn rfc9068_4_a_token_of_another_issuer_is_refused_iss_compared_exactly() {
    let issuer = TestIssuer::start().await;
    let app = app(&issuer.validator().await);
    for iss in
        [format!("{}/", issuer.issuer), "https://evil.example".into(), issuer.issuer.to_uppercase()]
    {
        let mut claims = issuer.claims();
        claims["iss"] = iss.into();
        refused(&app, &issuer.token(&claims)).await;
    }
}

#[tokio::test]
async fn rfc9068_4_a_token_whose_aud_misses_this_resource_is_refused() {
    let issuer = TestIssuer::start().await;
    let app = app(&issuer.validator().await);
    for aud in [json!(["https://other.example"]), json!("https://orders.example"), json!([])] {
        let mut claims = issuer.claims();
        claims["aud"] = aud;
        refused(&app, &issuer.token(&claims)).await;
    }
    let mut missing = issuer.claims();
    missing.as_object_mut().unwrap().remove("aud");
    refused(&app, &issuer.token(&missing)).await;
    // A single-string aud naming this resource, or a list containing it, is accepted.
    for aud in [json!(RESOURCE), json!(["https://other.example", RESOURCE])] {
        let mut claims = issuer.claims();
        claims["aud"] = aud;
        assert_eq!(get_with(&app, &issuer.token(&claims)).await.status, StatusCode::OK);
    }
}

#[tokio::test]
async fn rfc7519_4_1_4_an_expired_token_is_refused_beyond_the_clock_skew() {
    let issuer = TestIssuer::start().await;
    let app = app(&issuer.validator().await);
    let mut claims = issuer.claims();
    claims["exp"] = (now() - 30).into();
    refused(&app, &issuer.token(&claims)).await;
    // Within the default 5 s skew, a token just past its exp is still accepted.
    claims["exp"] = (now() - 2).into();
    assert_eq!(get_with(&app, &issuer.token(&claims)).await.status, StatusCode::OK);
}

/// The validator remembers an accepted token, but never past its `exp` (plus the skew).
#[tokio::test]
async fn rfc7519_4_1_4_a_remembered_token_is_refused_once_it_expires() {
    let issuer = TestIssuer::start().await;
    let config = issuer.config().clock_skew(std::time::Duration::ZERO);
    let app = app(&TokenValidator::discover(config).await.unwrap());
    let mut claims = issuer.claims();
    claims["exp"] = (now() + 2).into();
    let token = issuer.token(&claims);
    for _ in 0..2 {
        assert_eq!(get_with(&app, &token).await.status, StatusCode::OK);
    }
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    refused(&app, &token).await;
}

// RFC 7515 §5.2: the memo answers only for the exact string that was verified; the same
// token with its signature or its claims altered is verified (and refused) in full.
#[tokio::test]
async fn rfc7515_5_2_a_remembered_token_altered_in_any_part_is_refused() {
    let issuer = TestIssuer::start().await;
    let app = app(&issuer.validator().await);
    let mut claims = issuer.claims();
    let token = issuer.token(&claims);
    assert_eq!(get_with(&app, &token).await.status, StatusCode::OK);
    let (signed, signature) = token.rsplit_once('.').unwrap();
    let mut forged = signature.as_bytes().to_vec();
    forged[10] = if forged[10] == b'A' { b'B' } else { b'A' };
    refused(&app, &format!("{signed}.{}", String::from_utf8(forged).unwrap())).await;
    // The remembered token's signature on other claims (a wider scope).
    claims["scope"] = "orders:read orders:write".into();
    let other = issuer.token(&claims);
    let header = token.split('.').next().unwrap();
    let payload = other.split('.').nth(1).unwrap();
    refused(&app, &format!("{header}.{payload}.{signature}")).await;
    assert_eq!(get_with(&app, &token).await.status, StatusCode::OK);
}

#[tokio::test]
async fn rfc7519_4_1_5_a_token_not_yet_valid_is_refused_beyond_the_clock_skew() {
    let issuer = TestIssuer::start().await;
    let app = app(&issuer.validator().await);
    let mut claims = issuer.claims();
    claims["nbf"] = (now() + 60).into();
    refused(&app, &issuer.token(&claims)).await;
    claims["nbf"] = (now() + 2).into();
    assert_eq!(get_with(&app, &issuer.token(&claims)).await.status, StatusCode::OK);
    // RFC 8725 §3.10 / RFC 7519 §4.1.6: issued in the future is not genuine either.
    let mut claims = issuer.claims();
    claims["iat"] = (now() + 60).into();
    refused(&app, &issuer.token(&claims)).await;
}

#[tokio::test]
async fn clock_skew_is_at_most_sixty_seconds() {
    let issuer = TestIssuer::start().await;
    let config = issuer.config().clock_skew(std::time::Duration::from_secs(61));
    assert!(TokenValidator::discover(config).await.is_err());
    let config = issuer.config().clock_skew(std::time::Duration::from_secs(60));
    let app = app(&TokenValidator::discover(config).await.unwrap());
    let mut claims = issuer.claims();
    claims["exp"] = (now() - 30).into();
    assert_eq!(get_with(&app, &issuer.token(&claims)).await.status, StatusCode::OK);
}

#[tokio::test]
async fn rfc7800_3_a_bound_token_presented_without_proof_is_refused() {
    let issuer = TestIssuer::start().await;
    let app = app(&issuer.validator().await);
    for cnf in [
        json!({"jkt": "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"}),
        json!({"x5t#S256": "bwcK0esc3ACC3DB2Y5_lESsXE8o9ltc05O89jdN-dg2"}),
    ] {
        let mut claims = issuer.claims();
        claims["cnf"] = cnf;
        let token = issuer.token(&claims);
        refused(&app, &token).await;
        // RFC 9449 §7.1: the DPoP scheme without a DPoP proof is no better.
        let answer =
            crate::support::call(&app, "GET", "/orders", Some(&format!("DPoP {token}"))).await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    }
}

#[tokio::test]
async fn several_issuers_are_trusted_each_with_its_own_audience() {
    let first = TestIssuer::start().await;
    let second = TestIssuer::start().await;
    let config = first.config().issuer(IssuerConfig::new(&second.issuer, "urn:orders"));
    let app = app(&TokenValidator::discover(config).await.unwrap());
    assert_eq!(get_with(&app, &first.token(&first.claims())).await.status, StatusCode::OK);
    let mut claims = second.claims();
    claims["aud"] = json!(["urn:orders"]);
    assert_eq!(get_with(&app, &second.token(&claims)).await.status, StatusCode::OK);
    // The second issuer's tokens need its audience, not the first's.
    refused(&app, &second.token(&second.claims())).await;
    // One issuer's key does not sign for the other.
    let mut forged = first.claims();
    forged["iss"] = second.issuer.clone().into();
    refused(&app, &first.token(&forged)).await;
}

/// The hook a DPoP or mTLS check plugs into: given the request, it decides; the layer, the
/// validator and the `Principal` keep their shape. (This stand-in accepts a `DPoP` header
/// equal to `cnf.jkt`; the real RFC 9449 proof check arrives with `tessera-jose`'s `dpop`.)
struct HeaderEqualsJkt;

impl tessera_resource::SenderConstraint for HeaderEqualsJkt {
    fn verify<'a>(
        &'a self,
        cnf: &'a tessera_resource::Confirmation,
        _token: &'a str,
        scheme: tessera_resource::Scheme,
        request: &'a axum::http::request::Parts,
    ) -> std::pin::Pin<Box<dyn Future<Output = Result<(), tessera_resource::ProofError>> + Send + 'a>>
    {
        let proof = request.headers.get("dpop").and_then(|v| v.to_str().ok());
        let verdict = match (scheme, proof, cnf.jkt.as_deref()) {
            (tessera_resource::Scheme::DPoP, Some(p), Some(jkt)) if p == jkt => Ok(()),
            (_, None, _) => Err(tessera_resource::ProofError::Missing),
            _ => Err(tessera_resource::ProofError::Invalid),
        };
        Box::pin(std::future::ready(verdict))
    }
}

#[tokio::test]
async fn rfc9449_7_1_a_sender_constraint_check_plugs_into_the_validator() {
    let issuer = TestIssuer::start().await;
    let config = issuer.config().sender_constraint(std::sync::Arc::new(HeaderEqualsJkt));
    let validator = TokenValidator::discover(config).await.unwrap();
    let mut claims = issuer.claims();
    claims["cnf"] = json!({"jkt": "thumbprint"});
    let token = issuer.token(&claims);
    let request = |scheme: &str, proof: Option<&str>| {
        let mut builder = axum::http::Request::builder()
            .uri("/orders")
            .header("authorization", format!("{scheme} {token}"));
        if let Some(proof) = proof {
            builder = builder.header("dpop", proof);
        }
        builder.body(()).unwrap().into_parts().0
    };
    let accepted = validator.authenticate(&request("DPoP", Some("thumbprint"))).await.unwrap();
    assert_eq!(accepted.confirmation().unwrap().jkt.as_deref(), Some("thumbprint"));
    for (scheme, proof) in [("DPoP", None), ("DPoP", Some("other")), ("Bearer", Some("thumbprint"))]
    {
        let refused = validator.authenticate(&request(scheme, proof)).await.unwrap_err();
        assert!(matches!(refused.kind(), tessera_resource::RejectionKind::InvalidToken(_)));
    }
}
