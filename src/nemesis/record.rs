//! What the nemesis writes into the history: the `f` of each fault event and its `value`, a
//! [`FaultRecord`]. The nemesis writes records with [`FaultRecord::to_value`]; the analysis
//! reads them back with [`FaultRecord::from_value`]. Nothing else looks inside a nemesis
//! event's value.
//!
//! Each kind names its events ([`FaultKind::start_event`], [`FaultKind::stop_event`]).
//!
//! A fault is four events: the start's invocation (the plan: what was asked), its completion
//! (what was done, how long it took, the evidence it took effect), the stop's invocation (the
//! fault's id) and its completion (what undoing did, the evidence after the heal).

use super::faults::FaultKind;
use serde::{Deserialize, Deserializer, Serialize};
use splitbrain_checkers::Value;
use std::collections::BTreeMap;

/// Whether a nemesis event's `f` undoes a fault (anything else starts one): this nemesis'
/// stop events, and the `heal` and `stop…` of other tools' histories (Jepsen's).
pub fn is_stop_event(f: &str) -> bool {
    FaultKind::all().any(|k| k.stop_event() == f) || f == "heal" || f.starts_with("stop")
}

/// The fault kind of a start event's `f`, as the analysis names it (`partition`, `pause`,
/// `clock-bump`, …; another tool's `start-x` is `x`).
pub fn kind_of_start(f: &str) -> String {
    f.strip_prefix("start-").unwrap_or(f).to_owned()
}

/// Which nodes a planned fault hits: named nodes, or a role resolved when the fault starts
/// (`primaries`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum PlannedTargets {
    Nodes(Vec<String>),
    Role(String),
}

impl PlannedTargets {
    fn text(&self) -> String {
        match self {
            PlannedTargets::Nodes(nodes) => nodes.join(", "),
            PlannedTargets::Role(role) => role.clone(),
        }
    }
}

/// The `value` of a nemesis event. Every field is optional: each event fills in what it
/// knows, and a history written by another tool may hold any of them, or none.
///
/// Reading is lenient ([`FaultRecord::from_value`]): a field of an unexpected type (another
/// tool's history) is left empty rather than failing the analysis.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct FaultRecord {
    /// The fault's id: pairs a start with its stop.
    #[serde(
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient::int"
    )]
    pub id: Option<i64>,
    /// Planned: how long the fault is held.
    #[serde(
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient::int"
    )]
    pub hold_ms: Option<i64>,
    /// How long applying (or undoing) took, µs.
    #[serde(
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient::int"
    )]
    pub took_us: Option<i64>,
    /// How late the fault was in force against its schedule, µs.
    #[serde(
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient::int"
    )]
    pub lateness_us: Option<i64>,
    /// A partition's shape (`majority`, `bridge`, …).
    #[serde(
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient::text"
    )]
    pub shape: Option<String>,
    /// Planned: who is hit.
    #[serde(
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient::targets"
    )]
    pub targets: Option<PlannedTargets>,
    /// A partition's grudge: node → the nodes it does not hear.
    #[serde(
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient::grudge"
    )]
    pub grudge: Option<BTreeMap<String, Vec<String>>>,
    /// Planned clock bump offsets, one per target.
    #[serde(
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "lenient::ints"
    )]
    pub offsets_ms: Vec<i64>,
    /// Planned clock strobe offset and period.
    #[serde(
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient::int"
    )]
    pub offset_ms: Option<i64>,
    #[serde(
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient::int"
    )]
    pub period_ms: Option<i64>,
    /// Planned packet loss or duplication percentage.
    #[serde(
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient::int"
    )]
    pub percent: Option<i64>,
    /// Planned packet delay, its jitter, and the largest reorder delay, µs.
    #[serde(
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient::int"
    )]
    pub mean_us: Option<i64>,
    #[serde(
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient::int"
    )]
    pub jitter_us: Option<i64>,
    #[serde(
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient::int"
    )]
    pub max_delay_us: Option<i64>,
    /// The nodes a fault was applied to (or undone at).
    #[serde(
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "lenient::strings"
    )]
    pub nodes: Vec<String>,
    /// Clock offsets set (`n1: +5s`, or a strobe's `0 / +5s every 100ms`).
    #[serde(
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "lenient::strings"
    )]
    pub offsets: Vec<String>,
    /// The mechanism used (`routes`, `nftables`, `netem`, `netfilter`).
    #[serde(
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient::text"
    )]
    pub backend: Option<String>,
    /// Packet shaping applied, described (`100ms ± 10ms`, `each packet 0..50ms`, `20%`).
    #[serde(
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient::text"
    )]
    pub delay: Option<String>,
    #[serde(
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient::text"
    )]
    pub reorder: Option<String>,
    #[serde(
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient::text"
    )]
    pub duplicate: Option<String>,
    /// Kernel rules installed, per namespace.
    #[serde(
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "lenient::strings"
    )]
    pub rules: Vec<String>,
    /// NFQUEUE queues holding packets.
    #[serde(
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "lenient::strings"
    )]
    pub queues: Vec<String>,
    /// Packets seen duplicated (the evidence of a duplication fault).
    #[serde(
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient::int"
    )]
    pub duplicated_packets: Option<i64>,
    /// What was read back to show the fault took effect (or was undone).
    #[serde(
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "lenient::strings"
    )]
    pub evidence: Vec<String>,
    /// Clocks read back from the nodes.
    #[serde(
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "lenient::strings"
    )]
    pub observed: Vec<String>,
    /// What the evidence says: in effect or not; absent when the fault cannot tell.
    #[serde(
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient::boolean"
    )]
    pub effective: Option<bool>,
    /// Why targets differ from the plan (e.g. no leader known, a fallback used).
    #[serde(
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient::text"
    )]
    pub note: Option<String>,
    /// Why the feedback nemesis chose this fault (its arm's score and what it is made of).
    #[serde(
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient::text"
    )]
    pub chosen_for: Option<String>,
    /// Every node's role just before the fault and once healed (`n1: leader (term 3)`).
    #[serde(
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "lenient::strings"
    )]
    pub roles_before: Vec<String>,
    #[serde(
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "lenient::strings"
    )]
    pub roles_after: Vec<String>,
}

