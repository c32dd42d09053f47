//! The HTTPS listeners' rustls configuration, from Connect's keystore keys: a PKCS#12 file
//! (read with p12-keystore), a PEM file, or PEM text in the worker file; an encrypted
//! PKCS#8 key is opened with `ssl.key.password`. Read at start-up: a keystore that cannot be
//! used stops ferry with one line naming the key and the fix, and never shows a password.

use std::path::Path;
use std::sync::Arc;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use crate::config::rest::{
    KEY_PASSWORD, KEYSTORE_CHAIN, KEYSTORE_KEY, KEYSTORE_LOCATION, KEYSTORE_PASSWORD, KeyStore,
    TlsConfig,
};
use crate::config::secret::Secret;

type Chain = (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>);

/// Builds the server configuration of every `https://` listener.
pub(crate) fn server_config(tls: &TlsConfig) -> Result<Arc<rustls::ServerConfig>, String> {
    let (certs, key, what) = match &tls.keystore {
        KeyStore::Pkcs12 { location, password } => {
            let (c, k) = pkcs12(tls, location, password.as_ref())?;
            (c, k, KEYSTORE_LOCATION)
        }
        KeyStore::PemFile(path) => {
            let text = read(tls, path)?;
            let certs = pem_certs(tls, &text, KEYSTORE_LOCATION)?;
            let key = pem_key(tls, &text, KEYSTORE_LOCATION)?;
            (certs, key, KEYSTORE_LOCATION)
        }
        KeyStore::PemText { chain, key } => {
            let certs = pem_certs(tls, chain.as_bytes(), KEYSTORE_CHAIN)?;
            let key = pem_key(tls, key.expose().as_bytes(), KEYSTORE_KEY)?;
            (certs, key, KEYSTORE_KEY)
        }
    };
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS cannot be set up: {e}"))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| {
            format!(
                "{}: the private key cannot serve the certificate chain ({e}); give the key that belongs to the first certificate",
                tls.label(what)
            )
        })?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

fn read(tls: &TlsConfig, path: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| {
        format!(
            "{}: cannot read {}: {e}; check the path and that this user may read it",
            tls.label(KEYSTORE_LOCATION),
            path.display()
        )
    })
}

fn pkcs12(tls: &TlsConfig, path: &Path, password: Option<&Secret>) -> Result<Chain, String> {
    let data = read(tls, path)?;
    // One password opens the store and its key in the files openssl and keytool write;
    // Kafka's key password defaults to the store's, so either may be the one given.
    let password = password
        .or(tls.key_password.as_ref())
        .map(Secret::expose)
        .unwrap_or("");
    let store = p12_keystore::KeyStore::from_pkcs12(
        &data,
        password,
        p12_keystore::Pkcs12ImportPolicy::Strict,
    )
    .map_err(|e| match e {
        p12_keystore::error::Error::MacError(_) | p12_keystore::error::Error::UnpadError => {
            format!(
                "{}: the password does not open {}; give the keystore's password (check it with: openssl pkcs12 -info -noout -in {})",
                tls.label(KEYSTORE_PASSWORD),
                path.display(),
                path.display()
            )
        }
        other => format!(
            "{}: {} is not a PKCS#12 keystore ferry can read ({other}); make one with: openssl pkcs12 -export -inkey key.pem -in chain.pem -out rest.p12",
            tls.label(KEYSTORE_LOCATION),
            path.display()
        ),
    })?;
    let (_, chain) = store.private_key_chain().ok_or_else(|| {
        format!(
            "{}: {} holds no private key with its certificate; make one with: openssl pkcs12 -export -inkey key.pem -in chain.pem -out rest.p12",
            tls.label(KEYSTORE_LOCATION),
            path.display()
        )
    })?;
    let certs = chain
        .certs()
        .iter()
        .map(|c| CertificateDer::from(c.as_der().to_vec()))
        .collect();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(chain.key().as_der().to_vec()));
    Ok((certs, key))
}

fn pem_certs(
    tls: &TlsConfig,
    text: &[u8],
    key: &'static str,
) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(text)
        .collect::<Result<_, _>>()
        .map_err(|e| {
            format!(
                "{}: the PEM certificates cannot be read: {e}",
                tls.label(key)
            )
        })?;
    if certs.is_empty() {
        return Err(format!(
            "{}: no certificate (-----BEGIN CERTIFICATE-----) found; give the certificate chain in PEM, the server's certificate first",
            tls.label(key)
        ));
    }
    Ok(certs)
}

const ENCRYPTED_BEGIN: &str = "-----BEGIN ENCRYPTED PRIVATE KEY-----";
const ENCRYPTED_END: &str = "-----END ENCRYPTED PRIVATE KEY-----";

fn pem_key(
    tls: &TlsConfig,
    text: &[u8],
    key: &'static str,
) -> Result<PrivateKeyDer<'static>, String> {
    let as_text = String::from_utf8_lossy(text);
    let text_bytes = as_text.as_bytes();
    if let Some(start) = as_text.find(ENCRYPTED_BEGIN) {
        let end = as_text[start..]
            .find(ENCRYPTED_END)
            .map(|e| start + e + ENCRYPTED_END.len())
            .ok_or_else(|| {
                format!(
                    "{}: the encrypted private key has no {ENCRYPTED_END} line",
                    tls.label(key)
                )
            })?;
        let Some(password) = &tls.key_password else {
            return Err(format!(
                "{}: the private key is encrypted; give its password as {}",
                tls.label(key),
                tls.label(KEY_PASSWORD)
                    .rsplit(": ")
                    .next()
                    .unwrap_or(KEY_PASSWORD)
            ));
        };
        let (_, der) = pkcs8::der::pem::decode_vec(&text_bytes[start..end]).map_err(|e| {
            format!(
                "{}: the encrypted private key cannot be read: {e}",
                tls.label(key)
            )
        })?;
        let info = pkcs8::EncryptedPrivateKeyInfoRef::try_from(der.as_slice()).map_err(|e| {
            format!(
                "{}: the encrypted private key cannot be read: {e}",
                tls.label(key)
            )
        })?;
        let doc = info.decrypt(password.expose()).map_err(|_| {
            format!(
                "{}: the password does not open the encrypted private key; give the key's password",
                tls.label(KEY_PASSWORD)
            )
        })?;
        return Ok(PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
            doc.as_bytes().to_vec(),
        )));
    }
    PrivateKeyDer::from_pem_slice(text).map_err(|e| {
        format!(
            "{}: no private key found ({e}); give the key in PEM (-----BEGIN PRIVATE KEY-----, RSA or EC)",
            tls.label(key)
        )
    })
}
