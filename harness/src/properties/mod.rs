//! Property-based conformance: generated destinations and tokens, judged
//! by what the mocks observed against the rules module as the oracle.
//!
//! Runs against any implementation through the drivers. A failure comes
//! with the seed, the shrunk minimal input as a ready-to-save scenario, and
//! the rule it broke.
//!
//! [`strategies`]: the generated cases; [`oracle`]: the rules' verdict on
//! what an implementation did; [`report`]: failures as scenarios and text.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use idprop_mocks::rules::client_auth::Ca4;
use idprop_mocks::rules::principal_mapping;
use idprop_mocks::rules::token_request::{plan, plan_with, Plan, TokenRequest};
use idprop_mocks::rules::token_url::UrlType;
use idprop_mocks::rules::{Destination, Readings};
use idprop_mocks::tokens::{unix_now, Forgery};
use idprop_mocks::{JournalEntry, Stack, TokenServerBehaviour};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestError, TestRng, TestRunner};
use serde_json::{json, Map, Value};

use crate::driver::{Driver, SessionEnv};
use crate::protocol::{result_of, Envelope, FindDestination, MapPrincipal, NetworkInfo, Propagation, Request};
use crate::runner::mint;
use crate::scenario::TokenSpec;

mod oracle;
mod report;
mod strategies;

use oracle::retrieval_readings;
pub use oracle::{judge_mapping, judge_retrieval};
pub use report::report;
use report::{mapping_yaml, retrieval_yaml};
pub use strategies::*;

/// Host of the generated token services (and its subdomains).
pub const HOST: &str = "auth.prop.test";

/// A property that broke.
#[derive(Debug, Clone)]
pub struct PropertyFailure {
    pub rule: String,
    pub message: String,
    /// The shrunk input as a scenario file.
    pub scenario_yaml: String,
}

/// The outcome of one property.
#[derive(Debug, Clone)]
pub struct PropertyOutcome {
    pub name: &'static str,
    pub role: &'static str,
    pub cases: u32,
    pub seed: u64,
    /// `None`: passed. `Some(Err)`: the implementation does not play the role.
    pub failure: Option<PropertyFailure>,
    pub skipped: Option<String>,
    pub duration_ms: u64,
}

/// A case failed: which rule, what went wrong.
#[derive(Debug, Clone, PartialEq, Eq, Default, thiserror::Error)]
#[error("{rule}: {message}")]
pub struct Broken {
    pub rule: String,
    pub message: String,
}

fn broken(rule: &str, message: String) -> Broken {
    Broken { rule: rule.to_string(), message }
}

/// Why a case could not be judged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
enum CaseError {
    /// The implementation does not play the property's role.
    #[error("{0}")]
    RoleNotPlayed(String),
    /// The harness could not set the case up or talk to the implementation.
    #[error("{0}")]
    Harness(String),
}

impl From<String> for CaseError {
    fn from(e: String) -> Self {
        CaseError::Harness(e)
    }
}

impl From<crate::driver::DriverError> for CaseError {
    fn from(e: crate::driver::DriverError) -> Self {
        CaseError::Harness(e.to_string())
    }
}

/// Starts a stack and a session, checks the role; runs `f` with them.
async fn with_session<F, Fut>(driver: &dyn Driver, role: &str, f: F) -> Result<Option<Broken>, CaseError>
where
    F: FnOnce(Stack, Box<dyn crate::driver::Session>, NetworkInfo) -> Fut,
    Fut: std::future::Future<Output = (Box<dyn crate::driver::Session>, Result<(), Broken>)>,
{
    let stack = Stack::builder()
        .token_server(HOST, TokenServerBehaviour::default())
        .start()
        .await
        .map_err(|e| format!("stack did not start: {e}"))?;
    let network = crate::session::network_of(&stack);
    let env = SessionEnv { network: network.clone(), vcap_services: None };
    let session = match crate::session::open(driver, &env, role, std::time::Duration::from_secs(15)).await {
        Ok(o) => o.session,
        Err(crate::session::OpenError::RoleNotPlayed { hello, .. }) => {
            return Err(CaseError::RoleNotPlayed(format!("{} does not play {role}", hello.name)))
        }
        Err(e) => return Err(CaseError::Harness(e.to_string())),
    };
    let (session, r) = f(stack, session, network).await;
    let end = session.close().await;
    if let Some(p) = end.problem {
        return Ok(Some(broken("FD-1", format!("adapter: {p}"))));
    }
    Ok(r.err())
}

