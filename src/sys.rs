//! The operating system, seen from one place: what outcore reads from `/proc` and `/sys`
//! and the system calls it makes beyond memmap2's (`flock`, `posix_fadvise`,
//! `sync_file_range`, `posix_fallocate`, `fallocate` to punch holes, `mincore`, `madvise` on
//! buffers, `open` with `O_DIRECT`, `getrlimit`, `statvfs`, `sysconf`).
//!
//! Every `unsafe` block calling libc sits here with a `// SAFETY:` comment that says why it
//! holds; the rest of the crate calls these safe wrappers and never names `libc`. The
//! mapping itself (memmap2) stays in [`crate::mmap`], temporary files in [`crate::temp`].

use std::ffi::CStr;
use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::path::Path;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};

/// The memory limit of this process's memory cgroup: the least `memory.max` (cgroup v2) or
/// `memory.limit_in_bytes` (v1) of its cgroup and every cgroup above it. `None` when there
/// is no limit or no cgroup file system.
pub(crate) fn cgroup_memory_limit() -> Option<u64> {
    let cgroups = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    let mut best: Option<u64> = None;
    for line in cgroups.lines() {
        // "hierarchy-id:controllers:path"; v2 is "0::/path".
        let mut parts = line.splitn(3, ':');
        let (Some(_), Some(controllers), Some(path)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        let limit = if controllers.is_empty() {
            crate::limits::cgroup_v2_limit(Path::new("/sys/fs/cgroup"), path)
        } else if controllers.split(',').any(|c| c == "memory") {
            crate::limits::cgroup_v1_limit(Path::new("/sys/fs/cgroup/memory"), path)
        } else {
            None
        };
        best = match (best, limit) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
    }
    best
}

/// `MemAvailable` from `/proc/meminfo`, in bytes.
pub(crate) fn mem_available() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let kib: u64 = info
        .lines()
        .find_map(|l| l.strip_prefix("MemAvailable:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    kib.checked_mul(1024)
}

/// The soft address-space limit `RLIMIT_AS` (`ulimit -v`), `None` when unlimited.
pub(crate) fn address_space_limit() -> Option<u64> {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one `rlimit` through the pointer, which points to a live,
    // properly aligned `rlimit` on our stack.
    let rc = unsafe { libc::getrlimit(libc::RLIMIT_AS, &mut r) };
    // rlim_t is u64 on 64-bit Linux, narrower elsewhere.
    #[allow(clippy::unnecessary_cast)]
    let cur = r.rlim_cur as u64;
    (rc == 0 && r.rlim_cur != libc::RLIM_INFINITY).then_some(cur)
}

/// The soft limit on open files of this process (`RLIMIT_NOFILE`), or 1024 if unknown.
pub(crate) fn open_file_limit() -> u64 {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one `rlimit` through the pointer, which points to a live,
    // properly aligned `rlimit` on our stack; no other memory is touched.
    let rc = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) };
    if rc != 0 || r.rlim_cur == libc::RLIM_INFINITY {
        return if rc != 0 { 1024 } else { 1 << 20 };
    }
    r.rlim_cur
}

/// The size of a virtual-memory page (`sysconf(_SC_PAGESIZE)`, read once), 4096 if unknown.
pub(crate) fn page_size() -> usize {
    static PAGE: OnceLock<usize> = OnceLock::new();
    *PAGE.get_or_init(|| {
        // SAFETY: sysconf has no preconditions; it only reads a system constant.
        let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        usize::try_from(p).ok().filter(|&p| p > 0).unwrap_or(4096)
    })
}

/// Which advisory lock (`flock(2)`) to take on a file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Lock {
    /// Shared (`LOCK_SH`): readers, and the cooperative writers of `open_shared`.
    Shared,
    /// Exclusive (`LOCK_EX`): writers.
    Exclusive,
}

