//! Statistics: mean, variance and standard deviation from mergeable moments.

use num_traits::Zero;

use super::{combine_tree, defaults, is_nan, per_block, Numeric, LANES, MOMENT_BLOCK};
use crate::chunk::ParOptions;
use crate::error::Result;

/// Count, mean and sum of squared deviations (`M2`) of some data, in `f64`.
///
/// Two `Moments` of disjoint parts merge exactly into those of the union
/// ([`Moments::merge`], Chan, Golub and LeVeque's pairwise update), which is how the
/// parallel kernels combine chunks without the cancellation of a `Σx² - (Σx)²/n` formula.
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub struct Moments {
    /// Number of values.
    pub count: u64,
    /// Their mean (NaN when `count` is 0, or when a NaN was included).
    pub mean: f64,
    /// Sum of squared deviations from the mean.
    pub m2: f64,
}

impl Moments {
    /// The moments of nothing.
    pub const EMPTY: Moments = Moments {
        count: 0,
        mean: 0.0,
        m2: 0.0,
    };

    /// The moments of the union of two disjoint parts.
    pub fn merge(self, other: Moments) -> Moments {
        if self.count == 0 {
            return other;
        }
        if other.count == 0 {
            return self;
        }
        let n = self.count + other.count;
        let (na, nb, nf) = (self.count as f64, other.count as f64, n as f64);
        let delta = other.mean - self.mean;
        Moments {
            count: n,
            mean: self.mean + delta * (nb / nf),
            m2: self.m2 + other.m2 + delta * delta * (na * nb / nf),
        }
    }

    /// The mean; NaN for no values.
    pub fn mean(&self) -> f64 {
        if self.count == 0 {
            f64::NAN
        } else {
            self.mean
        }
    }

    /// The variance with `ddof` delta degrees of freedom (`M2 / (count - ddof)`; numpy's
    /// `var(ddof=...)`): 0 is the population variance, 1 the sample variance. NaN when
    /// `count <= ddof`.
    pub fn variance(&self, ddof: u64) -> f64 {
        if self.count <= ddof {
            f64::NAN
        } else {
            self.m2 / (self.count - ddof) as f64
        }
    }

    /// The standard deviation, `sqrt(variance(ddof))`.
    pub fn std(&self, ddof: u64) -> f64 {
        self.variance(ddof).sqrt()
    }

    /// Moments of a serial slice, in blocks that stay in L1 (see the module docs).
    pub(crate) fn of_slice<T: Numeric, const SKIP_NAN: bool>(s: &[T]) -> Moments {
        s.chunks(MOMENT_BLOCK)
            .map(block_moments::<T, SKIP_NAN>)
            .fold(Moments::EMPTY, Moments::merge)
    }
}

/// Two passes over one block: its mean, then the squared deviations from it.
#[inline]
fn block_moments<T: Numeric, const SKIP_NAN: bool>(b: &[T]) -> Moments {
    let keep = |x: T| !(SKIP_NAN && is_nan(x));
    let mut acc = [0f64; LANES];
    let mut cnt = [0u32; LANES];
    for c in b.chunks_exact(LANES) {
        let c: &[T; LANES] = c.try_into().expect("exact chunk");
        for i in 0..LANES {
            let k = keep(c[i]);
            acc[i] += if k { c[i].as_() } else { 0.0 };
            cnt[i] += k as u32;
        }
    }
    block_moments_from::<T, SKIP_NAN>(b, acc, cnt)
}

/// The rest of [`block_moments`] once its first loop has summed (`acc`) and counted (`cnt`)
/// the block's whole chunks of [`LANES`] in lanes: the remainder, the mean, and the second
/// pass. The fused summary ([`super::fused`]) runs that first loop itself.
#[inline(always)]
pub(crate) fn block_moments_from<T: Numeric, const SKIP_NAN: bool>(
    b: &[T],
    acc: [f64; LANES],
    cnt: [u32; LANES],
) -> Moments {
    let Some((count, mean)) = block_mean::<T, SKIP_NAN>(b, acc, cnt) else {
        return Moments::EMPTY;
    };
    let mut dev = [0f64; LANES];
    let mut it = b.chunks_exact(LANES);
    for c in &mut it {
        deviations::<T, SKIP_NAN>(&mut dev, c.try_into().expect("exact chunk"), mean);
    }
    let m2 = m2_of::<T, SKIP_NAN>(dev, it.remainder(), mean);
    Moments { count, mean, m2 }
}

