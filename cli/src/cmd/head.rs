//! `outcore head`: the first elements (1-D) or rows (N-D) of an array, printed exactly as
//! numpy prints them (`print(np.load(FILE, mmap_mode='r')[:N])` with numpy's default print
//! options).
//!
//! The rules are numpy's `arrayprint`: integers right-aligned to a common width; floats in
//! the `maxprec` mode (the shortest digits that round-trip, at most 8 after the point, the
//! point kept for whole numbers, padded to a common layout), scientific notation when the
//! largest magnitude reaches 1e8 (1e6 for `f32`), the smallest is below 1e-4, or they are
//! more than a factor 1000 apart; lines wrapped at 75 characters; arrays of more than 1000
//! elements summarised with `...` around their first and last 3 items on each axis.

use std::io::Write;
use std::path::PathBuf;

use outcore::{with_any, DType};

use crate::error::{fail, Result};
use crate::files::{open_input, parse_dtype};
use crate::Global;

/// Print the first N elements (1-D) or rows (2-D and more) the way numpy prints them.
///
/// The output is byte for byte what `print(np.load(FILE, mmap_mode='r')[:N])` prints with
/// numpy's default print options (line width 75, precision 8, arrays of more than 1000
/// elements summarised with "..."). Fortran-ordered arrays print their logical rows. Only
/// the printed elements are read.
///
/// Example:
///   outcore head sorted.npy -n 5
///   outcore head data.raw --dtype i32 -n 20
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// The .npy or raw file
    #[arg(value_name = "FILE")]
    file: PathBuf,

    /// How many elements (1-D) or rows (N-D) to print
    #[arg(short = 'n', long = "lines", value_name = "N", default_value_t = 10)]
    n: usize,

    /// Element type of a raw (headerless) file; for a .npy it must match the header
    #[arg(long, value_name = "T", value_parser = parse_dtype)]
    dtype: Option<DType>,
}

/// numpy's default `linewidth`.
const LINE_WIDTH: usize = 75;
/// numpy's default `threshold`: larger arrays are summarised.
const THRESHOLD: usize = 1000;
/// numpy's default `edgeitems`.
const EDGE_ITEMS: usize = 3;
/// numpy's default `precision`.
const PRECISION: usize = 8;

/// Runs `outcore head`.
pub fn run(args: Args, _g: &Global) -> Result<()> {
    let input = open_input(&args.file, args.dtype)?;
    let a = &input.array;
    let shape = a.shape().to_vec();
    let fortran = a.is_fortran_order();
    let text = if shape.is_empty() {
        // A 0-d array has no rows: print its one value, as numpy prints such an array.
        let words = with_any!(a, m => format_words(&m[..1], a.dtype() == DType::Bool, true));
        words[0].clone()
    } else {
        let mut shown = shape.clone();
        shown[0] = shown[0].min(args.n);
        let size: usize = shown.iter().product();
        if size == 0 {
            "[]".to_string()
        } else {
            let summarize = size > THRESHOLD;
            let axes: Vec<Vec<usize>> = shown
                .iter()
                .map(|&len| {
                    if summarize && len > 2 * EDGE_ITEMS {
                        (0..EDGE_ITEMS).chain(len - EDGE_ITEMS..len).collect()
                    } else {
                        (0..len).collect()
                    }
                })
                .collect();
            let offsets = element_offsets(&shape, fortran, &axes);
            let words = with_any!(a, m => {
                let vals: Vec<_> = offsets.iter().map(|&o| m[o]).collect();
                format_words(&vals, a.dtype() == DType::Bool, false)
            });
            let layout = Layout {
                lens: axes.iter().map(Vec::len).collect(),
                summarized: shown
                    .iter()
                    .map(|&len| summarize && len > 2 * EDGE_ITEMS)
                    .collect(),
                words,
            };
            layout.render(0, 0, " ", LINE_WIDTH)
        }
    };
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{text}")
        .and_then(|()| stdout.flush())
        .map_err(|e| fail(format!("cannot write to stdout: {e}")))
}

