//! `outcore.sort`, `outcore.argsort` and `outcore.sort_file`.

use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use numpy::{PyArray1, PyUntypedArray, PyUntypedArrayMethods};
use outcore::sort::{self as osort, Record, SortOptions, SortReport};
use outcore::{with_dtype, DType};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

use crate::errors::value_error;
use crate::input::{array_mem, dtype_arg, dtype_of, path_arg, ArrayMem};
use crate::run::{par, run, LONG_CALL_BYTES};
use crate::size::size_arg;

/// sort(a, *, threads=None) -> None
///
/// Sorts the 1-D numpy array ``a`` in place, in parallel (outcore's radix sort), in numpy's
/// order: for floats ``-inf < ... < -0.0 <= 0.0 < ... < inf < nan`` (every NaN last), as
/// ``np.sort``. Every outcore dtype: bool, uint8..uint64, int8..int64, float32, float64.
///
/// ``a`` must be C-contiguous, aligned and writeable (an ``np.memmap`` opened ``"r+"`` works
/// and is sorted in the file); a strided view or a read-only array is a ``ValueError``
/// (sort a copy). ``threads`` sets the number of threads (default: all cores). The GIL is
/// released; Ctrl-C is raised when the sort ends (an in-place sort cannot stop half-way).
#[pyfunction]
#[pyo3(signature = (a, *, threads=None))]
pub fn sort(py: Python<'_>, a: &Bound<'_, PyAny>, threads: Option<usize>) -> PyResult<()> {
    let arr = a.cast::<PyUntypedArray>().map_err(|_| {
        pyo3::exceptions::PyTypeError::new_err(
            "outcore.sort sorts a numpy array in place; for other sequences use np.asarray first",
        )
    })?;
    if arr.ndim() != 1 {
        return Err(value_error(format!(
            "outcore.sort sorts 1-D arrays in place; this one has {} dimensions (sort a.ravel() of a contiguous array, or use np.sort(a, axis=...))",
            arr.ndim()
        )));
    }
    if !arr.is_c_contiguous() {
        return Err(value_error(
            "outcore.sort needs a contiguous array (this one is a strided view); sort a copy: b = np.ascontiguousarray(a); outcore.sort(b)",
        ));
    }
    if !arr.is_aligned() {
        return Err(value_error(
            "outcore.sort needs an aligned array; sort a copy",
        ));
    }
    // SAFETY: a live array object while `arr` is held.
    let flags = unsafe { (*arr.as_array_ptr()).fields.flags };
    if flags & numpy::npyffi::NPY_ARRAY_WRITEABLE == 0 {
        return Err(value_error(
            "outcore.sort sorts in place, and this array is read-only (a read-only memmap or a view of read-only data); sort a copy with np.array(a)",
        ));
    }
    let dt = dtype_of(arr.dtype().as_any())?;
    let len = arr.len();
    // SAFETY: `as_array_ptr` points to the live array object while `arr` is held; reading
    // its data pointer field reads no element.
    let ptr = unsafe { (*arr.as_array_ptr()).fields.data } as usize;
    let par = par(threads)?;
    let cancel = Arc::new(AtomicBool::new(false));
    let long = len * dt.size() > LONG_CALL_BYTES;
    with_dtype!(dt, T => {
        let data: &mut [T] = if len == 0 {
            &mut []
        } else {
            // SAFETY: a writeable, aligned, C-contiguous array of `len` elements of T, kept
            // alive by the caller's reference for the duration of this call. Like numpy's own
            // GIL-releasing sorts, other Python threads must not use the array meanwhile.
            unsafe { std::slice::from_raw_parts_mut(ptr as *mut T, len) }
        };
        // The in-place sort cannot stop half-way (the array would be neither the input nor
        // sorted): Ctrl-C is raised when it finishes.
        run(py, long, Some(&par), &cancel, move || {
            osort::par_sort(data);
            Ok(())
        })
    })
}

