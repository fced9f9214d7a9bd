//! The reliability suite: slow, idle and flooding clients are closed by the
//! stack's timeouts and caps while others are served; a lowered descriptor
//! limit does not stop any listener; large bodies stay within the journal's
//! byte budget; a stop lets requests in flight finish (in process and on
//! SIGTERM). Everything on loopback, every wait bounded.

#[path = "../mocks/tests/common/mod.rs"]
mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use idprop::mocks::Limits;
use idprop::mocks::{Stack, StackConfig};

/// Limits of one second, so the suite waits seconds, not minutes.
fn quick() -> Limits {
    Limits { header_read_secs: 1, body_read_secs: 1, tls_handshake_secs: 1, ..Limits::default() }
}

async fn start(limits: Limits) -> Stack {
    Stack::start_with(StackConfig { limits, ..StackConfig::default() }).await.unwrap()
}

fn port(stack: &Stack, component: &str) -> u16 {
    stack.components()[component].rsplit(':').next().unwrap().parse().unwrap()
}

/// Reads until the peer closes; what it said, or `None` if still open after `within`.
fn closed_within(mut s: TcpStream, within: Duration) -> Option<String> {
    s.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
    let start = Instant::now();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while start.elapsed() < within {
        match s.read(&mut buf) {
            Ok(0) => return Some(String::from_utf8_lossy(&got).into_owned()),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
            Err(_) => return Some(String::from_utf8_lossy(&got).into_owned()),
        }
    }
    None
}

