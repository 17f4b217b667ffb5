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

use agentlab_ops::{CancelToken, Environment, Error, ErrorKind, Report, Run, RunOptions, Sandbox};
use mlua::{Function, Lua, LuaSerdeExt, Table, Value};

mod native {
    pub(crate) mod backups;
    pub(crate) mod env;
    pub(crate) mod hosts;
    pub(crate) mod slo;
    pub(crate) mod steps;
}

mod resume;
pub use resume::resume_script;

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
    /// Resume this run of the script (see [`resume_script`]).
    pub resume: Option<Arc<agentlab_ops::runbook::run::Replay>>,
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
    match run_of(c) {
        // Nested in the script's run: resuming the script resumes (or replays) it.
        Ok(parent) => agentlab_ops::runbook::resume::nested(&env, &parent, name, args, run).await,
        Err(_) => agentlab_ops::runbook::registry::run(&env, name, args, run).await,
    }
}

fn native_table(lua: &Lua) -> mlua::Result<Table> {
    let n = lua.create_table()?;
    native::env::register(lua, &n)?;
    native::hosts::register(lua, &n)?;
    native::backups::register(lua, &n)?;
    native::slo::register(lua, &n)?;
    native::steps::register(lua, &n)?;
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
    run_opts.invocation = Some(resume::invocation(chunk, source, opts));
    run_opts.resume = opts.resume.clone();
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
