//! `outcore.describe` and `outcore.percentile`.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use numpy::{PyArray1, PyUntypedArrayMethods};
use outcore::kernels::{self, Numeric, QuantileMethod, QuantileOptions, QuantileValue};
use outcore::sort::SortKey;
use outcore::stream;
use outcore::{with_any, with_dtype, DType, Element, MappedArray, ParOptions};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyList};
use pyo3::IntoPyObjectExt;
use rayon::prelude::*;

use crate::errors::value_error;
use crate::input::{c_index, dtype_arg, input, ArrayMem, Input};
use crate::run::{par, run, LONG_CALL_BYTES};
use crate::summary::{summarize, Request, Summary};

/// Candidate memory of the quantile passes over a file (as `outcore stats`).
const QUANTILE_MEMORY: usize = 256 << 20;

/// An element as a Python scalar: `bool` for boolean arrays, else `int` or `float`.
fn elem<'py, T>(py: Python<'py>, x: T, is_bool: bool) -> PyResult<Bound<'py, PyAny>>
where
    T: Numeric + IntoPyObject<'py>,
{
    if is_bool {
        Ok(PyBool::new(py, x.as_() != 0.0).to_owned().into_any())
    } else {
        x.into_bound_py_any(py)
    }
}

fn quantile_py<'py, T>(
    py: Python<'py>,
    v: QuantileValue<T>,
    is_bool: bool,
) -> PyResult<Bound<'py, PyAny>>
where
    T: Numeric + IntoPyObject<'py>,
{
    match v {
        QuantileValue::Element(x) => elem(py, x, is_bool),
        QuantileValue::Float(f) => f.into_bound_py_any(py),
    }
}

fn opt_py<'py, X: IntoPyObject<'py>>(py: Python<'py>, x: Option<X>) -> PyResult<Bound<'py, PyAny>> {
    match x {
        Some(x) => x.into_bound_py_any(py),
        None => Ok(py.None().into_bound(py)),
    }
}

/// The summary as the dict `describe` returns (without percentiles).
fn summary_dict<'py, T>(
    py: Python<'py>,
    s: &Summary<T>,
    is_bool: bool,
) -> PyResult<Bound<'py, PyDict>>
where
    T: Numeric + IntoPyObject<'py>,
    T::Total: IntoPyObject<'py>,
{
    let d = PyDict::new(py);
    d.set_item("count", s.count)?;
    d.set_item("nan_count", s.nan_count)?;
    d.set_item("sum", s.sum.into_bound_py_any(py)?)?;
    d.set_item("mean", s.mean)?;
    d.set_item("std", s.std)?;
    match s.min_max {
        Some((lo, hi)) => {
            d.set_item("min", elem(py, lo, is_bool)?)?;
            d.set_item("max", elem(py, hi, is_bool)?)?;
        }
        None => {
            d.set_item("min", py.None())?;
            d.set_item("max", py.None())?;
        }
    }
    d.set_item("argmin", opt_py(py, s.argmin)?)?;
    d.set_item("argmax", opt_py(py, s.argmax)?)?;
    if let Some((edges, counts)) = &s.histogram {
        let h = PyDict::new(py);
        h.set_item("edges", PyArray1::from_slice(py, edges))?;
        let counts: Vec<i64> = counts.iter().map(|&c| c as i64).collect();
        h.set_item("counts", PyArray1::from_vec(py, counts))?;
        d.set_item("histogram", h)?;
    }
    Ok(d)
}

/// Per-lane summaries of a 2-D array as a dict of numpy arrays (one value per lane).
fn lanes_dict<'py, T>(
    py: Python<'py>,
    lanes: &[Summary<T>],
    is_bool: bool,
    np_dtype: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyDict>>
