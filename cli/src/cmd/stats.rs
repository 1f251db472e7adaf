//! `outcore stats`: the summary of a file in one pass over it (count, NaN count, sum, mean,
//! std, min, max, argmin, argmax, an optional histogram), exact percentiles in a few more,
//! per column or per row of a 2-D file with `--axis`.

use std::fmt::Debug;
use std::path::{Path, PathBuf};

use outcore::kernels::{
    DescribeOptions, HistogramReducer, Numeric, QuantileOptions, QuantileValue, Summary,
};
use outcore::sort::SortKey;
use outcore::stream::{self, Stream};
use outcore::{with_any, DType, Element, MappedArray, ParOptions};
use serde_json::{json, Map, Value};

use crate::error::{usage, Result};
use crate::files::{open_input, parse_dtype};
use crate::Global;

/// Statistics of a .npy or raw file or a Zarr array, numpy's way: count, nan_count, sum, mean, std, min, max,
/// argmin, argmax; a histogram with --bins; exact percentiles with --percentiles.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
NaN propagates as in numpy (a NaN makes sum, mean, std, min, max and the percentiles NaN;
argmin and argmax point at the first NaN); nan_count says how many there are. The histogram
covers the finite values, between their min and max, with numpy's bins. --json prints one
object with exactly the keys count, nan_count, sum, mean, std, min, max, argmin, argmax (plus
histogram {edges, counts} and percentiles {\"1\": v, ...} when asked); NaN is null. With
--axis each key holds a list, one value per column (0) or row (1).

Examples:
  outcore stats x.npy
  outcore stats x.npy --bins 20 --percentiles 1,50,99
  outcore stats features.npy --axis 0 --json
  outcore stats data.raw --dtype f32
  outcore stats x.zarr --json            # a Zarr array, chunk by chunk (--features zarr)")]
pub struct Args {
    /// A .npy file, or a raw file with --dtype
    #[arg(value_name = "FILE")]
    pub(crate) file: PathBuf,

    /// Element type of a raw (headerless) file: u8 u16 u32 u64 i8 i16 i32 i64 f32 f64
    #[arg(long, value_parser = parse_dtype, value_name = "T")]
    pub(crate) dtype: Option<DType>,

    /// Statistics per column (0) or per row (1) of a 2-D array, in its memory order
    #[arg(long, value_parser = clap::value_parser!(u8).range(0..=1), value_name = "0|1")]
    pub(crate) axis: Option<u8>,

    /// A histogram with this many bins
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub(crate) bins: Option<u64>,

    /// The histogram's range, LO,HI: one pass less (without it the range is the data's
    /// finite min and max, known only after a first pass)
    #[arg(long, value_parser = parse_range, value_name = "LO,HI", requires = "bins", allow_hyphen_values = true)]
    pub(crate) range: Option<(f64, f64)>,

    /// Exact percentiles, comma-separated, each in [0, 100] (numpy's linear method)
    #[arg(long, value_delimiter = ',', value_name = "P,...")]
    pub(crate) percentiles: Vec<f64>,

    /// Delta degrees of freedom of std (numpy's ddof)
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub(crate) ddof: u64,

    /// Machine-readable output: one JSON object
    #[arg(long)]
    pub(crate) json: bool,
}

fn parse_range(s: &str) -> std::result::Result<(f64, f64), String> {
    let bad = || format!("{s:?} is not a range; write LO,HI with LO < HI, e.g. 0,1");
    let (lo, hi) = s.split_once(',').ok_or_else(bad)?;
    let lo: f64 = lo.trim().parse().map_err(|_| bad())?;
    let hi: f64 = hi.trim().parse().map_err(|_| bad())?;
    if lo.is_finite() && hi.is_finite() && lo < hi {
        Ok((lo, hi))
    } else {
        Err(bad())
    }
}

/// Runs `outcore stats`.
pub fn run(args: Args, g: &Global) -> Result<()> {
    for &p in &args.percentiles {
        if !(0.0..=100.0).contains(&p) {
            return Err(usage(format!("--percentiles: {p} is not in [0, 100]")));
        }
    }
    if crate::zarr::is_zarr(&args.file) {
        return crate::zarr::stats(&args, g);
    }
    let input = open_input(&args.file, args.dtype)?;
    let a = &input.array;
    if let Some(axis) = args.axis {
        if a.shape().len() != 2 {
            return Err(usage(format!(
                "{}: --axis needs a 2-D array; this one has shape {:?}",
                args.file.display(),
                a.shape()
            )));
        }
        if !args.percentiles.is_empty() || args.bins.is_some() {
            return Err(usage(
                "--axis gives per-lane summaries; --bins and --percentiles apply to the whole \
                 array (drop --axis for them)",
            ));
        }
        let lanes = with_any!(a, m => axis_rows(m, axis as usize, args.ddof))?;
        print_lanes(&args, a.dtype(), a.shape(), axis, &lanes, g);
        return Ok(());
    }
    let opts = Opts {
        bins: args.bins.map(|b| b as usize),
        range: args.range,
        ddof: args.ddof,
        percentiles: args.percentiles.clone(),
    };
    let row = with_any!(a, m => summarize(m, &opts))?;
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&row.to_json()).expect("json")
        );
    } else {
        print_header(&args.file, a.dtype(), a.shape());
        print_row(&row);
    }
    Ok(())
}

