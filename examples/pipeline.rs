//! The library tour as a program: a feature matrix larger than the memory it may use goes
//! through generation, statistics, standardisation, a histogram and an external sort, every
//! step through outcore's public API, each file written atomically.
//!
//! ```text
//! cargo run --release --features datasets --example pipeline                    # 1 GiB of features, 64 MiB windows
//! cargo run --release --features datasets --example pipeline -- --rows 67108864  # 4 GiB
//! ../shared/tools/memcap 256 -- target/release/examples/pipeline   # prove it: 4x the cap
//! ```
//!
//! 1. **Generate** `features.npy`, `rows × cols` of `f32`: standard normal values from
//!    `outcore::datasets`, written window by window into a created mapping
//!    (`Generator::fill_part`), each window then scaled per column (column `c` gets mean `c`
//!    and standard deviation `1 + c/4`, so the statistics have something to find) and
//!    released, so the file never occupies more than a window of memory.
//! 2. **Column statistics** in one pass: `kernels::axis_stats` over the mapping gives every
//!    column's mean and standard deviation (and min, max), checked against the construction.
//! 3. **Standardise** into `standardised.npy`: `(x - mean_c) / std_c`, a map written window
//!    by window through `stream::windows_mut` with release-behind; a second
//!    `axis_stats` pass checks that every column now has mean 0 and standard deviation 1.
//! 4. **Histogram** of one column: the column is copied out into `column.npy` (a strided
//!    gather, window by window) and `kernels::histogram` counts it in 16 bins over [-4, 4).
//! 5. **Sort** that column out of core: `sort::sort_file` with a memory budget smaller than
//!    the column, so runs are written and merged; the result is checked to be sorted, to
//!    have the column's min and max at its ends, and to be a permutation (same sum of keys).
//!
//! 6. **Generate → sort → consume**: `rows` Zipf-distributed `u32` from the dataset
//!    generator go straight into a `sort::Sorter` (no input file) under the same budget, and
//!    the sorted stream is consumed as it is merged (`finish_with`): an exact distinct count
//!    and the 10 most frequent values (runs of equal values in the sorted stream). The same
//!    data then goes the file way, generated into `zipf.npy`, sorted by `sort_file` into
//!    `zipf-sorted.npy` and read back for the same tally; the two tallies must agree. The
//!    storage bytes each way read and wrote (`read_bytes`/`write_bytes` of
//!    `/proc/self/io`, and the bytes passed through system calls, `rchar`/`wchar`) are
//!    printed side by side: the streamed sort writes and reads the data once (its runs), the
//!    file way three times (input, runs, output).
//!
//! The report prints each step's time and throughput.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use outcore::datasets::{Distribution, Generator};
use outcore::kernels;
use outcore::sort::{sort_file, SortKey, SortOptions, Sorter};
use outcore::stream::{self, Stream};
use outcore::{chunk, MappedArray, MappedArrayMut, ParOptions};
use rayon::prelude::*;

/// The outcore tour: generate, reduce, map, histogram and sort a feature matrix larger than
/// the memory it uses.
#[derive(Debug)]
struct Args {
    /// Rows of the feature matrix (`--rows`, default 2^24)
    rows: usize,
    /// Columns (features) (`--cols`, default 16)
    cols: usize,
    /// Bytes per window of the streamed passes, what each pass keeps in memory (`--window`,
    /// default 64 MiB)
    window: usize,
    /// Memory budget of the external sort (`--sort-memory`, default 32 MiB)
    sort_memory: usize,
    /// The column to histogram and sort (`--column`, default 3)
    column: usize,
    /// Seed of the generated features (`--seed`, default 7)
    seed: u64,
    /// Directory for the files, created if missing (`--dir`, default target/pipeline)
    dir: PathBuf,
    /// Keep the files instead of removing them at the end (`--keep`)
    keep: bool,
}

