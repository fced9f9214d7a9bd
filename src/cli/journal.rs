//! `idprop journal`: the traffic of a running `idprop up`, one line per hop.

use std::collections::HashSet;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Args;
use idprop_mocks::JournalEntry;

#[derive(Args, Debug)]
pub struct JournalArgs {
    /// The gateway of the running stack.
    #[arg(long, default_value = "http://127.0.0.1:8480")]
    gateway: String,
    /// Keep printing new requests as they happen.
    #[arg(long, short)]
    follow: bool,
    /// Print headers and form fields too (tokens shortened unless --show-secrets).
    #[arg(long, short)]
    verbose: bool,
    /// Do not shorten tokens and secrets.
    #[arg(long)]
    show_secrets: bool,
}

pub fn run(args: JournalArgs) -> Result<std::process::ExitCode> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    rt.block_on(follow(args))
}

async fn follow(args: JournalArgs) -> Result<std::process::ExitCode> {
    let client = reqwest::Client::builder().no_proxy().build()?;
    let mut printed: HashSet<u64> = HashSet::new();
    let mut since = 0u64;
    loop {
        let url = format!("{}/__idprop/journal?since={since}", args.gateway.trim_end_matches('/'));
        let entries: Vec<JournalEntry> = client
            .get(&url)
            .send()
            .await
            .with_context(|| format!("is `idprop up` running? cannot reach {url}"))?
            .json()
            .await
            .context("reading the journal")?;
        for e in &entries {
            // Requests still waiting for their answer are printed once answered.
            if e.status == 0 && e.note.is_none() && args.follow {
                continue;
            }
            if printed.insert(e.seq) {
                println!("{}", e.one_line());
                if args.verbose {
                    for (k, v) in &e.headers {
                        println!("      {k}: {}", shorten(v, args.show_secrets));
                    }
                    for (k, v) in &e.form {
                        println!("      form {k}={}", shorten(v, args.show_secrets));
                    }
                }
            }
        }
        // Keep asking from the oldest unanswered entry.
        since = entries
            .iter()
            .filter(|e| e.status == 0 && e.note.is_none())
            .map(|e| e.seq - 1)
            .min()
            .unwrap_or_else(|| entries.iter().map(|e| e.seq).max().unwrap_or(since));
        if !args.follow {
            return Ok(std::process::ExitCode::SUCCESS);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Tokens and secrets are shortened in logs unless asked otherwise.
pub fn shorten(v: &str, show: bool) -> String {
    if show {
        return v.to_string();
    }
    v.split(' ')
        .map(|w| {
            if w.len() > 24 {
                format!(
                    "{}…({} chars)",
                    &w[..w.char_indices().nth(12).map(|(i, _)| i).unwrap_or(w.len())],
                    w.chars().count()
                )
            } else {
                w.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}
