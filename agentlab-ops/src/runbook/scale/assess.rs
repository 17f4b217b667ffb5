//! `scale_assess`: the spec's assessment (`uptime`, `free -h`, `df -h`, `iostat -x`, the
//! 30-day `/metrics/history`) turned into a recommendation with the numbers behind it:
//! optimise first (a full disk or a saturated device is not fixed by more CPUs), scale out
//! (most hosts saturated), scale up (a few), or nothing.

use std::time::Duration;

use futures::future::join_all;
use serde::{Deserialize, Serialize};

use crate::environment::Environment;
use crate::error::{Error, ErrorKind, Result};
use crate::host::{Cmd, ResourceUsage, resource_usage};
use crate::report::{Outcome, Report};
use crate::runbook::registry::Validate;
use crate::runbook::run::{Checked, Run, RunOptions};

/// Options of `scale_assess`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AssessOptions {
    /// Only these hosts (default: every host).
    pub hosts: Vec<String>,
}

impl Validate for AssessOptions {}

/// One device of `iostat -dx`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DiskIo {
    /// Device (`nvme0n1`).
    pub device: String,
    /// Busy share (`%util` / 100).
    pub util: f64,
    /// Average wait of a request, ms (`await`, or the mean of `r_await` and `w_await`).
    pub await_ms: f64,
}

/// Parse `iostat -dx` (sysstat ≥ 11 or older): the last report's rows, by the header's column
/// names; rows that do not parse are skipped, a header without `%util` is an error.
pub fn parse_iostat(text: &str) -> Result<Vec<DiskIo>> {
    let bad = |m: &str| Error::new(ErrorKind::InvalidResponse, format!("iostat: {m}"));
    let mut header: Option<Vec<&str>> = None;
    let mut out: Vec<DiskIo> = Vec::new();
    for line in text.lines() {
        let cols: Vec<&str> = line.split_whitespace().collect();
        match cols.first() {
            Some(c) if c.starts_with("Device") => {
                header = Some(cols);
                out.clear(); // keep the last report only (the first is since boot)
            }
            Some(_) => {
                let Some(h) = &header else { continue };
                let get = |name: &str| {
                    h.iter()
                        .position(|c| *c == name)
                        .and_then(|i| cols.get(i))
                        .and_then(|v| v.replace(',', ".").parse::<f64>().ok())
                };
                let Some(util) = get("%util") else { continue };
                let await_ms = get("await")
                    .or_else(|| Some((get("r_await")? + get("w_await")?) / 2.0))
                    .unwrap_or(0.0);
                out.push(DiskIo {
                    device: cols[0].to_string(),
                    util: (util / 100.0).clamp(0.0, 1.0),
                    await_ms,
                });
            }
            None => {}
        }
    }
    match header {
        Some(h) if h.contains(&"%util") => Ok(out),
        Some(_) => Err(bad("no %util column")),
        None => Err(bad("no Device header")),
    }
}

/// What one host uses.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HostAssessment {
    /// Host name.
    pub host: String,
    /// Load (15 min) per CPU.
    pub load_per_cpu: Option<f64>,
    /// Memory used share.
    pub memory: Option<f64>,
    /// The fullest filesystem's share and mount.
    pub disk: Option<(String, f64)>,
    /// Devices.
    pub io: Vec<DiskIo>,
    /// What could not be read.
    pub errors: Vec<String>,
}

/// The recommendation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Recommendation {
    /// Nothing to do.
    None,
    /// Clean up or tune before buying capacity.
    OptimiseFirst {
        /// Why.
        reasons: Vec<String>,
    },
    /// More instances.
    Horizontal {
        /// How many more.
        add: usize,
    },
    /// Bigger instances.
    Vertical {
        /// Hosts to resize, with the type they would get (from the ladder, when known).
        hosts: Vec<(String, Option<String>)>,
    },
}

/// The payload of `scale_assess`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AssessPayload {
    /// Every host.
    pub hosts: Vec<HostAssessment>,
    /// 30-day trend: mean CPU, memory and disk share of the last week against the first.
    pub trend: Option<Trend>,
    /// What to do.
    pub recommendation: Recommendation,
    /// The numbers that led to it.
    pub because: Vec<String>,
}

/// The 30-day trend of `/metrics/history`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Trend {
    /// Days of data.
    pub days: usize,
    /// CPU share: (first week, last week).
    pub cpu: (f64, f64),
    /// Memory share.
    pub memory: (f64, f64),
    /// Disk share.
    pub disk: (f64, f64),
}

