//! Cross-field checks of a parsed config that serde cannot express. Each section has its own
//! check, returning the field and the message; [`Config::validate`] adds the file's name.

use std::time::Duration;

use super::*;

type Check = std::result::Result<(), (String, String)>;

fn bad<T>(
    field: impl Into<String>,
    msg: impl Into<String>,
) -> std::result::Result<T, (String, String)> {
    Err((field.into(), msg.into()))
}

impl Config {
    /// Cross-field checks that serde cannot express.
    pub(super) fn validate(&self, origin: &str) -> Result<()> {
        let checks = [
            self.check_fleet(),
            self.check_deploy(),
            self.check_blue_green(),
            self.check_slos(),
            self.check_backups(),
            self.slo_response.check(),
            self.investigation.check(),
            self.access.check(),
            secrets::check_secrets(&self.secrets),
            self.load.check(),
            self.check_cloud(),
        ];
        for c in checks {
            if let Err((field, msg)) = c {
                return Err(Error::config(format!("{origin}: {field}: {msg}"))
                    .with_operation("config.load"));
            }
        }
        Ok(())
    }

    fn check_fleet(&self) -> Check {
        if self.fleet.concurrency == 0 {
            return bad("fleet.concurrency", "must be at least 1");
        }
        if self.ssh.max_concurrent == 0 {
            return bad("ssh.max_concurrent", "must be at least 1");
        }
        let mut names = std::collections::HashSet::new();
        for (i, h) in self.hosts.iter().enumerate() {
            if h.name.trim().is_empty() {
                return bad(format!("hosts[{i}].name"), "must not be empty");
            }
            if !names.insert(h.name.as_str()) {
                return bad(
                    format!("hosts[{i}].name"),
                    format!("duplicate host name {:?}", h.name),
                );
            }
        }
        Ok(())
    }

    fn check_deploy(&self) -> Check {
        let Some(d) = &self.deploy else { return Ok(()) };
        if d.provider == DeployProvider::Github && (d.repository.is_none() || d.token.is_none()) {
            return bad("deploy", "provider = \"github\" needs repository and token");
        }
        if d.provider == DeployProvider::Command && !d.commands.contains_key(&d.workflow) {
            return bad(
                "deploy.commands",
                format!("no command for the workflow {:?}", d.workflow),
            );
        }
        for (i, w) in d.maintenance_windows.iter().enumerate() {
            if let Err(m) = MaintenanceWindow::parse(w) {
                return bad(format!("deploy.maintenance_windows[{i}]"), m);
            }
        }
        for (i, v) in d.security_scan.iter().enumerate() {
            if !ALERT_SOURCES.contains(&v.as_str()) {
                let m = format!("{v:?}: one of {}", ALERT_SOURCES.join(", "));
                return bad(format!("deploy.security_scan[{i}]"), m);
            }
        }
        for (i, v) in d.blocking_severities.iter().enumerate() {
            if !SEVERITIES.contains(&v.as_str()) {
                let m = format!("{v:?}: one of {}", SEVERITIES.join(", "));
                return bad(format!("deploy.blocking_severities[{i}]"), m);
            }
        }
        if let Some(p) = &d.performance {
            if !p.url.starts_with("http://") {
                return bad(
                    "deploy.performance.url",
                    format!("{:?}: an http:// URL", p.url),
                );
            }
            if p.requests == 0 || p.concurrency == 0 {
                return bad(
                    "deploy.performance.requests",
                    "requests and concurrency: at least 1",
                );
            }
            for (i, t) in p.thresholds.iter().enumerate() {
                if let Err(m) = super::Threshold::parse(t) {
                    return bad(format!("deploy.performance.thresholds[{i}]"), m);
                }
            }
        }
        Ok(())
    }

