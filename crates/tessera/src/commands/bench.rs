//! `tessera bench`: a load generator for any OAuth 2.1 / OpenID Connect server that publishes
//! discovery metadata. It finds the endpoints through discovery, runs one scenario for a warm-up
//! period (not measured) and then for the measured duration, and reports successful requests per
//! second, latency percentiles (HdrHistogram) and every failure counted by kind.
//!
//! Closed loop (default): each of N connections sends its next request when the previous one
//! answered. Open loop (`--rate R`): each connection has a fixed schedule (R/N per second, phases
//! staggered), and latency is measured from the *scheduled* send time, so that a stalled server
//! is not hidden by the generator waiting for it (coordinated omission).

use std::collections::{BTreeMap, HashMap};
use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};
use hdrhistogram::Histogram;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Value, json};
use tokio::time::Instant;

#[derive(Args)]
pub struct BenchArgs {
    /// The issuer URL; endpoints come from its discovery document.
    #[arg(long, value_name = "URL")]
    issuer: String,
    /// What to measure.
    #[arg(long, value_enum)]
    scenario: Scenario,
    /// The client that authenticates (client_secret_basic).
    #[arg(long, value_name = "ID")]
    client_id: Option<String>,
    /// Its secret (or the environment variable TESSERA_BENCH_CLIENT_SECRET, which keeps it out
    /// of the process list).
    #[arg(
        long,
        value_name = "SECRET",
        env = "TESSERA_BENCH_CLIENT_SECRET",
        hide_env_values = true
    )]
    client_secret: Option<String>,
    /// Scope to request with client_credentials (default: the client's default scope).
    #[arg(long)]
    scope: Option<String>,
    /// Concurrent connections (one task each).
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    connections: u32,
    /// Measured duration, e.g. `15s`, `500ms`, `2m`.
    #[arg(long, default_value = "15s", value_parser = parse_duration)]
    duration: Duration,
    /// Warm-up before measuring (requests run but are not counted).
    #[arg(long, default_value = "3s", value_parser = parse_duration)]
    warmup: Duration,
    /// Open loop: total requests per second, spread over the connections.
    #[arg(long, value_name = "R")]
    rate: Option<f64>,
    /// `introspect` only: alternate the real token with random unknown tokens (same as the
    /// `introspect-mix` scenario).
    #[arg(long)]
    mix: bool,
    /// Validate every Nth successful response more deeply (client-credentials: verify the
    /// access token against the JWKS). 0 turns it off.
    #[arg(long, default_value_t = 100)]
    sample_every: u64,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Scenario {
    /// POST /token grant_type=client_credentials, client_secret_basic.
    ClientCredentials,
    /// POST /introspect with one valid token.
    Introspect,
    /// POST /introspect alternating the valid token and random unknown tokens.
    IntrospectMix,
    /// Verify one JWT locally against the JWKS (no network in the loop).
    JwksVerify,
}

impl Scenario {
    fn name(self) -> &'static str {
        match self {
            Self::ClientCredentials => "client-credentials",
            Self::Introspect => "introspect",
            Self::IntrospectMix => "introspect-mix",
            Self::JwksVerify => "jwks-verify",
        }
    }
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (number, unit) = match s.find(|c: char| !(c.is_ascii_digit() || c == '.')) {
        Some(i) => s.split_at(i),
        None => (s, "s"),
    };
    let value: f64 = number.parse().map_err(|_| format!("not a duration: {s:?}"))?;
    let seconds = match unit {
        "ms" => value / 1000.0,
        "s" => value,
        "m" => value * 60.0,
        _ => return Err(format!("unknown unit in {s:?} (use ms, s or m)")),
    };
    Duration::try_from_secs_f64(seconds).map_err(|e| format!("{s:?}: {e}"))
}

/// The endpoints a scenario needs, from discovery.
struct Endpoints {
    issuer: String,
    token: String,
    introspection: Option<String>,
    jwks_uri: Option<String>,
}

