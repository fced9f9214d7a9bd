//! The mock UAA over real HTTP and TLS through the gateway: every grant,
//! every client-authentication form, every error.

mod common;

use base64::Engine;
use common::{claims, post_form, stack, APP};
use idprop_mocks::uaa::{ClientAuthMethod, OAuthClient, JWT_BEARER_GRANT};
use idprop_mocks::{Forgery, Stack};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};

fn token_url(stack: &Stack, tenant: &str) -> String {
    format!("{}/oauth/token", stack.uaa_url(tenant))
}

/// Verifies `token` against the JWKS fetched from the tenant's `/token_keys`.
async fn verify_with_published_keys(stack: &Stack, tenant: &str, token: &str) -> serde_json::Value {
    let jwks: jsonwebtoken::jwk::JwkSet =
        common::get_json(stack, &format!("{}/token_keys", stack.uaa_url(tenant))).await;
    let header = jsonwebtoken::decode_header(token).unwrap();
    let jwk = jwks.find(header.kid.as_deref().unwrap()).expect("kid is published");
    let mut v = Validation::new(Algorithm::RS256);
    v.validate_aud = false;
    jsonwebtoken::decode::<serde_json::Value>(token, &DecodingKey::from_jwk(jwk).unwrap(), &v)
        .expect("signature verifies")
        .claims
}

#[tokio::test]
async fn client_credentials_with_basic_gives_a_tenant_token_that_verifies_against_token_keys() {
    let stack = stack().await;
    let (status, body) =
        post_form(&stack, &token_url(&stack, "mytenant"), Some(APP), &[("grant_type", "client_credentials")]).await;
    assert_eq!(status, 200, "{body}");
    let token = body["access_token"].as_str().unwrap();
    let c = verify_with_published_keys(&stack, "mytenant", token).await;
    assert_eq!(c["iss"], "https://mytenant.authentication.eu10.idp.test/oauth/token");
    let zid = stack.uaa().tenant("mytenant").unwrap().zid;
    assert_eq!(c["zid"], zid);
    assert_eq!(c["ext_attr"]["zdn"], "mytenant");
    assert_eq!(c["ext_attr"]["subaccountid"], zid);
    assert_eq!(c["cid"], APP.0);
    assert_eq!(c["client_id"], APP.0);
    assert_eq!(c["azp"], APP.0);
    assert_eq!(c["grant_type"], "client_credentials");
    assert!(c["authorities"].as_array().unwrap().iter().any(|a| a == "uaa.resource"));
    assert!(c["aud"].as_array().unwrap().iter().any(|a| a == APP.0));
    for k in ["exp", "iat", "jti", "scope"] {
        assert!(c.get(k).is_some(), "claim {k} missing");
    }
    let header = jsonwebtoken::decode_header(token).unwrap();
    assert_eq!(header.kid.as_deref(), Some("key-1"));
    assert_eq!(header.jku.as_deref(), Some("https://mytenant.authentication.eu10.idp.test/token_keys"));
    assert_eq!(body["token_type"], "bearer");
    assert!(body["expires_in"].as_u64().unwrap() > 3000);
    // The response names the token's own `jti` and scopes; RFC 6749 §4.4.3:
    // a client-credentials response "SHOULD NOT" include a refresh token.
    assert_eq!(body["jti"], c["jti"]);
    let scopes: Vec<&str> = c["scope"].as_array().unwrap().iter().map(|s| s.as_str().unwrap()).collect();
    assert_eq!(body["scope"], scopes.join(" "));
    assert!(body.get("refresh_token").is_none(), "{body}");
}

