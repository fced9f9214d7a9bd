//! One scenario's conversation with the implementation: a fresh stack,
//! `hello`, each step's messages, then the checks.

use super::*;
use crate::session::OpenError;

pub(super) async fn drive(driver: &dyn Driver, l: &Loaded, result: &mut ScenarioResult) -> Result<(), String> {
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
    let network = crate::session::network_of(&stack);
    let vcap = (s.role == Role::Consumer).then(|| stack.vcap_services().to_string());
    let env = SessionEnv { network: network.clone(), vcap_services: vcap.clone() };
    let deadline = s.deadline_s.map(Duration::from_secs_f64).unwrap_or(DEFAULT_DEADLINE);
    // hello: which roles?
    let mut session = match crate::session::open(driver, &env, s.role.as_str(), deadline).await {
        Ok(o) => {
            result.hello = Some((o.hello.name.clone(), o.hello.version.clone()));
            o.session
        }
        Err(OpenError::RoleNotPlayed { role, hello, stderr }) => {
            result.hello = Some((hello.name.clone(), hello.version.clone()));
            result.status = Status::Skipped;
            result.note =
                Some(format!("{} does not play the {role} role (it plays: {})", hello.name, hello.roles.join(", ")));
            result.stderr = stderr;
            return Ok(());
        }
        Err(OpenError::Hello { error, stderr }) => {
            result.stderr = stderr;
            return Err(format!("hello failed: {error}"));
        }
        Err(e @ OpenError::Driver(_)) => return Err(e.to_string()),
    };
    let mut vars = variables(&stack, s);
    if let Some(u) = &unreachable {
        vars.insert("unreachable".into(), u.addr().to_string());
    }
    let mut next_id = 1u64;
    let mut id = || {
        next_id += 1;
        next_id
    };

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
                    headers: (!f.headers.is_empty())
                        .then(|| f.headers.iter().map(|(k, v)| (k.clone(), render(v, &vars))).collect()),
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
                    trust: {
                        let mut t = trust_of(&stack, &tenants);
                        t.extend(crate::runner::template::trust_of_providers(&stack, &m.trust_issuers));
                        t
                    },
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
    result.failures.extend(judge(l, &outcomes, &journal, &vars));
    Ok(())
}
