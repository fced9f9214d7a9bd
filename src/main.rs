//! The `idprop` command line: the binary edge, where errors get context.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};

mod cli;

/// jemalloc instead of the system allocator, for the binary only (library
/// users of `idprop-mocks` keep theirs). Per request, hyper takes a fresh
/// 8 KiB read buffer (the old one is still shared with the request being
/// answered) and the answer's small allocations are often freed on the
/// other worker thread. glibc serves the first outside its caches, which
/// consolidates its fast bins on every request, and the second under an
/// arena lock; with the RSA signature skipped, that was a quarter of the
/// server's time per token. jemalloc's per-thread size classes make both
/// cheap (bench/README.md, the run of 2026-11-30, late night).
#[cfg(all(unix, not(target_env = "musl")))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// Mock SAP BTP identity stack and conformance harness.
#[derive(Parser, Debug)]
#[command(name = "idprop", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Start the mock stack as a local environment.
    Up(cli::up::UpArgs),
    /// Print a user token signed with the stack's default signing key.
    Token(cli::token::TokenArgs),
    /// Run scenarios against an implementation (exit 0 all passed, 1 failures, 2 usage/load errors).
    Run(cli::run::RunArgs),
    /// List scenarios (or, with --rules, the rule catalogue).
    List(cli::run::ListArgs),
    /// Print a rule, its source, and the scenarios that check it.
    Explain(cli::run::ExplainArgs),
    /// Work with certification reports (`report merge`).
    Report(cli::run::ReportArgs),
    /// Run the suite against every builtin mutant and print who killed each.
    Mutants(cli::run::MutantsArgs),
    /// Print the JSON Schema of scenario files (`--protocol`: of the
    /// adapter protocol's requests, answers and results).
    Schema {
        #[arg(long)]
        protocol: bool,
    },
    /// Print the traffic of a running `idprop up`, one line per hop.
    Journal(cli::journal::JournalArgs),
    /// Serve the builtin reference over stdin/stdout: an exec adapter of
    /// every role (`idprop run --impl 'exec:idprop adapter'`).
    Adapter(cli::adapter::AdapterArgs),
    /// Manage the committed test fixtures.
    Fixtures {
        #[command(subcommand)]
        action: FixturesAction,
    },
}

#[derive(Subcommand, Debug)]
enum FixturesAction {
    /// Regenerate every key and CA under the fixtures folder.
    Regenerate {
        #[arg(long, default_value = "fixtures")]
        dir: PathBuf,
    },
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("idprop: error: {e:#}");
            std::process::ExitCode::from(2)
        }
    }
}

fn run(cli: Cli) -> Result<std::process::ExitCode> {
    match cli.command {
        Command::Up(args) => cli::up::run(args),
        Command::Token(args) => cli::token::run(args),
        Command::Run(args) => cli::run::run(args),
        Command::Journal(args) => cli::journal::run(args),
        Command::Adapter(args) => cli::adapter::run(args),
        Command::List(args) => cli::run::list(args),
        Command::Explain(args) => cli::run::explain(args),
        Command::Schema { protocol } => cli::run::schema(protocol),
        Command::Mutants(args) => cli::run::mutants(args),
        Command::Report(args) => cli::run::report(args),
        Command::Fixtures { action: FixturesAction::Regenerate { dir } } => {
            let written = idprop_mocks::pki::generate_fixtures(&dir)
                .with_context(|| format!("regenerating fixtures in {}", dir.display()))?;
            for p in written {
                println!("wrote {}", p.display());
            }
            Ok(std::process::ExitCode::SUCCESS)
        }
    }
}
