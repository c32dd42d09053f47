//! Which KDCs a realm has, read from `krb5.conf`, so that login errors and `ferry check`
//! can name and probe them. MIT Kerberos does the real lookup; this reads only the
//! `[realms]` → `REALM = { kdc = host[:port] }` relations of MIT's profile format (no crate
//! reads it, and this small subset is all ferry needs). DNS SRV discovery is not followed.

use std::path::{Path, PathBuf};

/// The file MIT Kerberos reads: `ferry.krb5.conf`, else the first of `KRB5_CONFIG`, else
/// `/etc/krb5.conf`.
pub fn path(explicit: Option<&Path>) -> PathBuf {
    if let Some(p) = explicit {
        return p.to_path_buf();
    }
    std::env::var("KRB5_CONFIG")
        .ok()
        .and_then(|v| v.split(':').find(|s| !s.is_empty()).map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("/etc/krb5.conf"))
}

/// The realm part of a principal (`reader@KAFKA.SECURE` → `KAFKA.SECURE`).
pub fn realm_of(principal: &str) -> Option<&str> {
    principal
        .rsplit_once('@')
        .map(|(_, r)| r)
        .filter(|r| !r.is_empty())
}

/// The `kdc` entries of `realm` in profile text, as written (`host` or `host:port`).
pub fn kdcs(text: &str, realm: &str) -> Vec<String> {
    let mut in_realms = false;
    let mut depth = 0usize;
    let mut in_realm = false;
    let mut out = Vec::new();
    for raw in text.lines() {
        let line = raw.split(['#', ';']).next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        if line.starts_with('[') {
            in_realms = line == "[realms]";
            depth = 0;
            in_realm = false;
            continue;
        }
        if !in_realms {
            continue;
        }
        if let Some((name, rest)) = line.split_once('=') {
            let (name, rest) = (name.trim(), rest.trim());
            if rest.starts_with('{') {
                depth += 1;
                in_realm = depth == 1 && name == realm;
                continue;
            }
            if in_realm && depth == 1 && name == "kdc" {
                out.push(rest.to_string());
            }
        } else if line.starts_with('}') {
            depth = depth.saturating_sub(1);
            if depth == 0 {
                in_realm = false;
            }
        }
    }
    out
}

/// What the configuration in use says about the KDCs of a principal's realm.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KdcLookup {
    /// `kdc` lines for the realm, as written.
    Listed(Vec<String>),
    /// The file has no `kdc` line for the realm: MIT looks for SRV records in DNS.
    NotListed { realm: String },
    /// The file cannot be read.
    Unreadable(String),
    /// The principal names no realm.
    NoRealm,
}

/// Reads the KDCs of `principal`'s realm from the configuration in use.
pub fn lookup_kdcs(explicit: Option<&Path>, principal: &str) -> (KdcLookup, PathBuf) {
    let file = path(explicit);
    let Some(realm) = realm_of(principal) else {
        return (KdcLookup::NoRealm, file);
    };
    let lookup = match std::fs::read_to_string(&file) {
        Ok(text) => {
            let list = kdcs(&text, realm);
            if list.is_empty() {
                KdcLookup::NotListed {
                    realm: realm.to_string(),
                }
            } else {
                KdcLookup::Listed(list)
            }
        }
        Err(e) => KdcLookup::Unreadable(e.to_string()),
    };
    (lookup, file)
}

/// The KDCs of `principal`'s realm per the configuration in use, for messages: e.g.
/// `127.0.0.1:88 (per /etc/krb5.conf)`, or why none are known.
pub fn describe_kdcs(explicit: Option<&Path>, principal: &str) -> (Vec<String>, String) {
    let (lookup, file) = lookup_kdcs(explicit, principal);
    let realm = realm_of(principal).unwrap_or_default();
    match lookup {
        KdcLookup::Listed(list) => {
            let text = format!(
                "KDC {} of realm {realm} (per {})",
                list.join(", "),
                file.display()
            );
            (list, text)
        }
        KdcLookup::NotListed { realm } => (
            Vec::new(),
            format!(
                "no kdc for realm {realm} in {} (MIT may look it up in DNS)",
                file.display()
            ),
        ),
        KdcLookup::Unreadable(e) => (Vec::new(), format!("cannot read {}: {e}", file.display())),
        KdcLookup::NoRealm => (
            Vec::new(),
            format!("the principal {principal} names no realm"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONF: &str = "[libdefaults]\n default_realm = KAFKA.SECURE\n kdc = not-this\n\n\
        [realms]\n OTHER = {\n  kdc = other:88\n }\n KAFKA.SECURE = {\n  kdc = kdc1.example:88  # primary\n  kdc = kdc2.example\n  v4_name_convert = {\n   host = {\n    kdc = nested\n   }\n  }\n  admin_server = adm\n }\n\n[domain_realm]\n kdc = no\n";

    #[test]
    fn reads_only_the_realms_own_kdc_lines() {
        assert_eq!(
            kdcs(CONF, "KAFKA.SECURE"),
            ["kdc1.example:88", "kdc2.example"]
        );
        assert_eq!(kdcs(CONF, "OTHER"), ["other:88"]);
        assert!(kdcs(CONF, "NONE").is_empty());
    }

    #[test]
    fn realm_of_a_principal() {
        assert_eq!(realm_of("pitt-reader@KAFKA.SECURE"), Some("KAFKA.SECURE"));
        assert_eq!(realm_of("kafka/host@R"), Some("R"));
        assert_eq!(realm_of("nobody"), None);
    }
}
