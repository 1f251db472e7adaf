//! Converting an array file: raw ↔ `.npy`, element types, C ↔ Fortran order, in one
//! streaming pass (one read of the input, one write of the output) within a memory budget.
//!
//! [`convert_file`] (or [`convert_array`] for an input already open) writes the same
//! logical array to a new file under a temporary name and renames it once complete, so a
//! failure or a cancellation leaves nothing behind.
//!
//! * Same memory order in and out: the input is cast window by window (in parallel within
//!   each window), and both mappings are released behind the window.
//! * Order change of a 2-D array: a blocked transpose, tile by tile, each tile small enough
//!   for the budget and its output lines written in parallel; the pages of each tile are
//!   released on both sides once it is done.
//!
//! ## Why the passes work on bytes
//!
//! Ten source types times eleven target types make 110 conversions. Written generically
//! over `(S, D)`, every pass (the window loop, the transpose, the search for the value that
//! does not fit) would be compiled 110 times, for the command-line tool and again for the
//! Python module. Here the passes take `&[u8]` of source elements and `&mut [u8]` of target
//! elements and are compiled once; the only code per pair is a one-loop cast function
//! (`fn(&[u8], &mut [u8]) -> Result<(), usize>`) picked at run time from the two dtypes and the
//! [`CastMode`]. The transpose gathers a column of source elements into a small buffer
//! (compiled once per element size) and casts the buffer with the same function.

use std::ops::Range;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use bytemuck::{Pod, Zeroable};
use rayon::prelude::*;

use crate::chunk::page_size;
use crate::{open_any, open_any_raw, AnyArray, DType, Error, MappedArrayMut, ParOptions, Result};

/// A memory order of a multi-dimensional array.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Order {
    /// Row-major (C): the last axis varies fastest.
    C,
    /// Column-major (Fortran): the first axis varies fastest.
    F,
}

/// How values that do not fit the target type are treated.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum CastMode {
    /// Every value must fit, else the conversion fails with [`Error::DoesNotFit`] naming the
    /// first value that does not (in the array's logical, row-major order) and nothing is
    /// written. Integers must be in range; floats converted to integers must be finite and
    /// in range after truncation toward zero; `f64` to `f32` must not overflow to infinity
    /// (rounding is fine); integers to floats always convert (rounded to nearest); to
    /// `bool`, only 0 and 1 fit.
    #[default]
    Safe,
    /// As numpy's `astype`: integers wrap around (two's complement); floats truncate toward
    /// zero, and out of an integer type's range (where numpy's result is platform-defined)
    /// saturate to its minimum or maximum, NaN giving 0; to `bool`, anything non-zero
    /// (NaN included) is `true`.
    Unsafe,
}

/// The smallest memory budget: below it, tiles of a few elements would cost a system call
/// each. Smaller budgets are raised to it.
pub const MIN_MEMORY: usize = 64 << 10;

/// The budget when none is given: 256 MiB, or less where the machine asks for less.
const DEFAULT_MEMORY: usize = 256 << 20;

/// The progress callback: `(source bytes done, source bytes in all)`.
type ProgressFn = dyn Fn(u64, u64) + Send + Sync;

/// Options of [`convert_file`]: the output's element type, order and format, the cast
/// rules, the memory budget, threads, progress and cancellation.
///
/// The defaults keep everything as it is: same dtype and order, a `.npy` output, safe
/// casts. Setters take `&mut self` and return `&mut Self`.
///
/// ```
/// use outcore::convert::{CastMode, ConvertOptions, Order};
/// use outcore::DType;
/// let mut opts = ConvertOptions::new();
/// opts.dtype(DType::F32).order(Order::F).cast(CastMode::Unsafe).memory(64 << 20);
/// assert_eq!(opts.get_memory()?, 64 << 20);
/// # Ok::<(), outcore::Error>(())
/// ```
#[derive(Clone, Default)]
pub struct ConvertOptions {
    dtype: Option<DType>,
    order: Option<Order>,
    from_raw: Option<DType>,
    to_raw: bool,
    cast: CastMode,
    memory: Option<usize>,
    threads: usize,
    progress: Option<Arc<ProgressFn>>,
    cancel: Option<Arc<AtomicBool>>,
}

impl std::fmt::Debug for ConvertOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConvertOptions")
            .field("dtype", &self.dtype)
            .field("order", &self.order)
            .field("from_raw", &self.from_raw)
            .field("to_raw", &self.to_raw)
            .field("cast", &self.cast)
            .field("memory", &self.memory)
            .field("threads", &self.threads)
            .field("progress", &self.progress.as_ref().map(|_| "callback"))
            .field("cancel", &self.cancel)
            .finish()
    }
}

impl ConvertOptions {
    /// Defaults: the input's dtype and order, a `.npy` output, [`CastMode::Safe`], a budget
    /// of 256 MiB (or the machine's [`default_budget`](crate::default_budget) if less),
    /// rayon's global pool, no progress callback, no cancel flag.
    pub fn new() -> Self {
        ConvertOptions::default()
    }

    /// The output's element type (default: the input's). To [`DType::Bool`], values are
    /// converted as numpy converts to `bool` (see [`CastMode`]).
    pub fn dtype(&mut self, dtype: DType) -> &mut Self {
        self.dtype = Some(dtype);
        self
    }

