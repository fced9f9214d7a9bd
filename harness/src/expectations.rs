//! Expectation files: what one implementation is known to fail, kept beside
//! the implementation instead of inside the scenarios (as the OpenID
//! Foundation suite's expected-failures files and WPT's metadata do).
//!
//! ```yaml
//! implementation: sap-cloud-sdk-js          # informational
//! expected:
//!   - scenario: co-technical-user-propagation-end-to-end
//!     reason: OAuth2TechnicalUserPropagation is not supported by the SDK
//!     link: https://github.com/SAP/cloud-sdk-js/issues/5827
//!   - rule: CP-5                              # every scenario failing only on CP-5
//!     reason: …
//! ```
//!
//! A scenario that fails (at the run's profile) and is listed becomes an
//! expected failure; one that is listed but passes fails the run, so a fix
//! is noticed and its entry removed.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::report::{RunReport, Status};

/// One expected failure.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expected {
    /// A scenario id …
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scenario: Option<String>,
    /// … or a rule id: scenarios whose failing checks all cite it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    /// Why the implementation departs from the rule.
    pub reason: String,
    /// Where it is tracked (the implementation's issue tracker).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
}

/// An expectation file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expectations {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub implementation: Option<String>,
    #[serde(default)]
    pub expected: Vec<Expected>,
}

