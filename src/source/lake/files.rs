//! `kind: files`: every first-level directory under the source's root is a table of Parquet, CSV
//! or NDJSON files, optionally partitioned `key=value/` (Hive style).
//!
//! Volume comes from Parquet footers (CSV and NDJSON files are counted once, when new); schema
//! from the footers merged oldest to newest, so a column added by new files shows as a schema
//! change; freshness from the newest file time. A file is read again only when its size or
//! modification time changes, so a poll of 10,000 unchanged files is one listing.

use std::collections::HashMap;
use std::io::Cursor;
use std::sync::Arc;

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Schema, SchemaRef};
use futures::future::BoxFuture;
use futures::{StreamExt, TryStreamExt};
use object_store::path::Path as ObjPath;
use object_store::{ObjectMeta, ObjectStoreExt};
use parquet::arrow::parquet_to_arrow_schema;
use parquet::file::metadata::{FooterTail, ParquetMetaDataReader};

use super::store::{self, Location};
use super::{DataFile, Handle, LakeSource, TableView, scan};
use crate::config::FileFormat;
use crate::measure::{Column, TableRef};
use crate::source::SourceError;

/// The schema every `files` (and `delta`) table is listed under.
pub(crate) const SCHEMA: &str = "main";
/// Footers read at once.
const FOOTER_CONCURRENCY: usize = 32;

/// What one read of a data file said, valid while its size and modification time hold.
#[derive(Debug, Clone)]
pub(crate) struct FileFacts {
    size: u64,
    modified: DateTime<Utc>,
    pub rows: u64,
    pub schema: SchemaRef,
}

/// Facts of every file seen, by path.
#[derive(Debug, Default)]
pub(crate) struct Cache(HashMap<String, FileFacts>);

impl Cache {
    pub fn merge(&mut self, other: Cache) {
        self.0.extend(other.0);
    }
}

fn hidden(segment: &str) -> bool {
    segment.starts_with('_') || segment.starts_with('.')
}

/// Tables under `root`: one listing of the whole prefix, grouped by first directory.
pub(super) async fn handles(
    source_name: &str,
    root: &Location,
    only: Option<&TableRef>,
) -> Result<Vec<Handle>, SourceError> {
    check_root(source_name, root).await?;
    let listed = match only {
        Some(t) if t.schema != SCHEMA => return Ok(Vec::new()),
        Some(t) => root.child(&t.name),
        None => root.clone(),
    };
    let prefix = listed.path.clone();
    let objects: Vec<ObjectMeta> = root
        .store
        .store
        .list(Some(&prefix))
        .try_collect()
        .await
        .map_err(|e| store::store_error(source_name, &format!("listing {}", listed.display()), e))?;
    let mut by_table: std::collections::BTreeMap<String, Vec<ObjectMeta>> = Default::default();
    let root_parts = root.path.parts().count();
    for o in objects {
        let parts: Vec<String> = o.location.parts().skip(root_parts).map(|p| p.as_ref().to_string()).collect();
        if parts.len() < 2 || hidden(&parts[0]) {
            continue;
        }
        by_table.entry(parts[0].clone()).or_default().push(o);
    }
    Ok(by_table
        .into_iter()
        .map(|(name, objects)| Handle::Files { table: TableRef::new(SCHEMA, name), objects, root: root.clone() })
        .collect())
}

/// A local root that does not exist is a configuration problem, not an empty lake.
pub(super) async fn check_root(source_name: &str, root: &Location) -> Result<(), SourceError> {
    if root.store.url == "file://" && !std::path::Path::new(&root.display()).is_dir() {
        return Err(SourceError::Unreachable {
            source_name: source_name.to_string(),
            message: format!("directory {} does not exist", root.display()),
        });
    }
    Ok(())
}

/// Reads the footers of new or changed files and builds the table's view.
pub(super) async fn load(
    source: &LakeSource,
    table: &TableRef,
    root: &Location,
    objects: &[ObjectMeta],
    previous: Cache,
) -> (Cache, Result<TableView, SourceError>) {
    let mut cache = previous;
    let result = load_in(source, table, root, objects, &mut cache).await;
    (cache, result)
}

