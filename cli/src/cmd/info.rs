//! `outcore info`: what a file holds and how much of it is in memory now.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use outcore::DType;

use crate::error::{fail, Result};
use crate::files::{open_input, parse_dtype};
use crate::Global;

/// Show dtype, shape, memory order, header version, data offset, sizes and page-cache
/// residency of .npy or raw files.
///
/// Residency is how much of the file is in the page cache now (from mincore(2), like
/// fincore(1)); it is measured before anything else touches the file, and info itself reads
/// only the header, never the data.
///
/// With several files, one block per file, separated by a blank line. With --json, one JSON
/// object per file, one per line (JSON Lines; a single file gives a single object), with the
/// keys file, format ("npy" or "raw"), dtype, descr, shape, fortran_order, version (null for
/// raw), data_offset, elements, data_bytes, file_bytes, resident_bytes, resident_percent.
///
/// A Zarr array (a directory holding zarr.json or .zarray; needs outcore built with
/// `--features zarr`) is described by its metadata: with --json the keys file, format
/// ("zarr"), zarr_format, dtype, descr, shape, chunks, num_chunks, codecs, elements,
/// data_bytes, stored_bytes.
///
/// Example:
///   outcore info x.npy y.npy
///   outcore info data.raw --dtype f32 --json
///   outcore info x.zarr
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// The .npy or raw files to describe
    #[arg(value_name = "FILE", required = true)]
    files: Vec<PathBuf>,

    /// Element type of raw (headerless) files; for a .npy it must match the header
    #[arg(long, value_name = "T", value_parser = parse_dtype)]
    dtype: Option<DType>,

    /// Machine-readable output: one JSON object per file, one per line
    #[arg(long)]
    json: bool,
}

/// What `info` reports about one file.
struct Info {
    file: PathBuf,
    dtype: DType,
    shape: Vec<usize>,
    fortran_order: bool,
    /// `.npy` format version, `None` for a raw file.
    version: Option<(u8, u8)>,
    data_offset: u64,
    elements: u64,
    data_bytes: u64,
    file_bytes: u64,
    resident: u64,
}

impl Info {
    fn percent(&self) -> f64 {
        if self.file_bytes == 0 {
            100.0
        } else {
            self.resident as f64 * 100.0 / self.file_bytes as f64
        }
    }

    fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "file": self.file.display().to_string(),
            "format": if self.version.is_some() { "npy" } else { "raw" },
            "dtype": self.dtype.name(),
            "descr": self.dtype.descr(),
            "shape": self.shape,
            "fortran_order": self.fortran_order,
            "version": self.version.map(|(a, b)| format!("{a}.{b}")),
            "data_offset": self.data_offset,
            "elements": self.elements,
            "data_bytes": self.data_bytes,
            "file_bytes": self.file_bytes,
            "resident_bytes": self.resident,
            "resident_percent": (self.percent() * 100.0).round() / 100.0,
        })
    }

    fn text(&self) -> String {
        let shape = match self.shape.as_slice() {
            [] => "()".to_string(),
            [d] => format!("({d},)"),
            ds => format!(
                "({})",
                ds.iter()
                    .map(|d| d.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        let order = if self.shape.is_empty() {
            "C (0-D: no order)"
        } else if self.shape.len() < 2 {
            "C (1-D: no order)"
        } else if self.fortran_order {
            "F (column-major)"
        } else {
            "C (row-major)"
        };
        let header = match self.version {
            Some((a, b)) => format!(".npy version {a}.{b}"),
            None => "none (raw file)".to_string(),
        };
        format!(
            "{}\n  dtype        {} ({})\n  shape        {}\n  order        {}\n  header       {}\n  data offset  {} bytes\n  elements     {}\n  data         {}\n  file size    {}\n  resident     {} of {} ({:.1}%)\n",
            self.file.display(),
            self.dtype.name(),
            self.dtype.descr(),
            shape,
            order,
            header,
            self.data_offset,
            self.elements,
            human(self.data_bytes),
            human(self.file_bytes),
            human(self.resident),
            human(self.file_bytes),
            self.percent(),
        )
    }
}

/// `12345678 bytes (12 MiB)`.
fn human(bytes: u64) -> String {
    if bytes < 1024 {
        format!("{bytes} bytes")
    } else {
        format!("{bytes} bytes ({})", crate::size::human(bytes))
    }
}

/// The `.npy` format version of a file that starts with the magic string.
fn npy_version(path: &Path) -> Result<(u8, u8)> {
    let mut f = std::fs::File::open(path).map_err(|e| outcore::Error::io(path, "open", e))?;
    let mut head = [0u8; 8];
    f.read_exact(&mut head)
        .map_err(|e| outcore::Error::io(path, "read", e))?;
    Ok((head[6], head[7]))
}

fn describe(path: &Path, dtype: Option<DType>) -> Result<Info> {
    if path.is_dir() {
        return Err(fail(format!(
            "{}: is a directory, not an array file",
            path.display()
        )));
    }
    // Residency first: reading the header below brings its page into the cache.
    let (resident, file_bytes) = outcore::resident_bytes(path)?;
    let input = open_input(path, dtype)?;
    let a = &input.array;
    let (version, data_offset) = match &input.header {
        Some(h) => (Some(npy_version(path)?), h.data_offset as u64),
        None => (None, 0),
    };
    Ok(Info {
        file: path.to_path_buf(),
        dtype: a.dtype(),
        shape: a.shape().to_vec(),
        fortran_order: a.is_fortran_order(),
        version,
        data_offset,
        elements: a.len() as u64,
        data_bytes: a.data_bytes() as u64,
        file_bytes,
        resident,
    })
}

/// Runs `outcore info`.
pub fn run(args: Args, _g: &Global) -> Result<()> {
    let infos = args
        .files
        .iter()
        .map(|p| {
            if crate::zarr::is_zarr(p) {
                crate::zarr::info(p)
            } else {
                describe(p, args.dtype).map(|i| (i.json(), i.text()))
            }
        })
        .collect::<Result<Vec<_>>>()?;
    let mut out = String::new();
    for (i, (json, text)) in infos.iter().enumerate() {
        if args.json {
            out.push_str(&json.to_string());
            out.push('\n');
        } else {
            if i > 0 {
                out.push('\n');
            }
            out.push_str(text);
        }
    }
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(out.as_bytes())
        .and_then(|()| stdout.flush())
        .map_err(|e| fail(format!("cannot write to stdout: {e}")))
}
