//! Reductions: the generic parallel fold, and sum, min, max, argmin, argmax, count on it.

use num_traits::{Float, Zero};

use super::{combine_tree, defaults, is_nan, per_block, per_chunk, Numeric, LANES, PAIRWISE_BLOCK};
use crate::chunk::ParOptions;
use crate::cpu::{multiversion, Isa};
use crate::error::Result;

/// Folds every chunk with `fold` in parallel, then combines the chunk results in chunk order
/// as a balanced tree with `combine`. `None` for an empty slice.
///
/// This is the building block of the reductions: `fold` sees a whole chunk (megabytes), so
/// it can run a vectorised serial loop.
///
/// ```
/// use outcore::{kernels, ParOptions};
/// let v: Vec<u32> = (0..100_000).collect();
/// let max_even = kernels::fold_chunks(
///     &v,
///     &ParOptions::new(),
///     |c| c.iter().copied().filter(|x| x % 2 == 0).max(),
///     |a, b| a.max(b),
/// ).unwrap();
/// assert_eq!(max_even, Some(Some(99_998)));
/// ```
///
/// # Errors
/// [`Error::ThreadPool`](crate::Error::ThreadPool) if the options' thread pool
/// cannot be started.
pub fn fold_chunks<T, A>(
    data: &[T],
    opts: &ParOptions,
    fold: impl Fn(&[T]) -> A + Sync + Send,
    combine: impl Fn(A, A) -> A,
) -> Result<Option<A>>
where
    T: Sync,
    A: Send,
{
    let parts = per_chunk(data, opts, |_, c| fold(c))?;
    Ok(combine_tree(parts, &combine))
}

/// [`fold_chunks`] on the reduction blocks ([`super::REDUCE_BLOCK_BYTES`]) the built-in
/// kernels fold, so that their fused pass gives the same bits.
pub(crate) fn fold_blocks<T, A>(
    data: &[T],
    opts: &ParOptions,
    fold: impl Fn(&[T]) -> A + Sync + Send,
    combine: impl Fn(A, A) -> A + Sync + Send,
) -> Result<Option<A>>
where
    T: Sync,
    A: Send,
{
    let parts = per_block(data, opts, |_, c| fold(c), &combine)?;
    Ok(combine_tree(parts, &combine))
}

/// The generic parallel reduction: each chunk folds its elements into `identity()` with
/// `fold`, and the chunk results are merged with `combine` (in chunk order, so `combine`
/// need only be associative). An empty slice gives `identity()`.
///
/// ```
/// use outcore::{kernels, ParOptions};
/// let v: Vec<u8> = vec![3; 10_000];
/// let total = kernels::reduce(&v, &ParOptions::new(), || 0u64, |a, &x| a + x as u64, |a, b| a + b)
///     .unwrap();
/// assert_eq!(total, 30_000);
/// ```
///
/// # Errors
/// [`Error::ThreadPool`](crate::Error::ThreadPool) if the options' thread pool
/// cannot be started.
pub fn reduce<T, A>(
    data: &[T],
    opts: &ParOptions,
    identity: impl Fn() -> A + Sync + Send,
    fold: impl Fn(A, &T) -> A + Sync + Send,
    combine: impl Fn(A, A) -> A,
) -> Result<A>
where
    T: Sync,
    A: Send,
{
    let r = fold_chunks(data, opts, |c| c.iter().fold(identity(), &fold), combine)?;
    Ok(r.unwrap_or_else(identity))
}

/// The sum of `data`: exact for integers (returned as `i128` / `u128`, so it never wraps),
/// pairwise for floats (at least as accurate as numpy's `sum`; NaN propagates).
///
/// ```
/// let v = vec![u64::MAX, u64::MAX];
/// assert_eq!(outcore::kernels::sum(&v), 2 * u64::MAX as u128);
/// ```
pub fn sum<T: Numeric>(data: &[T]) -> T::Total {
    defaults(sum_with(data, &ParOptions::new()))
}

/// [`sum`] with options.
///
/// # Errors
/// [`Error::ThreadPool`](crate::Error::ThreadPool) if the options' thread pool
/// cannot be started.
pub fn sum_with<T: Numeric>(data: &[T], opts: &ParOptions) -> Result<T::Total> {
    Ok(fold_blocks(data, opts, T::sum_serial, |a, b| a + b)?.unwrap_or_else(T::Total::zero))
}

