//! Exact quantiles, percentiles, medians and k-th elements without sorting, equal to numpy.
//!
//! The algorithm, the passes and numpy's rules are documented on [`quantiles`].

use std::sync::atomic::{AtomicU64, Ordering};

use num_traits::NumCast;

use super::passes::{FilePasses, Passes, SlicePasses};
use super::{defaults, is_nan, Numeric};
use crate::array::MappedArray;
use crate::chunk::ParOptions;
use crate::element::Element;
use crate::error::{Error, Result};
use crate::sort::{RadixKey, SortKey};
use crate::stream::Stream;

/// The default memory budget for candidates: 64 MiB.
///
/// On a machine whose [`default_budget`](crate::default_budget) is smaller (a small memory
/// cgroup), [`QuantileOptions`] defaults to that budget instead.
pub const DEFAULT_QUANTILE_MEMORY: usize = 64 << 20;

/// Key bits resolved by each histogram pass.
const DIGIT_BITS: u32 = 16;

/// At most this many histogram counters per refinement pass: 2 MiB of shared `u64`, and
/// 1 MiB of local `u32` per chunk being counted.
const MAX_COUNTERS: usize = 1 << 18;

/// How a quantile between two data points is chosen: numpy's `method=` argument (the five
/// methods numpy has had since before 1.22, under their current names).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum QuantileMethod {
    /// Linear interpolation between the two neighbours of the virtual index `(n - 1) q`
    /// (numpy's default). Gives `f64`.
    #[default]
    Linear,
    /// The element at `floor((n - 1) q)`.
    Lower,
    /// The element at `ceil((n - 1) q)`.
    Higher,
    /// The element at `(n - 1) q` rounded half to even (numpy's `around`).
    Nearest,
    /// The mean of the `lower` and `higher` elements, computed as numpy does. Gives `f64`.
    Midpoint,
}

impl QuantileMethod {
    /// numpy's name for the method (`"linear"`, ...).
    pub fn name(self) -> &'static str {
        match self {
            QuantileMethod::Linear => "linear",
            QuantileMethod::Lower => "lower",
            QuantileMethod::Higher => "higher",
            QuantileMethod::Nearest => "nearest",
            QuantileMethod::Midpoint => "midpoint",
        }
    }

    /// Parses numpy's name for a method.
    pub fn from_name(name: &str) -> Option<QuantileMethod> {
        [
            QuantileMethod::Linear,
            QuantileMethod::Lower,
            QuantileMethod::Higher,
            QuantileMethod::Nearest,
            QuantileMethod::Midpoint,
        ]
        .into_iter()
        .find(|m| m.name() == name)
    }
}

/// One quantile: an element of the data, exact, or an interpolated `f64`.
///
/// `lower`, `higher` and `nearest` give [`Element`](QuantileValue::Element) (also a NaN
/// element that propagated); `linear` and `midpoint` give [`Float`](QuantileValue::Float),
/// as numpy's result dtype is `float64` for them. A quantile of no values (a `nan` form on
/// all-NaN or empty data) is `Float(NaN)`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum QuantileValue<T> {
    /// An element of the data, exactly.
    Element(T),
    /// An interpolated value (or NaN), computed in `f64` as numpy does.
    Float(f64),
}

impl<T: Numeric> QuantileValue<T> {
    /// The value as `f64` (rounded for 64-bit integers above 2^53, as numpy's `float64`).
    pub fn to_f64(self) -> f64 {
        match self {
            QuantileValue::Element(x) => x.as_(),
            QuantileValue::Float(f) => f,
        }
    }

    /// The element, if the value is one.
    pub fn element(self) -> Option<T> {
        match self {
            QuantileValue::Element(x) => Some(x),
            QuantileValue::Float(_) => None,
        }
    }
}

/// Quantiles of a mapped file and what they cost: see [`stream::quantiles`](crate::stream::quantiles).
#[derive(Clone, Debug, PartialEq)]
pub struct Quantiles<T> {
    /// One value per requested quantile, in the order asked.
    pub values: Vec<QuantileValue<T>>,
    /// Passes over the data that were run (see [`quantiles`]).
    pub passes: u32,
}

/// Options of the quantile functions for mapped files, memmap2-style: `&mut self` setters
/// that chain.
///
/// ```
/// use outcore::kernels::{QuantileMethod, QuantileOptions};
/// let mut o = QuantileOptions::new();
/// o.method(QuantileMethod::Nearest).skip_nan(true).memory(1 << 20);
/// assert_eq!(o.get_memory(), 1 << 20);
/// ```
#[derive(Clone, Debug)]
pub struct QuantileOptions {
    method: QuantileMethod,
    skip_nan: bool,
    memory: usize,
    par: ParOptions,
    stream: Stream,
}

impl Default for QuantileOptions {
    fn default() -> Self {
        let mut stream = Stream::new();
        stream.release_behind(true);
        QuantileOptions {
            method: QuantileMethod::Linear,
            skip_nan: false,
            memory: DEFAULT_QUANTILE_MEMORY.min(crate::default_budget()),
            par: ParOptions::new(),
            stream,
        }
    }
}

impl QuantileOptions {
    /// Linear method, NaN propagating, [`DEFAULT_QUANTILE_MEMORY`], default parallelism,
    /// and a [`Stream`] that releases what each pass has read.
    pub fn new() -> Self {
        Self::default()
    }

    /// The interpolation method.
    pub fn method(&mut self, m: QuantileMethod) -> &mut Self {
        self.method = m;
        self
    }

    /// Skip NaN (numpy's `nanquantile` / `nanpercentile`) instead of propagating it.
    pub fn skip_nan(&mut self, yes: bool) -> &mut Self {
        self.skip_nan = yes;
        self
    }

    /// Bytes the collected candidates may take (at least one element's worth is used).
    pub fn memory(&mut self, bytes: usize) -> &mut Self {
        self.memory = bytes;
        self
    }

    /// Thread count and chunk size of the passes.
    pub fn par(&mut self, par: ParOptions) -> &mut Self {
        self.par = par;
        self
    }

