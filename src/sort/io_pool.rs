//! I/O threads that keep a merge's reads in flight while the merging threads compute.
//!
//! A merge reads every run a block at a time. Read synchronously, through the page cache,
//! each block costs the merging thread a wait (when read-ahead has not arrived yet) and two
//! copies' worth of kernel work: the page cache is filled, copied out, and dropped again.
//! Here the runs are read with `O_DIRECT` straight into the merge's own buffers by a few
//! threads that do nothing else: each cursor merges one block while the next is read into
//! a second buffer ([`IoPool::read`]). The disk sees several large requests at once, the
//! merging threads wait only when the disk is behind, and the page cache holds none of the
//! runs, so a memory cgroup is charged only for the buffers the budget counts.
//!
//! The merged output goes out the same way ([`DirectWriter`]): the merging thread copies
//! it into an aligned block, an I/O thread writes the full block with `O_DIRECT` while the
//! merge fills the next, and the few bytes at either end of a part's range that do not
//! fill a whole 4 KiB block go through the page cache.

use std::collections::VecDeque;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::{mpsc, Mutex};

use bytemuck::Pod;

use super::fileio::Hint;
use super::merge::BufferPool;
use crate::error::{Error, Result};
use crate::sys::{self, Writeback, DIRECT_ALIGN};

/// Threads reading for the merges of one phase. Each has one read outstanding, so this is
/// the read queue depth the disk sees. On this project's test disk (a virtio SSD), 4 and 8
/// merged alike and 16 was slower (BENCHMARKS.md, "The final merge reads its runs
/// directly").
pub(crate) const IO_THREADS: usize = 4;

/// A block to read: `len` bytes at `offset` of `file` into `buf`, starting at element `at`
/// (4 KiB aligned in memory, as `O_DIRECT` needs).
struct Read<'f, T> {
    file: &'f File,
    /// The same file opened normally, for filesystems that refuse a direct read.
    fallback: &'f File,
    offset: u64,
    len: usize,
    buf: Vec<T>,
    at: usize,
    /// Whether `at` is aligned for a direct read; if not, the block is read through
    /// `fallback`.
    direct: bool,
    done: mpsc::SyncSender<Done<T>>,
}

impl<T> Read<'_, T> {
    /// Sends the buffer back with `result` (the receiver may be gone: then nobody waits).
    fn answer(self, result: io::Result<usize>) {
        let _ = self.done.send(Done {
            buf: self.buf,
            offset: self.offset,
            at: self.at,
            result,
        });
    }
}

/// A read that finished: the buffer back, with the bytes read (fewer than asked at the end
/// of the file) or the error.
pub(crate) struct Done<T> {
    pub(crate) buf: Vec<T>,
    /// File offset the block was read from.
    pub(crate) offset: u64,
    /// Element of `buf` where the data starts.
    pub(crate) at: usize,
    pub(crate) result: io::Result<usize>,
}

/// A block to write: `len` bytes of `buf` from byte `at` (4 KiB aligned in memory) to
/// `offset` of `file`.
struct Write<'f, T> {
    file: &'f File,
    /// The same file opened normally, for filesystems that refuse a direct write.
    fallback: &'f File,
    offset: u64,
    len: usize,
    buf: Vec<T>,
    at: usize,
    done: mpsc::SyncSender<Written<T>>,
}

impl<T> Write<'_, T> {
    /// Sends the buffer back with `result` (the receiver may be gone: then nobody waits).
    fn answer(self, result: io::Result<()>) {
        let _ = self.done.send(Written {
            buf: self.buf,
            result,
        });
    }
}

/// A write that finished: the buffer back, with the error if it failed.
struct Written<T> {
    buf: Vec<T>,
    result: io::Result<()>,
}

/// A handle on threads serving [`IoPool::read`], alive for the closure given to
/// [`IoPool::scope`]. Each cursor keeps a clone.
pub(crate) struct IoPool<'f, T> {
    queue: mpsc::Sender<Request<'f, T>>,
}

