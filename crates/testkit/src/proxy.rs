//! A fault-injecting HTTP proxy on 127.0.0.1 in front of a test registry.
//!
//! It serves one request per client connection: it reads the request head, decides from
//! its rules whether to inject a fault, and otherwise forwards the request upstream with
//! `Connection: close`, piping the body through unchanged (so chunked uploads work without
//! being parsed). The `Host` header is kept, so the registry's absolute `Location` URLs
//! point back at the proxy.
//!
//! It can also page `/tags/list` (`n`, `last`, `Link: <…>; rel="next"`), because Debian's
//! distribution 2.8 ignores `n` and returns every tag at once, while GHCR, Docker Hub and
//! distribution 3 page. Paging is done over the real registry's real answer.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use crate::util::{self, RequestHead, Rng};

/// What to do to a matching request.
#[derive(Debug, Clone)]
pub enum Fault {
    /// Answer with this status (and `Retry-After` if given) instead of forwarding.
    Status {
        code: u16,
        retry_after: Option<String>,
    },
    /// Close the connection with a TCP reset, without answering.
    Reset,
    /// Hold the connection open without answering for this long, then close it.
    Stall(Duration),
    /// Forward, but cut the response body after this many bytes (the head still
    /// announces the full Content-Length).
    TruncateBody(usize),
    /// Forward, but drop this response header (e.g. `Docker-Content-Digest`).
    StripHeader(String),
    /// Answer with exactly this (e.g. a 200 HTML login page from a captive proxy).
    Respond {
        code: u16,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    },
}

impl Fault {
    pub fn status(code: u16) -> Fault {
        Fault::Status {
            code,
            retry_after: None,
        }
    }
    pub fn status_retry_after(code: u16, retry_after: &str) -> Fault {
        Fault::Status {
            code,
            retry_after: Some(retry_after.into()),
        }
    }
}

/// When a rule fires among the requests it matches.
#[derive(Debug, Clone)]
pub enum Trigger {
    Always,
    /// The first N matching requests.
    FirstN(usize),
    /// Each matching request with this probability, from a seeded RNG (reproducible).
    Rate {
        probability: f64,
        seed: u64,
    },
}

/// A fault rule: which requests, which fault, when.
#[derive(Debug, Clone)]
pub struct FaultRule {
    /// Only this method (e.g. "HEAD"); `None` for any.
    pub method: Option<String>,
    /// Only paths containing this string; `None` for any.
    pub path_contains: Option<String>,
    pub fault: Fault,
    pub trigger: Trigger,
}

impl FaultRule {
    pub fn new(fault: Fault, trigger: Trigger) -> Self {
        FaultRule {
            method: None,
            path_contains: None,
            fault,
            trigger,
        }
    }
    pub fn method(mut self, m: &str) -> Self {
        self.method = Some(m.to_string());
        self
    }
    pub fn path_contains(mut self, p: &str) -> Self {
        self.path_contains = Some(p.to_string());
        self
    }
}

struct RuleState {
    rule: FaultRule,
    matched: usize,
    rng: Rng,
}

/// One request as the proxy saw it.
#[derive(Debug, Clone)]
pub struct SeenRequest {
    pub method: String,
    pub target: String,
    pub headers: Vec<(String, String)>,
    /// The fault injected, if any.
    pub fault: Option<String>,
}

impl SeenRequest {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

struct State {
    upstream: String,
    rules: Mutex<Vec<RuleState>>,
    seen: Mutex<Vec<SeenRequest>>,
    faults: AtomicUsize,
    paginate_tags: AtomicBool,
    stop: AtomicBool,
}

/// The running proxy; stops accepting on drop.
pub struct FaultProxy {
    port: u16,
    state: Arc<State>,
}

impl std::fmt::Debug for FaultProxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FaultProxy")
            .field("port", &self.port)
            .field("upstream", &self.state.upstream)
            .finish()
    }
}

impl FaultProxy {
    /// Starts a proxy to `upstream` (`127.0.0.1:PORT`).
    pub fn start(upstream: &str, rules: Vec<FaultRule>) -> Result<FaultProxy> {
        let listener = TcpListener::bind("127.0.0.1:0").context("binding fault proxy")?;
        let port = listener.local_addr()?.port();
        let state = Arc::new(State {
            upstream: upstream.to_string(),
            rules: Mutex::new(Vec::new()),
            seen: Mutex::new(Vec::new()),
            faults: AtomicUsize::new(0),
            paginate_tags: AtomicBool::new(false),
            stop: AtomicBool::new(false),
        });
        let proxy = FaultProxy {
            port,
            state: state.clone(),
        };
        proxy.set_rules(rules);
        thread::Builder::new()
            .name("testkit-fault-proxy".into())
            .spawn(move || {
                for conn in listener.incoming() {
                    if state.stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(conn) = conn else { continue };
                    let state = state.clone();
                    thread::spawn(move || {
                        let _ = serve(conn, &state);
                    });
                }
            })?;
        Ok(proxy)
    }

