//! Lua runbooks: the `ops` module (mlua, vendored Lua 5.4) and the script runner behind
//! `agentlab-ops run script.lua`.
//!
//! A script runs as a runbook: inside the core step recorder, so `ops.step` gets dry-run,
//! timing, undo on failure and Ctrl-C, secret redaction and the journal exactly as built-in
//! runbooks do, and the script's report renders and journals like theirs. Rust operations run
//! on tokio while the script waits as a coroutine; `ops.parallel` interleaves several.
//!
//! Natives answer `(true, value)` or `(false, error table)`; the Lua prelude raises the error
//! tables, so `pcall` sees `{kind=, message=, operation=, context=, where=}`.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use agentlab_ops::backup::BackupStoreExt;
use agentlab_ops::runbook::{Checked, Undo};
use agentlab_ops::{
    CancelToken, Cmd, Environment, Error, ErrorKind, Outcome, Report, Run, RunOptions, Sandbox,
    Severity,
};
use futures::TryStreamExt;
use mlua::{Function, Lua, LuaSerdeExt, MultiValue, Table, Value};

const PRELUDE: &str = include_str!("prelude.lua");

/// How a script runs.
#[derive(Debug, Clone, Default)]
pub struct ScriptOptions {
    /// Changes are only planned (for `ops.step(..., "change", ...)` and the runbooks it calls).
    pub dry_run: bool,
    /// The whole standard library (`os.execute`, `io.popen`...).
    pub allow_unsafe: bool,
    /// Stop the script (and run its undo steps) after this long.
    pub timeout: Option<Duration>,
    /// Stop on SIGINT (Ctrl-C), SIGTERM and SIGHUP (and run the undo steps).
    pub signals: bool,
    /// The script's arguments (`arg[1]`...).
    pub args: Vec<String>,
    /// Do not journal the script's report.
    pub no_journal: bool,
}

/// What the natives share: the environments (0 is the runner's), sandboxes kept alive, the
/// script's run.
struct Ctx {
    envs: Mutex<Vec<Arc<Environment>>>,
    sandboxes: Mutex<Vec<Sandbox>>,
    run: Mutex<Option<Run>>,
    dry_run: bool,
    cancel: CancelToken,
    /// The script's undos are running: a cancelled run must not stop them.
    undoing: std::sync::atomic::AtomicBool,
}

fn ctx(lua: &Lua) -> mlua::Result<Arc<Ctx>> {
    lua.app_data_ref::<Arc<Ctx>>()
        .map(|c| c.clone())
        .ok_or_else(|| {
            mlua::Error::runtime("agentlab_ops: no context (use agentlab_ops_lua::install)")
        })
}

fn env_of(c: &Ctx, id: usize) -> Result<Arc<Environment>, Error> {
    c.envs
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(id)
        .cloned()
        .ok_or_else(|| Error::new(ErrorKind::NotFound, format!("no environment #{id}")))
}

fn run_of(c: &Ctx) -> Result<Run, Error> {
    c.run
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone()
        .ok_or_else(|| {
            Error::new(
                ErrorKind::Unsupported,
                "steps and reports need a script run by the agentlab-ops runner",
            )
        })
}

/// Where the script is: the first Lua frame outside the prelude.
fn script_position(lua: &Lua) -> Option<String> {
    (1..12).find_map(|level| {
        lua.inspect_stack(level, |d| {
            let src = d.source().short_src.map(|s| s.to_string())?;
            let line = d.current_line()?;
            (src != "agentlab_ops" && src != "[C]" && !src.starts_with("__mlua"))
                .then(|| format!("{src}:{line}"))
        })
        .flatten()
    })
}

/// A value as Lua data: `None` and JSON null become `nil`, never a null sentinel.
fn to_lua<T: serde::Serialize + ?Sized>(lua: &Lua, v: &T) -> Result<Value, Error> {
    lua.to_value_with(
        v,
        mlua::serde::SerializeOptions::new()
            .serialize_none_to_null(false)
            .serialize_unit_to_null(false),
    )
    .map_err(|e| Error::new(ErrorKind::Unexpected, format!("to Lua: {e}")))
}

