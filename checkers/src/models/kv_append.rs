//! Porcupine's key-value model: `get` returns the string, `put` replaces it, `append`
//! concatenates to it. Each key is its own string, initially empty.
//!
//! # Representation
//!
//! States are never built as whole strings: a search meets many states, each one append
//! longer than another, and copying and hashing whole strings made every new state cost
//! time proportional to its length. Instead a state is a node of a trie of pieces: a node is
//! (parent node, piece), the root is the empty string, and a node's string is its parent's
//! followed by its piece. Pieces (appended and put strings) and observed strings are
//! borrowed from the history, never copied.
//!
//! Each node carries its length and a polynomial hash of its string, computed from its
//! parent's in O(1). The hash only decides where to look; equality is always confirmed by
//! comparing bytes, walking the pieces from the end, so a collision costs a comparison and
//! never a wrong verdict.
//!
//! Node ids are canonical: a new node whose string equals an existing node's (found by
//! length and hash, confirmed by bytes) takes that node's id, whatever path built it (a put
//! of "ab" and an append of "b" to "a" land on the same state). The search's memo thus
//! recognises equal states exactly as it would with interned strings.

use super::{unknown_function, Compiled, Model, Outcome, RawOp, StateId};
use crate::history::Value;
use rustc_hash::FxHashMap;
use std::borrow::Cow;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KvAppendOp {
    /// An `ok` get that observed this text.
    Get(u32),
    Put(u32),
    Append(u32),
}

/// Polynomial hashing modulo the Mersenne prime 2^61 - 1: cheap to combine and, unlike
/// arithmetic modulo 2^64, without systematic collisions on strings of repeated patterns.
mod poly {
    const MODULUS: u64 = (1 << 61) - 1;
    const BASE: u64 = 0x1d8e_4e27_c47d_124f % MODULUS;

    pub fn mul(a: u64, b: u64) -> u64 {
        let product = u128::from(a) * u128::from(b);
        let folded = (product as u64 & MODULUS) + (product >> 61) as u64;
        reduce(folded)
    }
    pub fn add(a: u64, b: u64) -> u64 {
        reduce(a + b)
    }
    fn reduce(x: u64) -> u64 {
        if x >= MODULUS {
            x - MODULUS
        } else {
            x
        }
    }
    /// (hash of `bytes`, BASE^len): hash(a ++ b) = hash(a) * BASE^len(b) + hash(b).
    pub fn of(bytes: &[u8]) -> (u64, u64) {
        bytes.iter().fold((0, 1), |(hash, power), &b| {
            (add(mul(hash, BASE), u64::from(b) + 1), mul(power, BASE))
        })
    }
}

/// A string of the history: an appended or put piece, or what a get observed.
#[derive(Debug)]
struct Text<'h> {
    text: Cow<'h, str>,
    hash: u64,
    /// BASE^len, to extend a hash by this text.
    power: u64,
}

#[derive(Debug, Clone, Copy)]
struct Node {
    /// `NONE` for the root (the empty string).
    parent: StateId,
    /// The text that follows the parent's string.
    piece: u32,
    len: u64,
    hash: u64,
    /// The next node with the same length and hash (`NONE` ends the chain).
    same_hash: StateId,
    /// A text known to equal this node's string (`NONE` when none was confirmed yet), so
    /// that repeated gets of the same string compare bytes once.
    equal_text: u32,
}

const NONE: u32 = u32::MAX;
const ROOT: StateId = 0;

#[derive(Debug)]
pub(crate) struct KvAppendModel<'h> {
    texts: Vec<Text<'h>>,
    text_ids: FxHashMap<Cow<'h, str>, u32>,
    nodes: Vec<Node>,
    /// First node of each (length, hash) chain.
    by_content: FxHashMap<(u64, u64), StateId>,
    /// Cached transitions: (state, text) → the state after appending the text.
    appended: FxHashMap<(StateId, u32), StateId>,
}

impl<'h> KvAppendModel<'h> {
    pub fn new() -> Self {
        let root = Node {
            parent: NONE,
            piece: NONE,
            len: 0,
            hash: 0,
            same_hash: NONE,
            equal_text: NONE,
        };
        let mut by_content = FxHashMap::default();
        by_content.insert((0, 0), ROOT);
        KvAppendModel {
            texts: Vec::new(),
            text_ids: FxHashMap::default(),
            nodes: vec![root],
            by_content,
            appended: FxHashMap::default(),
        }
    }

    fn intern(&mut self, text: Cow<'h, str>) -> u32 {
        if let Some(&id) = self.text_ids.get(text.as_ref()) {
            return id;
        }
        let id = u32::try_from(self.texts.len()).expect("fewer than 2^32 strings");
        let (hash, power) = poly::of(text.as_bytes());
        self.texts.push(Text {
            text: text.clone(),
            hash,
            power,
        });
        self.text_ids.insert(text, id);
        id
    }

