//! Reproducible synthetic datasets: the generation logic behind `outcore gen`.
//!
//! A [`Generator`] fills a `&mut [T]` (a `Vec`, or the slice of a [`MappedArrayMut`]) with
//! values of one [`Distribution`], in parallel, and returns a [`Checksum`] of the bytes it
//! wrote. The element types are the [`Kind`]s: the ten numeric dtypes and the Sort
//! Benchmark's 100-byte records ([`Record100`]).
//!
//! ```
//! use outcore::datasets::{Distribution, Generator};
//! use outcore::ParOptions;
//!
//! let mut v = vec![0.0f64; 100_000];
//! let sum = Generator::new(Distribution::Sorted, 42).fill(&mut v, &ParOptions::new())?;
//! assert!(v.windows(2).all(|w| w[0] <= w[1]));
//! assert!(v.iter().all(|&x| (0.0..1.0).contains(&x)));
//! assert_eq!(sum, outcore::datasets::checksum(&v));
//! # Ok::<(), outcore::Error>(())
//! ```
//!
//! # Determinism
//!
//! The output is a function of the distribution, the seed, the element type and the length
//! only: the same bytes on 1 or 64 threads, whatever the chunking. The array is cut into
//! blocks of [`BLOCK_LEN`] elements *by element index* (not by thread, not by page), and block
//! `b` draws from its own xoshiro256++ generator seeded with splitmix64 from `(seed, b)`.
//! Blocks are independent, so rayon fills them in any order on any thread. Two threads may
//! share the page at a block boundary (a `.npy` header shifts the data off page alignment);
//! that costs one contended page fault per block of hundreds of kilobytes, which is
//! negligible, whereas tying the blocks to the memory layout would tie the *values* to it.
//!
//! Values are reproducible for a given version of outcore. `normal` and `zipf` sample through
//! `rand_distr` and `nearly-sorted` picks its positions through `rand`, whose value stability
//! is guaranteed within their minor versions (pinned by `Cargo.lock`); the other
//! distributions are computed by outcore itself.
//!
//! # Ordered distributions without a global pass
//!
//! `sorted` must be sorted across blocks that know nothing of each other, so it is sorted *by
//! construction*: element `i` of `n` gets the 64-bit value `i·q + ⌊r·q / 2⁶⁴⌋` with
//! `q = ⌊2⁶⁴ / n⌋` and `r` random: a stratified sample of the whole 64-bit range, strictly
//! increasing in `i`, computed from `i` alone. Every element type maps 64 bits to a value
//! *monotonically* (integers keep the high bits, signed ones shifted by the sign bit; floats
//! take the high 53 or 24 bits as a fraction of 1; records take them as the key's first
//! bytes), so the values are sorted in the type's own order, and uniformly spread over the
//! range that `uniform` uses. `reverse` uses the complement `!u`, which is strictly
//! decreasing. `nearly-sorted` is `sorted` (the same values, from the same generator stream)
//! followed by swaps of random pairs of distinct positions inside each block, moving 1% of
//! the elements up to a block away from home; sorting it gives back `sorted` exactly.
//!
//! # Checksum
//!
//! See [`Checksum`]: a 64-bit, position-dependent sum of mixed 8-byte words, so blocks
//! contribute independently and the result is the same for any split of the work. It is
//! computed while each block is still in cache, and [`checksum`] recomputes it from any
//! slice (a mapped file, for example).
//!
//! [`MappedArrayMut`]: crate::MappedArrayMut

use std::fmt;
use std::str::FromStr;

use rand::{RngCore, SeedableRng};
use rand_distr::{Distribution as _, StandardNormal, Zipf};
use rand_xoshiro::Xoshiro256PlusPlus;
use rayon::prelude::*;

use crate::chunk::ParOptions;
use crate::element::DType;
use crate::error::{Error, Result};
use crate::sort::Record;

/// Elements per generator block: the unit of seeding and of parallel work.
///
/// Part of the definition of the output (changing it changes the bytes). 65536 elements is
/// 512 KiB of `f64`: large enough that seeding and task overhead vanish, small enough that
/// two threads have thousands of blocks to share on any sizeable array.
pub const BLOCK_LEN: usize = 1 << 16;

/// Number of distinct values of the `few-unique` distribution.
pub const FEW_UNIQUE: usize = 16;

/// The exponent `s` of the `zipf` distribution: rank `k` has probability ∝ `1 / k^s`.
pub const ZIPF_EXPONENT: f64 = 1.0;

/// Number of ranks of the `zipf` distribution (fewer for types whose maximum is smaller:
/// 127 for `i8`, 255 for `u8`, 32767 for `i16`, 65535 for `u16`).
pub const ZIPF_RANKS: u64 = 1_000_000;