where
    T: Numeric + IntoPyObject<'py>,
    T::Total: IntoPyObject<'py>,
{
    let np = py.import("numpy")?;
    let asarray = np.getattr("asarray")?;
    let d = PyDict::new(py);
    let col =
        |f: &dyn Fn(&Summary<T>) -> PyResult<Bound<'py, PyAny>>| -> PyResult<Bound<'py, PyList>> {
            let items = lanes.iter().map(f).collect::<PyResult<Vec<_>>>()?;
            PyList::new(py, items)
        };
    d.set_item(
        "count",
        asarray.call1((col(&|s| s.count.into_bound_py_any(py))?, "int64"))?,
    )?;
    d.set_item(
        "nan_count",
        asarray.call1((col(&|s| s.nan_count.into_bound_py_any(py))?, "int64"))?,
    )?;
    d.set_item(
        "sum",
        asarray.call1((col(&|s| s.sum.into_bound_py_any(py))?,))?,
    )?;
    d.set_item(
        "mean",
        asarray.call1((col(&|s| s.mean.into_bound_py_any(py))?, "float64"))?,
    )?;
    d.set_item(
        "std",
        asarray.call1((col(&|s| s.std.into_bound_py_any(py))?, "float64"))?,
    )?;
    let all = lanes.iter().all(|s| s.min_max.is_some());
    if all {
        d.set_item(
            "min",
            asarray.call1((
                col(&|s| elem(py, s.min_max.unwrap_or_else(|| unreachable!()).0, is_bool))?,
                np_dtype,
            ))?,
        )?;
        d.set_item(
            "max",
            asarray.call1((
                col(&|s| elem(py, s.min_max.unwrap_or_else(|| unreachable!()).1, is_bool))?,
                np_dtype,
            ))?,
        )?;
        d.set_item(
            "argmin",
            asarray.call1((
                col(&|s| s.argmin.unwrap_or(0).into_bound_py_any(py))?,
                "int64",
            ))?,
        )?;
        d.set_item(
            "argmax",
            asarray.call1((
                col(&|s| s.argmax.unwrap_or(0).into_bound_py_any(py))?,
                "int64",
            ))?,
        )?;
    } else {
        for k in ["min", "max", "argmin", "argmax"] {
            d.set_item(k, py.None())?;
        }
    }
    Ok(d)
}

/// Lane `i` of a 2-D array of `shape` stored in C (or Fortran) order: column `i` for axis
/// 0, row `i` for axis 1.
fn lane<T: Copy>(
    data: &[T],
    shape: (usize, usize),
    fortran: bool,
    axis: usize,
    i: usize,
) -> Vec<T> {
    let (r, c) = shape;
    let at = |row: usize, col: usize| {
        if fortran {
            data[row + col * r]
        } else {
            data[row * c + col]
        }
    };
    if axis == 0 {
        (0..r).map(|row| at(row, i)).collect()
    } else {
        (0..c).map(|col| at(i, col)).collect()
    }
}

fn method_arg(method: &str) -> PyResult<QuantileMethod> {
    QuantileMethod::from_name(method).ok_or_else(|| {
        value_error(format!(
            "method={method:?} is not supported; use one of \"linear\", \"lower\", \"higher\", \"nearest\", \"midpoint\""
        ))
    })
}

/// The percentiles of a file (streamed passes) or of a slice.
fn percentiles_of<T: Numeric + SortKey + Element>(
    file: Option<&MappedArray<T>>,
    data: &[T],
    ps: &[f64],
    method: QuantileMethod,
    par: &ParOptions,
) -> outcore::Result<Vec<QuantileValue<T>>> {
    match file {
        Some(a) => {
            let mut o = QuantileOptions::new();
            o.method(method).memory(QUANTILE_MEMORY).par(par.clone());
            Ok(stream::percentiles(a, ps, &o)?.values)
        }
        None => kernels::percentiles_with(data, ps, method, par),
    }
}

fn axis_arg(axis: Option<isize>, ndim: usize) -> PyResult<Option<usize>> {
    match axis {
        None => Ok(None),
        Some(a) => {
            let n = ndim as isize;
            if ndim == 1 && (a == 0 || a == -1) {
                return Ok(None);
            }
            if ndim != 2 {
                return Err(value_error(format!(
                    "axis={a}: per-lane summaries need a 2-D array; this one has {ndim} dimensions"
                )));
            }
            if !(-n..n).contains(&a) {
                return Err(value_error(format!(
                    "axis={a} is out of bounds for a 2-D array"
                )));
            }
            Ok(Some(a.rem_euclid(n) as usize))
        }
    }
}

