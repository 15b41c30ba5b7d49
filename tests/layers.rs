//! Layers point down: reads `src/**/*.rs`, builds the graph of top-level modules from every path that
//! names another one (`crate::x`, `use crate::{x, y::z}`, a `super::` that climbs to the crate root),
//! and fails on a cycle, on a bottom module naming a feature or a top module, and on a feature naming a
//! top module. Comments, string literals and `#[cfg(test)]` items do not count.
//!
//! The layers:
//! - **bottom** ([`BOTTOM`]) names no feature and no top module;
//! - **features** ([`FEATURES`]) use the bottom and each other, never in a circle, never the top;
//! - **top** ([`TOP`]) wires everything (`AppState`, pages, startup, CLI).
//!
//! Edges that break a rule today are listed in [`KNOWN`], each with why and what removes it: a ratchet.
//! A cycle or layer break through any edge not in the list fails, and so does a listed edge that is
//! gone or breaks no rule any more (delete its line: the list only shrinks).

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt::Write as _;
use std::path::Path;

/// Below every feature: settings, key material, errors, messages, the database, the generic cache,
/// logs and metrics, the per-request middleware, the invalidation bus, the page plumbing shared
/// by the features that render HTML, and the state every feature may reach (`AppState`, which names
/// no feature).
const BOTTOM: &[&str] = &[
    "config",
    "crypto",
    "error",
    "i18n",
    "db",
    "cache",
    "json",
    "telemetry",
    "metrics",
    "request",
    "invalidate",
    "pages",
    "state",
];
/// The features: each owns its types and state.
const FEATURES: &[&str] = &[
    "accounts",
    "apikeys",
    "apis",
    "audit",
    "jwt",
    "oauth",
    "ratelimit",
    "gateway",
];
/// What wires features together: every feature's state on a node (`Node`), the dashboard,
/// startup, the CLI, the OpenAPI document, the operational endpoints and the background jobs.
const TOP: &[&str] = &["web", "node", "startup", "cli", "openapi", "ops", "janitor"];

/// Edges allowed for now, `(from, to, why and what removes it)`. Only ever delete lines.
const KNOWN: &[(&str, &str, &str)] = &[
    // Empty since issue 14: no cycle between top-level modules, no layer break. Keep it so.
];

// ---------------------------------------------------------------------------------------------------
// The real tree.

#[test]
fn layers_point_down() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = BTreeMap::new();
    read_tree(&src, &src, &mut files);
    assert!(
        files.len() > 10,
        "read {} files under {}",
        files.len(),
        src.display()
    );
    let graph = Graph::of(&files);
    let problems = check(&graph, KNOWN);
    assert!(problems.is_empty(), "\n{}", problems.join("\n\n"));
}

fn read_tree(root: &Path, dir: &Path, out: &mut BTreeMap<String, String>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .map(|e| e.expect("dir entry").path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            read_tree(root, &path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let rel = path
                .strip_prefix(root)
                .expect("under src")
                .to_string_lossy()
                .replace('\\', "/");
            let text = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
            out.insert(rel, text);
        }
    }
}

// ---------------------------------------------------------------------------------------------------
// The graph.

/// Where one module names another: `src/`-relative file and 1-based line.
type Site = (String, usize);

#[derive(Debug, Default)]
struct Graph {
    modules: BTreeSet<String>,
    /// `(from, to)` → every place `from` names `to`.
    edges: BTreeMap<(String, String), Vec<Site>>,
    /// Paths the checker could not follow (a `super::` above the crate root, …).
    errors: Vec<String>,
}

impl Graph {
    /// `files`: path relative to `src/` → source text.
    fn of(files: &BTreeMap<String, String>) -> Self {
        let mut g = Graph::default();
        for path in files.keys() {
            if let Some(top) = top_module(path) {
                g.modules.insert(top);
            }
        }
        let mut skipped: BTreeSet<String> = BTreeSet::new();
        // Files declared by `#[cfg(test)] mod x;` are test code too; parents come before children
        // in the sorted order only by accident, so collect first.
        let cleaned: BTreeMap<&String, String> = files
            .iter()
            .map(|(path, text)| {
                let (text, test_mods) = without_tests(&blank_comments_and_strings(text));
                for m in test_mods {
                    skipped.extend(child_files(path, &m));
                }
                (path, text)
            })
            .collect();
        for (path, text) in cleaned {
            let Some(top) = top_module(path) else {
                continue;
            };
            if skipped.contains(path.as_str()) {
                continue;
            }
            for (line, target) in references(path, &text, &g.modules, &mut g.errors) {
                if target != top {
                    g.edges
                        .entry((top.clone(), target))
                        .or_default()
                        .push((path.clone(), line));
                }
            }
        }
        g
    }