/// Parse `/metrics/history`'s `.resources.last_30_days`.
pub fn parse_trend(body: &str) -> Result<Trend> {
    let bad = |m: String| Error::new(ErrorKind::InvalidResponse, format!("/metrics/history: {m}"));
    let v: serde_json::Value =
        serde_json::from_str(body).map_err(|e| bad(format!("not JSON: {e}")))?;
    let days = v
        .pointer("/resources/last_30_days")
        .and_then(|d| d.as_array())
        .ok_or_else(|| bad("no resources.last_30_days".into()))?;
    if days.len() < 2 {
        return Err(bad(format!("{} days of data", days.len())));
    }
    let week = days.len().min(7);
    let mean = |part: &[serde_json::Value], k: &str| -> Result<f64> {
        let xs: Option<Vec<f64>> = part
            .iter()
            .map(|d| d.get(k).and_then(|x| x.as_f64()))
            .collect();
        let xs = xs.ok_or_else(|| bad(format!("a day without a numeric {k:?}")))?;
        Ok(xs.iter().sum::<f64>() / xs.len() as f64)
    };
    let (first, last) = (&days[..week], &days[days.len() - week..]);
    Ok(Trend {
        days: days.len(),
        cpu: (mean(first, "cpu")?, mean(last, "cpu")?),
        memory: (mean(first, "memory")?, mean(last, "memory")?),
        disk: (mean(first, "disk")?, mean(last, "disk")?),
    })
}

async fn one_host(
    env: &Environment,
    run: &Run,
    h: &crate::environment::HostEntry,
) -> HostAssessment {
    let name = h.config.name.clone();
    let usage = run
        .check(
            &format!("usage:{name}"),
            Some(env.config.thresholds.check_timeout.0 * 2),
            async {
                let u = resource_usage(h.host.as_ref(), &h.config.mounts).await?;
                Ok(Checked::pass(u, "uptime, free, df, nproc read"))
            },
        )
        .await;
    let io = run
        .check(
            &format!("iostat:{name}"),
            Some(Duration::from_secs(30)),
            async {
                let cmd = Cmd::new("iostat").args(["-dx", "1", "2"]);
                let out = h.host.run(&cmd).await?.check(&name, &cmd)?;
                let io = parse_iostat(&out.stdout)?;
                Ok(Checked::pass(io.clone(), format!("{} devices", io.len())))
            },
        )
        .await;
    let mut a = HostAssessment {
        host: name,
        load_per_cpu: None,
        memory: None,
        disk: None,
        io: Vec::new(),
        errors: Vec::new(),
    };
    match usage {
        Ok(u) => fill(&mut a, &u),
        Err(e) => a.errors.push(e.to_string()),
    }
    match io {
        Ok(io) => a.io = io,
        Err(e) => a.errors.push(e.to_string()),
    }
    a
}

fn fill(a: &mut HostAssessment, u: &ResourceUsage) {
    a.load_per_cpu = u
        .cpus
        .filter(|c| *c > 0)
        .map(|c| u.uptime.load.fifteen / f64::from(c));
    a.memory = Some(u.memory.used_ratio);
    a.disk = u
        .disks
        .iter()
        .max_by(|x, y| x.used_ratio.total_cmp(&y.used_ratio))
        .map(|d| (d.mount.clone(), d.used_ratio));
}

/// Assess every host (or `hosts`) and recommend.
pub async fn scale_assess(env: &Environment, o: &AssessOptions, ro: &RunOptions) -> Report {
    env.execute("scale_assess", ro, |run| async move {
        let hosts: Vec<_> = env
            .hosts
            .iter()
            .filter(|h| o.hosts.is_empty() || o.hosts.contains(&h.config.name))
            .collect();
        if let Some(h) = o
            .hosts
            .iter()
            .find(|h| !env.hosts.iter().any(|e| &e.config.name == *h))
        {
            return Err(env
                .host(h)
                .err()
                .unwrap_or_else(|| Error::config("unknown host")));
        }
        let assessed = join_all(hosts.iter().map(|h| one_host(env, &run, h))).await;
        let history = env.config.service.history_path.clone();
        let trend = run
            .check(
                "trend",
                Some(env.config.thresholds.check_timeout.0),
                async {
                    let r = env.probe.get(&history).await?;
                    let t = parse_trend(&r.body)?;
                    let s = format!(
                        "{} days: cpu {:.0}% → {:.0}%, disk {:.0}% → {:.0}%",
                        t.days,
                        100.0 * t.cpu.0,
                        100.0 * t.cpu.1,
                        100.0 * t.disk.0,
                        100.0 * t.disk.1
                    );
                    Ok(Checked::pass(t, s))
                },
            )
            .await
            .ok();
        let (recommendation, because) = recommend(env, &assessed, trend.as_ref()).await;
        let outcome = if recommendation == Recommendation::None {
            Outcome::Pass
        } else {
            Outcome::Warn
        };
        run.record(
            "recommend",
            crate::report::Action::Read,
            outcome,
            because.join("; "),
        );
        let out = AssessPayload {
            hosts: assessed,
            trend,
            recommendation,
            because,
        };
        Ok(serde_json::to_value(&out).unwrap_or_default())
    })
    .await
}

