//! Identity providers beside the UAA (issue 16's core): an IAS tenant and the
//! issuer of seed 002's sample token, each with its own keys and `.test`
//! host, trusted by the Cloud Connector by issuer (keys from the discovery
//! document's `jwks_uri`, fetched through the gateway).

mod common;

use idprop_mocks::oidc::{IAS_CLIENT, SEED_ISSUER};
use idprop_mocks::Stack;
use serde_json::{json, Value};

const ERP: &str = "http://erp.onprem.test:44300";
const IAS: &str = "https://mytenant.accounts.idp.test";

/// The backend's echo for a call through the Connectivity proxy with
/// `user_token` in `SAP-Connectivity-Authentication`.
async fn through_the_proxy(stack: &Stack, user_token: &str) -> (u16, Value) {
    let pt = common::proxy_token(stack, "mytenant").await;
    let resp = common::onprem_client(stack)
        .get(format!("{ERP}/echo/who"))
        .header("Proxy-Authorization", format!("Bearer {pt}"))
        .header("SAP-Connectivity-Authentication", format!("Bearer {user_token}"))
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

#[tokio::test]
async fn an_ias_tenant_serves_discovery_keys_and_tokens_that_propagate() {
    let stack = Stack::start().await.unwrap();
    let d: Value = common::get_json(&stack, &format!("{IAS}/.well-known/openid-configuration")).await;
    assert_eq!(d["issuer"], IAS);
    let jwks: Value = common::get_json(&stack, d["jwks_uri"].as_str().unwrap()).await;
    assert_eq!(jwks["keys"][0]["kid"], "oidc-1");
    assert!(!stack.pki().signing_keys().iter().any(|k| k.kid == "oidc-1"), "the provider's keys are never the UAA's");

    let (s, t) = common::post_form(
        &stack,
        d["token_endpoint"].as_str().unwrap(),
        Some(IAS_CLIENT),
        &[("grant_type", "password"), ("username", "alice"), ("password", "alice-password")],
    )
    .await;
    assert_eq!(s, 200, "{t}");
    let token = t["access_token"].as_str().unwrap();
    let c = common::claims(token);
    assert_eq!((c["iss"].as_str(), c["email"].as_str()), (Some(IAS), Some("alice@example.test")));
    assert_eq!(c["aud"], json!([IAS_CLIENT.0]));
    for k in ["sub", "user_uuid", "app_tid", "azp", "sid", "scim_id"] {
        assert!(c.contains_key(k), "{k}: {c:?}");
    }
    // No user_name in an IAS token: the email names the certificate (PP-2).
    let (status, echo) = through_the_proxy(&stack, token).await;
    assert_eq!(status, 200, "{echo}");
    assert_eq!(echo["client_cert"]["subject"], "CN=alice@example.test");
    // The keys came from the provider's jwks_uri, through the gateway.
    assert!(stack.journal().of("identity-provider").iter().any(|e| e.path == "/oauth2/certs"));
    // The ready file lists the providers; the bindings have an `identity`.
    let ready = stack.ready_info();
    let ias = &ready["identity_providers"][0];
    assert_eq!(
        (&ias["kind"], &ias["issuer"], &ias["discovery"]),
        (&json!("ias"), &json!(IAS), &json!(format!("{IAS}/.well-known/openid-configuration")))
    );
    assert_eq!(ias["clients"][0], json!({"client_id": IAS_CLIENT.0, "client_secret": IAS_CLIENT.1}));
    // The X.509 client (9379444's X509_GENERATED): no secret, a TEST ONLY
    // certificate of its subject and its key.
    let x509 = &ias["clients"][1];
    assert_eq!(x509["client_id"], idprop_mocks::oidc::IAS_X509_CLIENT);
    assert!(x509.get("client_secret").is_none(), "{x509}");
    assert!(x509["certificate"].as_str().unwrap().starts_with("-----BEGIN CERTIFICATE-----"));
    assert!(x509["key"].as_str().unwrap().contains("PRIVATE KEY-----"));
    assert_eq!(ready["identity_providers"][1]["issuer"], SEED_ISSUER);
    let identity = &stack.vcap_services()["identity"][0]["credentials"];
    assert_eq!((identity["url"].as_str(), identity["domains"][0].as_str()), (Some(IAS), Some("accounts.idp.test")));
}

/// Seed 002's sample token exactly as printed (its own `iss`, `aud`,
/// `exp`, `iat`, `jti`, `sub`, `email`) gives `CN=test@users.com`.
#[tokio::test]
async fn the_seeds_sample_token_propagates_as_printed() {
    let stack = Stack::start().await.unwrap();
    let seed = stack.identity_provider(SEED_ISSUER).expect("the seed's issuer is configured");
    let claims = json!({
        "aud": "111111111111-2222-3333-444444444444",
        "iss": "https://issuer.com",
        "exp": 2091269073,
        "iat": 1601901108,
        "jti": "111222333444555666777888999000",
        "sub": "test",
        "email": "test@users.com"
    });
    let token = seed.sign(claims.as_object().unwrap().clone());
    assert_eq!(Value::Object(common::claims(&token)), claims, "nothing added, nothing replaced");
    let (status, echo) = through_the_proxy(&stack, &token).await;
    assert_eq!(status, 200, "{echo}");
    assert_eq!(echo["client_cert"]["subject"], "CN=test@users.com");
}

/// Refused, and nothing reaches the backend: an issuer nobody configured
/// (signed with a provider key all the same), a key the provider does not
/// publish (rotated out), and a token with the UAA's key claiming the
/// provider's issuer.
#[tokio::test]
async fn untrusted_issuers_and_unpublished_keys_are_refused() {
    let stack = Stack::start().await.unwrap();
    let pki = stack.pki();
    let sign = |kid: &str, iss: &str| {
        let claims = json!({"iss": iss, "sub": "mallory", "email": "mallory@evil.test",
                            "exp": idprop_mocks::tokens::unix_now() + 600});
        pki.signing_key(kid).unwrap().sign_claims(claims.as_object().unwrap())
    };
    for (why, token) in [
        ("untrusted issuer", sign("oidc-1", "https://other-tenant.accounts.idp.test")),
        ("rotated-out key", sign("oidc-2", IAS)),
        ("the UAA's key", sign("key-1", IAS)),
    ] {
        let (status, body) = through_the_proxy(&stack, &token).await;
        assert!((400..500).contains(&status), "{why}: {status} {body}");
    }
    assert!(stack.journal().of("backend").is_empty());
}

/// IAS-to-XSUAA: the jwt-bearer grant of a tenant that trusts the IAS tenant
/// exchanges its user token for a UAA token of the same user (named by
/// `PP-2`: the email, origin `sap.custom`); a tenant that does not trust it
/// refuses. The Destination service takes the IAS user token as
/// `X-user-token` and the exchange happens there.
#[tokio::test]
async fn ias_user_tokens_are_exchanged_where_the_tenant_trusts_the_ias_tenant() {
    let stack = Stack::start().await.unwrap();
    let ias = stack.identity_provider(IAS).unwrap();
    let alice = ias.config().users[0].clone();
    let token = ias.sign(ias.claims(IAS_CLIENT.0, Some(&alice), 600));
    let exchange = |tenant: &str| {
        let (stack, token, url) = (stack.clone(), token.clone(), format!("{}/oauth/token", stack.uaa_url(tenant)));
        async move {
            common::post_form(
                &stack,
                &url,
                Some(common::APP),
                &[("grant_type", idprop_mocks::uaa::JWT_BEARER_GRANT), ("assertion", &token)],
            )
            .await
        }
    };
    let (s, body) = exchange("mytenant").await;
    assert_eq!(s, 200, "{body}");
    let c = common::claims(body["access_token"].as_str().unwrap());
    assert_eq!((c["user_name"].as_str(), c["origin"].as_str()), (Some("alice@example.test"), Some("sap.custom")));
    assert_eq!(c["email"], "alice@example.test");
    assert_eq!(c["user_uuid"], common::claims(&token)["user_uuid"]);
    assert!(c["iss"].as_str().unwrap().contains("mytenant."), "a UAA token of mytenant");
    let (s, body) = exchange("othertenant").await;
    assert_eq!((s, body["error"].as_str()), (400, Some("invalid_grant")), "{body}");

    let (s, a) = common::find_destination(&stack, "mytenant", "jwt-bearer-example", Some(&token)).await;
    assert_eq!(s, 200, "{a}");
    let exchanged = a["authTokens"][0]["value"].as_str().unwrap_or_else(|| panic!("{a}"));
    assert_eq!(common::claims(exchanged)["user_name"], "alice@example.test");
    // An IAS token of a provider mytenant does not trust: refused up front.
    let seed = stack.identity_provider(SEED_ISSUER).unwrap();
    let foreign =
        seed.sign(json!({"sub": "x", "email": "x@y.test", "exp": 4102444800u64}).as_object().unwrap().clone());
    let (s, _) = common::find_destination(&stack, "mytenant", "jwt-bearer-example", Some(&foreign)).await;
    assert_eq!(s, 401);
}

/// f3c1ef4: "If IAS tokens are used, they can only be provided via the
/// SAP-Connectivity-Authentication header": an IAS token as the proxy's
/// `Proxy-Authorization` is refused, and nothing reaches the backend.
#[tokio::test]
async fn an_ias_token_is_no_proxy_authorization() {
    let stack = Stack::start().await.unwrap();
    let ias = stack.identity_provider(IAS).unwrap();
    let token = ias.sign(ias.claims(IAS_CLIENT.0, Some(&ias.config().users[0]), 600));
    let resp = common::onprem_client(&stack)
        .get(format!("{ERP}/echo/who"))
        .header("Proxy-Authorization", format!("Bearer {token}"))
        .send()
        .await
        .unwrap();
    assert!((400..500).contains(&resp.status().as_u16()), "{}", resp.status());
    assert!(stack.journal().of("backend").is_empty());
}

/// The IAS tenant's token endpoint beyond password: the refresh token of a
/// password grant gives the same user again (to the same client only); a
/// jwt-bearer exchange of its own token keeps the user; `resource` joins
/// the audience; a foreign assertion is `invalid_grant`.
#[tokio::test]
async fn the_ias_token_endpoint_refreshes_exchanges_and_takes_a_resource() {
    let stack = Stack::start().await.unwrap();
    let url = format!("{IAS}/oauth2/token");
    let (s, pw) = common::post_form(
        &stack,
        &url,
        Some(IAS_CLIENT),
        &[("grant_type", "password"), ("username", "alice"), ("password", "alice-password")],
    )
    .await;
    assert_eq!(s, 200, "{pw}");
    let rt = pw["refresh_token"].as_str().unwrap();
    let (s, again) =
        common::post_form(&stack, &url, Some(IAS_CLIENT), &[("grant_type", "refresh_token"), ("refresh_token", rt)])
            .await;
    assert_eq!(s, 200, "{again}");
    let first = common::claims(pw["access_token"].as_str().unwrap());
    let second = common::claims(again["access_token"].as_str().unwrap());
    assert_eq!(first["user_uuid"], second["user_uuid"]);
    let (s, _) = common::post_form(
        &stack,
        &url,
        Some(IAS_CLIENT),
        &[("grant_type", "refresh_token"), ("refresh_token", "nope")],
    )
    .await;
    assert_eq!(s, 400);

    let resource = "urn:sap:identity:application:service:id:5328f5c4-fa6b-4d68-811a-2b78c4b2d76a";
    let (s, ex) = common::post_form(
        &stack,
        &url,
        Some(IAS_CLIENT),
        &[
            ("grant_type", idprop_mocks::uaa::JWT_BEARER_GRANT),
            ("assertion", pw["access_token"].as_str().unwrap()),
            ("resource", resource),
        ],
    )
    .await;
    assert_eq!(s, 200, "{ex}");
    let c = common::claims(ex["access_token"].as_str().unwrap());
    assert_eq!(c["user_uuid"], first["user_uuid"]);
    assert_eq!(c["aud"], json!([IAS_CLIENT.0, resource]));
    let uaa_token = stack.uaa().user_token("mytenant", "alice").sign();
    let (s, body) = common::post_form(
        &stack,
        &url,
        Some(IAS_CLIENT),
        &[("grant_type", idprop_mocks::uaa::JWT_BEARER_GRANT), ("assertion", &uaa_token)],
    )
    .await;
    assert_eq!((s, body["error"].as_str()), (400, Some("invalid_grant")), "{body}");
}

/// `CP-6` (313b215): an IAS token for the Connectivity instance (requested
/// with `resource=urn:sap:identity:application:service:id:<instance_guid>`)
/// opens the proxy; the user goes in `SAP-Connectivity-Authentication`. An
/// IAS token without that resource is refused with the reason.
#[tokio::test]
async fn an_ias_proxy_token_for_the_connectivity_instance_opens_the_proxy() {
    let stack = Stack::start().await.unwrap();
    let conn = &stack.vcap_services()["connectivity"][0]["credentials"];
    assert_eq!(conn["token-type"], json!(["xsuaa", "ias"]));
    let resource = format!("urn:sap:identity:application:service:id:{}", conn["instance_guid"].as_str().unwrap());
    let url = format!("{IAS}/oauth2/token");
    let (s, with) = common::post_form(
        &stack,
        &url,
        Some(IAS_CLIENT),
        &[("grant_type", "client_credentials"), ("resource", &resource)],
    )
    .await;
    assert_eq!(s, 200, "{with}");
    let (_, without) = common::post_form(&stack, &url, Some(IAS_CLIENT), &[("grant_type", "client_credentials")]).await;
    let ias = stack.identity_provider(IAS).unwrap();
    let user = ias.sign(ias.claims(IAS_CLIENT.0, Some(&ias.config().users[0]), 600));
    let call = |proxy_token: String| {
        let (stack, user) = (stack.clone(), user.clone());
        async move {
            let resp = common::onprem_client(&stack)
                .get(format!("{ERP}/echo/who"))
                .header("Proxy-Authorization", format!("Bearer {proxy_token}"))
                .header("SAP-Connectivity-Authentication", format!("Bearer {user}"))
                .send()
                .await
                .unwrap();
            (resp.status().as_u16(), resp.text().await.unwrap())
        }
    };
    let (status, body) = call(with["access_token"].as_str().unwrap().to_string()).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("CN=alice@example.test"), "{body}");
    let (status, body) = call(without["access_token"].as_str().unwrap().to_string()).await;
    assert_eq!(status, 407, "{body}");
    assert!(body.contains("resource="), "{body}");
}

