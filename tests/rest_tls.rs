//! HTTPS listeners of the REST API (`listeners=https://…`), with certificates the test
//! makes with the `openssl` CLI, checked with curl trusting only that certificate: a
//! PKCS#12 keystore, PEM text in the worker file, a PEM file with an encrypted key; and the
//! one-line refusals of a wrong password and a JKS keystore.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::*;

const WAIT: Duration = Duration::from_secs(30);
const STORE_PASSWORD: &str = "st0re-pw-7731";
const KEY_PASSWORD: &str = "k3y-pw-4412";

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run openssl");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A self-signed certificate for 127.0.0.1 (cert.pem, key.pem), its PKCS#12 keystore
/// (store.p12) and its key encrypted with a password (key-enc.pem). None when openssl is
/// missing (the test is then skipped, with its reason recorded).
fn certificates(test: &str, dir: &Path) -> Option<PathBuf> {
    if Command::new("openssl").arg("version").output().is_err() {
        emulator::skip(
            test,
            "the openssl CLI is not installed (Debian package openssl)",
        );
        return None;
    }
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "key.pem",
            "-out",
            "cert.pem",
            "-days",
            "2",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ],
    );
    openssl(
        dir,
        &[
            "pkcs12",
            "-export",
            "-inkey",
            "key.pem",
            "-in",
            "cert.pem",
            "-out",
            "store.p12",
            "-passout",
            &format!("pass:{STORE_PASSWORD}"),
        ],
    );
    openssl(
        dir,
        &[
            "pkcs8",
            "-topk8",
            "-in",
            "key.pem",
            "-out",
            "key-enc.pem",
            "-passout",
            &format!("pass:{KEY_PASSWORD}"),
        ],
    );
    Some(dir.to_path_buf())
}

fn keep(dir: &Path) -> PathBuf {
    let keep = dir.join("keep.properties");
    write_props(
        &keep,
        &[
            ("name", "keep"),
            ("connector.class", "null"),
            ("topics", "keep"),
        ],
    );
    keep
}

/// ferry with an HTTPS listener and `extra` worker keys.
fn start(dir: &Path, bootstrap: &str, port: u16, extra: &[(&str, &str)]) -> Ferry {
    let listeners = format!("https://127.0.0.1:{port}");
    let mut props = vec![
        ("listeners", listeners.as_str()),
        ("ferry.rest.enable", "true"),
    ];
    props.extend_from_slice(extra);
    let worker = worker_props(dir, bootstrap, &props);
    Ferry::standalone(dir, &worker, &[&keep(dir)])
}

/// `GET {url}` with curl trusting `ca` only.
fn get(url: &str, ca: &Path) -> (u16, String) {
    let out = Command::new("curl")
        .args([
            "-sS",
            "--max-time",
            "10",
            "-w",
            "\n%{http_code}",
            "--cacert",
        ])
        .arg(ca)
        .arg(url)
        .output()
        .expect("run curl");
    let text = String::from_utf8_lossy(&out.stdout);
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", &text));
    match code.trim().parse::<u16>() {
        Ok(c) if c != 0 => (c, body.to_string()),
        _ => (0, String::from_utf8_lossy(&out.stderr).to_string()),
    }
}

fn serves_https(ferry: &Ferry, port: u16, ca: &Path) {
    let url = format!("https://127.0.0.1:{port}");
    let up = wait_until(WAIT, || get(&format!("{url}/health"), ca).0 == 200);
    assert!(
        up,
        "HTTPS did not come up: {:?}\n{}",
        get(&url, ca),
        ferry.log()
    );
    let (code, body) = get(&format!("{url}/"), ca);
    assert_eq!(code, 200, "{body}");
    let root: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert!(root["version"].is_string(), "{root}");
    let (code, body) = get(&format!("{url}/connectors"), ca);
    assert_eq!((code, body.trim()), (200, "[\"keep\"]"));
    // Only TLS is spoken there, and only a client trusting the certificate gets through.
    let (code, _) = curl("GET", &format!("http://127.0.0.1:{port}/"), &[], None, 5);
    assert_ne!(code, 200);
    let (code, err) = curl("GET", &format!("{url}/"), &[], None, 5);
    assert_eq!(code, 0, "an untrusted certificate was accepted: {err}");
    assert!(
        ferry.log().contains(&format!("https://127.0.0.1:{port}")),
        "{}",
        ferry.log()
    );
}

/// ferry stops at start with one line naming `key`, and the line shows no password.
fn refuses(ferry: &mut Ferry, key: &str, cause: &str) {
    assert_eq!(ferry.wait(WAIT).code(), Some(1), "{}", ferry.log());
    let log = ferry.log();
    let errors: Vec<&str> = log.lines().filter(|l| l.contains("error:")).collect();
    assert_eq!(errors.len(), 1, "{log}");
    assert!(
        errors[0].contains(key) && errors[0].contains(cause),
        "{log}"
    );
    assert!(
        !log.contains(STORE_PASSWORD) && !log.contains(KEY_PASSWORD),
        "a password in the log: {log}"
    );
    assert!(!log.contains("panicked"), "{log}");
}

