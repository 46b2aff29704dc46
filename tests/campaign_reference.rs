//! docs/campaign.md against the loader: every section of the reference lists exactly the
//! fields the loader accepts there, and its example campaign loads.
//!
//! The loader's own list of field names is taken from its error for an unknown field
//! (serde's `deny_unknown_fields` names every valid field), so nothing here restates it.

use splitbrain::campaign;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

const REFERENCE: &str = include_str!("../docs/campaign.md");

/// A field no section has: the loader's error for it lists the valid names.
const UNKNOWN: &str = "zz_not_a_field: 1";

/// For each section of the reference, a campaign with `X` where a field of that section
/// goes (`X` becomes the unknown field).
const SECTIONS: &[(&str, &str)] = &[
    (
        "campaign",
        "name: t\nsystem: {in-memory: {}}\nworkload: {kind: kv}\nX\n",
    ),
    (
        "system",
        "name: t\nsystem: {in-memory: {}, X}\nworkload: {kind: kv}\n",
    ),
    (
        "system.etcd",
        "name: t\nsystem: {etcd: {X}}\nworkload: {kind: kv}\n",
    ),
    (
        "system.zookeeper",
        "name: t\nsystem: {zookeeper: {X}}\nworkload: {kind: kv}\n",
    ),
    (
        "system.redis",
        "name: t\nsystem: {redis: {X}}\nworkload: {kind: kv}\n",
    ),
    (
        "system.redis.wait",
        "name: t\nsystem: {redis: {wait: {replicas: 1, timeout_ms: 1, X}}}\nworkload: {kind: kv}\n",
    ),
    (
        "system.clusterkv",
        "name: t\nsystem: {clusterkv: {arch: raft, X}}\nworkload: {kind: kv}\n",
    ),
    (
        "system.postgres",
        "name: t\nsystem: {postgres: {X}}\nnodes: 1\nworkload: {kind: list-append}\n",
    ),
    (
        "system.command",
        "name: t\nsystem: {command: {X, node: {program: p, port: 1, readiness: {tcp_port: 1}}, client: {program: c}}}\nworkload: {kind: kv}\n",
    ),
    (
        "system.command.node",
        "name: t\nsystem: {command: {node: {X, program: p, port: 1, readiness: {tcp_port: 1}}, client: {program: c}}}\nworkload: {kind: kv}\n",
    ),
    (
        "system.command.node.readiness",
        "name: t\nsystem: {command: {node: {program: p, port: 1, readiness: {X}}, client: {program: c}}}\nworkload: {kind: kv}\n",
    ),
    (
        "system.command.client",
        "name: t\nsystem: {command: {node: {program: p, port: 1, readiness: {tcp_port: 1}}, client: {X, program: c}}}\nworkload: {kind: kv}\n",
    ),
    (
        "workload",
        "name: t\nsystem: {in-memory: {}}\nworkload: {kind: kv, X}\n",
    ),
    (
        "workload.mix",
        "name: t\nsystem: {in-memory: {}}\nworkload: {kind: kv, mix: {X}}\n",
    ),
    (
        "nemesis",
        "name: t\nsystem: {in-memory: {}}\nworkload: {kind: kv}\nnemesis: {X}\n",
    ),
    (
        "nemesis.feedback",
        "name: t\nsystem: {in-memory: {}}\nworkload: {kind: kv}\nnemesis: {feedback: {X}}\n",
    ),
    (
        "nemesis.clock",
        "name: t\nsystem: {in-memory: {}}\nworkload: {kind: kv}\nnemesis: {clock: {X}}\n",
    ),
    (
        "nemesis.loss",
        "name: t\nsystem: {in-memory: {}}\nworkload: {kind: kv}\nnemesis: {loss: {X}}\n",
    ),
    (
        "nemesis.delay",
        "name: t\nsystem: {in-memory: {}}\nworkload: {kind: kv}\nnemesis: {delay: {X}}\n",
    ),
    (
        "nemesis.reorder",
        "name: t\nsystem: {in-memory: {}}\nworkload: {kind: kv}\nnemesis: {reorder: {X}}\n",
    ),
    (
        "nemesis.duplicate",
        "name: t\nsystem: {in-memory: {}}\nworkload: {kind: kv}\nnemesis: {duplicate: {X}}\n",
    ),
    (
        "nemesis.corrupt",
        "name: t\nsystem: {in-memory: {}}\nworkload: {kind: kv}\nnemesis: {corrupt: {X}}\n",
    ),
    (
        "nemesis.timeline[]",
        "name: t\nsystem: {in-memory: {}}\nworkload: {kind: kv}\nnemesis: {timeline: [{at: 1s, fault: kill, for: 1s, X}]}\n",
    ),
    (
        "checker",
        "name: t\nsystem: {in-memory: {}}\nworkload: {kind: kv}\nchecker: {X}\n",
    ),
    (
        "startup",
        "name: t\nsystem: {in-memory: {}}\nworkload: {kind: kv}\nstartup: {X}\n",
    ),
    (
        "disk",
        "name: t\nsystem: {in-memory: {}}\nworkload: {kind: kv}\ndisk: {X}\n",
    ),
    (
        "hosts[]",
        "name: t\nsystem: {etcd: {}}\nnodes: 1\nworkload: {kind: kv}\nhosts: [{name: n1, address: 10.0.0.1, X}]\n",
    ),
    (
        "ssh",
        "name: t\nsystem: {etcd: {}}\nnodes: 1\nworkload: {kind: kv}\nhosts: [{name: n1, address: 10.0.0.1}]\nssh: {X}\n",
    ),
];

