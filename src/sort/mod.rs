//! Sorting: keys, in-memory parallel sort, and the external merge sort for files larger
//! than the memory budget.

mod external;
mod fileio;
mod key;
mod merge;

pub use external::{
    remove_stale_sort_files, sort_file, sort_raw_file, Phase, ProgressFn, SortOptions, SortReport,
};
pub use key::{Record, SortKey};