/// An SLO status as a table, built directly (serde's generic path costs several times more on
/// a call this small).
fn status_table(lua: &Lua, s: &agentlab_ops::SloStatus) -> mlua::Result<Table> {
    let t = lua.create_table_with_capacity(0, 11)?;
    t.raw_set("name", s.name.as_str())?;
    t.raw_set("target", s.target)?;
    t.raw_set("period", s.period.as_str())?;
    t.raw_set("total", s.total)?;
    t.raw_set("good", s.good)?;
    t.raw_set("error_ratio", s.error_ratio)?;
    t.raw_set("budget_remaining", s.budget_remaining)?;
    t.raw_set("zone", s.zone.as_str())?;
    t.raw_set("reason", s.reason.as_str())?;
    let burn = lua.create_table_with_capacity(0, s.burn_rates.len())?;
    for (k, v) in &s.burn_rates {
        burn.raw_set(k.as_str(), *v)?;
    }
    t.raw_set("burn_rates", burn)?;
    let alerts = lua.create_table_with_capacity(s.alerts.len(), 0)?;
    for (i, a) in s.alerts.iter().enumerate() {
        let x = lua.create_table_with_capacity(0, 8)?;
        x.raw_set(
            "severity",
            match a.severity {
                agentlab_ops::slo::AlertSeverity::Page => "page",
                agentlab_ops::slo::AlertSeverity::Ticket => "ticket",
            },
        )?;
        x.raw_set("long_window", a.long_window.as_str())?;
        x.raw_set("short_window", a.short_window.as_str())?;
        x.raw_set("threshold", a.threshold)?;
        x.raw_set("long_burn", a.long_burn)?;
        x.raw_set("short_burn", a.short_burn)?;
        x.raw_set("firing", a.firing)?;
        x.raw_set("inconclusive", a.inconclusive)?;
        alerts.raw_set(i + 1, x)?;
    }
    t.raw_set("alerts", alerts)?;
    Ok(t)
}

fn error_table(lua: &Lua, e: &Error) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    t.set("kind", e.kind().as_str())?;
    t.set("message", agentlab_ops::secret::redact(e.message()))?;
    t.set("operation", e.operation())?;
    let ctx = lua.create_table()?;
    for (k, v) in e.context() {
        ctx.set(*k, agentlab_ops::secret::redact(v))?;
    }
    t.set("context", ctx)?;
    if let Some(w) = script_position(lua) {
        t.set("where", w)?;
    }
    Ok(t)
}

/// The native answer convention.
fn reply(lua: &Lua, r: Result<Value, Error>) -> mlua::Result<(bool, Value)> {
    match r {
        Ok(v) => Ok((true, v)),
        Err(e) => Ok((false, Value::Table(error_table(lua, &e)?))),
    }
}

/// The message of a Lua error, without mlua's internal frames and the traceback.
fn lua_message(e: &mlua::Error) -> String {
    let msg = match e {
        mlua::Error::RuntimeError(m) => m.clone(),
        mlua::Error::CallbackError { cause, .. } => lua_message(cause),
        mlua::Error::WithContext { cause, .. } => lua_message(cause),
        other => other.to_string(),
    };
    let msg = msg
        .split("\nstack traceback:")
        .next()
        .unwrap_or(&msg)
        .trim();
    // "__mlua_async_poll:5: " is where mlua resumed the coroutine, not the script.
    match msg.strip_prefix("__mlua_async_poll:") {
        Some(rest) => rest
            .split_once(": ")
            .map(|(_, m)| m)
            .unwrap_or(rest)
            .to_string(),
        None => msg.to_string(),
    }
}