/// argsort(a, *, threads=None) -> numpy.ndarray
///
/// The indices that sort the 1-D array ``a`` stably, as ``np.argsort(a, kind="stable")``
/// (numpy's order, NaN last; equal elements keep their order), as an ``intp`` array.
/// Any array works; a non-contiguous one is copied once first.
#[pyfunction]
#[pyo3(signature = (a, *, threads=None))]
pub fn argsort<'py>(
    py: Python<'py>,
    a: &Bound<'py, PyAny>,
    threads: Option<usize>,
) -> PyResult<Bound<'py, PyAny>> {
    let m = array_mem(a)?;
    if m.shape.len() != 1 {
        return Err(value_error(format!(
            "outcore.argsort takes 1-D arrays; this one has shape {:?}",
            m.shape
        )));
    }
    let par = par(threads)?;
    let cancel = Arc::new(AtomicBool::new(false));
    let long = m.len * m.dtype.size() > LONG_CALL_BYTES;
    let idx = with_dtype!(m.dtype, T => {
        // SAFETY: T is the element type of the array's dtype.
        let data: &[T] = unsafe { ArrayMem::slice::<T>(&m) };
        run(py, long, Some(&par), &cancel, move || Ok(osort::argsort(data)))?
    });
    let intp = py.import("numpy")?.getattr("intp")?;
    PyArray1::from_vec(py, idx)
        .into_any()
        .call_method1("view", (intp,))
}

/// The record layouts `sort_file` knows (`record_size`, `key_size`): the Sort Benchmark's and
/// a few with 8- or 16-byte keys. Each is a separate instantiation of the external sort.
macro_rules! record_dispatch {
    ($n:expr, $k:expr, $R:ident => $body:expr; $($N:literal / $K:literal),*) => {
        match ($n, $k) {
            $(($N, $K) => { type $R = Record<$N, $K>; $body })*
            (n, k) => Err(value_error(format!(
                "record_size={n}, key_size={k} is not supported; supported (record_size, key_size): {}",
                [$(format!("({}, {})", $N, $K)),*].join(", ")
            ))),
        }
    };
}

