//! Porcupine's key-value model: `get` returns the string, `put` replaces it, `append`
//! concatenates to it. Each key is its own string, initially empty.
//!
//! Every string the search meets (states, put and appended pieces, observed values) is
//! interned once; an append is a cached transition between string ids.

use super::{unknown_function, Compiled, Model, Outcome, RawOp, StateId};
use crate::history::Value;
use rustc_hash::FxHashMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KvAppendOp {
    /// An `ok` get that observed this string.
    Get(u32),
    Put(u32),
    Append(u32),
}

#[derive(Debug, Default)]
pub(crate) struct KvAppendModel {
    ids: FxHashMap<String, u32>,
    strings: Vec<String>,
    appended: FxHashMap<(StateId, u32), StateId>,
}

impl KvAppendModel {
    pub fn new() -> Self {
        Self::default()
    }

    fn intern(&mut self, s: String) -> u32 {
        if let Some(&id) = self.ids.get(&s) {
            return id;
        }
        let id = u32::try_from(self.strings.len()).expect("fewer than 2^32 strings");
        self.strings.push(s.clone());
        self.ids.insert(s, id);
        id
    }

    /// A value as a string: `nil` is the empty string (a key never written reads as empty).
    fn string_of(value: &Value, what: &str) -> Result<String, String> {
        match value {
            Value::Nil => Ok(String::new()),
            Value::Str(s) => Ok(s.clone()),
            other => Err(format!("{what} expects a string, found {other}")),
        }
    }
}

impl<'h> Model<'h> for KvAppendModel {
    type Op = KvAppendOp;

    fn initial(&mut self, initial: &'h Value) -> StateId {
        let s = match initial {
            Value::Nil => String::new(),
            Value::Str(s) => s.clone(),
            other => other.to_string(),
        };
        self.intern(s)
    }

    fn compile(&mut self, op: &RawOp<'h>) -> Result<Compiled<KvAppendOp>, String> {
        let effect = |model: &mut Self, make: fn(u32) -> KvAppendOp| match op.outcome {
            Outcome::Ok | Outcome::Indeterminate => {
                let s = Self::string_of(op.input, op.f)?;
                Ok(Compiled::Op(make(model.intern(s))))
            }
            Outcome::Failed { .. } => {
                Self::string_of(op.input, op.f)?;
                Ok(Compiled::Drop)
            }
        };
        match op.f {
            "get" => match op.outcome {
                Outcome::Ok => {
                    let s = Self::string_of(op.output, "get")?;
                    Ok(Compiled::Op(KvAppendOp::Get(self.intern(s))))
                }
                Outcome::Indeterminate | Outcome::Failed { .. } => Ok(Compiled::Drop),
            },
            "put" => effect(self, KvAppendOp::Put),
            "append" => effect(self, KvAppendOp::Append),
            f => Err(unknown_function("kv-append", f, "get, put or append")),
        }
    }

    fn step(&mut self, state: StateId, op: KvAppendOp) -> Option<StateId> {
        match op {
            KvAppendOp::Get(s) => (state == s).then_some(state),
            KvAppendOp::Put(s) => Some(s),
            KvAppendOp::Append(piece) => {
                if let Some(&next) = self.appended.get(&(state, piece)) {
                    return Some(next);
                }
                let joined = format!(
                    "{}{}",
                    self.strings[state as usize], self.strings[piece as usize]
                );
                let next = self.intern(joined);
                self.appended.insert((state, piece), next);
                Some(next)
            }
        }
    }

    fn render(&self, state: StateId) -> String {
        format!("{:?}", self.strings[state as usize])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn compile(m: &mut KvAppendModel, f: &'static str, input: Value, output: Value) -> KvAppendOp {
        let input = Box::leak(Box::new(input));
        let output = Box::leak(Box::new(output));
        let raw = RawOp {
            f,
            input,
            output,
            outcome: Outcome::Ok,
        };
        match m.compile(&raw).unwrap() {
            Compiled::Op(o) => o,
            Compiled::Drop => panic!("dropped"),
        }
    }

    #[test]
    fn append_concatenates_and_get_observes() {
        let mut m = KvAppendModel::new();
        let s0 = m.initial(&Value::Nil);
        let get_empty = compile(&mut m, "get", Value::Nil, Value::Nil);
        let append_x = compile(&mut m, "append", Value::Str("x".into()), Value::Nil);
        let append_y = compile(&mut m, "append", Value::Str("y".into()), Value::Nil);
        let get_xy = compile(&mut m, "get", Value::Nil, Value::Str("xy".into()));
        let put_z = compile(&mut m, "put", Value::Str("z".into()), Value::Nil);
        assert_eq!(m.step(s0, get_empty), Some(s0));
        let s1 = m.step(s0, append_x).unwrap();
        let s2 = m.step(s1, append_y).unwrap();
        assert_eq!(m.step(s2, get_xy), Some(s2));
        assert_eq!(m.step(s1, get_xy), None);
        let s3 = m.step(s2, put_z).unwrap();
        assert_eq!(m.render(s3), "\"z\"");
        // The same transition again is served from the cache and lands on the same id.
        assert_eq!(m.step(s0, append_x), Some(s1));
    }

    #[test]
    fn non_string_values_are_errors() {
        let mut m = KvAppendModel::new();
        let raw = RawOp {
            f: "append",
            input: Box::leak(Box::new(Value::Int(3))),
            output: &Value::Nil,
            outcome: Outcome::Ok,
        };
        assert!(m.compile(&raw).unwrap_err().contains("expects a string"));
        let raw = RawOp { f: "cas", ..raw };
        assert!(m.compile(&raw).unwrap_err().contains("get, put or append"));
    }
}
