//! Histograms: numpy's bin rule (`np.histogram` with equal bins over a range) and the
//! counting behind [`histogram`] and the fused summary's bins.

use super::{per_chunk, Numeric, LANES};
use crate::chunk::ParOptions;
use crate::cpu::{multiversion, prefetch_lanes, Isa};
use crate::error::{Error, Result};

/// Counts of `data` in `bins` equal-width bins over `range`, as `np.histogram(data, bins,
/// range)`: bin `i` is `[edge_i, edge_{i+1})` except the last, which also holds the upper
/// edge; values outside the range and NaN are not counted. `range: None` uses the data's
/// min and max (a NaN in the data is then an error, as in numpy). A zero-width range is
/// widened to `lo - 0.5 .. hi + 0.5` like numpy. Arithmetic is in `f64`, with numpy's edge
/// formula, so values on an edge land in the same bin as in numpy for `f64` data.
///
/// ```
/// let v = [0.0, 0.5, 1.0, 1.5, 2.0, 9.0];
/// let h = outcore::kernels::histogram(&v, 4, Some((0.0, 2.0))).unwrap();
/// assert_eq!(h, vec![1, 1, 1, 2]);
/// ```
///
/// # Errors
/// [`Error::NoBins`] if `bins` is 0; [`Error::RangeNotFinite`] if the range is not finite
/// (or the data holds NaN or infinity and no range was given); [`Error::RangeReversed`] if
/// `lo > hi`.
pub fn histogram<T: Numeric>(
    data: &[T],
    bins: usize,
    range: Option<(f64, f64)>,
) -> Result<Vec<u64>> {
    histogram_with(data, bins, range, &ParOptions::new())
}

/// [`histogram`] with options.
///
/// # Errors
/// As [`histogram`], and [`Error::ThreadPool`] if the options' thread pool cannot be
/// started.
pub fn histogram_with<T: Numeric>(
    data: &[T],
    bins: usize,
    range: Option<(f64, f64)>,
    opts: &ParOptions,
) -> Result<Vec<u64>> {
    if bins == 0 {
        return Err(Error::NoBins);
    }
    let (mut lo, mut hi) = match range {
        Some(r) => r,
        None => match super::min_max_with(data, opts)? {
            None => (0.0, 1.0),
            Some((a, b)) => (a.as_(), b.as_()),
        },
    };
    if !(lo.is_finite() && hi.is_finite()) {
        return Err(Error::RangeNotFinite {
            lo,
            hi,
            from_data: range.is_none(),
        });
    }
    if lo > hi {
        return Err(Error::RangeReversed { lo, hi });
    }
    if lo == hi {
        lo -= 0.5;
        hi += 0.5;
    }
    let rule = BinRule::new(bins, lo, hi);
    let isa = Isa::active();
    // Counts are integers: any grouping gives the same, so one call per chunk.
    let parts = per_chunk(data, opts, |_, c| {
        let mut counts = vec![0u64; bins];
        count_bins_isa(isa, c, &mut counts, &rule);
        counts
    })?;
    let mut total = vec![0u64; bins];
    for p in parts {
        for (t, c) in total.iter_mut().zip(p) {
            *t += c;
        }
    }
    Ok(total)
}

/// numpy's rule for `bins` equal bins over a checked, finite `[lo, hi]` with `lo < hi`
/// (`np.histogram(data, bins, range)`): edge `i` is `i * step + lo` (`linspace`'s arithmetic),
/// the last edge is `hi` itself, and a value's bin is its computed index `(x - lo) * norm`,
/// corrected by one comparison with each neighbouring edge.
#[derive(Clone, Debug)]
pub(crate) struct BinRule {
    lo: f64,
    hi: f64,
    norm: f64,
    step: f64,
    last: f64,
    bins: usize,
    /// How close (in bins) the computed index may come to a whole number before the edge
    /// comparisons could change the bin; 1 when they always may (then every value is
    /// corrected).
    margin: f64,
}