/// What [`lock_file`] achieved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum LockOutcome {
    /// This process holds the lock until the file's last descriptor is closed.
    Held,
    /// The filesystem refused `flock` (some network and FUSE filesystems do not support
    /// it): no lock is held. Locks are advisory, so the file is used anyway; what protects
    /// it then is the contract the safe constructors document (see the crate docs).
    Unsupported,
}

/// How long a conflicting lock is retried before it is refused. Between `fork` and `exec`, a
/// child process spawned by any thread holds copies of the parent's descriptors, and with
/// them its `flock` locks: a file this process has just closed can look locked for that
/// instant. A brief retry rides that out; a real second user is still refused quickly.
pub(crate) const LOCK_GRACE: Duration = Duration::from_millis(100);

/// Takes the advisory lock `lock` on `file` (`flock` with `LOCK_NB`, through std), or fails
/// within [`LOCK_GRACE`], never waiting for the other user. On a filesystem without `flock`
/// it reports [`LockOutcome::Unsupported`] instead of failing.
///
/// # Errors
/// [`Error::Locked`] if another open file description holds a conflicting lock.
pub(crate) fn lock_file(file: &File, lock: Lock, path: &Path) -> Result<LockOutcome> {
    let start = Instant::now();
    let mut pause = Duration::from_millis(1);
    loop {
        let res = match lock {
            Lock::Shared => file.try_lock_shared(),
            Lock::Exclusive => file.try_lock(),
        };
        match res {
            Ok(()) => return Ok(LockOutcome::Held),
            Err(std::fs::TryLockError::WouldBlock) if start.elapsed() < LOCK_GRACE => {
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(20));
            }
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(Error::Locked {
                    path: path.into(),
                    mode: match lock {
                        Lock::Shared => crate::error::LockKind::Shared,
                        Lock::Exclusive => crate::error::LockKind::Exclusive,
                    },
                })
            }
            // A filesystem without flock support: the locks are advisory, so carry on
            // unlocked rather than refuse to open the file at all, and say so.
            Err(std::fs::TryLockError::Error(_)) => return Ok(LockOutcome::Unsupported),
        }
    }
}

/// A hint to the kernel about a byte range of an open file (`posix_fadvise`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Hint {
    /// The file is read front to back: let readahead work.
    Sequential,
    /// Reads are large and scattered: no readahead beyond what is asked for (each stream of a
    /// merge would otherwise keep its own readahead window in the cache).
    Random,
    /// The bytes will not be needed again: drop them from the page cache (clean pages only;
    /// dirty pages must be written back first to be dropped).
    DontNeed,
    /// The bytes will be read soon: start reading them into the page cache now.
    WillNeed,
}

/// `posix_fadvise(file, offset, len, hint)`; `len == 0` means "to the end of the file".
/// A range beyond what a file offset can express holds no bytes of any file: nothing to do.
///
/// # Errors
/// The error `posix_fadvise` returns.
pub(crate) fn fadvise(file: &File, offset: u64, len: u64, hint: Hint) -> io::Result<()> {
    let advice = match hint {
        Hint::Sequential => libc::POSIX_FADV_SEQUENTIAL,
        Hint::Random => libc::POSIX_FADV_RANDOM,
        Hint::DontNeed => libc::POSIX_FADV_DONTNEED,
        Hint::WillNeed => libc::POSIX_FADV_WILLNEED,
    };
    let (Ok(off), Ok(len)) = (libc::off_t::try_from(offset), libc::off_t::try_from(len)) else {
        return Ok(());
    };
    // SAFETY: posix_fadvise only reads its integer arguments; the descriptor is open for the
    // lifetime of `file`, which outlives the call.
    let rc = unsafe { libc::posix_fadvise(file.as_raw_fd(), off, len, advice) };
    if rc == 0 {
        Ok(())
    } else {
        // posix_fadvise returns the error number instead of setting errno.
        Err(io::Error::from_raw_os_error(rc))
    }
}

