//! `MappedArray<T>` and `MappedArrayMut<T>`: typed views of mapped `.npy` and raw files.
//!
//! A file is validated once when it is opened (header, dtype, size, alignment); after that
//! the array derefs to `&[T]` (and `&mut [T]`) at no cost, so every kernel written against
//! slices runs on it. See [the mapping contract](crate#safety-the-mmap-contract) for what
//! the safe constructors guarantee and what they cannot.

use std::fs::File;
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut, Range};
use std::path::{Path, PathBuf};

use bytemuck::Pod;
use ndarray::{
    ArrayView1, ArrayView2, ArrayViewD, ArrayViewMut1, ArrayViewMut2, ArrayViewMutD, IxDyn,
    ShapeBuilder,
};

use crate::element::{DType, Element};
use crate::error::{Error, Result};
use crate::mmap::{Advice, Guard, Mapping, Mode};
use crate::npy::Header;
use crate::sys::Lock;
use crate::temp::TempFile;

/// Where the elements sit in the mapping, and the array's logical shape.
#[derive(Clone, Debug)]
struct Layout {
    /// Byte offset of the first element in the mapping.
    offset: usize,
    /// Number of elements.
    len: usize,
    shape: Vec<usize>,
    fortran_order: bool,
}

impl Layout {
    fn raw(len: usize) -> Layout {
        Layout {
            offset: 0,
            len,
            shape: vec![len],
            fortran_order: false,
        }
    }

    fn byte_range<T>(&self) -> Range<usize> {
        self.offset..self.offset + self.len * std::mem::size_of::<T>()
    }
}

fn check_elem<T>() -> Result<()> {
    if std::mem::size_of::<T>() == 0 {
        return Err(Error::ZeroSizedElement { op: "mapped" });
    }
    Ok(())
}

/// Validates a `.npy` mapping for element type `T` and returns its layout.
fn npy_layout<T: Element>(map: &Mapping, path: &Path) -> Result<Layout> {
    let bytes = map.bytes();
    let header = Header::parse(bytes, bytes.len() as u64, path)?;
    if !T::accepts(header.dtype) {
        return Err(Error::DtypeMismatch {
            path: path.into(),
            expected: T::DTYPE,
            found: header.dtype,
        });
    }
    let len = header.num_elements().expect("checked by Header::parse");
    let data_len = header.data_len().expect("checked by Header::parse");
    let expected = header.data_offset as u64 + data_len as u64;
    if bytes.len() as u64 != expected {
        return Err(Error::SizeMismatch {
            path: path.into(),
            expected,
            actual: bytes.len() as u64,
        });
    }
    let align = std::mem::align_of::<T>();
    if header.data_offset % align != 0 {
        return Err(Error::Misaligned {
            path: path.into(),
            offset: header.data_offset as u64,
            align,
        });
    }
    Ok(Layout {
        offset: header.data_offset,
        len,
        shape: header.shape,
        fortran_order: header.fortran_order,
    })
}

/// Validates a raw (headerless) mapping for element type `T`.
fn raw_layout<T: Pod>(map: &Mapping, path: &Path) -> Result<Layout> {
    check_elem::<T>()?;
    let n = map.bytes().len();
    let size = std::mem::size_of::<T>();
    if !n.is_multiple_of(size) {
        return Err(Error::NotAMultiple {
            path: path.into(),
            len: n as u64,
            elem_size: size,
        });
    }
    Ok(Layout::raw(n / size))
}

/// Shape as ndarray wants it, in the file's memory order.
fn nd_shape(layout: &Layout) -> ndarray::StrideShape<IxDyn> {
    IxDyn(&layout.shape).set_f(layout.fortran_order).into()
}

fn bad_dim(path: Option<&Path>, shape: &[usize], want: usize) -> Error {
    Error::BadShape {
        what: path.map_or_else(|| "array".into(), |p| p.display().to_string()),
        shape: shape.to_vec(),
        reason: if want == 1 {
            "a 1-D view needs a 1-D array"
        } else {
            "a 2-D view needs a 2-D array"
        },
    }
}