impl BinRule {
    /// The rule for `bins` bins over `[lo, hi]` (already widened if it was empty).
    pub(crate) fn new(bins: usize, lo: f64, hi: f64) -> BinRule {
        let width = hi - lo;
        let step = width / bins as f64;
        let norm = bins as f64 / width;
        // With `u` the unit roundoff, the computed index `t = fl(fl(x - lo) * norm)` is within
        // `3u * bins` of the exact `(x - lo) * bins / width`, and each computed edge is
        // within `2u * bins + u * bins * max(|lo|, |hi|) / width` of its exact place, both
        // in bins. So when `t` is farther than their sum from every whole number, the two
        // edge comparisons cannot move the value: its bin is `trunc(t)`. The margin is that
        // sum, doubled.
        let u = f64::EPSILON / 2.0;
        let big = lo.abs().max(hi.abs());
        let margin = 2.0 * u * bins as f64 * (5.0 + big / width);
        let usable = width.is_finite() && norm.is_finite() && margin < 0.25;
        BinRule {
            lo,
            hi,
            norm,
            step,
            last: (bins - 1) as f64,
            bins,
            margin: if usable { margin } else { 1.0 },
        }
    }

    /// The bin of `x` as numpy computes it (with the edge corrections), as a whole `f64`;
    /// `bins` for a value outside the range or NaN.
    ///
    /// Written without branches or table lookups so that it vectorises: the edges are
    /// recomputed in the same `f64` arithmetic (so with the same bits), and the index stays
    /// in `f64`.
    #[inline(always)]
    fn exact(&self, x: f64) -> f64 {
        let (lo, last, step) = (self.lo, self.last, self.step);
        let inside = x >= lo && x <= self.hi;
        let t = (x - lo) * self.norm;
        // NaN (an infinite `x - lo` times a zero `norm`) counts as 0, as `as usize` makes it.
        let t = if t > 0.0 { t } else { 0.0 };
        let i = (if t < last { t } else { last }).trunc();
        // For `x >= lo == edges[0]` the first correction never goes below bin 0; the last
        // bin is closed, so the second never goes past it. Outside values get garbage here
        // and the spare slot below.
        let below = x < i * step + lo;
        let above = i < last && x >= (i + 1.0) * step + lo;
        let i = if below { i - 1.0 } else { i };
        let i = if above { i + 1.0 } else { i };
        if inside {
            i
        } else {
            self.bins as f64
        }
    }

    /// The bins of `c` (at most `idx.len()` values) into `idx`, as [`BinRule::exact`]
    /// gives them: first without the edge comparisons (`trunc` of the computed index),
    /// and again exactly only if some value came within the margin of a whole index.
    /// Each step prefetches `whole` from element `ahead` on ([`AHEAD`]): `c` is a block of
    /// `whole`, searched in L1 while memory brings the blocks after it.
    #[inline(always)]
    fn indices<T: Numeric>(&self, c: &[T], idx: &mut [u32], whole: &[T], ahead: usize) {
        let mut search = self.search();
        for (j, (x, k)) in c
            .chunks_exact(LANES)
            .zip(idx.chunks_exact_mut(LANES))
            .enumerate()
        {
            prefetch_lanes(whole, ahead + j * LANES);
            search.chunk(
                x.try_into().expect("exact chunk"),
                k.try_into().expect("exact chunk"),
            );
        }
        self.search_end(search, c, idx);
    }

    /// A bin search over one block, [`LANES`] values at a time ([`Search::chunk`]), then
    /// [`BinRule::search_end`]: [`BinRule::indices`] in pieces, for a loop that does other
    /// work beside it (the fused summary's).
    #[inline(always)]
    pub(crate) fn search(&self) -> Search {
        Search {
            lo: self.lo,
            hi: self.hi,
            norm: self.norm,
            last: self.last,
            dropped: self.bins as f64,
            least: [0.5; LANES],
            most: [0.5; LANES],
        }
    }

    /// Ends the bin search of `c` (whose whole chunks of [`LANES`] went through
    /// [`Search::chunk`] into `idx`): the remainder's bins, and all of them again, exactly,
    /// if some value came within the margin of a whole index.
    #[inline(always)]
    pub(crate) fn search_end<T: Numeric>(&self, s: Search, c: &[T], idx: &mut [u32]) {
        let idx = &mut idx[..c.len()];
        let done = c.len() - c.len() % LANES;
        for (k, &x) in idx[done..].iter_mut().zip(&c[done..]) {
            *k = to_u32(self.exact(x.as_()));
        }
        let margin = self.margin;
        let far = s.least.iter().all(|&f| f > margin) && s.most.iter().all(|&f| f < 1.0 - margin);
        if !far {
            for (k, &x) in idx[..done].iter_mut().zip(c) {
                *k = to_u32(self.exact(x.as_()));
            }
        }
    }
}

