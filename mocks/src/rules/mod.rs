//! Every rule of the specification, as pure functions, in one place.
//!
//! The mock Destination service and Cloud Connector run these; the harness's
//! builtin reference implementation runs these; the property tests use them
//! as the oracle. Each function cites the rule ids of
//! `shared/design/rules.md` it implements.

pub mod strict_json;
pub mod token_validation;
