//! Tests of the `outcore` command-line tool: the real binary, run on numpy-made files, its
//! output checked against numpy. One binary, a module per subcommand.

mod common;

mod convert;
mod demo;
mod errors;
mod gen;
mod head;
mod info;
mod limits;
mod sort;
mod stats;
mod zarr;
