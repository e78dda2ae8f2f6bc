//! Data scans of lake tables with DataFusion: a table provider over an exact list of data files
//! (the live files of a Delta version or Iceberg snapshot, a sample, or only new files), with
//! typed partition values and partition pruning, and the runner of one SQL query per profile.
//!
//! Listing is not DataFusion's job here: the table formats say which files are live, and the
//! metadata scan has already listed them.

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::{Field, FieldRef, Schema, SchemaRef};
use datafusion::arrow::util::display::array_value_to_string;
use datafusion::catalog::Session;
use datafusion::catalog::memory::MemorySchemaProvider;
use datafusion::common::config::CsvOptions;
use datafusion::common::{DFSchema, ScalarValue};
use datafusion::datasource::listing::PartitionedFile;
use datafusion::datasource::listing::helpers::{expr_applicable_for_cols, filter_partitioned_file};
use datafusion::datasource::physical_plan::ParquetSource;
use datafusion::datasource::physical_plan::{CsvSource, FileGroup, FileScanConfigBuilder, FileSource, JsonSource};
use datafusion::datasource::source::DataSourceExec;
use datafusion::datasource::table_schema::TableSchema;
use datafusion::datasource::{TableProvider, TableType};
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::execution::runtime_env::RuntimeEnv;
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown};
use datafusion::physical_expr::expressions::Column as PhysicalColumn;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::projection::{ProjectionExec, ProjectionExpr};
use datafusion::prelude::{SessionConfig, SessionContext};
use object_store::ObjectMeta;

use super::TableView;
use crate::config::FileFormat;

/// The files of one table, as DataFusion sees them.
#[derive(Debug)]
pub(crate) struct FileTable {
    store_url: ObjectStoreUrl,
    file_schema: SchemaRef,
    /// Names inside the data files (Delta column mapping), in `file_schema` order.
    physical_names: Option<Vec<String>>,
    partition_fields: Vec<FieldRef>,
    schema: SchemaRef,
    format: FileFormat,
    csv_header: bool,
    files: Vec<PartitionedFile>,
}

impl FileTable {
    /// A provider over `files` (indices into `view.files`).
    pub fn new(view: &TableView, files: &[usize], csv_header: bool) -> DfResult<Self> {
        let store_url = ObjectStoreUrl::parse(&view.store.url)?;
        let mut fields: Vec<FieldRef> = view.file_schema.fields().iter().cloned().collect();
        fields.extend(view.partition_fields.iter().cloned());
        let schema = Arc::new(Schema::new(fields));
        let files = files
            .iter()
            .map(|&i| {
                let f = &view.files[i];
                let mut pf = PartitionedFile::new_from_meta(ObjectMeta {
                    location: f.path.clone(),
                    last_modified: f.modified.unwrap_or_default(),
                    size: f.size,
                    e_tag: None,
                    version: None,
                });
                pf.partition_values = f.partition_values.clone();
                pf
            })
            .collect();
        Ok(FileTable {
            store_url,
            file_schema: view.file_schema.clone(),
            physical_names: view.physical_names.clone(),
            partition_fields: view.partition_fields.clone(),
            schema,
            format: view.format,
            csv_header,
            files,
        })
    }

    fn partition_names(&self) -> Vec<&str> {
        self.partition_fields.iter().map(|f| f.name().as_str()).collect()
    }
}

