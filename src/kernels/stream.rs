//! Streaming a mapped file through slice kernels, window by window, with the hints only a
//! mapping can use.
//!
//! The kernels work on slices and know nothing of files. For a file larger than memory,
//! [`windows`] / [`windows_mut`] cut the mapping into page-aligned windows (tens of
//! megabytes), run a kernel on each window (the kernel itself runs in parallel over the
//! window's chunks), and around it:
//!
//! - optionally advise `Sequential` on the whole mapping;
//! - optionally advise `WillNeed` on the next window before running on this one;
//! - optionally [release](crate::MappedArray::release) each window once done, so that the
//!   pass does not push everything else out of memory, and so that a memory-capped process
//!   (whose page cache counts against its cap) stays within the cap;
//! - check that the file has not been truncated before touching each window (an error
//!   instead of `SIGBUS`).
//!
//! Measured on the build machine (see BENCHMARKS.md, "Kernels"): the kernel's default
//! readahead on page faults reads a cold file fastest; `Sequential` advice and a `WillNeed`
//! on the next window both made cold passes slower (by a third or more), so both are off by
//! default and kept as options for other disks.
//!
//! ```
//! use outcore::kernels::{self, stream::{self, Stream}};
//! use outcore::{MappedArray, MappedArrayMut};
//! # let dir = tempfile::tempdir().unwrap();
//! # let path = dir.path().join("big.npy");
//! # let mut a = MappedArrayMut::<f64>::create(&path, &[100_000])?;
//! # a.iter_mut().enumerate().for_each(|(i, x)| *x = i as f64);
//! # a.persist()?;
//! let a = MappedArray::<f64>::open(&path)?;
//! let mut s = Stream::new();
//! s.window_bytes(1 << 16).release_behind(true);
//! let parts = stream::windows(&a, &s, |_, w| Ok(kernels::moments(w)))?;
//! let m = parts.into_iter().fold(kernels::Moments::EMPTY, kernels::Moments::merge);
//! assert_eq!(m.mean(), 49_999.5);
//! # Ok::<(), outcore::Error>(())
//! ```

use bytemuck::Pod;

use crate::array::{MappedArray, MappedArrayMut};
use crate::chunk::ChunkPlan;
use crate::error::Result;
use crate::mmap::Advice;

/// Default bytes per window: large enough that per-window work (an `madvise`, a release, a
/// parallel dispatch) is negligible, small enough to bound what a pass keeps resident.
pub const DEFAULT_WINDOW_BYTES: usize = 64 << 20;

/// How [`windows`] walks a mapping. Setters chain: `Stream::new().release_behind(true)`.
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

    fn plan<T>(&self, data: &[T]) -> ChunkPlan {
        ChunkPlan::for_slice(data, self.window_bytes)
    }
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
    if s.sequential {
        a.advise(Advice::Sequential)?;
    }
    let plan = s.plan(a.as_slice());
    let mut out = Vec::with_capacity(plan.len());
    for i in 0..plan.len() {
        let r = plan.range(i);
        if s.will_need && i + 1 < plan.len() {
            a.advise_range(plan.range(i + 1), Advice::WillNeed)?;
        }
        a.check_size()?;
        out.push(f(r.start, &a[r.clone()])?);
        if s.release_behind {
            a.release(r)?;
        }
    }
    Ok(out)
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
    if s.sequential {
        a.advise(Advice::Sequential)?;
    }
    let plan = s.plan(a.as_slice());
    let mut out = Vec::with_capacity(plan.len());
    for i in 0..plan.len() {
        let r = plan.range(i);
        if s.will_need && i + 1 < plan.len() {
            a.as_array()
                .advise_range(plan.range(i + 1), Advice::WillNeed)?;
        }
        a.check_size()?;
        out.push(f(r.start, &mut a[r.clone()])?);
        if s.release_behind {
            a.release(r)?;
        }
    }
    Ok(out)
}
