//! The in-memory parallel sort: the public entry points.
//!
//! Every entry point sorts by a [`SortKey`]: integers by value, floats in numpy's order
//! (`-inf < ... < -0.0 < 0.0 < ... < inf < NaN`), records by their key bytes as unsigned
//! bytes. The work is done by parallel radix sorts, in one of three ways:
//!
//! - **In place** ([`par_sort`] of elements of at most 16 bytes whose key fits in 64 bits,
//!   every primitive type, larger than 8 MiB, floats larger than 16 MiB): the input is
//!   partitioned in place by its top key bits, the buckets chosen from a sample when the
//!   keys are skewed, and each part (a few MiB) is sorted in cache; see the `inplace`
//!   module's source. Unstable. Scratch memory: at most a sixth of the input plus about 10
//!   MiB per thread.
//! - **Direct** (the same types, in the stable sorts, and [`par_sort`] below those sizes):
//!   an MSD pass out of cache, then LSD inside it (the `radix` module), the key computed on
//!   the fly at each pass. Stable. Scratch memory: `n * size_of::<T>()` bytes.
//!
//!   [`par_sort`] rewrites `f32` and `f64` in place as integers that sort in the same
//!   order, sorts those, and rewrites them back, instead of computing a key at every pass:
//!   part by part while each is in cache (the in-place partition reads the key on the fly),
//!   or, for an input of at most two parts, whole. The rewrite is exact, so NaN payloads
//!   survive; the stable sorts never rewrite their input.
//! - **By index**: larger records, and keys longer than 8 bytes, are sorted as
//!   `(top 8 key bytes, index)` pairs; runs of pairs with equal prefixes are then ordered by
//!   the full key (rare for random keys), and the records are gathered in sorted order and
//!   copied back. Each radix pass then moves 16 bytes per record instead of the whole
//!   record; the price is the gather's random reads. So [`par_sort`] first partitions
//!   inputs larger than 8 MiB in place on the key prefix (as above) and sorts each part by
//!   index, where the gather's reads stay in cache: 100-byte records, 10^6, 27 ms against
//!   58 ms sorted by index whole and 39 ms for rayon's comparison sort (BENCHMARKS.md).
//!   Scratch memory: `32 * n` bytes during the radix sort, then `(16 + size_of::<T>()) * n`
//!   bytes for the gather (for the parts of [`par_sort`], at most that).
//!
//! [`scratch_bytes`] and [`par_sort_scratch_bytes`] give the peak for a given input, for
//! callers that budget memory. Fresh scratch memory costs its page faults on first touch (a
//! quarter or more of a large out-of-place sort's time): callers of the stable sorts that
//! sort many pieces keep one [`SortScratch`] and call [`par_sort_with_scratch`].

use std::cmp::Ordering;
use std::mem::size_of;

use rayon::prelude::*;

use super::key::{RadixKey, SortKey};
use super::{inplace, radix};
use crate::chunk::ParOptions;
use crate::cpu::{multiversion, Isa};
use crate::error::Result;

