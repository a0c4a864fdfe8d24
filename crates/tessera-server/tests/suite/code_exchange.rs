//! Who may spend an authorization code (RFC 6749 §4.1.3, §10.5; RFC 7636 §4.6): the checks of
//! the client, redirect URI and PKCE verifier run inside the code's conditional write.

use axum::http::StatusCode;

use crate::common::flow::{
    REDIRECT, code_for, create_user, exchange, page_text, refresh, web_client,
};
use crate::common::*;

fn assert_invalid_grant(res: &Response) {
    assert_eq!(res.status, StatusCode::BAD_REQUEST, "{}", page_text(res));
    assert_eq!(res.json()["error"], "invalid_grant");
}

/// RFC 6749 §4.1.3 and §10.5 (issue 17 finding 8): a code presented by another client, or
/// with a wrong PKCE verifier (RFC 7636 §4.6), is `invalid_grant` and spends nothing, so the
/// client it was issued to can still redeem it; another client presenting it after that is
/// not a replay and revokes nothing; a replay by its own client revokes the grant.
#[tokio::test]
async fn rfc6749_4_1_3_a_code_presented_by_another_client_burns_and_revokes_nothing() {
    let app = spawn_app().await;
    create_user(&app).await;
    let web = app.register(web_client("web")).await.unwrap();
    let other = app.register(web_client("other")).await.unwrap();
    let code = code_for(&app, "web", "").await;

    let res = exchange(&app, ("other", &other), &code, "").await;
    assert_invalid_grant(&res);
    assert!(res.json()["error_description"].as_str().unwrap().contains("another client"));
    let wrong_verifier = format!(
        "grant_type=authorization_code&code={}&redirect_uri={}&code_verifier={}",
        urlencode(&code),
        urlencode(REDIRECT),
        "x".repeat(43)
    );
    assert_invalid_grant(&app.token(Some(("web", &web)), &wrong_verifier).await);

    let res = exchange(&app, ("web", &web), &code, "").await;
    assert_eq!(res.status, StatusCode::OK, "the code was not spent: {}", page_text(&res));
    let tokens = res.json();
    let access = tokens["access_token"].as_str().unwrap();
    assert_invalid_grant(&exchange(&app, ("other", &other), &code, "").await);
    assert_eq!(app.userinfo(access).await.status, StatusCode::OK, "nothing was revoked");
    let res = refresh(&app, ("web", &web), tokens["refresh_token"].as_str().unwrap(), "").await;
    assert_eq!(res.status, StatusCode::OK, "{}", page_text(&res));

    // RFC 6749 §4.1.2: the replay by the code's own client revokes what was issued from it.
    assert_invalid_grant(&exchange(&app, ("web", &web), &code, "").await);
    assert_eq!(app.userinfo(access).await.status, StatusCode::UNAUTHORIZED);
}
