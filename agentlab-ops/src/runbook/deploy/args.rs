//! The deployment runbooks in the catalogue: their options (one default each) and definitions.

use serde::{Deserialize, Serialize};

use crate::runbook::deploy::{
    BlueGreenOptions, DeployOptions, RollbackOptions, blue_green_deploy, rollback, standard_deploy,
};
use crate::runbook::registry::{Definition, OptionDoc, Validate, defaults_of, parse_args};

/// Options of `deploy_standard` (and, without `high_risk`, `deploy_blue_green`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DeployArgs {
    /// Version to release (default: `version.txt` in `[deploy] repo_dir`).
    pub version: Option<String>,
    /// A high-risk release: only inside a maintenance window.
    pub high_risk: bool,
    /// A critical release (a reliability fix): it passes a yellow deploy freeze.
    pub critical: bool,
    /// Deploy despite failed gates (needs `reason`, recorded in the report).
    pub force: bool,
    /// Why the gates are overridden.
    pub reason: Option<String>,
}

impl Validate for DeployArgs {
    fn validate(&self) -> Result<(), String> {
        match (&self.force, self.reason.as_deref().map(str::trim)) {
            (true, None | Some("")) => Err("force needs a reason (recorded in the report)".into()),
            _ => Ok(()),
        }
    }
}

impl DeployArgs {
    fn forced(&self) -> Option<String> {
        if self.force {
            self.reason.clone()
        } else {
            None
        }
    }
}

const VERSION: OptionDoc = OptionDoc {
    name: "version",
    kind: "string",
    help: "version to release (default version.txt)",
};
const CRITICAL: OptionDoc = OptionDoc {
    name: "critical",
    kind: "bool",
    help: "a reliability fix: passes a yellow (non-critical) deploy freeze",
};
const FORCE: OptionDoc = OptionDoc {
    name: "force",
    kind: "bool",
    help: "deploy despite failed gates (needs reason)",
};
const REASON: OptionDoc = OptionDoc {
    name: "reason",
    kind: "string",
    help: "why the gates are overridden",
};

/// `deploy_standard` in the catalogue.
pub static STANDARD: Definition = Definition {
    name: "deploy_standard",
    command: "deploy standard",
    aliases: &["standard_deploy"],
    summary: "gates, tag, deploy workflow, health, smoke checks, monitoring; rolled back on failure",
    changes: true,
    steps: &[
        "gate:error_budget",
        "gate:ci_checks",
        "gate:code_review",
        "gate:security_scan",
        "gate:no_incident_or_maintenance",
        "gate:deploy_freeze",
        "gate:maintenance_window",
        "tag",
        "deploy",
        "health",
        "smoke:<check>",
        "monitor",
    ],
    options: &[
        VERSION,
        OptionDoc {
            name: "high_risk",
            kind: "bool",
            help: "only inside a maintenance window",
        },
        CRITICAL,
        FORCE,
        REASON,
    ],
    defaults: defaults_of::<DeployArgs>,
    check_options: crate::runbook::registry::check_args::<DeployArgs>,
    example: "",
    start: |env, v, run| {
        Box::pin(async move {
            let a: DeployArgs = parse_args("deploy_standard", v)?;
            let o = DeployOptions {
                version: a.version.clone(),
                high_risk: a.high_risk,
                critical: a.critical,
                force: a.forced(),
                run,
            };
            Ok(standard_deploy(env, &o).await)
        })
    },
};

/// Options of `deploy_blue_green`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BlueGreenArgs {
    /// Version to release.
    pub version: Option<String>,
    /// A critical release: it passes a yellow deploy freeze.
    pub critical: bool,
    /// Deploy despite failed gates (needs `reason`).
    pub force: bool,
    /// Why the gates are overridden.
    pub reason: Option<String>,
}

impl Validate for BlueGreenArgs {
    fn validate(&self) -> Result<(), String> {
        DeployArgs {
            version: None,
            high_risk: false,
            critical: self.critical,
            force: self.force,
            reason: self.reason.clone(),
        }
        .validate()
    }
}

/// `deploy_blue_green` in the catalogue.
pub static BLUE_GREEN: Definition = Definition {
    name: "deploy_blue_green",
    command: "deploy blue-green",
    aliases: &["blue_green_deploy", "deploy_bluegreen"],
    summary: "staging, green, then traffic 10/25/50/100% with analysis; back to blue on failure",
    changes: true,
    steps: &[
        "gate:*",
        "deploy:staging",
        "validate:staging",
        "deploy:green",
        "health:green",
        "traffic:<n>% + analysis per step",
    ],
    options: &[VERSION, CRITICAL, FORCE, REASON],
    defaults: defaults_of::<BlueGreenArgs>,
    check_options: crate::runbook::registry::check_args::<BlueGreenArgs>,
    example: "",
    start: |env, v, run| {
        Box::pin(async move {
            let a: BlueGreenArgs = parse_args("deploy_blue_green", v)?;
            let o = BlueGreenOptions {
                version: a.version.clone(),
                force: if a.force { a.reason.clone() } else { None },
                critical: a.critical,
                control: run.control.clone().unwrap_or_default(),
                run,
            };
            Ok(blue_green_deploy(env, &o).await)
        })
    },
};

/// Options of `deploy_rollback`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RollbackArgs {
    /// Why (passed to the rollback workflow).
    pub reason: String,
    /// The release to go back to (default: the tag before the newest).
    pub to: Option<String>,
}

impl Default for RollbackArgs {
    fn default() -> Self {
        RollbackArgs {
            reason: "manual rollback".into(),
            to: None,
        }
    }
}

impl Validate for RollbackArgs {}

/// `deploy_rollback` in the catalogue.
pub static ROLLBACK: Definition = Definition {
    name: "deploy_rollback",
    command: "deploy rollback",
    aliases: &["rollback"],
    summary: "the rollback workflow, else the manual fallback over SSH on every host; then health",
    changes: true,
    steps: &["rollback (workflow, else manual on each host)", "health"],
    options: &[
        OptionDoc {
            name: "reason",
            kind: "string",
            help: "why (default \"manual rollback\")",
        },
        OptionDoc {
            name: "to",
            kind: "tag",
            help: "the release to go back to (default the tag before the newest)",
        },
    ],
    defaults: defaults_of::<RollbackArgs>,
    check_options: crate::runbook::registry::check_args::<RollbackArgs>,
    example: "",
    start: |env, v, run| {
        Box::pin(async move {
            let a: RollbackArgs = parse_args("deploy_rollback", v)?;
            let o = RollbackOptions {
                reason: a.reason,
                to: a.to,
                run,
            };
            Ok(rollback(env, &o).await)
        })
    },
};
