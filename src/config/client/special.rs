//! The Java client keys whose translation depends on their value or on other keys:
//! `security.protocol`, `auto.offset.reset`, `partition.assignment.strategy`,
//! `group.protocol`, `ssl.endpoint.identification.algorithm`, Java key and trust stores, and
//! `sasl.jaas.config` (the login modules).

use std::collections::BTreeMap;

use ferry_connector_api::text::shown;

use super::super::ConfigFileError;
use super::super::jaas::{self, LoginModule};
use super::super::notes::{Note, NoteKind};
use super::{ClientProp, ClientSettings, Sourced, key_error};

/// The keys whose translation depends on their value or on other keys.
pub(super) fn special(
    merged: &BTreeMap<String, Sourced>,
    out: &mut ClientSettings,
) -> Result<(), ConfigFileError> {
    let put = |out: &mut ClientSettings, key: &str, value: &str, s: &Sourced| {
        out.props.insert(
            key.to_string(),
            ClientProp::new(s, value.to_string(), false),
        );
    };
    if let Some(s) = merged.get("security.protocol") {
        let v = s.value.trim().to_ascii_uppercase();
        if !["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"].contains(&v.as_str()) {
            return Err(key_error(
                s,
                format!(
                    "`{}` is not one of PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL",
                    shown(&s.value)
                ),
            ));
        }
        put(out, "security.protocol", &v, s);
    }
    if let Some(s) = merged.get("auto.offset.reset") {
        let v = match s.value.trim() {
            "earliest" | "smallest" | "beginning" => "earliest",
            "latest" | "largest" | "end" => "latest",
            // Java's `none` throws when there is no committed offset; librdkafka calls it `error`.
            "none" | "error" => "error",
            other => {
                return Err(key_error(
                    s,
                    format!("`{}` is not earliest, latest or none", shown(other)),
                ));
            }
        };
        put(out, "auto.offset.reset", v, s);
    }
    if let Some(s) = merged.get("partition.assignment.strategy") {
        let mut names = Vec::new();
        for class in s.value.split(',').map(str::trim).filter(|c| !c.is_empty()) {
            names.push(match class.rsplit('.').next().unwrap_or(class) {
                "RangeAssignor" | "range" => "range",
                "RoundRobinAssignor" | "roundrobin" => "roundrobin",
                "CooperativeStickyAssignor" | "cooperative-sticky" => "cooperative-sticky",
                other => {
                    return Err(key_error(
                        s,
                        format!("`{}` has no librdkafka equivalent; use RangeAssignor, RoundRobinAssignor or CooperativeStickyAssignor", shown(other)),
                    ));
                }
            });
        }
        out.notes.push(Note::new(
            &s.location,
            &s.written_as,
            NoteKind::Translated {
                to: format!("partition.assignment.strategy={}", names.join(",")),
            },
        ));
        put(out, "partition.assignment.strategy", &names.join(","), s);
    }
    if let Some(s) = merged.get("group.protocol") {
        group_protocol(s, merged, out)?;
    }
    if let Some(s) = merged.get("ssl.endpoint.identification.algorithm") {
        // Java disables host name verification with an empty value; librdkafka with `none`.
        let v = if s.value.trim().is_empty() {
            "none"
        } else {
            "https"
        };
        put(out, "ssl.endpoint.identification.algorithm", v, s);
    }
    store_settings(merged, out)?;
    if let Some(s) = merged.get("sasl.jaas.config") {
        jaas_settings(s, merged, out)?;
    }
    Ok(())
}

/// Client keys the broker owns under KIP-848's `group.protocol=consumer` (Kafka's Java
/// consumer and librdkafka both refuse them there), with the broker key that replaces each.
const BROKER_SIDE_WITH_CONSUMER_PROTOCOL: &[(&str, &str)] = &[
    (
        "session.timeout.ms",
        "the broker's group.consumer.session.timeout.ms",
    ),
    (
        "heartbeat.interval.ms",
        "the broker's group.consumer.heartbeat.interval.ms",
    ),
    (
        "partition.assignment.strategy",
        "the broker's assignor, or group.remote.assignor",
    ),
];

