//! Zarr arrays in and out (feature `zarr`).
//!
//! [Zarr](https://zarr.dev) stores an n-dimensional array as a directory: a metadata
//! document (`zarr.json` in Zarr v3, `.zarray` in v2) and one file per chunk of a regular
//! grid, each compressed on its own. outcore writes Zarr v3 and reads v3 and v2 through the
//! [`zarrs`] crate, with its filesystem store and the `zstd` codec (uncompressed chunks need
//! no codec at all).
//!
//! * [`write()`], [`write_any`], [`write_slice`] and [`from_npy`] write an outcore array — any
//!   [`DType`], any number of dimensions, C or Fortran order (written as the logical array)
//!   — as a Zarr v3 array with the chunk shape and codec of [`ZarrWriteOptions`].
//! * [`ZarrArray::open`] reads a Zarr array's metadata; [`ZarrArray::to_npy`] (or [`to_npy`])
//!   decodes it into a new `.npy`; [`ZarrArray::fold_chunks`] hands each decoded chunk to a
//!   closure, the primitive the statistics of [`ZarrArray::summary`] and
//!   [`ZarrArray::histogram`] are built on. [`ZarrArray::quantiles`] gives numpy's exact
//!   quantiles through a decoded scratch copy.
//!
//! ```
//! use outcore::{zarr, MappedArrayMut};
//! # let dir = tempfile::tempdir().unwrap();
//! let npy = dir.path().join("x.npy");
//! let mut a = MappedArrayMut::<f64>::create(&npy, &[1000, 3])?;
//! for (i, x) in a.iter_mut().enumerate() {
//!     *x = i as f64;
//! }
//! a.persist()?;
//!
//! // A Zarr v3 array of 256 x 3 chunks, zstd-compressed (the default codec).
//! let z = zarr::from_npy(&npy, dir.path().join("x.zarr"), zarr::ZarrWriteOptions::new().chunks(&[256, 3]))?;
//! assert_eq!(z.shape(), &[1000, 3]);
//! assert_eq!(z.chunk_grid_shape(), &[4, 1]);
//!
//! // Statistics chunk by chunk, then back to .npy.
//! let s = z.summary(&zarr::ZarrReadOptions::new())?;
//! assert_eq!(s.max, 2999.0);
//! assert_eq!(s.argmax, Some(2999));
//! z.to_npy(dir.path().join("y.npy"), &zarr::ZarrReadOptions::new())?;
//! # Ok::<(), outcore::Error>(())
//! ```
//!
//! # Design notes
//!
//! - **Chunks in parallel, memory bounded.** Chunks are taken in windows of consecutive
//!   chunk numbers (C order over the chunk grid); the chunks of a window are encoded or
//!   decoded in parallel on rayon, and the next window starts when the previous one is done.
//!   A window holds at most `max(1, memory / (2 × chunk bytes))` chunks, so at most that
//!   many decoded chunks (and their encoded bytes) are alive at once, whatever the array's
//!   size. Results of [`ZarrArray::fold_chunks`] are combined in chunk order, so they do not
//!   depend on the thread count.
//! - **Atomic output.** A Zarr array is written into a temporary directory next to its
//!   destination (`.NAME.outcore-tmp-PID-N`, the naming of every outcore output) and renamed
//!   into place once every chunk and the metadata are written; on an error or a panic the
//!   temporary directory is removed. An existing destination is refused unless
//!   [`ZarrWriteOptions::replace`] is set. `.npy` outputs go through
//!   [`MappedArrayMut::create`](crate::MappedArrayMut::create) as always.
//! - **Edge chunks** are stored whole, as Zarr requires: the part outside the array is the
//!   fill value (zero). Chunks that are all fill value are not stored (readers see the fill
//!   value for a missing chunk), which is Zarr's convention and zarr-python's default.
//! - **Dtypes.** Zarr's `bool`, `uint8`…`uint64`, `int8`…`int64`, `float32`, `float64` map
//!   to outcore's [`DType`]s (and back); other Zarr data types are
//!   [`Error::UnsupportedZarr`]. Big-endian Zarr v2 data is converted by the codec.

use std::borrow::Cow;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use ndarray::{ArrayViewD, ArrayViewMutD, IxDyn, Slice};
use rayon::prelude::*;
use zarrs::array::codec::ZstdCodec;
use zarrs::array::{
    data_type, Array, ArrayBuilder, ArrayBytes, ArrayCreateError, ArrayMetadata, CodecOptions,
    DataType, FillValue,
};
use zarrs::filesystem::FilesystemStore;

use crate::array::{MappedArray, MappedArrayMut};
use crate::chunk::ParOptions;
use crate::element::{DType, Element};
use crate::error::{Error, Result};
use crate::kernels::{self, Moments, Numeric, QuantileOptions, Quantiles};
use crate::sort::SortKey;
use crate::sys::{lock_file, Lock};
use crate::temp::{parent_dir, TEMP_MARKER};
use crate::{with_any, with_dtype, AnyArray};

/// The default memory budget of a pass over a Zarr array's chunks: 256 MiB.
pub const DEFAULT_ZARR_MEMORY: usize = 256 << 20;

/// Bytes per chunk that [`ZarrWriteOptions`] aims for when no chunk shape is given: 1 MiB.
pub const DEFAULT_CHUNK_BYTES: usize = 1 << 20;

/// How chunks are compressed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ZarrCodec {
    /// Stored as they are (the `bytes` codec alone).
    None,
    /// Zstandard at `level` (1 to 22; 0 means zstd's default, 3; negative levels are faster).
    Zstd {
        /// The compression level.
        level: i32,
    },
}

impl Default for ZarrCodec {
    /// Zstandard at level 3.
    fn default() -> ZarrCodec {
        ZarrCodec::Zstd { level: 3 }
    }
}