    /// The output's memory order (default: the input's). 1-D arrays have no order (either is
    /// accepted and changes nothing); changing the order of an array of 3 or more
    /// dimensions is refused with [`Error::BadShape`].
    pub fn order(&mut self, order: Order) -> &mut Self {
        self.order = Some(order);
        self
    }

    /// [`convert_file`] reads its input as a raw (headerless) file of `dtype`, a 1-D array
    /// (default: the input is a `.npy` file).
    pub fn from_raw(&mut self, dtype: DType) -> &mut Self {
        self.from_raw = Some(dtype);
        self
    }

    /// Writes a raw (headerless) file: the elements in the output's memory order (default:
    /// a `.npy` file).
    pub fn to_raw(&mut self, yes: bool) -> &mut Self {
        self.to_raw = yes;
        self
    }

    /// How values that do not fit the target type are treated (default: [`CastMode::Safe`]).
    pub fn cast(&mut self, mode: CastMode) -> &mut Self {
        self.cast = mode;
        self
    }

    /// The memory budget in bytes: windows and transpose tiles are sized to it (raised to
    /// [`MIN_MEMORY`] if smaller). A budget larger than the memory this process can use
    /// ([`memory_limit`](crate::memory_limit)) is refused with [`Error::BudgetTooLarge`].
    pub fn memory(&mut self, bytes: usize) -> &mut Self {
        self.memory = Some(bytes);
        self
    }

    /// Threads for the pass (`0`, the default, means rayon's global pool).
    pub fn threads(&mut self, n: usize) -> &mut Self {
        self.threads = n;
        self
    }

    /// Calls `f(source bytes done, source bytes in all)` after each window or tile.
    pub fn progress(&mut self, f: impl Fn(u64, u64) + Send + Sync + 'static) -> &mut Self {
        self.progress = Some(Arc::new(f));
        self
    }

    /// Stops the conversion with [`Error::Cancelled`] soon after `flag` becomes `true` (it is
    /// checked between windows and tiles), removing the unfinished output. A command-line
    /// program sets the flag from its SIGINT handler.
    pub fn cancel_flag(&mut self, flag: Arc<AtomicBool>) -> &mut Self {
        self.cancel = Some(flag);
        self
    }

    /// The memory budget in effect, in bytes (see [`memory`](ConvertOptions::memory)).
    ///
    /// # Errors
    /// [`Error::BudgetTooLarge`] for a budget set above the process's memory limit.
    pub fn get_memory(&self) -> Result<usize> {
        let m = match self.memory {
            Some(m) => {
                crate::check_budget(m)?;
                m
            }
            None => DEFAULT_MEMORY.min(crate::default_budget()),
        };
        Ok(m.max(MIN_MEMORY))
    }

    fn check_cancel(&self) -> Result<()> {
        match &self.cancel {
            Some(flag) if flag.load(Ordering::Relaxed) => Err(Error::Cancelled),
            _ => Ok(()),
        }
    }
}

/// What [`convert_file`] wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConvertReport {
    /// The array's shape (the input's; `[len]` for a raw input).
    pub shape: Vec<usize>,
    /// The output's element type.
    pub dtype: DType,
    /// The output's memory order (always [`Order::C`] for fewer than 2 dimensions).
    pub order: Order,
    /// Whether the output is a raw (headerless) file.
    pub raw: bool,
    /// Bytes of data read (the input's elements).
    pub bytes_read: u64,
    /// Bytes of data written (the output's elements, without a header).
    pub bytes_written: u64,
}

/// Converts the array file `input` into a new file `output`, as `opts` asks: another
/// element type, memory order or format (raw ↔ `.npy`), in one streaming pass.
///
/// The output is written under a temporary name in its directory and renamed to `output`
/// once complete (replacing a file there); on any error, cancellation included, it is
/// removed and `output` is untouched.
///
/// # Examples
///
/// ```
/// use outcore::convert::{convert_file, CastMode, ConvertOptions, Order};
/// use outcore::{DType, MappedArray, MappedArrayMut};
/// # let dir = tempfile::tempdir().unwrap();
/// let src = dir.path().join("x.npy");
/// let mut a = MappedArrayMut::<i64>::create(&src, &[2, 3])?;
/// a.copy_from_slice(&[1, 2, 3, 4, 5, 300]);
/// a.persist()?;
///
/// // To f32 in Fortran order.
/// let dst = dir.path().join("y.npy");
/// let report = convert_file(&src, &dst, ConvertOptions::new().dtype(DType::F32).order(Order::F))?;
/// assert_eq!((report.dtype, report.order), (DType::F32, Order::F));
/// let y = MappedArray::<f32>::open(&dst)?;
/// assert!(y.is_fortran_order());
/// assert_eq!(&y[..], &[1.0, 4.0, 2.0, 5.0, 3.0, 300.0]);
///
/// // 300 does not fit in u8: a safe cast refuses, naming it; an unsafe one wraps.
/// let bytes = dir.path().join("z.npy");
/// let err = convert_file(&src, &bytes, ConvertOptions::new().dtype(DType::U8)).unwrap_err();
/// assert!(matches!(err, outcore::Error::DoesNotFit { ref index, .. } if index == &[1, 2]));
/// assert!(!bytes.exists());
/// convert_file(&src, &bytes, ConvertOptions::new().dtype(DType::U8).cast(CastMode::Unsafe))?;
/// assert_eq!(&MappedArray::<u8>::open(&bytes)?[..], &[1, 2, 3, 4, 5, 44]);
/// # Ok::<(), outcore::Error>(())
/// ```
///
/// # Errors
/// Those of [`open_any`] (or [`open_any_raw`] with
/// [`from_raw`](ConvertOptions::from_raw)) and of [`convert_array`].
pub fn convert_file(
    input: impl AsRef<Path>,
    output: impl AsRef<Path>,
    opts: &ConvertOptions,
) -> Result<ConvertReport> {
    let input = input.as_ref();
    let a = match opts.from_raw {
        Some(d) => open_any_raw(input, d)?,
        None => open_any(input)?,
    };
    convert_array(&a, output.as_ref(), opts)
}

