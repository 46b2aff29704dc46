//! Registers: `register` (read/write), `cas-register` and `kv` (read/write/cas).
//!
//! The state is the interned id of the value the register holds, so a step is an integer
//! comparison.
//!
//! An `ok` read of nil is read as the value nil by default; with [`NilReads::Unknown`]
//! (Knossos' reading) it matches any state, so it constrains nothing and is dropped.

use super::{unknown_function, Compiled, Model, Outcome, RawOp, StateId, ValueInterner};
use crate::history::Value;
use crate::linearizability::NilReads;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RegisterOp {
    /// An `ok` read that observed this value.
    Read(u32),
    Write(u32),
    Cas {
        expected: u32,
        new: u32,
    },
    /// A failed cas read as an observation: legal only where the register did not hold
    /// `expected`; changes nothing.
    CasFailed {
        expected: u32,
    },
}

#[derive(Debug)]
pub(crate) struct RegisterModel<'h> {
    values: ValueInterner<'h>,
    with_cas: bool,
    name: &'static str,
    nil_reads: NilReads,
}

impl RegisterModel<'_> {
    /// `with_cas` selects cas-register (and kv) over plain register.
    pub fn new(name: &'static str, with_cas: bool) -> Self {
        RegisterModel {
            values: ValueInterner::default(),
            with_cas,
            name,
            nil_reads: NilReads::Value,
        }
    }

    /// How an `ok` read of nil is read.
    pub fn with_nil_reads(mut self, nil_reads: NilReads) -> Self {
        self.nil_reads = nil_reads;
        self
    }
}

