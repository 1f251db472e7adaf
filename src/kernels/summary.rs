//! The fused summary: count, NaN count, sum, mean, variance, min, max, argmin, argmax and a
//! histogram in one pass, bit for bit what the separate kernels give; and [`Reducer`], the
//! way to fuse folds of one's own with the built-in ones.

use super::fused::summarize_isa;
use super::histogram::{count_bins_isa, BinCounter, BinRule};
use super::passes::{serial, FilePasses, Passes, SlicePasses};
use super::quantile::{quantiles_in, QuantileMethod, QuantileValue, DEFAULT_QUANTILE_MEMORY};
use super::reduce::{count_serial, min_max_chunk, pick_arg};
use super::{
    block_len, combine_tree, defaults, fold_blocks_of, is_nan, Moments, Numeric, MOMENT_BLOCK,
};
use crate::array::MappedArray;
use crate::chunk::ParOptions;
use crate::cpu::Isa;
use crate::element::Element;
use crate::error::{Error, Result};
use crate::sort::SortKey;
use crate::stream::Stream;
use num_traits::{Float, NumCast};

/// A fold over chunks that can be run alone or fused with others into a single pass.
///
/// [`fold_chunk`](Reducer::fold_chunk) folds one block of a chunk (at most
/// [`REDUCE_BLOCK_BYTES`](super::REDUCE_BLOCK_BYTES), so that every reducer of a fused pass
/// reads it from L2; chunks run in parallel); [`combine`](Reducer::combine) merges the
/// results of neighbouring blocks and chunks and must be associative. The runners
/// ([`reduce_fused`], [`stream::reduce_fused`](crate::stream::reduce_fused)) combine each
/// chunk's block results, then the chunks' results, in order as the balanced trees the
/// kernels use, so a reducer that calls a kernel's serial loop gives that kernel's result
/// bit for bit, for any thread count.
///
/// Tuples of up to six reducers are reducers (each element sees every chunk: one pass,
/// several answers), and so is `Option<R>` (`None` computes nothing). The built-in
/// reducers are [`SumReducer`], [`MomentsReducer`], [`MinMaxReducer`], [`ArgMinReducer`],
/// [`ArgMaxReducer`], [`NanCountReducer`] and [`HistogramReducer`]; [`reducer`] makes one
/// from two closures.
///
/// ```
/// use outcore::kernels::{self, reducer, MomentsReducer, SumReducer};
/// let v: Vec<f64> = (0..100_000).map(|i| (i % 1000) as f64).collect();
/// // Sum, moments, and a count of our own, in one pass.
/// let big = reducer(|_start, c: &[f64]| c.iter().filter(|&&x| x > 900.0).count(), |a, b| a + b);
/// let (sum, m, n_big) = kernels::reduce_fused(&v, &(SumReducer, MomentsReducer, big)).unwrap();
/// assert_eq!(sum, kernels::sum(&v)); // bit for bit
/// assert_eq!(m, kernels::moments(&v));
/// assert_eq!(n_big, 9_900);
/// ```
pub trait Reducer<T>: Sync {
    /// What a chunk folds to.
    type Acc: Send;

    /// Folds the chunk `chunk`, whose first element is element `start` of the data.
    fn fold_chunk(&self, start: usize, chunk: &[T]) -> Self::Acc;

    /// Merges the results of two neighbouring parts, `a` before `b`.
    fn combine(&self, a: Self::Acc, b: Self::Acc) -> Self::Acc;
}

macro_rules! tuple_reducer {
    ($(($($r:ident $i:tt),+))*) => {$(
        impl<T, $($r: Reducer<T>),+> Reducer<T> for ($($r,)+) {
            type Acc = ($($r::Acc,)+);
            fn fold_chunk(&self, start: usize, chunk: &[T]) -> Self::Acc {
                ($(self.$i.fold_chunk(start, chunk),)+)
            }
            fn combine(&self, a: Self::Acc, b: Self::Acc) -> Self::Acc {
                ($(self.$i.combine(a.$i, b.$i),)+)
            }
        }
    )*};
}

tuple_reducer! {
    (A 0)
    (A 0, B 1)
    (A 0, B 1, C 2)
    (A 0, B 1, C 2, D 3)
    (A 0, B 1, C 2, D 3, E 4)
    (A 0, B 1, C 2, D 3, E 4, F 5)
}

impl<T, R: Reducer<T>> Reducer<T> for Option<R> {
    type Acc = Option<R::Acc>;
    fn fold_chunk(&self, start: usize, chunk: &[T]) -> Self::Acc {
        self.as_ref().map(|r| r.fold_chunk(start, chunk))
    }
    fn combine(&self, a: Self::Acc, b: Self::Acc) -> Self::Acc {
        match (self, a, b) {
            (Some(r), Some(a), Some(b)) => Some(r.combine(a, b)),
            _ => None,
        }
    }
}

/// A [`Reducer`] made of two closures; see [`reducer`].
pub struct FnReducer<F, C> {
    fold: F,
    combine: C,
}

impl<F, C> std::fmt::Debug for FnReducer<F, C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FnReducer")
    }
}

/// A [`Reducer`] from a chunk fold `fold(start, chunk)` and an associative `combine`.
pub fn reducer<T, A, F, C>(fold: F, combine: C) -> FnReducer<F, C>
where
    A: Send,
    F: Fn(usize, &[T]) -> A + Sync,
    C: Fn(A, A) -> A + Sync,
{
    FnReducer { fold, combine }
}

