//! Arrays whose element type is known only at run time.
//!
//! A program that takes a `.npy` path from its user does not know the dtype at compile time.
//! [`open_any`] reads the header and opens the file as the matching [`MappedArray<T>`],
//! wrapped in [`AnyArray`]; [`with_any!`](crate::with_any) then runs generic code on
//! whichever type it holds, and [`with_dtype!`](crate::with_dtype) does the same from a bare
//! [`DType`] (for a raw file, or for a type to create). These two macros are the crate's one
//! dispatch over dtypes: everything that handles a dtype chosen at run time goes through
//! them, so supporting a new dtype means changing them and nothing else.
//!
//! ```
//! use outcore::{kernels, open_any, with_any, MappedArrayMut};
//! # let dir = tempfile::tempdir().unwrap();
//! # let path = dir.path().join("x.npy");
//! # let mut a = MappedArrayMut::<i16>::create(&path, &[4])?;
//! # a.copy_from_slice(&[3, -1, 4, 1]);
//! # a.persist()?;
//! let any = open_any(&path)?; // an i16 file, say
//! assert_eq!(any.dtype(), outcore::DType::I16);
//! // `a` is a `MappedArray<T>` for the file's `T`: generic code runs on it.
//! let max: f64 = with_any!(&any, a => kernels::max(&a).map_or(f64::NAN, |m| m as f64));
//! assert_eq!(max, 4.0);
//! # Ok::<(), outcore::Error>(())
//! ```

use std::path::Path;

use crate::array::MappedArray;
use crate::element::DType;
use crate::error::Result;
use crate::npy::Header;
use crate::{with_any, with_dtype};

/// A read-only mapped array of any supported dtype: one variant per [`DType`], each holding
/// the [`MappedArray`] of the matching Rust type (`Bool` holds `u8`s, numpy's layout of
/// `bool`). Use [`with_any!`](crate::with_any) to run generic code on the array inside.
#[derive(Debug)]
#[non_exhaustive]
pub enum AnyArray {
    /// `|b1`, viewed as `u8` (0 or 1).
    Bool(MappedArray<u8>),
    /// `|u1`
    U8(MappedArray<u8>),
    /// `<u2`
    U16(MappedArray<u16>),
    /// `<u4`
    U32(MappedArray<u32>),
    /// `<u8`
    U64(MappedArray<u64>),
    /// `|i1`
    I8(MappedArray<i8>),
    /// `<i2`
    I16(MappedArray<i16>),
    /// `<i4`
    I32(MappedArray<i32>),
    /// `<i8`
    I64(MappedArray<i64>),
    /// `<f4`
    F32(MappedArray<f32>),
    /// `<f8`
    F64(MappedArray<f64>),
}

/// Opens the `.npy` file `path` read-only as whatever dtype its header declares.
///
/// # Errors
/// As [`MappedArray::open`]: [`Error::NotFound`](crate::Error::NotFound), [`Error::BadMagic`](crate::Error::BadMagic) (not a `.npy`; open a
/// raw file with [`open_any_raw`]), the header errors, [`Error::UnsupportedDtype`](crate::Error::UnsupportedDtype),
/// [`Error::Locked`](crate::Error::Locked), ...
pub fn open_any(path: impl AsRef<Path>) -> Result<AnyArray> {
    let path = path.as_ref();
    let header = Header::read(path)?;
    let any = with_dtype!(header.dtype, T => AnyArray::from(MappedArray::<T>::open(path)?));
    Ok(if header.dtype == DType::Bool {
        any.into_bool()
    } else {
        any
    })
}

/// Opens the raw (headerless) file `path` read-only as a 1-D array of `dtype`.
///
/// # Errors
/// As [`MappedArray::open_raw`]: [`Error::NotFound`](crate::Error::NotFound), [`Error::NotAMultiple`](crate::Error::NotAMultiple) (the size is
/// not a whole number of elements), [`Error::Locked`](crate::Error::Locked), ...
pub fn open_any_raw(path: impl AsRef<Path>, dtype: DType) -> Result<AnyArray> {
    let path = path.as_ref();
    let any = with_dtype!(dtype, T => AnyArray::from(MappedArray::<T>::open_raw(path)?));
    Ok(if dtype == DType::Bool {
        any.into_bool()
    } else {
        any
    })
}