/// `group.protocol`: `classic` (the default) or KIP-848's `consumer`, whose group
/// coordinator assigns partitions itself and owns the session and heartbeat timing.
fn group_protocol(
    s: &Sourced,
    merged: &BTreeMap<String, Sourced>,
    out: &mut ClientSettings,
) -> Result<(), ConfigFileError> {
    let v = s.value.trim().to_ascii_lowercase();
    match v.as_str() {
        "classic" => {}
        "consumer" => {
            for (key, instead) in BROKER_SIDE_WITH_CONSUMER_PROTOCOL {
                if let Some(k) = merged.get(*key) {
                    return Err(key_error(
                        k,
                        format!(
                            "not used with {}={v} ({}): {instead} sets it; remove the key, or set group.protocol=classic",
                            s.written_as, s.location
                        ),
                    ));
                }
            }
        }
        other => {
            return Err(key_error(
                s,
                format!("`{}` is not classic or consumer", shown(other)),
            ));
        }
    }
    out.props
        .insert("group.protocol".into(), ClientProp::new(s, v, false));
    Ok(())
}

/// Java keystores and truststores → librdkafka's PEM / PKCS#12 settings.
fn store_settings(
    merged: &BTreeMap<String, Sourced>,
    out: &mut ClientSettings,
) -> Result<(), ConfigFileError> {
    let kind = |key: &str| {
        merged
            .get(key)
            .map(|s| s.value.trim().to_ascii_uppercase())
            .unwrap_or_else(|| "JKS".to_string())
    };
    if let Some(s) = merged.get("ssl.truststore.location") {
        match kind("ssl.truststore.type").as_str() {
            "PEM" => {
                out.notes.push(Note::new(
                    &s.location,
                    &s.written_as,
                    NoteKind::Translated {
                        to: "ssl.ca.location".into(),
                    },
                ));
                out.props
                    .insert("ssl.ca.location".into(), ClientProp::from(s));
            }
            other => {
                return Err(key_error(
                    s,
                    format!(
                        "librdkafka cannot read a {other} truststore; export its CA certificates to PEM (keytool -exportcert -rfc -keystore {} -alias <alias> > ca.pem) and set ssl.truststore.type=PEM with the PEM path, or librdkafka's ssl.ca.location",
                        shown(&s.value)
                    ),
                ));
            }
        }
    }
    if let Some(s) = merged.get("ssl.keystore.location") {
        match kind("ssl.keystore.type").as_str() {
            "PKCS12" => {
                out.props
                    .insert("ssl.keystore.location".into(), ClientProp::from(s));
            }
            other => {
                return Err(key_error(
                    s,
                    format!(
                        "librdkafka reads PKCS#12 keystores only, not {other}; convert it (keytool -importkeystore -srckeystore {} -destkeystore client.p12 -deststoretype PKCS12) and set ssl.keystore.type=PKCS12",
                        shown(&s.value)
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// `sasl.jaas.config` → librdkafka's SASL settings, checked against `sasl.mechanism`.
fn jaas_settings(
    s: &Sourced,
    merged: &BTreeMap<String, Sourced>,
    out: &mut ClientSettings,
) -> Result<(), ConfigFileError> {
    let jaas = jaas::parse(&s.value).map_err(|e| key_error(s, e.0))?;
    let mechanism = merged
        .get("sasl.mechanism")
        .map(|m| m.value.trim().to_ascii_uppercase())
        // Java's default mechanism.
        .unwrap_or_else(|| "GSSAPI".into());
    let expects: &[&str] = match &jaas.module {
        LoginModule::Kerberos => &["GSSAPI"],
        LoginModule::Plain => &["PLAIN"],
        LoginModule::Scram => &["SCRAM-SHA-256", "SCRAM-SHA-512"],
        LoginModule::OAuthBearer => &["OAUTHBEARER"],
        LoginModule::Other(class) => {
            return Err(key_error(
                s,
                format!(
                    "login module `{class}` is not supported; ferry translates Krb5LoginModule, PlainLoginModule, ScramLoginModule and OAuthBearerLoginModule"
                ),
            ));
        }
    };
    if !expects.contains(&mechanism.as_str()) {
        return Err(key_error(
            s,
            format!(
                "{} does not go with sasl.mechanism={mechanism}; set sasl.mechanism to {}",
                jaas.class.rsplit('.').next().unwrap_or(&jaas.class),
                expects.join(" or ")
            ),
        ));
    }
    let mut translated = Vec::new();
    let mut put = |key: &str, value: String| {
        translated.push(key.to_string());
        out.props
            .insert(key.to_string(), ClientProp::new(s, value, false));
    };
    let option = |name: &str, hint: &str| {
        jaas.options.get(name).cloned().ok_or_else(|| {
            key_error(
                s,
                format!(
                    "{} needs the option {name}=\"…\" ({hint})",
                    jaas.class.rsplit('.').next().unwrap_or(&jaas.class)
                ),
            )
        })
    };
    match jaas.module {
        LoginModule::Kerberos => {
            put(
                "sasl.kerberos.principal",
                option(
                    "principal",
                    "the client principal, e.g. reader@KAFKA.SECURE",
                )?,
            );
            if jaas.flag_option("useKeyTab", false) {
                put(
                    "sasl.kerberos.keytab",
                    option("keyTab", "the keytab file holding the principal's key")?,
                );
            }
            out.kerberos_debug = jaas.flag_option("debug", false);
            if let Some(service) = jaas.options.get("serviceName") {
                match merged.get("sasl.kerberos.service.name") {
                    Some(explicit) if explicit.value.trim() != service => {
                        return Err(key_error(
                            s,
                            format!(
                                "serviceName=\"{service}\" contradicts sasl.kerberos.service.name={}; make them equal",
                                explicit.value.trim()
                            ),
                        ));
                    }
                    Some(_) => {}
                    None => put("sasl.kerberos.service.name", service.clone()),
                }
            }
        }
        LoginModule::Plain | LoginModule::Scram => {
            put("sasl.username", option("username", "the SASL user")?);
            put("sasl.password", option("password", "the SASL password")?);
        }
        LoginModule::OAuthBearer => {
            if let Some(client_id) = jaas.options.get("clientId") {
                put("sasl.oauthbearer.method", "oidc".into());
                put("sasl.oauthbearer.client.id", client_id.clone());
                put(
                    "sasl.oauthbearer.client.secret",
                    option("clientSecret", "the OIDC client secret")?,
                );
                if let Some(scope) = jaas.options.get("scope") {
                    put("sasl.oauthbearer.scope", scope.clone());
                }
                if !merged.contains_key("sasl.oauthbearer.token.endpoint.url") {
                    return Err(key_error(
                        s,
                        "OAuth client credentials need sasl.oauthbearer.token.endpoint.url (the OIDC token endpoint)",
                    ));
                }
            } else if let Some(sub) = jaas.options.get("unsecuredLoginStringClaim_sub") {
                put("enable.sasl.oauthbearer.unsecure.jwt", "true".into());
                put("sasl.oauthbearer.config", format!("principal={sub}"));
            } else {
                return Err(key_error(
                    s,
                    "OAuthBearerLoginModule needs clientId and clientSecret (OIDC client credentials) or unsecuredLoginStringClaim_sub",
                ));
            }
        }
        LoginModule::Other(_) => {}
    }
    out.notes.push(Note::new(
        &s.location,
        &s.written_as,
        NoteKind::Translated {
            to: translated.join(", "),
        },
    ));
    Ok(())
}
