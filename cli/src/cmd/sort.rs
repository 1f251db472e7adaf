//! `outcore sort`: the external merge sort of a file of any size under a memory budget, one
//! progress bar per phase, then a report (phases with times and throughput, runs, merge
//! levels, peak memory) and, with `--verify`, a check that the output is sorted and a
//! permutation of the input.

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use outcore::sort::{sort_file, sort_raw_file, Record, SortKey, SortOptions, SortReport};
use outcore::{chunk, with_dtype, DType, MappedArray, ParOptions};
use rayon::prelude::*;

use crate::error::{fail, usage, CliError, Result};
use crate::files::{self, parse_dtype};
use crate::size::{human, parse_budget};
use crate::{interrupt, Global};

/// Sort a .npy or raw file of any size under a memory budget (an external merge sort).
///
/// A 1-D .npy file is sorted into a .npy file of the same dtype and shape, in numpy's order
/// (`np.sort`: NaN last). A raw (headerless) file needs its element type (`--dtype`), or the
/// layout of its fixed-size records (`--record-size` and `--key-size`, records compared by
/// their first KEY bytes as unsigned bytes), and is sorted into a raw file. Data larger than
/// the budget is cut into sorted runs in a temporary directory, then merged; the output
/// appears under its name only when complete, and Ctrl-C removes every temporary file.
#[derive(Debug, clap::Args)]
#[command(after_help = AFTER_HELP)]
pub struct Args {
    /// The file to sort: a 1-D .npy, or a raw file with --dtype or --record-size/--key-size
    pub input: PathBuf,

    /// The sorted file (.npy in, .npy out; raw in, raw out); may be INPUT only with --force
    pub output: PathBuf,

    /// Memory budget for the sort's data buffers: 256MiB, 4GiB, 1.5GB, ... [default: what
    /// this machine allows: the least of the memory cgroup's limit, MemAvailable and
    /// RLIMIT_AS, less a quarter for the page cache; a budget above that limit is refused]
    #[arg(long, value_parser = parse_budget, value_name = "SIZE")]
    pub memory: Option<usize>,

    /// Directory for the sorted runs [default: the output's directory]; needs about the
    /// input's size free
    #[arg(long, value_name = "DIR")]
    pub tmp: Option<PathBuf>,

    /// The input is raw records of B bytes (needs --key-size); built-in layouts (size/key):
    /// 100/10 (the Sort Benchmark's), 16/8, 32/8, 64/16
    #[arg(
        long,
        value_name = "B",
        requires = "key_size",
        conflicts_with = "dtype"
    )]
    pub record_size: Option<usize>,

    /// Bytes of each record's key, at its start (needs --record-size)
    #[arg(long, value_name = "K", requires = "record_size")]
    pub key_size: Option<usize>,

    /// Element type of a raw input (u8 u16 u32 u64 i8 i16 i32 i64 f32 f64); for a .npy it
    /// must agree with the header
    #[arg(long, value_parser = parse_dtype, value_name = "T")]
    pub dtype: Option<DType>,

    /// Check the output: sorted, and a permutation of the input (an order-independent
    /// checksum of every element, read once before and once after the sort)
    #[arg(long)]
    pub verify: bool,

    /// Replace OUTPUT if it exists (and allow OUTPUT to be INPUT)
    #[arg(long)]
    pub force: bool,
}

const AFTER_HELP: &str = "\
Examples:
  outcore sort x.npy sorted.npy --memory 256MiB --verify
  outcore sort data.u32 data.sorted.u32 --dtype u32 --tmp /scratch
  outcore sort recs.dat recs.sorted --record-size 100 --key-size 10 --memory 1GiB
  outcore sort x.npy x.npy --force              # in place (the input is replaced)
  outcore sort x.npy sorted.zarr                # into a Zarr array (built with --features zarr)

The report goes to stdout: each phase's time and throughput, runs, merge levels, the peak
resident memory (VmHWM), and with --verify whether the output is sorted and a permutation of
the input. Exit status 1 if the verification fails, 130 after Ctrl-C (temporary files
removed, no output written).";

/// The record layouts built in: (record bytes, key bytes).
const RECORD_LAYOUTS: &str = "100/10, 16/8, 32/8, 64/16";

/// How the input is read and sorted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Format {
    Npy,
    Raw,
}

