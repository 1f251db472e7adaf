//! Sizes given as an int (bytes) or a human string: `"4GiB"`, `"512M"`, `"1.5GB"`.

use pyo3::prelude::*;

use crate::errors::value_error;

/// A size argument: a non-negative int, or a string as [`parse_size`] reads it.
pub fn size_arg(x: &Bound<'_, PyAny>, what: &str) -> PyResult<u64> {
    if let Ok(n) = x.extract::<u64>() {
        return Ok(n);
    }
    if let Ok(s) = x.extract::<String>() {
        return parse_size(&s).map_err(|e| value_error(format!("{what}: {e}")));
    }
    Err(value_error(format!(
        "{what} must be a number of bytes or a string such as \"512MiB\", not {x}"
    )))
}

/// [`outcore::parse_size`], its error as a message.
pub fn parse_size(s: &str) -> Result<u64, String> {
    outcore::parse_size(s).map_err(|e| e.to_string())
}
