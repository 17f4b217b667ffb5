//! Injecting one fault on one target, its removal registered first. A host fault arms a
//! dead-man's switch on the host before it goes in (the host removes it when the runner stops
//! renewing: SIGKILL, a dead machine), and registers an always-run undo that removes it and
//! disarms the switch; the proxy fault lives in the runner, so it ends with it.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::chaos::{Fault, FaultProxy, Toxics, netem};
use crate::environment::Environment;
use crate::error::{Error, ErrorKind, Result};
use crate::host::lease::Lease;
use crate::host::{Cmd, HostEntry};
use crate::runbook::run::{Run, Undo};
use crate::units::format_duration;

/// Starts `$@` in its own session (a process group), its pid to `$1`.
const STRESS_START: &str = r#"pidf=$1; shift
setsid "$@" </dev/null >/dev/null 2>&1 &
echo $! > "$pidf"; sleep 0.3
kill -0 "$(cat "$pidf")" 2>/dev/null || { echo "stress-ng exited at once (is it installed?)" >&2; exit 1; }"#;

/// Ends the process group in `$1` (TERM, then KILL after 5 s); nothing there is not an error.
/// `$2 = rm`: the pid file goes too (the watchdog's; the runner keeps it to verify).
const STRESS_STOP: &str = r#"pidf=$1; pg=$(cat "$pidf" 2>/dev/null) || exit 0
[ -n "$pg" ] || exit 0
kill -TERM -"$pg" 2>/dev/null
i=0; while kill -0 -"$pg" 2>/dev/null && [ $i -lt 50 ]; do sleep 0.1; i=$((i+1)); done
kill -KILL -"$pg" 2>/dev/null; [ "$2" = rm ] && rm -f "$pidf"; exit 0"#;

/// Exits 1 while any process of the group in `$1` lives, 2 without the pid file; else
/// removes the pid file.
const STRESS_GONE: &str = r#"pg=$(cat "$1" 2>/dev/null) || { echo "no pid file $1" >&2; exit 2; }
[ -n "$pg" ] || { echo "empty pid file $1" >&2; exit 2; }
if kill -0 -"$pg" 2>/dev/null; then echo "process group $pg still runs" >&2; exit 1; fi
rm -f "$1""#;

/// What a fault run needs.
pub(super) struct Ctx<'a> {
    pub env: &'a Environment,
    pub run: &'a Run,
    pub lease: Duration,
    /// The fault's index in the method (names its leases).
    pub index: usize,
}

/// How a removal is checked afterwards.
#[derive(Clone)]
pub(super) enum Verify {
    Netem {
        h: HostEntry,
        show: Vec<String>,
    },
    Service {
        svc: crate::service::HostService,
        path: String,
    },
    Stress {
        h: HostEntry,
        pidfile: String,
    },
    Proxy(Arc<FaultProxy>),
}

/// One fault on one target, injected (or planned).
pub(super) struct Injected {
    pub undo: String,
    pub verify: Verify,
}

fn cmd(argv: &[String], timeout: Duration) -> Cmd {
    Cmd::new(&argv[0])
        .args(argv[1..].iter().cloned())
        .timeout(timeout)
}

/// Run `argv` on the host; a failure names the host and the command.
async fn run_on(h: &HostEntry, argv: &[String]) -> Result<String> {
    let c = cmd(argv, Duration::from_secs(30));
    let out = h.host.run(&c).await?.check(&h.config.name, &c)?;
    Ok(out.stdout)
}

/// The prefix of a privileged command on a host (`sudo -n`), and the namespace's.
fn privileged(env: &Environment, namespace: Option<&str>, argv: Vec<String>) -> Vec<String> {
    let mut a = env.config.chaos.privileged.clone();
    if let Some(ns) = namespace {
        a.extend(["ip", "netns", "exec", ns].map(String::from));
    }
    a.extend(argv);
    a
}

type RemoveFn = Box<dyn FnOnce() -> futures::future::BoxFuture<'static, Result<()>> + Send>;