/// Runs `outcore sort`.
pub fn run(args: Args, g: &Global) -> Result<()> {
    if crate::zarr::is_zarr(&args.input) || crate::zarr::is_zarr_output(&args.output) {
        return crate::zarr::sort(args, g);
    }
    // The input first: a missing or unreadable input is the first thing to report.
    let (what, format, dtype) = match (args.record_size, args.key_size) {
        (Some(rs), Some(ks)) => {
            if files::is_npy(&args.input)? {
                return Err(usage(format!(
                    "{}: is a .npy file; --record-size/--key-size are for raw record files \
                     (a .npy file's dtype comes from its header)",
                    args.input.display()
                )));
            }
            if !is_record_layout(rs, ks) {
                return Err(usage(format!(
                    "records of {rs} bytes with {ks}-byte keys are not built in; supported \
                     layouts (size/key): {RECORD_LAYOUTS}"
                )));
            }
            (
                format!("records of {rs} bytes, {ks}-byte keys"),
                Format::Raw,
                None,
            )
        }
        _ => {
            let input = files::open_input(&args.input, args.dtype)?;
            let format = if input.header.is_some() {
                Format::Npy
            } else {
                Format::Raw
            };
            let shape = input.array.shape().to_vec();
            if format == Format::Npy && shape.len() != 1 {
                return Err(fail(format!(
                    "{}: a {}-D array of shape {shape:?}; sort takes 1-D arrays (reshape it \
                     to 1-D first, e.g. with numpy's ravel)",
                    args.input.display(),
                    shape.len()
                )));
            }
            let d = input.array.dtype();
            let what = match format {
                Format::Npy => format!(".npy {}", d.name()),
                Format::Raw => format!("raw {}", d.name()),
            };
            (what, format, Some(d))
        }
    };
    files::check_output(&args.output, args.force, &[&args.input])?;
    if let Some(t) = &args.tmp {
        check_tmp(t)?;
    }

    let mut opts = SortOptions::new();
    if let Some(m) = args.memory {
        opts.memory(m);
    }
    opts.cancel_flag(interrupt::flag());
    if let Some(t) = &args.tmp {
        opts.tmp_dir(t);
    }
    let ui = g.ui();
    ui.sort_bars(&mut opts);
    let job = Job {
        args: &args,
        opts: &opts,
        ui,
        format,
    };
    let outcome = match dtype {
        Some(d) => with_dtype!(d, T => {
            let open: Opener<T> = match format {
                Format::Npy => |p| MappedArray::open(p),
                Format::Raw => |p| MappedArray::open_raw(p),
            };
            job.sort::<T>(open)
        }),
        None => {
            let (rs, ks) = (args.record_size, args.key_size);
            match (rs.unwrap_or(0), ks.unwrap_or(0)) {
                (100, 10) => job.sort::<Record<100, 10>>(|p| MappedArray::open_raw(p)),
                (16, 8) => job.sort::<Record<16, 8>>(|p| MappedArray::open_raw(p)),
                (32, 8) => job.sort::<Record<32, 8>>(|p| MappedArray::open_raw(p)),
                (64, 16) => job.sort::<Record<64, 16>>(|p| MappedArray::open_raw(p)),
                (rs, ks) => unreachable!("record layout {rs}/{ks} checked above"),
            }
        }
    }?;
    print_report(&what, opts.get_memory(), &outcome);
    match outcome.verify {
        Some(v) if !v.ok() => Err(fail(format!(
            "{}: the output did not verify ({})",
            args.output.display(),
            v.problem()
        ))),
        _ => Ok(()),
    }
}

/// Whether `(record bytes, key bytes)` is a built-in layout.
fn is_record_layout(rs: usize, ks: usize) -> bool {
    matches!((rs, ks), (100, 10) | (16, 8) | (32, 8) | (64, 16))
}

/// `--tmp` must be an existing directory.
fn check_tmp(t: &Path) -> Result<()> {
    match std::fs::metadata(t) {
        Ok(m) if m.is_dir() => Ok(()),
        Ok(_) => Err(usage(format!(
            "--tmp {}: not a directory; give a directory for the sort's temporary runs",
            t.display()
        ))),
        Err(_) => Err(usage(format!(
            "--tmp {}: no such directory; create it first",
            t.display()
        ))),
    }
}

