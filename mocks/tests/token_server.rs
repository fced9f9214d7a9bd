//! Every scripted behaviour of the token servers, over real TLS.

mod common;

use std::time::{Duration, Instant};

use common::{post_form, stack};
use idprop_mocks::uaa::ClientAuthMethod;
use idprop_mocks::TokenServerBehaviour;

const HOST: &str = "authserver.example.test";

async fn scripted(b: TokenServerBehaviour) -> (idprop_mocks::Stack, String) {
    let stack = stack().await;
    let ts = stack.add_token_server(HOST, b).await.unwrap();
    (stack, ts.url())
}

#[tokio::test]
async fn default_server_issues_tokens_and_records_what_arrived() {
    let (stack, url) = scripted(TokenServerBehaviour::default().expires_in(120)).await;
    let (status, body) = post_form(
        &stack,
        &format!("{url}?x=1"),
        Some(("cid", "sec")),
        &[("grant_type", "client_credentials"), ("scope", "a b")],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["expires_in"], 120);
    assert_eq!(body["scope"], "a b");
    assert!(body["access_token"].as_str().unwrap().starts_with("ts.authserver.example.test.1."));
    let seen = stack.journal().for_host(HOST);
    assert_eq!(seen.len(), 1);
    let e = &seen[0];
    assert_eq!((e.method.as_str(), e.path.as_str(), e.status, e.tls), ("POST", "/oauth/token", 200, true));
    assert_eq!(e.basic_credentials(), Some(("cid".into(), "sec".into())));
    assert_eq!(e.form_field("scope"), Some("a b"));
    assert_eq!(e.query_param("x"), Some("1"));
    assert_eq!(stack.token_server(HOST).unwrap().issued(), 1);
}

#[tokio::test]
async fn basic_only_server_refuses_body_credentials_and_body_only_refuses_basic() {
    let (stack, url) =
        scripted(TokenServerBehaviour::default().client_auth(ClientAuthMethod::Basic).client("id", "sec")).await;
    let cc = ("grant_type", "client_credentials");
    let (s, b) = post_form(&stack, &url, None, &[cc, ("client_id", "id"), ("client_secret", "sec")]).await;
    assert_eq!((s, b["error"].as_str()), (401, Some("invalid_client")));
    assert!(b["error_description"].as_str().unwrap().contains("Authorization header"));
    assert_eq!(post_form(&stack, &url, Some(("id", "sec")), &[cc]).await.0, 200);
    assert_eq!(post_form(&stack, &url, Some(("id", "bad")), &[cc]).await.0, 401);

    stack
        .token_server(HOST)
        .unwrap()
        .set_behaviour(TokenServerBehaviour::default().client_auth(ClientAuthMethod::Body));
    assert_eq!(post_form(&stack, &url, Some(("id", "sec")), &[cc]).await.0, 401);
    assert_eq!(post_form(&stack, &url, None, &[cc, ("client_id", "id"), ("client_secret", "sec")]).await.0, 200);
}

#[tokio::test]
async fn required_headers_query_and_form_fields_are_enforced() {
    let b = TokenServerBehaviour::default()
        .require_header("x-tenant", "t1")
        .require_query("resource", "r1")
        .require_form("audience", "a1");
    let (stack, url) = scripted(b).await;
    let client = stack.http_client();
    let send = |hdr: bool, q: bool, f: bool| {
        let mut form = vec![("grant_type", "client_credentials"), ("client_id", "c"), ("client_secret", "s")];
        if f {
            form.push(("audience", "a1"));
        }
        let mut r = client.post(if q { format!("{url}?resource=r1") } else { url.clone() }).form(&form);
        if hdr {
            r = r.header("X-Tenant", "t1");
        }
        async move { r.send().await.unwrap().status().as_u16() }
    };
    assert_eq!(send(true, true, true).await, 200);
    assert_eq!(send(false, true, true).await, 400);
    assert_eq!(send(true, false, true).await, 400);
    assert_eq!(send(true, true, false).await, 400);
}

