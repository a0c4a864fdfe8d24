//! MCP end to end: the official MCP TypeScript SDK's client, through `tessera gateway`, to the
//! SDK's MCP server, with `tessera serve` as the authorization server — every piece a process.

use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::{DevServer, KillOnDrop, Workdir, free_port, http};

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

/// How the SDK's client is known to Tessera in one run of `mcp_gateway.mjs`.
#[derive(Clone, Copy, PartialEq)]
enum ClientKind {
    /// Made by the operator with `tessera client create`.
    Registered,
    /// Registers itself at `/register` (RFC 7591), registration policy `open`.
    Dynamic,
    /// Identified by a client ID metadata document the script serves on loopback.
    MetadataDocument,
}

impl ClientKind {
    fn mode(self) -> &'static str {
        match self {
            Self::Registered => "registered",
            Self::Dynamic => "dcr",
            Self::MetadataDocument => "cimd",
        }
    }
}

/// What one run left behind: the script's JSON line, and the issuer, the MCP URL and alice's
/// `sub` to compare it with.
struct Run {
    result: Value,
    issuer: String,
    mcp_url: String,
    redirect_uri: String,
    sub: Value,
}

/// `tessera serve` + `tessera gateway` in front of the SDK's MCP server, and the SDK's client
/// through them (the script drives Chromium); the consent page's screenshot goes to
/// `screenshot` when given.
fn run_sdk_client(
    test: &str,
    kind: ClientKind,
    screenshot: Option<&std::path::Path>,
) -> Option<Run> {
    if !js_tools_available(test, &["playwright-core", "@modelcontextprotocol/sdk"], true) {
        return None;
    }
    let w = Workdir::new("mcp-gateway");
    let (gateway_port, mcp_port) = (free_port(), free_port());
    let gateway = format!("http://127.0.0.1:{gateway_port}");
    let mcp_url = format!("{gateway}/mcp");
    let redirect_uri = format!("http://127.0.0.1:{}/callback", free_port());
    if kind != ClientKind::Registered {
        // Clients the operator did not register may ask only for registered resources open to
        // them (issue 15 item 3): the MCP URL, with the scope the gateway route requires.
        let resource = w.ok_json(
            &[
                "resource",
                "create",
                "--resource",
                &mcp_url,
                "--scope",
                "mcp:tools",
                "--dynamic-clients",
                "--json",
            ],
            None,
        );
        assert_eq!(resource["resource"], mcp_url.as_str(), "{resource}");
    }
    let env: &[(&str, &str)] = match kind {
        ClientKind::Registered => &[],
        ClientKind::Dynamic => &[("TESSERA_REGISTRATION_POLICY", "open")],
        // `--dev` turns on `outbound_allow_private_networks`, which lets the fetcher reach the
        // loopback document (and admits its http URL); nothing else is loosened.
        ClientKind::MetadataDocument => &[("TESSERA_CLIENT_ID_METADATA_DOCUMENTS", "true")],
    };
    let server = DevServer::start(&w, env);
    let issuer = server.issuer();

    let user = w.ok_json(
        &["user", "create", "--username", "alice", "--password-stdin", "--json"],
        Some("correct horse battery\n"),
    );
    if kind == ClientKind::Registered {
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
    }

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
            "mode": kind.mode(),
            "mcp_port": mcp_port,
            "mcp_url": mcp_url,
            "client_id": "mcp-e2e",
            "redirect_uri": redirect_uri,
            "username": "alice",
            "password": "correct horse battery",
            "document_port": free_port(),
            "screenshot": screenshot,
        })
        .to_string()],
    );
    let result: Value = serde_json::from_str(stdout.trim()).unwrap_or_else(|_| panic!("{stdout}"));
    let run = Run { result, issuer, mcp_url, redirect_uri, sub: user["sub"].clone() };
    assert_code_flow_reached_the_tool(&run);
    Some(run)
}

/// The SDK asked Tessera for a token for exactly the MCP URL, with PKCE, and its tool call ran
/// for alice as the gateway verified her, without the upstream seeing her token.
fn assert_code_flow_reached_the_tool(run: &Run) {
    let result = &run.result;
    let authorize = url::Url::parse(result["authorization_url"].as_str().unwrap()).unwrap();
    assert!(authorize.as_str().starts_with(&format!("{}/authorize", run.issuer)), "{authorize}");
    let query: std::collections::HashMap<_, _> = authorize.query_pairs().collect();
    assert_eq!(query["resource"], run.mcp_url.as_str());
    assert_eq!(query["code_challenge_method"], "S256");
    assert_eq!(query["scope"], "mcp:tools");
    assert_eq!(query["client_id"], result["client_id"].as_str().unwrap(), "{result}");
    assert_eq!(result["tool_result"]["sub"], run.sub, "{result}");
    assert_eq!(result["tool_result"]["scope"], "mcp:tools");
    assert_eq!(result["upstream_saw_authorization"], false, "{result}");
    assert!(result["upstream_requests"].as_u64().unwrap() >= 2, "{result}");
}

