//! `outcore stats`: the summary of a file in one pass over it (count, NaN count, sum, mean,
//! std, min, max, argmin, argmax, an optional histogram), exact percentiles in a few more,
//! per column or per row of a 2-D file with `--axis`.

use std::fmt::Debug;
use std::path::{Path, PathBuf};

use outcore::kernels::{self, Numeric};
use outcore::sort::SortKey;
use outcore::{with_any, DType, Element, MappedArray};
use serde_json::{json, Map, Value};

use crate::error::{usage, Result};
use crate::files::{open_input, parse_dtype};
use crate::Global;

/// Statistics of a .npy or raw file, numpy's way: count, nan_count, sum, mean, std, min, max,
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
  outcore stats data.raw --dtype f32")]
pub struct Args {
    /// A .npy file, or a raw file with --dtype
    #[arg(value_name = "FILE")]
    file: PathBuf,

    /// Element type of a raw (headerless) file: u8 u16 u32 u64 i8 i16 i32 i64 f32 f64
    #[arg(long, value_parser = parse_dtype, value_name = "T")]
    dtype: Option<DType>,

    /// Statistics per column (0) or per row (1) of a 2-D array, in its memory order
    #[arg(long, value_parser = clap::value_parser!(u8).range(0..=1), value_name = "0|1")]
    axis: Option<u8>,

    /// A histogram with this many bins
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    bins: Option<u64>,

    /// Exact percentiles, comma-separated, each in [0, 100] (numpy's linear method)
    #[arg(long, value_delimiter = ',', value_name = "P,...")]
    percentiles: Vec<f64>,

    /// Delta degrees of freedom of std (numpy's ddof)
    #[arg(long, default_value_t = 0, value_name = "N")]
    ddof: u64,

    /// Machine-readable output: one JSON object
    #[arg(long)]
    json: bool,
}

/// Runs `outcore stats`.
pub fn run(args: Args, g: &Global) -> Result<()> {
    for &p in &args.percentiles {
        if !(0.0..=100.0).contains(&p) {
            return Err(usage(format!("--percentiles: {p} is not in [0, 100]")));
        }
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
        percentiles: vec![1.0, 50.0, 99.0],
        ddof: 0,
        json: false,
    };
    run(args, g)
}

/// What is asked for.
struct Opts {
    bins: Option<usize>,
    ddof: u64,
    percentiles: Vec<f64>,
}

/// The statistics of one array or one lane, ready to print.
struct Row {
    count: u64,
    nan_count: u64,
    sum: Value,
    mean: f64,
    std: f64,
    min: Value,
    max: Value,
    argmin: Option<usize>,
    argmax: Option<usize>,
    /// Edges and counts.
    histogram: Option<(Vec<f64>, Vec<u64>)>,
    /// (as asked, value)
    percentiles: Vec<(f64, Value)>,
}

