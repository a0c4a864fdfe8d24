//! The `tessera` binary as an operator uses it: admin commands against a SQLite file, and
//! `serve --dev` answering a token request like the README's `curl`.

use std::process::Output;

use crate::support::{DevServer, Workdir, http, post_form, text};

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn r6_1_client_commands_print_the_secret_once_and_store_only_its_hash() {
    let w = Workdir::new("cli");
    let created = w.ok_json(
        &[
            "client",
            "create",
            "--name",
            "Billing",
            "--client-id",
            "billing",
            "--scope",
            "orders:read orders:write",
            "--default-scope",
            "orders:read",
            "--json",
        ],
        None,
    );
    assert_eq!(created["client_id"], "billing");
    let secret = created["client_secret"].as_str().unwrap().to_owned();
    assert!(secret.len() >= 43, "256-bit secret");

    let listed = w.ok_json(&["client", "list", "--json"], None);
    assert_eq!(listed[0]["client_id"], "billing");
    assert_eq!(listed[0]["scope"], "orders:read orders:write");
    let shown = w.ok_json(&["client", "show", "billing", "--json"], None);
    assert_eq!(shown["default_scope"], "orders:read");
    assert!(!shown.to_string().contains(&secret), "show never prints the secret");

    let db = std::fs::read(w.db_file()).unwrap();
    let wal = std::fs::read(w.0.join("tessera.db-wal")).unwrap_or_default();
    for bytes in [db, wal] {
        assert!(
            !bytes.windows(secret.len()).any(|win| win == secret.as_bytes()),
            "plaintext secret on disk"
        );
    }

    let dup = w.tessera(&["client", "create", "--name", "Again", "--client-id", "billing"], None);
    assert!(!dup.status.success());
    assert!(stderr(&dup).contains("already exists"), "{}", stderr(&dup));

    let deleted = w.tessera(&["client", "delete", "billing"], None);
    assert!(deleted.status.success());
    assert!(!w.tessera(&["client", "show", "billing"], None).status.success());
}

#[test]
fn r4_1_client_create_refuses_unsafe_redirect_uris() {
    let w = Workdir::new("cli");
    for uri in ["http://app.example/cb", "https://app.example/cb#x", "javascript:alert(1)", "/cb"] {
        let out = w.tessera(&["client", "create", "--name", "web", "--redirect-uri", uri], None);
        assert!(!out.status.success(), "{uri} accepted");
        assert!(stderr(&out).contains(uri.split('#').next().unwrap()), "{uri}: {}", stderr(&out));
    }
    let ok = w.ok_json(
        &[
            "client",
            "create",
            "--name",
            "web",
            "--redirect-uri",
            "https://app.example/cb",
            "--json",
        ],
        None,
    );
    assert!(ok["client_secret"].is_string());
}

#[test]
fn client_create_imports_a_secret_from_stdin() {
    let w = Workdir::new("cli");
    let imported = "an-existing-secret-of-at-least-32-chars";
    let out = w.ok_json(
        &["client", "create", "--name", "old", "--secret-stdin", "--json"],
        Some(&format!("{imported}\n")),
    );
    assert_eq!(out["client_secret"], imported);
    let short =
        w.tessera(&["client", "create", "--name", "old2", "--secret-stdin"], Some("too-short\n"));
    assert!(!short.status.success());
}

#[test]
fn r6_1_user_commands_hash_passwords_read_from_stdin() {
    let w = Workdir::new("cli");
    let user = w.ok_json(
        &[
            "user",
            "create",
            "--username",
            "alice",
            "--email",
            "alice@example.com",
            "--password-stdin",
            "--json",
        ],
        Some("correct horse battery\n"),
    );
    let sub = user["sub"].as_str().unwrap();
    assert!(!sub.contains("alice"), "sub is opaque, never the email or username");
    let listed = w.ok_json(&["user", "list", "--json"], None);
    assert_eq!(listed[0]["username"], "alice");
    assert!(listed[0].get("password_hash").is_none());
    assert!(w.tessera(&["user", "delete", "alice"], None).status.success());
    assert!(!w.tessera(&["user", "delete", "alice"], None).status.success());
}

