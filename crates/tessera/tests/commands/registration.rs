//! `tessera registration-token` and `/register` as the README shows them, and the client
//! metadata rules the CLI shares with `/register`.

use crate::support::{DevServer, Workdir, http, text};

/// POSTs a registration document with an optional bearer token; the status and JSON body.
fn register(port: u16, token: Option<&str>, document: &str) -> (u16, serde_json::Value) {
    let authorization = token.map(|t| format!("Authorization: Bearer {t}\r\n")).unwrap_or_default();
    let (status, body) = http(
        port,
        &format!(
            "POST /register HTTP/1.1\r\nHost: 127.0.0.1\r\n{authorization}Content-Type: \
             application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{document}",
            document.len()
        ),
    );
    (status, serde_json::from_str(&body).unwrap_or(serde_json::Value::Null))
}

#[test]
fn rfc7591_3_single_use_initial_access_token_from_the_cli_registers_one_client() {
    let w = Workdir::new("registration");
    let made = w.ok_json(&["registration-token", "create", "--single-use", "--json"], None);
    let token = made["initial_access_token"].as_str().unwrap().to_owned();
    assert!(token.len() >= 43, "256 bits");
    let server = DevServer::start(&w, &[("TESSERA_REGISTRATION_POLICY", "initial_access_token")]);
    let document = r#"{"client_name":"Agent","application_type":"native","token_endpoint_auth_method":"none","redirect_uris":["http://127.0.0.1:8976/callback"]}"#;
    let (status, _) = register(server.port, None, document);
    assert_eq!(status, 401, "a token is required");
    let (status, body) = register(server.port, Some(&token), document);
    assert_eq!(status, 201, "{body}");
    assert!(body["client_id"].is_string() && body["registration_access_token"].is_string());
    let (status, body) = register(server.port, Some(&token), document);
    assert_eq!((status, body["error"].as_str()), (401, Some("invalid_token")), "spent");
}

#[test]
fn dev_mode_keeps_registration_off() {
    let w = Workdir::new("registration-off");
    let server = DevServer::start(&w, &[]);
    let (status, _) = register(server.port, None, r#"{"client_name":"Agent"}"#);
    assert_eq!(status, 404);
}

#[test]
fn oidc_registration_2_client_create_applies_the_registration_rules() {
    let w = Workdir::new("registration-rules");
    // The same rule, and the same words, as a registration at /register.
    let out = w.tessera(
        &[
            "client",
            "create",
            "--name",
            "Web",
            "--application-type",
            "web",
            "--redirect-uri",
            "http://127.0.0.1:8400/cb",
        ],
        None,
    );
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("web application"), "{}", text(&out.stderr));
    let out = w.tessera(
        &["client", "create", "--name", "Web", "--logo-uri", "http://app.example/logo.png"],
        None,
    );
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("logo_uri"), "{}", text(&out.stderr));
    let created = w.ok_json(
        &[
            "client",
            "create",
            "--name",
            "Agent",
            "--client-id",
            "agent",
            "--public",
            "--application-type",
            "native",
            "--redirect-uri",
            "http://127.0.0.1:8400/cb",
            "--client-uri",
            "https://agent.example",
            "--json",
        ],
        None,
    );
    assert!(created.get("client_secret").is_none());
    let shown = w.ok_json(&["client", "show", "agent", "--json"], None);
    assert_eq!(shown["application_type"], "native");
    assert_eq!(shown["client_uri"], "https://agent.example");
    assert_eq!(shown["dynamic"], false);
}
