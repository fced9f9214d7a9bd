//! The Cloud Connector's system certificate, `SSL_CLIENT_CERT` and the
//! backend's ICM trust (rules `SC-1`..`SC-4`): every authentication mode of
//! system-mappings-e933fd9.md, a stranger's forged header, a connector the
//! backend does not trust, a connector without a system certificate, and
//! the Expiration Tolerance.

mod common;

use idprop_mocks::backend::BackendConfig;
use idprop_mocks::connector::AuthenticationMode;
use idprop_mocks::connector::MappingConfig;
use idprop_mocks::rules::backend_logon::TrustedProxy;
use idprop_mocks::{ConnectorConfig, Stack};
use serde_json::Value;

/// The default connector with one HTTPS mapping per mode, on ports 1..=4.
fn modes() -> ConnectorConfig {
    let modes = [
        AuthenticationMode::X509General,
        AuthenticationMode::X509Restricted,
        AuthenticationMode::None,
        AuthenticationMode::NoneRestricted,
    ];
    ConnectorConfig {
        mappings: modes
            .iter()
            .enumerate()
            .map(|(i, m)| MappingConfig {
                virtual_url: format!("http://erp.onprem.test:{}", i + 1),
                internal: "https://erp.internal.test".into(),
                principal: *m,
                paths: vec!["/".into()],
            })
            .collect(),
        ..ConnectorConfig::default()
    }
}