/// Sorts `data` by [`SortKey`] in parallel on rayon's global thread pool.
///
/// Equal elements (equal keys: for floats, NaNs of different payloads) may be reordered;
/// use [`par_sort_stable`] to keep them in input order. Primitive types larger than 8 MiB
/// (floats: 16 MiB) are sorted in place, with scratch memory bounded by
/// [`par_sort_scratch_bytes`].
///
/// For a [`MappedArrayMut`](crate::MappedArrayMut), use [`sort_array`](super::sort_array)
/// instead: it sorts in place with this function when the array fits the memory budget,
/// and out of core otherwise. `par_sort` on a mapping larger than the memory the process
/// may use thrashes the page cache: its passes touch every page, some in scattered order,
/// and each page is read back from disk and written out again many times (a 2 GiB mapping in
/// a 512 MiB memory cgroup was still sorting after 10 minutes; it takes seconds in memory).
/// Like any access to a mapping, it also depends on no other program truncating the file
/// meanwhile (see [the mmap contract](crate#safety-the-mmap-contract)).
///
/// # Examples
/// ```
/// let mut v = vec![3.0, f64::NAN, -0.0, 0.0, f64::NEG_INFINITY, 1.5];
/// outcore::sort::par_sort(&mut v);
/// assert_eq!(format!("{v:?}"), "[-inf, -0.0, 0.0, 1.5, 3.0, NaN]");
/// ```
pub fn par_sort<T: SortKey>(data: &mut [T]) {
    if sort_float_bits(data) {
        return;
    }
    let prefix = |x: &T| x.sort_key().radix_prefix();
    if direct::<T, T::Key>() {
        inplace::sort(data, &prefix);
    } else {
        // Partitioned in place on the key prefix, each part then sorted by index in cache,
        // where its gather reads stay local.
        inplace::sort_records(data, &prefix, &|p: &mut [T]| {
            sort_by_radix_key(p, &|x: &T| x.sort_key(), None)
        });
    }
}

/// Sorts `f32` and `f64` as the unsigned integers of their keys, and returns `true`; any other
/// type is left alone (`false`).
///
/// Each float's bits are rewritten into an order-preserving integer (negative: every bit
/// flipped; positive: the sign bit set), the integers are sorted, and the rewrite is undone
/// (see [`sort_as_bits`] for where). The key of every radix pass is then the element
/// itself, where sorting the floats directly computes the key (and checks for NaN) at every
/// pass: 10^6 `f64` sorted at 152 M elements/s this way against 109 M/s on two threads, and
/// 10^7 at 172 against 142 M/s (`sort_ratios`, BENCHMARKS.md).
///
/// The rewrite is exactly invertible, so every bit survives, NaN payloads too. NaNs with the
/// sign bit set would sort first as integers: they are counted and moved behind the
/// positive NaNs at the end (all NaNs are equal in numpy's order).
fn sort_float_bits<T: SortKey>(data: &mut [T]) -> bool {
    use std::any::TypeId;
    if TypeId::of::<T>() == TypeId::of::<f64>() {
        sort_as_bits::<u64>(bytemuck::cast_slice_mut(data));
        true
    } else if TypeId::of::<T>() == TypeId::of::<f32>() {
        sort_as_bits::<u32>(bytemuck::cast_slice_mut(data));
        true
    } else {
        false
    }
}

/// The bits of an IEEE float, as the unsigned integer of its width.
trait FloatBits: SortKey + Copy + Eq {
    /// An integer whose order is the float's (for every float but NaN, whose position
    /// depends on its sign): see [`sort_float_bits`].
    fn float_to_ordered(self) -> Self;
    /// The inverse of [`float_to_ordered`](FloatBits::float_to_ordered).
    fn ordered_to_float(self) -> Self;
    /// Whether these are the bits of a NaN with the sign bit set.
    fn is_negative_nan(self) -> bool;
}

macro_rules! float_bits {
    ($($u:ty => $i:ty, $neg_inf:expr),*) => {$(
        impl FloatBits for $u {
            #[inline(always)]
            fn float_to_ordered(self) -> $u {
                const SIGN: $u = 1 << (<$u>::BITS - 1);
                self ^ (((self as $i) >> (<$u>::BITS - 1)) as $u | SIGN)
            }
            #[inline(always)]
            fn ordered_to_float(self) -> $u {
                const SIGN: $u = 1 << (<$u>::BITS - 1);
                self ^ ((((!self) as $i) >> (<$u>::BITS - 1)) as $u | SIGN)
            }
            #[inline(always)]
            fn is_negative_nan(self) -> bool {
                // Sign set, exponent all ones, mantissa not zero.
                self > $neg_inf
            }
        }
    )*};
}
// The largest bit pattern below the negative NaNs: negative infinity.
float_bits!(u64 => i64, 0xfff0_0000_0000_0000, u32 => i32, 0xff80_0000);

