//! The catalogue entries of the scaling runbooks.

use super::*;
use crate::runbook::registry::{Definition, OptionDoc, check_args, defaults_of, parse_args};

/// `scale_assess`.
pub static SCALE_ASSESS: Definition = Definition {
    name: "scale_assess",
    command: "scale assess",
    aliases: &[],
    summary: "usage per host (uptime, free, df, iostat) and the 30-day trend → scale up, out, optimise first, or nothing",
    changes: false,
    steps: &[
        "usage: uptime, free, df, nproc on each host",
        "iostat: iostat -dx 1 2 on each host (device %util and await)",
        "trend: /metrics/history, the last 30 days",
        "recommend: optimise first (full or busy disk), horizontal (most hosts saturated), vertical (a few)",
    ],
    options: &[OptionDoc {
        name: "hosts",
        kind: "host names",
        help: "only these hosts (default: every host)",
    }],
    defaults: defaults_of::<AssessOptions>,
    check_options: check_args::<AssessOptions>,
    example: "",
    start: |env, v, run| {
        Box::pin(async move {
            let o: AssessOptions = parse_args("scale_assess", v)?;
            Ok(scale_assess(env, &o, &run).await)
        })
    },
};

/// `scale_vertical`.
pub static SCALE_VERTICAL: Definition = Definition {
    name: "scale_vertical",
    command: "scale vertical",
    aliases: &[],
    summary: "resize instances one at a time: drain, stop, modify type, start, back in service, healthy; the old type back on any failure",
    changes: true,
    steps: &[
        "plan: describe each instance; refuse missing, terminated, not running, or already the type",
        "deregister + drain: out of every load balancer it is in",
        "stop, wait stopped, modify the instance type, start, wait running and status OK",
        "register + in service: back in its load balancers, healthy",
        "health + resources: the host's health endpoint and usage",
        "on failure after the stop: the old type back, started, re-registered",
        "post_scaling:load: with load_url, ab -n 1000 -c 10 judged by [load] thresholds",
    ],
    options: &[
        OptionDoc {
            name: "instances",
            kind: "ids or hosts",
            help: "instances to resize, in order (default: every one of [compute] instances)",
        },
        OptionDoc {
            name: "to",
            kind: "instance type",
            help: "the new type (default: one rung up the [compute] ladder)",
        },
        OptionDoc {
            name: "down",
            kind: "bool",
            help: "one rung down the ladder",
        },
        OptionDoc {
            name: "load_url",
            kind: "http URL",
            help: "after the resizes, 1000 requests on 10 connections there, judged by [load] thresholds",
        },
    ],
    defaults: defaults_of::<VerticalOptions>,
    check_options: check_args::<VerticalOptions>,
    example: "",
    start: |env, v, run| {
        Box::pin(async move {
            let o: VerticalOptions = parse_args("scale_vertical", v)?;
            Ok(scale_vertical(env, &o, &run).await)
        })
    },
};

/// `scale_horizontal`.
pub static SCALE_HORIZONTAL: Definition = Definition {
    name: "scale_horizontal",
    command: "scale horizontal",
    aliases: &[],
    summary: "register instances with the load balancers until healthy, or deregister them with a drain (never the last healthy one)",
    changes: true,
    steps: &[
        "plan: describe each instance (those added must run)",
        "register + healthy: each balancer, deregistered again when not healthy in time",
        "deregister + drain: each balancer, registered again when the drain fails",
        "health: every target of every balancer, read back",
    ],
    options: &[
        OptionDoc {
            name: "add",
            kind: "ids or hosts",
            help: "instances to register",
        },
        OptionDoc {
            name: "remove",
            kind: "ids or hosts",
            help: "instances to deregister (drained)",
        },
        OptionDoc {
            name: "balancers",
            kind: "names",
            help: "only these [[compute.load_balancers]] (default: all)",
        },
    ],
    defaults: defaults_of::<HorizontalOptions>,
    check_options: check_args::<HorizontalOptions>,
    example: "",
    start: |env, v, run| {
        Box::pin(async move {
            let o: HorizontalOptions = parse_args("scale_horizontal", v)?;
            Ok(scale_horizontal(env, &o, &run).await)
        })
    },
};

/// `snapshot`.
pub static SNAPSHOT: Definition = Definition {
    name: "snapshot",
    command: "snapshot",
    aliases: &[],
    summary: "snapshot every volume of instances, tagged with the incident, run and operator; wait until completed",
    changes: true,
    steps: &[
        "describe: the instance and its volumes",
        "snapshot: one per volume, tagged (incident, run id, who, host)",
        "completed: wait until every snapshot completes; ids and sizes",
    ],
    options: &[
        OptionDoc {
            name: "instances",
            kind: "ids or hosts",
            help: "instances (default: every one of [compute] instances)",
        },
        OptionDoc {
            name: "incident",
            kind: "text",
            help: "incident id for the tags",
        },
        OptionDoc {
            name: "wait",
            kind: "bool",
            help: "wait until completed (default true)",
        },
    ],
    defaults: defaults_of::<SnapshotOptions>,
    check_options: check_args::<SnapshotOptions>,
    example: "",
    start: |env, v, run| {
        Box::pin(async move {
            let o: SnapshotOptions = parse_args("snapshot", v)?;
            Ok(snapshot(env, &o, &run).await)
        })
    },
};
