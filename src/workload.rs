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
//!
//! Transactional workloads (`list-append`, `rw-register`) follow Jepsen's (Elle's)
//! generators instead: every operation is one transaction of 1 to `max_txn_length`
//! micro-operations over a rotating pool of `key_count` active keys. Each micro-operation
//! reads or writes (appends) one key of the pool, as the mix weighs them, so read-only,
//! write-only and mixed transactions all occur. Written values are unique per key (a
//! per-key counter); a key retires after `max_writes_per_key` writes and a fresh key takes
//! its place in the pool, so no key's version order grows without bound. The final reads
//! read every key ever used, one transaction per key.

use crate::campaign::{Mix, WorkloadKind, WorkloadSpec};
pub use crate::system::txn::{
    check_completion, completed_txn_value, parse_txn, txn_value, MicroOp, ReadValue, TxnValueError,
};
use crate::system::Function;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use splitbrain_checkers::Value;
use std::collections::HashMap;
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
    /// The pool of a transactional workload (`None` for the independent-keys shape).
    txn: Option<TxnGenerator>,
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
            txn: TxnGenerator::for_spec(spec),
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
        if let Some(txn) = &self.txn {
            return txn.next(&mut rng.0);
        }
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
            // Transactions come from the transactional generator, never from here.
            Function::Read | Function::ReadSet | Function::Txn => Value::Nil,
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
        if let Some(txn) = &self.txn {
            return txn.keys_touched();
        }
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
        if self.txn.is_some() {
            Function::Txn
        } else if self.kind == WorkloadKind::Set {
            Function::ReadSet
        } else {
            Function::Read
        }
    }

    /// The final read of `key`: a plain read, or a transaction reading only `key`.
    pub fn final_read(&self, key: i64) -> PlannedOp {
        match &self.txn {
            Some(_) => PlannedOp {
                f: Function::Txn,
                key: 0,
                value: txn_value(&[MicroOp::Read { key }]),
            },
            None => PlannedOp {
                f: self.read_function(),
                key,
                value: Value::Nil,
            },
        }
    }
}

/// The rotating pool of active keys of a transactional workload.
struct KeyPool {
    /// The active keys; a retired key's slot goes to a fresh key.
    active: Vec<i64>,
    /// Writes so far to each active key (also its last written value: values count up).
    writes: HashMap<i64, u64>,
    /// The next fresh key; every key below it has been used.
    next_key: i64,
}

/// Jepsen's transactional generator (list-append and rw-register).
struct TxnGenerator {
    list_append: bool,
    max_txn_length: usize,
    max_writes_per_key: u64,
    /// Weights of reads and writes among micro-operations.
    read_weight: u32,
    write_weight: u32,
    pool: Mutex<KeyPool>,
}

impl TxnGenerator {
    fn for_spec(spec: &WorkloadSpec) -> Option<TxnGenerator> {
        let list_append = match spec.kind {
            WorkloadKind::ListAppend => true,
            WorkloadKind::RwRegister => false,
            _ => return None,
        };
        let mix = spec.effective_mix();
        let key_count = spec.key_count.max(1);
        Some(TxnGenerator {
            list_append,
            max_txn_length: spec.max_txn_length.max(1),
            max_writes_per_key: spec.max_writes_per_key.max(1),
            read_weight: mix.read,
            write_weight: mix.write,
            pool: Mutex::new(KeyPool {
                active: (0..key_count as i64).collect(),
                writes: HashMap::new(),
                next_key: key_count as i64,
            }),
        })
    }

    fn next(&self, rng: &mut StdRng) -> PlannedOp {
        let length = rng.gen_range(1..=self.max_txn_length);
        let mut pool = self.pool.lock().unwrap_or_else(|e| e.into_inner());
        let ops: Vec<MicroOp> = (0..length)
            .map(|_| {
                let slot = rng.gen_range(0..pool.active.len());
                let key = pool.active[slot];
                let read =
                    rng.gen_range(0..self.read_weight + self.write_weight) < self.read_weight;
                if read {
                    return MicroOp::Read { key };
                }
                let written = pool.writes.entry(key).or_insert(0);
                *written += 1;
                let value = *written as i64;
                if *written >= self.max_writes_per_key {
                    // Retired: a fresh key takes its place in the pool.
                    pool.writes.remove(&key);
                    pool.active[slot] = pool.next_key;
                    pool.next_key += 1;
                }
                if self.list_append {
                    MicroOp::Append { key, value }
                } else {
                    MicroOp::Write { key, value }
                }
            })
            .collect();
        PlannedOp {
            f: Function::Txn,
            key: 0,
            value: txn_value(&ops),
        }
    }

