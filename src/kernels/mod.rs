//! Parallel kernels over plain slices: map, zip, reductions, statistics, scan, filter and
//! axis reductions of 2-D arrays.
//!
//! Every kernel takes `&[T]` / `&mut [T]`, so it runs the same on a `Vec` and on a mapped
//! file ([`MappedArray`](crate::MappedArray) derefs to a slice). Each has a one-line form
//! (`kernels::sum(&data)`) that uses the default [`ParOptions`], and a `_with` twin that
//! takes options (thread count, chunk size) and returns a [`Result`] because a dedicated
//! thread pool may fail to start. In every twin the options come after the data and the
//! parameters and before any closure: `variance_with(&v, ddof, &opts)`,
//! `count_with(&v, &opts, |x| ...)`.
//!
//! ```
//! use outcore::kernels;
//! let v: Vec<f64> = (1..=1000).map(f64::from).collect();
//! assert_eq!(kernels::sum(&v), 500_500.0);
//! assert_eq!(kernels::min_max(&v), Some((1.0, 1000.0)));
//! assert_eq!(kernels::argmax(&v), Some(999));
//! ```
//!
//! # Design notes
//!
//! - **Chunks.** Work is split into the page-aligned chunks of [`crate::chunk`]. The split
//!   depends only on the slice's address, its length and the chunk size, never on the
//!   thread count, and per-chunk results are combined in chunk order. So every result,
//!   floats included, is bit-for-bit identical for any thread count; changing the chunk
//!   size may change the last bits of a float result (the summation tree changes).
//! - **Vectorisation.** Hot loops keep [`LANES`] independent accumulators in a fixed-size
//!   array and walk the data in `chunks_exact(LANES)`, so the compiler turns them into SIMD
//!   with no bounds checks and no loop-carried dependency on a single register. Min/max
//!   detect NaN without a branch by adding `x - x` into a lane (0 for every finite `x`,
//!   NaN for NaN and ±inf); only if that lane ends up NaN is the chunk searched for a real
//!   NaN. A `bool` flag per lane measured about half as fast (it did not vectorise well).
//!   The crate is built for baseline x86-64 (SSE2); the hottest loops (min/max, the
//!   histogram, the fused summary) are also compiled for AVX2 and AVX-512 and chosen at run
//!   time ([`crate::cpu`]).
//! - **Float sums** are pairwise: blocks of [`PAIRWISE_BLOCK`] elements summed in
//!   [`LANES`] lanes, blocks combined as a balanced tree, chunk totals combined as a tree
//!   too. The error grows as `O(log n)` like numpy's pairwise sum (which uses blocks of
//!   128 in 8 lanes).
//! - **Integer sums** never wrap: they return `i128` / `u128`. Narrow types accumulate in
//!   64-bit lanes per bounded block; 64-bit types are summed as two 32-bit halves in 64-bit
//!   lanes, which stays exact and vectorises (a 128-bit add per element would not).
//! - **Moments** (mean, variance) are computed per block of [`MOMENT_BLOCK`] elements in
//!   two passes over the block while it is in L1 (mean, then squared deviations), and the
//!   blocks' `(count, mean, M2)` are merged with the formula of Chan, Golub and LeVeque.
//!   That is as stable as a two-pass variance over the whole array, in one pass over memory.
//! - **The fused summary** ([`describe`], [`reduce_fused`]) folds each block of
//!   [`REDUCE_BLOCK_BYTES`] once for all its statistics. For `f32` and `f64` it is one loop
//!   per part of [`MOMENT_BLOCK`] elements that keeps the separate kernels' accumulators side
//!   by side (the pairwise sum's, the moments', min/max) and bins the part while it is in
//!   L1, so each result is still the separate kernel's bit for bit. The histogram's bin
//!   search skips numpy's edge comparisons where the computed index is provably far from
//!   an edge, and counts up to 64 bins by pairs of values.
//! - **NaN** follows numpy: `sum`, `mean`, `variance`, `min`, `max` propagate NaN; `argmin`
//!   and `argmax` return the index of the first NaN. The `nan*` variants skip NaN. NaN is
//!   detected as `x != x`, which is false for every integer, so one generic code path
//!   serves all element types.
//! - **Scan** reads the data twice: once to get each chunk's total (and, for integers, the
//!   range of its local prefix sums, so an overflow is found before anything is written),
//!   then writes each chunk's prefix sums starting from the total of the chunks before it.
//! - **Filter** also reads twice: per-chunk counts, prefix offsets, then a parallel copy
//!   where each chunk writes its own disjoint part of the output. The predicate must
//!   therefore be a pure function.
//! - **Mapped files.** Hints that only a mapping can use (access advice, releasing pages a
//!   scan has passed) are not inside the kernels: [`crate::stream`] runs slice kernels chunk
//!   by chunk (or window by window) over a [`MappedArray`](crate::MappedArray) and releases
//!   what they have passed, so a pass over a file larger than memory stays within a cap.
//! - **Outputs.** Kernels whose result is a new `.npy` file ([`map_to_file`],
//!   [`filter_to_file`]) live together in `to_file.rs` with the sink they write through.

