//! `ferry validate`: the worker and connector files checked and shown as ferry reads them,
//! without connecting to anything (a distributed worker file as `ferry distributed` reads
//! it).

use std::path::PathBuf;
use std::process::ExitCode;

use super::{connector_files, fail};
use crate::config::distributed::DistributedConfig;
use crate::config::notes::{Note, NoteKind};
use crate::config::providers::SystemEnvironment;
use crate::config::secret::display_value;
use crate::herder::Loaded;
use crate::kafka;
use crate::telemetry::LogFormat;

pub(super) fn validate(files: &[PathBuf], distributed: bool, format: LogFormat) -> ExitCode {
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
