//! How a JWT is judged before anybody acts on it (rules `TV-1`..`TV-4`).
//!
//! One validator for the Cloud Connector, the Connectivity proxy, the UAA's
//! jwt-bearer grant and the Destination service's `X-user-token`: pure, given
//! the trusted issuers' keys and the clock, so the harness can use it as the
//! oracle of the `principal-mapping` role.

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
pub use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey};
use serde_json::{Map, Value};

pub use super::strict_json::DuplicateKeys;

/// Tokens larger than this are refused before any parsing (idprop's limit;
/// no page gives one).
pub const MAX_TOKEN_BYTES: usize = 16 * 1024;
/// Tolerance for `iat` in the future (clock skew).
pub const IAT_SKEW_SECS: i64 = 300;

/// What a token's `iat` in the future means. RFC 7519 §4.1.6 makes `iat`
/// informational ("identifies the time at which the JWT was issued"); only
/// `exp` and `nbf` are validity claims.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FutureIat {
    /// idprop's reading: beyond [`IAT_SKEW_SECS`] the token is refused.
    Refuse,
    /// The other: `iat` is not checked.
    Ignore,
}

/// What a `jku` header naming another URL than the issuer's means. No page
/// says; never fetching it is what matters (a `must` of the suite).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ForeignJku {
    /// idprop's reading: refuse the token.
    Refuse,
    /// The other: ignore the header and verify with the trusted keys.
    Ignore,
}

/// What a `kid` naming none of the issuer's keys means. RFC 7515 §4.1.4
/// calls `kid` "a hint indicating which key was used".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UnknownKid {
    /// idprop's reading: refuse the token.
    Refuse,
    /// The other: try every key of the trusted issuer.
    TryAll,
}

/// The readings the validator takes where SAP's pages are silent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Readings {
    pub max_token_bytes: usize,
    pub duplicate_keys: DuplicateKeys,
    pub future_iat: FutureIat,
    pub foreign_jku: ForeignJku,
    pub unknown_kid: UnknownKid,
}

impl Readings {
    /// What the mocks do.
    pub const IDPROP: Readings = Readings {
        max_token_bytes: MAX_TOKEN_BYTES,
        duplicate_keys: DuplicateKeys::Refuse,
        future_iat: FutureIat::Refuse,
        foreign_jku: ForeignJku::Refuse,
        unknown_kid: UnknownKid::Refuse,
    };
    /// The other reasonable reading at every point (`builtin:reference/alt`).
    pub const ALTERNATIVE: Readings = Readings {
        max_token_bytes: 64 * 1024,
        duplicate_keys: DuplicateKeys::LastWins,
        future_iat: FutureIat::Ignore,
        foreign_jku: ForeignJku::Ignore,
        unknown_kid: UnknownKid::TryAll,
    };
}

/// An identity provider the validator trusts (`TV-1`).
#[derive(Debug, Clone)]
pub struct TrustedIssuer {
    /// Exact `iss` value.
    pub issuer: String,
    pub jwks: JwkSet,
    /// Where the issuer publishes its keys; a token whose `jku` names
    /// another URL is refused (its keys are never fetched).
    pub jwks_uri: Option<String>,
}

/// Why a token was refused; the `Display` text is the reason sent back.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    #[error("token too large ({0} bytes, limit {1})")]
    TooLarge(usize, usize),
    #[error("malformed token: {0}")]
    Malformed(String),
    #[error("algorithm {0:?} not accepted (only RS256)")]
    Algorithm(String),
    #[error("issuer {0:?} is not trusted")]
    UntrustedIssuer(String),
    #[error("unknown signing key id {0:?} for issuer")]
    UnknownKey(String),
    #[error("signature does not verify")]
    BadSignature,
    #[error("token expired")]
    Expired,
    #[error("token not yet valid (nbf)")]
    NotYetValid,
    #[error("token issued in the future (iat)")]
    IssuedInFuture,
    #[error("claim {0:?} has the wrong type")]
    ClaimType(&'static str),
    #[error("jku {0:?} is not the trusted issuer's key URL (never fetched)")]
    ForeignJku(String),
}

impl Rejection {
    /// The protocol's `reason_code` for this refusal (PROTOCOL.md v1.1).
    pub fn code(&self) -> &'static str {
        match self {
            Rejection::TooLarge(..) => "too_large",
            Rejection::Malformed(_) | Rejection::ClaimType(_) => "malformed",
            Rejection::Algorithm(_) => "unsupported_algorithm",
            Rejection::UntrustedIssuer(_) => "untrusted_issuer",
            Rejection::UnknownKey(_) => "unknown_key",
            Rejection::BadSignature => "bad_signature",
            Rejection::Expired => "expired",
            Rejection::NotYetValid | Rejection::IssuedInFuture => "not_yet_valid",
            Rejection::ForeignJku(_) => "untrusted_key_url",
        }
    }
}

/// A token that passed validation.
#[derive(Debug, Clone)]
pub struct ValidToken {
    pub header: Map<String, Value>,
    pub claims: Map<String, Value>,
}

/// Decodes one base64url JWT segment into a JSON object, strictly: no
/// duplicate keys, bounded nesting.
pub fn decode_segment(seg: &str, what: &str) -> Result<Map<String, Value>, Rejection> {
    decode_segment_with(seg, what, DuplicateKeys::Refuse)
}

fn decode_segment_with(seg: &str, what: &str, duplicates: DuplicateKeys) -> Result<Map<String, Value>, Rejection> {
    let raw =
        B64.decode(seg.trim_end_matches('=')).map_err(|_| Rejection::Malformed(format!("{what} is not base64url")))?;
    super::strict_json::parse_object_with(&raw, duplicates).map_err(|e| Rejection::Malformed(format!("{what}: {e}")))
}

