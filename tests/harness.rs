//! The harness itself: drivers against misbehaving implementations, the
//! loader's errors, reports and exit codes.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use idprop::harness::driver::{self, Driver};
use idprop::harness::loader;
use idprop::harness::report::{ScenarioResult, Status};
use idprop::harness::runner::{run_all, run_scenario};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn mapper_scenario() -> loader::Loaded {
    let (mut s, e) = loader::load(&[root().join("tests/data/mapper-scenario.yaml")]).unwrap();
    assert!(e.is_empty(), "{e:?}");
    s.remove(0)
}

async fn run_with(mode: &str) -> ScenarioResult {
    let cmd = format!("exec:python3 {}/tests/adapters/misbehave.py {mode}", root().display());
    let d = driver::from_spec(&cmd).unwrap();
    run_scenario(d.as_ref(), &mapper_scenario()).await
}

#[tokio::test]
async fn garbage_output_fails_the_scenario_with_a_clear_message() {
    let r = run_with("garbage").await;
    assert_eq!(r.status, Status::Failed);
    assert!(r.message.as_deref().unwrap().contains("not JSON"), "{:?}", r.message);
}

#[tokio::test]
async fn a_wrong_id_fails_the_scenario() {
    let r = run_with("wrong-id").await;
    assert_eq!(r.status, Status::Failed);
    assert!(r.message.as_deref().unwrap().contains("answered id 102 to request id 2"), "{:?}", r.message);
}

#[tokio::test]
async fn a_hang_fails_at_the_deadline() {
    let t = Instant::now();
    let r = run_with("hang").await;
    assert_eq!(r.status, Status::Failed);
    assert!(r.message.as_deref().unwrap().contains("deadline of 2 s"), "{:?}", r.message);
    assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
}

#[tokio::test]
async fn a_crash_fails_with_its_exit_status_and_stderr() {
    let r = run_with("crash").await;
    assert_eq!(r.status, Status::Failed);
    let m = r.message.as_deref().unwrap();
    assert!(m.contains("exit status: 3") && m.contains("boom"), "{m}");
    assert!(r.stderr.contains("boom"));
}

#[tokio::test]
async fn ok_false_is_a_protocol_failure() {
    let r = run_with("not-ok").await;
    assert_eq!(r.status, Status::Failed);
    assert!(r.message.as_deref().unwrap().contains("could not process map_principal"), "{:?}", r.message);
}

#[tokio::test]
async fn a_slow_exit_is_killed_after_five_seconds_and_reported() {
    let t = Instant::now();
    let r = run_with("slow-exit").await;
    assert_eq!(r.status, Status::Failed);
    assert!(r.message.as_deref().unwrap().contains("did not exit within 5 s"), "{:?}", r.message);
    assert!(t.elapsed() < Duration::from_secs(9));
}

#[tokio::test]
async fn children_an_adapter_leaves_behind_are_killed_with_its_process_group() {
    let r = run_with("leak").await;
    assert_eq!(r.status, Status::Passed, "{:?}", r.message);
    let pid: u32 = r.stderr.split_whitespace().nth(1).unwrap().parse().unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let state = stat.rsplit(')').next().unwrap_or("").split_whitespace().next().unwrap_or("gone").to_string();
    assert!(state == "gone" || state == "Z", "child {pid} still {state}");
}

#[tokio::test]
async fn the_run_goes_on_after_a_broken_scenario() {
    let mut good = mapper_scenario();
    good.scenario.id = "good".into();
    let mut bad = mapper_scenario();
    bad.scenario.id = "bad".into();
    bad.scenario.when[0].value = serde_saphyr_step("{map_principal: {token: {literal: 'x.y.z'}}}");
    let d: Arc<dyn Driver> = Arc::from(driver::from_spec("builtin:reference").unwrap());
    let report = run_all(d, vec![bad, good], vec![], 2, &|_| {}).await;
    let by_id = |id: &str| report.results.iter().find(|r| r.id == id).unwrap().status;
    assert_eq!(by_id("bad"), Status::Failed);
    assert_eq!(by_id("good"), Status::Passed);
    assert_eq!(report.exit_code(), 1);
}

fn serde_saphyr_step(yaml: &str) -> idprop::harness::scenario::Step {
    idprop::mocks::yaml::from_str(yaml, "inline").unwrap()
}

