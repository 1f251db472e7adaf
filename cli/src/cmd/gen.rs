//! `outcore gen`: a reproducible synthetic dataset of any size (see datasets/README.md).
//!
//! Every argument is checked before the output is created: the dtype and distribution go
//! together, the length follows from exactly one of `--count`, `--size` and `--shape` (or
//! agrees with it), the directory exists, the output does not (unless `--force`) and the
//! file system has room. Then the file is created under a temporary name with its blocks
//! allocated, filled through the mapping by all threads a window at a time (checking for
//! Ctrl-C between windows), synced and renamed: an interrupted run leaves no file under the
//! final name, Ctrl-C removes the temporary file, and the next run in the same directory
//! removes the temporary file a killed run left. The last line printed is the data's
//! checksum (`outcore::datasets::Checksum`).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use clap::ValueEnum;
use outcore::datasets::{
    Checksum, Distribution, Generate, Generator, Kind, PartialChecksum, Record100, BLOCK_LEN,
};
use outcore::npy::Header;
use outcore::{
    ensure_free_space, remove_stale_temp_files, with_dtype, DType, Error, MappedArrayMut,
    ParOptions,
};

use crate::error::{fail, usage, CliError, Result};
use crate::size::{human, parse_size};
use crate::{files, interrupt, Global};

/// The file format written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// numpy's .npy (every numeric dtype)
    Npy,
    /// headerless little-endian data (every dtype; the only format for record100)
    Raw,
}

/// Write a reproducible synthetic dataset: the same arguments give the same bytes on any
/// machine and any number of threads.
#[derive(Debug, clap::Args)]
#[command(after_help = AFTER_HELP)]
pub struct Args {
    /// Element type: u8 u16 u32 u64 i8 i16 i32 i64 f32 f64, or record100 (Sort Benchmark
    /// records: 100 bytes, 10-byte key, the record's index in the payload)
    #[arg(long, value_parser = parse_kind, value_name = "T")]
    pub dtype: Kind,

    /// Distribution: uniform normal sorted reverse nearly-sorted few-unique zipf equal
    #[arg(long, value_parser = parse_dist, value_name = "D")]
    pub dist: Distribution,

    /// Number of elements
    #[arg(long, value_parser = parse_count, conflicts_with = "size", value_name = "N")]
    pub count: Option<usize>,

    /// Bytes of data (not counting a .npy header), a multiple of the element size:
    /// 1000000, 512MiB, 4GiB, 1.5GB (K/M/G/T and KiB… are powers of 1024, KB/MB… of 1000)
    #[arg(long, value_parser = parse_size, value_name = "BYTES")]
    pub size: Option<u64>,

    /// Shape of the .npy array, e.g. 1000000,16 (its product is the element count)
    #[arg(long, value_parser = parse_shape, value_name = "R,C,...")]
    pub shape: Option<Shape>,

    /// Seed: datasets with the same arguments and seed are byte-identical
    #[arg(long, default_value_t = 0, value_name = "S")]
    pub seed: u64,

    /// Output format [default: npy, or raw for record100]
    #[arg(long, value_enum)]
    pub format: Option<Format>,

    /// Output file
    #[arg(long, value_name = "PATH")]
    pub out: PathBuf,

    /// Bound the memory the output occupies: write back and drop the generated data every
    /// SIZE bytes (e.g. 1GiB) instead of leaving it all to the kernel's write-back
    #[arg(long, value_parser = parse_size, value_name = "SIZE")]
    pub memory_budget: Option<u64>,

    /// Replace OUT if it exists (atomically, once the new file is complete)
    #[arg(long)]
    pub force: bool,
}

const AFTER_HELP: &str = "\
Examples:
  outcore gen --dtype f64 --dist uniform --size 4GiB --out u.npy
  outcore gen --dtype f32 --dist normal --shape 1000000,16 --seed 7 --out feats.npy
  outcore gen --dtype record100 --dist uniform --count 10000000 --out recs.dat

The last line printed is `checksum: <16 hex digits>`, a checksum of the data bytes
(datasets/README.md defines it and shows how to recompute it with numpy).";

/// A shape as given on the command line (a newtype, so clap does not read it as a list).
#[derive(Clone, Debug)]
pub struct Shape(Vec<usize>);

fn parse_kind(s: &str) -> std::result::Result<Kind, String> {
    s.parse().map_err(|e: Error| e.to_string())
}

fn parse_dist(s: &str) -> std::result::Result<Distribution, String> {
    s.parse().map_err(|e: Error| e.to_string())
}

fn parse_count(s: &str) -> std::result::Result<usize, String> {
    s.replace('_', "")
        .parse()
        .map_err(|_| format!("{s:?} is not a whole number of elements"))
}

fn parse_shape(s: &str) -> std::result::Result<Shape, String> {
    let dims: std::result::Result<Vec<usize>, _> =
        s.split(',').map(|d| d.trim().parse::<usize>()).collect();
    match dims {
        Ok(d) if !d.is_empty() => Ok(Shape(d)),
        _ => Err(format!(
            "{s:?} is not a shape; write dimensions separated by commas, like 1000,16"
        )),
    }
}