/// Issue 17 finding 1: `user disable` / `user enable` flip the account's state (a disabled
/// user cannot sign in; the server suite checks what disabling ends) and name an unknown user.
#[test]
fn issue17_user_disable_and_enable_switch_the_account() {
    let w = Workdir::new("cli");
    w.ok_json(
        &["user", "create", "--username", "alice", "--password-stdin", "--json"],
        Some("correct horse battery\n"),
    );
    let disabled =
        |w: &Workdir| w.ok_json(&["user", "list", "--json"], None)[0]["disabled"].clone();
    assert_eq!(disabled(&w), false);
    let out = w.tessera(&["user", "disable", "alice"], None);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("disabled user `alice`"));
    assert_eq!(disabled(&w), true);
    let listed = w.tessera(&["user", "list"], None);
    assert!(String::from_utf8_lossy(&listed.stdout).contains("\tdisabled"));
    let out = w.tessera(&["user", "enable", "alice"], None);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(disabled(&w), false);
    for command in ["disable", "enable"] {
        let out = w.tessera(&["user", command, "nobody"], None);
        assert!(!out.status.success());
        assert!(stderr(&out).contains("no user `nobody`"), "{}", stderr(&out));
    }
}

/// RFC 9700 §4.15 (issue 17 finding 17): a client_id equal to a user's `sub` is refused.
#[test]
fn rfc9700_4_15_a_client_id_equal_to_a_users_sub_is_refused() {
    let w = Workdir::new("cli");
    let user = w.ok_json(
        &["user", "create", "--username", "alice", "--password-stdin", "--json"],
        Some("correct horse battery\n"),
    );
    let sub = user["sub"].as_str().unwrap();
    let out = w.tessera(&["client", "create", "--name", "Impostor", "--client-id", sub], None);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains(&format!("a user whose sub is the client_id `{sub}`")),
        "{}",
        stderr(&out)
    );
    assert_eq!(w.ok_json(&["client", "list", "--json"], None), serde_json::json!([]));
}

#[test]
fn migrate_reports_and_is_idempotent() {
    let w = Workdir::new("cli");
    let first = w.tessera(&["migrate"], None);
    assert!(first.status.success(), "{}", stderr(&first));
    let applied: u32 =
        String::from_utf8_lossy(&first.stdout).split_whitespace().next().unwrap().parse().unwrap();
    assert!(applied >= 1, "a fresh database gets every migration");
    let second = w.tessera(&["migrate"], None);
    assert!(String::from_utf8_lossy(&second.stdout).contains("0 migration(s) applied"));
}

#[test]
fn rfc8414_2_serve_refuses_a_plain_http_issuer_outside_dev() {
    let w = Workdir::new("cli");
    let out = w.tessera(&["serve", "--issuer", "http://auth.example.com"], None);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("plain http"), "{}", stderr(&out));
    let out = w.tessera(&["serve", "--issuer", "https://auth.example.com"], None);
    assert!(stderr(&out).contains("key_encryption_key"), "{}", stderr(&out));
}

#[test]
fn r5_1_serve_dev_needs_no_setup_and_its_curl_line_gets_a_token() {
    let w = Workdir::new("cli");
    let server = DevServer::start(&w, &[]);
    let (port, curl) = (server.port, server.curl.clone());
    assert!(w.db_file().exists(), "SQLite file created on first start");
    let kek = std::fs::metadata(w.0.join("tessera.kek")).unwrap();
    assert_eq!(std::os::unix::fs::PermissionsExt::mode(&kek.permissions()) & 0o777, 0o600);

    // `curl -s -u demo:SECRET -d grant_type=client_credentials http://127.0.0.1:PORT/token`
    let credentials = curl.split_whitespace().nth(3).unwrap();
    assert!(curl.ends_with(&format!("http://127.0.0.1:{port}/token")), "{curl}");
    let basic = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, credentials);
    let (status, token) = post_form(port, "/token", Some(&basic), "grant_type=client_credentials");
    assert_eq!(status, 200, "{token}");
    assert_eq!(token["token_type"], "Bearer");
    assert_eq!(token["scope"], "demo:read");

    let (status, body) = http(
        port,
        "GET /.well-known/openid-configuration HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(status, 200);
    let doc: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(doc["issuer"], format!("http://127.0.0.1:{port}"));

    // The keys the server made on first start, listed and rotated by the CLI.
    let keys = w.ok_json(&["keys", "list", "--json", "--database-url", &w.db_url()], None);
    assert_eq!(keys.as_array().unwrap().len(), 3);
    let rotated = w.tessera(
        &["keys", "rotate", "--dev", "--alg", "ES256", "--database-url", &w.db_url()],
        None,
    );
    assert!(rotated.status.success(), "{}", stderr(&rotated));
    let keys = w.ok_json(&["keys", "list", "--json", "--database-url", &w.db_url()], None);
    let states: Vec<&str> =
        keys.as_array().unwrap().iter().map(|k| k["state"].as_str().unwrap()).collect();
    assert_eq!(states.iter().filter(|s| **s == "next").count(), 1, "{keys}");
}