fn lua_err(e: mlua::Error) -> Error {
    let msg = lua_message(&e);
    let kind = if msg.contains("cancelled:") {
        ErrorKind::Cancelled
    } else {
        ErrorKind::Unexpected
    };
    Error::new(kind, msg)
}

fn json_of(lua: &Lua, v: Value) -> serde_json::Value {
    lua.from_value::<serde_json::Value>(v)
        .unwrap_or(serde_json::Value::Null)
}

/// Run a runbook of the catalogue by name: the options are the Lua table as JSON, parsed by the
/// core (the same errors as the command and Python); `dry_run` in the table is the run's.
async fn runbook(
    c: &Ctx,
    name: &str,
    mut args: serde_json::Value,
    env: Arc<Environment>,
) -> Result<Report, Error> {
    // An empty Lua table reads as an empty array.
    if args.as_array().is_some_and(|a| a.is_empty()) {
        args = serde_json::Value::Object(Default::default());
    }
    let dry_run = match args.as_object_mut().and_then(|o| o.remove("dry_run")) {
        None | Some(serde_json::Value::Null) => false,
        Some(serde_json::Value::Bool(b)) => b,
        Some(other) => {
            return Err(Error::config(format!(
                "{name}: dry_run: {other} is not a boolean"
            )));
        }
    };
    let run = RunOptions::default()
        .dry_run(c.dry_run || dry_run)
        .cancel_on(c.cancel.clone());
    agentlab_ops::runbook::registry::run(&env, name, args, run).await
}

