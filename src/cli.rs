//! Command line: `ferry standalone|validate|check|quickstart|install-aliases|openmsistream` and the
//! `connect-standalone` drop-in, which is the same executable under another name (a link
//! made by `ferry install-aliases` or the packages). Thin wrappers over the herder.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::config::providers::SystemEnvironment;
use crate::herder::{self, Loaded, RunOptions};
use crate::telemetry::{self, ColorChoice, LogFormat};

mod validate;

pub use validate::render;

/// The names ferry answers to besides its own, as Kafka's scripts are called.
pub const ALIASES: &[&str] = &["connect-standalone", "connect-distributed"];

#[derive(Debug, Parser)]
#[command(
    name = "ferry",
    version,
    about = "Runs Kafka Connect sink connectors from the same worker and connector files, in one small binary."
)]
struct Cli {
    /// Log line format (logs go to standard error; RUST_LOG sets the levels).
    #[arg(
        long,
        value_enum,
        default_value = "text",
        env = "FERRY_LOG_FORMAT",
        global = true
    )]
    log_format: LogFormat,
    /// When log lines are coloured: auto = only on a terminal and without NO_COLOR.
    #[arg(
        long,
        value_enum,
        default_value = "auto",
        env = "FERRY_COLOR",
        global = true
    )]
    color: ColorChoice,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run connectors: a Kafka Connect worker file and one or more connector files.
    Standalone(StandaloneArgs),
    /// Run as one worker of a cluster: connectors live in the cluster's config topic
    /// (`config.storage.topic`), any worker's REST API manages them, and each connector's
    /// partitions are shared by the workers through its consumer group.
    Distributed(DistributedArgs),
    /// Check files and print the effective configuration, secrets redacted, with every
    /// unknown, ignored or translated key.
    Validate {
        /// Check the worker file as `ferry distributed` reads it (group.id and the internal
        /// topics); the default for a file that sets config.storage.topic,
        /// status.storage.topic or offset.storage.topic.
        #[arg(long)]
        distributed: bool,
        /// The worker file, then any connector files.
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
    },
    /// Check the path from files to sink, one line per step (✓/✗ and the cause): files,
    /// keytab, KDC, ticket, brokers, SASL handshake, topics, sink. Exits 1 on the first
    /// failure that would keep ferry from running.
    Check {
        /// The worker file, then any connector files.
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
    },
    /// Run the main job on an embedded Kafka cluster: sample records into a local directory.
    Quickstart {
        /// How many sample records to produce.
        #[arg(long, default_value_t = 1000)]
        records: usize,
        /// Working directory for the output files and offsets (its out/ and connect.offsets
        /// are replaced).
        #[arg(long, default_value = "ferry-quickstart")]
        dir: PathBuf,
    },
    /// Make the links through which this executable answers as Kafka's scripts
    /// (connect-standalone) in a directory: one binary, several names.
    InstallAliases {
        /// Where to put the links (default: beside this executable).
        #[arg(value_name = "DIR")]
        dir: Option<PathBuf>,
    },
    /// OpenMSIStream's programs, from its own config file.
    #[command(subcommand)]
    Openmsistream(Openmsistream),
}

#[derive(Debug, Subcommand)]
enum Openmsistream {
    /// Rebuild the files uploaded to a topic (DataFileDownloadDirectory), crash-safe.
    Download(crate::openmsistream::DownloadArgs),
}

/// Arguments shared by `ferry standalone` and `connect-standalone`.
#[derive(Debug, Args)]
pub struct StandaloneArgs {
    /// Kafka Connect worker file (connect-standalone.properties).
    #[arg(value_name = "WORKER")]
    worker: PathBuf,
    /// Connector files; a directory stands for every `*.properties` file in it, in name
    /// order (e.g. /etc/ferry/connectors).
    #[arg(required = true, value_name = "CONNECTOR")]
    connectors: Vec<PathBuf>,
    /// Stop once every subscribed partition has been read to its end and every record read
    /// is delivered and committed (like kcat -e), instead of running until a signal; a stop
    /// before that exits 1, naming the partitions not delivered.
    #[arg(long)]
    exit_at_end: bool,
    /// Seconds to wait for the brokers at start-up before giving up.
    #[arg(
        long,
        default_value_t = 30,
        value_name = "SECONDS",
        env = "FERRY_BROKER_TIMEOUT"
    )]
    broker_timeout: u64,
}