/// Pairs swapped per block by `nearly-sorted` are `round(len / 200)`: 1% of the elements.
const SWAP_DIVISOR: usize = 200;

/// The Sort Benchmark record: 100 bytes, the first 10 of them the key.
///
/// Layout written by the generator (that of the benchmark's `gensort -b`-style records):
///
/// | bytes  | content |
/// |--------|---------|
/// | 0..10  | key (big-endian: sorts as unsigned bytes) |
/// | 10..12 | `00 11` |
/// | 12..44 | the record's index in the file, 32 upper-case hex digits ([`record_index`]) |
/// | 44..48 | `88 99 AA BB` |
/// | 48..96 | filler: 12 hex digits each repeated 4 times |
/// | 96..100| `CC DD EE FF` |
pub type Record100 = Record<100, 10>;

/// The element types the generator makes: a numeric [`DType`], or [`Record100`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    /// A numeric dtype: every [`DType`] but [`DType::Bool`] (see [`Kind::new`]).
    Numeric(DType),
    /// [`Record100`]: Sort Benchmark records (raw files only: `.npy` has no such dtype).
    Record100,
}

impl Kind {
    /// The kind of a numeric dtype, or `None` for [`DType::Bool`] (numpy's booleans are
    /// not something to generate values of).
    pub fn new(dtype: DType) -> Option<Kind> {
        (dtype != DType::Bool).then_some(Kind::Numeric(dtype))
    }

    /// Every kind, in the order help texts list them: the numeric dtypes in
    /// [`DType::ALL`]'s order, then `record100`.
    pub fn all() -> impl Iterator<Item = Kind> {
        DType::ALL
            .into_iter()
            .filter_map(Kind::new)
            .chain([Kind::Record100])
    }

    /// The command-line name: the dtype's [`name`](DType::name) (`u8` … `f64`), or
    /// `record100`.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Numeric(d) => d.name(),
            Kind::Record100 => "record100",
        }
    }

    /// Parses a command-line name.
    pub fn from_name(name: &str) -> Option<Kind> {
        Kind::all().find(|k| k.name() == name)
    }

    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            Kind::Numeric(d) => d.size(),
            Kind::Record100 => std::mem::size_of::<Record100>(),
        }
    }

    /// The `.npy` dtype, or `None` for records.
    pub fn dtype(self) -> Option<DType> {
        match self {
            Kind::Numeric(d) => Some(d),
            Kind::Record100 => None,
        }
    }

    /// Whether the kind is `f32` or `f64`.
    pub fn is_float(self) -> bool {
        matches!(self, Kind::Numeric(DType::F32 | DType::F64))
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Kind {
    type Err = Error;

    /// # Errors
    /// [`Error::UnknownName`] naming the valid kinds.
    fn from_str(s: &str) -> Result<Kind> {
        Kind::from_name(s).ok_or_else(|| Error::UnknownName {
            what: "dtype",
            name: s.into(),
            expected: Kind::all().map(Kind::name).collect(),
        })
    }
}

/// The value distributions. See datasets/README.md for a table of what each one is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Distribution {
    /// Independent uniform values: integers over their full range, floats in `[0, 1)`,
    /// records with 10 random key bytes.
    Uniform,
    /// Independent standard normal values (mean 0, standard deviation 1); floats only.
    Normal,
    /// Non-decreasing values spread uniformly over the `uniform` range (strictly increasing
    /// wherever the type has the resolution).
    Sorted,
    /// Non-increasing values, the mirror image of `sorted`.
    Reverse,
    /// `sorted` with 1% of the elements swapped with others of the same block
    /// ([`BLOCK_LEN`] elements).
    NearlySorted,
    /// [`FEW_UNIQUE`] distinct values (spread over the range), each element one of them at
    /// random.
    FewUnique,
    /// Zipf-distributed ranks `1..=N` (`N` = [`ZIPF_RANKS`] or the type's maximum), exponent
    /// [`ZIPF_EXPONENT`]: heavy duplicates of the small values. Records get the rank as
    /// their 80-bit big-endian key.
    Zipf,
    /// One value, repeated (records: one key, each record still carrying its own index).
    Equal,
}

impl Distribution {
    /// Every distribution, in the order help texts list them.
    pub const ALL: [Distribution; 8] = [
        Distribution::Uniform,
        Distribution::Normal,
        Distribution::Sorted,
        Distribution::Reverse,
        Distribution::NearlySorted,
        Distribution::FewUnique,
        Distribution::Zipf,
        Distribution::Equal,
    ];

