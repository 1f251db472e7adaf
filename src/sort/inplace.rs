//! The in-place parallel radix sort behind [`par_sort`](super::par_sort): inputs larger than
//! a part (8 MiB; floats: two parts) are partitioned in place by their top key bits (no
//! scratch buffer as large as the input), and each part is then sorted in cache by the
//! `radix` module's LSD sort with a scratch buffer of its own, reused from part to part.
//!
//! # Why
//!
//! The stable radix sort needs a scratch buffer as large as the input. For a one-shot sort
//! of a large array, the first touch of that fresh memory (page faults, zeroing by the
//! kernel) and its release cost about a third of the sort (10^8 `u64`: 0.23 s of 0.67 s,
//! BENCHMARKS.md). An unstable sort need not pay it.
//!
//! # The sort ([`sort`])
//!
//! 1. The bits in which the keys differ (one parallel read, skipped when a few sampled keys
//!    already differ in the top bit: then all 64 bits stand in). The *digit* is the top 18
//!    of them.
//! 2. **Buckets** ([`radix::bucket_table`]): a sample of 16 Ki elements estimates how the digits
//!    are spread. If splitting on the digit's top bits (up to 256 buckets, about a sixteenth
//!    of a part each) leaves no bucket above 1.5 times their mean size, that is the split.
//!    Otherwise (skewed keys: floats, whose exponents cluster) a table maps every digit value
//!    to a bucket so that buckets hold equal shares of the sample. Small buckets matter for
//!    skewed keys: a bucket whose keys crowd into part of its range leaves the LSD sort below
//!    (which spends `log2(n) + 3` bits, or 10 a pass if more, on the whole range) groups
//!    of many equal digits.
//! 3. **Partition** in place ([`partition`], below).
//! 4. **Parts** in parallel: a part of at most 8 MiB is sorted by the LSD radix sort on its
//!    top `log2(n) + 3` varying bits, or 10 a pass if more (two passes of 11-bit digits
//!    for 10^8 uniform keys),
//!    in L2 and L3. A part of a table split is sorted on its keys less the start of its
//!    first digit ([`radix::table_spans`]): its ends fall anywhere, and a range that
//!    straddles a power of two would otherwise vary in every bit below it. A larger part (a
//!    digit heavier than a part, or a sample that missed the skew) is partitioned again, on
//!    its top bits alone if it holds more than half of its parent: each such level removes
//!    bits from its mask, so the depth is bounded.
//!
//! Measured (BENCHMARKS.md): a part sorted straight by LSD beat a further MSD pass, and
//! another in-place level, by 10-20%.
//!
//! # One in-place partition ([`partition`])
//!
//! The array is seen as a grid of *slots* of one block (2 KiB) each.
//!
//! 1. **Classify** (parallel, one stripe of whole slots per task): each task reads its
//!    stripe front to back and appends every element to a per-bucket buffer of one block;
//!    a full buffer is written back as a block into the stripe, behind the read position
//!    (there is always room: no more has been written than read). The stripe ends as a
//!    run of full blocks, each labelled with its bucket, followed by free space; the
//!    partial buffers (less than a block per bucket) are kept aside.
//! 2. **Plan** (sequential, one entry per slot): bucket `d`'s final range `[G_d, G_d+1)`
//!    follows from the counts. Its blocks go to the whole slots at the start of that range;
//!    if the range has fewer whole slots than the bucket has blocks (its ends are not slot
//!    aligned: at most one block short), a block is *demoted*: copied aside with the
//!    partial buffers.
//!    Blocks already in their bucket's slots stay; every other block is assigned a slot of
//!    its bucket's range that does not hold a block of that bucket. Following the
//!    assignments gives paths (ending in a slot whose content is free) and cycles.
//! 3. **Move** ([`move_blocks`], parallel): chains are cut into segments of at most
//!    [`SEGMENT`] slots, each moved by one task.
//! 4. **Fill** (parallel over buckets): the rest of each bucket's range (its unaligned ends
//!    and any slots its blocks do not cover) receives the bucket's partial buffers and
//!    demoted blocks.
//!
//! Each element is read and written twice (classify, move): as much memory traffic as the
//! stable sort's scatter into a scratch buffer, without the fresh buffer. For 10^8 `u64` on
//! two threads the partition took about 140 ms and the parts about 230 ms.
//!
//! # Memory
//!
//! See [`scratch_bytes`]: at most a sixth of the input plus about 10 MiB per thread.
//!
//! # Safety without `unsafe`
//!
//! Concurrent moves need disjoint mutable access to slots spread over the array. The array
//! is carved into one `&mut` slice per slot with `chunks_mut`; each segment takes the slices
//! of its slots out of that table. A slot belongs to at most one chain, so every `take`
//! finds its slice.

use std::sync::Mutex;

use rayon::prelude::*;

use super::radix::{self, Span, Tuning};
use crate::cpu::Isa;

/// At most 2^8 = 256 buckets per partition, whose block buffers (2 KiB each, 512 KiB per
/// task) stay in L2.
const MAX_BITS: u32 = 8;

/// Elements sampled to choose the buckets of a partition.
const SAMPLE: usize = 1 << 14;

/// Bytes per block (and per slot).
const BLOCK_BYTES: usize = 2048;

/// Key bits a partition's bucket table covers: 2^18 one-byte entries. Wider than an MSD
/// pass's table ([`radix::TABLE_BITS`]): a partition's input is larger than a part, so its
/// 1 MiB of sample counters costs little, and 16 bits of a float's key (sign, exponent and
/// 4 bits of mantissa) hold 1/64 of uniform floats in [-1, 1) in one digit, more than a
/// part of 10^8 `f64`: each such digit was partitioned again. 18 bits sorted 10^8 of them
/// in 0.64 s against 0.72 s on one thread (20 bits: 0.69 s, its counters no longer in L2).
const TABLE_BITS: u32 = 18;

/// Longest run of slots moved by one task.
const SEGMENT: usize = 128;

/// Parts at most this many bytes are sorted by the stable radix sort with a scratch buffer
/// of this size (one per task sorting a part, reused); larger parts are partitioned in
/// place again.
pub(crate) const PART_BYTES: usize = 8 << 20;

/// Smallest stripe classified by one task: 16 times its block buffers.
const STRIPE_BYTES: usize = 8 << 20;

/// Marks a slot that holds no labelled block.
const FREE: u16 = u16::MAX;

/// The sizes of the in-place sort, in elements. The defaults follow from the constants
/// above; tests shrink them to reach every path with small inputs.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Sizes {
    /// Inputs and parts of at most this many elements are sorted by the stable radix sort.
    pub(crate) part: usize,
    /// Elements per block.
    pub(crate) block: usize,
    /// Elements sampled to choose a partition's buckets.
    pub(crate) sample: usize,
    /// The fewest elements classified by one task.
    pub(crate) stripe: usize,
    /// The instruction set the hot loops are compiled for.
    pub(crate) isa: Isa,
}

