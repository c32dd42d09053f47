//! Kerberos from the worker file alone: which connectors ferry logs in for, and the
//! process environment that points MIT Kerberos at the keytab and a private cache.
//!
//! librdkafka authenticates with GSSAPI through Cyrus SASL, which takes its credentials
//! from MIT Kerberos' defaults: the credential cache in `KRB5CCNAME` and, when that holds
//! no valid ticket, the client keytab in `KRB5_CLIENT_KTNAME` (MIT's client-keytab
//! initiation). So instead of librdkafka's `kinit` subprocess, ferry gives each process
//! its own cache file, names the keytab there, turns librdkafka's `kinit` off
//! (`sasl.kerberos.min.time.before.relogin=0`), logs in itself ([`super::login`]) and
//! renews before expiry. The user's default credential cache is never read or written.
//!
//! The environment must be in place before any thread starts, and Rust cannot change a
//! running process's environment safely, so ferry re-executes itself once with it set
//! ([`enter_environment`]); the PID stays the same.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::config::client::{ClientProp, ClientSettings};
use crate::config::{ConfigFileError, ConnectorConfig, WorkerConfig};

/// The native keytab login this process makes for its GSSAPI connectors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KerberosPlan {
    /// The client principal, e.g. `pitt-reader@KAFKA.SECURE`.
    pub principal: String,
    /// The keytab holding its key, as written in the JAAS entry.
    pub keytab: PathBuf,
    /// Where the JAAS entry is: `file:line key`.
    pub source: String,
    /// `ferry.krb5.conf`, if set.
    pub krb5_conf: Option<PathBuf>,
    /// The service the brokers run as (`sasl.kerberos.service.name`, default `kafka`).
    pub service: String,
    /// The connectors that use this login.
    pub connectors: Vec<String>,
    /// `debug=true` in the JAAS entry: MIT's trace goes to standard error.
    pub debug: bool,
}

/// librdkafka's switch for its own `kinit` refresh; 0 turns it off.
const RELOGIN_KEY: &str = "sasl.kerberos.min.time.before.relogin";

fn is_gssapi(s: &ClientSettings) -> bool {
    s.get("sasl.mechanisms")
        .is_some_and(|m| m.trim().eq_ignore_ascii_case("GSSAPI"))
        && s.get("security.protocol")
            .is_some_and(|p| p.trim().to_ascii_uppercase().starts_with("SASL_"))
}

/// Decides the keytab login for all connectors (pure: no file is read).
///
/// A connector logs in natively when it uses GSSAPI with a keytab and the user did not set
/// `sasl.kerberos.kinit.cmd` (an explicit command is honoured as librdkafka runs it).
/// Without a keytab (`useKeyTab=false`) the ticket cache in the user's `KRB5CCNAME` is
/// used as it is, like Java's `useTicketCache=true`. All native logins of one process
/// must be the same principal and keytab: MIT Kerberos has one default cache per process.
pub fn plan(
    worker: &WorkerConfig,
    connectors: &mut [ConnectorConfig],
) -> Result<Option<KerberosPlan>, ConfigFileError> {
    plan_clients(
        worker,
        connectors
            .iter_mut()
            .map(|c| (c.name.as_str(), &mut c.consumer)),
    )
}

/// The name the worker's own clients go by in a plan: in distributed mode the config
/// topic's reader and writer (and any other client of the worker itself), built from the
/// worker file's top-level keys.
pub const WORKER_CLIENTS: &str = "the worker's own clients (top-level keys)";
/// The name of the settings every connector's consumer starts from (the worker's
/// `consumer.*` over its top-level keys), planned before any connector is known.
pub const CONNECTOR_CONSUMERS: &str = "the connectors' consumers (consumer.* keys)";

/// How a named client is called in a line: a connector by its name.
fn who(name: &str) -> String {
    if name == WORKER_CLIENTS || name == CONNECTOR_CONSUMERS {
        name.to_string()
    } else {
        format!("connector {name}")
    }
}

/// Distributed mode: the login is decided from the worker file alone, before any
/// connector is read from the config topic. The worker's own clients and the settings
/// every connector's consumer starts from share the process's one login (one principal,
/// one keytab, one credential cache); a connector of the config topic may only use it
/// (see the herder).
pub fn plan_worker(worker: &WorkerConfig) -> Result<Option<KerberosPlan>, ConfigFileError> {
    let mut own = crate::herder::worker_settings(worker)?;
    let mut consumers =
        crate::config::client::consumer_settings(&crate::config::client::ClientLayers {
            top: worker.client_top.clone(),
            consumer: worker.client_consumer.clone(),
            overrides: Default::default(),
            policy: worker.override_policy,
        })?;
    plan_clients(
        worker,
        [
            (WORKER_CLIENTS, &mut own),
            (CONNECTOR_CONSUMERS, &mut consumers),
        ],
    )
}

