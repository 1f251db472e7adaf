//! `sort_file`: sorting a file into another file under a memory budget; the streamed
//! forms ([`Sorter`], [`sort_file_with`]) whose input is pushed by a producer or whose
//! sorted output goes to a consumer instead of a file (see [`Sorter`] for the I/O they
//! save); and [`sort_array`], which sorts a mapped array where it lies.
//!
//! # How it works
//! * **Fits the budget** (the data plus the sort's scratch space, see
//!   [`par_sort_scratch_bytes`](super::par_sort_scratch_bytes)): the data is read into
//!   memory, sorted with [`par_sort_with`](super::par_sort_with) and written once.
//! * **Larger**: an external merge sort.
//!   1. *Run formation.* The input is read in pieces with large sequential reads, in a
//!      three-stage pipeline: while piece `i` is sorted (in parallel), piece `i + 1` is read
//!      and the sorted piece `i - 1` is written out as a run, so the disk reads, the disk
//!      writes and the cores all work at once. Three pieces and the sort's scratch for one
//!      share the budget (primitive types are sorted in place: pieces of about 30% of it).
//!      Measured on 4 GiB under a 1 GiB cap, this made run formation 1.4–2× faster than a
//!      two-stage pipeline (read next ‖ sort then write), which left the disk idle during
//!      each sort.
//!   2. *Merge.* Runs are merged with a loser tree ([`merge`]). The final merge is split
//!      by key range into independent parts (see the merge module's notes) that several
//!      workers merge at once, each writing its own range of the output. Its
//!      I/O bypasses the page cache: a few I/O threads read every run with `O_DIRECT` a
//!      block ahead of the merge, and write each part's output with `O_DIRECT` from
//!      aligned blocks while the part fills the next (`io_pool`). Merge levels, and file
//!      systems that refuse `O_DIRECT`, read through the page cache instead, each run's next
//!      buffer prefetched (`POSIX_FADV_WILLNEED`) while the current one is merged. There
//!      are two workers per thread so that one merges while the other waits for the disk.
//!   3. *More runs than one merge can take* (the budget divided by twice the smallest read
//!      buffer, 1 MiB, i.e. what a single worker can read; or the share of the open-file
//!      limit `RLIMIT_NOFILE` left after half of it is kept for the rest of the program):
//!      only then is there a merge level, and it merges only the fewest, smallest runs that
//!      bring the count down to the fan-in (one group of `r - k + 1` runs when `r` runs
//!      exceed the fan-in `k` by less than `k`), level by level while needed. Below that,
//!      the final merge runs fewer workers (down to one) rather than give each run a buffer
//!      below the minimum: another level would be another pass over the data. Two passes
//!      suffice up to about `run size × budget / (2 × 1 MiB)` bytes.
//!
//! # Memory
//! The budget covers the data buffers: the run-formation pieces and the sort's scratch
//! space; the merge's read buffers and the block read ahead of each (or the prefetched
//! page cache behind it), and the write blocks. On top of it come the kept samples (at most
//! 1/32 of the budget, capped at 4 MiB) and a few MiB of page cache per worker in flight.
//! All I/O goes through `pread`/`pwrite` rather than a mapping, so memory use is explicit:
//! direct I/O leaves no page cache, every read through the cache is dropped from it once
//! consumed (`POSIX_FADV_DONTNEED`), and every write through it is flushed with
//! `sync_file_range` and dropped one chunk behind, so a memory cgroup that charges page
//! cache to the process never sees it grow with the file. (Measured under a 1 GiB cgroup
//! cap: a 4 GiB sort with a 768 MiB budget peaked at 806 MiB, page cache included.)
//!
//! # Files
//! The output is written under a temporary name in its directory (outcore's usual
//! `.NAME.outcore-tmp-PID-N`), synced and renamed over `output` only when complete: a
//! failed sort leaves a pre-existing output untouched. Runs live in a directory
//! `.outcore-sort-PID-N` inside the temp directory. Both are removed on error and on panic
//! (by drop guards), and both are held under an exclusive advisory lock while the sort runs,
//! so what a killed sort left behind is recognised (its lock is free) and removed by the next
//! sort that uses the same directories, or explicitly with [`remove_stale_sort_files`].

mod array;
mod streamed;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytemuck::Pod;

use super::fileio::{self, Hint, StreamWriter};
use super::io_pool::{DirectWriter, IoPool, IO_THREADS};
use super::key::SortKey;
use super::merge::{self, BufferPool, Run, Sampler};
use crate::chunk::ParOptions;
use crate::error::{Error, Result};
use crate::npy::{self, Header};
use crate::sys::{lock_file, Lock};
use crate::temp::{self, TempFile};
use crate::with_dtype;

pub use array::sort_array;
pub use streamed::{sort_file_with, sort_raw_file_with, Sorter};

/// Bytes per read or write system call: large enough for full disk speed, small enough that
/// the page cache they pass through stays a small constant.
const IO_CHUNK: usize = 4 << 20;

/// The smallest read buffer a merge input gets before the merge is split into levels.
const MIN_READ_BUFFER: usize = 1 << 20;

/// Merge workers per thread: one merges while the other waits for the disk.
const WORKERS_PER_THREAD: usize = 2;

/// Final-merge parts per worker, so that a worker that finishes early takes another part.
const PARTS_PER_WORKER: usize = 4;

/// A phase of [`sort_file`], reported to the progress callback.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Phase {
    /// The whole input fits the budget: read, sort and write it in one pass (for
    /// [`sort_array`], sort it in place in the mapping).
    InMemory,
    /// Reading budget-sized pieces, sorting them and writing them as runs.
    RunFormation,
    /// An intermediate merge level (1, 2, ...), needed when there are more runs than one
    /// merge can take.
    Merge {
        /// Level, starting at 1.
        level: usize,
    },
    /// The final merge into the output file.
    FinalMerge,
}

impl std::fmt::Display for Phase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Phase::InMemory => f.write_str("in-memory sort"),
            Phase::RunFormation => f.write_str("run formation"),
            Phase::Merge { level } => write!(f, "merge level {level}"),
            Phase::FinalMerge => f.write_str("final merge"),
        }
    }
}

/// The progress callback: `(phase, bytes done, bytes total)` of the phase. It may be called
/// from several threads at once.
pub type ProgressFn = dyn Fn(Phase, u64, u64) + Send + Sync;

/// Options of [`sort_file`]: memory budget, temp directory, threads, progress.
///
/// ```
/// use outcore::sort::SortOptions;
/// let mut opts = SortOptions::new();
/// opts.memory(256 << 20).threads(2).tmp_dir("/tmp");
/// assert_eq!(opts.get_memory(), 256 << 20);
/// ```
#[derive(Clone, Default)]
pub struct SortOptions {
    memory: Option<usize>,
    tmp_dir: Option<PathBuf>,
    threads: usize,
    max_fan_in: Option<usize>,
    progress: Option<Arc<ProgressFn>>,
    cancel: Option<Arc<AtomicBool>>,
}

impl std::fmt::Debug for SortOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SortOptions")
            .field("memory", &self.get_memory())
            .field("tmp_dir", &self.tmp_dir)
            .field("threads", &self.threads)
            .field("max_fan_in", &self.max_fan_in)
            .field("progress", &self.progress.as_ref().map(|_| "callback"))
            .field("cancel", &self.cancel)
            .finish()
    }
}

impl SortOptions {
    /// Defaults: a budget that fits the machine ([`default_budget`](crate::default_budget):
    /// the memory cgroup's limit, `MemAvailable` or `RLIMIT_AS`, whichever is least, less
    /// headroom), runs in the output's directory, rayon's global pool, no
    /// progress callback.
    pub fn new() -> Self {
        SortOptions::default()
    }

    /// The memory budget in bytes for data buffers (see [`sort_file`] for what comes on
    /// top). A budget larger than the memory this process can use
    /// ([`memory_limit`](crate::memory_limit)) is refused when the sort starts, with
    /// [`Error::BudgetTooLarge`].
    pub fn memory(&mut self, bytes: usize) -> &mut Self {
        self.memory = Some(bytes);
        self
    }