impl Sizes {
    /// The sizes for elements of `size` bytes, from the constants above.
    fn for_size(size: usize) -> Sizes {
        Sizes {
            part: PART_BYTES / size,
            block: (BLOCK_BYTES / size).max(1),
            sample: SAMPLE,
            stripe: STRIPE_BYTES / size,
            isa: Isa::active(),
        }
    }
}

/// Sorts `data` by `key` (unstably) in parallel on the current rayon pool, with scratch
/// memory bounded by a few MiB per thread.
pub(crate) fn sort<T, F>(data: &mut [T], key: &F)
where
    T: bytemuck::Pod + Send + Sync,
    F: Fn(&T) -> u64 + Sync,
{
    let (sizes, tuning) = default_sizes::<T>();
    if data.len() <= sizes.part {
        radix::sort(data, key, None);
        return;
    }
    sort_with_sizes(data, key, &tuning, &sizes);
}

/// The sizes of [`sort`] for elements of `T`, and the tuning of its parts' sorts: parts go
/// straight to the in-cache LSD sort, measured faster than another MSD pass for parts of a
/// few MiB, which stay in L2 and L3 (BENCHMARKS.md).
fn default_sizes<T>() -> (Sizes, Tuning) {
    let size = std::mem::size_of::<T>().max(1);
    let sizes = Sizes::for_size(size);
    let tuning = Tuning {
        leaf: sizes.part,
        ..Tuning::for_size(size)
    };
    (sizes, tuning)
}

/// Parts up to which [`sort_encoded`] leaves an input to the out-of-place radix sort. Its
/// MSD pass by a table suits floats' skewed keys better than an in-place partition into few
/// parts: uniform `f64` of 1.1-2 * 10^6 sorted 1.0-1.5 times as fast on one thread and
/// 1.4-2 times on two (BENCHMARKS.md), `f32` of 2.5-3.5 * 10^6 1.06-1.18 and 1.4-1.5
/// times; from 2.5 * 10^6 `f64` the partition was faster. Integer keys gain less (two
/// threads) or lose (one), and stay at one part.
pub(crate) const WHOLE_ENCODED: usize = 2;

/// A rewrite of a part in place (see [`sort_encoded`]).
pub(crate) type Rewrite<'a, T> = &'a (dyn Fn(&mut [T]) + Sync);

/// [`sort`] for elements sorted as a rewritten form of themselves, such as floats as the
/// order-preserving integers of their bits: `key` is the key of an element as it is,
/// `encode` rewrites a part in place into elements whose key is `coded_key`, and `decode`
/// rewrites them back. The partition reads `key` on the fly, and every part is encoded,
/// sorted and decoded while it is in cache: the rewrites cost no pass over the whole input
/// in memory. Inputs of at most [`WHOLE_ENCODED`] parts are left alone (`false`): the caller
/// rewrites them whole and sorts them out of place.
pub(crate) fn sort_encoded<T, F, G>(
    data: &mut [T],
    key: &F,
    coded_key: &G,
    encode: Rewrite<'_, T>,
    decode: Rewrite<'_, T>,
) -> bool
where
    T: bytemuck::Pod + Send + Sync,
    F: Fn(&T) -> u64 + Sync,
    G: Fn(&T) -> u64 + Sync,
{
    let (sizes, tuning) = default_sizes::<T>();
    if data.len() <= sizes.part * WHOLE_ENCODED {
        return false;
    }
    sort_encoded_with_sizes(data, key, coded_key, encode, decode, &tuning, &sizes);
    true
}

/// [`sort_encoded`] with explicit thresholds, for any length.
pub(crate) fn sort_encoded_with_sizes<T, F, G>(
    data: &mut [T],
    key: &F,
    coded_key: &G,
    encode: Rewrite<'_, T>,
    decode: Rewrite<'_, T>,
    tuning: &Tuning,
    sizes: &Sizes,
) where
    T: bytemuck::Pod + Send + Sync,
    F: Fn(&T) -> u64 + Sync,
    G: Fn(&T) -> u64 + Sync,
{
    let sizes = clamp(sizes);
    let part = sizes.part;
    let sort_part = |p: &mut [T], span: Span, scratch: &mut Lease<'_, T>| {
        if span.mask != 0 {
            encode(p);
            let buf = scratch.get(part);
            radix::sort_span(p, &mut buf[..p.len()], coded_key, span, false, tuning);
            decode(p);
        }
    };
    if data.len() <= part {
        let pool = Mutex::new(Vec::new());
        let span = Span::bits(radix::diff_mask(data, key, tuning));
        sort_part(
            data,
            span,
            &mut Lease {
                buf: Vec::new(),
                pool: &pool,
            },
        );
    } else {
        sort_parts(data, key, tuning, &sizes, &sort_part);
    }
}

/// An upper bound on the scratch memory [`sort`] allocates to sort `bytes` of input on
/// `threads` threads.
///
/// Up to a part ([`PART_BYTES`]): the stable radix sort's scratch, as large as the input;
/// beyond, never less than that up to [`WHOLE_ENCODED`] parts (where floats take that sort).
/// Larger: about one part's scratch per thread plus, per concurrent partition, the sample's
/// counters and table and at most one demoted block per bucket (2 MiB per thread in all);
/// and in proportion to the input, less than 1/6 of it: the stripes' block buffers (1/16, as
/// a stripe is at least 16 times its buffers), the blocks kept between segments (one per
/// segment of a chain longer than one, 1/128), and the plan's tables (measured 109 bytes per
/// 2 KiB slot, up to about 150 when its lists have just doubled their capacity: 1/13).
pub(crate) fn scratch_bytes(bytes: usize, threads: usize) -> usize {
    if bytes <= PART_BYTES {
        bytes
    } else {
        // At least as much as a whole sort of up to `WHOLE_ENCODED` parts takes, so that
        // the bound never falls as the input grows (callers search on it).
        let in_place = bytes / 6 + threads.max(1) * (PART_BYTES + (2 << 20));
        in_place.max(bytes.min(WHOLE_ENCODED * PART_BYTES))
    }
}

/// [`sort`] with explicit thresholds: inputs and parts of at most `sizes.part` elements are
/// sorted by the stable radix sort with `tuning`.
pub(crate) fn sort_with_sizes<T, F>(data: &mut [T], key: &F, tuning: &Tuning, sizes: &Sizes)
where
    T: bytemuck::Pod + Send + Sync,
    F: Fn(&T) -> u64 + Sync,
{
    let sizes = clamp(sizes);
    if data.len() <= sizes.part {
        radix::sort_with_tuning(data, key, tuning, None);
        return;
    }
    let part = sizes.part;
    sort_parts(data, key, tuning, &sizes, &|p, span, scratch| {
        if span.mask != 0 {
            let buf = scratch.get(part);
            radix::sort_span(p, &mut buf[..p.len()], key, span, false, tuning);
        }
    });
}

