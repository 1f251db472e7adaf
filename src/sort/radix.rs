//! The parallel radix sort behind every in-memory sort: one MSD pass out of cache, then an
//! LSD radix sort of each bucket inside the cache.
//!
//! # Algorithm
//!
//! Elements are sorted by a `u64` radix key (the top 64 bits of their [`SortKey`]'s key, see
//! [`RadixKey`](super::RadixKey)), computed on the fly at every pass. Throughout, the sort
//! tracks `mask`, a superset of the bits in which keys differ: bits in which every key
//! agrees are never sorted on, so keys that span a small range (or share a prefix) cost
//! fewer passes, and an input of equal keys costs one read.
//!
//! 1. **MSD pass** (inputs larger than [`Tuning::leaf`]): the top `w` bits of `mask`, with
//!    `w` chosen so that buckets hold about half a leaf (at most [`MSD_MAX_BITS`]), are
//!    histogrammed per block (contiguous blocks, a few per thread); the same read ORs
//!    `key(x) ^ key(first)` to learn the exact `mask` (if the digit turns out constant, the
//!    pass moves nothing and starts over on the varying bits). Prefix sums give every
//!    (bucket, block) pair its own range of the scratch buffer, and the blocks scatter into
//!    their ranges in parallel. For uniform keys this is the only pass whose reads and
//!    writes miss the cache.
//! 2. **Buckets** are then independent: rayon spreads them over the threads (work stealing
//!    balances skewed sizes). A bucket that is still larger than a leaf (skewed keys, such
//!    as floats whose exponents cluster) goes through another MSD pass, itself parallel when
//!    it is large.
//! 3. **Leaves** (both the leaf and its range of the scratch buffer fit in L2) are sorted by
//!    one thread with a *diverting* LSD radix sort, after voracious_radix_sort: LSD passes of
//!    at most [`LSD_MAX_BITS`]-bit digits on only the top `log2(n) + DIVERT_BITS` bits of
//!    `mask`, or [`LSD_FILL_BITS`] per pass if that is more (one read counts every digit;
//!    constant digits are skipped), ping-ponging between
//!    the leaf's range of the input and of the scratch buffer. For uniform 64-bit keys that
//!    is two passes instead of five. Elements whose top bits are then equal form groups of
//!    mostly one element, finished by insertion sort while the leaf is moved to where its
//!    result belongs; a larger group (keys that share their top bits and differ below) is
//!    sorted recursively on its remaining bits, so no input goes quadratic. Leaves of at
//!    most [`Tuning::small`] elements use a comparison sort. A bucket of a table split
//!    (skewed keys) is sorted on its keys less the start of its first digit ([`Span`]):
//!    its ends fall anywhere, and a range across a power of two varies in every bit below
//!    it, which would waste the LSD passes' bits.
//!
//! Every step is stable (blocks are scattered in order, LSD and insertion sort are stable,
//! the comparison sort is `sort_by_key`), so the whole sort is stable.
//!
//! # Memory
//!
//! One scratch buffer as large as the input (`n * size_of::<T>()` bytes), allocated zeroed so
//! that the allocator hands out fresh pages without a pass that initialises them. Nothing
//! else grows with `n` except per-block histograms (`8 << MSD_MAX_BITS` bytes per block).
//!
//! That buffer is also this design's main cost against an in-place sort: at 10^8 `u64`, the
//! first touch of its 800 MB (page faults, zeroing by the kernel) and its release measured
//! roughly a quarter of the sort's wall time (BENCHMARKS.md).
//!
//! # Why no `unsafe`
//!
//! The parallel scatter needs disjoint concurrent writes into one buffer. Instead of raw
//! pointers, the scratch buffer is carved with `split_at_mut` into one sub-slice per
//! (bucket, block) pair, sized by the histograms; each block owns its sub-slices and fills
//! them front to back. The bounds checks this costs are predictable branches.
//!
//! [`SortKey`]: super::SortKey

use rayon::prelude::*;

use crate::cpu::{multiversion, Isa};

/// Widest digit of an MSD pass: 4096 buckets. Wider digits make the scatter miss the TLB on
/// nearly every write.
pub(crate) const MSD_MAX_BITS: u32 = 12;

/// Widest digit of an LSD pass over a leaf: 2048 counters (8 KiB) stay in L1.
pub(crate) const LSD_MAX_BITS: u32 = 11;

/// Size thresholds of the sort. The defaults are measured (BENCHMARKS.md); tests shrink them
/// to reach every path with small inputs.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Tuning {
    /// At most this many elements: comparison sort.
    pub(crate) small: usize,
    /// At most this many elements: one thread's LSD sort (input and scratch in L2).
    pub(crate) leaf: usize,
    /// At least this many elements: passes over the whole input run on all threads.
    pub(crate) par_min: usize,
    /// The instruction set the hot loops are compiled for.
    pub(crate) isa: Isa,
}

impl Default for Tuning {
    fn default() -> Tuning {
        Tuning::for_size(8)
    }
}

impl Tuning {
    /// The thresholds for elements of `size` bytes: a leaf and its scratch take 512 KiB,
    /// half of a Zen 4 core's L2.
    pub(crate) fn for_size(size: usize) -> Tuning {
        let leaf = ((256 << 10) / size.max(1)).max(64);
        Tuning {
            small: 256.min(leaf / 2),
            leaf,
            par_min: leaf * 4,
            isa: Isa::active(),
        }
    }
}

/// Stably sorts `data` by `key` in parallel (on the current rayon pool). The scratch buffer
/// is taken from `reuse` when given (grown if needed, kept for the next sort), else
/// allocated for this sort.
pub(crate) fn sort<T, F>(data: &mut [T], key: &F, reuse: Option<&mut Vec<u128>>)
where
    T: bytemuck::Pod + Send + Sync,
    F: Fn(&T) -> u64 + Sync,
{
    let tuning = Tuning::for_size(std::mem::size_of::<T>());
    sort_with_tuning(data, key, &tuning, reuse);
}