/// [`convert_file`] for an input already open ([`from_raw`](ConvertOptions::from_raw) is
/// ignored: `input` is what it is).
///
/// # Errors
/// [`Error::DoesNotFit`] (safe casts: nothing is written), [`Error::BadShape`] for an order
/// change of an array of 3 or more dimensions, [`Error::Cancelled`],
/// [`Error::BudgetTooLarge`], [`Error::Truncated`] if the input shrinks during the pass,
/// and the errors of creating and persisting the output
/// ([`MappedArrayMut::create`], [`MappedArrayMut::persist`]).
pub fn convert_array(
    input: &AnyArray,
    output: &Path,
    opts: &ConvertOptions,
) -> Result<ConvertReport> {
    let shape = input.shape().to_vec();
    let in_fortran = input.is_fortran_order() && shape.len() > 1;
    let out_fortran = match opts.order {
        Some(Order::F) => shape.len() > 1,
        Some(Order::C) => false,
        None => in_fortran,
    };
    let path = input.path().unwrap_or(Path::new("<memory>"));
    if shape.len() > 2 && in_fortran != out_fortran {
        return Err(Error::BadShape {
            what: path.display().to_string(),
            shape,
            reason: "changing the memory order is supported for 1-D and 2-D arrays",
        });
    }
    let source = input.dtype();
    let target = opts.dtype.unwrap_or(source);
    let len = input.len();
    let pass = Pass {
        input,
        path,
        in_size: source.size(),
        out_size: target.size(),
        shape: &shape,
        in_fortran,
        cast: cast_fn(source, target, opts.cast),
        budget: opts.get_memory()?,
        opts,
    };
    let mut par = ParOptions::new();
    par.threads(opts.threads);
    par.install(|| -> Result<()> {
        let mut out = create(output, target, &shape, out_fortran, opts.to_raw, len)?;
        let bad = if in_fortran != out_fortran {
            pass.transpose(out.as_mut())?
        } else {
            pass.stream(out.as_mut())?
        };
        if let Some(mem) = bad {
            drop(out);
            return Err(pass.first_offender(mem, target));
        }
        opts.check_cancel()?;
        out.persist()
    })??;
    Ok(ConvertReport {
        shape,
        dtype: target,
        order: if out_fortran { Order::F } else { Order::C },
        raw: opts.to_raw,
        bytes_read: (len * source.size()) as u64,
        bytes_written: (len * target.size()) as u64,
    })
}

/// The output file, whatever its element type: its bytes, and pages to release.
trait Sink {
    /// The elements, as bytes.
    fn bytes_mut(&mut self) -> &mut [u8];
    /// See [`MappedArrayMut::release`].
    fn release(&self, elems: Range<usize>) -> Result<()>;
    /// See [`MappedArrayMut::persist`].
    fn persist(self: Box<Self>) -> Result<()>;
}

impl<D: Pod> Sink for MappedArrayMut<D> {
    fn bytes_mut(&mut self) -> &mut [u8] {
        bytemuck::cast_slice_mut(self.as_mut_slice())
    }
    fn release(&self, elems: Range<usize>) -> Result<()> {
        MappedArrayMut::release(self, elems)
    }
    fn persist(self: Box<Self>) -> Result<()> {
        (*self).persist().map(drop)
    }
}

/// Creates the output (under a temporary name until persisted).
fn create(
    output: &Path,
    target: DType,
    shape: &[usize],
    fortran: bool,
    raw: bool,
    len: usize,
) -> Result<Box<dyn Sink>> {
    if raw {
        return crate::with_dtype!(target, D => {
            Ok(Box::new(MappedArrayMut::<D>::create_raw(output, len)?) as Box<dyn Sink>)
        });
    }
    // `with_dtype!` gives `u8` for bool: the header says `|b1`.
    crate::with_dtype!(target, D => {
        Ok(Box::new(MappedArrayMut::<D>::create_ordered(output, shape, fortran, target)?)
            as Box<dyn Sink>)
    })
}

/// The input's elements, as bytes.
fn input_bytes(a: &AnyArray) -> &[u8] {
    crate::with_any!(a, m => bytemuck::cast_slice(m.as_slice()))
}

/// Elements per parallel piece of a window.
const PIECE: usize = 1 << 16;

/// One conversion, whatever the element types.
struct Pass<'a> {
    input: &'a AnyArray,
    /// The input's path, for messages.
    path: &'a Path,
    in_size: usize,
    out_size: usize,
    shape: &'a [usize],
    in_fortran: bool,
    cast: CastFn,
    budget: usize,
    opts: &'a ConvertOptions,
}

