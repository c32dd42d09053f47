//! Logging setup and process measurements.

pub mod loggers;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, OnceLock};

use tracing_subscriber::EnvFilter;

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// When log lines carry ANSI colour codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum ColorChoice {
    /// Only when standard error is a terminal and `NO_COLOR` is unset or empty.
    #[default]
    Auto,
    /// Always, even into a file or a pipe.
    Always,
    /// Never.
    Never,
}

impl ColorChoice {
    /// Whether to colour, given what the process sees: `NO_COLOR`'s value, `TERM`'s value
    /// and whether standard error is a terminal (<https://no-color.org>: a non-empty
    /// `NO_COLOR` turns colour off unless the user asks for it on the command line).
    pub fn resolve(self, no_color: Option<&str>, term: Option<&str>, is_terminal: bool) -> bool {
        match self {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => {
                is_terminal && no_color.is_none_or(str::is_empty) && term != Some("dumb")
            }
        }
    }

    fn enabled_here(self) -> bool {
        use std::io::IsTerminal;
        let no_color = std::env::var("NO_COLOR").ok();
        let term = std::env::var("TERM").ok();
        self.resolve(
            no_color.as_deref(),
            term.as_deref(),
            std::io::stderr().is_terminal(),
        )
    }
}

/// Installs the global subscriber: `RUST_LOG` if set, else INFO for ferry and WARN for
/// librdkafka's own chatter. Logs go to standard error, coloured only as `color` says. The
/// filter can be changed while ferry runs (`PUT /admin/loggers/{name}`, see [`loggers`]).
pub fn init(format: LogFormat, color: ColorChoice) {
    init_with_default(format, color, "info,librdkafka=warn");
}

/// As [`init`], with another default filter when `RUST_LOG` is unset (`ferry check` prints
/// its own lines and wants only warnings beside them).
pub fn init_with_default(format: LogFormat, color: ColorChoice, default_filter: &str) {
    use tracing_subscriber::prelude::*;
    // The text the filter was built from, kept so that a change rebuilds it with the rest.
    let (filter, text) = match std::env::var(EnvFilter::DEFAULT_ENV) {
        Ok(env) => match EnvFilter::try_new(&env) {
            Ok(f) => (f, env),
            Err(_) => (EnvFilter::new(default_filter), default_filter.to_string()),
        },
        Err(_) => (EnvFilter::new(default_filter), default_filter.to_string()),
    };
    let (filter, handle) = tracing_subscriber::reload::Layer::new(filter);
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(format == LogFormat::Text && color.enabled_here())
        .with_target(false);
    let fmt = match format {
        LogFormat::Text => fmt.boxed(),
        LogFormat::Json => fmt
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .boxed(),
    };
    let seen = Arc::new(Mutex::new(BTreeSet::new()));
    let result = tracing_subscriber::registry()
        .with(filter)
        .with(fmt)
        .with(SeenTargets(seen.clone()))
        .with(KeptLines)
        .try_init();
    // A subscriber already installed (tests) is fine: its filter is then not ours to change.
    if result.is_ok() {
        let _ = LOGGERS.set(loggers::Loggers::new(handle, seen, &text));
    }
}

/// The run-time control of the log filter, once [`init`] has installed it.
pub fn loggers() -> Option<&'static loggers::Loggers> {
    LOGGERS.get()
}

static LOGGERS: OnceLock<loggers::Loggers> = OnceLock::new();

/// Records the target of every callsite as it registers: ferry's loggers, in Kafka
/// Connect's sense (log4j knows the loggers the code has asked for; these are the targets
/// the code has logged at, or tried to, at a level the filter's maximum lets through).
struct SeenTargets(Arc<Mutex<BTreeSet<&'static str>>>);

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for SeenTargets {
    fn register_callsite(
        &self,
        metadata: &'static tracing::Metadata<'static>,
    ) -> tracing::subscriber::Interest {
        // Records of the `log` crate share one callsite per level (target `log`).
        if metadata.fields().field("log.target").is_none() {
            loggers::lock(&self.0).insert(metadata.target());
        }
        tracing::subscriber::Interest::always()
    }
}

/// Keeps every line that passes the filter in [`ferry_connector_api::logs`], for sinks that
/// ship the process's logs (OpenMSIStream's log topic), as `LEVEL message key=value …`.
struct KeptLines;

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for KeptLines {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        use ferry_connector_api::logs::{self, LogLevel};
        let level = match *event.metadata().level() {
            tracing::Level::ERROR => LogLevel::Error,
            tracing::Level::WARN => LogLevel::Warn,
            tracing::Level::INFO => LogLevel::Info,
            tracing::Level::DEBUG => LogLevel::Debug,
            tracing::Level::TRACE => LogLevel::Trace,
        };
        let mut line = LineVisitor {
            message: String::new(),
            fields: String::new(),
        };
        event.record(&mut line);
        logs::push(
            level,
            format!(
                "{} {}{}",
                event.metadata().level(),
                line.message,
                line.fields
            ),
        );
    }
}