/// A read-only array of `T` mapped from a `.npy` or raw file.
///
/// Derefs to `&[T]`: every slice method and every outcore kernel works on it. The elements
/// are in the file's memory order (for a Fortran-ordered `.npy` that is column-major; the
/// [`view`](MappedArray::view) knows).
///
/// Opening takes a shared advisory lock on the file: other readers are welcome, a writer
/// that uses outcore (or `flock`) is refused until this array is dropped. See the crate
/// docs for the part of the mmap hazard no lock can remove (another program truncating the
/// file).
///
/// # Examples
///
/// ```
/// use outcore::{MappedArray, MappedArrayMut};
/// # let dir = tempfile::tempdir().unwrap();
/// let path = dir.path().join("squares.npy");
///
/// let mut out = MappedArrayMut::<f64>::create(&path, &[4])?;
/// for (i, x) in out.iter_mut().enumerate() {
///     *x = (i * i) as f64;
/// }
/// out.persist()?;
///
/// let a = MappedArray::<f64>::open(&path)?;
/// assert_eq!(a.shape(), &[4]);
/// assert_eq!(&a[..], &[0.0, 1.0, 4.0, 9.0]);
/// # Ok::<(), outcore::Error>(())
/// ```
pub struct MappedArray<T> {
    map: Mapping,
    layout: Layout,
    _t: PhantomData<T>,
}

impl<T> std::fmt::Debug for MappedArray<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MappedArray")
            .field("path", &self.map.path())
            .field("dtype", &std::any::type_name::<T>())
            .field("shape", &self.layout.shape)
            .field("fortran_order", &self.layout.fortran_order)
            .finish()
    }
}

impl<T: Element> MappedArray<T> {
    /// Opens a `.npy` file read-only.
    ///
    /// # Errors
    /// [`Error::NotFound`], [`Error::PermissionDenied`], [`Error::Locked`] (a writer has
    /// it), any header error of [`Header::parse`](crate::npy::Header::parse),
    /// [`Error::DtypeMismatch`], [`Error::SizeMismatch`], [`Error::Misaligned`].
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let map = Mapping::open(path, Mode::ReadOnly, Lock::Shared)?;
        let layout = npy_layout::<T>(&map, path)?;
        Ok(MappedArray::from_parts(map, layout))
    }
}

impl<T: Pod> MappedArray<T> {
    fn from_parts(map: Mapping, layout: Layout) -> Self {
        MappedArray {
            map,
            layout,
            _t: PhantomData,
        }
    }

    /// Opens a raw (headerless) file of `T`s read-only: its length is the file size divided
    /// by `size_of::<T>()`. `T` may be any `Pod` type, including fixed-size records. An
    /// empty file is an empty array.
    ///
    /// # Errors
    /// [`Error::NotFound`], [`Error::PermissionDenied`], [`Error::Locked`],
    /// [`Error::NotAMultiple`] (the size is not a whole number of elements).
    pub fn open_raw(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let map = Mapping::open(path, Mode::ReadOnly, Lock::Shared)?;
        let layout = raw_layout::<T>(&map, path)?;
        Ok(MappedArray::from_parts(map, layout))
    }

    /// The elements, in the file's memory order.
    pub fn as_slice(&self) -> &[T] {
        // Alignment and length were validated when the array was opened, so the checked
        // cast cannot fail.
        bytemuck::cast_slice(&self.map.bytes()[self.layout.byte_range::<T>()])
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.layout.len
    }

    /// Whether the array has no elements.
    pub fn is_empty(&self) -> bool {
        self.layout.len == 0
    }

    /// The shape: from the `.npy` header, or `[len]` for raw files and anonymous memory.
    pub fn shape(&self) -> &[usize] {
        &self.layout.shape
    }

    /// Whether the elements are stored in Fortran (column-major) order.
    pub fn is_fortran_order(&self) -> bool {
        self.layout.fortran_order
    }