#[async_trait]
impl TableProvider for FileTable {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn supports_filters_pushdown(&self, filters: &[&Expr]) -> DfResult<Vec<TableProviderFilterPushDown>> {
        let names = self.partition_names();
        Ok(filters
            .iter()
            .map(|f| {
                if !names.is_empty() && expr_applicable_for_cols(&names, f) {
                    // Pruned per file here and applied again above: exact either way.
                    TableProviderFilterPushDown::Inexact
                } else {
                    TableProviderFilterPushDown::Unsupported
                }
            })
            .collect())
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let names = self.partition_names();
        let partition_filters: Vec<Expr> =
            filters.iter().filter(|f| expr_applicable_for_cols(&names, f)).cloned().collect();
        let mut files = self.files.clone();
        if !partition_filters.is_empty() {
            let partition_schema = DFSchema::try_from(Schema::new(self.partition_fields.clone()))?;
            let mut kept = Vec::with_capacity(files.len());
            for f in files {
                if let Some(f) = filter_partitioned_file(f, &partition_filters, &partition_schema)? {
                    kept.push(f);
                }
            }
            files = kept;
        }
        // Under column mapping the files are read by their physical names, renamed below.
        let file_schema = match &self.physical_names {
            Some(names) => Arc::new(Schema::new(
                self.file_schema
                    .fields()
                    .iter()
                    .zip(names)
                    .map(|(f, name)| Arc::new(f.as_ref().clone().with_name(name)))
                    .collect::<Vec<FieldRef>>(),
            )),
            None => self.file_schema.clone(),
        };
        let table_schema =
            TableSchema::builder(file_schema).with_table_partition_cols(self.partition_fields.clone()).build();
        let source: Arc<dyn FileSource> = match self.format {
            FileFormat::Parquet => Arc::new(ParquetSource::new(table_schema)),
            FileFormat::Csv => Arc::new(
                CsvSource::new(table_schema)
                    .with_csv_options(CsvOptions { has_header: Some(self.csv_header), ..CsvOptions::default() }),
            ),
            FileFormat::Ndjson => Arc::new(JsonSource::new(table_schema)),
        };
        let groups_wanted = state.config().target_partitions().max(1);
        let groups = if self.format == FileFormat::Parquet {
            byte_range_groups(files, groups_wanted)
        } else {
            whole_file_groups(files, groups_wanted)
        };
        let config = FileScanConfigBuilder::new(self.store_url.clone(), source)
            .with_file_groups(groups)
            .with_projection_indices(projection.cloned())?
            .with_limit(limit)
            .build();
        let exec: Arc<dyn ExecutionPlan> = DataSourceExec::from_data_source(config);
        if self.physical_names.is_none() || exec.schema().fields().is_empty() {
            return Ok(exec);
        }
        // Physical → logical names, column for column (the projection is the same on both sides).
        let wanted: Vec<usize> = projection.cloned().unwrap_or_else(|| (0..self.schema.fields().len()).collect());
        let renames: Vec<ProjectionExpr> = exec
            .schema()
            .fields()
            .iter()
            .zip(&wanted)
            .enumerate()
            .map(|(i, (field, &logical))| {
                ProjectionExpr::new(Arc::new(PhysicalColumn::new(field.name(), i)), self.schema.field(logical).name())
            })
            .collect();
        Ok(Arc::new(ProjectionExec::try_new(renames, exec)?))
    }
}

/// Parquet files cut into `groups` runs of equal bytes (a file may be split between two runs:
/// each reader takes the row groups whose middle falls in its byte range), so every partition of
/// the scan does the same work however many files there are and however big they are.
fn byte_range_groups(files: Vec<PartitionedFile>, groups: usize) -> Vec<FileGroup> {
    let total: u64 = files.iter().map(|f| f.object_meta.size).sum();
    if total < MIN_SPLIT_BYTES || groups == 1 {
        return whole_file_groups(files, groups);
    }
    let per_group = total.div_ceil(groups as u64);
    let mut out: Vec<Vec<PartitionedFile>> = vec![Vec::new()];
    let mut filled = 0_u64;
    for file in files {
        let size = file.object_meta.size;
        let mut start = 0_u64;
        while start < size {
            let take = (per_group - filled).min(size - start);
            let piece = if start == 0 && take == size {
                file.clone()
            } else {
                file.clone().with_range(start as i64, (start + take) as i64)
            };
            out.last_mut().expect("one group").push(piece);
            filled += take;
            start += take;
            if filled >= per_group && out.len() < groups {
                out.push(Vec::new());
                filled = 0;
            }
        }
    }
    out.into_iter().filter(|g| !g.is_empty()).map(FileGroup::new).collect()
}

/// Below this many bytes a table is not worth splitting inside files.
const MIN_SPLIT_BYTES: u64 = 8 << 20;

