//! The `idprop` binary: `up` (ready file, serving, clean exit) and `token`.

#[path = "../mocks/tests/common/mod.rs"]
mod common;
mod support;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use jsonwebtoken::{Algorithm, DecodingKey, Validation};

fn idprop() -> Command {
    Command::new(env!("CARGO_BIN_EXE_idprop"))
}

#[tokio::test]
async fn up_writes_the_ready_file_serves_tokens_and_exits_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let ready = dir.path().join("ready.json");
    let mut child = idprop()
        .args(["up", "--port", "0", "--quiet", "--ready-file"])
        .arg(&ready)
        .arg("--state-dir")
        .arg(dir.path().join("state"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    common::wait_for_file(&ready);
    let info: serde_json::Value = serde_json::from_slice(&std::fs::read(&ready).unwrap()).unwrap();
    for key in ["gateway", "ca_file", "uaa_domain", "tenants", "components", "vcap_services"] {
        assert!(info.get(key).is_some(), "ready file lacks {key}");
    }
    assert_eq!(info["destinations"]["technical-user-example"], "OAuth2TechnicalUserPropagation");
    assert!(info["destinations"].as_object().unwrap().len() >= 9);
    let loc = &info["cloud_connector"]["locations"][0];
    assert_eq!(loc["id"], "");
    assert_eq!(loc["subject_pattern"], "CN=${name}");
    assert_eq!(loc["mappings"][0]["virtual"], "http://erp.onprem.test:44300");
    assert_eq!(loc["mappings"][0]["principal"], "X509_RESTRICTED");
    let vcap = &info["vcap_services"];
    let conn = &vcap["connectivity"][0]["credentials"];
    assert_eq!(
        format!(
            "http://{}:{}",
            conn["onpremise_proxy_host"].as_str().unwrap(),
            conn["onpremise_proxy_http_port"].as_str().unwrap()
        ),
        info["components"]["connectivity-proxy"].as_str().unwrap()
    );
    for binding in ["xsuaa", "destination", "connectivity"] {
        assert!(vcap[binding][0]["credentials"]["clientid"].is_string(), "{binding}");
    }
    assert!(vcap["destination"][0]["credentials"]["uri"].as_str().unwrap().ends_with(".test"));
    let ca_file = std::path::PathBuf::from(info["ca_file"].as_str().unwrap());
    assert!(ca_file.is_absolute());
    let ca = reqwest::Certificate::from_pem(&std::fs::read(&ca_file).unwrap()).unwrap();
    let client = reqwest::Client::builder()
        .proxy(reqwest::Proxy::all(info["gateway"].as_str().unwrap()).unwrap())
        .tls_certs_only([ca])
        .build()
        .unwrap();
    let creds = &vcap["xsuaa"][0]["credentials"];
    let uaa = creds["url"].as_str().unwrap();
    assert_eq!(uaa, "https://mytenant.authentication.eu10.idp.test");
    let body: serde_json::Value = client
        .post(format!("{uaa}/oauth/token"))
        .basic_auth(creds["clientid"].as_str().unwrap(), creds["clientsecret"].as_str())
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let claims = common::claims(body["access_token"].as_str().unwrap());
    assert_eq!(claims["ext_attr"]["zdn"], "mytenant");

    // The local environment for applications.
    let state = dir.path().join("state");
    let default_env: serde_json::Value =
        serde_json::from_slice(&std::fs::read(state.join("default-env.json")).unwrap()).unwrap();
    assert_eq!(default_env["VCAP_SERVICES"], info["vcap_services"]);
    let env_sh = std::fs::read_to_string(state.join("env.sh")).unwrap();
    assert!(env_sh.contains(&format!("export HTTPS_PROXY='{}'", info["gateway"].as_str().unwrap())), "{env_sh}");
    assert!(env_sh.contains("export NODE_EXTRA_CA_CERTS="));
    // Loopback stays direct: a local application is reached with curl
    // after `source env.sh`, only `.test` hosts go to the gateway.
    assert!(env_sh.contains("export NO_PROXY='localhost,.localhost,127.0.0.1,::1'"), "{env_sh}");
    assert!(env_sh.contains("export VCAP_SERVICES='{"));
    // SAP Cloud SDK for Python's binding variables, from the same binding.
    let d = &info["vcap_services"]["destination"][0]["credentials"];
    for (key, field) in [
        ("CLIENTID", "clientid"),
        ("CLIENTSECRET", "clientsecret"),
        ("URL", "url"),
        ("URI", "uri"),
        ("IDENTITYZONE", "identityzone"),
    ] {
        let line = format!("export CLOUD_SDK_CFG_DESTINATION_DEFAULT_{key}='{}'", d[field].as_str().unwrap());
        assert!(env_sh.contains(&line), "{line} not in env.sh");
    }
    // `.env` has the same variables for IDE run configurations and dotenv
    // loaders: each value single-quoted, VCAP_SERVICES still valid JSON.
    let dotenv = std::fs::read_to_string(state.join(".env")).unwrap();
    let vcap_line = dotenv.lines().find(|l| l.starts_with("VCAP_SERVICES=")).expect("VCAP_SERVICES in .env");
    let vcap_json = vcap_line.trim_start_matches("VCAP_SERVICES='").trim_end_matches('\'');
    assert_eq!(serde_json::from_str::<serde_json::Value>(vcap_json).unwrap(), info["vcap_services"]);
    assert!(dotenv.contains(&format!("HTTPS_PROXY='{}'", info["gateway"].as_str().unwrap())), "{dotenv}");
    assert_eq!(dotenv.lines().count(), env_sh.lines().count());
    // The IAS tenant's X.509 client: its files get a token over mTLS alone
    // (ce25f2b), as the printed curl line does.
    let cert = std::fs::read(state.join("clients/ias-x509-client.crt.pem")).expect("the client's certificate file");
    // One credential per stack: the file holds what the ready file lists.
    assert_eq!(
        info["identity_providers"][0]["clients"][1]["certificate"].as_str(),
        Some(String::from_utf8_lossy(&cert).as_ref())
    );
    let key = std::fs::read(state.join("clients/ias-x509-client.key.pem")).expect("the client's key file");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(state.join("clients/ias-x509-client.key.pem")).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "the key file is the owner's alone: {mode:o}");
    }
    let ias =
        info["identity_providers"][0]["discovery"].as_str().unwrap().replace("/.well-known/openid-configuration", "");
    let mtls = reqwest::Client::builder()
        .proxy(reqwest::Proxy::all(info["gateway"].as_str().unwrap()).unwrap())
        .tls_certs_only([reqwest::Certificate::from_pem(&std::fs::read(&ca_file).unwrap()).unwrap()])
        .identity(reqwest::Identity::from_pem(&[cert, key].concat()).unwrap())
        .build()
        .unwrap();
    let t: serde_json::Value = mtls
        .post(format!("{ias}/oauth2/token"))
        .form(&[("grant_type", "client_credentials"), ("client_id", "ias-x509-client")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(common::claims(t["access_token"].as_str().expect("an IAS token by mTLS"))["azp"], "ias-x509-client");
    // `idprop journal` prints the traffic, one line per hop.
    let out = idprop().args(["journal", "--gateway", info["gateway"].as_str().unwrap()]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("200 POST https://mytenant.authentication.eu10.idp.test/oauth/token (uaa"), "{text}");

    let pid = child.id() as i32;
    sigterm(pid);
    let status = wait_timeout(&mut child, Duration::from_secs(5)).expect("exits after SIGTERM");
    assert!(status.success(), "{status:?}");
    // The files that describe the running stack go with it.
    assert!(!state.join("env.sh").exists() && !state.join("default-env.json").exists());
    assert!(!state.join(".env").exists());
    assert!(!state.join("clients").exists());
}

/// A SIGTERM or SIGHUP the moment the ready file appears is a clean stop
/// (exit 0, files removed), never death by the signal.
#[test]
fn up_stops_cleanly_on_a_signal_right_after_it_is_ready() {
    for signal in ["-TERM", "-HUP"] {
        let dir = tempfile::tempdir().unwrap();
        let ready = dir.path().join("ready.json");
        let state = dir.path().join("state");
        let mut child = idprop()
            .args(["up", "--port", "0", "--quiet", "--ready-file"])
            .arg(&ready)
            .arg("--state-dir")
            .arg(&state)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let t = Instant::now();
        while !ready.exists() && t.elapsed() < Duration::from_secs(10) {
            std::thread::sleep(Duration::from_millis(1));
        }
        Command::new("kill").args([signal, &child.id().to_string()]).status().unwrap();
        let status = wait_timeout(&mut child, Duration::from_secs(5)).expect("exits after the signal");
        assert!(status.success(), "{signal}: {status:?}");
        assert!(!ready.exists() && !state.join("env.sh").exists(), "{signal}: files left behind");
    }
}

fn sigterm(pid: i32) {
    Command::new("kill").args(["-TERM", &pid.to_string()]).status().unwrap();
}

fn wait_timeout(child: &mut std::process::Child, limit: Duration) -> Option<std::process::ExitStatus> {
    let t = Instant::now();
    while t.elapsed() < limit {
        if let Some(s) = child.try_wait().unwrap() {
            return Some(s);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    None
}

#[test]
fn up_with_a_malformed_config_names_file_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("stack.yaml");
    std::fs::write(&cfg, "uaa:\n  domain: x.test\n  tenantz: []\n").unwrap();
    let out = idprop().args(["up", "--port", "0", "--config"]).arg(&cfg).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("{}:3:3", cfg.display())), "{err}");
    assert!(err.contains("tenantz"), "{err}");
}