async fn discover(http: &reqwest::Client, issuer: &str) -> anyhow::Result<Endpoints> {
    let base = issuer.trim_end_matches('/');
    let mut last_error = None;
    for path in ["/.well-known/openid-configuration", "/.well-known/oauth-authorization-server"] {
        let url = format!("{base}{path}");
        match http.get(&url).send().await {
            Ok(r) if r.status().is_success() => {
                let doc: Value =
                    r.json().await.with_context(|| format!("{url}: not a JSON document"))?;
                let text = |k: &str| doc.get(k).and_then(Value::as_str).map(str::to_owned);
                return Ok(Endpoints {
                    issuer: text("issuer").unwrap_or_else(|| base.to_owned()),
                    token: text("token_endpoint")
                        .with_context(|| format!("{url} has no token_endpoint"))?,
                    introspection: text("introspection_endpoint"),
                    jwks_uri: text("jwks_uri"),
                });
            }
            Ok(r) => last_error = Some(format!("{url}: HTTP {}", r.status())),
            Err(e) => last_error = Some(format!("{url}: {e}")),
        }
    }
    bail!("discovery failed: {}", last_error.unwrap_or_default())
}

/// The issuer's signing keys, by `kid`.
struct Jwks {
    issuer: String,
    keys: HashMap<String, (DecodingKey, Algorithm)>,
}

impl Jwks {
    async fn fetch(http: &reqwest::Client, endpoints: &Endpoints) -> anyhow::Result<Self> {
        let url = endpoints.jwks_uri.as_deref().context("discovery has no jwks_uri")?;
        let doc: Value = http
            .get(url)
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .with_context(|| format!("cannot fetch {url}"))?
            .json()
            .await
            .with_context(|| format!("{url}: not JSON"))?;
        let mut keys = HashMap::new();
        // One key at a time, so that a key type this tool does not know does not lose the rest.
        for raw in doc.get("keys").and_then(Value::as_array).into_iter().flatten() {
            let Ok(jwk) = serde_json::from_value::<jsonwebtoken::jwk::Jwk>(raw.clone()) else {
                continue;
            };
            let (Some(kid), Ok(key)) = (jwk.common.key_id.clone(), DecodingKey::from_jwk(&jwk))
            else {
                continue;
            };
            let alg = raw
                .get("alg")
                .and_then(Value::as_str)
                .and_then(|a| a.parse::<Algorithm>().ok())
                .unwrap_or(Algorithm::ES256);
            keys.insert(kid, (key, alg));
        }
        anyhow::ensure!(!keys.is_empty(), "{url} holds no usable key");
        Ok(Self { issuer: endpoints.issuer.clone(), keys })
    }

    /// Verifies a JWT's signature with the key its `kid` names, and its `iss` and `exp`.
    fn verify(&self, token: &str) -> Result<(), &'static str> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| "invalid_token")?;
        let kid = header.kid.as_deref().ok_or("invalid_token")?;
        let (key, alg) = self.keys.get(kid).ok_or("invalid_token")?;
        if header.alg != *alg {
            return Err("invalid_token");
        }
        let mut validation = Validation::new(*alg);
        validation.set_issuer(&[&self.issuer]);
        validation.validate_aud = false;
        validation.set_required_spec_claims(&["exp", "iss"]);
        jsonwebtoken::decode::<Value>(token, key, &validation)
            .map(drop)
            .map_err(|_| "invalid_token")
    }
}

/// Everything a worker needs; shared read-only.
struct Plan {
    scenario: Scenario,
    http: reqwest::Client,
    endpoints: Endpoints,
    client_id: String,
    client_secret: String,
    scope: Option<String>,
    /// introspect, introspect-mix, jwks-verify: the token obtained before the run.
    token: Option<String>,
    jwks: Option<Jwks>,
    sample_every: u64,
}

/// How one request ended: `Ok` or an error kind.
type Outcome = Result<(), String>;

