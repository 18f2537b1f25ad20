//! The server's modules depend one way (ARCHITECTURE.md, "Dependencies point one way"): each
//! may use its own layer and the layers below, never one above. This reads `src/` and fails,
//! naming the file and the module it reaches up to, when one does.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// The layers, bottom first. Every top-level module of `src/` must be in exactly one.
const LAYERS: &[(&str, &[&str])] = &[
    ("pure rules", &["domain"]),
    (
        "building blocks",
        &[
            "config",
            "error",
            "convert",
            "tokens",
            "breaker",
            "metrics",
            "store",
            "payments",
            "catalog",
            "availability",
            "redis_link",
            "limits",
            "shed",
            "shutdown",
            "waiting_room",
            "auth",
        ],
    ),
    ("services", &["purchase", "sale_control", "state"]),
    ("gRPC handlers", &["rpc"]),
    ("wiring", &["app"]),
    ("binaries", &["main", "bin"]),
];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS
        .iter()
        .position(|(_, modules)| modules.contains(&module))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    for entry in entries {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level modules a source file names through `crate::` paths, `use crate::{…}` groups
/// included.
fn crate_modules(source: &str) -> BTreeSet<String> {
    let ident = |s: &str| -> String {
        s.chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect()
    };
    let mut found = BTreeSet::new();
    let mut rest = source;
    while let Some(at) = rest.find("crate::") {
        let after = &rest[at + "crate::".len()..];
        let preceded_by_ident = rest[..at]
            .chars()
            .last()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
        if !preceded_by_ident {
            if let Some(group) = after.strip_prefix('{') {
                // Names at the group's top level: `{a, b::{c, d}, e::f}` → a, b, e.
                let mut depth = 0usize;
                let mut start = true;
                for (i, c) in group.char_indices() {
                    match c {
                        '{' => depth += 1,
                        '}' if depth == 0 => break,
                        '}' => depth -= 1,
                        ',' if depth == 0 => start = true,
                        c if start && !c.is_whitespace() => {
                            let name = ident(&group[i..]);
                            if !name.is_empty() {
                                found.insert(name);
                            }
                            start = false;
                        }
                        _ => {}
                    }
                }
            } else {
                let name = ident(after);
                if !name.is_empty() {
                    found.insert(name);
                }
            }
        }
        rest = after;
    }
    found
}

#[test]
fn a_module_uses_only_its_own_layer_and_the_ones_below() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    assert!(files.len() > 20, "found only {} source files", files.len());
    let mut upward = Vec::new();
    for file in &files {
        let relative = file.strip_prefix(&src).expect("under src");
        let first = relative
            .components()
            .next()
            .and_then(|c| c.as_os_str().to_str())
            .expect("a path");
        let module = first.trim_end_matches(".rs");
        if module == "lib" {
            continue; // declares the modules
        }
        let layer = layer_of(module).unwrap_or_else(|| {
            panic!("src/{first} is in no layer: add it to LAYERS in tests/layers.rs")
        });
        let source = std::fs::read_to_string(file).expect("readable source");
        for used in crate_modules(&source) {
            if used == module {
                continue;
            }
            let Some(used_layer) = layer_of(&used) else {
                continue; // a crate-level item, not a module
            };
            if used_layer > layer {
                upward.push(format!(
                    "src/{} ({}) uses crate::{used} ({})",
                    relative.display(),
                    LAYERS[layer].0,
                    LAYERS[used_layer].0
                ));
            }
        }
    }
    assert!(
        upward.is_empty(),
        "dependencies that point up:\n{}",
        upward.join("\n")
    );
}

#[test]
fn the_reader_finds_every_form_of_path() {
    let source = "use crate::store::Store;\n\
                  use crate::{auth::Buyer, error::{ApiError, ApiResult},\n    rpc};\n\
                  fn f() { crate::app::run(); let _ = my_crate::app::x; }";
    let found: Vec<String> = crate_modules(source).into_iter().collect();
    assert_eq!(found, ["app", "auth", "error", "rpc", "store"]);
}
