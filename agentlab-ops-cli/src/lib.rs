//! The `agentlab-ops` command: built-in runbooks from the terminal.
//!
//! Exit codes: 0 healthy, 1 escalation needed, 2 could not run.

use std::ffi::OsString;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::time::Duration;

use agentlab_ops::{Config, Format, Journal, Report, RunOptions, Sandbox, Scenario};

mod catalogue;
mod logs;
mod resume;
mod runbooks;
mod target;

use clap::{Args, Parser, Subcommand};
use target::target;

/// Agent Lab's operational runbooks as code.
#[derive(Debug, Parser)]
#[command(name = "agentlab-ops", version, about, long_about = None)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

/// Options of every subcommand.
#[derive(Debug, Args)]
pub struct Global {
    /// Environment file (default: $AGENTLAB_OPS_CONFIG, then ./agentlab-ops.toml).
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Output format.
    #[arg(long, global = true, default_value = "text", value_parser = parse_format)]
    pub format: Format,
    /// Run reads, only plan changes.
    #[arg(long, global = true)]
    pub dry_run: bool,
    /// Run against the built-in sandbox: healthy, degraded, budget-exhausted, backups-missing, disk-full.
    #[arg(long, global = true, value_name = "SCENARIO")]
    pub sandbox: Option<String>,
    /// Stop the run after this long (e.g. 90s, 10m): its undo steps run, exit 2.
    #[arg(long, global = true, value_name = "DURATION", value_parser = parse_timeout)]
    pub deadline: Option<Duration>,
    /// Log library events to stderr (-v info, -vv debug).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

fn parse_format(s: &str) -> Result<Format, String> {
    s.parse()
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a check runbook.
    Check {
        #[command(subcommand)]
        which: CheckCmd,
    },
    /// The end-of-day handover (Markdown).
    Handover(HandoverArgs),
    /// Take and verify backups.
    Backup {
        #[command(subcommand)]
        which: BackupCmd,
    },
    /// Deploy a release, blue-green with gradual traffic, or roll back.
    Deploy {
        #[command(subcommand)]
        which: DeployCmd,
    },
    /// Run a Lua script as a runbook (the `ops` module; see examples/lua/).
    Run(RunArgs),
    /// Any other runbook of the catalogue by its command (`restart`, `emergency shutdown`;
    /// see `list`), options as `--name value` (`--serial '[1,"50%"]'`, `--hosts h1,h2`).
    #[command(external_subcommand)]
    External(Vec<String>),
    /// Resume a run that stopped half-way (its runner killed, its machine rebooted): the steps
    /// it finished are not run again, the one in flight is checked, a failing run finishes
    /// its undos.
    Resume(resume::ResumeArgs),
    /// Scan a log: errors, top talkers, spikes, new templates.
    Logs {
        #[command(subcommand)]
        which: logs::LogsCmd,
    },
    /// The audit journal.
    Journal {
        #[command(subcommand)]
        which: JournalCmd,
    },
    /// Validate the environment file and show what it defines.
    Config {
        #[command(subcommand)]
        which: ConfigCmd,
    },
    /// Serve a sandbox until Ctrl-C and print a config file pointing at it.
    Sandbox {
        #[command(subcommand)]
        which: SandboxCmd,
    },
    /// Every runbook of the catalogue: name, whether it changes things, summary.
    List,
    /// Run every runbook (or those named) against the sandbox scenarios it should catch; a
    /// pass/fail table per runbook and scenario.
    Drill {
        /// Runbooks to drill (default: all).
        runbooks: Vec<String>,
    },
    /// A runbook's options (with defaults) and the steps it takes.
    Describe {
        /// Its name (`backup_verify`), an alias, or its command (`"backup verify"`).
        name: String,
    },
    /// Shell completions: `agentlab-ops completions bash > /etc/bash_completion.d/agentlab-ops`.
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
}

/// `check ...`.
#[derive(Debug, Subcommand)]
pub enum CheckCmd {
    /// Morning health check: health, SLOs, last night's backups, host resources.
    Morning {
        /// Backup date to check (YYYY-MM-DD or YYYYMMDD; default today, UTC).
        #[arg(long)]
        date: Option<String>,
    },
}

/// `backup ...`.
#[derive(Debug, Subcommand)]
pub enum BackupCmd {
    /// Copy every dataset from a host into the backup store, manifest last.
    Take {
        /// Date of the backup (YYYY-MM-DD or YYYYMMDD; default today, UTC).
        #[arg(long)]
        date: Option<String>,
        /// Host to read from (default: [backups] source_host, else the first host).
        #[arg(long)]
        host: Option<String>,
    },
    /// Restore the live data from a backup (read-only flag set meanwhile; old data kept).
    Recover {
        /// Use exactly this day's backup (YYYY-MM-DD or YYYYMMDD).
        #[arg(long)]
        date: Option<String>,
        /// Use the latest complete backup on or before this day (default: today).
        #[arg(long)]
        before: Option<String>,
        /// Host to restore on (default: [backups] source_host, else the first host).
        #[arg(long)]
        host: Option<String>,
    },
    /// Verify a day's backups: presence, completeness, integrity (sample), trend.
    Verify {
        /// Day to verify (YYYY-MM-DD or YYYYMMDD; default today, UTC).
        #[arg(long)]
        date: Option<String>,
        /// Integrity sample: "all", a count or a percentage (default: [backups] sample).
        #[arg(long)]
        sample: Option<String>,
        /// Seed of the sample (the same seed reads the same objects).
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Also restore the sample into a scratch directory and validate it there.
        #[arg(long)]
        restore_test: bool,
    },
}

/// `run script.lua [args...]`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// The script.
    pub script: std::path::PathBuf,
    /// Arguments for the script (`arg[1]`...).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub args: Vec<String>,
    /// Give the script the whole standard library (os.execute, io.popen, io.open...).
    #[arg(long)]
    pub allow_unsafe: bool,
    /// Stop the script after this long (e.g. 30s, 5m); its undo steps run.
    #[arg(long, value_parser = parse_timeout)]
    pub timeout: Option<Duration>,
}