    fn check_blue_green(&self) -> Check {
        let Some(b) = &self.blue_green else {
            return Ok(());
        };
        let mut last = 0u8;
        for (i, &p) in b.steps.iter().enumerate() {
            if p == 0 || p > 100 || p <= last {
                return bad(
                    format!("blue_green.steps[{i}]"),
                    "steps must rise from 1 to 100",
                );
            }
            last = p;
        }
        if last != 100 {
            return bad("blue_green.steps", "the last step must be 100");
        }
        if b.router == RouterKind::Nginx && (b.blue_server.is_none() || b.green_server.is_none()) {
            return bad(
                "blue_green",
                "router = \"nginx\" needs blue_server and green_server",
            );
        }
        if b.measurements == 0 {
            return bad("blue_green.measurements", "must be at least 1");
        }
        Ok(())
    }

    fn check_slos(&self) -> Check {
        let mut slo_names = std::collections::HashSet::new();
        for (i, s) in self.slos.iter().enumerate() {
            if !slo_names.insert(s.name.as_str()) {
                return bad(
                    format!("slo[{i}].name"),
                    format!("duplicate SLO name {:?}", s.name),
                );
            }
            if s.period.0 < Duration::from_secs(3600) {
                return bad(
                    format!("slo[{i}].period"),
                    "an SLO period shorter than 1h makes no sense",
                );
            }
            if s.source == SliSourceKind::Prometheus {
                self.check_prometheus_slo(i, s)?;
            } else if s.rules.is_some() {
                return bad(
                    format!("slo[{i}].rules"),
                    "recording rules are read from Prometheus: needs source = \"prometheus\"",
                );
            }
        }
        Ok(())
    }

    fn check_prometheus_slo(&self, i: usize, s: &SloConfig) -> Check {
        if self.prometheus.is_none() {
            return bad(
                format!("slo[{i}].source"),
                "\"prometheus\" needs a [prometheus] section",
            );
        }
        for (field, q) in [("good", &s.good), ("total", &s.total)] {
            match q {
                None => {
                    return bad(
                        format!("slo[{i}].{field}"),
                        "required with source = \"prometheus\" (a PromQL query over $window)",
                    );
                }
                Some(q) if !q.contains("$window") => {
                    return bad(
                        format!("slo[{i}].{field}"),
                        format!("{q:?} has no $window to fill"),
                    );
                }
                _ => {}
            }
        }
        if let Some(r) = &s.rules {
            r.check()
                .map_err(|(f, m)| (format!("slo[{i}].rules.{f}"), m))?;
        }
        Ok(())
    }

    fn check_backups(&self) -> Check {
        let Some(b) = &self.backups else {
            return Ok(());
        };
        if b.store == StoreKind::Fs && b.path.is_none() {
            return bad("backups.path", "required when store = \"fs\"");
        }
        if b.store == StoreKind::S3 {
            check_s3(b)?;
        }
        if let Err(m) = b.dataset_specs() {
            return bad("backups.datasets", m);
        }
        if let Err(m) = Sample::parse(&b.sample) {
            return bad("backups.sample", m);
        }
        if b.concurrency == 0 {
            return bad("backups.concurrency", "must be at least 1");
        }
        for (i, d) in b.datasets.iter().enumerate() {
            if d.is_empty() || d.contains('/') || d.contains("..") {
                return bad(
                    format!("backups.datasets[{i}]"),
                    format!("invalid dataset name {d:?}"),
                );
            }
        }
        Ok(())
    }
}

fn check_s3(b: &BackupsConfig) -> Check {
    match &b.bucket {
        None => return bad("backups.bucket", "required when store = \"s3\""),
        Some(n) if n.len() < 3 || n.len() > 63 => {
            return bad(
                "backups.bucket",
                format!("bucket name {n:?} must be 3 to 63 characters"),
            );
        }
        _ => {}
    }
    if let Some(u) = &b.endpoint_url {
        if let Err(m) = BaseUrl::parse(u) {
            return bad("backups.endpoint_url", m);
        }
    }
    if let Some(p) = b.prefix.as_deref().filter(|p| !p.is_empty()) {
        if !p.ends_with('/') || crate::keys::validate_prefix(p).is_err() {
            return bad(
                "backups.prefix",
                format!("prefix {p:?} must be relative and end with '/'"),
            );
        }
    }
    Ok(())
}
