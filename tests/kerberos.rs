//! SASL GSSAPI end to end: a real MIT KDC, real GSSAPI handshakes with a front before each
//! mock broker, kcat (its own librdkafka and MIT's kinit) producing, ferry logging in from
//! the worker file's keytab by itself.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::kerberos::{CLIENT, SecureCluster};
use common::*;

fn file_connector(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("alerts.properties");
    write_props(
        &path,
        &[
            ("name", "ztf-file"),
            ("connector.class", "FileStreamSink"),
            ("topics", "alerts"),
            ("file", dir.join("out.txt").to_str().unwrap()),
        ],
    );
    path
}

#[test]
fn the_ztf_worker_file_logs_in_with_its_keytab_and_delivers_every_record() {
    let test = "kerberos::the_ztf_worker_file_logs_in_with_its_keytab_and_delivers_every_record";
    let Some(cluster) = SecureCluster::start(test, 2, Duration::from_secs(600), None) else {
        return;
    };
    let mut sent = Vec::new();
    for p in 0..2 {
        let lines = numbered(p, 150);
        cluster.produce(p, &lines);
        sent.extend(lines);
    }
    let dir = cluster.path();
    let worker = cluster.ztf_worker(dir, &[], "");
    let connector = file_connector(dir);
    // The user's own default cache: ferry must neither read nor create it.
    let user_cache = dir.join("user-default.cc");
    let mut ferry = Ferry::spawn_with_env(
        &ferry_bin(),
        &[
            "standalone",
            "--exit-at-end",
            worker.to_str().unwrap(),
            connector.to_str().unwrap(),
        ],
        &[("KRB5CCNAME", &format!("FILE:{}", user_cache.display()))],
        dir,
        "ferry",
    );
    let status = ferry.wait(Duration::from_secs(90));
    let log = ferry.log();
    assert!(status.success(), "ferry failed:\n{log}");

    let mut got = lines_of(&dir.join("out.txt"));
    got.sort();
    sent.sort();
    assert_eq!(got, sent, "every record, once");
    let offsets = offset_file(&dir.join("connect.offsets"));
    assert_eq!(offsets["ztf-file"]["alerts-0"], 150);
    assert_eq!(offsets["ztf-file"]["alerts-1"], 150);

    assert!(
        log.contains("Kerberos login succeeded.") && log.contains(&format!("principal={CLIENT}")),
        "{log}"
    );
    // Every connection ferry and kcat made authenticated, as the client principal.
    let principals = cluster.authenticated();
    assert!(principals.len() >= 2, "{:?}", cluster.events());
    assert!(principals.iter().all(|p| p == CLIENT), "{principals:?}");
    assert!(
        !user_cache.exists(),
        "ferry touched the user's default credential cache"
    );
    // No kinit ran on ferry's behalf, and its private cache is gone after exit.
    assert!(!log.contains("kinit"), "{log}");
    let pid = ferry.child.id();
    assert!(
        !std::env::temp_dir()
            .join(format!("ferry-krb5-{pid}"))
            .exists()
    );
    assert!(!log.contains("ERROR"), "a clean run logs no ERROR:\n{log}");
}

struct Negative {
    name: &'static str,
    /// Text swapped in the worker file; `{dir}` is the case's directory.
    replace: Vec<(String, String)>,
    /// Substrings of the one error line; `{dir}` as above.
    expect: Vec<&'static str>,
    /// Prepares the case's directory (e.g. writes a corrupt keytab).
    setup: fn(&Path),
    /// A worker file with no security settings at all instead of the ZTF one.
    plaintext: bool,
    /// Run ferry as an unprivileged user (root reads any file, whatever its mode).
    unprivileged: bool,
}

impl Negative {
    fn new(name: &'static str, expect: &[&'static str]) -> Self {
        Self {
            name,
            replace: Vec::new(),
            expect: expect.to_vec(),
            setup: |_| {},
            plaintext: false,
            unprivileged: false,
        }
    }

    fn swap(mut self, from: impl Into<String>, to: impl Into<String>) -> Self {
        self.replace.push((from.into(), to.into()));
        self
    }
}

