//! Command line: `ferry standalone|validate|check|quickstart|install-aliases|openmsistream` and the
//! `connect-standalone` drop-in, which is the same executable under another name (a link
//! made by `ferry install-aliases` or the packages). Thin wrappers over the herder.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::config::distributed::DistributedConfig;
use crate::config::notes::{Note, NoteKind};
use crate::config::providers::SystemEnvironment;
use crate::config::secret::display_value;
use crate::herder::{self, Loaded, RunOptions};
use crate::kafka;
use crate::telemetry::{self, ColorChoice, LogFormat};

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
        Command::Validate { files, distributed } => validate(&files, distributed, cli.log_format),
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

fn validate(files: &[PathBuf], distributed: bool, format: LogFormat) -> ExitCode {
    let Some((worker, connectors)) = files.split_first() else {
        return fail(format, "give the worker file first, then connector files");
    };
    let connectors = match connector_files(connectors) {
        Ok(c) => c,
        Err(e) => return fail(format, e),
    };
    // Every problem of every connector file, not only the first (as PUT …/config/validate).
    if let Ok(w) = crate::config::WorkerConfig::load(worker, &SystemEnvironment) {
        let mut lines = Vec::new();
        for path in &connectors {
            match crate::config::PropertiesFile::load(path) {
                Ok(file) => lines.extend(
                    crate::config::problems::connector_problems(&file, &w, &SystemEnvironment)
                        .into_iter()
                        .map(|p| p.error.to_string()),
                ),
                Err(e) => lines.push(e.to_string()),
            }
        }
        if !lines.is_empty() {
            for line in &lines {
                fail(format, line);
            }
            return ExitCode::FAILURE;
        }
    }
    let mut loaded = match Loaded::load(worker, &connectors, &SystemEnvironment) {
        Ok(l) => l,
        Err(e) => return fail(format, e),
    };
    // A distributed worker file gets the checks (and the one-line errors) `ferry
    // distributed` starts with.
    let cluster = if distributed || crate::config::distributed::is_distributed(&loaded.worker.file)
    {
        match DistributedConfig::from_worker(&loaded.worker.file) {
            Ok(c) => Some(c),
            Err(e) => return fail(format, e),
        }
    } else {
        None
    };
    // The same decision `standalone` makes, shown rather than acted on.
    let kerberos = match crate::auth::kerberos::plan(&loaded.worker, &mut loaded.connectors) {
        Ok(plan) => plan,
        Err(e) => return fail(format, e),
    };
    let mut text = render(&loaded, cluster.as_ref());
    if let Some(p) = kerberos {
        let line = format!(
            "\nKerberos: ferry logs in as {} with keytab {} for {} (krb5.conf: {}), and renews the ticket itself.\n",
            p.principal,
            p.keytab.display(),
            p.connectors.join(", "),
            crate::auth::krb5_conf::path(p.krb5_conf.as_deref()).display()
        );
        // Before the closing OK line.
        let at = text.rfind("\nOK: ").unwrap_or(text.len());
        text.insert_str(at, &line);
    }
    // `ferry validate … | head` closes the pipe early; that is not an error, nor a panic.
    let _ = std::io::Write::write_all(&mut std::io::stdout(), text.as_bytes());
    ExitCode::SUCCESS
}

