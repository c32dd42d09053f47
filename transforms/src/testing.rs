//! Helpers for the transforms' unit tests.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use ferry_connector_api::data::{Data, Field, Schema, SchemaKind, Structured};
use ferry_connector_api::{SinkRecord, Value};

use crate::Chain;

fn map(class: &str, keys: &[(&str, &str)]) -> BTreeMap<String, String> {
    let mut m: BTreeMap<String, String> = keys
        .iter()
        .map(|(k, v)| (format!("transforms.t.{k}"), v.to_string()))
        .collect();
    m.insert("transforms".into(), "t".into());
    m.insert("transforms.t.type".into(), class.into());
    m
}

/// A chain of one transform `t` of `class` with `keys` under `transforms.t.`.
pub(crate) fn chain(class: &str, keys: &[(&str, &str)]) -> Chain {
    Chain::from_map(map(class, keys)).unwrap()
}

pub(crate) fn chain_err(class: &str, keys: &[(&str, &str)]) -> String {
    Chain::from_map(map(class, keys)).unwrap_err().to_string()
}

pub(crate) fn chain_of(pairs: &[(&str, &str)]) -> Result<Chain, String> {
    Chain::from_map(
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    )
    .map_err(|e| e.to_string())
}

pub(crate) fn record(topic: &str, value: Option<Value>) -> SinkRecord {
    SinkRecord {
        topic: topic.into(),
        original_topic: None,
        partition: 0,
        offset: 0,
        timestamp: None,
        key: None,
        value,
        headers: Vec::new(),
    }
}

pub(crate) fn schemad(schema: Schema, data: Data) -> Value {
    Value::Structured(Arc::new(Structured {
        schema: Some(Arc::new(schema)),
        data,
        raw: Bytes::from_static(b"original bytes"),
    }))
}

fn from_json(v: serde_json::Value) -> Data {
    match v {
        serde_json::Value::Null => Data::Null,
        serde_json::Value::Bool(b) => Data::Boolean(b),
        serde_json::Value::Number(n) => match n.as_i64() {
            Some(i) => Data::Int64(i),
            None => Data::Float64(n.as_f64().unwrap()),
        },
        serde_json::Value::String(s) => Data::String(s),
        serde_json::Value::Array(a) => Data::Array(a.into_iter().map(from_json).collect()),
        serde_json::Value::Object(o) => Data::Map(
            o.into_iter()
                .map(|(k, v)| (Data::String(k), from_json(v)))
                .collect(),
        ),
    }
}

/// A schemaless JSON value as the JSON converter reads it (keys in sorted order).
pub(crate) fn schemaless(text: &str) -> Value {
    Value::Structured(Arc::new(Structured {
        schema: None,
        data: from_json(serde_json::from_str(text).unwrap()),
        raw: Bytes::copy_from_slice(text.as_bytes()),
    }))
}

pub(crate) fn field(name: &str, schema: Schema) -> Field {
    Field {
        name: name.into(),
        schema,
        doc: None,
    }
}

pub(crate) fn struct_schema(fields: &[(&str, Schema)]) -> Schema {
    Schema::new(SchemaKind::Struct(
        fields.iter().map(|(n, s)| field(n, s.clone())).collect(),
    ))
}

/// The bytes a key or value would be written as.
pub(crate) fn raw(v: &Option<Value>) -> String {
    String::from_utf8(v.as_ref().unwrap().as_bytes().to_vec()).unwrap()
}

pub(crate) fn data(v: &Option<Value>) -> &Data {
    &v.as_ref().unwrap().structured().unwrap().data
}

pub(crate) fn schema(v: &Option<Value>) -> &Schema {
    v.as_ref()
        .unwrap()
        .structured()
        .unwrap()
        .schema
        .as_ref()
        .unwrap()
}