#[test]
fn rfc7523_client_create_private_key_jwt_takes_public_keys_and_no_secret() {
    let w = Workdir::new("cli");
    let without = w.tessera(
        &["client", "create", "--name", "signer", "--auth-method", "private_key_jwt"],
        None,
    );
    assert!(!without.status.success());
    assert!(stderr(&without).contains("jwks"), "{}", stderr(&without));
    let jwks = r#"{"keys":[{"kty":"EC","crv":"P-256","kid":"k1","alg":"ES256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}]}"#;
    std::fs::write(w.0.join("keys.json"), jwks).unwrap();
    let created = w.ok_json(
        &[
            "client",
            "create",
            "--name",
            "signer",
            "--client-id",
            "signer",
            "--auth-method",
            "private_key_jwt",
            "--jwks-file",
            "keys.json",
            "--json",
        ],
        None,
    );
    assert!(created.get("client_secret").is_none(), "{created}");
    let shown = w.ok_json(&["client", "show", "signer", "--json"], None);
    assert_eq!(shown["token_endpoint_auth_method"], "private_key_jwt");
    assert_eq!(shown["jwks"]["keys"][0]["kid"], "k1");

    let symmetric = r#"{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}"#;
    std::fs::write(w.0.join("oct.json"), symmetric).unwrap();
    let refused = w.tessera(
        &[
            "client",
            "create",
            "--name",
            "bad",
            "--auth-method",
            "private_key_jwt",
            "--jwks-file",
            "oct.json",
        ],
        None,
    );
    assert!(!refused.status.success(), "a symmetric key is not a public key");
}

// RFC 8705 §2.1.2: `client create` takes exactly one certificate name for tls_client_auth (the
// rules of /register), and records it with the binding flag.
#[test]
fn rfc8705_2_1_2_client_create_registers_a_tls_client_auth_client() {
    let w = Workdir::new("cli");
    let without =
        w.tessera(&["client", "create", "--name", "svc", "--auth-method", "tls_client_auth"], None);
    assert!(!without.status.success());
    assert!(stderr(&without).contains("tls_client_auth_subject_dn"), "{}", stderr(&without));
    let two = w.tessera(
        &[
            "client",
            "create",
            "--name",
            "svc",
            "--auth-method",
            "tls_client_auth",
            "--tls-client-auth-san-dns",
            "svc.example",
            "--tls-client-auth-san-ip",
            "10.0.0.7",
        ],
        None,
    );
    assert!(!two.status.success(), "only one name may be registered");
    let created = w.ok_json(
        &[
            "client",
            "create",
            "--name",
            "svc",
            "--client-id",
            "svc",
            "--auth-method",
            "tls_client_auth",
            "--tls-client-auth-subject-dn",
            "CN=svc,O=Example",
            "--tls-client-certificate-bound-access-tokens",
            "--json",
        ],
        None,
    );
    assert!(created.get("client_secret").is_none(), "{created}");
    let shown = w.ok_json(&["client", "show", "svc", "--json"], None);
    assert_eq!(shown["token_endpoint_auth_method"], "tls_client_auth");
    assert_eq!(shown["tls_client_auth_subject_dn"], "CN=svc,O=Example");
    assert_eq!(shown["tls_client_certificate_bound_access_tokens"], true);
}

#[test]
fn client_create_records_token_format_introspection_and_rate_limit() {
    let w = Workdir::new("cli");
    w.ok_json(
        &[
            "client",
            "create",
            "--name",
            "api",
            "--client-id",
            "api",
            "--introspection",
            "--introspection-audience",
            "https://api.example/orders",
            "--opaque-access-tokens",
            "--rate-limit",
            "25",
            "--json",
        ],
        None,
    );
    let shown = w.ok_json(&["client", "show", "api", "--json"], None);
    assert_eq!(shown["introspection"], true);
    assert_eq!(shown["introspection_audience"], "https://api.example/orders");
    assert_eq!(shown["access_token_format"], "opaque");
    assert_eq!(shown["rate_limit_per_second"], 25);
}

