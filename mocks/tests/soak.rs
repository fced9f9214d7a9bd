//! A bounded soak: mixed flows at high concurrency on loopback — token
//! requests, Find Destination, principal propagation for many users — with
//! zero errors and zero identity mix-ups. IDPROP_SOAK_REQUESTS scales it.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use common::APP;
use futures::StreamExt;
use idprop_mocks::Stack;
use serde_json::Value;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn mixed_flows_at_high_concurrency_without_errors_or_mix_ups() {
    let total: usize = std::env::var("IDPROP_SOAK_REQUESTS").ok().and_then(|v| v.parse().ok()).unwrap_or(1500);
    let concurrency = 64;
    let stack = Stack::start().await.unwrap();
    let client = stack.http_client();
    let onprem = common::onprem_client(&stack);
    let proxy_token = common::proxy_token(&stack, "mytenant").await;
    let dest_token = common::destination_token(&stack, "mytenant").await;
    let users: Vec<(String, String)> = (0..50)
        .map(|i| {
            let u = format!("soak-user-{i:02}");
            let t = stack.uaa().user_token("mytenant", &u).sign();
            (u, t)
        })
        .collect();
    let (errors, mixups) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let started = Instant::now();
    futures::stream::iter(0..total)
        .for_each_concurrent(concurrency, |n| {
            let (client, onprem, stack) = (client.clone(), onprem.clone(), stack.clone());
            let (proxy_token, dest_token, users) = (proxy_token.clone(), dest_token.clone(), users.clone());
            let (errors, mixups) = (errors.clone(), mixups.clone());
            async move {
                let ok = match n % 3 {
                    0 => {
                        let (user, token) = &users[n % users.len()];
                        let r = onprem
                            .get(format!("http://erp.onprem.test:44300/echo/{n}"))
                            .header("Proxy-Authorization", format!("Bearer {proxy_token}"))
                            .header("SAP-Connectivity-Authentication", format!("Bearer {token}"))
                            .send()
                            .await;
                        match r {
                            Ok(r) if r.status() == 200 => {
                                let echo: Value = r.json().await.unwrap_or(Value::Null);
                                if echo["client_cert"]["cn"] != user.as_str() || echo["path"] != format!("/echo/{n}") {
                                    mixups.fetch_add(1, Ordering::Relaxed);
                                }
                                true
                            }
                            _ => false,
                        }
                    }
                    1 => client
                        .post(format!(
                            "{}/oauth/token",
                            stack.uaa_url(if n % 2 == 0 { "mytenant" } else { "othertenant" })
                        ))
                        .basic_auth(APP.0, Some(APP.1))
                        .form(&[("grant_type", "client_credentials")])
                        .send()
                        .await
                        .is_ok_and(|r| r.status() == 200),
                    _ => match client
                        .get(format!(
                            "{}/destination-configuration/v1/destinations/technical-user-example",
                            stack.destination_url()
                        ))
                        .bearer_auth(&dest_token)
                        .send()
                        .await
                    {
                        Ok(r) if r.status() == 200 => {
                            let a: Value = r.json().await.unwrap_or(Value::Null);
                            a["authTokens"][0]["error"].is_null()
                        }
                        _ => false,
                    },
                };
                if !ok {
                    errors.fetch_add(1, Ordering::Relaxed);
                }
            }
        })
        .await;
    let took = started.elapsed();
    println!(
        "soak: {total} requests, concurrency {concurrency}, {:.0} req/s, errors {}, mix-ups {}",
        total as f64 / took.as_secs_f64(),
        errors.load(Ordering::Relaxed),
        mixups.load(Ordering::Relaxed)
    );
    assert_eq!(errors.load(Ordering::Relaxed), 0);
    assert_eq!(mixups.load(Ordering::Relaxed), 0);
    assert_eq!(stack.connectivity().connector("").unwrap().minted(), 50, "one certificate per user, reused");
}