/// A data file of the table: its listing entry, `key=value` partitions and format.
type Listed<'a> = (&'a ObjectMeta, Vec<(String, String)>, FileFormat);

async fn load_in(
    source: &LakeSource,
    table: &TableRef,
    root: &Location,
    objects: &[ObjectMeta],
    cache: &mut Cache,
) -> Result<TableView, SourceError> {
    let table_dir = root.child(&table.name);
    let skip = table_dir.path.parts().count();
    let mut data: Vec<Listed<'_>> = Vec::new();
    for o in objects {
        let parts: Vec<String> = o.location.parts().skip(skip).map(|p| p.as_ref().to_string()).collect();
        let Some((file, dirs)) = parts.split_last() else { continue };
        if hidden(file) || dirs.iter().any(|d| hidden(d)) {
            continue;
        }
        let format = match source.options.format {
            Some(f) => f,
            None => match FileFormat::from_path(file) {
                Some(f) => f,
                None => continue,
            },
        };
        let partitions =
            dirs.iter().filter_map(|d| d.split_once('=').map(|(k, v)| (unescape(k), unescape(v)))).collect::<Vec<_>>();
        data.push((o, partitions, format));
    }
    let format = data.first().map_or(source.options.format.unwrap_or(FileFormat::Parquet), |d| d.2);
    if let Some(other) = data.iter().find(|d| d.2 != format) {
        return Err(SourceError::Query {
            source_name: source.name.clone(),
            message: format!(
                "table {table} mixes {} and {} files ({}); set the source's `format` to read one kind",
                format.as_str(),
                other.2.as_str(),
                store::display(&root.store.url, &other.0.location)
            ),
        });
    }
    let keys: Vec<String> = data.first().map(|d| d.1.iter().map(|(k, _)| k.clone()).collect()).unwrap_or_default();
    if let Some(odd) = data.iter().find(|d| d.1.iter().map(|(k, _)| k).ne(keys.iter())) {
        return Err(SourceError::Query {
            source_name: source.name.clone(),
            message: format!(
                "table {table} is partitioned inconsistently: {} does not follow `{}`",
                store::display(&root.store.url, &odd.0.location),
                keys.iter().map(|k| format!("{k}=")).collect::<Vec<_>>().join("/")
            ),
        });
    }

    // Only files never seen (or changed since) are opened.
    let stale: Vec<&ObjectMeta> = data
        .iter()
        .map(|d| d.0)
        .filter(|o| cache.0.get(o.location.as_ref()).is_none_or(|f| f.size != o.size || f.modified != o.last_modified))
        .collect();
    let reads: Vec<BoxFuture<'_, Result<(String, FileFacts), SourceError>>> = stale
        .into_iter()
        .map(|o| -> BoxFuture<'_, _> {
            Box::pin(async move { Ok((o.location.to_string(), read_facts(source, &root.store, o, format).await?)) })
        })
        .collect();
    let fresh: Vec<(String, FileFacts)> =
        futures::stream::iter(reads).buffer_unordered(FOOTER_CONCURRENCY).try_collect().await?;
    cache.0.extend(fresh);

    let mut by_age: Vec<&Listed<'_>> = data.iter().collect();
    by_age.sort_by_key(|d| (d.0.last_modified, d.0.location.to_string()));
    let mut schema: Option<Schema> = None;
    let mut seen_schemas: Vec<SchemaRef> = Vec::new();
    for d in &by_age {
        let facts = &cache.0[d.0.location.as_ref()];
        if seen_schemas.iter().any(|s| Arc::ptr_eq(s, &facts.schema) || **s == *facts.schema) {
            continue;
        }
        seen_schemas.push(facts.schema.clone());
        schema = Some(match schema {
            None => (*facts.schema).clone(),
            Some(s) => Schema::try_merge([s, (*facts.schema).clone()]).unwrap_or_else(|_| (*facts.schema).clone()),
        });
    }
    let schema = schema.unwrap_or_else(Schema::empty);
    let file_fields: Vec<FieldRef> = schema.fields().iter().filter(|f| !keys.contains(f.name())).cloned().collect();
    let file_schema = Arc::new(Schema::new(file_fields));

    let partition_fields: Vec<FieldRef> = keys
        .iter()
        .enumerate()
        .map(|(i, k)| Arc::new(Field::new(k, partition_type(data.iter().map(|d| d.1[i].1.as_str())), true)))
        .collect();
    let mut files = Vec::with_capacity(data.len());
    let mut rows = 0u64;
    for d in &data {
        let facts = &cache.0[d.0.location.as_ref()];
        rows += facts.rows;
        files.push(DataFile {
            path: d.0.location.clone(),
            size: d.0.size,
            rows: Some(facts.rows),
            modified: Some(d.0.last_modified),
            partition_values: partition_fields
                .iter()
                .zip(&d.1)
                .map(|(f, (_, v))| scan::partition_value(f, (v != HIVE_NULL).then_some(v.as_str())))
                .collect(),
        });
    }
    let columns = file_schema
        .fields()
        .iter()
        .chain(partition_fields.iter())
        .map(|f| Column { name: f.name().clone(), data_type: f.data_type().to_string(), nullable: f.is_nullable() })
        .collect();
    let newest = data.iter().map(|d| d.0.last_modified).max();
    let total_size: u64 = data.iter().map(|d| d.0.size).sum();
    Ok(TableView {
        table: table.clone(),
        store: root.store.clone(),
        format,
        columns,
        file_schema,
        partition_fields,
        files,
        rows: Some(rows as f64),
        last_modified: newest,
        signature: format!("{}:{}:{}", data.len(), total_size, newest.map_or(0, |t| t.timestamp_millis())),
        physical_names: None,
        unsupported_scan: None,
    })
}