/// Whole files spread over `groups` partitions, biggest first, for an even load (CSV and NDJSON
/// files, whose headers and lines are not cut).
fn whole_file_groups(mut files: Vec<PartitionedFile>, groups: usize) -> Vec<FileGroup> {
    files.sort_by_key(|f| std::cmp::Reverse(f.object_meta.size));
    let mut out: Vec<(u64, Vec<PartitionedFile>)> = (0..groups.max(1)).map(|_| (0, Vec::new())).collect();
    for f in files {
        let smallest = out.iter_mut().min_by_key(|g| g.0).expect("at least one group");
        smallest.0 += f.object_meta.size;
        smallest.1.push(f);
    }
    out.into_iter().filter(|g| !g.1.is_empty()).map(|g| FileGroup::new(g.1)).collect()
}

/// A session for one query, on the source's runtime (memory pool, object stores).
pub(crate) fn session(runtime: &Arc<RuntimeEnv>, threads: usize) -> SessionContext {
    let config = SessionConfig::new()
        .with_target_partitions(threads.max(1))
        .with_information_schema(false)
        .set_bool("datafusion.execution.parquet.pushdown_filters", true);
    let ctx = SessionContext::new_with_config_rt(config, runtime.clone());
    ctx.register_udaf(super::quantiles::udaf());
    ctx
}

/// Registers `provider` as `schema.name` (creating the schema).
pub(crate) fn register(
    ctx: &SessionContext,
    schema: &str,
    name: &str,
    provider: Arc<dyn TableProvider>,
) -> DfResult<()> {
    let catalog =
        ctx.catalog("datafusion").ok_or_else(|| DataFusionError::Internal("the default catalog is missing".into()))?;
    let schemas = catalog.schema_names();
    if !schemas.iter().any(|s| s == schema) {
        catalog.register_schema(schema, Arc::new(MemorySchemaProvider::new()))?;
    }
    let provider_schema = catalog
        .schema(schema)
        .ok_or_else(|| DataFusionError::Internal(format!("schema `{schema}` was not registered")))?;
    provider_schema.register_table(name.to_string(), provider)?;
    Ok(())
}

/// Runs `sql` and returns every row with its values as text (like the SQL sources do).
pub(crate) async fn query_text(ctx: &SessionContext, sql: &str) -> DfResult<Vec<Vec<Option<String>>>> {
    let batches: Vec<RecordBatch> = ctx.sql(sql).await?.collect().await?;
    let mut rows = Vec::new();
    for batch in &batches {
        for r in 0..batch.num_rows() {
            let mut row = Vec::with_capacity(batch.num_columns());
            for c in batch.columns() {
                row.push(if c.is_null(r) { None } else { Some(array_value_to_string(c, r)?) });
            }
            rows.push(row);
        }
    }
    Ok(rows)
}

/// A partition value typed as its field (`2024-05-01` as a date, `7` as an integer).
pub(crate) fn partition_value(field: &Field, raw: Option<&str>) -> ScalarValue {
    match raw {
        None => ScalarValue::try_from(field.data_type()).unwrap_or(ScalarValue::Null),
        Some(v) => ScalarValue::try_from_string(v.to_string(), field.data_type())
            .unwrap_or_else(|_| ScalarValue::try_from(field.data_type()).unwrap_or(ScalarValue::Null)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(name: &str, size: u64) -> PartitionedFile {
        PartitionedFile::new(name.to_string(), size)
    }

    fn bytes(group: &FileGroup) -> u64 {
        group.iter().map(|f| f.range.as_ref().map_or(f.object_meta.size, |r| (r.end - r.start) as u64)).sum()
    }

    #[test]
    fn parquet_scans_split_bytes_evenly_across_partitions() {
        let mb = 1 << 20;
        let files: Vec<PartitionedFile> = (0..5).map(|i| file(&format!("f{i}"), 10 * mb)).collect();
        let groups = byte_range_groups(files, 2);
        assert_eq!(groups.len(), 2);
        assert_eq!(bytes(&groups[0]), 25 * mb);
        assert_eq!(bytes(&groups[1]), 25 * mb);
        // The middle file is cut in two ranges, one per partition.
        let last = &groups[0].files()[2];
        assert_eq!(last.range.as_ref().map(|r| (r.start, r.end)), Some((0, 5 * mb as i64)));
        // Small tables keep whole files.
        let small = byte_range_groups(vec![file("a", 100), file("b", 50)], 2);
        assert!(small.iter().all(|g| g.iter().all(|f| f.range.is_none())));
    }
}