impl<T, A, F, C> Reducer<T> for FnReducer<F, C>
where
    A: Send,
    F: Fn(usize, &[T]) -> A + Sync,
    C: Fn(A, A) -> A + Sync,
{
    type Acc = A;
    fn fold_chunk(&self, start: usize, chunk: &[T]) -> A {
        (self.fold)(start, chunk)
    }
    fn combine(&self, a: A, b: A) -> A {
        (self.combine)(a, b)
    }
}

/// The sum, as [`kernels::sum`](super::sum) (exact for integers, pairwise for floats).
#[derive(Clone, Copy, Debug, Default)]
pub struct SumReducer;

impl<T: Numeric> Reducer<T> for SumReducer {
    type Acc = T::Total;
    fn fold_chunk(&self, _: usize, chunk: &[T]) -> T::Total {
        T::sum_serial(chunk)
    }
    fn combine(&self, a: T::Total, b: T::Total) -> T::Total {
        a + b
    }
}

/// Count, mean and `M2`, as [`kernels::moments`](super::moments) (NaN propagates).
#[derive(Clone, Copy, Debug, Default)]
pub struct MomentsReducer;

impl<T: Numeric> Reducer<T> for MomentsReducer {
    type Acc = Moments;
    fn fold_chunk(&self, _: usize, chunk: &[T]) -> Moments {
        Moments::of_slice::<T, false>(chunk)
    }
    fn combine(&self, a: Moments, b: Moments) -> Moments {
        a.merge(b)
    }
}

/// Minimum and maximum, as [`kernels::min_max`](super::min_max): `None` for no elements,
/// both NaN if there is a NaN.
#[derive(Clone, Copy, Debug, Default)]
pub struct MinMaxReducer;

impl<T: Numeric> Reducer<T> for MinMaxReducer {
    type Acc = Option<(T, T)>;
    fn fold_chunk(&self, _: usize, chunk: &[T]) -> Option<(T, T)> {
        min_max_chunk(chunk)
    }
    fn combine(&self, a: Option<(T, T)>, b: Option<(T, T)>) -> Option<(T, T)> {
        match (a, b) {
            (Some(a), Some(b)) => Some(if is_nan(a.0) {
                a
            } else if is_nan(b.0) {
                b
            } else {
                (
                    if b.0 < a.0 { b.0 } else { a.0 },
                    if b.1 > a.1 { b.1 } else { a.1 },
                )
            }),
            (a, None) => a,
            (None, b) => b,
        }
    }
}

/// Index and value of the first minimum, as [`kernels::argmin`](super::argmin) (the first
/// NaN if there is one).
#[derive(Clone, Copy, Debug, Default)]
pub struct ArgMinReducer;

/// Index and value of the first maximum, as [`kernels::argmax`](super::argmax) (the first
/// NaN if there is one).
#[derive(Clone, Copy, Debug, Default)]
pub struct ArgMaxReducer;

impl<T: Numeric> Reducer<T> for ArgMinReducer {
    type Acc = Option<(usize, T)>;
    fn fold_chunk(&self, start: usize, chunk: &[T]) -> Self::Acc {
        // One chunk under `serial()` runs the kernel's chunk loop inline.
        let i = defaults(super::argmin_with(chunk, serial()))?;
        Some((start + i, chunk[i]))
    }
    fn combine(&self, a: Self::Acc, b: Self::Acc) -> Self::Acc {
        pick_arg::<T, false>(a, b)
    }
}

impl<T: Numeric> Reducer<T> for ArgMaxReducer {
    type Acc = Option<(usize, T)>;
    fn fold_chunk(&self, start: usize, chunk: &[T]) -> Self::Acc {
        let i = defaults(super::argmax_with(chunk, serial()))?;
        Some((start + i, chunk[i]))
    }
    fn combine(&self, a: Self::Acc, b: Self::Acc) -> Self::Acc {
        pick_arg::<T, true>(a, b)
    }
}

/// The number of NaN elements (0 for integers).
#[derive(Clone, Copy, Debug, Default)]
pub struct NanCountReducer;

impl<T: Numeric> Reducer<T> for NanCountReducer {
    type Acc = u64;
    fn fold_chunk(&self, _: usize, chunk: &[T]) -> u64 {
        if T::IS_FLOAT {
            count_serial(chunk, &|x: &T| is_nan(*x)) as u64
        } else {
            0
        }
    }
    fn combine(&self, a: u64, b: u64) -> u64 {
        a + b
    }
}

/// Histogram counts over a fixed range, as [`kernels::histogram`](super::histogram()) with
/// that range (numpy's edges and bin rule).
#[derive(Clone, Debug)]
pub struct HistogramReducer {
    bins: usize,
    range: (f64, f64),
    rule: BinRule,
}

impl HistogramReducer {
    /// `bins` equal bins over `range` (`np.histogram(data, bins, range)`).
    ///
    /// # Errors
    /// [`Error::NoBins`] if `bins` is 0, [`Error::RangeNotFinite`] if the range is not
    /// finite, [`Error::RangeReversed`] if `lo > hi`, as
    /// [`kernels::histogram`](super::histogram()).
    pub fn new(bins: usize, range: (f64, f64)) -> Result<HistogramReducer> {
        // The kernel's own checks, on no data.
        super::histogram_with::<f64>(&[], bins, Some(range), serial())?;
        let (lo, hi) = widened(range);
        Ok(HistogramReducer {
            bins,
            range,
            rule: BinRule::new(bins, lo, hi),
        })
    }

