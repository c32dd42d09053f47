//! What is measured when the page is rendered: the process's memory and CPU time, and how
//! long the Kerberos ticket has left.

use std::time::SystemTime;

use metrics::Gauge;

use crate::telemetry;

pub(crate) struct ProcessGauges {
    pub(crate) rss: Gauge,
    pub(crate) cpu: Gauge,
}

impl ProcessGauges {
    /// Reads /proc now; a value that cannot be read keeps the last one.
    pub(crate) fn refresh(&self) {
        if let Some(bytes) = telemetry::rss_bytes() {
            self.rss.set(bytes as f64);
        }
        if let Some(seconds) = telemetry::cpu_seconds() {
            self.cpu.set(seconds);
        }
    }
}

/// Seconds from now to `t`, negative once it has passed.
pub(crate) fn seconds_until(t: SystemTime) -> f64 {
    match t.duration_since(SystemTime::now()) {
        Ok(left) => left.as_secs_f64().round(),
        Err(past) => -past.duration().as_secs_f64().round(),
    }
}