/// GET `url` through the Connectivity proxy, as `user` when given.
async fn call(stack: &Stack, url: &str, user: Option<&str>) -> (u16, Value) {
    let pt = common::proxy_token(stack, "mytenant").await;
    let mut rb = common::onprem_client(stack).get(url).header("Proxy-Authorization", format!("Bearer {pt}"));
    if let Some(u) = user {
        rb = rb.header("SAP-Connectivity-Authentication", format!("Bearer {u}"));
    }
    let resp = rb.send().await.unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

/// A client straight to the HTTPS backend (no connector), optionally with a
/// client certificate of the test root CA.
fn direct(stack: &Stack, cert_cn: Option<&str>) -> (reqwest::Client, String) {
    let https = stack.components()["backend-https"].clone();
    let port = https.rsplit(':').next().unwrap().parse::<u16>().unwrap();
    let mut b = reqwest::Client::builder()
        .no_proxy()
        .resolve("erp.internal.test", std::net::SocketAddr::from(([127, 0, 0, 1], port)))
        .tls_certs_only([reqwest::Certificate::from_pem(stack.ca_pem().as_bytes()).unwrap()]);
    if let Some(cn) = cert_cn {
        let (cert, key) = stack.pki().client_cert_pem(cn).unwrap();
        b = b.identity(reqwest::Identity::from_pem(format!("{cert}{key}").as_bytes()).unwrap());
    }
    (b.build().unwrap(), format!("https://erp.internal.test:{port}/echo/direct"))
}

#[tokio::test]
async fn sc_1_principal_propagation_handshakes_with_the_system_certificate_and_names_the_user_in_the_header() {
    let stack = Stack::start().await.unwrap();
    let alice = stack.uaa().user_token("mytenant", "alice").sign();
    let (s, echo) = call(&stack, "http://erp.onprem.test:44300/echo/who", Some(&alice)).await;
    assert_eq!(s, 200, "{echo}");
    let system = stack.connectivity().connector("").unwrap().system_certificate().unwrap().clone();
    assert_eq!(echo["tls_client_cert"]["subject"], system.subject);
    assert_eq!(echo["tls_client_cert"]["subject"], "CN=SCC,OU=default location,O=idprop TEST ONLY");
    assert_eq!(echo["ssl_client_cert"]["subject"], "CN=alice");
    assert_eq!(echo["ssl_client_cert"]["issuer"], "CN=idprop TEST ONLY Cloud Connector CA,O=idprop TEST ONLY");
    assert_eq!(echo["client_cert"]["subject"], "CN=alice", "the backend logs on the header's user");
    // SC-3: one line of base64 DER.
    let header = echo["headers"]["ssl_client_cert"].as_str().unwrap();
    assert!(!header.contains('\n') && !header.contains("BEGIN"), "{header}");
    // The journal sees the same on the backend hop.
    let hop = stack.journal().of("backend").pop().unwrap();
    assert_eq!(hop.client_cert.unwrap().subject, system.subject);
    assert_eq!(hop.ssl_client_cert.unwrap().subject, "CN=alice");
    // And the ready file shows the system certificate.
    let info = stack.ready_info();
    assert_eq!(info["cloud_connector"]["locations"][0]["system_certificate"]["subject"], system.subject);
    assert_eq!(info["cloud_connector"]["locations"][0]["mappings"][0]["principal"], "X509_RESTRICTED");
}

#[tokio::test]
async fn sc_2_each_authentication_mode_sends_what_the_pages_say() {
    let stack = Stack::builder().connector(modes()).start().await.unwrap();
    let alice = stack.uaa().user_token("mytenant", "alice").sign();
    let system = stack.connectivity().connector("").unwrap().system_certificate().unwrap().subject.clone();
    // (port, with alice: header subject, logged on; without: header value, logged on)
    type Subject<'a> = Option<&'a str>;
    let cases: [(u16, Subject, Subject, Subject, Subject); 4] = [
        // X509_GENERAL: alice in the header; without, no header: the system certificate logs on.
        (1, Some("CN=alice"), Some("CN=alice"), None, Some(system.as_str())),
        // X509_RESTRICTED: alice; without, an empty header: nobody by certificate.
        (2, Some("CN=alice"), Some("CN=alice"), Some(""), None),
        // NONE: never a user; the system certificate logs on.
        (3, None, Some(system.as_str()), None, Some(system.as_str())),
        // NONE_RESTRICTED: never a user, never the system certificate.
        (4, None, None, Some(""), None),
    ];
    for (port, header_with, logon_with, header_without, logon_without) in cases {
        let url = format!("http://erp.onprem.test:{port}/echo/m");
        let (s, with) = call(&stack, &url, Some(&alice)).await;
        assert_eq!(s, 200, "{with}");
        assert_eq!(with["tls_client_cert"]["subject"], system.as_str(), "port {port}");
        assert_eq!(with["ssl_client_cert"]["subject"].as_str(), header_with, "port {port} with a user");
        assert_eq!(with["client_cert"]["subject"].as_str(), logon_with, "port {port} with a user");
        let (s, without) = call(&stack, &url, None).await;
        assert_eq!(s, 200, "{without}");
        assert_eq!(without["headers"]["ssl_client_cert"].as_str(), header_without, "port {port} without a user");
        assert!(without["ssl_client_cert"].is_null());
        assert_eq!(without["client_cert"]["subject"].as_str(), logon_without, "port {port} without a user");
    }
}

#[tokio::test]
async fn sc_4_a_stranger_sending_ssl_client_cert_gets_403() {
    let stack = Stack::start().await.unwrap();
    let (forged, _) = stack.pki().client_cert_pem("admin").unwrap();
    let forged_b64 = {
        let der = pem::parse(&forged).unwrap();
        base64::Engine::encode(&base64::engine::general_purpose::STANDARD, der.contents())
    };
    // With a client certificate of a CA the backend trusts, but not a
    // trusted reverse proxy's; and with none at all.
    for cn in [Some("mallory"), None] {
        let (client, url) = direct(&stack, cn);
        for value in [forged_b64.as_str(), forged.trim(), ""] {
            let r = client.get(&url).header("SSL_CLIENT_CERT", value.replace('\n', "\\n")).send().await.unwrap();
            assert_eq!(r.status(), 403, "{cn:?} {value:.20}");
            let body = r.text().await.unwrap();
            assert!(!body.contains("\"cn\":\"admin\""), "{body}");
        }
    }
    // Without the header, mallory logs on as herself (ICM's certificate logon).
    let (client, url) = direct(&stack, Some("mallory"));
    let echo: Value = client.get(&url).send().await.unwrap().json().await.unwrap();
    assert_eq!(echo["client_cert"]["cn"], "mallory");
    // The plain-HTTP listener has no client certificate: the header is refused too.
    let http = stack.components()["backend-http"].clone();
    let r = reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .get(format!("{http}/echo/x"))
        .header("SSL_CLIENT_CERT", forged_b64.as_str())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
}

#[tokio::test]
async fn sc_4_a_connector_the_backend_does_not_trust_propagates_nobody() {
    // The backend trusts another proxy only.
    let stack = Stack::builder()
        .backend(BackendConfig {
            trusted_reverse_proxies: Some(vec![TrustedProxy {
                subject: "CN=SCC,OU=elsewhere,O=idprop TEST ONLY".into(),
                issuer: "CN=idprop TEST ONLY Root CA,O=idprop TEST ONLY".into(),
            }]),
            ..BackendConfig::default()
        })
        .start()
        .await
        .unwrap();
    let alice = stack.uaa().user_token("mytenant", "alice").sign();
    let (s, body) = call(&stack, "http://erp.onprem.test:44300/echo/who", Some(&alice)).await;
    assert_eq!(s, 403, "{body}");
    assert!(body.to_string().contains("not a trusted reverse proxy"), "{body}");
}

#[tokio::test]
async fn sc_1_without_a_system_certificate_the_handshake_has_no_client_certificate() {
    let stack = Stack::builder()
        .connector(ConnectorConfig { system_certificate: false, ..ConnectorConfig::default() })
        .start()
        .await
        .unwrap();
    assert!(stack.ready_info()["cloud_connector"]["locations"][0]["system_certificate"].is_null());
    let alice = stack.uaa().user_token("mytenant", "alice").sign();
    // "For identity propagation, mutual authentication (mTLS) is mandatory"
    // (a8bb87a): the backend's mTLS path refuses.
    let (s, body) = call(&stack, "http://erp.onprem.test:44300/echo/who", Some(&alice)).await;
    assert_eq!(s, 403, "{body}");
}

#[tokio::test]
async fn tv_3_expiration_tolerance_accepts_a_recently_expired_token_and_no_older() {
    let expired_an_hour_ago = |stack: &Stack| {
        let now = idprop_mocks::tokens::unix_now() as i64;
        stack.uaa().user_token("mytenant", "alice").claim("iat", now - 7200).claim("exp", now - 3600).sign()
    };
    let strict = Stack::start().await.unwrap();
    let (s, body) = call(&strict, "http://erp.onprem.test:44300/echo/who", Some(&expired_an_hour_ago(&strict))).await;
    assert_eq!(s, 401, "{body}");
    assert!(body.to_string().contains("expired"), "{body}");

    let tolerant = Stack::builder()
        .connector(ConnectorConfig { expiration_tolerance_hours: 2, ..ConnectorConfig::default() })
        .start()
        .await
        .unwrap();
    let (s, echo) =
        call(&tolerant, "http://erp.onprem.test:44300/echo/who", Some(&expired_an_hour_ago(&tolerant))).await;
    assert_eq!(s, 200, "{echo}");
    assert_eq!(echo["client_cert"]["subject"], "CN=alice");
    let now = idprop_mocks::tokens::unix_now() as i64;
    let older =
        tolerant.uaa().user_token("mytenant", "alice").claim("iat", now - 4 * 3600).claim("exp", now - 3 * 3600);
    let (s, _) = call(&tolerant, "http://erp.onprem.test:44300/echo/who", Some(&older.sign())).await;
    assert_eq!(s, 401);
    // Out of range is refused at start (58803a2: at most 336 h).
    let err = Stack::builder()
        .connector(ConnectorConfig { expiration_tolerance_hours: 337, ..ConnectorConfig::default() })
        .start()
        .await
        .unwrap_err();
    assert!(err.to_string().contains("336"), "{err}");
}

#[tokio::test]
async fn sp_3_user_type_conditions_apply_to_technical_users() {
    use idprop_mocks::rules::subject::{Condition, Operator, SubjectRule};
    let stack = Stack::builder()
        .connector(ConnectorConfig {
            subject_patterns: vec![
                SubjectRule {
                    condition: Some(Condition {
                        variable: "user_type".into(),
                        operator: Operator::Is("Technical".into()),
                    }),
                    pattern: "CN=${name},OU=technical".into(),
                },
                SubjectRule { condition: None, pattern: "CN=${name}".into() },
            ],
            ..ConnectorConfig::default()
        })
        .start()
        .await
        .unwrap();
    let pt = common::proxy_token(&stack, "mytenant").await;
    let tech = stack.uaa().client_token("mytenant", idprop_mocks::uaa::APP_CLIENT.0).sign();
    let echo: Value = common::onprem_client(&stack)
        .get("http://erp.onprem.test:44300/echo/t")
        .header("Proxy-Authorization", format!("Bearer {pt}"))
        .header("SAP-Connectivity-Technical-Authentication", format!("Bearer {tech}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(echo["client_cert"]["subject"], format!("CN={},OU=technical", idprop_mocks::uaa::APP_CLIENT.0));
    let alice = stack.uaa().user_token("mytenant", "alice").sign();
    let (_, echo) = call(&stack, "http://erp.onprem.test:44300/echo/who", Some(&alice)).await;
    assert_eq!(echo["client_cert"]["subject"], "CN=alice");
}
