//! Zarr arrays on the command line: `convert` to and from Zarr, `info` and `stats` of a Zarr
//! array, `sort` into Zarr. The real work needs the `zarr` feature (it builds the C zstd
//! library); without it, a Zarr path is a usage error that says how to get it.
//!
//! A path is Zarr if it is a directory holding `zarr.json` (v3) or `.zarray` (v2), or, for
//! an output, if its name ends in `.zarr`.

use std::path::Path;

/// Whether `path` is a Zarr array: a directory holding `zarr.json` or `.zarray`.
pub fn is_zarr(path: &Path) -> bool {
    path.is_dir() && (path.join("zarr.json").is_file() || path.join(".zarray").is_file())
}

/// Whether `path` names a Zarr output: a Zarr array already, or a name ending in `.zarr`.
pub fn is_zarr_output(path: &Path) -> bool {
    is_zarr(path)
        || path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("zarr"))
}

#[cfg(feature = "zarr")]
pub use imp::{convert, info, sort, stats};
#[cfg(not(feature = "zarr"))]
pub use stub::{convert, info, sort, stats};

/// Without the `zarr` feature: every Zarr path is a usage error.
#[cfg(not(feature = "zarr"))]
mod stub {
    use std::path::Path;

    use crate::cmd::{convert, sort, stats};
    use crate::error::{usage, CliError, Result};
    use crate::Global;

    fn no_zarr(path: &Path) -> CliError {
        usage(format!(
            "{}: this outcore was built without Zarr support; install it with \
             `cargo install --path cli --features zarr`",
            path.display()
        ))
    }

    fn which<'a>(input: &'a Path, output: &'a Path) -> &'a Path {
        if super::is_zarr(input) {
            input
        } else {
            output
        }
    }

    pub fn convert(args: &convert::Args, _g: &Global) -> Result<()> {
        Err(no_zarr(which(&args.input, &args.output)))
    }

    pub fn info(path: &Path) -> Result<(serde_json::Value, String)> {
        Err(no_zarr(path))
    }

    pub fn stats(args: &stats::Args, _g: &Global) -> Result<()> {
        Err(no_zarr(&args.file))
    }

    pub fn sort(args: sort::Args, _g: &Global) -> Result<()> {
        Err(no_zarr(which(&args.input, &args.output)))
    }
}

#[cfg(feature = "zarr")]
mod imp {
    use std::path::{Path, PathBuf};

    use outcore::kernels::{self, HistogramReducer, Moments, Numeric};
    use outcore::sort::SortKey;
    use outcore::zarr::{ZarrArray, ZarrCodec, ZarrReadOptions, ZarrWriteOptions};
    use outcore::{with_dtype, Element};
    use serde_json::{json, Value};

    use super::{is_zarr, is_zarr_output};
    use crate::cmd::convert::{self, Order};
    use crate::cmd::sort;
    use crate::cmd::stats::{self, Row};
    use crate::error::{usage, Result};
    use crate::files::{check_output, is_npy, open_input, same_file, DTYPE_NAMES};
    use crate::{interrupt, Global};

    /// Bytes of chunks in flight: `--memory`, else 256 MiB or the machine's default budget,
    /// whichever is less.
    fn budget(asked: Option<usize>) -> Result<usize> {
        match asked {
            Some(m) => {
                outcore::check_budget(m)?;
                Ok(m.max(1 << 20))
            }
            None => Ok((256usize << 20).min(outcore::default_budget())),
        }
    }

    /// A Zarr output: refused if it exists (unless `force`), if it is the input, or if its
    /// directory is missing.
    fn check_zarr_output(out: &Path, force: bool, input: &Path) -> Result<()> {
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
        if same_file(input, out) {
            return Err(usage(format!("{}: the output is the input", out.display())));
        }
        if out.symlink_metadata().is_ok() && !force {
            return Err(usage(format!(
                "{}: already exists; pass --force to replace it",
                out.display()
            )));
        }
        Ok(())
    }

