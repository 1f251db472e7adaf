//! The mapping layer: the only module that calls memmap2, and so the home of the mmap contract.
//!
//! # The contract
//!
//! A memory map hands out ordinary Rust references (`&[u8]`, `&mut [u8]`) to memory that
//! the kernel fills from a file. Rust assumes the memory behind `&[T]` does not change while
//! it is borrowed and that it stays readable; a file, however, can be written or truncated
//! by any process. outcore's constructors are **safe** and keep that assumption true among
//! processes that use outcore (or any program that honours `flock(2)` advisory locks):
//!
//! * read-only and copy-on-write mappings take a **shared** lock on the file;
//! * read-write mappings take an **exclusive** lock;
//! * a conflicting lock is refused with [`Error::Locked`] after a grace of 100 ms (see
//!   `LOCK_GRACE` in [`crate::sys`]: a child process being spawned briefly shares our
//!   locks), never a wait for the other user.
//!
//! Each [`Mapping`] records what protects it ([`Guard`]): the lock it holds, or, on a
//! filesystem without `flock` (the lock wrapper reports [`LockOutcome::Unsupported`]),
//! nothing but the contract the safe constructors document: on such a filesystem no other
//! process, outcore included, may write or truncate a file while outcore maps it. The
//! crate docs say so to users.
//!
//! Advisory locks bind only those who ask for them. What remains impossible to prevent is
//! another program that ignores them: if it **truncates** a mapped file, touching the lost
//! pages raises `SIGBUS` and the process dies; if it **writes** to the file, a shared
//! mapping sees the bytes change under a live borrow. `Pod` element types make any bit
//! pattern a valid value, so the second case yields wrong numbers, not memory unsafety in
//! practice; the first cannot be caught in Rust at all. [`Mapping::check_len`] detects a
//! shrunken file between chunks of a long pass, so a pass that checks fails with
//! [`Error::Truncated`] instead of dying, unless the truncation races the access itself.
//!
//! Cooperating processes that deliberately share a writable mapping (each writing its own
//! part) opt out of the exclusive lock through an `unsafe` constructor, which puts the
//! duty of non-overlapping writes on the caller.
//!
//! # Advice and releasing pages
//!
//! `madvise` hints are safe except `MADV_DONTNEED`, which on a private or anonymous mapping
//! throws modified pages away (UB behind a live borrow). outcore only ever applies it to
//! *shared file* mappings, where a dropped page is re-read from the page cache or the file
//! unchanged (dirty pages are kept by the page cache and written back), and follows it with
//! `posix_fadvise(DONTNEED)` so that the page cache also lets go: a long scan then does not
//! push everything else out of memory, and a memory-capped run stays within its cap.

use std::fs::{File, OpenOptions};
use std::ops::Range;
use std::path::{Path, PathBuf};

use memmap2::{Mmap, MmapMut, MmapOptions};

use crate::error::{Error, Result};
use crate::sys::{self, page_size, Hint, Lock, LockOutcome, Writeback};

/// How a file is mapped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Read-only, shared: sees the file.
    ReadOnly,
    /// Read-write, shared: writes reach the file and other processes' mappings.
    ReadWrite,
    /// Copy-on-write: reads the file, writes stay private to this mapping.
    CopyOnWrite,
}

/// What keeps a mapped file from being truncated or changed under the borrows a mapping
/// hands out (see "The contract" in the module docs). Recorded on every [`Mapping`] when
/// it is made, so the `SAFETY` argument of the map call can name it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Guard {
    /// This process holds this advisory lock on the file (a shared lock on a read-write
    /// mapping is `MappedArrayMut::open_shared`, whose callers promise the rest).
    Locked(Lock),
    /// The filesystem has no `flock`: the lock asked for could not be taken, and the
    /// documented contract of the safe constructors (no other process writes or truncates
    /// a file while outcore maps it) is all there is.
    NoFlock(Lock),
    /// The file is mapped only to ask `mincore` which of its pages are resident; its bytes
    /// are never read, so a change cannot be observed.
    NotRead,
}

