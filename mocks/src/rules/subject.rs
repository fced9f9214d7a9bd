//! Subject patterns: the DN of the short-lived certificate (rules
//! `SP-1`..`SP-5`).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::principal::UserType;

/// The DN attributes a pattern may use (`SP-4`).
pub const ATTRIBUTES: [&str; 7] = ["CN", "EMAIL", "L", "O", "OU", "ST", "C"];

/// The default pattern (`SP-1`).
pub const DEFAULT_PATTERN: &str = "CN=${name}";

/// A parse or render failure; the text is the reason reported back.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubjectError {
    #[error("subject pattern {pattern:?}: {message}")]
    Pattern { pattern: String, message: String },
    #[error("subject pattern variable ${{{0}}} has no value in the token")]
    Unbound(String),
    #[error("subject pattern variable ${{{0}}} is not a string in the token")]
    NotAString(String),
}

/// One piece of an attribute template.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text(String),
    Var(String),
}

/// A parsed pattern: `CN=${name},OU=${department},O=ACME,C=DE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubjectPattern {
    source: String,
    /// In RFC 4514 order (most specific first).
    rdns: Vec<(String, Vec<Piece>)>,
}

/// The variables a token offers, with the connector's derived ones.
#[derive(Debug, Clone)]
pub struct Variables<'a> {
    pub claims: &'a Map<String, Value>,
    pub name: &'a str,
    pub user_type: UserType,
}

impl Variables<'_> {
    /// The value of `${var}`, or `None` when the token lacks it.
    ///
    /// - `name`: the principal (`PP-2`/`PP-3`); `user_type`: Business/Technical.
    /// - `SP-5`: a value in `xs.user.attributes` shadows the root claim of
    ///   the same name; `cp.<x>` reads the root claim. Attribute values are
    ///   lists in XSUAA tokens: the first entry is used.
    /// - `mail` falls back to `email`, `login_name` to `user_name`, and
    ///   `display_name` to "given_name family_name" (spec note: the pages
    ///   list these variables without saying which claims feed them; XSUAA
    ///   tokens carry `email`, `user_name`, `given_name`, `family_name`).
    pub fn get(&self, var: &str) -> Result<Option<String>, SubjectError> {
        match var {
            "name" => return Ok(Some(self.name.to_string())),
            "user_type" => return Ok(Some(self.user_type.as_str().to_string())),
            _ => {}
        }
        if let Some(root) = var.strip_prefix("cp.") {
            return as_string(var, self.claims.get(root));
        }
        if let Some(Value::Object(attrs)) = self.claims.get("xs.user.attributes") {
            if let Some(v) = attrs.get(var) {
                let first = match v {
                    Value::Array(a) => a.first(),
                    other => Some(other),
                };
                if let Some(v) = as_string(var, first)? {
                    return Ok(Some(v));
                }
            }
        }
        if let Some(v) = as_string(var, self.claims.get(var))? {
            return Ok(Some(v));
        }
        match var {
            "mail" => as_string("email", self.claims.get("email")),
            "login_name" => as_string("user_name", self.claims.get("user_name")),
            "display_name" => {
                let g = as_string("given_name", self.claims.get("given_name"))?;
                let f = as_string("family_name", self.claims.get("family_name"))?;
                Ok(match (g, f) {
                    (Some(g), Some(f)) => Some(format!("{g} {f}")),
                    (g, f) => g.or(f),
                })
            }
            _ => Ok(None),
        }
    }
}

fn as_string(var: &str, v: Option<&Value>) -> Result<Option<String>, SubjectError> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(Value::Number(n)) => Ok(Some(n.to_string())),
        Some(Value::Bool(b)) => Ok(Some(b.to_string())),
        Some(_) => Err(SubjectError::NotAString(var.to_string())),
    }
}