    fn write_options(codec: Option<&str>, chunks: &[u64], ndim: usize) -> Result<ZarrWriteOptions> {
        let mut o = ZarrWriteOptions::new();
        if let Some(c) = codec {
            let c = ZarrCodec::from_name(c).ok_or_else(|| {
                usage(format!(
                    "--codec {c:?}: not a codec; use zstd, zstd:LEVEL (e.g. zstd:9) or none"
                ))
            })?;
            o.codec(c);
        }
        if !chunks.is_empty() {
            if chunks.len() != ndim || chunks.contains(&0) {
                return Err(usage(format!(
                    "--chunks {}: give one extent (at least 1) per axis; the array has {ndim} \
                     axes",
                    chunks
                        .iter()
                        .map(|c| c.to_string())
                        .collect::<Vec<_>>()
                        .join(",")
                )));
            }
            o.chunks(chunks);
        }
        Ok(o)
    }

    /// `outcore convert` with a Zarr input or output.
    pub fn convert(args: &convert::Args, _g: &Global) -> Result<()> {
        let zin = is_zarr(&args.input);
        if zin && is_zarr_output(&args.output) {
            return Err(usage(
                "Zarr to Zarr is not supported; convert to .npy, then to Zarr",
            ));
        }
        if args.to_raw {
            return Err(usage(
                "--to-raw: a Zarr array converts to .npy (then to raw with a second convert)",
            ));
        }
        let memory = budget(args.memory)?;
        let cast_refused = |from: outcore::DType, to: outcore::DType| {
            usage(format!(
                "--dtype {}: casts into or out of Zarr are not supported (the array holds {}); \
                 cast the .npy with `outcore convert --dtype` before or after",
                to.name(),
                from.name()
            ))
        };
        let order_refused = || {
            usage(
                "--order F: a Zarr array is stored as its logical (C-order) array; change the \
                 order of the .npy with `outcore convert --order F` afterwards",
            )
        };
        if zin {
            if args.from_raw.is_some() {
                return Err(usage(
                    "--from-raw: the input is a Zarr array, not a raw file",
                ));
            }
            if !args.chunks.is_empty() || args.codec.is_some() {
                return Err(usage("--chunks and --codec are for Zarr outputs"));
            }
            let z = ZarrArray::open(&args.input)?;
            if let Some(d) = args.dtype.filter(|&d| d != z.dtype()) {
                return Err(cast_refused(z.dtype(), d));
            }
            if args.order == Some(Order::F) && z.shape().len() > 1 {
                return Err(order_refused());
            }
            check_output(&args.output, args.force, &[&args.input])?;
            let mut o = ZarrReadOptions::new();
            o.memory(memory).replace(args.force);
            interrupt::check()?;
            z.to_npy(&args.output, &o)?;
            return Ok(());
        }
        if args.from_raw.is_none() && !is_npy(&args.input)? {
            return Err(usage(format!(
                "{}: not a .npy file; for a raw (headerless) file give its element type with \
                 --from-raw T ({DTYPE_NAMES})",
                args.input.display()
            )));
        }
        let input = open_input(&args.input, args.from_raw)?;
        let a = &input.array;
        if let Some(d) = args.dtype.filter(|&d| d != a.dtype()) {
            return Err(cast_refused(a.dtype(), d));
        }
        if args.order == Some(Order::F) && a.shape().len() > 1 {
            return Err(order_refused());
        }
        check_zarr_output(&args.output, args.force, &args.input)?;
        let mut o = write_options(args.codec.as_deref(), &args.chunks, a.shape().len())?;
        o.memory(memory).replace(args.force);
        interrupt::check()?;
        outcore::zarr::write_any(a, &args.output, &o)?;
        Ok(())
    }

