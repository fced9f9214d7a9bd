//! The complete token request a destination asks for: the composition of
//! every other rule, still pure.

use super::auth_tokens::AuthToken;
use super::auth_type::{grant, AuthenticationType};
use super::cache::CacheKey;
use super::client_auth;
use super::prefixes::Prefixed;
use super::properties::Destination;
use super::readings::{DedicatedCache, Readings};
use super::timeouts::{Timeouts, CONNECT_PROPERTY, READ_PROPERTY};
use super::token_url::{self, UrlType};
use super::RuleError;

/// Reference to a key store the client certificate comes from (`CA-6`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyStoreRef {
    /// `tokenService.KeyStoreLocation`: the name of an uploaded certificate.
    pub location: String,
    pub password: Option<String>,
}

/// One token request, fully decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRequest {
    pub auth: AuthenticationType,
    /// Resolved URL with `tokenServiceURL.queries.*` appended.
    pub url: String,
    /// `tokenServiceURL.headers.*` (`PX-1`).
    pub headers: Vec<(String, String)>,
    /// The form body, in order: grant, client credentials, grant
    /// parameters, `scope`, `tokenService.body.*`.
    pub form: Vec<(String, String)>,
    /// `Authorization: Basic` credentials.
    pub basic: Option<(String, String)>,
    pub timeouts: Timeouts,
    pub key_store: Option<KeyStoreRef>,
    /// `clientAssertion.destinationName` (`CA-7`).
    pub client_assertion_destination: Option<String>,
    /// `tokenServiceURL.ProxyType` else `ProxyType` (`TU-6`); for
    /// `OAuth2TechnicalUserPropagation` always `Internet` (`FD-6`).
    pub proxy_type: ProxyType,
    /// `CloudConnectorLocationId`: the Cloud Connector an `OnPremise` token
    /// service is reached through ("If `OnPremise` is used, the OAuth server
    /// must be accessed through the Cloud Connector", 4e1d742 and four more).
    pub location_id: Option<String>,
    /// `TrustAll`: do not verify the token service's certificate.
    pub trust_all: bool,
    pub cache_key: CacheKey,
    /// `OAuth2SAMLBearerAssertion`: the assertion the service generates and
    /// signs (`SB-2`), then sends as `assertion`.
    pub saml: Option<SamlPlan>,
}

/// The assertion of an `OAuth2SAMLBearerAssertion` destination (c69ea6a,
/// 3cb7b81), decided from its properties and the user's token; signing is
/// the service's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SamlPlan {
    /// `NameID` (3cb7b81, "Determine the Propagated User ID").
    pub name_id: String,
    /// `nameIdFormat`, when set.
    pub name_id_format: Option<String>,
    /// `nameQualifier`, when set.
    pub name_qualifier: Option<String>,
    /// `audience`.
    pub audience: String,
    /// `assertionIssuer`; absent, the subaccount's Destination Trust entity id.
    pub issuer: Option<String>,
    /// `assertionRecipient`, else the token service URL ("If not set, the
    /// token service URL will be the assertion's recipient").
    pub recipient: String,
    /// `authnContextClassRef`.
    pub authn_context_class_ref: String,
    /// 3cb7b81, "Propagate User Attributes".
    pub attributes: Vec<(String, Vec<String>)>,
    /// `includeSigningCertificateInSAMLAssertion`.
    pub include_certificate: bool,
    /// `samlAssertionEncoding`: "If not set, the encoding will be
    /// "base64url"" (c69ea6a).
    pub encoding: SamlEncoding,
}

/// `samlAssertionEncoding` (c69ea6a): RFC 4648 §4 or §5.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SamlEncoding {
    Base64,
    Base64Url,
}

/// How a token service is reached (`TU-6`): "You can only use proxy type
/// `Internet` or `OnPremise`. If `OnPremise` is used, the OAuth server must
/// be accessed through the Cloud Connector" (4e1d742).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyType {
    Internet,
    OnPremise,
}

