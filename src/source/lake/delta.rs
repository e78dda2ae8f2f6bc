//! `kind: delta`: Delta Lake tables, one per first-level directory with a `_delta_log/`.
//!
//! Reads the transaction log itself (JSON commits and Parquet checkpoints, protocol subset for
//! reading: `add`, `remove`, `metaData`, `commitInfo`) rather than through a Delta crate: the
//! metadata scan needs only the live file set, `numRecords` statistics, the schema and commit
//! times, and keeping the log state between polls means a poll reads only the commits written
//! since the previous one. Freshness is the time of the last commit that changed data (an
//! `OPTIMIZE` rewrites files with `dataChange: false` and is not new data); a gap in the commit
//! sequence is an error for that table, never a silently wrong row count.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use datafusion::arrow::array::{Array, AsArray, StructArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Fields, Schema, TimeUnit};
use futures::future::BoxFuture;
use futures::{StreamExt, TryStreamExt};
use object_store::{ObjectMeta, ObjectStoreExt};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use serde_json::Value as Json;

use super::files::{SCHEMA, check_root};
use super::store::{self, Location};
use super::{DataFile, Handle, LakeSource, TableView, scan};
use crate::config::FileFormat;
use crate::measure::{Column, TableRef};
use crate::source::SourceError;

/// One live file of the table, as the log describes it.
#[derive(Debug, Clone)]
struct AddFile {
    size: u64,
    rows: Option<u64>,
    modified_ms: i64,
    partition_values: HashMap<String, Option<String>>,
}

/// The table state after replaying the log up to `version`.
#[derive(Debug, Clone, Default)]
pub(crate) struct DeltaState {
    version: Option<u64>,
    files: HashMap<String, AddFile>,
    schema_string: String,
    partition_columns: Vec<String>,
    last_data_change_ms: Option<i64>,
    last_commit_ms: Option<i64>,
}

/// Delta tables under `root`: directories holding a `_delta_log/`.
pub(super) async fn handles(
    source_name: &str,
    root: &Location,
    only: Option<&TableRef>,
) -> Result<Vec<Handle>, SourceError> {
    check_root(source_name, root).await?;
    let names: Vec<String> = match only {
        Some(t) if t.schema != SCHEMA => return Ok(Vec::new()),
        Some(t) => vec![t.name.clone()],
        None => {
            let listed = root
                .store
                .store
                .list_with_delimiter(Some(&root.path))
                .await
                .map_err(|e| store::store_error(source_name, &format!("listing {}", root.display()), e))?;
            listed.common_prefixes.iter().filter_map(|p| p.filename().map(str::to_string)).collect()
        }
    };
    let mut out = Vec::new();
    for name in names {
        let dir = root.child(&name);
        let log = dir.child("_delta_log");
        let mut first = root.store.store.list(Some(&log.path));
        match first.next().await {
            Some(Ok(_)) => out.push(Handle::Delta { table: TableRef::new(SCHEMA, name), dir }),
            Some(Err(e)) => return Err(store::store_error(source_name, &format!("listing {}", log.display()), e)),
            None => {}
        }
    }
    Ok(out)
}

