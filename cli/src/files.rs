//! Inputs and outputs: dtypes named on the command line, `.npy` or raw inputs, and the
//! rules every command follows for its output (refused if it exists, unless `--force`).

use std::path::Path;

use outcore::npy::Header;
use outcore::{open_any, open_any_raw, AnyArray, DType};

use crate::error::{fail, usage, Result};

/// The dtype names the tool accepts, for messages.
pub const DTYPE_NAMES: &str = "u8 u16 u32 u64 i8 i16 i32 i64 f32 f64 bool";

/// Parses a dtype as written on a command line: outcore's short names (`u8`, `f64`),
/// numpy's names (`uint8`, `float64`, `int32`, `bool`) or descriptors (`<f8`, `|u1`).
pub fn parse_dtype(s: &str) -> std::result::Result<DType, String> {
    let t = s.trim();
    let numpy = match t {
        "uint8" => Some(DType::U8),
        "uint16" => Some(DType::U16),
        "uint32" => Some(DType::U32),
        "uint64" => Some(DType::U64),
        "int8" => Some(DType::I8),
        "int16" => Some(DType::I16),
        "int32" => Some(DType::I32),
        "int64" => Some(DType::I64),
        "float32" => Some(DType::F32),
        "float64" => Some(DType::F64),
        _ => None,
    };
    numpy
        .or_else(|| DType::from_name(t))
        .or_else(|| DType::from_descr(t))
        .ok_or_else(|| format!("unknown dtype {t:?}; use one of {DTYPE_NAMES}"))
}

/// An opened input: the array, and its `.npy` header (`None` for a raw file).
pub struct Input {
    /// The mapped array, of the dtype the file holds.
    pub array: AnyArray,
    /// The `.npy` header, if the file has one.
    pub header: Option<Header>,
}

/// Whether `path` starts with the `.npy` magic string.
pub fn is_npy(path: &Path) -> Result<bool> {
    use std::io::Read;
    let mut f = std::fs::File::open(path).map_err(|e| outcore::Error::io(path, "open", e))?;
    if f.metadata().map(|m| m.is_dir()).unwrap_or(false) {
        return Err(fail(format!(
            "{}: is a directory, not an array file",
            path.display()
        )));
    }
    let mut magic = [0u8; 6];
    let mut got = 0;
    while got < magic.len() {
        match f.read(&mut magic[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) => return Err(outcore::Error::io(path, "read", e).into()),
        }
    }
    Ok(got == 6 && &magic == b"\x93NUMPY")
}

/// Opens `path`: a `.npy` as the dtype its header declares, a raw file as `dtype`.
///
/// A `dtype` given for a `.npy` file must agree with the header (the header says what the
/// file holds; a different `--dtype` is refused rather than ignored); a raw file needs one.
pub fn open_input(path: &Path, dtype: Option<DType>) -> Result<Input> {
    if is_npy(path)? {
        let header = Header::read(path)?;
        if let Some(d) = dtype.filter(|&d| d != header.dtype) {
            return Err(usage(format!(
                "{}: the .npy header says the file holds {}, not {}; --dtype is for raw \
                 files (to change the type, use `outcore convert --dtype {}`)",
                path.display(),
                header.dtype.name(),
                d.name(),
                d.name()
            )));
        }
        let array = open_any(path)?;
        Ok(Input {
            array,
            header: Some(header),
        })
    } else {
        let Some(d) = dtype else {
            return Err(usage(format!(
                "{}: not a .npy file; for a raw (headerless) file give its element type \
                 with --dtype ({DTYPE_NAMES})",
                path.display()
            )));
        };
        Ok(Input {
            array: open_any_raw(path, d)?,
            header: None,
        })
    }
}

/// Refuses an output that exists (unless `force`), that is an input, or whose directory is
/// missing. Call it before any work starts.
pub fn check_output(out: &Path, force: bool, inputs: &[&Path]) -> Result<()> {
    let dir = match out.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    if !dir.is_dir() {
        return Err(usage(format!(
            "{}: the output's directory {} does not exist; create it first",
            out.display(),
            dir.display()
        )));
    }
    if out.is_dir() {
        return Err(usage(format!(
            "{}: is a directory; give a file name for the output",
            out.display()
        )));
    }
    for i in inputs {
        if same_file(i, out) && !force {
            return Err(usage(format!(
                "{}: the output is the input; pass --force to replace the input with the result",
                out.display()
            )));
        }
    }
    if out.exists() && !force {
        return Err(usage(format!(
            "{}: already exists; pass --force to replace it",
            out.display()
        )));
    }
    Ok(())
}

/// Whether two paths name the same existing file.
pub fn same_file(a: &Path, b: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(x), Ok(y)) => x.dev() == y.dev() && x.ino() == y.ino(),
        _ => false,
    }
}
