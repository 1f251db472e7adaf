//! The k-way merge of sorted runs: a loser tree over buffered run readers, and the
//! key-range split that lets several threads merge disjoint parts of the output at once.
//!
//! # Why a loser tree
//! Each output element costs one replay from a leaf to the root: `⌈log2 k⌉` comparisons, each
//! against a single stored loser, with no sibling to look at (a binary heap's sift-down
//! compares both children at every level, about twice as many comparisons). The replay
//! compares keys only: ties go either way, so the merge is not stable, which costs nothing
//! since the runs themselves come from an unstable sort. (Breaking ties by run index made
//! each level's compare-and-select longer, and the replay is one dependent chain.)
//!
//! # Why a key-range split
//! One loser tree is one thread. To keep every core busy in the final merge, the output is
//! cut into `P` parts at keys chosen from samples that run formation kept (every `stride`-th
//! key of each run). For each cut key the position in each run is found by a binary search
//! in the samples, narrowed to one block read from the run file. Runs of equal keys are
//! split by rank so that even an all-equal input divides evenly. Since the output's size is
//! known, part `p` starts at the sum of its per-run starting positions: each worker writes its
//! own range of the output file with positioned writes, without coordination.

use std::fs::File;
use std::path::PathBuf;

use bytemuck::Pod;

use super::fileio;
use super::io_pool::{self, IoPool};
use super::key::SortKey;
use crate::error::{Error, Result};
use crate::sys::DIRECT_ALIGN;

/// A sorted run on disk: `len` elements of `T` from byte `offset` of `path`, with every
/// `stride`-th key kept in memory. The file is the sort's own temporary, read once: a merge
/// frees its blocks as it consumes them.
#[derive(Debug)]
pub(crate) struct Run<K> {
    pub(crate) path: PathBuf,
    pub(crate) offset: u64,
    pub(crate) len: u64,
    pub(crate) stride: u64,
    pub(crate) samples: Vec<K>,
}

/// Collects every `stride`-th key of a sequence that arrives in pieces.
pub(crate) struct Sampler<K> {
    stride: u64,
    next: u64,
    seen: u64,
    samples: Vec<K>,
}

impl<K> Sampler<K> {
    /// A sampler keeping about `target` keys of a sequence of `len` elements.
    pub(crate) fn new(len: u64, target: u64) -> Self {
        let stride = len.div_ceil(target.max(1)).max(1);
        Sampler {
            stride,
            next: 0,
            seen: 0,
            samples: Vec::with_capacity(len.div_ceil(stride) as usize),
        }
    }

    pub(crate) fn feed<T: SortKey<Key = K>>(&mut self, piece: &[T]) {
        let end = self.seen + piece.len() as u64;
        while self.next < end {
            self.samples
                .push(piece[(self.next - self.seen) as usize].sort_key());
            self.next += self.stride;
        }
        self.seen = end;
    }

    pub(crate) fn finish(self) -> (u64, Vec<K>) {
        (self.stride, self.samples)
    }
}

/// Bytes a cursor reads at once: small enough that a merge's read buffers stay in the
/// CPU's caches (the data the kernel copies in is merged before it is evicted), so the
/// merge's loads hit the cache instead of waiting for memory. The disk sees the prefetch
/// windows, which are larger.
const READ_UNIT: usize = 256 << 10;

/// How far ahead in a cursor's buffer the merge prefetches, in bytes. With 18 runs of
/// `u64` merged from tmpfs (no disk), prefetching 256, 512 or 2048 bytes ahead made the
/// merge 10–15% faster alike (the read units of all cursors do not fit in L2, and the
/// hardware prefetcher does not follow that many streams interleaved one element at a time).
const PREFETCH_AHEAD: usize = 512;

/// Elements of `T` in a [`READ_UNIT`]: also a good size for the pieces a merge writes, which
/// are then copied out of the cache too.
pub(crate) fn unit_elems<T>() -> usize {
    (READ_UNIT / std::mem::size_of::<T>().max(1)).max(1)
}

