//! The shape of the code, checked: warden-core's modules form layers, every dependency
//! points down (so there is no cycle), and no source file grows past 700 lines.
//!
//! Dependencies are read from the source text itself: every `crate::` path (in `use` lines,
//! grouped `use crate::{a, b}` lines and inline paths such as `crate::logs::x()`), and every
//! `super::` path that climbs out of a top-level module. Comments are ignored.
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// warden-core's top-level modules from the bottom up. A module may use only modules of a
/// lower layer (or of its own layer, if listed in [`SAME_LAYER`]).
const LAYERS: &[&[&str]] = &[
    &["model", "util"],
    &["proto", "process"],
    &["state"],
    &["logs"],
    &["config"],
    &["policy"],
    &["health"],
    &["engine"],
    &["api"],
    &["daemon"],
];

/// Allowed edges inside one layer (none today).
const SAME_LAYER: &[(&str, &str)] = &[];

/// The largest source file allowed, not counting `#[cfg(test)]` modules and test files.
const MAX_LINES: usize = 700;

fn src(krate: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(krate)
        .join("src")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The module path of a file: `src/engine/service/stop.rs` is `[engine, service, stop]`,
/// `src/engine/mod.rs` is `[engine]`, `src/lib.rs` is `[]`.
fn module_path(root: &Path, file: &Path) -> Vec<String> {
    let rel = file.strip_prefix(root).unwrap();
    let mut parts: Vec<String> = rel
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    let last = parts.pop().unwrap();
    let stem = last.trim_end_matches(".rs");
    if stem != "mod" && stem != "lib" {
        parts.push(stem.to_owned());
    }
    parts
}

/// The text without comments (line comments, doc comments and block comments) and without
/// the contents of string literals, so that neither a doc link nor a message counts.
fn code_only(text: &str) -> String {
    let b = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'/' && b.get(i + 1) == Some(&b'/') {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
        } else if b[i] == b'/' && b.get(i + 1) == Some(&b'*') {
            i += 2;
            while i + 1 < b.len() && !(b[i] == b'*' && b[i + 1] == b'/') {
                i += 1;
            }
            i += 2;
        } else if b[i] == b'"' {
            // A raw string's hashes are skipped like any other character before its quote.
            i += 1;
            while i < b.len() && b[i] != b'"' {
                if b[i] == b'\\' {
                    i += 1;
                }
                i += 1;
            }
            i += 1;
            out.push_str("\"\"");
        } else if b[i] == b'\'' && b.get(i + 2) == Some(&b'\'') {
            // A char literal such as '"' or '{'.
            i += 3;
        } else if b[i] == b'\'' && b.get(i + 1) == Some(&b'\\') {
            i += 2;
            while i < b.len() && b[i] != b'\'' {
                i += 1;
            }
            i += 1;
        } else {
            out.push(b[i] as char);
            i += 1;
        }
    }
    out
}

fn is_ident(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

/// The first segment of every path that follows `crate::` in `code`, including each item of
/// a `crate::{a, b::c}` group.
fn crate_paths(code: &str) -> Vec<String> {
    let b = code.as_bytes();
    let mut found = Vec::new();
    let mut from = 0;
    while let Some(pos) = code[from..].find("crate::") {
        let start = from + pos;
        from = start + "crate::".len();
        if start > 0 && (is_ident(b[start - 1]) || b[start - 1] == b':') {
            continue; // `warden_core::` or `$crate::`
        }
        let rest = &code[from..];
        if let Some(group) = rest.strip_prefix('{') {
            let mut depth = 0;
            let mut item = String::new();
            for c in group.chars() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        found.push(first_segment(&item));
                        item.clear();
                        continue;
                    }
                    _ => {}
                }
                if depth == 0 || c != '{' {
                    item.push(c);
                }
            }
            found.push(first_segment(&item));
        } else {
            found.push(first_segment(rest));
        }
    }
    found.retain(|s| !s.is_empty() && s != "self");
    found
}

fn first_segment(s: &str) -> String {
    s.trim_start()
        .bytes()
        .take_while(|c| is_ident(*c))
        .map(char::from)
        .collect()
}

/// The top-level modules reached by `super::` paths that climb out of `module`.
fn super_paths(code: &str, module: &[String]) -> Vec<String> {
    let b = code.as_bytes();
    let mut found = Vec::new();
    let mut from = 0;
    while let Some(pos) = code[from..].find("super::") {
        let start = from + pos;
        if start > 0 && (is_ident(b[start - 1]) || b[start - 1] == b':') {
            from = start + 7;
            continue;
        }
        let mut depth = 0;
        let mut i = start;
        while code[i..].starts_with("super::") {
            depth += 1;
            i += 7;
        }
        from = i;
        // Each `super` goes up one module; as many as the module path is deep reach the root.
        if depth >= module.len() {
            let seg = first_segment(&code[i..]);
            if !seg.is_empty() {
                found.push(seg);
            }
        }
    }
    found
}

