//! Reductions along one axis of a 2-D row-major array: per-column (axis 0) or per-row
//! (axis 1) sum, min, max, mean and variance, all in one pass.
//!
//! The array is split into blocks of whole rows of about the chunk size, processed in
//! parallel. For axis 0 each block keeps one accumulator per column and walks its rows in
//! order, so the inner loop runs along a contiguous row (vectorisable across columns); the
//! moments are computed over sub-blocks of rows that fit in L1 (two passes there: column
//! means, then squared deviations) and merged as in [`Moments::merge`]. Block results are
//! merged in block order, so results do not depend on the thread count. Row blocks are not
//! page-aligned (a row need not be a divisor of a page); that only matters for writes, and
//! these kernels only read.

use num_traits::Zero;
use rayon::prelude::*;

use super::reduce::min_max_chunk;
use super::{combine_tree, is_nan, Moments, Numeric};
use crate::chunk::ParOptions;
use crate::error::{Error, Result};

/// Per-lane statistics of a 2-D array along one axis: one entry per column (axis 0) or per
/// row (axis 1).
#[derive(Clone, Debug, PartialEq)]
pub struct AxisStats<T: Numeric> {
    /// Sums (exact for integers, see [`Numeric::Total`]).
    pub sum: Vec<T::Total>,
    /// Minima (NaN if the lane holds a NaN, as numpy).
    pub min: Vec<T>,
    /// Maxima (NaN if the lane holds a NaN, as numpy).
    pub max: Vec<T>,
    /// Count, mean and `M2` of each lane, in `f64`.
    pub moments: Vec<Moments>,
}

impl<T: Numeric> AxisStats<T> {
    /// Number of lanes (columns for axis 0, rows for axis 1).
    pub fn len(&self) -> usize {
        self.sum.len()
    }

    /// Whether there are no lanes.
    pub fn is_empty(&self) -> bool {
        self.sum.is_empty()
    }

    /// The mean of each lane.
    pub fn mean(&self) -> Vec<f64> {
        self.moments.iter().map(Moments::mean).collect()
    }

    /// The variance of each lane with `ddof` delta degrees of freedom.
    pub fn variance(&self, ddof: u64) -> Vec<f64> {
        self.moments.iter().map(|m| m.variance(ddof)).collect()
    }

    /// The standard deviation of each lane with `ddof` delta degrees of freedom.
    pub fn std(&self, ddof: u64) -> Vec<f64> {
        self.moments.iter().map(|m| m.std(ddof)).collect()
    }

    fn merge_columns(mut self, other: AxisStats<T>) -> AxisStats<T> {
        for j in 0..self.len() {
            self.sum[j] = self.sum[j] + other.sum[j];
            self.min[j] = pick_min(self.min[j], other.min[j]);
            self.max[j] = pick_max(self.max[j], other.max[j]);
            self.moments[j] = self.moments[j].merge(other.moments[j]);
        }
        self
    }
}

#[inline(always)]
fn pick_min<T: Numeric>(m: T, x: T) -> T {
    if x < m || is_nan(x) {
        x
    } else {
        m
    }
}

#[inline(always)]
fn pick_max<T: Numeric>(m: T, x: T) -> T {
    if x > m || is_nan(x) {
        x
    } else {
        m
    }
}

/// Statistics of the 2-D row-major array `data` with `cols` columns along `axis`: 0 gives
/// one entry per column, 1 one entry per row (numpy's `axis=` argument).
///
/// ```
/// // 3 rows × 2 columns
/// let a = [1.0f64, 10.0, 2.0, 20.0, 3.0, 30.0];
/// let cols = outcore::kernels::axis_stats(&a, 2, 0).unwrap();
/// assert_eq!(cols.mean(), vec![2.0, 20.0]);
/// assert_eq!(cols.max, vec![3.0, 30.0]);
/// let rows = outcore::kernels::axis_stats(&a, 2, 1).unwrap();
/// assert_eq!(rows.sum, vec![11.0, 22.0, 33.0]);
/// ```
///
/// # Errors
/// [`Error::BadShape`] if `cols` is 0, `data.len()` is not a multiple of `cols`, or the
/// reduced axis is empty (no min or max exists); [`Error::BadAxis`] if `axis` is not 0 or
/// 1.
pub fn axis_stats<T: Numeric>(data: &[T], cols: usize, axis: usize) -> Result<AxisStats<T>> {
    axis_stats_with(data, cols, axis, &ParOptions::new())
}