    fn targets(&self, from: &str) -> impl Iterator<Item = &str> {
        self.edges
            .keys()
            .filter(move |(f, _)| f == from)
            .map(|(_, t)| t.as_str())
    }

    fn site(&self, from: &str, to: &str) -> String {
        let sites = &self.edges[&(from.to_owned(), to.to_owned())];
        let (file, line) = &sites[0];
        let more = match sites.len() {
            1 => String::new(),
            n => format!(" (and {} more)", n - 1),
        };
        format!("{from} -> {to}: src/{file}:{line}{more}")
    }

    /// Strongly connected components with more than one module (Tarjan).
    fn cycles(&self) -> Vec<BTreeSet<String>> {
        struct T<'a> {
            g: &'a Graph,
            index: BTreeMap<&'a str, usize>,
            low: BTreeMap<&'a str, usize>,
            stack: Vec<&'a str>,
            on: BTreeSet<&'a str>,
            out: Vec<BTreeSet<String>>,
        }
        fn visit<'a>(t: &mut T<'a>, v: &'a str) {
            let i = t.index.len();
            t.index.insert(v, i);
            t.low.insert(v, i);
            t.stack.push(v);
            t.on.insert(v);
            let g = t.g;
            for w in g.targets(v) {
                if !t.index.contains_key(w) {
                    visit(t, w);
                    let lw = t.low[w];
                    let lv = t.low.get_mut(v).expect("visited");
                    *lv = (*lv).min(lw);
                } else if t.on.contains(w) {
                    let iw = t.index[w];
                    let lv = t.low.get_mut(v).expect("visited");
                    *lv = (*lv).min(iw);
                }
            }
            if t.low[v] == t.index[v] {
                let mut comp = BTreeSet::new();
                loop {
                    let w = t.stack.pop().expect("on the stack");
                    t.on.remove(w);
                    comp.insert(w.to_owned());
                    if w == v {
                        break;
                    }
                }
                if comp.len() > 1 {
                    t.out.push(comp);
                }
            }
        }
        let mut t = T {
            g: self,
            index: BTreeMap::new(),
            low: BTreeMap::new(),
            stack: Vec::new(),
            on: BTreeSet::new(),
            out: Vec::new(),
        };
        for m in &self.modules {
            if !t.index.contains_key(m.as_str()) {
                visit(&mut t, m);
            }
        }
        t.out
    }

    /// A shortest cycle through `from -> to`: `[from, to, …, from]`.
    fn cycle_through(&self, from: &str, to: &str) -> Vec<String> {
        let mut prev: BTreeMap<&str, &str> = BTreeMap::new();
        let mut queue = VecDeque::from([to]);
        let mut seen = BTreeSet::from([to]);
        while let Some(v) = queue.pop_front() {
            if v == from {
                break;
            }
            for w in self.targets(v) {
                if seen.insert(w) {
                    prev.insert(w, v);
                    queue.push_back(w);
                }
            }
        }
        // Back from `from` to `to`, then turned around.
        let mut back = vec![from.to_owned()];
        let mut v = from;
        while v != to {
            v = prev[v];
            back.push(v.to_owned());
        }
        back.push(from.to_owned());
        back.reverse();
        back
    }
}

fn layer(module: &str) -> Option<&'static str> {
    if BOTTOM.contains(&module) {
        Some("bottom")
    } else if FEATURES.contains(&module) {
        Some("feature")
    } else if TOP.contains(&module) {
        Some("top")
    } else {
        None
    }
}

