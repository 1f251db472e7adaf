//! `outcore convert`: raw ↔ `.npy`, dtype casts, C ↔ Fortran order, in one streaming pass
//! (one read of the input, one write of the output) within a memory budget.
//!
//! Same order in and out: the input is cast window by window (in parallel within each
//! window) and both mappings are released behind. Order change of a 2-D array: a blocked
//! transpose, tile by tile (each tile small enough for `--memory`, its output lines written
//! in parallel), releasing the pages of each tile on both sides once it is done.

use std::path::{Path, PathBuf};

use outcore::chunk::page_size;
use outcore::{with_any, with_dtype, DType, Element, MappedArray, MappedArrayMut};
use rayon::prelude::*;

use crate::error::{fail, usage, CliError, Result};
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

/// The smallest budget: below it, tiles of a few elements would cost a system call each.
const MIN_MEMORY: usize = 64 << 10;

/// The pass's budget: the one asked for (refused above the machine's memory limit), else
/// 256 MiB or the machine's default budget, whichever is less.
fn memory_budget(asked: Option<usize>) -> Result<usize> {
    match asked {
        Some(m) => {
            outcore::check_budget(m)?;
            Ok(m)
        }
        None => Ok((256 << 20).min(outcore::default_budget())),
    }
}

/// What one conversion does, whatever the element types.
struct ConvertJob<'a> {
    input: &'a Path,
    output: &'a Path,
    shape: Vec<usize>,
    in_fortran: bool,
    out_fortran: bool,
    to_raw: bool,
    mode: CastMode,
    budget: usize,
    target: DType,
    ui: crate::progress::Ui,
}

/// Runs `outcore convert`.
pub fn run(args: Args, g: &Global) -> Result<()> {
    interrupt::flag();
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
    let shape = a.shape().to_vec();
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
    if target == DType::Bool && !to_raw {
        return Err(usage(format!(
            "{}: writing bool .npy files is not supported; convert to u8 (--dtype u8) or \
             write a raw file (--to-raw)",
            args.output.display()
        )));
    }
    let job = ConvertJob {
        input: &args.input,
        output: &args.output,
        shape,
        in_fortran,
        out_fortran,
        to_raw,
        mode: args.cast,
        budget: memory_budget(args.memory)?.max(MIN_MEMORY),
        target,
        ui: g.ui(),
    };
    with_any!(a, src: S => with_dtype!(target, D => convert::<S, D>(src, &job)))
}

/// The conversion for source type `S` and target type `D`.
fn convert<S: Num, D: Num + Element>(a: &MappedArray<S>, p: &ConvertJob) -> Result<()> {
    let len = a.len();
    let mut out = if p.to_raw {
        MappedArrayMut::<D>::create_raw(p.output, len)?
    } else if p.out_fortran {
        MappedArrayMut::<D>::create_fortran(p.output, &p.shape)?
    } else {
        MappedArrayMut::<D>::create(p.output, &p.shape)?
    };
    let bar =
        p.ui.bytes_bar("convert", (len * std::mem::size_of::<S>()) as u64);
    let bad = if p.in_fortran != p.out_fortran {
        transpose::<S, D>(a, &mut out, p, &bar)?
    } else {
        stream::<S, D>(a, &mut out, p, &bar)?
    };
    bar.finish_and_clear();
    if bad {
        drop(out);
        return Err(first_offender::<S, D>(a, p));
    }
    interrupt::check()?;
    out.persist()?;
    Ok(())
}

/// Elements per window of the streaming pass: half the budget, split between input and
/// output, in whole pages; at most 64 MiB of input.
fn window_elems<S, D>(budget: usize) -> usize {
    let per = std::mem::size_of::<S>() + std::mem::size_of::<D>();
    let page = page_size();
    let w = (budget / 2 / per).min((64 << 20) / std::mem::size_of::<S>());
    (w / page * page).max(page)
}

/// Elements per parallel piece of a window.
const PIECE: usize = 1 << 16;