impl Args {
    /// Parses `--name value` pairs and `--keep`; exits with a usage line on anything else.
    fn parse() -> Args {
        let mut a = Args {
            rows: 1 << 24,
            cols: 16,
            window: 64 << 20,
            sort_memory: 32 << 20,
            column: 3,
            seed: 7,
            dir: PathBuf::from("target/pipeline"),
            keep: false,
        };
        let usage = || -> ! {
            eprintln!(
                "usage: pipeline [--rows N] [--cols N] [--window BYTES] [--sort-memory BYTES] \
                 [--column J] [--seed S] [--dir DIR] [--keep]"
            );
            std::process::exit(2)
        };
        let mut it = std::env::args().skip(1);
        while let Some(flag) = it.next() {
            if flag == "--keep" {
                a.keep = true;
                continue;
            }
            let value = it.next().unwrap_or_else(|| usage());
            let num = || value.parse::<usize>().unwrap_or_else(|_| usage());
            match flag.as_str() {
                "--rows" => a.rows = num(),
                "--cols" => a.cols = num(),
                "--window" => a.window = num(),
                "--sort-memory" => a.sort_memory = num(),
                "--column" => a.column = num(),
                "--seed" => a.seed = num() as u64,
                "--dir" => a.dir = PathBuf::from(&value),
                _ => usage(),
            }
        }
        a
    }
}

/// Column `c`'s true mean and standard deviation, by construction.
fn truth(c: usize) -> (f64, f64) {
    (c as f64, 1.0 + c as f64 / 4.0)
}

struct Report {
    steps: Vec<(&'static str, Duration, u64, String)>,
}

impl Report {
    fn step<R>(
        &mut self,
        name: &'static str,
        bytes: u64,
        f: impl FnOnce() -> outcore::Result<(R, String)>,
    ) -> outcore::Result<R> {
        eprintln!("{name}...");
        let t = Instant::now();
        let (r, note) = f()?;
        let dt = t.elapsed();
        eprintln!("  {:.2} s  {note}", dt.as_secs_f64());
        self.steps.push((name, dt, bytes, note));
        Ok(r)
    }

