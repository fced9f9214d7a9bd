//! The scenario format: one YAML file per scenario. `given` sets up the
//! stack, `when` sends messages to the implementation, `then` checks the
//! answers and what the mocks observed, each check citing a rule.
//!
//! Unknown keys are errors everywhere. `idprop schema` prints the JSON
//! Schema generated from these types.

use std::collections::BTreeMap;

use idprop_mocks::backend::BackendConfig;
use idprop_mocks::connector::ConnectorConfig;
use idprop_mocks::destination::DestinationEntry;
use idprop_mocks::stack::TokenServerConfig;
use idprop_mocks::tokens::Forgery;
use idprop_mocks::uaa::{OAuthClient, User};
use idprop_mocks::yaml::Located;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The role of the implementation a scenario tests (adapter protocol).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    TokenRetrieval,
    PrincipalMapping,
    Consumer,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::TokenRetrieval, Role::PrincipalMapping, Role::Consumer];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::TokenRetrieval => "token-retrieval",
            Role::PrincipalMapping => "principal-mapping",
            Role::Consumer => "consumer",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        Self::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

/// One scenario file.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Unique, stable id (kebab-case).
    pub id: String,
    pub title: String,
    pub role: Role,
    /// `slow` marks scenarios that wait on real timeouts.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Rule ids of the catalogue this scenario checks.
    pub rules: Vec<String>,
    #[serde(default)]
    pub given: Given,
    pub when: Vec<Located<Step>>,
    pub then: Vec<Located<Check>>,
    /// Seconds the implementation has to answer one message (default 15).
    #[serde(default)]
    pub deadline_s: Option<f64>,
}

/// Stack set-up.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Given {
    /// Tenants beside the default `mytenant` and `othertenant`.
    #[serde(default)]
    pub tenants: Vec<String>,
    #[serde(default)]
    pub users: Vec<User>,
    #[serde(default)]
    pub clients: Vec<OAuthClient>,
    /// Scriptable token servers (each serves its host and its subdomains).
    #[serde(default)]
    pub token_servers: Vec<TokenServerConfig>,
    /// Destinations of the mock Destination service (consumer role);
    /// the default set when absent.
    #[serde(default)]
    pub destinations: Option<Vec<DestinationEntry>>,
    /// Cloud Connectors; the default one when absent.
    #[serde(default)]
    pub connectors: Option<Vec<ConnectorConfig>>,
    #[serde(default)]
    pub backend: Option<BackendConfig>,
    /// Key stores made from the test PKI: name → client certificate CN.
    #[serde(default)]
    pub key_stores: BTreeMap<String, String>,
}

/// A token the harness mints (or a literal one).
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenSpec {
    /// Use this text as the token.
    #[serde(default)]
    pub literal: Option<String>,
    /// Tenant subdomain (default `mytenant`).
    #[serde(default)]
    pub tenant: Option<String>,
    /// User (default `alice`); ignored with `client`.
    #[serde(default)]
    pub user: Option<String>,
    /// A client-credentials token of this client instead of a user token.
    #[serde(default)]
    pub client: Option<String>,
    /// Claims to add or override (JSON values).
    #[serde(default)]
    pub claims: Map<String, Value>,
    /// Claims to remove.
    #[serde(default)]
    pub drop: Vec<String>,
    #[serde(default)]
    pub kid: Option<String>,
    /// Break the token this way.
    #[serde(default)]
    pub forge: Option<Forgery>,
    /// Replace every claim by exactly these (`iss` still defaults to the tenant's).
    #[serde(default)]
    pub only_claims: Option<Map<String, Value>>,
    /// A token of this identity provider instead of the UAA (IAS tenant or
    /// any OIDC issuer): its user token for `user`, or exactly
    /// `only_claims`; signed with its key (`kid` may name another TEST ONLY
    /// key, `oidc-2` a rotated-out one). An issuer the stack does not know
    /// is signed with `oidc-1` (an untrusted provider).
    #[serde(default)]
    pub issuer: Option<String>,
}