/// The fields the loader accepts in a section: the names its unknown-field error lists.
fn accepted_fields(section: &str, template: &str) -> BTreeSet<String> {
    let text = template.replace('X', UNKNOWN);
    let error = match campaign::parse(&text, Path::new("reference.yaml")) {
        Ok(_) => panic!("{section}: the loader accepted an unknown field:\n{text}"),
        Err(e) => e.to_string(),
    };
    assert!(
        error.contains("unknown field `zz_not_a_field`"),
        "{section}: not an unknown-field error: {error}\n{text}"
    );
    if error.contains("there are no fields") {
        return BTreeSet::new();
    }
    let listed = error
        .split_once(", expected ")
        .unwrap_or_else(|| panic!("{section}: no list of valid names in: {error}"))
        .1;
    let listed = listed.split(" at line ").next().unwrap();
    listed
        .split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect()
}

/// The reference's sections (`### \`name\``) and the fields in the first column of each
/// section's table.
fn documented_fields() -> BTreeMap<String, BTreeSet<String>> {
    let mut sections: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut current: Option<String> = None;
    for (number, line) in REFERENCE.lines().enumerate() {
        if let Some(heading) = line.strip_prefix("### ") {
            let name = heading.trim().trim_matches('`').to_owned();
            assert!(
                sections.insert(name.clone(), BTreeSet::new()).is_none(),
                "docs/campaign.md:{}: section `{name}` twice",
                number + 1
            );
            current = Some(name);
        } else if line.starts_with("## ") {
            current = None;
        } else if let (Some(section), Some(row)) = (&current, line.strip_prefix("| `")) {
            let field = row.split('`').next().unwrap().to_owned();
            let fields = sections.get_mut(section).unwrap();
            assert!(
                fields.insert(field.clone()),
                "docs/campaign.md:{}: `{field}` twice in `{section}`",
                number + 1
            );
        }
    }
    sections
}

#[test]
fn every_section_of_the_reference_lists_exactly_the_accepted_fields() {
    let documented = documented_fields();
    let tested: BTreeSet<&str> = SECTIONS.iter().map(|(name, _)| *name).collect();
    let in_doc: BTreeSet<&str> = documented.keys().map(String::as_str).collect();
    assert_eq!(
        in_doc, tested,
        "the sections of docs/campaign.md and the sections this test knows differ"
    );
    let mut problems = Vec::new();
    for (section, template) in SECTIONS {
        let accepted = accepted_fields(section, template);
        let listed = &documented[*section];
        for field in accepted.difference(listed) {
            problems.push(format!(
                "`{section}.{field}` is accepted but not documented"
            ));
        }
        for field in listed.difference(&accepted) {
            problems.push(format!(
                "`{section}.{field}` is documented but the loader rejects it"
            ));
        }
    }
    assert!(
        problems.is_empty(),
        "docs/campaign.md and the loader differ:\n{}",
        problems.join("\n")
    );
}

#[test]
fn the_sections_know_real_fields() {
    // Guard against a template that never reaches its section: each must list a field the
    // reference names there.
    for (section, template) in SECTIONS {
        let accepted = accepted_fields(section, template);
        assert!(!accepted.is_empty(), "{section}: no fields found");
    }
    assert!(accepted_fields("system", SECTIONS[1].1).contains("in-memory"));
}

#[test]
fn the_example_campaign_of_the_reference_loads() {
    let example = REFERENCE
        .split("```yaml\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("docs/campaign.md has a YAML example");
    let loaded = campaign::parse(example, Path::new("docs/campaign.md"))
        .unwrap_or_else(|e| panic!("the example does not load: {e}"));
    assert_eq!(loaded.name, "kv-under-partitions");
    assert_eq!(loaded.seed, Some(7));
}