impl ZarrCodec {
    /// Parses `none`, `zstd` (level 3) or `zstd:LEVEL`, as a command line would spell it.
    ///
    /// ```
    /// use outcore::zarr::ZarrCodec;
    /// assert_eq!(ZarrCodec::from_name("zstd:9"), Some(ZarrCodec::Zstd { level: 9 }));
    /// assert_eq!(ZarrCodec::from_name("none"), Some(ZarrCodec::None));
    /// assert_eq!(ZarrCodec::from_name("gzip"), None);
    /// ```
    pub fn from_name(name: &str) -> Option<ZarrCodec> {
        match name.split_once(':') {
            None if name == "none" => Some(ZarrCodec::None),
            None if name == "zstd" => Some(ZarrCodec::default()),
            Some(("zstd", level)) => level.parse().ok().map(|level| ZarrCodec::Zstd { level }),
            _ => None,
        }
    }
}

/// Options for writing a Zarr array: chunk shape, codec, memory budget, replacing.
///
/// ```
/// use outcore::zarr::{ZarrCodec, ZarrWriteOptions};
/// let mut opts = ZarrWriteOptions::new();
/// opts.chunks(&[4096, 16]).codec(ZarrCodec::None).replace(true);
/// ```
#[derive(Clone, Debug)]
pub struct ZarrWriteOptions {
    chunks: Option<Vec<u64>>,
    codec: ZarrCodec,
    memory: usize,
    replace: bool,
    par: ParOptions,
}

impl Default for ZarrWriteOptions {
    fn default() -> Self {
        ZarrWriteOptions {
            chunks: None,
            codec: ZarrCodec::default(),
            memory: DEFAULT_ZARR_MEMORY,
            replace: false,
            par: ParOptions::new(),
        }
    }
}

impl ZarrWriteOptions {
    /// Default options: chunks of about [`DEFAULT_CHUNK_BYTES`], zstd level 3,
    /// [`DEFAULT_ZARR_MEMORY`], an existing destination refused, rayon's global pool.
    pub fn new() -> Self {
        Self::default()
    }

    /// The chunk shape, one extent (at least 1) per axis of the array. Without it, chunks
    /// hold about [`DEFAULT_CHUNK_BYTES`], whole rows first (the last axis whole when it
    /// fits).
    pub fn chunks(&mut self, shape: &[u64]) -> &mut Self {
        self.chunks = Some(shape.to_vec());
        self
    }

    /// The codec that compresses each chunk.
    pub fn codec(&mut self, codec: ZarrCodec) -> &mut Self {
        self.codec = codec;
        self
    }

    /// The bytes of chunks that may be in flight at once (see the module's design notes).
    pub fn memory(&mut self, bytes: usize) -> &mut Self {
        self.memory = bytes;
        self
    }

    /// Whether an existing destination is replaced (else it is [`Error::AlreadyExists`]).
    pub fn replace(&mut self, yes: bool) -> &mut Self {
        self.replace = yes;
        self
    }

    /// The thread pool: [`ParOptions::threads`] runs on a dedicated pool.
    pub fn par(&mut self, par: ParOptions) -> &mut Self {
        self.par = par;
        self
    }
}

/// Options for reading a Zarr array: memory budget, thread pool, replacing a `.npy` output,
/// the directory of scratch files.
#[derive(Clone, Debug)]
pub struct ZarrReadOptions {
    memory: usize,
    replace: bool,
    par: ParOptions,
    scratch_dir: Option<PathBuf>,
}

impl Default for ZarrReadOptions {
    fn default() -> Self {
        ZarrReadOptions {
            memory: DEFAULT_ZARR_MEMORY,
            replace: false,
            par: ParOptions::new(),
            scratch_dir: None,
        }
    }
}

impl ZarrReadOptions {
    /// Default options: [`DEFAULT_ZARR_MEMORY`], an existing `.npy` destination refused,
    /// rayon's global pool.
    pub fn new() -> Self {
        Self::default()
    }

    /// The bytes of decoded chunks that may be in flight at once.
    pub fn memory(&mut self, bytes: usize) -> &mut Self {
        self.memory = bytes;
        self
    }

    /// Where [`ZarrArray::quantiles`] puts its decoded scratch copy (default: the directory
    /// that holds the Zarr array, which has room for data of its size more often than
    /// `/tmp`, often a RAM disk).
    pub fn scratch_dir(&mut self, dir: impl Into<PathBuf>) -> &mut Self {
        self.scratch_dir = Some(dir.into());
        self
    }

    /// Whether [`ZarrArray::to_npy`] replaces an existing destination.
    pub fn replace(&mut self, yes: bool) -> &mut Self {
        self.replace = yes;
        self
    }

    /// The thread pool: [`ParOptions::threads`] runs on a dedicated pool.
    pub fn par(&mut self, par: ParOptions) -> &mut Self {
        self.par = par;
        self
    }
}

// ---------------------------------------------------------------------------------------
// Writing

/// Writes the `.npy` file `src` (any dtype, C or Fortran order) as the Zarr v3 array `dst`.
///
/// # Errors
/// The errors of [`open_any`](crate::open_any) for `src`, and those of [`write_any`].
pub fn from_npy(
    src: impl AsRef<Path>,
    dst: impl AsRef<Path>,
    opts: &ZarrWriteOptions,
) -> Result<ZarrArray> {
    write_any(&crate::open_any(src)?, dst, opts)
}

/// Writes an array of any dtype as the Zarr v3 array `dst` (see [`write()`]).
///
/// # Errors
/// As [`write()`].
pub fn write_any(
    src: &AnyArray,
    dst: impl AsRef<Path>,
    opts: &ZarrWriteOptions,
) -> Result<ZarrArray> {
    let dtype = src.dtype();
    with_any!(src, a => write_view(a.view(), dtype, dst.as_ref(), opts))
}

/// Writes `src` as the Zarr v3 array `dst`, its logical array in C order (a Fortran-ordered
/// `src` is transposed on the way), chunk by chunk in parallel.
///
/// Returns the new array, opened.
///
/// # Errors
/// [`Error::AlreadyExists`] if `dst` exists and [`ZarrWriteOptions::replace`] is not set;
/// [`Error::BadChunkShape`] for a chunk shape of the wrong length, with a zero, or too large;
/// [`Error::BadShape`] for a 0-dimensional array; [`Error::Zarr`] if a chunk cannot be
/// encoded or stored; I/O errors naming the temporary directory or `dst`. On every error
/// `dst` is left as it was and the temporary directory is removed.
pub fn write<T: Element>(
    src: &MappedArray<T>,
    dst: impl AsRef<Path>,
    opts: &ZarrWriteOptions,
) -> Result<ZarrArray> {
    write_view(src.view(), T::DTYPE, dst.as_ref(), opts)
}

