//! Kafka Connect's loggers (`/admin/loggers`) over ferry's log filter: a logger is a
//! tracing target (`ferry::worker`, `librdkafka`), `root` is the filter's default level,
//! and setting a level rebuilds the `EnvFilter` behind a reload handle, so the change takes
//! effect at once. The semantics are Connect's `Loggers` (log4j): a level set on a
//! namespace applies to it and to every known logger whose name starts with it; only
//! levels that change get a `last_modified` time.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};

use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::{EnvFilter, Registry, reload};

/// The name of the root logger, as in log4j (matched without regard to case).
pub const ROOT: &str = "root";

/// A log4j level, as Connect's API names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    All,
    Trace,
    Debug,
    Info,
    Warn,
    Error,
    Fatal,
    Off,
}

impl Level {
    /// Connect's `Level.toLevel(name.toUpperCase())`: log4j's names, any case.
    pub fn parse(name: &str) -> Option<Level> {
        Some(match name.trim().to_ascii_uppercase().as_str() {
            "ALL" => Level::All,
            "TRACE" => Level::Trace,
            "DEBUG" => Level::Debug,
            "INFO" => Level::Info,
            "WARN" => Level::Warn,
            "ERROR" => Level::Error,
            "FATAL" => Level::Fatal,
            "OFF" => Level::Off,
            _ => return None,
        })
    }

    /// The tracing level it filters at: tracing has no FATAL (→ ERROR) and no ALL (→ TRACE).
    pub fn filter(self) -> LevelFilter {
        match self {
            Level::All | Level::Trace => LevelFilter::TRACE,
            Level::Debug => LevelFilter::DEBUG,
            Level::Info => LevelFilter::INFO,
            Level::Warn => LevelFilter::WARN,
            Level::Error | Level::Fatal => LevelFilter::ERROR,
            Level::Off => LevelFilter::OFF,
        }
    }

    fn of_filter(f: LevelFilter) -> Level {
        match f {
            LevelFilter::TRACE => Level::Trace,
            LevelFilter::DEBUG => Level::Debug,
            LevelFilter::INFO => Level::Info,
            LevelFilter::WARN => Level::Warn,
            LevelFilter::ERROR => Level::Error,
            _ => Level::Off,
        }
    }

    fn directive(self) -> &'static str {
        match self.filter() {
            LevelFilter::TRACE => "trace",
            LevelFilter::DEBUG => "debug",
            LevelFilter::INFO => "info",
            LevelFilter::WARN => "warn",
            LevelFilter::ERROR => "error",
            _ => "off",
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Level::All => "ALL",
            Level::Trace => "TRACE",
            Level::Debug => "DEBUG",
            Level::Info => "INFO",
            Level::Warn => "WARN",
            Level::Error => "ERROR",
            Level::Fatal => "FATAL",
            Level::Off => "OFF",
        })
    }
}

/// Connect's `LoggerLevel`: the level (explicit or inherited) and when the API last
/// changed it (epoch ms).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LoggerLevel {
    pub level: String,
    pub last_modified: Option<i64>,
}

/// Why a level change was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LoggerError {
    #[error(
        "Logger name `{0}` cannot be used: a tracing target has no whitespace, commas, `=`, quotes, brackets or braces"
    )]
    BadName(String),
    #[error("the log filter could not be rebuilt: {0}")]
    Filter(String),
}

/// The filter's levels, as loggers.
#[derive(Debug, Clone, PartialEq, Eq)]
struct State {
    root: Level,
    /// Targets with a level of their own.
    explicit: BTreeMap<String, Level>,
    /// Directives that are not `target=level` (span and field filters), kept as written.
    other: Vec<String>,
    modified: BTreeMap<String, i64>,
}

impl State {
    /// Reads `RUST_LOG`'s syntax as far as loggers go (`EnvFilter` splits on commas too).
    fn parse(text: &str) -> State {
        let mut s = State {
            // No default directive: EnvFilter lets nothing else through.
            root: Level::Off,
            explicit: BTreeMap::new(),
            other: Vec::new(),
            modified: BTreeMap::new(),
        };
        for d in text.split(',').map(str::trim).filter(|d| !d.is_empty()) {
            if d.contains('[') {
                s.other.push(d.to_string());
            } else if let Some((target, level)) = d.rsplit_once('=') {
                match level.trim().parse::<LevelFilter>() {
                    Ok(l) => {
                        s.explicit
                            .insert(target.trim().to_string(), Level::of_filter(l));
                    }
                    Err(_) => s.other.push(d.to_string()),
                }
            } else if let Ok(l) = d.parse::<LevelFilter>() {
                s.root = Level::of_filter(l);
            } else {
                // A bare target is enabled at every level.
                s.explicit.insert(d.to_string(), Level::Trace);
            }
        }
        s
    }