impl Pass<'_> {
    /// Before each window or tile: stop if cancelled or if the input shrank.
    fn check(&self) -> Result<()> {
        self.opts.check_cancel()?;
        crate::with_any!(self.input, a => a.check_size())
    }

    fn release_input(&self, elems: Range<usize>) -> Result<()> {
        crate::with_any!(self.input, a => a.release(elems))
    }

    fn progress(&self, done_elems: usize) {
        if let Some(f) = &self.opts.progress {
            let total = self.input.len() * self.in_size;
            f((done_elems * self.in_size) as u64, total as u64);
        }
    }

    /// Same memory order in and out: cast window by window, releasing both files behind.
    /// Returns the position in memory of a value that did not fit (then the output is
    /// incomplete).
    fn stream(&self, out: &mut dyn Sink) -> Result<Option<usize>> {
        let (si, so) = (self.in_size, self.out_size);
        let len = self.input.len();
        let w = window_elems(si, so, self.budget);
        let src = input_bytes(self.input);
        let mut start = 0;
        while start < len {
            self.check()?;
            let end = (start + w).min(len);
            let s = &src[start * si..end * si];
            let d = &mut out.bytes_mut()[start * so..end * so];
            let bad = s
                .par_chunks(PIECE * si)
                .zip(d.par_chunks_mut(PIECE * so))
                .enumerate()
                .find_map_any(|(c, (s, d))| (self.cast)(s, d).err().map(|k| c * PIECE + k));
            if let Some(k) = bad {
                return Ok(Some(start + k));
            }
            // Behind the window, reaching back one window for the pages straddling its start.
            let behind = start.saturating_sub(w)..end;
            self.release_input(behind.clone())?;
            out.release(behind)?;
            self.progress(end);
            start = end;
        }
        Ok(None)
    }

    /// A 2-D order change. In memory the input is `m` lines of `l` elements and the output
    /// `l` lines of `m`: `out[j * m + i] = in[i * l + j]`. Tiles of `h` input lines by `w`
    /// output lines are cast in parallel (one task per output line: gather its part of an
    /// input column, cast it into place) and released on both sides. Returns the position
    /// in memory of a value that did not fit (then the output is incomplete).
    fn transpose(&self, out: &mut dyn Sink) -> Result<Option<usize>> {
        let (si, so) = (self.in_size, self.out_size);
        let (rows, cols) = (self.shape[0], self.shape[1]);
        let (m, l) = if self.in_fortran {
            (cols, rows)
        } else {
            (rows, cols)
        };
        if m == 0 || l == 0 {
            return Ok(None);
        }
        let (h, w) = tile_shape(m, l, si, so, self.budget);
        // Releases reach one page back and one page forward, so that the pages straddling
        // a tile's edges are dropped too (a page released before its neighbour tile is
        // done is written back, and read back in when that tile touches it).
        let page_in = (page_size() / si).max(1);
        let page_out = (page_size() / so).max(1);
        let src = input_bytes(self.input);
        let gather = gather_fn(si);
        let mut done = 0;
        for i0 in (0..m).step_by(h) {
            let i1 = (i0 + h).min(m);
            for j0 in (0..l).step_by(w) {
                let j1 = (j0 + w).min(l);
                self.check()?;
                let lines = &mut out.bytes_mut()[j0 * m * so..j1 * m * so];
                let bad = lines
                    .par_chunks_mut(m * so)
                    .enumerate()
                    .map_init(Vec::new, |column, (jj, line)| {
                        let j = j0 + jj;
                        column.resize((i1 - i0) * si, 0);
                        gather(src, i0 * l + j, l, column);
                        (self.cast)(column, &mut line[i0 * so..i1 * so])
                            .err()
                            .map(|k| (i0 + k) * l + j)
                    })
                    .find_map_any(|bad| bad);
                if bad.is_some() {
                    return Ok(bad);
                }
                // Input: each line of the tile from its start, which also drops what the
                // kernel's fault-around mapped behind the tile. Output: the tile's lines
                // whole, in one call (a write fault can map more of a large folio than the
                // tile wrote; other tiles' parts of these lines are not in memory, or are
                // written back).
                if j1 - j0 == l {
                    self.release_input((i0 * l).saturating_sub(page_in)..i1 * l + page_in)?;
                } else {
                    for i in i0..i1 {
                        self.release_input((i * l).saturating_sub(page_in)..i * l + j1 + page_in)?;
                    }
                }
                out.release((j0 * m).saturating_sub(page_out)..j1 * m + page_out)?;
                done += (i1 - i0) * (j1 - j0);
                self.progress(done);
            }
        }
        Ok(None)
    }

    /// The error for the first value (in logical, row-major order) that does not fit: a
    /// second, read-only pass over the input, in memory order and in parallel. `seen` is
    /// the position in memory of one that the conversion found.
    fn first_offender(&self, seen: usize, target: DType) -> Error {
        let (si, so) = (self.in_size, self.out_size);
        let shape = self.shape;
        let fortran = self.in_fortran;
        let logical = |mem: usize| -> usize {
            if !fortran {
                return mem;
            }
            // Fortran: the first axis varies fastest in memory.
            let mut rest = mem;
            let mut idx = vec![0usize; shape.len()];
            for (k, &n) in shape.iter().enumerate() {
                idx[k] = rest % n;
                rest /= n;
            }
            idx.iter().zip(shape).fold(0, |acc, (&i, &n)| acc * n + i)
        };
        let src = input_bytes(self.input);
        let found = src
            .par_chunks(PIECE * si)
            .enumerate()
            .map_init(Vec::new, |scratch, (c, chunk)| {
                let n = chunk.len() / si;
                scratch.resize(n * so, 0);
                let mut best: Option<(usize, usize)> = None;
                let mut from = 0;
                while from < n {
                    let Err(k) = (self.cast)(&chunk[from * si..], &mut scratch[from * so..]) else {
                        break;
                    };
                    let mem = c * PIECE + from + k;
                    let here = (logical(mem), mem);
                    best = Some(best.map_or(here, |b| b.min(here)));
                    if !fortran {
                        // Memory order is logical order: the first one found is the first.
                        break;
                    }
                    from += k + 1;
                }
                best
            })
            .flatten()
            .min();
        let (flat, mem) = found.unwrap_or((logical(seen), seen));
        let mut index = vec![0u64; shape.len()];
        let mut rest = flat;
        for k in (0..shape.len()).rev() {
            index[k] = (rest % shape[k]) as u64;
            rest /= shape[k];
        }
        Error::DoesNotFit {
            path: self.path.to_path_buf(),
            index,
            value: show(self.input.dtype(), &src[mem * si..(mem + 1) * si]),
            dtype: target,
        }
    }
}