/// Writes the C-ordered `data` of `shape` as the Zarr v3 array `dst` (see [`write()`]): the
/// same writer over a `Vec` or any slice.
///
/// # Errors
/// [`Error::LengthMismatch`] if `data` does not hold `shape`'s elements; otherwise as
/// [`write()`].
pub fn write_slice<T: Element>(
    data: &[T],
    shape: &[usize],
    dst: impl AsRef<Path>,
    opts: &ZarrWriteOptions,
) -> Result<ZarrArray> {
    let expected = shape.iter().product();
    let view = ArrayViewD::from_shape(IxDyn(shape), data).map_err(|_| Error::LengthMismatch {
        what: "zarr::write_slice: data and shape",
        expected,
        got: data.len(),
    })?;
    write_view(view, T::DTYPE, dst.as_ref(), opts)
}

fn zarr_data_type(d: DType) -> DataType {
    match d {
        DType::Bool => data_type::bool(),
        DType::U8 => data_type::uint8(),
        DType::U16 => data_type::uint16(),
        DType::U32 => data_type::uint32(),
        DType::U64 => data_type::uint64(),
        DType::I8 => data_type::int8(),
        DType::I16 => data_type::int16(),
        DType::I32 => data_type::int32(),
        DType::I64 => data_type::int64(),
        DType::F32 => data_type::float32(),
        DType::F64 => data_type::float64(),
    }
}

fn outcore_dtype(d: &DataType) -> Option<DType> {
    use zarrs::array::data_type::{
        BoolDataType, Float32DataType, Float64DataType, Int16DataType, Int32DataType,
        Int64DataType, Int8DataType, UInt16DataType, UInt32DataType, UInt64DataType, UInt8DataType,
    };
    Some(if d.is::<BoolDataType>() {
        DType::Bool
    } else if d.is::<UInt8DataType>() {
        DType::U8
    } else if d.is::<UInt16DataType>() {
        DType::U16
    } else if d.is::<UInt32DataType>() {
        DType::U32
    } else if d.is::<UInt64DataType>() {
        DType::U64
    } else if d.is::<Int8DataType>() {
        DType::I8
    } else if d.is::<Int16DataType>() {
        DType::I16
    } else if d.is::<Int32DataType>() {
        DType::I32
    } else if d.is::<Int64DataType>() {
        DType::I64
    } else if d.is::<Float32DataType>() {
        DType::F32
    } else if d.is::<Float64DataType>() {
        DType::F64
    } else {
        return None;
    })
}

/// About `target` bytes per chunk, filled from the last axis: rows whole when they fit.
fn default_chunks(shape: &[usize], elem_size: usize, target: usize) -> Vec<u64> {
    let mut room = (target / elem_size).max(1);
    let mut chunks = vec![1u64; shape.len()];
    for (c, &n) in chunks.iter_mut().zip(shape).rev() {
        let take = n.clamp(1, room);
        *c = take as u64;
        room = (room / take).max(1);
    }
    chunks
}

/// How many chunks of `chunk_bytes` a window of a `memory` budget holds.
fn window_len(memory: usize, chunk_bytes: usize) -> usize {
    (memory / chunk_bytes.saturating_mul(2).max(1)).max(1)
}

/// The chunk-number ranges of consecutive windows over `n` chunks.
fn windows(n: usize, len: usize) -> impl Iterator<Item = Range<usize>> {
    (0..n.div_ceil(len)).map(move |w| w * len..((w + 1) * len).min(n))
}

/// The C-order indices of chunk number `n` in a grid of `grid` chunks.
fn unravel(mut n: usize, grid: &[u64]) -> Vec<u64> {
    let mut idx = vec![0u64; grid.len()];
    for (i, &g) in idx.iter_mut().zip(grid).rev() {
        *i = n as u64 % g;
        n /= g as usize;
    }
    idx
}

