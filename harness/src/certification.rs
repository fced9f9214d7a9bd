//! The certification artefact: what one run proves about one
//! implementation, as `report.json` and a self-contained `index.html` (no
//! external assets), written by `idprop run --report-dir DIR`; partitions
//! run on several machines merge into one (`idprop report merge`), and
//! several implementations make a rules × implementations matrix.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::catalogue;
use crate::loader::Loaded;
use crate::report::{RunReport, Status};

/// The suite a report was made with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Suite {
    /// The harness version.
    pub version: String,
    /// SHA-256 over the scenario files (path and content, sorted) and the
    /// rule catalogue: two reports with the same hash ran the same checks.
    pub content_hash: String,
    pub scenarios: usize,
}

impl Suite {
    pub fn of(scenarios: &[Loaded]) -> Suite {
        let mut files: Vec<(String, String)> = scenarios
            .iter()
            .map(|l| (l.scenario.id.clone(), std::fs::read_to_string(&l.path).unwrap_or_default()))
            .collect();
        files.sort();
        let mut ctx = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
        for (id, text) in &files {
            ctx.update(id.as_bytes());
            ctx.update(&[0]);
            ctx.update(text.as_bytes());
            ctx.update(&[0]);
        }
        ctx.update(include_str!("../catalogue/rules.md").as_bytes());
        ctx.update(include_str!("../catalogue/sources.yaml").as_bytes());
        let hash: String = ctx.finish().as_ref().iter().map(|b| format!("{b:02x}")).collect();
        Suite { version: env!("CARGO_PKG_VERSION").into(), content_hash: hash, scenarios: scenarios.len() }
    }
}

/// One check that failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailedCheck {
    pub rule: String,
    pub level: String,
    pub expected: String,
    pub observed: String,
    pub location: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reading: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

/// One scenario's outcome, with what the mocks saw.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScenarioEntry {
    pub id: String,
    pub title: String,
    pub file: String,
    pub rules: Vec<String>,
    /// `passed`, `warned`, `failed`, `skipped`, `known_finding`, `load_error`.
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    pub failed_checks: Vec<FailedCheck>,
    pub transcript: String,
    /// The transcript's difference to `builtin:reference` (empty: the same).
    pub diff_to_reference: String,
}

/// One rule's outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleRow {
    pub id: String,
    pub level: String,
    pub text: String,
    /// `pass`, `warn` (a should/choice check failed), `fail` (a must check
    /// failed), `untested` (no selected scenario checks it).
    pub outcome: String,
    pub scenarios: Vec<String>,
}

/// `report.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Certification {
    pub suite: Suite,
    /// The `--impl` spec.
    pub implementation: String,
    /// What the implementation's `hello` said.
    pub name: String,
    pub version: String,
    pub profile: String,
    /// UTC, RFC 3339.
    pub date: String,
    /// `pass` when no scenario failed at the profile.
    pub verdict: String,
    pub counts: BTreeMap<String, usize>,
    pub rules: Vec<RuleRow>,
    pub scenarios: Vec<ScenarioEntry>,
}

fn status_str(s: Status) -> &'static str {
    match s {
        Status::Passed => "passed",
        Status::Warned => "warned",
        Status::Failed => "failed",
        Status::Skipped => "skipped",
        Status::KnownFinding => "known_finding",
        Status::LoadError => "load_error",
    }
}

impl Certification {
    /// The artefact of `report`; `reference` (the same scenarios against
    /// `builtin:reference`) gives each transcript's diff.
    pub fn new(suite: Suite, report: &RunReport, reference: Option<&RunReport>) -> Certification {
        let scenarios: Vec<ScenarioEntry> = report
            .results
            .iter()
            .map(|r| {
                let diff = reference
                    .and_then(|b| b.results.iter().find(|b| b.id == r.id))
                    .filter(|b| b.transcript != r.transcript && r.status != Status::Skipped)
                    .map(|b| crate::transcript::diff(&b.transcript, &r.transcript))
                    .unwrap_or_default();
                ScenarioEntry {
                    id: r.id.clone(),
                    title: r.title.clone(),
                    file: r.file.clone(),
                    rules: r.rules.clone(),
                    status: status_str(r.status).into(),
                    message: r.message.clone(),
                    note: r.note.clone(),
                    failed_checks: r
                        .failures
                        .iter()
                        .map(|f| FailedCheck {
                            rule: f.rule.clone(),
                            level: f.level.as_str().into(),
                            expected: f.expected.clone(),
                            observed: f.observed.clone(),
                            location: f.location.clone(),
                            reading: f.reading.clone(),
                            source: f.source.clone(),
                        })
                        .collect(),
                    transcript: r.transcript.clone(),
                    diff_to_reference: diff,
                }
            })
            .collect();
        let (name, version) = report.hello.clone().unwrap_or_default();
        let mut c = Certification {
            suite,
            implementation: report.implementation.clone(),
            name,
            version,
            profile: report.profile.as_str().into(),
            date: now_rfc3339(),
            verdict: String::new(),
            counts: BTreeMap::new(),
            rules: vec![],
            scenarios,
        };
        c.settle();
        c
    }

