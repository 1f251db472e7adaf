//! The summary of `outcore.describe`, in one place: computed from the library's kernels as
//! `outcore stats` does today. When the fused `outcore::kernels::describe` lands, [`summarize`]
//! becomes a call to it and nothing else changes.

use std::sync::atomic::AtomicBool;

use outcore::kernels::{self, Numeric};
use outcore::ParOptions;
use rayon::prelude::*;

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

/// The summary of `data` on `par`'s pool; stops with `Error::Cancelled` between passes once
/// `cancel` is set.
pub fn summarize<T: Numeric>(
    data: &[T],
    req: &Request,
    par: &ParOptions,
    cancel: &AtomicBool,
) -> outcore::Result<Summary<T>> {
    let m = kernels::moments_with(data, par)?;
    check(cancel)?;
    let nan_count = if T::IS_FLOAT {
        #[allow(clippy::eq_op)]
        let n = kernels::count_with(data, par, |&x| x != x)?;
        check(cancel)?;
        n as u64
    } else {
        0
    };
    let min_max = kernels::min_max_with(data, par)?;
    check(cancel)?;
    let sum = kernels::sum_with(data, par)?;
    check(cancel)?;
    let argmin = kernels::argmin_with(data, par)?;
    check(cancel)?;
    let argmax = kernels::argmax_with(data, par)?;
    check(cancel)?;
    let histogram = match req.bins {
        None => None,
        Some(b) => {
            let range = match min_max.map(|(lo, hi)| (lo.as_(), hi.as_())) {
                Some((lo, hi)) if f64::is_finite(lo) && f64::is_finite(hi) => Some((lo, hi)),
                Some(_) => finite_range(data),
                None => None,
            }
            .unwrap_or((0.0, 1.0));
            let counts = kernels::histogram_with(data, b, Some(range), par)?;
            check(cancel)?;
            Some((edges(range, b), counts))
        }
    };
    Ok(Summary {
        count: data.len() as u64,
        nan_count,
        sum,
        mean: m.mean(),
        std: m.std(req.ddof),
        min_max,
        argmin,
        argmax,
        histogram,
    })
}

/// The min and max of the finite values (needed only when the data holds NaN or an
/// infinity); `None` if there is none.
fn finite_range<T: Numeric>(d: &[T]) -> Option<(f64, f64)> {
    d.par_iter()
        .with_min_len(1 << 16)
        .map(|&x| x.as_())
        .filter(|x: &f64| x.is_finite())
        .fold(
            || None,
            |acc: Option<(f64, f64)>, x| {
                Some(acc.map_or((x, x), |(lo, hi)| (lo.min(x), hi.max(x))))
            },
        )
        .reduce(
            || None,
            |a, b| match (a, b) {
                (Some((a0, a1)), Some((b0, b1))) => Some((a0.min(b0), a1.max(b1))),
                (x, None) | (None, x) => x,
            },
        )
}

/// numpy's histogram edges: `linspace(lo, hi, bins + 1)`, a zero-width range widened by 0.5.
fn edges((mut lo, mut hi): (f64, f64), bins: usize) -> Vec<f64> {
    if lo == hi {
        lo -= 0.5;
        hi += 0.5;
    }
    let step = (hi - lo) / bins as f64;
    let mut e: Vec<f64> = (0..=bins).map(|i| i as f64 * step + lo).collect();
    e[bins] = hi;
    e
}