/// describe(x, bins=None, percentiles=None, axis=None, *, ddof=0, dtype=None, threads=None) -> dict
///
/// The summary of ``x`` in a few parallel passes: a path to a ``.npy`` file (mapped in Rust,
/// never loaded into Python; a raw file with ``dtype=``), or a numpy array of any outcore
/// dtype (``np.memmap`` included), read in place without a copy when it is C- or
/// F-contiguous (a strided view is copied once).
///
/// Returns ``{"count", "nan_count", "sum", "mean", "std", "min", "max", "argmin",
/// "argmax"}``, plus ``"histogram": {"edges", "counts"}`` with ``bins=`` (numpy's bins over
/// the finite values' range) and ``"percentiles": {p: value}`` with ``percentiles=[p, ...]``
/// (exact, numpy's linear method, each p in [0, 100]). NaN as numpy: a NaN makes sum, mean,
/// std, min, max and the percentiles NaN; argmin/argmax give the first NaN (C-order flat
/// indices, as ``np.argmin``). Integer sums are exact Python ints; ``std`` uses ``ddof``.
/// An empty array gives count 0 and None for min, max, argmin, argmax.
///
/// ``axis=0`` (per column) or ``axis=1`` (per row) of a 2-D array gives the same keys
/// (without histogram and percentiles), each a numpy array with one value per lane.
#[allow(clippy::too_many_arguments)]
#[pyfunction]
#[pyo3(signature = (x, bins=None, percentiles=None, axis=None, *, ddof=0, dtype=None, threads=None))]
pub fn describe<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    bins: Option<usize>,
    percentiles: Option<Vec<f64>>,
    axis: Option<isize>,
    ddof: u64,
    dtype: Option<&Bound<'py, PyAny>>,
    threads: Option<usize>,
) -> PyResult<Bound<'py, PyDict>> {
    if bins == Some(0) {
        return Err(value_error("bins must be at least 1"));
    }
    let dtype = dtype.map(|d| dtype_arg(py, d)).transpose()?;
    let inp = input(x, dtype)?;
    let par = par(threads)?;
    let ps = percentiles.unwrap_or_default();
    let req = Request { bins, ddof };
    let cancel = Arc::new(AtomicBool::new(false));
    let (dt, shape, fortran) = match &inp {
        Input::File(a) => (a.dtype(), a.shape().to_vec(), a.is_fortran_order()),
        Input::Array(m) => (m.dtype, m.shape.clone(), m.fortran),
    };
    let is_bool = dt == DType::Bool;
    let axis = axis_arg(axis, shape.len())?;
    if axis.is_some() && (bins.is_some() || !ps.is_empty()) {
        return Err(value_error(
            "axis= gives per-lane summaries; bins= and percentiles= apply to the whole array (drop axis= for them)",
        ));
    }
    let long = matches!(&inp, Input::File(_))
        || matches!(&inp, Input::Array(m) if m.len * dt.size() > LONG_CALL_BYTES);
    let np_dtype = match &inp {
        Input::Array(m) => m.keep.dtype().into_any(),
        Input::File(_) => py.import("numpy")?.getattr("dtype")?.call1((dt.descr(),))?,
    };
    with_dtype!(dt, T => {
        let (file, data): (Option<&MappedArray<T>>, &[T]) = match &inp {
            Input::File(any) => {
                let a: &MappedArray<T> = with_any!(any, a => cast_mapped(a))?;
                (Some(a), a.as_slice())
            }
            // SAFETY: T is the element type of the array's dtype (the dispatch above).
            Input::Array(m) => (None, unsafe { ArrayMem::slice::<T>(m) }),
        };
        if let Some(axis) = axis {
            let (r, c) = (shape[0], shape[1]);
            let n = if axis == 0 { c } else { r };
            let cancel2 = cancel.clone();
            let lanes = run(py, long, Some(&par), &cancel, move || {
                (0..n)
                    .into_par_iter()
                    .map(|i| {
                        let l = lane(data, (r, c), fortran, axis, i);
                        summarize(&l, &req, &ParOptions::new(), &cancel2)
                    })
                    .collect::<outcore::Result<Vec<_>>>()
            })?;
            return lanes_dict(py, &lanes, is_bool, &np_dtype);
        }
        let cancel2 = cancel.clone();
        let par2 = par.clone();
        let (s, q) = run(py, long, Some(&par), &cancel, move || {
            let mut s = summarize(data, &req, &par2, &cancel2)?;
            if fortran && shape.len() > 1 {
                fortran_arg_extremes(data, &shape, &mut s);
            }
            let q = if ps.is_empty() {
                Vec::new()
            } else {
                crate::run::check(&cancel2)?;
                percentiles_of(file, data, &ps, QuantileMethod::Linear, &par2)?
                    .into_iter()
                    .zip(ps)
                    .collect()
            };
            Ok((s, q))
        })?;
        let d = summary_dict(py, &s, is_bool)?;
        if !q.is_empty() {
            let p = PyDict::new(py);
            for (v, q) in q {
                p.set_item(q, quantile_py(py, v, is_bool)?)?;
            }
            d.set_item("percentiles", p)?;
        }
        Ok(d)
    })
}