    /// The command-line name: `uniform`, `nearly-sorted`, ...
    pub fn name(self) -> &'static str {
        match self {
            Distribution::Uniform => "uniform",
            Distribution::Normal => "normal",
            Distribution::Sorted => "sorted",
            Distribution::Reverse => "reverse",
            Distribution::NearlySorted => "nearly-sorted",
            Distribution::FewUnique => "few-unique",
            Distribution::Zipf => "zipf",
            Distribution::Equal => "equal",
        }
    }

    /// Parses a command-line name.
    pub fn from_name(name: &str) -> Option<Distribution> {
        Distribution::ALL.into_iter().find(|d| d.name() == name)
    }

    /// Whether this distribution makes sense for `kind`.
    pub fn supports(self, kind: Kind) -> bool {
        self != Distribution::Normal || kind.is_float()
    }

    /// `Ok` if this distribution makes sense for `kind`.
    ///
    /// # Errors
    /// [`Error::DistributionNeedsFloat`] (only `normal` with a non-float kind).
    pub fn check(self, kind: Kind) -> Result<()> {
        if self.supports(kind) {
            Ok(())
        } else {
            Err(Error::DistributionNeedsFloat {
                distribution: self.name(),
                dtype: kind.name(),
            })
        }
    }
}

impl fmt::Display for Distribution {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Distribution {
    type Err = Error;

