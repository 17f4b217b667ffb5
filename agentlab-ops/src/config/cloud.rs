//! `[aws]`, `[compute]` (instances, load balancers, the resize ladder), `[scaling]` and
//! `[cost]`: the cloud side of Resource Scaling, the incident snapshot and the monthly cost.

use super::*;

/// `[aws]`: where the EC2, ELB and Cost Explorer clients go. Credentials come only from the
/// standard AWS chain (environment, profile, SSO, instance role), never from this file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct AwsConfig {
    /// Region (default: the AWS chain's, `AWS_REGION` or the profile).
    pub region: Option<String>,
    /// Endpoint of an AWS-compatible server (moto, LocalStack).
    pub endpoint_url: Option<String>,
    /// Attempts of one call (temporary errors: throttling, 5xx, timeouts).
    pub attempts: u32,
    /// Timeout of one attempt.
    pub timeout: Dur,
}

impl Default for AwsConfig {
    fn default() -> Self {
        AwsConfig {
            region: None,
            endpoint_url: None,
            attempts: 5,
            timeout: Dur(Duration::from_secs(30)),
        }
    }
}

/// Which compute API the instances live in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ComputeProvider {
    /// Amazon EC2 (`aws-sdk-ec2`, cargo feature `ec2`).
    #[default]
    Ec2,
}

/// `[compute]`: the instance behind each host, the load balancers, and the waits of a resize.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct ComputeConfig {
    /// The API.
    pub provider: ComputeProvider,
    /// Host name → instance id (`web-1 = "i-0abc..."`).
    pub instances: BTreeMap<String, String>,
    /// Instance types smallest first: a vertical step goes one rung up (or down).
    pub ladder: Vec<String>,
    /// Wait for `stopped` this long.
    pub stop_timeout: Dur,
    /// Wait for `running` this long.
    pub start_timeout: Dur,
    /// Wait for the status checks to pass this long (0: do not wait for them).
    pub status_timeout: Dur,
    /// Wait for a snapshot to complete this long.
    pub snapshot_timeout: Dur,
    /// How often a wait polls.
    pub poll_interval: Dur,
    /// Load balancers the instances sit behind.
    pub load_balancers: Vec<BalancerConfig>,
}

impl Default for ComputeConfig {
    fn default() -> Self {
        ComputeConfig {
            provider: ComputeProvider::Ec2,
            instances: BTreeMap::new(),
            ladder: [
                "t3.small",
                "t3.medium",
                "t3.large",
                "t3.xlarge",
                "t3.2xlarge",
            ]
            .map(String::from)
            .to_vec(),
            stop_timeout: Dur(Duration::from_secs(600)),
            start_timeout: Dur(Duration::from_secs(600)),
            status_timeout: Dur(Duration::from_secs(900)),
            snapshot_timeout: Dur(Duration::from_secs(3600)),
            poll_interval: Dur(Duration::from_secs(5)),
            load_balancers: Vec::new(),
        }
    }
}

/// Which load-balancer API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BalancerKind {
    /// Classic ELB (the spec's `aws elb register-instances-with-load-balancer`): `target` is
    /// the load balancer's name.
    Classic,
    /// An ELBv2 (ALB/NLB) target group: `target` is its ARN.
    TargetGroup,
}

/// `[[compute.load_balancers]]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct BalancerConfig {
    /// Name in reports and options (`web`).
    pub name: String,
    /// The API.
    pub kind: BalancerKind,
    /// The classic load balancer's name, or the target group's ARN.
    pub target: String,
    /// Wait for a new target to pass its health checks this long.
    #[serde(default = "d_healthy")]
    pub healthy_timeout: Dur,
    /// Wait for a deregistered target to drain this long (beyond the balancer's own delay
    /// this is a failure).
    #[serde(default = "d_drain")]
    pub drain_timeout: Dur,
}

fn d_healthy() -> Dur {
    Dur(Duration::from_secs(300))
}
fn d_drain() -> Dur {
    Dur(Duration::from_secs(600))
}

