//! Subcommands of the `idprop` binary.

pub mod adapter;
pub mod journal;
pub mod run;
pub mod token;
pub mod up;
