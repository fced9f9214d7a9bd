//! The real SAP clients idprop's tests run against the stack, provisioned
//! from their lock files on first use, so the README's one test command
//! (`cargo test --workspace`) runs them on a fresh machine too, not only
//! after `.ci/run`.
//!
//! Node: `npm ci` in `examples/adapters/cloud-sdk-js` (its
//! `package-lock.json`). Python: a venv at `examples/clients/python/.venv`
//! from `requirements.txt`. Test binaries and their threads share one
//! install: a directory lock beside the packages serialises them. A client
//! whose runtime (`node`, `python3`) is absent is `None`; a failed install
//! is `None` with the installer's output on stderr. With `CI=true` neither
//! may happen: the caller fails instead of skipping.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// The repository root (the harness crate's parent).
fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Whether a missing client must fail the test rather than skip it.
pub fn required() -> bool {
    std::env::var("CI").as_deref() == Ok("true")
}

/// The Node adapter's directory with its packages installed.
pub fn node_adapter() -> Option<PathBuf> {
    npm_example(
        "examples/adapters/cloud-sdk-js",
        &["node_modules/@sap-cloud-sdk/http-client", "node_modules/@sap/xssec"],
    )
}

/// `examples/approuter` with SAP's application router, Node 22 (the npm
/// registry's `node` package) and puppeteer-core installed from its lock
/// file.
pub fn approuter() -> Option<PathBuf> {
    npm_example(
        "examples/approuter",
        &["node_modules/.bin/node", "node_modules/@sap/approuter/approuter.js", "node_modules/puppeteer-core"],
    )
}

/// `examples/cap` with `@sap/cds`, its remote-service dependencies and
/// Node 22 installed from its lock file.
pub fn cap() -> Option<PathBuf> {
    npm_example(
        "examples/cap",
        &["node_modules/.bin/node", "node_modules/@sap/cds/bin/serve.js", "node_modules/@sap-cloud-sdk/http-client"],
    )
}

/// The Node example at `path` (from the repository root), `npm ci` run
/// once when one of `installed` (paths inside it) is missing; `None`
/// without Node or when the install failed.
fn npm_example(path: &str, installed: &[&str]) -> Option<PathBuf> {
    let dir = root().join(path);
    Command::new("node").arg("--version").output().ok()?;
    let ready = |d: &Path| installed.iter().all(|p| d.join(p).exists());
    provision(&dir, ready, || {
        Command::new("npm").args(["ci", "--no-audit", "--no-fund", "--loglevel=error"]).current_dir(&dir).output()
    })
    .then_some(dir)
}

/// Headless Chromium (Debian's package), if installed.
pub fn chromium() -> Option<PathBuf> {
    ["/usr/bin/chromium", "/usr/bin/chromium-browser"].into_iter().map(PathBuf::from).find(|p| p.exists())
}

/// The Python venv's interpreter with the pinned clients installed.
pub fn python() -> Option<PathBuf> {
    let dir = root().join("examples/clients/python");
    let py = dir.join(".venv/bin/python");
    Command::new("python3").arg("--version").output().ok()?;
    let ready = |d: &Path| {
        d.join(".venv/bin/python").exists()
            && Command::new(d.join(".venv/bin/python"))
                .args(["-c", "import sap_cloud_sdk.destination, sap.xssec"])
                .output()
                .is_ok_and(|o| o.status.success())
    };
    provision(&dir, ready, || {
        let venv = Command::new("python3").args(["-m", "venv", ".venv"]).current_dir(&dir).output()?;
        if !venv.status.success() {
            return Ok(venv);
        }
        Command::new(dir.join(".venv/bin/pip"))
            .args(["install", "-q", "--disable-pip-version-check", "-r", "requirements.txt"])
            .current_dir(&dir)
            .output()
    })
    .then_some(py)
}

/// Runs `install` in `dir` unless `ready` says it is done, once across
/// processes (a lock directory, waited for up to ten minutes).
fn provision(
    dir: &Path,
    ready: impl Fn(&Path) -> bool,
    install: impl FnOnce() -> std::io::Result<std::process::Output>,
) -> bool {
    if ready(dir) {
        return true;
    }
    let lock = dir.join(".idprop-provisioning.lock");
    let started = Instant::now();
    while std::fs::create_dir(&lock).is_err() {
        // A lock older than ten minutes belongs to an install that died.
        let stale = std::fs::metadata(&lock)
            .and_then(|m| m.modified())
            .is_ok_and(|t| t.elapsed().is_ok_and(|age| age > Duration::from_secs(600)));
        if stale {
            let _ = std::fs::remove_dir(&lock);
            continue;
        }
        if started.elapsed() > Duration::from_secs(600) {
            eprintln!("idprop: waited ten minutes for {} to go; giving up", lock.display());
            return false;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    // Another process may have finished while this one waited.
    let ok = ready(dir) || {
        eprintln!("idprop: installing the pinned clients in {} (once)", dir.display());
        match install() {
            Ok(o) if o.status.success() => ready(dir),
            Ok(o) => {
                eprintln!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
                false
            }
            Err(e) => {
                eprintln!("idprop: could not run the installer: {e}");
                false
            }
        }
    };
    let _ = std::fs::remove_dir(&lock);
    ok
}