    /// How the passes walk the file (release-behind, advice).
    pub fn stream(&mut self, s: Stream) -> &mut Self {
        self.stream = s;
        self
    }

    /// The memory budget in effect.
    pub fn get_memory(&self) -> usize {
        self.memory
    }
}

/// What one quantile needs from the sorted data.
#[derive(Clone, Copy, Debug)]
enum Need {
    /// The element of this rank.
    Element(usize),
    /// numpy's `_lerp(sorted[prev], sorted[next], gamma)`.
    Lerp(usize, usize, f64),
}

/// numpy's indexes and weight for quantile `q` (in `[0, 1]`) of `n >= 1` values.
fn need(n: usize, q: f64, method: QuantileMethod) -> Need {
    let last = n - 1;
    let v = last as f64 * q;
    let idx = |x: f64| (x as usize).min(last);
    match method {
        QuantileMethod::Lower => Need::Element(idx(v.floor())),
        QuantileMethod::Higher => Need::Element(idx(v.ceil())),
        QuantileMethod::Nearest => Need::Element(idx(v.round_ties_even())),
        QuantileMethod::Linear | QuantileMethod::Midpoint => {
            let v = if method == QuantileMethod::Midpoint {
                0.5 * (v.floor() + v.ceil())
            } else {
                v
            };
            // _get_indexes: at or above the last index both neighbours are the last
            // element, and the weight is computed from the index -1 numpy stores there.
            // The weight is `v - prev` with `prev` an integer index (numpy's intp), so a
            // `q` of -0.0 gives a weight of -0.0, as in numpy.
            let (prev, next, prev_f) = if v >= last as f64 {
                (last, last, -1.0)
            } else {
                let p = v.floor();
                (idx(p), idx(p + 1.0), idx(p) as f64)
            };
            let gamma = if method == QuantileMethod::Midpoint {
                if v % 1.0 == 0.0 {
                    0.0
                } else {
                    0.5
                }
            } else {
                v - prev_f
            };
            Need::Lerp(prev, next, gamma)
        }
    }
}

/// numpy's `_lerp(a, b, t)` on elements of the data, in `f64`; the difference `b - a` is in
/// the data's type for floats (as numpy), exact for integers (numpy's may wrap).
fn lerp<T: Numeric>(a: T, b: T, t: f64) -> f64 {
    let diff: f64 = if T::IS_FLOAT {
        (b - a).as_()
    } else {
        let (x, y) = (a.to_i128().expect("integer"), b.to_i128().expect("integer"));
        (y - x) as f64
    };
    if t >= 0.5 {
        b.as_() - diff * (1.0 - t)
    } else {
        a.as_() + diff * t
    }
}

/// numpy's `mean` of one or two elements (`np.median`): an add-reduce that starts from
/// `+0.0` (so `-0.0` comes out as `0.0`), in `f32` for `f32` and in `f64` for the other
/// types, divided by the count in that type.
fn mean_of<T: Numeric>(a: T, b: Option<T>) -> f64 {
    let count = if b.is_some() { 2.0 } else { 1.0 };
    if T::IS_FLOAT {
        let mut s = T::zero() + a;
        if let Some(b) = b {
            s = s + b;
        }
        let s: f64 = s.as_();
        if std::mem::size_of::<T>() == 4 {
            ((s as f32) / count as f32) as f64
        } else {
            s / count
        }
    } else {
        (0.0 + a.as_() + b.map_or(0.0, |b| b.as_())) / count
    }
}

/// Checks the quantiles (dividing percentiles by 100 as numpy does).
fn fractions(qs: &[f64], percent: bool) -> Result<Vec<f64>> {
    qs.iter()
        .map(|&p| {
            let q = if percent { p / 100.0 } else { p };
            if (0.0..=1.0).contains(&q) {
                Ok(q)
            } else {
                Err(Error::QuantileOutOfRange {
                    value: p,
                    max: if percent { 100.0 } else { 1.0 },
                })
            }
        })
        .collect()
}

/// The key of `x` as a right-aligned `u64`, and the key's width in bits.
#[inline(always)]
fn key<T: SortKey>(x: &T) -> u64 {
    x.sort_key().radix_prefix()
}

fn key_bits<T: SortKey>() -> u32 {
    8 * std::mem::size_of::<T::Key>() as u32
}

/// The element whose key is `k` (keys of numeric types are bijective but for NaN).
fn from_key<T: Numeric + SortKey>(k: u64) -> T {
    let size = std::mem::size_of::<T>();
    let w = key_bits::<T>();
    let sign = 1u64 << (w - 1);
    let mask = if w == 64 { u64::MAX } else { (1u64 << w) - 1 };
    let bits = if T::IS_FLOAT {
        if k & sign != 0 {
            k ^ sign
        } else {
            !k & mask
        }
    } else if T::min_value() < T::zero() {
        k ^ sign
    } else {
        k
    };
    let bytes = if cfg!(target_endian = "big") {
        bits.to_be_bytes()[8 - size..].to_vec()
    } else {
        bits.to_le_bytes()[..size].to_vec()
    };
    bytemuck::pod_read_unaligned(&bytes)
}

/// The elements at `ranks` (sorted, distinct, in bounds) of `v` in key order, by successive
/// `select_nth_unstable` calls that split the slice between ranks.
pub(crate) fn select_ranks<T: SortKey>(v: &mut [T], ranks: &[usize]) -> Vec<T> {
    fn go<T: SortKey>(v: &mut [T], ranks: &[usize], offset: usize, out: &mut Vec<(usize, T)>) {
        if ranks.is_empty() {
            return;
        }
        let mid = ranks.len() / 2;
        let r = ranks[mid] - offset;
        let (left, x, right) = v.select_nth_unstable_by_key(r, |x| x.sort_key());
        out.push((ranks[mid], *x));
        go(left, &ranks[..mid], offset, out);
        go(right, &ranks[mid + 1..], offset + r + 1, out);
    }
    let mut out = Vec::with_capacity(ranks.len());
    go(v, ranks, 0, &mut out);
    out.sort_unstable_by_key(|p| p.0);
    out.into_iter().map(|p| p.1).collect()
}

