//! `cargo xtask imports`: the import graph of every crate's source files,
//! and the circles in it.
//!
//! A file imports another when it names an item of the other's module by
//! path: a `use` line, or a path in code (`crate::thread::current()`,
//! `super::Space`). `mod` lines are not imports: a parent declares its
//! children, and only a path to them counts. A file's module is where it
//! lies (`kernel/src/arch/trap.rs` is `arch::trap`, a `mod.rs` is its
//! folder's module), and a path names the deepest module file it reaches
//! (`crate::arch::trap::TrapFrame` names `arch/trap.rs`).
//!
//! The graph of each crate must have no circle: every import runs down the
//! layers, so that the code can be read from the bottom up. Comments,
//! strings and `#[cfg(test)]` modules are read like code, except that a
//! file's own unit tests (`mod tests { ... }` at the end) are skipped: a
//! test may look anywhere.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// One crate's source files, by module path.
pub struct Crate {
    /// Module path (`arch::trap`; the root is the empty path) to file.
    pub modules: BTreeMap<String, PathBuf>,
    /// Each module's re-exports (`pub use x::Y;`): name to the path written.
    reexports: BTreeMap<String, BTreeMap<String, Vec<String>>>,
    /// Each module's text without its re-exports and unit tests.
    texts: BTreeMap<String, String>,
    /// Each `macro_rules!` macro's name, to the module that defines it: a
    /// file that calls `name!` (or names `crate::name`) imports that module.
    macros: BTreeMap<String, String>,
}

/// The crates of the workspace that `cargo xtask imports` checks.
pub fn workspace_crates(root: &Path) -> Vec<PathBuf> {
    let mut crates = vec![root.join("kernel/src"), root.join("xtask/src"), root.join("fuzz/src")];
    if let Ok(entries) = fs::read_dir(root.join("crates")) {
        let mut more: Vec<PathBuf> = entries.flatten().map(|e| e.path().join("src")).filter(|p| p.is_dir()).collect();
        more.sort();
        crates.extend(more);
    }
    crates
}

