//! `ReplaceField$Key` / `ReplaceField$Value`: keeps (`include`), drops (`exclude`) and
//! renames (`renames=old:new,…`) fields. `whitelist`/`blacklist` are the old names of
//! `include`/`exclude`.

use ferry_connector_api::data::{Data, Field, Schema, SchemaKind};
use ferry_connector_api::{ConfigError, SinkRecord};

use crate::keys::{Keys, split_list};
use crate::value::{Parts, SchemaCache, Side, is_null, require_map, require_struct, struct_fields};
use crate::{Result, Transform, TransformError};

const PURPOSE: &str = "field replacement";

#[derive(Debug)]
pub(crate) struct ReplaceField {
    side: Side,
    exclude: Vec<String>,
    include: Vec<String>,
    renames: Vec<(String, String)>,
    schemas: SchemaCache,
}

/// A list spelt the new way or the old; giving both is an error.
fn list_either(keys: &mut Keys<'_>, key: &str, old: &str) -> Result<Vec<String>, ConfigError> {
    match (keys.optional(key), keys.optional(old)) {
        (Some(_), Some(_)) => Err(keys.invalid(
            old,
            format!(
                "it is the old name of `{}`; keep only that one",
                keys.full(key)
            ),
        )),
        (Some(v), None) | (None, Some(v)) => Ok(split_list(&v)),
        (None, None) => Ok(Vec::new()),
    }
}

pub(crate) fn build(keys: &mut Keys<'_>, side: Side) -> Result<Box<dyn Transform>, ConfigError> {
    let exclude = list_either(keys, "exclude", "blacklist")?;
    let include = list_either(keys, "include", "whitelist")?;
    let mut renames = Vec::new();
    for pair in keys.list("renames") {
        match pair.split(':').collect::<Vec<_>>()[..] {
            [from, to] if !from.is_empty() && !to.is_empty() => {
                renames.push((from.to_string(), to.to_string()));
            }
            _ => {
                return Err(keys.invalid(
                    "renames",
                    format!(
                        "`{}` is not a rename; write old:new pairs separated by commas",
                        ferry_connector_api::text::shown(&pair)
                    ),
                ));
            }
        }
    }
    keys.bool("replace.null.with.default", true)?;
    Ok(Box::new(ReplaceField {
        side,
        exclude,
        include,
        renames,
        schemas: SchemaCache::default(),
    }))
}

impl ReplaceField {
    fn kept(&self, name: &str) -> bool {
        !self.exclude.iter().any(|e| e == name)
            && (self.include.is_empty() || self.include.iter().any(|i| i == name))
    }

    fn renamed<'n>(&'n self, name: &'n str) -> &'n str {
        self.renames
            .iter()
            .find(|(from, _)| from == name)
            .map_or(name, |(_, to)| to)
    }
}