impl SubjectPattern {
    /// Parses a pattern. Attributes are separated by unescaped commas; each
    /// is `ATTR=template` with `ATTR` one of [`ATTRIBUTES`] (any case);
    /// `${var}` in a template is a variable, `\,` `\\` `\$` are literal.
    pub fn parse(pattern: &str) -> Result<Self, SubjectError> {
        let err = |m: String| SubjectError::Pattern { pattern: pattern.to_string(), message: m };
        let mut rdns = Vec::new();
        for part in split_unescaped(pattern, ',') {
            let part = part.trim();
            if part.is_empty() {
                return Err(err("empty attribute".into()));
            }
            let (attr, template) = part.split_once('=').ok_or_else(|| err(format!("{part:?} is not ATTR=value")))?;
            let attr = attr.trim().to_ascii_uppercase();
            if !ATTRIBUTES.contains(&attr.as_str()) {
                return Err(err(format!("attribute {attr} is not one of {}", ATTRIBUTES.join(", "))));
            }
            rdns.push((attr, parse_template(template.trim()).map_err(err)?));
        }
        if rdns.is_empty() {
            return Err(err("no attributes".into()));
        }
        Ok(Self { source: pattern.to_string(), rdns })
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    /// Renders the DN as `(attribute, value)` pairs in RFC 4514 order.
    ///
    /// `SP-4`: claim values are inserted once, never scanned for `${…}`
    /// again, and escaped only when the DN is written out
    /// ([`super::dn::to_string`]): a claim `a,O=evil` stays one CN value.
    pub fn render(&self, vars: &Variables<'_>) -> Result<Vec<(String, String)>, SubjectError> {
        let mut out = Vec::new();
        for (attr, pieces) in &self.rdns {
            let mut value = String::new();
            for p in pieces {
                match p {
                    Piece::Text(t) => value.push_str(t),
                    Piece::Var(v) => value.push_str(&vars.get(v)?.ok_or_else(|| SubjectError::Unbound(v.clone()))?),
                }
            }
            out.push((attr.clone(), value));
        }
        Ok(out)
    }
}

fn split_unescaped(s: &str, sep: char) -> Vec<String> {
    let mut parts = vec![String::new()];
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            parts.last_mut().expect("non-empty").push(c);
            if let Some(n) = chars.next() {
                parts.last_mut().expect("non-empty").push(n);
            }
        } else if c == sep {
            parts.push(String::new());
        } else {
            parts.last_mut().expect("non-empty").push(c);
        }
    }
    parts
}

fn parse_template(t: &str) -> Result<Vec<Piece>, String> {
    let mut pieces = Vec::new();
    let mut text = String::new();
    let mut chars = t.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(n) => text.push(n),
                None => return Err("trailing backslash".into()),
            },
            '$' if chars.peek() == Some(&'{') => {
                chars.next();
                let mut var = String::new();
                loop {
                    match chars.next() {
                        Some('}') => break,
                        Some(c) => var.push(c),
                        None => return Err(format!("unterminated variable ${{{var}")),
                    }
                }
                let var = var.trim().to_string();
                if var.is_empty() {
                    return Err("empty variable ${}".into());
                }
                if !text.is_empty() {
                    pieces.push(Piece::Text(std::mem::take(&mut text)));
                }
                pieces.push(Piece::Var(var));
            }
            c => text.push(c),
        }
    }
    if !text.is_empty() {
        pieces.push(Piece::Text(text));
    }
    Ok(pieces)
}

/// A condition operator (`SP-3`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum Operator {
    Exists,
    DoesNotExist,
    Is(String),
    IsNot(String),
}

/// A rule's condition: `${variable} <operator>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct Condition {
    /// Without `${}`: `user_type`, `email`, …
    pub variable: String,
    pub operator: Operator,
}

/// One row of the connector's subject pattern table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct SubjectRule {
    #[serde(default)]
    pub condition: Option<Condition>,
    pub pattern: String,
}

impl Condition {
    /// `is` / `is not` need the attribute present; `is not` with a missing
    /// attribute does not match (58803a2: "must be present and is not equal").
    pub fn matches(&self, vars: &Variables<'_>) -> Result<bool, SubjectError> {
        let var = self.variable.trim().trim_start_matches("${").trim_end_matches('}');
        let value = vars.get(var)?;
        Ok(match &self.operator {
            Operator::Exists => value.is_some(),
            Operator::DoesNotExist => value.is_none(),
            Operator::Is(v) => value.as_deref() == Some(v.as_str()),
            Operator::IsNot(v) => value.is_some_and(|x| &x != v),
        })
    }
}

/// `SP-3`: the first rule whose condition matches; a rule without
/// condition always matches, and the table ends in one (the default row
/// `CN=${name}` when the list is empty or ends in a conditional row).
pub fn select<'r>(rules: &'r [SubjectRule], vars: &Variables<'_>) -> Result<std::borrow::Cow<'r, str>, SubjectError> {
    for r in rules {
        match &r.condition {
            None => return Ok(std::borrow::Cow::Borrowed(&r.pattern)),
            Some(c) if c.matches(vars)? => return Ok(std::borrow::Cow::Borrowed(&r.pattern)),
            Some(_) => {}
        }
    }
    Ok(std::borrow::Cow::Owned(DEFAULT_PATTERN.to_string()))
}
