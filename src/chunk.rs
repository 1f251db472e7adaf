//! Page-aligned chunk planning, and the rayon iterators that run kernels over the chunks.
//!
//! # Why page-aligned chunks
//!
//! Two threads that touch the same page contend on its page fault and, for writes, on its
//! dirty bit and write-back. So the boundaries between chunks are placed where an element
//! starts exactly on a page boundary of the memory the slice lives in (a mapping or a
//! `Vec`): no page is ever shared by two chunks. The first chunk absorbs the elements before
//! the first such boundary (for a `.npy` mapping: the data that shares page 0 with the
//! header), so every other chunk starts on a page.
//!
//! An element starts on a page boundary only every `lcm(size_of::<T>(), page)` bytes, so
//! the chunk size is rounded up to a multiple of that: 4 KiB for primitive types, 100 KiB for
//! 100-byte records. If no element of the slice can ever start on a page boundary (a
//! misaligned slice of records whose size shares a factor with the page size but whose
//! address does not), chunks fall back to whole elements only; [`ChunkPlan::page_aligned`]
//! tells which case applies.
//!
//! Chunks are large (megabytes, [`DEFAULT_CHUNK_BYTES`]) so that each thread streams its own
//! range and the kernel's readahead works; all boundary arithmetic is plain integer
//! arithmetic, so a chunk's range is computed from its index without walking the others.

use std::ops::Range;
use std::sync::{Arc, OnceLock};

use rayon::prelude::*;

use crate::error::{Error, Result};

/// Default bytes per chunk. Large enough that per-chunk overhead (task spawn, a partial
/// result) is negligible and each thread streams megabytes at a time; small enough that a
/// 2-thread machine gets many chunks from a file of a few hundred megabytes, for balance.
/// Measured: see BENCHMARKS.md.
pub const DEFAULT_CHUNK_BYTES: usize = 4 << 20;

/// Chunks are rounded up to whole periods of `lcm(element size, page)` bytes, up to this
/// size; element types with a longer period (odd sizes of many kilobytes) are split on
/// element boundaries only.
const MAX_ALIGNED_PERIOD: usize = 64 << 20;

/// The size of a virtual-memory page on this machine (read once from the system).
pub fn page_size() -> usize {
    crate::sys::page_size()
}

/// How parallel work is run: chunk size and thread count.
///
/// The setters take `&mut self` and return `&mut Self`, so options are built in one
/// expression: `ParOptions::new().threads(2).chunk_bytes(1 << 20)`.
///
/// ```
/// use outcore::ParOptions;
/// let mut opts = ParOptions::new();
/// opts.threads(1).chunk_bytes(64 * 1024);
/// assert_eq!(opts.get_chunk_bytes(), 64 * 1024);
/// ```
#[derive(Clone, Debug, Default)]
pub struct ParOptions {
    chunk_bytes: Option<usize>,
    threads: Option<usize>,
    pool: Arc<OnceLock<std::result::Result<Arc<rayon::ThreadPool>, String>>>,
}

impl ParOptions {
    /// Default options: [`DEFAULT_CHUNK_BYTES`], rayon's global thread pool.
    pub fn new() -> ParOptions {
        ParOptions::default()
    }

    /// Target bytes per chunk (rounded up to whole pages and elements). Values below one
    /// page are treated as one page.
    pub fn chunk_bytes(&mut self, bytes: usize) -> &mut Self {
        self.chunk_bytes = Some(bytes);
        self
    }

    /// Runs on a dedicated pool of `n` threads instead of rayon's global pool (`0` means the
    /// global pool).
    pub fn threads(&mut self, n: usize) -> &mut Self {
        self.threads = if n == 0 { None } else { Some(n) };
        self.pool = Arc::default();
        self
    }

    /// The chunk size in bytes in effect.
    pub fn get_chunk_bytes(&self) -> usize {
        self.chunk_bytes.unwrap_or(DEFAULT_CHUNK_BYTES)
    }

    /// The thread count in effect (the global pool's size when none was set).
    pub fn get_threads(&self) -> usize {
        self.threads.unwrap_or_else(rayon::current_num_threads)
    }