    /// The file's path (`None` for anonymous memory).
    pub fn path(&self) -> Option<&Path> {
        self.map.path()
    }

    /// An n-dimensional view with the array's shape and memory order.
    pub fn view(&self) -> ArrayViewD<'_, T> {
        ArrayViewD::from_shape(nd_shape(&self.layout), self.as_slice())
            .expect("shape and length validated on open")
    }

    /// A 1-D view.
    ///
    /// # Errors
    /// [`Error::BadShape`] if the array is not 1-D.
    pub fn view1(&self) -> Result<ArrayView1<'_, T>> {
        self.view()
            .into_dimensionality()
            .map_err(|_| bad_dim(self.path(), self.shape(), 1))
    }

    /// A 2-D view (rows × columns, whatever the memory order).
    ///
    /// # Errors
    /// [`Error::BadShape`] if the array is not 2-D.
    pub fn view2(&self) -> Result<ArrayView2<'_, T>> {
        self.view()
            .into_dimensionality()
            .map_err(|_| bad_dim(self.path(), self.shape(), 2))
    }

    fn elem_bytes(&self, elems: Range<usize>) -> Range<usize> {
        let size = std::mem::size_of::<T>();
        let end = elems.end.min(self.layout.len);
        let start = elems.start.min(end);
        self.layout.offset + start * size..self.layout.offset + end * size
    }

    /// Applies `advice` to the whole array and returns it, for one-line opening:
    /// `MappedArray::<f64>::open(path)?.with_advice(Advice::Sequential)?`.
    ///
    /// # Errors
    /// [`Error::Io`] if `madvise` fails.
    pub fn with_advice(self, advice: Advice) -> Result<Self> {
        self.advise(advice)?;
        Ok(self)
    }

    /// Gives the kernel an access-pattern hint for the whole array.
    ///
    /// # Errors
    /// [`Error::Io`] if `madvise` fails.
    pub fn advise(&self, advice: Advice) -> Result<()> {
        self.advise_range(0..self.len(), advice)
    }

    /// Gives the kernel an access-pattern hint for the elements `elems` (clamped to the array).
    ///
    /// # Errors
    /// [`Error::Io`] if `madvise` fails.
    pub fn advise_range(&self, elems: Range<usize>, advice: Advice) -> Result<()> {
        self.map.advise(advice, self.elem_bytes(elems))
    }

    /// Releases the memory behind the elements `elems` (clamped): the whole pages they cover
    /// are dropped from this process and from the page cache (written back first if dirty).
    /// The data stays in the file and is read back in if touched again. Call it behind a
    /// long scan so that the scan does not push everything else out of memory.
    ///
    /// A no-op for copy-on-write and anonymous arrays, whose pages exist nowhere else.
    ///
    /// The page cache may hold a file in large folios (up to 2 MiB here) and drops a folio
    /// only when the whole of it is released: release ranges that lag a few megabytes behind
    /// the scan (as [`stream`](crate::stream) does) rather than exactly the
    /// bytes just read, or the folios straddling each edge stay cached.
    ///
    /// # Errors
    /// [`Error::Io`] if `msync`, `madvise` or `posix_fadvise` fails.
    pub fn release(&self, elems: Range<usize>) -> Result<()> {
        self.map.release(self.elem_bytes(elems))
    }

    /// How much of the file is in memory now: `(resident, total)` bytes of the whole file
    /// (a `.npy` header included), from `mincore(2)`. Nothing is read, so asking faults
    /// nothing in. After a full read a file is resident; after
    /// [`release`](MappedArray::release) it mostly is not. See also
    /// [`resident_bytes`](crate::resident_bytes) for a file that is not open.
    ///
    /// # Errors
    /// [`Error::Io`] if `mincore` fails.
    pub fn resident_bytes(&self) -> Result<(u64, u64)> {
        self.map.resident()
    }

    /// Checks that the file has not shrunk since it was mapped (another process truncated
    /// it). A long pass can call this between chunks to fail with an error where touching
    /// the lost pages would kill the process with `SIGBUS`.
    ///
    /// # Errors
    /// [`Error::Truncated`].
    pub fn check_size(&self) -> Result<()> {
        self.map.check_len()
    }
}

