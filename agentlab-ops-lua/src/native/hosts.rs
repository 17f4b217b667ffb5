//! The environment's hosts: names, commands, files.

use agentlab_ops::{Cmd, Environment, Error, ErrorKind};
use mlua::{Lua, Table, Value};
use std::sync::Arc;
use std::time::Duration;

use crate::{ctx, env_of, reply, to_lua};

pub(crate) fn register(lua: &Lua, n: &Table) -> mlua::Result<()> {
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

    Ok(())
}
