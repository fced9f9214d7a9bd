//! `idprop run`, `idprop list`, `idprop explain`, `idprop schema`.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use clap::{Args, ValueEnum};

use idprop_harness::expectations::Expectations;
use idprop_harness::report::{Profile, RunReport};
use idprop_harness::runner::{parse_partition, run_all, run_all_until, Selection};
use idprop_harness::scenario::Role;
use idprop_harness::{catalogue, driver, loader};

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Format {
    Human,
    Json,
}

#[derive(Args, Debug)]
pub struct RunArgs {
    /// Scenario files or folders (default: scenarios/).
    paths: Vec<PathBuf>,
    /// The implementation: builtin:reference, builtin:reference/alt,
    /// builtin:mutant/NAME, exec:COMMAND, http:URL. Repeat it to compare
    /// several: a rules × implementations matrix (with --report-dir, one
    /// report per implementation beside matrix.md and matrix.html).
    #[arg(long = "impl", default_values_t = ["builtin:reference".to_string()])]
    implementations: Vec<String>,
    /// Scenarios run at once.
    #[arg(long, default_value_t = default_jobs())]
    jobs: usize,
    /// Only scenarios whose id or title contains this.
    #[arg(long)]
    filter: Option<String>,
    /// Only scenarios with this tag (or in this area folder); repeatable.
    #[arg(long = "tag")]
    tags: Vec<String>,
    /// Leave out scenarios with this tag (e.g. `slow`); repeatable.
    #[arg(long = "exclude-tag")]
    exclude_tags: Vec<String>,
    /// Only scenarios of this role; repeatable.
    #[arg(long = "role")]
    roles: Vec<String>,
    /// Only scenarios checking this rule; repeatable.
    #[arg(long = "rule")]
    rules: Vec<String>,
    /// Run the k-th of n partitions (`2/4`), for splitting across machines.
    #[arg(long)]
    partition: Option<String>,
    #[arg(long, value_enum, default_value = "human")]
    format: Format,
    /// Run the property checks instead of the scenarios.
    #[arg(long)]
    properties: bool,
    /// Generated cases per property.
    #[arg(long, default_value_t = 64)]
    cases: u32,
    /// Seed of the generator (printed with every failure).
    #[arg(long, default_value_t = 2026)]
    seed: u64,
    /// Also run builtin:reference and show, per scenario, how the
    /// implementation's transcript (what the mocks saw) differs from it.
    #[arg(long)]
    snapshot_diff: bool,
    /// Also write JUnit XML here.
    #[arg(long)]
    junit: Option<PathBuf>,
    /// `default`: only `must` checks (what SAP's text requires) fail the
    /// run; `strict`: `should` and `choice` checks too.
    #[arg(long, default_value = "default")]
    profile: String,
    /// Expected failures of this implementation (YAML, see
    /// harness/PROTOCOL.md "Expectation files").
    #[arg(long)]
    expect: Option<PathBuf>,
    /// Write an expectation file listing every scenario that failed.
    #[arg(long)]
    update_expectations: Option<PathBuf>,
    /// Write the certification artefact here: report.json and a
    /// self-contained index.html (rules, transcripts, diffs to the reference).
    #[arg(long)]
    report_dir: Option<PathBuf>,
}

fn default_jobs() -> usize {
    std::thread::available_parallelism().map(|n| n.get() * 4).unwrap_or(8)
}

/// Scenario folder used when no path is given.
pub fn default_paths(paths: Vec<PathBuf>) -> Vec<PathBuf> {
    if paths.is_empty() {
        vec![PathBuf::from("scenarios")]
    } else {
        paths
    }
}

/// Exit 2 for usage errors.
fn usage(msg: String) -> Result<std::process::ExitCode> {
    eprintln!("idprop: {msg}");
    Ok(std::process::ExitCode::from(2))
}

