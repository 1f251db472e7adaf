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
//!   `LOCK_GRACE` in the source: a child process being spawned briefly shares our locks),
//!   never a wait for the other user.
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
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use memmap2::{Mmap, MmapMut, MmapOptions};

use crate::chunk::page_size;
use crate::error::{Error, LockKind, Result};

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

/// Which advisory lock a mapping holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Lock {
    Shared,
    Exclusive,
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
            .finish()
    }
}

/// How long a conflicting lock is retried before it is refused. Between `fork` and `exec`, a
/// child process spawned by any thread holds copies of the parent's descriptors, and with
/// them its `flock` locks: a file this process has just closed can look locked for that
/// instant. A brief retry rides that out; a real second user is still refused quickly.
const LOCK_GRACE: std::time::Duration = std::time::Duration::from_millis(100);

/// Takes the advisory lock `lock` on `file`, or fails (within [`LOCK_GRACE`], never a wait
/// for the other user).
pub(crate) fn lock_file(file: &File, lock: Lock, path: &Path) -> Result<()> {
    let start = std::time::Instant::now();
    let mut pause = std::time::Duration::from_millis(1);
    loop {
        let res = match lock {
            Lock::Shared => file.try_lock_shared(),
            Lock::Exclusive => file.try_lock(),
        };
        match res {
            Ok(()) => return Ok(()),
            Err(std::fs::TryLockError::WouldBlock) if start.elapsed() < LOCK_GRACE => {
                std::thread::sleep(pause);
                pause = (pause * 2).min(std::time::Duration::from_millis(20));
            }
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(Error::Locked {
                    path: path.into(),
                    mode: match lock {
                        Lock::Shared => LockKind::Shared,
                        Lock::Exclusive => LockKind::Exclusive,
                    },
                })
            }
            // A filesystem without flock support: the locks are advisory, so carry on
            // unlocked rather than refuse to open the file at all.
            Err(std::fs::TryLockError::Error(_)) => return Ok(()),
        }
    }
}

impl Mapping {
    /// Opens and maps `path`. `lock` is `None` only for the unsafe cooperative constructor.
    pub(crate) fn open(path: &Path, mode: Mode, lock: Option<Lock>) -> Result<Mapping> {
        let file = OpenOptions::new()
            .read(true)
            .write(mode == Mode::ReadWrite)
            .open(path)
            .map_err(|e| Error::io(path, "open", e))?;
        if let Some(lock) = lock {
            lock_file(&file, lock, path)?;
        }
        Mapping::map_file(file, path, mode)
    }

    /// Maps an already opened (and locked) file.
    pub(crate) fn map_file(file: File, path: &Path, mode: Mode) -> Result<Mapping> {
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
        // mapped. The caller holds the advisory lock that rules this out among cooperating
        // processes (see the module docs for what remains); the length is the file's current
        // length, so every mapped page exists now.
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
            fadvise_dontneed(file, start as u64, len as u64)
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
            Some(file) => sync_file_range_write(file, range.start as u64, range.len() as u64),
            None => m.flush_async_range(range.start, range.len()),
        }
        .map_err(|e| Error::io(self.err_path(), "sync_file_range", e))
    }

    /// How many bytes of the mapping are resident in memory now (`mincore`), and the
    /// mapping's length: `(resident, total)`. Nothing is read or faulted in; a partly
    /// resident last page counts as the bytes of it that belong to the mapping.
    pub(crate) fn resident(&self) -> Result<(u64, u64)> {
        let bytes = self.bytes();
        let total = bytes.len();
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
            // SAFETY: `bytes` is a live mapping of `total` bytes that starts on a page
            // boundary (mmap returns page-aligned addresses, and `start` is a multiple of the
            // page size), so `[start, start + len)` lies within it; mincore only inspects the
            // page tables for that range and writes one byte per page into `vec`, which holds
            // at least `len.div_ceil(page) == n` bytes. It reads no mapped memory and faults
            // nothing in.
            let rc = unsafe {
                libc::mincore(
                    bytes.as_ptr().add(start) as *mut libc::c_void,
                    len,
                    vec.as_mut_ptr(),
                )
            };
            if rc != 0 {
                return Err(Error::io(
                    self.err_path(),
                    "mincore",
                    std::io::Error::last_os_error(),
                ));
            }
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

/// `sync_file_range(SYNC_FILE_RANGE_WRITE)`: starts writing the range's dirty pages back
/// without waiting for them.
fn sync_file_range_write(file: &File, offset: u64, len: u64) -> std::io::Result<()> {
    // SAFETY: sync_file_range only reads its integer arguments; the descriptor is valid for
    // the lifetime of `file`.
    let rc = unsafe {
        libc::sync_file_range(
            file.as_raw_fd(),
            offset as libc::off64_t,
            len as libc::off64_t,
            libc::SYNC_FILE_RANGE_WRITE,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// `posix_fadvise(POSIX_FADV_DONTNEED)`: asks the kernel to drop the file's clean cached
/// pages in the range (dirty pages must be written back first to be dropped).
pub(crate) fn fadvise_dontneed(file: &File, offset: u64, len: u64) -> std::io::Result<()> {
    // SAFETY: posix_fadvise only reads its integer arguments; the descriptor is valid for
    // the lifetime of `file`.
    let rc = unsafe {
        libc::posix_fadvise(
            file.as_raw_fd(),
            offset as libc::off_t,
            len as libc::off_t,
            libc::POSIX_FADV_DONTNEED,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::from_raw_os_error(rc))
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
    Mapping::map_file(file, path, Mode::ReadOnly)?.resident()
}
