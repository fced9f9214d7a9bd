//! The mock Destination service and the token retrieval behind it, per
//! rule, against scriptable token servers through the gateway: real HTTP,
//! real TLS, real timeouts.

mod common;

use std::time::{Duration, Instant};

use base64::Engine;
use common::{claims, destination_token, find_destination, post_form, stack, APP};
use idprop_mocks::rules::Destination;
use idprop_mocks::uaa::ClientAuthMethod;
use idprop_mocks::{DestinationEntry, Stack, TokenServerBehaviour};
use serde_json::Value;

const AUTH: &str = "authserver.example.test";

fn dest(pairs: &[(&str, &str)]) -> DestinationEntry {
    DestinationEntry::new(Destination(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()))
}

/// A client-credentials destination named `name` against `url`, plus `extra`.
fn cc(name: &str, url: &str, extra: &[(&str, &str)]) -> DestinationEntry {
    let mut d = dest(&[
        ("Name", name),
        ("Type", "HTTP"),
        ("URL", "https://api.example.test"),
        ("ProxyType", "Internet"),
        ("Authentication", "OAuth2ClientCredentials"),
        ("clientId", "cid"),
        ("clientSecret", "csecret"),
        ("tokenServiceURL", url),
    ]);
    for (k, v) in extra {
        d.properties.0.insert(k.to_string(), v.to_string());
    }
    d
}

async fn with(entries: Vec<DestinationEntry>, servers: &[(&str, TokenServerBehaviour)]) -> Stack {
    let stack = stack().await;
    for e in entries {
        stack.destinations().add(e);
    }
    for (h, b) in servers {
        stack.add_token_server(h, b.clone()).await.unwrap();
    }
    stack
}

fn token_requests(stack: &Stack) -> Vec<idprop_mocks::JournalEntry> {
    stack.journal().of("token-server")
}

fn auth_token(answer: &Value) -> &Value {
    &answer["authTokens"][0]
}

#[tokio::test]
async fn seed_technical_user_example_end_to_end() {
    let stack = stack().await;
    let (status, answer) = find_destination(&stack, "mytenant", "technical-user-example", None).await;
    assert_eq!(status, 200, "{answer}");
    // FD-1
    assert_eq!(answer["owner"]["SubaccountId"], stack.uaa().tenant("mytenant").unwrap().zid);
    assert_eq!(answer["destinationConfiguration"]["Authentication"], "OAuth2TechnicalUserPropagation");
    assert_eq!(answer["destinationConfiguration"]["clientSecret"], "secret1234");
    // FD-2
    let t = auth_token(&answer);
    assert_eq!(t["type"], "Bearer");
    let value = t["value"].as_str().unwrap();
    assert!(!value.is_empty());
    assert_eq!(t["http_header"]["key"], "SAP-Connectivity-Technical-Authentication");
    assert_eq!(t["http_header"]["value"], format!("Bearer {value}"));
    assert_eq!(t["expires_in"], "3600");
    // CA-1, CA-8, TU-1, FD-6: what the token server saw.
    let seen = token_requests(&stack);
    assert_eq!(seen.len(), 1);
    let e = &seen[0];
    assert_eq!((e.host.as_str(), e.path.as_str(), e.tls), (AUTH, "/oauth/token", true));
    assert_eq!(e.form_field("grant_type"), Some("client_credentials"));
    assert_eq!(e.form_field("client_id"), Some("clientId"));
    assert_eq!(e.form_field("client_secret"), Some("secret1234"));
    assert_eq!(e.header("authorization"), None);
}

#[tokio::test]
async fn tu_1_to_tu_4_token_service_urls_resolve_per_tenant() {
    let host = "authentication.us10.hana.ondemand.test";
    let stack = with(
        vec![
            cc("common-plain", &format!("https://{host}/oauth/token"), &[("tokenServiceURLType", "Common")]),
            cc("common-host", &format!("https://{{tenant}}.{host}/oauth/token"), &[("tokenServiceURLType", "Common")]),
            cc(
                "common-path",
                "https://authentication.myauthserver.test/tenant/{tenant}/oauth/token",
                &[("tokenServiceURLType", "Common")],
            ),
            cc("common-mid", "https://oauth.{tenant}.myauthserver.test/token", &[("tokenServiceURLType", "Common")]),
            cc("dedicated", &format!("https://{host}/oauth/token"), &[("tokenServiceURLType", "Dedicated")]),
        ],
        &[(host, Default::default()), ("myauthserver.test", Default::default())],
    )
    .await;
    let expect = [
        ("common-plain", "mytenant.authentication.us10.hana.ondemand.test", "/oauth/token"),
        ("common-host", "mytenant.authentication.us10.hana.ondemand.test", "/oauth/token"),
        ("common-path", "authentication.myauthserver.test", "/tenant/mytenant/oauth/token"),
        ("common-mid", "oauth.mytenant.myauthserver.test", "/token"),
        ("dedicated", "authentication.us10.hana.ondemand.test", "/oauth/token"),
    ];
    for (name, host, path) in expect {
        stack.journal().clear();
        let (s, a) = find_destination(&stack, "mytenant", name, None).await;
        assert_eq!(s, 200);
        assert!(auth_token(&a)["error"].is_null(), "{name}: {a}");
        let e = &token_requests(&stack)[0];
        assert_eq!((e.host.as_str(), e.path.as_str()), (host, path), "{name}");
    }
    // TU-5: the other tenant's call goes to the other tenant's URL.
    stack.journal().clear();
    find_destination(&stack, "othertenant", "common-plain", None).await;
    assert_eq!(token_requests(&stack)[0].host, "othertenant.authentication.us10.hana.ondemand.test");
}

#[tokio::test]
async fn ca_1_to_ca_5_credential_placement_reaches_the_server_as_documented() {
    let url = format!("https://{AUTH}/oauth/token");
    let stack = with(
        vec![
            cc("body", &url, &[]),
            cc("basic", &url, &[("tokenService.addClientCredentialsInBody", "false")]),
            cc(
                "basic-user",
                &url,
                &[
                    ("tokenService.addClientCredentialsInBody", "false"),
                    ("tokenServiceUser", "tsu"),
                    ("tokenServicePassword", "tsp"),
                ],
            ),
            cc("both", &url, &[("tokenServiceUser", "tsu"), ("tokenServicePassword", "tsp")]),
        ],
        &[],
    )
    .await;
    let run = |name: &'static str| {
        let stack = stack.clone();
        async move {
            stack.journal().clear();
            let (_, a) = find_destination(&stack, "mytenant", name, None).await;
            assert!(auth_token(&a)["error"].is_null(), "{name}: {a}");
            token_requests(&stack).remove(0)
        }
    };
    let e = run("body").await;
    assert_eq!(
        (e.form_field("client_id"), e.form_field("client_secret"), e.basic_credentials()),
        (Some("cid"), Some("csecret"), None)
    );
    let e = run("basic").await;
    assert_eq!((e.form_field("client_id"), e.form_field("client_secret")), (None, None));
    assert_eq!(e.basic_credentials(), Some(("cid".into(), "csecret".into())));
    let e = run("basic-user").await;
    assert_eq!(e.basic_credentials(), Some(("tsu".into(), "tsp".into())));
    assert_eq!(e.form_field("client_secret"), None);
    let e = run("both").await;
    assert_eq!(e.basic_credentials(), Some(("tsu".into(), "tsp".into())));
    assert_eq!(e.form_field("client_secret"), Some("csecret"));
}

#[tokio::test]
async fn ca_5_neo_style_server_accepting_only_basic_works_with_token_service_user() {
    let host = "api.neo.test";
    let url = format!("https://{host}/oauth2/apitoken/v1?grant_type=client_credentials");
    let neo = TokenServerBehaviour::default().client_auth(ClientAuthMethod::Basic).client("cid", "csecret");
    let stack = with(
        vec![
            cc("neo-ok", &url, &[("tokenServiceUser", "cid"), ("tokenServicePassword", "csecret")]),
            cc("neo-broken", &url, &[]),
        ],
        &[(host, neo)],
    )
    .await;
    let (_, a) = find_destination(&stack, "mytenant", "neo-ok", None).await;
    assert!(auth_token(&a)["error"].is_null(), "{a}");
    assert_eq!(token_requests(&stack)[0].query_param("grant_type"), Some("client_credentials"));
    let (_, a) = find_destination(&stack, "mytenant", "neo-broken", None).await;
    let err = auth_token(&a)["error"].as_str().unwrap();
    assert!(err.contains("401") && err.contains("Authorization header"), "{err}");
    assert_eq!(auth_token(&a)["value"], "");
}

