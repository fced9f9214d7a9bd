//! `idprop adapter`: a builtin implementation (the reference) served over
//! stdin/stdout as an `exec` adapter of protocol v1.2. It is what an
//! adapter in another language looks like from the harness's side, and it
//! plays every role, token retrieval included, so `exec:` runs can be
//! compared with `builtin:` ones:
//!
//!     idprop run --impl 'exec:idprop adapter'
//!
//! It says `reusable`: the network comes from each request and `reset`
//! empties its caches. `--leak-cache-on-reset` breaks that promise on
//! purpose (the token cache survives `reset`), to show what the cache
//! scenarios catch in a process that serves one scenario after another.

use std::sync::Arc;

use anyhow::{Context, Result};
use idprop_harness::driver::builtin::Builtin;
use idprop_harness::protocol::{id_of, not_ok, NetworkInfo, SessionEnv};
use idprop_harness::reference::Reference;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

#[derive(clap::Args, Debug)]
pub struct AdapterArgs {
    /// Which builtin: `reference` or `reference/alt`.
    #[arg(long, default_value = "reference")]
    builtin: String,
    /// Deliberately broken: keep the token cache over `reset`.
    #[arg(long)]
    leak_cache_on_reset: bool,
}

pub fn run(args: AdapterArgs) -> Result<std::process::ExitCode> {
    let builtin = Builtin::new(&args.builtin).map_err(anyhow::Error::msg)?;
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().context("starting the runtime")?;
    rt.block_on(serve(builtin, args.leak_cache_on_reset))?;
    Ok(std::process::ExitCode::SUCCESS)
}

/// Requests are handled concurrently (a scenario may send several at once)
/// and answered in order, one JSON line each.
async fn serve(builtin: Builtin, leak: bool) -> Result<()> {
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    // Each request's id beside its answer-to-be: a task that died still
    // answers under its request's id.
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(u64, tokio::task::JoinHandle<Value>)>();
    let writer = tokio::spawn(async move {
        let mut out = tokio::io::stdout();
        while let Some((id, answer)) = rx.recv().await {
            let v = answer.await.unwrap_or_else(|e| not_ok(id, "internal", &e.to_string()));
            let mut line = v.to_string();
            line.push('\n');
            if out.write_all(line.as_bytes()).await.is_err() || out.flush().await.is_err() {
                break;
            }
        }
    });
    let mut imp: Option<Arc<Reference>> = None;
    while let Some(line) = lines.next_line().await.context("reading stdin")? {
        if line.trim().is_empty() {
            continue;
        }
        let req: Value = match serde_json::from_str(&line) {
            Ok(v) => v,
            Err(e) => {
                let v = not_ok(0, "bad_request", &format!("not JSON: {e}"));
                let _ = tx.send((0, tokio::spawn(async move { v })));
                continue;
            }
        };
        // The implementation is made with the first request's network and
        // follows the network of every later one.
        let id = id_of(&req);
        if imp.is_none() {
            let network = req.get("network").and_then(|n| serde_json::from_value::<NetworkInfo>(n.clone()).ok());
            let Some(network) = network else {
                let v = not_ok(id, "bad_request", "the first request must carry network");
                let _ = tx.send((id, tokio::spawn(async move { v })));
                continue;
            };
            let env = SessionEnv { network, vcap_services: None };
            let r = builtin.implementation(&env).map_err(anyhow::Error::msg)?;
            imp = Some(Arc::new(if leak { r.leaking_cache_on_reset() } else { r }));
        }
        let r = imp.clone().expect("made above");
        let _ = tx.send((id, tokio::spawn(async move { r.handle(&req).await })));
    }
    drop(tx);
    let _ = writer.await;
    Ok(())
}
