//! Running scenarios: a fresh [`Stack`] per scenario, the implementation
//! driven through its driver, every check judged; many at once.

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
use crate::protocol::{
    hello, result_of, Call, CallEnv, Envelope, FindDestination, Hello, MapPrincipal, NetworkInfo, Request, Trust,
};
use crate::report::{rule_text, Failure, Profile, RunReport, ScenarioResult, Status};
use crate::scenario::{Role, Scenario, Step, TokenSpec};

/// Default time an implementation has to answer one message.
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(15);

/// Which scenarios to run.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    /// Substring of the id or title.
    pub filter: Option<String>,
    pub tags: Vec<String>,
    /// Scenarios with any of these tags are left out.
    pub exclude_tags: Vec<String>,
    pub roles: Vec<Role>,
    pub rules: Vec<String>,
    /// `(k, n)`: the k-th of n partitions (1-based).
    pub partition: Option<(usize, usize)>,
}

impl Selection {
    /// The selected scenarios, in id order.
    pub fn apply(&self, mut all: Vec<Loaded>) -> Vec<Loaded> {
        all.sort_by(|a, b| a.scenario.id.cmp(&b.scenario.id));
        let picked: Vec<Loaded> = all
            .into_iter()
            .filter(|l| {
                let s = &l.scenario;
                self.filter.as_deref().is_none_or(|f| s.id.contains(f) || s.title.contains(f))
                    && (self.tags.is_empty()
                        || self
                            .tags
                            .iter()
                            .any(|t| s.tags.contains(t) || l.path.to_string_lossy().contains(&format!("/{t}/"))))
                    && !self.exclude_tags.iter().any(|t| s.tags.contains(t))
                    && (self.roles.is_empty() || self.roles.contains(&s.role))
                    && (self.rules.is_empty() || self.rules.iter().any(|r| s.rules.contains(r)))
            })
            .collect();
        match self.partition {
            Some((k, n)) if n > 0 => {
                picked.into_iter().enumerate().filter(|(i, _)| i % n == k - 1).map(|(_, l)| l).collect()
            }
            _ => picked,
        }
    }
}

/// Parses `k/n`.
pub fn parse_partition(s: &str) -> Result<(usize, usize), String> {
    let (k, n) = s.split_once('/').ok_or_else(|| format!("--partition {s:?}: expected k/n"))?;
    let (k, n): (usize, usize) = (
        k.parse().map_err(|_| format!("--partition {s:?}: k"))?,
        n.parse().map_err(|_| format!("--partition {s:?}: n"))?,
    );
    if n == 0 || k == 0 || k > n {
        return Err(format!("--partition {s:?}: need 1 <= k <= n"));
    }
    Ok((k, n))
}

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

/// The stack configuration a scenario's `given` asks for.
pub fn stack_config(s: &Scenario) -> StackConfig {
    let g = &s.given;
    let mut c = StackConfig::default();
    for t in &g.tenants {
        if !c.uaa.tenants.iter().any(|x| &x.subdomain == t) {
            c.uaa.tenants.push(idprop_mocks::Tenant::new(t));
        }
    }
    for u in &g.users {
        c.uaa.users.retain(|x| x.user_name != u.user_name);
        c.uaa.users.push(u.clone());
    }
    for cl in &g.clients {
        c.uaa.clients.retain(|x| x.client_id != cl.client_id);
        c.uaa.clients.push(cl.clone());
    }
    if !g.token_servers.is_empty() {
        let mut servers: Vec<TokenServerConfig> =
            c.token_servers.into_iter().filter(|d| g.token_servers.iter().all(|t| t.host != d.host)).collect();
        servers.extend(g.token_servers.iter().cloned());
        c.token_servers = servers;
    }
    if let Some(d) = &g.destinations {
        // Destinations may name the UAA domain: {{uaa_domain}}.
        let mut v = serde_json::to_value(d).expect("destinations serialise");
        let vars = BTreeMap::from([("uaa_domain".to_string(), c.uaa.domain.clone())]);
        render_value(&mut v, &vars);
        c.destinations = Some(serde_json::from_value(v).expect("rendered destinations keep their shape"));
    }
    if let Some(cs) = &g.connectors {
        c.connectors = cs.clone();
    }
    if let Some(b) = &g.backend {
        c.backend = b.clone();
    }
    c
}

/// Values `{{…}}` in scenario strings may use.
fn variables(stack: &Stack, s: &Scenario) -> BTreeMap<String, String> {
    let mut v = BTreeMap::new();
    v.insert("uaa_domain".into(), stack.uaa().domain());
    v.insert("tenant".into(), "mytenant".into());
    v.insert("gateway".into(), stack.gateway_url());
    for t in stack.uaa().config().tenants {
        v.insert(format!("zid.{}", t.subdomain), t.zid.clone());
        v.insert(format!("issuer.{}", t.subdomain), stack.uaa().factory().issuer(&t.subdomain));
    }
    if let Some(zid) = v.get("zid.mytenant").cloned() {
        v.insert("zid".into(), zid);
    }
    let first =
        s.given.token_servers.first().map(|t| t.host.clone()).unwrap_or_else(|| "authserver.example.test".into());
    v.insert("token_server.host".into(), first.clone());
    v.insert("token_server.url".into(), format!("https://{first}/oauth/token"));
    v
}

