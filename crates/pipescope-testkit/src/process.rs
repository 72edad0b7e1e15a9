//! A service running as a child process, with its log in a file and a clean stop on drop.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A fresh temporary directory `pipescope-<name>-…` for a service's files.
pub(crate) fn service_dir(name: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("pipescope-{name}-"))
        .tempdir()
        .expect("create a temporary directory")
}

/// Spawns `command`, the program `name` at `program`, or panics saying which could not start.
pub(crate) fn spawn(command: &mut Command, name: &str, program: &Path) -> Child {
    command
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {name} ({}): {e}", program.display()))
}

/// The `kill`, `pause`, `resume`, `restart` and `log` methods of a service type with a `process: ServiceProcess`
/// field and a `start_process(&mut self)` that spawns it and waits until it answers.
macro_rules! service_controls {
    ($what:literal, $restart_doc:literal) => {
        #[doc = concat!("Stops the ", $what, " at once (`kill -9`).")]
        pub fn kill(&mut self) {
            self.process.kill();
        }

        #[doc = concat!("Freezes the ", $what, " (`kill -STOP`): connections stay open, nothing answers.")]
        pub fn pause(&mut self) {
            self.process.signal("STOP");
        }

        #[doc = concat!("Lets a paused ", $what, " run again (`kill -CONT`).")]
        pub fn resume(&mut self) {
            self.process.signal("CONT");
        }

        #[doc = $restart_doc]
        pub fn restart(&mut self) {
            self.process.kill();
            self.start_process();
        }

        #[doc = concat!("Everything the ", $what, " logged so far.")]
        pub fn log(&self) -> String {
            self.process.log()
        }
    };
}
pub(crate) use service_controls;

#[derive(Debug)]
pub(crate) struct ServiceProcess {
    name: String,
    program: PathBuf,
    args: Vec<String>,
    dir: Option<tempfile::TempDir>,
    log_path: PathBuf,
    child: Option<Child>,
}

impl ServiceProcess {
    /// Prepares a service whose files live in `dir`; nothing runs until [`Self::spawn`].
    pub(crate) fn new(
        name: &str,
        program: PathBuf,
        args: Vec<String>,
        dir: tempfile::TempDir,
    ) -> Self {
        let log_path = dir.path().join(format!("{name}.log"));
        Self {
            name: name.to_string(),
            program,
            args,
            dir: Some(dir),
            log_path,
            child: None,
        }
    }

    pub(crate) fn dir(&self) -> &Path {
        self.dir
            .as_ref()
            .expect("the directory lives as long as the service")
            .path()
    }

    pub(crate) fn spawn(&mut self) {
        assert!(self.child.is_none(), "{} is already running", self.name);
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log_path)
            .unwrap_or_else(|e| panic!("cannot open {} ({e})", self.log_path.display()));
        let stderr: File = log
            .try_clone()
            .expect("cannot duplicate the log file handle");
        let child = spawn(
            Command::new(&self.program)
                .args(&self.args)
                .current_dir(self.dir())
                .stdin(Stdio::null())
                .stdout(log)
                .stderr(stderr),
            &self.name,
            &self.program,
        );
        self.child = Some(child);
    }

    /// Whether the process is still alive (false once it exited, for example on a bad config).
    pub(crate) fn is_running(&mut self) -> bool {
        match &mut self.child {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            None => false,
        }
    }

    pub(crate) fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Sends `signal` (a name for `kill -<signal>`) to the running process.
    pub(crate) fn signal(&self, signal: &str) {
        let pid = self
            .pid()
            .unwrap_or_else(|| panic!("{} is not running: cannot send SIG{signal}", self.name));
        // `kill` rather than a signal call: the workspace forbids unsafe code.
        let status = std::process::Command::new("kill")
            .args([format!("-{signal}"), pid.to_string()])
            .status()
            .unwrap_or_else(|e| panic!("cannot run kill -{signal} {pid} ({e})"));
        assert!(
            status.success(),
            "kill -{signal} {pid} ({}) failed",
            self.name
        );
    }

    /// Stops the process at once, as `kill -9` would.
    pub(crate) fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// Panics with the service's log: the test cannot go on without the service.
    pub(crate) fn fail(&mut self, what: &str) -> ! {
        self.kill();
        panic!(
            "{}: {what}\n--- {} log ({}) ---\n{}\n--- end of log ---",
            self.name,
            self.name,
            self.log_path.display(),
            self.log()
        );
    }

    /// Waits for `ready` (polled every 20 ms) or panics with the log if the process dies or
    /// the deadline passes.
    pub(crate) fn wait_ready(&mut self, timeout: Duration, mut ready: impl FnMut() -> bool) {
        let mut exited = false;
        let became_ready = crate::wait_until(timeout, || {
            if !self.is_running() {
                exited = true;
                return true;
            }
            ready()
        });
        if exited {
            self.fail("exited while starting");
        }
        if !became_ready {
            self.fail(&format!("not ready after {timeout:?}"));
        }
    }
}

impl Drop for ServiceProcess {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            let dir = self.dir.take().map(tempfile::TempDir::keep);
            eprintln!(
                "--- {} log ({}), kept for the failed test in {} ---\n{}\n--- end of {} log ---",
                self.name,
                self.log_path.display(),
                dir.map(|d| d.display().to_string()).unwrap_or_default(),
                self.log(),
                self.name
            );
        }
    }
}
