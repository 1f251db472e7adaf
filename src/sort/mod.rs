//! Sorting: keys, in-memory parallel sort, and the external merge sort for files larger
//! than the memory budget.

mod key;

pub use key::{Record, SortKey};
