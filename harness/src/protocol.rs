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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkInfo {
    pub proxy: String,
    pub ca_file: String,
    /// v1.1: hosts to reach without the proxy (`NO_PROXY` syntax): the
    /// loopback host whose connect hangs (timeout scenarios).
    #[serde(default)]
    pub no_proxy: String,
}

/// The `hello` answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    pub name: String,
    #[serde(default)]
    pub version: String,
    #[serde(default)]
    pub roles: Vec<String>,
}

pub fn hello(id: u64, network: &NetworkInfo) -> Value {
    json!({"v": VERSION, "id": id, "op": "hello", "network": network})
}

pub fn reset() -> Value {
    json!({"v": VERSION, "id": 0, "op": "reset"})
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
pub fn result_of(request: &Value, answer: &Value) -> Result<Value, String> {
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