    fn print(&self) {
        println!("\n| step | time s | GB/s | result |");
        println!("|---|---|---|---|");
        let mut total = Duration::ZERO;
        for (name, dt, bytes, note) in &self.steps {
            let rate = *bytes as f64 / dt.as_secs_f64().max(1e-9) / 1e9;
            println!("| {name} | {:.2} | {rate:.2} | {note} |", dt.as_secs_f64());
            total += *dt;
        }
        println!("| total | {:.2} | | |", total.as_secs_f64());
    }
}

fn check(ok: bool, what: String) -> outcore::Result<()> {
    if ok {
        Ok(())
    } else {
        Err(outcore::Error::InvalidArgument(format!(
            "check failed: {what}"
        )))
    }
}

fn main() {
    let args = Args::parse();
    let result = run(&args);
    if !args.keep {
        for p in files(&args.dir).into_iter().chain(stream_files(&args.dir)) {
            let _ = std::fs::remove_file(p);
        }
    }
    if let Err(e) = result {
        eprintln!("pipeline: error: {e}");
        std::process::exit(1);
    }
}

fn run(args: &Args) -> outcore::Result<()> {
    let (rows, cols, j) = (args.rows, args.cols, args.column);
    check(
        j < cols && rows > 0,
        format!("--column {j} must be < --cols {cols}"),
    )?;
    let n = rows
        .checked_mul(cols)
        .ok_or_else(|| outcore::Error::InvalidArgument("rows × cols overflows".into()))?;
    let bytes = (n * 4) as u64;
    std::fs::create_dir_all(&args.dir).map_err(|e| outcore::Error::io(&args.dir, "create", e))?;
    let [features, standardised, column, sorted] = files(&args.dir);
    println!(
        "outcore pipeline: {rows} × {cols} f32 = {:.2} GiB of features, {} MiB windows, \
         {} MiB sort budget, {} threads",
        bytes as f64 / (1u64 << 30) as f64,
        args.window >> 20,
        args.sort_memory >> 20,
        rayon::current_num_threads()
    );
    let mut stream = Stream::new();
    stream.window_bytes(args.window).release_behind(true);
    let mut report = Report { steps: vec![] };

    // 1. Generate.
    report.step("generate features.npy", bytes, || {
        let windows = generate(&features, rows, cols, args.seed, &stream)?;
        Ok((
            (),
            format!("N(c, (1 + c/4)^2) in column c, written in {windows} windows"),
        ))
    })?;

    // 2. Column statistics, one pass.
    let stats = report.step("column means and stds", bytes, || {
        let a = MappedArray::<f32>::open(&features)?;
        let s = kernels::axis_stats(&a, cols, 0)?;
        let (mean, std) = (s.mean(), s.std(0));
        let worst = (0..cols)
            .map(|c| {
                let (m, sd) = truth(c);
                ((mean[c] - m).abs() / sd).max((std[c] / sd - 1.0).abs())
            })
            .fold(0.0, f64::max);
        // Standard errors are ~1/sqrt(rows); allow 6 of them.
        let tol = 6.0 / (rows as f64).sqrt();
        check(worst < tol.max(1e-6), format!("column stats off by {worst} > {tol}"))?;
        let note = format!(
            "column {j}: mean {:.4} (true {}), std {:.4} (true {}); worst relative error {worst:.1e}",
            mean[j],
            truth(j).0,
            std[j],
            truth(j).1
        );
        Ok(((mean, std), note))
    })?;
    let (mean, std) = stats;

    // 3. Standardise into a new file.
    report.step("standardise -> standardised.npy", 2 * bytes, || {
        let src = MappedArray::<f32>::open(&features)?;
        let mut out = MappedArrayMut::<f32>::create(&standardised, &[rows, cols])?;
        let scale: Vec<(f32, f32)> = (0..cols)
            .map(|c| (mean[c] as f32, (1.0 / std[c]) as f32))
            .collect();
        stream::windows_mut(&mut out, &stream, |start, w| {
            let input = &src[start..start + w.len()];
            chunk::par_chunks_mut(w, &ParOptions::new()).for_each(|(off, chunk)| {
                for (k, y) in chunk.iter_mut().enumerate() {
                    let i = start + off + k;
                    let (m, inv) = scale[i % cols];
                    *y = (input[off + k] - m) * inv;
                }
            });
            src.release(start..start + w.len())?;
            Ok(())
        })?;
        out.persist()?;
        let a = MappedArray::<f32>::open(&standardised)?;
        let s = kernels::axis_stats(&a, cols, 0)?;
        let worst = s
            .mean()
            .iter()
            .zip(s.std(0))
            .map(|(m, sd)| m.abs().max((sd - 1.0).abs()))
            .fold(0.0, f64::max);
        check(worst < 1e-4, format!("standardised columns off by {worst}"))?;
        Ok((
            (),
            format!("every column now mean 0, std 1 (worst deviation {worst:.1e})"),
        ))
    })?;

    // 4. Histogram of one column.
    let hist = report.step(
        "column -> column.npy, histogram",
        bytes + (rows * 4) as u64,
        || {
            let a = MappedArray::<f32>::open(&standardised)?;
            let mut col = MappedArrayMut::<f32>::create(&column, &[rows])?;
            stream::windows_mut(&mut col, &stream, |start, w| {
                w.par_iter_mut()
                    .enumerate()
                    .for_each(|(k, y)| *y = a[(start + k) * cols + j]);
                // The rows this window read from: done with them.
                a.release(start * cols..(start + w.len()) * cols)?;
                Ok(())
            })?;
            col.persist()?;
            let col = MappedArray::<f32>::open(&column)?;
            let h = kernels::histogram(&col, 16, Some((-4.0, 4.0)))?;
            let within1: u64 = h[6..10].iter().sum();
            let frac = within1 as f64 / rows as f64;
            // Five binomial standard errors, and at least 0.01.
            let tol = (5.0 * (0.6827 * 0.3173 / rows as f64).sqrt()).max(0.01);
            check(
                (frac - 0.6827).abs() < tol,
                format!("{frac} of the column within 1 std; a normal has 0.6827"),
            )?;
            Ok((h, format!("{frac:.4} within 1 std (a normal: 0.6827)")))
        },
    )?;

    // 5. Sort the column out of core.
    report.step("sort column.npy out of core", 2 * (rows * 4) as u64, || {
        let mut opts = SortOptions::new();
        opts.memory(args.sort_memory);
        let r = sort_file(&column, &sorted, &opts)?;
        let s = MappedArray::<f32>::open(&sorted)?;
        let c = MappedArray::<f32>::open(&column)?;
        let (min, max) = kernels::min_max(&c).unwrap_or((f32::NAN, f32::NAN));
        let is_sorted = s.par_windows(2).all(|w| w[0].sort_key() <= w[1].sort_key());
        // Same multiset: the sums of keys match (a checksum a permutation cannot change).
        let key_sum = |v: &[f32]| -> u128 { v.par_iter().map(|x| u128::from(x.sort_key())).sum() };
        check(is_sorted, "sorted column is not sorted".into())?;
        check(
            key_sum(&s) == key_sum(&c),
            "sorted column is not a permutation".into(),
        )?;
        check(
            s[0] == min && s[rows - 1] == max,
            format!(
                "ends {} {} are not the min {min} and max {max}",
                s[0],
                s[rows - 1]
            ),
        )?;
        let median = s[rows / 2];
        Ok((
            (),
            format!(
                "{} ({} runs, {} merge levels); min {min:.3}, median {median:.4}, max {max:.3}",
                if r.external { "external" } else { "in memory" },
                r.runs,
                r.merge_levels,
            ),
        ))
    })?;

    // 6. Generate → sort → consume, against generate → file → sort_file → read.
    let [zipf, zipf_sorted] = stream_files(&args.dir);
    let zbytes = (rows * 4) as u64;
    let (streamed_io, streamed_tally) =
        report.step("generate -> Sorter -> tally (streamed)", zbytes, || {
            let before = IoCounters::now();
            let mut opts = SortOptions::new();
            opts.memory(args.sort_memory).tmp_dir(&args.dir);
            let mut sorter = Sorter::<u32>::new(&opts)?;
            let g = Generator::new(Distribution::Zipf, args.seed);
            let mut window = vec![0u32; GEN_WINDOW.min(rows)];
            for first in (0..rows).step_by(window.len()) {
                let part = &mut window[..(rows - first).min(GEN_WINDOW)];
                g.fill_part(part, first, rows, &ParOptions::new(), &|_| {})?;
                sorter.push(part)?;
            }
            let mut tally = Tally::default();
            let r = sorter.finish_with(|block| {
                tally.feed(block);
                Ok(())
            })?;
            let tally = tally.finish();
            let io = IoCounters::now().since(&before);
            let note = format!(
                "{} runs, {} merge levels; {} distinct, top value {:?}; {io}",
                r.runs,
                r.merge_levels,
                tally.distinct,
                tally.top.first()
            );
            Ok(((io, tally), note))
        })?;
    let (file_io, file_tally) = report.step(
        "generate -> zipf.npy -> sort_file -> read -> tally",
        3 * zbytes,
        || {
            let before = IoCounters::now();
            {
                let g = Generator::new(Distribution::Zipf, args.seed);
                let mut a = MappedArrayMut::<u32>::create(&zipf, &[rows])?;
                stream::windows_mut(&mut a, &stream, |start, w| {
                    g.fill_part(w, start, rows, &ParOptions::new(), &|_| {})?;
                    Ok(())
                })?;
                a.persist()?;
            }
            // Written back and out of the page cache, as a file generated earlier would be.
            evict(&zipf)?;
            let mut opts = SortOptions::new();
            opts.memory(args.sort_memory);
            let r = sort_file(&zipf, &zipf_sorted, &opts)?;
            let sorted = MappedArray::<u32>::open(&zipf_sorted)?;
            let mut tally = Tally::default();
            for start in (0..rows).step_by(GEN_WINDOW) {
                let end = (start + GEN_WINDOW).min(rows);
                tally.feed(&sorted[start..end]);
                sorted.release(start..end)?;
            }
            let tally = tally.finish();
            let io = IoCounters::now().since(&before);
            let note = format!("{} runs, {} merge levels; {io}", r.runs, r.merge_levels);
            Ok(((io, tally), note))
        },
    )?;
    check(
        streamed_tally == file_tally,
        format!("streamed tally {streamed_tally:?} != file tally {file_tally:?}"),
    )?;
    check(
        streamed_tally.sorted && streamed_tally.n == rows as u64,
        format!(
            "streamed sort: sorted {}, {} of {rows} elements",
            streamed_tally.sorted, streamed_tally.n
        ),
    )?;
    // Zipf: rank 1 is the most frequent value.
    check(
        streamed_tally.top.first().map(|t| t.1) == Some(1),
        format!(
            "most frequent {:?}, Zipf's is 1",
            streamed_tally.top.first()
        ),
    )?;

    println!("\nhistogram of standardised column {j} (16 bins over [-4, 4)):");
    let peak = *hist.iter().max().unwrap_or(&1).max(&1);
    for (b, &count) in hist.iter().enumerate() {
        let lo = -4.0 + b as f64 * 0.5;
        let bar = "#".repeat((count * 50 / peak) as usize);
        println!("  [{lo:+.1}, {:+.1}) {count:>10} {bar}", lo + 0.5);
    }
    report.print();

    println!(
        "\nI/O of sorting {rows} u32 ({:.1} MiB) under a {} MiB budget, consumed as a stream \
         (exact distinct count {}, top-10 values by frequency):",
        zbytes as f64 / (1 << 20) as f64,
        args.sort_memory >> 20,
        streamed_tally.distinct
    );
    println!("| way | storage read MiB | storage written MiB | read() MiB | write() MiB |");
    println!("|---|---|---|---|---|");
    for (name, io) in [
        ("generate -> Sorter -> consumer", &streamed_io),
        ("generate -> file -> sort_file -> read output", &file_io),
    ] {
        let mib = |b: u64| b as f64 / (1 << 20) as f64;
        println!(
            "| {name} | {:.1} | {:.1} | {:.1} | {:.1} |",
            mib(io.read_bytes),
            mib(io.write_bytes),
            mib(io.rchar),
            mib(io.wchar)
        );
    }
    Ok(())
}

/// Elements per generated window of step 6.
const GEN_WINDOW: usize = 1 << 20;

/// The files of step 6: the generated Zipf data and its sorted copy.
fn stream_files(dir: &Path) -> [PathBuf; 2] {
    ["zipf.npy", "zipf-sorted.npy"].map(|f| dir.join(f))
}

/// The exact distinct count and the 10 most frequent values of a sorted stream, fed block
/// by block.
#[derive(Debug, Default, PartialEq)]
struct Tally {
    n: u64,
    distinct: u64,
    sorted: bool,
    /// (count, value), most frequent first (ties: smaller value first).
    top: Vec<(u64, u32)>,
    last: Option<u32>,
    run: u64,
    unsorted: bool,
}

impl Tally {
    const K: usize = 10;