/// The most bytes one `POSIX_FADV_WILLNEED` on `file` reads: Linux caps each call at the
/// larger of its block device's `max_sectors_kb` and `read_ahead_kb` (sysfs) and drops the
/// rest of the range without a word. `None` when the file's device has no request queue in
/// sysfs (tmpfs, network and some stacked filesystems) or its limits cannot be read.
pub(crate) fn willneed_limit(file: &File) -> Option<u64> {
    use std::os::unix::fs::MetadataExt;
    let dev = file.metadata().ok()?.dev();
    let base = std::path::PathBuf::from(format!(
        "/sys/dev/block/{}:{}",
        libc::major(dev),
        libc::minor(dev)
    ));
    // A partition's requests go to its disk's queue.
    let queue = [base.join("queue"), base.join("../queue")]
        .into_iter()
        .find(|q| q.is_dir())?;
    let kib = |name: &str| -> Option<u64> {
        std::fs::read_to_string(queue.join(name))
            .ok()?
            .trim()
            .parse()
            .ok()
    };
    let limit = kib("max_sectors_kb")?.max(kib("read_ahead_kb").unwrap_or(0));
    (limit > 0).then_some(limit << 10)
}

/// What [`sync_file_range`] does with the range's dirty pages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Writeback {
    /// Start writing them back and return (`SYNC_FILE_RANGE_WRITE`).
    Start,
    /// Write them back and wait until they are on the disk (`WAIT_BEFORE | WRITE |
    /// WAIT_AFTER`). Waiting consumes the file's pending write-back error, so a failed
    /// write-back is reported here and a later `fdatasync` would no longer see it.
    Wait,
}