impl ProxyType {
    /// Case-insensitive, as every property value of a type.
    pub fn parse(v: &str) -> Option<Self> {
        if v.eq_ignore_ascii_case("Internet") {
            Some(ProxyType::Internet)
        } else if v.eq_ignore_ascii_case("OnPremise") {
            Some(ProxyType::OnPremise)
        } else {
            None
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ProxyType::Internet => "Internet",
            ProxyType::OnPremise => "OnPremise",
        }
    }
}

/// `CA-7`: a client assertion stands in for the client secret: the secret
/// goes, `client_assertion_type` and `client_assertion` come (RFC 7521 §4.2).
pub fn with_client_assertion(form: &mut Vec<(String, String)>, assertion_type: String, assertion: String) {
    form.retain(|(k, _)| k != "client_secret");
    form.push(("client_assertion_type".into(), assertion_type));
    form.push(("client_assertion".into(), assertion));
}

/// The caller's tokens a Find Destination request carries beside the
/// destination's properties, as request headers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RequestTokens<'a> {
    /// `X-user-token` (else a user token in `Authorization`, 39d4265).
    pub user_token: Option<&'a str>,
    /// `X-refresh-token` (bff0136: "a required header parameter" for
    /// `OAuth2RefreshToken`).
    pub refresh_token: Option<&'a str>,
    /// `X-subject-token`, `X-subject-token-type` (f4d28ea: "mandatory for
    /// this authentication type").
    pub subject_token: Option<&'a str>,
    pub subject_token_type: Option<&'a str>,
    /// `X-actor-token`, `X-actor-token-type`: no page names them; SAP Cloud
    /// SDK for Python sends them, and RFC 8693 §2.1 defines the parameters.
    pub actor_token: Option<&'a str>,
    pub actor_token_type: Option<&'a str>,
    /// `X-client-assertion-type` and `X-client-assertion` (6c98d97).
    pub client_assertion_type: Option<&'a str>,
    pub client_assertion: Option<&'a str>,
    /// `X-client-assertion-destination-name` (1c34472).
    pub client_assertion_destination: Option<&'a str>,
    /// `X-samlAssertion`: the assertion of a `ClientProvided` SAML bearer
    /// destination (c69ea6a; the header name is SAP Cloud SDK for Python's).
    pub saml_assertion: Option<&'a str>,
}

impl<'a> RequestTokens<'a> {
    /// The tokens of a Find Destination request whose header `name` (any
    /// case, RFC 9110 §5.1) `header` gives; `user_token` is the caller's
    /// user token as the service decided it (39d4265).
    pub fn from_headers(user_token: Option<&'a str>, header: impl Fn(&str) -> Option<&'a str>) -> Self {
        Self {
            user_token,
            refresh_token: header("x-refresh-token"),
            subject_token: header("x-subject-token"),
            subject_token_type: header("x-subject-token-type"),
            actor_token: header("x-actor-token"),
            actor_token_type: header("x-actor-token-type"),
            client_assertion_type: header("x-client-assertion-type"),
            client_assertion: header("x-client-assertion"),
            client_assertion_destination: header("x-client-assertion-destination-name"),
            saml_assertion: header("x-samlassertion"),
        }
    }
}

/// `grant_type` of RFC 8693 token exchange (f4d28ea names no literal).
pub const TOKEN_EXCHANGE_GRANT: &str = "urn:ietf:params:oauth:grant-type:token-exchange";

/// What a destination asks of the service.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(clippy::large_enum_variant)]
pub enum Plan {
    /// No token: `NoAuthentication`, `PrincipalPropagation` (`AT-4`: the
    /// client sends the user token to the proxy itself),
    /// `ClientCertificateAuthentication`.
    NoToken,
    /// A token computed without any request (`BasicAuthentication`).
    Static(AuthToken),
    /// A token request.
    Fetch(TokenRequest),
}

/// Plans the token retrieval of `d` on behalf of `tenant`, for the caller
/// whose token is `user_token` (user-based types only).
pub fn plan(d: &Destination, tenant: &str, user_token: Option<&str>) -> Result<Plan, RuleError> {
    plan_with(d, tenant, user_token, &Readings::IDPROP)
}