    fn filter_text(&self) -> String {
        let mut parts = vec![self.root.directive().to_string()];
        parts.extend(
            self.explicit
                .iter()
                .map(|(t, l)| format!("{t}={}", l.directive())),
        );
        parts.extend(self.other.iter().cloned());
        parts.join(",")
    }

    /// The level a logger has: its own, else that of the longest explicit target it starts
    /// with (EnvFilter's most specific match), else root's.
    fn effective(&self, name: &str) -> Level {
        if name.eq_ignore_ascii_case(ROOT) {
            return self.root;
        }
        self.explicit
            .iter()
            .filter(|(t, _)| name.starts_with(t.as_str()))
            .max_by_key(|(t, _)| t.len())
            .map_or(self.root, |(_, l)| *l)
    }

    fn level_of(&self, name: &str) -> LoggerLevel {
        let key = if name.eq_ignore_ascii_case(ROOT) {
            ROOT
        } else {
            name
        };
        LoggerLevel {
            level: self.effective(name).to_string(),
            last_modified: self.modified.get(key).copied(),
        }
    }

    /// Connect's `Loggers.setLevel`: the namespace and every known logger under it; those
    /// whose level differs get it (and a time). Returns every logger affected, sorted.
    fn set(
        &mut self,
        namespace: &str,
        level: Level,
        known: &BTreeSet<String>,
        now: i64,
    ) -> Vec<String> {
        let root = namespace.eq_ignore_ascii_case(ROOT);
        let mut affected: Vec<String> = Vec::new();
        if root {
            affected.push(ROOT.to_string());
        } else {
            affected.push(namespace.to_string());
        }
        affected.extend(
            known
                .iter()
                .filter(|k| root || (k.starts_with(namespace) && k.as_str() != namespace))
                .cloned(),
        );
        // The namespace first: its children then inherit the new level and need no level
        // of their own unless one of theirs differs.
        for name in &affected {
            if self.effective(name) == level {
                continue;
            }
            if name == ROOT {
                self.root = level;
            } else {
                self.explicit.insert(name.clone(), level);
            }
            self.modified.insert(name.clone(), now);
        }
        affected.sort();
        affected.dedup();
        affected
    }
}

/// Locks a mutex; a poisoned lock still holds usable data.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The process's loggers: the reload handle of the installed filter, the targets seen so
/// far and the levels set.
pub struct Loggers {
    handle: reload::Handle<EnvFilter, Registry>,
    seen: Arc<Mutex<BTreeSet<&'static str>>>,
    state: Mutex<State>,
}

impl fmt::Debug for Loggers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Loggers")
            .field("filter", &lock(&self.state).filter_text())
            .finish_non_exhaustive()
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

impl Loggers {
    pub(super) fn new(
        handle: reload::Handle<EnvFilter, Registry>,
        seen: Arc<Mutex<BTreeSet<&'static str>>>,
        filter: &str,
    ) -> Self {
        Self {
            handle,
            seen,
            state: Mutex::new(State::parse(filter)),
        }
    }

    fn known(&self, state: &State) -> BTreeSet<String> {
        lock(&self.seen)
            .iter()
            .map(|t| t.to_string())
            .chain(state.explicit.keys().cloned())
            .collect()
    }

    /// `GET /admin/loggers`: the loggers with a level of their own, and root.
    pub fn all(&self) -> BTreeMap<String, LoggerLevel> {
        let state = lock(&self.state);
        let mut out: BTreeMap<String, LoggerLevel> = state
            .explicit
            .keys()
            .map(|k| (k.clone(), state.level_of(k)))
            .collect();
        out.insert(ROOT.to_string(), state.level_of(ROOT));
        out
    }

    /// `GET /admin/loggers/{name}`: root, a logger with a level, or a target ferry has
    /// logged at (its inherited level); None for a name nothing knows.
    pub fn level(&self, name: &str) -> Option<LoggerLevel> {
        let state = lock(&self.state);
        let known = name.eq_ignore_ascii_case(ROOT)
            || state.explicit.contains_key(name)
            || lock(&self.seen).contains(name);
        known.then(|| state.level_of(name))
    }

