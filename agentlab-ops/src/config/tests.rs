//! The config loader's tests.
use super::*;

const MINIMAL: &str = "[service]\nbase_url = \"http://127.0.0.1:8080\"\n";

#[test]
fn minimal_config_has_spec_defaults() {
    let c = Config::from_toml_str(MINIMAL, "x.toml").unwrap();
    assert_eq!(c.service.health_path, "/health");
    assert_eq!(c.thresholds.error_budget_min.0, 0.5);
    assert_eq!(c.thresholds.resource_max.0, 0.9);
    assert_eq!(
        c.service.base_url.join("/health"),
        "http://127.0.0.1:8080/health"
    );
}

#[test]
fn unknown_key_names_file_line_and_key() {
    let text = format!("{MINIMAL}colour = \"blue\"\n");
    let e = Config::from_toml_str(&text, "env.toml").unwrap_err();
    let m = e.to_string();
    assert_eq!(e.kind(), ErrorKind::ConfigInvalid);
    assert!(m.contains("env.toml:3:1"), "{m}");
    assert!(m.contains("colour"), "{m}");
    assert!(!m.contains('\n'));
}

#[test]
fn wrong_type_names_the_field_path() {
    let text = format!("{MINIMAL}\n[[slo]]\nname = \"availability\"\ntarget = \"high\"\n");
    let m = Config::from_toml_str(&text, "env.toml")
        .unwrap_err()
        .to_string();
    assert!(m.contains("env.toml:6:"), "{m}");
    assert!(m.contains("slo[0].target"), "{m}");
}

#[test]
fn nested_unknown_key() {
    let text = "[service]\nbase_url = \"http://x\"\nhealth_pth = \"/h\"\n";
    let m = Config::from_toml_str(text, "e.toml")
        .unwrap_err()
        .to_string();
    assert!(m.contains("e.toml:3:1"), "{m}");
    assert!(m.contains("health_pth"), "{m}");
}

#[test]
fn inline_secret_is_rejected_without_echo() {
    let text = format!(
        "{MINIMAL}[notify]\nslack_webhook_url = \"https://hooks.example/T000/SECRETVALUE\"\n"
    );
    let m = Config::from_toml_str(&text, "e.toml")
        .unwrap_err()
        .to_string();
    assert!(m.contains("notify.slack_webhook_url"), "{m}");
    assert!(m.contains("${ENV_VAR}"), "{m}");
    assert!(!m.contains("SECRETVALUE"), "{m}");
}

#[test]
fn bad_values_are_rejected() {
    for (snippet, field) in [
        ("[[slo]]\nname = \"a\"\ntarget = 1.5\n", "slo[0].target"),
        (
            "[thresholds]\nresource_max = \"95\"\n",
            "thresholds.resource_max",
        ),
        (
            "[thresholds]\ncheck_timeout = \"5 parsecs\"\n",
            "thresholds.check_timeout",
        ),
        (
            "[[hosts]]\nname = \"a\"\naddress = \"telnet://x\"\n",
            "hosts[0].address",
        ),
        ("[backups]\nstore = \"fs\"\n", "backups.path"),
        (
            "[deploy]\nprovider = \"memory\"\nsecurity_scan = [\"dependabot\", \"snyk\"]\n",
            "deploy.security_scan[1]",
        ),
        (
            "[deploy]\nprovider = \"memory\"\nblocking_severities = [\"severe\"]\n",
            "deploy.blocking_severities[0]",
        ),
    ] {
        let m = Config::from_toml_str(&format!("{MINIMAL}{snippet}"), "e.toml")
            .unwrap_err()
            .to_string();
        assert!(m.contains(field), "{snippet}: {m}");
    }
}

#[test]
fn host_addresses() {
    assert_eq!(
        HostAddress::parse("ssh://deploy@10.0.0.5:2222").unwrap(),
        HostAddress::Ssh {
            user: Some("deploy".into()),
            host: "10.0.0.5".into(),
            port: 2222
        }
    );
    assert_eq!(
        HostAddress::parse("ssh://web1").unwrap().to_string(),
        "ssh://web1:22"
    );
    assert!(HostAddress::parse("ssh://u@h:0").is_err());
}

#[test]
fn durations() {
    assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
    assert_eq!(
        parse_duration("30d").unwrap(),
        Duration::from_secs(30 * 86400)
    );
    assert_eq!(format_duration(Duration::from_secs(90)), "1m30s");
    assert!(parse_duration("abc").is_err());
}

#[test]
fn missing_file_is_not_found() {
    let e = Config::discover(Some(Path::new("/nonexistent/agentlab-ops.toml"))).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
    assert!(e.to_string().contains("/nonexistent/agentlab-ops.toml"));
}

