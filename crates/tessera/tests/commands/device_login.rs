//! `tessera login` and `tessera token show` as a person uses them: the device flow (RFC 8628)
//! against `tessera serve --dev`, with headless Chromium (playwright-core) playing the user who
//! enters the code, signs in and allows or denies.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{DecodingKey, Validation};
use serde_json::Value;

const USERNAME: &str = "alice";
const PASSWORD: &str = "correct horse battery";
const CLIENT_ID: &str = "device-cli";
const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

use crate::support::{DevServer, KillOnDrop, Workdir, free_port, text};

/// One HTTP/1.0 GET over a plain socket (no chunked encoding); status and body.
fn http_get(port: u16, path: &str) -> std::io::Result<(u16, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    stream.write_all(format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").as_bytes())?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let status = response.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = response.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
    Ok((status, body))
}

/// A server with user `alice` and the public device client `device-cli`; returns alice's sub.
fn server_with_device_client(w: &Workdir) -> (DevServer, u16, String) {
    let server = DevServer::start(w, &[]);
    let port = server.port;
    let user = w.ok_json(
        &["user", "create", "--username", USERNAME, "--password-stdin", "--json"],
        Some(&format!("{PASSWORD}\n")),
    );
    let client = w.ok_json(
        &[
            "client",
            "create",
            "--name",
            "Device CLI",
            "--client-id",
            CLIENT_ID,
            "--public",
            "--grant-type",
            DEVICE_GRANT,
            "--grant-type",
            "refresh_token",
            "--scope",
            "openid profile orders:read",
            "--json",
        ],
        None,
    );
    assert!(client.get("client_secret").is_none(), "a public client has no secret: {client}");
    (server, port, user["sub"].as_str().unwrap().to_owned())
}

use crate::node_tools::{js_tools_available, run_node};

/// `node tests/js/device_approve.mjs CONFIG`; the JSON line it prints.
fn approve_in_browser(config: &Value) -> Value {
    let stdout = run_node("device_approve.mjs", &[config.to_string()]);
    serde_json::from_str(stdout.trim()).unwrap_or_else(|_| panic!("not JSON: {stdout}"))
}

/// A running `tessera login`, its standard output read line by line on a thread.
struct Login {
    child: KillOnDrop,
    lines: mpsc::Receiver<String>,
    stdout: Vec<String>,
    stderr: std::thread::JoinHandle<String>,
}

impl Login {
    fn spawn(w: &Workdir, port: u16) -> Login {
        Login::spawn_with(w, port, &[])
    }

    fn spawn_with(w: &Workdir, port: u16, env: &[(&str, &str)]) -> Login {
        let issuer = format!("http://127.0.0.1:{port}");
        let mut child = w
            .command(&[
                "login",
                "--issuer",
                &issuer,
                "--client-id",
                CLIENT_ID,
                "--scope",
                "openid",
                "--scope",
                "orders:read",
            ])
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let out = child.stdout.take().unwrap();
        let mut err = child.stderr.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stderr = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = err.read_to_string(&mut s);
            s
        });
        Login { child: KillOnDrop(child), lines, stdout: Vec::new(), stderr }
    }

    /// Reads standard output up to the line with `verification_uri_complete`; returns that URL.
    fn verification_uri_complete(&mut self) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self.lines.recv_timeout(left).unwrap_or_else(|_| {
                panic!("no verification URL from tessera login; stdout so far: {:?}", self.stdout)
            });
            self.stdout.push(line.clone());
            if let Some(url) =
                line.split_whitespace().find(|w| w.starts_with("http") && w.contains("user_code="))
            {
                return url.to_owned();
            }
        }
    }

    /// Waits for the exit (at most 60 s); the status, all of stdout and stderr.
    fn finish(mut self) -> (ExitStatus, String, String) {
        let deadline = Instant::now() + Duration::from_secs(60);
        let status = loop {
            if let Some(status) = self.child.0.try_wait().unwrap() {
                break status;
            }
            assert!(Instant::now() < deadline, "tessera login still running after 60 s");
            std::thread::sleep(Duration::from_millis(100));
        };
        // The reader thread ends at EOF, which closes the channel.
        while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(10)) {
            self.stdout.push(line);
        }
        let stderr = self.stderr.join().unwrap();
        (status, self.stdout.join("\n"), stderr)
    }
}

