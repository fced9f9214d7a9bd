//! Unit tests of the pure rules, named by rule id.

use std::time::Duration;

use super::auth_type::AuthenticationType as A;
use super::token_request::ProxyType;
use super::token_url::{resolve, UrlType};
use super::*;

fn d<const N: usize>(pairs: [(&str, &str); N]) -> Destination {
    Destination::from(pairs)
}

fn fetch(p: Result<Plan, RuleError>) -> TokenRequest {
    match p.expect("plan") {
        Plan::Fetch(r) => r,
        other => panic!("expected a token request, got {other:?}"),
    }
}

fn base() -> Destination {
    d([
        ("Name", "n"),
        ("Type", "HTTP"),
        ("URL", "http://x.test"),
        ("ProxyType", "Internet"),
        ("Authentication", "OAuth2ClientCredentials"),
        ("clientId", "cid"),
        ("clientSecret", "sec"),
        ("tokenServiceURL", "https://auth.test/oauth/token"),
    ])
}

// The four examples of the seed, verbatim (8634e21).
#[test]
fn tu_4_common_without_placeholder_inserts_the_subdomain() {
    assert_eq!(
        resolve("https://authentication.us10.hana.ondemand.com/oauth/token", UrlType::Common, "mytenant").unwrap(),
        "https://mytenant.authentication.us10.hana.ondemand.com/oauth/token"
    );
}

#[test]
fn tu_2_common_placeholder_in_host_as_first_label() {
    assert_eq!(
        resolve("https://{tenant}.authentication.us10.hana.ondemand.com/oauth/token", UrlType::Common, "mytenant")
            .unwrap(),
        "https://mytenant.authentication.us10.hana.ondemand.com/oauth/token"
    );
}

#[test]
fn tu_3_common_placeholder_in_path() {
    assert_eq!(
        resolve("https://authentication.myauthserver.com/tenant/{tenant}/oauth/token", UrlType::Common, "mytenant")
            .unwrap(),
        "https://authentication.myauthserver.com/tenant/mytenant/oauth/token"
    );
}

#[test]
fn tu_2_common_placeholder_in_the_middle_of_the_host() {
    assert_eq!(
        resolve("https://oauth.{tenant}.myauthserver.com/token", UrlType::Common, "mytenant").unwrap(),
        "https://oauth.mytenant.myauthserver.com/token"
    );
}

#[test]
fn tu_1_dedicated_and_absent_type_use_the_url_as_is() {
    for t in [None, Some("Dedicated"), Some("dedicated")] {
        let ty = UrlType::parse(t).unwrap();
        assert_eq!(resolve("https://{tenant}.auth.test/t", ty, "mytenant").unwrap(), "https://{tenant}.auth.test/t");
        assert_eq!(resolve("https://auth.test/t", ty, "mytenant").unwrap(), "https://auth.test/t");
    }
    assert!(UrlType::parse(Some("Shared")).is_err());
}

#[test]
fn ca_1_default_puts_client_credentials_in_the_body_only() {
    let r = fetch(plan(&base(), "t", None));
    assert_eq!(r.basic, None);
    assert_eq!(
        r.form,
        vec![
            ("grant_type".into(), "client_credentials".into()),
            ("client_id".into(), "cid".into()),
            ("client_secret".into(), "sec".into())
        ]
    );
    let r = fetch(plan(&base().with("tokenService.addClientCredentialsInBody", "true"), "t", None));
    assert_eq!(r.basic, None);
}

#[test]
fn ca_2_false_uses_basic_with_the_client_and_nothing_in_the_body() {
    let r = fetch(plan(&base().with("tokenService.addClientCredentialsInBody", "false"), "t", None));
    assert_eq!(r.basic, Some(("cid".into(), "sec".into())));
    assert!(r.form.iter().all(|(k, _)| k != "client_id" && k != "client_secret"));
}

#[test]
fn ca_3_false_with_token_service_user_prefers_the_user() {
    let dd = base()
        .with("tokenService.addClientCredentialsInBody", "FALSE")
        .with("tokenServiceUser", "u")
        .with("tokenServicePassword", "p");
    let r = fetch(plan(&dd, "t", None));
    assert_eq!(r.basic, Some(("u".into(), "p".into())));
    assert!(r.form.iter().all(|(k, _)| k != "client_secret"));
}