impl AnyArray {
    /// The dtype of the elements.
    pub fn dtype(&self) -> DType {
        match self {
            AnyArray::Bool(_) => DType::Bool,
            AnyArray::U8(_) => DType::U8,
            AnyArray::U16(_) => DType::U16,
            AnyArray::U32(_) => DType::U32,
            AnyArray::U64(_) => DType::U64,
            AnyArray::I8(_) => DType::I8,
            AnyArray::I16(_) => DType::I16,
            AnyArray::I32(_) => DType::I32,
            AnyArray::I64(_) => DType::I64,
            AnyArray::F32(_) => DType::F32,
            AnyArray::F64(_) => DType::F64,
        }
    }

    /// The shape (for a raw file, its length as the only axis).
    pub fn shape(&self) -> &[usize] {
        with_any!(self, a => a.shape())
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        with_any!(self, a => a.len())
    }

    /// Whether the array has no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether a 2-D or higher array is stored in Fortran (column-major) order.
    pub fn is_fortran_order(&self) -> bool {
        with_any!(self, a => a.is_fortran_order())
    }

    /// The file's path.
    pub fn path(&self) -> Option<&Path> {
        with_any!(self, a => a.path())
    }

    /// Bytes of data (not counting a `.npy` header).
    pub fn data_bytes(&self) -> usize {
        self.len() * self.dtype().size()
    }

    /// See [`MappedArray::release`]: drops the array's pages from memory.
    ///
    /// # Errors
    /// As [`MappedArray::release`].
    pub fn release_all(&self) -> Result<()> {
        with_any!(self, a => a.release(0..a.len()))
    }

    /// See [`MappedArray::resident_bytes`]: `(resident, total)` bytes of the file in memory
    /// now, without faulting anything in.
    ///
    /// # Errors
    /// As [`MappedArray::resident_bytes`].
    pub fn resident_bytes(&self) -> Result<(u64, u64)> {
        with_any!(self, a => a.resident_bytes())
    }

    fn into_bool(self) -> AnyArray {
        match self {
            AnyArray::U8(a) => AnyArray::Bool(a),
            other => other,
        }
    }
}

macro_rules! from_mapped {
    ($($t:ty => $v:ident),* $(,)?) => {$(
        impl From<MappedArray<$t>> for AnyArray {
            fn from(a: MappedArray<$t>) -> AnyArray {
                AnyArray::$v(a)
            }
        }
    )*};
}

from_mapped! {
    u8 => U8, u16 => U16, u32 => U32, u64 => U64,
    i8 => I8, i16 => I16, i32 => I32, i64 => I64,
    f32 => F32, f64 => F64,
}

/// Runs an expression with a type alias bound to the Rust type of a [`DType`]: the crate's
/// one dispatch from a run-time dtype to generic code.
///
/// `with_dtype!(dtype, T => expr)` evaluates `expr` with `T` the element type of `dtype`
/// (`u8` for `Bool`). Every arm must have the same type.
///
/// ```
/// use outcore::{with_dtype, DType};
/// let d = DType::from_name("f32").unwrap();
/// let size = with_dtype!(d, T => std::mem::size_of::<T>());
/// assert_eq!(size, 4);
/// ```
#[macro_export]
macro_rules! with_dtype {
    ($dtype:expr, $t:ident => $body:expr) => {{
        #[allow(unreachable_patterns, clippy::redundant_closure_call)]
        match $dtype {
            $crate::DType::Bool | $crate::DType::U8 => {
                type $t = u8;
                $body
            }
            $crate::DType::U16 => {
                type $t = u16;
                $body
            }
            $crate::DType::U32 => {
                type $t = u32;
                $body
            }
            $crate::DType::U64 => {
                type $t = u64;
                $body
            }
            $crate::DType::I8 => {
                type $t = i8;
                $body
            }
            $crate::DType::I16 => {
                type $t = i16;
                $body
            }
            $crate::DType::I32 => {
                type $t = i32;
                $body
            }
            $crate::DType::I64 => {
                type $t = i64;
                $body
            }
            $crate::DType::F32 => {
                type $t = f32;
                $body
            }
            $crate::DType::F64 => {
                type $t = f64;
                $body
            }
            other => unreachable!("outcore::with_dtype! does not know {other:?}"),
        }
    }};
}

