//! Finding and reading scenario files. A file that does not parse is
//! reported with file, line, column and what was expected, and does not
//! stop the others.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::catalogue;
use crate::protocol::{ERROR_CODES, REASON_CODES};
use crate::scenario::{Check, CheckKind, Level, Scenario, Step};

/// A scenario read from a file.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub path: PathBuf,
    pub scenario: Scenario,
}

/// A file that could not be read as a scenario.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadError {
    pub path: PathBuf,
    /// `file:line:column: message`.
    pub message: String,
}

/// Every `.yaml`/`.yml` file under `paths` (files as given, folders
/// recursively), sorted.
pub fn discover(paths: &[PathBuf]) -> Result<Vec<PathBuf>, String> {
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            walk(p, &mut out).map_err(|e| format!("{}: {e}", p.display()))?;
        } else if p.is_file() {
            out.push(p.clone());
        } else {
            return Err(format!("{}: no such file or folder", p.display()));
        }
    }
    out.sort();
    out.dedup();
    Ok(out)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for e in std::fs::read_dir(dir)? {
        let p = e?.path();
        if p.is_dir() {
            walk(&p, out)?;
        } else if p.extension().is_some_and(|x| x == "yaml" || x == "yml") {
            out.push(p);
        }
    }
    Ok(())
}

/// Reads one scenario from `text` (named `path` in messages).
pub fn parse(text: &str, path: &Path) -> Result<Scenario, LoadError> {
    let file = path.display().to_string();
    let s: Scenario = idprop_mocks::yaml::from_str(text, &file)
        .map_err(|e| LoadError { path: path.into(), message: e.to_string() })?;
    validate(&s)
        .map_err(|(line, col, m)| LoadError { path: path.into(), message: format!("{file}:{line}:{col}: {m}") })?;
    Ok(s)
}

/// Checks what the types cannot: known rule ids, one kind per check, steps
/// of the scenario's role.
fn validate(s: &Scenario) -> Result<(), (u64, u64, String)> {
    if s.id.trim().is_empty() {
        return Err((1, 1, "id must not be empty".into()));
    }
    for r in &s.rules {
        if catalogue::rule(r).is_none() {
            return Err((1, 1, format!("rules: unknown rule id {r:?} (see `idprop list --rules`)")));
        }
    }
    for c in &s.then {
        if c.rule.is_empty() {
            return Err((c.line, c.column, "a check cites its rule (`rule: ID`)".into()));
        }
        if catalogue::rule(&c.rule).is_none() {
            return Err((c.line, c.column, format!("unknown rule id {:?}", c.rule)));
        }
        if !s.rules.contains(&c.rule) {
            return Err((
                c.line,
                c.column,
                format!("check cites {} which is not in the scenario's rules list", c.rule),
            ));
        }
        let level = c.effective_level();
        if level == Level::Choice && c.reading.as_deref().is_none_or(|r| r.trim().is_empty()) {
            let rule_reading = catalogue::rule(&c.rule).and_then(|r| r.reading.clone());
            if c.level.is_some() || rule_reading.is_none() {
                return Err((c.line, c.column, "a `choice` check names the reading it pins (`reading: …`)".into()));
            }
        }
        validate_body(&c.value, level).map_err(|m| (c.line, c.column, m))?;
    }
    if s.when.is_empty() {
        return Err((1, 1, "when: at least one step".into()));
    }
    for st in &s.when {
        if let Some(r) = st.role() {
            if r != s.role {
                return Err((st.line, st.column, format!("a {} step in a {} scenario", r.as_str(), s.role.as_str())));
            }
        }
        if let Step::Wait(w) = &st.value {
            if !(0.0..=120.0).contains(&w.seconds) {
                return Err((st.line, st.column, "wait: seconds must be between 0 and 120".into()));
            }
        }
    }
    Ok(())
}

/// One check body (recursively through `any_of`/`all_of`): exactly one
/// kind, codes from the protocol's closed lists, no verdict on free text at
/// `must` (PROTOCOL.md never defines the wording).
fn validate_body(c: &Check, level: Level) -> Result<(), String> {
    let (mapping, auth_token) = match &c.kind {
        CheckKind::Mapping(m) => (Some(m), None),
        CheckKind::AuthToken(a) => (None, Some(a)),
        _ => (None, None),
    };
    let wording = mapping.is_some_and(|m| !m.reason_contains.is_empty())
        || auth_token.is_some_and(|a| !a.error_contains.is_empty());
    if wording && level == Level::Must {
        return Err("a `must` check cannot judge free text (reason_contains, error_contains): use reason_code / error_code at `should`".into());
    }
    if let Some(code) = mapping.and_then(|m| m.reason_code.as_deref()) {
        if !REASON_CODES.contains(&code) {
            return Err(format!("reason_code {code:?}: one of {}", REASON_CODES.join(", ")));
        }
    }
    if let Some(code) = auth_token.and_then(|a| a.error_code.as_deref()) {
        if !ERROR_CODES.contains(&code) {
            return Err(format!("error_code {code:?}: one of {}", ERROR_CODES.join(", ")));
        }
    }
    for alt in c.parts() {
        if alt.level.is_some() || alt.source.is_some() || alt.reading.is_some() {
            return Err("the alternatives of any_of/all_of take the outer check's level, source and reading".into());
        }
        if !alt.rule.is_empty() && alt.rule != c.rule && !c.rule.is_empty() {
            return Err(format!("an alternative cites {} inside a check of {}", alt.rule, c.rule));
        }
        validate_body(alt, level)?;
    }
    if matches!(&c.kind, CheckKind::AnyOf(v) | CheckKind::AllOf(v) if v.is_empty()) {
        return Err("any_of / all_of need at least one alternative".into());
    }
    Ok(())
}

/// Loads every file; parse failures come back as errors beside the scenarios.
pub fn load(paths: &[PathBuf]) -> Result<(Vec<Loaded>, Vec<LoadError>), String> {
    let files = discover(paths)?;
    let mut ok = Vec::new();
    let mut errors = Vec::new();
    let mut seen: HashMap<String, PathBuf> = HashMap::new();
    for path in files {
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) => {
                errors.push(LoadError {
                    path: path.clone(),
                    message: format!("{}:0:0: cannot read: {e}", path.display()),
                });
                continue;
            }
        };
        match parse(&text, &path) {
            Ok(s) => {
                if let Some(prev) = seen.insert(s.id.clone(), path.clone()) {
                    errors.push(LoadError {
                        path: path.clone(),
                        message: format!(
                            "{}:1:1: duplicate scenario id {:?} (also in {})",
                            path.display(),
                            s.id,
                            prev.display()
                        ),
                    });
                    continue;
                }
                ok.push(Loaded { path, scenario: s });
            }
            Err(e) => errors.push(e),
        }
    }
    Ok((ok, errors))
}