/// Elements per task of the rewriting passes (256 KiB of `f64`).
const REWRITE_CHUNK: usize = 32 << 10;

multiversion! {
    /// [`encode`] for `isa`.
    fn encode_isa[U: FloatBits](p: &mut [U]) -> usize => encode;
}

multiversion! {
    /// [`decode`] for `isa`.
    fn decode_isa[U: FloatBits](p: &mut [U]) -> () => decode;
}

/// Rewrites the floats' bits in `p` as ordered integers; returns how many were NaNs with
/// the sign bit set. Compiled for the CPU's vector width: built for the baseline (SSE2,
/// which has no 64-bit arithmetic shift or comparison), this pass took 0.40 ms for 10^6
/// `f64` against 0.15 ms for [`decode`].
#[inline(always)]
fn encode<U: FloatBits>(p: &mut [U]) -> usize {
    let mut nans = 0;
    for x in p {
        nans += usize::from(x.is_negative_nan());
        *x = x.float_to_ordered();
    }
    nans
}

/// Undoes [`encode`] on `p`.
#[inline(always)]
fn decode<U: FloatBits>(p: &mut [U]) {
    for x in p {
        *x = x.ordered_to_float();
    }
}

/// [`sort_float_bits`] on the bits.
///
/// An input larger than two parts of the in-place sort is rewritten part by part, in cache
/// ([`inplace::sort_encoded`]): two passes over the whole input in memory saved (10^7 `f64`
/// on one thread: the rewrites had cost 14% of the sort). A smaller one is rewritten whole
/// and sorted out of place.
fn sort_as_bits<U: FloatBits>(bits: &mut [U]) {
    let isa = Isa::active();
    let key = |x: &U| x.float_to_ordered().sort_key().radix_prefix();
    let coded = |x: &U| x.sort_key().radix_prefix();
    let encode = |p: &mut [U]| {
        encode_isa(isa, p);
    };
    let decode = |p: &mut [U]| decode_isa(isa, p);
    if inplace::sort_encoded(bits, &key, &coded, &encode, &decode) {
        // Negative NaNs sort first as integers: move them behind the positive ones.
        let negative_nans = bits.iter().take_while(|x| x.is_negative_nan()).count();
        if negative_nans > 0 {
            bits.rotate_left(negative_nans);
        }
        return;
    }
    let negative_nans: usize = bits
        .par_chunks_mut(REWRITE_CHUNK)
        .map(|c| encode_isa(isa, c))
        .sum();
    // Out of place (see `inplace::WHOLE_ENCODED`), as `par_sort` sorts integers up to a part.
    radix::sort(bits, &|x: &U| x.sort_key().radix_prefix(), None);
    bits.par_chunks_mut(REWRITE_CHUNK)
        .for_each(|c| decode_isa(isa, c));
    if negative_nans > 0 {
        bits.rotate_left(negative_nans);
    }
}

/// [`par_sort`] on the thread pool chosen by `opts`.
///
/// # Errors
/// [`Error::ThreadPool`](crate::Error::ThreadPool) if the dedicated thread pool
/// cannot be started.
pub fn par_sort_with<T: SortKey>(data: &mut [T], opts: &ParOptions) -> Result<()> {
    opts.install(|| par_sort(data))
}