#[test]
fn ca_4_default_with_token_service_user_sends_both() {
    let r = fetch(plan(&base().with("tokenServiceUser", "u").with("tokenServicePassword", "p"), "t", None));
    assert_eq!(r.basic, Some(("u".into(), "p".into())));
    assert!(r.form.contains(&("client_secret".into(), "sec".into())));
}

#[test]
fn ca_8_grant_is_client_credentials_for_both_technical_types() {
    let r = fetch(plan(&base(), "t", None));
    assert_eq!(r.form[0].1, "client_credentials");
    let tu = base().with("Authentication", "OAuth2TechnicalUserPropagation").with("ProxyType", "OnPremise");
    let r = fetch(plan(&tu, "t", None));
    assert_eq!(r.form[0].1, "client_credentials");
}

#[test]
fn ca_9_scope_is_sent_unchanged_only_when_set() {
    let r = fetch(plan(&base().with("scope", "read  write:all"), "t", None));
    assert!(r.form.contains(&("scope".into(), "read  write:all".into())));
    assert!(fetch(plan(&base(), "t", None)).form.iter().all(|(k, _)| k != "scope"));
}

#[test]
fn to_1_to_5_timeouts_clamp_to_ten_seconds_outside_their_range() {
    use timeouts::clamp;
    let s = Duration::from_secs;
    assert_eq!(clamp(Some("5"), 60), s(5));
    assert_eq!(clamp(Some("60"), 60), s(60));
    assert_eq!(clamp(Some("61"), 60), s(10), "TO-2: not 60");
    assert_eq!(clamp(Some("600"), 600), s(600));
    assert_eq!(clamp(Some("601"), 600), s(10), "TO-4: not 600");
    for odd in [None, Some("0"), Some("-3"), Some("abc"), Some("2.5"), Some(""), Some("99999999999999999999")] {
        assert_eq!(clamp(odd, 60), s(10), "TO-5 {odd:?}");
    }
    assert_eq!(clamp(Some(" +7 "), 60), s(7));
    let r = fetch(plan(
        &base()
            .with("tokenServiceURL.ConnectionTimeoutInSeconds", "3")
            .with("tokenServiceURL.SocketReadTimeoutInSeconds", "700"),
        "t",
        None,
    ));
    assert_eq!(r.timeouts, timeouts::Timeouts { connect: s(3), read: s(10) });
}

#[test]
fn px_1_to_px_4_prefixes_are_stripped_and_kept_apart() {
    let dd = base()
        .with("tokenServiceURL.headers.X-Custom", "h v")
        .with("tokenServiceURL.queries.resource", "urn:a b")
        .with("tokenService.body.audience", "aud")
        .with("tokenService.body.grant_type", "password")
        .with("URL.headers.X-Target", "t")
        .with("URL.queries.sap-client", "100");
    let r = fetch(plan(&dd, "t", None));
    assert_eq!(r.headers, vec![("X-Custom".into(), "h v".into())]);
    assert_eq!(r.url, "https://auth.test/oauth/token?resource=urn%3Aa+b");
    assert!(r.form.contains(&("audience".into(), "aud".into())));
    assert_eq!(r.form.iter().filter(|(k, _)| k == "grant_type").count(), 1, "grant not overridden");
    assert!(r.headers.iter().all(|(k, _)| k != "X-Target"));
    assert!(!r.url.contains("sap-client"));
    let p = prefixes::Prefixed::of(&dd);
    assert_eq!(p.url_headers, vec![("X-Target".into(), "t".into())]);
    assert_eq!(p.url_queries, vec![("sap-client".into(), "100".into())]);
}

#[test]
fn fd_5_technical_user_propagation_needs_on_premise() {
    let tu = base().with("Authentication", "OAuth2TechnicalUserPropagation");
    let err = plan(&tu, "t", None).unwrap_err();
    assert!(err.to_string().contains("OnPremise"), "{err}");
}

