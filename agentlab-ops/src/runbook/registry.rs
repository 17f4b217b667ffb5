//! The runbook catalogue: one [`Definition`] per runbook, the only place the command, Python and
//! Lua learn what runbooks exist, what they are called and what options they take.
//!
//! A runbook's name is used everywhere: the journal (`backup_verify`), the command's path
//! (`agentlab-ops backup verify`, declared beside the name), Python
//! (`agentlab_ops.run("backup_verify", env, sample="10%")`) and Lua
//! (`ops.backup_verify{sample = "10%"}`). Options are a serde struct of the runbook's, with
//! `deny_unknown_fields` and its defaults in one place, parsed by [`parse_args`]: a bad value gives
//! the same error kind and message from every binding.

use futures::future::BoxFuture;
use serde::de::DeserializeOwned;

use crate::environment::Environment;
use crate::error::{Error, ErrorKind, Result};
use crate::report::Report;
use crate::runbook::run::RunOptions;

/// How a runbook starts: its environment, its options as JSON (an object, or null for the
/// defaults), and the run options.
pub type Start =
    for<'a> fn(&'a Environment, serde_json::Value, RunOptions) -> BoxFuture<'a, Result<Report>>;

/// One option of a runbook, for `describe` and the bindings' help.
#[derive(Debug, Clone, Copy)]
pub struct OptionDoc {
    /// Field name (`sample`).
    pub name: &'static str,
    /// What it takes (`"all" | count | "N%"`).
    pub kind: &'static str,
    /// One line of help.
    pub help: &'static str,
}

/// A runbook of the catalogue.
#[derive(Debug, Clone, Copy)]
pub struct Definition {
    /// The one name (`backup_verify`): journal, Python, Lua.
    pub name: &'static str,
    /// The command's path (`backup verify`).
    pub command: &'static str,
    /// Names it had before, still accepted (`verify_backups`).
    pub aliases: &'static [&'static str],
    /// One line.
    pub summary: &'static str,
    /// Whether it changes things (else it only reads).
    pub changes: bool,
    /// The steps it takes, in order (what its dry-run plans).
    pub steps: &'static [&'static str],
    /// Its options.
    pub options: &'static [OptionDoc],
    /// Its options' defaults, as JSON.
    pub defaults: fn() -> serde_json::Value,
    /// Parse and validate options without running (see [`Definition::check`]).
    pub check_options: fn(&'static str, &serde_json::Value) -> Result<()>,
    /// Options for an example run, as JSON (`{"user": "newhire", ...}`); empty when the
    /// defaults run (what `describe` shows and the catalogue tests run).
    pub example: &'static str,
    /// Start it.
    pub start: Start,
}

impl Definition {
    /// The command's path: `backup verify`.
    pub fn command(&self) -> String {
        self.command.to_string()
    }
    /// The entry as the bindings list it: name, command, aliases, summary, changes, option names.
    pub fn to_json(&self) -> serde_json::Value {
        let options: Vec<&str> = self.options.iter().map(|o| o.name).collect();
        serde_json::json!({
            "name": self.name, "command": self.command, "aliases": self.aliases,
            "summary": self.summary, "changes": self.changes, "options": options,
            // An object always (the options of an example run; `{}`: the defaults run).
            "example": match self.example_options() {
                serde_json::Value::Null => serde_json::json!({}),
                v => v,
            },
        })
    }

    /// The options of an example run: [`Definition::example`], or the defaults.
    pub fn example_options(&self) -> serde_json::Value {
        serde_json::from_str(self.example).unwrap_or(serde_json::Value::Null)
    }

    /// Parse and validate options without running: a binding reports a bad option at once,
    /// with the same message the run would give.
    pub fn check(&self, options: &serde_json::Value) -> Result<()> {
        (self.check_options)(self.name, options)
    }
    /// Run it: options parsed and validated by the core, then the runbook.
    pub async fn run(
        &self,
        env: &Environment,
        options: serde_json::Value,
        mut run: RunOptions,
    ) -> Result<Report> {
        // Kept in the run log: `resume` re-enters the runbook with the same options.
        if run.invocation.is_none() {
            // No options (None from Python) are the defaults: `{}`, not "unknown".
            let kept = match &options {
                serde_json::Value::Null => serde_json::json!({}),
                o => o.clone(),
            };
            run.invocation = Some(kept);
        }
        (self.start)(env, options, run).await
    }
}

/// Every runbook, in catalogue order. Adding a runbook adds one line here.
pub fn all() -> &'static [&'static Definition] {
    CATALOGUE
}

static CATALOGUE: &[&Definition] = &[
    &super::morning::DEFINITION,
    &super::handover::DEFINITION,
    &super::backup::TAKE,
    &super::verify::VERIFY,
    &super::recover::DEFINITION,
    &super::deploy::args::STANDARD,
    &super::deploy::args::BLUE_GREEN,
    &super::deploy::args::ROLLBACK,
    &super::restart::RESTART,
    &super::shutdown::SHUTDOWN,
    &super::shutdown::RECOVER,
    &super::maintenance::MAINTENANCE,
    &super::slo_response::SLO_RESPONSE,
    &super::investigate::ALERT_INVESTIGATION,
    &super::scale::SCALE_ASSESS,
    &super::scale::SCALE_VERTICAL,
    &super::scale::SCALE_HORIZONTAL,
    &super::scale::SNAPSHOT,
    &super::cost::COST_REPORT,
    &super::security::ACCESS_REVIEW,
    &super::security::AUTH_TIMELINE,
    &super::security::ROTATE_SSH_KEY,
    &super::security::ROTATE_SECRET,
    &super::security::GRANT_ACCESS,
    &super::security::REVOKE_ACCESS,
    &super::load_test::LOAD_TEST,
    &super::security::INCIDENT_EVIDENCE,
    &super::chaos::RUN,
    &super::chaos::PLAN,
    &super::chaos::LIST,
    &super::review::MONTHLY_REVIEW,
];