pub fn run(args: RunArgs) -> Result<std::process::ExitCode> {
    let mut selection = Selection {
        filter: args.filter.clone(),
        tags: args.tags.clone(),
        exclude_tags: args.exclude_tags.clone(),
        rules: args.rules.clone(),
        ..Default::default()
    };
    for r in &args.roles {
        match Role::parse(r) {
            Some(r) => selection.roles.push(r),
            None => return usage(format!("--role {r:?}: one of token-retrieval, principal-mapping, consumer")),
        }
    }
    for r in &args.rules {
        if catalogue::rule(r).is_none() {
            return usage(format!("--rule {r:?}: no such rule (see `idprop list --rules`)"));
        }
    }
    if let Some(p) = &args.partition {
        match parse_partition(p) {
            Ok(kn) => selection.partition = Some(kn),
            Err(e) => return usage(e),
        }
    }
    let Some(profile) = Profile::parse(&args.profile) else {
        return usage(format!("--profile {:?}: one of default, strict", args.profile));
    };
    if args.implementations.len() > 1 {
        return matrix(&args, &selection, profile);
    }
    let driver: Arc<dyn driver::Driver> = match driver::from_spec(&args.implementations[0]) {
        Ok(d) => Arc::from(d),
        Err(e) => return usage(e),
    };
    if args.properties {
        let t = std::time::Instant::now();
        let outcomes = idprop_harness::properties::run_all(driver.clone(), args.cases, args.seed);
        print!("{}", idprop_harness::properties::report(&outcomes, &driver.describe()));
        println!("{:.1} s", t.elapsed().as_secs_f64());
        let failed = outcomes.iter().any(|o| o.failure.is_some());
        return Ok(std::process::ExitCode::from(if failed { 1 } else { 0 }));
    }
    let (scenarios, errors) = match loader::load(&default_paths(args.paths.clone())) {
        Ok(x) => x,
        Err(e) => return usage(e),
    };
    let expectations = match &args.expect {
        None => None,
        Some(p) => {
            let ids: Vec<String> = scenarios.iter().map(|l| l.scenario.id.clone()).collect();
            match Expectations::load(p, &ids) {
                Ok(e) => Some(e),
                Err(e) => {
                    eprintln!("idprop: {e}");
                    return Ok(std::process::ExitCode::from(2));
                }
            }
        }
    };
    // The suite is what was loaded, before selection: partitions of one run
    // share it, so their reports merge.
    let suite = idprop_harness::certification::Suite::of(&scenarios);
    let scenarios = selection.apply(scenarios);
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().context("starting the runtime")?;
    let human = matches!(args.format, Format::Human);
    let total = scenarios.len() + errors.len();
    if human {
        eprintln!("idprop: {} scenarios against {}", total, driver.describe());
    }
    let progress = |r: &idprop_harness::report::ScenarioResult| {
        if human {
            eprintln!("{}", RunReport::progress_line(r));
        }
    };
    // The reference's transcripts, for the diffs: not run again when the
    // implementation is the reference itself (every diff would be empty).
    let against_reference = args.implementations[0] == "builtin:reference";
    let reference_run =
        (args.snapshot_diff || (args.report_dir.is_some() && !against_reference)).then(|| scenarios.clone());
    // Ctrl-C: stop, clean up, and still report what finished.
    let stop = async {
        let _ = tokio::signal::ctrl_c().await;
        eprintln!("idprop: interrupted — stopping the running scenarios");
    };
    let mut report =
        rt.block_on(run_all_until(driver, scenarios, errors, args.jobs, &progress, stop)).with_profile(profile);
    if let (Some(e), Some(p)) = (&expectations, &args.expect) {
        e.apply(&mut report, &p.display().to_string());
    }
    if let Some(p) = &args.update_expectations {
        std::fs::write(p, Expectations::from_report(&report).to_yaml())
            .with_context(|| format!("writing {}", p.display()))?;
        eprintln!("idprop: wrote {} (edit the reasons, add links)", p.display());
    }
    let interrupted = report.results.iter().any(|r| r.message.as_deref() == Some("interrupted before it finished"));
    let base = reference_run.map(|scenarios| {
        let reference: Arc<dyn driver::Driver> =
            Arc::from(driver::from_spec("builtin:reference").expect("reference exists"));
        rt.block_on(run_all(reference, scenarios, vec![], args.jobs, &|_| {}))
    });
    if let Some(dir) = &args.report_dir {
        let c = idprop_harness::certification::Certification::new(suite, &report, base.as_ref());
        c.write(dir).with_context(|| format!("writing the report to {}", dir.display()))?;
        eprintln!("idprop: wrote {}/index.html and report.json (verdict: {})", dir.display(), c.verdict);
    }
    if let Some(base) = base.filter(|_| args.snapshot_diff) {
        let mut differing = 0;
        for r in &report.results {
            let Some(b) = base.results.iter().find(|b| b.id == r.id) else { continue };
            if r.status == idprop_harness::report::Status::Skipped || b.transcript == r.transcript {
                continue;
            }
            differing += 1;
            println!("\n=== {} ({}) — what the mocks saw: - reference, + {}", r.id, r.file, report.implementation);
            print!("{}", idprop_harness::transcript::diff(&b.transcript, &r.transcript));
        }
        println!("\n{differing} scenario transcript(s) differ from builtin:reference");
    }
    match args.format {
        Format::Human => print!("{}", report.human()),
        Format::Json => println!("{}", report.json()),
    }
    if let Some(path) = &args.junit {
        std::fs::write(path, report.junit()).with_context(|| format!("writing {}", path.display()))?;
    }
    std::io::stdout().flush().ok();
    if interrupted {
        return Ok(std::process::ExitCode::from(130));
    }
    Ok(std::process::ExitCode::from(report.exit_code() as u8))
}

