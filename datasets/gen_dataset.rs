//! `gen-dataset`: writes a reproducible dataset of any size (see datasets/README.md).
//!
//! ```text
//! cargo run --release --bin gen-dataset -- --dtype f64 --dist uniform --size 4GiB --out /data/u.npy
//! ```
//!
//! Every argument is checked before the output is created: the dtype and distribution go
//! together, the length follows from exactly one of `--count`, `--size` and `--shape` (or
//! agrees with it), the directory exists and the filesystem has room. Then the file is
//! created under a temporary name with its blocks allocated, filled through the mapping by
//! all threads, synced and renamed: an interrupted run leaves no file under the final name,
//! and the next run in the same directory removes the temporary file a killed run left.
//! The last line printed is the data's checksum (`outcore::datasets::Checksum`).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use outcore::datasets::parse_size;
use outcore::datasets::{
    Checksum, Distribution, Generate, Generator, Kind, PartialChecksum, Record100, BLOCK_LEN,
};
use outcore::npy::Header;
use outcore::{ensure_free_space, remove_stale_temp_files, Error, MappedArrayMut, ParOptions};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Format {
    /// numpy's .npy (every numeric dtype)
    Npy,
    /// headerless little-endian data (every dtype; the only format for record100)
    Raw,
}

/// Writes a reproducible synthetic dataset: the same arguments give the same bytes on any
/// machine and any number of threads.
#[derive(Debug, Parser)]
#[command(name = "gen-dataset", version, after_help = AFTER_HELP)]
struct Args {
    /// Element type: u8 u16 u32 u64 i8 i16 i32 i64 f32 f64, or record100 (Sort Benchmark
    /// records: 100 bytes, 10-byte key, the record's index in the payload)
    #[arg(long, value_parser = parse_kind)]
    dtype: Kind,

    /// Distribution: uniform normal sorted reverse nearly-sorted few-unique zipf equal
    #[arg(long, value_parser = parse_dist)]
    dist: Distribution,

    /// Number of elements
    #[arg(long, value_parser = parse_count, conflicts_with = "size", value_name = "N")]
    count: Option<usize>,

    /// Bytes of data (not counting a .npy header), a multiple of the element size:
    /// 1000000, 512MiB, 4GiB, 1.5GB (K/M/G/T and KiB… are powers of 1024, KB/MB… of 1000)
    #[arg(long, value_parser = parse_size, value_name = "BYTES")]
    size: Option<u64>,

    /// Shape of the .npy array, e.g. 1000000,16 (its product is the element count)
    #[arg(long, value_parser = parse_shape, value_name = "R,C,...")]
    shape: Option<Shape>,

    /// Seed: datasets with the same arguments and seed are byte-identical
    #[arg(long, default_value_t = 0, value_name = "S")]
    seed: u64,

    /// Output format [default: npy, or raw for record100]
    #[arg(long, value_enum)]
    format: Option<Format>,

    /// Output file (replaced atomically if it exists)
    #[arg(long, value_name = "PATH")]
    out: PathBuf,

    /// Worker threads [default: all cores]; the output does not depend on it
    #[arg(long, default_value_t = 0, hide_default_value = true, value_name = "N")]
    threads: usize,

    /// Bound the memory the output occupies: write back and drop the generated data every
    /// SIZE bytes (e.g. 1GiB) instead of leaving it all to the kernel's write-back
    #[arg(long, value_parser = parse_size, value_name = "SIZE")]
    memory_budget: Option<u64>,

    /// No progress bar
    #[arg(long, short)]
    quiet: bool,
}

const AFTER_HELP: &str = "\
The last line printed is `checksum: <16 hex digits>`, a checksum of the data bytes
(datasets/README.md defines it and shows how to recompute it with numpy).";

/// A shape as given on the command line (a newtype, so clap does not read it as a list).
#[derive(Clone, Debug)]
struct Shape(Vec<usize>);