#[tokio::test]
async fn ca_9_and_px_1_to_px_4_scope_and_prefixed_properties() {
    let stack = with(
        vec![cc(
            "px",
            &format!("https://{AUTH}/oauth/token"),
            &[
                ("scope", "read write"),
                ("tokenServiceURL.headers.X-Tenant-Hint", "acme corp"),
                ("tokenServiceURL.queries.resource", "urn:sap:x"),
                ("tokenService.body.audience", "aud-1"),
                ("URL.headers.X-Target", "t"),
                ("URL.queries.sap-client", "100"),
            ],
        )],
        &[],
    )
    .await;
    let (_, a) = find_destination(&stack, "mytenant", "px", None).await;
    assert!(auth_token(&a)["error"].is_null(), "{a}");
    assert_eq!(auth_token(&a)["scope"], "read write");
    let e = &token_requests(&stack)[0];
    assert_eq!(e.form_field("scope"), Some("read write"));
    assert_eq!(e.header("x-tenant-hint"), Some("acme corp"));
    assert_eq!(e.query_param("resource"), Some("urn:sap:x"));
    assert_eq!(e.form_field("audience"), Some("aud-1"));
    assert_eq!(e.header("x-target"), None);
    assert!(e.query_param("sap-client").is_none());
    assert!(e.form.iter().all(|(k, _)| !k.starts_with("URL.") && !k.contains("headers")));
    // PX-4: returned for the client, unchanged.
    assert_eq!(a["destinationConfiguration"]["URL.headers.X-Target"], "t");
    assert_eq!(a["destinationConfiguration"]["URL.queries.sap-client"], "100");
}

#[tokio::test]
async fn to_3_and_to_6_a_one_second_read_timeout_against_a_three_second_server_fails_in_about_a_second() {
    let stack = with(
        vec![cc(
            "slow",
            &format!("https://{AUTH}/oauth/token"),
            &[("tokenServiceURL.SocketReadTimeoutInSeconds", "1")],
        )],
        &[(AUTH, TokenServerBehaviour::default().delay(Duration::from_secs(3)))],
    )
    .await;
    let t = Instant::now();
    let (s, a) = find_destination(&stack, "mytenant", "slow", None).await;
    let took = t.elapsed();
    assert_eq!(s, 200);
    let err = auth_token(&a)["error"].as_str().unwrap();
    assert!(err.contains("read timeout of 1 s"), "{err}");
    assert!(took >= Duration::from_millis(900) && took < Duration::from_millis(2500), "took {took:?}");
    assert_eq!(a["destinationConfiguration"]["Name"], "slow", "FD-4: the destination is still returned");
}

#[tokio::test]
async fn to_1_a_one_second_connect_timeout_against_a_three_second_connect_fails_in_about_a_second() {
    let stack = with(
        vec![cc(
            "slow-connect",
            &format!("https://{AUTH}/oauth/token"),
            &[("tokenServiceURL.ConnectionTimeoutInSeconds", "1")],
        )],
        &[(AUTH, TokenServerBehaviour::default().connect_delay(Duration::from_secs(3)))],
    )
    .await;
    let t = Instant::now();
    let (_, a) = find_destination(&stack, "mytenant", "slow-connect", None).await;
    let took = t.elapsed();
    let err = auth_token(&a)["error"].as_str().unwrap();
    assert!(err.contains("connect timeout of 1 s"), "{err}");
    assert!(took >= Duration::from_millis(900) && took < Duration::from_millis(2500), "took {took:?}");
}

#[tokio::test]
async fn to_4_an_out_of_range_read_timeout_falls_back_to_ten_seconds_not_six_hundred() {
    let stack = with(
        vec![
            cc(
                "over",
                &format!("https://{AUTH}/oauth/token"),
                &[("tokenServiceURL.SocketReadTimeoutInSeconds", "601")],
            ),
            cc(
                "within",
                &format!("https://{AUTH}/oauth/token"),
                &[("tokenServiceURL.SocketReadTimeoutInSeconds", "600")],
            ),
        ],
        &[(AUTH, TokenServerBehaviour::default().delay(Duration::from_millis(10_800)))],
    )
    .await;
    let (over, within) = tokio::join!(
        async {
            let t = Instant::now();
            let (_, a) = find_destination(&stack, "mytenant", "over", None).await;
            (t.elapsed(), a)
        },
        async {
            let (_, a) = find_destination(&stack, "mytenant", "within", None).await;
            a
        }
    );
    let err = auth_token(&over.1)["error"].as_str().unwrap();
    assert!(err.contains("read timeout of 10 s"), "{err}");
    assert!(over.0 >= Duration::from_millis(9_800) && over.0 < Duration::from_millis(10_700), "took {:?}", over.0);
    assert!(auth_token(&within)["error"].is_null(), "600 is in range: {within}");
}

#[tokio::test]
async fn to_2_an_out_of_range_connect_timeout_falls_back_to_ten_seconds() {
    let stack = with(
        // The read timeout is set well apart so the two cannot race.
        vec![cc(
            "over",
            &format!("https://{AUTH}/oauth/token"),
            &[
                ("tokenServiceURL.ConnectionTimeoutInSeconds", "61"),
                ("tokenServiceURL.SocketReadTimeoutInSeconds", "30"),
            ],
        )],
        &[(AUTH, TokenServerBehaviour::default().connect_delay(Duration::from_millis(10_800)))],
    )
    .await;
    let t = Instant::now();
    let (_, a) = find_destination(&stack, "mytenant", "over", None).await;
    let err = auth_token(&a)["error"].as_str().unwrap();
    assert!(err.contains("connect timeout of 10 s"), "{err}");
    assert!(
        t.elapsed() >= Duration::from_millis(9_800) && t.elapsed() < Duration::from_millis(10_700),
        "took {:?}",
        t.elapsed()
    );
}

#[tokio::test]
async fn ch_1_to_ch_4_tokens_are_cached_per_tenant_until_shortly_before_expiry() {
    let stack = with(
        vec![cc("cached", &format!("https://{AUTH}/oauth/token"), &[])],
        &[(AUTH, TokenServerBehaviour::default().expires_in(2))],
    )
    .await;
    let (_, a1) = find_destination(&stack, "mytenant", "cached", None).await;
    let (_, a2) = find_destination(&stack, "mytenant", "cached", None).await;
    assert_eq!(auth_token(&a1)["value"], auth_token(&a2)["value"], "CH-1");
    assert_eq!(token_requests(&stack).len(), 1);
    let (_, b) = find_destination(&stack, "othertenant", "cached", None).await;
    assert_ne!(auth_token(&a1)["value"], auth_token(&b)["value"], "CH-3");
    assert_eq!(token_requests(&stack).len(), 2);
    tokio::time::sleep(Duration::from_millis(1900)).await;
    let (_, a3) = find_destination(&stack, "mytenant", "cached", None).await;
    assert_ne!(auth_token(&a1)["value"], auth_token(&a3)["value"], "CH-2");
    assert_eq!(token_requests(&stack).len(), 3);
    // CH-4: a burst for a fresh key makes one request.
    stack.token_server(AUTH).unwrap().set_behaviour(TokenServerBehaviour::default().delay(Duration::from_millis(300)));
    stack.destinations().add(cc("burst", &format!("https://{AUTH}/oauth/token"), &[]));
    let before = token_requests(&stack).len();
    let answers = futures::future::join_all((0..10).map(|_| find_destination(&stack, "mytenant", "burst", None))).await;
    let values: std::collections::HashSet<String> =
        answers.iter().map(|(_, a)| auth_token(a)["value"].as_str().unwrap().to_string()).collect();
    assert_eq!(values.len(), 1);
    assert_eq!(token_requests(&stack).len() - before, 1, "CH-4");
}

