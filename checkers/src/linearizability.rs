//! The linearizability search.

use crate::history::History;
use crate::models::ModelSpec;
use crate::verdict::CheckResult;
use std::time::Duration;

/// How a check runs.
#[derive(Debug, Clone)]
pub struct CheckOptions {
    /// Give up with `unknown` after this long (per whole check).
    pub time_limit: Option<Duration>,
    /// Give up with `unknown` when the search's memo tables exceed this many bytes.
    pub memory_budget: Option<u64>,
    /// Keys checked in parallel.
    pub jobs: usize,
    /// Also read every failed cas as an observation that the register did not hold the
    /// expected value (opt-in; Jepsen and Knossos drop failed operations).
    pub failed_cas_observes: bool,
}

impl Default for CheckOptions {
    fn default() -> Self {
        CheckOptions {
            time_limit: None,
            memory_budget: None,
            jobs: std::thread::available_parallelism().map_or(1, |n| n.get()),
            failed_cas_observes: false,
        }
    }
}

/// A history that does not fit the model (wrong functions or value shapes).
#[derive(Debug, thiserror::Error)]
#[error("event {index}: {message}")]
pub struct PrepareError {
    pub index: u64,
    pub message: String,
}

/// Checks `history` for linearizability against `model`, independent keys separately.
pub fn check(
    _history: &History,
    _model: &ModelSpec,
    _opts: &CheckOptions,
) -> Result<CheckResult, PrepareError> {
    todo!("being written")
}
