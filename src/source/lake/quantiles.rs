//! `telltale_quantiles(x)`: the median and the 95th percentile of a column from one t-digest, in
//! the same pass as the other profile metrics.
//!
//! DataFusion's `approx_percentile_cont` keeps one digest per requested percentile and sorts every
//! 8,192-row batch through Arrow's index sort before merging it. A profile asking for `p50` and
//! `p95` of 14 columns built 28 digests; this aggregate builds 14, buffers non-null values into
//! larger runs and sorts them in place. The profile reads each percentile with
//! `get_field(telltale_quantiles(x), 'p50')`; DataFusion plans the repeated aggregate once.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, Float64Array, StructArray};
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Fields, Float64Type};
use datafusion::common::{Result, ScalarValue};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::utils::format_state_name;
use datafusion::logical_expr::{Accumulator, AggregateUDF, AggregateUDFImpl, Signature, Volatility};
use datafusion_functions_aggregate_common::tdigest::{DEFAULT_MAX_SIZE, TDigest};

use crate::source::sql::LAKE_QUANTILES;

/// Values buffered before a sort and a merge into the digest.
const RUN: usize = 64 * 1024;

#[derive(Debug, PartialEq, Eq, Hash)]
struct Quantiles {
    signature: Signature,
}

/// The aggregate, for `SessionContext::register_udaf`.
pub(crate) fn udaf() -> AggregateUDF {
    AggregateUDF::from(Quantiles { signature: Signature::exact(vec![DataType::Float64], Volatility::Immutable) })
}

fn output_fields() -> Fields {
    Fields::from(vec![Field::new("p50", DataType::Float64, true), Field::new("p95", DataType::Float64, true)])
}

impl AggregateUDFImpl for Quantiles {
    fn name(&self) -> &str {
        LAKE_QUANTILES
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(DataType::Struct(output_fields()))
    }

    fn accumulator(&self, _: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        Ok(Box::new(QuantilesAccumulator { digest: TDigest::new(DEFAULT_MAX_SIZE), run: Vec::new() }))
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        // The layout of `TDigest::to_scalar_state`.
        let f = |name: &str, t: DataType| Arc::new(Field::new(format_state_name(args.name, name), t, false));
        Ok(vec![
            f("max_size", DataType::UInt64),
            f("sum", DataType::Float64),
            f("count", DataType::Float64),
            f("max", DataType::Float64),
            f("min", DataType::Float64),
            Arc::new(Field::new_list(
                format_state_name(args.name, "centroids"),
                Field::new_list_field(DataType::Float64, true),
                false,
            )),
        ])
    }
}

#[derive(Debug)]
struct QuantilesAccumulator {
    digest: TDigest,
    run: Vec<f64>,
}

impl QuantilesAccumulator {
    fn flush(&mut self) {
        if self.run.is_empty() {
            return;
        }
        self.run.sort_unstable_by(f64::total_cmp);
        self.digest = self.digest.merge_sorted_f64(&self.run);
        self.run.clear();
    }
}

impl Accumulator for QuantilesAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let values = values[0].as_primitive::<Float64Type>();
        if values.null_count() == 0 {
            self.run.extend(values.values().iter().copied().filter(|v| !v.is_nan()));
        } else {
            self.run.extend(values.iter().flatten().filter(|v| !v.is_nan()));
        }
        if self.run.len() >= RUN {
            self.flush();
        }
        Ok(())
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        self.flush();
        let (p50, p95) = if self.digest.count() == 0.0 {
            (None, None)
        } else {
            (Some(self.digest.estimate_quantile(0.5)), Some(self.digest.estimate_quantile(0.95)))
        };
        let columns: Vec<ArrayRef> =
            vec![Arc::new(Float64Array::from(vec![p50])), Arc::new(Float64Array::from(vec![p95]))];
        Ok(ScalarValue::Struct(Arc::new(StructArray::new(output_fields(), columns, None))))
    }

    fn size(&self) -> usize {
        size_of_val(self) + self.digest.size() - size_of_val(&self.digest) + self.run.capacity() * size_of::<f64>()
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        self.flush();
        Ok(self.digest.to_scalar_state())
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        if states.is_empty() {
            return Ok(());
        }
        let mut digests = vec![std::mem::replace(&mut self.digest, TDigest::new(DEFAULT_MAX_SIZE))];
        for row in 0..states[0].len() {
            let state =
                states.iter().map(|a| ScalarValue::try_from_array(a, row)).collect::<Result<Vec<ScalarValue>>>()?;
            digests.push(TDigest::from_scalar_state(&state));
        }
        self.digest = TDigest::merge_digests(&digests);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_and_p95_from_one_digest_across_partial_states() {
        let mut a = QuantilesAccumulator { digest: TDigest::new(DEFAULT_MAX_SIZE), run: Vec::new() };
        let mut b = QuantilesAccumulator { digest: TDigest::new(DEFAULT_MAX_SIZE), run: Vec::new() };
        let first: ArrayRef = Arc::new(Float64Array::from_iter((0..50_000).map(|i| Some(f64::from(i)))));
        let second: ArrayRef = Arc::new(Float64Array::from_iter(
            (50_000..100_000).map(|i| if i % 10 == 0 { None } else { Some(f64::from(i)) }).chain([Some(f64::NAN)]),
        ));
        a.update_batch(&[first]).unwrap();
        b.update_batch(&[second]).unwrap();
        let state: Vec<ArrayRef> = b.state().unwrap().iter().map(|s| s.to_array().unwrap()).collect();
        a.merge_batch(&state).unwrap();
        let ScalarValue::Struct(out) = a.evaluate().unwrap() else { panic!("a struct") };
        let p50 = out.column(0).as_primitive::<Float64Type>().value(0);
        let p95 = out.column(1).as_primitive::<Float64Type>().value(0);
        // 95,000 non-null values: the median is about 47,500, p95 about 94,720.
        assert!((p50 - 47_500.0).abs() < 500.0, "{p50}");
        assert!((p95 - 94_720.0).abs() < 500.0, "{p95}");
        let mut empty = QuantilesAccumulator { digest: TDigest::new(DEFAULT_MAX_SIZE), run: Vec::new() };
        let ScalarValue::Struct(out) = empty.evaluate().unwrap() else { panic!("a struct") };
        assert!(out.column(0).is_null(0));
    }
}
