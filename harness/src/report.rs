//! Results and reports: human, JSON, JUnit; and the exit code.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use crate::catalogue;

/// How a scenario ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Passed,
    Failed,
    /// The implementation does not play the scenario's role.
    Skipped,
    /// Failed, but listed as a known finding for this implementation.
    KnownFinding,
    /// The file could not be read as a scenario.
    LoadError,
}

/// One broken expectation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Failure {
    pub rule: String,
    pub rule_text: String,
    pub expected: String,
    pub observed: String,
    /// `file:line` of the check.
    pub location: String,
}

/// The outcome of one scenario.
#[derive(Debug, Clone, Serialize)]
pub struct ScenarioResult {
    pub id: String,
    pub title: String,
    pub file: String,
    pub role: String,
    pub rules: Vec<String>,
    pub tags: Vec<String>,
    pub status: Status,
    pub failures: Vec<Failure>,
    /// A protocol or set-up problem (garbage, hang, crash, …).
    pub message: Option<String>,
    pub duration_ms: u64,
    /// The adapter's stderr (exec), kept for the report.
    pub stderr: String,
    /// Why it was skipped, or the known finding's explanation.
    pub note: Option<String>,
    /// The normalized transcript of what the mocks observed.
    #[serde(skip)]
    pub transcript: String,
}

impl ScenarioResult {
    pub fn area(&self) -> String {
        std::path::Path::new(&self.file)
            .parent()
            .and_then(|p| p.file_name())
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    }
}

/// A whole run.
#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    pub implementation: String,
    pub results: Vec<ScenarioResult>,
    pub duration_ms: u64,
}

impl RunReport {
    pub fn count(&self, s: Status) -> usize {
        self.results.iter().filter(|r| r.status == s).count()
    }

    /// 0 when every selected scenario passed (or was skipped by role or a
    /// known finding), 1 on failures, 2 when a file could not be loaded.
    pub fn exit_code(&self) -> i32 {
        if self.count(Status::LoadError) > 0 {
            2
        } else if self.count(Status::Failed) > 0 {
            1
        } else {
            0
        }
    }

    /// The human report.
    pub fn human(&self) -> String {
        let mut out = String::new();
        let bad: Vec<&ScenarioResult> =
            self.results.iter().filter(|r| matches!(r.status, Status::Failed | Status::LoadError)).collect();
        if !bad.is_empty() {
            let _ = writeln!(out, "\nFailures:");
        }
        for r in &bad {
            let _ = writeln!(out, "\n✗ {} — {} ({})", r.id, r.title, r.file);
            if let Some(m) = &r.message {
                let _ = writeln!(out, "    {m}");
            }
            for f in &r.failures {
                let _ = writeln!(out, "    [{}] {}", f.rule, f.rule_text);
                let _ = writeln!(out, "      at       {}", f.location);
                let _ = writeln!(out, "      expected {}", f.expected);
                let _ = writeln!(out, "      observed {}", f.observed);
            }
            if !r.stderr.trim().is_empty() {
                let tail: Vec<&str> = r.stderr.lines().collect();
                let _ = writeln!(out, "    adapter stderr (last lines):");
                for l in &tail[tail.len().saturating_sub(5)..] {
                    let _ = writeln!(out, "      | {l}");
                }
            }
        }
        let findings: Vec<&ScenarioResult> = self.results.iter().filter(|r| r.status == Status::KnownFinding).collect();
        if !findings.is_empty() {
            let _ = writeln!(out, "\nKnown findings (departures from the spec, listed for this implementation):");
            for r in findings {
                let _ = writeln!(out, "  ! {} [{}]: {}", r.id, r.rules.join(", "), r.note.clone().unwrap_or_default());
            }
        }
        // By rule.
        let mut by_rule: BTreeMap<String, (usize, usize)> = BTreeMap::new();
        for r in &self.results {
            if matches!(r.status, Status::Skipped | Status::LoadError) {
                continue;
            }
            for id in &r.rules {
                let e = by_rule.entry(id.clone()).or_default();
                // A failed scenario counts against the rules whose checks
                // failed (all of them when the implementation broke down).
                let failed = match r.status {
                    Status::Passed => false,
                    _ if r.failures.is_empty() => true,
                    _ => r.failures.iter().any(|f| &f.rule == id),
                };
                if failed {
                    e.1 += 1;
                } else {
                    e.0 += 1;
                }
            }
        }
        let _ = writeln!(out, "\nBy rule (passed/failed):");
        let mut line = String::new();
        for (id, (p, f)) in &by_rule {
            let cell = if *f > 0 { format!("{id} {p}/{f}✗") } else { format!("{id} {p}/0") };
            if line.len() + cell.len() > 100 {
                let _ = writeln!(out, "  {line}");
                line.clear();
            }
            line.push_str(&format!("{cell:<14}"));
        }
        if !line.is_empty() {
            let _ = writeln!(out, "  {line}");
        }
        let mut by_area: BTreeMap<String, [usize; 4]> = BTreeMap::new();
        for r in &self.results {
            let e = by_area.entry(r.area()).or_default();
            match r.status {
                Status::Passed => e[0] += 1,
                Status::Failed | Status::LoadError => e[1] += 1,
                Status::Skipped => e[2] += 1,
                Status::KnownFinding => e[3] += 1,
            }
        }
        let _ = writeln!(out, "\nBy area:            passed failed skipped findings");
        for (a, [p, f, s, k]) in &by_area {
            let _ = writeln!(out, "  {a:<22}{p:>6} {f:>6} {s:>7} {k:>8}");
        }
        let mut skipped_by_role: BTreeMap<String, usize> = BTreeMap::new();
        for r in self.results.iter().filter(|r| r.status == Status::Skipped) {
            *skipped_by_role.entry(r.role.clone()).or_default() += 1;
        }
        if !skipped_by_role.is_empty() {
            let _ = writeln!(out, "\nSkipped (role not played by the implementation):");
            for (role, n) in skipped_by_role {
                let _ = writeln!(out, "  {role}: {n}");
            }
        }
        let _ = writeln!(
            out,
            "\n{}: {} passed, {} failed, {} skipped, {} known findings, {} load errors in {:.1} s",
            self.implementation,
            self.count(Status::Passed),
            self.count(Status::Failed) + self.count(Status::LoadError),
            self.count(Status::Skipped),
            self.count(Status::KnownFinding),
            self.count(Status::LoadError),
            self.duration_ms as f64 / 1000.0
        );
        out
    }

