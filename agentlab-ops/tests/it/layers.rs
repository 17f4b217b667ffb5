//! The module graph flows one way: base (error, secret, ids, clock, retry, units) → config →
//! backends → environment → engine (runbook::run, wave, journal, report) → runbooks →
//! bindings. This test reads every `crate::` path of each layer's files and fails when a lower
//! layer names a higher one.

use std::path::{Path, PathBuf};

const SRC: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/src");

/// Layers, lowest first: the top-level modules (or files) of each.
const LAYERS: &[(&str, &[&str])] = &[
    (
        "base",
        &["error", "secret", "ids", "clock", "retry", "double"],
    ),
    ("config", &["config"]),
    (
        "backends",
        &[
            "backup", "host", "probe", "slo", "notify", "deploy", "service", "compute", "logs",
            "security", "load",
        ],
    ),
    ("environment", &["environment", "journal", "report"]),
    ("runbooks", &["runbook", "sandbox", "testing", "drill"]),
];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|(_, mods)| mods.contains(&module))
}

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The top-level module a source file belongs to (`src/host/ssh.rs` → `host`).
fn module_of(path: &Path) -> String {
    let rel = path.strip_prefix(SRC).unwrap();
    let first = rel
        .components()
        .next()
        .unwrap()
        .as_os_str()
        .to_string_lossy()
        .into_owned();
    first.trim_end_matches(".rs").to_string()
}

/// Every `crate::<module>` named in the file's code (comments skipped).
fn uses(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let code = line.split("//").next().unwrap_or("");
        let mut rest = code;
        while let Some(i) = rest.find("crate::") {
            let after = &rest[i + 7..];
            let name: String = after
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            out.push((n + 1, name));
            rest = after;
        }
    }
    out
}

#[test]
fn lower_layers_never_import_higher_ones() {
    let mut all = Vec::new();
    files(Path::new(SRC), &mut all);
    let mut violations = Vec::new();
    for f in &all {
        let module = module_of(f);
        let Some(mine) = layer_of(&module) else {
            continue;
        };
        let text = std::fs::read_to_string(f).unwrap();
        // Tests inside a file may use anything.
        let code = text.split("#[cfg(test)]").next().unwrap_or(&text);
        for (line, used) in uses(code) {
            if let Some(theirs) = layer_of(&used) {
                if theirs > mine {
                    violations.push(format!(
                        "{}:{line}: {} ({}) uses crate::{used} ({})",
                        f.strip_prefix(SRC).unwrap().display(),
                        module,
                        LAYERS[mine].0,
                        LAYERS[theirs].0
                    ));
                }
            }
        }
    }
    assert!(
        violations.is_empty(),
        "back-edges in the module graph:\n{}",
        violations.join("\n")
    );
}

#[test]
fn the_checker_sees_a_back_edge() {
    // A test that cannot fail is a defect: the parser finds `crate::runbook` in code, not in
    // comments.
    let found = uses("use crate::runbook::run::Run; // crate::environment");
    assert_eq!(found, vec![(1, "runbook".to_string())]);
    assert!(layer_of("runbook") > layer_of("config"));
}
