//! Streamed sorting: the external sort with its input pushed by a producer ([`Sorter`]) or
//! read from a file ([`sort_file_with`]), and its output handed to a consumer in sorted
//! blocks instead of written to a file.
//!
//! See [`Sorter`] for the I/O it saves.

use std::path::{Path, PathBuf};
use std::thread::JoinHandle;
use std::time::Instant;

use super::*;
use crate::element::Element;

/// The most bytes handed to the consumer at once when the data is in memory.
const BLOCK_BYTES: usize = 4 << 20;

fn block_elems<T>() -> usize {
    (BLOCK_BYTES / std::mem::size_of::<T>().max(1)).max(1)
}

/// The consumer of a streamed sort: called with consecutive sorted blocks (never empty).
type Consumer<'c, T> = dyn FnMut(&[T]) -> Result<()> + 'c;

/// Hands `data` (sorted) to `consumer` in blocks, reporting progress in `phase`.
fn hand_over<T>(
    data: &[T],
    consumer: &mut Consumer<'_, T>,
    opts: &SortOptions,
    phase: Phase,
) -> Result<()> {
    let total = std::mem::size_of_val(data) as u64;
    let mut done = 0;
    for block in data.chunks(block_elems::<T>()) {
        consumer(block)?;
        done += std::mem::size_of_val(block) as u64;
        opts.report(phase, done, total)?;
    }
    Ok(())
}

/// Merges `runs` (no more than one merge takes) with one loser tree and hands the output to
/// `consumer` in order. The merge runs on a thread of its own, one block ahead of the
/// consumer, so that merging and consuming overlap. Each run gets a read buffer and a
/// prefetched one; the blocks handed over are at most a read buffer long.
fn merge_into<T: SortKey>(
    job: &Job<'_>,
    budget: usize,
    runs: &[Run<T::Key>],
    consumer: &mut Consumer<'_, T>,
) -> Result<()> {
    let files = open_runs(runs)?;
    let sources = merge::whole_sources(runs, &files);
    // Two buffers per run, the merge's output buffer, and three blocks: one being filled,
    // one waiting, one with the consumer.
    let buf = (budget / (2 * runs.len() + 4) / job.elem_size).max(1);
    let pool = BufferPool::default();
    let (sources, pool) = (&sources, &pool);
    // The channels live inside the scope: if the consumer panics, unwinding drops them before
    // the scope waits for the merge thread, whose next send then fails and ends it.
    std::thread::scope(|s| {
        let (full_tx, full_rx) = std::sync::mpsc::sync_channel::<Vec<T>>(1);
        let (empty_tx, empty_rx) = std::sync::mpsc::channel::<Vec<T>>();
        let merger = s.spawn(move || {
            merge::merge::<T, _, Halt>(sources, buf, buf, pool, None, |piece| {
                if piece.is_empty() {
                    return Ok(());
                }
                let mut block = empty_rx.try_recv().unwrap_or_default();
                block.clear();
                block.extend_from_slice(piece);
                // Fails only when the consumer stopped.
                full_tx.send(block).map_err(|_| Halt::Stopped)
            })
        });
        let mut consumed = Ok(());
        for block in &full_rx {
            consumed = consumer(&block).and_then(|()| {
                job.report(
                    Phase::FinalMerge,
                    std::mem::size_of_val(&block[..]) as u64,
                    job.bytes(),
                )
            });
            if consumed.is_err() {
                break;
            }
            let _ = empty_tx.send(block);
        }
        drop(full_rx);
        let merged = match merger.join() {
            Ok(Ok(())) => Ok(()),
            Ok(Err(Halt::Failed(e))) => Err(e),
            // The consumer stopped the merge: `consumed` holds its error.
            Ok(Err(Halt::Stopped)) => Ok(()),
            Err(p) => std::panic::resume_unwind(p),
        };
        consumed.and(merged)
    })
}