impl<'h> Model<'h> for RegisterModel<'h> {
    type Op = RegisterOp;

    fn initial(&mut self, initial: &'h Value) -> StateId {
        self.values.intern(initial)
    }

    fn compile(&mut self, op: &RawOp<'h>) -> Result<Compiled<RegisterOp>, String> {
        match op.f {
            "read" => Ok(match op.outcome {
                // Knossos' reading: a nil read matches any state, so it constrains nothing.
                Outcome::Ok if op.output.is_nil() && self.nil_reads == NilReads::Unknown => {
                    Compiled::Drop
                }
                Outcome::Ok => Compiled::Op(RegisterOp::Read(self.values.intern(op.output))),
                // A read that failed or crashed changes nothing and observed nothing.
                Outcome::Indeterminate | Outcome::Failed { .. } => Compiled::Drop,
            }),
            "write" => Ok(match op.outcome {
                Outcome::Ok | Outcome::Indeterminate => {
                    Compiled::Op(RegisterOp::Write(self.values.intern(op.input)))
                }
                Outcome::Failed { .. } => Compiled::Drop,
            }),
            "cas" if self.with_cas => {
                let Some([expected, new]) = op.input.as_list() else {
                    return Err(format!(
                        "cas expects a value [expected new], found {}",
                        op.input
                    ));
                };
                let expected = self.values.intern(expected);
                let new = self.values.intern(new);
                Ok(match op.outcome {
                    Outcome::Ok | Outcome::Indeterminate => {
                        Compiled::Op(RegisterOp::Cas { expected, new })
                    }
                    Outcome::Failed { observes: true } => {
                        Compiled::Op(RegisterOp::CasFailed { expected })
                    }
                    Outcome::Failed { observes: false } => Compiled::Drop,
                })
            }
            f => Err(unknown_function(
                self.name,
                f,
                if self.with_cas {
                    "read, write or cas"
                } else {
                    "read or write"
                },
            )),
        }
    }

    fn step(&mut self, state: StateId, op: RegisterOp) -> Option<StateId> {
        match op {
            RegisterOp::Read(v) => (state == v).then_some(state),
            RegisterOp::Write(v) => Some(v),
            RegisterOp::Cas { expected, new } => (state == expected).then_some(new),
            RegisterOp::CasFailed { expected } => (state != expected).then_some(state),
        }
    }

    fn render(&self, state: StateId) -> String {
        self.values.value(state).to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw<'h>(f: &'h str, input: &'h Value, output: &'h Value, outcome: Outcome) -> RawOp<'h> {
        RawOp {
            f,
            input,
            output,
            outcome,
        }
    }

    fn op(m: &mut RegisterModel<'static>, r: RawOp<'static>) -> RegisterOp {
        match m.compile(&r).unwrap() {
            Compiled::Op(o) => o,
            Compiled::Drop => panic!("dropped {r:?}"),
        }
    }

    static NIL: Value = Value::Nil;
    static ONE: Value = Value::Int(1);
    static TWO: Value = Value::Int(2);

    #[test]
    fn read_write_and_cas_follow_the_register() {
        let cas_1_2 = Box::leak(Box::new(Value::List(vec![Value::Int(1), Value::Int(2)])));
        let mut m = RegisterModel::new("cas-register", true);
        let s0 = m.initial(&NIL);
        let read_nil = op(&mut m, raw("read", &NIL, &NIL, Outcome::Ok));
        let read_one = op(&mut m, raw("read", &NIL, &ONE, Outcome::Ok));
        let write_one = op(&mut m, raw("write", &ONE, &ONE, Outcome::Ok));
        let cas = op(&mut m, raw("cas", cas_1_2, cas_1_2, Outcome::Ok));
        assert_eq!(m.step(s0, read_nil), Some(s0));
        assert_eq!(m.step(s0, read_one), None);
        let s1 = m.step(s0, write_one).unwrap();
        assert_eq!(m.render(s1), "1");
        assert_eq!(m.step(s1, read_one), Some(s1));
        assert_eq!(m.step(s0, cas), None, "cas from nil expecting 1");
        let s2 = m.step(s1, cas).unwrap();
        assert_eq!(m.render(s2), "2");
    }

    #[test]
    fn failed_cas_is_dropped_or_observes_the_mismatch() {
        let cas_1_2 = Box::leak(Box::new(Value::List(vec![Value::Int(1), Value::Int(2)])));
        let mut m = RegisterModel::new("cas-register", true);
        let s_nil = m.initial(&NIL);
        let dropped = m
            .compile(&raw(
                "cas",
                cas_1_2,
                &NIL,
                Outcome::Failed { observes: false },
            ))
            .unwrap();
        assert_eq!(dropped, Compiled::Drop);
        let observed = op(
            &mut m,
            raw("cas", cas_1_2, &NIL, Outcome::Failed { observes: true }),
        );
        let write_one = op(&mut m, raw("write", &ONE, &ONE, Outcome::Ok));
        let s1 = m.step(s_nil, write_one).unwrap();
        assert_eq!(m.step(s_nil, observed), Some(s_nil));
        assert_eq!(
            m.step(s1, observed),
            None,
            "the register held the expected 1"
        );
    }

    #[test]
    fn a_nil_read_is_the_value_nil_or_matches_anything() {
        let mut strict = RegisterModel::new("register", false);
        let s0 = strict.initial(&NIL);
        let write_one = op(&mut strict, raw("write", &ONE, &ONE, Outcome::Ok));
        let read_nil = op(&mut strict, raw("read", &NIL, &NIL, Outcome::Ok));
        let s1 = strict.step(s0, write_one).unwrap();
        assert_eq!(strict.step(s1, read_nil), None, "nil after a write");
        assert_eq!(strict.step(s0, read_nil), Some(s0));

        for with_cas in [false, true] {
            let mut knossos =
                RegisterModel::new("register", with_cas).with_nil_reads(NilReads::Unknown);
            assert_eq!(
                knossos
                    .compile(&raw("read", &NIL, &NIL, Outcome::Ok))
                    .unwrap(),
                Compiled::Drop
            );
            assert!(matches!(
                knossos
                    .compile(&raw("read", &NIL, &ONE, Outcome::Ok))
                    .unwrap(),
                Compiled::Op(RegisterOp::Read(_))
            ));
        }
    }

    #[test]
    fn crashed_reads_are_dropped_and_crashed_writes_kept() {
        let mut m = RegisterModel::new("register", false);
        assert_eq!(
            m.compile(&raw("read", &NIL, &NIL, Outcome::Indeterminate))
                .unwrap(),
            Compiled::Drop
        );
        assert!(matches!(
            m.compile(&raw("write", &TWO, &NIL, Outcome::Indeterminate))
                .unwrap(),
            Compiled::Op(RegisterOp::Write(_))
        ));
    }

    #[test]
    fn misshapen_operations_are_errors() {
        let mut plain = RegisterModel::new("register", false);
        let err = plain
            .compile(&raw("cas", &ONE, &ONE, Outcome::Ok))
            .unwrap_err();
        assert!(err.contains("no function `cas`"), "{err}");
        let mut cas = RegisterModel::new("cas-register", true);
        let err = cas
            .compile(&raw("cas", &ONE, &ONE, Outcome::Ok))
            .unwrap_err();
        assert!(err.contains("[expected new]"), "{err}");
        let err = cas
            .compile(&raw("add", &ONE, &ONE, Outcome::Ok))
            .unwrap_err();
        assert!(err.contains("read, write or cas"), "{err}");
    }
}
