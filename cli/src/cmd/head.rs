//! `outcore head`.

use crate::error::{fail, Result};
use crate::Global;

/// (not written yet)
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Runs `outcore head`.
pub fn run(_args: Args, _g: &Global) -> Result<()> {
    Err(fail("not implemented yet"))
}