/// A file that could not be read or does not fit the format.
#[derive(Debug, thiserror::Error)]
pub enum ExpectationsError {
    #[error(transparent)]
    Yaml(#[from] idprop_mocks::yaml::YamlError),
    #[error("{file}: entry {index}: name exactly one of `scenario` and `rule`")]
    Entry { file: String, index: usize },
    #[error("{file}: {what} {id:?} is not in the suite")]
    Unknown { file: String, what: &'static str, id: String },
}

impl Expectations {
    /// Reads `path`; entries must name known scenarios or rules.
    pub fn load(path: &Path, known_scenarios: &[String]) -> Result<Expectations, ExpectationsError> {
        let e: Expectations = idprop_mocks::yaml::from_file(path)?;
        let file = path.display().to_string();
        for (i, x) in e.expected.iter().enumerate() {
            match (&x.scenario, &x.rule) {
                (Some(s), None) if !known_scenarios.contains(s) => {
                    return Err(ExpectationsError::Unknown { file, what: "scenario", id: s.clone() })
                }
                (None, Some(r)) if crate::catalogue::rule(r).is_none() => {
                    return Err(ExpectationsError::Unknown { file, what: "rule", id: r.clone() })
                }
                (Some(_), None) | (None, Some(_)) => {}
                _ => return Err(ExpectationsError::Entry { file, index: i + 1 }),
            }
        }
        Ok(e)
    }

    /// The entry that covers a scenario with these failing rules, if any.
    fn covering(&self, id: &str, failing_rules: &[&str]) -> Option<&Expected> {
        self.expected.iter().find(|x| match (&x.scenario, &x.rule) {
            (Some(s), _) => s == id,
            (None, Some(r)) => !failing_rules.is_empty() && failing_rules.iter().all(|f| f == r),
            _ => false,
        })
    }

    /// Applies the file to a settled report: listed failures become known
    /// findings; listed scenarios that pass fail ("fixed? remove the entry").
    pub fn apply(&self, report: &mut RunReport, file: &str) {
        let profile = report.profile;
        for r in &mut report.results {
            let failing: Vec<&str> = r.gating(profile).map(|f| f.rule.as_str()).collect();
            let Some(x) = self.covering(&r.id, &failing).cloned() else { continue };
            match r.status {
                Status::Failed => {
                    r.status = Status::KnownFinding;
                    r.note = Some(match &x.link {
                        Some(l) => format!("{} ({l})", x.reason),
                        None => x.reason.clone(),
                    });
                }
                Status::Passed | Status::Warned if x.scenario.is_some() => {
                    r.status = Status::Failed;
                    r.message = Some(format!(
                        "expected to fail ({}) but passed: fixed? remove its entry from {file}",
                        x.reason
                    ));
                }
                _ => {}
            }
        }
    }

    /// An expectation file listing every scenario that failed in `report`
    /// (their first gating failure as the reason, to be edited).
    pub fn from_report(report: &RunReport) -> Expectations {
        let expected = report
            .results
            .iter()
            .filter(|r| matches!(r.status, Status::Failed | Status::KnownFinding))
            .map(|r| Expected {
                scenario: Some(r.id.clone()),
                rule: None,
                reason: r.note.clone().or_else(|| r.message.clone()).unwrap_or_else(|| {
                    r.gating(report.profile)
                        .next()
                        .map(|f| format!("[{}] expected {} — observed {}", f.rule, f.expected, f.observed))
                        .unwrap_or_else(|| "failed".into())
                }),
                link: None,
            })
            .collect();
        Expectations { implementation: Some(report.implementation.clone()), expected }
    }

    /// The implementation's conformance table (Markdown): one row per
    /// scenario of `report` with its rules and verdict; a warning names the
    /// rules and levels it departs from, a known finding its reason and
    /// tracker. The README's per-client tables are this, verbatim.
    pub fn table(&self, report: &RunReport) -> String {
        let mut rows: Vec<&crate::report::ScenarioResult> = report.results.iter().collect();
        rows.sort_by(|a, b| a.id.cmp(&b.id));
        let mut out = String::from("| scenario | rules | verdict |\n|---|---|---|\n");
        for r in rows {
            let failing: Vec<&str> = r.failures.iter().map(|f| f.rule.as_str()).collect();
            let departures = || {
                let mut seen: Vec<String> = Vec::new();
                for f in &r.failures {
                    let d = format!("`{}` ({})", f.rule, f.level.as_str());
                    if !seen.contains(&d) {
                        seen.push(d);
                    }
                }
                seen.join(", ")
            };
            let verdict = match r.status {
                Status::Passed => "pass".to_string(),
                Status::Warned => format!("warning: {}", departures()),
                Status::KnownFinding => {
                    let x = self.covering(&r.id, &failing);
                    let reason = x.map(|x| x.reason.as_str()).unwrap_or("");
                    match x.and_then(|x| x.link.as_deref()) {
                        Some(l) => format!("known finding: {} ([tracker]({l}))", reason.replace('|', "\\|")),
                        None => format!("known finding: {}", reason.replace('|', "\\|")),
                    }
                }
                Status::Failed => format!("**fails**: {}", departures()),
                Status::Skipped => format!("skipped: {}", r.note.as_deref().unwrap_or("")),
                Status::LoadError => "load error".to_string(),
            };
            let rules: Vec<String> = r.rules.iter().map(|x| format!("`{x}`")).collect();
            out.push_str(&format!("| `{}` | {} | {} |\n", r.id, rules.join(" "), verdict));
        }
        out
    }

    pub fn to_yaml(&self) -> String {
        format!(
            "# Expected failures of one implementation (idprop run --expect FILE).\n\
             # An entry whose scenario passes fails the run: remove it then.\n{}",
            idprop_mocks::yaml::to_string(self)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{Failure, Profile, ScenarioResult};
    use crate::scenario::Level;

    fn result(id: &str, status: Status, failing_rule: Option<&str>) -> ScenarioResult {
        ScenarioResult {
            status,
            failures: failing_rule
                .map(|r| Failure {
                    rule: r.into(),
                    rule_text: String::new(),
                    level: Level::Must,
                    reading: None,
                    source: None,
                    expected: "x".into(),
                    observed: "y".into(),
                    location: String::new(),
                })
                .into_iter()
                .collect(),
            ..ScenarioResult::new(id.into(), String::new(), String::new())
        }
    }

    #[test]
    fn listed_failures_are_expected_and_listed_passes_fail() {
        let e = Expectations {
            implementation: None,
            expected: vec![
                Expected { scenario: Some("a".into()), rule: None, reason: "known".into(), link: Some("L".into()) },
                Expected { scenario: Some("b".into()), rule: None, reason: "was broken".into(), link: None },
                Expected { scenario: None, rule: Some("CP-5".into()), reason: "by rule".into(), link: None },
            ],
        };
        let mut report = RunReport {
            implementation: "x".into(),
            hello: None,
            profile: Profile::Default,
            results: vec![
                result("a", Status::Failed, Some("TU-1")),
                result("b", Status::Passed, None),
                result("c", Status::Failed, Some("CP-5")),
                result("d", Status::Failed, Some("TU-2")),
            ],
            duration_ms: 0,
        };
        e.apply(&mut report, "exp.yaml");
        let st: Vec<Status> = report.results.iter().map(|r| r.status).collect();
        assert_eq!(st, [Status::KnownFinding, Status::Failed, Status::KnownFinding, Status::Failed]);
        assert!(report.results[1].message.as_deref().unwrap().contains("remove its entry from exp.yaml"));
        assert_eq!(report.results[0].note.as_deref(), Some("known (L)"));
    }

    /// The table names each verdict's reason: a warning's rule and level, a
    /// known finding's reason and tracker (pipes escaped), a failure.
    #[test]
    fn the_table_says_why_for_every_row() {
        let e = Expectations {
            implementation: None,
            expected: vec![Expected {
                scenario: Some("a".into()),
                rule: None,
                reason: "not | supported".into(),
                link: Some("https://t/1".into()),
            }],
        };
        let mut warned = result("w", Status::Warned, Some("CO-1"));
        warned.failures[0].level = Level::Choice;
        warned.rules = vec!["CO-1".into(), "PT-2".into()];
        let mut report = RunReport {
            implementation: "x".into(),
            hello: None,
            profile: Profile::Default,
            results: vec![result("z", Status::Failed, Some("TU-2")), warned, result("a", Status::Failed, Some("TP-1"))],
            duration_ms: 0,
        };
        e.apply(&mut report, "exp.yaml");
        let t = e.table(&report);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines[0], "| scenario | rules | verdict |");
        assert_eq!(lines[2], "| `a` |  | known finding: not \\| supported ([tracker](https://t/1)) |");
        assert_eq!(lines[3], "| `w` | `CO-1` `PT-2` | warning: `CO-1` (choice) |");
        assert_eq!(lines[4], "| `z` |  | **fails**: `TU-2` (must) |");
    }

    #[test]
    fn a_written_file_reads_back() {
        let report = RunReport {
            implementation: "impl \"q\"".into(),
            hello: None,
            profile: Profile::Default,
            results: vec![result("a", Status::Failed, Some("TU-1")), result("b", Status::Passed, None)],
            duration_ms: 0,
        };
        let e = Expectations::from_report(&report);
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("e.yaml");
        std::fs::write(&p, e.to_yaml()).unwrap();
        let back = Expectations::load(&p, &["a".into(), "b".into()]).unwrap();
        assert_eq!(back, e);
        assert_eq!(back.expected.len(), 1);
    }
}