/// Where one needed rank stands: among the `count` elements whose keys lie in `lo..=hi`,
/// which have the ranks `base..base + count`.
#[derive(Clone, Copy, Debug)]
struct Locus {
    rank: usize,
    lo: u64,
    hi: u64,
    base: usize,
    count: usize,
}

/// The key intervals of the open buckets, sorted and disjoint, with the shift that maps a
/// key of each to one of `2^d` sub-buckets: `(key - lo) >> shift`.
struct Buckets {
    lo: Vec<u64>,
    hi: Vec<u64>,
    shift: Vec<u32>,
    d: u32,
}

impl Buckets {
    fn new(loci: &[Locus], d: u32) -> Buckets {
        let mut b = Buckets {
            lo: Vec::new(),
            hi: Vec::new(),
            shift: Vec::new(),
            d,
        };
        for l in loci {
            if b.lo.last() != Some(&l.lo) {
                let width_bits = 64 - (l.hi - l.lo).leading_zeros();
                b.lo.push(l.lo);
                b.hi.push(l.hi);
                b.shift.push(width_bits.saturating_sub(d));
            }
        }
        b
    }

    /// The bucket holding key `k`, if any.
    #[inline(always)]
    fn find(&self, k: u64) -> Option<usize> {
        let g = self.lo.partition_point(|&lo| lo <= k).checked_sub(1)?;
        (k <= self.hi[g]).then_some(g)
    }

    /// The counter of key `k`: bucket `g`, sub-bucket `(k - lo) >> shift`.
    #[inline(always)]
    fn slot(&self, k: u64) -> Option<(usize, usize)> {
        let g = self.find(k)?;
        Some((
            g,
            (g << self.d) | ((k - self.lo[g]) >> self.shift[g]) as usize,
        ))
    }
}

/// One histogram pass over the buckets `b`: per-sub-bucket counts, per-bucket min and max
/// key (to narrow the next intervals), and the NaN count.
struct Histogram {
    counts: Vec<u64>,
    min: Vec<u64>,
    max: Vec<u64>,
    nans: u64,
}

fn histogram_pass<T, P>(p: &P, b: &Buckets) -> Result<Histogram>
where
    T: Numeric + SortKey,
    P: Passes<T>,
{
    let size = b.lo.len() << b.d;
    let groups = b.lo.len();
    let counters: Vec<AtomicU64> = (0..size).map(|_| AtomicU64::new(0)).collect();
    let mins: Vec<AtomicU64> = (0..groups).map(|_| AtomicU64::new(u64::MAX)).collect();
    let maxs: Vec<AtomicU64> = (0..groups).map(|_| AtomicU64::new(0)).collect();
    let nans = p.pass(|_, c| {
        let mut nans = 0u64;
        let mut mn = vec![u64::MAX; groups];
        let mut mx = vec![0u64; groups];
        if c.len() * 4 < size {
            // Small chunk: count straight into the shared counters.
            for x in c {
                if is_nan(*x) {
                    nans += 1;
                } else if let Some((g, s)) = b.slot(key(x)) {
                    counters[s].fetch_add(1, Ordering::Relaxed);
                    mn[g] = mn[g].min(key(x));
                    mx[g] = mx[g].max(key(x));
                }
            }
        } else {
            let mut local = vec![0u32; size];
            for x in c {
                if is_nan(*x) {
                    nans += 1;
                } else if let Some((g, s)) = b.slot(key(x)) {
                    local[s] += 1;
                    mn[g] = mn[g].min(key(x));
                    mx[g] = mx[g].max(key(x));
                }
            }
            for (s, &n) in local.iter().enumerate() {
                if n != 0 {
                    counters[s].fetch_add(n as u64, Ordering::Relaxed);
                }
            }
        }
        for g in 0..groups {
            mins[g].fetch_min(mn[g], Ordering::Relaxed);
            maxs[g].fetch_max(mx[g], Ordering::Relaxed);
        }
        nans
    })?;
    Ok(Histogram {
        counts: counters.into_iter().map(AtomicU64::into_inner).collect(),
        min: mins.into_iter().map(AtomicU64::into_inner).collect(),
        max: maxs.into_iter().map(AtomicU64::into_inner).collect(),
        nans: nans.into_iter().sum(),
    })
}

/// The values that are not NaN in the buckets `b` (all of them if `b` is `None`), and the
/// NaN count.
fn collect_pass<T, P>(p: &P, b: Option<&Buckets>) -> Result<(Vec<T>, u64)>
where
    T: Numeric + SortKey,
    P: Passes<T>,
{
    let parts = p.pass(|_, c| {
        let mut nans = 0u64;
        let mut v = Vec::new();
        for x in c {
            if is_nan(*x) {
                nans += 1;
            } else if b.is_none_or(|b| b.find(key(x)).is_some()) {
                v.push(*x);
            }
        }
        (v, nans)
    })?;
    let total = parts.iter().map(|p| p.0.len()).sum();
    let mut out = Vec::with_capacity(total);
    let mut nans = 0;
    for (v, n) in parts {
        out.extend(v);
        nans += n;
    }
    Ok((out, nans))
}

fn changed() -> Error {
    Error::DataChanged {
        op: "a quantile selection",
    }
}

