//! SAP Cloud SDK for Python 0.62 (PyPI `sap-cloud-sdk`), unchanged, against
//! the stack: `get_destination` through the v2 consume API for client
//! credentials, technical user propagation, a fragment and a missing name.
//!
//! The venv is `examples/clients/python/.venv`, installed by `.ci/run` from
//! the pinned `requirements.txt`. Without it the test says SKIPPED, except
//! under `CI=true`, where it fails: CI must run the real client.

use std::path::PathBuf;
use std::process::Command;

use serde_json::{json, Value};

fn python() -> Option<PathBuf> {
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/clients/python/.venv/bin/python");
    if venv.exists() {
        return Some(venv);
    }
    assert!(std::env::var("CI").as_deref() != Ok("true"), "CI must install the Python clients (.ci/run does)");
    eprintln!("SKIPPED: python3 -m venv examples/clients/python/.venv && examples/clients/python/.venv/bin/pip install -r examples/clients/python/requirements.txt");
    None
}

/// Runs `destination_check.py` with `lookups` off the runtime (the stack
/// serves on it meanwhile).
async fn check(py: PathBuf, stack: &idprop_mocks::Stack, lookups: Value) -> Vec<Value> {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/clients/python/destination_check.py");
    let mut cmd = Command::new(py);
    cmd.arg(script).arg(lookups.to_string()).env_clear().env("PATH", std::env::var("PATH").unwrap_or_default());
    for (k, v) in stack.client_env() {
        cmd.env(k, v);
    }
    let out = tokio::task::spawn_blocking(move || cmd.output().unwrap()).await.unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    serde_json::from_str(text.lines().last().unwrap_or(""))
        .unwrap_or_else(|_| panic!("{text}\n{}", String::from_utf8_lossy(&out.stderr)))
}

#[tokio::test(flavor = "multi_thread")]
async fn the_python_sdk_reads_destinations_fragments_and_missing_names() {
    let Some(py) = python() else { return };
    let stack = idprop_mocks::Stack::start().await.unwrap();
    let results = check(
        py,
        &stack,
        json!([
            {"name": "client-credentials-example"},
            {"name": "technical-user-uaa"},
            {"name": "client-credentials-example", "options": {"fragment_name": "example-fragment"}},
            {"name": "no-such-destination"},
        ]),
    )
    .await;
    let [cc, tu, frag, missing] = results.as_slice() else { panic!("{results:?}") };
    assert_eq!(cc["found"], true, "{cc}");
    let token = &cc["auth_tokens"][0];
    assert_eq!((token["type"].as_str(), token["error"].as_str()), (Some("Bearer"), None), "{cc}");
    assert!(stack.uaa().validate(token["value"].as_str().unwrap()).is_ok());
    assert_eq!(tu["auth_tokens"][0]["http_header"]["key"], "SAP-Connectivity-Technical-Authentication", "{tu}");
    assert_eq!(frag["properties"]["URL.queries.sap-client"], "100", "{frag}");
    assert_eq!(frag["properties"]["FragmentName"], "example-fragment", "{frag}");
    assert_eq!(missing["found"], false, "{missing}");
    // The SDK used the v2 consume API, with the fragment header.
    let consumed: Vec<_> = stack
        .journal()
        .of("destination")
        .into_iter()
        .filter(|e| e.path.starts_with("/destination-configuration/v2/destinations/"))
        .collect();
    assert_eq!(consumed.len(), 4, "{consumed:?}");
    assert!(consumed.iter().any(|e| e.headers.iter().any(|(k, v)| k == "x-fragment-name" && v == "example-fragment")));
}
