//! A minimal CAP service (`examples/cap`, @sap/cds 10.1 unchanged) against
//! `idprop up`, started with nothing but `.idprop/env.sh`: XSUAA
//! authentication (no token: 401), a remote service on the OnPremise
//! principal-propagation destination (the backend logs alice on as
//! `CN=alice` through the Connectivity proxy and the Cloud Connector) and
//! one on an Internet `OAuth2ClientCredentials` destination whose token is
//! fetched for the user's own tenant.

mod support;

use serde_json::Value;
use support::{free_port, idprop, Up};

#[tokio::test(flavor = "multi_thread")]
async fn a_cap_service_authenticates_and_calls_both_remote_services_as_the_user() {
    let Some(example) = idprop::harness::clients::cap() else {
        assert!(!idprop::harness::clients::required(), "CI must run CAP");
        eprintln!("SKIPPED: no Node for the CAP example");
        return;
    };
    let up = Up::start();
    let port = free_port();
    let _cap = up.start_example(&example, port);
    let token = |tenant: &str| {
        let out = idprop().args(["token", "--tenant", tenant, "--user", "alice"]).output().unwrap();
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    };
    let call = |function: &'static str, token: Option<String>| async move {
        let mut req = reqwest::Client::new().get(format!("http://127.0.0.1:{port}/odata/v4/probe/{function}()"));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        // The function returns the remote answer as a JSON string.
        let value = body["value"].as_str().and_then(|v| serde_json::from_str(v).ok()).unwrap_or(body);
        (status, value)
    };

    assert_eq!(call("onPremise", None).await.0, 401, "XSUAA authentication: no token, no service");
    let (s, who) = call("onPremise", Some(token("mytenant"))).await;
    assert_eq!(s, 200, "{who}");
    assert_eq!(who["client_cert"]["subject"], "CN=alice", "the backend logged alice on: {who}");
    assert_eq!(who["tls_client_cert"]["subject"], "CN=SCC,OU=default location,O=idprop TEST ONLY", "{who}");

    let (s, app) = call("internet", Some(token("mytenant"))).await;
    assert_eq!(s, 200, "{app}");
    assert_eq!(app["caller"]["type"], "client", "{app}");
    assert_eq!(app["grant_type"], "client_credentials", "{app}");
    assert_eq!(app["tenant"]["subdomain"], "mytenant", "{app}");

    // A user of othertenant: the destination's token is fetched at
    // othertenant's token endpoint (tokenServiceURLType Common), which the
    // application (serving mytenant only, AP-2) then refuses.
    let (s, _) = call("internet", Some(token("othertenant"))).await;
    assert_ne!(s, 200);
    let journal = up.journal().await;
    assert!(
        journal.iter().any(|e| e["host"] == "othertenant.authentication.eu10.idp.test"
            && e["path"] == "/oauth/token"
            && e["status"] == 200
            && e["form"].to_string().contains("client_credentials")),
        "the token of othertenant's user was fetched in othertenant"
    );
}