fn pct(x: f64) -> String {
    format!("{:.0}%", 100.0 * x)
}

/// What to fix before buying capacity: full filesystems, saturated devices, a disk trend.
fn optimise_first(
    s: &crate::config::ScalingConfig,
    hosts: &[HostAssessment],
    trend: Option<&Trend>,
) -> Vec<String> {
    let mut optimise = Vec::new();
    for h in hosts {
        if let Some((m, d)) = h.disk.as_ref().filter(|(_, d)| *d > s.disk_high) {
            optimise.push(format!(
                "{}:{m} {} full (> {})",
                h.host,
                pct(*d),
                pct(s.disk_high)
            ));
        }
        for io in h.io.iter().filter(|io| io.util > s.io_util_high) {
            optimise.push(format!(
                "{}:{} {} busy, await {:.1} ms (> {})",
                h.host,
                io.device,
                pct(io.util),
                io.await_ms,
                pct(s.io_util_high)
            ));
        }
    }
    if let Some(t) = trend.filter(|t| t.disk.1 > s.disk_high) {
        optimise.push(format!(
            "disk at {} over the last week (30-day trend from {})",
            pct(t.disk.1),
            pct(t.disk.0)
        ));
    }
    optimise
}

/// Optimise first when a disk is full or busy; else scale out when at least
/// `[scaling] horizontal_share` of the hosts are saturated, up when fewer are.
async fn recommend(
    env: &Environment,
    hosts: &[HostAssessment],
    trend: Option<&Trend>,
) -> (Recommendation, Vec<String>) {
    let s = &env.config.scaling;
    let optimise = optimise_first(s, hosts, trend);
    if !optimise.is_empty() {
        return (
            Recommendation::OptimiseFirst {
                reasons: optimise.clone(),
            },
            optimise,
        );
    }
    let pressure = |h: &HostAssessment| {
        let cpu = h.load_per_cpu.unwrap_or(0.0) / s.cpu_high;
        let mem = h.memory.unwrap_or(0.0) / s.memory_high;
        cpu.max(mem)
    };
    let saturated: Vec<&HostAssessment> = hosts.iter().filter(|h| pressure(h) > 1.0).collect();
    let mut because: Vec<String> = saturated
        .iter()
        .map(|h| {
            format!(
                "{}: load {:.2}/CPU, memory {}",
                h.host,
                h.load_per_cpu.unwrap_or(0.0),
                pct(h.memory.unwrap_or(0.0))
            )
        })
        .collect();
    if let Some(t) = trend {
        because.push(format!(
            "30 days: cpu {} → {}, memory {} → {}",
            pct(t.cpu.0),
            pct(t.cpu.1),
            pct(t.memory.0),
            pct(t.memory.1)
        ));
    }
    if saturated.is_empty() {
        because.insert(
            0,
            format!(
                "{} hosts under {:.2} load/CPU and {} memory",
                hosts.len(),
                s.cpu_high,
                pct(s.memory_high)
            ),
        );
        return (Recommendation::None, because);
    }
    let share = saturated.len() as f64 / hosts.len().max(1) as f64;
    if share >= s.horizontal_share {
        let peak = saturated.iter().map(|h| pressure(h)).fold(1.0, f64::max);
        let need = (hosts.len() as f64 * peak).ceil() as usize;
        let add = need.saturating_sub(hosts.len()).max(1);
        because.insert(
            0,
            format!(
                "{} of {} hosts saturated (≥ {}): scale out by {add}",
                saturated.len(),
                hosts.len(),
                pct(s.horizontal_share)
            ),
        );
        return (Recommendation::Horizontal { add }, because);
    }
    let mut up = Vec::new();
    for h in saturated {
        up.push((h.host.clone(), next_type(env, &h.host).await));
    }
    because.insert(
        0,
        format!(
            "{} of {} hosts saturated (< {}): scale up",
            up.len(),
            hosts.len(),
            pct(s.horizontal_share)
        ),
    );
    (Recommendation::Vertical { hosts: up }, because)
}

/// The next rung of the ladder for a host's instance, when compute knows it.
async fn next_type(env: &Environment, host: &str) -> Option<String> {
    let c = env.compute.as_ref()?;
    let cc = env.config.compute.as_ref()?;
    let id = cc.instances.get(host)?;
    let i = c.describe(id).await.ok()?;
    super::vertical::next_rung(&cc.ladder, &i.instance_type, false).ok()
}