fn native_table(lua: &Lua) -> mlua::Result<Table> {
    let n = lua.create_table()?;

    n.set(
        "env_info",
        lua.create_function(|lua, id: usize| {
            let c = ctx(lua)?;
            let r = env_of(&c, id).and_then(|e| {
                to_lua(lua, &serde_json::json!({"name": e.name(), "base_url": e.config.service.base_url.as_str()}))
            });
            reply(lua, r)
        })?,
    )?;

    n.set(
        "sandbox",
        lua.create_async_function(|lua, scenario: String| async move {
            let c = ctx(&lua)?;
            let r: Result<(usize, String), Error> = async {
                let sc: agentlab_ops::Scenario = scenario.parse()?;
                let mut sb = Sandbox::start(sc).await?;
                sb.config_mut().journal.disabled = true;
                let env = Arc::new(sb.environment().await?);
                let name = env.name().to_string();
                let mut envs = c.envs.lock().unwrap_or_else(|e| e.into_inner());
                envs.push(env);
                c.sandboxes
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(sb);
                Ok((envs.len() - 1, name))
            }
            .await;
            let r =
                r.and_then(|(id, name)| to_lua(&lua, &serde_json::json!({"id": id, "name": name})));
            reply(&lua, r)
        })?,
    )?;

    n.set(
        "runbook",
        lua.create_async_function(
            |lua, (name, args, env): (String, Value, usize)| async move {
                let c = ctx(&lua)?;
                let a: Result<serde_json::Value, Error> = lua
                    .from_value(args)
                    .map_err(|e| Error::config(format!("{name}: {e}")));
                let r = match (a, env_of(&c, env)) {
                    (Ok(a), Ok(env)) => runbook(&c, &name, a, env).await,
                    (Err(e), _) | (_, Err(e)) => Err(e),
                };
                let r = r.and_then(|rep| to_lua(&lua, &rep));
                reply(&lua, r)
            },
        )?,
    )?;

    n.set(
        "runbooks",
        lua.create_function(|lua, ()| {
            let list: Vec<serde_json::Value> = agentlab_ops::runbook::registry::all()
                .iter()
                .map(|d| d.to_json())
                .collect();
            lua.to_value(&list)
        })?,
    )?;

    n.set(
        "probe",
        lua.create_async_function(|lua, (env, path): (usize, String)| async move {
            let c = ctx(&lua)?;
            let r = async {
                let env = env_of(&c, env)?;
                let resp = env.probe.get(&path).await?;
                let json: Option<serde_json::Value> = serde_json::from_str(&resp.body).ok();
                Ok(serde_json::json!({
                    "url": resp.url, "status": resp.status, "body": resp.body,
                    "latency_ms": resp.latency.as_millis() as u64, "json": json, "attempts": resp.attempts,
                }))
            }
            .await;
            let r = r.and_then(|v: serde_json::Value| to_lua(&lua, &v));
            reply(&lua, r)
        })?,
    )?;

    fn host_of(env: &Environment, name: &str) -> Result<Arc<dyn agentlab_ops::RemoteHost>, Error> {
        env.hosts
            .iter()
            .find(|h| h.config.name == name)
            .map(|h| h.host.clone())
            .ok_or_else(|| Error::new(ErrorKind::NotFound, format!("no host named {name:?}")))
    }

    n.set(
        "host_check",
        lua.create_function(|lua, (env, name): (usize, String)| {
            let c = ctx(lua)?;
            let r = env_of(&c, env)
                .and_then(|e| host_of(&e, &name))
                .map(|_| Value::Boolean(true));
            reply(lua, r)
        })?,
    )?;

    n.set(
        "host_names",
        lua.create_function(|lua, env: usize| {
            let c = ctx(lua)?;
            let r = env_of(&c, env).and_then(|e| {
                let names: Vec<String> = e.hosts.iter().map(|h| h.config.name.clone()).collect();
                to_lua(lua, &names)
            });
            reply(lua, r)
        })?,
    )?;

    n.set(
        "host_run",
        lua.create_async_function(
            |lua, (env, name, argv, opts): (usize, String, Vec<String>, Table)| async move {
                let c = ctx(&lua)?;
                let timeout: Option<f64> = opts.get("timeout")?;
                let r = async {
                    let host = host_of(&*env_of(&c, env)?, &name)?;
                    let (program, args) = argv.split_first().ok_or_else(|| {
                        Error::config("host:run needs a command: {\"df\", \"-P\"}")
                    })?;
                    let mut cmd = Cmd::new(program.clone()).args(args.iter().cloned());
                    if let Some(t) = timeout.and_then(|t| Duration::try_from_secs_f64(t).ok()) {
                        cmd = cmd.timeout(t);
                    }
                    let out = host.run(&cmd).await?;
                    Ok(serde_json::json!({
                        "status": out.status, "ok": out.status == Some(0), "stdout": out.stdout,
                        "stderr": out.stderr, "duration_ms": out.duration.as_millis() as u64,
                    }))
                }
                .await;
                let r = r.and_then(|v: serde_json::Value| to_lua(&lua, &v));
                reply(&lua, r)
            },
        )?,
    )?;

    n.set(
        "host_read",
        lua.create_async_function(
            |lua, (env, name, path): (usize, String, String)| async move {
                let c = ctx(&lua)?;
                let r = async {
                    let host = host_of(&*env_of(&c, env)?, &name)?;
                    host.read_file(&path).await
                }
                .await;
                match r {
                    Ok(b) => Ok((true, Value::String(lua.create_string(&b[..])?))),
                    Err(e) => reply(&lua, Err(e)),
                }
            },
        )?,
    )?;

    fn store_of(env: &Environment) -> Result<Arc<dyn agentlab_ops::BackupStore>, Error> {
        env.backups
            .clone()
            .ok_or_else(|| Error::config("no [backups] configured"))
    }

    n.set(
        "backups_list",
        lua.create_async_function(|lua, (env, prefix): (usize, String)| async move {
            let c = ctx(&lua)?;
            let r = async {
                let store = store_of(&*env_of(&c, env)?)?;
                let metas: Vec<_> = store.list(&prefix).try_collect().await?;
                Ok(metas
                    .into_iter()
                    .map(|m| serde_json::json!({"key": m.key, "size": m.size, "last_modified": m.last_modified.map(|t| t.to_rfc3339())}))
                    .collect::<Vec<_>>())
            }
            .await;
            let r = r.and_then(|v| to_lua(&lua, &v));
            reply(&lua, r)
        })?,
    )?;

    n.set(
        "backups_get",
        lua.create_async_function(|lua, (env, key): (usize, String)| async move {
            let c = ctx(&lua)?;
            let r = async { store_of(&*env_of(&c, env)?)?.get_bytes(&key).await }.await;
            match r {
                Ok(b) => Ok((true, Value::String(lua.create_string(&b[..])?))),
                Err(e) => reply(&lua, Err(e)),
            }
        })?,
    )?;

    n.set(
        "backups_count",
        lua.create_async_function(|lua, (env, prefix): (usize, String)| async move {
            let c = ctx(&lua)?;
            let r = async { store_of(&*env_of(&c, env)?)?.count(&prefix).await }.await;
            reply(&lua, r.map(|n| Value::Integer(n as i64)))
        })?,
    )?;

    n.set(
        "notify",
        lua.create_async_function(|lua, (env, text): (usize, String)| async move {
            let c = ctx(&lua)?;
            let r = async {
                let env = env_of(&c, env)?;
                let n = env
                    .notifier
                    .clone()
                    .ok_or_else(|| Error::config("no notifier configured ([notify])"))?;
                n.notify(&text).await
            }
            .await;
            reply(&lua, r.map(|_| Value::Boolean(true)))
        })?,
    )?;

    n.set(
        "slo_env",
        lua.create_async_function(|lua, env: usize| async move {
            let c = ctx(&lua)?;
            let r = async {
                let env = env_of(&c, env)?;
                let data = env.slo_source.fetch().await?;
                Ok(env.slo_evaluator().evaluate(&data))
            }
            .await;
            match r {
                Ok(v) => {
                    let t = lua.create_table_with_capacity(v.len(), 0)?;
                    for (i, s) in v.iter().enumerate() {
                        t.raw_set(i + 1, status_table(&lua, s)?)?;
                    }
                    Ok((true, Value::Table(t)))
                }
                Err(e) => reply(&lua, Err(e)),
            }
        })?,
    )?;

    n.set(
        "slo_eval",
        lua.create_function(|lua, t: Table| {
            let r = (|| -> Result<agentlab_ops::SloStatus, Error> {
                let target: f64 = t.get("target").map_err(|e| Error::config(e.to_string()))?;
                let good: u64 = t.get("good").map_err(|e| Error::config(e.to_string()))?;
                let total: u64 = t.get("total").map_err(|e| Error::config(e.to_string()))?;
                let period: Option<String> =
                    t.get("period").map_err(|e| Error::config(e.to_string()))?;
                let mut spec = agentlab_ops::SloSpec::new(
                    t.get::<Option<String>>("name")
                        .ok()
                        .flatten()
                        .unwrap_or_else(|| "slo".into()),
                    target,
                );
                if let Some(p) = period {
                    spec.period =
                        agentlab_ops::config::parse_duration(&p).map_err(Error::config)?;
                }
                let mut windows = Vec::new();
                if let Ok(Some(w)) = t.get::<Option<Table>>("windows") {
                    for pair in w.pairs::<String, Table>() {
                        let (k, v) = pair.map_err(|e| Error::config(e.to_string()))?;
                        let len =
                            agentlab_ops::config::parse_duration(&k).map_err(Error::config)?;
                        let g: u64 = v.get(1).map_err(|e| Error::config(e.to_string()))?;
                        let n: u64 = v.get(2).map_err(|e| Error::config(e.to_string()))?;
                        windows.push((len, agentlab_ops::slo::Counts { good: g, total: n }));
                    }
                }
                let period = agentlab_ops::slo::Counts { good, total };
                Ok(agentlab_ops::slo::evaluate_counts(&spec, period, windows))
            })();
            match r {
                Ok(s) => Ok((true, Value::Table(status_table(lua, &s)?))),
                Err(e) => reply(lua, Err(e)),
            }
        })?,
    )?;

    n.set(
        "parallel",
        lua.create_async_function(|lua, fns: Vec<Function>| async move {
            let n = fns.len();
            let results =
                futures::future::join_all(fns.iter().map(|f| f.call_async::<Value>(()))).await;
            let t = lua.create_table()?;
            for (i, r) in results.into_iter().enumerate() {
                match r {
                    Ok(v) => t.set(i + 1, v)?,
                    Err(e) => return reply(&lua, Err(lua_err(e))),
                }
            }
            t.set("n", n)?;
            Ok((true, Value::Table(t)))
        })?,
    )?;

    n.set(
        "step",
        lua.create_async_function(
            |lua, (name, kind, f, undo): (String, String, Function, Option<Function>)| async move {
                let c = ctx(&lua)?;
                let run = match run_of(&c) {
                    Ok(r) => r,
                    Err(e) => return reply(&lua, Err(e)),
                };
                let call = async {
                    let mv: MultiValue = f.call_async(()).await.map_err(lua_err)?;
                    let mut it = mv.into_iter();
                    let value = it.next().unwrap_or(Value::Nil);
                    let summary = match (it.next(), &value) {
                        (Some(Value::String(s)), _) => s.to_string_lossy(),
                        (_, Value::String(s)) => s.to_string_lossy(),
                        (_, Value::Integer(i)) => i.to_string(),
                        (_, Value::Number(x)) => x.to_string(),
                        _ => "done".to_string(),
                    };
                    Ok::<_, Error>((value, summary))
                };
                let r: Result<Value, Error> = match kind.as_str() {
                    "read" => {
                        run.check(&name, None, async {
                            let (v, s) = call.await?;
                            Ok(Checked::with(v, Outcome::Pass, s))
                        })
                        .await
                    }
                    "change" => {
                        let undo = undo.map(|u| {
                            let c = ctx(&lua);
                            Undo::on_failure(format!("undo {name}"), move || async move {
                                // The instruction hook stops a cancelled script, not its undos.
                                if let Ok(c) = &c {
                                    c.undoing.store(true, std::sync::atomic::Ordering::SeqCst);
                                }
                                u.call_async::<()>(()).await.map_err(lua_err)
                            })
                        });
                        run.change(
                            &name,
                            name.clone(),
                            async { call.await.map(|(v, _)| v) },
                            undo,
                        )
                        .await
                        .map(|v| v.unwrap_or(Value::Nil))
                    }
                    other => Err(Error::config(format!(
                        "ops.step: kind {other:?} is not \"read\" or \"change\""
                    ))),
                };
                reply(&lua, r)
            },
        )?,
    )?;

    n.set(
        "finding",
        lua.create_function(|lua, (sev, subject, message): (String, String, String)| {
            let c = ctx(lua)?;
            let r = run_of(&c).and_then(|run| {
                let s = match sev.as_str() {
                    "info" => Severity::Info,
                    "warning" => Severity::Warning,
                    "critical" => Severity::Critical,
                    other => {
                        return Err(Error::config(format!(
                            "severity {other:?}: info, warning or critical"
                        )));
                    }
                };
                run.finding(s, subject, message);
                Ok(Value::Boolean(true))
            });
            reply(lua, r)
        })?,
    )?;

    n.set(
        "escalate",
        lua.create_function(|lua, t: Table| {
            let c = ctx(lua)?;
            let get = |k: &str| -> String {
                t.get::<Option<String>>(k)
                    .ok()
                    .flatten()
                    .unwrap_or_default()
            };
            let r = run_of(&c).and_then(|run| {
                let criterion = get("criterion");
                if criterion.is_empty() {
                    return Err(Error::config("ops.report.escalate needs a criterion"));
                }
                run.escalate(
                    &criterion,
                    get("subject"),
                    get("observed"),
                    get("threshold"),
                    get("message"),
                );
                Ok(Value::Boolean(true))
            });
            reply(lua, r)
        })?,
    )?;

    n.set(
        "dry_run",
        lua.create_function(|lua, ()| {
            let c = ctx(lua)?;
            reply(lua, Ok(Value::Boolean(c.dry_run)))
        })?,
    )?;
    Ok(n)
}

