//! Header transforms: `DropHeaders`, `HeaderFrom$Key/$Value`, `InsertHeader`.
//!
//! ferry's headers are bytes. A header a transform writes holds what the connector's
//! `header.converter` writes for the value Connect's transform would put there (see
//! `header_converter.rs`); with the default `SimpleHeaderConverter`: a string's UTF-8, a
//! number's or boolean's text (Java's `toString`: `42`, `1.5`, `2.35E12`), bytes as they
//! are, a date or time as `Values` writes it (`2019-08-23`, `14:34:54.346Z`), a struct,
//! map or array in `Values`' text form (`{"a":1}`, `[1,2]`).

use bytes::Bytes;
use ferry_connector_api::data::{Data, Schema, SchemaKind};
use ferry_connector_api::{ConfigError, Header, SinkRecord};

use crate::header_converter::{HeaderConverter, from_data};
use crate::keys::Keys;
use crate::value::{Parts, SchemaCache, Side, map_get, require_map, require_struct};
use crate::{Result, Transform, TransformError};

#[derive(Debug)]
pub(crate) struct DropHeaders {
    names: Vec<String>,
}

pub(crate) fn drop_headers(keys: &mut Keys<'_>) -> Result<Box<dyn Transform>, ConfigError> {
    Ok(Box::new(DropHeaders {
        names: keys.required_list("headers", "the header keys to remove")?,
    }))
}

