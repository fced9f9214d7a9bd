//! The application of seed 000 as a resource server (rules `AP-1`..`AP-3`):
//! "The external application can use this JSON web token when it makes the
//! API calls to applications in the Cloud Foundry environment" — and the
//! application lets in only what its token says.
//!
//! Pure: the token's signature, issuer and expiry were checked by the
//! caller (`TV-*`); here are the audience, the tenant and the scopes, and
//! the RFC 6750 answer for each refusal.

use serde_json::{Map, Value};

/// Who called, as the application tells it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// A named user (`user_name`, `origin`).
    User { user_name: String, origin: String },
    /// A client acting for itself (client credentials): no user.
    Client { client_id: String },
}

/// Why the application refuses a request; the RFC 6750 §3.1 answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// RFC 6750 §3.1: "If the request lacks any authentication information
    /// …, the resource server SHOULD NOT include an error code".
    #[error("no bearer token")]
    NoToken,
    /// `invalid_token`, 401.
    #[error("{0}")]
    InvalidToken(String),
    /// `insufficient_scope`, 403, naming the scope needed.
    #[error("the token lacks scope {0:?}")]
    InsufficientScope(String),
}

impl Refusal {
    pub fn status(&self) -> u16 {
        match self {
            Refusal::NoToken | Refusal::InvalidToken(_) => 401,
            Refusal::InsufficientScope(_) => 403,
        }
    }

    /// The `WWW-Authenticate` value (RFC 6750 §3).
    pub fn www_authenticate(&self, realm: &str) -> String {
        let q = |s: &str| s.replace(['\\', '"'], "'");
        match self {
            Refusal::NoToken => format!("Bearer realm=\"{}\"", q(realm)),
            Refusal::InvalidToken(d) => {
                format!("Bearer realm=\"{}\", error=\"invalid_token\", error_description=\"{}\"", q(realm), q(d))
            }
            Refusal::InsufficientScope(s) => format!(
                "Bearer realm=\"{}\", error=\"insufficient_scope\", error_description=\"the token lacks scope {}\", scope=\"{}\"",
                q(realm),
                q(s),
                q(s)
            ),
        }
    }
}

/// What the application demands of every token.
#[derive(Debug, Clone)]
pub struct Policy<'a> {
    /// Its `xsappname`: tokens must be meant for it.
    pub xsappname: &'a str,
    /// The client id of its own binding: a token issued to it is meant for
    /// it too (a user token without any of its scopes names only that).
    pub client_id: &'a str,
    /// Zone ids it serves; empty for any tenant of its UAA.
    pub zones: &'a [String],
    /// The scope the requested path needs, if any.
    pub required_scope: Option<&'a str>,
}