fn parse_kind(s: &str) -> Result<Kind, String> {
    s.parse().map_err(|e: Error| strip_prefix(e))
}

fn parse_dist(s: &str) -> Result<Distribution, String> {
    s.parse().map_err(|e: Error| strip_prefix(e))
}

/// clap prints "invalid value 'x' for '--dtype'": the library's "invalid argument: " prefix
/// would repeat it.
fn strip_prefix(e: Error) -> String {
    match e {
        Error::InvalidArgument(m) => m,
        e => e.to_string(),
    }
}

fn parse_count(s: &str) -> Result<usize, String> {
    s.replace('_', "")
        .parse()
        .map_err(|_| format!("{s:?} is not a whole number of elements"))
}

fn parse_shape(s: &str) -> Result<Shape, String> {
    let dims: Result<Vec<usize>, _> = s.split(',').map(|d| d.trim().parse::<usize>()).collect();
    match dims {
        Ok(d) if !d.is_empty() => Ok(Shape(d)),
        _ => Err(format!(
            "{s:?} is not a shape; write dimensions separated by commas, like 1000,16"
        )),
    }
}

/// Everything the run needs, decided and checked before any file is touched.
#[derive(Debug)]
struct Plan {
    kind: Kind,
    dist: Distribution,
    seed: u64,
    format: Format,
    count: usize,
    shape: Vec<usize>,
    out: PathBuf,
    dir: PathBuf,
    header_len: usize,
    data_len: u64,
    /// Elements generated between write-backs.
    window: usize,
}

fn plan(args: &Args) -> Result<Plan, String> {
    let kind = args.dtype;
    let size = kind.size();
    args.dist.check(kind).map_err(strip_prefix)?;

    let format = match (args.format, kind) {
        (Some(Format::Npy), Kind::Record100) => {
            return Err("record100 has no .npy dtype; write it with --format raw \
                        (the Sort Benchmark's own files are raw)"
                .into())
        }
        (Some(f), _) => f,
        (None, Kind::Record100) => Format::Raw,
        (None, _) => Format::Npy,
    };

    let from_size = match args.size {
        Some(bytes) if bytes % size as u64 != 0 => {
            let lo = bytes / size as u64 * size as u64;
            return Err(format!(
                "--size {bytes} bytes is not a multiple of the {kind} element size ({size} \
                 bytes); the nearest sizes are {lo} and {} bytes",
                lo + size as u64
            ));
        }
        Some(bytes) => Some(
            usize::try_from(bytes / size as u64)
                .map_err(|_| format!("--size {bytes} bytes is too large for this machine"))?,
        ),
        None => None,
    };
    let given = args.count.or(from_size);
    let (count, shape) = match (&args.shape, format) {
        (Some(_), Format::Raw) => {
            return Err(
                "--shape describes a .npy array, and a raw file has no shape; \
                        drop --shape or use --format npy"
                    .into(),
            )
        }
        (Some(Shape(dims)), Format::Npy) => {
            let product = dims
                .iter()
                .try_fold(1usize, |a, &d| a.checked_mul(d))
                .ok_or_else(|| format!("--shape {dims:?} has too many elements"))?;
            match given {
                Some(n) if n != product => {
                    let how = if args.count.is_some() {
                        format!("--count is {n}")
                    } else {
                        format!("--size holds {n} {kind} elements")
                    };
                    return Err(format!(
                        "--shape {} holds {product} elements, but {how}",
                        join(dims)
                    ));
                }
                _ => (product, dims.clone()),
            }
        }
        (None, _) => match given {
            Some(n) => (n, vec![n]),
            None => {
                return Err(
                    "give the dataset's length with --count N, --size BYTES or --shape R,C".into(),
                )
            }
        },
    };
    let data_len = (count as u64)
        .checked_mul(size as u64)
        .filter(|&b| usize::try_from(b).is_ok())
        .ok_or_else(|| format!("{count} {kind} elements are too many bytes for this machine"))?;
    let header_len = match (format, kind.dtype()) {
        (Format::Npy, Some(d)) => Header::new(d, &shape).to_bytes().len(),
        _ => 0,
    };

    let out = args.out.clone();
    if out.is_dir() {
        return Err(format!(
            "{}: is a directory; give the output file's name",
            out.display()
        ));
    }
    let dir = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    match std::fs::metadata(&dir) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => return Err(format!("{}: not a directory", dir.display())),
        Err(_) => return Err(format!("{}: no such directory", dir.display())),
    }
    let window = match args.memory_budget {
        // Whole blocks (parts must be), at least one.
        Some(b) => {
            usize::try_from(b / size as u64)
                .unwrap_or(usize::MAX)
                .max(BLOCK_LEN)
                / BLOCK_LEN
                * BLOCK_LEN
        }
        None => count,
    };
    Ok(Plan {
        window,
        kind,
        dist: args.dist,
        seed: args.seed,
        format,
        count,
        shape,
        out,
        dir,
        header_len,
        data_len,
    })
}