/// The elements of the data at the given ranks among the values that are not NaN, by
/// histogram selection within `memory` bytes of candidates. `ranks_of(n, nans)` gives the
/// sorted distinct ranks needed when `n` values are not NaN; the result is `(n, nans,
/// values)`, with no values when `ranks_of` returns none.
///
/// Each bucket is a key interval. A pass splits every needed bucket into `2^16` equal
/// sub-intervals (fewer when many buckets are open), and the sub-bucket holding a rank
/// becomes its bucket, narrowed to the smallest and largest key seen in the pass. So data
/// on a narrow range (small integers in a 64-bit type, floats of one binade) is resolved in
/// as few passes as data spread over the whole key range.
fn select<T, P>(
    p: &P,
    memory: usize,
    ranks_of: impl FnOnce(usize, u64) -> Vec<usize>,
) -> Result<(usize, u64, Vec<T>)>
where
    T: Numeric + SortKey,
    P: Passes<T>,
{
    let len = p.data().len();
    let elem = std::mem::size_of::<T>();
    let fits = |count: usize| count.saturating_mul(elem) <= memory;
    if fits(len) {
        let (mut v, nans) = collect_pass(p, None)?;
        let ranks = ranks_of(v.len(), nans);
        if ranks.last().is_some_and(|&r| r >= v.len()) {
            return Err(changed());
        }
        let vals = select_ranks(&mut v, &ranks);
        return Ok((v.len(), nans, vals));
    }
    let w = key_bits::<T>();
    let top = if w == 64 { u64::MAX } else { (1u64 << w) - 1 };
    let root = Locus {
        rank: 0,
        lo: 0,
        hi: top,
        base: 0,
        count: len,
    };
    let mut b = Buckets::new(&[root], DIGIT_BITS.min(w));
    let mut hist = histogram_pass(p, &b)?;
    let nans = hist.nans;
    let n = len - nans as usize;
    let ranks = ranks_of(n, nans);
    if ranks.is_empty() {
        return Ok((n, nans, Vec::new()));
    }
    let mut loci: Vec<Locus> = ranks.iter().map(|&rank| Locus { rank, ..root }).collect();
    let mut found: Vec<Option<T>> = vec![None; ranks.len()];
    loop {
        // Descend: each rank moves into the sub-bucket that holds it, narrowed to the keys
        // seen in its bucket.
        for l in loci.iter_mut().filter(|l| l.lo != l.hi) {
            let g = b.find(l.lo).ok_or_else(changed)?;
            let counts = &hist.counts[g << b.d..(g + 1) << b.d];
            let mut base = l.base;
            let mut digit = None;
            for (i, &c) in counts.iter().enumerate() {
                if l.rank < base + c as usize {
                    digit = Some(i);
                    break;
                }
                base += c as usize;
            }
            let digit = digit.ok_or_else(changed)?;
            let lo = b.lo[g] + ((digit as u64) << b.shift[g]);
            let hi = lo.saturating_add((1u64 << b.shift[g]) - 1).min(b.hi[g]);
            l.lo = lo.max(hist.min[g]);
            l.hi = hi.min(hist.max[g]);
            l.base = base;
            l.count = counts[digit] as usize;
            if l.lo > l.hi {
                return Err(changed());
            }
        }
        // A bucket of one key value: its element is known.
        for (f, l) in found.iter_mut().zip(&loci) {
            if l.lo == l.hi {
                *f = Some(from_key(l.lo));
            }
        }
        let open: Vec<Locus> = loci.iter().copied().filter(|l| l.lo != l.hi).collect();
        if open.is_empty() {
            break;
        }
        let mut d = DIGIT_BITS;
        let groups = Buckets::new(&open, d).lo.len();
        while d > 8 && groups << d > MAX_COUNTERS {
            d -= 1;
        }
        b = Buckets::new(&open, d);
        let mut candidates = 0;
        let mut offsets = Vec::with_capacity(b.lo.len());
        for l in &open {
            if offsets.last().is_none_or(|&(lo, _)| lo != l.lo) {
                offsets.push((l.lo, candidates));
                candidates += l.count;
            }
        }
        if fits(candidates) {
            let (mut v, _) = collect_pass(p, Some(&b))?;
            if v.len() != candidates {
                return Err(changed());
            }
            // Buckets are in key order, so a rank's place among the candidates is its place
            // in its bucket plus the sizes of the buckets before it.
            let local: Vec<usize> = open
                .iter()
                .map(|l| {
                    let off = offsets[b.find(l.lo).expect("bucket")].1;
                    off + l.rank - l.base
                })
                .collect();
            let mut uniq = local.clone();
            uniq.dedup();
            let vals = select_ranks(&mut v, &uniq);
            let mut it = local.iter();
            for (f, _) in found.iter_mut().zip(&loci).filter(|(_, l)| l.lo != l.hi) {
                let r = it.next().expect("open rank");
                *f = Some(vals[uniq.binary_search(r).expect("rank")]);
            }
            break;
        }
        hist = histogram_pass(p, &b)?;
    }
    Ok((
        n,
        nans,
        found.into_iter().map(|f| f.expect("found")).collect(),
    ))
}

/// The canonical NaN of `T` (NaN for floats; unused for integers).
fn nan_of<T: Numeric>() -> T {
    <T as NumCast>::from(f64::NAN).unwrap_or_else(T::zero)
}

/// Quantiles `qs` (fractions, checked) of the data in `p`.
pub(crate) fn quantiles_in<T, P>(
    p: &P,
    qs: &[f64],
    method: QuantileMethod,
    skip_nan: bool,
    memory: usize,
) -> Result<Vec<QuantileValue<T>>>
where
    T: Numeric + SortKey,
    P: Passes<T>,
{
    let len = p.data().len();
    if len == 0 {
        return if skip_nan {
            Ok(vec![QuantileValue::Float(f64::NAN); qs.len()])
        } else {
            Err(Error::EmptyInput { op: "quantile" })
        };
    }
    let needs = std::cell::RefCell::new(Vec::new());
    let (n, nans, vals) = select(p, memory, |n, nans| {
        if n == 0 || (nans > 0 && !skip_nan) {
            return Vec::new();
        }
        let mut needs = needs.borrow_mut();
        *needs = qs.iter().map(|&q| need(n, q, method)).collect();
        let mut ranks: Vec<usize> = needs
            .iter()
            .flat_map(|nd| match *nd {
                Need::Element(r) => [r, r],
                Need::Lerp(a, b, _) => [a, b],
            })
            .collect();
        ranks.sort_unstable();
        ranks.dedup();
        ranks
    })?;
    let interpolates = matches!(method, QuantileMethod::Linear | QuantileMethod::Midpoint);
    if nans > 0 && !skip_nan {
        let v = if interpolates {
            QuantileValue::Float(f64::NAN)
        } else {
            QuantileValue::Element(nan_of())
        };
        return Ok(vec![v; qs.len()]);
    }
    if n == 0 {
        return Ok(vec![QuantileValue::Float(f64::NAN); qs.len()]);
    }
    let mut ranks: Vec<usize> = Vec::new();
    let needs = needs.into_inner();
    for nd in &needs {
        match *nd {
            Need::Element(r) => ranks.extend([r, r]),
            Need::Lerp(a, b, _) => ranks.extend([a, b]),
        }
    }
    ranks.sort_unstable();
    ranks.dedup();
    let at = |r: usize| vals[ranks.binary_search(&r).expect("selected rank")];
    Ok(needs
        .iter()
        .map(|nd| match *nd {
            Need::Element(r) => QuantileValue::Element(at(r)),
            Need::Lerp(a, b, t) => QuantileValue::Float(lerp(at(a), at(b), t)),
        })
        .collect())
}