/// [`sort`] with explicit thresholds.
pub(crate) fn sort_with_tuning<T, F>(
    data: &mut [T],
    key: &F,
    tuning: &Tuning,
    reuse: Option<&mut Vec<u128>>,
) where
    T: bytemuck::Pod + Send + Sync,
    F: Fn(&T) -> u64 + Sync,
{
    if data.len() <= tuning.small.max(1) {
        data.sort_by_key(key);
        return;
    }
    // Large inputs learn the bits in which keys differ during the MSD pass's count.
    let mask = if data.len() <= tuning.leaf {
        diff_mask(data, key, tuning)
    } else {
        u64::MAX
    };
    if mask == 0 {
        return;
    }
    with_scratch(data.len(), reuse, |scratch| {
        sort_between(data, scratch, key, mask, false, tuning)
    });
}

/// Runs `f` on a scratch slice of `n` elements.
///
/// `vec![0u128; m]` is allocated with `calloc`, which for large sizes maps fresh zero pages
/// without writing them: the scratch buffer costs no initialising pass, only the page faults
/// of its first touch, taken by the threads of the MSD scatter. It is viewed as `[T]`
/// through bytemuck's checked casts (types aligned beyond 16 bytes, which no sort key is,
/// take a plain `Vec<T>`).
///
/// Measured alternatives (BENCHMARKS.md): pre-faulting (`MAP_POPULATE`, or a parallel touch)
/// only moves the same cost; transparent huge pages (`MADV_HUGEPAGE`) halve the scatter
/// once the kernel has free huge pages, but the first sort in a process stalled for seconds
/// in memory compaction.
///
/// A buffer given in `reuse` (already faulted in by an earlier sort) is used instead when its
/// elements can be viewed as `T`, grown first if it is too small.
fn with_scratch<T: bytemuck::Pod, R>(
    n: usize,
    reuse: Option<&mut Vec<u128>>,
    f: impl FnOnce(&mut [T]) -> R,
) -> R {
    let bytes = n * std::mem::size_of::<T>();
    if bytes == 0 || std::mem::align_of::<T>() > 16 {
        return f(&mut vec![T::zeroed(); n]);
    }
    let mut own;
    let buf = match reuse {
        Some(buf) => {
            if buf.len() < bytes.div_ceil(16) {
                // Drop the old buffer first, so that growing never holds both.
                *buf = Vec::new();
                *buf = vec![0u128; bytes.div_ceil(16)];
            }
            buf
        }
        None => {
            own = vec![0u128; bytes.div_ceil(16)];
            &mut own
        }
    };
    let raw: &mut [u8] = bytemuck::cast_slice_mut(&mut buf[..]);
    f(bytemuck::cast_slice_mut(&mut raw[..bytes]))
}

/// The bits in which the keys of `data` differ (0 if all keys are equal or `data` is empty).
pub(crate) fn diff_mask<T, F>(data: &[T], key: &F, tuning: &Tuning) -> u64
where
    T: Sync,
    F: Fn(&T) -> u64 + Sync,
{
    let Some(first) = data.first() else {
        return 0;
    };
    let k0 = key(first);
    let fold = |c: &[T]| fold_diff_isa(tuning.isa, c, key, k0);
    if data.len() >= tuning.par_min && rayon::current_num_threads() > 1 {
        data.par_chunks(tuning.par_min / 2)
            .map(fold)
            .reduce(|| 0, |a, b| a | b)
    } else {
        fold(data)
    }
}

multiversion! {
    /// [`fold_diff`] for `isa`.
    pub(crate) fn fold_diff_isa[T, F: Fn(&T) -> u64](data: &[T], key: &F, k0: u64) -> u64
        => fold_diff;
}

/// The OR of `key(x) ^ k0` over `data`: the bits in which keys differ from `k0`.
#[inline(always)]
pub(crate) fn fold_diff<T, F: Fn(&T) -> u64>(data: &[T], key: &F, k0: u64) -> u64 {
    data.iter().fold(0u64, |m, x| m | (key(x) ^ k0))
}

/// How to sort a group of keys that all lie in one range: on `key - base`, whose bits vary
/// at most in `mask`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Span {
    /// Subtracted from every key (0: the keys are taken as they are).
    pub(crate) base: u64,
    /// A superset of the bits in which the keys, less `base`, differ (0: all equal).
    pub(crate) mask: u64,
}

impl Span {
    /// The keys as they are, differing at most in `mask`.
    pub(crate) fn bits(mask: u64) -> Span {
        Span { base: 0, mask }
    }

    /// This span, for keys known to differ at most in `mask` as well.
    pub(crate) fn within(self, mask: u64) -> Span {
        if self.base == 0 {
            Span::bits(self.mask & mask)
        } else {
            // The bits below `mask`'s lowest are the same in every key: so they are in
            // every key less the base.
            Span {
                base: self.base,
                mask: self.mask & !low_bits(mask.trailing_zeros()),
            }
        }
    }

    /// The span of keys from `lo` to `hi` that differ from each other at most in the bits
    /// `diff`: relative to `lo` when that narrows their top varying bit. A range that
    /// straddles a power of two (a bucket of a table split, whose ends fall anywhere) varies
    /// in every bit below the one it crosses, though it may be far narrower: its LSD sort
    /// would spend its bits on the top of that mask and leave groups of many equal digits
    /// to the finishing pass.
    fn from_range(lo: u64, hi: u64, diff: u64) -> Span {
        if diff == 0 {
            return Span::bits(0);
        }
        // `hi - lo` keeps the bits in which all keys agree with `lo` at the bottom.
        let range =
            low_bits(u64::BITS - (hi - lo).leading_zeros()) & !low_bits(diff.trailing_zeros());
        if range.leading_zeros() > diff.leading_zeros() {
            Span {
                base: lo,
                mask: range,
            }
        } else {
            Span::bits(diff)
        }
    }
}

/// [`sort_between`] on the keys of `span`, less its base if any.
///
/// Only a leaf is sorted on keys less a base: a larger input is sorted on its keys as they
/// are, whose bits vary at most below the top bit in which the span's ends differ. (That
/// also keeps the key types finite: the leaf sort never nests another base.)
pub(crate) fn sort_span<T, F>(
    src: &mut [T],
    dst: &mut [T],
    key: &F,
    span: Span,
    out_in_dst: bool,
    tuning: &Tuning,
) where
    T: bytemuck::Pod + Send + Sync,
    F: Fn(&T) -> u64 + Sync,
{
    let base = span.base;
    if base == 0 {
        sort_between(src, dst, key, span.mask, out_in_dst, tuning);
    } else if src.len() <= tuning.leaf {
        let rel = move |x: &T| key(x).wrapping_sub(base);
        sort_leaf(src, dst, &rel, span.mask, out_in_dst, tuning);
    } else {
        // Every key lies in `base..=base + low_bits(top of mask)`.
        let top = low_bits(u64::BITS - span.mask.leading_zeros());
        let ends = base ^ base.saturating_add(top);
        let mask = low_bits(u64::BITS - ends.leading_zeros());
        sort_between(src, dst, key, mask, out_in_dst, tuning);
    }
}

