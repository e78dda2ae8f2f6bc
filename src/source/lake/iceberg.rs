//! `kind: iceberg`: Apache Iceberg tables from a filesystem layout
//! (`<root>/<namespace>[.db]/<table>/metadata/`) or a pyiceberg SQL catalog (`iceberg_tables` in
//! SQLite).
//!
//! Read directly (no Iceberg crate matches DataFusion 55): the current metadata JSON gives the
//! schema, the snapshot summary gives `total-records` and the snapshot time gives freshness, with
//! no data file opened. Compaction (`replace` snapshots) keeps the freshness of the last snapshot
//! that brought data. Manifests (Avro) are read only when the metadata file changes, to list the
//! live data files that profiles scan. A metadata location that points at a missing file is an
//! error for that table alone.

use std::io::Cursor;
use std::str::FromStr;
use std::sync::Arc;

use apache_avro::types::Value as Avro;
use chrono::DateTime;
use datafusion::arrow::datatypes::{DataType, Field, Fields, Schema, TimeUnit};
use object_store::ObjectStoreExt;
use serde_json::Value as Json;
use sqlx::Row;

use super::store::{self, Location};
use super::{DataFile, Handle, LakeSource, TableView};
use crate::config::FileFormat;
use crate::measure::{Column, TableRef};
use crate::source::SourceError;

/// Tables listed by a pyiceberg SQL catalog (`iceberg_tables`).
pub(super) async fn catalog_handles(
    source_name: &str,
    catalog_url: &str,
    catalog_name: &str,
    only: Option<&TableRef>,
) -> Result<Vec<Handle>, SourceError> {
    let unreachable = |e: sqlx::Error| SourceError::Unreachable {
        source_name: source_name.to_string(),
        message: format!("cannot read the Iceberg catalog: {e}"),
    };
    let options = sqlx::sqlite::SqliteConnectOptions::from_str(catalog_url)
        .map_err(|e| SourceError::Unsupported(format!("source `{source_name}`: invalid catalog URL: {e}")))?
        .read_only(true)
        .create_if_missing(false);
    use sqlx::ConnectOptions;
    let mut conn = options.connect().await.map_err(unreachable)?;
    let rows = sqlx::query(
        "SELECT table_namespace, table_name, metadata_location FROM iceberg_tables WHERE catalog_name = ? ORDER BY 1, 2",
    )
    .bind(catalog_name)
    .fetch_all(&mut conn)
    .await
    .map_err(|e| SourceError::Query {
        source_name: source_name.to_string(),
        message: format!("cannot list tables of Iceberg catalog `{catalog_name}`: {e}"),
    })?;
    let mut out = Vec::new();
    for row in rows {
        let namespace: String = row.try_get(0).unwrap_or_default();
        let name: String = row.try_get(1).unwrap_or_default();
        let location: Option<String> = row.try_get(2).unwrap_or_default();
        let table = TableRef::new(namespace, name);
        if only.is_some_and(|o| o != &table) {
            continue;
        }
        if let Some(metadata_location) = location {
            out.push(Handle::Iceberg { table, metadata_location });
        }
    }
    Ok(out)
}

/// Tables in a filesystem layout: `<root>/<namespace>[.db]/<table>/metadata/*.metadata.json`.
pub(super) async fn filesystem_handles(
    source_name: &str,
    root: &Location,
    only: Option<&TableRef>,
) -> Result<Vec<Handle>, SourceError> {
    super::files::check_root(source_name, root).await?;
    let list = |loc: Location| async move {
        root.store
            .store
            .list_with_delimiter(Some(&loc.path))
            .await
            .map_err(|e| store::store_error(source_name, &format!("listing {}", loc.display()), e))
    };
    let mut out = Vec::new();
    for ns in list(root.clone()).await?.common_prefixes {
        let Some(ns_dir) = ns.filename().map(str::to_string) else { continue };
        let namespace = ns_dir.trim_end_matches(".db").to_string();
        if only.is_some_and(|o| o.schema != namespace) {
            continue;
        }
        for t in list(root.child(&ns_dir)).await?.common_prefixes {
            let Some(name) = t.filename().map(str::to_string) else { continue };
            let table = TableRef::new(&namespace, &name);
            if only.is_some_and(|o| o != &table) {
                continue;
            }
            let metadata = root.child(&ns_dir).child(&name).child("metadata");
            if let Some(current) = current_metadata(source_name, &metadata).await? {
                out.push(Handle::Iceberg { table, metadata_location: current });
            }
        }
    }
    Ok(out)
}

