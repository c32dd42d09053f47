//! Authentication the runtime does itself, beyond librdkafka's settings: the Kerberos
//! keytab login and its renewal ([`kerberos`] decides and sets up, `login` logs in).

pub mod kerberos;
pub mod krb5_conf;
#[cfg(feature = "kerberos")]
pub mod login;

use crate::config::WorkerConfig;
use crate::herder::Loaded;

/// Plans the Kerberos login for the loaded files and, when one is needed, makes sure the
/// process runs with its environment (re-executing once if not; see [`kerberos`]).
/// Call before anything else happens: a re-exec starts the program over.
pub fn prepare(loaded: &mut Loaded) -> Result<Option<kerberos::KerberosPlan>, String> {
    let plan = kerberos::plan(&loaded.worker, &mut loaded.connectors).map_err(|e| e.to_string())?;
    enter(plan)
}

/// [`prepare`] for a distributed worker, from the worker file alone: its own clients and
/// the connectors' consumers, which come later from the config topic, share one login.
pub fn prepare_worker(worker: &WorkerConfig) -> Result<Option<kerberos::KerberosPlan>, String> {
    enter(kerberos::plan_worker(worker).map_err(|e| e.to_string())?)
}

fn enter(plan: Option<kerberos::KerberosPlan>) -> Result<Option<kerberos::KerberosPlan>, String> {
    let Some(plan) = plan else { return Ok(None) };
    if cfg!(not(feature = "kerberos")) {
        return Err(format!(
            "{}: this ferry was built without the `kerberos` feature; rebuild with it (the default) to log in with a keytab",
            plan.source
        ));
    }
    kerberos::enter_environment(&plan)?;
    Ok(Some(plan))
}

/// Logs in for `plan` and keeps the ticket fresh until the returned value is dropped.
#[cfg(feature = "kerberos")]
pub fn login(plan: &kerberos::KerberosPlan) -> Result<login::Login, String> {
    let dir = kerberos::cache_dir();
    login::login(plan, &dir).inspect_err(|_| {
        // A successful login removes it when dropped; a failed one leaves nothing either.
        let _ = std::fs::remove_dir_all(&dir);
    })
}
