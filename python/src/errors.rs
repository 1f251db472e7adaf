//! outcore's errors as the Python exceptions a user expects, and panics as `RuntimeError`.

use std::any::Any;
use std::path::Path;

use outcore::Error;
use pyo3::exceptions::{
    PyBlockingIOError, PyFileNotFoundError, PyKeyboardInterrupt, PyOSError, PyOverflowError,
    PyPermissionError, PyRuntimeError, PyValueError,
};
use pyo3::PyErr;

/// An `OSError` (or subclass `E`) with `errno`, outcore's message as `strerror` and the path
/// as `filename`, as Python's own I/O functions raise them.
fn os_error<E: pyo3::PyTypeInfo>(errno: i32, msg: String, path: &Path) -> PyErr {
    PyErr::new::<E, _>((errno, msg, path.to_string_lossy().into_owned()))
}

/// Maps an outcore error to a Python exception (see the module docs for the table).
pub fn to_py(e: Error) -> PyErr {
    let msg = e.to_string();
    match &e {
        Error::NotFound { path } => os_error::<PyFileNotFoundError>(libc::ENOENT, msg, path),
        Error::PermissionDenied { path, .. } => {
            os_error::<PyPermissionError>(libc::EACCES, msg, path)
        }
        Error::DiskFull { path, .. } => os_error::<PyOSError>(libc::ENOSPC, msg, path),
        Error::Locked { path, .. } => os_error::<PyBlockingIOError>(libc::EWOULDBLOCK, msg, path),
        Error::Io { path, source, .. } => match source.raw_os_error() {
            Some(errno) => os_error::<PyOSError>(errno, msg, path),
            None => PyOSError::new_err(msg),
        },
        Error::Truncated { path, .. } => os_error::<PyOSError>(libc::EIO, msg, path),
        Error::BadMagic { .. }
        | Error::UnsupportedVersion { .. }
        | Error::TruncatedHeader { .. }
        | Error::HeaderTooLong { .. }
        | Error::MalformedHeader { .. }
        | Error::UnsupportedDtype { .. }
        | Error::DtypeMismatch { .. }
        | Error::ShapeOverflow { .. }
        | Error::SizeMismatch { .. }
        | Error::NotAMultiple { .. }
        | Error::Misaligned { .. }
        | Error::LengthMismatch { .. }
        | Error::BadShape { .. }
        | Error::InvalidArgument(_)
        | Error::QuantileOutOfRange { .. }
        | Error::EmptyInput { .. }
        | Error::TooLargeToMap { .. }
        | Error::NotAFile { .. }
        | Error::NotADirectory { .. }
        | Error::ThreadPool { .. }
        | Error::DataChanged { .. }
        | Error::NotAFileName { .. }
        | Error::NulInPath { .. }
        | Error::ZeroSizedElement { .. }
        | Error::BudgetTooSmall { .. }
        | Error::NoBins
        | Error::RangeNotFinite { .. }
        | Error::RangeReversed { .. }
        | Error::BadAxis { .. }
        | Error::RankOutOfRange { .. }
        | Error::UnsupportedOption { .. }
        | Error::BadChunkShape { .. }
        | Error::ChunkOutOfGrid { .. }
        | Error::UnknownName { .. }
        | Error::DistributionNeedsFloat { .. }
        | Error::BadPart { .. }
        | Error::InvalidSize { .. } => PyValueError::new_err(msg),
        Error::Overflow { .. } | Error::DoesNotFit { .. } => PyOverflowError::new_err(msg),
        Error::Cancelled => PyKeyboardInterrupt::new_err(msg),
        _ => PyRuntimeError::new_err(msg),
    }
}

/// A `ValueError` with `msg`.
pub fn value_error(msg: impl Into<String>) -> PyErr {
    PyValueError::new_err(msg.into())
}

/// A panic payload as a `RuntimeError`: no panic crosses into Python as a panic.
pub fn panic_to_py(payload: Box<dyn Any + Send>) -> PyErr {
    let what = payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into());
    PyRuntimeError::new_err(format!("outcore: internal error (panic): {what}"))
}
