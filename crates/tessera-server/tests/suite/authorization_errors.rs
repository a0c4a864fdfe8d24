//! Errors redirected from the authorization endpoint to the client (issue 17 finding 17):
//! `error_description` is fixed text, never the request's own (RFC 6749 §4.1.2.1).

use axum::http::StatusCode;

use crate::common::flow::*;
use crate::common::*;

/// Text an attacker puts into a link to make the client's error page show it.
const PLANTED: &str = "Your account is locked, call 555 0100";

#[tokio::test]
async fn rfc6749_4_1_2_1_error_description_on_the_redirect_never_echoes_request_text() {
    let app = spawn_app().await;
    app.register(web_client("web")).await;
    let planted = urlencode(PLANTED);
    let base = format!(
        "client_id=web&redirect_uri={}&state=xyz&code_challenge={CHALLENGE}&code_challenge_method=S256",
        urlencode(REDIRECT)
    );
    for (expected, attack) in [
        ("unsupported_response_type", format!("response_type={planted}&scope=openid")),
        ("invalid_request", format!("response_type=code&scope=openid&prompt={planted}")),
        ("invalid_request", format!("response_type=code&scope=openid&response_mode={planted}")),
        ("invalid_scope", format!("response_type=code&scope={planted}")),
        ("invalid_scope", "response_type=code&scope=orders%3Aread+admin%3A555".to_owned()),
        (
            "invalid_target",
            format!(
                "response_type=code&scope=openid&resource=https%3A%2F%2Fapi.example%2F{planted}"
            ),
        ),
    ] {
        let res = app.get(&format!("/authorize?{base}&{attack}")).await;
        assert_eq!(res.status, StatusCode::FOUND, "{attack}: {}", page_text(&res));
        let params = redirect_params(&res);
        assert_eq!(params["error"], expected, "{attack}");
        assert_eq!(params["state"], "xyz");
        let description = &params["error_description"];
        assert!(!description.contains("555"), "{attack}: echoed {description:?}");
    }
    // Our own parameter names may be named.
    let res = app.get(&format!("/authorize?{base}&scope=openid")).await;
    assert!(redirect_params(&res)["error_description"].contains("`response_type`"));
}