/// Runs ferry with a broken setup: it must exit 1 within the bound with one `ferry: error:`
/// line naming the cause, and deliver and commit nothing.
fn refused(cluster: &SecureCluster, case: &Negative) -> String {
    let dir = cluster.path().join(case.name);
    std::fs::create_dir_all(&dir).unwrap();
    let d = dir.to_str().unwrap();
    let replace: Vec<(String, String)> = case
        .replace
        .iter()
        .map(|(a, b)| (a.clone(), b.replace("{dir}", d)))
        .collect();
    let replace: Vec<(&str, &str)> = replace
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    let worker = if case.plaintext {
        worker_props(&dir, &cluster.bootstrap, &[])
    } else {
        cluster.ztf_worker(&dir, &replace, "")
    };
    (case.setup)(&dir);
    if case.unprivileged {
        use std::os::unix::fs::PermissionsExt;
        let copy = dir.join("unreadable.keytab");
        std::fs::copy(&cluster.client_keytab, &copy).unwrap();
        std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o000)).unwrap();
    }
    let connector = file_connector(&dir);
    let started = Instant::now();
    let ferry_path = ferry_bin();
    let mut args = vec![
        ferry_path.to_str().unwrap(),
        "standalone",
        "--exit-at-end",
        worker.to_str().unwrap(),
        connector.to_str().unwrap(),
    ];
    let as_root = std::process::Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.trim_ascii() == b"0");
    let program = if case.unprivileged && as_root {
        // nobody: may read the files of this test, not the keytab (mode 0600, root's).
        let mode = |p: &Path, m: u32| {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap();
        };
        mode(cluster.path(), 0o755);
        mode(&dir, 0o777);
        args.splice(0..0, ["--reuid=65534", "--regid=65534", "--clear-groups"]);
        std::path::PathBuf::from("setpriv")
    } else {
        args.remove(0);
        ferry_path.clone()
    };
    let mut ferry = Ferry::spawn_with_env(
        &program,
        &args,
        &[("FERRY_BROKER_TIMEOUT", "10")],
        &dir,
        "ferry",
    );
    let status = ferry.wait(Duration::from_secs(60));
    let log = ferry.log();
    assert_eq!(
        status.code(),
        Some(1),
        "{}: exit {status:?}\n{log}",
        case.name
    );
    let errors: Vec<&str> = log
        .lines()
        .filter(|l| l.starts_with("ferry: error:"))
        .collect();
    assert_eq!(errors.len(), 1, "{}: one error line:\n{log}", case.name);
    eprintln!("[{}] {}", case.name, errors[0]);
    for want in &case.expect {
        let want = want.replace("{dir}", d);
        assert!(
            errors[0].contains(&want),
            "{}: `{want}` not in\n{}",
            case.name,
            errors[0]
        );
    }
    assert!(!log.contains("panicked"), "{log}");
    let cache = std::env::temp_dir().join(format!("ferry-krb5-{}", ferry.child.id()));
    assert!(!cache.exists(), "{}: left {}", case.name, cache.display());
    // Nothing committed: no offset file, or one that holds no offsets.
    let offsets = dir.join("connect.offsets");
    if offsets.exists() {
        let doc = offset_file(&offsets);
        assert!(
            doc.values().all(|c| c.is_empty()),
            "{}: offsets written: {doc:?}",
            case.name
        );
    }
    assert!(
        lines_of(&dir.join("out.txt")).is_empty(),
        "{}: records delivered",
        case.name
    );
    assert!(
        started.elapsed() < Duration::from_secs(45),
        "{}: took {:?}",
        case.name,
        started.elapsed()
    );
    log
}