impl<T: Pod> Deref for MappedArray<T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        self.as_slice()
    }
}

impl<T: Pod> AsRef<[T]> for MappedArray<T> {
    fn as_ref(&self) -> &[T] {
        self.as_slice()
    }
}

/// A read-write array of `T`: a mapped file whose writes reach the file, a new output file,
/// a private copy-on-write view, or anonymous memory.
///
/// Derefs to `&mut [T]`. Everything [`MappedArray`] offers is available through
/// [`as_array`](MappedArrayMut::as_array) and the delegating methods below.
///
/// * [`open`](MappedArrayMut::open) maps an existing `.npy` read-write and takes an
///   **exclusive** advisory lock: a second writer (or reader) using outcore gets
///   [`Error::Locked`] within 100 ms, never after waiting for the other user.
/// * [`create`](MappedArrayMut::create) makes a new file under a temporary name in the
///   destination's directory, with its disk blocks allocated up front (a full disk is an
///   error here, not a `SIGBUS` later). It appears under its final name only on
///   [`persist`](MappedArrayMut::persist); dropping it unpersisted removes it.
/// * [`open_copy_on_write`](MappedArrayMut::open_copy_on_write): changes stay private.
/// * [`anonymous`](MappedArrayMut::anonymous): zeroed scratch memory backed by no file.
///
/// To sort one, use [`sort::sort_array`](crate::sort::sort_array), which sorts in memory
/// when the array fits the memory budget and out of core otherwise; `sort::par_sort` on a
/// mapping larger than memory thrashes.
///
/// # Examples
///
/// ```
/// use outcore::MappedArrayMut;
/// # let dir = tempfile::tempdir().unwrap();
/// # let path = dir.path().join("m.npy");
/// let mut m = MappedArrayMut::<i32>::create(&path, &[2, 3])?;
/// m.copy_from_slice(&[1, 2, 3, 4, 5, 6]);
/// let m = m.persist()?;
/// assert_eq!(m.as_array().view2()?[[1, 0]], 4);
/// drop(m);
///
/// let mut m = MappedArrayMut::<i32>::open(&path)?;
/// m[0] = 10;
/// m.flush()?;
/// # Ok::<(), outcore::Error>(())
/// ```
pub struct MappedArrayMut<T> {
    array: MappedArray<T>,
    /// For created arrays until persisted: the temporary file and the final name.
    pending: Option<(TempFile, PathBuf)>,
}

impl<T> std::fmt::Debug for MappedArrayMut<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MappedArrayMut")
            .field("array", &self.array)
            .field("pending", &self.pending.as_ref().map(|(_, p)| p))
            .finish()
    }
}