/// The sum of the elements that are not NaN (numpy's `nansum`); for integers the same as
/// [`sum`].
pub fn nansum<T: Numeric>(data: &[T]) -> T::Total {
    defaults(nansum_with(data, &ParOptions::new()))
}

/// [`nansum`] with options.
///
/// # Errors
/// [`Error::ThreadPool`](crate::Error::ThreadPool) if the options' thread pool
/// cannot be started.
pub fn nansum_with<T: Numeric>(data: &[T], opts: &ParOptions) -> Result<T::Total> {
    Ok(fold_blocks(data, opts, T::nansum_serial, |a, b| a + b)?.unwrap_or_else(T::Total::zero))
}

/// Pairwise float sum; with `SKIP_NAN`, NaN counts as zero.
pub(crate) fn pairwise_sum<F: Float, const SKIP_NAN: bool>(s: &[F]) -> F {
    if s.len() <= PAIRWISE_BLOCK {
        return lanes_sum::<F, SKIP_NAN>(s);
    }
    // Split on a multiple of the leaf size so that the leaves are full blocks.
    let half = (s.len() / 2).div_ceil(PAIRWISE_BLOCK) * PAIRWISE_BLOCK;
    let (a, b) = s.split_at(half.min(s.len()));
    pairwise_sum::<F, SKIP_NAN>(a) + pairwise_sum::<F, SKIP_NAN>(b)
}

/// The pairwise sum of consecutive leaves of [`PAIRWISE_BLOCK`] elements (`len` in all,
/// `leaves[i]` the [`lanes_sum`] of leaf `i`): [`pairwise_sum`]'s tree, for the fused
/// summary ([`super::fused`]), which sums the leaves in its own loop.
pub(crate) fn pairwise_of_leaves<F: Float>(leaves: &[F], len: usize) -> F {
    if len <= PAIRWISE_BLOCK {
        return leaves.first().copied().unwrap_or_else(F::zero);
    }
    let half = ((len / 2).div_ceil(PAIRWISE_BLOCK) * PAIRWISE_BLOCK).min(len);
    let (a, b) = leaves.split_at(half / PAIRWISE_BLOCK);
    pairwise_of_leaves(a, half) + pairwise_of_leaves(b, len - half)
}

#[inline(always)]
fn lanes_sum<F: Float, const SKIP_NAN: bool>(s: &[F]) -> F {
    let mut acc = [F::zero(); LANES];
    for c in s.chunks_exact(LANES) {
        let c: &[F; LANES] = c.try_into().expect("exact chunk");
        for i in 0..LANES {
            let x = if SKIP_NAN && c[i].is_nan() {
                F::zero()
            } else {
                c[i]
            };
            acc[i] = acc[i] + x;
        }
    }
    lanes_finish::<F, SKIP_NAN>(acc, s.chunks_exact(LANES).remainder())
}

/// The end of [`lanes_sum`] once its loop has summed the whole chunks of [`LANES`] into
/// `acc`: the remainder `rest` into the first lanes, then the lanes combined as a tree.
#[inline(always)]
pub(crate) fn lanes_finish<F: Float, const SKIP_NAN: bool>(mut acc: [F; LANES], rest: &[F]) -> F {
    for (i, &x) in rest.iter().enumerate() {
        if !(SKIP_NAN && x.is_nan()) {
            acc[i] = acc[i] + x;
        }
    }
    // Lanes combined as a tree too.
    let mut w = LANES;
    while w > 1 {
        w /= 2;
        for i in 0..w {
            acc[i] = acc[i] + acc[i + w];
        }
    }
    acc[0]
}

/// Elements per 64-bit-lane block: no lane can overflow within a block for any input.
const NARROW_BLOCK: usize = 1 << 24;