#[test]
fn a_broken_kerberos_setup_gives_one_clear_line_and_commits_nothing() {
    let test = "kerberos::a_broken_kerberos_setup_gives_one_clear_line_and_commits_nothing";
    let Some(mut cluster) = SecureCluster::start(test, 1, Duration::from_secs(600), None) else {
        return;
    };
    cluster.produce(0, &numbered(0, 10));
    let keytab = format!("keyTab=\"{}\"", cluster.client_keytab.display());
    let other = format!("keyTab=\"{}\"", cluster.other_keytab.display());
    let mut corrupt = Negative::new(
        "corrupt-keytab",
        &["{dir}/corrupt.keytab", "sasl.jaas.config"],
    )
    .swap(&keytab, "keyTab=\"{dir}/corrupt.keytab\"");
    corrupt.setup = |d| std::fs::write(d.join("corrupt.keytab"), b"not a keytab").unwrap();
    let cases = [
        Negative::new(
            "wrong-principal",
            &[
                "has no usable key for nobody@FERRY.TEST",
                "klist -k",
                "sasl.jaas.config",
            ],
        )
        .swap(
            format!("principal=\"{CLIENT}\""),
            "principal=\"nobody@FERRY.TEST\"",
        ),
        Negative::new(
            "missing-keytab",
            &["{dir}/missing.keytab", "No such file", "sasl.jaas.config"],
        )
        .swap(&keytab, "keyTab=\"{dir}/missing.keytab\""),
        corrupt,
        Negative {
            unprivileged: true,
            ..Negative::new(
                "unreadable-keytab",
                &[
                    "{dir}/unreadable.keytab: Permission denied",
                    "sasl.jaas.config",
                ],
            )
            .swap(&keytab, "keyTab=\"{dir}/unreadable.keytab\"")
        },
        Negative::new(
            "keytab-without-the-principal",
            &["has no usable key for ferry@FERRY.TEST"],
        )
        .swap(&keytab, &other),
        Negative::new("wrong-service-name", &["kafka-typo/localhost@FERRY.TEST"])
            .swap("serviceName=\"kafka\"", "serviceName=\"kafka-typo\"")
            .swap(
                "sasl.kerberos.service.name=kafka\n",
                "sasl.kerberos.service.name=kafka-typo\n",
            ),
        Negative {
            plaintext: true,
            ..Negative::new("plaintext-client", &["localhost", "security.protocol"])
        },
    ];
    for case in &cases {
        refused(&cluster, case);
    }
    // The KDC down: the login itself fails, naming the realm's KDC.
    cluster.kdc.stop();
    let kdc = format!("127.0.0.1:{}", cluster.kdc.port());
    let log = refused(
        &cluster,
        &Negative::new(
            "kdc-down",
            &["Kerberos login as ferry@FERRY.TEST", "FERRY.TEST"],
        ),
    );
    assert!(log.contains(&kdc), "the KDC's address is named:\n{log}");
    // No refused run authenticated as anyone else.
    assert!(cluster.authenticated().iter().all(|p| p == CLIENT));
}

