//! Streaming a mapped file through slice kernels, with the hints only a mapping can use.
//!
//! The kernels work on slices and know nothing of files. For a file larger than memory:
//!
//! - [`fold_chunks`] runs a per-chunk fold over a [`MappedArray`] in parallel (like
//!   [`kernels::fold_chunks`](crate::kernels::fold_chunks)) and can
//!   [release](crate::MappedArray::release) each chunk as soon as it is folded, so that the
//!   pass does not push everything else out of memory and a memory-capped process (whose
//!   page cache counts against its cap) stays far below its cap. With a fold that calls a
//!   kernel on the chunk (`|c| kernels::sum(c)`), the result is bit-identical to the kernel
//!   on the whole mapping: same chunks, same combination order.
//! - [`windows`] / [`windows_mut`] cut the mapping into page-aligned windows (tens of
//!   megabytes) and run any code, for example a parallel kernel, on each window in turn,
//!   releasing each window once done; `windows_mut` is the way to modify a file larger than
//!   memory in place under a cap (released windows are written back first).
//!
//! Both can also advise `Sequential` on the mapping, or `WillNeed` on what comes next, and
//! check that the file has not been truncated before touching more of it (an error instead
//! of `SIGBUS`).
//!
//! Measured on the build machine (see BENCHMARKS.md, "Kernels"): the kernel's default
//! readahead on page faults reads a cold file fastest. `Sequential` advice and `WillNeed`
//! both made cold passes slower, so both are off by default and kept as options for other
//! disks. Windows cost throughput on cold data (the disk idles at each window's barrier),
//! which is why the chunk-wise [`fold_chunks`] exists.
//!
//! ```
//! use outcore::kernels;
//! use outcore::stream::{self, Stream};
//! use outcore::{MappedArray, MappedArrayMut, ParOptions};
//! # let dir = tempfile::tempdir().unwrap();
//! # let path = dir.path().join("big.npy");
//! # let mut a = MappedArrayMut::<f64>::create(&path, &[100_000])?;
//! # a.iter_mut().enumerate().for_each(|(i, x)| *x = i as f64);
//! # a.persist()?;
//! let a = MappedArray::<f64>::open(&path)?;
//! let mut s = Stream::new();
//! s.release_behind(true);
//! let m = stream::fold_chunks(&a, &ParOptions::new(), &s, |c| kernels::moments(c), kernels::Moments::merge)?;
//! assert_eq!(m.unwrap().mean(), 49_999.5);
//!
//! s.window_bytes(1 << 16);
//! let parts = stream::windows(&a, &s, |_, w| Ok(kernels::sum(w)))?;
//! assert_eq!(parts.iter().sum::<f64>(), kernels::sum(&a));
//! # Ok::<(), outcore::Error>(())
//! ```

use std::ops::Range;

use bytemuck::Pod;

use crate::array::{MappedArray, MappedArrayMut};
use crate::chunk::{ChunkPlan, ParOptions};
use crate::error::Result;
use crate::mmap::Advice;

pub use crate::kernels::quantile::file::{median, percentiles, quantiles};
pub use crate::kernels::summary::file::{describe, describe_axis, reduce_fused};

/// Default bytes per window: large enough that per-window work (an `madvise`, a release, a
/// parallel dispatch) is negligible, small enough to bound what a pass keeps resident.
pub const DEFAULT_WINDOW_BYTES: usize = 64 << 20;

/// How far behind a released range the release reaches. A page fault on a mapping that is
/// not in the page cache makes the kernel read *around* the faulting page (half its
/// readahead window before it, half after), so the first touch of a chunk reads the end of
/// the chunk before it back in after that chunk was released. Measured: releasing exactly
/// each 4 MiB chunk let a capped 4 GiB pass fill its whole 1 GiB cap with such pages;
/// reaching 16 MiB back (twice the 8 MiB readahead of the build machine's disk) drops them
/// too. Pages released twice cost nothing; a neighbour's page released while in use is
/// faulted back in with the same contents.
pub const RELEASE_LAG_BYTES: usize = 16 << 20;

/// How [`fold_chunks`] and [`windows`] walk a mapping. Setters chain: `Stream::new().release_behind(true)`.
#[derive(Clone, Debug)]
pub struct Stream {
    window_bytes: usize,
    release_behind: bool,
    will_need: bool,
    sequential: bool,
}

impl Default for Stream {
    fn default() -> Stream {
        Stream {
            window_bytes: DEFAULT_WINDOW_BYTES,
            release_behind: false,
            will_need: false,
            sequential: false,
        }
    }
}

impl Stream {
    /// The defaults: [`DEFAULT_WINDOW_BYTES`], no advice, no release.
    pub fn new() -> Stream {
        Stream::default()
    }

    /// Target bytes per window (rounded to whole pages).
    pub fn window_bytes(&mut self, bytes: usize) -> &mut Self {
        self.window_bytes = bytes;
        self
    }

    /// Release each window's pages (from this process and the page cache) once the kernel
    /// is done with it. Written pages are written back first.
    pub fn release_behind(&mut self, yes: bool) -> &mut Self {
        self.release_behind = yes;
        self
    }

