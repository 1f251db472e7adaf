//! One pass over the data, the same way for a slice and for a mapped file: the multi-pass
//! kernels (quantiles, the fused summary) are written once against [`Passes`].

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;

use bytemuck::Pod;

use crate::array::MappedArray;
use crate::chunk::ParOptions;
use crate::error::Result;
use crate::stream::{self, Stream};

/// Something the multi-pass kernels can read in passes: each pass runs a function on every
/// chunk (in parallel, the chunks of the [`ParOptions`] plan, so results do not depend on
/// the thread count) and returns the per-chunk results in chunk order.
pub(crate) trait Passes<T>: Sync {
    /// All the data (for its length; the passes read it chunk by chunk).
    fn data(&self) -> &[T];

    /// One pass: `f(start, chunk)` on every chunk, results in chunk order.
    fn pass<A: Send>(&self, f: impl Fn(usize, &[T]) -> A + Sync + Send) -> Result<Vec<A>>;

    /// How many passes have been run.
    fn count(&self) -> u32;

    /// [`pass`](Passes::pass) on the reduction blocks of each chunk, combined per chunk with
    /// `combine` (see [`super::per_block`]): the granularity of the built-in reductions.
    fn pass_blocks<A: Send>(
        &self,
        f: impl Fn(usize, &[T]) -> A + Sync + Send,
        combine: impl Fn(A, A) -> A + Sync + Send,
    ) -> Result<Vec<A>> {
        let parts = self.pass(|start, c| super::fold_blocks_of(start, c, &f, &combine))?;
        Ok(parts.into_iter().flatten().collect())
    }
}

/// Passes over a slice with [`super::per_chunk`].
pub(crate) struct SlicePasses<'a, T> {
    data: &'a [T],
    opts: &'a ParOptions,
    passes: AtomicU32,
}

impl<'a, T> SlicePasses<'a, T> {
    pub(crate) fn new(data: &'a [T], opts: &'a ParOptions) -> Self {
        SlicePasses {
            data,
            opts,
            passes: AtomicU32::new(0),
        }
    }
}

impl<T: Sync> Passes<T> for SlicePasses<'_, T> {
    fn data(&self) -> &[T] {
        self.data
    }

    fn pass<A: Send>(&self, f: impl Fn(usize, &[T]) -> A + Sync + Send) -> Result<Vec<A>> {
        self.passes.fetch_add(1, Ordering::Relaxed);
        super::per_chunk(self.data, self.opts, f)
    }

    fn count(&self) -> u32 {
        self.passes.load(Ordering::Relaxed)
    }
}

/// Passes over a mapped file with [`stream::fold_chunks`]: the same chunks as the slice
/// kernels, with the [`Stream`]'s hints (release-behind, `WillNeed`, size checks).
pub(crate) struct FilePasses<'a, T> {
    a: &'a MappedArray<T>,
    opts: &'a ParOptions,
    stream: &'a Stream,
    passes: AtomicU32,
}

impl<'a, T> FilePasses<'a, T> {
    pub(crate) fn new(a: &'a MappedArray<T>, opts: &'a ParOptions, stream: &'a Stream) -> Self {
        FilePasses {
            a,
            opts,
            stream,
            passes: AtomicU32::new(0),
        }
    }
}

impl<T: Pod + Sync> Passes<T> for FilePasses<'_, T> {
    fn data(&self) -> &[T] {
        self.a.as_slice()
    }

    fn pass<A: Send>(&self, f: impl Fn(usize, &[T]) -> A + Sync + Send) -> Result<Vec<A>> {
        self.passes.fetch_add(1, Ordering::Relaxed);
        let base = self.a.as_slice().as_ptr() as usize;
        let size = std::mem::size_of::<T>().max(1);
        // `stream::fold_chunks` hands over the chunk only: its start is its distance from
        // the mapping's first element. Concatenating in the tree keeps chunk order.
        let parts = stream::fold_chunks(
            self.a,
            self.opts,
            self.stream,
            |c| vec![f((c.as_ptr() as usize - base) / size, c)],
            |mut x, mut y| {
                x.append(&mut y);
                x
            },
        )?;
        Ok(parts.unwrap_or_default())
    }

    fn count(&self) -> u32 {
        self.passes.load(Ordering::Relaxed)
    }
}

/// Options whose plan is a single chunk for any slice: a slice kernel called with them on
/// one chunk runs its serial loop inline (no thread pool), giving that chunk's part.
pub(crate) fn serial() -> &'static ParOptions {
    static ONE: OnceLock<ParOptions> = OnceLock::new();
    ONE.get_or_init(|| {
        let mut o = ParOptions::new();
        o.chunk_bytes(usize::MAX);
        o
    })
}