/// Renewal: tickets live 2 minutes, the run lasts over 6 (`FERRY_KERBEROS_RENEWAL_SECS`
/// shortens it for a quick look), and the front closes every connection after 45 s so
/// that ferry must authenticate again and again, long after its first ticket expired.
#[test]
fn renewal_keeps_two_minute_tickets_fresh_through_a_six_minute_run() {
    let test = "kerberos::renewal_keeps_two_minute_tickets_fresh_through_a_six_minute_run";
    let life = Duration::from_secs(120);
    let Some(cluster) = SecureCluster::start(test, 2, life, Some(Duration::from_secs(45))) else {
        return;
    };
    let run = Duration::from_secs(
        std::env::var("FERRY_KERBEROS_RENEWAL_SECS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(370),
    );
    let dir = cluster.path();
    let worker = cluster.ztf_worker(dir, &[], "");
    let connector = file_connector(dir);
    let started = Instant::now();
    let mut ferry = Ferry::spawn(
        &ferry_bin(),
        &[
            "standalone",
            worker.to_str().unwrap(),
            connector.to_str().unwrap(),
        ],
        dir,
        "ferry",
    );
    // Records keep arriving all along: a batch every 15 s, alternating partitions.
    let mut sent = Vec::new();
    let mut batch = 0;
    while started.elapsed() < run {
        let p = batch % 2;
        let lines: Vec<String> = (0..20).map(|n| format!("b{batch}-p{p}-{n}")).collect();
        cluster.produce(p, &lines);
        sent.extend(lines);
        batch += 1;
        let next = Duration::from_secs(15 * batch as u64);
        std::thread::sleep(
            next.saturating_sub(started.elapsed())
                .min(run.saturating_sub(started.elapsed())),
        );
        assert!(
            ferry.child.try_wait().unwrap().is_none(),
            "ferry exited early:\n{}",
            ferry.log()
        );
    }
    // Everything sent must arrive before ferry is stopped.
    let out = dir.join("out.txt");
    let all_in = wait_until(Duration::from_secs(60), || {
        let got: std::collections::BTreeSet<String> = lines_of(&out).into_iter().collect();
        sent.iter().all(|l| got.contains(l))
    });
    ferry.signal("TERM");
    let status = ferry.wait(Duration::from_secs(30));
    let log = ferry.log();
    assert!(all_in, "records were lost; log:\n{log}");
    assert!(status.success(), "{status:?}\n{log}");

    let renewed = log.matches("Kerberos ticket renewed.").count();
    // One renewal per 80–85 % of a ticket's life: three in 370 s; ask for two.
    let expected = (run.as_secs() / 130) as usize;
    assert!(
        renewed >= expected,
        "{renewed} renewals in {run:?}, expected ≥ {expected}:\n{log}"
    );
    for bad in [
        "renewal failed",
        "Authentication",
        "authentication error",
        "GSSAPI Error",
    ] {
        assert!(!log.contains(bad), "`{bad}` in the log:\n{log}");
    }
    let rejected: Vec<String> = cluster
        .events()
        .into_iter()
        .filter(|l| l.starts_with("reject") && l.contains("authentication failed"))
        .collect();
    assert!(rejected.is_empty(), "{rejected:?}");
    // Logins succeeded after the first ticket had expired, so renewed tickets were used.
    if run > life + Duration::from_secs(10) {
        let late = cluster
            .timed_events()
            .iter()
            .filter(|(t, l)| {
                l.starts_with("auth ") && t.duration_since(started) > life + Duration::from_secs(10)
            })
            .count();
        assert!(
            late > 0,
            "no authentication after the first ticket expired: {:?}",
            cluster.events()
        );
    }
    assert!(cluster.authenticated().iter().all(|p| p == CLIENT));
    eprintln!(
        "renewal: {renewed} renewals, {} authentications, {} records over {:?}",
        cluster.authenticated().len(),
        sent.len(),
        started.elapsed()
    );
}

/// Runs `ferry check` on the ZTF worker file (with `replace` applied) and a file connector
/// reading `topic`; returns the exit code and standard output.
fn check(
    cluster: &SecureCluster,
    name: &str,
    replace: &[(&str, &str)],
    topic: &str,
) -> (Option<i32>, String) {
    let dir = cluster.path().join(name);
    std::fs::create_dir_all(&dir).unwrap();
    let worker = cluster.ztf_worker(&dir, replace, "");
    let connector = file_connector(&dir);
    let text = std::fs::read_to_string(&connector)
        .unwrap()
        .replace("topics=alerts", &format!("topics={topic}"));
    std::fs::write(&connector, text).unwrap();
    let mut child = std::process::Command::new(ferry_bin())
        .args([
            "check",
            worker.to_str().unwrap(),
            connector.to_str().unwrap(),
        ])
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let status = wait_child(&mut child, Duration::from_secs(60)).expect("ferry check finished");
    let mut out = String::new();
    std::io::Read::read_to_string(child.stdout.as_mut().unwrap(), &mut out).unwrap();
    eprintln!("[check {name}]\n{out}");
    let cache = std::env::temp_dir().join(format!("ferry-krb5-{}", child.id()));
    assert!(!cache.exists(), "ferry check left {}", cache.display());
    (status.code(), out)
}

/// `ferry check`: one ✓/✗ line per step, exit 1 at the first failure that blocks running.
#[test]
fn ferry_check_reports_each_step_against_good_and_broken_setups() {
    let test = "kerberos::ferry_check_reports_each_step_against_good_and_broken_setups";
    let Some(mut cluster) = SecureCluster::start(test, 1, Duration::from_secs(600), None) else {
        return;
    };
    cluster.produce(0, &numbered(0, 3));

    let (code, out) = check(&cluster, "good", &[], "alerts");
    assert_eq!(code, Some(0), "{out}");
    let steps: Vec<&str> = out.lines().map(|l| l.split(':').next().unwrap()).collect();
    assert_eq!(
        steps,
        [
            "✓ files parse",
            "✓ keytab",
            "✓ KDC reachable",
            "✓ ticket acquired",
            "✓ broker reachable",
            "✓ brokers answer",
            "✓ topics visible",
            "✓ sink ready"
        ],
        "{out}"
    );
    assert!(
        out.contains(&format!("ticket acquired: {CLIENT}, expires ")),
        "{out}"
    );
    assert!(out.contains("SASL_PLAINTEXT/GSSAPI"), "{out}");

    // A topic that does not exist: reported, but ferry could run (it would wait).
    let (code, out) = check(&cluster, "no-topic", &[], "nosuchtopic");
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("✗ topics visible: ztf-file: nosuchtopic not found"),
        "{out}"
    );

    let (code, out) = check(
        &cluster,
        "wrong-principal",
        &[(
            "principal=\"ferry@FERRY.TEST\"",
            "principal=\"nobody@FERRY.TEST\"",
        )],
        "alerts",
    );
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.lines().last().unwrap().starts_with("✗ keytab:"),
        "{out}"
    );
    assert!(out.contains("nobody@FERRY.TEST"), "{out}");

    let (code, out) = check(
        &cluster,
        "wrong-service",
        &[
            ("serviceName=\"kafka\"", "serviceName=\"kafka-typo\""),
            (
                "sasl.kerberos.service.name=kafka\n",
                "sasl.kerberos.service.name=kafka-typo\n",
            ),
        ],
        "alerts",
    );
    assert_eq!(code, Some(1), "{out}");
    let last = out.lines().last().unwrap();
    assert!(
        last.starts_with("✗ brokers answer:") && last.contains("kafka-typo/localhost@FERRY.TEST"),
        "{out}"
    );

    // A krb5.conf that cannot be read is a failure, never a ✓.
    let krb5 = format!("ferry.krb5.conf={}", cluster.kdc.krb5_conf().display());
    let (code, out) = check(
        &cluster,
        "krb5-unreadable",
        &[(krb5.as_str(), "ferry.krb5.conf=/nonexistent/krb5.conf")],
        "alerts",
    );
    assert_eq!(code, Some(1), "{out}");
    let last = out.lines().last().unwrap();
    assert!(
        last.starts_with("✗ KDC reachable: cannot read /nonexistent/krb5.conf: "),
        "{out}"
    );

    // A realm krb5.conf names no KDC for: a warning that says what MIT will do, and then the
    // ticket step fails (this realm's krb5.conf turns DNS look-ups off).
    let no_kdc = cluster.path().join("krb5-no-kdc.conf");
    let text = std::fs::read_to_string(cluster.kdc.krb5_conf()).unwrap();
    let text: String = text
        .lines()
        .filter(|l| !l.trim_start().starts_with("kdc ="))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(&no_kdc, text).unwrap();
    let no_kdc_line = format!("ferry.krb5.conf={}", no_kdc.display());
    let (code, out) = check(
        &cluster,
        "krb5-no-kdc",
        &[(krb5.as_str(), no_kdc_line.as_str())],
        "alerts",
    );
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("⚠ KDC reachable: no kdc for realm FERRY.TEST in "),
        "{out}"
    );
    assert!(
        out.lines()
            .last()
            .unwrap()
            .starts_with("✗ ticket acquired:"),
        "{out}"
    );
    assert!(!out.contains("✓ KDC reachable"), "{out}");

    cluster.kdc.stop();
    let (code, out) = check(&cluster, "kdc-down", &[], "alerts");
    assert_eq!(code, Some(1), "{out}");
    let last = out.lines().last().unwrap();
    assert!(
        last.starts_with("✗ KDC reachable:")
            && last.contains(&format!("127.0.0.1:{}", cluster.kdc.port())),
        "{out}"
    );
}
