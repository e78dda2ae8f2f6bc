//! `kind: delta`: Delta Lake tables, one per first-level directory with a `_delta_log/`.
//!
//! Reads the transaction log itself rather than through the `deltalake` crate (see
//! docs/lake.md, "Why telltale reads the Delta log itself"): JSON commits, classic single- and
//! multi-part Parquet checkpoints, V2 checkpoints (UUID-named JSON or Parquet) with their
//! sidecar files, column mapping (`name`/`id`: data files hold physical column names, checks and
//! schema history see logical ones) and deletion vectors (their cardinality is subtracted from
//! row counts). The metadata scan needs only the live file set, `numRecords` statistics, the
//! schema and commit times, and keeping the log state between polls means a poll reads only the
//! commits written since the previous one. Freshness is the time of the last commit that changed
//! data (an `OPTIMIZE` rewrites files with `dataChange: false` and is not new data); a gap in the
//! commit sequence is an error for that table, never a silently wrong row count.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use datafusion::arrow::array::{Array, AsArray, MapArray, StructArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Fields, Schema, TimeUnit};
use futures::future::BoxFuture;
use futures::{StreamExt, TryStreamExt};
use object_store::{ObjectMeta, ObjectStoreExt};
use parquet::arrow::ProjectionMask;
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
    /// Rows left after the deletion vector, when the writer gave `numRecords`.
    rows: Option<u64>,
    /// Rows the file's deletion vector removes.
    deleted: u64,
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
    /// `delta.columnMapping.mode` is `name` or `id`: files hold physical column names.
    column_mapping: bool,
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
    let rest = rest.strip_prefix("checkpoint.")?;
    if rest == "parquet" {
        return Some((version, LogFile::Checkpoint { part: 1, parts: 1 }));
    }
    // V2 checkpoints: `n.checkpoint.<uuid>.json` or `n.checkpoint.<uuid>.parquet`.
    if let Some((id, ext)) = rest.split_once('.')
        && !ext.contains('.')
        && id.len() >= 32
        && id.chars().all(|c| c.is_ascii_hexdigit() || c == '-')
    {
        return match ext {
            "json" => Some((version, LogFile::V2Checkpoint { json: true })),
            "parquet" => Some((version, LogFile::V2Checkpoint { json: false })),
            _ => None,
        };
    }
    // Multi-part classic checkpoints: `n.checkpoint.<part>.<parts>.parquet`.
    let rest = rest.strip_suffix(".parquet")?;
    let (part, parts) = rest.split_once('.')?;
    Some((version, LogFile::Checkpoint { part: part.parse().ok()?, parts: parts.parse().ok()? }))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LogFile {
    Commit,
    Checkpoint { part: u32, parts: u32 },
    V2Checkpoint { json: bool },
}

/// The files of one checkpoint version.
#[derive(Debug, Clone)]
enum Checkpoint {
    /// Classic: one file or every part of a multi-part checkpoint.
    Parts(Vec<(u32, u32, ObjectMeta)>),
    /// V2 (UUID-named): one JSON or Parquet file, usually pointing at sidecar files.
    V2 { json: bool, meta: ObjectMeta },
}

impl Checkpoint {
    fn complete(&self) -> bool {
        match self {
            Checkpoint::Parts(parts) => parts.first().is_some_and(|p| parts.len() as u32 == p.1),
            Checkpoint::V2 { .. } => true,
        }
    }
}

