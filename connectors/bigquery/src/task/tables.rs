//! The tables rows go to: created (`autoCreateTables`) and widened
//! (`allowNewBigQueryFields`) over REST, their columns known to the connector's tasks.

use std::collections::HashMap;
use std::sync::Arc;

use ferry_connector_api::data::Schema;

use super::encoder::Failure;
use crate::config::BigQueryConfig;
use crate::rest::Rest;
use crate::schema::{self, Field};
use crate::storage::RowType;

/// What is known of each table, shared by the connector's tasks so that a table is
/// created and widened once.
pub(crate) type Tables = Arc<tokio::sync::Mutex<HashMap<String, TableState>>>;

#[derive(Debug, Default)]
pub(crate) struct TableState {
    /// The table's columns, as last read or written.
    fields: Vec<Field>,
    /// (value schema, key schema) pairs whose rows are known to fit `fields`.
    checked: Vec<(Arc<Schema>, Option<Arc<Schema>>)>,
    /// `fields` as a protocol buffer message (Storage Write), made on first use; a new
    /// one when the columns change.
    row_type: Option<Arc<RowType>>,
}

/// A task's view of [`Tables`]: checks and changes tables for the rows it encodes.
pub(super) struct Catalog {
    pub(super) config: Arc<BigQueryConfig>,
    pub(super) rest: Rest,
    pub(super) tables: Tables,
    /// The connector's name, for log lines.
    pub(super) connector: String,
}

impl Catalog {
    /// Makes sure `table` exists and has the columns `wanted`: creates it
    /// (`autoCreateTables`), adds missing columns (`allowNewBigQueryFields`), or fails
    /// naming what to change.
    pub(super) async fn ensure_table(
        &self,
        table: &str,
        schemas: Option<(Arc<Schema>, Option<Arc<Schema>>)>,
        wanted: Vec<Field>,
    ) -> Result<(), Failure> {
        let mut tables = self.tables.lock().await;
        let seen = |state: &TableState| match &schemas {
            None => true,
            Some((v, k)) => state.checked.iter().any(|(cv, ck)| {
                Arc::ptr_eq(cv, v)
                    && match (ck, k) {
                        (Some(a), Some(b)) => Arc::ptr_eq(a, b),
                        (None, None) => true,
                        _ => false,
                    }
            }),
        };
        if let Some(state) = tables.get(table)
            && seen(state)
        {
            return Ok(());
        }
        let name = self.rest.table_name(table);
        let current = match tables.get(table) {
            Some(state) => Some(state.fields.clone()),
            None => self.rest.table_fields(table).await.map_err(Failure::Call)?,
        };
        let fields = match current {
            None if self.config.auto_create_tables => {
                self.rest
                    .create_table(table, &wanted, &self.config)
                    .await
                    .map_err(Failure::Call)?;
                tracing::info!(connector = %self.connector, table = %name, columns = wanted.len(), "Created the BigQuery table.");
                // Another task may have created it first, with other columns: read it back.
                self.rest
                    .table_fields(table)
                    .await
                    .map_err(Failure::Call)?
                    .unwrap_or(wanted.clone())
            }
            None => {
                return Err(Failure::Fatal(format!(
                    "table {name} does not exist; create it, or set autoCreateTables=true"
                )));
            }
            Some(fields) => fields,
        };
        let changed = schema::changed_columns(&fields, &wanted);
        if !changed.is_empty() {
            return Err(Failure::Record(format!(
                "its schema changed a column's type, which BigQuery cannot do: table {name} {}; send such records to a new table (topic2TableMap)",
                changed.join("; ")
            )));
        }
        let missing = schema::missing_columns(&fields, &wanted);
        let fields = if missing.is_empty() {
            fields
        } else if self.config.allow_new_fields {
            let merged = schema::with_new_columns(&fields, &wanted);
            self.rest
                .update_fields(table, &merged)
                .await
                .map_err(Failure::Call)?;
            tracing::info!(connector = %self.connector, table = %name, added = %missing.join(","), "Added columns to the BigQuery table (allowNewBigQueryFields=true).");
            merged
        } else {
            return Err(Failure::Record(format!(
                "table {name} has no column {}; set allowNewBigQueryFields=true to add new fields as NULLABLE",
                missing.join(", ")
            )));
        };
        let state = tables.entry(table.to_string()).or_default();
        if state.fields != fields {
            state.row_type = None;
            state.fields = fields;
        }
        if let Some(pair) = schemas {
            state.checked.push(pair);
        }
        Ok(())
    }

    /// Schemaless rows need a table that exists.
    pub(super) async fn ensure_existing(&self, table: &str) -> Result<(), Failure> {
        let mut tables = self.tables.lock().await;
        if tables.contains_key(table) {
            return Ok(());
        }
        match self.rest.table_fields(table).await.map_err(Failure::Call)? {
            Some(fields) => {
                tables.insert(
                    table.to_string(),
                    TableState {
                        fields,
                        ..TableState::default()
                    },
                );
                Ok(())
            }
            None => Err(Failure::Fatal(format!(
                "table {} does not exist, and schemaless JSON records (schemas.enable=false) cannot create it; create the table, or send records with a schema",
                self.rest.table_name(table)
            ))),
        }
    }

    /// The table's protocol buffer message (Storage Write API). The table is known:
    /// `ensure_table` or `ensure_existing` ran.
    pub(super) async fn row_type(&self, table: &str) -> Result<Arc<RowType>, Failure> {
        let mut tables = self.tables.lock().await;
        let state = tables.entry(table.to_string()).or_default();
        if let Some(row_type) = &state.row_type {
            return Ok(row_type.clone());
        }
        let row_type =
            Arc::new(RowType::new(&state.fields).map_err(|e| {
                Failure::Fatal(format!("table {}: {e}", self.rest.table_name(table)))
            })?);
        state.row_type = Some(row_type.clone());
        Ok(row_type)
    }
}