/// numpy's median of the data in `p`.
fn median_in<T, P>(p: &P, skip_nan: bool, memory: usize) -> Result<f64>
where
    T: Numeric + SortKey,
    P: Passes<T>,
{
    if p.data().is_empty() {
        return Ok(f64::NAN);
    }
    let (n, nans, vals) = select(p, memory, |n, nans| {
        if n == 0 || (nans > 0 && !skip_nan) {
            Vec::new()
        } else if n % 2 == 1 {
            vec![n / 2]
        } else {
            vec![n / 2 - 1, n / 2]
        }
    })?;
    if n == 0 || (nans > 0 && !skip_nan) {
        return Ok(f64::NAN);
    }
    Ok(mean_of(vals[0], vals.get(1).copied()))
}

/// The quantiles `qs` (each in `[0, 1]`) of `data` with `method`, equal to
/// `np.quantile(data, qs, method=...)` bit for bit. Uses at most
/// [`DEFAULT_QUANTILE_MEMORY`] for candidates.
///
///
/// # Results
///
/// The results are those of `np.quantile(a, q_array, method=...)`,
/// `np.percentile(a, p_array, method=...)`, their `nan` forms, and `np.median` /
/// `np.nanmedian`, bit for bit: the ranks and interpolation weights are computed with
/// numpy's float arithmetic (`_quantile`, `_get_indexes`, `_get_gamma`, `_lerp`;
/// `percentile` divides `p` by 100 first). Five methods are supported ([`QuantileMethod`]).
/// `q` is taken as an array (numpy then computes the interpolation in `f64` for every
/// dtype; a Python scalar `q` on `float32` data would interpolate in `float32` instead).
///
/// The result type [`QuantileValue`] keeps the methods that return an element of the data
/// (`lower`, `higher`, `nearest`) exact for every type, `u64` above 2^53 included; the
/// interpolating methods (`linear`, `midpoint`) give `f64`, as numpy does.
///
/// NaN, as numpy: without `nan`, any NaN in the data makes every result NaN; the `nan`
/// forms skip NaN, and give NaN when nothing is left. An empty input is an
/// [`Error::EmptyInput`] for the quantile functions (numpy raises `IndexError`), NaN for the
/// `nan` forms and for the medians (numpy returns NaN with a warning). A `q` outside
/// `[0, 1]` (`p` outside `[0, 100]`) or NaN is an [`Error::QuantileOutOfRange`].
///
/// Two documented differences from numpy:
///
/// - numpy interpolates integers from `b - a` computed in the array's own type, which wraps
///   when the two neighbours are further apart than the type's maximum (`int8` `[-100, 100]`
///   gives a median of 128.0, `int64` extremes a huge positive value); outcore takes the
///   difference exactly. Wherever numpy's subtraction does not wrap, results are identical.
/// - numpy's partition treats `-0.0` and `0.0` as equal, so which of the two it returns when
///   both are present is unspecified; outcore orders `-0.0` first (the sort key order).
///
/// # Algorithm and passes
///
/// Selection on the order-preserving sort keys of [`crate::sort::SortKey`] (numpy's order:
/// NaN last, `-0.0` before `0.0`), never sorting the data:
///
/// 1. If the whole input fits the memory budget (`len × size_of::<T>()`), **one pass**
///    collects the values that are not NaN and an in-memory selection
///    (`select_nth_unstable` on the keys, several ranks sharing the partitions) finishes.
/// 2. Otherwise pass 1 counts a histogram of the top 16 key bits (and the NaNs, and the
///    smallest and largest key). The ranks the requested quantiles need (two per
///    interpolated quantile) are located in their buckets, and each bucket is narrowed to
///    the keys actually seen. A bucket of one key value is resolved there (its element is
///    the key's). If the elements of the other needed buckets (the *candidates*) fit the
///    budget, pass 2 collects them and the in-memory selection finishes: **two passes**. If
///    not, each needed bucket's key interval is split into `2^16` equal parts by another
///    histogram pass (narrowed again to the keys seen), until the candidates fit or every
///    bucket is a single key.
///
///    Every histogram pass divides the width of the needed buckets by `2^16` (by `2^8` at
///    least when so many buckets are open that `2^16` counters each would exceed `2^18`),
///    so the count is bounded by the key width: at most 1 pass for 8- and 16-bit types
///    (buckets are single values after pass 1), 2 for 32-bit types and 4 for 64-bit types
///    (3 and 7 when many quantiles split the counters).
///    In practice it is 2 (a histogram pass and a collecting pass), or 3 when one bucket of
///    `1/65536` of the data's key range holds more than the budget (a large input
///    concentrated on a narrow range, for example floats of one binade). Data on a narrow
///    range of a wide type (small integers in `i64`) costs no extra pass: the first
///    narrowing is to the data's own range.
///
/// All requested quantiles share the same passes. Histogram counts go to shared atomic
/// counters (a chunk counts locally first): at most `2^18` of them per pass (2 MiB, plus
/// 1 MiB of local counts per chunk in flight), besides the budget. Counts are integers:
/// results do not depend on the thread count or the chunk size.
///
/// ```
/// use outcore::kernels::{self, QuantileMethod, QuantileValue};
/// let v = [7u64, 1, 3, u64::MAX, 5];
/// let q = kernels::quantiles(&v, &[0.0, 0.5, 0.625], QuantileMethod::Linear)?;
/// assert_eq!(q, [QuantileValue::Float(1.0), QuantileValue::Float(5.0), QuantileValue::Float(6.0)]);
/// let top = kernels::quantiles(&v, &[1.0], QuantileMethod::Higher)?;
/// assert_eq!(top[0].element(), Some(u64::MAX)); // exact, not rounded through f64
/// # Ok::<(), outcore::Error>(())
/// ```
///
/// # Errors
/// [`Error::QuantileOutOfRange`] if a `q` is outside `[0, 1]` or NaN;
/// [`Error::EmptyInput`] if `data` is empty.
pub fn quantiles<T: Numeric + SortKey>(
    data: &[T],
    qs: &[f64],
    method: QuantileMethod,
) -> Result<Vec<QuantileValue<T>>> {
    quantiles_with(data, qs, method, &ParOptions::new())
}