/// `version-hint.text` when present, else the highest-numbered metadata file.
async fn current_metadata(source_name: &str, metadata: &Location) -> Result<Option<String>, SourceError> {
    let hint = metadata.child("version-hint.text");
    match metadata.store.store.get(&hint.path).await {
        Ok(r) => {
            let text = r.bytes().await.map_err(|e| store::store_error(source_name, "reading version-hint.text", e))?;
            let v = String::from_utf8_lossy(&text).trim().to_string();
            let file = if v.ends_with(".metadata.json") { v } else { format!("v{v}.metadata.json") };
            return Ok(Some(metadata.child(&file).display()));
        }
        Err(object_store::Error::NotFound { .. }) => {}
        Err(e) => return Err(store::store_error(source_name, &format!("reading {}", hint.display()), e)),
    }
    let listed = metadata
        .store
        .store
        .list_with_delimiter(Some(&metadata.path))
        .await
        .map_err(|e| store::store_error(source_name, &format!("listing {}", metadata.display()), e))?;
    let newest = listed
        .objects
        .iter()
        .filter_map(|o| {
            let name = o.location.filename()?;
            let stem = name.strip_suffix(".metadata.json")?;
            let number = stem.trim_start_matches('v').split('-').next()?.parse::<u64>().ok()?;
            Some((number, o.location.clone()))
        })
        .max_by_key(|(n, _)| *n);
    Ok(newest.map(|(_, path)| store::display(&metadata.store.url, &path)))
}

/// Reads the metadata file, the snapshot summary and (for scans) the manifests.
pub(super) async fn load(
    source: &LakeSource,
    table: &TableRef,
    metadata_location: &str,
) -> Result<TableView, SourceError> {
    let name = &source.name;
    let loc = source.stores.locate(metadata_location)?;
    let bytes = read(source, table, &loc, "metadata file").await?;
    let bad = |why: String| SourceError::Query {
        source_name: name.clone(),
        message: format!("table {table}: Iceberg metadata {metadata_location} is not valid: {why}"),
    };
    let meta: Json = serde_json::from_slice(&bytes).map_err(|e| bad(e.to_string()))?;
    let schema = current_schema(&meta).ok_or_else(|| bad("no current schema".into()))?;
    let fields = schema.get("fields").and_then(Json::as_array).ok_or_else(|| bad("schema without fields".into()))?;
    let columns: Vec<Column> = fields
        .iter()
        .map(|f| Column {
            name: f.get("name").and_then(Json::as_str).unwrap_or_default().to_string(),
            data_type: type_name(f.get("type").unwrap_or(&Json::Null)),
            nullable: !f.get("required").and_then(Json::as_bool).unwrap_or(false),
        })
        .collect();
    let file_schema =
        Arc::new(Schema::new(fields.iter().filter_map(|f| field_of(f).map(Arc::new)).collect::<Vec<_>>()));
    let snapshots: Vec<&Json> =
        meta.get("snapshots").and_then(Json::as_array).map(|a| a.iter().collect()).unwrap_or_default();
    let current_id = meta.get("current-snapshot-id").and_then(Json::as_i64).filter(|id| *id >= 0);
    let by_id = |id: i64| snapshots.iter().find(|s| s.get("snapshot-id").and_then(Json::as_i64) == Some(id)).copied();
    let current = current_id.and_then(by_id);
    let summary_number = |s: &Json, key: &str| {
        s.pointer(&format!("/summary/{key}"))
            .and_then(|v| v.as_str().and_then(|t| t.parse::<f64>().ok()).or(v.as_f64()))
    };
    let rows = match current {
        Some(s) => summary_number(s, "total-records"),
        None => Some(0.0),
    };
    // The newest snapshot in the current lineage that brought data (`replace` is compaction).
    let mut last_data = None;
    let mut cursor = current;
    while let Some(s) = cursor {
        if s.pointer("/summary/operation").and_then(Json::as_str) != Some("replace") {
            last_data = s.get("timestamp-ms").and_then(Json::as_i64);
            break;
        }
        cursor = s.get("parent-snapshot-id").and_then(Json::as_i64).and_then(by_id);
    }
    let last_data = last_data.or_else(|| current.and_then(|s| s.get("timestamp-ms").and_then(Json::as_i64)));

    let (files, store, unsupported) = match current {
        Some(s) => data_files(source, table, s).await?,
        None => (Vec::new(), loc.store.clone(), None),
    };
    Ok(TableView {
        table: table.clone(),
        store,
        format: FileFormat::Parquet,
        columns,
        file_schema,
        partition_fields: Vec::new(),
        files,
        rows,
        last_modified: last_data.and_then(DateTime::from_timestamp_millis),
        signature: format!("snapshot:{}", current_id.unwrap_or(-1)),
        physical_names: None,
        unsupported_scan: unsupported,
    })
}