    /// Recomputes verdict, counts and the rule table from the scenarios.
    fn settle(&mut self) {
        self.counts.clear();
        for s in &self.scenarios {
            *self.counts.entry(s.status.clone()).or_default() += 1;
        }
        let failing = |s: &ScenarioEntry| matches!(s.status.as_str(), "failed" | "load_error");
        self.verdict = if self.scenarios.iter().any(failing) { "fail".into() } else { "pass".into() };
        let strict = self.profile == "strict";
        self.rules = catalogue::rules()
            .iter()
            .map(|rule| {
                let checking: Vec<&ScenarioEntry> =
                    self.scenarios.iter().filter(|s| s.rules.contains(&rule.id) && s.status != "skipped").collect();
                let failed_at = |s: &&ScenarioEntry, gate: bool| {
                    s.failed_checks.iter().any(|f| f.rule == rule.id && (gate == (f.level == "must" || strict)))
                };
                let outcome = if checking.is_empty() {
                    "untested"
                } else if checking
                    .iter()
                    .any(|s| failed_at(s, true) || (s.status == "failed" && s.failed_checks.is_empty()))
                {
                    "fail"
                } else if checking.iter().any(|s| failed_at(s, false)) {
                    "warn"
                } else {
                    "pass"
                };
                RuleRow {
                    id: rule.id.clone(),
                    level: rule.level.as_str().into(),
                    text: rule.text.clone(),
                    outcome: outcome.into(),
                    scenarios: checking.iter().map(|s| s.id.clone()).collect(),
                }
            })
            .collect();
    }

    /// Merges the reports of disjoint partitions of one run.
    pub fn merge(parts: Vec<Certification>) -> Result<Certification, String> {
        let mut it = parts.into_iter();
        let mut first = it.next().ok_or("no reports to merge")?;
        for p in it {
            if p.suite.content_hash != first.suite.content_hash {
                return Err(format!(
                    "reports of different suites ({} vs {}): run every partition with the same scenarios",
                    &first.suite.content_hash[..12],
                    &p.suite.content_hash[..12]
                ));
            }
            if (p.implementation.as_str(), p.profile.as_str())
                != (first.implementation.as_str(), first.profile.as_str())
            {
                return Err(format!(
                    "reports of different runs ({} {} vs {} {})",
                    first.implementation, first.profile, p.implementation, p.profile
                ));
            }
            for s in p.scenarios {
                if first.scenarios.iter().any(|x| x.id == s.id) {
                    return Err(format!("scenario {} is in two reports: partitions must be disjoint", s.id));
                }
                first.scenarios.push(s);
            }
            first.date = first.date.max(p.date);
        }
        first.scenarios.sort_by(|a, b| a.id.cmp(&b.id));
        first.settle();
        Ok(first)
    }

    /// Writes `report.json` and `index.html` into `dir`.
    pub fn write(&self, dir: &Path) -> std::io::Result<()> {
        std::fs::create_dir_all(dir)?;
        std::fs::write(dir.join("report.json"), serde_json::to_string_pretty(self).expect("report serialises"))?;
        std::fs::write(dir.join("index.html"), self.html())
    }

    /// Reads `DIR/report.json`.
    pub fn read(dir: &Path) -> Result<Certification, String> {
        let p: PathBuf = if dir.is_dir() { dir.join("report.json") } else { dir.to_path_buf() };
        let text = std::fs::read_to_string(&p).map_err(|e| format!("{}: {e}", p.display()))?;
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", p.display()))
    }

