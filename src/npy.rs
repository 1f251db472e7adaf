//! The `.npy` header: parse versions 1.0, 2.0 and 3.0; write 1.0 (2.0 when the header needs it).
//!
//! A `.npy` file is the magic string `\x93NUMPY`, two version bytes, a little-endian header
//! length (`u16` in version 1.0, `u32` in 2.0 and 3.0), and the header: a Python dict
//! literal such as `{'descr': '<f8', 'fortran_order': False, 'shape': (3, 5), }`, padded with
//! spaces and a newline so that the data starts on a 64-byte boundary. The data follows.
//!
//! The header is a Python literal, but it is parsed, never evaluated: the parser accepts
//! exactly the three keys numpy writes with the value forms numpy writes (a string, `True` /
//! `False`, a tuple of non-negative integers) and rejects everything else. The header length
//! is bounded by [`MAX_HEADER_LEN`], so a hostile file cannot make outcore read or allocate
//! much before it is rejected.

use std::io::Read;
use std::path::Path;

use crate::element::{describe_unsupported, DType};
use crate::error::{Error, Result};

/// The magic string every `.npy` file starts with.
pub const MAGIC: &[u8; 6] = b"\x93NUMPY";

/// The longest header outcore accepts, in bytes (numpy's own default limit is 10 000).
pub const MAX_HEADER_LEN: usize = 1 << 16;

/// The most dimensions an array may have (numpy's limit).
pub const MAX_DIMS: usize = 64;

/// Data in files outcore writes starts at a multiple of this many bytes, as in numpy.
pub const DATA_ALIGN: usize = 64;

/// numpy leaves room in the header for the growing axis's length to gain digits, so that a
/// file can be appended to and its header rewritten in place; outcore does the same.
const GROWTH_AXIS_MAX_DIGITS: usize = 21;

/// A parsed `.npy` header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    /// The element type.
    pub dtype: DType,
    /// Whether the data is in Fortran (column-major) order.
    pub fortran_order: bool,
    /// The array's shape; `[]` for a 0-d array (one element).
    pub shape: Vec<usize>,
    /// Byte offset of the data from the start of the file.
    pub data_offset: usize,
}

impl Header {
    /// A header for a C-ordered array of `dtype` and `shape`; `data_offset` is filled in by
    /// [`Header::to_bytes`]'s layout.
    pub fn new(dtype: DType, shape: &[usize]) -> Header {
        let mut h = Header {
            dtype,
            fortran_order: false,
            shape: shape.to_vec(),
            data_offset: 0,
        };
        h.data_offset = h.to_bytes().len();
        h
    }

