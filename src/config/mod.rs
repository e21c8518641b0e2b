//! rex's config files, in xl cfg syntax (what Xen administrators already
//! write), parsed by libxlutil: policy files ([`policy`]) and simulation
//! scenarios ([`scenario`]). Every error names the file and line.

pub mod bench_csv;
pub mod policy;
pub mod scenario;
mod spec;

use crate::xl::cfg::CfgError;

/// A config error, worded for the user: `file:line: what is wrong`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{location}: {message}")]
pub struct ConfigError {
    pub location: String,
    pub message: String,
}

impl ConfigError {
    pub fn new(location: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            location: location.into(),
            message: message.into(),
        }
    }
}

impl From<CfgError> for ConfigError {
    fn from(e: CfgError) -> Self {
        // libxlutil's messages already start with `file:line:`.
        match e.0.split_once(": ") {
            Some((loc, msg)) => Self::new(loc, msg),
            None => Self::new("config", e.0),
        }
    }
}

pub use spec::{parse_size_kb, shown, Spec};
