//! SAML 2.0 bearer assertions as OAuth 2.0 grants (RFC 7522), rules `SB-1`
//! (what the authorization server checks) and `SB-2` (what the Destination
//! service puts in the assertion it generates, 3cb7b81 and c69ea6a).
//!
//! Pure: the XML and its signature are `crate::saml`'s; here are only the
//! facts an assertion states and the decisions on them.

/// `grant_type` of the SAML 2.0 bearer assertion grant (RFC 7522 §2.1).
pub const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:saml2-bearer";
/// `Method` of a bearer subject confirmation (RFC 7522 §3, item 7).
pub const BEARER_METHOD: &str = "urn:oasis:names:tc:SAML:2.0:cm:bearer";
/// `nameIdFormat` values of 3cb7b81.
pub const NAME_ID_EMAIL: &str = "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress";
pub const NAME_ID_UNSPECIFIED: &str = "urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified";

/// What an assertion whose signature verified says (times are Unix seconds).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AssertionFacts {
    pub id: String,
    pub issuer: String,
    pub name_id: Option<String>,
    pub name_id_format: Option<String>,
    /// Every `<Audience>` of every `<AudienceRestriction>`.
    pub audiences: Vec<String>,
    /// The bearer `<SubjectConfirmationData>`s: `Recipient`, `NotOnOrAfter`.
    pub bearer_confirmations: Vec<(Option<String>, Option<i64>)>,
    /// `<Conditions NotBefore NotOnOrAfter>`.
    pub not_before: Option<i64>,
    pub not_on_or_after: Option<i64>,
    /// `<Attribute Name>` and its values, in document order.
    pub attributes: Vec<(String, Vec<String>)>,
}

impl AssertionFacts {
    /// The first value of attribute `name`.
    pub fn attribute(&self, name: &str) -> Option<&str> {
        self.attributes.iter().find(|(n, _)| n == name).and_then(|(_, v)| v.first()).map(String::as_str)
    }
}

/// What the authorization server expects of an assertion it is given.
#[derive(Debug, Clone)]
pub struct Expected<'a> {
    /// Names the authorization server goes by: its entity id, and its token
    /// endpoint URL, which RFC 7522 §3 item 2 allows as an audience.
    pub audiences: &'a [String],
    /// The token endpoint URL, the only valid `Recipient`.
    pub token_endpoint: &'a str,
    pub now: i64,
    /// Clock skew allowed on every time (RFC 7522 §3: "reasonable clock skew").
    pub skew: i64,
}

/// Why an assertion is refused; each names the RFC 7522 §3 item it breaks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SamlRefusal {
    #[error("the assertion has no <Subject><NameID> (RFC 7522 §3 item 3: it MUST contain a Subject identifying the principal)")]
    NoSubject,
    #[error("no <AudienceRestriction> names this authorization server ({expected:?}); the assertion is for {found:?} (RFC 7522 §3 item 2)")]
    WrongAudience { expected: Vec<String>, found: Vec<String> },
    #[error("no <SubjectConfirmation Method=\"{BEARER_METHOD}\"> (RFC 7522 §3 item 7)")]
    NoBearerConfirmation,
    #[error(
        "the bearer confirmation's Recipient is {found:?}, not this token endpoint {expected:?} (RFC 7522 §3 item 7)"
    )]
    WrongRecipient { expected: String, found: Option<String> },
    #[error("the assertion has no NotOnOrAfter (RFC 7522 §3 item 4: it MUST limit the time window)")]
    NoExpiry,
    #[error("the assertion expired at {not_on_or_after} (now {now}; RFC 7522 §3 item 4)")]
    Expired { not_on_or_after: i64, now: i64 },
    #[error("the assertion is not valid before {not_before} (now {now})")]
    NotYetValid { not_before: i64, now: i64 },
}