/// Sorts records whose 64-bit `prefix` of the key does not decide their order alone:
/// partitioned in place on the prefix like [`sort`], every part (of at most 8 MiB, or of
/// records with equal prefixes) is then sorted by `finish`.
pub(crate) fn sort_records<T, F, G>(data: &mut [T], prefix: &F, finish: &G)
where
    T: bytemuck::Pod + Send + Sync,
    F: Fn(&T) -> u64 + Sync,
    G: Fn(&mut [T]) + Sync,
{
    let size = std::mem::size_of::<T>().max(1);
    let sizes = Sizes::for_size(size);
    sort_records_with_sizes(data, prefix, finish, &Tuning::for_size(size), &sizes);
}

/// [`sort_records`] with explicit thresholds.
pub(crate) fn sort_records_with_sizes<T, F, G>(
    data: &mut [T],
    prefix: &F,
    finish: &G,
    tuning: &Tuning,
    sizes: &Sizes,
) where
    T: bytemuck::Pod + Send + Sync,
    F: Fn(&T) -> u64 + Sync,
    G: Fn(&mut [T]) + Sync,
{
    let sizes = clamp(sizes);
    if data.len() <= sizes.part {
        finish(data);
        return;
    }
    sort_parts(data, prefix, tuning, &sizes, &|p, _, _| finish(p));
}

fn clamp(sizes: &Sizes) -> Sizes {
    Sizes {
        part: sizes.part.max(2),
        block: sizes.block.max(1),
        sample: sizes.sample.max(1),
        stripe: sizes.stripe.max(1),
        isa: sizes.isa,
    }
}

/// Sorts `data` (more than `sizes.part` elements) by partitioning it in place on `key`; every
/// part of at most `sizes.part` elements, and every part whose keys are all equal, is
/// finished by `leaf(part, span, scratch)`, `span` the range of the part's keys (its mask 0:
/// all equal).
fn sort_parts<T, F, L>(data: &mut [T], key: &F, tuning: &Tuning, sizes: &Sizes, leaf: &L)
where
    T: bytemuck::Pod + Send + Sync,
    F: Fn(&T) -> u64 + Sync,
    L: for<'a, 'b> Fn(&'b mut [T], Span, &'b mut Lease<'a, T>) + Sync,
{
    // The bits in which keys differ. When a few keys already differ in the top bit (random
    // 64-bit keys, floats of both signs), all 64 bits stand in for them and the read that
    // learns the exact bits is saved: a partition needs only its top bit to vary, and every
    // part learns its own exact bits or skips constant digits.
    let k0 = key(&data[0]);
    let step = (data.len() / 64).max(1);
    let seen = data.iter().step_by(step).fold(0, |m, x| m | (key(x) ^ k0));
    let mask = if seen >> 63 == 1 {
        u64::MAX
    } else {
        radix::diff_mask(data, key, tuning)
    };
    let pool = Mutex::new(Vec::new());
    if mask != 0 {
        partition_and_sort(data, key, mask, false, sizes, &pool, leaf);
    } else {
        leaf(
            data,
            Span::bits(0),
            &mut Lease {
                buf: Vec::new(),
                pool: &pool,
            },
        );
    }
}

/// Partitions `data` (larger than `part`) in place on the top bits of `mask` (a superset of
/// the bits in which its keys differ, whose top bit does vary), then sorts every bucket.
/// `by_bits`: split on the top bits alone rather than by a sample (see [`radix::bucket_table`]).
///
/// Parts are finished by `leaf` (see [`sort_parts`]), which may take a scratch buffer of
/// one part from `pool` (see [`Lease`]), shared by every level: one buffer per task
/// sorting a part at the time, each faulted in once.
fn partition_and_sort<T, F, L>(
    data: &mut [T],
    key: &F,
    mask: u64,
    by_bits: bool,
    sizes: &Sizes,
    pool: &Mutex<Vec<Vec<T>>>,
    leaf: &L,
) where
    T: bytemuck::Pod + Send + Sync,
    F: Fn(&T) -> u64 + Sync,
    L: for<'a, 'b> Fn(&'b mut [T], Span, &'b mut Lease<'a, T>) + Sync,
{
    let n = data.len();
    let part = sizes.part;
    let top = 63 - mask.leading_zeros();
    let bits = (top + 1).min(TABLE_BITS);
    let shift = top + 1 - bits;
    let dmask = (1u64 << bits) - 1;
    let digit = move |x: &T| ((key(x) >> shift) & dmask) as usize;
    // Buckets of about a sixteenth of a part (at most 256): parts of a table split are then
    // narrow enough in their keys for one LSD sort each; with a quarter of a part, uniform
    // `f64` from 1.5 * 10^6 to 10^7 sorted markedly slower (BENCHMARKS.md). From 2^26
    // (6.7 * 10^7) elements of 8 bytes on, both give 256 buckets.
    let want = (n / (part / 16).max(1)).clamp(2, 1 << MAX_BITS);
    // The top bits split only where none of their buckets would hold more than 1.5 times
    // the size wanted, `n / want`. Against "3/4 of a part", this sends skewed keys whose
    // heavy half fits in 3/4 of a part (`f64` of 1.0-1.6 * 10^6, before they were sorted
    // whole) to a table, not to a few crowded parts.
    let split = if by_bits {
        None
    } else {
        radix::bucket_table(data, &digit, bits, want, n / want * 3 / 2, sizes.sample)
    };
    let (lens, spans) = match split {
        None => split_on_top_bits(data, key, mask, shift, bits, want, sizes),
        Some(table) => {
            let high = key(&data[0]) & !radix::low_bits(top + 1);
            split_by_table(data, &digit, &table, mask, shift, high, sizes)
        }
    };
    let mut parts = Vec::with_capacity(lens.len());
    let mut rest = data;
    for (&len, &span) in lens.iter().zip(&spans) {
        let (head, tail) = std::mem::take(&mut rest).split_at_mut(len);
        parts.push((head, span));
        rest = tail;
    }
    parts.into_par_iter().for_each_init(
        || Lease {
            buf: Vec::new(),
            pool,
        },
        |scratch, (p, mut span)| {
            if p.is_empty() {
                return;
            }
            // A part's span is known from the split (a table's buckets span from their
            // first digit to the end of their last, see [`radix::table_spans`]); a part to
            // be partitioned again learns its exact bits, as its top bit must vary.
            // Sequential: a task holding a scratch buffer does not wait on other tasks.
            let mut m = span.mask;
            if p.len() > part {
                m = radix::fold_diff_isa(sizes.isa, p, key, key(&p[0]));
                span = Span::bits(m);
            }
            if p.len() <= part || m == 0 {
                leaf(p, span, scratch);
            } else {
                // Return the buffer for the nested partition's tasks to reuse.
                scratch.give_back();
                // A part holding most of its parent's elements (the sample missed the
                // skew) is split on bits next, which shortens its mask for sure.
                partition_and_sort(p, key, m, p.len() > n / 2, sizes, pool, leaf);
            }
        },
    );
}

/// Partitions `data` on the top `w` bits of its digit (the `bits` key bits above `shift`),
/// `w` the fewest that give `want` buckets; returns the length and the span of every
/// bucket: each loses those `w` bits from `mask`.
fn split_on_top_bits<T, F>(
    data: &mut [T],
    key: &F,
    mask: u64,
    shift: u32,
    bits: u32,
    want: usize,
    sizes: &Sizes,
) -> (Vec<usize>, Vec<Span>)
where
    T: bytemuck::Pod + Send + Sync,
    F: Fn(&T) -> u64 + Sync,
{
    // The top `w` bits of the digit: every part loses them from its mask.
    let w = (usize::BITS - (want - 1).leading_zeros()).clamp(1, bits);
    let low = shift + bits - w;
    let wmask = (1u64 << w) - 1;
    let lens = partition(
        data,
        &move |x: &T| ((key(x) >> low) & wmask) as usize,
        1 << w,
        sizes.block,
        sizes.stripe,
    );
    let spans = vec![Span::bits(mask & radix::low_bits(low)); lens.len()];
    (lens, spans)
}

/// Partitions `data` into the buckets that `table` gives each value of `digit` (the key
/// bits from `shift` up, `high` the bits above them in every key; see
/// [`radix::bucket_table`]); returns the length and the span of every bucket, within
/// `mask` ([`radix::table_spans`]).
fn split_by_table<T, D>(
    data: &mut [T],
    digit: &D,
    table: &[u8],
    mask: u64,
    shift: u32,
    high: u64,
    sizes: &Sizes,
) -> (Vec<usize>, Vec<Span>)
where
    T: bytemuck::Pod + Send + Sync,
    D: Fn(&T) -> usize + Sync + Copy,
{
    let nb = table.last().map_or(1, |&b| b as usize + 1);
    let digit = *digit;
    let lens = partition(
        data,
        &move |x: &T| table[digit(x)] as usize,
        nb,
        sizes.block,
        sizes.stripe,
    );
    let spans = radix::table_spans(table, shift, high)
        .into_iter()
        .map(|s| s.within(mask))
        .collect();
    (lens, spans)
}

/// A task's scratch buffer, taken from a pool when first needed and returned to it when the
/// task ends (or starts a nested partition), so that at most one buffer per running task is
/// in use and buffers are faulted in once.
pub(crate) struct Lease<'a, T> {
    /// Empty, or exactly one part long.
    buf: Vec<T>,
    /// Buffers of exactly one part, not in use.
    pool: &'a Mutex<Vec<Vec<T>>>,
}

impl<T: bytemuck::Zeroable + Clone> Lease<'_, T> {
    /// A buffer of `part` elements: the lease's own, one from the pool, or a new one
    /// (allocated at its final size: growing it would briefly hold two).
    fn get(&mut self, part: usize) -> &mut [T] {
        if self.buf.len() != part {
            let pooled = self.pool.lock().ok().and_then(|mut p| p.pop());
            self.buf = match pooled {
                Some(b) if b.len() == part => b,
                _ => vec![T::zeroed(); part],
            };
        }
        &mut self.buf
    }
}

