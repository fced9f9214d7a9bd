//! Fuzzing with proptest (bounded, so it runs in every CI): the parsers
//! that face untrusted input never panic, and the servers keep serving.
//! Set IDPROP_FUZZ_CASES for longer runs.

use std::path::Path;

use idprop_mocks::rules::principal_mapping::{map_claims, single};
use idprop_mocks::rules::token_validation::{validate, TrustedIssuer};
use idprop_mocks::Stack;
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use serde_json::Value;

fn cases(default: u32) -> u32 {
    std::env::var("IDPROP_FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

const SCENARIO: &str = include_str!("../../tests/data/mapper-scenario.yaml");

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(2000), failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn the_scenario_loader_never_panics_on_any_text(text in "\\PC{0,400}") {
        if let Err(e) = idprop_harness::loader::parse(&text, Path::new("fuzz.yaml")) {
            prop_assert!(e.message.starts_with("fuzz.yaml:"), "{}", e.message);
        }
    }

    #[test]
    fn the_scenario_loader_survives_mutated_scenarios(pos in 0usize..SCENARIO.len(), cut in 0usize..40, insert in "[ -~\\n\\t:{}\\[\\]-]{0,12}") {
        let mut text = SCENARIO.to_string();
        let end = (pos + cut).min(text.len());
        if text.is_char_boundary(pos) && text.is_char_boundary(end) {
            text.replace_range(pos..end, &insert);
        }
        if let Err(e) = idprop_harness::loader::parse(&text, Path::new("m.yaml")) {
            prop_assert!(e.message.starts_with("m.yaml:"), "{}", e.message);
        }
    }

    #[test]
    fn the_jwt_validator_never_panics_on_junk(token in "[A-Za-z0-9_.=+/-]{0,300}") {
        let trust = vec![TrustedIssuer { issuer: "https://x.test".into(), jwks: Default::default(), jwks_uri: None }];
        prop_assert!(validate(&token, &trust, 0).is_err());
    }

    #[test]
    fn the_jwt_validator_never_panics_on_structured_junk(header in any::<Vec<u8>>(), payload in "\\PC{0,200}", sig in any::<Vec<u8>>()) {
        use base64::Engine;
        let e = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
        let token = format!("{}.{}.{}", e(&header), e(payload.as_bytes()), e(&sig));
        let trust = vec![TrustedIssuer { issuer: "https://x.test".into(), jwks: Default::default(), jwks_uri: None }];
        prop_assert!(validate(&token, &trust, 0).is_err());
    }

    #[test]
    fn the_subject_renderer_never_panics_and_never_lets_a_value_add_an_attribute(
        pattern in "[A-Za-z=,${}\\\\ .+]{0,40}",
        value in "\\PC{1,30}",
    ) {
        let mut claims = serde_json::Map::new();
        claims.insert("user_name".into(), Value::String(value.clone()));
        let _ = map_claims(&claims, &single(&pattern));
        // With a known-good pattern, the value stays one attribute.
        let m = map_claims(&claims, &single("CN=${name},O=ACME")).unwrap();
        prop_assert_eq!(m.attributes.len(), 2);
        prop_assert_eq!(&m.attributes[0].1, &value);
        let mut unescaped_commas = 0;
        let mut chars = m.subject.chars();
        while let Some(c) = chars.next() {
            match c {
                '\\' => { chars.next(); }
                ',' => unescaped_commas += 1,
                _ => {}
            }
        }
        prop_assert_eq!(unescaped_commas, 1, "{}", m.subject);
    }

    #[test]
    fn the_protocol_reader_never_panics_on_any_answer(answer in "\\PC{0,200}") {
        let req = serde_json::json!({"v": 1, "id": 7, "op": "hello"});
        if let Ok(v) = serde_json::from_str::<Value>(&answer) {
            let _ = idprop_harness::protocol::result_of(&req, &v);
        }
    }
}

/// Random bytes at the Connectivity proxy and the gateway: each connection
/// gets an answer or a close, and both keep serving real requests.
#[tokio::test]
async fn the_proxies_keep_serving_after_random_bytes() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let stack = Stack::start().await.unwrap();
    let targets = [stack.connectivity_proxy_url(), stack.gateway_url()];
    let mut runner =
        proptest::test_runner::TestRunner::new(ProptestConfig { cases: cases(150), ..ProptestConfig::default() });
    let strategy = prop_oneof![
        any::<Vec<u8>>(),
        "[A-Z]{3,7} [ -~]{0,60} HTTP/1\\.[01]\r\n([A-Za-z-]{1,10}: [ -~]{0,30}\r\n){0,4}\r\n"
            .prop_map(String::into_bytes),
    ];
    for _ in 0..cases(150) {
        let bytes = strategy.new_tree(&mut runner).unwrap().current();
        for t in &targets {
            let addr = t.trim_start_matches("http://").to_string();
            let mut s = tokio::net::TcpStream::connect(&addr).await.unwrap();
            let _ = s.write_all(&bytes).await;
            let _ = s.shutdown().await;
            let mut buf = Vec::new();
            let _ = tokio::time::timeout(std::time::Duration::from_secs(2), s.read_to_end(&mut buf)).await;
        }
    }
    // Still serving.
    let r = stack.http_client().get(format!("{}/token_keys", stack.uaa_url("mytenant"))).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let r = reqwest::Client::builder()
        .proxy(reqwest::Proxy::http(stack.connectivity_proxy_url()).unwrap())
        .build()
        .unwrap()
        .get("http://erp.onprem.test:44300/echo/x")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 407);
}