/// A whole number below 2^52 as a `u32`: plus 2^52, it is in the low mantissa bits, a
/// conversion that vectorises (`as u32` saturates, and does not).
#[inline(always)]
fn to_u32(i: f64) -> u32 {
    const TWO_POW_52: f64 = 4_503_599_627_370_496.0;
    (i + TWO_POW_52).to_bits() as u32
}

/// The state of a bin search ([`BinRule::search`]): the rule's constants, and per lane the
/// least and greatest fraction of the computed indices of the values inside the range.
/// Inside, `t >= 0`; an infinite or NaN `t` (only where the margin is 1) fails the
/// check of [`BinRule::search_end`] either way.
pub(crate) struct Search {
    lo: f64,
    hi: f64,
    norm: f64,
    last: f64,
    dropped: f64,
    least: [f64; LANES],
    most: [f64; LANES],
}

impl Search {
    /// The bins of `x` into `k`, without the edge comparisons.
    #[inline(always)]
    pub(crate) fn chunk<T: Numeric>(&mut self, x: &[T; LANES], k: &mut [u32; LANES]) {
        let (lo, hi, norm, last) = (self.lo, self.hi, self.norm, self.last);
        for l in 0..LANES {
            let x: f64 = x[l].as_();
            let inside = x >= lo && x <= hi;
            let t = (x - lo) * norm;
            let i = (if t < last { t } else { last }).trunc();
            let f = if inside { t - i } else { 0.5 };
            self.least[l] = if f < self.least[l] { f } else { self.least[l] };
            self.most[l] = if f > self.most[l] { f } else { self.most[l] };
            k[l] = to_u32(if inside { i } else { self.dropped });
        }
    }
}

/// Values per block of bin indices ([`BinRule::search`], [`BinCounter::add`]).
pub(crate) const BIN_BLOCK: usize = 512;

/// How far ahead of the block being searched the histogram's loops (and the fused
/// summary's) prefetch, in elements: four blocks, 16 KiB of `f64`. The bin search works on
/// a block in L1 while the memory brings the next ones; with the hardware prefetcher alone
/// the hot summary ran at about four fifths of the speed (BENCHMARKS.md).
pub(crate) const AHEAD: usize = 4 * BIN_BLOCK;

/// Bins up to which [`BinCounter`] counts pairs of values: `(bins + 1)^2` 32-bit counters
/// (17 KiB at 64 bins) stay in L1.
const PAIR_BINS: usize = 64;

/// The pairs' table: a power of two at least `(PAIR_BINS + 1)^2`, so that an index masked
/// to it needs no bounds check (only the first `(bins + 1)^2` counters are used).
const PAIR_TABLE: usize = 8192;
const _: () = assert!((PAIR_BINS + 1) * (PAIR_BINS + 1) <= PAIR_TABLE);

/// Counts bin indices (`0..=bins`, `bins` the dropped slot for values outside the range).
///
/// Up to [`PAIR_BINS`] bins it counts *pairs*: value `k` and value `k + n/2` of each block
/// make one index into a table of `(bins + 1)^2` counters, so a block costs half as many
/// increments (the increments, not the bin search, were the histogram's limit), and the
/// pairs' table is folded into the bins' counts at the end. A block's pairs are *staged*
/// ([`BinCounter::stage`]) and counted a few at a time ([`BinCounter::steps`]) from inside
/// the next block's vector loops, so that the increments (loads and stores) overlap that
/// arithmetic instead of following it; whatever the steps leave is counted by the next
/// `stage` or by [`BinCounter::finish`]. Above [`PAIR_BINS`] it counts into four
/// interleaved tables (one above 1024 bins), so that a run of values in one bin does not
/// wait on one counter.
pub(crate) struct BinCounter {
    slots: usize,
    counters: Counters,
    /// Increments since the last fold into `wide`, which keep every `u32` from overflowing.
    pending: u64,
    wide: Vec<u64>,
    /// The staged pairs: `staged[done..len]` are still to be counted.
    staged: Box<[u32; BIN_BLOCK / 2]>,
    done: usize,
    len: usize,
}

/// [`BinCounter`]'s 32-bit counters.
enum Counters {
    /// `slots^2` pair counters, in a table of [`PAIR_TABLE`].
    Pairs(Box<[u32; PAIR_TABLE]>),
    /// `n` interleaved tables of `slots` counters.
    Tables(usize, Vec<u32>),
}

/// Staged pairs counted per [`Steps::step`]: a block of [`BIN_BLOCK`] values has
/// `BIN_BLOCK / 2` pairs, and the loops that step go through it [`LANES`] values at a time.
const STEP: usize = LANES / 2;