    /// Runs `f` inside the configured thread pool, so that rayon work started by `f` uses it.
    ///
    /// # Errors
    /// [`Error::ThreadPool`] if the dedicated pool cannot be started.
    pub fn install<R: Send>(&self, f: impl FnOnce() -> R + Send) -> Result<R> {
        let Some(n) = self.threads else {
            return Ok(f());
        };
        let pool = self.pool.get_or_init(|| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(n)
                .build()
                .map(Arc::new)
                .map_err(|e| e.to_string())
        });
        match pool {
            Ok(pool) => Ok(pool.install(f)),
            Err(e) => Err(Error::ThreadPool {
                threads: n,
                message: e.clone(),
            }),
        }
    }

    /// The chunk plan for `data` under these options.
    pub fn plan<T>(&self, data: &[T]) -> ChunkPlan {
        ChunkPlan::for_slice(data, self.get_chunk_bytes())
    }
}

/// The split of `len` elements into chunks whose interior boundaries fall on page
/// boundaries of the memory that holds them. See the [module docs](self).
///
/// Chunk `i` covers [`range(i)`](ChunkPlan::range); the chunks are contiguous, in order,
/// non-empty, and cover `0..len` exactly once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChunkPlan {
    len: usize,
    first_end: usize,
    step: usize,
    aligned: bool,
}

impl ChunkPlan {
    /// Plans chunks for a slice, using its real address.
    pub fn for_slice<T>(data: &[T], chunk_bytes: usize) -> ChunkPlan {
        ChunkPlan::new(
            data.as_ptr() as usize,
            data.len(),
            std::mem::size_of::<T>(),
            chunk_bytes,
            page_size(),
        )
    }

    /// Plans chunks for `len` elements of `elem_size` bytes starting at address `addr`, with
    /// pages of `page` bytes (a power of two).
    pub fn new(
        addr: usize,
        len: usize,
        elem_size: usize,
        chunk_bytes: usize,
        page: usize,
    ) -> ChunkPlan {
        debug_assert!(page.is_power_of_two());
        if elem_size == 0 || len == 0 {
            return ChunkPlan {
                len,
                first_end: len,
                step: len.max(1),
                aligned: true,
            };
        }
        // A chunk larger than the slice is the whole slice; clamping keeps the rounding
        // below from overflowing for absurd requests such as `usize::MAX`.
        let chunk_bytes = chunk_bytes.min(len.saturating_mul(elem_size)).max(page);
        let unaligned = |len| ChunkPlan {
            len,
            first_end: (chunk_bytes / elem_size).max(1).min(len),
            step: (chunk_bytes / elem_size).max(1),
            aligned: false,
        };
        // Elements start on a page boundary every `lcm(elem_size, page)` bytes, if at all.
        let g = gcd(elem_size, page);
        let Some(period) = (elem_size / g).checked_mul(page) else {
            return unaligned(len);
        };
        // Byte distance from `addr` to the next page boundary; an element starts there iff
        // i * elem_size ≡ gap (mod page) has a solution i, which needs g | gap.
        let gap = (page - addr % page) % page;
        if !gap.is_multiple_of(g) || period > MAX_ALIGNED_PERIOD.max(chunk_bytes) {
            return unaligned(len);
        }
        // The first element index that starts on a page boundary: i0 * elem_size ≡ gap
        // (mod page), with i0 < page / g. A short search beats a modular inverse here.
        let mut i0 = 0usize;
        let size_mod = elem_size % page;
        while (i0 * size_mod) % page != gap {
            i0 += 1;
        }
        let step_bytes = chunk_bytes.div_ceil(period).saturating_mul(period);
        let step = step_bytes / elem_size;
        ChunkPlan {
            len,
            first_end: i0.saturating_add(step).min(len),
            step,
            aligned: true,
        }
    }

    /// Number of chunks (0 for an empty slice).
    #[allow(clippy::len_without_is_empty)]
    pub fn len(&self) -> usize {
        if self.len == 0 {
            0
        } else {
            1 + (self.len - self.first_end).div_ceil(self.step)
        }
    }

    /// Element range of chunk `i`.
    ///
    /// # Panics
    /// If `i >= self.len()`.
    pub fn range(&self, i: usize) -> Range<usize> {
        assert!(i < self.len(), "chunk {i} out of {}", self.len());
        if i == 0 {
            0..self.first_end
        } else {
            let start = self.first_end + (i - 1) * self.step;
            start..(start + self.step).min(self.len)
        }
    }

    /// All chunk ranges, in order.
    pub fn ranges(&self) -> impl ExactSizeIterator<Item = Range<usize>> + '_ {
        (0..self.len()).map(|i| self.range(i))
    }

    /// Whether interior boundaries are page-aligned (false only for the fallback described in
    /// the module docs).
    pub fn page_aligned(&self) -> bool {
        self.aligned
    }

    /// Elements per chunk (all chunks but the first and last have exactly this many).
    pub fn step(&self) -> usize {
        self.step
    }
}