/// Working memory kept between stable sorts, for callers that sort many pieces one after
/// another: the first sort allocates it and takes its page faults, later sorts of pieces no
/// larger reuse it. ([`par_sort`] needs no such buffer for large inputs: it sorts them in
/// place.)
///
/// It holds the radix sort's scratch buffer: the whole scratch for primitive types, the
/// buffer for the `(key prefix, index)` pairs for larger records (whose pairs and gathered
/// copy are still allocated per sort).
/// Holding it keeps [`allocated_bytes`](SortScratch::allocated_bytes) of memory in use;
/// drop it to give the memory back.
///
/// # Examples
/// ```
/// use outcore::sort::{par_sort_with_scratch, SortScratch};
/// use outcore::ParOptions;
/// let mut scratch = SortScratch::new();
/// for run in [vec![3u64, 1, 2], vec![9, 8, 7]] {
///     let mut run = run;
///     par_sort_with_scratch(&mut run, &mut scratch, &ParOptions::new()).unwrap();
///     assert!(run.windows(2).all(|w| w[0] <= w[1]));
/// }
/// ```
#[derive(Debug, Default)]
pub struct SortScratch {
    buf: Vec<u128>,
}

impl SortScratch {
    /// An empty scratch; it grows on first use.
    pub fn new() -> SortScratch {
        SortScratch::default()
    }

    /// The memory it holds now, in bytes.
    pub fn allocated_bytes(&self) -> usize {
        self.buf.len() * size_of::<u128>()
    }
}

/// Stable sort like [`par_sort_stable_with`], taking its scratch memory from `scratch` (grown
/// if needed, kept for the next call) instead of allocating it.
///
/// For one-off sorts of primitive types, [`par_sort`] (in place) is faster and needs far
/// less memory; this pays off for the stable order, or when many small pieces are sorted.
///
/// # Errors
/// As [`par_sort_with`].
pub fn par_sort_with_scratch<T: SortKey>(
    data: &mut [T],
    scratch: &mut SortScratch,
    opts: &ParOptions,
) -> Result<()> {
    let buf = &mut scratch.buf;
    opts.install(|| sort_by_radix_key(data, &|x: &T| x.sort_key(), Some(buf)))
}

/// Sorts `data` by [`SortKey`] in parallel, keeping elements with equal keys in input order.
pub fn par_sort_stable<T: SortKey>(data: &mut [T]) {
    sort_by_radix_key(data, &|x: &T| x.sort_key(), None);
}

/// [`par_sort_stable`] on the thread pool chosen by `opts`.
///
/// # Errors
/// As [`par_sort_with`].
pub fn par_sort_stable_with<T: SortKey>(data: &mut [T], opts: &ParOptions) -> Result<()> {
    opts.install(|| par_sort_stable(data))
}

/// Sorts `data` in parallel by the key `key` computes for each element, keeping elements
/// with equal keys in input order (stable).
///
/// The key is any [`SortKey`]: an integer, a float (numpy order), or a byte array compared as
/// unsigned bytes, which is how fixed-size records are sorted by a byte range.
///
/// # Examples
/// ```
/// // Records of 8 bytes sorted by their bytes 2..5, compared as unsigned bytes.
/// let mut recs: Vec<[u8; 8]> = vec![[0, 0, 9, 9, 9, 0, 0, 1], [7, 7, 1, 2, 3, 7, 7, 2]];
/// outcore::sort::par_sort_by_key(&mut recs, |r| <[u8; 3]>::try_from(&r[2..5]).unwrap());
/// assert_eq!(recs[0][7], 2);
/// ```
pub fn par_sort_by_key<T, K, F>(data: &mut [T], key: F)
where
    T: bytemuck::Pod + Send + Sync,
    K: SortKey,
    F: Fn(&T) -> K + Sync,
{
    sort_by_radix_key(data, &|x: &T| key(x).sort_key(), None);
}

/// [`par_sort_by_key`] on the thread pool chosen by `opts`.
///
/// # Errors
/// As [`par_sort_with`].
pub fn par_sort_by_key_with<T, K, F>(data: &mut [T], key: F, opts: &ParOptions) -> Result<()>
where
    T: bytemuck::Pod + Send + Sync,
    K: SortKey,
    F: Fn(&T) -> K + Sync,
{
    let key = &key;
    opts.install(|| par_sort_by_key(data, key))
}