impl BinCounter {
    pub(crate) fn new(bins: usize) -> BinCounter {
        let slots = bins + 1;
        let counters = if bins <= PAIR_BINS {
            Counters::Pairs(Box::new([0; PAIR_TABLE]))
        } else {
            let n = if bins <= 1024 { 4 } else { 1 };
            Counters::Tables(n, vec![0; n * slots])
        };
        BinCounter {
            slots,
            counters,
            pending: 0,
            wide: vec![0; slots],
            staged: Box::new([0; BIN_BLOCK / 2]),
            done: 0,
            len: 0,
        }
    }

    /// Counts the indices `idx` (at most [`BIN_BLOCK`], each at most `bins`): at once if
    /// the counter counts into tables, else as staged pairs that the next [`Steps`] count
    /// (and at the latest the next `stage`, `add` or `finish`).
    #[inline(always)]
    pub(crate) fn stage(&mut self, idx: &[u32]) {
        self.make_room(idx.len());
        let slots = self.slots;
        match &mut self.counters {
            Counters::Pairs(_) => {
                self.len = pair_up(idx, slots, &mut self.staged[..], &mut self.wide);
                self.done = 0;
            }
            Counters::Tables(1, table) => idx.iter().for_each(|&k| table[k as usize] += 1),
            Counters::Tables(_, table) => {
                let mut quads = idx.chunks_exact(4);
                for q in &mut quads {
                    for (t, &k) in q.iter().enumerate() {
                        table[t * slots + k as usize] += 1;
                    }
                }
                for &k in quads.remainder() {
                    table[k as usize] += 1;
                }
            }
        }
    }

    /// Counts the indices `idx` (at most [`BIN_BLOCK`], each at most `bins`) now.
    #[inline(always)]
    pub(crate) fn add(&mut self, idx: &[u32]) {
        let Counters::Pairs(_) = &self.counters else {
            return self.stage(idx);
        };
        self.make_room(idx.len());
        let mut pairs = [0u32; BIN_BLOCK / 2];
        let h = pair_up(idx, self.slots, &mut pairs, &mut self.wide);
        if let Counters::Pairs(table) = &mut self.counters {
            count_pairs(table, &pairs[..h]);
        }
    }

    /// Counts the staged pairs, and folds the 32-bit counters into the wide ones if `n`
    /// more increments could overflow them.
    #[inline(always)]
    fn make_room(&mut self, n: usize) {
        self.drain();
        if self.pending + n as u64 >= u32::MAX as u64 {
            self.fold();
        }
        self.pending += n as u64;
    }

    /// The staged pairs, to be counted a few at a time from inside a vector loop.
    #[inline(always)]
    pub(crate) fn steps(&mut self) -> Steps<'_> {
        match &mut self.counters {
            Counters::Pairs(table) => Steps {
                pairs: &self.staged[self.done..self.len],
                table: Some((&mut **table, &mut self.done)),
                at: 0,
            },
            Counters::Tables(..) => Steps::none(),
        }
    }

    /// Counts the staged pairs that are left.
    fn drain(&mut self) {
        if let Counters::Pairs(table) = &mut self.counters {
            count_pairs(table, &self.staged[self.done..self.len]);
        }
        self.done = self.len;
    }

    /// Moves the 32-bit counters into the wide ones.
    fn fold(&mut self) {
        let s = self.slots;
        match &mut self.counters {
            Counters::Pairs(table) => {
                for (a, row) in table[..s * s].chunks_exact_mut(s).enumerate() {
                    self.wide[a] += row.iter().map(|&c| c as u64).sum::<u64>();
                    for (w, c) in self.wide.iter_mut().zip(row.iter_mut()) {
                        *w += *c as u64;
                        *c = 0;
                    }
                }
            }
            Counters::Tables(_, table) => {
                for t in table.chunks_exact_mut(s) {
                    for (w, c) in self.wide.iter_mut().zip(t.iter_mut()) {
                        *w += *c as u64;
                        *c = 0;
                    }
                }
            }
        }
        self.pending = 0;
    }

    /// Adds the counts of the bins (the dropped slot left out) to `counts`.
    pub(crate) fn finish(mut self, counts: &mut [u64]) {
        self.drain();
        self.fold();
        for (c, w) in counts.iter_mut().zip(&self.wide) {
            *c += w;
        }
    }
}