/// Decides access for a token whose signature, issuer and expiry are
/// valid, with `claims` its payload:
///
/// - `AP-1` audience: RFC 7519 §4.1.3, "If the principal processing the
///   claim does not identify itself with a value in the "aud" claim when
///   this claim is present, then the JWT MUST be rejected" — the
///   application is its `xsappname` or its binding's client id; a token
///   without `aud` is meant for
///   it only if a scope is qualified with it (how XSUAA derives `aud`);
/// - `AP-2` tenant (a choice: the pages say nothing of which identity zones
///   an application serves; idprop's application is dedicated to the
///   zones configured, as an app bound with `tenant-mode: dedicated`);
/// - `AP-3` scope: RFC 6750 §3.1, `insufficient_scope` "The request
///   requires higher privileges than provided by the access token".
pub fn decide(claims: &Map<String, Value>, policy: &Policy<'_>) -> Result<(Caller, Vec<String>), Refusal> {
    let strs = |k: &str| -> Vec<String> {
        match claims.get(k) {
            Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).map(str::to_string).collect(),
            Some(Value::String(s)) => s.split(' ').filter(|x| !x.is_empty()).map(str::to_string).collect(),
            _ => Vec::new(),
        }
    };
    let scopes = strs("scope");
    let aud = strs("aud");
    let for_app = |a: &str| a == policy.xsappname || a == policy.client_id;
    let meant = if claims.contains_key("aud") {
        aud.iter().any(|a| for_app(a))
    } else {
        scopes.iter().any(|s| s.split_once('.').is_some_and(|(p, _)| for_app(p)))
    };
    if !meant {
        return Err(Refusal::InvalidToken(format!(
            "the token is for {aud:?}, not for this application ({})",
            policy.xsappname
        )));
    }
    let zid = claims.get("zid").and_then(Value::as_str).unwrap_or_default();
    if !policy.zones.is_empty() && !policy.zones.iter().any(|z| z == zid) {
        return Err(Refusal::InvalidToken(format!(
            "the token is of identity zone {zid:?}, which this application does not serve"
        )));
    }
    if let Some(needed) = policy.required_scope {
        if !scopes.iter().any(|s| s == needed) {
            return Err(Refusal::InsufficientScope(needed.to_string()));
        }
    }
    let s = |k: &str| claims.get(k).and_then(Value::as_str).map(str::to_string);
    let caller = match (s("user_name"), s("grant_type").as_deref()) {
        (Some(user_name), Some(g)) if g != "client_credentials" => {
            Caller::User { user_name, origin: s("origin").unwrap_or_default() }
        }
        _ => Caller::Client { client_id: s("client_id").or_else(|| s("cid")).or_else(|| s("azp")).unwrap_or_default() },
    };
    Ok((caller, scopes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn claims(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    const APP: &str = "idprop-app!t1";

    #[test]
    fn audience_tenant_and_scope_decide_in_that_order() {
        let zones = vec!["z1".to_string()];
        let p =
            Policy { xsappname: APP, client_id: "sb-app", zones: &zones, required_scope: Some("idprop-app!t1.Read") };
        let own_client = claims(json!({"aud": ["sb-app"], "zid": "z1", "scope": ["openid"]}));
        assert_eq!(decide(&own_client, &p), Err(Refusal::InsufficientScope("idprop-app!t1.Read".into())));
        let user = claims(json!({"aud": [APP], "zid": "z1", "scope": ["idprop-app!t1.Read"],
            "user_name": "alice", "origin": "sap.default", "grant_type": "password"}));
        assert_eq!(
            decide(&user, &p).unwrap().0,
            Caller::User { user_name: "alice".into(), origin: "sap.default".into() }
        );
        let client = claims(json!({"aud": [APP, "uaa"], "zid": "z1", "scope": ["idprop-app!t1.Read"],
            "client_id": "c", "grant_type": "client_credentials"}));
        assert_eq!(decide(&client, &p).unwrap().0, Caller::Client { client_id: "c".into() });
        let other_app = claims(json!({"aud": ["other!t2"], "zid": "z1", "scope": ["other!t2.Read"]}));
        assert!(matches!(decide(&other_app, &p), Err(Refusal::InvalidToken(_))));
        let other_zone = claims(json!({"aud": [APP], "zid": "z2", "scope": ["idprop-app!t1.Read"]}));
        assert!(matches!(decide(&other_zone, &p), Err(Refusal::InvalidToken(_))));
        let no_scope = claims(json!({"aud": [APP], "zid": "z1", "scope": ["openid"]}));
        assert_eq!(decide(&no_scope, &p), Err(Refusal::InsufficientScope("idprop-app!t1.Read".into())));
        let no_aud = claims(json!({"zid": "z1", "scope": ["idprop-app!t1.Read"]}));
        assert!(decide(&no_aud, &p).is_ok(), "without aud, a qualified scope says whom the token is for");
        assert_eq!(Refusal::InsufficientScope("x".into()).status(), 403);
        assert!(Refusal::NoToken.www_authenticate("app").starts_with("Bearer realm=\"app\""));
        assert!(!Refusal::NoToken.www_authenticate("app").contains("error="));
    }
}