impl<T: Element> MappedArrayMut<T> {
    /// Opens an existing `.npy` file read-write (shared mapping: writes reach the file and
    /// other processes mapping it), holding an exclusive advisory lock.
    ///
    /// # Errors
    /// As [`MappedArray::open`]; [`Error::PermissionDenied`] for a read-only file;
    /// [`Error::Locked`] if any other outcore user has the file open.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        Self::open_npy(path.as_ref(), Mode::ReadWrite, Lock::Exclusive)
    }

    /// Opens a `.npy` file copy-on-write: reads see the file, writes stay in this process's
    /// private pages and never reach the file. Holds a shared lock, like a reader.
    ///
    /// # Errors
    /// As [`MappedArray::open`].
    pub fn open_copy_on_write(path: impl AsRef<Path>) -> Result<Self> {
        Self::open_npy(path.as_ref(), Mode::CopyOnWrite, Lock::Shared)
    }

    /// Opens a `.npy` file read-write **without** the exclusive lock, for cooperating
    /// processes that share one writable mapping (each writing its own part). It takes a
    /// shared lock, so ordinary outcore writers are still refused while it is open.
    ///
    /// # Safety
    /// While the array lives, no other process may write the elements this process reads or
    /// writes, none may truncate the file, and this process's writes must not land in
    /// elements that others read at the same time — including ordinary outcore readers
    /// ([`MappedArray::open`], copy-on-write), whose shared locks this one does not exclude:
    /// Rust assumes the memory behind `&[T]` and `&mut [T]` is not changed by anyone else. Synchronising the processes (who
    /// writes which range, when a range may be read) is the caller's duty.
    pub unsafe fn open_shared(path: impl AsRef<Path>) -> Result<Self> {
        Self::open_npy(path.as_ref(), Mode::ReadWrite, Lock::Shared)
    }

    fn open_npy(path: &Path, mode: Mode, lock: Lock) -> Result<Self> {
        let map = Mapping::open(path, mode, lock)?;
        let layout = npy_layout::<T>(&map, path)?;
        Ok(MappedArrayMut {
            array: MappedArray::from_parts(map, layout),
            pending: None,
        })
    }

    /// Creates a new, zero-filled `.npy` file of `shape` (C order) that will be named `path`
    /// once [`persist`](MappedArrayMut::persist)ed. Until then it lives under a temporary
    /// name in the same directory; dropping the array removes it.
    ///
    /// # Errors
    /// [`Error::DiskFull`] if the blocks cannot be allocated, [`Error::ShapeOverflow`],
    /// [`Error::NotFound`] / [`Error::PermissionDenied`] for the directory.
    pub fn create(path: impl AsRef<Path>, shape: &[usize]) -> Result<Self> {
        Self::create_ordered(path.as_ref(), shape, false, T::DTYPE)
    }

    /// [`create`](MappedArrayMut::create) in Fortran (column-major) order: the header says
    /// `'fortran_order': True` and the elements are laid out with the first axis varying
    /// fastest, as `np.asfortranarray` stores them ([`view_mut`](MappedArrayMut::view_mut)
    /// knows). For 0-d and 1-D shapes both orders are the same layout, and the header says
    /// `False`, as numpy writes it.
    ///
    /// # Errors
    /// As [`create`](MappedArrayMut::create).
    pub fn create_fortran(path: impl AsRef<Path>, shape: &[usize]) -> Result<Self> {
        Self::create_ordered(path.as_ref(), shape, shape.len() > 1, T::DTYPE)
    }

    /// [`create`](MappedArrayMut::create) with the header's dtype `dtype`, which `T` must
    /// accept: `|b1` for `u8` elements that hold booleans.
    #[cfg_attr(not(feature = "zarr"), allow(dead_code))]
    pub(crate) fn create_as(path: &Path, shape: &[usize], dtype: DType) -> Result<Self> {
        Self::create_ordered(path, shape, false, dtype)
    }

    pub(crate) fn create_ordered(
        path: &Path,
        shape: &[usize],
        fortran_order: bool,
        dtype: DType,
    ) -> Result<Self> {
        debug_assert!(T::accepts(dtype));
        let mut header = Header::new(dtype, shape);
        header.fortran_order = fortran_order;
        let data_len = header.data_len().ok_or_else(|| Error::ShapeOverflow {
            path: path.into(),
            shape: shape.to_vec(),
        })?;
        let head = header.to_bytes();
        let layout = Layout {
            offset: head.len(),
            len: header.num_elements().unwrap_or(0),
            shape: shape.to_vec(),
            fortran_order,
        };
        Self::create_file(path, &head, data_len, layout)
    }
}

impl<T: Pod> MappedArrayMut<T> {
    /// Opens a raw file of `T`s read-write, holding an exclusive lock.
    ///
    /// # Errors
    /// As [`MappedArray::open_raw`]; [`Error::PermissionDenied`] for a read-only file.
    pub fn open_raw(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let map = Mapping::open(path, Mode::ReadWrite, Lock::Exclusive)?;
        let layout = raw_layout::<T>(&map, path)?;
        Ok(MappedArrayMut {
            array: MappedArray::from_parts(map, layout),
            pending: None,
        })
    }

