//! The keytab login and its renewal, through MIT's GSSAPI library (`libgssapi`).
//!
//! With the environment of [`super::kerberos`] in place, acquiring initiator credentials
//! for the principal makes MIT Kerberos fetch a ticket-granting ticket with the client
//! keytab and store it in the process's private cache, where librdkafka's Cyrus SASL
//! finds it for every new broker connection. MIT refreshes such a ticket from the keytab
//! once half its life has passed whenever credentials are acquired; ferry acquires them
//! again at 80 % of the ticket's life plus up to 5 % jitter (Java's
//! `sasl.kerberos.ticket.renew.window.factor` and `.jitter`), checks that the expiry moved,
//! and says so: an INFO line with the new expiry, or an ERROR line naming the principal,
//! the KDC and the cause, retried every 30 s (sooner near expiry) until it works.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use libgssapi::credential::{Cred, CredUsage};
use libgssapi::name::Name;
use libgssapi::oid::{GSS_MECH_KRB5, GSS_NT_KRB5_PRINCIPAL, OidSet};

use super::kerberos::KerberosPlan;
use super::krb5_conf;

/// Java's renew window: renew after this fraction of the ticket's life…
const RENEW_WINDOW: f64 = 0.80;
/// …plus up to this much more, at random, so many workers do not renew at once.
const RENEW_JITTER: f64 = 0.05;
/// Retry period after a failed renewal.
const RETRY: Duration = Duration::from_secs(30);

/// A logged-in principal, renewed in the background until dropped.
#[derive(Debug)]
pub struct Login {
    principal: String,
    expires: SystemTime,
    stop: Arc<(Mutex<bool>, Condvar)>,
    renewer: Option<JoinHandle<()>>,
    cache_dir: PathBuf,
}

/// RFC 3339 time, for log lines.
pub fn rfc3339(t: SystemTime) -> String {
    jiff::Timestamp::try_from(t)
        .map(|ts| ts.round(jiff::Unit::Second).unwrap_or(ts).to_string())
        .unwrap_or_else(|_| "?".into())
}

fn mechs() -> Result<OidSet, String> {
    let mut set = OidSet::new();
    set.add(GSS_MECH_KRB5).map_err(|e| e.to_string())?;
    Ok(set)
}

fn name(principal: &str) -> Result<Name, String> {
    Name::new(principal.as_bytes(), Some(GSS_NT_KRB5_PRINCIPAL))
        .map_err(|e| format!("`{principal}` is not a Kerberos principal name: {e}"))
}

/// One line from a GSSAPI error: MIT's text, without the generic major-status prefix
/// when a more specific minor message follows.
fn reason(e: &libgssapi::error::Error) -> String {
    let text = e.to_string();
    let text = text.trim();
    // libgssapi prints "gssapi major error …, gssapi minor error …"; keep it on one line.
    text.replace('\n', " ")
}

/// The keytab is readable and holds a key for the principal (`Ok`: what was found).
pub fn check_keytab(plan: &KerberosPlan) -> Result<String, String> {
    let p = &plan.principal;
    let kt = plan.keytab.display();
    if let Err(e) = std::fs::File::open(&plan.keytab) {
        return Err(format!(
            "{}: keytab {kt}: {e} (set keyTab=\"…\" to a keytab file ferry's user can read)",
            plan.source
        ));
    }
    // With KRB5_KTNAME naming the keytab, acceptor credentials exist exactly when the
    // keytab holds a key for the principal.
    if let Err(e) = Cred::acquire(Some(&name(p)?), None, CredUsage::Accept, Some(&mechs()?)) {
        return Err(format!(
            "{}: keytab {kt} has no usable key for {p} ({}); check the principal's spelling and realm, or list the keytab with `klist -k {kt}`",
            plan.source,
            reason(&e)
        ));
    }
    Ok(format!("keytab {kt} holds a key for {p}"))
}