/// The claims of a JWT, unverified (for display, cache keys and tests;
/// never for a decision: that is [`validate`]).
pub fn peek_claims(token: &str) -> Option<Map<String, Value>> {
    let payload = token.split('.').nth(1)?;
    let raw = B64.decode(payload.trim_end_matches('=')).ok()?;
    match serde_json::from_slice(&raw).ok()? {
        Value::Object(m) => Some(m),
        _ => None,
    }
}

/// Validates `token` against `trusted` at time `now` (Unix seconds).
///
/// Order matters for the reasons given back: structure, algorithm, issuer,
/// key, signature, then time claims — a forged token is never told that it
/// is merely expired.
pub fn validate(token: &str, trusted: &[TrustedIssuer], now: i64) -> Result<ValidToken, Rejection> {
    validate_with(token, trusted, now, &Readings::IDPROP)
}

/// [`validate`] with the given readings of the points the pages leave open.
pub fn validate_with(
    token: &str,
    trusted: &[TrustedIssuer],
    now: i64,
    readings: &Readings,
) -> Result<ValidToken, Rejection> {
    validate_tolerating(token, trusted, now, readings, 0)
}

/// [`validate_with`] accepting tokens expired at most `exp_tolerance`
/// seconds ago: the Cloud Connector's Expiration Tolerance ("The length of
/// time in hours, that an application can use a principal issued for a user
/// after the token from cloud side has expired", 58803a2; `TV-3`).
pub fn validate_tolerating(
    token: &str,
    trusted: &[TrustedIssuer],
    now: i64,
    readings: &Readings,
    exp_tolerance: i64,
) -> Result<ValidToken, Rejection> {
    let token = token.trim();
    if token.len() > readings.max_token_bytes {
        return Err(Rejection::TooLarge(token.len(), readings.max_token_bytes));
    }
    let parts: Vec<&str> = token.split('.').collect();
    if parts.len() != 3 {
        return Err(Rejection::Malformed(format!("{} segments, expected 3", parts.len())));
    }
    let header = decode_segment_with(parts[0], "header", readings.duplicate_keys)?;
    let claims = decode_segment_with(parts[1], "payload", readings.duplicate_keys)?;
    // TV-2: only RS256; `none` and HS* are refused before anything else.
    let alg = header.get("alg").and_then(Value::as_str).unwrap_or("");
    if alg != "RS256" {
        return Err(Rejection::Algorithm(alg.to_string()));
    }
    if parts[2].is_empty() {
        return Err(Rejection::BadSignature);
    }
    // TV-1: issuer must be trusted; keys come from that issuer only (never
    // from the token's own `jku`).
    let iss = match claims.get("iss") {
        Some(Value::String(s)) => s.clone(),
        Some(_) => return Err(Rejection::ClaimType("iss")),
        None => return Err(Rejection::UntrustedIssuer(String::new())),
    };
    let idp = trusted.iter().find(|t| t.issuer == iss).ok_or_else(|| Rejection::UntrustedIssuer(iss.clone()))?;
    if let (Some(uri), Some(jku), ForeignJku::Refuse) = (&idp.jwks_uri, header.get("jku"), readings.foreign_jku) {
        if jku.as_str() != Some(uri.as_str()) {
            return Err(Rejection::ForeignJku(jku.as_str().unwrap_or("(not a string)").to_string()));
        }
    }
    let kid = match header.get("kid") {
        Some(Value::String(s)) => Some(s.as_str()),
        Some(_) => return Err(Rejection::Malformed("kid is not a string".into())),
        None => None,
    };
    let candidates: Vec<&jsonwebtoken::jwk::Jwk> = match (kid.and_then(|k| idp.jwks.find(k)), readings.unknown_kid) {
        (Some(key), _) => vec![key],
        (None, UnknownKid::Refuse) if kid.is_some() => vec![],
        (None, _) => idp.jwks.keys.iter().collect(),
    };
    if candidates.is_empty() {
        return Err(Rejection::UnknownKey(kid.unwrap_or("").to_string()));
    }
    // The signature over the token's own bytes; the claims were parsed
    // above (a claims parser of the JWT library could refuse what the
    // readings accept, e.g. duplicate member names).
    let message = format!("{}.{}", parts[0], parts[1]);
    let verified = candidates.iter().any(|jwk| {
        DecodingKey::from_jwk(jwk).ok().is_some_and(|key| {
            jsonwebtoken::crypto::verify(parts[2], message.as_bytes(), &key, Algorithm::RS256).unwrap_or(false)
        })
    });
    if !verified {
        return Err(Rejection::BadSignature);
    }
    // TV-3: time claims against the caller's clock.
    let num = |k: &'static str| -> Result<Option<i64>, Rejection> {
        match claims.get(k) {
            None => Ok(None),
            Some(Value::Number(n)) => {
                n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)).map(Some).ok_or(Rejection::ClaimType(k))
            }
            Some(_) => Err(Rejection::ClaimType(k)),
        }
    };
    match num("exp")? {
        Some(exp) if exp.saturating_add(exp_tolerance) > now => {}
        Some(_) => return Err(Rejection::Expired),
        None => return Err(Rejection::Malformed("no exp claim".into())),
    }
    if num("nbf")?.is_some_and(|nbf| nbf > now) {
        return Err(Rejection::NotYetValid);
    }
    if readings.future_iat == FutureIat::Refuse && num("iat")?.is_some_and(|iat| iat > now + IAT_SKEW_SECS) {
        return Err(Rejection::IssuedInFuture);
    }
    Ok(ValidToken { header, claims })
}
