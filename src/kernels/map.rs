//! Element-wise kernels: map in place, map into another slice (of another type), zip two
//! slices into a third.
//!
//! Chunks follow the page boundaries of the slice being *written*: that is where two threads
//! on one page would contend (dirty bits, write-back); inputs are read with the same index
//! ranges.

use super::defaults;
use crate::chunk::{self, ParOptions};
use crate::error::{Error, Result};
use rayon::prelude::*;

/// Replaces every element `x` with `f(x)`, in parallel.
///
/// ```
/// let mut v = vec![1.5f64; 10_000];
/// outcore::kernels::map_in_place(&mut v, |x| x * 2.0);
/// assert!(v.iter().all(|&x| x == 3.0));
/// ```
pub fn map_in_place<T: Copy + Send>(data: &mut [T], f: impl Fn(T) -> T + Sync + Send) {
    defaults(map_in_place_with(data, &ParOptions::new(), f))
}

/// [`map_in_place`] with options.
///
/// # Errors
/// [`Error::ThreadPool`] if the options' thread pool cannot be started.
pub fn map_in_place_with<T: Copy + Send>(
    data: &mut [T],
    opts: &ParOptions,
    f: impl Fn(T) -> T + Sync + Send,
) -> Result<()> {
    opts.install(|| {
        chunk::par_chunks_mut(data, opts).for_each(|(_, c)| {
            for x in c.iter_mut() {
                *x = f(*x);
            }
        })
    })
}

/// Writes `f(src[i])` to `dst[i]` for every `i`; the types may differ.
///
/// ```
/// let src: Vec<u16> = (0..1000).collect();
/// let mut dst = vec![0f32; 1000];
/// outcore::kernels::map_into(&src, &mut dst, |x| x as f32 / 2.0).unwrap();
/// assert_eq!(dst[999], 499.5);
/// ```
///
/// # Errors
/// [`Error::LengthMismatch`] if the slices differ in length (nothing is written).
pub fn map_into<T: Copy + Sync, U: Send>(
    src: &[T],
    dst: &mut [U],
    f: impl Fn(T) -> U + Sync + Send,
) -> Result<()> {
    map_into_with(src, dst, &ParOptions::new(), f)
}

/// [`map_into`] with options.
///
/// # Errors
/// [`Error::LengthMismatch`] if the slices differ in length (nothing is written);
/// [`Error::ThreadPool`] if the options' thread pool cannot be started.
pub fn map_into_with<T: Copy + Sync, U: Send>(
    src: &[T],
    dst: &mut [U],
    opts: &ParOptions,
    f: impl Fn(T) -> U + Sync + Send,
) -> Result<()> {
    check_len("map_into: destination vs source", src.len(), dst.len())?;
    opts.install(|| {
        chunk::par_chunks_mut(dst, opts).for_each(|(start, out)| {
            let input = &src[start..start + out.len()];
            for (o, &x) in out.iter_mut().zip(input) {
                *o = f(x);
            }
        })
    })
}

/// Writes `f(a[i], b[i])` to `out[i]` for every `i`.
///
/// ```
/// let a = vec![1.0f64; 5000];
/// let b: Vec<i32> = (0..5000).collect();
/// let mut out = vec![0.0f64; 5000];
/// outcore::kernels::zip_into(&a, &b, &mut out, |x, y| x + y as f64).unwrap();
/// assert_eq!(out[4999], 5000.0);
/// ```
///
/// # Errors
/// [`Error::LengthMismatch`] if the three slices are not all the same length (nothing is
/// written).
pub fn zip_into<A: Copy + Sync, B: Copy + Sync, C: Send>(
    a: &[A],
    b: &[B],
    out: &mut [C],
    f: impl Fn(A, B) -> C + Sync + Send,
) -> Result<()> {
    zip_into_with(a, b, out, &ParOptions::new(), f)
}

/// [`zip_into`] with options.
///
/// # Errors
/// [`Error::LengthMismatch`] if the three slices are not all the same length (nothing is
/// written); [`Error::ThreadPool`] if the options' thread pool cannot be started.
pub fn zip_into_with<A: Copy + Sync, B: Copy + Sync, C: Send>(
    a: &[A],
    b: &[B],
    out: &mut [C],
    opts: &ParOptions,
    f: impl Fn(A, B) -> C + Sync + Send,
) -> Result<()> {
    check_len("zip_into: second input vs first", a.len(), b.len())?;
    check_len("zip_into: output vs inputs", a.len(), out.len())?;
    opts.install(|| {
        chunk::par_chunks_mut(out, opts).for_each(|(start, o)| {
            let end = start + o.len();
            for ((o, &x), &y) in o.iter_mut().zip(&a[start..end]).zip(&b[start..end]) {
                *o = f(x, y);
            }
        })
    })
}

pub(crate) fn check_len(what: &'static str, expected: usize, got: usize) -> Result<()> {
    if expected == got {
        Ok(())
    } else {
        Err(Error::LengthMismatch {
            what,
            expected,
            got,
        })
    }
}