impl Plan {
    /// One unit of work. `n` counts this worker's requests (sampling and the mix use it).
    async fn once(&self, n: u64) -> Outcome {
        match self.scenario {
            Scenario::ClientCredentials => {
                let mut form = vec![("grant_type", "client_credentials")];
                if let Some(scope) = &self.scope {
                    form.push(("scope", scope));
                }
                let request = self
                    .http
                    .post(&self.endpoints.token)
                    .basic_auth(&self.client_id, Some(&self.client_secret))
                    .form(&form);
                let body = send(request).await?;
                let token = body.get("access_token").and_then(Value::as_str);
                let Some(token) = token else { return Err("no_access_token".into()) };
                if self.sample_every > 0 && n.is_multiple_of(self.sample_every) {
                    // A JWT (three parts) is checked against the JWKS; an opaque reference
                    // token cannot be verified locally.
                    if token.split('.').count() == 3
                        && let Some(jwks) = &self.jwks
                    {
                        jwks.verify(token).map_err(str::to_owned)?;
                    }
                }
                Ok(())
            }
            Scenario::Introspect | Scenario::IntrospectMix => {
                let unknown = self.scenario == Scenario::IntrospectMix && n % 2 == 1;
                let random;
                let token = if unknown {
                    random = random_token(n);
                    random.as_str()
                } else {
                    self.token.as_deref().unwrap_or_default()
                };
                let url = self.endpoints.introspection.as_deref().unwrap_or_default();
                let request = self
                    .http
                    .post(url)
                    .basic_auth(&self.client_id, Some(&self.client_secret))
                    .form(&[("token", token)]);
                let body = send(request).await?;
                match (body.get("active").and_then(Value::as_bool), unknown) {
                    (Some(true), false) | (Some(false), true) => Ok(()),
                    (Some(false), false) => Err("inactive_token".into()),
                    (Some(true), true) => Err("unknown_token_active".into()),
                    (None, _) => Err("no_active_member".into()),
                }
            }
            Scenario::JwksVerify => {
                let (Some(jwks), Some(token)) = (&self.jwks, &self.token) else {
                    return Err("no_token".into());
                };
                let result = jwks.verify(token).map_err(str::to_owned);
                // Verification is CPU work with no await: let the timer and the other workers run.
                tokio::task::yield_now().await;
                result
            }
        }
    }
}

/// Sends a request; a 2xx with a JSON object body is a success, anything else an error kind:
/// the OAuth `error` code of a JSON error body, else `http_STATUS`, or a transport error kind.
async fn send(request: reqwest::RequestBuilder) -> Result<Value, String> {
    let response = request.send().await.map_err(|e| transport_kind(&e))?;
    let status = response.status();
    let bytes = response.bytes().await.map_err(|e| transport_kind(&e))?;
    let body: Option<Value> = serde_json::from_slice(&bytes).ok();
    if status.is_success() {
        return match body {
            Some(v @ Value::Object(_)) => Ok(v),
            _ => Err("invalid_json".into()),
        };
    }
    match body.as_ref().and_then(|b| b.get("error")).and_then(Value::as_str) {
        Some(code) => Err(code.chars().take(64).collect()),
        None => Err(format!("http_{}", status.as_u16())),
    }
}

fn transport_kind(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timeout"
    } else if e.is_connect() {
        "connect_error"
    } else if e.is_body() || e.is_decode() {
        "body_error"
    } else {
        "transport_error"
    };
    kind.into()
}

/// A token the server has never issued: 32 pseudo-random bytes, hex (splitmix64).
fn random_token(n: u64) -> String {
    use std::fmt::Write;
    let mut state = n ^ std::process::id() as u64 ^ 0x9e37_79b9_7f4a_7c15;
    let mut out = String::with_capacity(64);
    for _ in 0..4 {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        let _ = write!(out, "{:016x}", z ^ (z >> 31));
    }
    out
}

/// One worker's results.
struct Tally {
    latency: Histogram<u64>,
    ok: u64,
    errors: BTreeMap<String, u64>,
    unfinished: u64,
}

impl Tally {
    fn new() -> Self {
        // Nanoseconds, 3 significant digits, up to an hour.
        let latency = Histogram::new_with_bounds(1, 3_600_000_000_000, 3).expect("valid bounds");
        Self { latency, ok: 0, errors: BTreeMap::new(), unfinished: 0 }
    }
}

struct Window {
    measure_from: Instant,
    end: Instant,
    /// Per-connection interval between scheduled sends, for the open loop.
    interval: Option<Duration>,
    connections: u32,
}

