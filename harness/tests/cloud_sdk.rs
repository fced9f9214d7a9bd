//! Real clients, unchanged, against the stack (Node packages pinned in
//! `examples/adapters/cloud-sdk-js/package-lock.json`; `.ci/run` installs
//! them): @sap/xssec validates a stack-minted user token and fetches a
//! client-credentials token, and the SAP Cloud SDK for JavaScript passes the
//! consumer scenarios, its departures from the spec listed as known
//! findings. Skips, saying so, only when the packages are not installed.

use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;

use idprop_harness::driver::{self, Driver};
use idprop_harness::expectations::Expectations;
use idprop_harness::loader;
use idprop_harness::report::Status;
use idprop_harness::runner::{run_all, Selection};
use idprop_harness::scenario::Role;

/// The Node adapter, its pinned packages installed on first use
/// (`idprop_harness::clients`); a skip only without Node, never in CI.
fn adapter_dir() -> Option<PathBuf> {
    let dir = idprop_harness::clients::node_adapter();
    if dir.is_none() {
        assert!(!idprop_harness::clients::required(), "CI must run the real Node clients");
        eprintln!("SKIPPED: no Node (or npm ci failed, see above) to run the real Node clients");
    }
    dir
}

/// Runs the xssec check off the runtime (the stack serves on it meanwhile).
async fn xssec(dir: &std::path::Path, stack: &idprop_mocks::Stack, token: &str) -> serde_json::Value {
    let mut cmd = Command::new("node");
    cmd.arg(dir.join("xssec-check.mjs"))
        .arg(token)
        .env("VCAP_SERVICES", stack.vcap_services().to_string())
        .env("HTTPS_PROXY", stack.gateway_url())
        .env("NODE_EXTRA_CA_CERTS", stack.ca_file())
        .env_remove("HTTP_PROXY");
    let out = tokio::task::spawn_blocking(move || cmd.output().unwrap()).await.unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    serde_json::from_str(text.lines().last().unwrap_or(""))
        .unwrap_or_else(|_| panic!("{text}\n{}", String::from_utf8_lossy(&out.stderr)))
}