fn write_view<T: Element>(
    src: ArrayViewD<'_, T>,
    dtype: DType,
    dst: &Path,
    opts: &ZarrWriteOptions,
) -> Result<ZarrArray> {
    let shape = src.shape().to_vec();
    if shape.is_empty() {
        return Err(Error::BadShape {
            what: format!("{}: Zarr output", dst.display()),
            shape,
            reason: "outcore writes Zarr arrays of one or more dimensions",
        });
    }
    let size = std::mem::size_of::<T>();
    let chunks = match &opts.chunks {
        Some(c) => c.clone(),
        None => default_chunks(&shape, size, DEFAULT_CHUNK_BYTES),
    };
    if chunks.len() != shape.len() || chunks.contains(&0) {
        return Err(Error::BadChunkShape {
            path: dst.into(),
            chunks,
            shape,
            reason: "give one extent of at least 1 per axis",
        });
    }
    if !opts.replace && dst.symlink_metadata().is_ok() {
        return Err(Error::AlreadyExists { path: dst.into() });
    }
    let chunk_elems = chunks
        .iter()
        .try_fold(1usize, |acc, &c| acc.checked_mul(usize::try_from(c).ok()?))
        .filter(|&n| n.checked_mul(size).is_some())
        .ok_or_else(|| Error::BadChunkShape {
            path: dst.into(),
            chunks: chunks.clone(),
            shape: shape.clone(),
            reason: "a chunk would hold more bytes than this machine can address",
        })?;

    let tmp = TempDir::for_dest(dst)?;
    let zerr = |chunk: Option<Vec<u64>>, message: String| Error::Zarr {
        path: dst.into(),
        chunk,
        message,
    };
    let store =
        Arc::new(FilesystemStore::new(tmp.path()).map_err(|e| zerr(None, format!("store: {e}")))?);
    let mut builder = ArrayBuilder::new(
        shape.iter().map(|&n| n as u64).collect::<Vec<u64>>(),
        chunks.clone(),
        zarr_data_type(dtype),
        FillValue::new(vec![0u8; size]),
    );
    if let ZarrCodec::Zstd { level } = opts.codec {
        builder.bytes_to_bytes_codecs(vec![Arc::new(ZstdCodec::new(level, false))]);
    }
    let array = builder
        .build(store, "/")
        .map_err(|e| zerr(None, format!("cannot create the array: {e}")))?;
    array
        .store_metadata()
        .map_err(|e| zerr(None, format!("cannot write zarr.json: {e}")))?;

    let grid = array.chunk_grid_shape().to_vec();
    let n_chunks = grid.iter().product::<u64>() as usize;
    let codec_opts = CodecOptions::default();
    let window = window_len(opts.memory, chunk_elems * size);
    // A chunk that is a contiguous run of the source's memory (C order, whole trailing
    // axes, not an edge chunk) is encoded straight from the mapping; any other chunk is
    // gathered into a buffer that each worker reuses (a fresh 8 MiB buffer per chunk cost
    // a page fault per page and its zeroing: as much system time as the writes).
    let contiguous = src.as_slice();
    let whole_rows = chunks[1..]
        .iter()
        .zip(&shape[1..])
        .all(|(&c, &n)| c as usize == n);
    let encode = |buf: &mut Vec<T>, n: usize| -> Result<()> {
        let idx = unravel(n, &grid);
        let err = |message: String| zerr(Some(idx.clone()), message);
        let subset = array
            .chunk_subset_bounded(&idx)
            .map_err(|e| err(e.to_string()))?;
        let ranges = subset.to_ranges();
        let complete = ranges
            .iter()
            .zip(&chunks)
            .all(|(r, &c)| r.end - r.start == c);
        let direct = match contiguous {
            Some(all) if whole_rows && complete => {
                let start = ranges[0].start as usize * (chunk_elems / chunks[0] as usize);
                Some(&all[start..start + chunk_elems])
            }
            _ => None,
        };
        let elems: &[T] = match direct {
            Some(d) => d,
            None => {
                let full: Vec<usize> = chunks.iter().map(|&c| c as usize).collect();
                buf.clear();
                buf.resize(chunk_elems, T::default());
                let mut out = ArrayViewMutD::from_shape(IxDyn(&full), &mut buf[..])
                    .expect("the buffer holds one chunk");
                let part = src.slice_each_axis(|ax| axis_slice(&ranges[ax.axis.index()]));
                out.slice_each_axis_mut(|ax| {
                    let r = &ranges[ax.axis.index()];
                    Slice::from(0..(r.end - r.start) as usize)
                })
                .assign(&part);
                &buf[..]
            }
        };
        let bytes = ArrayBytes::new_flen(Cow::Borrowed(bytemuck::cast_slice::<T, u8>(elems)));
        array
            .store_chunk_opt(&idx, bytes, &codec_opts)
            .map_err(|e| err(format!("cannot store the chunk: {e}")))
    };
    opts.par.install(|| {
        windows(n_chunks, window).try_for_each(|w| {
            w.into_par_iter()
                .try_for_each_init(Vec::new, |buf, n| encode(buf, n))
        })
    })??;
    drop(array);
    tmp.persist(dst, opts.replace)?;
    ZarrArray::open(dst)
}

fn axis_slice(r: &Range<u64>) -> Slice {
    Slice::from(r.start as usize..r.end as usize)
}

/// A directory named `.NAME.outcore-tmp-PID-N` next to its destination, removed (with its
/// contents) when dropped unless persisted. Like a temporary file it is held under an
/// exclusive advisory lock while its writer lives, so that
/// [`remove_stale_temp_files`](crate::remove_stale_temp_files) removes it only once the
/// writer is gone (killed before it could clean up).
struct TempDir {
    path: PathBuf,
    keep: bool,
    _lock: std::fs::File,
}

static TEMP_DIRS: AtomicU64 = AtomicU64::new(0);

fn temp_name(dest: &Path, suffix: &str) -> Result<PathBuf> {
    let name = dest
        .file_name()
        .ok_or_else(|| Error::NotAFileName { path: dest.into() })?
        .to_string_lossy();
    let n = TEMP_DIRS.fetch_add(1, Ordering::Relaxed);
    let pid = std::process::id();
    Ok(parent_dir(dest).join(format!(".{name}{TEMP_MARKER}{pid}-{n}{suffix}")))
}