/// The user code in `…/device?user_code=XXXX-XXXX`.
fn user_code_of(url: &str) -> String {
    url.split_once("user_code=").unwrap().1.split('&').next().unwrap().to_owned()
}

/// Verifies a JWT against the server's published JWKS with jsonwebtoken; returns its claims.
fn verify(port: u16, jwt: &str, audience: &str) -> Value {
    let (status, body) = http_get(port, "/jwks.json").unwrap();
    assert_eq!(status, 200, "{body}");
    let jwks: JwkSet = serde_json::from_str(&body).unwrap();
    let header = jsonwebtoken::decode_header(jwt).unwrap();
    let jwk = jwks.find(header.kid.as_deref().expect("kid")).expect("kid published in the JWKS");
    let mut validation = Validation::new(header.alg);
    validation.set_issuer(&[format!("http://127.0.0.1:{port}")]);
    validation.set_audience(&[audience]);
    validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    jsonwebtoken::decode::<Value>(jwt, &DecodingKey::from_jwk(jwk).unwrap(), &validation)
        .expect("the token verifies against the JWKS")
        .claims
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn rfc8628_tessera_login_polls_until_a_browser_approves() {
    if !js_tools_available(
        "rfc8628_tessera_login_polls_until_a_browser_approves",
        &["playwright-core"],
        true,
    ) {
        return;
    }
    let w = Workdir::new("device");
    let (_server, port, sub) = server_with_device_client(&w);
    let issuer = format!("http://127.0.0.1:{port}");

    let mut login = Login::spawn(&w, port);
    let url = login.verification_uri_complete();
    let user_code = user_code_of(&url);
    assert!(url.starts_with(&format!("{issuer}/device?user_code=")), "{url}");
    let shown = login.stdout.join("\n");
    assert!(shown.contains(&format!("{issuer}/device ")), "verification_uri printed: {shown}");
    assert!(shown.contains(&user_code), "user_code printed: {shown}");

    let page = approve_in_browser(&serde_json::json!({
        "url": url,
        "username": USERNAME,
        "password": PASSWORD,
        "expected_user_code": user_code,
        "screenshot_dir": std::env::var("TESSERA_SCREENSHOT_DIR").ok(),
    }));
    assert_eq!(
        page["entered_code"],
        user_code.as_str(),
        "verification_uri_complete fills the code"
    );
    assert_eq!(
        page["consent_code"],
        user_code.as_str(),
        "the consent page shows the device's code"
    );
    assert_eq!(page["final_heading"], "Device connected");

    let (status, stdout, stderr) = login.finish();
    assert!(status.success(), "tessera login failed: {stderr}\n{stdout}");
    let path = w.tokens_file();
    assert!(stdout.contains(&format!("Signed in; tokens saved to {}", path.display())), "{stdout}");
    assert_eq!(mode(&path), 0o600, "tokens file readable by its owner only");
    assert_eq!(mode(path.parent().unwrap()), 0o700);
    let leftovers: Vec<_> = std::fs::read_dir(path.parent().unwrap()).unwrap().collect();
    assert_eq!(leftovers.len(), 1, "no temporary file left: {leftovers:?}");

    let stored: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    assert_eq!(stored["issuer"], issuer.as_str());
    assert_eq!(stored["client_id"], CLIENT_ID);
    assert!(stored["obtained_at"].as_i64().unwrap() > 1_700_000_000);
    assert_eq!(stored["token_type"], "Bearer");
    let access = stored["access_token"].as_str().unwrap();
    let refresh = stored["refresh_token"].as_str().expect("the client has the refresh_token grant");
    let id_token = stored["id_token"].as_str().expect("openid was asked for");
    for secret in [access, refresh, id_token] {
        assert!(!stdout.contains(secret) && !stderr.contains(secret), "a token was printed");
    }

    // The access token verifies against the published keys (RFC 9068), and so does the ID token.
    let claims = verify(port, access, &issuer);
    assert_eq!(claims["sub"], sub.as_str());
    assert_eq!(claims["client_id"], CLIENT_ID);
    let scope: Vec<&str> = claims["scope"].as_str().unwrap().split(' ').collect();
    assert!(scope.contains(&"orders:read") && scope.contains(&"openid"), "{claims}");
    let id_claims = verify(port, id_token, CLIENT_ID);
    assert_eq!(id_claims["sub"], sub.as_str());

    // `token show` decodes the same claims and says it did not verify them.
    let shown = w.ok_json(&["token", "show", "--json"], None);
    assert_eq!(shown["claims"], claims);
    assert_eq!(shown["format"], "jwt");
    assert_eq!(shown["verified"], false);
    assert_eq!(shown["expired"], false);
    assert_eq!(shown["expires_at"], claims["exp"]);
    assert_eq!(shown["issuer"], issuer.as_str());
    assert_eq!(shown["refresh_token"], true);
    assert_eq!(shown["id_token_claims"]["sub"], sub.as_str());
    let human = w.tessera(&["token", "show"], None);
    assert!(human.status.success(), "{}", text(&human.stderr));
    let human = text(&human.stdout);
    assert!(human.contains("claims (not verified)"), "{human}");
    assert!(human.contains(&sub) && human.contains("Expires:"), "{human}");
    assert!(!human.contains(access) && !human.contains(refresh), "token show printed a token");

    // `token access` prints the stored token while it is valid…
    let out = w.tessera(&["token", "access"], None);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).trim(), access);
    // …and once it has expired, refreshes (RFC 6749 §6): the rotated refresh token is saved.
    let mut aged = stored.clone();
    aged["obtained_at"] = (stored["obtained_at"].as_i64().unwrap() - 100_000).into();
    std::fs::write(&path, serde_json::to_vec(&aged).unwrap()).unwrap();
    let out = w.tessera(&["token", "access"], None);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let renewed_access = text(&out.stdout).trim().to_owned();
    assert_ne!(renewed_access, access);
    assert_eq!(verify(port, &renewed_access, &issuer)["sub"], sub.as_str());
    let renewed: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    assert_eq!(renewed["access_token"], renewed_access.as_str());
    let rotated = renewed["refresh_token"].as_str().unwrap();
    assert_ne!(rotated, refresh, "the rotated refresh token replaced the old one");
    assert_eq!(mode(&path), 0o600);
}