/// What `outcore demo` prints for its dataset: the summary `outcore stats FILE --bins 16`
/// would print (count, mean, std, min, max, ..., a histogram).
pub fn demo_summary(path: &Path, g: &Global) -> Result<()> {
    let args = Args {
        file: path.to_path_buf(),
        dtype: None,
        axis: None,
        bins: Some(16),
        range: None,
        percentiles: vec![1.0, 50.0, 99.0],
        ddof: 0,
        json: false,
    };
    run(args, g)
}

/// What is asked for.
struct Opts {
    bins: Option<usize>,
    range: Option<(f64, f64)>,
    ddof: u64,
    percentiles: Vec<f64>,
}

/// The statistics of one array or one lane, ready to print.
pub(crate) struct Row {
    pub(crate) count: u64,
    pub(crate) nan_count: u64,
    pub(crate) sum: Value,
    pub(crate) mean: f64,
    pub(crate) std: f64,
    pub(crate) min: Value,
    pub(crate) max: Value,
    pub(crate) argmin: Option<usize>,
    pub(crate) argmax: Option<usize>,
    /// Edges and counts.
    pub(crate) histogram: Option<(Vec<f64>, Vec<u64>)>,
    /// (as asked, value)
    pub(crate) percentiles: Vec<(f64, Value)>,
}

/// A number as JSON, exactly for integers (also beyond 2^53), `null` for NaN and infinities
/// (JSON has neither).
pub(crate) fn num<T: Debug>(x: T) -> Value {
    let s = format!("{x:?}");
    serde_json::from_str::<Value>(&s)
        .ok()
        .filter(Value::is_number)
        .or_else(|| {
            s.parse::<f64>()
                .ok()
                .and_then(|f| serde_json::Number::from_f64(f).map(Value::Number))
        })
        .unwrap_or(Value::Null)
}

/// An element as JSON: integers exactly, floats as the `f64` they widen to (so an `f32` prints
/// as numpy's `.item()` gives it), NaN and infinities as `null`.
pub(crate) fn elem<T: Element + Numeric>(x: T) -> Value {
    if matches!(T::DTYPE, DType::F32 | DType::F64) {
        fnum(x.as_())
    } else {
        num(x)
    }
}

/// A float as JSON (`null` for NaN or an infinity).
pub(crate) fn fnum(x: f64) -> Value {
    serde_json::Number::from_f64(x).map_or(Value::Null, Value::Number)
}

