//! Fault windows: each fault as the history's nemesis events tell it (from its start to
//! its heal, with its evidence and the roles around it), whether the evidence shows it in
//! effect, and who led before and after.

use crate::nemesis::record::{is_stop_event, kind_of_start, FaultRecord};
use serde::{Deserialize, Serialize};
#[cfg(test)]
use splitbrain_checkers::Event;
use splitbrain_checkers::{EventType, History, Process, Value};

/// A fault as the history tells it: from its start invocation to its undo's completion.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FaultWindow {
    /// The nemesis' fault id (pairs a start with its stop).
    pub id: Option<i64>,
    /// `partition`, `pause`, `kill`, `clock-bump`, `clock-strobe`, `loss`, …
    pub kind: String,
    /// The start's invocation (ns since the run started).
    pub start_ns: u64,
    /// When the fault was in force (the start's completion).
    pub in_force_ns: Option<u64>,
    /// When the undo completed; `None` when the history never saw it healed.
    pub end_ns: Option<u64>,
    /// What was done: shape, nodes, offsets.
    pub description: String,
    /// What the nemesis read back to show the fault took effect, then the heal's evidence.
    pub evidence: Vec<String>,
    /// How long applying took (µs).
    pub took_us: Option<i64>,
    /// Applying or undoing failed.
    pub error: Option<String>,
    /// What the evidence read back says: in effect, not in effect (also when applying
    /// failed), or `None` when the fault records no verdict on itself (loss is statistical;
    /// another tool's history).
    pub effective: Option<bool>,
    /// Every node's role just before the fault and once healed (`n1: leader (term 3)`),
    /// when the system can say.
    pub roles_before: Vec<String>,
    pub roles_after: Vec<String>,
}

impl FaultWindow {
    /// The end of the window, open windows running to `history_end`.
    pub fn end_or(&self, history_end: u64) -> u64 {
        self.end_ns.unwrap_or(history_end).max(self.start_ns)
    }
}

/// How many faults the evidence shows in effect.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FaultEffect {
    pub faults: usize,
    /// Evidence says it took effect.
    pub in_effect: usize,
    /// Evidence says it did not take effect (or applying it failed).
    pub not_in_effect: usize,
    /// No verdict recorded (e.g. packet loss, which is statistical).
    pub unverified: usize,
    /// Whether a fault not in effect makes the run `unknown` (the campaign's
    /// `nemesis.require_effect`).
    pub required: bool,
}

impl FaultEffect {
    /// Counts `faults`; `required` is the campaign's `nemesis.require_effect`.
    pub fn of(faults: &[FaultWindow], required: bool) -> FaultEffect {
        let mut effect = FaultEffect {
            faults: faults.len(),
            required,
            ..FaultEffect::default()
        };
        for w in faults {
            if w.effective == Some(false) {
                effect.not_in_effect += 1;
            } else if w.effective == Some(true) {
                effect.in_effect += 1;
            } else {
                effect.unverified += 1;
            }
        }
        effect
    }

    /// `2 of 4 faults did not take effect`.
    pub fn reason(&self) -> String {
        format!(
            "{} of {} faults did not take effect",
            self.not_in_effect, self.faults
        )
    }
}

fn text_of(v: &Value) -> String {
    match v {
        Value::Str(s) | Value::Keyword(s) => s.clone(),
        Value::List(items) => items.iter().map(text_of).collect::<Vec<_>>().join(", "),
        other => other.to_string(),
    }
}