/// The count and mean of a block from its first loop's lanes (as in
/// [`block_moments_from`]) and its remainder; `None` if it has no values to count.
#[inline(always)]
pub(crate) fn block_mean<T: Numeric, const SKIP_NAN: bool>(
    b: &[T],
    acc: [f64; LANES],
    cnt: [u32; LANES],
) -> Option<(u64, f64)> {
    let keep = |x: T| !(SKIP_NAN && is_nan(x));
    let mut sum: f64 = acc.iter().sum();
    let mut n: u64 = cnt.iter().map(|&c| c as u64).sum();
    let rest = b.chunks_exact(LANES).remainder();
    for &x in rest {
        if keep(x) {
            sum += x.as_();
            n += 1;
        }
    }
    (n > 0).then(|| (n, sum / n as f64))
}

/// One chunk of the second pass: the squared deviations from `mean`, in lanes.
#[inline(always)]
pub(crate) fn deviations<T: Numeric, const SKIP_NAN: bool>(
    dev: &mut [f64; LANES],
    c: &[T; LANES],
    mean: f64,
) {
    let keep = |x: T| !(SKIP_NAN && is_nan(x));
    for i in 0..LANES {
        let d = c[i].as_() - mean;
        dev[i] += if keep(c[i]) { d * d } else { 0.0 };
    }
}

/// `M2` from the second pass's lanes and the block's remainder `rest`.
#[inline(always)]
pub(crate) fn m2_of<T: Numeric, const SKIP_NAN: bool>(
    dev: [f64; LANES],
    rest: &[T],
    mean: f64,
) -> f64 {
    let keep = |x: T| !(SKIP_NAN && is_nan(x));
    let mut m2: f64 = dev.iter().sum();
    for &x in rest {
        if keep(x) {
            let d = x.as_() - mean;
            m2 += d * d;
        }
    }
    m2
}

/// Count, mean and `M2` of `data` in one parallel pass (NaN propagates into mean and `M2`).
///
/// ```
/// let m = outcore::kernels::moments(&[2.0f64, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0]);
/// assert_eq!(m.mean(), 5.0);
/// assert_eq!(m.variance(0), 4.0);
/// assert_eq!(m.std(0), 2.0);
/// ```
pub fn moments<T: Numeric>(data: &[T]) -> Moments {
    defaults(moments_with(data, &ParOptions::new()))
}

/// [`moments`] with options.
///
/// # Errors
/// [`Error::ThreadPool`](crate::Error::ThreadPool) if the options' thread pool cannot be started.
pub fn moments_with<T: Numeric>(data: &[T], opts: &ParOptions) -> Result<Moments> {
    let parts = per_block(
        data,
        opts,
        |_, c| Moments::of_slice::<T, false>(c),
        Moments::merge,
    )?;
    Ok(combine_tree(parts, &Moments::merge).unwrap_or(Moments::EMPTY))
}

/// The moments of the elements that are not NaN.
pub fn nanmoments<T: Numeric>(data: &[T]) -> Moments {
    defaults(nanmoments_with(data, &ParOptions::new()))
}

/// [`nanmoments`] with options.
///
/// # Errors
/// [`Error::ThreadPool`](crate::Error::ThreadPool) if the options' thread pool cannot be started.
pub fn nanmoments_with<T: Numeric>(data: &[T], opts: &ParOptions) -> Result<Moments> {
    let parts = per_block(
        data,
        opts,
        |_, c| Moments::of_slice::<T, true>(c),
        Moments::merge,
    )?;
    Ok(combine_tree(parts, &Moments::merge).unwrap_or(Moments::EMPTY))
}

/// The arithmetic mean as `f64`, from the exact (integers) or pairwise (floats) sum, as
/// numpy's `mean`; NaN for an empty slice or if `data` holds a NaN.
///
/// For `f32` the sum is accumulated in `f32` like numpy's, then divided in `f64`.
pub fn mean<T: Numeric>(data: &[T]) -> f64 {
    defaults(mean_with(data, &ParOptions::new()))
}

