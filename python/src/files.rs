//! `outcore.generate` and `outcore.convert`: files written window by window, so that Ctrl-C
//! stops them between windows (the unfinished output, a temporary file, is removed).

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use outcore::convert::{convert_array, CastMode, ConvertOptions};
use outcore::datasets::{Distribution, Generate, Generator, Kind, PartialChecksum, Record100};
use outcore::stream;
use outcore::{open_any, open_any_raw, with_dtype, DType, Element, MappedArrayMut, ParOptions};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::errors::value_error;
use crate::input::{dtype_arg, path_arg};
use crate::run::{check, par, run};
use crate::size::size_arg;

/// Whether `path` names a `.npy` file (else the output is raw).
fn is_npy(path: &Path) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("npy"))
}

/// Windows of 64 MiB, each written back and dropped from memory once done.
fn window_stream() -> stream::Stream {
    let mut s = stream::Stream::new();
    s.release_behind(true);
    s
}

fn fill<T: Generate>(
    out: &mut MappedArrayMut<T>,
    g: &Generator,
    par: &ParOptions,
    cancel: &AtomicBool,
) -> outcore::Result<u64> {
    let total = out.len();
    let parts = stream::windows_mut(out, &window_stream(), |start, w| {
        check(cancel)?;
        g.fill_part(w, start, total, par, &|_| {})
    })?;
    Ok(parts
        .into_iter()
        .fold(PartialChecksum::default(), PartialChecksum::combine)
        .finish()
        .0)
}

fn generate_npy<T: Generate + Element>(
    path: &Path,
    shape: &[usize],
    g: &Generator,
    par: &ParOptions,
    cancel: &AtomicBool,
) -> outcore::Result<u64> {
    let mut out = MappedArrayMut::<T>::create(path, shape)?;
    let sum = fill(&mut out, g, par, cancel)?;
    out.persist()?;
    Ok(sum)
}

fn generate_raw<T: Generate>(
    path: &Path,
    count: usize,
    g: &Generator,
    par: &ParOptions,
    cancel: &AtomicBool,
) -> outcore::Result<u64> {
    let mut out = MappedArrayMut::<T>::create_raw(path, count)?;
    let sum = fill(&mut out, g, par, cancel)?;
    out.persist()?;
    Ok(sum)
}

/// generate(path, dtype, dist="uniform", count=None, size=None, seed=0, shape=None, *, threads=None) -> dict
///
/// Writes a reproducible dataset, as ``outcore gen`` does: ``count`` elements (or ``size``
/// bytes, e.g. ``"4GiB"``, or an N-D ``shape``) of ``dtype`` ("u8".."u64", "i8".."i64",
/// "f32", "f64" or a numpy dtype; "record100" for 100-byte Sort Benchmark records) drawn
/// from ``dist``: "uniform", "normal" (floats), "sorted", "reverse", "nearly-sorted",
/// "few-unique", "zipf", "equal". The same seed gives the same bytes for any thread count.
/// A path ending in ``.npy`` gets a .npy file (readable by ``np.load``), any other a raw file.
///
/// Returns ``{"path", "dtype", "dist", "seed", "count", "bytes", "checksum"}`` (the
/// dataset's content checksum, hex). Ctrl-C stops it between 64 MiB windows and removes
/// the unfinished file.
#[allow(clippy::too_many_arguments)]
#[pyfunction]
#[pyo3(signature = (path, dtype, dist="uniform", count=None, size=None, seed=0, shape=None, *, threads=None))]
pub fn generate<'py>(
    py: Python<'py>,
    path: &Bound<'py, PyAny>,
    dtype: &Bound<'py, PyAny>,
    dist: &str,
    count: Option<usize>,
    size: Option<&Bound<'py, PyAny>>,
    seed: u64,
    shape: Option<Vec<usize>>,
    threads: Option<usize>,
) -> PyResult<Bound<'py, PyDict>> {
    let path: PathBuf = path_arg(path, "path")?;
    let name_kind = dtype
        .extract::<String>()
        .ok()
        .and_then(|s| Kind::from_name(&s));
    let kind = match name_kind {
        Some(k) => k,
        None => {
            let d = dtype_arg(py, dtype)?;
            Kind::new(d)
                .ok_or_else(|| value_error(format!("generate makes no {} data", d.name())))?
        }
    };
    let dist: Distribution = dist.parse().map_err(crate::errors::to_py)?;
    dist.check(kind).map_err(crate::errors::to_py)?;
    let given = [count.is_some(), size.is_some(), shape.is_some()]
        .iter()
        .filter(|&&b| b)
        .count();
    if given != 1 {
        return Err(value_error(
            "give exactly one of count= (elements), size= (bytes, e.g. \"4GiB\") or shape=",
        ));
    }
    let count = match (count, size, &shape) {
        (Some(n), _, _) => n,
        (_, Some(s), _) => {
            let bytes = size_arg(s, "size")?;
            if bytes % kind.size() as u64 != 0 {
                return Err(value_error(format!(
                    "size={bytes} bytes is not a whole number of {}-byte elements",
                    kind.size()
                )));
            }
            (bytes / kind.size() as u64) as usize
        }
        (_, _, Some(sh)) => sh
            .iter()
            .try_fold(1usize, |a, &n| a.checked_mul(n))
            .ok_or_else(|| value_error("shape is too large"))?,
        _ => unreachable!("exactly one is given"),
    };
    let npy = is_npy(&path);
    if kind.dtype().is_none() && npy {
        return Err(value_error(
            "record100 files are raw (.npy has no such dtype): give a path not ending in .npy",
        ));
    }
    if shape.is_some() && !npy {
        return Err(value_error(
            "shape= is for .npy outputs; a raw file is 1-D (use count=)",
        ));
    }
    let shape = shape.unwrap_or_else(|| vec![count]);
    let g = Generator::new(dist, seed);
    let par = par(threads)?;
    let cancel = Arc::new(AtomicBool::new(false));
    let c2 = cancel.clone();
    let sum = run(py, true, None, &cancel, || match kind.dtype() {
        None => generate_raw::<Record100>(&path, count, &g, &par, &c2),
        Some(d) if npy => with_dtype!(d, T => generate_npy::<T>(&path, &shape, &g, &par, &c2)),
        Some(d) => with_dtype!(d, T => generate_raw::<T>(&path, count, &g, &par, &c2)),
    })?;
    let d = PyDict::new(py);
    d.set_item("path", path.to_string_lossy().into_owned())?;
    d.set_item("dtype", kind.name())?;
    d.set_item("dist", dist.name())?;
    d.set_item("seed", seed)?;
    d.set_item("count", count)?;
    d.set_item("bytes", count as u64 * kind.size() as u64)?;
    d.set_item("checksum", format!("{sum:016x}"))?;
    Ok(d)
}

