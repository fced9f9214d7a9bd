//! The page at `/__idprop/` in headless Chromium (Debian's package; `.ci/run`
//! installs it): after a principal-propagation call, the sequence diagram
//! shows every hop — the Connectivity proxy → Cloud Connector tunnel too —
//! the system certificate and `SSL_CLIENT_CERT` of the backend hop, and no
//! label is cut at a 1400-pixel-wide window. Skips, saying so, only when
//! no Chromium is installed.

mod common;

use std::process::Command;

fn chromium() -> Option<&'static str> {
    ["/usr/bin/chromium", "/usr/bin/chromium-browser"].into_iter().find(|p| std::path::Path::new(p).exists())
}

#[tokio::test(flavor = "multi_thread")]
async fn the_page_draws_a_principal_propagation_call() {
    let Some(browser) = chromium() else {
        eprintln!(
            "SKIPPED the_page_draws_a_principal_propagation_call: no Chromium installed (apt-get install chromium)"
        );
        return;
    };
    let stack = idprop_mocks::Stack::start().await.unwrap();
    let proxy = common::proxy_token(&stack, "mytenant").await;
    let user = stack.uaa().user_token("mytenant", "alice").sign();
    let r = common::onprem_client(&stack)
        .get("http://erp.onprem.test:44300/echo/page")
        .header("Proxy-Authorization", format!("Bearer {proxy}"))
        .header("SAP-Connectivity-Authentication", format!("Bearer {user}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // An IAS user too: the connector fetches the IAS tenant's keys, drawn in
    // the identity provider's own lane.
    let ias = stack.identity_provider("https://mytenant.accounts.idp.test").unwrap();
    let ias_user = ias.sign(ias.claims(idprop_mocks::oidc::IAS_CLIENT.0, Some(&ias.config().users[0]), 600));
    let r = common::onprem_client(&stack)
        .get("http://erp.onprem.test:44300/echo/ias")
        .header("Proxy-Authorization", format!("Bearer {proxy}"))
        .header("SAP-Connectivity-Authentication", format!("Bearer {ias_user}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let profile = tempfile::tempdir().unwrap();
    let url = format!("{}/__idprop/", stack.gateway_url());
    let out = tokio::task::spawn_blocking(move || {
        Command::new(browser)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--virtual-time-budget=5000",
                // The width at which the backend hop's label used to be cut.
                "--window-size=1400,900",
                "--dump-dom",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg(url)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let dom = String::from_utf8_lossy(&out.stdout);
    for expected in [
        "Connectivity proxy",
        "erp.onprem.test/echo/page",
        "erp.internal.test/echo/page",
        "certificate CN=alice",
        "SSL_CLIENT_CERT certificate CN=alice",
        "TLS CN=SCC,OU=default location,O=idprop TEST ONLY",
        "Cloud Connector: principal propagation as CN=alice",
        "system certificate CN=SCC",
        "technical-user-example",
        "Identity provider",
        "mytenant.accounts.idp.test/oauth2/certs",
        "principal propagation as CN=alice@example.test",
        "live —",
        // Every label fits the lanes its arrow spans.
        "data-clipped=\"0\"",
    ] {
        assert!(dom.contains(expected), "{expected:?} not on the page:\n{}", &dom[..dom.len().min(3000)]);
    }
}
