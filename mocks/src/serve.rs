//! One accept loop for every listener of the stack, with the limits that
//! keep a hostile client from holding anything: header, body and handshake
//! timeouts, a cap on connections per listener, and a graceful stop.
//!
//! A slow or idle client is closed by the timeouts (seconds, not minutes); a
//! flood beyond [`Limits::max_connections`] is answered 503 at once, so one
//! client cannot take every file descriptor from the others; a stop
//! ([`Shutdown::drain`]) closes the listeners, lets requests in flight finish
//! within [`Limits::grace_secs`], and closes idle connections.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;

/// A running listener; stops accepting and drops its connections on drop.
#[derive(Debug)]
pub struct ServerHandle {
    pub addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl ServerHandle {
    pub(crate) fn new(addr: SocketAddr, task: tokio::task::JoinHandle<()>) -> Self {
        Self { addr, task }
    }

    /// Resolves when the listener has stopped and its connections ended.
    pub async fn finished(&mut self) {
        let _ = (&mut self.task).await;
    }
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The limits every listener applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Seconds a client has to send a request's head, and to start the next
    /// one on a kept-alive connection (idle connections close after it).
    pub header_read_secs: u64,
    /// Seconds a client has to send a request's body.
    pub body_read_secs: u64,
    /// Seconds for a TLS handshake, and for the first byte the Connectivity
    /// proxy peeks at.
    pub tls_handshake_secs: u64,
    /// Connections one listener serves at once; more are answered 503. The
    /// stack lowers it when the process's file-descriptor limit would not
    /// leave room for every listener ([`Limits::fitted`]).
    pub max_connections: usize,
    /// Seconds a stop waits for requests in flight.
    pub grace_secs: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self { header_read_secs: 10, body_read_secs: 30, tls_handshake_secs: 10, max_connections: 512, grace_secs: 10 }
    }
}

/// Descriptors kept aside for outgoing connections, files and the runtime.
const RESERVED_FDS: u64 = 64;

impl Limits {
    /// Refuses values that would disable a limit.
    pub fn validate(&self) -> Result<(), String> {
        let secs = [
            ("header_read_secs", self.header_read_secs),
            ("body_read_secs", self.body_read_secs),
            ("tls_handshake_secs", self.tls_handshake_secs),
        ];
        for (name, v) in secs {
            if !(1..=3600).contains(&v) {
                return Err(format!("limits.{name}: {v} is out of range (1..=3600 seconds)"));
            }
        }
        if self.grace_secs > 3600 {
            return Err(format!("limits.grace_secs: {} is out of range (0..=3600 seconds)", self.grace_secs));
        }
        if self.max_connections == 0 {
            return Err("limits.max_connections: must be at least 1".into());
        }
        Ok(())
    }

    /// These limits with `max_connections` lowered so that `listeners`
    /// listeners at their cap still leave descriptors for the rest of the
    /// process (`RLIMIT_NOFILE`).
    pub fn fitted(mut self, listeners: usize) -> Self {
        if let Some(nofile) = fd_limit() {
            let per = nofile.saturating_sub(RESERVED_FDS) / listeners.max(1) as u64;
            self.max_connections = self.max_connections.min(per.max(4) as usize);
        }
        self
    }

    pub fn header_read(&self) -> Duration {
        Duration::from_secs(self.header_read_secs)
    }
    pub fn body_read(&self) -> Duration {
        Duration::from_secs(self.body_read_secs)
    }
    pub fn tls_handshake(&self) -> Duration {
        Duration::from_secs(self.tls_handshake_secs)
    }
    pub fn grace(&self) -> Duration {
        Duration::from_secs(self.grace_secs)
    }
}

/// The soft `RLIMIT_NOFILE` of this process, when it is finite.
fn fd_limit() -> Option<u64> {
    let mut r = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit writes into the struct we pass and reads nothing else.
    let ok = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) } == 0;
    (ok && r.rlim_cur != libc::RLIM_INFINITY).then_some(r.rlim_cur)
}