/// Reads elements `next..end` of a run. Read directly ([`Direct`]), it merges one block
/// while I/O threads read the next into a second buffer. Otherwise it reads from the page
/// cache in units of [`READ_UNIT`] bytes, into which the kernel is asked to read the run
/// ahead in windows of `window` elements.
struct Cursor<'a, T> {
    file: &'a File,
    run_path: &'a std::path::Path,
    offset: u64,
    next: u64,
    end: u64,
    /// Elements up to here have been asked for (`POSIX_FADV_WILLNEED`).
    asked: u64,
    /// Bytes of the file from here to the read position are consumed but still on disk.
    free_from: u64,
    window: u64,
    /// Bytes per read-ahead request ([`fileio::will_need_chunk`]).
    ask_chunk: u64,
    /// At least `unit` elements long; `buf[pos..filled]` are the unread ones.
    buf: Vec<T>,
    unit: usize,
    filled: usize,
    pos: usize,
    /// Set when the run is read with `O_DIRECT` by I/O threads instead.
    direct: Option<Direct<'a, T>>,
}

/// A cursor's direct reads: blocks of the run read by an [`IoPool`] into the cursor's two
/// buffers in turn, the next in flight while the current one is merged.
struct Direct<'a, T> {
    pool: IoPool<'a, T>,
    /// The run opened with `O_DIRECT`.
    file: &'a File,
    /// Bytes per block: a multiple of [`DIRECT_ALIGN`] and so of the element size.
    block: u64,
    /// File offset of the next block to ask for (aligned).
    ask_at: u64,
    /// File offset just past the cursor's range.
    end_byte: u64,
    /// The answer for the block in flight.
    pending: Option<std::sync::mpsc::Receiver<io_pool::Done<T>>>,
    /// The buffer the next block is read into.
    spare: Vec<T>,
}

impl<'a, T: Pod> Cursor<'a, T> {
    /// A cursor over `range` of `run` that may hold `2 * cap` elements. Given `direct` (the
    /// I/O threads, the run opened with `O_DIRECT`, and a second buffer; see
    /// [`Cursor::can_read_direct`]): two blocks of at most `cap`, `buf` and the spare, the
    /// first asked for here. Otherwise a read unit in `buf`, and less than twice the rest of
    /// `cap` in the page cache, read ahead.
    fn new<K>(
        run: &'a Run<K>,
        file: &'a File,
        range: std::ops::Range<u64>,
        cap: usize,
        ask_chunk: u64,
        buf: Vec<T>,
        direct: Option<(IoPool<'a, T>, &'a File, Vec<T>)>,
    ) -> Self {
        let len = range.end - range.start;
        let size = std::mem::size_of::<T>() as u64;
        if let Some((pool, dfile, spare)) = direct {
            // Two buffers of `cap` elements each (at most MAX_DIRECT_BLOCK), in whole aligned
            // blocks.
            let block = (cap as u64 * size).min(MAX_DIRECT_BLOCK) / DIRECT_ALIGN as u64
                * DIRECT_ALIGN as u64;
            let start_byte = run.offset + range.start * size;
            let mut c = Cursor {
                file,
                run_path: &run.path,
                offset: run.offset,
                next: range.start,
                end: range.end,
                asked: range.end,
                free_from: start_byte.next_multiple_of(FREE_ALIGN),
                window: (block / size).max(1),
                ask_chunk,
                buf,
                unit: 0,
                filled: 0,
                pos: 0,
                direct: Some(Direct {
                    pool,
                    file: dfile,
                    block,
                    ask_at: start_byte / DIRECT_ALIGN as u64 * DIRECT_ALIGN as u64,
                    end_byte: run.offset + range.end * size,
                    pending: None,
                    spare,
                }),
            };
            c.ask_next_block();
            return c;
        }
        let cap = (cap as u64).min(len).max(1);
        // A unit in `buf` and under two windows read ahead: no more than `2 * cap` in all.
        let unit = (unit_elems::<T>() as u64).min(cap / 2).max(1);
        Cursor {
            file,
            run_path: &run.path,
            offset: run.offset,
            next: range.start,
            end: range.end,
            asked: range.start,
            free_from: (run.offset + range.start * std::mem::size_of::<T>() as u64)
                .next_multiple_of(FREE_ALIGN),
            window: (cap - unit).max(1),
            ask_chunk,
            buf: sized(buf, unit as usize),
            unit: unit as usize,
            filled: 0,
            pos: 0,
            direct: None,
        }
    }

    /// Whether [`Cursor::new`] can read `run` with direct I/O in buffers of `cap` elements:
    /// elements that never straddle an aligned block, and blocks at least that large.
    fn can_read_direct<K>(run: &Run<K>, cap: usize) -> bool {
        let size = std::mem::size_of::<T>();
        size > 0
            && DIRECT_ALIGN.is_multiple_of(size)
            && run.offset.is_multiple_of(size as u64)
            && cap.saturating_mul(size) >= DIRECT_ALIGN
    }

