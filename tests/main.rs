//! outcore's integration tests: one binary, a module per concept.

mod array;
mod chunk;
mod common;
mod convert;
#[cfg(feature = "datasets")]
mod datasets;
mod faults;
mod fuzz_npy;
mod kernels;
mod quantile;
mod sort_array;
mod sort_external;
mod sort_memory;
mod summary;
#[cfg(feature = "zarr")]
mod zarr;