    /// Where the runs go (default: the output file's directory). It needs about as much free
    /// space as the input, and must be an existing directory (checked, with an error naming
    /// it, before anything is written).
    pub fn tmp_dir(&mut self, dir: impl Into<PathBuf>) -> &mut Self {
        self.tmp_dir = Some(dir.into());
        self
    }

    /// Threads for sorting and merging (`0`, the default, means rayon's global pool size).
    /// More than the machine's cores are capped at the core count, and the merge runs no
    /// more workers than the budget can give buffers of a useful size.
    pub fn threads(&mut self, n: usize) -> &mut Self {
        self.threads = n;
        self
    }

    /// Caps the number of runs one merge reads (at least 2). The default is set by the
    /// budget and the open-file limit; a lower cap forces more merge levels.
    pub fn max_fan_in(&mut self, k: usize) -> &mut Self {
        self.max_fan_in = Some(k.max(2));
        self
    }

    /// Calls `f(phase, bytes done, bytes total)` as the sort advances.
    pub fn progress(&mut self, f: impl Fn(Phase, u64, u64) + Send + Sync + 'static) -> &mut Self {
        self.progress = Some(Arc::new(f));
        self
    }

    /// Stops the sort with [`Error::Cancelled`] soon after `flag` becomes `true` (it is
    /// checked at every progress step, a few MiB of I/O apart), removing its temporary files
    /// and leaving the output untouched. A command-line program sets the flag from its
    /// SIGINT handler.
    ///
    /// ```
    /// use std::sync::{atomic::AtomicBool, Arc};
    /// let stop = Arc::new(AtomicBool::new(false));
    /// let mut opts = outcore::sort::SortOptions::new();
    /// opts.cancel_flag(stop.clone());
    /// // ... later, from another thread or a signal handler:
    /// stop.store(true, std::sync::atomic::Ordering::Relaxed);
    /// ```
    pub fn cancel_flag(&mut self, flag: Arc<AtomicBool>) -> &mut Self {
        self.cancel = Some(flag);
        self
    }

    /// Calls the progress callback and stops the sort if it was cancelled.
    pub(super) fn report(&self, phase: Phase, done: u64, total: u64) -> Result<()> {
        if let Some(cb) = &self.progress {
            cb(phase, done, total);
        }
        match &self.cancel {
            Some(flag) if flag.load(Ordering::Relaxed) => Err(Error::Cancelled),
            _ => Ok(()),
        }
    }

    /// The temp directory set, if any.
    pub(super) fn get_tmp_dir(&self) -> Option<&Path> {
        self.tmp_dir.as_deref()
    }

    /// The budget, checked: not above the process's memory limit (when set explicitly), and
    /// room for at least 8 elements of `T`.
    pub(super) fn checked_budget<T>(&self) -> Result<usize> {
        let elem_size = std::mem::size_of::<T>();
        let budget = self.get_memory();
        if self.memory.is_some() {
            crate::check_budget(budget)?;
        }
        if elem_size == 0 {
            return Err(Error::ZeroSizedElement { op: "sorted" });
        }
        if budget < 8 * elem_size {
            return Err(Error::BudgetTooSmall {
                budget: budget as u64,
                min: 8 * elem_size as u64,
            });
        }
        Ok(budget)
    }

    /// The threads to use, and the matching `ParOptions`.
    pub(super) fn par(&self) -> (usize, ParOptions) {
        let threads = self.get_threads();
        let mut par = ParOptions::new();
        if self.threads > 0 || threads < rayon::current_num_threads() {
            par.threads(threads);
        }
        (threads, par)
    }

    /// The budget in effect: the one set, or the machine's [`default_budget`](crate::default_budget).
    pub fn get_memory(&self) -> usize {
        self.memory.unwrap_or_else(crate::default_budget)
    }

    /// The threads the sort uses: those asked for (or the global pool's), capped at the
    /// machine's cores, since more threads than cores only contend for the same cores (and
    /// each merge worker would get a smaller share of the budget).
    fn get_threads(&self) -> usize {
        let asked = if self.threads == 0 {
            rayon::current_num_threads()
        } else {
            self.threads
        };
        asked.clamp(1, cores())
    }
}

/// The machine's cores (1 if unknown).
fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |c| c.get())
}

/// What [`sort_file`], [`sort_array`], [`sort_file_with`] or [`Sorter::finish_with`] did.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct SortReport {
    /// Elements sorted.
    pub elements: u64,
    /// Bytes of data (excluding any `.npy` header).
    pub bytes: u64,
    /// Whether the external (run + merge) path was taken.
    pub external: bool,
    /// Runs written by run formation (0 for the in-memory path).
    pub runs: usize,
    /// Intermediate merge levels before the final merge.
    pub merge_levels: usize,
    /// Wall time of each phase, in order.
    pub phases: Vec<(Phase, Duration)>,
}

/// Sorts the 1-D `.npy` file `input` into `output` (a `.npy` of the same dtype and shape),
/// in numpy's order (see [`SortKey`]). The dtype comes from the header; `input` and `output`
/// may be the same path.
///
/// Data that fits the budget (with the sort's scratch,
/// [`par_sort_scratch_bytes`](super::par_sort_scratch_bytes)) is sorted in one pass. Larger
/// data goes through an external merge sort: budget-sized runs, sorted in parallel and
/// written with large sequential writes, then a k-way merge (loser tree) split by key range
/// so that every thread merges its own part of the output; more runs than one merge can take
/// (by the budget, or the open-file limit) are merged in levels.
///
/// # Memory
/// The budget covers the data buffers, including the page cache that the sort's own reads
/// and writes pass through (each read is dropped once consumed, each write flushed and
/// dropped one chunk behind), so a process under a memory cgroup stays near its budget. On
/// top: kept key samples (at most 1/32 of the budget, capped at 4 MiB) and a few MiB per
/// thread. On Linux with glibc's allocator, the first external sort makes `malloc` serve
/// blocks of 1 MiB or more from `mmap` for the rest of the process, so that the buffers it
/// frees leave the process instead of staying charged to it (by default glibc keeps them,
/// and a sort under a 384 MiB budget held 513 MiB).
///
/// # Files
/// The output appears atomically: it is written under a temporary name in its directory and
/// renamed when complete. Runs go to a directory `.outcore-sort-PID-N` in
/// [`SortOptions::tmp_dir`]. Temp files are removed on success, error and panic; those of a
/// killed sort are removed by the next sort in the same directories (or
/// [`remove_stale_sort_files`]). About twice the input's size must be free (checked first).
///
/// # Examples
/// ```
/// # fn main() -> outcore::Result<()> {
/// use outcore::sort::{sort_file, SortOptions};
/// use outcore::{MappedArray, MappedArrayMut};
/// let dir = tempfile::tempdir().unwrap();
/// let (inp, out) = (dir.path().join("in.npy"), dir.path().join("out.npy"));
/// let mut a = MappedArrayMut::<u64>::create(&inp, &[10_000])?;
/// for (i, x) in a.iter_mut().enumerate() {
///     *x = (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
/// }
/// a.persist()?;
///
/// // A 16 KiB budget forces the external merge sort.
/// let report = sort_file(&inp, &out, SortOptions::new().memory(16 << 10))?;
/// assert!(report.external);
/// let sorted = MappedArray::<u64>::open(&out)?;
/// assert!(sorted.windows(2).all(|w| w[0] <= w[1]));
/// assert_eq!(sorted.len(), 10_000);
/// # Ok(()) }
/// ```
///
/// # Errors
/// [`Error::NotFound`] for a missing input; the header errors of a malformed `.npy`;
/// [`Error::BadShape`] for an array that is not 1-D; [`Error::DiskFull`] when the output's or
/// the temp directory's file system lacks the space (checked before anything is written);
/// [`Error::PermissionDenied`] for an unwritable output or temp directory;
/// [`Error::BudgetTooSmall`] for a budget too small to hold a few elements,
/// [`Error::BudgetTooLarge`] for one larger than the process's memory limit;
/// [`Error::Cancelled`] when [`SortOptions::cancel_flag`] was raised. On any error the output
/// is untouched and no temp files remain.
///
/// # Panics
/// A panic of the progress callback propagates, after the temp files are removed.
pub fn sort_file(
    input: impl AsRef<Path>,
    output: impl AsRef<Path>,
    opts: &SortOptions,
) -> Result<SortReport> {
    let input = input.as_ref();
    let (file, header) = open_npy_1d(
        input,
        "sort_file sorts 1-D arrays; reshape to 1-D (or sort each row) first",
    )?;
    let offset = header.data_offset as u64;
    with_dtype!(header.dtype, T => sort_typed::<T>(input, file, offset, output.as_ref(), opts))
}