    /// Sends the spare buffer to be filled with the next block, if any is left.
    fn ask_next_block(&mut self) {
        let Some(d) = self.direct.as_mut() else {
            return;
        };
        if d.ask_at >= d.end_byte {
            return;
        }
        // The last block is read to the aligned end: the bytes after the range belong to
        // another part or lie past the end of the file, and are not used.
        let len = d
            .block
            .min((d.end_byte - d.ask_at).next_multiple_of(DIRECT_ALIGN as u64));
        let buf = std::mem::take(&mut d.spare);
        let rx = d.pool.read(d.file, self.file, d.ask_at, len as usize, buf);
        d.pending = Some(rx);
        d.ask_at += len;
    }

    /// Takes the block in flight as the current one and asks for the next.
    fn refill_direct(&mut self) -> Result<bool> {
        self.pos = 0;
        self.filled = 0;
        if self.next == self.end {
            return Ok(false);
        }
        let size = std::mem::size_of::<T>() as u64;
        let d = self.direct.as_mut().expect("a direct cursor");
        let answer = d
            .pending
            .take()
            .expect("a block is in flight until the range is read");
        let done = answer
            .recv()
            .map_err(|_| Error::io(self.run_path, "read", io_pool::stopped()))?;
        let got = done
            .result
            .map_err(|e| Error::io(self.run_path, "read", e))? as u64;
        let at = done.offset;
        let from = self.offset + self.next * size;
        let to = (at + d.block).min(d.end_byte);
        if at + got < to {
            return Err(fileio::truncated(self.file, self.run_path, to));
        }
        let first = done.at + ((from - at) / size) as usize;
        let n = ((to - from) / size) as usize;
        d.spare = std::mem::replace(&mut self.buf, done.buf);
        self.pos = first;
        self.filled = first + n;
        self.next += n as u64;
        self.ask_next_block();
        self.free_consumed();
        Ok(true)
    }

    /// Loads the next unit; `false` when the range is exhausted.
    fn refill(&mut self) -> Result<bool> {
        if self.direct.is_some() {
            return self.refill_direct();
        }
        let n = (self.unit as u64).min(self.end - self.next) as usize;
        self.pos = 0;
        self.filled = n;
        if n == 0 {
            return Ok(false);
        }
        let size = std::mem::size_of::<T>() as u64;
        // Keep at least a window asked for beyond this unit, a window at a time, so that the
        // disk reads ahead in large requests while the units before are merged. (Run files
        // have the kernel's own readahead turned off; see `fileio::Hint`.)
        if self.asked < self.end && self.asked < self.next + n as u64 + self.window {
            let from = self.asked.max(self.next);
            let to = (from + self.window).min(self.end);
            fileio::will_need(
                self.file,
                self.offset + from * size,
                (to - from) * size,
                self.ask_chunk,
            );
            self.asked = to;
        }
        let off = self.offset + self.next * size;
        fileio::read_at(
            self.file,
            self.run_path,
            bytemuck::cast_slice_mut(&mut self.buf[..n]),
            off,
        )?;
        self.next += n as u64;
        self.free_consumed();
        Ok(true)
    }

    /// Gives the disk blocks of the consumed data back to the filesystem, a window at a
    /// time. Runs are the sort's own temporary files, read once: freeing them as the merge
    /// goes spreads the cost of deleting them (tens of milliseconds a run, spent waiting for
    /// the filesystem, all at the end otherwise) over the merge, where it overlaps the
    /// other workers' I/O. Only whole aligned blocks inside this cursor's consumed range are
    /// freed, never a byte another part of the merge may still read. Best effort: a
    /// filesystem without hole punching (or a run opened read-only) keeps the blocks until
    /// the run is removed.
    fn free_consumed(&mut self) {
        let size = std::mem::size_of::<T>() as u64;
        let to = (self.offset + self.next * size) / FREE_ALIGN * FREE_ALIGN;
        if to >= self.free_from + self.window * size
            || (self.next == self.end && to > self.free_from)
        {
            match &self.direct {
                Some(d) => d.pool.free(self.file, self.free_from, to - self.free_from),
                None => fileio::free(self.file, self.free_from, to - self.free_from),
            }
            self.free_from = to;
        }
    }
}