    /// The `bins + 1` bin edges, as `np.histogram` returns them: `linspace(lo, hi, bins +
    /// 1)` after widening a zero-width range by 0.5 on each side.
    pub fn edges(&self) -> Vec<f64> {
        let (lo, hi) = widened(self.range);
        let step = (hi - lo) / self.bins as f64;
        let mut edges: Vec<f64> = (0..=self.bins).map(|i| i as f64 * step + lo).collect();
        edges[self.bins] = hi;
        edges
    }
}

/// numpy's range for a histogram: an empty one widened by 0.5 on each side.
fn widened((lo, hi): (f64, f64)) -> (f64, f64) {
    if lo == hi {
        (lo - 0.5, hi + 0.5)
    } else {
        (lo, hi)
    }
}

impl<T: Numeric> Reducer<T> for HistogramReducer {
    type Acc = Vec<u64>;
    fn fold_chunk(&self, _: usize, chunk: &[T]) -> Vec<u64> {
        // The kernel's chunk loop, with the rule made once in `new`.
        let mut counts = vec![0; self.bins];
        count_bins_isa(Isa::active(), chunk, &mut counts, &self.rule);
        counts
    }
    fn combine(&self, mut a: Vec<u64>, b: Vec<u64>) -> Vec<u64> {
        a.iter_mut().zip(b).for_each(|(x, y)| *x += y);
        a
    }
}

fn run<T, R: Reducer<T>, P: Passes<T>>(p: &P, r: &R) -> Result<Option<R::Acc>> {
    let parts = p.pass_blocks(|start, c| r.fold_chunk(start, c), |a, b| r.combine(a, b))?;
    Ok(combine_tree(parts, &|a, b| r.combine(a, b)))
}

/// Runs a [`Reducer`] (a tuple of them for several answers) over `data` in one parallel
/// pass; `None` for an empty slice. See [`Reducer`] for an example.
pub fn reduce_fused<T: Sync, R: Reducer<T>>(data: &[T], r: &R) -> Option<R::Acc> {
    defaults(reduce_fused_with(data, r, &ParOptions::new()))
}

/// [`reduce_fused`] with options.
///
/// # Errors
/// [`Error::ThreadPool`] if the options' thread pool cannot be started.
pub fn reduce_fused_with<T: Sync, R: Reducer<T>>(
    data: &[T],
    r: &R,
    opts: &ParOptions,
) -> Result<Option<R::Acc>> {
    run(&SlicePasses::new(data, opts), r)
}

/// What [`describe`] computes; memmap2-style setters that chain.
///
/// ```
/// use outcore::kernels::DescribeOptions;
/// let mut o = DescribeOptions::new();
/// o.ddof(1).bins(10).range(0.0, 1.0).percentiles(&[5.0, 50.0, 95.0]);
/// ```
#[derive(Clone, Debug, Default)]
pub struct DescribeOptions {
    ddof: u64,
    bins: usize,
    range: Option<(f64, f64)>,
    percentiles: Vec<f64>,
    method: QuantileMethod,
    memory: Option<usize>,
}

impl DescribeOptions {
    /// No histogram, no percentiles, `ddof` 0.
    pub fn new() -> Self {
        Self::default()
    }

    /// Delta degrees of freedom of the variance and standard deviation (numpy's `ddof`).
    pub fn ddof(&mut self, ddof: u64) -> &mut Self {
        self.ddof = ddof;
        self
    }

    /// A histogram of `bins` bins (0: none). Without a [`range`](Self::range), its range
    /// is the data's min and max, which takes a second pass.
    pub fn bins(&mut self, bins: usize) -> &mut Self {
        self.bins = bins;
        self
    }

    /// The histogram's range (`np.histogram(..., range=(lo, hi))`): then the histogram is
    /// computed in the same pass as everything else.
    pub fn range(&mut self, lo: f64, hi: f64) -> &mut Self {
        self.range = Some((lo, hi));
        self
    }

    /// Percentiles (each in `[0, 100]`) to compute as `np.percentile` does, with the
    /// quantile passes of [`kernels::percentiles`](super::percentiles) after the summary's
    /// pass.
    pub fn percentiles(&mut self, ps: &[f64]) -> &mut Self {
        self.percentiles = ps.to_vec();
        self
    }

    /// The percentiles' method (default linear).
    pub fn method(&mut self, m: QuantileMethod) -> &mut Self {
        self.method = m;
        self
    }

    /// The percentiles' candidate budget in bytes (default
    /// [`DEFAULT_QUANTILE_MEMORY`]).
    pub fn memory(&mut self, bytes: usize) -> &mut Self {
        self.memory = Some(bytes);
        self
    }
}

/// Histogram bin edges and counts, as `np.histogram` returns them.
#[derive(Clone, Debug, PartialEq)]
pub struct Histogram {
    /// The `bins + 1` edges.
    pub edges: Vec<f64>,
    /// The count of each bin.
    pub counts: Vec<u64>,
}