/// Gets (or refreshes) the ticket-granting ticket; returns its expiry.
pub fn acquire_ticket(plan: &KerberosPlan) -> Result<SystemTime, String> {
    let p = &plan.principal;
    let lifetime = acquire(&name(p)?, &mechs()?).map_err(|e| {
        let (_, kdcs) = krb5_conf::describe_kdcs(plan.krb5_conf.as_deref(), p);
        format!(
            "Kerberos login as {p} with keytab {} failed: {e}; {kdcs}",
            plan.keytab.display()
        )
    })?;
    Ok(SystemTime::now() + lifetime)
}

/// Whether the realm's KDCs (per krb5.conf) accept a TCP connection.
pub fn check_kdcs(plan: &KerberosPlan) -> Result<KdcCheck, String> {
    use krb5_conf::KdcLookup;
    let (lookup, file) = krb5_conf::lookup_kdcs(plan.krb5_conf.as_deref(), &plan.principal);
    let (_, described) = krb5_conf::describe_kdcs(plan.krb5_conf.as_deref(), &plan.principal);
    let fix = "point ferry.krb5.conf (worker file) or KRB5_CONFIG at the krb5.conf that names the realm's KDC";
    match lookup {
        KdcLookup::Listed(kdcs) => {
            let answering: Vec<String> = kdcs.iter().filter(|k| reachable(k)).cloned().collect();
            if answering.is_empty() {
                Err(format!(
                    "no KDC answers: {described}; check the host and port, the network and the firewall"
                ))
            } else {
                Ok(KdcCheck::Answers(format!(
                    "{described}: {} answers",
                    answering.join(", ")
                )))
            }
        }
        KdcLookup::NotListed { realm } => Ok(KdcCheck::NotListed(format!(
            "no kdc for realm {realm} in {}: MIT Kerberos will look for the realm's KDC in DNS (SRV records _kerberos._udp.{realm}) unless dns_lookup_kdc = false; the ticket step shows whether it finds one, else add `kdc = host:port` for the realm under [realms]",
            file.display()
        ))),
        KdcLookup::Unreadable(e) => Err(format!(
            "cannot read {}: {e}; MIT Kerberos needs it to find the KDC of {}: {fix}",
            file.display(),
            plan.principal
        )),
        KdcLookup::NoRealm => Err(format!(
            "the principal {} names no realm (write it as name@REALM in the JAAS principal)",
            plan.principal
        )),
    }
}

/// What [`check_kdcs`] found when nothing stops the login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KdcCheck {
    /// A KDC named in krb5.conf answers on TCP.
    Answers(String),
    /// krb5.conf names no KDC for the realm; MIT will try DNS.
    NotListed(String),
}

fn reachable(kdc: &str) -> bool {
    let addr = if kdc.contains(':') {
        kdc.to_string()
    } else {
        format!("{kdc}:88")
    };
    std::net::ToSocketAddrs::to_socket_addrs(&addr)
        .ok()
        .and_then(|mut a| a.next())
        .is_some_and(|a| std::net::TcpStream::connect_timeout(&a, Duration::from_secs(3)).is_ok())
}

/// Checks the keytab, then gets the first ticket. Every error is one line naming the
/// principal, the keytab (and where it was configured) or the KDC, and what to do.
pub fn login(plan: &KerberosPlan, cache_dir: &Path) -> Result<Login, String> {
    let p = &plan.principal;
    check_keytab(plan)?;
    let expires = acquire_ticket(plan)?;
    let lifetime = expires
        .duration_since(SystemTime::now())
        .unwrap_or_default();
    tracing::info!(
        principal = %p,
        expires = %rfc3339(expires),
        cache = %cache_dir.join("krb5cc").display(),
        "Kerberos login succeeded."
    );
    crate::metrics::kerberos_ticket(p, expires);
    let stop = Arc::new((Mutex::new(false), Condvar::new()));
    let renewer = {
        let stop = stop.clone();
        let plan = plan.clone();
        std::thread::Builder::new()
            .name("ferry-krb5-renew".into())
            .spawn(move || renew_loop(&plan, expires, lifetime, &stop))
            .map_err(|e| format!("cannot start the Kerberos renewal thread: {e}"))?
    };
    Ok(Login {
        principal: p.clone(),
        expires,
        stop,
        renewer: Some(renewer),
        cache_dir: cache_dir.to_path_buf(),
    })
}