/// The largest block a direct cursor reads at once. A merge cannot start before every
/// cursor has its first block, so a budget far larger than the runs need would otherwise
/// make the merge wait for half the budget to be read before it merged anything; the disk
/// gains nothing from requests this large (it splits them into pieces of `max_sectors_kb`).
pub(crate) const MAX_DIRECT_BLOCK: u64 = 16 << 20;

/// Alignment of the ranges [`Cursor::free_consumed`] frees: a filesystem block (4 KiB on
/// ext4 and XFS by default). A partial block at either end would be zeroed, not freed.
const FREE_ALIGN: u64 = 4096;

/// `buf` grown to at least `len` elements (a reused buffer keeps its pages: no new page
/// faults, no zeroing).
fn sized<T: Pod>(mut buf: Vec<T>, len: usize) -> Vec<T> {
    if buf.len() < len {
        buf.resize(len, T::zeroed());
    }
    buf
}

/// Buffers shared by the merges of one phase, so that each merge reuses the memory of the
/// one before instead of faulting in fresh pages.
pub(crate) type BufferPool<T> = std::sync::Mutex<Vec<Vec<T>>>;

/// One input of a merge: a run, its open file and the element range to merge.
pub(crate) struct Source<'a, K> {
    pub(crate) run: &'a Run<K>,
    pub(crate) file: &'a File,
    /// The run opened with `O_DIRECT`, for a merge given I/O threads.
    pub(crate) direct: Option<&'a File>,
    pub(crate) range: std::ops::Range<u64>,
}

/// Whole runs as the sources of a merge through the page cache: each run's file, all of
/// its elements.
pub(crate) fn whole_sources<'a, K: 'a>(
    runs: impl IntoIterator<Item = &'a Run<K>>,
    files: &'a [File],
) -> Vec<Source<'a, K>> {
    runs.into_iter()
        .zip(files)
        .map(|(run, file)| Source {
            run,
            file,
            direct: None,
            range: 0..run.len,
        })
        .collect()
}

/// The sources of part `p` of a merge cut by [`split_points`]: each run's range between
/// `cuts[p]` and `cuts[p + 1]`.
pub(crate) fn part_sources<'a, K>(
    runs: &'a [Run<K>],
    files: &'a [File],
    direct: &'a [Option<File>],
    cuts: &[Vec<u64>],
    p: usize,
) -> Vec<Source<'a, K>> {
    runs.iter()
        .zip(files)
        .enumerate()
        .map(|(r, (run, file))| Source {
            run,
            file,
            direct: direct.get(r).and_then(Option::as_ref),
            range: cuts[p][r]..cuts[p + 1][r],
        })
        .collect()
}