/// [`plan`] with the given readings of `CA-4` and the cache key (`CH-3`).
pub fn plan_with(
    d: &Destination,
    tenant: &str,
    user_token: Option<&str>,
    readings: &Readings,
) -> Result<Plan, RuleError> {
    plan_for(d, tenant, &RequestTokens { user_token, ..Default::default() }, readings)
}

/// [`plan_with`] with every token the request carries (`RT-1`, `TE-1`,
/// `CA-10`).
pub fn plan_for(
    d: &Destination,
    tenant: &str,
    tokens: &RequestTokens<'_>,
    readings: &Readings,
) -> Result<Plan, RuleError> {
    let user_token = tokens.user_token;
    let auth = AuthenticationType::parse(d.get("Authentication"))?;
    match auth {
        AuthenticationType::NoAuthentication
        | AuthenticationType::PrincipalPropagation
        | AuthenticationType::ClientCertificateAuthentication => return Ok(Plan::NoToken),
        AuthenticationType::BasicAuthentication => {
            let user = d.get("User").ok_or(RuleError::Missing("User"))?;
            return Ok(Plan::Static(AuthToken::basic(user, d.get("Password").unwrap_or(""))));
        }
        _ => {}
    }
    let client_provided = auth == AuthenticationType::OAuth2SAMLBearerAssertion
        && d.get("SAMLAssertionProvider").is_some_and(|p| p.eq_ignore_ascii_case("ClientProvided"));
    // The tokens the type needs from the request, checked before anything
    // else so the error names the missing header.
    if auth == AuthenticationType::OAuth2RefreshToken && present(tokens.refresh_token).is_none() {
        return Err(RuleError::MissingHeader("X-refresh-token"));
    }
    if auth == AuthenticationType::OAuth2TokenExchange {
        if present(tokens.subject_token).is_none() {
            return Err(RuleError::MissingHeader("X-subject-token"));
        }
        if present(tokens.subject_token_type).is_none() {
            return Err(RuleError::MissingHeader("X-subject-token-type"));
        }
    }
    if client_provided && present(tokens.saml_assertion).is_none() {
        return Err(RuleError::MissingHeader("X-samlAssertion"));
    }
    let header_assertion = match (present(tokens.client_assertion_type), present(tokens.client_assertion)) {
        (Some(t), Some(a)) if present(tokens.client_assertion_destination).is_none() => Some((t, a)),
        (Some(_), Some(_)) => {
            return Err(RuleError::Invalid {
                property: "X-client-assertion",
                message: "X-client-assertion and X-client-assertion-type are not allowed together with X-client-assertion-destination-name (1c34472)".into(),
            })
        }
        (None, None) => None,
        _ => {
            return Err(RuleError::Invalid {
                property: "X-client-assertion",
                message: "X-client-assertion-type and X-client-assertion are both mandatory when either is sent (6c98d97)".into(),
            })
        }
    };
    // FD-5: technical user propagation only makes sense through the Cloud Connector.
    if auth == AuthenticationType::OAuth2TechnicalUserPropagation && !d.proxy_type().eq_ignore_ascii_case("OnPremise") {
        return Err(RuleError::Invalid {
            property: "ProxyType",
            message: format!("OAuth2TechnicalUserPropagation requires ProxyType OnPremise, not {}", d.proxy_type()),
        });
    }
    let saml = auth == AuthenticationType::OAuth2SAMLBearerAssertion;
    // c69ea6a: the SAML bearer type names its client `clientKey`.
    let client_id = if saml {
        d.get("clientKey").ok_or(RuleError::Missing("clientKey"))?
    } else {
        d.get("clientId").ok_or(RuleError::Missing("clientId"))?
    };
    let raw_url = d.get("tokenServiceURL").ok_or(RuleError::Missing("tokenServiceURL"))?;
    // f4d28ea: "OAuth2TokenExchange destinations don't support dynamic
    // tenant-specific token service URLs. The token service URL is always
    // taken as is."
    let url_type = if auth == AuthenticationType::OAuth2TokenExchange {
        UrlType::Dedicated
    } else {
        UrlType::parse_with(d.get("tokenServiceURLType"), readings.absent_url_type)?
    };
    let resolved = token_url::resolve(raw_url, url_type, tenant)?;
    let prefixed = Prefixed::of(d);
    let url = append_queries(&resolved, &prefixed.token_queries)?;

    // A ClientProvided assertion names the user itself (c69ea6a).
    let user = match (auth.is_user_based() && !client_provided, present(user_token)) {
        (true, None) => return Err(RuleError::NeedsUserToken(auth.as_str())),
        (true, Some(t)) => Some(t),
        (false, _) => None,
    };

    let mut ca = if saml {
        // c69ea6a: `clientKey` "identifies the consumer to the authorization
        // server"; `tokenServiceUser`/`tokenServicePassword` are the "User
        // for basic authentication to OAuth server (if required)".
        client_auth::ClientAuth {
            basic: d
                .get("tokenServiceUser")
                .map(|u| (u.to_string(), d.get("tokenServicePassword").unwrap_or("").to_string())),
            body: vec![("client_id".into(), client_id.to_string())],
        }
    } else {
        client_auth::placement_with(d, readings.ca4)
    };
    let key_store = d.get("tokenService.KeyStoreLocation").map(|l| KeyStoreRef {
        location: l.to_string(),
        password: d.get("tokenService.KeyStorePassword").map(str::to_string),
    });
    if key_store.is_some() {
        without_client_secret(&mut ca, client_id);
    }
    let mut form: Vec<(String, String)> = Vec::new();
    let g = match auth {
        AuthenticationType::OAuth2ClientCredentials | AuthenticationType::OAuth2TechnicalUserPropagation => {
            grant::CLIENT_CREDENTIALS
        }
        AuthenticationType::OAuth2JWTBearer | AuthenticationType::OAuth2UserTokenExchange => grant::JWT_BEARER,
        AuthenticationType::OAuth2Password => grant::PASSWORD,
        AuthenticationType::OAuth2SAMLBearerAssertion => super::saml_bearer::GRANT_TYPE,
        AuthenticationType::OAuth2RefreshToken => grant::REFRESH_TOKEN,
        AuthenticationType::OAuth2TokenExchange => TOKEN_EXCHANGE_GRANT,
        _ => unreachable!("types without retrieval returned above"),
    };
    form.push(("grant_type".into(), g.into()));
    form.extend(ca.body.iter().cloned());
    match auth {
        AuthenticationType::OAuth2JWTBearer | AuthenticationType::OAuth2UserTokenExchange => {
            form.push(("assertion".into(), user.unwrap_or_default().to_string()));
        }
        AuthenticationType::OAuth2Password => {
            form.push(("username".into(), d.get("User").ok_or(RuleError::Missing("User"))?.to_string()));
            form.push(("password".into(), d.get("Password").unwrap_or("").to_string()));
        }
        AuthenticationType::OAuth2SAMLBearerAssertion => {
            if let Some(company) = d.get("companyId") {
                form.push(("company_id".into(), company.to_string()));
            }
            if let Some(a) = present(tokens.saml_assertion).filter(|_| client_provided) {
                // "the service will pass it to the token service" (c69ea6a).
                form.push(("assertion".into(), a.to_string()));
            }
        }
        // RT-1: RFC 6749 §6, `refresh_token`.
        AuthenticationType::OAuth2RefreshToken => {
            form.push(("refresh_token".into(), present(tokens.refresh_token).unwrap_or_default().to_string()));
        }
        // TE-1: RFC 8693 §2.1; the actor only when given.
        AuthenticationType::OAuth2TokenExchange => {
            form.push(("subject_token".into(), present(tokens.subject_token).unwrap_or_default().to_string()));
            form.push((
                "subject_token_type".into(),
                present(tokens.subject_token_type).unwrap_or_default().to_string(),
            ));
            if let Some(a) = present(tokens.actor_token) {
                form.push(("actor_token".into(), a.to_string()));
                if let Some(t) = present(tokens.actor_token_type) {
                    form.push(("actor_token_type".into(), t.to_string()));
                }
            }
        }
        _ => {}
    }
    // CA-10: assertion headers stand in for the client secret (789acee);
    // they disable `clientAssertion.destinationName` (1c34472).
    if let Some((t, a)) = header_assertion {
        with_client_assertion(&mut form, t.to_string(), a.to_string());
    }
    // The Recipient is the token service URL as resolved, without the
    // `tokenServiceURL.queries.*` (RFC 7522 §3 item 7: "the token endpoint
    // URL"; a token server compares its endpoint).
    let saml = if saml && !client_provided { Some(saml_plan(d, user.unwrap_or_default(), &resolved)?) } else { None };
    // CA-9: scope unchanged, only when set.
    if let Some(scope) = d.0.get("scope").filter(|s| !s.trim().is_empty()) {
        form.push(("scope".into(), scope.clone()));
    }
    // PX-3: extra body fields; the grant's own parameters are not
    // overridden (a duplicate `grant_type` would make the request ambiguous).
    for (k, v) in &prefixed.token_body {
        if !form.iter().any(|(f, _)| f == k) {
            form.push((k.clone(), v.clone()));
        }
    }
    let proxy_type = if auth == AuthenticationType::OAuth2TechnicalUserPropagation {
        ProxyType::Internet
    } else {
        let raw = d.get("tokenServiceURL.ProxyType").unwrap_or(d.proxy_type());
        ProxyType::parse(raw).ok_or_else(|| RuleError::Invalid {
            property: "tokenServiceURL.ProxyType",
            message: format!("{raw:?}: only Internet and OnPremise are allowed"),
        })?
    };
    Ok(Plan::Fetch(TokenRequest {
        auth,
        cache_key: CacheKey {
            tenant: match (url_type, readings.dedicated_cache) {
                (UrlType::Dedicated, DedicatedCache::Shared) => String::new(),
                _ => tenant.to_string(),
            },
            destination: d.name().to_string(),
            user: request_identity(user, tokens, header_assertion),
            client_id: client_id.to_string(),
            token_url: url.clone(),
            properties: super::cache::properties_digest(&d.0),
        },
        url,
        headers: prefixed.token_headers,
        form,
        basic: ca.basic,
        timeouts: Timeouts::from_properties_with(d.get(CONNECT_PROPERTY), d.get(READ_PROPERTY), readings.zero_timeout),
        key_store,
        client_assertion_destination: if header_assertion.is_some() {
            None
        } else {
            // "this header overrides the property" (1c34472).
            present(tokens.client_assertion_destination)
                .or(d.get("clientAssertion.destinationName"))
                .map(str::to_string)
        },
        proxy_type,
        location_id: d.get("CloudConnectorLocationId").filter(|l| !l.is_empty()).map(str::to_string),
        trust_all: d.get("TrustAll").is_some_and(|v| v.eq_ignore_ascii_case("true")),
        saml,
    }))
}

