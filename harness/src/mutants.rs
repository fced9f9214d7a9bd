//! Mutant hunting: every mutant must fail the suite somewhere, or the suite
//! has no teeth for the rule it breaks.

use std::sync::Arc;

use crate::driver::{builtin::Builtin, Driver};
use crate::loader::Loaded;
use crate::reference::Deviation;
use crate::report::Status;
use crate::runner::run_all;

/// Which scenarios killed one mutant.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Kill {
    pub mutant: String,
    pub rule: String,
    pub killed_by: Vec<String>,
    /// Properties that failed (with the rule they named).
    pub killed_by_properties: Vec<String>,
}

/// Runs the scenarios that check the mutant's rule (all of them with
/// `exhaustive`, or when fewer than two of those kill it) and reports the
/// killers: the scenarios that fail at the default profile, i.e. on a
/// `must` check — a mutant caught only by `should`/`choice` checks survives.
/// With `properties`, the property checks run too (256 cases, seed 2026).
pub async fn hunt(scenarios: &[Loaded], deviation: Deviation, jobs: usize, exhaustive: bool, properties: bool) -> Kill {
    let driver: Arc<dyn Driver> =
        Arc::new(Builtin::new(&format!("mutant/{}", deviation.name())).expect("known mutant"));
    let targeted: Vec<Loaded> = if exhaustive {
        scenarios.to_vec()
    } else {
        scenarios.iter().filter(|l| l.scenario.rules.iter().any(|r| r == deviation.rule())).cloned().collect()
    };
    let mut killers = killers_of(driver.clone(), targeted, jobs).await;
    if killers.len() < 2 && !exhaustive {
        killers = killers_of(driver, scenarios.to_vec(), jobs).await;
    }
    let name = deviation.name().to_string();
    let props = if !properties {
        Vec::new()
    } else {
        tokio::task::spawn_blocking(move || {
            let d: Arc<dyn Driver> = Arc::new(Builtin::new(&format!("mutant/{name}")).expect("known mutant"));
            crate::properties::run_all(d, 256, 2026)
        })
        .await
        .unwrap_or_default()
    };
    let killed_by_properties =
        props.iter().filter_map(|o| o.failure.as_ref().map(|f| format!("{} [{}]", o.role, f.rule))).collect();
    Kill { mutant: deviation.name().into(), rule: deviation.rule().into(), killed_by: killers, killed_by_properties }
}

async fn killers_of(driver: Arc<dyn Driver>, scenarios: Vec<Loaded>, jobs: usize) -> Vec<String> {
    let report = run_all(driver, scenarios, vec![], jobs, &|_| {}).await;
    report.results.into_iter().filter(|r| r.status == Status::Failed).map(|r| r.id).collect()
}

/// Hunts every mutant at once.
pub async fn hunt_all(scenarios: &[Loaded], jobs: usize, exhaustive: bool, properties: bool) -> Vec<Kill> {
    let futures = Deviation::ALL.into_iter().map(|d| hunt(scenarios, d, jobs, exhaustive, properties));
    futures::future::join_all(futures).await
}

/// The kill table as text.
pub fn table(kills: &[Kill]) -> String {
    let mut out = format!("{:<30} {:<6} killed by\n", "mutant", "rule");
    for k in kills {
        let by = if k.killed_by.is_empty() { "SURVIVED the scenarios".to_string() } else { k.killed_by.join(", ") };
        out.push_str(&format!("{:<30} {:<6} scenarios ({}): {by}\n", k.mutant, k.rule, k.killed_by.len()));
        let props =
            if k.killed_by_properties.is_empty() { "none".to_string() } else { k.killed_by_properties.join(", ") };
        out.push_str(&format!("{:<37} properties: {props}\n", ""));
    }
    out
}