#[test]
fn fd_6_and_tu_6_token_proxy_type() {
    let tu = base()
        .with("Authentication", "OAuth2TechnicalUserPropagation")
        .with("ProxyType", "OnPremise")
        .with("tokenServiceURL.ProxyType", "OnPremise");
    assert_eq!(fetch(plan(&tu, "t", None)).proxy_type, ProxyType::Internet);
    let cc = base().with("ProxyType", "OnPremise");
    assert_eq!(fetch(plan(&cc, "t", None)).proxy_type, ProxyType::OnPremise);
    assert_eq!(
        fetch(plan(&cc.clone().with("tokenServiceURL.ProxyType", "Internet"), "t", None)).proxy_type,
        ProxyType::Internet
    );
    assert!(plan(&cc.with("tokenServiceURL.ProxyType", "Intranet"), "t", None).is_err());
}

#[test]
fn at_1_jwt_bearer_sends_the_user_token_as_assertion() {
    for ty in ["OAuth2JWTBearer", "OAuth2UserTokenExchange"] {
        let r = fetch(plan(&base().with("Authentication", ty), "t", Some("user.jwt.token")));
        assert_eq!(r.form[0], ("grant_type".into(), "urn:ietf:params:oauth:grant-type:jwt-bearer".into()));
        assert!(r.form.contains(&("assertion".into(), "user.jwt.token".into())));
    }
}

#[test]
fn at_5_user_based_types_without_user_token_are_errors() {
    for ty in ["OAuth2JWTBearer", "OAuth2UserTokenExchange"] {
        for tok in [None, Some(""), Some("  ")] {
            let err = plan(&base().with("Authentication", ty), "t", tok).unwrap_err();
            assert!(matches!(err, RuleError::NeedsUserToken(_)), "{err}");
        }
    }
}

#[test]
fn at_2_password_grant_carries_user_and_password() {
    let r = fetch(plan(
        &base().with("Authentication", "OAuth2Password").with("User", "u1").with("Password", "p1"),
        "t",
        None,
    ));
    assert_eq!(r.form[0].1, "password");
    assert!(r.form.contains(&("username".into(), "u1".into())));
    assert!(r.form.contains(&("password".into(), "p1".into())));
    assert!(plan(&base().with("Authentication", "OAuth2Password"), "t", None).is_err());
}

#[test]
fn at_4_and_fd_3_types_without_retrieval() {
    assert_eq!(plan(&base().with("Authentication", "PrincipalPropagation"), "t", None).unwrap(), Plan::NoToken);
    assert_eq!(plan(&base().with("Authentication", "NoAuthentication"), "t", None).unwrap(), Plan::NoToken);
    let Plan::Static(tok) = plan(
        &base().with("Authentication", "BasicAuthentication").with("User", "test").with("Password", "pass12345"),
        "t",
        None,
    )
    .unwrap() else {
        panic!()
    };
    // The response-structure page's own example.
    assert_eq!(tok.http_header.unwrap().value, "Basic dGVzdDpwYXNzMTIzNDU=");
    assert_eq!(tok.kind, "Basic");
}

