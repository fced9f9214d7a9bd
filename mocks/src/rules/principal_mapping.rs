//! The Cloud Connector's principal propagation step, whole: validate the
//! token, name the principal, render the subject. The connector runs it per
//! request; `builtin:reference` answers `map_principal` with it.

use serde::{Deserialize, Serialize};

use super::dn;
use super::principal::{self, UserType};
use super::readings::Readings;
use super::subject::{self, SubjectPattern, SubjectRule, Variables};
use super::token_validation::{self, TrustedIssuer};

/// An accepted token, and the certificate subject it gets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mapping {
    pub principal: String,
    pub user_type: UserType,
    /// RFC 4514.
    pub subject: String,
    /// The rendered attributes, RFC 4514 order, unescaped.
    pub attributes: Vec<(String, String)>,
}

/// The protocol's `reason_code` values (PROTOCOL.md v1.1): every
/// [`Refusal::code`] is one of them.
pub const REASON_CODES: [&str; 11] = [
    "malformed",
    "unsupported_algorithm",
    "bad_signature",
    "unknown_key",
    "untrusted_issuer",
    "untrusted_key_url",
    "expired",
    "not_yet_valid",
    "no_principal",
    "too_large",
    "other",
];

/// Why a token gets no subject: the protocol's `reason_code` and a reason
/// for people.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct Refusal {
    pub code: &'static str,
    pub reason: String,
}

/// [`map_principal`] with the refusal's code, in the given readings.
pub fn map_principal_with(
    token: &str,
    trust: &[TrustedIssuer],
    rules: &[SubjectRule],
    now: i64,
    readings: &Readings,
) -> Result<Mapping, Refusal> {
    let valid = token_validation::validate_with(token, trust, now, &readings.validation)
        .map_err(|e| Refusal { code: e.code(), reason: e.to_string() })?;
    map_claims_with(&valid.claims, rules, readings, None)
}

/// [`map_claims`] with the refusal's code, in the given readings.
///
/// `user_type` is the header's word where known (the Cloud Connector
/// classifies by the header a token came in: configure-subject-patterns);
/// without it `readings.unknown_header` decides.
pub fn map_claims_with(
    claims: &serde_json::Map<String, serde_json::Value>,
    rules: &[SubjectRule],
    readings: &Readings,
    user_type: Option<UserType>,
) -> Result<Mapping, Refusal> {
    let user_type = user_type.unwrap_or_else(|| readings.unknown_header.user_type(claims));
    let name = principal::principal_with(claims, user_type, readings.wrong_type_claim)
        .map_err(|e| Refusal { code: "no_principal", reason: e.to_string() })?;
    let other = |reason: String| Refusal { code: "other", reason };
    let vars = Variables { claims, name: &name, user_type };
    let pattern_src = subject::select(rules, &vars).map_err(|e| other(e.to_string()))?;
    let pattern = SubjectPattern::parse(&pattern_src).map_err(|e| other(e.to_string()))?;
    let attributes = pattern.render(&vars).map_err(|e| other(e.to_string()))?;
    if attributes.iter().any(|(_, v)| v.is_empty()) {
        return Err(other(format!("subject pattern {pattern_src:?} renders an empty attribute for this token")));
    }
    Ok(Mapping { principal: name, user_type, subject: dn::to_string_as(&attributes, readings.dn), attributes })
}

/// Maps `token` with `rules` (a table whose last row is the default; an
/// empty table is `CN=${name}`), trusting `trust`, at time `now`.
/// The error text is the reason sent back (`TV-5`).
pub fn map_principal(token: &str, trust: &[TrustedIssuer], rules: &[SubjectRule], now: i64) -> Result<Mapping, String> {
    let valid = token_validation::validate(token, trust, now).map_err(|e| e.to_string())?;
    map_claims(&valid.claims, rules)
}

/// The mapping of already-validated claims.
pub fn map_claims(
    claims: &serde_json::Map<String, serde_json::Value>,
    rules: &[SubjectRule],
) -> Result<Mapping, String> {
    map_claims_with(claims, rules, &Readings::IDPROP, None).map_err(|r| r.reason)
}

/// A one-row table with `pattern` (what `map_principal` of the adapter
/// protocol sends).
pub fn single(pattern: &str) -> Vec<SubjectRule> {
    vec![SubjectRule { condition: None, pattern: pattern.to_string() }]
}

#[cfg(test)]
mod tests {
    use super::token_validation::Rejection;

    /// Every refusal's code is in the protocol's closed list.
    #[test]
    fn every_refusal_code_is_a_protocol_reason_code() {
        let rejections = [
            Rejection::TooLarge(1, 0),
            Rejection::Malformed(String::new()),
            Rejection::Algorithm(String::new()),
            Rejection::UntrustedIssuer(String::new()),
            Rejection::UnknownKey(String::new()),
            Rejection::BadSignature,
            Rejection::Expired,
            Rejection::NotYetValid,
            Rejection::IssuedInFuture,
            Rejection::ClaimType("iss"),
            Rejection::ForeignJku(String::new()),
        ];
        for r in rejections {
            assert!(super::REASON_CODES.contains(&r.code()), "{r:?}");
        }
        let claims = serde_json::Map::new();
        let refused = super::map_claims_with(&claims, &super::single("CN=${name}"), &Default::default(), None);
        assert!(super::REASON_CODES.contains(&refused.unwrap_err().code));
    }
}
