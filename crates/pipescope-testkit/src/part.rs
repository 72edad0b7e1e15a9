//! A pipescope pipeline part (`simulate`, `bridge`, `process`, `sink`, or any program that
//! serves Prometheus text on `--listen`) run as a child process, as a user runs it: started on a
//! port of its own, watched through its `/metrics`, stopped with SIGTERM or killed with
//! `kill -9`, its stdout (the summary it prints at exit) read when it finishes. The tests and the
//! benchmarks share it; the caller says which binary to run.

use std::ffi::OsString;
use std::io::Read;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::{free_port, wait_until};

/// How a part is started: made by [`Part::builder`], started with [`Self::start`].
#[derive(Debug, Clone)]
pub struct PartBuilder {
    name: String,
    program: PathBuf,
    args: Vec<OsString>,
    env: Vec<(OsString, OsString)>,
    port: Option<u16>,
    web: bool,
    core: Option<u32>,
    log_filter: String,
}

impl PartBuilder {
    /// Adds command-line arguments (`--listen` is added by the builder).
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Sets an environment variable for the child.
    pub fn env(mut self, key: impl Into<OsString>, value: impl Into<OsString>) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// Serves its web endpoint on this port (a restarted part keeps its predecessor's); by
    /// default a free one.
    pub fn port(mut self, port: u16) -> Self {
        self.port = Some(port);
        self
    }

    /// Passes no `--listen` (a program with no web endpoint); [`Part::metric`] then never
    /// answers.
    pub fn without_web(mut self) -> Self {
        self.web = false;
        self
    }

    /// Runs it pinned to this CPU core with `taskset -c` (unpinned when None).
    pub fn pinned_to(mut self, core: Option<u32>) -> Self {
        self.core = core;
        self
    }

    /// Its `PIPESCOPE_LOG` filter; by default `info,librdkafka=warn,rdkafka=warn`.
    pub fn log_filter(mut self, filter: &str) -> Self {
        self.log_filter = filter.to_string();
        self
    }

    /// Starts it: stdout piped (read by [`Part::finish`]), stderr to a log file.
    pub fn start(self) -> Part {
        let log = tempfile::NamedTempFile::new().expect("cannot make a log file");
        let port = self.port.unwrap_or_else(free_port);
        let mut command = match self.core {
            Some(core) => {
                let mut c = Command::new("taskset");
                c.args(["-c", &core.to_string()]).arg(&self.program);
                c
            }
            None => Command::new(&self.program),
        };
        command.args(&self.args);
        if self.web {
            command.args(["--listen", &format!("127.0.0.1:{port}")]);
        }
        command
            .env("PIPESCOPE_LOG", &self.log_filter)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log.reopen().expect("cannot reopen the log file"));
        let child = crate::process::spawn(&mut command, &self.name, &self.program);
        Part {
            name: self.name,
            child,
            log,
            port,
        }
    }
}

/// A part running as a child process; killed on drop, its log printed when the test panics.
#[derive(Debug)]
pub struct Part {
    name: String,
    child: Child,
    log: tempfile::NamedTempFile,
    port: u16,
}

impl Part {
    /// Prepares `program` (the `pipescope` binary, or a benchmark's own child mode) under
    /// `name`, the name failures print.
    pub fn builder(program: impl Into<PathBuf>, name: &str) -> PartBuilder {
        PartBuilder {
            name: name.to_string(),
            program: program.into(),
            args: Vec::new(),
            env: Vec::new(),
            port: None,
            web: true,
            core: None,
            log_filter: "info,librdkafka=warn,rdkafka=warn".to_string(),
        }
    }

    /// The name it was started under.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The port of its web endpoint.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The child's process id (taskset's when pinned: taskset execs the part, so it is the
    /// part's too).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Its `/metrics` text, or None when nothing answered.
    pub fn metrics_text(&self) -> Option<String> {
        ureq::get(format!("http://127.0.0.1:{}/metrics", self.port))
            .call()
            .ok()?
            .body_mut()
            .read_to_string()
            .ok()
    }

    /// Sum of a metric over its label sets; None when /metrics does not answer or lacks it.
    pub fn metric(&self, name: &str) -> Option<f64> {
        metric_sum(&self.metrics_text()?, name)
    }

    /// Waits until `name` satisfies `condition`; panics with the part's log after `timeout`.
    pub fn wait_metric(&self, name: &str, timeout: Duration, condition: impl Fn(f64) -> bool) {
        if !wait_until(timeout, || self.metric(name).is_some_and(&condition)) {
            panic!(
                "{}: {name} = {:?} did not reach the expected value in {timeout:?}\n--- log ---\n{}",
                self.name,
                self.metric(name),
                self.log()
            );
        }
    }

    /// Whether it has exited (its status is kept for [`Self::finish`]).
    pub fn has_exited(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }

    /// Stops it at once, as `kill -9` does, and reaps it.
    pub fn kill9(&mut self) {
        self.child.kill().expect("kill the part");
        self.child.wait().expect("reap the part");
    }

    /// Waits for it to exit and returns its stdout; panics with its log when it failed or is
    /// still running after `timeout`.
    pub fn finish(&mut self, timeout: Duration) -> String {
        let status = self.wait_exit(timeout).unwrap_or_else(|| {
            panic!(
                "{} still running after {timeout:?}\n{}",
                self.name,
                self.log()
            )
        });
        let mut out = String::new();
        if let Some(mut stdout) = self.child.stdout.take() {
            stdout
                .read_to_string(&mut out)
                .expect("read the part's stdout");
        }
        assert!(
            status.success(),
            "{} failed ({status})\n{}",
            self.name,
            self.log()
        );
        out
    }

    /// SIGTERM, then [`Self::finish`] within a minute: a clean exit and its stdout.
    pub fn terminate(&mut self) -> String {
        self.send_term();
        self.finish(Duration::from_secs(60))
    }

    /// SIGTERM, then waits up to `timeout` for any exit; its status, or None if still running.
    pub fn stop(&mut self, timeout: Duration) -> Option<ExitStatus> {
        self.send_term();
        self.wait_exit(timeout)
    }

    /// Its log (stderr) so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log.path()).unwrap_or_default()
    }

    fn send_term(&self) {
        // `kill` rather than a signal call: the workspace forbids unsafe code.
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
    }

    /// Polls every 5 ms (the benchmarks time processes by their exit).
    fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait for the part") {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for Part {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("--- {} log ---\n{}", self.name, self.log());
        }
    }
}

/// Sum of metric `name` over its label sets in Prometheus text; None when it is absent.
pub fn metric_sum(text: &str, name: &str) -> Option<f64> {
    let mut sum = None;
    for line in text.lines() {
        let Some(rest) = line.strip_prefix(name) else {
            continue;
        };
        if !(rest.starts_with(' ') || rest.starts_with('{')) {
            continue;
        }
        let value: f64 = rest.rsplit(' ').next()?.parse().ok()?;
        sum = Some(sum.unwrap_or(0.0) + value);
    }
    sum
}