/// [`quantiles`] with options.
///
/// # Errors
/// As [`quantiles`], and [`Error::ThreadPool`] if the options' thread pool cannot be
/// started.
pub fn quantiles_with<T: Numeric + SortKey>(
    data: &[T],
    qs: &[f64],
    method: QuantileMethod,
    opts: &ParOptions,
) -> Result<Vec<QuantileValue<T>>> {
    let qs = fractions(qs, false)?;
    let p = SlicePasses::new(data, opts);
    quantiles_in(&p, &qs, method, false, DEFAULT_QUANTILE_MEMORY)
}

/// The quantiles of the elements that are not NaN (numpy's `nanquantile`): NaN when there
/// are none.
///
/// # Errors
/// [`Error::QuantileOutOfRange`] if a `q` is outside `[0, 1]` or NaN.
pub fn nanquantiles<T: Numeric + SortKey>(
    data: &[T],
    qs: &[f64],
    method: QuantileMethod,
) -> Result<Vec<QuantileValue<T>>> {
    nanquantiles_with(data, qs, method, &ParOptions::new())
}

/// [`nanquantiles`] with options.
///
/// # Errors
/// As [`nanquantiles`], and [`Error::ThreadPool`] if the options' thread pool cannot
/// be started.
pub fn nanquantiles_with<T: Numeric + SortKey>(
    data: &[T],
    qs: &[f64],
    method: QuantileMethod,
    opts: &ParOptions,
) -> Result<Vec<QuantileValue<T>>> {
    let qs = fractions(qs, false)?;
    let p = SlicePasses::new(data, opts);
    quantiles_in(&p, &qs, method, true, DEFAULT_QUANTILE_MEMORY)
}

/// The percentiles `ps` (each in `[0, 100]`) of `data`: `np.percentile(data, ps,
/// method=...)`, which divides each `p` by 100 (in `f64`) and takes that quantile.
///
/// ```
/// use outcore::kernels::{self, QuantileMethod};
/// let v: Vec<i32> = (1..=10).collect();
/// let p = kernels::percentiles(&v, &[25.0, 50.0, 90.0], QuantileMethod::Linear)?;
/// let p: Vec<f64> = p.iter().map(|x| x.to_f64()).collect();
/// assert_eq!(p, [3.25, 5.5, 9.1]);
/// # Ok::<(), outcore::Error>(())
/// ```
///
/// # Errors
/// [`Error::QuantileOutOfRange`] if a `p` is outside `[0, 100]` or NaN;
/// [`Error::EmptyInput`] if `data` is empty.
pub fn percentiles<T: Numeric + SortKey>(
    data: &[T],
    ps: &[f64],
    method: QuantileMethod,
) -> Result<Vec<QuantileValue<T>>> {
    percentiles_with(data, ps, method, &ParOptions::new())
}

/// [`percentiles`] with options.
///
/// # Errors
/// As [`percentiles`], and [`Error::ThreadPool`] if the options' thread pool cannot
/// be started.
pub fn percentiles_with<T: Numeric + SortKey>(
    data: &[T],
    ps: &[f64],
    method: QuantileMethod,
    opts: &ParOptions,
) -> Result<Vec<QuantileValue<T>>> {
    let qs = fractions(ps, true)?;
    let p = SlicePasses::new(data, opts);
    quantiles_in(&p, &qs, method, false, DEFAULT_QUANTILE_MEMORY)
}

/// The percentiles of the elements that are not NaN (numpy's `nanpercentile`).
///
/// # Errors
/// [`Error::QuantileOutOfRange`] if a `p` is outside `[0, 100]` or NaN.
pub fn nanpercentiles<T: Numeric + SortKey>(
    data: &[T],
    ps: &[f64],
    method: QuantileMethod,
) -> Result<Vec<QuantileValue<T>>> {
    nanpercentiles_with(data, ps, method, &ParOptions::new())
}

/// [`nanpercentiles`] with options.
///
/// # Errors
/// As [`nanpercentiles`], and [`Error::ThreadPool`] if the options' thread pool
/// cannot be started.
pub fn nanpercentiles_with<T: Numeric + SortKey>(
    data: &[T],
    ps: &[f64],
    method: QuantileMethod,
    opts: &ParOptions,
) -> Result<Vec<QuantileValue<T>>> {
    let qs = fractions(ps, true)?;
    let p = SlicePasses::new(data, opts);
    quantiles_in(&p, &qs, method, true, DEFAULT_QUANTILE_MEMORY)
}

/// The median as `np.median` computes it: the middle element, or numpy's `mean` of the two
/// middle elements (in `f32` for `f32` data, else in `f64`; `-0.0` comes out as `0.0`, as
/// numpy's add-reduce starts from `+0.0`), as `f64`. NaN if `data` is
/// empty or holds a NaN.
///
/// ```
/// assert_eq!(outcore::kernels::median(&[3.0f64, 1.0, 4.0, 1.5]), 2.25);
/// assert_eq!(outcore::kernels::median(&[5u8, 9, 1]), 5.0);
/// ```
pub fn median<T: Numeric + SortKey>(data: &[T]) -> f64 {
    defaults(median_with(data, &ParOptions::new()))
}

