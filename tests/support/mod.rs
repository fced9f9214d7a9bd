//! What the binary's tests share: an `idprop up` process and the example
//! applications started from its `env.sh`, as a user would.
#![allow(dead_code)]

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

pub fn idprop() -> Command {
    Command::new(env!("CARGO_BIN_EXE_idprop"))
}

/// A child process killed (and reaped) on drop.
pub struct Running(pub Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `idprop up --port 0` in a temporary directory: its ready file read, its
/// state directory (`env.sh`, `.env`, …) known.
pub struct Up {
    pub process: Running,
    pub info: Value,
    pub state: PathBuf,
    pub dir: tempfile::TempDir,
}

impl Up {
    pub fn start() -> Up {
        let dir = tempfile::tempdir().unwrap();
        let ready = dir.path().join("ready.json");
        let state = dir.path().join("state");
        let process = Running(
            idprop()
                .args(["up", "--port", "0", "--quiet", "--ready-file"])
                .arg(&ready)
                .arg("--state-dir")
                .arg(&state)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        );
        wait_for_file(&ready);
        let info = serde_json::from_slice(&std::fs::read(&ready).unwrap()).unwrap();
        Up { process, info, state, dir }
    }

    pub fn gateway(&self) -> String {
        self.info["gateway"].as_str().unwrap().to_string()
    }

    /// `source <state>/env.sh && exec <example>/start.sh` with nothing else
    /// in the environment but `PATH`, `HOME` and `PORT`; returns once the
    /// example listens on `port` (panics with its stderr if it exits).
    pub fn start_example(&self, example: &Path, port: u16) -> Running {
        let mut app = Running(
            Command::new("sh")
                .arg("-c")
                .arg(r#". "$1/env.sh" && exec "$2/start.sh""#)
                .arg("sh")
                .arg(&self.state)
                .arg(example)
                .env_clear()
                .env("PATH", std::env::var("PATH").unwrap_or_default())
                .env("HOME", self.dir.path())
                .env("PORT", port.to_string())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap(),
        );
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = app.0.try_wait() {
                let mut err = String::new();
                app.0.stderr.take().unwrap().read_to_string(&mut err).unwrap();
                panic!("{} exited ({status}): {err}", example.display());
            }
            assert!(started.elapsed() < Duration::from_secs(60), "{} did not listen", example.display());
            std::thread::sleep(Duration::from_millis(100));
        }
        app
    }

    /// The gateway's journal, as `GET /__idprop/journal` gives it.
    pub async fn journal(&self) -> Vec<Value> {
        reqwest::get(format!("{}/__idprop/journal", self.gateway())).await.unwrap().json().await.unwrap()
    }
}

pub fn wait_for_file(path: &Path) {
    let t = Instant::now();
    while !path.exists() {
        assert!(t.elapsed() < Duration::from_secs(10), "{} did not appear", path.display());
        std::thread::sleep(Duration::from_millis(10));
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}