/// Several implementations over the same scenarios: a rules ×
/// implementations table.
fn matrix(args: &RunArgs, selection: &Selection, profile: Profile) -> Result<std::process::ExitCode> {
    use idprop_harness::certification::{matrix_html, matrix_markdown, Certification, Suite};
    let (scenarios, errors) = match loader::load(&default_paths(args.paths.clone())) {
        Ok(x) => x,
        Err(e) => return usage(e),
    };
    for e in &errors {
        eprintln!("load error: {}", e.message);
    }
    let suite = Suite::of(&scenarios);
    let scenarios = selection.apply(scenarios);
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().context("starting the runtime")?;
    let mut reports = Vec::new();
    let mut worst = 0;
    for spec in &args.implementations {
        let d: Arc<dyn driver::Driver> = match driver::from_spec(spec) {
            Ok(d) => Arc::from(d),
            Err(e) => return usage(e),
        };
        eprintln!("idprop: {} scenarios against {spec}", scenarios.len());
        let report = rt.block_on(run_all(d, scenarios.clone(), vec![], args.jobs, &|_| {})).with_profile(profile);
        worst = worst.max(report.exit_code());
        reports.push(Certification::new(suite.clone(), &report, None));
    }
    let md = matrix_markdown(&reports);
    print!("{md}");
    if let Some(dir) = &args.report_dir {
        for (i, c) in reports.iter().enumerate() {
            let sub = dir.join(format!("{}-{}", i + 1, slug(&c.implementation)));
            c.write(&sub).with_context(|| format!("writing {}", sub.display()))?;
        }
        std::fs::create_dir_all(dir)?;
        std::fs::write(dir.join("matrix.md"), &md)?;
        std::fs::write(dir.join("matrix.html"), matrix_html(&reports))?;
        eprintln!("idprop: wrote {}/matrix.md, matrix.html and one report per implementation", dir.display());
    }
    Ok(std::process::ExitCode::from(if !errors.is_empty() { 2 } else { worst as u8 }))
}

fn slug(s: &str) -> String {
    let mut out: String = s.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '-' }).collect();
    out.truncate(60);
    out.trim_matches('-').to_string()
}

#[derive(Args, Debug)]
pub struct ReportArgs {
    #[command(subcommand)]
    action: ReportAction,
}

#[derive(clap::Subcommand, Debug)]
enum ReportAction {
    /// Merge the reports of `--partition k/n` runs into one.
    Merge {
        /// Report directories (or report.json files), one per partition.
        #[arg(required = true)]
        dirs: Vec<PathBuf>,
        /// Where the merged report.json and index.html go.
        #[arg(long)]
        out: PathBuf,
    },
}

/// `idprop report merge DIR… --out DIR`.
pub fn report(args: ReportArgs) -> Result<std::process::ExitCode> {
    use idprop_harness::certification::Certification;
    let ReportAction::Merge { dirs, out } = args.action;
    let mut parts = Vec::new();
    for d in &dirs {
        match Certification::read(d) {
            Ok(c) => parts.push(c),
            Err(e) => return usage(e),
        }
    }
    let merged = match Certification::merge(parts) {
        Ok(m) => m,
        Err(e) => return usage(e),
    };
    merged.write(&out).with_context(|| format!("writing {}", out.display()))?;
    println!(
        "merged {} reports: {} scenarios, verdict {} → {}/index.html",
        dirs.len(),
        merged.scenarios.len(),
        merged.verdict,
        out.display()
    );
    Ok(std::process::ExitCode::from(if merged.verdict == "pass" { 0 } else { 1 }))
}

#[derive(Args, Debug)]
pub struct ListArgs {
    paths: Vec<PathBuf>,
    /// List the rule catalogue instead, with how many scenarios check each rule.
    #[arg(long)]
    rules: bool,
}

