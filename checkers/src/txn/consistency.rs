//! Consistency models and the anomalies each forbids, after Elle's `consistency-model`
//! namespace (Adya; Bailis et al.; Cerone et al.): a model forbids the anomalies it names
//! directly and those of every weaker model it implies; an anomaly also counts as every
//! anomaly it implies (G0 is a G1c, G-single is a G-nonadjacent, …).

use super::anomaly::AnomalyKind;
use serde::Serialize;
use std::collections::BTreeSet;

/// The consistency models `check --consistency` accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ConsistencyModel {
    StrictSerializable,
    Serializable,
    SnapshotIsolation,
    RepeatableRead,
    ReadCommitted,
    ReadUncommitted,
}

impl ConsistencyModel {
    pub const ALL: [ConsistencyModel; 6] = [
        ConsistencyModel::StrictSerializable,
        ConsistencyModel::Serializable,
        ConsistencyModel::SnapshotIsolation,
        ConsistencyModel::RepeatableRead,
        ConsistencyModel::ReadCommitted,
        ConsistencyModel::ReadUncommitted,
    ];

    pub fn name(self) -> &'static str {
        match self {
            ConsistencyModel::StrictSerializable => "strict-serializable",
            ConsistencyModel::Serializable => "serializable",
            ConsistencyModel::SnapshotIsolation => "snapshot-isolation",
            ConsistencyModel::RepeatableRead => "repeatable-read",
            ConsistencyModel::ReadCommitted => "read-committed",
            ConsistencyModel::ReadUncommitted => "read-uncommitted",
        }
    }

    /// Whether an anomaly of this kind rules the model out.
    pub fn forbids(self, kind: AnomalyKind) -> bool {
        let forbidden = forbidden_names(self.name());
        implied_names(kind.name())
            .iter()
            .any(|a| forbidden.contains(a))
    }

    /// Every anomaly kind the checker reports that this model forbids.
    pub fn forbidden_kinds(self) -> Vec<AnomalyKind> {
        AnomalyKind::ALL
            .into_iter()
            .filter(|k| self.forbids(*k))
            .collect()
    }
}

impl std::fmt::Display for ConsistencyModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for ConsistencyModel {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        ConsistencyModel::ALL
            .into_iter()
            .find(|m| m.name() == s)
            .ok_or_else(|| {
                let names: Vec<_> = ConsistencyModel::ALL.iter().map(|m| m.name()).collect();
                format!(
                    "unknown consistency model `{s}`; expected one of: {}",
                    names.join(", ")
                )
            })
    }
}

/// Anomaly → anomalies it implies (Elle's `implied-anomalies`, the part that concerns the
/// anomalies reported here). Every cycle found here is over item (not predicate)
/// dependencies, so G-single and G-nonadjacent are Elle's `G-single-item` and
/// `G-nonadjacent-item`, which also imply G2-item.
const IMPLIES: &[(&str, &[&str])] = &[
    ("G0", &["G1c", "G0-process"]),
    ("G0-process", &["G1c-process", "G0-realtime"]),
    ("G0-realtime", &["G1c-realtime"]),
    ("G1a", &["G1"]),
    ("G1b", &["G1"]),
    ("G1c", &["G1", "G1c-process"]),
    ("G1c-process", &["G1c-realtime", "G1-process"]),
    ("G1c-realtime", &["G1-realtime"]),
    ("G1", &["G1-process"]),
    ("G1-process", &["G1-realtime"]),
    (
        "G-single",
        &["G-nonadjacent", "G-single-process", "G2-item"],
    ),
    (
        "G-single-process",
        &[
            "G-nonadjacent-process",
            "G-single-realtime",
            "G2-item-process",
        ],
    ),
    (
        "G-single-realtime",
        &["G-nonadjacent-realtime", "G2-item-realtime"],
    ),
    ("G-nonadjacent", &["G2", "G-nonadjacent-process", "G2-item"]),
    (
        "G-nonadjacent-process",
        &["G2-process", "G-nonadjacent-realtime", "G2-item-process"],
    ),
    (
        "G-nonadjacent-realtime",
        &["G2-realtime", "G2-item-realtime"],
    ),
    ("G2", &["G2-process"]),
    ("G2-item", &["G2", "G2-item-process"]),
    ("G2-item-process", &["G2-process", "G2-item-realtime"]),
    ("G2-item-realtime", &["G2-realtime"]),
    ("G2-process", &["G2-realtime"]),
    ("incompatible-order", &["G1a"]),
    ("dirty-update", &["G1a"]),
    ("lost-update", &["G2-item"]),
];

