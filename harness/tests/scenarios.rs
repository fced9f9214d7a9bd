//! Every scenario of `scenarios/` is its own test against
//! `builtin:reference` (every check passes, whatever its level), and again
//! against `builtin:reference/alt`, which takes the other reading wherever
//! the pages leave a choice: it must pass every `must` and `should` check and
//! may fail only `choice` checks — the standing proof that the suite does
//! not encode idprop's readings as requirements. `cargo test` names the
//! scenario that broke.

use std::path::PathBuf;
use std::sync::Arc;

use idprop_harness::catalogue::check_quote;
use idprop_harness::driver::{builtin::Builtin, Driver};
use idprop_harness::loader;
use idprop_harness::report::Status;
use idprop_harness::runner::run_scenario;
use idprop_harness::scenario::{Check, Level};
use libtest_mimic::{Arguments, Failed, Trial};

fn main() {
    let mut args = Arguments::from_args();
    // Scenarios wait on the network, not the CPU: run many at once.
    if args.test_threads.is_none() {
        args.test_threads = Some(16);
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scenarios");
    let (scenarios, errors) = loader::load(&[root]).expect("scenarios/ is readable");
    let rt = Arc::new(tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime"));
    let driver: Arc<dyn Driver> = Arc::new(Builtin::new("reference").expect("reference exists"));
    let alt: Arc<dyn Driver> = Arc::new(Builtin::new("reference/alt").expect("alternative reference exists"));
    let mut trials: Vec<Trial> = errors
        .into_iter()
        .map(|e| Trial::test(format!("load::{}", e.path.display()), move || Err(Failed::from(e.message.clone()))))
        .collect();
    // Every quote a check cites is verbatim in its page or seed.
    let quoted = scenarios.clone();
    trials.push(Trial::test("sources::every-quoted-sentence-is-in-its-page", move || {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("catalogue");
        let mut bad = Vec::new();
        for l in &quoted {
            let mut checks: Vec<&Check> = l.scenario.then.iter().map(|c| &c.value).collect();
            while let Some(c) = checks.pop() {
                checks.extend(c.parts());
                if let Some(src) = &c.source {
                    if let Err(e) = check_quote(src, &dir) {
                        bad.push(format!("{}: {e}", l.path.display()));
                    }
                }
            }
        }
        if bad.is_empty() {
            Ok(())
        } else {
            Err(Failed::from(bad.join("\n")))
        }
    }));
    for l in scenarios {
        let area =
            l.path.parent().and_then(|p| p.file_name()).map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let name = format!("{area}::{}", l.scenario.id);
        let slow = l.scenario.tags.iter().any(|t| t == "slow");
        let kind = if slow { "slow" } else { "" };
        let (rt2, alt, l2) = (rt.clone(), alt.clone(), l.clone());
        trials.push(
            Trial::test(format!("alt::{name}"), move || {
                let r = rt2.block_on(run_scenario(alt.as_ref(), &l2));
                let beyond_choice: Vec<_> = r.failures.iter().filter(|f| f.level != Level::Choice).collect();
                if matches!(r.status, Status::Passed | Status::Warned) && beyond_choice.is_empty() {
                    return Ok(());
                }
                let mut msg = r.message.clone().unwrap_or_default();
                for f in beyond_choice {
                    msg.push_str(&format!(
                        "\n[{}] ({}) at {}\n  expected {}\n  observed {}",
                        f.rule,
                        f.level.as_str(),
                        f.location,
                        f.expected,
                        f.observed
                    ));
                }
                Err(Failed::from(msg))
            })
            .with_kind(kind),
        );
        let (rt, driver) = (rt.clone(), driver.clone());
        let trial = Trial::test(name, move || {
            let r = rt.block_on(run_scenario(driver.as_ref(), &l));
            match r.status {
                Status::Passed => Ok(()),
                _ => {
                    let mut msg = r.message.clone().unwrap_or_default();
                    for f in &r.failures {
                        msg.push_str(&format!(
                            "\n[{}] at {}\n  expected {}\n  observed {}",
                            f.rule, f.location, f.expected, f.observed
                        ));
                    }
                    Err(Failed::from(msg))
                }
            }
        })
        .with_kind(kind);
        trials.push(trial);
    }
    libtest_mimic::run(&args, trials).exit();
}