/// What the threads are asked to do.
enum Request<'f, T> {
    Read(Read<'f, T>),
    Write(Write<'f, T>),
    /// Free the disk blocks of a consumed range of a run ([`super::fileio::free`]).
    Free(&'f File, u64, u64),
}

impl<T> Clone for IoPool<'_, T> {
    fn clone(&self) -> Self {
        IoPool {
            queue: self.queue.clone(),
        }
    }
}

impl<'f, T: Pod + Send> IoPool<'f, T> {
    /// Runs `f` with a pool of `threads` I/O threads; they end once `f` returns and the
    /// reads it asked for are done.
    pub(crate) fn scope<R>(threads: usize, f: impl FnOnce(&IoPool<'f, T>) -> R) -> R {
        let (queue, requests) = mpsc::channel::<Request<'f, T>>();
        let requests = Mutex::new(requests);
        std::thread::scope(|s| {
            for _ in 0..threads.max(1) {
                s.spawn(|| loop {
                    // The lock is held only while waiting for the next request.
                    let next = requests.lock().unwrap_or_else(|e| e.into_inner()).recv();
                    match next {
                        Ok(Request::Read(read)) => serve(read),
                        Ok(Request::Write(write)) => serve_write(write),
                        Ok(Request::Free(file, offset, len)) => {
                            super::fileio::free(file, offset, len)
                        }
                        Err(mpsc::RecvError) => return,
                    }
                });
            }
            let pool = IoPool { queue };
            let r = f(&pool);
            drop(pool);
            r
        })
    }
}

impl<'f, T: Pod> IoPool<'f, T> {
    /// Asks for `len` bytes at `offset` of `file` (opened with [`sys::open_direct`]; `offset`
    /// and `len` multiples of [`sys::DIRECT_ALIGN`]) to be read into `buf`, which is grown to
    /// hold them at an aligned element. The answer arrives on the returned receiver.
    ///
    /// `T`'s size must divide [`sys::DIRECT_ALIGN`].
    pub(crate) fn read(
        &self,
        file: &'f File,
        fallback: &'f File,
        offset: u64,
        len: usize,
        mut buf: Vec<T>,
    ) -> mpsc::Receiver<Done<T>> {
        buf = aligned_buffer(buf, len);
        // An element at an aligned address lies within the first DIRECT_ALIGN bytes, since
        // the size divides the alignment, unless the type's alignment is smaller than its
        // size and the allocation starts between such elements (64-byte records, whose
        // alignment is 1, in memory that is 16 bytes past a page): that block is read
        // through the page cache, from element 0.
        let (at, direct) = match buf.as_ptr().align_offset(DIRECT_ALIGN) {
            usize::MAX => (0, false),
            at => (at, true),
        };
        let (done, answer) = mpsc::sync_channel(1);
        self.submit(Request::Read(Read {
            file,
            fallback,
            offset,
            len,
            buf,
            at,
            direct,
            done,
        }));
        answer
    }

    /// Asks for `len` bytes of `buf` from byte `at` to be written at `offset` of `file`
    /// (opened with [`sys::reopen_direct_for_writing`]; `offset`, `len` and the address of byte
    /// `at` multiples of [`DIRECT_ALIGN`]). The buffer comes back on the returned receiver.
    fn write(
        &self,
        file: &'f File,
        fallback: &'f File,
        offset: u64,
        buf: Vec<T>,
        at: usize,
        len: usize,
    ) -> mpsc::Receiver<Written<T>> {
        let (done, answer) = mpsc::sync_channel(1);
        self.submit(Request::Write(Write {
            file,
            fallback,
            offset,
            len,
            buf,
            at,
            done,
        }));
        answer
    }

    /// Queues `request`; if the threads are gone (only if one panicked), answers it with an
    /// error instead.
    fn submit(&self, request: Request<'f, T>) {
        if let Err(mpsc::SendError(request)) = self.queue.send(request) {
            match request {
                Request::Read(read) => read.answer(Err(stopped())),
                Request::Write(write) => write.answer(Err(stopped())),
                Request::Free(..) => {}
            }
        }
    }

    /// Asks for the disk blocks of `offset..offset + len` of the temporary `file` to be freed
    /// ([`super::fileio::free`]), without waiting: on a filesystem mounted with `discard`
    /// each free waits for the device, and the merging thread need not.
    pub(crate) fn free(&self, file: &'f File, offset: u64, len: u64) {
        self.submit(Request::Free(file, offset, len));
    }
}

/// The error of a read the I/O threads can no longer do (only after one of them panicked).
pub(crate) fn stopped() -> io::Error {
    io::Error::other("the I/O threads stopped")
}

/// `buf` grown, where it is shorter, to hold `bytes` bytes from a [`DIRECT_ALIGN`]-aligned
/// address inside it. A new allocation is backed by huge pages ([`sys::advise_huge_pages`]).
fn aligned_buffer<T: Pod>(mut buf: Vec<T>, bytes: usize) -> Vec<T> {
    let elems = (bytes + DIRECT_ALIGN).div_ceil(std::mem::size_of::<T>().max(1));
    if buf.len() < elems {
        if buf.capacity() < elems {
            buf = Vec::with_capacity(elems);
            sys::advise_huge_pages(&mut buf);
        }
        buf.resize(elems, T::zeroed());
    }
    buf
}

/// Writes one block, and sends the buffer back. A direct write refused with `EINVAL` is
/// made through the page cache, written back and dropped from it.
fn serve_write<T: Pod>(write: Write<'_, T>) {
    let bytes = &bytemuck::cast_slice::<T, u8>(&write.buf)[write.at..write.at + write.len];
    let result = or_through_cache(write.file.write_all_at(bytes, write.offset), || {
        write_through_cache(write.fallback, bytes, write.offset)
    });
    write.answer(result);
}

/// The result of a direct read or write, or if the filesystem refused it (`EINVAL`), of
/// `through_cache`.
fn or_through_cache<R>(
    direct: io::Result<R>,
    through_cache: impl FnOnce() -> io::Result<R>,
) -> io::Result<R> {
    match direct {
        Err(e) if sys::is_invalid_argument(&e) => through_cache(),
        r => r,
    }
}

/// Writes `bytes` at `offset` of `file` through the page cache, waits for them to reach the
/// disk and drops them from the cache.
fn write_through_cache(file: &File, bytes: &[u8], offset: u64) -> io::Result<()> {
    file.write_all_at(bytes, offset)?;
    sys::sync_file_range(file, offset, bytes.len() as u64, Writeback::Wait)?;
    super::fileio::advise(file, offset, bytes.len() as u64, Hint::DontNeed);
    Ok(())
}

/// Blocks a [`DirectWriter`] holds: one being filled, the others being written.
const WRITE_BUFFERS: usize = 2;

/// Writes a stream of bytes at increasing offsets of a file (its own range of the file, so
/// several writers may share one file), as [`super::fileio::StreamWriter`] does, but with
/// `O_DIRECT`: the bytes are copied into an aligned block of `block` bytes, and each full
/// block is written by an I/O thread while the next one fills. The bytes before the first
/// 4 KiB boundary and after the last go through the page cache: direct writes cover only
/// whole aligned blocks, so two writers whose ranges meet inside a block never write it
/// both directly. Durability is the caller's `fdatasync`, which also writes those ends.
pub(crate) struct DirectWriter<'f, 'b, T> {
    io: IoPool<'f, T>,
    /// The file opened with [`sys::reopen_direct_for_writing`].
    file: &'f File,
    /// The same file, opened normally: the unaligned ends, and writes the filesystem
    /// refuses to make directly.
    fallback: &'f File,
    path: &'f Path,
    /// Where the blocks come from and go back to.
    pool: &'b BufferPool<T>,
    /// Bytes per block: a multiple of [`DIRECT_ALIGN`].
    block: usize,
    /// File offset of the block being filled (or, before the first boundary, of the next
    /// byte).
    start: u64,
    /// The block being filled, its first aligned byte, and the bytes in it.
    cur: Option<Vec<T>>,
    at: usize,
    filled: usize,
    in_flight: VecDeque<mpsc::Receiver<Written<T>>>,
}

impl<'f, 'b, T: Pod> DirectWriter<'f, 'b, T> {
    /// A writer of `file` (and `fallback`, the same file opened normally) from byte
    /// `offset`, in blocks of `block` bytes (a multiple of [`DIRECT_ALIGN`]) written by the
    /// threads of `io`, with buffers from `pool`.
    pub(crate) fn new(
        io: &IoPool<'f, T>,
        file: &'f File,
        fallback: &'f File,
        path: &'f Path,
        offset: u64,
        block: usize,
        pool: &'b BufferPool<T>,
    ) -> Self {
        debug_assert!(block > 0 && block.is_multiple_of(DIRECT_ALIGN));
        DirectWriter {
            io: io.clone(),
            file,
            fallback,
            path,
            pool,
            block,
            start: offset,
            cur: None,
            at: 0,
            filled: 0,
            in_flight: VecDeque::with_capacity(WRITE_BUFFERS),
        }
    }

    /// Writes `bytes` after the ones written before.
    ///
    /// # Errors
    /// An I/O error of this write or of an earlier block's.
    pub(crate) fn write(&mut self, mut bytes: &[u8]) -> Result<()> {
        let align = DIRECT_ALIGN as u64;
        if !self.start.is_multiple_of(align) {
            let head = ((align - self.start % align) as usize).min(bytes.len());
            self.fallback
                .write_all_at(&bytes[..head], self.start)
                .map_err(|e| Error::io(self.path, "write", e))?;
            self.start += head as u64;
            bytes = &bytes[head..];
        }
        while !bytes.is_empty() {
            if self.cur.is_none() {
                self.take_buffer()?;
            }
            let cur = self.cur.as_mut().expect("taken above");
            let n = (self.block - self.filled).min(bytes.len());
            let from = self.at + self.filled;
            bytemuck::cast_slice_mut::<T, u8>(cur)[from..from + n].copy_from_slice(&bytes[..n]);
            self.filled += n;
            bytes = &bytes[n..];
            if self.filled == self.block {
                self.submit(self.block);
            }
        }
        Ok(())
    }

    /// Makes a block to fill: a new buffer while fewer than [`WRITE_BUFFERS`] are held,
    /// otherwise the oldest block's once it is written.
    fn take_buffer(&mut self) -> Result<()> {
        let buf = if self.in_flight.len() < WRITE_BUFFERS {
            let spare = self.pool.lock().unwrap_or_else(|e| e.into_inner()).pop();
            spare.unwrap_or_default()
        } else {
            self.wait_oldest()?
        };
        let buf = aligned_buffer(buf, self.block);
        self.at = bytemuck::cast_slice::<T, u8>(&buf)
            .as_ptr()
            .align_offset(DIRECT_ALIGN);
        self.cur = Some(buf);
        Ok(())
    }

    /// Hands the first `len` bytes of the block being filled to the I/O threads.
    fn submit(&mut self, len: usize) {
        let buf = self.cur.take().expect("a block is being filled");
        let done = self
            .io
            .write(self.file, self.fallback, self.start, buf, self.at, len);
        self.in_flight.push_back(done);
        self.start += len as u64;
        self.filled = 0;
    }

    /// Waits for the oldest block in flight and returns its buffer.
    fn wait_oldest(&mut self) -> Result<Vec<T>> {
        let done = self.in_flight.pop_front().expect("a block in flight");
        let written = done
            .recv()
            .map_err(|_| Error::io(self.path, "write", stopped()))?;
        let buf = written.buf;
        match written.result {
            Ok(()) => Ok(buf),
            Err(e) => {
                self.give_back(buf);
                Err(Error::io(self.path, "write", e))
            }
        }
    }

    fn give_back(&self, buf: Vec<T>) {
        self.pool
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(buf);
    }

    /// Writes what is left: the whole aligned blocks of it directly, the bytes after the
    /// last boundary through the page cache. Then waits for every block and returns the
    /// buffers to the pool.
    ///
    /// # Errors
    /// An I/O error of any block.
    pub(crate) fn finish(mut self) -> Result<()> {
        if let Some(cur) = &self.cur {
            let whole = self.filled / DIRECT_ALIGN * DIRECT_ALIGN;
            let tail = &bytemuck::cast_slice::<T, u8>(cur)[self.at + whole..self.at + self.filled];
            self.fallback
                .write_all_at(tail, self.start + whole as u64)
                .map_err(|e| Error::io(self.path, "write", e))?;
            if whole > 0 {
                self.submit(whole);
            }
        }
        let mut first_error = None;
        while !self.in_flight.is_empty() {
            match self.wait_oldest() {
                Ok(buf) => self.give_back(buf),
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}

impl<T> Drop for DirectWriter<'_, '_, T> {
    fn drop(&mut self) {
        // Left with blocks in flight only on an error path, which reports its own error:
        // wait for them, so that no write into a file being removed is left running, and
        // return the buffers.
        let mut bufs: Vec<Vec<T>> = self.cur.take().into_iter().collect();
        for done in self.in_flight.drain(..) {
            if let Ok(written) = done.recv() {
                bufs.push(written.buf);
            }
        }
        self.pool
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend(bufs);
    }
}

/// Reads one block, and sends it back (to no one if the merge that asked has stopped).
fn serve<T: Pod>(mut read: Read<'_, T>) {
    let start = read.at * std::mem::size_of::<T>();
    let bytes = &mut bytemuck::cast_slice_mut::<T, u8>(&mut read.buf)[start..start + read.len];
    let through_cache = |bytes: &mut [u8]| {
        let r = read_full(read.fallback, bytes, read.offset, false);
        super::fileio::advise(read.fallback, read.offset, read.len as u64, Hint::DontNeed);
        r
    };
    let result = if read.direct {
        or_through_cache(read_full(read.file, bytes, read.offset, true), || {
            through_cache(bytes)
        })
    } else {
        through_cache(bytes)
    };
    read.answer(result);
}

/// Reads into `bytes` from `offset` until it is full or the file ends. A direct read
/// (`direct`) past the end returns fewer bytes, not always a multiple of the alignment, after
/// which no further direct read is possible (or needed).
fn read_full(file: &File, bytes: &mut [u8], offset: u64, direct: bool) -> io::Result<usize> {
    let mut got = 0;
    while got < bytes.len() {
        match file.read_at(&mut bytes[got..], offset + got as u64) {
            Ok(0) => break,
            Ok(n) => {
                got += n;
                if direct && !got.is_multiple_of(sys::DIRECT_ALIGN) {
                    break;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lcg(seed: &mut u64) -> u64 {
        *seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        *seed >> 33
    }

    /// Writers that share one file, each from an unaligned offset, in pieces of every size
    /// (smaller than the head, across several blocks, exactly a block), write exactly the
    /// bytes given: the file read back equals them, and the bytes before the first writer
    /// and after the last are untouched.
    fn check_writers<T: Pod + Send>(cuts: &[u64], block: usize, seed: u64) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out");
        let end = *cuts.last().unwrap() + 777;
        let expected: Vec<u8> = {
            let mut s = seed;
            (0..end).map(|_| lcg(&mut s) as u8).collect()
        };
        let fallback = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .unwrap();
        fallback.set_len(end).unwrap();
        let (head, tail) = (cuts[0] as usize, *cuts.last().unwrap() as usize);
        fallback.write_all_at(&expected[..head], 0).unwrap();
        fallback
            .write_all_at(&expected[tail..], tail as u64)
            .unwrap();
        let direct = sys::reopen_direct_for_writing(&fallback)
            .unwrap_or_else(|_| std::fs::OpenOptions::new().write(true).open(&path).unwrap());
        let pool = BufferPool::<T>::default();
        IoPool::<T>::scope(3, |io| {
            std::thread::scope(|s| {
                for (p, w) in cuts.windows(2).enumerate() {
                    let (from, to) = (w[0] as usize, w[1] as usize);
                    let (direct, fallback, pool, expected) = (&direct, &fallback, &pool, &expected);
                    let path = path.as_path();
                    s.spawn(move || {
                        let mut writer =
                            DirectWriter::new(io, direct, fallback, path, from as u64, block, pool);
                        let mut s = seed ^ p as u64;
                        let mut at = from;
                        while at < to {
                            let n = match lcg(&mut s) % 4 {
                                0 => 1 + lcg(&mut s) as usize % 100,
                                1 => block,
                                2 => 1 + lcg(&mut s) as usize % (3 * block),
                                _ => 4096 - at % 4096,
                            }
                            .min(to - at);
                            writer.write(&expected[at..at + n]).unwrap();
                            at += n;
                        }
                        writer.finish().unwrap();
                    });
                }
            })
        });
        let mut got = vec![0u8; end as usize];
        File::open(&path)
            .unwrap()
            .read_exact_at(&mut got, 0)
            .unwrap();
        let first_diff = got.iter().zip(&expected).position(|(a, b)| a != b);
        assert_eq!(first_diff, None, "cuts {cuts:?}, block {block}");
        // Every buffer came back to the pool.
        assert!(pool.lock().unwrap().len() <= WRITE_BUFFERS * (cuts.len() - 1));
    }

    #[test]
    fn direct_writers_write_exactly_their_bytes() {
        // Parts meeting inside 4 KiB blocks, one part inside a single block, an empty part,
        // and a part starting on a boundary.
        let cuts = [
            128,
            5000,
            5001,
            5001,
            9000,
            8192 * 5 + 17,
            8192 * 9,
            200_000,
        ];
        for block in [4096, 8192, 3 * 4096, 1 << 16] {
            check_writers::<u64>(&cuts, block, block as u64);
            check_writers::<u8>(&cuts, block, 7 + block as u64);
            // Buffers of three-byte elements: the aligned byte need not start an element.
            check_writers::<[u8; 3]>(&cuts, block, 9 + block as u64);
        }
        // One writer over the whole range.
        check_writers::<u64>(&[0, 1 << 20], 1 << 16, 3);
    }

    /// Reads of elements whose alignment is below their size (64-byte records, whose
    /// alignment is one byte) land at element boundaries and hold the file's bytes, whether
    /// or not the buffer has an element at an aligned address. It has none when the
    /// allocation starts 16 bytes past a page, as large ones do: such a block is read
    /// through the page cache.
    #[test]
    fn reads_of_unaligned_element_types_land_on_elements() {
        type Rec = crate::sort::Record<64, 16>;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("runs");
        let len = 1 << 20;
        let data: Vec<u8> = {
            let mut s = 17;
            (0..len + 8192).map(|_| lcg(&mut s) as u8).collect()
        };
        std::fs::write(&path, &data).unwrap();
        let fallback = File::open(&path).unwrap();
        let direct = sys::open_direct(&path).unwrap_or_else(|_| File::open(&path).unwrap());
        IoPool::<Rec>::scope(2, |io| {
            for offset in [0u64, 4096, 8192] {
                // Fresh buffers of several sizes, so that several allocation addresses are met.
                for cap in [0usize, 10, 5000, 40_000] {
                    let done = io
                        .read(&direct, &fallback, offset, len, Vec::with_capacity(cap))
                        .recv()
                        .unwrap();
                    assert_eq!(done.result.unwrap(), len);
                    let got = bytemuck::cast_slice::<Rec, u8>(&done.buf[done.at..]);
                    let off = offset as usize;
                    assert!(
                        got[..len] == data[off..off + len],
                        "offset {offset}, cap {cap}"
                    );
                }
            }
        });
    }

    /// Requests the threads can no longer take (they are gone, as after a panic) are
    /// answered with an error and their buffers, not dropped: a reader or writer waiting
    /// on the answer would otherwise fail with a closed channel.
    #[test]
    fn requests_the_threads_cannot_take_are_answered() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, [1u8; 8192]).unwrap();
        let file = File::open(&path).unwrap();
        let (queue, requests) = mpsc::channel();
        drop(requests);
        let io = IoPool::<u64> { queue };
        let done = io.read(&file, &file, 0, 4096, vec![7; 3]).recv().unwrap();
        assert_eq!(done.result.unwrap_err().to_string(), stopped().to_string());
        assert!(done.buf.len() * 8 >= 4096, "the grown buffer comes back");
        let written = io
            .write(&file, &file, 0, vec![9; 600], 0, 4096)
            .recv()
            .unwrap();
        assert_eq!(
            written.result.unwrap_err().to_string(),
            stopped().to_string()
        );
        assert_eq!(written.buf, vec![9; 600]);
        io.free(&file, 0, 4096);
    }

    /// A writer dropped with blocks in flight (a merge that stopped on an error) waits for
    /// them and returns its buffers, without panicking.
    #[test]
    fn a_dropped_writer_returns_its_buffers() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out");
        let fallback = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .unwrap();
        fallback.set_len(1 << 20).unwrap();
        let direct = sys::reopen_direct_for_writing(&fallback)
            .unwrap_or_else(|_| std::fs::OpenOptions::new().write(true).open(&path).unwrap());
        let pool = BufferPool::<u64>::default();
        IoPool::<u64>::scope(2, |io| {
            let mut w = DirectWriter::new(io, &direct, &fallback, &path, 100, 8192, &pool);
            w.write(&[5u8; 30_000]).unwrap();
            drop(w);
        });
        assert_eq!(pool.lock().unwrap().len(), WRITE_BUFFERS);
    }
}
