//! Sorting: keys, in-memory parallel sort, and the external merge sort for files larger
//! than the memory budget.
//!
//! To sort a [`MappedArrayMut`](crate::MappedArrayMut) of any size, use [`sort_array`]: in
//! place in memory when it fits the budget, out of core otherwise, with the sorted file put
//! in place atomically. [`par_sort`] sorts slices in memory, a mapping's too, but takes no
//! account of memory.

mod external;
mod fileio;
mod inplace;
mod io_pool;
mod key;
mod memory;
mod merge;
mod radix;

pub use external::{
    remove_stale_sort_files, sort_array, sort_file, sort_file_with, sort_raw_file,
    sort_raw_file_with, Phase, ProgressFn, SortOptions, SortReport, Sorter,
};
pub use key::{RadixKey, Record, SortKey};
pub use memory::{
    argsort, argsort_with, par_sort, par_sort_by, par_sort_by_key, par_sort_by_key_with,
    par_sort_scratch_bytes, par_sort_stable, par_sort_stable_with, par_sort_with,
    par_sort_with_scratch, scratch_bytes, SortScratch,
};

/// A xorshift64 generator from `seed` (made odd, so never the stuck state 0): the sort
/// tests' pseudo-random keys.
#[cfg(test)]
pub(crate) fn xorshift(seed: u64) -> impl FnMut() -> u64 {
    let mut s = seed | 1;
    move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        s
    }
}