/// `SB-2`: the assertion an `OAuth2SAMLBearerAssertion` destination asks
/// for, from its properties (c69ea6a: `audience` and `authnContextClassRef`
/// are required) and the user's token (3cb7b81).
fn saml_plan(d: &Destination, user_token: &str, token_url: &str) -> Result<SamlPlan, RuleError> {
    let claims = super::token_validation::peek_claims(user_token).ok_or_else(|| RuleError::Invalid {
        property: "X-user-token",
        message: "the user's token is not a readable JWT".into(),
    })?;
    let name_id_format = d.get("nameIdFormat").map(str::to_string);
    let name_id = super::saml_bearer::user_id(&claims, d.get("userIdSource"), name_id_format.as_deref())
        .map_err(|message| RuleError::Invalid { property: "userIdSource", message })?;
    let flag = |k: &str| d.get(k).is_some_and(|v| v.eq_ignore_ascii_case("true"));
    let encoding = match d.get("samlAssertionEncoding") {
        None => SamlEncoding::Base64Url,
        Some(v) if v.eq_ignore_ascii_case("base64url") => SamlEncoding::Base64Url,
        Some(v) if v.eq_ignore_ascii_case("base64") => SamlEncoding::Base64,
        Some(v) => {
            return Err(RuleError::Invalid {
                property: "samlAssertionEncoding",
                message: format!("{v:?}: the possible values are base64 and base64url"),
            })
        }
    };
    Ok(SamlPlan {
        name_id,
        name_id_format,
        name_qualifier: d.get("nameQualifier").map(str::to_string),
        audience: d.get("audience").ok_or(RuleError::Missing("audience"))?.to_string(),
        issuer: d.get("assertionIssuer").map(str::to_string),
        recipient: d.get("assertionRecipient").unwrap_or(token_url).to_string(),
        authn_context_class_ref: d
            .get("authnContextClassRef")
            .ok_or(RuleError::Missing("authnContextClassRef"))?
            .to_string(),
        attributes: super::saml_bearer::attributes(
            &claims,
            flag("skipUserAttributesPrefixInSAMLAttributes"),
            flag("skipUserUuidInSAMLAttributes"),
        ),
        include_certificate: flag("includeSigningCertificateInSAMLAssertion"),
        encoding,
    })
}

