//! outcore's benchmark package: the benches in this folder (`cargo bench -p outcore-bench
//! --bench NAME`) and the peers they compare against. It is a package of its own so that
//! `cargo run` and `cargo test` of the library never compile criterion, voracious or extsort.

use std::path::PathBuf;

/// Where the benchmarks put their large files: `$DATA`, else `target/bench-data` in the
/// repository (never a path of one machine).
pub fn data_dir() -> PathBuf {
    std::env::var_os("DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../target/bench-data"))
        })
}
