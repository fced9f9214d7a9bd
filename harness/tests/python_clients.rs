//! SAP Cloud SDK for Python 0.62 (PyPI `sap-cloud-sdk`), unchanged, against
//! the stack: `get_destination` through the v2 consume API for client
//! credentials, technical user propagation, a fragment and a missing name.
//!
//! The venv is `examples/clients/python/.venv`, installed by `.ci/run` from
//! the pinned `requirements.txt`. Without it the test says SKIPPED, except
//! under `CI=true`, where it fails: CI must run the real client.

use std::path::PathBuf;
use std::process::Command;

use serde_json::{json, Value};

fn python() -> Option<PathBuf> {
    let py = idprop_harness::clients::python();
    if py.is_none() {
        assert!(!idprop_harness::clients::required(), "CI must install the Python clients (.ci/run does)");
        eprintln!("SKIPPED: no python3 (or the venv could not be installed, see above)");
    }
    py
}

/// Runs `examples/clients/python/<script>` with `arg` and the stack's
/// environment, off the runtime (the stack serves on it meanwhile); its last
/// stdout line as JSON.
async fn run(py: PathBuf, stack: &idprop_mocks::Stack, script: &str, arg: String) -> Value {
    run_args(py, stack, script, &[arg]).await
}

/// [`run`] with several arguments.
async fn run_args(py: PathBuf, stack: &idprop_mocks::Stack, script: &str, args: &[String]) -> Value {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/clients/python").join(script);
    let mut cmd = Command::new(py);
    cmd.arg(script).args(args).env_clear().env("PATH", std::env::var("PATH").unwrap_or_default());
    for (k, v) in stack.client_env() {
        cmd.env(k, v);
    }
    let out = tokio::task::spawn_blocking(move || cmd.output().unwrap()).await.unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    serde_json::from_str(text.lines().last().unwrap_or(""))
        .unwrap_or_else(|_| panic!("{text}\n{}", String::from_utf8_lossy(&out.stderr)))
}