impl Transform for DropHeaders {
    fn apply(&self, mut record: SinkRecord) -> Result<Option<SinkRecord>> {
        record.headers.retain(|h| !self.names.contains(&h.key));
        Ok(Some(record))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Operation {
    Copy,
    Move,
}

/// Copies or moves fields of the key or value into headers.
#[derive(Debug)]
pub(crate) struct HeaderFrom {
    side: Side,
    /// (field, header) pairs, in order.
    pairs: Vec<(String, String)>,
    operation: Operation,
    schemas: SchemaCache,
    converter: HeaderConverter,
}

pub(crate) fn header_from(
    keys: &mut Keys<'_>,
    side: Side,
) -> Result<Box<dyn Transform>, ConfigError> {
    let fields = keys.required_list("fields", "the fields to copy or move into headers")?;
    let headers = keys.required_list("headers", "the header keys, one for each field")?;
    if fields.len() != headers.len() {
        return Err(keys.invalid(
            "headers",
            format!(
                "it names {} headers for {} fields in `{}`; give one header per field",
                headers.len(),
                fields.len(),
                keys.full("fields")
            ),
        ));
    }
    let operation = match keys.required("operation", "copy or move")?.trim() {
        "copy" => Operation::Copy,
        "move" => Operation::Move,
        other => {
            return Err(keys.invalid(
                "operation",
                format!(
                    "`{}` is not copy or move",
                    ferry_connector_api::text::shown(other)
                ),
            ));
        }
    };
    keys.bool("replace.null.with.default", true)?;
    Ok(Box::new(HeaderFrom {
        side,
        pairs: fields.into_iter().zip(headers).collect(),
        operation,
        schemas: SchemaCache::default(),
        converter: keys.header_converter,
    }))
}

impl HeaderFrom {
    fn moved(&self, name: &str) -> bool {
        self.operation == Operation::Move && self.pairs.iter().any(|(f, _)| f == name)
    }
}

impl Transform for HeaderFrom {
    fn apply(&self, mut record: SinkRecord) -> Result<Option<SinkRecord>> {
        const PURPOSE: &str = "header field extraction";
        // A tombstone has no fields to copy; it passes unchanged.
        if crate::value::is_null(self.side.get(&record)) {
            return Ok(Some(record));
        }
        let mut parts = Parts::of(self.side.slot(&mut record).take());
        match parts.schema.take() {
            None => {
                let entries = require_map(&mut parts.data, PURPOSE)?;
                for (field, header) in &self.pairs {
                    let value = map_get(entries, field).cloned().unwrap_or(Data::Null);
                    record.headers.push(Header {
                        key: header.clone(),
                        value: self.header_bytes(&value, None)?,
                    });
                }
                entries.retain(|(k, _)| !matches!(k, Data::String(s) if self.moved(s)));
            }
            Some(schema) => {
                let fields = require_struct(&schema, PURPOSE)?;
                let Data::Struct(values) = std::mem::replace(&mut parts.data, Data::Null) else {
                    return Err(TransformError::new(
                        "the struct's data does not follow its schema",
                    ));
                };
                for (field, header) in &self.pairs {
                    let Some(i) = fields.iter().position(|f| f.name == *field) else {
                        return Err(TransformError::new(format!(
                            "{field} is not a valid field name"
                        )));
                    };
                    record.headers.push(Header {
                        key: header.clone(),
                        value: self.header_bytes(
                            values.get(i).unwrap_or(&Data::Null),
                            Some(&fields[i].schema),
                        )?,
                    });
                }
                let (kept_fields, kept_values): (Vec<_>, Vec<_>) = fields
                    .iter()
                    .cloned()
                    .zip(values)
                    .filter(|(f, _)| !self.moved(&f.name))
                    .unzip();
                parts.schema = Some(self.schemas.get(&schema, || Schema {
                    kind: SchemaKind::Struct(kept_fields),
                    ..(*schema).clone()
                }));
                parts.data = Data::Struct(kept_values);
            }
        }
        *self.side.slot(&mut record) = Some(parts.into_value());
        Ok(Some(record))
    }
}

impl HeaderFrom {
    /// A field's value as the header converter writes it; a value it cannot write is a
    /// HEADER_CONVERTER-stage error.
    fn header_bytes(&self, d: &Data, schema: Option<&Schema>) -> Result<Option<Bytes>> {
        self.converter
            .write(&from_data(d, schema))
            .map_err(|reason| TransformError {
                class: self.converter.class_name().to_string(),
                stage: Some(ferry_connector_api::Stage::HeaderConverter),
                ..TransformError::new(reason)
            })
    }
}

/// Adds a header with a fixed value.
#[derive(Debug)]
pub(crate) struct InsertHeader {
    header: String,
    value: Option<Bytes>,
}

pub(crate) fn insert_header(keys: &mut Keys<'_>) -> Result<Box<dyn Transform>, ConfigError> {
    let header = keys.required("header", "the key of the header to add")?;
    let value = match keys.optional_keep_empty("value.literal") {
        None => None,
        // Connect parses the literal with `Values.parseString`; the header converter
        // writes the value (`007` → `7`, `[1, 2]` → `[1,2]` with SimpleHeaderConverter).
        Some(literal) => keys
            .header_converter
            .write(&crate::values::parse_string(&literal))
            .map_err(|reason| keys.invalid("value.literal", reason))?,
    };
    Ok(Box::new(InsertHeader { header, value }))
}

impl Transform for InsertHeader {
    fn apply(&self, mut record: SinkRecord) -> Result<Option<SinkRecord>> {
        record.headers.push(Header {
            key: self.header.clone(),
            value: self.value.clone(),
        });
        Ok(Some(record))
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use ferry_connector_api::Header;
    use ferry_connector_api::data::{Data, Schema, SchemaKind};

    use crate::Transform;
    use crate::testing::*;

    fn header(k: &str, v: &str) -> Header {
        Header {
            key: k.into(),
            value: Some(Bytes::copy_from_slice(v.as_bytes())),
        }
    }

    /// Kafka: DropHeadersTest.dropAllHeaders, dropOneHeaderOutOfTwo, dropSeveralHeaders,
    /// dropOneHeaderHasNoMatch
    #[test]
    fn drops_every_header_with_a_listed_key() {
        let t = chain("DropHeaders", &[("headers", "dropped, other")]);
        let mut r = record("t", None);
        r.headers = vec![
            header("keep", "a"),
            header("dropped", "b"),
            header("dropped", "c"),
            header("keep", "d"),
        ];
        let out = t.apply(r).unwrap().unwrap();
        assert_eq!(out.headers, vec![header("keep", "a"), header("keep", "d")]);
        assert_eq!(
            chain_err("DropHeaders", &[]),
            "missing required key `transforms.t.headers`: DropHeaders needs the header keys to remove; set `transforms.t.headers`"
        );
    }

    fn headers(r: &ferry_connector_api::SinkRecord) -> Vec<(String, Option<String>)> {
        r.headers
            .iter()
            .map(|h| {
                (
                    h.key.clone(),
                    h.value
                        .as_ref()
                        .map(|v| String::from_utf8(v.to_vec()).unwrap()),
                )
            })
            .collect()
    }

    fn pair(k: &str, v: &str) -> (String, Option<String>) {
        (k.to_string(), Some(v.to_string()))
    }

    fn from(fields: &str, hdrs: &str, op: &str) -> crate::Chain {
        chain(
            "HeaderFrom$Value",
            &[("fields", fields), ("headers", hdrs), ("operation", op)],
        )
    }

    const TWO_FIELDS: &str = r#"{"field1":"field1-value","field2":"field2-value"}"#;

    /// Kafka: HeaderFromTest.schemaless ("basic copy", "basic move", "copy with preexisting
    /// header", "two headers from same field", "two fields to same header")
    #[test]
    fn header_from_schemaless() {
        let mut r = record("topic", Some(schemaless(TWO_FIELDS)));
        r.headers = vec![header("inserted1", "existing-value")];
        let out = from("field1", "inserted1", "copy")
            .apply(r.clone())
            .unwrap()
            .unwrap();
        assert_eq!(
            headers(&out),
            [
                pair("inserted1", "existing-value"),
                pair("inserted1", "field1-value")
            ]
        );
        assert_eq!(raw(&out.value), TWO_FIELDS);
        let out = from("field1", "inserted1", "move")
            .apply(r.clone())
            .unwrap()
            .unwrap();
        assert_eq!(raw(&out.value), r#"{"field2":"field2-value"}"#);
        let out = from("field1,field1", "inserted1,inserted2", "move")
            .apply(r.clone())
            .unwrap()
            .unwrap();
        assert_eq!(
            &headers(&out)[1..],
            [
                pair("inserted1", "field1-value"),
                pair("inserted2", "field1-value")
            ]
        );
        assert_eq!(raw(&out.value), r#"{"field2":"field2-value"}"#);
        let out = from("field1,field2", "inserted1,inserted1", "move")
            .apply(r)
            .unwrap()
            .unwrap();
        assert_eq!(
            &headers(&out)[1..],
            [
                pair("inserted1", "field1-value"),
                pair("inserted1", "field2-value")
            ]
        );
        assert_eq!(raw(&out.value), "{}");
        let out = from("field1", "inserted1", "copy")
            .apply(record("topic", None))
            .unwrap()
            .unwrap();
        assert!(out.value.is_none() && out.headers.is_empty());
    }

    /// Kafka: HeaderFromTest.withSchema ("basic move", "copy with struct value")
    #[test]
    fn header_from_with_schema() {
        let foo = struct_schema(&[("foo", Schema::new(SchemaKind::String))]);
        let s = struct_schema(&[("field1", foo), ("field2", Schema::new(SchemaKind::String))]);
        let v = Data::Struct(vec![
            Data::Struct(vec![Data::String("foo-value".into())]),
            Data::String("field2-value".into()),
        ]);
        let r = record("topic", Some(schemad(s, v)));
        let out = from("field1,field2", "inserted1,inserted2", "copy")
            .apply(r.clone())
            .unwrap()
            .unwrap();
        assert_eq!(
            headers(&out),
            [
                pair("inserted1", r#"{"foo":"foo-value"}"#),
                pair("inserted2", "field2-value")
            ]
        );
        assert_eq!(schema(&out.value).fields().len(), 2);
        let out = from("field2", "inserted1", "move")
            .apply(r)
            .unwrap()
            .unwrap();
        let names: Vec<&str> = schema(&out.value)
            .fields()
            .iter()
            .map(|f| f.name.as_str())
            .collect();
        assert_eq!(names, ["field1"]);
        assert_eq!(raw(&out.value), r#"{"field1":{"foo":"foo-value"}}"#);
    }

    fn with_converter(
        converter: crate::HeaderConverter,
        pairs: &[(&str, &str)],
    ) -> Result<crate::Chain, ferry_connector_api::ConfigError> {
        let mut props = ferry_connector_api::ConnectorProps::new(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        );
        crate::Chain::take_with(&mut props, converter)
    }

    /// `header.converter` decides the bytes of the headers HeaderFrom and InsertHeader
    /// write; a value ByteArrayConverter cannot write is a HEADER_CONVERTER-stage error
    /// naming the converter's class (a record error), or, for InsertHeader's fixed literal,
    /// a configuration error.
    #[test]
    fn the_header_converter_writes_the_headers_transforms_add() {
        use crate::HeaderConverter::{ByteArray, String as Text};
        let s = struct_schema(&[
            (
                "tags",
                Schema::new(SchemaKind::Array(Box::new(Schema::new(SchemaKind::String)))),
            ),
            ("n", Schema::new(SchemaKind::Int32)),
        ]);
        let v = Data::Struct(vec![
            Data::Array(vec![Data::String("a".into()), Data::String("b".into())]),
            Data::Int32(7),
        ]);
        let r = record("topic", Some(schemad(s, v)));
        let keys = [
            ("transforms", "t"),
            ("transforms.t.type", "HeaderFrom$Value"),
            ("transforms.t.fields", "tags,n"),
            ("transforms.t.headers", "tags,n"),
            ("transforms.t.operation", "copy"),
        ];
        let out = from("tags,n", "tags,n", "copy")
            .apply(r.clone())
            .unwrap()
            .unwrap();
        assert_eq!(
            headers(&out),
            [pair("tags", r#"["a","b"]"#), pair("n", "7")]
        );
        let out = with_converter(Text, &keys)
            .unwrap()
            .apply(r.clone())
            .unwrap()
            .unwrap();
        assert_eq!(headers(&out), [pair("tags", "[a, b]"), pair("n", "7")]);
        let err = with_converter(ByteArray, &keys)
            .unwrap()
            .apply(r)
            .unwrap_err();
        assert_eq!(err.stage, Some(ferry_connector_api::Stage::HeaderConverter));
        assert_eq!(
            err.class,
            "org.apache.kafka.connect.converters.ByteArrayConverter"
        );
        assert!(err.to_string().starts_with("transform `t` (HeaderFrom$Value): header.converter ByteArrayConverter writes only bytes, and this header holds an array"), "{err}");

        let insert = |c, literal| {
            with_converter(
                c,
                &[
                    ("transforms", "t"),
                    ("transforms.t.type", "InsertHeader"),
                    ("transforms.t.header", "h"),
                    ("transforms.t.value.literal", literal),
                ],
            )
        };
        let out = insert(Text, "{\"a\": [1, 2]}")
            .unwrap()
            .apply(record("t", None))
            .unwrap()
            .unwrap();
        assert_eq!(headers(&out), [pair("h", "{a=[1, 2]}")]);
        assert_eq!(
            insert(ByteArray, "7").unwrap_err().to_string(),
            "invalid value for `transforms.t.value.literal`: header.converter ByteArrayConverter writes only bytes, and this header holds an int8; set header.converter=org.apache.kafka.connect.storage.SimpleHeaderConverter to write it as text"
        );
    }

    /// Kafka: HeaderFromTest.invalidConfigExtraHeaderConfig, invalidConfigExtraFieldConfig,
    /// invalidConfigEmptyHeadersAndFieldsConfig
    #[test]
    fn header_from_config_errors() {
        assert_eq!(
            chain_err(
                "HeaderFrom$Key",
                &[
                    ("fields", "foo,bar"),
                    ("headers", "foo"),
                    ("operation", "copy")
                ]
            ),
            "invalid value for `transforms.t.headers`: it names 1 headers for 2 fields in `transforms.t.fields`; give one header per field"
        );
        assert_eq!(
            chain_err(
                "HeaderFrom$Key",
                &[("fields", "foo"), ("headers", "foo"), ("operation", "swap")]
            ),
            "invalid value for `transforms.t.operation`: `swap` is not copy or move"
        );
        assert!(
            chain_err(
                "HeaderFrom$Key",
                &[("headers", "foo"), ("operation", "copy")]
            )
            .starts_with("missing required key `transforms.t.fields`")
        );
    }

    /// Kafka: InsertHeaderTest.insertHeaderWithStringValue, …WhenOneExists, …WithSameKey,
    /// insertHeaderWithNullValue, insertHeaderWithInt8Value…Int64Value, insertHeaderWithFloatValue,
    /// insertHeaderWithDateValue, insertHeaderWithBlankName
    #[test]
    fn insert_header_appends_the_literal() {
        let mut r = record("test", None);
        r.headers = vec![
            header("AAA", "existent value"),
            header("BBB", "existent value"),
        ];
        let out = chain(
            "InsertHeader",
            &[("header", "AAA"), ("value.literal", "dummy value")],
        )
        .apply(r)
        .unwrap()
        .unwrap();
        assert_eq!(
            headers(&out),
            [
                pair("AAA", "existent value"),
                pair("BBB", "existent value"),
                pair("AAA", "dummy value")
            ]
        );
        for (literal, bytes) in [
            ("2", "2"),
            ("18000", "18000"),
            ("87474836647", "87474836647"),
            // Values.parseString: a fraction that a float32 holds (however roughly) is one.
            ("2353245343456.435435", "2.3532455E12"),
            ("007", "7"),
            ("[1, 2]", "[1,2]"),
            ("{\"a\": 1}", "{\"a\":1}"),
            (" yes ", " yes "),
            ("2019-08-23", "2019-08-23"),
            ("true", "true"),
        ] {
            let t = chain(
                "InsertHeader",
                &[("header", "AAA"), ("value.literal", literal)],
            );
            let out = t.apply(record("test", None)).unwrap().unwrap();
            assert_eq!(headers(&out), [pair("AAA", bytes)], "{literal}");
        }
        let out = chain(
            "InsertHeader",
            &[("header", "AAA"), ("value.literal", "null")],
        )
        .apply(record("test", None))
        .unwrap()
        .unwrap();
        assert_eq!(headers(&out), [("AAA".to_string(), None)], "null");
        let out = chain("InsertHeader", &[("header", "AAA")])
            .apply(record("test", None))
            .unwrap()
            .unwrap();
        assert_eq!(headers(&out), [("AAA".to_string(), None)]);
        assert_eq!(
            chain_err(
                "InsertHeader",
                &[("header", ""), ("value.literal", "dummy value")]
            ),
            "missing required key `transforms.t.header`: InsertHeader needs the key of the header to add; set `transforms.t.header`"
        );
    }
}