fn join(dims: &[usize]) -> String {
    dims.iter()
        .map(|d| d.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

/// What a run measured.
struct Report {
    checksum: Checksum,
    fill: Duration,
    sync: Duration,
}

/// Creates the file, fills it and persists it.
fn write<T: Generate>(
    plan: &Plan,
    opts: &ParOptions,
    quiet: bool,
    create: impl FnOnce() -> outcore::Result<MappedArrayMut<T>>,
) -> Result<Report, String> {
    let mut arr = create().map_err(|e| explain(e, plan))?;
    let bar = if quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::with_draw_target(Some(plan.data_len), ProgressDrawTarget::stderr())
    };
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} {msg:10} [{elapsed_precise}] [{wide_bar}] {bytes}/{total_bytes} ({bytes_per_sec}, {eta})",
        )
        .map_err(|e| e.to_string())?
        .progress_chars("=> "),
    );
    bar.set_message("generating");
    let size = std::mem::size_of::<T>() as u64;
    let t0 = Instant::now();
    let generator = Generator::new(plan.dist, plan.seed);
    let mut sum = PartialChecksum::default();
    let mut start = 0;
    while start < plan.count {
        let end = plan.count.min(start.saturating_add(plan.window.max(1)));
        let part = &mut arr.as_mut_slice()[start..end];
        let progress = |n: usize| bar.inc(n as u64 * size);
        sum = sum.combine(
            generator
                .fill_part(part, start, plan.count, opts, &progress)
                .map_err(|e| e.to_string())?,
        );
        if plan.window < plan.count {
            arr.release(start..end).map_err(|e| e.to_string())?;
        }
        start = end;
    }
    let checksum = sum.finish();
    let fill = t0.elapsed();
    bar.set_message("syncing");
    bar.enable_steady_tick(Duration::from_millis(200));
    let t1 = Instant::now();
    arr.persist().map_err(|e| e.to_string())?;
    let sync = t1.elapsed();
    bar.finish_and_clear();
    Ok(Report {
        checksum,
        fill,
        sync,
    })
}

/// Rewords the errors of creating the output for this program's user.
fn explain(e: Error, plan: &Plan) -> String {
    match e {
        Error::PermissionDenied { path, .. } => format!(
            "cannot create {}: {} is not writable (permission denied)",
            plan.out.display(),
            path.display()
        ),
        e => format!("cannot create {}: {e}", plan.out.display()),
    }
}

