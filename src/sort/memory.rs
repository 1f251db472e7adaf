//! The in-memory parallel sort: the public entry points.
//!
//! Every entry point sorts by a [`SortKey`]: integers by value, floats in numpy's order
//! (`-inf < ... < -0.0 < 0.0 < ... < inf < NaN`), records by their key bytes as unsigned
//! bytes. The work is done by the radix sort in [`radix`](super::radix); see its docs for
//! the algorithm and the memory it uses.

use std::cmp::Ordering;

use rayon::prelude::*;

use super::key::SortKey;
use crate::chunk::ParOptions;
use crate::error::Result;

/// Sorts `data` by [`SortKey`] in parallel on rayon's global thread pool.
///
/// Equal elements (equal keys: for floats, NaNs of different payloads) may be reordered;
/// use [`par_sort_stable`] to keep them in input order.
///
/// # Examples
/// ```
/// let mut v = vec![3.0, f64::NAN, -0.0, 0.0, f64::NEG_INFINITY, 1.5];
/// outcore::sort::par_sort(&mut v);
/// assert_eq!(format!("{v:?}"), "[-inf, -0.0, 0.0, 1.5, 3.0, NaN]");
/// ```
pub fn par_sort<T: SortKey>(data: &mut [T]) {
    data.par_sort_unstable_by_key(|x| x.sort_key());
}

/// [`par_sort`] on the thread pool chosen by `opts`.
///
/// # Errors
/// [`Error::InvalidArgument`](crate::Error::InvalidArgument) if the dedicated thread pool
/// cannot be started.
pub fn par_sort_with<T: SortKey>(data: &mut [T], opts: &ParOptions) -> Result<()> {
    opts.install(|| par_sort(data))
}

/// Sorts `data` by [`SortKey`] in parallel, keeping elements with equal keys in input order.
pub fn par_sort_stable<T: SortKey>(data: &mut [T]) {
    data.par_sort_by_key(|x| x.sort_key());
}

/// [`par_sort_stable`] on the thread pool chosen by `opts`.
///
/// # Errors
/// As [`par_sort_with`].
pub fn par_sort_stable_with<T: SortKey>(data: &mut [T], opts: &ParOptions) -> Result<()> {
    opts.install(|| par_sort_stable(data))
}

/// Sorts `data` in parallel by the key `key` computes for each element, keeping elements
/// with equal keys in input order (stable).
///
/// The key is any [`SortKey`]: an integer, a float (numpy order), or a byte array compared as
/// unsigned bytes, which is how fixed-size records are sorted by a byte range.
///
/// # Examples
/// ```
/// // Records of 8 bytes sorted by their bytes 2..5, compared as unsigned bytes.
/// let mut recs: Vec<[u8; 8]> = vec![[0, 0, 9, 9, 9, 0, 0, 1], [7, 7, 1, 2, 3, 7, 7, 2]];
/// outcore::sort::par_sort_by_key(&mut recs, |r| <[u8; 3]>::try_from(&r[2..5]).unwrap());
/// assert_eq!(recs[0][7], 2);
/// ```
pub fn par_sort_by_key<T, K, F>(data: &mut [T], key: F)
where
    T: Copy + Send + Sync,
    K: SortKey,
    F: Fn(&T) -> K + Sync,
{
    data.par_sort_by_key(|x| key(x).sort_key());
}

/// [`par_sort_by_key`] on the thread pool chosen by `opts`.
///
/// # Errors
/// As [`par_sort_with`].
pub fn par_sort_by_key_with<T, K, F>(data: &mut [T], key: F, opts: &ParOptions) -> Result<()>
where
    T: Copy + Send + Sync,
    K: SortKey,
    F: Fn(&T) -> K + Sync,
{
    let key = &key;
    opts.install(|| par_sort_by_key(data, key))
}

/// Sorts `data` in parallel with a comparison function: the fallback for orders that have
/// no radix key. Stable.
pub fn par_sort_by<T, F>(data: &mut [T], compare: F)
where
    T: Send,
    F: Fn(&T, &T) -> Ordering + Sync,
{
    data.par_sort_by(compare);
}

/// The indices that sort `data`, stably: `data[idx[0]], data[idx[1]], ...` is sorted by
/// [`SortKey`], and equal keys keep their input order (numpy's `argsort(kind='stable')`).
///
/// # Examples
/// ```
/// let v = [2.0, f64::NAN, -1.0, 2.0];
/// assert_eq!(outcore::sort::argsort(&v), [2, 0, 3, 1]);
/// ```
pub fn argsort<T: SortKey>(data: &[T]) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..data.len()).collect();
    idx.par_sort_by_key(|&i| data[i].sort_key());
    idx
}

/// [`argsort`] on the thread pool chosen by `opts`.
///
/// # Errors
/// As [`par_sort_with`].
pub fn argsort_with<T: SortKey>(data: &[T], opts: &ParOptions) -> Result<Vec<usize>> {
    opts.install(|| argsort(data))
}