/// What a sort did and measured.
#[derive(Debug)]
pub struct Outcome {
    /// The library's report.
    pub report: SortReport,
    /// Wall time of the sort itself.
    pub sort_time: Duration,
    /// Peak resident memory during the sort, in bytes.
    pub peak_rss: u64,
    /// The verification's result, if asked for.
    pub verify: Option<Verified>,
}

/// The result of `--verify`.
#[derive(Clone, Copy, Debug)]
pub struct Verified {
    /// Whether the output is in order.
    pub sorted: bool,
    /// Whether the output holds the same multiset of elements as the input.
    pub same: bool,
    /// Time of both checksum passes.
    pub time: Duration,
}

impl Verified {
    /// Sorted and a permutation of the input.
    pub fn ok(&self) -> bool {
        self.sorted && self.same
    }

    fn problem(&self) -> &'static str {
        match (self.sorted, self.same) {
            (false, false) => "not sorted, and not a permutation of the input",
            (false, true) => "not sorted",
            (true, false) => "not a permutation of the input",
            (true, true) => "none",
        }
    }
}

/// One sort's settings.
struct Job<'a> {
    args: &'a Args,
    opts: &'a SortOptions,
    ui: crate::progress::Ui,
    format: Format,
}

/// Maps a file of `T`s (a `.npy`'s data, or a raw file) for the verification.
type Opener<T> = fn(&Path) -> outcore::Result<MappedArray<T>>;

impl Job<'_> {
    fn sort<T: SortKey>(&self, open: Opener<T>) -> Result<Outcome> {
        let (input, output) = (&self.args.input, &self.args.output);
        // The input's checksum first: an in-place sort replaces it.
        let before = if self.args.verify {
            let t = Instant::now();
            let a = open(input)?;
            let bar = self
                .ui
                .bytes_bar("verify input", std::mem::size_of_val(a.as_slice()) as u64);
            let c = checksum(&a, &bar)?.0;
            bar.finish_and_clear();
            Some((c, t.elapsed()))
        } else {
            None
        };
        reset_peak_rss();
        let t = Instant::now();
        let report = match self.format {
            Format::Npy => sort_file(input, output, self.opts)?,
            Format::Raw => sort_raw_file::<T>(input, output, self.opts)?,
        };
        let sort_time = t.elapsed();
        let peak_rss = peak_rss();
        let verify = match before {
            None => None,
            Some((c_in, t_in)) => {
                let t = Instant::now();
                let checked = open(output).map_err(CliError::from).and_then(|b| {
                    let bar = self
                        .ui
                        .bytes_bar("verify output", std::mem::size_of_val(b.as_slice()) as u64);
                    let r = checksum(&b, &bar);
                    bar.finish_and_clear();
                    r
                });
                let (c_out, sorted) = match checked {
                    Ok(r) => r,
                    Err(CliError::Cancelled) => {
                        // Interrupted: the command did not complete, so it leaves no output
                        // (unless the output replaced the input, which must not be lost).
                        if !files::same_file(input, output) && input != output {
                            let _ = std::fs::remove_file(output);
                        }
                        return Err(CliError::Cancelled);
                    }
                    Err(e) => return Err(e),
                };
                Some(Verified {
                    sorted,
                    same: c_in == c_out,
                    time: t_in + t.elapsed(),
                })
            }
        };
        Ok(Outcome {
            report,
            sort_time,
            peak_rss,
            verify,
        })
    }
}

/// Prints the report the sort ends with.
pub fn print_report(what: &str, budget: usize, outcome: &Outcome) {
    let r = &outcome.report;
    let mb = |bytes: u64, d: Duration| bytes as f64 / 1e6 / d.as_secs_f64().max(1e-9);
    println!(
        "sorted {} elements ({what}, {}) with a {} budget: {}",
        r.elements,
        human(r.bytes),
        human(budget as u64),
        if r.external {
            format!(
                "external, {} runs, {} intermediate merge level(s)",
                r.runs, r.merge_levels
            )
        } else {
            "in memory".to_string()
        }
    );
    for (phase, d) in &r.phases {
        println!(
            "  {:<16} {:>8.2} s  {:>8.0} MB/s",
            phase.to_string(),
            d.as_secs_f64(),
            mb(r.bytes, *d)
        );
    }
    println!(
        "  {:<16} {:>8.2} s  {:>8.0} MB/s",
        "total",
        outcome.sort_time.as_secs_f64(),
        mb(r.bytes, outcome.sort_time)
    );
    println!(
        "  peak RSS during the sort: {} (page cache not included; under a memory cgroup see \
         its peak)",
        human(outcome.peak_rss)
    );
    match outcome.verify {
        None => println!("  not verified (--verify checks the output)"),
        Some(v) => println!(
            "  verified in {:.2} s: sorted: {}, permutation of the input (checksum): {}",
            v.time.as_secs_f64(),
            if v.sorted { "yes" } else { "NO" },
            if v.same { "yes" } else { "NO" }
        ),
    }
}

