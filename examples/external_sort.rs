//! `external_sort`: sort a file larger than memory, then check the result.
//!
//! ```text
//! cargo run --release --example external_sort -- INPUT OUTPUT [--memory 1GiB] [--tmp DIR]
//!     [--threads N] [--record-size BYTES --key-size BYTES] [--dtype T]
//! cargo run --release --example external_sort        # the default job, see below
//! ```
//!
//! With no arguments it generates (once) `datasets/default-u64.npy`, 1 GiB of random `u64`,
//! and sorts it into `datasets/out/` with a budget four times smaller, so that the external
//! merge sort runs. At the end it prints each phase's time and throughput, the peak memory,
//! and whether the output verified: sorted, and a permutation of the input (an
//! order-independent checksum: the sum and the xor of a 64-bit hash of every element).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use outcore::datasets::{parse_size, Distribution, Generator};
use std::time::{Duration, Instant};

use bytemuck::Pod;
use clap::Parser;
use indicatif::{ProgressBar, ProgressStyle};
use outcore::sort::{sort_file, sort_raw_file, Phase, Record, SortKey, SortOptions, SortReport};
use outcore::{chunk, DType, MappedArray, MappedArrayMut, ParOptions};
use rayon::prelude::*;

#[derive(Parser, Debug)]
#[command(
    about = "Sort a .npy or raw file of any size under a memory budget, then verify the output.",
    after_help = "Input: a 1-D .npy file (its dtype is read from the header), or a raw file with \
--dtype (u8 u16 u32 u64 i8 i16 i32 i64 f32 f64) or with --record-size/--key-size for \
fixed-size records sorted by their first KEY bytes as unsigned bytes. Supported record \
layouts (size/key): 100/10 (the Sort Benchmark's), 16/8, 32/8, 64/16.\n\n\
With no arguments: generates datasets/default-u64.npy (1 GiB of random u64) once and sorts it \
with a 256 MiB budget."
)]
struct Args {
    /// The file to sort.
    input: Option<PathBuf>,
    /// Where the sorted file goes (may equal INPUT).
    output: Option<PathBuf>,
    /// Memory budget for data buffers: bytes, or with a unit (KiB, MiB, GiB, KB, MB, GB).
    #[arg(long, default_value = "1GiB", value_parser = parse_size)]
    memory: u64,
    /// Directory for the sorted runs (default: the output's directory).
    #[arg(long)]
    tmp: Option<PathBuf>,
    /// Threads (default: all cores).
    #[arg(long, default_value_t = 0)]
    threads: usize,
    /// Raw input of fixed-size records of this many bytes (needs --key-size).
    #[arg(long, requires = "key_size")]
    record_size: Option<usize>,
    /// Bytes of each record's key, at its start.
    #[arg(long, requires = "record_size")]
    key_size: Option<usize>,
    /// Raw input of this element type.
    #[arg(long, conflicts_with = "record_size")]
    dtype: Option<String>,
    /// First write INPUT as a .npy of this many uniform random u64 (gen-dataset's, seed 0),
    /// if it does not exist.
    #[arg(long)]
    generate: Option<u64>,
    /// Skip the verification pass.
    #[arg(long)]
    no_verify: bool,
}

fn generate(path: &Path, n: u64) -> outcore::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| outcore::Error::io(dir, "create", e))?;
    }
    eprintln!("generating {} ({n} random u64)...", path.display());
    let t = Instant::now();
    let mut a = MappedArrayMut::<u64>::create(path, &[n as usize])?;
    // The same values as `gen-dataset --dtype u64 --dist uniform --seed 0`.
    Generator::new(Distribution::Uniform, 0).fill(a.as_mut_slice(), &ParOptions::new())?;
    let a = a.persist()?;
    // Written back by persist; drop it from the page cache so the sort starts cold.
    a.release(0..a.len())?;
    eprintln!("  {:.1} s", t.elapsed().as_secs_f64());
    Ok(())
}

/// The order-independent checksum of a multiset of elements, and whether it was sorted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Check {
    sum: u64,
    xor: u64,
    count: u64,
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