/// An external sort fed by a producer and drained by a consumer: [`push`](Sorter::push)
/// the data in pieces of any size, then [`finish_with`](Sorter::finish_with) a consumer that
/// receives the sorted data in blocks, in numpy's order (see [`SortKey`]).
///
/// # How it works
/// Pushed elements collect in memory. If all of them fit the budget with the sort's scratch
/// space, `finish_with` sorts them in memory and hands them over: nothing is written. The
/// first push beyond that sorts what was collected and writes it as the first run; later
/// runs are half as long, so that one is filled (and then sorted in place, in parallel)
/// while the one before is written by a background thread. `finish_with` sorts the last,
/// partial run in memory and merges it into the stream from there when the budget leaves
/// the merge of the runs on disk its minimum buffers (else it writes it as a run), merges
/// runs in levels only if there are more than one merge can take (as [`sort_file`] does),
/// and merges the rest with a loser tree straight into the consumer.
/// Compared with writing the data to a file, [`sort_file`] and reading its output, that
/// saves two writes and two reads of the data (see below).
///
/// # I/O
/// With `n` bytes of data that do not fit the budget (and no merge level):
///
/// | pipeline | reads | writes |
/// |---|---|---|
/// | producer → [`Sorter`] → consumer | runs: `≤ n` | runs: `≤ n` |
/// | file → [`sort_file_with`] → consumer | input + runs: `2n` | runs: `n` |
/// | file → [`sort_file`] → read the output | input + runs + output: `3n` | runs + output: `2n` |
/// | producer → write a file → [`sort_file`] → read the output | `3n` | input + runs + output: `3n` |
///
/// "Generate → sort → consume" thus writes and reads the data once (the runs, less the
/// last one when it can stay in memory) rather than three times, and data that fits the
/// budget is not written at all. Each merge level adds
/// one read and one write of the runs it merges, as for [`sort_file`].
///
/// # Memory
/// The budget ([`SortOptions::memory`]) covers the buffers: the collected data and the
/// sort's scratch, later two run buffers and the scratch, and in the merge a read buffer
/// and a prefetched one per run, and three blocks of the same size handed from the merge's
/// thread to the consumer.
///
/// # Files
/// Runs go to a locked directory `.outcore-sort-PID-N` in [`SortOptions::tmp_dir`] (by
/// default the system's temp directory, [`std::env::temp_dir`]), created at the first run
/// and removed when the sorter is finished or dropped, on success, on error (including the
/// consumer's) and on panic (including the consumer's), as [`sort_file`]'s.
///
/// # Examples
/// ```
/// # fn main() -> outcore::Result<()> {
/// use outcore::sort::{SortOptions, Sorter};
/// let dir = tempfile::tempdir().unwrap();
/// let mut opts = SortOptions::new();
/// opts.memory(16 << 10).tmp_dir(dir.path()); // 16 KiB: many runs
/// let mut sorter = Sorter::<u64>::new(&opts)?;
/// for i in 0..10u64 {
///     let block: Vec<u64> = (0..1000).map(|j| (i * 1000 + j) * 7919 % 10_007).collect();
///     sorter.push(&block)?;
/// }
/// // Count distinct values and check the order, block by block.
/// let (mut distinct, mut last, mut n) = (0u64, None, 0u64);
/// let report = sorter.finish_with(|block: &[u64]| {
///     for &x in block {
///         assert!(last.is_none_or(|l| l <= x));
///         distinct += u64::from(last != Some(x));
///         last = Some(x);
///     }
///     n += block.len() as u64;
///     Ok(())
/// })?;
/// assert_eq!((n, distinct), (10_000, 10_000));
/// assert!(report.external && report.runs > 1);
/// assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "runs removed");
/// # Ok(()) }
/// ```
pub struct Sorter<T: SortKey> {
    opts: SortOptions,
    budget: usize,
    threads: usize,
    par: ParOptions,
    tmp_dir: PathBuf,
    /// The most elements sorted in memory, with no run written.
    mem_elems: usize,
    /// The run length once runs are being written: two buffers and the scratch fit.
    run_elems: usize,
    /// What is collected: at most `limit` elements.
    buf: Vec<T>,
    limit: usize,
    /// The buffer of the last run written, to fill next.
    spare: Option<Vec<T>>,
    /// The background write of the previous run; gives its buffer back.
    writer: Option<JoinHandle<Result<Vec<T>>>>,
    run_dir: Option<RunDir>,
    runs: Vec<Run<T::Key>>,
    elements: u64,
    started: Instant,
}

