//! OpenLineage 2-0-2 events (what Airflow, Spark, dbt-ol and Flink send to Marquez): validation
//! with messages that name the bad field, dataset naming per the OpenLineage naming spec mapped to
//! telltale assets, and ingestion into the lineage graph.
//!
//! A RunEvent's job becomes a `job` node between its inputs and outputs (`input → job → output`:
//! edges grow with inputs + outputs, not their product, and walks give the job hop no depth). Its
//! `eventType` (START, RUNNING, COMPLETE, ABORT, FAIL, OTHER) becomes the last run of the job and of
//! every dataset the job writes, with the `errorMessage` facet of a failure. The `columnLineage`
//! facet of an output is kept on the dataset. DatasetEvents and JobEvents are accepted too.
//!
//! Pure and linear: one pass of serde_json over the body (its recursion limit bounds nesting) and
//! one pass over the parsed tree; the caller enforces the body size limit and gunzips.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::graph::{
    AssetKind, CatalogAsset, GraphError, JobRun, LineageGraph, NodeId, Origin, Owner, Relation, RunState,
};
use crate::measure::{AssetId, TableRef};

/// Why an event was refused (HTTP 400): the message names the field, e.g. `run.runId`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OpenLineageError {
    #[error("malformed JSON: {0}")]
    Json(String),
    #[error("missing required field `{path}`")]
    Missing { path: String },
    #[error("`{path}` must be {expected}, got {found}")]
    Invalid { path: String, expected: &'static str, found: String },
    #[error(
        "the body is a JSON array of {count} item{}, but `POST /api/v1/lineage` takes one event (a JSON object); send several events to `POST /api/v1/lineage/batch`",
        if *count == 1 { "" } else { "s" }
    )]
    ArrayBody { count: usize },
    #[error(
        "{at} is not an OpenLineage event: expected a RunEvent (with `run` and `job`), a DatasetEvent (with `dataset`) or a JobEvent (with `job`)"
    )]
    UnknownKind { at: String },
}

/// Which of the three event kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum EventKind {
    RunEvent,
    DatasetEvent,
    JobEvent,
}

/// A transformation in the column lineage facet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transformation {
    /// `DIRECT` or `INDIRECT`.
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subtype: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub masking: Option<bool>,
}

/// An input column (or dataset) a column is derived from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputField {
    pub namespace: String,
    pub name: String,
    /// Absent in dataset-wide dependencies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub transformations: Vec<Transformation>,
}

/// The inputs of one output column.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ColumnInputs {
    #[serde(rename = "inputFields", default)]
    pub input_fields: Vec<InputField>,
}

/// The `columnLineage` facet (ColumnLineageDatasetFacet 1-2-0), as sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ColumnLineage {
    /// Output column → the input columns it comes from.
    #[serde(default)]
    pub fields: BTreeMap<String, ColumnInputs>,
    /// Dependencies of the whole dataset (filters, joins), when the producer reports them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dataset: Vec<InputField>,
}

/// Where a dataset lives, from its OpenLineage namespace and name (website/docs/spec/naming.md):
/// `postgres://host:5432` + `db.schema.table`, `snowflake://org-account` + `DB.SCHEMA.TABLE`,
/// `bigquery` + `project.dataset.table`, `mysql://host:3306` + `db.table`, `s3://bucket` + `key`, …
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct DatasetLocation {
    /// The namespace's scheme, lower case (`postgres`, `snowflake`, `bigquery`, `s3`, `kafka`, …).
    pub platform: String,
    /// `host:port`, an account, a bucket; `None` for bare namespaces such as `bigquery`.
    pub authority: Option<String>,
    pub database: Option<String>,
    pub schema: Option<String>,
    /// The table, or the path / topic of a non-relational dataset.
    pub object: String,
    /// A table in a database (otherwise a file, object or topic).
    pub relational: bool,
}

/// Platforms whose names are `database.schema.table` (catalog, project… in the first place).
const THREE_PART: &[&str] = &[
    "postgres",
    "snowflake",
    "bigquery",
    "redshift",
    "trino",
    "presto",
    "awsathena",
    "mssql",
    "oracle",
    "db2",
    "unitycatalog",
    "databricks",
    "duckdb",
    "teradata",
    "vertica",
    "spanner",
];
/// Platforms whose names are `database.table`, the database being what telltale calls the schema.
const TWO_PART: &[&str] = &["mysql", "hive", "clickhouse", "sqlserver"];
/// Platforms whose names are paths or topics.
const OBJECTS: &[&str] =
    &["s3", "s3a", "s3n", "gs", "gcs", "abfss", "abfs", "wasbs", "hdfs", "file", "dbfs", "kafka", "pubsub", "kinesis"];

