//! `outcore convert`: raw ↔ `.npy`, dtype casts, C ↔ Fortran order, in one streaming pass
//! (one read of the input, one write of the output) within a memory budget.
//!
//! The pass itself is the library's [`outcore::convert`] (compiled once, whatever the
//! element types); this file holds the arguments, the checks that are usage errors, the
//! progress bar, and the way to the Zarr conversions.

use std::path::PathBuf;

use outcore::convert::{self, ConvertOptions};
use outcore::DType;

use crate::error::{usage, Result};
use crate::files::{check_output, is_npy, open_input, parse_dtype, DTYPE_NAMES};
use crate::size::parse_budget;
use crate::{interrupt, Global};

/// Convert between raw and .npy files, element types and memory orders, in one pass.
///
/// The output is the same logical array, written under a temporary name and renamed to OUT
/// once complete (an existing OUT is refused unless --force). Everything can combine in one
/// pass: `outcore convert x.npy y.npy --dtype f32 --order F`.
///
/// Input: a .npy file, or a raw (headerless) file whose element type --from-raw gives (a raw
/// file is a 1-D array). Output: a .npy file, or a raw file with --to-raw or when OUT ends
/// in .raw or .bin (the elements in the output's memory order, no header).
///
/// Casts (--dtype): with --cast safe (the default) every value must fit the target type:
/// integers must be in range; floats converted to integers must be finite and in range
/// after truncation toward zero (numpy's astype truncates the same way); f64 to f32 must
/// not overflow to infinity (rounding is fine); integers to floats always convert (rounded
/// to nearest). The first value that does not fit (in the array's logical, row-major order)
/// is an error naming its index and value, and nothing is written. --cast unsafe converts
/// as numpy's astype does: integers wrap around (two's complement); floats out of an
/// integer type's range are platform-defined in numpy, and here they saturate to the
/// type's minimum or maximum (NaN gives 0).
///
/// Order (--order C|F) changes the memory order of a 2-D array (a blocked out-of-core
/// transpose, tiles sized to --memory); 1-D arrays have no order (accepted, nothing to do);
/// changing the order of an array of 3 or more dimensions is refused. Default: the
/// input's order.
///
/// Ctrl-C stops between windows or tiles, removes the temporary file and exits with
/// status 130.
///
/// Zarr (when outcore is built with `--features zarr`): a .npy (or raw) file to a Zarr v3
/// array, when OUT ends in .zarr (--chunks, --codec); a Zarr array (v3 or v2, a directory
/// holding zarr.json or .zarray) to a .npy file. The logical array is kept as it is: --dtype
/// and --order that would change it are refused there (convert the .npy before or after).
///
/// Example:
///   outcore convert x.npy x32.npy --dtype f32
///   outcore convert x.npy xf.npy --order F --memory 1GiB
///   outcore convert data.raw data.npy --from-raw i16
///   outcore convert x.npy x.raw
///   outcore convert x.npy x.zarr --chunks 1024,64 --codec zstd
///   outcore convert x.zarr x.npy
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// The input: a .npy file, or a raw file with --from-raw
    #[arg(value_name = "IN")]
    pub(crate) input: PathBuf,

    /// The output file
    #[arg(value_name = "OUT")]
    pub(crate) output: PathBuf,

    /// Element type of the output [default: the input's]
    #[arg(long, value_name = "T", value_parser = parse_dtype)]
    pub(crate) dtype: Option<DType>,

    /// Memory order of the output: C (row-major) or F (column-major) [default: the input's]
    #[arg(long, value_name = "C|F", value_enum, ignore_case = true)]
    pub(crate) order: Option<Order>,

    /// The input is a raw (headerless) file of this element type
    #[arg(long = "from-raw", value_name = "T", value_parser = parse_dtype)]
    pub(crate) from_raw: Option<DType>,

    /// Write a raw (headerless) file (implied by an OUT ending in .raw or .bin)
    #[arg(long = "to-raw")]
    pub(crate) to_raw: bool,

    /// safe: a value that does not fit the target type is an error; unsafe: numpy's astype
    #[arg(long, value_enum, default_value_t = CastMode::Safe)]
    pub(crate) cast: CastMode,

    /// Memory budget for the pass (windows and transpose tiles are sized to it; at least
    /// 64KiB) [default: 256MiB, or less where the machine's memory limit asks for less]
    #[arg(long, value_name = "SIZE", value_parser = parse_budget)]
    pub(crate) memory: Option<usize>,

    /// Replace OUT if it exists
    #[arg(long)]
    pub(crate) force: bool,

    /// Zarr output: the chunk shape, comma-separated, one extent per axis (e.g. 1048576, or
    /// 1024,64) [default: about 1 MiB per chunk, whole rows first]
    #[arg(long, value_name = "N,...", value_delimiter = ',')]
    pub(crate) chunks: Vec<u64>,

    /// Zarr output: the codec of each chunk: zstd, zstd:LEVEL or none [default: zstd]
    #[arg(long, value_name = "CODEC")]
    pub(crate) codec: Option<String>,
}

