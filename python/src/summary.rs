//! The summary of `outcore.describe`, in one place: the library's fused pass
//! (`outcore::kernels::describe`), as `outcore stats` uses it.

use std::sync::atomic::AtomicBool;

use outcore::kernels::{self, DescribeOptions, HistogramReducer, Numeric};
use outcore::sort::SortKey;
use outcore::ParOptions;

use crate::run::check;

/// What is asked for besides the fixed statistics.
#[derive(Clone, Copy, Debug)]
pub struct Request {
    /// A histogram of the finite values with this many bins.
    pub bins: Option<usize>,
    /// numpy's `ddof` for `std`.
    pub ddof: u64,
}

/// The statistics of one array (or one lane of a 2-D array), numpy's NaN conventions: a NaN
/// makes sum, mean, std, min and max NaN; argmin and argmax point at the first NaN.
pub struct Summary<T: Numeric> {
    pub count: u64,
    pub nan_count: u64,
    /// Exact for integers (`i128`/`u128`), pairwise for floats.
    pub sum: T::Total,
    pub mean: f64,
    pub std: f64,
    /// `None` for no elements.
    pub min_max: Option<(T, T)>,
    /// Indices in the order of `data` (the caller maps them for Fortran order).
    pub argmin: Option<usize>,
    pub argmax: Option<usize>,
    /// numpy's `histogram(finite values, bins, range=(min, max))`: edges and counts.
    pub histogram: Option<(Vec<f64>, Vec<u64>)>,
}

/// The summary of `data` on `par`'s pool: one fused pass (`kernels::describe_with`) for
/// everything but the histogram, one more for a histogram over the finite values' range;
/// stops with `Error::Cancelled` between passes once `cancel` is set.
pub fn summarize<T: Numeric + SortKey>(
    data: &[T],
    req: &Request,
    par: &ParOptions,
    cancel: &AtomicBool,
) -> outcore::Result<Summary<T>> {
    let mut opts = DescribeOptions::new();
    opts.ddof(req.ddof);
    let d = kernels::describe_with(data, &opts, par)?;
    check(cancel)?;
    let min_max = d.min.zip(d.max);
    let histogram = match req.bins {
        None => None,
        Some(b) => {
            let range = match min_max.map(|(lo, hi)| (lo.as_(), hi.as_())) {
                Some((lo, hi)) if f64::is_finite(lo) && f64::is_finite(hi) => Some((lo, hi)),
                Some(_) => kernels::finite_range_with(data, par)?,
                None => None,
            }
            .unwrap_or((0.0, 1.0));
            let h = HistogramReducer::new(b, range)?;
            let counts = kernels::reduce_fused_with(data, &h, par)?.unwrap_or_else(|| vec![0; b]);
            check(cancel)?;
            Some((h.edges(), counts))
        }
    };
    Ok(Summary {
        count: d.count,
        nan_count: d.nan_count,
        sum: d.sum,
        mean: d.mean,
        std: d.std,
        min_max,
        argmin: d.argmin,
        argmax: d.argmax,
        histogram,
    })
}
