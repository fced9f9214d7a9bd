//! Results and reports: human, JSON, JUnit; and the exit code.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use crate::catalogue;
use crate::scenario::Level;

/// Which levels of check fail a run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Profile {
    /// Only `must` checks gate: what SAP's text requires.
    #[default]
    Default,
    /// Every check gates, `should` and `choice` too: idprop's own readings.
    Strict,
}

impl Profile {
    pub fn parse(s: &str) -> Option<Profile> {
        match s {
            "default" => Some(Profile::Default),
            "strict" => Some(Profile::Strict),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Profile::Default => "default",
            Profile::Strict => "strict",
        }
    }

    /// Whether a failed check of `level` fails its scenario.
    pub fn gates(self, level: Level) -> bool {
        match self {
            Profile::Default => level == Level::Must,
            Profile::Strict => true,
        }
    }
}

/// How a scenario ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Passed,
    /// Passed at the run's profile, but a `should` or `choice` check failed:
    /// reported as a warning with the reading idprop takes.
    Warned,
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
    pub level: Level,
    /// For `choice` checks: the reading the check pins.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reading: Option<String>,
    /// The sentence the check rests on (`page: "quote"`), when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
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
    /// The implementation's `hello` name and version.
    #[serde(skip)]
    pub hello: Option<(String, String)>,
}

impl ScenarioResult {
    /// A passed result with nothing observed yet.
    pub fn new(id: String, title: String, file: String) -> Self {
        ScenarioResult {
            id,
            title,
            file,
            role: String::new(),
            rules: vec![],
            tags: vec![],
            status: Status::Passed,
            failures: vec![],
            message: None,
            duration_ms: 0,
            stderr: String::new(),
            note: None,
            transcript: String::new(),
            hello: None,
        }
    }

    /// The status its failures give at `profile` (a scenario that broke
    /// down, a skip, a load error or a known finding keeps its status).
    pub fn settle(&mut self, profile: Profile) {
        if !matches!(self.status, Status::Passed | Status::Warned | Status::Failed) || self.message.is_some() {
            return;
        }
        self.status = if self.failures.iter().any(|f| profile.gates(f.level)) {
            Status::Failed
        } else if self.failures.is_empty() {
            Status::Passed
        } else {
            Status::Warned
        };
    }

    /// Failures that fail the scenario at `profile`.
    pub fn gating(&self, profile: Profile) -> impl Iterator<Item = &Failure> {
        self.failures.iter().filter(move |f| profile.gates(f.level))
    }

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
    /// What the implementation's `hello` said: name and version.
    pub hello: Option<(String, String)>,
    pub profile: Profile,
    pub results: Vec<ScenarioResult>,
    pub duration_ms: u64,
}

impl RunReport {
    /// The verdicts at `profile`.
    pub fn with_profile(mut self, profile: Profile) -> Self {
        self.profile = profile;
        for r in &mut self.results {
            r.settle(profile);
        }
        self
    }

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
            for f in r.gating(self.profile) {
                write_failure(&mut out, f);
            }
            if !r.stderr.trim().is_empty() {
                let tail: Vec<&str> = r.stderr.lines().collect();
                let _ = writeln!(out, "    adapter stderr (last lines):");
                for l in &tail[tail.len().saturating_sub(5)..] {
                    let _ = writeln!(out, "      | {l}");
                }
            }
        }
        let warned: Vec<(&ScenarioResult, &Failure)> = self
            .results
            .iter()
            .filter(|r| matches!(r.status, Status::Warned | Status::Failed))
            .flat_map(|r| r.failures.iter().filter(|f| !self.profile.gates(f.level)).map(move |f| (r, f)))
            .collect();
        if !warned.is_empty() {
            let _ = writeln!(out, "\nWarnings (`should`/`choice` checks; they fail only with --profile strict):");
            for (r, f) in warned {
                let _ = writeln!(out, "\n! {} — {} ({})", r.id, r.title, r.file);
                write_failure(&mut out, f);
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
                    Status::Passed | Status::Warned => false,
                    _ if r.failures.is_empty() => true,
                    _ => r.gating(self.profile).any(|f| &f.rule == id),
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
                Status::Passed | Status::Warned => e[0] += 1,
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
            "\n{} (profile {}): {} passed ({} with warnings), {} failed, {} skipped, {} known findings, {} load errors in {:.1} s",
            self.implementation,
            self.profile.as_str(),
            self.count(Status::Passed) + self.count(Status::Warned),
            self.count(Status::Warned),
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
            Status::Warned => "warn",
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
                Status::Passed | Status::Warned => TestCaseStatus::success(),
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
                            .gating(self.profile)
                            .next()
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

fn write_failure(out: &mut String, f: &Failure) {
    let _ = writeln!(out, "    [{}] ({}) {}", f.rule, f.level.as_str(), f.rule_text);
    let _ = writeln!(out, "      at       {}", f.location);
    let _ = writeln!(out, "      expected {}", f.expected);
    let _ = writeln!(out, "      observed {}", f.observed);
    if let Some(r) = &f.reading {
        let _ = writeln!(out, "      reading  {r} (idprop's choice where the pages are silent)");
    }
    if let Some(s) = &f.source {
        let _ = writeln!(out, "      source   {s}");
    }
}

/// The text of a rule for reports.
pub fn rule_text(id: &str) -> String {
    catalogue::rule(id).map(|r| r.text.clone()).unwrap_or_else(|| "(not in the catalogue)".into())
}
