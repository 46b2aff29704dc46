//! splitbrain: a Jepsen-style fault-injection test harness.
//!
//! # Layout
//!
//! * [`cli`] — one file per subcommand; the binary only calls [`cli::main`].
//! * [`system`] — the systems under test: how to start their nodes and talk to them.
//! * [`exit`] — exit codes.

pub mod cli;
pub mod exit;
pub mod system;
