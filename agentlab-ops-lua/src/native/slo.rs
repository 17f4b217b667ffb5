//! SLO status of an environment, and the SLO arithmetic on given counts.

use agentlab_ops::Error;
use mlua::{Lua, Table, Value};

use crate::{ctx, env_of, reply, status_table};

pub(crate) fn register(lua: &Lua, n: &Table) -> mlua::Result<()> {
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

    Ok(())
}
