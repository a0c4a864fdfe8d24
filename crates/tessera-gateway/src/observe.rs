//! One decision event per request: a structured log line (target `tessera::gateway::audit`)
//! and the Prometheus counter `tessera_gateway_requests_total{route, decision}`.
//!
//! An event carries who (sub, client_id, jti) and why, never a token: the `Identity` it reads
//! holds no credential.

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::HashMap;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{OnceLock, PoisonError, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use http::StatusCode;
use metrics::Counter;

use crate::identity::Identity;

/// What the gateway decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    Allowed,
    Anonymous,
    Unauthenticated,
    Forbidden,
    RateLimited,
    Unavailable,
    NoRoute,
    TooLarge,
    BadRequest,
    UpstreamError,
    UpstreamTimeout,
    /// The authorization server would not exchange the client's token for the upstream's.
    ExchangeRefused,
    /// No token could be obtained for the upstream (the gateway's side failed).
    ExchangeFailed,
    Error,
}

/// How many decisions there are (the counters of a route are indexed by decision).
const DECISIONS: usize = Decision::Error as usize + 1;

/// The counter of `route` and `decision`. Handles are made once per pair and kept: looking one
/// up in the recorder builds an owned key and takes its lock, which is not paid per request.
/// The recorder must be installed before the first request (`Gateway::new` does).
fn counter(route: &str, decision: Decision) -> Counter {
    type Routes = HashMap<Box<str>, [Option<Counter>; DECISIONS]>;
    static COUNTERS: OnceLock<RwLock<Routes>> = OnceLock::new();
    let counters = COUNTERS.get_or_init(RwLock::default);
    let found = counters
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .get(route)
        .and_then(|by_decision| by_decision[decision as usize].clone());
    if let Some(counter) = found {
        return counter;
    }
    let counter = metrics::counter!(
        "tessera_gateway_requests_total",
        "route" => route.to_owned(),
        "decision" => decision.as_str()
    );
    let mut counters = counters.write().unwrap_or_else(PoisonError::into_inner);
    counters.entry(route.into()).or_insert_with(|| std::array::from_fn(|_| None))
        [decision as usize] = Some(counter.clone());
    counter
}

impl Decision {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Allowed => "allowed",
            Self::Anonymous => "anonymous",
            Self::Unauthenticated => "unauthenticated",
            Self::Forbidden => "forbidden",
            Self::RateLimited => "rate_limited",
            Self::Unavailable => "unavailable",
            Self::NoRoute => "no_route",
            Self::TooLarge => "too_large",
            Self::BadRequest => "bad_request",
            Self::UpstreamError => "upstream_error",
            Self::UpstreamTimeout => "upstream_timeout",
            Self::ExchangeRefused => "exchange_refused",
            Self::ExchangeFailed => "exchange_failed",
            Self::Error => "error",
        }
    }
}

/// The decision event of one request, built up along the way and emitted once.
#[must_use = "an event is recorded only by emit()"]
pub struct Event<'a> {
    route: &'a str,
    decision: Decision,
    reason: &'static str,
    identity: Option<&'a Identity>,
    status: Option<StatusCode>,
}

impl<'a> Event<'a> {
    pub fn new(route: &'a str, decision: Decision, reason: &'static str) -> Self {
        Self { route, decision, reason, identity: None, status: None }
    }

    pub fn identity(mut self, identity: &'a Identity) -> Self {
        self.identity = Some(identity);
        self
    }

    pub fn decision(mut self, decision: Decision, reason: &'static str) -> Self {
        self.decision = decision;
        self.reason = reason;
        self
    }

    /// The upstream's status, for an allowed request.
    pub fn status(mut self, status: StatusCode) -> Self {
        self.status = Some(status);
        self
    }

    pub fn emit(self) {
        if tracing::enabled!(target: AUDIT_TARGET, tracing::Level::INFO) {
            if JSON_TO_STDERR.load(Ordering::Relaxed) {
                self.write_json_line();
            } else {
                let (sub, client_id, jti) = self.who();
                tracing::info!(
                    target: AUDIT_TARGET,
                    route = self.route,
                    decision = self.decision.as_str(),
                    reason = self.reason,
                    sub,
                    client_id,
                    jti,
                    upstream_status = self.status.map(|s| s.as_u16()),
                    "decision"
                );
            }
        }
        counter(self.route, self.decision).increment(1);
    }