    /// Creates a new raw file of `len` zeroed `T`s, named `path` once persisted (see
    /// [`create`](MappedArrayMut::create)).
    ///
    /// # Errors
    /// As [`create`](MappedArrayMut::create).
    pub fn create_raw(path: impl AsRef<Path>, len: usize) -> Result<Self> {
        let path = path.as_ref();
        check_elem::<T>()?;
        let bytes =
            len.checked_mul(std::mem::size_of::<T>())
                .ok_or_else(|| Error::ShapeOverflow {
                    path: path.into(),
                    shape: vec![len],
                })?;
        Self::create_file(path, &[], bytes, Layout::raw(len))
    }

    fn create_file(path: &Path, head: &[u8], data_len: usize, layout: Layout) -> Result<Self> {
        check_elem::<T>()?;
        let total = (head.len() as u64)
            .checked_add(data_len as u64)
            .ok_or_else(|| Error::ShapeOverflow {
                path: path.into(),
                shape: layout.shape.clone(),
            })?;
        let tmp = TempFile::for_dest(path)?;
        tmp.allocate(total)?;
        let file = tmp
            .file()
            .try_clone()
            .map_err(|e| Error::io(tmp.path(), "dup", e))?;
        // The temporary file is new, under a name no other writer uses, and locked
        // exclusively where the filesystem has flock.
        let guard = Guard::from_lock(Lock::Exclusive, tmp.lock());
        let mut map = Mapping::map_file(file, tmp.path(), Mode::ReadWrite, guard)?;
        if let Some(bytes) = map.bytes_mut() {
            bytes[..head.len()].copy_from_slice(head);
        }
        Ok(MappedArrayMut {
            array: MappedArray::from_parts(map, layout),
            pending: Some((tmp, path.to_path_buf())),
        })
    }

    /// Zero-filled anonymous memory for `len` elements, backed by no file (swap-backed
    /// scratch space). Its shape is `[len]`.
    ///
    /// # Errors
    /// [`Error::Io`] if the memory cannot be mapped.
    pub fn anonymous(len: usize) -> Result<Self> {
        check_elem::<T>()?;
        let bytes =
            len.checked_mul(std::mem::size_of::<T>())
                .ok_or_else(|| Error::ShapeOverflow {
                    path: "<anonymous>".into(),
                    shape: vec![len],
                })?;
        Ok(MappedArrayMut {
            array: MappedArray::from_parts(Mapping::anonymous(bytes)?, Layout::raw(len)),
            pending: None,
        })
    }

    /// Finishes a [created](MappedArrayMut::create) array: writes it back, syncs it to disk
    /// and renames it to its final name (replacing any file there), atomically. Returns the
    /// array, still mapped and locked, now under its final name. For arrays that were not
    /// created this only flushes.
    ///
    /// # Errors
    /// I/O errors from `msync`, `fsync` or `rename`; on error the temporary file is removed
    /// and the destination is untouched.
    pub fn persist(mut self) -> Result<Self> {
        self.flush()?;
        if let Some((tmp, dest)) = self.pending.take() {
            tmp.persist(&dest)?;
            self.array.map.set_path(dest);
        }
        Ok(self)
    }

    /// Whether this array was created and is not yet persisted.
    pub fn is_pending(&self) -> bool {
        self.pending.is_some()
    }

    /// The final path of a pending array, else the file's path.
    pub fn path(&self) -> Option<&Path> {
        match &self.pending {
            Some((_, dest)) => Some(dest),
            None => self.array.path(),
        }
    }

    /// The read-only side of this array (shape, views, advice, ...).
    pub fn as_array(&self) -> &MappedArray<T> {
        &self.array
    }

    /// The elements, in the file's memory order.
    pub fn as_slice(&self) -> &[T] {
        self.array.as_slice()
    }

    /// The elements, mutable.
    pub fn as_mut_slice(&mut self) -> &mut [T] {
        let range = self.array.layout.byte_range::<T>();
        let bytes = self
            .array
            .map
            .bytes_mut()
            .expect("MappedArrayMut always holds a writable mapping");
        bytemuck::cast_slice_mut(&mut bytes[range])
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.array.len()
    }