#[test]
fn malformed_files_name_file_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p
    };
    let text = std::fs::read_to_string(root().join("tests/data/mapper-scenario.yaml")).unwrap();
    let cases = [
        (
            write("unknown-key.yaml", &text.replace("deadline_s: 2", "deadline_s: 2\nsurprise: 1")),
            "unknown-key.yaml:6:1: unknown field `surprise`",
            "expected one of id",
        ),
        (write("bad-yaml.yaml", "id: x\ntitle: [unclosed\n"), "bad-yaml.yaml:", ""),
        (write("bad-rule.yaml", &text.replace("rules: [PP-2]", "rules: [PP-99]")), "bad-rule.yaml:", "PP-99"),
        (
            write("two-kinds.yaml", &text.replace("  - rule: PP-2\n", "  - rule: PP-2\n    elapsed: {max_s: 1}\n")),
            "two-kinds.yaml:10:5:",
            "exactly one kind",
        ),
        (
            write("wrong-type.yaml", &text.replace("deadline_s: 2", "deadline_s: soon")),
            "wrong-type.yaml:5:13:",
            "floating point",
        ),
    ];
    for (path, location, words) in cases {
        let err = loader::parse(&std::fs::read_to_string(&path).unwrap(), &path).unwrap_err();
        assert!(err.message.contains(location), "{location} not in {}", err.message);
        assert!(err.message.contains(words), "{words} not in {}", err.message);
        assert!(err.message.starts_with(&path.display().to_string()), "{}", err.message);
    }
    // One bad file does not stop the others from loading.
    std::fs::copy(root().join("tests/data/mapper-scenario.yaml"), dir.path().join("good.yaml")).unwrap();
    let (ok, errors) = loader::load(&[dir.path().to_path_buf()]).unwrap();
    assert_eq!(ok.len(), 1);
    assert_eq!(errors.len(), 5);
}

fn idprop(args: &[&str], cwd: &Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_idprop")).args(args).current_dir(cwd).output().unwrap()
}

#[test]
fn run_writes_junit_naming_each_scenario_and_sets_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let junit = dir.path().join("junit.xml");
    let out = idprop(
        &["run", "scenarios/claim-priority", "scenarios/token-validation", "--junit", junit.to_str().unwrap()],
        &root(),
    );
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stdout));
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(xml.starts_with("<?xml"));
    assert!(xml.contains("<testsuite name=\"claim-priority\""), "{xml}");
    assert!(xml.contains("testcase name=\"pp-4-seed-sample-token\""));
    assert!(xml.contains("testcase name=\"tv-2-alg-none\""));
    // A mutant fails: exit 1, and the failure is in the JUnit file.
    let out = idprop(
        &[
            "run",
            "scenarios/claim-priority",
            "--impl",
            "builtin:mutant/sub-never-used",
            "--junit",
            junit.to_str().unwrap(),
        ],
        &root(),
    );
    assert_eq!(out.status.code(), Some(1));
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(xml.contains("<failure"), "{xml}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("[PP-2]"));
    // Usage errors and load errors: exit 2.
    assert_eq!(idprop(&["run", "--impl", "nonsense:x"], &root()).status.code(), Some(2));
    assert_eq!(idprop(&["run", "--rule", "ZZ-1"], &root()).status.code(), Some(2));
    std::fs::write(dir.path().join("broken.yaml"), "id: [").unwrap();
    assert_eq!(idprop(&["run", dir.path().to_str().unwrap()], &root()).status.code(), Some(2));
}

#[test]
fn json_report_partitions_and_filters() {
    let out = idprop(&["run", "scenarios/token-validation", "--format", "json", "--partition", "1/3"], &root());
    assert_eq!(out.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let n1 = v["results"].as_array().unwrap().len();
    let out = idprop(&["run", "scenarios/token-validation", "--format", "json", "--partition", "2/3"], &root());
    let v2: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let n2 = v2["results"].as_array().unwrap().len();
    let all = idprop(&["run", "scenarios/token-validation", "--format", "json"], &root());
    let total = serde_json::from_slice::<serde_json::Value>(&all.stdout).unwrap()["results"].as_array().unwrap().len();
    assert!(n1 > 0 && n2 > 0 && n1 + n2 < total && n1.abs_diff(n2) <= 1, "{n1} {n2} of {total}");
    let ids1: Vec<&str> = v["results"].as_array().unwrap().iter().map(|r| r["id"].as_str().unwrap()).collect();
    let ids2: Vec<&str> = v2["results"].as_array().unwrap().iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert!(ids1.iter().all(|i| !ids2.contains(i)), "partitions overlap");
    let out = idprop(&["run", "--rule", "PP-4", "--format", "json"], &root());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["results"].as_array().unwrap().len(), 1);
}