/// Memory offsets of the elements at every combination of the given per-axis indices, in
/// C order of the combinations (the last axis varying fastest).
fn element_offsets(shape: &[usize], fortran: bool, axes: &[Vec<usize>]) -> Vec<usize> {
    let nd = shape.len();
    let mut strides = vec![1usize; nd];
    if fortran {
        for k in 1..nd {
            strides[k] = strides[k - 1] * shape[k - 1];
        }
    } else {
        for k in (0..nd.saturating_sub(1)).rev() {
            strides[k] = strides[k + 1] * shape[k + 1];
        }
    }
    let mut out = vec![0usize];
    for (idx, &stride) in axes.iter().zip(&strides) {
        out = out
            .iter()
            .flat_map(|&base| idx.iter().map(move |&i| base + i * stride))
            .collect();
    }
    out
}

/// The printed elements (already formatted, in C order) and how they nest.
struct Layout {
    /// Items shown along each axis.
    lens: Vec<usize>,
    /// Whether each axis is summarised (then `lens` is 2 × [`EDGE_ITEMS`] and `...`
    /// goes in the middle).
    summarized: Vec<bool>,
    words: Vec<String>,
}

impl Layout {
    /// numpy's `_formatArray.recurser` for the sub-array at `axis` starting at `base`.
    fn render(&self, axis: usize, base: usize, hanging: &str, width: usize) -> String {
        let nd = self.lens.len();
        if axis == nd {
            return self.words[base].clone();
        }
        let next_hanging = format!("{hanging} ");
        let next_width = width - 1;
        let len = self.lens[axis];
        let stride: usize = self.lens[axis + 1..].iter().product();
        let leading = if self.summarized[axis] { EDGE_ITEMS } else { 0 };
        let child = |i: usize| self.render(axis + 1, base + i * stride, &next_hanging, next_width);
        let mut s = String::new();
        if nd - axis == 1 {
            // The last axis: elements, wrapped to the width.
            let elem_width = width - 1;
            let mut line = hanging.to_string();
            for i in 0..leading {
                extend_line(&mut s, &mut line, &child(i), elem_width, hanging);
                line.push(' ');
            }
            if self.summarized[axis] {
                extend_line(&mut s, &mut line, "...", elem_width, hanging);
                line.push(' ');
            }
            for i in leading..len - 1 {
                extend_line(&mut s, &mut line, &child(i), elem_width, hanging);
                line.push(' ');
            }
            extend_line(&mut s, &mut line, &child(len - 1), elem_width, hanging);
            s.push_str(&line);
        } else {
            let line_sep = "\n".repeat(nd - axis - 1);
            for i in 0..leading {
                s.push_str(hanging);
                s.push_str(&child(i));
                s.push_str(&line_sep);
            }
            if self.summarized[axis] {
                s.push_str(hanging);
                s.push_str("...");
                s.push_str(&line_sep);
            }
            for i in leading..len - 1 {
                s.push_str(hanging);
                s.push_str(&child(i));
                s.push_str(&line_sep);
            }
            s.push_str(hanging);
            s.push_str(&child(len - 1));
        }
        format!("[{}]", &s[hanging.len()..])
    }
}

/// numpy's `_extendLine` (a word is never multi-line here: only elements go on a line).
fn extend_line(s: &mut String, line: &mut String, word: &str, width: usize, prefix: &str) {
    let needs_wrap = line.len() + word.len() > width && line.len() > prefix.len();
    if needs_wrap {
        s.push_str(line.trim_end());
        s.push('\n');
        *line = prefix.to_string();
    }
    line.push_str(word);
}

/// Formats every value with the common layout numpy would choose for them all.
fn format_words<T: NpFormat>(vals: &[T], is_bool: bool, scalar: bool) -> Vec<String> {
    if is_bool {
        let t = if scalar { "True" } else { " True" };
        return vals
            .iter()
            .map(|v| if v.is_nonzero() { t } else { "False" }.to_string())
            .collect();
    }
    T::format_all(vals)
}