/// Every problem of `graph`, given the edges allowed for now; empty when the layers hold.
fn check(graph: &Graph, known: &[(&str, &str, &str)]) -> Vec<String> {
    let mut problems = graph.errors.clone();
    for m in &graph.modules {
        if layer(m).is_none() {
            problems.push(format!(
                "src/{m}: a new top-level module; put it in BOTTOM, FEATURES or TOP in tests/layers.rs"
            ));
        }
    }
    let is_known = |f: &str, t: &str| known.iter().any(|(kf, kt, _)| *kf == f && *kt == t);
    let cycles = graph.cycles();
    let in_cycle = |f: &str, t: &str| cycles.iter().any(|c| c.contains(f) && c.contains(t));
    let breaks_layer = |f: &str, t: &str| match (layer(f), layer(t)) {
        (Some("bottom"), Some(to)) => to != "bottom",
        (Some("feature"), Some(to)) => to == "top",
        _ => false,
    };
    let mut reported: BTreeSet<(String, String)> = BTreeSet::new();
    for (f, t) in graph.edges.keys() {
        if is_known(f, t) {
            continue;
        }
        if breaks_layer(f, t) {
            problems.push(format!(
                "a {} module names a {} module (layers point down):\n  {}",
                layer(f).unwrap_or("?"),
                layer(t).unwrap_or("?"),
                graph.site(f, t)
            ));
        }
        if in_cycle(f, t) && !reported.contains(&(f.clone(), t.clone())) {
            let cycle = graph.cycle_through(f, t);
            let mut text = format!("a cycle between top-level modules: {}", cycle.join(" -> "));
            for pair in cycle.windows(2) {
                reported.insert((pair[0].clone(), pair[1].clone()));
                let allowed = if is_known(&pair[0], &pair[1]) {
                    "  (in KNOWN)"
                } else {
                    ""
                };
                let _ = write!(text, "\n  {}{allowed}", graph.site(&pair[0], &pair[1]));
            }
            problems.push(text);
        }
    }
    for (f, t, _) in known {
        let exists = graph
            .edges
            .contains_key(&((*f).to_owned(), (*t).to_owned()));
        if !exists {
            problems.push(format!(
                "KNOWN lists {f} -> {t}, which no longer exists: delete its line in tests/layers.rs"
            ));
        } else if !breaks_layer(f, t) && !in_cycle(f, t) {
            problems.push(format!(
                "KNOWN lists {f} -> {t}, which is no longer in a cycle nor breaks a layer: delete its line in tests/layers.rs"
            ));
        }
    }
    problems
}

// ---------------------------------------------------------------------------------------------------
// Reading Rust (just enough of it).

/// The top-level module of a `src/`-relative file; `None` for the crate roots.
fn top_module(path: &str) -> Option<String> {
    let first = path.split('/').next()?;
    if path == "lib.rs" || path == "main.rs" {
        return None;
    }
    Some(first.strip_suffix(".rs").unwrap_or(first).to_owned())
}

/// How deep the file's module is below the crate root: `a.rs` and `a/mod.rs` are 1, `a/b.rs` 2.
fn file_depth(path: &str) -> usize {
    let parts: Vec<&str> = path.split('/').collect();
    match parts.last() {
        Some(&"mod.rs") => parts.len() - 1,
        _ => parts.len(),
    }
}

/// The files a `mod name;` in `path` may live in.
fn child_files(path: &str, name: &str) -> Vec<String> {
    let dir = match path.rsplit_once('/') {
        Some((dir, "mod.rs")) => dir.to_owned(),
        Some((dir, file)) => format!("{dir}/{}", file.trim_end_matches(".rs")),
        None => path.trim_end_matches(".rs").to_owned(),
    };
    vec![format!("{dir}/{name}.rs"), format!("{dir}/{name}/mod.rs")]
}