const HIVE_NULL: &str = "__HIVE_DEFAULT_PARTITION__";

/// Integers, dates, or text.
fn partition_type<'a>(values: impl Iterator<Item = &'a str> + Clone) -> DataType {
    let present = values.filter(|v| *v != HIVE_NULL);
    if present.clone().all(|v| v.parse::<i64>().is_ok()) && present.clone().next().is_some() {
        DataType::Int64
    } else if present.clone().all(|v| NaiveDate::parse_from_str(v, "%Y-%m-%d").is_ok())
        && present.clone().next().is_some()
    {
        DataType::Date32
    } else {
        DataType::Utf8
    }
}

fn unescape(s: &str) -> String {
    store::percent_decode(s)
}

/// Epoch seconds of a partition value written as a date or a date and time.
pub(crate) fn parse_time(s: &str) -> Option<f64> {
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return Some(d.and_hms_opt(0, 0, 0)?.and_utc().timestamp() as f64);
    }
    for f in ["%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M", "%Y-%m-%d-%H"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, f) {
            return Some(t.and_utc().timestamp() as f64);
        }
    }
    DateTime::parse_from_rfc3339(s).ok().map(|t| t.timestamp() as f64)
}

/// Rows and schema of one file: the Parquet footer, or one pass over a CSV/NDJSON file.
async fn read_facts(
    source: &LakeSource,
    store: &store::Store,
    object: &ObjectMeta,
    format: FileFormat,
) -> Result<FileFacts, SourceError> {
    let shown = store::display(&store.url, &object.location);
    let (rows, schema) = match format {
        FileFormat::Parquet => parquet_footer(&source.name, store, &object.location, object.size).await?,
        FileFormat::Csv | FileFormat::Ndjson => {
            let bytes = store
                .store
                .get(&object.location)
                .await
                .map_err(|e| store::store_error(&source.name, &format!("reading {shown}"), e))?
                .bytes()
                .await
                .map_err(|e| store::store_error(&source.name, &format!("reading {shown}"), e))?;
            count_text(&bytes, format, source.options.csv_header).map_err(|e| {
                store::data_error(&source.name, &format!("file {shown} is not valid {}", format.as_str()), &e)
            })?
        }
    };
    Ok(FileFacts { size: object.size, modified: object.last_modified, rows, schema })
}

/// Bytes read from the end of a Parquet file at once: most footers fit, so one request suffices.
const FOOTER_GUESS: u64 = 64 * 1024;