/// Arguments of `ferry distributed` and `connect-distributed`.
#[derive(Debug, Args)]
pub struct DistributedArgs {
    /// Kafka Connect distributed worker file (connect-distributed.properties).
    #[arg(value_name = "WORKER")]
    worker: PathBuf,
    /// Seconds to wait for the brokers at start-up before giving up.
    #[arg(
        long,
        default_value_t = 30,
        value_name = "SECONDS",
        env = "FERRY_BROKER_TIMEOUT"
    )]
    broker_timeout: u64,
}

/// The executable's entry point: `ferry`, or Kafka's script name it was called by.
pub fn main() -> ExitCode {
    let called_as = std::env::args_os()
        .next()
        .map(PathBuf::from)
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()));
    match called_as.as_deref() {
        Some("connect-standalone") => connect_standalone_main(),
        Some("connect-distributed") => connect_distributed_main(),
        _ => ferry_main(),
    }
}

fn ferry_main() -> ExitCode {
    let cli = Cli::parse();
    if matches!(cli.command, Command::Check { .. }) {
        // check prints its own ✓/✗ lines; INFO lines between them would only be noise.
        telemetry::init_with_default(cli.log_format, cli.color, "warn,librdkafka=error");
    } else {
        telemetry::init(cli.log_format, cli.color);
    }
    match cli.command {
        Command::Standalone(args) => standalone(args, cli.log_format),
        Command::Distributed(args) => distributed(args, cli.log_format),
        Command::Validate { files, distributed } => {
            validate::validate(&files, distributed, cli.log_format)
        }
        Command::Check { files } => {
            let Some((worker, connectors)) = files.split_first() else {
                return ExitCode::FAILURE;
            };
            match connector_files(connectors) {
                Ok(connectors) if crate::check::run(worker, &connectors) => ExitCode::SUCCESS,
                Ok(_) => ExitCode::FAILURE,
                Err(e) => fail(cli.log_format, e),
            }
        }
        Command::Quickstart { records, dir } => quickstart(records, &dir, cli.log_format),
        Command::InstallAliases { dir } => install_aliases(dir, cli.log_format),
        Command::Openmsistream(Openmsistream::Download(args)) => {
            openmsistream_download(&args, cli.log_format)
        }
    }
}

/// Links each of [`ALIASES`] to this executable in `dir`; an existing link to it is kept,
/// anything else of that name is left alone and reported.
fn install_aliases(dir: Option<PathBuf>, format: LogFormat) -> ExitCode {
    let exe = match std::env::current_exe() {
        Ok(exe) => exe,
        Err(e) => return fail(format, format!("cannot tell where this executable is: {e}")),
    };
    let Some(dir) = dir.or_else(|| exe.parent().map(PathBuf::from)) else {
        return fail(format, "give the directory for the links");
    };
    // A relative link when the executable is in the same directory, so the pair can move.
    let target = if exe.parent() == Some(dir.as_path()) {
        exe.file_name()
            .map(PathBuf::from)
            .unwrap_or_else(|| exe.clone())
    } else {
        exe.clone()
    };
    for alias in ALIASES {
        let link = dir.join(alias);
        match std::fs::read_link(&link) {
            Ok(existing) if existing == target => {
                println!("{} -> {} (already there)", link.display(), target.display());
                continue;
            }
            _ if link.symlink_metadata().is_ok() => {
                return fail(
                    format,
                    format!(
                        "{} exists and is not a link to {}; remove it and run ferry install-aliases again",
                        link.display(),
                        target.display()
                    ),
                );
            }
            _ => {}
        }
        if let Err(e) = std::os::unix::fs::symlink(&target, &link) {
            return fail(
                format,
                format!(
                    "cannot link {} -> {}: {e}",
                    link.display(),
                    target.display()
                ),
            );
        }
        println!("{} -> {}", link.display(), target.display());
    }
    ExitCode::SUCCESS
}

