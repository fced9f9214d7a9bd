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
}

impl OAuthClient {
    pub fn new(id: &str, secret: &str) -> Self {
        Self {
            client_id: id.into(),
            client_secret: secret.into(),
            authorities: vec!["uaa.resource".into()],
            auth_method: ClientAuthMethod::Either,
        }
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
