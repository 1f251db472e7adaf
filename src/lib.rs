//! # outcore: typed arrays larger than RAM
//!
//! outcore maps a file on disk — numpy's `.npy` format, or a raw headerless file — and lets
//! you use it as a typed slice: [`MappedArray<T>`] derefs to `&[T]`, [`MappedArrayMut<T>`]
//! to `&mut [T]`. Nothing is copied through a user buffer: the kernel pages data in on
//! demand and writes dirty pages back, so the page cache, not the process, holds the data,
//! and arrays far larger than RAM work. Parallel kernels run over **page-aligned chunks**
//! ([`chunk`]) so threads never share a page, and sorting falls back to an external merge
//! sort when the data exceeds the memory budget ([`sort`]; a mapped array of any size sorts
//! where it lies with [`sort::sort_array`]).
//!
//! ```
//! use outcore::{MappedArray, MappedArrayMut};
//! # let dir = tempfile::tempdir().unwrap();
//! let path = dir.path().join("data.npy");
//!
//! // A new .npy file: sized up front, visible under its name only once complete.
//! let mut a = MappedArrayMut::<f32>::create(&path, &[1000, 3])?;
//! for (i, x) in a.iter_mut().enumerate() {
//!     *x = i as f32;
//! }
//! a.persist()?;
//!
//! // numpy can np.load it; outcore maps it back, validated once, then a plain slice.
//! let a = MappedArray::<f32>::open(&path)?;
//! assert_eq!(a.shape(), &[1000, 3]);
//! assert_eq!(a.view2()?[[2, 1]], 7.0);
//! let total: f64 = a.iter().map(|&x| x as f64).sum();
//! assert_eq!(total, 2999.0 * 3000.0 / 2.0);
//! # Ok::<(), outcore::Error>(())
//! ```
//!
//! ## Safety: the mmap contract
//!
//! Rust assumes the memory behind a `&[T]` neither changes nor vanishes while borrowed; a
//! mapped file can be changed or truncated by any process. outcore's constructors are safe
//! and uphold the assumption among cooperating processes with advisory locks (`flock`):
//! readers take a shared lock, writers an exclusive one, and a conflict is an
//! [`Error::Locked`] within 100 ms (the grace covers a child process that briefly shares our
//! descriptors while it is being spawned), never a wait for the other user. On a filesystem
//! without `flock` support (some network and FUSE filesystems) no lock can be taken: outcore
//! maps the file anyway, and keeping it safe is then part of the constructors' contract
//! with you — while outcore maps a file there, no other process (another outcore included)
//! may write or truncate it. A program that ignores the locks can still truncate a
//! mapped file — touching the lost pages then kills the process with `SIGBUS` — or rewrite
//! it under a reader, who sees changed numbers (element types are `Pod`, so every bit
//! pattern is a valid value). Long passes can call [`MappedArray::check_size`] between
//! chunks to turn a detected truncation into [`Error::Truncated`]. Processes that mean to
//! share one writable mapping use the `unsafe` [`MappedArrayMut::open_shared`], which
//! makes non-overlapping access their promise.
//!
//! ## Files
//!
//! * `.npy` versions 1.0, 2.0 and 3.0 are read, 1.0 (2.0 for huge headers) is written, with
//!   the data 64-byte aligned as numpy does; dtypes `|b1` (read as `u8`), `|u1 <u2 <u4 <u8
//!   |i1 <i2 <i4 <i8 <f4 <f8` ([`Element`]), C or Fortran order, any number of dimensions.
//! * Raw files hold any [`bytemuck::Pod`] type, including fixed-size records such as
//!   [`sort::Record<100, 10>`](sort::Record).
//! * Outputs are written under a temporary name in the destination's directory and renamed
//!   on success ([`MappedArrayMut::persist`]); see [`remove_stale_temp_files`] for the
//!   leftovers of killed writers.
//! * A file whose dtype is known only at run time opens with [`open_any`] as an
//!   [`AnyArray`]; [`with_any!`] and [`with_dtype!`] run generic code on whichever element
//!   type it holds.
//!
//! ## Zarr
//!
//! With the `zarr` feature, `outcore::zarr` writes any outcore array (every dtype, C or
//! Fortran order) as a Zarr v3 array with a chosen chunk shape and codec (zstd or none),
//! encoding chunks in parallel within a memory budget, atomically; it reads Zarr v3 and v2
//! arrays (zarr-python's output) into a new `.npy`, and runs statistics and histograms over
//! a Zarr array chunk by chunk, decoding a window of chunks at a time in parallel. It is
//! built on the [zarrs](https://docs.rs/zarrs) crate.
//!
//! ## Features
//!
//! * `datasets`: the reproducible dataset generator (`outcore::datasets`, which needs random number
//!   generators). Off by default; the `outcore` command-line tool turns it on.
//! * `zarr`: Zarr arrays in and out (`zarr`, built on the `zarrs` crate with its
//!   filesystem store and zstd codec). Off by default.
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs, unreachable_pub, clippy::undocumented_unsafe_blocks)]

mod any;
mod array;
pub mod chunk;
pub mod convert;
pub mod cpu;
#[cfg(feature = "datasets")]
#[path = "../datasets/generate.rs"]
pub mod datasets;
mod element;
mod error;
pub mod kernels;
mod limits;
mod mmap;
pub mod npy;
pub mod sort;
pub mod stream;
mod sys;
mod temp;
#[cfg(feature = "zarr")]
pub mod zarr;

/// The README's examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

pub use any::{open_any, open_any_raw, AnyArray};
pub use array::{MappedArray, MappedArrayMut};
pub use chunk::{ChunkPlan, ParOptions};
pub use element::{describe_unsupported, DType, Element};
pub use error::{Error, LockKind, Result};
pub use limits::{
    check_budget, default_budget, memory_limit, parse_size, LimitSource, MemoryLimit,
};
pub use mmap::{resident_bytes, Advice};
pub use temp::{ensure_free_space, free_space, remove_stale_temp_files, TEMP_MARKER};

/// Property-test settings for the unit tests: `cases` cases, failing cases saved with the
/// integration tests' under `tests/proptest-regressions/` (not at the top level).
#[cfg(test)]
pub(crate) fn proptest_config(cases: u32) -> proptest::test_runner::Config {
    proptest::test_runner::Config {
        cases,
        failure_persistence: Some(Box::new(
            proptest::test_runner::FileFailurePersistence::SourceParallel(
                "tests/proptest-regressions",
            ),
        )),
        ..Default::default()
    }
}
