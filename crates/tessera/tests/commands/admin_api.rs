//! The admin API as the README shows it: an admin client made with `tessera client create
//! --admin`, its OpenAPI document validated by a third-party validator and used by a
//! generated client against a real `tessera serve`; and `tessera resource …`.

use crate::node_tools::{js_tools_available, run_node};
use crate::support::{DevServer, Workdir, http, text};

#[test]
fn openapi_3_1_document_validates_and_a_generated_client_lists_users() {
    const TEST: &str = "openapi_3_1_document_validates_and_a_generated_client_lists_users";
    let modules = ["@seriousme/openapi-schema-validator", "openapi-client-axios", "axios"];
    if !js_tools_available(TEST, &modules, false) {
        return;
    }
    let w = Workdir::new("admin-openapi");
    w.ok_json(
        &["user", "create", "--username", "alice", "--password-stdin", "--json"],
        Some("correct horse battery\n"),
    );
    let created = w.ok_json(
        &["client", "create", "--name", "Ops console", "--client-id", "ops", "--admin", "--json"],
        None,
    );
    let secret = created["client_secret"].as_str().unwrap().to_owned();
    let server = DevServer::start(&w, &[]);
    let out = run_node("admin_openapi.mjs", &[server.issuer(), "ops".into(), secret]);
    let report: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(report["openapi"], "3.1", "{report}");
    assert_eq!(report["valid"], true, "the validator's errors: {}", report["errors"]);
    let users = report["users"].as_array().expect("the generated client's call answered");
    assert!(users.iter().any(|u| u["username"] == "alice"), "{report}");
}

#[test]
fn r6_2_admin_scopes_are_refused_to_a_client_created_without_admin() {
    let w = Workdir::new("admin-scope-cli");
    let out = w.tessera(&["client", "create", "--name", "Job", "--scope", "admin:users"], None);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("first-party admin"), "{}", text(&out.stderr));
    let created = w.ok_json(
        &[
            "client",
            "create",
            "--name",
            "Job",
            "--client-id",
            "job",
            "--scope",
            "orders:read",
            "--json",
        ],
        None,
    );
    let secret = created["client_secret"].as_str().unwrap().to_owned();
    let server = DevServer::start(&w, &[]);
    let basic =
        base64::Engine::encode(&base64::engine::general_purpose::STANDARD, format!("job:{secret}"));
    let (status, body) = crate::support::post_form(
        server.port,
        "/token",
        Some(&basic),
        "grant_type=client_credentials&scope=admin%3Ausers",
    );
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_scope")), "{body}");
    // Without a token, the API answers 401.
    let (status, _) = http(
        server.port,
        "GET /admin/v1/users HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(status, 401);
}

#[test]
fn issue15_resource_create_list_and_delete_from_the_cli() {
    let w = Workdir::new("resource-cli");
    let created = w.ok_json(
        &[
            "resource",
            "create",
            "--resource",
            "HTTPS://MCP.example/mcp/",
            "--scope",
            "mcp:tools",
            "--scope",
            "mcp:read",
            "--dynamic-clients",
            "--json",
        ],
        None,
    );
    assert_eq!(created["resource"], "https://mcp.example/mcp", "stored in canonical form");
    assert_eq!(created["scope"], "mcp:read mcp:tools");
    assert_eq!(created["dynamic_clients"], true);
    let out = w.tessera(
        &["resource", "create", "--resource", "https://mcp.example/mcp", "--scope", "x:y"],
        None,
    );
    assert!(!out.status.success() && text(&out.stderr).contains("already exists"));
    let out = w.tessera(
        &["resource", "create", "--resource", "https://x.example#f", "--scope", "x:y"],
        None,
    );
    assert!(!out.status.success() && text(&out.stderr).contains("fragment"));
    let listed = w.ok_json(&["resource", "list", "--json"], None);
    assert_eq!(listed.as_array().map(Vec::len), Some(1));
    let out = w.tessera(&["resource", "delete", "https://mcp.example/mcp/"], None);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(w.ok_json(&["resource", "list", "--json"], None), serde_json::json!([]));
}