fn run(args: &Args) -> Result<(), String> {
    let plan = plan(args)?;
    // Temporary files of earlier runs that were killed hold disk space the check below
    // counts; only those whose writer is dead (their lock is free) are removed.
    match remove_stale_temp_files(&plan.dir) {
        Ok(0) => {}
        Ok(n) => eprintln!(
            "gen-dataset: removed {n} temporary file(s) of killed runs from {}",
            plan.dir.display()
        ),
        Err(e) => eprintln!("gen-dataset: warning: could not look for stale temporary files: {e}"),
    }
    ensure_free_space(&plan.dir, plan.data_len + plan.header_len as u64).map_err(|e| match e {
        Error::DiskFull {
            needed: Some(n),
            available: Some(a),
            ..
        } => format!(
            "not enough free disk space in {} for {}: it needs {} ({n} bytes), {} ({a} bytes) are free",
            plan.dir.display(),
            plan.out.display(),
            human(n),
            human(a)
        ),
        e => e.to_string(),
    })?;
    let mut opts = ParOptions::new();
    opts.threads(args.threads);
    let npy = plan.format == Format::Npy;
    let (path, shape, count) = (&plan.out, &plan.shape, plan.count);
    macro_rules! numeric {
        ($t:ty) => {
            write::<$t>(&plan, &opts, args.quiet, || {
                if npy {
                    MappedArrayMut::<$t>::create(path, shape)
                } else {
                    MappedArrayMut::<$t>::create_raw(path, count)
                }
            })
        };
    }
    let report = match plan.kind {
        Kind::U8 => numeric!(u8),
        Kind::U16 => numeric!(u16),
        Kind::U32 => numeric!(u32),
        Kind::U64 => numeric!(u64),
        Kind::I8 => numeric!(i8),
        Kind::I16 => numeric!(i16),
        Kind::I32 => numeric!(i32),
        Kind::I64 => numeric!(i64),
        Kind::F32 => numeric!(f32),
        Kind::F64 => numeric!(f64),
        Kind::Record100 => write::<Record100>(&plan, &opts, args.quiet, || {
            MappedArrayMut::<Record100>::create_raw(path, count)
        }),
    }?;

    let total = report.fill + report.sync;
    let rate = plan.data_len as f64 / total.as_secs_f64().max(1e-9) / 1e9;
    println!(
        "wrote {}: {} {} {}, shape [{}], seed {}, {}",
        plan.out.display(),
        plan.count,
        plan.kind,
        plan.dist,
        join(&plan.shape),
        plan.seed,
        if npy { ".npy" } else { "raw" }
    );
    println!(
        "data {} bytes ({}), file {} bytes",
        plan.data_len,
        human(plan.data_len),
        plan.data_len + plan.header_len as u64
    );
    println!(
        "time {:.3} s: generate {:.3} s + sync {:.3} s; {:.2} GB/s on {} threads",
        total.as_secs_f64(),
        report.fill.as_secs_f64(),
        report.sync.as_secs_f64(),
        rate,
        opts.get_threads()
    );
    println!("checksum: {}", report.checksum);
    Ok(())
}

fn human(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.2} {}", UNITS[u])
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gen-dataset: error: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("4GiB"), Ok(4 << 30));
        assert_eq!(parse_size("4G"), Ok(4 << 30));
        assert_eq!(parse_size("512mib"), Ok(512 << 20));
        assert_eq!(parse_size("1.5GB"), Ok(1_500_000_000));
        assert_eq!(parse_size("0.5KiB"), Ok(512));
        assert_eq!(parse_size("1_000_000"), Ok(1_000_000));
        assert_eq!(parse_size("100 B"), Ok(100));
        assert!(parse_size("1.3B")
            .unwrap_err()
            .contains("whole number of bytes"));
        assert!(parse_size("4QB").unwrap_err().contains("unknown unit"));
        assert!(parse_size("GiB").is_err());
        assert!(parse_size("99999999999TiB")
            .unwrap_err()
            .contains("too large"));
    }

    #[test]
    fn shapes_and_counts() {
        assert_eq!(parse_shape("3, 4").unwrap().0, [3, 4]);
        assert!(parse_shape("3,x").is_err());
        assert!(parse_shape("").is_err());
        assert_eq!(parse_count("1_000"), Ok(1000));
        assert!(parse_count("-1").is_err());
    }
}
