//! [`MemoryCompute`]: EC2 as a state machine on a [`Clock`], stricter than moto.
//!
//! moto stops and starts at once and lets a running instance change type; this double has
//! EC2's lifecycle (pending → running, stopping → stopped, each with a dwell time), refuses a
//! type change unless stopped (`IncorrectInstanceState`), and can be told to fail a start for
//! lack of capacity of a type, to throttle the next calls, or to never finish stopping.

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::{Compute, Instance, InstanceState, Snapshot, SnapshotState, Volume, poll_until};
use crate::clock::{Clock, SystemClock};
use crate::double::CallLog;
use crate::error::{Error, ErrorKind, Result};

/// A call made to a [`MemoryCompute`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ComputeCall {
    /// `describe(id)`.
    Describe(String),
    /// `stop(id)`.
    Stop(String),
    /// `start(id)`.
    Start(String),
    /// `set_type(id, type)`.
    SetType(String, String),
    /// `snapshot(id)`.
    Snapshot(String),
}

impl ComputeCall {
    /// Whether the call changes anything.
    pub fn mutates(&self) -> bool {
        !matches!(self, ComputeCall::Describe(_))
    }
}

#[derive(Debug, Clone)]
struct Machine {
    inst: Instance,
    since: DateTime<Utc>,
    status_ok_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Default)]
struct State {
    machines: BTreeMap<String, Machine>,
    snapshots: BTreeMap<String, (Snapshot, DateTime<Utc>)>,
    no_capacity: HashSet<String>,
    throttle: VecDeque<()>,
    stalled: HashSet<String>,
    next_id: u64,
}

/// EC2 in memory. Clones share state.
#[derive(Debug, Clone)]
pub struct MemoryCompute {
    st: Arc<Mutex<State>>,
    clock: Arc<dyn Clock>,
    calls: CallLog<ComputeCall>,
    /// pending → running.
    pub start_dwell: Duration,
    /// stopping → stopped.
    pub stop_dwell: Duration,
    /// running → status checks passed.
    pub status_dwell: Duration,
    /// pending → completed, for a snapshot.
    pub snapshot_dwell: Duration,
    /// How often its waits poll (on the clock).
    pub poll: Duration,
}

impl Default for MemoryCompute {
    fn default() -> Self {
        Self::new(Arc::new(SystemClock))
    }
}