/// One message to the implementation, or a pause.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Step {
    FindDestination(FindStep),
    MapPrincipal(MapStep),
    Call(CallStep),
    Wait(WaitStep),
}

impl Step {
    /// The name answers are referred to by.
    pub fn name(&self) -> Option<&str> {
        match self {
            Step::FindDestination(s) => s.name.as_deref(),
            Step::MapPrincipal(s) => s.name.as_deref(),
            Step::Call(s) => s.name.as_deref(),
            Step::Wait(_) => None,
        }
    }

    pub fn role(&self) -> Option<Role> {
        match self {
            Step::FindDestination(_) => Some(Role::TokenRetrieval),
            Step::MapPrincipal(_) => Some(Role::PrincipalMapping),
            Step::Call(_) => Some(Role::Consumer),
            Step::Wait(_) => None,
        }
    }
}

/// `find_destination` (role `token-retrieval`).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FindStep {
    #[serde(default)]
    pub name: Option<String>,
    /// Default `mytenant`.
    #[serde(default)]
    pub tenant: Option<String>,
    /// The destination's properties, as strings.
    pub destination: BTreeMap<String, String>,
    #[serde(default)]
    pub user_token: Option<TokenSpec>,
    /// Other destinations of the same subaccount, by name (for
    /// `clientAssertion.destinationName`); sent as the optional protocol
    /// field `related_destinations`.
    #[serde(default)]
    pub related_destinations: BTreeMap<String, BTreeMap<String, String>>,
    /// Request headers of the Find Destination call (`X-refresh-token`,
    /// `X-subject-token`, `X-client-assertion`, …); sent as the optional
    /// protocol field `headers`.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Send the message this many times (answers are checked on the last;
    /// `requests` checks see all).
    #[serde(default = "one")]
    pub repeat: u32,
    /// Send the repeats at once instead of one after the other.
    #[serde(default)]
    pub concurrent: bool,
}

fn one() -> u32 {
    1
}

/// `map_principal` (role `principal-mapping`).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MapStep {
    #[serde(default)]
    pub name: Option<String>,
    pub token: TokenSpec,
    #[serde(default = "default_pattern")]
    pub subject_pattern: String,
    /// Trusted tenants (their issuers and keys); every stack tenant when absent.
    #[serde(default)]
    pub trust: Option<Vec<String>>,
    /// Identity providers beside the UAA trusted too, by issuer (their keys
    /// inline, their `jwks_uri`).
    #[serde(default)]
    pub trust_issuers: Vec<String>,
    /// Seconds added to the harness clock for `now`.
    #[serde(default)]
    pub now_offset_s: i64,
    /// The header the token came in (protocol v1.1 `propagation`), which
    /// decides the user type at the Cloud Connector; not sent when absent.
    #[serde(default)]
    pub propagation: Option<Propagation>,
}

pub use crate::protocol::Propagation;

fn default_pattern() -> String {
    "CN=${name}".into()
}

/// `call` (role `consumer`).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CallStep {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub tenant: Option<String>,
    /// Destination name in the mock Destination service.
    pub destination: String,
    #[serde(default)]
    pub user_token: Option<TokenSpec>,
    #[serde(default)]
    pub request: CallRequest,
    /// How to propagate the user through the Connectivity proxy: `header`
    /// (`SAP-Connectivity-Authentication`) or `user-exchange` (a jwt-bearer
    /// token in `Proxy-Authorization`); the optional protocol field
    /// `principal_propagation`. Implementations may ignore it.
    #[serde(default)]
    pub principal_propagation: Option<String>,
    #[serde(default = "one")]
    pub repeat: u32,
    #[serde(default)]
    pub concurrent: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CallRequest {
    #[serde(default = "get")]
    pub method: String,
    #[serde(default = "echo_path")]
    pub path: String,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    #[serde(default)]
    pub body: Option<String>,
}

