//! idprop-mocks: an in-process mock of the SAP BTP identity landscape.
//!
//! Start everything with [`Stack::start`]; reach the virtual `.test` hosts
//! through the gateway ([`Stack::gateway_url`]) trusting [`Stack::ca_file`];
//! read what every mock observed in the [`Journal`]; say what you expect
//! with [`Stack::expect`] and [`expect::request`].
//!
//! The public modules are the concepts a test names (the services and
//! their configuration, the rules, tokens, the journal, expectations); the
//! plumbing (HTTP serving, listeners, the gateway, caches) is private.

pub mod app;
pub mod authorization;
pub mod backend;
mod connectivity;
pub mod connector;
pub mod destination;
pub mod expect;
mod gateway;
mod http;
pub mod identity;
pub mod journal;
mod login;
pub mod oidc;
pub mod pki;
pub mod retrieval;
pub mod rules;
pub mod saml;
mod serve;
pub mod stack;
pub mod token_server;
pub mod tokens;
pub mod uaa;
mod upstream;
mod validated;
#[cfg(feature = "yaml")]
pub mod yaml;

// The names most tests need; everything else under its module.
pub use backend::BackendConfig;
pub use connector::ConnectorConfig;
pub use destination::DestinationEntry;
pub use journal::{Component, Journal, JournalEntry};
pub use serve::Limits;
pub use stack::{Stack, StackBuilder, StackConfig, StackError};
pub use token_server::TokenServerBehaviour;
pub use tokens::Forgery;

/// The README's Rust examples, compiled and run as doctests.
#[doc = include_str!("../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
