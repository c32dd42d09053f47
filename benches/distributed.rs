//! Distributed mode, measured where a 2-core machine can measure it: how long a killed
//! worker's partitions take to flow again on the others, against the consumer's
//! `session.timeout.ms`, and each worker's memory against a standalone ferry running the
//! same connector.
//!
//! `cargo bench --bench distributed` (3 rounds; `FERRY_BENCH_REPEATS` to change). Each
//! round: a mock cluster, three `ferry distributed` workers, a directory-sink connector
//! created over REST on 12 partitions, 1 200 records delivered; RSS of every worker after
//! 2 s idle; then `kill -9` of one worker and one record to every partition, timed until
//! all twelve are on disk. Then, on a cluster of its own, records per second during a
//! rolling restart of the three workers against the steady state, with a producer at a
//! fixed rate (see [`rolling`]), and the records delivered twice or lost.
//!
//! Both measures also run with KIP-848's consumer group protocol
//! (`consumer.group.protocol=consumer`, the broker's session set to the same 6 s), the
//! rolling restart with static members (`ferry.static.membership=true`, each worker back on
//! its port).

#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ferry_mock_broker::MockBroker;
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::{ClientConfig, ClientContext};

const SESSION_TIMEOUT_MS: u64 = 6000;
const PARTITIONS: i32 = 12;
const TOPIC: &str = "bench-dist";
/// The mock cluster's group rebalance delay (librdkafka's mock applies it to rebalances of
/// a group that has members too, unlike a broker's group.initial.rebalance.delay.ms).
const GROUP_DELAY: Duration = Duration::from_secs(3);

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn rss_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// How the connectors' consumers form their groups.
#[derive(Clone, Copy)]
enum Group {
    /// The classic protocol with this assignor (None: ferry's default).
    Classic(Option<&'static str>),
    /// KIP-848's `group.protocol=consumer`: the broker assigns and owns the timing;
    /// with `ferry.static.membership` or without.
    Consumer { static_members: bool },
}

/// The KIP-848 group's heartbeat interval, set on the broker; the same as the classic
/// consumers' `heartbeat.interval.ms` here.
const HEARTBEAT: Duration = Duration::from_millis(500);

fn worker_file(
    dir: &Path,
    bootstrap: &str,
    n: usize,
    port: u16,
    distributed: bool,
    group: Group,
) -> PathBuf {
    let path = dir.join(format!("worker{n}.properties"));
    let mut text = format!(
        "bootstrap.servers={bootstrap}\nkey.converter=org.apache.kafka.connect.converters.ByteArrayConverter\nvalue.converter=org.apache.kafka.connect.converters.ByteArrayConverter\noffset.flush.interval.ms=500\nlisteners=http://127.0.0.1:{port}\n"
    );
    match group {
        Group::Classic(strategy) => {
            text.push_str(&format!(
                "consumer.session.timeout.ms={SESSION_TIMEOUT_MS}\nconsumer.heartbeat.interval.ms={}\n",
                HEARTBEAT.as_millis()
            ));
            if let Some(s) = strategy {
                text.push_str(&format!("consumer.partition.assignment.strategy={s}\n"));
            }
        }
        Group::Consumer { static_members } => text.push_str(&format!(
            "consumer.group.protocol=consumer\nferry.static.membership={static_members}\n"
        )),
    }
    if distributed {
        text.push_str(
            "group.id=bench-cluster\nconfig.storage.topic=bench-configs\nstatus.storage.topic=bench-status\n",
        );
    } else {
        text.push_str(&format!(
            "offset.storage.file.filename={}\n",
            dir.join("standalone.offsets").display()
        ));
    }
    std::fs::write(&path, text).unwrap();
    path
}

/// A working directory for one measurement; kept (and named on stderr) with
/// `FERRY_BENCH_KEEP=1`, so that the workers' logs can be read after a failed run.
fn workdir() -> tempfile::TempDir {
    let mut dir = tempfile::tempdir().unwrap();
    if std::env::var_os("FERRY_BENCH_KEEP").is_some() {
        dir.disable_cleanup(true);
        eprintln!("  working directory kept: {}", dir.path().display());
    }
    dir
}

fn spawn(args: &[&str], log: &Path) -> Child {
    spawn_logging(args, log, "warn")
}

/// The ferries this bench started and has not reaped yet: a panic kills them (by PID), so
/// that a failed run leaves none behind.
static LIVE: Mutex<BTreeSet<u32>> = Mutex::new(BTreeSet::new());

fn spawn_logging(args: &[&str], log: &Path, level: &str) -> Child {
    let child = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(args)
        .env("RUST_LOG", level)
        .env("NO_COLOR", "1")
        .stderr(std::fs::File::create(log).unwrap())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    LIVE.lock().unwrap().insert(child.id());
    child
}

/// Waits for a ferry that is stopping or killed.
fn reap(child: &mut Child) {
    let _ = child.wait();
    LIVE.lock().unwrap().remove(&child.id());
}

/// On a panic, kills the ferries still running before the usual report.
fn kill_live_on_panic() {
    let report = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let live = LIVE.try_lock().map(|l| l.clone()).unwrap_or_default();
        for pid in live {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
        }
        report(info);
    }));
}