/// Elements per window of the streaming pass: half the budget, split between input and
/// output, in whole pages; at most 64 MiB of input.
fn window_elems(in_size: usize, out_size: usize, budget: usize) -> usize {
    let page = page_size();
    let w = (budget / 2 / (in_size + out_size)).min((64 << 20) / in_size);
    (w / page * page).max(page)
}

/// Bytes a read fault maps around the faulting page when they are cached (the kernel's
/// default `fault_around_bytes`): a tile's input lines cost at least this much memory.
const FAULT_AROUND: usize = 64 << 10;

/// The tile of a blocked transpose, `(h, w)`: `h` of the input's `m` lines by `w` of the
/// output's `l` lines, as square as possible, such that the tile's input (each line at
/// least [`FAULT_AROUND`] bytes, or whole if shorter) and output fit in half the budget.
fn tile_shape(
    m: usize,
    l: usize,
    in_size: usize,
    out_size: usize,
    budget: usize,
) -> (usize, usize) {
    let target = (budget / 2).max(1);
    let cost = |h: usize, w: usize| {
        let line = (w * in_size).max(FAULT_AROUND.min(l * in_size));
        h.saturating_mul(line)
            .saturating_add(h.saturating_mul(w).saturating_mul(out_size))
    };
    let mut side = ((target / (in_size + out_size)) as f64).sqrt() as usize;
    while side > 1 && cost(side.min(m), side.min(l)) > target {
        side = side * 9 / 10;
    }
    let (mut h, mut w) = (side.clamp(1, m), side.clamp(1, l));
    // A whole dimension fits: give the rest of the budget to the other one.
    if w == l {
        while h < m && cost(h + h / 8 + 1, w) <= target {
            h = (h + h / 8 + 1).min(m);
        }
    } else if h == m {
        while w < l && cost(h, w + w / 8 + 1) <= target {
            w = (w + w / 8 + 1).min(l);
        }
    }
    (h, w)
}

/// `gather(src, first, stride, column)` copies the elements `first`, `first + stride`, ...
/// of `src` into `column` (as many as it holds).
type GatherFn = fn(&[u8], usize, usize, &mut [u8]);

/// The gather for elements of `size` bytes.
fn gather_fn(size: usize) -> GatherFn {
    match size {
        1 => gather::<1>,
        2 => gather::<2>,
        4 => gather::<4>,
        8 => gather::<8>,
        _ => unreachable!("no dtype has {size}-byte elements"),
    }
}

fn gather<const N: usize>(src: &[u8], first: usize, stride: usize, column: &mut [u8]) {
    for (k, d) in column.chunks_exact_mut(N).enumerate() {
        let at = (first + k * stride) * N;
        d.copy_from_slice(&src[at..at + N]);
    }
}

/// `cast(src, dst)` converts the source elements in `src` into the target elements of `dst`
/// (as many); `Err(k)` names the first element that does not fit, and then `dst` is
/// incomplete.
type CastFn = fn(&[u8], &mut [u8]) -> std::result::Result<(), usize>;

/// The cast from `from` to `to` under `mode`: the only code compiled per pair of types.
fn cast_fn(from: DType, to: DType, mode: CastMode) -> CastFn {
    // `with_dtype!` reads bool as u8: bool to bool, and bool to u8, copy bytes.
    if from == to || (from == DType::Bool && to == DType::U8) {
        return copy;
    }
    crate::with_dtype!(from, S => cast_to::<S>(to, mode))
}

fn cast_to<S: Num>(to: DType, mode: CastMode) -> CastFn {
    if to == DType::Bool {
        return pick::<S, Bool>(mode);
    }
    crate::with_dtype!(to, D => pick::<S, D>(mode))
}

