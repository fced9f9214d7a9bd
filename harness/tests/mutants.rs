//! The suite has teeth: every builtin mutant (the reference with one rule
//! broken) fails at least two scenarios on `must` checks, across every rule
//! family. (`tests/properties.rs` does the same for the properties.)

use std::path::PathBuf;

use idprop_harness::loader;
use idprop_harness::mutants::{hunt_all, table};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_mutant_is_killed_by_two_scenarios() {
    let (scenarios, errors) = loader::load(&[PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scenarios")]).unwrap();
    assert!(errors.is_empty(), "{errors:?}");
    let kills = hunt_all(&scenarios, 16, false, false).await;
    println!("{}", table(&kills));
    assert!(kills.len() >= 30, "at least 30 mutants");
    let thin: Vec<&str> = kills.iter().filter(|k| k.killed_by.len() < 2).map(|k| k.mutant.as_str()).collect();
    assert!(thin.is_empty(), "mutants killed by fewer than two scenarios: {thin:?}\n{}", table(&kills));
    // Every rule family has a mutant.
    let families: std::collections::BTreeSet<&str> =
        kills.iter().map(|k| k.rule.split('-').next().unwrap_or("")).collect();
    for f in ["TU", "CA", "TO", "PX", "CH", "FD", "AT", "TV", "PP", "SP"] {
        assert!(families.contains(f), "no mutant breaks a {f} rule");
    }
}