/// [`axis_stats`] with options.
///
/// # Errors
/// As [`axis_stats`], and [`Error::ThreadPool`] if the options' thread pool cannot be
/// started.
pub fn axis_stats_with<T: Numeric>(
    data: &[T],
    cols: usize,
    axis: usize,
    opts: &ParOptions,
) -> Result<AxisStats<T>> {
    let bad = |reason| Error::BadShape {
        what: "axis_stats".into(),
        shape: vec![data.len().checked_div(cols).unwrap_or(0), cols],
        reason,
    };
    if cols == 0 {
        return Err(bad("zero columns"));
    }
    if !data.len().is_multiple_of(cols) {
        return Err(bad("the length is not a multiple of the column count"));
    }
    let rows = data.len() / cols;
    let row_bytes = cols * std::mem::size_of::<T>();
    let block_rows = (opts.get_chunk_bytes() / row_bytes).max(1);
    match axis {
        0 => {
            if rows == 0 {
                return Err(bad("axis 0 is empty: no min or max"));
            }
            let parts = opts.install(|| {
                data.par_chunks(block_rows * cols)
                    .map(|b| column_block(b, cols))
                    .collect::<Vec<_>>()
            })?;
            Ok(combine_tree(parts, &AxisStats::merge_columns).expect("at least one row"))
        }
        1 => {
            let parts = opts.install(|| {
                data.par_chunks(block_rows * cols)
                    .map(|b| row_block(b, cols))
                    .collect::<Vec<_>>()
            })?;
            let mut out = AxisStats {
                sum: Vec::with_capacity(rows),
                min: Vec::with_capacity(rows),
                max: Vec::with_capacity(rows),
                moments: Vec::with_capacity(rows),
            };
            for p in parts {
                out.sum.extend(p.sum);
                out.min.extend(p.min);
                out.max.extend(p.max);
                out.moments.extend(p.moments);
            }
            Ok(out)
        }
        _ => Err(Error::BadAxis { axis, ndim: 2 }),
    }
}

/// Elements per moment sub-block of the per-column pass: 16 KiB of `f64`.
const AXIS_BLOCK: usize = 2048;

/// Rows per moment sub-block: about [`AXIS_BLOCK`] elements.
fn sub_rows(cols: usize) -> usize {
    (AXIS_BLOCK / cols).max(1)
}

fn column_block<T: Numeric>(b: &[T], cols: usize) -> AxisStats<T> {
    let first = &b[..cols];
    let mut sum = vec![T::Total::zero(); cols];
    let mut min = first.to_vec();
    let mut max = first.to_vec();
    let mut moments = vec![Moments::EMPTY; cols];
    let mut acc = vec![0f64; cols];
    for sub in b.chunks(sub_rows(cols) * cols) {
        let n = sub.len() / cols;
        acc.iter_mut().for_each(|a| *a = 0.0);
        // Zipped iterators rather than indexing: no bounds checks, so the loop over a row
        // vectorises across columns.
        for row in sub.chunks_exact(cols) {
            for ((((&x, s), lo), hi), a) in row
                .iter()
                .zip(sum.iter_mut())
                .zip(min.iter_mut())
                .zip(max.iter_mut())
                .zip(acc.iter_mut())
            {
                *s = *s + x.widen();
                *lo = pick_min(*lo, x);
                *hi = pick_max(*hi, x);
                *a += x.as_();
            }
        }
        let means: Vec<f64> = acc.iter().map(|s| s / n as f64).collect();
        acc.iter_mut().for_each(|a| *a = 0.0);
        for row in sub.chunks_exact(cols) {
            for ((&x, &m), a) in row.iter().zip(&means).zip(acc.iter_mut()) {
                let d = x.as_() - m;
                *a += d * d;
            }
        }
        for j in 0..cols {
            moments[j] = moments[j].merge(Moments {
                count: n as u64,
                mean: means[j],
                m2: acc[j],
            });
        }
    }
    AxisStats {
        sum,
        min,
        max,
        moments,
    }
}

fn row_block<T: Numeric>(b: &[T], cols: usize) -> AxisStats<T> {
    let rows = b.len() / cols;
    let mut out = AxisStats {
        sum: Vec::with_capacity(rows),
        min: Vec::with_capacity(rows),
        max: Vec::with_capacity(rows),
        moments: Vec::with_capacity(rows),
    };
    for row in b.chunks_exact(cols) {
        let (lo, hi) = min_max_chunk(row).expect("rows are not empty");
        out.sum.push(T::sum_serial(row));
        out.min.push(lo);
        out.max.push(hi);
        out.moments.push(Moments::of_slice::<T, false>(row));
    }
    out
}