    /// Number of elements (the product of the shape; 1 for a 0-d array), or `None` on
    /// overflow.
    pub fn num_elements(&self) -> Option<usize> {
        self.shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d))
    }

    /// Bytes of data the header implies, or `None` if the shape is beyond what can be
    /// mapped: more than [`MAX_DIMS`] dimensions (numpy's own limit), or a size (of the data,
    /// or of the non-empty axes alone, which ndarray views need) above `isize::MAX` bytes.
    pub fn data_len(&self) -> Option<usize> {
        if self.shape.len() > MAX_DIMS {
            return None;
        }
        let limit = isize::MAX as usize - MAX_HEADER_LEN - 12;
        let bytes = self.num_elements()?.checked_mul(self.dtype.size())?;
        let nonzero = self
            .shape
            .iter()
            .filter(|&&d| d != 0)
            .try_fold(self.dtype.size(), |a, &d| a.checked_mul(d))?;
        (bytes <= limit && nonzero <= limit).then_some(bytes)
    }

    /// Reads and parses the header of the `.npy` file at `path` without mapping it.
    ///
    /// # Errors
    /// As [`Header::parse`], plus I/O errors opening or reading the file.
    pub fn read(path: impl AsRef<Path>) -> Result<Header> {
        let path = path.as_ref();
        let file = std::fs::File::open(path).map_err(|e| Error::io(path, "open", e))?;
        let file_len = file
            .metadata()
            .map_err(|e| Error::io(path, "stat", e))?
            .len();
        let mut buf = Vec::new();
        file.take((MAX_HEADER_LEN + 12) as u64)
            .read_to_end(&mut buf)
            .map_err(|e| Error::io(path, "read", e))?;
        Header::parse(&buf, file_len, path)
    }

    /// Parses a header from the first bytes of a file whose total size is `file_len`.
    /// `bytes` may be the whole file or just its start (at least the header).
    /// `path` is only used in error messages.
    ///
    /// The data size is not checked against `file_len` here; that is the mapping's job.
    ///
    /// # Errors
    /// [`Error::BadMagic`], [`Error::UnsupportedVersion`], [`Error::TruncatedHeader`],
    /// [`Error::HeaderTooLong`], [`Error::MalformedHeader`], [`Error::UnsupportedDtype`],
    /// [`Error::ShapeOverflow`].
    pub fn parse(bytes: &[u8], file_len: u64, path: &Path) -> Result<Header> {
        let have = bytes.len().min(file_len.try_into().unwrap_or(usize::MAX));
        let bytes = &bytes[..have];
        let magic_seen = bytes.len().min(MAGIC.len());
        if bytes[..magic_seen] != MAGIC[..magic_seen] {
            return Err(Error::BadMagic { path: path.into() });
        }
        let truncated = |needed: usize| Error::TruncatedHeader {
            path: path.into(),
            needed: needed as u64,
            got: file_len,
        };
        if bytes.len() < 10 {
            return Err(truncated(10));
        }
        let (major, minor) = (bytes[6], bytes[7]);
        let (prelude, header_len) = match (major, minor) {
            (1, 0) => (10, u16::from_le_bytes([bytes[8], bytes[9]]) as usize),
            (2, 0) | (3, 0) => {
                if bytes.len() < 12 {
                    return Err(truncated(12));
                }
                let n = u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]);
                (12, n as usize)
            }
            _ => {
                return Err(Error::UnsupportedVersion {
                    path: path.into(),
                    major,
                    minor,
                })
            }
        };
        if header_len > MAX_HEADER_LEN {
            return Err(Error::HeaderTooLong {
                path: path.into(),
                len: header_len as u64,
                max: MAX_HEADER_LEN as u64,
            });
        }
        let data_offset = prelude + header_len;
        if bytes.len() < data_offset {
            return Err(truncated(data_offset));
        }
        let raw = &bytes[prelude..data_offset];
        // Versions 1 and 2 are latin-1, 3 is UTF-8. Everything numpy writes for the dtypes
        // outcore supports is ASCII; a non-UTF-8 header cannot hold a supported dtype.
        let text = std::str::from_utf8(raw).map_err(|_| Error::MalformedHeader {
            path: path.into(),
            reason: "the header is not text".into(),
        })?;
        let dict = parse_dict(text).map_err(|reason| match reason {
            DictError::Structured(d) => Error::UnsupportedDtype {
                path: path.into(),
                descr: d,
                hint: "; structured (record) dtypes are not supported: save each field as its own array, or use a raw file of records".into(),
            },
            DictError::Malformed(reason) => Error::MalformedHeader {
                path: path.into(),
                reason,
            },
        })?;
        let dtype = DType::from_descr(&dict.descr).ok_or_else(|| Error::UnsupportedDtype {
            path: path.into(),
            hint: describe_unsupported(&dict.descr),
            descr: dict.descr.clone(),
        })?;
        let header = Header {
            dtype,
            fortran_order: dict.fortran_order,
            shape: dict.shape,
            data_offset,
        };
        if header.data_len().is_none() {
            return Err(Error::ShapeOverflow {
                path: path.into(),
                shape: header.shape,
            });
        }
        Ok(header)
    }

    /// The header bytes numpy would write for this dtype, order and shape: version 1.0, or
    /// 2.0 if the header does not fit in 65 535 bytes; padded so that the data starts at a
    /// multiple of [`DATA_ALIGN`]. (`data_offset` is ignored; the result's length is the
    /// data offset.)
    pub fn to_bytes(&self) -> Vec<u8> {
        let shape = match self.shape.as_slice() {
            [] => "()".to_string(),
            [d] => format!("({d},)"),
            ds => {
                let parts: Vec<String> = ds.iter().map(|d| d.to_string()).collect();
                format!("({})", parts.join(", "))
            }
        };
        let mut dict = format!(
            "{{'descr': '{}', 'fortran_order': {}, 'shape': {}, }}",
            self.dtype.descr(),
            if self.fortran_order { "True" } else { "False" },
            shape
        );
        let growing = if self.fortran_order {
            self.shape.last()
        } else {
            self.shape.first()
        };
        if let Some(d) = growing {
            let digits = d.to_string().len();
            dict.push_str(&" ".repeat(GROWTH_AXIS_MAX_DIGITS.saturating_sub(digits)));
        }
        let (version, prelude) = if dict.len() + 1 + 10 + DATA_ALIGN <= u16::MAX as usize {
            (1u8, 10)
        } else {
            (2u8, 12)
        };
        let unpadded = prelude + dict.len() + 1;
        let pad = (DATA_ALIGN - unpadded % DATA_ALIGN) % DATA_ALIGN;
        let header_len = dict.len() + pad + 1;
        let mut out = Vec::with_capacity(prelude + header_len);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&[version, 0]);
        if version == 1 {
            out.extend_from_slice(&(header_len as u16).to_le_bytes());
        } else {
            out.extend_from_slice(&(header_len as u32).to_le_bytes());
        }
        out.extend_from_slice(dict.as_bytes());
        out.extend(std::iter::repeat_n(b' ', pad));
        out.push(b'\n');
        out
    }
}