/// sort_file(src, dst, memory="1GiB", tmp=None, threads=None, progress=False, *, dtype=None, record_size=None, key_size=None, max_fan_in=None) -> dict
///
/// Sorts the 1-D ``.npy`` file ``src`` into ``dst`` (which may be ``src``) with outcore's
/// external merge sort, using about ``memory`` bytes (an int, or ``"512MiB"``, ``"4GiB"``...;
/// ``None`` is 1 GiB) whatever the file's size: data that fits is sorted in one pass, larger data as sorted
/// runs in ``tmp`` (default: ``dst``'s directory) merged into ``dst``. numpy's order.
///
/// Raw files: ``dtype=`` for a headerless file of numbers; ``record_size=``/``key_size=``
/// for fixed-size records sorted by their first ``key_size`` bytes as unsigned bytes
/// (supported: (100, 10), the Sort Benchmark's, and (16, 8), (32, 8), (64, 8), (128, 16)).
///
/// Returns the report: ``{"elements", "bytes", "external", "runs", "merge_levels",
/// "phases": [{"phase", "seconds"}, ...], "seconds"}``. ``progress=True`` prints each
/// phase's progress on stderr. The GIL is released; Ctrl-C stops the sort promptly, removes
/// its temporary files, leaves ``dst`` untouched and raises ``KeyboardInterrupt``.
///
/// Raises ``FileNotFoundError`` (missing ``src``), ``ValueError`` (not a .npy, bad header,
/// unsupported dtype, not 1-D, budget too small), ``OSError`` with ``errno.ENOSPC`` (not
/// enough disk space, checked before writing), ``PermissionError``.
#[allow(clippy::too_many_arguments)]
#[pyfunction]
#[pyo3(signature = (src, dst, memory=None, tmp=None, threads=None, progress=false, *, dtype=None, record_size=None, key_size=None, max_fan_in=None))]
pub fn sort_file<'py>(
    py: Python<'py>,
    src: &Bound<'py, PyAny>,
    dst: &Bound<'py, PyAny>,
    memory: Option<&Bound<'py, PyAny>>,
    tmp: Option<&Bound<'py, PyAny>>,
    threads: Option<usize>,
    progress: bool,
    dtype: Option<&Bound<'py, PyAny>>,
    record_size: Option<usize>,
    key_size: Option<usize>,
    max_fan_in: Option<usize>,
) -> PyResult<Bound<'py, PyDict>> {
    let src: PathBuf = path_arg(src, "src")?;
    let dst: PathBuf = path_arg(dst, "dst")?;
    let mut opts = SortOptions::new();
    if let Some(m) = memory {
        opts.memory(size_arg(m, "memory")? as usize);
    }
    if let Some(t) = tmp {
        opts.tmp_dir(path_arg(t, "tmp")?);
    }
    if let Some(n) = threads {
        opts.threads(n);
    }
    if let Some(k) = max_fan_in {
        opts.max_fan_in(k);
    }
    if progress {
        opts.progress(progress_printer());
    }
    let cancel = Arc::new(AtomicBool::new(false));
    opts.cancel_flag(cancel.clone());
    let dtype: Option<DType> = dtype.map(|d| dtype_arg(py, d)).transpose()?;
    if key_size.is_some() && record_size.is_none() {
        return Err(value_error("key_size= needs record_size="));
    }
    let report: SortReport = match (record_size, dtype) {
        (Some(_), Some(_)) => return Err(value_error(
            "give dtype= (a raw file of numbers) or record_size= (a raw file of records), not both",
        )),
        (Some(n), None) => {
            let k = key_size.unwrap_or(n.min(10));
            let r = record_dispatch!(n, k, R => Ok(run(py, true, None, &cancel, || {
                osort::sort_raw_file::<R>(&src, &dst, &opts)
            })); 100 / 10, 16 / 8, 32 / 8, 64 / 8, 128 / 16);
            r??
        }
        (None, Some(d)) => with_dtype!(d, T => run(py, true, None, &cancel, || {
            osort::sort_raw_file::<T>(&src, &dst, &opts)
        }))?,
        (None, None) => run(py, true, None, &cancel, || {
            osort::sort_file(&src, &dst, &opts)
        })?,
    };
    if progress {
        eprintln!();
    }
    report_dict(py, &report)
}

fn report_dict<'py>(py: Python<'py>, r: &SortReport) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("elements", r.elements)?;
    d.set_item("bytes", r.bytes)?;
    d.set_item("external", r.external)?;
    d.set_item("runs", r.runs)?;
    d.set_item("merge_levels", r.merge_levels)?;
    let phases = PyList::empty(py);
    let mut total = 0.0;
    for (phase, t) in &r.phases {
        let p = PyDict::new(py);
        p.set_item("phase", phase.to_string())?;
        p.set_item("seconds", t.as_secs_f64())?;
        total += t.as_secs_f64();
        phases.append(p)?;
    }
    d.set_item("phases", phases)?;
    d.set_item("seconds", total)?;
    Ok(d)
}

/// A progress callback printing `phase: NN%` on stderr, once per percent.
fn progress_printer() -> impl Fn(osort::Phase, u64, u64) + Send + Sync + 'static {
    let last = AtomicU64::new(u64::MAX);
    move |phase, done, total| {
        let pct = (done.saturating_mul(100)).checked_div(total).unwrap_or(100);
        let key = (phase_code(phase) << 8) | pct;
        if last.swap(key, Ordering::Relaxed) != key {
            let mut e = std::io::stderr().lock();
            let _ = write!(e, "\routcore.sort_file: {phase}: {pct:3}%   ");
            let _ = e.flush();
        }
    }
}

fn phase_code(p: osort::Phase) -> u64 {
    match p {
        osort::Phase::InMemory => 1,
        osort::Phase::RunFormation => 2,
        osort::Phase::Merge { level } => 3 + level as u64,
        _ => 0xff,
    }
}
