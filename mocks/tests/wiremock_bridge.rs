//! A `wiremock::MockServer` behind a virtual `https://….test` host of the
//! gateway: HTTPS with the test CA, journalled like every mock, and usable
//! as the token service of a destination.

mod common;

use idprop_mocks::expect::request;
use idprop_mocks::rules::Destination;
use idprop_mocks::{DestinationEntry, Stack};
use wiremock::matchers::{body_string_contains, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

#[tokio::test]
async fn a_wiremock_server_serves_a_virtual_https_host() {
    let stack = Stack::start().await.unwrap();
    let wm = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api/orders"))
        .and(header("x-tenant", "acme"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({"orders": 3})))
        .expect(1)
        .mount(&wm)
        .await;
    stack.route_to("orders.example.test", &wm.uri(), "orders-api").unwrap();
    stack.expect(request().component("orders-api").host("orders.example.test").tls(true).path("/api/orders"));
    let answer: serde_json::Value = stack
        .http_client()
        .get("https://orders.example.test/api/orders")
        .header("x-tenant", "acme")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(answer["orders"], 3);
    stack.verify().unwrap();
    // Only loopback upstreams: nothing leaves the machine.
    assert!(stack.route_to("x.test", "http://203.0.113.1:80", "x").is_err());
    assert!(stack.route_to("x.test", "https://127.0.0.1:1", "x").is_err());
}

#[tokio::test]
async fn a_wiremock_token_service_answers_the_destination_service() {
    let stack = Stack::start().await.unwrap();
    let wm = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/oauth/token"))
        .and(body_string_contains("grant_type=client_credentials"))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            serde_json::json!({"access_token": "from-wiremock", "token_type": "bearer", "expires_in": 600}),
        ))
        .expect(1)
        .mount(&wm)
        .await;
    stack.route_to("custom-auth.example.test", &wm.uri(), "custom-token-service").unwrap();
    let props = [
        ("Name", "wiremocked"),
        ("Type", "HTTP"),
        ("URL", "https://api.example.test"),
        ("ProxyType", "Internet"),
        ("Authentication", "OAuth2ClientCredentials"),
        ("clientId", "c"),
        ("clientSecret", "s"),
        ("tokenServiceURL", "https://custom-auth.example.test/oauth/token"),
    ];
    stack
        .destinations()
        .add(DestinationEntry::new(Destination(props.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect())));
    let (status, answer) = common::find_destination(&stack, "mytenant", "wiremocked", None).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["authTokens"][0]["value"], "from-wiremock", "{answer}");
    let seen = stack.journal().of("custom-token-service");
    assert_eq!(seen.len(), 1);
    assert!(seen[0].tls);
    assert_eq!(seen[0].form_field("client_id"), Some("c"));
}