/// The text with comments and the insides of string and character literals replaced by spaces
/// (newlines kept, so line numbers hold).
fn blank_comments_and_strings(src: &str) -> String {
    let b: Vec<char> = src.chars().collect();
    let mut out = String::with_capacity(src.len());
    let blank = |c: char| if c == '\n' { '\n' } else { ' ' };
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let next = b.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < b.len() && b[i] != '\n' {
                out.push(' ');
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            let mut depth = 0;
            while i < b.len() {
                if b[i] == '/' && b.get(i + 1) == Some(&'*') {
                    depth += 1;
                    out.push_str("  ");
                    i += 2;
                } else if b[i] == '*' && b.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    out.push_str("  ");
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    out.push(blank(b[i]));
                    i += 1;
                }
            }
        } else if (c == 'r' || (c == 'b' && next == Some('r')))
            && !b[..i]
                .last()
                .is_some_and(|p| p.is_alphanumeric() || *p == '_')
            && raw_string_start(&b, if c == 'b' { i + 1 } else { i }).is_some()
        {
            let at = if c == 'b' { i + 1 } else { i };
            let hashes = raw_string_start(&b, at).expect("checked");
            // r, hashes, quote
            let open = at + 1 + hashes + 1;
            for ch in &b[i..open] {
                out.push(*ch);
            }
            i = open;
            loop {
                if i >= b.len() {
                    break;
                }
                if b[i] == '"'
                    && b[i + 1..]
                        .iter()
                        .take(hashes)
                        .filter(|h| **h == '#')
                        .count()
                        == hashes
                {
                    out.push('"');
                    out.extend(std::iter::repeat_n('#', hashes));
                    i += 1 + hashes;
                    break;
                }
                out.push(blank(b[i]));
                i += 1;
            }
        } else if c == '"' {
            out.push('"');
            i += 1;
            while i < b.len() && b[i] != '"' {
                if b[i] == '\\' {
                    out.push(' ');
                    i += 1;
                }
                if i < b.len() {
                    out.push(blank(b[i]));
                    i += 1;
                }
            }
            out.push('"');
            i += 1;
        } else if c == '\'' {
            // A character literal ('x', '\n', '\u{1F600}', '\'') or a lifetime ('a).
            let end = if next == Some('\\') {
                b[i + 2..]
                    .iter()
                    .position(|&ch| ch == '\'')
                    .map(|p| i + 2 + p)
            } else if b.get(i + 2) == Some(&'\'') {
                Some(i + 2)
            } else {
                None
            };
            match end {
                Some(end) => {
                    out.push('\'');
                    out.extend(std::iter::repeat_n(' ', end - i - 1));
                    out.push('\'');
                    i = end + 1;
                }
                None => {
                    out.push(c);
                    i += 1;
                }
            }
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

/// At `b[at] == 'r'`: the number of `#` of a raw string opening there (`r"`, `r#"`, …).
fn raw_string_start(b: &[char], at: usize) -> Option<usize> {
    if b.get(at) != Some(&'r') {
        return None;
    }
    let hashes = b[at + 1..].iter().take_while(|c| **c == '#').count();
    (b.get(at + 1 + hashes) == Some(&'"')).then_some(hashes)
}

/// The (blanked) text without `#[cfg(test)]` items, and the names of `#[cfg(test)] mod x;` files.
fn without_tests(text: &str) -> (String, Vec<String>) {
    const ATTR: &str = "#[cfg(test)]";
    let mut b: Vec<char> = text.chars().collect();
    let mut test_mods = Vec::new();
    let attr: Vec<char> = ATTR.chars().collect();
    let mut i = 0;
    while i + attr.len() <= b.len() {
        if b[i..i + attr.len()] != attr[..] {
            i += 1;
            continue;
        }
        let start = i;
        let mut j = i + attr.len();
        // Further attributes, then the item up to its `;` or its closing `}`.
        let mut depth = 0i32;
        let mut item = String::new();
        while j < b.len() {
            let c = b[j];
            match c {
                '(' | '[' => depth += 1,
                ')' | ']' => depth -= 1,
                ';' if depth == 0 => {
                    j += 1;
                    break;
                }
                '{' if depth == 0 => {
                    let mut braces = 0;
                    while j < b.len() {
                        match b[j] {
                            '{' => braces += 1,
                            '}' => {
                                braces -= 1;
                                if braces == 0 {
                                    break;
                                }
                            }
                            _ => {}
                        }
                        j += 1;
                    }
                    j += 1;
                    item.clear();
                    break;
                }
                _ => {}
            }
            item.push(c);
            j += 1;
        }
        let words: Vec<&str> = item.split_whitespace().collect();
        if let Some(pos) = words.iter().position(|w| *w == "mod")
            && let Some(name) = words.get(pos + 1)
        {
            test_mods.push(name.trim_end_matches(';').to_owned());
        }
        let end = j.min(b.len());
        for c in &mut b[start..end] {
            if *c != '\n' {
                *c = ' ';
            }
        }
        i = j;
    }
    (b.into_iter().collect(), test_mods)
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Path,
    Open,
    Close,
    Comma,
    Other(char),
}

fn tokens(text: &str) -> Vec<(Tok, usize)> {
    let b: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut line = 1;
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c == '\n' {
            line += 1;
            i += 1;
        } else if c.is_whitespace() {
            i += 1;
        } else if c.is_alphabetic() || c == '_' {
            let start = i;
            while i < b.len() && (b[i].is_alphanumeric() || b[i] == '_') {
                i += 1;
            }
            out.push((Tok::Ident(b[start..i].iter().collect()), line));
        } else if c == ':' && b.get(i + 1) == Some(&':') {
            out.push((Tok::Path, line));
            i += 2;
        } else {
            out.push((
                match c {
                    '{' => Tok::Open,
                    '}' => Tok::Close,
                    ',' => Tok::Comma,
                    c => Tok::Other(c),
                },
                line,
            ));
            i += 1;
        }
    }
    out
}