/// Sorts the raw (headerless) file `input`, a sequence of `T`, into `output`. Use
/// [`Record<N, K>`](super::Record) for fixed-size records sorted by a key prefix.
///
/// ```
/// # fn main() -> outcore::Result<()> {
/// use outcore::sort::{sort_raw_file, Record, SortOptions};
/// let dir = tempfile::tempdir().unwrap();
/// let (inp, out) = (dir.path().join("in.dat"), dir.path().join("out.dat"));
/// let recs: Vec<Record<16, 4>> = (0..1000u32)
///     .map(|i| {
///         let mut r = [0u8; 16];
///         r[..4].copy_from_slice(&(i.wrapping_mul(2654435761)).to_be_bytes());
///         Record(r)
///     })
///     .collect();
/// std::fs::write(&inp, bytemuck::cast_slice(&recs)).unwrap();
/// sort_raw_file::<Record<16, 4>>(&inp, &out, SortOptions::new().memory(4096))?;
/// let bytes = std::fs::read(&out).unwrap();
/// let got: &[Record<16, 4>] = bytemuck::cast_slice(&bytes);
/// assert!(got.windows(2).all(|w| w[0].0[..4] <= w[1].0[..4]));
/// # Ok(()) }
/// ```
///
/// # Errors
/// As [`sort_file`], plus [`Error::NotAMultiple`] when the file size is not a whole number
/// of elements.
pub fn sort_raw_file<T: SortKey>(
    input: impl AsRef<Path>,
    output: impl AsRef<Path>,
    opts: &SortOptions,
) -> Result<SortReport> {
    let input = input.as_ref();
    let file = open_input(input)?;
    sort_typed::<T>(input, file, 0, output.as_ref(), opts)
}

/// Opens the input under a shared advisory lock, as every outcore reader does, so that an
/// outcore writer cannot change it during the sort.
fn open_input(path: &Path) -> Result<File> {
    let file = File::open(path).map_err(|e| Error::io(path, "open", e))?;
    lock_file(&file, Lock::Shared, path)?;
    Ok(file)
}

/// The `.npy` file `path`, opened and locked, and its header, which must be of a 1-D array
/// (else [`Error::BadShape`] with `reason`).
fn open_npy_1d(path: &Path, reason: &'static str) -> Result<(File, Header)> {
    let file = open_input(path)?;
    let header = read_header(&file, path)?;
    if header.shape.len() != 1 {
        return Err(Error::BadShape {
            what: path.display().to_string(),
            shape: header.shape,
            reason,
        });
    }
    Ok((file, header))
}

/// The `.npy` header of `file`, checked against the file's size.
fn read_header(file: &File, path: &Path) -> Result<Header> {
    use std::os::unix::fs::FileExt;
    let len = file
        .metadata()
        .map_err(|e| Error::io(path, "stat", e))?
        .len();
    let mut buf = vec![0u8; (npy::MAX_HEADER_LEN + 12).min(len as usize)];
    file.read_exact_at(&mut buf, 0)
        .map_err(|e| Error::io(path, "read", e))?;
    let header = Header::parse(&buf, len, path)?;
    // Header::parse checked that the data length is known and far below u64::MAX.
    let expected = header.data_offset as u64 + header.data_len().unwrap_or(0) as u64;
    if expected != len {
        return Err(Error::SizeMismatch {
            path: path.into(),
            expected,
            actual: len,
        });
    }
    Ok(header)
}

/// Sorts a slice in memory, in parallel (outcore's radix sort).
fn sort_in_memory<T: SortKey>(data: &mut [T], par: &ParOptions) -> Result<()> {
    super::par_sort_with(data, par)
}

/// The memory that sorting `n` elements in memory takes: the data and the sort's scratch
/// ([`par_sort_scratch_bytes`](super::par_sort_scratch_bytes)).
fn in_memory_bytes<T: SortKey>(n: usize, threads: usize) -> usize {
    n.saturating_mul(std::mem::size_of::<T>())
        .saturating_add(super::par_sort_scratch_bytes::<T>(n, threads))
}

/// The largest run length whose buffer, sort scratch and `spare` more buffers fit `budget`
/// (at least 1).
fn run_elems_for<T: SortKey>(budget: usize, threads: usize, spare: usize) -> usize {
    let size = std::mem::size_of::<T>();
    let need =
        |n: usize| in_memory_bytes::<T>(n, threads).saturating_add(n.saturating_mul(spare * size));
    // The need grows with n: binary search for the largest n that fits.
    let (mut lo, mut hi) = (1usize, budget / size.max(1) + 1);
    while lo + 1 < hi {
        let mid = lo + (hi - lo) / 2;
        if need(mid) <= budget {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    lo
}

/// Shared state of one sort: paths, options, progress counters.
pub(super) struct Job<'a> {
    /// The input's path (for messages), or the temp directory's for a pushed input.
    input: &'a Path,
    /// The input file; `None` when the input is pushed ([`Sorter`]).
    file: Option<File>,
    data_offset: u64,
    elements: u64,
    elem_size: usize,
    threads: usize,
    par: ParOptions,
    opts: &'a SortOptions,
    done: AtomicU64,
    phase_start: Instant,
}

impl<'a> Job<'a> {
    /// A job over `elements` of `T`, read from `file` at `data_offset` (`None`: the input
    /// is pushed, and `input` names the temp directory), on the threads of `(threads, par)`
    /// ([`SortOptions::par`]).
    fn new<T: SortKey>(
        input: &'a Path,
        file: Option<File>,
        data_offset: u64,
        elements: u64,
        (threads, par): (usize, ParOptions),
        opts: &'a SortOptions,
    ) -> Job<'a> {
        // Freed buffers must not stay charged to the process (see the function).
        crate::sys::bound_freed_memory();
        Job {
            input,
            file,
            data_offset,
            elements,
            elem_size: std::mem::size_of::<T>(),
            threads,
            par,
            opts,
            done: AtomicU64::new(0),
            phase_start: Instant::now(),
        }
    }

    /// A job over the `T`s that fill `file` from `data_offset` to its end.
    ///
    /// # Errors
    /// [`Error::NotAMultiple`] when they are not a whole number of elements; the error of
    /// reading the file's size.
    fn for_file<T: SortKey>(
        input: &'a Path,
        file: File,
        data_offset: u64,
        opts: &'a SortOptions,
    ) -> Result<Job<'a>> {
        let elem_size = std::mem::size_of::<T>();
        let file_len = file
            .metadata()
            .map_err(|e| Error::io(input, "stat", e))?
            .len();
        let data_bytes = file_len - data_offset.min(file_len);
        if !data_bytes.is_multiple_of(elem_size as u64) {
            return Err(Error::NotAMultiple {
                path: input.into(),
                len: data_bytes,
                elem_size,
            });
        }
        let elements = data_bytes / elem_size as u64;
        Ok(Job::new::<T>(
            input,
            Some(file),
            data_offset,
            elements,
            opts.par(),
            opts,
        ))
    }

    /// Whether the whole input, with the sort's scratch, fits `budget`: then it is sorted
    /// in memory, with no runs.
    fn fits_in_memory<T: SortKey>(&self, budget: usize) -> bool {
        usize::try_from(self.elements)
            .is_ok_and(|n| in_memory_bytes::<T>(n, self.threads) <= budget)
    }

    /// The report of a sort that has not started yet.
    fn empty_report(&self, external: bool) -> SortReport {
        SortReport {
            elements: self.elements,
            bytes: self.bytes(),
            external,
            ..SortReport::default()
        }
    }

    fn start_phase(&mut self, phase: Phase, total: u64) -> Result<()> {
        self.done.store(0, Ordering::Relaxed);
        self.phase_start = Instant::now();
        self.report(phase, 0, total)
    }

    /// Counts `add` bytes done, calls the progress callback, and stops the sort if it was
    /// cancelled.
    fn report(&self, phase: Phase, add: u64, total: u64) -> Result<()> {
        let done = self.done.fetch_add(add, Ordering::Relaxed) + add;
        self.opts.report(phase, done, total)
    }

    fn file(&self) -> &File {
        self.file
            .as_ref()
            .expect("only a job with an input file reads it")
    }

    fn bytes(&self) -> u64 {
        self.elements * self.elem_size as u64
    }

    /// Reads elements `start..start + buf.len()` of the input.
    fn read_input<T: Pod>(&self, buf: &mut [T], start: u64) -> Result<()> {
        let bytes: &mut [u8] = bytemuck::cast_slice_mut(buf);
        let base = self.data_offset + start * self.elem_size as u64;
        for (i, piece) in bytes.chunks_mut(IO_CHUNK).enumerate() {
            fileio::read_at(self.file(), self.input, piece, base + (i * IO_CHUNK) as u64)?;
        }
        Ok(())
    }
}

