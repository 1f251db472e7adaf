//! File I/O for the external sort: large positioned reads and writes that do not leave their
//! pages behind in the page cache.
//!
//! Under a memory cgroup the page cache a process fills is charged to it, so streaming several
//! gigabytes through `read`/`write` would push a capped process to its limit even though its
//! own buffers are small. Every read here is followed by `POSIX_FADV_DONTNEED` on the bytes it
//! consumed, and every write is pushed to the disk with `sync_file_range` in chunks, a few of
//! them in flight, each waited for and dropped once newer ones are, so the cache holds a few
//! chunks per stream ([`StreamWriter`]).
//!
//! `POSIX_FADV_DONTNEED` only drops page-cache folios that lie wholly inside the range, and
//! the page cache holds large folios (up to 2 MiB) that do not respect our chunk boundaries
//! (a `.npy`'s data starts at byte 128, say). Dropping exactly the bytes just read left about
//! half of a file in the cache (measured: 477 MiB of a 1 GiB file). So each drop is widened
//! down to the previous [`DROP_ALIGN`] boundary, into data already consumed: the folio that
//! straddles the end of one chunk goes with the next chunk's drop.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

use crate::error::{Error, Result};
use crate::sys::{self, Writeback};

/// Kernel hints for a byte range of an open file (`posix_fadvise`, wrapped in [`crate::sys`]).
pub(crate) use crate::sys::Hint;

/// Drop ranges are aligned to this (the largest page-cache folio on x86-64).
const DROP_ALIGN: u64 = 2 << 20;

/// Drops the page cache of a stream's consumed bytes `start..end`, widened down to the
/// aligned boundary at or below `start` (see the module docs). Small folios are dropped up to
/// `end`; a large one that straddles `end` stays until the next chunk's drop.
fn drop_consumed(file: &File, start: u64, end: u64) {
    let from = start / DROP_ALIGN * DROP_ALIGN;
    if end > from {
        advise(file, from, end - from, Hint::DontNeed);
    }
}

/// Drops every cached page of `file` (clean ones; dirty pages are written back first by the
/// caller if they are to go too).
pub(crate) fn drop_all(file: &File) {
    advise(file, 0, 0, Hint::DontNeed);
}

/// Gives the kernel `hint` for a byte range of `file` (`len == 0`: to the end). Failures are
/// ignored: they are hints, and a file system that does not support them still gives correct
/// results.
pub(crate) fn advise(file: &File, offset: u64, len: u64, hint: Hint) {
    let _ = sys::fadvise(file, offset, len, hint);
}

/// Asks the kernel to read bytes `offset..offset + len` of `file` into the page cache
/// (`POSIX_FADV_WILLNEED`), in requests of at most `chunk` bytes ([`will_need_chunk`]).
pub(crate) fn will_need(file: &File, offset: u64, len: u64, chunk: u64) {
    let end = offset + len;
    let mut at = offset;
    while at < end {
        let n = chunk.max(1).min(end - at);
        advise(file, at, n, Hint::WillNeed);
        at += n;
    }
}

/// The request size for [`will_need`] on `file`: Linux reads at most the larger of the
/// device's `max_sectors_kb` and `read_ahead_kb` per `POSIX_FADV_WILLNEED` and silently drops
/// the rest of the range ([`sys::willneed_limit`]). With common defaults (128 KiB of
/// read-ahead, 1280 KiB or less per request) a merge's window of a few MiB would be read
/// ahead only in its first MiB, and the rest read synchronously, a unit at a time, when the
/// merge got there. Where the limit cannot be read, 128 KiB (the default `read_ahead_kb`).
pub(crate) fn will_need_chunk(file: &File) -> u64 {
    sys::willneed_limit(file).unwrap_or(128 << 10)
}

/// Frees the disk blocks of bytes `offset..offset + len` of a temporary `file` whose data
/// there is no longer needed ([`sys::punch_hole`]). Failures are ignored: the blocks are
/// then freed when the file is removed.
pub(crate) fn free(file: &File, offset: u64, len: u64) {
    let _ = sys::punch_hole(file, offset, len);
}

/// The error for a sort's file that ends before byte `expected` (shortened by someone else
/// while the sort ran).
pub(crate) fn truncated(file: &File, path: &Path, expected: u64) -> Error {
    Error::Truncated {
        path: path.to_path_buf(),
        expected,
        actual: file.metadata().map(|m| m.len()).unwrap_or(0),
    }
}

/// Reads `buf.len()` bytes at `offset`, then drops them from the page cache.
pub(crate) fn read_at(file: &File, path: &Path, buf: &mut [u8], offset: u64) -> Result<()> {
    file.read_exact_at(buf, offset).map_err(|e| {
        if e.kind() == std::io::ErrorKind::UnexpectedEof {
            truncated(file, path, offset + buf.len() as u64)
        } else {
            Error::io(path, "read", e)
        }
    })?;
    drop_consumed(file, offset, offset + buf.len() as u64);
    Ok(())
}

