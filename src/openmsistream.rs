//! `ferry openmsistream download`: OpenMSIStream's `DataFileDownloadDirectory` command as a
//! drop-in. Reads OpenMSIStream's own config file and turns it, with the command's
//! arguments, into a worker and a connector configuration in memory (pure: the
//! environment comes in through [`Environment`], the new group id from the caller).
//!
//! OpenMSIStream's config file (openmsistream `utilities/config_file_parser.py`,
//! `kafka_wrapper/config_file_parser.py`): Python `configparser` sections; `[broker]` holds
//! the connection settings, `[consumer]` the consumer's; a value that starts with `$` is
//! expanded from the environment (`os.path.expandvars`) and it is an error when that
//! changes nothing; `group.id = create_new` (and `--consumer_group_id`'s default,
//! `create_new`) means a new group id each run; `auto.offset.reset = none` is dropped.
//! The parser is ferry's own (a few lines) so that errors can name `file:line`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::config::PropertiesFile;
use crate::config::providers::Environment;

/// The command's arguments, as OpenMSIStream spells them.
#[derive(Debug, Clone, clap::Args)]
pub struct DownloadArgs {
    /// Directory the files are rebuilt in (OpenMSIStream's output_dir).
    #[arg(value_name = "DIR")]
    pub output_dir: PathBuf,
    /// OpenMSIStream's config file ([broker] and [consumer] sections).
    #[arg(long, value_name = "FILE")]
    pub config: PathBuf,
    /// The topic the files were uploaded to.
    #[arg(long = "topic_name", value_name = "TOPIC")]
    pub topic_name: String,
    /// Parallel tasks (OpenMSIStream's consumer threads).
    #[arg(long = "n_threads", default_value_t = 2, value_name = "N",
          value_parser = clap::value_parser!(u32).range(1..))]
    pub n_threads: u32,
    /// Consumer group; `create_new` (the default) makes a new one each run, as
    /// OpenMSIStream does: every run then reads the topic from auto.offset.reset.
    #[arg(long = "consumer_group_id", value_name = "ID")]
    pub consumer_group_id: Option<String>,
    /// Only files whose `<subdir>/<filename>` matches this regular expression (from its
    /// start) are rebuilt.
    #[arg(long = "download_regex", value_name = "REGEX")]
    pub download_regex: Option<String>,
    /// Topic for OpenMSIStream's heartbeat messages (none without it).
    #[arg(long = "heartbeat_topic_name", value_name = "TOPIC")]
    pub heartbeat_topic_name: Option<String>,
    /// The id in the heartbeats' keys (`<id>_heartbeat`); default: the connector's name.
    #[arg(long = "heartbeat_program_id", value_name = "ID")]
    pub heartbeat_program_id: Option<String>,
    /// Seconds between heartbeats (OpenMSIStream's default: 900).
    #[arg(long = "heartbeat_interval_secs", value_name = "SECONDS")]
    pub heartbeat_interval_secs: Option<f64>,
    /// Topic for ferry's log lines, as OpenMSIStream's log messages (none without it).
    #[arg(long = "log_topic_name", value_name = "TOPIC")]
    pub log_topic_name: Option<String>,
    /// The id in the log messages' keys (`<id>_log`); default: the connector's name.
    #[arg(long = "log_program_id", value_name = "ID")]
    pub log_program_id: Option<String>,
    /// Seconds between log messages (OpenMSIStream's default: 60).
    #[arg(long = "log_interval_secs", value_name = "SECONDS")]
    pub log_interval_secs: Option<f64>,
}

/// One `key = value` of a section, with its line.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    value: String,
    line: usize,
}

type Sections = BTreeMap<String, BTreeMap<String, Entry>>;

