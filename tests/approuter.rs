//! SAP's application router 23.0, unchanged, against `idprop up`: started
//! with nothing but `.idprop/env.sh` and the example's `start.sh`
//! (`examples/approuter`), it logs alice in three ways — the browser login
//! through the mock UAA's login page (headless Chromium), and
//! `x-approuter-authorization` with Basic credentials and with a Bearer
//! token — and each time its principal-propagation route reaches the
//! backend as `CN=alice` through the Connectivity proxy and the Cloud
//! Connector. Central logout goes through the UAA's `/logout.do`.

mod support;

use std::process::Command;

use serde_json::Value;
use support::{free_port, Up};

#[tokio::test(flavor = "multi_thread")]
async fn the_application_router_logs_alice_in_and_propagates_her() {
    let clients = idprop::harness::clients::approuter().zip(idprop::harness::clients::chromium());
    let Some((example, chromium)) = clients else {
        assert!(!idprop::harness::clients::required(), "CI must run the application router (node, chromium)");
        eprintln!("SKIPPED: no Node or Chromium for the application router");
        return;
    };
    let up = Up::start();
    let (info, gateway) = (&up.info, up.gateway());
    // `source .idprop/env.sh && examples/approuter/start.sh`, as the README says.
    let port = free_port();
    let _router = up.start_example(&example, port);
    let host = format!("mytenant.localhost:{port}");
    let route = |auth: String| {
        let host = host.clone();
        async move {
            let resp = reqwest::Client::new()
                .get(format!("http://127.0.0.1:{port}/erp/echo/who"))
                .header("host", host)
                .header("x-approuter-authorization", auth)
                .send()
                .await
                .unwrap();
            let status = resp.status().as_u16();
            let text = resp.text().await.unwrap();
            (status, serde_json::from_str::<Value>(&text).unwrap_or(Value::String(text)))
        }
    };

    // x-approuter-authorization: Basic (approuter's password grant) …
    use base64::Engine as _;
    let basic = base64::engine::general_purpose::STANDARD.encode("alice:alice-password");
    let (s, who) = route(format!("Basic {basic}")).await;
    assert_eq!(s, 200, "{who}");
    assert_eq!(who["client_cert"]["subject"], "CN=alice", "{who}");
    let (s, _) = route(format!("Basic {}", base64::engine::general_purpose::STANDARD.encode("alice:wrong"))).await;
    assert_eq!(s, 401, "a wrong password gets nobody through");
    // … and Bearer: a user token of the application's client.
    let ca = reqwest::Certificate::from_pem(&std::fs::read(info["ca_file"].as_str().unwrap()).unwrap()).unwrap();
    let via_gateway =
        reqwest::Client::builder().proxy(reqwest::Proxy::all(&gateway).unwrap()).tls_certs_only([ca]).build().unwrap();
    let xsuaa = &info["vcap_services"]["xsuaa"][0]["credentials"];
    let t: Value = via_gateway
        .post(format!("{}/oauth/token", xsuaa["url"].as_str().unwrap()))
        .basic_auth(xsuaa["clientid"].as_str().unwrap(), xsuaa["clientsecret"].as_str())
        .form(&[("grant_type", "password"), ("username", "alice"), ("password", "alice-password")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let (s, who) = route(format!("Bearer {}", t["access_token"].as_str().unwrap())).await;
    assert_eq!(s, 200, "{who}");
    assert_eq!(who["client_cert"]["subject"], "CN=alice", "{who}");

    // The browser: approuter → the UAA's login page → back → the route;
    // then central logout.
    let mut login = Command::new(example.join("node_modules/.bin/node"));
    login
        .current_dir(&example)
        .args(["login.mjs", &format!("http://{host}"), "/erp/echo/who", "alice", "alice-password", "/do/logout"])
        .env("IDPROP_GATEWAY", &gateway)
        .env("CHROMIUM", &chromium)
        .env("HOME", up.dir.path());
    let out = tokio::task::spawn_blocking(move || login.output().unwrap()).await.unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let b: Value = serde_json::from_str(text.lines().last().unwrap_or(""))
        .unwrap_or_else(|_| panic!("{text}\n{}", String::from_utf8_lossy(&out.stderr)));
    assert!(b["error"].is_null(), "{b}");
    let uaa = xsuaa["url"].as_str().unwrap();
    assert!(b["login_page"].as_str().unwrap().starts_with(&format!("{uaa}/oauth/authorize?")), "{b}");
    assert!(b["login_page"].as_str().unwrap().contains("code_challenge_method=S256"), "approuter uses PKCE: {b}");
    assert_eq!(b["answer"]["client_cert"]["subject"], "CN=alice", "{b}");
    assert!(
        b["after_logout_route"].as_str().unwrap().starts_with(&format!("{uaa}/oauth/authorize?")),
        "logged out: {b}"
    );

    // What the UAA saw: the login, the code exchange with its verifier, the logout.
    let journal = up.journal().await;
    let saw = |method: &str, path: &str, status: u16| {
        journal.iter().any(|e| e["method"] == method && e["path"] == path && e["status"] == status)
    };
    assert!(saw("POST", "/login.do", 302), "the login form was posted");
    assert!(saw("GET", "/logout.do", 302), "central logout went through the UAA and back");
    let exchange = journal
        .iter()
        .find(|e| e["path"] == "/oauth/token" && e["form"].to_string().contains("authorization_code"))
        .expect("the code was exchanged");
    assert_eq!(exchange["status"], 200, "{exchange}");
    assert!(exchange["form"].to_string().contains("code_verifier"), "{exchange}");
}