impl DatasetLocation {
    /// Splits an OpenLineage dataset namespace and name.
    pub fn parse(namespace: &str, name: &str) -> DatasetLocation {
        let (scheme, authority) = match namespace.split_once("://") {
            Some((scheme, rest)) => (scheme, Some(rest.trim_end_matches('/')).filter(|a| !a.is_empty())),
            None => (namespace, None),
        };
        let platform = match scheme.to_ascii_lowercase().as_str() {
            "postgresql" => "postgres".to_string(),
            "mariadb" => "mysql".to_string(),
            other => other.to_string(),
        };
        let known_relational = THREE_PART.contains(&platform.as_str()) || TWO_PART.contains(&platform.as_str());
        let relational = known_relational
            || (!OBJECTS.contains(&platform.as_str())
                && !name.contains('/')
                && (2..=3).contains(&name.split('.').count()));
        let mut location = DatasetLocation {
            platform,
            authority: authority.map(str::to_string),
            database: None,
            schema: None,
            object: name.to_string(),
            relational,
        };
        if !relational {
            return location;
        }
        let parts: Vec<&str> = name.splitn(3, '.').collect();
        match parts.as_slice() {
            [database, schema, table] => {
                location.database = Some(database.to_string());
                location.schema = Some(schema.to_string());
                location.object = table.to_string();
            }
            [schema, table] => {
                location.schema = Some(schema.to_string());
                location.object = table.to_string();
            }
            _ => {}
        }
        location
    }

    /// The warehouse relation, for relational datasets with a schema.
    pub fn relation(&self) -> Option<Relation> {
        let schema = self.schema.as_deref().filter(|_| self.relational)?;
        Some(Relation::new(self.database.as_deref(), schema, &self.object))
    }
}

/// Maps an OpenLineage dataset to the telltale asset it is, if telltale watches it.
pub trait DatasetMapping {
    fn asset_id(&self, location: &DatasetLocation) -> Option<AssetId>;
}

impl<F: Fn(&DatasetLocation) -> Option<AssetId>> DatasetMapping for F {
    fn asset_id(&self, location: &DatasetLocation) -> Option<AssetId> {
        self(location)
    }
}

/// One telltale source as OpenLineage names its datasets: platform, `host:port` and database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceRule {
    /// The telltale source name.
    pub source: String,
    pub platform: String,
    /// `host:port` (lower-case host); `None` matches any.
    pub authority: Option<String>,
    /// The database of three-part names; `None` matches any.
    pub database: Option<String>,
}

impl SourceRule {
    /// The rule for a source configured by connection URL (`postgres://user:pw@host:5432/db`),
    /// with the platform's default port when the URL has none. `None` for URLs without a host
    /// (SQLite files: map those with a closure).
    pub fn from_url(source: &str, url: &str) -> Option<SourceRule> {
        let (scheme, rest) = url.split_once("://")?;
        let platform = DatasetLocation::parse(&format!("{scheme}://x"), "a.b.c").platform;
        let rest = rest.split(['?', '#']).next().unwrap_or_default();
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        let host_port = authority.rsplit_once('@').map_or(authority, |(_, hp)| hp);
        if host_port.is_empty() {
            return None;
        }
        let has_port = host_port.rsplit_once(':').is_some_and(|(_, p)| p.chars().all(|c| c.is_ascii_digit()));
        let default_port = match platform.as_str() {
            "postgres" => Some(5432),
            "mysql" => Some(3306),
            _ => None,
        };
        let authority = match (has_port, default_port) {
            (false, Some(port)) => format!("{host_port}:{port}"),
            _ => host_port.to_string(),
        };
        let database =
            Some(path.trim_matches('/')).filter(|d| !d.is_empty() && THREE_PART.contains(&platform.as_str()));
        Some(SourceRule {
            source: source.to_string(),
            platform,
            authority: Some(authority.to_ascii_lowercase()),
            database: database.map(str::to_string),
        })
    }

    fn matches(&self, location: &DatasetLocation) -> bool {
        self.platform == location.platform
            && self
                .authority
                .as_ref()
                .is_none_or(|a| location.authority.as_ref().is_some_and(|l| l.eq_ignore_ascii_case(a)))
            && self.database.as_ref().is_none_or(|d| location.database.as_ref() == Some(d))
    }
}

/// The usual mapping: the first rule that matches names the source; the asset is
/// `source.schema.table`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SourceRules(pub Vec<SourceRule>);

impl DatasetMapping for SourceRules {
    fn asset_id(&self, location: &DatasetLocation) -> Option<AssetId> {
        let schema = location.schema.as_deref().filter(|_| location.relational)?;
        let rule = self.0.iter().find(|r| r.matches(location))?;
        Some(AssetId::new(&rule.source, &TableRef::new(schema, location.object.clone())))
    }
}

/// A dataset of an event.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DatasetRef {
    pub namespace: String,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column_lineage: Option<ColumnLineage>,
    /// Owners from the `ownership` facet.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub owners: Vec<Owner>,
}

impl DatasetRef {
    /// The graph key of the dataset: `namespace/name`.
    pub fn key(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }
}

/// The job of an event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct JobRef {
    pub namespace: String,
    pub name: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub owners: Vec<Owner>,
}

