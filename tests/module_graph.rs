//! The harness's top-level modules import each other in one direction only.
//!
//! Reads every `src/**/*.rs`, takes each path that names another top-level module
//! (`crate::x…`, `use crate::{x, …}`, and `super::…` that climbs to the crate root), and
//! builds the graph of top-level modules. A cycle fails the test, named module by module
//! with the file and line of every import on it. Comments, strings and `#[cfg(test)]`
//! modules' code count like any other code: a test module that reaches back up a layer is
//! a dependency too.
//!
//! The documented layer order (`src/lib.rs`, `# Layers`) is checked as well: a module
//! imports only modules of its own layer or of the layers below, but for the few imports
//! listed in [`KNOWN_UPWARD`] with what removes them. To see the graph:
//! `cargo test --test module_graph -- --ignored --nocapture show_the_module_graph`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Where one module names another.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Site {
    file: String,
    line: usize,
}

/// `from → to → the sites where `from` names `to``.
type Graph = BTreeMap<String, BTreeMap<String, Vec<Site>>>;

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The module path of a file under `src/`: `src/a/b.rs` and `src/a/b/mod.rs` → `[a, b]`;
/// `src/lib.rs` and `src/main.rs` → `[]`.
fn module_path(relative: &Path) -> Vec<String> {
    let mut parts: Vec<String> = relative
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    let last = parts.pop().expect("a file name");
    let stem = last.trim_end_matches(".rs");
    if parts.is_empty() && (stem == "lib" || stem == "main") {
        return Vec::new();
    }
    if stem != "mod" {
        parts.push(stem.to_owned());
    }
    parts
}

/// Rust source with comments and the contents of string and char literals blanked out
/// (newlines kept, so line numbers stay right).
fn code_only(source: &str) -> String {
    let bytes: Vec<char> = source.chars().collect();
    let mut out = String::with_capacity(source.len());
    let mut i = 0;
    let blank = |c: char| if c == '\n' { '\n' } else { ' ' };
    while i < bytes.len() {
        let c = bytes[i];
        let next = bytes.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < bytes.len() && bytes[i] != '\n' {
                out.push(' ');
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            let mut depth = 0;
            while i < bytes.len() {
                if bytes[i] == '/' && bytes.get(i + 1) == Some(&'*') {
                    depth += 1;
                    out.push_str("  ");
                    i += 2;
                } else if bytes[i] == '*' && bytes.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    out.push_str("  ");
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    out.push(blank(bytes[i]));
                    i += 1;
                }
            }
        } else if c == 'r' && matches!(next, Some('"') | Some('#')) && raw_string_at(&bytes, i) {
            // r"…", r#"…"#: up to the closing quote and as many hashes.
            let mut j = i + 1;
            let mut hashes = 0;
            while bytes[j] == '#' {
                hashes += 1;
                j += 1;
            }
            out.extend(std::iter::repeat_n(' ', j + 1 - i));
            i = j + 1;
            while i < bytes.len() {
                if bytes[i] == '"' && (0..hashes).all(|h| bytes.get(i + 1 + h) == Some(&'#')) {
                    out.extend(std::iter::repeat_n(' ', 1 + hashes));
                    i += 1 + hashes;
                    break;
                }
                out.push(blank(bytes[i]));
                i += 1;
            }
        } else if c == '"' && path_string_len(&bytes, i).is_some() {
            // `#[serde(with = "crate::x::y")]`: a path in a string is still a path.
            let len = path_string_len(&bytes, i).expect("checked");
            out.push(' ');
            out.extend(&bytes[i + 1..i + len - 1]);
            out.push(' ');
            i += len;
        } else if c == '"' {
            out.push(' ');
            i += 1;
            while i < bytes.len() && bytes[i] != '"' {
                if bytes[i] == '\\' {
                    out.push(' ');
                    i += 1;
                }
                if i < bytes.len() {
                    out.push(blank(bytes[i]));
                    i += 1;
                }
            }
            out.push(' ');
            i += 1;
        } else if c == '\'' && char_literal_len(&bytes, i).is_some() {
            let len = char_literal_len(&bytes, i).expect("checked");
            out.extend(std::iter::repeat_n(' ', len));
            i += len;
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

/// The length (quotes included) of a string literal at `i` that holds nothing but a path
/// from the crate's root or a parent (`"crate::a::b"`, `"super::c::<_, 1>"`), as serde's
/// `with`, `default` and `deserialize_with` attributes name functions.
fn path_string_len(chars: &[char], i: usize) -> Option<usize> {
    let end =
        (i + 1..chars.len()).find(|&j| chars[j] == '"' || chars[j] == '\\' || chars[j] == '\n')?;
    if chars[end] != '"' {
        return None;
    }
    let inside: String = chars[i + 1..end].iter().collect();
    let is_path = (inside.starts_with("crate::") || inside.starts_with("super::"))
        && inside
            .chars()
            .all(|c| c.is_alphanumeric() || "_:<>, {}".contains(c));
    is_path.then_some(end + 1 - i)
}

/// Whether a raw string starts at `i` (`r` not part of a longer identifier).
fn raw_string_at(chars: &[char], i: usize) -> bool {
    let starts_word = i == 0 || !(chars[i - 1].is_alphanumeric() || chars[i - 1] == '_');
    let mut j = i + 1;
    while chars.get(j) == Some(&'#') {
        j += 1;
    }
    starts_word && chars.get(j) == Some(&'"')
}

/// The length of a char literal at `i` (`'a'`, `'\n'`, `'\u{1F600}'`), or `None` for a
/// lifetime or label.
fn char_literal_len(chars: &[char], i: usize) -> Option<usize> {
    if chars.get(i + 1) == Some(&'\\') {
        let end = (i + 2..chars.len().min(i + 12)).find(|&j| chars[j] == '\'')?;
        return Some(end + 1 - i);
    }
    (chars.get(i + 2) == Some(&'\'')).then_some(3)
}

/// Identifier-or-`::`-or-brace tokens with their line numbers.
fn tokens(code: &str) -> Vec<(String, usize)> {
    let mut out = Vec::new();
    let mut line = 1;
    let chars: Vec<char> = code.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\n' {
            line += 1;
            i += 1;
        } else if c.is_alphanumeric() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            out.push((chars[start..i].iter().collect(), line));
        } else if c == ':' && chars.get(i + 1) == Some(&':') {
            out.push(("::".to_owned(), line));
            i += 2;
        } else if c.is_whitespace() {
            i += 1;
        } else {
            out.push((c.to_string(), line));
            i += 1;
        }
    }
    out
}

