//! The fused summary's loop for `f32` and `f64`: the sum, the moments, the minimum and
//! maximum and the histogram's counts of a block from one loop over each part of it, where
//! the separate kernels run one loop each.
//!
//! Each result is the separate kernel's bit for bit, because the loop keeps the kernels'
//! own accumulators side by side: the pairwise sum's lanes, restarted on every leaf of
//! [`PAIRWISE_BLOCK`] elements; the moments' lanes, restarted on every part of
//! [`MOMENT_BLOCK`] elements; min, max and the NaN probe in lanes over the whole block. The
//! kernels' own ends ([`lanes_finish`], [`block_moments_from`], [`min_max_finish`],
//! [`pairwise_of_leaves`]) then finish them.
//!
//! Each part of [`MOMENT_BLOCK`] elements (4 KiB of `f64`) is read from memory by a first
//! loop (sum, min, max, the moments' first pass), then stays in L1 for a second loop that
//! does three things side by side: the moments' second pass (bound by its additions'
//! latency), the bin search (vector arithmetic), and the counting of the previous part's
//! bins (scalar loads and stores, staged by [`BinCounter`]). That loop also prefetches the
//! parts [`AHEAD`] of it, so that memory keeps streaming while it works in L1.

use num_traits::Float;

use super::histogram::{BinCounter, BinRule, AHEAD, BIN_BLOCK};
use super::reduce::{lanes_finish, min_max_finish, pairwise_of_leaves};
use super::stats::{block_mean, block_moments_from, deviations, m2_of};
use super::{Moments, Numeric, LANES, MOMENT_BLOCK, PAIRWISE_BLOCK};
use crate::cpu::{multiversion, prefetch_lanes};

// The parts must hold whole leaves and whole blocks of bins.
const _: () = assert!(MOMENT_BLOCK.is_multiple_of(PAIRWISE_BLOCK) && MOMENT_BLOCK == BIN_BLOCK);

/// What [`summarize`] finds in one block.
pub(crate) struct BlockSummary<F> {
    /// The block's sum, as [`Numeric::sum_serial`].
    pub(crate) sum: F,
    /// Its moments, as `Moments::of_slice`.
    pub(crate) moments: Moments,
    /// Min and max as `min_max_lanes`, and whether a NaN may be present (true if there is
    /// one).
    pub(crate) lo: F,
    pub(crate) hi: F,
    pub(crate) maybe_nan: bool,
    /// For each whole part of [`MOMENT_BLOCK`] elements, the minimum and maximum of the
    /// block up to its end: where to look for the first minimum and maximum.
    pub(crate) running: Vec<(F, F)>,
}

multiversion! {
    /// [`summarize`] for `isa`.
    pub(crate) fn summarize_isa[F: Float + Numeric](
        b: &[F],
        hist: Option<(&BinRule, &mut BinCounter)>,
    ) -> BlockSummary<F> => summarize;
}

/// The sum, moments, min and max of the non-empty block `b`, and its bins counted into
/// `hist`'s counter.
#[inline(always)]
fn summarize<F: Float + Numeric>(
    b: &[F],
    mut hist: Option<(&BinRule, &mut BinCounter)>,
) -> BlockSummary<F> {
    let first = b[0];
    let mut mn = [first; LANES];
    let mut mx = [first; LANES];
    let mut leaves = Vec::with_capacity(b.len().div_ceil(PAIRWISE_BLOCK));
    let mut running = Vec::with_capacity(b.len() / MOMENT_BLOCK);
    let mut moments = Moments::EMPTY;
    let mut idx = [0u32; BIN_BLOCK];
    for (n, part) in b.chunks(MOMENT_BLOCK).enumerate() {
        let ahead = n * MOMENT_BLOCK + AHEAD;
        let mut macc = [0f64; LANES];
        for leaf in part.chunks(PAIRWISE_BLOCK) {
            let mut acc = [F::zero(); LANES];
            let mut it = leaf.chunks_exact(LANES);
            for c in &mut it {
                let c: &[F; LANES] = c.try_into().expect("exact chunk");
                for i in 0..LANES {
                    let x = c[i];
                    acc[i] = acc[i] + x;
                    macc[i] += x.as_();
                    mn[i] = if x < mn[i] { x } else { mn[i] };
                    mx[i] = if x > mx[i] { x } else { mx[i] };
                }
            }
            leaves.push(lanes_finish::<F, false>(acc, it.remainder()));
        }
        let cnt = [(part.len() / LANES) as u32; LANES];
        match hist.as_mut() {
            None => moments = moments.merge(block_moments_from::<F, false>(part, macc, cnt)),
            Some((rule, counter)) => {
                // The moments' second pass and the bin search in one loop over the part
                // (in L1): the second pass waits on its additions' latency, which the bin
                // search's arithmetic and the staged pairs' counting fill.
                let mean = block_mean::<F, false>(part, macc, cnt);
                let m = mean.map_or(0.0, |(_, m)| m);
                let mut dev = [0f64; LANES];
                let mut search = rule.search();
                let mut steps = counter.steps();
                for (j, (x, k)) in part
                    .chunks_exact(LANES)
                    .zip(idx.chunks_exact_mut(LANES))
                    .enumerate()
                {
                    prefetch_lanes(b, ahead + j * LANES);
                    let x: &[F; LANES] = x.try_into().expect("exact chunk");
                    deviations::<F, false>(&mut dev, x, m);
                    search.chunk(x, k.try_into().expect("exact chunk"));
                    steps.step();
                }
                drop(steps);
                rule.search_end(search, part, &mut idx);
                counter.stage(&idx[..part.len()]);
                if let Some((count, mean)) = mean {
                    let rest = part.chunks_exact(LANES).remainder();
                    let m2 = m2_of::<F, false>(dev, rest, mean);
                    moments = moments.merge(Moments { count, mean, m2 });
                }
            }
        }
        if part.len() == MOMENT_BLOCK {
            // Lanes folded as a tree (four steps, not fifteen in a row). The order can
            // matter only with a NaN in the block, which is then found without them.
            let (mut lo, mut hi) = (mn, mx);
            let mut w = LANES;
            while w > 1 {
                w /= 2;
                for i in 0..w {
                    lo[i] = if lo[i + w] < lo[i] { lo[i + w] } else { lo[i] };
                    hi[i] = if hi[i + w] > hi[i] { hi[i + w] } else { hi[i] };
                }
            }
            running.push((lo[0], hi[0]));
        }
    }
    // `min_max_lanes` probes for NaN with `x - x` in lanes of their own; here the sum is the
    // probe (a NaN anywhere makes it NaN, as an infinity does in `x - x`): `maybe_nan` may
    // differ from the kernel's only where the block holds no NaN, and it is only a hint to
    // look for one.
    let sum = pairwise_of_leaves(&leaves, b.len());
    let probe = [if sum.is_nan() { sum } else { F::zero() }; LANES];
    let (lo, hi, maybe_nan) =
        min_max_finish(mn, mx, probe, b.chunks_exact(LANES).remainder(), first);
    BlockSummary {
        sum,
        moments,
        lo,
        hi,
        maybe_nan,
        running,
    }
}
