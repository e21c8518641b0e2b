//! Subcommands of the `rex` binary. Each module has its clap `Args` and a
//! `main` that returns the process exit code.

pub mod control;
pub mod decompose;
pub mod man;
pub mod report;
pub mod run;
pub mod simulate;