impl Default for CallRequest {
    fn default() -> Self {
        Self { method: get(), path: echo_path(), headers: BTreeMap::new(), body: None }
    }
}

fn get() -> String {
    "GET".into()
}

fn echo_path() -> String {
    "/echo/idprop".into()
}

/// A pause (cache expiry).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WaitStep {
    pub seconds: f64,
}

pub use crate::catalogue::{Level, Source};

/// One check: what it cites and weighs, and exactly one kind of judgement.
/// Read from YAML through [`RawCheck`], which names the kinds as keys; a
/// check with none or two is refused at load time.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(try_from = "RawCheck", into = "RawCheck")]
pub struct Check {
    pub rule: String,
    pub level: Option<Level>,
    pub source: Option<Source>,
    pub reading: Option<String>,
    /// Which step's answer (its `name`); the last answered step by default.
    pub answer: Option<String>,
    pub kind: CheckKind,
}

/// What a check judges.
#[derive(Debug, Clone)]
pub enum CheckKind {
    AuthToken(AuthTokenCheck),
    /// Properties the answer's `destinationConfiguration` must hold.
    DestinationConfiguration(BTreeMap<String, String>),
    Mapping(MappingCheck),
    Response(ResponseCheck),
    /// Boxed: three request matchers make it the largest by far.
    Requests(Box<RequestsCheck>),
    Elapsed(ElapsedCheck),
    /// Two answers carry the same (or different) token.
    SameToken(SameTokenCheck),
    /// Passes when at least one alternative passes: every documented
    /// reading of a rule is accepted.
    AnyOf(Vec<Check>),
    /// Passes when every part passes (to combine conditions inside `any_of`).
    AllOf(Vec<Check>),
}

impl schemars::JsonSchema for Check {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Check".into()
    }
    fn json_schema(g: &mut schemars::SchemaGenerator) -> schemars::Schema {
        RawCheck::json_schema(g)
    }
}

impl TryFrom<RawCheck> for Check {
    type Error = String;
    fn try_from(r: RawCheck) -> Result<Self, String> {
        let kinds = r.kinds();
        if kinds.len() > 1 {
            return Err(format!("a check has exactly one kind, found {}", kinds.join(" and ")));
        }
        let kind = if let Some(c) = r.auth_token {
            CheckKind::AuthToken(c)
        } else if let Some(c) = r.destination_configuration {
            CheckKind::DestinationConfiguration(c)
        } else if let Some(c) = r.mapping {
            CheckKind::Mapping(c)
        } else if let Some(c) = r.response {
            CheckKind::Response(c)
        } else if let Some(c) = r.requests {
            CheckKind::Requests(Box::new(c))
        } else if let Some(c) = r.elapsed {
            CheckKind::Elapsed(c)
        } else if let Some(c) = r.same_token {
            CheckKind::SameToken(c)
        } else if let Some(c) = r.any_of {
            CheckKind::AnyOf(c)
        } else if let Some(c) = r.all_of {
            CheckKind::AllOf(c)
        } else {
            return Err("expected one of auth_token, destination_configuration, mapping, response, requests, elapsed, same_token, any_of, all_of".into());
        };
        Ok(Check { rule: r.rule, level: r.level, source: r.source, reading: r.reading, answer: r.answer, kind })
    }
}

impl From<Check> for RawCheck {
    fn from(c: Check) -> Self {
        let mut r = RawCheck {
            rule: c.rule,
            level: c.level,
            source: c.source,
            reading: c.reading,
            answer: c.answer,
            ..Default::default()
        };
        match c.kind {
            CheckKind::AuthToken(x) => r.auth_token = Some(x),
            CheckKind::DestinationConfiguration(x) => r.destination_configuration = Some(x),
            CheckKind::Mapping(x) => r.mapping = Some(x),
            CheckKind::Response(x) => r.response = Some(x),
            CheckKind::Requests(x) => r.requests = Some(*x),
            CheckKind::Elapsed(x) => r.elapsed = Some(x),
            CheckKind::SameToken(x) => r.same_token = Some(x),
            CheckKind::AnyOf(x) => r.any_of = Some(x),
            CheckKind::AllOf(x) => r.all_of = Some(x),
        }
        r
    }
}

