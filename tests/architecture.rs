//! The layout says how data flows: no module may depend, directly or through others, on a module
//! that depends on it. This reads every crate's `use crate::…`, `crate::…`, `super::…` and
//! `self::…` paths (test code left out) and fails on a cycle between sibling modules: an edge
//! from `a::x::y` to `a::z` counts as `a::x -> a::z`; edges between a module and its own
//! ancestors or descendants are how Rust modules work and are left out.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// A module path inside a crate (`["cli", "build"]`); the crate root is empty.
type ModPath = Vec<String>;

/// The workspace's crates: their source roots.
const CRATES: &[&str] = &[
    "src",
    "safe-path/src",
    "report/src",
    "layers/src",
    "wheels/src",
    "debian/src",
    "coglet/src",
    "coglet/python/src",
];

fn modules(root: &Path) -> BTreeMap<ModPath, PathBuf> {
    let mut out = BTreeMap::new();
    for entry in walkdir::WalkDir::new(root) {
        let entry = entry.unwrap();
        let path = entry.path();
        if path.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        let rel = path.strip_prefix(root).unwrap();
        let mut parts: Vec<String> = rel
            .iter()
            .map(|p| p.to_string_lossy().into_owned())
            .collect();
        let file = parts.pop().unwrap();
        let stem = file.trim_end_matches(".rs");
        // Binaries and tests are not part of the library's module tree.
        if parts.first().is_some_and(|p| p == "bin") || stem == "tests" {
            continue;
        }
        match stem {
            "lib" | "main" if parts.is_empty() => {}
            "mod" => {}
            other => parts.push(other.to_owned()),
        }
        out.insert(parts, path.to_path_buf());
    }
    out
}

/// The longest prefix of `path` that is a module.
fn known_prefix(path: &[String], known: &BTreeMap<ModPath, PathBuf>) -> Option<ModPath> {
    (1..=path.len())
        .rev()
        .map(|n| path[..n].to_vec())
        .find(|p| known.contains_key(p))
}

/// Every module path the source refers to, with its line, expanding `use` groups one level.
fn references(source: &str, me: &[String]) -> Vec<(ModPath, usize)> {
    let path_re =
        regex::Regex::new(r"\b(crate|super|self)((?:::(?:[A-Za-z_][A-Za-z0-9_]*|\{[^}]*\}))+)")
            .unwrap();
    let mut out = Vec::new();
    // Test code is left out: it may reach anywhere.
    let code = source.split("#[cfg(test)]").next().unwrap_or_default();
    for (i, line) in code.lines().enumerate() {
        let trimmed = line.trim_start();
        if trimmed.starts_with("//") {
            continue;
        }
        for cap in path_re.captures_iter(line) {
            let mut base: ModPath = match &cap[1] {
                "crate" => Vec::new(),
                "self" => me.to_vec(),
                _ => me[..me.len().saturating_sub(1)].to_vec(),
            };
            let rest = &cap[2];
            let mut segments = rest.split("::").filter(|s| !s.is_empty()).peekable();
            while let Some(seg) = segments.next() {
                if seg == "super" {
                    base.pop();
                    continue;
                }
                if let Some(group) = seg.strip_prefix('{') {
                    for item in group.trim_end_matches('}').split(',') {
                        let mut p = base.clone();
                        p.extend(
                            item.trim()
                                .split("::")
                                .filter(|s| !s.is_empty() && *s != "self")
                                .map(str::to_owned),
                        );
                        out.push((p, i + 1));
                    }
                    base.clear();
                    break;
                }
                base.push(seg.to_owned());
                if segments.peek().is_none() {
                    out.push((base.clone(), i + 1));
                }
            }
        }
    }
    out
}