/// `SB-1`: the checks of RFC 7522 §3 on an assertion whose issuer is trusted
/// and whose signature verified (items 1 and 5 are `crate::saml`'s).
///
/// - item 2: "The Assertion MUST contain a <Conditions> element with an
///   <AudienceRestriction> element with an <Audience> element that identifies
///   the authorization server as an intended audience … The token endpoint
///   URL of the authorization server MAY be used";
/// - item 3: "The Assertion MUST contain a <Subject> element";
/// - item 4: "The Assertion MUST have an expiry that limits the time window
///   during which it can be used … <Conditions> … NotOnOrAfter … or …
///   <SubjectConfirmationData> … NotOnOrAfter";
/// - item 7: "If the Assertion issuer directly authenticated the subject …
///   a <SubjectConfirmation> element with a Method of bearer … The
///   <SubjectConfirmationData> element MUST have a Recipient attribute with a
///   value indicating the token endpoint URL".
pub fn check(a: &AssertionFacts, e: &Expected<'_>) -> Result<(), SamlRefusal> {
    if a.name_id.as_deref().is_none_or(|n| n.trim().is_empty()) {
        return Err(SamlRefusal::NoSubject);
    }
    if !a.audiences.iter().any(|aud| e.audiences.iter().any(|x| x == aud)) {
        return Err(SamlRefusal::WrongAudience { expected: e.audiences.to_vec(), found: a.audiences.clone() });
    }
    if a.bearer_confirmations.is_empty() {
        return Err(SamlRefusal::NoBearerConfirmation);
    }
    let confirmation =
        a.bearer_confirmations.iter().find(|(r, _)| r.as_deref() == Some(e.token_endpoint)).ok_or_else(|| {
            SamlRefusal::WrongRecipient {
                expected: e.token_endpoint.to_string(),
                found: a.bearer_confirmations[0].0.clone(),
            }
        })?;
    let expiry = match (confirmation.1, a.not_on_or_after) {
        (Some(x), Some(y)) => x.min(y),
        (Some(x), None) | (None, Some(x)) => x,
        (None, None) => return Err(SamlRefusal::NoExpiry),
    };
    if e.now >= expiry + e.skew {
        return Err(SamlRefusal::Expired { not_on_or_after: expiry, now: e.now });
    }
    if let Some(nb) = a.not_before.filter(|nb| e.now + e.skew < *nb) {
        return Err(SamlRefusal::NotYetValid { not_before: nb, now: e.now });
    }
    Ok(())
}

/// `SB-2`: the propagated user id of a generated assertion, from the user's
/// JWT claims (3cb7b81, "Determine the Propagated User ID"): `userIdSource`
/// names the claim when set; else `nameIdFormat` decides: emailAddress →
/// `email`, unspecified or absent → `user_name`; any other format "an
/// exception is thrown". Returns the user id, or why there is none.
///
/// Only the root-level form of `userIdSource` is read; a JsonPath expression
/// (`$.…`) is refused with a clear message rather than guessed at, and so is
/// the "Custom User Attribute" source (it needs XSUAA's user-info endpoint).
pub fn user_id(
    claims: &serde_json::Map<String, serde_json::Value>,
    user_id_source: Option<&str>,
    name_id_format: Option<&str>,
) -> Result<String, String> {
    let claim = match (user_id_source.map(str::trim).filter(|s| !s.is_empty()), name_id_format) {
        (Some(src), _) if src.starts_with('$') => {
            return Err(format!("userIdSource {src:?}: JsonPath expressions are not supported by idprop"))
        }
        (Some(src), _) => src,
        (None, Some(NAME_ID_EMAIL)) => "email",
        (None, None | Some(NAME_ID_UNSPECIFIED)) => "user_name",
        (None, Some(other)) => {
            return Err(format!(
                "nameIdFormat {other:?}: must be {NAME_ID_EMAIL} or {NAME_ID_UNSPECIFIED} (or unset) when userIdSource is not set"
            ))
        }
    };
    match claims.get(claim) {
        Some(serde_json::Value::String(s)) if !s.is_empty() => Ok(s.clone()),
        Some(v) if !v.is_null() && !v.is_string() => Ok(v.to_string()),
        _ => Err(format!("the user's token has no {claim:?} to take the user id from")),
    }
}

