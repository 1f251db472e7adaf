//! Helpers: run the `outcore` binary, scratch directories; the numpy oracle and the
//! memory-cap tool are the library tests' own (`tests/oracle.rs`).

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

#[path = "../../tests/oracle.rs"]
mod oracle;
pub use oracle::*;

/// The binary under test.
pub const OUTCORE: &str = env!("CARGO_BIN_EXE_outcore");

/// What a run of the binary gave.
#[derive(Debug)]
pub struct Run {
    /// Exit status (`None` if killed by a signal).
    pub code: Option<i32>,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl Run {
    /// Panics with the run's output unless it succeeded.
    pub fn ok(self) -> Run {
        assert_eq!(self.code, Some(0), "outcore failed:\n{}", self.stderr);
        self
    }
}

impl From<Output> for Run {
    fn from(o: Output) -> Run {
        Run {
            code: o.status.code(),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

/// Runs `outcore ARGS` and waits for it.
pub fn outcore<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> Run {
    Command::new(OUTCORE)
        .args(args)
        .output()
        .expect("run outcore")
        .into()
}

/// Runs `outcore ARGS` in `dir`.
pub fn outcore_in<S: AsRef<std::ffi::OsStr>>(dir: &Path, args: &[S]) -> Run {
    Command::new(OUTCORE)
        .current_dir(dir)
        .args(args)
        .output()
        .expect("run outcore")
        .into()
}

/// A fresh scratch directory, removed when dropped.
pub fn tmpdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("outcore-cli-test-")
        .tempdir()
        .expect("temp dir")
}

/// `dir/name`.
pub fn p(dir: &Path, name: &str) -> PathBuf {
    dir.join(name)
}

/// `path` as a `&str` (test paths are UTF-8).
pub fn s(path: &Path) -> &str {
    path.to_str().expect("utf-8 path")
}

/// Every numpy dtype name the tool supports, in outcore's spelling and numpy's.
pub const DTYPES: [(&str, &str); 10] = [
    ("u8", "uint8"),
    ("u16", "uint16"),
    ("u32", "uint32"),
    ("u64", "uint64"),
    ("i8", "int8"),
    ("i16", "int16"),
    ("i32", "int32"),
    ("i64", "int64"),
    ("f32", "float32"),
    ("f64", "float64"),
];

/// The names of the files in `dir` (temporary files included), sorted.
pub fn listing(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .expect("list dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// Whether numpy and zarr-python import with the test Python ([`python_imports`];
/// `OUTCORE_REQUIRE_ZARR=1` makes a missing zarr a failure).
pub fn have_zarr() -> bool {
    static HAVE: OnceLock<bool> = OnceLock::new();
    *HAVE.get_or_init(|| {
        python_imports(
            "numpy, zarr",
            "OUTCORE_REQUIRE_ZARR",
            "set OUTCORE_PYTHON, or pip install zarr",
        )
    })
}

/// Skips the calling test (returns early) when numpy or zarr-python is missing.
#[macro_export]
macro_rules! require_zarr {
    () => {
        if !$crate::common::have_zarr() {
            eprintln!("skipped: {} needs numpy and zarr", module_path!());
            return;
        }
    };
}