/// Commits older than a checkpoint read back, at most, to find when data last changed.
const FRESHNESS_LOOKBACK: u64 = 100;

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
    let mut checkpoints: BTreeMap<u64, Checkpoint> = BTreeMap::new();
    let log_parts = log.path.parts().count();
    for e in entries {
        // Only files directly in `_delta_log/` (not `_sidecars/`, `_commits/`).
        if e.location.parts().count() != log_parts + 1 {
            continue;
        }
        let Some(file) = e.location.filename() else { continue };
        match parse_log_name(file) {
            Some((v, LogFile::Commit)) => {
                commits.insert(v, e);
            }
            Some((v, LogFile::Checkpoint { part, parts })) => {
                match checkpoints.entry(v).or_insert_with(|| Checkpoint::Parts(Vec::new())) {
                    Checkpoint::Parts(list) => list.push((part, parts, e)),
                    Checkpoint::V2 { .. } => {}
                }
            }
            // A V2 checkpoint is complete in itself: it wins over classic parts of the same version.
            Some((v, LogFile::V2Checkpoint { json })) => {
                checkpoints.insert(v, Checkpoint::V2 { json, meta: e });
            }
            None => {}
        }
    }
    checkpoints.retain(|_, c| c.complete());
    let latest = commits.keys().chain(checkpoints.keys()).max().copied().ok_or_else(|| SourceError::Query {
        source_name: name.clone(),
        message: format!("table {table}: {} holds no commits", log.display()),
    })?;
    let contiguous = |from: u64| (from..=latest).all(|v| commits.contains_key(&v));
    let mut state = match previous {
        Some(p) if p.version.is_some_and(|v| v <= latest && contiguous(v + 1)) => p,
        _ => match checkpoints.range(..=latest).next_back() {
            Some((&v, checkpoint)) => {
                let mut state = read_checkpoint(source, dir, table, v, checkpoint).await?;
                commit_times_before(source, dir, &commits, v, &mut state).await?;
                state
            }
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
        let (shown, bytes) = read_object(name, dir, meta).await?;
        apply_commit(&mut state, &bytes, meta.last_modified.timestamp_millis()).map_err(|why| SourceError::Query {
            source_name: name.clone(),
            message: format!("table {table}: commit {shown} is not valid: {why}"),
        })?;
        state.version = Some(v);
    }
    let view = view_of(source, table, dir, &state).await?;
    Ok((state, view))
}

async fn read_object(name: &str, dir: &Location, meta: &ObjectMeta) -> Result<(String, Bytes), SourceError> {
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
    Ok((shown, bytes))
}

fn summarize(versions: &[String]) -> String {
    if versions.len() <= 8 {
        versions.join(", ")
    } else {
        format!("{} … {}", versions[..4].join(", "), versions[versions.len() - 2..].join(", "))
    }
}

/// Lines of a JSON commit (or V2 checkpoint), parsed; blank lines skipped.
fn actions(bytes: &[u8]) -> impl Iterator<Item = Result<Json, String>> + '_ {
    bytes
        .split(|b| *b == b'\n')
        .enumerate()
        .filter(|(_, line)| !line.iter().all(u8::is_ascii_whitespace))
        .map(|(i, line)| serde_json::from_slice(line).map_err(|e| format!("line {}: {e}", i + 1)))
}

/// An `add` action: the path, the file and whether it changes data.
fn add_of(add: &Json, file_time_ms: i64) -> Result<(String, AddFile, bool), String> {
    let path = add.get("path").and_then(Json::as_str).ok_or("`add` without `path`")?;
    let data_change = add.get("dataChange").and_then(Json::as_bool).unwrap_or(true);
    let rows = add
        .get("stats")
        .and_then(Json::as_str)
        .and_then(|s| serde_json::from_str::<Json>(s).ok())
        .and_then(|s| s.get("numRecords").and_then(Json::as_u64));
    let deleted = add.pointer("/deletionVector/cardinality").and_then(Json::as_u64).unwrap_or(0);
    let file = AddFile {
        size: add.get("size").and_then(Json::as_u64).unwrap_or(0),
        rows: rows.map(|r| r.saturating_sub(deleted)),
        deleted,
        modified_ms: add.get("modificationTime").and_then(Json::as_i64).unwrap_or(file_time_ms),
        partition_values: add
            .get("partitionValues")
            .and_then(Json::as_object)
            .map(|m| m.iter().map(|(k, v)| (k.clone(), v.as_str().map(str::to_string))).collect())
            .unwrap_or_default(),
    };
    Ok((store::percent_decode(path), file, data_change))
}