impl<T: SortKey> std::fmt::Debug for Sorter<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sorter")
            .field("opts", &self.opts)
            .field("elements", &self.elements)
            .field("runs", &self.runs.len())
            .field("mem_elems", &self.mem_elems)
            .field("run_elems", &self.run_elems)
            .finish_non_exhaustive()
    }
}

impl<T: SortKey> Sorter<T> {
    /// A sorter with `opts`' budget, temp directory, threads, fan-in cap, progress callback
    /// and cancel flag. Nothing is allocated or written until data is pushed.
    ///
    /// # Errors
    /// [`Error::BudgetTooSmall`] for a budget too small to hold 8 elements,
    /// [`Error::BudgetTooLarge`] for one larger than the process's memory limit.
    pub fn new(opts: &SortOptions) -> Result<Sorter<T>> {
        let budget = opts.checked_budget::<T>()?;
        let (threads, par) = opts.par();
        let tmp_dir = opts
            .get_tmp_dir()
            .map_or_else(std::env::temp_dir, Path::to_path_buf);
        let mem_elems = run_elems_for::<T>(budget, threads, 0);
        let run_elems = run_elems_for::<T>(budget, threads, 1);
        Ok(Sorter {
            opts: opts.clone(),
            budget,
            threads,
            par,
            tmp_dir,
            mem_elems,
            run_elems,
            buf: Vec::new(),
            limit: mem_elems,
            spare: None,
            writer: None,
            run_dir: None,
            runs: Vec::new(),
            elements: 0,
            started: Instant::now(),
        })
    }

    /// Elements pushed so far.
    pub fn len(&self) -> u64 {
        self.elements
    }

    /// Whether nothing was pushed yet.
    pub fn is_empty(&self) -> bool {
        self.elements == 0
    }

    /// Runs written so far (0 while everything pushed fits the budget).
    pub fn runs(&self) -> usize {
        self.runs.len()
    }

    /// Adds `data` to the sort. When the collected elements fill their buffer, they are
    /// sorted and written as a run (overlapping the write with the next pushes).
    ///
    /// # Errors
    /// Errors of creating or writing a run ([`Error::DiskFull`], [`Error::Io`], a temp
    /// directory that does not exist ([`Error::NotFound`]) or is not a directory
    /// ([`Error::NotADirectory`])), and [`Error::Cancelled`] if
    /// the cancel flag was raised. The sorter should then be dropped (which removes its
    /// runs).
    pub fn push(&mut self, mut data: &[T]) -> Result<()> {
        while !data.is_empty() {
            if self.buf.len() == self.limit {
                self.spill(false)?;
            }
            if self.buf.capacity() == 0 {
                self.buf.reserve_exact(self.limit);
            }
            let take = (self.limit - self.buf.len()).min(data.len());
            self.buf.extend_from_slice(&data[..take]);
            self.elements += take as u64;
            data = &data[take..];
        }
        Ok(())
    }

    /// Adds every element of `items` (as [`push`](Sorter::push)).
    ///
    /// # Errors
    /// As [`push`](Sorter::push).
    pub fn push_iter(&mut self, items: impl IntoIterator<Item = T>) -> Result<()> {
        for x in items {
            if self.buf.len() == self.limit {
                self.spill(false)?;
            }
            if self.buf.capacity() == 0 {
                self.buf.reserve_exact(self.limit);
            }
            self.buf.push(x);
            self.elements += 1;
        }
        Ok(())
    }

