//! Connectivity proxy → Cloud Connector → on-premise backend over real
//! mutual TLS: principal propagation end to end, every refusal, the
//! certificates, and no identity mix-ups under concurrency.

mod common;

use std::time::Duration;

use common::post_form;
use idprop_mocks::rules::subject::SubjectRule;
use idprop_mocks::uaa::CONNECTIVITY_CLIENT;
use idprop_mocks::{ConnectorConfig, Forgery, Stack};
use serde_json::{json, Value};

const ERP: &str = "http://erp.onprem.test:44300";

/// GET `url` through the proxy with `headers`; status and body (JSON when it parses).
async fn call(stack: &Stack, url: &str, headers: &[(&str, String)]) -> (u16, Value) {
    let mut rb = common::onprem_client(stack).get(url);
    for (k, v) in headers {
        rb = rb.header(*k, v.as_str());
    }
    let resp = rb.send().await.unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

async fn as_user(stack: &Stack, user_token: &str) -> (u16, Value) {
    let pt = common::proxy_token(stack, "mytenant").await;
    call(
        stack,
        &format!("{ERP}/echo/who"),
        &[
            ("Proxy-Authorization", format!("Bearer {pt}")),
            ("SAP-Connectivity-Authentication", format!("Bearer {user_token}")),
        ],
    )
    .await
}

fn backend_calls(stack: &Stack) -> usize {
    stack.journal().of("backend").len()
}

async fn start() -> Stack {
    Stack::start().await.unwrap()
}

#[tokio::test]
async fn pp_2_each_claim_of_the_priority_list_names_the_certificate() {
    let stack = start().await;
    let order = ["user_name", "email", "mail", "user_uuid", "sub"];
    for (i, claim) in order.iter().enumerate() {
        let mut b = stack.uaa().user_token("mytenant", "alice").claim("mail", "alice.mail@example.test");
        for drop in &order[..i] {
            b = b.without(drop);
        }
        let expected = b.claims()[*claim].as_str().unwrap().to_string();
        let (status, echo) = as_user(&stack, &b.sign()).await;
        assert_eq!(status, 200, "{claim}: {echo}");
        assert_eq!(echo["client_cert"]["cn"], expected.as_str(), "{claim}");
        assert_eq!(echo["client_cert"]["subject"], format!("CN={expected}"), "{claim}");
    }
}

#[tokio::test]
async fn pp_2_combinations_take_the_highest_present_claim() {
    let stack = start().await;
    let base = |pairs: &[(&str, &str)]| {
        let mut b = stack.uaa().user_token("mytenant", "x");
        for k in ["user_name", "email", "mail", "user_uuid", "sub"] {
            b = b.without(k);
        }
        for (k, v) in pairs {
            b = b.claim(*k, *v);
        }
        b.sign()
    };
    for (pairs, cn) in [
        (vec![("sub", "s1"), ("mail", "m1")], "m1"),
        (vec![("sub", "s2"), ("user_uuid", "u2")], "u2"),
        (vec![("email", "e3"), ("user_name", "n3"), ("sub", "s3")], "n3"),
        (vec![("mail", "m4"), ("email", "e4")], "e4"),
    ] {
        let (s, echo) = as_user(&stack, &base(&pairs)).await;
        assert_eq!(s, 200);
        assert_eq!(echo["client_cert"]["cn"], cn, "{pairs:?}");
    }
}

#[tokio::test]
async fn pp_4_the_seed_sample_token_gives_test_at_users_com() {
    let stack = start().await;
    let iss = stack.uaa().factory().issuer("mytenant");
    let claims = json!({"aud": "111111111111-2222-3333-444444444444", "iss": iss, "exp": 2091269073, "iat": 1601901108,
        "jti": "111222333444555666777888999000", "sub": "test", "email": "test@users.com"});
    let token = stack.uaa().factory().builder("mytenant", claims.as_object().unwrap().clone()).sign();
    let (s, echo) = as_user(&stack, &token).await;
    assert_eq!(s, 200, "{echo}");
    assert_eq!(echo["client_cert"]["subject"], "CN=test@users.com");
}

#[tokio::test]
async fn sp_2_a_pattern_with_several_variables() {
    let stack = Stack::builder()
        .connector(ConnectorConfig {
            subject_patterns: vec![SubjectRule {
                condition: None,
                pattern: "CN=${name},EMAIL=${email},OU=${given_name},O=ACME,C=DE".into(),
            }],
            ..ConnectorConfig::default()
        })
        .start()
        .await
        .unwrap();
    let (s, echo) = as_user(&stack, &stack.uaa().user_token("mytenant", "alice").sign()).await;
    assert_eq!(s, 200, "{echo}");
    assert_eq!(echo["client_cert"]["subject"], "CN=alice,EMAIL=alice@example.test,OU=Alice,O=ACME,C=DE");
}

#[tokio::test]
async fn sp_4_claim_values_are_escaped_never_reexpanded() {
    let stack = start().await;
    let token = stack.uaa().user_token("mytenant", "alice").claim("user_name", "a,O=evil ${email}").sign();
    let (s, echo) = as_user(&stack, &token).await;
    assert_eq!(s, 200, "{echo}");
    assert_eq!(echo["client_cert"]["cn"], "a,O=evil ${email}");
    assert_eq!(echo["client_cert"]["subject"], "CN=a\\,O=evil ${email}");
}

#[tokio::test]
async fn pp_5_certificates_are_issued_by_the_connector_ca_for_the_configured_minutes() {
    let stack = Stack::builder()
        .connector(ConnectorConfig { certificate_validity_minutes: 7, ..Default::default() })
        .start()
        .await
        .unwrap();
    let (_, echo) = as_user(&stack, &stack.uaa().user_token("mytenant", "alice").sign()).await;
    let c = &echo["client_cert"];
    assert_eq!(c["issuer"], "CN=idprop TEST ONLY Cloud Connector CA,O=idprop TEST ONLY");
    let parse = |v: &Value| {
        time::OffsetDateTime::parse(v.as_str().unwrap(), &time::format_description::well_known::Rfc3339).unwrap()
    };
    let until = parse(&c["not_after"]) - time::OffsetDateTime::now_utc();
    assert!(until > time::Duration::minutes(6) && until <= time::Duration::minutes(7), "{until}");
    // Cached per principal: a second call mints nothing new.
    as_user(&stack, &stack.uaa().user_token("mytenant", "alice").sign()).await;
    assert_eq!(stack.connectivity().connector("").unwrap().minted(), 1);
    assert!(Stack::builder()
        .connector(ConnectorConfig { certificate_validity_minutes: 43_201, ..Default::default() })
        .start()
        .await
        .is_err());
}

#[tokio::test]
async fn the_backend_refuses_certificates_of_another_ca_or_expired_ones() {
    let stack = start().await;
    let https = stack.components()["backend-https"].clone();
    let port = https.rsplit(':').next().unwrap().parse::<u16>().unwrap();
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let mint = |ca: &idprop_mocks::pki::CertificateAuthority, expired: bool| {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let mut p = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        p.distinguished_name.push(rcgen::DnType::CommonName, "mallory");
        let now = time::OffsetDateTime::now_utc();
        (p.not_before, p.not_after) = if expired {
            (now - time::Duration::hours(2), now - time::Duration::hours(1))
        } else {
            (now, now + time::Duration::hours(1))
        };
        format!("{}{}", ca.issue(&p, &key).unwrap().pem(), key.serialize_pem())
    };
    let client = |pem: Option<String>| {
        let mut b = reqwest::Client::builder()
            .no_proxy()
            .resolve("erp.internal.test", addr)
            .tls_certs_only([reqwest::Certificate::from_pem(stack.ca_pem().as_bytes()).unwrap()]);
        if let Some(p) = pem {
            b = b.identity(reqwest::Identity::from_pem(p.as_bytes()).unwrap());
        }
        b.build().unwrap()
    };
    let url = format!("https://erp.internal.test:{port}/echo/x");
    let good = client(Some(mint(stack.pki().connector_ca(), false))).get(&url).send().await.unwrap();
    assert_eq!(good.status(), 200);
    assert!(client(Some(mint(stack.pki().untrusted_ca(), false))).get(&url).send().await.is_err(), "other CA accepted");
    assert!(client(Some(mint(stack.pki().connector_ca(), true))).get(&url).send().await.is_err(), "expired accepted");
    // The root CA (the "company CA" of system certificates and key stores)
    // is trusted in the handshake: its holder logs on as itself, and may not
    // name anybody else (tests/system_certificate.rs).
    let root = client(Some(mint(stack.pki().root_ca(), false))).get(&url).send().await.unwrap();
    let root: Value = root.json().await.unwrap();
    assert_eq!(root["client_cert"]["cn"], "mallory");
    let none = client(None).get(&url).send().await.unwrap();
    assert_eq!(none.status(), 403, "no certificate on an mTLS path");
}

#[tokio::test]
async fn tp_1_cp_4_a_technical_user_logs_on_by_certificate_and_proxy_headers_never_pass() {
    let stack = start().await;
    let pt = common::proxy_token(&stack, "mytenant").await;
    // A client-credentials token of a trusted issuer: validated like a
    // user's (set-up-trust-a4ee70f), `${name}` by the Technical priority
    // (client_id first, 58803a2), a short-lived certificate, never the token
    // itself ("Do not use the Authorization header in technical user
    // propagation scenarios", 67b0b94).
    let tech = stack.uaa().client_token("mytenant", idprop_mocks::uaa::APP_CLIENT.0).sign();
    let (s, echo) = call(
        &stack,
        &format!("{ERP}/echo/t?q=1"),
        &[
            ("Proxy-Authorization", format!("Bearer {pt}")),
            ("SAP-Connectivity-Technical-Authentication", format!("Bearer {tech}")),
            ("SAP-Connectivity-SCC-Location_ID", "".into()),
            ("X-Custom", "kept".into()),
        ],
    )
    .await;
    assert_eq!(s, 200, "{echo}");
    assert!(echo["authorization"].is_null(), "the technical token reached the backend: {echo}");
    assert_eq!(echo["client_cert"]["subject"], format!("CN={}", idprop_mocks::uaa::APP_CLIENT.0));
    assert_eq!(echo["ssl_client_cert"]["subject"], format!("CN={}", idprop_mocks::uaa::APP_CLIENT.0));
    assert_eq!(echo["query"]["q"], "1");
    assert_eq!(echo["headers"]["x-custom"], "kept");
    for (k, _) in echo["headers"].as_object().unwrap() {
        assert!(!k.starts_with("sap-connectivity") && k != "proxy-authorization", "{k} reached the backend");
    }
}

#[tokio::test]
async fn the_user_type_follows_the_header_not_the_claims() {
    let stack = start().await;
    let pt = common::proxy_token(&stack, "mytenant").await;
    // A user token in the technical header is a technical user: ${name}
    // from client_id, not user_name.
    let user = stack.uaa().user_token("mytenant", "alice").sign();
    let (s, echo) = call(
        &stack,
        &format!("{ERP}/echo/t"),
        &[
            ("Proxy-Authorization", format!("Bearer {pt}")),
            ("SAP-Connectivity-Technical-Authentication", format!("Bearer {user}")),
        ],
    )
    .await;
    assert_eq!(s, 200, "{echo}");
    let cid = common::claims(&user)["client_id"].as_str().unwrap().to_string();
    assert_eq!(echo["client_cert"]["subject"], format!("CN={cid}"));
    // A client-credentials token in the user header is a business user:
    // no user_name/email/mail/user_uuid, so `sub`.
    let tech = stack.uaa().client_token("mytenant", idprop_mocks::uaa::APP_CLIENT.0).sign();
    let (s, echo) = as_user(&stack, &tech).await;
    let sub = common::claims(&tech)["sub"].as_str().unwrap().to_string();
    assert_eq!(s, 200, "{echo}");
    assert_eq!(echo["client_cert"]["subject"], format!("CN={sub}"));
}

#[tokio::test]
async fn cp_5_a_user_exchange_token_alone_propagates_the_principal() {
    let stack = start().await;
    let user = stack.uaa().user_token("mytenant", "bob").sign();
    let (s, b) = post_form(
        &stack,
        &format!("{}/oauth/token", stack.uaa_url("mytenant")),
        Some(CONNECTIVITY_CLIENT),
        &[
            ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
            ("assertion", &user),
            ("token_format", "jwt"),
            ("response_type", "token"),
        ],
    )
    .await;
    assert_eq!(s, 200, "{b}");
    let exchanged = b["access_token"].as_str().unwrap();
    let (s, echo) =
        call(&stack, &format!("{ERP}/echo/x"), &[("Proxy-Authorization", format!("Bearer {exchanged}"))]).await;
    assert_eq!(s, 200, "{echo}");
    assert_eq!(echo["client_cert"]["cn"], "bob");
}

#[tokio::test]
async fn no_identity_header_forwards_as_is() {
    let stack = start().await;
    let pt = common::proxy_token(&stack, "mytenant").await;
    let (s, echo) = call(
        &stack,
        "http://protected-url.example.test/echo/plain",
        &[("Proxy-Authorization", format!("Bearer {pt}")), ("Authorization", "Basic dGVzdDpwYXNzMTIzNDU=".into())],
    )
    .await;
    assert_eq!(s, 200, "{echo}");
    assert_eq!(echo["authorization"], "Basic dGVzdDpwYXNzMTIzNDU=");
    assert!(echo["client_cert"].is_null());
}

#[tokio::test]
async fn cp_2_the_location_id_selects_the_connector() {
    let loc2 = ConnectorConfig {
        location_id: "loc2".into(),
        subject_patterns: vec![SubjectRule { condition: None, pattern: "CN=${name},O=Plant 2".into() }],
        ..ConnectorConfig::default()
    };
    let stack = Stack::builder().connector(loc2).start().await.unwrap();
    let pt = common::proxy_token(&stack, "mytenant").await;
    let user = stack.uaa().user_token("mytenant", "alice").sign();
    let h = |loc: Option<&str>| {
        let mut v = vec![
            ("Proxy-Authorization", format!("Bearer {pt}")),
            ("SAP-Connectivity-Authentication", format!("Bearer {user}")),
        ];
        if let Some(l) = loc {
            v.push(("SAP-Connectivity-SCC-Location_ID", l.to_string()));
        }
        v
    };
    let (_, e) = call(&stack, &format!("{ERP}/echo/x"), &h(Some("loc2"))).await;
    assert_eq!(e["client_cert"]["subject"], "CN=alice,O=Plant 2");
    let (_, e) = call(&stack, &format!("{ERP}/echo/x"), &h(None)).await;
    assert_eq!(e["client_cert"]["subject"], "CN=alice");
    let (s, e) = call(&stack, &format!("{ERP}/echo/x"), &h(Some("nowhere"))).await;
    assert_eq!(s, 503);
    assert!(e.as_str().unwrap().contains("nowhere"));
}

/// Asserts a refusal with `status`, a body naming `reason`, and nothing at the backend.
async fn refused(stack: &Stack, url: &str, headers: &[(&str, String)], status: u16, reason: &str) {
    let before = backend_calls(stack);
    let (s, body) = call(stack, url, headers).await;
    assert_eq!(s, status, "{body}");
    let text = body.as_str().unwrap_or_default().to_string();
    assert!(text.contains(reason), "expected {reason:?} in {text:?}");
    assert_eq!(backend_calls(stack), before, "the backend was called");
}

#[tokio::test]
async fn cp_1_no_proxy_authorization_is_407() {
    let stack = start().await;
    refused(&stack, &format!("{ERP}/echo/x"), &[], 407, "Proxy-Authorization").await;
}

#[tokio::test]
async fn cp_1_a_proxy_token_of_another_client_is_407() {
    let stack = start().await;
    let (_, b) = post_form(
        &stack,
        &format!("{}/oauth/token", stack.uaa_url("mytenant")),
        Some(common::APP),
        &[("grant_type", "client_credentials")],
    )
    .await;
    let t = b["access_token"].as_str().unwrap();
    refused(
        &stack,
        &format!("{ERP}/echo/x"),
        &[("Proxy-Authorization", format!("Bearer {t}"))],
        407,
        "not to the connectivity",
    )
    .await;
}

#[tokio::test]
async fn cp_1_an_expired_or_forged_proxy_token_is_407() {
    let stack = start().await;
    let b = stack.uaa().client_token("mytenant", CONNECTIVITY_CLIENT.0);
    for (f, why) in [(Forgery::Expired, "expired"), (Forgery::AlgNone, "algorithm"), (Forgery::WrongKey, "signature")] {
        refused(
            &stack,
            &format!("{ERP}/echo/x"),
            &[("Proxy-Authorization", format!("Bearer {}", b.forge(f)))],
            407,
            why,
        )
        .await;
    }
}

#[tokio::test]
async fn an_unmapped_virtual_host_is_403() {
    let stack = start().await;
    let pt = common::proxy_token(&stack, "mytenant").await;
    refused(
        &stack,
        "http://unknown.onprem.test:44300/echo/x",
        &[("Proxy-Authorization", format!("Bearer {pt}"))],
        403,
        "no mapping",
    )
    .await;
    refused(
        &stack,
        "http://erp.onprem.test:1234/echo/x",
        &[("Proxy-Authorization", format!("Bearer {pt}"))],
        403,
        "no mapping",
    )
    .await;
}

#[tokio::test]
async fn a_path_outside_the_allow_list_is_403() {
    let mut c = ConnectorConfig::default();
    c.mappings[0].paths = vec!["/echo/".into()];
    let stack = Stack::builder().connector(c).start().await.unwrap();
    let pt = common::proxy_token(&stack, "mytenant").await;
    refused(
        &stack,
        &format!("{ERP}/sap/opu/odata"),
        &[("Proxy-Authorization", format!("Bearer {pt}"))],
        403,
        "not allowed",
    )
    .await;
}

#[tokio::test]
async fn tp_2_both_propagation_headers_are_400() {
    let stack = start().await;
    let pt = common::proxy_token(&stack, "mytenant").await;
    let user = stack.uaa().user_token("mytenant", "alice").sign();
    refused(
        &stack,
        &format!("{ERP}/echo/x"),
        &[
            ("Proxy-Authorization", format!("Bearer {pt}")),
            ("SAP-Connectivity-Authentication", format!("Bearer {user}")),
            ("SAP-Connectivity-Technical-Authentication", "Bearer t".into()),
        ],
        400,
        "never combined",
    )
    .await;
}

#[tokio::test]
async fn tv_2_tv_3_tv_4_hostile_user_tokens_are_refused_with_a_reason() {
    let stack = start().await;
    let pt = common::proxy_token(&stack, "mytenant").await;
    let b = stack.uaa().user_token("mytenant", "alice");
    let cases = [
        (Forgery::AlgNone, 401, "algorithm"),
        (Forgery::Hs256WithPublicKey, 401, "algorithm"),
        (Forgery::WrongKey, 401, "signature"),
        (Forgery::UnknownKid, 401, "unknown signing key"),
        (Forgery::StrippedSignature, 401, "signature"),
        (Forgery::Expired, 401, "expired"),
        (Forgery::NotYetValid, 401, "not yet valid"),
        (Forgery::IssuedInFuture, 401, "future"),
        (Forgery::MissingPrincipalClaims, 403, "no principal"),
    ];
    for (f, status, why) in cases {
        let h = [
            ("Proxy-Authorization", format!("Bearer {pt}")),
            ("SAP-Connectivity-Authentication", format!("Bearer {}", b.forge(f))),
        ];
        refused(&stack, &format!("{ERP}/echo/x"), &h, status, why).await;
    }
    // TV-1: a token of an issuer the connector does not trust.
    let foreign = stack.uaa().user_token("stranger", "alice").sign();
    let h = [
        ("Proxy-Authorization", format!("Bearer {pt}")),
        ("SAP-Connectivity-Authentication", format!("Bearer {foreign}")),
    ];
    refused(&stack, &format!("{ERP}/echo/x"), &h, 401, "not trusted").await;
    let h = [
        ("Proxy-Authorization", format!("Bearer {pt}")),
        ("SAP-Connectivity-Authentication", "Bearer not-a-jwt".into()),
    ];
    refused(&stack, &format!("{ERP}/echo/x"), &h, 401, "malformed").await;
    assert_eq!(stack.connectivity().connector("").unwrap().minted(), 0, "no certificate minted");
}

#[tokio::test]
async fn cp_3_https_connect_and_oversized_heads_are_refused() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let stack = start().await;
    let addr = stack.connectivity_proxy_url().trim_start_matches("http://").to_string();
    // A TLS ClientHello gets a plain-text 405.
    let mut s = tokio::net::TcpStream::connect(&addr).await.unwrap();
    s.write_all(&[0x16, 0x03, 0x01, 0x00, 0x05, 0x01, 0x00, 0x00, 0x01, 0x00]).await.unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    assert!(out.starts_with("HTTP/1.1 405"), "{out}");
    // CONNECT is refused too.
    let mut s = tokio::net::TcpStream::connect(&addr).await.unwrap();
    s.write_all(b"CONNECT erp.onprem.test:443 HTTP/1.1\r\nHost: erp.onprem.test:443\r\n\r\n").await.unwrap();
    let mut buf = vec![0u8; 512];
    let n = s.read(&mut buf).await.unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 405"));
    // A head over 8192 bytes.
    let before = backend_calls(&stack);
    let resp = common::onprem_client(&stack)
        .get(format!("{ERP}/echo/x"))
        .header("X-Big", "a".repeat(9000))
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_client_error(), "{}", resp.status());
    assert_eq!(backend_calls(&stack), before);
}