/// Sorts the elements in `src`, using `dst` (same length) as scratch; the result ends in
/// `dst` if `out_in_dst`, else in `src`. `mask`: a superset of the bits in which the keys
/// differ.
pub(crate) fn sort_between<T, F>(
    src: &mut [T],
    dst: &mut [T],
    key: &F,
    mask: u64,
    out_in_dst: bool,
    tuning: &Tuning,
) where
    T: bytemuck::Pod + Send + Sync,
    F: Fn(&T) -> u64 + Sync,
{
    if src.len() <= tuning.leaf {
        sort_leaf(src, dst, key, mask, out_in_dst, tuning);
    } else if mask != 0 {
        msd(src, dst, key, mask, out_in_dst, tuning);
    } else if out_in_dst {
        dst.copy_from_slice(src);
    }
}

/// [`sort_between`] for at most a leaf: a comparison sort or [`lsd`].
///
/// Kept out of line, as is [`lsd`]: inlined into their callers, they made 10^8 uniform
/// `u64` sort about 5% slower on one thread (alternated runs; the profile put the extra
/// time in [`finish_groups`]' scan, whose code had not changed).
#[inline(never)]
fn sort_leaf<T, F>(
    src: &mut [T],
    dst: &mut [T],
    key: &F,
    mask: u64,
    out_in_dst: bool,
    tuning: &Tuning,
) where
    T: bytemuck::Pod + Send + Sync,
    F: Fn(&T) -> u64 + Sync,
{
    if src.len() <= tuning.small {
        src.sort_by_key(key);
    } else if mask != 0 {
        return lsd(src, dst, key, mask, out_in_dst, tuning);
    }
    if out_in_dst {
        dst.copy_from_slice(src);
    }
}

/// One MSD pass (`src` → `dst`), then the buckets in parallel.
///
/// The digit is the top varying bits of `mask`, as many as give buckets of about half a
/// leaf, unless a sample shows that skewed keys (floats, whose exponents cluster) would then
/// leave a bucket larger than a leaf: such keys would take a pass for every few bits their
/// heavy digits share. Then a table over the top [`TABLE_BITS`] bits gives the buckets
/// equal shares of the sample instead ([`bucket_table`]), as the in-place partition does.
fn msd<T, F>(src: &mut [T], dst: &mut [T], key: &F, mask: u64, out_in_dst: bool, tuning: &Tuning)
where
    T: bytemuck::Pod + Send + Sync,
    F: Fn(&T) -> u64 + Sync,
{
    let n = src.len();
    let top = 63 - mask.leading_zeros();
    // Buckets of about half a leaf, so that nearly all of them are leaves.
    let want = (n / (tuning.leaf / 2).max(1))
        .max(2)
        .next_power_of_two()
        .trailing_zeros();
    let w = want.clamp(1, MSD_MAX_BITS).min(top + 1);
    let tbits = (top + 1).min(TABLE_BITS);
    let tshift = top + 1 - tbits;
    let tmask = (1u64 << tbits) - 1;
    let table_digit = move |k: u64| ((k >> tshift) & tmask) as usize;
    // A table holds at most 256 buckets (one byte each): wider splits (inputs of over a few
    // million elements) stay on the bits, and a heavy bucket gets another pass.
    let table = if tbits > w && w <= 8 {
        let buckets = 1usize << w;
        let sample = (SAMPLE_PER_BUCKET * buckets).min(n);
        bucket_table(
            src,
            &|x: &T| table_digit(key(x)),
            tbits,
            buckets,
            tuning.leaf / 4 * 3,
            sample,
        )
    } else {
        None
    };
    match table {
        None => {
            let shift = top + 1 - w;
            let dmask = (1u64 << w) - 1;
            let below = low_bits(shift);
            msd_pass(
                src,
                dst,
                key,
                mask,
                out_in_dst,
                tuning,
                1 << w,
                &move |k: u64| ((k >> shift) & dmask) as usize,
                Some(dmask << shift),
                &|_| Span::bits(below),
            );
        }
        Some(table) => {
            let high = key(&src[0]) & !low_bits(top + 1);
            let spans = table_spans(&table, tshift, high);
            let tab: &[u8] = &table;
            msd_pass(
                src,
                dst,
                key,
                mask,
                out_in_dst,
                tuning,
                spans.len(),
                &move |k: u64| tab[table_digit(k)] as usize,
                None,
                &|b| spans[b],
            );
        }
    }
}

/// Sampled elements per bucket when [`msd`] looks for skew: enough that a uniform input's
/// largest bucket is rarely estimated above 3/4 of a leaf when its buckets hold half of one.
const SAMPLE_PER_BUCKET: usize = 64;

/// Key bits a bucket table covers: 2^16 one-byte entries (64 KiB, in L2).
pub(crate) const TABLE_BITS: u32 = 16;

/// A mask of the `k` lowest bits.
pub(crate) fn low_bits(k: u32) -> u64 {
    if k >= 64 {
        u64::MAX
    } else {
        (1u64 << k) - 1
    }
}

/// For each bucket of `table` (over the key bits from `shift` up, the bits above them `high`
/// in every key), the span of its keys, known without reading them: from its first digit
/// to the end of its last ([`Span::from_range`]).
pub(crate) fn table_spans(table: &[u8], shift: u32, high: u64) -> Vec<Span> {
    let nb = table.last().map_or(1, |&b| b as usize + 1);
    let mut spans = vec![Span::bits(0); nb];
    let mut first = 0;
    for d in 1..=table.len() {
        if d == table.len() || table[d] != table[first] {
            // `(d - first) << shift` fits in 64 bits: a table has at least two buckets, so
            // a bucket has fewer than all 2^bits digits, and `shift + bits <= 64`.
            let lo = high | (first as u64) << shift;
            let hi = lo + ((((d - first) as u64) << shift) - 1);
            let diff = low_bits(usize::BITS - (first ^ (d - 1)).leading_zeros() + shift);
            spans[table[first] as usize] = Span::from_range(lo, hi, diff);
            first = d;
        }
    }
    spans
}