impl MemoryCompute {
    /// An empty account whose time is `clock` (EC2's typical dwell times: 30 s to start,
    /// 60 s to stop, 2 min to pass status checks, 5 min per snapshot).
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        MemoryCompute {
            st: Arc::default(),
            clock,
            calls: CallLog::default(),
            start_dwell: Duration::from_secs(30),
            stop_dwell: Duration::from_secs(60),
            status_dwell: Duration::from_secs(120),
            snapshot_dwell: Duration::from_secs(300),
            poll: Duration::from_secs(5),
        }
    }
    fn st(&self) -> std::sync::MutexGuard<'_, State> {
        self.st.lock().unwrap_or_else(|e| e.into_inner())
    }
    /// Add a running instance (status checks passed) with one 8 GiB root volume per entry of
    /// `volumes` (its device name); returns its id.
    pub fn add(&self, id: &str, instance_type: &str, volumes: &[&str]) -> String {
        let now = self.clock.now();
        let mut st = self.st();
        let vols = volumes
            .iter()
            .enumerate()
            .map(|(i, d)| Volume {
                id: format!("vol-{id}-{i}"),
                device: (*d).to_string(),
            })
            .collect();
        let inst = Instance {
            id: id.to_string(),
            state: InstanceState::Running,
            instance_type: instance_type.to_string(),
            volumes: vols,
            tags: BTreeMap::new(),
            private_ip: Some(format!("10.0.0.{}", st.machines.len() + 10)),
        };
        st.machines.insert(
            id.to_string(),
            Machine {
                inst,
                since: now,
                status_ok_at: Some(now),
            },
        );
        id.to_string()
    }
    /// Terminate an instance.
    pub fn terminate(&self, id: &str) {
        let now = self.clock.now();
        if let Some(m) = self.st().machines.get_mut(id) {
            m.inst.state = InstanceState::Terminated;
            m.since = now;
        }
    }
    /// Starting an instance of this type fails with `InsufficientInstanceCapacity`.
    pub fn no_capacity_for(&self, instance_type: &str) {
        self.st().no_capacity.insert(instance_type.to_string());
    }
    /// The next `n` calls fail with `RequestLimitExceeded` (temporary).
    pub fn throttle_next(&self, n: usize) {
        self.st().throttle.extend(std::iter::repeat_n((), n));
    }
    /// This instance never finishes stopping.
    pub fn stall_stopping(&self, id: &str) {
        self.st().stalled.insert(id.to_string());
    }
    /// Every call so far.
    pub fn calls(&self) -> Vec<ComputeCall> {
        self.calls.all()
    }
    /// The calls that change something.
    pub fn mutations(&self) -> Vec<ComputeCall> {
        self.calls
            .all()
            .into_iter()
            .filter(|c| c.mutates())
            .collect()
    }

    /// Advance the state machine of every instance and snapshot to now.
    fn settle(&self, st: &mut State) {
        let now = self.clock.now();
        let passed =
            |since: DateTime<Utc>, d: Duration| (now - since).to_std().unwrap_or_default() >= d;
        for m in st.machines.values_mut() {
            match m.inst.state {
                InstanceState::Pending if passed(m.since, self.start_dwell) => {
                    m.since += chrono::Duration::from_std(self.start_dwell).unwrap_or_default();
                    m.inst.state = InstanceState::Running;
                    m.status_ok_at = Some(
                        m.since + chrono::Duration::from_std(self.status_dwell).unwrap_or_default(),
                    );
                }
                InstanceState::Stopping
                    if passed(m.since, self.stop_dwell) && !st.stalled.contains(&m.inst.id) =>
                {
                    m.since += chrono::Duration::from_std(self.stop_dwell).unwrap_or_default();
                    m.inst.state = InstanceState::Stopped;
                }
                _ => {}
            }
        }
        for (s, at) in st.snapshots.values_mut() {
            if s.state == SnapshotState::Pending && passed(*at, self.snapshot_dwell) {
                s.state = SnapshotState::Completed;
            }
        }
    }

    /// Record the call, apply throttling, settle the machines, and run `f` on the state.
    fn call<T>(&self, c: ComputeCall, f: impl FnOnce(&mut State) -> Result<T>) -> Result<T> {
        self.calls.push(c);
        let mut st = self.st();
        if st.throttle.pop_front().is_some() {
            return Err(Error::new(ErrorKind::RateLimited, "RequestLimitExceeded")
                .set_temporary(true)
                .with_operation("compute.call"));
        }
        self.settle(&mut st);
        f(&mut st)
    }
}

fn not_found(id: &str) -> Error {
    Error::new(
        ErrorKind::NotFound,
        format!("InvalidInstanceID.NotFound: the instance ID {id:?} does not exist"),
    )
    .with_context("instance", id)
}

fn incorrect(id: &str, state: InstanceState, what: &str) -> Error {
    Error::new(
        ErrorKind::Conflict,
        format!("IncorrectInstanceState: {id} is {state}, cannot {what}"),
    )
    .with_context("instance", id)
}