/// Merges `sources` (each sorted) and hands the output to `emit` in order, in pieces of at
/// most `out_elems` elements. Each source may hold `2 * buf_elems` elements, so a merge
/// holds about `(2 * sources) * buf_elems + out_elems` elements in memory. Given `io`, the
/// sources that have a direct file and whose elements tile 4 KiB blocks are read in two
/// buffers of `buf_elems` (whole blocks), one merged while the I/O threads fill the other.
/// The rest are read through a small buffer and, in the page cache, a window read ahead.
/// Buffers are taken from `pool` and given back at the end.
///
/// `emit`'s error type is the merge's: any that an outcore [`Error`] converts into, so that a
/// caller can stop the merge with a reason of its own.
pub(crate) fn merge<'a, T, F, E>(
    sources: &[Source<'a, T::Key>],
    buf_elems: usize,
    out_elems: usize,
    pool: &BufferPool<T>,
    io: Option<&IoPool<'a, T>>,
    mut emit: F,
) -> std::result::Result<(), E>
where
    T: SortKey,
    F: FnMut(&[T]) -> std::result::Result<(), E>,
    E: From<Error>,
{
    let live: Vec<&Source<'_, T::Key>> = sources
        .iter()
        .filter(|s| s.range.start < s.range.end)
        .collect();
    // Which inputs are read directly, by the I/O threads: those take a second buffer.
    let direct: Vec<Option<(IoPool<'a, T>, &'a File)>> = live
        .iter()
        .map(|s| match (io, s.direct) {
            (Some(io), Some(d)) if Cursor::<T>::can_read_direct(s.run, buf_elems) => {
                Some((io.clone(), d))
            }
            _ => None,
        })
        .collect();
    let wanted = live.len() + direct.iter().flatten().count() + 1;
    let mut bufs: Vec<Vec<T>> = {
        let mut p = pool.lock().unwrap_or_else(|e| e.into_inner());
        (0..wanted).map(|_| p.pop().unwrap_or_default()).collect()
    };
    let out_elems = out_elems.max(1);
    let mut out = sized(
        bufs.pop().expect("one buffer per input plus one"),
        out_elems,
    );
    let mut cursors: Vec<Cursor<'_, T>> = Vec::with_capacity(live.len());
    // The runs of a merge lie in one directory: one device, one request limit.
    let ask_chunk = live.first().map_or(0, |s| fileio::will_need_chunk(s.file));
    for (s, direct) in live.iter().zip(direct) {
        let buf = bufs.pop().unwrap_or_default();
        let direct = direct.map(|(io, d)| (io, d, bufs.pop().unwrap_or_default()));
        cursors.push(Cursor::new(
            s.run,
            s.file,
            s.range.clone(),
            buf_elems,
            ask_chunk,
            buf,
            direct,
        ));
    }
    // Every direct cursor's first block is asked for before any is awaited.
    for c in &mut cursors {
        c.refill()?;
    }
    let mut o = 0usize;
    let ahead = (PREFETCH_AHEAD / std::mem::size_of::<T>().max(1)).max(1);
    // Each round merges the live cursors until one runs dry, then drops it and rebuilds the
    // tree (O(k), k times in all): the hot loop needs no "exhausted" checks.
    while cursors.len() > 1 {
        let k = cursors.len();
        let mut tree = build_tree(&cursors);
        loop {
            let (_, w) = tree[0];
            let c = &mut cursors[w as usize];
            // The replay below waits on this cursor's next keys: ask for them early.
            crate::cpu::prefetch(&c.buf, c.pos + ahead);
            out[o] = c.buf[c.pos];
            o += 1;
            c.pos += 1;
            if o == out_elems {
                emit(&out[..o])?;
                o = 0;
            }
            if c.pos == c.filled && !c.refill()? {
                let done = cursors.remove(w as usize);
                bufs.push(done.buf);
                bufs.extend(done.direct.map(|d| d.spare));
                break;
            }
            // Replay the winner's new key from its leaf to the root, without branches:
            // which of the two moves up is unpredictable.
            let mut win = (c.buf[c.pos].sort_key(), w);
            let mut n = (w as usize + k) / 2;
            while n > 0 {
                let node = tree[n];
                let node_wins = node.0 < win.0;
                tree[n] = std::hint::select_unpredictable(node_wins, win, node);
                win = std::hint::select_unpredictable(node_wins, node, win);
                n /= 2;
            }
            tree[0] = win;
        }
    }
    emit(&out[..o])?;
    // One input left (or none): copy it through.
    if let Some(c) = cursors.first_mut() {
        loop {
            for piece in c.buf[c.pos..c.filled].chunks(out_elems) {
                emit(piece)?;
            }
            if !c.refill()? {
                break;
            }
        }
    }
    bufs.push(out);
    for c in cursors {
        bufs.push(c.buf);
        if let Some(d) = c.direct {
            bufs.push(d.spare);
        }
    }
    pool.lock().unwrap_or_else(|e| e.into_inner()).extend(bufs);
    Ok(())
}