    /// Sorts the collected elements and writes them as a run: synchronously for the first
    /// (the in-memory buffer, which then gives way to two run buffers) and the `last`,
    /// in the background otherwise.
    fn spill(&mut self, last: bool) -> Result<()> {
        let first = self.run_dir.is_none();
        if first {
            check_tmp_dir(&self.tmp_dir)?;
            let _ = remove_stale_sort_files(&self.tmp_dir);
            self.run_dir = Some(RunDir::new(&self.tmp_dir)?);
        }
        let dir = &self.run_dir.as_ref().expect("created above").path;
        let path = dir.join(format!("run-0-{}", self.runs.len()));
        let mut data = std::mem::take(&mut self.buf);
        // While the previous run is still being written.
        crate::sort::par_sort_with(&mut data, &self.par)?;
        let mut sampler = Sampler::new(data.len() as u64, 4);
        sampler.feed(&data);
        let (stride, samples) = sampler.finish();
        let len = data.len();
        self.wait_writer()?;
        if first || last {
            write_run(&path, &data)?;
            if first {
                // The in-memory buffer is larger than a run buffer: give it back.
                drop(data);
                self.limit = self.run_elems;
            } else {
                self.spare = Some(data);
            }
        } else {
            let p = path.clone();
            self.writer = Some(std::thread::spawn(move || {
                write_run(&p, &data)?;
                Ok(data)
            }));
        }
        if !last {
            let mut next = self.spare.take().unwrap_or_default();
            next.clear();
            self.buf = next;
        }
        self.runs.push(Run {
            path,
            offset: 0,
            len: len as u64,
            stride,
            samples,
        });
        let size = std::mem::size_of::<T>() as u64;
        let written: u64 = self.runs.iter().map(|r| r.len).sum::<u64>() * size;
        self.opts
            .report(Phase::RunFormation, written, self.elements * size)
    }

    /// Waits for the background write of the previous run, keeping its buffer.
    fn wait_writer(&mut self) -> Result<()> {
        if let Some(h) = self.writer.take() {
            match h.join() {
                Ok(r) => self.spare = Some(r?),
                Err(p) => std::panic::resume_unwind(p),
            }
        }
        Ok(())
    }

    /// Sorts what was pushed and hands it to `consumer` in order, in blocks of at most a
    /// few MiB (never empty), then removes the runs. Returns what the sort did.
    ///
    /// The consumer may stop the sort by returning an error, which `finish_with` returns
    /// once the runs are removed; a panic of the consumer propagates, also after the runs
    /// are removed.
    ///
    /// # Errors
    /// The consumer's error; as [`push`](Sorter::push) for writing the last run; errors
    /// reading the runs back ([`Error::NotFound`] if they were removed, [`Error::Io`]);
    /// [`Error::Cancelled`].
    pub fn finish_with(
        mut self,
        mut consumer: impl FnMut(&[T]) -> Result<()>,
    ) -> Result<SortReport> {
        let size = std::mem::size_of::<T>();
        let bytes = self.elements * size as u64;
        let mut report = SortReport {
            elements: self.elements,
            bytes,
            external: !self.runs.is_empty(),
            ..SortReport::default()
        };
        if self.runs.is_empty() {
            let start = Instant::now();
            self.opts.report(Phase::InMemory, 0, bytes)?;
            let mut data = std::mem::take(&mut self.buf);
            crate::sort::par_sort_with(&mut data, &self.par)?;
            hand_over(&data, &mut consumer, &self.opts, Phase::InMemory)?;
            report.phases.push((Phase::InMemory, start.elapsed()));
            return Ok(report);
        }
        let plan = plan_with::<T>(
            self.run_elems,
            self.elements,
            self.threads,
            self.budget,
            self.opts.max_fan_in,
        );
        // The last, partial run stays in memory and joins the stream from there (saving its
        // write and read) when the runs on disk need no merge level with it as one more
        // input, and their merge still gets buffers of the minimum size with what it leaves
        // of the budget (a read buffer and a prefetched one per run, four blocks in flight
        // and one for merging in the tail).
        let tail_bytes = self.buf.len() * size;
        let rest = self.budget.saturating_sub(tail_bytes);
        let inputs = self.runs.len();
        let keep_tail =
            !self.buf.is_empty() && inputs < plan.fan_in && rest / (2 * inputs + 5) >= plan.min_buf;
        let mut tail = Vec::new();
        if keep_tail {
            tail = std::mem::take(&mut self.buf);
            crate::sort::par_sort_with(&mut tail, &self.par)?;
        } else if !self.buf.is_empty() {
            self.spill(true)?;
        }
        self.wait_writer()?;
        self.buf = Vec::new();
        self.spare = None;
        report
            .phases
            .push((Phase::RunFormation, self.started.elapsed()));
        report.runs = self.runs.len();
        let runs = std::mem::take(&mut self.runs);
        let dir = self
            .run_dir
            .as_ref()
            .expect("runs were written")
            .path
            .clone();
        let threads = (self.threads, self.par.clone());
        let mut job = Job::new::<T>(&dir, None, 0, self.elements, threads, &self.opts);
        let runs = merge_levels::<T>(&mut job, &plan, self.budget, runs, &dir, &mut report)?;
        job.start_phase(Phase::FinalMerge, bytes)?;
        if tail.is_empty() {
            merge_into::<T>(&job, self.budget, &runs, &mut consumer)?;
        } else {
            let merge_budget = rest - rest / (2 * inputs + 5);
            let mut rest_of_tail = 0;
            {
                let job = &job;
                let (tail, next) = (&tail[..], &mut rest_of_tail);
                let mut out: Vec<T> = Vec::new();
                let mut with_tail = |block: &[T]| -> Result<()> {
                    let j = *next;
                    let last = block[block.len() - 1].sort_key();
                    let k = j + tail[j..].partition_point(|x| x.sort_key() <= last);
                    if k == j {
                        return consumer(block);
                    }
                    let cap = block.len();
                    let (mut a, mut b) = (0, j);
                    out.clear();
                    while a < block.len() || b < k {
                        let from_tail =
                            a == block.len() || (b < k && tail[b].sort_key() < block[a].sort_key());
                        if from_tail {
                            out.push(tail[b]);
                            b += 1;
                        } else {
                            out.push(block[a]);
                            a += 1;
                        }
                        if out.len() == cap {
                            consumer(&out)?;
                            out.clear();
                        }
                    }
                    if !out.is_empty() {
                        consumer(&out)?;
                    }
                    *next = k;
                    job.report(Phase::FinalMerge, ((k - j) * size) as u64, bytes)
                };
                merge_into::<T>(job, merge_budget, &runs, &mut with_tail)?;
            }
            for block in tail[rest_of_tail..].chunks(block_elems::<T>()) {
                consumer(block)?;
                job.report(
                    Phase::FinalMerge,
                    std::mem::size_of_val(block) as u64,
                    bytes,
                )?;
            }
        }
        report
            .phases
            .push((Phase::FinalMerge, job.phase_start.elapsed()));
        Ok(report)
    }