impl BalancerConfig {
    /// A balancer entry with default waits.
    pub fn new(name: &str, kind: BalancerKind, target: &str) -> Self {
        BalancerConfig {
            name: name.into(),
            kind,
            target: target.into(),
            healthy_timeout: d_healthy(),
            drain_timeout: d_drain(),
        }
    }
}

/// `[scaling]`: when the assessment recommends what.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct ScalingConfig {
    /// CPU load per core above which a host is saturated.
    pub cpu_high: f64,
    /// Memory share above which a host is saturated.
    pub memory_high: f64,
    /// Disk share above which a filesystem needs cleaning first (not more CPUs).
    pub disk_high: f64,
    /// Device utilisation (iostat `%util`) above which a disk is the bottleneck.
    pub io_util_high: f64,
    /// Saturated in the last this-long means a trend, not a spike.
    pub trend_window: Dur,
    /// Scale out (more hosts) rather than up when at least this share of hosts is saturated.
    pub horizontal_share: f64,
    /// Deadline of a scaling run.
    pub deadline: Dur,
}

impl Default for ScalingConfig {
    fn default() -> Self {
        ScalingConfig {
            cpu_high: 0.8,
            memory_high: 0.85,
            disk_high: 0.85,
            io_util_high: 0.8,
            trend_window: Dur(Duration::from_secs(30 * 86400)),
            horizontal_share: 0.5,
            deadline: Dur(Duration::from_secs(4 * 3600)),
        }
    }
}

/// `[cost]`: the Cost Explorer report of the monthly review.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct CostConfig {
    /// The metric (`UnblendedCost`, `AmortizedCost`, `NetUnblendedCost`...).
    pub metric: String,
    /// Services listed as top movers.
    pub top: usize,
    /// A service moving by at least this share month over month is a finding.
    pub alert_change: f64,
}

impl Default for CostConfig {
    fn default() -> Self {
        CostConfig {
            metric: "UnblendedCost".into(),
            top: 5,
            alert_change: 0.2,
        }
    }
}

impl Config {
    /// `[compute]`, `[scaling]` and `[cost]` checks.
    pub(super) fn check_cloud(&self) -> std::result::Result<(), (String, String)> {
        let bad = |f: String, m: &str| Err((f, m.to_string()));
        if let Some(c) = &self.compute {
            for (host, id) in &c.instances {
                if !self.hosts.iter().any(|h| &h.name == host) {
                    return bad(
                        format!("compute.instances.{host}"),
                        "no [[hosts]] of that name",
                    );
                }
                if !id.starts_with("i-") {
                    return bad(
                        format!("compute.instances.{host}"),
                        "an instance id starts with \"i-\"",
                    );
                }
            }
            let mut seen = std::collections::HashSet::new();
            for (i, b) in c.load_balancers.iter().enumerate() {
                if b.name.trim().is_empty() || !seen.insert(b.name.as_str()) {
                    return bad(
                        format!("compute.load_balancers[{i}].name"),
                        "empty or duplicate",
                    );
                }
                if b.kind == BalancerKind::TargetGroup && !b.target.starts_with("arn:") {
                    return bad(
                        format!("compute.load_balancers[{i}].target"),
                        "a target group is named by its ARN (arn:aws:elasticloadbalancing:...)",
                    );
                }
            }
            if c.poll_interval.0.is_zero() {
                return bad("compute.poll_interval".into(), "must be above 0");
            }
        }
        let s = &self.scaling;
        if s.cpu_high.is_nan() || s.cpu_high <= 0.0 {
            return bad("scaling.cpu_high".into(), "a load per core above 0");
        }
        for (f, v) in [
            ("memory_high", s.memory_high),
            ("disk_high", s.disk_high),
            ("io_util_high", s.io_util_high),
            ("horizontal_share", s.horizontal_share),
        ] {
            if !(v > 0.0 && v <= 1.0) {
                return bad(format!("scaling.{f}"), "a share in (0, 1]");
            }
        }
        if self.aws.attempts == 0 {
            return bad("aws.attempts".into(), "at least 1");
        }
        Ok(())
    }
}
