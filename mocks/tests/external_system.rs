//! Seed 000, "Cross-Application API Calls from an External System to
//! Applications in the Cloud Foundry Environment": "the bearer assertion
//! flow or client credentials identify the external application at the UAA,
//! which can then issue a JSON web token. The external application can use
//! this JSON web token when it makes the API calls to applications in the
//! Cloud Foundry environment." The application (`app.example.test`) lets in
//! only what the token says.

mod common;

use common::{claims, post_form, stack, APP};
use idprop_mocks::pki::SamlKey;
use idprop_mocks::saml::{encode, Assertion};
use idprop_mocks::tokens::unix_now;
use idprop_mocks::uaa::{EXTERNAL_IDP, SAML_BEARER_GRANT};
use idprop_mocks::Stack;
use serde_json::Value;

const APP_URL: &str = "https://app.example.test";

/// GET `path` on the application with `token`; status, `WWW-Authenticate`, body.
async fn call_app(stack: &Stack, path: &str, token: Option<&str>) -> (u16, String, Value) {
    let mut req = stack.http_client().get(format!("{APP_URL}{path}"));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await.expect("the application answers");
    let status = resp.status().as_u16();
    let www = resp.headers().get("www-authenticate").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
    (status, www, resp.json().await.unwrap_or(Value::Null))
}

async fn token(stack: &Stack, tenant: &str, form: &[(&str, &str)]) -> (u16, Value) {
    post_form(stack, &format!("{}/oauth/token", stack.uaa_url(tenant)), Some(APP), form).await
}

/// An assertion for `user` as the external identity provider signs it for
/// `mytenant`'s token endpoint.
fn assertion(stack: &Stack, user: &str) -> Assertion {
    let tenant = stack.uaa().tenant("mytenant").unwrap();
    let recipient = format!("{}/oauth/token", stack.uaa_url("mytenant"));
    Assertion {
        attributes: vec![("email".into(), vec![format!("{user}@external.test")])],
        ..Assertion::bearer(user, &stack.uaa().saml_entity_id(&tenant), &recipient, 300)
    }
}

fn external_idp(stack: &Stack) -> idprop_mocks::saml::SamlSigner {
    stack.pki().saml_signer(EXTERNAL_IDP, SamlKey::ExternalIdp).unwrap()
}

/// Client credentials: a technical identity with the client's authorities,
/// no user ("technical communication, for example, propagating scopes and
/// authorities").
#[tokio::test]
async fn client_credentials_reach_the_application_as_the_client_with_its_authorities() {
    let stack = stack().await;
    let (s, t) = token(&stack, "mytenant", &[("grant_type", "client_credentials")]).await;
    assert_eq!(s, 200, "{t}");
    let access = t["access_token"].as_str().unwrap();
    let c = claims(access);
    assert_eq!(c["authorities"], serde_json::json!(["idprop-app!t1.Read", "uaa.resource"]));
    assert!(c["aud"].as_array().unwrap().contains(&Value::from("idprop-app!t1")));
    let (status, _, body) = call_app(&stack, "/read/orders", Some(access)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["caller"], serde_json::json!({"type": "client", "client_id": APP.0}));
    assert!(body["scopes"].as_array().unwrap().contains(&Value::from("idprop-app!t1.Read")));
    assert_eq!(body["tenant"]["subdomain"], "mytenant");
    // The client was granted Read, not Admin.
    let (status, www, _) = call_app(&stack, "/admin", Some(access)).await;
    assert_eq!(status, 403);
    assert!(www.contains("error=\"insufficient_scope\"") && www.contains("idprop-app!t1.Admin"), "{www}");
}

/// A SAML 2.0 bearer assertion of the trusted external identity provider:
/// the named user, with the scopes of the role collections assigned to that
/// user of that identity provider.
#[tokio::test]
async fn a_saml_bearer_assertion_reaches_the_application_as_the_named_user() {
    let stack = stack().await;
    let xml = external_idp(&stack).sign(&assertion(&stack, "erin"), false).unwrap();
    let (s, t) = token(&stack, "mytenant", &[("grant_type", SAML_BEARER_GRANT), ("assertion", &encode(&xml))]).await;
    assert_eq!(s, 200, "{t}");
    let access = t["access_token"].as_str().unwrap();
    let c = claims(access);
    assert_eq!(c["user_name"], "erin");
    assert_eq!(c["origin"], "external-idp");
    assert_eq!(c["grant_type"], SAML_BEARER_GRANT);
    assert_eq!(c["xs.system.attributes"]["xs.rolecollections"], serde_json::json!(["Viewer", "Administrator"]));
    let (status, _, body) = call_app(&stack, "/admin/users", Some(access)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["caller"]["type"], "user");
    assert_eq!(body["caller"]["user_name"], "erin");
    assert_eq!(body["caller"]["origin"], "external-idp");

    // A user the identity provider vouches for but the UAA has no role
    // collections for: the default scopes, the assertion's email, nothing
    // invented; the application refuses what needs Read.
    let xml = external_idp(&stack).sign(&assertion(&stack, "frank"), false).unwrap();
    let (s, t) = token(&stack, "mytenant", &[("grant_type", SAML_BEARER_GRANT), ("assertion", &encode(&xml))]).await;
    assert_eq!(s, 200, "{t}");
    let c = claims(t["access_token"].as_str().unwrap());
    assert_eq!((c["user_name"].as_str(), c["email"].as_str()), (Some("frank"), Some("frank@external.test")));
    assert!(c.get("given_name").is_none());
    let (status, www, _) = call_app(&stack, "/read", t["access_token"].as_str()).await;
    assert_eq!(status, 403, "{www}");
}