/// `SB-2`: an `OAuth2SAMLBearerAssertion` destination plans a saml2-bearer
/// request with `clientKey` as the client and the assertion's contents
/// from c69ea6a's properties and 3cb7b81's user id; required properties
/// are named when missing; `ClientProvided` passes the caller's assertion.
#[test]
fn saml_bearer_plans_the_assertion_and_the_grant() {
    use super::token_request::SamlEncoding;
    let user = {
        use base64::Engine;
        let b = |v: serde_json::Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
        format!(
            "{}.{}.sig",
            b(serde_json::json!({"alg": "RS256"})),
            b(serde_json::json!({"user_name": "alice", "email": "alice@x.test"}))
        )
    };
    let saml = d([
        ("Name", "s"),
        ("Type", "HTTP"),
        ("URL", "http://x.test"),
        ("Authentication", "OAuth2SAMLBearerAssertion"),
        ("clientKey", "ck"),
        ("tokenServiceUser", "ck"),
        ("tokenServicePassword", "pw"),
        ("audience", "aud.test"),
        ("authnContextClassRef", "urn:ctx"),
        ("tokenServiceURL", "https://auth.test/oauth/token"),
    ]);
    let Plan::Fetch(tr) = plan(&saml, "t", Some(&user)).unwrap() else { panic!("a token request") };
    assert_eq!(tr.form[0], ("grant_type".into(), "urn:ietf:params:oauth:grant-type:saml2-bearer".into()));
    assert!(tr.form.contains(&("client_id".into(), "ck".into())));
    assert_eq!(tr.basic, Some(("ck".into(), "pw".into())));
    let s = tr.saml.expect("an assertion to generate");
    assert_eq!((s.name_id.as_str(), s.audience.as_str()), ("alice", "aud.test"));
    assert_eq!(s.recipient, "https://auth.test/oauth/token");
    assert_eq!(s.encoding, SamlEncoding::Base64Url);
    let by_mail = saml.clone().with("nameIdFormat", "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress");
    let Plan::Fetch(tr) = plan(&by_mail.with("assertionRecipient", "https://r.test"), "t", Some(&user)).unwrap() else {
        panic!()
    };
    let s = tr.saml.unwrap();
    assert_eq!((s.name_id.as_str(), s.recipient.as_str()), ("alice@x.test", "https://r.test"));
    for missing in ["audience", "clientKey", "authnContextClassRef"] {
        let mut without = saml.clone();
        without.0.remove(missing);
        assert_eq!(plan(&without, "t", Some(&user)).unwrap_err(), RuleError::Missing(missing));
    }
    assert_eq!(plan(&saml, "t", None).unwrap_err(), RuleError::NeedsUserToken("OAuth2SAMLBearerAssertion"));
    // ClientProvided: the caller's X-samlAssertion goes as is; no user token needed.
    let provided = saml.clone().with("SAMLAssertionProvider", "ClientProvided");
    assert_eq!(plan(&provided, "t", Some(&user)).unwrap_err(), RuleError::MissingHeader("X-samlAssertion"));
    let tokens = super::token_request::RequestTokens { saml_assertion: Some("PHNhbWw"), ..Default::default() };
    let Plan::Fetch(tr) = super::plan_for(&provided, "t", &tokens, &super::Readings::IDPROP).unwrap() else { panic!() };
    assert!(tr.form.contains(&("assertion".into(), "PHNhbWw".into())) && tr.saml.is_none());
    assert!(plan(&saml.with("samlAssertionEncoding", "hex"), "t", Some(&user)).is_err());
}

#[test]
fn unknown_authentication_types_are_named() {
    assert!(plan(&base().with("Authentication", "OAuth2Magic"), "t", None)
        .unwrap_err()
        .to_string()
        .contains("OAuth2Magic"));
}

#[test]
fn fd_2_fd_3_auth_token_shapes() {
    let t = AuthToken::bearer(A::OAuth2TechnicalUserPropagation, "abc", Some(3599), None);
    assert_eq!(t.http_header.as_ref().unwrap().key, "SAP-Connectivity-Technical-Authentication");
    assert_eq!(t.http_header.as_ref().unwrap().value, "Bearer abc");
    assert_eq!(t.expires_in.as_deref(), Some("3599"));
    let t = AuthToken::bearer(A::OAuth2ClientCredentials, "abc", None, None);
    assert_eq!(t.http_header.unwrap().key, "Authorization");
    let e = serde_json::to_value(AuthToken::error(crate::rules::ErrorCode::Other, "boom")).unwrap();
    assert_eq!(e, serde_json::json!({"type": "", "value": "", "error": "boom"}));
}

#[test]
fn ch_1_ch_2_cache_lifetime_never_reaches_expiry() {
    assert_eq!(cache::cacheable_for(Some(3600)), Some(Duration::from_secs(3540)));
    assert_eq!(cache::cacheable_for(Some(2)), Some(Duration::from_millis(1800)));
    assert_eq!(cache::cacheable_for(Some(0)), None);
    assert_eq!(cache::cacheable_for(None), None);
}

