//! Destination chains (rule `DC-1`; 08a09f5, 3c82ad5, 13f633e, d716d41):
//! which predefined chain a Find Destination request names, what its first
//! step consumes, and how that step's token reaches the destination of the
//! request path.

use super::RuleError;

/// `X-chain-name` of the sequential user propagation chain (13f633e).
pub const SEQUENTIAL_USER_PROPAGATION: &str = "com.sap.sequentialUserPropagation";
/// `X-chain-name` of the IAS-generated SAML assertion chain (d716d41).
pub const IAS_SAML_BEARER: &str = "com.sap.iasGeneratedOAuth2SamlBearerAssertion";

/// The first step: a destination consumed with the chain variables' tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FirstStep {
    pub destination: String,
    pub fragment: Option<String>,
    pub fragment_optional: bool,
    pub input: Input,
}

/// The token the first step is consumed with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// As `X-user-token` (13f633e: "generate a user token using the user
    /// token provided by the user").
    UserToken(String),
    /// As `X-subject-token` and `X-subject-token-type` (d716d41's first
    /// step is an `OAuth2TokenExchange` destination, a943bb7).
    SubjectToken { token: String, token_type: String },
}

/// How the first step's token is given to the destination of the path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handoff {
    /// As the user's token (13f633e: "the destination specified in the REST
    /// API path … consume[s] the generated user token"; how exactly the page
    /// does not say: idprop reads it as `X-user-token`, a choice).
    UserToken,
    /// As the client-provided SAML assertion of an `OAuth2SAMLBearerAssertion`
    /// destination (d716d41: "a different destination to consume the
    /// generated assertion"; a943bb7 uses `SAMLAssertionProvider:
    /// ClientProvided`).
    SamlAssertion,
}

/// A predefined chain as a request names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chain {
    pub name: &'static str,
    pub first: FirstStep,
    pub handoff: Handoff,
}

/// Reads `X-chain-name` and its `X-chain-var-*` (`var` looks one up by its
/// name after the prefix). 3c82ad5: "Currently, only predefined chains are
/// supported"; each names its required variables. An unknown chain or a
/// missing variable is refused (the pages give no status; idprop: 400).
pub fn chain(name: &str, var: impl Fn(&str) -> Option<String>) -> Result<Chain, RuleError> {
    let required = |v: &'static str| {
        var(v).filter(|x| !x.trim().is_empty()).ok_or(RuleError::MissingHeader(match v {
            "tokenTransformationDestinationName" => "X-chain-var-tokenTransformationDestinationName",
            "userToken" => "X-chain-var-userToken",
            "samlProviderDestinationName" => "X-chain-var-samlProviderDestinationName",
            "subjectToken" => "X-chain-var-subjectToken",
            _ => "X-chain-var-subjectTokenType",
        }))
    };
    let optional = |v: &str| var(v).is_some_and(|x| x.trim().eq_ignore_ascii_case("true"));
    match name.trim() {
        SEQUENTIAL_USER_PROPAGATION => Ok(Chain {
            name: SEQUENTIAL_USER_PROPAGATION,
            first: FirstStep {
                destination: required("tokenTransformationDestinationName")?,
                fragment: var("tokenTransformationFragmentName"),
                fragment_optional: optional("tokenTransformationFragmentOptional"),
                input: Input::UserToken(required("userToken")?),
            },
            handoff: Handoff::UserToken,
        }),
        IAS_SAML_BEARER => Ok(Chain {
            name: IAS_SAML_BEARER,
            first: FirstStep {
                destination: required("samlProviderDestinationName")?,
                fragment: var("samlProviderFragmentName"),
                fragment_optional: optional("samlProviderFragmentOptional"),
                input: Input::SubjectToken {
                    token: required("subjectToken")?,
                    token_type: required("subjectTokenType")?,
                },
            },
            handoff: Handoff::SamlAssertion,
        }),
        other => Err(RuleError::Invalid {
            property: "X-chain-name",
            message: format!(
                "{other:?} is not a predefined chain ({SEQUENTIAL_USER_PROPAGATION}, {IAS_SAML_BEARER}; 3c82ad5)"
            ),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |k| pairs.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string())
    }

    #[test]
    fn each_predefined_chain_needs_its_variables() {
        let c = chain(
            SEQUENTIAL_USER_PROPAGATION,
            vars(&[("tokenTransformationDestinationName", "step1"), ("userToken", "eyJ.u.t")]),
        )
        .unwrap();
        assert_eq!(c.first.input, Input::UserToken("eyJ.u.t".into()));
        assert_eq!((c.first.destination.as_str(), c.handoff), ("step1", Handoff::UserToken));
        assert!(!c.first.fragment_optional);
        let err = chain(SEQUENTIAL_USER_PROPAGATION, vars(&[("tokenTransformationDestinationName", "s")])).unwrap_err();
        assert_eq!(err, RuleError::MissingHeader("X-chain-var-userToken"));
        let c = chain(
            IAS_SAML_BEARER,
            vars(&[
                ("samlProviderDestinationName", "ias"),
                ("subjectToken", "t"),
                ("subjectTokenType", "urn:ietf:params:oauth:token-type:access_token"),
                ("samlProviderFragmentName", "f"),
                ("samlProviderFragmentOptional", "true"),
            ]),
        )
        .unwrap();
        assert_eq!(c.handoff, Handoff::SamlAssertion);
        assert_eq!((c.first.fragment.as_deref(), c.first.fragment_optional), (Some("f"), true));
        assert!(chain("com.example.mine", vars(&[])).is_err());
    }
}
