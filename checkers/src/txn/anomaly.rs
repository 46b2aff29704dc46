//! Anomalies, with Elle's names, and how a cycle is named from its edges.

use super::graph::{Cycle, Rels};
use serde::Serialize;
use std::fmt;

/// Every anomaly the checker reports, spelled as Elle spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AnomalyKind {
    /// A cycle of ww edges only.
    G0,
    G0Process,
    G0Realtime,
    /// Aborted read: a committed transaction read a value a failed transaction wrote.
    G1a,
    /// Intermediate read: a committed transaction read a value that was not its writer's
    /// final write to that key.
    G1b,
    /// A cycle of ww and wr edges with at least one wr.
    G1c,
    G1cProcess,
    G1cRealtime,
    /// A cycle with exactly one rw edge.
    GSingle,
    GSingleProcess,
    GSingleRealtime,
    /// A cycle with at least two rw edges, no two adjacent.
    GNonadjacent,
    GNonadjacentProcess,
    GNonadjacentRealtime,
    /// A cycle with at least two rw edges (some adjacent).
    G2Item,
    G2ItemProcess,
    G2ItemRealtime,
    /// A transaction's reads disagree with its own earlier reads and writes.
    Internal,
    /// A read of a list holding the same element twice.
    DuplicateElements,
    /// A read of a value no transaction wrote.
    GarbageRead,
    /// Two reads of one key that are not prefixes of one another.
    IncompatibleOrder,
    /// A committed write ordered after a failed transaction's write.
    DirtyUpdate,
    /// Two committed transactions read the same version of a key and both wrote it.
    LostUpdate,
    /// The version order of a register key is cyclic.
    CyclicVersions,
}

impl AnomalyKind {
    pub const ALL: [AnomalyKind; 24] = [
        AnomalyKind::G0,
        AnomalyKind::G0Process,
        AnomalyKind::G0Realtime,
        AnomalyKind::G1a,
        AnomalyKind::G1b,
        AnomalyKind::G1c,
        AnomalyKind::G1cProcess,
        AnomalyKind::G1cRealtime,
        AnomalyKind::GSingle,
        AnomalyKind::GSingleProcess,
        AnomalyKind::GSingleRealtime,
        AnomalyKind::GNonadjacent,
        AnomalyKind::GNonadjacentProcess,
        AnomalyKind::GNonadjacentRealtime,
        AnomalyKind::G2Item,
        AnomalyKind::G2ItemProcess,
        AnomalyKind::G2ItemRealtime,
        AnomalyKind::Internal,
        AnomalyKind::DuplicateElements,
        AnomalyKind::GarbageRead,
        AnomalyKind::IncompatibleOrder,
        AnomalyKind::DirtyUpdate,
        AnomalyKind::LostUpdate,
        AnomalyKind::CyclicVersions,
    ];

    pub fn name(self) -> &'static str {
        use AnomalyKind::*;
        match self {
            G0 => "G0",
            G0Process => "G0-process",
            G0Realtime => "G0-realtime",
            G1a => "G1a",
            G1b => "G1b",
            G1c => "G1c",
            G1cProcess => "G1c-process",
            G1cRealtime => "G1c-realtime",
            GSingle => "G-single",
            GSingleProcess => "G-single-process",
            GSingleRealtime => "G-single-realtime",
            GNonadjacent => "G-nonadjacent",
            GNonadjacentProcess => "G-nonadjacent-process",
            GNonadjacentRealtime => "G-nonadjacent-realtime",
            G2Item => "G2-item",
            G2ItemProcess => "G2-item-process",
            G2ItemRealtime => "G2-item-realtime",
            Internal => "internal",
            DuplicateElements => "duplicate-elements",
            GarbageRead => "garbage-read",
            IncompatibleOrder => "incompatible-order",
            DirtyUpdate => "dirty-update",
            LostUpdate => "lost-update",
            CyclicVersions => "cyclic-versions",
        }
    }

    pub fn from_name(name: &str) -> Option<AnomalyKind> {
        AnomalyKind::ALL.into_iter().find(|k| k.name() == name)
    }

    pub fn is_cycle(self) -> bool {
        use AnomalyKind::*;
        !matches!(
            self,
            G1a | G1b
                | Internal
                | DuplicateElements
                | GarbageRead
                | IncompatibleOrder
                | DirtyUpdate
                | LostUpdate
                | CyclicVersions
        )
    }
}