/// [`mean`] with options.
///
/// # Errors
/// [`Error::ThreadPool`](crate::Error::ThreadPool) if the options' thread pool cannot be started.
pub fn mean_with<T: Numeric>(data: &[T], opts: &ParOptions) -> Result<f64> {
    if data.is_empty() {
        return Ok(f64::NAN);
    }
    Ok(T::total_to_f64(super::sum_with(data, opts)?) / data.len() as f64)
}

/// The mean of the elements that are not NaN (numpy's `nanmean`); NaN if there are none.
pub fn nanmean<T: Numeric>(data: &[T]) -> f64 {
    defaults(nanmean_with(data, &ParOptions::new()))
}

/// [`nanmean`] with options.
///
/// # Errors
/// [`Error::ThreadPool`](crate::Error::ThreadPool) if the options' thread pool cannot be started.
pub fn nanmean_with<T: Numeric>(data: &[T], opts: &ParOptions) -> Result<f64> {
    let parts = per_block(
        data,
        opts,
        |_, c| {
            (
                T::nansum_serial(c),
                super::reduce::count_serial(c, &|x: &T| !is_nan(*x)),
            )
        },
        |a, b| (a.0 + b.0, a.1 + b.1),
    )?;
    let (s, n) =
        combine_tree(parts, &|a, b| (a.0 + b.0, a.1 + b.1)).unwrap_or((T::Total::zero(), 0));
    Ok(if n == 0 {
        f64::NAN
    } else {
        T::total_to_f64(s) / n as f64
    })
}

/// The variance with `ddof` delta degrees of freedom (numpy's `var(ddof=...)`), computed in
/// `f64` from stably merged per-block moments; NaN when `len <= ddof` or if `data` holds a
/// NaN.
///
/// ```
/// let v = [1.0f32, 2.0, 3.0, 4.0];
/// assert_eq!(outcore::kernels::variance(&v, 0), 1.25);
/// assert_eq!(outcore::kernels::variance(&v, 1), 5.0 / 3.0);
/// ```
pub fn variance<T: Numeric>(data: &[T], ddof: u64) -> f64 {
    moments(data).variance(ddof)
}

/// [`variance`] with options.
///
/// # Errors
/// [`Error::ThreadPool`](crate::Error::ThreadPool) if the options' thread pool cannot be started.
pub fn variance_with<T: Numeric>(data: &[T], ddof: u64, opts: &ParOptions) -> Result<f64> {
    Ok(moments_with(data, opts)?.variance(ddof))
}

/// The standard deviation with `ddof` delta degrees of freedom (numpy's `std`).
pub fn std<T: Numeric>(data: &[T], ddof: u64) -> f64 {
    moments(data).std(ddof)
}

/// [`std`](fn@std) with options.
///
/// # Errors
/// [`Error::ThreadPool`](crate::Error::ThreadPool) if the options' thread pool cannot be started.
pub fn std_with<T: Numeric>(data: &[T], ddof: u64, opts: &ParOptions) -> Result<f64> {
    Ok(moments_with(data, opts)?.std(ddof))
}

/// The variance of the elements that are not NaN (numpy's `nanvar`).
pub fn nanvar<T: Numeric>(data: &[T], ddof: u64) -> f64 {
    nanmoments(data).variance(ddof)
}

/// [`nanvar`] with options.
///
/// # Errors
/// [`Error::ThreadPool`](crate::Error::ThreadPool) if the options' thread pool cannot be started.
pub fn nanvar_with<T: Numeric>(data: &[T], ddof: u64, opts: &ParOptions) -> Result<f64> {
    Ok(nanmoments_with(data, opts)?.variance(ddof))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_equals_whole() {
        let v: Vec<f64> = (0..10_000)
            .map(|i| ((i * 7919) % 1000) as f64 * 0.37 + 1e6)
            .collect();
        let whole = Moments::of_slice::<f64, false>(&v);
        let (a, b) = v.split_at(3333);
        let merged = Moments::of_slice::<f64, false>(a).merge(Moments::of_slice::<f64, false>(b));
        assert_eq!(whole.count, merged.count);
        assert!((whole.mean - merged.mean).abs() < 1e-9 * whole.mean.abs());
        assert!((whole.m2 - merged.m2).abs() < 1e-9 * whole.m2.abs());
    }
}