async fn worker(plan: Arc<Plan>, window: Arc<Window>, index: u32, done: Arc<AtomicU64>) -> Tally {
    let mut tally = Tally::new();
    let start = Instant::now();
    // Open loop: stagger the connections' schedules across one interval.
    let mut next = match window.interval {
        Some(interval) => {
            start + interval.mul_f64(f64::from(index) / f64::from(window.connections))
        }
        None => start,
    };
    let mut n: u64 = u64::from(index);
    loop {
        let scheduled = match window.interval {
            Some(interval) => {
                let at = next;
                next += interval;
                if at >= window.end {
                    break;
                }
                tokio::time::sleep_until(at).await;
                at
            }
            None => Instant::now(),
        };
        if scheduled >= window.end {
            break;
        }
        let outcome = tokio::time::timeout_at(window.end, plan.once(n)).await;
        n += 1;
        let finished = Instant::now();
        let Ok(outcome) = outcome else {
            // Still in flight when the run ended: neither a success nor a measured failure.
            if scheduled >= window.measure_from {
                tally.unfinished += 1;
            }
            break;
        };
        if scheduled < window.measure_from {
            continue; // warm-up
        }
        match outcome {
            Ok(()) => {
                tally.ok += 1;
                done.fetch_add(1, Ordering::Relaxed);
                let nanos = finished.duration_since(scheduled).as_nanos();
                tally.latency.saturating_record(u64::try_from(nanos).unwrap_or(u64::MAX).max(1));
            }
            Err(kind) => *tally.errors.entry(kind).or_default() += 1,
        }
    }
    tally
}

pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    let scenario = match (args.scenario, args.mix) {
        (Scenario::Introspect, true) => Scenario::IntrospectMix,
        (s, _) => s,
    };
    if let Some(rate) = args.rate {
        anyhow::ensure!(rate.is_finite() && rate > 0.0, "--rate must be a positive number");
    }
    let http = reqwest::Client::builder()
        .http1_only()
        .tcp_nodelay(true)
        .pool_max_idle_per_host(args.connections as usize)
        .pool_idle_timeout(Duration::from_secs(90))
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(30))
        .user_agent(concat!("tessera-bench/", env!("CARGO_PKG_VERSION")))
        .build()
        .context("cannot set up the HTTP client")?;
    let endpoints = discover(&http, &args.issuer).await?;
    let credentials = match (&args.client_id, &args.client_secret) {
        (Some(id), Some(secret)) => Some((id.clone(), secret.clone())),
        _ => None,
    };
    let (client_id, client_secret) =
        credentials.context("--client-id and --client-secret are needed by every scenario")?;
    if matches!(scenario, Scenario::Introspect | Scenario::IntrospectMix) {
        anyhow::ensure!(
            endpoints.introspection.is_some(),
            "the discovery document has no introspection_endpoint"
        );
    }
    let jwks = match scenario {
        Scenario::ClientCredentials if args.sample_every > 0 => {
            Some(Jwks::fetch(&http, &endpoints).await?)
        }
        Scenario::JwksVerify => Some(Jwks::fetch(&http, &endpoints).await?),
        _ => None,
    };
    let mut plan = Plan {
        scenario,
        http,
        endpoints,
        client_id,
        client_secret,
        scope: args.scope.clone(),
        token: None,
        jwks,
        sample_every: args.sample_every,
    };
    if scenario != Scenario::ClientCredentials {
        plan.token = Some(first_token(&plan).await?);
        if scenario == Scenario::JwksVerify {
            let token = plan.token.as_deref().unwrap_or_default();
            anyhow::ensure!(
                token.split('.').count() == 3,
                "the client gets opaque access tokens: nothing to verify locally"
            );
            if let Some(jwks) = &plan.jwks {
                jwks.verify(token).map_err(|kind| anyhow::anyhow!("the token fails: {kind}"))?;
            }
        }
    }

    let connections = args.connections;
    let start = Instant::now();
    let window = Arc::new(Window {
        measure_from: start + args.warmup,
        end: start + args.warmup + args.duration,
        interval: args.rate.map(|r| Duration::from_secs_f64(f64::from(connections) / r)),
        connections,
    });
    let plan = Arc::new(plan);
    let done = Arc::new(AtomicU64::new(0));
    let progress = progress_bar(&window, args.warmup + args.duration, done.clone());
    let mut tasks = tokio::task::JoinSet::new();
    for index in 0..connections {
        let (plan, window, done) = (plan.clone(), window.clone(), done.clone());
        tasks.spawn(worker(plan, window, index, done));
    }
    let mut total = Tally::new();
    while let Some(joined) = tasks.join_next().await {
        let tally = joined.context("a worker panicked")?;
        total.latency.add(&tally.latency).context("merging histograms")?;
        total.ok += tally.ok;
        total.unfinished += tally.unfinished;
        for (kind, count) in tally.errors {
            *total.errors.entry(kind).or_default() += count;
        }
    }
    if let Some(task) = progress {
        task.abort();
    }
    report(&args, scenario, &total);
    Ok(())
}