/// Exact sum of a signed integer slice.
pub(crate) fn int_sum_signed<T: Numeric>(s: &[T], narrow: bool) -> i128 {
    if narrow {
        // Values fit in 32 bits, so 2^24 of them per lane fit in an i64.
        s.chunks(NARROW_BLOCK)
            .map(|b| {
                let mut acc = [0i64; LANES];
                let mut it = b.chunks_exact(LANES);
                for c in &mut it {
                    let c: &[T; LANES] = c.try_into().expect("exact chunk");
                    for i in 0..LANES {
                        acc[i] += c[i].to_i64().unwrap_or(0);
                    }
                }
                let rest: i64 = it.remainder().iter().map(|x| x.to_i64().unwrap_or(0)).sum();
                acc.iter().map(|&a| a as i128).sum::<i128>() + rest as i128
            })
            .sum()
    } else {
        // i64: shift to unsigned (x + 2^63), sum exactly, shift back.
        let mut total: i128 = 0;
        for b in s.chunks(NARROW_BLOCK) {
            let u = split_sum(
                b.iter()
                    .map(|x| (x.to_i64().unwrap_or(0) as u64) ^ (1 << 63)),
            );
            total += u as i128 - ((b.len() as i128) << 63);
        }
        total
    }
}

/// Exact sum of an unsigned integer slice.
pub(crate) fn int_sum_unsigned<T: Numeric>(s: &[T], narrow: bool) -> u128 {
    if narrow {
        s.chunks(NARROW_BLOCK)
            .map(|b| {
                let mut acc = [0u64; LANES];
                let mut it = b.chunks_exact(LANES);
                for c in &mut it {
                    let c: &[T; LANES] = c.try_into().expect("exact chunk");
                    for i in 0..LANES {
                        acc[i] += c[i].to_u64().unwrap_or(0);
                    }
                }
                let rest: u64 = it.remainder().iter().map(|x| x.to_u64().unwrap_or(0)).sum();
                acc.iter().map(|&a| a as u128).sum::<u128>() + rest as u128
            })
            .sum()
    } else {
        s.chunks(NARROW_BLOCK)
            .map(|b| split_sum(b.iter().map(|x| x.to_u64().unwrap_or(0))))
            .sum()
    }
}

/// Exact sum of at most 2^32 `u64`s: the low and high 32-bit halves are summed in separate
/// 64-bit lanes (neither can overflow), which vectorises where a 128-bit add would not.
#[inline(always)]
fn split_sum(it: impl Iterator<Item = u64>) -> u128 {
    let mut lo = 0u64;
    let mut hi = 0u64;
    for v in it {
        lo += v & 0xffff_ffff;
        hi += v >> 32;
    }
    ((hi as u128) << 32) + lo as u128
}

/// Min and max of a non-empty slice, and whether it may hold a NaN (`true` also when it
/// holds an infinity: see the module docs; the caller checks for a real NaN then).
#[allow(clippy::eq_op)] // `x - x` is the NaN probe.
#[inline(always)]
fn min_max_lanes<T: Numeric>(s: &[T]) -> (T, T, bool) {
    let first = s[0];
    let mut mn = [first; LANES];
    let mut mx = [first; LANES];
    let mut probe = [T::zero(); LANES];
    let mut it = s.chunks_exact(LANES);
    for c in &mut it {
        let c: &[T; LANES] = c.try_into().expect("exact chunk");
        for i in 0..LANES {
            let x = c[i];
            probe[i] = probe[i] + (x - x);
            mn[i] = if x < mn[i] { x } else { mn[i] };
            mx[i] = if x > mx[i] { x } else { mx[i] };
        }
    }
    min_max_finish(mn, mx, probe, it.remainder(), first)
}

/// The end of [`min_max_lanes`] once its loop has folded the whole chunks of [`LANES`] into
/// the lanes `mn`, `mx` and `probe`: the lanes combined, then the remainder `rest`.
#[inline(always)]
pub(crate) fn min_max_finish<T: Numeric>(
    mn: [T; LANES],
    mx: [T; LANES],
    probe: [T; LANES],
    rest: &[T],
    first: T,
) -> (T, T, bool) {
    let mut maybe_nan = probe.iter().any(|&p| is_nan(p));
    let (mut lo, mut hi) = (mn[0], mx[0]);
    for i in 1..LANES {
        lo = if mn[i] < lo { mn[i] } else { lo };
        hi = if mx[i] > hi { mx[i] } else { hi };
    }
    for &x in rest {
        maybe_nan |= is_nan(x);
        lo = if x < lo { x } else { lo };
        hi = if x > hi { x } else { hi };
    }
    // A NaN as the first element sits in every lane without ever being added to `probe`.
    (lo, hi, maybe_nan || is_nan(first))
}