impl Check {
    /// The alternatives of `any_of` or the parts of `all_of` (none otherwise).
    pub fn parts(&self) -> &[Check] {
        match &self.kind {
            CheckKind::AnyOf(v) | CheckKind::AllOf(v) => v,
            _ => &[],
        }
    }

    /// The level this check is judged at: its own, else its rule's.
    pub fn effective_level(&self) -> Level {
        self.level.unwrap_or_else(|| crate::catalogue::rule(&self.rule).map(|r| r.level).unwrap_or(Level::Must))
    }
}

/// A check as written in YAML: its kind is whichever key is set (exactly one).
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "CheckFields")]
pub struct RawCheck {
    /// The rule this check enforces (required at the top level; the
    /// alternatives of `any_of`/`all_of` inherit it).
    #[serde(default)]
    pub rule: String,
    /// `must`, `should` or `choice`; the rule's catalogue level when absent.
    #[serde(default)]
    pub level: Option<Level>,
    /// The sentence that makes this check a requirement, when more precise
    /// than the rule's catalogue source.
    #[serde(default)]
    pub source: Option<Source>,
    /// For `choice` checks: the reading idprop takes (required there).
    #[serde(default)]
    pub reading: Option<String>,
    /// Which step's answer (its `name`); the last answered step by default.
    #[serde(default)]
    pub answer: Option<String>,
    #[serde(default)]
    pub auth_token: Option<AuthTokenCheck>,
    /// Properties the answer's `destinationConfiguration` must hold.
    #[serde(default)]
    pub destination_configuration: Option<BTreeMap<String, String>>,
    #[serde(default)]
    pub mapping: Option<MappingCheck>,
    #[serde(default)]
    pub response: Option<ResponseCheck>,
    #[serde(default)]
    pub requests: Option<RequestsCheck>,
    #[serde(default)]
    pub elapsed: Option<ElapsedCheck>,
    /// Two answers carry the same (or different) token.
    #[serde(default)]
    pub same_token: Option<SameTokenCheck>,
    /// Passes when at least one alternative passes: every documented
    /// reading of a rule is accepted.
    #[serde(default)]
    pub any_of: Option<Vec<Check>>,
    /// Passes when every part passes (to combine conditions inside `any_of`).
    #[serde(default)]
    pub all_of: Option<Vec<Check>>,
}

impl RawCheck {
    /// Names of the kinds set (a valid check has exactly one).
    fn kinds(&self) -> Vec<&'static str> {
        let mut k = Vec::new();
        if self.auth_token.is_some() {
            k.push("auth_token");
        }
        if self.destination_configuration.is_some() {
            k.push("destination_configuration");
        }
        if self.mapping.is_some() {
            k.push("mapping");
        }
        if self.response.is_some() {
            k.push("response");
        }
        if self.requests.is_some() {
            k.push("requests");
        }
        if self.elapsed.is_some() {
            k.push("elapsed");
        }
        if self.same_token.is_some() {
            k.push("same_token");
        }
        if self.any_of.is_some() {
            k.push("any_of");
        }
        if self.all_of.is_some() {
            k.push("all_of");
        }
        k
    }
}

