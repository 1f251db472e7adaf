//! The one error type of the crate.
//!
//! Every failure that concerns a file names the file. Variants carry named fields so
//! that callers can match on what went wrong (`Error::DtypeMismatch { expected, found, .. }`)
//! and the messages say what to do next where there is something to do.

use std::fmt;
use std::io;
use std::path::PathBuf;

use crate::element::DType;

/// `Result<T, outcore::Error>`.
pub type Result<T> = std::result::Result<T, Error>;

/// Everything that can go wrong in outcore.
///
/// The enum is `#[non_exhaustive]`: new failure kinds may be added without a breaking
/// release, so a `match` on it needs a wildcard arm.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An I/O operation failed for a reason not covered by a more specific variant.
    #[error("{path}: {op} failed: {source}")]
    Io {
        /// The file or directory concerned.
        path: PathBuf,
        /// What was being done ("open", "map", "rename", ...).
        op: &'static str,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },

    /// The file or directory does not exist.
    #[error("{path}: no such file or directory")]
    NotFound {
        /// The missing path.
        path: PathBuf,
    },

    /// The operating system refused access (for example a read-only file opened for writing).
    #[error("{path}: permission denied for {op}; check the file's permissions (a read-only file can be opened with MappedArray or copy-on-write)")]
    PermissionDenied {
        /// The file concerned.
        path: PathBuf,
        /// What was being done.
        op: &'static str,
    },

    /// The file does not start with the `.npy` magic string `\x93NUMPY`.
    #[error("{path}: not a .npy file (bad magic); for a headerless file use the raw constructors")]
    BadMagic {
        /// The file concerned.
        path: PathBuf,
    },

    /// The `.npy` format version is not 1.0, 2.0 or 3.0.
    #[error("{path}: unsupported .npy format version {major}.{minor} (supported: 1.0, 2.0, 3.0)")]
    UnsupportedVersion {
        /// The file concerned.
        path: PathBuf,
        /// Major version byte.
        major: u8,
        /// Minor version byte.
        minor: u8,
    },

    /// The file ends before the header does (including a header length that points past the
    /// end of the file).
    #[error("{path}: truncated .npy header: need {needed} bytes, the file has {got}")]
    TruncatedHeader {
        /// The file concerned.
        path: PathBuf,
        /// Bytes the header needs.
        needed: u64,
        /// Bytes the file has.
        got: u64,
    },

    /// The header length field exceeds the limit outcore accepts.
    #[error("{path}: .npy header of {len} bytes exceeds the limit of {max} bytes")]
    HeaderTooLong {
        /// The file concerned.
        path: PathBuf,
        /// Length claimed by the header.
        len: u64,
        /// The limit.
        max: u64,
    },

    /// The header dictionary is not what numpy writes.
    #[error("{path}: malformed .npy header: {reason}")]
    MalformedHeader {
        /// The file concerned.
        path: PathBuf,
        /// What was wrong.
        reason: String,
    },

    /// The dtype is valid numpy but not supported by outcore (big-endian, object,
    /// structured, complex, ...).
    #[error("{path}: unsupported dtype {descr:?}{hint}")]
    UnsupportedDtype {
        /// The file concerned.
        path: PathBuf,
        /// The dtype descriptor as written in the header.
        descr: String,
        /// A suggestion, starting with "; " (may be empty).
        hint: String,
    },

    /// The file's dtype is not the element type asked for.
    #[error("{path}: dtype mismatch: the file holds {found}, but {expected} was requested; {}", mismatch_hint(*.found, *.expected))]
    DtypeMismatch {
        /// The file (or Zarr array) concerned.
        path: PathBuf,
        /// The dtype of the requested element type.
        expected: DType,
        /// The dtype found in the file.
        found: DType,
    },

    /// The number of elements or bytes implied by a shape does not fit in `usize`.
    #[error("{path}: shape {shape:?} is too large (more than 64 dimensions, or more bytes than the address space holds)")]
    ShapeOverflow {
        /// The file concerned.
        path: PathBuf,
        /// The offending shape.
        shape: Vec<usize>,
    },

    /// The file is larger than the address space, so it cannot be mapped whole.
    #[error("{path}: the file is {len} bytes, more than this machine's address space can map")]
    TooLargeToMap {
        /// The file concerned.
        path: PathBuf,
        /// Its size in bytes.
        len: u64,
    },

    /// The path is not a regular file (a directory, a device, a socket, ...), so it cannot
    /// be mapped.
    #[error("{path}: not a regular file; give the path of a file")]
    NotAFile {
        /// The path concerned.
        path: PathBuf,
    },

    /// A directory was expected (for example [`SortOptions::tmp_dir`](crate::sort::SortOptions::tmp_dir),
    /// the sort's temporary runs) and the path is something else.
    #[error("{path}: not a directory; give an existing directory (a sort writes its temporary runs into SortOptions::tmp_dir)")]
    NotADirectory {
        /// The path concerned.
        path: PathBuf,
    },

    /// An output path has no file name (it is `/`, or ends in `..`), so no file can be
    /// created under it.
    #[error("{path}: not a file name; give the path of a file to create")]
    NotAFileName {
        /// The path concerned.
        path: PathBuf,
    },

    /// A path holds a NUL byte, which the operating system cannot take.
    #[error("{path}: the path holds a NUL byte")]
    NulInPath {
        /// The path concerned.
        path: PathBuf,
    },

    /// The file's size does not match what its header (or the requested shape) implies.
    #[error("{path}: file is {actual} bytes, but its header implies {expected} bytes (truncated, or trailing data)")]
    SizeMismatch {
        /// The file concerned.
        path: PathBuf,
        /// Expected file size in bytes.
        expected: u64,
        /// Actual file size in bytes.
        actual: u64,
    },

    /// A raw file's size is not a whole number of elements.
    #[error("{path}: file size {len} is not a multiple of the element size {elem_size}")]
    NotAMultiple {
        /// The file concerned.
        path: PathBuf,
        /// File size (bytes of data) in bytes.
        len: u64,
        /// `size_of::<T>()`.
        elem_size: usize,
    },

    /// The data does not start at an address aligned for the element type.
    #[error("{path}: data offset {offset} is not aligned to {align} bytes; rewrite the file with numpy >= 1.9 (np.save pads the header to 64 bytes)")]
    Misaligned {
        /// The file concerned.
        path: PathBuf,
        /// Byte offset of the data in the file.
        offset: u64,
        /// Alignment required by the element type.
        align: usize,
    },

    /// Another handle (in this or another process) holds a conflicting advisory lock.
    #[error("{path}: locked by another user of the file ({mode} lock refused); close the other writer first")]
    Locked {
        /// The file concerned.
        path: PathBuf,
        /// The lock that was asked for.
        mode: LockKind,
    },

    /// Not enough space on the device.
    #[error("{path}: not enough disk space{}", space_detail(*.needed, *.available))]
    DiskFull {
        /// The file or directory concerned.
        path: PathBuf,
        /// Bytes that were needed, when known.
        needed: Option<u64>,
        /// Bytes that were available, when known.
        available: Option<u64>,
    },

    /// The file changed size while mapped (another process truncated it).
    #[error("{path}: the file shrank to {actual} bytes while mapped (expected {expected}); another process truncated it")]
    Truncated {
        /// The file concerned.
        path: PathBuf,
        /// Size when mapped.
        expected: u64,
        /// Size now.
        actual: u64,
    },

    /// Two inputs that must have the same length do not.
    #[error("length mismatch: {what}: expected {expected}, got {got}")]
    LengthMismatch {
        /// Which inputs.
        what: &'static str,
        /// Expected length.
        expected: usize,
        /// Actual length.
        got: usize,
    },

    /// An integer result does not fit its type.
    #[error("integer overflow in {op}")]
    Overflow {
        /// The operation that overflowed.
        op: &'static str,
    },

    /// The array has a shape the operation cannot handle.
    #[error("{what}: shape {shape:?} is not supported here ({reason})")]
    BadShape {
        /// The array or operation concerned.
        what: String,
        /// Its shape.
        shape: Vec<usize>,
        /// Why it is not supported.
        reason: &'static str,
    },

    /// An element type of size zero: there is nothing to map, sort or store.
    #[error("zero-sized element types cannot be {op}")]
    ZeroSizedElement {
        /// What was asked: "mapped", "sorted".
        op: &'static str,
    },

    /// A dedicated thread pool ([`ParOptions::threads`](crate::ParOptions::threads)) could
    /// not be started.
    #[error("could not start a pool of {threads} threads: {message}; ask for fewer threads")]
    ThreadPool {
        /// The number of threads asked for.
        threads: usize,
        /// Why, as rayon reports it.
        message: String,
    },

    /// A memory budget too small for the operation to make progress.
    #[error("a memory budget of {budget} bytes is too small: this needs at least {min} bytes; give a larger budget")]
    BudgetTooSmall {
        /// The budget given, in bytes.
        budget: u64,
        /// The smallest budget that works, in bytes.
        min: u64,
    },

    /// The path an array was opened from no longer names the file it maps (the file was
    /// renamed, replaced or removed since): a result that replaces the array's file would
    /// land on another file, so nothing was replaced.
    #[error("{path} is no longer the file this array maps (renamed, replaced or removed since it was opened); nothing was written to it")]
    FileReplaced {
        /// The path the array was opened from.
        path: PathBuf,
    },

    /// A copy-on-write or anonymous array too large to sort in memory: out of core, a sort
    /// puts its result in a file, and the changes of such an array reach no file.
    #[error("{what}: sorting this {kind} array in memory needs {needed} bytes, more than the budget of {budget} bytes, and its changes reach no file to sort it into out of core; open the file with MappedArrayMut::open, or sort it into a new file with sort_file")]
    NoFileToSortInto {
        /// The array: its file's path, or `<anonymous>`.
        what: String,
        /// "copy-on-write" or "anonymous".
        kind: &'static str,
        /// The memory the in-memory sort needs: the array and the sort's scratch, in bytes.
        needed: u64,
        /// The memory budget, in bytes.
        budget: u64,
    },

    /// A histogram of zero bins was asked for.
    #[error("a histogram needs at least one bin")]
    NoBins,

    /// A histogram's range is not finite (NaN or infinite ends).
    #[error("histogram range ({lo}, {hi}) is not finite{}", if *.from_data { " (the data holds NaN or infinity; give a range)" } else { "" })]
    RangeNotFinite {
        /// The low end.
        lo: f64,
        /// The high end.
        hi: f64,
        /// Whether the range was taken from the data (no range was given).
        from_data: bool,
    },

    /// A histogram's range has its low end above its high end.
    #[error("histogram range ({lo}, {hi}): max must be larger than min")]
    RangeReversed {
        /// The low end.
        lo: f64,
        /// The high end.
        hi: f64,
    },

    /// An axis that the array does not have.
    #[error("axis {axis} of a {ndim}-D array: must be below {ndim}{}", axis_hint(*.ndim))]
    BadAxis {
        /// The axis asked for.
        axis: usize,
        /// The number of dimensions of the array.
        ndim: usize,
    },

    /// A rank at or past the number of elements.
    #[error("rank {rank} of {len} elements: must be below {len}")]
    RankOutOfRange {
        /// The rank asked for (0-based).
        rank: usize,
        /// The number of elements.
        len: usize,
    },

    /// An option the operation does not support.
    #[error("{op}: {reason}")]
    UnsupportedOption {
        /// The operation.
        op: &'static str,
        /// What it cannot do, and what to do instead.
        reason: &'static str,
    },

    /// The data changed between two passes over it (another writer modified a mapped file
    /// during a multi-pass computation such as a quantile selection).
    #[error("the data changed between two passes of {op}; do not modify a file while it is read")]
    DataChanged {
        /// The computation.
        op: &'static str,
    },

    /// A Zarr chunk shape that does not fit the array: a different number of dimensions, a
    /// zero extent, or chunks too large to address.
    #[error("{path}: chunk shape {chunks:?} does not fit an array of shape {shape:?} ({reason})")]
    BadChunkShape {
        /// The Zarr array (its destination directory).
        path: PathBuf,
        /// The chunk shape asked for.
        chunks: Vec<u64>,
        /// The array's shape.
        shape: Vec<usize>,
        /// What is wrong with it.
        reason: &'static str,
    },

    /// Chunk indices outside a Zarr array's chunk grid.
    #[error("{path}: chunk {chunk:?} is outside the chunk grid {grid:?}")]
    ChunkOutOfGrid {
        /// The Zarr array (its directory).
        path: PathBuf,
        /// The indices asked for.
        chunk: Vec<u64>,
        /// The number of chunks along each axis.
        grid: Vec<u64>,
    },

    /// A name (a dtype or a distribution given as text) that is not one of the valid ones.
    #[error("unknown {what} {name:?}; expected one of: {}", .expected.join(", "))]
    UnknownName {
        /// What kind of name: "dtype", "distribution".
        what: &'static str,
        /// The name given.
        name: String,
        /// The valid names.
        expected: Vec<&'static str>,
    },

    /// A generator distribution that does not apply to the element type (`normal` for
    /// integers).
    #[error("the {distribution} distribution needs a float dtype (f32 or f64), not {dtype}; for integers use uniform, zipf or few-unique")]
    DistributionNeedsFloat {
        /// The distribution's name.
        distribution: &'static str,
        /// The element type's name.
        dtype: &'static str,
    },

    /// A part of a generated dataset that is not inside it or not on 8-byte boundaries of
    /// its data.
    #[error("elements {first}..{end} of a generated dataset of {total}: a part must lie inside the dataset and start and end on 8-byte boundaries of its data")]
    BadPart {
        /// The part's first element.
        first: usize,
        /// One past its last element.
        end: usize,
        /// The dataset's length.
        total: usize,
    },

    /// A free-form complaint about an argument, for the rare failure no other variant
    /// describes (and for callers' own code, such as a consumer that gives up). outcore's
    /// own checks use the specific variants above; never match on the message.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),

    /// A size written in a form [`parse_size`](crate::parse_size) does not read (`"4QB"`,
    /// `"1.3B"`, `"GiB"`), or too large for a `u64`.
    #[error("{message}")]
    InvalidSize {
        /// The text given.
        input: String,
        /// What is wrong with it, naming it.
        message: String,
    },

    /// A memory budget larger than the memory this process can use (see
    /// [`memory_limit`](crate::memory_limit)): under a memory cgroup it would end in the OOM
    /// killer rather than in an error.
    #[error("a memory budget of {asked} bytes is more than this process can use: {limit} bytes ({limited_by}); give a smaller budget, or leave it out for the default")]
    BudgetTooLarge {
        /// The budget asked for, in bytes.
        asked: u64,
        /// The limit, in bytes.
        limit: u64,
        /// Which limit it is.
        limited_by: crate::LimitSource,
    },

    /// The operation was stopped by its cancel flag (for example on Ctrl-C); its temporary
    /// files were removed and its output was not written.
    #[error("cancelled")]
    Cancelled,

    /// A quantile is outside `[0, 1]` or a percentile outside `[0, 100]`, or it is NaN.
    #[error("{} {value} is outside [0, {max}]", if *.max == 1.0 { "quantile" } else { "percentile" })]
    QuantileOutOfRange {
        /// The quantile or percentile as given.
        value: f64,
        /// The top of its range: 1 for quantiles, 100 for percentiles.
        max: f64,
    },

    /// A Zarr array could not be read or written: missing or malformed metadata
    /// (`zarr.json`, `.zarray`), or a chunk that is truncated or corrupt.
    #[error("{path}: Zarr array{}: {message}", chunk_detail(.chunk.as_deref()))]
    Zarr {
        /// The Zarr array (its directory).
        path: PathBuf,
        /// The indices in the chunk grid of the chunk concerned, if the failure is a chunk's.
        chunk: Option<Vec<u64>>,
        /// What went wrong.
        message: String,
    },

    /// A valid Zarr array that outcore cannot handle: a data type outside [`DType`], a
    /// codec or chunk grid it was built without.
    #[error("{path}: unsupported Zarr array: {what}")]
    UnsupportedZarr {
        /// The Zarr array (its directory).
        path: PathBuf,
        /// What is not supported.
        what: String,
    },

    /// The destination exists and the caller did not ask to replace it.
    #[error("{path}: already exists; remove it first, or ask for it to be replaced")]
    AlreadyExists {
        /// The existing destination.
        path: PathBuf,
    },

    /// The operation has no result for an empty array (numpy raises an error too).
    #[error("{op} of an empty array")]
    EmptyInput {
        /// The operation.
        op: &'static str,
    },

    /// A value does not fit the target element type of a safe conversion
    /// ([`convert`](crate::convert)); nothing was written.
    #[error("{path}: the value {value} at index {} does not fit in {}; nothing was written (--cast unsafe converts as numpy's astype does)", index_detail(.index), .dtype.name())]
    DoesNotFit {
        /// The input file.
        path: PathBuf,
        /// The value's index, one entry per axis: the first value that does not fit in
        /// the array's logical (row-major) order.
        index: Vec<u64>,
        /// The value, as written in the message.
        value: String,
        /// The target element type.
        dtype: crate::DType,
    },
}