#[tokio::test]
async fn at_1_jwt_bearer_and_user_token_exchange_carry_the_user_and_need_a_user_token() {
    let stack = stack().await;
    let user = stack.uaa().user_token("othertenant", "alice").sign();
    for name in ["jwt-bearer-example", "user-token-exchange-example"] {
        stack.journal().clear();
        let (s, a) = find_destination(&stack, "mytenant", name, Some(&user)).await;
        assert_eq!(s, 200);
        let t = auth_token(&a);
        assert!(t["error"].is_null(), "{name}: {a}");
        let claims = common::claims(t["value"].as_str().unwrap());
        assert_eq!(claims["user_name"], "alice");
        assert_eq!(claims["grant_type"], "urn:ietf:params:oauth:grant-type:jwt-bearer");
        // TU-5: the X-user-token's tenant decides the Common URL.
        let uaa_calls = stack
            .journal()
            .filter(|e| e.component == "uaa" && e.form_field("grant_type").is_some_and(|g| g.contains("jwt-bearer")));
        assert_eq!(uaa_calls[0].host, "othertenant.authentication.eu10.idp.test", "{name}");
        // 39d4265, row 2: the destination is the provider's (the
        // Authorization token's tenant); the user token decides the exchange.
        assert_eq!(a["owner"]["SubaccountId"], stack.uaa().tenant("mytenant").unwrap().zid);
        // AT-5
        let (_, a) = find_destination(&stack, "mytenant", name, None).await;
        let err = auth_token(&a)["error"].as_str().unwrap();
        assert!(err.contains("X-user-token"), "{err}");
    }
}

#[tokio::test]
async fn at_2_at_3_fd_3_password_client_credentials_basic_and_tokenless_types() {
    let stack = stack().await;
    let (_, a) = find_destination(&stack, "mytenant", "password-example", None).await;
    let c = common::claims(auth_token(&a)["value"].as_str().unwrap());
    assert_eq!((c["user_name"].as_str(), c["grant_type"].as_str()), (Some("alice"), Some("password")));
    assert_eq!(auth_token(&a)["http_header"]["key"], "Authorization");
    let (_, a) = find_destination(&stack, "mytenant", "client-credentials-example", None).await;
    let c = common::claims(auth_token(&a)["value"].as_str().unwrap());
    assert_eq!(c["grant_type"], "client_credentials");
    assert_eq!(c["ext_attr"]["zdn"], "mytenant");
    let (_, a) = find_destination(&stack, "mytenant", "basic-example", None).await;
    assert_eq!(auth_token(&a)["type"], "Basic");
    assert_eq!(auth_token(&a)["http_header"]["value"], "Basic dGVzdDpwYXNzMTIzNDU=");
    for name in ["principal-propagation-example", "no-auth-example"] {
        let (s, a) = find_destination(&stack, "mytenant", name, None).await;
        assert_eq!(s, 200);
        assert!(a.get("authTokens").is_none(), "AT-4 {name}: {a}");
    }
    let user = stack.uaa().user_token("mytenant", "alice").sign();
    let (_, a) = find_destination(&stack, "mytenant", "saml-bearer-example", Some(&user)).await;
    assert_eq!(auth_token(&a)["type"], "Bearer", "SB-2: {a}");
}

#[tokio::test]
async fn fd_4_every_failure_is_an_auth_tokens_error_a_person_can_act_on() {
    let url = format!("https://{AUTH}/oauth/token");
    let cases: Vec<(TokenServerBehaviour, &str)> = vec![
        (TokenServerBehaviour::default().error(500, "{\"error\":\"server_error\"}"), "HTTP 500"),
        (TokenServerBehaviour::default().malformed_json(), "not JSON"),
        (TokenServerBehaviour::default().close_connection(), "token request to"),
        (TokenServerBehaviour::default().client("someone-else", "x"), "HTTP 401"),
    ];
    for (b, expected) in cases {
        let stack = with(vec![cc("d", &url, &[])], &[(AUTH, b.clone())]).await;
        let (s, a) = find_destination(&stack, "mytenant", "d", None).await;
        assert_eq!(s, 200);
        let t = auth_token(&a);
        let err = t["error"].as_str().unwrap();
        assert!(err.contains(expected) && err.contains(AUTH), "{b:?}: {err}");
        assert_eq!((t["type"].as_str(), t["value"].as_str()), (Some(""), Some("")));
        assert_eq!(a["destinationConfiguration"]["Name"], "d");
    }
    let stack =
        with(vec![cc("nowhere", "https://no-such-host.test/oauth/token", &[]), cc("no-url", "", &[])], &[]).await;
    let (_, a) = find_destination(&stack, "mytenant", "nowhere", None).await;
    assert!(auth_token(&a)["error"].as_str().unwrap().contains("no-such-host.test"), "{a}");
    let (_, a) = find_destination(&stack, "mytenant", "no-url", None).await;
    assert!(auth_token(&a)["error"].as_str().unwrap().contains("tokenServiceURL"), "{a}");
}

#[tokio::test]
async fn fd_5_technical_user_propagation_over_internet_is_an_error() {
    let mut d = cc("tu-internet", &format!("https://{AUTH}/oauth/token"), &[]);
    d.properties.0.insert("Authentication".into(), "OAuth2TechnicalUserPropagation".into());
    let stack = with(vec![d], &[]).await;
    let (_, a) = find_destination(&stack, "mytenant", "tu-internet", None).await;
    assert!(auth_token(&a)["error"].as_str().unwrap().contains("OnPremise"));
    assert!(token_requests(&stack).is_empty());
}

#[tokio::test]
async fn ca_6_key_store_client_certificate_is_presented_over_mutual_tls() {
    let stack = stack().await;
    let (cert, key) = stack.pki().client_cert_pem("destination-mtls-client").unwrap();
    let content = base64::engine::general_purpose::STANDARD.encode(format!("{cert}{key}"));
    stack.destinations().add_certificate(idprop_mocks::retrieval::Certificate {
        name: "client.pem".into(),
        kind: "CERTIFICATE".into(),
        content,
    });
    let url = format!("https://{AUTH}/oauth/token");
    stack.destinations().add(cc(
        "mtls",
        &url,
        &[("tokenService.KeyStoreLocation", "client.pem"), ("tokenService.KeyStorePassword", "")],
    ));
    stack.destinations().add(cc("plain", &url, &[]));
    stack.destinations().add(cc("missing", &url, &[("tokenService.KeyStoreLocation", "nope.pem")]));
    let (_, a) = find_destination(&stack, "mytenant", "mtls", None).await;
    assert!(auth_token(&a)["error"].is_null(), "{a}");
    let cert = token_requests(&stack)[0].client_cert.clone().expect("client certificate presented");
    assert_eq!(cert.cn.as_deref(), Some("destination-mtls-client"));
    stack.journal().clear();
    find_destination(&stack, "mytenant", "plain", None).await;
    assert!(token_requests(&stack)[0].client_cert.is_none());
    let (_, a) = find_destination(&stack, "mytenant", "missing", None).await;
    assert!(auth_token(&a)["error"].as_str().unwrap().contains("nope.pem"));
}

#[tokio::test]
async fn ca_7_client_assertion_is_fetched_through_the_named_destination() {
    let url = format!("https://{AUTH}/oauth/token");
    let mut provider = cc("assertion-provider", "https://assertions.example.test/oauth/token", &[]);
    provider
        .properties
        .0
        .insert("clientAssertion.type".into(), "urn:ietf:params:oauth:client-assertion-type:jwt-bearer".into());
    let consumer = cc("assertion-consumer", &url, &[("clientAssertion.destinationName", "assertion-provider")]);
    let stack = with(vec![provider, consumer], &[("assertions.example.test", Default::default())]).await;
    let (_, a) = find_destination(&stack, "mytenant", "assertion-consumer", None).await;
    assert!(auth_token(&a)["error"].is_null(), "{a}");
    let assertion_call = &stack.journal().for_host("assertions.example.test")[0];
    assert_eq!(assertion_call.form_field("grant_type"), Some("client_credentials"));
    let e = &stack.journal().for_host(AUTH)[0];
    assert_eq!(e.form_field("client_assertion_type"), Some("urn:ietf:params:oauth:client-assertion-type:jwt-bearer"));
    assert!(e.form_field("client_assertion").unwrap().starts_with("ts.assertions.example.test."));
    assert_eq!(e.form_field("client_secret"), None);
}