/// Checks on `authTokens[0]` of a `find_destination` answer.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AuthTokenCheck {
    /// `true`: a token and no error; `false`: an error entry (`type` and `value` empty).
    #[serde(default)]
    pub ok: Option<bool>,
    /// `true`: the answer has no `authTokens` at all.
    #[serde(default)]
    pub absent: Option<bool>,
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    #[serde(default)]
    pub header_key: Option<String>,
    /// Exact `http_header.value`; `Bearer {{value}}` stands for the token.
    #[serde(default)]
    pub header_value: Option<String>,
    #[serde(default)]
    pub expires_in: Option<String>,
    #[serde(default)]
    pub scope: Option<String>,
    /// Substrings the `error` must contain (any case). PROTOCOL.md never
    /// defines the wording: the suite uses `error_code` instead.
    #[serde(default)]
    pub error_contains: Vec<String>,
    /// The `error_code` the entry must carry (protocol v1.1, optional for
    /// adapters: checks on it are `should`).
    #[serde(default)]
    pub error_code: Option<String>,
    /// Claims the token (a JWT) must carry.
    #[serde(default)]
    pub claims: Map<String, Value>,
    /// The token must be one issued by the token server of this host.
    #[serde(default)]
    pub issued_by: Option<String>,
}

/// Checks on a `map_principal` answer.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MappingCheck {
    pub accepted: bool,
    #[serde(default)]
    pub principal: Option<String>,
    /// The subject exactly as written (one spelling of the DN).
    #[serde(default)]
    pub subject: Option<String>,
    /// The subject compared after RFC 4514 parsing: any valid escaping of
    /// the same attribute values is equal.
    #[serde(default)]
    pub subject_dn: Option<String>,
    /// Substrings the refusal `reason` must contain (any case); any non-empty
    /// reason when empty. PROTOCOL.md never defines the wording: the suite
    /// uses `reason_code` instead.
    #[serde(default)]
    pub reason_contains: Vec<String>,
    /// The refusal's `reason_code` (protocol v1.1, optional for adapters).
    #[serde(default)]
    pub reason_code: Option<String>,
}

/// Checks on a `call` answer.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ResponseCheck {
    #[serde(default)]
    pub status: Option<u16>,
    /// `true`: the implementation reported it could not send the request.
    #[serde(default)]
    pub error: Option<bool>,
    #[serde(default)]
    pub body_contains: Vec<String>,
}

/// Checks on what the mocks observed.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RequestsCheck {
    /// `uaa`, `token-server`, `destination`, `connectivity-proxy`, `backend`, `gateway`.
    #[serde(default)]
    pub component: Option<String>,
    /// Only requests to this host (or, with a leading `.`, hosts ending so).
    #[serde(default)]
    pub host: Option<String>,
    /// Only requests to this path.
    #[serde(default)]
    pub path: Option<String>,
    /// Only requests with this form field and value (`grant_type: …`).
    #[serde(default)]
    pub with_form: BTreeMap<String, String>,
    #[serde(default)]
    pub count: Option<usize>,
    #[serde(default)]
    pub min_count: Option<usize>,
    #[serde(default)]
    pub max_count: Option<usize>,
    /// The first selected request must match.
    #[serde(default)]
    pub first: Option<RequestMatch>,
    /// The last selected request must match.
    #[serde(default)]
    pub last: Option<RequestMatch>,
    /// Every selected request must match.
    #[serde(default)]
    pub each: Option<RequestMatch>,
}

/// What one observed request must look like: the matcher of
/// `idprop-mocks`'s expectations, so a scenario and a Rust test say the same
/// thing the same way.
pub type RequestMatch = idprop_mocks::expect::RequestMatcher;

/// How long a step took.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ElapsedCheck {
    /// Step name (default: the checked answer's step).
    #[serde(default)]
    pub step: Option<String>,
    #[serde(default)]
    pub min_s: Option<f64>,
    #[serde(default)]
    pub max_s: Option<f64>,
}

/// Two answers' tokens compared.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SameTokenCheck {
    pub answers: Vec<String>,
    pub same: bool,
}

/// The JSON Schema of scenario files.
pub fn json_schema() -> Value {
    serde_json::to_value(schemars::schema_for!(Scenario)).expect("schema serialises")
}