/// `CA-6`: with a key store the client certificate authenticates the client
/// "instead of a client secret" (oauth-with-x-509-client-certificates-2c162aa.md),
/// and RFC 6749 §2.3: "The client MUST NOT use more than one authentication
/// method in each request." The secret goes (from the body, or the client's
/// Basic header); `client_id` stays in the body to name the client. A
/// `tokenServiceUser` in Basic is a user, not the client, and stays.
fn without_client_secret(ca: &mut client_auth::ClientAuth, client_id: &str) {
    ca.body.retain(|(k, _)| k != "client_secret");
    if ca.basic.as_ref().is_some_and(|(u, _)| u == client_id) {
        ca.basic = None;
    }
    if !ca.body.iter().any(|(k, _)| k == "client_id") {
        ca.body.insert(0, ("client_id".into(), client_id.to_string()));
    }
}

/// `PX-2`: appends query parameters, keeping any the URL already has.
pub fn append_queries(url: &str, queries: &[(String, String)]) -> Result<String, RuleError> {
    if queries.is_empty() {
        return Ok(url.to_string());
    }
    let mut u = url::Url::parse(url).map_err(|e| RuleError::Invalid {
        property: "tokenServiceURL",
        message: format!("{url:?} is not a valid URL: {e}"),
    })?;
    {
        let mut q = u.query_pairs_mut();
        for (k, v) in queries {
            q.append_pair(k, v);
        }
    }
    Ok(u.to_string())
}

