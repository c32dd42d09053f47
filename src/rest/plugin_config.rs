//! `GET /connector-plugins/{plugin}/config`: Connect's `ConfigKeyInfo` list for each
//! connector ferry has — the connector's own keys first, then the sink keys every
//! connector takes (Connect's `SinkConnectorConfig`), as `AbstractHerder.connectorPluginConfig`
//! orders them. ferry's connectors read their keys one by one from a map (no `ConfigDef`),
//! so the descriptions are tables here; a test checks each table against the keys the
//! connector actually asks for, so a key added to a connector without a row fails it.

use serde_json::{Value, json};

/// Connect's `ConfigDef.NO_DEFAULT_VALUE` (required), a null default, or a default.
#[derive(Debug, Clone, Copy)]
pub(crate) enum DefaultValue {
    Required,
    Null,
    Value(&'static str),
}

/// One `ConfigKey`, as Connect's `define(...)` takes it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Key {
    pub(crate) name: &'static str,
    /// Connect's `ConfigDef.Type` name: STRING, INT, LONG, BOOLEAN, LIST, CLASS, PASSWORD.
    pub(crate) kind: &'static str,
    pub(crate) default: DefaultValue,
    /// HIGH, MEDIUM or LOW.
    pub(crate) importance: &'static str,
    pub(crate) doc: &'static str,
    /// Group, order in group, width and display name (Connect's long `define`); None for
    /// keys defined without them (group null, order -1, width NONE, display name = name).
    pub(crate) display: Option<(&'static str, i32, &'static str, &'static str)>,
}

const fn key(
    name: &'static str,
    kind: &'static str,
    default: DefaultValue,
    importance: &'static str,
    doc: &'static str,
) -> Key {
    Key {
        name,
        kind,
        default,
        importance,
        doc,
        display: None,
    }
}

const fn common(
    k: Key,
    group: &'static str,
    order: i32,
    width: &'static str,
    display: &'static str,
) -> Key {
    Key {
        display: Some((group, order, width, display)),
        ..k
    }
}

use DefaultValue::{Null, Required, Value as Is};

const COMMON: &str = "Common";
const ERRORS: &str = "Error Handling";

/// The keys of Connect's `ConnectorConfig` and `SinkConnectorConfig` that ferry reads
/// (those it refuses or ignores are left out).
pub(crate) const SINK_BASE: &[Key] = &[
    common(
        key(
            "name",
            "STRING",
            Required,
            "HIGH",
            "Globally unique name to use for this connector.",
        ),
        COMMON,
        1,
        "MEDIUM",
        "Connector name",
    ),
    common(
        key(
            "connector.class",
            "STRING",
            Required,
            "HIGH",
            "Name or alias of the class for this connector. Must be a subclass of org.apache.kafka.connect.connector.Connector. If the connector is org.apache.kafka.connect.file.FileStreamSinkConnector, you can either specify this full name, or use \"FileStreamSink\" or \"FileStreamSinkConnector\" to make the configuration a bit shorter",
        ),
        COMMON,
        2,
        "LONG",
        "Connector class",
    ),
    common(
        key(
            "tasks.max",
            "INT",
            Is("1"),
            "HIGH",
            "Maximum number of tasks to use for this connector.",
        ),
        COMMON,
        3,
        "SHORT",
        "Tasks max",
    ),
    common(
        key(
            "key.converter",
            "CLASS",
            Null,
            "LOW",
            "Converter class used to convert between Kafka Connect format and the serialized form that is written to Kafka. This controls the format of the keys in messages written to or read from Kafka. Examples of common formats include JSON and Avro.",
        ),
        COMMON,
        5,
        "SHORT",
        "Key converter class",
    ),
    common(
        key(
            "value.converter",
            "CLASS",
            Null,
            "LOW",
            "Converter class used to convert between Kafka Connect format and the serialized form that is written to Kafka. This controls the format of the values in messages written to or read from Kafka. Examples of common formats include JSON and Avro.",
        ),
        COMMON,
        6,
        "SHORT",
        "Value converter class",
    ),
    common(
        key(
            "errors.retry.delay.max.ms",
            "LONG",
            Is("60000"),
            "MEDIUM",
            "The maximum duration in milliseconds between consecutive retry attempts. Jitter will be added to the delay once this limit is reached to prevent thundering herd issues.",
        ),
        ERRORS,
        2,
        "MEDIUM",
        "Maximum Delay Between Retries for Errors",
    ),
    common(
        key(
            "errors.tolerance",
            "STRING",
            Is("none"),
            "MEDIUM",
            "Behavior for tolerating errors during connector operation. 'none' is the default value and signals that any error will result in an immediate connector task failure; 'all' changes the behavior to skip over problematic records.",
        ),
        ERRORS,
        3,
        "SHORT",
        "Error Tolerance",
    ),
    common(
        key(
            "errors.log.enable",
            "BOOLEAN",
            Is("false"),
            "MEDIUM",
            "If true, write each error and the details of the failed operation and problematic record to the Connect application log. This is 'false' by default, so that only errors that are not tolerated are reported.",
        ),
        ERRORS,
        4,
        "SHORT",
        "Log Errors",
    ),
    common(
        key(
            "errors.log.include.messages",
            "BOOLEAN",
            Is("false"),
            "MEDIUM",
            "Whether to include in the log the Connect record that resulted in a failure. For sink records, the topic, partition, offset, and timestamp will be logged. This is 'false' by default, which will prevent record keys, values, and headers from being written to log files.",
        ),
        ERRORS,
        5,
        "SHORT",
        "Log Error Details",
    ),
    common(
        key(
            "topics",
            "LIST",
            Is(""),
            "HIGH",
            "List of topics to consume, separated by commas",
        ),
        COMMON,
        4,
        "LONG",
        "Topics",
    ),
    common(
        key(
            "topics.regex",
            "STRING",
            Is(""),
            "HIGH",
            "Regular expression giving topics to consume. Under the hood, the regex is compiled to a java.util.regex.Pattern. Only one of topics or topics.regex should be specified.",
        ),
        COMMON,
        4,
        "LONG",
        "Topics regex",
    ),
];

const FILE: &[Key] = &[key(
    "file",
    "STRING",
    Null,
    "HIGH",
    "Destination filename. If not specified, the standard output will be used",
)];

const NULL: &[Key] = &[];

const DIRECTORY: &[Key] = &[
    key(
        "directory.path",
        "STRING",
        Required,
        "HIGH",
        "The root directory the records are written under (created if absent), one file per record.",
    ),
    key(
        "directory.filename.template",
        "STRING",
        Is("{topic}/{partition}/{offset}"),
        "MEDIUM",
        "Each record's file name relative to directory.path, from the placeholders {topic}, {partition} and {offset}; all three are required so that two records never share a file.",
    ),
];

const PUBSUB: &[Key] = &[
    key(
        "cps.project",
        "STRING",
        Required,
        "HIGH",
        "The project containing the topic to which to publish.",
    ),
    key(
        "cps.topic",
        "STRING",
        Required,
        "HIGH",
        "The topic to which to publish.",
    ),
    key(
        "cps.endpoint",
        "STRING",
        Is("pubsub.googleapis.com:443"),
        "LOW",
        "Cloud Pub/Sub endpoint to use.",
    ),
    key(
        "cps.useEmulator",
        "BOOLEAN",
        Is("false"),
        "LOW",
        "Publish to the Pub/Sub emulator named by PUBSUB_EMULATOR_HOST (or cps.endpoint), without credentials.",
    ),
    key(
        "maxBufferSize",
        "INT",
        Is("100"),
        "MEDIUM",
        "The maximum number of messages that can be received for the messages on a topic partition before publishing them to Cloud Pub/Sub.",
    ),
    key(
        "maxBufferBytes",
        "LONG",
        Is("9500000"),
        "MEDIUM",
        "The maximum number of bytes that can be received for the messages on a topic partition before publishing them to Cloud Pub/Sub.",
    ),
    key(
        "delayThresholdMs",
        "INT",
        Is("100"),
        "MEDIUM",
        "The maximum amount of time to wait to reach maxBufferSize or maxBufferBytes before publishing outstanding messages to Cloud Pub/Sub.",
    ),
    key(
        "maxDelayThresholdMs",
        "INT",
        Is("100"),
        "LOW",
        "Another name of delayThresholdMs (the one the connector's README uses); give one of the two.",
    ),
    key(
        "maxRequestTimeoutMs",
        "INT",
        Is("10000"),
        "MEDIUM",
        "The timeout for individual publish requests to Cloud Pub/Sub.",
    ),
    key(
        "maxTotalTimeoutMs",
        "INT",
        Is("60000"),
        "MEDIUM",
        "The total timeout for a call to publish (including retries) to Cloud Pub/Sub.",
    ),
    key(
        "maxShutdownTimeoutMs",
        "INT",
        Is("60000"),
        "MEDIUM",
        "The maximum amount of time to wait for a publisher to shutdown when stopping task in Kafka Connect.",
    ),
    key(
        "maxOutstandingRequestBytes",
        "LONG",
        Is("6291456"),
        "MEDIUM",
        "The maximum number of outstanding bytes for incomplete and pending publish requests to Cloud Pub/Sub before the connector waits for some to complete.",
    ),
    key(
        "maxOutstandingMessages",
        "LONG",
        Is("10000"),
        "MEDIUM",
        "The maximum number of incomplete and pending publish requests to Cloud Pub/Sub before the connector waits for some to complete.",
    ),
    key(
        "metadata.publish",
        "BOOLEAN",
        Is("false"),
        "MEDIUM",
        "When true, include the Kafka topic, partition, offset, and timestamp as message attributes when a message is published to Cloud Pub/Sub.",
    ),
    key(
        "headers.publish",
        "BOOLEAN",
        Is("false"),
        "MEDIUM",
        "When true, include any headers as attributes when a message is published to Cloud Pub/Sub.",
    ),
    key(
        "messageBodyName",
        "STRING",
        Is("cps_message_body"),
        "MEDIUM",
        "When using a struct or map value schema, this field or key name indicates that the corresponding value will go into the Pub/Sub message body.",
    ),
    key(
        "orderingKeySource",
        "STRING",
        Is("none"),
        "MEDIUM",
        "What to use to populate the Pub/Sub message ordering key. Possible values are \"none\", \"key\", or \"partition\".",
    ),
    key(
        "enableCompression",
        "BOOLEAN",
        Is("false"),
        "MEDIUM",
        "When true, enable compression for messages published to Cloud Pub/Sub.",
    ),
    key(
        "compressionBytesThreshold",
        "LONG",
        Is("240"),
        "MEDIUM",
        "The minimum size of a batch of messages before compression is used, in bytes.",
    ),
    key(
        "gcp.credentials.file.path",
        "STRING",
        Null,
        "HIGH",
        "The filepath, which stores GCP credentials. If not defined, GOOGLE_APPLICATION_CREDENTIALS env is used.",
    ),
    key(
        "gcp.credentials.json",
        "PASSWORD",
        Null,
        "HIGH",
        "GCP credentials JSON blob. If specified, use the explicitly handed credentials. Consider using the externalized secrets feature in Kafka Connect for passing the value.",
    ),
];

const BIGQUERY: &[Key] = &[
    key(
        "project",
        "STRING",
        Required,
        "HIGH",
        "The BigQuery project to write to",
    ),
    key(
        "defaultDataset",
        "STRING",
        Required,
        "HIGH",
        "The default dataset to be used",
    ),
    key(
        "keyfile",
        "PASSWORD",
        Null,
        "MEDIUM",
        "The file containing a JSON key with BigQuery service account credentials (keySource=FILE), or the key itself (keySource=JSON)",
    ),
    key(
        "keySource",
        "STRING",
        Is("FILE"),
        "MEDIUM",
        "Determines whether the keyfile config is the path to the credentials json file or the raw json of the key itself. If set to APPLICATION_DEFAULT, the keyfile should not be provided and the connector will use any GCP application default credentials that it can find on the Connect worker for authentication.",
    ),
    key(
        "topic2TableMap",
        "STRING",
        Is(""),
        "LOW",
        "Map of topics to tables (optional). Format: comma-separated tuples, e.g. <topic-1>:<table-1>,<topic-2>:<table-2>,.. Note that topic name should not be modified using regex SMT while using this option.",
    ),
    key(
        "sanitizeTopics",
        "BOOLEAN",
        Is("false"),
        "MEDIUM",
        "Whether to automatically sanitize topic names before using them as table names; if not enabled topic names will be used directly as table names",
    ),
    key(
        "sanitizeFieldNames",
        "BOOLEAN",
        Is("false"),
        "MEDIUM",
        "Whether to automatically sanitize field names before using them as field names in big query. Big query specifies that field name can only contain letters, numbers, and underscores. The sanitizer will replace the invalid symbols with underscore. If the field name starts with a digit, the sanitizer will add an underscore in front of field name.",
    ),
    key(
        "autoCreateTables",
        "BOOLEAN",
        Is("true"),
        "HIGH",
        "Automatically create BigQuery tables if they don't already exist",
    ),
    key(
        "allowNewBigQueryFields",
        "BOOLEAN",
        Is("false"),
        "MEDIUM",
        "If true, new fields can be added to BigQuery tables during subsequent schema updates",
    ),
    key(
        "allowBigQueryRequiredFieldRelaxation",
        "BOOLEAN",
        Is("false"),
        "MEDIUM",
        "If true, fields in BigQuery Schema can be changed from REQUIRED to NULLABLE",
    ),
    key(
        "allowSchemaUnionization",
        "BOOLEAN",
        Is("false"),
        "MEDIUM",
        "If true, the existing table schema (if one is present) will be unionized with new record schemas during schema updates.",
    ),
    key(
        "allBQFieldsNullable",
        "BOOLEAN",
        Is("false"),
        "LOW",
        "If true, no fields in any produced BigQuery schema will be REQUIRED. All non-nullable avro fields will be translated as NULLABLE (or REPEATED, if arrays).",
    ),
    key(
        "kafkaKeyFieldName",
        "STRING",
        Null,
        "LOW",
        "The name of the field of Kafka key. Default to be null, which means Kafka Key Field will not be included.",
    ),
    key(
        "kafkaDataFieldName",
        "STRING",
        Null,
        "LOW",
        "The name of the field of Kafka Data. Default to be null, which means Kafka Data Field will not be included. ",
    ),
    key(
        "bigQueryRetry",
        "INT",
        Is("0"),
        "MEDIUM",
        "The number of retry attempts that will be made per BigQuery request that fails with a backend error or a quota exceeded error",
    ),
    key(
        "bigQueryRetryWait",
        "LONG",
        Is("1000"),
        "MEDIUM",
        "The minimum amount of time, in milliseconds, to wait between BigQuery backend or quota exceeded error retry attempts.",
    ),
    key(
        "timePartitioningType",
        "STRING",
        Is("DAY"),
        "LOW",
        "The time partitioning type to use when creating tables, or 'NONE' to create non-partitioned tables. Existing tables will not be altered to use this partitioning type.",
    ),
    key(
        "timestampPartitionFieldName",
        "STRING",
        Null,
        "LOW",
        "The name of the field in the value that contains the timestamp to partition by in BigQuery and enable timestamp partitioning for each table. Leave this configuration blank, to enable ingestion time partitioning for each table.",
    ),
    key(
        "partitionExpirationMs",
        "LONG",
        Null,
        "LOW",
        "The amount of time, in milliseconds, after which partitions should be deleted from the tables this connector creates. If this field is set, all data in partitions in this connector's tables that are older than the specified partition expiration time will be permanently deleted. Existing tables will not be altered to use this partition expiration time.",
    ),
    key(
        "clusteringPartitionFieldNames",
        "LIST",
        Null,
        "LOW",
        "List of fields on which data should be clustered by in BigQuery, separated by commas",
    ),
    key(
        "bigQueryMessageTimePartitioning",
        "BOOLEAN",
        Is("false"),
        "HIGH",
        "Whether or not to use the message time when inserting records. Default uses the connector processing time.",
    ),
    key(
        "bigQueryPartitionDecorator",
        "BOOLEAN",
        Is("true"),
        "HIGH",
        "Whether or not to append partition decorator to BigQuery table name when inserting records. Default is true. Setting this to true appends partition decorator to table name (e.g. table$yyyyMMdd depending on the configuration set for bigQueryPartitionDecorator). Setting this to false bypasses the logic to append the partition decorator and uses raw table name for inserts.",
    ),
    key(
        "convertDoubleSpecialValues",
        "BOOLEAN",
        Is("false"),
        "LOW",
        "Should +Infinity be converted to Double.MAX_VALUE and -Infinity and NaN be converted to Double.MIN_VALUE so they can make it to BigQuery",
    ),
    key(
        "useStorageWriteApi",
        "BOOLEAN",
        Is("false"),
        "MEDIUM",
        "(Beta feature: use with caution) Use Google's New Storage Write API for data streaming. Not available for upsert/delete mode",
    ),
    key(
        "ferry.bigquery.mode",
        "STRING",
        Is("decoded"),
        "MEDIUM",
        "ferry: decoded (one column per value field, as the BigQuery connector) or raw (topic, partition, offset, timestamp, key and value as BYTES, headers).",
    ),
    key(
        "ferry.bigquery.endpoint",
        "STRING",
        Is("https://bigquery.googleapis.com"),
        "LOW",
        "ferry: the BigQuery REST API's base URL.",
    ),
    key(
        "ferry.bigquery.storage.endpoint",
        "STRING",
        Is("https://bigquerystorage.googleapis.com"),
        "LOW",
        "ferry: the Storage Write API's gRPC address, for useStorageWriteApi=true.",
    ),
    key(
        "ferry.bigquery.emulator",
        "BOOLEAN",
        Is("false"),
        "LOW",
        "ferry: write to a BigQuery emulator, without credentials and over plaintext gRPC.",
    ),
];

const HTTP: &[Key] = &[
    key(
        "http.api.url",
        "STRING",
        Required,
        "HIGH",
        "HTTP API URL; may hold ${topic} and ${key}.",
    ),
    key(
        "http.url",
        "STRING",
        Null,
        "LOW",
        "Aiven's name of http.api.url; give one of the two.",
    ),
    key(
        "request.method",
        "STRING",
        Is("POST"),
        "HIGH",
        "HTTP Request Method. Valid options are PUT, POST, DELETE and PATCH.",
    ),
    key(
        "headers",
        "STRING",
        Is(""),
        "LOW",
        "HTTP headers to be included in all requests. Individual headers should be separated by the header.separator",
    ),
    key(
        "header.separator",
        "STRING",
        Is("|"),
        "LOW",
        "Separator character used in headers property.",
    ),
    key(
        "http.headers.additional",
        "STRING",
        Null,
        "LOW",
        "Aiven's additional headers: comma-separated Name:Value pairs.",
    ),
    key(
        "http.headers.content.type",
        "STRING",
        Null,
        "LOW",
        "Aiven's Content-Type header for every request.",
    ),
    key(
        "request.body.format",
        "STRING",
        Is("string"),
        "MEDIUM",
        "Used to produce request body in either JSON or String format",
    ),
    key(
        "batch.max.size",
        "INT",
        Is("1"),
        "MEDIUM",
        "The number of records accumulated in a batch before the HTTP API is invoked.",
    ),
    key(
        "batching.enabled",
        "BOOLEAN",
        Null,
        "LOW",
        "Aiven's batching switch: true sends up to 500 records per request, one per line.",
    ),
    key(
        "batch.json.as.array",
        "BOOLEAN",
        Is("false"),
        "MEDIUM",
        "Whether or not to use an array to bundle json records. Only used when request.body.format is set to json. This can be disabled only when batch.max.size is set to 1.",
    ),
    key(
        "batch.prefix",
        "STRING",
        Is(""),
        "HIGH",
        "Prefix added to record batches. This is applied once at the beginning of the batch of records",
    ),
    key(
        "batch.separator",
        "STRING",
        Is(","),
        "HIGH",
        "Separator for records in a batch.",
    ),
    key(
        "batch.suffix",
        "STRING",
        Is(""),
        "HIGH",
        "Suffix added to record batches. This is applied once at the end of the batch of records",
    ),
    key(
        "max.retries",
        "INT",
        Is("10"),
        "MEDIUM",
        "The maximum number of times to retry on errors before failing the task.",
    ),
    key(
        "retry.backoff.ms",
        "INT",
        Is("3000"),
        "MEDIUM",
        "The initial duration in milliseconds to wait following an error before a retry attempt is made.",
    ),
    key(
        "retry.on.status.codes",
        "STRING",
        Is("400-"),
        "MEDIUM",
        "The HTTP error codes to retry on. Comma-separated list of codes or range of codes to retry on. Ranges are specified with start and optional end code. Range boundaries are inclusive. For instance, 400- includes all codes greater than or equal to 400. 400-500 includes codes from 400 to 500, including 500. Multiple ranges and single codes can be specified together to achieve fine-grained control over retry behavior. For example, 404,408,500- will retry on 404 NOT FOUND, 408 REQUEST TIMEOUT, and all 5xx error codes.",
    ),
    key(
        "http.connect.timeout.ms",
        "INT",
        Is("30000"),
        "LOW",
        "Time to wait for a connection to be established.",
    ),
    key(
        "http.request.timeout.ms",
        "INT",
        Is("30000"),
        "LOW",
        "Time to wait for a request response to arrive.",
    ),
    key(
        "http.timeout",
        "INT",
        Null,
        "LOW",
        "Aiven's request timeout, in seconds; give it or http.request.timeout.ms.",
    ),
    key(
        "behavior.on.null.values",
        "STRING",
        Is("ignore"),
        "LOW",
        "How to handle records with a non-null key and a null value. Valid options are ignore, log and fail (delete is not supported by ferry).",
    ),
    key(
        "ssl.enabled",
        "BOOLEAN",
        Is("false"),
        "MEDIUM",
        "Whether or not to connect to the endpoint via SSL (an https:// http.api.url is enough in ferry).",
    ),
    key(
        "auth.type",
        "STRING",
        Is("NONE"),
        "HIGH",
        "Authentication mechanism required by the HTTP endpoint: NONE, BASIC, BEARER, OAUTH2 (and Aiven's STATIC).",
    ),
    key(
        "http.authorization.type",
        "STRING",
        Null,
        "LOW",
        "Aiven's name of auth.type; give one of the two.",
    ),
    key(
        "connection.user",
        "STRING",
        Null,
        "HIGH",
        "The username to be used with an endpoint requiring basic authentication.",
    ),
    key(
        "connection.password",
        "PASSWORD",
        Null,
        "HIGH",
        "The password to be used with an endpoint requiring basic authentication.",
    ),
    key(
        "bearer.token",
        "PASSWORD",
        Null,
        "HIGH",
        "The bearer authentication token to be used with an endpoint requiring bearer token based authentication",
    ),
    key(
        "http.headers.authorization",
        "PASSWORD",
        Null,
        "LOW",
        "Aiven's static Authorization header (auth.type=STATIC).",
    ),
    key(
        "oauth2.token.url",
        "STRING",
        Null,
        "HIGH",
        "The URL to be used for fetching the OAuth2 token. Client Credentials is the only supported grant type.",
    ),
    key(
        "oauth2.access.token.url",
        "STRING",
        Null,
        "LOW",
        "Aiven's name of oauth2.token.url; give one of the two.",
    ),
    key(
        "oauth2.client.id",
        "STRING",
        Null,
        "HIGH",
        "The client id used when fetching the OAuth2 token.",
    ),
    key(
        "oauth2.client.secret",
        "PASSWORD",
        Null,
        "HIGH",
        "The secret used when fetching the OAuth2 token.",
    ),
    key(
        "oauth2.client.scope",
        "STRING",
        Null,
        "LOW",
        "The scope used when fetching the OAuth2 token (sent only when set).",
    ),
    key(
        "oauth2.client.auth.mode",
        "STRING",
        Is("header"),
        "LOW",
        "Specifies how to encode client_id and client_secret in the OAuth2 authorization request. If set to header, the credentials are encoded as an 'Authorization: Basic <base-64 encoded client_id:client_secret>' HTTP header. If set to url, then client_id and client_secret are sent as URL encoded parameters.",
    ),
    key(
        "oauth2.client.authorization.mode",
        "STRING",
        Null,
        "LOW",
        "Aiven's name of oauth2.client.auth.mode; give one of the two.",
    ),
    key(
        "oauth2.token.property",
        "STRING",
        Is("access_token"),
        "LOW",
        "The name of the property containing the OAuth2 token returned by the http proxy.",
    ),
    key(
        "oauth2.response.token.property",
        "STRING",
        Null,
        "LOW",
        "Aiven's name of oauth2.token.property; give one of the two.",
    ),
    key(
        "reporter.result.topic.name",
        "STRING",
        Null,
        "MEDIUM",
        "The name of the topic to produce records to after successfully processing a sink record. Use ${connector} within the pattern to specify the current connector name.",
    ),
    key(
        "reporter.error.topic.name",
        "STRING",
        Null,
        "MEDIUM",
        "The name of the topic to produce records to after each unsuccessful record sink attempt. Use ${connector} within the pattern to specify the current connector name.",
    ),
    key(
        "report.errors.as",
        "STRING",
        Is("error_string"),
        "LOW",
        "Dictates the content of records produced to the error topic. If set to error_string, the value would be a human readable string describing the failure. If set to http_response, the value would be the plain response content for the request which failed to write the record.",
    ),
];

/// The table of a connector, by its registry name.
pub(crate) fn own_keys(connector: &str) -> Option<&'static [Key]> {
    Some(match connector {
        "file" => FILE,
        "null" => NULL,
        "directory" => DIRECTORY,
        "pubsub" => PUBSUB,
        "bigquery" => BIGQUERY,
        "http" => HTTP,
        _ => return None,
    })
}