/// Kafka's `connect-standalone` script, as a drop-in.
#[derive(Debug, Parser)]
#[command(
    name = "connect-standalone",
    version,
    about = "Drop-in for Kafka's connect-standalone: ferry standalone with the same arguments."
)]
struct ConnectStandalone {
    /// Kafka's script detaches with -daemon; run ferry under systemd instead (deploy/ferry.service).
    #[arg(short = 'd', long = "daemon", hide = true)]
    daemon: bool,
    #[arg(long, value_enum, default_value = "text", env = "FERRY_LOG_FORMAT")]
    log_format: LogFormat,
    #[arg(long, value_enum, default_value = "auto", env = "FERRY_COLOR")]
    color: ColorChoice,
    #[command(flatten)]
    args: StandaloneArgs,
}

/// Kafka's `connect-distributed` script, as a drop-in.
#[derive(Debug, Parser)]
#[command(
    name = "connect-distributed",
    version,
    about = "Drop-in for Kafka's connect-distributed: ferry distributed with the same arguments."
)]
struct ConnectDistributed {
    #[arg(short = 'd', long = "daemon", hide = true)]
    daemon: bool,
    #[arg(long, value_enum, default_value = "text", env = "FERRY_LOG_FORMAT")]
    log_format: LogFormat,
    #[arg(long, value_enum, default_value = "auto", env = "FERRY_COLOR")]
    color: ColorChoice,
    #[command(flatten)]
    args: DistributedArgs,
}

fn connect_distributed_main() -> ExitCode {
    let args = script_args();
    let cli = ConnectDistributed::parse_from(args);
    telemetry::init(cli.log_format, cli.color);
    if cli.daemon {
        return fail(
            cli.log_format,
            "-daemon is not supported: run ferry in the foreground under systemd or your init system",
        );
    }
    distributed(cli.args, cli.log_format)
}

/// `ferry distributed`: one worker of a cluster (src/herder/distributed.rs).
fn distributed(args: DistributedArgs, format: LogFormat) -> ExitCode {
    let loaded = match Loaded::load(&args.worker, &[], &SystemEnvironment) {
        Ok(l) => l,
        Err(e) => return fail(format, e),
    };
    let settings =
        match crate::config::distributed::DistributedConfig::from_worker(&loaded.worker.file) {
            Ok(s) => s,
            Err(e) => return fail(format, e),
        };
    // The Kerberos login of the worker file, for the worker's own clients and every
    // connector's consumer alike; planned (and its environment entered, which may
    // re-execute ferry) before anything else happens, as in standalone mode.
    let kerberos = match crate::auth::prepare_worker(&loaded.worker) {
        Ok(plan) => plan,
        Err(e) => return fail(format, e),
    };
    for note in loaded.notes() {
        if note.is_warning() {
            tracing::warn!("{note}");
        }
    }
    #[cfg(feature = "kerberos")]
    let _login = match kerberos.as_ref().map(crate::auth::login).transpose() {
        Ok(login) => login,
        Err(e) => return fail(format, e),
    };
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(e) => return fail(format, format!("cannot start the async runtime: {e}")),
    };
    tracing::info!(group = %settings.group_id, config_topic = %settings.config_topic, "Starting as a worker of a distributed cluster.");
    let opts = RunOptions {
        exit_at_end: false,
        probe_timeout: Duration::from_secs(args.broker_timeout),
        rest: true,
        metrics: Some(crate::rest::MetricsRenderer(std::sync::Arc::new(
            crate::metrics::render,
        ))),
        kerberos,
        distributed: Some(settings),
    };
    let outcome = match rt.block_on(herder::run(loaded, opts)) {
        Ok(o) => o,
        Err(e) => return fail(format, e),
    };
    rt.shutdown_timeout(Duration::from_secs(1));
    if !outcome.drained {
        return fail(
            format,
            "not every task stopped within task.shutdown.graceful.timeout.ms",
        );
    }
    ExitCode::SUCCESS
}