/// Statistics of some data, from [`describe`]. Every field is what the separate kernel
/// gives, bit for bit; NaN rules are numpy's (`sum`, `mean`, `variance`, `min`, `max`
/// propagate NaN; `argmin` / `argmax` give the first NaN).
#[derive(Clone, Debug, PartialEq)]
pub struct Summary<T: Numeric> {
    /// Number of elements (NaN included).
    pub count: u64,
    /// Number of NaN elements.
    pub nan_count: u64,
    /// [`kernels::sum`](super::sum).
    pub sum: T::Total,
    /// [`kernels::mean`](super::mean): NaN for no elements.
    pub mean: f64,
    /// The `ddof` of `variance` and `std`.
    pub ddof: u64,
    /// [`kernels::variance`](super::variance) with `ddof`.
    pub variance: f64,
    /// [`kernels::std`](super::std()) with `ddof`.
    pub std: f64,
    /// [`kernels::moments`](super::moments): for the variance with another `ddof`.
    pub moments: Moments,
    /// [`kernels::min`](super::min).
    pub min: Option<T>,
    /// [`kernels::max`](super::max).
    pub max: Option<T>,
    /// [`kernels::argmin`](super::argmin).
    pub argmin: Option<usize>,
    /// [`kernels::argmax`](super::argmax).
    pub argmax: Option<usize>,
    /// [`kernels::histogram`](super::histogram()) with its edges, if bins were asked for.
    pub histogram: Option<Histogram>,
    /// `(p, value)` for each requested percentile.
    pub percentiles: Vec<(f64, QuantileValue<T>)>,
    /// Passes over the data: 1, plus 1 for a histogram without a range, plus the
    /// percentiles' passes.
    pub passes: u32,
}

/// NaN count, min and max, argmin and argmax from one scan: [`NanCountReducer`],
/// [`MinMaxReducer`], [`ArgMinReducer`] and [`ArgMaxReducer`] fused. The block's min and max
/// come first; the first minimum and maximum are then the first elements equal to them (a
/// search that stops early and needs no second comparison per element), and without a
/// NaN there is nothing to count. The results are those reducers' own, bit for bit.
#[derive(Clone, Copy, Debug, Default)]
struct ExtremaReducer;

type Arg<T> = Option<(usize, T)>;

/// The index of the first element of `s` for which `hit` holds, checked 16 at a time
/// without a branch per element.
fn first<T: Copy>(s: &[T], hit: impl Fn(T) -> bool) -> Option<usize> {
    const W: usize = 16;
    let mut it = s.chunks_exact(W);
    for (k, c) in (&mut it).enumerate() {
        if c.iter().fold(false, |a, &x| a | hit(x)) {
            return c.iter().position(|&x| hit(x)).map(|i| k * W + i);
        }
    }
    let done = s.len() - it.remainder().len();
    it.remainder()
        .iter()
        .position(|&x| hit(x))
        .map(|i| done + i)
}

impl<T: Numeric> Reducer<T> for ExtremaReducer {
    type Acc = (u64, Option<(T, T)>, (Arg<T>, Arg<T>));
    fn fold_chunk(&self, start: usize, chunk: &[T]) -> Self::Acc {
        let Some((lo, hi)) = min_max_chunk(chunk) else {
            return (0, None, (None, None));
        };
        let at = |i: Option<usize>| i.map(|i| (start + i, chunk[i]));
        if is_nan(lo) {
            let nan = at(first(chunk, is_nan));
            let n = count_serial(chunk, &|x: &T| is_nan(*x)) as u64;
            return (n, Some((lo, hi)), (nan, nan));
        }
        // `==` makes -0.0 and 0.0 equal, as the kernels' strict `<` keeps the first of them.
        let amin = at(first(chunk, |x| x == lo));
        let amax = at(first(chunk, |x| x == hi));
        (0, Some((lo, hi)), (amin, amax))
    }
    fn combine(&self, a: Self::Acc, b: Self::Acc) -> Self::Acc {
        (
            a.0 + b.0,
            Reducer::<T>::combine(&MinMaxReducer, a.1, b.1),
            (
                pick_arg::<T, false>(a.2 .0, b.2 .0),
                pick_arg::<T, true>(a.2 .1, b.2 .1),
            ),
        )
    }
}

/// The reducer behind [`Summary`]: the built-in reducers, fused; for `f32` and `f64`, run
/// as one loop ([`fused`](super::fused)) that gives each of them bit for bit.
#[derive(Clone, Debug)]
struct SummaryReducer {
    parts: (
        ExtremaReducer,
        SumReducer,
        MomentsReducer,
        Option<HistogramReducer>,
    ),
}

impl SummaryReducer {
    fn new(hist: Option<HistogramReducer>) -> SummaryReducer {
        SummaryReducer {
            parts: (ExtremaReducer, SumReducer, MomentsReducer, hist),
        }
    }

    /// One chunk of the pass: its reduction blocks folded and combined as a tree, as the
    /// built-in reducers' runner does, so each statistic is its kernel's bit for bit; the
    /// chunks' results combine in the same tree too ([`run_summary`]).
    fn fold_run<T: Numeric>(&self, start: usize, c: &[T]) -> Option<SummaryAcc<T>> {
        if let Some(f) = T::as_f64s(c) {
            return self.fold_floats(start, f, block_len::<T>());
        }
        if let Some(f) = T::as_f32s(c) {
            return self.fold_floats(start, f, block_len::<T>());
        }
        fold_blocks_of(start, c, &|s, b| self.parts.fold_chunk(s, b), &|a, b| {
            self.merge(a, b)
        })
    }