// OIDC Registration §2 `id_token_signed_response_alg` (issue 16): `client create` records the
// algorithm of the client's ID tokens, RS256 by default, and refuses one it cannot sign with.
#[test]
fn oidc_registration_2_client_create_records_the_id_token_signing_alg() {
    let w = Workdir::new("cli");
    let web = |id: &str| {
        ["client", "create", "--name", id, "--client-id", id, "--redirect-uri"]
            .into_iter()
            .map(str::to_owned)
            .chain(["https://app.example/cb".to_owned(), "--json".to_owned()])
            .collect::<Vec<String>>()
    };
    let args = web("plain");
    w.ok_json(&args.iter().map(String::as_str).collect::<Vec<_>>(), None);
    let shown = w.ok_json(&["client", "show", "plain", "--json"], None);
    assert_eq!(shown["id_token_signed_response_alg"], "RS256");
    let mut args = web("edwards");
    args.extend(["--id-token-signed-response-alg".to_owned(), "EdDSA".to_owned()]);
    w.ok_json(&args.iter().map(String::as_str).collect::<Vec<_>>(), None);
    let shown = w.ok_json(&["client", "show", "edwards", "--json"], None);
    assert_eq!(shown["id_token_signed_response_alg"], "EdDSA");
    let mut args = web("hmac");
    args.extend(["--id-token-signed-response-alg".to_owned(), "HS256".to_owned()]);
    let out = w.tessera(&args.iter().map(String::as_str).collect::<Vec<_>>(), None);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("id_token_signed_response_alg"), "{}", text(&out.stderr));
}

// RFC 7662 §4: introspection callers authenticate; a public client cannot (issue 17 finding 6).
#[test]
fn rfc7662_4_a_public_client_cannot_be_created_with_introspection() {
    let w = Workdir::new("cli");
    let args = ["client", "create", "--name", "spa", "--public", "--introspection"];
    let args = [&args[..], &["--redirect-uri", "https://app.example/cb", "--json"]].concat();
    let out = w.tessera(&args, None);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("introspect"), "{}", text(&out.stderr));
}

#[test]
fn r2_1_consent_commands_list_and_refuse_unknown_consents() {
    let w = Workdir::new("cli");
    w.ok_json(
        &["user", "create", "--username", "bob", "--password-stdin", "--json"],
        Some("long enough pw\n"),
    );
    let listed = w.ok_json(&["user", "consents", "bob", "--json"], None);
    assert_eq!(listed, serde_json::json!([]));
    let out = w.tessera(&["user", "revoke-consent", "bob", "web"], None);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("no consent"), "{}", stderr(&out));
    assert!(!w.tessera(&["user", "consents", "nobody"], None).status.success());
}

#[test]
fn r4_4_audit_tail_reads_the_audit_table() {
    let w = Workdir::new("cli");
    let out = w.ok_json(&["audit", "tail", "--json"], None);
    assert_eq!(out, serde_json::json!([]));
}

/// R5.4: what the server acknowledged is still there after `kill -9` (SQLite, default
/// `sqlite_synchronous = "normal"`): an opaque access token and a pending device authorization,
/// each written by one committed transaction like refresh tokens and consents.
#[test]
fn r5_4_acknowledged_writes_survive_kill_9_of_the_server() {
    let w = Workdir::new("cli");
    let created = w.ok_json(
        &[
            "client",
            "create",
            "--name",
            "Resource server",
            "--client-id",
            "svc",
            "--scope",
            "orders:read",
            "--default-scope",
            "orders:read",
            "--opaque-access-tokens",
            "--introspection",
            "--json",
        ],
        None,
    );
    let secret = created["client_secret"].as_str().unwrap().to_owned();
    let basic =
        base64::Engine::encode(&base64::engine::general_purpose::STANDARD, format!("svc:{secret}"));
    let device_grant = "urn:ietf:params:oauth:grant-type:device_code";
    w.ok_json(
        &[
            "client",
            "create",
            "--name",
            "TV",
            "--client-id",
            "tv",
            "--public",
            "--grant-type",
            device_grant,
            "--scope",
            "orders:read",
            "--json",
        ],
        None,
    );

    let server = DevServer::start(&w, &[]);
    let (status, token) =
        post_form(server.port, "/token", Some(&basic), "grant_type=client_credentials");
    assert_eq!(status, 200, "{token}");
    let access_token = token["access_token"].as_str().unwrap().to_owned();
    let (status, device) =
        post_form(server.port, "/device_authorization", None, "client_id=tv&scope=orders:read");
    assert_eq!(status, 200, "{device}");
    let device_code = device["device_code"].as_str().unwrap().to_owned();
    // SIGKILL right after the answers: no shutdown, no checkpoint.
    drop(server);

    let server = DevServer::start(&w, &[]);
    let (status, answer) =
        post_form(server.port, "/introspect", Some(&basic), &format!("token={access_token}"));
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["active"], true, "the access token was lost: {answer}");
    // RFC 8628 §3.5: still pending (a lost record would be invalid_grant).
    let (status, answer) = post_form(
        server.port,
        "/token",
        None,
        &format!("grant_type={device_grant}&device_code={device_code}&client_id=tv"),
    );
    assert_eq!(
        (status, answer["error"].as_str()),
        (400, Some("authorization_pending")),
        "{answer}"
    );
}