/// Rows and Arrow schema from a Parquet footer (one range read, two for very wide files).
pub(crate) async fn parquet_footer(
    source_name: &str,
    store: &store::Store,
    path: &ObjPath,
    size: u64,
) -> Result<(u64, SchemaRef), SourceError> {
    let shown = store::display(&store.url, path);
    let invalid = |why: String| SourceError::Query {
        source_name: source_name.to_string(),
        message: format!("file {shown} is not valid Parquet: {why}"),
    };
    if size < 12 {
        return Err(invalid(format!("{size} bytes is too short for a Parquet file (truncated?)")));
    }
    let start = size.saturating_sub(FOOTER_GUESS);
    let tail = store
        .store
        .get_range(path, start..size)
        .await
        .map_err(|e| store::store_error(source_name, &format!("reading {shown}"), e))?;
    let last8: [u8; 8] = tail[tail.len() - 8..].try_into().map_err(|_| invalid("short read".into()))?;
    let footer = FooterTail::try_new(&last8).map_err(|e| invalid(format!("{e} (truncated or not Parquet?)")))?;
    let length = footer.metadata_length() as u64;
    if length + 8 > size {
        return Err(invalid(format!(
            "the footer claims {length} bytes of metadata in a {size}-byte file (truncated?)"
        )));
    }
    let metadata_bytes = if length + 8 <= tail.len() as u64 {
        tail.slice(tail.len() - 8 - length as usize..tail.len() - 8)
    } else {
        store
            .store
            .get_range(path, size - 8 - length..size - 8)
            .await
            .map_err(|e| store::store_error(source_name, &format!("reading {shown}"), e))?
    };
    let metadata = ParquetMetaDataReader::decode_metadata(&metadata_bytes).map_err(|e| invalid(e.to_string()))?;
    let file = metadata.file_metadata();
    let schema =
        parquet_to_arrow_schema(file.schema_descr(), file.key_value_metadata()).map_err(|e| invalid(e.to_string()))?;
    Ok((file.num_rows().max(0) as u64, Arc::new(schema)))
}

fn count_text(
    bytes: &[u8],
    format: FileFormat,
    header: bool,
) -> Result<(u64, SchemaRef), datafusion::arrow::error::ArrowError> {
    use datafusion::arrow::csv::reader::Format;
    match format {
        FileFormat::Csv => {
            let (schema, _) = Format::default().with_header(header).infer_schema(Cursor::new(bytes), Some(1000))?;
            // Counted as text, so a value the inference did not foresee cannot fail the count.
            let text = Arc::new(Schema::new(
                schema.fields().iter().map(|f| Field::new(f.name(), DataType::Utf8, true)).collect::<Vec<_>>(),
            ));
            let reader =
                datafusion::arrow::csv::ReaderBuilder::new(text).with_header(header).build(Cursor::new(bytes))?;
            let mut rows = 0u64;
            for batch in reader {
                rows += batch?.num_rows() as u64;
            }
            Ok((rows, Arc::new(schema)))
        }
        _ => {
            let (schema, _) =
                datafusion::arrow::json::reader::infer_json_schema_from_seekable(Cursor::new(bytes), Some(1000))?;
            let rows = bytes.split(|b| *b == b'\n').filter(|l| l.iter().any(|b| !b.is_ascii_whitespace())).count();
            Ok((rows as u64, Arc::new(schema)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_types_are_inferred_from_values() {
        assert_eq!(partition_type(["2024-01-01", "2024-01-02"].into_iter()), DataType::Date32);
        assert_eq!(partition_type(["1", "22"].into_iter()), DataType::Int64);
        assert_eq!(partition_type(["eu", "1"].into_iter()), DataType::Utf8);
        assert_eq!(unescape("2024-01-01 10%3A00"), "2024-01-01 10:00");
        assert_eq!(parse_time("2024-01-02"), Some(1_704_153_600.0));
    }

    #[test]
    fn text_files_are_counted() {
        let (rows, schema) = count_text(b"a,b\n1,x\n2,\"y\nz\"\n", FileFormat::Csv, true).unwrap();
        assert_eq!(rows, 2);
        assert_eq!(schema.fields().len(), 2);
        let (rows, _) = count_text(b"{\"a\":1}\n\n{\"a\":2}\n", FileFormat::Ndjson, true).unwrap();
        assert_eq!(rows, 2);
    }
}
