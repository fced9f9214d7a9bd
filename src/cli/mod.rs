//! Subcommands of the `idprop` binary.

pub mod token;
pub mod up;