multiversion! {
    /// [`min_max_lanes`] for `isa`.
    fn min_max_lanes_isa[T: Numeric](s: &[T]) -> (T, T, bool) => min_max_lanes;
}

/// Min and max of a chunk, NaN propagating: `(NaN, NaN)` if the chunk holds one.
pub(crate) fn min_max_chunk<T: Numeric>(s: &[T]) -> Option<(T, T)> {
    if s.is_empty() {
        return None;
    }
    let (lo, hi, maybe_nan) = min_max_lanes_isa(Isa::active(), s);
    if maybe_nan {
        if let Some(&n) = s.iter().find(|&&x| is_nan(x)) {
            return Some((n, n));
        }
    }
    Some((lo, hi))
}

fn merge_min_max<T: Numeric>(a: (T, T), b: (T, T)) -> (T, T) {
    if is_nan(a.0) {
        return a;
    }
    if is_nan(b.0) {
        return b;
    }
    (
        if b.0 < a.0 { b.0 } else { a.0 },
        if b.1 > a.1 { b.1 } else { a.1 },
    )
}

/// Minimum and maximum in one pass; `None` for an empty slice. NaN propagates: if `data`
/// holds a NaN, both are NaN (numpy's `min` / `max`).
pub fn min_max<T: Numeric>(data: &[T]) -> Option<(T, T)> {
    defaults(min_max_with(data, &ParOptions::new()))
}

/// [`min_max`] with options.
///
/// # Errors
/// [`Error::ThreadPool`](crate::Error::ThreadPool) if the options' thread pool
/// cannot be started.
pub fn min_max_with<T: Numeric>(data: &[T], opts: &ParOptions) -> Result<Option<(T, T)>> {
    let parts = per_block(data, opts, |_, c| min_max_chunk(c), merge_opt_min_max)?;
    Ok(combine_tree(
        parts.into_iter().flatten().collect(),
        &merge_min_max,
    ))
}

/// The minimum; `None` for an empty slice; NaN if `data` holds one (numpy's `min`).
pub fn min<T: Numeric>(data: &[T]) -> Option<T> {
    min_max(data).map(|m| m.0)
}

/// [`min`] with options.
///
/// # Errors
/// [`Error::ThreadPool`](crate::Error::ThreadPool) if the options' thread pool
/// cannot be started.
pub fn min_with<T: Numeric>(data: &[T], opts: &ParOptions) -> Result<Option<T>> {
    Ok(min_max_with(data, opts)?.map(|m| m.0))
}

/// The maximum; `None` for an empty slice; NaN if `data` holds one (numpy's `max`).
pub fn max<T: Numeric>(data: &[T]) -> Option<T> {
    min_max(data).map(|m| m.1)
}

/// [`max`] with options.
///
/// # Errors
/// [`Error::ThreadPool`](crate::Error::ThreadPool) if the options' thread pool
/// cannot be started.
pub fn max_with<T: Numeric>(data: &[T], opts: &ParOptions) -> Result<Option<T>> {
    Ok(min_max_with(data, opts)?.map(|m| m.1))
}

/// Min and max ignoring NaN; `None` if every element is NaN (or there are none).
fn nan_min_max_chunk<T: Numeric>(s: &[T]) -> Option<(T, T)> {
    let first = *s.iter().find(|&&x| !is_nan(x))?;
    let mut mn = [first; LANES];
    let mut mx = [first; LANES];
    let mut it = s.chunks_exact(LANES);
    for c in &mut it {
        let c: &[T; LANES] = c.try_into().expect("exact chunk");
        for i in 0..LANES {
            // A NaN compares false both ways and is never taken.
            let x = c[i];
            mn[i] = if x < mn[i] { x } else { mn[i] };
            mx[i] = if x > mx[i] { x } else { mx[i] };
        }
    }
    let (mut lo, mut hi) = (first, first);
    for i in 0..LANES {
        lo = if mn[i] < lo { mn[i] } else { lo };
        hi = if mx[i] > hi { mx[i] } else { hi };
    }
    for &x in it.remainder() {
        lo = if x < lo { x } else { lo };
        hi = if x > hi { x } else { hi };
    }
    Some((lo, hi))
}

