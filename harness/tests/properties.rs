//! Property checks against `builtin:reference` (fixed seed), and the
//! mutants they must kill: every mutant whose rule is property-tested fails
//! a property, with a shrunk counterexample that is itself a scenario.

use std::sync::Arc;

use idprop_harness::driver::{builtin::Builtin, Driver};
use idprop_harness::properties::{report, run_all, run_roles};

const SEED: u64 = 2026;

fn builtin(name: &str) -> Arc<dyn Driver> {
    Arc::new(Builtin::new(name).unwrap())
}

/// Both references satisfy every property: the oracle judges what the
/// pages require, and accepts the other reading where they leave a choice.
#[test]
fn both_references_satisfy_every_property() {
    for name in ["reference", "reference/alt"] {
        let outcomes = run_all(builtin(name), 96, SEED);
        assert_eq!(outcomes.len(), 2);
        for o in &outcomes {
            assert!(o.failure.is_none() && o.skipped.is_none(), "{}", report(&outcomes, &format!("builtin:{name}")));
        }
    }
}

/// The mutants whose broken rule a property checks.
const PROPERTY_TESTED: [(&str, &str); 27] = [
    ("dedicated-gets-subdomain", "token-retrieval"),
    ("path-placeholder-not-replaced", "token-retrieval"),
    ("basic-flag-ignored", "token-retrieval"),
    ("queries-dropped", "token-retrieval"),
    ("body-parameters-dropped", "token-retrieval"),
    ("url-headers-to-token-service", "token-retrieval"),
    ("user-token-not-exchanged", "token-retrieval"),
    ("no-cache", "token-retrieval"),
    ("wrong-header-key", "token-retrieval"),
    ("signature-not-checked", "principal-mapping"),
    ("not-before-ignored", "principal-mapping"),
    ("technical-azp-first", "principal-mapping"),
    ("values-not-escaped", "principal-mapping"),
    ("no-principal-accepted", "principal-mapping"),
    ("email-before-user-name", "principal-mapping"),
    ("common-without-subdomain", "token-retrieval"),
    ("placeholder-not-replaced", "token-retrieval"),
    ("credentials-always-basic", "token-retrieval"),
    ("token-service-user-ignored", "token-retrieval"),
    ("prefixes-not-stripped", "token-retrieval"),
    ("scope-dropped", "token-retrieval"),
    ("sub-never-used", "principal-mapping"),
    ("pattern-not-substituted", "principal-mapping"),
    ("expired-accepted", "principal-mapping"),
    ("alg-none-accepted", "principal-mapping"),
    ("hs256-accepted", "principal-mapping"),
    ("any-issuer-accepted", "principal-mapping"),
];

#[test]
fn every_property_tested_mutant_is_killed_by_a_property() {
    let handles: Vec<_> = PROPERTY_TESTED
        .iter()
        .map(|(m, role)| {
            let (m, role) = (m.to_string(), *role);
            std::thread::spawn(move || {
                let outcomes = run_roles(builtin(&format!("mutant/{m}")), 256, SEED, &[role]);
                (m, outcomes)
            })
        })
        .collect();
    let mut survivors = Vec::new();
    for h in handles {
        let (m, outcomes) = h.join().unwrap();
        match outcomes.iter().find_map(|o| o.failure.clone()) {
            None => survivors.push(m),
            Some(f) => {
                // The counterexample is a scenario that loads.
                let path = std::path::PathBuf::from(format!("counterexample-{m}.yaml"));
                idprop_harness::loader::parse(&f.scenario_yaml, &path).unwrap_or_else(|e| {
                    panic!("{m}: counterexample does not load: {}\n{}", e.message, f.scenario_yaml)
                });
                assert!(!f.rule.is_empty(), "{m}: no rule named");
            }
        }
    }
    assert!(survivors.is_empty(), "mutants no property kills: {survivors:?}");
}
