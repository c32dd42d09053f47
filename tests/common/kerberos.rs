//! A Kerberos-secured cluster for the GSSAPI tests: a throw-away MIT KDC on 127.0.0.1, the
//! mock Kafka cluster, and a SASL/GSSAPI front (`ferry-sasl-front`) in front of each mock
//! broker, which the brokers advertise so clients never go around it. kcat, with its own
//! librdkafka and MIT's `kinit`, is the independent GSSAPI client.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ferry_mock_broker::kdc::{self, Kdc};

use super::emulator::skip;
use super::{Broker, kcat, mock_broker_bin};

pub const REALM: &str = "FERRY.TEST";
/// The client principal ferry and kcat log in as.
pub const CLIENT: &str = "ferry@FERRY.TEST";
/// The brokers' service principal (service `kafka`, host `localhost`).
pub const SERVICE: &str = "kafka/localhost@FERRY.TEST";

pub struct SecureCluster {
    pub dir: tempfile::TempDir,
    pub kdc: Kdc,
    pub broker: Broker,
    front: Child,
    events: Arc<Mutex<Vec<(Instant, String)>>>,
    /// `localhost:<front port>`.
    pub bootstrap: String,
    /// Holds `CLIENT`'s key.
    pub client_keytab: PathBuf,
    /// Holds only `other@FERRY.TEST`'s key.
    pub other_keytab: PathBuf,
}

/// Why the Kerberos tests cannot run here, if they cannot.
fn missing() -> Option<String> {
    if let Some(why) = kdc::missing() {
        return Some(why);
    }
    let plugin = [
        "/usr/lib/x86_64-linux-gnu/sasl2",
        "/usr/lib/aarch64-linux-gnu/sasl2",
        "/usr/lib/sasl2",
    ]
    .iter()
    .filter_map(|d| std::fs::read_dir(d).ok())
    .flatten()
    .flatten()
    .any(|e| {
        e.file_name()
            .to_string_lossy()
            .starts_with("libgssapiv2.so")
    });
    if !plugin {
        return Some(
            "Cyrus SASL's GSSAPI plugin is not installed: apt-get install libsasl2-modules-gssapi-mit (tests/run.sh does)".into(),
        );
    }
    let features = kcat()
        .args(["-X", "dump"])
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout).to_string() + &String::from_utf8_lossy(&o.stderr)
        })
        .unwrap_or_default();
    if !features.contains("sasl_gssapi") {
        return Some("this kcat's librdkafka has no sasl_gssapi".into());
    }
    None
}