impl JobRef {
    /// The graph key of the job: `job:namespace/name`.
    pub fn key(&self) -> String {
        format!("job:{}/{}", self.namespace, self.name)
    }
}

/// The run of a RunEvent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RunRef {
    pub run_id: String,
    /// The `errorMessage` facet's message.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_message: Option<String>,
    /// The `parent` facet: the job (`namespace/name`) and run that started this one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent: Option<(String, String)>,
}

/// A validated event.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LineageEvent {
    pub kind: EventKind,
    pub event_time: DateTime<Utc>,
    /// RunEvents' `eventType` (absent is allowed by the spec).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_type: Option<RunState>,
    pub producer: String,
    pub schema_url: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run: Option<RunRef>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub job: Option<JobRef>,
    pub inputs: Vec<DatasetRef>,
    /// Outputs; a DatasetEvent's dataset is its only output.
    pub outputs: Vec<DatasetRef>,
}

// ----------------------------------------------------------------------------------- validation --

/// A JSON value's kind and a short excerpt, for messages.
struct Found<'a>(&'a Value);

impl fmt::Display for Found<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Value::Null => f.write_str("null"),
            Value::Bool(b) => write!(f, "the boolean {b}"),
            Value::Number(n) => write!(f, "the number {n}"),
            Value::String(s) if s.is_empty() => f.write_str("an empty string"),
            Value::String(s) => {
                let short: String = s.chars().take(60).collect();
                let more = if short.len() < s.len() { "…" } else { "" };
                write!(f, "{:?}", format!("{short}{more}"))
            }
            Value::Array(a) => write!(f, "an array of {}", a.len()),
            Value::Object(_) => f.write_str("an object"),
        }
    }
}

struct Fields<'a> {
    object: &'a serde_json::Map<String, Value>,
    path: String,
}

impl<'a> Fields<'a> {
    fn of(value: &'a Value, path: &str) -> Result<Fields<'a>, OpenLineageError> {
        match value {
            Value::Object(object) => Ok(Fields { object, path: path.to_string() }),
            other => Err(invalid(path, "an object", other)),
        }
    }
    fn at(&self, key: &str) -> String {
        if self.path.is_empty() { key.to_string() } else { format!("{}.{key}", self.path) }
    }
    /// A present, non-null member.
    fn get(&self, key: &str) -> Option<&'a Value> {
        self.object.get(key).filter(|v| !v.is_null())
    }
    fn required_str(&self, key: &str) -> Result<&'a str, OpenLineageError> {
        match self.get(key) {
            None => Err(OpenLineageError::Missing { path: self.at(key) }),
            Some(Value::String(s)) if !s.trim().is_empty() => Ok(s),
            Some(other) => Err(invalid(&self.at(key), "a non-empty string", other)),
        }
    }
    fn optional_str(&self, key: &str) -> Result<Option<&'a str>, OpenLineageError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(other) => Err(invalid(&self.at(key), "a string", other)),
        }
    }
    fn object(&self, key: &str) -> Result<Option<Fields<'a>>, OpenLineageError> {
        self.get(key).map(|v| Fields::of(v, &self.at(key))).transpose()
    }
    fn array(&self, key: &str) -> Result<&'a [Value], OpenLineageError> {
        match self.get(key) {
            None => Ok(&[]),
            Some(Value::Array(items)) => Ok(items),
            Some(other) => Err(invalid(&self.at(key), "an array", other)),
        }
    }
}

fn invalid(path: &str, expected: &'static str, found: &Value) -> OpenLineageError {
    OpenLineageError::Invalid { path: path.to_string(), expected, found: Found(found).to_string() }
}

fn is_uri(text: &str) -> bool {
    let Some((scheme, rest)) = text.split_once(':') else { return false };
    !rest.is_empty()
        && scheme.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && scheme.chars().all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
        && !text.contains(char::is_whitespace)
}

fn is_uuid(text: &str) -> bool {
    text.len() == 36
        && text.char_indices().all(|(i, c)| if [8, 13, 18, 23].contains(&i) { c == '-' } else { c.is_ascii_hexdigit() })
}

fn uri<'a>(fields: &Fields<'a>, key: &str) -> Result<&'a str, OpenLineageError> {
    let text = fields.required_str(key)?;
    if is_uri(text) { Ok(text) } else { Err(invalid(&fields.at(key), "a URI", &fields.object[key])) }
}

/// `ownership` facet: `{owners: [{name: "user:jdoe", type: "MAINTAINER"}]}`.
fn owners(facets: &Option<Fields<'_>>) -> Vec<Owner> {
    let Some(list) = facets.as_ref().and_then(|f| f.get("ownership")).and_then(|o| o.get("owners")) else {
        return Vec::new();
    };
    list.as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|o| o.get("name").and_then(Value::as_str))
                .map(|name| name.split_once(':').map_or(name, |(_, n)| n))
                .filter_map(Owner::parse)
                .collect()
        })
        .unwrap_or_default()
}