/// convert(src, dst, dtype=None, *, src_dtype=None, threads=None) -> dict
///
/// Copies ``src`` (a ``.npy`` file, or a raw file with ``src_dtype=``) to ``dst``: a
/// ``.npy`` file if ``dst`` ends in ``.npy`` (same shape), else a raw file; cast to
/// ``dtype`` if given, with numpy's ``astype`` rules (``casting="unsafe"``: floats truncate
/// toward zero, integers wrap, anything non-zero is True). Differences from numpy: a NaN
/// or out-of-range float cast to an integer saturates (NaN gives 0), where numpy's result
/// is undefined. Streams window by window in bounded memory; Ctrl-C stops it and removes
/// the unfinished file. A Fortran-ordered array stays Fortran-ordered (a raw file gets
/// the elements in its memory order).
///
/// Returns ``{"src", "dst", "dtype", "shape", "format"}``.
#[pyfunction]
#[pyo3(signature = (src, dst, dtype=None, *, src_dtype=None, threads=None))]
pub fn convert<'py>(
    py: Python<'py>,
    src: &Bound<'py, PyAny>,
    dst: &Bound<'py, PyAny>,
    dtype: Option<&Bound<'py, PyAny>>,
    src_dtype: Option<&Bound<'py, PyAny>>,
    threads: Option<usize>,
) -> PyResult<Bound<'py, PyDict>> {
    let src: PathBuf = path_arg(src, "src")?;
    let dst: PathBuf = path_arg(dst, "dst")?;
    let src_dtype = src_dtype.map(|d| dtype_arg(py, d)).transpose()?;
    let to = dtype.map(|d| dtype_arg(py, d)).transpose()?;
    let a = match src_dtype {
        None => open_any(&src),
        Some(d) => open_any_raw(&src, d),
    }
    .map_err(crate::errors::to_py)?;
    let to = to.unwrap_or(a.dtype());
    let npy = is_npy(&dst);
    let par = par(threads)?;
    let cancel = Arc::new(AtomicBool::new(false));
    let mut opts = ConvertOptions::new();
    opts.dtype(to)
        .to_raw(!npy)
        .cast(CastMode::Unsafe)
        .cancel_flag(cancel.clone());
    run(py, true, Some(&par), &cancel, || {
        convert_array(&a, &dst, &opts)
    })?;
    let d = PyDict::new(py);
    d.set_item("src", src.to_string_lossy().into_owned())?;
    d.set_item("dst", dst.to_string_lossy().into_owned())?;
    d.set_item("dtype", if to == DType::Bool { "bool" } else { to.name() })?;
    d.set_item("shape", a.shape().to_vec())?;
    d.set_item("format", if npy { "npy" } else { "raw" })?;
    Ok(d)
}