/// Every `(line, top-level module)` the (blanked, test-free) `text` of `path` names.
fn references(
    path: &str,
    text: &str,
    modules: &BTreeSet<String>,
    errors: &mut Vec<String>,
) -> Vec<(usize, String)> {
    let toks = tokens(text);
    let ident = |k: usize| match toks.get(k) {
        Some((Tok::Ident(s), _)) => Some(s.as_str()),
        _ => None,
    };
    let is_path = |k: usize| toks.get(k).map(|t| &t.0) == Some(&Tok::Path);
    let mut out = Vec::new();
    // One entry per open brace: does it open an inline `mod x { … }`?
    let mut braces: Vec<bool> = Vec::new();
    let mut k = 0;
    while k < toks.len() {
        let (tok, line) = &toks[k];
        let after_path = k > 0 && toks[k - 1].0 == Tok::Path;
        match tok {
            Tok::Open => {
                let is_mod = k >= 2 && ident(k - 2) == Some("mod") && ident(k - 1).is_some();
                braces.push(is_mod);
            }
            Tok::Close => {
                braces.pop();
            }
            Tok::Ident(word) if !after_path && (word == "crate" || word == "super") => {
                // `crate` is the root; each `super` climbs one module (inline ones included).
                // `j`: the `::` after the last `crate`/`super`.
                let depth = file_depth(path) + braces.iter().filter(|m| **m).count();
                let (root, j) = if word == "crate" {
                    (true, k + 1)
                } else {
                    let mut up = 0;
                    let mut j = k;
                    while ident(j) == Some("super") && is_path(j + 1) {
                        up += 1;
                        j += 2;
                    }
                    if up == 0 {
                        k += 1;
                        continue;
                    }
                    if up > depth {
                        errors.push(format!("src/{path}:{line}: super:: above the crate root"));
                    }
                    (up == depth, j - 1)
                };
                if root && is_path(j) {
                    match toks.get(j + 1) {
                        Some((Tok::Ident(m), l)) if modules.contains(m) => {
                            out.push((*l, m.clone()))
                        }
                        Some((Tok::Open, _)) => out.extend(group(&toks, j + 1, modules)),
                        _ => {}
                    }
                }
                k = j + 1;
                continue;
            }
            _ => {}
        }
        k += 1;
    }
    out
}

