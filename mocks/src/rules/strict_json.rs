//! A JSON reader for untrusted token segments: duplicate keys and deep
//! nesting are errors, not silently "last one wins" or a stack overflow.

use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

/// Deepest nesting accepted in a token's header or claims.
pub const MAX_DEPTH: usize = 32;

/// What a reader does with a member name that appears twice.
///
/// RFC 7519 §4: a JWT parser "MUST either reject JWTs with duplicate Claim
/// Names or use a JSON parser that returns only the lexically last duplicate
/// member name" — both are correct.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DuplicateKeys {
    /// idprop's reading: refuse the token.
    Refuse,
    /// The other: the last duplicate wins.
    LastWins,
}

/// Parses `raw` as one JSON object with unique keys, at most [`MAX_DEPTH`] deep.
pub fn parse_object(raw: &[u8]) -> Result<Map<String, Value>, String> {
    parse_object_with(raw, DuplicateKeys::Refuse)
}

/// [`parse_object`] with a choice of what duplicate keys mean.
pub fn parse_object_with(raw: &[u8], duplicates: DuplicateKeys) -> Result<Map<String, Value>, String> {
    // serde_json itself stops at 128 levels; we stop earlier and say why.
    let mut de = serde_json::Deserializer::from_slice(raw);
    let v = StrictValue(0, duplicates).deserialize(&mut de).map_err(|e| e.to_string())?;
    de.end().map_err(|e| e.to_string())?;
    match v {
        Value::Object(m) => Ok(m),
        _ => Err("not a JSON object".into()),
    }
}

use serde::de::DeserializeSeed;

struct StrictValue(usize, DuplicateKeys);

impl<'de> DeserializeSeed<'de> for StrictValue {
    type Value = Value;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for StrictValue {
    type Value = Value;
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("JSON")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(v.into())
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(v.into())
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(v).map(Value::Number).unwrap_or(Value::Null))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        if self.0 >= MAX_DEPTH {
            return Err(de::Error::custom(format!("nested deeper than {MAX_DEPTH}")));
        }
        let mut out = Vec::new();
        while let Some(v) = seq.next_element_seed(StrictValue(self.0 + 1, self.1))? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        if self.0 >= MAX_DEPTH {
            return Err(de::Error::custom(format!("nested deeper than {MAX_DEPTH}")));
        }
        let mut out = Map::new();
        while let Some(k) = map.next_key::<String>()? {
            if self.1 == DuplicateKeys::Refuse && out.contains_key(&k) {
                return Err(de::Error::custom(format!("duplicate key {k:?}")));
            }
            let v = map.next_value_seed(StrictValue(self.0 + 1, self.1))?;
            out.insert(k, v);
        }
        Ok(Value::Object(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deep_nesting_is_an_error_whatever_duplicates_mean() {
        let deep = format!("{{\"deep\":{}{}}}", "[".repeat(10_000), "]".repeat(10_000));
        for d in [DuplicateKeys::Refuse, DuplicateKeys::LastWins] {
            let e = parse_object_with(deep.as_bytes(), d).unwrap_err();
            assert!(e.contains("nested deeper"), "{e}");
        }
    }

    #[test]
    fn duplicates_are_refused_or_the_last_wins() {
        let raw = br#"{"iss":"forged","iss":"real"}"#;
        assert!(parse_object_with(raw, DuplicateKeys::Refuse).unwrap_err().contains("duplicate key"));
        assert_eq!(parse_object_with(raw, DuplicateKeys::LastWins).unwrap()["iss"], "real");
    }
}