fn write_all<T: Pod>(w: &mut StreamWriter<'_>, data: &[T]) -> Result<()> {
    for piece in bytemuck::cast_slice::<T, u8>(data).chunks(IO_CHUNK) {
        w.write(piece)?;
    }
    Ok(())
}

/// The directory of one sort's runs: created locked, removed (with its runs) on drop.
struct RunDir {
    path: PathBuf,
    /// Held open for its exclusive advisory lock, which marks the directory as in use.
    _lock: File,
}

impl RunDir {
    fn new(tmp_dir: &Path) -> Result<RunDir> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let pid = std::process::id();
        loop {
            let n = COUNTER.fetch_add(1, Ordering::Relaxed);
            let path = tmp_dir.join(format!("{RUN_DIR_PREFIX}{pid}-{n}"));
            match std::fs::create_dir(&path) {
                Ok(()) => {
                    let dir = File::open(&path).map_err(|e| Error::io(&path, "open", e));
                    let dir = match dir {
                        Ok(d) => d,
                        Err(e) => {
                            let _ = std::fs::remove_dir(&path);
                            return Err(e);
                        }
                    };
                    let run_dir = RunDir { path, _lock: dir };
                    lock_file(&run_dir._lock, Lock::Exclusive, &run_dir.path)?;
                    return Ok(run_dir);
                }
                // Left by an earlier process with the same pid: try the next name.
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) if e.kind() == std::io::ErrorKind::NotADirectory => {
                    return Err(Error::NotADirectory {
                        path: tmp_dir.into(),
                    })
                }
                Err(e) => return Err(Error::io(tmp_dir, "create a run directory in", e)),
            }
        }
    }
}

impl Drop for RunDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// Refuses a temp directory that is missing or is not a directory, naming it, before any
/// file is written.
fn check_tmp_dir(tmp_dir: &Path) -> Result<()> {
    match std::fs::metadata(tmp_dir) {
        Ok(m) if m.is_dir() => Ok(()),
        Ok(_) => Err(Error::NotADirectory {
            path: tmp_dir.into(),
        }),
        Err(e) => Err(Error::io(tmp_dir, "open the temp directory", e)),
    }
}

/// Free bytes and device of the file system holding `dir`.
fn space(dir: &Path) -> Result<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(dir).map_err(|e| Error::io(dir, "stat", e))?;
    Ok((temp::free_space(dir)?, meta.dev()))
}

/// The name prefix of run directories.
const RUN_DIR_PREFIX: &str = ".outcore-sort-";

/// Removes what killed sorts left in `dir`: run directories (`.outcore-sort-*`) and
/// temporary outputs (see [`remove_stale_temp_files`](crate::remove_stale_temp_files)) whose
/// writer is gone. A live sort holds an exclusive advisory lock on each, so they are never
/// touched. Returns how many were removed.
///
/// # Errors
/// [`Error::NotFound`] / [`Error::Io`] if `dir` cannot be listed.
pub fn remove_stale_sort_files(dir: impl AsRef<Path>) -> Result<usize> {
    let dir = dir.as_ref();
    let mut removed = temp::remove_stale_temp_files(dir)?;
    let entries = std::fs::read_dir(dir).map_err(|e| Error::io(dir, "list", e))?;
    for entry in entries.flatten() {
        if !entry
            .file_name()
            .to_string_lossy()
            .starts_with(RUN_DIR_PREFIX)
        {
            continue;
        }
        if temp::owner_alive(&entry.file_name().to_string_lossy(), RUN_DIR_PREFIX) {
            continue;
        }
        let path = entry.path();
        let Ok(d) = File::open(&path) else { continue };
        if d.try_lock().is_ok() && std::fs::remove_dir_all(&path).is_ok() {
            removed += 1;
        }
    }
    Ok(removed)
}

/// How the external sort will run: run size, merge shape.
#[derive(Debug)]
struct RunPlan {
    /// Elements per run (the last one may be shorter).
    run_elems: usize,
    /// Runs that run formation writes.
    runs: u64,
    /// The most runs one merge takes: one worker, the smallest read buffers, half the
    /// open-file limit. Merge levels happen only above it.
    fan_in: usize,
    /// The most merge workers (two per thread, fewer if the budget cannot give each a few
    /// inputs); how many actually run depends on how many runs each must read.
    workers: usize,
    /// The smallest read buffer, bytes.
    min_buf: usize,
    /// Open files the runs may use.
    file_slots: usize,
    /// Key samples kept per run, to split the final merge by key range.
    samples_per_run: u64,
}

impl RunPlan {
    /// How many workers can merge `inputs` runs each at once under `budget`, every input
    /// with a buffer of at least `min_buf` and a prefetched one, plus an output buffer: as
    /// many as allowed (up to `workers`), but at least one.
    fn workers_for(&self, budget: usize, inputs: usize) -> usize {
        let per_worker = self.min_buf.saturating_mul(2 * inputs + 1).max(1);
        (budget / per_worker).clamp(1, self.workers)
    }
}

/// The plan for `job`'s input under `budget`.
fn run_plan<T: SortKey>(job: &Job<'_>, budget: usize) -> RunPlan {
    plan_for::<T>(job.elements, job.threads, budget, job.opts.max_fan_in)
}

/// The plan for `elements` of `T` on `threads` threads under `budget`.
fn plan_for<T: SortKey>(
    elements: u64,
    threads: usize,
    budget: usize,
    max_fan_in: Option<usize>,
) -> RunPlan {
    // Three run buffers (one being read, one sorted, one written) and the sort's scratch
    // space for one.
    plan_with::<T>(
        run_elems_for::<T>(budget, threads, 2),
        elements,
        threads,
        budget,
        max_fan_in,
    )
}

/// The merge shape for `elements` in runs of `run_elems`.
fn plan_with<T: SortKey>(
    run_elems: usize,
    elements: u64,
    threads: usize,
    budget: usize,
    max_fan_in: Option<usize>,
) -> RunPlan {
    let size = std::mem::size_of::<T>();
    let runs = elements.div_ceil(run_elems as u64);
    let min_buf = MIN_READ_BUFFER.min(budget / 64).max(size);
    // Each worker needs at least two inputs, each with a buffer and a prefetched one, and
    // its output buffer: no more workers than the budget can give that much, so that a
    // large thread count never shrinks every merge to a two-way merge of tiny reads.
    let by_budget = budget / (5 * min_buf);
    let workers = (threads * WORKERS_PER_THREAD).min(by_budget).max(1);
    // The fan-in is what a single worker can take: the final merge runs fewer workers
    // (down to one) rather than add a level, which would be another pass over the data.
    let by_memory = (budget / min_buf).saturating_sub(1) / 2;
    // Half the open-file limit for the runs, less a few for the input, the output and the
    // program.
    let file_slots = ((crate::sys::open_file_limit() / 2) as usize)
        .saturating_sub(16)
        .max(2);
    let fan_in = by_memory
        .min(file_slots)
        .min(max_fan_in.unwrap_or(usize::MAX))
        .max(2);
    let key_size = size.max(1);
    let sample_bytes = (budget / 32).min(4 << 20);
    let samples_per_run = (sample_bytes / key_size / runs.max(1) as usize).clamp(4, 1 << 16) as u64;
    RunPlan {
        run_elems,
        runs,
        fan_in,
        workers,
        min_buf,
        file_slots,
        samples_per_run,
    }
}