#[test]
fn ch_3_cache_keys_differ_by_tenant_and_user() {
    let a = fetch(plan(&base(), "t1", None)).cache_key;
    let b = fetch(plan(&base(), "t2", None)).cache_key;
    assert_ne!(a, b);
    let j = base().with("Authentication", "OAuth2JWTBearer");
    let u1 = fetch(plan(&j, "t", Some("a.b.c"))).cache_key;
    let u2 = fetch(plan(&j, "t", Some("a.b.d"))).cache_key;
    assert_ne!(u1, u2);
}

mod principal_rules {
    use super::super::principal::{principal, UserType};
    use super::super::principal_mapping::{map_claims, single};
    use super::super::subject::{Condition, Operator, SubjectRule};
    use serde_json::{json, Map, Value};

    fn claims(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn pp_4_seed_sample_token_gives_its_email() {
        let c = claims(
            json!({"aud": "111111111111-2222-3333-444444444444", "iss": "https://issuer.com", "exp": 2091269073, "iat": 1601901108, "jti": "111222333444555666777888999000", "sub": "test", "email": "test@users.com"}),
        );
        assert_eq!(principal(&c, UserType::Business).unwrap(), "test@users.com");
        assert_eq!(map_claims(&c, &[]).unwrap().subject, "CN=test@users.com");
    }

    #[test]
    fn pp_2_business_priority_order() {
        let all = json!({"user_name": "u", "email": "e", "mail": "m", "user_uuid": "id", "sub": "s"});
        let order = ["user_name", "email", "mail", "user_uuid", "sub"];
        for (i, claim) in order.iter().enumerate() {
            let mut c = claims(all.clone());
            for drop in &order[..i] {
                c.remove(*drop);
            }
            let expect = all[*claim].as_str().unwrap();
            assert_eq!(principal(&c, UserType::Business).unwrap(), expect, "{claim}");
        }
    }

    #[test]
    fn pp_3_technical_priority_and_classification() {
        let c =
            claims(json!({"grant_type": "client_credentials", "sub": "s", "cid": "c", "client_id": "ci", "azp": "a"}));
        assert_eq!(UserType::of(&c), UserType::Technical);
        assert_eq!(map_claims(&c, &[]).unwrap().principal, "ci");
        let c = claims(json!({"grant_type": "client_credentials", "azp": "a"}));
        assert_eq!(principal(&c, UserType::Technical).unwrap(), "a");
    }

    #[test]
    fn tv_4_no_or_bad_principal_claims_are_refused() {
        assert!(map_claims(&claims(json!({"iss": "x"})), &[]).unwrap_err().contains("no principal"));
        for bad in [json!(42), json!(["a"]), json!({"a": 1}), json!("")] {
            let err = map_claims(&claims(json!({"user_name": bad, "email": "e@x"})), &[]).unwrap_err();
            assert!(err.contains("user_name"), "{err}");
        }
        assert_eq!(map_claims(&claims(json!({"user_name": null, "email": "e@x"})), &[]).unwrap().principal, "e@x");
    }

    #[test]
    fn sp_2_sp_4_variables_and_escaping() {
        let c = claims(
            json!({"user_name": "a,O=evil", "email": "x@y.test", "given_name": "Ann", "family_name": "Lee", "user_uuid": "${name}", "department": "R+D"}),
        );
        let m = map_claims(
            &c,
            &single("CN=${name},EMAIL=${mail},OU=${department},L=${user_uuid},O=ACME ${display_name},C=DE"),
        )
        .unwrap();
        assert_eq!(
            m.attributes,
            vec![
                ("CN".into(), "a,O=evil".into()),
                ("EMAIL".into(), "x@y.test".into()),
                ("OU".into(), "R+D".into()),
                ("L".into(), "${name}".into()),
                ("O".into(), "ACME Ann Lee".into()),
                ("C".into(), "DE".into())
            ]
        );
        assert_eq!(m.subject, "CN=a\\,O=evil,EMAIL=x@y.test,OU=R\\+D,L=${name},O=ACME Ann Lee,C=DE");
        assert!(map_claims(&c, &single("CN=${nope}")).unwrap_err().contains("${nope}"));
        assert!(map_claims(&c, &single("X=${name}")).unwrap_err().contains("not one of"));
    }

    #[test]
    fn sp_5_xs_user_attributes_shadow_and_cp_reads_the_root() {
        let c = claims(json!({"user_name": "u", "userId": "root", "xs.user.attributes": {"userId": ["attr"]}}));
        let m = map_claims(&c, &single("CN=${userId},OU=${cp.userId}")).unwrap();
        assert_eq!(m.subject, "CN=attr,OU=root");
    }

    #[test]
    fn sp_3_first_matching_rule_wins_and_the_last_is_default() {
        let rules = vec![
            SubjectRule {
                condition: Some(Condition {
                    variable: "${user_type}".into(),
                    operator: Operator::Is("Technical".into()),
                }),
                pattern: "CN=tech-${name}".into(),
            },
            SubjectRule {
                condition: Some(Condition { variable: "email".into(), operator: Operator::Exists }),
                pattern: "CN=${email},O=mail".into(),
            },
            SubjectRule {
                condition: Some(Condition { variable: "origin".into(), operator: Operator::IsNot("ldap".into()) }),
                pattern: "CN=${name},O=not-ldap".into(),
            },
            SubjectRule { condition: None, pattern: "CN=${name},O=default".into() },
        ];
        let m = |v: Value| map_claims(&claims(v), &rules).unwrap().subject;
        assert_eq!(m(json!({"grant_type": "client_credentials", "client_id": "c1"})), "CN=tech-c1");
        assert_eq!(m(json!({"user_name": "u", "email": "e@x"})), "CN=e@x,O=mail");
        assert_eq!(m(json!({"user_name": "u", "origin": "idp"})), "CN=u,O=not-ldap");
        assert_eq!(m(json!({"user_name": "u", "origin": "ldap"})), "CN=u,O=default");
        assert_eq!(m(json!({"user_name": "u"})), "CN=u,O=default", "is not needs presence");
        let dne = vec![SubjectRule {
            condition: Some(Condition { variable: "email".into(), operator: Operator::DoesNotExist }),
            pattern: "CN=${name},O=no-mail".into(),
        }];
        assert_eq!(map_claims(&claims(json!({"user_name": "u"})), &dne).unwrap().subject, "CN=u,O=no-mail");
        assert_eq!(
            map_claims(&claims(json!({"user_name": "u", "email": "e"})), &dne).unwrap().subject,
            "CN=u",
            "SP-1 default row"
        );
    }
}

/// `rules` is a leaf: it decides, it does not reach into the services,
/// the tokens or HTTP. A file here may name other `rules` modules only.
#[test]
fn rules_imports_nothing_else_of_the_crate() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/rules");
    let mut offending = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.file_name().is_some_and(|n| n == "tests.rs") {
            continue; // this file's own strings
        }
        let text = std::fs::read_to_string(&path).unwrap();
        for (n, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            let mut rest = code;
            while let Some(i) = rest.find("crate::") {
                if !rest[i + 7..].starts_with("rules") {
                    offending.push(format!("{}:{}: {}", path.display(), n + 1, line.trim()));
                }
                rest = &rest[i + 7..];
            }
        }
    }
    assert!(offending.is_empty(), "rules must stay a leaf:\n{}", offending.join("\n"));
}

/// `CA-6`: with a key store the certificate replaces the secret, in the
/// body and in Basic alike; a `tokenServiceUser` stays.
#[test]
fn ca_6_a_key_store_replaces_the_client_secret() {
    let with_store = base().with("tokenService.KeyStoreLocation", "client.p12");
    let r = fetch(plan(&with_store, "t", None));
    assert!(r.form.iter().all(|(k, _)| k != "client_secret"), "{:?}", r.form);
    assert!(r.form.iter().any(|(k, _)| k == "client_id"));
    assert!(r.basic.is_none());
    let basic = with_store.clone().with("tokenService.addClientCredentialsInBody", "false");
    let r = fetch(plan(&basic, "t", None));
    assert!(r.basic.is_none() && r.form.iter().any(|(k, _)| k == "client_id"), "{r:?}");
    let without = fetch(plan(&base(), "t", None));
    assert!(without.form.iter().any(|(k, _)| k == "client_secret"));
}
