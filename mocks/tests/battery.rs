//! The hostile-token battery against all three components that read tokens:
//! the Cloud Connector (`SAP-Connectivity-Authentication` and
//! `SAP-Connectivity-Technical-Authentication`), the Connectivity
//! proxy (`Proxy-Authorization`) and the Destination service
//! (`X-user-token`). Every forgery is refused with a reason, no certificate
//! is minted, nothing reaches the backend. `--nocapture` prints the table.

mod common;

use idprop_mocks::uaa::CONNECTIVITY_CLIENT;
use idprop_mocks::{Forgery, Stack};

async fn status_and_body(rb: reqwest::RequestBuilder) -> (u16, String) {
    let r = rb.send().await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap_or_default())
}

#[tokio::test]
async fn every_forgery_is_refused_by_every_component() {
    let stack = Stack::start().await.unwrap();
    let proxy_token = common::proxy_token(&stack, "mytenant").await;
    let dest_token = common::destination_token(&stack, "mytenant").await;
    let onprem = common::onprem_client(&stack);
    let user = stack.uaa().user_token("mytenant", "alice");
    let proxy_user = stack.uaa().client_token("mytenant", CONNECTIVITY_CLIENT.0);
    let technical = stack.uaa().client_token("mytenant", idprop_mocks::uaa::APP_CLIENT.0);
    let mut table = vec!["| input | component | expected | observed |".to_string(), "|---|---|---|---|".to_string()];
    let mut bad = Vec::new();
    // (name, for the user header and Proxy-Authorization, for the technical
    // header): a principal claim of the wrong type is the first claim of the
    // header's own priority list (user_name, client_id).
    let extra: Vec<(&str, String, String)> = vec![
        (
            "principal claim is a number",
            user.clone().claim("user_name", 42).sign(),
            technical.clone().claim("client_id", 42).sign(),
        ),
        (
            "principal claim is an array",
            user.clone().claim("user_name", serde_json::json!(["a"])).sign(),
            technical.clone().claim("client_id", serde_json::json!(["a"])).sign(),
        ),
        (
            "principal claim is an object",
            user.clone().claim("user_name", serde_json::json!({"a": 1})).sign(),
            technical.clone().claim("client_id", serde_json::json!({"a": 1})).sign(),
        ),
        (
            "principal claim is empty",
            user.clone().claim("user_name", "").sign(),
            technical.clone().claim("client_id", "").sign(),
        ),
        (
            "issuer not trusted",
            stack.uaa().user_token("stranger", "alice").sign(),
            stack.uaa().client_token("stranger", idprop_mocks::uaa::APP_CLIENT.0).sign(),
        ),
    ];
    let mut inputs: Vec<(String, String, String, String)> = Forgery::ALL
        .iter()
        .map(|f| (format!("{f:?}"), user.forge(*f), proxy_user.forge(*f), technical.forge(*f)))
        .collect();
    inputs.extend(extra.into_iter().map(|(n, u, t)| (n.to_string(), u.clone(), u, t)));
    inputs.push(("not a JWT at all".into(), "not-a-jwt".into(), "not-a-jwt".into(), "not-a-jwt-at-all".into()));
    for (name, user_forged, proxy_forged, technical_forged) in inputs {
        let before = stack.journal().of("backend").len();
        // 1 MiB tokens do not fit in a header: the proxy refuses the head (431).
        let (s, body) = status_and_body(
            onprem
                .get("http://erp.onprem.test:44300/echo/x")
                .header("Proxy-Authorization", format!("Bearer {proxy_token}"))
                .header("SAP-Connectivity-Authentication", format!("Bearer {user_forged}")),
        )
        .await;
        table.push(format!(
            "| {name} | Cloud Connector (SAP-Connectivity-Authentication) | 401/403/431 | {s} {} |",
            body.trim().chars().take(70).collect::<String>()
        ));
        if !matches!(s, 401 | 403 | 431) || (s != 431 && body.trim().is_empty()) {
            bad.push(format!("connector accepted {name}: {s} {body}"));
        }
        // Technical user propagation: the same trust, the same battery
        // (set-up-trust-a4ee70f), to both mappings.
        for url in ["http://erp.onprem.test:44300/echo/x", "http://protected-url.example.test/echo/x"] {
            let (s, body) = status_and_body(
                onprem
                    .get(url)
                    .header("Proxy-Authorization", format!("Bearer {proxy_token}"))
                    .header("SAP-Connectivity-Technical-Authentication", format!("Bearer {technical_forged}")),
            )
            .await;
            table.push(format!(
                "| {name} | Cloud Connector (SAP-Connectivity-Technical-Authentication, {url}) | 401/403/431 | {s} {} |",
                body.trim().chars().take(70).collect::<String>()
            ));
            if !matches!(s, 401 | 403 | 431) || (s != 431 && body.trim().is_empty()) {
                bad.push(format!("connector accepted technical {name} at {url}: {s} {body}"));
            }
        }
        let (s, body) = status_and_body(
            onprem
                .get("http://erp.onprem.test:44300/echo/x")
                .header("Proxy-Authorization", format!("Bearer {proxy_forged}")),
        )
        .await;
        table.push(format!(
            "| {name} | Connectivity proxy (Proxy-Authorization) | 407/431 | {s} {} |",
            body.trim().chars().take(70).collect::<String>()
        ));
        if !matches!(s, 407 | 431) {
            bad.push(format!("proxy accepted {name}: {s} {body}"));
        }
        assert_eq!(stack.journal().of("backend").len(), before, "{name} reached the backend");
        let (s, body) = status_and_body(
            stack
                .http_client()
                .get(format!(
                    "{}/destination-configuration/v1/destinations/jwt-bearer-example",
                    stack.destination_url()
                ))
                .bearer_auth(&dest_token)
                .header("X-user-token", &user_forged),
        )
        .await;
        table.push(format!(
            "| {name} | Destination service (X-user-token) | 401/431 | {s} {} |",
            body.trim().chars().take(70).collect::<String>()
        ));
        if !matches!(s, 401 | 431) {
            bad.push(format!("destination service accepted {name}: {s} {body}"));
        }
    }
    println!("{}", table.join("\n"));
    assert!(bad.is_empty(), "{bad:#?}");
    assert_eq!(stack.connectivity().connector("").unwrap().minted(), 0, "no certificate minted");
    assert!(stack.journal().of("gateway").iter().all(|e| e.host != "attacker.evil.test"), "a jku was followed");
}