/// Arm the lease (host runs `watchdog` when it ends), register the undo (`remove`, then
/// disarm), then `inject`. The undo's name is returned.
async fn guarded(
    c: &Ctx<'_>,
    h: &HostEntry,
    key: &str,
    plan: String,
    watchdog: Vec<String>,
    remove: RemoveFn,
    inject: impl std::future::Future<Output = Result<()>>,
) -> Result<String> {
    let host = &h.config.name;
    let base = format!(
        "{}/agentlab-chaos.{}.{}.{host}",
        c.env.config.chaos.lease_dir,
        c.run.run_id(),
        c.index
    );
    let lease = Lease::arm(
        h.host.clone(),
        &format!("{base}.lease"),
        c.lease,
        &watchdog,
        crate::runbook::lease_journal(c.env, c.run),
    )
    .await?;
    let slot = Arc::new(Mutex::new(Some(lease)));
    let undo_name = format!("{key}:{host}:remove");
    let undo = Undo::always(undo_name.clone(), move || async move {
        let r = remove().await;
        let lease = slot.lock().ok().and_then(|mut l| l.take());
        // A failed removal keeps the lease running out: the host's watchdog tries again.
        if r.is_ok()
            && let Some(l) = lease
        {
            l.disarm().await?;
        }
        r
    });
    c.run
        .change(&format!("{key}:{host}:inject"), plan, inject, Some(undo))
        .await?;
    Ok(undo_name)
}

/// Inject `f` on host `h` (a dry-run plans it): the undo's name.
pub(super) async fn on_host(c: &Ctx<'_>, f: &Fault, h: &HostEntry) -> Result<Option<Injected>> {
    let key = format!("{}[{}]", f.name(), c.index);
    match f {
        Fault::Netem { .. } => netem_fault(c, f, h, key).await,
        Fault::ServiceStop { .. } => service_stop(c, f, h, key).await,
        Fault::Stress { cpu, vm_bytes, .. } => {
            stress(c, f, h, key, *cpu, vm_bytes.as_deref()).await
        }
        Fault::Proxy { .. } => Err(Error::config(
            "the proxy fault runs in the runner, not on a host",
        )),
    }
}

/// A dry-run's step for a fault: its plan, nothing done.
async fn planned(c: &Ctx<'_>, key: &str, target: &str, plan: String) -> Result<Option<Injected>> {
    c.run
        .change::<(), _>(
            &format!("{key}:{target}:inject"),
            plan,
            async { Ok(()) },
            None,
        )
        .await?;
    Ok(None)
}

async fn netem_fault(
    c: &Ctx<'_>,
    f: &Fault,
    h: &HostEntry,
    key: String,
) -> Result<Option<Injected>> {
    let Fault::Netem {
        device,
        delay,
        loss,
        qdisc,
        namespace,
        ..
    } = f
    else {
        return Err(Error::config("not a netem fault"));
    };
    let target = &h.config.name;
    let ns = namespace.as_deref();
    let show = privileged(c.env, ns, netem::show(device));
    let what = if qdisc.is_empty() {
        netem::describe(device, delay.map(|d| d.0), *loss)
    } else {
        format!("{} on {device} (handle {})", qdisc.join(" "), netem::HANDLE)
    };
    let plan = format!(
        "{what} for {}; the host deletes handle {} itself {}s after the last renewal",
        format_duration(f.duration()),
        netem::HANDLE,
        c.lease.as_secs()
    );
    if c.run.is_dry_run() {
        return planned(c, &key, target, plan).await;
    }
    let before = root_of(h, &show).await?;
    if let Some(why) = netem::refuse(device, before.as_ref()) {
        return Err(Error::new(ErrorKind::Conflict, format!("{target}: {why}")));
    }
    let del = privileged(c.env, ns, netem::del(device));
    let add = privileged(
        c.env,
        ns,
        netem::add(device, delay.map(|d| d.0), *loss, qdisc),
    );
    let (h2, show2, del2) = (h.clone(), show.clone(), del.clone());
    let remove: RemoveFn = Box::new(move || {
        Box::pin(async move {
            // Only ours: a root that is someone else's now is left as it is.
            if root_of(&h2, &show2).await?.is_some_and(|q| q.is_ours()) {
                run_on(&h2, &del2).await?;
            }
            Ok(())
        })
    });
    let undo = guarded(c, h, &key, plan, del, remove, async {
        run_on(h, &add).await.map(|_| ())
    })
    .await?;
    Ok(Some(Injected {
        undo,
        verify: Verify::Netem { h: h.clone(), show },
    }))
}