impl<T> Lease<'_, T> {
    /// Returns the buffer, if any, to the pool.
    fn give_back(&mut self) {
        let buf = std::mem::take(&mut self.buf);
        if !buf.is_empty() {
            if let Ok(mut p) = self.pool.lock() {
                p.push(buf);
            }
        }
    }
}

impl<T> Drop for Lease<'_, T> {
    fn drop(&mut self) {
        self.give_back();
    }
}

/// What one stripe's classification leaves: its labelled blocks (at the start of the
/// stripe, in order) and its partial buffers.
struct Stripe<T> {
    labels: Vec<u16>,
    buf: Vec<T>,
    fill: Vec<usize>,
}

/// Reorders `data` in place so that its elements come grouped by `bucket(x)` (below `nb`,
/// at most 2^16 - 1), in bucket order; returns the size of every group. `block`: elements per
/// block; `stripe`: the fewest elements a classifying task takes.
pub(crate) fn partition<T, B>(
    data: &mut [T],
    bucket: &B,
    nb: usize,
    block: usize,
    stripe: usize,
) -> Vec<usize>
where
    T: bytemuck::Pod + Send + Sync,
    B: Fn(&T) -> usize + Sync + Copy,
{
    let n = data.len();
    // Slots are numbered with u32 (u32::MAX marks "none"): past 2^32 - 1 slots (8 TiB in
    // 2 KiB blocks), blocks grow instead.
    let b = block.max(n / (u32::MAX as usize - 1) + 1);

    // 1. Classify, one stripe of whole slots per task.
    let threads = rayon::current_num_threads();
    // Stripes of at least STRIPE_BYTES, so that their block buffers stay a small share of
    // the data; up to four per thread, so that work stealing evens out a slow thread.
    let tasks = (n / stripe.max(1)).clamp(1, threads * 4);
    let stripe_len = n.div_ceil(tasks).div_ceil(b).max(1) * b;
    let stripes: Vec<Stripe<T>> = data
        .par_chunks_mut(stripe_len)
        .map(|s| classify(s, bucket, nb, b))
        .collect();

    // 2. Plan where every block goes.
    let Moves {
        sizes,
        starts,
        slots_of,
        lo,
        demoted,
        dest,
        is_target,
    } = plan_moves(data, &stripes, nb, b, stripe_len);

    // 3. Move the blocks along the paths and cycles of the assignment.
    let nslots = n / b;
    let (order, chains) = chains(&dest, &is_target);
    move_blocks(&mut data[..nslots * b], b, &order, &chains);

    // 4. Fill each bucket's unaligned ends (and uncovered slots) from its buffers.
    let mut ranges = Vec::with_capacity(nb);
    let mut rest: &mut [T] = data;
    for (d, &len) in sizes.iter().enumerate() {
        let (head, tail) = std::mem::take(&mut rest).split_at_mut(len);
        ranges.push((d, head));
        rest = tail;
    }
    ranges.into_par_iter().for_each(|(d, r)| {
        let blocks = slots_of[d].len();
        let head = if blocks == 0 {
            r.len()
        } else {
            lo[d] * b - starts[d]
        };
        let covered = head + blocks * b;
        let mut spare = stripes
            .iter()
            .flat_map(|st| &st.buf[d * b..d * b + st.fill[d]])
            .chain(demoted[d].iter());
        let (front, back) = r.split_at_mut(covered);
        for x in front[..head].iter_mut().chain(back.iter_mut()) {
            *x = *spare.next().expect("buffers hold the rest of the bucket");
        }
    });
    sizes
}

