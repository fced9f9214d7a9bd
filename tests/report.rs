//! The certification artefact, as a user gets it from the command line:
//! partitions merged into one report, a matrix of implementations, the
//! expectation file round trip, and the HTML page as Chromium renders it.

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn idprop(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_idprop")).args(args).current_dir(root()).output().unwrap()
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn chromium() -> Option<&'static str> {
    ["/usr/bin/chromium", "/usr/bin/chromium-browser"].into_iter().find(|p| Path::new(p).exists())
}

#[test]
fn partitions_merge_into_one_report_and_the_page_renders_it() {
    let dir = tempfile::tempdir().unwrap();
    let d = |n: &str| dir.path().join(n).display().to_string();
    let fast = ["run", "--exclude-tag", "slow", "--impl", "builtin:reference/alt"];
    for (k, out) in [("1/2", d("p1")), ("2/2", d("p2"))] {
        let mut args = fast.to_vec();
        args.extend(["--partition", k, "--report-dir", &out]);
        let o = idprop(&args);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    let (p1, p2) = (json(&dir.path().join("p1/report.json")), json(&dir.path().join("p2/report.json")));
    assert_eq!(p1["suite"]["content_hash"], p2["suite"]["content_hash"], "partitions share the suite");
    assert_eq!(p1["name"], "idprop-reference-alt", "the hello name is recorded");
    let o = idprop(&["report", "merge", &d("p1"), &d("p2"), "--out", &d("merged")]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let m = json(&dir.path().join("merged/report.json"));
    let n = |v: &serde_json::Value| v["scenarios"].as_array().unwrap().len();
    assert_eq!(n(&m), n(&p1) + n(&p2));
    assert_eq!(m["verdict"], "pass");
    // The alternative reading shows as warnings on choice rules, never as failures.
    let rules = m["rules"].as_array().unwrap();
    assert!(rules.iter().any(|r| r["outcome"] == "warn" && r["level"] == "choice"));
    assert!(rules.iter().all(|r| r["outcome"] != "fail"));
    // Each scenario carries its transcript and the diff to the reference.
    let cache =
        m["scenarios"].as_array().unwrap().iter().find(|s| s["id"] == "ch-4-concurrent-lookups-make-one-request");
    let cache = cache.expect("the single-flight scenario is in the report");
    assert!(cache["transcript"].as_str().unwrap().contains("POST"));
    assert!(!cache["diff_to_reference"].as_str().unwrap().is_empty(), "alt makes several token requests");
    // A merge of the same partition twice is refused.
    let o = idprop(&["report", "merge", &d("p1"), &d("p1"), "--out", &d("bad")]);
    assert_eq!(o.status.code(), Some(2));

    let Some(browser) = chromium() else {
        eprintln!("SKIPPED the Chromium part: no Chromium installed (apt-get install chromium)");
        assert!(std::env::var("CI").is_err(), "CI installs Chromium: a skip there is a failure");
        return;
    };
    let profile = tempfile::tempdir().unwrap();
    let page = format!("file://{}", dir.path().join("merged/index.html").display());
    let out = Command::new(browser)
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(["--dump-dom", &page])
        .output()
        .unwrap();
    let dom = String::from_utf8_lossy(&out.stdout);
    for expected in [
        "verdict: <b>pass</b>",
        "builtin:reference/alt",
        "idprop-reference-alt",
        "ch-4-concurrent-lookups-make-one-request",
        "Difference to builtin:reference",
        "idprop's reading",
    ] {
        assert!(dom.contains(expected), "{expected:?} not in the rendered report");
    }
}

#[test]
fn several_implementations_make_a_matrix() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().display().to_string();
    let o = idprop(&[
        "run",
        "--tag",
        "principal-propagation",
        "--impl",
        "builtin:reference",
        "--impl",
        "builtin:mutant/values-not-escaped",
        "--report-dir",
        &out,
    ]);
    assert_eq!(o.status.code(), Some(1), "a mutant fails: {}", String::from_utf8_lossy(&o.stderr));
    let md = String::from_utf8_lossy(&o.stdout);
    let sp4 = md.lines().find(|l| l.starts_with("| SP-4 ")).expect("SP-4 row");
    assert_eq!(sp4, "| SP-4 | must | pass | fail |");
    assert!(dir.path().join("matrix.html").exists() && dir.path().join("matrix.md").exists());
    assert!(dir.path().join("2-builtin-mutant-values-not-escaped/report.json").exists());
}

#[test]
fn an_expectation_file_round_trips_and_a_fixed_failure_fails_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("expect.yaml").display().to_string();
    let mutant = ["run", "--tag", "principal-propagation", "--impl", "builtin:mutant/values-not-escaped"];
    let mut write = mutant.to_vec();
    write.extend(["--update-expectations", &file]);
    assert_eq!(idprop(&write).status.code(), Some(1));
    // With the file, the mutant's failures are expected: the run passes.
    let mut with = mutant.to_vec();
    with.extend(["--expect", &file]);
    let o = idprop(&with);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stdout));
    // The reference passes those scenarios: "fixed? remove the entry".
    let o = idprop(&["run", "--tag", "principal-propagation", "--expect", &file]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stdout).contains("remove its entry"), "{}", String::from_utf8_lossy(&o.stdout));
}