    /// # Errors
    /// [`Error::UnknownName`] naming the valid distributions.
    fn from_str(s: &str) -> Result<Distribution> {
        Distribution::from_name(s).ok_or_else(|| Error::UnknownName {
            what: "distribution",
            name: s.into(),
            expected: Distribution::ALL.map(Distribution::name).to_vec(),
        })
    }
}

mod sealed {
    /// How the generator makes values of one type. Private: the set of kinds is closed.
    pub trait Sealed: Copy {
        /// Whether [`Sealed::spread`] uses its `extra` argument (so random bits are drawn
        /// for it only when needed).
        const EXTRA: bool = false;
        /// The largest Zipf rank the type holds.
        const MAX_RANK: u64 = super::ZIPF_RANKS;
        /// Maps 64 bits to a value, non-decreasing in `bits` (in the type's sort order);
        /// uniform bits give the `uniform` distribution. `extra` supplies more random bits
        /// to types wider than 64 bits of key.
        fn spread(bits: u64, extra: u64) -> Self;
        /// The value of Zipf rank `rank`.
        fn from_rank(rank: u64) -> Self;
        /// A float sample, for float types (others never receive one).
        fn from_f64(x: f64) -> Self;
        /// Writes each element's index into it, for types that carry one.
        fn stamp(_block: &mut [Self], _first: u64) {}
    }
}

/// An element type the generator makes: the numeric types and [`Record100`].
///
/// Sealed: the generator knows how to spread values over each of these types' ranges.
pub trait Generate: bytemuck::Pod + Send + Sync + sealed::Sealed {
    /// The kind this type is.
    const KIND: Kind;
}

macro_rules! unsigned {
    ($($t:ty => $k:ident),*) => {$(
        impl sealed::Sealed for $t {
            const MAX_RANK: u64 = if (<$t>::MAX as u64) < ZIPF_RANKS { <$t>::MAX as u64 } else { ZIPF_RANKS };
            #[inline]
            fn spread(bits: u64, _: u64) -> $t {
                (bits >> (64 - <$t>::BITS)) as $t
            }
            #[inline]
            fn from_rank(rank: u64) -> $t {
                rank as $t
            }
            #[inline]
            fn from_f64(x: f64) -> $t {
                x as $t
            }
        }
        impl Generate for $t {
            const KIND: Kind = Kind::Numeric(DType::$k);
        }
    )*};
}
unsigned!(u8 => U8, u16 => U16, u32 => U32, u64 => U64);

macro_rules! signed {
    ($($t:ty => $u:ty, $k:ident),*) => {$(
        impl sealed::Sealed for $t {
            const MAX_RANK: u64 = if (<$t>::MAX as u64) < ZIPF_RANKS { <$t>::MAX as u64 } else { ZIPF_RANKS };
            #[inline]
            fn spread(bits: u64, _: u64) -> $t {
                // Offset binary: flipping the sign bit maps 0..2^BITS onto MIN..=MAX in order.
                (((bits >> (64 - <$u>::BITS)) as $u) ^ (1 << (<$u>::BITS - 1))) as $t
            }
            #[inline]
            fn from_rank(rank: u64) -> $t {
                rank as $t
            }
            #[inline]
            fn from_f64(x: f64) -> $t {
                x as $t
            }
        }
        impl Generate for $t {
            const KIND: Kind = Kind::Numeric(DType::$k);
        }
    )*};
}
signed!(i8 => u8, I8, i16 => u16, I16, i32 => u32, I32, i64 => u64, I64);

impl sealed::Sealed for f64 {
    #[inline]
    fn spread(bits: u64, _: u64) -> f64 {
        // 53 bits as a fraction of 1: every value a multiple of 2^-53 in [0, 1).
        (bits >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }
    #[inline]
    fn from_rank(rank: u64) -> f64 {
        rank as f64
    }
    #[inline]
    fn from_f64(x: f64) -> f64 {
        x
    }
}
impl Generate for f64 {
    const KIND: Kind = Kind::Numeric(DType::F64);
}

impl sealed::Sealed for f32 {
    #[inline]
    fn spread(bits: u64, _: u64) -> f32 {
        (bits >> 40) as f32 * (1.0 / (1u32 << 24) as f32)
    }
    #[inline]
    fn from_rank(rank: u64) -> f32 {
        rank as f32
    }
    #[inline]
    fn from_f64(x: f64) -> f32 {
        x as f32
    }
}
impl Generate for f32 {
    const KIND: Kind = Kind::Numeric(DType::F32);
}

const HEX: &[u8; 16] = b"0123456789ABCDEF";

fn record(key: [u8; 10], filler: u64) -> Record100 {
    let mut r = [0u8; 100];
    r[..10].copy_from_slice(&key);
    r[10..12].copy_from_slice(&[0x00, 0x11]);
    r[12..44].fill(b'0');
    r[44..48].copy_from_slice(&[0x88, 0x99, 0xAA, 0xBB]);
    for (g, chunk) in r[48..96].chunks_exact_mut(4).enumerate() {
        chunk.fill(HEX[((filler >> (4 * g)) & 15) as usize]);
    }
    r[96..100].copy_from_slice(&[0xCC, 0xDD, 0xEE, 0xFF]);
    Record(r)
}

impl sealed::Sealed for Record100 {
    const EXTRA: bool = true;
    #[inline]
    fn spread(bits: u64, extra: u64) -> Record100 {
        let mut key = [0u8; 10];
        key[..8].copy_from_slice(&bits.to_be_bytes());
        key[8..].copy_from_slice(&extra.to_be_bytes()[..2]);
        record(key, extra)
    }
    #[inline]
    fn from_rank(rank: u64) -> Record100 {
        let mut key = [0u8; 10];
        key[2..].copy_from_slice(&rank.to_be_bytes());
        record(key, rank)
    }
    #[inline]
    fn from_f64(x: f64) -> Record100 {
        Record100::spread(x.to_bits(), 0)
    }
    fn stamp(block: &mut [Record100], first: u64) {
        for (i, r) in block.iter_mut().enumerate() {
            let mut index = first + i as u64;
            // 32 hex digits of a 128-bit number; indices fit in the last 16.
            for d in r.0[28..44].iter_mut().rev() {
                *d = HEX[(index & 15) as usize];
                index >>= 4;
            }
        }
    }
}
impl Generate for Record100 {
    const KIND: Kind = Kind::Record100;
}

/// The index a generated record carries (bytes 12..44, hex), or `None` if those bytes are
/// not 32 hex digits of a number that fits in `u64`.
///
/// After sorting a generated record file, `record_index` tells where each record came from,
/// so a sort can be checked for being a permutation (every index once) and for stability.
pub fn record_index(r: &Record100) -> Option<u64> {
    let digits = &r.0[12..44];
    if digits[..16].iter().any(|&d| d != b'0') {
        return None;
    }
    digits[16..].iter().try_fold(0u64, |acc, &d| {
        let v = (d as char).to_digit(16)?;
        Some(acc << 4 | u64::from(v))
    })
}

/// splitmix64's output function: a bijective 64-bit mixer.
#[inline]
fn fmix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// splitmix64's increment (the golden ratio in 64 bits).
const GAMMA: u64 = 0x9e37_79b9_7f4a_7c15;

/// The `n`-th output of a splitmix64 stream started at `seed`.
fn splitmix(seed: u64, n: u64) -> u64 {
    fmix(seed.wrapping_add(n.wrapping_add(1).wrapping_mul(GAMMA)))
}

/// Stream numbers for the values derived directly from the seed, apart from block seeds.
const STREAM_BLOCKS: u64 = 0;
const STREAM_EQUAL: u64 = 1 << 32;
const STREAM_FEW: u64 = 2 << 32;

fn block_rng(seed: u64, block: u64) -> Xoshiro256PlusPlus {
    // `splitmix(seed, ·)` is injective in its second argument, so blocks get distinct seeds;
    // seed_from_u64 expands those with splitmix64 into xoshiro's 256-bit state.
    Xoshiro256PlusPlus::seed_from_u64(splitmix(seed, STREAM_BLOCKS + block))
}

/// A 64-bit content checksum of the bytes a dataset holds (the data only: a `.npy` header is
/// not included, so a `.npy` file and a raw file of the same data have the same checksum).
///
/// Definition, for `L` data bytes: pad them with zero bytes to a multiple of 8, read them as
/// little-endian `u64` words `w_0 … w_{m-1}`, and with `G = 0x9e3779b97f4a7c15` and `fmix`
/// splitmix64's finaliser (`z ^= z >> 30; z *= 0xbf58476d1ce4e5b9; z ^= z >> 27;
/// z *= 0x94d049bb133111eb; z ^= z >> 31`, all modulo 2⁶⁴):
///
/// `checksum = fmix(S ^ L)`, where `S = Σ_j fmix(w_j + (j + 1)·G) mod 2⁶⁴`.
///
/// Each word's term depends on its position, so moving data changes the sum; the terms add
/// up in any order, so blocks are summed in parallel and combined. It is a checksum for
/// comparing datasets, not a cryptographic hash. datasets/README.md has a numpy version.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Checksum(pub u64);

impl fmt::Display for Checksum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

/// Partial sum `S` over `bytes`, whose first byte is byte `8 * first_word` of the data.
fn sum_words(bytes: &[u8], first_word: u64) -> u64 {
    let words = bytes.chunks_exact(8);
    let tail = words.remainder();
    let mut s = 0u64;
    let mut j = first_word;
    for w in words {
        let mut a = [0u8; 8];
        a.copy_from_slice(w);
        j += 1;
        s = s.wrapping_add(fmix(
            u64::from_le_bytes(a).wrapping_add(j.wrapping_mul(GAMMA)),
        ));
    }
    if !tail.is_empty() {
        let mut a = [0u8; 8];
        a[..tail.len()].copy_from_slice(tail);
        j += 1;
        s = s.wrapping_add(fmix(
            u64::from_le_bytes(a).wrapping_add(j.wrapping_mul(GAMMA)),
        ));
    }
    s
}

fn finish(sum: u64, len_bytes: u64) -> Checksum {
    Checksum(fmix(sum ^ len_bytes))
}

/// The [`Checksum`] of `data`'s bytes, computed in parallel (rayon's current pool).
///
/// ```
/// use outcore::datasets::checksum;
/// assert_eq!(checksum(&[1u32, 2]), checksum(&[1u16, 0, 2, 0]));
/// assert_ne!(checksum(&[1u32, 2]), checksum(&[2u32, 1]));
/// ```
pub fn checksum<T: bytemuck::Pod + Sync>(data: &[T]) -> Checksum {
    const PIECE: usize = 1 << 20;
    let bytes: &[u8] = bytemuck::cast_slice(data);
    let sum = bytes
        .par_chunks(PIECE)
        .enumerate()
        .map(|(i, piece)| sum_words(piece, (i * PIECE / 8) as u64))
        .reduce(|| 0, u64::wrapping_add);
    finish(sum, bytes.len() as u64)
}

/// Fills slices with a distribution, deterministically and in parallel. See the
/// [module docs](self).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Generator {
    dist: Distribution,
    seed: u64,
}

impl Generator {
    /// A generator of `dist` values from `seed`.
    pub fn new(dist: Distribution, seed: u64) -> Generator {
        Generator { dist, seed }
    }