/// Where [`partition`]'s blocks go (its step 2, see the module docs).
struct Moves<T> {
    /// The elements of each bucket.
    sizes: Vec<usize>,
    /// Bucket `d` is `starts[d]..starts[d + 1]`.
    starts: Vec<usize>,
    /// The slots holding each bucket's labelled blocks (those that fit its whole slots).
    slots_of: Vec<Vec<u32>>,
    /// Each bucket's first whole slot.
    lo: Vec<usize>,
    /// Each bucket's blocks that did not fit its whole slots, copied out.
    demoted: Vec<Vec<T>>,
    /// The slot each misplaced block moves to (`u32::MAX`: it stays).
    dest: Vec<u32>,
    /// Whether a slot receives a block.
    is_target: Vec<bool>,
}

/// Plans [`partition`]'s moves from the classified `stripes` of `data` (`stripe_len`
/// elements each; `nb` buckets; blocks of `b` elements): every bucket's range, and a slot of
/// its range for every block of it that lies elsewhere.
fn plan_moves<T: Copy>(
    data: &[T],
    stripes: &[Stripe<T>],
    nb: usize,
    b: usize,
    stripe_len: usize,
) -> Moves<T> {
    let n = data.len();
    // Bucket sizes and ranges.
    let mut sizes = vec![0usize; nb];
    for st in stripes {
        for &l in &st.labels {
            sizes[l as usize] += b;
        }
        for (s, &f) in sizes.iter_mut().zip(&st.fill) {
            *s += f;
        }
    }
    let mut starts = Vec::with_capacity(nb + 1);
    let mut acc = 0;
    starts.push(0);
    for &s in &sizes {
        acc += s;
        starts.push(acc);
    }
    // The label of every slot, and the slots holding each bucket's blocks.
    let nslots = n / b;
    let mut label = vec![FREE; nslots];
    let mut slots_of: Vec<Vec<u32>> = sizes.iter().map(|&s| Vec::with_capacity(s / b)).collect();
    for (t, st) in stripes.iter().enumerate() {
        let first = t * (stripe_len / b);
        for (i, &l) in st.labels.iter().enumerate() {
            label[first + i] = l;
            slots_of[l as usize].push((first + i) as u32);
        }
    }
    // Each bucket's whole slots: [lo, lo + blocks); demote the blocks that do not fit.
    let mut lo = vec![0usize; nb];
    let mut demoted: Vec<Vec<T>> = vec![Vec::new(); nb];
    for d in 0..nb {
        lo[d] = starts[d].div_ceil(b);
        let hi = starts[d + 1] / b;
        let room = hi.saturating_sub(lo[d]);
        while slots_of[d].len() > room {
            let k = slots_of[d].pop().expect("more blocks than room") as usize;
            demoted[d].extend_from_slice(&data[k * b..(k + 1) * b]);
            label[k] = FREE;
        }
    }
    // Assign every misplaced block a slot of its bucket that holds no block of the bucket.
    let mut dest = vec![u32::MAX; nslots];
    let mut is_target = vec![false; nslots];
    for d in 0..nb {
        let range = lo[d]..lo[d] + slots_of[d].len();
        let mut free = range.clone().filter(|&k| label[k] as usize != d);
        for &k in &slots_of[d] {
            let k = k as usize;
            if !range.contains(&k) {
                let t = free.next().expect("as many free slots as misplaced blocks");
                dest[k] = t as u32;
                is_target[t] = true;
            }
        }
    }
    Moves {
        sizes,
        starts,
        slots_of,
        lo,
        demoted,
        dest,
        is_target,
    }
}

// Not dispatched: compiled for AVX2 the loop ran more instructions (callgrind, 2*10^6 u64:
// 34.0 M against 32.0 M).
/// Classifies `stripe` into blocks (see the module docs); `bucket(x)` < `nb`.
fn classify<T: Copy + bytemuck::Zeroable, B: Fn(&T) -> usize + Copy>(
    stripe: &mut [T],
    bucket: &B,
    nb: usize,
    b: usize,
) -> Stripe<T> {
    // By value: the closure's captures then stay in registers, where through a reference
    // they were loaded again at every element (a store may alias them).
    let bucket = *bucket;
    let mut buf = vec![T::zeroed(); nb * b];
    let mut fill = vec![0usize; nb];
    let mut labels = Vec::with_capacity(stripe.len() / b);
    let mut w = 0;
    for r in 0..stripe.len() {
        let x = stripe[r];
        let d = bucket(&x);
        let f = fill[d];
        buf[d * b + f] = x;
        if f + 1 == b {
            // w + b <= r + 1: the block overwrites elements already read.
            stripe[w..w + b].copy_from_slice(&buf[d * b..d * b + b]);
            labels.push(d as u16);
            w += b;
            fill[d] = 0;
        } else {
            fill[d] = f + 1;
        }
    }
    Stripe { labels, buf, fill }
}

/// A path or cycle of block moves: `order[start..start + len]` lists its slots, and the
/// block in each slot goes to the next one; in a cycle the last goes to the first, in a
/// path the last slot's content is free.
struct Chain {
    start: usize,
    len: usize,
    cycle: bool,
}

/// The paths and cycles of the moves `dest` (`u32::MAX`: the slot's block stays or it holds
/// none), as one list of slots and the chains' ranges in it; `is_target[k]`: some block
/// moves to slot `k`.
fn chains(dest: &[u32], is_target: &[bool]) -> (Vec<u32>, Vec<Chain>) {
    let mut seen = vec![false; dest.len()];
    // Every moving slot once, and the free slot ending each path.
    let movers = dest.iter().filter(|&&t| t != u32::MAX).count();
    let paths = (0..dest.len())
        .filter(|&k| dest[k] != u32::MAX && !is_target[k])
        .count();
    let mut order = Vec::with_capacity(movers + paths);
    let mut chains = Vec::new();
    // Paths start at a moving block whose slot no block moves to.
    for k in 0..dest.len() {
        if dest[k] != u32::MAX && !is_target[k] {
            let start = order.len();
            order.push(k as u32);
            seen[k] = true;
            let mut j = dest[k];
            loop {
                order.push(j);
                seen[j as usize] = true;
                if dest[j as usize] == u32::MAX {
                    break;
                }
                j = dest[j as usize];
            }
            chains.push(Chain {
                start,
                len: order.len() - start,
                cycle: false,
            });
        }
    }
    // Every other moving block is on a cycle.
    for k in 0..dest.len() {
        if dest[k] != u32::MAX && !seen[k] {
            let start = order.len();
            let mut j = k as u32;
            while !seen[j as usize] {
                seen[j as usize] = true;
                order.push(j);
                j = dest[j as usize];
            }
            chains.push(Chain {
                start,
                len: order.len() - start,
                cycle: true,
            });
        }
    }
    (order, chains)
}