impl Guard {
    /// The guard that taking `lock` with the outcome `outcome` gives.
    pub(crate) fn from_lock(lock: Lock, outcome: LockOutcome) -> Guard {
        match outcome {
            LockOutcome::Held => Guard::Locked(lock),
            LockOutcome::Unsupported => Guard::NoFlock(lock),
        }
    }
}

/// A hint to the kernel about how a mapping will be accessed (`madvise`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Advice {
    /// No special treatment (the default).
    #[default]
    Normal,
    /// Pages will be read in order: read ahead aggressively, drop behind sooner.
    Sequential,
    /// Pages will be read at random: do not read ahead.
    Random,
    /// Pages will be needed soon: start reading them now.
    WillNeed,
}

impl Advice {
    fn to_memmap(self) -> memmap2::Advice {
        match self {
            Advice::Normal => memmap2::Advice::Normal,
            Advice::Sequential => memmap2::Advice::Sequential,
            Advice::Random => memmap2::Advice::Random,
            Advice::WillNeed => memmap2::Advice::WillNeed,
        }
    }
}

enum Inner {
    Ro(Mmap),
    Rw(MmapMut),
}

/// A mapped file (or anonymous memory), with the file handle that holds its lock.
pub(crate) struct Mapping {
    inner: Inner,
    /// What protects a file mapping; `None` for anonymous memory, which no one else can
    /// reach.
    guard: Option<Guard>,
    /// Shared file mappings only: what `release` may drop.
    shared_file: bool,
    file: Option<File>,
    path: Option<PathBuf>,
    /// The file's size when mapped.
    len: u64,
}

impl std::fmt::Debug for Mapping {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mapping")
            .field("path", &self.path)
            .field("len", &self.len)
            .field("writable", &matches!(self.inner, Inner::Rw(_)))
            .field("shared_file", &self.shared_file)
            .field("guard", &self.guard)
            .finish()
    }
}

impl Mapping {
    /// Opens `path`, takes the advisory lock `lock` on it and maps it.
    pub(crate) fn open(path: &Path, mode: Mode, lock: Lock) -> Result<Mapping> {
        let file = OpenOptions::new()
            .read(true)
            .write(mode == Mode::ReadWrite)
            .open(path)
            .map_err(|e| Error::io(path, "open", e))?;
        let outcome = sys::lock_file(&file, lock, path)?;
        Mapping::map_file(file, path, mode, Guard::from_lock(lock, outcome))
    }

    /// Maps an already opened file that `guard` protects (see [`Guard`]).
    pub(crate) fn map_file(file: File, path: &Path, mode: Mode, guard: Guard) -> Result<Mapping> {
        let meta = file.metadata().map_err(|e| Error::io(path, "stat", e))?;
        if !meta.is_file() {
            return Err(Error::NotAFile { path: path.into() });
        }
        let len = meta.len();
        if usize::try_from(len).is_err() {
            return Err(Error::TooLargeToMap {
                path: path.into(),
                len,
            });
        }
        // SAFETY: mapping a file is sound as long as nobody truncates or modifies it while
        // borrowed. What rules that out is `guard`, recorded on the mapping:
        // - `Locked`: this process holds the advisory lock, which refuses every cooperating
        //   writer (outcore's writers lock exclusively; a shared lock on a read-write mapping
        //   is the unsafe `open_shared`, whose caller promises disjoint access);
        // - `NoFlock`: the filesystem has no flock, so no lock could be taken; the safe
        //   constructors' documented contract (crate docs, "the mmap contract") then asks
        //   that no other process write or truncate the file while it is mapped;
        // - `NotRead`: the bytes are never read, only their residency asked (`mincore`).
        // Beyond these, a program that ignores the locks can still break the mapping, as
        // the module docs say. The length is the file's current length, so every mapped
        // page exists now.
        let inner = unsafe {
            match mode {
                Mode::ReadOnly => MmapOptions::new().map(&file).map(Inner::Ro),
                Mode::ReadWrite => MmapOptions::new().map_mut(&file).map(Inner::Rw),
                Mode::CopyOnWrite => MmapOptions::new().map_copy(&file).map(Inner::Rw),
            }
        }
        .map_err(|e| Error::io(path, "map", e))?;
        Ok(Mapping {
            inner,
            guard: Some(guard),
            shared_file: mode != Mode::CopyOnWrite,
            file: Some(file),
            path: Some(path.into()),
            len,
        })
    }

