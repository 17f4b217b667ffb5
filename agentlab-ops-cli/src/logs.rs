//! `agentlab-ops logs scan FILE|HOST:PATH`: the log scanner alone, on any log.

use std::path::Path;

use agentlab_ops::logs::{Field, LogReport, ScanOptions, Transfer, scan_host, scan_path};
use agentlab_ops::report::Format;
use clap::{Args, Subcommand};

use crate::{Global, fail};

/// `logs ...`.
#[derive(Debug, Subcommand)]
pub enum LogsCmd {
    /// Errors (last N with line numbers), top talkers, matches per minute with spikes, and
    /// message templates new since the baseline, in one pass; `-` reads stdin.
    Scan(ScanArgs),
}

/// `logs scan`.
#[derive(Debug, Args)]
pub struct ScanArgs {
    /// A file (gzip too), `-` for stdin, or `HOST:PATH` on a host of the config.
    pub target: String,
    /// The error patterns (a regex, case-insensitive).
    #[arg(long, default_value = "error|exception")]
    pub pattern: String,
    /// Case-sensitive patterns.
    #[arg(long)]
    pub case_sensitive: bool,
    /// Top talkers by: a column (1, $1), json:KEY, re:REGEX (first group), or none.
    #[arg(long, default_value = "1")]
    pub top: String,
    /// How many top talkers.
    #[arg(long, default_value_t = 10)]
    pub top_n: usize,
    /// Only lines since: a duration back from now (1h) or a time (RFC 3339).
    #[arg(long)]
    pub since: Option<String>,
    /// Only lines before this time (RFC 3339) or this long ago.
    #[arg(long)]
    pub until: Option<String>,
    /// Matches shown, the last ones.
    #[arg(long, default_value_t = 20)]
    pub last: usize,
    /// Templates first seen this close to the end are new.
    #[arg(long, default_value = "15m")]
    pub recent: String,
    /// Robust z-score above which a minute spikes.
    #[arg(long, default_value_t = 5.0)]
    pub spike_z: f64,
    /// Remote logs: start at this byte offset (the `bytes` of an earlier scan).
    #[arg(long)]
    pub resume_from: Option<u64>,
    /// Worker threads (default: the cores).
    #[arg(long)]
    pub threads: Option<usize>,
}

fn when(s: &str, field: &str) -> Result<chrono::DateTime<chrono::Utc>, String> {
    if let Ok(d) = agentlab_ops::config::parse_duration(s) {
        let d = chrono::Duration::from_std(d).map_err(|e| format!("{field}: {e}"))?;
        return Ok(chrono::Utc::now() - d);
    }
    chrono::DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&chrono::Utc))
        .map_err(|_| format!("{field}: {s:?} is neither a duration (1h) nor a time (RFC 3339)"))
}

fn options(a: &ScanArgs) -> Result<ScanOptions, String> {
    let mut o = ScanOptions::default();
    o.pattern = a.pattern.clone();
    o.ignore_case = !a.case_sensitive;
    o.top = Field::parse(&a.top).map_err(|e| e.to_string())?;
    o.top_n = a.top_n;
    o.since = a.since.as_deref().map(|s| when(s, "--since")).transpose()?;
    o.until = a.until.as_deref().map(|s| when(s, "--until")).transpose()?;
    o.last = a.last;
    o.recent =
        agentlab_ops::config::parse_duration(&a.recent).map_err(|e| format!("--recent: {e}"))?;
    o.spike_z = a.spike_z;
    if let Some(t) = a.threads {
        o.threads = t.max(1);
    }
    Ok(o)
}

/// `HOST:PATH` when HOST is a host of the config and the target is not a local file.
fn remote<'a>(
    g: &Global,
    target: &'a str,
) -> Option<(agentlab_ops::config::Config, &'a str, &'a str)> {
    let (h, p) = target.split_once(':')?;
    if Path::new(target).exists() {
        return None;
    }
    let cfg = agentlab_ops::Config::load(g.config.as_deref()).ok()??;
    cfg.hosts.iter().any(|x| x.name == h).then_some((cfg, h, p))
}

async fn scan(
    g: &Global,
    a: &ScanArgs,
    o: &ScanOptions,
) -> agentlab_ops::Result<(LogReport, Option<Transfer>)> {
    if let Some((cfg, h, p)) = remote(g, &a.target) {
        let hosts = agentlab_ops::host::from_config(&cfg)?;
        let entry = hosts.iter().find(|e| e.config.name == h).expect("listed");
        let r = scan_host(entry.host.as_ref(), p, o, a.resume_from).await;
        for e in &hosts {
            let _ = e.host.close().await;
        }
        return r.map(|(rep, t)| (rep, Some(t)));
    }
    let (target, o) = (a.target.clone(), o.clone());
    tokio::task::spawn_blocking(move || {
        if target == "-" {
            agentlab_ops::logs::scan_reader(std::io::stdin(), "stdin", &o)
        } else {
            scan_path(Path::new(&target), &o)
        }
    })
    .await
    .map_err(|e| agentlab_ops::Error::new(agentlab_ops::ErrorKind::Unexpected, e.to_string()))?
    .map(|r| (r, None))
}

/// Run `logs ...`: 0 with no match, 1 with matches (like grep's 0/1 inverted: an
/// investigation escalates on errors), 2 on an error.
pub async fn run(g: &Global, cmd: &LogsCmd) -> i32 {
    let LogsCmd::Scan(a) = cmd;
    let o = match options(a) {
        Ok(o) => o,
        Err(e) => return fail(e),
    };
    let (r, t) = match scan(g, a, &o).await {
        Ok(x) => x,
        Err(e) => return fail(e),
    };
    match g.format {
        Format::Json => {
            let mut v = serde_json::to_value(&r).unwrap_or_default();
            if let Some(t) = t {
                v["transfer"] = serde_json::json!({"file_bytes": t.file_bytes, "offset": t.offset, "wire_bytes": t.wire_bytes, "gzip": t.gzip});
            }
            println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
        }
        _ => print_text(&r, t),
    }
    i32::from(r.matches > 0)
}

fn print_text(r: &LogReport, t: Option<Transfer>) {
    println!("{}", r.summary());
    if let Some(t) = t {
        println!(
            "  read {} of {} bytes from offset {}{}",
            t.wire_bytes,
            t.file_bytes,
            t.offset,
            if t.gzip { " (gzip)" } else { "" }
        );
    }
    for s in r.spikes.iter().take(5) {
        println!(
            "  spike  {}  {} matches (baseline median {:.0}, z {:.1})",
            s.minute.format("%Y-%m-%d %H:%MZ"),
            s.count,
            s.baseline_median,
            s.z
        );
    }
    for tpl in r.new_templates.iter().take(10) {
        let at = tpl
            .first_seen
            .map_or("-".into(), |t| t.format("%H:%M:%SZ").to_string());
        println!("  new    {at}  ×{}  {}", tpl.count, tpl.template);
    }
    for tpl in r.templates.iter().take(5) {
        println!("  templ  ×{}  {}", tpl.count, tpl.template);
    }
    for k in &r.top {
        println!("  top    {:>8}  {}", k.count, k.key);
    }
    for m in &r.last {
        println!("  {:>8}: {}", m.line, m.text);
    }
}