impl TempDir {
    fn for_dest(dest: &Path) -> Result<TempDir> {
        loop {
            let path = temp_name(dest, "")?;
            match std::fs::create_dir(&path) {
                Ok(()) => {
                    let lock =
                        std::fs::File::open(&path).map_err(|e| Error::io(&path, "open", e))?;
                    let dir = TempDir {
                        path,
                        keep: false,
                        _lock: lock,
                    };
                    lock_file(&dir._lock, Lock::Exclusive, &dir.path)?;
                    // A concurrent `remove_stale_temp_files` may have taken the lock and
                    // removed the directory between its creation and our lock: start over.
                    if !same_inode(&dir._lock, &dir.path) {
                        continue;
                    }
                    return Ok(dir);
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => {
                    return Err(Error::io(
                        parent_dir(dest),
                        "create a temporary directory in",
                        e,
                    ))
                }
            }
        }
    }

    fn path(&self) -> &Path {
        &self.path
    }

    /// Renames the directory to `dest`. With `replace`, an existing `dest` is first moved
    /// aside under a temporary name and removed once the new one is in place.
    fn persist(mut self, dest: &Path, replace: bool) -> Result<()> {
        let exists = dest.symlink_metadata().is_ok();
        if exists && !replace {
            return Err(Error::AlreadyExists { path: dest.into() });
        }
        let aside = if exists {
            let aside = temp_name(dest, "-old")?;
            std::fs::rename(dest, &aside).map_err(|e| Error::io(dest, "move aside", e))?;
            Some(aside)
        } else {
            None
        };
        if let Err(e) = std::fs::rename(&self.path, dest) {
            if let Some(aside) = &aside {
                let _ = std::fs::rename(aside, dest);
            }
            return Err(Error::io(dest, "rename onto", e));
        }
        self.keep = true;
        if let Some(aside) = aside {
            let _ = if aside.is_dir() {
                std::fs::remove_dir_all(&aside)
            } else {
                std::fs::remove_file(&aside)
            };
        }
        if let Ok(d) = std::fs::File::open(parent_dir(dest)) {
            let _ = d.sync_all();
        }
        Ok(())
    }
}

/// Whether `path` still names the open `file` (same device and inode).
fn same_inode(file: &std::fs::File, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (file.metadata(), std::fs::metadata(path)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if !self.keep {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

// ---------------------------------------------------------------------------------------
// Reading

/// A Zarr array (v3 or v2) on disk, its metadata read and checked; chunks are read on
/// demand by [`to_npy`](ZarrArray::to_npy), [`fold_chunks`](ZarrArray::fold_chunks) and
/// the statistics built on it.
pub struct ZarrArray {
    path: PathBuf,
    array: Array<FilesystemStore>,
    dtype: DType,
    shape: Vec<usize>,
    chunk_shape: Vec<usize>,
    grid: Vec<u64>,
    format: u8,
    codecs: Vec<String>,
}

impl std::fmt::Debug for ZarrArray {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ZarrArray")
            .field("path", &self.path)
            .field("zarr_format", &self.format)
            .field("dtype", &self.dtype)
            .field("shape", &self.shape)
            .field("chunk_shape", &self.chunk_shape)
            .field("codecs", &self.codecs)
            .finish()
    }
}

/// Decodes the Zarr array `src` into the new `.npy` file `dst` (see [`ZarrArray::to_npy`]).
///
/// # Errors
/// As [`ZarrArray::open`] and [`ZarrArray::to_npy`].
pub fn to_npy(src: impl AsRef<Path>, dst: impl AsRef<Path>, opts: &ZarrReadOptions) -> Result<()> {
    ZarrArray::open(src)?.to_npy(dst, opts)
}

/// Where a decoded chunk lies in its array; handed with the chunk's elements to the
/// closures of [`ZarrArray::fold_chunks`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChunkInfo {
    indices: Vec<u64>,
    number: usize,
    start: Vec<u64>,
    shape: Vec<u64>,
    array_shape: Arc<[u64]>,
}

impl ChunkInfo {
    /// The chunk's indices in the chunk grid.
    pub fn indices(&self) -> &[u64] {
        &self.indices
    }

    /// The chunk's number in the grid, counting in C order from 0.
    pub fn number(&self) -> usize {
        self.number
    }

    /// The array index of the chunk's first element along each axis.
    pub fn start(&self) -> &[u64] {
        &self.start
    }

    /// The chunk's shape within the array: the chunk shape, cut at the array's edges.
    pub fn shape(&self) -> &[u64] {
        &self.shape
    }

    /// Number of elements of the chunk within the array.
    pub fn len(&self) -> usize {
        self.shape.iter().product::<u64>() as usize
    }

    /// Whether the chunk holds no element.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The flat C-order index in the whole array of the chunk's `i`-th element (counting
    /// in C order within the chunk).
    pub fn global_index(&self, i: usize) -> u64 {
        let mut rest = i as u64;
        let mut local = vec![0u64; self.shape.len()];
        for (l, &s) in local.iter_mut().zip(&self.shape).rev() {
            *l = rest % s.max(1);
            rest /= s.max(1);
        }
        local
            .iter()
            .zip(&self.start)
            .zip(self.array_shape.iter())
            .fold(0u64, |acc, ((&l, &s), &n)| acc * n + s + l)
    }
}

fn map_open_error(path: &Path, e: ArrayCreateError) -> Error {
    let path = path.to_path_buf();
    match e {
        ArrayCreateError::MissingMetadata => Error::Zarr {
            path,
            chunk: None,
            message: "no zarr.json (Zarr v3) or .zarray (Zarr v2): not a Zarr array".into(),
        },
        ArrayCreateError::DataTypeCreateError(e) => Error::UnsupportedZarr {
            path,
            what: format!("data type: {e}"),
        },
        ArrayCreateError::CodecsCreateError(e) => Error::UnsupportedZarr {
            path,
            what: format!(
                "codec: {e} (outcore reads the bytes, zstd and v2 numcodecs zstd codecs)"
            ),
        },
        ArrayCreateError::ChunkGridCreateError(e)
        | ArrayCreateError::ChunkKeyEncodingCreateError(e)
        | ArrayCreateError::StorageTransformersCreateError(e) => Error::UnsupportedZarr {
            path,
            what: e.to_string(),
        },
        ArrayCreateError::UnsupportedZarrV2Array(what) => Error::UnsupportedZarr { path, what },
        other => Error::Zarr {
            path,
            chunk: None,
            message: format!("malformed metadata: {other}"),
        },
    }
}

impl ZarrArray {
    /// Opens the Zarr array in the directory `path`: v3 (`zarr.json`) or v2 (`.zarray`).
    ///
    /// # Errors
    /// [`Error::NotFound`] if `path` does not exist; [`Error::Zarr`] if it holds no Zarr
    /// metadata or malformed metadata; [`Error::UnsupportedZarr`] for a data type outside
    /// [`DType`], a codec outcore is built without (blosc, gzip, sharding, ...), a group
    /// rather than an array, or a 0-dimensional array.
    pub fn open(path: impl AsRef<Path>) -> Result<ZarrArray> {
        let path = path.as_ref();
        let meta = std::fs::metadata(path).map_err(|e| Error::io(path, "open", e))?;
        if !meta.is_dir() {
            return Err(Error::Zarr {
                path: path.into(),
                chunk: None,
                message: "not a directory: a Zarr array is a directory".into(),
            });
        }
        let store = Arc::new(FilesystemStore::new(path).map_err(|e| Error::Zarr {
            path: path.into(),
            chunk: None,
            message: format!("store: {e}"),
        })?);
        let array = Array::open(store, "/").map_err(|e| map_open_error(path, e))?;
        let dtype = outcore_dtype(array.data_type()).ok_or_else(|| Error::UnsupportedZarr {
            path: path.into(),
            what: format!(
                "data type {} (outcore handles bool, uint8-64, int8-64, float32, float64)",
                array.data_type()
            ),
        })?;
        if array.dimensionality() == 0 {
            return Err(Error::UnsupportedZarr {
                path: path.into(),
                what: "a 0-dimensional array".into(),
            });
        }
        let (format, codecs) = match array.metadata() {
            ArrayMetadata::V3(m) => (3, m.codecs.iter().map(|c| c.name().to_string()).collect()),
            ArrayMetadata::V2(m) => (
                2,
                m.filters
                    .iter()
                    .flatten()
                    .chain(&m.compressor)
                    .map(|c| c.id().to_string())
                    .collect(),
            ),
        };
        let too_big = || Error::ShapeOverflow {
            path: path.into(),
            shape: array.shape().iter().map(|&n| n as usize).collect(),
        };
        let shape = array
            .shape()
            .iter()
            .map(|&n| usize::try_from(n))
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|_| too_big())?;
        let grid = array.chunk_grid_shape().to_vec();
        let chunk_shape =
            array
                .chunk_shape_usize(&vec![0; grid.len()])
                .map_err(|e| Error::Zarr {
                    path: path.into(),
                    chunk: None,
                    message: format!("chunk grid: {e}"),
                })?;
        shape
            .iter()
            .try_fold(dtype.size(), |acc, &n| acc.checked_mul(n))
            .ok_or_else(too_big)?;
        Ok(ZarrArray {
            path: path.into(),
            array,
            dtype,
            shape,
            chunk_shape,
            grid,
            format,
            codecs,
        })
    }

    /// The array's directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The element type.
    pub fn dtype(&self) -> DType {
        self.dtype
    }

    /// The shape.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }

    /// Whether the array has no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The shape of a (whole) chunk.
    pub fn chunk_shape(&self) -> &[usize] {
        &self.chunk_shape
    }

    /// The number of chunks along each axis.
    pub fn chunk_grid_shape(&self) -> &[u64] {
        &self.grid
    }

    /// The number of chunks.
    pub fn num_chunks(&self) -> usize {
        self.grid.iter().product::<u64>() as usize
    }

    /// The Zarr format version: 2 or 3.
    pub fn zarr_format(&self) -> u8 {
        self.format
    }

    /// The names of the codecs, in encoding order: for v3 e.g. `["bytes", "zstd"]`, for v2
    /// the filters' and the compressor's ids (empty for uncompressed v2 data).
    pub fn codecs(&self) -> &[String] {
        &self.codecs
    }

    fn chunk_bytes(&self) -> usize {
        self.chunk_shape.iter().product::<usize>() * self.dtype.size()
    }

    fn check_type<T: Element>(&self) -> Result<()> {
        if T::accepts(self.dtype) {
            Ok(())
        } else {
            Err(Error::DtypeMismatch {
                path: self.path.clone(),
                expected: T::DTYPE,
                found: self.dtype,
            })
        }
    }

    /// Decodes the chunk at `indices` in the chunk grid: its place, and its elements within
    /// the array in C order (an edge chunk's part outside the array is left out; a missing
    /// chunk is the fill value).
    ///
    /// # Errors
    /// [`Error::ChunkOutOfGrid`] if `indices` is not a chunk of the grid;
    /// [`Error::DtypeMismatch`] if `T` is not the array's type; [`Error::Zarr`] if the
    /// chunk cannot be read or decoded.
    pub fn read_chunk<T: Element>(&self, indices: &[u64]) -> Result<(ChunkInfo, Vec<T>)> {
        self.check_type::<T>()?;
        if indices.len() != self.grid.len() || indices.iter().zip(&self.grid).any(|(i, g)| i >= g) {
            return Err(Error::ChunkOutOfGrid {
                path: self.path.clone(),
                chunk: indices.to_vec(),
                grid: self.grid.clone(),
            });
        }
        let n = indices
            .iter()
            .zip(&self.grid)
            .fold(0usize, |acc, (&i, &g)| acc * g as usize + i as usize);
        self.decode(n, &CodecOptions::default())
    }

    /// Decodes chunk number `n`: its place and its elements in C order.
    fn decode<T: Element>(&self, n: usize, opts: &CodecOptions) -> Result<(ChunkInfo, Vec<T>)> {
        let indices = unravel(n, &self.grid);
        let err = |message: String| Error::Zarr {
            path: self.path.clone(),
            chunk: Some(indices.clone()),
            message,
        };
        let subset = self
            .array
            .chunk_subset_bounded(&indices)
            .map_err(|e| err(e.to_string()))?;
        let bytes: ArrayBytes<'static> = self
            .array
            .retrieve_array_subset_opt(&subset, opts)
            .map_err(|e| err(format!("cannot decode the chunk: {e}")))?;
        let raw = bytes
            .into_fixed()
            .map_err(|e| err(format!("cannot decode the chunk: {e}")))?;
        let expected = subset.num_elements_usize() * std::mem::size_of::<T>();
        if raw.len() != expected {
            return Err(err(format!(
                "the chunk decoded to {} bytes, expected {expected}",
                raw.len()
            )));
        }
        let data: Vec<T> = bytemuck::pod_collect_to_vec(&raw);
        let info = ChunkInfo {
            indices,
            number: n,
            start: subset.start().to_vec(),
            shape: subset.shape().to_vec(),
            array_shape: self.array.shape().into(),
        };
        Ok((info, data))
    }

    /// Decodes every chunk, in parallel a window at a time, and hands each, with its place,
    /// to `fold`; the results are combined with `combine` in chunk order (C order over the
    /// grid), so they are the same for any thread count. Returns `None` for an array of no
    /// chunks. Missing chunks are decoded as the fill value.
    ///
    /// `T` must be the array's element type (`u8` for `bool`): run generic code on an array
    /// of any dtype with [`with_dtype!`](crate::with_dtype)`(z.dtype(), T => ...)`.
    ///
    /// ```
    /// use outcore::zarr::{self, ZarrReadOptions, ZarrWriteOptions};
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let path = dir.path().join("x.zarr");
    /// let data: Vec<i32> = (0..10).collect();
    /// let z = zarr::write_slice(&data, &[10], &path, ZarrWriteOptions::new().chunks(&[4]))?;
    /// // The total and the chunk sizes: [4, 4, 2].
    /// let (total, sizes) = z
    ///     .fold_chunks(
    ///         &ZarrReadOptions::new(),
    ///         |info, chunk: &[i32]| (chunk.iter().sum::<i32>(), vec![info.len()]),
    ///         |(a, mut x), (b, y)| { x.extend(y); (a + b, x) },
    ///     )?
    ///     .unwrap();
    /// assert_eq!((total, sizes), (45, vec![4, 4, 2]));
    /// # Ok::<(), outcore::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::DtypeMismatch`] if `T` is not the array's type; [`Error::Zarr`] naming the
    /// first chunk (in chunk order) that cannot be read or decoded (truncated, corrupt);
    /// [`Error::ThreadPool`] if the options' thread pool cannot start.
    pub fn fold_chunks<T: Element, A: Send>(
        &self,
        opts: &ZarrReadOptions,
        fold: impl Fn(&ChunkInfo, &[T]) -> A + Sync + Send,
        mut combine: impl FnMut(A, A) -> A + Send,
    ) -> Result<Option<A>> {
        self.check_type::<T>()?;
        let codec = CodecOptions::default();
        let window = window_len(opts.memory, self.chunk_bytes());
        opts.par.install(|| {
            let mut acc: Option<A> = None;
            for w in windows(self.num_chunks(), window) {
                let parts: Vec<Result<A>> = w
                    .into_par_iter()
                    .map(|n| {
                        let (info, data) = self.decode::<T>(n, &codec)?;
                        Ok(fold(&info, &data))
                    })
                    .collect();
                for part in parts {
                    let part = part?;
                    acc = Some(match acc.take() {
                        None => part,
                        Some(a) => combine(a, part),
                    });
                }
            }
            Ok(acc)
        })?
    }

    /// Decodes every chunk, in parallel a window at a time, and calls `f` on each with its
    /// place, in no particular order: [`fold_chunks`](ZarrArray::fold_chunks) without a
    /// result.
    ///
    /// # Errors
    /// As [`fold_chunks`](ZarrArray::fold_chunks), and the first error `f` returns.
    pub fn for_each_chunk_par<T: Element>(
        &self,
        opts: &ZarrReadOptions,
        f: impl Fn(&ChunkInfo, &[T]) -> Result<()> + Sync + Send,
    ) -> Result<()> {
        self.fold_chunks(opts, f, |a, b| a.and(b))?
            .unwrap_or(Ok(()))
    }

    /// Decodes the array into the new `.npy` file `dst`, in C order, with the array's dtype
    /// (`bool` as numpy's `|b1`). Chunks are decoded in parallel a window at a time; the
    /// file appears under its name only when complete.
    ///
    /// # Errors
    /// [`Error::AlreadyExists`] if `dst` exists and [`ZarrReadOptions::replace`] is not set;
    /// [`Error::Zarr`] naming a chunk that cannot be read or decoded; the errors of
    /// [`MappedArrayMut::create`] (disk full, permissions). On every error nothing is
    /// written under `dst`.
    pub fn to_npy(&self, dst: impl AsRef<Path>, opts: &ZarrReadOptions) -> Result<()> {
        let dst = dst.as_ref();
        if !opts.replace && dst.symlink_metadata().is_ok() {
            return Err(Error::AlreadyExists { path: dst.into() });
        }
        with_dtype!(self.dtype, T => self.to_npy_typed::<T>(dst, opts))
    }

    fn to_npy_typed<T: Element>(&self, dst: &Path, opts: &ZarrReadOptions) -> Result<()> {
        let mut out = MappedArrayMut::<T>::create_as(dst, &self.shape, self.dtype)?;
        self.decode_into(&mut out, opts)?;
        out.persist()?;
        Ok(())
    }

    /// Decodes every chunk into `out`, a C-ordered array of the same shape.
    fn decode_into<T: Element>(
        &self,
        out: &mut MappedArrayMut<T>,
        opts: &ZarrReadOptions,
    ) -> Result<()> {
        let codec = CodecOptions::default();
        let window = window_len(opts.memory, self.chunk_bytes());
        opts.par.install(|| -> Result<()> {
            let mut view = out.view_mut();
            for w in windows(self.num_chunks(), window) {
                let parts: Vec<Result<(ChunkInfo, Vec<T>)>> = w
                    .into_par_iter()
                    .map(|n| self.decode::<T>(n, &codec))
                    .collect();
                for part in parts {
                    let (info, data) = part?;
                    let shape: Vec<usize> = info.shape.iter().map(|&n| n as usize).collect();
                    let chunk = ArrayViewD::from_shape(IxDyn(&shape), &data[..])
                        .expect("a decoded chunk holds its shape's elements");
                    view.slice_each_axis_mut(|ax| {
                        let i = ax.axis.index();
                        let s = info.start[i] as usize;
                        Slice::from(s..s + shape[i])
                    })
                    .assign(&chunk);
                }
            }
            Ok(())
        })?
    }

    /// The exact quantiles `qs` (each in `[0, 1]`) of the array's elements, equal to
    /// `np.quantile(z[...], qs, method=...)` (or `np.nanquantile` with
    /// [`QuantileOptions::skip_nan`]): [`stream::quantiles`](crate::stream::quantiles) on a decoded scratch
    /// copy.
    ///
    /// The chunks are decoded in parallel, a window at a time, into an unnamed temporary
    /// `.npy` in [`ZarrReadOptions::scratch_dir`], which the quantile selection then reads in
    /// its passes (a histogram pass and a collecting pass when the candidates exceed the
    /// quantile options' memory); the copy is removed on return. Memory stays bounded (the
    /// copy is in the page cache, not the heap); disk space for one copy is needed.
    ///
    /// `T` must be the array's element type (`u8` for `bool`); use
    /// [`with_dtype!`](crate::with_dtype) for a dtype known at run time.
    ///
    /// # Errors
    /// [`Error::DtypeMismatch`]; those of [`stream::quantiles`](crate::stream::quantiles)
    /// ([`Error::QuantileOutOfRange`], [`Error::EmptyInput`]); those of
    /// [`to_npy`](ZarrArray::to_npy) for the scratch copy.
    pub fn quantiles<T: Element + Numeric + SortKey>(
        &self,
        qs: &[f64],
        quantile_opts: &QuantileOptions,
        opts: &ZarrReadOptions,
    ) -> Result<Quantiles<T>> {
        self.check_type::<T>()?;
        let dir = match &opts.scratch_dir {
            Some(d) => d.clone(),
            None => parent_dir(&self.path).to_path_buf(),
        };
        let name = self
            .path
            .file_name()
            .map_or_else(|| "zarr".into(), |n| n.to_string_lossy().into_owned());
        // Never persisted: it lives under its temporary name and goes when dropped.
        let scratch_path = dir.join(format!("{name}.scratch.npy"));
        let mut scratch = MappedArrayMut::<T>::create(scratch_path, &self.shape)?;
        self.decode_into(&mut scratch, opts)?;
        crate::stream::quantiles(scratch.as_array(), qs, quantile_opts)
    }

    /// Summary statistics over every element, chunk by chunk (see [`ZarrSummary`]).
    ///
    /// # Errors
    /// As [`fold_chunks`](ZarrArray::fold_chunks).
    pub fn summary(&self, opts: &ZarrReadOptions) -> Result<ZarrSummary> {
        with_dtype!(self.dtype, T => self.summary_typed::<T>(opts))
    }

    fn summary_typed<T: Element + Numeric>(&self, opts: &ZarrReadOptions) -> Result<ZarrSummary> {
        let part = self.fold_chunks(
            opts,
            |info, chunk: &[T]| {
                let arg = |i: Option<usize>| i.map(|i| (chunk[i].as_(), info.global_index(i)));
                Part {
                    moments: kernels::moments(chunk),
                    nan: kernels::count(chunk, |x| kernels_is_nan(*x)) as u64,
                    argmin: arg(kernels::argmin(chunk)),
                    argmax: arg(kernels::argmax(chunk)),
                }
            },
            Part::merge,
        )?;
        let count = self.len() as u64;
        Ok(match part {
            Some(p) if count > 0 => ZarrSummary {
                count,
                nan_count: p.nan,
                mean: p.moments.mean(),
                std: p.moments.std(0),
                min: p.argmin.map_or(f64::NAN, |a| a.0),
                max: p.argmax.map_or(f64::NAN, |a| a.0),
                argmin: p.argmin.map(|a| a.1),
                argmax: p.argmax.map(|a| a.1),
                moments: p.moments,
            },
            _ => ZarrSummary {
                count: 0,
                nan_count: 0,
                mean: f64::NAN,
                std: f64::NAN,
                min: f64::NAN,
                max: f64::NAN,
                argmin: None,
                argmax: None,
                moments: Moments::default(),
            },
        })
    }

    /// The histogram of `bins` equal bins over `range`, as
    /// [`kernels::histogram`] (numpy's edges; values outside
    /// the range and NaN are not counted), chunk by chunk.
    ///
    /// # Errors
    /// [`Error::NoBins`] for 0 bins, [`Error::RangeNotFinite`] for a range that is not
    /// finite, [`Error::RangeReversed`] for `lo > hi`; otherwise as
    /// [`fold_chunks`](ZarrArray::fold_chunks).
    pub fn histogram(
        &self,
        bins: usize,
        range: (f64, f64),
        opts: &ZarrReadOptions,
    ) -> Result<Vec<u64>> {
        // Validates the arguments once, whether or not there are chunks.
        kernels::histogram::<f64>(&[], bins, Some(range))?;
        let h = with_dtype!(self.dtype, T => self.fold_chunks(
            opts,
            |_, chunk: &[T]| kernels::histogram(chunk, bins, Some(range)),
            |a, b| {
                let (mut a, b) = (a?, b?);
                a.iter_mut().zip(b).for_each(|(x, y)| *x += y);
                Ok(a)
            },
        ))?;
        h.unwrap_or_else(|| Ok(vec![0; bins]))
    }
}

#[inline]
fn kernels_is_nan<T: PartialOrd>(x: T) -> bool {
    #[allow(clippy::eq_op)]
    {
        x != x
    }
}

/// Statistics of a Zarr array's elements, from [`ZarrArray::summary`].
///
/// NaN follows numpy: it propagates into `mean`, `std`, `min` and `max`, and `argmin` /
/// `argmax` point to the first NaN. Indices are flat C-order indices into the whole array.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct ZarrSummary {
    /// Number of elements.
    pub count: u64,
    /// Number of NaN elements.
    pub nan_count: u64,
    /// The mean (NaN for no elements).
    pub mean: f64,
    /// The population standard deviation (`ddof = 0`, numpy's default).
    pub std: f64,
    /// The least element, as `f64` (NaN for no elements).
    pub min: f64,
    /// The greatest element, as `f64` (NaN for no elements).
    pub max: f64,
    /// The flat index of the first least element.
    pub argmin: Option<u64>,
    /// The flat index of the first greatest element.
    pub argmax: Option<u64>,
    /// The count, mean and sum of squared deviations, for other moments or merging.
    pub moments: Moments,
}