/// Checksum of a file's elements, and whether they are in order; reads through a mapping,
/// releasing each chunk behind so that a capped run stays within its cap.
fn checksum<T: SortKey>(a: &MappedArray<T>) -> outcore::Result<(Check, bool)> {
    let data = a.as_slice();
    let r: outcore::Result<Vec<(Check, bool)>> = chunk::par_chunks(data, &ParOptions::new())
        .map(|(start, c)| {
            let mut ck = Check {
                count: c.len() as u64,
                ..Check::default()
            };
            let mut sorted = start == 0 || data[start - 1].sort_key() <= c[0].sort_key();
            let mut prev = c[0].sort_key();
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
            let back = (2 << 20) / std::mem::size_of::<T>().max(1);
            a.release(start.saturating_sub(back)..start + c.len())?;
            Ok((ck, sorted))
        })
        .collect();
    Ok(r?
        .into_iter()
        .fold((Check::default(), true), |(a, s), (b, t)| {
            (
                Check {
                    sum: a.sum.wrapping_add(b.sum),
                    xor: a.xor ^ b.xor,
                    count: a.count + b.count,
                },
                s && t,
            )
        }))
}

/// How the file is opened for verification.
#[derive(Clone, Copy)]
enum Format {
    Npy,
    Raw,
}

fn open<T: Pod + outcore::Element>(p: &Path, f: Format) -> outcore::Result<MappedArray<T>> {
    match f {
        Format::Npy => MappedArray::open(p),
        Format::Raw => MappedArray::open_raw(p),
    }
}

fn open_any<T: Pod>(p: &Path) -> outcore::Result<MappedArray<T>> {
    MappedArray::open_raw(p)
}

struct Outcome {
    report: SortReport,
    sort_time: Duration,
    rss_after_sort: u64,
    verify: Option<(bool, bool, Duration)>,
}

fn run<T: SortKey>(
    args: &Args,
    input: &Path,
    output: &Path,
    opts: &SortOptions,
    format: Format,
    open_fn: fn(&Path, Format) -> outcore::Result<MappedArray<T>>,
) -> outcore::Result<Outcome> {
    // The input's checksum first: an in-place sort replaces it.
    let before = if args.no_verify {
        None
    } else {
        let t = Instant::now();
        let a = open_fn(input, format)?;
        let c = checksum(&a)?.0;
        Some((c, t.elapsed()))
    };
    reset_peak_rss();
    let t = Instant::now();
    let report = match format {
        Format::Npy => sort_file(input, output, opts)?,
        Format::Raw => sort_raw_file::<T>(input, output, opts)?,
    };
    let sort_time = t.elapsed();
    let rss_after_sort = max_rss();
    let verify = match before {
        None => None,
        Some((c_in, t_in)) => {
            let t = Instant::now();
            let b = open_fn(output, format)?;
            let (c_out, sorted) = checksum(&b)?;
            Some((sorted, c_in == c_out, t_in + t.elapsed()))
        }
    };
    Ok(Outcome {
        report,
        sort_time,
        rss_after_sort,
        verify,
    })
}

/// Peak resident memory of this process since the last [`reset_peak_rss`], in bytes
/// (`VmHWM`; `getrusage`'s `ru_maxrss` where that is unavailable).
fn max_rss() -> u64 {
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
    u.ru_maxrss as u64 * 1024
}

/// Starts a new peak-RSS measurement (Linux `clear_refs`), so that generating the data or
/// checksumming the input does not count towards the sort's peak.
fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// One progress bar per phase, replaced when the phase changes.
fn progress_bars(opts: &mut SortOptions) {
    let state: Arc<Mutex<Option<(Phase, ProgressBar)>>> = Arc::default();
    opts.progress(move |phase, done, total| {
        let mut s = state.lock().unwrap();
        if s.as_ref().map(|(p, _)| *p) != Some(phase) {
            if let Some((_, bar)) = s.take() {
                bar.finish();
            }
            let bar = ProgressBar::new(total);
            bar.set_style(
                ProgressStyle::with_template(
                    "{prefix:>16} [{bar:40}] {bytes}/{total_bytes} {binary_bytes_per_sec} {elapsed}",
                )
                .unwrap()
                .progress_chars("=> "),
            );
            bar.set_prefix(phase.to_string());
            *s = Some((phase, bar));
        }
        let (_, bar) = s.as_ref().unwrap();
        bar.set_position(done);
        if done >= total {
            bar.finish();
        }
    });
}