/// Sorts `data` in parallel with a comparison function: the fallback for orders that have
/// no radix key. Stable.
pub fn par_sort_by<T, F>(data: &mut [T], compare: F)
where
    T: Send,
    F: Fn(&T, &T) -> Ordering + Sync,
{
    data.par_sort_by(compare);
}

/// The indices that sort `data`, stably: `data[idx[0]], data[idx[1]], ...` is sorted by
/// [`SortKey`], and equal keys keep their input order (numpy's `argsort(kind='stable')`).
///
/// # Examples
/// ```
/// let v = [2.0, f64::NAN, -1.0, 2.0];
/// assert_eq!(outcore::sort::argsort(&v), [2, 0, 3, 1]);
/// ```
pub fn argsort<T: SortKey>(data: &[T]) -> Vec<usize> {
    sorted_pairs(data, &|x: &T| x.sort_key(), None)
        .into_par_iter()
        .map(|p| p[1] as usize)
        .collect()
}

/// [`argsort`] on the thread pool chosen by `opts`.
///
/// # Errors
/// As [`par_sort_with`].
pub fn argsort_with<T: SortKey>(data: &[T], opts: &ParOptions) -> Result<Vec<usize>> {
    opts.install(|| argsort(data))
}

/// Peak scratch memory, in bytes, that sorting `n` elements of `T` with [`par_sort_stable`],
/// [`par_sort_by_key`] (with key `T::Key`) or [`par_sort_with_scratch`] allocates besides the
/// input. [`argsort`] needs `32 * n` bytes besides its result. For [`par_sort`], see
/// [`par_sort_scratch_bytes`].
pub fn scratch_bytes<T: SortKey>(n: usize) -> usize {
    if direct::<T, T::Key>() {
        n * size_of::<T>()
    } else {
        n * (32usize).max(16 + size_of::<T>())
    }
}

/// An upper bound on the scratch memory, in bytes, that [`par_sort`] allocates besides the
/// input to sort `n` elements of `T` on `threads` threads.
///
/// For primitive types: the input's size up to 8 MiB, and at least that up to 16 MiB (floats
/// are sorted out of place up to there); beyond, at most a sixth of it plus about 10 MiB
/// per thread (the in-place sort). For records sorted by index: as [`scratch_bytes`] up to
/// 8 MiB; beyond, that plus the in-place partition's share (parts sorted by index at once
/// use at most what the whole input would).
///
/// # Examples
/// ```
/// use outcore::sort::par_sort_scratch_bytes;
/// let n = 100_000_000; // 800 MB of u64
/// assert!(par_sort_scratch_bytes::<u64>(n, 2) < n * 8 / 5);
/// ```
pub fn par_sort_scratch_bytes<T: SortKey>(n: usize, threads: usize) -> usize {
    let bytes = n.saturating_mul(size_of::<T>());
    if direct::<T, T::Key>() {
        inplace::scratch_bytes(bytes, threads)
    } else if bytes <= inplace::PART_BYTES {
        scratch_bytes::<T>(n)
    } else {
        scratch_bytes::<T>(n).saturating_add(inplace::scratch_bytes(bytes, threads))
    }
}

/// Whether elements of `T` sorted by `K` are moved by the radix sort itself.
fn direct<T, K: RadixKey>() -> bool {
    K::PREFIX_IS_KEY && size_of::<T>() <= 16
}

/// Stable parallel sort of `data` by the radix key `key`.
fn sort_by_radix_key<T, K, F>(data: &mut [T], key: &F, reuse: Option<&mut Vec<u128>>)
where
    T: bytemuck::Pod + Send + Sync,
    K: RadixKey,
    F: Fn(&T) -> K + Sync,
{
    if direct::<T, K>() {
        radix::sort(data, &|x: &T| key(x).radix_prefix(), reuse);
        return;
    }
    let pairs = sorted_pairs(data, key, reuse);
    let sorted: Vec<T> = pairs.par_iter().map(|p| data[p[1] as usize]).collect();
    drop(pairs);
    const COPY_CHUNK: usize = 1 << 16;
    data.par_chunks_mut(COPY_CHUNK)
        .zip(sorted.par_chunks(COPY_CHUNK))
        .for_each(|(d, s)| d.copy_from_slice(s));
}

