//! The checks of a scenario, judged against what the steps answered and
//! what the mocks saw.

use super::*;

/// Every check of `l` against the steps' answers and the journal, its
/// `{{…}}` values rendered; the failures, each with its level, reading and
/// source.
pub(crate) fn judge(
    l: &Loaded,
    outcomes: &[StepOutcome],
    journal: &[idprop_mocks::JournalEntry],
    vars: &BTreeMap<String, String>,
) -> Vec<Failure> {
    let s = &l.scenario;
    let mut failures = Vec::new();
    let ev = Evidence { steps: outcomes, journal };
    for check in &s.then {
        let mut c = check.value.clone();
        let mut v = serde_json::to_value(&c).expect("check serialises");
        render_value(&mut v, vars);
        if let Ok(rendered) = serde_json::from_value(v) {
            c = rendered;
        }
        if let Err(crate::checks::Mismatch { expected, observed }) = evaluate(&c, &ev) {
            let level = c.effective_level();
            let rule = crate::catalogue::rule(&c.rule);
            failures.push(Failure {
                rule: c.rule.clone(),
                rule_text: rule_text(&c.rule),
                level,
                reading: (level == crate::scenario::Level::Choice)
                    .then(|| c.reading.clone().or_else(|| rule.and_then(|r| r.reading.clone())))
                    .flatten(),
                source: c.source.as_ref().or_else(|| rule.and_then(|r| r.sources.first())).map(|s| s.cite()),
                expected,
                observed,
                location: format!("{}:{}", l.path.display(), check.line),
            });
        }
    }
    failures
}
