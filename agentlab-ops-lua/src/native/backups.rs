//! The backup store: list, read, count.

use agentlab_ops::backup::BackupStoreExt;
use agentlab_ops::{Environment, Error};
use futures::TryStreamExt;
use mlua::{Lua, Table, Value};
use std::sync::Arc;

use crate::{ctx, env_of, reply, to_lua};

pub(crate) fn register(lua: &Lua, n: &Table) -> mlua::Result<()> {
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

    Ok(())
}
