//! A service run as a process whose JSON log lines (`MFA_LOG_FORMAT=json`) a test reads as
//! they come, and whose exit it times: for tests that make a task of it fail.

// Test assertions: a failed one fails the calling test, where it is.
#![allow(clippy::panic, clippy::expect_used)]

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::Value;

/// One log line and when it was read.
pub struct LogLine {
    pub at: Instant,
    pub line: Value,
}

impl LogLine {
    /// A field of the event (`message`, `task`, `error`...), if it is a string.
    pub fn field(&self, name: &str) -> Option<&str> {
        self.line["fields"][name].as_str()
    }
}

pub struct Watched {
    name: String,
    child: Child,
    log: Receiver<LogLine>,
    stderr: Option<JoinHandle<String>>,
}

impl Watched {
    /// Starts `command` with its standard output and error read by threads of their own.
    pub fn spawn(name: &str, mut command: Command) -> Self {
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|error| panic!("{name} starts: {error}"));
        let (lines, log) = mpsc::channel();
        let stdout = child.stdout.take().expect("piped stdout");
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let line = serde_json::from_str(&line).unwrap_or(Value::String(line));
                let _ = lines.send(LogLine {
                    at: Instant::now(),
                    line,
                });
            }
        });
        let mut stderr = child.stderr.take().expect("piped stderr");
        let stderr = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = stderr.read_to_string(&mut text);
            text
        });
        Self {
            name: name.to_owned(),
            child,
            log,
            stderr: Some(stderr),
        }
    }

    /// The first log line whose `message` is `message`; `seen` is shown every line before it.
    pub fn until_message(&self, message: &str, mut seen: impl FnMut(&LogLine)) -> LogLine {
        loop {
            let line = self
                .log
                .recv_timeout(Duration::from_secs(60))
                .unwrap_or_else(|_| {
                    panic!("{}: no log line while waiting for {message:?}", self.name)
                });
            if line.field("message") == Some(message) {
                return line;
            }
            seen(&line);
        }
    }

    /// Waits for the process to exit, at most `limit` after `since` (then it is killed and
    /// the test fails); the status and how long after `since` it came.
    pub fn exit_within(&mut self, since: Instant, limit: Duration) -> (ExitStatus, Duration) {
        loop {
            if let Some(status) = self.child.try_wait().expect("wait for the process") {
                return (status, since.elapsed());
            }
            if since.elapsed() > limit {
                let _ = self.child.kill();
                panic!("{} still runs {:?} later", self.name, since.elapsed());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// All the process wrote on its standard error (once it exited).
    pub fn stderr(&mut self) -> String {
        self.stderr
            .take()
            .map(|reader| reader.join().expect("stderr read"))
            .unwrap_or_default()
    }
}

impl Drop for Watched {
    fn drop(&mut self) {
        // A failed test must not leave the service running.
        let _ = self.child.kill();
    }
}