    /// A value as a string: `nil` is the empty string (a key never written reads as empty).
    fn string_of(value: &'h Value, what: &str) -> Result<&'h str, String> {
        match value {
            Value::Nil => Ok(""),
            Value::Str(s) => Ok(s),
            other => Err(format!("{what} expects a string, found {other}")),
        }
    }

    fn piece(&self, text: u32) -> &[u8] {
        self.texts[text as usize].text.as_bytes()
    }

    /// The pieces of `node`'s string, last first.
    fn pieces_from_end(&self, node: StateId) -> impl Iterator<Item = &[u8]> + '_ {
        std::iter::successors(Some(node), |&n| Some(self.nodes[n as usize].parent))
            .take_while(|&n| n != ROOT && n != NONE)
            .map(|n| self.piece(self.nodes[n as usize].piece))
    }

    /// The state whose string is `parent`'s followed by `text`, created when new.
    fn child(&mut self, parent: StateId, text: u32) -> StateId {
        if let Some(&next) = self.appended.get(&(parent, text)) {
            return next;
        }
        let next = self.find_or_add(parent, text);
        self.appended.insert((parent, text), next);
        next
    }

    fn find_or_add(&mut self, parent: StateId, text: u32) -> StateId {
        let piece = &self.texts[text as usize];
        if piece.text.is_empty() {
            return parent;
        }
        let p = self.nodes[parent as usize];
        let len = p.len + piece.text.len() as u64;
        let hash = poly::add(poly::mul(p.hash, piece.power), piece.hash);
        let first = self.by_content.get(&(len, hash)).copied().unwrap_or(NONE);
        let mut candidate = first;
        while candidate != NONE {
            let joined = std::iter::once(self.piece(text)).chain(self.pieces_from_end(parent));
            if same_bytes_from_end(self.pieces_from_end(candidate), joined) {
                return candidate;
            }
            candidate = self.nodes[candidate as usize].same_hash;
        }
        let id = StateId::try_from(self.nodes.len()).expect("fewer than 2^32 states");
        self.nodes.push(Node {
            parent,
            piece: text,
            len,
            hash,
            same_hash: first,
            equal_text: NONE,
        });
        self.by_content.insert((len, hash), id);
        id
    }

    /// Whether `state`'s string is `text`.
    fn holds(&mut self, state: StateId, text: u32) -> bool {
        let node = self.nodes[state as usize];
        if node.equal_text == text {
            return true;
        }
        let t = &self.texts[text as usize];
        if node.len != t.text.len() as u64 || node.hash != t.hash {
            return false;
        }
        let equal = same_bytes_from_end(
            self.pieces_from_end(state),
            std::iter::once(self.piece(text)),
        );
        if equal {
            self.nodes[state as usize].equal_text = text;
        }
        equal
    }
}

/// Whether two byte strings, each given as pieces from its end, are equal.
fn same_bytes_from_end<'a>(
    mut a: impl Iterator<Item = &'a [u8]>,
    mut b: impl Iterator<Item = &'a [u8]>,
) -> bool {
    let (mut x, mut y): (&[u8], &[u8]) = (&[], &[]);
    loop {
        while x.is_empty() {
            match a.next() {
                Some(piece) => x = piece,
                None => break,
            }
        }
        while y.is_empty() {
            match b.next() {
                Some(piece) => y = piece,
                None => break,
            }
        }
        if x.is_empty() || y.is_empty() {
            return x.is_empty() && y.is_empty();
        }
        let n = x.len().min(y.len());
        let (x_rest, x_tail) = x.split_at(x.len() - n);
        let (y_rest, y_tail) = y.split_at(y.len() - n);
        if x_tail != y_tail {
            return false;
        }
        (x, y) = (x_rest, y_rest);
    }
}

