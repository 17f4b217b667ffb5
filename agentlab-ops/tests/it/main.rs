//! Every integration test of the core in one binary: one link of the library and its SDKs
//! instead of one per file (33 links of a ~200 MB binary cost minutes on 2 cores). Each module is
//! one former `tests/<name>.rs`; run one with `cargo test -p agentlab-ops --test it <name>::`.

mod common;
mod deploy_lab;

mod alertmanager;
mod backups;
mod chaos;
mod cloud;
mod conformance;
mod deploy;
mod deploy_perf;
mod drill;
mod dry_run;
mod example_config;
mod github;
mod github_review;
mod investigate;
mod layers;
mod lease;
mod load;
mod load_compare;
mod logscan;
mod logscan_ssh;
mod maintenance;
mod maintenance_ssh;
mod morning_http;
mod nginx;
mod pagerduty;
mod parsers_prop;
mod prometheus;
mod real_backends;
mod recover;
mod restart;
mod resume;
mod review;
mod review_browser;
mod review_prometheus;
mod s3_retry;
mod sandbox_scenarios;
mod scaling;
mod security_access;
mod security_evidence;
mod security_review;
mod security_rotate;
mod security_secret;
mod security_timeline;
mod services_ssh;
mod shutdown;
mod slo_response;
mod verify_sampling;