/// Parses Python `configparser` text: `[section]`, `key = value` or `key: value` (keys
/// lower-cased, as `optionxform` does), `#`/`;` comment lines, indented continuation lines,
/// `[DEFAULT]` inherited by every section; then expands `$` values.
fn parse(path: &Path, text: &str, env: &dyn Environment) -> Result<Sections, String> {
    let mut sections: Sections = BTreeMap::new();
    let mut current: Option<String> = None;
    let mut last_key: Option<String> = None;
    for (i, raw) in text.lines().enumerate() {
        let line_no = i + 1;
        let at = || format!("{}:{line_no}", path.display());
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.starts_with(['#', ';']) {
            if trimmed.is_empty() {
                last_key = None;
            }
            continue;
        }
        if raw.starts_with([' ', '\t'])
            && let (Some(s), Some(k)) = (&current, &last_key)
            && let Some(e) = sections.get_mut(s).and_then(|m| m.get_mut(k))
        {
            e.value.push('\n');
            e.value.push_str(trimmed);
            continue;
        }
        if let Some(name) = trimmed.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
            current = Some(name.to_string());
            sections.entry(name.to_string()).or_default();
            last_key = None;
            continue;
        }
        let Some(section) = &current else {
            return Err(format!(
                "{}: `{trimmed}` comes before any [section]; OpenMSIStream config files start with [broker]",
                at()
            ));
        };
        let Some(split) = trimmed.find(['=', ':']) else {
            return Err(format!(
                "{}: `{trimmed}` is not `key = value`; fix or remove the line",
                at()
            ));
        };
        let key = trimmed[..split].trim().to_lowercase();
        let value = trimmed[split + 1..].trim().to_string();
        sections.entry(section.clone()).or_default().insert(
            key.clone(),
            Entry {
                value,
                line: line_no,
            },
        );
        last_key = Some(key);
    }
    if let Some(defaults) = sections.remove("DEFAULT") {
        for entries in sections.values_mut() {
            for (k, v) in &defaults {
                entries.entry(k.clone()).or_insert_with(|| v.clone());
            }
        }
    }
    for (name, entries) in &mut sections {
        for (key, e) in entries.iter_mut() {
            if e.value.starts_with('$') {
                e.value = expand(&e.value, env).map_err(|var| {
                    format!(
                        "{}:{}: [{name}] {key}: environment variable {var} is not set; export it before running (OpenMSIStream expands values that start with `$`)",
                        path.display(),
                        e.line
                    )
                })?;
            }
        }
    }
    Ok(sections)
}

/// `os.path.expandvars` for `$NAME` and `${NAME}`; `Err(name)` for an unset variable
/// (OpenMSIStream refuses a value that expands to itself).
fn expand(value: &str, env: &dyn Environment) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = value;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        let (name, len) = if let Some(inner) = after.strip_prefix('{') {
            match inner.find('}') {
                Some(end) => (&inner[..end], end + 2),
                None => ("", 0),
            }
        } else {
            let end = after
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(after.len());
            (&after[..end], end)
        };
        if name.is_empty() {
            out.push('$');
            rest = after;
            continue;
        }
        out.push_str(&env.var(name).ok_or_else(|| name.to_string())?);
        rest = &after[len..];
    }
    out.push_str(rest);
    Ok(out)
}

/// The worker and connector configurations for a download, as properties files held in
/// memory (keys located at their lines of the OpenMSIStream config file), and INFO lines.
#[derive(Debug)]
pub struct Download {
    pub worker: PropertiesFile,
    pub connector: PropertiesFile,
    pub notes: Vec<String>,
}

