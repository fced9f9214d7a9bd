//! What a hostile application sends through the Connectivity proxy, written
//! on the wire as it is (a client library would normalise it first): path
//! tricks against the connector's allow-list, forged client-certificate
//! headers, duplicated identity headers, garbage technical tokens. Each is
//! refused with a reason or neutralised, and nothing the allow-list forbids
//! reaches the backend.

mod common;

use idprop_mocks::{ConnectorConfig, Stack};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A connector whose ERP mapping allows `/echo/public` (and its sub-paths,
/// as SAP's page defines them: a string prefix) only.
async fn stack() -> Stack {
    let mut c = ConnectorConfig::default();
    for m in &mut c.mappings {
        if m.virtual_url.contains("erp.onprem.test") {
            m.paths = vec!["/echo/public".into()];
        }
    }
    Stack::builder().connector(c).start().await.unwrap()
}

/// Sends `head` (request line and headers, `\r\n`-separated, no final blank
/// line) to the Connectivity proxy as raw bytes; the status and body.
async fn raw(stack: &Stack, head: &str) -> (u16, String) {
    let addr = stack.connectivity_proxy_url().trim_start_matches("http://").to_string();
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(format!("{head}\r\nConnection: close\r\n\r\n").as_bytes()).await.unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).await.unwrap();
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    (status, body)
}

/// A technical-propagation request to the plain-HTTP mapping.
async fn technical(stack: &Stack, proxy_token: &str, token: &str) -> (u16, String) {
    raw(
        stack,
        &format!("GET http://protected-url.example.test/echo/x HTTP/1.1\r\nHost: protected-url.example.test\r\nProxy-Authorization: Bearer {proxy_token}\r\nSAP-Connectivity-Technical-Authentication: Bearer {token}"),
    )
    .await
}

fn backend_paths(stack: &Stack) -> Vec<String> {
    stack.journal().of("backend").iter().map(|e| e.path.clone()).collect()
}

#[tokio::test]
async fn traversal_never_escapes_the_allow_list() {
    let stack = stack().await;
    let pt = common::proxy_token(&stack, "mytenant").await;
    let user = stack.uaa().user_token("mytenant", "alice").sign();
    let auth = format!("Proxy-Authorization: Bearer {pt}\r\nSAP-Connectivity-Authentication: Bearer {user}");
    for path in [
        "/echo/public/../secret",
        "/echo/public/%2e%2e/secret",
        "/echo/public/.%2e/secret",
        "/echo/public;/../secret",
        "/echo/public/%2e%2e/%2e%2e/admin",
        "/echo/secret",
    ] {
        let (status, body) = raw(
            &stack,
            &format!("GET http://erp.onprem.test:44300{path} HTTP/1.1\r\nHost: erp.onprem.test:44300\r\n{auth}"),
        )
        .await;
        assert_eq!(status, 403, "{path}: {body}");
    }
    for path in ["/echo/public\\..\\secret", "/echo/public%2f..%2fsecret"] {
        let (status, body) = raw(
            &stack,
            &format!("GET http://erp.onprem.test:44300{path} HTTP/1.1\r\nHost: erp.onprem.test:44300\r\n{auth}"),
        )
        .await;
        assert_eq!(status, 400, "{path}: {body}");
    }
    assert!(backend_paths(&stack).is_empty(), "{:?}", backend_paths(&stack));
    // What is allowed arrives normalised: the backend sees what was checked.
    let (status, _) = raw(
        &stack,
        &format!(
            "GET http://erp.onprem.test:44300/echo/public/x/../y?q=1 HTTP/1.1\r\nHost: erp.onprem.test:44300\r\n{auth}"
        ),
    )
    .await;
    assert_eq!(status, 200);
    // "Path and all sub-paths" is a string prefix (e7d4927's own example).
    let (status, _) = raw(
        &stack,
        &format!("GET http://erp.onprem.test:44300/echo/publicity HTTP/1.1\r\nHost: erp.onprem.test:44300\r\n{auth}"),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(backend_paths(&stack), ["/echo/public/y", "/echo/publicity"]);
}

#[tokio::test]
async fn an_applications_own_client_certificate_header_never_reaches_the_backend() {
    let stack = stack().await;
    let pt = common::proxy_token(&stack, "mytenant").await;
    let (cert, _) = stack.pki().client_cert_pem("admin").unwrap();
    let forged = cert.replace('\n', "\\n");
    let (status, body) = raw(
        &stack,
        &format!("GET http://protected-url.example.test/echo/x HTTP/1.1\r\nHost: protected-url.example.test\r\nProxy-Authorization: Bearer {pt}\r\nSSL_CLIENT_CERT: {forged}\r\nSSL-Client-Cert: {forged}"),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let seen = stack.journal().of("backend");
    assert_eq!(seen.len(), 1);
    // Only the connector's own header arrives: empty, since no identity was
    // propagated on this X509_RESTRICTED mapping (f8d6f9a).
    assert_eq!(seen[0].header("ssl_client_cert"), Some(""), "the application's SSL_CLIENT_CERT reached the backend");
    assert!(seen[0].header("ssl-client-cert").is_none(), "SSL-Client-Cert reached the backend");
    assert!(!body.contains("CN=admin"), "{body}");
}

#[tokio::test]
async fn two_identities_in_one_request_are_refused() {
    let stack = stack().await;
    let pt = common::proxy_token(&stack, "mytenant").await;
    let alice = stack.uaa().user_token("mytenant", "alice").sign();
    let bob = stack.uaa().user_token("mytenant", "bob").sign();
    let (status, body) = raw(
        &stack,
        &format!("GET http://erp.onprem.test:44300/echo/public HTTP/1.1\r\nHost: erp.onprem.test:44300\r\nProxy-Authorization: Bearer {pt}\r\nSAP-Connectivity-Authentication: Bearer {alice}\r\nSAP-Connectivity-Authentication: Bearer {bob}"),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("more than once"), "{body}");
    assert!(backend_paths(&stack).is_empty());
}

#[tokio::test]
async fn a_garbage_technical_token_is_refused_before_the_backend() {
    let stack = stack().await;
    let pt = common::proxy_token(&stack, "mytenant").await;
    for token in [
        "not-a-jwt-at-all",
        &stack.uaa().client_token("mytenant", "sb-idprop-app!t1").forge(idprop_mocks::Forgery::WrongKey),
    ] {
        let (status, body) = technical(&stack, &pt, token).await;
        assert_eq!(status, 401, "{body}");
        assert!(body.contains("technical user propagation refused"), "{body}");
    }
    assert!(backend_paths(&stack).is_empty());
    // A valid client-credentials token still goes through.
    let good = stack.uaa().client_token("mytenant", "sb-idprop-app!t1").sign();
    let (status, body) = technical(&stack, &pt, &good).await;
    assert_eq!(status, 200, "{body}");
}