#[test]
fn token_access_prints_a_valid_token_and_explains_an_expired_one_without_refresh_token() {
    let w = Workdir::new("device");
    std::fs::create_dir_all(w.tokens_file().parent().unwrap()).unwrap();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap();
    let now = now.as_secs() as i64;
    let file = |obtained_at: i64| {
        serde_json::json!({"access_token": "opaque-token", "token_type": "Bearer",
            "expires_in": 900, "obtained_at": obtained_at, "issuer": "http://127.0.0.1:9",
            "client_id": "cli"})
    };
    std::fs::write(w.tokens_file(), file(now).to_string()).unwrap();
    let out = w.tessera(&["token", "access"], None);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "opaque-token\n");
    std::fs::write(w.tokens_file(), file(now - 1000).to_string()).unwrap();
    let out = w.tessera(&["token", "access"], None);
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(stderr.contains("expired") && stderr.contains("tessera login"), "{stderr}");
    assert!(out.stdout.is_empty());
}

#[test]
fn rfc8628_3_5_tessera_login_stops_on_denial() {
    if !js_tools_available("rfc8628_3_5_tessera_login_stops_on_denial", &["playwright-core"], true)
    {
        return;
    }
    let w = Workdir::new("device");
    let (_server, port, _sub) = server_with_device_client(&w);
    let mut login = Login::spawn(&w, port);
    let url = login.verification_uri_complete();
    let user_code = user_code_of(&url);
    let page = approve_in_browser(&serde_json::json!({
        "url": url,
        "username": USERNAME,
        "password": PASSWORD,
        "expected_user_code": user_code,
        "deny": true,
    }));
    assert_eq!(page["final_heading"], "Request denied");

    let (status, stdout, stderr) = login.finish();
    assert!(!status.success(), "tessera login succeeded after a denial: {stdout}");
    assert!(stderr.contains("denied"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(!w.tokens_file().exists(), "nothing saved after a denial");
}

#[test]
fn token_show_without_a_login_says_so() {
    let w = Workdir::new("device");
    for args in [&["token", "show"][..], &["token", "show", "--json"]] {
        let out = w.tessera(args, None);
        assert!(!out.status.success(), "{args:?}");
        let stderr = text(&out.stderr);
        assert!(stderr.contains("not signed in"), "{stderr}");
        assert!(stderr.contains("tessera login"), "{stderr}");
        assert!(stderr.contains(&w.tokens_file().display().to_string()), "{stderr}");
        assert!(out.stdout.is_empty());
    }
    // A file that is not ours is named as such, not a panic.
    std::fs::create_dir_all(w.tokens_file().parent().unwrap()).unwrap();
    std::fs::write(w.tokens_file(), "<html>").unwrap();
    let out = w.tessera(&["token", "show"], None);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("not a tokens file"), "{}", text(&out.stderr));
}

#[test]
fn login_reports_an_unreachable_issuer_and_a_non_oauth_server_clearly() {
    let w = Workdir::new("device");
    // Nothing listens on this port.
    let port = free_port();
    let out = w.tessera(
        &["login", "--issuer", &format!("http://127.0.0.1:{port}"), "--client-id", "x"],
        None,
    );
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(stderr.contains("cannot reach") && !stderr.contains("panicked"), "{stderr}");

    // A web server that answers HTML to everything.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(4) {
            let Ok(mut stream) = stream else { continue };
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf);
            let body = "<html><body>Welcome</body></html>";
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    let out = w.tessera(
        &["login", "--issuer", &format!("http://127.0.0.1:{port}"), "--client-id", "x"],
        None,
    );
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(stderr.contains("not JSON") && !stderr.contains("panicked"), "{stderr}");

    // Plain http to a non-loopback host is refused before any request.
    let out =
        w.tessera(&["login", "--issuer", "http://auth.example.com", "--client-id", "x"], None);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("plain http"), "{}", text(&out.stderr));
    assert!(!w.tokens_file().exists());
}

