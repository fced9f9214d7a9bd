//! The token endpoint and its grants: client authentication, then
//! `client_credentials`, `password`, jwt-bearer (keeping the assertion's
//! user) and `refresh_token` (bounded in bytes and time).

use super::*;
use crate::tokens::random_hex;

#[derive(Clone)]
struct Grant {
    tenant: Tenant,
    client_id: String,
    user: User,
    /// Claims that replace the user's (a jwt-bearer assertion's user).
    extra: Map<String, Value>,
    /// User claims the token must not carry: an exchanged token names the
    /// assertion's user exactly, nothing invented.
    without: Vec<&'static str>,
}

/// The claims that say who a user is.
const USER_CLAIMS: [&str; 10] = [
    "user_name",
    "email",
    "user_uuid",
    "sub",
    "user_id",
    "origin",
    "given_name",
    "family_name",
    "mail",
    "xs.user.attributes",
];

/// How long a refresh token is honoured (XSUAA's default refresh-token
/// validity is 30 days; a test stack needs less, and memory stays bounded).
pub const REFRESH_TOKEN_VALIDITY: std::time::Duration = std::time::Duration::from_secs(12 * 3600);
/// Bytes the refresh tokens may hold together; the oldest go first.
pub const MAX_REFRESH_BYTES: usize = 16 * 1024 * 1024;

/// Refresh tokens issued so far, evicted by expiry and by a byte budget.
#[derive(Default)]
pub(super) struct RefreshTokens {
    grants: HashMap<String, (Grant, std::time::Instant, usize)>,
    /// Issue order, for eviction.
    order: std::collections::VecDeque<String>,
    bytes: usize,
}

impl RefreshTokens {
    fn insert(&mut self, token: String, grant: Grant) {
        let weight = 512 + token.len() + serde_json::to_string(&grant.extra).map_or(0, |s| s.len());
        let now = std::time::Instant::now();
        self.grants.insert(token.clone(), (grant, now + REFRESH_TOKEN_VALIDITY, weight));
        self.order.push_back(token);
        self.bytes += weight;
        while let Some(oldest) = self.order.front() {
            let expired = self.grants.get(oldest).is_none_or(|(_, exp, _)| *exp <= now);
            if !expired && self.bytes <= MAX_REFRESH_BYTES {
                break;
            }
            let oldest = self.order.pop_front().expect("front exists");
            if let Some((_, _, w)) = self.grants.remove(&oldest) {
                self.bytes -= w;
            }
        }
    }

    fn get(&self, token: &str) -> Option<&Grant> {
        self.grants.get(token).filter(|(_, exp, _)| *exp > std::time::Instant::now()).map(|(g, _, _)| g)
    }

    pub(super) fn len(&self) -> usize {
        self.grants.len()
    }
}

