//! The operation generator: which operation each client process performs next.
//!
//! Multi-key workloads follow Jepsen's independent-keys shape: client slots form groups of
//! `group_size`; a group works on one key at a time, and after `ops_per_key` operations it
//! moves on to a fresh key. Every key thus sees real concurrency, and no key's history
//! grows beyond what a linearizability search can handle. Single-register workloads put
//! every slot on key 0.
//!
//! Written values are unique per key (a per-key counter), so a read names the write it
//! observed. A cas expects a value that was written to the key before (or nil), so that
//! it succeeds often enough to matter.

use crate::campaign::{Mix, WorkloadKind, WorkloadSpec};
use crate::system::Function;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use splitbrain_checkers::Value;
use std::sync::Mutex;

/// One operation to perform.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedOp {
    pub f: Function,
    pub key: i64,
    pub value: Value,
}

struct GroupState {
    key: i64,
    issued: u64,
    /// Next value to write on the current key.
    next_value: i64,
    /// The last few values written on the current key, as cas candidates.
    recent: Vec<i64>,
}

/// Shared by every client slot of a run.
pub struct Generator {
    kind: WorkloadKind,
    mix: Mix,
    group_size: usize,
    groups_count: usize,
    ops_per_key: u64,
    groups: Vec<Mutex<GroupState>>,
}

/// Per-slot randomness, seeded from the run's seed so a run can be replayed.
pub struct SlotRng(StdRng);

impl SlotRng {
    pub fn new(seed: u64, slot: usize) -> Self {
        SlotRng(StdRng::seed_from_u64(
            seed ^ (slot as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15),
        ))
    }
}

impl Generator {
    pub fn new(spec: &WorkloadSpec) -> Generator {
        let single = matches!(
            spec.kind,
            WorkloadKind::Register | WorkloadKind::CasRegister
        );
        let group_size = if single {
            spec.concurrency
        } else {
            spec.effective_group_size()
        };
        let groups_count = spec.concurrency.div_ceil(group_size);
        let groups = (0..groups_count)
            .map(|g| {
                Mutex::new(GroupState {
                    key: g as i64,
                    issued: 0,
                    next_value: 1,
                    recent: Vec::new(),
                })
            })
            .collect();
        Generator {
            kind: spec.kind,
            mix: spec.effective_mix(),
            group_size,
            groups_count,
            ops_per_key: if single { u64::MAX } else { spec.ops_per_key },
            groups,
        }
    }

    /// The next operation for client slot `slot`.
    pub fn next(&self, slot: usize, rng: &mut SlotRng) -> PlannedOp {
        let f = self.pick_function(&mut rng.0);
        let group = (slot / self.group_size).min(self.groups_count - 1);
        let mut g = self.groups[group].lock().unwrap_or_else(|e| e.into_inner());
        if g.issued >= self.ops_per_key {
            // Fresh key: keys of group g are g, g + groups, g + 2·groups, … — never shared.
            g.key += self.groups_count as i64;
            g.issued = 0;
            g.next_value = 1;
            g.recent.clear();
        }
        g.issued += 1;
        let key = g.key;
        let value = match f {
            Function::Read | Function::ReadSet => Value::Nil,
            Function::Write | Function::Add => {
                let v = g.next_value;
                g.next_value += 1;
                if f == Function::Write {
                    remember(&mut g.recent, v);
                }
                Value::Int(v)
            }
            Function::Cas => {
                // Half the time the newest value (likely current), else an older one.
                let expected = match g.recent.len() {
                    0 => Value::Nil,
                    n if rng.0.gen_bool(0.5) => Value::Int(g.recent[n - 1]),
                    n => Value::Int(g.recent[rng.0.gen_range(0..n)]),
                };
                let new = g.next_value;
                g.next_value += 1;
                remember(&mut g.recent, new);
                Value::List(vec![expected, Value::Int(new)])
            }
        };
        PlannedOp { f, key, value }
    }