    fn keys_touched(&self) -> Vec<i64> {
        let pool = self.pool.lock().unwrap_or_else(|e| e.into_inner());
        (0..pool.next_key).collect()
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

    fn txn_spec(yaml: &str) -> WorkloadSpec {
        parse(
            &format!("name: t\nsystem: {{etcd: {{}}}}\nworkload: {yaml}\n"),
            Path::new("t.yaml"),
        )
        .unwrap()
        .workload
    }

    #[test]
    fn transactions_are_bounded_rotate_their_keys_and_write_unique_values() {
        let g = Generator::new(&txn_spec(
            "{kind: list-append, key_count: 3, max_txn_length: 5, max_writes_per_key: 4}",
        ));
        let mut rngs: Vec<_> = (0..4).map(|s| SlotRng::new(9, s)).collect();
        let mut writes: HashMap<i64, Vec<i64>> = HashMap::new();
        let (mut read_only, mut write_only) = (0, 0);
        let mut lengths = std::collections::BTreeSet::new();
        for round in 0..500 {
            let slot = round % 4;
            let op = g.next(slot, &mut rngs[slot]);
            assert_eq!(op.f, Function::Txn);
            let ops = parse_txn(&op.value).unwrap();
            assert!((1..=5).contains(&ops.len()), "{}", op.value);
            lengths.insert(ops.len());
            // Reads are invoked without a result.
            for item in op.value.as_list().unwrap() {
                if item.as_list().unwrap()[0] == Value::Str("r".into()) {
                    assert_eq!(item.as_list().unwrap()[2], Value::Nil);
                }
            }
            let wrote = ops
                .iter()
                .filter(|o| !matches!(o, MicroOp::Read { .. }))
                .count();
            read_only += usize::from(wrote == 0);
            write_only += usize::from(wrote == ops.len());
            for o in ops {
                match o {
                    MicroOp::Append { key, value } => writes.entry(key).or_default().push(value),
                    MicroOp::Write { .. } => panic!("list-append writes by appending"),
                    MicroOp::Read { .. } => {}
                }
            }
        }
        assert_eq!(lengths.len(), 5, "every length from 1 to 5 occurs");
        assert!(
            read_only > 20 && write_only > 20,
            "{read_only} {write_only}"
        );
        for (key, values) in &writes {
            assert!(
                values.len() <= 4,
                "key {key} written {} times",
                values.len()
            );
            let mut unique = values.clone();
            unique.dedup();
            assert_eq!(&unique, values, "key {key}: values unique and counting up");
        }
        // Keys retired: many more keys than the pool holds, and the final reads read all.
        let touched = g.keys_touched();
        assert!(touched.len() > 100, "{}", touched.len());
        assert_eq!(touched, (0..touched.len() as i64).collect::<Vec<_>>());
        assert!(writes.keys().all(|k| touched.contains(k)));
        let last = g.final_read(touched[5]);
        assert_eq!(last.f, Function::Txn);
        assert_eq!(
            parse_txn(&last.value).unwrap(),
            vec![MicroOp::Read { key: touched[5] }]
        );
    }

    #[test]
    fn transactions_are_the_same_for_the_same_seed() {
        let run = |seed| {
            let g = Generator::new(&txn_spec("{kind: rw-register}"));
            let mut rng = SlotRng::new(seed, 0);
            (0..100).map(|_| g.next(0, &mut rng)).collect::<Vec<_>>()
        };
        assert_eq!(run(5), run(5));
        assert_ne!(run(5), run(6));
        let ops: Vec<MicroOp> = run(5)
            .iter()
            .flat_map(|op| parse_txn(&op.value).unwrap())
            .collect();
        assert!(ops.iter().any(|o| matches!(o, MicroOp::Write { .. })));
        assert!(!ops.iter().any(|o| matches!(o, MicroOp::Append { .. })));
    }

    #[test]
    fn a_completed_transaction_is_the_request_with_its_reads_filled_in() {
        let ops = [
            MicroOp::Append { key: 1, value: 2 },
            MicroOp::Read { key: 1 },
            MicroOp::Read { key: 3 },
        ];
        let requested = txn_value(&ops);
        let done = completed_txn_value(
            &ops,
            &[
                None,
                Some(ReadValue::List(vec![1, 2])),
                Some(ReadValue::Register(None)),
            ],
        );
        assert_eq!(
            serde_json::to_string(&done).unwrap(),
            r#"[["append",1,2],["r",1,[1,2]],["r",3,null]]"#
        );
        assert_eq!(check_completion(&requested, &done), Ok(()));
        // A reply that changed a write, dropped a micro-operation or read garbage.
        let changed = completed_txn_value(
            &[MicroOp::Append { key: 1, value: 9 }, ops[1], ops[2]],
            &[None, None, None],
        );
        assert!(check_completion(&requested, &changed).is_err());
        let short = txn_value(&ops[..2]);
        assert!(check_completion(&requested, &short).is_err());
        let garbage = Value::List(vec![
            ops[0].to_value(None),
            Value::List(vec![
                Value::Str("r".into()),
                Value::Int(1),
                Value::Str("x".into()),
            ]),
            ops[2].to_value(None),
        ]);
        assert!(check_completion(&requested, &garbage).is_err());
        assert!(parse_txn(&Value::Int(3)).is_err());
        assert!(parse_txn(&Value::List(vec![Value::List(vec![
            Value::Str("cas".into()),
            Value::Int(1),
            Value::Int(2)
        ])]))
        .is_err());
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