#[tokio::test]
async fn the_service_demands_a_destination_binding_token_and_a_valid_user_token() {
    let stack = stack().await;
    let url = format!("{}/destination-configuration/v1/destinations/technical-user-example", stack.destination_url());
    let r = stack.http_client().get(&url).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.text().await.unwrap().contains("Bearer"));
    // A token of another client.
    let (_, b) = common::post_form(
        &stack,
        &format!("{}/oauth/token", stack.uaa_url("mytenant")),
        Some(common::APP),
        &[("grant_type", "client_credentials")],
    )
    .await;
    let r = stack.http_client().get(&url).bearer_auth(b["access_token"].as_str().unwrap()).send().await.unwrap();
    assert_eq!(r.status(), 403);
    // A forged X-user-token.
    let forged = stack.uaa().user_token("mytenant", "alice").forge(idprop_mocks::Forgery::AlgNone);
    let (s, body) = find_destination(&stack, "mytenant", "jwt-bearer-example", Some(&forged)).await;
    assert_eq!(s, 401);
    assert!(body.as_str().unwrap().contains("X-user-token rejected"), "{body}");
    // Unknown destination.
    let (s, body) = find_destination(&stack, "mytenant", "nope", None).await;
    assert_eq!(s, 404);
    assert_eq!(body["ErrorMessage"], "Configuration with the specified name was not found");
}

#[tokio::test]
async fn lists_and_skip_token_retrieval() {
    let stack = stack().await;
    let token = common::destination_token(&stack, "mytenant").await;
    let list: Vec<Value> = stack
        .http_client()
        .get(format!("{}/destination-configuration/v1/subaccountDestinations", stack.destination_url()))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let names: Vec<&str> = list.iter().map(|d| d["Name"].as_str().unwrap()).collect();
    assert!(names.contains(&"technical-user-example"));
    let types: std::collections::HashSet<&str> = list.iter().map(|d| d["Authentication"].as_str().unwrap()).collect();
    assert!(types.len() >= 8, "{types:?}");
    let a: Value = stack
        .http_client()
        .get(format!(
            "{}/destination-configuration/v1/destinations/technical-user-example?$skipTokenRetrieval=true",
            stack.destination_url()
        ))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(a.get("authTokens").is_none());
    assert!(token_requests(&stack).is_empty());
}