/// numpy's argmin/argmax of a Fortran-ordered array are the first extreme in C order: the
/// smallest C-order index among the elements equal to the min (max), or among the NaNs.
fn fortran_arg_extremes<T: Numeric>(data: &[T], shape: &[usize], s: &mut Summary<T>) {
    let Some((lo, hi)) = s.min_max else { return };
    let has_nan = s.nan_count > 0;
    let first = |target: T| {
        data.par_iter()
            .enumerate()
            .with_min_len(1 << 16)
            .filter(|&(_, &x)| {
                #[allow(clippy::eq_op)]
                let nan = x != x;
                if has_nan {
                    nan
                } else {
                    x == target
                }
            })
            .map(|(i, _)| c_index(i, shape, true))
            .min()
    };
    s.argmin = first(lo);
    s.argmax = first(hi);
}

/// The `MappedArray<U>` inside an `AnyArray` as the `MappedArray<T>` the dispatch chose (they
/// are the same type; this is the bridge between `with_any!` and `with_dtype!`).
fn cast_mapped<U: 'static, T: 'static>(a: &MappedArray<U>) -> PyResult<&MappedArray<T>> {
    (a as &dyn std::any::Any)
        .downcast_ref::<MappedArray<T>>()
        .ok_or_else(|| value_error("internal error: dtype dispatch mismatch"))
}

/// percentile(x, q, method="linear", *, dtype=None, threads=None) -> numpy scalar or ndarray
///
/// The exact percentiles ``q`` (a number or array-like, each in [0, 100]) of ``x`` (a path
/// to a ``.npy`` file, or an array), equal to ``np.percentile(x, np.asarray(q), method=...)``
/// for ``method`` in "linear", "lower", "higher", "nearest", "midpoint": without sorting,
/// in a few parallel passes (a file in bounded memory). "linear" and "midpoint" give
/// float64; the others an element, in ``x``'s dtype. Any NaN in ``x`` makes the result NaN.
/// The result has the shape of ``q`` (a scalar for a scalar ``q``).
///
/// Raises ``ValueError`` for an empty ``x``, a ``q`` outside [0, 100] or an unknown method.
#[pyfunction]
#[pyo3(signature = (x, q, method="linear", *, dtype=None, threads=None))]
pub fn percentile<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    q: &Bound<'py, PyAny>,
    method: &str,
    dtype: Option<&Bound<'py, PyAny>>,
    threads: Option<usize>,
) -> PyResult<Bound<'py, PyAny>> {
    let method = method_arg(method)?;
    let np = py.import("numpy")?;
    let qa = np.getattr("asarray")?.call1((q, "float64"))?;
    let q_shape = qa.getattr("shape")?;
    let scalar = qa.getattr("ndim")?.extract::<usize>()? == 0;
    let ps: Vec<f64> = qa
        .call_method0("ravel")?
        .call_method0("tolist")?
        .extract()?;
    let dtype = dtype.map(|d| dtype_arg(py, d)).transpose()?;
    let inp = input(x, dtype)?;
    let par = par(threads)?;
    let cancel = Arc::new(AtomicBool::new(false));
    let dt = match &inp {
        Input::File(a) => a.dtype(),
        Input::Array(m) => m.dtype,
    };
    let long = matches!(&inp, Input::File(_))
        || matches!(&inp, Input::Array(m) if m.len * dt.size() > LONG_CALL_BYTES);
    let np_dtype = match &inp {
        Input::Array(m) => m.keep.dtype().into_any(),
        Input::File(_) => np.getattr("dtype")?.call1((dt.descr(),))?,
    };
    let out = with_dtype!(dt, T => {
        let (file, data): (Option<&MappedArray<T>>, &[T]) = match &inp {
            Input::File(any) => {
                let a: &MappedArray<T> = with_any!(any, a => cast_mapped(a))?;
                (Some(a), a.as_slice())
            }
            // SAFETY: T is the element type of the array's dtype (the dispatch above).
            Input::Array(m) => (None, unsafe { ArrayMem::slice::<T>(m) }),
        };
        let par2 = par.clone();
        let vals = run(py, long, Some(&par), &cancel, move || {
            percentiles_of(file, data, &ps, method, &par2)
        })?;
        let elems: Option<Vec<T>> = vals.iter().map(|v| v.element()).collect();
        match elems {
            // lower / higher / nearest: the data's own dtype, as numpy.
            Some(e) if !matches!(method, QuantileMethod::Linear | QuantileMethod::Midpoint) => {
                PyArray1::from_vec(py, e).into_any().call_method1("view", (np_dtype,))?
            }
            _ => {
                let f: Vec<f64> = vals.iter().map(|v| v.to_f64()).collect();
                PyArray1::from_vec(py, f).into_any()
            }
        }
    });
    let out = out.call_method1("reshape", (q_shape,))?;
    if scalar {
        out.get_item(())
    } else {
        Ok(out)
    }
}
