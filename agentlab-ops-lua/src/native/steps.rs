//! The script's own steps (reads, changes with undos), findings, escalations, parallel calls.

use agentlab_ops::runbook::{Change, Checked, Undo};
use agentlab_ops::{Error, Outcome, Severity};
use mlua::{Function, Lua, MultiValue, Table, Value};

use crate::{ctx, lua_err, reply, run_of};

pub(crate) fn register(lua: &Lua, n: &Table) -> mlua::Result<()> {
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

    n.set("step", lua.create_async_function(step)?)?;

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

    Ok(())
}

/// `ops.step(name, "read"|"change", f, undo)`: the script's function as a read or a change
/// of the run, with its undo registered before it runs.
async fn step(
    lua: Lua,
    (name, kind, f, undo): (String, String, Function, Option<Function>),
) -> mlua::Result<(bool, Value)> {
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
            // The value goes through JSON so that a resumed script gets it back from the run
            // log (functions and userdata in it read as nil).
            let kept = Change::new(name.clone(), name.clone()).undo(undo);
            let value = run
                .apply(kept, async {
                    let (v, _) = call.await?;
                    Ok(json_keep(&lua, v))
                })
                .await;
            value.and_then(|v| match v {
                None | Some(serde_json::Value::Null) => Ok(Value::Nil),
                Some(j) => crate::to_lua(&lua, &j),
            })
        }
        other => Err(Error::config(format!(
            "ops.step: kind {other:?} is not \"read\" or \"change\""
        ))),
    };
    reply(&lua, r)
}

/// A change's value as JSON, functions and userdata as null (they cannot be kept).
fn json_keep(lua: &Lua, v: Value) -> serde_json::Value {
    use mlua::LuaSerdeExt;
    let opts = mlua::serde::DeserializeOptions::new()
        .deny_unsupported_types(false)
        .deny_recursive_tables(false);
    lua.from_value_with::<serde_json::Value>(v, opts)
        .unwrap_or(serde_json::Value::Null)
}
