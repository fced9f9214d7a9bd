//! The identity model every mock shares: tenants (identity zones), OAuth
//! clients and users. Below the UAA and the token factory, so neither
//! depends on the other for it.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// A subaccount, reached as a subdomain of the UAA domain.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct Tenant {
    pub subdomain: String,
    /// Zone id; derived from the subdomain when not given.
    #[serde(default)]
    pub zid: String,
}

impl Tenant {
    pub fn new(subdomain: &str) -> Self {
        Self { subdomain: subdomain.to_string(), zid: stable_uuid(&format!("zone:{subdomain}")) }
    }
}

/// How a client may authenticate at the token endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum ClientAuthMethod {
    /// `client_id`/`client_secret` in the form body only.
    Body,
    /// HTTP Basic only (the "Neo" token service).
    Basic,
    /// Either.
    #[default]
    Either,
}

/// An OAuth client known to every tenant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct OAuthClient {
    pub client_id: String,
    pub client_secret: String,
    /// Authorities of client-credentials tokens (also their `scope`).
    #[serde(default)]
    pub authorities: Vec<String>,
    #[serde(default)]
    pub auth_method: ClientAuthMethod,
    /// Where the browser login may send the browser back with a code
    /// (`AC-3`; XSUAA's `oauth2-configuration.redirect-uris`): `*` within a
    /// part, `**` across parts.
    #[serde(default)]
    pub redirect_uris: Vec<String>,
    /// Whether its authorization requests must use PKCE (`AC-1`).
    #[serde(default)]
    pub pkce: Pkce,
    /// The subject DN (RFC 4514) of its X.509 credential (9379444's
    /// `X509_GENERATED` / `X509_PROVIDED`): a TLS connection presenting a
    /// certificate of this subject, issued by the test CA, authenticates the
    /// client with only `client_id` in the body.
    #[serde(default)]
    pub certificate_subject: Option<String>,
}

/// PKCE for a client's authorization requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum Pkce {
    /// A challenge may be sent, `S256` or `plain`.
    #[default]
    Optional,
    /// `S256` is required (IAS grant type `authorization_code_pkce_s256`).
    RequiredS256,
}

impl From<Pkce> for crate::rules::authorization_code::PkcePolicy {
    fn from(p: Pkce) -> Self {
        match p {
            Pkce::Optional => Self::Optional,
            Pkce::RequiredS256 => Self::RequiredS256,
        }
    }
}

/// Redirect URIs a local application's login may use: loopback on any
/// port (`localhost` and its subdomains: an application router tells
/// tenants apart by host, `mytenant.localhost`) and any `.test` host (a
/// choice: no page gives defaults).
pub fn local_redirect_uris() -> Vec<String> {
    [
        "http://localhost:*/**",
        "http://*.localhost:*/**",
        "http://127.0.0.1:*/**",
        "https://*.test/**",
        "https://*.test:*/**",
    ]
    .into_iter()
    .map(String::from)
    .collect()
}

impl OAuthClient {
    pub fn new(id: &str, secret: &str) -> Self {
        Self {
            client_id: id.into(),
            client_secret: secret.into(),
            authorities: vec!["uaa.resource".into()],
            auth_method: ClientAuthMethod::Either,
            redirect_uris: Vec::new(),
            pkce: Pkce::Optional,
            certificate_subject: None,
        }
    }

    /// Does `secret` authenticate this client? Never an empty one: a client
    /// with only a certificate has no secret to guess.
    pub fn secret_matches(&self, secret: &str) -> bool {
        !self.client_secret.is_empty() && self.client_secret == secret
    }

    /// May the browser login send the browser back to `uri` (`AC-3`)?
    pub fn may_redirect_to(&self, uri: &str) -> bool {
        crate::rules::authorization_code::redirect_allowed(uri, &self.redirect_uris)
    }

    /// Does a TLS client certificate of `subject` authenticate this client?
    pub fn certificate_matches(&self, subject: Option<&str>) -> bool {
        matches!((self.certificate_subject.as_deref(), subject), (Some(want), Some(got)) if crate::rules::dn::same_name(want, got).unwrap_or(false))
    }
}

/// A user of every tenant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct User {
    pub user_name: String,
    #[serde(default)]
    pub password: String,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub given_name: Option<String>,
    #[serde(default)]
    pub family_name: Option<String>,
    #[serde(default = "default_origin")]
    pub origin: String,
    /// Scopes granted to the user directly (`$XSAPPNAME.` is expanded).
    #[serde(default)]
    pub scopes: Vec<String>,
    /// Role collections assigned to the user: their scopes join `scopes`,
    /// their names go to `xs.system.attributes.xs.rolecollections`.
    #[serde(default)]
    pub role_collections: Vec<String>,
    /// Any further claims (override the defaults).
    #[serde(default)]
    pub claims: Map<String, Value>,
}

fn default_origin() -> String {
    "sap.default".into()
}

impl User {
    pub fn new(user_name: &str) -> Self {
        Self {
            user_name: user_name.into(),
            password: format!("{user_name}-password"),
            email: Some(format!("{user_name}@example.test")),
            given_name: None,
            family_name: None,
            origin: default_origin(),
            scopes: vec!["openid".into()],
            role_collections: Vec::new(),
            claims: Map::new(),
        }
    }

    /// Stable user id (`sub`, `user_id`, `user_uuid`).
    pub fn user_id(&self) -> String {
        stable_uuid(&format!("user:{}:{}", self.origin, self.user_name))
    }
}

/// A role collection: a name for a set of scopes, assigned to users.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct RoleCollection {
    pub name: String,
    /// Scopes, usually `$XSAPPNAME.<local name>`.
    pub scopes: Vec<String>,
}

/// `$XSAPPNAME` stands for the application's `xsappname` in scope names, as
/// in an `xs-security.json`.
pub fn expand_xsappname(scope: &str, xsappname: &str) -> String {
    scope.replace("$XSAPPNAME", xsappname)
}

/// A UUID-shaped, stable id derived from `seed` (FNV-1a; not cryptographic).
pub fn stable_uuid(seed: &str) -> String {
    let mut h: u128 = 0x6c62272e07bb014262b821756295c58d;
    for b in seed.bytes() {
        h ^= b as u128;
        h = h.wrapping_mul(0x0000000001000000000000000000013B);
    }
    let x = format!("{h:032x}");
    format!("{}-{}-4{}-8{}-{}", &x[0..8], &x[8..12], &x[13..16], &x[17..20], &x[20..32])
}