/// Everything the run needs, decided and checked before any file is touched.
#[derive(Debug)]
struct GenJob {
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
    /// Elements generated between write-backs (`count`: no write-back before the end).
    window: usize,
}

/// Elements filled between two checks for Ctrl-C: about 64 MiB, whole blocks.
fn cancel_step(size: usize) -> usize {
    ((64 << 20) / size / BLOCK_LEN).max(1) * BLOCK_LEN
}

/// Decides and checks everything before any file is touched.
fn plan(args: &Args) -> Result<GenJob> {
    let kind = args.dtype;
    args.dist.check(kind).map_err(|e| usage(e.to_string()))?;
    let format = output_format(args, kind)?;
    let (count, shape) = length(args, kind, format)?;
    let data_len = data_len(count, kind)?;
    let header_len = match (format, kind.dtype()) {
        (Format::Npy, Some(d)) => Header::new(d, &shape).to_bytes().len(),
        _ => 0,
    };
    let (out, dir) = output_path(args)?;
    let window = window(args, kind, count);
    Ok(GenJob {
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

/// The output format: `--format`, by default `.npy` (raw for record100, which has no dtype).
fn output_format(args: &Args, kind: Kind) -> Result<Format> {
    Ok(match (args.format, kind) {
        (Some(Format::Npy), Kind::Record100) => {
            return Err(usage(
                "record100 has no .npy dtype; write it with --format raw \
                 (the Sort Benchmark's own files are raw)",
            ))
        }
        (Some(f), _) => f,
        (None, Kind::Record100) => Format::Raw,
        (None, _) => Format::Npy,
    })
}

/// The element count and the shape, from exactly one of `--count`, `--size` and `--shape`
/// (or from several that agree).
fn length(args: &Args, kind: Kind, format: Format) -> Result<(usize, Vec<usize>)> {
    let size = kind.size();
    let from_size = match args.size {
        Some(bytes) if bytes % size as u64 != 0 => {
            let lo = bytes / size as u64 * size as u64;
            return Err(usage(format!(
                "--size {bytes} bytes is not a multiple of the {kind} element size ({size} \
                 bytes); the nearest sizes are {lo} and {} bytes",
                lo + size as u64
            )));
        }
        Some(bytes) => Some(usize::try_from(bytes / size as u64).map_err(|_| {
            usage(format!(
                "--size {bytes} bytes is too large for this machine"
            ))
        })?),
        None => None,
    };
    let given = args.count.or(from_size);
    Ok(match (&args.shape, format) {
        (Some(_), Format::Raw) => {
            return Err(usage(
                "--shape describes a .npy array, and a raw file has no shape; \
                 drop --shape or use --format npy",
            ))
        }
        (Some(Shape(dims)), Format::Npy) => {
            let product = dims
                .iter()
                .try_fold(1usize, |a, &d| a.checked_mul(d))
                .ok_or_else(|| usage(format!("--shape {dims:?} has too many elements")))?;
            match given {
                Some(n) if n != product => {
                    let how = if args.count.is_some() {
                        format!("--count is {n}")
                    } else {
                        format!("--size holds {n} {kind} elements")
                    };
                    return Err(usage(format!(
                        "--shape {} holds {product} elements, but {how}",
                        join(dims)
                    )));
                }
                _ => (product, dims.clone()),
            }
        }
        (None, _) => match given {
            Some(n) => (n, vec![n]),
            None => {
                return Err(usage(
                    "give the dataset's length with --count N, --size BYTES or --shape R,C",
                ))
            }
        },
    })
}

/// The bytes of `count` elements of `kind`, if this machine can address them.
fn data_len(count: usize, kind: Kind) -> Result<u64> {
    (count as u64)
        .checked_mul(kind.size() as u64)
        .filter(|&b| usize::try_from(b).is_ok())
        .ok_or_else(|| {
            usage(format!(
                "{count} {kind} elements are too many bytes for this machine"
            ))
        })
}

/// The output file and its directory: the file not a directory, the directory existing,
/// the file absent unless `--force`.
fn output_path(args: &Args) -> Result<(PathBuf, PathBuf)> {
    let out = args.out.clone();
    if out.is_dir() {
        return Err(usage(format!(
            "{}: is a directory; give the output file's name",
            out.display()
        )));
    }
    let dir = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    match std::fs::metadata(&dir) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => return Err(usage(format!("{}: not a directory", dir.display()))),
        Err(_) => return Err(usage(format!("{}: no such directory", dir.display()))),
    }
    files::check_output(&out, args.force, &[])?;
    Ok((out, dir))
}

/// Elements generated between write-backs: `--memory-budget` in whole blocks (at least
/// one), or all `count` (no write-back before the end).
fn window(args: &Args, kind: Kind, count: usize) -> usize {
    let size = kind.size();
    match args.memory_budget {
        // Whole blocks (parts must be), at least one.
        Some(b) => {
            usize::try_from(b / size as u64)
                .unwrap_or(usize::MAX)
                .max(BLOCK_LEN)
                / BLOCK_LEN
                * BLOCK_LEN
        }
        None => count,
    }
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

/// Creates the file, fills it a window at a time (stopping at Ctrl-C, which drops the
/// unfinished file: a created array removes its temporary file when dropped unpersisted)
/// and persists it.
fn write<T: Generate>(
    plan: &GenJob,
    opts: &ParOptions,
    g: &Global,
    create: impl FnOnce() -> outcore::Result<MappedArrayMut<T>>,
) -> Result<Report> {
    let mut arr = create().map_err(|e| explain(e, plan))?;
    let bar = g.ui().bytes_bar("generating", plan.data_len);
    let size = std::mem::size_of::<T>();
    let step = cancel_step(size).min(plan.window.max(1));
    let t0 = Instant::now();
    let generator = Generator::new(plan.dist, plan.seed);
    let mut sum = PartialChecksum::default();
    let (mut start, mut released) = (0, 0);
    while start < plan.count {
        interrupt::check()?;
        let end = plan.count.min(start.saturating_add(step));
        let part = &mut arr.as_mut_slice()[start..end];
        let progress = |n: usize| bar.inc((n * size) as u64);
        sum = sum.combine(generator.fill_part(part, start, plan.count, opts, &progress)?);
        if plan.window < plan.count && (end - released >= plan.window || end == plan.count) {
            arr.release(released..end)?;
            released = end;
        }
        start = end;
    }
    interrupt::check()?;
    let checksum = sum.finish();
    let fill = t0.elapsed();
    let t1 = Instant::now();
    arr.persist()?;
    let sync = t1.elapsed();
    bar.finish_and_clear();
    Ok(Report {
        checksum,
        fill,
        sync,
    })
}

/// Rewords the errors of creating the output for this program's user.
fn explain(e: Error, plan: &GenJob) -> CliError {
    match e {
        Error::PermissionDenied { path, .. } => fail(format!(
            "cannot create {}: {} is not writable (permission denied)",
            plan.out.display(),
            path.display()
        )),
        e => fail(format!("cannot create {}: {e}", plan.out.display())),
    }
}

/// Runs `outcore gen`.
pub fn run(args: Args, g: &Global) -> Result<()> {
    // The Ctrl-C handler first, so that no signal finds the temporary file unguarded.
    let _ = interrupt::flag();
    let plan = plan(&args)?;
    generate(&plan, g)
}

/// Writes `path`: `count` uniform `u64` of `seed`, as `.npy`, exactly as `outcore gen
/// --dtype u64 --dist uniform --count COUNT --seed SEED --out PATH` (the demo's dataset).
/// Prints what `gen` prints.
pub fn generate_u64(path: &Path, count: usize, seed: u64, g: &Global) -> Result<()> {
    let args = Args {
        dtype: Kind::Numeric(DType::U64),
        dist: Distribution::Uniform,
        count: Some(count),
        size: None,
        shape: None,
        seed,
        format: Some(Format::Npy),
        out: path.to_path_buf(),
        memory_budget: None,
        force: true,
    };
    run(args, g)
}

fn generate(plan: &GenJob, g: &Global) -> Result<()> {
    // Temporary files of earlier runs that were killed hold disk space the check below
    // counts; only those whose writer is dead (their lock is free) are removed.
    match remove_stale_temp_files(&plan.dir) {
        Ok(0) => {}
        Ok(n) => eprintln!(
            "outcore: removed {n} temporary file(s) of killed runs from {}",
            plan.dir.display()
        ),
        Err(e) => {
            eprintln!("outcore: warning: could not look for stale temporary files: {e}")
        }
    }
    ensure_free_space(&plan.dir, plan.data_len + plan.header_len as u64).map_err(|e| match e {
        Error::DiskFull {
            needed: Some(n),
            available: Some(a),
            ..
        } => fail(format!(
            "not enough free disk space in {} for {}: it needs {} ({n} bytes), {} ({a} bytes) \
             are free",
            plan.dir.display(),
            plan.out.display(),
            human(n),
            human(a)
        )),
        e => CliError::from(e),
    })?;
    let opts = ParOptions::new();
    let report = match plan.kind.dtype() {
        Some(d) => with_dtype!(d, T => write::<T>(plan, &opts, g, || match plan.format {
            Format::Npy => MappedArrayMut::<T>::create(&plan.out, &plan.shape),
            Format::Raw => MappedArrayMut::<T>::create_raw(&plan.out, plan.count),
        })),
        None => write::<Record100>(plan, &opts, g, || {
            MappedArrayMut::<Record100>::create_raw(&plan.out, plan.count)
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
        if plan.format == Format::Npy {
            ".npy"
        } else {
            "raw"
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_and_counts() {
        assert_eq!(parse_shape("3, 4").unwrap().0, [3, 4]);
        assert!(parse_shape("3,x").is_err());
        assert!(parse_shape("").is_err());
        assert_eq!(parse_count("1_000"), Ok(1000));
        assert!(parse_count("-1").is_err());
    }

    #[test]
    fn cancel_steps_are_whole_blocks() {
        for size in [1, 2, 4, 8, 100] {
            let s = cancel_step(size);
            assert!(s > 0 && s.is_multiple_of(BLOCK_LEN), "{size}: {s}");
        }
    }
}
