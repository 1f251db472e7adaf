//! outcore's integration tests: one binary, a module per concept.

mod common;
mod kernels;