/// The groups of runs (indices into `lens`, the run lengths) to merge at one level: none
/// when the runs are at most `fan_in`; otherwise the smallest runs, in as few groups of at
/// most `fan_in` as bring the count down to `fan_in` (or as close as one level can). Each
/// group of `g` runs removes `g - 1`, so one level merges `(r - fan_in)` plus the number of
/// groups runs, the least possible, and the smallest of them: the fewest bytes.
fn level_groups(lens: &[u64], fan_in: usize) -> Vec<Vec<usize>> {
    let r = lens.len();
    let fan_in = fan_in.max(2);
    let mut groups = Vec::new();
    if r <= fan_in {
        return groups;
    }
    let mut order: Vec<usize> = (0..r).collect();
    order.sort_by_key(|&i| (lens[i], i));
    let mut need = r - fan_in;
    let mut next = 0;
    while need > 0 && r - next >= 2 {
        let g = fan_in.min(need + 1).min(r - next);
        let mut group = order[next..next + g].to_vec();
        // In run order: the same input always gives the same merge levels.
        group.sort_unstable();
        groups.push(group);
        next += g;
        need -= g - 1;
    }
    groups
}

fn sort_typed<T: SortKey>(
    input: &Path,
    file: File,
    data_offset: u64,
    output: &Path,
    opts: &SortOptions,
) -> Result<SortReport> {
    let (tmp_out, report) = sort_to_temp::<T>(input, file, data_offset, output, opts)?;
    finish_output(tmp_out, output)?;
    Ok(report)
}

/// Sorts the `T`s of `file` from `data_offset` on (after a header copied from the input)
/// into a complete temporary file next to `output`, in memory or out of core as the budget
/// decides. The caller syncs it ([`sync_output`]) and puts it in place; dropping it removes
/// it.
fn sort_to_temp<T: SortKey>(
    input: &Path,
    file: File,
    data_offset: u64,
    output: &Path,
    opts: &SortOptions,
) -> Result<(TempFile, SortReport)> {
    let budget = opts.checked_budget::<T>()?;
    let mut job = Job::for_file::<T>(input, file, data_offset, opts)?;
    // A `.npy` output gets the input's header: same dtype, same shape.
    let header = read_prefix(job.file(), input, data_offset)?;
    let in_memory = job.fits_in_memory::<T>(budget);
    let plan = run_plan::<T>(&job, budget);
    let out_dir = temp::parent_dir(output).to_path_buf();
    let tmp_dir = opts.tmp_dir.clone().unwrap_or_else(|| out_dir.clone());
    let out_need = data_offset + job.bytes();
    let runs_need = (!in_memory).then(|| {
        (
            tmp_dir.as_path(),
            run_bytes(&plan, job.bytes(), job.elem_size),
        )
    });
    check_free_space(runs_need, Some((&out_dir, out_need)))?;
    let _ = remove_stale_sort_files(&out_dir);
    if !in_memory {
        let _ = remove_stale_sort_files(&tmp_dir);
    }

    let tmp_out = create_output(output, &header, out_need)?;
    fileio::advise(job.file(), data_offset, job.bytes(), Hint::Sequential);
    let mut report = job.empty_report(!in_memory);
    if in_memory {
        sort_file_in_memory::<T>(&mut job, &tmp_out, &mut report)?;
    } else {
        let (run_dir, runs) =
            form_and_reduce_runs::<T>(&mut job, &plan, budget, &tmp_dir, &mut report)?;
        job.start_phase(Phase::FinalMerge, job.bytes())?;
        final_merge::<T>(
            &job,
            &plan,
            budget,
            &runs,
            tmp_out.file(),
            tmp_out.path(),
            data_offset,
        )?;
        report
            .phases
            .push((Phase::FinalMerge, job.phase_start.elapsed()));
        drop(run_dir);
    }
    Ok((tmp_out, report))
}

/// The first `len` bytes of `file` (a `.npy` input's header; nothing for a raw one).
fn read_prefix(file: &File, path: &Path, len: u64) -> Result<Vec<u8>> {
    use std::os::unix::fs::FileExt;
    let mut header = vec![0u8; len as usize];
    file.read_exact_at(&mut header, 0)
        .map_err(|e| Error::io(path, "read", e))?;
    Ok(header)
}

/// The temp-directory space the runs of `plan` take for `data_bytes` of input:
/// multi-level merges delete a group's runs after merging it, so one group's worth extra.
fn run_bytes(plan: &RunPlan, data_bytes: u64, elem_size: usize) -> u64 {
    let mut need = data_bytes;
    if plan.runs > plan.fan_in as u64 {
        need += (plan.fan_in as u64 * plan.run_elems as u64 * elem_size as u64).min(data_bytes);
    }
    need
}

/// Refuses, before anything is written, a sort that lacks the free space for its runs
/// (`runs`: the temp directory and the bytes they take; `None` for an in-memory sort) or
/// its output (`output`: its directory and bytes; `None` when the output goes to a
/// consumer), counting both together when they share a file system. The temp directory
/// must exist and be a directory.
fn check_free_space(runs: Option<(&Path, u64)>, output: Option<(&Path, u64)>) -> Result<()> {
    let output = match output {
        Some((dir, need)) => Some((dir, need, space(dir)?)),
        None => None,
    };
    if let Some((tmp_dir, tmp_need)) = runs {
        check_tmp_dir(tmp_dir)?;
        let (tmp_avail, tmp_dev) = space(tmp_dir)?;
        let needed = match output {
            Some((_, out_need, (_, out_dev))) if out_dev == tmp_dev => tmp_need + out_need,
            _ => tmp_need,
        };
        if needed > tmp_avail {
            return Err(Error::DiskFull {
                path: tmp_dir.to_path_buf(),
                needed: Some(needed),
                available: Some(tmp_avail),
            });
        }
    }
    if let Some((out_dir, out_need, (out_avail, _))) = output {
        if out_need > out_avail {
            return Err(Error::DiskFull {
                path: out_dir.to_path_buf(),
                needed: Some(out_need),
                available: Some(out_avail),
            });
        }
    }
    Ok(())
}

/// The output's temporary file, `bytes` long (its blocks allocated), starting with
/// `header`; renamed over `output` by [`finish_output`].
fn create_output(output: &Path, header: &[u8], bytes: u64) -> Result<TempFile> {
    let tmp_out = TempFile::for_dest(output)?;
    tmp_out.allocate(bytes)?;
    let mut w = StreamWriter::new(tmp_out.file(), tmp_out.path(), 0);
    w.write(header)?;
    w.finish()?;
    Ok(tmp_out)
}

/// Syncs the complete output and renames it over `output`.
fn finish_output(tmp_out: TempFile, output: &Path) -> Result<()> {
    sync_output(&tmp_out)?;
    tmp_out.persist(output)
}

/// Syncs the complete output, then drops it from the page cache.
fn sync_output(tmp_out: &TempFile) -> Result<()> {
    let (out_file, out_path) = (tmp_out.file(), tmp_out.path());
    // Written back and dropped from the cache, so that it is not charged to this process.
    out_file
        .sync_data()
        .map_err(|e| Error::io(out_path, "fsync", e))?;
    fileio::drop_all(out_file);
    Ok(())
}