/// `sync_file_range(file, offset, len, ...)`. A range beyond what a file offset can express
/// holds no bytes of any file: nothing to do.
///
/// # Errors
/// The error `sync_file_range` sets (for [`Writeback::Wait`], a failed write-back).
pub(crate) fn sync_file_range(
    file: &File,
    offset: u64,
    len: u64,
    how: Writeback,
) -> io::Result<()> {
    let flags = match how {
        Writeback::Start => libc::SYNC_FILE_RANGE_WRITE,
        Writeback::Wait => {
            libc::SYNC_FILE_RANGE_WAIT_BEFORE
                | libc::SYNC_FILE_RANGE_WRITE
                | libc::SYNC_FILE_RANGE_WAIT_AFTER
        }
    };
    let (Ok(off), Ok(len)) = (
        libc::off64_t::try_from(offset),
        libc::off64_t::try_from(len),
    ) else {
        return Ok(());
    };
    // SAFETY: sync_file_range only reads its integer arguments; the descriptor is open for
    // the lifetime of `file`, which outlives the call.
    let rc = unsafe { libc::sync_file_range(file.as_raw_fd(), off, len, flags) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// What [`fallocate`] achieved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Fallocate {
    /// The blocks are reserved and the file has (at least) the asked size.
    Allocated,
    /// The filesystem cannot reserve blocks (`EOPNOTSUPP`, `ENOSYS`, `EINVAL`): nothing was
    /// done; the caller may size the file without reserving them.
    Unsupported,
}

/// `posix_fallocate(file, 0, len)`: reserves `len` bytes of disk blocks for `file` and
/// extends it to `len` bytes if shorter.
///
/// # Errors
/// The error `posix_fallocate` returns ([`is_out_of_space`] tells a full disk or quota, or a
/// length the filesystem cannot hold, `EFBIG`, which is also what a length beyond any file
/// offset gives).
pub(crate) fn fallocate(file: &File, len: u64) -> io::Result<Fallocate> {
    let Ok(off_len) = libc::off_t::try_from(len) else {
        return Err(io::Error::from_raw_os_error(libc::EFBIG));
    };
    // SAFETY: posix_fallocate only reads its integer arguments; the descriptor is open for
    // the lifetime of `file`, which outlives the call.
    let rc = unsafe { libc::posix_fallocate(file.as_raw_fd(), 0, off_len) };
    match rc {
        0 => Ok(Fallocate::Allocated),
        libc::EOPNOTSUPP | libc::ENOSYS | libc::EINVAL => Ok(Fallocate::Unsupported),
        // posix_fallocate returns the error number instead of setting errno.
        e => Err(io::Error::from_raw_os_error(e)),
    }
}

/// Frees the disk blocks of bytes `offset..offset + len` of `file` (`fallocate` with
/// `FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE`): they read as zeros afterwards and the size
/// does not change. Only whole filesystem blocks are freed; a partial block at either end
/// is zeroed, so callers pass block-aligned ranges.
///
/// # Errors
/// The error `fallocate` reports (`EOPNOTSUPP` where the filesystem cannot punch holes).
pub(crate) fn punch_hole(file: &File, offset: u64, len: u64) -> io::Result<()> {
    let (Ok(off), Ok(len)) = (libc::off_t::try_from(offset), libc::off_t::try_from(len)) else {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    };
    // SAFETY: fallocate only reads its integer arguments; the descriptor is open for the
    // lifetime of `file`, which outlives the call.
    let rc = unsafe {
        libc::fallocate(
            file.as_raw_fd(),
            libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE,
            off,
            len,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Opens `path` again for reading with `O_DIRECT`: reads that go from the disk straight into
/// the caller's buffer, bypassing the page cache. Offsets, lengths and buffer addresses must
/// then be multiples of the device's logical block size ([`DIRECT_ALIGN`] is enough for
/// every common device).
///
/// # Errors
/// The error `open` reports; `EINVAL` where the filesystem has no direct I/O (tmpfs before
/// Linux 6.6, some network filesystems).
pub(crate) fn open_direct(path: &Path) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECT)
        .open(path)
}

/// Opens the file `file` has open once more, for writing with `O_DIRECT`: writes that go
/// from the caller's buffer straight to the disk, with the alignment rules of
/// [`open_direct`]. It opens `/proc/self/fd/N`, which names the open file itself, so a
/// file renamed or replaced at its path meanwhile is not the one opened. (Setting
/// `O_DIRECT` with `fcntl` on a duplicate would change `file`'s own writes too: duplicates
/// share their flags.)
///
/// # Errors
/// As [`open_direct`]; also where `/proc` is not mounted.
pub(crate) fn reopen_direct_for_writing(file: &File) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_DIRECT)
        .open(format!("/proc/self/fd/{}", file.as_raw_fd()))
}

/// Alignment that satisfies `O_DIRECT` on every common device: 4 KiB, the largest logical
/// block size in use (most devices need 512 bytes).
pub(crate) const DIRECT_ALIGN: usize = 4096;

/// Whether `e` is the `EINVAL` a direct read or write returns when the filesystem or device
/// refuses its alignment: the caller then moves the same bytes through the page cache.
pub(crate) fn is_invalid_argument(e: &io::Error) -> bool {
    e.raw_os_error() == Some(libc::EINVAL)
}

/// Asks for the memory of `v`'s whole capacity to be backed by transparent huge pages
/// (`madvise(MADV_HUGEPAGE)` on the whole pages inside it), where the system allows them
/// only on request. A buffer that the disk reads into directly is then physically
/// contiguous in 2 MiB pieces, and a read of several MiB goes to the device as a few large
/// requests instead of many 1 MiB ones (a request holds at most `max_segments` pieces of
/// memory, 254 on virtio disks). Best effort: failures are ignored.
pub(crate) fn advise_huge_pages<T>(v: &mut Vec<T>) {
    let page = page_size();
    let start = v.as_mut_ptr() as usize;
    let end = start + v.capacity() * std::mem::size_of::<T>();
    let (from, to) = (start.next_multiple_of(page), end / page * page);
    if to <= from {
        return;
    }
    // SAFETY: MADV_HUGEPAGE changes neither the contents nor the validity of any memory: it
    // only marks the range as eligible for huge pages. The range lies inside `v`'s own
    // allocation, held by the exclusive borrow for the call.
    let _ = unsafe { libc::madvise(from as *mut libc::c_void, to - from, libc::MADV_HUGEPAGE) };
}