    /// Whether the array has no elements.
    pub fn is_empty(&self) -> bool {
        self.array.is_empty()
    }

    /// The shape.
    pub fn shape(&self) -> &[usize] {
        self.array.shape()
    }

    /// An n-dimensional mutable view with the array's shape and memory order.
    pub fn view_mut(&mut self) -> ArrayViewMutD<'_, T> {
        let shape = nd_shape(&self.array.layout);
        ArrayViewMutD::from_shape(shape, self.as_mut_slice())
            .expect("shape and length validated on open")
    }

    /// A 1-D mutable view.
    ///
    /// # Errors
    /// [`Error::BadShape`] if the array is not 1-D.
    pub fn view1_mut(&mut self) -> Result<ArrayViewMut1<'_, T>> {
        let (path, shape) = (self.path().map(Path::to_path_buf), self.shape().to_vec());
        self.view_mut()
            .into_dimensionality()
            .map_err(|_| bad_dim(path.as_deref(), &shape, 1))
    }

    /// A 2-D mutable view.
    ///
    /// # Errors
    /// [`Error::BadShape`] if the array is not 2-D.
    pub fn view2_mut(&mut self) -> Result<ArrayViewMut2<'_, T>> {
        let (path, shape) = (self.path().map(Path::to_path_buf), self.shape().to_vec());
        self.view_mut()
            .into_dimensionality()
            .map_err(|_| bad_dim(path.as_deref(), &shape, 2))
    }

    /// See [`MappedArray::advise`].
    ///
    /// # Errors
    /// [`Error::Io`] if `madvise` fails.
    pub fn advise(&self, advice: Advice) -> Result<()> {
        self.array.advise(advice)
    }

    /// See [`MappedArray::release`]: written pages are written back, then dropped from
    /// memory; the data stays in the file.
    ///
    /// # Errors
    /// [`Error::Io`] if `msync`, `madvise` or `posix_fadvise` fails.
    pub fn release(&self, elems: Range<usize>) -> Result<()> {
        self.array.release(elems)
    }

    /// See [`MappedArray::check_size`].
    ///
    /// # Errors
    /// [`Error::Truncated`].
    pub fn check_size(&self) -> Result<()> {
        self.array.check_size()
    }

    /// Writes all changes back to the file and waits for the write-back (`msync(MS_SYNC)`).
    /// A no-op for copy-on-write and anonymous arrays.
    ///
    /// # Errors
    /// [`Error::Io`] if `msync` fails (for example a full disk on a filesystem that could
    /// not allocate blocks up front).
    pub fn flush(&self) -> Result<()> {
        self.flush_range(0..self.len())
    }

    /// Starts writing all changes back without waiting (`sync_file_range`; Linux's
    /// `msync(MS_ASYNC)` would start nothing). A no-op for copy-on-write arrays.
    ///
    /// # Errors
    /// [`Error::Io`] if `msync` fails.
    pub fn flush_async(&self) -> Result<()> {
        self.array
            .map
            .flush(self.array.elem_bytes(0..self.len()), false)
    }

    /// Writes the changes to the elements `elems` (clamped) back and waits.
    ///
    /// # Errors
    /// [`Error::Io`] if `msync` fails.
    pub fn flush_range(&self, elems: Range<usize>) -> Result<()> {
        let mut bytes = self.array.elem_bytes(elems);
        if bytes.start == self.array.layout.offset {
            // Include the header, which a created file wrote through the mapping.
            bytes.start = 0;
        }
        self.array.map.flush(bytes, true)
    }

    /// The file the elements live in (a pending array's temporary file), its path, and the
    /// byte offset of the first element: what an out-of-core sort reads. `None` for
    /// copy-on-write and anonymous arrays, whose changes reach no file.
    pub(crate) fn backing_file(&self) -> Option<(&File, &Path, u64)> {
        let map = &self.array.map;
        let file = map.shared_file()?;
        let path = map.path().expect("a file mapping has a path");
        Some((file, path, self.array.layout.offset as u64))
    }

    /// Puts `new` in place of the array's file and maps it. `new` is a complete, synced
    /// temporary file in the same directory with this array's header and length (a sorted
    /// copy of it). An opened file is replaced atomically: `new` takes the old file's owner
    /// and permission bits and is renamed over its path. A created array that is not
    /// persisted yet takes `new` as its pending file instead, and the old one is removed.
    /// On error the array and its file are unchanged, and `new` is removed.
    pub(crate) fn replace_file(&mut self, new: TempFile) -> Result<()> {
        let old_len = self.array.map.bytes().len() as u64;
        let new_len = new
            .file()
            .metadata()
            .map_err(|e| Error::io(new.path(), "stat", e))?
            .len();
        if new_len != old_len {
            return Err(Error::SizeMismatch {
                path: new.path().into(),
                expected: old_len,
                actual: new_len,
            });
        }
        let file = new
            .file()
            .try_clone()
            .map_err(|e| Error::io(new.path(), "dup", e))?;
        // The new file is under a fresh name no other writer uses, and locked exclusively
        // where the filesystem has flock; the lock goes with it under the old name, where it
        // keeps other outcore users out as the old file's lock did.
        let guard = Guard::from_lock(Lock::Exclusive, new.lock());
        let mut map = Mapping::map_file(file, new.path(), Mode::ReadWrite, guard)?;
        match self.pending.take() {
            Some((old, dest)) => {
                self.array.map = map;
                self.pending = Some((new, dest));
                drop(old);
            }
            None => {
                let dest = self
                    .array
                    .map
                    .path()
                    .expect("a file mapping has a path")
                    .to_path_buf();
                // Through a symbolic link, the link's target is replaced; the array keeps the
                // path it was opened with.
                let mut real = dest.clone();
                if let Some(old) = self.array.map.shared_file() {
                    real = same_file_at(&dest, old)?;
                    new.take_owner_and_mode(old, &real)?;
                }
                new.persist(&real)?;
                map.set_path(dest);
                self.array.map = map;
            }
        }
        Ok(())
    }

    /// Turns this into a read-only array (keeping the mapping and its lock). A pending
    /// created array is persisted first.
    ///
    /// # Errors
    /// As [`persist`](MappedArrayMut::persist).
    pub fn into_read_only(self) -> Result<MappedArray<T>> {
        let MappedArrayMut { array, pending } = self.persist()?;
        debug_assert!(pending.is_none());
        Ok(array)
    }
}