/// `POST /oauth/token`: authenticate the client, then the grant.
pub(super) async fn token_endpoint(State(uaa): State<MockUaa>, req: Request) -> Response<Body> {
    let tenant = match uaa.tenant_of(&req) {
        Ok(t) => t,
        Err(e) => return axum::response::IntoResponse::into_response(e),
    };
    let body = req.extensions().get::<BufferedBody>().map(|b| b.0.clone()).unwrap_or_default();
    // RFC 6749 §3.2: the token endpoint takes parameters "using the
    // application/x-www-form-urlencoded format"; a body of any other type is
    // not read as parameters but refused.
    let form = req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|ct| {
        ct.split(';').next().is_some_and(|m| m.trim().eq_ignore_ascii_case("application/x-www-form-urlencoded"))
    });
    if !body.is_empty() && !form {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "the token request body must be application/x-www-form-urlencoded (RFC 6749 §3.2)",
        );
    }
    // Parameters may come in the query (the Neo style) or the form body.
    let mut params: Vec<(String, String)> =
        req.uri().query().map(|q| crate::http::decode_pairs(q.as_bytes())).unwrap_or_default();
    params.extend(crate::http::decode_pairs(&body));
    let param = |k: &str| params.iter().rev().find(|(n, _)| n == k).map(|(_, v)| v.clone());

    let basic = req.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(parse_basic);
    let body_creds = param("client_id").map(|id| (id, param("client_secret").unwrap_or_default()));
    let (client_id, secret, via_basic) = match (basic, body_creds) {
        (Some((u, p)), _) => (pct_decode(&u), pct_decode(&p), true),
        (None, Some((u, p))) => (u, p, false),
        (None, None) => {
            return oauth_error(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                "no client authentication (neither Basic nor client_id/client_secret in the body)",
            )
        }
    };
    let Some(client) = uaa.client(&client_id) else {
        return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", &format!("unknown client {client_id:?}"));
    };
    if !client.secret_matches(&secret) {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            &format!("bad credentials for client {client_id:?}"),
        );
    }
    match (client.auth_method, via_basic) {
        (ClientAuthMethod::Body, true) => {
            return oauth_error(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                "this client must send its credentials in the body, not Basic",
            )
        }
        (ClientAuthMethod::Basic, false) => {
            return oauth_error(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                "this client must authenticate with HTTP Basic",
            )
        }
        _ => {}
    }
    let validity = uaa.config().token_validity;
    let Some(grant_type) = param("grant_type") else {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_request", "missing grant_type");
    };
    let issued = match grant_type.as_str() {
        "client_credentials" => {
            let client = uaa.effective_client(client);
            let t = uaa.factory().client_token(&tenant, &client, validity);
            let jti = t.claims().get("jti").cloned().unwrap_or(Value::Null);
            return token_response(&t.sign(), jti, validity, &client.authorities, None);
        }
        "password" => {
            let (Some(username), Some(password)) = (param("username"), param("password")) else {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    "password grant needs username and password",
                );
            };
            match uaa.user(&username) {
                Some(u) if u.password == password => Grant {
                    tenant: tenant.clone(),
                    client_id: client.client_id.clone(),
                    user: u,
                    extra: Map::new(),
                    without: vec![],
                },
                _ => {
                    return oauth_error(
                        StatusCode::BAD_REQUEST,
                        "invalid_grant",
                        &format!("bad credentials for user {username:?}"),
                    )
                }
            }
        }
        JWT_BEARER_GRANT => {
            let Some(assertion) = param("assertion") else {
                return oauth_error(StatusCode::BAD_REQUEST, "invalid_request", "jwt-bearer grant needs an assertion");
            };
            match user_from_assertion(&uaa, &assertion, &tenant, &client.client_id) {
                Ok(grant) => grant,
                Err(reason) => return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", &reason),
            }
        }
        SAML_BEARER_GRANT => {
            let Some(assertion) = param("assertion") else {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    "saml2-bearer grant needs an assertion",
                );
            };
            match user_from_saml(&uaa, &assertion, &tenant, &client.client_id) {
                Ok(grant) => grant,
                Err(reason) => return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", &reason),
            }
        }
        "authorization_code" => {
            let Some(code) = param("code") else {
                return oauth_error(StatusCode::BAD_REQUEST, "invalid_request", "authorization_code grant needs code");
            };
            let redirect_uri = param("redirect_uri");
            let verifier = param("code_verifier");
            let r = crate::rules::authorization_code::Redemption {
                client_id: &client.client_id,
                redirect_uri: redirect_uri.as_deref(),
                code_verifier: verifier.as_deref(),
                now: unix_now() as i64,
            };
            let granted = match uaa.state.login.redeem(&tenant.subdomain, &code, &r) {
                Ok(g) => g,
                Err(e) => return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", &e.to_string()),
            };
            let Some(user) = uaa.user_of(&granted.user, "sap.default") else {
                return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", "the user of this code is gone");
            };
            Grant {
                tenant: tenant.clone(),
                client_id: client.client_id.clone(),
                user,
                extra: Map::new(),
                without: vec![],
            }
        }
        "refresh_token" => {
            let Some(rt) = param("refresh_token") else {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    "refresh_token grant needs refresh_token",
                );
            };
            let map = uaa.state.refresh_tokens.lock().expect("refresh tokens");
            match map.get(&rt) {
                Some(g) if g.client_id == client.client_id && g.tenant.zid == tenant.zid => Grant {
                    tenant: g.tenant.clone(),
                    client_id: g.client_id.clone(),
                    user: g.user.clone(),
                    extra: g.extra.clone(),
                    without: g.without.clone(),
                },
                Some(_) => {
                    return oauth_error(
                        StatusCode::BAD_REQUEST,
                        "invalid_grant",
                        "refresh token was issued to another client or tenant",
                    )
                }
                None => return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", "unknown refresh token"),
            }
        }
        other => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                &format!("grant type {other:?} is not supported"),
            )
        }
    };
    let user = uaa.effective_user(&issued.user);
    let mut builder = uaa.factory().user_token(&issued.tenant, &user, &issued.client_id, &grant_type, validity);
    for (k, v) in &issued.extra {
        builder = builder.claim(k.clone(), v.clone());
    }
    for k in &issued.without {
        builder = builder.without(k);
    }
    let jti = builder.claims().get("jti").cloned().unwrap_or(Value::Null);
    let token = builder.sign();
    let refresh = format!("{}-r", random_hex(16));
    let scopes = user.scopes;
    uaa.state.refresh_tokens.lock().expect("refresh tokens").insert(refresh.clone(), issued);
    token_response(&token, jti, validity, &scopes, Some(&refresh))
}

