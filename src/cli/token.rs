//! `idprop token`: a user token signed with the committed default key, no
//! running stack needed.

use anyhow::{bail, Context, Result};
use clap::Args;
use serde_json::Value;

use idprop_mocks::uaa::{MockUaa, UaaConfig};

#[derive(Args, Debug, Clone)]
pub struct TokenArgs {
    /// Tenant subdomain (decides `iss`, `zid`, `ext_attr.zdn`).
    #[arg(long)]
    tenant: String,
    /// User the token is for (known users get their configured claims).
    #[arg(long, default_value = "alice")]
    user: String,
    /// Client the token was issued to.
    #[arg(long)]
    client: Option<String>,
    /// Add or override a claim: `key=value`; the value is JSON when it parses, else a string.
    #[arg(long = "claim", value_name = "KEY=VALUE")]
    claims: Vec<String>,
    /// Remove a claim.
    #[arg(long = "drop", value_name = "KEY")]
    drops: Vec<String>,
    /// Signing key id (`key-1`, `key-2`; `rogue` is a key nobody publishes).
    #[arg(long)]
    kid: Option<String>,
    /// Print this many tokens, one per line, for users `<user>-0` … `<user>-N-1`.
    #[arg(long)]
    count: Option<usize>,
    /// UAA domain.
    #[arg(long, default_value = idprop_mocks::uaa::DEFAULT_UAA_DOMAIN)]
    uaa_domain: String,
}

pub fn run(args: TokenArgs) -> Result<std::process::ExitCode> {
    match args.count {
        None => println!("{}", mint(&args)?),
        Some(n) => {
            let mut out = String::new();
            for i in 0..n {
                let a = TokenArgs { user: format!("{}-{i}", args.user), count: None, ..args.clone() };
                out.push_str(&mint(&a)?);
                out.push('\n');
            }
            print!("{out}");
        }
    }
    Ok(std::process::ExitCode::SUCCESS)
}

fn mint(args: &TokenArgs) -> Result<String> {
    let pki = std::sync::Arc::new(idprop_mocks::pki::TestPki::load().context("loading the test PKI")?);
    let config = UaaConfig { domain: args.uaa_domain.clone(), ..UaaConfig::default() };
    let uaa = MockUaa::new(config, pki);
    let mut b = uaa.user_token(&args.tenant, &args.user);
    if let Some(c) = &args.client {
        b = b.claim("client_id", c.as_str()).claim("cid", c.as_str()).claim("azp", c.as_str());
    }
    if let Some(k) = &args.kid {
        b = b.kid(k.as_str());
    }
    for kv in &args.claims {
        let Some((k, v)) = kv.split_once('=') else { bail!("--claim {kv:?}: expected KEY=VALUE") };
        let value = serde_json::from_str::<Value>(v).unwrap_or_else(|_| Value::String(v.to_string()));
        b = b.claim(k, value);
    }
    for k in &args.drops {
        b = b.without(k);
    }
    Ok(b.sign())
}
