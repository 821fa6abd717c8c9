//! The real `consentry-collector` binary: its command-line tools, and the server as a child
//! process whose stdout and stderr are kept (to search the log).

use std::io::Read;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The binary cargo built for these tests.
pub const BINARY: &str = env!("CARGO_BIN_EXE_consentry-collector");

/// Runs a command-line tool with `--data-dir dir` and `args`.
pub fn tool(dir: &Path, args: &[&str]) -> Output {
    let mut command = Command::new(BINARY);
    command
        .args(args)
        .arg("--data-dir")
        .arg(dir)
        .env_remove("CONSENTRY_ENCRYPTION_KEY")
        .env_remove("CONSENTRY_STORE");
    if let Some(url) = super::store::store_url(dir) {
        command.env("CONSENTRY_STORE", url);
    }
    command.output().unwrap()
}

/// A collector running as a child process.
pub struct Served {
    /// Where it listens.
    pub addr: SocketAddr,
    child: Child,
    stderr_seen: String,
}

impl Served {
    /// Starts the binary with `args` (plus `--listen 127.0.0.1:0 --data-dir dir`) and waits
    /// for its "listening on" line.
    pub fn start(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Served {
        let mut command = Command::new(BINARY);
        command
            .args(["--listen", "127.0.0.1:0", "--data-dir"])
            .arg(dir)
            .args(args)
            .env_remove("CONSENTRY_ENCRYPTION_KEY")
            .env_remove("CONSENTRY_STORE")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(url) = super::store::store_url(dir) {
            command.env("CONSENTRY_STORE", url);
        }
        for (name, value) in env {
            command.env(name, value);
        }
        let mut child = command.spawn().unwrap();
        let mut stderr = child.stderr.take().unwrap();
        let mut seen = String::new();
        let started = Instant::now();
        let mut buf = [0u8; 4096];
        let addr = loop {
            let n = stderr.read(&mut buf).unwrap();
            assert!(n > 0, "the collector exited before listening:\n{seen}");
            seen.push_str(&String::from_utf8_lossy(&buf[..n]));
            if let Some(rest) = seen.split("listening on http://").nth(1) {
                if let Some(addr) = rest.split_whitespace().next() {
                    break addr.parse().unwrap();
                }
            }
            assert!(started.elapsed() < Duration::from_secs(30), "{seen}");
        };
        child.stderr = Some(stderr);
        Served {
            addr,
            child,
            stderr_seen: seen,
        }
    }

    /// Kills it with SIGKILL (a crash: nothing is flushed or closed) and returns what it wrote.
    pub fn kill(mut self) -> String {
        self.child.kill().unwrap();
        let _ = self.child.wait().unwrap();
        let mut out = String::new();
        self.child
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut out)
            .unwrap();
        format!("{out}{}", self.stderr_seen)
    }

    /// Stops it with SIGTERM and returns its exit status and everything it wrote (stdout then
    /// stderr).
    pub fn stop(mut self) -> (std::process::ExitStatus, String) {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        let mut out = String::new();
        self.child
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut out)
            .unwrap();
        let mut err = String::new();
        self.child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut err)
            .unwrap();
        let status = self.child.wait().unwrap();
        (status, format!("{out}{}{err}", self.stderr_seen))
    }
}