/// The root qdisc of the device now.
async fn root_of(h: &HostEntry, show: &[String]) -> Result<Option<netem::Qdisc>> {
    let out = run_on(h, show).await?;
    netem::root(&out).map_err(|e| {
        Error::new(
            ErrorKind::InvalidResponse,
            format!("{}: {e}", h.config.name),
        )
    })
}

async fn service_stop(
    c: &Ctx<'_>,
    f: &Fault,
    h: &HostEntry,
    key: String,
) -> Result<Option<Injected>> {
    let target = h.config.name.clone();
    let svc = c.env.service(&target)?.clone();
    let plan = format!(
        "stop {} for {}; the host starts it itself {}s after the last renewal",
        svc.manager.describe(),
        format_duration(f.duration()),
        c.lease.as_secs()
    );
    if c.run.is_dry_run() {
        return planned(c, &key, &target, plan).await;
    }
    let start = svc.manager.start_argv().ok_or_else(|| {
        Error::config(format!(
            "{target}: {} has no start command for the dead-man's switch",
            svc.manager.describe()
        ))
    })?;
    let m = svc.manager.clone();
    let remove: RemoveFn = Box::new(move || Box::pin(async move { m.start().await }));
    let m = svc.manager.clone();
    let undo = guarded(
        c,
        h,
        &key,
        plan,
        start,
        remove,
        async move { m.stop().await },
    )
    .await?;
    Ok(Some(Injected {
        undo,
        verify: Verify::Service {
            svc,
            path: c.env.config.service.health_path.clone(),
        },
    }))
}

async fn stress(
    c: &Ctx<'_>,
    f: &Fault,
    h: &HostEntry,
    key: String,
    cpu: u32,
    vm_bytes: Option<&str>,
) -> Result<Option<Injected>> {
    let target = h.config.name.clone();
    let secs = f.duration().as_secs().max(1);
    let mut argv: Vec<String> = vec!["stress-ng".into()];
    if cpu > 0 {
        argv.extend(["--cpu".into(), cpu.to_string()]);
    }
    if let Some(b) = vm_bytes {
        argv.extend([
            "--vm".into(),
            "1".into(),
            "--vm-bytes".into(),
            b.to_string(),
        ]);
    }
    argv.extend(["--timeout".into(), format!("{secs}s")]);
    let plan = format!(
        "{} (ends itself; the host stops it {}s after the last renewal)",
        argv.join(" "),
        c.lease.as_secs()
    );
    if c.run.is_dry_run() {
        return planned(c, &key, &target, plan).await;
    }
    let pidfile = format!(
        "{}/agentlab-chaos.{}.{}.{target}.pid",
        c.env.config.chaos.lease_dir,
        c.run.run_id(),
        c.index
    );
    let sh = |script: &str| -> Vec<String> {
        ["sh", "-c", script, "sh", &pidfile]
            .map(String::from)
            .to_vec()
    };
    let mut watchdog = sh(STRESS_STOP);
    watchdog.push("rm".into());
    let stop = sh(STRESS_STOP);
    let mut start = sh(STRESS_START);
    start.extend(argv);
    let (h2, stop2) = (h.clone(), stop);
    let remove: RemoveFn =
        Box::new(move || Box::pin(async move { run_on(&h2, &stop2).await.map(|_| ()) }));
    let undo = guarded(c, h, &key, plan, watchdog, remove, async {
        run_on(h, &start).await.map(|_| ())
    })
    .await?;
    Ok(Some(Injected {
        undo,
        verify: Verify::Stress {
            h: h.clone(),
            pidfile,
        },
    }))
}

