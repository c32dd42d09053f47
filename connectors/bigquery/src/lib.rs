//! The BigQuery sink, in progress (issue 5). Done so far: [`config`], the connector's keys
//! with the Kafka Connect BigQuery sink's defaults; [`schema`], the mapping from an Avro
//! schema (as ZTF's container files carry) to a BigQuery table schema; and [`rows`], Avro
//! values to BigQuery's JSON rows. The sink is not registered as a connector until it
//! writes rows.

pub mod config;
pub mod rows;
pub mod schema;