impl Row {
    pub(crate) fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("count".into(), json!(self.count));
        m.insert("nan_count".into(), json!(self.nan_count));
        m.insert("sum".into(), self.sum.clone());
        m.insert("mean".into(), fnum(self.mean));
        m.insert("std".into(), fnum(self.std));
        m.insert("min".into(), self.min.clone());
        m.insert("max".into(), self.max.clone());
        m.insert("argmin".into(), json!(self.argmin));
        m.insert("argmax".into(), json!(self.argmax));
        if let Some((edges, counts)) = &self.histogram {
            m.insert(
                "histogram".into(),
                json!({ "edges": edges.iter().map(|&e| fnum(e)).collect::<Vec<_>>(), "counts": counts }),
            );
        }
        if !self.percentiles.is_empty() {
            let p: Map<String, Value> = self
                .percentiles
                .iter()
                .map(|(q, v)| (format!("{q}"), v.clone()))
                .collect();
            m.insert("percentiles".into(), Value::Object(p));
        }
        Value::Object(m)
    }
}

/// The whole-array summary: one streamed pass for everything but the histogram and the
/// percentiles (the fused `describe`); the histogram in the same pass when `--range` is given,
/// else in one more (its range is the data's finite min and max, known after the first); the
/// percentiles in their own passes.
fn summarize<T>(a: &MappedArray<T>, o: &Opts) -> Result<Row>
where
    T: Numeric + SortKey + Element,
{
    let (par, stream) = pass_options();
    let mut d = DescribeOptions::new();
    d.ddof(o.ddof);
    if let (Some(b), Some((lo, hi))) = (o.bins, o.range) {
        d.bins(b).range(lo, hi);
    }
    let s = stream::describe(a, &d, &par, &stream)?;
    let mut row = row_of(&s);
    if let (Some(b), None) = (o.bins, o.range) {
        let finite = match (s.min, s.max) {
            (Some(lo), Some(hi)) if f64::is_finite(lo.as_()) && f64::is_finite(hi.as_()) => {
                Some((lo.as_(), hi.as_()))
            }
            (Some(_), Some(_)) => outcore::kernels::finite_range_with(a, &par)?,
            _ => None,
        };
        let range = finite.unwrap_or((0.0, 1.0));
        let h = HistogramReducer::new(b, range)?;
        let counts = stream::reduce_fused(a, &h, &par, &stream)?.unwrap_or_else(|| vec![0; b]);
        row.histogram = Some((h.edges(), counts));
    }
    if !o.percentiles.is_empty() {
        let q = stream::percentiles(a, &o.percentiles, &quantile_options())?;
        row.percentiles = o
            .percentiles
            .iter()
            .zip(q.values)
            .map(|(&p, v)| (p, qvalue(v)))
            .collect();
    }
    Ok(row)
}

pub(crate) fn qvalue<T: Numeric + Element>(v: QuantileValue<T>) -> Value {
    match v {
        QuantileValue::Element(x) => elem(x),
        QuantileValue::Float(f) => fnum(f),
    }
}

/// The row of a summary (without percentiles, which the caller adds).
fn row_of<T: Numeric + Element>(s: &Summary<T>) -> Row {
    Row {
        count: s.count,
        nan_count: s.nan_count,
        sum: if T::IS_FLOAT {
            fnum(T::total_to_f64(s.sum))
        } else {
            num(s.sum)
        },
        mean: s.mean,
        std: s.std,
        min: s.min.map_or(Value::Null, elem),
        max: s.max.map_or(Value::Null, elem),
        argmin: s.argmin,
        argmax: s.argmax,
        histogram: s
            .histogram
            .as_ref()
            .map(|h| (h.edges.clone(), h.counts.clone())),
        percentiles: Vec::new(),
    }
}

/// Passes over a mapping use the global pool (sized by `--threads`) and release the pages
/// they have read, so that a file larger than memory stays out of the way.
fn pass_options() -> (ParOptions, Stream) {
    let mut s = Stream::new();
    s.release_behind(true);
    (ParOptions::new(), s)
}

/// The quantile passes' options: candidates within the machine's default budget (at most
/// 1 GiB), pages released behind.
pub(crate) fn quantile_options() -> QuantileOptions {
    let mut o = QuantileOptions::new();
    o.memory(outcore::default_budget().min(1 << 30));
    o
}

/// Per-lane summaries of a 2-D array in one pass: lane `i` is column `i` for axis 0, row `i`
/// for axis 1, whatever the memory order.
fn axis_rows<T>(a: &MappedArray<T>, axis: usize, ddof: u64) -> Result<Vec<Row>>
where
    T: Numeric + SortKey + Element,
{
    let (par, stream) = pass_options();
    let mut d = DescribeOptions::new();
    d.ddof(ddof);
    let lanes = stream::describe_axis(a, axis, &d, &par, &stream)?;
    Ok(lanes.iter().map(row_of).collect())
}