async fn send_one(session: &mut Box<dyn crate::driver::Session>, req: Value) -> Result<Value, Broken> {
    let a = session.send(vec![req.clone()], false, std::time::Duration::from_secs(20)).await.remove(0);
    a.and_then(|a| result_of(&req, &a)).map_err(|e| broken("FD-1", format!("protocol: {e}")))
}

/// Checks one token-retrieval case against the oracle.
async fn check_retrieval(driver: &dyn Driver, case: &RetrievalCase) -> Result<Option<Broken>, CaseError> {
    let d = case.destination();
    let tenant = case.call_tenant().to_string();
    let case = case.clone();
    with_session(driver, "token-retrieval", |stack, mut session, network| async move {
        let user_token = (case.auth == AuthKind::JwtBearer).then(|| mint(&stack, &TokenSpec::default()));
        let mut expected = Vec::new();
        for r in retrieval_readings() {
            match plan_with(&d, &tenant, user_token.as_deref(), &r) {
                Ok(Plan::Fetch(tr)) => expected.push(tr),
                other => {
                    let e = format!("generator produced a case the oracle does not fetch for: {other:?}");
                    return (session, Err(broken("FD-1", e)));
                }
            }
        }
        let destination = match d.to_json() {
            Value::Object(m) => m,
            _ => Default::default(),
        };
        let req = Request::FindDestination(FindDestination {
            tenant: tenant.clone(),
            user_token: user_token.clone(),
            destination,
            certificates: vec![],
            related_destinations: None,
            headers: None,
            network: network.clone(),
        });
        let r = async {
            let mut answers = Vec::new();
            for n in 0..case.lookups {
                answers.push(send_one(&mut session, Envelope::new(2 + u64::from(n), req.clone()).to_value()).await?);
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            let seen = stack.journal().of("token-server");
            judge_retrieval(&d, &expected, &answers, &seen)
        }
        .await;
        (session, r)
    })
    .await
}

/// Checks one principal-mapping case against the oracle.
async fn check_mapping(driver: &dyn Driver, case: &MappingCase) -> Result<Option<Broken>, CaseError> {
    let spec = case.token_spec();
    let pattern = case.pattern.clone();
    let forged = case.forgery;
    let trusted = case.trusted;
    let technical = case.technical;
    with_session(driver, "principal-mapping", |stack, mut session, network| async move {
        let token = mint(&stack, &spec);
        let tenants: Vec<String> = stack.uaa().config().tenants.iter().map(|t| t.subdomain.clone()).collect();
        // A technical user's token comes in the technical header: the header
        // decides the user type (protocol v1.1 `propagation`).
        let req = Envelope::new(
            2,
            Request::MapPrincipal(MapPrincipal {
                token: token.clone(),
                trust: crate::runner::trust_of(&stack, &tenants),
                subject_pattern: pattern.clone(),
                now: unix_now() as i64,
                propagation: technical.then_some(Propagation::Technical),
                network: network.clone(),
            }),
        )
        .to_value();
        let r = async {
            let answer = send_one(&mut session, req).await?;
            let claims = idprop_mocks::tokens::peek_claims(&token).unwrap_or_default();
            judge_mapping(&claims, &pattern, forged, trusted, technical, &answer)
        }
        .await;
        (session, r)
    })
    .await
}

fn runner(cases: u32, seed: u64) -> TestRunner {
    let config = Config { cases, failure_persistence: None, max_shrink_iters: 200, ..Config::default() };
    let mut bytes = [0u8; 32];
    bytes[..8].copy_from_slice(&seed.to_le_bytes());
    TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &bytes))
}

