//! `ferry check`: walks the path from files to sink one step at a time and prints one line
//! per step (✓ or ✗ and the cause), stopping at the first failure that would keep ferry
//! from running. Missing topics are reported but do not stop it: ferry waits for them.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::auth;
use crate::config::client::{self, ClientLayers, ClientSettings};
use crate::config::providers::SystemEnvironment;
use crate::config::{Subscription, WorkerConfig};
use crate::herder::Loaded;
use crate::kafka;

/// How long each network step may take.
const STEP_TIMEOUT: Duration = Duration::from_secs(10);

/// Writes one line to standard output; a closed pipe (`ferry check … | head`) is not an error.
fn say(line: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let _ = writeln!(std::io::stdout(), "{line}");
}

/// A directory removed when the check ends, however it ends.
#[derive(Debug)]
struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// One step's outcome.
#[derive(Debug)]
struct Report {
    failed: bool,
}

impl Report {
    fn ok(&self, step: &str, detail: impl std::fmt::Display) {
        say(format_args!("✓ {step}: {detail}"));
    }

    /// Not a failure yet, but not proven either: says what will happen.
    fn warn(&self, step: &str, detail: impl std::fmt::Display) {
        say(format_args!("⚠ {step}: {detail}"));
    }

    /// Prints a failure; `blocking` failures end the check.
    fn fail(&mut self, step: &str, cause: impl std::fmt::Display) {
        say(format_args!("✗ {step}: {cause}"));
        self.failed = true;
    }
}

/// Runs the check; false if a step failed.
pub fn run(worker_path: &Path, connector_paths: &[PathBuf]) -> bool {
    let mut r = Report { failed: false };
    let files: Vec<String> = std::iter::once(worker_path)
        .chain(connector_paths.iter().map(PathBuf::as_path))
        .map(|p| p.display().to_string())
        .collect();
    // Files: the connectors' client settings, or the worker's own without connectors.
    let (worker, mut clients, mut loaded) = if connector_paths.is_empty() {
        let worker = match WorkerConfig::load(worker_path, &SystemEnvironment) {
            Ok(w) => w,
            Err(e) => {
                r.fail("files parse", e);
                return false;
            }
        };
        let layers = ClientLayers {
            top: worker.client_top.clone(),
            consumer: worker.client_consumer.clone(),
            overrides: Default::default(),
            policy: worker.override_policy,
        };
        match client::consumer_settings(&layers) {
            Ok(s) => (worker, vec![("worker".to_string(), s)], None),
            Err(e) => {
                r.fail("files parse", e);
                return false;
            }
        }
    } else {
        match Loaded::load(worker_path, connector_paths, &SystemEnvironment) {
            Ok(l) => (l.worker.clone(), Vec::new(), Some(l)),
            Err(e) => {
                r.fail("files parse", e);
                return false;
            }
        }
    };

    // Kerberos: plan, environment (may re-exec), keytab, KDC, ticket.
    let plan = match &mut loaded {
        Some(l) => auth::prepare(l),
        None => {
            auth::kerberos::plan_clients(&worker, clients.iter_mut().map(|(n, s)| (n.as_str(), s)))
                .map_err(|e| e.to_string())
                .and_then(|plan| match plan {
                    Some(p) => auth::kerberos::enter_environment(&p).map(|()| Some(p)),
                    None => Ok(None),
                })
        }
    };
    let plan = match plan {
        Ok(p) => p,
        Err(e) => {
            r.fail("Kerberos login plan", e);
            return false;
        }
    };
    // The private credential cache lives as long as the check.
    let _cache = plan
        .as_ref()
        .map(|_| RemoveOnDrop(auth::kerberos::cache_dir()));
    // Printed only now: the plan's re-exec starts the program over.
    r.ok("files parse", files.join(", "));
    if let Some(plan) = &plan
        && !kerberos_steps(&mut r, plan)
    {
        return false;
    }
    if let Some(l) = &loaded {
        clients = l
            .connectors
            .iter()
            .map(|c| (c.name.clone(), c.consumer.clone()))
            .collect();
    }

    // Brokers: TCP, then a metadata request (which needs the SASL handshake to pass).
    let bootstrap = worker.bootstrap_servers.clone();
    let mut any_up = false;
    for b in bootstrap
        .split(',')
        .map(str::trim)
        .filter(|b| !b.is_empty())
    {
        match tcp(b) {
            Ok(()) => {
                any_up = true;
                r.ok("broker reachable", b);
            }
            Err(e) => r.fail("broker reachable", format!("{b}: {e}")),
        }
    }
    if !any_up {
        return false;
    }
    let mut topics = Vec::new();
    for (name, settings) in &clients {
        match metadata(name, settings, worker.status_interval) {
            Ok(t) => {
                r.ok(
                    "brokers answer",
                    format!(
                        "{} for {name} ({} topics visible)",
                        describe_security(settings),
                        t.len()
                    ),
                );
                topics = t;
            }
            Err(e) => {
                r.fail("brokers answer", format!("{name}: {e}"));
                return false;
            }
        }
    }

    if let Some(l) = &loaded {
        for c in &l.connectors {
            topics_step(&mut r, &c.name, &c.subscription, &topics);
        }
        let rt = match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(rt) => rt,
            Err(e) => {
                r.fail(
                    "sink reachable",
                    format!("cannot start the async runtime: {e}"),
                );
                return false;
            }
        };
        for c in &l.connectors {
            let checked = rt.block_on(async {
                tokio::time::timeout(Duration::from_secs(30), c.connector.preflight()).await
            });
            match checked {
                Ok(Ok(())) => r.ok("sink ready", format!("{} ({})", c.name, c.class)),
                Ok(Err(e)) => {
                    r.fail("sink ready", format!("{}: {}", c.name, e.one_line()));
                    return false;
                }
                Err(_) => {
                    r.fail("sink ready", format!("{}: no answer within 30s", c.name));
                    return false;
                }
            }
        }
    }
    !r.failed
}

