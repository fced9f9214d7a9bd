//! The `authTokens` entries of a Find Destination answer (rules `FD-2`..`FD-4`).

use base64::Engine;
use serde::{Deserialize, Serialize};

use super::auth_type::AuthenticationType;

/// `http_header` of an auth token: what the client sends, verbatim (`CO-4`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct HttpHeader {
    pub key: String,
    pub value: String,
}

/// One `authTokens` entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct AuthToken {
    #[serde(rename = "type")]
    pub kind: String,
    pub value: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub http_header: Option<HttpHeader>,
    /// Seconds, as a string (the response-structure page's `"3600"`; facts (j)17).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub expires_in: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub scope: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub error: Option<String>,
    /// `OAuth2TokenExchange` only (83a3f3b).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub issued_token_type: Option<String>,
    /// What kind of failure `error` is. Not part of SAP's response (the mock
    /// Destination service never sends it); the harness's reference adds it
    /// to its protocol answers as `error_code` (PROTOCOL.md v1.1).
    #[serde(skip)]
    pub error_code: Option<ErrorCode>,
}

/// The protocol's `error_code` values (PROTOCOL.md v1.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    Timeout,
    ConnectFailed,
    HttpStatus,
    BadResponse,
    NotSupported,
    Configuration,
    MissingUserToken,
    Other,
}

impl ErrorCode {
    pub const ALL: [ErrorCode; 8] = [
        ErrorCode::Timeout,
        ErrorCode::ConnectFailed,
        ErrorCode::HttpStatus,
        ErrorCode::BadResponse,
        ErrorCode::NotSupported,
        ErrorCode::Configuration,
        ErrorCode::MissingUserToken,
        ErrorCode::Other,
    ];

    /// The protocol's closed list, in order.
    pub const NAMES: [&'static str; 8] = {
        let mut names = [""; 8];
        let mut i = 0;
        while i < names.len() {
            names[i] = Self::ALL[i].as_str();
            i += 1;
        }
        names
    };

    pub const fn as_str(self) -> &'static str {
        match self {
            ErrorCode::Timeout => "timeout",
            ErrorCode::ConnectFailed => "connect_failed",
            ErrorCode::HttpStatus => "http_status",
            ErrorCode::BadResponse => "bad_response",
            ErrorCode::NotSupported => "not_supported",
            ErrorCode::Configuration => "configuration",
            ErrorCode::MissingUserToken => "missing_user_token",
            ErrorCode::Other => "other",
        }
    }
}

impl AuthToken {
    /// A bearer token for `auth`: `FD-2` puts technical-user tokens under
    /// `SAP-Connectivity-Technical-Authentication`, `FD-3` every other OAuth2
    /// type under `Authorization`.
    pub fn bearer(auth: AuthenticationType, token: &str, expires_in: Option<u64>, scope: Option<String>) -> Self {
        Self {
            kind: "Bearer".into(),
            value: token.into(),
            http_header: Some(HttpHeader { key: auth.header_key().into(), value: format!("Bearer {token}") }),
            expires_in: expires_in.map(|e| e.to_string()),
            scope,
            error: None,
            issued_token_type: None,
            error_code: None,
        }
    }

    /// `FD-3` `BasicAuthentication`: `Authorization: Basic base64(user:password)`.
    pub fn basic(user: &str, password: &str) -> Self {
        let v = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        Self {
            kind: "Basic".into(),
            value: v.clone(),
            http_header: Some(HttpHeader { key: "Authorization".into(), value: format!("Basic {v}") }),
            ..Default::default()
        }
    }

    /// `FD-4`: empty `type` and `value`, the cause in `error`.
    pub fn error(code: ErrorCode, message: impl Into<String>) -> Self {
        Self { error: Some(message.into()), error_code: Some(code), ..Default::default() }
    }

    pub fn is_error(&self) -> bool {
        self.error.as_deref().is_some_and(|e| !e.is_empty())
    }
}
