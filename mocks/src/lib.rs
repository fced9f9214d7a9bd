//! idprop-mocks: an in-process mock of the SAP BTP identity landscape.
//!
//! Start everything with [`Stack::start`]; reach the virtual `.test` hosts
//! through the gateway ([`Stack::gateway_url`]) trusting [`Stack::ca_file`];
//! read what every mock observed in the [`Journal`].

pub mod authorization;
pub mod backend;
pub mod connectivity;
pub mod connector;
pub mod destination;
pub mod expect;
pub mod gateway;
pub mod http;
pub mod identity;
pub mod journal;
pub mod pki;
pub mod retrieval;
pub mod rules;
pub mod serve;
pub mod stack;
pub mod token_server;
pub mod tokens;
pub mod uaa;
pub mod upstream;
pub mod validated;
pub mod yaml;

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