/// A destination property vouches for a user token no trusted issuer
/// signed (283cd2d, e3c333f): `x_user_token.jwks_uri` (fetched through the
/// gateway) or `x_user_token.jwks` (inline, base64). Without either, or
/// with keys that did not sign it, the token is refused.
#[tokio::test]
async fn a_destination_vouches_for_a_foreign_user_token_with_its_keys() {
    use base64::Engine as _;
    let stack = common::stack().await;
    // Nobody trusts the seed's issuer by default.
    let seed = stack.identity_provider(SEED_ISSUER).unwrap().clone();
    let now = idprop_mocks::tokens::unix_now();
    let token = seed.sign(serde_json::Map::from_iter([
        ("sub".to_string(), json!("test@users.com")),
        ("email".to_string(), json!("test@users.com")),
        ("exp".to_string(), json!(now + 600)),
        ("iat".to_string(), json!(now)),
    ]));
    let uaa = stack.uaa_url("mytenant");
    let jwt_bearer = |name: &str, extra: (&str, String)| {
        let mut p: std::collections::BTreeMap<String, String> = [
            ("Name", name),
            ("Type", "HTTP"),
            ("URL", "https://api.example.test"),
            ("ProxyType", "Internet"),
            ("Authentication", "OAuth2JWTBearer"),
            ("clientId", common::APP.0),
            ("clientSecret", common::APP.1),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        p.insert("tokenServiceURL".into(), format!("{uaa}/oauth/token"));
        if !extra.0.is_empty() {
            p.insert(extra.0.into(), extra.1);
        }
        idprop_mocks::DestinationEntry::new(idprop_mocks::rules::Destination(p))
    };
    let inline = base64::engine::general_purpose::STANDARD.encode(serde_json::to_vec(&seed.jwks()).unwrap());
    let other_keys = stack.pki().jwks(); // the UAA's keys
    let wrong = base64::engine::general_purpose::STANDARD.encode(serde_json::to_vec(&other_keys).unwrap());
    stack.destinations().add(jwt_bearer("by-uri", ("x_user_token.jwks_uri", seed.config().jwks_uri())));
    stack.destinations().add(jwt_bearer("by-inline", ("x_user_token.jwks", inline)));
    stack.destinations().add(jwt_bearer("by-wrong-keys", ("x_user_token.jwks", wrong)));
    stack.destinations().add(jwt_bearer("no-keys", ("", String::new())));
    for (name, want) in [("by-uri", 200), ("by-inline", 200), ("by-wrong-keys", 401), ("no-keys", 401)] {
        let (s, body) = common::find_destination(&stack, "mytenant", name, Some(&token)).await;
        assert_eq!(s, want, "{name}: {body}");
        if want == 200 {
            // Vouched for, the token is exchanged; the UAA itself does not
            // trust the seed's issuer, so the token entry says why.
            assert!(body["authTokens"][0]["error"].as_str().unwrap().contains("not trusted"), "{name}: {body}");
        } else {
            assert!(body.as_str().unwrap_or_default().contains("X-user-token rejected"), "{name}: {body}");
        }
    }
    // A forged signature is refused even where the destination names keys.
    let forged = format!("{}.{}", &token[..token.rfind('.').unwrap()], "AAAA");
    let (s, _) = common::find_destination(&stack, "mytenant", "by-uri", Some(&forged)).await;
    assert_eq!(s, 401);
}