/// Model → anomalies it names directly (Elle's `direct-proscribed-anomalies`). Reading a
/// value nobody wrote (`garbage-read`) is ours: no model allows it.
const DIRECT: &[(&str, &[&str])] = &[
    (
        "read-uncommitted",
        &[
            "G0",
            "duplicate-elements",
            "cyclic-versions",
            "garbage-read",
        ],
    ),
    ("read-committed", &["G1"]),
    ("cursor-stability", &["G1", "lost-update"]),
    ("monotonic-atomic-view", &[]),
    ("repeatable-read", &["G1", "G2-item", "lost-update"]),
    ("read-atomic", &["internal", "G1a"]),
    ("update-atomic", &["lost-update"]),
    ("consistent-view", &["G1", "G-single"]),
    (
        "snapshot-isolation",
        &["internal", "G1", "G-single", "G-nonadjacent"],
    ),
    ("serializable", &["internal", "G1", "G2"]),
    ("strong-session-serializable", &["G1-process", "G2-process"]),
    (
        "strong-snapshot-isolation",
        &["internal", "G1-realtime", "G-nonadjacent-realtime"],
    ),
    (
        "strict-serializable",
        &["G1", "G1c-realtime", "G2-realtime"],
    ),
];

/// Model → weaker models it implies (Elle's `models`, restricted).
const WEAKER: &[(&str, &[&str])] = &[
    ("read-committed", &["read-uncommitted"]),
    ("cursor-stability", &["read-committed"]),
    ("monotonic-atomic-view", &["read-committed"]),
    (
        "repeatable-read",
        &["cursor-stability", "monotonic-atomic-view"],
    ),
    ("read-atomic", &["monotonic-atomic-view"]),
    ("update-atomic", &["read-atomic"]),
    ("consistent-view", &["cursor-stability"]),
    (
        "snapshot-isolation",
        &[
            "consistent-view",
            "monotonic-atomic-view",
            "read-atomic",
            "update-atomic",
        ],
    ),
    ("serializable", &["repeatable-read", "snapshot-isolation"]),
    ("strong-session-serializable", &["serializable"]),
    ("strong-snapshot-isolation", &["snapshot-isolation"]),
    (
        "strict-serializable",
        &[
            "serializable",
            "strong-session-serializable",
            "strong-snapshot-isolation",
        ],
    ),
];

fn closure(start: &str, table: &[(&str, &[&'static str])]) -> BTreeSet<&'static str> {
    let mut seen: BTreeSet<&'static str> = BTreeSet::new();
    let mut todo: Vec<&str> = vec![start];
    while let Some(x) = todo.pop() {
        if let Some((_, next)) = table.iter().find(|(k, _)| *k == x) {
            for n in next.iter() {
                if seen.insert(n) {
                    todo.push(n);
                }
            }
        }
    }
    seen
}

fn implied_names(anomaly: &'static str) -> BTreeSet<&'static str> {
    let mut set = closure(anomaly, IMPLIES);
    set.insert(anomaly);
    set
}

fn forbidden_names(model: &'static str) -> BTreeSet<&'static str> {
    let mut models = closure(model, WEAKER);
    models.insert(model);
    models
        .into_iter()
        .flat_map(|m| {
            DIRECT
                .iter()
                .filter(move |(k, _)| *k == m)
                .flat_map(|(_, v)| v.iter().copied())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use AnomalyKind::*;
    use ConsistencyModel::*;

    #[test]
    fn elle_table() {
        // read-uncommitted: G0 only among cycles.
        assert!(ReadUncommitted.forbids(G0));
        assert!(!ReadUncommitted.forbids(G1c));
        assert!(!ReadUncommitted.forbids(G1a));
        assert!(ReadUncommitted.forbids(DuplicateElements));
        // read-committed: G1.
        assert!(ReadCommitted.forbids(G1a));
        assert!(ReadCommitted.forbids(G1b));
        assert!(ReadCommitted.forbids(G1c));
        assert!(ReadCommitted.forbids(G0));
        assert!(!ReadCommitted.forbids(GSingle));
        assert!(!ReadCommitted.forbids(G1cProcess));
        // repeatable-read: G2-item (our G-single is Elle's G-single-item, a G2-item) and
        // lost update; no process or realtime variant.
        assert!(RepeatableRead.forbids(G2Item));
        assert!(RepeatableRead.forbids(LostUpdate));
        assert!(RepeatableRead.forbids(GSingle));
        assert!(!RepeatableRead.forbids(GSingleProcess));
        assert!(!RepeatableRead.forbids(Internal));
        // snapshot isolation: G-single, G-nonadjacent, not G2-item.
        assert!(SnapshotIsolation.forbids(GSingle));
        assert!(SnapshotIsolation.forbids(GNonadjacent));
        assert!(SnapshotIsolation.forbids(LostUpdate));
        assert!(SnapshotIsolation.forbids(Internal));
        assert!(!SnapshotIsolation.forbids(G2Item));
        assert!(!SnapshotIsolation.forbids(GSingleProcess));
        // serializable: all of G2, no process/realtime variant.
        for k in [G0, G1a, G1b, G1c, GSingle, GNonadjacent, G2Item, Internal] {
            assert!(Serializable.forbids(k), "{k}");
        }
        for k in [G0Process, G1cRealtime, GSingleProcess, G2ItemRealtime] {
            assert!(!Serializable.forbids(k), "{k}");
        }
        // strict-serializable: everything.
        for k in AnomalyKind::ALL {
            assert!(StrictSerializable.forbids(k), "{k}");
        }
    }
}