impl Crate {
    /// Reads the `.rs` files under `src`.
    pub fn read(src: &Path) -> Result<Crate, String> {
        let mut modules = BTreeMap::new();
        let mut stack = vec![src.to_path_buf()];
        while let Some(dir) = stack.pop() {
            let entries = fs::read_dir(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
            for entry in entries.flatten() {
                let path = entry.path();
                if path.is_dir() {
                    stack.push(path);
                } else if path.extension().is_some_and(|e| e == "rs") {
                    modules.insert(module_of(src, &path), path);
                }
            }
        }
        let mut krate = Crate { modules, reexports: BTreeMap::new(), texts: BTreeMap::new(), macros: BTreeMap::new() };
        for (module, path) in &krate.modules {
            let text = fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
            for name in macro_definitions(&text) {
                krate.macros.insert(name, module.clone());
            }
            let (code, reexports) = split_reexports(&without_comments(&without_unit_tests(&text)));
            krate.texts.insert(module.clone(), code);
            krate.reexports.insert(module.clone(), reexports);
        }
        Ok(krate)
    }

    /// Every file's imports: module -> the modules it names.
    pub fn imports(&self) -> Result<BTreeMap<String, BTreeSet<String>>, String> {
        let mut graph = BTreeMap::new();
        for (module, text) in &self.texts {
            let called = self.macros.iter().filter(|(name, _)| calls_macro(text, name)).map(|(_, at)| at.clone());
            // A re-exported name that the module's own code uses is an import too.
            let reexported_and_used = self.reexports[module]
                .iter()
                .filter(|(name, _)| uses_word(text, name))
                .filter_map(|(_, path)| self.resolve(module, path));
            let targets = paths_in(text)
                .into_iter()
                .filter_map(|path| self.resolve(module, &path))
                .chain(called)
                .chain(reexported_and_used)
                .filter(|target| target != module)
                .collect();
            graph.insert(module.clone(), targets);
        }
        Ok(graph)
    }

    /// The module file a path written in `module` names, if it is in this
    /// crate. A name that a module re-exports (`pub use`) leads on to where
    /// the name is defined: the facade is not a layer of its own.
    fn resolve(&self, module: &str, path: &[String]) -> Option<String> {
        self.resolve_depth(module, path, 0)
    }

    fn resolve_depth(&self, module: &str, path: &[String], depth: usize) -> Option<String> {
        let (first, rest) = path.split_first()?;
        let mut base: Vec<&str> = if module.is_empty() { Vec::new() } else { module.split("::").collect() };
        // A file that is not a `mod.rs` (nor the root) is a module whose
        // `super` is its folder's module.
        match first.as_str() {
            "crate" => base.clear(),
            "self" => {}
            "super" => {
                base.pop()?;
                let mut rest = rest;
                while rest.first().is_some_and(|s| s == "super") {
                    base.pop()?;
                    rest = &rest[1..];
                }
                return self.deepest(base, rest, depth);
            }
            _ => {
                // A child module's name, relative to this module.
                base.push(first);
                if !self.modules.contains_key(&base.join("::")) {
                    return None;
                }
            }
        }
        self.deepest(base, rest, depth)
    }

    /// The deepest module file reached by `base` followed by `rest`.
    fn deepest(&self, base: Vec<&str>, rest: &[String], depth: usize) -> Option<String> {
        let mut parts: Vec<String> = base.into_iter().map(String::from).collect();
        let mut found = self.modules.contains_key(&parts.join("::")).then(|| parts.join("::"));
        for segment in rest {
            let module = parts.join("::");
            parts.push(segment.clone());
            let candidate = parts.join("::");
            if self.modules.contains_key(&candidate) {
                found = Some(candidate);
                continue;
            }
            // Not a module: an item of `module`: a macro at the crate root,
            // or perhaps a name the module re-exports.
            if module.is_empty() {
                if let Some(defined) = self.macros.get(segment) {
                    return Some(defined.clone());
                }
            }
            let reexport = self.reexports.get(&module).and_then(|names| names.get(segment));
            if let Some(path) = reexport.filter(|_| depth < 8) {
                return self.resolve_depth(&module, path, depth + 1).or(found);
            }
            break;
        }
        found
    }
}

/// The module path of `file` under `src`.
fn module_of(src: &Path, file: &Path) -> String {
    let relative = file.strip_prefix(src).unwrap_or(file);
    let mut parts: Vec<String> = relative.iter().map(|p| p.to_string_lossy().into_owned()).collect();
    if let Some(last) = parts.pop() {
        let stem = last.trim_end_matches(".rs");
        if !matches!(stem, "mod" | "lib" | "main") {
            parts.push(stem.to_string());
        }
    }
    parts.join("::")
}

/// Splits `text` into the code without its re-exports (`pub use ...;`,
/// `pub(crate) use ...;`) and those re-exports, by the name each gives.
fn split_reexports(text: &str) -> (String, BTreeMap<String, Vec<String>>) {
    let mut code = String::new();
    let mut reexports = BTreeMap::new();
    let mut rest = text;
    loop {
        let heads = ["pub use ", "pub(crate) use ", "pub(super) use "];
        let Some(start) = heads.iter().filter_map(|head| rest.find(head)).min() else { break };
        let Some(length) = rest[start..].find(';') else { break };
        code.push_str(&rest[..start]);
        let statement = &rest[start..start + length];
        let statement = &statement[statement.find("use ").unwrap_or(0)..];
        for path in paths_in(statement) {
            if let Some(name) = path.last() {
                reexports.insert(name.clone(), path.clone());
            }
        }
        rest = &rest[start + length + 1..];
    }
    code.push_str(rest);
    (code, reexports)
}

/// The names of the `macro_rules!` macros defined in `text`.
fn macro_definitions(text: &str) -> Vec<String> {
    text.match_indices("macro_rules!")
        .map(|(at, head)| {
            let rest = text[at + head.len()..].trim_start();
            rest.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect::<String>()
        })
        .filter(|name| !name.is_empty())
        .collect()
}

/// True when `text` holds `word` as a whole word.
fn uses_word(text: &str, word: &str) -> bool {
    let is_ident = |c: char| c.is_ascii_alphanumeric() || c == '_';
    text.match_indices(word).any(|(at, _)| {
        !text[..at].chars().next_back().is_some_and(is_ident)
            && !text[at + word.len()..].chars().next().is_some_and(is_ident)
    })
}

/// True when `text` calls macro `name` (`name!`, as a whole word).
fn calls_macro(text: &str, name: &str) -> bool {
    let pattern = format!("{name}!");
    text.match_indices(&pattern).any(|(at, _)| {
        let before = text[..at].chars().next_back();
        !before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_') && !text[..at].ends_with("macro_rules! ")
    })
}

/// `text` without its `//` comments (doc comments included).
fn without_comments(text: &str) -> String {
    text.lines().map(|line| line.split("//").next().unwrap_or("")).collect::<Vec<_>>().join("\n")
}

/// The text before a trailing `#[cfg(test)] mod tests` block.
fn without_unit_tests(text: &str) -> String {
    match text.find("#[cfg(test)]\nmod tests") {
        Some(at) => text[..at].to_string(),
        None => text.to_string(),
    }
}

/// Every path (`word::word...`) written in `text`, split into segments, with
/// `use` groups (`use crate::a::{b, c::d}`) expanded one level; which of
/// them name modules of the crate is for [`Crate::resolve`].
fn paths_in(text: &str) -> Vec<Vec<String>> {
    let code: String = text.lines().map(|line| line.split("//").next().unwrap_or("")).collect::<Vec<_>>().join("\n");
    let bytes = code.as_bytes();
    let mut paths = Vec::new();
    let mut index = 0;
    while index < bytes.len() {
        let at_word_start = index == 0 || !(bytes[index - 1].is_ascii_alphanumeric() || bytes[index - 1] == b'_');
        // A path starts with a word followed by `::`: `crate::`, `super::`,
        // `self::`, or a child module's name (`stack::GUARD`).
        let first_len = bytes[index..].iter().take_while(|b| b.is_ascii_alphanumeric() || **b == b'_').count();
        let is_path = at_word_start && first_len > 0 && bytes[index + first_len..].starts_with(b"::");
        if !is_path {
            index += first_len.max(1);
            continue;
        }
        let mut segments = vec![code[index..index + first_len].to_string()];
        let mut end = index + first_len + 2;
        loop {
            let word: String = code[end..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
            if word.is_empty() {
                break;
            }
            end += word.len();
            segments.push(word);
            if code[end..].starts_with("::") {
                end += 2;
            } else {
                break;
            }
        }
        let group = code[end..].starts_with('{');
        if group {
            // A group: each member is a path of its own under the prefix.
            if let Some(close) = code[end..].find('}') {
                for member in code[end + 1..end + close].split(',') {
                    let mut path = segments.clone();
                    path.extend(
                        member.trim().split("::").map(|s| s.split_whitespace().next().unwrap_or("").to_string()),
                    );
                    path.retain(|s| !s.is_empty() && s != "{");
                    paths.push(path);
                }
            }
        }
        if !group {
            paths.push(segments);
        }
        index = end.max(index + 1);
    }
    paths
}

/// The strongly connected components with more than one file: the circles.
pub fn circles(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    // Tarjan's algorithm, iteratively.
    let nodes: Vec<&String> = graph.keys().collect();
    let index_of: BTreeMap<&String, usize> = nodes.iter().enumerate().map(|(i, n)| (*n, i)).collect();
    let edges: Vec<Vec<usize>> =
        nodes.iter().map(|n| graph[*n].iter().filter_map(|t| index_of.get(t).copied()).collect()).collect();
    let count = nodes.len();
    let (mut index, mut low, mut on_stack) = (vec![usize::MAX; count], vec![0; count], vec![false; count]);
    let (mut stack, mut next_index, mut found) = (Vec::new(), 0, Vec::new());
    for start in 0..count {
        if index[start] != usize::MAX {
            continue;
        }
        let mut work = vec![(start, 0usize)];
        while let Some(&mut (node, ref mut edge)) = work.last_mut() {
            if *edge == 0 && index[node] == usize::MAX {
                index[node] = next_index;
                low[node] = next_index;
                next_index += 1;
                stack.push(node);
                on_stack[node] = true;
            }
            if let Some(&target) = edges[node].get(*edge) {
                *edge += 1;
                if index[target] == usize::MAX {
                    work.push((target, 0));
                } else if on_stack[target] {
                    low[node] = low[node].min(index[target]);
                }
                continue;
            }
            work.pop();
            if let Some(&(parent, _)) = work.last() {
                low[parent] = low[parent].min(low[node]);
            }
            if low[node] == index[node] {
                let mut component = Vec::new();
                while let Some(member) = stack.pop() {
                    on_stack[member] = false;
                    component.push(nodes[member].clone());
                    if member == node {
                        break;
                    }
                }
                if component.len() > 1 {
                    component.sort();
                    found.push(component);
                }
            }
        }
    }
    found
}

/// `cargo xtask imports`: prints each crate's circles; fails if there is one.
pub fn check(root: &Path) -> Result<(), String> {
    let mut total = 0;
    for src in workspace_crates(root) {
        let krate = Crate::read(&src)?;
        let graph = krate.imports()?;
        let found = circles(&graph);
        let name = src.strip_prefix(root).unwrap_or(&src).display().to_string();
        if found.is_empty() {
            println!("imports: {name}: {} files, no circle", graph.len());
        }
        for circle in &found {
            total += 1;
            println!("imports: {name}: a circle of {} files:", circle.len());
            for module in circle {
                let into: Vec<&String> = graph[module].iter().filter(|t| circle.contains(t)).collect();
                let shown: Vec<String> = into.iter().map(|t| display(t)).collect();
                println!("  {} -> {}", display(module), shown.join(", "));
            }
        }
    }
    if total == 0 {
        Ok(())
    } else {
        Err(format!("{total} import circle(s): every import must run down the layers"))
    }
}

fn display(module: &str) -> String {
    if module.is_empty() {
        String::from("(crate root)")
    } else {
        module.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn krate(modules: &[&str]) -> Crate {
        Crate {
            modules: modules.iter().map(|m| (m.to_string(), PathBuf::from(format!("{m}.rs")))).collect(),
            reexports: BTreeMap::new(),
            texts: BTreeMap::new(),
            macros: BTreeMap::new(),
        }
    }

    fn path(text: &str) -> Vec<String> {
        text.split("::").map(String::from).collect()
    }

    #[test]
    fn paths_are_found_in_use_lines_and_code() {
        let found = paths_in("use crate::a::{b, c::D};\nfn f() { crate::x::y(); super::z; } // crate::comment\n");
        assert!(found.contains(&path("crate::a::b")));
        assert!(found.contains(&path("crate::a::c::D")));
        assert!(found.contains(&path("crate::x::y")));
        assert!(found.contains(&path("super::z")));
        assert!(!found.iter().any(|p| p.contains(&String::from("comment"))));
        assert!(!paths_in("fn mycrate::x() {}").contains(&path("crate::x")), "only whole words start a path");
        assert!(paths_in("use stack::GUARD;").contains(&path("stack::GUARD")));
    }

    #[test]
    fn paths_name_the_deepest_module_file() {
        let k = krate(&["", "arch", "arch::trap", "thread", "thread::stack"]);
        assert_eq!(k.resolve("thread::stack", &path("crate::arch::trap::TrapFrame")), Some("arch::trap".into()));
        assert_eq!(k.resolve("thread::stack", &path("super::Thread")), Some("thread".into()));
        assert_eq!(k.resolve("thread", &path("self::stack::GUARD")), Some("thread::stack".into()));
        assert_eq!(k.resolve("thread", &path("crate::nowhere")), Some("".into()));
        assert_eq!(k.resolve("thread::stack", &path("super::super::arch::X")), Some("arch".into()));
        assert_eq!(k.resolve("", &path("super::x")), None);
        assert_eq!(k.resolve("thread", &path("stack::GUARD")), Some("thread::stack".into()));
        assert_eq!(k.resolve("thread::stack", &path("stack::GUARD")), None, "not a child of stack");
        assert_eq!(k.resolve("thread", &path("core::mem")), None);
    }

    #[test]
    fn circles_are_found_and_layers_are_not() {
        let graph = |edges: &[(&str, &str)]| {
            let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
            for (from, to) in edges {
                graph.entry(from.to_string()).or_default().insert(to.to_string());
                graph.entry(to.to_string()).or_default();
            }
            graph
        };
        assert!(circles(&graph(&[("a", "b"), ("b", "c"), ("a", "c")])).is_empty());
        assert_eq!(circles(&graph(&[("a", "b"), ("b", "c"), ("c", "a"), ("c", "d")])), vec![vec!["a", "b", "c"]]);
        assert_eq!(circles(&graph(&[("a", "b"), ("b", "a"), ("c", "d"), ("d", "c")])).len(), 2);
    }

    #[test]
    fn reexports_lead_to_where_the_name_is_defined() {
        let mut k = krate(&["", "region", "error"]);
        let (code, reexports) = split_reexports("mod region;\npub use region::{Region, Characteristics};\nfn f() {}");
        assert_eq!(code, "mod region;\n\nfn f() {}");
        k.reexports.insert(String::new(), reexports);
        assert_eq!(k.resolve("error", &path("crate::Region")), Some("region".into()));
        assert_eq!(k.resolve("error", &path("crate::helper")), Some("".into()));
        assert!(uses_word("let x = table();", "table") && !uses_word("let x = tables();", "table"));
    }

    #[test]
    fn macros_lead_to_the_module_that_defines_them() {
        let mut k = krate(&["", "serial", "shell"]);
        assert_eq!(macro_definitions("#[macro_export]\nmacro_rules! println {"), vec!["println"]);
        k.macros.insert(String::from("println"), String::from("serial"));
        assert_eq!(k.resolve("shell", &path("crate::println")), Some("serial".into()));
        assert!(calls_macro("fn f() { println!(\"x\"); }", "println"));
        assert!(!calls_macro("fn f() { eprintln!(\"x\"); }", "println"));
    }

    #[test]
    fn unit_tests_at_the_end_are_skipped() {
        assert_eq!(without_unit_tests("a\n#[cfg(test)]\nmod tests {\n crate::x }"), "a\n");
    }
}