    fn pick_function(&self, rng: &mut StdRng) -> Function {
        let m = self.mix;
        let total = m.read + m.write + m.cas + m.add;
        let mut x = rng.gen_range(0..total);
        let read = if self.kind == WorkloadKind::Set {
            Function::ReadSet
        } else {
            Function::Read
        };
        for (weight, f) in [
            (m.read, read),
            (m.write, Function::Write),
            (m.cas, Function::Cas),
            (m.add, Function::Add),
        ] {
            if x < weight {
                return f;
            }
            x -= weight;
        }
        unreachable!("weights sum to total")
    }

    /// Keys touched so far (for the final reads): every key up to each group's current one.
    pub fn keys_touched(&self) -> Vec<i64> {
        let mut keys = Vec::new();
        for (g, state) in self.groups.iter().enumerate() {
            let current = state.lock().unwrap_or_else(|e| e.into_inner()).key;
            let mut k = g as i64;
            while k <= current {
                keys.push(k);
                k += self.groups_count as i64;
            }
        }
        keys.sort_unstable();
        keys
    }

    /// The read function of this workload.
    pub fn read_function(&self) -> Function {
        if self.kind == WorkloadKind::Set {
            Function::ReadSet
        } else {
            Function::Read
        }
    }
}

fn remember(recent: &mut Vec<i64>, v: i64) {
    const KEEP: usize = 5;
    if recent.len() == KEEP {
        recent.remove(0);
    }
    recent.push(v);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::campaign::parse;
    use std::collections::HashMap;
    use std::path::Path;

    fn spec(yaml: &str) -> WorkloadSpec {
        parse(
            &format!("name: t\nsystem: {{in-memory: {{}}}}\nworkload: {yaml}\n"),
            Path::new("t.yaml"),
        )
        .unwrap()
        .workload
    }

    #[test]
    fn groups_share_a_key_and_move_on_after_the_cap() {
        let g = Generator::new(&spec(
            "{kind: kv, concurrency: 10, group_size: 5, ops_per_key: 20}",
        ));
        let mut rngs: Vec<_> = (0..10).map(|s| SlotRng::new(7, s)).collect();
        let mut per_key: HashMap<i64, (u64, Vec<usize>)> = HashMap::new();
        for _round in 0..40 {
            for (slot, rng) in rngs.iter_mut().enumerate() {
                let op = g.next(slot, rng);
                let e = per_key.entry(op.key).or_default();
                e.0 += 1;
                e.1.push(slot / 5);
            }
        }
        for (key, (count, groups)) in &per_key {
            assert!(*count <= 20, "key {key} got {count} ops, cap is 20");
            assert!(
                groups.iter().all(|g| *g == groups[0]),
                "key {key} shared by two groups"
            );
        }
        assert_eq!(per_key.len(), 400 / 20);
        assert_eq!(g.keys_touched().len(), 20);
    }

    #[test]
    fn written_values_are_unique_per_key() {
        let g = Generator::new(&spec("{kind: cas-register, concurrency: 4}"));
        let mut rng = SlotRng::new(1, 0);
        let mut seen = std::collections::HashSet::new();
        for _ in 0..1000 {
            let op = g.next(0, &mut rng);
            assert_eq!(op.key, 0);
            let written = match (&op.f, &op.value) {
                (Function::Write, Value::Int(v)) => Some(*v),
                (Function::Cas, Value::List(l)) => l[1].as_int(),
                _ => None,
            };
            if let Some(v) = written {
                assert!(seen.insert(v), "value {v} written twice");
            }
        }
        assert!(seen.len() > 300);
    }

    #[test]
    fn same_seed_same_operations() {
        let run = |seed| {
            let g = Generator::new(&spec("{kind: kv}"));
            let mut rng = SlotRng::new(seed, 3);
            (0..50).map(|_| g.next(3, &mut rng)).collect::<Vec<_>>()
        };
        assert_eq!(run(42), run(42));
        assert_ne!(run(42), run(43));
    }

    #[test]
    fn set_workload_adds_and_reads() {
        let g = Generator::new(&spec("{kind: set}"));
        let mut rng = SlotRng::new(1, 0);
        let fs: Vec<_> = (0..200).map(|_| g.next(0, &mut rng).f).collect();
        assert!(fs.contains(&Function::Add) && fs.contains(&Function::ReadSet));
        assert!(!fs.contains(&Function::Write));
    }
}