/// The proxy fault: its toxics set on the running proxy, cleared by the undo.
pub(super) async fn on_proxy(
    c: &Ctx<'_>,
    f: &Fault,
    proxy: Option<Arc<FaultProxy>>,
) -> Result<Option<Injected>> {
    let Fault::Proxy {
        latency,
        jitter,
        bandwidth_kib,
        reset,
        timeout,
        upstream,
        listen,
        ..
    } = f
    else {
        return Err(Error::config("not a proxy fault"));
    };
    let t = Toxics {
        latency: latency.map(|d| d.0).unwrap_or_default(),
        jitter: jitter.map(|d| d.0).unwrap_or_default(),
        bandwidth: bandwidth_kib.map(|k| k * 1024),
        reset: *reset,
        timeout: *timeout,
    };
    let key = format!("{}[{}]", f.name(), c.index);
    let plan = format!(
        "through the proxy {listen} → {upstream}: {} for {}",
        describe_toxics(&t),
        format_duration(f.duration())
    );
    let Some(p) = proxy.filter(|_| !c.run.is_dry_run()) else {
        return planned(c, &key, "local", plan).await;
    };
    let undo_name = format!("{key}:local:remove");
    let p2 = p.clone();
    let undo = Undo::always(undo_name.clone(), move || async move {
        p2.clear();
        Ok(())
    });
    let p3 = p.clone();
    c.run
        .change(
            &format!("{key}:local:inject"),
            plan,
            async move {
                p3.set(t);
                Ok(())
            },
            Some(undo),
        )
        .await?;
    Ok(Some(Injected {
        undo: undo_name,
        verify: Verify::Proxy(p),
    }))
}

fn describe_toxics(t: &Toxics) -> String {
    let mut p = Vec::new();
    if !t.latency.is_zero() {
        p.push(format!("latency {}", format_duration(t.latency)));
    }
    if !t.jitter.is_zero() {
        p.push(format!("jitter {}", format_duration(t.jitter)));
    }
    if let Some(b) = t.bandwidth {
        p.push(format!("{} KiB/s", b / 1024));
    }
    if t.reset {
        p.push("reset every connection".into());
    }
    if t.timeout {
        p.push("hold every connection".into());
    }
    p.join(", ")
}

/// After the removal: is the target as it was? `Err` says how not.
pub(super) async fn verify(v: &Verify) -> Result<String> {
    match v {
        Verify::Netem { h, show } => match root_of(h, show).await? {
            Some(q) if q.is_ours() => Err(Error::new(
                ErrorKind::Conflict,
                format!(
                    "{}: our qdisc {} is still there",
                    h.config.name,
                    netem::HANDLE
                ),
            )),
            Some(q) => Ok(format!("root qdisc {} {}", q.kind, q.handle)),
            None => Ok("no root qdisc listed".into()),
        },
        Verify::Service { svc, path } => service_back(svc, path).await,
        Verify::Stress { h, pidfile } => {
            let c = Cmd::new("sh").args(["-c", STRESS_GONE, "sh", pidfile]);
            let out = h.host.run(&c).await?;
            if out.success() {
                Ok("no stress-ng process left".into())
            } else {
                let why = out.stderr.trim().to_string();
                Err(Error::new(
                    ErrorKind::Conflict,
                    format!("{}: {why}", h.config.name),
                ))
            }
        }
        Verify::Proxy(p) if p.toxics() == Toxics::none() => {
            Ok(format!("{} passes traffic untouched", p.addr()))
        }
        Verify::Proxy(p) => Err(Error::new(
            ErrorKind::Conflict,
            format!("{}: still {}", p.addr(), describe_toxics(&p.toxics())),
        )),
    }
}

/// Whether the host's service came back: its manager says active and its health endpoint
/// answers 200, within 30 s.
async fn service_back(svc: &crate::service::HostService, path: &str) -> Result<String> {
    let start = std::time::Instant::now();
    let mut last;
    loop {
        last = match svc.manager.status().await {
            Ok(s) if s.active => match svc.health.get(path).await {
                Ok(r) if r.status == 200 => {
                    return Ok(format!("{} active, health 200", svc.manager.describe()));
                }
                Ok(r) => format!("active, health {}", r.status),
                Err(e) => format!("active, health: {e}"),
            },
            Ok(s) => format!("not active ({})", s.state),
            Err(e) => e.to_string(),
        };
        if start.elapsed() > Duration::from_secs(30) {
            return Err(Error::new(
                ErrorKind::Timeout,
                format!("{}: not back within 30s: {last}", svc.host),
            ));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