/// Each way an assertion can be wrong is an `invalid_grant`, and no token
/// is issued.
#[tokio::test]
async fn wrong_assertions_are_refused_with_invalid_grant() {
    let stack = stack().await;
    let idp = external_idp(&stack);
    let good = assertion(&stack, "erin");
    let other = stack.pki().saml_signer("https://idp.nobody-trusts.test", SamlKey::Generated).unwrap();
    let cases: Vec<(&str, String)> = vec![
        ("audience", idp.sign(&Assertion { audiences: vec!["someone-else".into()], ..good.clone() }, false).unwrap()),
        (
            "recipient",
            idp.sign(&Assertion { recipient: "https://elsewhere.test/oauth/token".into(), ..good.clone() }, false)
                .unwrap(),
        ),
        (
            "expired",
            idp.sign(
                &Assertion {
                    issue_instant: good.issue_instant - 900,
                    not_on_or_after: good.issue_instant - 600,
                    ..good.clone()
                },
                false,
            )
            .unwrap(),
        ),
        ("not a trusted identity provider", other.sign(&good, true).unwrap()),
        ("does not verify", idp.sign(&good, false).unwrap().replace(">erin<", ">alice<")),
        ("not well-formed", "<saml2:Assertion".to_string()),
    ];
    for (why, xml) in cases {
        let (s, body) =
            token(&stack, "mytenant", &[("grant_type", SAML_BEARER_GRANT), ("assertion", &encode(&xml))]).await;
        assert_eq!((s, body["error"].as_str()), (400, Some("invalid_grant")), "{why}: {body}");
        assert!(body["error_description"].as_str().unwrap().to_lowercase().contains(why), "{why}: {body}");
        assert!(body.get("access_token").is_none());
    }
    // An identity provider trusted by othertenant only is not trusted here.
    let stack2 = Stack::start_with(idprop_mocks::StackConfig {
        uaa: idprop_mocks::uaa::UaaConfig {
            saml_idps: vec![idprop_mocks::uaa::TrustedSamlIdp {
                tenants: vec!["othertenant".into()],
                ..idp.trusted("external-idp")
            }],
            ..Default::default()
        },
        ..Default::default()
    })
    .await
    .unwrap();
    let (s, body) = post_form(
        &stack2,
        &format!("{}/oauth/token", stack2.uaa_url("mytenant")),
        Some(APP),
        &[("grant_type", SAML_BEARER_GRANT), ("assertion", &encode(&idp.sign(&good, false).unwrap()))],
    )
    .await;
    assert!(body["error_description"].as_str().unwrap().contains("not a trusted identity provider"), "{s} {body}");
    // The same good assertion is for mytenant, not othertenant.
    let xml = idp.sign(&good, false).unwrap();
    let (s, body) =
        token(&stack, "othertenant", &[("grant_type", SAML_BEARER_GRANT), ("assertion", &encode(&xml))]).await;
    assert_eq!(s, 400, "{body}");
}

/// A user token exchanged by jwt-bearer: the same user, with that user's
/// role collections; a scope the user lacks is a 403.
#[tokio::test]
async fn a_jwt_bearer_exchange_reaches_the_application_as_the_same_user() {
    let stack = stack().await;
    let alice = stack.uaa().user_token("mytenant", "alice").sign();
    let (s, t) =
        token(&stack, "mytenant", &[("grant_type", idprop_mocks::uaa::JWT_BEARER_GRANT), ("assertion", &alice)]).await;
    assert_eq!(s, 200, "{t}");
    let access = t["access_token"].as_str().unwrap();
    let (status, _, body) = call_app(&stack, "/read", Some(access)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["caller"]["user_name"], "alice");
    let (status, www, body) = call_app(&stack, "/admin", Some(access)).await;
    assert_eq!((status, body["error"].as_str()), (403, Some("insufficient_scope")));
    assert!(www.starts_with("Bearer ") && www.contains("scope=\"idprop-app!t1.Admin\""), "{www}");
}

/// RFC 6750: no token, or a token that is not for this application, of
/// another tenant, expired or forged, is a 401 with `invalid_token` (no
/// error code when no token came at all).
#[tokio::test]
async fn tokens_the_application_must_not_accept_are_401() {
    let stack = stack().await;
    let (status, www, _) = call_app(&stack, "/read", None).await;
    assert_eq!(status, 401);
    assert!(www.starts_with("Bearer ") && !www.contains("error="), "{www}");

    let (_, other_tenant) = token(&stack, "othertenant", &[("grant_type", "client_credentials")]).await;
    let (_, other_app) = post_form(
        &stack,
        &format!("{}/oauth/token", stack.uaa_url("mytenant")),
        Some(common::DEST_CLIENT),
        &[("grant_type", "client_credentials")],
    )
    .await;
    let now = unix_now();
    let expired = stack.uaa().user_token("mytenant", "alice").claim("iat", now - 7200).claim("exp", now - 3600).sign();
    let forged = stack.uaa().user_token("mytenant", "alice").kid("rogue").sign();
    for (why, t) in [
        ("another tenant", other_tenant["access_token"].as_str().unwrap().to_string()),
        ("another application", other_app["access_token"].as_str().unwrap().to_string()),
        ("expired", expired),
        ("forged", forged),
        ("not a JWT", "not-a-token".to_string()),
    ] {
        let (status, www, body) = call_app(&stack, "/read", Some(&t)).await;
        assert_eq!(status, 401, "{why}: {body}");
        assert!(www.contains("error=\"invalid_token\""), "{why}: {www}");
        assert_eq!(body["error"], "invalid_token", "{why}");
    }
    assert_eq!(stack.journal().of("app").len(), 6);
}