/// What every connection of a stack shares: its limits and the stop signal.
#[derive(Debug, Clone)]
pub struct Lifecycle {
    pub limits: Limits,
    stop: watch::Receiver<bool>,
}

impl Lifecycle {
    /// Resolves once the stack is stopping (at once if it already is).
    pub async fn stopping(&self) {
        let mut rx = self.stop.clone();
        let _ = rx.wait_for(|s| *s).await;
    }
}

/// The other end of [`Lifecycle`]: stops every listener of a stack.
#[derive(Debug)]
pub struct Shutdown {
    tx: watch::Sender<bool>,
}

/// A lifecycle for listeners that share `limits`, and its stop switch.
pub fn lifecycle(limits: Limits) -> (Shutdown, Lifecycle) {
    let (tx, stop) = watch::channel(false);
    (Shutdown { tx }, Lifecycle { limits, stop })
}

impl Shutdown {
    /// Stops accepting everywhere and tells every connection to finish its
    /// request in flight and close; then waits for `servers` to end, at
    /// most the grace period. Returns how many had to be cut off.
    pub async fn drain(&self, servers: Vec<ServerHandle>, grace: Duration) -> usize {
        let _ = self.tx.send(true);
        let deadline = tokio::time::Instant::now() + grace;
        let mut cut = 0;
        for mut s in servers {
            if tokio::time::timeout_at(deadline, s.finished()).await.is_err() {
                cut += 1;
            }
        }
        cut
    }
}

/// Accepts connections on `listener` until the stack stops, handing each to
/// `serve` under the stack's connection cap; `name` appears in the 503 a
/// connection beyond the cap gets. On stop the listener closes and the loop
/// waits for its connections (each told to finish by the same signal).
pub fn listen<F, Fut>(listener: TcpListener, life: Lifecycle, name: &'static str, serve: F) -> ServerHandle
where
    F: Fn(TcpStream) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let addr = listener.local_addr().expect("bound listener has an address");
    let slots = Arc::new(Semaphore::new(life.limits.max_connections));
    let task = tokio::spawn(async move {
        let mut conns = JoinSet::new();
        loop {
            while conns.try_join_next().is_some() {}
            let (stream, _peer) = tokio::select! {
                biased;
                _ = life.stopping() => break,
                c = accept(&listener) => c,
            };
            let _ = stream.set_nodelay(true);
            match slots.clone().try_acquire_owned() {
                Ok(permit) => {
                    let fut = serve(stream);
                    conns.spawn(async move {
                        let _permit = permit;
                        fut.await
                    });
                }
                Err(_) => {
                    conns.spawn(refuse_busy(stream, name, life.limits.max_connections));
                }
            }
        }
        drop(listener);
        while conns.join_next().await.is_some() {}
    });
    ServerHandle::new(addr, task)
}

/// The next connection. A failed accept (out of file descriptors, say) is
/// retried after a pause instead of spinning.
async fn accept(listener: &TcpListener) -> (TcpStream, SocketAddr) {
    loop {
        match listener.accept().await {
            Ok(c) => return c,
            Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
}

/// A connection over the cap: a plain-text 503 and the door closed.
async fn refuse_busy(mut stream: TcpStream, name: &str, limit: usize) {
    let body = format!("idprop: {name} serves at most {limit} connections at once; try again\n");
    let resp = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nretry-after: 1\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        // Read what the client sent first, so closing is not a reset that
        // hides the answer.
        let mut sink = [0u8; 4096];
        let _ = tokio::time::timeout(Duration::from_millis(50), async {
            use tokio::io::AsyncReadExt;
            let _ = stream.read(&mut sink).await;
        })
        .await;
        let _ = stream.write_all(resp.as_bytes()).await;
        let _ = stream.shutdown().await;
    })
    .await;
}
