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

mod authorization;
pub mod backend;
mod connectivity;
pub mod connector;
pub mod destination;
pub mod expect;
mod gateway;
mod http;
pub mod identity;
pub mod journal;
pub mod pki;
pub mod retrieval;
pub mod rules;
mod serve;
pub mod stack;
pub mod token_server;
pub mod tokens;
pub mod uaa;
mod upstream;
mod validated;
#[cfg(feature = "yaml")]
pub mod yaml;

pub use authorization::{basic_header, bearer, parse_basic};
pub use journal::Component;
pub use serve::Limits;

pub use backend::{Backend, BackendConfig, CannedResponse};
pub use connectivity::ConnectivityProxy;
pub use connector::{AuthenticationMode, CloudConnector, ConnectorConfig, MappingConfig, TrustedIdp};
pub use destination::{DestinationEntry, DestinationService};
pub use journal::{ClientCertInfo, Journal, JournalEntry};
pub use pki::TestPki;
pub use retrieval::{Certificate, FindDestinationAnswer, FindRequest, Network, TokenRetriever};
pub use rules::{AuthToken, AuthenticationType, Destination};
pub use stack::{Ports, Stack, StackBuilder, StackConfig, StackError};
pub use token_server::{TokenServer, TokenServerBehaviour};
pub use tokens::{Forgery, TokenBuilder, TokenFactory};
pub use uaa::{ClientAuthMethod, MockUaa, OAuthClient, Tenant, UaaConfig, User};

/// The README's Rust examples, compiled and run as doctests.
#[doc = include_str!("../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
