//! A thin HTTP layer in front of moto that makes it behave more like AWS
//! where moto is too kind, and that records who was called:
//!
//! - RDS resources come back `available` at once from moto; the proxy
//!   answers the first `slow_polls` describes of each request with a
//!   not-yet-available status, so Lifeboat's waits really poll.
//! - moto deletes an instance or cluster without asking about a final
//!   snapshot; AWS refuses unless `SkipFinalSnapshot=true` or a final
//!   snapshot name is given. The proxy refuses likewise.
//! - Every request's region and service are read off its SigV4
//!   credential scope and logged, so a test can prove a region was never
//!   called.
//! - `fail_instances` makes every drill instance report a hopeless status
//!   (`incompatible-restore`), to fail a drill half-way.
//! - A request asking to bypass a governance Object Lock
//!   (`x-amz-bypass-governance-retention`) is refused: Lifeboat must never
//!   send one.
//! - moto refuses a CopyObject that sets an Object Lock retention unless it
//!   carries `x-amz-sdk-checksum-algorithm` (its rule for PutObject, whose
//!   body S3 must verify). AWS asks no such thing of a copy, which has no
//!   body (boto/s3transfer#224 copies into locked buckets without it), and
//!   the SDK sends a copy's checksum algorithm as `x-amz-checksum-algorithm`:
//!   the proxy repeats it under the name moto looks for.
//! - Network faults (`inject`): at a chosen rate, drawn from a seeded RNG
//!   so a run reproduces, a request meets a connection reset, a stall
//!   longer than the client's read timeout, a truncated body, an HTTP 500,
//!   S3's 503 SlowDown or RDS's Throttling. Resets, stalls and truncations
//!   strike after moto has done the work (the answer is lost, the worst
//!   case for a retry); the error answers strike before it.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::{to_bytes, Body, Bytes};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::serve::ListenerExt;
use futures_util::StreamExt;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// A network fault the proxy can inject.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Fault {
    /// The connection is closed with no answer.
    Reset,
    /// The answer is held for [`Proxy::STALL`], past the plan's read timeout.
    Stall,
    /// The answer's Content-Length promises more than is sent before the
    /// connection closes.
    Truncate,
    /// HTTP 500 with the service's internal-error body.
    Status500,
    /// S3's 503 SlowDown (S3 requests only).
    SlowDown,
    /// RDS's 400 Throttling (RDS requests only).
    Throttle,
}

impl Fault {
    pub const ALL: [Fault; 6] = [
        Fault::Reset,
        Fault::Stall,
        Fault::Truncate,
        Fault::Status500,
        Fault::SlowDown,
        Fault::Throttle,
    ];

    fn applies(self, service: &str, head: bool) -> bool {
        match self {
            Fault::SlowDown => service == "s3",
            Fault::Throttle => service == "rds",
            // A HEAD answer has no body to cut short.
            Fault::Truncate => !head,
            _ => true,
        }
    }
}

struct Injection {
    fault: Fault,
    /// Out of 1,000 requests the fault applies to.
    per_mille: u32,
    rng: StdRng,
}

#[derive(Debug, Clone)]
pub struct Call {
    pub region: String,
    pub service: String,
    pub action: String,
    /// The query string of S3 requests (`uploads`, `versionId=...`).
    pub query: String,
    /// The Object Lock mode the request asked for, if any.
    pub lock_mode: Option<String>,
    /// When the proxy received it.
    pub at: Instant,
    /// The fault injected into it, if any.
    pub fault: Option<Fault>,
}

#[derive(Default)]
struct Shared {
    upstream: String,
    slow_polls: usize,
    fail_instances: bool,
    /// S3 copies (PUT with x-amz-copy-source) past this many are refused
    /// with AccessDenied.
    copies_allowed: Mutex<Option<usize>>,
    /// `HOST:PORT` to report as the endpoint of drill instances.
    endpoint_override: Mutex<Option<(String, u16)>>,
    seen: Mutex<HashMap<String, usize>>,
    calls: Mutex<Vec<Call>>,
    rewrites: Mutex<usize>,
    refused: Mutex<Vec<String>>,
    injection: Mutex<Option<Injection>>,
    /// A duplicate of each accepted connection's socket, by peer address,
    /// so a handler can close its own connection (a reset).
    sockets: Mutex<HashMap<SocketAddr, std::net::TcpStream>>,
}

