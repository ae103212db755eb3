//! The layering of `src/` (ARCHITECTURE.md's invariants), read from the source text: each
//! top-level module uses only the layers below it, the files of one folder use each other
//! without a circle, SQL is written only in `store/`, and the wall clock is read only in
//! `clock.rs`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The layers, lowest first: a module may use only modules before it in this list.
const LAYERS: &[&str] = &[
    "clock", "text", "probe", "sla", "config", "store", "notify", "report", "alert", "http",
    "runtime", "cli",
];

/// At most this many top-level modules besides `main.rs` and `lib.rs`.
const MAX_TOP_LEVEL: usize = 12;

/// A source file of the crate with its place in the module tree.
struct SourceFile {
    path: PathBuf,
    /// The folder's module path (e.g. `["store"]`), empty for the crate root.
    folder: Vec<String>,
    /// The file's own module name (`mod` for a `mod.rs`).
    name: String,
    /// The text without its `#[cfg(test)]` module (whose `super` is the file itself).
    code: String,
}

fn source_files() -> Vec<SourceFile> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut out = Vec::new();
    let mut stack = vec![root.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let relative = path.strip_prefix(&root).unwrap();
            let mut folder: Vec<String> = relative
                .parent()
                .unwrap()
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            folder.retain(|c| !c.is_empty());
            let name = path.file_stem().unwrap().to_string_lossy().into_owned();
            let text = std::fs::read_to_string(&path).unwrap();
            let code = match text.find("#[cfg(test)]\nmod tests") {
                Some(at) => text[..at].to_string(),
                None => text,
            };
            out.push(SourceFile {
                path,
                folder,
                name,
                code,
            });
        }
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    out
}

/// Text with comments and string literals blanked, so that words in them are not read as
/// paths (a doc comment naming `crate::x` is not a dependency).
fn code_only(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if text[i..].starts_with("//") {
            while i < bytes.len() && bytes[i] != b'\n' {
                i += 1;
            }
        } else if bytes[i] == b'"' {
            i += 1;
            while i < bytes.len() && bytes[i] != b'"' {
                if bytes[i] == b'\\' {
                    i += 1;
                }
                i += 1;
            }
            i += 1;
            out.push_str("\"\"");
        } else if text[i..].starts_with("r#\"") {
            let end = text[i + 3..]
                .find("\"#")
                .map_or(bytes.len(), |e| i + 3 + e + 2);
            i = end;
            out.push_str("\"\"");
        } else if bytes[i] == b'\'' && i + 1 < bytes.len() && bytes[i + 1] == b'\\' {
            let end = text[i + 2..]
                .find('\'')
                .map_or(bytes.len(), |e| i + 2 + e + 1);
            i = end;
            out.push_str("' '");
        } else if bytes[i] == b'\'' && i + 2 < bytes.len() && bytes[i + 2] == b'\'' {
            out.push_str("' '");
            i += 3;
        } else {
            out.push(bytes[i] as char);
            i += 1;
        }
    }
    out
}

/// Every path a file names: each `use` tree expanded, and each `crate::…`, `super::…` or
/// `self::…` path in the code. Declarations (`mod x;`) and re-exports (`pub use`) are not
/// uses: a folder's face may name what it holds without depending on it.
fn named_paths(code: &str) -> Vec<String> {
    let mut paths = Vec::new();
    let mut rest = code;
    let mut body = String::new();
    while let Some(at) = find_word(rest, "use") {
        let before = rest[..at].trim_end();
        let is_reexport = before.ends_with("pub") || before.ends_with(')');
        body.push_str(&rest[..at]);
        let after = &rest[at + 3..];
        let end = after.find(';').unwrap_or(after.len());
        if !is_reexport {
            expand_use_tree(after[..end].trim(), "", &mut paths);
        }
        rest = &after[(end + 1).min(after.len())..];
    }
    body.push_str(rest);
    for prefix in ["crate::", "super::", "self::"] {
        let mut from = 0;
        while let Some(found) = body[from..].find(prefix) {
            let start = from + found;
            let boundary = start == 0 || !is_ident(body.as_bytes()[start - 1] as char);
            let end = body[start..]
                .find(|c: char| !(is_ident(c) || c == ':'))
                .map_or(body.len(), |e| start + e);
            if boundary {
                paths.push(body[start..end].trim_end_matches(':').to_string());
            }
            from = end.max(start + prefix.len());
        }
    }
    paths
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

fn find_word(text: &str, word: &str) -> Option<usize> {
    let mut from = 0;
    while let Some(found) = text[from..].find(word) {
        let at = from + found;
        let before_ok = at == 0 || !is_ident(text.as_bytes()[at - 1] as char);
        let after_ok = text[at + word.len()..]
            .chars()
            .next()
            .is_some_and(|c| c.is_whitespace());
        if before_ok && after_ok {
            return Some(at);
        }
        from = at + word.len();
    }
    None
}

/// `a::{b, c::{d, e}}` → `a::b`, `a::c::d`, `a::c::e`.
fn expand_use_tree(tree: &str, prefix: &str, out: &mut Vec<String>) {
    let tree = tree.trim();
    if tree.is_empty() {
        return;
    }
    match tree.find('{') {
        None => {
            let path = tree.split(" as ").next().unwrap().trim();
            out.push(format!("{prefix}{path}"));
        }
        Some(open) => {
            let head = &tree[..open];
            let inner = &tree[open + 1..tree.rfind('}').unwrap_or(tree.len())];
            let mut depth = 0;
            let mut start = 0;
            for (i, c) in inner.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        expand_use_tree(&inner[start..i], &format!("{prefix}{head}"), out);
                        start = i + 1;
                    }
                    _ => {}
                }
            }
            expand_use_tree(&inner[start..], &format!("{prefix}{head}"), out);
        }
    }
}