    fn feed(&mut self, block: &[u32]) {
        for &x in block {
            match self.last {
                Some(l) if l == x => self.run += 1,
                Some(l) => {
                    self.unsorted |= x < l;
                    self.close(l);
                    self.run = 1;
                }
                None => self.run = 1,
            }
            self.last = Some(x);
        }
        self.n += block.len() as u64;
    }

    /// A run of equal values ended.
    fn close(&mut self, value: u32) {
        self.distinct += 1;
        let entry = (self.run, value);
        let better = |a: &(u64, u32), b: &(u64, u32)| {
            (a.0, std::cmp::Reverse(a.1)) > (b.0, std::cmp::Reverse(b.1))
        };
        if self.top.len() < Self::K {
            self.top.push(entry);
        } else if let Some(worst) = (0..Self::K).min_by(|&i, &j| {
            if better(&self.top[i], &self.top[j]) {
                std::cmp::Ordering::Greater
            } else {
                std::cmp::Ordering::Less
            }
        }) {
            if better(&entry, &self.top[worst]) {
                self.top[worst] = entry;
            }
        }
    }

    fn finish(mut self) -> Tally {
        if let Some(l) = self.last {
            self.close(l);
        }
        self.top.sort_by_key(|&(c, v)| (std::cmp::Reverse(c), v));
        self.sorted = !self.unsorted;
        self.last = None;
        self.run = 0;
        self
    }
}

/// This process's I/O counters (`/proc/self/io`): bytes through read/write system calls
/// (`rchar`, `wchar`) and bytes fetched from or sent to storage (`read_bytes`,
/// `write_bytes`; page-cache hits and mapped reads of cached pages do not count).
#[derive(Clone, Copy, Debug, Default)]
struct IoCounters {
    rchar: u64,
    wchar: u64,
    read_bytes: u64,
    write_bytes: u64,
}

impl IoCounters {
    fn now() -> IoCounters {
        let text = std::fs::read_to_string("/proc/self/io").unwrap_or_default();
        let mut c = IoCounters::default();
        for line in text.lines() {
            let Some((k, v)) = line.split_once(':') else {
                continue;
            };
            let v = v.trim().parse().unwrap_or(0);
            match k {
                "rchar" => c.rchar = v,
                "wchar" => c.wchar = v,
                "read_bytes" => c.read_bytes = v,
                "write_bytes" => c.write_bytes = v,
                _ => {}
            }
        }
        c
    }