fn nan_min_max_with<T: Numeric>(data: &[T], opts: &ParOptions) -> Result<Option<(T, T)>> {
    let parts = per_block(data, opts, |_, c| nan_min_max_chunk(c), merge_opt_min_max)?;
    Ok(combine_tree(
        parts.into_iter().flatten().collect(),
        &merge_min_max,
    ))
}

/// The least and greatest finite values of `data`, as `f64` (NaN and infinities left out);
/// `None` if it has none. A histogram's range when none is given and the data holds NaN
/// or an infinity, where `np.histogram` refuses: the command line's `stats --bins` and the
/// Python module's `describe` take it.
///
/// ```
/// let v = [f64::NAN, 2.0, f64::INFINITY, -1.5, f64::NEG_INFINITY];
/// assert_eq!(outcore::kernels::finite_range(&v), Some((-1.5, 2.0)));
/// assert_eq!(outcore::kernels::finite_range(&[f64::NAN]), None);
/// ```
pub fn finite_range<T: Numeric>(data: &[T]) -> Option<(f64, f64)> {
    defaults(finite_range_with(data, &ParOptions::new()))
}

/// [`finite_range`] with options.
///
/// # Errors
/// [`Error::ThreadPool`](crate::Error::ThreadPool) if the options' thread pool
/// cannot be started.
pub fn finite_range_with<T: Numeric>(data: &[T], opts: &ParOptions) -> Result<Option<(f64, f64)>> {
    let widen = |a: Option<(f64, f64)>, b: Option<(f64, f64)>| match (a, b) {
        (Some((a0, a1)), Some((b0, b1))) => Some((a0.min(b0), a1.max(b1))),
        (x, None) | (None, x) => x,
    };
    let parts = per_chunk(data, opts, |_, c| {
        c.iter()
            .map(|&x| x.as_())
            .filter(|x: &f64| x.is_finite())
            .fold(None, |acc, x| widen(acc, Some((x, x))))
    })?;
    Ok(parts.into_iter().fold(None, widen))
}

/// The minimum ignoring NaN (numpy's `nanmin`); `None` if there is no element that is not NaN.
pub fn nanmin<T: Numeric>(data: &[T]) -> Option<T> {
    defaults(nanmin_with(data, &ParOptions::new()))
}

/// [`nanmin`] with options.
///
/// # Errors
/// [`Error::ThreadPool`](crate::Error::ThreadPool) if the options' thread pool
/// cannot be started.
pub fn nanmin_with<T: Numeric>(data: &[T], opts: &ParOptions) -> Result<Option<T>> {
    Ok(nan_min_max_with(data, opts)?.map(|m| m.0))
}

/// The maximum ignoring NaN (numpy's `nanmax`); `None` if there is no element that is not NaN.
pub fn nanmax<T: Numeric>(data: &[T]) -> Option<T> {
    defaults(nanmax_with(data, &ParOptions::new()))
}

/// [`nanmax`] with options.
///
/// # Errors
/// [`Error::ThreadPool`](crate::Error::ThreadPool) if the options' thread pool
/// cannot be started.
pub fn nanmax_with<T: Numeric>(data: &[T], opts: &ParOptions) -> Result<Option<T>> {
    Ok(nan_min_max_with(data, opts)?.map(|m| m.1))
}

/// Elements per block of the argmin/argmax search: a block's extreme is found with the
/// vectorised loop, and only a block that improves on the best so far is searched again
/// (while it is still in L1) for the index.
const ARG_BLOCK: usize = 2048;

#[derive(Clone, Copy, Debug)]
struct Arg<T> {
    index: usize,
    value: T,
}

fn arg_chunk<T: Numeric, const MAX: bool>(start: usize, s: &[T]) -> Option<Arg<T>> {
    let mut best: Option<Arg<T>> = None;
    let mut base = start;
    for b in s.chunks(ARG_BLOCK) {
        let (lo, hi, maybe_nan) = min_max_lanes(b);
        if maybe_nan {
            if let Some(i) = b.iter().position(|&x| is_nan(x)) {
                return Some(Arg {
                    index: base + i,
                    value: b[i],
                });
            }
        }
        let v = if MAX { hi } else { lo };
        let better = match best {
            None => true,
            Some(a) => {
                if MAX {
                    v > a.value
                } else {
                    v < a.value
                }
            }
        };
        if better {
            let i = b.iter().position(|&x| x == v).expect("extreme is present");
            best = Some(Arg {
                index: base + i,
                value: v,
            });
        }
        base += b.len();
    }
    best
}

