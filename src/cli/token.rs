//! `idprop token`: a user token signed with the committed default key, or
//! (`--saml-assertion`) a SAML 2.0 bearer assertion of the TEST ONLY
//! external identity provider; no running stack needed.

use anyhow::{bail, Context, Result};
use clap::Args;
use serde_json::Value;

use idprop_mocks::uaa::{MockUaa, UaaConfig};

#[derive(Args, Debug, Clone)]
pub struct TokenArgs {
    /// Tenant subdomain (decides `iss`, `zid`, `ext_attr.zdn`).
    #[arg(long, required_unless_present = "issuer", default_value = "")]
    tenant: String,
    /// A token of an identity provider beside the UAA: exactly `iss` and the
    /// `--claim`s (plus `iat`/`exp` unless given), signed with its TEST ONLY
    /// key (`--kid`, default `oidc-1`), e.g. `--issuer https://issuer.com`.
    #[arg(long, conflicts_with_all = ["saml_assertion", "count", "client", "drops"])]
    issuer: Option<String>,
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
    /// Print a SAML 2.0 bearer assertion (base64url, RFC 7522) for `--user`,
    /// signed by the external identity provider every tenant trusts, for
    /// the tenant's saml2-bearer grant.
    #[arg(long)]
    saml_assertion: bool,
    /// With --saml-assertion: the `Audience` (default: the tenant's entity id).
    #[arg(long, requires = "saml_assertion")]
    audience: Option<String>,
    /// With --saml-assertion: the `Recipient` (default: the tenant's token endpoint).
    #[arg(long, requires = "saml_assertion")]
    recipient: Option<String>,
    /// With --saml-assertion: seconds until `NotOnOrAfter`.
    #[arg(long, default_value_t = 300, requires = "saml_assertion")]
    validity: i64,
    /// With --saml-assertion: print the signed XML instead of base64url.
    #[arg(long, requires = "saml_assertion")]
    xml: bool,
}

pub fn run(args: TokenArgs) -> Result<std::process::ExitCode> {
    if let Some(issuer) = &args.issuer {
        println!("{}", provider_token(issuer, &args)?);
        return Ok(std::process::ExitCode::SUCCESS);
    }
    if args.saml_assertion {
        println!("{}", saml_assertion(&args)?);
        return Ok(std::process::ExitCode::SUCCESS);
    }
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

/// A saml2-bearer assertion for `args.user`, from the external identity
/// provider (`--claim k=v` become attributes).
fn saml_assertion(args: &TokenArgs) -> Result<String> {
    use idprop_mocks::uaa::EXTERNAL_IDP;
    let pki = idprop_mocks::pki::TestPki::load().context("loading the test PKI")?;
    let signer = pki
        .saml_signer(EXTERNAL_IDP, idprop_mocks::pki::SamlKey::ExternalIdp)
        .context("the external identity provider's signer")?;
    let tenant_host = format!("{}.{}", args.tenant, args.uaa_domain);
    let now = idprop_mocks::tokens::unix_now() as i64;
    let mut attributes = Vec::new();
    for kv in &args.claims {
        let Some((k, v)) = kv.split_once('=') else { bail!("--claim {kv:?}: expected KEY=VALUE") };
        attributes.push((k.to_string(), vec![v.to_string()]));
    }
    let assertion = idprop_mocks::saml::Assertion {
        name_id: args.user.clone(),
        audiences: vec![args.audience.clone().unwrap_or_else(|| tenant_host.clone())],
        recipient: args.recipient.clone().unwrap_or_else(|| format!("https://{tenant_host}/oauth/token")),
        issue_instant: now,
        not_on_or_after: now + args.validity,
        attributes,
        ..Default::default()
    };
    let xml = signer.sign(&assertion, false).context("signing the assertion")?;
    Ok(if args.xml { xml } else { idprop_mocks::saml::encode(&xml) })
}

/// A token of the identity provider `issuer`: exactly `iss`, the given
/// claims, and `iat`/`exp` (one hour) unless given.
fn provider_token(issuer: &str, args: &TokenArgs) -> Result<String> {
    let pki = idprop_mocks::pki::TestPki::load().context("loading the test PKI")?;
    let kid = args.kid.as_deref().unwrap_or("oidc-1");
    let key = pki.signing_key(kid).with_context(|| format!("no TEST ONLY key {kid:?}"))?;
    let mut claims = serde_json::Map::new();
    claims.insert("iss".into(), Value::String(issuer.to_string()));
    for kv in &args.claims {
        let Some((k, v)) = kv.split_once('=') else { bail!("--claim {kv:?}: expected KEY=VALUE") };
        claims.insert(k.to_string(), serde_json::from_str::<Value>(v).unwrap_or_else(|_| Value::String(v.to_string())));
    }
    let now = idprop_mocks::tokens::unix_now();
    claims.entry("iat").or_insert_with(|| now.into());
    claims.entry("exp").or_insert_with(|| (now + 3600).into());
    Ok(key.sign_claims(&claims))
}
