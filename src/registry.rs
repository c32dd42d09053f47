//! `connector.class` → connector factory: an explicit list, one cargo feature per connector.

use ferry_connector_api::ConnectorFactory;

/// Every connector compiled into this binary.
pub fn factories() -> Vec<&'static ConnectorFactory> {
    vec![
        #[cfg(feature = "connector-file")]
        &ferry_connector_file::FACTORY,
        #[cfg(feature = "connector-directory")]
        &ferry_connector_directory::FACTORY,
        #[cfg(feature = "connector-null")]
        &ferry_connector_null::FACTORY,
        #[cfg(feature = "connector-pubsub")]
        &ferry_connector_pubsub::FACTORY,
        #[cfg(feature = "connector-bigquery")]
        &ferry_connector_bigquery::FACTORY,
        #[cfg(feature = "connector-http")]
        &ferry_connector_http::FACTORY,
        #[cfg(feature = "connector-openmsistream")]
        &ferry_connector_openmsistream::FACTORY,
    ]
}

/// Kafka's source connectors, recognised so the error can say why they are refused.
const SOURCE_CONNECTORS: &[&str] = &[
    "org.apache.kafka.connect.file.FileStreamSourceConnector",
    "FileStreamSourceConnector",
    "FileStreamSource",
    "org.apache.kafka.connect.mirror.MirrorSourceConnector",
    "MirrorSourceConnector",
    "com.google.pubsub.kafka.source.CloudPubSubSourceConnector",
    "CloudPubSubSourceConnector",
];

/// Finds the factory for a `connector.class` value, or explains the refusal.
pub fn lookup(class: &str) -> Result<&'static ConnectorFactory, String> {
    let class = class.trim();
    let all = factories();
    if let Some(f) = all.iter().find(|f| f.class_names.contains(&class)) {
        return Ok(f);
    }
    if SOURCE_CONNECTORS.contains(&class) {
        return Err(format!(
            "`{class}` is a source connector; ferry runs sink connectors only"
        ));
    }
    let known: Vec<&str> = all
        .iter()
        .flat_map(|f| f.class_names.iter().copied())
        .collect();
    let hint = crate::config::notes::suggest(class, known.iter().copied())
        .map(|s| format!(" Did you mean `{s}`?"))
        .unwrap_or_default();
    Err(format!(
        "unknown connector class `{class}`.{hint} Known: {}",
        known.join(", ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn java_class_names_and_aliases_resolve() {
        assert_eq!(
            lookup("org.apache.kafka.connect.file.FileStreamSinkConnector")
                .unwrap()
                .name,
            "file"
        );
        assert_eq!(lookup("FileStreamSink").unwrap().name, "file");
        assert_eq!(lookup(" directory ").unwrap().name, "directory");
        assert_eq!(lookup("null").unwrap().name, "null");
    }

    #[test]
    fn refusals_explain_themselves() {
        let err = lookup("FileStreamSource").unwrap_err();
        assert!(err.contains("source connector"), "{err}");
        let err = lookup("FileStreamSinc").unwrap_err();
        assert!(err.contains("Did you mean `FileStreamSink`?"), "{err}");
        let err = lookup("com.example.Nope").unwrap_err();
        assert!(
            err.starts_with("unknown connector class `com.example.Nope`"),
            "{err}"
        );
    }
}