pub struct Proxy {
    pub endpoint: String,
    shared: Arc<Shared>,
}

impl Proxy {
    /// Starts a proxy to `upstream` on a free loopback port, serving from
    /// its own thread for the life of the test process.
    pub fn start(upstream: &str, slow_polls: usize, fail_instances: bool) -> Proxy {
        let shared = Arc::new(Shared {
            upstream: upstream.to_string(),
            slow_polls,
            fail_instances,
            ..Default::default()
        });
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let state = shared.clone();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let sockets = state.clone();
                let listener =
                    tokio::net::TcpListener::from_std(listener)
                        .unwrap()
                        .tap_io(move |tcp| {
                            use std::os::fd::AsFd;
                            let (Ok(peer), Ok(fd)) =
                                (tcp.peer_addr(), tcp.as_fd().try_clone_to_owned())
                            else {
                                return;
                            };
                            let mut all = sockets.sockets.lock().unwrap();
                            all.retain(|_, s| s.peer_addr().is_ok());
                            all.insert(peer, std::net::TcpStream::from(fd));
                        });
                let app = axum::Router::new().fallback(forward).with_state(state);
                axum::serve(
                    listener,
                    app.into_make_service_with_connect_info::<SocketAddr>(),
                )
                .await
                .unwrap();
            });
        });
        Proxy { endpoint, shared }
    }

    /// Drill instances report this endpoint (a real server the test runs)
    /// instead of moto's made-up hostname.
    pub fn override_endpoint(&self, host: &str, port: u16) {
        *self.shared.endpoint_override.lock().unwrap() = Some((host.to_string(), port));
    }

    /// Refuses S3 copies after `n` more have gone through.
    pub fn refuse_copies_after(&self, n: usize) {
        *self.shared.copies_allowed.lock().unwrap() = Some(n);
    }

    pub fn calls(&self) -> Vec<Call> {
        self.shared.calls.lock().unwrap().clone()
    }

    pub fn clear_calls(&self) {
        self.shared.calls.lock().unwrap().clear();
    }

    /// How many describe answers were held back as not yet available.
    pub fn rewrites(&self) -> usize {
        *self.shared.rewrites.lock().unwrap()
    }

    /// Requests refused for breaking a rule AWS enforces and moto does not.
    pub fn refused(&self) -> Vec<String> {
        self.shared.refused.lock().unwrap().clone()
    }

    /// How long a stalled answer is held: past the read timeout the
    /// fault tests give their plans ([`Proxy::READ_TIMEOUT`]).
    pub const STALL: Duration = Duration::from_millis(1500);
    /// The `[aws] read_timeout` of plans meeting stalls.
    pub const READ_TIMEOUT: &'static str = "500ms";

    /// From now on, `percent` % of the requests `fault` applies to meet it,
    /// drawn from an RNG seeded with `seed`.
    pub fn inject(&self, fault: Fault, percent: u32, seed: u64) {
        *self.shared.injection.lock().unwrap() = Some(Injection {
            fault,
            per_mille: percent * 10,
            rng: StdRng::seed_from_u64(seed),
        });
    }

    /// Ends fault injection.
    pub fn heal(&self) {
        *self.shared.injection.lock().unwrap() = None;
    }
}

/// `Credential=AKID/DATE/REGION/SERVICE/aws4_request` → (region, service).
fn scope(headers: &HeaderMap) -> (String, String) {
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let cred = auth
        .split("Credential=")
        .nth(1)
        .unwrap_or("")
        .split(',')
        .next()
        .unwrap_or("");
    let parts: Vec<&str> = cred.split('/').collect();
    (
        parts.get(2).unwrap_or(&"?").to_string(),
        parts.get(3).unwrap_or(&"?").to_string(),
    )
}

fn form_value<'a>(body: &'a str, key: &str) -> Option<&'a str> {
    body.split('&')
        .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
}

fn aws_error(code: &str, message: &str) -> Response {
    let xml = format!(
        "<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code><Message>{message}</Message></Error><RequestId>proxy</RequestId></ErrorResponse>"
    );
    Response::builder()
        .status(StatusCode::BAD_REQUEST)
        .header("content-type", "text/xml")
        .body(Body::from(xml))
        .unwrap()
}