/// A Lua state with the standard library scripts get: everything but the functions that reach
/// outside the process (`os.execute`, `io.popen`, `os.remove`, `os.rename`, `os.exit`,
/// `io.open`..., `package.loadlib`, C modules) and binary chunks, unless `allow_unsafe`.
pub fn new_state(allow_unsafe: bool) -> mlua::Result<Lua> {
    let lua = Lua::new_with(mlua::StdLib::ALL_SAFE, mlua::LuaOptions::default())?;
    if !allow_unsafe {
        lua.load(
            r#"
            local forbidden = function(name)
              return function() error("agentlab_ops: " .. name .. " is not allowed in scripts (run with --allow-unsafe)", 2) end
            end
            for _, n in ipairs({"execute", "remove", "rename", "exit", "tmpname", "setlocale", "getenv"}) do
              os[n] = forbidden("os." .. n)
            end
            for _, n in ipairs({"popen", "open", "lines", "input", "output", "tmpfile"}) do
              io[n] = forbidden("io." .. n)
            end
            package.loadlib = forbidden("package.loadlib")
            package.cpath = ""
            package.searchers[3] = nil
            package.searchers[4] = nil
            local raw_load = load
            load = function(chunk, name, mode, env)
              if mode ~= nil and mode ~= "t" then error("agentlab_ops: binary chunks are not allowed in scripts", 2) end
              if type(chunk) == "string" and chunk:byte(1) == 27 then error("agentlab_ops: binary chunks are not allowed in scripts", 2) end
              return raw_load(chunk, name, "t", env)
            end
            -- They read any file (a parse error prints its first line), as io.open would.
            loadfile = forbidden("loadfile")
            dofile = forbidden("dofile")
            "#,
        )
        .set_name("=agentlab_ops")
        .exec()?;
    }
    Ok(lua)
}