/// The MSD pass of [`msd`] on the digit `digit(key)` (`nb` values): one read counts it and
/// learns the bits in which keys really differ; if `bits` (the digit's key bits, when it is
/// a plain bit field) turn out constant, nothing moves and the sort goes on with the bits
/// that differ. Otherwise every block scatters into its own ranges of `dst`, and bucket `b`
/// is sorted on its span `bucket_span(b)`, within `mask`.
#[allow(clippy::too_many_arguments)]
fn msd_pass<T, F, D>(
    src: &mut [T],
    dst: &mut [T],
    key: &F,
    mask: u64,
    out_in_dst: bool,
    tuning: &Tuning,
    nb: usize,
    digit: &D,
    bits: Option<u64>,
    bucket_span: &(dyn Fn(usize) -> Span + Sync),
) where
    T: bytemuck::Pod + Send + Sync,
    F: Fn(&T) -> u64 + Sync,
    D: Fn(u64) -> usize + Sync + Copy,
{
    // The digit by value: its captures then stay in registers in the hot loops, where
    // through a reference they were loaded again at every element (a store may alias them).
    let digit = *digit;
    let n = src.len();
    let threads = rayon::current_num_threads();
    let nblocks = if n >= tuning.par_min && threads > 1 {
        (threads * 4)
            .min(n / (tuning.par_min / 4).max(1))
            .max(threads)
    } else {
        1
    };
    let block_len = n.div_ceil(nblocks);
    // The same read counts the digit and learns the bits in which keys really differ.
    let k0 = key(&src[0]);
    let count = |c: &[T]| msd_count_isa(tuning.isa, c, key, k0, nb, &digit);
    let (counts, diffs): (Vec<Vec<usize>>, Vec<u64>) = if nblocks > 1 {
        src.par_chunks(block_len).map(count).unzip()
    } else {
        let (h, d) = count(src);
        (vec![h], vec![d])
    };
    let mask = mask & diffs.iter().fold(0, |a, b| a | b);
    if bits.is_some_and(|b| mask & b == 0) {
        // Every key shares these bits (`mask` was only a bound): no move; go on with the
        // bits that do differ, if any.
        return sort_between(src, dst, key, mask, out_in_dst, tuning);
    }

    let bucket_len: Vec<usize> = (0..nb).map(|d| counts.iter().map(|c| c[d]).sum()).collect();
    let digit_of = move |x: &T| digit(key(x));
    if nblocks > 1 {
        // Carve `dst` bucket by bucket, and within a bucket block by block, so that each
        // block owns the exact ranges its elements go to and the scatter is stable.
        let mut outs: Vec<Vec<&mut [T]>> =
            (0..counts.len()).map(|_| Vec::with_capacity(nb)).collect();
        let mut rest: &mut [T] = dst;
        for d in 0..nb {
            for (out, count) in outs.iter_mut().zip(&counts) {
                let (head, tail) = std::mem::take(&mut rest).split_at_mut(count[d]);
                out.push(head);
                rest = tail;
            }
        }
        src.par_chunks(block_len)
            .zip(outs)
            .for_each(|(c, mut o)| scatter_isa(tuning.isa, c, &mut o, &digit_of));
    } else {
        // One block: offsets into `dst` as a whole, one load and store each per element
        // where a slice per bucket took two more loads and a bounds check.
        let mut next: Vec<usize> = bucket_len
            .iter()
            .scan(0, |start, &len| {
                let s = *start;
                *start += len;
                Some(s)
            })
            .collect();
        scatter_flat_isa(tuning.isa, src, dst, &mut next, &digit_of);
    }

    // The elements are now in `dst`; each bucket is sorted from there, with its range of
    // `src` as scratch, and must end where the caller wants the result.
    let mut buckets = Vec::with_capacity(nb);
    let (mut s, mut d) = (src, dst);
    for (b, &len) in bucket_len.iter().enumerate() {
        let (s1, s2) = std::mem::take(&mut s).split_at_mut(len);
        let (d1, d2) = std::mem::take(&mut d).split_at_mut(len);
        buckets.push((d1, s1, bucket_span(b).within(mask)));
        s = s2;
        d = d2;
    }
    let sub = |(d1, s1, span): (&mut [T], &mut [T], Span)| {
        sort_span(d1, s1, key, span, !out_in_dst, tuning)
    };
    if n >= tuning.par_min {
        buckets.into_par_iter().for_each(sub);
    } else {
        buckets.into_iter().for_each(sub);
    }
}

/// How a partition should split `data`: `None` on the top bits of `digit` (`bits` wide),
/// which needs no table, when a sample shows that no bucket would then hold more than
/// `most` elements; otherwise the bucket of every digit value, nondecreasing from 0 to at most
/// `want - 1`, with every bucket holding at least one sampled element (so at least two
/// buckets, each holding less than all of `data`).
///
/// The sample is `sample` elements at pseudo-random positions (one in each of `sample`
/// equal strides). The table gives each bucket about the same share of it: skewed keys
/// (floats whose exponents cluster) are split where their elements are, not where the bits
/// are. A digit is never split; a digit too heavy for one bucket takes a bucket of its
/// own and is partitioned again on its lower bits. If the whole sample falls into one
/// digit, the top bits are used after all (the top bit varies in `data`).
pub(crate) fn bucket_table<T>(
    data: &[T],
    digit: &impl Fn(&T) -> usize,
    bits: u32,
    want: usize,
    most: usize,
    sample: usize,
) -> Option<Vec<u8>> {
    let len = 1usize << bits;
    let mut hist = vec![0u32; len];
    let s = sample.min(data.len());
    let mut state = 0x9e37_79b9_7f4a_7c15u64 ^ data.len() as u64;
    for i in 0..s {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let lo = i * data.len() / s;
        let hi = (i + 1) * data.len() / s;
        // A position in `lo..hi` from the state's high bits, without a division.
        let at = lo + ((u128::from(state) * (hi - lo) as u128) >> 64) as usize;
        hist[digit(&data[at])] += 1;
    }
    // The largest bucket of a split on the top bits, estimated from the sample.
    let w = (usize::BITS - (want - 1).leading_zeros()).clamp(1, bits);
    let largest = hist
        .chunks(len >> w)
        .map(|c| c.iter().map(|&h| h as usize).sum::<usize>())
        .max()
        .unwrap_or(0);
    if largest * data.len() / s <= most {
        return None;
    }
    let mut table = vec![0u8; len];
    let mut cur = 0usize;
    let mut acc = 0usize;
    let mut in_cur = 0usize;
    // Digits not in the sample (most of them) change nothing: each takes the bucket of the
    // sampled digit before it. So only sampled digits are visited, 16 counters at a time.
    let mut from = 0;
    for (i, group) in hist.chunks(16).enumerate() {
        if group.iter().fold(0, |a, &h| a | h) == 0 {
            continue;
        }
        for (j, &h) in group.iter().enumerate() {
            if h == 0 {
                continue;
            }
            let d = i * 16 + j;
            table[from..=d].fill(cur as u8);
            from = d + 1;
            acc += h as usize;
            in_cur += h as usize;
            // Start the next bucket once this one has its share (and something: a heavy
            // digit may have taken several shares), if sampled elements remain for the
            // next one.
            if acc >= (cur + 1) * s / want && in_cur > 0 && acc < s && cur + 1 < want {
                cur += 1;
                in_cur = 0;
            }
        }
    }
    table[from..].fill(cur as u8);
    (cur > 0).then_some(table)
}

