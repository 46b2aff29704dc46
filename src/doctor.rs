//! `doctor`'s report: the probes of [`crate::capability`] as a table.

use crate::capability::{Probe, Status};
use tabled::settings::Style;
use tabled::{Table, Tabled};

#[derive(Tabled)]
struct Row {
    capability: &'static str,
    status: &'static str,
    detail: String,
    #[tabled(rename = "without it")]
    disables: &'static str,
}

/// The probes as a table: capability, status (ok/missing), detail, what its absence disables.
pub fn render(probes: &[Probe]) -> String {
    let rows = probes.iter().map(|p| Row {
        capability: p.capability.name(),
        status: match p.status {
            Status::Ok => "ok",
            Status::Missing => "missing",
        },
        detail: p.detail.clone(),
        disables: p.capability.disables(),
    });
    Table::new(rows).with(Style::sharp()).to_string()
}

/// Whether the default path (partitions, pauses, kills) can run.
pub fn default_path_ready(probes: &[Probe]) -> bool {
    probes
        .iter()
        .filter(|p| p.capability.essential())
        .all(Probe::is_ok)
}