fn parse_timeout(s: &str) -> Result<Duration, String> {
    agentlab_ops::config::parse_duration(s)
}

/// `deploy ...`.
#[derive(Debug, Subcommand)]
pub enum DeployCmd {
    /// Standard deployment: gates, tag, deploy workflow, health, smoke checks, monitoring;
    /// rolled back on any failure.
    Standard {
        /// Version to release (default: version.txt in deploy.repo_dir).
        #[arg(long)]
        version: Option<String>,
        /// A high-risk release: only inside a maintenance window.
        #[arg(long)]
        high_risk: bool,
        /// A critical release (a reliability fix): passes a yellow deploy freeze.
        #[arg(long)]
        critical: bool,
        /// Deploy despite failed gates (needs --reason, recorded in the report).
        #[arg(long)]
        force: bool,
        /// Why the gates are overridden.
        #[arg(long)]
        reason: Option<String>,
    },
    /// Blue-green: staging, green, then traffic 10/25/50/100% with analysis between steps.
    /// SIGUSR1 pauses before the next step, SIGUSR2 resumes, Ctrl-C aborts (traffic back to blue).
    BlueGreen {
        /// Version to release.
        #[arg(long)]
        version: Option<String>,
        /// A critical release (a reliability fix): passes a yellow deploy freeze.
        #[arg(long)]
        critical: bool,
        /// Deploy despite failed gates (needs --reason).
        #[arg(long)]
        force: bool,
        /// Why the gates are overridden.
        #[arg(long)]
        reason: Option<String>,
    },
    /// The rollback procedure: rollback workflow, else the manual fallback over SSH; then health.
    Rollback {
        /// Why (passed to the rollback workflow).
        #[arg(long, default_value = "manual rollback")]
        reason: String,
        /// The release to go back to (default: the tag before the newest).
        #[arg(long)]
        to: Option<String>,
    },
}

/// `handover` options.
#[derive(Debug, Args)]
pub struct HandoverArgs {
    /// Post the handover to the configured notifier.
    #[arg(long)]
    pub notify: bool,
    /// Primary on-call ("Name phone").
    #[arg(long)]
    pub primary: Option<String>,
    /// Backup on-call ("Name phone").
    #[arg(long)]
    pub backup: Option<String>,
    /// Outstanding item: "issue|status|owner|eta" (repeatable).
    #[arg(long = "item", value_name = "ITEM")]
    pub items: Vec<String>,
    /// Schedule entry: "what|detail" (repeatable).
    #[arg(long = "schedule", value_name = "ENTRY")]
    pub schedule: Vec<String>,
}

/// `journal ...`.
#[derive(Debug, Subcommand)]
pub enum JournalCmd {
    /// Runs per runbook, success rate, median duration.
    Stats {
        /// Only runs of this environment.
        #[arg(long)]
        environment: Option<String>,
    },
}