/// The order-independent checksum of a multiset of elements.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Check {
    sum: u64,
    xor: u64,
    count: u64,
}

impl Check {
    fn combine(self, o: Check) -> Check {
        Check {
            sum: self.sum.wrapping_add(o.sum),
            xor: self.xor ^ o.xor,
            count: self.count + o.count,
        }
    }
}

fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 33)).wrapping_mul(0xFF51_AFD7_ED55_8CCD);
    z = (z ^ (z >> 33)).wrapping_mul(0xC4CE_B9FE_1A85_EC53);
    z ^ (z >> 33)
}

/// A 64-bit hash of an element's bytes (murmur3's finaliser over 8-byte words).
fn hash_bytes(b: &[u8]) -> u64 {
    let mut h = 0x2545_F491_4F6C_DD1Du64 ^ b.len() as u64;
    for w in b.chunks(8) {
        let mut word = [0u8; 8];
        word[..w.len()].copy_from_slice(w);
        h = mix(h ^ u64::from_le_bytes(word));
    }
    h
}

/// The checksum of a file's elements (the sum and the xor of a hash of each, so the order
/// does not matter), and whether they are in order. Reads through the mapping in parallel
/// chunks, releasing each chunk's pages behind it so that the pass stays small in memory;
/// stops at Ctrl-C.
fn checksum<T: SortKey>(a: &MappedArray<T>, bar: &indicatif::ProgressBar) -> Result<(Check, bool)> {
    let data = a.as_slice();
    let size = std::mem::size_of::<T>().max(1);
    let flag = interrupt::flag();
    let r: Result<Vec<(Check, bool)>> = chunk::par_chunks(data, &ParOptions::new())
        .map(|(start, c)| {
            if flag.load(Ordering::Relaxed) {
                return Err(CliError::Cancelled);
            }
            let mut ck = Check {
                count: c.len() as u64,
                ..Check::default()
            };
            let Some(first) = c.first() else {
                return Ok((ck, true));
            };
            let mut sorted = start == 0 || data[start - 1].sort_key() <= first.sort_key();
            let mut prev = first.sort_key();
            for x in c {
                let h = hash_bytes(bytemuck::bytes_of(x));
                ck.sum = ck.sum.wrapping_add(h);
                ck.xor ^= h;
                let k = x.sort_key();
                sorted &= prev <= k;
                prev = k;
            }
            // From 2 MiB before the chunk: the page cache's large folios straddle chunk
            // boundaries, and only whole folios are dropped.
            let back = (2 << 20) / size;
            a.release(start.saturating_sub(back)..start + c.len())?;
            bar.inc((c.len() * size) as u64);
            Ok((ck, sorted))
        })
        .collect();
    Ok(r?
        .into_iter()
        .fold((Check::default(), true), |(a, s), (b, t)| {
            (a.combine(b), s && t)
        }))
}

/// Peak resident memory of this process since the last [`reset_peak_rss`], in bytes
/// (`VmHWM`; `getrusage`'s `ru_maxrss` where that is unavailable).
pub fn peak_rss() -> u64 {
    let hwm = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        });
    if let Some(kb) = hwm {
        return kb * 1024;
    }
    let mut u = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage fills the struct we pass; it is zero-initialised, a valid rusage.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, u.as_mut_ptr()) };
    if rc != 0 {
        return 0;
    }
    // SAFETY: zero-initialised above and filled by getrusage.
    let u = unsafe { u.assume_init() };
    u64::try_from(u.ru_maxrss).unwrap_or(0) * 1024
}

/// Starts a new peak-RSS measurement (Linux `clear_refs`), so that reading the input for
/// the verification does not count towards the sort's peak.
pub fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}
