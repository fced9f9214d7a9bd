//! `idprop up`: the stack as a local environment on fixed ports.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use clap::Args;

use idprop_mocks::stack::Ports;
use idprop_mocks::{Stack, StackConfig, StackError};

/// First of the fixed default ports; components take the next ones.
pub const DEFAULT_BASE_PORT: u16 = 8480;

#[derive(Args, Debug)]
pub struct UpArgs {
    /// YAML configuration: tenants, clients, users, token servers.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Write JSON here once every listener is bound.
    #[arg(long)]
    ready_file: Option<PathBuf>,
    /// Gateway port; the other components use the ports right after it
    /// (0: every listener on a free ephemeral port).
    #[arg(long, default_value_t = DEFAULT_BASE_PORT)]
    port: u16,
    /// Listen on this address instead of loopback (prints a warning).
    #[arg(long)]
    bind: Option<IpAddr>,
    /// Where the CA bundle and `default-env.json` go.
    #[arg(long, default_value = ".idprop")]
    state_dir: PathBuf,
    /// Journal entries kept in memory (the oldest go first).
    #[arg(long, default_value_t = 1000)]
    journal_size: usize,
    /// Bytes the journal may hold (the oldest entries go first; values over
    /// 32 KiB are cut with a marker). Default 64 MiB.
    #[arg(long)]
    journal_bytes: Option<usize>,
    /// Do not log requests.
    #[arg(long, short)]
    quiet: bool,
}

pub fn run(args: UpArgs) -> Result<std::process::ExitCode> {
    let started = Instant::now();
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().context("starting the runtime")?;
    rt.block_on(up(args, started))
}

async fn up(args: UpArgs, started: Instant) -> Result<std::process::ExitCode> {
    // Signals are ours from the start: a SIGTERM that arrives while the
    // stack starts (or right after the ready file appears) is a clean stop.
    let stop = Stop::install()?;
    let (mut config, text): (StackConfig, Option<String>) = match &args.config {
        Some(p) => {
            let text = idprop_mocks::yaml::read(p).map_err(anyhow::Error::new).context("reading the --config file")?;
            let c = idprop_mocks::yaml::from_str(&text, &p.display().to_string())
                .map_err(anyhow::Error::new)
                .context("reading the --config file")?;
            (c, Some(text))
        }
        None => (StackConfig::default(), None),
    };
    config.uaa = config.uaa.normalized();
    if let Some(ip) = args.bind {
        if !ip.is_loopback() {
            eprintln!("idprop: WARNING: listening on {ip}, not loopback: the mock stack accepts forged-by-design test tokens; keep it off shared networks");
        }
        config.bind = ip;
    }
    if config.ports == Ports::default() && args.port != 0 {
        config.ports = Ports::checked_consecutive(args.port).with_context(|| {
            format!("--port {}: the components take the five ports after it; use at most 65530", args.port)
        })?;
    }
    config.state_dir = Some(args.state_dir.clone());
    if config.journal_capacity.is_none() {
        config.journal_capacity = Some(args.journal_size);
    }
    if let Some(b) = args.journal_bytes {
        config.journal_bytes = b;
    }
    let stack = match Stack::start_with(config).await {
        Ok(s) => s,
        // A value of the file that cannot be served: named by line and column.
        Err(StackError::Invalid { path, message }) => {
            let at = match (&args.config, &text) {
                (Some(file), Some(text)) => {
                    let (l, c) = idprop_mocks::yaml::locate(text, &path).unwrap_or((0, 0));
                    format!("{}:{l}:{c}: ", file.display())
                }
                _ => String::new(),
            };
            anyhow::bail!("{at}{path}: {message}");
        }
        Err(e) => return Err(e).context("starting the stack"),
    };
    let info = stack.ready_info();
    if let Some(path) = &args.ready_file {
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, serde_json::to_vec_pretty(&info)?)
            .with_context(|| format!("writing {}", tmp.display()))?;
        std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))?;
    }
    let env = local_env(&stack, &args.state_dir)?;
    eprintln!("idprop: stack ready in {} ms", started.elapsed().as_millis());
    eprintln!("  gateway (proxy): {}", stack.gateway_url());
    eprintln!("  CA bundle:       {}", stack.ca_file().display());
    for (name, url) in stack.components() {
        eprintln!("  {name:<16} {url}");
    }
    eprintln!(
        "  try: curl --proxy {} --cacert {} -u '{}:{}' -d grant_type=client_credentials {}/oauth/token",
        stack.gateway_url(),
        stack.ca_file().display(),
        idprop_mocks::uaa::APP_CLIENT.0,
        idprop_mocks::uaa::APP_CLIENT.1,
        stack.uaa_url("mytenant")
    );
    for p in stack.identity_providers() {
        let c = p.config();
        match (c.clients.first(), c.users.first()) {
            (Some(client), Some(user)) => eprintln!(
                "  {} ({:?}): curl --proxy {} --cacert {} -u '{}:{}' -d grant_type=password -d username={} -d password={} {}/oauth2/token",
                c.issuer,
                c.kind,
                stack.gateway_url(),
                stack.ca_file().display(),
                client.client_id,
                client.client_secret,
                user.user_name,
                user.password,
                c.base_url()
            ),
            _ => eprintln!("  {} ({:?}): discovery {}", c.issuer, c.kind, c.discovery_url()),
        }
        // X.509 clients (9379444 X509_GENERATED): their TEST ONLY
        // certificate and key as files, for curl --cert/--key (ce25f2b).
        for client in &c.clients {
            let Some((cert, key)) = stack.client_credential(client) else { continue };
            let dir = args.state_dir.join("clients");
            std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
            let (cert_path, key_path) =
                (dir.join(format!("{}.crt.pem", client.client_id)), dir.join(format!("{}.key.pem", client.client_id)));
            std::fs::write(&cert_path, cert).with_context(|| format!("writing {}", cert_path.display()))?;
            write_private(&key_path, key.as_bytes()).with_context(|| format!("writing {}", key_path.display()))?;
            eprintln!(
                "  {} mTLS client {}: curl --proxy {} --cacert {} --cert {} --key {} -d grant_type=client_credentials -d client_id={} {}/oauth2/token",
                c.issuer,
                client.client_id,
                stack.gateway_url(),
                stack.ca_file().display(),
                cert_path.display(),
                key_path.display(),
                client.client_id,
                c.base_url()
            );
        }
    }
    eprintln!(
        "  browser login: {}/oauth/authorize?response_type=code&client_id={}&redirect_uri=http://localhost:5000/",
        stack.uaa_url("mytenant"),
        idprop_mocks::uaa::APP_CLIENT.0
    );
    eprintln!("\nFor your application (also in {}):\n{env}", args.state_dir.join("env.sh").display());
    if !args.quiet {
        let mut feed = stack.journal().subscribe();
        tokio::spawn(async move {
            while let Ok(e) = feed.recv().await {
                println!("{}", e.one_line());
            }
        });
    }
    let signal = stop.wait().await;
    eprintln!("idprop: {signal}: stopping (requests in flight may finish, at most {} s)", stack.limits().grace_secs);
    let cut = stack.shutdown().await;
    if cut > 0 {
        eprintln!("idprop: {cut} listener(s) still busy at the deadline: their connections were cut");
    }
    drop(stack);
    // The files describe a running stack: they go with it.
    let mut written: Vec<PathBuf> =
        ["env.sh", ".env", "default-env.json", NODE_PRELOAD].iter().map(|f| args.state_dir.join(f)).collect();
    written.extend(args.ready_file.iter().cloned());
    for f in written {
        let _ = std::fs::remove_file(f);
    }
    let _ = std::fs::remove_dir_all(args.state_dir.join("clients"));
    Ok(std::process::ExitCode::SUCCESS)
}

