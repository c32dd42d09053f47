//! The process's own log lines, for connectors that ship them somewhere (OpenMSIStream's log
//! topic): the runtime's logging writes each line it prints (at the levels its filter lets
//! through, `RUST_LOG` and `/admin/loggers`) into one bounded ring; a [`LogReader`] takes
//! the lines written since its previous read.
//!
//! This is OpenMSIStream's `LoggingHandler` (openmsistream `utilities/log_handler.py`): one
//! process-wide ring buffer, small (128 lines) until a reader asks for more, so that the
//! lines of the start are there for the first read; a reader that falls more than the ring's
//! size behind loses the oldest lines and is told how many. Unlike OpenMSIStream's, the ring
//! lets go of the lines every reader has read: it holds one interval's lines, not its size.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Mutex, MutexGuard};

/// A line's level, most severe first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    Error,
    Warn,
    Info,
    Debug,
    Trace,
}

impl LogLevel {
    /// Python's level names (OpenMSIStream's `log.level`) and Rust's: `ERROR`, `WARNING`,
    /// `WARN`, `INFO`, `DEBUG`, `TRACE`; `CRITICAL`/`FATAL` are `ERROR`. Case-insensitive.
    pub fn parse(name: &str) -> Option<Self> {
        match name.trim().to_ascii_uppercase().as_str() {
            "CRITICAL" | "FATAL" | "ERROR" => Some(Self::Error),
            "WARNING" | "WARN" => Some(Self::Warn),
            "INFO" => Some(Self::Info),
            "DEBUG" => Some(Self::Debug),
            "TRACE" | "NOTSET" => Some(Self::Trace),
            _ => None,
        }
    }
}

/// Lines kept before any reader asks for more (OpenMSIStream's initial ring).
const INITIAL: usize = 128;
/// No reader gets a ring larger than this.
const MAX: usize = 1 << 20;
/// A line longer than this is cut (with `…`), so that the ring's memory stays bounded.
const MAX_LINE: usize = 8192;

struct Ring {
    lines: VecDeque<(LogLevel, String)>,
    /// Sequence number of `lines[0]`.
    first: u64,
    capacity: usize,
    /// Each live reader's id, its next line and the lines it asked the ring to keep.
    readers: BTreeMap<u64, (u64, usize)>,
    next_reader: u64,
}

impl Ring {
    /// The capacity the live readers ask for, and drops the lines they have all read (none
    /// without readers: the start's lines wait for the first one).
    fn settle(&mut self) {
        self.capacity = self
            .readers
            .values()
            .map(|(_, keep)| *keep)
            .max()
            .unwrap_or(INITIAL)
            .max(INITIAL);
        if let Some(read) = self.readers.values().map(|(next, _)| *next).min() {
            while self.first < read && self.lines.pop_front().is_some() {
                self.first += 1;
            }
        }
        while self.lines.len() > self.capacity {
            self.lines.pop_front();
            self.first += 1;
        }
    }
}

static RING: Mutex<Ring> = Mutex::new(Ring {
    lines: VecDeque::new(),
    first: 0,
    capacity: INITIAL,
    readers: BTreeMap::new(),
    next_reader: 0,
});

fn ring() -> MutexGuard<'static, Ring> {
    // A panic while holding the lock cannot leave the ring inconsistent (each change is
    // one push or pop): carry on with it.
    RING.lock().unwrap_or_else(|p| p.into_inner())
}

/// Keeps one line (the runtime's logging calls this for every line it prints).
pub fn push(level: LogLevel, mut line: String) {
    if line.len() > MAX_LINE {
        let mut cut = MAX_LINE;
        while !line.is_char_boundary(cut) {
            cut -= 1;
        }
        line.truncate(cut);
        line.push('…');
    }
    let mut r = ring();
    r.lines.push_back((level, line));
    while r.lines.len() > r.capacity {
        r.lines.pop_front();
        r.first += 1;
    }
}

/// Reads the lines written since its previous read; the ring keeps what it has not read.
#[derive(Debug)]
pub struct LogReader {
    id: u64,
    next: u64,
    level: LogLevel,
}

/// What one read returns.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct LogLines {
    pub lines: Vec<String>,
    /// Lines that fell out of the ring before this reader got to them.
    pub missed: u64,
}

impl LogReader {
    /// A reader of the lines at `level` and more severe, from the oldest line still kept
    /// (the start's lines, when it is made early). The ring keeps at least `keep` lines
    /// from now on (OpenMSIStream's `max.logs.per.message`, 65536 by default).
    pub fn new(keep: usize, level: LogLevel) -> Self {
        let mut r = ring();
        let id = r.next_reader;
        r.next_reader += 1;
        let next = r.first;
        r.readers.insert(id, (next, keep.min(MAX)));
        r.settle();
        LogReader { id, next, level }
    }

    /// The lines written since the previous read.
    pub fn read(&mut self) -> LogLines {
        let mut r = ring();
        let missed = r.first.saturating_sub(self.next);
        let skip = self.next.saturating_sub(r.first) as usize;
        let lines = r
            .lines
            .iter()
            .skip(skip)
            .filter(|(l, _)| *l <= self.level)
            .map(|(_, s)| s.clone())
            .collect();
        self.next = r.first + r.lines.len() as u64;
        if let Some(reader) = r.readers.get_mut(&self.id) {
            reader.0 = self.next;
        }
        r.settle();
        LogLines { lines, missed }
    }
}

impl Drop for LogReader {
    fn drop(&mut self) {
        let mut r = ring();
        r.readers.remove(&self.id);
        r.settle();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // One test: the ring is process-wide.
    #[test]
    fn readers_get_each_line_once_at_their_level_and_count_what_they_missed() {
        let mut a = LogReader::new(4, LogLevel::Info);
        push(LogLevel::Info, "one".into());
        push(LogLevel::Debug, "quiet".into());
        push(LogLevel::Error, "two".into());
        let mut b = LogReader::new(0, LogLevel::Trace);
        let got = a.read();
        assert_eq!(got.lines, ["one", "two"]);
        assert_eq!(got.missed, 0);
        assert_eq!(a.read(), LogLines::default());
        // `b` came later and still gets the lines it has not read.
        assert_eq!(b.read().lines, ["one", "quiet", "two"]);
        assert_eq!(
            ring().lines.len(),
            0,
            "lines every reader has read are let go"
        );
        for i in 0..200 {
            push(LogLevel::Warn, format!("w{i}"));
        }
        // The ring kept `INITIAL` (128) lines: both readers missed the first 72.
        let got = a.read();
        assert_eq!(got.missed, 72);
        assert_eq!(got.lines.first().map(String::as_str), Some("w72"));
        assert_eq!(got.lines.len(), 128);
        assert_eq!(ring().lines.len(), 128, "b has not read them yet");
        drop(b);
        assert_eq!(ring().lines.len(), 0);
        push(LogLevel::Info, "é".repeat(MAX_LINE));
        let long = &a.read().lines;
        assert!(long.last().unwrap().len() <= MAX_LINE + '…'.len_utf8());
        drop(a);
        // Without readers the ring keeps the last `INITIAL` lines for the next one.
        for i in 0..300 {
            push(LogLevel::Info, format!("i{i}"));
        }
        assert_eq!(ring().lines.len(), INITIAL);
        assert_eq!(LogLevel::parse("warning"), Some(LogLevel::Warn));
        assert_eq!(LogLevel::parse("loud"), None);
    }
}
