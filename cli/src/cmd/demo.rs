//! `outcore demo`: the README's main job. Creates the default dataset once (1 GiB of uniform
//! random `u64`, seed 0, under `datasets/`), summarises it (`stats`), sorts it with the
//! external sort under a budget four times smaller than the data, verifies the output and
//! prints the sort's report.

use std::path::{Path, PathBuf};
use std::time::Instant;

use outcore::npy::Header;
use outcore::DType;

use crate::error::{usage, Result};
use crate::size::{human, parse_budget, parse_size};
use crate::Global;

/// Run the README's main job: create the default dataset once, summarise it, sort it under a
/// memory budget smaller than the data, verify and report.
///
/// The dataset is DIR/default-u64.npy, SIZE bytes of uniform random u64 with seed 0 (the same
/// bytes as `outcore gen --dtype u64 --dist uniform --seed 0 --size SIZE`); it is made only
/// when missing (or not of that size). The sorted output goes to
/// DIR/out/default-u64.sorted.npy, replacing the previous demo's.
#[derive(Debug, clap::Args)]
#[command(after_help = AFTER_HELP)]
pub struct Args {
    /// Where the dataset goes (created if missing); the output goes to DIR/out
    #[arg(long, default_value = "datasets", value_name = "DIR")]
    pub dir: PathBuf,

    /// Bytes of data in the dataset (a multiple of 8)
    #[arg(long, default_value = "1GiB", value_parser = parse_size, value_name = "SIZE")]
    pub size: u64,

    /// Memory budget of the sort
    #[arg(long, default_value = "256MiB", value_parser = parse_budget, value_name = "SIZE")]
    pub memory: usize,
}

const AFTER_HELP: &str = "\
Examples:
  cargo run --release --bin outcore -- demo       # from the repository root
  outcore demo --dir /data/outcore --size 4GiB --memory 1GiB

Exit status 1 if the sorted output does not verify.";

/// The dataset's file name in `--dir`.
pub const DATASET: &str = "default-u64.npy";

/// The sorted output's path relative to `--dir`.
pub const OUTPUT: &str = "out/default-u64.sorted.npy";

/// Runs `outcore demo`.
pub fn run(args: Args, g: &Global) -> Result<()> {
    if args.size == 0 || !args.size.is_multiple_of(8) {
        return Err(usage(format!(
            "--size {} is not a positive multiple of 8 bytes (the dataset holds u64)",
            args.size
        )));
    }
    let count = usize::try_from(args.size / 8).map_err(|_| {
        usage(format!(
            "--size {} is too large for this machine",
            args.size
        ))
    })?;
    let out_dir = args.dir.join("out");
    std::fs::create_dir_all(&out_dir).map_err(|e| outcore::Error::io(&out_dir, "create", e))?;
    let input = args.dir.join(DATASET);
    let output = args.dir.join(OUTPUT);

    println!("== dataset: {}", input.display());
    if is_dataset(&input, count) {
        println!(
            "reusing it ({} of uniform u64, seed 0; delete it to generate it again)",
            human(args.size)
        );
    } else {
        if input.exists() {
            println!("it is not {count} u64: generating it again");
        }
        let t = Instant::now();
        super::gen::generate_u64(&input, count, 0, g)?;
        // Dropped from the page cache, so that the sort starts cold as on a fresh dataset.
        if let Ok(a) = outcore::open_any(&input) {
            let _ = a.release_all();
        }
        println!("generated in {:.1} s", t.elapsed().as_secs_f64());
    }

    println!();
    println!("== stats: {}", input.display());
    super::stats::demo_summary(&input, g)?;

    println!();
    println!(
        "== sort: {} -> {} with a {} budget",
        input.display(),
        output.display(),
        human(args.memory as u64)
    );
    super::sort::run(
        super::sort::Args {
            input,
            output: output.clone(),
            memory: Some(args.memory),
            tmp: None,
            record_size: None,
            key_size: None,
            dtype: None,
            verify: true,
            force: true,
        },
        g,
    )?;
    println!("  output: {}", output.display());
    Ok(())
}

/// Whether `path` is a `.npy` of `count` u64 (its header and size agree); its values are
/// not read back.
fn is_dataset(path: &Path, count: usize) -> bool {
    let Ok(h) = Header::read(path) else {
        return false;
    };
    let size_ok =
        std::fs::metadata(path).is_ok_and(|m| m.len() == h.data_offset as u64 + count as u64 * 8);
    h.dtype == DType::U64 && h.shape == [count] && !h.fortran_order && size_ok
}
