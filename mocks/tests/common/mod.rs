//! Helpers shared by the integration tests.
#![allow(dead_code)]

use idprop_mocks::Stack;
use serde_json::Value;

pub const APP: (&str, &str) = idprop_mocks::uaa::APP_CLIENT;

pub async fn stack() -> Stack {
    Stack::start().await.expect("stack starts")
}

/// POSTs a form to `url` through the gateway; returns status and JSON body.
pub async fn post_form(stack: &Stack, url: &str, basic: Option<(&str, &str)>, form: &[(&str, &str)]) -> (u16, Value) {
    let mut req = stack.http_client().post(url).form(form);
    if let Some((u, p)) = basic {
        req = req.basic_auth(u, Some(p));
    }
    let resp = req.send().await.expect("request through the gateway");
    let status = resp.status().as_u16();
    let text = resp.text().await.expect("body");
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

/// The claims of a JWT, unverified.
pub fn claims(token: &str) -> serde_json::Map<String, Value> {
    idprop_mocks::tokens::peek_claims(token).expect("JWT payload decodes")
}

pub const DEST_CLIENT: (&str, &str) = idprop_mocks::uaa::DESTINATION_CLIENT;

/// A token of the destination binding's client for `tenant`.
pub async fn destination_token(stack: &Stack, tenant: &str) -> String {
    let (s, b) = post_form(
        stack,
        &format!("{}/oauth/token", stack.uaa_url(tenant)),
        Some(DEST_CLIENT),
        &[("grant_type", "client_credentials")],
    )
    .await;
    assert_eq!(s, 200, "{b}");
    b["access_token"].as_str().unwrap().to_string()
}

/// Find Destination by name as `tenant`, optionally with `X-user-token`.
pub async fn find_destination(stack: &Stack, tenant: &str, name: &str, user_token: Option<&str>) -> (u16, Value) {
    let token = destination_token(stack, tenant).await;
    let mut req = stack
        .http_client()
        .get(format!("{}/destination-configuration/v1/destinations/{name}", stack.destination_url()))
        .bearer_auth(token);
    if let Some(u) = user_token {
        req = req.header("X-user-token", u);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

/// GET `url` through the gateway and read JSON.
pub async fn get_json<T: serde::de::DeserializeOwned>(stack: &Stack, url: &str) -> T {
    stack.http_client().get(url).send().await.expect("request through the gateway").json().await.expect("JSON answer")
}

/// A token of the connectivity binding's client for `tenant` (for `Proxy-Authorization`).
pub async fn proxy_token(stack: &Stack, tenant: &str) -> String {
    let url = format!("{}/oauth/token", stack.uaa_url(tenant));
    let (s, b) =
        post_form(stack, &url, Some(idprop_mocks::uaa::CONNECTIVITY_CLIENT), &[("grant_type", "client_credentials")])
            .await;
    assert_eq!(s, 200, "{b}");
    b["access_token"].as_str().unwrap().to_string()
}

/// A client that sends every plain-HTTP request through the Connectivity proxy.
pub fn onprem_client(stack: &Stack) -> reqwest::Client {
    reqwest::Client::builder().proxy(reqwest::Proxy::http(stack.connectivity_proxy_url()).unwrap()).build().unwrap()
}

/// Waits (at most 10 s) for a file a child process writes, such as
/// `idprop up`'s ready file; fails the test when it does not appear.
pub fn wait_for_file(path: &std::path::Path) {
    let t = std::time::Instant::now();
    while !path.exists() {
        assert!(t.elapsed() < std::time::Duration::from_secs(10), "{} did not appear", path.display());
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}