/// [`median`] with options.
///
/// # Errors
/// [`Error::ThreadPool`] if the options' thread pool cannot be started.
pub fn median_with<T: Numeric + SortKey>(data: &[T], opts: &ParOptions) -> Result<f64> {
    median_in(
        &SlicePasses::new(data, opts),
        false,
        DEFAULT_QUANTILE_MEMORY,
    )
}

/// The median of the elements that are not NaN (numpy's `nanmedian`); NaN if there are
/// none.
pub fn nanmedian<T: Numeric + SortKey>(data: &[T]) -> f64 {
    defaults(nanmedian_with(data, &ParOptions::new()))
}

/// [`nanmedian`] with options.
///
/// # Errors
/// [`Error::ThreadPool`] if the options' thread pool cannot be started.
pub fn nanmedian_with<T: Numeric + SortKey>(data: &[T], opts: &ParOptions) -> Result<f64> {
    median_in(&SlicePasses::new(data, opts), true, DEFAULT_QUANTILE_MEMORY)
}

/// The element of rank `k` (0-based) in numpy's sort order (NaN last, `-0.0` before `0.0`):
/// `np.partition(data, k)[k]`, without sorting.
///
/// ```
/// let v = [9i16, -2, 7, 7, 0];
/// assert_eq!(outcore::kernels::kth(&v, 3)?, 7);
/// # Ok::<(), outcore::Error>(())
/// ```
///
/// # Errors
/// [`Error::RankOutOfRange`] if `k >= data.len()`.
pub fn kth<T: Numeric + SortKey>(data: &[T], k: usize) -> Result<T> {
    kth_with(data, k, &ParOptions::new())
}

/// [`kth`] with options.
///
/// # Errors
/// As [`kth`], and [`Error::ThreadPool`] if the options' thread pool cannot be
/// started.
pub fn kth_with<T: Numeric + SortKey>(data: &[T], k: usize, opts: &ParOptions) -> Result<T> {
    if k >= data.len() {
        return Err(Error::RankOutOfRange {
            rank: k,
            len: data.len(),
        });
    }
    let p = SlicePasses::new(data, opts);
    let (n, _, vals) = select(&p, DEFAULT_QUANTILE_MEMORY, |n, _| {
        if k < n {
            vec![k]
        } else {
            Vec::new()
        }
    })?;
    // Ranks past the values that are not NaN are NaNs (they sort last).
    Ok(if k < n { vals[0] } else { nan_of() })
}

/// The quantile functions for mapped files, re-exported by [`stream`](crate::stream).
pub(crate) mod file {
    use super::*;

    /// The quantiles `qs` (each in `[0, 1]`) of a mapped file, equal to
    /// `np.quantile(np.load(path), qs, method=...)` (or `np.nanquantile` with
    /// [`QuantileOptions::skip_nan`]), streaming the file with the options' [`Stream`]
    /// (release-behind by default) and collecting at most [`QuantileOptions::memory`] bytes of
    /// candidates. [`Quantiles::passes`] says how many passes were run: 1 if the file fits the
    /// budget, else usually 2 or 3 (see [`kernels::quantiles`](crate::kernels::quantiles) for the
    /// algorithm).
    ///
    /// ```
    /// use outcore::kernels::{QuantileMethod, QuantileOptions};
    /// use outcore::stream;
    /// use outcore::{MappedArray, MappedArrayMut};
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let path = dir.path().join("q.npy");
    /// let mut w = MappedArrayMut::<u32>::create(&path, &[100_000])?;
    /// w.iter_mut().enumerate().for_each(|(i, x)| *x = (i as u32 * 7919) % 100_000);
    /// w.persist()?;
    /// let a = MappedArray::<u32>::open(&path)?;
    /// let mut o = QuantileOptions::new();
    /// o.method(QuantileMethod::Lower).memory(64 << 10); // 16k candidates of 100k
    /// let q = stream::quantiles(&a, &[0.0, 0.5, 1.0], &o)?;
    /// assert_eq!(q.values.iter().map(|v| v.element().unwrap()).collect::<Vec<_>>(), [0, 49_999, 99_999]);
    /// assert_eq!(q.passes, 2); // a histogram pass, then a collecting pass
    /// # Ok::<(), outcore::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::QuantileOutOfRange`], [`Error::EmptyInput`] as
    /// [`kernels::quantiles`](crate::kernels::quantiles);
    /// [`Error::Truncated`] if the file shrank, [`Error::Io`] if an `madvise` or release fails;
    /// [`Error::ThreadPool`] if the thread pool cannot be started; [`Error::DataChanged`] if
    /// the file changed between passes.
    pub fn quantiles<T: Numeric + SortKey + Element>(
        a: &MappedArray<T>,
        qs: &[f64],
        opts: &QuantileOptions,
    ) -> Result<Quantiles<T>> {
        run(a, &fractions(qs, false)?, opts)
    }

    /// The percentiles `ps` (each in `[0, 100]`, divided by 100 as numpy does) of a mapped
    /// file: [`quantiles`] for `np.percentile`.
    ///
    /// # Errors
    /// As [`quantiles`], with `p` checked against `[0, 100]`.
    pub fn percentiles<T: Numeric + SortKey + Element>(
        a: &MappedArray<T>,
        ps: &[f64],
        opts: &QuantileOptions,
    ) -> Result<Quantiles<T>> {
        run(a, &fractions(ps, true)?, opts)
    }

    fn run<T: Numeric + SortKey + Element>(
        a: &MappedArray<T>,
        qs: &[f64],
        opts: &QuantileOptions,
    ) -> Result<Quantiles<T>> {
        let p = FilePasses::new(a, &opts.par, &opts.stream);
        let values = quantiles_in(&p, qs, opts.method, opts.skip_nan, opts.memory)?;
        Ok(Quantiles {
            values,
            passes: p.count(),
        })
    }

