//! Every rule of the specification, as pure functions, in one place.
//!
//! The mock Destination service and Cloud Connector run these; the harness's
//! builtin reference implementation runs these; the property tests use them
//! as the oracle. Each function cites the rule ids of
//! `shared/design/rules.md` it implements, and where the documentation is
//! ambiguous, says which reading it chose and why.
//!
//! | rules | module |
//! |---|---|
//! | `TU-1`..`TU-4` | [`token_url`] |
//! | `TU-6`, `CA-6`..`CA-9`, `FD-5`, `FD-6`, `AT-*` | [`token_request`], [`auth_type`] |
//! | `CA-1`..`CA-5` | [`client_auth`] |
//! | `TO-1`..`TO-5` | [`timeouts`] |
//! | `PX-1`..`PX-4` | [`prefixes`] |
//! | `CH-1`..`CH-3` | [`cache`] |
//! | `FD-2`..`FD-4` | [`auth_tokens`] |
//! | `TV-1`..`TV-4` | [`token_validation`] |
//! | `PP-2`..`PP-4` | [`principal`] |
//! | `SP-1`..`SP-5` | [`subject`], [`dn`] |
//! | the connector's whole step | [`principal_mapping`] |
//! | the readings of every open point | [`readings`] |
//! | `CP-1`..`CP-6`, `TP-2` (the Connectivity proxy) | [`connectivity`] |
//! | the connector's path allow-list | [`paths`] |
//! | `SC-1`..`SC-4` (system certificate, `SSL_CLIENT_CERT`, ICM trust) | [`backend_logon`] |
//! | `FR-1`..`FR-3` (destination fragments) | [`fragments`] |
//! | `DC-1` (predefined destination chains) | [`chains`] |
//! | `SB-1`, `SB-2` (SAML 2.0 bearer assertions, RFC 7522) | [`saml_bearer`] |
//! | `AP-1`..`AP-3` (the application of seed 000: token, audience, scope) | [`app_access`] |
//! | `AC-1`..`AC-3` (authorization code, PKCE, redirect URIs) | [`authorization_code`] |

pub mod app_access;
pub mod auth_tokens;
pub mod auth_type;
pub mod authorization_code;
pub mod backend_logon;
pub mod cache;
pub mod chains;
pub mod client_auth;
pub mod connectivity;
pub mod dn;
pub mod fragments;
pub mod paths;
pub mod prefixes;
pub mod principal;
pub mod principal_mapping;
pub mod properties;
pub mod readings;
pub mod saml_bearer;
pub mod strict_json;
pub mod subject;
pub mod timeouts;
pub mod token_request;
pub mod token_url;
pub mod token_validation;

pub use auth_tokens::{AuthToken, ErrorCode};
pub use auth_type::AuthenticationType;
pub use properties::Destination;
pub use readings::Readings;
pub use token_request::{plan, plan_for, plan_with, Plan, RequestTokens, TokenRequest};

/// A destination the rules cannot serve; the text goes to `authTokens[].error`
/// (`FD-4`), so it says what to change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleError {
    #[error("destination property {0} is required for this authentication type")]
    Missing(&'static str),
    #[error("destination property {property}: {message}")]
    Invalid { property: &'static str, message: String },
    #[error("{0} needs the user's token (X-user-token), and the call carried none")]
    NeedsUserToken(&'static str),
    #[error("not supported: {0}")]
    Unsupported(String),
    #[error("the Find Destination request must carry the header {0} for this authentication type")]
    MissingHeader(&'static str),
}

impl RuleError {
    pub fn code(&self) -> ErrorCode {
        match self {
            RuleError::Missing(_) | RuleError::Invalid { .. } => ErrorCode::Configuration,
            RuleError::NeedsUserToken(_) | RuleError::MissingHeader(_) => ErrorCode::MissingUserToken,
            RuleError::Unsupported(_) => ErrorCode::NotSupported,
        }
    }
}

#[cfg(test)]
mod tests;
