//! Environments, the catalogue's runbooks, health probes and notifications.

use agentlab_ops::{Error, Sandbox};
use mlua::{Lua, LuaSerdeExt, Table, Value};
use std::sync::Arc;

use crate::{ctx, env_of, reply, runbook, to_lua};

pub(crate) fn register(lua: &Lua, n: &Table) -> mlua::Result<()> {
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

    n.set("sandbox", lua.create_async_function(sandbox)?)?;

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

    register_drill(lua, n)?;
    register_resume(lua, n)?;

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
        "dry_run",
        lua.create_function(|lua, ()| {
            let c = ctx(lua)?;
            reply(lua, Ok(Value::Boolean(c.dry_run)))
        })?,
    )?;
    Ok(())
}

/// `ops.sandbox(scenario)`: start the sandbox service and register its environment.
async fn sandbox(lua: Lua, scenario: String) -> mlua::Result<(bool, Value)> {
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
    let r = r.and_then(|(id, name)| to_lua(&lua, &serde_json::json!({"id": id, "name": name})));
    reply(&lua, r)
}

/// `native.drill(names)`: the drill's report as a table.
fn register_drill(lua: &Lua, n: &Table) -> mlua::Result<()> {
    n.set(
        "drill",
        lua.create_async_function(|lua, names: Vec<String>| async move {
            let r = async {
                for n in &names {
                    agentlab_ops::runbook::registry::get(n)?;
                }
                let d = agentlab_ops::drill::run(&names).await;
                serde_json::to_value(&d)
                    .map_err(|e| Error::new(agentlab_ops::ErrorKind::Unexpected, e.to_string()))
            }
            .await;
            let r = r.and_then(|v: serde_json::Value| to_lua(&lua, &v));
            reply(&lua, r)
        })?,
    )?;
    Ok(())
}

/// `native.resume(args, env)` (`ops.resume{run_id=, done=, redo=}`: a catalogue run that
/// stopped half-way, taken over) and `native.unfinished(env)` (`ops.unfinished()`).
fn register_resume(lua: &Lua, n: &Table) -> mlua::Result<()> {
    use agentlab_ops::runbook::resume::{self, ResumeRequest};
    #[derive(serde::Deserialize)]
    struct Args {
        run_id: Option<String>,
        #[serde(default)]
        done: Vec<String>,
        #[serde(default)]
        redo: Vec<String>,
    }
    n.set(
        "resume",
        lua.create_async_function(|lua, (args, env): (Value, usize)| async move {
            let c = ctx(&lua)?;
            let r = async {
                let a: Args = lua
                    .from_value(args)
                    .map_err(|e| Error::config(format!("ops.resume: {e}")))?;
                let mut req = a.run_id.map(ResumeRequest::run).unwrap_or_default();
                req.done = a.done;
                req.redo = a.redo;
                let env = env_of(&c, env)?;
                let ro = agentlab_ops::RunOptions::default().cancel_on(c.cancel.clone());
                let rep = resume::resume(&env, &req, ro).await?;
                to_lua(&lua, &rep)
            }
            .await;
            reply(&lua, r)
        })?,
    )?;
    n.set(
        "unfinished",
        lua.create_function(|lua, env: usize| {
            let c = ctx(lua)?;
            let r = env_of(&c, env)
                .and_then(|e| resume::unfinished(&e))
                .and_then(|u| to_lua(lua, &u));
            reply(lua, r)
        })?,
    )?;
    Ok(())
}