impl SecureCluster {
    /// Starts everything, or records the test as skipped (with the reason) and returns None.
    /// `ticket_life` bounds every ticket the KDC issues; `max_connection_age` makes the
    /// front close authenticated connections after that long, so clients log in again.
    pub fn start(
        test: &str,
        partitions: i32,
        ticket_life: Duration,
        max_connection_age: Option<Duration>,
    ) -> Option<SecureCluster> {
        if let Some(why) = missing() {
            skip(test, &why);
            return None;
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let kdc = Kdc::start(&dir.path().join("kdc"), REALM, ticket_life).expect("start the KDC");
        for p in [CLIENT, SERVICE, "other@FERRY.TEST"] {
            kdc.add_principal(p).expect("add principal");
        }
        let client_keytab = kdc
            .keytab(&dir.path().join("client.keytab"), &[CLIENT])
            .expect("client keytab");
        let other_keytab = kdc
            .keytab(&dir.path().join("other.keytab"), &["other@FERRY.TEST"])
            .expect("other keytab");
        let service_keytab = kdc
            .keytab(&dir.path().join("kafka.keytab"), &[SERVICE])
            .expect("service keytab");

        let mut broker = Broker::start(1, 0);
        broker.create_topic("alerts", partitions);
        let mut cmd = Command::new(front_bin());
        cmd.args(["--upstream", &broker.bootstrap]);
        if let Some(age) = max_connection_age {
            cmd.args(["--max-connection-age-secs", &age.as_secs().to_string()]);
        }
        let mut front = cmd
            .env("KRB5_CONFIG", kdc.krb5_conf())
            .env("KRB5_KTNAME", format!("FILE:{}", service_keytab.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start ferry-sasl-front");
        let mut out = BufReader::new(front.stdout.take().expect("front stdout"));
        let mut first = String::new();
        out.read_line(&mut first).expect("front's ports line");
        let port = first
            .trim()
            .strip_prefix("ports=")
            .expect("ports=… line")
            .to_string();
        let events = Arc::new(Mutex::new(Vec::new()));
        {
            let events = events.clone();
            std::thread::spawn(move || {
                for line in out.lines().map_while(Result::ok) {
                    events.lock().expect("events").push((Instant::now(), line));
                }
            });
        }
        broker
            .command(&format!("advertise 1 localhost {port}"))
            .expect("advertise the front");
        Some(SecureCluster {
            dir,
            kdc,
            broker,
            front,
            events,
            bootstrap: format!("localhost:{port}"),
            client_keytab,
            other_keytab,
        })
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The front's lines so far: `auth <peer> <principal>` / `reject <peer> <reason>`.
    pub fn events(&self) -> Vec<String> {
        self.timed_events().into_iter().map(|(_, l)| l).collect()
    }

    /// The same, with when the test saw each.
    pub fn timed_events(&self) -> Vec<(Instant, String)> {
        self.events.lock().expect("events").clone()
    }

    /// The principals that authenticated, one per connection.
    pub fn authenticated(&self) -> Vec<String> {
        self.events()
            .iter()
            .filter_map(|l| l.strip_prefix("auth "))
            .filter_map(|l| l.split_whitespace().nth(1).map(str::to_string))
            .collect()
    }

    /// kcat logging in as `CLIENT` with its own credential cache (MIT's kinit, run by
    /// kcat's librdkafka).
    pub fn kcat(&self) -> Command {
        let mut cmd = kcat();
        cmd.args(["-b", &self.bootstrap])
            .args(["-X", "security.protocol=SASL_PLAINTEXT"])
            .args(["-X", "sasl.mechanisms=GSSAPI"])
            .args(["-X", "sasl.kerberos.service.name=kafka"])
            .args([
                "-X",
                &format!("sasl.kerberos.keytab={}", self.client_keytab.display()),
            ])
            .args(["-X", &format!("sasl.kerberos.principal={CLIENT}")])
            .env("KRB5_CONFIG", self.kdc.krb5_conf())
            .env(
                "KRB5CCNAME",
                format!("FILE:{}", self.path().join("kcat.cc").display()),
            );
        cmd
    }

    /// Produces one message per line to a partition, through the front, with kcat.
    pub fn produce(&self, partition: i32, lines: &[String]) {
        if let Err(how) = super::feed_kcat(self.kcat(), "alerts", partition, lines) {
            panic!(
                "kcat (GSSAPI) produce failed ({how}); front: {:?}",
                self.events()
            );
        }
    }

    /// The ZTF worker file's shape (DESIGN.md): the security block at the top level and
    /// again under `consumer.`, a multi-line JAAS value with trailing spaces,
    /// `useTicketCache=false`; `replace` swaps text in it (e.g. the principal) for the
    /// negative cases.
    pub fn ztf_worker(&self, dir: &Path, replace: &[(&str, &str)], extra: &str) -> PathBuf {
        let jaas = |prefix: &str| {
            format!(
                "{prefix}security.protocol=SASL_PLAINTEXT\n\
                 {prefix}sasl.mechanism=GSSAPI\n\
                 {prefix}sasl.kerberos.service.name=kafka\n\
                 {prefix}sasl.jaas.config=com.sun.security.auth.module.Krb5LoginModule required \\\n   \
                 useKeyTab=true \\\n   \
                 storeKeyTab=true \\\n   \
                 serviceName=\"kafka\" \\\n   \
                 keyTab=\"{keytab}\" \\\n   \
                 principal=\"{CLIENT}\" \\\n   \
                 useTicketCache=false;   \n",
                keytab = self.client_keytab.display()
            )
        };
        let mut text = format!(
            "bootstrap.servers={bootstrap}\n\
             key.converter=org.apache.kafka.connect.converters.ByteArrayConverter\n\
             value.converter=org.apache.kafka.connect.converters.ByteArrayConverter\n\
             offset.storage.file.filename={offsets}\n\
             offset.flush.interval.ms=1000\n\
             plugin.path=/usr/local/share/kafka/plugins\n\
             ferry.krb5.conf={krb5}\n\
             ferry.status.interval.ms=1000\n\
             {top}\
             consumer.max.poll.records=500\n\
             {consumer}{extra}",
            bootstrap = self.bootstrap,
            offsets = dir.join("connect.offsets").display(),
            krb5 = self.kdc.krb5_conf().display(),
            top = jaas(""),
            consumer = jaas("consumer."),
        );
        for (from, to) in replace {
            assert!(text.contains(from), "`{from}` is not in the worker file");
            text = text.replace(from, to);
        }
        let path = dir.join("worker.properties");
        std::fs::write(&path, text).expect("write worker file");
        path
    }
}

impl Drop for SecureCluster {
    fn drop(&mut self) {
        let _ = self.front.kill();
        let _ = self.front.wait();
    }
}

/// The `ferry-sasl-front` binary (built with the mock broker's package).
fn front_bin() -> PathBuf {
    mock_broker_bin()
        .parent()
        .expect("target dir")
        .join("ferry-sasl-front")
}
