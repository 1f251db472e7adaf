//! Element types: the Rust types that have a `.npy` dtype.
//!
//! [`DType`] names a numpy dtype outcore understands; [`Element`] ties a Rust type to its
//! dtype. Raw (headerless) files accept any [`bytemuck::Pod`] type, including user records;
//! `.npy` files need an [`Element`].

use std::fmt;

/// A numpy dtype that outcore reads and writes (little-endian, native layout).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DType {
    /// `|b1`, numpy's `bool`: one byte, 0 or 1. Read as `u8`.
    Bool,
    /// `|u1`
    U8,
    /// `<u2`
    U16,
    /// `<u4`
    U32,
    /// `<u8`
    U64,
    /// `|i1`
    I8,
    /// `<i2`
    I16,
    /// `<i4`
    I32,
    /// `<i8`
    I64,
    /// `<f4`
    F32,
    /// `<f8`
    F64,
}

impl DType {
    /// Every supported dtype.
    pub const ALL: [DType; 11] = [
        DType::Bool,
        DType::U8,
        DType::U16,
        DType::U32,
        DType::U64,
        DType::I8,
        DType::I16,
        DType::I32,
        DType::I64,
        DType::F32,
        DType::F64,
    ];

    /// The descriptor numpy writes in a `.npy` header, e.g. `"<f8"`.
    pub fn descr(self) -> &'static str {
        match self {
            DType::Bool => "|b1",
            DType::U8 => "|u1",
            DType::U16 => "<u2",
            DType::U32 => "<u4",
            DType::U64 => "<u8",
            DType::I8 => "|i1",
            DType::I16 => "<i2",
            DType::I32 => "<i4",
            DType::I64 => "<i8",
            DType::F32 => "<f4",
            DType::F64 => "<f8",
        }
    }

    /// The short name used on command lines: `u8`, `f64`, `bool`, ...
    pub fn name(self) -> &'static str {
        match self {
            DType::Bool => "bool",
            DType::U8 => "u8",
            DType::U16 => "u16",
            DType::U32 => "u32",
            DType::U64 => "u64",
            DType::I8 => "i8",
            DType::I16 => "i16",
            DType::I32 => "i32",
            DType::I64 => "i64",
            DType::F32 => "f32",
            DType::F64 => "f64",
        }
    }

    /// Parses a short name (`"u64"`, `"f32"`, `"bool"`).
    pub fn from_name(name: &str) -> Option<DType> {
        DType::ALL.into_iter().find(|d| d.name() == name)
    }

    /// Size of one element in bytes.
    pub fn size(self) -> usize {
        match self {
            DType::Bool | DType::U8 | DType::I8 => 1,
            DType::U16 | DType::I16 => 2,
            DType::U32 | DType::I32 | DType::F32 => 4,
            DType::U64 | DType::I64 | DType::F64 => 8,
        }
    }

    /// Parses a numpy descriptor. Accepts the spellings numpy writes for native
    /// little-endian data (`<`, `|`, and `=` is not written by numpy so it is not accepted).
    ///
    /// Returns `None` for anything else; [`describe_unsupported`] explains why.
    pub fn from_descr(descr: &str) -> Option<DType> {
        let d = match descr {
            "|b1" => DType::Bool,
            "|u1" | "<u1" => DType::U8,
            "<u2" => DType::U16,
            "<u4" => DType::U32,
            "<u8" => DType::U64,
            "|i1" | "<i1" => DType::I8,
            "<i2" => DType::I16,
            "<i4" => DType::I32,
            "<i8" => DType::I64,
            "<f4" => DType::F32,
            "<f8" => DType::F64,
            _ => return None,
        };
        Some(d)
    }
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.name(), self.descr())
    }
}

/// A hint for a descriptor that [`DType::from_descr`] rejected, starting with `"; "`, or
/// an empty string when there is nothing useful to say.
pub fn describe_unsupported(descr: &str) -> String {
    let b = descr.as_bytes();
    if b.first() == Some(&b'>') {
        let le = format!("<{}", &descr[1..]);
        return format!("; the data is big-endian: convert it in numpy with a.astype('{le}')");
    }
    match b.get(1) {
        Some(b'c') => "; complex numbers are not supported: store real and imaginary parts as two float arrays".into(),
        Some(b'O') => "; object arrays hold Python pointers, not data, and cannot be mapped".into(),
        Some(b'f') => "; only 32- and 64-bit floats are supported".into(),
        Some(b'U') | Some(b'S') => "; strings are not supported; use a raw file of fixed-size records".into(),
        _ => String::new(),
    }
}

mod sealed {
    pub trait Sealed {}
}

/// A Rust type with a `.npy` dtype: `u8`, `u16`, `u32`, `u64`, `i8`, `i16`, `i32`, `i64`,
/// `f32`, `f64`.
///
/// The trait is sealed; for other plain-old-data types use raw files.
pub trait Element:
    bytemuck::Pod + Send + Sync + PartialOrd + fmt::Debug + Default + sealed::Sealed + 'static
{
    /// The dtype this type is stored as.
    const DTYPE: DType;

    /// Whether a file of dtype `d` can be viewed as `Self` (exact match, plus `|b1` as `u8`).
    fn accepts(d: DType) -> bool {
        d == Self::DTYPE || (Self::DTYPE == DType::U8 && d == DType::Bool)
    }
}

macro_rules! element {
    ($($t:ty => $d:ident),* $(,)?) => {$(
        impl sealed::Sealed for $t {}
        impl Element for $t {
            const DTYPE: DType = DType::$d;
        }
    )*};
}

element! {
    u8 => U8, u16 => U16, u32 => U32, u64 => U64,
    i8 => I8, i16 => I16, i32 => I32, i64 => I64,
    f32 => F32, f64 => F64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descr_round_trips() {
        for d in DType::ALL {
            assert_eq!(DType::from_descr(d.descr()), Some(d));
            assert_eq!(DType::from_name(d.name()), Some(d));
        }
    }

    #[test]
    fn sizes_match_rust_types() {
        assert_eq!(DType::U16.size(), std::mem::size_of::<u16>());
        assert_eq!(DType::F64.size(), std::mem::size_of::<f64>());
        assert_eq!(<i32 as Element>::DTYPE.size(), 4);
    }

    #[test]
    fn big_endian_gets_a_hint() {
        assert_eq!(DType::from_descr(">f8"), None);
        assert!(describe_unsupported(">f8").contains("astype('<f8')"));
    }

    #[test]
    fn bool_reads_as_u8_only() {
        assert!(u8::accepts(DType::Bool));
        assert!(!i8::accepts(DType::Bool));
        assert!(!u16::accepts(DType::U8));
    }
}