#[cfg(feature = "kerberos")]
fn kerberos_steps(r: &mut Report, plan: &auth::kerberos::KerberosPlan) -> bool {
    use auth::login;
    match login::check_keytab(plan) {
        Ok(d) => r.ok("keytab", d),
        Err(e) => {
            r.fail("keytab", e);
            return false;
        }
    }
    match login::check_kdcs(plan) {
        Ok(login::KdcCheck::Answers(d)) => r.ok("KDC reachable", d),
        Ok(login::KdcCheck::NotListed(d)) => r.warn("KDC reachable", d),
        Err(e) => {
            r.fail("KDC reachable", e);
            return false;
        }
    }
    match login::acquire_ticket(plan) {
        Ok(expires) => {
            r.ok(
                "ticket acquired",
                format!("{}, expires {}", plan.principal, login::rfc3339(expires)),
            );
            true
        }
        Err(e) => {
            r.fail("ticket acquired", e);
            false
        }
    }
}

#[cfg(not(feature = "kerberos"))]
fn kerberos_steps(r: &mut Report, plan: &auth::kerberos::KerberosPlan) -> bool {
    r.fail(
        "Kerberos",
        format!("{}: built without the kerberos feature", plan.source),
    );
    false
}

fn tcp(hostport: &str) -> Result<(), String> {
    use std::net::ToSocketAddrs;
    let addrs: Vec<_> = hostport
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve: {e}"))?
        .collect();
    let mut last = String::from("no address");
    for a in addrs {
        match std::net::TcpStream::connect_timeout(&a, Duration::from_secs(3)) {
            Ok(_) => return Ok(()),
            Err(e) => last = format!("{a}: {e}"),
        }
    }
    Err(last)
}

fn metadata(
    name: &str,
    settings: &ClientSettings,
    status_interval: Duration,
) -> Result<Vec<String>, String> {
    let client = kafka::ConsumerClient::from_settings(name, settings, None, status_interval)
        .map_err(|e| e.to_string())?;
    kafka::probe(client.consumer(), STEP_TIMEOUT).map_err(|e| e.to_string())
}

fn describe_security(settings: &ClientSettings) -> String {
    let protocol = settings.get("security.protocol").unwrap_or("PLAINTEXT");
    match settings.get("sasl.mechanisms") {
        Some(m) if protocol.to_ascii_uppercase().starts_with("SASL") => format!("{protocol}/{m}"),
        _ => protocol.to_string(),
    }
}

fn topics_step(r: &mut Report, connector: &str, subscription: &Subscription, topics: &[String]) {
    match subscription {
        Subscription::Topics(wanted) => {
            let missing: Vec<&String> = wanted.iter().filter(|t| !topics.contains(t)).collect();
            if missing.is_empty() {
                r.ok(
                    "topics visible",
                    format!("{connector}: {}", wanted.join(", ")),
                );
            } else {
                // Not blocking: ferry waits for topics to appear, as Kafka Connect does.
                say(format_args!(
                    "✗ topics visible: {connector}: {} not found (ferry would wait for them; check the names and the principal's ACLs)",
                    missing
                        .iter()
                        .map(|s| s.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
        }
        Subscription::Regex(re) => {
            let matched: Vec<&String> = topics.iter().filter(|t| subscription.matches(t)).collect();
            if matched.is_empty() {
                say(format_args!(
                    "✗ topics visible: {connector}: no topic matches topics.regex={} (ferry would wait for one)",
                    re.as_str()
                ));
            } else {
                r.ok(
                    "topics visible",
                    format!("{connector}: {} match topics.regex", matched.len()),
                );
            }
        }
    }
}