    /// [`SummaryReducer::fold_run`] for floats: each block of at most `n` values through the
    /// one loop ([`summarize_isa`]), with one [`BinCounter`] for all of `f`. Counts are
    /// integers, so which counter counts a block cannot change them; one counter per
    /// block (256 KiB) made and folded its pairs' table so often that it cost about a
    /// tenth of the summary's time in cache (BENCHMARKS.md).
    fn fold_floats<T: Numeric, F: Float + Numeric>(
        &self,
        start: usize,
        f: &[F],
        n: usize,
    ) -> Option<SummaryAcc<T>> {
        if f.is_empty() {
            return None;
        }
        let hist = self.parts.3.as_ref();
        let rule = hist.map(|h| &h.rule);
        let mut counter = hist.map(|h| BinCounter::new(h.bins));
        let blocks = f
            .chunks(n)
            .enumerate()
            .map(|(i, b)| self.fold_block(start + i * n, b, rule.zip(counter.as_mut())))
            .collect();
        let mut acc = combine_tree(blocks, &|a, b| self.merge(a, b))?;
        acc.3 = hist.zip(counter).map(|(h, c)| {
            let mut counts = vec![0; h.bins];
            c.finish(&mut counts);
            counts
        });
        Some(acc)
    }

    /// One non-empty block `f` (the data as its own float type `F`) through the one loop:
    /// every statistic but the counts (left `None`), which go to `hist`'s counter (the
    /// last part's bins stay staged there, for the next block's loop or `finish`).
    fn fold_block<T: Numeric, F: Float + Numeric>(
        &self,
        start: usize,
        f: &[F],
        hist: Option<(&BinRule, &mut BinCounter)>,
    ) -> SummaryAcc<T> {
        // `F` is `T`: the conversions are the identity.
        let same = |x: F| -> T { NumCast::from(x).expect("the same float type") };
        let b = summarize_isa(Isa::active(), f, hist);
        let at = |i: usize| Some((start + i, same(f[i])));
        let extrema = match b.maybe_nan.then(|| f.iter().position(|x| x.is_nan())) {
            // As `min_max_chunk` and `ExtremaReducer` find a NaN.
            Some(Some(i)) => {
                let n = f[i..].iter().filter(|x| x.is_nan()).count() as u64;
                (n, Some((same(f[i]), same(f[i]))), (at(i), at(i)))
            }
            _ => {
                // The first minimum is in the first part whose running minimum is the
                // block's (or in the last, partial part); likewise the maximum.
                let from = |j: Option<usize>| j.unwrap_or(b.running.len()) * MOMENT_BLOCK;
                let i = from(b.running.iter().position(|r| r.0 == b.lo));
                let amin = first(&f[i..], |x| x == b.lo).map(|k| i + k);
                let i = from(b.running.iter().position(|r| r.1 == b.hi));
                let amax = first(&f[i..], |x| x == b.hi).map(|k| i + k);
                (
                    0,
                    Some((same(b.lo), same(b.hi))),
                    (amin.and_then(at), amax.and_then(at)),
                )
            }
        };
        let sum = same(b.sum).widen();
        (extrema, sum, b.moments, None)
    }

    /// Combines two blocks' or chunks' results, as the parts' reducers do.
    fn merge<T: Numeric>(&self, a: SummaryAcc<T>, b: SummaryAcc<T>) -> SummaryAcc<T> {
        Reducer::<T>::combine(&self.parts, a, b)
    }
}

/// The summary's pass: [`SummaryReducer::fold_run`] on every chunk, the chunks' results
/// combined as a tree; `None` for no data.
fn run_summary<T: Numeric, P: Passes<T>>(
    p: &P,
    r: &SummaryReducer,
) -> Result<Option<SummaryAcc<T>>> {
    let chunks = p.pass(|start, c| r.fold_run(start, c))?;
    Ok(combine_tree(
        chunks.into_iter().flatten().collect(),
        &|a, b| r.merge(a, b),
    ))
}

/// One block at a time, for the strided per-lane summaries, which gather each lane's part
/// of a block of rows and fold it whole.
impl<T: Numeric> Reducer<T> for SummaryReducer {
    type Acc = SummaryAcc<T>;
    fn fold_chunk(&self, start: usize, chunk: &[T]) -> Self::Acc {
        // The whole chunk as one block.
        let whole = if let Some(f) = T::as_f64s(chunk) {
            self.fold_floats(start, f, f.len())
        } else if let Some(f) = T::as_f32s(chunk) {
            self.fold_floats(start, f, f.len())
        } else {
            None
        };
        whole.unwrap_or_else(|| self.parts.fold_chunk(start, chunk))
    }
    fn combine(&self, a: Self::Acc, b: Self::Acc) -> Self::Acc {
        self.merge(a, b)
    }
}

type SummaryAcc<T> = (
    <ExtremaReducer as Reducer<T>>::Acc,
    <T as Numeric>::Total,
    Moments,
    Option<Vec<u64>>,
);

