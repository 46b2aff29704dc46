//! Packet faults inside node namespaces.
//!
//! Loss: an nftables table `splitbrain_loss` in each target node's namespace drops each
//! packet into or out of the node with probability P (`numgen random mod 100 <= P-1`), cluster
//! traffic only (the cluster subnet). Delay, reorder and duplication need tc netem, which
//! this build does not drive; campaigns asking for them are refused at validation.

use super::net::{delete_table_script, nft_parallel, NetError};
use crate::topology::{PREFIX_LEN, SUBNET};
use std::time::{Duration, Instant};

/// The nftables table of loss rules.
pub const LOSS_TABLE: &str = "splitbrain_loss";

/// The nft script that makes namespace traffic lossy.
pub fn loss_script(percent: u8) -> Vec<String> {
    // numgen yields 0..=99; `<= P-1` drops P of them (nft refuses `< 100` as out of range).
    let below = percent.clamp(1, 100) - 1;
    let subnet = format!("{SUBNET}/{PREFIX_LEN}");
    vec![
        format!("add table inet {LOSS_TABLE}"),
        format!("add chain inet {LOSS_TABLE} input {{ type filter hook input priority -5; policy accept; }}"),
        format!("add chain inet {LOSS_TABLE} output {{ type filter hook output priority -5; policy accept; }}"),
        format!("add rule inet {LOSS_TABLE} input ip saddr {subnet} numgen random mod 100 <= {below} drop"),
        format!("add rule inet {LOSS_TABLE} output ip daddr {subnet} numgen random mod 100 <= {below} drop"),
    ]
}

/// Makes traffic of `namespaces` lossy; returns how long it took.
pub fn apply_loss(namespaces: &[String], percent: u8) -> Result<Duration, NetError> {
    let started = Instant::now();
    let jobs: Vec<(String, Vec<String>)> = namespaces
        .iter()
        .map(|ns| (ns.clone(), loss_script(percent)))
        .collect();
    if let Err(e) = nft_parallel(&jobs) {
        let _ = heal_loss(namespaces);
        return Err(e);
    }
    Ok(started.elapsed())
}

/// Removes the loss table from `namespaces` (missing tables and namespaces are fine).
pub fn heal_loss(namespaces: &[String]) -> Result<Duration, NetError> {
    let started = Instant::now();
    let jobs: Vec<(String, Vec<String>)> = namespaces
        .iter()
        .filter(|ns| crate::netns::exists(ns))
        .map(|ns| (ns.clone(), delete_table_script(LOSS_TABLE)))
        .collect();
    nft_parallel(&jobs)?;
    Ok(started.elapsed())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loss_rules_drop_cluster_traffic_only_and_never_reject() {
        let script = loss_script(30).join("\n");
        assert!(
            script.contains("ip saddr 10.73.0.0/24 numgen random mod 100 <= 29 drop"),
            "{script}"
        );
        assert!(
            script.contains("ip daddr 10.73.0.0/24 numgen random mod 100 <= 29 drop"),
            "{script}"
        );
        assert!(!script.contains("reject"));
    }
}
