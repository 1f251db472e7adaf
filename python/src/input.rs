//! What `describe` and `percentile` read: a `.npy` (or raw) file mapped in Rust, or a numpy
//! array read in place through its data pointer.

use std::path::PathBuf;

use numpy::{PyUntypedArray, PyUntypedArrayMethods};
use outcore::{open_any, open_any_raw, AnyArray, DType};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyString};

use crate::errors::{to_py, value_error};

/// A numpy array's memory, viewed as `len` elements of `dtype` at `ptr`, contiguous in C or
/// Fortran order. `keep` holds the array (the caller's, or a contiguous copy) so the memory
/// stays alive.
pub struct ArrayMem<'py> {
    pub keep: Bound<'py, PyUntypedArray>,
    pub dtype: DType,
    pub ptr: usize,
    pub len: usize,
    pub shape: Vec<usize>,
    /// C-contiguous is `false`; Fortran-ordered (and not also C-contiguous) is `true`.
    pub fortran: bool,
}

impl ArrayMem<'_> {
    /// The elements, as `T` (the caller dispatches on `dtype` with `with_dtype!`).
    ///
    /// # Safety
    /// `T` must be the element type of `dtype`, and the array must not be resized or freed
    /// while the slice is used (`keep` holds a reference; numpy cannot resize an array that
    /// is referenced).
    pub unsafe fn slice<T>(&self) -> &[T] {
        if self.len == 0 {
            return &[];
        }
        // SAFETY: the caller's promise; numpy's data pointer is valid for `len` elements,
        // and aligned (checked when the view was made).
        unsafe { std::slice::from_raw_parts(self.ptr as *const T, self.len) }
    }
}

/// The input of a reading function.
pub enum Input<'py> {
    File(AnyArray),
    Array(ArrayMem<'py>),
}

/// The path in `x` if it is a `str`, `bytes` or `os.PathLike`.
pub fn as_path(x: &Bound<'_, PyAny>) -> PyResult<Option<PathBuf>> {
    if x.is_instance_of::<PyString>() || x.is_instance_of::<PyBytes>() || x.hasattr("__fspath__")? {
        let py = x.py();
        let p = py.import("os")?.getattr("fsdecode")?.call1((x,))?;
        return Ok(Some(PathBuf::from(p.extract::<String>()?)));
    }
    Ok(None)
}

/// A required path argument.
pub fn path_arg(x: &Bound<'_, PyAny>, what: &str) -> PyResult<PathBuf> {
    as_path(x)?.ok_or_else(|| {
        pyo3::exceptions::PyTypeError::new_err(format!(
            "{what} must be a path (str or os.PathLike), not {}",
            x.get_type()
                .name()
                .map(|n| n.to_string())
                .unwrap_or_default()
        ))
    })
}

/// A dtype argument (`"f64"`, `"float64"`, `np.float64`, `np.dtype("<f8")`, ...) as outcore's.
pub fn dtype_arg(py: Python<'_>, d: &Bound<'_, PyAny>) -> PyResult<DType> {
    if let Ok(s) = d.extract::<String>() {
        if let Some(t) = DType::from_name(&s) {
            return Ok(t);
        }
    }
    let np = py.import("numpy")?;
    let dt = np
        .getattr("dtype")?
        .call1((d,))
        .map_err(|_| value_error(format!("unsupported dtype {d}")))?;
    dtype_of(&dt)
}

/// outcore's dtype for a numpy dtype object.
pub fn dtype_of(dt: &Bound<'_, PyAny>) -> PyResult<DType> {
    let descr: String = dt.getattr("str")?.extract()?;
    DType::from_descr(&descr).ok_or_else(|| {
        value_error(format!(
            "unsupported dtype {descr:?}{}",
            outcore::describe_unsupported(&descr)
        ))
    })
}

/// A numpy array (or anything `np.asarray` takes) as contiguous memory: C- or F-contiguous,
/// aligned arrays are used in place; others are copied once to C order.
pub fn array_mem<'py>(x: &Bound<'py, PyAny>) -> PyResult<ArrayMem<'py>> {
    let py = x.py();
    let arr = match x.cast::<PyUntypedArray>() {
        Ok(a) => a.clone(),
        Err(_) => {
            let a = py.import("numpy")?.getattr("asarray")?.call1((x,))?;
            a.cast_into::<PyUntypedArray>()?
        }
    };
    let dtype = dtype_of(arr.dtype().as_any())?;
    let arr = if (arr.is_c_contiguous() || arr.is_fortran_contiguous()) && arr.is_aligned() {
        arr
    } else {
        py.import("numpy")?
            .getattr("ascontiguousarray")?
            .call1((arr,))?
            .cast_into::<PyUntypedArray>()?
    };
    let fortran = !arr.is_c_contiguous();
    // SAFETY: `as_array_ptr` points at a live array object while `arr` is held.
    let ptr = unsafe { (*arr.as_array_ptr()).fields.data } as usize;
    Ok(ArrayMem {
        dtype,
        ptr,
        len: arr.len(),
        shape: arr.shape().to_vec(),
        fortran,
        keep: arr,
    })
}

/// `x` as an [`Input`]: a path is opened (a raw file needs `dtype`), an array is viewed.
pub fn input<'py>(x: &Bound<'py, PyAny>, dtype: Option<DType>) -> PyResult<Input<'py>> {
    if let Some(path) = as_path(x)? {
        let any = match dtype {
            None => open_any(&path),
            Some(d) => open_any_raw(&path, d),
        }
        .map_err(to_py)?;
        return Ok(Input::File(any));
    }
    if dtype.is_some() {
        return Err(value_error(
            "dtype= is for raw files; an array has its own dtype",
        ));
    }
    Ok(Input::Array(array_mem(x)?))
}

/// The index in C order of the element at position `i` of the memory of a Fortran-ordered
/// array of `shape` (numpy's argmin/argmax are C-order flat indices).
pub fn c_index(i: usize, shape: &[usize], fortran: bool) -> usize {
    if !fortran || shape.len() < 2 {
        return i;
    }
    // Unravel in Fortran order (first axis fastest), ravel in C order (last axis fastest).
    let mut rest = i;
    let mut c = 0usize;
    let mut c_stride = shape.iter().product::<usize>();
    for &n in shape {
        let n = n.max(1);
        c_stride /= n;
        c += (rest % n) * c_stride;
        rest /= n;
    }
    c
}