/// The modules a folder's `mod.rs` declares (its files and subfolders).
fn declared_children(files: &[SourceFile], folder: &[String]) -> BTreeSet<String> {
    files
        .iter()
        .filter(|f| f.folder == folder && f.name != "mod")
        .map(|f| f.name.clone())
        .chain(
            files
                .iter()
                .filter(|f| f.folder.len() == folder.len() + 1 && f.folder.starts_with(folder))
                .map(|f| f.folder[folder.len()].clone()),
        )
        .collect()
}

/// The file's module path, e.g. `["store", "writer"]`; a `mod.rs` is its folder's module.
fn module_of(file: &SourceFile) -> Vec<String> {
    let mut m = file.folder.clone();
    if file.name != "mod"
        && !(file.folder.is_empty() && (file.name == "lib" || file.name == "main"))
    {
        m.push(file.name.clone());
    }
    m
}

/// Resolves a named path to an absolute module path (`crate` first element dropped), or
/// `None` for a path outside the crate.
fn resolve(file: &SourceFile, path: &str, children: &BTreeSet<String>) -> Option<Vec<String>> {
    let mut parts: Vec<&str> = path.split("::").filter(|p| !p.is_empty()).collect();
    let here = module_of(file);
    let mut base: Vec<String> = match parts.first()? {
        &"crate" => {
            parts.remove(0);
            Vec::new()
        }
        &"self" => {
            parts.remove(0);
            here.clone()
        }
        &"super" => {
            let mut m = here.clone();
            while parts.first() == Some(&"super") {
                parts.remove(0);
                m.pop();
            }
            m
        }
        first if file.name == "mod" && children.contains(*first) => here.clone(),
        _ => return None,
    };
    base.extend(parts.iter().map(|p| p.to_string()));
    Some(base)
}

struct Graph {
    /// Top-level module → the top-level modules it uses, with a file that shows each.
    top: BTreeMap<String, BTreeMap<String, PathBuf>>,
    /// Folder → (file → sibling files it uses).
    folders: BTreeMap<Vec<String>, BTreeMap<String, BTreeSet<String>>>,
}

fn graph(files: &[SourceFile]) -> Graph {
    let mut top: BTreeMap<String, BTreeMap<String, PathBuf>> = BTreeMap::new();
    let mut folders: BTreeMap<Vec<String>, BTreeMap<String, BTreeSet<String>>> = BTreeMap::new();
    for file in files {
        let here = module_of(file);
        let children = if file.name == "mod" {
            declared_children(files, &file.folder)
        } else {
            BTreeSet::new()
        };
        let code = code_only(&file.code);
        for path in named_paths(&code) {
            let Some(target) = resolve(file, &path, &children) else {
                continue;
            };
            let (Some(from_top), Some(to_top)) = (here.first(), target.first()) else {
                continue;
            };
            if from_top != to_top {
                top.entry(from_top.clone())
                    .or_default()
                    .entry(to_top.clone())
                    .or_insert_with(|| file.path.clone());
                continue;
            }
            if file.folder.is_empty() {
                continue;
            }
            // Inside the folder: which sibling (or the folder's mod.rs) the path reaches.
            let depth = file.folder.len();
            if target.len() < depth || target[..depth] != file.folder[..] {
                continue;
            }
            let siblings = declared_children(files, &file.folder);
            let to = match target.get(depth) {
                Some(next) if siblings.contains(next) => next.clone(),
                _ => "mod".to_string(),
            };
            if to != file.name {
                folders
                    .entry(file.folder.clone())
                    .or_default()
                    .entry(file.name.clone())
                    .or_default()
                    .insert(to);
            }
        }
    }
    Graph { top, folders }
}

/// A circle in `edges`, as the list of its nodes, if there is one.
fn find_circle(edges: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        edges: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|n| n == node) {
            let mut circle = path[at..].to_vec();
            circle.push(node.to_string());
            return Some(circle);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_string());
        for next in edges.get(node).into_iter().flatten() {
            if let Some(circle) = visit(next, edges, path, done) {
                return Some(circle);
            }
        }
        path.pop();
        done.insert(node.to_string());
        None
    }
    let mut done = BTreeSet::new();
    for node in edges.keys() {
        if let Some(circle) = visit(node, edges, &mut Vec::new(), &mut done) {
            return Some(circle);
        }
    }
    None
}

