//! The annotated example config in `examples/` parses and builds.

use agentlab_ops::Config;

#[test]
fn example_config_parses() {
    let text = include_str!("../examples/agentlab-ops.toml");
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
