//! The per-client refresh-token grace window (OAuth 2.1 §4.3.1 rotation, issue 17 finding 18):
//! two requests of one app that refreshed at once both succeed; later, reuse revokes.

use axum::http::StatusCode;
use tessera_core::client::ClientRegistration;

use crate::common::flow::{page_text, refresh, tokens_for, web_client};
use crate::common::*;

#[tokio::test]
async fn oauth21_4_3_1_within_its_grace_window_a_client_may_refresh_one_token_twice() {
    let app = spawn_app().await;
    crate::common::flow::create_user(&app).await;
    let registration = ClientRegistration { refresh_token_grace_seconds: 5, ..web_client("web") };
    let web = app.register(registration).await.unwrap();
    let tokens = tokens_for(&app, ("web", &web)).await;
    let old = tokens["refresh_token"].as_str().unwrap();

    let (first, second) =
        tokio::join!(refresh(&app, ("web", &web), old, ""), refresh(&app, ("web", &web), old, ""));
    for res in [&first, &second] {
        assert_eq!(res.status, StatusCode::OK, "{}", page_text(res));
    }
    let newest = second.json()["refresh_token"].as_str().unwrap().to_owned();
    assert_eq!(app.userinfo(first.json()["access_token"].as_str().unwrap()).await.status, 200);

    app.clock.advance(6);
    let res = refresh(&app, ("web", &web), old, "").await;
    assert_eq!(res.json()["error"], "invalid_grant", "after the window it is reuse");
    let res = refresh(&app, ("web", &web), &newest, "").await;
    assert_eq!(res.json()["error"], "invalid_grant", "and the whole grant is revoked");
}
