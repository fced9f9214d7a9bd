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
    // The destination's own client (not the SDK's destination-service
    // client) got its token at othertenant's token endpoint.
    let app_client = info_client_id(&up);
    let fetched_for_othertenant = journal.iter().any(|e| {
        e["host"] == "othertenant.authentication.eu10.idp.test"
            && e["path"] == "/oauth/token"
            && e["status"] == 200
            && e["form"].to_string().contains("client_credentials")
            && basic_user(e).as_deref() == Some(app_client.as_str())
    });
    assert!(fetched_for_othertenant, "the destination's token for othertenant's user came from othertenant");
}

/// The application's client id (the destination `app-client-credentials`
/// uses it), from the ready file's `xsuaa` binding.
fn info_client_id(up: &Up) -> String {
    up.info["vcap_services"]["xsuaa"][0]["credentials"]["clientid"].as_str().unwrap().to_string()
}

/// The user of a journalled request's `Authorization: Basic` header
/// (`%21` decoded: RFC 6749 §2.3.1 form-encodes it), or its `client_id`.
fn basic_user(entry: &Value) -> Option<String> {
    use base64::Engine as _;
    let headers = entry["headers"].as_array()?;
    let basic = headers.iter().find_map(|h| {
        let (k, v) = (h[0].as_str()?, h[1].as_str()?);
        k.eq_ignore_ascii_case("authorization").then(|| v.strip_prefix("Basic ").map(str::to_string)).flatten()
    });
    match basic {
        Some(b) => {
            let raw = base64::engine::general_purpose::STANDARD.decode(b.trim()).ok()?;
            let user = String::from_utf8(raw).ok()?.split(':').next()?.to_string();
            // The only character of the stack's client ids that RFC 6749
            // §2.3.1's form-encoding changes.
            Some(user.replace("%21", "!"))
        }
        None => entry["form"]
            .as_array()?
            .iter()
            .find(|p| p[0] == "client_id")
            .and_then(|p| p[1].as_str().map(str::to_string)),
    }
}