    /// numpy's median (`np.median`, or `np.nanmedian` with [`QuantileOptions::skip_nan`]) of
    /// a mapped file, in the passes of [`quantiles`]; the method option is not used.
    ///
    /// # Errors
    /// As [`quantiles`], except that an empty file gives NaN.
    pub fn median<T: Numeric + SortKey + Element>(
        a: &MappedArray<T>,
        opts: &QuantileOptions,
    ) -> Result<f64> {
        let p = FilePasses::new(a, &opts.par, &opts.stream);
        median_in(&p, opts.skip_nan, opts.memory)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn naive<T: Numeric + SortKey>(v: &[T], r: usize) -> T {
        let mut s = v.to_vec();
        s.sort_by_key(|x| x.sort_key());
        s[r]
    }

    #[test]
    fn keys_invert() {
        for x in [
            0.0f64,
            -0.0,
            1.5,
            -1.5,
            f64::INFINITY,
            f64::NEG_INFINITY,
            5e-324,
        ] {
            assert_eq!(from_key::<f64>(key(&x)).to_bits(), x.to_bits());
        }
        for x in [0.0f32, -0.0, 3.25, -7e30, f32::MIN_POSITIVE] {
            assert_eq!(from_key::<f32>(key(&x)).to_bits(), x.to_bits());
        }
        for x in [i64::MIN, -1, 0, i64::MAX] {
            assert_eq!(from_key::<i64>(key(&x)), x);
        }
        for x in [i8::MIN, -1, 0, i8::MAX] {
            assert_eq!(from_key::<i8>(key(&x)), x);
        }
        assert_eq!(from_key::<u16>(key(&65535u16)), 65535);
    }

    #[test]
    fn numpy_indexes() {
        // np.percentile(range(5), 50): virtual index 2, weight 0.
        assert!(matches!(need(5, 0.5, QuantileMethod::Linear), Need::Lerp(2, 3, t) if t == 0.0));
        // q = 1: both neighbours are the last element, weight (n - 1) + 1.
        assert!(matches!(need(4, 1.0, QuantileMethod::Linear), Need::Lerp(3, 3, t) if t == 4.0));
        // Round half to even: (5 - 1) * 0.625 = 2.5 -> 2; 0.875 * 4 = 3.5 -> 4.
        assert!(matches!(
            need(5, 0.625, QuantileMethod::Nearest),
            Need::Element(2)
        ));
        assert!(matches!(
            need(5, 0.875, QuantileMethod::Nearest),
            Need::Element(4)
        ));
        assert!(matches!(need(4, 0.5, QuantileMethod::Midpoint), Need::Lerp(1, 2, t) if t == 0.5));
    }

    /// Selection with a budget of `mem` bytes against sorting a copy.
    fn check_select<T: Numeric + SortKey>(v: &[T], mem: usize, opts: &ParOptions) {
        let n_valid = v.iter().filter(|x| !is_nan(**x)).count();
        let ranks: Vec<usize> = [0, n_valid / 3, n_valid / 2, n_valid.saturating_sub(1)]
            .into_iter()
            .filter(|&r| r < n_valid)
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        let p = SlicePasses::new(v, opts);
        let (n, _, vals) = select(&p, mem, |_, _| ranks.clone()).unwrap();
        assert_eq!(n, n_valid);
        for (r, x) in ranks.iter().zip(vals) {
            let want = naive(v, *r);
            assert_eq!(key(&x), key(&want), "rank {r} of {n}, budget {mem}");
        }
    }

    proptest! {
        #![proptest_config(crate::proptest_config(48))]

        #[test]
        fn select_matches_sorting(
            f in prop::collection::vec(prop_oneof![
                20 => -1e3..1e3f64,
                2 => Just(0.0), 2 => Just(-0.0), 1 => Just(f64::NAN),
                1 => Just(f64::INFINITY), 1 => Just(f64::NEG_INFINITY),
                4 => (0u32..8).prop_map(|x| x as f64)], 0..3000),
            i in prop::collection::vec(any::<i64>(), 0..2000),
            u in prop::collection::vec(0u16..50, 0..3000),
            b in prop::collection::vec(any::<i8>(), 0..3000),
            mem in 8usize..4096,
        ) {
            let mut o = ParOptions::new();
            o.chunk_bytes(4096).threads(2);
            for m in [mem, usize::MAX] {
                check_select(&f, m, &o);
                check_select(&i, m, &o);
                check_select(&u, m, &o);
                check_select(&b, m, &o);
                check_select(&f.iter().map(|&x| x as f32).collect::<Vec<_>>(), m, &o);
            }
        }
    }

    #[test]
    fn refinement_is_counted() {
        // 200k distinct f64 in [1, 2) in a 64-byte budget: the top 16 key bits (sign,
        // exponent, 4 mantissa bits) leave 12.5k candidates, so pass 2 refines, and pass 3
        // collects.
        let v: Vec<f64> = (0..200_000u64)
            .map(|i| {
                1.0 + (i.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 11) as f64 / (1u64 << 53) as f64
            })
            .collect();
        let p = SlicePasses::new(&v, super::super::passes::serial());
        let (_, _, vals) = select(&p, 64, |_, _| vec![100_000]).unwrap();
        assert_eq!(vals[0], naive(&v, 100_000));
        assert_eq!(p.count(), 3);
        // All equal: the bucket narrows to one key in pass 1.
        let e = vec![2.5f32; 100_000];
        let p = SlicePasses::new(&e, super::super::passes::serial());
        let (_, _, vals) = select(&p, 64, |_, _| vec![0, 99_999]).unwrap();
        assert_eq!(vals, [2.5, 2.5]);
        assert_eq!(p.count(), 1);
        // Small integers in a 64-bit type: pass 1 narrows the bucket to the data's range,
        // pass 2 splits that range into single values.
        let i: Vec<i64> = (0..50_000).map(|i| (i * 7919) % 10_007 - 5000).collect();
        let p = SlicePasses::new(&i, super::super::passes::serial());
        let (_, _, vals) = select(&p, 4096, |_, _| vec![0, 25_000, 49_999]).unwrap();
        assert_eq!(vals, [naive(&i, 0), naive(&i, 25_000), naive(&i, 49_999)]);
        assert_eq!(p.count(), 2);
    }
}
