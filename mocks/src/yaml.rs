//! The one place YAML is parsed (serde-saphyr), so a change of parser is one
//! file. Errors carry file, line and column.

use serde::de::DeserializeOwned;

/// A YAML document that did not parse or did not fit the expected shape.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}:{column}: {message}")]
pub struct YamlError {
    pub file: String,
    /// 1-based; 0 when the parser could not tell.
    pub line: u64,
    pub column: u64,
    pub message: String,
}

/// Parses `text` (read from `file`, for messages) into `T`. Unknown keys are
/// errors wherever `T` says `deny_unknown_fields`; duplicate keys always are.
pub fn from_str<T: DeserializeOwned>(text: &str, file: &str) -> Result<T, YamlError> {
    serde_saphyr::from_str::<T>(text).map_err(|e| {
        let (line, column) = e.location().map(|l| (l.line(), l.column())).unwrap_or((0, 0));
        // serde-saphyr renders "error: line X column Y: what" and a source
        // snippet; we keep the "what" and give the position ourselves.
        let full = e.to_string();
        let first = full.lines().next().unwrap_or("").trim();
        let first = first.strip_prefix("error: ").unwrap_or(first);
        let message = match first.split_once(": ") {
            Some((pos, rest)) if pos.starts_with("line ") && pos.contains(" column ") => rest.to_string(),
            _ => first.to_string(),
        };
        YamlError { file: file.to_string(), line, column, message }
    })
}

/// Reads and parses a YAML file.
pub fn from_file<T: DeserializeOwned>(path: &std::path::Path) -> Result<T, YamlError> {
    let text = read(path)?;
    from_str(&text, &path.display().to_string())
}

/// Reads a text file; bytes that are not UTF-8 are named by line, column
/// and byte offset.
pub fn read(path: &std::path::Path) -> Result<String, YamlError> {
    let file = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|e| YamlError {
        file: file.clone(),
        line: 0,
        column: 0,
        message: format!("cannot read: {e}"),
    })?;
    String::from_utf8(bytes).map_err(|e| {
        let at = e.utf8_error().valid_up_to();
        let before = &e.as_bytes()[..at];
        let line = before.iter().filter(|b| **b == b'\n').count() as u64 + 1;
        let line_start = before.iter().rposition(|b| *b == b'\n').map_or(0, |p| p + 1);
        let column = String::from_utf8_lossy(&before[line_start..]).chars().count() as u64 + 1;
        YamlError {
            file,
            line,
            column,
            message: format!("not UTF-8: invalid byte 0x{:02x} at byte offset {at}", e.as_bytes()[at]),
        }
    })
}

/// One node of a YAML document with where it starts, for [`locate`].
#[derive(Debug)]
enum Node {
    Map(Vec<(String, Located<Node>)>),
    Seq(Vec<Located<Node>>),
    Scalar,
}

impl<'de> serde::Deserialize<'de> for Node {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Node;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("any YAML value")
            }
            fn visit_bool<E>(self, _: bool) -> Result<Node, E> {
                Ok(Node::Scalar)
            }
            fn visit_i64<E>(self, _: i64) -> Result<Node, E> {
                Ok(Node::Scalar)
            }
            fn visit_u64<E>(self, _: u64) -> Result<Node, E> {
                Ok(Node::Scalar)
            }
            fn visit_f64<E>(self, _: f64) -> Result<Node, E> {
                Ok(Node::Scalar)
            }
            fn visit_str<E>(self, _: &str) -> Result<Node, E> {
                Ok(Node::Scalar)
            }
            fn visit_unit<E>(self) -> Result<Node, E> {
                Ok(Node::Scalar)
            }
            fn visit_none<E>(self) -> Result<Node, E> {
                Ok(Node::Scalar)
            }
            fn visit_some<D: serde::Deserializer<'de>>(self, d: D) -> Result<Node, D::Error> {
                serde::Deserialize::deserialize(d)
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut a: A) -> Result<Node, A::Error> {
                let mut v = Vec::new();
                while let Some(n) = a.next_element::<Located<Node>>()? {
                    v.push(n);
                }
                Ok(Node::Seq(v))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut a: A) -> Result<Node, A::Error> {
                let mut v = Vec::new();
                while let Some((k, n)) = a.next_entry::<String, Located<Node>>()? {
                    v.push((k, n));
                }
                Ok(Node::Map(v))
            }
        }
        d.deserialize_any(V)
    }
}

/// The line and column (1-based) of the value at `path` in the YAML `text`:
/// `uaa.tenants[1].subdomain`. The deepest part of the path the document
/// has is given when the rest is absent (a default value, say).
pub fn locate(text: &str, path: &str) -> Option<(u64, u64)> {
    let root: Located<Node> = serde_saphyr::from_str(text).ok()?;
    let mut node = &root;
    let mut at = (node.line, node.column);
    for part in path.split('.') {
        let (key, indices) = match part.find('[') {
            Some(i) => (&part[..i], &part[i..]),
            None => (part, ""),
        };
        if !key.is_empty() {
            let Node::Map(entries) = &node.value else { break };
            let Some((_, child)) = entries.iter().find(|(k, _)| k == key) else { break };
            node = child;
            at = (node.line, node.column);
        }
        for idx in indices.split(['[', ']']).filter(|s| !s.is_empty()) {
            let Ok(i) = idx.parse::<usize>() else { break };
            let Node::Seq(items) = &node.value else { break };
            let Some(child) = items.get(i) else { break };
            node = child;
            at = (node.line, node.column);
        }
    }
    (at.0 > 0).then_some(at)
}

/// A value with the line and column it was read from, so a failing check
/// can name `file:line`.
#[derive(Debug, Clone, PartialEq)]
pub struct Located<T> {
    pub value: T,
    pub line: u64,
    pub column: u64,
}

impl<T> std::ops::Deref for Located<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.value
    }
}

impl<'de, T: serde::Deserialize<'de>> serde::Deserialize<'de> for Located<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = serde_saphyr::Spanned::<T>::deserialize(d)?;
        Ok(Self { value: s.value, line: s.referenced.line(), column: s.referenced.column() })
    }
}

impl<T: serde::Serialize> serde::Serialize for Located<T> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.value.serialize(s)
    }
}

#[cfg(feature = "schema")]
impl<T: schemars::JsonSchema> schemars::JsonSchema for Located<T> {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        T::schema_name()
    }
    fn json_schema(g: &mut schemars::SchemaGenerator) -> schemars::Schema {
        T::json_schema(g)
    }
}

/// Writes `value` as YAML (for generated scenario files).
pub fn to_string<T: serde::Serialize>(value: &T) -> String {
    serde_saphyr::to_string(value).unwrap_or_else(|e| format!("# could not write YAML: {e}\n"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn paths_are_located_in_the_text() {
        let text = "uaa:\n  tenants:\n    - subdomain: a\n    - subdomain: a\nports: {gateway: 1}\n";
        assert_eq!(super::locate(text, "uaa.tenants[1].subdomain"), Some((4, 18)));
        assert_eq!(super::locate(text, "uaa.tenants[0]"), Some((3, 7)));
        // An absent key: the deepest part that exists.
        assert_eq!(super::locate(text, "uaa.domain"), super::locate(text, "uaa"));
    }

    #[test]
    fn non_utf8_is_named_by_line_and_offset() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.yaml");
        std::fs::write(&p, b"uaa:\n  domain: ab\xffc\n").unwrap();
        let e = super::read(&p).unwrap_err();
        assert_eq!((e.line, e.column), (2, 13), "{e}");
        assert!(e.message.contains("byte offset 17") && e.message.contains("0xff"), "{e}");
    }
}
