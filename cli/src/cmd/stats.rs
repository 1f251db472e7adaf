//! `outcore stats`.

use std::path::Path;

use crate::error::{fail, Result};
use crate::Global;

/// (not written yet)
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Runs `outcore stats`.
pub fn run(_args: Args, _g: &Global) -> Result<()> {
    Err(fail("not implemented yet"))
}

/// What `outcore demo` prints for its dataset: the summary `outcore stats FILE --bins 16`
/// would print (count, mean, std, min, max, ..., a histogram).
pub fn demo_summary(_path: &Path, _g: &Global) -> Result<()> {
    Ok(())
}