/// R7.4: `tessera user disable`, `user delete` and `user revoke-consent`, given the server's
/// `redis_url` (`TESSERA_REDIS_URL`), publish the unexpired access tokens of the grants they
/// revoke to the revocation list, expiring with each token (real Redis,
/// `TESSERA_TEST_REDIS_URL`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r7_4_user_disable_delete_and_consent_withdrawal_publish_to_the_revocation_list() {
    use tessera_core::client_id::ClientId;
    use tessera_core::scope::ScopeSet;
    use tessera_core::store::{Consent, ConsentStore, Grant, GrantStore, UserStore};
    let url =
        std::env::var("TESSERA_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let conn = match redis::Client::open(url.as_str()) {
        Ok(client) => match client.get_multiplexed_async_connection().await {
            Ok(conn) => conn,
            Err(e) if std::env::var("CI").as_deref() != Ok("true") => {
                eprintln!("skipped: Redis at {url} is unreachable: {e}");
                return;
            }
            Err(e) => panic!("Redis is required under CI: {e}"),
        },
        Err(e) => panic!("bad Redis URL {url}: {e}"),
    };
    let w = Workdir::new("cli-revocation-list");
    for name in ["alice", "bob", "carol"] {
        w.ok_json(
            &["user", "create", "--username", name, "--password-stdin", "--json"],
            Some("correct horse battery\n"),
        );
    }
    let store = tessera_store::Store::connect(&w.db_url()).await.unwrap();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
        as i64;
    // Per user: a grant to `web` with one live and one expired access token recorded.
    let mut live = Vec::new();
    for name in ["alice", "bob", "carol"] {
        let user = store.find_user_by_username(name).await.unwrap().unwrap();
        let grant = Grant {
            id: format!("g-{name}-{}", tessera_core::secret::random_id::<8>()),
            client_id: ClientId::parse("web").unwrap(),
            user_id: user.id.clone(),
            scope: ScopeSet::parse("openid").unwrap(),
            auth_time: now,
            sid: None,
            audience: Vec::new(),
            created_at: now,
            expires_at: now + 86_400,
            dpop_jkt: None,
        };
        store.insert_grant(&grant).await.unwrap();
        let jti = tessera_core::secret::random_id::<16>();
        store.record_access_token(&grant.id, &jti, now + 600).await.unwrap();
        let expired = tessera_core::secret::random_id::<16>();
        store.record_access_token(&grant.id, &expired, now - 10).await.unwrap();
        if name == "carol" {
            let consent = Consent {
                user_id: user.id.clone(),
                client_id: ClientId::parse("web").unwrap(),
                scope: ScopeSet::parse("openid").unwrap(),
                granted_at: now,
            };
            store.save_consent(&consent).await.unwrap();
        }
        live.push((name, jti, expired));
    }
    let listed = |jti: String| {
        let mut conn = conn.clone();
        async move {
            let key = format!("tessera:revoked:{jti}");
            let at: i64 = redis::cmd("EXPIRETIME").arg(&key).query_async(&mut conn).await.unwrap();
            at
        }
    };
    for (name, args) in [
        ("alice", vec!["user", "disable", "alice"]),
        ("bob", vec!["user", "delete", "bob"]),
        ("carol", vec!["user", "revoke-consent", "carol", "web"]),
    ] {
        let (_, jti, expired) = live.iter().find(|(n, ..)| *n == name).unwrap().clone();
        assert_eq!(listed(jti.clone()).await, -2, "{name}: not listed before");
        let out = w.command(&args).env("TESSERA_REDIS_URL", &url).output().unwrap();
        assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
        assert_eq!(listed(jti).await, now + 600, "{name}: listed until the token's exp");
        assert_eq!(listed(expired).await, -2, "{name}: an expired token is not listed");
    }
}