    /// The distribution.
    pub fn distribution(&self) -> Distribution {
        self.dist
    }

    /// The seed.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// Fills `out` (the whole dataset: its length is part of the definition of the
    /// ordered distributions) and returns the [`Checksum`] of what it wrote.
    ///
    /// Runs on the thread pool of `opts` ([`ParOptions::threads`]); the result does not
    /// depend on it. `opts`'s chunk size is not used: the work is split into blocks of
    /// [`BLOCK_LEN`] elements, which define the values.
    ///
    /// # Errors
    /// [`Error::DistributionNeedsFloat`] if the distribution does not apply to `T`
    /// ([`Distribution::check`]); [`Error::ThreadPool`] if the thread pool cannot be started.
    pub fn fill<T: Generate>(&self, out: &mut [T], opts: &ParOptions) -> Result<Checksum> {
        self.fill_with_progress(out, opts, &|_| {})
    }

    /// [`fill`](Generator::fill), calling `progress(n)` from the worker threads each time
    /// `n` more elements are done (once per block, in no particular order).
    ///
    /// # Errors
    /// As [`fill`](Generator::fill).
    pub fn fill_with_progress<T: Generate>(
        &self,
        out: &mut [T],
        opts: &ParOptions,
        progress: &(dyn Fn(usize) + Sync),
    ) -> Result<Checksum> {
        let total = out.len();
        Ok(self.fill_part(out, 0, total, opts, progress)?.finish())
    }