pub(crate) fn print_header(file: &Path, dtype: DType, shape: &[usize]) {
    println!("{}: {}, shape {:?}", file.display(), dtype.name(), shape);
}

/// A JSON value as text: numbers as they are, null as `nan`.
fn text(v: &Value) -> String {
    match v {
        Value::Null => "nan".into(),
        v => v.to_string(),
    }
}

fn g(x: f64) -> String {
    if x.is_nan() {
        "nan".into()
    } else {
        format!("{x}")
    }
}

fn opt(i: Option<usize>) -> String {
    i.map_or("-".into(), |i| i.to_string())
}

pub(crate) fn print_row(r: &Row) {
    println!("  count      {}", r.count);
    println!("  nan_count  {}", r.nan_count);
    println!("  sum        {}", text(&r.sum));
    println!("  mean       {}", g(r.mean));
    println!("  std        {}", g(r.std));
    println!("  min        {}  (argmin {})", text(&r.min), opt(r.argmin));
    println!("  max        {}  (argmax {})", text(&r.max), opt(r.argmax));
    for (p, v) in &r.percentiles {
        println!("  p{:<9} {}", format!("{p}"), text(v));
    }
    if let Some((edges, counts)) = &r.histogram {
        println!("  histogram ({} bins)", counts.len());
        print_histogram(edges, counts);
    }
}

/// Unicode bars, 40 cells wide at the largest count, eighths of a cell for the remainder.
fn print_histogram(edges: &[f64], counts: &[u64]) {
    const WIDTH: u64 = 40;
    const PARTS: [&str; 8] = ["", "▏", "▎", "▍", "▌", "▋", "▊", "▉"];
    let top = counts.iter().copied().max().unwrap_or(0).max(1);
    let labels: Vec<String> = edges.iter().map(|e| format!("{e:.6}")).collect();
    let w = labels.iter().map(String::len).max().unwrap_or(0);
    for (i, &c) in counts.iter().enumerate() {
        let eighths = (c as u128 * (WIDTH * 8) as u128 / top as u128) as u64;
        let bar = format!(
            "{}{}",
            "█".repeat((eighths / 8) as usize),
            PARTS[(eighths % 8) as usize]
        );
        let close = if i + 1 == counts.len() { ']' } else { ')' };
        println!(
            "  [{:>w$}, {:>w$}{close} {bar:<40} {c}",
            labels[i],
            labels[i + 1]
        );
    }
}

fn print_lanes(args: &Args, dtype: DType, shape: &[usize], axis: u8, rows: &[Row], _g: &Global) {
    if args.json {
        let keys = [
            "count",
            "nan_count",
            "sum",
            "mean",
            "std",
            "min",
            "max",
            "argmin",
            "argmax",
        ];
        let objs: Vec<Value> = rows.iter().map(Row::to_json).collect();
        let mut m = Map::new();
        for k in keys {
            m.insert(
                k.into(),
                Value::Array(objs.iter().map(|o| o[k].clone()).collect()),
            );
        }
        println!(
            "{}",
            serde_json::to_string_pretty(&Value::Object(m)).expect("json")
        );
        return;
    }
    print_header(&args.file, dtype, shape);
    let what = if axis == 0 { "column" } else { "row" };
    println!(
        "  {what:>8} {:>12} {:>10} {:>14} {:>14} {:>14} {:>14} {:>10} {:>10}",
        "count", "nan_count", "mean", "std", "min", "max", "argmin", "argmax"
    );
    for (i, r) in rows.iter().enumerate() {
        println!(
            "  {i:>8} {:>12} {:>10} {:>14.6} {:>14.6} {:>14} {:>14} {:>10} {:>10}",
            r.count,
            r.nan_count,
            r.mean,
            r.std,
            text(&r.min),
            text(&r.max),
            opt(r.argmin),
            opt(r.argmax)
        );
    }
}