#[test]
fn token_prints_a_signed_user_token_with_overrides() {
    let out = idprop()
        .args([
            "token",
            "--tenant",
            "acme",
            "--user",
            "dora",
            "--claim",
            "exp=4102444800",
            "--claim",
            "zid=zone-x",
            "--claim",
            "groups=[\"a\",\"b\"]",
            "--drop",
            "email",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let token = String::from_utf8(out.stdout).unwrap().trim().to_string();
    let pki = idprop::mocks::pki::TestPki::load().unwrap();
    let mut v = Validation::new(Algorithm::RS256);
    v.validate_aud = false;
    let key: &DecodingKey = &pki.signing_keys()[0].decoding;
    let c =
        jsonwebtoken::decode::<serde_json::Value>(&token, key, &v).expect("signed with the default fixture key").claims;
    assert_eq!(c["iss"], "https://acme.authentication.eu10.idp.test/oauth/token");
    assert_eq!(c["user_name"], "dora");
    assert_eq!(c["exp"], 4102444800u64);
    assert_eq!(c["zid"], "zone-x");
    assert_eq!(c["groups"], serde_json::json!(["a", "b"]));
    assert!(c.get("email").is_none());

    let bad = idprop().args(["token", "--tenant", "t", "--claim", "novalue"]).output().unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("KEY=VALUE"));
}

/// Configuration the types accept but the stack cannot serve is refused at
/// start with what is wrong and where (`file:line:column: path: why`), never
/// silently (a second tenant unreachable, a wrapping lifetime, ports past
/// 65535); a file that is not UTF-8 is named by line, column and offset.
#[test]
fn up_refuses_configurations_it_cannot_serve() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("stack.yaml");
    for (yaml, expected) in [
        (
            "uaa:\n  domain: x.test\n  tenants:\n    - {subdomain: a, zid: '1'}\n    - {subdomain: a, zid: '2'}\n",
            "stack.yaml:5:19: uaa.tenants[1].subdomain: \"a\" is empty or given twice",
        ),
        ("uaa:\n  domain: x.test\n  token_validity: 18446744073709551615\n", "stack.yaml:3:19: uaa.token_validity"),
        ("uaa:\n  domain: ''\n", "stack.yaml:2:11: uaa.domain: is empty"),
        ("destinations:\n  - properties: {URL: https://a.test}\n", "stack.yaml:2:5: destinations[0]: has no Name"),
        (
            "connectors:\n  - {location_id: p, expiration_tolerance_hours: 400}\n",
            "stack.yaml:2:50: connectors[0].expiration_tolerance_hours: 400 is over the maximum of 336",
        ),
        ("limits:\n  header_read_secs: 0\n", "stack.yaml:2:21: limits.header_read_secs: 0 is out of range"),
    ] {
        std::fs::write(&cfg, yaml).unwrap();
        let out = idprop().args(["up", "--port", "0", "--config"]).arg(&cfg).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{yaml}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(expected), "{yaml}: {err}");
    }
    std::fs::write(&cfg, b"uaa:\n  domain: x\xfe.test\n").unwrap();
    let out = idprop().args(["up", "--port", "0", "--config"]).arg(&cfg).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("stack.yaml:2:12: not UTF-8: invalid byte 0xfe at byte offset 16"), "{err}");
    let out = idprop().args(["up", "--port", "65533"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("at most 65530"));
}