/// Writes a key file its owner alone can read: created 0600, never
/// readable in between (TEST ONLY keys, but a key file is a key file).
fn write_private(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
    o.open(path)?.write_all(bytes)
}

/// The Node preload `env.sh` puts into `NODE_OPTIONS`.
const NODE_PRELOAD: &str = "node-preload.cjs";

/// Writes `default-env.json` (read by SAP's approuter and CAP), `env.sh`
/// (the export lines, for `source`) and `.env` (the same variables as
/// `KEY='value'` lines, for an IDE run configuration or a dotenv loader),
/// and returns the export lines.
fn local_env(stack: &Stack, dir: &std::path::Path) -> Result<String> {
    let vcap = stack.vcap_services();
    let default_env = serde_json::json!({ "VCAP_SERVICES": vcap });
    let path = dir.join("default-env.json");
    std::fs::write(&path, serde_json::to_vec_pretty(&default_env)?)
        .with_context(|| format!("writing {}", path.display()))?;
    let mut vars = stack.client_env();
    // Node 20 ignores HTTPS_PROXY: a dependency-free preload sends `*.test`
    // requests through the gateway, with no change to the application.
    let preload = dir.join(NODE_PRELOAD);
    std::fs::write(&preload, include_str!("node-preload.cjs"))
        .with_context(|| format!("writing {}", preload.display()))?;
    let preload = std::fs::canonicalize(&preload).unwrap_or(preload);
    vars.push(("IDPROP_GATEWAY".into(), stack.gateway_url()));
    vars.push(("NODE_OPTIONS".into(), format!("--require \"{}\"", preload.display())));
    let quote = |s: &str| format!("'{}'", s.replace('\'', "'\\''"));
    let text: String = vars.iter().map(|(k, v)| format!("export {k}={}\n", quote(v))).collect();
    let sh = dir.join("env.sh");
    std::fs::write(&sh, &text).with_context(|| format!("writing {}", sh.display()))?;
    // dotenv: single quotes keep the value literal (JSON's backslashes too).
    let dotenv: String = vars.iter().map(|(k, v)| format!("{k}='{v}'\n")).collect();
    let path = dir.join(".env");
    std::fs::write(&path, dotenv).with_context(|| format!("writing {}", path.display()))?;
    Ok(text)
}

/// SIGINT, SIGTERM and SIGHUP, listened for from process start.
struct Stop {
    #[cfg(unix)]
    signals: [tokio::signal::unix::Signal; 3],
}

impl Stop {
    fn install() -> Result<Stop> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            let s = |k: SignalKind, name: &str| signal(k).with_context(|| format!("installing the {name} handler"));
            Ok(Stop {
                signals: [
                    s(SignalKind::interrupt(), "SIGINT")?,
                    s(SignalKind::terminate(), "SIGTERM")?,
                    s(SignalKind::hangup(), "SIGHUP")?,
                ],
            })
        }
        #[cfg(not(unix))]
        Ok(Stop {})
    }

    /// The name of the first signal that arrives.
    async fn wait(self) -> &'static str {
        #[cfg(unix)]
        {
            let [mut int, mut term, mut hup] = self.signals;
            tokio::select! {
                _ = int.recv() => "SIGINT",
                _ = term.recv() => "SIGTERM",
                _ = hup.recv() => "SIGHUP",
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
            "Ctrl-C"
        }
    }
}