/// The top-level modules that `module` (the file's module path) names, with their lines.
fn imports(module: &[String], code: &str) -> Vec<(String, usize)> {
    let tokens = tokens(code);
    let mut found = Vec::new();
    // Inline `mod name { … }` blocks deepen `super::`: (module name, brace depth inside it).
    let mut inline_mods: Vec<usize> = Vec::new();
    let mut depth = 0usize;
    let mut pending_mod = false;
    let mut i = 0;
    while i < tokens.len() {
        let (t, line) = (&tokens[i].0, tokens[i].1);
        match t.as_str() {
            "mod" => pending_mod = true,
            "{" => {
                depth += 1;
                if pending_mod {
                    inline_mods.push(depth);
                }
                pending_mod = false;
            }
            "}" => {
                if inline_mods.last() == Some(&depth) {
                    inline_mods.pop();
                }
                depth = depth.saturating_sub(1);
            }
            ";" => pending_mod = false,
            _ => {}
        }
        let previous_is_path = i > 0 && tokens[i - 1].0 == "::";
        if (t == "crate" || t == "super") && !previous_is_path {
            // Climb: `crate` is the root; each `super` one level up from where the code is.
            let mut level: Option<usize> = if t == "crate" {
                Some(0)
            } else {
                (module.len() + inline_mods.len()).checked_sub(1)
            };
            let mut j = i + 1;
            while j + 1 < tokens.len() && tokens[j].0 == "::" && tokens[j + 1].0 == "super" {
                level = level.and_then(|l| l.checked_sub(1));
                j += 2;
            }
            // Only paths that reach the crate root name a top-level module.
            if level == Some(0) && tokens.get(j).is_some_and(|t| t.0 == "::") {
                match tokens.get(j + 1).map(|t| t.0.as_str()) {
                    Some("{") => {
                        // `use crate::{a, b::c, d::{e, f}}`: the names at the group's top.
                        let mut k = j + 2;
                        let mut nesting = 0;
                        let mut expect_name = true;
                        while k < tokens.len() {
                            match tokens[k].0.as_str() {
                                "{" => nesting += 1,
                                "}" if nesting == 0 => break,
                                "}" => nesting -= 1,
                                "," if nesting == 0 => expect_name = true,
                                name if nesting == 0 && expect_name => {
                                    if is_identifier(name) && name != "self" {
                                        found.push((name.to_owned(), tokens[k].1));
                                    }
                                    expect_name = false;
                                }
                                _ => {}
                            }
                            k += 1;
                        }
                    }
                    Some(name) if is_identifier(name) => found.push((name.to_owned(), line)),
                    _ => {}
                }
            }
        }
        i += 1;
    }
    found
}

