//! `exec:<command line>`: a process per scenario, JSON Lines on
//! stdin/stdout, stderr kept, its whole process group killed at the end.
//!
//! An adapter whose `hello` says `reusable` (protocol v1.2) is kept instead
//! and serves a later scenario after a `reset`: the process start (an
//! interpreter, an SDK's imports) is paid once per job, not per scenario.
//! Request ids are renumbered per process so they stay unique within it.

use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

use super::{Driver, DriverError, Session, SessionEnd, SessionEnv};
use crate::protocol::{excerpt, id_of};

/// How long an adapter may take to exit once its stdin is closed.
pub const EXIT_GRACE: Duration = Duration::from_secs(5);
/// Kept tail of an adapter's stderr.
const STDERR_KEEP: usize = 16 * 1024;

/// Idle processes of reusable adapters kept at most.
const MAX_IDLE: usize = 32;
/// How long a kept process may take to answer the `reset` that starts its
/// next scenario; a slower one is replaced by a fresh process.
const RESET_DEADLINE: Duration = Duration::from_secs(5);

/// Runs a command line through `sh -c`.
#[derive(Debug, Clone)]
pub struct Exec {
    command: String,
    /// Processes of a reusable adapter between scenarios.
    idle: Arc<Mutex<Vec<ExecSession>>>,
    /// Processes alive, whether one said `reusable`, and what a start
    /// costs: a scenario waits for a kept process as long as starting a new
    /// one takes, then starts its own (an SDK's imports can cost more than
    /// most scenarios; a scenario holding a process for seconds must not
    /// queue the rest).
    live: Arc<Live>,
}

/// How many starts' worth of time a scenario waits for a kept process.
const WAIT_FACTOR: u32 = 4;

#[derive(Debug, Default)]
struct Live {
    /// Processes alive.
    count: std::sync::atomic::AtomicUsize,
    /// Some process said `reusable` in its `hello`.
    reusable: std::sync::atomic::AtomicBool,
    /// Microseconds from the first start to its `hello` answer; 0 until a
    /// `hello` was answered (until then nobody knows what the adapter is).
    start_cost_us: std::sync::atomic::AtomicU64,
    returned: tokio::sync::Notify,
}

impl Exec {
    pub fn new(command: &str) -> Self {
        Self { command: command.to_string(), idle: Arc::default(), live: Arc::default() }
    }

    /// A kept process that answered `reset`, if any.
    async fn reuse(&self) -> Option<ExecSession> {
        loop {
            let mut s = self.idle.lock().expect("idle lock").pop()?;
            if !matches!(s.child.try_wait(), Ok(None)) {
                continue;
            }
            s.stderr.lock().expect("stderr lock").clear();
            let ok = s
                .send(vec![crate::protocol::reset()], false, RESET_DEADLINE)
                .await
                .pop()
                .is_some_and(|a| a.is_ok_and(|a| a.get("ok").and_then(Value::as_bool) == Some(true)));
            if ok {
                return Some(s);
            }
        }
    }
}

#[async_trait]
impl Driver for Exec {
    fn describe(&self) -> String {
        format!("exec:{}", self.command)
    }

    async fn open(&self, env: &SessionEnv) -> Result<Box<dyn Session>, DriverError> {
        use std::sync::atomic::Ordering::SeqCst;
        let mut waited = Duration::ZERO;
        loop {
            if let Some(s) = self.reuse().await {
                return Ok(Box::new(s));
            }
            let live = self.live.count.load(SeqCst);
            let known = self.live.start_cost_us.load(SeqCst) > 0;
            // Until the first process has said what it is, one start is
            // enough: the others wait for its verdict (at most 10 s).
            let first_unanswered = !known && live > 0 && waited < Duration::from_secs(10);
            // A reusable adapter's process is worth waiting for while the
            // wait is short beside a start (a start costs its CPU to every
            // other job too); after that, a start of its own.
            let start_cost = Duration::from_micros(self.live.start_cost_us.load(SeqCst));
            let worth_waiting = self.live.reusable.load(SeqCst) && live > 0 && waited < start_cost * WAIT_FACTOR;
            if !first_unanswered && !worth_waiting {
                break;
            }
            // Every allowed process is busy: wait for one to come back (or
            // die), re-checking now and then.
            let t = tokio::time::Instant::now();
            let _ = tokio::time::timeout(Duration::from_millis(50), self.live.returned.notified()).await;
            waited += t.elapsed();
        }
        let mut cmd = Command::new("sh");
        cmd.arg("-c").arg(&self.command);
        let n = &env.network;
        cmd.env("IDPROP_PROTOCOL", "1");
        for k in ["HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"] {
            cmd.env(k, &n.proxy);
        }
        for k in ["NO_PROXY", "no_proxy"] {
            cmd.env(k, &n.no_proxy);
        }
        for k in ["SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "NODE_EXTRA_CA_CERTS", "IDPROP_CA_FILE"] {
            cmd.env(k, &n.ca_file);
        }
        match &env.vcap_services {
            Some(v) => cmd.env("VCAP_SERVICES", v),
            None => cmd.env_remove("VCAP_SERVICES"),
        };
        cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
        cmd.process_group(0);
        cmd.kill_on_drop(true);
        let mut child = cmd.spawn().map_err(|e| DriverError::Spawn(format!("cannot start `{}`: {e}", self.command)))?;
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().map(BufReader::new);
        let stderr_buf = Arc::new(Mutex::new(String::new()));
        if let Some(mut err) = child.stderr.take() {
            let buf = stderr_buf.clone();
            tokio::spawn(async move {
                let mut chunk = [0u8; 4096];
                while let Ok(n) = err.read(&mut chunk).await {
                    if n == 0 {
                        break;
                    }
                    let mut b = buf.lock().expect("stderr lock");
                    b.push_str(&String::from_utf8_lossy(&chunk[..n]));
                    if b.len() > STDERR_KEEP {
                        let cut = b.len() - STDERR_KEEP;
                        let cut = (cut..b.len()).find(|i| b.is_char_boundary(*i)).unwrap_or(b.len());
                        b.drain(..cut);
                    }
                }
            });
        }
        let pgid = child.id().map(|p| p as i32);
        self.live.count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Ok(Box::new(ExecSession {
            child,
            pgid,
            stdin,
            stdout,
            stderr: stderr_buf,
            broken: None,
            next_id: 1,
            reusable: false,
            idle: Arc::downgrade(&self.idle),
            live: self.live.clone(),
            started: Some(std::time::Instant::now()),
            troubled: false,
        }))
    }
}