/// A [`BinCounter`]'s staged pairs, counted [`STEP`] at a time by [`Steps::step`]; the
/// counter learns how many when this is dropped.
pub(crate) struct Steps<'a> {
    /// The pairs' table and the counter's count of staged pairs done.
    table: Option<(&'a mut [u32; PAIR_TABLE], &'a mut usize)>,
    pairs: &'a [u32],
    at: usize,
}

impl Steps<'_> {
    /// No pairs to count: [`Steps::step`] does nothing.
    pub(crate) fn none() -> Steps<'static> {
        Steps {
            table: None,
            pairs: &[],
            at: 0,
        }
    }

    /// Counts the next [`STEP`] pairs, if that many are left.
    #[inline(always)]
    pub(crate) fn step(&mut self) {
        let at = self.at;
        if let Some((table, _)) = self.table.as_mut() {
            if at + STEP <= self.pairs.len() {
                count_pairs(table, &self.pairs[at..at + STEP]);
                self.at = at + STEP;
            }
        }
    }
}

impl Drop for Steps<'_> {
    fn drop(&mut self) {
        if let Some((_, done)) = self.table.as_mut() {
            **done += self.at;
        }
    }
}

/// Pairs the indices of `idx` (value `k` with value `k + n/2`) into `pairs` as indices into
/// a table of `slots^2` counters, and counts an odd last index into `wide`; returns the
/// number of pairs.
#[inline(always)]
fn pair_up(idx: &[u32], slots: usize, pairs: &mut [u32], wide: &mut [u64]) -> usize {
    let h = idx.len() / 2;
    for ((p, &a), &b) in pairs[..h].iter_mut().zip(&idx[..h]).zip(&idx[h..2 * h]) {
        *p = a * slots as u32 + b;
    }
    if !idx.len().is_multiple_of(2) {
        wide[idx[idx.len() - 1] as usize] += 1;
    }
    h
}

/// Adds one to the pair counter of each of `pairs`.
#[inline(always)]
fn count_pairs(table: &mut [u32; PAIR_TABLE], pairs: &[u32]) {
    for &p in pairs {
        table[p as usize & (PAIR_TABLE - 1)] += 1;
    }
}

multiversion! {
    /// [`count_bins`] for `isa`.
    pub(crate) fn count_bins_isa[T: Numeric](
        c: &[T],
        counts: &mut [u64],
        rule: &BinRule,
    ) -> () => count_bins;
}

