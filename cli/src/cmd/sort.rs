//! `outcore sort`.

use crate::error::{fail, Result};
use crate::Global;

/// (not written yet)
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Runs `outcore sort`.
pub fn run(_args: Args, _g: &Global) -> Result<()> {
    Err(fail("not implemented yet"))
}