/// `config ...`.
#[derive(Debug, Subcommand)]
pub enum ConfigCmd {
    /// Parse and validate; print the effective config (secrets as references).
    Check,
}

/// `sandbox ...`.
#[derive(Debug, Subcommand)]
pub enum SandboxCmd {
    /// Serve a scenario until Ctrl-C.
    Serve {
        /// Scenario name.
        #[arg(default_value = "healthy")]
        scenario: String,
    },
}

/// Parse arguments, run, and return the exit code.
pub fn main_with_args<I, T>(args: I) -> i32
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let cli = match Cli::try_parse_from(args) {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return code;
        }
    };
    init_logging(cli.global.verbose);
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        // File reads and hashing run on blocking threads; more than a few only add memory
        // (a malloc arena each) on a small machine.
        .max_blocking_threads(8)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return 2;
        }
    };
    rt.block_on(run(cli))
}

/// Writes log lines to stderr with secrets scrubbed.
struct RedactingStderr;

impl Write for RedactingStderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let s = String::from_utf8_lossy(buf);
        std::io::stderr().write_all(agentlab_ops::secret::redact(&s).as_bytes())?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

fn init_logging(verbose: u8) {
    if verbose == 0 {
        return;
    }
    let level = if verbose == 1 {
        "agentlab_ops=info"
    } else {
        "agentlab_ops=debug"
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("AGENTLAB_OPS_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(|| RedactingStderr)
        .with_ansi(false)
        .try_init();
}

fn fail(msg: impl std::fmt::Display) -> i32 {
    eprintln!("error: {}", agentlab_ops::secret::redact(&msg.to_string()));
    2
}

/// Colours for text on stdout, as `anstream` decides: a terminal, unless `NO_COLOR` is set
/// (or `CLICOLOR=0`, `TERM=dumb`); `CLICOLOR_FORCE` forces them when piped.
pub(crate) fn color_for(format: Format) -> bool {
    format == Format::Text
        && anstream::AutoStream::choice(&std::io::stdout()) != anstream::ColorChoice::Never
}

fn say_note(note: &Option<String>, format: Format) {
    if let Some(n) = note {
        // Keep JSON on stdout parseable: the note goes to stderr there.
        if format == Format::Json {
            eprintln!("{n}");
        } else {
            println!("{n}");
        }
    }
}

/// Run `fut` while showing a progress line on stderr (`indicatif`; drawn only on a terminal):
/// a spinner, or a bar once the runbook knows its total (objects to verify).
async fn with_progress<T, F: std::future::Future<Output = T>>(
    label: &str,
    fut: F,
    progress: Option<agentlab_ops::runbook::run::Progress>,
) -> T {
    use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
    if !std::io::stderr().is_terminal() {
        return fut.await;
    }
    let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template("{spinner} {msg} {wide_bar} {pos}/{len} {per_sec} {elapsed}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    bar.set_message(label.to_string());
    let ticker = async {
        loop {
            if let Some(p) = &progress {
                use std::sync::atomic::Ordering::Relaxed;
                let total = p.total.load(Relaxed);
                let done = p.done.load(Relaxed);
                if total > 0 {
                    bar.set_length(total);
                    bar.set_position(done.min(total));
                } else if done > 0 {
                    // No total (a load test until its duration ends): the count so far.
                    bar.set_message(format!("{label}: {done}"));
                }
            }
            bar.tick();
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    let r = tokio::select! {
        r = fut => r,
        _ = ticker => unreachable!("the ticker never ends"),
    };
    bar.finish_and_clear();
    r
}

/// SIGUSR1 pauses a rollout before its next step, SIGUSR2 resumes it.
fn pause_on_signals(control: agentlab_ops::runbook::WaveControl) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let (Ok(mut pause), Ok(mut resume)) = (
                signal(SignalKind::user_defined1()),
                signal(SignalKind::user_defined2()),
            ) else {
                return;
            };
            loop {
                tokio::select! {
                    _ = pause.recv() => { eprintln!("paused (SIGUSR2 resumes)"); control.pause() }
                    _ = resume.recv() => { eprintln!("resumed"); control.resume() }
                }
            }
        }
        #[cfg(not(unix))]
        {
            let _ = control;
        }
    })
}

fn print_report(r: &Report, format: Format) -> i32 {
    println!("{}", r.render(format, color_for(format)).trim_end());
    r.verdict.exit_code()
}

async fn run(cli: Cli) -> i32 {
    let g = &cli.global;
    let mut run_opts = RunOptions::default().dry_run(g.dry_run).signals(true);
    run_opts.deadline = g.deadline;
    if let Some((name, options)) = runbooks::options_of(&cli.command) {
        return runbooks::run_named(g, name, options, run_opts).await;
    }
    if let Command::External(words) = &cli.command {
        // `agentlab-ops access grant --help`: the runbook's options and steps.
        if words.iter().any(|w| w == "--help" || w == "-h")
            && let Some(def) = runbooks::definition(words)
        {
            return catalogue::describe(def.name, g.format);
        }
        return match runbooks::external(words) {
            Ok((name, options)) => runbooks::run_named(g, name, options, run_opts).await,
            Err(e) => fail(e),
        };
    }
    match &cli.command {
        Command::Check { .. }
        | Command::Handover(_)
        | Command::Backup { .. }
        | Command::Deploy { .. }
        | Command::External(_) => {
            unreachable!("runbook commands are handled above")
        }
        Command::Logs { which } => logs::run(g, which).await,
        Command::Resume(a) => resume::run(g, a, run_opts).await,
        Command::List => catalogue::list(g.format),
        Command::Drill { runbooks } => catalogue::drill(runbooks, g.format).await,
        Command::Describe { name } => catalogue::describe(name, g.format),
        Command::Completions { shell } => {
            use clap::CommandFactory;
            clap_complete::generate(
                *shell,
                &mut Cli::command(),
                "agentlab-ops",
                &mut std::io::stdout(),
            );
            0
        }
        Command::Run(a) => {
            let t = match target(g).await {
                Ok(t) => t,
                Err(code) => return code,
            };
            say_note(&t.note, g.format);
            let env = std::sync::Arc::new(t.env);
            let opts = agentlab_ops_lua::ScriptOptions {
                dry_run: g.dry_run,
                allow_unsafe: a.allow_unsafe,
                timeout: a.timeout,
                signals: true,
                args: a.args.clone(),
                no_journal: false,
                resume: None,
            };
            let r = agentlab_ops_lua::run_script(env.clone(), &a.script, &opts).await;
            env.close().await;
            let code = print_report(&r, g.format);
            if let (Some(e), Format::Json) = (&r.error, g.format) {
                eprintln!("error: {}", e.message);
            }
            code
        }
        Command::Journal {
            which: JournalCmd::Stats { environment },
        } => {
            let path = match Config::load(g.config.as_deref()) {
                Err(e) => return fail(e),
                Ok(Some(cfg)) => cfg.journal_path(),
                Ok(None) => agentlab_ops::config::default_journal_path(),
            };
            let Some(path) = path else {
                return fail(
                    "the journal is disabled or no location is known (set AGENTLAB_OPS_JOURNAL)",
                );
            };
            match Journal::new(path).stats(environment.as_deref()) {
                Ok(s) => {
                    println!("{}", s.render(g.format).trim_end());
                    0
                }
                Err(e) => fail(e),
            }
        }
        Command::Config {
            which: ConfigCmd::Check,
        } => match Config::discover(g.config.as_deref()) {
            Err(e) => fail(e),
            Ok(None) => {
                fail("no config found (--config, $AGENTLAB_OPS_CONFIG, ./agentlab-ops.toml)")
            }
            Ok(Some(p)) => match Config::from_file(&p) {
                Err(e) => fail(e),
                Ok(cfg) => {
                    match g.format {
                        Format::Json => {
                            println!("{}", serde_json::to_string_pretty(&cfg).unwrap_or_default())
                        }
                        _ => {
                            println!("# {}: valid", p.display());
                            println!("{}", toml::to_string(&cfg).unwrap_or_default().trim_end());
                        }
                    }
                    0
                }
            },
        },
        Command::Sandbox {
            which: SandboxCmd::Serve { scenario },
        } => {
            let scenario: Scenario = match scenario.parse() {
                Ok(s) => s,
                Err(e) => return fail(e),
            };
            let sb = match Sandbox::start(scenario).await {
                Ok(s) => s,
                Err(e) => return fail(e),
            };
            eprintln!(
                "sandbox {scenario} serving at {} (Ctrl-C to stop); config:",
                sb.base_url()
            );
            println!(
                "{}",
                toml::to_string(sb.config()).unwrap_or_default().trim_end()
            );
            let _ = std::io::stdout().flush();
            let _ = tokio::signal::ctrl_c().await;
            0
        }
    }
}