impl Error {
    /// Maps an `io::Error` to the most specific variant, naming `path`.
    pub fn io(path: impl Into<PathBuf>, op: &'static str, source: io::Error) -> Error {
        let path = path.into();
        match source.kind() {
            io::ErrorKind::NotFound => Error::NotFound { path },
            io::ErrorKind::PermissionDenied => Error::PermissionDenied { path, op },
            // EROFS; ENOSPC and EDQUOT (std's names for the error numbers).
            io::ErrorKind::ReadOnlyFilesystem => Error::PermissionDenied { path, op },
            io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded => Error::DiskFull {
                path,
                needed: None,
                available: None,
            },
            _ => Error::Io { path, op, source },
        }
    }
}

/// An advisory lock on a file: what [`Error::Locked`] says was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LockKind {
    /// A shared (read) lock: many readers, no writer.
    Shared,
    /// An exclusive (write) lock: one user only.
    Exclusive,
}

impl fmt::Display for LockKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LockKind::Shared => "shared",
            LockKind::Exclusive => "exclusive",
        })
    }
}

fn mismatch_hint(found: DType, expected: DType) -> String {
    // numpy's bool is read as `u8`, the one dtype whose name is not a Rust type's.
    let ty = match found {
        DType::Bool => "u8",
        d => d.name(),
    };
    format!(
        "open it as {ty}, or convert it in numpy with a.astype('{}')",
        expected.descr()
    )
}

fn axis_hint(ndim: usize) -> &'static str {
    if ndim == 2 {
        " (0: columns, 1: rows)"
    } else {
        ""
    }
}

fn chunk_detail(chunk: Option<&[u64]>) -> String {
    match chunk {
        Some(c) => format!(", chunk {c:?}"),
        None => String::new(),
    }
}

fn space_detail(needed: Option<u64>, available: Option<u64>) -> String {
    match (needed, available) {
        (Some(n), Some(a)) => format!(": {n} bytes needed, {a} available"),
        (Some(n), None) => format!(": {n} bytes needed"),
        _ => String::new(),
    }
}

fn index_detail(index: &[u64]) -> String {
    match index {
        [i] => i.to_string(),
        is => format!(
            "({})",
            is.iter().map(u64::to_string).collect::<Vec<_>>().join(", ")
        ),
    }
}