    /// Sorts what was pushed into a `Vec` (convenient when the result fits in memory, e.g.
    /// in tests; a consumer with [`finish_with`](Sorter::finish_with) need not hold it).
    ///
    /// # Errors
    /// As [`finish_with`](Sorter::finish_with).
    pub fn finish_to_vec(self) -> Result<Vec<T>> {
        let mut out = Vec::with_capacity(usize::try_from(self.elements).unwrap_or(0));
        self.finish_with(|b| {
            out.extend_from_slice(b);
            Ok(())
        })?;
        Ok(out)
    }
}

impl<T: SortKey> Drop for Sorter<T> {
    fn drop(&mut self) {
        // The run being written must be done before the run directory goes.
        if let Some(h) = self.writer.take() {
            let _ = h.join();
        }
    }
}

/// Sorts the 1-D `.npy` file `input` and hands the sorted data to `consumer` in blocks, in
/// order, without writing an output file: the input is read once, the runs written once
/// and read once (see [`Sorter`] for the I/O this saves). Data that fits the
/// budget is read, sorted in memory and handed over, with nothing written.
///
/// Run formation is [`sort_file`]'s three-stage pipeline (read ‖ sort ‖ write); merge
/// levels happen only when there are more runs than one merge can take; the final merge is
/// one loser tree feeding the consumer. Runs go to [`SortOptions::tmp_dir`], by default the
/// input's directory.
///
/// ```
/// # fn main() -> outcore::Result<()> {
/// use outcore::sort::{sort_file_with, SortOptions};
/// use outcore::MappedArrayMut;
/// let dir = tempfile::tempdir().unwrap();
/// let path = dir.path().join("in.npy");
/// let mut a = MappedArrayMut::<i32>::create(&path, &[5000])?;
/// for (i, x) in a.iter_mut().enumerate() {
///     *x = (i as i32 * 7919) % 1000 - 500;
/// }
/// a.persist()?;
/// // The 10 largest values, from the end of the sorted stream.
/// let mut top = std::collections::VecDeque::new();
/// sort_file_with(&path, SortOptions::new().memory(8 << 10), |block: &[i32]| {
///     for &x in block {
///         top.push_back(x);
///         if top.len() > 10 {
///             top.pop_front();
///         }
///     }
///     Ok(())
/// })?;
/// // Each value of -500..500 appears 5 times.
/// assert_eq!(top, [498, 498, 498, 498, 498, 499, 499, 499, 499, 499]);
/// # Ok(()) }
/// ```
///
/// # Errors
/// As [`sort_file`] for the input, the budget and the temp directory, plus
/// [`Error::DtypeMismatch`] when the file's dtype is not `T`'s, and the consumer's error.
/// Temp files are removed on every error and on panic (including the consumer's).
pub fn sort_file_with<T: SortKey + Element>(
    input: impl AsRef<Path>,
    opts: &SortOptions,
    consumer: impl FnMut(&[T]) -> Result<()>,
) -> Result<SortReport> {
    let input = input.as_ref();
    let (file, header) = open_npy_1d(
        input,
        "sort_file_with sorts 1-D arrays; reshape to 1-D (or sort each row) first",
    )?;
    if !T::accepts(header.dtype) {
        return Err(Error::DtypeMismatch {
            path: input.into(),
            expected: T::DTYPE,
            found: header.dtype,
        });
    }
    let mut consumer = consumer;
    sort_into::<T>(input, file, header.data_offset as u64, opts, &mut consumer)
}

