//! Subcommands of the `idprop` binary.

pub mod run;
pub mod token;
pub mod up;
