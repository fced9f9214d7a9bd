//! The implementation-under-test protocol, version 1
//! (`shared/design/adapter-protocol.md`): message shapes and the checks on
//! answers that every transport shares.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

pub const VERSION: u64 = 1;

/// The minor version this harness speaks: v1.1 adds optional fields only
/// (`reason_code`, `error_code`, `propagation`), so v1 adapters keep working.
pub const MINOR: u64 = 1;

/// `map_principal` refusal codes (protocol v1.1, optional in answers),
/// decided where refusals are made.
pub use idprop_mocks::rules::principal_mapping::REASON_CODES;

/// `authTokens[].error_code` values (protocol v1.1, optional in answers).
pub const ERROR_CODES: &[&str] = &idprop_mocks::rules::ErrorCode::NAMES;

/// What every request carries as `network`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct NetworkInfo {
    pub proxy: String,
    pub ca_file: String,
    /// v1.1: hosts to reach without the proxy (`NO_PROXY` syntax): the
    /// loopback host whose connect hangs (timeout scenarios).
    #[serde(default)]
    pub no_proxy: String,
}

/// What a session is started with.
#[derive(Debug, Clone)]
pub struct SessionEnv {
    pub network: NetworkInfo,
    /// `VCAP_SERVICES` (consumer role only).
    pub vcap_services: Option<String>,
}

/// A request of the protocol, as the harness sends it: `v`, `id` and the
/// message (tagged by `op`). Every transport carries this JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Envelope {
    /// Always 1.
    pub v: u64,
    /// Unique within a process; the answer carries the same.
    pub id: u64,
    #[serde(flatten)]
    pub request: Request,
}

impl Envelope {
    pub fn new(id: u64, request: Request) -> Self {
        Self { v: VERSION, id, request }
    }

    /// The JSON the transports send.
    pub fn to_value(&self) -> Value {
        serde_json::to_value(self).expect("protocol messages serialise")
    }
}

/// The messages (PROTOCOL.md "Messages").
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    /// Who are you, which roles do you play.
    Hello { network: NetworkInfo },
    /// Drop every cache.
    Reset,
    /// Role `token-retrieval`: play the Destination service for one destination.
    FindDestination(FindDestination),
    /// Role `principal-mapping`: play the Cloud Connector's principal step.
    MapPrincipal(MapPrincipal),
    /// Role `consumer`: play a business application calling a destination.
    Call(Call),
}

impl Request {
    /// The `op` name.
    pub fn op(&self) -> &'static str {
        match self {
            Request::Hello { .. } => "hello",
            Request::Reset => "reset",
            Request::FindDestination(_) => "find_destination",
            Request::MapPrincipal(_) => "map_principal",
            Request::Call(_) => "call",
        }
    }
}

/// `find_destination`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct FindDestination {
    /// Subdomain of the subaccount the call is made for.
    pub tenant: String,
    /// The caller's JWT for user-based types, else null.
    #[serde(default)]
    pub user_token: Option<String>,
    /// Every property as a JSON string, exactly as configured.
    pub destination: serde_json::Map<String, Value>,
    /// Key stores named by `tokenService.KeyStoreLocation`.
    #[serde(default)]
    pub certificates: Vec<idprop_mocks::retrieval::Certificate>,
    /// Other destinations of the subaccount by name (`clientAssertion.destinationName`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub related_destinations: Option<serde_json::Map<String, Value>>,
    /// *v1.1*: request headers of the Find Destination call that carry the
    /// caller's tokens (`X-refresh-token`, `X-subject-token`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub headers: Option<std::collections::BTreeMap<String, String>>,
    pub network: NetworkInfo,
}

/// One identity provider a `map_principal` caller trusts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Trust {
    pub issuer: String,
    #[serde(default)]
    pub jwks_uri: Option<String>,
    /// The keys inline (also served at `jwks_uri`).
    #[serde(default)]
    pub jwks: Option<Value>,
}

/// The header a token came in (v1.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Propagation {
    /// `SAP-Connectivity-Authentication`.
    Principal,
    /// `SAP-Connectivity-Technical-Authentication`.
    Technical,
}

impl Propagation {
    pub fn as_str(self) -> &'static str {
        match self {
            Propagation::Principal => "principal",
            Propagation::Technical => "technical",
        }
    }
}

/// `map_principal`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct MapPrincipal {
    pub token: String,
    pub trust: Vec<Trust>,
    pub subject_pattern: String,
    /// The Unix time to judge `exp`/`nbf`/`iat` against.
    pub now: i64,
    /// v1.1; absent means `principal`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub propagation: Option<Propagation>,
    pub network: NetworkInfo,
}

/// The environment of a `call`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct CallEnv {
    #[serde(rename = "VCAP_SERVICES")]
    pub vcap_services: String,
}

/// `call`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Call {
    pub env: CallEnv,
    pub tenant: String,
    /// The destination's name.
    pub destination: String,
    #[serde(default)]
    pub user_token: Option<String>,
    /// `{"method", "path", "headers", "body"}`.
    pub request: Value,
    /// `header` or `user-exchange` (optional).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub principal_propagation: Option<String>,
    pub network: NetworkInfo,
}