fn apply_metadata(state: &mut DeltaState, meta: &Json) -> Result<(), String> {
    state.schema_string =
        meta.get("schemaString").and_then(Json::as_str).ok_or("`metaData` without `schemaString`")?.to_string();
    state.partition_columns = meta
        .get("partitionColumns")
        .and_then(Json::as_array)
        .map(|a| a.iter().filter_map(|c| c.as_str().map(str::to_string)).collect())
        .unwrap_or_default();
    state.column_mapping = meta
        .pointer("/configuration/delta.columnMapping.mode")
        .and_then(Json::as_str)
        .is_some_and(|m| !m.eq_ignore_ascii_case("none"));
    Ok(())
}

fn apply_commit(state: &mut DeltaState, bytes: &[u8], file_time_ms: i64) -> Result<(), String> {
    let mut commit_ms = None;
    let mut data_change = false;
    for action in actions(bytes) {
        let action = action?;
        if let Some(add) = action.get("add") {
            let (path, file, changes) = add_of(add, file_time_ms)?;
            data_change |= changes;
            state.files.insert(path, file);
        } else if let Some(remove) = action.get("remove") {
            let path = remove.get("path").and_then(Json::as_str).ok_or("`remove` without `path`")?;
            data_change |= remove.get("dataChange").and_then(Json::as_bool).unwrap_or(true);
            state.files.remove(&store::percent_decode(path));
        } else if let Some(meta) = action.get("metaData") {
            apply_metadata(state, meta)?;
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

/// When a reader starts from checkpoint `version`, the checkpoint says which files are live but
/// not when data last changed: the commits up to it that are still kept say (the newest one with
/// `dataChange`), so a compaction checkpointed before the first poll is not taken for new data.
/// Without them, the newest `modificationTime` of a live file stands in.
async fn commit_times_before(
    source: &LakeSource,
    dir: &Location,
    commits: &BTreeMap<u64, ObjectMeta>,
    version: u64,
    state: &mut DeltaState,
) -> Result<(), SourceError> {
    let newest_file = state.files.values().map(|f| f.modified_ms).max();
    state.last_commit_ms = None;
    state.last_data_change_ms = None;
    for v in (version.saturating_sub(FRESHNESS_LOOKBACK)..=version).rev() {
        let Some(meta) = commits.get(&v) else { break };
        let (_, bytes) = read_object(&source.name, dir, meta).await?;
        let mut probe = DeltaState::default();
        // A commit that does not parse only loses its time here; reading it for data fails loudly.
        if apply_commit(&mut probe, &bytes, meta.last_modified.timestamp_millis()).is_err() {
            continue;
        }
        state.last_commit_ms = state.last_commit_ms.or(probe.last_commit_ms);
        if probe.last_data_change_ms.is_some() {
            state.last_data_change_ms = probe.last_data_change_ms;
            break;
        }
    }
    state.last_data_change_ms = state.last_data_change_ms.or(newest_file);
    state.last_commit_ms = state.last_commit_ms.or(state.last_data_change_ms);
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

/// Keys and values of row `i` of a `map<string, string>` column.
fn map_entries(map: &MapArray, i: usize) -> Vec<(String, Option<String>)> {
    if !map.is_valid(i) {
        return Vec::new();
    }
    let entry = map.value(i);
    let keys = strings(entry.column(0).as_ref()).unwrap_or_default();
    let values = strings(entry.column(1).as_ref()).unwrap_or_default();
    keys.into_iter().zip(values).filter_map(|(k, v)| Some((k?, v))).collect()
}

/// State at checkpoint `version`: its Parquet part(s) or V2 file, and the sidecars it names.
async fn read_checkpoint(
    source: &LakeSource,
    dir: &Location,
    table: &TableRef,
    version: u64,
    checkpoint: &Checkpoint,
) -> Result<DeltaState, SourceError> {
    let name = &source.name;
    let mut state = DeltaState { version: Some(version), ..DeltaState::default() };
    let mut sidecars = Vec::new();
    let files: Vec<(&ObjectMeta, bool)> = match checkpoint {
        Checkpoint::Parts(parts) => parts.iter().map(|(_, _, m)| (m, false)).collect(),
        Checkpoint::V2 { json, meta } => vec![(meta, *json)],
    };
    for (meta, json) in files {
        let (shown, bytes) = read_object(name, dir, meta).await?;
        if json {
            for action in actions(&bytes) {
                let bad = |why: String| SourceError::Query {
                    source_name: name.clone(),
                    message: format!("table {table}: checkpoint {shown} is not valid: {why}"),
                };
                let action = action.map_err(bad)?;
                if let Some(add) = action.get("add") {
                    let (path, file, _) = add_of(add, meta.last_modified.timestamp_millis()).map_err(bad)?;
                    state.files.insert(path, file);
                } else if let Some(m) = action.get("metaData") {
                    apply_metadata(&mut state, m).map_err(bad)?;
                } else if let Some(path) = action.pointer("/sidecar/path").and_then(Json::as_str) {
                    sidecars.push(path.to_string());
                }
            }
        } else {
            let what = format!("table {table}: checkpoint {shown} is not valid Parquet");
            read_checkpoint_parquet(name, &what, bytes, &mut state, &mut sidecars)?;
        }
    }
    // Sidecars live in `_delta_log/_sidecars/` (the action names the file, or a full URL).
    let sidecar_dir = dir.child("_delta_log").child("_sidecars");
    for path in sidecars {
        let file = store::percent_decode(path.rsplit('/').next().unwrap_or(&path));
        let location = sidecar_dir.child(&file);
        let shown = location.display();
        let bytes = dir
            .store
            .store
            .get(&location.path)
            .await
            .map_err(|e| store::store_error(name, &format!("table {table}: reading sidecar {shown}"), e))?
            .bytes()
            .await
            .map_err(|e| store::store_error(name, &format!("table {table}: reading sidecar {shown}"), e))?;
        let what = format!("table {table}: sidecar {shown} is not valid Parquet");
        read_checkpoint_parquet(name, &what, bytes, &mut state, &mut Vec::new())?;
    }
    if state.schema_string.is_empty() {
        return Err(SourceError::Query {
            source_name: name.clone(),
            message: format!("table {table}: checkpoint {version} holds no `metaData` (schema)"),
        });
    }
    Ok(state)
}

/// `add`, `metaData` and `sidecar` actions of a Parquet checkpoint (or sidecar) file; the other
/// columns (`remove` tombstones, parsed statistics) are not read.
fn read_checkpoint_parquet(
    name: &str,
    what: &str,
    bytes: Bytes,
    state: &mut DeltaState,
    sidecars: &mut Vec<String>,
) -> Result<(), SourceError> {
    let bad = |e: &(dyn std::error::Error + 'static)| store::data_error(name, what, e);
    let builder = ParquetRecordBatchReaderBuilder::try_new(bytes).map_err(|e| bad(&e))?;
    let roots: Vec<usize> = builder
        .parquet_schema()
        .root_schema()
        .get_fields()
        .iter()
        .enumerate()
        .filter(|(_, f)| matches!(f.name(), "add" | "metaData" | "sidecar"))
        .map(|(i, _)| i)
        .collect();
    let mask = ProjectionMask::roots(builder.parquet_schema(), roots);
    let reader = builder.with_projection(mask).build().map_err(|e| bad(&e))?;
    for batch in reader {
        let batch = batch.map_err(|e| bad(&e))?;
        if let Some(add) = batch.column_by_name("add").and_then(|c| c.as_any().downcast_ref::<StructArray>()) {
            read_adds(add, state);
        }
        if let Some(meta) = batch.column_by_name("metaData").and_then(|c| c.as_any().downcast_ref::<StructArray>()) {
            let schema = meta.column_by_name("schemaString").and_then(|c| strings(c.as_ref())).unwrap_or_default();
            let partitions = meta.column_by_name("partitionColumns").and_then(|c| c.as_list_opt::<i32>().cloned());
            let configuration = meta.column_by_name("configuration").and_then(|c| c.as_map_opt().cloned());
            for (i, s) in schema.into_iter().enumerate() {
                let (true, Some(s)) = (meta.is_valid(i), s) else { continue };
                state.schema_string = s;
                if let Some(cols) = &partitions {
                    state.partition_columns =
                        strings(cols.value(i).as_ref()).unwrap_or_default().into_iter().flatten().collect();
                }
                state.column_mapping = configuration.as_ref().is_some_and(|c| {
                    map_entries(c, i).into_iter().any(|(k, v)| {
                        k == "delta.columnMapping.mode" && v.is_some_and(|v| !v.eq_ignore_ascii_case("none"))
                    })
                });
            }
        }
        if let Some(sidecar) = batch.column_by_name("sidecar").and_then(|c| c.as_any().downcast_ref::<StructArray>()) {
            let paths = sidecar.column_by_name("path").and_then(|c| strings(c.as_ref())).unwrap_or_default();
            for (i, p) in paths.into_iter().enumerate() {
                if let (true, Some(p)) = (sidecar.is_valid(i), p) {
                    sidecars.push(p);
                }
            }
        }
    }
    Ok(())
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
        let partition_values = partitions.as_ref().map(|m| map_entries(m, i).into_iter().collect()).unwrap_or_default();
        state.files.insert(
            store::percent_decode(&path),
            AddFile {
                size: sizes.get(i).copied().flatten().unwrap_or(0).max(0) as u64,
                rows: rows.map(|r| r.saturating_sub(dv)),
                deleted: dv,
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
/// With column mapping, nested fields carry their physical names, as in the data files.
fn arrow_type(t: &Json, mapped: bool) -> Option<DataType> {
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
            Some("struct") => DataType::Struct(fields_of(o.get("fields")?, mapped)?),
            Some("array") => {
                DataType::List(Arc::new(Field::new("element", arrow_type(o.get("elementType")?, mapped)?, true)))
            }
            _ => return None,
        },
        _ => return None,
    })
}

fn fields_of(fields: &Json, mapped: bool) -> Option<Fields> {
    fields
        .as_array()?
        .iter()
        .map(|f| {
            Some(Field::new(
                physical_name(f, mapped)?,
                arrow_type(f.get("type")?, mapped)?,
                f.get("nullable").and_then(Json::as_bool).unwrap_or(true),
            ))
        })
        .collect::<Option<Vec<_>>>()
        .map(Fields::from)
}

/// The name a field has in the data files: its physical name under column mapping.
fn physical_name(field: &Json, mapped: bool) -> Option<&str> {
    let logical = field.get("name")?.as_str()?;
    if !mapped {
        return Some(logical);
    }
    Some(field.pointer("/metadata/delta.columnMapping.physicalName").and_then(Json::as_str).unwrap_or(logical))
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
    let mapped = state.column_mapping;
    let mut columns = Vec::new();
    let mut file_fields: Vec<FieldRef> = Vec::new();
    let mut physical_names: Vec<String> = Vec::new();
    // Partition fields, each with the key its values have in `partitionValues`.
    let mut partition_fields: Vec<(FieldRef, String)> = Vec::new();
    for f in fields {
        let name = f.get("name").and_then(Json::as_str).unwrap_or_default().to_string();
        let physical = physical_name(f, mapped).unwrap_or(&name).to_string();
        let t = f.get("type").cloned().unwrap_or(Json::Null);
        let nullable = f.get("nullable").and_then(Json::as_bool).unwrap_or(true);
        columns.push(Column { name: name.clone(), data_type: type_name(&t), nullable });
        if state.partition_columns.contains(&name) {
            let field = Arc::new(Field::new(&name, arrow_type(&t, mapped).unwrap_or(DataType::Utf8), true));
            partition_fields.push((field, physical));
        } else if let Some(dt) = arrow_type(&t, mapped) {
            file_fields.push(Arc::new(Field::new(&name, dt, nullable)));
            physical_names.push(physical);
        }
    }
    // Partition columns in the order the table declares them.
    partition_fields.sort_by_key(|(f, _)| state.partition_columns.iter().position(|c| c == f.name()));
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
                    .map(|(f, key)| {
                        let raw = add.partition_values.get(key).or_else(|| add.partition_values.get(f.name()));
                        scan::partition_value(f, raw.cloned().flatten().as_deref())
                    })
                    .collect(),
            }
        })
        .collect();
    let partition_fields: Vec<FieldRef> = partition_fields.into_iter().map(|(f, _)| f).collect();
    // Deletion vectors: rows are subtracted from volume, but a scan of the files would still see
    // the deleted rows, so profiles refuse rather than measure rows that are gone.
    let with_deletes = state.files.values().filter(|f| f.deleted > 0).count();
    let unsupported_scan = (with_deletes > 0).then(|| {
        format!(
            "table {table}: {with_deletes} live file(s) carry deletion vectors; telltale does not apply them to data scans, so profiles, bucket counts and SQL over this table are not run (volume, freshness and schema are measured, with deleted rows subtracted)"
        )
    });
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
        physical_names: mapped.then_some(physical_names),
        unsupported_scan,
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
        assert_eq!(
            parse_log_name("00000000000000000010.checkpoint.80a083e8-7026-4e79-81be-64bd76c43a11.json"),
            Some((10, LogFile::V2Checkpoint { json: true }))
        );
        assert_eq!(
            parse_log_name("00000000000000000010.checkpoint.80a083e8-7026-4e79-81be-64bd76c43a11.parquet"),
            Some((10, LogFile::V2Checkpoint { json: false }))
        );
        assert_eq!(parse_log_name("00000000000000000010.checkpoint.x.parquet"), None);
        assert_eq!(parse_log_name("00000000000000000001.00000000000000000003.compacted.json"), None);
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

    #[test]
    fn column_mapping_and_deletion_vectors_come_from_the_log() {
        let mut state = DeltaState::default();
        let c0 = br#"{"commitInfo":{"timestamp":1000}}
{"metaData":{"schemaString":"{\"type\":\"struct\",\"fields\":[{\"name\":\"a b\",\"type\":\"long\",\"nullable\":true,\"metadata\":{\"delta.columnMapping.physicalName\":\"col-1\"}},{\"name\":\"s\",\"type\":{\"type\":\"struct\",\"fields\":[{\"name\":\"x\",\"type\":\"long\",\"nullable\":true,\"metadata\":{\"delta.columnMapping.physicalName\":\"col-3\"}}]},\"nullable\":true,\"metadata\":{\"delta.columnMapping.physicalName\":\"col-2\"}}]}","partitionColumns":[],"configuration":{"delta.columnMapping.mode":"name"}}}
{"add":{"path":"f.parquet","size":10,"modificationTime":1000,"dataChange":true,"stats":"{\"numRecords\":10}","partitionValues":{},"deletionVector":{"storageType":"u","pathOrInlineDv":"ab^-aqEH.-t@S}K{vb[*k^","offset":1,"sizeInBytes":36,"cardinality":3}}}"#;
        apply_commit(&mut state, c0, 0).unwrap();
        assert!(state.column_mapping);
        let file = &state.files["f.parquet"];
        assert_eq!((file.rows, file.deleted), (Some(7), 3), "deleted rows are not counted");
        let schema: Json = serde_json::from_str(&state.schema_string).unwrap();
        let fields = schema["fields"].as_array().unwrap();
        assert_eq!(physical_name(&fields[0], true), Some("col-1"));
        assert_eq!(physical_name(&fields[0], false), Some("a b"));
        // Nested fields are read by their physical names too.
        let DataType::Struct(inner) = arrow_type(&fields[1]["type"], true).unwrap() else { panic!() };
        assert_eq!(inner[0].name(), "col-3");
    }
}
