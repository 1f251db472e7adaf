//! Temporary files and atomic outputs.
//!
//! Every file outcore produces is first written under a temporary name in the destination's
//! directory, then flushed, synced and renamed over the final name: a reader sees either no
//! file or the whole one, never a half-written output. Temporary files are named
//! `.{final name}.outcore-tmp-{pid}-{n}` so that they are recognisable, and each is held
//! under an exclusive advisory lock for as long as its writer lives. A writer killed with
//! `SIGKILL` cannot remove its file, but it can no longer hold the lock either:
//! [`remove_stale_temp_files`] removes exactly the temporary files whose lock can be taken,
//! and never those of live writers.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{Error, Result};
use crate::sys::{self, Fallocate, Lock, LockOutcome};

/// The marker in the name of every temporary file outcore creates.
pub const TEMP_MARKER: &str = ".outcore-tmp-";

/// A new, locked, empty temporary file next to `dest` (or in `dir` if given), removed on drop
/// unless persisted.
#[derive(Debug)]
pub(crate) struct TempFile {
    path: PathBuf,
    file: File,
    /// Whether the exclusive lock is held (`Unsupported` on a filesystem without `flock`).
    lock: LockOutcome,
    keep: bool,
}

impl TempFile {
    /// Creates `.{stem}.outcore-tmp-{pid}-{n}` in `dir`.
    pub(crate) fn new_in(dir: &Path, stem: &str) -> Result<TempFile> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let pid = std::process::id();
        loop {
            let n = COUNTER.fetch_add(1, Ordering::Relaxed);
            let path = dir.join(format!(".{stem}{TEMP_MARKER}{pid}-{n}"));
            match OpenOptions::new()
                .read(true)
                .write(true)
                .create_new(true)
                .open(&path)
            {
                Ok(file) => {
                    let lock = sys::lock_file(&file, Lock::Exclusive, &path)?;
                    // A concurrent `remove_stale_temp_files` may have taken the lock and
                    // removed the file between its creation and our lock: then start over.
                    if !same_file(&file, &path) {
                        continue;
                    }
                    return Ok(TempFile {
                        path,
                        file,
                        lock,
                        keep: false,
                    });
                }
                // A stale file of an earlier process with the same pid: try the next name.
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(Error::io(dir, "create a temporary file in", e)),
            }
        }
    }

    /// A temporary file in the directory of `dest`, named after it.
    pub(crate) fn for_dest(dest: &Path) -> Result<TempFile> {
        let name = dest
            .file_name()
            .ok_or_else(|| Error::NotAFileName { path: dest.into() })?
            .to_string_lossy()
            .into_owned();
        TempFile::new_in(parent_dir(dest), &name)
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn file(&self) -> &File {
        &self.file
    }

    /// Whether the file's exclusive lock is held, or the filesystem has no `flock`.
    pub(crate) fn lock(&self) -> LockOutcome {
        self.lock
    }

    /// Allocates `len` bytes of disk blocks, so that writing through a mapping later cannot
    /// meet a full disk (which would be `SIGBUS`, not an error).
    pub(crate) fn allocate(&self, len: u64) -> Result<()> {
        allocate(&self.file, len, &self.path)
    }

    /// Gives the file the owner, group and permission bits of `old` (at `old_path`), before
    /// it replaces it. The owner is changed where this process may (root may); otherwise the
    /// file is this process's, with `old`'s group where this process belongs to it. ACLs and
    /// extended attributes are not copied.
    pub(crate) fn take_owner_and_mode(&self, old: &File, old_path: &Path) -> Result<()> {
        use std::os::unix::fs::MetadataExt;
        let meta = old.metadata().map_err(|e| Error::io(old_path, "stat", e))?;
        // Before the mode: a change of owner clears the set-user-ID and set-group-ID bits.
        // Where the owner cannot be given (not root), the group still can, if this process
        // belongs to it, so that the group keeps the access it had.
        if std::os::unix::fs::fchown(&self.file, Some(meta.uid()), Some(meta.gid())).is_err() {
            let _ = std::os::unix::fs::fchown(&self.file, None, Some(meta.gid()));
        }
        self.file
            .set_permissions(meta.permissions())
            .map_err(|e| Error::io(&self.path, "chmod", e))
    }

    /// Syncs the file and renames it to `dest`, then syncs the directory so the rename
    /// survives a crash. Nothing can fail after the rename: an error means `dest` is
    /// untouched. The lock stays with the file's other open descriptors.
    pub(crate) fn persist(mut self, dest: &Path) -> Result<()> {
        self.file
            .sync_all()
            .map_err(|e| Error::io(&self.path, "fsync", e))?;
        std::fs::rename(&self.path, dest).map_err(|e| Error::io(dest, "rename onto", e))?;
        self.keep = true;
        sync_dir(parent_dir(dest));
        Ok(())
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.keep {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Whether `path` still names the open `file` (same device and inode).
fn same_file(file: &File, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (file.metadata(), std::fs::metadata(path)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

/// The directory a path's file lives in (`.` for a bare file name).
pub(crate) fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Best effort: a directory fsync makes a rename durable; its failure loses nothing now.
fn sync_dir(dir: &Path) {
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

/// `posix_fallocate`: reserves `len` bytes of blocks for `file` (and sets its size). On a
/// filesystem that cannot reserve blocks, the file is only sized (possibly sparse).
pub(crate) fn allocate(file: &File, len: u64, path: &Path) -> Result<()> {
    if len == 0 {
        return Ok(());
    }
    // Larger than any file offset: no filesystem can hold it.
    if i64::try_from(len).is_err() {
        return Err(Error::DiskFull {
            path: path.into(),
            needed: Some(len),
            available: None,
        });
    }
    match sys::fallocate(file, len) {
        Ok(Fallocate::Allocated) => Ok(()),
        Ok(Fallocate::Unsupported) => file.set_len(len).map_err(|e| Error::io(path, "set_len", e)),
        Err(e) if sys::is_out_of_space(&e) => Err(Error::DiskFull {
            path: path.into(),
            needed: Some(len),
            available: free_space(parent_dir(path)).ok(),
        }),
        Err(e) => Err(Error::io(path, "posix_fallocate", e)),
    }
}

/// Bytes available to an unprivileged user on the filesystem holding `dir` (`statvfs`).
///
/// # Errors
/// I/O errors from `statvfs`, naming `dir`; [`Error::NulInPath`] if `dir` holds a NUL byte.
pub fn free_space(dir: impl AsRef<Path>) -> Result<u64> {
    use std::os::unix::ffi::OsStrExt;
    let dir = dir.as_ref();
    let c = std::ffi::CString::new(dir.as_os_str().as_bytes())
        .map_err(|_| Error::NulInPath { path: dir.into() })?;
    sys::statvfs_available(&c).map_err(|e| Error::io(dir, "statvfs", e))
}

/// Fails with [`Error::DiskFull`] if the filesystem holding `dir` has fewer than `needed`
/// bytes free.
///
/// # Errors
/// [`Error::DiskFull`], or the errors of [`free_space`].
pub fn ensure_free_space(dir: impl AsRef<Path>, needed: u64) -> Result<()> {
    let dir = dir.as_ref();
    let available = free_space(dir)?;
    if available < needed {
        return Err(Error::DiskFull {
            path: dir.into(),
            needed: Some(needed),
            available: Some(available),
        });
    }
    Ok(())
}

/// Removes the temporary files in `dir` left behind by outcore writers that died (killed,
/// crashed) before finishing; files of writers still running are left alone. Returns how
/// many were removed.
///
/// A temporary file is one whose name contains [`TEMP_MARKER`]; it is stale when the
/// process named in it (`…{pid}-{n}`) is not running and its advisory lock can be taken (a
/// live writer holds it exclusively, once it has it: the pid covers the moment between
/// creating and locking). The temporary
/// directories of Zarr outputs are locked and removed (with their contents) the same way.
///
/// # Errors
/// I/O errors listing `dir`. Files that vanish or cannot be opened meanwhile are skipped.
pub fn remove_stale_temp_files(dir: impl AsRef<Path>) -> Result<usize> {
    let dir = dir.as_ref();
    let mut removed = 0;
    let entries = std::fs::read_dir(dir).map_err(|e| Error::io(dir, "list", e))?;
    for entry in entries.flatten() {
        let name = entry.file_name();
        if !name.to_string_lossy().contains(TEMP_MARKER) {
            continue;
        }
        if owner_alive(&name.to_string_lossy(), TEMP_MARKER) {
            continue;
        }
        let path = entry.path();
        let Ok(file) = File::open(&path) else {
            continue;
        };
        if file.try_lock().is_ok() {
            // Zarr outputs are written into temporary directories.
            let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
            let gone = if is_dir {
                std::fs::remove_dir_all(&path)
            } else {
                std::fs::remove_file(&path)
            };
            removed += usize::from(gone.is_ok());
        }
    }
    Ok(removed)
}

/// Whether the process named in a temporary name (`…MARKER{pid}-{n}…`) is running. Its
/// files are not stale even when unlocked: between creating a file and locking it, a
/// process holds no lock yet, and another's clean-up must not take the file then.
pub(crate) fn owner_alive(name: &str, marker: &str) -> bool {
    let Some(rest) = name.split(marker).nth(1) else {
        return false;
    };
    let pid: String = rest.chars().take_while(char::is_ascii_digit).collect();
    !pid.is_empty() && Path::new("/proc").join(&pid).exists()
}