fn pick<S: Num, D: Num>(mode: CastMode) -> CastFn {
    match mode {
        CastMode::Safe => cast::<S, D, true>,
        CastMode::Unsafe => cast::<S, D, false>,
    }
}

fn copy(src: &[u8], dst: &mut [u8]) -> std::result::Result<(), usize> {
    dst.copy_from_slice(src);
    Ok(())
}

fn cast<S: Num, D: Num, const SAFE: bool>(
    src: &[u8],
    dst: &mut [u8],
) -> std::result::Result<(), usize> {
    let mode = if SAFE {
        CastMode::Safe
    } else {
        CastMode::Unsafe
    };
    let (ss, ds) = (std::mem::size_of::<S>(), std::mem::size_of::<D>());
    debug_assert_eq!(src.len() / ss, dst.len() / ds);
    match (
        bytemuck::try_cast_slice::<u8, S>(src),
        bytemuck::try_cast_slice_mut::<u8, D>(dst),
    ) {
        (Ok(src), Ok(dst)) => {
            for (k, (d, &s)) in dst.iter_mut().zip(src).enumerate() {
                *d = D::from_val(s.to_val(), mode).ok_or(k)?;
            }
        }
        // Misaligned (mappings and `Vec`s are aligned; a caller's sub-slice may not be).
        _ => {
            for (k, (d, s)) in dst
                .chunks_exact_mut(ds)
                .zip(src.chunks_exact(ss))
                .enumerate()
            {
                let v = D::from_val(bytemuck::pod_read_unaligned::<S>(s).to_val(), mode);
                d.copy_from_slice(bytemuck::bytes_of(&v.ok_or(k)?));
            }
        }
    }
    Ok(())
}

/// The element of `dtype` in `bytes`, as an error message shows it.
fn show(dtype: DType, bytes: &[u8]) -> String {
    crate::with_dtype!(dtype, T => bytemuck::pod_read_unaligned::<T>(bytes).show())
}

/// A value on its way between two element types.
#[derive(Clone, Copy, Debug)]
enum Val {
    Int(i128),
    Float(f64),
}

/// An element type `convert` reads and writes.
trait Num: Pod + Send + Sync + 'static {
    /// The value, exactly.
    fn to_val(self) -> Val;
    /// The value as `Self`, or `None` if it does not fit (in [`CastMode::Safe`]).
    fn from_val(v: Val, mode: CastMode) -> Option<Self>;
    /// The value as the error message shows it.
    fn show(self) -> String;
}

macro_rules! int_num {
    ($($t:ty),*) => {$(
        impl Num for $t {
            fn to_val(self) -> Val {
                Val::Int(self as i128)
            }
            fn from_val(v: Val, mode: CastMode) -> Option<Self> {
                match (v, mode) {
                    (Val::Int(x), CastMode::Safe) => <$t>::try_from(x).ok(),
                    // Two's-complement wrapping, as numpy's astype.
                    (Val::Int(x), CastMode::Unsafe) => Some(x as $t),
                    (Val::Float(f), CastMode::Safe) => {
                        let t = f.trunc();
                        let ok = f.is_finite()
                            && t >= <$t>::MIN as f64
                            && t < <$t>::MAX as f64 + 1.0;
                        ok.then_some(t as $t)
                    }
                    // Saturating (NaN → 0): numpy's result is platform-defined there.
                    (Val::Float(f), CastMode::Unsafe) => Some(f as $t),
                }
            }
            fn show(self) -> String {
                self.to_string()
            }
        }
    )*};
}
int_num!(u8, u16, u32, u64, i8, i16, i32, i64);

impl Num for f64 {
    fn to_val(self) -> Val {
        Val::Float(self)
    }
    fn from_val(v: Val, _mode: CastMode) -> Option<Self> {
        Some(match v {
            Val::Int(x) => x as f64,
            Val::Float(f) => f,
        })
    }
    fn show(self) -> String {
        format!("{self:?}")
    }
}

impl Num for f32 {
    fn to_val(self) -> Val {
        Val::Float(self as f64)
    }
    fn from_val(v: Val, mode: CastMode) -> Option<Self> {
        match v {
            Val::Int(x) => Some(x as f32),
            Val::Float(f) => {
                let r = f as f32;
                let overflow = f.is_finite() && r.is_infinite();
                (mode == CastMode::Unsafe || !overflow).then_some(r)
            }
        }
    }
    fn show(self) -> String {
        format!("{self:?}")
    }
}

/// numpy's `bool` as a target: one byte, 0 or 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Pod, Zeroable)]
#[repr(transparent)]
struct Bool(u8);