/// How numpy prints one element type.
trait NpFormat: Copy {
    /// The printed form of each value, laid out in common (numpy's `IntegerFormat` or
    /// `FloatingFormat`).
    fn format_all(vals: &[Self]) -> Vec<String>;
    /// For `bool` arrays (held as `u8`).
    fn is_nonzero(self) -> bool;
}

macro_rules! int_format {
    ($($t:ty),*) => {$(
        impl NpFormat for $t {
            fn format_all(vals: &[Self]) -> Vec<String> {
                let width = match (vals.iter().max(), vals.iter().min()) {
                    (Some(max), Some(min)) => max.to_string().len().max(min.to_string().len()),
                    _ => 0,
                };
                vals.iter().map(|v| format!("{v:>width$}")).collect()
            }
            fn is_nonzero(self) -> bool {
                self != 0
            }
        }
    )*};
}
int_format!(u8, u16, u32, u64, i8, i16, i32, i64);

/// A float type as numpy's `FloatingFormat` sees it.
trait Float: Copy + PartialOrd + std::fmt::Display + std::fmt::LowerExp {
    /// `10.**min(8, finfo(T).precision)`: from this magnitude on, scientific notation.
    const EXP_CUTOFF_MAX: f64;
    fn is_finite(self) -> bool;
    fn is_nan(self) -> bool;
    fn is_sign_negative(self) -> bool;
    fn abs(self) -> Self;
    fn is_zero(self) -> bool;
    fn to_f64(self) -> f64;
    /// `min < 0.0001 or max / min > 1000.`, in the type's own arithmetic as numpy does it.
    fn small_or_spread(min: Self, max: Self) -> bool;
}

macro_rules! float_impl {
    ($t:ty, $cutoff:expr) => {
        impl Float for $t {
            const EXP_CUTOFF_MAX: f64 = $cutoff;
            fn is_finite(self) -> bool {
                <$t>::is_finite(self)
            }
            fn is_nan(self) -> bool {
                <$t>::is_nan(self)
            }
            fn is_sign_negative(self) -> bool {
                <$t>::is_sign_negative(self)
            }
            fn abs(self) -> Self {
                <$t>::abs(self)
            }
            fn is_zero(self) -> bool {
                self == 0.0
            }
            fn to_f64(self) -> f64 {
                self as f64
            }
            fn small_or_spread(min: Self, max: Self) -> bool {
                min < 0.0001 || max / min > 1000.0
            }
        }
        impl NpFormat for $t {
            fn format_all(vals: &[Self]) -> Vec<String> {
                float_format(vals)
            }
            fn is_nonzero(self) -> bool {
                self != 0.0
            }
        }
    };
}
float_impl!(f32, 1e6);
float_impl!(f64, 1e8);

/// The digits of `x.abs()` in positional notation, at most [`PRECISION`] after the point,
/// trailing zeros trimmed, the point kept: `("12", "5")` for 12.5, `("1", "")` for 1.
fn positional<T: Float>(x: T) -> (String, String) {
    let a = x.abs();
    let mut s = format!("{a}");
    if let Some((_, frac)) = s.split_once('.') {
        if frac.len() > PRECISION {
            s = format!("{a:.PRECISION$}");
            let t = s.trim_end_matches('0').to_string();
            s = t;
        }
    }
    let (int, frac) = s.split_once('.').unwrap_or((&s, ""));
    (int.to_string(), frac.to_string())
}

/// The mantissa digits (before and after the point) and exponent of `x.abs()` in
/// scientific notation: the shortest round-trip digits, at most `max_frac` after the point.
fn scientific<T: Float>(x: T, max_frac: usize) -> (String, String, i32) {
    let a = x.abs();
    let mut s = format!("{a:e}");
    let frac_len = s
        .split_once('e')
        .map(|(m, _)| m.split_once('.').map_or(0, |(_, f)| f.len()))
        .unwrap_or(0);
    if frac_len > max_frac {
        s = format!("{a:.max_frac$e}");
        let (m, e) = s.split_once('e').expect("an exponent");
        let m = if m.contains('.') {
            m.trim_end_matches('0')
        } else {
            m
        };
        s = format!("{m}e{e}");
    }
    split_sci(&s)
}