/// The consent page named the client, showed the redirect URI's host with the loopback
/// warning, and marked the client unverified (issue 15 item 2); prints where its screenshot is.
fn assert_unverified_consent(run: &Run, screenshot: &std::path::Path) {
    let consent = &run.result["consent"];
    let host = url::Url::parse(&run.redirect_uri).unwrap().host_str().unwrap().to_owned();
    assert_eq!(consent["redirect_host"], host.as_str(), "{consent}");
    assert_eq!(consent["unverified"], true, "{consent}");
    assert_eq!(consent["loopback_warning"], true, "{consent}");
    let size = std::fs::metadata(screenshot).map(|m| m.len()).unwrap_or(0);
    // A PNG of a rendered page, not an empty file.
    assert!(size > 1000, "{}: {size} bytes", screenshot.display());
    let png = std::fs::read(screenshot).unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    println!("consent page screenshot: {} ({size} bytes)", screenshot.display());
}

/// Where a test keeps its consent page screenshot: outside the work directory, which is
/// removed when the test ends.
fn screenshot_path(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("{name}.png"))
}

// MCP authorization (2025-06-18 and later) through the gateway: the SDK discovers Tessera from
// the gateway's 401 (RFC 9728 §5.1 resource_metadata), reads both metadata documents, runs
// authorization code + PKCE with `resource` = the MCP URL (RFC 8707), signs in and consents in
// Chromium, and its tool call reaches the MCP server with the verified identity and without
// the token (RFC 9700 §2.3).
#[test]
fn mcp_sdk_client_authorizes_through_the_gateway_and_calls_a_tool() {
    let Some(run) = run_sdk_client(
        "mcp_sdk_client_authorizes_through_the_gateway_and_calls_a_tool",
        ClientKind::Registered,
        None,
    ) else {
        return;
    };
    assert_eq!(run.result["client_id"], "mcp-e2e");
    // An operator-registered client is not marked unverified (the script checks the text too).
    assert_eq!(run.result["consent"]["unverified"], false, "{}", run.result);
    assert_eq!(run.result["registrations"], 0);
}

// The same flow for an MCP client nobody registered: the SDK finds `registration_endpoint` in
// Tessera's metadata (RFC 8414 §2), registers itself (RFC 7591 §3, policy `open`), then runs
// the code flow with PKCE and `resource` (RFC 8707), which the resource registry lets a dynamic
// client ask for; the consent page marks it unverified and shows where the code goes.
#[test]
fn mcp_sdk_client_registered_by_dcr_authorizes_through_the_gateway_and_calls_a_tool() {
    let name = "mcp_sdk_client_registered_by_dcr_authorizes_through_the_gateway_and_calls_a_tool";
    let screenshot = screenshot_path("mcp_consent_dcr");
    let _ = std::fs::remove_file(&screenshot);
    let Some(run) = run_sdk_client(name, ClientKind::Dynamic, Some(&screenshot)) else {
        return;
    };
    assert_eq!(run.result["registrations"], 1, "{}", run.result);
    let client_id = run.result["client_id"].as_str().unwrap();
    assert_ne!(client_id, "mcp-e2e");
    assert_eq!(run.result["consent"]["client_name"], "MCP agent (self-registered)");
    assert_unverified_consent(&run, &screenshot);
}

// The same flow for an MCP client identified by a client ID metadata document
// (draft-ietf-oauth-client-id-metadata-document §3, §4): the client_id is the document's URL,
// Tessera fetches it (a loopback URL, admitted by `outbound_allow_private_networks` under
// `--dev`), checks the redirect URI against it and shows its `client_name` as unverified.
#[test]
fn mcp_sdk_client_with_a_metadata_document_authorizes_through_the_gateway_and_calls_a_tool() {
    let name =
        "mcp_sdk_client_with_a_metadata_document_authorizes_through_the_gateway_and_calls_a_tool";
    let screenshot = screenshot_path("mcp_consent_cimd");
    let _ = std::fs::remove_file(&screenshot);
    let Some(run) = run_sdk_client(name, ClientKind::MetadataDocument, Some(&screenshot)) else {
        return;
    };
    let client_id = run.result["client_id"].as_str().unwrap();
    assert!(client_id.ends_with("/oauth/client.json"), "{client_id}");
    assert_eq!(run.result["registrations"], 0, "{}", run.result);
    // Tessera read the document; its `max-age=60` spares a fetch per request.
    let fetches = run.result["document_fetches"].as_u64().unwrap();
    assert!((1..=2).contains(&fetches), "{}", run.result);
    assert_eq!(run.result["consent"]["client_name"], "MCP agent (metadata document)");
    assert_unverified_consent(&run, &screenshot);
}
