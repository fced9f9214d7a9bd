//! A destination's properties, exactly as configured: every value a string.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A destination: its flat property map (`Name`, `URL`, `Authentication`,
/// `tokenServiceURL`, `tokenServiceURL.headers.x`, …). Keys are
/// case-sensitive, as in the Destination service.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(transparent)]
pub struct Destination(pub BTreeMap<String, String>);

impl Destination {
    pub fn new() -> Self {
        Self::default()
    }

    /// Builder-style insert.
    pub fn with(mut self, key: &str, value: &str) -> Self {
        self.0.insert(key.to_string(), value.to_string());
        self
    }

    /// The value of `key`, trimmed; `None` when absent or blank.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(|v| v.trim()).filter(|v| !v.is_empty())
    }

    pub fn name(&self) -> &str {
        self.get("Name").unwrap_or("")
    }

    /// `ProxyType`, defaulting to `Internet`.
    pub fn proxy_type(&self) -> &str {
        self.get("ProxyType").unwrap_or("Internet")
    }

    /// Every `prefix<k>` property as `(k, value)`, in key order; empty `k`s
    /// are skipped (a bare prefix names nothing).
    pub fn with_prefix<'a>(&'a self, prefix: &'a str) -> impl Iterator<Item = (&'a str, &'a str)> + 'a {
        self.0.iter().filter_map(move |(k, v)| {
            k.strip_prefix(prefix).filter(|rest| !rest.is_empty()).map(|rest| (rest, v.as_str()))
        })
    }

    /// A JSON object of the properties (`destinationConfiguration`).
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(&self.0).expect("string map serialises")
    }

    /// Reads a JSON object of string values; non-string values are turned
    /// into their JSON text (the service stores strings only).
    pub fn from_json(v: &serde_json::Value) -> Option<Self> {
        let obj = v.as_object()?;
        Some(Self(
            obj.iter()
                .map(|(k, v)| (k.clone(), v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string())))
                .collect(),
        ))
    }
}

impl<const N: usize> From<[(&str, &str); N]> for Destination {
    fn from(pairs: [(&str, &str); N]) -> Self {
        Self(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect())
    }
}