/// `SB-2`: the SAML attributes taken from the user's JWT (3cb7b81, "Propagate
/// User Attributes"): `xs.saml.groups` from `xs.system.attributes` and from
/// `user_attributes` become `Groups`; `user_attributes.*` are added with the
/// `user_attributes.` prefix unless `skipUserAttributesPrefixInSAMLAttributes`;
/// `user_uuid` unless `skipUserUuidInSAMLAttributes`. The user-info endpoint's
/// root elements are represented by the token's own `email`, `given_name`,
/// `family_name` (idprop has no user-info call; a choice).
pub fn attributes(
    claims: &serde_json::Map<String, serde_json::Value>,
    skip_prefix: bool,
    skip_user_uuid: bool,
) -> Vec<(String, Vec<String>)> {
    use serde_json::Value;
    let strings = |v: &Value| -> Vec<String> {
        match v {
            Value::Array(a) => a.iter().map(|x| x.as_str().map_or_else(|| x.to_string(), str::to_string)).collect(),
            Value::String(s) => vec![s.clone()],
            Value::Null => vec![],
            other => vec![other.to_string()],
        }
    };
    let mut out: Vec<(String, Vec<String>)> = Vec::new();
    for k in ["email", "given_name", "family_name"] {
        if let Some(v) = claims.get(k) {
            out.push((k.to_string(), strings(v)));
        }
    }
    if !skip_user_uuid {
        if let Some(v) = claims.get("user_uuid") {
            out.push(("user_uuid".into(), strings(v)));
        }
    }
    let mut groups = Vec::new();
    for parent in ["xs.system.attributes", "user_attributes"] {
        if let Some(v) = claims.get(parent).and_then(|p| p.get("xs.saml.groups")) {
            groups.extend(strings(v));
        }
    }
    if !groups.is_empty() {
        out.push(("Groups".into(), groups));
    }
    if let Some(Value::Object(ua)) = claims.get("user_attributes") {
        for (k, v) in ua {
            if k == "xs.saml.groups" {
                continue;
            }
            let name = if skip_prefix { k.clone() } else { format!("user_attributes.{k}") };
            out.push((name, strings(v)));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn facts() -> AssertionFacts {
        AssertionFacts {
            id: "_1".into(),
            issuer: "idp".into(),
            name_id: Some("alice".into()),
            audiences: vec!["sp".into()],
            bearer_confirmations: vec![(Some("https://t/oauth/token".into()), Some(1000))],
            not_on_or_after: Some(2000),
            ..Default::default()
        }
    }

    fn expected(now: i64) -> (Vec<String>, i64) {
        (vec!["sp".into(), "https://t/oauth/token".into()], now)
    }

    #[test]
    fn each_item_of_rfc_7522_section_3_refuses() {
        let (aud, now) = expected(500);
        let e = Expected { audiences: &aud, token_endpoint: "https://t/oauth/token", now, skew: 0 };
        assert_eq!(check(&facts(), &e), Ok(()));
        let mut f = facts();
        f.name_id = None;
        assert_eq!(check(&f, &e), Err(SamlRefusal::NoSubject));
        let mut f = facts();
        f.audiences = vec!["other".into()];
        assert!(matches!(check(&f, &e), Err(SamlRefusal::WrongAudience { .. })));
        let mut f = facts();
        f.audiences = vec!["https://t/oauth/token".into()];
        assert_eq!(check(&f, &e), Ok(()), "the token endpoint URL MAY be the audience");
        let mut f = facts();
        f.bearer_confirmations.clear();
        assert_eq!(check(&f, &e), Err(SamlRefusal::NoBearerConfirmation));
        let mut f = facts();
        f.bearer_confirmations[0].0 = Some("https://elsewhere/oauth/token".into());
        assert!(matches!(check(&f, &e), Err(SamlRefusal::WrongRecipient { .. })));
        let mut f = facts();
        f.bearer_confirmations[0].1 = None;
        f.not_on_or_after = None;
        assert_eq!(check(&f, &e), Err(SamlRefusal::NoExpiry));
        let late = Expected { now: 1000, ..e.clone() };
        assert!(matches!(check(&facts(), &late), Err(SamlRefusal::Expired { not_on_or_after: 1000, .. })));
        let mut f = facts();
        f.not_before = Some(600);
        assert!(matches!(check(&f, &e), Err(SamlRefusal::NotYetValid { .. })));
        assert_eq!(check(&f, &Expected { skew: 100, ..e }), Ok(()));
    }

    #[test]
    fn the_user_id_follows_user_id_source_then_name_id_format() {
        let c = json!({"user_name": "alice", "email": "a@x.test", "mail": "m@x.test"});
        let c = c.as_object().unwrap();
        assert_eq!(user_id(c, None, None).unwrap(), "alice");
        assert_eq!(user_id(c, None, Some(NAME_ID_UNSPECIFIED)).unwrap(), "alice");
        assert_eq!(user_id(c, None, Some(NAME_ID_EMAIL)).unwrap(), "a@x.test");
        assert_eq!(user_id(c, Some("mail"), Some(NAME_ID_EMAIL)).unwrap(), "m@x.test");
        assert!(user_id(c, None, Some("urn:x")).is_err());
        assert!(user_id(c, Some("missing"), None).is_err());
        assert!(user_id(c, Some("$.a.b"), None).is_err());
    }

    #[test]
    fn attributes_follow_3cb7b81() {
        let c = json!({"email": "a@x.test", "user_uuid": "u-1",
            "xs.system.attributes": {"xs.saml.groups": ["g1"]},
            "user_attributes": {"xs.saml.groups": ["g2"], "cost_center": ["42"]}});
        let c = c.as_object().unwrap();
        let a = attributes(c, false, false);
        assert!(a.contains(&("Groups".into(), vec!["g1".into(), "g2".into()])));
        assert!(a.contains(&("user_attributes.cost_center".into(), vec!["42".into()])));
        assert!(a.contains(&("user_uuid".into(), vec!["u-1".into()])));
        let a = attributes(c, true, true);
        assert!(a.contains(&("cost_center".into(), vec!["42".into()])));
        assert!(!a.iter().any(|(n, _)| n == "user_uuid"));
    }
}