/// A header's value when it has one (an empty header counts as absent, as
/// 39d4265 says of `X-user-token`).
fn present(t: Option<&str>) -> Option<&str> {
    t.map(str::trim).filter(|t| !t.is_empty())
}

/// Who the cached token is for (`CH-3`): the user, and every token of the
/// request that goes into the token request (a refresh token, a subject or
/// actor token, a client assertion), so another caller's never matches.
fn request_identity(user: Option<&str>, tokens: &RequestTokens<'_>, assertion: Option<(&str, &str)>) -> String {
    let mut parts: Vec<String> = user.map(user_identity).into_iter().collect();
    for (label, t) in [
        ("refresh", tokens.refresh_token),
        ("subject", tokens.subject_token),
        ("actor", tokens.actor_token),
        ("saml", tokens.saml_assertion),
        ("assertion", assertion.map(|(_, a)| a)),
    ] {
        if let Some(t) = t.filter(|t| !t.trim().is_empty()) {
            parts.push(format!("{label}:{}", user_identity(t)));
        }
    }
    parts.join("|")
}

/// A stable identity of a user token for cache keys (`CH-3`): zone and
/// subject when readable, else a digest of the whole token.
pub fn user_identity(token: &str) -> String {
    if let Some(c) = super::token_validation::peek_claims(token) {
        let s = |k: &str| c.get(k).and_then(|v| v.as_str()).unwrap_or("").to_string();
        let (zid, sub) = (s("zid"), s("sub"));
        if !sub.is_empty() {
            return format!("{zid}/{sub}/{}", s("user_name"));
        }
    }
    let mut h: u64 = 0xcbf29ce484222325;
    for b in token.bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x100000001b3);
    }
    format!("token:{h:016x}")
}