/// Every edge `from -> to` between warden-core's top-level modules, with a file that has it.
fn edges() -> BTreeMap<(String, String), PathBuf> {
    let root = src("warden-core");
    let mut files = Vec::new();
    rust_files(&root, &mut files);
    let tops: BTreeSet<&str> = LAYERS.iter().flat_map(|l| l.iter().copied()).collect();
    let mut edges = BTreeMap::new();
    for file in files {
        let module = module_path(&root, &file);
        let Some(top) = module.first() else { continue };
        let code = code_only(&fs::read_to_string(&file).unwrap());
        let mut targets = crate_paths(&code);
        targets.extend(super_paths(&code, &module));
        for to in targets {
            assert!(
                tops.contains(to.as_str()) || to == "self",
                "{}: crate::{to} is not a module listed in LAYERS",
                file.display()
            );
            if to != *top {
                edges
                    .entry((top.clone(), to))
                    .or_insert_with(|| file.clone());
            }
        }
    }
    edges
}

fn layer_of(module: &str) -> usize {
    LAYERS
        .iter()
        .position(|l| l.contains(&module))
        .unwrap_or_else(|| panic!("module {module} is in no layer of LAYERS"))
}

#[test]
fn every_module_dependency_points_down() {
    let root = src("warden-core");
    let lib = fs::read_to_string(root.join("lib.rs")).unwrap();
    for line in lib.lines() {
        if let Some(m) = line.strip_prefix("pub mod ").or(line.strip_prefix("mod ")) {
            layer_of(m.trim_end_matches(';'));
        }
    }
    let edges = edges();
    // The reader sees the real graph: a few edges that must exist.
    for (from, to) in [("engine", "process"), ("config", "logs"), ("daemon", "api")] {
        assert!(
            edges.contains_key(&(from.to_owned(), to.to_owned())),
            "{from} -> {to} not seen; edges: {:?}",
            edges.keys()
        );
    }
    let mut bad = Vec::new();
    for ((from, to), file) in &edges {
        let (lf, lt) = (layer_of(from), layer_of(to));
        let allowed = lt < lf || SAME_LAYER.contains(&(from.as_str(), to.as_str()));
        if !allowed {
            bad.push(format!("{from} -> {to} (in {})", file.display()));
        }
    }
    assert!(
        bad.is_empty(),
        "dependencies that do not point down:\n{}",
        bad.join("\n")
    );
}

#[test]
fn the_checker_sees_grouped_inline_and_super_paths() {
    let code = code_only(
        "use crate::{config::X, logs::{a, b}};\nfn f() { crate::model::Signal::Term; }\n\
         // crate::daemon in a comment\nlet s = \"crate::api\";\nuse super::super::state;",
    );
    assert_eq!(crate_paths(&code), vec!["config", "logs", "model"]);
    let deep = vec!["engine".to_owned(), "service".to_owned()];
    assert_eq!(super_paths(&code, &deep), vec!["state"]);
    assert!(super_paths(&code, &["a".into(), "b".into(), "c".into()]).is_empty());
}

/// Lines of a file outside its `#[cfg(test)]` items.
fn lines_outside_tests(text: &str) -> usize {
    let mut count = 0;
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        if line.trim() == "#[cfg(test)]" {
            // Skip the item that follows: a `mod x;` line or a braced block.
            let mut depth = 0i32;
            for l in lines.by_ref() {
                depth += l.matches('{').count() as i32 - l.matches('}').count() as i32;
                if depth <= 0 && (l.trim_end().ends_with('}') || l.trim_end().ends_with(';')) {
                    break;
                }
            }
            continue;
        }
        count += 1;
    }
    count
}

#[test]
fn no_source_file_is_over_700_lines() {
    let mut too_long = Vec::new();
    for krate in ["warden-core", "warden"] {
        let mut files = Vec::new();
        rust_files(&src(krate), &mut files);
        for file in files {
            if file.file_name().is_some_and(|n| n == "tests.rs") {
                continue; // a test-only file
            }
            let n = lines_outside_tests(&fs::read_to_string(&file).unwrap());
            if n > MAX_LINES {
                too_long.push(format!("{}: {n} lines", file.display()));
            }
        }
    }
    assert!(
        too_long.is_empty(),
        "over {MAX_LINES} lines:\n{}",
        too_long.join("\n")
    );
}