/// Validates a jwt-bearer assertion and takes the user from it (`AT-1`):
/// the new token carries the assertion's user claims exactly (`user_name`,
/// `email`, `user_uuid`, `sub`, `origin`, names …), whichever client asks;
/// none is invented, so the principal stays the same (`PP-2`). Scopes come
/// from the configured user of that `user_name`, if any.
fn user_from_assertion(uaa: &MockUaa, assertion: &str, tenant: &Tenant, client_id: &str) -> Result<Grant, String> {
    // A token of an identity provider this tenant trusts (IAS-to-XSUAA).
    if let Ok((valid, idp)) = uaa.validate_external(assertion, &tenant.subdomain) {
        return user_of_provider(uaa, &valid.claims, &idp, tenant, client_id);
    }
    let valid = uaa.validate(assertion).map_err(|r| format!("assertion rejected: {r}"))?;
    let c = &valid.claims;
    // An identity zone exchanges its own users' tokens only: XSUAA trusts a
    // zone's own issuer (and configured identity providers), not a sibling
    // tenant's. 39d4265 exchanges a user token at the tenant of that token.
    let own = uaa.factory().issuer(&tenant.subdomain);
    let iss = c.get("iss").and_then(Value::as_str).unwrap_or_default();
    if iss != own {
        return Err(format!(
            "assertion was issued by {iss:?}, not by this tenant's identity zone ({own}); a user token is exchanged at its own tenant"
        ));
    }
    let s = |k: &str| c.get(k).and_then(Value::as_str).map(str::to_string);
    let principal = crate::rules::principal::principal(c, crate::rules::principal::UserType::Business)
        .map_err(|e| format!("assertion names no user: {e}"))?;
    let user =
        s("user_name").and_then(|n| uaa.user(&n)).unwrap_or_else(|| User { email: None, ..User::new(&principal) });
    let mut extra = Map::new();
    let mut without = Vec::new();
    for k in USER_CLAIMS {
        match c.get(k) {
            Some(v) => {
                extra.insert(k.to_string(), v.clone());
            }
            None => without.push(k),
        }
    }
    Ok(Grant { tenant: tenant.clone(), client_id: client_id.to_string(), user, extra, without })
}

