//! Where a runbook runs: the sandbox asked for, the environment file, or the healthy sandbox
//! when there is no file.

use agentlab_ops::{Config, Environment, Sandbox, Scenario};

use crate::{Global, fail};

/// Where the runbook runs.
pub(crate) struct Target {
    pub(crate) env: Environment,
    _sandbox: Option<Sandbox>,
    pub(crate) note: Option<String>,
}

pub(crate) async fn target(g: &Global) -> Result<Target, i32> {
    if let Some(s) = &g.sandbox {
        let scenario: Scenario = s.parse().map_err(fail)?;
        return start_sandbox(scenario, format!("sandbox: scenario {scenario}")).await;
    }
    match Config::load(g.config.as_deref()) {
        Err(e) => Err(fail(e)),
        Ok(Some(cfg)) => Ok(Target {
            env: Environment::from_config(cfg).await.map_err(fail)?,
            _sandbox: None,
            note: None,
        }),
        Ok(None) => {
            start_sandbox(
                Scenario::Healthy,
                "no config found (--config, $AGENTLAB_OPS_CONFIG, ./agentlab-ops.toml): running against the built-in healthy sandbox".into(),
            )
            .await
        }
    }
}

async fn start_sandbox(scenario: Scenario, note: String) -> Result<Target, i32> {
    let sb = Sandbox::start(scenario)
        .await
        .map_err(|e| fail(format!("cannot start the sandbox: {e}")))?;
    let env = sb.environment().await.map_err(fail)?;
    let note = format!("{note} at {}", sb.base_url());
    Ok(Target {
        env,
        _sandbox: Some(sb),
        note: Some(note),
    })
}