multiversion! {
    /// [`msd_count`] for `isa`.
    fn msd_count_isa[T, F: Fn(&T) -> u64, D: Fn(u64) -> usize](
        c: &[T],
        key: &F,
        k0: u64,
        nb: usize,
        digit: &D,
    ) -> (Vec<usize>, u64) => msd_count;
}

multiversion! {
    /// [`scatter`] for `isa`.
    fn scatter_isa[T: Copy, D: Fn(&T) -> usize](src: &[T], outs: &mut [&mut [T]], digit: &D) -> ()
        => scatter;
}

/// The histogram of `digit(key)` (`nb` values) over `c`, and the bits in which the keys
/// differ from `k0`.
#[inline(always)]
fn msd_count<T, F: Fn(&T) -> u64, D: Fn(u64) -> usize>(
    c: &[T],
    key: &F,
    k0: u64,
    nb: usize,
    digit: &D,
) -> (Vec<usize>, u64) {
    let mut h = vec![0usize; nb];
    let mut diff = 0u64;
    for x in c {
        let k = key(x);
        diff |= k ^ k0;
        h[digit(k)] += 1;
    }
    (h, diff)
}

multiversion! {
    /// [`scatter_flat`] for `isa`.
    fn scatter_flat_isa[T: Copy, D: Fn(&T) -> usize](
        src: &[T],
        dst: &mut [T],
        next: &mut [usize],
        digit: &D,
    ) -> () => scatter_flat;
}

/// Moves each element of `src` to `dst` at its bucket's `next` position, and advances it.
#[inline(always)]
fn scatter_flat<T: Copy, D: Fn(&T) -> usize>(
    src: &[T],
    dst: &mut [T],
    next: &mut [usize],
    digit: &D,
) {
    for x in src {
        let o = &mut next[digit(x)];
        dst[*o] = *x;
        *o += 1;
    }
}

/// Moves each element of `src` to the front of the free part of its bucket's slice.
#[inline(always)]
fn scatter<T: Copy, D: Fn(&T) -> usize>(src: &[T], outs: &mut [&mut [T]], digit: &D) {
    let mut pos = vec![0usize; outs.len()];
    for x in src {
        let d = digit(x);
        outs[d][pos[d]] = *x;
        pos[d] += 1;
    }
}

/// Radix sort of a leaf on the bits of `mask` (a superset of the bits in which its keys
/// differ), ping-ponging between `src` and `dst`.
///
/// The leaf is sorted LSD on its top `log2(n) + DIVERT_BITS` varying bits only, or on
/// [`LSD_FILL_BITS`] per pass if the passes those bits need can take more (one read
/// counts every digit; digits in which all keys agree are skipped). For keys spread over
/// more bits than that, elements whose top bits are equal form groups of mostly one or two
/// elements, finished by insertion sort; a larger group (keys that share their top bits)
/// is sorted recursively on its remaining bits, so no input makes this quadratic. This is
/// the "diverting LSD" idea of voracious_radix_sort: two passes instead of five for a leaf
/// of uniform 64-bit keys.
#[inline(never)]
fn lsd<T, F>(src: &mut [T], dst: &mut [T], key: &F, mask: u64, out_in_dst: bool, tuning: &Tuning)
where
    T: bytemuck::Pod + Send + Sync,
    F: Fn(&T) -> u64 + Sync,
{
    const RADIX: usize = 1 << LSD_MAX_BITS;
    let n = src.len();
    let top = 63 - mask.leading_zeros();
    let span = top + 1 - mask.trailing_zeros();
    let need = usize::BITS - n.leading_zeros() + DIVERT_BITS;
    let passes = need.min(span).div_ceil(LSD_MAX_BITS);
    let bits = need.max(passes * LSD_FILL_BITS).min(span);
    let lo = top + 1 - bits;
    let w = bits.div_ceil(passes);
    let dmask = (1u64 << w) - 1;
    // `& (RADIX - 1)` (a no-op, as w <= LSD_MAX_BITS) lets the compiler drop bounds checks.
    let digit = |k: u64, p: u32| ((k >> (lo + p * w)) & dmask) as usize & (RADIX - 1);
    let mut hist = vec![[0u32; RADIX]; passes as usize];
    lsd_count_isa(tuning.isa, src, key, &mut hist, lo, w, dmask);
    let first = key(&src[0]);
    let (mut a, mut b) = (src, dst);
    let mut in_dst = false;
    for (p, off) in (0..passes).zip(hist.iter_mut()) {
        if off[digit(first, p)] as usize == n {
            continue;
        }
        let mut sum = 0;
        for o in off.iter_mut() {
            let c = *o;
            *o = sum;
            sum += c;
        }
        let shift = lo + p * w;
        lsd_scatter_isa(tuning.isa, a, b, off, key, shift, dmask);
        std::mem::swap(&mut a, &mut b);
        in_dst = !in_dst;
    }
    // The elements are in `a`, sorted by `key >> lo`; they belong in `b` if `move_out`.
    let move_out = in_dst != out_in_dst;
    if lo == mask.trailing_zeros() {
        if move_out {
            b.copy_from_slice(a);
        }
        return;
    }
    // Finish the groups of equal top bits, in the buffer where the result belongs.
    let low_mask = mask & ((1u64 << lo) - 1);
    let (v, other) = if move_out {
        b.copy_from_slice(a);
        (b, a)
    } else {
        (a, b)
    };
    finish_groups_isa(tuning.isa, v, other, key, lo, low_mask, tuning);
}