fn is_identifier(s: &str) -> bool {
    s.chars()
        .next()
        .is_some_and(|c| c.is_alphabetic() || c == '_')
        && s.chars().all(|c| c.is_alphanumeric() || c == '_')
}

fn build_graph(src: &Path) -> (BTreeSet<String>, Graph) {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    let mut graph = Graph::new();
    let mut modules = BTreeSet::new();
    for file in &files {
        let relative = file.strip_prefix(src).expect("under src");
        if let Some(top) = module_path(relative).first() {
            modules.insert(top.clone());
        }
    }
    for file in &files {
        let relative = file.strip_prefix(src).expect("under src");
        let module = module_path(relative);
        let Some(from) = module.first() else {
            continue;
        };
        let source = std::fs::read_to_string(file)
            .unwrap_or_else(|e| panic!("reading {}: {e}", file.display()));
        for (to, line) in imports(&module, &code_only(&source)) {
            if &to == from || !modules.contains(&to) {
                continue;
            }
            graph
                .entry(from.clone())
                .or_default()
                .entry(to)
                .or_default()
                .push(Site {
                    file: format!("src/{}", relative.display()),
                    line,
                });
        }
    }
    (modules, graph)
}

/// The strongly connected components with more than one module (Tarjan).
fn cycles(modules: &BTreeSet<String>, graph: &Graph) -> Vec<Vec<String>> {
    struct State<'a> {
        graph: &'a Graph,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on_stack: BTreeSet<&'a str>,
        next: usize,
        components: Vec<Vec<String>>,
    }
    fn visit<'a>(s: &mut State<'a>, v: &'a str) {
        s.index.insert(v, s.next);
        s.low.insert(v, s.next);
        s.next += 1;
        s.stack.push(v);
        s.on_stack.insert(v);
        let graph = s.graph;
        for w in graph.get(v).into_iter().flat_map(|e| e.keys()) {
            let w = w.as_str();
            if !s.index.contains_key(w) {
                visit(s, w);
                let low = s.low[w].min(s.low[v]);
                s.low.insert(v, low);
            } else if s.on_stack.contains(w) {
                let low = s.index[w].min(s.low[v]);
                s.low.insert(v, low);
            }
        }
        if s.low[v] == s.index[v] {
            let mut component = Vec::new();
            loop {
                let w = s.stack.pop().expect("on the stack");
                s.on_stack.remove(w);
                component.push(w.to_owned());
                if w == v {
                    break;
                }
            }
            if component.len() > 1 {
                component.sort();
                s.components.push(component);
            }
        }
    }
    let mut state = State {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        next: 0,
        components: Vec::new(),
    };
    for m in modules {
        if !state.index.contains_key(m.as_str()) {
            visit(&mut state, m);
        }
    }
    state.components
}

/// One shortest cycle through `start` inside `component` (breadth-first).
fn cycle_through(start: &str, component: &[String], graph: &Graph) -> Vec<String> {
    let inside: BTreeSet<&str> = component.iter().map(String::as_str).collect();
    let mut parent: BTreeMap<&str, &str> = BTreeMap::new();
    let mut queue = std::collections::VecDeque::from([start]);
    while let Some(v) = queue.pop_front() {
        for w in graph.get(v).into_iter().flat_map(|e| e.keys()) {
            let w = w.as_str();
            if !inside.contains(w) {
                continue;
            }
            if w == start {
                let mut path = vec![v.to_owned()];
                let mut at = v;
                while at != start {
                    at = parent[at];
                    path.push(at.to_owned());
                }
                path.reverse();
                path.push(start.to_owned());
                return path;
            }
            if !parent.contains_key(w) && w != start {
                parent.insert(w, v);
                queue.push_back(w);
            }
        }
    }
    unreachable!("every module of a strongly connected component lies on a cycle")
}