    /// `PUT /admin/loggers/{name}`: sets the level of a namespace and its loggers and
    /// applies the new filter; returns the loggers affected, sorted.
    pub fn set(&self, namespace: &str, level: Level) -> Result<Vec<String>, LoggerError> {
        check_name(namespace)?;
        let mut state = lock(&self.state);
        let known = self.known(&state);
        let mut next = state.clone();
        let affected = next.set(namespace, level, &known, now_ms());
        let filter = EnvFilter::builder()
            .parse(next.filter_text())
            .map_err(|e| LoggerError::Filter(e.to_string()))?;
        self.handle
            .reload(filter)
            .map_err(|e| LoggerError::Filter(e.to_string()))?;
        // The `log` crate's own gate (librdkafka's lines come through it) follows the
        // filter's new maximum.
        {
            use tracing_log::AsLog;
            tracing_log::log::set_max_level(LevelFilter::current().as_log());
        }
        *state = next;
        tracing::info!(namespace, level = %level, loggers = affected.len(), "Log level set for a namespace and its children.");
        Ok(affected)
    }
}

/// A namespace a log filter can name.
pub fn check_name(namespace: &str) -> Result<(), LoggerError> {
    let bad = |c: char| c.is_whitespace() || ",=\"'[]{}".contains(c);
    if namespace.is_empty() || namespace.contains(bad) {
        return Err(LoggerError::BadName(namespace.to_string()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn known(names: &[&str]) -> BTreeSet<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn rust_log_reads_as_loggers() {
        let s = State::parse("info,librdkafka=warn, ferry::worker=debug,hyper,[span{a=1}]=trace");
        assert_eq!(s.root, Level::Info);
        assert_eq!(s.explicit.get("librdkafka"), Some(&Level::Warn));
        assert_eq!(s.explicit.get("ferry::worker"), Some(&Level::Debug));
        assert_eq!(s.explicit.get("hyper"), Some(&Level::Trace));
        assert_eq!(s.other, vec!["[span{a=1}]=trace".to_string()]);
        assert_eq!(s.effective("ferry::worker::poll"), Level::Debug);
        assert_eq!(s.effective("ferry::herder"), Level::Info);
        assert_eq!(s.effective("ROOT"), Level::Info);
        assert_eq!(State::parse("ferry=debug").root, Level::Off);
        // Rebuilt as written, and EnvFilter takes it.
        let text = s.filter_text();
        assert_eq!(
            text,
            "info,ferry::worker=debug,hyper=trace,librdkafka=warn,[span{a=1}]=trace"
        );
        EnvFilter::builder().parse(&text).unwrap();
    }

    #[test]
    fn connect_level_names_map_to_tracing_levels() {
        assert_eq!(Level::parse("debug"), Some(Level::Debug));
        assert_eq!(Level::parse("FATAL").unwrap().filter(), LevelFilter::ERROR);
        assert_eq!(Level::parse("all").unwrap().filter(), LevelFilter::TRACE);
        assert_eq!(Level::parse("Off").unwrap().filter(), LevelFilter::OFF);
        assert_eq!(Level::parse("VERBOSE"), None);
        assert_eq!(Level::Fatal.to_string(), "FATAL");
    }

    #[test]
    fn a_namespace_and_its_children_change_and_only_changes_are_timed() {
        let mut s = State::parse("info,librdkafka=warn,ferry::worker::poll=trace");
        let k = known(&[
            "ferry::worker",
            "ferry::worker::poll",
            "ferry::herder",
            "librdkafka",
        ]);
        let affected = s.set("ferry::worker", Level::Debug, &k, 7);
        assert_eq!(affected, vec!["ferry::worker", "ferry::worker::poll"]);
        assert_eq!(s.explicit.get("ferry::worker"), Some(&Level::Debug));
        assert_eq!(s.explicit.get("ferry::worker::poll"), Some(&Level::Debug));
        assert_eq!(s.level_of("ferry::worker").last_modified, Some(7));
        assert_eq!(s.level_of("ferry::herder").last_modified, None);
        // Already at that level: listed, not timed again.
        let affected = s.set("ferry::worker", Level::Debug, &k, 9);
        assert_eq!(affected.len(), 2);
        assert_eq!(s.level_of("ferry::worker").last_modified, Some(7));
        // A namespace nobody has logged at is created.
        assert_eq!(s.set("tower", Level::Error, &k, 10), vec!["tower"]);
        // Root: every known logger and root.
        let affected = s.set("ROOT", Level::Warn, &k, 11);
        assert!(affected.contains(&"root".to_string()), "{affected:?}");
        assert!(
            affected.contains(&"ferry::herder".to_string()),
            "{affected:?}"
        );
        assert_eq!(s.root, Level::Warn);
        assert_eq!(s.effective("ferry::worker::poll"), Level::Warn);
        assert_eq!(s.effective("librdkafka"), Level::Warn);
    }
}