/// The body of a token request to `mytenant`'s UAA by `client` (Basic).
async fn uaa_token(stack: &idprop_mocks::Stack, client: (&str, &str), form: &[(&str, &str)]) -> Value {
    stack
        .http_client()
        .post(format!("{}/oauth/token", stack.uaa_url("mytenant")))
        .basic_auth(client.0, Some(client.1))
        .form(form)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// [`uaa_token`]'s access token.
async fn access_token(stack: &idprop_mocks::Stack, client: (&str, &str), form: &[(&str, &str)]) -> String {
    let v = uaa_token(stack, client, form).await;
    v["access_token"].as_str().unwrap_or_else(|| panic!("{v}")).to_string()
}

/// `destination_check.py` with `lookups`: one result per lookup.
async fn check(py: PathBuf, stack: &idprop_mocks::Stack, lookups: Value) -> Vec<Value> {
    serde_json::from_value(run(py, stack, "destination_check.py", lookups.to_string()).await).expect("a list")
}

#[tokio::test(flavor = "multi_thread")]
async fn the_python_sdk_reads_destinations_fragments_and_missing_names() {
    let Some(py) = python() else { return };
    let stack = idprop_mocks::Stack::start().await.unwrap();
    let results = check(
        py,
        &stack,
        json!([
            {"name": "client-credentials-example"},
            {"name": "technical-user-uaa"},
            {"name": "client-credentials-example", "options": {"fragment_name": "example-fragment"}},
            {"name": "no-such-destination"},
        ]),
    )
    .await;
    let [cc, tu, frag, missing] = results.as_slice() else { panic!("{results:?}") };
    assert_eq!(cc["found"], true, "{cc}");
    let token = &cc["auth_tokens"][0];
    assert_eq!((token["type"].as_str(), token["error"].as_str()), (Some("Bearer"), None), "{cc}");
    assert!(stack.uaa().validate(token["value"].as_str().unwrap()).is_ok());
    assert_eq!(tu["auth_tokens"][0]["http_header"]["key"], "SAP-Connectivity-Technical-Authentication", "{tu}");
    assert_eq!(frag["properties"]["URL.queries.sap-client"], "100", "{frag}");
    assert_eq!(frag["properties"]["FragmentName"], "example-fragment", "{frag}");
    assert_eq!(missing["found"], false, "{missing}");
    // The SDK used the v2 consume API, with the fragment header.
    let consumed: Vec<_> = stack
        .journal()
        .of("destination")
        .into_iter()
        .filter(|e| e.path.starts_with("/destination-configuration/v2/destinations/"))
        .collect();
    assert_eq!(consumed.len(), 4, "{consumed:?}");
    assert!(consumed.iter().any(|e| e.headers.iter().any(|(k, v)| k == "x-fragment-name" && v == "example-fragment")));
}

/// `xssec_check.py` on `token`.
async fn xssec(py: PathBuf, stack: &idprop_mocks::Stack, token: &str) -> Value {
    run(py, stack, "xssec_check.py", token.to_string()).await
}

/// Seed 000 with PyPI `sap-xssec` 4.5: the application's `xsuaa` binding
/// accepts the named user of a SAML bearer assertion with the scopes of the
/// user's role collections (its own `check_local_scope`), alice with Read
/// only, and refuses another application's token and a forged one.
#[tokio::test(flavor = "multi_thread")]
async fn sap_xssec_validates_seed_000_tokens_and_their_scopes() {
    let Some(py) = python() else { return };
    let stack = idprop_mocks::Stack::start().await.unwrap();
    let uaa = stack.uaa();
    let tenant = uaa.tenant("mytenant").unwrap();
    let idp =
        stack.pki().saml_signer(idprop_mocks::uaa::EXTERNAL_IDP, idprop_mocks::pki::SamlKey::ExternalIdp).unwrap();
    let recipient = format!("{}/oauth/token", stack.uaa_url("mytenant"));
    let assertion = idprop_mocks::saml::Assertion::bearer("erin", &uaa.saml_entity_id(&tenant), &recipient, 300);
    let xml = idp.sign(&assertion, false).unwrap();
    let app = idprop_mocks::uaa::APP_CLIENT;
    let assertion = idprop_mocks::saml::encode(&xml);
    let erin =
        access_token(&stack, app, &[("grant_type", idprop_mocks::uaa::SAML_BEARER_GRANT), ("assertion", &assertion)])
            .await;
    let v = xssec(py.clone(), &stack, &erin).await;
    assert_eq!((v["validated"].as_bool(), v["user"].as_str()), (Some(true), Some("erin")), "{v}");
    assert_eq!((v["read"].as_bool(), v["admin"].as_bool()), (Some(true), Some(true)), "{v}");
    let alice = uaa.user_token("mytenant", "alice").sign();
    let v = xssec(py.clone(), &stack, &alice).await;
    assert_eq!((v["read"].as_bool(), v["admin"].as_bool()), (Some(true), Some(false)), "{v}");
    let other_app =
        access_token(&stack, idprop_mocks::uaa::DESTINATION_CLIENT, &[("grant_type", "client_credentials")]).await;
    assert_eq!(xssec(py.clone(), &stack, &other_app).await["validated"], false);
    let forged = uaa.user_token("mytenant", "alice").forge(idprop_mocks::Forgery::WrongKey);
    assert_eq!(xssec(py, &stack, &forged).await["validated"], false);
}

/// PyPI `sap-xssec` 4.5's IAS validation, unchanged, with the stack's
/// `identity` binding: the tenant's user token validates; a token for
/// another client and one of an issuer outside the binding's domains are
/// refused.
#[tokio::test(flavor = "multi_thread")]
async fn sap_xssec_validates_ias_tokens_and_refuses_foreign_ones() {
    let Some(py) = python() else { return };
    let stack = idprop_mocks::Stack::start().await.unwrap();
    let ias = stack.identity_provider("https://mytenant.accounts.idp.test").unwrap().clone();
    let run = |token: String| run(py.clone(), &stack, "ias_check.py", token);
    let alice = ias.config().users[0].clone();
    let v = run(ias.sign(ias.claims(idprop_mocks::oidc::IAS_CLIENT.0, Some(&alice), 600))).await;
    assert_eq!(v["validated"], true, "{v}");
    let v = run(ias.sign(ias.claims("someone-else", Some(&alice), 600))).await;
    assert_eq!(v["validated"], false, "{v}");
    let mut claims = ias.claims(idprop_mocks::oidc::IAS_CLIENT.0, Some(&alice), 600);
    claims.insert("iss".into(), "https://issuer.com".into());
    let v = run(stack.identity_provider("https://issuer.com").unwrap().sign(claims)).await;
    assert_eq!(v["validated"], false, "{v}");
}

/// SAP Cloud SDK for Python's `get_destination` for every authentication
/// type the stack's default destinations have, each with the option the
/// type needs (`user_token`, `refresh_token`, `subject_token`): each is
/// found with its token and no error; the user-based ones carry alice.
#[tokio::test(flavor = "multi_thread")]
async fn the_python_sdk_reads_every_authentication_type() {
    let Some(py) = python() else { return };
    let stack = idprop_mocks::Stack::start().await.unwrap();
    let alice = stack.uaa().user_token("mytenant", "alice").sign();
    let app = idprop_mocks::uaa::APP_CLIENT;
    let rt =
        uaa_token(&stack, app, &[("grant_type", "password"), ("username", "alice"), ("password", "alice-password")])
            .await;
    let user = json!({"user_token": alice});
    let lookups = json!([
        {"name": "client-credentials-example"},
        {"name": "technical-user-example"},
        {"name": "technical-user-uaa"},
        {"name": "password-example"},
        {"name": "jwt-bearer-example", "options": user},
        {"name": "user-token-exchange-example", "options": user},
        {"name": "saml-bearer-example", "options": user},
        {"name": "refresh-token-example", "options": {"refresh_token": rt["refresh_token"]}},
        {"name": "token-exchange-example", "options": {"subject_token": alice, "subject_token_type": "urn:ietf:params:oauth:token-type:access_token"}},
        {"name": "onpremise-token-service-example"},
        {"name": "principal-propagation-example", "options": user},
        {"name": "basic-example"},
        {"name": "no-auth-example"},
    ]);
    let want: Vec<(&str, &str, Option<&str>)> = vec![
        ("client-credentials-example", "OAuth2ClientCredentials", Some("Bearer")),
        ("technical-user-example", "OAuth2TechnicalUserPropagation", Some("Bearer")),
        ("technical-user-uaa", "OAuth2TechnicalUserPropagation", Some("Bearer")),
        ("password-example", "OAuth2Password", Some("Bearer")),
        ("jwt-bearer-example", "OAuth2JWTBearer", Some("Bearer")),
        ("user-token-exchange-example", "OAuth2UserTokenExchange", Some("Bearer")),
        ("saml-bearer-example", "OAuth2SAMLBearerAssertion", Some("Bearer")),
        ("refresh-token-example", "OAuth2RefreshToken", Some("Bearer")),
        ("token-exchange-example", "OAuth2TokenExchange", Some("Bearer")),
        ("onpremise-token-service-example", "OAuth2ClientCredentials", Some("Bearer")),
        ("principal-propagation-example", "PrincipalPropagation", None),
        ("basic-example", "BasicAuthentication", Some("Basic")),
        ("no-auth-example", "NoAuthentication", None),
    ];
    let results = check(py, &stack, lookups).await;
    assert_eq!(results.len(), want.len());
    for (r, (name, auth, token_type)) in results.iter().zip(want) {
        assert_eq!((r["name"].as_str(), r["found"].as_bool()), (Some(name), Some(true)), "{r}");
        assert_eq!(r["authentication"], auth, "{r}");
        let tokens = r["auth_tokens"].as_array().unwrap();
        match token_type {
            None => assert!(tokens.is_empty(), "{r}"),
            Some(t) => {
                assert_eq!((tokens.len(), tokens[0]["type"].as_str()), (1, Some(t)), "{r}");
                assert!(tokens[0]["error"].is_null(), "{r}");
            }
        }
    }
    let by_name = |n: &str| results.iter().find(|r| r["name"] == n).unwrap();
    for name in ["jwt-bearer-example", "user-token-exchange-example", "saml-bearer-example", "refresh-token-example"] {
        let t = by_name(name)["auth_tokens"][0]["value"].as_str().unwrap().to_string();
        let c = idprop_mocks::tokens::peek_claims(&t).unwrap();
        assert_eq!(c["user_name"], "alice", "{name}: {c:?}");
    }
    for name in ["technical-user-example", "technical-user-uaa"] {
        assert_eq!(
            by_name(name)["auth_tokens"][0]["http_header"]["key"],
            "SAP-Connectivity-Technical-Authentication",
            "{name}"
        );
    }
}

/// PyPI `sap-xssec` 4.5 beyond user tokens: a client-credentials token
/// validates as the client (no user), and the library's own jwt-bearer
/// exchange (`request_token_for_client`) turns alice's token into one of
/// the destination binding's client for alice.
#[tokio::test(flavor = "multi_thread")]
async fn sap_xssec_validates_client_tokens_and_exchanges_user_tokens() {
    let Some(py) = python() else { return };
    let stack = idprop_mocks::Stack::start().await.unwrap();
    let app = idprop_mocks::uaa::APP_CLIENT;
    let cc = access_token(&stack, app, &[("grant_type", "client_credentials")]).await;
    let v = run(py.clone(), &stack, "xssec_check.py", cc).await;
    assert_eq!(v["validated"], true, "{v}");
    assert_eq!((v["client"].as_str(), v["grant_type"].as_str()), (Some(app.0), Some("client_credentials")), "{v}");
    assert_eq!(v["read"], true, "the client's $XSAPPNAME.Read authority: {v}");
    let alice =
        access_token(&stack, app, &[("grant_type", "password"), ("username", "alice"), ("password", "alice-password")])
            .await;
    let v = run_args(py, &stack, "xssec_check.py", &[alice, "exchange".into()]).await;
    assert_eq!(v["validated"], true, "{v}");
    let x = &v["exchanged"];
    assert_eq!(x["user_name"], "alice", "{v}");
    assert_eq!(x["cid"], idprop_mocks::uaa::DESTINATION_CLIENT.0, "{v}");
    assert_eq!(x["grant_type"], idprop_mocks::uaa::JWT_BEARER_GRANT, "{v}");
}