fn wait_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + timeout;
    while Instant::now() < end {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    f()
}

fn http_ok(port: u16, method: &str, path: &str, body: Option<&str>) -> bool {
    let mut cmd = Command::new("curl");
    cmd.args([
        "-s",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        "--max-time",
        "10",
    ])
    .args(["-X", method]);
    if let Some(b) = body {
        cmd.args(["-H", "Content-Type: application/json", "-d", b]);
    }
    let out = cmd
        .arg(format!("http://127.0.0.1:{port}{path}"))
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).starts_with('2')
}

/// Records a worker's tasks have read, from its /metrics page.
fn records_read(port: u16) -> f64 {
    let out = Command::new("curl")
        .args(["-s", "--max-time", "10"])
        .arg(format!("http://127.0.0.1:{port}/metrics"))
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.starts_with("kafka_connect_sink_task_sink_record_read_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

fn files(dir: &Path) -> usize {
    let Ok(parts) = std::fs::read_dir(dir.join(TOPIC)) else {
        return 0;
    };
    parts
        .flatten()
        .map(|p| {
            std::fs::read_dir(p.path())
                .map(|f| {
                    f.flatten()
                        .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
                        .count()
                })
                .unwrap_or(0)
        })
        .sum()
}

fn produce(bootstrap: &str, per_partition: usize, from: usize) {
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .unwrap();
    for p in 0..PARTITIONS {
        for i in from..from + per_partition {
            let value = format!("p{p}-{i}");
            producer
                .send(BaseRecord::<(), _>::to(TOPIC).partition(p).payload(&value))
                .unwrap();
        }
    }
    producer.flush(Duration::from_secs(30)).unwrap();
}

fn connector(out: &Path) -> String {
    format!(
        r#"{{"name":"dist","config":{{"connector.class":"directory","topics":"{TOPIC}","directory.path":"{}","tasks.max":"2"}}}}"#,
        out.display()
    )
}

struct Round {
    rolling: Rolling,
    /// The same with KIP-848's protocol and static members.
    rolling_static: Rolling,
    move_secs: f64,
    /// The same with the eager `range` assignor instead of cooperative-sticky.
    move_secs_eager: f64,
    /// The same on a cluster that starts rebalances at once (no group delay).
    move_secs_no_delay: f64,
    /// The same with KIP-848's consumer group protocol.
    move_secs_kip848: f64,
    worker_rss_kb: Vec<u64>,
    standalone_rss_kb: u64,
}

/// Three workers whose consumers form their groups as `group` says, on their own cluster: seconds from
/// `kill -9` of one until one new record on every partition is on disk, and the RSS of each
/// worker before the kill.
fn kill_one(group: Group, group_delay: Duration) -> (f64, Vec<u64>) {
    let dir = workdir();
    let broker = MockBroker::start_with_delay(1, group_delay).unwrap();
    broker
        .consumer_group_timing(Duration::from_millis(SESSION_TIMEOUT_MS), HEARTBEAT)
        .unwrap();
    broker.create_topic(TOPIC, PARTITIONS).unwrap();
    internal_topics(&broker);
    let bootstrap = broker.bootstrap();
    let out = dir.path().join("out");
    let mut workers: Vec<(Child, u16)> = (1..=3)
        .map(|n| {
            let port = free_port();
            let file = worker_file(dir.path(), &bootstrap, n, port, true, group);
            let child = spawn(
                &["distributed", file.to_str().unwrap()],
                &dir.path().join(format!("worker{n}.log")),
            );
            assert!(wait_until(Duration::from_secs(60), || http_ok(
                port, "GET", "/health", None
            )));
            (child, port)
        })
        .collect();
    assert!(http_ok(
        workers[0].1,
        "POST",
        "/connectors",
        Some(&connector(&out))
    ));
    // Records only once the group has settled, so that every worker holds some partitions
    // whatever the cluster's rebalance delay.
    std::thread::sleep(group_delay + Duration::from_secs(8));
    produce(&bootstrap, 100, 0);
    assert!(
        wait_until(Duration::from_secs(60), || files(&out)
            == 100 * PARTITIONS as usize),
        "not delivered: {}",
        files(&out)
    );
    let idle = workers
        .iter()
        .filter(|(_, port)| records_read(*port) == 0.0)
        .count();
    assert_eq!(
        idle, 0,
        "a worker held no partitions; the kill would measure nothing"
    );
    std::thread::sleep(Duration::from_secs(2));
    let rss = workers.iter().map(|(c, _)| rss_kb(c.id())).collect();
    let (mut killed, _) = workers.pop().unwrap();
    let _ = Command::new("kill")
        .args(["-KILL", &killed.id().to_string()])
        .status();
    let t = Instant::now();
    reap(&mut killed);
    produce(&bootstrap, 1, 100);
    assert!(wait_until(Duration::from_secs(120), || files(&out)
        == 101 * PARTITIONS as usize));
    let secs = t.elapsed().as_secs_f64();
    for (c, _) in &workers {
        let _ = Command::new("kill")
            .args(["-TERM", &c.id().to_string()])
            .status();
    }
    for (mut c, _) in workers {
        reap(&mut c);
    }
    (secs, rss)
}

/// Records per second and partition the producer of [`rolling`] writes: 1 200 records/s
/// over the 12 partitions, a fraction of what three workers deliver even on a busy 2-core
/// machine, so that the steady state delivers exactly the input and a restart's cost shows
/// as what is not delivered while it runs.
const ROLL_RATE_PER_PARTITION: u64 = 100;
/// How long the steady state is measured.
const STEADY: Duration = Duration::from_secs(10);

struct Rolling {
    steady_rps: f64,
    rolling_rps: f64,
    /// The lowest rate over one second during the restart.
    worst_second_rps: f64,
    restart_secs: f64,
    /// Records produced but not yet on disk when the last new worker started delivering.
    lag_at_end: i64,
    produced: usize,
    /// Records delivered more than once (delivered by all workers' lifetimes − on disk).
    duplicates: i64,
    /// Records produced and never delivered.
    lost: i64,
}

/// Counts the records the cluster acknowledged, so that one the producer could not deliver
/// is not taken for one ferry lost.
struct Acked(Arc<std::sync::atomic::AtomicUsize>);

impl ClientContext for Acked {}

impl ProducerContext for Acked {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        if result.is_ok() {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// The records a stopped worker delivered, from its last `Connector stopped.` line.
fn delivered_in_log(log: &Path) -> i64 {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains("Connector stopped."))
        .filter_map(|l| {
            l.split_whitespace()
                .find_map(|w| w.strip_prefix("records="))
                .and_then(|v| v.parse().ok())
        })
        .max()
        .unwrap_or(0)
}

/// SIGTERM, and the exit within a minute.
fn stop(child: &mut Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    assert!(
        wait_until(Duration::from_secs(60), || child
            .try_wait()
            .unwrap()
            .is_some()),
        "a worker did not stop within a minute of SIGTERM"
    );
    reap(child);
}

/// Samples (time, records on disk) taken every 500 ms, and the rate between the samples
/// nearest to `from` and `to`.
fn rate(samples: &[(Instant, usize)], from: Instant, to: Instant) -> f64 {
    let at = |t: Instant| {
        samples
            .iter()
            .rev()
            .find(|(s, _)| *s <= t)
            .or(samples.first())
            .copied()
            .unwrap()
    };
    let (a, b) = (at(from), at(to));
    (b.1 - a.1) as f64 / b.0.duration_since(a.0).as_secs_f64().max(1e-3)
}

/// The cluster's internal topics (the mock cluster serves no CreateTopics).
fn internal_topics(broker: &MockBroker) {
    broker.create_topic("bench-configs", 1).unwrap();
    broker.create_topic("bench-status", 5).unwrap();
}

/// Three workers share the directory-sink connector while a producer writes 1 200 records/s
/// (a fixed rate rather than a backlog: a backlog the sink drains at full speed for the half
/// minute a rolling restart takes would be hundreds of thousands of files, and on two cores
/// shared with the mock cluster and the producer the full speed mostly measures CPU
/// contention). Records per second on disk are taken over 10 s of steady state, then over a
/// rolling restart: SIGTERM of the oldest worker, a new one started, and the next step once
/// the new one has read records. Afterwards the producer stops, everything is awaited on
/// disk, the last workers stop, and each worker's `Connector stopped.` line gives what it
/// delivered over its life: their sum beyond the records on disk is what was delivered
/// twice. With static members (KIP-848's protocol) each worker restarts on its own REST
/// port, and with it its `group.instance.id`.
fn rolling(group: Group) -> Rolling {
    let dir = workdir();
    let broker = MockBroker::start_with_delay(1, GROUP_DELAY).unwrap();
    broker
        .consumer_group_timing(Duration::from_millis(SESSION_TIMEOUT_MS), HEARTBEAT)
        .unwrap();
    broker.create_topic(TOPIC, PARTITIONS).unwrap();
    internal_topics(&broker);
    let bootstrap = broker.bootstrap();
    let out = dir.path().join("out");
    let start_worker = |n: usize, port: u16| {
        let file = worker_file(dir.path(), &bootstrap, n, port, true, group);
        let log = dir.path().join(format!("worker{n}.log"));
        let child = spawn_logging(
            &["distributed", file.to_str().unwrap()],
            &log,
            "warn,ferry=info",
        );
        assert!(wait_until(Duration::from_secs(60), || http_ok(
            port, "GET", "/health", None
        )));
        (child, port, log)
    };
    let mut workers: Vec<(Child, u16, PathBuf)> =
        (1..=3).map(|n| start_worker(n, free_port())).collect();
    let same_port = matches!(
        group,
        Group::Consumer {
            static_members: true
        }
    );
    assert!(http_ok(
        workers[0].1,
        "POST",
        "/connectors",
        Some(&connector(&out))
    ));
    std::thread::sleep(GROUP_DELAY + Duration::from_secs(8));

    let done = Arc::new(AtomicBool::new(false));
    let producer = {
        let (done, bootstrap) = (done.clone(), bootstrap.clone());
        std::thread::spawn(move || {
            let acked = Arc::new(std::sync::atomic::AtomicUsize::new(0));
            let producer: BaseProducer<Acked> = ClientConfig::new()
                .set("bootstrap.servers", &bootstrap)
                .set("linger.ms", "5")
                .create_with_context(Acked(acked.clone()))
                .unwrap();
            let started = Instant::now();
            let mut round = 0u64;
            while !done.load(Ordering::Relaxed) {
                let due =
                    started + Duration::from_micros(round * 1_000_000 / ROLL_RATE_PER_PARTITION);
                if let Some(wait) = due.checked_duration_since(Instant::now()) {
                    std::thread::sleep(wait);
                }
                for p in 0..PARTITIONS {
                    let value = format!("p{p}-{round}");
                    producer
                        .send(BaseRecord::<(), _>::to(TOPIC).partition(p).payload(&value))
                        .unwrap();
                }
                producer.poll(Duration::ZERO);
                round += 1;
            }
            producer.flush(Duration::from_secs(30)).unwrap();
            let sent = (round * PARTITIONS as u64) as usize;
            let acked = acked.load(Ordering::Relaxed);
            if acked != sent {
                eprintln!(
                    "  the producer sent {sent} records, the cluster acknowledged {acked}: only those count"
                );
            }
            acked
        })
    };
    let samples = Arc::new(Mutex::new(Vec::new()));
    let sampler = {
        let (done, samples, out) = (done.clone(), samples.clone(), out.clone());
        std::thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                let n = files(&out);
                samples.lock().unwrap().push((Instant::now(), n));
                std::thread::sleep(Duration::from_millis(500));
            }
        })
    };
    let produced_by = |t: Instant, since: Instant| {
        (t.duration_since(since).as_secs_f64()
            * (ROLL_RATE_PER_PARTITION * PARTITIONS as u64) as f64) as i64
    };
    let producing_since = Instant::now();
    // Warm-up, then the steady state.
    std::thread::sleep(Duration::from_secs(3));
    let steady_from = Instant::now();
    std::thread::sleep(STEADY);
    let steady_to = Instant::now();

    let mut delivered = 0i64;
    let roll_from = Instant::now();
    for n in 4..=6 {
        let (mut old, port, log) = workers.remove(0);
        stop(&mut old);
        delivered += delivered_in_log(&log);
        let new = start_worker(n, if same_port { port } else { free_port() });
        assert!(
            wait_until(Duration::from_secs(120), || records_read(new.1) > 0.0),
            "worker {n} read nothing within 2 minutes"
        );
        workers.push(new);
    }
    let roll_to = Instant::now();
    std::thread::sleep(Duration::from_secs(1));
    let on_disk_at_end = {
        let s = samples.lock().unwrap();
        s.iter()
            .rev()
            .find(|(t, _)| *t <= roll_to)
            .map_or(0, |x| x.1) as i64
    };
    done.store(true, Ordering::Relaxed);
    let produced = producer.join().unwrap();
    sampler.join().unwrap();
    assert!(
        wait_until(Duration::from_secs(120), || files(&out) >= produced),
        "{} of {produced} on disk two minutes after the producer stopped",
        files(&out)
    );
    let on_disk = files(&out);
    for (mut c, _, log) in workers {
        stop(&mut c);
        delivered += delivered_in_log(&log);
    }
    let samples = samples.lock().unwrap().clone();
    let worst_second_rps = samples
        .iter()
        .filter(|(t, _)| *t >= roll_from && *t + Duration::from_secs(1) <= roll_to)
        .map(|(t, _)| rate(&samples, *t, *t + Duration::from_secs(1)))
        .fold(f64::INFINITY, f64::min);
    Rolling {
        steady_rps: rate(&samples, steady_from, steady_to),
        rolling_rps: rate(&samples, roll_from, roll_to),
        worst_second_rps,
        restart_secs: roll_to.duration_since(roll_from).as_secs_f64(),
        lag_at_end: produced_by(roll_to, producing_since) - on_disk_at_end,
        produced,
        duplicates: delivered - on_disk as i64,
        lost: produced as i64 - on_disk as i64,
    }
}