    fn since(&self, before: &IoCounters) -> IoCounters {
        IoCounters {
            rchar: self.rchar - before.rchar,
            wchar: self.wchar - before.wchar,
            read_bytes: self.read_bytes - before.read_bytes,
            write_bytes: self.write_bytes - before.write_bytes,
        }
    }
}

impl std::fmt::Display for IoCounters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mib = |b: u64| b as f64 / (1 << 20) as f64;
        write!(
            f,
            "storage read {:.1} MiB, written {:.1} MiB",
            mib(self.read_bytes),
            mib(self.write_bytes)
        )
    }
}

/// Writes `path` back to the disk and drops it from the page cache.
fn evict(path: &Path) -> outcore::Result<()> {
    use std::os::unix::io::AsRawFd;
    let f = std::fs::File::open(path).map_err(|e| outcore::Error::io(path, "open", e))?;
    f.sync_all()
        .map_err(|e| outcore::Error::io(path, "fsync", e))?;
    // SAFETY: posix_fadvise only reads its integer arguments; the descriptor is open.
    unsafe {
        libc::posix_fadvise(f.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED);
    }
    Ok(())
}

/// The files the pipeline writes: features, standardised, column, sorted column.
fn files(dir: &Path) -> [PathBuf; 4] {
    [
        "features.npy",
        "standardised.npy",
        "column.npy",
        "column-sorted.npy",
    ]
    .map(|f| dir.join(f))
}

/// Writes `features.npy` window by window: generate, scale each column, release. Returns
/// the number of windows.
fn generate(
    path: &Path,
    rows: usize,
    cols: usize,
    seed: u64,
    stream: &Stream,
) -> outcore::Result<usize> {
    let n = rows * cols;
    let g = Generator::new(Distribution::Normal, seed);
    let mut a = MappedArrayMut::<f32>::create(path, &[rows, cols])?;
    let windows = stream::windows_mut(&mut a, stream, |start, w| {
        g.fill_part(w, start, n, &ParOptions::new(), &|_| {})?;
        chunk::par_chunks_mut(w, &ParOptions::new()).for_each(|(off, chunk)| {
            for (k, x) in chunk.iter_mut().enumerate() {
                let (m, sd) = truth((start + off + k) % cols);
                *x = (f64::from(*x) * sd + m) as f32;
            }
        });
        Ok(())
    })?;
    a.persist()?;
    Ok(windows.len())
}
