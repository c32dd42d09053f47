//! The schema-registry harness itself (tests/common/registry.rs): a real
//! Confluent-Schema-Registry-compatible server starts from the project's own install
//! script (or the test records a counted skip), registers Avro schemas and serves them by
//! id over the Confluent REST API, driven with curl; and several run at once, each on
//! free ports of its own.
#![allow(clippy::unwrap_used)]

mod common;

use serde_json::{Value, json};

use common::registry::SchemaRegistry;

const ALERT: &str = r#"{"type":"record","name":"Alert","namespace":"ztf",
  "fields":[{"name":"objectId","type":"string"},{"name":"candid","type":"long"}]}"#;
const CUTOUT: &str = r#"{"type":"record","name":"Cutout","namespace":"ztf",
  "fields":[{"name":"fileName","type":"string"},{"name":"stampData","type":"bytes"}]}"#;

fn parsed(schema: &str) -> Value {
    serde_json::from_str(schema).unwrap_or_else(|e| panic!("not JSON ({e}): {schema}"))
}

#[test]
fn registers_and_serves_schemas_by_id() {
    let Some(sr) = SchemaRegistry::start_or_skip("registers_and_serves_schemas_by_id") else {
        return;
    };
    let alert = sr.register("alerts-value", ALERT);
    let cutout = sr.register("cutouts-value", CUTOUT);
    assert_ne!(alert, cutout, "two schemas, two ids");
    assert!(alert > 0 && cutout > 0, "ids {alert}, {cutout}");

    // The registry may normalize the text; the schema itself must come back.
    assert_eq!(parsed(&sr.schema_by_id(alert)), parsed(ALERT));
    assert_eq!(parsed(&sr.schema_by_id(cutout)), parsed(CUTOUT));
    // Registering again is idempotent: the converter relies on stable ids.
    assert_eq!(sr.register("alerts-value", ALERT), alert);

    let (status, subjects) = sr.api("GET", "/subjects", None);
    assert_eq!(status, 200, "{subjects}");
    let mut subjects: Vec<&str> = subjects
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    subjects.sort_unstable();
    assert_eq!(subjects, ["alerts-value", "cutouts-value"]);
    let (status, latest) = sr.api("GET", "/subjects/alerts-value/versions/latest", None);
    assert_eq!(status, 200, "{latest}");
    assert_eq!(latest["id"], json!(alert));
    assert_eq!(latest["version"], json!(1));

    // An id nobody registered: Confluent's 404 with error_code 40403.
    let (status, missing) = sr.api("GET", "/schemas/ids/999999", None);
    assert_eq!(status, 404, "{missing}");
    assert_eq!(missing["error_code"], json!(40403), "{missing}");
}

/// Two registries at once (and this test runs beside the other one): no fixed port, and
/// each keeps its own schemas.
#[test]
fn two_registries_run_side_by_side() {
    let test = "two_registries_run_side_by_side";
    let Some(a) = SchemaRegistry::start_or_skip(test) else {
        return;
    };
    let Some(b) = SchemaRegistry::start_or_skip(test) else {
        return;
    };
    assert_ne!(a.url, b.url);
    assert_ne!(a.bootstrap, b.bootstrap);

    let in_a = a.register("only-in-a", ALERT);
    let in_b = b.register("only-in-b", CUTOUT);
    assert_eq!(parsed(&a.schema_by_id(in_a)), parsed(ALERT));
    assert_eq!(parsed(&b.schema_by_id(in_b)), parsed(CUTOUT));
    let (_, subjects_b) = b.api("GET", "/subjects", None);
    assert_eq!(
        subjects_b,
        json!(["only-in-b"]),
        "b sees only its own subject"
    );
    let (status, _) = a.api("GET", "/subjects/only-in-b/versions", None);
    assert_eq!(status, 404, "a does not know b's subject");

    // Stopping one leaves the other working.
    drop(a);
    assert_eq!(b.register("only-in-b", CUTOUT), in_b);
}
