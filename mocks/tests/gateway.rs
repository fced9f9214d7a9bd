//! The gateway's routing and TLS, and the journal's admin endpoint.

mod common;

use common::{post_form, stack, APP};

#[tokio::test]
async fn https_through_connect_presents_a_test_ca_certificate_for_the_virtual_host() {
    let stack = stack().await;
    // A client that does NOT trust the test CA must refuse the certificate…
    let untrusting = reqwest::Client::builder()
        .proxy(reqwest::Proxy::all(stack.gateway_url()).unwrap())
        .tls_certs_only([])
        .build()
        .unwrap();
    let err = untrusting.get(format!("{}/token_keys", stack.uaa_url("mytenant"))).send().await.unwrap_err();
    assert!(err.is_connect() || err.is_request(), "{err}");
    // …and one that trusts it verifies the host name and gets through.
    let resp = stack.http_client().get(format!("{}/token_keys", stack.uaa_url("mytenant"))).send().await.unwrap();
    assert_eq!(resp.status(), 200);
}

#[tokio::test]
async fn absolute_form_plain_http_is_routed_too() {
    let stack = stack().await;
    let (s, b) = post_form(
        &stack,
        "http://mytenant.authentication.eu10.idp.test/oauth/token",
        Some(APP),
        &[("grant_type", "client_credentials")],
    )
    .await;
    assert_eq!(s, 200, "{b}");
    let e = &stack.journal().of("uaa")[0];
    assert!(!e.tls);
    assert_eq!(e.host, "mytenant.authentication.eu10.idp.test");
}

#[tokio::test]
async fn unknown_hosts_get_a_502_naming_them_and_a_journal_finding() {
    let stack = stack().await;
    let resp = stack.http_client().get("http://unknown.example.test/x").send().await.unwrap();
    assert_eq!(resp.status(), 502);
    assert!(resp.text().await.unwrap().contains("unknown.example.test"));
    // CONNECT to an unknown host is refused before any TLS.
    let err = stack.http_client().get("https://other-unknown.test/").send().await.unwrap_err();
    assert!(err.is_connect() || err.is_request(), "{err}");
    let found: Vec<String> = stack.journal().of("gateway").iter().map(|e| e.host.clone()).collect();
    assert_eq!(found, ["unknown.example.test", "other-unknown.test"]);
}

#[tokio::test]
async fn journal_is_served_by_the_gateway_and_can_be_cleared() {
    let stack = stack().await;
    post_form(
        &stack,
        &format!("{}/oauth/token", stack.uaa_url("mytenant")),
        Some(APP),
        &[("grant_type", "client_credentials")],
    )
    .await;
    let admin = reqwest::Client::new();
    let url = format!("{}/__idprop/journal", stack.gateway_url());
    let entries: Vec<idprop_mocks::JournalEntry> = admin.get(&url).send().await.unwrap().json().await.unwrap();
    assert_eq!(entries.len(), 1);
    let e = &entries[0];
    assert_eq!(
        (e.component.as_str(), e.method.as_str(), e.path.as_str(), e.status),
        ("uaa", "POST", "/oauth/token", 200)
    );
    assert_eq!(e.form_field("grant_type"), Some("client_credentials"));
    assert!(e.header("authorization").unwrap().starts_with("Basic "));
    assert!(e.time_ms > 0);
    assert_eq!(admin.delete(&url).send().await.unwrap().status(), 204);
    assert!(stack.journal().is_empty());
}

#[tokio::test]
async fn client_certificates_presented_through_the_tunnel_are_journalled() {
    let stack = stack().await;
    let (cert, key) = stack.pki().client_cert_pem("my-client").unwrap();
    let identity = reqwest::Identity::from_pem(format!("{cert}{key}").as_bytes()).unwrap();
    let client = stack.http_client_builder().identity(identity).build().unwrap();
    let resp = client.get(format!("{}/token_keys", stack.uaa_url("mytenant"))).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let cc = stack.journal().of("uaa")[0].client_cert.clone().expect("client certificate recorded");
    assert_eq!(cc.cn.as_deref(), Some("my-client"));
    assert_eq!(cc.subject, "CN=my-client,O=idprop TEST ONLY");
    assert_eq!(cc.issuer, "CN=idprop TEST ONLY Root CA,O=idprop TEST ONLY");
}