/// Same memory order in and out: cast window by window, releasing both files behind.
/// Returns whether a value did not fit (then the output is incomplete).
fn stream<S: Num, D: Num>(
    a: &MappedArray<S>,
    out: &mut MappedArrayMut<D>,
    p: &ConvertJob,
    bar: &indicatif::ProgressBar,
) -> Result<bool> {
    let len = a.len();
    let w = window_elems::<S, D>(p.budget);
    let mut start = 0;
    while start < len {
        interrupt::check()?;
        a.check_size()?;
        let end = (start + w).min(len);
        let src = &a[start..end];
        let dst = &mut out[start..end];
        let bad = src
            .par_chunks(PIECE)
            .zip(dst.par_chunks_mut(PIECE))
            .any(|(s, d)| cast_slice(s, d, p.mode));
        if bad {
            return Ok(true);
        }
        // Behind the window, reaching back one window for the pages straddling its start.
        let behind = start.saturating_sub(w)..end;
        a.release(behind.clone())?;
        out.release(behind)?;
        bar.inc(((end - start) * std::mem::size_of::<S>()) as u64);
        start = end;
    }
    Ok(false)
}

/// A 2-D order change. In memory the input is `m` lines of `l` elements and the output `l`
/// lines of `m`: `out[j * m + i] = in[i * l + j]`. Tiles of `h` input lines by `w` output
/// lines are cast in parallel (one task per output line) and released on both sides.
fn transpose<S: Num, D: Num>(
    a: &MappedArray<S>,
    out: &mut MappedArrayMut<D>,
    p: &ConvertJob,
    bar: &indicatif::ProgressBar,
) -> Result<bool> {
    let (rows, cols) = (p.shape[0], p.shape[1]);
    let (m, l) = if p.in_fortran {
        (cols, rows)
    } else {
        (rows, cols)
    };
    if m == 0 || l == 0 {
        return Ok(false);
    }
    let (h, w) = tile_shape(
        m,
        l,
        std::mem::size_of::<S>(),
        std::mem::size_of::<D>(),
        p.budget,
    );
    // Releases reach one page back and one page forward, so that the pages straddling a
    // tile's edges are dropped too (a page released before its neighbour tile is done is
    // written back, and read back in when that tile touches it).
    let page_in = (page_size() / std::mem::size_of::<S>()).max(1);
    let page_out = (page_size() / std::mem::size_of::<D>()).max(1);
    let src = a.as_slice();
    for i0 in (0..m).step_by(h) {
        let i1 = (i0 + h).min(m);
        for j0 in (0..l).step_by(w) {
            let j1 = (j0 + w).min(l);
            interrupt::check()?;
            a.check_size()?;
            let bad = out
                .par_chunks_mut(m)
                .skip(j0)
                .take(j1 - j0)
                .enumerate()
                .any(|(jj, line)| {
                    let j = j0 + jj;
                    let seg = &mut line[i0..i1];
                    let mut bad = false;
                    for (k, d) in seg.iter_mut().enumerate() {
                        match D::from_val(src[(i0 + k) * l + j].to_val(), p.mode) {
                            Some(v) => *d = v,
                            None => {
                                bad = true;
                                break;
                            }
                        }
                    }
                    bad
                });
            if bad {
                return Ok(true);
            }
            // Input: each line of the tile from its start, which also drops what the
            // kernel's fault-around mapped behind the tile. Output: the tile's lines whole,
            // in one call (a write fault can map more of a large folio than the tile wrote;
            // other tiles' parts of these lines are not in memory, or are written back).
            if j1 - j0 == l {
                a.release((i0 * l).saturating_sub(page_in)..i1 * l + page_in)?;
            } else {
                for i in i0..i1 {
                    a.release((i * l).saturating_sub(page_in)..i * l + j1 + page_in)?;
                }
            }
            out.release((j0 * m).saturating_sub(page_out)..j1 * m + page_out)?;
            bar.inc(((i1 - i0) * (j1 - j0) * std::mem::size_of::<S>()) as u64);
        }
    }
    Ok(false)
}

