//! `outcore._core`: the compiled part of the `outcore` Python module (python/outcore/
//! re-exports it, python/outcore/__init__.pyi types it).
//!
//! Every entry point releases the GIL for its work (`run::run`); long ones run it on a
//! worker thread and poll for Ctrl-C. outcore's errors become the Python exceptions a user
//! expects (`errors::to_py`); panics become `RuntimeError`.
#![warn(clippy::undocumented_unsafe_blocks)]

mod errors;
mod files;
mod input;
mod run;
mod size;
mod sorting;
mod stats;
mod summary;

use pyo3::prelude::*;

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(sorting::sort, m)?)?;
    m.add_function(wrap_pyfunction!(sorting::argsort, m)?)?;
    m.add_function(wrap_pyfunction!(sorting::sort_file, m)?)?;
    m.add_function(wrap_pyfunction!(stats::describe, m)?)?;
    m.add_function(wrap_pyfunction!(stats::percentile, m)?)?;
    m.add_function(wrap_pyfunction!(files::generate, m)?)?;
    m.add_function(wrap_pyfunction!(files::convert, m)?)?;
    m.add_function(wrap_pyfunction!(size_py, m)?)?;
    m.add("TEMP_MARKER", outcore::TEMP_MARKER)?;
    Ok(())
}

/// parse_size(s) -> int
///
/// A size as the outcore command line reads it: ``"4GiB"``, ``"512M"``, ``"1.5GB"``,
/// ``"1000000"`` (K M G T and KiB ... TiB are powers of 1024, KB MB GB TB of 1000).
#[pyfunction]
#[pyo3(name = "parse_size")]
fn size_py(s: &Bound<'_, PyAny>) -> PyResult<u64> {
    size::size_arg(s, "size")
}