/// Install the `ops` module into `lua` for `env` (global `ops`, and `require("agentlab_ops")`).
pub fn install(
    lua: &Lua,
    env: Arc<Environment>,
    dry_run: bool,
    cancel: CancelToken,
) -> mlua::Result<Table> {
    lua.set_app_data(Arc::new(Ctx {
        envs: Mutex::new(vec![env]),
        sandboxes: Mutex::new(Vec::new()),
        run: Mutex::new(None),
        dry_run,
        cancel,
        undoing: std::sync::atomic::AtomicBool::new(false),
    }));
    let native = native_table(lua)?;
    let ops: Table = lua.load(PRELUDE).set_name("=agentlab_ops").call(native)?;
    lua.globals().set("ops", ops.clone())?;
    let preload: Table = lua.globals().get::<Table>("package")?.get("preload")?;
    let o = ops.clone();
    preload.set(
        "agentlab_ops",
        lua.create_function(move |_, ()| Ok(o.clone()))?,
    )?;
    Ok(ops)
}

/// Run a script file as a runbook against `env`; the report of the run (its verdict is the
/// exit code: 0 healthy, 1 escalate, 2 failed).
pub async fn run_script(env: Arc<Environment>, path: &Path, opts: &ScriptOptions) -> Report {
    let name = format!(
        "lua:{}",
        path.file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "script".into())
    );
    let source = match std::fs::read_to_string(path) {
        Ok(s) => s,
        Err(e) => {
            let msg = format!("{}: cannot read the script: {e}", path.display());
            return agentlab_ops::runbook::run::execute(
                &name,
                env.name(),
                &RunOptions::default(),
                |_| async move { Err(Error::new(ErrorKind::NotFound, msg)) },
            )
            .await;
        }
    };
    run_source(env, &name, &path.display().to_string(), &source, opts).await
}