#[async_trait::async_trait]
impl Compute for MemoryCompute {
    fn place(&self) -> String {
        "memory compute".into()
    }
    async fn describe(&self, id: &str) -> Result<Instance> {
        self.call(ComputeCall::Describe(id.into()), |st| {
            st.machines
                .get(id)
                .map(|m| m.inst.clone())
                .ok_or_else(|| not_found(id))
        })
    }
    async fn stop(&self, id: &str) -> Result<()> {
        let now = self.clock.now();
        self.call(ComputeCall::Stop(id.into()), |st| {
            let m = st.machines.get_mut(id).ok_or_else(|| not_found(id))?;
            match m.inst.state {
                InstanceState::Running | InstanceState::Pending => {
                    m.inst.state = InstanceState::Stopping;
                    m.since = now;
                    m.status_ok_at = None;
                    Ok(())
                }
                InstanceState::Stopping | InstanceState::Stopped => Ok(()),
                s => Err(incorrect(id, s, "stop")),
            }
        })
    }
    async fn start(&self, id: &str) -> Result<()> {
        let now = self.clock.now();
        self.call(ComputeCall::Start(id.into()), |st| {
            let no_cap = st.no_capacity.clone();
            let m = st.machines.get_mut(id).ok_or_else(|| not_found(id))?;
            match m.inst.state {
                InstanceState::Stopped if no_cap.contains(&m.inst.instance_type) => {
                    Err(Error::new(
                        ErrorKind::Unavailable,
                        format!(
                            "InsufficientInstanceCapacity: not enough {} capacity",
                            m.inst.instance_type
                        ),
                    )
                    .set_temporary(false)
                    .with_context("instance", id))
                }
                InstanceState::Stopped => {
                    m.inst.state = InstanceState::Pending;
                    m.since = now;
                    Ok(())
                }
                InstanceState::Running | InstanceState::Pending => Ok(()),
                s => Err(incorrect(id, s, "start")),
            }
        })
    }
    async fn set_type(&self, id: &str, instance_type: &str) -> Result<()> {
        self.call(
            ComputeCall::SetType(id.into(), instance_type.into()),
            |st| {
                let m = st.machines.get_mut(id).ok_or_else(|| not_found(id))?;
                if m.inst.state != InstanceState::Stopped {
                    return Err(incorrect(id, m.inst.state, "modify its instance type"));
                }
                m.inst.instance_type = instance_type.to_string();
                Ok(())
            },
        )
    }
    async fn wait_state(&self, id: &str, state: InstanceState, timeout: Duration) -> Result<()> {
        let what = format!("{id} {state}");
        poll_until(self.clock.as_ref(), timeout, self.poll, &what, || async {
            let now = self.describe(id).await?.state;
            if now == InstanceState::Terminated && state != now {
                return Err(incorrect(id, now, &format!("become {state}")));
            }
            Ok(now == state)
        })
        .await
    }
    async fn wait_status_ok(&self, id: &str, timeout: Duration) -> Result<()> {
        let what = format!("{id} status checks");
        poll_until(self.clock.as_ref(), timeout, self.poll, &what, || async {
            self.describe(id).await?;
            let now = self.clock.now();
            let st = self.st();
            Ok(st
                .machines
                .get(id)
                .and_then(|m| m.status_ok_at)
                .is_some_and(|t| t <= now))
        })
        .await
    }
    async fn snapshot(
        &self,
        id: &str,
        _description: &str,
        tags: &BTreeMap<String, String>,
    ) -> Result<Vec<Snapshot>> {
        let now = self.clock.now();
        self.call(ComputeCall::Snapshot(id.into()), |st| {
            let m = st.machines.get(id).ok_or_else(|| not_found(id))?.clone();
            let mut out = Vec::new();
            for v in &m.inst.volumes {
                st.next_id += 1;
                let s = Snapshot {
                    id: format!("snap-{:08x}", st.next_id),
                    volume_id: v.id.clone(),
                    size_gib: 8,
                    state: SnapshotState::Pending,
                    tags: tags.clone(),
                };
                st.snapshots.insert(s.id.clone(), (s.clone(), now));
                out.push(s);
            }
            Ok(out)
        })
    }
    async fn snapshots(&self, ids: &[String]) -> Result<Vec<Snapshot>> {
        let mut st = self.st();
        self.settle(&mut st);
        ids.iter()
            .map(|i| {
                st.snapshots.get(i).map(|(s, _)| s.clone()).ok_or_else(|| {
                    Error::new(
                        ErrorKind::NotFound,
                        format!("InvalidSnapshot.NotFound: {i}"),
                    )
                })
            })
            .collect()
    }
}