use std::fmt::Debug;
use std::ops::{Add, Sub};

use num_traits::{AsPrimitive, Bounded, NumCast, Zero};
use rayon::prelude::*;

use crate::chunk::{self, ParOptions};
use crate::error::Result;

mod axis;
mod filter;
mod fused;
mod histogram;
mod map;
pub(crate) mod passes;
pub(crate) mod quantile;
mod reduce;
mod scan;
mod stats;
pub(crate) mod summary;
mod to_file;

pub use axis::{axis_stats, axis_stats_with, AxisStats};
pub use filter::{filter_into, filter_into_with, filter_to_vec, filter_to_vec_with};
pub use histogram::{histogram, histogram_with};
pub use map::{map_in_place, map_in_place_with, map_into, map_into_with, zip_into, zip_into_with};
pub use quantile::{
    kth, kth_with, median, median_with, nanmedian, nanmedian_with, nanpercentiles,
    nanpercentiles_with, nanquantiles, nanquantiles_with, percentiles, percentiles_with, quantiles,
    quantiles_with, QuantileMethod, QuantileOptions, QuantileValue, Quantiles,
    DEFAULT_QUANTILE_MEMORY,
};
pub use reduce::{
    argmax, argmax_with, argmin, argmin_with, count, count_with, finite_range, finite_range_with,
    fold_chunks, max, max_with, min, min_max, min_max_with, min_with, nanmax, nanmax_with, nanmin,
    nanmin_with, nansum, nansum_with, reduce, sum, sum_with,
};
pub use scan::{cumsum_in_place, cumsum_in_place_with, cumsum_into, cumsum_into_with};
pub use stats::{
    mean, mean_with, moments, moments_with, nanmean, nanmean_with, nanmoments, nanmoments_with,
    nanvar, nanvar_with, std, std_with, variance, variance_with, Moments,
};
pub use summary::{
    describe, describe_with, reduce_fused, reduce_fused_with, reducer, ArgMaxReducer,
    ArgMinReducer, DescribeOptions, FnReducer, Histogram, HistogramReducer, MinMaxReducer,
    MomentsReducer, NanCountReducer, Reducer, SumReducer, Summary,
};
pub use to_file::{filter_to_file, filter_to_file_with, map_to_file, map_to_file_with};

/// Independent accumulators in the vectorised loops: 16 lanes of `f64` fill eight SSE2
/// registers (enough to hide the add latency) or two AVX-512 registers.
pub const LANES: usize = 16;

/// Elements per leaf of the pairwise float sum: 16 per lane, as numpy (128 in 8 lanes), so
/// the error bound is no worse than numpy's.
pub const PAIRWISE_BLOCK: usize = 256;

/// Elements per block of the two-pass moment computation (4 KiB of `f64`: stays in L1).
///
/// Also the part of the fused summary's loop. Small parts keep memory busy: a part is read
/// from memory once and then worked on in L1 (its second moment pass, its bins), and the
/// shorter that work, the sooner the next part's reads start. Over data in memory on two
/// threads, the summary with a 64-bin histogram ran 1.25× as fast with 512 as with 2048,
/// the histogram alone 1.37×, the summary without a histogram and the moments as fast
/// (BENCHMARKS.md).
pub const MOMENT_BLOCK: usize = 512;

mod sealed {
    pub trait Sealed {}
}