    /// The self-contained HTML page.
    pub fn html(&self) -> String {
        let mut h = String::new();
        let title = format!("idprop conformance — {}", self.implementation);
        let _ = write!(
            h,
            "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title><style>{CSS}</style></head><body>",
            esc(&title)
        );
        let _ = write!(
            h,
            "<header><h1>{}</h1><p class=\"verdict {v}\">verdict: <b>{v}</b> at profile <b>{}</b></p>\
             <table class=\"facts\"><tr><th>implementation</th><td>{} — {} {}</td></tr>\
             <tr><th>suite</th><td>idprop {} · {} scenarios · sha256 <code>{}</code></td></tr>\
             <tr><th>date</th><td>{}</td></tr><tr><th>scenarios</th><td>{}</td></tr></table></header>",
            esc(&title),
            esc(&self.profile),
            esc(&self.implementation),
            esc(&self.name),
            esc(&self.version),
            esc(&self.suite.version),
            self.suite.scenarios,
            esc(&self.suite.content_hash),
            esc(&self.date),
            self.counts.iter().map(|(k, v)| format!("{v} {}", esc(k))).collect::<Vec<_>>().join(" · "),
            v = esc(&self.verdict),
        );
        h.push_str("<h2>Rules</h2><table class=\"rules\"><tr><th>rule</th><th>level</th><th>outcome</th><th>text</th><th>scenarios</th></tr>");
        for r in &self.rules {
            let _ = write!(
                h,
                "<tr class=\"{o}\"><td><code>{}</code></td><td>{}</td><td class=\"outcome\">{o}</td><td>{}</td><td>{}</td></tr>",
                esc(&r.id),
                esc(&r.level),
                esc(&r.text),
                r.scenarios.iter().map(|s| format!("<a href=\"#{0}\">{0}</a>", esc(s))).collect::<Vec<_>>().join(" "),
                o = esc(&r.outcome),
            );
        }
        h.push_str("</table><h2>Scenarios</h2>");
        for s in &self.scenarios {
            let _ = write!(
                h,
                "<details id=\"{id}\" class=\"{st}\"{open}><summary><span class=\"status\">{st}</span> <code>{id}</code> — {}</summary>\
                 <p class=\"file\">{} · rules {}</p>",
                esc(&s.title),
                esc(&s.file),
                esc(&s.rules.join(", ")),
                id = esc(&s.id),
                st = esc(&s.status),
                open = if s.status == "failed" { " open" } else { "" },
            );
            for m in s.message.iter().chain(s.note.iter()) {
                let _ = write!(h, "<p class=\"message\">{}</p>", esc(m));
            }
            for f in &s.failed_checks {
                let _ = write!(
                    h,
                    "<div class=\"check {}\"><b>[{}] {}</b> at {}<br>expected {}<br>observed {}",
                    esc(&f.level),
                    esc(&f.rule),
                    esc(&f.level),
                    esc(&f.location),
                    esc(&f.expected),
                    esc(&f.observed)
                );
                if let Some(r) = &f.reading {
                    let _ = write!(h, "<br>idprop's reading: {}", esc(r));
                }
                if let Some(src) = &f.source {
                    let _ = write!(h, "<br>source: {}", esc(src));
                }
                h.push_str("</div>");
            }
            let _ = write!(h, "<h4>What the mocks saw</h4><pre>{}</pre>", esc(&s.transcript));
            if !s.diff_to_reference.is_empty() {
                let _ = write!(
                    h,
                    "<h4>Difference to builtin:reference</h4><pre class=\"diff\">{}</pre>",
                    esc(&s.diff_to_reference)
                );
            }
            h.push_str("</details>");
        }
        h.push_str("</body></html>\n");
        h
    }
}

/// One rule's outcome in one report.
fn outcome_of<'a>(r: &'a Certification, id: &str) -> &'a str {
    r.rules.iter().find(|x| x.id == id).map(|x| x.outcome.as_str()).unwrap_or("untested")
}

/// A rules × implementations table of several reports.
pub fn matrix_markdown(reports: &[Certification]) -> String {
    let mut out = String::from("| rule | level |");
    for r in reports {
        out.push_str(&format!(" {} |", r.implementation.replace('|', "\\|")));
    }
    out.push_str("\n|---|---|");
    out.push_str(&"---|".repeat(reports.len()));
    out.push('\n');
    for rule in catalogue::rules() {
        out.push_str(&format!("| {} | {} |", rule.id, rule.level.as_str()));
        for r in reports {
            out.push_str(&format!(" {} |", outcome_of(r, &rule.id)));
        }
        out.push('\n');
    }
    out.push_str("| **verdict** | |");
    for r in reports {
        out.push_str(&format!(" **{}** |", r.verdict));
    }
    out.push('\n');
    out
}

