//! What the binary's test files share: a scratch directory that runs `tessera` commands, and
//! `serve --dev` started in it.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A scratch directory, removed at the end: the database `tessera.db` (and `--dev`'s key file)
/// live here, and so does the config home of `tessera login`.
pub struct Workdir(pub PathBuf);

impl Workdir {
    pub fn new(name: &str) -> Self {
        let nonce =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
        let dir =
            std::env::temp_dir().join(format!("tessera-{name}-{}-{nonce}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    pub fn db_file(&self) -> PathBuf {
        self.0.join("tessera.db")
    }

    pub fn db_url(&self) -> String {
        format!("sqlite://{}", self.db_file().display())
    }

    /// `XDG_CONFIG_HOME` of the commands run here.
    pub fn config_home(&self) -> PathBuf {
        self.0.join("config")
    }

    /// Where `tessera login` run here saves its tokens.
    pub fn tokens_file(&self) -> PathBuf {
        self.config_home().join("tessera").join("tokens.json")
    }

    /// `tessera ARGS` in this directory, on its database, with no issuer from the environment.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_tessera"));
        command
            .args(args)
            .env("TESSERA_DATABASE_URL", self.db_url())
            .env_remove("TESSERA_ISSUER")
            .env("XDG_CONFIG_HOME", self.config_home())
            .env("HOME", &self.0)
            // No OS keyring for `tessera login` unless a test starts one: a developer's desktop
            // session bus is not the test's (an unknown transport fails to connect).
            .env("DBUS_SESSION_BUS_ADDRESS", "disabled:")
            .current_dir(&self.0);
        command
    }

    /// Runs `tessera ARGS`, feeding `stdin` if given.
    pub fn tessera(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let mut child = self
            .command(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        if let Some(input) = stdin {
            child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
        }
        drop(child.stdin.take());
        child.wait_with_output().unwrap()
    }

    /// Runs `tessera ARGS` that must succeed and print JSON.
    pub fn ok_json(&self, args: &[&str], stdin: Option<&str>) -> serde_json::Value {
        let out = self.tessera(args, stdin);
        assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
        serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|_| panic!("{args:?}: {}", text(&out.stdout)))
    }
}

impl Drop for Workdir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Kills a child process when the test ends, whatever happens.
pub struct KillOnDrop(pub Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// `tessera serve --dev` in a work directory, listening once its banner is printed.
pub struct DevServer {
    _process: KillOnDrop,
    pub port: u16,
    /// The banner's `curl` line.
    pub curl: String,
    /// The demo client's secret, from the banner.
    pub demo_secret: String,
}

impl DevServer {
    /// Starts `serve --dev` with extra environment variables and reads its banner.
    pub fn start(w: &Workdir, env: &[(&str, &str)]) -> DevServer {
        let port = free_port();
        let mut command = w.command(&["serve", "--dev", "--listen", &format!("127.0.0.1:{port}")]);
        command.env("TESSERA_LOG", "warn").envs(env.iter().copied());
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let process = KillOnDrop(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        let (mut curl, mut secret) = (None, None);
        let mut lines = BufReader::new(stdout).lines();
        for line in lines.by_ref() {
            let line = line.unwrap();
            if let Some(rest) = line.trim_start().strip_prefix("client secret") {
                secret = rest.split_whitespace().next().map(str::to_owned);
            }
            // The curl line comes last in the banner: the server is listening by then.
            if line.trim_start().starts_with("curl ") {
                curl = Some(line.trim().to_owned());
                break;
            }
            assert!(Instant::now() < deadline, "no banner from serve --dev");
        }
        // Keep draining stdout so that the server never blocks on a full pipe.
        std::thread::spawn(move || lines.for_each(drop));
        DevServer {
            _process: process,
            port,
            curl: curl.expect("serve --dev prints a curl command"),
            demo_secret: secret.expect("the banner prints the demo client's secret"),
        }
    }

    pub fn issuer(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

/// One HTTP/1.1 request over a plain socket (sent as written, `Connection: close`); returns
/// the status and the body.
pub fn http(port: u16, request: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response[9..12].parse().unwrap();
    let body = response.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
    (status, body)
}

/// POSTs a form (already encoded) with optional HTTP Basic credentials (already base64) and
/// parses the JSON answer.
pub fn post_form(
    port: u16,
    path: &str,
    basic: Option<&str>,
    form: &str,
) -> (u16, serde_json::Value) {
    let authorization = basic.map(|b| format!("Authorization: Basic {b}\r\n")).unwrap_or_default();
    let (status, body) = http(
        port,
        &format!(
            "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{authorization}Content-Type: \
             application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{form}",
            form.len()
        ),
    );
    let json = serde_json::from_str(&body).unwrap_or_else(|_| panic!("{path}: {status} {body}"));
    (status, json)
}