/// `a → b (src/a.rs:3, src/a.rs:9)` for each step of `cycle`.
fn describe(cycle: &[String], graph: &Graph) -> String {
    cycle
        .windows(2)
        .map(|step| {
            let sites = &graph[&step[0]][&step[1]];
            let shown: Vec<String> = sites
                .iter()
                .take(3)
                .map(|s| format!("{}:{}", s.file, s.line))
                .collect();
            let more = sites.len().saturating_sub(3);
            let more = if more > 0 {
                format!(" and {more} more")
            } else {
                String::new()
            };
            format!("    {} → {} ({}{more})", step[0], step[1], shown.join(", "))
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every import between two modules of `component`, one line each with its sites.
fn edges_within(component: &[String], graph: &Graph) -> String {
    let mut lines = Vec::new();
    for from in component {
        for to in component {
            if graph.get(from).is_some_and(|e| e.contains_key(to)) {
                lines.push(describe(&[from.clone(), to.clone()], graph));
            }
        }
    }
    lines.join("\n")
}

fn src_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// The layers `src/lib.rs` documents under `# Layers`: lines `//! N. name, name, …`,
/// lowest first. Each module's layer number.
fn documented_layers() -> BTreeMap<String, usize> {
    let lib = std::fs::read_to_string(src_dir().join("lib.rs")).expect("reading src/lib.rs");
    let mut layers = BTreeMap::new();
    let mut in_section = false;
    for line in lib.lines() {
        let Some(doc) = line.strip_prefix("//!") else {
            continue;
        };
        let doc = doc.trim();
        if doc.starts_with('#') {
            in_section = doc == "# Layers";
            continue;
        }
        if !in_section {
            continue;
        }
        let Some((number, names)) = doc.split_once(". ") else {
            continue;
        };
        let Ok(number) = number.parse::<usize>() else {
            continue;
        };
        for name in names.split(',') {
            let name = name.trim().trim_matches('`').trim_end_matches('.');
            if is_identifier(name) {
                layers.insert(name.to_owned(), number);
            }
        }
    }
    layers
}

/// Imports that still go up the layers, each with what removes it. Nothing else may: the
/// tests below fail on any other upward import or cycle, and on an entry here that is no
/// longer true (delete its line then).
const KNOWN_UPWARD: &[(&str, &str, &str)] = &[];

/// The graph without the [`KNOWN_UPWARD`] imports.
fn graph_without_known_upward(mut graph: Graph) -> Graph {
    for (from, to, _) in KNOWN_UPWARD {
        if let Some(targets) = graph.get_mut(*from) {
            targets.remove(*to);
        }
    }
    graph
}

#[test]
fn every_known_upward_import_is_still_there() {
    let (_, graph) = build_graph(&src_dir());
    let gone: Vec<String> = KNOWN_UPWARD
        .iter()
        .filter(|(from, to, _)| !graph.get(*from).is_some_and(|t| t.contains_key(*to)))
        .map(|(from, to, _)| format!("{from} → {to}"))
        .collect();
    assert!(
        gone.is_empty(),
        "no longer imported, remove from KNOWN_UPWARD: {gone:?}"
    );
}

#[test]
fn top_level_modules_import_each_other_without_cycles() {
    let (modules, graph) = build_graph(&src_dir());
    let graph = graph_without_known_upward(graph);
    let components = cycles(&modules, &graph);
    let report: Vec<String> = components
        .iter()
        .map(|component| {
            let cycle = cycle_through(&component[0], component, &graph);
            format!(
                "modules {} import each other, e.g. {}:\n{}\n  every import among them:\n{}",
                component.join(", "),
                cycle.join(" → "),
                describe(&cycle, &graph),
                edges_within(component, &graph)
            )
        })
        .collect();
    assert!(
        report.is_empty(),
        "import cycles between top-level modules:\n{}",
        report.join("\n")
    );
}

#[test]
fn every_import_goes_to_the_same_or_a_lower_layer() {
    let (modules, graph) = build_graph(&src_dir());
    let graph = graph_without_known_upward(graph);
    let layers = documented_layers();
    let undocumented: Vec<&String> = modules
        .iter()
        .filter(|m| !layers.contains_key(*m))
        .collect();
    assert!(
        undocumented.is_empty(),
        "src/lib.rs `# Layers` does not place: {undocumented:?}"
    );
    let mut upward = Vec::new();
    for (from, targets) in &graph {
        for (to, sites) in targets {
            if layers[to] > layers[from] {
                upward.push(format!(
                    "    {from} (layer {}) → {to} (layer {}) at {}:{}",
                    layers[from], layers[to], sites[0].file, sites[0].line
                ));
            }
        }
    }
    assert!(
        upward.is_empty(),
        "imports that go up the documented layers:\n{}",
        upward.join("\n")
    );
}

/// Prints the module graph, one line per module with what it imports, lowest layer first:
/// `cargo test --test module_graph -- --ignored --nocapture show_the_module_graph`.
#[test]
#[ignore = "prints the graph; run it by name"]
fn show_the_module_graph() {
    let (modules, graph) = build_graph(&src_dir());
    let layers = documented_layers();
    let mut ordered: Vec<&String> = modules.iter().collect();
    ordered.sort_by_key(|m| (layers.get(*m).copied().unwrap_or(usize::MAX), m.to_string()));
    for m in ordered {
        let targets: Vec<&str> = graph
            .get(m)
            .map(|t| t.keys().map(String::as_str).collect())
            .unwrap_or_default();
        let layer = layers.get(m).map_or("?".to_owned(), |l| l.to_string());
        println!("{layer:>2} {m:<11} → {}", targets.join(", "));
    }
}

// The reader itself.

#[test]
fn paths_in_comments_and_strings_are_not_imports() {
    let code = code_only(
        "// crate::a::x\n/* crate::b */ let s = \"see crate::c\"; let r = r#\"crate::d\"#;\nuse crate::e;\n",
    );
    let found = imports(&["m".to_owned()], &code);
    assert_eq!(found, vec![("e".to_owned(), 3)]);
}

#[test]
fn paths_that_serde_attributes_name_are_imports() {
    let code = code_only(
        "#[serde(deserialize_with = \"crate::limits::u64_in::<_, 0, MAX>\")]\nlet s = \"crate:: not a path!\";\n",
    );
    assert_eq!(
        imports(&["m".to_owned()], &code),
        vec![("limits".to_owned(), 1)]
    );
}

#[test]
fn grouped_and_nested_uses_name_each_top_level_module() {
    let code =
        code_only("use crate::{a::{x, y}, b, self, c::z as w};\nfn f() { crate::d::g(); }\n");
    let names: Vec<String> = imports(&["m".to_owned()], &code)
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert_eq!(names, ["a", "b", "c", "d"]);
}

#[test]
fn super_reaches_the_root_only_from_a_top_level_file() {
    // In src/m.rs, `super::x` names the crate's `x`; inside its inline `mod tests`,
    // `super::` is `m` itself, and `super::super::y` the crate's `y`.
    let code = code_only(
        "use super::x;\nmod tests { use super::*; use super::super::y; }\nuse super::z;\n",
    );
    let names: Vec<String> = imports(&["m".to_owned()], &code)
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert_eq!(names, ["x", "y", "z"]);
    // In src/m/n.rs, `super::` is `m`.
    assert!(imports(
        &["m".to_owned(), "n".to_owned()],
        &code_only("use super::q;")
    )
    .is_empty());
}

#[test]
fn lifetimes_are_not_char_literals() {
    let code = code_only("fn f<'a>(x: &'a str) -> char { 'c' }\nuse crate::k;\n");
    assert_eq!(imports(&["m".to_owned()], &code), vec![("k".to_owned(), 2)]);
}

#[test]
fn a_cycle_is_found_and_named_with_its_sites() {
    let site = |file: &str, line| Site {
        file: file.to_owned(),
        line,
    };
    let mut graph = Graph::new();
    graph
        .entry("a".into())
        .or_default()
        .insert("b".into(), vec![site("src/a.rs", 1)]);
    graph
        .entry("b".into())
        .or_default()
        .insert("c".into(), vec![site("src/b.rs", 2)]);
    graph
        .entry("c".into())
        .or_default()
        .insert("a".into(), vec![site("src/c.rs", 3)]);
    graph
        .entry("c".into())
        .or_default()
        .insert("d".into(), vec![site("src/c.rs", 4)]);
    let modules: BTreeSet<String> = ["a", "b", "c", "d"].map(String::from).into();
    let components = cycles(&modules, &graph);
    assert_eq!(components, vec![vec!["a", "b", "c"]]);
    let cycle = cycle_through("a", &components[0], &graph);
    assert_eq!(cycle, ["a", "b", "c", "a"]);
    let text = describe(&cycle, &graph);
    assert!(text.contains("a → b (src/a.rs:1)"), "{text}");
    assert!(text.contains("c → a (src/c.rs:3)"), "{text}");
    graph.get_mut("c").unwrap().remove("a");
    assert!(cycles(&modules, &graph).is_empty());
}