/// [`merge_min_max`] of two optional results.
fn merge_opt_min_max<T: Numeric>(a: Option<(T, T)>, b: Option<(T, T)>) -> Option<(T, T)> {
    match (a, b) {
        (Some(a), Some(b)) => Some(merge_min_max(a, b)),
        (a, None) => a,
        (None, b) => b,
    }
}

/// The first NaN wins, then the strictly better value, then the earlier one: the order of
/// the kernels' scan over chunk results, which is associative.
pub(crate) fn pick_arg<T: Numeric, const MAX: bool>(
    a: Option<(usize, T)>,
    b: Option<(usize, T)>,
) -> Option<(usize, T)> {
    match (a, b) {
        (Some(x), Some(y)) => Some(if is_nan(x.1) {
            x
        } else if is_nan(y.1) || (MAX && y.1 > x.1) || (!MAX && y.1 < x.1) {
            y
        } else {
            x
        }),
        (x, None) => x,
        (None, y) => y,
    }
}

fn arg_with<T: Numeric, const MAX: bool>(data: &[T], opts: &ParOptions) -> Result<Option<usize>> {
    let block = |start, c: &[T]| arg_chunk::<T, MAX>(start, c).map(|a| (a.index, a.value));
    let parts = per_block(data, opts, block, pick_arg::<T, MAX>)?;
    // In order: the first NaN wins, then the first strictly better value.
    Ok(parts
        .into_iter()
        .fold(None, pick_arg::<T, MAX>)
        .map(|a| a.0))
}

/// Index of the first minimum (numpy's `argmin`): `None` for an empty slice; the index of
/// the first NaN if there is one.
pub fn argmin<T: Numeric>(data: &[T]) -> Option<usize> {
    defaults(argmin_with(data, &ParOptions::new()))
}

/// [`argmin`] with options.
///
/// # Errors
/// [`Error::ThreadPool`](crate::Error::ThreadPool) if the options' thread pool
/// cannot be started.
pub fn argmin_with<T: Numeric>(data: &[T], opts: &ParOptions) -> Result<Option<usize>> {
    arg_with::<T, false>(data, opts)
}

/// Index of the first maximum (numpy's `argmax`): `None` for an empty slice; the index of
/// the first NaN if there is one.
pub fn argmax<T: Numeric>(data: &[T]) -> Option<usize> {
    defaults(argmax_with(data, &ParOptions::new()))
}

/// [`argmax`] with options.
///
/// # Errors
/// [`Error::ThreadPool`](crate::Error::ThreadPool) if the options' thread pool
/// cannot be started.
pub fn argmax_with<T: Numeric>(data: &[T], opts: &ParOptions) -> Result<Option<usize>> {
    arg_with::<T, true>(data, opts)
}

/// How many elements satisfy `pred`.
///
/// ```
/// let v: Vec<i32> = (-50..50).collect();
/// assert_eq!(outcore::kernels::count(&v, |&x| x < 0), 50);
/// ```
pub fn count<T: Sync>(data: &[T], pred: impl Fn(&T) -> bool + Sync + Send) -> usize {
    defaults(count_with(data, &ParOptions::new(), pred))
}

/// [`count`] with options.
///
/// # Errors
/// [`Error::ThreadPool`](crate::Error::ThreadPool) if the options' thread pool
/// cannot be started.
pub fn count_with<T: Sync>(
    data: &[T],
    opts: &ParOptions,
    pred: impl Fn(&T) -> bool + Sync + Send,
) -> Result<usize> {
    let parts = per_block(data, opts, |_, c| count_serial(c, &pred), |a, b| a + b)?;
    Ok(parts.into_iter().sum())
}

