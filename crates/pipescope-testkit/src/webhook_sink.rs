//! An HTTP receiver of webhooks on a free loopback port: it keeps every request it gets, and
//! answers 200, or a status the test asks for to the next N requests.
//!
//! Small on purpose, like the fault proxy: `Content-Length` bodies, keep-alive, one thread per
//! connection.

use std::collections::VecDeque;
use std::io::{BufReader, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::fault_proxy::{read_request, reason};

/// One request the sink got.
#[derive(Debug, Clone)]
pub struct Received {
    pub method: String,
    pub path: String,
    /// Names as sent.
    pub headers: Vec<(String, String)>,
    pub body: String,
    /// The status the sink answered.
    pub status: u16,
}

impl Received {
    /// The first header of that name (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Debug, Default)]
struct Shared {
    received: Mutex<Vec<Received>>,
    failures: Mutex<VecDeque<u16>>,
    stop: AtomicBool,
}

#[derive(Debug)]
pub struct WebhookSink {
    pub port: u16,
    shared: Arc<Shared>,
    acceptor: Option<std::thread::JoinHandle<()>>,
}

impl WebhookSink {
    pub fn start() -> Self {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .expect("the webhook sink cannot bind a port on 127.0.0.1");
        let port = listener.local_addr().expect("a bound address").port();
        listener
            .set_nonblocking(true)
            .expect("a non-blocking listener");
        let shared = Arc::new(Shared::default());
        let accepting = Arc::clone(&shared);
        let acceptor = std::thread::spawn(move || {
            while !accepting.stop.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        let shared = Arc::clone(&accepting);
                        std::thread::spawn(move || serve(stream, &shared));
                    }
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

    /// `http://127.0.0.1:<port><path>`; every path is accepted.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// The next `n` requests are answered `status` (and still kept).
    pub fn fail_next(&self, n: usize, status: u16) {
        let mut failures = self.shared.failures.lock().expect("failures");
        failures.extend(std::iter::repeat_n(status, n));
    }

    /// Every request so far, oldest first.
    pub fn received(&self) -> Vec<Received> {
        self.shared.received.lock().expect("received").clone()
    }

    /// The requests so far to `path`.
    pub fn received_at(&self, path: &str) -> Vec<Received> {
        self.received()
            .into_iter()
            .filter(|r| r.path == path)
            .collect()
    }
}

impl Drop for WebhookSink {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
    }
}

fn serve(stream: TcpStream, shared: &Shared) {
    let Ok(mut writer) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(stream);
    while let Some(request) = read_request(&mut reader) {
        let status = shared
            .failures
            .lock()
            .expect("failures")
            .pop_front()
            .unwrap_or(200);
        shared.received.lock().expect("received").push(Received {
            method: request.method,
            path: request.target,
            headers: request.headers,
            body: String::from_utf8_lossy(&request.body).into_owned(),
            status,
        });
        let head = format!(
            "HTTP/1.1 {status} {}\r\nContent-Length: 0\r\n\r\n",
            reason(status)
        );
        if writer.write_all(head.as_bytes()).is_err() {
            return;
        }
    }
}