    /// Fills `part` with elements `first .. first + part.len()` of a dataset of `total`
    /// elements: exactly the values [`fill`](Generator::fill) puts there. This generates a
    /// dataset larger than memory a window at a time (fill a window of a mapping, write it
    /// back and release it, go on; the windows of [`stream`](crate::stream)
    /// will do), or in pieces on several machines.
    ///
    /// The parts' checksums [combine](PartialChecksum::combine) into the dataset's. Since
    /// the checksum reads 8-byte words, a part must start and end on a multiple of 8 bytes
    /// of the dataset's data (or end at its end): any boundary does for 8-byte types, and
    /// page-aligned windows of a mapping always do. Blocks that a part covers only in part
    /// are generated whole into a scratch buffer and copied from.
    ///
    /// ```
    /// use outcore::datasets::{Distribution, Generator, PartialChecksum};
    /// use outcore::ParOptions;
    /// let g = Generator::new(Distribution::Sorted, 1);
    /// let mut whole = vec![0u32; 300_000];
    /// let expected = g.fill(&mut whole, &ParOptions::new())?;
    /// let mut parts = vec![0u32; 300_000];
    /// let mut sum = PartialChecksum::default();
    /// for (i, w) in parts.chunks_mut(100_000).enumerate() {
    ///     sum = sum.combine(g.fill_part(w, i * 100_000, 300_000, &ParOptions::new(), &|_| {})?);
    /// }
    /// assert_eq!(parts, whole);
    /// assert_eq!(sum.finish(), expected);
    /// # Ok::<(), outcore::Error>(())
    /// ```
    ///
    /// # Errors
    /// As [`fill`](Generator::fill), and [`Error::BadPart`] if the part ends past
    /// `total`, or starts or ends (before `total`) off an 8-byte boundary of the data.
    pub fn fill_part<T: Generate>(
        &self,
        part: &mut [T],
        first: usize,
        total: usize,
        opts: &ParOptions,
        progress: &(dyn Fn(usize) + Sync),
    ) -> Result<PartialChecksum> {
        self.dist.check(T::KIND)?;
        let size = std::mem::size_of::<T>();
        let bytes = std::mem::size_of_val(part) as u64;
        let end = first.checked_add(part.len()).filter(|&e| e <= total);
        let on_word = |i: usize| (i as u128 * size as u128).is_multiple_of(8);
        let Some(end) = end.filter(|&e| on_word(first) && (e == total || on_word(e))) else {
            return Err(Error::BadPart {
                first,
                end: first.saturating_add(part.len()),
                total,
            });
        };
        let params = FillParams::<T>::new(self.dist, self.seed, total as u64)?;
        // Cut the part at block boundaries: (block, offset in the block, piece).
        let mut pieces = Vec::with_capacity(part.len() / BLOCK_LEN + 2);
        let (mut rest, mut pos) = (part, first);
        while pos < end {
            let b = pos / BLOCK_LEN;
            let take = ((b + 1) * BLOCK_LEN).min(end) - pos;
            let (piece, tail) = std::mem::take(&mut rest).split_at_mut(take);
            pieces.push((b, pos - b * BLOCK_LEN, piece));
            (rest, pos) = (tail, pos + take);
        }
        let sum = opts.install(|| {
            pieces
                .into_par_iter()
                .map(|(b, offset, piece)| {
                    let start = b * BLOCK_LEN;
                    let block_len = BLOCK_LEN.min(total - start);
                    if piece.len() == block_len {
                        params.fill_block(piece, b as u64, start as u64);
                        T::stamp(piece, start as u64);
                    } else {
                        let mut scratch = vec![T::zeroed(); block_len];
                        params.fill_block(&mut scratch, b as u64, start as u64);
                        T::stamp(&mut scratch, start as u64);
                        piece.copy_from_slice(&scratch[offset..offset + piece.len()]);
                    }
                    let word = ((start + offset) * size / 8) as u64;
                    let s = sum_words(bytemuck::cast_slice(piece), word);
                    progress(piece.len());
                    s
                })
                .reduce(|| 0, u64::wrapping_add)
        })?;
        Ok(PartialChecksum { sum, bytes })
    }
}

/// The checksum of a part of a dataset ([`Generator::fill_part`]). Parts that together
/// cover the dataset once combine, in any order, into its [`Checksum`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PartialChecksum {
    sum: u64,
    bytes: u64,
}

impl PartialChecksum {
    /// The checksum of both parts together.
    pub fn combine(self, other: PartialChecksum) -> PartialChecksum {
        PartialChecksum {
            sum: self.sum.wrapping_add(other.sum),
            bytes: self.bytes + other.bytes,
        }
    }

    /// The checksum of the whole, once every part is combined in.
    pub fn finish(self) -> Checksum {
        finish(self.sum, self.bytes)
    }
}

