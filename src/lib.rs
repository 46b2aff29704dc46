//! splitbrain: a Jepsen-style fault-injection test harness.
//!
//! # Layout
//!
//! * [`cli`] — one file per subcommand; the binary only calls [`cli::main`]. `cli::main` is
//!   the one place a failure ([`exit`]) becomes an exit code.
//! * [`campaign`] — campaign files (the one YAML loader); each part's section is that
//!   part's own type (the nemesis's spec lives in [`nemesis`], the system's in
//!   [`system::spec`]); [`limits`] range-checks every count and duration while parsing.
//! * [`system`] — the systems under test: how to start their nodes and talk to them;
//!   [`system::system_for`] builds a campaign's system, once per run.
//! * [`workload`] — the operation generator (Jepsen's independent-keys shape).
//! * [`recorder`] — the history, streamed to disk as it happens.
//! * [`cluster`] — a deployed system: network, supervised nodes, clients. It is handed its
//!   system and its nodes' launch environment; it knows neither campaigns nor faults.
//! * [`nemesis`] — faults: partitions, pauses, kills, clock skew, packet loss; schedules;
//!   the typed record each fault writes into the history (`nemesis::record`).
//! * [`run`] — one run end to end: builds the system, deploys it, drives clients and the
//!   nemesis, checks, writes the run directory.
//! * [`analysis`] — what a history says: the checkers, client operations, fault windows,
//!   the typed `results.json` ([`analysis::RunResults`]), a counterexample in words.
//! * [`report`] — everything people read: the summary table, HTML, JUnit, the progress
//!   line, the tables of `report` and `compare`.
//! * [`results`] — the run directory: its file names ([`results::files`]), modes and
//!   `environment.json`.
//! * [`compare`] — one workload against several systems.
//! * The OS layer: [`netns`], [`topology`] (namespaces), [`cgroup`], [`node`]
//!   (supervision), [`disk`] (the lazy FUSE layer under a node's data directory),
//!   [`capability`] (probes, the root check), [`doctor`], [`cleanup`]
//!   (run records, and removal of what crashed runs left; the modules that leave state
//!   inside a run's namespaces hand it their steps).
//! * [`remote`] — remote hosts over SSH: the campaign's `hosts:`/`ssh:` sections, shell
//!   quoting, the multiplexed `ssh` transport, one persistent shell per host, a run's
//!   remote nodes, partition tables and probes, and their ownership records and cleanup
//!   step. It knows neither systems nor faults: [`cluster`] builds remote nodes from a
//!   system (`Deployment::Remote`), the nemesis puts faults in force through it.
//!
//! # Layers
//!
//! A module imports only modules of its own layer or of the layers below, and no two
//! modules import each other (`tests/module_graph.rs` checks both, naming any cycle with
//! the file and line of each import on it; it lists the imports that still go up, each
//! with what removes it). Lowest first:
//!
//! 0. `netns`, `cgroup`, `limits`, `disk`
//! 1. `capability`, `cleanup`, `remote`
//! 2. `exit`, `doctor`, `topology`
//! 3. `results`
//! 4. `recorder`, `system`
//! 5. `node`
//! 6. `cluster`
//! 7. `nemesis`
//! 8. `campaign`
//! 9. `workload`, `analysis`
//! 10. `report`
//! 11. `run`
//! 12. `compare`
//! 13. `cli`

/// `eprintln!` that cannot panic. With standard error gone (a closed pipe, the shell that
/// started the run killed) `eprintln!` panics, and a panic in a signal handler, a drop or a
/// clean-up step would skip what must be undone; the line is dropped instead.
#[macro_export]
macro_rules! stderr_line {
    ($($arg:tt)*) => {{
        use ::std::io::Write as _;
        let _ = ::std::writeln!(::std::io::stderr(), $($arg)*);
    }};
}

pub mod cli;
pub mod exit;
pub mod limits;
pub mod system;

// Running campaigns.
pub mod analysis;
pub mod campaign;
pub mod cluster;
pub mod compare;
pub mod nemesis;
pub mod recorder;
pub mod report;
pub mod results;
pub mod run;
pub mod workload;

// The OS layer: network namespaces, topology, cgroups, node supervision, cleanup, probes.
pub mod capability;
pub mod cgroup;
pub mod cleanup;
pub mod disk;
pub mod doctor;
pub mod netns;
pub mod node;
pub mod remote;
pub mod topology;
