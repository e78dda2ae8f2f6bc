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
        // Spread files over the session's partitions, biggest first, for an even load.
        let groups_wanted = state.config().target_partitions().max(1);
        files.sort_by_key(|f| std::cmp::Reverse(f.object_meta.size));
        let mut groups: Vec<(u64, Vec<PartitionedFile>)> = (0..groups_wanted).map(|_| (0, Vec::new())).collect();
        for f in files {
            let smallest = groups.iter_mut().min_by_key(|g| g.0).expect("at least one group");
            smallest.0 += f.object_meta.size;
            smallest.1.push(f);
        }
        let groups: Vec<FileGroup> =
            groups.into_iter().filter(|g| !g.1.is_empty()).map(|g| FileGroup::new(g.1)).collect();
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