/// Validates a SAML 2.0 bearer assertion (RFC 7522) and takes the user
/// from it: trusted issuer and signature (`crate::saml`), then audience,
/// subject, bearer confirmation for this token endpoint, expiry (`SB-1`).
/// The user is the `NameID` of the identity provider's `origin`: a
/// configured user of that name and origin keeps its role collections; any
/// other gets the default scopes and the assertion's `email`, `given_name`,
/// `family_name` attributes.
fn user_from_saml(uaa: &MockUaa, assertion: &str, tenant: &Tenant, client_id: &str) -> Result<Grant, String> {
    let xml = crate::saml::decode(assertion).map_err(|e| e.to_string())?;
    let trusted = uaa.saml_trust(tenant).map_err(|e| format!("trust configuration: {e}"))?;
    let (facts, idp) = crate::saml::verify(&xml, &trusted).map_err(|e| format!("assertion rejected: {e}"))?;
    let token_endpoint = format!("{}/oauth/token", uaa.url(&tenant.subdomain));
    let audiences = [uaa.saml_entity_id(tenant), token_endpoint.clone()];
    let expected = crate::rules::saml_bearer::Expected {
        audiences: &audiences,
        token_endpoint: &token_endpoint,
        now: crate::tokens::unix_now() as i64,
        skew: 60,
    };
    crate::rules::saml_bearer::check(&facts, &expected).map_err(|e| format!("assertion rejected: {e}"))?;
    let name = facts.name_id.clone().unwrap_or_default();
    let attr = |k: &str| facts.attribute(k).map(str::to_string);
    let user = federated_user(uaa, &name, &idp.origin, |k| match k {
        "email" => attr("email").or_else(|| attr("mail")),
        _ => attr(k),
    });
    Ok(Grant { tenant: tenant.clone(), client_id: client_id.to_string(), user, extra: Map::new(), without: vec![] })
}

/// The user of a trusted identity provider's token (IAS-to-XSUAA): named
/// by the business priority of `PP-2` (an IAS token has no `user_name`, so
/// its `email` usually), of the provider's `origin`; a configured user of
/// that name and origin keeps its role collections. `email`, names and
/// `user_uuid` come from the token, nothing is invented.
fn user_of_provider(
    uaa: &MockUaa,
    c: &Map<String, Value>,
    idp: &super::ExternalIssuer,
    tenant: &Tenant,
    client_id: &str,
) -> Result<Grant, String> {
    let name = crate::rules::principal::principal(c, crate::rules::principal::UserType::Business)
        .map_err(|e| format!("assertion names no user: {e}"))?;
    let user = federated_user(uaa, &name, &idp.origin, |k| c.get(k).and_then(Value::as_str).map(str::to_string));
    let mut extra = Map::new();
    if let Some(u) = c.get("user_uuid") {
        extra.insert("user_uuid".into(), u.clone());
    }
    Ok(Grant { tenant: tenant.clone(), client_id: client_id.to_string(), user, extra, without: vec![] })
}

/// The user `name` of identity provider `origin`: the configured one (with
/// its role collections), else one made of what the provider said
/// (`attr("email")`, `given_name`, `family_name`) and nothing else.
fn federated_user(uaa: &MockUaa, name: &str, origin: &str, attr: impl Fn(&str) -> Option<String>) -> User {
    uaa.user_of(name, origin).unwrap_or_else(|| User {
        email: attr("email"),
        given_name: attr("given_name"),
        family_name: attr("family_name"),
        origin: origin.to_string(),
        ..User::new(name)
    })
}

/// RFC 6749 §5.1's answer, with XSUAA's field names, in the order the
/// JSON object always had (sorted), written straight into one buffer sized
/// for it: the token is most of the body, and is neither copied nor
/// scanned byte by byte for escapes (see [`push_json_str`]).
fn token_response(token: &str, jti: Value, validity: u64, scopes: &[String], refresh: Option<&str>) -> Response<Body> {
    use std::io::Write as _;
    let scope = scopes.join(" ");
    let mut body = Vec::with_capacity(token.len() + refresh.map_or(0, str::len) + scope.len() + 160);
    body.extend_from_slice(b"{\"access_token\":");
    push_json_str(&mut body, token);
    write!(body, ",\"expires_in\":{},\"jti\":", validity.saturating_sub(1)).expect("writing to a Vec");
    serde_json::to_writer(&mut body, &jti).expect("a JSON value serialises");
    if let Some(refresh) = refresh {
        body.extend_from_slice(b",\"refresh_token\":");
        push_json_str(&mut body, refresh);
    }
    body.extend_from_slice(b",\"scope\":");
    push_json_str(&mut body, &scope);
    body.extend_from_slice(b",\"token_type\":\"bearer\"}");
    crate::http::json_bytes_response(StatusCode::OK, body)
}