impl<'h> Model<'h> for KvAppendModel<'h> {
    type Op = KvAppendOp;

    fn initial(&mut self, initial: &'h Value) -> StateId {
        let text = match initial {
            Value::Nil => Cow::Borrowed(""),
            Value::Str(s) => Cow::Borrowed(s.as_str()),
            other => Cow::Owned(other.to_string()),
        };
        let text = self.intern(text);
        self.child(ROOT, text)
    }

    fn compile(&mut self, op: &RawOp<'h>) -> Result<Compiled<KvAppendOp>, String> {
        let effect = |model: &mut Self, make: fn(u32) -> KvAppendOp| match op.outcome {
            Outcome::Ok | Outcome::Indeterminate => {
                let s = Self::string_of(op.input, op.f)?;
                Ok(Compiled::Op(make(model.intern(Cow::Borrowed(s)))))
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
                    Ok(Compiled::Op(KvAppendOp::Get(self.intern(Cow::Borrowed(s)))))
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
            KvAppendOp::Get(text) => self.holds(state, text).then_some(state),
            KvAppendOp::Put(text) => Some(self.child(ROOT, text)),
            KvAppendOp::Append(text) => Some(self.child(state, text)),
        }
    }

    fn render(&self, state: StateId) -> String {
        let mut pieces: Vec<&[u8]> = self.pieces_from_end(state).collect();
        pieces.reverse();
        let bytes = pieces.concat();
        // Pieces are whole strings of the history, so their concatenation is valid UTF-8.
        format!("{:?}", String::from_utf8_lossy(&bytes))
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

    fn text(s: &str) -> Value {
        Value::Str(s.into())
    }

    #[test]
    fn append_concatenates_and_get_observes() {
        let mut m = KvAppendModel::new();
        let s0 = m.initial(&Value::Nil);
        let get_empty = compile(&mut m, "get", Value::Nil, Value::Nil);
        let append_x = compile(&mut m, "append", text("x"), Value::Nil);
        let append_y = compile(&mut m, "append", text("y"), Value::Nil);
        let get_xy = compile(&mut m, "get", Value::Nil, text("xy"));
        let put_z = compile(&mut m, "put", text("z"), Value::Nil);
        assert_eq!(m.step(s0, get_empty), Some(s0));
        let s1 = m.step(s0, append_x).unwrap();
        let s2 = m.step(s1, append_y).unwrap();
        assert_eq!(m.step(s2, get_xy), Some(s2));
        // Confirmed once, then answered from the node.
        assert_eq!(m.step(s2, get_xy), Some(s2));
        assert_eq!(m.step(s1, get_xy), None);
        assert_eq!(m.step(s0, get_xy), None);
        let s3 = m.step(s2, put_z).unwrap();
        assert_eq!(m.render(s3), "\"z\"");
        assert_eq!(m.render(s2), "\"xy\"");
        // The same transition again is served from the cache and lands on the same id.
        assert_eq!(m.step(s0, append_x), Some(s1));
    }

    /// Equal strings built along different paths (different pieces, a put) are one state,
    /// so the search's memo sees them as equal.
    #[test]
    fn equal_strings_are_one_state_whatever_built_them() {
        let mut m = KvAppendModel::new();
        let s0 = m.initial(&Value::Nil);
        let append_ab = compile(&mut m, "append", text("ab"), Value::Nil);
        let append_a = compile(&mut m, "append", text("a"), Value::Nil);
        let append_b = compile(&mut m, "append", text("b"), Value::Nil);
        let append_c = compile(&mut m, "append", text("c"), Value::Nil);
        let append_bc = compile(&mut m, "append", text("bc"), Value::Nil);
        let put_abc = compile(&mut m, "put", text("abc"), Value::Nil);
        let append_empty = compile(&mut m, "append", text(""), Value::Nil);
        let whole = m.step(s0, append_ab).and_then(|s| m.step(s, append_c));
        let a = m.step(s0, append_a).unwrap();
        let split = m.step(a, append_bc);
        let one_by_one = m.step(a, append_b).and_then(|s| m.step(s, append_c));
        let put = m.step(s0, put_abc);
        assert!(whole.is_some());
        assert_eq!(split, whole);
        assert_eq!(one_by_one, whole);
        assert_eq!(put, whole);
        assert_eq!(m.step(a, append_empty), Some(a));
        let ab = m.step(s0, append_ab).unwrap();
        assert_ne!(ab, a);
        assert_eq!(m.render(whole.unwrap()), "\"abc\"");
    }

    #[test]
    fn initial_string_is_the_start() {
        let mut m = KvAppendModel::new();
        let s0 = m.initial(Box::leak(Box::new(text("pre"))));
        let get_pre = compile(&mut m, "get", Value::Nil, text("pre"));
        let get_empty = compile(&mut m, "get", Value::Nil, Value::Nil);
        let append_x = compile(&mut m, "append", text("x"), Value::Nil);
        let get_prex = compile(&mut m, "get", Value::Nil, text("prex"));
        assert_eq!(m.step(s0, get_pre), Some(s0));
        assert_eq!(m.step(s0, get_empty), None);
        let s1 = m.step(s0, append_x).unwrap();
        assert_eq!(m.step(s1, get_prex), Some(s1));
    }

    #[test]
    fn comparing_pieces_from_the_end_handles_any_split() {
        let eq = |a: &[&str], b: &[&str]| {
            same_bytes_from_end(
                a.iter().rev().map(|s| s.as_bytes()),
                b.iter().rev().map(|s| s.as_bytes()),
            )
        };
        assert!(eq(&["ab", "c"], &["a", "bc"]));
        assert!(eq(&["", "abc", ""], &["a", "", "b", "c"]));
        assert!(eq(&[], &[""]));
        assert!(!eq(&["ab", "c"], &["a", "bd"]));
        assert!(!eq(&["ab"], &["xab"]));
        assert!(!eq(&["xab"], &["ab"]));
    }

    #[test]
    fn hashes_combine_like_concatenation() {
        let (ha, pa) = poly::of(b"hello ");
        let (hb, pb) = poly::of(b"world");
        let (hab, pab) = poly::of(b"hello world");
        assert_eq!(poly::add(poly::mul(ha, pb), hb), hab);
        assert_eq!(poly::mul(pa, pb), pab);
        assert_ne!(poly::of(b"ab").0, poly::of(b"ba").0);
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