struct ExecSession {
    child: Child,
    pgid: Option<i32>,
    stdin: Option<ChildStdin>,
    stdout: Option<BufReader<ChildStdout>>,
    stderr: Arc<Mutex<String>>,
    /// Once the stream is out of step (garbage, timeout) every later request fails.
    broken: Option<DriverError>,
    /// The id the next request gets in this process.
    next_id: u64,
    /// Its `hello` said `reusable`.
    reusable: bool,
    /// Where it goes between scenarios when reusable.
    idle: std::sync::Weak<Mutex<Vec<ExecSession>>>,
    /// The driver's count of live processes (this one among them).
    live: Arc<Live>,
    /// When it was started, until its first `hello` is answered.
    started: Option<std::time::Instant>,
    /// It answered `ok:false` during this scenario: not kept.
    troubled: bool,
}

impl std::fmt::Debug for ExecSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExecSession")
            .field("pgid", &self.pgid)
            .field("reusable", &self.reusable)
            .finish_non_exhaustive()
    }
}

impl ExecSession {
    fn stderr_tail(&self) -> String {
        let s = self.stderr.lock().expect("stderr lock").clone();
        let lines: Vec<&str> = s.lines().collect();
        lines[lines.len().saturating_sub(5)..].join(" | ")
    }

    async fn exited(&mut self) -> String {
        // Give the process a moment to be reaped so its status is known.
        let status = tokio::time::timeout(Duration::from_millis(500), self.child.wait()).await;
        let how = match status {
            Ok(Ok(s)) => format!("exited ({s})"),
            _ => "closed its stdout".into(),
        };
        let tail = self.stderr_tail();
        if tail.is_empty() {
            format!("adapter {how} before answering")
        } else {
            format!("adapter {how} before answering; stderr: {tail}")
        }
    }

    async fn read_answer(&mut self, request: &Value, shown: u64) -> Result<Value, DriverError> {
        let protocol = DriverError::Protocol;
        let stdout = self.stdout.as_mut().ok_or(DriverError::Crashed("adapter stdout unavailable".into()))?;
        loop {
            let mut line = String::new();
            let n = stdout
                .read_line(&mut line)
                .await
                .map_err(|e| DriverError::Crashed(format!("reading adapter stdout: {e}")))?;
            if n == 0 {
                return Err(DriverError::Crashed(self.exited().await));
            }
            if line.trim().is_empty() {
                continue;
            }
            let v: Value = serde_json::from_str(line.trim()).map_err(|e| {
                protocol(format!("adapter wrote a line that is not JSON ({e}): {}", excerpt(line.trim())))
            })?;
            let want = id_of(request);
            return match v.get("id").and_then(Value::as_u64) {
                Some(id) if id == want => Ok(v),
                Some(id) => Err(protocol(format!(
                    "adapter answered id {} to request id {shown}",
                    id.wrapping_sub(want).wrapping_add(shown)
                ))),
                None => Err(protocol(format!("adapter answer has no integer id: {}", excerpt(line.trim())))),
            };
        }
    }

    fn kill_group(&mut self) {
        if let Some(pgid) = self.pgid.take() {
            // SAFETY: kill(2) with a negative pid signals the process group
            // we created for this adapter (process_group(0)); no memory is involved.
            unsafe {
                libc::kill(-pgid, libc::SIGKILL);
            }
        }
    }
}