/// Builds the run from the arguments and the config file's text. `new_group` is the id a
/// `create_new` group gets.
pub fn build(
    args: &DownloadArgs,
    text: &str,
    env: &dyn Environment,
    new_group: &str,
) -> Result<Download, String> {
    let path = &args.config;
    let sections = parse(path, text, env)?;
    if sections.contains_key("kafkacrypto") {
        return Err(format!(
            "{}: [kafkacrypto]: ferry does not decrypt KafkaCrypto messages; run OpenMSIStream's own downloader for encrypted topics",
            path.display()
        ));
    }
    let Some(broker) = sections.get("broker") else {
        return Err(format!(
            "{}: no [broker] section; OpenMSIStream config files give bootstrap.servers there",
            path.display()
        ));
    };
    let empty = BTreeMap::new();
    let consumer = sections.get("consumer").unwrap_or(&empty);
    let mut worker = PropertiesFile {
        path: path.clone(),
        entries: BTreeMap::new(),
        lines: BTreeMap::new(),
        duplicates: Vec::new(),
    };
    let put = |file: &mut PropertiesFile, key: String, value: String, line: Option<usize>| {
        if let Some(l) = line {
            file.lines.insert(key.clone(), l);
        }
        file.entries.insert(key, value);
    };
    for (k, e) in broker {
        put(&mut worker, k.clone(), e.value.clone(), Some(e.line));
    }
    let mut group = args.consumer_group_id.clone();
    for (k, e) in consumer {
        match k.as_str() {
            "group.id" => {
                group.get_or_insert_with(|| e.value.clone());
            }
            // OpenMSIStream's own (de)serializer names; ferry reads the chunks itself.
            "key.deserializer" => {}
            "value.deserializer" if e.value == "DataFileChunkDeserializer" => {}
            "value.deserializer" => {
                return Err(format!(
                    "{}:{}: [consumer] value.deserializer = {}: ferry openmsistream download reads DataFileChunkDeserializer topics only",
                    path.display(),
                    e.line,
                    e.value
                ));
            }
            // ferry commits offsets itself, only for chunks on disk.
            "enable.auto.commit" => {}
            "auto.offset.reset" if e.value == "none" => {}
            _ => put(
                &mut worker,
                format!("consumer.{k}"),
                e.value.clone(),
                Some(e.line),
            ),
        }
    }
    let mut notes = Vec::new();
    let group = match group {
        Some(g) if !g.eq_ignore_ascii_case("create_new") => g,
        _ => {
            notes.push(format!(
                "group.id create_new: reading with the new consumer group {new_group}, from auto.offset.reset, as OpenMSIStream does; give --consumer_group_id to resume where a run stopped"
            ));
            new_group.to_string()
        }
    };
    for (k, v) in [
        ("consumer.group.id", group.as_str()),
        (
            "key.converter",
            "org.apache.kafka.connect.converters.ByteArrayConverter",
        ),
        (
            "value.converter",
            "org.apache.kafka.connect.converters.ByteArrayConverter",
        ),
        // Chunks become committable when fsync'd; a short interval keeps a restart's
        // redelivery small.
        ("offset.flush.interval.ms", "5000"),
    ] {
        put(&mut worker, k.into(), v.into(), None);
    }
    let mut connector = PropertiesFile {
        path: PathBuf::from("ferry openmsistream download (arguments)"),
        entries: BTreeMap::new(),
        lines: BTreeMap::new(),
        duplicates: Vec::new(),
    };
    let name: String = format!("openmsistream-{}", args.topic_name)
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    let dir = args.output_dir.display().to_string();
    let tasks = args.n_threads.to_string();
    let mut pairs = vec![
        ("name", name.as_str()),
        ("connector.class", "openmsistream"),
        ("tasks.max", tasks.as_str()),
        ("topics", args.topic_name.as_str()),
        ("directory.path", dir.as_str()),
        // OpenMSIStream logs a bad message and goes on.
        ("errors.tolerance", "all"),
    ];
    if let Some(r) = &args.download_regex {
        pairs.push(("download.regex", r.as_str()));
    }
    let hb_interval = args.heartbeat_interval_secs.map(|s| s.to_string());
    let log_interval = args.log_interval_secs.map(|s| s.to_string());
    for (key, value) in [
        ("heartbeat.topic.name", &args.heartbeat_topic_name),
        ("heartbeat.program.id", &args.heartbeat_program_id),
        ("heartbeat.interval.secs", &hb_interval),
        ("log.topic.name", &args.log_topic_name),
        ("log.program.id", &args.log_program_id),
        ("log.interval.secs", &log_interval),
    ] {
        if let Some(v) = value {
            pairs.push((key, v.as_str()));
        }
    }
    for (k, v) in pairs {
        put(&mut connector, k.into(), v.into(), None);
    }
    // The heartbeat's and log's producers' own settings (OpenMSIStream's [heartbeat] and
    // [log] sections); `prefer.separate.producer` is OpenMSIStream's (ferry's producers are
    // shared when their settings are equal, separate otherwise).
    let own = [
        ("heartbeat", &args.heartbeat_topic_name),
        ("log", &args.log_topic_name),
    ];
    for (section, topic) in own {
        if topic.is_none() {
            continue;
        }
        for (k, e) in sections.get(section).unwrap_or(&empty) {
            let key = match (section, k.as_str()) {
                (_, "prefer.separate.producer" | "key.serializer" | "value.serializer") => {
                    continue;
                }
                ("log", "max.logs.per.message") => "log.max.messages".to_string(),
                ("log", "log.level") => "log.level".to_string(),
                _ => format!("{section}.producer.{k}"),
            };
            put(&mut connector, key, e.value.clone(), None);
        }
    }
    Ok(Download {
        worker,
        connector,
        notes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Env(BTreeMap<&'static str, &'static str>);
    impl Environment for Env {
        fn var(&self, name: &str) -> Option<String> {
            self.0.get(name).map(|v| v.to_string())
        }
        fn read(&self, _: &Path) -> std::io::Result<Vec<u8>> {
            Err(std::io::ErrorKind::NotFound.into())
        }
    }

    fn args(group: Option<&str>) -> DownloadArgs {
        DownloadArgs {
            output_dir: "/data/out".into(),
            config: "lab.config".into(),
            topic_name: "lab_files".into(),
            n_threads: 3,
            consumer_group_id: group.map(String::from),
            download_regex: Some(r".*\.csv".into()),
            heartbeat_topic_name: None,
            heartbeat_program_id: None,
            heartbeat_interval_secs: None,
            log_topic_name: None,
            log_program_id: None,
            log_interval_secs: None,
        }
    }

    /// OpenMSIStream's own test.config (kafka_wrapper/config_files/test.config).
    const TEST_CONFIG: &str = "[broker]\nbootstrap.servers = $KAFKA_TEST_CLUSTER_BOOTSTRAP_SERVERS\nsasl.mechanism    = PLAIN\nsecurity.protocol = SASL_SSL\nsasl.username     = $KAFKA_TEST_CLUSTER_USERNAME\nsasl.password     = $KAFKA_TEST_CLUSTER_PASSWORD\n\n[producer]\nbatch.size       = 2000000\nlinger.ms        = 100\ncompression.type = lz4\nkey.serializer   = StringSerializer\nvalue.serializer = DataFileChunkSerializer\n\n[consumer]\ngroup.id           = create_new\nauto.offset.reset  = earliest\nenable.auto.commit = False\nfetch.min.bytes    = 100000\nkey.deserializer   = StringDeserializer\nvalue.deserializer = DataFileChunkDeserializer\n";

    fn env() -> Env {
        Env(BTreeMap::from([
            ("KAFKA_TEST_CLUSTER_BOOTSTRAP_SERVERS", "b1:9092,b2:9092"),
            ("KAFKA_TEST_CLUSTER_USERNAME", "lab"),
            ("KAFKA_TEST_CLUSTER_PASSWORD", "s3cret"),
        ]))
    }

    #[test]
    fn openmsistreams_test_config_becomes_a_worker_and_a_connector() {
        let d = build(&args(None), TEST_CONFIG, &env(), "omsi-new").unwrap();
        let w = &d.worker.entries;
        assert_eq!(w["bootstrap.servers"], "b1:9092,b2:9092");
        assert_eq!(w["sasl.password"], "s3cret");
        assert_eq!(w["sasl.mechanism"], "PLAIN");
        assert_eq!(w["consumer.auto.offset.reset"], "earliest");
        assert_eq!(w["consumer.fetch.min.bytes"], "100000");
        assert_eq!(w["consumer.group.id"], "omsi-new");
        assert!(!w.contains_key("consumer.enable.auto.commit"));
        assert!(!w.contains_key("consumer.value.deserializer"));
        assert!(
            !w.keys()
                .any(|k| k.contains("serializer") || k.contains("linger"))
        );
        assert_eq!(d.worker.locate("sasl.password"), "lab.config:6");
        let c = &d.connector.entries;
        assert_eq!(c["name"], "openmsistream-lab_files");
        assert_eq!(c["tasks.max"], "3");
        assert_eq!(c["topics"], "lab_files");
        assert_eq!(c["directory.path"], "/data/out");
        assert_eq!(c["download.regex"], r".*\.csv");
        assert!(d.notes[0].contains("create_new"), "{:?}", d.notes);
        // --consumer_group_id wins over the file's group.id.
        let d = build(&args(Some("lab-archive")), TEST_CONFIG, &env(), "x").unwrap();
        assert_eq!(d.worker.entries["consumer.group.id"], "lab-archive");
        assert!(d.notes.is_empty());
    }

    #[test]
    fn heartbeat_arguments_and_section_reach_the_connector() {
        let mut a = args(Some("g"));
        a.heartbeat_topic_name = Some("heartbeats".into());
        a.heartbeat_program_id = Some("lab-dl".into());
        a.heartbeat_interval_secs = Some(30.0);
        let text = format!("{TEST_CONFIG}\n[heartbeat]\nbootstrap.servers = hb:9092\n");
        let c = build(&a, &text, &env(), "x").unwrap().connector.entries;
        assert_eq!(c["heartbeat.topic.name"], "heartbeats");
        assert_eq!(c["heartbeat.program.id"], "lab-dl");
        assert_eq!(c["heartbeat.interval.secs"], "30");
        assert_eq!(c["heartbeat.producer.bootstrap.servers"], "hb:9092");
        // Without a heartbeat topic, no heartbeat keys at all.
        let c = build(&args(None), &text, &env(), "x")
            .unwrap()
            .connector
            .entries;
        assert!(!c.keys().any(|k| k.starts_with("heartbeat.")), "{c:?}");
    }

    #[test]
    fn log_arguments_and_section_reach_the_connector() {
        let mut a = args(Some("g"));
        a.log_topic_name = Some("logs".into());
        a.log_program_id = Some("lab-dl".into());
        a.log_interval_secs = Some(2.5);
        let text = format!(
            "{TEST_CONFIG}\n[log]\nbootstrap.servers = logs:9092\nprefer.separate.producer = True\nmax.logs.per.message = 100\nlog.level = WARNING\n[heartbeat]\nacks = 1\n"
        );
        let c = build(&a, &text, &env(), "x").unwrap().connector.entries;
        assert_eq!(c["log.topic.name"], "logs");
        assert_eq!(c["log.program.id"], "lab-dl");
        assert_eq!(c["log.interval.secs"], "2.5");
        assert_eq!(c["log.producer.bootstrap.servers"], "logs:9092");
        assert_eq!(c["log.max.messages"], "100");
        assert_eq!(c["log.level"], "WARNING");
        assert!(!c.keys().any(|k| k.contains("prefer")), "{c:?}");
        // No heartbeat topic: the [heartbeat] section is not read.
        assert!(!c.keys().any(|k| k.starts_with("heartbeat.")), "{c:?}");
    }

    #[test]
    fn an_unset_variable_names_file_line_section_and_variable() {
        let err = build(&args(None), TEST_CONFIG, &Env(BTreeMap::new()), "x").unwrap_err();
        assert_eq!(
            err,
            "lab.config:2: [broker] bootstrap.servers: environment variable KAFKA_TEST_CLUSTER_BOOTSTRAP_SERVERS is not set; export it before running (OpenMSIStream expands values that start with `$`)"
        );
    }

    #[test]
    fn expansion_follows_expandvars() {
        let e = Env(BTreeMap::from([("H", "host"), ("P", "9092")]));
        assert_eq!(expand("$H:${P}", &e).unwrap(), "host:9092");
        assert_eq!(expand("$", &e).unwrap(), "$");
        assert_eq!(expand("$NOPE", &e).unwrap_err(), "NOPE");
    }

    #[test]
    fn configparser_grammar() {
        let text = "[DEFAULT]\nclient.id = lab\n[broker]\nBootstrap.Servers: h:1\n; comment\n# comment\n[consumer]\nsession.timeout.ms = 1\n  0000\n";
        let s = parse(Path::new("f"), text, &env()).unwrap();
        assert_eq!(s["broker"]["bootstrap.servers"].value, "h:1");
        assert_eq!(s["broker"]["client.id"].value, "lab");
        assert_eq!(s["consumer"]["session.timeout.ms"].value, "1\n0000");
        let err = parse(Path::new("f"), "key = v\n", &env()).unwrap_err();
        assert!(
            err.starts_with("f:1: `key = v` comes before any [section]"),
            "{err}"
        );
        let err = build(
            &args(None),
            "[broker]\nbootstrap.servers=h:1\n[kafkacrypto]\nnode_id=x\n",
            &env(),
            "x",
        )
        .unwrap_err();
        assert!(err.contains("KafkaCrypto"), "{err}");
    }
}
