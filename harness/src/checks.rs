//! Judging: each `then` check against the answers and the journal.

use std::time::Duration;

use idprop_mocks::JournalEntry;
use serde_json::Value;

use crate::scenario::{AuthTokenCheck, Check, CheckKind, MappingCheck, RequestMatch, RequestsCheck, ResponseCheck};

/// What one step produced.
#[derive(Debug, Clone)]
pub struct StepOutcome {
    pub name: Option<String>,
    /// `result` of each answer, in order.
    pub results: Vec<Value>,
    pub elapsed: Duration,
}

/// Everything checks can look at.
pub struct Evidence<'a> {
    pub steps: &'a [StepOutcome],
    pub journal: &'a [JournalEntry],
}

/// `(expected, observed)` of a failed check.
/// Why a check failed: what it wanted, what the evidence showed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("expected {expected}, observed {observed}")]
pub struct Mismatch {
    pub expected: String,
    pub observed: String,
}

fn mismatch(expected: impl Into<String>, observed: impl Into<String>) -> Mismatch {
    Mismatch { expected: expected.into(), observed: observed.into() }
}

impl Evidence<'_> {
    fn step(&self, name: Option<&str>) -> Result<&StepOutcome, Mismatch> {
        match name {
            Some(n) => self
                .steps
                .iter()
                .find(|s| s.name.as_deref() == Some(n))
                .ok_or_else(|| mismatch(format!("a step named {n:?}"), "none")),
            None => self
                .steps
                .iter()
                .rev()
                .find(|s| !s.results.is_empty())
                .ok_or_else(|| mismatch("an answered step", "none")),
        }
    }

    fn answer(&self, name: Option<&str>) -> Result<&Value, Mismatch> {
        self.step(name)?.results.last().ok_or_else(|| mismatch("an answer", "no answer"))
    }
}

/// Judges one check.
pub fn evaluate(check: &Check, ev: &Evidence<'_>) -> Result<(), Mismatch> {
    let name = check.answer.as_deref();
    match &check.kind {
        CheckKind::AnyOf(alternatives) => {
            let mut missed = Vec::new();
            for alt in alternatives {
                let alt = inherit(check, alt);
                match evaluate(&alt, ev) {
                    Ok(()) => return Ok(()),
                    Err(m) => missed.push(m),
                }
            }
            Err(mismatch(
                format!("one of: {}", missed.iter().map(|m| m.expected.as_str()).collect::<Vec<_>>().join(" | ")),
                missed.iter().map(|m| m.observed.as_str()).collect::<Vec<_>>().join(" | "),
            ))
        }
        CheckKind::AllOf(parts) => {
            for part in parts {
                evaluate(&inherit(check, part), ev)?;
            }
            Ok(())
        }
        CheckKind::AuthToken(c) => auth_token(c, ev.answer(name)?),
        CheckKind::DestinationConfiguration(props) => {
            let a = ev.answer(name)?;
            for (k, v) in props {
                let got = a.pointer("/destinationConfiguration").and_then(|d| d.get(k)).and_then(Value::as_str);
                if got != Some(v.as_str()) {
                    return Err(mismatch(format!("destinationConfiguration.{k} = {v:?}"), format!("{got:?}")));
                }
            }
            Ok(())
        }
        CheckKind::Mapping(c) => mapping(c, ev.answer(name)?),
        CheckKind::Response(c) => response(c, ev.answer(name)?),
        CheckKind::Requests(c) => requests(c, ev.journal),
        CheckKind::Elapsed(c) => {
            let s = ev.step(c.step.as_deref().or(name))?;
            let t = s.elapsed.as_secs_f64();
            let (lo, hi) = (c.min_s.unwrap_or(0.0), c.max_s.unwrap_or(f64::INFINITY));
            if t < lo || t > hi {
                return Err(mismatch(format!("took between {lo} s and {hi} s"), format!("{t:.2} s")));
            }
            Ok(())
        }
        CheckKind::SameToken(c) => {
            let values: Vec<String> = c
                .answers
                .iter()
                .map(|n| {
                    ev.answer(Some(n))
                        .map(|a| a.pointer("/authTokens/0/value").and_then(Value::as_str).unwrap_or("").to_string())
                })
                .collect::<Result<_, _>>()?;
            let all_same = values.windows(2).all(|w| w[0] == w[1]);
            let all_set = values.iter().all(|v| !v.is_empty());
            match (c.same, all_set, all_same) {
                (_, false, _) => Err(mismatch("a token in every answer", format!("{values:?}"))),
                (true, _, true) | (false, _, false) => Ok(()),
                (true, _, false) => Err(mismatch(
                    format!("the same token in {:?}", c.answers),
                    format!("{} different tokens", values.len()),
                )),
                (false, _, true) => Err(mismatch(format!("different tokens in {:?}", c.answers), "the same token")),
            }
        }
    }
}

/// An alternative of `any_of`/`all_of` with the outer check's answer.
fn inherit(outer: &Check, inner: &Check) -> Check {
    let mut c = inner.clone();
    if c.answer.is_none() {
        c.answer = outer.answer.clone();
    }
    if c.rule.is_empty() {
        c.rule = outer.rule.clone();
    }
    c
}