/// The same table as a self-contained HTML page.
pub fn matrix_html(reports: &[Certification]) -> String {
    let mut h = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>idprop conformance matrix</title><style>{CSS}</style></head><body><h1>Rules × implementations</h1><table class=\"rules\"><tr><th>rule</th><th>level</th>"
    );
    for r in reports {
        let _ = write!(h, "<th>{}<br><small>{} {}</small></th>", esc(&r.implementation), esc(&r.name), esc(&r.version));
    }
    h.push_str("</tr>");
    for rule in catalogue::rules() {
        let _ = write!(h, "<tr><td><code>{}</code></td><td>{}</td>", esc(&rule.id), rule.level.as_str());
        for r in reports {
            let _ = write!(h, "<td class=\"{o}\">{o}</td>", o = outcome_of(r, &rule.id));
        }
        h.push_str("</tr>");
    }
    h.push_str("<tr><th colspan=\"2\">verdict</th>");
    for r in reports {
        let _ = write!(h, "<th class=\"{v}\">{v}</th>", v = esc(&r.verdict));
    }
    h.push_str("</tr></table></body></html>\n");
    h
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| "unknown".into())
}

const CSS: &str = "body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#222}\
code,pre{font-family:ui-monospace,monospace}pre{background:#f6f6f6;padding:.6em;overflow:auto;font-size:12px}\
table{border-collapse:collapse;margin:.5em 0}th,td{border:1px solid #ddd;padding:.25em .5em;text-align:left;vertical-align:top}\
.verdict.pass b,.pass .outcome,td.pass,th.pass{color:#0a0}.verdict.fail b,.fail .outcome,td.fail,th.fail{color:#c00}\
.warn .outcome,td.warn{color:#b70}.untested .outcome,td.untested{color:#888}\
details{border:1px solid #ddd;margin:.3em 0;padding:.3em .6em}details.failed{border-color:#c00}details.warned{border-color:#b70}\
.status{display:inline-block;min-width:6em;font-weight:bold}.check{margin:.4em 0;padding:.4em;background:#fff4f4}\
.check.choice,.check.should{background:#fffbe8}.diff{background:#eef}.file,.message{color:#555}";

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: &str, status: &str, rule: &str) -> ScenarioEntry {
        ScenarioEntry {
            id: id.into(),
            title: "t <b>".into(),
            file: "f".into(),
            rules: vec![rule.into()],
            status: status.into(),
            message: None,
            note: None,
            failed_checks: if status == "failed" {
                vec![FailedCheck {
                    rule: rule.into(),
                    level: "must".into(),
                    expected: "x".into(),
                    observed: "y".into(),
                    location: "f:1".into(),
                    reading: None,
                    source: None,
                }]
            } else {
                vec![]
            },
            transcript: String::new(),
            diff_to_reference: String::new(),
        }
    }

    fn cert(scenarios: Vec<ScenarioEntry>) -> Certification {
        let mut c = Certification {
            suite: Suite { version: "0".into(), content_hash: "ab".repeat(32), scenarios: 3 },
            implementation: "exec:x".into(),
            name: "x".into(),
            version: "1".into(),
            profile: "default".into(),
            date: "2026-11-30T00:00:00Z".into(),
            verdict: String::new(),
            counts: BTreeMap::new(),
            rules: vec![],
            scenarios,
        };
        c.settle();
        c
    }

    #[test]
    fn partitions_merge_into_the_whole_run() {
        let a = cert(vec![entry("a", "passed", "TU-1")]);
        let b = cert(vec![entry("b", "failed", "TU-2"), entry("c", "passed", "TU-2")]);
        let m = Certification::merge(vec![a.clone(), b]).unwrap();
        assert_eq!(m.scenarios.len(), 3);
        assert_eq!(m.verdict, "fail");
        assert_eq!(m.rules.iter().find(|r| r.id == "TU-1").unwrap().outcome, "pass");
        assert_eq!(m.rules.iter().find(|r| r.id == "TU-2").unwrap().outcome, "fail");
        assert_eq!(m.rules.iter().find(|r| r.id == "TU-3").unwrap().outcome, "untested");
        assert!(Certification::merge(vec![a.clone(), a.clone()]).unwrap_err().contains("two reports"));
        let mut other = a.clone();
        other.suite.content_hash = "cd".repeat(32);
        assert!(Certification::merge(vec![a, other]).unwrap_err().contains("different suites"));
    }

    #[test]
    fn the_page_is_self_contained_and_escaped() {
        let h = cert(vec![entry("a", "failed", "TU-1")]).html();
        assert!(h.contains("t &lt;b&gt;"));
        assert!(!h.contains("src=") && !h.contains("<link") && !h.contains("http://") && !h.contains("https://"));
    }
}