/// What a fill needs beyond the seed, computed once.
struct FillParams<T> {
    dist: Distribution,
    seed: u64,
    /// `sorted`'s stride: `⌊2⁶⁴ / n⌋` (`u64::MAX` for `n ≤ 1`).
    step: u64,
    few: [T; FEW_UNIQUE],
    equal: T,
    zipf: Option<(Zipf<f64>, u64)>,
}

impl<T: Generate> FillParams<T> {
    fn new(dist: Distribution, seed: u64, len: u64) -> Result<FillParams<T>> {
        let step = if len <= 1 {
            u64::MAX
        } else {
            ((1u128 << 64) / u128::from(len)) as u64
        };
        // Value j lies in the j-th sixteenth of the 64-bit range, so the 16 values are
        // distinct in every type (all keep at least the top 8 bits) and spread over it.
        let few = std::array::from_fn(|j| {
            let j = j as u64;
            let r = splitmix(seed, STREAM_FEW + 2 * j);
            T::spread(j << 60 | r >> 4, splitmix(seed, STREAM_FEW + 2 * j + 1))
        });
        let equal = T::spread(
            splitmix(seed, STREAM_EQUAL),
            splitmix(seed, STREAM_EQUAL + 1),
        );
        let zipf = if dist == Distribution::Zipf {
            let n = T::MAX_RANK;
            let z = Zipf::new(n as f64, ZIPF_EXPONENT)
                .map_err(|e| Error::InvalidArgument(format!("zipf distribution: {e}")))?;
            Some((z, n))
        } else {
            None
        };
        Ok(FillParams {
            dist,
            seed,
            step,
            few,
            equal,
            zipf,
        })
    }

    /// The `sorted` value of element `i`, from 64 random bits `r`.
    #[inline]
    fn sorted_bits(&self, i: u64, r: u64) -> u64 {
        // i·q + ⌊r·q/2⁶⁴⌋ ≤ (n-1)·q + q-1 < 2⁶⁴: no overflow, and strictly increasing in i.
        i * self.step + ((u128::from(r) * u128::from(self.step)) >> 64) as u64
    }