/// A loser tree over the cursors' current keys: node `n` (1..k) holds the loser of its
/// match as `(key, cursor)`, node 0 the overall winner; leaves are `k..2k`. Keys alone are
/// compared, as in the replay.
fn build_tree<T: SortKey>(cursors: &[Cursor<'_, T>]) -> Vec<(T::Key, u32)> {
    let k = cursors.len();
    let head = |i: usize| (cursors[i].buf[cursors[i].pos].sort_key(), i as u32);
    let mut tree = vec![head(0); k];
    let mut win: Vec<(T::Key, u32)> = (0..2 * k).map(|i| head(i % k)).collect();
    for i in 0..k {
        win[k + i] = head(i);
    }
    for n in (1..k).rev() {
        let (l, r) = (win[2 * n], win[2 * n + 1]);
        (win[n], tree[n]) = if l.0 <= r.0 { (l, r) } else { (r, l) };
    }
    tree[0] = win[1];
    tree
}

/// The most bytes `bound` reads at once.
const BOUND_WINDOW: u64 = 64 << 10;

/// Number of elements of `run` whose key is `< key` (`strict`) or `<= key` (not strict).
fn bound<T: SortKey>(run: &Run<T::Key>, file: &File, key: &T::Key, strict: bool) -> Result<u64> {
    let before = |k: &T::Key| if strict { k < key } else { k <= key };
    // samples[i] is the key of element i * stride, so the boundary lies after the last
    // sample that is before `key` and no later than the first that is not.
    let j = run.samples.partition_point(before) as u64;
    let mut lo = if j == 0 { 0 } else { (j - 1) * run.stride + 1 };
    let mut hi = (j * run.stride).min(run.len);
    if lo >= hi {
        return Ok(hi);
    }
    // After merge levels a run's stride can be far larger than the memory budget allows to
    // read at once: narrow [lo, hi) by binary search on single elements first, then read the
    // last window of at most BOUND_WINDOW bytes.
    let size = std::mem::size_of::<T>() as u64;
    let window = (BOUND_WINDOW / size).max(1);
    let mut one = [T::zeroed()];
    while hi - lo > window {
        let mid = lo + (hi - lo) / 2;
        fileio::read_at(
            file,
            &run.path,
            bytemuck::cast_slice_mut(&mut one),
            run.offset + mid * size,
        )?;
        if before(&one[0].sort_key()) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    let mut block = vec![T::zeroed(); (hi - lo) as usize];
    fileio::read_at(
        file,
        &run.path,
        bytemuck::cast_slice_mut(&mut block),
        run.offset + lo * std::mem::size_of::<T>() as u64,
    )?;
    Ok(lo + block.partition_point(|x| before(&x.sort_key())) as u64)
}

/// Cuts the merge of `runs` into `parts` pieces of about equal size whose keys do not
/// overlap: `cuts[p][r]` is where part `p` starts in run `r` (`cuts[0]` is all zeros and
/// `cuts[parts]` the run lengths).
pub(crate) fn split_points<T: SortKey>(
    runs: &[Run<T::Key>],
    files: &[File],
    parts: usize,
) -> Result<Vec<Vec<u64>>> {
    let total: u64 = runs.iter().map(|r| r.len).sum();
    let mut cuts = vec![vec![0u64; runs.len()]];
    if parts > 1 && total > 0 {
        // Weighted samples: each stands for `stride` elements of its run.
        let mut weighted: Vec<(T::Key, u64)> = runs
            .iter()
            .flat_map(|r| r.samples.iter().map(move |k| (*k, r.stride)))
            .collect();
        weighted.sort_unstable_by_key(|w| w.0);
        let weight: u64 = weighted.iter().map(|w| w.1).sum();
        let mut acc = 0u64;
        let mut wi = 0usize;
        for p in 1..parts {
            let want = (weight as u128 * p as u128 / parts as u128) as u64;
            while wi + 1 < weighted.len() && acc + weighted[wi].1 <= want {
                acc += weighted[wi].1;
                wi += 1;
            }
            let key = weighted[wi].0;
            let target = (total as u128 * p as u128 / parts as u128) as u64;
            let mut lo = Vec::with_capacity(runs.len());
            let mut hi = Vec::with_capacity(runs.len());
            for (run, file) in runs.iter().zip(files) {
                lo.push(bound::<T>(run, file, &key, true)?);
                hi.push(bound::<T>(run, file, &key, false)?);
            }
            // Everything below `key` goes left, everything above right; the elements equal to
            // `key` are shared out in run order so that the part sizes stay close to the target.
            let mut extra = target.saturating_sub(lo.iter().sum());
            let prev = cuts.last().expect("cuts start non-empty");
            let mut row = Vec::with_capacity(runs.len());
            for r in 0..runs.len() {
                let take = extra.min(hi[r] - lo[r]);
                extra -= take;
                row.push((lo[r] + take).max(prev[r]));
            }
            cuts.push(row);
        }
    }
    for _ in cuts.len()..parts {
        cuts.push(cuts.last().expect("non-empty").clone());
    }
    cuts.push(runs.iter().map(|r| r.len).collect());
    Ok(cuts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn write_run(dir: &std::path::Path, name: &str, data: &[u64], target: u64) -> Run<u64> {
        let path = dir.join(name);
        let mut f = File::create(&path).unwrap();
        f.write_all(bytemuck::cast_slice(data)).unwrap();
        let mut s = Sampler::new(data.len() as u64, target);
        for piece in data.chunks(3) {
            s.feed(piece);
        }
        let (stride, samples) = s.finish();
        Run {
            path,
            offset: 0,
            len: data.len() as u64,
            stride,
            samples,
        }
    }

    #[test]
    fn bound_on_a_run_with_a_huge_stride_matches_partition_point() {
        // 4 samples for 100 000 elements: each stride spans 25 000 u64 (200 KB), more than
        // BOUND_WINDOW, so bound() must narrow by binary search before reading.
        let dir = tempfile::tempdir().unwrap();
        let mut seed = 7;
        let mut data: Vec<u64> = (0..100_000).map(|_| lcg(&mut seed) % 5000).collect();
        data.sort_unstable();
        let run = write_run(dir.path(), "big", &data, 4);
        assert!(run.stride * 8 > BOUND_WINDOW);
        let file = File::open(&run.path).unwrap();
        for key in [0u64, 1, 17, 2500, 4999, 5000, 9999] {
            for strict in [true, false] {
                let want = data.partition_point(|&x| if strict { x < key } else { x <= key });
                let got = bound::<u64>(&run, &file, &key, strict).unwrap();
                assert_eq!(got, want as u64, "key {key} strict {strict}");
            }
        }
    }

    fn lcg(seed: &mut u64) -> u64 {
        *seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        *seed >> 33
    }

    /// Runs of `T` written one after another into one file (so that most start at an
    /// offset that is not block-aligned), with samples for splitting.
    fn write_runs<T: SortKey<Key = T> + Copy>(
        path: &std::path::Path,
        runs_data: &[Vec<T>],
        target: u64,
    ) -> Vec<Run<T>> {
        let mut f = File::create(path).unwrap();
        let mut offset = 0u64;
        let mut runs = Vec::new();
        for d in runs_data {
            f.write_all(bytemuck::cast_slice(d)).unwrap();
            let mut s = Sampler::new(d.len() as u64, target);
            s.feed(d);
            let (stride, samples) = s.finish();
            runs.push(Run {
                path: path.to_path_buf(),
                offset,
                len: d.len() as u64,
                stride,
                samples,
            });
            offset += std::mem::size_of_val(d.as_slice()) as u64;
        }
        f.sync_all().unwrap();
        runs
    }

    /// Merges `runs_data` (each sorted) in `parts` parts through the I/O threads, reading
    /// the runs with `O_DIRECT` where the test directory allows it, and checks the output
    /// against `slice::sort`.
    fn check_direct<T: SortKey<Key = T> + Copy + Ord + std::fmt::Debug + Send>(
        runs_data: Vec<Vec<T>>,
        buf_elems: usize,
        parts: usize,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("runs");
        let runs = write_runs(&path, &runs_data, 16);
        // Writable, as the merge's own are: it frees what it has read.
        let files: Vec<File> = runs
            .iter()
            .map(|r| {
                std::fs::OpenOptions::new()
                    .read(true)
                    .write(true)
                    .open(&r.path)
                    .unwrap()
            })
            .collect();
        // Where the filesystem has no direct I/O the cursors read the same blocks from a
        // plain descriptor: the block arithmetic is tested either way.
        let direct: Vec<Option<File>> = runs
            .iter()
            .map(|r| {
                Some(
                    crate::sys::open_direct(&r.path)
                        .unwrap_or_else(|_| File::open(&r.path).unwrap()),
                )
            })
            .collect();
        let mut expect: Vec<T> = runs_data.concat();
        expect.sort_unstable();
        let cuts = split_points::<T>(&runs, &files, parts).unwrap();
        let pool = BufferPool::default();
        let mut got = Vec::new();
        IoPool::scope(3, |io| {
            for p in 0..parts {
                let sources = part_sources(&runs, &files, &direct, &cuts, p);
                merge::<T, _, Error>(&sources, buf_elems, 1000, &pool, Some(io), |o| {
                    got.extend_from_slice(o);
                    Ok(())
                })
                .unwrap();
            }
        });
        assert!(
            got == expect,
            "{} runs, {buf_elems} elements a buffer, {parts} parts",
            runs.len()
        );
    }

    #[test]
    fn direct_reads_merge_like_sort() {
        let mut seed = 11;
        let mut sorted_u64 = |n: usize, modulus: u64| {
            let mut v: Vec<u64> = (0..n).map(|_| lcg(&mut seed) % modulus).collect();
            v.sort_unstable();
            v
        };
        // Runs of odd lengths (every run after the first starts off a block boundary), one
        // empty, one of a single element; buffers of one block (512 u64) and of several.
        let runs: Vec<Vec<u64>> = [0, 1, 5000, 12_345, 777, 40_001, 3]
            .iter()
            .map(|&n| sorted_u64(n, u64::MAX))
            .collect();
        for (buf, parts) in [(512, 1), (512, 5), (3000, 3), (100_000, 2)] {
            check_direct(runs.clone(), buf, parts);
        }
        // Many equal keys: parts cut inside runs of equal keys, at unaligned positions.
        let dups: Vec<Vec<u64>> = [9000, 7001, 13].iter().map(|&n| sorted_u64(n, 4)).collect();
        check_direct(dups, 700, 7);
        // Four-byte elements: 1024 to a block.
        let mut seed = 5;
        let runs32: Vec<Vec<u32>> = [4097, 1, 10_000]
            .iter()
            .map(|&n| {
                let mut v: Vec<u32> = (0..n).map(|_| lcg(&mut seed) as u32).collect();
                v.sort_unstable();
                v
            })
            .collect();
        check_direct(runs32, 1024, 3);
    }

    #[test]
    fn a_run_cut_short_under_direct_reads_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("runs");
        let data: Vec<u64> = (0..20_000).collect();
        let runs = write_runs(&path, &[data], 16);
        let files = vec![File::open(&path).unwrap()];
        let direct = vec![Some(
            crate::sys::open_direct(&path).unwrap_or_else(|_| File::open(&path).unwrap()),
        )];
        // Another process truncates the run: the merge reports it, it does not panic.
        File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(8 * 10_000 + 3)
            .unwrap();
        let cuts = vec![vec![0], vec![20_000]];
        let sources = part_sources(&runs, &files, &direct, &cuts, 0);
        let r = IoPool::scope(2, |io| {
            merge::<u64, _, Error>(
                &sources,
                1024,
                1000,
                &BufferPool::default(),
                Some(io),
                |_| Ok(()),
            )
        });
        assert!(matches!(r, Err(Error::Truncated { .. })), "{r:?}");
    }

    #[test]
    fn sampler_keeps_every_stride_th() {
        let v: Vec<u64> = (0..100).collect();
        let mut s = Sampler::new(100, 7);
        for p in v.chunks(13) {
            s.feed(p);
        }
        let (stride, samples) = s.finish();
        assert_eq!(stride, 15);
        assert_eq!(samples, (0..100).step_by(15).collect::<Vec<_>>());
    }

    #[test]
    fn merge_and_split_match_sort() {
        let dir = tempfile::tempdir().unwrap();
        for (case, modulus) in [(0, u64::MAX), (1, 5), (2, 1)] {
            let mut seed = 42 + case;
            let mut runs_data: Vec<Vec<u64>> = (0..7)
                .map(|i| {
                    let n = [0, 1, 50, 333, 64, 1000, 17][i];
                    let mut v: Vec<u64> = (0..n).map(|_| lcg(&mut seed) % modulus).collect();
                    v.sort_unstable();
                    v
                })
                .collect();
            let runs: Vec<Run<u64>> = runs_data
                .iter()
                .enumerate()
                .map(|(i, d)| write_run(dir.path(), &format!("r{case}-{i}"), d, 10))
                .collect();
            let files: Vec<File> = runs.iter().map(|r| File::open(&r.path).unwrap()).collect();
            let mut expect: Vec<u64> = runs_data.concat();
            expect.sort_unstable();
            runs_data.clear();
            for parts in [1, 2, 3, 8] {
                let cuts = split_points::<u64>(&runs, &files, parts).unwrap();
                let mut got = Vec::new();
                for p in 0..parts {
                    let start: u64 = cuts[p].iter().sum();
                    assert_eq!(
                        start as usize,
                        got.len(),
                        "part {p} starts where the last ended"
                    );
                    let sources = part_sources(&runs, &files, &[], &cuts, p);
                    merge::<u64, _, Error>(&sources, 4, 5, &BufferPool::default(), None, |o| {
                        got.extend_from_slice(o);
                        Ok(())
                    })
                    .unwrap();
                }
                assert_eq!(got, expect, "case {case}, {parts} parts");
                if parts > 1 && modulus == 1 {
                    // All keys equal: the rank split still balances the parts.
                    let sizes: Vec<u64> = (0..parts)
                        .map(|p| cuts[p + 1].iter().sum::<u64>() - cuts[p].iter().sum::<u64>())
                        .collect();
                    let (mn, mx) = (sizes.iter().min().unwrap(), sizes.iter().max().unwrap());
                    assert!(mx - mn <= 1, "{sizes:?}");
                }
            }
        }
    }
}
