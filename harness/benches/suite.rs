//! `cargo bench -p idprop-harness`: wall time of the scenario suite against
//! builtin:reference (everything but the `slow` timeout scenarios; the full
//! suite is measured by `idprop run`, see the README).

use std::path::PathBuf;
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion};
use idprop_harness::driver::{builtin::Builtin, Driver};
use idprop_harness::loader;
use idprop_harness::runner::{run_all, Selection};

fn suite(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scenarios");
    let (scenarios, _) = loader::load(&[root]).unwrap();
    let fast = Selection { exclude_tags: vec!["slow".into()], ..Default::default() }.apply(scenarios);
    let driver: Arc<dyn Driver> = Arc::new(Builtin::new("reference").unwrap());
    let mut g = c.benchmark_group("suite");
    g.sample_size(10);
    g.bench_function(format!("{} scenarios (no slow ones), builtin:reference", fast.len()), |b| {
        b.to_async(&rt).iter(|| run_all(driver.clone(), fast.clone(), vec![], 32, &|_| {}))
    });
    g.finish();
}

criterion_group!(benches, suite);
criterion_main!(benches);