/// An answer: `ok` with a `result`, or `ok: false` with an `error`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Answer {
    pub v: u64,
    pub id: u64,
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<AnswerError>,
}

/// Why an adapter could not process a message at all.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct AnswerError {
    /// `unsupported`, `bad_request` or `internal`.
    pub code: String,
    pub message: String,
}

/// The `map_principal` result.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, schemars::JsonSchema)]
pub struct MappingResult {
    pub accepted: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub principal: Option<String>,
    /// RFC 4514.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// v1.1, one of [`REASON_CODES`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason_code: Option<String>,
}

/// The JSON Schema of every request and answer (`idprop schema --protocol`).
pub fn json_schema() -> Value {
    json!({
        "request": schemars::schema_for!(Envelope),
        "answer": schemars::schema_for!(Answer),
        "results": {
            "hello": schemars::schema_for!(Hello),
            "find_destination": schemars::schema_for!(idprop_mocks::retrieval::FindDestinationAnswer),
            "map_principal": schemars::schema_for!(MappingResult),
        },
    })
}

/// Why an implementation gave no usable answer: what the runner reports
/// beside the scenario.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DriverError {
    /// The implementation could not be started (or reset).
    #[error("could not start the implementation: {0}")]
    Spawn(String),
    /// An answer broke the protocol: not JSON, another id, no `v`, `ok:false`.
    #[error("{0}")]
    Protocol(String),
    /// No answer within the deadline.
    #[error("no answer to request id {id} within the deadline of {seconds} s")]
    Deadline { id: u64, seconds: f64 },
    /// The process exited, or the transport failed, before answering.
    #[error("{0}")]
    Crashed(String),
}

/// The `hello` answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Hello {
    pub name: String,
    #[serde(default)]
    pub version: String,
    #[serde(default)]
    pub roles: Vec<String>,
    /// v1.2: the adapter takes the network (and a `call`'s bindings) from
    /// each request rather than its environment, and drops every cache on
    /// `reset`; an `exec` adapter's process may then serve the next
    /// scenario after a `reset` instead of a fresh start.
    #[serde(default)]
    pub reusable: bool,
}

pub fn hello(id: u64, network: &NetworkInfo) -> Value {
    Envelope::new(id, Request::Hello { network: network.clone() }).to_value()
}

pub fn reset() -> Value {
    Envelope::new(0, Request::Reset).to_value()
}

/// The `id` of a request.
pub fn id_of(request: &Value) -> u64 {
    request.get("id").and_then(Value::as_u64).unwrap_or(0)
}

/// Checks an answer against its request and returns `result`.
///
/// A wrong `v`, a wrong `id`, a missing `ok`, or `ok: false` are protocol
/// failures (the adapter could not process the message); failures the
/// specification describes travel inside `result`.
pub fn result_of(request: &Value, answer: &Value) -> Result<Value, DriverError> {
    result_of_text(request, answer).map_err(DriverError::Protocol)
}

fn result_of_text(request: &Value, answer: &Value) -> Result<Value, String> {
    let want = id_of(request);
    let obj =
        answer.as_object().ok_or_else(|| format!("answer is not a JSON object: {}", excerpt(&answer.to_string())))?;
    match obj.get("id").and_then(Value::as_u64) {
        Some(id) if id == want => {}
        Some(id) => return Err(format!("adapter answered id {id} to request id {want}")),
        None => return Err(format!("answer has no integer id (request id {want}): {}", excerpt(&answer.to_string()))),
    }
    if obj.get("v").and_then(Value::as_u64) != Some(VERSION) {
        return Err(format!("answer to id {want} does not say \"v\": 1"));
    }
    match obj.get("ok") {
        Some(Value::Bool(true)) => Ok(obj.get("result").cloned().unwrap_or(Value::Object(Default::default()))),
        Some(Value::Bool(false)) => {
            let e = obj.get("error").cloned().unwrap_or(Value::Null);
            Err(format!(
                "adapter could not process {} (ok:false, {}: {})",
                request.get("op").and_then(Value::as_str).unwrap_or("?"),
                e.get("code").and_then(Value::as_str).unwrap_or("?"),
                e.get("message").and_then(Value::as_str).unwrap_or("")
            ))
        }
        _ => Err(format!("answer to id {want} has no boolean \"ok\"")),
    }
}

/// The first 200 characters of `s`, for messages.
pub fn excerpt(s: &str) -> String {
    let mut t: String = s.chars().take(200).collect();
    if s.chars().count() > 200 {
        t.push('…');
    }
    t
}

/// An `ok:true` answer.
pub fn ok(id: u64, result: Value) -> Value {
    json!({"v": VERSION, "id": id, "ok": true, "result": result})
}

/// An `ok:false` answer.
pub fn not_ok(id: u64, code: &str, message: &str) -> Value {
    json!({"v": VERSION, "id": id, "ok": false, "error": {"code": code, "message": message}})
}