/// The in-memory path of [`sort_file`]: reads the whole input, sorts it and writes it to
/// `out` after its header.
fn sort_file_in_memory<T: SortKey>(
    job: &mut Job<'_>,
    out: &TempFile,
    report: &mut SortReport,
) -> Result<()> {
    let data_bytes = job.bytes();
    job.start_phase(Phase::InMemory, data_bytes * 2)?;
    let mut data = vec![T::zeroed(); job.elements as usize];
    job.read_input(&mut data, 0)?;
    fileio::drop_all(job.file());
    job.report(Phase::InMemory, data_bytes, data_bytes * 2)?;
    sort_in_memory(&mut data, &job.par)?;
    let mut w = StreamWriter::new(out.file(), out.path(), job.data_offset);
    write_all(&mut w, &data)?;
    w.finish()?;
    job.report(Phase::InMemory, data_bytes, data_bytes * 2)?;
    report
        .phases
        .push((Phase::InMemory, job.phase_start.elapsed()));
    Ok(())
}

/// The external path up to the final merge: writes the input as sorted runs into a new run
/// directory in `tmp_dir`, then merges them in levels until one merge can take them all.
/// Returns the run directory (removed when dropped) and the runs left.
fn form_and_reduce_runs<T: SortKey>(
    job: &mut Job<'_>,
    plan: &RunPlan,
    budget: usize,
    tmp_dir: &Path,
    report: &mut SortReport,
) -> Result<(RunDir, Vec<Run<T::Key>>)> {
    let run_dir = RunDir::new(tmp_dir)?;
    job.start_phase(Phase::RunFormation, job.bytes())?;
    let runs = form_runs::<T>(job, plan, &run_dir.path)?;
    report.runs = runs.len();
    report
        .phases
        .push((Phase::RunFormation, job.phase_start.elapsed()));
    let runs = merge_levels::<T>(job, plan, budget, runs, &run_dir.path, report)?;
    Ok((run_dir, runs))
}

/// Writes `data` (sorted) as run file `path`.
fn write_run<T: Pod>(path: &Path, data: &[T]) -> Result<()> {
    let f = fileio::create_new(path)?;
    let bytes = std::mem::size_of_val(data) as u64;
    temp::allocate(&f, bytes, path)?;
    let mut w = StreamWriter::new(&f, path, 0);
    write_all(&mut w, data)?;
    w.finish()?;
    Ok(())
}

fn form_runs<T: SortKey>(job: &Job<'_>, plan: &RunPlan, dir: &Path) -> Result<Vec<Run<T::Key>>> {
    let n = job.elements;
    let step = plan.run_elems as u64;
    // Three buffers in rotation: one being read, one being sorted, one being written.
    let mut reading = vec![T::zeroed(); plan.run_elems];
    let mut sorting = vec![T::zeroed(); plan.run_elems];
    let mut writing = vec![T::zeroed(); plan.run_elems];
    let mut runs: Vec<Run<T::Key>> = Vec::with_capacity(plan.runs as usize);
    let first = step.min(n) as usize;
    job.read_input(&mut sorting[..first], 0)?;
    let mut sort_len = first;
    let mut start = 0u64;
    // The run sorted in the previous step, waiting in `writing`.
    let mut pending: Option<(usize, PathBuf)> = None;
    let join = |h: std::thread::ScopedJoinHandle<'_, Result<()>>| match h.join() {
        Ok(r) => r,
        Err(p) => std::panic::resume_unwind(p),
    };
    while sort_len > 0 || pending.is_some() {
        let next_start = start + sort_len as u64;
        let next_len = step.min(n - next_start) as usize;
        let path = dir.join(format!("run-0-{}", runs.len()));
        let (read, write, run) = std::thread::scope(|s| {
            let reader = s.spawn(|| job.read_input(&mut reading[..next_len], next_start));
            let writer = s.spawn(|| match &pending {
                Some((len, p)) => write_run(p, &writing[..*len]),
                None => Ok(()),
            });
            let run = (|| -> Result<Option<Run<T::Key>>> {
                if sort_len == 0 {
                    return Ok(None);
                }
                let piece = &mut sorting[..sort_len];
                // In place for primitive types: no scratch as large as the run.
                super::par_sort_with(piece, &job.par)?;
                let mut sampler = Sampler::new(sort_len as u64, plan.samples_per_run);
                sampler.feed(piece);
                let (stride, samples) = sampler.finish();
                Ok(Some(Run {
                    path: path.clone(),
                    offset: 0,
                    len: sort_len as u64,
                    stride,
                    samples,
                }))
            })();
            (join(reader), join(writer), run)
        });
        write?;
        if let Some((len, _)) = pending.take() {
            job.report(
                Phase::RunFormation,
                (len * job.elem_size) as u64,
                job.bytes(),
            )?;
        }
        read?;
        if let Some(run) = run? {
            pending = Some((sort_len, run.path.clone()));
            runs.push(run);
        }
        // Rotate: sorted -> writing, read -> sorting, written -> reading.
        std::mem::swap(&mut writing, &mut sorting);
        std::mem::swap(&mut sorting, &mut reading);
        sort_len = next_len;
        start = next_start;
    }
    fileio::drop_all(job.file());
    Ok(runs)
}

/// Why a worker's task ended early.
///
/// Internal: [`run_workers`] and the streamed merge turn it back into the one error that
/// counts, so a [`Halt::Stopped`] never reaches a caller (and nothing is ever recognised by
/// its message).
enum Halt {
    /// The task failed: the error to report.
    Failed(Error),
    /// The task gave up because another one failed (or its consumer stopped), whose error
    /// is the one reported.
    Stopped,
}

impl From<Error> for Halt {
    fn from(e: Error) -> Halt {
        Halt::Failed(e)
    }
}

/// Runs `work(i)` for `i in 0..count` on `workers` threads; stops at the first error and
/// re-raises a worker's panic in the caller.
///
/// A task returns [`Halt::Stopped`] only once `stop` is set, which happens only after
/// another task failed (its error is among the results) or a worker panicked (re-raised):
/// so a stopped task ends its worker quietly.
fn run_workers(
    count: usize,
    workers: usize,
    work: &(dyn Fn(usize, &AtomicBool) -> std::result::Result<(), Halt> + Sync),
) -> Result<()> {
    let next = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    let results: Vec<Result<()>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..workers.min(count).max(1))
            .map(|_| {
                s.spawn(|| -> Result<()> {
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= count || stop.load(Ordering::Relaxed) {
                            return Ok(());
                        }
                        match work(i, &stop) {
                            Ok(()) => {}
                            Err(Halt::Stopped) => return Ok(()),
                            Err(Halt::Failed(e)) => {
                                stop.store(true, Ordering::Relaxed);
                                return Err(e);
                            }
                        }
                    }
                })
            })
            .collect();
        let mut panic = None;
        let mut results = Vec::new();
        for h in handles {
            match h.join() {
                Ok(r) => results.push(r),
                Err(p) => {
                    stop.store(true, Ordering::Relaxed);
                    panic.get_or_insert(p);
                }
            }
        }
        if let Some(p) = panic {
            std::panic::resume_unwind(p);
        }
        results
    });
    results.into_iter().collect()
}

fn open_runs<'a, K: 'a>(runs: impl IntoIterator<Item = &'a Run<K>>) -> Result<Vec<File>> {
    runs.into_iter()
        .map(|r| {
            // Writable too: the merge frees the blocks it has consumed (see `merge`).
            let f = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open(&r.path)
                .map_err(|e| Error::io(&r.path, "open", e))?;
            fileio::advise(&f, 0, 0, Hint::Random);
            Ok(f)
        })
        .collect()
}

