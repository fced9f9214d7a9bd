//! Running scenarios: a fresh [`Stack`] per scenario, the implementation
//! driven through its driver, every check judged; many at once.
//!
//! [`select`]: which scenarios; [`template`]: the stack and the `{{…}}`
//! values a scenario asks for; [`drive`]: one scenario's conversation;
//! [`judge`]: its checks.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use idprop_mocks::retrieval::Certificate;
use idprop_mocks::stack::TokenServerConfig;
use idprop_mocks::tokens::unix_now;
use idprop_mocks::{Stack, StackConfig};
use serde_json::{json, Value};

use crate::checks::{evaluate, Evidence, StepOutcome};
use crate::driver::{Driver, SessionEnv};
use crate::loader::{LoadError, Loaded};
use crate::protocol::{result_of, Call, CallEnv, Envelope, FindDestination, MapPrincipal, Request, Trust};
use crate::report::{rule_text, Failure, Profile, RunReport, ScenarioResult, Status};
use crate::scenario::{Role, Scenario, Step, TokenSpec};

mod drive;
mod judge;
mod select;
mod template;

use drive::drive;
pub(crate) use judge::judge;
pub use select::{parse_partition, Selection};
pub use template::{mint, stack_config};
pub(crate) use template::{object, render, render_value, trust_of, variables};

/// Default time an implementation has to answer one message.
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(15);

/// Runs `scenarios` against `driver`, `jobs` at a time; load errors become
/// failed results. `progress` sees each result as it finishes.
pub async fn run_all(
    driver: Arc<dyn Driver>,
    scenarios: Vec<Loaded>,
    load_errors: Vec<LoadError>,
    jobs: usize,
    progress: &(dyn Fn(&ScenarioResult) + Sync),
) -> RunReport {
    run_all_until(driver, scenarios, load_errors, jobs, progress, std::future::pending()).await
}

/// [`run_all`] that stops early when `stop` completes (Ctrl-C): unfinished
/// scenarios are aborted — their stacks shut down, their adapters' process
/// groups killed — and reported as interrupted; the report covers the rest.
pub async fn run_all_until(
    driver: Arc<dyn Driver>,
    scenarios: Vec<Loaded>,
    load_errors: Vec<LoadError>,
    jobs: usize,
    progress: &(dyn Fn(&ScenarioResult) + Sync),
    stop: impl std::future::Future<Output = ()>,
) -> RunReport {
    let started = Instant::now();
    let mut results: Vec<ScenarioResult> = load_errors.into_iter().map(load_error_result).collect();
    for r in &results {
        progress(r);
    }
    let sem = Arc::new(tokio::sync::Semaphore::new(jobs.max(1)));
    let mut set = tokio::task::JoinSet::new();
    let pending: Vec<(String, String, String)> = scenarios
        .iter()
        .map(|l| (l.scenario.id.clone(), l.scenario.title.clone(), l.path.display().to_string()))
        .collect();
    // `slow` scenarios (the ten-second timeouts) start first and side by
    // side, outside the job limit: they spend their time waiting on a clock,
    // and the suite can end no sooner than one of them does.
    let mut order: Vec<(usize, Loaded)> = scenarios.into_iter().enumerate().collect();
    order.sort_by_key(|(_, l)| !l.scenario.tags.iter().any(|t| t == "slow"));
    for (i, l) in order {
        let (sem, driver) = (sem.clone(), driver.clone());
        let slow = l.scenario.tags.iter().any(|t| t == "slow");
        set.spawn(async move {
            let _permit = if slow { None } else { Some(sem.acquire_owned().await.expect("semaphore open")) };
            (i, run_scenario(driver.as_ref(), &l).await)
        });
    }
    let mut done = Vec::new();
    tokio::pin!(stop);
    let mut interrupted = false;
    loop {
        tokio::select! {
            r = set.join_next() => match r {
                None => break,
                Some(Ok((i, res))) => {
                    progress(&res);
                    done.push((i, res));
                }
                Some(Err(e)) if e.is_cancelled() => {}
                Some(Err(e)) => done.push((usize::MAX, panic_result(e.to_string()))),
            },
            _ = &mut stop, if !interrupted => {
                interrupted = true;
                set.abort_all();
            }
        }
    }
    if interrupted {
        for (i, (id, title, file)) in pending.into_iter().enumerate() {
            if !done.iter().any(|(j, _)| *j == i) {
                let mut r = load_error_result(LoadError {
                    path: PathBuf::from(&file),
                    message: "interrupted before it finished".into(),
                });
                r.id = id;
                r.title = title;
                r.status = Status::Failed;
                done.push((i, r));
            }
        }
    }
    done.sort_by_key(|(i, _)| *i);
    results.extend(done.into_iter().map(|(_, r)| r));
    RunReport {
        implementation: driver.describe(),
        hello: results.iter().find_map(|r| r.hello.clone()),
        profile: Profile::Default,
        results,
        duration_ms: started.elapsed().as_millis() as u64,
    }
}

fn load_error_result(e: LoadError) -> ScenarioResult {
    ScenarioResult {
        status: Status::LoadError,
        message: Some(e.message),
        ..ScenarioResult::new(
            e.path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default(),
            "(file could not be loaded)".into(),
            e.path.display().to_string(),
        )
    }
}

fn panic_result(msg: String) -> ScenarioResult {
    let mut r = load_error_result(LoadError {
        path: PathBuf::from("(harness)"),
        message: format!("harness task failed: {msg}"),
    });
    r.status = Status::Failed;
    r
}

/// Runs one scenario.
pub async fn run_scenario(driver: &dyn Driver, l: &Loaded) -> ScenarioResult {
    let s = &l.scenario;
    let started = Instant::now();
    let mut result = ScenarioResult {
        role: s.role.as_str().into(),
        rules: s.rules.clone(),
        tags: s.tags.clone(),
        ..ScenarioResult::new(s.id.clone(), s.title.clone(), l.path.display().to_string())
    };
    let outcome = drive(driver, l, &mut result).await;
    if let Err(m) = outcome {
        result.status = Status::Failed;
        result.message = Some(m);
    } else {
        result.settle(Profile::Default);
    }
    result.duration_ms = started.elapsed().as_millis() as u64;
    result
}