/// Run Lua source as a runbook named `name` (`chunk` names it in error positions).
pub async fn run_source(
    env: Arc<Environment>,
    name: &str,
    chunk: &str,
    source: &str,
    opts: &ScriptOptions,
) -> Report {
    let cancel = CancelToken::new();
    let mut run_opts = RunOptions::default()
        .dry_run(opts.dry_run)
        .cancel_on(cancel.clone());
    if opts.no_journal {
        run_opts = run_opts.without_journal();
    }
    let why = Arc::new(Mutex::new(String::new()));
    let mut watchers = Vec::new();
    if let Some(t) = opts.timeout {
        let (c, w) = (cancel.clone(), why.clone());
        watchers.push(tokio::spawn(async move {
            tokio::time::sleep(t).await;
            *w.lock().unwrap_or_else(|e| e.into_inner()) = format!(
                "timed out after {}",
                agentlab_ops::config::format_duration(t)
            );
            c.cancel();
        }));
    }
    if opts.signals {
        // The run listens for stop signals and cancels `cancel` on the first one, which the
        // instruction hook reads: a script in a tight loop stops too.
        run_opts = run_opts.signals(true);
    }
    let setup = (|| -> mlua::Result<(Lua, Function)> {
        let lua = new_state(opts.allow_unsafe)?;
        install(&lua, env.clone(), opts.dry_run, cancel.clone())?;
        let arg = lua.create_table()?;
        arg.set(0, chunk)?;
        for (i, a) in opts.args.iter().enumerate() {
            arg.set(i + 1, a.as_str())?;
        }
        lua.globals().set("arg", arg)?;
        // A script that never yields (a tight loop) still sees the timeout (checked here: no
        // timer task may get to run while it spins) and Ctrl-C.
        let (c, w) = (cancel.clone(), why.clone());
        let deadline = opts.timeout.map(|t| (std::time::Instant::now() + t, t));
        lua.set_global_hook(
            mlua::HookTriggers::new().every_nth_instruction(10_000),
            move |lua, _| {
                let undoing = lua
                    .app_data_ref::<Arc<Ctx>>()
                    .is_some_and(|c| c.undoing.load(std::sync::atomic::Ordering::SeqCst));
                if undoing {
                    return Ok(mlua::VmState::Continue);
                }
                if let Some((d, t)) = deadline {
                    if !c.is_cancelled() && std::time::Instant::now() >= d {
                        *w.lock().unwrap_or_else(|e| e.into_inner()) = format!(
                            "timed out after {}",
                            agentlab_ops::config::format_duration(t)
                        );
                        c.cancel();
                    }
                }
                if c.is_cancelled() {
                    let why = w.lock().map(|s| s.clone()).unwrap_or_default();
                    return Err(mlua::Error::runtime(format!("cancelled: {why}")));
                }
                Ok(mlua::VmState::Continue)
            },
        )?;
        let f = lua
            .load(source)
            .set_name(format!("@{chunk}"))
            .into_function()?;
        Ok((lua, f))
    })();
    // The state outlives the run: undo steps registered by the script call back into it after
    // the script's body has ended.
    let keep = setup.as_ref().ok().map(|(l, _)| l.clone());
    let report = env
        .execute(name, &run_opts, |run| async move {
            let (lua, f) =
                setup.map_err(|e| Error::config(e.to_string()).with_operation("lua.load"))?;
            if let Ok(c) = ctx(&lua) {
                *c.run.lock().unwrap_or_else(|e| e.into_inner()) = Some(run.clone());
            }
            let v: Value = f.call_async(()).await.map_err(lua_err)?;
            Ok(json_of(&lua, v))
        })
        .await;
    drop(keep);
    for w in watchers {
        w.abort();
    }
    let mut report = report;
    let why = why.lock().map(|s| s.clone()).unwrap_or_default();
    if !why.is_empty() {
        if let Some(e) = &mut report.error {
            e.message = format!("script {why}");
        }
    }
    report
}