impl FaultRecord {
    /// A record holding only the fault's id.
    pub fn with_id(id: usize) -> FaultRecord {
        FaultRecord {
            id: Some(id as i64),
            ..FaultRecord::default()
        }
    }

    /// The history value of this record (a map of its non-empty fields).
    pub fn to_value(&self) -> Value {
        serde_json::to_value(self)
            .and_then(serde_json::from_value)
            .expect("a fault record is plain data")
    }

    /// Reads the value of a nemesis event, whether its keys are strings (JSONL) or keywords
    /// (EDN). A value that is not a map (another tool's `:majority`) is an empty record.
    pub fn from_value(value: &Value) -> FaultRecord {
        if !matches!(value, Value::Map(_)) {
            return FaultRecord::default();
        }
        serde_json::to_value(value)
            .and_then(serde_json::from_value)
            .unwrap_or_default()
    }

    /// Takes every field `other` sets (the details and evidence of applying or undoing).
    pub fn merge(&mut self, other: FaultRecord) {
        let json = |r: &FaultRecord| serde_json::to_value(r).expect("plain data");
        let mut mine = json(self);
        if let (Some(mine), serde_json::Value::Object(theirs)) =
            (mine.as_object_mut(), json(&other))
        {
            mine.extend(theirs);
        }
        *self = serde_json::from_value(mine).expect("a fault record reads back");
    }

    /// One line for people: shape, nodes, offsets, loss, note.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(shape) = &self.shape {
            parts.push(shape.clone());
        }
        if !self.nodes.is_empty() {
            parts.push(format!("nodes {}", self.nodes.join(", ")));
        } else if let Some(targets) = &self.targets {
            parts.push(format!("nodes {}", targets.text()));
        }
        if !self.offsets.is_empty() {
            parts.push(format!("offsets {}", self.offsets.join(", ")));
        }
        if let Some(percent) = self.percent {
            parts.push(format!("{percent}% loss"));
        }
        if let Some(note) = &self.note {
            parts.push(note.clone());
        }
        parts.join("; ")
    }
}

/// Field readers that leave a field empty instead of failing on an unexpected type.
mod lenient {
    use super::{Deserialize, Deserializer, PlannedTargets};
    use serde_json::Value as Json;
    use std::collections::BTreeMap;

    fn text_of(v: &Json) -> String {
        match v {
            Json::String(s) => s.clone(),
            Json::Array(items) => items.iter().map(text_of).collect::<Vec<_>>().join(", "),
            other => other.to_string(),
        }
    }

    fn any<'de, D: Deserializer<'de>>(d: D) -> Result<Json, D::Error> {
        Json::deserialize(d)
    }