async fn read(source: &LakeSource, table: &TableRef, loc: &Location, what: &str) -> Result<bytes::Bytes, SourceError> {
    let shown = loc.display();
    let fail = |e: object_store::Error| match e {
        object_store::Error::NotFound { .. } => SourceError::Query {
            source_name: source.name.clone(),
            message: format!(
                "table {table}: the Iceberg {what} {shown} does not exist (the table metadata points at a missing file)"
            ),
        },
        other => store::store_error(&source.name, &format!("table {table}: reading {shown}"), other),
    };
    loc.store.store.get(&loc.path).await.map_err(fail)?.bytes().await.map_err(fail)
}

fn current_schema(meta: &Json) -> Option<&Json> {
    match meta.get("current-schema-id").and_then(Json::as_i64) {
        Some(id) => {
            meta.get("schemas")?.as_array()?.iter().find(|s| s.get("schema-id").and_then(Json::as_i64) == Some(id))
        }
        None => meta.get("schema"),
    }
}

/// Iceberg's type name (`long`, `timestamptz`, `decimal(9, 2)`, `struct<a: int>`).
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
                            type_name(f.get("type").unwrap_or(&Json::Null))
                        ))
                        .collect::<Vec<_>>()
                        .join(", "))
                    .unwrap_or_default()
            ),
            Some("list") => format!("list<{}>", type_name(o.get("element").unwrap_or(&Json::Null))),
            Some("map") => format!(
                "map<{}, {}>",
                type_name(o.get("key").unwrap_or(&Json::Null)),
                type_name(o.get("value").unwrap_or(&Json::Null))
            ),
            _ => t.to_string(),
        },
        _ => t.to_string(),
    }
}

fn field_of(f: &Json) -> Option<Field> {
    Some(Field::new(
        f.get("name")?.as_str()?,
        arrow_type(f.get("type")?)?,
        !f.get("required").and_then(Json::as_bool).unwrap_or(false),
    ))
}

/// The Arrow type Iceberg's Parquet files hold; `None` for types not scanned (map).
fn arrow_type(t: &Json) -> Option<DataType> {
    Some(match t {
        Json::String(s) => match s.as_str() {
            "boolean" => DataType::Boolean,
            "int" => DataType::Int32,
            "long" => DataType::Int64,
            "float" => DataType::Float32,
            "double" => DataType::Float64,
            "date" => DataType::Date32,
            "time" => DataType::Time64(TimeUnit::Microsecond),
            "timestamp" => DataType::Timestamp(TimeUnit::Microsecond, None),
            "timestamptz" => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            "timestamp_ns" => DataType::Timestamp(TimeUnit::Nanosecond, None),
            "timestamptz_ns" => DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into())),
            "string" => DataType::Utf8,
            "uuid" => DataType::FixedSizeBinary(16),
            "binary" => DataType::Binary,
            d if d.starts_with("decimal(") => {
                let inner = d.trim_start_matches("decimal(").trim_end_matches(')');
                let (p, s) = inner.split_once(',')?;
                DataType::Decimal128(p.trim().parse().ok()?, s.trim().parse().ok()?)
            }
            d if d.starts_with("fixed[") => DataType::FixedSizeBinary(d[6..d.len() - 1].parse().ok()?),
            _ => return None,
        },
        Json::Object(o) => match o.get("type").and_then(Json::as_str) {
            Some("struct") => DataType::Struct(
                o.get("fields")?.as_array()?.iter().map(field_of).collect::<Option<Vec<_>>>().map(Fields::from)?,
            ),
            Some("list") => DataType::List(Arc::new(Field::new(
                "element",
                arrow_type(o.get("element")?)?,
                !o.get("element-required").and_then(Json::as_bool).unwrap_or(false),
            ))),
            _ => return None,
        },
        _ => return None,
    })
}