/// Appends `s` as a JSON string. A JWS in compact form is base64url and
/// dots (RFC 7515 §7.1), nothing JSON escapes (RFC 8259 §7): such a string
/// is checked in one pass the compiler vectorises and copied as it is,
/// where serde_json would look up each of a token's thousand bytes in its
/// escape table. Anything else goes through serde_json.
fn push_json_str(buf: &mut Vec<u8>, s: &str) {
    let plain =
        s.bytes().fold(true, |ok, b| ok & (b.is_ascii_alphanumeric() | (b == b'-') | (b == b'_') | (b == b'.')));
    if plain {
        buf.reserve(s.len() + 2);
        buf.push(b'"');
        buf.extend_from_slice(s.as_bytes());
        buf.push(b'"');
    } else {
        serde_json::to_writer(&mut *buf, s).expect("a string serialises");
    }
}

/// A Basic credential's part, form-decoded (RFC 6749 §2.3.1: client id and
/// secret are form-encoded before they go into Basic).
fn pct_decode(s: &str) -> String {
    if !s.contains(['%', '+']) {
        return s.to_string();
    }
    form_urlencoded::parse(format!("x={s}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| s.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The hand-written token response is the JSON serde_json would write,
    /// escapes included, whatever the strings hold.
    #[test]
    fn token_response_is_the_json_of_its_fields() {
        let cases: [(&str, Value, &[String], Option<&str>); 3] = [
            ("eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln-_", Value::from("0a1b"), &["uaa.resource".into()], None),
            ("a\"b\\c\n\u{1}é", Value::Null, &["x \"y\"".into(), "z".into()], Some("r-1.2_3")),
            ("", Value::from(7), &[], Some("has space")),
        ];
        for (token, jti, scopes, refresh) in cases {
            let resp = token_response(token, jti.clone(), 3600, scopes, refresh);
            assert_eq!(resp.headers()[header::CONTENT_TYPE], "application/json");
            let body =
                futures::executor::block_on(http_body_util::BodyExt::collect(resp.into_body())).unwrap().to_bytes();
            let text = std::str::from_utf8(&body).unwrap();
            let mut expected = serde_json::json!({
                "access_token": token, "expires_in": 3599, "jti": jti,
                "scope": scopes.join(" "), "token_type": "bearer",
            });
            if let Some(r) = refresh {
                expected["refresh_token"] = r.into();
            }
            // Same fields and values, and the same bytes as serde_json's
            // (sorted keys), so nothing was left unescaped.
            assert_eq!(text, expected.to_string(), "{token:?}");
        }
    }

    /// RFC 6749 §2.3.1: Basic carries the form-encoded id and secret; a
    /// plain one (most are) is taken as it is.
    #[test]
    fn basic_credentials_are_form_decoded() {
        assert_eq!(pct_decode("sb-idprop-app%21t1"), "sb-idprop-app!t1");
        assert_eq!(pct_decode("a+b%2Bc%3A"), "a b+c:");
        assert_eq!(pct_decode("sb-idprop-app!t1"), "sb-idprop-app!t1");
        assert_eq!(pct_decode(""), "");
    }

    /// Refresh tokens stay within their byte budget however many grants
    /// come, newest kept; expired ones are not honoured.
    #[test]
    fn refresh_tokens_are_bounded_in_bytes() {
        let mut store = RefreshTokens::default();
        let mut extra = Map::new();
        extra.insert("blob".into(), Value::String("x".repeat(9 * 1024)));
        let grant =
            Grant { tenant: Tenant::new("t"), client_id: "c".into(), user: User::new("u"), extra, without: vec![] };
        for i in 0..4000 {
            store.insert(format!("r{i}"), grant.clone());
            assert!(store.bytes <= MAX_REFRESH_BYTES, "{i}: {}", store.bytes);
        }
        assert!(store.len() < 4000 && store.len() > 1000, "{}", store.len());
        assert!(store.get("r3999").is_some() && store.get("r0").is_none());
        assert_eq!(store.grants.len(), store.order.len());
    }
}
