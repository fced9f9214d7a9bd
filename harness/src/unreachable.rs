//! A token service whose TCP connect really hangs: a loopback listener whose
//! accept queue is full, so the kernel drops new SYNs and `connect()` waits.
//!
//! Through the gateway a slow connect can only be a late answer to
//! `CONNECT`, which some clients time with their read timeout; this host is
//! reached without the proxy (it is in `NO_PROXY`), so every client times it
//! with its connect timeout (`TO-1`, `TO-2`). Scenarios name it
//! `{{unreachable}}` (`127.0.0.1:<port>`).

use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::{TcpSocket, TcpStream};

/// The listener and the connections that fill its queue; dropping it
/// closes them.
pub struct Unreachable {
    addr: SocketAddr,
    _listener: tokio::net::TcpListener,
    _fill: Vec<TcpStream>,
}

/// What goes into `NO_PROXY`: the loopback address the hanging host uses.
pub const NO_PROXY: &str = "127.0.0.1";

impl Unreachable {
    /// Binds a listener with a backlog of one and connects until a connect
    /// no longer completes: from then on every connect hangs.
    pub async fn bind() -> std::io::Result<Unreachable> {
        let socket = TcpSocket::new_v4()?;
        socket.bind("127.0.0.1:0".parse().expect("valid address"))?;
        let listener = socket.listen(1)?;
        let addr = listener.local_addr()?;
        let mut fill = Vec::new();
        for _ in 0..16 {
            match tokio::time::timeout(Duration::from_millis(100), TcpStream::connect(addr)).await {
                Ok(Ok(s)) => fill.push(s),
                _ => break,
            }
        }
        Ok(Unreachable { addr, _listener: listener, _fill: fill })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn a_connect_to_it_hangs() {
        let u = super::Unreachable::bind().await.unwrap();
        let t = std::time::Instant::now();
        let r =
            tokio::time::timeout(std::time::Duration::from_millis(700), tokio::net::TcpStream::connect(u.addr())).await;
        assert!(r.is_err(), "connect completed: {r:?}");
        assert!(t.elapsed() >= std::time::Duration::from_millis(650));
    }
}