impl fmt::Display for AnomalyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl Serialize for AnomalyKind {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

/// Names a cycle by the relations its edges were taken as: an edge taken as ww or wr is a
/// plain dependency; one taken only as process or real-time order makes the cycle a
/// `-process` (all such edges are process order) or `-realtime` variant.
pub fn classify(cycle: &Cycle) -> AnomalyKind {
    use AnomalyKind::*;
    let n = cycle.taken.len();
    let dep = Rels::WW.union(Rels::WR);
    let is_rw = |r: Rels| !r.intersects(dep) && r.intersects(Rels::RW);
    let is_order = |r: Rels| !r.intersects(dep.union(Rels::RW));
    let rw_count = cycle.taken.iter().filter(|r| is_rw(**r)).count();
    let adjacent_rw = (0..n).any(|i| is_rw(cycle.taken[i]) && is_rw(cycle.taken[(i + 1) % n]));
    let needs_wr = cycle
        .taken
        .iter()
        .any(|r| r.intersects(Rels::WR) && !r.intersects(Rels::WW));
    let order: Vec<Rels> = cycle
        .taken
        .iter()
        .copied()
        .filter(|r| is_order(*r))
        .collect();
    let variant = if order.is_empty() {
        0
    } else if order.iter().all(|r| r.intersects(Rels::PROCESS)) {
        1
    } else {
        2
    };
    let base = match rw_count {
        0 if needs_wr => [G1c, G1cProcess, G1cRealtime],
        0 => [G0, G0Process, G0Realtime],
        1 => [GSingle, GSingleProcess, GSingleRealtime],
        _ if !adjacent_rw => [GNonadjacent, GNonadjacentProcess, GNonadjacentRealtime],
        _ => [G2Item, G2ItemProcess, G2ItemRealtime],
    };
    base[variant]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cycle(rels: &[Rels]) -> Cycle {
        Cycle {
            nodes: (0..rels.len() as u32).collect(),
            rels: rels.to_vec(),
            taken: rels.to_vec(),
        }
    }

    #[test]
    fn names_follow_elle() {
        let (ww, wr, rw, p, rt) = (Rels::WW, Rels::WR, Rels::RW, Rels::PROCESS, Rels::REALTIME);
        assert_eq!(classify(&cycle(&[ww, ww])), AnomalyKind::G0);
        assert_eq!(classify(&cycle(&[ww, wr])), AnomalyKind::G1c);
        assert_eq!(classify(&cycle(&[ww.union(wr), ww])), AnomalyKind::G0);
        assert_eq!(classify(&cycle(&[rw, wr])), AnomalyKind::GSingle);
        assert_eq!(classify(&cycle(&[rw, ww.union(rw)])), AnomalyKind::GSingle);
        assert_eq!(
            classify(&cycle(&[rw, wr, rw, ww])),
            AnomalyKind::GNonadjacent
        );
        assert_eq!(classify(&cycle(&[rw, rw, ww])), AnomalyKind::G2Item);
        assert_eq!(classify(&cycle(&[rw, wr, rw])), AnomalyKind::G2Item);
        assert_eq!(classify(&cycle(&[ww, p])), AnomalyKind::G0Process);
        assert_eq!(classify(&cycle(&[ww, p.union(rt)])), AnomalyKind::G0Process);
        assert_eq!(classify(&cycle(&[ww, p, rt])), AnomalyKind::G0Realtime);
        assert_eq!(classify(&cycle(&[rw, rt])), AnomalyKind::GSingleRealtime);
        assert_eq!(classify(&cycle(&[wr, rt])), AnomalyKind::G1cRealtime);
    }
}