fn dataset(value: &Value, path: &str, keep_column_lineage: bool) -> Result<DatasetRef, OpenLineageError> {
    let fields = Fields::of(value, path)?;
    let namespace = fields.required_str("namespace")?.to_string();
    let name = fields.required_str("name")?.to_string();
    let facets = fields.object("facets")?;
    let column_lineage = match facets.as_ref().and_then(|f| f.get("columnLineage")) {
        Some(facet) if keep_column_lineage => {
            Some(ColumnLineage::deserialize(facet).map_err(|e| OpenLineageError::Invalid {
                path: format!("{path}.facets.columnLineage"),
                expected: "a ColumnLineageDatasetFacet",
                found: e.to_string(),
            })?)
        }
        _ => None,
    };
    Ok(DatasetRef { owners: owners(&facets), namespace, name, column_lineage })
}

fn job(value: &Value, path: &str) -> Result<JobRef, OpenLineageError> {
    let fields = Fields::of(value, path)?;
    let namespace = fields.required_str("namespace")?.to_string();
    let name = fields.required_str("name")?.to_string();
    let facets = fields.object("facets")?;
    Ok(JobRef { owners: owners(&facets), namespace, name })
}

fn run(value: &Value, path: &str) -> Result<RunRef, OpenLineageError> {
    let fields = Fields::of(value, path)?;
    let run_id = fields.required_str("runId")?;
    if !is_uuid(run_id) {
        return Err(invalid(&fields.at("runId"), "a UUID", &fields.object["runId"]));
    }
    let facets = fields.object("facets")?;
    let facet = |name: &str| facets.as_ref().and_then(|f| f.get(name));
    let error_message =
        facet("errorMessage").and_then(|e| e.get("message")).and_then(Value::as_str).map(str::to_string);
    let parent = facet("parent").and_then(|p| {
        let job = p.get("job")?;
        let job = format!("{}/{}", job.get("namespace")?.as_str()?, job.get("name")?.as_str()?);
        Some((job, p.get("run")?.get("runId")?.as_str()?.to_string()))
    });
    Ok(RunRef { run_id: run_id.to_string(), error_message, parent })
}

fn event_type(fields: &Fields<'_>) -> Result<Option<RunState>, OpenLineageError> {
    let Some(text) = fields.optional_str("eventType")? else { return Ok(None) };
    let state = match RunState::parse(text) {
        Some(state) => state,
        None => {
            return Err(invalid(
                &fields.at("eventType"),
                "one of START, RUNNING, COMPLETE, ABORT, FAIL, OTHER",
                &fields.object["eventType"],
            ));
        }
    };
    Ok(Some(state))
}

/// Validates one parsed event; `at` prefixes paths (`[3].` inside a batch).
pub fn event_from_value(value: &Value, at: &str) -> Result<LineageEvent, OpenLineageError> {
    let here = if at.is_empty() { "(body)" } else { at.trim_end_matches('.') };
    let fields = Fields::of(value, here)?;
    let fields = Fields { path: at.trim_end_matches('.').to_string(), ..fields };
    let kind = if fields.get("run").is_some() {
        EventKind::RunEvent
    } else if fields.get("dataset").is_some() {
        EventKind::DatasetEvent
    } else if fields.get("job").is_some() {
        EventKind::JobEvent
    } else {
        let at = if at.is_empty() { "the body".to_string() } else { format!("`{here}`") };
        return Err(OpenLineageError::UnknownKind { at });
    };
    let time_text = fields.required_str("eventTime")?;
    let event_time = DateTime::parse_from_rfc3339(time_text)
        .map_err(|_| {
            invalid(&fields.at("eventTime"), "an RFC 3339 date-time with a time zone", &fields.object["eventTime"])
        })?
        .with_timezone(&Utc);
    let producer = uri(&fields, "producer")?.to_string();
    let schema_url = uri(&fields, "schemaURL")?.to_string();
    let datasets = |key: &str, keep_column_lineage: bool| -> Result<Vec<DatasetRef>, OpenLineageError> {
        fields
            .array(key)?
            .iter()
            .enumerate()
            .map(|(i, d)| dataset(d, &format!("{}[{i}]", fields.at(key)), keep_column_lineage))
            .collect()
    };
    let mut event = LineageEvent {
        kind,
        event_time,
        event_type: None,
        producer,
        schema_url,
        run: None,
        job: None,
        inputs: Vec::new(),
        outputs: Vec::new(),
    };
    match kind {
        EventKind::RunEvent => {
            event.event_type = event_type(&fields)?;
            event.run = Some(run(&fields.object["run"], &fields.at("run"))?);
            let job_value = fields.get("job").ok_or_else(|| OpenLineageError::Missing { path: fields.at("job") })?;
            event.job = Some(job(job_value, &fields.at("job"))?);
            event.inputs = datasets("inputs", false)?;
            event.outputs = datasets("outputs", true)?;
        }
        EventKind::JobEvent => {
            event.job = Some(job(&fields.object["job"], &fields.at("job"))?);
            event.inputs = datasets("inputs", false)?;
            event.outputs = datasets("outputs", true)?;
        }
        EventKind::DatasetEvent => {
            event.outputs = vec![dataset(&fields.object["dataset"], &fields.at("dataset"), true)?];
        }
    }
    Ok(event)
}