fn round() -> Round {
    let dir = workdir();
    let broker = MockBroker::start_with_delay(1, Duration::from_secs(3)).unwrap();
    broker.create_topic(TOPIC, PARTITIONS).unwrap();
    internal_topics(&broker);
    let bootstrap = broker.bootstrap();

    // A standalone ferry with the same connector, for its memory.
    let standalone_out = dir.path().join("standalone-out");
    let port = free_port();
    let worker = worker_file(dir.path(), &bootstrap, 0, port, false, Group::Classic(None));
    let connector_file = dir.path().join("standalone.properties");
    std::fs::write(
        &connector_file,
        format!(
            "name=alone\nconnector.class=directory\ntopics={TOPIC}\ndirectory.path={}\ntasks.max=2\n",
            standalone_out.display()
        ),
    )
    .unwrap();
    produce(&bootstrap, 100, 0);
    let mut alone = spawn(
        &[
            "standalone",
            worker.to_str().unwrap(),
            connector_file.to_str().unwrap(),
        ],
        &dir.path().join("standalone.log"),
    );
    assert!(wait_until(Duration::from_secs(60), || files(
        &standalone_out
    ) == 100
        * PARTITIONS as usize));
    std::thread::sleep(Duration::from_secs(2));
    let standalone_rss_kb = rss_kb(alone.id());
    let _ = Command::new("kill")
        .args(["-TERM", &alone.id().to_string()])
        .status();
    reap(&mut alone);

    let (move_secs, worker_rss_kb) = kill_one(Group::Classic(None), GROUP_DELAY);
    let (move_secs_eager, _) = kill_one(Group::Classic(Some("range")), GROUP_DELAY);
    let (move_secs_no_delay, _) = kill_one(Group::Classic(None), Duration::ZERO);
    let (move_secs_kip848, _) = kill_one(
        Group::Consumer {
            static_members: false,
        },
        GROUP_DELAY,
    );
    Round {
        rolling: rolling(Group::Classic(None)),
        rolling_static: rolling(Group::Consumer {
            static_members: true,
        }),
        move_secs,
        move_secs_eager,
        move_secs_no_delay,
        move_secs_kip848,
        worker_rss_kb,
        standalone_rss_kb,
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

impl Rolling {
    fn line(&self) -> String {
        format!(
            "rolling restart {:.1} s: {:.0} records/s vs {:.0} steady (worst second {:.0}), {} behind at its end; {} produced, {} delivered twice, {} lost",
            self.restart_secs,
            self.rolling_rps,
            self.steady_rps,
            self.worst_second_rps,
            self.lag_at_end,
            self.produced,
            self.duplicates,
            self.lost
        )
    }

    /// The report's rows for the rolling restarts of every round.
    fn rows(rolls: &[&Rolling], label: &str) -> String {
        let steady = median(rolls.iter().map(|r| r.steady_rps).collect());
        let during = median(rolls.iter().map(|r| r.rolling_rps).collect());
        let ratio = median(rolls.iter().map(|r| r.rolling_rps / r.steady_rps).collect());
        let worst_second = rolls
            .iter()
            .map(|r| r.worst_second_rps)
            .fold(f64::INFINITY, f64::min);
        let restart = median(rolls.iter().map(|r| r.restart_secs).collect());
        let lag = median(rolls.iter().map(|r| r.lag_at_end as f64).collect());
        let produced: usize = rolls.iter().map(|r| r.produced).sum();
        let twice: i64 = rolls.iter().map(|r| r.duplicates).sum();
        let lost: i64 = rolls.iter().map(|r| r.lost).sum();
        let rate = ROLL_RATE_PER_PARTITION * PARTITIONS as u64;
        format!(
            "| rolling restart of the 3 workers{label}, producer at {rate} records/s: records/s on disk during it / steady state (median) | {during:.0} / {steady:.0} = {ratio:.2} | |\n\
             | the same: lowest one-second rate during it / its length / records behind at its end (median) | {worst_second:.0} records/s / {restart:.1} s / {lag:.0} | |\n\
             | the same: records delivered twice / lost (sum over rounds, of {produced}) | {twice} / {lost} | 0 / 0 |"
        )
    }
}

fn main() {
    kill_live_on_panic();
    let repeats: usize = std::env::var("FERRY_BENCH_REPEATS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(3);
    let mut rounds = Vec::new();
    for i in 0..repeats {
        let r = round();
        eprintln!("  round {i}: {}", r.rolling.line());
        eprintln!(
            "  round {i}: with group.protocol=consumer and static members: {}",
            r.rolling_static.line()
        );
        eprintln!(
            "  round {i}: partitions flowing again {:.2} s after kill -9 ({:.2} s with the range assignor, {:.2} s without the group delay, {:.2} s with group.protocol=consumer); worker RSS {:?} KiB; standalone {} KiB",
            r.move_secs,
            r.move_secs_eager,
            r.move_secs_no_delay,
            r.move_secs_kip848,
            r.worker_rss_kb,
            r.standalone_rss_kb
        );
        rounds.push(r);
    }
    let moved = median(rounds.iter().map(|r| r.move_secs).collect());
    let worst = rounds.iter().map(|r| r.move_secs).fold(0.0, f64::max);
    let eager = median(rounds.iter().map(|r| r.move_secs_eager).collect());
    let no_delay = median(rounds.iter().map(|r| r.move_secs_no_delay).collect());
    let kip848 = median(rounds.iter().map(|r| r.move_secs_kip848).collect());
    let kip848_worst = rounds
        .iter()
        .map(|r| r.move_secs_kip848)
        .fold(0.0, f64::max);
    let worker_max = rounds
        .iter()
        .flat_map(|r| r.worker_rss_kb.iter().copied())
        .max()
        .unwrap_or(0) as f64
        / 1024.0;
    let alone = median(
        rounds
            .iter()
            .map(|r| r.standalone_rss_kb as f64 / 1024.0)
            .collect(),
    );
    let classic = Rolling::rows(&rounds.iter().map(|r| &r.rolling).collect::<Vec<_>>(), "");
    let kip848_static = Rolling::rows(
        &rounds.iter().map(|r| &r.rolling_static).collect::<Vec<_>>(),
        " with group.protocol=consumer and static members",
    );
    println!(
        "\nDistributed mode ({repeats} rounds, 3 workers, 12 partitions, session.timeout.ms={SESSION_TIMEOUT_MS}):\n\
         | measure | value | goal |\n|---|---:|---|\n\
         | kill -9 → the dead worker's partitions delivering on the others (median / worst) | {moved:.2} s / {worst:.2} s | ≤ session timeout + 2 s = {:.0} s |\n\
         | the same with the eager range assignor (median) | {eager:.2} s | |\n\
         | the same on a cluster without a group rebalance delay (median) | {no_delay:.2} s | |\n\
         | the same with KIP-848's group.protocol=consumer, broker session {SESSION_TIMEOUT_MS} ms (median / worst) | {kip848:.2} s / {kip848_worst:.2} s | ≤ session timeout + 2 s |\n\
         | RSS per worker, 3 workers (max over workers and rounds) | {worker_max:.1} MB | ≤ standalone + 5 MB |\n\
         | RSS of a standalone ferry with the same connector (median) | {alone:.1} MB | |\n\
         {classic}\n{kip848_static}",
        SESSION_TIMEOUT_MS as f64 / 1000.0 + 2.0
    );
}