#[test]
fn explain_names_the_rule_its_source_and_its_scenarios() {
    let out = idprop(&["explain", "TU-4"], &root());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("TU-4") && text.contains("8634e21"), "{text}");
    assert!(text.contains("tu-4-common-without-placeholder-inserts-subdomain"), "{text}");
    let schema = idprop(&["schema"], &root());
    let v: serde_json::Value = serde_json::from_slice(&schema.stdout).unwrap();
    assert_eq!(v["title"], "Scenario");
    assert!(v["properties"]["then"].is_object());
}

#[tokio::test]
async fn the_python_example_adapter_passes_its_role() {
    let cmd = format!("exec:python3 {}/examples/adapters/python-principal-mapper/adapter.py", root().display());
    let d: Arc<dyn Driver> = Arc::from(driver::from_spec(&cmd).unwrap());
    let (scenarios, _) = loader::load(&[root().join("scenarios")]).unwrap();
    let report = run_all(d, scenarios, vec![], 16, &|_| {}).await;
    assert_eq!(report.count(Status::Failed), 0, "{}", report.human());
    // A v1 adapter without reason codes passes with warnings (the codes are
    // `should`), never fails for them.
    assert!(report.count(Status::Passed) + report.count(Status::Warned) >= 30, "{}", report.human());
    assert!(report.count(Status::Skipped) > 0, "other roles are skipped, never passed");
}

#[test]
fn ctrl_c_stops_the_run_kills_adapters_and_still_reports() {
    let root = root();
    let child = Command::new(env!("CARGO_BIN_EXE_idprop"))
        .args(["run", "tests/data/long-mapper-scenario.yaml", "tests/data/mapper-scenario.yaml", "--impl"])
        .arg(format!("exec:python3 {}/tests/adapters/misbehave.py leak-hang", root.display()))
        .current_dir(&root)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    // Let the short scenario finish (2 s deadline) while the long one hangs.
    std::thread::sleep(Duration::from_millis(3500));
    Command::new("kill").args(["-INT", &pid.to_string()]).status().unwrap();
    let t = Instant::now();
    let out = child.wait_with_output().unwrap();
    assert!(t.elapsed() < Duration::from_secs(10));
    assert_eq!(out.status.code(), Some(130));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stdout.contains("interrupted before it finished"), "{stdout}");
    assert!(stdout.contains("harness-test-mapper"), "the finished scenario is reported: {stdout}");
    // No adapter, and none of its children, outlive the run.
    std::thread::sleep(Duration::from_millis(300));
    let ps = Command::new("ps").args(["-eo", "pid,stat,args"]).output().unwrap();
    let ps = String::from_utf8_lossy(&ps.stdout);
    let alive: Vec<&str> = ps
        .lines()
        .filter(|l| l.contains("misbehave.py leak-hang") || l.contains("sleep 301"))
        .filter(|l| !l.split_whitespace().nth(1).unwrap_or("").starts_with('Z'))
        .collect();
    assert!(alive.is_empty(), "left behind: {alive:?}\n{stderr}");
}

/// The pid an adapter's stderr names, and what it logged.
fn pids_of(stderr: &str) -> Vec<String> {
    stderr.lines().filter_map(|l| l.split_whitespace().next()?.strip_prefix("pid=").map(str::to_string)).collect()
}

async fn twice(mode: &str) -> (ScenarioResult, ScenarioResult) {
    let cmd = format!("exec:python3 {}/tests/adapters/stateful.py {mode}", root().display());
    let d = driver::from_spec(&cmd).unwrap();
    let first = run_scenario(d.as_ref(), &mapper_scenario()).await;
    let second = run_scenario(d.as_ref(), &mapper_scenario()).await;
    (first, second)
}