fn auth_token(c: &AuthTokenCheck, answer: &Value) -> Result<(), Mismatch> {
    let tokens = answer.get("authTokens").and_then(Value::as_array);
    if let Some(absent) = c.absent {
        let none = tokens.is_none_or(|t| t.is_empty());
        if none != absent {
            return Err(mismatch(
                if absent { "no authTokens" } else { "authTokens" },
                format!("{}", answer.get("authTokens").unwrap_or(&Value::Null)),
            ));
        }
        if absent {
            return Ok(());
        }
    }
    let t = tokens.and_then(|t| t.first()).ok_or_else(|| mismatch("an authTokens entry", "none"))?;
    let s = |k: &str| t.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    let (value, error) = (s("value"), s("error"));
    if let Some(ok) = c.ok {
        if ok && (!error.is_empty() || value.is_empty()) {
            return Err(mismatch(
                "a token and no error",
                format!("error {error:?}, value {:?}", crate::protocol::excerpt(&value)),
            ));
        }
        if !ok && (error.is_empty() || !s("type").is_empty() || !value.is_empty()) {
            return Err(mismatch("an error entry (type and value empty, error set)", format!("{t}")));
        }
    }
    let eq = |what: &str, want: &Option<String>, got: String| match want {
        Some(w) if *w != got => Err(mismatch(format!("{what} = {w:?}"), format!("{got:?}"))),
        _ => Ok(()),
    };
    eq("type", &c.kind, s("type"))?;
    eq(
        "http_header.key",
        &c.header_key,
        t.pointer("/http_header/key").and_then(Value::as_str).unwrap_or("").to_string(),
    )?;
    let want_hv = c.header_value.as_ref().map(|h| h.replace("{{value}}", &value));
    eq(
        "http_header.value",
        &want_hv,
        t.pointer("/http_header/value").and_then(Value::as_str).unwrap_or("").to_string(),
    )?;
    let exp = match t.get("expires_in") {
        Some(Value::String(x)) => x.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => String::new(),
    };
    eq("expires_in", &c.expires_in, exp)?;
    eq("scope", &c.scope, s("scope"))?;
    for part in &c.error_contains {
        if !error.to_lowercase().contains(&part.to_lowercase()) {
            return Err(mismatch(format!("error containing {part:?}"), format!("{error:?}")));
        }
    }
    if let Some(code) = &c.error_code {
        protocol_code("error_code", code, t.get("error_code").and_then(Value::as_str), "error", &error)?;
    }
    if !c.claims.is_empty() {
        let claims = idprop_mocks::tokens::peek_claims(&value)
            .ok_or_else(|| mismatch("a JWT token value", crate::protocol::excerpt(&value)))?;
        for (k, v) in &c.claims {
            if claims.get(k) != Some(v) {
                return Err(mismatch(format!("claim {k} = {v}"), format!("{}", claims.get(k).unwrap_or(&Value::Null))));
            }
        }
    }
    if let Some(host) = &c.issued_by {
        if !value.starts_with(&format!("ts.{host}.")) {
            return Err(mismatch(format!("a token issued by {host}"), crate::protocol::excerpt(&value)));
        }
    }
    Ok(())
}

fn mapping(c: &MappingCheck, a: &Value) -> Result<(), Mismatch> {
    let accepted = a.get("accepted").and_then(Value::as_bool);
    if accepted != Some(c.accepted) {
        return Err(mismatch(
            if c.accepted { "accepted".to_string() } else { "refused".to_string() },
            crate::protocol::excerpt(&a.to_string()),
        ));
    }
    let s = |k: &str| a.get(k).and_then(Value::as_str).map(str::to_string);
    if let Some(p) = &c.principal {
        if s("principal").as_deref() != Some(p.as_str()) {
            return Err(mismatch(format!("principal {p:?}"), format!("{:?}", s("principal"))));
        }
    }
    if let Some(p) = &c.subject {
        if s("subject").as_deref() != Some(p.as_str()) {
            return Err(mismatch(format!("subject {p:?}"), format!("{:?}", s("subject"))));
        }
    }
    if let Some(want) = &c.subject_dn {
        let got = s("subject").unwrap_or_default();
        let same = idprop_mocks::rules::dn::same_name(want, &got)
            .map_err(|e| mismatch(format!("subject naming the same entry as {want:?}"), format!("{got:?} ({e})")))?;
        if !same {
            let parsed = idprop_mocks::rules::dn::parse(&got).map(|v| format!("{v:?}")).unwrap_or_default();
            return Err(mismatch(
                format!("subject naming the same entry as {want:?} (RFC 4514, any escaping)"),
                format!("{got:?} = {parsed}"),
            ));
        }
    }
    if !c.accepted {
        let reason = s("reason").unwrap_or_default();
        if reason.trim().is_empty() {
            return Err(mismatch("a reason for the refusal", "none"));
        }
        for part in &c.reason_contains {
            if !reason.to_lowercase().contains(&part.to_lowercase()) {
                return Err(mismatch(format!("reason containing {part:?}"), format!("{reason:?}")));
            }
        }
        if let Some(code) = &c.reason_code {
            protocol_code("reason_code", code, s("reason_code").as_deref(), "reason", &reason)?;
        }
    }
    Ok(())
}