/// Reads the fault windows out of the nemesis events of a history.
pub fn fault_windows(history: &History) -> Vec<FaultWindow> {
    let mut windows: Vec<FaultWindow> = Vec::new();
    // Pairing by id; a history without ids (another tool's) pairs a stop with the oldest
    // open fault.
    let mut open: Vec<usize> = Vec::new();
    let find_open = |windows: &[FaultWindow], open: &[usize], id: Option<i64>| -> Option<usize> {
        open.iter()
            .position(|&w| id.is_none() || windows[w].id == id)
    };
    for e in history
        .events
        .iter()
        .filter(|e| e.process == Process::Nemesis)
    {
        let record = FaultRecord::from_value(&e.value);
        let id = record.id;
        let time = e.time.unwrap_or(0);
        let error = e.error.as_ref().map(text_of);
        if is_stop_event(&e.f) {
            if e.kind == EventType::Invoke {
                continue;
            }
            let Some(pos) = find_open(&windows, &open, id) else {
                continue;
            };
            let w = &mut windows[open.remove(pos)];
            w.end_ns = Some(time);
            w.roles_after = record.roles_after;
            if let Some(line) = leader_change(&w.roles_before, &w.roles_after) {
                w.evidence.insert(0, line);
            }
            w.evidence.extend(
                record
                    .evidence
                    .into_iter()
                    .chain(record.observed)
                    .map(|x| format!("after heal: {x}")),
            );
            if error.is_some() {
                w.error = error;
            }
            continue;
        }
        if e.kind == EventType::Invoke {
            let kind = kind_of_start(&e.f);
            open.push(windows.len());
            windows.push(FaultWindow {
                id,
                kind,
                start_ns: time,
                in_force_ns: None,
                end_ns: None,
                description: record.describe(),
                evidence: Vec::new(),
                took_us: None,
                error: None,
                effective: None,
                roles_before: Vec::new(),
                roles_after: Vec::new(),
            });
            continue;
        }
        // The start's completion: in force, with what was done and the evidence.
        let Some(pos) = open
            .iter()
            .rposition(|&w| windows[w].id == id && windows[w].in_force_ns.is_none())
        else {
            continue;
        };
        let w = &mut windows[open[pos]];
        w.in_force_ns = Some(time);
        let detail = record.describe();
        if !detail.is_empty() {
            w.description = detail;
        }
        w.roles_before = record.roles_before;
        w.took_us = record.took_us;
        // Applying failed: whatever part went in, the fault as planned did not.
        w.effective = if error.is_some() {
            Some(false)
        } else {
            record.effective
        };
        w.evidence.extend(record.evidence);
        w.evidence.extend(
            record
                .observed
                .into_iter()
                .map(|x| format!("clock seen: {x}")),
        );
        w.error = error;
    }
    windows
}

/// A node's role in a role line (`n1: leader (term 3)` → (`n1`, `leader`, 3)).
pub fn parse_role(line: &str) -> Option<(&str, &str, Option<u64>)> {
    let (node, rest) = line.split_once(": ")?;
    let role = rest.split_whitespace().next()?;
    let term = rest
        .split_once("(term ")
        .and_then(|(_, t)| t.trim_end_matches(')').parse().ok());
    Some((node, role, term))
}

/// The leader among role lines (the highest term among those claiming to lead).
pub fn leader_of(roles: &[String]) -> Option<(String, Option<u64>)> {
    roles
        .iter()
        .filter_map(|l| parse_role(l))
        .filter(|(_, role, _)| *role == "leader")
        .max_by_key(|(_, _, term)| *term)
        .map(|(node, _, term)| (node.to_owned(), term))
}

/// `leader: n1 (term 2) before, n2 (term 3) after heal: changed`, when roles were recorded.
pub fn leader_change(before: &[String], after: &[String]) -> Option<String> {
    if before.is_empty() && after.is_empty() {
        return None;
    }
    let show = |l: &Option<(String, Option<u64>)>| match l {
        Some((node, Some(term))) => format!("{node} (term {term})"),
        Some((node, None)) => node.clone(),
        None => "none".to_owned(),
    };
    let (b, a) = (leader_of(before), leader_of(after));
    let verdict = match (&b, &a) {
        (Some((x, _)), Some((y, _))) if x == y => "unchanged",
        (Some(_), Some(_)) => "changed",
        (Some(_), None) => "no node led right after the heal",
        (None, Some(_)) => "no node led right before the fault",
        (None, None) => "no node led either time",
    };
    Some(format!(
        "leader: {} before, {} after heal: {verdict}",
        show(&b),
        show(&a)
    ))
}