#[test]
fn https_with_a_pkcs12_keystore_and_its_wrong_password() {
    let dir = tempfile::tempdir().unwrap();
    let Some(certs) = certificates(
        "https_with_a_pkcs12_keystore_and_its_wrong_password",
        dir.path(),
    ) else {
        return;
    };
    let mut broker = Broker::start(1, 300);
    broker.create_topic("keep", 1);
    let store = certs.join("store.p12");
    let port = free_port();
    let mut ferry = start(
        dir.path(),
        &broker.bootstrap,
        port,
        &[
            (
                "listeners.https.ssl.keystore.location",
                store.to_str().unwrap(),
            ),
            ("listeners.https.ssl.keystore.type", "PKCS12"),
            ("listeners.https.ssl.keystore.password", STORE_PASSWORD),
        ],
    );
    serves_https(&ferry, port, &certs.join("cert.pem"));
    ferry.signal("TERM");
    assert_eq!(ferry.wait(WAIT).code(), Some(0), "{}", ferry.log());

    let mut ferry = start(
        dir.path(),
        &broker.bootstrap,
        free_port(),
        &[
            (
                "listeners.https.ssl.keystore.location",
                store.to_str().unwrap(),
            ),
            ("listeners.https.ssl.keystore.type", "PKCS12"),
            ("listeners.https.ssl.keystore.password", "not-the-password"),
        ],
    );
    refuses(
        &mut ferry,
        "listeners.https.ssl.keystore.password",
        "the password does not open",
    );
    assert!(!ferry.log().contains("not-the-password"), "{}", ferry.log());
}

#[test]
fn https_with_pem_text_and_with_an_encrypted_pem_key() {
    let dir = tempfile::tempdir().unwrap();
    let Some(certs) = certificates(
        "https_with_pem_text_and_with_an_encrypted_pem_key",
        dir.path(),
    ) else {
        return;
    };
    let mut broker = Broker::start(1, 300);
    broker.create_topic("keep", 1);
    // PEM text in the worker file: Java properties' \n escapes, as Kafka's docs show.
    let escaped = |p: &str| {
        std::fs::read_to_string(certs.join(p))
            .unwrap()
            .replace('\n', "\\n")
    };
    let (chain, key) = (escaped("cert.pem"), escaped("key.pem"));
    let port = free_port();
    let mut ferry = start(
        dir.path(),
        &broker.bootstrap,
        port,
        &[
            ("listeners.https.ssl.keystore.type", "PEM"),
            ("listeners.https.ssl.keystore.certificate.chain", &chain),
            ("listeners.https.ssl.keystore.key", &key),
        ],
    );
    serves_https(&ferry, port, &certs.join("cert.pem"));
    ferry.signal("TERM");
    assert_eq!(ferry.wait(WAIT).code(), Some(0), "{}", ferry.log());

    // One PEM file: the encrypted key and the certificate, opened with ssl.key.password.
    let pem = certs.join("store.pem");
    std::fs::write(
        &pem,
        std::fs::read_to_string(certs.join("key-enc.pem")).unwrap()
            + &std::fs::read_to_string(certs.join("cert.pem")).unwrap(),
    )
    .unwrap();
    let port = free_port();
    let mut ferry = start(
        dir.path(),
        &broker.bootstrap,
        port,
        &[
            ("listeners.https.ssl.keystore.type", "PEM"),
            (
                "listeners.https.ssl.keystore.location",
                pem.to_str().unwrap(),
            ),
            ("listeners.https.ssl.key.password", KEY_PASSWORD),
        ],
    );
    serves_https(&ferry, port, &certs.join("cert.pem"));
    ferry.signal("TERM");
    assert_eq!(ferry.wait(WAIT).code(), Some(0), "{}", ferry.log());

    // The wrong key password.
    let mut ferry = start(
        dir.path(),
        &broker.bootstrap,
        free_port(),
        &[
            ("listeners.https.ssl.keystore.type", "PEM"),
            (
                "listeners.https.ssl.keystore.location",
                pem.to_str().unwrap(),
            ),
            ("listeners.https.ssl.key.password", "wrong-key-pw"),
        ],
    );
    refuses(
        &mut ferry,
        "listeners.https.ssl.key.password",
        "the password does not open the encrypted private key",
    );
    assert!(!ferry.log().contains("wrong-key-pw"), "{}", ferry.log());
}

#[test]
fn a_jks_keystore_is_refused_with_the_conversion_command() {
    let dir = tempfile::tempdir().unwrap();
    let mut broker = Broker::start(1, 300);
    broker.create_topic("keep", 1);
    let jks = dir.path().join("rest.jks");
    std::fs::write(&jks, [0xfe, 0xed, 0xfe, 0xed, 0, 0, 0, 2]).unwrap();
    // No type: Java's default, JKS.
    let mut ferry = start(
        dir.path(),
        &broker.bootstrap,
        free_port(),
        &[
            (
                "listeners.https.ssl.keystore.location",
                jks.to_str().unwrap(),
            ),
            ("listeners.https.ssl.keystore.password", STORE_PASSWORD),
        ],
    );
    refuses(
        &mut ferry,
        "listeners.https.ssl.keystore.location",
        "ferry reads PKCS12 and PEM keystores, not JKS",
    );
    assert!(
        ferry.log().contains("keytool -importkeystore"),
        "{}",
        ferry.log()
    );
}