#[tokio::test]
async fn scripted_error_status_and_body_are_returned() {
    let (stack, url) =
        scripted(TokenServerBehaviour::default().error(503, r#"{"error":"temporarily_unavailable"}"#)).await;
    let (s, b) = post_form(&stack, &url, Some(("c", "s")), &[("grant_type", "client_credentials")]).await;
    assert_eq!((s, b["error"].as_str()), (503, Some("temporarily_unavailable")));
}

#[tokio::test]
async fn malformed_json_is_served_with_200() {
    let (stack, url) = scripted(TokenServerBehaviour::default().malformed_json()).await;
    let resp = stack
        .http_client()
        .post(url)
        .basic_auth("c", Some("s"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(serde_json::from_str::<serde_json::Value>(&resp.text().await.unwrap()).is_err());
}

#[tokio::test]
async fn close_connection_hangs_up_without_an_answer_and_is_journalled_as_status_0() {
    let (stack, url) = scripted(TokenServerBehaviour::default().close_connection()).await;
    let err = stack.http_client().post(url).form(&[("grant_type", "client_credentials")]).send().await.unwrap_err();
    assert!(!err.is_status(), "{err}");
    let seen = stack.journal().for_host(HOST);
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].status, 0);
}

#[tokio::test]
async fn response_delay_is_observed_by_a_client_read_timeout() {
    let (stack, url) = scripted(TokenServerBehaviour::default().delay(Duration::from_millis(1500))).await;
    let client = stack.http_client_builder().read_timeout(Duration::from_millis(300)).build().unwrap();
    let t = Instant::now();
    let err = client
        .post(&url)
        .basic_auth("c", Some("s"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap_err();
    assert!(err.is_timeout(), "{err}");
    assert!(t.elapsed() < Duration::from_millis(1200), "gave up after {:?}", t.elapsed());
    // Without a timeout the answer comes, after the delay.
    let t = Instant::now();
    let (s, _) = post_form(&stack, &url, Some(("c", "s")), &[("grant_type", "client_credentials")]).await;
    assert_eq!(s, 200);
    assert!(t.elapsed() >= Duration::from_millis(1500));
}

#[tokio::test]
async fn connect_delay_holds_the_tunnel_open_request() {
    let (stack, url) = scripted(TokenServerBehaviour::default().connect_delay(Duration::from_millis(1500))).await;
    let client = stack.http_client_builder().connect_timeout(Duration::from_millis(300)).build().unwrap();
    let t = Instant::now();
    let err = client.post(&url).form(&[("grant_type", "client_credentials")]).send().await.unwrap_err();
    assert!(err.is_connect() || err.is_timeout(), "{err}");
    assert!(t.elapsed() < Duration::from_millis(1200));
    assert!(stack.journal().for_host(HOST).is_empty(), "nothing reached the server");
}

#[tokio::test]
async fn tenant_subdomains_of_a_token_server_reach_it() {
    let (stack, _) = scripted(TokenServerBehaviour::default()).await;
    let (s, _) = post_form(
        &stack,
        "https://mytenant.authserver.example.test/tenant/mytenant/oauth/token",
        Some(("c", "s")),
        &[("grant_type", "client_credentials")],
    )
    .await;
    assert_eq!(s, 200);
    let e = &stack.journal().of("token-server")[0];
    assert_eq!(
        (e.host.as_str(), e.path.as_str()),
        ("mytenant.authserver.example.test", "/tenant/mytenant/oauth/token")
    );
}

#[tokio::test]
async fn each_token_server_also_listens_on_its_own_loopback_port() {
    let (stack, _) = scripted(TokenServerBehaviour::default()).await;
    let base = stack.components()[&format!("token-server:{HOST}")].clone();
    assert!(base.starts_with("http://127.0.0.1:"));
    let resp = reqwest::Client::new()
        .post(format!("{base}/oauth/token"))
        .basic_auth("c", Some("s"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(!stack.journal().of("token-server")[0].tls);
}

#[tokio::test]
async fn drop_mid_answer_sends_half_a_body_then_hangs_up() {
    let (stack, url) = scripted(TokenServerBehaviour::default().drop_mid_answer()).await;
    let resp = stack
        .http_client()
        .post(url)
        .basic_auth("c", Some("s"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.text().await.is_err(), "the body must break off");
    // The server keeps serving others.
    stack.token_server(HOST).unwrap().set_behaviour(TokenServerBehaviour::default());
    let (s, _) = post_form(
        &stack,
        &format!("https://{HOST}/oauth/token"),
        Some(("c", "s")),
        &[("grant_type", "client_credentials")],
    )
    .await;
    assert_eq!(s, 200);
}
