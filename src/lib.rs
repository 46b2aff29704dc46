//! splitbrain: a Jepsen-style fault-injection test harness.
//!
//! # Layout
//!
//! * [`cli`] — one file per subcommand; the binary only calls [`cli::main`].
//! * [`system`] — the systems under test: how to start their nodes and talk to them.
//! * [`exit`] — exit codes and the kinds of failure they stand for; `cli::main` is the one
//!   place a failure becomes an exit code.
//! * [`campaign`] — campaign files (the one YAML loader).
//! * [`workload`] — the operation generator (Jepsen's independent-keys shape).
//! * [`recorder`] — the history, streamed to disk as it happens.
//! * [`cluster`] — a deployed system: network, supervised nodes, clients.
//! * [`nemesis`] — faults: partitions, pauses, kills, clock skew, packet loss; schedules;
//!   the typed record each fault writes into the history (`nemesis::record`).
//! * [`run`] — one run end to end; [`summary`] (the checkers, the analysis and the typed
//!   `results.json`, `summary::RunResults`), [`results`] (the run directory) and [`report`] —
//!   what it leaves behind; [`compare`] — one workload against several systems.

pub mod cli;
pub mod exit;
pub mod system;

// Running campaigns.
pub mod campaign;
pub mod cluster;
pub mod compare;
pub mod nemesis;
pub mod recorder;
pub mod report;
pub mod results;
pub mod run;
pub mod summary;
pub mod workload;

// The OS layer: network namespaces, topology, cgroups, node supervision, cleanup, probes.
pub mod capability;
pub mod cgroup;
pub mod cleanup;
pub mod disk;
pub mod doctor;
pub mod netns;
pub mod node;
pub mod topology;