/// The report `ferry validate` prints; `cluster`: the worker file is a distributed worker's.
pub fn render(loaded: &Loaded, cluster: Option<&DistributedConfig>) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let w = &loaded.worker;
    let _ = writeln!(out, "worker {}", w.file.path.display());
    for (k, v) in &w.file.entries {
        let _ = writeln!(out, "  {k} = {}", display_value(k, v));
    }
    if let Some(c) = cluster {
        render_cluster(&mut out, c);
    }
    for c in &loaded.connectors {
        let _ = writeln!(out, "\nconnector {} ({})", c.name, c.file.path.display());
        let _ = writeln!(
            out,
            "  class = {} (ferry's {} sink)",
            c.class, c.factory.name
        );
        let _ = writeln!(out, "  tasks.max = {}", c.tasks_max);
        let _ = writeln!(out, "  {}", c.subscription);
        let _ = writeln!(out, "  key.converter = {}", c.key_converter.class_name());
        let _ = writeln!(
            out,
            "  value.converter = {}",
            c.value_converter.class_name()
        );
        let _ = writeln!(out, "  errors.tolerance = {}", c.errors.tolerance);
        if !c.transforms.is_empty() {
            let _ = writeln!(out, "  transforms, in order (before put):");
            for line in c.transforms.describe() {
                let _ = writeln!(out, "    {line}");
            }
        }
        for (k, v) in &c.file.entries {
            if ![
                "name",
                "connector.class",
                "tasks.max",
                "topics",
                "topics.regex",
            ]
            .contains(&k.as_str())
            {
                let _ = writeln!(out, "  {k} = {}", display_value(k, v));
            }
        }
        let _ = writeln!(out, "  consumer (librdkafka settings, task 0):");
        let defaults =
            kafka::ferry_defaults(&c.name, c.connector.read_ahead_bytes(), w.status_interval);
        for (k, p) in &c.consumer.props {
            let _ = writeln!(
                out,
                "    {k} = {}    # {}",
                display_value(k, &p.value),
                p.source
            );
        }
        for (k, v) in defaults
            .iter()
            .filter(|(k, _)| !c.consumer.props.contains_key(*k))
        {
            let _ = writeln!(out, "    {k} = {v}    # ferry default");
        }
        for (k, v) in kafka::MANAGED {
            let _ = writeln!(out, "    {k} = {v}    # managed by ferry");
        }
    }
    let mut notes = loaded.notes();
    if cluster.is_some() {
        distributed_notes(&mut notes);
    }
    if !notes.is_empty() {
        let _ = writeln!(out, "\nnotes:");
        for n in &notes {
            let _ = writeln!(out, "  [{}] {n}", n.label());
        }
    }
    let _ = writeln!(
        out,
        "\nOK: 1 worker file{}, {} connector file(s).",
        if cluster.is_some() {
            " (distributed)"
        } else {
            ""
        },
        loaded.connectors.len()
    );
    out
}

/// What `ferry distributed` makes of a distributed worker file.
fn render_cluster(out: &mut String, c: &DistributedConfig) {
    use std::fmt::Write;
    let replicas = |n: i32| {
        if n == -1 {
            "the broker's default".to_string()
        } else {
            n.to_string()
        }
    };
    let _ = writeln!(
        out,
        "\ndistributed worker (as `ferry distributed` reads it):"
    );
    let _ = writeln!(out, "  cluster (group.id) = {}", c.group_id);
    let _ = writeln!(
        out,
        "  config.storage.topic = {}    # 1 partition, replication factor {}",
        c.config_topic,
        replicas(c.config_replication)
    );
    let _ = writeln!(
        out,
        "  status.storage.topic = {}    # {} partition(s), replication factor {}",
        c.status_topic,
        c.status_partitions,
        replicas(c.status_replication)
    );
    if let Some(t) = &c.offset_topic {
        let _ = writeln!(
            out,
            "  offset.storage.topic = {t}    # accepted; a sink's offsets live in its consumer group"
        );
    }
    let _ = writeln!(out, "  ferry.static.membership = {}", c.static_membership);
}

/// The worker's notes for a distributed worker file: the keys distributed mode reads are
/// not "ignored", and the other distributed-only keys are ignored for another reason.
fn distributed_notes(notes: &mut Vec<Note>) {
    use crate::config::distributed::KEYS;
    notes.retain(|n| {
        !(KEYS.contains(&n.key.as_str()) && matches!(n.kind, NoteKind::Ignored { .. }))
    });
    for n in notes.iter_mut() {
        if let NoteKind::Ignored { reason } = &mut n.kind
            && reason == "distributed mode only"
        {
            *reason = "a setting of Kafka Connect's own cluster coordination or offset topic; ferry's workers share partitions and keep sink offsets through each connector's consumer group".into();
        }
    }
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