/// Sorts the raw (headerless) file `input`, a sequence of `T`, handing the sorted data to
/// `consumer` as [`sort_file_with`] does.
///
/// # Errors
/// As [`sort_file_with`], plus [`Error::NotAMultiple`] when the file size is not a whole
/// number of elements.
pub fn sort_raw_file_with<T: SortKey>(
    input: impl AsRef<Path>,
    opts: &SortOptions,
    consumer: impl FnMut(&[T]) -> Result<()>,
) -> Result<SortReport> {
    let input = input.as_ref();
    let file = open_input(input)?;
    let mut consumer = consumer;
    sort_into::<T>(input, file, 0, opts, &mut consumer)
}

fn sort_into<T: SortKey>(
    input: &Path,
    file: File,
    data_offset: u64,
    opts: &SortOptions,
    consumer: &mut Consumer<'_, T>,
) -> Result<SortReport> {
    let budget = opts.checked_budget::<T>()?;
    let mut job = Job::for_file::<T>(input, file, data_offset, opts)?;
    let in_memory = job.fits_in_memory::<T>(budget);
    let mut report = job.empty_report(!in_memory);
    fileio::advise(job.file(), data_offset, job.bytes(), Hint::Sequential);
    if in_memory {
        hand_over_in_memory::<T>(&mut job, consumer, &mut report)?;
        return Ok(report);
    }
    let tmp_dir = opts
        .tmp_dir
        .clone()
        .unwrap_or_else(|| temp::parent_dir(input).to_path_buf());
    let plan = run_plan::<T>(&job, budget);
    let runs_need = run_bytes(&plan, job.bytes(), job.elem_size);
    check_free_space(Some((&tmp_dir, runs_need)), None)?;
    let _ = remove_stale_sort_files(&tmp_dir);
    let (run_dir, runs) =
        form_and_reduce_runs::<T>(&mut job, &plan, budget, &tmp_dir, &mut report)?;
    job.start_phase(Phase::FinalMerge, job.bytes())?;
    merge_into::<T>(&job, budget, &runs, consumer)?;
    report
        .phases
        .push((Phase::FinalMerge, job.phase_start.elapsed()));
    drop(run_dir);
    Ok(report)
}

/// The in-memory path of [`sort_into`]: reads the whole input, sorts it and hands it over.
fn hand_over_in_memory<T: SortKey>(
    job: &mut Job<'_>,
    consumer: &mut Consumer<'_, T>,
    report: &mut SortReport,
) -> Result<()> {
    job.start_phase(Phase::InMemory, job.bytes())?;
    let mut data = vec![T::zeroed(); job.elements as usize];
    job.read_input(&mut data, 0)?;
    fileio::drop_all(job.file());
    sort_in_memory(&mut data, &job.par)?;
    hand_over(&data, consumer, job.opts, Phase::InMemory)?;
    report
        .phases
        .push((Phase::InMemory, job.phase_start.elapsed()));
    Ok(())
}