fn parse_json(bytes: &[u8]) -> Result<Value, OpenLineageError> {
    serde_json::from_slice(bytes).map_err(|e| OpenLineageError::Json(e.to_string()))
}

/// Parses and validates one event (the body of `POST /api/v1/lineage`).
pub fn parse_event(bytes: &[u8]) -> Result<LineageEvent, OpenLineageError> {
    match parse_json(bytes)? {
        Value::Array(items) => Err(OpenLineageError::ArrayBody { count: items.len() }),
        value => event_from_value(&value, ""),
    }
}

/// Parses a batch (the body of `POST /api/v1/lineage/batch`: a JSON array of events), validating
/// each on its own so one bad event doesn't reject the others; paths start with `[index]`.
pub fn parse_batch(bytes: &[u8]) -> Result<Vec<Result<LineageEvent, OpenLineageError>>, OpenLineageError> {
    match parse_json(bytes)? {
        Value::Array(items) => {
            Ok(items.iter().enumerate().map(|(i, v)| event_from_value(v, &format!("[{i}]."))).collect())
        }
        other => Err(invalid("(body)", "an array of events", &other)),
    }
}

// ------------------------------------------------------------------------------------- ingest --

/// What [`ingest`] changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct Ingest {
    /// Datasets upserted.
    pub datasets: usize,
    /// Edges added or refreshed.
    pub edges: usize,
    /// Datasets (and the job) whose last run was recorded.
    pub runs: usize,
    #[serde(skip)]
    pub job: Option<NodeId>,
}

/// The node a dataset becomes: its kind from the naming spec, joined to a telltale asset by
/// `mapping`, with the first owner the `ownership` facet names.
pub fn dataset_asset(namespace: &str, name: &str, owner: Option<Owner>, mapping: &dyn DatasetMapping) -> CatalogAsset {
    let location = DatasetLocation::parse(namespace, name);
    let kind = if location.relational { AssetKind::Table } else { AssetKind::Dataset };
    let mut asset = CatalogAsset::new(format!("{namespace}/{name}"), location.object.clone(), kind);
    asset.asset_id = mapping.asset_id(&location);
    asset.relation = location.relation();
    asset.owner = owner;
    asset
}

/// The node a job becomes (key `job:namespace/name`).
pub fn job_asset(namespace: &str, name: &str, owner: Option<Owner>) -> CatalogAsset {
    let mut asset = CatalogAsset::new(format!("job:{namespace}/{name}"), name.to_string(), AssetKind::Job);
    asset.owner = owner;
    asset
}

fn upsert_dataset(
    graph: &mut LineageGraph,
    dataset: &DatasetRef,
    mapping: &dyn DatasetMapping,
) -> Result<NodeId, GraphError> {
    let asset = dataset_asset(&dataset.namespace, &dataset.name, dataset.owners.first().cloned(), mapping);
    let node = graph.upsert(asset, Origin::OpenLineage)?;
    if let Some(lineage) = &dataset.column_lineage {
        graph.update(node, |a| a.column_lineage = Some(Box::new(lineage.clone())));
    }
    Ok(node)
}

/// Records `run` as the last run of `node` unless a newer one is known; a late RUNNING/OTHER of
/// the same run never hides its end.
pub fn record_run(graph: &mut LineageGraph, node: NodeId, run: &JobRun) -> bool {
    graph.update(node, |asset| {
        let replace = match &asset.last_run {
            None => true,
            Some(last) if last.run_id == run.run_id && last.state.is_terminal() => {
                run.state.is_terminal() && run.at >= last.at
            }
            Some(last) => run.at >= last.at,
        };
        if replace {
            asset.last_run = Some(run.clone());
        }
        replace
    })
}