#[tokio::test]
async fn pp_6_two_hundred_requests_for_twenty_users_at_once_each_with_its_own_certificate() {
    let stack = start().await;
    let pt = common::proxy_token(&stack, "mytenant").await;
    let client = common::onprem_client(&stack);
    let tokens: Vec<String> =
        (0..20).map(|i| stack.uaa().user_token("mytenant", &format!("user{i:02}")).sign()).collect();
    let calls = (0..200).map(|n| {
        let i = n % 20;
        let rb = client
            .get(format!("{ERP}/echo/req{n}"))
            .header("Proxy-Authorization", format!("Bearer {pt}"))
            .header("SAP-Connectivity-Authentication", format!("Bearer {}", tokens[i]));
        async move {
            let echo: Value = rb.send().await.unwrap().json().await.unwrap();
            (i, n, echo)
        }
    });
    let results = tokio::time::timeout(Duration::from_secs(60), futures::future::join_all(calls)).await.unwrap();
    for (i, n, echo) in results {
        assert_eq!(echo["path"], format!("/echo/req{n}"));
        assert_eq!(echo["client_cert"]["cn"], format!("user{i:02}"), "request {n} carried another user's certificate");
    }
    // Cross-check with the backend's own journal.
    for e in stack.journal().of("backend") {
        let n: usize = e.path.trim_start_matches("/echo/req").parse().unwrap();
        assert_eq!(e.ssl_client_cert.unwrap().cn.unwrap(), format!("user{:02}", n % 20));
    }
}
