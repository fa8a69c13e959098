//! The layering that src/lib.rs states: every `crate::` path in the library names a module of
//! the same or a lower layer. A path upward (a model reaching into the pipeline, the error type
//! into the models) fails here with the file and line.
use std::path::{Path, PathBuf};

/// The library's top-level modules, bottom up (src/lib.rs).
const LAYERS: &[&[&str]] =
    &[&["error", "Error", "Result"], &["tensor"], &["backend"], &["graph"], &["io"], &["sampling"], &["models", "text"], &["pipeline"], &["tools"]];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|layer| layer.contains(&module))
}

/// Every .rs file below `dir`.
fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The modules a line's code (comments stripped) names as `crate::<module>`, also inside
/// `crate::{a, b::c}` groups.
fn crate_modules(line: &str) -> Vec<String> {
    let code = line.split("//").next().unwrap_or("");
    let mut found = Vec::new();
    for (at, _) in code.match_indices("crate::") {
        let rest = &code[at + "crate::".len()..];
        let names: Vec<&str> = match rest.strip_prefix('{') {
            Some(group) => group.split('}').next().unwrap_or("").split(',').collect(),
            None => vec![rest],
        };
        for name in names {
            let module: String = name.trim().chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
            if !module.is_empty() {
                found.push(module);
            }
        }
    }
    found
}

#[test]
fn library_imports_run_down_the_layers() {
    let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    files.sort();
    let mut upward = Vec::new();
    let mut unknown = Vec::new();
    for file in &files {
        let relative = file.strip_prefix(&src).unwrap();
        let top = relative.components().next().unwrap().as_os_str().to_string_lossy().trim_end_matches(".rs").to_string();
        // The binary (main.rs, cli/) sits on top and imports through `ditrt::`; lib.rs declares.
        if matches!(top.as_str(), "main" | "cli" | "lib") {
            continue;
        }
        let Some(own) = layer_of(&top) else {
            unknown.push(format!("src/{}: top-level module '{top}' is in no layer of LAYERS", relative.display()));
            continue;
        };
        let text = std::fs::read_to_string(file).unwrap();
        for (n, line) in text.lines().enumerate() {
            for module in crate_modules(line) {
                match layer_of(&module) {
                    Some(layer) if layer > own => {
                        upward.push(format!("src/{}:{}: {top} imports {module} (a higher layer)", relative.display(), n + 1))
                    }
                    Some(_) => {}
                    None => unknown.push(format!("src/{}:{}: crate::{module} is in no layer", relative.display(), n + 1)),
                }
            }
        }
    }
    assert!(upward.is_empty() && unknown.is_empty(), "layering broken:\n{}\n{}", upward.join("\n"), unknown.join("\n"));
    // The check itself finds what it looks for.
    assert_eq!(crate_modules("use crate::{models::X, io::safetensors}; // crate::tools"), ["models", "io"]);
}