fn field<'a>(record: &'a Avro, name: &str) -> Option<&'a Avro> {
    let Avro::Record(fields) = record else { return None };
    fields.iter().find(|(n, _)| n == name).map(|(_, v)| match v {
        Avro::Union(_, inner) => inner.as_ref(),
        other => other,
    })
}

fn avro_string(v: Option<&Avro>) -> Option<String> {
    match v? {
        Avro::String(s) => Some(s.clone()),
        Avro::Bytes(b) => Some(String::from_utf8_lossy(b).into_owned()),
        _ => None,
    }
}

fn avro_int(v: Option<&Avro>) -> Option<i64> {
    match v? {
        Avro::Int(i) => Some(i64::from(*i)),
        Avro::Long(l) => Some(*l),
        _ => None,
    }
}

fn avro_records(bytes: &[u8]) -> Result<Vec<Avro>, apache_avro::Error> {
    apache_avro::Reader::new(Cursor::new(bytes))?.collect()
}

type Files = (Vec<DataFile>, store::Store, Option<String>);

/// Live data files of a snapshot: manifest list → manifests → entries not deleted.
async fn data_files(source: &LakeSource, table: &TableRef, snapshot: &Json) -> Result<Files, SourceError> {
    let bad = |what: &str, e: apache_avro::Error| SourceError::Query {
        source_name: source.name.clone(),
        message: format!("table {table}: the Iceberg {what} is not valid Avro: {e}"),
    };
    let Some(list) = snapshot.get("manifest-list").and_then(Json::as_str) else {
        return Err(SourceError::Unsupported(format!(
            "table {table}: format v1 snapshots with inline `manifests` are not supported; rewrite the table metadata with a manifest list"
        )));
    };
    let list_loc = source.stores.locate(list)?;
    let manifests =
        avro_records(&read(source, table, &list_loc, "manifest list").await?).map_err(|e| bad("manifest list", e))?;
    let mut files = Vec::new();
    let mut store: Option<store::Store> = None;
    let mut unsupported = None;
    for m in &manifests {
        let Some(path) = avro_string(field(m, "manifest_path")) else { continue };
        if avro_int(field(m, "content")).unwrap_or(0) != 0 {
            unsupported = Some(format!(
                "table {table} has row-level delete files; profiles of Iceberg tables with deletes are not supported yet (volume and freshness are)"
            ));
            continue;
        }
        let loc = source.stores.locate(&path)?;
        let entries = avro_records(&read(source, table, &loc, "manifest").await?).map_err(|e| bad("manifest", e))?;
        for e in &entries {
            if avro_int(field(e, "status")) == Some(2) {
                continue;
            }
            let Some(df) = field(e, "data_file") else { continue };
            let Some(file_path) = avro_string(field(df, "file_path")) else { continue };
            let format = avro_string(field(df, "file_format")).unwrap_or_default();
            if !format.eq_ignore_ascii_case("parquet") {
                unsupported = Some(format!("table {table} has {format} data files; only Parquet is scanned"));
                continue;
            }
            let file_loc = source.stores.locate(&file_path)?;
            match &store {
                None => store = Some(file_loc.store.clone()),
                Some(s) if s.url != file_loc.store.url => {
                    unsupported = Some(format!("table {table} spans several buckets; profiles need one store"));
                    continue;
                }
                Some(_) => {}
            }
            files.push(DataFile {
                path: file_loc.path,
                size: avro_int(field(df, "file_size_in_bytes")).unwrap_or(0).max(0) as u64,
                rows: avro_int(field(df, "record_count")).map(|r| r.max(0) as u64),
                modified: None,
                partition_values: Vec::new(),
            });
        }
    }
    let store = match store {
        Some(s) => s,
        None => list_loc.store.clone(),
    };
    Ok((files, store, unsupported))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iceberg_types_map_to_arrow() {
        assert_eq!(
            arrow_type(&Json::from("timestamptz")),
            Some(DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())))
        );
        assert_eq!(arrow_type(&Json::from("decimal(9, 2)")), Some(DataType::Decimal128(9, 2)));
        assert_eq!(arrow_type(&Json::from("fixed[4]")), Some(DataType::FixedSizeBinary(4)));
        assert_eq!(type_name(&serde_json::json!({"type":"list","element":"long","element-id":3})), "list<long>");
    }
}
