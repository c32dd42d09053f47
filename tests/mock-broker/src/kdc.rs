//! A throw-away MIT Kerberos realm on 127.0.0.1, for the Kerberos tests.
//!
//! Debian's `krb5-kdc` and `krb5-admin-server` provide the programs; the realm lives in a
//! directory of the caller's (its own `krb5.conf` and `kdc.conf`, passed by
//! `KRB5_CONFIG` / `KRB5_KDC_PROFILE`, so the machine's Kerberos setup is never read or
//! changed). `krb5kdc -n` runs in the foreground as a child, stopped by PID on drop.

use std::fs;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Where Debian installs the KDC programs (not on a non-root PATH).
const SBIN: &str = "/usr/sbin";

/// A running KDC for one realm.
#[derive(Debug)]
pub struct Kdc {
    dir: PathBuf,
    realm: String,
    port: u16,
    child: Option<Child>,
}

fn program(name: &str) -> PathBuf {
    let sbin = Path::new(SBIN).join(name);
    if sbin.exists() {
        sbin
    } else {
        PathBuf::from(name)
    }
}

/// Why a KDC cannot be started here, if it cannot (for a test to report as its skip reason).
pub fn missing() -> Option<String> {
    for p in ["krb5kdc", "kdb5_util", "kadmin.local"] {
        let found = Command::new(program(p))
            .arg("-?")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok();
        if !found {
            return Some(format!(
                "{p} not found: install Debian's krb5-kdc and krb5-admin-server (tests/run.sh does)"
            ));
        }
    }
    None
}

impl Kdc {
    /// Creates realm `realm` under `dir` with tickets of at most `ticket_life`, and starts
    /// its KDC on a free port.
    pub fn start(dir: &Path, realm: &str, ticket_life: Duration) -> Result<Kdc, String> {
        fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| format!("no free port: {e}"))?
            .port();
        let life = format!("{}s", ticket_life.as_secs());
        let d = dir.display();
        // udp_preference_limit = 1: clients always use TCP, the port this harness checks.
        let krb5_conf = format!(
            "[libdefaults]\n default_realm = {realm}\n dns_lookup_kdc = false\n dns_lookup_realm = false\n rdns = false\n dns_canonicalize_hostname = false\n udp_preference_limit = 1\n ticket_lifetime = {life}\n\n[realms]\n {realm} = {{\n  kdc = 127.0.0.1:{port}\n }}\n"
        );
        let kdc_conf = format!(
            "[kdcdefaults]\n kdc_listen = 127.0.0.1:{port}\n kdc_tcp_listen = 127.0.0.1:{port}\n\n[realms]\n {realm} = {{\n  database_name = {d}/principal\n  key_stash_file = {d}/stash\n  acl_file = {d}/kadm5.acl\n  max_life = {life}\n  max_renewable_life = 0\n }}\n\n[logging]\n kdc = FILE:{d}/kdc.log\n"
        );
        fs::write(dir.join("krb5.conf"), krb5_conf).map_err(|e| e.to_string())?;
        fs::write(dir.join("kdc.conf"), kdc_conf).map_err(|e| e.to_string())?;
        let mut kdc = Kdc {
            dir: dir.to_path_buf(),
            realm: realm.to_string(),
            port,
            child: None,
        };
        kdc.run(
            "kdb5_util",
            &["create", "-s", "-r", realm, "-P", "ferry-test-master-key"],
        )?;
        kdc.start_server()?;
        Ok(kdc)
    }

    pub fn realm(&self) -> &str {
        &self.realm
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The realm's client configuration, for `KRB5_CONFIG`.
    pub fn krb5_conf(&self) -> PathBuf {
        self.dir.join("krb5.conf")
    }

    /// The KDC's log (`krb5kdc` writes one line per ticket request).
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.join("kdc.log")).unwrap_or_default()
    }

    /// Adds a principal with a random key (`name` without the realm is put in it).
    pub fn add_principal(&self, name: &str) -> Result<(), String> {
        let full = self.qualify(name);
        self.run(
            "kadmin.local",
            &["-q", &format!("addprinc -randkey {full}")],
        )
    }

    /// Writes the principals' keys to a new keytab at `path`.
    pub fn keytab(&self, path: &Path, principals: &[&str]) -> Result<PathBuf, String> {
        for p in principals {
            let q = format!("ktadd -k {} {}", path.display(), self.qualify(p));
            self.run("kadmin.local", &["-q", &q])?;
        }
        Ok(path.to_path_buf())
    }

    /// Stops the KDC (by PID), e.g. to test what clients do when it is down.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts the KDC again after [`Kdc::stop`], on the same port.
    pub fn start_server(&mut self) -> Result<(), String> {
        if self.child.is_some() {
            return Ok(());
        }
        let child = Command::new(program("krb5kdc"))
            .arg("-n")
            .env("KRB5_CONFIG", self.krb5_conf())
            .env("KRB5_KDC_PROFILE", self.dir.join("kdc.conf"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("start krb5kdc: {e}"))?;
        self.child = Some(child);
        let end = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            if let Some(Ok(Some(status))) = self.child.as_mut().map(|c| c.try_wait()) {
                return Err(format!(
                    "krb5kdc exited ({status}); see {}",
                    self.dir.join("kdc.log").display()
                ));
            }
            if Instant::now() > end {
                return Err(format!(
                    "krb5kdc did not listen on 127.0.0.1:{} within 10 s",
                    self.port
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }

    fn qualify(&self, name: &str) -> String {
        if name.contains('@') {
            name.to_string()
        } else {
            format!("{name}@{}", self.realm)
        }
    }

    fn run(&self, prog: &str, args: &[&str]) -> Result<(), String> {
        let out = Command::new(program(prog))
            .args(args)
            .env("KRB5_CONFIG", self.krb5_conf())
            .env("KRB5_KDC_PROFILE", self.dir.join("kdc.conf"))
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("run {prog}: {e}"))?;
        let stderr = String::from_utf8_lossy(&out.stderr);
        // kadmin.local reports failures on stderr with a zero exit status.
        let failed = !out.status.success()
            || stderr.lines().any(|l| {
                !l.contains("No policy specified")
                    && !l.trim().is_empty()
                    && !l.starts_with("Authenticating")
            });
        if failed {
            return Err(format!("{prog} {}: {}", args.join(" "), stderr.trim()));
        }
        Ok(())
    }
}

impl Drop for Kdc {
    fn drop(&mut self) {
        self.stop();
    }
}