/// `(key prefix, index)` pairs of `data`, stably sorted by the full key.
fn sorted_pairs<T, K, F>(data: &[T], key: &F, reuse: Option<&mut Vec<u128>>) -> Vec<[u64; 2]>
where
    T: Sync,
    K: RadixKey,
    F: Fn(&T) -> K + Sync,
{
    let mut pairs: Vec<[u64; 2]> = data
        .par_iter()
        .enumerate()
        .map(|(i, x)| [key(x).radix_prefix(), i as u64])
        .collect();
    radix::sort(&mut pairs, &|p: &[u64; 2]| p[0], reuse);
    if !K::PREFIX_IS_KEY {
        // Pairs with equal prefixes are in index order (the radix sort is stable); a stable
        // sort by the full key keeps that order among equal keys.
        pairs
            .par_chunk_by_mut(|a, b| a[0] == b[0])
            .filter(|run| run.len() > 1)
            .for_each(|run| {
                if run.len() > 1 << 14 {
                    run.par_sort_by_key(|p| key(&data[p[1] as usize]));
                } else {
                    run.sort_by_key(|p| key(&data[p[1] as usize]));
                }
            });
    }
    pairs
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The rewrite of float bits is its own exact inverse and orders like the sort key,
    /// for every class of float: both zeros, subnormals, infinities, NaNs of either sign;
    /// its vectorised passes match it on every instruction set.
    #[test]
    fn float_bits_invert_and_order_like_the_key() {
        let mut next = crate::sort::xorshift(0x9e37_79b9_7f4a_7c15);
        let mut bits: Vec<u64> = (0..20_000).map(|_| next()).collect();
        bits.extend([0, 1 << 63, 1, (1 << 63) | 1, 0x7ff0 << 48, 0xfff0 << 48]);
        bits.extend([0x7ff8 << 48, 0xfff8 << 48, 0x7ff0_0000_0000_0001, u64::MAX]);
        for &b in &bits {
            assert_eq!(b.float_to_ordered().ordered_to_float(), b);
            let f = f64::from_bits(b);
            assert_eq!(b.is_negative_nan(), f.is_nan() && f.is_sign_negative());
            let narrow = (f as f32).to_bits();
            assert_eq!(narrow.float_to_ordered().ordered_to_float(), narrow);
        }
        // The passes compiled for every instruction set this CPU has rewrite exactly as
        // the element-wise rewrite does, count the same negative NaNs, and undo it.
        let narrow: Vec<u32> = bits.iter().map(|&b| (b >> 32) as u32).collect();
        fn check<U: FloatBits + std::fmt::Debug>(v: &[U]) {
            let want: Vec<U> = v.iter().map(|x| x.float_to_ordered()).collect();
            let nans = v.iter().filter(|x| x.is_negative_nan()).count();
            assert!(nans > 0);
            for isa in Isa::available() {
                let mut p = v.to_vec();
                assert_eq!(encode_isa(isa, &mut p), nans, "{isa:?}");
                assert_eq!(p, want, "{isa:?}");
                decode_isa(isa, &mut p);
                assert_eq!(p, v, "{isa:?}");
            }
        }
        check(&bits);
        check(&narrow);
        for w in bits.windows(2) {
            let (a, b) = (f64::from_bits(w[0]), f64::from_bits(w[1]));
            if !a.is_nan() && !b.is_nan() {
                assert_eq!(
                    w[0].float_to_ordered().cmp(&w[1].float_to_ordered()),
                    a.sort_key().cmp(&b.sort_key()),
                    "{a} {b}"
                );
            }
        }
    }
}