/// The modules named first in each item of the group opening at `toks[open]`: `{a, b::c, d::{e}}`.
fn group(toks: &[(Tok, usize)], open: usize, modules: &BTreeSet<String>) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut depth = 0;
    let mut item_start = true;
    for (tok, line) in &toks[open..] {
        match tok {
            Tok::Open => {
                depth += 1;
                item_start = depth == 1;
            }
            Tok::Close => {
                depth -= 1;
                if depth == 0 {
                    break;
                }
            }
            Tok::Comma if depth == 1 => item_start = true,
            Tok::Ident(m) if depth == 1 && item_start => {
                if modules.contains(m) {
                    out.push((*line, m.clone()));
                }
                item_start = false;
            }
            _ => item_start = false,
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------------
// The checker on small made-up trees.

fn tree(files: &[(&str, &str)]) -> Graph {
    let files = files
        .iter()
        .map(|(p, t)| ((*p).to_owned(), (*t).to_owned()))
        .collect();
    Graph::of(&files)
}

fn edges(g: &Graph) -> Vec<String> {
    g.edges
        .iter()
        .map(|((f, t), sites)| {
            let at: Vec<String> = sites.iter().map(|(p, l)| format!("{p}:{l}")).collect();
            format!("{f}->{t} {}", at.join(","))
        })
        .collect()
}

#[test]
fn a_cycle_is_found_and_named_with_its_sites() {
    let g = tree(&[
        ("config.rs", "use crate::crypto::Key;\n"),
        ("crypto.rs", "\n\npub fn f() { crate::db::run(); }\n"),
        ("db/mod.rs", "mod x;\n"),
        ("db/x.rs", "fn g() -> crate::config::Settings { todo!() }\n"),
    ]);
    assert_eq!(
        edges(&g),
        [
            "config->crypto config.rs:1",
            "crypto->db crypto.rs:3",
            "db->config db/x.rs:1"
        ]
    );
    let problems = check(&g, &[]);
    let cycle = problems
        .iter()
        .find(|p| p.contains("a cycle"))
        .expect("the cycle is reported");
    assert!(
        cycle.contains("config -> crypto: src/config.rs:1"),
        "{cycle}"
    );
    assert!(cycle.contains("crypto -> db: src/crypto.rs:3"), "{cycle}");
    assert!(cycle.contains("db -> config: src/db/x.rs:1"), "{cycle}");
    // Allowing one edge is not enough: the cycle still runs through the others.
    let one = check(&g, &[("db", "config", "test")]);
    assert!(one.iter().any(|p| p.contains("a cycle")), "{one:?}");
    assert!(
        check(
            &g,
            &[
                ("db", "config", "t"),
                ("config", "crypto", "t"),
                ("crypto", "db", "t")
            ]
        )
        .is_empty()
    );
}

#[test]
fn a_clean_tree_passes() {
    let g = tree(&[
        ("lib.rs", "pub mod config; pub mod db; pub mod web;\n"),
        (
            "config.rs",
            "// crate::web::page in a comment\nconst S: &str = \"crate::web\";\n",
        ),
        (
            "db/mod.rs",
            "use crate::{config::{self, Settings}, error};\nuse super::config as c;\n",
        ),
        ("error.rs", "fn f<'a>(x: &'a str) -> char { '\"' }\n"),
        (
            "web/mod.rs",
            "use crate::{db, config};\nmod inner { use super::super::db; }\n#[cfg(test)]\nmod tests { use crate::web; use super::*; }\n",
        ),
    ]);
    assert_eq!(
        edges(&g),
        [
            "db->config db/mod.rs:1,db/mod.rs:2",
            "db->error db/mod.rs:1",
            "web->config web/mod.rs:1",
            "web->db web/mod.rs:1,web/mod.rs:2",
        ]
    );
    assert_eq!(check(&g, &[]), Vec::<String>::new());
}

#[test]
fn test_code_and_literals_do_not_count() {
    let g = tree(&[
        (
            "config.rs",
            "#[cfg(test)]\nuse crate::web::X;\nconst R: &str = r#\"crate::web\"#;\n",
        ),
        (
            "cache.rs",
            "#[cfg(test)]\n#[allow(dead_code)]\nfn t(a: [u8; 2]) { crate::web::f(); }\nfn ok() {}\n",
        ),
        ("db/mod.rs", "#[cfg(test)]\nmod tests;\n"),
        ("db/tests.rs", "use crate::web;\n"),
        ("web.rs", "/* crate::db /* nested */ crate::db */\n"),
    ]);
    assert_eq!(edges(&g), Vec::<String>::new());
}

#[test]
fn layer_breaks_and_stale_known_edges_fail() {
    let g = tree(&[
        ("config.rs", "use crate::apikeys::KeyType;\n"),
        ("apikeys/mod.rs", "use crate::web::Page;\n"),
        ("web.rs", "\n"),
        ("newthing.rs", "\n"),
    ]);
    let problems = check(&g, &[]).join("\n");
    assert!(
        problems.contains("a bottom module names a feature module"),
        "{problems}"
    );
    assert!(
        problems.contains("config -> apikeys: src/config.rs:1"),
        "{problems}"
    );
    assert!(
        problems.contains("a feature module names a top module"),
        "{problems}"
    );
    assert!(
        problems.contains("src/newthing: a new top-level module"),
        "{problems}"
    );
    let known = [
        ("config", "apikeys", "t"),
        ("apikeys", "web", "t"),
        ("web", "config", "gone"),
    ];
    let problems = check(&g, &known).join("\n");
    assert!(
        problems.contains("KNOWN lists web -> config, which no longer exists"),
        "{problems}"
    );
    assert!(!problems.contains("names a"), "{problems}");
    let fine = tree(&[
        ("apikeys/mod.rs", "use crate::config;\n"),
        ("config.rs", ""),
    ]);
    let problems = check(&fine, &[("apikeys", "config", "t")]).join("\n");
    assert!(
        problems.contains("no longer in a cycle nor breaks a layer"),
        "{problems}"
    );
}

#[test]
fn super_that_reaches_the_root_names_a_module() {
    let g = tree(&[
        ("web/mod.rs", "use super::db;\n"),
        (
            "web/dashboard/mod.rs",
            "use super::super::config;\nuse super::flash;\n",
        ),
        ("db.rs", ""),
        ("config.rs", ""),
        ("flash.rs", ""),
    ]);
    assert_eq!(
        edges(&g),
        ["web->config web/dashboard/mod.rs:1", "web->db web/mod.rs:1"]
    );
}