/// Branch-free count: adds the predicate's 0/1 so the loop can vectorise.
pub(crate) fn count_serial<T>(s: &[T], pred: &impl Fn(&T) -> bool) -> usize {
    s.iter().map(|x| pred(x) as usize).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The finite range against a plain fold, over chunks and threads, with NaN and
    /// infinities scattered, and with none finite.
    #[test]
    fn finite_range_skips_nan_and_infinities() {
        let mut opts = ParOptions::new();
        opts.threads(2).chunk_bytes(4096);
        let v: Vec<f64> = (0..100_000)
            .map(|i| match i % 7 {
                0 => f64::NAN,
                1 => f64::INFINITY,
                2 => f64::NEG_INFINITY,
                _ => ((i * 7919) % 10_007) as f64 - 5000.5,
            })
            .collect();
        let fin: Vec<f64> = v.iter().copied().filter(|x| x.is_finite()).collect();
        let want = fin
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &x| {
                (lo.min(x), hi.max(x))
            });
        assert_eq!(finite_range_with(&v, &opts).unwrap(), Some(want));
        assert_eq!(finite_range(&v), Some(want));
        let none = [f64::NAN, f64::INFINITY, f64::NEG_INFINITY];
        assert_eq!(finite_range_with(&none, &opts).unwrap(), None);
        assert_eq!(finite_range::<f64>(&[]), None);
        assert_eq!(finite_range(&[3u8, 250, 7]), Some((3.0, 250.0)));
    }

    proptest::proptest! {
        #![proptest_config(crate::proptest_config(100))]

        /// Min/max and the histogram on every ISA this CPU has give the portable path's
        /// result (bit for bit: NaNs, ±0 and infinities included).
        #[test]
        fn prop_kernels_every_isa_match_portable(
            raw in proptest::collection::vec(proptest::prelude::any::<u64>(), 1..3000),
            special in 0u64..4,
        ) {
            fn check<T: Numeric>(v: &[T]) {
                let bits = |r: (T, T, bool)| format!("{:?}", r);
                let want = bits(min_max_lanes_isa(Isa::Baseline, v));
                let bins = 37;
                let rule = crate::kernels::histogram::BinRule::new(bins, -1e3, 1e3);
                let mut want_h = vec![0u64; bins];
                crate::kernels::histogram::count_bins_isa(Isa::Baseline, v, &mut want_h, &rule);
                for isa in Isa::available() {
                    assert_eq!(bits(min_max_lanes_isa(isa, v)), want, "{isa:?}");
                    let mut h = vec![0u64; bins];
                    crate::kernels::histogram::count_bins_isa(isa, v, &mut h, &rule);
                    assert_eq!(h, want_h, "{isa:?}");
                }
            }
            let f64s: Vec<f64> = raw.iter().map(|&x| match (x % 8, special) {
                (0, 1) => f64::NAN,
                (1, 2) => -0.0,
                (2, 2) => 0.0,
                (3, 3) => f64::INFINITY,
                _ => (x as i64 as f64) / 1e16,
            }).collect();
            check(&f64s);
            check(&f64s.iter().map(|&x| x as f32).collect::<Vec<f32>>());
            check(&raw);
            check(&raw.iter().map(|&x| x as i64).collect::<Vec<i64>>());
            check(&raw.iter().map(|&x| x as u32).collect::<Vec<u32>>());
            check(&raw.iter().map(|&x| x as i16).collect::<Vec<i16>>());
            check(&raw.iter().map(|&x| x as u8).collect::<Vec<u8>>());
            check(&raw.iter().map(|&x| x as i8).collect::<Vec<i8>>());
        }
    }

    #[test]
    fn pairwise_beats_naive_on_cancellation() {
        // 1 followed by many tiny values: the naive running sum drops every one of them.
        let mut v = vec![1e-16f64; 1 << 20];
        v[0] = 1.0;
        let exact = 1.0 + 1e-16 * ((1 << 20) - 1) as f64;
        let naive: f64 = v.iter().sum();
        let ours = pairwise_sum::<f64, false>(&v);
        assert!(
            (ours - exact).abs() <= 16.0 * f64::EPSILON,
            "{ours} vs {exact}"
        );
        assert!(
            (naive - exact).abs() > 1e-11,
            "the test data must defeat naive summation"
        );
    }

    #[test]
    fn i64_split_sum_is_exact_at_extremes() {
        let v = [i64::MIN, i64::MIN, i64::MAX, -1, 7];
        assert_eq!(
            int_sum_signed(&v, false),
            v.iter().map(|&x| x as i128).sum::<i128>()
        );
        let u = [u64::MAX; 33];
        assert_eq!(int_sum_unsigned(&u, false), 33 * u64::MAX as u128);
    }
}