/// Merges runs until at most `plan.fan_in` remain, level by level, each level merging only
/// the fewest, smallest runs it must ([`level_groups`]). Returns the remaining runs and the
/// number of levels.
fn merge_levels<T: SortKey>(
    job: &mut Job<'_>,
    plan: &RunPlan,
    budget: usize,
    mut runs: Vec<Run<T::Key>>,
    dir: &Path,
    report: &mut SortReport,
) -> Result<Vec<Run<T::Key>>> {
    let mut level = 0;
    loop {
        let lens: Vec<u64> = runs.iter().map(|r| r.len).collect();
        let groups = level_groups(&lens, plan.fan_in);
        if groups.is_empty() {
            report.merge_levels = level;
            return Ok(runs);
        }
        level += 1;
        let bytes: u64 =
            groups.iter().flatten().map(|&i| lens[i]).sum::<u64>() * job.elem_size as u64;
        job.start_phase(Phase::Merge { level }, bytes)?;
        let merged = merge_level::<T>(job, plan, budget, &runs, &groups, bytes, dir, level)?;
        let mut taken = vec![false; runs.len()];
        for &i in groups.iter().flatten() {
            taken[i] = true;
        }
        runs = runs
            .into_iter()
            .zip(taken)
            .filter_map(|(r, t)| (!t).then_some(r))
            .chain(merged)
            .collect();
        report
            .phases
            .push((Phase::Merge { level }, job.phase_start.elapsed()));
    }
}

/// Merges each group of `runs` into one longer run, in parallel over groups (as many at once
/// as the budget gives each group's inputs a buffer of at least the minimum, and the
/// open-file limit allows). `bytes` is the level's total, for progress.
#[allow(clippy::too_many_arguments)]
fn merge_level<T: SortKey>(
    job: &Job<'_>,
    plan: &RunPlan,
    budget: usize,
    runs: &[Run<T::Key>],
    groups: &[Vec<usize>],
    bytes: u64,
    dir: &Path,
    level: usize,
) -> Result<Vec<Run<T::Key>>> {
    let widest = groups.iter().map(Vec::len).max().unwrap_or(2);
    let workers = plan
        .workers_for(budget, widest)
        .min(plan.file_slots / widest)
        .min(groups.len())
        .max(1);
    let out: Vec<std::sync::Mutex<Option<Run<T::Key>>>> = (0..groups.len())
        .map(|_| std::sync::Mutex::new(None))
        .collect();
    let per_worker = budget / workers;
    let phase = Phase::Merge { level };
    let pool = BufferPool::default();
    run_workers(groups.len(), workers, &|g, stop| {
        let group: Vec<&Run<T::Key>> = groups[g].iter().map(|&i| &runs[i]).collect();
        let files = open_runs(group.iter().copied())?;
        let len: u64 = group.iter().map(|r| r.len).sum();
        let path = dir.join(format!("run-{level}-{g}"));
        let f = fileio::create_new(&path)?;
        temp::allocate(&f, len * job.elem_size as u64, &path)?;
        // Each input holds a buffer and prefetches the next; plus the output buffer.
        let buf = (per_worker / (2 * group.len() + 1) / job.elem_size).max(1);
        let out_elems = merge::unit_elems::<T>().min(buf);
        let mut w = StreamWriter::new(&f, &path, 0);
        let mut sampler = Sampler::new(len, plan.samples_per_run);
        let sources = merge::whole_sources(group.iter().copied(), &files);
        merge::merge::<T, _, Halt>(&sources, buf, out_elems, &pool, None, |piece| {
            if stop.load(Ordering::Relaxed) {
                return Err(Halt::Stopped);
            }
            sampler.feed(piece);
            write_all(&mut w, piece)?;
            job.report(phase, std::mem::size_of_val(piece) as u64, bytes)?;
            Ok(())
        })?;
        w.finish()?;
        drop(files);
        for r in &group {
            let _ = std::fs::remove_file(&r.path);
        }
        let (stride, samples) = sampler.finish();
        *out[g]
            .lock()
            .expect("no poisoning: workers do not panic holding it") = Some(Run {
            path,
            offset: 0,
            len,
            stride,
            samples,
        });
        Ok(())
    })?;
    Ok(out
        .into_iter()
        .map(|m| {
            m.into_inner()
                .expect("not poisoned")
                .expect("every group merged")
        })
        .collect())
}

/// Merges the last runs into the output, split by key range over the workers.
fn final_merge<T: SortKey>(
    job: &Job<'_>,
    plan: &RunPlan,
    budget: usize,
    runs: &[Run<T::Key>],
    out: &File,
    out_path: &Path,
    data_offset: u64,
) -> Result<()> {
    let files = open_runs(runs)?;
    let size = job.elem_size as u64;
    // As many workers as the budget gives every run a buffer of at least the minimum: with
    // many runs fewer workers (down to one) rather than another merge level.
    let workers = plan.workers_for(budget, runs.len());
    // Tiny inputs gain nothing from many parts.
    let parts = (workers * PARTS_PER_WORKER)
        .min((job.elements / 1024).max(1) as usize)
        .max(1);
    let cuts = merge::split_points::<T>(runs, &files, parts)?;
    let workers = workers.min(parts);
    let per_worker = budget / workers;
    // Each input holds a buffer and prefetches the next; the output a block being filled
    // and one being written, plus the merge's output buffer.
    let buf = (per_worker / (2 * runs.len() + 3) / job.elem_size).max(1);
    // Small output pieces stay in the cache until they are copied out; the writer hands
    // the disk large chunks whatever their size.
    let out_elems = merge::unit_elems::<T>().min(buf);
    let pool = BufferPool::default();
    // The output again with `O_DIRECT`, written by the same I/O threads in blocks the size
    // of a run's; through the page cache where that cannot be.
    let out_block = (buf * job.elem_size).min(merge::MAX_DIRECT_BLOCK as usize)
        / crate::sys::DIRECT_ALIGN
        * crate::sys::DIRECT_ALIGN;
    let out_direct = match out_block {
        0 => None,
        _ => crate::sys::reopen_direct_for_writing(out).ok(),
    };
    // The runs again with `O_DIRECT`, read by I/O threads (`io_pool`); where the filesystem
    // refuses, through the page cache as before. The runs take at most `file_slots`, half
    // the open-file limit, so these fit in the other half; where one does not open, that
    // run is read through the page cache.
    let direct: Vec<Option<File>> = runs
        .iter()
        .map(|r| crate::sys::open_direct(&r.path).ok())
        .collect();
    IoPool::scope(IO_THREADS, |io| {
        run_workers(parts, workers, &|p, stop| {
            let start: u64 = cuts[p].iter().sum();
            let at = data_offset + start * size;
            let mut w = match &out_direct {
                Some(d) => PartWriter::Direct(DirectWriter::new(
                    io, d, out, out_path, at, out_block, &pool,
                )),
                None => PartWriter::Cached(StreamWriter::new(out, out_path, at)),
            };
            let sources = merge::part_sources(runs, &files, &direct, &cuts, p);
            merge::merge::<T, _, Halt>(&sources, buf, out_elems, &pool, Some(io), |piece| {
                if stop.load(Ordering::Relaxed) {
                    return Err(Halt::Stopped);
                }
                w.write(piece)?;
                job.report(Phase::FinalMerge, piece.len() as u64 * size, job.bytes())?;
                Ok(())
            })?;
            w.finish()?;
            Ok(())
        })
    })
}

/// Where a part of the final merge writes: directly from aligned blocks, or through the
/// page cache where the output cannot be opened for direct writes.
enum PartWriter<'f, 'b, T> {
    Direct(DirectWriter<'f, 'b, T>),
    Cached(StreamWriter<'f>),
}

impl<T: Pod> PartWriter<'_, '_, T> {
    fn write(&mut self, data: &[T]) -> Result<()> {
        match self {
            PartWriter::Direct(w) => w.write(bytemuck::cast_slice(data)),
            PartWriter::Cached(w) => write_all(w, data),
        }
    }