/// The answer to a request chosen for `fault` before it is forwarded, or
/// `None` when the fault strikes the answer.
fn refusal(fault: Fault, service: &str) -> Option<Response> {
    let (status, xml) = match (fault, service) {
        (Fault::Status500, "rds") => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "<ErrorResponse><Error><Type>Receiver</Type><Code>InternalFailure</Code><Message>injected by the test proxy</Message></Error><RequestId>proxy</RequestId></ErrorResponse>",
        ),
        (Fault::Status500, _) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "<Error><Code>InternalError</Code><Message>We encountered an internal error. Please try again.</Message></Error>",
        ),
        (Fault::SlowDown, _) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>",
        ),
        (Fault::Throttle, _) => return Some(aws_error("Throttling", "Rate exceeded")),
        (Fault::Reset | Fault::Stall | Fault::Truncate, _) => return None,
    };
    Some(
        Response::builder()
            .status(status)
            .header("content-type", "application/xml")
            .body(Body::from(xml))
            .unwrap(),
    )
}

/// A body of which only the first half of `full` is sent before the
/// connection is closed (its Content-Length is set to more than `full`).
fn truncated(full: Vec<u8>, socket: Option<std::net::TcpStream>) -> Body {
    let half = full[..full.len() / 2].to_vec();
    let stream =
        futures_util::stream::once(async move { Ok::<_, std::io::Error>(Bytes::from(half)) })
            .chain(futures_util::stream::once(async move {
                // Let the first half reach the client, then close: hyper
                // alone keeps the connection open after a body error.
                tokio::time::sleep(Duration::from_millis(20)).await;
                if let Some(socket) = socket {
                    let _ = socket.shutdown(std::net::Shutdown::Both);
                }
                Err(std::io::Error::other("truncated by the test proxy"))
            }));
    Body::from_stream(stream)
}