impl Num for Bool {
    fn to_val(self) -> Val {
        Val::Int(self.0 as i128)
    }
    fn from_val(v: Val, mode: CastMode) -> Option<Self> {
        let (zero, one) = match v {
            Val::Int(x) => (x == 0, x == 1),
            // NaN is neither: unsafe, it is true (non-zero), as in numpy.
            Val::Float(f) => (f == 0.0, f == 1.0),
        };
        match mode {
            CastMode::Safe => (zero || one).then_some(Bool(one as u8)),
            CastMode::Unsafe => Some(Bool(!zero as u8)),
        }
    }
    fn show(self) -> String {
        self.0.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use num_traits::{AsPrimitive, NumCast};

    /// Edge values of every type, as f64 and as i128 (each cast to the source type).
    fn edges<S: Num + NumCast + Copy + 'static>() -> Vec<S>
    where
        f64: AsPrimitive<S>,
        i128: AsPrimitive<S>,
    {
        let floats = [
            0.0,
            -0.0,
            0.5,
            -0.5,
            1.0,
            -1.0,
            1.5,
            126.99,
            127.0,
            128.0,
            255.0,
            255.9,
            256.0,
            -128.0,
            -128.9,
            -129.0,
            65535.5,
            65536.0,
            -32768.5,
            -32769.0,
            4294967295.0,
            4294967296.0,
            2147483647.9,
            -2147483648.9,
            -2147483649.0,
            9.2e18,
            9.3e18,
            1.8e19,
            1.9e19,
            -9.2e18,
            -9.3e18,
            3.4e38,
            3.5e38,
            1e300,
            -1e300,
            1e-300,
            f64::MAX,
            f64::MIN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::NAN,
        ];
        let ints: [i128; 20] = [
            0,
            1,
            -1,
            2,
            127,
            128,
            -128,
            -129,
            255,
            256,
            65535,
            65536,
            -32769,
            i32::MAX as i128,
            i32::MIN as i128,
            u32::MAX as i128 + 1,
            i64::MAX as i128,
            i64::MIN as i128,
            u64::MAX as i128,
            (1 << 53) + 1,
        ];
        floats
            .iter()
            .map(|f| f.as_())
            .chain(ints.iter().map(|i| i.as_()))
            .collect()
    }

    /// The typed reference for one pair: num-traits' checked cast (safe; it lets a finite
    /// f64 overflow to an infinite f32, which a safe cast refuses) and `as` (unsafe).
    fn reference<S, D>(s: S, mode: CastMode) -> Option<D>
    where
        S: NumCast + AsPrimitive<D> + AsPrimitive<f64>,
        D: NumCast + AsPrimitive<f64>,
    {
        match mode {
            CastMode::Safe => D::from(s).filter(|&d| {
                let (s, d): (f64, f64) = (s.as_(), d.as_());
                !(s.is_finite() && d.is_infinite())
            }),
            CastMode::Unsafe => Some(s.as_()),
        }
    }

    fn bool_reference<S: AsPrimitive<f64>>(s: S, mode: CastMode) -> Option<u8> {
        let f: f64 = s.as_();
        match mode {
            CastMode::Safe => (f == 0.0 || f == 1.0).then_some(f as u8),
            CastMode::Unsafe => Some((f != 0.0) as u8),
        }
    }

    /// Checks the byte-level cast from `S` to every target against the references, for
    /// each value alone, for all at once (the first offender), and misaligned.
    fn check_source<S>(from: DType)
    where
        S: Num + NumCast + Copy + AsPrimitive<f64> + std::fmt::Debug + 'static,
        S: AsPrimitive<u8> + AsPrimitive<u16> + AsPrimitive<u32> + AsPrimitive<u64>,
        S: AsPrimitive<i8> + AsPrimitive<i16> + AsPrimitive<i32> + AsPrimitive<i64>,
        S: AsPrimitive<f32>,
        f64: AsPrimitive<S>,
        i128: AsPrimitive<S>,
    {
        let values = edges::<S>();
        for mode in [CastMode::Safe, CastMode::Unsafe] {
            macro_rules! against {
                ($($d:ty => $dt:expr),*) => {$({
                    let want: Vec<Option<Vec<u8>>> = values
                        .iter()
                        .map(|&s| {
                            reference::<S, $d>(s, mode).map(|d| bytemuck::bytes_of(&d).to_vec())
                        })
                        .collect();
                    check_pair(from, $dt, mode, &values, &want);
                })*};
            }
            against!(u8 => DType::U8, u16 => DType::U16, u32 => DType::U32, u64 => DType::U64,
                     i8 => DType::I8, i16 => DType::I16, i32 => DType::I32, i64 => DType::I64,
                     f32 => DType::F32, f64 => DType::F64);
            let want: Vec<Option<Vec<u8>>> = values
                .iter()
                .map(|&s| bool_reference(s, mode).map(|b| vec![b]))
                .collect();
            check_pair(from, DType::Bool, mode, &values, &want);
        }
    }

    fn check_pair<S: Num + std::fmt::Debug>(
        from: DType,
        to: DType,
        mode: CastMode,
        values: &[S],
        want: &[Option<Vec<u8>>],
    ) {
        let f = cast_fn(from, to, mode);
        let ds = to.size();
        for (s, w) in values.iter().zip(want) {
            let mut out = vec![0u8; ds];
            let got = f(bytemuck::bytes_of(s), &mut out);
            match w {
                Some(w) => {
                    assert_eq!(got, Ok(()), "{from:?} {s:?} -> {to:?} {mode:?}");
                    // NaN bits may differ between two NaNs; compare as values.
                    let same = &out == w || (to.size() >= 4 && is_nan(to, &out) && is_nan(to, w));
                    assert!(
                        same,
                        "{from:?} {s:?} -> {to:?} {mode:?}: {out:?}, want {w:?}"
                    );
                }
                None => assert_eq!(got, Err(0), "{from:?} {s:?} -> {to:?} {mode:?}"),
            }
        }
        // All at once: the first offender, and the values before it written.
        let src: Vec<u8> = values
            .iter()
            .flat_map(|s| bytemuck::bytes_of(s).to_vec())
            .collect();
        let mut out = vec![0u8; values.len() * ds];
        let first_bad = want.iter().position(Option::is_none);
        let got = f(&src, &mut out);
        assert_eq!(got.err(), first_bad, "{from:?} -> {to:?} {mode:?}");
        // Misaligned input and output give the same result.
        let mut src1 = vec![0u8; src.len() + 1];
        src1[1..].copy_from_slice(&src);
        let mut out1 = vec![0u8; out.len() + 1];
        assert_eq!(f(&src1[1..], &mut out1[1..]).err(), first_bad);
        let n = first_bad.unwrap_or(values.len()) * ds;
        assert_eq!(
            out1[1..n + 1],
            out[..n],
            "{from:?} -> {to:?} {mode:?} misaligned"
        );
    }

    fn is_nan(to: DType, b: &[u8]) -> bool {
        match to {
            DType::F32 => f32::from_le_bytes(b.try_into().unwrap()).is_nan(),
            DType::F64 => f64::from_le_bytes(b.try_into().unwrap()).is_nan(),
            _ => false,
        }
    }

    #[test]
    fn byte_casts_match_the_typed_casts_for_every_pair() {
        check_source::<u8>(DType::U8);
        check_source::<u16>(DType::U16);
        check_source::<u32>(DType::U32);
        check_source::<u64>(DType::U64);
        check_source::<i8>(DType::I8);
        check_source::<i16>(DType::I16);
        check_source::<i32>(DType::I32);
        check_source::<i64>(DType::I64);
        check_source::<f32>(DType::F32);
        check_source::<f64>(DType::F64);
    }

    #[test]
    fn bool_sources_read_as_bytes() {
        let f = cast_fn(DType::Bool, DType::F64, CastMode::Safe);
        let mut out = [0u8; 16];
        assert_eq!(f(&[1, 0], &mut out), Ok(()));
        assert_eq!(bytemuck::cast_slice::<u8, f64>(&out), &[1.0, 0.0]);
        let f = cast_fn(DType::Bool, DType::U8, CastMode::Safe);
        let mut out = [9u8; 2];
        assert_eq!(f(&[1, 0], &mut out), Ok(()));
        assert_eq!(out, [1, 0]);
        let f = cast_fn(DType::U8, DType::Bool, CastMode::Unsafe);
        assert_eq!(f(&[7, 0], &mut out), Ok(()));
        assert_eq!(out, [1, 0]);
        let f = cast_fn(DType::U8, DType::Bool, CastMode::Safe);
        assert_eq!(f(&[1, 7], &mut out), Err(1));
    }

    #[test]
    fn values_show_as_the_error_message_does() {
        assert_eq!(show(DType::F64, &f64::NAN.to_le_bytes()), "NaN");
        assert_eq!(show(DType::F64, &(-1e300f64).to_le_bytes()), "-1e300");
        assert_eq!(show(DType::I16, &(-3i16).to_le_bytes()), "-3");
        assert_eq!(show(DType::F32, &2.5f32.to_le_bytes()), "2.5");
    }

    #[test]
    fn gather_takes_every_stride_th_element() {
        let src: Vec<u8> = (0u16..40).flat_map(|x| x.to_le_bytes()).collect();
        let mut column = vec![0u8; 4 * 2];
        gather_fn(2)(&src, 3, 10, &mut column);
        assert_eq!(bytemuck::cast_slice::<u8, u16>(&column), &[3, 13, 23, 33]);
    }

    #[test]
    fn windows_are_whole_pages_within_the_budget() {
        let page = page_size();
        for (si, so, budget) in [(8, 8, MIN_MEMORY), (1, 8, 1 << 30), (8, 1, 256 << 20)] {
            let w = window_elems(si, so, budget);
            assert_eq!(w % page, 0);
            assert!(w * (si + so) <= (budget / 2).max(page * (si + so)));
            assert!(w * si <= (64 << 20).max(page * si));
        }
    }

    #[test]
    fn tiles_fit_the_budget_and_cover_the_array() {
        for (m, l, si, so, budget) in [
            (1001, 37, 8, 8, MIN_MEMORY),
            (37, 1001, 8, 4, MIN_MEMORY),
            (4096, 4096, 8, 8, 16 << 20),
            (100_000, 3, 2, 8, 1 << 20),
            (3, 100_000, 1, 1, 1 << 20),
            (1, 1, 8, 8, MIN_MEMORY),
        ] {
            let (h, w) = tile_shape(m, l, si, so, budget);
            assert!(
                (1..=m).contains(&h) && (1..=l).contains(&w),
                "{m}x{l}: {h}x{w}"
            );
            let line = (w * si).max(FAULT_AROUND.min(l * si));
            let cost = h * line + h * w * so;
            assert!(
                cost <= budget / 2 || (h == 1 && w == 1),
                "{m}x{l}: {h}x{w} costs {cost}"
            );
        }
        // A tiny budget on an odd shape: many tiles.
        let (h, w) = tile_shape(37, 1001, 8, 8, MIN_MEMORY);
        assert!(37usize.div_ceil(h) * 1001usize.div_ceil(w) > 100);
    }
}