/// 39d4265's table, row 2: a subscriber's user token with a destination that
/// exists only in the provider tenant works; row 3: the subscriber's own
/// destination is looked up in the subscriber tenant.
#[tokio::test]
async fn provider_destinations_serve_subscriber_users_and_subscriber_destinations_their_own() {
    let stack = Stack::start().await.unwrap();
    let domain = stack.uaa().domain();
    let mut e = DestinationEntry::new(Destination(
        [
            ("Name", "provider-only"),
            ("Type", "HTTP"),
            ("URL", "https://api.example.test"),
            ("Authentication", "OAuth2JWTBearer"),
            ("clientId", idprop_mocks::uaa::APP_CLIENT.0),
            ("clientSecret", idprop_mocks::uaa::APP_CLIENT.1),
            ("tokenServiceURL", &format!("https://{domain}/oauth/token")),
            ("tokenServiceURLType", "Common"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect(),
    ));
    e.tenant = Some("mytenant".into());
    stack.destinations().add(e);
    let subscriber_user = stack.uaa().user_token("othertenant", "alice").sign();
    // Row 2: provider Authorization, subscriber X-user-token.
    let (s, a) = find_destination(&stack, "mytenant", "provider-only", Some(&subscriber_user)).await;
    assert_eq!(s, 200, "{a}");
    let claims = common::claims(auth_token(&a)["value"].as_str().unwrap());
    assert_eq!(claims["user_name"], "alice");
    assert_eq!(a["owner"]["SubaccountId"], stack.uaa().tenant("mytenant").unwrap().zid);
    // Row 3: the subscriber's Authorization looks in the subscriber tenant,
    // where this destination does not exist.
    let (s, a) = find_destination(&stack, "othertenant", "provider-only", Some(&subscriber_user)).await;
    assert_eq!(s, 404, "{a}");
}

/// The not-found answer is the service's exact message (clients match it).
#[tokio::test]
async fn a_missing_destination_is_the_exact_not_found_answer() {
    let stack = Stack::start().await.unwrap();
    let (s, a) = find_destination(&stack, "mytenant", "no-such-destination", None).await;
    assert_eq!(s, 404);
    assert_eq!(a, serde_json::json!({"ErrorMessage": "Configuration with the specified name was not found"}));
}

/// A cached token's `expires_in` counts down: the lifetime from the time the
/// response is generated (83a3f3b).
#[tokio::test]
async fn cached_tokens_report_their_remaining_lifetime() {
    let stack = with(
        vec![cc("short", "https://cache.example.test/oauth/token", &[])],
        &[("cache.example.test", TokenServerBehaviour { expires_in: 30, ..Default::default() })],
    )
    .await;
    let (_, a) = find_destination(&stack, "mytenant", "short", None).await;
    let first = auth_token(&a)["expires_in"].as_str().unwrap().parse::<u64>().unwrap();
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let (_, b) = find_destination(&stack, "mytenant", "short", None).await;
    assert_eq!(auth_token(&a)["value"], auth_token(&b)["value"], "served from the cache");
    let second = auth_token(&b)["expires_in"].as_str().unwrap().parse::<u64>().unwrap();
    assert_eq!(first, 30);
    assert!((27..=28).contains(&second), "{second}");
    assert_eq!(token_requests(&stack).len(), 1);
}

/// Bindings carry the secrets the configuration gives the clients.
#[tokio::test]
async fn bindings_follow_the_configured_client_secrets() {
    let mut config = idprop_mocks::StackConfig::default();
    for c in &mut config.uaa.clients {
        c.client_secret = format!("{}-rotated", c.client_secret);
    }
    let stack = Stack::start_with(config).await.unwrap();
    let vcap = stack.vcap_services();
    for label in ["xsuaa", "destination", "connectivity"] {
        let id = vcap[label][0]["credentials"]["clientid"].as_str().unwrap();
        let secret = vcap[label][0]["credentials"]["clientsecret"].as_str().unwrap();
        assert!(secret.ends_with("-rotated"), "{label}: {secret}");
        let (s, b) = common::post_form(
            &stack,
            &format!("{}/oauth/token", stack.uaa_url("mytenant")),
            Some((id, secret)),
            &[("grant_type", "client_credentials")],
        )
        .await;
        assert_eq!(s, 200, "{label}: {b}");
    }
}

/// GET a v2 "Consume a destination" path as `tenant`.
async fn consume(stack: &Stack, tenant: &str, path: &str) -> (u16, Value) {
    let token = common::destination_token(stack, tenant).await;
    let url = format!("{}/destination-configuration/v2/destinations/{path}", stack.destination_url());
    let resp = stack.http_client().get(url).bearer_auth(token).send().await.unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

/// 78ba73a: the v2 consume API, by level, without fallback between levels,
/// the owner only on request, provider levels for subscribers.
#[tokio::test]
async fn the_v2_consume_api_serves_destinations_by_level() {
    let stack = Stack::start().await.unwrap();
    let (s, a) = consume(&stack, "mytenant", "client-credentials-example@subaccount").await;
    assert_eq!(s, 200, "{a}");
    assert_eq!(a["destinationConfiguration"]["Name"], "client-credentials-example");
    assert!(auth_token(&a)["value"].as_str().is_some_and(|v| !v.is_empty()), "{a}");
    assert!(a.get("owner").is_none(), "no owner unless asked: {a}");
    let (s, a) = consume(&stack, "mytenant", "client-credentials-example@subaccount?includeMetadata=owner").await;
    assert_eq!(s, 200);
    let owner = &a["destinationConfiguration"]["$metadata"]["owner"]["destinations"][0];
    assert_eq!(owner["Name"], "client-credentials-example");
    assert_eq!(owner["SubaccountId"], stack.uaa().tenant("mytenant").unwrap().zid);
    // No fallback between levels.
    let (s, a) = consume(&stack, "mytenant", "client-credentials-example@instance").await;
    assert_eq!((s, &a["ErrorMessage"]), (404, &Value::from("Configuration with the specified name was not found")));
    // Without a level (as SAP Cloud SDK for Python asks): the Find order.
    let (s, _) = consume(&stack, "mytenant", "client-credentials-example").await;
    assert_eq!(s, 200);
    let (s, _) = consume(&stack, "mytenant", "client-credentials-example@nowhere").await;
    assert_eq!(s, 400);
    // A destination only the provider has, asked for by a subscriber.
    let mut e = DestinationEntry::new(Destination(
        [
            ("Name", "provider-basic"),
            ("Type", "HTTP"),
            ("URL", "https://api.example.test"),
            ("Authentication", "BasicAuthentication"),
            ("User", "u"),
            ("Password", "p"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect(),
    ));
    e.tenant = Some("mytenant".into());
    stack.destinations().add(e);
    let (s, _) = consume(&stack, "othertenant", "provider-basic@subaccount").await;
    assert_eq!(s, 404, "the subscriber's own subaccount does not have it");
    let (s, a) = consume(&stack, "othertenant", "provider-basic@provider_subaccount?includeMetadata=owner").await;
    assert_eq!(s, 200, "{a}");
    assert_eq!(auth_token(&a)["http_header"]["value"], "Basic dTpw");
    assert_eq!(
        a["destinationConfiguration"]["$metadata"]["owner"]["destinations"][0]["SubaccountId"],
        stack.uaa().tenant("mytenant").unwrap().zid
    );
}

/// `TU-6` with `OnPremise`: "If `OnPremise` is used, the OAuth server must be
/// accessed through the Cloud Connector" (4e1d742 and four more pages).
#[tokio::test]
async fn tu_6_an_on_premise_token_service_is_reached_through_the_cloud_connector() {
    let stack = stack().await;
    let (status, answer) = find_destination(&stack, "mytenant", "onpremise-token-service-example", None).await;
    assert_eq!(status, 200, "{answer}");
    assert!(auth_token(&answer)["error"].is_null(), "{answer}");
    assert_eq!(auth_token(&answer)["type"], "Bearer");
    // Application → proxy (plain HTTP, the virtual host), connector → OAuth
    // server (HTTPS, the internal host, the system certificate).
    let proxied = stack.journal().of("connectivity-proxy");
    assert_eq!(proxied.len(), 1);
    assert_eq!(proxied[0].host, "oauth.onprem.test");
    assert!(proxied[0].header("proxy-authorization").is_some_and(|v| v.starts_with("Bearer ey")));
    let at_server = token_requests(&stack);
    assert_eq!(at_server.len(), 1);
    let t = &at_server[0];
    assert_eq!(t.host, "oauth.internal.test");
    assert!(t.tls);
    assert_eq!(t.form_field("grant_type"), Some("client_credentials"));
    assert_eq!(t.form_field("client_id"), Some("onprem-client"));
    let system = stack.connectivity().connector("").unwrap().system_certificate().unwrap().subject.clone();
    assert_eq!(t.client_cert.as_ref().unwrap().subject, system);
    assert!(t.header("proxy-authorization").is_none() && t.header("sap-connectivity-scc-location_id").is_none());
}

#[tokio::test]
async fn tu_6_on_premise_token_services_honour_the_location_id_and_refuse_https_urls() {
    use idprop_mocks::connector::MappingConfig;
    let plant = idprop_mocks::ConnectorConfig {
        location_id: "plant2".into(),
        mappings: vec![MappingConfig {
            virtual_url: "http://oauth.plant2.test:80".into(),
            internal: "https://oauth.internal.test".into(),
            principal: idprop_mocks::connector::AuthenticationMode::X509Restricted,
            paths: vec!["/".into()],
        }],
        ..Default::default()
    };
    let stack = Stack::builder().connector(plant).start().await.unwrap();
    let onprem = |name: &str, url: &str, loc: &str| {
        cc(name, url, &[("tokenServiceURL.ProxyType", "OnPremise"), ("CloudConnectorLocationId", loc)])
    };
    stack.destinations().add(onprem("plant2", "http://oauth.plant2.test/oauth/token", "plant2"));
    stack.destinations().add(onprem("wrong-location", "http://oauth.plant2.test/oauth/token", ""));
    stack.destinations().add(onprem("tls", "https://oauth.plant2.test/oauth/token", "plant2"));
    let (s, a) = find_destination(&stack, "mytenant", "plant2", None).await;
    assert_eq!(s, 200);
    assert!(auth_token(&a)["error"].is_null(), "{a}");
    let proxied = stack.journal().of("connectivity-proxy");
    assert_eq!(proxied.last().unwrap().header("sap-connectivity-scc-location_id"), Some("plant2"));
    // The default connector has no mapping for that host: the connector's
    // refusal becomes the token error, nothing reaches the OAuth server.
    let before = token_requests(&stack).len();
    let (_, a) = find_destination(&stack, "mytenant", "wrong-location", None).await;
    let e = auth_token(&a)["error"].as_str().unwrap_or_default().to_string();
    assert!(e.contains("403") && e.contains("no mapping"), "{a}");
    let (_, a) = find_destination(&stack, "mytenant", "tls", None).await;
    let e = auth_token(&a)["error"].as_str().unwrap_or_default().to_string();
    assert!(e.contains("must be http://"), "{a}");
    assert_eq!(token_requests(&stack).len(), before);
}

/// `CA-6` with PKCS#12 (`.p12`) and Java (`.jks`) key stores and
/// `tokenService.KeyStorePassword`: written in Rust and, when the `openssl`
/// command is there, a `.p12` written by OpenSSL (interoperability); a wrong
/// or missing password is an `authTokens` error naming the store, and
/// nothing is sent.
#[tokio::test]
async fn ca_6_pkcs12_and_jks_key_stores_present_their_certificate() {
    let stack = stack().await;
    let (cert, key) = stack.pki().client_cert_pem("p12-client").unwrap();
    let cert_der = pem::parse(&cert).unwrap().contents().to_vec();
    let key_der = pem::parse(&key).unwrap().contents().to_vec();
    let mut ks = p12_keystore::KeyStore::new();
    let chain = p12_keystore::PrivateKeyChain::new(
        key_der,
        [1u8; 20],
        vec![p12_keystore::Certificate::from_der(&cert_der).unwrap()],
    );
    ks.add_entry("client", p12_keystore::KeyStoreEntry::PrivateKeyChain(chain));
    let mut stores = vec![("rust.p12", ks.writer("s3cret").write().unwrap())];
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("c.pem"), format!("{cert}{key}")).unwrap();
    let openssl = std::process::Command::new("openssl")
        .args(["pkcs12", "-export", "-passout", "pass:s3cret", "-in"])
        .arg(dir.path().join("c.pem"))
        .arg("-out")
        .arg(dir.path().join("o.p12"))
        .status();
    match openssl {
        Ok(s) if s.success() => stores.push(("openssl.p12", std::fs::read(dir.path().join("o.p12")).unwrap())),
        _ => eprintln!("no openssl command: the OpenSSL-written key store is not tried"),
    }
    // A Java KeyStore with the same key and certificate.
    let mut jks_store = jks::KeyStore::new();
    jks_store
        .set_private_key_entry(
            "client",
            jks::PrivateKeyEntry {
                creation_time: std::time::SystemTime::now(),
                private_key: pem::parse(&key).unwrap().contents().to_vec(),
                certificate_chain: vec![jks::Certificate { cert_type: "X509".into(), content: cert_der.clone() }],
            },
            b"s3cret",
        )
        .unwrap();
    let mut jks_bytes = Vec::new();
    jks_store.store(&mut jks_bytes, b"s3cret").unwrap();
    stores.push(("client.jks", jks_bytes));
    let url = format!("https://{AUTH}/oauth/token");
    for (name, bytes) in &stores {
        stack.destinations().add_certificate(idprop_mocks::retrieval::Certificate {
            name: name.to_string(),
            kind: "CERTIFICATE".into(),
            content: base64::engine::general_purpose::STANDARD.encode(bytes),
        });
        let ok = format!("ok-{name}");
        let bad = format!("bad-{name}");
        let none = format!("none-{name}");
        stack.destinations().add(cc(
            &ok,
            &url,
            &[("tokenService.KeyStoreLocation", name), ("tokenService.KeyStorePassword", "s3cret")],
        ));
        stack.destinations().add(cc(
            &bad,
            &url,
            &[("tokenService.KeyStoreLocation", name), ("tokenService.KeyStorePassword", "wrong")],
        ));
        stack.destinations().add(cc(&none, &url, &[("tokenService.KeyStoreLocation", name)]));
        stack.journal().clear();
        let (_, a) = find_destination(&stack, "mytenant", &ok, None).await;
        assert!(auth_token(&a)["error"].is_null(), "{name}: {a}");
        let seen = token_requests(&stack);
        assert_eq!(seen[0].client_cert.as_ref().and_then(|c| c.cn.as_deref()), Some("p12-client"), "{name}");
        assert!(seen[0].form_field("client_secret").is_none(), "{name}: the certificate replaces the secret");
        stack.journal().clear();
        for (d, why) in [(&bad, "password"), (&none, "KeyStorePassword")] {
            let (_, a) = find_destination(&stack, "mytenant", d, None).await;
            let e = auth_token(&a)["error"].as_str().unwrap_or_default().to_string();
            assert!(e.contains(name) && e.contains(why), "{d}: {a}");
        }
        assert!(token_requests(&stack).is_empty(), "{name}: a refused key store sent a request");
    }
}

/// `SB-2` (c69ea6a, 3cb7b81, 82dbeca): for `saml-bearer-example` the
/// Destination service generates an assertion naming alice, signs it with
/// the subaccount's Destination Trust (the certificate `/saml2Metadata/
/// certificate` serves) and exchanges it by saml2-bearer at the tenant's
/// UAA; the token it returns is alice's.
#[tokio::test]
async fn saml_bearer_generates_signs_and_exchanges_an_assertion_for_the_user() {
    use idprop_mocks::saml::{decode, verify, TrustedSamlIdp};
    let stack = stack().await;
    let alice = stack.uaa().user_token("mytenant", "alice").sign();
    let (s, body) = find_destination(&stack, "mytenant", "saml-bearer-example", Some(&alice)).await;
    assert_eq!(s, 200, "{body}");
    let token = body["authTokens"][0]["value"].as_str().unwrap_or_else(|| panic!("a token: {body}"));
    let c = claims(token);
    assert_eq!((c["user_name"].as_str(), c["origin"].as_str()), (Some("alice"), Some("sap.default")));
    assert_eq!(c["grant_type"], idprop_mocks::uaa::SAML_BEARER_GRANT);

    // What the token service received: a base64url assertion that verifies
    // with the exported Destination Trust certificate.
    let sent = stack.journal().of("uaa");
    let grant = sent.iter().find(|e| e.form_field("grant_type") == Some(idprop_mocks::uaa::SAML_BEARER_GRANT)).unwrap();
    assert_eq!(grant.form_field("client_id"), Some(APP.0));
    let xml = decode(grant.form_field("assertion").unwrap()).unwrap();
    let dest_token = destination_token(&stack, "mytenant").await;
    let cert = stack
        .http_client()
        .get(format!("{}/destination-configuration/v1/saml2Metadata/certificate", stack.destination_url()))
        .bearer_auth(&dest_token)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(cert.starts_with("-----BEGIN CERTIFICATE-----"), "{cert}");
    let zid = stack.uaa().tenant("mytenant").unwrap().zid;
    let trusted = TrustedSamlIdp {
        entity_id: idprop_mocks::uaa::destination_trust_entity_id(&zid),
        certificate: cert,
        origin: "sap.default".into(),
        tenants: vec![],
    };
    let (facts, _) = verify(&xml, &[trusted]).expect("signed by the Destination Trust");
    assert_eq!(facts.name_id.as_deref(), Some("alice"));
    assert_eq!(facts.audiences, vec![format!("mytenant.{}", stack.uaa().domain())]);
    let token_url = format!("https://mytenant.{}/oauth/token", stack.uaa().domain());
    assert_eq!(facts.bearer_confirmations[0].0.as_deref(), Some(token_url.as_str()));
    assert_eq!(facts.attribute("email"), Some("alice@example.test"));

    // Another subaccount's trust does not vouch for mytenant's assertions:
    // othertenant has no such destination, and its UAA refuses the assertion.
    let (s, _) = post_form(
        &stack,
        &format!("{}/oauth/token", stack.uaa_url("othertenant")),
        Some(APP),
        &[("grant_type", idprop_mocks::uaa::SAML_BEARER_GRANT), ("assertion", grant.form_field("assertion").unwrap())],
    )
    .await;
    assert_eq!(s, 400);
}

/// `SB-2`: no user token, no assertion (the user is the assertion's
/// subject); `nameIdFormat` emailAddress takes the user's `email`.
#[tokio::test]
async fn saml_bearer_needs_the_user_and_follows_name_id_format() {
    let stack = stack().await;
    let (s, body) = find_destination(&stack, "mytenant", "saml-bearer-example", None).await;
    assert_eq!(s, 200);
    assert_eq!(body["authTokens"][0]["error"].as_str().map(|e| e.contains("user")), Some(true), "{body}");
    let mut d =
        stack.destinations().destinations().into_iter().find(|e| e.properties.name() == "saml-bearer-example").unwrap();
    d.properties.0.insert("Name".into(), "saml-by-mail".into());
    d.properties.0.insert("nameIdFormat".into(), "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress".into());
    stack.destinations().add(d);
    let alice = stack.uaa().user_token("mytenant", "alice").sign();
    let (_, body) = find_destination(&stack, "mytenant", "saml-by-mail", Some(&alice)).await;
    let c = claims(body["authTokens"][0]["value"].as_str().unwrap_or_else(|| panic!("{body}")));
    // The UAA knows no sap.default user named by the email: a new one,
    // with nothing invented.
    assert_eq!(c["user_name"], "alice@example.test");
}

/// `SB-1`/`SB-2` against a third-party OAuth server (c69ea6a's SuccessFactors
/// style: `audience`, `clientKey`, `companyId`): the scriptable token server
/// trusts the subaccount's Destination Trust certificate and validates the
/// generated assertion; an assertion for another audience is refused, and
/// the refusal reaches `authTokens` as an error.
#[tokio::test]
async fn a_token_server_validates_the_generated_assertion() {
    let stack = stack().await;
    let tenant = stack.uaa().tenant("mytenant").unwrap();
    let trust = stack.uaa().destination_trust(&tenant).unwrap().trusted("sap.default");
    let ts = stack.token_server(AUTH).unwrap();
    ts.set_behaviour(TokenServerBehaviour::default().validate_saml(vec![trust], &["cubetree.test"]));
    let dest = |name: &str, audience: &str| {
        let mut e = DestinationEntry::new(Destination(
            [
                ("Name", name),
                ("Type", "HTTP"),
                ("URL", "https://api.example.test"),
                ("Authentication", "OAuth2SAMLBearerAssertion"),
                ("audience", audience),
                ("clientKey", "jam-client"),
                ("companyId", "acme"),
                ("nameQualifier", "www.successfactors.test"),
                ("authnContextClassRef", "urn:oasis:names:tc:SAML:2.0:ac:classes:PreviousSession"),
                ("tokenServiceURL", &format!("https://{AUTH}/oauth/token")),
            ]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ));
        e.tenant = Some("mytenant".into());
        e
    };
    stack.destinations().add(dest("jam", "cubetree.test"));
    stack.destinations().add(dest("jam-wrong-audience", "someone-else.test"));
    let alice = stack.uaa().user_token("mytenant", "alice").sign();
    let (_, a) = find_destination(&stack, "mytenant", "jam", Some(&alice)).await;
    assert_eq!(auth_token(&a)["type"], "Bearer", "{a}");
    let sent = stack.journal().of("token-server");
    let last = sent.last().unwrap();
    assert_eq!((last.form_field("client_id"), last.form_field("company_id")), (Some("jam-client"), Some("acme")));
    let (_, a) = find_destination(&stack, "mytenant", "jam-wrong-audience", Some(&alice)).await;
    let err = auth_token(&a)["error"].as_str().unwrap_or_else(|| panic!("{a}")).to_string();
    assert!(err.contains("invalid_grant") && err.contains("Audience"), "{err}");
    assert_eq!(ts.issued(), 1, "no token for the refused assertion");
}

/// GET `path` of the Destination service as `tenant` with extra headers.
async fn get_with(stack: &Stack, tenant: &str, path: &str, headers: &[(&str, &str)]) -> (u16, Value) {
    let token = destination_token(stack, tenant).await;
    let mut req = stack.http_client().get(format!("{}{path}", stack.destination_url())).bearer_auth(token);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// `FR-1`..`FR-3` (f56600a, 78ba73a): fragments extend the destination in
/// header order, the last one winning a conflict, the applied ones listed in
/// `FragmentName`; the merged properties are what token retrieval reads; a
/// missing fragment fails the lookup unless it is the only one and optional.
#[tokio::test]
async fn fragments_extend_the_destination_and_its_token_retrieval() {
    let stack = stack().await;
    let frag = |pairs: &[(&str, &str)]| {
        DestinationEntry::new(Destination(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()))
    };
    stack.destinations().add_fragment(frag(&[
        ("FragmentName", "f1"),
        ("x-prop", "one"),
        ("URL", "https://api.example.test/v1"),
    ]));
    stack.destinations().add_fragment(frag(&[("FragmentName", "f2"), ("x-prop", "two")]));
    stack.destinations().add_fragment(frag(&[("FragmentName", "bad-secret"), ("clientSecret", "wrong")]));
    let v1 = "/destination-configuration/v1/destinations/client-credentials-example";
    let v2 = "/destination-configuration/v2/destinations/client-credentials-example";

    let (s, a) = get_with(&stack, "mytenant", v1, &[("X-fragment-name", "example-fragment")]).await;
    assert_eq!(s, 200, "{a}");
    assert_eq!(a["destinationConfiguration"]["URL.queries.sap-client"], "100");
    assert_eq!(a["destinationConfiguration"]["FragmentName"], "example-fragment");
    assert_eq!(a["authTokens"][0]["type"], "Bearer");

    let (_, a) = get_with(&stack, "mytenant", v2, &[("X-Fragment-Name", "f1, f2")]).await;
    let c = &a["destinationConfiguration"];
    assert_eq!((c["x-prop"].as_str(), c["URL"].as_str()), (Some("two"), Some("https://api.example.test/v1")));
    assert_eq!(c["FragmentName"], "f1,f2");

    // The merged properties fetch the token: a fragment's wrong secret fails it.
    let (s, a) = get_with(&stack, "mytenant", v1, &[("X-fragment-name", "bad-secret")]).await;
    assert_eq!(s, 200);
    assert!(a["authTokens"][0]["error"].as_str().is_some_and(|e| e.contains("401")), "{a}");

    // Missing: 404 naming it; optional alone: the destination as stored.
    let (s, a) = get_with(&stack, "mytenant", v1, &[("X-fragment-name", "nope")]).await;
    assert_eq!(s, 404, "{a}");
    assert!(a["ErrorMessage"].as_str().unwrap().contains("nope"));
    let (s, a) =
        get_with(&stack, "mytenant", v1, &[("X-fragment-name", "nope"), ("X-fragment-optional", "true")]).await;
    assert_eq!(s, 200);
    assert!(a["destinationConfiguration"].get("FragmentName").is_none(), "{a}");
    // With several fragments X-fragment-optional is disabled.
    let (s, _) =
        get_with(&stack, "mytenant", v1, &[("X-fragment-name", "f1,nope"), ("X-fragment-optional", "true")]).await;
    assert_eq!(s, 404);
    // No fallback between levels: f1 lives at the subaccount, not the instance.
    let (s, _) = get_with(&stack, "mytenant", v2, &[("X-fragment-name", "f1@instance")]).await;
    assert_eq!(s, 404);
    // includeMetadata=owner lists the fragments applied.
    let (_, a) =
        get_with(&stack, "mytenant", &format!("{v2}?includeMetadata=owner"), &[("X-fragment-name", "f2")]).await;
    assert_eq!(a["destinationConfiguration"]["$metadata"]["owner"]["fragments"][0]["FragmentName"], "f2", "{a}");
    // The stored destination is unchanged.
    let (_, a) = get_with(&stack, "mytenant", v1, &[]).await;
    assert!(a["destinationConfiguration"].get("x-prop").is_none());
}

/// `RT-1`, `TE-1`, `CA-10` at the Destination service: the caller's tokens
/// arrive as request headers. A refresh token the UAA issued is exchanged
/// for a new access token of the same user; a token exchange goes to the
/// token server with RFC 8693's parameters and the answer carries
/// `issued_token_type`; client-assertion headers replace the secret and
/// conflict with `X-client-assertion-destination-name`.
#[tokio::test]
async fn request_header_tokens_refresh_exchange_and_client_assertions() {
    let stack = stack().await;
    let v1 = |n: &str| format!("/destination-configuration/v1/destinations/{n}");
    // A refresh token from a password grant of the app client.
    let (_, pw) = post_form(
        &stack,
        &format!("{}/oauth/token", stack.uaa_url("mytenant")),
        Some(APP),
        &[("grant_type", "password"), ("username", "alice"), ("password", "alice-password")],
    )
    .await;
    let rt = pw["refresh_token"].as_str().unwrap();
    let (_, a) = get_with(&stack, "mytenant", &v1("refresh-token-example"), &[("X-refresh-token", rt)]).await;
    let t = auth_token(&a);
    assert_eq!(t["type"], "Bearer", "{a}");
    assert_eq!(claims(t["value"].as_str().unwrap())["user_name"], "alice");
    let (_, a) = get_with(&stack, "mytenant", &v1("refresh-token-example"), &[]).await;
    assert!(auth_token(&a)["error"].as_str().unwrap().contains("X-refresh-token"), "{a}");

    let headers =
        [("X-Subject-Token", "subject-abc"), ("X-Subject-Token-Type", "urn:ietf:params:oauth:token-type:jwt")];
    let (_, a) = get_with(&stack, "othertenant", &v1("token-exchange-example"), &headers).await;
    assert_eq!(auth_token(&a)["issued_token_type"], "urn:ietf:params:oauth:token-type:access_token", "{a}");
    let sent = stack.journal().of("token-server");
    let last = sent.last().unwrap();
    assert_eq!(last.host, AUTH, "taken as is, no tenant subdomain");
    assert_eq!(last.form_field("grant_type"), Some("urn:ietf:params:oauth:grant-type:token-exchange"));
    assert_eq!(last.form_field("subject_token"), Some("subject-abc"));
    let (_, a) = get_with(&stack, "othertenant", &v1("token-exchange-example"), &headers[..1]).await;
    assert!(auth_token(&a)["error"].as_str().unwrap().contains("X-subject-token-type"), "{a}");

    let assertion = [
        ("X-client-assertion-type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"),
        ("X-client-assertion", "eyJ.a.b"),
    ];
    let mut d = stack
        .destinations()
        .destinations()
        .into_iter()
        .find(|e| e.properties.name() == "client-credentials-example")
        .unwrap();
    d.properties.0.insert("Name".into(), "cc-at-authserver".into());
    d.properties.0.insert("tokenServiceURL".into(), format!("https://{AUTH}/oauth/token"));
    d.properties.0.insert("tokenServiceURLType".into(), "Dedicated".into());
    stack.destinations().add(d);
    let (_, a) = get_with(&stack, "mytenant", &v1("cc-at-authserver"), &assertion).await;
    assert_eq!(auth_token(&a)["type"], "Bearer", "{a}");
    let sent = stack.journal().of("token-server");
    let grant = sent.last().unwrap();
    assert_eq!(grant.form_field("client_assertion"), Some("eyJ.a.b"), "{a}");
    assert_eq!(grant.form_field("client_secret"), None);
    let (_, a) = get_with(&stack, "mytenant", &v1("client-credentials-example"), &assertion[..1]).await;
    assert!(auth_token(&a)["error"].as_str().unwrap().contains("both mandatory"), "{a}");
    let mut conflict = assertion.to_vec();
    conflict.push(("X-client-assertion-destination-name", "other"));
    let (_, a) = get_with(&stack, "mytenant", &v1("client-credentials-example"), &conflict).await;
    assert!(auth_token(&a)["error"].as_str().unwrap().contains("not allowed"), "{a}");
}

/// `SAMLAssertionProvider: ClientProvided` (c69ea6a): the client's assertion
/// (`X-samlAssertion`, as SAP Cloud SDK for Python sends it) is passed to
/// the token service unchanged; here the UAA exchanges an external-IdP
/// assertion for erin.
#[tokio::test]
async fn a_client_provided_saml_assertion_is_passed_on() {
    use idprop_mocks::pki::SamlKey;
    let stack = stack().await;
    let mut d =
        stack.destinations().destinations().into_iter().find(|e| e.properties.name() == "saml-bearer-example").unwrap();
    d.properties.0.insert("Name".into(), "saml-client-provided".into());
    d.properties.0.insert("SAMLAssertionProvider".into(), "ClientProvided".into());
    stack.destinations().add(d);
    let tenant = stack.uaa().tenant("mytenant").unwrap();
    let recipient = format!("{}/oauth/token", stack.uaa_url("mytenant"));
    let assertion =
        idprop_mocks::saml::Assertion::bearer("erin", &stack.uaa().saml_entity_id(&tenant), &recipient, 300);
    let signer = stack.pki().saml_signer(idprop_mocks::uaa::EXTERNAL_IDP, SamlKey::ExternalIdp).unwrap();
    let xml = signer.sign(&assertion, false).unwrap();
    let encoded = idprop_mocks::saml::encode(&xml);
    let path = "/destination-configuration/v1/destinations/saml-client-provided";
    let (_, a) = get_with(&stack, "mytenant", path, &[("X-samlAssertion", &encoded)]).await;
    let t = auth_token(&a);
    assert_eq!(t["type"], "Bearer", "{a}");
    assert_eq!(claims(t["value"].as_str().unwrap())["user_name"], "erin");
    let (_, a) = get_with(&stack, "mytenant", path, &[]).await;
    assert!(auth_token(&a)["error"].as_str().unwrap().contains("X-samlAssertion"), "{a}");
}

/// `DC-1` (08a09f5, 3c82ad5, 13f633e, d716d41): the two predefined chains.
/// Sequential user propagation consumes the token-transformation
/// destination with the user token and hands the new user token to the
/// path's destination; the IAS SAML chain consumes an `OAuth2TokenExchange`
/// destination with the subject token and hands its result to a
/// `ClientProvided` SAML bearer destination as the assertion. A failing
/// first step is the path destination's token error; an unknown chain or a
/// missing variable is a 400; the v2 API takes no chains.
#[tokio::test]
async fn the_predefined_destination_chains_run_both_steps() {
    let stack = stack().await;
    let v1 = |n: &str| format!("/destination-configuration/v1/destinations/{n}");
    let alice = stack.uaa().user_token("mytenant", "alice").sign();
    let chain = [
        ("X-chain-name", "com.sap.sequentialUserPropagation"),
        ("X-chain-var-tokenTransformationDestinationName", "jwt-bearer-example"),
        ("X-chain-var-userToken", alice.as_str()),
    ];
    let (s, a) = get_with(&stack, "mytenant", &v1("app-jwt-bearer"), &chain).await;
    assert_eq!(s, 200, "{a}");
    let final_token = auth_token(&a)["value"].as_str().unwrap_or_else(|| panic!("{a}")).to_string();
    assert_eq!(claims(&final_token)["user_name"], "alice");
    let grants: Vec<_> = stack
        .journal()
        .of("uaa")
        .into_iter()
        .filter(|e| e.form_field("grant_type") == Some(idprop_mocks::uaa::JWT_BEARER_GRANT))
        .collect();
    assert_eq!(grants.len(), 2, "two exchanges: the transformation, then the path's destination");
    assert_eq!(grants[0].form_field("assertion"), Some(alice.as_str()));
    assert_ne!(grants[1].form_field("assertion"), Some(alice.as_str()), "step 2 consumes step 1's token");

    // IAS SAML chain, with a scriptable token server for both steps.
    let mut saml =
        stack.destinations().destinations().into_iter().find(|e| e.properties.name() == "saml-bearer-example").unwrap();
    saml.properties.0.insert("Name".into(), "saml-from-chain".into());
    saml.properties.0.insert("SAMLAssertionProvider".into(), "ClientProvided".into());
    saml.properties.0.insert("tokenServiceURL".into(), format!("https://{AUTH}/oauth/token"));
    stack.destinations().add(saml);
    let ias = [
        ("X-chain-name", "com.sap.iasGeneratedOAuth2SamlBearerAssertion"),
        ("X-chain-var-samlProviderDestinationName", "token-exchange-example"),
        ("X-chain-var-subjectToken", "subject-of-alice"),
        ("X-chain-var-subjectTokenType", "urn:ietf:params:oauth:token-type:access_token"),
    ];
    let (_, a) = get_with(&stack, "mytenant", &v1("saml-from-chain"), &ias).await;
    assert_eq!(auth_token(&a)["type"], "Bearer", "{a}");
    let sent = stack.journal().of("token-server");
    let [exchange, bearer] = &sent[sent.len() - 2..] else { panic!("{sent:?}") };
    assert_eq!(exchange.form_field("subject_token"), Some("subject-of-alice"));
    assert_eq!(bearer.form_field("grant_type"), Some("urn:ietf:params:oauth:grant-type:saml2-bearer"));
    assert!(
        bearer.form_field("assertion").is_some_and(|a| a.starts_with("ts.")),
        "the exchanged token is the assertion"
    );

    // Failures.
    let broken = [chain[0], ("X-chain-var-tokenTransformationDestinationName", "no-such"), chain[2]];
    let (s, a) = get_with(&stack, "mytenant", &v1("app-jwt-bearer"), &broken).await;
    assert_eq!(s, 200);
    assert!(auth_token(&a)["error"].as_str().unwrap().contains("first step"), "{a}");
    let (s, _) = get_with(&stack, "mytenant", &v1("app-jwt-bearer"), &chain[..2]).await;
    assert_eq!(s, 400, "X-chain-var-userToken missing");
    let (s, _) = get_with(&stack, "mytenant", &v1("app-jwt-bearer"), &[("X-chain-name", "com.example.mine")]).await;
    assert_eq!(s, 400);
    let (s, _) =
        get_with(&stack, "mytenant", "/destination-configuration/v2/destinations/app-jwt-bearer", &chain).await;
    assert_eq!(s, 400);
}

/// The seed's rules hold for `OAuth2SAMLBearerAssertion` too (SB-2 with
/// TU-*, PX-*, TO-*): a `Common` token service URL gets the caller's
/// subdomain, `tokenServiceURL.headers.*`/`.queries.*`/`tokenService.body.*`
/// reach the token service, and a slow token service hits the read timeout.
#[tokio::test]
async fn saml_bearer_follows_the_seed_rules_for_urls_prefixes_and_timeouts() {
    let stack = stack().await;
    let trust = stack.uaa().destination_trust(&stack.uaa().tenant("mytenant").unwrap()).unwrap().trusted("x");
    let ts = stack.token_server(AUTH).unwrap();
    ts.set_behaviour(TokenServerBehaviour::default().validate_saml(vec![trust], &["jam.test"]));
    let mut e = DestinationEntry::new(Destination(
        [
            ("Name", "saml-common"),
            ("Type", "HTTP"),
            ("URL", "https://api.example.test"),
            ("Authentication", "OAuth2SAMLBearerAssertion"),
            ("audience", "jam.test"),
            ("clientKey", "jam-client"),
            ("authnContextClassRef", "urn:oasis:names:tc:SAML:2.0:ac:classes:PreviousSession"),
            ("tokenServiceURL", &format!("https://{AUTH}/oauth/token")),
            ("tokenServiceURLType", "Common"),
            ("tokenServiceURL.headers.x-api-key", "k-1"),
            ("tokenServiceURL.queries.company", "acme"),
            ("tokenService.body.resource", "jam"),
            ("tokenServiceURL.SocketReadTimeoutInSeconds", "1"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect(),
    ));
    e.tenant = Some("mytenant".into());
    stack.destinations().add(e);
    let alice = stack.uaa().user_token("mytenant", "alice").sign();
    let (_, a) = find_destination(&stack, "mytenant", "saml-common", Some(&alice)).await;
    assert_eq!(auth_token(&a)["type"], "Bearer", "{a}");
    let sent = stack.journal().of("token-server");
    let last = sent.last().unwrap();
    assert_eq!(last.host, format!("mytenant.{AUTH}"), "TU-4: the subdomain inserted");
    assert!(last.headers.iter().any(|(k, v)| k == "x-api-key" && v == "k-1"));
    assert!(last.query.iter().any(|(k, v)| k == "company" && v == "acme"));
    assert_eq!(last.form_field("resource"), Some("jam"));
    // The assertion passed the token server's SB-1 checks: its Recipient
    // is the resolved endpoint, without the added query.
    ts.set_behaviour(TokenServerBehaviour::default().delay(Duration::from_millis(2500)));
    stack.destinations().retriever().reset();
    let t0 = Instant::now();
    let (_, a) = find_destination(&stack, "mytenant", "saml-common", Some(&alice)).await;
    assert!(auth_token(&a)["error"].as_str().is_some(), "{a}");
    assert!(t0.elapsed() < Duration::from_millis(2400), "TO: the 1 s read timeout, not the delay");
}
