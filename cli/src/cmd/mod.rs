//! One module per subcommand: its arguments (with `--help` text and an example) and `run`.

pub mod convert;
pub mod demo;
pub mod gen;
pub mod head;
pub mod info;
pub mod sort;
pub mod stats;