/// Strongly connected components with more than one node (Tarjan).
fn cycles(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    struct State<'g> {
        graph: &'g BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'g str, usize>,
        low: BTreeMap<&'g str, usize>,
        stack: Vec<&'g str>,
        on_stack: BTreeSet<&'g str>,
        out: Vec<Vec<String>>,
    }
    fn visit<'g>(s: &mut State<'g>, v: &'g str) {
        let i = s.index.len();
        s.index.insert(v, i);
        s.low.insert(v, i);
        s.stack.push(v);
        s.on_stack.insert(v);
        for w in s.graph.get(v).into_iter().flatten() {
            if !s.index.contains_key(w.as_str()) {
                visit(s, w);
                let lw = s.low[w.as_str()];
                let lv = s.low[v];
                s.low.insert(v, lv.min(lw));
            } else if s.on_stack.contains(w.as_str()) {
                let iw = s.index[w.as_str()];
                let lv = s.low[v];
                s.low.insert(v, lv.min(iw));
            }
        }
        if s.low[v] == s.index[v] {
            let mut component = Vec::new();
            while let Some(w) = s.stack.pop() {
                s.on_stack.remove(w);
                component.push(w.to_owned());
                if w == v {
                    break;
                }
            }
            if component.len() > 1 {
                component.sort();
                s.out.push(component);
            }
        }
    }
    let mut state = State {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        out: Vec::new(),
    };
    let nodes: Vec<&String> = graph.keys().collect();
    for v in nodes {
        if !state.index.contains_key(v.as_str()) {
            visit(&mut state, v);
        }
    }
    state.out
}

/// The cycles of one crate, each with an edge that makes it (file:line).
fn crate_cycles(root: &Path) -> Vec<String> {
    let known = modules(root);
    // Per level (the common ancestor), edges between its children, with where each comes from.
    let mut levels: BTreeMap<ModPath, BTreeMap<String, BTreeSet<String>>> = BTreeMap::new();
    let mut evidence: BTreeMap<(ModPath, String, String), String> = BTreeMap::new();
    for (me, file) in &known {
        let source = std::fs::read_to_string(file).unwrap();
        for (target, line) in references(&source, me) {
            let Some(target) = known_prefix(&target, &known) else {
                continue;
            };
            let common = me.iter().zip(&target).take_while(|(a, b)| a == b).count();
            if common == me.len() || common == target.len() {
                continue; // an ancestor or a descendant
            }
            let level = me[..common].to_vec();
            let (from, to) = (me[common].clone(), target[common].clone());
            levels
                .entry(level.clone())
                .or_default()
                .entry(from.clone())
                .or_default()
                .insert(to.clone());
            evidence
                .entry((level, from, to))
                .or_insert_with(|| format!("{}:{line}", file.display()));
        }
    }
    let mut found = Vec::new();
    for (level, graph) in &levels {
        for component in cycles(graph) {
            let prefix = if level.is_empty() {
                String::new()
            } else {
                format!("{}::", level.join("::"))
            };
            let edges: Vec<String> = component
                .iter()
                .flat_map(|a| component.iter().map(move |b| (a, b)))
                .filter_map(|(a, b)| {
                    evidence
                        .get(&(level.clone(), a.clone(), b.clone()))
                        .map(|at| format!("{prefix}{a} -> {prefix}{b} ({at})"))
                })
                .collect();
            found.push(format!(
                "{} in {}:\n    {}",
                component.join(" <-> "),
                root.display(),
                edges.join("\n    ")
            ));
        }
    }
    found
}

#[test]
fn no_module_depends_on_a_module_that_depends_on_it() {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"));
    let found: Vec<String> = CRATES
        .iter()
        .flat_map(|root| crate_cycles(&workspace.join(root)))
        .collect();
    assert!(found.is_empty(), "module cycles:\n{}", found.join("\n"));
}

#[test]
fn the_checker_finds_a_cycle() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path();
    std::fs::write(src.join("lib.rs"), "mod a;\nmod b;\nmod c;\n").unwrap();
    std::fs::write(src.join("a.rs"), "use crate::b::X;\n").unwrap();
    std::fs::write(src.join("b.rs"), "pub struct X;\nuse super::c::Y;\n").unwrap();
    std::fs::write(
        src.join("c.rs"),
        "pub struct Y;\nfn f() { crate::a::g(); }\n",
    )
    .unwrap();
    let found = crate_cycles(src);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].starts_with("a <-> b <-> c"), "{}", found[0]);
    // Nested: a child using its parent, and siblings one way only, are fine.
    std::fs::write(src.join("b.rs"), "pub struct X;\n").unwrap();
    std::fs::write(src.join("c.rs"), "pub struct Y;\nuse crate::{b::X, a};\n").unwrap();
    std::fs::create_dir(src.join("a")).unwrap();
    std::fs::write(src.join("a/inner.rs"), "use super::super::a::f;\n").unwrap();
    assert!(crate_cycles(src).is_empty(), "{:?}", crate_cycles(src));
}