/// `idprop schema --protocol` prints the JSON Schema of every message, and
/// the messages of PROTOCOL.md's examples fit it (as typed requests).
#[test]
fn schema_protocol_describes_every_message() {
    let out = idprop().args(["schema", "--protocol"]).output().unwrap();
    assert!(out.status.success());
    let schema: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let text = schema["request"].to_string();
    for op in ["hello", "reset", "find_destination", "map_principal", "call"] {
        assert!(text.contains(&format!("\"{op}\"")), "op {op} not in the schema");
    }
    assert!(schema["results"]["map_principal"].to_string().contains("reason_code"));
    let example = r#"{"v":1,"id":3,"op":"map_principal","token":"eyJ","trust":[{"issuer":"https://i","jwks_uri":"https://i/k","jwks":{"keys":[]}}],"subject_pattern":"CN=${name}","now":1795360000,"network":{"proxy":"http://127.0.0.1:1","ca_file":"/tmp/ca.pem"}}"#;
    let e: idprop::harness::protocol::Envelope = serde_json::from_str(example).unwrap();
    assert_eq!(e.request.op(), "map_principal");
}

/// `idprop token --saml-assertion` mints, in its own process, an assertion
/// a running stack's UAA exchanges by saml2-bearer: the same TEST ONLY
/// external identity provider key on both sides.
#[tokio::test]
async fn token_saml_assertion_is_exchanged_by_the_uaa_for_the_named_user() {
    let stack = idprop::mocks::Stack::start().await.unwrap();
    // Mints for `tenant`, exchanges at mytenant.
    let exchange = |tenant: &'static str| {
        let stack = stack.clone();
        async move {
            let out =
                idprop().args(["token", "--tenant", tenant, "--user", "erin", "--saml-assertion"]).output().unwrap();
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
            let assertion = String::from_utf8(out.stdout).unwrap().trim().to_string();
            common::post_form(
                &stack,
                &format!("{}/oauth/token", stack.uaa_url("mytenant")),
                Some(common::APP),
                &[("grant_type", "urn:ietf:params:oauth:grant-type:saml2-bearer"), ("assertion", &assertion)],
            )
            .await
        }
    };
    let (s, body) = exchange("mytenant").await;
    assert_eq!(s, 200, "{body}");
    let c = common::claims(body["access_token"].as_str().unwrap());
    assert_eq!((c["user_name"].as_str(), c["origin"].as_str()), (Some("erin"), Some("external-idp")));
    assert!(c["scope"].as_array().unwrap().contains(&serde_json::json!("idprop-app!t1.Admin")));
    // Minted for another tenant, it is refused here (audience, recipient).
    let (s, body) = exchange("othertenant").await;
    assert_eq!((s, body["error"].as_str()), (400, Some("invalid_grant")), "{body}");
}