/// The arguments as Kafka's scripts take them: they spell the flag `-daemon`, so that
/// spelling is accepted too.
fn script_args() -> impl Iterator<Item = String> {
    std::env::args().map(|a| {
        if a == "-daemon" {
            "--daemon".to_string()
        } else {
            a
        }
    })
}

/// `connect-standalone`'s entry point.
fn connect_standalone_main() -> ExitCode {
    let args = script_args();
    let cli = ConnectStandalone::parse_from(args);
    telemetry::init(cli.log_format, cli.color);
    if cli.daemon {
        return fail(
            cli.log_format,
            "-daemon is not supported: run ferry in the foreground under systemd (see deploy/ferry.service) or your init system",
        );
    }
    standalone(cli.args, cli.log_format)
}

/// The one error line ferry stops with: whatever the message holds (a value quoted whole by
/// a sink, a newline), it stays one line of at most a few thousand characters.
fn fail(format: LogFormat, message: impl std::fmt::Display) -> ExitCode {
    let message = message.to_string();
    let message = ferry_connector_api::text::one_line(&message);
    match format {
        LogFormat::Text => eprintln!("ferry: error: {message}"),
        LogFormat::Json => tracing::error!(error = %message, "Cannot start."),
    }
    ExitCode::FAILURE
}

fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("ferry-rt")
        .build()
}

/// The connector files the arguments name: files as given, directories as the
/// `*.properties` files in them, sorted by name.
fn connector_files(args: &[PathBuf]) -> Result<Vec<PathBuf>, String> {
    let mut files = Vec::new();
    for arg in args {
        if !arg.is_dir() {
            files.push(arg.clone());
            continue;
        }
        let entries = std::fs::read_dir(arg)
            .map_err(|e| format!("{}: cannot list the directory: {e}", arg.display()))?;
        let mut found: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "properties"))
            .collect();
        if found.is_empty() {
            return Err(format!(
                "{}: no connector files (*.properties) in this directory",
                arg.display()
            ));
        }
        found.sort();
        files.extend(found);
    }
    Ok(files)
}

fn standalone(args: StandaloneArgs, format: LogFormat) -> ExitCode {
    let connectors = match connector_files(&args.connectors) {
        Ok(c) => c,
        Err(e) => return fail(format, e),
    };
    let loaded = match Loaded::load(&args.worker, &connectors, &SystemEnvironment) {
        Ok(l) => l,
        Err(e) => return fail(format, e),
    };
    run_loaded(loaded, args.exit_at_end, args.broker_timeout, true, format)
}

/// `ferry openmsistream download`: OpenMSIStream's config file and arguments as a worker
/// and a connector held in memory, then the same run as `standalone` (without REST).
fn openmsistream_download(
    args: &crate::openmsistream::DownloadArgs,
    format: LogFormat,
) -> ExitCode {
    use crate::config::{ConnectorConfig, WorkerConfig};
    let text = match std::fs::read_to_string(&args.config) {
        Ok(t) => t,
        Err(e) => {
            return fail(
                format,
                format!("{}: cannot read: {e}", args.config.display()),
            );
        }
    };
    let group = format!("ferry-openmsistream-{:016x}", fastrand::u64(..));
    let d = match crate::openmsistream::build(args, &text, &SystemEnvironment, &group) {
        Ok(d) => d,
        Err(e) => return fail(format, e),
    };
    d.notes.iter().for_each(|n| tracing::info!("{n}"));
    let loaded = WorkerConfig::from_file(d.worker, &SystemEnvironment).and_then(|worker| {
        let connector = ConnectorConfig::from_file(d.connector, &worker, &SystemEnvironment)?;
        let rest = crate::config::rest::RestConfig::from_worker(&worker.file)?;
        Ok(Loaded {
            worker,
            connectors: vec![connector],
            rest,
        })
    });
    match loaded {
        Ok(loaded) => run_loaded(loaded, false, 30, false, format),
        Err(e) => fail(format, e),
    }
}