/// Bytes of written data handed to the disk at once (one `sync_file_range`): large enough
/// for full-sized requests whatever size the pieces written are.
const WRITEBACK_CHUNK: u64 = 4 << 20;

/// Write-back chunks a stream keeps in flight before it waits for the oldest. With one, the
/// writer stalled on every chunk until the disk had taken the one before; two keep the
/// disk's queue busy while the writer fills the next.
const WRITEBACK_DEPTH: usize = 2;

/// Writes a stream of pieces at increasing offsets of a file (its own range of the file,
/// so several writers may share one file), keeping few of its pages in the page cache:
/// every [`WRITEBACK_CHUNK`] written is handed to the disk at once (`sync_file_range`), and
/// once more than [`WRITEBACK_DEPTH`] chunks are in flight the oldest is waited for and
/// dropped. The cache holds at most about `WRITEBACK_DEPTH + 1` chunks per stream.
pub(crate) struct StreamWriter<'a> {
    file: &'a File,
    path: &'a Path,
    /// Where the next piece goes.
    offset: u64,
    /// Start of the bytes written but not yet handed to the disk (`started..offset`).
    started: u64,
    /// Chunks handed to the disk and not yet waited for, oldest first.
    in_flight: std::collections::VecDeque<(u64, u64)>,
}

impl<'a> StreamWriter<'a> {
    pub(crate) fn new(file: &'a File, path: &'a Path, offset: u64) -> Self {
        StreamWriter {
            file,
            path,
            offset,
            started: offset,
            in_flight: std::collections::VecDeque::with_capacity(WRITEBACK_DEPTH + 1),
        }
    }

    pub(crate) fn write(&mut self, bytes: &[u8]) -> Result<()> {
        if bytes.is_empty() {
            return Ok(());
        }
        self.file
            .write_all_at(bytes, self.offset)
            .map_err(|e| Error::io(self.path, "write", e))?;
        self.offset += bytes.len() as u64;
        if self.offset - self.started >= WRITEBACK_CHUNK {
            self.start_writeback()?;
            while self.in_flight.len() > WRITEBACK_DEPTH {
                self.retire_oldest()?;
            }
        }
        Ok(())
    }

    /// Hands the bytes written since the last call to the disk.
    fn start_writeback(&mut self) -> Result<()> {
        let (off, len) = (self.started, self.offset - self.started);
        if len > 0 {
            sys::sync_file_range(self.file, off, len, Writeback::Start)
                .map_err(|e| Error::io(self.path, "write back", e))?;
            self.in_flight.push_back((off, len));
            self.started = self.offset;
        }
        Ok(())
    }

    /// Waits for the oldest chunk in flight and drops it from the cache.
    fn retire_oldest(&mut self) -> Result<()> {
        if let Some((off, len)) = self.in_flight.pop_front() {
            sys::sync_file_range(self.file, off, len, Writeback::Wait)
                .map_err(|e| Error::io(self.path, "write back", e))?;
            drop_consumed(self.file, off, off + len);
        }
        Ok(())
    }

    /// Hands the rest to the disk, waits for every chunk and drops them from the cache.
    /// Durability is the caller's `fdatasync`.
    ///
    /// # Errors
    /// An I/O error if the write-back of a chunk failed.
    pub(crate) fn finish(mut self) -> Result<()> {
        self.start_writeback()?;
        while !self.in_flight.is_empty() {
            self.retire_oldest()?;
        }
        Ok(())
    }
}

impl Drop for StreamWriter<'_> {
    fn drop(&mut self) {
        // Only reached with chunks left on an error path, which reports its own error: wait
        // for what was started, so no write-back of a file being removed is left running.
        while !self.in_flight.is_empty() {
            if self.retire_oldest().is_err() {
                break;
            }
        }
    }
}

/// Creates `path` for writing (failing if it exists), mapping errors to outcore's.
pub(crate) fn create_new(path: &Path) -> Result<File> {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(|e| Error::io(path, "create", e))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A range three times what one `POSIX_FADV_WILLNEED` reads on the test directory's disk
    /// is read ahead whole. (Where evicted pages stay, as on tmpfs, there is nothing to see.)
    #[test]
    fn will_need_reads_the_whole_range() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("runs");
        let file = File::create(&path).unwrap();
        let chunk = will_need_chunk(&file).clamp(64 << 10, 16 << 20);
        let len = 3 * chunk;
        file.write_all_at(&vec![7u8; len as usize], 0).unwrap();
        file.sync_all().unwrap();
        drop(file);
        let file = File::open(&path).unwrap();
        drop_all(&file);
        let resident = || crate::mmap::resident_bytes(&path).unwrap().0;
        if resident() != 0 {
            return;
        }
        advise(&file, 0, 0, Hint::Random);
        will_need(&file, 0, len, chunk);
        let start = std::time::Instant::now();
        while resident() < len && start.elapsed() < std::time::Duration::from_secs(10) {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        assert_eq!(resident(), len, "read ahead in requests of {chunk} bytes");
    }
}
