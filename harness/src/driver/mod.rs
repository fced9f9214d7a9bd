//! Drivers: how the harness talks to an implementation, one per transport
//! of the adapter protocol (`builtin:`, `exec:`, `http:`).

use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;

pub mod builtin;
pub mod exec;
pub mod http;

pub use crate::protocol::SessionEnv;

pub use crate::protocol::DriverError;

/// How a session ended.
#[derive(Debug, Clone, Default)]
pub struct SessionEnd {
    /// The adapter's stderr (tail).
    pub stderr: String,
    /// A protocol problem at the end (did not exit in time, …).
    pub problem: Option<String>,
}

/// An implementation the harness can check.
#[async_trait]
pub trait Driver: Send + Sync {
    /// `builtin:reference`, `exec:…`, `http:…`.
    fn describe(&self) -> String;
    /// Starts a session for one scenario (a fresh process, a reset, …).
    async fn open(&self, env: &SessionEnv) -> Result<Box<dyn Session>, DriverError>;
}

/// One scenario's conversation with an implementation.
#[async_trait]
pub trait Session: Send {
    /// Sends requests and returns each answer (the whole JSON answer, `id`
    /// already checked) in order. `concurrent` lets transports that can
    /// send them at once; all of them must be answered within `deadline`.
    async fn send(
        &mut self,
        requests: Vec<Value>,
        concurrent: bool,
        deadline: Duration,
    ) -> Vec<Result<Value, DriverError>>;
    /// Ends the session.
    async fn close(self: Box<Self>) -> SessionEnd;
}

/// Parses `builtin:NAME`, `exec:COMMAND`, `http:URL`.
pub fn from_spec(spec: &str) -> Result<Box<dyn Driver>, String> {
    if let Some(name) = spec.strip_prefix("builtin:") {
        return builtin::Builtin::new(name).map(|b| Box::new(b) as Box<dyn Driver>);
    }
    if let Some(cmd) = spec.strip_prefix("exec:") {
        if cmd.trim().is_empty() {
            return Err("exec: needs a command line".into());
        }
        return Ok(Box::new(exec::Exec::new(cmd)));
    }
    if let Some(url) = spec.strip_prefix("http:") {
        let url = if url.starts_with("//") { format!("http:{url}") } else { url.to_string() };
        return http::Http::new(&url).map(|h| Box::new(h) as Box<dyn Driver>);
    }
    Err(format!("unknown implementation {spec:?}: use builtin:NAME, exec:COMMAND or http:URL"))
}
