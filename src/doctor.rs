//! `doctor`'s report: the probes of [`crate::capability`] as a table.

use crate::capability::{Probe, Status};
use tabled::settings::peaker::PriorityMax;
use tabled::settings::{Style, Width};
use tabled::{Table, Tabled};

/// The widest the table gets, in columns: long cells wrap at word boundaries, the widest
/// column first, so the report reads on an 80–100 column terminal.
pub const TABLE_WIDTH: usize = 96;

#[derive(Tabled)]
struct Row {
    capability: &'static str,
    status: &'static str,
    detail: String,
    #[tabled(rename = "without it")]
    disables: &'static str,
}

/// The probes as a table: capability, status (ok/missing), detail, what its absence
/// disables; at most [`TABLE_WIDTH`] columns wide.
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
    Table::new(rows)
        .with(Style::sharp())
        .with(
            Width::wrap(TABLE_WIDTH)
                .keep_words(true)
                .priority(PriorityMax),
        )
        .to_string()
}

/// Whether the default path (partitions, pauses, kills) can run.
pub fn default_path_ready(probes: &[Probe]) -> bool {
    probes
        .iter()
        .filter(|p| p.capability.essential())
        .all(Probe::is_ok)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capability::Capability;

    fn probe(capability: Capability, status: Status, detail: &str) -> Probe {
        Probe {
            capability,
            status,
            detail: detail.to_string(),
        }
    }

    #[test]
    fn the_table_fits_in_a_hundred_columns_and_keeps_every_word() {
        let long_detail = "libfaketime.so.1 not found in /usr/lib/x86_64-linux-gnu/faketime, \
            /usr/lib/faketime, /usr/local/lib/faketime or on the ldconfig cache; install the \
            Debian package libfaketime to enable clock faults";
        let probes: Vec<Probe> = Capability::ALL
            .iter()
            .enumerate()
            .map(|(i, capability)| {
                if i % 2 == 0 {
                    probe(*capability, Status::Missing, long_detail)
                } else {
                    probe(*capability, Status::Ok, "ok")
                }
            })
            .collect();
        let table = render(&probes);
        for line in table.lines() {
            let width = line.chars().count();
            assert!(width <= TABLE_WIDTH, "{width} columns: {line}\n{table}");
        }
        // Wrapping keeps the words (those that fit in a column): each is still there.
        let text: String = table.replace(['│', '\n'], " ");
        for word in long_detail.split_whitespace().filter(|w| w.len() <= 20) {
            assert!(text.contains(word), "`{word}` lost:\n{table}");
        }
        for capability in Capability::ALL {
            let first_word = capability.name().split_whitespace().next().unwrap();
            assert!(text.contains(first_word), "{first_word}:\n{table}");
        }
    }
}