fn main() {
    let mut args = Args::parse();
    if let Err(e) = real_main(&mut args) {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn real_main(args: &mut Args) -> outcore::Result<()> {
    let default_job = args.input.is_none();
    if default_job {
        let input = PathBuf::from("datasets/default-u64.npy");
        if !input.exists() {
            generate(&input, (1u64 << 30) / 8)?;
        }
        std::fs::create_dir_all("datasets/out")
            .map_err(|e| outcore::Error::io("datasets/out", "create", e))?;
        args.input = Some(input);
        args.output = Some(PathBuf::from("datasets/out/default-u64.sorted.npy"));
        args.memory = (1 << 30) / 4;
    }
    let input = args.input.clone().expect("set above");
    let Some(output) = args.output.clone() else {
        return Err(outcore::Error::InvalidArgument(
            "give INPUT and OUTPUT, or no arguments for the default job".into(),
        ));
    };
    if let Some(n) = args.generate {
        if !input.exists() {
            generate(&input, n)?;
        }
    }
    let mut opts = SortOptions::new();
    opts.memory(usize::try_from(args.memory).unwrap_or(usize::MAX))
        .threads(args.threads);
    if let Some(t) = &args.tmp {
        opts.tmp_dir(t);
    }
    progress_bars(&mut opts);

    macro_rules! prim {
        ($t:ty, $f:expr) => {
            run::<$t>(args, &input, &output, &opts, $f, open::<$t>)
        };
    }
    macro_rules! rec {
        ($n:literal, $k:literal) => {
            run::<Record<$n, $k>>(args, &input, &output, &opts, Format::Raw, |p, _| {
                open_any(p)
            })
        };
    }
    let dispatch = |d: DType, f: Format| match d {
        DType::Bool | DType::U8 => prim!(u8, f),
        DType::U16 => prim!(u16, f),
        DType::U32 => prim!(u32, f),
        DType::U64 => prim!(u64, f),
        DType::I8 => prim!(i8, f),
        DType::I16 => prim!(i16, f),
        DType::I32 => prim!(i32, f),
        DType::I64 => prim!(i64, f),
        DType::F32 => prim!(f32, f),
        DType::F64 => prim!(f64, f),
        other => Err(outcore::Error::InvalidArgument(format!(
            "dtype {other} is not supported here"
        ))),
    };
    let (what, outcome) = if let (Some(rs), Some(ks)) = (args.record_size, args.key_size) {
        let o = match (rs, ks) {
            (100, 10) => rec!(100, 10),
            (16, 8) => rec!(16, 8),
            (32, 8) => rec!(32, 8),
            (64, 16) => rec!(64, 16),
            _ => {
                return Err(outcore::Error::InvalidArgument(format!(
                    "records of {rs} bytes with {ks}-byte keys are not built in; supported \
                     (size/key): 100/10, 16/8, 32/8, 64/16"
                )))
            }
        }?;
        (format!("records of {rs} bytes ({ks}-byte keys)"), o)
    } else if let Some(name) = &args.dtype {
        let d = DType::from_name(name).ok_or_else(|| {
            outcore::Error::InvalidArgument(format!(
                "unknown dtype {name:?} (u8 u16 u32 u64 i8 i16 i32 i64 f32 f64)"
            ))
        })?;
        (format!("raw {}", d.name()), dispatch(d, Format::Raw)?)
    } else {
        let header = match outcore::npy::Header::read(&input) {
            Ok(h) => h,
            Err(outcore::Error::BadMagic { .. }) => {
                return Err(outcore::Error::InvalidArgument(format!(
                    "{} is not a .npy file: a raw file needs --dtype or --record-size/--key-size",
                    input.display()
                )))
            }
            Err(e) => return Err(e),
        };
        (
            format!(".npy {}", header.dtype.name()),
            dispatch(header.dtype, Format::Npy)?,
        )
    };

    let r = &outcome.report;
    let mb = |bytes: u64, d: Duration| bytes as f64 / 1e6 / d.as_secs_f64().max(1e-9);
    println!();
    println!(
        "sorted {} elements ({what}, {:.1} MiB) with a {:.0} MiB budget: {}",
        r.elements,
        r.bytes as f64 / (1u64 << 20) as f64,
        args.memory as f64 / (1u64 << 20) as f64,
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
        "  peak RSS during the sort: {:.0} MiB (page cache not included; under a memory cgroup \
         see its max_usage)",
        outcome.rss_after_sort as f64 / (1u64 << 20) as f64
    );
    match outcome.verify {
        None => println!("  verification skipped"),
        Some((sorted, same, d)) => {
            println!(
                "  verified in {:.2} s: sorted: {}, permutation of the input (checksum): {}",
                d.as_secs_f64(),
                if sorted { "yes" } else { "NO" },
                if same { "yes" } else { "NO" }
            );
            if !(sorted && same) {
                return Err(outcore::Error::InvalidArgument(
                    "the output did not verify".into(),
                ));
            }
        }
    }
    if default_job {
        println!("  output: {}", output.display());
    }
    Ok(())
}