struct Part {
    moments: Moments,
    nan: u64,
    argmin: Option<(f64, u64)>,
    argmax: Option<(f64, u64)>,
}

impl Part {
    fn merge(a: Part, b: Part) -> Part {
        Part {
            moments: a.moments.merge(b.moments),
            nan: a.nan + b.nan,
            argmin: pick(a.argmin, b.argmin, |x, y| x < y),
            argmax: pick(a.argmax, b.argmax, |x, y| x > y),
        }
    }
}

/// The better of two (value, global index) candidates: NaN first, then `better`, then the
/// smaller index (chunk order is not index order in more than one dimension).
fn pick(
    a: Option<(f64, u64)>,
    b: Option<(f64, u64)>,
    better: impl Fn(f64, f64) -> bool,
) -> Option<(f64, u64)> {
    match (a, b) {
        (None, x) | (x, None) => x,
        (Some(x), Some(y)) => {
            let rank = |v: (f64, u64), w: (f64, u64)| match (v.0.is_nan(), w.0.is_nan()) {
                (true, false) => true,
                (false, true) => false,
                (true, true) => v.1 < w.1,
                (false, false) => better(v.0, w.0) || (v.0 == w.0 && v.1 < w.1),
            };
            Some(if rank(y, x) { y } else { x })
        }
    }
}
