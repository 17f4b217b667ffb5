//! The annotated example config in `examples/` parses and builds.

use agentlab_ops::Config;

#[test]
fn example_config_parses() {
    let text = include_str!("../../../examples/agentlab-ops.toml");
    let c = Config::from_toml_str(text, "examples/agentlab-ops.toml").unwrap();
    assert_eq!(c.environment, "production");
    assert_eq!(c.slos.len(), 2);
    assert_eq!(c.hosts[0].mounts, vec!["/", "/app"]);
    assert_eq!(c.handover.schedule.len(), 1);
    assert_eq!(
        c.notify.as_ref().unwrap().slack_webhook_url.var(),
        "SLACK_WEBHOOK_URL"
    );
}

#[tokio::test]
async fn production_example_builds_s3_and_ssh_backends() {
    use agentlab_ops::config::{FailureBudget, HostAddress, StoreKind};
    let text = include_str!("../../../examples/production.toml");
    let c = Config::from_toml_str(text, "examples/production.toml").unwrap();
    let b = c.backups.as_ref().unwrap();
    assert_eq!(
        (b.store, b.bucket.as_deref(), b.prefix.as_deref()),
        (StoreKind::S3, Some("agent-lab-backups"), Some("nightly/"))
    );
    assert_eq!(c.fleet.failure_budget, Some(FailureBudget::Fraction(0.1)));
    assert_eq!(
        c.hosts[1].address,
        HostAddress::Ssh {
            user: Some("deploy".into()),
            host: "10.0.1.12".into(),
            port: 22
        }
    );
    let d = c.deploy.as_ref().unwrap();
    assert_eq!(d.repository.as_deref(), Some("acme/agent-lab"));
    assert_eq!(d.token.as_ref().unwrap().var(), "GITHUB_TOKEN");
    assert_eq!(c.blue_green.as_ref().unwrap().steps, vec![10, 25, 50, 100]);
    assert_eq!(c.restart.serial.waves(10), [1, 5, 4]);
    assert_eq!(c.restart.health.successes, 3);
    assert_eq!(c.maintenance.lease.0, std::time::Duration::from_secs(300));
    // Building connects to nothing yet (SSH and S3 are lazy): only the secret must resolve.
    let env = {
        let mut c = c.clone();
        c.notify = None;
        c.deploy = None; // its token is a secret from the environment, resolved when built
        agentlab_ops::Environment::from_config(c).await.unwrap()
    };
    assert_eq!(
        env.backups.as_ref().unwrap().describe(),
        "s3://agent-lab-backups/nightly/"
    );
    assert_eq!(env.hosts[0].host.address(), "ssh://deploy@10.0.1.11:22");
    assert_eq!(
        env.service("web-2").unwrap().manager.describe(),
        "systemd:agent-lab@web-2"
    );
    assert_eq!(
        env.router.as_ref().unwrap().describe(),
        "nginx:web-1:/etc/nginx/conf.d/agentlab-upstream.conf"
    );
}

#[test]
fn s3_and_ssh_config_errors_name_the_field() {
    for (snippet, field) in [
        ("[backups]\nstore = \"s3\"\n", "backups.bucket"),
        (
            "[backups]\nstore = \"s3\"\nbucket = \"ab\"\n",
            "backups.bucket",
        ),
        (
            "[backups]\nstore = \"s3\"\nbucket = \"abc\"\nprefix = \"/abs\"\n",
            "backups.prefix",
        ),
        ("[ssh]\nhost_key_check = \"yolo\"\n", "ssh.host_key_check"),
        (
            "[fleet]\nfailure_budget = \"lots\"\n",
            "fleet.failure_budget",
        ),
    ] {
        let text = format!("[service]\nbase_url = \"http://x\"\n{snippet}");
        let m = Config::from_toml_str(&text, "e.toml")
            .unwrap_err()
            .to_string();
        assert!(m.contains(field), "{snippet}: {m}");
    }
}
