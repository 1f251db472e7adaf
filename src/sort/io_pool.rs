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

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::sync::{mpsc, Mutex};

use bytemuck::Pod;

use super::fileio::Hint;
use crate::sys;

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
    done: mpsc::SyncSender<Done<T>>,
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

/// A handle on threads serving [`IoPool::read`], alive for the closure given to
/// [`IoPool::scope`]. Each cursor keeps a clone.
pub(crate) struct IoPool<'f, T> {
    queue: mpsc::Sender<Request<'f, T>>,
}

/// What the threads are asked to do.
enum Request<'f, T> {
    Read(Read<'f, T>),
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
        let size = std::mem::size_of::<T>();
        let elems = (len + sys::DIRECT_ALIGN) / size;
        if buf.len() < elems {
            if buf.capacity() < elems {
                buf = Vec::with_capacity(elems);
                sys::advise_huge_pages(&mut buf);
            }
            buf.resize(elems, T::zeroed());
        }
        // Within the first DIRECT_ALIGN bytes, since the size divides the alignment.
        let at = buf.as_ptr().align_offset(sys::DIRECT_ALIGN);
        let (done, answer) = mpsc::sync_channel(1);
        let read = Read {
            file,
            fallback,
            offset,
            len,
            buf,
            at,
            done,
        };
        if let Err(mpsc::SendError(Request::Read(read))) = self.queue.send(Request::Read(read)) {
            // The threads are gone (only if one panicked): answer with an error.
            let _ = read.done.send(Done {
                buf: read.buf,
                offset: read.offset,
                at: read.at,
                result: Err(stopped()),
            });
        }
        answer
    }

    /// Asks for the disk blocks of `offset..offset + len` of the temporary `file` to be freed
    /// ([`super::fileio::free`]), without waiting: on a filesystem mounted with `discard`
    /// each free waits for the device, and the merging thread need not.
    pub(crate) fn free(&self, file: &'f File, offset: u64, len: u64) {
        let _ = self.queue.send(Request::Free(file, offset, len));
    }
}

/// The error of a read the I/O threads can no longer do (only after one of them panicked).
pub(crate) fn stopped() -> io::Error {
    io::Error::other("the I/O threads stopped")
}

/// Reads one block, and sends it back (to no one if the merge that asked has stopped).
fn serve<T: Pod>(mut read: Read<'_, T>) {
    let start = read.at * std::mem::size_of::<T>();
    let bytes = &mut bytemuck::cast_slice_mut::<T, u8>(&mut read.buf)[start..start + read.len];
    let result = match read_full(read.file, bytes, read.offset, true) {
        Err(e) if sys::is_invalid_argument(&e) => {
            let r = read_full(read.fallback, bytes, read.offset, false);
            super::fileio::advise(read.fallback, read.offset, read.len as u64, Hint::DontNeed);
            r
        }
        r => r,
    };
    let _ = read.done.send(Done {
        buf: read.buf,
        offset: read.offset,
        at: read.at,
        result,
    });
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