/// A private D-Bus session bus with GNOME Keyring's Secret Service on it, unlocked, as a
/// desktop session has; `None` (skipped, not on CI) without the programs.
struct SecretService {
    _keyring: KillOnDrop,
    _bus: KillOnDrop,
    address: String,
}

impl SecretService {
    fn start(test: &str, w: &Workdir) -> Option<SecretService> {
        let have = |program: &str| {
            Command::new("sh")
                .args(["-c", &format!("command -v {program}")])
                .output()
                .is_ok_and(|o| o.status.success())
        };
        if !have("dbus-daemon") || !have("gnome-keyring-daemon") {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "CI=true but {test} cannot run: dbus-daemon or gnome-keyring-daemon is missing \
                 (Debian packages dbus-daemon, gnome-keyring)"
            );
            eprintln!("skipping {test}: dbus-daemon or gnome-keyring-daemon is missing");
            return None;
        }
        let mut bus = Command::new("dbus-daemon")
            .args(["--session", "--address=unix:tmpdir=/tmp", "--nofork", "--nopidfile"])
            .arg("--print-address=1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut address = String::new();
        BufReader::new(bus.stdout.take().unwrap()).read_line(&mut address).unwrap();
        let address = address.trim().to_owned();
        assert!(address.starts_with("unix:"), "dbus-daemon printed {address:?}");
        let bus = KillOnDrop(bus);
        let run = w.path().join("run");
        std::fs::DirBuilder::new().mode(0o700).create(&run).unwrap();
        let mut keyring = Command::new("gnome-keyring-daemon")
            .args(["--foreground", "--unlock", "--components=secrets"])
            .env("DBUS_SESSION_BUS_ADDRESS", &address)
            .env("HOME", w.path())
            .env("XDG_RUNTIME_DIR", &run)
            .env("XDG_DATA_HOME", w.path().join("data"))
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // The unlock password, read up to the end of standard input; with it the daemon makes
        // the `login` collection, the default one, as at a desktop login.
        let mut stdin = keyring.stdin.take().unwrap();
        stdin.write_all(b"tessera-test-only").unwrap();
        drop(stdin);
        Some(SecretService { _keyring: KillOnDrop(keyring), _bus: bus, address })
    }

    fn env(&self) -> [(&str, &str); 1] {
        [("DBUS_SESSION_BUS_ADDRESS", self.address.as_str())]
    }
}