impl Transform for ReplaceField {
    fn apply(&self, mut record: SinkRecord) -> Result<Option<SinkRecord>> {
        if is_null(self.side.get(&record)) {
            return Ok(Some(record));
        }
        let mut parts = Parts::of(self.side.slot(&mut record).take());
        match &parts.schema {
            None => {
                let entries = require_map(&mut parts.data, PURPOSE)?;
                // In place: only a renamed key gets a new string.
                let mut not_a_name = None;
                entries.retain_mut(|(k, _)| match k {
                    Data::String(name) => {
                        if !self.kept(name) {
                            return false;
                        }
                        let new = self.renamed(name);
                        if new != name.as_str() {
                            *name = new.to_string();
                        }
                        true
                    }
                    other => {
                        not_a_name.get_or_insert(crate::value::kind_of(other));
                        true
                    }
                });
                if let Some(kind) = not_a_name {
                    return Err(TransformError::new(format!(
                        "a map key is {kind} rather than a field name"
                    )));
                }
            }
            Some(schema) => {
                let old = require_struct(schema, PURPOSE)?;
                let values = struct_fields(std::mem::replace(&mut parts.data, Data::Null));
                let kept: Vec<Data> = old
                    .iter()
                    .zip(values)
                    .filter(|(f, _)| self.kept(&f.name))
                    .map(|(_, v)| v)
                    .collect();
                // The output schema is made once per input schema, not per record.
                parts.schema = Some(self.schemas.get(schema, || {
                    Schema {
                        kind: SchemaKind::Struct(
                            old.iter()
                                .filter(|f| self.kept(&f.name))
                                .map(|f| Field {
                                    name: self.renamed(&f.name).to_string(),
                                    ..f.clone()
                                })
                                .collect(),
                        ),
                        ..(**schema).clone()
                    }
                }));
                parts.data = Data::Struct(kept);
            }
        }
        *self.side.slot(&mut record) = Some(parts.into_value());
        Ok(Some(record))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::*;

    fn four_fields() -> (Schema, Data) {
        (
            struct_schema(&[
                ("dont", Schema::new(SchemaKind::String)),
                ("abc", Schema::new(SchemaKind::Int32)),
                ("foo", Schema::new(SchemaKind::Boolean)),
                ("etc", Schema::new(SchemaKind::String)),
            ]),
            Data::Struct(vec![
                Data::String("whatever".into()),
                Data::Int32(42),
                Data::Boolean(true),
                Data::String("etc".into()),
            ]),
        )
    }

    /// Kafka: ReplaceFieldTest.tombstoneSchemaless and tombstoneWithSchema
    #[test]
    fn a_tombstone_is_left_unchanged() {
        let t = chain(
            "ReplaceField$Value",
            &[("include", "abc,foo"), ("renames", "abc:xyz,foo:bar")],
        );
        assert!(
            t.apply(record("test", None))
                .unwrap()
                .unwrap()
                .value
                .is_none()
        );
    }

    /// Kafka: ReplaceFieldTest.schemaless
    #[test]
    fn schemaless_excludes_and_renames() {
        let t = chain(
            "ReplaceField$Value",
            &[("exclude", "dont"), ("renames", "abc:xyz,foo:bar")],
        );
        let r = record(
            "test",
            Some(schemaless(
                r#"{"abc":42,"dont":"whatever","etc":"etc","foo":true}"#,
            )),
        );
        let out = t.apply(r).unwrap().unwrap();
        assert_eq!(raw(&out.value), r#"{"xyz":42,"etc":"etc","bar":true}"#);
    }

    /// Kafka: ReplaceFieldTest.withSchema
    #[test]
    fn with_schema_includes_and_renames() {
        let t = chain(
            "ReplaceField$Value",
            &[("include", "abc,foo"), ("renames", "abc:xyz,foo:bar")],
        );
        let (s, d) = four_fields();
        let out = t
            .apply(record("test", Some(schemad(s, d))))
            .unwrap()
            .unwrap();
        let names: Vec<&str> = schema(&out.value)
            .fields()
            .iter()
            .map(|f| f.name.as_str())
            .collect();
        assert_eq!(names, ["xyz", "bar"]);
        assert_eq!(
            data(&out.value),
            &Data::Struct(vec![Data::Int32(42), Data::Boolean(true)])
        );
        assert_eq!(raw(&out.value), r#"{"xyz":42,"bar":true}"#);
    }

    /// Kafka: ReplaceFieldTest.testReplaceNullWithDefaultConfigOnKey (the key variant; ferry's
    /// schemas carry no default values, so a null stays null)
    #[test]
    fn the_key_variant_works_on_the_key() {
        let t = chain("ReplaceField$Key", &[("blacklist", "dont,etc")]);
        let (s, d) = four_fields();
        let mut r = record("test", None);
        r.key = Some(schemad(s, d));
        let out = t.apply(r).unwrap().unwrap();
        assert_eq!(raw(&out.key), r#"{"abc":42,"foo":true}"#);
    }

    #[test]
    fn old_and_new_names_together_and_bad_renames_are_config_errors() {
        assert_eq!(
            chain_err(
                "ReplaceField$Value",
                &[("exclude", "a"), ("blacklist", "b")]
            ),
            "invalid value for `transforms.t.blacklist`: it is the old name of `transforms.t.exclude`; keep only that one"
        );
        assert_eq!(
            chain_err("ReplaceField$Value", &[("renames", "a:b,c")]),
            "invalid value for `transforms.t.renames`: `c` is not a rename; write old:new pairs separated by commas"
        );
        let t = chain("ReplaceField$Value", &[("whitelist", "a")]);
        let out = t
            .apply(record("x", Some(schemaless(r#"{"a":1,"b":2}"#))))
            .unwrap()
            .unwrap();
        assert_eq!(raw(&out.value), r#"{"a":1}"#);
    }
}
