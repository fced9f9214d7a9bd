//! Who the user is: the principal name `${name}` by claim priority (rules
//! `PP-2`..`PP-4`, `TV-4`).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// `${user_type}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub enum UserType {
    Business,
    Technical,
}

impl UserType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Business => "Business",
            Self::Technical => "Technical",
        }
    }

    /// The user type of a token: `Technical` for a client-credentials token
    /// (no user in it), else `Business`. Spec note: the Cloud Connector pages
    /// name the two types but not how a token is classified; a token that
    /// XSUAA issued by `client_credentials` carries no user, so it is the
    /// only sensible "technical" one.
    pub fn of(claims: &Map<String, Value>) -> Self {
        let cc = claims.get("grant_type").and_then(Value::as_str) == Some("client_credentials");
        if cc && !claims.contains_key("user_name") {
            Self::Technical
        } else {
            Self::Business
        }
    }

    /// `PP-2` / `PP-3`: the claims `${name}` is taken from, highest first.
    pub fn name_claims(self) -> &'static [&'static str] {
        match self {
            Self::Business => &BUSINESS_PRIORITY,
            Self::Technical => &TECHNICAL_PRIORITY,
        }
    }
}

/// `PP-2`: business users (000232b, 58803a2).
pub const BUSINESS_PRIORITY: [&str; 5] = ["user_name", "email", "mail", "user_uuid", "sub"];
/// `PP-3`: technical users (58803a2).
pub const TECHNICAL_PRIORITY: [&str; 4] = ["client_id", "cid", "sub", "azp"];

/// Why no principal could be named.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PrincipalError {
    #[error("token has no principal claim (none of {0})")]
    NoPrincipal(String),
    #[error("principal claim {0:?} is not a non-empty string")]
    BadClaim(String),
}

/// Where the user type comes from when the caller does not say which
/// Connectivity header the token came in (protocol v1.1 `propagation`
/// absent). At the Cloud Connector the header decides
/// (configure-subject-patterns-58803a2.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UnknownHeader {
    /// idprop's reading: from the claims ([`UserType::of`]).
    FromClaims,
    /// The other: the protocol's default, `SAP-Connectivity-Authentication`,
    /// so a business user.
    Business,
}

impl UnknownHeader {
    /// The user type of `claims` under this reading.
    pub fn user_type(self, claims: &Map<String, Value>) -> UserType {
        match self {
            UnknownHeader::FromClaims => UserType::of(claims),
            UnknownHeader::Business => UserType::Business,
        }
    }
}

/// What a principal claim of the wrong type (number, array, object, empty
/// string) means. The pages list the claims in priority order and say
/// nothing of types (`TV-4` is a `choice`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WrongTypeClaim {
    /// idprop's reading: refuse the token — falling through to a lower claim
    /// would propagate another identity than the issuer meant.
    Refuse,
    /// The other: skip it, as if absent, and take the next claim.
    Skip,
}

/// The principal of `claims` for `user_type`: the first claim of the
/// priority list that is present (`PP-2`, `PP-3`; the seed's sample token
/// gives its `email`, `test@users.com`: `PP-4`). A claim that is present but
/// null counts as absent; one of another type is refused ([`WrongTypeClaim`]).
pub fn principal(claims: &Map<String, Value>, user_type: UserType) -> Result<String, PrincipalError> {
    principal_with(claims, user_type, WrongTypeClaim::Refuse)
}

/// [`principal`] with a reading of wrong-type claims.
pub fn principal_with(
    claims: &Map<String, Value>,
    user_type: UserType,
    wrong_type: WrongTypeClaim,
) -> Result<String, PrincipalError> {
    for claim in user_type.name_claims() {
        match claims.get(*claim) {
            None | Some(Value::Null) => continue,
            Some(Value::String(s)) if !s.is_empty() => return Ok(s.clone()),
            Some(_) if wrong_type == WrongTypeClaim::Skip => continue,
            Some(_) => return Err(PrincipalError::BadClaim(claim.to_string())),
        }
    }
    Err(PrincipalError::NoPrincipal(user_type.name_claims().join(", ")))
}
