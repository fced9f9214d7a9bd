//! Snapshots of what the mocks observed for every scenario under
//! `builtin:reference` (normalized: tokens, ports, times redacted). A change
//! in what goes over the wire shows up here and is reviewed like code
//! (`cargo insta review`, or INSTA_UPDATE=always).

use std::path::PathBuf;
use std::sync::Arc;

use idprop_harness::driver::{builtin::Builtin, Driver};
use idprop_harness::loader;
use idprop_harness::runner::run_all;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_scenario_transcript_matches_its_snapshot() {
    let (scenarios, errors) = loader::load(&[PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scenarios")]).unwrap();
    assert!(errors.is_empty());
    let driver: Arc<dyn Driver> = Arc::new(Builtin::new("reference").unwrap());
    let report = run_all(driver, scenarios, vec![], 32, &|_| {}).await;
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path("snapshots");
    settings.set_prepend_module_to_snapshot(false);
    settings.bind(|| {
        for r in &report.results {
            assert_eq!(r.status, idprop_harness::report::Status::Passed, "{}: {:?}", r.id, r.message);
            insta::assert_snapshot!(r.id.clone(), r.transcript);
        }
    });
}