/// Runs one property on its own thread and runtime (the proptest runner is
/// synchronous).
fn run_property<S, F>(
    name: &'static str,
    role: &'static str,
    cases: u32,
    seed: u64,
    strategy: S,
    check: F,
    to_yaml: fn(&S::Value, &str) -> String,
) -> PropertyOutcome
where
    S: Strategy + Send + 'static,
    S::Value: Clone + std::fmt::Debug,
    F: Fn(&tokio::runtime::Runtime, &S::Value) -> Result<Option<Broken>, CaseError> + Send + 'static,
{
    let started = Instant::now();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let mut runner = runner(cases, seed);
    let last_rule = std::sync::Mutex::new(Broken::default());
    let skipped = std::sync::Mutex::new(None::<String>);
    let result = runner.run(&strategy, |case| match check(&rt, &case) {
        Ok(None) => Ok(()),
        Ok(Some(b)) => {
            let msg = b.message.clone();
            *last_rule.lock().expect("lock") = b;
            Err(TestCaseError::fail(msg))
        }
        Err(CaseError::RoleNotPlayed(why)) => {
            *skipped.lock().expect("lock") = Some(why);
            Err(TestCaseError::reject("role not played"))
        }
        Err(CaseError::Harness(e)) => Err(TestCaseError::fail(format!("harness: {e}"))),
    });
    let skipped = skipped.into_inner().expect("lock");
    let failure = match (result, &skipped) {
        (_, Some(_)) => None,
        (Ok(()), _) => None,
        (Err(TestError::Fail(reason, minimal)), _) => {
            // The last failing run is the minimal one.
            let Broken { rule, message: msg } = last_rule.into_inner().expect("lock");
            Some(PropertyFailure {
                scenario_yaml: to_yaml(&minimal, &rule),
                rule,
                message: if msg.is_empty() { reason.to_string() } else { msg },
            })
        }
        (Err(TestError::Abort(reason)), _) => Some(PropertyFailure {
            rule: String::new(),
            message: format!("aborted: {reason}"),
            scenario_yaml: String::new(),
        }),
    };
    PropertyOutcome { name, role, cases, seed, failure, skipped, duration_ms: started.elapsed().as_millis() as u64 }
}

/// Runs both properties against `driver`.
pub fn run_all(driver: Arc<dyn Driver>, cases: u32, seed: u64) -> Vec<PropertyOutcome> {
    run_roles(driver, cases, seed, &["token-retrieval", "principal-mapping"])
}

/// Runs the properties of `roles` against `driver`, each on its own thread.
pub fn run_roles(driver: Arc<dyn Driver>, cases: u32, seed: u64, roles: &[&str]) -> Vec<PropertyOutcome> {
    let mut threads = Vec::new();
    if roles.contains(&"token-retrieval") {
        let d = driver.clone();
        threads.push(std::thread::spawn(move || {
            run_property(
                "token-retrieval: generated destinations",
                "token-retrieval",
                cases,
                seed,
                retrieval_cases(),
                move |rt, c| rt.block_on(check_retrieval(d.as_ref(), c)),
                retrieval_yaml,
            )
        }));
    }
    if roles.contains(&"principal-mapping") {
        let d = driver;
        threads.push(std::thread::spawn(move || {
            run_property(
                "principal-mapping: generated claims and patterns",
                "principal-mapping",
                cases,
                seed,
                mapping_cases(),
                move |rt, c| rt.block_on(check_mapping(d.as_ref(), c)),
                mapping_yaml,
            )
        }));
    }
    threads.into_iter().map(|t| t.join().expect("property thread")).collect()
}