/// Adds an event to the graph: datasets (joined to telltale assets by `mapping`), the job node,
/// `input → job → output` edges seen at `seen_at`, and the run state on the job and on every
/// dataset the job writes (the event's outputs, or those known from earlier events when a FAIL
/// reports none).
pub fn ingest(
    graph: &mut LineageGraph,
    event: &LineageEvent,
    mapping: &dyn DatasetMapping,
    seen_at: DateTime<Utc>,
) -> Result<Ingest, GraphError> {
    let mut result = Ingest::default();
    let mut inputs = Vec::with_capacity(event.inputs.len());
    for dataset in &event.inputs {
        inputs.push(upsert_dataset(graph, dataset, mapping)?);
    }
    let mut outputs = Vec::with_capacity(event.outputs.len());
    for dataset in &event.outputs {
        outputs.push(upsert_dataset(graph, dataset, mapping)?);
    }
    result.datasets = inputs.len() + outputs.len();
    let Some(job_ref) = &event.job else { return Ok(result) };

    let job = graph
        .upsert(job_asset(&job_ref.namespace, &job_ref.name, job_ref.owners.first().cloned()), Origin::OpenLineage)?;
    result.job = Some(job);
    for &input in &inputs {
        result.edges += usize::from(graph.add_edge_via(input, job, Origin::OpenLineage, seen_at, Some(job))?.is_some());
    }
    for &output in &outputs {
        result.edges +=
            usize::from(graph.add_edge_via(job, output, Origin::OpenLineage, seen_at, Some(job))?.is_some());
    }

    if let (Some(run), Some(state)) = (&event.run, event.event_type) {
        let job_run = JobRun {
            job: format!("{}/{}", job_ref.namespace, job_ref.name),
            run_id: run.run_id.clone(),
            state,
            at: event.event_time,
            message: run.error_message.clone(),
        };
        result.runs += usize::from(record_run(graph, job, &job_run));
        // The job's outputs: this event's, and those earlier events reported.
        let written: Vec<NodeId> = graph.children(job).collect();
        for output in written {
            result.runs += usize::from(record_run(graph, output, &job_run));
        }
    }
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const SCHEMA: &str = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent";

    fn run_event(event_type: &str, run_id: &str, inputs: Value, outputs: Value) -> Value {
        json!({
            "eventType": event_type,
            "eventTime": "2026-08-20T09:15:02.123456+00:00",
            "producer": "https://github.com/OpenLineage/OpenLineage/tree/1.30.0/integration/airflow",
            "schemaURL": SCHEMA,
            "run": {"runId": run_id, "facets": {}},
            "job": {"namespace": "airflow", "name": "shop_dag.load_orders", "facets": {}},
            "inputs": inputs,
            "outputs": outputs,
        })
    }

    fn pg(name: &str) -> Value {
        json!({"namespace": "postgres://db.internal:5432", "name": name, "facets": {}})
    }

    const RUN: &str = "0191c9a2-7f3e-7a10-9b1d-3c2f5e6a7b8c";

    fn err(value: Value) -> String {
        parse_event(&serde_json::to_vec(&value).unwrap()).unwrap_err().to_string()
    }

    #[test]
    fn malformed_events_name_the_field() {
        let good = run_event("START", RUN, json!([pg("shop.public.raw")]), json!([pg("shop.public.orders")]));
        assert!(parse_event(&serde_json::to_vec(&good).unwrap()).is_ok());
        type Case = (&'static str, Box<dyn Fn(&mut Value)>, &'static str);
        let cases: Vec<Case> = vec![
            (
                "eventTime",
                Box::new(|e| e.as_object_mut().unwrap().remove("eventTime").map(drop).unwrap()),
                "missing required field `eventTime`",
            ),
            (
                "eventTime",
                Box::new(|e| e["eventTime"] = json!("yesterday")),
                "`eventTime` must be an RFC 3339 date-time with a time zone, got \"yesterday\"",
            ),
            (
                "producer",
                Box::new(|e| e["producer"] = json!("not a uri")),
                "`producer` must be a URI, got \"not a uri\"",
            ),
            (
                "schemaURL",
                Box::new(|e| e["schemaURL"] = json!(7)),
                "`schemaURL` must be a non-empty string, got the number 7",
            ),
            ("runId", Box::new(|e| e["run"]["runId"] = json!("run-1")), "`run.runId` must be a UUID, got \"run-1\""),
            ("runId", Box::new(|e| e["run"].as_object_mut().unwrap().clear()), "missing required field `run.runId`"),
            (
                "job",
                Box::new(|e| e.as_object_mut().unwrap().remove("job").map(drop).unwrap()),
                "missing required field `job`",
            ),
            (
                "job.name",
                Box::new(|e| e["job"]["name"] = json!("")),
                "`job.name` must be a non-empty string, got an empty string",
            ),
            (
                "job.namespace",
                Box::new(|e| e["job"]["namespace"] = json!(null)),
                "missing required field `job.namespace`",
            ),
            (
                "eventType",
                Box::new(|e| e["eventType"] = json!("DONE")),
                "`eventType` must be one of START, RUNNING, COMPLETE, ABORT, FAIL, OTHER, got \"DONE\"",
            ),
            ("inputs", Box::new(|e| e["inputs"] = json!({})), "`inputs` must be an array, got an object"),
            (
                "outputs[0].name",
                Box::new(|e| e["outputs"][0].as_object_mut().unwrap().remove("name").map(drop).unwrap()),
                "missing required field `outputs[0].name`",
            ),
            (
                "columnLineage",
                Box::new(|e| e["outputs"][0]["facets"]["columnLineage"] = json!({"fields": 3})),
                "`outputs[0].facets.columnLineage` must be a ColumnLineageDatasetFacet, got invalid type: integer `3`, expected a map",
            ),
        ];
        for (what, break_it, message) in cases {
            let mut event = good.clone();
            break_it(&mut event);
            assert_eq!(err(event), message, "{what}");
        }
        assert_eq!(
            err(json!({"eventTime": "x"})),
            "the body is not an OpenLineage event: expected a RunEvent (with `run` and `job`), a DatasetEvent (with `dataset`) or a JobEvent (with `job`)"
        );
        assert_eq!(
            err(json!([1])),
            "the body is a JSON array of 1 item, but `POST /api/v1/lineage` takes one event (a JSON object); \
             send several events to `POST /api/v1/lineage/batch`"
        );
        assert!(err(json!("x")).starts_with("`(body)` must be an object, got"));
        assert!(
            parse_event(b"{\"eventTime\": ").unwrap_err().to_string().starts_with("malformed JSON: EOF while parsing")
        );
        let deep = "[".repeat(100_000);
        assert!(parse_event(deep.as_bytes()).unwrap_err().to_string().contains("recursion limit"));
    }

    #[test]
    fn naming_spec_locations() {
        let cases = [
            (
                "postgres://db:5432",
                "shop.public.orders",
                "postgres",
                Some("db:5432"),
                Some("shop"),
                Some("public"),
                "orders",
                true,
            ),
            (
                "snowflake://org-acct",
                "DB.CORE.FCT",
                "snowflake",
                Some("org-acct"),
                Some("DB"),
                Some("CORE"),
                "FCT",
                true,
            ),
            ("bigquery", "proj.ds.tbl", "bigquery", None, Some("proj"), Some("ds"), "tbl", true),
            ("mysql://h:3306", "shop.orders", "mysql", Some("h:3306"), None, Some("shop"), "orders", true),
            (
                "s3://bucket",
                "events/2026/08/part-0.parquet",
                "s3",
                Some("bucket"),
                None,
                None,
                "events/2026/08/part-0.parquet",
                false,
            ),
            ("kafka://broker:9092", "orders.v1", "kafka", Some("broker:9092"), None, None, "orders.v1", false),
            ("file", "/data/x.csv", "file", None, None, None, "/data/x.csv", false),
        ];
        for (namespace, name, platform, authority, database, schema, object, relational) in cases {
            let l = DatasetLocation::parse(namespace, name);
            assert_eq!(
                (
                    l.platform.as_str(),
                    l.authority.as_deref(),
                    l.database.as_deref(),
                    l.schema.as_deref(),
                    l.object.as_str(),
                    l.relational
                ),
                (platform, authority, database, schema, object, relational),
                "{namespace} {name}"
            );
        }
    }

    #[test]
    fn source_rules_from_telltale_urls() {
        let rules = SourceRules(vec![
            SourceRule::from_url("shop", "postgres://u:p@DB:5432/shop?sslmode=disable").unwrap(),
            SourceRule::from_url("crm", "postgresql://db/crm").unwrap(),
            SourceRule::from_url("legacy", "mysql://u@mysql.internal/legacy").unwrap(),
        ]);
        let asset = |ns: &str, name: &str| rules.asset_id(&DatasetLocation::parse(ns, name)).map(|a| a.to_string());
        assert_eq!(asset("postgres://db:5432", "shop.public.orders").as_deref(), Some("shop.public.orders"));
        assert_eq!(asset("postgres://db:5432", "crm.sales.leads").as_deref(), Some("crm.sales.leads"), "default port");
        assert_eq!(asset("postgres://db:5433", "shop.public.orders"), None, "another server");
        assert_eq!(asset("postgres://db:5432", "other.public.orders"), None, "another database");
        assert_eq!(asset("mysql://mysql.internal:3306", "legacy.accounts").as_deref(), Some("legacy.legacy.accounts"));
        assert_eq!(SourceRule::from_url("local", "sqlite:///tmp/x.db"), None);
    }

    #[test]
    fn ingest_links_inputs_job_outputs_and_records_runs() {
        let mut graph = LineageGraph::new();
        let mapping = SourceRules(vec![SourceRule::from_url("shop", "postgres://db.internal:5432/shop").unwrap()]);
        let at = DateTime::parse_from_rfc3339("2026-08-20T09:20:00Z").unwrap().with_timezone(&Utc);
        let mut complete = run_event(
            "COMPLETE",
            RUN,
            json!([pg("shop.public.raw_orders"), pg("shop.public.customers")]),
            json!([pg("shop.public.orders")]),
        );
        complete["outputs"][0]["facets"]["columnLineage"] = json!({
            "_producer": "https://x", "_schemaURL": "https://openlineage.io/spec/facets/1-2-0/ColumnLineageDatasetFacet.json",
            "fields": {"customer_name": {"inputFields": [
                {"namespace": "postgres://db.internal:5432", "name": "shop.public.customers", "field": "name",
                 "transformations": [{"type": "DIRECT", "subtype": "IDENTITY"}]}]}}
        });
        let event = parse_event(&serde_json::to_vec(&complete).unwrap()).unwrap();
        let ingest_result = ingest(&mut graph, &event, &mapping, at).unwrap();
        assert_eq!((ingest_result.datasets, ingest_result.edges, ingest_result.runs), (3, 3, 2));
        let raw = graph.resolve("shop.public.raw_orders").unwrap();
        let orders = graph.resolve("shop.public.orders").unwrap();
        assert_eq!(graph.asset(orders).key, "postgres://db.internal:5432/shop.public.orders");
        let impact = graph.blast_radius(raw, Some(1));
        assert_eq!(impact.total, 1, "the job is walked through, not counted");
        assert_eq!(impact.assets[0].node, orders);
        assert_eq!(impact.assets[0].depth, 1, "input → job → output is one hop");
        let lineage = graph.asset(orders).column_lineage.as_ref().unwrap();
        assert_eq!(lineage.fields["customer_name"].input_fields[0].field.as_deref(), Some("name"));
        let up = graph.upstream(orders, Some(1));
        let kinds: Vec<AssetKind> = up.nodes.iter().map(|n| graph.asset(n.node).kind).collect();
        assert_eq!(kinds, [AssetKind::Job, AssetKind::Table, AssetKind::Table], "the job, then its inputs");
        assert_eq!(graph.asset(orders).last_run.as_ref().unwrap().state, RunState::Complete);

        // The next run fails without reporting outputs: the table it writes still learns it.
        let second = "0191c9a2-7f3e-7a10-9b1d-000000000002";
        let mut fail = run_event("FAIL", second, json!([]), json!([]));
        fail["eventTime"] = json!("2026-08-21T09:15:00Z");
        fail["run"]["facets"]["errorMessage"] =
            json!({"message": "relation \"raw_orders\" does not exist", "programmingLanguage": "SQL"});
        let event = parse_event(&serde_json::to_vec(&fail).unwrap()).unwrap();
        assert_eq!(ingest(&mut graph, &event, &mapping, at).unwrap().runs, 2);
        let last = graph.asset(orders).last_run.clone().unwrap();
        assert_eq!(
            (last.state, last.run_id.as_str(), last.job.as_str()),
            (RunState::Fail, second, "airflow/shop_dag.load_orders")
        );
        assert_eq!(last.message.as_deref(), Some("relation \"raw_orders\" does not exist"));
        // A late RUNNING of the failed run doesn't hide the failure; an older run doesn't either.
        let mut late = run_event("RUNNING", second, json!([]), json!([]));
        late["eventTime"] = json!("2026-08-21T09:16:00Z");
        ingest(&mut graph, &parse_event(&serde_json::to_vec(&late).unwrap()).unwrap(), &mapping, at).unwrap();
        let old = run_event("COMPLETE", RUN, json!([]), json!([]));
        ingest(&mut graph, &parse_event(&serde_json::to_vec(&old).unwrap()).unwrap(), &mapping, at).unwrap();
        assert_eq!(graph.asset(orders).last_run.as_ref().unwrap().state, RunState::Fail);
    }

    #[test]
    fn dataset_and_job_events() {
        let mut graph = LineageGraph::new();
        let at = Utc::now();
        let dataset_event = json!({
            "eventTime": "2026-08-20T09:15:02Z", "producer": "https://x", "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/DatasetEvent",
            "dataset": {"namespace": "s3://lake", "name": "events/orders", "facets": {
                "ownership": {"owners": [{"name": "team:data-platform", "type": "MAINTAINER"}]}}}
        });
        let event = parse_event(&serde_json::to_vec(&dataset_event).unwrap()).unwrap();
        assert_eq!(event.kind, EventKind::DatasetEvent);
        let none = |_: &DatasetLocation| None;
        ingest(&mut graph, &event, &none, at).unwrap();
        let lake = graph.find("s3://lake/events/orders").unwrap();
        assert_eq!(graph.asset(lake).kind, AssetKind::Dataset);
        assert_eq!(graph.asset(lake).owner.as_ref().unwrap().to_string(), "data-platform");

        let job_event = json!({
            "eventTime": "2026-08-20T09:15:02Z", "producer": "https://x", "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/JobEvent",
            "job": {"namespace": "spark", "name": "compact"},
            "inputs": [{"namespace": "s3://lake", "name": "events/orders"}],
            "outputs": [{"namespace": "s3://lake", "name": "compacted/orders"}]
        });
        let event = parse_event(&serde_json::to_vec(&job_event).unwrap()).unwrap();
        assert_eq!(event.kind, EventKind::JobEvent);
        assert_eq!(ingest(&mut graph, &event, &none, at).unwrap().edges, 2);
        assert_eq!(graph.blast_radius(lake, None).total, 1);
    }

    #[test]
    fn batches_validate_each_event() {
        let good = run_event("START", RUN, json!([]), json!([]));
        let mut bad = good.clone();
        bad["run"]["runId"] = json!(1);
        let body = serde_json::to_vec(&json!([good, bad])).unwrap();
        let results = parse_batch(&body).unwrap();
        assert!(results[0].is_ok());
        assert_eq!(
            results[1].as_ref().unwrap_err().to_string(),
            "`[1].run.runId` must be a non-empty string, got the number 1"
        );
    }
}
