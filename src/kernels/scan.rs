//! Inclusive prefix sums (cumsum), in two parallel passes over the chunks.
//!
//! Pass 1 reads every chunk for its total and, for integers, the lowest and highest of its
//! local prefix sums (exactly, in `i128` / `u128`). The offsets of the chunks follow by a
//! serial scan of the totals; if any prefix sum would leave the element type, the call fails
//! with [`Error::Overflow`] before anything is written. Pass 2 writes each chunk's prefix
//! sums starting from its offset, in parallel.
//!
//! Float prefix sums are sequential within a chunk, like numpy's `cumsum`; the chunk offsets
//! come from pairwise chunk totals, so results differ from a purely sequential scan only by
//! rounding (relative error of the order of `n · ε` in the worst case, as for numpy).

use num_traits::Zero;
use rayon::prelude::*;

use super::map::check_len;
use super::{per_chunk, Numeric};
use crate::chunk::{self, ParOptions};
use crate::error::{Error, Result};

#[derive(Clone, Copy, Debug)]
struct ChunkScan<W> {
    total: W,
    lowest: W,
    highest: W,
}

fn chunk_scan<T: Numeric>(s: &[T]) -> ChunkScan<T::Total> {
    if T::IS_FLOAT {
        let total = T::sum_serial(s);
        return ChunkScan {
            total,
            lowest: total,
            highest: total,
        };
    }
    let mut acc = T::Total::zero();
    let (mut lo, mut hi) = (acc, acc);
    for &x in s {
        acc = acc + x.widen();
        lo = if acc < lo { acc } else { lo };
        hi = if acc > hi { acc } else { hi };
    }
    ChunkScan {
        total: acc,
        lowest: lo,
        highest: hi,
    }
}

/// Offsets of every chunk (as the element type), or `Overflow` if a prefix sum would not fit.
fn offsets<T: Numeric>(scans: &[ChunkScan<T::Total>]) -> Result<Vec<T>> {
    let overflow = || Error::Overflow { op: "cumsum" };
    let mut out = Vec::with_capacity(scans.len());
    let mut off = T::Total::zero();
    for s in scans {
        out.push(T::narrow(off).ok_or_else(overflow)?);
        if !T::IS_FLOAT {
            T::narrow(off + s.lowest).ok_or_else(overflow)?;
            T::narrow(off + s.highest).ok_or_else(overflow)?;
        }
        off = off + s.total;
    }
    Ok(out)
}

#[inline]
fn write_scan<T: Numeric>(src: &[T], dst: &mut [T], offset: T) {
    let mut acc = offset;
    for (o, &x) in dst.iter_mut().zip(src) {
        acc = acc + x;
        *o = acc;
    }
}

/// Replaces `data[i]` with `data[0] + … + data[i]` (numpy's `cumsum`).
///
/// ```
/// let mut v = vec![1u32; 10_000];
/// outcore::kernels::cumsum_in_place(&mut v).unwrap();
/// assert_eq!(v[9_999], 10_000);
/// ```
///
/// # Errors
/// [`Error::Overflow`] if an integer prefix sum does not fit the element type; `data` is
/// then unchanged.
pub fn cumsum_in_place<T: Numeric>(data: &mut [T]) -> Result<()> {
    cumsum_in_place_with(data, &ParOptions::new())
}

/// [`cumsum_in_place`] with options.
///
/// # Errors
/// [`Error::Overflow`] as [`cumsum_in_place`] (`data` unchanged);
/// [`Error::ThreadPool`] if the options' thread pool cannot be started.
pub fn cumsum_in_place_with<T: Numeric>(data: &mut [T], opts: &ParOptions) -> Result<()> {
    let scans = per_chunk(data, opts, |_, c| chunk_scan(c))?;
    let offs = offsets::<T>(&scans)?;
    opts.install(|| {
        chunk::par_chunks_mut(data, opts)
            .zip(offs)
            .for_each(|((_, c), off)| {
                let mut acc = off;
                for x in c.iter_mut() {
                    acc = acc + *x;
                    *x = acc;
                }
            })
    })
}

/// Writes the inclusive prefix sums of `src` to `dst` (numpy's `cumsum`).
///
/// ```
/// let src = [1.0f64, 2.0, 3.0];
/// let mut dst = [0.0; 3];
/// outcore::kernels::cumsum_into(&src, &mut dst).unwrap();
/// assert_eq!(dst, [1.0, 3.0, 6.0]);
/// ```
///
/// # Errors
/// [`Error::LengthMismatch`] if the lengths differ, [`Error::Overflow`] if an integer
/// prefix sum does not fit; in both cases nothing is written.
pub fn cumsum_into<T: Numeric>(src: &[T], dst: &mut [T]) -> Result<()> {
    cumsum_into_with(src, dst, &ParOptions::new())
}

/// [`cumsum_into`] with options.
///
/// # Errors
/// As [`cumsum_into`], and [`Error::ThreadPool`] if the options' thread pool cannot be
/// started.
pub fn cumsum_into_with<T: Numeric>(src: &[T], dst: &mut [T], opts: &ParOptions) -> Result<()> {
    check_len("cumsum_into: destination vs source", src.len(), dst.len())?;
    // Both passes use the chunks of the source, so float results depend only on the
    // source and the chunk size, not on where the destination was allocated; the writes
    // then may share a page with the neighbouring chunk at each seam.
    let plan = opts.plan(src);
    let scans = per_chunk(src, opts, |_, c| chunk_scan(c))?;
    let offs = offsets::<T>(&scans)?;
    opts.install(|| {
        chunk::split_mut(dst, &plan)
            .into_par_iter()
            .zip(offs)
            .for_each(|((start, c), off)| write_scan(&src[start..start + c.len()], c, off))
    })
}