    /// `(1000, 3)`, numpy's way.
    fn tuple<T: ToString>(xs: &[T]) -> String {
        match xs {
            [] => "()".into(),
            [x] => format!("({},)", x.to_string()),
            xs => format!(
                "({})",
                xs.iter()
                    .map(|x| x.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }

    /// Bytes of the files under `dir`.
    fn stored_bytes(dir: &Path) -> u64 {
        let mut total = 0;
        let mut todo: Vec<PathBuf> = vec![dir.to_path_buf()];
        while let Some(d) = todo.pop() {
            let Ok(entries) = std::fs::read_dir(&d) else {
                continue;
            };
            for e in entries.flatten() {
                match e.metadata() {
                    Ok(m) if m.is_dir() => todo.push(e.path()),
                    Ok(m) => total += m.len(),
                    Err(_) => {}
                }
            }
        }
        total
    }

    /// `outcore info` of a Zarr array: its JSON object and its text block.
    pub fn info(path: &Path) -> Result<(Value, String)> {
        let z = ZarrArray::open(path)?;
        let d = z.dtype();
        let elements = z.len() as u64;
        let data_bytes = elements * d.size() as u64;
        let stored = stored_bytes(path);
        let json = json!({
            "file": path.display().to_string(),
            "format": "zarr",
            "zarr_format": z.zarr_format(),
            "dtype": d.name(),
            "descr": d.descr(),
            "shape": z.shape(),
            "chunks": z.chunk_shape(),
            "num_chunks": z.num_chunks(),
            "codecs": z.codecs(),
            "elements": elements,
            "data_bytes": data_bytes,
            "stored_bytes": stored,
        });
        let human = |b: u64| {
            if b < 1024 {
                format!("{b} bytes")
            } else {
                format!("{b} bytes ({})", crate::size::human(b))
            }
        };
        let text = format!(
            "{}\n  format       Zarr v{}\n  dtype        {} ({})\n  shape        {}\n  chunks       {} ({} chunks)\n  codecs       {}\n  elements     {}\n  data         {}\n  stored       {}\n",
            path.display(),
            z.zarr_format(),
            d.name(),
            d.descr(),
            tuple(z.shape()),
            tuple(z.chunk_shape()),
            z.num_chunks(),
            z.codecs().join(", "),
            elements,
            human(data_bytes),
            human(stored),
        );
        Ok((json, text))
    }

    /// `outcore stats` of a Zarr array.
    pub fn stats(args: &stats::Args, _g: &Global) -> Result<()> {
        if args.axis.is_some() {
            return Err(usage(format!(
                "{}: --axis is for .npy files; convert the Zarr array to .npy first",
                args.file.display()
            )));
        }
        let z = ZarrArray::open(&args.file)?;
        if let Some(d) = args.dtype.filter(|&d| d != z.dtype()) {
            return Err(usage(format!(
                "{}: the Zarr array holds {}, not {}; --dtype is for raw files",
                args.file.display(),
                z.dtype().name(),
                d.name()
            )));
        }
        let row = with_dtype!(z.dtype(), T => summarize::<T>(&z, args))?;
        if args.json {
            println!(
                "{}",
                serde_json::to_string_pretty(&row.to_json()).expect("json")
            );
        } else {
            stats::print_header(&args.file, z.dtype(), z.shape());
            stats::print_row(&row);
        }
        Ok(())
    }

    /// One chunk's share of the summary.
    struct Part<T: Numeric> {
        sum: T::Total,
        nan: u64,
        moments: Moments,
        /// (value, flat C-order index in the array)
        argmin: Option<(T, u64)>,
        argmax: Option<(T, u64)>,
        histogram: Option<Vec<u64>>,
    }

    #[allow(clippy::eq_op)]
    fn is_nan<T: PartialOrd>(x: T) -> bool {
        x != x
    }

    /// The better of two (value, index) candidates, numpy's way: the first NaN, else the
    /// `better` value, the smaller index on a tie (chunk order is not index order in more
    /// than one dimension).
    fn pick<T: Numeric>(
        a: Option<(T, u64)>,
        b: Option<(T, u64)>,
        better: impl Fn(T, T) -> bool,
    ) -> Option<(T, u64)> {
        match (a, b) {
            (None, x) | (x, None) => x,
            (Some(x), Some(y)) => {
                let y_first = match (is_nan(x.0), is_nan(y.0)) {
                    (true, false) => false,
                    (false, true) => true,
                    (true, true) => y.1 < x.1,
                    (false, false) => better(y.0, x.0) || (y.0 == x.0 && y.1 < x.1),
                };
                Some(if y_first { y } else { x })
            }
        }
    }

    impl<T: Numeric> Part<T> {
        fn merge(self, o: Part<T>) -> Part<T> {
            Part {
                sum: self.sum + o.sum,
                nan: self.nan + o.nan,
                moments: self.moments.merge(o.moments),
                argmin: pick(self.argmin, o.argmin, |a, b| a < b),
                argmax: pick(self.argmax, o.argmax, |a, b| a > b),
                histogram: match (self.histogram, o.histogram) {
                    (Some(mut a), Some(b)) => {
                        a.iter_mut().zip(b).for_each(|(x, y)| *x += y);
                        Some(a)
                    }
                    (a, b) => a.or(b),
                },
            }
        }
    }

    /// The statistics `outcore stats` prints for a `.npy`, over the chunks: one pass for the
    /// summary (with the histogram when --range is given), one more for a histogram over the
    /// data's finite range (two when the data holds NaN or an infinity), the quantile passes
    /// over a decoded scratch copy for --percentiles.
    fn summarize<T>(z: &ZarrArray, args: &stats::Args) -> Result<Row>
    where
        T: Numeric + SortKey + Element,
    {
        let opts = ZarrReadOptions::new();
        let bins = args.bins.map(|b| b as usize);
        let fixed = match (bins, args.range) {
            (Some(b), Some(r)) => Some((HistogramReducer::new(b, r)?, b, r)),
            _ => None,
        };
        let fixed_ref = fixed.as_ref().map(|(_, b, r)| (*b, *r));
        let part = z.fold_chunks(
            &opts,
            |info, c: &[T]| {
                let at = |i: Option<usize>| i.map(|i| (c[i], info.global_index(i)));
                Part {
                    sum: T::sum_serial(c),
                    nan: if T::IS_FLOAT {
                        c.iter().filter(|x| is_nan(**x)).count() as u64
                    } else {
                        0
                    },
                    moments: kernels::moments(c),
                    argmin: at(kernels::argmin(c)),
                    argmax: at(kernels::argmax(c)),
                    histogram: fixed_ref
                        .map(|(b, r)| kernels::histogram(c, b, Some(r)).unwrap_or(vec![0; b])),
                }
            },
            Part::merge,
        )?;
        let count = z.len() as u64;
        let mut row = match &part {
            Some(p) if count > 0 => Row {
                count,
                nan_count: p.nan,
                sum: if T::IS_FLOAT {
                    stats::fnum(T::total_to_f64(p.sum))
                } else {
                    stats::num(p.sum)
                },
                mean: T::total_to_f64(p.sum) / count as f64,
                std: p.moments.std(args.ddof),
                min: p.argmin.map_or(Value::Null, |(v, _)| stats::elem(v)),
                max: p.argmax.map_or(Value::Null, |(v, _)| stats::elem(v)),
                argmin: p.argmin.map(|(_, i)| i as usize),
                argmax: p.argmax.map(|(_, i)| i as usize),
                histogram: None,
                percentiles: Vec::new(),
            },
            _ => Row {
                count: 0,
                nan_count: 0,
                sum: if T::IS_FLOAT { json!(0.0) } else { json!(0) },
                mean: f64::NAN,
                std: f64::NAN,
                min: Value::Null,
                max: Value::Null,
                argmin: None,
                argmax: None,
                histogram: None,
                percentiles: Vec::new(),
            },
        };
        if let Some(b) = bins {
            let (h, counts) = match (fixed, part.as_ref().and_then(|p| p.histogram.clone())) {
                (Some((h, _, _)), Some(counts)) => (h, counts),
                (Some((h, b, _)), None) => (h, vec![0; b]),
                (None, _) => {
                    let lo = part.as_ref().and_then(|p| p.argmin).map(|m| m.0.as_());
                    let hi = part.as_ref().and_then(|p| p.argmax).map(|m| m.0.as_());
                    let range = match (lo, hi) {
                        (Some(lo), Some(hi)) if lo.is_finite() && hi.is_finite() => Some((lo, hi)),
                        (Some(_), Some(_)) => finite_range::<T>(z, &opts)?,
                        _ => None,
                    }
                    .unwrap_or((0.0, 1.0));
                    (
                        HistogramReducer::new(b, range)?,
                        z.histogram(b, range, &opts)?,
                    )
                }
            };
            row.histogram = Some((h.edges(), counts));
        }
        if !args.percentiles.is_empty() {
            let qs: Vec<f64> = args.percentiles.iter().map(|p| p / 100.0).collect();
            let q = z.quantiles::<T>(&qs, &stats::quantile_options(), &opts)?;
            row.percentiles = args
                .percentiles
                .iter()
                .zip(q.values)
                .map(|(&p, v)| (p, stats::qvalue(v)))
                .collect();
        }
        Ok(row)
    }

    /// The least and greatest finite values, in one more pass over the chunks.
    fn finite_range<T: Numeric + Element>(
        z: &ZarrArray,
        opts: &ZarrReadOptions,
    ) -> Result<Option<(f64, f64)>> {
        let r = z.fold_chunks(
            opts,
            |_, c: &[T]| {
                c.iter()
                    .map(|&x| x.as_())
                    .filter(|x: &f64| x.is_finite())
                    .fold(None, |acc: Option<(f64, f64)>, x| {
                        Some(acc.map_or((x, x), |(lo, hi)| (lo.min(x), hi.max(x))))
                    })
            },
            |a, b| match (a, b) {
                (Some((a0, a1)), Some((b0, b1))) => Some((a0.min(b0), a1.max(b1))),
                (x, None) | (None, x) => x,
            },
        )?;
        Ok(r.flatten())
    }

    /// Removes a scratch file when dropped (on success, error and Ctrl-C alike).
    struct Scratch(PathBuf);

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    /// `outcore sort IN.npy OUT.zarr`: the sort into a scratch `.npy` next to the output,
    /// then the Zarr array written from it; the scratch file is removed in every case.
    pub fn sort(args: sort::Args, g: &Global) -> Result<()> {
        if is_zarr(&args.input) {
            return Err(usage(format!(
                "{}: sort reads a .npy file; convert the Zarr array first (outcore convert \
                 IN.zarr IN.npy)",
                args.input.display()
            )));
        }
        if args.record_size.is_some() || !is_npy(&args.input)? {
            return Err(usage(format!(
                "{}: sorting into Zarr takes a 1-D .npy input",
                args.input.display()
            )));
        }
        check_zarr_output(&args.output, args.force, &args.input)?;
        let dir = match args.output.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let name = args
            .output
            .file_name()
            .map_or_else(|| "out".into(), |n| n.to_string_lossy().into_owned());
        let scratch = Scratch(dir.join(format!(".{name}.outcore-sort-{}.npy", std::process::id())));
        let output = args.output.clone();
        let (force, memory) = (args.force, args.memory);
        sort::run(
            sort::Args {
                output: scratch.0.clone(),
                force: true,
                ..args
            },
            g,
        )?;
        interrupt::check()?;
        let mut o = ZarrWriteOptions::new();
        o.memory(budget(memory)?.min(256 << 20)).replace(force);
        outcore::zarr::from_npy(&scratch.0, &output, &o)?;
        drop(scratch);
        Ok(())
    }
}