    fn who(&self) -> (&str, &str, &str) {
        match self.identity {
            Some(i) => (i.subject(), i.client_id(), i.jti().unwrap_or("")),
            None => ("", "", ""),
        }
    }

    /// Writes the event to stderr as the JSON log subscriber would, redacted as every log
    /// line is (`telemetry::redact`), in one write.
    fn write_json_line(&self) {
        thread_local! {
            static LINE: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
        }
        LINE.with_borrow_mut(|line| {
            if let Some(text) = self.redacted_line(SystemTime::now(), line) {
                // A line that cannot be written is dropped; there is nowhere to report it.
                let _ = std::io::stderr().lock().write_all(text.as_bytes());
            }
        });
    }

    /// The JSON line at `now`, built in `buf`, as `telemetry::redact` passes it.
    fn redacted_line<'b>(&self, now: SystemTime, buf: &'b mut Vec<u8>) -> Option<Cow<'b, str>> {
        buf.clear();
        self.json_line(now, buf);
        // Built from `&str`s and ASCII, the line is UTF-8; were it not, nothing is written
        // rather than something unredacted.
        std::str::from_utf8(buf).ok().map(tessera_server::telemetry::redact)
    }

    /// The line `tracing_subscriber`'s JSON format (flattened, as `telemetry` installs it)
    /// makes of the `tracing::info!` in [`Event::emit`]: the same keys in the same order, the
    /// same timestamp format, strings escaped by serde_json.
    fn json_line(&self, now: SystemTime, out: &mut Vec<u8>) {
        let (sub, client_id, jti) = self.who();
        out.extend_from_slice(b"{\"timestamp\":\"");
        push_timestamp(out, now);
        out.extend_from_slice(b"\",\"level\":\"INFO\",\"message\":\"decision\",\"route\":");
        push_json_str(out, self.route);
        out.extend_from_slice(b",\"decision\":");
        push_json_str(out, self.decision.as_str());
        out.extend_from_slice(b",\"reason\":");
        push_json_str(out, self.reason);
        out.extend_from_slice(b",\"sub\":");
        push_json_str(out, sub);
        out.extend_from_slice(b",\"client_id\":");
        push_json_str(out, client_id);
        out.extend_from_slice(b",\"jti\":");
        push_json_str(out, jti);
        if let Some(status) = self.status {
            out.extend_from_slice(b",\"upstream_status\":");
            push_number(out, u64::from(status.as_u16()), 1);
        }
        out.extend_from_slice(b",\"target\":\"");
        out.extend_from_slice(AUDIT_TARGET.as_bytes());
        out.extend_from_slice(b"\"}\n");
    }
}

/// The target of the decision events (what `TESSERA_LOG` filters on).
const AUDIT_TARGET: &str = "tessera::gateway::audit";

/// Whether [`Event::emit`] writes its own JSON line to stderr instead of handing the event to
/// the `tracing` subscriber.
static JSON_TO_STDERR: AtomicBool = AtomicBool::new(false);

/// Decision events are written to stderr as JSON lines by the gateway itself, in the JSON log
/// format, instead of being formatted by the `tracing` subscriber: its generic formatting
/// (field visitors, a map serializer, the line's copy through the redacting writer) was a
/// fifth of a proxied request's cost. For a process whose log subscriber writes JSON to
/// stderr (`tessera gateway`'s default); the `TESSERA_LOG` filter still applies.
pub fn write_audit_json_to_stderr() {
    JSON_TO_STDERR.store(true, Ordering::Relaxed);
}

/// `s` as a JSON string, escaped as serde_json escapes it.
fn push_json_str(out: &mut Vec<u8>, s: &str) {
    // Serialising a `&str` into a `Vec` cannot fail.
    let _ = serde_json::to_writer(&mut *out, s);
}