#[tokio::test]
async fn tenants_are_told_apart_by_subdomain() {
    let stack = stack().await;
    let (_, a) =
        post_form(&stack, &token_url(&stack, "mytenant"), Some(APP), &[("grant_type", "client_credentials")]).await;
    let (_, b) =
        post_form(&stack, &token_url(&stack, "othertenant"), Some(APP), &[("grant_type", "client_credentials")]).await;
    let (ca, cb) = (claims(a["access_token"].as_str().unwrap()), claims(b["access_token"].as_str().unwrap()));
    assert_ne!(ca["zid"], cb["zid"]);
    assert_eq!(cb["iss"], "https://othertenant.authentication.eu10.idp.test/oauth/token");
    let (status, body) =
        post_form(&stack, &token_url(&stack, "nosuchtenant"), Some(APP), &[("grant_type", "client_credentials")]).await;
    assert_eq!(status, 404);
    assert_eq!(body["error"], "invalid_tenant");
}

#[tokio::test]
async fn client_credentials_in_the_body_are_accepted() {
    let stack = stack().await;
    let (status, body) = post_form(
        &stack,
        &token_url(&stack, "mytenant"),
        None,
        &[("grant_type", "client_credentials"), ("client_id", APP.0), ("client_secret", APP.1)],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(claims(body["access_token"].as_str().unwrap())["cid"], APP.0);
}

#[tokio::test]
async fn a_client_restricted_to_one_placement_refuses_the_other() {
    let stack = stack().await;
    let mut basic_only = OAuthClient::new("basic-only", "s1");
    basic_only.auth_method = ClientAuthMethod::Basic;
    let mut body_only = OAuthClient::new("body-only", "s2");
    body_only.auth_method = ClientAuthMethod::Body;
    stack.uaa().add_client(basic_only);
    stack.uaa().add_client(body_only);
    let url = token_url(&stack, "mytenant");
    let cc = ("grant_type", "client_credentials");
    let (s, b) = post_form(&stack, &url, None, &[cc, ("client_id", "basic-only"), ("client_secret", "s1")]).await;
    assert_eq!((s, b["error"].as_str()), (401, Some("invalid_client")));
    assert_eq!(post_form(&stack, &url, Some(("basic-only", "s1")), &[cc]).await.0, 200);
    let (s, b) = post_form(&stack, &url, Some(("body-only", "s2")), &[cc]).await;
    assert_eq!((s, b["error"].as_str()), (401, Some("invalid_client")));
    assert_eq!(post_form(&stack, &url, None, &[cc, ("client_id", "body-only"), ("client_secret", "s2")]).await.0, 200);
}

#[tokio::test]
async fn wrong_secret_is_401_invalid_client_with_an_oauth_body() {
    let stack = stack().await;
    let (status, body) = post_form(
        &stack,
        &token_url(&stack, "mytenant"),
        Some((APP.0, "wrong")),
        &[("grant_type", "client_credentials")],
    )
    .await;
    assert_eq!(status, 401);
    assert_eq!(body["error"], "invalid_client");
    assert!(body["error_description"].as_str().unwrap().contains(APP.0));
    let (status, body) =
        post_form(&stack, &token_url(&stack, "mytenant"), None, &[("grant_type", "client_credentials")]).await;
    assert_eq!(status, 401);
    assert_eq!(body["error"], "invalid_client");
}

#[tokio::test]
async fn unknown_grant_is_400_unsupported_grant_type() {
    let stack = stack().await;
    let (status, body) =
        post_form(&stack, &token_url(&stack, "mytenant"), Some(APP), &[("grant_type", "urn:example:magic")]).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"], "unsupported_grant_type");
    assert!(body["error_description"].as_str().unwrap().contains("urn:example:magic"));
}

#[tokio::test]
async fn password_grant_issues_a_user_token_and_a_refresh_token() {
    let stack = stack().await;
    let url = token_url(&stack, "mytenant");
    let (status, body) = post_form(
        &stack,
        &url,
        Some(APP),
        &[("grant_type", "password"), ("username", "alice"), ("password", "alice-password")],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let c = verify_with_published_keys(&stack, "mytenant", body["access_token"].as_str().unwrap()).await;
    assert_eq!(c["user_name"], "alice");
    assert_eq!(c["email"], "alice@example.test");
    assert_eq!(c["origin"], "sap.default");
    assert_eq!(c["grant_type"], "password");
    assert!(c["user_uuid"].is_string());
    assert!(c.get("authorities").is_none());
    let refresh = body["refresh_token"].as_str().unwrap().to_string();

    let (status, body) =
        post_form(&stack, &url, Some(APP), &[("grant_type", "password"), ("username", "alice"), ("password", "nope")])
            .await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")));

    let (status, body) =
        post_form(&stack, &url, Some(APP), &[("grant_type", "refresh_token"), ("refresh_token", &refresh)]).await;
    assert_eq!(status, 200, "{body}");
    let c = claims(body["access_token"].as_str().unwrap());
    assert_eq!(c["user_name"], "alice");
    assert_eq!(c["grant_type"], "refresh_token");
    let (status, body) =
        post_form(&stack, &url, Some(APP), &[("grant_type", "refresh_token"), ("refresh_token", "made-up")]).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")));
}

#[tokio::test]
async fn jwt_bearer_exchanges_a_user_token_for_the_requesting_client_keeping_the_user() {
    let stack = stack().await;
    let other = OAuthClient::new("sb-other!t1", "other-secret");
    stack.uaa().add_client(other);
    let user_token = stack.uaa().user_token("mytenant", "alice").claim("email", "alice@corp.test").sign();
    let (status, body) = post_form(
        &stack,
        &token_url(&stack, "mytenant"),
        Some(("sb-other!t1", "other-secret")),
        &[("grant_type", JWT_BEARER_GRANT), ("assertion", &user_token)],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let c = verify_with_published_keys(&stack, "mytenant", body["access_token"].as_str().unwrap()).await;
    assert_eq!(c["user_name"], "alice");
    assert_eq!(c["email"], "alice@corp.test");
    assert_eq!(c["client_id"], "sb-other!t1");
    assert_eq!(c["grant_type"], JWT_BEARER_GRANT);
    assert_eq!(c["sub"], claims(&user_token)["sub"]);
}

/// A user token of one tenant is no assertion at another: XSUAA exchanges a
/// zone's own users' tokens (39d4265 exchanges at the user token's tenant).
#[tokio::test]
async fn jwt_bearer_refuses_an_assertion_of_another_tenant() {
    let stack = stack().await;
    let other_tenants_user = stack.uaa().user_token("othertenant", "alice").sign();
    let (status, body) = post_form(
        &stack,
        &token_url(&stack, "mytenant"),
        Some(idprop_mocks::uaa::APP_CLIENT),
        &[("grant_type", JWT_BEARER_GRANT), ("assertion", &other_tenants_user)],
    )
    .await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")), "{body}");
    assert!(body["error_description"].as_str().unwrap().contains("othertenant"), "{body}");
    let (status, body) = post_form(
        &stack,
        &token_url(&stack, "othertenant"),
        Some(idprop_mocks::uaa::APP_CLIENT),
        &[("grant_type", JWT_BEARER_GRANT), ("assertion", &other_tenants_user)],
    )
    .await;
    assert_eq!(status, 200, "{body}");
}

/// The exchanged token names the assertion's user exactly: a token with
/// only `user_uuid`, or `user_uuid` and `sub`, keeps the principal the
/// Cloud Connector would take from the original (PP-2); nothing is invented
/// for a user the UAA does not know.
#[tokio::test]
async fn jwt_bearer_keeps_the_users_claims_and_invents_none() {
    use idprop_mocks::rules::principal::{principal, UserType};
    let stack = stack().await;
    let exchange = |assertion: String| {
        let stack = &stack;
        async move {
            let (status, body) = post_form(
                stack,
                &token_url(stack, "mytenant"),
                Some(APP),
                &[("grant_type", JWT_BEARER_GRANT), ("assertion", &assertion)],
            )
            .await;
            assert_eq!(status, 200, "{body}");
            claims(body["access_token"].as_str().unwrap())
        }
    };
    let base = || stack.uaa().user_token("mytenant", "alice");
    let only_uuid = base().without("user_name").without("email").without("sub").claim("user_uuid", "u-1").sign();
    let uuid_and_sub =
        base().without("user_name").without("email").claim("user_uuid", "u-2").claim("sub", "s-2").sign();
    let stranger = base().claim("user_name", "nobody-configured").without("email").sign();
    for original in [only_uuid, uuid_and_sub, stranger] {
        let before = claims(&original);
        let after = exchange(original).await;
        assert_eq!(
            principal(&after, UserType::Business).unwrap(),
            principal(&before, UserType::Business).unwrap(),
            "{after:?}"
        );
        for k in ["user_name", "email", "user_uuid", "sub", "given_name", "family_name"] {
            assert_eq!(after.get(k), before.get(k), "{k}: {after:?}");
        }
    }
}

#[tokio::test]
async fn bad_assertions_are_400_invalid_grant() {
    let stack = stack().await;
    let b = stack.uaa().user_token("mytenant", "alice");
    for forgery in
        [Forgery::Expired, Forgery::WrongKey, Forgery::AlgNone, Forgery::Hs256WithPublicKey, Forgery::UnknownKid]
    {
        let (status, body) = post_form(
            &stack,
            &token_url(&stack, "mytenant"),
            Some(APP),
            &[("grant_type", JWT_BEARER_GRANT), ("assertion", &b.forge(forgery))],
        )
        .await;
        assert_eq!(status, 400, "{forgery:?}: {body}");
        assert_eq!(body["error"], "invalid_grant", "{forgery:?}");
    }
    let (status, body) = post_form(
        &stack,
        &token_url(&stack, "mytenant"),
        Some(APP),
        &[("grant_type", JWT_BEARER_GRANT), ("assertion", "garbage")],
    )
    .await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")));
}

#[tokio::test]
async fn openid_configuration_names_the_tenant_endpoints() {
    let stack = stack().await;
    let conf: serde_json::Value =
        common::get_json(&stack, &format!("{}/.well-known/openid-configuration", stack.uaa_url("othertenant"))).await;
    assert_eq!(conf["issuer"], "https://othertenant.authentication.eu10.idp.test/oauth/token");
    assert_eq!(conf["jwks_uri"], "https://othertenant.authentication.eu10.idp.test/token_keys");
    assert_eq!(conf["token_endpoint"], "https://othertenant.authentication.eu10.idp.test/oauth/token");
}

#[tokio::test]
async fn key_rotation_publishes_both_keys_and_signs_with_the_new_one() {
    let stack = stack().await;
    let keys: serde_json::Value = common::get_json(&stack, &format!("{}/token_keys", stack.uaa_url("mytenant"))).await;
    let kids: Vec<&str> = keys["keys"].as_array().unwrap().iter().map(|k| k["kid"].as_str().unwrap()).collect();
    assert_eq!(kids, ["key-1", "key-2"]);
    assert!(keys["keys"][0]["value"].as_str().unwrap().contains("BEGIN PUBLIC KEY"));
    stack.uaa().factory().set_active_kid("key-2").unwrap();
    let (_, body) =
        post_form(&stack, &token_url(&stack, "mytenant"), Some(APP), &[("grant_type", "client_credentials")]).await;
    let token = body["access_token"].as_str().unwrap();
    assert_eq!(jsonwebtoken::decode_header(token).unwrap().kid.as_deref(), Some("key-2"));
    verify_with_published_keys(&stack, "mytenant", token).await;
    assert!(stack.uaa().factory().set_active_kid("rogue").is_err());
}

#[tokio::test]
async fn minted_tokens_take_arbitrary_claims_and_forgeries_fail_validation() {
    let stack = stack().await;
    let good = stack.uaa().user_token("mytenant", "carol").claim("mail", "c@x.test").without("email").sign();
    let c = stack.uaa().validate(&good).expect("a minted token validates").claims;
    assert_eq!(c["mail"], "c@x.test");
    assert!(c.get("email").is_none());
    assert_eq!(c["user_name"], "carol");
    let b = stack.uaa().user_token("mytenant", "carol");
    for f in Forgery::ALL {
        let forged = b.forge(f);
        let verdict = stack.uaa().validate(&forged);
        match f {
            // Well-signed: what is wrong with it (no principal) is for the
            // principal mapper to notice.
            Forgery::MissingPrincipalClaims => assert!(verdict.is_ok(), "{f:?}"),
            _ => assert!(verdict.is_err(), "{f:?} validated"),
        }
    }
}

#[tokio::test]
async fn the_bare_uaa_domain_takes_the_zone_from_x_zid() {
    let stack = stack().await;
    let zid = stack.uaa().tenant("othertenant").unwrap().zid;
    let url = "https://authentication.eu10.idp.test/oauth/token";
    let resp = stack
        .http_client()
        .post(url)
        .basic_auth(APP.0, Some(APP.1))
        .header("x-zid", &zid)
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(claims(body["access_token"].as_str().unwrap())["zid"], zid.as_str());
    let (status, body) = post_form(&stack, url, Some(APP), &[("grant_type", "client_credentials")]).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_request")));
}

/// A host with a trailing dot is the same name (RFC 1034 §3.1): its own
/// tenant, never a fallback to the first one; a name the UAA does not serve
/// is refused. (Sent to the UAA's router with the `Host` a client wrote.)
#[tokio::test]
async fn a_trailing_dot_names_the_same_tenant_and_unknown_names_are_refused() {
    use tower::ServiceExt;
    let stack = stack().await;
    let domain = stack.uaa().domain();
    let ask = |host: String| {
        let router = stack.uaa().router();
        async move {
            let basic = base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", APP.0, APP.1));
            let req = axum::http::Request::post("/oauth/token?grant_type=client_credentials")
                .header("host", host)
                .header("authorization", format!("Basic {basic}"))
                .body(axum::body::Body::empty())
                .unwrap();
            let resp = router.oneshot(req).await.unwrap();
            let status = resp.status().as_u16();
            let body = axum::body::to_bytes(resp.into_body(), 1 << 20).await.unwrap();
            (status, serde_json::from_slice::<serde_json::Value>(&body).unwrap())
        }
    };
    let (s, b) = ask(format!("othertenant.{domain}.")).await;
    assert_eq!(s, 200, "{b}");
    let c = claims(b["access_token"].as_str().unwrap());
    assert_eq!(c["zid"], stack.uaa().tenant("othertenant").unwrap().zid.as_str());
    let (s, b) = ask("evil.example.test".into()).await;
    assert_eq!((s, b["error"].as_str()), (404, Some("invalid_tenant")), "{b}");
    let (s, b) = ask(format!("nosuchtenant.{domain}")).await;
    assert_eq!((s, b["error"].as_str()), (404, Some("invalid_tenant")), "{b}");
}

/// RFC 6749 §3.2: a token request body of another type is refused, not read.
#[tokio::test]
async fn a_token_request_body_must_be_a_form() {
    let stack = stack().await;
    let url = token_url(&stack, "mytenant");
    let resp = stack
        .http_client()
        .post(&url)
        .basic_auth(APP.0, Some(APP.1))
        .header("content-type", "application/json")
        .body("grant_type=client_credentials")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 400);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["error"], "invalid_request");
    let ok = stack
        .http_client()
        .post(&url)
        .basic_auth(APP.0, Some(APP.1))
        .header("content-type", "application/x-www-form-urlencoded; charset=utf-8")
        .body("grant_type=client_credentials")
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status().as_u16(), 200);
}