/// Adds the elements of `c` in the rule's range to `counts` (one per bin): a block's bins
/// are found ([`BinRule::indices`]), then counted ([`BinCounter`]).
#[inline(always)]
fn count_bins<T: Numeric>(c: &[T], counts: &mut [u64], rule: &BinRule) {
    let mut counter = BinCounter::new(counts.len());
    let mut idx = [0u32; BIN_BLOCK];
    for (n, block) in c.chunks(BIN_BLOCK).enumerate() {
        rule.indices(block, &mut idx, c, n * BIN_BLOCK + AHEAD);
        // Counted at once: here, unlike in the fused summary's loop, counting the pairs
        // from inside the bin search's loop ([`Steps`]) was slower.
        counter.add(&idx[..block.len()]);
    }
    counter.finish(counts);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// numpy's bin rule written plainly, one element at a time, with a table of edges.
    fn bins_plain(v: &[f64], bins: usize, lo: f64, hi: f64) -> Vec<u64> {
        let step = (hi - lo) / bins as f64;
        let mut edges: Vec<f64> = (0..=bins).map(|i| i as f64 * step + lo).collect();
        edges[bins] = hi;
        let norm = bins as f64 / (hi - lo);
        let mut counts = vec![0u64; bins];
        for &x in v {
            if !(x >= lo && x <= hi) {
                continue;
            }
            let mut i = (((x - lo) * norm) as usize).min(bins - 1);
            if x < edges[i] {
                i -= 1;
            }
            if i != bins - 1 && x >= edges[i + 1] {
                i += 1;
            }
            counts[i] += 1;
        }
        counts
    }

    /// The vectorised bin search against the plain one, on every ISA, on edges, on the
    /// range's ends, outside it, on NaN and infinities, and on ranges so wide that `hi - lo`
    /// overflows.
    #[test]
    fn count_bins_matches_the_plain_rule() {
        let ranges = [
            (0.0, 1.0),
            (-3.0, 7.0),
            (-1e308, 1e308),
            (f64::MIN, f64::MAX),
            (1e-300, 2e-300),
            (5.0, 5.0 + 1e-12),
            (1e17, 1e17),
            (0.0, 5e-324),
        ];
        for (lo, hi) in ranges {
            for bins in [1, 2, 3, 7, 64, 1000, 1025, 5000] {
                let step = (hi - lo) / bins as f64;
                let mut v: Vec<f64> = (0..=bins).map(|i| i as f64 * step + lo).collect();
                // One step either side of every edge: where the computed index alone would
                // be wrong.
                let near: Vec<f64> = v
                    .iter()
                    .flat_map(|&e| [e.next_up(), e.next_down()])
                    .collect();
                v.extend(near);
                v.extend((0..2000).map(|i| lo + (hi / 2000.0 - lo / 2000.0) * i as f64));
                v.extend([
                    lo,
                    hi,
                    f64::NAN,
                    f64::INFINITY,
                    f64::NEG_INFINITY,
                    0.0,
                    -0.0,
                ]);
                v.extend([f64::MIN, f64::MAX, lo - 1.0, hi + 1.0, 1e308, -1e308]);
                let want = bins_plain(&v, bins, lo, hi);
                let rule = BinRule::new(bins, lo, hi);
                for isa in Isa::available() {
                    let mut got = vec![0u64; bins];
                    count_bins_isa(isa, &v, &mut got, &rule);
                    assert_eq!(got, want, "{isa:?}, range ({lo}, {hi}), {bins} bins");
                }
            }
        }
    }

    /// Staged pairs are counted once each, whether a step, the next `stage` or `finish`
    /// counts them: blocks of every length up to [`BIN_BLOCK`] (odd ones too), each
    /// followed by any number of steps, counted into pairs and into tables.
    #[test]
    fn staged_pairs_are_counted_once() {
        let mut seed = 7u64;
        let mut next = move |m: u64| {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seed >> 33) % m
        };
        for bins in [1, 2, 64, 65, 300] {
            let mut want = vec![0u64; bins];
            let mut counter = BinCounter::new(bins);
            for round in 0..200 {
                let len = match round % 4 {
                    0 => BIN_BLOCK,
                    1 => BIN_BLOCK - 1,
                    _ => next(BIN_BLOCK as u64 + 1) as usize,
                };
                let idx: Vec<u32> = (0..len).map(|_| next(bins as u64 + 1) as u32).collect();
                for &k in &idx {
                    if (k as usize) < bins {
                        want[k as usize] += 1;
                    }
                }
                if round % 5 == 4 {
                    counter.add(&idx);
                } else {
                    counter.stage(&idx);
                }
                let mut steps = counter.steps();
                for _ in 0..next(BIN_BLOCK as u64 / STEP as u64 + 3) {
                    steps.step();
                }
            }
            let mut got = vec![0u64; bins];
            counter.finish(&mut got);
            assert_eq!(got, want, "{bins} bins");
        }
    }

    /// The bin search without edge comparisons is taken only where it gives the exact bin:
    /// values a few units in the last place to a million away from every edge, each in a
    /// block of its own (so no other value sends the block to the exact path).
    #[test]
    fn uncorrected_bins_are_taken_only_where_exact() {
        let ranges = [
            (0.0, 1.0),
            (-8.0, 8.0),
            (-3.0, 7.0),
            (1e6, 1e6 + 1.0),
            (-1e-3, 5e-2),
            (1e300, 1.5e300),
            (-1e17, 3e17),
        ];
        let mut taken = 0;
        for (lo, hi) in ranges {
            for bins in [1, 3, 7, 64, 1000] {
                let rule = BinRule::new(bins, lo, hi);
                let step = (hi - lo) / bins as f64;
                let mut idx = [0u32; LANES];
                for e in (0..=bins).map(|i| i as f64 * step + lo) {
                    let ulp = e.next_up() - e;
                    for k in [1.0, 2.0, 3.0, 10.0, 100.0, 1e3, 1e4, 1e6, 1e9] {
                        for x in [e + k * ulp, e - k * ulp] {
                            let c = [x; LANES];
                            rule.indices(&c, &mut idx, &c, 0);
                            let want = rule.exact(x);
                            assert!(
                                idx.iter().all(|&i| i as f64 == want),
                                "range ({lo}, {hi}), {bins} bins, x {x}: {idx:?} vs {want}"
                            );
                            let t = (x - lo) * rule.norm;
                            taken += (t - t.trunc() > rule.margin) as usize;
                        }
                    }
                }
            }
        }
        // Most of these values are far enough from an edge for the uncorrected search.
        assert!(taken > 10_000, "{taken}");
    }
}