fn summary_from<T: Numeric>(
    len: usize,
    acc: Option<SummaryAcc<T>>,
    ddof: u64,
    hist: Option<(HistogramReducer, Vec<u64>)>,
) -> Summary<T> {
    let ((nans, min_max, (amin, amax)), sum, moments, _) = acc.unwrap_or((
        (0, None, (None, None)),
        num_traits::Zero::zero(),
        Moments::EMPTY,
        None,
    ));
    Summary {
        count: len as u64,
        nan_count: nans,
        sum,
        mean: if len == 0 {
            f64::NAN
        } else {
            T::total_to_f64(sum) / len as f64
        },
        ddof,
        variance: moments.variance(ddof),
        std: moments.std(ddof),
        moments,
        min: min_max.map(|m| m.0),
        max: min_max.map(|m| m.1),
        argmin: amin.map(|a| a.0),
        argmax: amax.map(|a| a.0),
        histogram: hist.map(|(r, counts)| Histogram {
            edges: r.edges(),
            counts,
        }),
        percentiles: Vec::new(),
        passes: 0,
    }
}

/// The histogram range when none is given: the data's min and max, checked as
/// [`kernels::histogram`](super::histogram()) checks them.
fn data_range<T: Numeric>(min_max: Option<(T, T)>) -> Result<(f64, f64)> {
    let (lo, hi) = min_max.map_or((0.0, 1.0), |(a, b)| (a.as_(), b.as_()));
    if !(lo.is_finite() && hi.is_finite()) {
        return Err(Error::RangeNotFinite {
            lo,
            hi,
            from_data: true,
        });
    }
    Ok((lo, hi))
}

fn describe_in<T, P>(p: &P, o: &DescribeOptions) -> Result<Summary<T>>
where
    T: Numeric + SortKey,
    P: Passes<T>,
{
    let fixed = match (o.bins, o.range) {
        (0, _) => None,
        (bins, Some(r)) => Some(HistogramReducer::new(bins, r)?),
        (bins, None) => {
            // Checks `bins` before the pass.
            HistogramReducer::new(bins, (0.0, 1.0))?;
            None
        }
    };
    let r = SummaryReducer::new(fixed.clone());
    let acc = run_summary(p, &r)?;
    let len = p.data().len();
    let hist = match (fixed, acc.as_ref().and_then(|a| a.3.clone())) {
        (Some(h), Some(counts)) => Some((h, counts)),
        (Some(h), None) => Some((h, vec![0; o.bins])),
        (None, _) if o.bins > 0 => {
            let h = HistogramReducer::new(o.bins, data_range(acc.as_ref().and_then(|a| a.0 .1))?)?;
            // The second pass, only when there is data to count.
            let counts = if len == 0 {
                vec![0; o.bins]
            } else {
                run(p, &h)?.unwrap_or_else(|| vec![0; o.bins])
            };
            Some((h, counts))
        }
        (None, _) => None,
    };
    let mut s = summary_from(len, acc, o.ddof, hist);
    if !o.percentiles.is_empty() {
        let qs: Vec<f64> = o
            .percentiles
            .iter()
            .map(|&p| {
                let q = p / 100.0;
                if (0.0..=1.0).contains(&q) {
                    Ok(q)
                } else {
                    Err(Error::QuantileOutOfRange {
                        value: p,
                        max: 100.0,
                    })
                }
            })
            .collect::<Result<_>>()?;
        let values = quantiles_in(
            p,
            &qs,
            o.method,
            false,
            o.memory.unwrap_or(DEFAULT_QUANTILE_MEMORY),
        )?;
        s.percentiles = o.percentiles.iter().copied().zip(values).collect();
    }
    s.passes = p.count();
    Ok(s)
}

/// Count, NaN count, sum, mean, variance and standard deviation (with `ddof`), min, max,
/// argmin, argmax, and optionally a histogram and percentiles of `data`, in one pass (see
/// [`Summary::passes`]). Each statistic equals its separate kernel bit for bit
/// ([`sum`](super::sum), [`mean`](super::mean), [`moments`](super::moments),
/// [`min_max`](super::min_max), [`argmin`](super::argmin), [`argmax`](super::argmax),
/// [`histogram`](super::histogram()), [`percentiles`](super::percentiles)), for any thread
/// count: the pass runs the kernels' chunk loops on the same chunks and combines them in
/// the same tree.
///
/// Passes: 1; 2 when bins are asked for without a range (numpy's range is the data's min
/// and max, unknown until the first pass ends; no exact one-pass scheme exists, since a
/// value's bin depends on both ends in float arithmetic); plus the quantile passes for
/// percentiles (1 if the data fits their budget, else usually 2 or 3).
///
/// ```
/// use outcore::kernels::{self, DescribeOptions};
/// let v: Vec<i32> = (1..=100).collect();
/// let s = kernels::describe(&v, DescribeOptions::new().ddof(1).bins(4))?;
/// assert_eq!((s.count, s.sum, s.mean), (100, 5050, 50.5));
/// assert_eq!((s.min, s.max, s.argmax), (Some(1), Some(100), Some(99)));
/// assert_eq!(s.variance, kernels::variance(&v, 1));
/// let h = s.histogram.unwrap();
/// assert_eq!(h.edges, [1.0, 25.75, 50.5, 75.25, 100.0]);
/// assert_eq!(h.counts, [25, 25, 25, 25]);
/// assert_eq!(s.passes, 2); // no range given: the histogram took a second pass
/// # Ok::<(), outcore::Error>(())
/// ```
///
/// # Errors
/// [`Error::NoBins`], [`Error::RangeNotFinite`] or [`Error::RangeReversed`] for a
/// histogram's invalid bins or range, or no range and data with NaN or infinity (as
/// [`kernels::histogram`](super::histogram()));
/// [`Error::QuantileOutOfRange`] for a percentile outside `[0, 100]`;
/// [`Error::EmptyInput`] for percentiles of empty data.
pub fn describe<T: Numeric + SortKey>(data: &[T], opts: &DescribeOptions) -> Result<Summary<T>> {
    describe_with(data, opts, &ParOptions::new())
}

