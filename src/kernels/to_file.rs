//! Kernels whose output is a new `.npy` file: [`map_to_file`] and [`filter_to_file`] (and
//! their `_with` twins), and the sink they write through: per-thread buffers written with
//! positioned writes, in parallel, under a temporary name that is renamed to the
//! destination once complete.
//!
//! Why not through a mapping ([`MappedArrayMut::create`](crate::MappedArrayMut::create))?
//! Measured on a 4 GiB output (BENCHMARKS.md, "Kernels"): filling a chunk-sized buffer and
//! `pwrite`-ing it was 15–25 % faster than writing through a fresh shared mapping, which
//! takes a page fault for every 4 KiB page and then an `msync` of all of them. The result
//! is the same file, with the same guarantees: blocks are allocated up front (a full disk is
//! an error before any work), the data is synced before the rename, and on any error the
//! temporary file is removed and the destination left untouched.

use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use bytemuck::Pod;
use rayon::prelude::*;

use super::filter::{copy_block_wise, plan_filter};
use super::map::check_len;
use crate::chunk::{self, ParOptions};
use crate::element::Element;
use crate::error::{Error, Result};
use crate::npy::Header;
use crate::temp::TempFile;

/// A `.npy` file being written; see the module docs.
pub(crate) struct NpySink {
    tmp: TempFile,
    dest: PathBuf,
    data_offset: u64,
    elem_size: usize,
    len: usize,
}

impl NpySink {
    /// A zero-length temporary file next to `path`, sized for `shape`, with its header.
    pub(crate) fn create<U: Element>(path: &Path, shape: &[usize]) -> Result<NpySink> {
        let header = Header::new(U::DTYPE, shape);
        let overflow = || Error::ShapeOverflow {
            path: path.into(),
            shape: shape.to_vec(),
        };
        let data_len = header.data_len().ok_or_else(overflow)?;
        let head = header.to_bytes();
        let total = (head.len() as u64)
            .checked_add(data_len as u64)
            .ok_or_else(overflow)?;
        let tmp = TempFile::for_dest(path)?;
        tmp.allocate(total)?;
        tmp.file()
            .write_all_at(&head, 0)
            .map_err(|e| Error::io(tmp.path(), "write", e))?;
        Ok(NpySink {
            data_offset: head.len() as u64,
            dest: path.to_path_buf(),
            elem_size: std::mem::size_of::<U>(),
            len: header.num_elements().unwrap_or(0),
            tmp,
        })
    }

    /// Writes `data` as elements `start..start + data.len()`. Callable from many threads.
    pub(crate) fn write_at<U: Pod>(&self, start: usize, data: &[U]) -> Result<()> {
        debug_assert_eq!(std::mem::size_of::<U>(), self.elem_size);
        debug_assert!(start + data.len() <= self.len);
        let offset = self.data_offset + (start * self.elem_size) as u64;
        self.tmp
            .file()
            .write_all_at(bytemuck::cast_slice(data), offset)
            .map_err(|e| Error::io(self.tmp.path(), "write", e))
    }

    /// Syncs the file and renames it to its destination.
    pub(crate) fn persist(self) -> Result<()> {
        self.tmp.persist(&self.dest).map(drop)
    }
}

/// Maps `src` into a new `.npy` file of element type `U` and shape `shape` (C order), in
/// parallel, and returns the finished file opened read-only. The file is written under a
/// temporary name in the same directory and renamed to `path` only once complete and
/// synced; on any error `path` is untouched and the temporary file is removed. Each chunk is
/// mapped into a buffer and written with a positioned write (measured faster than writing
/// through a new mapping; see the module docs).
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

/// Writes the elements of `data` that satisfy `pred`, in order, to a new 1-D `.npy` file
/// and returns how many there are. The file is written under a temporary name in the same
/// directory and renamed to `path` only once complete and synced; on any error `path` is
/// untouched and the temporary file is removed.
///
/// ```
/// use outcore::{kernels, MappedArray};
/// # let dir = tempfile::tempdir().unwrap();
/// let path = dir.path().join("positive.npy");
/// let v = [-1.0f64, 2.0, -3.0, 4.0];
/// assert_eq!(kernels::filter_to_file(&v, &path, |&x| x > 0.0)?, 2);
/// assert_eq!(&MappedArray::<f64>::open(&path)?[..], &[2.0, 4.0]);
/// # Ok::<(), outcore::Error>(())
/// ```
///
/// # Errors
/// [`Error::DiskFull`] if the file's blocks cannot be allocated; [`Error::NotFound`] /
/// [`Error::PermissionDenied`] for the directory; [`Error::Io`] if a write, `fsync` or the
/// rename fails.
pub fn filter_to_file<T: crate::Element>(
    data: &[T],
    path: impl AsRef<std::path::Path>,
    pred: impl Fn(&T) -> bool + Sync + Send,
) -> Result<usize> {
    filter_to_file_with(data, path, &ParOptions::new(), pred)
}

/// [`filter_to_file`] with options.
///
/// # Errors
/// As [`filter_to_file`].
pub fn filter_to_file_with<T: crate::Element>(
    data: &[T],
    path: impl AsRef<std::path::Path>,
    opts: &ParOptions,
    pred: impl Fn(&T) -> bool + Sync + Send,
) -> Result<usize> {
    let (counts, total) = plan_filter(data, opts, &pred)?;
    let sink = NpySink::create::<T>(path.as_ref(), &[total])?;
    // Output offsets of the chunks: a prefix sum of their counts.
    let starts: Vec<usize> = counts
        .iter()
        .scan(0, |acc, &(_, n)| {
            let s = *acc;
            *acc += n;
            Some(s)
        })
        .collect();
    let plan = opts.plan(data);
    opts.install(|| {
        starts
            .into_par_iter()
            .zip(counts)
            .enumerate()
            .map_init(Vec::new, |buf: &mut Vec<T>, (i, (start, (_, n)))| {
                buf.clear();
                buf.resize(n, T::default());
                copy_block_wise(&data[plan.range(i)], buf, &pred);
                sink.write_at(start, buf)
            })
            .collect::<Result<()>>()
    })??;
    sink.persist()?;
    Ok(total)
}