/// `source .idprop/env.sh` is all a Node client needs: with the variables
/// `idprop up` writes (read here from `.env`, the same set), unchanged
/// @sap/xssec validates a user token and fetches a client-credentials
/// token, and SAP Cloud SDK for JavaScript reads a destination, all through
/// the preload in NODE_OPTIONS (Node 20 ignores HTTPS_PROXY).
#[tokio::test(flavor = "multi_thread")]
async fn node_clients_need_nothing_but_the_environment_idprop_up_writes() {
    let Some(adapter) = idprop::harness::clients::node_adapter() else {
        assert!(!idprop::harness::clients::required(), "CI must run the real Node clients");
        eprintln!("SKIPPED: no Node to run the real Node clients");
        return;
    };
    let up = support::Up::start();
    let dotenv = std::fs::read_to_string(up.state.join(".env")).unwrap();
    assert!(dotenv.contains("NODE_OPTIONS='--require "), "{dotenv}");
    let token = idprop().args(["token", "--tenant", "mytenant", "--user", "alice"]).output().unwrap().stdout;
    let mut cmd = Command::new("node");
    cmd.current_dir(&adapter)
        .arg("env-only-check.mjs")
        .arg(String::from_utf8(token).unwrap().trim())
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default());
    for line in dotenv.lines() {
        let (k, v) = line.split_once('=').unwrap();
        cmd.env(k, v.trim_start_matches('\'').trim_end_matches('\''));
    }
    let out = tokio::task::spawn_blocking(move || cmd.output().unwrap()).await.unwrap();
    drop(up);
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let v: serde_json::Value = serde_json::from_str(text.lines().last().unwrap_or(""))
        .unwrap_or_else(|_| panic!("{text}\n{}", String::from_utf8_lossy(&out.stderr)));
    assert_eq!(v, serde_json::json!({"user": "alice", "client_credentials": true, "destination_token": true}));
}