/// Acquires initiator credentials (fetching or refreshing the ticket as MIT decides) and
/// returns their remaining lifetime.
fn acquire(wanted: &Name, mechs: &OidSet) -> Result<Duration, String> {
    let cred = Cred::acquire(Some(wanted), None, CredUsage::Initiate, Some(mechs))
        .map_err(|e| reason(&e))?;
    cred.lifetime().map_err(|e| reason(&e))
}

fn renew_loop(
    plan: &KerberosPlan,
    mut expires: SystemTime,
    mut life: Duration,
    stop: &(Mutex<bool>, Condvar),
) {
    let p = &plan.principal;
    let mut wait = life.mul_f64(RENEW_WINDOW + RENEW_JITTER * fastrand::f64());
    loop {
        if sleep_or_stop(stop, wait) {
            return;
        }
        let result = name(p).and_then(|n| mechs().and_then(|m| acquire(&n, &m)));
        let now = SystemTime::now();
        match result {
            Ok(remaining) if now + remaining > expires + Duration::from_secs(1) => {
                expires = now + remaining;
                life = remaining;
                tracing::info!(principal = %p, expires = %rfc3339(expires), "Kerberos ticket renewed.");
                crate::metrics::kerberos_ticket(p, expires);
                wait = life.mul_f64(RENEW_WINDOW + RENEW_JITTER * fastrand::f64());
            }
            outcome => {
                let (kdcs, described) = krb5_conf::describe_kdcs(plan.krb5_conf.as_deref(), p);
                let cause = match outcome {
                    Err(e) => e,
                    Ok(_) => no_new_ticket_cause(&kdcs),
                };
                let left = expires.duration_since(now).unwrap_or_default();
                tracing::error!(
                    principal = %p,
                    kdc = %described,
                    expires = %rfc3339(expires),
                    "Kerberos ticket renewal failed: {cause}; retrying in {}s.",
                    RETRY.min(left / 2).max(Duration::from_secs(1)).as_secs()
                );
                wait = RETRY.min(left / 2).max(Duration::from_secs(1));
            }
        }
    }
}

/// MIT keeps a still-valid ticket when a refresh fails, without saying why; a probe of
/// the KDCs tells the likely cause.
fn no_new_ticket_cause(kdcs: &[String]) -> String {
    match kdcs.iter().find(|k| reachable(k)) {
        Some(k) => format!("the KDC at {k} answers but issued no new ticket (see its log)"),
        None if kdcs.is_empty() => "no new ticket was issued".into(),
        None => format!("no KDC answered ({})", kdcs.join(", ")),
    }
}

/// Waits `d` unless told to stop; true if told to stop.
fn sleep_or_stop(stop: &(Mutex<bool>, Condvar), d: Duration) -> bool {
    let (lock, cv) = stop;
    let Ok(guard) = lock.lock() else { return true };
    match cv.wait_timeout_while(guard, d, |stopped| !*stopped) {
        Ok((guard, _)) => *guard,
        Err(_) => true,
    }
}

impl Login {
    pub fn principal(&self) -> &str {
        &self.principal
    }

    /// The expiry of the ticket obtained at login.
    pub fn first_expiry(&self) -> SystemTime {
        self.expires
    }
}

impl Drop for Login {
    fn drop(&mut self) {
        let (lock, cv) = &*self.stop;
        if let Ok(mut stopped) = lock.lock() {
            *stopped = true;
            cv.notify_all();
        }
        if let Some(t) = self.renewer.take() {
            let _ = t.join();
        }
        // The private cache holds this process's tickets only.
        let _ = std::fs::remove_dir_all(&self.cache_dir);
    }
}