async fn token_ok(stack: &Stack) -> bool {
    let r = stack
        .http_client()
        .post(format!("{}/oauth/token", stack.uaa_url("mytenant")))
        .basic_auth(idprop::mocks::uaa::APP_CLIENT.0, Some(idprop::mocks::uaa::APP_CLIENT.1))
        .form(&[("grant_type", "client_credentials")])
        .timeout(Duration::from_secs(5))
        .send()
        .await;
    r.is_ok_and(|r| r.status() == 200)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_and_idle_clients_are_closed_by_the_timeouts_while_others_are_served() {
    let stack = start(quick()).await;
    let uaa = port(&stack, "uaa");
    let gw = port(&stack, "gateway");
    let proxy = port(&stack, "connectivity-proxy");
    let backend_tls = port(&stack, "backend-https");
    let open = |p: u16| TcpStream::connect(("127.0.0.1", p)).unwrap();
    let mut clients: Vec<(&str, TcpStream)> = Vec::new();
    clients.push(("a bare socket", open(uaa)));
    let mut partial = open(uaa);
    partial.write_all(b"POST /oauth/token HTTP/1.1\r\nHost: x\r\n").unwrap();
    clients.push(("a partial head", partial));
    let mut tunnel = open(gw);
    tunnel.write_all(b"CONNECT mytenant.authentication.eu10.idp.test:443 HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    clients.push(("a CONNECT tunnel without a handshake", tunnel));
    clients.push(("a silent client of the Connectivity proxy", open(proxy)));
    clients.push(("a TLS listener never greeted", open(backend_tls)));
    let mut idle = open(uaa);
    idle.write_all(b"GET /token_keys HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    clients.push(("an idle kept-alive connection", idle));
    let mut slow = open(uaa);
    slow.write_all(b"POST /oauth/token HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000\r\n\r\ngrant").unwrap();
    clients.push(("a body at a trickle", slow));
    // Meanwhile others are served.
    for _ in 0..5 {
        assert!(token_ok(&stack).await, "a token request failed while slow clients held connections");
    }
    let results = tokio::task::spawn_blocking(move || {
        clients.into_iter().map(|(what, s)| (what, closed_within(s, Duration::from_secs(4)))).collect::<Vec<_>>()
    })
    .await
    .unwrap();
    for (what, r) in results {
        let said = r.unwrap_or_else(|| panic!("{what} was still open after 4 s"));
        if what == "a body at a trickle" {
            assert!(said.contains("408"), "{what}: {said}");
        }
    }
    assert!(token_ok(&stack).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_beyond_the_connection_cap_gets_503_and_other_listeners_serve_on() {
    let stack = start(Limits { max_connections: 8, ..quick() }).await;
    let uaa = port(&stack, "uaa");
    let held: Vec<TcpStream> = (0..8).map(|_| TcpStream::connect(("127.0.0.1", uaa)).unwrap()).collect();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut ninth = TcpStream::connect(("127.0.0.1", uaa)).unwrap();
    ninth.write_all(b"GET /token_keys HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let said = tokio::task::spawn_blocking(move || closed_within(ninth, Duration::from_secs(3))).await.unwrap();
    let said = said.expect("the connection over the cap was not closed");
    assert!(said.starts_with("HTTP/1.1 503") && said.contains("at most 8 connections"), "{said}");
    // The gateway is another listener: it serves (and reaches the UAA in process).
    assert!(token_ok(&stack).await);
    drop(held);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let r = reqwest::Client::new().get(format!("http://127.0.0.1:{uaa}/token_keys")).send().await.unwrap();
    assert_eq!(r.status(), 200, "the listener serves again once the flood is gone");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_bodies_stay_within_the_journal_byte_budget() {
    let budget = 1024 * 1024;
    let stack = Stack::start_with(StackConfig { journal_bytes: budget, ..StackConfig::default() }).await.unwrap();
    let big = "x".repeat(100 * 1024);
    let client = stack.http_client();
    for _ in 0..40 {
        let r = client
            .post(format!("{}/oauth/token", stack.uaa_url("mytenant")))
            .basic_auth(idprop::mocks::uaa::APP_CLIENT.0, Some(idprop::mocks::uaa::APP_CLIENT.1))
            .header("X-Big", big.as_str())
            .form(&[("grant_type", "client_credentials"), ("padding", big.as_str())])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    let stats = stack.journal().stats();
    assert!(stats.bytes <= budget, "{stats:?}");
    assert!(stats.evicted > 0, "{stats:?}");
    let e = stack.journal().of("uaa").pop().unwrap();
    let padding = e.form_field("padding").unwrap();
    assert!(padding.len() < 40 * 1024 && padding.ends_with("more bytes not journalled]"), "{}", padding.len());
    assert!(e.header("x-big").unwrap().contains("more bytes not journalled"));
    // The journal streams as one JSON array, whatever its length.
    let plain = reqwest::Client::new();
    let all: Vec<serde_json::Value> =
        plain.get(format!("{}/__idprop/journal", stack.gateway_url())).send().await.unwrap().json().await.unwrap();
    assert_eq!(all.len(), stats.entries);
    let s: serde_json::Value = plain
        .get(format!("{}/__idprop/journal/stats", stack.gateway_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(s["max_bytes"], budget);
}

#[tokio::test]
async fn the_journal_streams_in_pages_without_losing_an_entry() {
    let stack = Stack::start().await.unwrap();
    let url = format!("{}/__idprop/journal", stack.gateway_url());
    for n in [0usize, 1, 256, 257, 600] {
        stack.journal().clear();
        for i in 0..n {
            stack.journal().record(idprop::mocks::JournalEntry {
                seq: 0,
                time_ms: 0,
                component: "test".into(),
                host: format!("h{i}.test"),
                tls: false,
                method: "GET".into(),
                path: "/".into(),
                query: vec![],
                headers: vec![],
                form: vec![],
                body: None,
                client_cert: None,
                ssl_client_cert: None,
                status: 200,
                latency_ms: 0,
                note: None,
            });
        }
        let all: Vec<serde_json::Value> = reqwest::Client::new().get(&url).send().await.unwrap().json().await.unwrap();
        assert_eq!(all.len(), n);
        if n > 0 {
            assert_eq!(all[n - 1]["host"], format!("h{}.test", n - 1));
            let mid = all[n / 2]["seq"].as_u64().unwrap();
            let after: Vec<serde_json::Value> =
                reqwest::Client::new().get(format!("{url}?since={mid}")).send().await.unwrap().json().await.unwrap();
            assert_eq!(after.len(), n - n / 2 - 1);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_lets_requests_in_flight_finish_then_refuses_new_ones() {
    let stack = start(Limits::default()).await;
    let ts = stack
        .add_token_server(
            "slow.example.test",
            idprop::mocks::TokenServerBehaviour { delay_ms: 800, ..Default::default() },
        )
        .await
        .unwrap();
    let _ = ts;
    let url = format!("{}/oauth/token", stack.components()["token-server:slow.example.test"]);
    let client = reqwest::Client::new();
    let calls: Vec<_> = (0..20)
        .map(|_| {
            let rb = client.post(&url).form(&[("grant_type", "client_credentials"), ("client_id", "c")]);
            tokio::spawn(async move { rb.send().await.map(|r| r.status().as_u16()) })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = Instant::now();
    let cut = stack.shutdown().await;
    assert_eq!(cut, 0, "every listener drained within the grace period");
    assert!(started.elapsed() < Duration::from_secs(5));
    for c in calls {
        assert_eq!(c.await.unwrap().expect("a request in flight was dropped"), 200);
    }
    assert!(client.post(&url).send().await.is_err(), "a new connection was accepted after the stop");
}

/// `idprop up` under `ulimit -n 200`: 300 idle connections to the gateway
/// take no listener down (each listener's cap is fitted to the limit), and a
/// SIGTERM with requests in flight answers all of them before exiting 0.
#[test]
fn idprop_up_under_descriptor_pressure_and_sigterm_with_requests_in_flight() {
    let dir = tempfile::tempdir().unwrap();
    let ready = dir.path().join("ready.json");
    let cfg = dir.path().join("stack.yaml");
    std::fs::write(
        &cfg,
        "token_servers:\n  - host: slow.example.test\n    behaviour: {delay_ms: 1500}\nlimits: {header_read_secs: 2}\n",
    )
    .unwrap();
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "ulimit -n 200 && exec {} up --port 0 --quiet --ready-file {} --state-dir {} --config {}",
            env!("CARGO_BIN_EXE_idprop"),
            ready.display(),
            dir.path().join("state").display(),
            cfg.display()
        ))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    common::wait_for_file(&ready);
    let info: serde_json::Value = serde_json::from_slice(&std::fs::read(&ready).unwrap()).unwrap();
    let comp =
        |k: &str| -> u16 { info["components"][k].as_str().unwrap().rsplit(':').next().unwrap().parse().unwrap() };
    let (gw, uaa, slow) = (comp("gateway"), comp("uaa"), comp("token-server:slow.example.test"));
    let flood: Vec<TcpStream> = (0..300).filter_map(|_| TcpStream::connect(("127.0.0.1", gw)).ok()).collect();
    std::thread::sleep(Duration::from_millis(300));
    let rt = tokio::runtime::Runtime::new().unwrap();
    let served = rt.block_on(async {
        reqwest::Client::new()
            .post(format!("http://127.0.0.1:{uaa}/oauth/token"))
            .basic_auth(idprop::mocks::uaa::APP_CLIENT.0, Some(idprop::mocks::uaa::APP_CLIENT.1))
            .form(&[("grant_type", "client_credentials")])
            .timeout(Duration::from_secs(5))
            .send()
            .await
    });
    let r = served.unwrap_or_else(|e| {
        // Say whether the process is gone, and what it said, rather than
        // only that the port refused (seen once, under a loaded machine).
        let exited = child.try_wait().ok().flatten();
        let _ = child.kill();
        let mut err = String::new();
        let _ = std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err);
        panic!("the UAA's own listener must serve while the gateway is flooded: {e}\nexited: {exited:?}\nstderr: {err}")
    });
    assert_eq!(r.status(), 200);
    drop(flood);
    // SIGTERM with 8 slow requests in flight (under this descriptor limit a
    // listener serves about ten connections at once).
    let statuses = rt.block_on(async {
        let client = reqwest::Client::new();
        let calls: Vec<_> = (0..8)
            .map(|_| {
                let rb = client
                    .post(format!("http://127.0.0.1:{slow}/oauth/token"))
                    .form(&[("grant_type", "client_credentials"), ("client_id", "c")]);
                tokio::spawn(async move { rb.send().await.map(|r| r.status().as_u16()).map_err(|e| e.to_string()) })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(400)).await;
        // SAFETY: kill sends a signal to a child we started.
        assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGTERM) }, 0);
        let mut out = Vec::new();
        for c in calls {
            out.push(c.await.unwrap());
        }
        out
    });
    for s in &statuses {
        assert_eq!(s.as_ref().ok(), Some(&200), "a request in flight at SIGTERM: {s:?}");
    }
    let status = child.wait().unwrap();
    let mut err = String::new();
    child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    assert_eq!(status.code(), Some(0), "{err}");
    assert!(err.contains("stopping"), "{err}");
    assert!(!ready.exists(), "the ready file outlived the stack");
    assert!(TcpStream::connect(("127.0.0.1", slow)).is_err());
}