#[test]
fn slo_rules_and_the_slo_response_are_checked_naming_the_field() {
    let base = "[service]\nbase_url = \"http://x\"\n[prometheus]\nurl = \"http://p\"\n\
                [[slo]]\nname = \"a\"\ntarget = 0.999\nsource = \"prometheus\"\n\
                good = 'sum(increase(ok[$window]))'\ntotal = 'sum(increase(all[$window]))'\n";
    let ok = format!("{base}[slo.rules]\nkind = \"sloth\"\nslo = \"requests-availability\"\n");
    let c = Config::from_toml_str(&ok, "t.toml").unwrap();
    assert_eq!(c.slos[0].rules.as_ref().unwrap().kind, RulesKind::Sloth);
    let e = Config::from_toml_str(
        &format!("{base}[slo.rules]\nkind = \"pyrra\"\nslo = \"x\"\n"),
        "t.toml",
    )
    .unwrap_err();
    assert!(e.to_string().contains("slo[0].rules.metric"), "{e}");
    let svc = "[service]\nbase_url = \"http://x\"\n[[slo]]\nname = \"a\"\ntarget = 0.999\n\
               [slo.rules]\nkind = \"sloth\"\nslo = \"a\"\n";
    let e = Config::from_toml_str(svc, "t.toml").unwrap_err();
    assert!(e.to_string().contains("slo[0].rules"), "{e}");
    let bad = format!(
        "{base}[slo_response]\nworkflows = [\"deploy.yml\"]\nred_workflows = [\"deploy.yml\"]\n"
    );
    let e = Config::from_toml_str(&bad, "t.toml").unwrap_err();
    assert!(e.to_string().contains("listed twice"), "{e}");
    let bad = format!("{base}[slo_response]\npage_severity = \"loud\"\n");
    let e = Config::from_toml_str(&bad, "t.toml").unwrap_err();
    assert!(e.to_string().contains("slo_response.page_severity"), "{e}");
}

#[test]
fn investigation_sections_parse_and_bad_ones_name_the_field() {
    let text = format!(
        "{MINIMAL}[investigation]\nsince = \"30m\"\n[[investigation.dependencies]]\nname = \"openrouter\"\nurl = \"https://openrouter.ai/api/v1/models\"\ntoken = \"${{OPENROUTER_API_KEY}}\"\n[[investigation.known_issues]]\nname = \"k\"\ndependency = \"openrouter\"\nfix = \"wait\"\nrunbook = \"restart\"\nrunbook_options = {{ serial = 1 }}\n"
    );
    let c = Config::from_toml_str(&text, "x.toml").unwrap();
    let i = &c.investigation;
    assert_eq!(i.since.0, Duration::from_secs(1800));
    assert_eq!(
        i.dependencies[0].token.as_ref().unwrap().var(),
        "OPENROUTER_API_KEY"
    );
    assert_eq!(i.known_issues[0].runbook_options["serial"], 1);
    let bad = |extra: &str| {
        Config::from_toml_str(&format!("{MINIMAL}{extra}"), "x.toml")
            .unwrap_err()
            .to_string()
    };
    let m = bad("[[investigation.known_issues]]\nname = \"k\"\nfix = \"f\"\n");
    assert!(
        m.contains("investigation.known_issues[0].name") && m.contains("no condition"),
        "{m}"
    );
    let m = bad("[[investigation.known_issues]]\nname = \"k\"\ndependency = \"db\"\nfix = \"f\"\n");
    assert!(
        m.contains("known_issues[0].dependency") && m.contains("\"db\""),
        "{m}"
    );
    let m = bad("[[investigation.known_issues]]\nname = \"k\"\npattern = \"(\"\nfix = \"f\"\n");
    assert!(m.contains("known_issues[0].pattern: not a regex"), "{m}");
    let m = bad(
        "[[investigation.dependencies]]\nname = \"d\"\nurl = \"http://x\"\ntoken = \"sk-inline\"\n",
    );
    assert!(m.contains("token") && !m.contains("sk-inline"), "{m}");
}

#[test]
fn cloud_sections_parse_and_bad_ones_name_the_field() {
    let text = format!(
        "{MINIMAL}[[hosts]]\nname = \"web-1\"\n[aws]\nregion = \"eu-west-1\"\nendpoint_url = \"http://127.0.0.1:5000\"\n[compute]\ninstances = {{ web-1 = \"i-0abc\" }}\nladder = [\"t3.small\", \"t3.large\"]\nstop_timeout = \"2m\"\n[[compute.load_balancers]]\nname = \"web\"\nkind = \"target_group\"\ntarget = \"arn:aws:elasticloadbalancing:eu-west-1:1:targetgroup/web/1\"\n[scaling]\ncpu_high = 1.5\n[cost]\ntop = 3\n"
    );
    let c = Config::from_toml_str(&text, "x.toml").unwrap();
    let cc = c.compute.as_ref().unwrap();
    assert_eq!(cc.instances["web-1"], "i-0abc");
    assert_eq!(cc.stop_timeout.0, Duration::from_secs(120));
    assert_eq!(cc.load_balancers[0].kind, BalancerKind::TargetGroup);
    assert_eq!(c.aws.region.as_deref(), Some("eu-west-1"));
    assert_eq!((c.scaling.cpu_high, c.cost.as_ref().unwrap().top), (1.5, 3));
    let bad = |extra: &str| {
        Config::from_toml_str(&format!("{MINIMAL}{extra}"), "x.toml")
            .unwrap_err()
            .to_string()
    };
    let m = bad("[compute]\ninstances = { web-9 = \"i-0abc\" }\n");
    assert!(
        m.contains("x.toml: compute.instances.web-9: no [[hosts]]"),
        "{m}"
    );
    let m = bad(
        "[[compute.load_balancers]]\nname = \"a\"\nkind = \"target_group\"\ntarget = \"tg-web\"\n",
    );
    assert!(
        m.contains("compute.load_balancers[0].target") && m.contains("ARN"),
        "{m}"
    );
    let m = bad("[[compute.load_balancers]]\nname = \"a\"\nkind = \"nlb\"\ntarget = \"x\"\n");
    assert!(m.contains("nlb"), "{m}");
    let m = bad("[scaling]\nmemory_high = 1.2\n");
    assert!(m.contains("scaling.memory_high"), "{m}");
}