/// Runs an expression on the [`MappedArray<T>`](crate::MappedArray) inside an
/// [`AnyArray`], whatever its `T`: `with_any!(&any, a => expr)` binds `a` to
/// `&MappedArray<T>` (or, given an owned `AnyArray`, to the `MappedArray<T>` itself) and
/// evaluates `expr`, which must have the same type for every `T`. The element type is also
/// available by name: `with_any!(&any, a: T => expr)`.
///
/// ```
/// use outcore::{open_any, with_any, MappedArrayMut};
/// # let dir = tempfile::tempdir().unwrap();
/// # let path = dir.path().join("x.npy");
/// # MappedArrayMut::<u32>::create(&path, &[3])?.persist()?;
/// let any = open_any(&path)?;
/// let bytes = with_any!(&any, a: T => a.len() * std::mem::size_of::<T>());
/// assert_eq!(bytes, 12);
/// # Ok::<(), outcore::Error>(())
/// ```
#[macro_export]
macro_rules! with_any {
    ($any:expr, $a:ident => $body:expr) => {
        $crate::with_any!($any, $a: _OutcoreElem => $body)
    };
    ($any:expr, $a:ident : $t:ident => $body:expr) => {{
        #[allow(unreachable_patterns, unused_imports)]
        match $any {
            $crate::AnyArray::Bool($a) | $crate::AnyArray::U8($a) => {
                #[allow(dead_code)]
                type $t = u8;
                $body
            }
            $crate::AnyArray::U16($a) => {
                #[allow(dead_code)]
                type $t = u16;
                $body
            }
            $crate::AnyArray::U32($a) => {
                #[allow(dead_code)]
                type $t = u32;
                $body
            }
            $crate::AnyArray::U64($a) => {
                #[allow(dead_code)]
                type $t = u64;
                $body
            }
            $crate::AnyArray::I8($a) => {
                #[allow(dead_code)]
                type $t = i8;
                $body
            }
            $crate::AnyArray::I16($a) => {
                #[allow(dead_code)]
                type $t = i16;
                $body
            }
            $crate::AnyArray::I32($a) => {
                #[allow(dead_code)]
                type $t = i32;
                $body
            }
            $crate::AnyArray::I64($a) => {
                #[allow(dead_code)]
                type $t = i64;
                $body
            }
            $crate::AnyArray::F32($a) => {
                #[allow(dead_code)]
                type $t = f32;
                $body
            }
            $crate::AnyArray::F64($a) => {
                #[allow(dead_code)]
                type $t = f64;
                $body
            }
            _ => unreachable!("outcore::with_any! does not know this AnyArray variant"),
        }
    }};
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Error, MappedArrayMut};

    #[test]
    fn every_dtype_opens_as_itself() {
        let dir = tempfile::tempdir().unwrap();
        for d in DType::ALL {
            let p = dir.path().join(format!("{}.npy", d.name()));
            with_dtype!(d, T => {
                let mut a = MappedArrayMut::<T>::create(&p, &[2, 3]).unwrap();
                a.as_mut_slice()[5] = bytemuck::cast([1u8; std::mem::size_of::<T>()]);
                a.persist().unwrap();
            });
            if d == DType::Bool {
                // create() writes u8 as |u1; numpy's bool is |b1 with the same layout.
                let mut bytes = std::fs::read(&p).unwrap();
                let pos = bytes.windows(3).position(|w| w == b"|u1").unwrap();
                bytes[pos..pos + 3].copy_from_slice(b"|b1");
                std::fs::write(&p, &bytes).unwrap();
            }
            let any = open_any(&p).unwrap();
            assert_eq!(any.dtype(), d);
            assert_eq!(any.shape(), &[2, 3]);
            assert_eq!(any.len(), 6);
            assert_eq!(any.data_bytes(), 6 * d.size());
            let last = with_any!(&any, a => bytemuck::bytes_of(&a[5]).to_vec());
            assert_eq!(last, vec![1u8; d.size()]);
        }
    }

    #[test]
    #[allow(clippy::unnecessary_cast)] // `x as u64` is a no-op in the macro's u64 arm only
    fn raw_files_take_the_given_dtype() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.raw");
        std::fs::write(&p, [1u8, 0, 2, 0, 3, 0]).unwrap();
        let any = open_any_raw(&p, DType::U16).unwrap();
        assert_eq!(any.dtype(), DType::U16);
        // `as u64` is a no-op in the u64 arm only.
        #[allow(clippy::unnecessary_cast)]
        let v = with_any!(&any, a => a.iter().map(|&x| x as u64).collect::<Vec<_>>());
        assert_eq!(v, vec![1, 2, 3]);
        assert!(matches!(
            open_any_raw(&p, DType::U32),
            Err(Error::NotAMultiple { .. })
        ));
    }
}
