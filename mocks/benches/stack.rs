//! `cargo bench -p idprop-mocks`: start-up and the crypto on the hot paths.

use criterion::{criterion_group, criterion_main, Criterion};
use idprop_mocks::Stack;

fn startup(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    c.bench_function("Stack::start() to ready", |b| b.to_async(&rt).iter(|| async { Stack::start().await.unwrap() }));
}

fn tokens(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let stack = rt.block_on(Stack::start()).unwrap();
    let builder = stack.uaa().user_token("mytenant", "alice");
    c.bench_function("token issuance (RS256 sign)", |b| b.iter(|| builder.sign()));
    let token = builder.sign();
    let trusted = stack.uaa().trusted_issuers();
    c.bench_function("JWT validation (RS256 verify + claims)", |b| {
        b.iter(|| {
            idprop_mocks::rules::token_validation::validate(&token, &trusted, idprop_mocks::tokens::unix_now() as i64)
                .unwrap()
        })
    });
    c.bench_function("JWT validation of a token seen before (remembered)", |b| {
        b.iter(|| stack.uaa().validate(&token).unwrap())
    });
    let client = stack.http_client();
    let url = format!("{}/oauth/token", stack.uaa_url("mytenant"));
    c.bench_function("client_credentials round trip through the gateway (TLS, keep-alive)", |b| {
        b.to_async(&rt).iter(|| async {
            let r = client
                .post(&url)
                .basic_auth(idprop_mocks::uaa::APP_CLIENT.0, Some(idprop_mocks::uaa::APP_CLIENT.1))
                .form(&[("grant_type", "client_credentials")])
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
            r.bytes().await.unwrap()
        })
    });
}

fn principal_propagation(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let stack = rt.block_on(Stack::start()).unwrap();
    let connector = stack.connectivity().connector("").unwrap();
    let claims = stack.uaa().user_token("mytenant", "alice").claims().clone();
    let mapping = connector.map(&claims, idprop_mocks::rules::principal::UserType::Business).unwrap();
    c.bench_function("certificate minting (ECDSA P-256, connector CA)", |b| {
        b.iter(|| connector.mint_certificate(&mapping).unwrap())
    });

    let client = stack.http_client();
    let proxy_token: String = rt.block_on(async {
        let r: serde_json::Value = client
            .post(format!("{}/oauth/token", stack.uaa_url("mytenant")))
            .basic_auth(idprop_mocks::uaa::CONNECTIVITY_CLIENT.0, Some(idprop_mocks::uaa::CONNECTIVITY_CLIENT.1))
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        r["access_token"].as_str().unwrap().to_string()
    });
    let user = stack.uaa().user_token("mytenant", "alice").sign();
    let onprem = reqwest::Client::builder()
        .proxy(reqwest::Proxy::http(stack.connectivity_proxy_url()).unwrap())
        .build()
        .unwrap();
    c.bench_function("principal propagation round trip (app → proxy → connector → mTLS backend)", |b| {
        b.to_async(&rt).iter(|| async {
            let r = onprem
                .get("http://erp.onprem.test:44300/echo/bench")
                .header("Proxy-Authorization", format!("Bearer {proxy_token}"))
                .header("SAP-Connectivity-Authentication", format!("Bearer {user}"))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
            r.bytes().await.unwrap()
        })
    });
}

criterion_group!(benches, startup, tokens, principal_propagation);
criterion_main!(benches);