/// `n` in decimal, zero-padded to `width` digits.
fn push_number(out: &mut Vec<u8>, n: u64, width: usize) {
    let mut digits = [b'0'; 20];
    let mut at = digits.len();
    let mut rest = n;
    loop {
        at -= 1;
        digits[at] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    let start = at.min(digits.len() - width.min(digits.len()));
    out.extend_from_slice(&digits[start..]);
}

/// `now` as `tracing_subscriber`'s system-time format writes it: RFC 3339 in UTC with
/// microseconds, `2026-12-06T04:01:58.329111Z`.
fn push_timestamp(out: &mut Vec<u8>, now: SystemTime) {
    let since = now.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    // Seconds since the epoch fit an i64 until the year 292 billion; the date is then ≥ 1970.
    let (year, month, day) = tessera_core::clock::civil_from_days((secs / 86_400) as i64);
    let [year, month, day] = [year, month, day].map(i64::unsigned_abs);
    let of_day = secs % 86_400;
    push_number(out, year, 4);
    out.push(b'-');
    push_number(out, month, 2);
    out.push(b'-');
    push_number(out, day, 2);
    out.push(b'T');
    push_number(out, of_day / 3600, 2);
    out.push(b':');
    push_number(out, of_day / 60 % 60, 2);
    out.push(b':');
    push_number(out, of_day % 60, 2);
    out.push(b'.');
    push_number(out, u64::from(since.subsec_micros()), 6);
    out.push(b'Z');
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(data);
            Ok(data.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// The line the JSON log subscriber makes of `event` (through `tracing`).
    fn through_tracing(event: Event<'_>) -> String {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tessera_server::telemetry::subscriber(
            tessera_server::config::LogFormat::Json,
            move || writer.clone(),
            "info",
        );
        tracing::subscriber::with_default(subscriber, || event.emit());
        String::from_utf8(captured.0.lock().unwrap().clone()).unwrap()
    }

    fn without_timestamp(line: &str) -> &str {
        &line[line.find(r#""level""#).unwrap()..]
    }

    // The hand-built audit line is the line tracing-subscriber's JSON format made of the same
    // event: same keys, same order, same escaping (log readers and the CLI test rely on it).
    #[test]
    fn audit_json_line_is_the_json_subscribers_line() {
        let route = "r\"ou\\te\n\u{1}é";
        let cases = [
            Event::new(route, Decision::NoRoute, "no route matches"),
            Event::new("api", Decision::Allowed, "").status(StatusCode::BAD_GATEWAY),
        ];
        let again = [
            Event::new(route, Decision::NoRoute, "no route matches"),
            Event::new("api", Decision::Allowed, "").status(StatusCode::BAD_GATEWAY),
        ];
        for (event, same) in cases.into_iter().zip(again) {
            let expected = through_tracing(event);
            let mut built = Vec::new();
            same.json_line(SystemTime::now(), &mut built);
            let built = String::from_utf8(built).unwrap();
            assert_eq!(without_timestamp(&built), without_timestamp(&expected));
            let parsed: serde_json::Value = serde_json::from_str(&built).unwrap();
            assert_eq!(parsed["target"], AUDIT_TARGET);
        }
    }

    #[test]
    fn audit_timestamp_is_rfc3339_utc_with_microseconds() {
        let cases = [
            (0, 0, "1970-01-01T00:00:00.000000Z"),
            (951_782_400, 7, "2000-02-29T00:00:00.000007Z"),
            (1_796_529_718, 329_111, "2026-12-06T04:01:58.329111Z"),
            (4_102_444_799, 999_999, "2099-12-31T23:59:59.999999Z"),
        ];
        for (secs, micros, expected) in cases {
            let mut out = Vec::new();
            push_timestamp(&mut out, UNIX_EPOCH + Duration::new(secs, micros * 1000));
            assert_eq!(String::from_utf8(out).unwrap(), expected);
        }
    }

    // R4.3: the audit line passes the same redaction as every log line: a token that reached
    // one of its values (here a route name) is blanked.
    #[test]
    fn r4_3_audit_json_line_is_redacted() {
        let jwt = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln";
        let event = Event::new(jwt, Decision::NoRoute, "no route matches");
        let mut buf = Vec::new();
        let line = event.redacted_line(SystemTime::now(), &mut buf).unwrap();
        assert!(!line.contains("c2ln"), "{line}");
        assert!(line.contains("[redacted]"), "{line}");
    }
}