struct Dict {
    descr: String,
    fortran_order: bool,
    shape: Vec<usize>,
}

enum DictError {
    Structured(String),
    Malformed(String),
}

fn malformed(msg: impl Into<String>) -> DictError {
    DictError::Malformed(msg.into())
}

/// A cursor over the header text.
struct Lexer<'a> {
    s: &'a [u8],
    pos: usize,
}

impl Lexer<'_> {
    fn skip_ws(&mut self) {
        while self.pos < self.s.len() && self.s[self.pos].is_ascii_whitespace() {
            self.pos += 1;
        }
    }

    fn peek(&mut self) -> Option<u8> {
        self.skip_ws();
        self.s.get(self.pos).copied()
    }

    fn eat(&mut self, c: u8) -> bool {
        if self.peek() == Some(c) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, c: u8) -> std::result::Result<(), DictError> {
        if self.eat(c) {
            Ok(())
        } else {
            Err(malformed(format!(
                "expected '{}' at byte {}",
                c as char, self.pos
            )))
        }
    }

    fn string(&mut self) -> std::result::Result<String, DictError> {
        let quote = match self.peek() {
            Some(q @ (b'\'' | b'"')) => q,
            _ => return Err(malformed(format!("expected a string at byte {}", self.pos))),
        };
        self.pos += 1;
        let start = self.pos;
        while self.pos < self.s.len() && self.s[self.pos] != quote {
            if self.s[self.pos] == b'\\' {
                return Err(malformed("escape sequences in strings are not supported"));
            }
            self.pos += 1;
        }
        if self.pos >= self.s.len() {
            return Err(malformed("unterminated string"));
        }
        let out = String::from_utf8_lossy(&self.s[start..self.pos]).into_owned();
        self.pos += 1;
        Ok(out)
    }

    fn word(&mut self) -> &[u8] {
        self.skip_ws();
        let start = self.pos;
        while self.pos < self.s.len() && self.s[self.pos].is_ascii_alphanumeric() {
            self.pos += 1;
        }
        &self.s[start..self.pos]
    }

    /// A non-negative integer, with an optional Python 2 `L` suffix.
    fn dim(&mut self) -> std::result::Result<usize, DictError> {
        let w = self.word();
        let digits = w.strip_suffix(b"L").unwrap_or(w);
        if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
            return Err(malformed(format!(
                "shape entries must be non-negative integers, found {:?}",
                String::from_utf8_lossy(w)
            )));
        }
        std::str::from_utf8(digits)
            .ok()
            .and_then(|d| d.parse::<usize>().ok())
            .ok_or_else(|| malformed("a shape entry does not fit in the address space"))
    }

    /// The tail of a bracketed value, to report a structured dtype.
    fn rest_of_list(&mut self) -> String {
        let start = self.pos;
        let mut depth = 0i32;
        while self.pos < self.s.len() {
            match self.s[self.pos] {
                b'[' | b'(' => depth += 1,
                b']' | b')' => {
                    depth -= 1;
                    if depth == 0 {
                        self.pos += 1;
                        break;
                    }
                }
                _ => {}
            }
            self.pos += 1;
        }
        String::from_utf8_lossy(&self.s[start..self.pos]).into_owned()
    }
}