    /// Advise `WillNeed` on the next window before running the kernel on the current one.
    pub fn will_need(&mut self, yes: bool) -> &mut Self {
        self.will_need = yes;
        self
    }

    /// Advise `Sequential` on the whole mapping before starting.
    pub fn sequential(&mut self, yes: bool) -> &mut Self {
        self.sequential = yes;
        self
    }

    /// The target bytes per window.
    pub fn get_window_bytes(&self) -> usize {
        self.window_bytes
    }

    /// Whether passed pages are released.
    pub fn get_release_behind(&self) -> bool {
        self.release_behind
    }

    fn plan<T>(&self, data: &[T]) -> ChunkPlan {
        ChunkPlan::for_slice(data, self.window_bytes)
    }
}

/// Folds every chunk of `a` with `fold` in parallel and combines the results in chunk order
/// with `combine` (as [`kernels::fold_chunks`](crate::kernels::fold_chunks)); `None` for an empty
/// array. With [`Stream::release_behind`], each chunk's pages are released once it is
/// folded; with [`Stream::will_need`], the next chunk is advised `WillNeed` first. The
/// window size is not used: the chunks are those of `opts`.
///
/// # Errors
/// [`Error::Truncated`](crate::Error::Truncated) if the file shrank;
/// [`Error::Io`](crate::Error::Io) if an `madvise` or release fails;
/// [`Error::ThreadPool`](crate::Error::ThreadPool) if the options' thread pool
/// cannot be started.
pub fn fold_chunks<T, A>(
    a: &MappedArray<T>,
    opts: &ParOptions,
    s: &Stream,
    fold: impl Fn(&[T]) -> A + Sync + Send,
    combine: impl Fn(A, A) -> A,
) -> Result<Option<A>>
where
    T: Pod + Sync,
    A: Send,
{
    if s.sequential {
        a.advise(Advice::Sequential)?;
    }
    let lag = RELEASE_LAG_BYTES / std::mem::size_of::<T>().max(1);
    let parts = crate::kernels::per_chunk(a.as_slice(), opts, |start, c| {
        let end = start + c.len();
        if s.will_need {
            a.advise_range(end..end + c.len(), Advice::WillNeed)?;
        }
        a.check_size()?;
        let r = fold(c);
        if s.release_behind {
            a.release(start.saturating_sub(lag)..end)?;
        }
        Ok(r)
    })?;
    let parts = parts.into_iter().collect::<Result<Vec<A>>>()?;
    Ok(crate::kernels::combine_tree(parts, &combine))
}

/// Runs `f(start, window)` on consecutive page-aligned windows of `a`, in order, and returns
/// the results in order. See the [module docs](self).
///
/// # Errors
/// The first error of `f`; [`Error::Truncated`](crate::Error::Truncated) if the file
/// shrank; [`Error::Io`](crate::Error::Io) if an `madvise` or release fails.
pub fn windows<T: Pod, R>(
    a: &MappedArray<T>,
    s: &Stream,
    mut f: impl FnMut(usize, &[T]) -> Result<R>,
) -> Result<Vec<R>> {
    let mut a = a;
    each_window(&mut a, |a| a, s, |a, r| f(r.start, &a[r]))
}

/// [`windows`] for a writable mapping: `f(start, window)` may modify the window. With
/// `release_behind`, each window is written back and dropped once done.
///
/// # Errors
/// As [`windows`].
pub fn windows_mut<T: Pod, R>(
    a: &mut MappedArrayMut<T>,
    s: &Stream,
    mut f: impl FnMut(usize, &mut [T]) -> Result<R>,
) -> Result<Vec<R>> {
    each_window(a, MappedArrayMut::as_array, s, |a, r| f(r.start, &mut a[r]))
}

/// The loop of [`windows`] and [`windows_mut`]: advice, the size check before each window,
/// `visit(a, range)` on it, and the release behind it. `array` gives the read-only side of
/// `a`, borrowed only between visits.
fn each_window<A, T: Pod, R>(
    a: &mut A,
    array: for<'b> fn(&'b A) -> &'b MappedArray<T>,
    s: &Stream,
    mut visit: impl FnMut(&mut A, Range<usize>) -> Result<R>,
) -> Result<Vec<R>> {
    if s.sequential {
        array(a).advise(Advice::Sequential)?;
    }
    let plan = s.plan(array(a).as_slice());
    let lag = RELEASE_LAG_BYTES / std::mem::size_of::<T>().max(1);
    let mut out = Vec::with_capacity(plan.len());
    for i in 0..plan.len() {
        let r = plan.range(i);
        if s.will_need && i + 1 < plan.len() {
            array(a).advise_range(plan.range(i + 1), Advice::WillNeed)?;
        }
        array(a).check_size()?;
        out.push(visit(a, r.clone())?);
        if s.release_behind {
            array(a).release(r.start.saturating_sub(lag)..r.end)?;
        }
    }
    Ok(out)
}