/// An event as one line: the message, then ` key=value` per field (as the text format).
struct LineVisitor {
    message: String,
    fields: String,
}

impl tracing::field::Visit for LineVisitor {
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        use std::fmt::Write;
        match field.name() {
            "message" => self.message.push_str(value),
            n if n.starts_with("log.") => {}
            n => {
                let _ = write!(self.fields, " {n}={value}");
            }
        }
    }

    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        use std::fmt::Write;
        match field.name() {
            "message" => {
                let _ = write!(self.message, "{value:?}");
            }
            // Records of the `log` crate (librdkafka's lines) carry their origin here.
            n if n.starts_with("log.") => {}
            n => {
                let _ = write!(self.fields, " {n}={value:?}");
            }
        }
    }
}

/// Peak resident set size of this process in KiB (Linux `VmHWM`), if known.
pub fn peak_rss_kb() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Resident set size of this process in bytes (Linux `VmRSS`), if known.
pub fn rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())?;
    Some(kb * 1024)
}

/// CPU time (user + system) this process has used, in seconds (Linux `/proc/self/stat`,
/// at the kernel's 100 Hz tick).
pub fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name, which is in parentheses and may contain spaces.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / 100.0)
}

#[cfg(test)]
mod tests {
    use super::ColorChoice;

    #[test]
    fn colour_only_on_a_terminal_without_no_color() {
        let auto = ColorChoice::Auto;
        assert!(auto.resolve(None, Some("xterm"), true));
        assert!(
            auto.resolve(Some(""), None, true),
            "an empty NO_COLOR is unset"
        );
        assert!(!auto.resolve(None, Some("xterm"), false), "a file or pipe");
        assert!(!auto.resolve(Some("1"), Some("xterm"), true));
        assert!(!auto.resolve(None, Some("dumb"), true));
        assert!(ColorChoice::Always.resolve(Some("1"), None, false));
        assert!(!ColorChoice::Never.resolve(None, Some("xterm"), true));
    }

    #[test]
    fn log_lines_are_kept_for_sinks_that_ship_them() {
        use ferry_connector_api::logs::{LogLevel, LogReader};
        use tracing_subscriber::prelude::*;
        let mut reader = LogReader::new(1000, LogLevel::Info);
        let subscriber = tracing_subscriber::registry().with(super::KeptLines);
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!(file = %"a/b.csv", bytes = 12, "kept-line-marker File rebuilt.");
            tracing::debug!("kept-line-marker below the reader's level");
        });
        let lines: Vec<String> = reader
            .read()
            .lines
            .into_iter()
            .filter(|l| l.contains("kept-line-marker"))
            .collect();
        assert_eq!(
            lines,
            ["INFO kept-line-marker File rebuilt. file=a/b.csv bytes=12"]
        );
    }

    #[test]
    fn cpu_time_is_read_on_linux() {
        let start = super::cpu_seconds().expect("/proc/self/stat");
        let mut x = 0u64;
        for i in 0..50_000_000u64 {
            x = x.wrapping_add(std::hint::black_box(i));
        }
        std::hint::black_box(x);
        assert!(
            super::cpu_seconds().unwrap() > start,
            "busy work shows as CPU time"
        );
    }

    #[test]
    fn rss_is_read_on_linux_and_below_the_peak() {
        let rss = super::rss_bytes().expect("VmRSS in /proc/self/status");
        let peak = super::peak_rss_kb().expect("VmHWM") * 1024;
        assert!(rss > 100 * 1024 && rss <= peak, "rss {rss}, peak {peak}");
    }

    #[test]
    fn peak_rss_is_read_on_linux() {
        let kb = super::peak_rss_kb().expect("VmHWM in /proc/self/status");
        assert!(kb > 100, "{kb}");
    }
}
