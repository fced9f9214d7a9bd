//! The suite has teeth: every builtin mutant (the reference with one rule
//! broken) fails at least one scenario. (`tests/properties.rs` does the same
//! for the properties.)

use std::path::PathBuf;

use idprop::harness::loader;
use idprop::harness::mutants::{hunt_all, table};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_mutant_is_killed_by_a_scenario() {
    let (scenarios, errors) = loader::load(&[PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scenarios")]).unwrap();
    assert!(errors.is_empty(), "{errors:?}");
    let kills = hunt_all(&scenarios, 16, false, false).await;
    println!("{}", table(&kills));
    assert!(kills.len() >= 15, "at least 15 mutants");
    let survivors: Vec<&str> = kills.iter().filter(|k| k.killed_by.is_empty()).map(|k| k.mutant.as_str()).collect();
    assert!(survivors.is_empty(), "mutants survived the suite: {survivors:?}\n{}", table(&kills));
}
