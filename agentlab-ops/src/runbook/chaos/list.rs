//! `chaos_list`: the experiments in `[chaos] dir`, each read and checked (a file that does not
//! parse is a failed check naming its line and field, the others still listed).

use serde::{Deserialize, Serialize};

use crate::chaos::Experiment;
use crate::environment::Environment;
use crate::error::Error;
use crate::report::{Action, Outcome, Report};
use crate::runbook::registry::{
    Definition, OptionDoc, Validate, check_args, defaults_of, parse_args,
};
use crate::runbook::run::RunOptions;

/// Options of `chaos_list`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ListOptions {
    /// The folder (default `[chaos] dir`).
    pub dir: Option<String>,
}

impl Validate for ListOptions {}

/// One experiment file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExperimentEntry {
    /// The file.
    pub file: String,
    /// Its title (empty when it does not parse).
    pub title: String,
    /// Its faults, by kind.
    pub faults: Vec<String>,
    /// The longest its method takes, in seconds.
    pub duration_s: f64,
    /// Why it does not parse.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// List the experiments.
pub async fn chaos_list(env: &Environment, o: &ListOptions, ro: &RunOptions) -> Report {
    let dir = o
        .dir
        .clone()
        .map_or_else(|| env.config.chaos.dir.clone(), Into::into);
    env.execute("chaos_list", ro, |run| async move {
        let rd = match std::fs::read_dir(&dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let why = format!("no folder {}: no experiments", dir.display());
                run.record("chaos.dir", Action::Read, Outcome::Warn, why);
                return Ok(serde_json::json!({ "dir": dir, "experiments": [] }));
            }
            Err(e) => return Err(Error::config(format!("chaos.dir {}: {e}", dir.display()))),
        };
        let mut files: Vec<_> = rd
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "toml" || x == "json"))
            .collect();
        files.sort();
        let mut out = Vec::new();
        for p in files {
            let file = p.display().to_string();
            match Experiment::from_file(&p) {
                Ok(x) => {
                    let faults: Vec<String> = x.method.iter().map(|f| f.name()).collect();
                    run.record(
                        &file,
                        Action::Read,
                        Outcome::Pass,
                        format!("{}: {}", x.title, faults.join(", ")),
                    );
                    out.push(ExperimentEntry {
                        file,
                        title: x.title.clone(),
                        faults,
                        duration_s: x.method_duration().as_secs_f64(),
                        error: None,
                    });
                }
                Err(e) => {
                    run.record(&file, Action::Read, Outcome::Fail, e.to_string());
                    out.push(ExperimentEntry {
                        file,
                        title: String::new(),
                        faults: Vec::new(),
                        duration_s: 0.0,
                        error: Some(e.to_string()),
                    });
                }
            }
        }
        Ok(serde_json::json!({ "dir": dir, "experiments": out }))
    })
    .await
}

/// `chaos_list`.
pub static LIST: Definition = Definition {
    name: "chaos_list",
    command: "chaos list",
    aliases: &[],
    summary: "list the chaos experiments in [chaos] dir, each checked",
    changes: false,
    steps: &["each *.toml and *.json read and checked: its title and faults, or where it is wrong"],
    options: &[OptionDoc {
        name: "dir",
        kind: "path",
        help: "the folder (default [chaos] dir)",
    }],
    defaults: defaults_of::<ListOptions>,
    check_options: check_args::<ListOptions>,
    example: "",
    start: |env, v, run| {
        Box::pin(async move {
            let o: ListOptions = parse_args("chaos_list", v)?;
            Ok(chaos_list(env, &o, &run).await)
        })
    },
};