async fn forward(
    State(s): State<Arc<Shared>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    req: Request,
) -> Response {
    let at = Instant::now();
    let (parts, body) = req.into_parts();
    let body = to_bytes(body, 1 << 30).await.unwrap_or_default();
    let (region, service) = scope(&parts.headers);
    let head = parts.method == axum::http::Method::HEAD;
    let fault = s.injection.lock().unwrap().as_mut().and_then(|i| {
        let strikes = i.fault.applies(&service, head) && i.rng.random_range(0..1000) < i.per_mille;
        strikes.then_some(i.fault)
    });
    let text = String::from_utf8_lossy(&body).to_string();
    let action = if service == "rds" {
        form_value(&text, "Action").unwrap_or("?").to_string()
    } else {
        format!("{} {}", parts.method, parts.uri.path())
    };
    let header = |name: &str| {
        parts
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(String::from)
    };
    s.calls.lock().unwrap().push(Call {
        region: region.clone(),
        service: service.clone(),
        action: action.clone(),
        query: parts.uri.query().unwrap_or("").to_string(),
        lock_mode: header("x-amz-object-lock-mode"),
        at,
        fault,
    });
    if let Some(answer) = fault.and_then(|f| refusal(f, &service)) {
        return answer;
    }

    if parts
        .headers
        .contains_key("x-amz-bypass-governance-retention")
    {
        s.refused
            .lock()
            .unwrap()
            .push(format!("{action}: x-amz-bypass-governance-retention"));
        let xml = "<Error><Code>AccessDenied</Code><Message>the test proxy refuses bypassing a governance lock</Message></Error>";
        return Response::builder()
            .status(StatusCode::FORBIDDEN)
            .header("content-type", "application/xml")
            .body(Body::from(xml))
            .unwrap();
    }

    if matches!(action.as_str(), "DeleteDBInstance" | "DeleteDBCluster")
        && form_value(&text, "SkipFinalSnapshot") != Some("true")
        && form_value(&text, "FinalDBSnapshotIdentifier").is_none()
    {
        s.refused.lock().unwrap().push(action.clone());
        return aws_error(
            "InvalidParameterCombination",
            "FinalDBSnapshotIdentifier is required unless SkipFinalSnapshot is specified.",
        );
    }

    if parts.method == axum::http::Method::PUT && parts.headers.contains_key("x-amz-copy-source") {
        let mut allowed = s.copies_allowed.lock().unwrap();
        if let Some(n) = allowed.as_mut() {
            if *n == 0 {
                let xml =
                    "<Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>";
                return Response::builder()
                    .status(StatusCode::FORBIDDEN)
                    .header("content-type", "application/xml")
                    .body(Body::from(xml))
                    .unwrap();
            }
            *n -= 1;
        }
    }

    lifeboat::tls::install_default_provider();
    let client = reqwest::Client::new();
    let url = format!(
        "{}{}",
        s.upstream,
        parts
            .uri
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/")
    );
    let mut fwd = client.request(parts.method.clone(), url);
    for (k, v) in parts.headers.iter() {
        if !matches!(
            k.as_str(),
            "host" | "content-length" | "transfer-encoding" | "connection"
        ) {
            fwd = fwd.header(k, v);
        }
    }
    let locked_copy = parts.headers.contains_key("x-amz-copy-source")
        && parts.headers.contains_key("x-amz-object-lock-mode")
        && !parts.headers.contains_key("x-amz-sdk-checksum-algorithm");
    if let (true, Some(algorithm)) = (locked_copy, header("x-amz-checksum-algorithm")) {
        fwd = fwd.header("x-amz-sdk-checksum-algorithm", algorithm);
    }
    let resp = match fwd.body(body.to_vec()).send().await {
        Ok(r) => r,
        Err(e) => {
            return Response::builder()
                .status(StatusCode::BAD_GATEWAY)
                .body(Body::from(e.to_string()))
                .unwrap()
        }
    };
    let status = resp.status();
    let headers = resp.headers().clone();
    let mut out = resp.bytes().await.unwrap_or_default().to_vec();

    if service == "rds" && action.starts_with("Describe") {
        let mut xml = String::from_utf8_lossy(&out).to_string();
        let polls = {
            let mut seen = s.seen.lock().unwrap();
            let n = seen.entry(text.clone()).or_default();
            *n += 1;
            *n
        };
        if s.fail_instances && action == "DescribeDBInstances" && xml.contains("lifeboat-drill") {
            xml = xml.replace(
                "<DBInstanceStatus>available</DBInstanceStatus>",
                "<DBInstanceStatus>incompatible-restore</DBInstanceStatus>",
            );
        } else if polls <= s.slow_polls
            && (xml.contains("<Status>available</Status>")
                || xml.contains("<DBInstanceStatus>available</DBInstanceStatus>"))
        {
            xml = xml
                .replace("<Status>available</Status>", "<Status>creating</Status>")
                .replace(
                    "<DBInstanceStatus>available</DBInstanceStatus>",
                    "<DBInstanceStatus>creating</DBInstanceStatus>",
                );
            *s.rewrites.lock().unwrap() += 1;
        }
        if let Some((host, port)) = s.endpoint_override.lock().unwrap().clone() {
            if action == "DescribeDBInstances" && xml.contains("lifeboat-drill") {
                xml = replace_element(&xml, "Address", &host);
                xml = replace_element(&xml, "Port", &port.to_string());
            }
        }
        out = xml.into_bytes();
    }

    let mut builder = Response::builder().status(status.as_u16());
    // A HEAD answer has no body: its content-length is the object's size.
    let head = parts.method == axum::http::Method::HEAD;
    for (k, v) in headers.iter() {
        let framing = match k.as_str() {
            "content-length" => !head,
            "transfer-encoding" | "connection" => true,
            _ => false,
        };
        if !framing {
            builder = builder.header(k, v);
        }
    }
    match fault {
        Some(Fault::Reset) => {
            if let Some(socket) = s.sockets.lock().unwrap().remove(&peer) {
                let _ = socket.shutdown(std::net::Shutdown::Both);
            }
            builder.body(Body::empty()).unwrap()
        }
        Some(Fault::Stall) => {
            tokio::time::sleep(Proxy::STALL).await;
            builder.body(Body::from(out)).unwrap()
        }
        Some(Fault::Truncate) => builder
            .header("content-length", out.len() + 64)
            .body(truncated(out, s.sockets.lock().unwrap().remove(&peer)))
            .unwrap(),
        _ => builder.body(Body::from(out)).unwrap(),
    }
}

/// `<tag>anything</tag>` → `<tag>value</tag>`, everywhere.
fn replace_element(xml: &str, tag: &str, value: &str) -> String {
    let (open, close) = (format!("<{tag}>"), format!("</{tag}>"));
    let mut out = String::new();
    let mut rest = xml;
    while let Some(i) = rest.find(&open) {
        let Some(j) = rest[i..].find(&close) else {
            break;
        };
        out.push_str(&rest[..i]);
        out.push_str(&open);
        out.push_str(value);
        out.push_str(&close);
        rest = &rest[i + j + close.len()..];
    }
    out.push_str(rest);
    out
}
