//! The core's shape, checked on its source: the layers point one way (app → io → wire →
//! domain), the domain does no I/O, and the domain's rooms form no cycle. It reads every
//! `crate::…` path in `rust-core/src` (in `use` lines and inline), so a new file or a new
//! import is covered without anyone editing this test.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Where a file sits: its layer (`domain`, `wire`, `io`, `app`, or `root` for lib.rs) and,
/// in the domain, its room (`voucher`, `bills`, `money`…).
#[derive(Debug, Clone)]
struct Place {
    layer: String,
    room: Option<String>,
}

fn sources() -> Vec<(PathBuf, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut out = Vec::new();
    let mut stack = vec![root.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("src is readable") {
            let path = entry.expect("dir entry").path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let rel = path.strip_prefix(&root).expect("under src").to_path_buf();
                out.push((rel, std::fs::read_to_string(&path).expect("source is UTF-8")));
            }
        }
    }
    out.sort();
    assert!(out.len() > 30, "found only {} source files: is the walk broken?", out.len());
    out
}

fn place(rel: &Path) -> Place {
    let parts: Vec<String> = rel.iter().map(|p| p.to_string_lossy().trim_end_matches(".rs").to_string()).collect();
    match parts.as_slice() {
        [lib] if lib == "lib" => Place { layer: "root".into(), room: None },
        [layer, rest @ ..] => {
            let room = (layer == "domain").then(|| rest.first().cloned()).flatten().filter(|r| r != "mod");
            Place { layer: layer.clone(), room }
        }
        [] => unreachable!("a file has a name"),
    }
}

/// The code without comments and without the `#[cfg(test)]` tail (tests may read files).
fn code_of(text: &str, include_tests: bool) -> String {
    let body = if include_tests { text } else { text.split("#[cfg(test)]").next().unwrap_or(text) };
    body.lines().filter(|l| !l.trim_start().starts_with("//")).collect::<Vec<_>>().join("\n")
}

/// Every `crate::a::b` path as (a, b).
fn crate_paths(code: &str) -> Vec<(String, Option<String>)> {
    let mut out = Vec::new();
    let mut rest = code;
    while let Some(at) = rest.find("crate::") {
        let tail = &rest[at + "crate::".len()..];
        let ident = |s: &str| s.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect::<String>();
        let first = ident(tail);
        let after = &tail[first.len()..];
        let second = after.strip_prefix("::").map(ident).filter(|s| !s.is_empty());
        out.push((first, second));
        rest = &tail[1..];
    }
    out
}

#[test]
fn layers_point_one_way() {
    // What each layer may name.
    let allowed: BTreeMap<&str, &[&str]> = BTreeMap::from([
        ("domain", &["domain"][..]),
        ("wire", &["domain", "wire"][..]),
        ("io", &["domain", "wire", "io"][..]),
        ("app", &["domain", "wire", "io", "app"][..]),
        ("root", &["domain", "wire", "io", "app"][..]),
    ]);
    let mut violations = Vec::new();
    for (rel, text) in sources() {
        let here = place(&rel);
        let may = allowed.get(here.layer.as_str()).unwrap_or_else(|| panic!("{rel:?} is in no known layer"));
        for (layer, _) in crate_paths(&code_of(&text, true)) {
            if !may.contains(&layer.as_str()) {
                violations.push(format!("{} ({}) names crate::{layer}", rel.display(), here.layer));
            }
        }
    }
    assert!(violations.is_empty(), "layering violations:\n{}", violations.join("\n"));
}

#[test]
fn the_domain_does_no_io() {
    // Crates and std items that reach the network, the disk, threads, the environment or the
    // system clock. Allowed in `#[cfg(test)]` modules (vector files are read there).
    let forbidden = [
        "reqwest",
        "sled",
        "tokio",
        "std::fs",
        "std::net",
        "std::thread",
        "std::env",
        "std::process",
        "SystemTime",
        "Instant::now",
        "Utc::now",
        "Local::now",
    ];
    let mut violations = Vec::new();
    for (rel, text) in sources() {
        let here = place(&rel);
        if !matches!(here.layer.as_str(), "domain" | "wire") {
            continue;
        }
        let code = code_of(&text, false);
        for word in forbidden {
            if code.contains(word) {
                violations.push(format!("{} uses {word}", rel.display()));
            }
        }
    }
    assert!(violations.is_empty(), "I/O in the pure layers:\n{}", violations.join("\n"));
}

#[test]
fn the_domain_rooms_form_no_cycle() {
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (rel, text) in sources() {
        let here = place(&rel);
        let Some(room) = here.room else { continue };
        let node = edges.entry(room.clone()).or_default();
        for (layer, target) in crate_paths(&code_of(&text, true)) {
            if let (true, Some(target)) = (layer == "domain", target) {
                if target != room {
                    node.insert(target);
                }
            }
        }
    }
    assert!(edges.len() >= 10, "expected the domain's rooms, found {:?}", edges.keys());
    // Depth-first search for a back edge.
    fn visit(
        node: &str,
        edges: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|p| p == node) {
            let mut cycle = path[at..].to_vec();
            cycle.push(node.to_string());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_string());
        for next in edges.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(next, edges, path, done) {
                return Some(cycle);
            }
        }
        path.pop();
        done.insert(node.to_string());
        None
    }
    let mut done = BTreeSet::new();
    for node in edges.keys() {
        if let Some(cycle) = visit(node, &edges, &mut Vec::new(), &mut done) {
            panic!("the domain rooms form a cycle: {}", cycle.join(" → "));
        }
    }
}

#[test]
fn the_checker_sees_a_violation_when_there_is_one() {
    // The parsing above must find paths, or every test here passes vacuously.
    let paths = crate_paths("use crate::io::net::X;\nlet y = crate::app::CarePass::open();");
    assert_eq!(paths, vec![("io".into(), Some("net".into())), ("app".into(), Some("CarePass".into()))]);
    assert_eq!(code_of("a\n// crate::app\n#[cfg(test)]\nstd::fs", false), "a");
    assert_eq!(place(Path::new("domain/bills/state.rs")).room.as_deref(), Some("bills"));
    assert_eq!(place(Path::new("domain/money.rs")).room.as_deref(), Some("money"));
    assert_eq!(place(Path::new("domain/mod.rs")).room, None);
}