#[tokio::test]
async fn two_stacks_run_side_by_side_with_their_own_journals() {
    let (a, b) = (stack().await, stack().await);
    assert_ne!(a.gateway_addr(), b.gateway_addr());
    post_form(
        &a,
        &format!("{}/oauth/token", a.uaa_url("mytenant")),
        Some(APP),
        &[("grant_type", "client_credentials")],
    )
    .await;
    assert_eq!(a.journal().len(), 1);
    assert!(b.journal().is_empty());
}

#[tokio::test]
async fn dropping_the_stack_closes_its_listeners() {
    let stack = stack().await;
    let addr = stack.gateway_addr();
    drop(stack);
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}

#[tokio::test]
async fn the_page_is_served_by_the_stack_with_everything_it_loads() {
    let stack = stack().await;
    let admin = reqwest::Client::new();
    let base = format!("{}/__idprop/", stack.gateway_url());
    let html = admin.get(&base).send().await.unwrap().text().await.unwrap();
    assert!(html.contains("<title>idprop"));
    // No CDN: every src/href is relative and served by the stack.
    let refs: Vec<&str> = html.split(['"', '\'']).filter(|s| s.ends_with(".js") || s.ends_with(".css")).collect();
    assert_eq!(refs, ["app.css", "app.js"]);
    assert!(!html.contains("http://") && !html.contains("https://"));
    for r in refs {
        let resp = admin.get(format!("{base}{r}")).send().await.unwrap();
        assert_eq!(resp.status(), 200, "{r}");
        let text = resp.text().await.unwrap();
        assert!(!text.contains("https://") && !text.contains("http://cdn"), "{r} loads from elsewhere");
    }
    let jwks: serde_json::Value = admin.get(format!("{base}jwks")).send().await.unwrap().json().await.unwrap();
    assert_eq!(jwks["keys"][0]["kid"], "key-1");
    let info: serde_json::Value = admin.get(format!("{base}info")).send().await.unwrap().json().await.unwrap();
    assert!(info["destinations"]["technical-user-example"].is_string());
    assert!(info["cloud_connector"]["locations"][0]["mappings"].is_array());
}

/// Inside a CONNECT tunnel the tunnel's target is the host: a request whose
/// `Host` names another (a tenant of the UAA, say) is refused, and the
/// journal records the tunnel target, so checks judge where it really went.
#[tokio::test]
async fn a_host_header_that_is_not_the_tunnel_target_is_refused_and_journalled_as_the_target() {
    let stack = idprop_mocks::Stack::start().await.unwrap();
    let domain = stack.uaa().domain();
    let (id, secret) = idprop_mocks::uaa::APP_CLIENT;
    let resp = stack
        .http_client()
        .post(format!("https://othertenant.{domain}/oauth/token"))
        .header("host", format!("mytenant.{domain}"))
        .basic_auth(id, Some(secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 400, "{}", resp.text().await.unwrap());
    let e = stack.journal().of("uaa");
    assert_eq!(e.len(), 1);
    assert_eq!(e[0].host, format!("othertenant.{domain}"));
    assert_eq!(e[0].status, 400);
    assert!(e[0].note.as_deref().unwrap_or("").contains("not the CONNECT target"), "{:?}", e[0].note);
}

/// The gateway serves virtual hosts where the Internet would: http on port
/// 80, https through CONNECT on 443. Another port or scheme reaches nothing.
#[tokio::test]
async fn other_ports_and_schemes_reach_nothing() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let stack = idprop_mocks::Stack::start().await.unwrap();
    let host = format!("mytenant.{}", stack.uaa().domain());
    let addr = stack.gateway_addr();
    for head in [
        format!("CONNECT {host}:8443 HTTP/1.1\r\nHost: {host}:8443"),
        format!("CONNECT {host}:1 HTTP/1.1\r\nHost: {host}:1"),
        format!("GET http://{host}:8080/token_keys HTTP/1.1\r\nHost: {host}:8080"),
        format!("GET ftp://{host}/token_keys HTTP/1.1\r\nHost: {host}"),
    ] {
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        s.write_all(format!("{head}\r\nConnection: close\r\n\r\n").as_bytes()).await.unwrap();
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out).await;
        let text = String::from_utf8_lossy(&out);
        assert!(text.starts_with("HTTP/1.1 502") || text.starts_with("HTTP/1.1 400"), "{head}: {text}");
    }
    assert!(stack.journal().of("uaa").is_empty());
    // The default port is fine.
    let ok: serde_json::Value =
        stack.http_client().get(format!("http://{host}/token_keys")).send().await.unwrap().json().await.unwrap();
    assert!(ok["keys"].is_array());
}