/// Gets the one token that introspect and jwks-verify reuse.
async fn first_token(plan: &Plan) -> anyhow::Result<String> {
    let mut form = vec![("grant_type", "client_credentials")];
    if let Some(scope) = &plan.scope {
        form.push(("scope", scope));
    }
    let request = plan
        .http
        .post(&plan.endpoints.token)
        .basic_auth(&plan.client_id, Some(&plan.client_secret))
        .form(&form);
    let body = send(request)
        .await
        .map_err(|kind| anyhow::anyhow!("cannot get a token to start from: {kind}"))?;
    body.get("access_token")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .context("the token response has no access_token")
}

/// A progress bar on standard error, only when it is a terminal. Returns its ticker task.
fn progress_bar(
    window: &Window,
    total: Duration,
    done: Arc<AtomicU64>,
) -> Option<tokio::task::JoinHandle<()>> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = indicatif::ProgressBar::new(total.as_millis().try_into().unwrap_or(u64::MAX));
    if let Ok(style) =
        indicatif::ProgressStyle::with_template("{spinner} [{bar:40}] {elapsed}/{duration} {msg}")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    let (measure_from, end) = (window.measure_from, window.end);
    let start = Instant::now();
    Some(tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(200));
        loop {
            tick.tick().await;
            let now = Instant::now();
            bar.set_position(now.duration_since(start).as_millis().try_into().unwrap_or(0));
            if now < measure_from {
                bar.set_message("warming up");
            } else {
                bar.set_message(format!("{} ok", done.load(Ordering::Relaxed)));
            }
            if now >= end {
                bar.finish_and_clear();
                break;
            }
        }
    }))
}

fn report(args: &BenchArgs, scenario: Scenario, total: &Tally) {
    let seconds = args.duration.as_secs_f64();
    let rps = if seconds > 0.0 { total.ok as f64 / seconds } else { 0.0 };
    let h = &total.latency;
    let ms = |nanos: u64| (nanos as f64 / 1e6 * 1000.0).round() / 1000.0;
    let (p50, p90, p99, p999, max) = if total.ok == 0 {
        (0.0, 0.0, 0.0, 0.0, 0.0)
    } else {
        (
            ms(h.value_at_quantile(0.50)),
            ms(h.value_at_quantile(0.90)),
            ms(h.value_at_quantile(0.99)),
            ms(h.value_at_quantile(0.999)),
            ms(h.max()),
        )
    };
    if args.json {
        let doc = json!({
            "scenario": scenario.name(),
            "connections": args.connections,
            "mode": if args.rate.is_some() { "open" } else { "closed" },
            "rate": args.rate,
            "duration_s": seconds,
            "warmup_s": args.warmup.as_secs_f64(),
            "requests_ok": total.ok,
            "rps": (rps * 10.0).round() / 10.0,
            "latency_ms": { "p50": p50, "p90": p90, "p99": p99, "p999": p999, "max": max },
            "errors": total.errors,
            "unfinished_at_end": total.unfinished,
        });
        println!("{doc}");
        return;
    }
    let mode = match args.rate {
        Some(rate) => format!("open loop, {rate}/s scheduled"),
        None => "closed loop".to_owned(),
    };
    println!("scenario      {}", scenario.name());
    println!("connections   {} ({mode})", args.connections);
    println!("duration      {seconds:.2} s after {:.2} s warm-up", args.warmup.as_secs_f64());
    println!("requests ok   {}", total.ok);
    println!("throughput    {rps:.1} req/s (successes only)");
    println!("latency ms    p50 {p50}  p90 {p90}  p99 {p99}  p99.9 {p999}  max {max}");
    if total.errors.is_empty() {
        println!("errors        none");
    } else {
        println!("errors");
        for (kind, count) in &total.errors {
            println!("  {kind:<30} {count}");
        }
    }
    if total.unfinished > 0 {
        println!("unfinished    {} (in flight when the run ended; not counted)", total.unfinished);
    }
}