/// A v1.1 code field (`field`) against the wanted `code`; the free text
/// (`text_name`: `text`) is shown beside it for people, never judged.
fn protocol_code(field: &str, code: &str, got: Option<&str>, text_name: &str, text: &str) -> Result<(), Mismatch> {
    match got {
        Some(g) if g == code => Ok(()),
        Some(g) => Err(mismatch(format!("{field} {code:?}"), format!("{g:?} ({text_name} {text:?})"))),
        None => Err(mismatch(format!("{field} {code:?}"), format!("no {field} ({text_name} {text:?})"))),
    }
}

fn response(c: &ResponseCheck, a: &Value) -> Result<(), Mismatch> {
    let error = a.get("error").and_then(Value::as_str).filter(|e| !e.is_empty());
    if let Some(want) = c.error {
        if want != error.is_some() {
            return Err(mismatch(
                if want { "an error" } else { "a response" },
                crate::protocol::excerpt(&a.to_string()),
            ));
        }
    }
    if let Some(st) = c.status {
        let got = a.get("status").and_then(Value::as_u64);
        if got != Some(u64::from(st)) {
            return Err(mismatch(
                format!("status {st}"),
                format!(
                    "{} ({})",
                    got.map(|g| g.to_string()).unwrap_or("none".into()),
                    crate::protocol::excerpt(
                        &error.map(str::to_string).unwrap_or_else(|| a
                            .get("body")
                            .and_then(Value::as_str)
                            .unwrap_or("")
                            .to_string())
                    )
                ),
            ));
        }
    }
    let body = a.get("body").and_then(Value::as_str).unwrap_or("");
    for part in &c.body_contains {
        if !body.contains(part.as_str()) {
            return Err(mismatch(format!("body containing {part:?}"), crate::protocol::excerpt(body)));
        }
    }
    Ok(())
}

fn describe(e: &JournalEntry) -> String {
    format!("{} {}{} ({})", e.method, e.host, e.path, e.component)
}

fn requests(c: &RequestsCheck, journal: &[JournalEntry]) -> Result<(), Mismatch> {
    let selected: Vec<&JournalEntry> = journal
        .iter()
        .filter(|e| c.component.as_deref().is_none_or(|x| e.component == x))
        .filter(|e| match c.host.as_deref() {
            None => true,
            Some(h) if h.starts_with('.') => e.host.ends_with(h),
            Some(h) => e.host.eq_ignore_ascii_case(h),
        })
        .filter(|e| c.path.as_deref().is_none_or(|p| e.path == p))
        .filter(|e| c.with_form.iter().all(|(k, v)| e.form_field(k) == Some(v.as_str())))
        .collect();
    let what = format!(
        "requests{}{}",
        c.component.as_ref().map(|x| format!(" to {x}")).unwrap_or_default(),
        c.host.as_ref().map(|h| format!(" at {h}")).unwrap_or_default()
    );
    let n = selected.len();
    let seen = || selected.iter().map(|e| describe(e)).collect::<Vec<_>>().join("; ");
    if let Some(want) = c.count {
        if n != want {
            return Err(mismatch(format!("{want} {what}"), format!("{n}: [{}]", seen())));
        }
    }
    if let Some(min) = c.min_count {
        if n < min {
            return Err(mismatch(format!("at least {min} {what}"), format!("{n}")));
        }
    }
    if let Some(max) = c.max_count {
        if n > max {
            return Err(mismatch(format!("at most {max} {what}"), format!("{n}: [{}]", seen())));
        }
    }
    let check_one = |m: &RequestMatch, e: &JournalEntry, which: &str| -> Result<(), Mismatch> {
        matches(m, e).map_err(|Mismatch { expected: exp, observed: obs }| {
            mismatch(format!("{which} of the {what}: {exp}"), format!("{obs} — in {}", describe(e)))
        })
    };
    if let Some(m) = &c.first {
        let e = selected.first().ok_or_else(|| mismatch(format!("a first {what}"), "none"))?;
        check_one(m, e, "the first")?;
    }
    if let Some(m) = &c.last {
        let e = selected.last().ok_or_else(|| mismatch(format!("a last {what}"), "none"))?;
        check_one(m, e, "the last")?;
    }
    if let Some(m) = &c.each {
        for e in &selected {
            check_one(m, e, "each")?;
        }
    }
    Ok(())
}

/// The first way `e` differs from `m` (the matcher lists them in order).
fn matches(m: &RequestMatch, e: &JournalEntry) -> Result<(), Mismatch> {
    match m.differences(e).into_iter().next() {
        Some(d) => Err(mismatch(d.expected, d.observed)),
        None => Ok(()),
    }
}

/// `user:password` of a `Basic …` header value.
pub fn basic_of(v: &str) -> Option<String> {
    idprop_mocks::authorization::parse_basic(v).map(|(u, p)| format!("{u}:{p}"))
}