/// The numeric element types the kernels reduce: `u8`…`u64`, `i8`…`i64`, `f32`, `f64`.
///
/// The trait is sealed; it ties each type to the accumulator its sums use and to the
/// vectorised serial loops the parallel kernels run on each chunk.
pub trait Numeric:
    Copy
    + Send
    + Sync
    + PartialOrd
    + Debug
    + Add<Output = Self>
    + Sub<Output = Self>
    + Zero
    + Bounded
    + NumCast
    + AsPrimitive<f64>
    + sealed::Sealed
    + 'static
{
    /// What sums return: `i128` for signed integers, `u128` for unsigned, the type itself
    /// for floats. Wide enough that no sum of a slice can overflow.
    type Total: Copy
        + Send
        + Sync
        + Debug
        + PartialEq
        + PartialOrd
        + Add<Output = Self::Total>
        + Zero;

    /// Whether this is a floating-point type.
    const IS_FLOAT: bool;

    /// The serial (one-thread) sum of a slice: vectorised, pairwise for floats, exact for
    /// integers.
    fn sum_serial(s: &[Self]) -> Self::Total;

    /// The serial sum of a slice ignoring NaN (the same as [`Numeric::sum_serial`] for
    /// integers).
    fn nansum_serial(s: &[Self]) -> Self::Total;

    /// `self` as the sum type.
    fn widen(self) -> Self::Total;

    /// A sum converted back to the element type, if it fits.
    fn narrow(t: Self::Total) -> Option<Self>;

    /// A sum as `f64` (rounded).
    fn total_to_f64(t: Self::Total) -> f64;

    /// The slice as `f64`s if this is `f64` (for the loops written for one float type).
    #[doc(hidden)]
    fn as_f64s(_: &[Self]) -> Option<&[f64]> {
        None
    }

    /// The slice as `f32`s if this is `f32`.
    #[doc(hidden)]
    fn as_f32s(_: &[Self]) -> Option<&[f32]> {
        None
    }
}

/// Whether `x` is NaN. For integers `x != x` is always false and the check compiles away.
#[inline(always)]
#[allow(clippy::eq_op)]
pub(crate) fn is_nan<T: PartialOrd>(x: T) -> bool {
    x != x
}

macro_rules! numeric_signed {
    ($($t:ty => $narrow_lanes:expr),*) => {$(
        impl sealed::Sealed for $t {}
        impl Numeric for $t {
            type Total = i128;
            const IS_FLOAT: bool = false;
            fn sum_serial(s: &[Self]) -> i128 {
                reduce::int_sum_signed(s, $narrow_lanes)
            }
            fn nansum_serial(s: &[Self]) -> i128 {
                Self::sum_serial(s)
            }
            #[inline(always)]
            fn widen(self) -> i128 {
                self as i128
            }
            fn narrow(t: i128) -> Option<Self> {
                <$t>::try_from(t).ok()
            }
            fn total_to_f64(t: i128) -> f64 {
                t as f64
            }
        }
    )*};
}

macro_rules! numeric_unsigned {
    ($($t:ty => $narrow_lanes:expr),*) => {$(
        impl sealed::Sealed for $t {}
        impl Numeric for $t {
            type Total = u128;
            const IS_FLOAT: bool = false;
            fn sum_serial(s: &[Self]) -> u128 {
                reduce::int_sum_unsigned(s, $narrow_lanes)
            }
            fn nansum_serial(s: &[Self]) -> u128 {
                Self::sum_serial(s)
            }
            #[inline(always)]
            fn widen(self) -> u128 {
                self as u128
            }
            fn narrow(t: u128) -> Option<Self> {
                <$t>::try_from(t).ok()
            }
            fn total_to_f64(t: u128) -> f64 {
                t as f64
            }
        }
    )*};
}

// The flag says whether the type is narrow enough to sum directly in 64-bit lanes.
numeric_signed!(i8 => true, i16 => true, i32 => true, i64 => false);
numeric_unsigned!(u8 => true, u16 => true, u32 => true, u64 => false);