fn run_loaded(
    mut loaded: Loaded,
    exit_at_end: bool,
    broker_timeout: u64,
    rest: bool,
    format: LogFormat,
) -> ExitCode {
    let kerberos = match crate::auth::prepare(&mut loaded) {
        Ok(plan) => plan,
        Err(e) => return fail(format, e),
    };
    for note in loaded.notes() {
        if note.is_warning() {
            tracing::warn!("{note}");
        } else {
            tracing::info!("{note}");
        }
    }
    #[cfg(feature = "kerberos")]
    let _login = match kerberos.as_ref().map(crate::auth::login).transpose() {
        Ok(login) => login,
        Err(e) => return fail(format, e),
    };
    #[cfg(not(feature = "kerberos"))]
    let _ = kerberos;
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(e) => return fail(format, format!("cannot start the async runtime: {e}")),
    };
    let opts = RunOptions {
        exit_at_end,
        probe_timeout: Duration::from_secs(broker_timeout),
        rest,
        // `GET /metrics` on the REST listener too (ferry.metrics.listener may add another).
        metrics: Some(crate::rest::MetricsRenderer(std::sync::Arc::new(
            crate::metrics::render,
        ))),
        kerberos: kerberos.clone(),
        distributed: None,
    };
    let outcome = match rt.block_on(herder::run(loaded, opts)) {
        Ok(o) => o,
        Err(e) => return fail(format, e),
    };
    let records: u64 = outcome.connectors.iter().map(|c| c.records).sum();
    let bytes: u64 = outcome.connectors.iter().map(|c| c.bytes).sum();
    let peak = telemetry::peak_rss_kb()
        .map(|kb| format!("{:.1}", kb as f64 / 1024.0))
        .unwrap_or_else(|| "?".into());
    tracing::info!(
        connectors = outcome.connectors.len(),
        records,
        bytes,
        seconds = format!("{:.3}", outcome.elapsed.as_secs_f64()),
        cpu_seconds = format!("{:.2}", telemetry::cpu_seconds().unwrap_or(0.0)),
        peak_rss_mb = %peak,
        "ferry stopped."
    );
    // Let the runtime's remaining blocking work end on its own, within reason.
    rt.shutdown_timeout(Duration::from_secs(1));
    if outcome.all_failed {
        return fail(format, "every task failed (see the ERROR lines above)");
    }
    if let Some(line) = outcome.undelivered_line() {
        return fail(format, line);
    }
    if !outcome.drained {
        return fail(
            format,
            "not every task stopped within task.shutdown.graceful.timeout.ms",
        );
    }
    ExitCode::SUCCESS
}

#[cfg(feature = "quickstart")]
fn quickstart(records: usize, dir: &std::path::Path, format: LogFormat) -> ExitCode {
    use std::io::Write as _;
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(e) => return fail(format, format!("cannot start the async runtime: {e}")),
    };
    match rt.block_on(crate::quickstart::run(records, dir)) {
        Ok(r) => {
            let _ = writeln!(
                std::io::stdout(),
                "ferry quickstart: {} records produced to an embedded Kafka cluster and written by the directory sink as {} files under {} ({{topic}}/{{partition}}/{{offset}}); offsets committed to {}; {:.2} s.",
                r.produced,
                r.files,
                r.out.display(),
                r.offsets.display(),
                r.elapsed.as_secs_f64()
            );
            rt.shutdown_timeout(Duration::from_secs(1));
            ExitCode::SUCCESS
        }
        Err(e) => fail(format, e),
    }
}

#[cfg(not(feature = "quickstart"))]
fn quickstart(_records: usize, _dir: &std::path::Path, format: LogFormat) -> ExitCode {
    fail(
        format,
        "this ferry was built without the `quickstart` feature",
    )
}