/// The runbook of that name: its name, an alias, or its command path (`backup verify`).
pub fn find(name: &str) -> Option<&'static Definition> {
    let n = name.trim();
    all()
        .iter()
        .copied()
        .find(|d| d.name == n || d.command == n || d.aliases.contains(&n))
}

/// [`find`], or a `not_found` error listing the names.
pub fn get(name: &str) -> Result<&'static Definition> {
    find(name).ok_or_else(|| {
        let names: Vec<&str> = all().iter().map(|d| d.name).collect();
        Error::new(
            ErrorKind::NotFound,
            format!("no runbook named {name:?}; runbooks: {}", names.join(", ")),
        )
        .with_operation("runbook.find")
    })
}

/// Run the runbook `name` with `options` (JSON).
pub async fn run(
    env: &Environment,
    name: &str,
    options: serde_json::Value,
    run: RunOptions,
) -> Result<Report> {
    get(name)?.run(env, options, run).await
}

/// Options that check themselves once parsed (exclusive fields, ranges).
pub trait Validate {
    /// What is wrong, naming the field.
    fn validate(&self) -> std::result::Result<(), String> {
        Ok(())
    }
}

/// Parse a runbook's options from JSON: unknown fields, wrong types and bad values are a
/// `config_invalid` error naming the runbook and the field (`backup_verify: sample: invalid
/// sample "2.5": ...`).
pub fn parse_args<A: DeserializeOwned + Validate>(
    runbook: &str,
    v: serde_json::Value,
) -> Result<A> {
    let v = if v.is_null() {
        serde_json::Value::Object(Default::default())
    } else {
        v
    };
    let a: A = serde_path_to_error::deserialize(v).map_err(|e| {
        let path = e.path().to_string();
        let msg = e.into_inner().to_string();
        let at = if path == "." || path.is_empty() {
            String::new()
        } else {
            format!(" {path}:")
        };
        Error::config(format!("{runbook}:{at} {msg}")).with_operation("runbook.options")
    })?;
    a.validate()
        .map_err(|m| Error::config(format!("{runbook}: {m}")).with_operation("runbook.options"))?;
    Ok(a)
}

/// A date option: `YYYY-MM-DD` or `YYYYMMDD`.
pub mod date {
    use chrono::NaiveDate;
    use serde::{Deserialize, Deserializer, Serializer};

    /// Parse `YYYY-MM-DD` or `YYYYMMDD`.
    pub fn parse(s: &str) -> std::result::Result<NaiveDate, String> {
        NaiveDate::parse_from_str(s, "%Y-%m-%d")
            .or_else(|_| NaiveDate::parse_from_str(s, "%Y%m%d"))
            .map_err(|_| format!("invalid date {s:?}: use YYYY-MM-DD or YYYYMMDD"))
    }
    /// Serde: an optional date.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<NaiveDate>, D::Error> {
        Option::<String>::deserialize(d)?
            .map(|s| parse(&s).map_err(serde::de::Error::custom))
            .transpose()
    }
    /// Serde: an optional date as `YYYY-MM-DD`.
    pub fn serialize<S: Serializer>(v: &Option<NaiveDate>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(d) => s.serialize_str(&d.format("%Y-%m-%d").to_string()),
            None => s.serialize_none(),
        }
    }
}

/// A month option (`YYYY-MM`), shared by the runbooks that take one.
pub mod month {
    use chrono::{DateTime, Datelike, NaiveDate, Utc};

    /// Its entry in a runbook's options.
    pub const DOC: super::OptionDoc = super::OptionDoc {
        name: "month",
        kind: "YYYY-MM",
        help: "the month (default: the last full month)",
    };

    /// The first day of the month `YYYY-MM`.
    pub fn parse(m: &str) -> std::result::Result<NaiveDate, String> {
        NaiveDate::parse_from_str(&format!("{m}-01"), "%Y-%m-%d")
            .map_err(|_| format!("month: {m:?} is not YYYY-MM"))
    }

    /// The first day of the last full month before `now`.
    pub fn last_full(now: DateTime<Utc>) -> NaiveDate {
        let t = now.date_naive();
        NaiveDate::from_ymd_opt(t.year(), t.month(), 1).unwrap_or(t) - chrono::Months::new(1)
    }
}

/// Parse options of type `A` for the runbook `name` and drop them: a [`Definition`]'s
/// `check_options`.
pub fn check_args<A: DeserializeOwned + Validate>(
    name: &'static str,
    v: &serde_json::Value,
) -> Result<()> {
    parse_args::<A>(name, v.clone()).map(|_| ())
}

/// The defaults of an options type, as JSON.
pub fn defaults_of<A: Default + serde::Serialize>() -> serde_json::Value {
    serde_json::to_value(A::default()).unwrap_or_default()
}