multiversion! {
    /// [`finish_groups`] for `isa`.
    fn finish_groups_isa[T: bytemuck::Pod + Send + Sync, F: Fn(&T) -> u64 + Sync](
        v: &mut [T],
        scratch: &mut [T],
        key: &F,
        lo: u32,
        low_mask: u64,
        tuning: &Tuning,
    ) -> () => finish_groups;
}

/// Sorts `v`, already sorted by `key >> lo`, by the whole key: one scan for neighbours out
/// of order, eight at a time (for uniform keys sorted on 10 bits a pass, nearly every
/// window is in order; on `log2(n) + 3` bits, about two in three are); the
/// group of equal `key >> lo` around such a pair is sorted by insertion sort, or, when
/// large, recursively on `low_mask` with `scratch` (as long as `v`). Groups whose elements
/// are already in order are left alone; every sort used is stable.
#[inline(always)]
fn finish_groups<T, F>(
    v: &mut [T],
    scratch: &mut [T],
    key: &F,
    lo: u32,
    low_mask: u64,
    tuning: &Tuning,
) where
    T: bytemuck::Pod + Send + Sync,
    F: Fn(&T) -> u64 + Sync,
{
    let n = v.len();
    let mut i = 1;
    while i < n {
        // Eight neighbours at a time: for uniform keys most windows are in order.
        let end = (i + SCAN_WINDOW).min(n);
        if end - i == SCAN_WINDOW && in_order(&v[i - 1..end], key) {
            i = end;
            continue;
        }
        while i < end {
            let k = key(&v[i]);
            if k >= key(&v[i - 1]) {
                i += 1;
                continue;
            }
            // `v[i - 1] > v[i]` with `v` sorted by the top bits: both are in one group.
            let g = k >> lo;
            let mut s = i - 1;
            while s > 0 && key(&v[s - 1]) >> lo == g {
                s -= 1;
            }
            let mut e = i + 1;
            while e < n && key(&v[e]) >> lo == g {
                e += 1;
            }
            if e - s <= INSERTION_MAX {
                insertion_sort(&mut v[s..e], key);
            } else {
                sort_leaf(
                    &mut v[s..e],
                    &mut scratch[s..e],
                    key,
                    low_mask,
                    false,
                    tuning,
                );
            }
            i = e;
        }
    }
}

/// Neighbours [`finish_groups`] compares at once.
const SCAN_WINDOW: usize = 8;

/// Whether the keys of `w` (`SCAN_WINDOW + 1` elements) are nondecreasing, with no branch
/// per pair, so that the compares vectorise.
#[inline(always)]
fn in_order<T, F: Fn(&T) -> u64>(w: &[T], key: &F) -> bool {
    let Ok(w) = <&[T; SCAN_WINDOW + 1]>::try_from(w) else {
        return false;
    };
    let mut ok = true;
    for j in 0..SCAN_WINDOW {
        ok &= key(&w[j]) <= key(&w[j + 1]);
    }
    ok
}

multiversion! {
    /// [`lsd_count`] for `isa`.
    fn lsd_count_isa[T, F: Fn(&T) -> u64](
        src: &[T],
        key: &F,
        hist: &mut [[u32; 1 << LSD_MAX_BITS]],
        lo: u32,
        w: u32,
        dmask: u64,
    ) -> () => lsd_count;
}

/// Counts the LSD digits of every pass (`hist[p]`: the digit `(key >> (lo + p * w)) & dmask`)
/// in one read of `src`.
#[inline(always)]
fn lsd_count<T, F: Fn(&T) -> u64>(
    src: &[T],
    key: &F,
    hist: &mut [[u32; 1 << LSD_MAX_BITS]],
    lo: u32,
    w: u32,
    dmask: u64,
) {
    const RADIX: usize = 1 << LSD_MAX_BITS;
    let digit = |k: u64, shift: u32| ((k >> shift) & dmask) as usize & (RADIX - 1);
    // Two passes (a leaf of uniform 64-bit keys of up to 2^19 elements) get a loop
    // without the inner one.
    if let [h0, h1] = hist {
        for x in src {
            let k = key(x);
            h0[digit(k, lo)] += 1;
            h1[digit(k, lo + w)] += 1;
        }
        return;
    }
    for x in src {
        let k = key(x);
        let mut shift = lo;
        for h in hist.iter_mut() {
            h[digit(k, shift)] += 1;
            shift += w;
        }
    }
}

multiversion! {
    /// [`lsd_scatter`] for `isa`: a function of its own, so that the hot loop gets the
    /// registers to itself (inlined into `lsd`, the loop kept its pointers on the stack).
    fn lsd_scatter_isa[T: Copy, F: Fn(&T) -> u64](
        src: &[T],
        dst: &mut [T],
        off: &mut [u32; 1 << LSD_MAX_BITS],
        key: &F,
        shift: u32,
        dmask: u64,
    ) -> () => lsd_scatter;
}

/// One LSD pass: moves every element of `src` to `dst` at its digit's next offset.
#[inline(always)]
fn lsd_scatter<T: Copy, F: Fn(&T) -> u64>(
    src: &[T],
    dst: &mut [T],
    off: &mut [u32; 1 << LSD_MAX_BITS],
    key: &F,
    shift: u32,
    dmask: u64,
) {
    const RADIX: usize = 1 << LSD_MAX_BITS;
    let dst = &mut dst[..src.len()];
    for x in src {
        let o = &mut off[((key(x) >> shift) & dmask) as usize & (RADIX - 1)];
        dst[*o as usize] = *x;
        *o += 1;
    }
}