pub fn list(args: ListArgs) -> Result<std::process::ExitCode> {
    let (scenarios, errors) = match loader::load(&default_paths(args.paths)) {
        Ok(x) => x,
        Err(e) => return usage(e),
    };
    if args.rules {
        for r in catalogue::rules() {
            let n = scenarios.iter().filter(|l| l.scenario.rules.contains(&r.id)).count();
            println!("{:<6} {:<6} {:>3} scenario(s)  {}", r.id, r.level.as_str(), n, r.text);
            match (&r.reading, r.sources.first()) {
                (Some(reading), _) => println!("{:14}reading: {reading}", ""),
                (None, Some(s)) => println!("{:14}source: {}", "", s.cite()),
                _ => {}
            }
        }
    } else {
        let mut sorted: Vec<_> = scenarios.iter().collect();
        sorted.sort_by(|a, b| a.scenario.id.cmp(&b.scenario.id));
        for l in sorted {
            let s = &l.scenario;
            println!("{:<56} {:<18} [{}] {}", s.id, s.role.as_str(), s.rules.join(","), s.title);
        }
    }
    for e in &errors {
        eprintln!("load error: {}", e.message);
    }
    Ok(std::process::ExitCode::from(if errors.is_empty() { 0 } else { 2 }))
}

#[derive(Args, Debug)]
pub struct ExplainArgs {
    /// A rule id, e.g. TU-4.
    rule: String,
    #[arg(long = "scenarios", default_value = "scenarios")]
    paths: Vec<PathBuf>,
}

pub fn explain(args: ExplainArgs) -> Result<std::process::ExitCode> {
    let Some(rule) = catalogue::rule(&args.rule) else {
        return usage(format!("no rule {:?} (see `idprop list --rules`)", args.rule));
    };
    println!("{} — {}", rule.id, rule.section);
    println!("  {}", rule.text);
    println!("  level: {}", rule.level.as_str());
    for s in &rule.sources {
        println!("  source: {}", s.cite());
    }
    if rule.sources.is_empty() {
        println!("  source: {} (harness/catalogue/sap-docs/ and the seeds)", rule.source);
    }
    if let Some(r) = &rule.reading {
        println!("  idprop's reading: {r}");
    }
    for a in &rule.alternatives {
        println!("  also accepted: {a}");
    }
    if let Some(n) = &rule.note {
        println!("  note: {n}");
    }
    let (scenarios, _) = loader::load(&args.paths).unwrap_or_default();
    let mut checking: Vec<_> = scenarios.iter().filter(|l| l.scenario.rules.contains(&rule.id)).collect();
    checking.sort_by(|a, b| a.path.cmp(&b.path));
    println!("  checked by {} scenario(s):", checking.len());
    for l in checking {
        let levels: Vec<String> = l
            .scenario
            .then
            .iter()
            .filter(|c| c.rule == rule.id)
            .map(|c| format!("{}:{} {}", l.path.display(), c.line, c.effective_level().as_str()))
            .collect();
        println!("    {} — {}", l.scenario.id, l.scenario.title);
        for c in levels {
            println!("      check {c}");
        }
    }
    Ok(std::process::ExitCode::SUCCESS)
}

pub fn schema(protocol: bool) -> Result<std::process::ExitCode> {
    let schema =
        if protocol { idprop_harness::protocol::json_schema() } else { idprop_harness::scenario::json_schema() };
    println!("{}", serde_json::to_string_pretty(&schema)?);
    Ok(std::process::ExitCode::SUCCESS)
}

#[derive(Args, Debug)]
pub struct MutantsArgs {
    /// Scenario files or folders (default: scenarios/).
    paths: Vec<PathBuf>,
    /// Run every scenario against every mutant (slower; a full kill table).
    #[arg(long)]
    all: bool,
    #[arg(long, default_value_t = 16)]
    jobs: usize,
}

/// `idprop mutants`: the kill table; exit 1 if a mutant survives.
pub fn mutants(args: MutantsArgs) -> Result<std::process::ExitCode> {
    let (scenarios, errors) = match loader::load(&default_paths(args.paths)) {
        Ok(x) => x,
        Err(e) => return usage(e),
    };
    for e in &errors {
        eprintln!("load error: {}", e.message);
    }
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().context("starting the runtime")?;
    let kills = rt.block_on(idprop_harness::mutants::hunt_all(&scenarios, args.jobs, args.all, true));
    print!("{}", idprop_harness::mutants::table(&kills));
    let survived = kills.iter().any(|k| k.killed_by.is_empty());
    Ok(std::process::ExitCode::from(if !errors.is_empty() {
        2
    } else if survived {
        1
    } else {
        0
    }))
}