/// [`describe`] with options.
///
/// # Errors
/// As [`describe`], and [`Error::ThreadPool`] if the options' thread pool cannot be
/// started.
pub fn describe_with<T: Numeric + SortKey>(
    data: &[T],
    opts: &DescribeOptions,
    par: &ParOptions,
) -> Result<Summary<T>> {
    describe_in(&SlicePasses::new(data, par), opts)
}

/// The functions for mapped files, re-exported by [`stream`](crate::stream).
pub(crate) mod file {
    use super::*;

    /// [`kernels::describe`](crate::kernels::describe) of a mapped file, streaming it with
    /// `s` (use [`Stream::release_behind`] for files larger than memory); the same passes,
    /// the same results bit for bit as the slice kernels on the mapping.
    ///
    /// ```
    /// use outcore::kernels::{self, DescribeOptions};
    /// use outcore::stream::{self, Stream};
    /// use outcore::{MappedArray, MappedArrayMut, ParOptions};
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let path = dir.path().join("d.npy");
    /// let mut w = MappedArrayMut::<f32>::create(&path, &[10_000])?;
    /// w.iter_mut().enumerate().for_each(|(i, x)| *x = (i % 100) as f32);
    /// w.persist()?;
    /// let a = MappedArray::<f32>::open(&path)?;
    /// let mut s = Stream::new();
    /// s.release_behind(true);
    /// let d = stream::describe(&a, DescribeOptions::new().bins(10).range(0.0, 100.0), &ParOptions::new(), &s)?;
    /// assert_eq!(d.sum, kernels::sum(&a));
    /// assert_eq!(d.histogram.unwrap().counts, vec![1000; 10]);
    /// assert_eq!(d.passes, 1);
    /// # Ok::<(), outcore::Error>(())
    /// ```
    ///
    /// # Errors
    /// As [`kernels::describe`](crate::kernels::describe); [`Error::Truncated`] if the file
    /// shrank, [`Error::Io`] if an `madvise` or release fails.
    pub fn describe<T: Numeric + SortKey + Element>(
        a: &MappedArray<T>,
        opts: &DescribeOptions,
        par: &ParOptions,
        s: &Stream,
    ) -> Result<Summary<T>> {
        describe_in(&FilePasses::new(a, par, s), opts)
    }

    /// [`kernels::reduce_fused`](crate::kernels::reduce_fused) over a mapped file, streamed
    /// with `s`.
    ///
    /// # Errors
    /// [`Error::Truncated`] if the file shrank, [`Error::Io`] if an `madvise` or release
    /// fails, [`Error::ThreadPool`] if the thread pool cannot be started.
    pub fn reduce_fused<T: Numeric + Element, R: Reducer<T>>(
        a: &MappedArray<T>,
        r: &R,
        par: &ParOptions,
        s: &Stream,
    ) -> Result<Option<R::Acc>> {
        run(&FilePasses::new(a, par, s), r)
    }

    /// Per-lane summaries of a 2-D mapped file: one [`Summary`] per column for `axis` 0,
    /// per row for `axis` 1 (numpy's `axis=`), with the shape and memory order (C or
    /// Fortran) of the file, so a Fortran-ordered file gives the same columns as a C-ordered
    /// one. `argmin` / `argmax` are indexes along the lane (numpy's `a.argmin(axis=...)`).
    ///
    /// One pass. Lanes that are contiguous in memory (rows of a C-ordered file, columns of a
    /// Fortran-ordered one) are summarised as slices, equal bit for bit to
    /// [`kernels::describe_with`](crate::kernels::describe_with) on each lane. Strided lanes
    /// are read a block of rows at a time (about a chunk) and each lane's part is gathered
    /// into a buffer and folded with the same chunk loops, then merged in block order: exact
    /// for integers, min, max, argmin and argmax, and for float sums and moments as accurate
    /// as pairwise blocks of a chunk (numpy sums strided lanes by a plain running sum). A
    /// histogram per lane needs an explicit [`range`](DescribeOptions::range); percentiles
    /// per lane are not supported.
    ///
    /// # Errors
    /// [`Error::BadShape`] if the file is not 2-D; [`Error::BadAxis`] if `axis` is not 0 or
    /// 1; [`Error::UnsupportedOption`] if bins are asked without a range, or percentiles
    /// are asked; as [`describe`] otherwise.
    pub fn describe_axis<T: Numeric + SortKey + Element>(
        a: &MappedArray<T>,
        axis: usize,
        opts: &DescribeOptions,
        par: &ParOptions,
        s: &Stream,
    ) -> Result<Vec<Summary<T>>> {
        let &[rows, cols] = a.shape() else {
            return Err(Error::BadShape {
                what: "describe_axis".into(),
                shape: a.shape().to_vec(),
                reason: "not 2-D",
            });
        };
        super::axis::describe_lanes(a, rows, cols, a.is_fortran_order(), axis, opts, par, s)
    }
}

/// Per-lane summaries of 2-D data.
pub(crate) mod axis {
    use rayon::prelude::*;

    use super::*;

