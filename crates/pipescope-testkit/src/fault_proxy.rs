//! An HTTP/1.1 proxy in front of a real service (influxd) that injects the faults the service
//! cannot be made to produce on demand: a 500 for the next N requests, or the next N requests
//! held past the client's timeout, then passed on (the write lands late, as a slow server's
//! does) or dropped (it never lands). Everything else passes through unchanged.
//!
//! Small on purpose: requests with a `Content-Length` body (what the sinks send), keep-alive,
//! one thread per connection.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What the proxy does to one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Answers this status without passing the request on.
    Status(u16),
    /// Waits this long, then passes the request on (its answer goes to a client that may have
    /// given up).
    Hold(Duration),
    /// Waits this long, then closes the connection without passing the request on.
    Stall(Duration),
}

#[derive(Debug, Default)]
struct Shared {
    faults: Mutex<VecDeque<Fault>>,
    requests: AtomicUsize,
    faults_served: AtomicUsize,
    passed: AtomicUsize,
    stop: AtomicBool,
}

/// The proxy, listening on a free loopback port until dropped.
#[derive(Debug)]
pub struct FaultProxy {
    pub port: u16,
    shared: Arc<Shared>,
    acceptor: Option<std::thread::JoinHandle<()>>,
}

impl FaultProxy {
    /// Proxies to `upstream` (`http://127.0.0.1:<port>`).
    pub fn start(upstream: &str) -> Self {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .expect("the fault proxy cannot bind a port on 127.0.0.1");
        let port = listener.local_addr().expect("a bound address").port();
        listener
            .set_nonblocking(true)
            .expect("a non-blocking listener");
        let shared = Arc::new(Shared::default());
        let upstream = upstream.trim_end_matches('/').to_string();
        let accepting = Arc::clone(&shared);
        let acceptor = std::thread::spawn(move || {
            while !accepting.stop.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        let shared = Arc::clone(&accepting);
                        let upstream = upstream.clone();
                        std::thread::spawn(move || serve(stream, &upstream, &shared));
                    }
                    // Polled so a drop stops it.
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        Self {
            port,
            shared,
            acceptor: Some(acceptor),
        }
    }

    /// `http://127.0.0.1:<port>`: give this to the client instead of the service's.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The next `n` requests get `fault` (after any faults queued before).
    pub fn inject(&self, n: usize, fault: Fault) {
        let mut faults = self.shared.faults.lock().expect("fault queue");
        faults.extend(std::iter::repeat_n(fault, n));
    }

    /// Drops the faults not yet served: the service answers again.
    pub fn clear(&self) {
        self.shared.faults.lock().expect("fault queue").clear();
    }

    /// Faults queued and not yet served.
    pub fn faults_pending(&self) -> usize {
        self.shared.faults.lock().expect("fault queue").len()
    }

    /// Requests received so far.
    pub fn requests(&self) -> usize {
        self.shared.requests.load(Ordering::SeqCst)
    }

    /// Requests that got a fault.
    pub fn faults_served(&self) -> usize {
        self.shared.faults_served.load(Ordering::SeqCst)
    }

    /// Requests passed to the service (held ones included, once passed).
    pub fn passed(&self) -> usize {
        self.shared.passed.load(Ordering::SeqCst)
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
    }
}

/// One parsed request.
pub(crate) struct Request {
    pub(crate) method: String,
    pub(crate) target: String,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Vec<u8>,
}

/// Serves one client connection until it closes.
fn serve(stream: TcpStream, upstream: &str, shared: &Shared) {
    let Ok(write_half) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(stream);
    let mut writer = write_half;
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(60)))
        .build()
        .into();
    while let Some(request) = read_request(&mut reader) {
        shared.requests.fetch_add(1, Ordering::SeqCst);
        let fault = shared.faults.lock().expect("fault queue").pop_front();
        let (status, content_type, body) = match fault {
            Some(Fault::Status(status)) => {
                shared.faults_served.fetch_add(1, Ordering::SeqCst);
                let body =
                    format!("{{\"error\":\"fault injected by the test's proxy: {status}\"}}");
                (status, "application/json".to_string(), body.into_bytes())
            }
            Some(Fault::Hold(hold)) => {
                shared.faults_served.fetch_add(1, Ordering::SeqCst);
                std::thread::sleep(hold);
                forward(&agent, upstream, &request, shared)
            }
            Some(Fault::Stall(stall)) => {
                shared.faults_served.fetch_add(1, Ordering::SeqCst);
                std::thread::sleep(stall);
                return;
            }
            None => forward(&agent, upstream, &request, shared),
        };
        let head = format!(
            "HTTP/1.1 {status} {}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\r\n",
            reason(status),
            body.len()
        );
        // A client that gave up (timed out) has closed: nothing more to serve.
        if writer.write_all(head.as_bytes()).is_err() || writer.write_all(&body).is_err() {
            return;
        }
    }
}

/// Passes `request` to the service: its status, content type and body (a 502 when it did not
/// answer).
fn forward(
    agent: &ureq::Agent,
    upstream: &str,
    request: &Request,
    shared: &Shared,
) -> (u16, String, Vec<u8>) {
    shared.passed.fetch_add(1, Ordering::SeqCst);
    let url = format!("{upstream}{}", request.target);
    let forwarded = |headers: &[(String, String)]| {
        headers
            .iter()
            .filter(|(k, _)| {
                !["host", "content-length", "connection", "transfer-encoding"]
                    .contains(&k.to_ascii_lowercase().as_str())
            })
            .cloned()
            .collect::<Vec<_>>()
    };
    let result = if request.method == "GET" || request.method == "HEAD" {
        let mut builder = agent.get(&url);
        for (k, v) in forwarded(&request.headers) {
            builder = builder.header(k, v);
        }
        builder.call()
    } else {
        let mut builder = agent.post(&url);
        for (k, v) in forwarded(&request.headers) {
            builder = builder.header(k, v);
        }
        builder.send(&request.body[..])
    };
    match result {
        Ok(mut response) => {
            let status = response.status().as_u16();
            let content_type = response
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("text/plain")
                .to_string();
            let body = response
                .body_mut()
                .with_config()
                .limit(64 << 20)
                .read_to_vec()
                .unwrap_or_default();
            (status, content_type, body)
        }
        Err(e) => (
            502,
            "text/plain".to_string(),
            format!("the fault proxy cannot reach {upstream}: {e}").into_bytes(),
        ),
    }
}

/// Reads one request; None at the end of the connection or on anything it cannot parse.
pub(crate) fn read_request(reader: &mut BufReader<TcpStream>) -> Option<Request> {
    let mut line = String::new();
    if reader.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_string();
    let target = parts.next()?.to_string();
    let mut headers = Vec::new();
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header).ok()? == 0 {
            return None;
        }
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        let (name, value) = header.split_once(':')?;
        headers.push((name.trim().to_string(), value.trim().to_string()));
    }
    let chunked = headers.iter().any(|(k, v)| {
        k.eq_ignore_ascii_case("transfer-encoding") && v.eq_ignore_ascii_case("chunked")
    });
    assert!(
        !chunked,
        "the fault proxy reads Content-Length bodies only, and got a chunked {method} {target}"
    );
    let length: usize = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    Some(Request {
        method,
        target,
        headers,
        body,
    })
}

pub(crate) fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        204 => "No Content",
        400 => "Bad Request",
        404 => "Not Found",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "Status",
    }
}