    /// Anonymous read-write memory of `len` bytes, zero-filled, backed by no file.
    pub(crate) fn anonymous(len: usize) -> Result<Mapping> {
        let map = MmapMut::map_anon(len).map_err(|e| Error::io("<anonymous>", "map", e))?;
        Ok(Mapping {
            inner: Inner::Rw(map),
            guard: None,
            shared_file: false,
            file: None,
            path: None,
            len: len as u64,
        })
    }

    pub(crate) fn bytes(&self) -> &[u8] {
        match &self.inner {
            Inner::Ro(m) => m,
            Inner::Rw(m) => m,
        }
    }

    /// The writable bytes, or `None` for a read-only mapping.
    pub(crate) fn bytes_mut(&mut self) -> Option<&mut [u8]> {
        match &mut self.inner {
            Inner::Ro(_) => None,
            Inner::Rw(m) => Some(m),
        }
    }

    pub(crate) fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// The file of a shared file mapping, which sees the mapping's writes; `None` for
    /// copy-on-write and anonymous mappings, whose pages exist nowhere else.
    pub(crate) fn shared_file(&self) -> Option<&File> {
        self.file.as_ref().filter(|_| self.shared_file)
    }

    pub(crate) fn set_path(&mut self, path: PathBuf) {
        self.path = Some(path);
    }

    fn err_path(&self) -> PathBuf {
        self.path
            .clone()
            .unwrap_or_else(|| PathBuf::from("<anonymous>"))
    }

    /// Applies `advice` to the bytes `range` of the mapping.
    pub(crate) fn advise(&self, advice: Advice, range: Range<usize>) -> Result<()> {
        if range.is_empty() {
            return Ok(());
        }
        let a = advice.to_memmap();
        let r = match &self.inner {
            Inner::Ro(m) => m.advise_range(a, range.start, range.len()),
            Inner::Rw(m) => m.advise_range(a, range.start, range.len()),
        };
        r.map_err(|e| Error::io(self.err_path(), "madvise", e))
    }

    /// Drops the whole pages inside the bytes `range` from this process and from the page
    /// cache, writing dirty ones back first. A no-op for private and anonymous mappings,
    /// where dropping pages would lose data.
    pub(crate) fn release(&self, range: Range<usize>) -> Result<()> {
        if !self.shared_file {
            return Ok(());
        }
        let page = page_size();
        let base = self.bytes().as_ptr() as usize;
        // Whole pages only: the pages at the edges may hold a neighbour's data that is in use.
        let start = (base + range.start).next_multiple_of(page) - base;
        let end = (base + range.end) / page * page;
        let end = end.saturating_sub(base);
        if end <= start {
            return Ok(());
        }
        let len = end - start;
        if let Inner::Rw(m) = &self.inner {
            m.flush_range(start, len)
                .map_err(|e| Error::io(self.err_path(), "msync", e))?;
        }
        let dontneed = memmap2::UncheckedAdvice::DontNeed;
        // SAFETY: this is a shared file mapping (checked above). MADV_DONTNEED on it only
        // unmaps the pages from this process; the next access faults them back in from the
        // page cache or the file with the same contents (dirty pages stay in the page cache
        // and were just written back), so live borrows of these bytes observe no change.
        let r = unsafe {
            match &self.inner {
                Inner::Ro(m) => m.unchecked_advise_range(dontneed, start, len),
                Inner::Rw(m) => m.unchecked_advise_range(dontneed, start, len),
            }
        };
        r.map_err(|e| Error::io(self.err_path(), "madvise", e))?;
        if let Some(file) = &self.file {
            sys::fadvise(file, start as u64, len as u64, Hint::DontNeed)
                .map_err(|e| Error::io(self.err_path(), "posix_fadvise", e))?;
        }
        Ok(())
    }