    #[allow(clippy::too_many_arguments)]
    pub(crate) fn describe_lanes<T: Numeric + SortKey + Element>(
        a: &MappedArray<T>,
        rows: usize,
        cols: usize,
        fortran: bool,
        axis: usize,
        o: &DescribeOptions,
        par: &ParOptions,
        s: &Stream,
    ) -> Result<Vec<Summary<T>>> {
        if axis > 1 {
            return Err(Error::BadAxis { axis, ndim: 2 });
        }
        if !o.percentiles.is_empty() {
            return Err(Error::UnsupportedOption {
                op: "describe_axis",
                reason: "percentiles are not computed per lane; take them with \
                         describe on each lane",
            });
        }
        let hist = match (o.bins, o.range) {
            (0, _) => None,
            (bins, Some(r)) => Some(HistogramReducer::new(bins, r)?),
            (_, None) => {
                return Err(Error::UnsupportedOption {
                    op: "describe_axis",
                    reason: "a histogram per lane needs a range; give one with \
                             DescribeOptions::range",
                })
            }
        };
        let r = SummaryReducer::new(hist.clone());
        let data = a.as_slice();
        // Lanes: `n_lanes` of `lane_len` elements. In memory, either each lane is
        // contiguous, or the lanes interleave (element i of lane k at i * n_lanes + k).
        let (n_lanes, lane_len) = if axis == 0 {
            (cols, rows)
        } else {
            (rows, cols)
        };
        let contiguous = (axis == 0) == fortran || n_lanes == 1 || lane_len == 1;
        let size = std::mem::size_of::<T>().max(1);
        let lag = crate::stream::RELEASE_LAG_BYTES / size;
        let finish = |acc: Option<SummaryAcc<T>>| {
            let counts = acc.as_ref().and_then(|a| a.3.clone());
            let h = hist
                .clone()
                .map(|h| (h, counts.unwrap_or_else(|| vec![0; o.bins])));
            let mut s = summary_from(lane_len, acc, o.ddof, h);
            s.passes = 1;
            s
        };
        let release = |range: std::ops::Range<usize>| -> Result<()> {
            if s.get_release_behind() {
                a.release(range.start.saturating_sub(lag)..range.end)?;
            }
            Ok(())
        };
        let mut out = Vec::with_capacity(n_lanes);
        if n_lanes == 0 {
            return Ok(out);
        }
        if contiguous {
            // Batches of whole lanes of about a window each; a lane longer than a chunk is
            // folded in parallel chunks, shorter ones in parallel with each other.
            let per_batch = (s.get_window_bytes() / (lane_len * size).max(1)).max(1);
            let mut k = 0;
            while k < n_lanes {
                let end = (k + per_batch).min(n_lanes);
                a.check_size()?;
                let accs = par.install(|| {
                    (k..end)
                        .into_par_iter()
                        .map(|l| {
                            let lane = &data[l * lane_len..(l + 1) * lane_len];
                            run_summary(&SlicePasses::new(lane, par), &r)
                        })
                        .collect::<Result<Vec<_>>>()
                })??;
                out.extend(accs.into_iter().map(finish));
                release(k * lane_len..end * lane_len)?;
                k = end;
            }
        } else {
            // Blocks of whole "rows" (one element of every lane) of about a chunk; each
            // block gathers every lane's part and folds it; blocks merge in order.
            let block = (par.get_chunk_bytes() / (n_lanes * size)).max(1);
            let n_blocks = lane_len.div_ceil(block);
            let mut accs: Vec<Option<SummaryAcc<T>>> = (0..n_lanes).map(|_| None).collect();
            let window_blocks = (s.get_window_bytes() / (block * n_lanes * size).max(1)).max(1);
            let mut b0 = 0;
            while b0 < n_blocks {
                let b1 = (b0 + window_blocks).min(n_blocks);
                a.check_size()?;
                // parts[block][lane]
                let parts: Vec<Vec<SummaryAcc<T>>> = par.install(|| {
                    (b0..b1)
                        .into_par_iter()
                        .map(|b| {
                            let i0 = b * block;
                            let i1 = ((b + 1) * block).min(lane_len);
                            let rows = &data[i0 * n_lanes..i1 * n_lanes];
                            let mut buf = Vec::with_capacity(i1 - i0);
                            (0..n_lanes)
                                .map(|l| {
                                    buf.clear();
                                    buf.extend(rows.iter().skip(l).step_by(n_lanes).copied());
                                    r.fold_chunk(i0, &buf)
                                })
                                .collect()
                        })
                        .collect()
                })?;
                // Merge this window's blocks per lane as a tree, then into the total.
                let mut per_lane: Vec<Vec<SummaryAcc<T>>> =
                    (0..n_lanes).map(|_| Vec::with_capacity(b1 - b0)).collect();
                for p in parts {
                    for (l, acc) in p.into_iter().enumerate() {
                        per_lane[l].push(acc);
                    }
                }
                for (total, blocks) in accs.iter_mut().zip(per_lane) {
                    let w = combine_tree(blocks, &|x, y| r.combine(x, y));
                    *total = match (total.take(), w) {
                        (Some(t), Some(w)) => Some(r.combine(t, w)),
                        (t, w) => t.or(w),
                    };
                }
                release(b0 * block * n_lanes..(b1 * block).min(lane_len) * n_lanes)?;
                b0 = b1;
            }
            out.extend(accs.into_iter().map(finish));
        }
        Ok(out)
    }
}
