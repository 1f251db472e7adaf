//! outcore: typed arrays larger than RAM.
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs, unreachable_pub)]

pub mod chunk;
mod element;
mod error;
pub mod kernels;

pub use chunk::{ChunkPlan, ParOptions};
pub use element::{describe_unsupported, DType, Element};
pub use error::{Error, Result};
pub mod sort;