/// `tessera login` on a machine with an OS keyring (the Secret Service of a desktop session):
/// the tokens go there, not to the file; `tessera token` reads them back; without the keyring
/// the file is the store (every other test here).
#[test]
fn tessera_login_keeps_tokens_in_the_os_keyring_when_a_secret_service_answers() {
    let test = "tessera_login_keeps_tokens_in_the_os_keyring_when_a_secret_service_answers";
    if !js_tools_available(test, &["playwright-core"], true) {
        return;
    }
    let w = Workdir::new("device-keyring");
    let Some(secrets) = SecretService::start(test, &w) else { return };
    let (_server, port, sub) = server_with_device_client(&w);
    let issuer = format!("http://127.0.0.1:{port}");
    let in_keyring = |args: &[&str]| w.command(args).envs(secrets.env()).output().unwrap();

    // Until the Secret Service is on the bus, the file is the store.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let out = in_keyring(&["token", "show"]);
        let stderr = text(&out.stderr);
        if stderr.contains("no tokens in the OS keyring") {
            break;
        }
        assert!(Instant::now() < deadline, "the Secret Service never answered: {stderr}");
        std::thread::sleep(Duration::from_millis(200));
    }

    let sign_in = |env: &[(&str, &str)]| {
        let mut login = Login::spawn_with(&w, port, env);
        let url = login.verification_uri_complete();
        let page = approve_in_browser(&serde_json::json!({
            "url": url,
            "username": USERNAME,
            "password": PASSWORD,
            "expected_user_code": user_code_of(&url),
        }));
        assert_eq!(page["final_heading"], "Device connected");
        let (status, stdout, stderr) = login.finish();
        assert!(status.success(), "tessera login failed: {stderr}\n{stdout}");
        stdout
    };

    // Signed in where there was no keyring: the file. With the keyring there now and the
    // access token expired, `token access` reads the file, refreshes, and stores the rotated
    // refresh token in the keyring, the file removed.
    let stdout = sign_in(&[]);
    assert!(stdout.contains(&w.tokens_file().display().to_string()), "{stdout}");
    let mut aged: Value = serde_json::from_slice(&std::fs::read(w.tokens_file()).unwrap()).unwrap();
    aged["obtained_at"] = (aged["obtained_at"].as_i64().unwrap() - 100_000).into();
    std::fs::write(w.tokens_file(), aged.to_string()).unwrap();
    let out = in_keyring(&["token", "access"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let refreshed = text(&out.stdout).trim().to_owned();
    assert_ne!(refreshed, aged["access_token"].as_str().unwrap());
    assert!(!w.tokens_file().exists(), "moved into the keyring");
    let out = in_keyring(&["token", "access"]);
    assert_eq!(text(&out.stdout).trim(), refreshed, "read back from the keyring");
    let shown: Value = serde_json::from_slice(&in_keyring(&["token", "show", "--json"]).stdout)
        .expect("token show --json");
    assert_eq!(shown["store"], "keyring");
    assert_eq!(shown["refresh_token"], true, "the rotated refresh token is kept there");

    // Signed in with the keyring: straight there, nothing on disk.
    let stdout = sign_in(&secrets.env());
    assert!(stdout.contains("Signed in; tokens saved to the OS keyring"), "{stdout}");
    assert!(!w.tokens_file().exists(), "no token on disk");

    // Read back from the keyring: a valid token of alice's.
    let out = in_keyring(&["token", "access"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let access = text(&out.stdout).trim().to_owned();
    assert_eq!(verify(port, &access, &issuer)["sub"], sub.as_str());
    let shown = in_keyring(&["token", "show", "--json"]);
    assert!(shown.status.success(), "{}", text(&shown.stderr));
    let shown: Value = serde_json::from_slice(&shown.stdout).unwrap();
    assert_eq!(shown["store"], "keyring");
    assert_eq!(shown["claims"]["sub"], sub.as_str());
    assert!(!shown.to_string().contains(&access), "token show printed the token");

    // Without the session bus, the tokens are nowhere this process can see: they were never
    // written to the file.
    let out = w.tessera(&["token", "access"], None);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains(&w.tokens_file().display().to_string()), "the file store");
}