    pub fn int<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
        Ok(any(d)?.as_i64())
    }

    pub fn boolean<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
        Ok(any(d)?.as_bool())
    }

    pub fn text<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
        Ok(match any(d)? {
            Json::Null => None,
            v => Some(text_of(&v)),
        })
    }

    /// A list of anything as texts; a single value as a one-item list.
    pub fn strings<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
        Ok(match any(d)? {
            Json::Null => Vec::new(),
            Json::Array(items) => items.iter().map(text_of).collect(),
            v => vec![text_of(&v)],
        })
    }

    pub fn ints<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<i64>, D::Error> {
        Ok(match any(d)? {
            Json::Array(items) => items.iter().filter_map(Json::as_i64).collect(),
            v => v.as_i64().into_iter().collect(),
        })
    }

    pub fn targets<'de, D: Deserializer<'de>>(d: D) -> Result<Option<PlannedTargets>, D::Error> {
        Ok(match any(d)? {
            Json::Null => None,
            Json::String(role) => Some(PlannedTargets::Role(role)),
            Json::Array(items) => Some(PlannedTargets::Nodes(items.iter().map(text_of).collect())),
            v => Some(PlannedTargets::Role(text_of(&v))),
        })
    }

    pub fn grudge<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<BTreeMap<String, Vec<String>>>, D::Error> {
        Ok(match any(d)? {
            Json::Object(map) => Some(
                map.into_iter()
                    .map(|(node, deaf_to)| {
                        let deaf_to = match deaf_to {
                            Json::Array(items) => items.iter().map(text_of).collect(),
                            v => vec![text_of(&v)],
                        };
                        (node, deaf_to)
                    })
                    .collect(),
            ),
            _ => None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: Vec<(Value, Value)>) -> Value {
        Value::Map(pairs)
    }

    #[test]
    fn a_record_reads_back_as_written() {
        let record = FaultRecord {
            id: Some(3),
            took_us: Some(1200),
            shape: Some("majority".into()),
            grudge: Some(BTreeMap::from([("n1".into(), vec!["n2".into()])])),
            targets: Some(PlannedTargets::Role("primaries".into())),
            nodes: vec!["n1".into(), "n2".into()],
            evidence: vec!["n1->n2: unreachable".into()],
            effective: Some(true),
            roles_before: vec!["n1: leader (term 2)".into()],
            ..FaultRecord::default()
        };
        assert_eq!(FaultRecord::from_value(&record.to_value()), record);
    }

    #[test]
    fn only_the_fields_set_are_written() {
        let Value::Map(pairs) = FaultRecord::with_id(4).to_value() else {
            panic!("a record is a map");
        };
        assert_eq!(pairs, vec![(Value::Str("id".into()), Value::Int(4))]);
    }

    #[test]
    fn keyword_keys_and_odd_types_of_another_tools_history_are_read_leniently() {
        let value = map(vec![
            (Value::Keyword("id".into()), Value::Int(7)),
            (
                Value::Keyword("evidence".into()),
                Value::Str("one line".into()),
            ),
            (Value::Keyword("took_us".into()), Value::Str("soon".into())),
            (
                Value::Keyword("nodes".into()),
                Value::List(vec![Value::Keyword("n1".into())]),
            ),
        ]);
        let record = FaultRecord::from_value(&value);
        assert_eq!(record.id, Some(7));
        assert_eq!(record.evidence, vec!["one line".to_owned()]);
        assert_eq!(record.took_us, None);
        assert_eq!(record.nodes, vec!["n1".to_owned()]);
        assert_eq!(
            FaultRecord::from_value(&Value::Keyword("majority".into())),
            FaultRecord::default()
        );
    }

    #[test]
    fn merging_takes_the_fields_the_other_record_sets() {
        let mut record = FaultRecord::with_id(1);
        record.merge(FaultRecord {
            evidence: vec!["x".into()],
            ..FaultRecord::default()
        });
        assert_eq!(record.id, Some(1));
        assert_eq!(record.evidence, vec!["x".to_owned()]);
    }

    #[test]
    fn every_stop_event_is_a_stop_and_no_start_event_is() {
        for kind in FaultKind::all() {
            assert!(is_stop_event(kind.stop_event()), "{kind:?}");
            assert!(!is_stop_event(kind.start_event()), "{kind:?}");
        }
        assert!(is_stop_event("heal"));
        assert_eq!(kind_of_start("start-partition"), "partition");
        assert_eq!(kind_of_start("clock-bump"), "clock-bump");
    }
}