/// [`plan`] over named client settings (a connector's, or the worker's own for
/// `ferry check` without connector files).
pub fn plan_clients<'a>(
    worker: &WorkerConfig,
    clients: impl IntoIterator<Item = (&'a str, &'a mut ClientSettings)>,
) -> Result<Option<KerberosPlan>, ConfigFileError> {
    let mut plan: Option<KerberosPlan> = None;
    for (name, s) in clients.into_iter().filter(|(_, s)| is_gssapi(s)) {
        if s.props.contains_key("sasl.kerberos.kinit.cmd") {
            continue;
        }
        let off = |s: &ClientSettings, why: &str| ClientProp {
            value: "0".into(),
            source: format!(
                "{} ({why})",
                s.props
                    .get("sasl.mechanisms")
                    .map(|p| p.source.as_str())
                    .unwrap_or("sasl.mechanism")
            ),
            passthrough: false,
        };
        let (Some(principal), Some(keytab)) = (
            s.get("sasl.kerberos.principal").map(str::to_string),
            s.get("sasl.kerberos.keytab").map(str::to_string),
        ) else {
            let prop = off(s, "ticket cache login: ferry runs no kinit");
            s.props.insert(RELOGIN_KEY.into(), prop);
            continue;
        };
        let source = s
            .props
            .get("sasl.kerberos.keytab")
            .map(|p| p.source.clone())
            .unwrap_or_default();
        let service = s
            .get("sasl.kerberos.service.name")
            .unwrap_or("kafka")
            .to_string();
        let prop = off(s, "ferry logs in from the keytab itself");
        s.props.insert(RELOGIN_KEY.into(), prop);
        match &mut plan {
            None => {
                plan = Some(KerberosPlan {
                    principal,
                    keytab: PathBuf::from(keytab),
                    source,
                    krb5_conf: worker.krb5_conf.as_ref().map(|(p, _)| p.clone()),
                    service,
                    connectors: vec![name.to_string()],
                    debug: s.kerberos_debug,
                });
            }
            Some(p) if p.principal == principal && p.keytab == Path::new(&keytab) => {
                p.connectors.push(name.to_string());
                p.debug |= s.kerberos_debug;
            }
            Some(p) => {
                return Err(ConfigFileError::Key {
                    location: source,
                    key: "sasl.jaas.config".into(),
                    reason: format!(
                        "{} logs in as {principal} ({keytab}) but {} as {} ({}); one ferry process holds one Kerberos login: run them in separate processes",
                        who(name),
                        who(&p.connectors[0]),
                        p.principal,
                        p.keytab.display()
                    ),
                });
            }
        }
    }
    Ok(plan)
}

/// The variables MIT Kerberos reads, as this process needs them.
pub fn environment(plan: &KerberosPlan, cache_dir: &Path) -> BTreeMap<&'static str, String> {
    let mut env = BTreeMap::new();
    env.insert(
        "KRB5CCNAME",
        format!("FILE:{}", cache_dir.join("krb5cc").display()),
    );
    env.insert(
        "KRB5_CLIENT_KTNAME",
        format!("FILE:{}", absolute(&plan.keytab).display()),
    );
    // The acceptor-side name lets the login check that the keytab holds the principal.
    env.insert(
        "KRB5_KTNAME",
        format!("FILE:{}", absolute(&plan.keytab).display()),
    );
    if let Some(conf) = &plan.krb5_conf {
        env.insert("KRB5_CONFIG", absolute(conf).display().to_string());
    }
    if plan.debug {
        // Java's Krb5LoginModule debug=true prints its steps; MIT's trace is the twin.
        env.insert("KRB5_TRACE", "/dev/stderr".to_string());
    }
    env
}

fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}

/// This process's private credential cache directory (the PID survives the re-exec).
pub fn cache_dir() -> PathBuf {
    std::env::temp_dir().join(format!("ferry-krb5-{}", std::process::id()))
}