    /// Replaces the rules (and resets their counters and RNGs).
    pub fn set_rules(&self, rules: Vec<FaultRule>) {
        let states = rules
            .into_iter()
            .map(|rule| {
                let seed = match rule.trigger {
                    Trigger::Rate { seed, .. } => seed,
                    _ => 0,
                };
                RuleState {
                    rule,
                    matched: 0,
                    rng: Rng::seeded(seed),
                }
            })
            .collect();
        if let Ok(mut r) = self.state.rules.lock() {
            *r = states;
        }
    }

    /// Page `GET …/tags/list` responses honouring `n` and `last`.
    pub fn paginate_tags(&self, on: bool) {
        self.state.paginate_tags.store(on, Ordering::SeqCst);
    }

    /// `127.0.0.1:PORT` to use as the registry host.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Every request seen so far, in arrival order.
    pub fn requests(&self) -> Vec<SeenRequest> {
        self.state
            .seen
            .lock()
            .map(|s| s.clone())
            .unwrap_or_default()
    }

    pub fn request_count(&self) -> usize {
        self.state.seen.lock().map(|s| s.len()).unwrap_or(0)
    }

    pub fn faults_injected(&self) -> usize {
        self.state.faults.load(Ordering::SeqCst)
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.state.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

fn pick_fault(state: &State, head: &RequestHead) -> Option<Fault> {
    let mut rules = state.rules.lock().ok()?;
    for rs in rules.iter_mut() {
        if let Some(m) = &rs.rule.method {
            if !m.eq_ignore_ascii_case(&head.method) {
                continue;
            }
        }
        if let Some(p) = &rs.rule.path_contains {
            if !head.target.contains(p.as_str()) {
                continue;
            }
        }
        rs.matched += 1;
        let fire = match rs.rule.trigger {
            Trigger::Always => true,
            Trigger::FirstN(n) => rs.matched <= n,
            Trigger::Rate { probability, .. } => rs.rng.next_f64() < probability,
        };
        if fire {
            return Some(rs.rule.fault.clone());
        }
    }
    None
}

fn serve(mut client: TcpStream, state: &State) -> Result<()> {
    client.set_read_timeout(Some(Duration::from_secs(30)))?;
    let Some(head) = util::read_head(&mut client)? else {
        return Ok(());
    };
    let fault = pick_fault(state, &head);
    if let Ok(mut seen) = state.seen.lock() {
        seen.push(SeenRequest {
            method: head.method.clone(),
            target: head.target.clone(),
            headers: head.headers.clone(),
            fault: fault.as_ref().map(|f| format!("{f:?}")),
        });
    }
    if fault.is_some() {
        state.faults.fetch_add(1, Ordering::SeqCst);
    }
    match fault {
        Some(Fault::Status { code, retry_after }) => {
            let mut headers = vec![("Content-Type", "application/json".to_string())];
            if let Some(r) = retry_after {
                headers.push(("Retry-After", r));
            }
            let body = if head.method == "HEAD" {
                String::new()
            } else {
                format!(
                    "{{\"errors\":[{{\"code\":\"{}\",\"message\":\"injected by skip-testkit\"}}]}}",
                    if code == 404 {
                        "MANIFEST_UNKNOWN"
                    } else if code == 429 {
                        "TOOMANYREQUESTS"
                    } else {
                        "UNAVAILABLE"
                    }
                )
            };
            // A HEAD answer announces no body; write the head only.
            if head.method == "HEAD" {
                let mut out = format!("HTTP/1.1 {code} {}\r\n", util::reason(code));
                for (k, v) in &headers {
                    out.push_str(&format!("{k}: {v}\r\n"));
                }
                out.push_str("Content-Length: 0\r\nConnection: close\r\n\r\n");
                client.write_all(out.as_bytes())?;
            } else {
                util::write_response(&mut client, code, &headers, body.as_bytes())?;
            }
            let _ = client.shutdown(Shutdown::Both);
            Ok(())
        }
        Some(Fault::Reset) => {
            let sock = socket2::SockRef::from(&client);
            sock.set_linger(Some(Duration::ZERO))?;
            drop(client);
            Ok(())
        }
        Some(Fault::Stall(d)) => {
            let until = Instant::now() + d;
            while Instant::now() < until && !state.stop.load(Ordering::SeqCst) {
                thread::sleep(Duration::from_millis(20));
            }
            let _ = client.shutdown(Shutdown::Both);
            Ok(())
        }
        Some(Fault::TruncateBody(keep)) => {
            let resp = forward(&mut client, state, &head, None)?;
            let split = util::find(&resp, b"\r\n\r\n")
                .map(|p| p + 4)
                .unwrap_or(resp.len());
            let end = (split + keep).min(resp.len());
            client.write_all(&resp[..end])?;
            let _ = client.shutdown(Shutdown::Both);
            Ok(())
        }
        Some(Fault::StripHeader(name)) => {
            let resp = forward(&mut client, state, &head, None)?;
            let split = util::find(&resp, b"\r\n\r\n")
                .map(|p| p + 4)
                .unwrap_or(resp.len());
            let head_text = String::from_utf8_lossy(&resp[..split]).into_owned();
            let kept: Vec<&str> = head_text
                .split("\r\n")
                .filter(|l| {
                    !l.split(':')
                        .next()
                        .unwrap_or("")
                        .trim()
                        .eq_ignore_ascii_case(&name)
                })
                .collect();
            client.write_all(kept.join("\r\n").as_bytes())?;
            client.write_all(&resp[split..])?;
            let _ = client.shutdown(Shutdown::Both);
            Ok(())
        }
        Some(Fault::Respond {
            code,
            headers,
            body,
        }) => {
            let hs: Vec<(&str, String)> = headers
                .iter()
                .map(|(k, v)| (k.as_str(), v.clone()))
                .collect();
            if head.method == "HEAD" {
                let mut out = format!("HTTP/1.1 {code} {}\r\n", util::reason(code));
                for (k, v) in &hs {
                    out.push_str(&format!("{k}: {v}\r\n"));
                }
                out.push_str(&format!(
                    "Content-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                ));
                client.write_all(out.as_bytes())?;
            } else {
                util::write_response(&mut client, code, &hs, &body)?;
            }
            let _ = client.shutdown(Shutdown::Both);
            Ok(())
        }
        None => {
            let paginate = state.paginate_tags.load(Ordering::SeqCst)
                && head.method == "GET"
                && head.path().ends_with("/tags/list");
            if paginate {
                return serve_paged_tags(client, state, &head);
            }
            let resp = forward(&mut client, state, &head, None)?;
            client.write_all(&resp)?;
            let _ = client.shutdown(Shutdown::Both);
            Ok(())
        }
    }
}

/// Sends the request upstream (optionally with a different target) and returns the whole
/// raw response. The request body is piped from the client on a helper thread until the
/// client stops sending.
fn forward(
    client: &mut TcpStream,
    state: &State,
    head: &RequestHead,
    target: Option<&str>,
) -> Result<Vec<u8>> {
    let mut up = TcpStream::connect(&state.upstream).context("connecting upstream")?;
    up.set_read_timeout(Some(Duration::from_secs(60)))?;
    let mut out = format!(
        "{} {} HTTP/1.1\r\n",
        head.method,
        target.unwrap_or(&head.target)
    );
    for (k, v) in &head.headers {
        if k.eq_ignore_ascii_case("connection") || k.eq_ignore_ascii_case("keep-alive") {
            continue;
        }
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    out.push_str("Connection: close\r\n\r\n");
    up.write_all(out.as_bytes())?;
    up.write_all(&head.rest)?;
    // Pipe any remaining request body. The client keeps its side open while it waits for
    // the answer, so this thread ends when we shut the client down after answering.
    let has_body = head.header("content-length").is_some_and(|v| v != "0")
        || head.header("transfer-encoding").is_some();
    if has_body {
        let mut c = client.try_clone()?;
        let mut u = up.try_clone()?;
        let expected: Option<usize> = head.header("content-length").and_then(|v| v.parse().ok());
        let already = head.rest.len();
        thread::spawn(move || {
            let mut buf = [0u8; 16 * 1024];
            let mut sent = already;
            loop {
                if expected.is_some_and(|e| sent >= e) {
                    break;
                }
                match c.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if u.write_all(&buf[..n]).is_err() {
                            break;
                        }
                        sent += n;
                    }
                }
            }
        });
    }
    let mut resp = Vec::new();
    up.read_to_end(&mut resp)?;
    Ok(resp)
}

fn serve_paged_tags(mut client: TcpStream, state: &State, head: &RequestHead) -> Result<()> {
    let q = head.query();
    let n: Option<usize> = q
        .iter()
        .find(|(k, _)| k == "n")
        .and_then(|(_, v)| v.parse().ok());
    let last = q.iter().find(|(k, _)| k == "last").map(|(_, v)| v.clone());
    let resp = forward(&mut client, state, head, Some(head.path()))?;
    let split = util::find(&resp, b"\r\n\r\n")
        .map(|p| p + 4)
        .unwrap_or(resp.len());
    let status_ok = resp.starts_with(b"HTTP/1.1 200");
    let parsed: Option<serde_json::Value> = serde_json::from_slice(&resp[split..]).ok();
    let (true, Some(mut v)) = (status_ok, parsed) else {
        client.write_all(&resp)?;
        let _ = client.shutdown(Shutdown::Both);
        return Ok(());
    };
    let mut tags: Vec<String> = v["tags"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|t| t.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    // The spec's paging is lexical: `last` is the last tag of the previous page.
    tags.sort();
    if let Some(l) = &last {
        tags.retain(|t| t > l);
    }
    let mut headers = vec![(
        "Content-Type",
        "application/json; charset=utf-8".to_string(),
    )];
    if let Some(n) = n {
        if tags.len() > n {
            tags.truncate(n);
            let next_last = tags.last().cloned().unwrap_or_default();
            headers.push((
                "Link",
                format!(
                    "<{}?n={n}&last={}>; rel=\"next\"",
                    head.path(),
                    util::percent_encode(&next_last)
                ),
            ));
        }
    }
    v["tags"] = serde_json::json!(tags);
    util::write_response(&mut client, 200, &headers, v.to_string().as_bytes())?;
    let _ = client.shutdown(Shutdown::Both);
    Ok(())
}