/// Extra bits a leaf is sorted on beyond `log2(n)`, at least: groups of equal top bits then
/// hold at most `2^-DIVERT_BITS` elements on average for uniform keys.
const DIVERT_BITS: u32 = 3;

/// Bits an LSD pass of a leaf sorts on when `log2(n) + DIVERT_BITS` leaves the passes
/// room: the bits of a pass cost nothing until their destinations outgrow L1, and every
/// extra bit halves the groups left to the finishing pass. A leaf of 15 Ki elements (a
/// bucket of 10^6 `f64`) needs 17 bits, two passes of 9; at 20 bits, two of 10, it sorted
/// 10^6 `f64` and `u64` 6-8% faster on one thread, and 10^6 `f32` 5% (scratch program,
/// best of 100, alternated builds; 10^7 and 10^8 within noise). 11 bits (2048
/// destinations, whose lines no longer all fit L1) was 3-4% slower again for 10^6 `f64`,
/// though faster for `f32`.
const LSD_FILL_BITS: u32 = 10;

/// Largest group finished by insertion sort.
const INSERTION_MAX: usize = 24;

/// Stable insertion sort by `key`.
fn insertion_sort<T: Copy, F: Fn(&T) -> u64>(v: &mut [T], key: &F) {
    for i in 1..v.len() {
        let x = v[i];
        let k = key(&x);
        let mut j = i;
        while j > 0 && key(&v[j - 1]) > k {
            v[j] = v[j - 1];
            j -= 1;
        }
        v[j] = x;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sort::xorshift;

    /// Sample-based buckets: nondecreasing, at least two, none empty, even when a heavy
    /// digit takes several buckets' shares (60 % of the keys on one digit).
    #[test]
    fn bucket_table_has_no_empty_bucket() {
        let mut next = xorshift(0x2545_f491_4f6c_dd1du64);
        let heavy: Vec<usize> = (0..10_000)
            .map(|i| {
                if i % 10 < 6 {
                    100
                } else {
                    200 + (next() % 100) as usize
                }
            })
            .collect();
        let spread: Vec<usize> = (0..10_000).map(|_| (next() % 65_536) as usize).collect();
        let two: Vec<usize> = (0..10_000).map(|i| [7, 9000][i % 2]).collect();
        for (data, want) in [(&heavy, 4), (&heavy, 256), (&spread, 256), (&two, 16)] {
            // Sample everything, so that "holds a sampled element" means "non-empty".
            let table = bucket_table(data, &|&d: &usize| d, 16, want, 0, data.len())
                .expect("a table: the top-bit split overflows buckets of 0");
            assert!(table.windows(2).all(|w| w[0] <= w[1] && w[1] - w[0] <= 1));
            let nb = *table.last().unwrap() as usize + 1;
            assert!((2..=want).contains(&nb));
            let mut count = vec![0; nb];
            for &d in data.iter() {
                count[table[d] as usize] += 1;
            }
            assert!(count.iter().all(|&c| c > 0), "empty bucket: {count:?}");
        }
    }

    /// The table walks only the sampled digits: it must equal a walk over every digit.
    #[test]
    fn bucket_table_equals_a_walk_over_every_digit() {
        let mut next = xorshift(0x9e37_79b9_7f4a_7c15u64);
        for (n, spread, want) in [(5_000, 65_536, 64), (3_000, 300, 16), (20_000, 4_000, 256)] {
            // Clustered digits, as floats' exponents give: most digits never occur.
            let data: Vec<usize> = (0..n)
                .map(|_| {
                    let x = (next() % spread) as usize;
                    (x * x / spread as usize) % 65_536
                })
                .collect();
            let mut hist = vec![0usize; 1 << 16];
            for &d in &data {
                hist[d] += 1;
            }
            let (mut want_table, mut cur, mut acc, mut in_cur) = (vec![0u8; 1 << 16], 0, 0, 0);
            for (d, &h) in hist.iter().enumerate() {
                want_table[d] = cur as u8;
                acc += h;
                in_cur += h;
                if acc >= (cur + 1) * n / want && in_cur > 0 && acc < n && cur + 1 < want {
                    cur += 1;
                    in_cur = 0;
                }
            }
            let got = bucket_table(&data, &|&d: &usize| d, 16, want, 0, n).expect("a table");
            assert!(got == want_table, "n {n}, spread {spread}, want {want}");
        }
    }

    fn tiny() -> Tuning {
        Tuning {
            small: 4,
            leaf: 32,
            par_min: 64,
            isa: Isa::active(),
        }
    }

    fn check(v: Vec<u64>, tuning: &Tuning) {
        let mut want = v.clone();
        want.sort();
        let mut got = v;
        sort_with_tuning(&mut got, &|x: &u64| *x, tuning, None);
        assert_eq!(got, want);
    }

    #[test]
    fn every_path_with_tiny_thresholds() {
        let mut next = xorshift(0x9e3779b97f4a7c15);
        for n in [0, 1, 2, 5, 31, 32, 33, 63, 64, 65, 100, 1000, 5000] {
            let full: Vec<u64> = (0..n).map(|_| next()).collect();
            check(full.clone(), &tiny());
            check(full.iter().map(|x| x % 7).collect(), &tiny());
            check(
                full.iter().map(|x| x & 0xff00_0000_0000_00ff).collect(),
                &tiny(),
            );
            check(full.iter().map(|x| x >> 60).collect(), &tiny());
            check((0..n).rev().collect(), &tiny());
            check(full, &Tuning::default());
        }
    }

    fn pool(threads: usize) -> rayon::ThreadPool {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
    }

    /// Checks [`Span::from_range`] on the range of `keys` (empty: no keys, all equal):
    /// with a base, the base is at most every key and every key less the base lies in the
    /// mask; without, the keys differ only in the mask. Returns the span.
    fn check_span(keys: &[u64]) -> Span {
        let (lo, hi) = (keys.iter().min(), keys.iter().max());
        let diff = keys.iter().fold(0, |m, &k| m | (k ^ keys[0]));
        let span = match (lo, hi) {
            (Some(&lo), Some(&hi)) => Span::from_range(lo, hi, diff),
            _ => Span::bits(0),
        };
        for &k in keys {
            if span.base == 0 {
                assert_eq!((k ^ keys[0]) & !span.mask, 0, "{k:#x} outside {span:x?}");
            } else {
                assert!(k >= span.base, "{k:#x} below the base {:#x}", span.base);
                assert_eq!((k - span.base) & !span.mask, 0, "{k:#x} outside {span:x?}");
            }
        }
        span
    }

    /// A range that straddles a power of two is sorted on its keys less their minimum, in as
    /// many bits as its width needs; one that does not keeps its keys as they are.
    #[test]
    fn span_narrows_a_range_across_a_power_of_two() {
        let keys: Vec<u64> = (0..1000u64).map(|i| (1 << 40) - 500 + i * 3).collect();
        let span = check_span(&keys);
        assert_eq!(span.base, (1 << 40) - 500);
        // Width 2997: 12 bits; the keys' own top varying bit is bit 40.
        assert_eq!(span.mask, (1 << 12) - 1);
        let aligned: Vec<u64> = (0..1000u64).map(|i| (5 << 40) + i * 8).collect();
        let span = check_span(&aligned);
        assert_eq!(span, Span::bits(0x1ff8));
        assert_eq!(check_span(&[7, 7, 7]), Span::bits(0));
        assert_eq!(check_span(&[]), Span::bits(0));
        assert_eq!(check_span(&[0, u64::MAX]), Span::bits(u64::MAX));
    }

    /// Every key lies in its bucket's span from [`table_spans`], within the bits in which
    /// the keys differ: floats' keys (skewed, so the table's buckets end anywhere), with
    /// constant low bits and constant high bits.
    #[test]
    fn table_spans_hold_every_key() {
        let mut next = xorshift(0x9e37_79b9_7f4a_7c15);
        let keys: Vec<u64> = (0..50_000)
            .map(|_| {
                let x = (next() >> 11) as f64 / (1u64 << 52) as f64 - 1.0;
                let b = x.to_bits();
                let k = if b >> 63 == 1 { !b } else { b | 1 << 63 };
                // Constant low bits, and the top bit set for all: `high` is not 0.
                (k >> 2 | 1 << 63) & !0b1100 | 0b100
            })
            .collect();
        let mask = keys.iter().fold(0, |m, &k| m | (k ^ keys[0]));
        let top = 63 - mask.leading_zeros();
        for bits in [12, 16] {
            let shift = top + 1 - bits;
            let digit = |k: &u64| ((k >> shift) & low_bits(bits)) as usize;
            let table = bucket_table(&keys, &digit, bits, 64, 300, 4096).expect("skewed keys");
            let high = keys[0] & !low_bits(top + 1);
            let spans: Vec<Span> = table_spans(&table, shift, high)
                .into_iter()
                .map(|s| s.within(mask))
                .collect();
            assert!(spans.iter().any(|s| s.base != 0), "no span narrowed");
            let mut first = vec![None; spans.len()];
            for &k in &keys {
                let b = table[digit(&k)] as usize;
                let s = spans[b];
                let k0 = *first[b].get_or_insert(k);
                if s.base == 0 {
                    assert_eq!((k ^ k0) & !s.mask, 0, "{k:#x} outside {s:x?}");
                } else {
                    assert!(k >= s.base, "{k:#x} below {s:x?}");
                    let (d, d0) = (k - s.base, k0 - s.base);
                    assert_eq!((d ^ d0) & !s.mask, 0, "{k:#x} outside {s:x?}");
                    assert!(d <= low_bits(u64::BITS - s.mask.leading_zeros()));
                }
            }
        }
    }

    proptest::proptest! {
        #![proptest_config(crate::proptest_config(200))]

        /// [`Span::from_range`] holds every key, for keys spread anywhere and keys around a power
        /// of two; and [`sort_span`] sorts them, at leaf size and above, on every ISA.
        #[test]
        fn prop_span_holds_and_sorts(
            v in proptest::collection::vec(proptest::prelude::any::<u64>(), 1..600),
            at in 1u32..64,
            width in 0u32..64,
            leaf in 8usize..700,
        ) {
            let centre = 1u64 << at;
            let keys: Vec<u64> = v
                .iter()
                .map(|&x| centre.wrapping_add(x >> width).wrapping_sub(1 << (63 - width)))
                .collect();
            for keys in [v, keys] {
                let span = check_span(&keys);
                let mut want = keys.clone();
                want.sort_unstable();
                for isa in Isa::available() {
                    let tuning = Tuning { small: 4, leaf, par_min: 32, isa };
                    let mut got = keys.clone();
                    let mut scratch = vec![0; got.len()];
                    sort_span(&mut got, &mut scratch, &|x: &u64| *x, span, false, &tuning);
                    proptest::prop_assert_eq!(&got, &want);
                }
            }
        }

        /// Every path (MSD, parallel MSD, leaves, groups, comparison sort) on small inputs,
        /// against the naive stable sort, on 1 and 2 threads.
        #[test]
        fn prop_tiny_thresholds_match_naive(
            v in proptest::collection::vec(proptest::prelude::any::<u64>(), 0..600),
            shift in 0u32..64,
            keep in proptest::prelude::any::<u64>(),
            threads in 1usize..=2,
            small in 1usize..8,
            leaf in 8usize..64,
            reuse_len in 0usize..1200,
        ) {
            // Masked and shifted keys: few varying bits, at any position, with duplicates.
            let pairs: Vec<[u64; 2]> = v
                .iter()
                .enumerate()
                .map(|(i, &x)| [(x & keep) >> shift, i as u64])
                .collect();
            let mut want = pairs.clone();
            want.sort_by_key(|p| p[0]);
            let mut got = pairs;
            let tuning = Tuning { small, leaf, par_min: leaf * 2, isa: Isa::active() };
            let mut reuse = vec![u128::MAX / 3; reuse_len];
            pool(threads).install(|| sort_with_tuning(&mut got, &|p: &[u64; 2]| p[0], &tuning, Some(&mut reuse)));
            proptest::prop_assert_eq!(got, want);
        }
    }

    #[test]
    fn stable_on_equal_keys() {
        let v: Vec<[u64; 2]> = (0..3000u64).map(|i| [(i * 7919) % 13, i]).collect();
        let mut want = v.clone();
        want.sort_by_key(|p| p[0]);
        let mut got = v;
        sort_with_tuning(&mut got, &|p: &[u64; 2]| p[0], &tiny(), None);
        assert_eq!(got, want);
    }
}