/// How many faults saw the leader change (before the fault → after its heal).
pub fn leader_changes(faults: &[FaultWindow]) -> Option<usize> {
    let known: Vec<&FaultWindow> = faults
        .iter()
        .filter(|w| !w.roles_before.is_empty() && !w.roles_after.is_empty())
        .collect();
    if known.is_empty() {
        return None;
    }
    Some(
        known
            .iter()
            .filter(|w| {
                matches!(
                    (leader_of(&w.roles_before), leader_of(&w.roles_after)),
                    (Some((a, _)), Some((b, _))) if a != b
                )
            })
            .count(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nemesis(index: u64, time: u64, kind: EventType, f: &str, record: &FaultRecord) -> Event {
        Event {
            index,
            time: Some(time),
            process: Process::Nemesis,
            kind,
            f: f.to_owned(),
            key: None,
            value: record.to_value(),
            node: None,
            error: None,
        }
    }

    fn client(index: u64, time: u64) -> Event {
        Event {
            index,
            time: Some(time),
            process: Process::Client(0),
            kind: EventType::Invoke,
            f: "read".into(),
            key: Some(Value::Int(1)),
            value: Value::Nil,
            node: None,
            error: None,
        }
    }

    fn applied(id: usize, effective: Option<bool>, evidence: &[&str]) -> FaultRecord {
        FaultRecord {
            effective,
            evidence: evidence.iter().map(|e| e.to_string()).collect(),
            took_us: Some(120),
            ..FaultRecord::with_id(id)
        }
    }

    #[test]
    fn a_fault_runs_from_its_start_to_its_heal_with_its_evidence() {
        let history = History::new(vec![
            nemesis(
                0,
                100,
                EventType::Invoke,
                "start-partition",
                &FaultRecord::with_id(1),
            ),
            client(1, 150),
            nemesis(
                2,
                200,
                EventType::Ok,
                "start-partition",
                &applied(1, Some(true), &["routes: 2"]),
            ),
            nemesis(
                3,
                900,
                EventType::Invoke,
                "stop-partition",
                &FaultRecord::with_id(1),
            ),
            nemesis(
                4,
                1000,
                EventType::Ok,
                "stop-partition",
                &applied(1, None, &["routes: 0"]),
            ),
        ]);
        let windows = fault_windows(&history);
        assert_eq!(windows.len(), 1);
        let w = &windows[0];
        assert_eq!(w.kind, "partition");
        assert_eq!(w.id, Some(1));
        assert_eq!(
            (w.start_ns, w.in_force_ns, w.end_ns),
            (100, Some(200), Some(1000))
        );
        assert_eq!(w.effective, Some(true));
        assert_eq!(w.took_us, Some(120));
        assert_eq!(w.evidence, ["routes: 2", "after heal: routes: 0"]);
        assert_eq!(w.error, None);
    }

    #[test]
    fn stops_pair_with_their_own_start_by_id() {
        let history = History::new(vec![
            nemesis(0, 10, EventType::Invoke, "pause", &FaultRecord::with_id(1)),
            nemesis(
                1,
                20,
                EventType::Invoke,
                "start-loss",
                &FaultRecord::with_id(2),
            ),
            nemesis(2, 30, EventType::Ok, "stop-loss", &FaultRecord::with_id(2)),
            nemesis(3, 40, EventType::Ok, "resume", &FaultRecord::with_id(1)),
        ]);
        let windows = fault_windows(&history);
        let ends: Vec<(&str, Option<u64>)> = windows
            .iter()
            .map(|w| (w.kind.as_str(), w.end_ns))
            .collect();
        assert_eq!(ends, [("pause", Some(40)), ("loss", Some(30))]);
    }

    #[test]
    fn without_ids_a_stop_heals_the_oldest_open_fault() {
        // Another tool's history (Jepsen's): no ids, `start`/`stop` pairs.
        let no_id = FaultRecord::default();
        let history = History::new(vec![
            nemesis(0, 10, EventType::Invoke, "start-a", &no_id),
            nemesis(1, 20, EventType::Invoke, "start-b", &no_id),
            nemesis(2, 30, EventType::Ok, "stop", &no_id),
        ]);
        let windows = fault_windows(&history);
        assert_eq!(windows[0].kind, "a");
        assert_eq!(windows[0].end_ns, Some(30));
        assert_eq!(windows[1].end_ns, None, "b is still open");
        assert_eq!(windows[1].end_or(500), 500);
    }

    #[test]
    fn a_start_that_failed_is_not_in_effect_and_keeps_its_error() {
        let mut failed = nemesis(1, 20, EventType::Info, "kill", &applied(1, Some(true), &[]));
        failed.error = Some(Value::Str("no such process".into()));
        let history = History::new(vec![
            nemesis(0, 10, EventType::Invoke, "kill", &FaultRecord::with_id(1)),
            failed,
        ]);
        let w = &fault_windows(&history)[0];
        assert_eq!(w.effective, Some(false));
        assert_eq!(w.error.as_deref(), Some("no such process"));
        assert_eq!(w.end_ns, None);
    }

    #[test]
    fn the_leader_change_across_a_fault_leads_its_evidence() {
        let before = FaultRecord {
            roles_before: vec!["n1: leader (term 2)".into(), "n2: follower (term 2)".into()],
            ..applied(1, Some(true), &[])
        };
        let after = FaultRecord {
            roles_after: vec!["n1: follower (term 3)".into(), "n2: leader (term 3)".into()],
            ..FaultRecord::with_id(1)
        };
        let history = History::new(vec![
            nemesis(
                0,
                10,
                EventType::Invoke,
                "start-partition",
                &FaultRecord::with_id(1),
            ),
            nemesis(1, 20, EventType::Ok, "start-partition", &before),
            nemesis(2, 30, EventType::Ok, "stop-partition", &after),
        ]);
        let windows = fault_windows(&history);
        assert_eq!(
            windows[0].evidence[0],
            "leader: n1 (term 2) before, n2 (term 3) after heal: changed"
        );
        assert_eq!(leader_changes(&windows), Some(1));
        assert_eq!(leader_changes(&[]), None);
    }

    #[test]
    fn fault_effect_counts_in_effect_not_in_effect_and_unverified() {
        let window = |effective| FaultWindow {
            id: None,
            kind: "partition".into(),
            start_ns: 0,
            in_force_ns: None,
            end_ns: None,
            description: String::new(),
            evidence: Vec::new(),
            took_us: None,
            error: None,
            effective,
            roles_before: Vec::new(),
            roles_after: Vec::new(),
        };
        let faults = [
            window(Some(true)),
            window(Some(false)),
            window(None),
            window(Some(true)),
        ];
        let effect = FaultEffect::of(&faults, true);
        assert_eq!(
            effect,
            FaultEffect {
                faults: 4,
                in_effect: 2,
                not_in_effect: 1,
                unverified: 1,
                required: true
            }
        );
        assert_eq!(effect.reason(), "1 of 4 faults did not take effect");
    }

    #[test]
    fn role_lines_parse_and_the_highest_term_leads() {
        assert_eq!(
            parse_role("n1: leader (term 3)"),
            Some(("n1", "leader", Some(3)))
        );
        assert_eq!(parse_role("n2: peer"), Some(("n2", "peer", None)));
        assert_eq!(parse_role("garbage"), None);
        let roles = [
            "n1: leader (term 2)".to_owned(),
            "n3: leader (term 5)".to_owned(),
        ];
        assert_eq!(leader_of(&roles), Some(("n3".to_owned(), Some(5))));
        assert_eq!(leader_change(&[], &[]), None);
    }
}