#[async_trait]
impl Session for ExecSession {
    async fn send(
        &mut self,
        requests: Vec<Value>,
        _concurrent: bool,
        deadline: Duration,
    ) -> Vec<Result<Value, DriverError>> {
        if let Some(b) = &self.broken {
            return requests.iter().map(|_| Err(b.clone())).collect();
        }
        // Ids unique within the process, whichever scenario it serves; the
        // caller sees its own ids back.
        let asked: Vec<Value> = requests.iter().map(|r| r.get("id").cloned().unwrap_or(Value::Null)).collect();
        let hello_at: Vec<bool> =
            requests.iter().map(|r| r.get("op").and_then(Value::as_str) == Some("hello")).collect();
        let requests: Vec<Value> = requests
            .into_iter()
            .map(|mut r| {
                r["id"] = Value::from(self.next_id);
                self.next_id += 1;
                r
            })
            .collect();
        // Pipelined: all lines written, answers read in order (the protocol
        // answers in order; an adapter may work on them concurrently).
        let mut lines = String::new();
        for r in &requests {
            lines.push_str(&r.to_string());
            lines.push('\n');
        }
        let write = async {
            let stdin = self.stdin.as_mut().ok_or("adapter stdin already closed".to_string())?;
            stdin.write_all(lines.as_bytes()).await.map_err(|e| format!("writing to adapter stdin: {e}"))?;
            stdin.flush().await.map_err(|e| format!("writing to adapter stdin: {e}"))
        };
        if let Err(e) = write.await {
            let e = DriverError::Crashed(format!("{e}; {}", self.exited().await));
            self.broken = Some(e.clone());
            return requests.iter().map(|_| Err(e.clone())).collect();
        }
        let mut out = Vec::new();
        let started = tokio::time::Instant::now();
        for (r, shown) in requests.iter().zip(&asked) {
            let left = deadline.saturating_sub(started.elapsed());
            // Errors name the caller's ids, not the process's.
            let shown = shown.as_u64().unwrap_or(0);
            let answer = match tokio::time::timeout(left, self.read_answer(r, shown)).await {
                Ok(a) => a,
                Err(_) => Err(DriverError::Deadline { id: shown, seconds: deadline.as_secs_f64() }),
            };
            if let Err(e) = &answer {
                self.broken = Some(e.clone());
            }
            out.push(answer);
            if self.broken.is_some() {
                break;
            }
        }
        while out.len() < requests.len() {
            out.push(Err(self.broken.clone().unwrap_or(DriverError::Protocol("an earlier answer failed".into()))));
        }
        for ((a, id), hello) in out.iter_mut().zip(asked).zip(hello_at) {
            if let Ok(v) = a {
                // Kept only after a scenario that went well: an `ok:false`
                // answer means the adapter could not process a message.
                if v.get("ok").and_then(Value::as_bool) == Some(false) {
                    self.troubled = true;
                }
                if hello {
                    self.reusable = v
                        .get("result")
                        .and_then(|r| serde_json::from_value::<crate::protocol::Hello>(r.clone()).ok())
                        .is_some_and(|h| h.reusable);
                    if self.reusable {
                        self.live.reusable.store(true, std::sync::atomic::Ordering::SeqCst);
                    }
                    if let Some(t) = self.started.take() {
                        let us = t.elapsed().as_micros().min(u64::MAX as u128) as u64;
                        let _ = self.live.start_cost_us.compare_exchange(
                            0,
                            us.max(1),
                            std::sync::atomic::Ordering::SeqCst,
                            std::sync::atomic::Ordering::SeqCst,
                        );
                    }
                    self.live.returned.notify_waiters();
                }
                v["id"] = id;
            }
        }
        out
    }

    async fn close(mut self: Box<Self>) -> SessionEnd {
        if self.reusable && !self.troubled && self.broken.is_none() && matches!(self.child.try_wait(), Ok(None)) {
            if let Some(idle) = self.idle.upgrade() {
                let mut idle = idle.lock().expect("idle lock");
                if idle.len() < MAX_IDLE {
                    let stderr = std::mem::take(&mut *self.stderr.lock().expect("stderr lock"));
                    let live = self.live.clone();
                    idle.push(*self);
                    drop(idle);
                    live.returned.notify_one();
                    return SessionEnd { stderr, problem: None };
                }
            }
        }
        drop(self.stdin.take());
        let problem = match tokio::time::timeout(EXIT_GRACE, self.child.wait()).await {
            Ok(_) => None,
            Err(_) => Some(format!(
                "adapter did not exit within {} s of its stdin closing; its process group was killed",
                EXIT_GRACE.as_secs()
            )),
        };
        // Always: children it left behind go with the group.
        self.kill_group();
        let _ = self.child.start_kill();
        SessionEnd { stderr: self.stderr.lock().expect("stderr lock").clone(), problem }
    }
}

impl Drop for ExecSession {
    fn drop(&mut self) {
        self.kill_group();
        self.live.count.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
        self.live.returned.notify_one();
    }
}