fn gcd(mut a: usize, mut b: usize) -> usize {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// A parallel iterator over the page-aligned chunks of `data`: items are
/// `(start index, chunk)`.
///
/// ```
/// use outcore::{chunk, ParOptions};
/// use rayon::prelude::*;
/// let v: Vec<u64> = (0..1_000_000).collect();
/// let total: u64 = chunk::par_chunks(&v, &ParOptions::new())
///     .map(|(_, c)| c.iter().sum::<u64>())
///     .sum();
/// assert_eq!(total, v.iter().sum());
/// ```
pub fn par_chunks<'a, T: Sync>(
    data: &'a [T],
    opts: &ParOptions,
) -> impl IndexedParallelIterator<Item = (usize, &'a [T])> + 'a {
    let plan = opts.plan(data);
    (0..plan.len()).into_par_iter().map(move |i| {
        let r = plan.range(i);
        (r.start, &data[r])
    })
}

/// A parallel iterator over the page-aligned chunks of `data`, mutable: items are
/// `(start index, chunk)`. No two chunks share a page.
///
/// ```
/// use outcore::{chunk, ParOptions};
/// use rayon::prelude::*;
/// let mut v = vec![1.0f32; 100_000];
/// chunk::par_chunks_mut(&mut v, &ParOptions::new())
///     .for_each(|(_, c)| c.iter_mut().for_each(|x| *x *= 2.0));
/// assert!(v.iter().all(|&x| x == 2.0));
/// ```
pub fn par_chunks_mut<'a, T: Send>(
    data: &'a mut [T],
    opts: &ParOptions,
) -> impl IndexedParallelIterator<Item = (usize, &'a mut [T])> + 'a {
    let plan = opts.plan(data);
    split_mut(data, &plan).into_par_iter()
}

/// Splits `data` into the chunks of `plan`, as `(start index, chunk)` pairs.
pub fn split_mut<'a, T>(mut data: &'a mut [T], plan: &ChunkPlan) -> Vec<(usize, &'a mut [T])> {
    let mut out = Vec::with_capacity(plan.len());
    for r in plan.ranges() {
        let (head, tail) = std::mem::take(&mut data).split_at_mut(r.len());
        out.push((r.start, head));
        data = tail;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAGE: usize = 4096;

    fn check(addr: usize, len: usize, size: usize, chunk: usize) {
        let plan = ChunkPlan::new(addr, len, size, chunk, PAGE);
        let mut next = 0;
        for (i, r) in plan.ranges().enumerate() {
            assert_eq!(r.start, next, "chunks contiguous");
            assert!(!r.is_empty(), "chunk {i} empty");
            if size.is_power_of_two() && size <= PAGE && addr.is_multiple_of(64) {
                assert!(plan.page_aligned(), "primitive types always align");
            }
            if i > 0 && plan.page_aligned() {
                assert_eq!((addr + r.start * size) % PAGE, 0, "boundary {i} aligned");
            }
            next = r.end;
        }
        assert_eq!(next, len, "chunks cover everything");
    }

    #[test]
    fn covers_and_aligns() {
        for &offset in &[0usize, 64, 128] {
            for &size in &[1usize, 2, 4, 8, 100, 3, 4097] {
                for &len in &[
                    0usize,
                    1,
                    2,
                    PAGE - 1,
                    PAGE,
                    PAGE + 1,
                    10 * PAGE + 7,
                    300_000,
                ] {
                    for &chunk in &[1usize, PAGE, 3 * PAGE, 1 << 20] {
                        check(0x7f00_0000_0000 + offset, len, size, chunk);
                    }
                }
            }
        }
    }

    #[test]
    fn unaligned_records_fall_back_to_whole_elements() {
        // 100-byte records starting at an odd address can never start on a page.
        let plan = ChunkPlan::new(0x1000 + 1, 50_000, 100, PAGE, PAGE);
        assert!(!plan.page_aligned());
        check(0x1001, 50_000, 100, PAGE);
    }

    #[test]
    fn chunk_of_a_real_slice() {
        let v = vec![0u32; 1 << 20];
        let opts = ParOptions::new();
        let n: usize = par_chunks(&v, &opts).map(|(_, c)| c.len()).sum();
        assert_eq!(n, v.len());
    }
}