fn parse_dict(text: &str) -> std::result::Result<Dict, DictError> {
    let mut lx = Lexer {
        s: text.as_bytes(),
        pos: 0,
    };
    let mut descr = None;
    let mut fortran = None;
    let mut shape = None;
    lx.expect(b'{')?;
    loop {
        if lx.eat(b'}') {
            break;
        }
        let key = lx.string()?;
        lx.expect(b':')?;
        match key.as_str() {
            "descr" if descr.is_none() => {
                if lx.peek() == Some(b'[') {
                    return Err(DictError::Structured(lx.rest_of_list()));
                }
                descr = Some(lx.string()?);
            }
            "fortran_order" if fortran.is_none() => {
                fortran = Some(match lx.word() {
                    b"True" => true,
                    b"False" => false,
                    w => {
                        return Err(malformed(format!(
                            "fortran_order must be True or False, found {:?}",
                            String::from_utf8_lossy(w)
                        )))
                    }
                });
            }
            "shape" if shape.is_none() => {
                lx.expect(b'(')?;
                let mut dims = Vec::new();
                while !lx.eat(b')') {
                    if dims.len() >= MAX_DIMS {
                        return Err(malformed("more than 64 dimensions"));
                    }
                    dims.push(lx.dim()?);
                    if !lx.eat(b',') {
                        lx.expect(b')')?;
                        break;
                    }
                }
                shape = Some(dims);
            }
            "descr" | "fortran_order" | "shape" => {
                return Err(malformed(format!("key '{key}' appears twice")))
            }
            other => return Err(malformed(format!("unexpected key '{other}'"))),
        }
        if !lx.eat(b',') {
            lx.expect(b'}')?;
            break;
        }
    }
    if lx.peek().is_some() {
        return Err(malformed("text after the closing brace"));
    }
    match (descr, fortran, shape) {
        (Some(descr), Some(fortran_order), Some(shape)) => Ok(Dict {
            descr,
            fortran_order,
            shape,
        }),
        _ => Err(malformed(
            "the header must have the keys 'descr', 'fortran_order' and 'shape'",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(bytes: &[u8]) -> Result<Header> {
        Header::parse(bytes, bytes.len() as u64, Path::new("t.npy"))
    }

    fn file(version: u8, dict: &str) -> Vec<u8> {
        let mut v = MAGIC.to_vec();
        v.extend_from_slice(&[version, 0]);
        if version == 1 {
            v.extend_from_slice(&(dict.len() as u16).to_le_bytes());
        } else {
            v.extend_from_slice(&(dict.len() as u32).to_le_bytes());
        }
        v.extend_from_slice(dict.as_bytes());
        v
    }

    #[test]
    fn round_trip_and_alignment() {
        for shape in [vec![], vec![0], vec![7], vec![3, 5], vec![2, 3, 4]] {
            for dtype in DType::ALL {
                let mut h = Header::new(dtype, &shape);
                for fortran in [false, true] {
                    h.fortran_order = fortran;
                    let bytes = h.to_bytes();
                    assert_eq!(bytes.len() % DATA_ALIGN, 0);
                    assert_eq!(*bytes.last().unwrap(), b'\n');
                    let back = parse(&bytes).unwrap();
                    assert_eq!(back.dtype, dtype);
                    assert_eq!(back.shape, shape);
                    assert_eq!(back.fortran_order, fortran);
                    assert_eq!(back.data_offset, bytes.len());
                }
            }
        }
    }

    #[test]
    fn the_largest_valid_header_fits_version_1() {
        // Version 2.0 is written only for headers over 64 KiB, which no shape within
        // MAX_DIMS reaches: the widest possible header still uses version 1.0.
        let mut h = Header::new(DType::U8, &[1; MAX_DIMS]);
        h.shape = vec![usize::MAX; MAX_DIMS];
        let b = h.to_bytes();
        assert!(b.len() < 65536);
        assert_eq!(b[6], 1);
        h.shape = vec![0; MAX_DIMS + 1];
        assert_eq!(h.data_len(), None, "more than 64 dimensions");
    }

    #[test]
    fn shapes_beyond_the_address_space_are_rejected() {
        let big = |shape: Vec<usize>| Header {
            dtype: DType::F64,
            fortran_order: false,
            shape,
            data_offset: 128,
        };
        // An empty array with one enormous axis: ndarray cannot view it.
        assert_eq!(big(vec![0, 1 << 63]).data_len(), None);
        // Bytes that would overflow offset + length.
        assert_eq!(big(vec![(1 << 61) - 1]).data_len(), None);
        assert_eq!(big(vec![0, 1 << 20]).data_len(), Some(0));
    }

    #[test]
    fn accepts_numpy_spellings() {
        let h = parse(&file(
            1,
            "{'descr': '<i8', 'fortran_order': False, 'shape': (10L, 2L), }  \n",
        ))
        .unwrap();
        assert_eq!(h.shape, [10, 2]);
        let h = parse(&file(
            3,
            "{\"shape\": (4,), \"fortran_order\": True, \"descr\": \"<f4\"}\n",
        ))
        .unwrap();
        assert_eq!((h.dtype, h.fortran_order), (DType::F32, true));
    }

    #[test]
    fn bad_inputs_get_typed_errors() {
        assert!(matches!(parse(b"PK\x03\x04"), Err(Error::BadMagic { .. })));
        assert!(matches!(parse(b""), Err(Error::TruncatedHeader { .. })));
        assert!(matches!(
            parse(b"\x93NUM"),
            Err(Error::TruncatedHeader { .. })
        ));
        assert!(matches!(
            parse(&file(4, "{}")),
            Err(Error::UnsupportedVersion { major: 4, .. })
        ));
        let mut long = file(2, "");
        long[8..12].copy_from_slice(&(1u32 << 30).to_le_bytes());
        assert!(matches!(parse(&long), Err(Error::HeaderTooLong { .. })));
        let mut short = file(
            1,
            "{'descr': '<f8', 'fortran_order': False, 'shape': (3,), }",
        );
        short.truncate(30);
        assert!(matches!(
            parse(&short),
            Err(Error::TruncatedHeader { needed, .. }) if needed > 30
        ));
        for dict in [
            "{'descr': '<f8', 'fortran_order': False}",
            "{'descr': '<f8', 'fortran_order': 0, 'shape': (3,)}",
            "{'descr': '<f8', 'fortran_order': False, 'shape': (-3,)}",
            "{'descr': '<f8', 'fortran_order': False, 'shape': (3,), 'x': 1}",
            "{'descr': '<f8', 'descr': '<f8', 'fortran_order': False, 'shape': (3,)}",
            "{'descr': '<f8', 'fortran_order': False, 'shape': (3,)} junk",
            "{'descr': __import__('os'), 'fortran_order': False, 'shape': (3,)}",
            "{'descr': '<f8', 'fortran_order': False, 'shape': (99999999999999999999999,)}",
            "{'descr': '<f8",
        ] {
            assert!(
                matches!(parse(&file(1, dict)), Err(Error::MalformedHeader { .. })),
                "{dict}"
            );
        }
        for descr in [">f8", "|O", "<c16", "<U5", "<f2"] {
            let d = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': (3,)}}");
            assert!(
                matches!(parse(&file(1, &d)), Err(Error::UnsupportedDtype { .. })),
                "{descr}"
            );
        }
        let structured =
            "{'descr': [('a', '<i4'), ('b', '<f8')], 'fortran_order': False, 'shape': (3,)}";
        assert!(matches!(
            parse(&file(1, structured)),
            Err(Error::UnsupportedDtype { .. })
        ));
        let overflow = format!(
            "{{'descr': '<f8', 'fortran_order': False, 'shape': ({}, {}),}}",
            usize::MAX / 2,
            4
        );
        assert!(matches!(
            parse(&file(1, &overflow)),
            Err(Error::ShapeOverflow { .. })
        ));
    }
}