/// Makes glibc's `malloc` serve every block of 1 MiB or more from its own `mmap` and give it
/// back to the system when it is freed, for the rest of the process (`mallopt`'s
/// `M_MMAP_THRESHOLD`; nothing on other systems or allocators). Called by every external
/// sort, once.
///
/// By default glibc raises that threshold each time such a block is freed (up to 32 MiB),
/// so the buffers of a few MiB that a sort's phases allocate and free come from its heaps,
/// and once freed stay resident: a memory cgroup keeps charging them, and the next buffers
/// come on top. An external sort under a 384 MiB budget peaked at 513 MiB of memory this
/// way (median of five runs; 390 MiB with the fixed threshold, in the same time), and was
/// OOM-killed under a 512 MiB cap. Handing free memory back between phases
/// (`malloc_trim`) was not enough: the final merge's own buffers churn.
pub(crate) fn bound_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        static ONCE: std::sync::Once = std::sync::Once::new();
        ONCE.call_once(|| {
            // SAFETY: mallopt only changes a tuning parameter of the allocator, under its
            // own lock; it moves and invalidates no allocation.
            unsafe {
                libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
            }
        });
    }
}

/// Whether `e` says the disk or the user's quota is full, or the file would be larger than
/// the filesystem allows (`ENOSPC`, `EDQUOT`, `EFBIG`).
pub(crate) fn is_out_of_space(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::ENOSPC | libc::EDQUOT | libc::EFBIG)
    )
}

/// Bytes available to an unprivileged user on the filesystem holding `dir`: `statvfs`'s
/// `f_bavail * f_frsize`.
///
/// # Errors
/// The error `statvfs` sets.
pub(crate) fn statvfs_available(dir: &CStr) -> io::Result<u64> {
    let mut st = std::mem::MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: `dir` is a valid NUL-terminated string and `st` points to writable memory of
    // the right type and alignment, which statvfs fills on success.
    let rc = unsafe { libc::statvfs(dir.as_ptr(), st.as_mut_ptr()) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: statvfs returned 0, so it initialised `st`.
    let st = unsafe { st.assume_init() };
    #[allow(clippy::unnecessary_cast)] // the field types differ between platforms
    Ok((st.f_bavail as u64).saturating_mul(st.f_frsize as u64))
}

/// `mincore` over the `len` bytes at address `addr`, which must start on a page boundary:
/// writes one status byte per page into `status` (bit 0 set: the page is resident). The
/// range is named by its address, not borrowed: nothing in it is read or faulted in, so a
/// mapping whose file may change under it can be asked too.
///
/// # Errors
/// [`io::ErrorKind::InvalidInput`] if `status` has fewer bytes than the range has pages;
/// otherwise the error `mincore` sets (`EINVAL` if `addr` is not page-aligned, `ENOMEM` if
/// part of the range is not mapped).
pub(crate) fn mincore(addr: usize, len: usize, status: &mut [u8]) -> io::Result<()> {
    if len == 0 {
        return Ok(());
    }
    if status.len() < len.div_ceil(page_size()) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "mincore: status buffer shorter than the range's pages",
        ));
    }
    // SAFETY: mincore does not access the memory at `addr`: the kernel only looks the range
    // up in this process's page tables and fails (EINVAL, ENOMEM) for an unaligned or
    // unmapped one, so any address is sound. It writes one byte per page of the range,
    // `len.div_ceil(page)` bytes, into `status`, a live, exclusively borrowed buffer at
    // least that long (checked above).
    let rc = unsafe { libc::mincore(addr as *mut libc::c_void, len, status.as_mut_ptr()) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}