    /// One progress line for a finished scenario.
    pub fn progress_line(r: &ScenarioResult) -> String {
        let mark = match r.status {
            Status::Passed => "ok  ",
            Status::Failed => "FAIL",
            Status::Skipped => "skip",
            Status::KnownFinding => "find",
            Status::LoadError => "LOAD",
        };
        format!("{mark} {:<56} {:>6} ms  [{}]", r.id, r.duration_ms, r.rules.join(","))
    }

    pub fn json(&self) -> String {
        serde_json::to_string_pretty(self).expect("report serialises")
    }

    /// JUnit XML: one test suite per area, one test case per scenario.
    pub fn junit(&self) -> String {
        use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};
        let mut report = Report::new(format!("idprop conformance: {}", self.implementation));
        let mut suites: BTreeMap<String, TestSuite> = BTreeMap::new();
        for r in &self.results {
            let suite = suites.entry(r.area()).or_insert_with(|| TestSuite::new(r.area()));
            let status = match r.status {
                Status::Passed => TestCaseStatus::success(),
                Status::Skipped | Status::KnownFinding => {
                    let mut s = TestCaseStatus::skipped();
                    if let TestCaseStatus::Skipped { message, .. } = &mut s {
                        *message = r.note.clone().map(Into::into);
                    }
                    s
                }
                Status::Failed | Status::LoadError => {
                    let mut s = TestCaseStatus::non_success(if r.status == Status::LoadError {
                        NonSuccessKind::Error
                    } else {
                        NonSuccessKind::Failure
                    });
                    if let TestCaseStatus::NonSuccess { message, description, .. } = &mut s {
                        let first = r
                            .failures
                            .first()
                            .map(|f| format!("[{}] expected {} — observed {}", f.rule, f.expected, f.observed));
                        *message = r.message.clone().or(first).map(Into::into);
                        let mut d = String::new();
                        for f in &r.failures {
                            let _ = writeln!(
                                d,
                                "[{}] {} at {}\n  expected {}\n  observed {}",
                                f.rule, f.rule_text, f.location, f.expected, f.observed
                            );
                        }
                        *description = Some(d.into());
                    }
                    s
                }
            };
            let mut tc = TestCase::new(r.id.clone(), status);
            tc.set_classname(r.area());
            tc.set_time(std::time::Duration::from_millis(r.duration_ms));
            if !r.stderr.is_empty() {
                tc.set_system_err(r.stderr.clone());
            }
            suite.add_test_case(tc);
        }
        report.add_test_suites(suites.into_values());
        report.to_string().expect("JUnit serialises")
    }
}

/// The text of a rule for reports.
pub fn rule_text(id: &str) -> String {
    catalogue::rule(id).map(|r| r.text.clone()).unwrap_or_else(|| "(not in the catalogue)".into())
}