macro_rules! numeric_float {
    ($($t:ty => $as_self:ident),*) => {$(
        impl sealed::Sealed for $t {}
        impl Numeric for $t {
            type Total = $t;
            const IS_FLOAT: bool = true;
            fn sum_serial(s: &[Self]) -> $t {
                reduce::pairwise_sum::<$t, false>(s)
            }
            fn nansum_serial(s: &[Self]) -> $t {
                reduce::pairwise_sum::<$t, true>(s)
            }
            #[inline(always)]
            fn widen(self) -> $t {
                self
            }
            fn narrow(t: $t) -> Option<Self> {
                Some(t)
            }
            fn total_to_f64(t: $t) -> f64 {
                t as f64
            }
            fn $as_self(s: &[Self]) -> Option<&[Self]> {
                Some(s)
            }
        }
    )*};
}

numeric_float!(f32 => as_f32s, f64 => as_f64s);

/// Bytes per block of the reductions: each chunk is folded in blocks of this size, the
/// blocks' results are combined as a tree into the chunk's, and the chunks' as a tree. A block stays in L2 while every statistic of a
/// fused pass ([`describe`], [`reduce_fused`]) reads it, so fusing `k` statistics costs one
/// read of memory, not `k`; the separate kernels fold the same blocks, so the fused results
/// are theirs bit for bit.
pub const REDUCE_BLOCK_BYTES: usize = 256 << 10;

/// Elements of `T` per reduction block ([`REDUCE_BLOCK_BYTES`]).
pub(crate) fn block_len<T>() -> usize {
    (REDUCE_BLOCK_BYTES / std::mem::size_of::<T>().max(1)).max(1)
}

/// Runs `f(start, block)` on the blocks of at most [`REDUCE_BLOCK_BYTES`] of every chunk
/// (from the chunk's start), the chunks in parallel, combines each chunk's block results as
/// a tree with `combine`, and returns the chunks' results in order (none for an empty
/// chunk). One result per chunk is kept, not one per block.
pub(crate) fn per_block<T, R, F, C>(
    data: &[T],
    opts: &ParOptions,
    f: F,
    combine: C,
) -> Result<Vec<R>>
where
    T: Sync,
    R: Send,
    F: Fn(usize, &[T]) -> R + Sync + Send,
    C: Fn(R, R) -> R + Sync + Send,
{
    let parts = per_chunk(data, opts, |start, c| {
        fold_blocks_of(start, c, &f, &combine)
    })?;
    Ok(parts.into_iter().flatten().collect())
}

/// `f(start, block)` on the consecutive blocks of one chunk that starts at `start`, combined
/// as a tree; `None` for an empty chunk.
pub(crate) fn fold_blocks_of<T, R>(
    start: usize,
    c: &[T],
    f: &impl Fn(usize, &[T]) -> R,
    combine: &impl Fn(R, R) -> R,
) -> Option<R> {
    let n = block_len::<T>();
    let parts = c
        .chunks(n)
        .enumerate()
        .map(|(i, b)| f(start + i * n, b))
        .collect();
    combine_tree(parts, combine)
}

/// Runs `f` on every chunk of `data` in parallel and returns the results in chunk order.
pub(crate) fn per_chunk<T, R, F>(data: &[T], opts: &ParOptions, f: F) -> Result<Vec<R>>
where
    T: Sync,
    R: Send,
    F: Fn(usize, &[T]) -> R + Sync + Send,
{
    // One chunk: run it here; waking a pool thread would cost more than small inputs take.
    if opts.plan(data).len() == 1 {
        return Ok(vec![f(0, data)]);
    }
    opts.install(|| {
        chunk::par_chunks(data, opts)
            .map(|(start, c)| f(start, c))
            .collect()
    })
}

/// Combines `parts` as a balanced tree, keeping their order: more accurate than a running
/// total for float sums, and the same result for any associative operation.
pub(crate) fn combine_tree<A>(mut parts: Vec<A>, combine: &impl Fn(A, A) -> A) -> Option<A> {
    while parts.len() > 1 {
        let mut next = Vec::with_capacity(parts.len().div_ceil(2));
        let mut it = parts.into_iter();
        while let Some(a) = it.next() {
            match it.next() {
                Some(b) => next.push(combine(a, b)),
                None => next.push(a),
            }
        }
        parts = next;
    }
    parts.pop()
}

/// The default options the one-line forms use. Running on rayon's global pool cannot fail.
pub(crate) fn defaults<R>(r: Result<R>) -> R {
    r.expect("the global rayon pool is always available")
}