/// Protocol v1.2: an exec adapter whose `hello` says `reusable` serves the
/// next scenario in the same process, after a `reset` that clears its
/// state, with request ids still unique within the process; a v1 adapter
/// gets a fresh process per scenario, as before.
#[tokio::test]
async fn a_reusable_exec_adapter_is_kept_and_reset_between_scenarios() {
    let (a, b) = twice("reusable").await;
    assert_eq!((a.status, b.status), (Status::Passed, Status::Passed), "{a:?}\n{b:?}");
    let (pa, pb) = (pids_of(&a.stderr), pids_of(&b.stderr));
    assert!(!pa.is_empty() && pa[0] == pb[0], "one process for both: {pa:?} {pb:?}");
    assert!(b.stderr.contains("reset") && b.stderr.contains("served=1"), "reset first, then fresh: {}", b.stderr);
    assert!(!a.stderr.contains("reset"), "a new process needs no reset: {}", a.stderr);
    assert!(!b.stderr.contains("DUPLICATE"), "ids unique within the process: {}", b.stderr);

    let (a, b) = twice("plain").await;
    assert_eq!((a.status, b.status), (Status::Passed, Status::Passed));
    assert_ne!(pids_of(&a.stderr)[0], pids_of(&b.stderr)[0], "a v1 adapter gets a fresh process");
    assert!(!b.stderr.contains("reset"));
}

/// What `reusable` promises is the adapter's: one that keeps state over
/// `reset` carries it into the next scenario (where a cache scenario would
/// see a token it should have fetched), so the harness's part is only to
/// send the `reset`, which it does.
#[tokio::test]
async fn a_leaky_reusable_adapter_carries_its_state_past_the_reset() {
    let (_, b) = twice("leaky").await;
    assert!(b.stderr.contains("reset"), "{}", b.stderr);
    assert!(b.stderr.contains("served=2"), "the leak is visible: {}", b.stderr);
}

/// The cache scenarios hold a reused process to its `reset`: against
/// `idprop adapter` (the reference over stdin/stdout, reusable) a cache
/// scenario passes twice in a row in one process; against the same adapter
/// with its cache kept over `reset`, the second run fails: its "first"
/// lookup was served from the previous scenario's cache.
#[tokio::test]
async fn the_cache_scenarios_catch_a_cache_that_survives_reset() {
    let (mut s, e) =
        loader::load(&[root().join("scenarios/token-cache/ch-1-second-lookup-uses-the-cache.yaml")]).unwrap();
    assert!(e.is_empty(), "{e:?}");
    let scenario = s.remove(0);
    for (flags, second_passes) in [("", true), (" --leak-cache-on-reset", false)] {
        let d = driver::from_spec(&format!("exec:{} adapter{flags}", env!("CARGO_BIN_EXE_idprop"))).unwrap();
        let first = run_scenario(d.as_ref(), &scenario).await;
        assert_eq!(first.status, Status::Passed, "{flags}: {first:?}");
        let second = run_scenario(d.as_ref(), &scenario).await;
        assert_eq!(second.status == Status::Passed, second_passes, "{flags}: {second:?}");
        if !second_passes {
            assert!(second.failures.iter().any(|f| f.rule.starts_with("CH-")), "{second:?}");
        }
    }
}

/// `idprop adapter` is the reference over stdin/stdout: through the exec
/// transport, one process serving scenario after scenario (each with its
/// own stack, network and `reset`), it passes every scenario but the slow
/// timeout ones, as `builtin:reference` does.
#[tokio::test(flavor = "multi_thread")]
async fn the_reference_over_stdin_passes_the_suite() {
    let (scenarios, errors) = loader::load(&[root().join("scenarios")]).unwrap();
    assert!(errors.is_empty(), "{errors:?}");
    let fast =
        idprop::harness::runner::Selection { exclude_tags: vec!["slow".into()], ..Default::default() }.apply(scenarios);
    let n = fast.len();
    let d: Arc<dyn Driver> =
        Arc::from(driver::from_spec(&format!("exec:{} adapter", env!("CARGO_BIN_EXE_idprop"))).unwrap());
    let report = run_all(d, fast, vec![], 8, &|_| {}).await;
    assert_eq!(report.count(Status::Passed), n, "{}", report.human());
}