    fn finish(self) -> Result<()> {
        match self {
            PartWriter::Direct(w) => w.finish(),
            PartWriter::Cached(w) => w.finish(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The run length is the largest whose buffers and sort scratch fit the budget, across
    /// the jumps where the sort turns in place (8 MiB; floats 16 MiB) and for records sorted
    /// by index. The need never falls as runs grow (the search for the run length relies on
    /// it).
    #[test]
    fn runs_fill_the_budget() {
        fn grows<T: SortKey>(threads: usize) {
            let size = std::mem::size_of::<T>();
            let mut last = 0;
            for bytes in (1..=40).map(|k| k << 19) {
                let n = bytes / size;
                for n in [n - 1, n, n + 1] {
                    let need = in_memory_bytes::<T>(n, threads);
                    assert!(need >= last, "{n} elements, {threads} threads");
                    last = need;
                }
            }
        }
        for threads in [1, 2] {
            grows::<u64>(threads);
            grows::<f64>(threads);
            grows::<f32>(threads);
            grows::<crate::sort::Record<100, 10>>(threads);
        }
        fn check<T: SortKey>(budget: usize, threads: usize) {
            let size = std::mem::size_of::<T>();
            let need = |n: usize| in_memory_bytes::<T>(n, threads) + 2 * n * size;
            let n = run_elems_for::<T>(budget, threads, 2);
            assert!(
                n == 1 || need(n) <= budget,
                "{n} elements overflow {budget}"
            );
            assert!(
                need(n + 1) > budget,
                "{} elements would fit {budget}",
                n + 1
            );
        }
        for budget in [
            1,
            100,
            16 << 10,
            30 << 20,
            62 << 20,
            64 << 20,
            768 << 20,
            8 << 30,
        ] {
            for threads in [1, 2, 16] {
                check::<u64>(budget, threads);
                check::<u8>(budget, threads);
                check::<f32>(budget, threads);
                check::<crate::sort::Record<100, 10>>(budget, threads);
            }
        }
        // A 768 MiB budget on 2 threads: runs of u64 well over a quarter of it.
        assert!(run_elems_for::<u64>(768 << 20, 2, 2) * 8 > (768 << 20) * 3 / 10);
    }

    /// A huge thread count neither spawns more merge workers than the cores can run nor
    /// shrinks the merge to two-way merges of tiny reads: 24 MB under a 4 MiB budget with
    /// `threads(1000)` once took 35 s instead of 0.3 s.
    #[test]
    fn a_huge_thread_count_is_clamped_to_the_cores_and_the_budget() {
        let mut opts = SortOptions::new();
        opts.threads(1000);
        let threads = opts.get_threads();
        assert!(threads >= 1 && threads <= cores(), "{threads} threads");

        let budget = 4 << 20;
        let elements = 3_000_000u64; // 24 MB of u64
        let p = plan_for::<u64>(elements, threads, budget, None);
        assert!(p.workers <= WORKERS_PER_THREAD * cores(), "{p:?}");
        assert!(p.fan_in >= 4, "{p:?}");
        // Even fed 1000 threads unclamped, the budget bounds the workers and keeps each
        // merge input's buffers at their minimum size.
        let p = plan_for::<u64>(elements, 1000, budget, None);
        let min_buf = MIN_READ_BUFFER.min(budget / 64);
        assert!(p.workers * 5 * min_buf <= budget, "{p:?}");
        assert!(p.fan_in >= 2, "{p:?}");
        // The same plan as before for a machine-sized thread count.
        let p = plan_for::<u64>(elements, 2, 1 << 30, None);
        assert_eq!(p.workers, 2 * WORKERS_PER_THREAD);
    }

    /// No merge level while one worker with the smallest read buffers can take every run:
    /// runs ≤ (budget / min buffer - 1) / 2 (a buffer and a prefetched one per run).
    #[test]
    fn no_merge_level_while_one_worker_can_take_all_runs() {
        for budget in [64 << 10, 1 << 20, 16 << 20, 192 << 20, 1 << 30] {
            for threads in [1, 2, 16] {
                let p = plan_for::<u64>(1 << 30, threads, budget, None);
                let bound = (budget / p.min_buf - 1) / 2;
                assert_eq!(p.fan_in, bound.min(p.file_slots).max(2), "{p:?}");
                for runs in [2, bound / 2, bound] {
                    let lens = vec![p.run_elems as u64; runs];
                    assert!(
                        level_groups(&lens, p.fan_in).is_empty(),
                        "{runs} runs: {p:?}"
                    );
                    // The final merge fits: every run gets at least the minimum buffer.
                    let w = p.workers_for(budget, runs);
                    assert!(w >= 1 && w <= p.workers);
                    assert!(w == 1 || w * p.min_buf * (2 * runs + 1) <= budget);
                }
                assert_eq!(level_groups(&vec![1; p.fan_in + 1], p.fan_in).len(), 1);
            }
        }
        // The record case: 10^7 records of 100 bytes under a 192 MiB budget on 2 threads made
        // 24 runs and a merge level when the fan-in was divided among the workers.
        let budget = 192 << 20;
        let p = plan_for::<crate::sort::Record<100, 10>>(10_000_000, 2, budget, None);
        assert!(p.runs >= 16 && p.runs <= 40, "{p:?}");
        let lens = vec![p.run_elems as u64; p.runs as usize];
        assert!(level_groups(&lens, p.fan_in).is_empty(), "{p:?}");
        assert!(p.workers_for(budget, p.runs as usize) >= 2, "{p:?}");
    }

    /// When a level is needed it merges the fewest runs that bring the count to the fan-in,
    /// and the smallest ones.
    #[test]
    fn a_needed_level_merges_the_fewest_smallest_runs() {
        let mut seed = 3u64;
        for k in 2..12usize {
            for r in k + 1..=k * k {
                for equal in [true, false] {
                    let lens: Vec<u64> = (0..r)
                        .map(|_| {
                            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
                            if equal {
                                100
                            } else {
                                1 + (seed >> 40) % 1000
                            }
                        })
                        .collect();
                    let groups = level_groups(&lens, k);
                    let merged: Vec<usize> = groups.iter().flatten().copied().collect();
                    let need = r - k;
                    // Each group of g removes g - 1 ≤ k - 1 runs.
                    let least = need + need.div_ceil(k - 1);
                    assert_eq!(merged.len(), least, "r {r} k {k}");
                    assert!(groups.iter().all(|g| g.len() >= 2 && g.len() <= k));
                    assert_eq!(r - merged.len() + groups.len(), k, "one level reaches k");
                    let mut sorted = lens.clone();
                    sorted.sort_unstable();
                    let bytes: u64 = merged.iter().map(|&i| lens[i]).sum();
                    assert_eq!(bytes, sorted[..least].iter().sum::<u64>(), "smallest runs");
                    let mut distinct = merged.clone();
                    distinct.sort_unstable();
                    distinct.dedup();
                    assert_eq!(distinct.len(), merged.len());
                }
            }
        }
        // Beyond k² runs, levels of full groups until the count is at most k.
        let (k, mut lens) = (4usize, vec![1u64; 100]);
        let mut levels = 0;
        loop {
            let groups = level_groups(&lens, k);
            if groups.is_empty() {
                break;
            }
            levels += 1;
            let taken: std::collections::HashSet<usize> =
                groups.iter().flatten().copied().collect();
            let merged: Vec<u64> = groups
                .iter()
                .map(|g| g.iter().map(|&i| lens[i]).sum())
                .collect();
            lens = (0..lens.len())
                .filter(|i| !taken.contains(i))
                .map(|i| lens[i])
                .chain(merged)
                .collect();
        }
        assert!(lens.len() <= k && lens.iter().sum::<u64>() == 100);
        assert_eq!(levels, 3, "100 → 25 → 7 → 4");
    }

    #[test]
    fn a_temp_directory_that_is_a_file_is_named_in_the_error() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("not-a-dir");
        std::fs::write(&file, b"x").unwrap();
        for e in [
            check_tmp_dir(&file).unwrap_err(),
            RunDir::new(&file).err().unwrap(),
        ] {
            assert!(
                matches!(&e, Error::NotADirectory { path } if path == &file),
                "{e}"
            );
            let msg = e.to_string();
            assert!(msg.contains(&*file.to_string_lossy()), "{msg}");
            assert!(msg.contains("not a directory"), "{msg}");
        }
        let missing = dir.path().join("missing");
        let msg = check_tmp_dir(&missing).unwrap_err().to_string();
        assert!(msg.contains(&*missing.to_string_lossy()), "{msg}");
    }
}