/// Bytes a read fault maps around the faulting page when they are cached (the kernel's
/// default `fault_around_bytes`): a tile's input lines cost at least this much memory.
const FAULT_AROUND: usize = 64 << 10;

/// The tile of a blocked transpose, `(h, w)`: `h` of the input's `m` lines by `w` of the
/// output's `l` lines, as square as possible, such that the tile's input (each line at
/// least [`FAULT_AROUND`] bytes, or whole if shorter) and output fit in half the budget.
fn tile_shape(
    m: usize,
    l: usize,
    in_size: usize,
    out_size: usize,
    budget: usize,
) -> (usize, usize) {
    let target = (budget / 2).max(1);
    let cost = |h: usize, w: usize| {
        let line = (w * in_size).max(FAULT_AROUND.min(l * in_size));
        h.saturating_mul(line)
            .saturating_add(h.saturating_mul(w).saturating_mul(out_size))
    };
    let mut side = ((target / (in_size + out_size)) as f64).sqrt() as usize;
    while side > 1 && cost(side.min(m), side.min(l)) > target {
        side = side * 9 / 10;
    }
    let (mut h, mut w) = (side.clamp(1, m), side.clamp(1, l));
    // A whole dimension fits: give the rest of the budget to the other one.
    if w == l {
        while h < m && cost(h + h / 8 + 1, w) <= target {
            h = (h + h / 8 + 1).min(m);
        }
    } else if h == m {
        while w < l && cost(h, w + w / 8 + 1) <= target {
            w = (w + w / 8 + 1).min(l);
        }
    }
    (h, w)
}

/// Casts `src` into `dst`; returns whether a value did not fit (then `dst` is incomplete).
fn cast_slice<S: Num, D: Num>(src: &[S], dst: &mut [D], mode: CastMode) -> bool {
    if std::any::TypeId::of::<S>() == std::any::TypeId::of::<D>() {
        let s: &[u8] = bytemuck::cast_slice(src);
        bytemuck::cast_slice_mut::<D, u8>(dst).copy_from_slice(s);
        return false;
    }
    for (d, &s) in dst.iter_mut().zip(src) {
        match D::from_val(s.to_val(), mode) {
            Some(v) => *d = v,
            None => return true,
        }
    }
    false
}