fn render(text: &str, vars: &BTreeMap<String, String>) -> String {
    if !text.contains("{{") {
        return text.to_string();
    }
    let mut out = text.to_string();
    for (k, v) in vars {
        out = out.replace(&format!("{{{{{k}}}}}"), v);
    }
    out
}

/// Renders every string inside a JSON value.
fn render_value(v: &mut Value, vars: &BTreeMap<String, String>) {
    match v {
        Value::String(s) => *s = render(s, vars),
        Value::Array(a) => a.iter_mut().for_each(|x| render_value(x, vars)),
        Value::Object(o) => o.values_mut().for_each(|x| render_value(x, vars)),
        _ => {}
    }
}

/// Mints the token a spec describes.
pub fn mint(stack: &Stack, spec: &TokenSpec) -> String {
    if let Some(l) = &spec.literal {
        return l.clone();
    }
    let tenant = spec.tenant.as_deref().unwrap_or("mytenant");
    let mut b = if let Some(only) = &spec.only_claims {
        let mut claims = only.clone();
        claims.entry("iss").or_insert_with(|| json!(stack.uaa().factory().issuer(tenant)));
        stack.uaa().factory().builder(tenant, claims)
    } else if let Some(client) = &spec.client {
        stack.uaa().client_token(tenant, client)
    } else {
        stack.uaa().user_token(tenant, spec.user.as_deref().unwrap_or("alice"))
    };
    for (k, v) in &spec.claims {
        b = b.claim(k.clone(), v.clone());
    }
    for k in &spec.drop {
        b = b.without(k);
    }
    if let Some(k) = &spec.kid {
        b = b.kid(k.clone());
    }
    match spec.forge {
        Some(f) => b.forge(f),
        None => b.sign(),
    }
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

async fn drive(driver: &dyn Driver, l: &Loaded, result: &mut ScenarioResult) -> Result<(), String> {
    let s = &l.scenario;
    let stack = Stack::start_with(stack_config(s)).await.map_err(|e| format!("stack did not start: {e}"))?;
    let certificates: Vec<Certificate> = s
        .given
        .key_stores
        .iter()
        .map(|(name, cn)| {
            let (cert, key) = stack.pki().client_cert_pem(cn).expect("test PKI mints client certificates");
            Certificate {
                name: name.clone(),
                kind: "CERTIFICATE".into(),
                content: base64::engine::general_purpose::STANDARD.encode(format!("{cert}{key}")),
            }
        })
        .collect();
    for c in &certificates {
        stack.destinations().add_certificate(c.clone());
    }
    // A host whose connect hangs, for the timeout scenarios that name it.
    let unreachable = if serde_json::to_string(&s.when).unwrap_or_default().contains("{{unreachable}}") {
        Some(crate::unreachable::Unreachable::bind().await.map_err(|e| format!("unreachable host: {e}"))?)
    } else {
        None
    };
    let network = NetworkInfo {
        proxy: stack.gateway_url(),
        ca_file: stack.ca_file().display().to_string(),
        no_proxy: crate::unreachable::NO_PROXY.into(),
    };
    let vcap = (s.role == Role::Consumer).then(|| stack.vcap_services().to_string());
    let env = SessionEnv { network: network.clone(), vcap_services: vcap.clone() };
    let mut session = driver.open(&env).await.map_err(|e| e.to_string())?;
    let deadline = s.deadline_s.map(Duration::from_secs_f64).unwrap_or(DEFAULT_DEADLINE);
    let mut vars = variables(&stack, s);
    if let Some(u) = &unreachable {
        vars.insert("unreachable".into(), u.addr().to_string());
    }
    let mut next_id = 1u64;
    let mut id = || {
        next_id += 1;
        next_id
    };

    // hello: which roles?
    let h = hello(1, &network);
    let answer = session.send(vec![h.clone()], false, deadline).await.remove(0);
    let hello: Hello = match answer.and_then(|a| result_of(&h, &a)) {
        Ok(r) => serde_json::from_value(r).map_err(|e| format!("hello answer: {e}"))?,
        Err(e) => {
            let end = session.close().await;
            result.stderr = end.stderr;
            return Err(format!("hello failed: {e}"));
        }
    };
    result.hello = Some((hello.name.clone(), hello.version.clone()));
    if !hello.roles.iter().any(|r| r == s.role.as_str()) {
        result.status = Status::Skipped;
        result.note = Some(format!(
            "{} does not play the {} role (it plays: {})",
            hello.name,
            s.role.as_str(),
            hello.roles.join(", ")
        ));
        let end = session.close().await;
        result.stderr = end.stderr;
        return Ok(());
    }

    let mut outcomes: Vec<StepOutcome> = Vec::new();
    let mut protocol_error = None;
    for step in &s.when {
        let (base, repeat, concurrent) = match &step.value {
            Step::Wait(w) => {
                tokio::time::sleep(Duration::from_secs_f64(w.seconds)).await;
                continue;
            }
            Step::FindDestination(f) => {
                let mut dest = serde_json::to_value(&f.destination).expect("map serialises");
                render_value(&mut dest, &vars);
                let mut related = serde_json::to_value(&f.related_destinations).expect("map serialises");
                render_value(&mut related, &vars);
                let req = Request::FindDestination(FindDestination {
                    tenant: render(f.tenant.as_deref().unwrap_or("mytenant"), &vars),
                    user_token: f.user_token.as_ref().map(|t| mint(&stack, t)),
                    destination: object(dest),
                    certificates: certificates.clone(),
                    related_destinations: (!f.related_destinations.is_empty()).then(|| object(related)),
                    network: network.clone(),
                });
                (req, f.repeat.max(1), f.concurrent)
            }
            Step::MapPrincipal(m) => {
                let tenants: Vec<String> = m
                    .trust
                    .clone()
                    .unwrap_or_else(|| stack.uaa().config().tenants.iter().map(|t| t.subdomain.clone()).collect());
                let req = Request::MapPrincipal(MapPrincipal {
                    token: mint(&stack, &m.token),
                    trust: trust_of(&stack, &tenants),
                    subject_pattern: render(&m.subject_pattern, &vars),
                    now: unix_now() as i64 + m.now_offset_s,
                    propagation: m.propagation,
                    network: network.clone(),
                });
                (req, 1, false)
            }
            Step::Call(c) => {
                let mut request = serde_json::to_value(&c.request).expect("request serialises");
                render_value(&mut request, &vars);
                let req = Request::Call(Call {
                    env: CallEnv { vcap_services: vcap.clone().unwrap_or_default() },
                    tenant: render(c.tenant.as_deref().unwrap_or("mytenant"), &vars),
                    destination: render(&c.destination, &vars),
                    user_token: c.user_token.as_ref().map(|t| mint(&stack, t)),
                    request,
                    principal_propagation: c.principal_propagation.clone(),
                    network: network.clone(),
                });
                (req, c.repeat.max(1), c.concurrent)
            }
        };
        let requests: Vec<Value> = (0..repeat).map(|_| Envelope::new(id(), base.clone()).to_value()).collect();
        let t = Instant::now();
        let answers = session.send(requests.clone(), concurrent, deadline).await;
        let elapsed = t.elapsed();
        let mut results = Vec::new();
        for (req, a) in requests.iter().zip(answers) {
            match a.and_then(|a| result_of(req, &a)) {
                Ok(r) => results.push(r),
                Err(e) => {
                    protocol_error = Some(format!("step at line {}: {e}", step.line));
                    break;
                }
            }
        }
        outcomes.push(StepOutcome { name: step.name().map(str::to_string), results, elapsed });
        if protocol_error.is_some() {
            break;
        }
    }
    // Let in-flight journal entries land (a request the client gave up on).
    tokio::time::sleep(Duration::from_millis(20)).await;
    let end = session.close().await;
    result.stderr = end.stderr;
    if let Some(e) = protocol_error {
        return Err(e);
    }
    if let Some(p) = end.problem {
        return Err(p);
    }
    let journal = stack.journal().entries();
    result.transcript = crate::transcript::transcript(&journal);
    let ev = Evidence { steps: &outcomes, journal: &journal };
    for check in &s.then {
        let mut c = check.value.clone();
        let mut v = serde_json::to_value(&c).expect("check serialises");
        render_value(&mut v, &vars);
        if let Ok(rendered) = serde_json::from_value(v) {
            c = rendered;
        }
        if let Err(crate::checks::Mismatch { expected, observed }) = evaluate(&c, &ev) {
            let level = c.effective_level();
            let rule = crate::catalogue::rule(&c.rule);
            result.failures.push(Failure {
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
    Ok(())
}

/// A JSON object's map (an empty one for anything else).
fn object(v: Value) -> serde_json::Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => serde_json::Map::new(),
    }
}

/// The stack's tenants as `map_principal` trust entries, keys inline.
pub(crate) fn trust_of(stack: &idprop_mocks::Stack, tenants: &[String]) -> Vec<Trust> {
    let jwks = serde_json::to_value(stack.pki().jwks()).ok();
    tenants
        .iter()
        .map(|t| Trust {
            issuer: stack.uaa().factory().issuer(t),
            jwks_uri: Some(stack.uaa().factory().jku(t)),
            jwks: jwks.clone(),
        })
        .collect()
}