/// Connect's `ConfigKeyInfo` JSON of one key.
pub(crate) fn key_info(k: &Key) -> Value {
    let (required, default) = match k.default {
        DefaultValue::Required => (true, None),
        DefaultValue::Null => (false, None),
        DefaultValue::Value(v) => (false, Some(v)),
    };
    let (group, order, width, display) = k.display.unwrap_or(("", -1, "NONE", k.name));
    json!({
        "name": k.name,
        "type": k.kind,
        "required": required,
        "default_value": default,
        "importance": k.importance,
        "documentation": k.doc,
        "group": if group.is_empty() { Value::Null } else { json!(group) },
        "width": width,
        "display_name": display,
        "dependents": [],
        "order": order,
    })
}

/// A connector's keys, then the sink keys it does not define itself (Connect's order).
pub(crate) fn keys_of(connector: &str) -> Vec<&'static Key> {
    let own = own_keys(connector).unwrap_or_default();
    own.iter()
        .chain(
            SINK_BASE
                .iter()
                .filter(|b| !own.iter().any(|o| o.name == b.name)),
        )
        .collect()
}

/// `GET /connector-plugins/{plugin}/config` for a `connector.class` name or alias: the
/// connector's keys, then the sink keys it does not define itself. None: no such plugin.
pub(crate) fn plugin_config(plugin: &str) -> Option<Vec<Value>> {
    let factory = crate::registry::factories()
        .into_iter()
        .find(|f| f.class_names.contains(&plugin))?;
    own_keys(factory.name)?;
    Some(keys_of(factory.name).into_iter().map(key_info).collect())
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use ferry_connector_api::ConnectorProps;

    use super::*;

    /// Keys a connector asks for that the table leaves out on purpose: accepted only to be
    /// refused with a pointer, or accepted with no effect in ferry (said in a note).
    fn undescribed(connector: &str) -> BTreeSet<&'static str> {
        let mut out = BTreeSet::new();
        #[cfg(feature = "connector-bigquery")]
        if connector == "bigquery" {
            out.extend([
                "datasets",
                "upsertEnabled",
                "deleteEnabled",
                "enableBatchMode",
                "enableBatchLoad",
            ]);
            out.extend(
                ferry_connector_bigquery::config::NO_EFFECT
                    .iter()
                    .map(|(k, _)| *k),
            );
        }
        if connector == "http" {
            // Refused by name (not supported yet), or read with no effect in ferry.
            out.extend([
                "oauth2.client.headers",
                "http.proxy.host",
                "http.proxy.port",
                "behavior.on.error",
                "retry.backoff.policy",
                "reporter.result.topic.replication.factor",
                "reporter.result.topic.partitions",
                "reporter.error.topic.replication.factor",
                "reporter.error.topic.partitions",
            ]);
        }
        out
    }

    /// Every table lists exactly the keys its connector asks for (so none can drift), and
    /// its required keys are the ones the connector cannot do without.
    #[test]
    fn each_table_is_the_keys_its_connector_reads() {
        let examples: BTreeMap<&str, &str> = [
            ("directory.path", "/tmp/out"),
            ("cps.project", "my-project"),
            ("cps.topic", "my-topic"),
            ("project", "my-project"),
            ("defaultDataset", "my_dataset"),
            ("http.api.url", "http://localhost:8080/api/messages"),
        ]
        .into_iter()
        .collect();
        let factories = crate::registry::factories();
        assert!(!factories.is_empty());
        for f in factories {
            let table =
                own_keys(f.name).unwrap_or_else(|| panic!("connector {} has no key table", f.name));
            let required: BTreeMap<String, String> = table
                .iter()
                .filter(|k| matches!(k.default, DefaultValue::Required))
                .map(|k| {
                    let v = examples
                        .get(k.name)
                        .unwrap_or_else(|| panic!("no example for {}", k.name));
                    (k.name.to_string(), v.to_string())
                })
                .collect();
            let mut props = ConnectorProps::new(required.clone());
            if let Err(e) = (f.create)(&mut props) {
                panic!("{} with its required keys only: {e}", f.name);
            }
            let asked: BTreeSet<&str> = props.known_keys().collect();
            let described: BTreeSet<&str> = table.iter().map(|k| k.name).collect();
            let skipped = undescribed(f.name);
            let missing: Vec<&&str> = asked
                .iter()
                .filter(|k| !described.contains(**k) && !skipped.contains(**k))
                .collect();
            assert!(
                missing.is_empty(),
                "{}: keys read but not described in src/rest/plugin_config.rs: {missing:?}",
                f.name
            );
            let unread: Vec<&&str> = described.iter().filter(|k| !asked.contains(**k)).collect();
            assert!(
                unread.is_empty(),
                "{}: keys described that the connector does not read: {unread:?}",
                f.name
            );
            // Each required key really is: without it the connector refuses.
            for k in required.keys() {
                let mut without = required.clone();
                without.remove(k);
                assert!(
                    (f.create)(&mut ConnectorProps::new(without)).is_err(),
                    "{}: {k} is described as required but is not",
                    f.name
                );
            }
        }
    }

    /// The sink keys described are ones the runtime reads: a connector file setting each
    /// of them (to its default, or an example) loads without a note that it is unknown or
    /// ignored — and an unknown key does get such a note, so the check can fail.
    #[test]
    fn the_sink_keys_described_are_read_by_the_runtime() {
        use crate::config::{ConnectorConfig, PropertiesFile, WorkerConfig};
        let worker = WorkerConfig::from_file(
            PropertiesFile::parse(
                std::path::Path::new("w.properties"),
                b"bootstrap.servers=localhost:9092\noffset.storage.file.filename=/tmp/o\n",
            )
            .unwrap(),
            &crate::config::providers::SystemEnvironment,
        )
        .unwrap();
        let load = |extra: &str| {
            let text = format!("name=n\nconnector.class=null\ntopics=t\n{extra}");
            ConnectorConfig::from_file(
                PropertiesFile::parse(std::path::Path::new("c.properties"), text.as_bytes())
                    .unwrap(),
                &worker,
                &crate::config::providers::SystemEnvironment,
            )
            .map(|c| c.notes.iter().map(|n| n.to_string()).collect::<Vec<_>>())
        };
        assert!(!load("no.such.key=1\n").unwrap().is_empty());
        for k in SINK_BASE {
            let value = match (k.name, k.default) {
                ("name" | "connector.class" | "topics", _) => continue,
                // topics.regex instead of topics.
                ("topics.regex", _) => {
                    let text = "name=n\nconnector.class=null\ntopics.regex=t.*\n";
                    let c = ConnectorConfig::from_file(
                        PropertiesFile::parse(
                            std::path::Path::new("c.properties"),
                            text.as_bytes(),
                        )
                        .unwrap(),
                        &worker,
                        &crate::config::providers::SystemEnvironment,
                    );
                    assert!(c.is_ok(), "topics.regex");
                    continue;
                }
                ("key.converter" | "value.converter", _) => {
                    "org.apache.kafka.connect.converters.ByteArrayConverter"
                }
                (_, DefaultValue::Value(v)) => v,
                (name, _) => panic!("no value to try for {name}"),
            };
            let notes = load(&format!("{}={value}\n", k.name))
                .unwrap_or_else(|e| panic!("{}={value}: {e}", k.name));
            assert!(notes.is_empty(), "{}: {notes:?}", k.name);
        }
    }

    #[test]
    fn aliases_resolve_unknown_plugins_do_not_and_connect_shapes_are_kept() {
        let full = plugin_config("org.apache.kafka.connect.file.FileStreamSinkConnector").unwrap();
        assert_eq!(full, plugin_config("FileStreamSink").unwrap());
        assert_eq!(full[0]["name"], "file");
        assert_eq!(full[0]["required"], false);
        assert_eq!(full[0]["default_value"], Value::Null);
        assert_eq!(full[0]["group"], Value::Null);
        assert_eq!(full[0]["order"], -1);
        let name = full.iter().find(|k| k["name"] == "name").unwrap();
        assert_eq!(name["required"], true);
        assert_eq!(name["group"], "Common");
        assert_eq!(name["display_name"], "Connector name");
        let keys: BTreeSet<&str> = name
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            keys,
            [
                "name",
                "type",
                "required",
                "default_value",
                "importance",
                "documentation",
                "group",
                "width",
                "display_name",
                "dependents",
                "order"
            ]
            .into_iter()
            .collect()
        );
        assert!(plugin_config("com.example.Nope").is_none());
        assert!(plugin_config("FileStreamSource").is_none());
    }
}