/// A memory order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Order {
    /// Row-major (C)
    #[value(name = "C")]
    C,
    /// Column-major (Fortran)
    #[value(name = "F")]
    F,
}

/// How values that do not fit the target type are treated.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum CastMode {
    /// Refuse the conversion, naming the first value that does not fit
    Safe,
    /// Convert as numpy's astype does (wrapping integers)
    Unsafe,
}

/// Runs `outcore convert`.
pub fn run(args: Args, g: &Global) -> Result<()> {
    let cancel = interrupt::flag();
    if crate::zarr::is_zarr(&args.input) || crate::zarr::is_zarr_output(&args.output) {
        return crate::zarr::convert(&args, g);
    }
    if !args.chunks.is_empty() || args.codec.is_some() {
        return Err(usage(
            "--chunks and --codec are for Zarr outputs (a directory, or a name ending in .zarr)",
        ));
    }
    let npy = is_npy(&args.input)?;
    match (npy, args.from_raw) {
        (false, None) => {
            return Err(usage(format!(
                "{}: not a .npy file; for a raw (headerless) file give its element type with \
                 --from-raw T ({DTYPE_NAMES})",
                args.input.display()
            )))
        }
        (true, Some(d)) => {
            let h = outcore::npy::Header::read(&args.input)?;
            if h.dtype != d {
                return Err(usage(format!(
                    "{}: the .npy header says the file holds {}, not {}; --from-raw is for \
                     raw files (to change the type, use --dtype {})",
                    args.input.display(),
                    h.dtype.name(),
                    d.name(),
                    d.name()
                )));
            }
        }
        _ => {}
    }
    check_output(&args.output, args.force, &[&args.input])?;
    let input = open_input(&args.input, if npy { None } else { args.from_raw })?;
    let a = &input.array;
    let shape = a.shape();
    let in_fortran = a.is_fortran_order() && shape.len() > 1;
    let out_fortran = match args.order {
        Some(Order::F) => shape.len() > 1,
        Some(Order::C) => false,
        None => in_fortran,
    };
    if shape.len() > 2 && in_fortran != out_fortran {
        return Err(usage(format!(
            "{}: changing the memory order is supported for 1-D and 2-D arrays; this one has \
             shape {shape:?}",
            args.input.display()
        )));
    }
    let to_raw = args.to_raw
        || matches!(
            args.output.extension().and_then(|e| e.to_str()),
            Some("raw" | "bin")
        );
    let target = args.dtype.unwrap_or(a.dtype());
    let mut opts = ConvertOptions::new();
    opts.dtype(target)
        .to_raw(to_raw)
        .cast(match args.cast {
            CastMode::Safe => convert::CastMode::Safe,
            CastMode::Unsafe => convert::CastMode::Unsafe,
        })
        .cancel_flag(cancel);
    if let Some(order) = args.order {
        opts.order(match order {
            Order::C => convert::Order::C,
            Order::F => convert::Order::F,
        });
    }
    if let Some(m) = args.memory {
        opts.memory(m);
    }
    let bar = g
        .ui()
        .bytes_bar("convert", (a.len() * a.dtype().size()) as u64);
    let shown = bar.clone();
    opts.progress(move |done, _| shown.set_position(done));
    let done = convert::convert_array(a, &args.output, &opts);
    bar.finish_and_clear();
    done?;
    Ok(())
}