/// One task's share of a chain: consecutive slots of it.
struct Segment<'a, T> {
    blocks: Vec<&'a mut [T]>,
    /// The whole of a cycle: rotated by its task alone.
    whole_cycle: bool,
    /// Keep the last block before shifting: the next segment's first slot receives it.
    save: bool,
    /// The segment whose kept block this segment's first slot receives.
    from: Option<usize>,
}

/// Moves the blocks (of `b` elements) of `slots` along `chains`, in parallel.
///
/// Chains are cut into segments of at most [`SEGMENT`] slots. A chain of one segment is
/// moved by one task (a cycle through one block of temporary space). In a longer chain,
/// every segment keeps its last block and shifts the others one step; then the first slot
/// of each segment receives the block kept by the one before it (for a cycle's first
/// segment, its last one's). Kept blocks: at most one per [`SEGMENT`] slots.
fn move_blocks<T: Copy + Send + Sync>(slots: &mut [T], b: usize, order: &[u32], chains: &[Chain]) {
    let mut table: Vec<Option<&mut [T]>> = slots.chunks_mut(b).map(Some).collect();
    let mut take = |k: u32| table[k as usize].take().expect("a slot in two chains");
    let mut segments: Vec<Segment<T>> = Vec::new();
    for c in chains {
        let list = &order[c.start..c.start + c.len];
        if c.len <= SEGMENT {
            segments.push(Segment {
                blocks: list.iter().map(|&k| take(k)).collect(),
                whole_cycle: c.cycle,
                save: false,
                from: None,
            });
            continue;
        }
        let first = segments.len();
        let count = c.len.div_ceil(SEGMENT);
        for (i, seg) in list.chunks(SEGMENT).enumerate() {
            let from = if i > 0 {
                Some(first + i - 1)
            } else if c.cycle {
                Some(first + count - 1)
            } else {
                None
            };
            segments.push(Segment {
                blocks: seg.iter().map(|&k| take(k)).collect(),
                whole_cycle: false,
                save: c.cycle || i + 1 < count,
                from,
            });
        }
    }
    type Head<'a, T> = Option<(&'a mut [T], usize)>;
    let (heads, kept): (Vec<Head<T>>, Vec<Option<Vec<T>>>) = segments
        .into_par_iter()
        .map(|mut seg| {
            let blocks = &mut seg.blocks;
            let last = if seg.whole_cycle || seg.save {
                blocks.last().map(|x| x.to_vec())
            } else {
                None
            };
            for i in (1..blocks.len()).rev() {
                let (a, c) = blocks.split_at_mut(i);
                c[0].copy_from_slice(a[i - 1]);
            }
            if seg.whole_cycle {
                if let (Some(head), Some(last)) = (blocks.first_mut(), &last) {
                    head.copy_from_slice(last);
                }
                return (None, None);
            }
            let head = match (seg.from, blocks.is_empty()) {
                (Some(from), false) => Some((blocks.swap_remove(0), from)),
                _ => None,
            };
            (head, last)
        })
        .unzip();
    for (head, from) in heads.into_iter().flatten() {
        if let Some(block) = &kept[from] {
            head.copy_from_slice(block);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sort::xorshift;

    fn pool(threads: usize) -> rayon::ThreadPool {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
    }

    /// The partition alone: groups in digit order, sizes right, a permutation of the input.
    #[test]
    fn partition_groups_by_digit() {
        let mut next = xorshift(7);
        for n in [0usize, 1, 5, 63, 64, 65, 1000, 4097, 20_000] {
            for (w, block) in [(1, 1), (3, 4), (4, 7), (8, 16), (8, 256)] {
                for threads in [1, 2, 3] {
                    let v: Vec<u64> = (0..n).map(|_| next() % 1000).collect();
                    let mut got = v.clone();
                    let digit = |x: &u64| ((*x >> 2) & ((1 << w) - 1)) as usize;
                    let sizes =
                        pool(threads).install(|| partition(&mut got, &digit, 1 << w, block, 50));
                    let mut start = 0;
                    for (d, &len) in sizes.iter().enumerate() {
                        assert!(got[start..start + len].iter().all(|x| digit(x) == d));
                        start += len;
                    }
                    assert_eq!(start, n);
                    let (mut a, mut b) = (v, got);
                    a.sort_unstable();
                    b.sort_unstable();
                    assert_eq!(a, b, "n {n} w {w} block {block} threads {threads}");
                }
            }
        }
    }

    /// Block moves along random paths and cycles, short and longer than a segment: every
    /// block ends where `dest` sends it, the slots outside every chain are untouched.
    #[test]
    fn move_blocks_follows_dest() {
        let mut next = xorshift(3);
        for (nslots, b) in [(1, 3), (10, 1), (300, 2), (1000, 1), (5000, 4)] {
            for threads in [1, 2] {
                // Shuffle the slots and cut them into chains of 1 to 400 slots; a chain
                // is a cycle, a path (its last slot is free), or left alone.
                let mut perm: Vec<usize> = (0..nslots).collect();
                for i in (1..nslots).rev() {
                    perm.swap(i, next() as usize % (i + 1));
                }
                let mut dest = vec![u32::MAX; nslots];
                let mut is_target = vec![false; nslots];
                let mut long = false;
                let mut at = 0;
                while at < nslots {
                    let len = (1 + next() as usize % 400).min(nslots - at);
                    let c = &perm[at..at + len];
                    at += len;
                    let kind = next() % 3;
                    if kind == 2 || len < 2 {
                        continue;
                    }
                    long |= len > SEGMENT;
                    for w in c.windows(2) {
                        dest[w[0]] = w[1] as u32;
                        is_target[w[1]] = true;
                    }
                    if kind == 0 {
                        dest[c[len - 1]] = c[0] as u32;
                        is_target[c[0]] = true;
                    }
                }
                // Block k holds the value k in every element.
                let mut data: Vec<u64> = (0..nslots * b).map(|i| (i / b) as u64).collect();
                let (order, chains) = chains(&dest, &is_target);
                pool(threads).install(|| move_blocks(&mut data, b, &order, &chains));
                let block = |k: usize| &data[k * b..(k + 1) * b];
                for k in 0..nslots {
                    if dest[k] != u32::MAX {
                        let t = dest[k] as usize;
                        assert!(block(t).iter().all(|&x| x == k as u64), "block {k} to {t}");
                    } else if !is_target[k] {
                        assert!(block(k).iter().all(|&x| x == k as u64), "slot {k} touched");
                    }
                }
                assert!(long || nslots < 1000, "no chain longer than a segment");
            }
        }
    }

    /// Bits of `x` made into a value of every sort key type: `ty` picks the type. Floats
    /// take special values (NaNs of both signs and any payload, ±0, ±inf) one time in four.
    fn sort_all_isas(raw: &[u64], ty: usize, threads: usize, tuning: Tuning, sizes: Sizes) {
        use crate::sort::{RadixKey, Record, SortKey};
        fn special64(x: u64) -> f64 {
            const S: [f64; 8] = [
                f64::NAN,
                -f64::NAN,
                0.0,
                -0.0,
                f64::INFINITY,
                f64::NEG_INFINITY,
                1.0,
                -1.0,
            ];
            match x % 4 {
                0 => S[(x >> 2) as usize % 8],
                1 => f64::from_bits(x | 0x7ff0_0000_0000_0000),
                _ => f64::from_bits(x),
            }
        }
        fn special32(x: u64) -> f32 {
            const S: [f32; 8] = [
                f32::NAN,
                -f32::NAN,
                0.0,
                -0.0,
                f32::INFINITY,
                f32::NEG_INFINITY,
                1.0,
                -1.0,
            ];
            match x % 4 {
                0 => S[(x >> 2) as usize % 8],
                1 => f32::from_bits(x as u32 | 0x7f80_0000),
                _ => f32::from_bits((x >> 7) as u32),
            }
        }
        fn run<T: SortKey>(v: Vec<T>, threads: usize, tuning: Tuning, sizes: Sizes) {
            let key = |x: &T| x.sort_key().radix_prefix();
            let bytes = |v: &[T]| bytemuck::cast_slice::<T, u8>(v).to_vec();
            let direct = <T::Key as RadixKey>::PREFIX_IS_KEY && std::mem::size_of::<T>() <= 16;
            let mut portable: Option<Vec<T>> = None;
            for isa in Isa::available() {
                let tuning = Tuning { isa, ..tuning };
                let sizes = Sizes { isa, ..sizes };
                let mut got = v.clone();
                pool(threads).install(|| {
                    if direct {
                        sort_with_sizes(&mut got, &key, &tuning, &sizes)
                    } else {
                        sort_records_with_sizes(
                            &mut got,
                            &key,
                            &|p: &mut [T]| {
                                radix::sort_with_tuning(p, &key, &tuning, None);
                                p.sort_by_key(|x| x.sort_key());
                            },
                            &tuning,
                            &sizes,
                        )
                    }
                });
                assert!(
                    got.windows(2).all(|w| w[0].sort_key() <= w[1].sort_key()),
                    "{isa:?}: not sorted"
                );
                // The stable sort alone, against the standard library's stable sort.
                let mut stable = v.clone();
                let mut want = v.clone();
                want.sort_by_key(|x| x.sort_key());
                pool(threads).install(|| radix::sort_with_tuning(&mut stable, &key, &tuning, None));
                if direct {
                    assert_eq!(bytes(&stable), bytes(&want), "{isa:?}: stable sort");
                }
                match &portable {
                    None => {
                        // A permutation of the input.
                        let mut a: Vec<Vec<u8>> = bytemuck::cast_slice::<T, u8>(&got)
                            .chunks(std::mem::size_of::<T>().max(1))
                            .map(|c| c.to_vec())
                            .collect();
                        let mut b: Vec<Vec<u8>> = bytemuck::cast_slice::<T, u8>(&v)
                            .chunks(std::mem::size_of::<T>().max(1))
                            .map(|c| c.to_vec())
                            .collect();
                        a.sort();
                        b.sort();
                        assert_eq!(a, b, "not a permutation");
                        portable = Some(got);
                    }
                    // Every dispatched path moves the elements exactly as the portable one.
                    Some(p) => assert_eq!(
                        bytes(&got),
                        bytes(p),
                        "{isa:?} differs from the portable path"
                    ),
                }
            }
        }
        match ty {
            0 => run(
                raw.iter().map(|&x| x as u8).collect(),
                threads,
                tuning,
                sizes,
            ),
            1 => run(
                raw.iter().map(|&x| x as u16).collect(),
                threads,
                tuning,
                sizes,
            ),
            2 => run(
                raw.iter().map(|&x| x as u32).collect(),
                threads,
                tuning,
                sizes,
            ),
            3 => run(raw.to_vec(), threads, tuning, sizes),
            4 => run(
                raw.iter().map(|&x| x as i8).collect(),
                threads,
                tuning,
                sizes,
            ),
            5 => run(
                raw.iter().map(|&x| x as i16).collect(),
                threads,
                tuning,
                sizes,
            ),
            6 => run(
                raw.iter().map(|&x| x as i32).collect(),
                threads,
                tuning,
                sizes,
            ),
            7 => run(
                raw.iter().map(|&x| x as i64).collect(),
                threads,
                tuning,
                sizes,
            ),
            8 => run(
                raw.iter().map(|&x| special32(x)).collect(),
                threads,
                tuning,
                sizes,
            ),
            9 => run(
                raw.iter().map(|&x| special64(x)).collect(),
                threads,
                tuning,
                sizes,
            ),
            10 => run(
                raw.iter()
                    .map(|&x| {
                        Record::<12, 4>(bytemuck::cast(
                            [x, x.rotate_left(17), !x].map(|y| y as u32),
                        ))
                    })
                    .collect(),
                threads,
                tuning,
                sizes,
            ),
            11 => run(
                raw.iter()
                    .map(|&x| Record::<16, 10>(bytemuck::cast([x, x.rotate_left(29)])))
                    .collect(),
                threads,
                tuning,
                sizes,
            ),
            _ => run(
                raw.iter()
                    .map(|&x| [x as u32, 7])
                    .collect::<Vec<[u32; 2]>>()
                    .iter()
                    .map(|p| Record::<8, 3>(bytemuck::cast(*p)))
                    .collect(),
                threads,
                tuning,
                sizes,
            ),
        }
    }

    /// Sorts at the default sizes, large enough for the in-place partition, on every ISA.
    #[test]
    fn default_sizes_agree_on_every_isa() {
        let mut next = xorshift(11);
        let raw: Vec<u64> = (0..300_000).map(|_| next()).collect();
        for ty in [3, 7, 9, 8, 2] {
            let size = [1, 2, 4, 8, 1, 2, 4, 8, 4, 8][ty];
            let sizes = Sizes {
                part: 20_000,
                ..Sizes::for_size(size)
            };
            let tuning = Tuning {
                leaf: 20_000,
                ..Tuning::for_size(size)
            };
            sort_all_isas(&raw, ty, 2, tuning, sizes);
        }
    }

    /// Floats uniform in [-1, 1), whose exponents cluster: the partition splits them by a
    /// table, and its parts, whose ends fall anywhere, are sorted on their keys less their
    /// minimum. As the order-preserving integers of their bits (`u64`), as `f64`, and as
    /// `f32`, on every ISA, with parts sorted by the LSD sort (leaf as large as a part) and
    /// by a further MSD pass (leaf smaller than a part).
    #[test]
    fn skewed_floats_agree_on_every_isa() {
        let mut next = xorshift(5);
        let floats: Vec<f64> = (0..200_000)
            .map(|_| (next() >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0)
            .collect();
        let ordered: Vec<u64> = floats
            .iter()
            .map(|x| {
                let b = x.to_bits();
                if b >> 63 == 1 {
                    !b
                } else {
                    b | 1 << 63
                }
            })
            .collect();
        // `special64` and `special32` take two bits in four inputs for special values;
        // shifting the bits up keeps the rest floats of [-1, 1).
        let bits64: Vec<u64> = floats.iter().map(|x| x.to_bits()).collect();
        let bits32: Vec<u64> = floats
            .iter()
            .map(|&x| u64::from((x as f32).to_bits()) << 7)
            .collect();
        for leaf in [20_000, 700] {
            for (raw, ty, size) in [(&ordered, 3, 8), (&bits64, 9, 8), (&bits32, 8, 4)] {
                let sizes = Sizes {
                    part: 20_000,
                    ..Sizes::for_size(size)
                };
                let tuning = Tuning {
                    leaf,
                    ..Tuning::for_size(size)
                };
                sort_all_isas(raw, ty, 2, tuning, sizes);
            }
        }
    }

    proptest::proptest! {
        #![proptest_config(crate::proptest_config(200))]

        /// Every sort key type, every path (tiny thresholds), on every ISA this CPU has:
        /// each dispatched path gives exactly the portable path's output, and the stable
        /// sort gives the standard library's stable sort.
        #[test]
        fn prop_every_isa_matches_portable(
            v in proptest::collection::vec(proptest::prelude::any::<u64>(), 0..2000),
            shift in 0u32..64,
            keep in proptest::prelude::any::<u64>(),
            ty in 0usize..13,
            threads in 1usize..=2,
            part in 8usize..200,
            block in 1usize..40,
            sample in 1usize..100,
            stripe in 1usize..500,
        ) {
            // Half the cases masked and shifted: few varying bits, with duplicates.
            let raw: Vec<u64> = if shift % 2 == 0 { v } else { v.iter().map(|&x| (x & keep) >> (shift / 2)).collect() };
            let tuning = Tuning { small: 4, leaf: 16, par_min: 32, isa: Isa::Baseline };
            let sizes = Sizes { part, block, sample, stripe, isa: Isa::Baseline };
            sort_all_isas(&raw, ty, threads, tuning, sizes);
        }

        /// Records whose prefix does not decide the order: partitioned on the prefix, every
        /// part (and every run of equal prefixes, however large) finished by the full key.
        #[test]
        fn prop_records_finish_every_part(
            v in proptest::collection::vec((0u64..64, proptest::prelude::any::<u64>()), 0..3000),
            threads in 1usize..=2,
            part in 8usize..200,
            block in 1usize..40,
            sample in 1usize..100,
            stripe in 1usize..500,
        ) {
            // The prefix is the first field (64 values in its top bits: long runs of equal
            // prefixes); the full key adds the second.
            let v: Vec<[u64; 2]> = v.iter().map(|&(a, b)| [a << 58, b]).collect();
            let prefix = |x: &[u64; 2]| x[0];
            let full = |x: &[u64; 2]| (x[0], x[1]);
            let mut want = v.clone();
            want.sort_unstable_by_key(full);
            let mut got = v;
            let tuning = Tuning { small: 4, leaf: 16, par_min: 32, isa: Isa::active() };
            let sizes = Sizes { part, block, sample, stripe, isa: Isa::active() };
            pool(threads).install(|| {
                sort_records_with_sizes(
                    &mut got,
                    &prefix,
                    &|p: &mut [[u64; 2]]| p.sort_unstable_by_key(full),
                    &tuning,
                    &sizes,
                )
            });
            proptest::prop_assert_eq!(got, want);
        }

        /// Elements sorted as a rewritten form of themselves (here: the bits of `f64`, sorted
        /// as the order-preserving integers of their bits, special values and skewed floats
        /// among them), with tiny thresholds on every ISA: exactly the elements sorted by
        /// that order, every part decoded back.
        #[test]
        fn prop_encoded_parts_match_sort(
            v in proptest::collection::vec(proptest::prelude::any::<u64>(), 0..3000),
            threads in 1usize..=2,
            part in 8usize..200,
            block in 1usize..40,
            sample in 1usize..100,
            stripe in 1usize..500,
        ) {
            fn order(b: u64) -> u64 {
                b ^ ((((b as i64) >> 63) as u64) | 1 << 63)
            }
            fn unorder(k: u64) -> u64 {
                k ^ (((((!k) as i64) >> 63) as u64) | 1 << 63)
            }
            let v: Vec<u64> = v
                .iter()
                .map(|&x| match x % 4 {
                    0 => [f64::NAN, -f64::NAN, 0.0, -0.0, f64::INFINITY, f64::NEG_INFINITY][(x >> 2) as usize % 6].to_bits(),
                    1 => x,
                    _ => ((x >> 11) as f64 / (1u64 << 52) as f64 - 1.0).to_bits(),
                })
                .collect();
            let mut want = v.clone();
            want.sort_unstable_by_key(|&b| order(b));
            for isa in Isa::available() {
                let tuning = Tuning { small: 4, leaf: 16, par_min: 32, isa };
                let sizes = Sizes { part, block, sample, stripe, isa };
                let mut got = v.clone();
                pool(threads).install(|| {
                    sort_encoded_with_sizes(
                        &mut got,
                        &|b: &u64| order(*b),
                        &|k: &u64| *k,
                        &|p: &mut [u64]| p.iter_mut().for_each(|b| *b = order(*b)),
                        &|p: &mut [u64]| p.iter_mut().for_each(|k| *k = unorder(*k)),
                        &tuning,
                        &sizes,
                    )
                });
                proptest::prop_assert_eq!(&got, &want, "{:?}", isa);
            }
        }

        /// The whole sort with tiny thresholds (every path: partitions, recursion into large
        /// buckets, out-of-place parts) against `sort_unstable`, on 1 and 2 threads.
        #[test]
        fn prop_tiny_thresholds_match_sort(
            v in proptest::collection::vec(proptest::prelude::any::<u64>(), 0..3000),
            shift in 0u32..64,
            keep in proptest::prelude::any::<u64>(),
            threads in 1usize..=2,
            part in 8usize..200,
            block in 1usize..40,
            sample in 1usize..100,
            stripe in 1usize..500,
        ) {
            let v: Vec<u64> = v.iter().map(|&x| (x & keep) >> shift).collect();
            let mut want = v.clone();
            want.sort_unstable();
            let mut got = v;
            let tuning = Tuning { small: 4, leaf: 16, par_min: 32, isa: Isa::active() };
            pool(threads).install(|| sort_with_sizes(&mut got, &|x: &u64| *x, &tuning, &Sizes { part, block, sample, stripe, isa: Isa::active() }));
            proptest::prop_assert_eq!(got, want);
        }
    }
}
