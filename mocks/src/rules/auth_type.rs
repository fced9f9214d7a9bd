//! The destination authentication types and what each asks of the token
//! service (rules `CA-8`, `AT-1`..`AT-5`, `FD-5`).

use super::RuleError;

/// `Authentication` of a destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum AuthenticationType {
    NoAuthentication,
    BasicAuthentication,
    PrincipalPropagation,
    OAuth2ClientCredentials,
    OAuth2TechnicalUserPropagation,
    OAuth2JWTBearer,
    OAuth2UserTokenExchange,
    OAuth2Password,
    OAuth2SAMLBearerAssertion,
    OAuth2RefreshToken,
    OAuth2TokenExchange,
    ClientCertificateAuthentication,
}

impl AuthenticationType {
    pub const ALL: [AuthenticationType; 12] = [
        Self::NoAuthentication,
        Self::BasicAuthentication,
        Self::PrincipalPropagation,
        Self::OAuth2ClientCredentials,
        Self::OAuth2TechnicalUserPropagation,
        Self::OAuth2JWTBearer,
        Self::OAuth2UserTokenExchange,
        Self::OAuth2Password,
        Self::OAuth2SAMLBearerAssertion,
        Self::OAuth2RefreshToken,
        Self::OAuth2TokenExchange,
        Self::ClientCertificateAuthentication,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::NoAuthentication => "NoAuthentication",
            Self::BasicAuthentication => "BasicAuthentication",
            Self::PrincipalPropagation => "PrincipalPropagation",
            Self::OAuth2ClientCredentials => "OAuth2ClientCredentials",
            Self::OAuth2TechnicalUserPropagation => "OAuth2TechnicalUserPropagation",
            Self::OAuth2JWTBearer => "OAuth2JWTBearer",
            Self::OAuth2UserTokenExchange => "OAuth2UserTokenExchange",
            Self::OAuth2Password => "OAuth2Password",
            Self::OAuth2SAMLBearerAssertion => "OAuth2SAMLBearerAssertion",
            Self::OAuth2RefreshToken => "OAuth2RefreshToken",
            Self::OAuth2TokenExchange => "OAuth2TokenExchange",
            Self::ClientCertificateAuthentication => "ClientCertificateAuthentication",
        }
    }

    /// Reads `Authentication`; absent means `NoAuthentication`. The
    /// misspelling `OAuthUserTokenExchange` of the response-structure page
    /// (facts (j)5) is accepted for `OAuth2UserTokenExchange`.
    pub fn parse(value: Option<&str>) -> Result<Self, RuleError> {
        let v = value.map(str::trim).unwrap_or("");
        if v.is_empty() {
            return Ok(Self::NoAuthentication);
        }
        if v == "OAuthUserTokenExchange" {
            return Ok(Self::OAuth2UserTokenExchange);
        }
        Self::ALL.into_iter().find(|t| t.as_str() == v).ok_or_else(|| RuleError::Invalid {
            property: "Authentication",
            message: format!("unknown authentication type {v:?}"),
        })
    }

    /// Whether the type needs the caller's user token (`AT-5`).
    pub fn is_user_based(self) -> bool {
        matches!(self, Self::OAuth2JWTBearer | Self::OAuth2UserTokenExchange | Self::OAuth2SAMLBearerAssertion)
    }

    /// Whether the service fetches a token for this type.
    pub fn retrieves_token(self) -> bool {
        matches!(
            self,
            Self::OAuth2ClientCredentials
                | Self::OAuth2TechnicalUserPropagation
                | Self::OAuth2JWTBearer
                | Self::OAuth2UserTokenExchange
                | Self::OAuth2Password
                | Self::OAuth2SAMLBearerAssertion
                | Self::OAuth2RefreshToken
                | Self::OAuth2TokenExchange
        )
    }

    /// The header the client must send the token in (`FD-2`, `FD-3`).
    pub fn header_key(self) -> &'static str {
        match self {
            Self::OAuth2TechnicalUserPropagation => "SAP-Connectivity-Technical-Authentication",
            _ => "Authorization",
        }
    }
}

/// `grant_type` values.
pub mod grant {
    pub const CLIENT_CREDENTIALS: &str = "client_credentials";
    pub const PASSWORD: &str = "password";
    pub const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
    /// RFC 6749 §6 (bff0136 names no literal).
    pub const REFRESH_TOKEN: &str = "refresh_token";
}