    /// Writes dirty pages in the bytes `range` back to the file; `sync` waits for them.
    pub(crate) fn flush(&self, range: Range<usize>, sync: bool) -> Result<()> {
        let Inner::Rw(m) = &self.inner else {
            return Ok(());
        };
        if !self.shared_file || range.is_empty() {
            return Ok(());
        }
        if sync {
            return m
                .flush_range(range.start, range.len())
                .map_err(|e| Error::io(self.err_path(), "msync", e));
        }
        // On Linux `msync(MS_ASYNC)` starts no write-back (dirty pages are tracked anyway),
        // so it would make `flush_async` a no-op; `sync_file_range` does start it. The
        // mapping starts at file offset 0, so mapping offsets are file offsets.
        match &self.file {
            Some(file) => sys::sync_file_range(
                file,
                range.start as u64,
                range.len() as u64,
                Writeback::Start,
            ),
            None => m.flush_async_range(range.start, range.len()),
        }
        .map_err(|e| Error::io(self.err_path(), "sync_file_range", e))
    }

    /// How many bytes of the mapping are resident in memory now (`mincore`), and the
    /// mapping's length: `(resident, total)`. Nothing is read or faulted in; a partly
    /// resident last page counts as the bytes of it that belong to the mapping.
    pub(crate) fn resident(&self) -> Result<(u64, u64)> {
        let base = self.bytes().as_ptr() as usize;
        let total = self.bytes().len();
        if total == 0 {
            return Ok((0, 0));
        }
        let page = page_size();
        let pages = total.div_ceil(page);
        // A bounded buffer: one status byte per page, a batch of pages at a time.
        const BATCH: usize = 1 << 16;
        let mut vec = vec![0u8; pages.min(BATCH)];
        let mut resident = 0u64;
        let mut first = 0;
        while first < pages {
            let n = (pages - first).min(BATCH);
            let start = first * page;
            let len = (n * page).min(total - start);
            // The mapping starts on a page boundary (mmap returns page-aligned addresses)
            // and `start` is a multiple of the page size; `vec` holds `n` status bytes.
            sys::mincore(base + start, len, &mut vec[..n])
                .map_err(|e| Error::io(self.err_path(), "mincore", e))?;
            for (i, &v) in vec[..n].iter().enumerate() {
                if v & 1 != 0 {
                    let lo = start + i * page;
                    resident += ((lo + page).min(total) - lo) as u64;
                }
            }
            first += n;
        }
        Ok((resident, total as u64))
    }

    /// Checks that the file still has the size it had when mapped.
    ///
    /// # Errors
    /// [`Error::Truncated`] if it shrank.
    pub(crate) fn check_len(&self) -> Result<()> {
        let Some(file) = &self.file else {
            return Ok(());
        };
        let now = file
            .metadata()
            .map_err(|e| Error::io(self.err_path(), "stat", e))?
            .len();
        if now < self.len {
            return Err(Error::Truncated {
                path: self.err_path(),
                expected: self.len,
                actual: now,
            });
        }
        Ok(())
    }
}

/// How many bytes of the file at `path` are in the page cache now, and its size:
/// `(resident, total)`, as `fincore(1)` reports. The file is mapped but not read: nothing
/// is faulted in, so asking does not change the answer.
///
/// # Errors
/// [`Error::NotFound`], [`Error::PermissionDenied`], [`Error::NotAFile`] (not a regular
/// file), [`Error::Io`] if `mmap` or `mincore` fails.
pub fn resident_bytes(path: impl AsRef<Path>) -> Result<(u64, u64)> {
    let path = path.as_ref();
    let file = File::open(path).map_err(|e| Error::io(path, "open", e))?;
    // Unlocked: a writer may hold the file, and asking must not refuse or disturb it. The
    // mapping's bytes are never read, only their residency asked.
    Mapping::map_file(file, path, Mode::ReadOnly, Guard::NotRead)?.resident()
}