    fn fill_block(&self, block: &mut [T], b: u64, first: u64) {
        let mut rng = block_rng(self.seed, b);
        let extra = |rng: &mut Xoshiro256PlusPlus| if T::EXTRA { rng.next_u64() } else { 0 };
        match self.dist {
            Distribution::Uniform => {
                for x in block.iter_mut() {
                    let bits = rng.next_u64();
                    *x = T::spread(bits, extra(&mut rng));
                }
            }
            Distribution::Normal => {
                for x in block.iter_mut() {
                    *x = T::from_f64(StandardNormal.sample(&mut rng));
                }
            }
            Distribution::Sorted | Distribution::NearlySorted | Distribution::Reverse => {
                let flip = if self.dist == Distribution::Reverse {
                    u64::MAX
                } else {
                    0
                };
                for (i, x) in (first..).zip(block.iter_mut()) {
                    let bits = self.sorted_bits(i, rng.next_u64()) ^ flip;
                    *x = T::spread(bits, extra(&mut rng));
                }
                if self.dist == Distribution::NearlySorted {
                    let pairs = (block.len() + SWAP_DIVISOR / 2) / SWAP_DIVISOR;
                    let picks = rand::seq::index::sample(&mut rng, block.len(), 2 * pairs);
                    let picks = picks.into_vec();
                    for pair in picks.chunks_exact(2) {
                        block.swap(pair[0], pair[1]);
                    }
                }
            }
            Distribution::FewUnique => {
                for x in block.iter_mut() {
                    *x = self.few[(rng.next_u64() >> 60) as usize];
                }
            }
            Distribution::Zipf => {
                if let Some((z, n)) = &self.zipf {
                    for x in block.iter_mut() {
                        let k: f64 = z.sample(&mut rng);
                        *x = T::from_rank((k as u64).clamp(1, *n));
                    }
                }
            }
            Distribution::Equal => block.fill(self.equal),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::sealed::Sealed;
    use super::*;

    #[test]
    fn names_round_trip() {
        assert_eq!(Kind::all().count(), 11);
        assert_eq!(Kind::new(DType::Bool), None);
        for k in Kind::all() {
            assert_eq!(k.name().parse::<Kind>().unwrap(), k);
            assert_eq!(k.dtype().map_or(100, |d| d.size()), k.size());
        }
        for d in Distribution::ALL {
            assert_eq!(d.name().parse::<Distribution>().unwrap(), d);
        }
        let e = "f16".parse::<Kind>().unwrap_err();
        assert!(
            matches!(&e, Error::UnknownName { what: "dtype", name, expected }
                if name == "f16" && expected.len() == 11 && !expected.contains(&"bool")),
            "{e}"
        );
        let e = e.to_string();
        assert!(
            e.contains("unknown dtype \"f16\"") && e.contains("u8, u16"),
            "{e}"
        );
        let e = "gauss".parse::<Distribution>().unwrap_err();
        assert!(
            matches!(&e, Error::UnknownName { what: "distribution", name, .. } if name == "gauss"),
            "{e}"
        );
        let e = e.to_string();
        assert!(e.contains("nearly-sorted"), "{e}");
    }

    #[test]
    fn normal_needs_floats() {
        assert!(Distribution::Normal
            .check(Kind::Numeric(DType::F32))
            .is_ok());
        let e = Distribution::Normal
            .check(Kind::Numeric(DType::I32))
            .unwrap_err();
        assert!(matches!(
            e,
            Error::DistributionNeedsFloat {
                distribution: "normal",
                dtype: "i32"
            }
        ));
        assert!(e.to_string().contains("needs a float dtype"), "{e}");
        let mut v = vec![0u8; 10];
        let r = Generator::new(Distribution::Normal, 1).fill(&mut v, &ParOptions::new());
        assert!(matches!(
            r,
            Err(Error::DistributionNeedsFloat {
                distribution: "normal",
                dtype: "u8"
            })
        ));
        assert!(v.iter().all(|&x| x == 0), "nothing written on error");
    }

    #[test]
    fn sorted_bits_stay_in_range_and_increase() {
        for &n in &[1u64, 2, 3, 1000, 1 << 40, u64::MAX] {
            let params = FillParams::<u64>::new(Distribution::Sorted, 0, n).unwrap();
            let last = params.sorted_bits(n - 1, u64::MAX);
            assert!(last >= params.sorted_bits(n - 1, 0));
            if n > 1 {
                assert!(params.sorted_bits(n - 2, u64::MAX) < params.sorted_bits(n - 1, 0));
            }
        }
    }

    #[test]
    fn conversions_are_monotone_and_span_the_range() {
        let bits = [0u64, 1, 1 << 40, 1 << 63, u64::MAX - 1, u64::MAX];
        for w in bits.windows(2) {
            assert!(i8::spread(w[0], 0) <= i8::spread(w[1], 0));
            assert!(i64::spread(w[0], 0) <= i64::spread(w[1], 0));
            assert!(f32::spread(w[0], 0) <= f32::spread(w[1], 0));
            assert!(f64::spread(w[0], 0) <= f64::spread(w[1], 0));
            assert!(Record100::spread(w[0], 0).0[..10] <= Record100::spread(w[1], 0).0[..10]);
        }
        assert_eq!(i16::spread(0, 0), i16::MIN);
        assert_eq!(i16::spread(u64::MAX, 0), i16::MAX);
        assert_eq!(u32::spread(u64::MAX, 0), u32::MAX);
        assert_eq!(f64::spread(0, 0), 0.0);
        assert!(f64::spread(u64::MAX, 0) < 1.0);
        assert!(f32::spread(u64::MAX, 0) < 1.0);
    }

    #[test]
    fn record_layout_and_index() {
        let mut rs = [Record100::spread(0x0102_0304_0506_0708, 0x090a << 48); 2];
        Record100::stamp(&mut rs, 0xdead_beef);
        let r = rs[1];
        assert_eq!(&r.0[..10], &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
        assert_eq!(&r.0[10..12], &[0x00, 0x11]);
        assert_eq!(&r.0[12..44], b"000000000000000000000000DEADBEF0");
        assert_eq!(&r.0[96..], &[0xCC, 0xDD, 0xEE, 0xFF]);
        assert_eq!(record_index(&r), Some(0xdead_bef0));
        assert_eq!(record_index(&rs[0]), Some(0xdead_beef));
        let mut bad = r;
        bad.0[43] = b'x';
        assert_eq!(record_index(&bad), None);
    }

    #[test]
    fn checksum_matches_its_definition() {
        // The definition written out naively, word by word.
        fn naive(bytes: &[u8]) -> u64 {
            let mut padded = bytes.to_vec();
            padded.resize(bytes.len().div_ceil(8) * 8, 0);
            let mut s = 0u64;
            for (j, w) in padded.chunks(8).enumerate() {
                let w = u64::from_le_bytes(w.try_into().unwrap());
                s = s.wrapping_add(fmix(w.wrapping_add((j as u64 + 1).wrapping_mul(GAMMA))));
            }
            fmix(s ^ bytes.len() as u64)
        }
        let data: Vec<u8> = (0..3_000_017u32).map(|i| (i * 7 + i / 251) as u8).collect();
        for len in [0, 1, 7, 8, 9, 1 << 20, (1 << 20) + 3, data.len()] {
            assert_eq!(checksum(&data[..len]).0, naive(&data[..len]), "len {len}");
        }
        assert_ne!(
            checksum(&[0u8]),
            checksum(&[0u8, 0]),
            "length is part of it"
        );
    }
}
