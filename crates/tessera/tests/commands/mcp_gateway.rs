//! MCP end to end: the official MCP TypeScript SDK's client, through `tessera gateway`, to the
//! SDK's MCP server, with `tessera serve` as the authorization server — every piece a process.

use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::{DevServer, KillOnDrop, Workdir, free_port, http, text};

use crate::node_tools::{js_tools_available, run_node};

fn wait_ready(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        // Connect first: `http` expects a listening port.
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            let request = "GET /readyz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
            if http(port, request).0 == 200 {
                return;
            }
        }
        assert!(Instant::now() < deadline, "the gateway did not become ready");
        std::thread::sleep(Duration::from_millis(100));
    }
}

// MCP authorization (2025-06-18 and later) through the gateway: the SDK discovers Tessera from
// the gateway's 401 (RFC 9728 §5.1 resource_metadata), reads both metadata documents, runs
// authorization code + PKCE with `resource` = the MCP URL (RFC 8707), signs in and consents in
// Chromium, and its tool call reaches the MCP server with the verified identity and without
// the token (RFC 9700 §2.3).
#[test]
fn mcp_sdk_client_authorizes_through_the_gateway_and_calls_a_tool() {
    if !js_tools_available(
        "mcp_sdk_client_authorizes_through_the_gateway_and_calls_a_tool",
        &["playwright-core", "@modelcontextprotocol/sdk"],
        true,
    ) {
        return;
    }
    let w = Workdir::new("mcp-gateway");
    let server = DevServer::start(&w, &[]);
    let issuer = server.issuer();
    let (gateway_port, mcp_port) = (free_port(), free_port());
    let gateway = format!("http://127.0.0.1:{gateway_port}");
    let mcp_url = format!("{gateway}/mcp");
    let redirect_uri = format!("http://127.0.0.1:{}/callback", free_port());

    let user = w.ok_json(
        &["user", "create", "--username", "alice", "--password-stdin", "--json"],
        Some("correct horse battery\n"),
    );
    let client = w.ok_json(
        &[
            "client",
            "create",
            "--name",
            "MCP e2e",
            "--client-id",
            "mcp-e2e",
            "--public",
            "--redirect-uri",
            &redirect_uri,
            "--grant-type",
            "authorization_code",
            "--grant-type",
            "refresh_token",
            "--scope",
            "mcp:tools",
            "--audience",
            &mcp_url,
            "--json",
        ],
        None,
    );
    assert_eq!(client["client_id"], "mcp-e2e");

    let config = w.path().join("gateway.toml");
    std::fs::write(
        &config,
        format!(
            r#"
            listen = "127.0.0.1:{gateway_port}"
            public_url = "{gateway}"
            issuers = ["{issuer}"]
            allow_private_networks = true
            [[routes]]
            name = "mcp"
            path_prefix = "/mcp"
            upstream = "http://127.0.0.1:{mcp_port}"
            audience = "{mcp_url}"
            scopes = ["mcp:tools"]
            "#
        ),
    )
    .unwrap();
    let child = w
        .command(&["gateway", "--config", config.to_str().unwrap()])
        .env("TESSERA_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let _gateway = KillOnDrop(child);
    wait_ready(gateway_port);

    let stdout = run_node(
        "mcp_gateway.mjs",
        &[json!({
            "mcp_port": mcp_port,
            "mcp_url": mcp_url,
            "client_id": "mcp-e2e",
            "redirect_uri": redirect_uri,
            "username": "alice",
            "password": "correct horse battery",
        })
        .to_string()],
    );
    let result: Value = serde_json::from_str(stdout.trim()).unwrap_or_else(|_| panic!("{stdout}"));
    // The SDK asked Tessera for a token for exactly the MCP URL, with PKCE.
    let authorize = url::Url::parse(result["authorization_url"].as_str().unwrap()).unwrap();
    assert!(authorize.as_str().starts_with(&format!("{issuer}/authorize")), "{authorize}");
    let query: std::collections::HashMap<_, _> = authorize.query_pairs().collect();
    assert_eq!(query["resource"], mcp_url.as_str());
    assert_eq!(query["code_challenge_method"], "S256");
    assert_eq!(query["scope"], "mcp:tools");
    // The tool ran for alice, as the gateway verified her, and never saw her token.
    assert_eq!(result["tool_result"]["sub"], user["sub"], "{result}");
    assert_eq!(result["tool_result"]["scope"], "mcp:tools");
    assert_eq!(result["upstream_saw_authorization"], false, "{result}");
    assert!(result["upstream_requests"].as_u64().unwrap() >= 2, "{}", text(stdout.as_bytes()));
}