impl<T: Pod> Deref for MappedArrayMut<T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        self.as_slice()
    }
}

impl<T: Pod> DerefMut for MappedArrayMut<T> {
    fn deref_mut(&mut self) -> &mut [T] {
        self.as_mut_slice()
    }
}

impl<T: Pod> AsRef<[T]> for MappedArrayMut<T> {
    fn as_ref(&self) -> &[T] {
        self.as_slice()
    }
}

impl<T: Pod> AsMut<[T]> for MappedArrayMut<T> {
    fn as_mut(&mut self) -> &mut [T] {
        self.as_mut_slice()
    }
}

/// The real path of `path` (symbolic links resolved) if it names the file `file` is open on
/// (same device and inode); [`Error::FileReplaced`] if it names another file or none. A
/// rename over the returned path replaces exactly the file the caller has open, and a link
/// is not replaced by a regular file.
fn same_file_at(path: &Path, file: &std::fs::File) -> Result<PathBuf> {
    use std::os::unix::fs::MetadataExt;
    let replaced = || Error::FileReplaced {
        path: path.to_path_buf(),
    };
    let real = std::fs::canonicalize(path).map_err(|_| replaced())?;
    let at = std::fs::metadata(&real).map_err(|_| replaced())?;
    let open = file.metadata().map_err(|e| Error::io(path, "stat", e))?;
    if (at.dev(), at.ino()) == (open.dev(), open.ino()) {
        Ok(real)
    } else {
        Err(replaced())
    }
}