/// A number as JSON, exactly for integers (also beyond 2^53), `null` for NaN and infinities
/// (JSON has neither).
fn num<T: Debug>(x: T) -> Value {
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
fn elem<T: Element + Numeric>(x: T) -> Value {
    if matches!(T::DTYPE, DType::F32 | DType::F64) {
        fnum(x.as_())
    } else {
        num(x)
    }
}

/// A float as JSON (`null` for NaN or an infinity).
fn fnum(x: f64) -> Value {
    serde_json::Number::from_f64(x).map_or(Value::Null, Value::Number)
}

impl Row {
    fn to_json(&self) -> Value {
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

/// The whole-array summary: one streamed pass for the moments, extremes and NaN count, one
/// more for the histogram (its range is the data's min and max), and the percentile passes.
fn summarize<T>(a: &MappedArray<T>, o: &Opts) -> Result<Row>
where
    T: Numeric + SortKey + Element,
{
    let s = summary(a, o.ddof, o.bins)?;
    let percentiles = if o.percentiles.is_empty() {
        Vec::new()
    } else {
        let q = kernels::stream::percentiles(a, &o.percentiles, &quantile_options())?;
        o.percentiles
            .iter()
            .zip(q.values)
            .map(|(&p, v)| {
                let v = match v {
                    kernels::QuantileValue::Element(x) => elem(x),
                    kernels::QuantileValue::Float(f) => fnum(f),
                };
                (p, v)
            })
            .collect()
    };
    Ok(Row { percentiles, ..s })
}

/// The quantile passes' options: a candidate budget of 256 MiB, pages released behind.
fn quantile_options() -> kernels::QuantileOptions {
    let mut o = kernels::QuantileOptions::new();
    o.memory(256 << 20);
    o
}

/// Count, NaN count, sum, moments, extremes and the histogram of the finite values.
fn summary<T>(a: &MappedArray<T>, ddof: u64, bins: Option<usize>) -> Result<Row>
where
    T: Numeric + SortKey + Element,
{
    let d: &[T] = a;
    let m = kernels::moments(d);
    let nan_count = kernels::count(d, |x| x != x) as u64;
    let extremes = kernels::min_max(d);
    let (min, max) = extremes.map_or((Value::Null, Value::Null), |(lo, hi)| (elem(lo), elem(hi)));
    let histogram = match bins {
        None => None,
        Some(b) => {
            let range = match extremes.map(|(lo, hi)| (lo.as_(), hi.as_())) {
                Some((lo, hi)) if f64::is_finite(lo) && f64::is_finite(hi) => Some((lo, hi)),
                Some(_) => finite_range(d),
                None => None,
            }
            .unwrap_or((0.0, 1.0));
            let counts = kernels::histogram(d, b, Some(range))?;
            Some((edges(range, b), counts))
        }
    };
    Ok(Row {
        count: d.len() as u64,
        nan_count,
        sum: num(kernels::sum(d)),
        mean: m.mean(),
        std: m.std(ddof),
        min,
        max,
        argmin: kernels::argmin(d),
        argmax: kernels::argmax(d),
        histogram,
        percentiles: Vec::new(),
    })
}

/// The min and max of the finite values (a pass needed only when the data holds NaN or an
/// infinity); `None` if there is none.
fn finite_range<T: Numeric>(d: &[T]) -> Option<(f64, f64)> {
    use rayon::prelude::*;
    d.par_iter()
        .with_min_len(1 << 16)
        .map(|&x| x.as_())
        .filter(|x: &f64| x.is_finite())
        .fold(
            || None,
            |acc: Option<(f64, f64)>, x| {
                Some(acc.map_or((x, x), |(lo, hi)| (lo.min(x), hi.max(x))))
            },
        )
        .reduce(
            || None,
            |a, b| match (a, b) {
                (Some((a0, a1)), Some((b0, b1))) => Some((a0.min(b0), a1.max(b1))),
                (x, None) | (None, x) => x,
            },
        )
}

/// numpy's histogram edges: `linspace(lo, hi, bins + 1)`, a zero-width range widened by 0.5.
fn edges((mut lo, mut hi): (f64, f64), bins: usize) -> Vec<f64> {
    if lo == hi {
        lo -= 0.5;
        hi += 0.5;
    }
    let step = (hi - lo) / bins as f64;
    let mut e: Vec<f64> = (0..=bins).map(|i| i as f64 * step + lo).collect();
    e[bins] = hi;
    e
}

/// Per-lane summaries of a 2-D array: lane `i` is column `i` for axis 0, row `i` for axis 1,
/// whatever the memory order.
fn axis_rows<T>(a: &MappedArray<T>, axis: usize, ddof: u64) -> Result<Vec<Row>>
where
    T: Numeric + SortKey + Element,
{
    let v = a.view2()?;
    let lanes = if axis == 0 { v.ncols() } else { v.nrows() };
    let mut rows = Vec::with_capacity(lanes);
    for i in 0..lanes {
        let lane: Vec<T> = if axis == 0 {
            v.column(i).iter().copied().collect()
        } else {
            v.row(i).iter().copied().collect()
        };
        rows.push(summary_of_slice(&lane, ddof));
    }
    Ok(rows)
}

fn summary_of_slice<T: Numeric + SortKey + Element>(d: &[T], ddof: u64) -> Row {
    let m = kernels::moments(d);
    let (min, max) =
        kernels::min_max(d).map_or((Value::Null, Value::Null), |(lo, hi)| (elem(lo), elem(hi)));
    Row {
        count: d.len() as u64,
        nan_count: kernels::count(d, |x| x != x) as u64,
        sum: num(kernels::sum(d)),
        mean: m.mean(),
        std: m.std(ddof),
        min,
        max,
        argmin: kernels::argmin(d),
        argmax: kernels::argmax(d),
        histogram: None,
        percentiles: Vec::new(),
    }
}

fn print_header(file: &Path, dtype: DType, shape: &[usize]) {
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

fn print_row(r: &Row) {
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
