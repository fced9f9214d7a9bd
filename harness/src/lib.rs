//! idprop-harness: checks any implementation of token retrieval, principal
//! mapping or a consuming application against the rule catalogue, through
//! the adapter protocol, with the mock stack as the world around it.
//!
//! - [`scenario`]: the YAML format; [`loader`]: reading files.
//! - [`driver`]: `builtin:`, `exec:`, `http:` transports.
//! - [`runner`]: a fresh stack per scenario, steps, checks.
//! - [`reference`]: `builtin:reference` and the mutants.
//! - [`report`]: human, JSON, JUnit.

pub mod catalogue;
pub mod certification;
pub mod checks;
pub mod clients;
pub mod consumer;
pub mod driver;
pub mod expectations;
pub mod loader;
pub mod mutants;
pub mod properties;
pub mod protocol;
pub mod reference;
pub mod report;
pub mod runner;
pub mod scenario;
pub mod session;
pub mod transcript;
pub mod unreachable;

pub use idprop_mocks as mocks;