#[test]
fn top_level_modules_are_the_layers_and_few() {
    let files = source_files();
    let top: BTreeSet<String> = files
        .iter()
        .map(|f| f.folder.first().cloned().unwrap_or_else(|| f.name.clone()))
        .filter(|m| m != "lib" && m != "main")
        .collect();
    let layers: BTreeSet<String> = LAYERS.iter().map(|s| s.to_string()).collect();
    assert_eq!(
        top, layers,
        "src/ holds exactly the layers ARCHITECTURE.md lists (update both together)"
    );
    assert!(
        top.len() <= MAX_TOP_LEVEL,
        "{} top-level modules",
        top.len()
    );
}

#[test]
fn each_layer_uses_only_the_layers_below_it() {
    let files = source_files();
    let graph = graph(&files);
    let rank = |m: &str| LAYERS.iter().position(|l| *l == m);
    let mut wrong = Vec::new();
    for (from, targets) in &graph.top {
        for (to, shown_in) in targets {
            match (rank(from), rank(to)) {
                (Some(f), Some(t)) if t < f => {}
                _ => wrong.push(format!(
                    "{from} -> {to} (in {}): a layer may use only the layers below it: {LAYERS:?}",
                    shown_in.display()
                )),
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn no_circle_between_the_files_of_a_folder() {
    let files = source_files();
    let graph = graph(&files);
    let mut circles = Vec::new();
    for (folder, edges) in &graph.folders {
        if let Some(circle) = find_circle(edges) {
            circles.push(format!(
                "src/{}/: {}",
                folder.join("/"),
                circle.join(" -> ")
            ));
        }
    }
    assert!(circles.is_empty(), "{}", circles.join("\n"));
}

#[test]
fn the_checker_sees_a_circle_and_a_layer_used_upwards() {
    // The checks above would pass on a checker that sees nothing: feed it files that break
    // both rules.
    let file = |folder: &[&str], name: &str, code: &str| SourceFile {
        path: PathBuf::from(format!("{}/{name}.rs", folder.join("/"))),
        folder: folder.iter().map(|s| s.to_string()).collect(),
        name: name.to_string(),
        code: code.to_string(),
    };
    let files = vec![
        file(&["store"], "mod", "mod a;\nmod b;\npub use a::Thing;\n"),
        file(
            &["store"],
            "a",
            "use super::b::Other;\nfn f() { crate::report::x(); }\n",
        ),
        file(
            &["store"],
            "b",
            "use super::{a::Thing, mod_level};\n// crate::cli is only named in a comment\n",
        ),
        file(
            &["report"],
            "mod",
            "use crate::store::{self, a::Thing};\nlet s = \"crate::cli\";\n",
        ),
    ];
    let graph = graph(&files);
    assert!(graph.top["store"].contains_key("report"));
    assert!(!graph.top["store"].contains_key("cli"));
    assert!(!graph.top.contains_key("cli"));
    assert!(graph.top["report"].contains_key("store"));
    let circle = find_circle(&graph.folders[&vec!["store".to_string()]]).unwrap();
    assert_eq!(circle, ["a", "b", "a"]);
    assert!(!graph.folders[&vec!["store".to_string()]].contains_key("mod"));
}

/// Lines outside `allowed` (a file or folder under src/) where `pattern` appears in code.
fn lines_outside(allowed: &[&str], patterns: &[&str], in_strings: bool) -> Vec<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut found = Vec::new();
    for file in source_files() {
        let relative = file
            .path
            .strip_prefix(&root)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        if allowed.iter().any(|a| relative.starts_with(a)) {
            continue;
        }
        let text = if in_strings {
            file.code.clone()
        } else {
            code_only(&file.code)
        };
        for (n, line) in text.lines().enumerate() {
            if line.trim_start().starts_with("//") {
                continue;
            }
            if patterns.iter().any(|p| line.contains(p)) {
                found.push(format!("src/{relative}:{}: {}", n + 1, line.trim()));
            }
        }
    }
    found
}

#[test]
fn sql_is_written_only_in_the_store() {
    let found = lines_outside(
        &["store/"],
        &[
            "SELECT ",
            "INSERT ",
            "UPDATE ",
            "DELETE FROM",
            "CREATE ",
            "PRAGMA ",
            "VACUUM",
            "BEGIN ",
        ],
        true,
    );
    assert!(
        found.is_empty(),
        "SQL belongs in store/, behind a function named for what it does:\n{}",
        found.join("\n")
    );
}

#[test]
fn the_wall_clock_is_read_only_in_clock() {
    let found = lines_outside(
        &["clock.rs"],
        &["Timestamp::now(", "SystemTime::now(", "Zoned::now("],
        false,
    );
    assert!(
        found.is_empty(),
        "read the wall clock through clock::Clock (tests can step it):\n{}",
        found.join("\n")
    );
}