/// Returns when the environment is as `plan` needs; otherwise creates the private cache
/// directory (mode 0700) and re-executes this program with the environment set, which
/// does not return unless the exec fails.
pub fn enter_environment(plan: &KerberosPlan) -> Result<(), String> {
    let dir = cache_dir();
    let wanted = environment(plan, &dir);
    let current: BTreeMap<&str, Option<String>> =
        wanted.keys().map(|k| (*k, std::env::var(k).ok())).collect();
    if wanted
        .iter()
        .all(|(k, v)| current.get(k).and_then(|c| c.as_deref()) == Some(v.as_str()))
    {
        return Ok(());
    }
    // A directory of the same name can only be left by a dead process with this PID.
    let _ = std::fs::remove_dir_all(&dir);
    {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&dir)
            .map_err(|e| {
                format!(
                    "cannot create the credential cache directory {}: {e}",
                    dir.display()
                )
            })?;
    }
    // /proc/self/exe is this very binary even if the file was replaced since it started.
    let proc_exe = Path::new("/proc/self/exe");
    let exe = if proc_exe.exists() {
        proc_exe.to_path_buf()
    } else {
        std::env::current_exe().map_err(|e| {
            format!("cannot find this program to restart it with the Kerberos environment: {e}")
        })?
    };
    let mut cmd = std::process::Command::new(exe);
    cmd.args(std::env::args_os().skip(1)).envs(&wanted);
    if let Some(arg0) = std::env::args_os().next() {
        use std::os::unix::process::CommandExt;
        cmd.arg0(arg0);
    }
    use std::os::unix::process::CommandExt;
    let err = cmd.exec();
    Err(format!(
        "cannot restart with the Kerberos environment: {err}"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::providers::SystemEnvironment;

    fn load(worker: &str, connectors: &[&str]) -> (WorkerConfig, Vec<ConnectorConfig>) {
        let dir = tempfile::tempdir().unwrap();
        let w = dir.path().join("worker.properties");
        std::fs::write(&w, worker).unwrap();
        let env = SystemEnvironment;
        let worker = WorkerConfig::load(&w, &env).unwrap();
        let cs = connectors
            .iter()
            .enumerate()
            .map(|(i, text)| {
                let p = dir.path().join(format!("c{i}.properties"));
                std::fs::write(&p, text).unwrap();
                ConnectorConfig::load(&p, &worker, &env).unwrap()
            })
            .collect();
        (worker, cs)
    }

    const ZTF_WORKER: &str = "bootstrap.servers=localhost:9092\n\
        security.protocol=SASL_PLAINTEXT\n\
        sasl.mechanism=GSSAPI\n\
        sasl.kerberos.service.name=kafka\n\
        sasl.jaas.config=com.sun.security.auth.module.Krb5LoginModule required \\\n   useKeyTab=true \\\n   keyTab=\"/etc/ferry/reader.keytab\" \\\n   principal=\"reader@KAFKA.SECURE\" \\\n   useTicketCache=false;   \n\
        ferry.krb5.conf=/etc/ferry/krb5.conf\n";

    fn connector(name: &str, extra: &str) -> String {
        format!("name={name}\nconnector.class=null\ntopics=t\n{extra}")
    }

    #[test]
    fn the_ztf_worker_file_plans_a_keytab_login_and_turns_librdkafka_kinit_off() {
        let (w, mut cs) = load(ZTF_WORKER, &[&connector("a", ""), &connector("b", "")]);
        let plan = plan(&w, &mut cs).unwrap().unwrap();
        assert_eq!(plan.principal, "reader@KAFKA.SECURE");
        assert_eq!(plan.keytab, PathBuf::from("/etc/ferry/reader.keytab"));
        assert_eq!(plan.krb5_conf, Some(PathBuf::from("/etc/ferry/krb5.conf")));
        assert_eq!(plan.service, "kafka");
        assert_eq!(plan.connectors, ["a", "b"]);
        for c in &cs {
            assert_eq!(c.consumer.get(RELOGIN_KEY), Some("0"));
        }
        let env = environment(&plan, Path::new("/run/x"));
        assert_eq!(env["KRB5CCNAME"], "FILE:/run/x/krb5cc");
        assert_eq!(env["KRB5_CLIENT_KTNAME"], "FILE:/etc/ferry/reader.keytab");
        assert_eq!(env["KRB5_CONFIG"], "/etc/ferry/krb5.conf");
    }

    #[test]
    fn jaas_debug_turns_on_mit_tracing() {
        let (w, mut cs) = load(ZTF_WORKER, &[&connector("a", "")]);
        let plan_without = plan(&w, &mut cs).unwrap().unwrap();
        assert!(!environment(&plan_without, Path::new("/x")).contains_key("KRB5_TRACE"));
        let worker =
            ZTF_WORKER.replace("useTicketCache=false;", "useTicketCache=false debug=true;");
        let (w, mut cs) = load(&worker, &[&connector("a", "")]);
        let p = plan(&w, &mut cs).unwrap().unwrap();
        assert!(p.debug);
        assert_eq!(
            environment(&p, Path::new("/x"))["KRB5_TRACE"],
            "/dev/stderr"
        );
    }

    #[test]
    fn an_explicit_kinit_command_is_left_to_librdkafka() {
        let worker = format!("{ZTF_WORKER}sasl.kerberos.kinit.cmd=kinit -k -t /k reader\n");
        let (w, mut cs) = load(&worker, &[&connector("a", "")]);
        assert_eq!(plan(&w, &mut cs).unwrap(), None);
        assert_eq!(cs[0].consumer.get(RELOGIN_KEY), None);
    }

    #[test]
    fn no_gssapi_no_login() {
        let (w, mut cs) = load("bootstrap.servers=b:9092\n", &[&connector("a", "")]);
        assert_eq!(plan(&w, &mut cs).unwrap(), None);
    }

    #[test]
    fn a_ticket_cache_login_runs_no_kinit() {
        let worker = "bootstrap.servers=b:9092\nsecurity.protocol=SASL_PLAINTEXT\nsasl.mechanism=GSSAPI\n\
            sasl.jaas.config=com.sun.security.auth.module.Krb5LoginModule required useTicketCache=true principal=\"r@R\";\n";
        let (w, mut cs) = load(worker, &[&connector("a", "")]);
        assert_eq!(plan(&w, &mut cs).unwrap(), None);
        assert_eq!(cs[0].consumer.get(RELOGIN_KEY), Some("0"));
    }

    fn worker(text: &str) -> WorkerConfig {
        let dir = tempfile::tempdir().unwrap();
        let w = dir.path().join("worker.properties");
        std::fs::write(&w, text).unwrap();
        WorkerConfig::load(&w, &SystemEnvironment).unwrap()
    }

    #[test]
    fn a_distributed_worker_plans_one_login_for_its_own_clients_and_its_connectors() {
        // The ZTF block at the top level only: the worker's clients use it, and so do the
        // connectors' consumers (ferry carries it over when consumer.* has none).
        let p = plan_worker(&worker(ZTF_WORKER)).unwrap().unwrap();
        assert_eq!(p.principal, "reader@KAFKA.SECURE");
        assert_eq!(p.connectors, [WORKER_CLIENTS, CONNECTOR_CONSUMERS]);
        assert!(p.source.contains("sasl.jaas.config"), "{}", p.source);
        // The worker's own clients' settings get librdkafka's kinit turned off too.
        let w = worker(ZTF_WORKER);
        let mut own = crate::herder::worker_settings(&w).unwrap();
        plan_clients(&w, [(WORKER_CLIENTS, &mut own)]).unwrap();
        assert_eq!(own.get(RELOGIN_KEY), Some("0"));
        assert_eq!(
            plan_worker(&worker("bootstrap.servers=b:9092\n")).unwrap(),
            None
        );
    }

    #[test]
    fn a_distributed_worker_with_two_principals_is_refused_naming_both_blocks() {
        let text = format!(
            "{ZTF_WORKER}consumer.security.protocol=SASL_PLAINTEXT\nconsumer.sasl.mechanism=GSSAPI\n\
             consumer.sasl.jaas.config=com.sun.security.auth.module.Krb5LoginModule required useKeyTab=true keyTab=\"/k2\" principal=\"other@KAFKA.SECURE\";\n"
        );
        let err = plan_worker(&worker(&text)).unwrap_err().to_string();
        assert!(
            err.contains(&format!(
                "{CONNECTOR_CONSUMERS} logs in as other@KAFKA.SECURE (/k2) but {WORKER_CLIENTS} as reader@KAFKA.SECURE"
            )),
            "{err}"
        );
    }

    #[test]
    fn two_principals_in_one_process_are_refused_by_name() {
        let other = "consumer.override.sasl.jaas.config=com.sun.security.auth.module.Krb5LoginModule required useKeyTab=true keyTab=\"/k2\" principal=\"other@KAFKA.SECURE\";\n";
        let (w, mut cs) = load(ZTF_WORKER, &[&connector("a", ""), &connector("b", other)]);
        let err = plan(&w, &mut cs).unwrap_err().to_string();
        assert!(
            err.contains("connector b logs in as other@KAFKA.SECURE"),
            "{err}"
        );
        assert!(err.contains("separate processes"), "{err}");
    }
}