/// `getDestination` of a missing name is null, not an error: the SDK knows
/// "not found" only by the exact answer
/// `{"ErrorMessage":"Configuration with the specified name was not found"}`.
/// A destination only the provider has, asked for with a subscriber user's
/// JWT, is found at the provider after the subscriber's 404 (the SDK's
/// default `subscriberFirst`; 39d4265).
#[tokio::test(flavor = "multi_thread")]
async fn cloud_sdk_get_destination_missing_is_null_and_falls_back_to_the_provider() {
    let Some(dir) = adapter_dir() else { return };
    let stack = idprop_mocks::Stack::start().await.unwrap();
    let props = [
        ("Name", "provider-only"),
        ("Type", "HTTP"),
        ("URL", "https://api.example.test"),
        ("Authentication", "NoAuthentication"),
    ];
    stack.destinations().add(idprop_mocks::DestinationEntry {
        tenant: Some("mytenant".into()),
        ..idprop_mocks::DestinationEntry::new(idprop_mocks::rules::Destination(
            props.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        ))
    });
    let subscriber_user = stack.uaa().user_token("othertenant", "alice").sign();
    let mut cmd = Command::new("node");
    cmd.arg(dir.join("get-destination-check.mjs"))
        .arg(&subscriber_user)
        .arg("provider-only")
        .env("VCAP_SERVICES", stack.vcap_services().to_string())
        .env("HTTPS_PROXY", stack.gateway_url())
        .env("NODE_EXTRA_CA_CERTS", stack.ca_file())
        .env_remove("HTTP_PROXY");
    let out = tokio::task::spawn_blocking(move || cmd.output().unwrap()).await.unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let v: serde_json::Value = serde_json::from_str(text.lines().last().unwrap_or(""))
        .unwrap_or_else(|_| panic!("{text}\n{}", String::from_utf8_lossy(&out.stderr)));
    assert!(v.get("missing").is_some_and(|m| m.is_null()), "{v}");
    assert_eq!(v["fallback"]["name"], "provider-only", "{v}");
    // The subscriber's lookup was a 404 with the exact body; the provider's found it.
    let lookups: Vec<_> = stack
        .journal()
        .of("destination")
        .into_iter()
        .filter(|e| e.path.ends_with("/provider-only"))
        .map(|e| e.status)
        .collect();
    assert!(lookups.contains(&404) && lookups.contains(&200), "{lookups:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn xssec_validates_stack_tokens_and_fetches_client_credentials() {
    let Some(dir) = adapter_dir() else { return };
    let stack = idprop_mocks::Stack::start().await.unwrap();
    let user = stack.uaa().user_token("mytenant", "alice").sign();
    let v = xssec(&dir, &stack, &user).await;
    assert_eq!(v["validated"], true, "{v}");
    assert_eq!(v["user"], "alice");
    assert_eq!(v["zid"], stack.uaa().tenant("mytenant").unwrap().zid.as_str());
    assert_eq!(v["client_credentials"], true, "{v}");
    // The keys came from the mock UAA through the gateway.
    assert!(stack.journal().of("uaa").iter().any(|e| e.path == "/token_keys" && e.tls));
    // A forged token is refused by xssec too.
    let forged = stack.uaa().user_token("mytenant", "alice").forge(idprop_mocks::Forgery::WrongKey);
    let v = xssec(&dir, &stack, &forged).await;
    assert_eq!(v["validated"], false, "{v}");
}

/// Seed 000 with the real validator: @sap/xssec, given the application's
/// `xsuaa` binding, accepts the tokens the external system gets by SAML
/// bearer assertion and by client credentials, and its own `checkLocalScope`
/// agrees with the scopes the role collections and authorities grant; a
/// token for another application (wrong audience) is refused.
#[tokio::test(flavor = "multi_thread")]
async fn xssec_accepts_seed_000_tokens_with_their_scopes_and_refuses_other_audiences() {
    let Some(dir) = adapter_dir() else { return };
    let stack = idprop_mocks::Stack::start().await.unwrap();
    let uaa = stack.uaa();
    let tenant = uaa.tenant("mytenant").unwrap();
    let assertion = idprop_mocks::saml::Assertion::bearer(
        "erin",
        &uaa.saml_entity_id(&tenant),
        &format!("{}/oauth/token", stack.uaa_url("mytenant")),
        300,
    );
    let idp =
        stack.pki().saml_signer(idprop_mocks::uaa::EXTERNAL_IDP, idprop_mocks::pki::SamlKey::ExternalIdp).unwrap();
    let xml = idp.sign(&assertion, false).unwrap();
    let token_of = |form: Vec<(&'static str, String)>, client: (&'static str, &'static str)| {
        let stack = stack.clone();
        async move {
            let resp = stack
                .http_client()
                .post(format!("{}/oauth/token", stack.uaa_url("mytenant")))
                .basic_auth(client.0, Some(client.1))
                .form(&form)
                .send()
                .await
                .unwrap();
            let v: serde_json::Value = resp.json().await.unwrap();
            v["access_token"].as_str().unwrap_or_else(|| panic!("{v}")).to_string()
        }
    };
    let erin = token_of(
        vec![
            ("grant_type", idprop_mocks::uaa::SAML_BEARER_GRANT.into()),
            ("assertion", idprop_mocks::saml::encode(&xml)),
        ],
        idprop_mocks::uaa::APP_CLIENT,
    )
    .await;
    let v = xssec(&dir, &stack, &erin).await;
    assert_eq!((v["validated"].as_bool(), v["user"].as_str()), (Some(true), Some("erin")), "{v}");
    assert_eq!((v["read"].as_bool(), v["admin"].as_bool()), (Some(true), Some(true)), "{v}");
    let client = token_of(vec![("grant_type", "client_credentials".into())], idprop_mocks::uaa::APP_CLIENT).await;
    let v = xssec(&dir, &stack, &client).await;
    assert_eq!(
        (v["validated"].as_bool(), v["read"].as_bool(), v["admin"].as_bool()),
        (Some(true), Some(true), Some(false)),
        "{v}"
    );
    let other_app =
        token_of(vec![("grant_type", "client_credentials".into())], idprop_mocks::uaa::DESTINATION_CLIENT).await;
    let v = xssec(&dir, &stack, &other_app).await;
    assert_eq!(v["validated"], false, "{v}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_cloud_sdk_passes_the_consumer_scenarios_or_they_are_expected_failures() {
    let Some(dir) = adapter_dir() else { return };
    let d: Arc<dyn Driver> =
        Arc::from(driver::from_spec(&format!("exec:node {}", dir.join("adapter.mjs").display())).unwrap());
    let (scenarios, _) = loader::load(&[PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scenarios")]).unwrap();
    let consumer = Selection { roles: vec![Role::Consumer], ..Default::default() }.apply(scenarios);
    let ids: Vec<String> = consumer.iter().map(|l| l.scenario.id.clone()).collect();
    let file = dir.join("expectations.yaml");
    let expectations = Expectations::load(&file, &ids).unwrap();
    let mut report = run_all(d, consumer, vec![], 8, &|_| {}).await;
    expectations.apply(&mut report, &file.display().to_string());
    println!("{}", report.human());
    // Every failure is listed (with its reason), and every listed scenario
    // still fails: the file is exact.
    assert_eq!(report.count(Status::Failed), 0, "{}", report.human());
    assert!(report.count(Status::Passed) + report.count(Status::Warned) >= 10);
    assert_eq!(report.count(Status::KnownFinding), expectations.expected.len(), "{}", report.human());
    readme_table("sap-cloud-sdk-js", &expectations.table(&report));
}

/// The README's conformance table of `client` (between its markers) is
/// `table`; `IDPROP_UPDATE_README=1` writes it there instead.
fn readme_table(client: &str, table: &str) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../README.md");
    let readme = std::fs::read_to_string(&path).unwrap();
    let (start, end) = (format!("<!-- conformance:{client} -->\n"), format!("<!-- /conformance:{client} -->"));
    let (Some(a), Some(b)) = (readme.find(&start), readme.find(&end)) else {
        panic!("README.md lacks the markers {start:?} … {end:?}");
    };
    let current = &readme[a + start.len()..b];
    if current == table {
        return;
    }
    if std::env::var("IDPROP_UPDATE_README").as_deref() == Ok("1") {
        let updated = format!("{}{table}{}", &readme[..a + start.len()], &readme[b..]);
        std::fs::write(&path, updated).unwrap();
        return;
    }
    panic!(
        "README.md's conformance table of {client} is not what this run gives; \
         IDPROP_UPDATE_README=1 cargo test -p idprop-harness --test cloud_sdk rewrites it.\n--- README\n{current}\n--- this run\n{table}"
    );
}

/// @sap/xssec 4's `IdentityService`, unchanged, with the stack's `identity`
/// binding: an IAS user token from the tenant's password grant validates
/// (discovery and keys fetched from the tenant through the gateway), the
/// client-credentials fetch works; a token for another client (audience),
/// one signed with a key the tenant does not publish, and one of an issuer
/// outside the binding's `domains` are refused.
#[tokio::test(flavor = "multi_thread")]
async fn xssec_identity_service_validates_ias_tokens_and_refuses_foreign_ones() {
    let Some(dir) = adapter_dir() else { return };
    let stack = idprop_mocks::Stack::start().await.unwrap();
    let ias = stack.identity_provider("https://mytenant.accounts.idp.test").unwrap().clone();
    let run = |token: String| {
        let (dir, stack) = (dir.clone(), stack.clone());
        async move {
            let mut cmd = Command::new("node");
            cmd.arg(dir.join("ias-check.mjs")).arg(token).env_remove("HTTP_PROXY");
            for (k, v) in stack.client_env() {
                cmd.env(k, v);
            }
            let out = tokio::task::spawn_blocking(move || cmd.output().unwrap()).await.unwrap();
            let text = String::from_utf8_lossy(&out.stdout).to_string();
            serde_json::from_str::<serde_json::Value>(text.lines().last().unwrap_or(""))
                .unwrap_or_else(|_| panic!("{text}\n{}", String::from_utf8_lossy(&out.stderr)))
        }
    };
    let alice = ias.config().users[0].clone();
    let token = ias.sign(ias.claims(idprop_mocks::oidc::IAS_CLIENT.0, Some(&alice), 600));
    let v = run(token).await;
    assert_eq!((v["validated"].as_bool(), v["email"].as_str()), (Some(true), Some("alice@example.test")), "{v}");
    assert_eq!(v["client_credentials"], true, "{v}");
    assert!(stack.journal().of("identity-provider").iter().any(|e| e.path == "/.well-known/openid-configuration"));
    let other_client = ias.sign(ias.claims("someone-else", Some(&alice), 600));
    assert_eq!(run(other_client).await["validated"], false);
    let mut claims = ias.claims(idprop_mocks::oidc::IAS_CLIENT.0, Some(&alice), 600);
    let oidc2 = stack.pki().signing_key("oidc-2").unwrap();
    let unpublished = oidc2.sign_claims(&claims);
    assert_eq!(run(unpublished).await["validated"], false);
    claims.insert("iss".into(), "https://issuer.com".into());
    let foreign = stack.identity_provider("https://issuer.com").unwrap().sign(claims);
    assert_eq!(run(foreign).await["validated"], false);
}