fn parse_log_name(name: &str) -> Option<(u64, LogFile)> {
    let (version, rest) = name.split_once('.')?;
    if version.len() != 20 {
        return None;
    }
    let version: u64 = version.parse().ok()?;
    if rest == "json" {
        return Some((version, LogFile::Commit));
    }
    let rest = rest.strip_prefix("checkpoint.")?.strip_suffix("parquet")?;
    if rest.is_empty() {
        return Some((version, LogFile::Checkpoint { part: 1, parts: 1 }));
    }
    let mut it = rest.trim_end_matches('.').split('.');
    let part: u32 = it.next()?.parse().ok()?;
    let parts: u32 = it.next()?.parse().ok()?;
    Some((version, LogFile::Checkpoint { part, parts }))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LogFile {
    Commit,
    Checkpoint { part: u32, parts: u32 },
}

/// Replays the commits after `previous` (or from the newest checkpoint) and builds the view.
pub(super) async fn load(
    source: &LakeSource,
    table: &TableRef,
    dir: &Location,
    previous: Option<DeltaState>,
) -> Result<(DeltaState, TableView), SourceError> {
    let name = &source.name;
    let log = dir.child("_delta_log");
    let entries: Vec<ObjectMeta> = dir
        .store
        .store
        .list(Some(&log.path))
        .try_collect()
        .await
        .map_err(|e| store::store_error(name, &format!("listing {}", log.display()), e))?;
    let mut commits: BTreeMap<u64, ObjectMeta> = BTreeMap::new();
    let mut checkpoints: BTreeMap<u64, Vec<(u32, u32, ObjectMeta)>> = BTreeMap::new();
    for e in entries {
        let Some(file) = e.location.filename() else { continue };
        match parse_log_name(file) {
            Some((v, LogFile::Commit)) => {
                commits.insert(v, e);
            }
            Some((v, LogFile::Checkpoint { part, parts })) => checkpoints.entry(v).or_default().push((part, parts, e)),
            None => {}
        }
    }
    checkpoints.retain(|_, parts| parts.first().is_some_and(|p| parts.len() as u32 == p.1));
    let latest = commits.keys().chain(checkpoints.keys()).max().copied().ok_or_else(|| SourceError::Query {
        source_name: name.clone(),
        message: format!("table {table}: {} holds no commits", log.display()),
    })?;
    let contiguous = |from: u64| (from..=latest).all(|v| commits.contains_key(&v));
    let mut state = match previous {
        Some(p) if p.version.is_some_and(|v| v <= latest && contiguous(v + 1)) => p,
        _ => match checkpoints.range(..=latest).next_back() {
            Some((&v, parts)) => read_checkpoint(source, dir, table, v, parts).await?,
            None => DeltaState::default(),
        },
    };
    let start = state.version.map_or(0, |v| v + 1);
    for v in start..=latest {
        let Some(meta) = commits.get(&v) else {
            let around: Vec<String> = commits.keys().map(|k| k.to_string()).collect();
            return Err(SourceError::Query {
                source_name: name.clone(),
                message: format!(
                    "table {table}: the Delta log is missing commit {v} ({}/{v:020}.json); commits present: {}; the table cannot be read consistently until the log is repaired",
                    log.display(),
                    summarize(&around)
                ),
            });
        };
        let shown = store::display(&dir.store.url, &meta.location);
        let bytes = dir
            .store
            .store
            .get(&meta.location)
            .await
            .map_err(|e| store::store_error(name, &format!("reading {shown}"), e))?
            .bytes()
            .await
            .map_err(|e| store::store_error(name, &format!("reading {shown}"), e))?;
        apply_commit(&mut state, &bytes, meta.last_modified.timestamp_millis()).map_err(|why| SourceError::Query {
            source_name: name.clone(),
            message: format!("table {table}: commit {shown} is not valid: {why}"),
        })?;
        state.version = Some(v);
    }
    let view = view_of(source, table, dir, &state).await?;
    Ok((state, view))
}

fn summarize(versions: &[String]) -> String {
    if versions.len() <= 8 {
        versions.join(", ")
    } else {
        format!("{} … {}", versions[..4].join(", "), versions[versions.len() - 2..].join(", "))
    }
}

fn apply_commit(state: &mut DeltaState, bytes: &[u8], file_time_ms: i64) -> Result<(), String> {
    let mut commit_ms = None;
    let mut data_change = false;
    for (i, line) in bytes.split(|b| *b == b'\n').enumerate() {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let action: Json = serde_json::from_slice(line).map_err(|e| format!("line {}: {e}", i + 1))?;
        if let Some(add) = action.get("add") {
            let path = add.get("path").and_then(Json::as_str).ok_or("`add` without `path`")?;
            data_change |= add.get("dataChange").and_then(Json::as_bool).unwrap_or(true);
            let rows = add
                .get("stats")
                .and_then(Json::as_str)
                .and_then(|s| serde_json::from_str::<Json>(s).ok())
                .and_then(|s| s.get("numRecords").and_then(Json::as_u64));
            let deleted = add.pointer("/deletionVector/cardinality").and_then(Json::as_u64).unwrap_or(0);
            state.files.insert(
                store::percent_decode(path),
                AddFile {
                    size: add.get("size").and_then(Json::as_u64).unwrap_or(0),
                    rows: rows.map(|r| r.saturating_sub(deleted)),
                    modified_ms: add.get("modificationTime").and_then(Json::as_i64).unwrap_or(file_time_ms),
                    partition_values: add
                        .get("partitionValues")
                        .and_then(Json::as_object)
                        .map(|m| m.iter().map(|(k, v)| (k.clone(), v.as_str().map(str::to_string))).collect())
                        .unwrap_or_default(),
                },
            );
        } else if let Some(remove) = action.get("remove") {
            let path = remove.get("path").and_then(Json::as_str).ok_or("`remove` without `path`")?;
            data_change |= remove.get("dataChange").and_then(Json::as_bool).unwrap_or(true);
            state.files.remove(&store::percent_decode(path));
        } else if let Some(meta) = action.get("metaData") {
            state.schema_string =
                meta.get("schemaString").and_then(Json::as_str).ok_or("`metaData` without `schemaString`")?.to_string();
            state.partition_columns = meta
                .get("partitionColumns")
                .and_then(Json::as_array)
                .map(|a| a.iter().filter_map(|c| c.as_str().map(str::to_string)).collect())
                .unwrap_or_default();
        } else if let Some(info) = action.get("commitInfo") {
            commit_ms = info.get("timestamp").and_then(Json::as_i64).or(commit_ms);
        }
    }
    let at = commit_ms.unwrap_or(file_time_ms);
    state.last_commit_ms = Some(at);
    if data_change {
        state.last_data_change_ms = Some(at);
    }
    Ok(())
}

fn strings(array: &dyn Array) -> Option<Vec<Option<String>>> {
    let utf8 = cast(array, &DataType::Utf8).ok()?;
    let s = utf8.as_string::<i32>();
    Some((0..s.len()).map(|i| (!s.is_null(i)).then(|| s.value(i).to_string())).collect())
}

fn ints(array: &dyn Array) -> Option<Vec<Option<i64>>> {
    let i64s = cast(array, &DataType::Int64).ok()?;
    let a = i64s.as_primitive::<datafusion::arrow::datatypes::Int64Type>();
    Some((0..a.len()).map(|i| (!a.is_null(i)).then(|| a.value(i))).collect())
}

/// State at checkpoint `version`, from its Parquet part(s).
async fn read_checkpoint(
    source: &LakeSource,
    dir: &Location,
    table: &TableRef,
    version: u64,
    parts: &[(u32, u32, ObjectMeta)],
) -> Result<DeltaState, SourceError> {
    let name = &source.name;
    let mut state = DeltaState { version: Some(version), ..DeltaState::default() };
    for (_, _, meta) in parts {
        let shown = store::display(&dir.store.url, &meta.location);
        state.last_commit_ms = Some(meta.last_modified.timestamp_millis());
        state.last_data_change_ms = state.last_commit_ms;
        let bytes: Bytes = dir
            .store
            .store
            .get(&meta.location)
            .await
            .map_err(|e| store::store_error(name, &format!("reading {shown}"), e))?
            .bytes()
            .await
            .map_err(|e| store::store_error(name, &format!("reading {shown}"), e))?;
        let bad = |e: &(dyn std::error::Error + 'static)| {
            store::data_error(name, &format!("table {table}: checkpoint {shown} is not valid Parquet"), e)
        };
        let reader =
            ParquetRecordBatchReaderBuilder::try_new(bytes).map_err(|e| bad(&e))?.build().map_err(|e| bad(&e))?;
        for batch in reader {
            let batch = batch.map_err(|e| bad(&e))?;
            if let Some(add) = batch.column_by_name("add").and_then(|c| c.as_any().downcast_ref::<StructArray>()) {
                read_adds(add, &mut state);
            }
            if let Some(meta) = batch.column_by_name("metaData").and_then(|c| c.as_any().downcast_ref::<StructArray>())
            {
                let schema = meta.column_by_name("schemaString").and_then(|c| strings(c.as_ref())).unwrap_or_default();
                for (i, s) in schema.into_iter().enumerate() {
                    if meta.is_valid(i)
                        && let Some(s) = s
                    {
                        state.schema_string = s;
                        if let Some(cols) =
                            meta.column_by_name("partitionColumns").and_then(|c| c.as_list_opt::<i32>().cloned())
                        {
                            let values = cols.value(i);
                            state.partition_columns =
                                strings(values.as_ref()).unwrap_or_default().into_iter().flatten().collect();
                        }
                    }
                }
            }
        }
    }
    Ok(state)
}

fn read_adds(add: &StructArray, state: &mut DeltaState) {
    let Some(paths) = add.column_by_name("path").and_then(|c| strings(c.as_ref())) else { return };
    let sizes = add.column_by_name("size").and_then(|c| ints(c.as_ref())).unwrap_or_default();
    let times = add.column_by_name("modificationTime").and_then(|c| ints(c.as_ref())).unwrap_or_default();
    let stats = add.column_by_name("stats").and_then(|c| strings(c.as_ref())).unwrap_or_default();
    let deleted = add
        .column_by_name("deletionVector")
        .and_then(|c| c.as_any().downcast_ref::<StructArray>().cloned())
        .and_then(|dv| dv.column_by_name("cardinality").and_then(|c| ints(c.as_ref())))
        .unwrap_or_default();
    let partitions = add.column_by_name("partitionValues").and_then(|c| c.as_map_opt().cloned());
    for (i, path) in paths.into_iter().enumerate() {
        let (Some(path), true) = (path, add.is_valid(i)) else { continue };
        let rows = stats
            .get(i)
            .cloned()
            .flatten()
            .and_then(|s| serde_json::from_str::<Json>(&s).ok())
            .and_then(|s| s.get("numRecords").and_then(Json::as_u64));
        let dv = deleted.get(i).copied().flatten().unwrap_or(0).max(0) as u64;
        let mut partition_values = HashMap::new();
        if let Some(map) = &partitions
            && map.is_valid(i)
        {
            let entry = map.value(i);
            let keys = strings(entry.column(0).as_ref()).unwrap_or_default();
            let values = strings(entry.column(1).as_ref()).unwrap_or_default();
            for (k, v) in keys.into_iter().zip(values) {
                if let Some(k) = k {
                    partition_values.insert(k, v);
                }
            }
        }
        state.files.insert(
            store::percent_decode(&path),
            AddFile {
                size: sizes.get(i).copied().flatten().unwrap_or(0).max(0) as u64,
                rows: rows.map(|r| r.saturating_sub(dv)),
                modified_ms: times.get(i).copied().flatten().unwrap_or(0),
                partition_values,
            },
        );
    }
}

/// Delta's type name, as schema history shows it (`long`, `decimal(10,2)`, `struct<a: int>`).
fn type_name(t: &Json) -> String {
    match t {
        Json::String(s) => s.clone(),
        Json::Object(o) => match o.get("type").and_then(Json::as_str) {
            Some("struct") => format!(
                "struct<{}>",
                o.get("fields")
                    .and_then(Json::as_array)
                    .map(|f| f
                        .iter()
                        .map(|f| format!(
                            "{}: {}",
                            f.get("name").and_then(Json::as_str).unwrap_or_default(),
                            f.get("type").map(type_name).unwrap_or_default()
                        ))
                        .collect::<Vec<_>>()
                        .join(", "))
                    .unwrap_or_default()
            ),
            Some("array") => format!("array<{}>", o.get("elementType").map(type_name).unwrap_or_default()),
            Some("map") => format!(
                "map<{}, {}>",
                o.get("keyType").map(type_name).unwrap_or_default(),
                o.get("valueType").map(type_name).unwrap_or_default()
            ),
            _ => t.to_string(),
        },
        _ => t.to_string(),
    }
}

/// The Arrow type delta-rs and Spark write for a Delta type; `None` for types not scanned (map).
fn arrow_type(t: &Json) -> Option<DataType> {
    Some(match t {
        Json::String(s) => match s.as_str() {
            "string" => DataType::Utf8,
            "long" => DataType::Int64,
            "integer" => DataType::Int32,
            "short" => DataType::Int16,
            "byte" => DataType::Int8,
            "float" => DataType::Float32,
            "double" => DataType::Float64,
            "boolean" => DataType::Boolean,
            "binary" => DataType::Binary,
            "date" => DataType::Date32,
            "timestamp" => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            "timestamp_ntz" => DataType::Timestamp(TimeUnit::Microsecond, None),
            d if d.starts_with("decimal(") => {
                let inner = d.trim_start_matches("decimal(").trim_end_matches(')');
                let (p, s) = inner.split_once(',')?;
                DataType::Decimal128(p.trim().parse().ok()?, s.trim().parse().ok()?)
            }
            _ => return None,
        },
        Json::Object(o) => match o.get("type").and_then(Json::as_str) {
            Some("struct") => DataType::Struct(fields_of(o.get("fields")?)?),
            Some("array") => DataType::List(Arc::new(Field::new("element", arrow_type(o.get("elementType")?)?, true))),
            _ => return None,
        },
        _ => return None,
    })
}

fn fields_of(fields: &Json) -> Option<Fields> {
    fields
        .as_array()?
        .iter()
        .map(|f| {
            Some(Field::new(
                f.get("name")?.as_str()?,
                arrow_type(f.get("type")?)?,
                f.get("nullable").and_then(Json::as_bool).unwrap_or(true),
            ))
        })
        .collect::<Option<Vec<_>>>()
        .map(Fields::from)
}

async fn view_of(
    source: &LakeSource,
    table: &TableRef,
    dir: &Location,
    state: &DeltaState,
) -> Result<TableView, SourceError> {
    let bad_schema = |why: String| SourceError::Query {
        source_name: source.name.clone(),
        message: format!("table {table}: the Delta schema cannot be read: {why}"),
    };
    let schema: Json = serde_json::from_str(&state.schema_string).map_err(|e| bad_schema(e.to_string()))?;
    let fields = schema.get("fields").and_then(Json::as_array).ok_or_else(|| bad_schema("no `fields`".into()))?;
    let mut columns = Vec::new();
    let mut file_fields: Vec<FieldRef> = Vec::new();
    let mut partition_fields: Vec<FieldRef> = Vec::new();
    for f in fields {
        let name = f.get("name").and_then(Json::as_str).unwrap_or_default().to_string();
        let t = f.get("type").cloned().unwrap_or(Json::Null);
        let nullable = f.get("nullable").and_then(Json::as_bool).unwrap_or(true);
        columns.push(Column { name: name.clone(), data_type: type_name(&t), nullable });
        if state.partition_columns.contains(&name) {
            partition_fields.push(Arc::new(Field::new(&name, arrow_type(&t).unwrap_or(DataType::Utf8), true)));
        } else if let Some(dt) = arrow_type(&t) {
            file_fields.push(Arc::new(Field::new(&name, dt, nullable)));
        }
    }
    // Partition columns in the order the table declares them.
    partition_fields.sort_by_key(|f| state.partition_columns.iter().position(|c| c == f.name()));
    let mut paths: Vec<&String> = state.files.keys().collect();
    paths.sort();
    let mut files: Vec<DataFile> = paths
        .iter()
        .map(|p| {
            let add = &state.files[*p];
            DataFile {
                path: store::join(&dir.path, p),
                size: add.size,
                rows: add.rows,
                modified: DateTime::<Utc>::from_timestamp_millis(add.modified_ms),
                partition_values: partition_fields
                    .iter()
                    .map(|f| scan::partition_value(f, add.partition_values.get(f.name()).cloned().flatten().as_deref()))
                    .collect(),
            }
        })
        .collect();
    // Files written without statistics: their footers say how many rows they hold.
    let missing: Vec<usize> = (0..files.len()).filter(|&i| files[i].rows.is_none()).collect();
    let reads: Vec<BoxFuture<'_, Result<(usize, u64), SourceError>>> = missing
        .into_iter()
        .map(|i| -> BoxFuture<'_, _> {
            let (path, size) = (files[i].path.clone(), files[i].size);
            Box::pin(async move {
                let (rows, _) = super::files::parquet_footer(&source.name, &dir.store, &path, size).await?;
                Ok((i, rows))
            })
        })
        .collect();
    let counted: Vec<(usize, u64)> = futures::stream::iter(reads).buffer_unordered(16).try_collect().await?;
    for (i, rows) in counted {
        files[i].rows = Some(rows);
    }
    let rows: u64 = files.iter().filter_map(|f| f.rows).sum();
    Ok(TableView {
        table: table.clone(),
        store: dir.store.clone(),
        format: FileFormat::Parquet,
        columns,
        file_schema: Arc::new(Schema::new(file_fields)),
        partition_fields,
        files,
        rows: Some(rows as f64),
        last_modified: state.last_data_change_ms.or(state.last_commit_ms).and_then(DateTime::from_timestamp_millis),
        signature: format!("v{}", state.version.unwrap_or(0)),
        unsupported_scan: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_names_parse() {
        assert_eq!(parse_log_name("00000000000000000003.json"), Some((3, LogFile::Commit)));
        assert_eq!(
            parse_log_name("00000000000000000010.checkpoint.parquet"),
            Some((10, LogFile::Checkpoint { part: 1, parts: 1 }))
        );
        assert_eq!(
            parse_log_name("00000000000000000010.checkpoint.0000000002.0000000003.parquet"),
            Some((10, LogFile::Checkpoint { part: 2, parts: 3 }))
        );
        assert_eq!(parse_log_name("_last_checkpoint"), None);
        assert_eq!(parse_log_name("00000000000000000003.crc"), None);
    }

    #[test]
    fn commits_replay_adds_removes_and_data_changes() {
        let mut state = DeltaState::default();
        let c0 = br#"{"commitInfo":{"timestamp":1000,"operation":"WRITE"}}
{"metaData":{"schemaString":"{\"type\":\"struct\",\"fields\":[{\"name\":\"id\",\"type\":\"long\",\"nullable\":true,\"metadata\":{}}]}","partitionColumns":[]}}
{"add":{"path":"a%20b.parquet","size":10,"modificationTime":1000,"dataChange":true,"stats":"{\"numRecords\":5}","partitionValues":{}}}"#;
        apply_commit(&mut state, c0, 0).unwrap();
        let c1 = br#"{"commitInfo":{"timestamp":2000,"operation":"OPTIMIZE"}}
{"remove":{"path":"a%20b.parquet","dataChange":false}}
{"add":{"path":"c.parquet","size":10,"modificationTime":2000,"dataChange":false,"stats":"{\"numRecords\":5}","partitionValues":{}}}"#;
        apply_commit(&mut state, c1, 0).unwrap();
        assert_eq!(state.files.len(), 1);
        assert_eq!(state.last_commit_ms, Some(2000));
        assert_eq!(state.last_data_change_ms, Some(1000), "compaction is not new data");
        assert!(state.files.contains_key("c.parquet"));
        assert_eq!(type_name(&serde_json::json!({"type":"array","elementType":"long"})), "array<long>");
    }
}
