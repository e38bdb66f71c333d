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

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::body::{to_bytes, Body};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

#[derive(Debug, Clone)]
pub struct Call {
    pub region: String,
    pub service: String,
    pub action: String,
    /// The query string of S3 requests (`uploads`, `versionId=...`).
    pub query: String,
    /// The Object Lock mode the request asked for, if any.
    pub lock_mode: Option<String>,
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
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                let app = axum::Router::new().fallback(forward).with_state(state);
                axum::serve(listener, app).await.unwrap();
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

async fn forward(State(s): State<Arc<Shared>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let body = to_bytes(body, 1 << 30).await.unwrap_or_default();
    let (region, service) = scope(&parts.headers);
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
    });

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
    builder.body(Body::from(out)).unwrap()
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