/// The error for the first value (in logical, row-major order) that does not fit: a
/// second, read-only pass over the input, in memory order and in parallel.
fn first_offender<S: Num, D: Num>(a: &MappedArray<S>, p: &ConvertJob) -> CliError {
    let fortran = p.in_fortran;
    let shape = &p.shape;
    let logical = |mem: usize| -> usize {
        if !fortran {
            return mem;
        }
        // Fortran: the first axis varies fastest in memory.
        let mut rest = mem;
        let mut idx = vec![0usize; shape.len()];
        for (k, &n) in shape.iter().enumerate() {
            idx[k] = rest % n;
            rest /= n;
        }
        idx.iter().zip(shape).fold(0, |acc, (&i, &n)| acc * n + i)
    };
    let found = a
        .par_chunks(PIECE)
        .enumerate()
        .filter_map(|(c, chunk)| {
            chunk
                .iter()
                .enumerate()
                .filter(|(_, &v)| D::from_val(v.to_val(), p.mode).is_none())
                .map(|(k, _)| (logical(c * PIECE + k), c * PIECE + k))
                .min()
        })
        .min();
    let Some((flat, mem)) = found else {
        return fail(format!(
            "{}: a value does not fit in {}",
            p.input.display(),
            p.target.name()
        ));
    };
    let mut idx = vec![0usize; shape.len()];
    let mut rest = flat;
    for k in (0..shape.len()).rev() {
        idx[k] = rest % shape[k];
        rest /= shape[k];
    }
    let at = match idx.as_slice() {
        [i] => i.to_string(),
        [] => "()".to_string(),
        is => format!(
            "({})",
            is.iter()
                .map(|i| i.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    fail(format!(
        "{}: the value {} at index {at} does not fit in {}; nothing was written (--cast \
         unsafe converts as numpy's astype does)",
        p.input.display(),
        a[mem].show(),
        p.target.name()
    ))
}

/// A value on its way between two element types.
#[derive(Clone, Copy, Debug)]
enum Val {
    Int(i128),
    Float(f64),
}

/// An element type `convert` reads and writes.
trait Num: bytemuck::Pod + Send + Sync + 'static {
    /// The value, exactly.
    fn to_val(self) -> Val;
    /// The value as `Self`, or `None` if it does not fit (in [`CastMode::Safe`]).
    fn from_val(v: Val, mode: CastMode) -> Option<Self>;
    /// The value as the error message shows it.
    fn show(self) -> String;
}

macro_rules! int_num {
    ($($t:ty),*) => {$(
        impl Num for $t {
            fn to_val(self) -> Val {
                Val::Int(self as i128)
            }
            fn from_val(v: Val, mode: CastMode) -> Option<Self> {
                match (v, mode) {
                    (Val::Int(x), CastMode::Safe) => <$t>::try_from(x).ok(),
                    // Two's-complement wrapping, as numpy's astype.
                    (Val::Int(x), CastMode::Unsafe) => Some(x as $t),
                    (Val::Float(f), CastMode::Safe) => {
                        let t = f.trunc();
                        let ok = f.is_finite()
                            && t >= <$t>::MIN as f64
                            && t < <$t>::MAX as f64 + 1.0;
                        ok.then_some(t as $t)
                    }
                    // Saturating (NaN → 0): numpy's result is platform-defined there.
                    (Val::Float(f), CastMode::Unsafe) => Some(f as $t),
                }
            }
            fn show(self) -> String {
                self.to_string()
            }
        }
    )*};
}
int_num!(u8, u16, u32, u64, i8, i16, i32, i64);

impl Num for f64 {
    fn to_val(self) -> Val {
        Val::Float(self)
    }
    fn from_val(v: Val, _mode: CastMode) -> Option<Self> {
        Some(match v {
            Val::Int(x) => x as f64,
            Val::Float(f) => f,
        })
    }
    fn show(self) -> String {
        format!("{self:?}")
    }
}

impl Num for f32 {
    fn to_val(self) -> Val {
        Val::Float(self as f64)
    }
    fn from_val(v: Val, mode: CastMode) -> Option<Self> {
        match v {
            Val::Int(x) => Some(x as f32),
            Val::Float(f) => {
                let r = f as f32;
                let overflow = f.is_finite() && r.is_infinite();
                (mode == CastMode::Unsafe || !overflow).then_some(r)
            }
        }
    }
    fn show(self) -> String {
        format!("{self:?}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiles_fit_the_budget_and_cover_the_array() {
        for (m, l, si, so, budget) in [
            (1001, 37, 8, 8, MIN_MEMORY),
            (37, 1001, 8, 4, MIN_MEMORY),
            (4096, 4096, 8, 8, 16 << 20),
            (100_000, 3, 2, 8, 1 << 20),
            (3, 100_000, 1, 1, 1 << 20),
            (1, 1, 8, 8, MIN_MEMORY),
        ] {
            let (h, w) = tile_shape(m, l, si, so, budget);
            assert!(
                (1..=m).contains(&h) && (1..=l).contains(&w),
                "{m}x{l}: {h}x{w}"
            );
            let line = (w * si).max(FAULT_AROUND.min(l * si));
            let cost = h * line + h * w * so;
            assert!(
                cost <= budget / 2 || (h == 1 && w == 1),
                "{m}x{l}: {h}x{w} costs {cost}"
            );
        }
        // A tiny budget on an odd shape: many tiles.
        let (h, w) = tile_shape(37, 1001, 8, 8, MIN_MEMORY);
        assert!(37usize.div_ceil(h) * 1001usize.div_ceil(w) > 100);
    }
}