/// `x.abs()` in scientific notation with exactly `frac` digits after the point.
fn scientific_exact<T: Float>(x: T, frac: usize) -> (String, String, i32) {
    split_sci(&format!("{:.frac$e}", x.abs()))
}

fn split_sci(s: &str) -> (String, String, i32) {
    let (m, e) = s.split_once('e').expect("an exponent");
    let (int, frac) = m.split_once('.').unwrap_or((m, ""));
    (
        int.to_string(),
        frac.to_string(),
        e.parse().expect("an integer exponent"),
    )
}

/// numpy's `FloatingFormat` in its default mode (`maxprec`, precision 8, sign `-`).
fn float_format<T: Float>(vals: &[T]) -> Vec<String> {
    let finite: Vec<T> = vals.iter().copied().filter(|v| v.is_finite()).collect();
    let nonzero: Vec<T> = finite
        .iter()
        .map(|v| v.abs())
        .filter(|v| !v.is_zero())
        .collect();
    let mut exp_format = false;
    if !nonzero.is_empty() {
        let max = nonzero
            .iter()
            .copied()
            .fold(nonzero[0], |m, v| if v > m { v } else { m });
        let min = nonzero
            .iter()
            .copied()
            .fold(nonzero[0], |m, v| if v < m { v } else { m });
        exp_format = max.to_f64() >= T::EXP_CUTOFF_MAX || T::small_or_spread(min, max);
    }
    let sign = |v: T| if v.is_sign_negative() { "-" } else { "" };
    let (mut pad_left, pad_right, precision, exp_size);
    if finite.is_empty() {
        pad_left = 0;
        pad_right = 0;
        precision = 0;
        exp_size = 0;
    } else if exp_format {
        let parts: Vec<(String, String, i32)> =
            finite.iter().map(|&v| scientific(v, PRECISION)).collect();
        exp_size = parts
            .iter()
            .map(|(_, _, e)| e.unsigned_abs().to_string().len().max(2))
            .max()
            .unwrap_or(2);
        precision = parts.iter().map(|(_, f, _)| f.len()).max().unwrap_or(0);
        pad_left = finite
            .iter()
            .zip(&parts)
            .map(|(&v, (i, _, _))| sign(v).len() + i.len())
            .max()
            .unwrap_or(0);
        pad_right = exp_size + 2 + precision;
    } else {
        let parts: Vec<(String, String)> = finite.iter().map(|&v| positional(v)).collect();
        pad_left = finite
            .iter()
            .zip(&parts)
            .map(|(&v, (i, _))| sign(v).len() + i.len())
            .max()
            .unwrap_or(0);
        pad_right = parts.iter().map(|(_, f)| f.len()).max().unwrap_or(0);
        precision = 0;
        exp_size = 0;
    }
    if finite.len() != vals.len() {
        let neginf = vals
            .iter()
            .any(|v| !v.is_finite() && !v.is_nan() && v.is_sign_negative());
        let offset = pad_right as isize + 1;
        pad_left = (pad_left as isize)
            .max(3 - offset)
            .max(3 + neginf as isize - offset) as usize;
    }
    let total = pad_left + pad_right + 1;
    vals.iter()
        .map(|&v| {
            if v.is_nan() {
                format!("{:>total$}", "nan")
            } else if !v.is_finite() {
                format!("{:>total$}", format!("{}inf", sign(v)))
            } else if exp_format {
                let (int, frac, e) = scientific_exact(v, precision);
                let mant = format!("{}{int}", sign(v));
                let esign = if e < 0 { '-' } else { '+' };
                format!(
                    "{mant:>pad_left$}.{frac}e{esign}{:0>exp_size$}",
                    e.unsigned_abs()
                )
            } else {
                let (int, frac) = positional(v);
                let int = format!("{}{int}", sign(v));
                format!("{int:>pad_left$}.{frac:<pad_right$}")
            }
        })
        .collect()
}
