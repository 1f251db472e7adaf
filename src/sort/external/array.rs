//! [`sort_array`]: sorting a mapped array where it lies, in memory when it fits the budget,
//! out of core when it does not.
//!
//! [`par_sort`](crate::sort::par_sort) on a mapping takes no account of memory: its passes
//! touch every page of the array, the in-place partition in scattered order, so a mapping
//! larger than the memory the process may use is paged out and back in over and over (a
//! 2 GiB array in a 512 MiB memory cgroup was still sorting after 10 minutes, where it takes
//! about 4 s when it fits). `sort_array` makes the choice [`sort_file`] makes: data that fits
//! the budget with the sort's scratch is sorted in place in the mapping; larger data goes
//! through the external sort, reading the array's file with large reads that drop their
//! pages behind them.
//!
//! The external sort's output is not merged back into the array's own file: a sort that
//! fails or is killed during the final merge would leave it half sorted. It is written
//! beside it under a temporary name, synced, and renamed over it, as every outcore output
//! is, and the array is mapped anew onto it: the file is either the sorted one or the
//! untouched original. The price is disk space: the runs and the output, twice the array,
//! as for [`sort_file`].

use super::*;
use crate::array::MappedArrayMut;

/// Sorts the 1-D array `a` where it lies, in numpy's order (see [`SortKey`]), choosing by
/// itself how: this is the sort for a [`MappedArrayMut`] of any size, where
/// [`par_sort`](crate::sort::par_sort) on a mapping larger than memory thrashes.
///
/// * **Fits the budget** ([`SortOptions::get_memory`], by default what the machine allows:
///   the memory cgroup's limit, `MemAvailable`, `RLIMIT_AS`): when the array's bytes and the
///   scratch of the in-memory sort
///   ([`par_sort_scratch_bytes`](crate::sort::par_sort_scratch_bytes)) fit, the array is
///   sorted in place with [`par_sort`](crate::sort::par_sort) on [`SortOptions::threads`]
///   threads. Its pages are then dirty in the mapping: the kernel writes them back in its
///   own time, [`MappedArrayMut::flush`] at once.
/// * **Larger**: the external merge sort of [`sort_file`] reads the array's file (first
///   written back and dropped from memory, [`MappedArrayMut::release`]) into sorted runs in
///   [`SortOptions::tmp_dir`] and merges them into a new file in the array's directory,
///   which is synced and renamed over the array's file: the file holds either the whole
///   sorted array or the untouched original, never a mix. `a` is then mapped onto the new
///   file and reads the sorted data. The new file takes the old one's permission bits (and
///   its owner, where this process may change it); other hard links to the old file keep
///   the old data, as do other processes that map it (only cooperating writers of
///   [`MappedArrayMut::open_shared`] can, or programs that ignore the locks). A
///   [created](MappedArrayMut::create) array that is not persisted yet keeps its pending
///   state: the sorted file becomes the one [`persist`](MappedArrayMut::persist) will name.
///
/// The returned report says which path ran: [`SortReport::external`], with the runs and
/// merge levels of the external one.
///
/// Copy-on-write and anonymous arrays, whose changes reach no file, are sorted in memory
/// when they fit and refused otherwise ([`Error::NoFileToSortInto`]).
///
/// # Memory
/// In memory: the array's pages and the sort's scratch, which is what the budget was
/// checked against. Out of core: as [`sort_file`], the budget and a few MiB of page cache
/// per thread; the array's pages are written back and released first, and the sort reads
/// the file with `pread` rather than through the mapping.
///
/// # Files and locks
/// `a` keeps its advisory lock throughout; the sort reads the file through the array's own
/// descriptor, and the file that replaces it is locked exclusively before it is renamed.
/// Temporary files (`.NAME.outcore-tmp-PID-N` beside the array, run directories
/// `.outcore-sort-PID-N` in the temp directory) are removed on success, error and panic;
/// those of a killed sort by the next sort in the same directories (or
/// [`remove_stale_sort_files`]). About twice the array's size must be free (checked first).
/// As for every mapping (see [the mmap contract](crate#safety-the-mmap-contract)), a program
/// that ignores the lock and truncates the file during an in-memory sort kills the process
/// with `SIGBUS`; out of core, the file is read with `pread`, and a truncation is
/// [`Error::Truncated`].
///
/// # Examples
/// ```
/// # fn main() -> outcore::Result<()> {
/// use outcore::sort::{sort_array, SortOptions};
/// use outcore::{MappedArray, MappedArrayMut};
/// let dir = tempfile::tempdir().unwrap();
/// let path = dir.path().join("x.npy");
/// let mut a = MappedArrayMut::<u64>::create(&path, &[100_000])?;
/// for (i, x) in a.iter_mut().enumerate() {
///     *x = (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
/// }
/// let mut a = a.persist()?;
///
/// // The default budget: 800 kB fit the memory of any machine, so it is sorted in place.
/// let report = sort_array(&mut a, &SortOptions::new())?;
/// assert!(!report.external);
/// assert!(a.windows(2).all(|w| w[0] <= w[1]));
///
/// // A 64 KiB budget forces the external sort: runs, a merge into a new file renamed over
/// // x.npy, and `a` mapped onto it.
/// a.reverse();
/// let report = sort_array(&mut a, SortOptions::new().memory(64 << 10))?;
/// assert!(report.external && report.runs > 1);
/// assert!(a.windows(2).all(|w| w[0] <= w[1]));
/// drop(a);
/// let on_disk = MappedArray::<u64>::open(&path)?;
/// assert!(on_disk.windows(2).all(|w| w[0] <= w[1]));
/// # Ok(()) }
/// ```
///
/// # Errors
/// [`Error::BadShape`] for an array that is not 1-D; [`Error::NoFileToSortInto`] for a
/// copy-on-write or anonymous array that does not fit the budget; otherwise those of
/// [`sort_file`] ([`Error::DiskFull`], [`Error::PermissionDenied`] for a directory where the
/// sorted file cannot be created, [`Error::BudgetTooSmall`], [`Error::BudgetTooLarge`],
/// [`Error::Cancelled`], ...). On any error the array, its mapping and its file are as they
/// were, and no temp files remain.
///
/// # Panics
/// A panic of the progress callback propagates, after the temp files are removed; the
/// array is then as it was.
pub fn sort_array<T: SortKey>(a: &mut MappedArrayMut<T>, opts: &SortOptions) -> Result<SortReport> {
    let what = |a: &MappedArrayMut<T>| {
        a.path()
            .map_or_else(|| "<anonymous>".to_string(), |p| p.display().to_string())
    };
    if a.shape().len() != 1 {
        return Err(Error::BadShape {
            what: what(a),
            shape: a.shape().to_vec(),
            reason: "sort_array sorts 1-D arrays; reshape to 1-D, or sort each row with par_sort",
        });
    }
    let budget = opts.checked_budget::<T>()?;
    let (threads, par) = opts.par();
    let needed = in_memory_bytes::<T>(a.len(), threads);
    if needed <= budget {
        return sort_mapping_in_memory(a, opts, &par);
    }
    let Some((file, input, data_offset)) = a.backing_file() else {
        return Err(Error::NoFileToSortInto {
            what: what(a),
            kind: if a.path().is_some() {
                "copy-on-write"
            } else {
                "anonymous"
            },
            needed: needed as u64,
            budget: budget as u64,
        });
    };
    // The array's own descriptor (a duplicate shares its lock): opening the file anew would
    // be refused by that lock.
    let file = file.try_clone().map_err(|e| Error::io(input, "dup", e))?;
    let input = input.to_path_buf();
    let dest = a
        .path()
        .expect("an array with a file has a path")
        .to_path_buf();
    // Pages the caller touched stay mapped, where the sort's reads cannot drop them: write
    // them back and let them go, so that the file passes through memory once.
    a.release(0..a.len())?;
    let (sorted, report) = sort_to_temp::<T>(&input, file, data_offset, &dest, opts)?;
    sync_output(&sorted)?;
    a.replace_file(sorted)?;
    Ok(report)
}

/// The in-memory path of [`sort_array`]: [`par_sort`](crate::sort::par_sort) on the
/// mapping, on the threads of `par`.
fn sort_mapping_in_memory<T: SortKey>(
    a: &mut MappedArrayMut<T>,
    opts: &SortOptions,
    par: &ParOptions,
) -> Result<SortReport> {
    let bytes = std::mem::size_of_val(a.as_slice()) as u64;
    let start = Instant::now();
    opts.report(Phase::InMemory, 0, bytes)?;
    sort_in_memory(a.as_mut_slice(), par)?;
    // The array is sorted: a cancel raised now comes too late to leave it untouched, and is
    // not an error.
    let _ = opts.report(Phase::InMemory, bytes, bytes);
    Ok(SortReport {
        elements: a.len() as u64,
        bytes,
        external: false,
        phases: vec![(Phase::InMemory, start.elapsed())],
        ..SortReport::default()
    })
}
