//! Element-wise kernels: map in place, map into another slice (of another type), zip two
//! slices into a third.
//!
//! Chunks follow the page boundaries of the slice being *written*: that is where two threads
//! on one page would contend (dirty bits, write-back); inputs are read with the same index
//! ranges.

use super::defaults;
use super::sink::NpySink;
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

/// Maps `src` into a new `.npy` file of element type `U` and shape `shape` (C order), in
/// parallel, and returns the finished file opened read-only. The file is written under a
/// temporary name in the same directory and renamed to `path` only once complete and
/// synced; on any error `path` is untouched and the temporary file is removed. Each chunk is
/// mapped into a buffer and written with a positioned write (measured faster than writing
/// through a new mapping; see the `sink` module's notes).
///
/// ```
/// use outcore::{kernels, MappedArray};
/// # let dir = tempfile::tempdir().unwrap();
/// let src: Vec<i32> = (0..6).collect();
/// let out = kernels::map_to_file(&src, &[2, 3], dir.path().join("half.npy"), |x| x as f32 / 2.0)?;
/// assert_eq!(out.shape(), &[2, 3]);
/// assert_eq!(&out[..], &[0.0, 0.5, 1.0, 1.5, 2.0, 2.5]);
/// # Ok::<(), outcore::Error>(())
/// ```
///
/// # Errors
/// [`Error::LengthMismatch`] if the shape does not hold `src.len()` elements;
/// [`Error::DiskFull`] if the file's blocks cannot be allocated; [`Error::NotFound`] /
/// [`Error::PermissionDenied`] for the directory; [`Error::Io`] if a write, `fsync` or the
/// rename fails.
pub fn map_to_file<T: Copy + Sync, U: crate::Element>(
    src: &[T],
    shape: &[usize],
    path: impl AsRef<std::path::Path>,
    f: impl Fn(T) -> U + Sync + Send,
) -> Result<crate::MappedArray<U>> {
    map_to_file_with(src, shape, path, &ParOptions::new(), f)
}

/// [`map_to_file`] with options.
///
/// # Errors
/// As [`map_to_file`]; [`Error::ThreadPool`] if the options' thread pool cannot be
/// started.
pub fn map_to_file_with<T: Copy + Sync, U: crate::Element>(
    src: &[T],
    shape: &[usize],
    path: impl AsRef<std::path::Path>,
    opts: &ParOptions,
    f: impl Fn(T) -> U + Sync + Send,
) -> Result<crate::MappedArray<U>> {
    let path = path.as_ref();
    let n = shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
    check_len(
        "map_to_file: shape vs source",
        src.len(),
        n.unwrap_or(usize::MAX),
    )?;
    let sink = NpySink::create::<U>(path, shape)?;
    opts.install(|| {
        chunk::par_chunks(src, opts)
            .map_init(Vec::new, |buf: &mut Vec<U>, (start, c)| {
                buf.clear();
                buf.extend(c.iter().map(|&x| f(x)));
                sink.write_at(start, buf)
            })
            .collect::<Result<()>>()
    })??;
    sink.persist()?;
    crate::MappedArray::open(path)
}
