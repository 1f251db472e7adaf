//! Kernels against one-line naive references (property tests over chunk sizes, thread
#![allow(clippy::eq_op)] // `x != x` is the generic NaN test in the naive references.
//! counts and backings), named edge cases, and numpy on the same files.
//!
//! Float tolerance: sums and means are compared to a naive `f64` loop within
//! `1e-12 · Σ|x|` (both are far more accurate than that on these inputs; the bound covers
//! their different summation orders); variances within a relative `1e-9`. Integer results
//! are exact. Every kernel must also give bit-identical results for 1 and 2 threads.

use std::sync::OnceLock;

use outcore::kernels::{self, AxisStats, Moments, Numeric};
use outcore::stream::{self, Stream};
use outcore::{Element, Error, MappedArray, MappedArrayMut, ParOptions};
use proptest::prelude::*;

use crate::common;
use crate::require_numpy;

/// Chunk sizes × thread counts: one page (many chunks even for small inputs), three pages,
/// and the default; 1 and 2 threads. Built once so the pools are reused.
fn all_opts() -> &'static [ParOptions] {
    static OPTS: OnceLock<Vec<ParOptions>> = OnceLock::new();
    OPTS.get_or_init(|| {
        let mut v = Vec::new();
        for chunk in [4096, 3 * 4096, outcore::chunk::DEFAULT_CHUNK_BYTES] {
            for threads in [1, 2] {
                let mut o = ParOptions::new();
                o.chunk_bytes(chunk).threads(threads);
                v.push(o);
            }
        }
        v
    })
}

/// A slice of `T` backed by a mapped `.npy` file: its data starts 128 bytes past a page
/// boundary (after the header), so the first chunk is a partial page.
struct Mapped<T> {
    _dir: tempfile::TempDir,
    array: MappedArrayMut<T>,
}

impl<T: Element> Mapped<T> {
    fn new(data: &[T]) -> Mapped<T> {
        let dir = common::tmpdir();
        let mut array = MappedArrayMut::<T>::create(dir.path().join("a.npy"), &[data.len()])
            .expect("create")
            .persist()
            .expect("persist");
        array.copy_from_slice(data);
        Mapped { _dir: dir, array }
    }

    fn slice(&self) -> &[T] {
        &self.array
    }

    fn slice_mut(&mut self) -> &mut [T] {
        &mut self.array
    }
}

/// Runs `f` on every backing and option set; asserts the results agree bit for bit between
/// the thread counts of one chunk size ([`SameBits`]), and hands each to `check`.
fn each<T, R>(data: &[T], f: impl Fn(&[T], &ParOptions) -> R, check: impl Fn(&R))
where
    T: Element,
    R: std::fmt::Debug + SameBits,
{
    let mapped = Mapped::new(data);
    for backing in [data, mapped.slice()] {
        let mut prev: Option<R> = None;
        for (i, o) in all_opts().iter().enumerate() {
            let r = f(backing, o);
            check(&r);
            if i % 2 == 1 {
                let p = prev.take().expect("1-thread result");
                assert!(
                    p.same_bits(&r),
                    "1 vs 2 threads differ: {:.300} vs {:.300}",
                    format!("{p:?}"),
                    format!("{r:?}")
                );
            } else {
                prev = Some(r);
            }
        }
    }
}

/// Bit-for-bit equality of results: floats by `to_bits`, so `0.0` and `-0.0` differ and a
/// NaN equals only a NaN of the same bits; everything else by value.
trait SameBits {
    fn same_bits(&self, other: &Self) -> bool;
}

macro_rules! same_bits_by_value {
    ($($t:ty),*) => {$(
        impl SameBits for $t {
            fn same_bits(&self, other: &Self) -> bool {
                self == other
            }
        }
    )*};
}
same_bits_by_value!(u8, u16, u32, u64, u128, usize, i8, i16, i32, i64, i128);

impl SameBits for f32 {
    fn same_bits(&self, other: &Self) -> bool {
        self.to_bits() == other.to_bits()
    }
}

impl SameBits for f64 {
    fn same_bits(&self, other: &Self) -> bool {
        self.to_bits() == other.to_bits()
    }
}

impl<T: SameBits> SameBits for Option<T> {
    fn same_bits(&self, other: &Self) -> bool {
        match (self, other) {
            (Some(a), Some(b)) => a.same_bits(b),
            (None, None) => true,
            _ => false,
        }
    }
}

impl<A: SameBits, B: SameBits> SameBits for (A, B) {
    fn same_bits(&self, other: &Self) -> bool {
        self.0.same_bits(&other.0) && self.1.same_bits(&other.1)
    }
}

impl<T: SameBits> SameBits for Vec<T> {
    fn same_bits(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().zip(other).all(|(a, b)| a.same_bits(b))
    }
}

impl SameBits for Moments {
    fn same_bits(&self, other: &Self) -> bool {
        self.count == other.count
            && self.mean.same_bits(&other.mean)
            && self.m2.same_bits(&other.m2)
    }
}

impl<T: Numeric + SameBits> SameBits for AxisStats<T>
where
    T::Total: SameBits,
{
    fn same_bits(&self, other: &Self) -> bool {
        self.sum.same_bits(&other.sum)
            && self.min.same_bits(&other.min)
            && self.max.same_bits(&other.max)
            && self.moments.same_bits(&other.moments)
    }
}

/// Equality that treats NaN as equal to NaN, for comparing with the naive references.
fn same<R: std::fmt::Debug + PartialEq>(a: &R, b: &R) -> bool {
    a == b || format!("{a:?}") == format!("{b:?}")
}

fn close(ours: f64, reference: f64, tol: f64) -> bool {
    (ours.is_nan() && reference.is_nan()) || ours == reference || (ours - reference).abs() <= tol
}

// ---------- naive references (one line each) ----------

fn naive_min<T: Numeric>(v: &[T]) -> Option<T> {
    v.iter()
        .copied()
        .find(|x| x != x)
        .or_else(|| v.iter().copied().reduce(|a, x| if x < a { x } else { a }))
}
fn naive_max<T: Numeric>(v: &[T]) -> Option<T> {
    v.iter()
        .copied()
        .find(|x| x != x)
        .or_else(|| v.iter().copied().reduce(|a, x| if x > a { x } else { a }))
}
fn naive_argmin<T: Numeric>(v: &[T]) -> Option<usize> {
    v.iter()
        .position(|x| x != x)
        .or_else(|| naive_min(v).and_then(|m| v.iter().position(|&x| x == m)))
}
fn naive_argmax<T: Numeric>(v: &[T]) -> Option<usize> {
    v.iter()
        .position(|x| x != x)
        .or_else(|| naive_max(v).and_then(|m| v.iter().position(|&x| x == m)))
}
fn naive_var(v: &[f64], ddof: usize) -> f64 {
    let m = v.iter().sum::<f64>() / v.len() as f64;
    v.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / (v.len() as f64 - ddof as f64)
}

// ---------- strategies ----------

/// Floats with the special values mixed in now and then.
fn float_vec(max_len: usize) -> impl Strategy<Value = Vec<f64>> {
    let special = prop_oneof![
        Just(f64::NAN),
        Just(f64::INFINITY),
        Just(f64::NEG_INFINITY),
        Just(-0.0),
        Just(0.0)
    ];
    let x = prop_oneof![50 => -1e6..1e6f64, 1 => special];
    prop::collection::vec(x, 0..max_len)
}

fn finite_vec(max_len: usize) -> impl Strategy<Value = Vec<f64>> {
    prop::collection::vec(-1e6..1e6f64, 0..max_len)
}

fn abs_sum(v: &[f64]) -> f64 {
    v.iter().map(|x| x.abs()).filter(|x| x.is_finite()).sum()
}

proptest! {
    #![proptest_config(crate::common::proptest_config(64))]

    #[test]
    fn sum_f64(v in float_vec(3000)) {
        let reference: f64 = v.iter().sum();
        let tol = 1e-12 * abs_sum(&v) + 1e-300;
        each(&v, |d, o| kernels::sum_with(d, o).unwrap(), |&r| {
            assert!(close(r, reference, tol), "{r} vs {reference}");
        });
        let nan_ref: f64 = v.iter().filter(|x| !x.is_nan()).sum();
        each(&v, |d, o| kernels::nansum_with(d, o).unwrap(), |&r| {
            assert!(close(r, nan_ref, tol), "{r} vs {nan_ref}");
        });
    }

    #[test]
    fn sum_f32(v in prop::collection::vec(-1e3..1e3f32, 0..3000)) {
        let reference: f64 = v.iter().map(|&x| x as f64).sum();
        let tol = 1e-5 * v.iter().map(|x| x.abs() as f64).sum::<f64>() + 1e-30;
        each(&v, |d, o| kernels::sum_with(d, o).unwrap(), |&r| {
            assert!(close(r as f64, reference, tol), "{r} vs {reference}");
        });
    }

    #[test]
    fn sum_integers_exact(a in prop::collection::vec(any::<i64>(), 0..3000),
                          b in prop::collection::vec(any::<u64>(), 0..3000),
                          c in prop::collection::vec(any::<i8>(), 0..5000),
                          d in prop::collection::vec(any::<u32>(), 0..3000)) {
        let ra: i128 = a.iter().map(|&x| x as i128).sum();
        each(&a, |s, o| kernels::sum_with(s, o).unwrap(), |&r| assert_eq!(r, ra));
        let rb: u128 = b.iter().map(|&x| x as u128).sum();
        each(&b, |s, o| kernels::sum_with(s, o).unwrap(), |&r| assert_eq!(r, rb));
        let rc: i128 = c.iter().map(|&x| x as i128).sum();
        each(&c, |s, o| kernels::sum_with(s, o).unwrap(), |&r| assert_eq!(r, rc));
        let rd: u128 = d.iter().map(|&x| x as u128).sum();
        each(&d, |s, o| kernels::sum_with(s, o).unwrap(), |&r| assert_eq!(r, rd));
    }

    #[test]
    fn min_max_argmin_argmax_f64(v in float_vec(3000)) {
        let (mn, mx) = (naive_min(&v), naive_max(&v));
        each(&v, |d, o| kernels::min_max_with(d, o).unwrap(), |r| {
            assert!(same(&r.map(|m| m.0), &mn) && same(&r.map(|m| m.1), &mx), "{r:?} vs {mn:?} {mx:?}");
        });
        let (ai, aa) = (naive_argmin(&v), naive_argmax(&v));
        each(&v, |d, o| kernels::argmin_with(d, o).unwrap(), |&r| assert_eq!(r, ai));
        each(&v, |d, o| kernels::argmax_with(d, o).unwrap(), |&r| assert_eq!(r, aa));
        let clean: Vec<f64> = v.iter().copied().filter(|x| !x.is_nan()).collect();
        let (nmn, nmx) = (naive_min(&clean), naive_max(&clean));
        each(&v, |d, o| kernels::nanmin_with(d, o).unwrap(), |&r| assert_eq!(r, nmn));
        each(&v, |d, o| kernels::nanmax_with(d, o).unwrap(), |&r| assert_eq!(r, nmx));
    }

    #[test]
    fn min_max_argmin_integers(v in prop::collection::vec(any::<i16>(), 0..5000),
                               w in prop::collection::vec(0u64..5, 0..3000)) {
        each(&v, |d, o| kernels::min_max_with(d, o).unwrap(),
             |&r| assert_eq!(r, naive_min(&v).zip(naive_max(&v))));
        each(&v, |d, o| kernels::argmin_with(d, o).unwrap(), |&r| assert_eq!(r, naive_argmin(&v)));
        // Few distinct values: many ties, the first index must win.
        each(&w, |d, o| kernels::argmax_with(d, o).unwrap(), |&r| assert_eq!(r, naive_argmax(&w)));
        each(&w, |d, o| kernels::argmin_with(d, o).unwrap(), |&r| assert_eq!(r, naive_argmin(&w)));
    }

    #[test]
    fn mean_variance(v in finite_vec(3000), shift in -1e9..1e9f64) {
        // A large common offset is where a one-pass Σx² formula would lose everything.
        let v: Vec<f64> = v.iter().map(|x| x + shift).collect();
        let mean_ref = v.iter().sum::<f64>() / v.len() as f64;
        let tol = 1e-12 * abs_sum(&v) / v.len().max(1) as f64;
        each(&v, |d, o| kernels::mean_with(d, o).unwrap(), |&r| assert!(close(r, mean_ref, tol), "{r} vs {mean_ref}"));
        for ddof in [0u64, 1] {
            let var_ref = naive_var(&v, ddof as usize);
            each(&v, |d, o| kernels::variance_with(d, ddof, o).unwrap(), |&r| {
                // Relative tolerance; an absolute floor for near-zero variance at a large offset.
                let tol = 1e-9 * var_ref.abs() + 1e-18 * shift * shift;
                assert!(v.len() as u64 <= ddof && r.is_nan() || close(r, var_ref, tol), "ddof {ddof}: {r} vs {var_ref}");
            });
        }
    }

    #[test]
    fn nan_statistics(v in float_vec(2000)) {
        let clean: Vec<f64> = v.iter().copied().filter(|x| x.is_finite()).collect();
        // Infinities make the naive references themselves NaN or inf; keep to finite + NaN.
        let w: Vec<f64> = v.iter().copied().filter(|x| !x.is_infinite()).collect();
        let _ = clean;
        let kept: Vec<f64> = w.iter().copied().filter(|x| !x.is_nan()).collect();
        let m = kept.iter().sum::<f64>() / kept.len() as f64;
        let tol = 1e-12 * abs_sum(&kept) / kept.len().max(1) as f64;
        each(&w, |d, o| kernels::nanmean_with(d, o).unwrap(), |&r| assert!(close(r, m, tol), "{r} vs {m}"));
        let var_ref = naive_var(&kept, 0);
        each(&w, |d, o| kernels::nanmoments_with(d, o).unwrap(), |r: &Moments| {
            assert_eq!(r.count as usize, kept.len());
            assert!(close(r.variance(0), var_ref, 1e-9 * var_ref.abs()), "{} vs {var_ref}", r.variance(0));
        });
        // Plain moments propagate NaN.
        let has_nan = w.iter().any(|x| x.is_nan());
        each(&w, |d, o| kernels::moments_with(d, o).unwrap().mean(), |&r| assert_eq!(r.is_nan(), has_nan || w.is_empty()));
    }

    #[test]
    fn count_and_filter(v in prop::collection::vec(any::<i32>(), 0..5000), k in any::<i32>()) {
        let pred = move |x: &i32| *x < k;
        let reference: Vec<i32> = v.iter().copied().filter(pred).collect();
        each(&v, |d, o| kernels::count_with(d, o, pred).unwrap(), |&r| assert_eq!(r, reference.len()));
        each(&v, |d, o| kernels::filter_to_vec_with(d, o, pred).unwrap(), |r| assert_eq!(r, &reference));
        each(&v, |d, o| {
            let mut out = vec![7i32; d.len() + 3];
            let n = kernels::filter_into_with(d, &mut out, o, pred).unwrap();
            (n, out)
        }, |(n, out)| {
            assert_eq!(&out[..*n], &reference[..]);
            assert!(out[*n..].iter().all(|&x| x == 7), "past the count is untouched");
        });
    }

    #[test]
    fn map_and_zip(v in prop::collection::vec(any::<i32>(), 0..5000)) {
        let f = |x: i32| (x as f64) * 0.5 - 1.0;
        let reference: Vec<f64> = v.iter().map(|&x| f(x)).collect();
        each(&v, |d, o| {
            let mut out = vec![0.0f64; d.len()];
            kernels::map_into_with(d, &mut out, o, f).unwrap();
            out
        }, |r| assert_eq!(r, &reference));
        let inplace: Vec<i32> = v.iter().map(|x| x.wrapping_mul(3)).collect();
        let mut mapped = Mapped::new(&v);
        for o in all_opts() {
            let mut w = v.clone();
            kernels::map_in_place_with(&mut w, o, |x| x.wrapping_mul(3)).unwrap();
            prop_assert_eq!(&w, &inplace);
            mapped.slice_mut().copy_from_slice(&v);
            kernels::map_in_place_with(mapped.slice_mut(), o, |x| x.wrapping_mul(3)).unwrap();
            prop_assert_eq!(mapped.slice(), &inplace[..]);
        }
        let zipped: Vec<i64> = v.iter().zip(&inplace).map(|(&a, &b)| a as i64 - b as i64).collect();
        each(&v, |d, o| {
            let mut out = vec![0i64; d.len()];
            kernels::zip_into_with(d, &inplace, &mut out, o, |a, b| a as i64 - b as i64).unwrap();
            out
        }, |r| assert_eq!(r, &zipped));
    }

    #[test]
    fn cumsum(v in prop::collection::vec(-1000i32..1000, 0..5000), f in finite_vec(3000)) {
        let reference: Vec<i32> = v.iter().scan(0i32, |a, &x| { *a += x; Some(*a) }).collect();
        each(&v, |d, o| {
            let mut out = vec![0; d.len()];
            kernels::cumsum_into_with(d, &mut out, o).unwrap();
            out
        }, |r| assert_eq!(r, &reference));
        for o in all_opts() {
            let mut w = v.clone();
            kernels::cumsum_in_place_with(&mut w, o).unwrap();
            prop_assert_eq!(&w, &reference);
        }
        let fref: Vec<f64> = f.iter().scan(0.0, |a, &x| { *a += x; Some(*a) }).collect();
        let tol = 1e-12 * abs_sum(&f);
        each(&f, |d, o| {
            let mut out = vec![0.0; d.len()];
            kernels::cumsum_into_with(d, &mut out, o).unwrap();
            out
        }, |r| for (a, b) in r.iter().zip(&fref) { assert!(close(*a, *b, tol), "{a} vs {b}") });
    }

    #[test]
    fn histogram(v in float_vec(3000), bins in 1usize..40, lo in -1e6..0.0f64, width in 1.0..2e6f64) {
        let hi = lo + width;
        // The definition: bin i holds edge_i <= x < edge_{i+1}; the last bin also holds hi.
        let step = (hi - lo) / bins as f64;
        let edge = |i: usize| if i == bins { hi } else { i as f64 * step + lo };
        let mut reference = vec![0u64; bins];
        for &x in &v {
            if let Some(i) = (0..bins).find(|&i| edge(i) <= x && (x < edge(i + 1) || (i == bins - 1 && x == hi))) {
                reference[i] += 1;
            }
        }
        each(&v, |d, o| kernels::histogram_with(d, bins, Some((lo, hi)), o).unwrap(), |r| assert_eq!(r, &reference));
    }

    #[test]
    fn axis_statistics(cols in 1usize..9, rows in 1usize..700, seed in any::<u64>()) {
        let v: Vec<f64> = (0..rows * cols).map(|i| ((i as u64 ^ seed).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 40) as f64 * 1e-3 - 5e3).collect();
        let col = |j: usize| -> Vec<f64> { v.iter().skip(j).step_by(cols).copied().collect() };
        each(&v, |d, o| kernels::axis_stats_with(d, cols, 0, o).unwrap(), |s| {
            assert_eq!(s.len(), cols);
            for j in 0..cols {
                let c = col(j);
                let sum: f64 = c.iter().sum();
                assert!(close(s.sum[j], sum, 1e-12 * abs_sum(&c)));
                assert!(close(s.mean()[j], sum / rows as f64, 1e-12 * abs_sum(&c) / rows as f64));
                assert_eq!(Some(s.min[j]), naive_min(&c));
                assert_eq!(Some(s.max[j]), naive_max(&c));
                let var = naive_var(&c, 0);
                assert!(close(s.variance(0)[j], var, 1e-9 * var + 1e-12), "{} vs {var}", s.variance(0)[j]);
            }
        });
        each(&v, |d, o| kernels::axis_stats_with(d, cols, 1, o).unwrap(), |s| {
            assert_eq!(s.len(), rows);
            for (i, row) in v.chunks(cols).enumerate() {
                assert!(close(s.sum[i], row.iter().sum(), 1e-12 * abs_sum(row)));
                assert_eq!(Some(s.min[i]), naive_min(row));
                assert_eq!(Some(s.max[i]), naive_max(row));
                let var = naive_var(row, 0);
                assert!(close(s.variance(0)[i], var, 1e-9 * var + 1e-12));
            }
        });
        let iv: Vec<i64> = v.iter().map(|&x| (x * 1e3) as i64 * 1_000_000_007).collect();
        each(&iv, |d, o| kernels::axis_stats_with(d, cols, 0, o).unwrap(), |s| {
            for j in 0..cols {
                let c: i128 = iv.iter().skip(j).step_by(cols).map(|&x| x as i128).sum();
                assert_eq!(s.sum[j], c);
            }
        });
    }
}

// ---------- named edge cases ----------

#[test]
fn empty_input() {
    let e: [f64; 0] = [];
    assert_eq!(kernels::sum(&e), 0.0);
    assert_eq!(kernels::sum::<u8>(&[]), 0);
    assert_eq!(kernels::min_max(&e), None);
    assert_eq!(kernels::argmin(&e), None);
    assert_eq!(kernels::argmax::<i32>(&[]), None);
    assert_eq!(kernels::nanmin(&e), None);
    assert!(kernels::mean(&e).is_nan());
    assert!(kernels::variance(&e, 0).is_nan());
    assert_eq!(kernels::count(&e, |_| true), 0);
    assert_eq!(kernels::filter_to_vec(&e, |_| true), Vec::<f64>::new());
    assert_eq!(kernels::histogram(&e, 3, None).unwrap(), vec![0, 0, 0]);
    let mut m: [i32; 0] = [];
    kernels::cumsum_in_place(&mut m).unwrap();
    kernels::map_in_place(&mut m, |x| x + 1);
    assert!(kernels::axis_stats(&e, 3, 1).unwrap().is_empty());
    assert!(matches!(
        kernels::axis_stats(&e, 3, 0),
        Err(Error::BadShape { .. })
    ));
}

#[test]
fn one_element() {
    let v = [-3.5f64];
    assert_eq!(kernels::sum(&v), -3.5);
    assert_eq!(kernels::min_max(&v), Some((-3.5, -3.5)));
    assert_eq!(kernels::argmax(&v), Some(0));
    assert_eq!(kernels::mean(&v), -3.5);
    assert_eq!(kernels::variance(&v, 0), 0.0);
    assert!(
        kernels::variance(&v, 1).is_nan(),
        "ddof = n gives NaN like numpy"
    );
    assert_eq!(
        kernels::histogram(&v, 2, None).unwrap(),
        vec![0, 1],
        "zero-width range widened by ±0.5"
    );
    let mut c = [7u8];
    kernels::cumsum_in_place(&mut c).unwrap();
    assert_eq!(c, [7]);
}

#[test]
fn chunk_boundary_lengths() {
    // With one-page chunks on a page-aligned Vec allocation (u64: 512 per page), lengths
    // around multiples of a chunk, and the same through the offset mapping.
    let mut o = ParOptions::new();
    o.chunk_bytes(4096).threads(2);
    for len in [511usize, 512, 513, 1023, 1024, 1025, 2048, 4095, 4096, 4097] {
        let v: Vec<u64> = (0..len as u64).map(|x| x * x % 1009).collect();
        let mapped = Mapped::new(&v);
        for d in [&v[..], mapped.slice()] {
            assert_eq!(
                kernels::sum_with(d, &o).unwrap(),
                v.iter().map(|&x| x as u128).sum()
            );
            assert_eq!(kernels::argmax_with(d, &o).unwrap(), naive_argmax(&v));
            assert_eq!(kernels::argmin_with(d, &o).unwrap(), naive_argmin(&v));
            let mut out = vec![0u64; len];
            kernels::cumsum_into_with(d, &mut out, &o).unwrap();
            assert_eq!(out[len - 1], v.iter().sum::<u64>());
            assert_eq!(
                kernels::count_with(d, &o, |&x| x > 500).unwrap(),
                v.iter().filter(|&&x| x > 500).count()
            );
        }
    }
}

#[test]
fn nan_propagates_and_argmin_finds_the_first() {
    let mut v = vec![1.0f64; 5000];
    v[3001] = f64::NAN;
    v[4000] = f64::NAN;
    v[10] = -5.0;
    for o in all_opts() {
        assert!(kernels::sum_with(&v, o).unwrap().is_nan());
        assert!(kernels::mean_with(&v, o).unwrap().is_nan());
        assert!(kernels::variance_with(&v, 0, o).unwrap().is_nan());
        let (a, b) = kernels::min_max_with(&v, o).unwrap().unwrap();
        assert!(a.is_nan() && b.is_nan());
        assert_eq!(kernels::argmin_with(&v, o).unwrap(), Some(3001));
        assert_eq!(kernels::argmax_with(&v, o).unwrap(), Some(3001));
        assert_eq!(kernels::nanmin_with(&v, o).unwrap(), Some(-5.0));
        assert_eq!(kernels::nansum_with(&v, o).unwrap(), 4997.0 - 5.0);
    }
    assert_eq!(kernels::nanmin(&[f64::NAN, f64::NAN]), None);
    assert!(kernels::nanmean(&[f32::NAN]).is_nan());
    assert!(matches!(
        kernels::histogram(&v, 4, None),
        Err(Error::RangeNotFinite {
            from_data: true,
            ..
        })
    ));
    assert_eq!(
        kernels::histogram(&v, 2, Some((0.0, 2.0))).unwrap(),
        vec![0, 4997]
    );
}

#[test]
fn infinities() {
    let v = [1.0f64, f64::INFINITY, -2.0];
    assert_eq!(kernels::sum(&v), f64::INFINITY);
    assert_eq!(kernels::min_max(&v), Some((-2.0, f64::INFINITY)));
    assert_eq!(kernels::argmax(&v), Some(1));
    assert!(kernels::sum(&[f64::INFINITY, f64::NEG_INFINITY]).is_nan());
    assert!(
        kernels::variance(&v, 0).is_nan(),
        "inf - inf in the deviations, as numpy"
    );
    assert_eq!(
        kernels::argmin(&[f32::NEG_INFINITY, f32::NEG_INFINITY]),
        Some(0)
    );
    assert!(matches!(
        kernels::histogram(&v, 3, None),
        Err(Error::RangeNotFinite {
            lo: -2.0,
            hi: f64::INFINITY,
            from_data: true
        })
    ));
    // Long enough for the vectorised lanes: an infinity alone is not a NaN.
    let mut w = vec![0.5f64; 1000];
    w[333] = f64::INFINITY;
    w[777] = f64::NEG_INFINITY;
    assert_eq!(
        kernels::min_max(&w),
        Some((f64::NEG_INFINITY, f64::INFINITY))
    );
    assert_eq!(kernels::argmax(&w), Some(333));
    assert_eq!(kernels::argmin(&w), Some(777));
    // A NaN in the first position, then larger and smaller values.
    let mut z: Vec<f64> = (0..1000).map(f64::from).collect();
    z[0] = f64::NAN;
    assert!(kernels::min(&z).unwrap().is_nan());
    assert_eq!(kernels::argmax(&z), Some(0));
}

#[test]
fn negative_zero() {
    let v = [0.0f64, -0.0, 0.0];
    assert_eq!(
        kernels::argmin(&v),
        Some(0),
        "-0.0 == 0.0: the first wins, as numpy"
    );
    // numpy 2.4: np.min([0.0, -0.0, 0.0]) and np.sum([-0.0, -0.0]) are both +0.0.
    assert_eq!(kernels::min(&v).map(f64::to_bits), Some(0.0f64.to_bits()));
    let s = kernels::sum(&[-0.0f64, -0.0]);
    assert_eq!(s.to_bits(), 0.0f64.to_bits(), "sum is +0.0 as in numpy");
    let mut m = [-0.0f64; 3];
    kernels::map_in_place(&mut m, |x| -x);
    assert!(m.iter().all(|x| x.is_sign_positive()));
}

#[test]
fn integer_extremes() {
    let v = vec![i64::MAX; 4000];
    assert_eq!(kernels::sum(&v), 4000 * i64::MAX as i128);
    let w = vec![i64::MIN; 4000];
    assert_eq!(kernels::sum(&w), 4000 * i64::MIN as i128);
    assert_eq!(kernels::sum(&[u64::MAX; 3]), 3 * u64::MAX as u128);
    assert_eq!(kernels::sum(&[i8::MIN; 1000]), -128_000);
    assert_eq!(
        kernels::min_max(&[i64::MIN, 0, i64::MAX]),
        Some((i64::MIN, i64::MAX))
    );
    assert_eq!(kernels::mean(&[i64::MAX, i64::MAX]), i64::MAX as f64);
    // A prefix sum that overflows is an error and leaves the data as it was.
    let mut c = vec![1i64, i64::MAX, -5];
    let before = c.clone();
    assert!(matches!(
        kernels::cumsum_in_place(&mut c),
        Err(Error::Overflow { .. })
    ));
    assert_eq!(c, before);
    let mut out = [0u8; 3];
    assert!(matches!(
        kernels::cumsum_into(&[200u8, 50, 10], &mut out),
        Err(Error::Overflow { .. })
    ));
    assert_eq!(out, [0, 0, 0]);
    // Up to the limit is fine, and an overflow hidden in the middle of a chunk is found.
    let mut ok = [i8::MAX - 1, 1, -128, -1, 1];
    kernels::cumsum_in_place(&mut ok).unwrap();
    assert_eq!(ok, [126, 127, -1, -2, -1]);
    let mut mid = [100i8, 27, 1, -100];
    assert!(matches!(
        kernels::cumsum_in_place(&mut mid),
        Err(Error::Overflow { .. })
    ));
    assert_eq!(mid, [100, 27, 1, -100], "the data is unchanged");
}

#[test]
fn length_mismatches_are_errors() {
    let a = [1u32, 2, 3];
    let mut short = [0u32; 2];
    assert!(matches!(
        kernels::map_into(&a, &mut short, |x| x),
        Err(Error::LengthMismatch { .. })
    ));
    assert!(matches!(
        kernels::zip_into(&a, &[1u32; 2], &mut [0u32; 3], |x, y| x + y),
        Err(Error::LengthMismatch { .. })
    ));
    assert!(matches!(
        kernels::zip_into(&a, &a, &mut short, |x, y| x + y),
        Err(Error::LengthMismatch { .. })
    ));
    assert!(matches!(
        kernels::cumsum_into(&a, &mut short),
        Err(Error::LengthMismatch { .. })
    ));
    assert!(matches!(
        kernels::filter_into(&a, &mut short, |_| true),
        Err(Error::LengthMismatch { .. })
    ));
    assert_eq!(short, [0, 0], "nothing written");
    assert!(matches!(
        kernels::axis_stats(&a, 2, 0),
        Err(Error::BadShape { .. })
    ));
    assert!(matches!(
        kernels::axis_stats(&a, 0, 0),
        Err(Error::BadShape { .. })
    ));
    assert!(matches!(
        kernels::axis_stats(&a, 3, 2),
        Err(Error::BadAxis { axis: 2, ndim: 2 })
    ));
    assert!(matches!(
        kernels::histogram(&a, 0, None),
        Err(Error::NoBins)
    ));
    assert!(matches!(
        kernels::histogram(&a, 3, Some((2.0, 1.0))),
        Err(Error::RangeReversed { lo: 2.0, hi: 1.0 })
    ));
}

#[test]
fn float_sum_at_least_as_accurate_as_numpy() {
    require_numpy!();
    // Values where a naive running sum loses digits: a large term then many small ones,
    // with alternating magnitudes. math.fsum is the exact reference.
    let dir = common::tmpdir();
    let raw = dir.path().join("acc.npy");
    let out = common::python(
        "rng = np.random.default_rng(7)\n\
         a = np.concatenate([[1e8], rng.random(1_000_000) * 1e-3, [-1e8], rng.normal(0, 1e4, 100_000)])\n\
         np.save(sys.argv[1], a)\n\
         import math\n\
         print(repr(math.fsum(a)), repr(float(a.sum())))",
        &[raw.to_str().unwrap()],
    );
    let mut it = out.split_whitespace().map(|s| s.parse::<f64>().unwrap());
    let (exact, np_sum) = (it.next().unwrap(), it.next().unwrap());
    let v = MappedArray::<f64>::open(&raw).unwrap();
    let naive: f64 = v.iter().sum();
    for o in all_opts() {
        let ours = kernels::sum_with(&v, o).unwrap();
        let (e_ours, e_np) = ((ours - exact).abs(), (np_sum - exact).abs());
        assert!(
            e_ours <= e_np.max(4.0 * f64::EPSILON * exact.abs()),
            "ours {e_ours:e} vs numpy {e_np:e}"
        );
    }
    assert!(
        (naive - exact).abs() > (kernels::sum(&v) - exact).abs(),
        "data must defeat naive summation"
    );
}

#[test]
fn matches_numpy() {
    require_numpy!();
    let dir = common::tmpdir();
    let raw = dir.path().join("a.npy");
    let cs = dir.path().join("cumsum.npy");
    let two = dir.path().join("m.npy");
    // Statistics of a normal sample at a large offset, histogram counts, cumsum, column
    // means of a 2-D array; numpy's results are printed (repr round-trips exactly).
    let out = common::python(
        "rng = np.random.default_rng(42)\n\
         a = rng.normal(1e6, 3.0, 100_003)\n\
         np.save(sys.argv[1], a)\n\
         np.save(sys.argv[2], np.cumsum(a))\n\
         m = rng.normal(0, 1, (5001, 7)) * np.arange(1, 8)\n\
         np.save(sys.argv[3], m)\n\
         vals = [a.sum(), a.mean(), a.var(), a.var(ddof=1), a.min(), a.max(), a.argmin(), a.argmax()]\n\
         print(' '.join(repr(float(x)) for x in vals))\n\
         print(' '.join(str(c) for c in np.histogram(a, 37)[0]))\n\
         print(' '.join(repr(float(x)) for x in m.mean(axis=0)))\n\
         print(' '.join(repr(float(x)) for x in m.var(axis=0)))",
        &[raw.to_str().unwrap(), cs.to_str().unwrap(), two.to_str().unwrap()],
    );
    let lines: Vec<Vec<f64>> = out
        .lines()
        .map(|l| l.split_whitespace().map(|s| s.parse().unwrap()).collect())
        .collect();
    let a = MappedArray::<f64>::open(&raw).unwrap();
    let np_cumsum = MappedArray::<f64>::open(&cs).unwrap();
    let m = MappedArray::<f64>::open(&two).unwrap();
    assert_eq!(m.shape(), &[5001, 7]);
    let s = &lines[0];
    let rel =
        |x: f64, y: f64, tol: f64| assert!((x - y).abs() <= tol * y.abs(), "{x} vs numpy {y}");
    for o in all_opts() {
        // Tolerances: sums and means relative 1e-13; variances relative 1e-9 (numpy's
        // two-pass variance and our merged moments round differently); min, max, argmin,
        // argmax and histogram counts exact.
        rel(kernels::sum_with(&a, o).unwrap(), s[0], 1e-13);
        rel(kernels::mean_with(&a, o).unwrap(), s[1], 1e-13);
        rel(kernels::variance_with(&a, 0, o).unwrap(), s[2], 1e-9);
        rel(kernels::variance_with(&a, 1, o).unwrap(), s[3], 1e-9);
        assert_eq!(kernels::min_max_with(&a, o).unwrap(), Some((s[4], s[5])));
        assert_eq!(kernels::argmin_with(&a, o).unwrap(), Some(s[6] as usize));
        assert_eq!(kernels::argmax_with(&a, o).unwrap(), Some(s[7] as usize));
        let h: Vec<f64> = kernels::histogram_with(&a, 37, None, o)
            .unwrap()
            .into_iter()
            .map(|c| c as f64)
            .collect();
        assert_eq!(h, lines[1]);
        let mut c = vec![0.0; a.len()];
        kernels::cumsum_into_with(&a, &mut c, o).unwrap();
        for (x, y) in c.iter().zip(np_cumsum.iter()) {
            rel(*x, *y, 1e-12);
        }
        let st = kernels::axis_stats_with(&m, 7, 0, o).unwrap();
        for (j, (mu, var)) in st.mean().iter().zip(st.variance(0)).enumerate() {
            assert!(
                (mu - lines[2][j]).abs() <= 1e-12 * (j + 1) as f64,
                "column {j} mean {mu} vs {}",
                lines[2][j]
            );
            rel(var, lines[3][j], 1e-10);
        }
    }
}

#[test]
fn map_and_filter_into_npy_files_numpy_reads() {
    let dir = common::tmpdir();
    let src: Vec<i32> = (0..30_000).map(|i| (i * 7919) % 10_007 - 5000).collect();
    let mapped = dir.path().join("mapped.npy");
    let mut o = ParOptions::new();
    o.chunk_bytes(4096).threads(2);
    let out =
        kernels::map_to_file_with(&src, &[100, 300], &mapped, &o, |x| x as f64 * 0.25).unwrap();
    assert_eq!(out.shape(), &[100, 300]);
    assert!(out.iter().zip(&src).all(|(&y, &x)| y == x as f64 * 0.25));
    let kept = dir.path().join("kept.npy");
    let n = kernels::filter_to_file_with(&src, &kept, &o, |&x| x % 3 == 0).unwrap();
    let reference: Vec<i32> = src.iter().copied().filter(|x| x % 3 == 0).collect();
    assert_eq!(n, reference.len());
    assert_eq!(
        &MappedArray::<i32>::open(&kept).unwrap()[..],
        &reference[..]
    );
    // No temporary files are left beside the outputs.
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
    if common::have_numpy() {
        let out = common::python(
            "m = np.load(sys.argv[1]); k = np.load(sys.argv[2])\n\
             print(m.shape, m.dtype, repr(float(m.sum())), k.dtype, len(k), int(k.sum()))",
            &[mapped.to_str().unwrap(), kept.to_str().unwrap()],
        );
        let expect_sum: f64 = src.iter().map(|&x| x as f64 * 0.25).sum();
        assert_eq!(
            out.trim(),
            format!(
                "(100, 300) float64 {expect_sum:?} int32 {} {}",
                reference.len(),
                reference.iter().map(|&x| x as i64).sum::<i64>()
            )
        );
    }
}

#[test]
fn file_outputs_fail_cleanly() {
    let dir = common::tmpdir();
    let path = dir.path().join("out.npy");
    let src = [1u8, 2, 3];
    assert!(matches!(
        kernels::map_to_file(&src, &[2, 2], &path, |x| x),
        Err(Error::LengthMismatch { .. })
    ));
    let missing = dir.path().join("no-such-dir").join("out.npy");
    assert!(matches!(
        kernels::filter_to_file(&src, &missing, |_| true),
        Err(Error::NotFound { .. })
    ));
    assert!(matches!(
        kernels::map_to_file(&src, &[3], &missing, |x| x),
        Err(Error::NotFound { .. })
    ));
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "nothing left behind"
    );
}

#[test]
fn streaming_windows_match_whole_slice() {
    let dir = common::tmpdir();
    let path = dir.path().join("s.npy");
    let v: Vec<f64> = (0..200_003)
        .map(|i| ((i * 31) % 1000) as f64 - 400.0)
        .collect();
    let mut a = MappedArrayMut::<f64>::create(&path, &[v.len()]).unwrap();
    a.copy_from_slice(&v);
    drop(a.persist().unwrap());
    let a = MappedArray::<f64>::open(&path).unwrap();
    for (release, will_need) in [(false, false), (true, false), (true, true)] {
        let mut s = Stream::new();
        s.window_bytes(64 * 1024)
            .release_behind(release)
            .will_need(will_need);
        let mut next = 0;
        let parts = stream::windows(&a, &s, |start, w| {
            assert_eq!(start, next, "windows in order, contiguous");
            next += w.len();
            Ok((kernels::sum(w), kernels::moments(w), kernels::min_max(w)))
        })
        .unwrap();
        assert_eq!(next, v.len());
        assert!(parts.len() > 10);
        let total: f64 = parts.iter().map(|p| p.0).sum();
        assert_eq!(total, v.iter().sum::<f64>(), "integers in f64: exact");
        let m = parts.iter().fold(Moments::EMPTY, |a, p| a.merge(p.1));
        assert!((m.variance(0) - kernels::variance(&v, 0)).abs() < 1e-9 * m.variance(0));
        assert_eq!(
            parts
                .iter()
                .filter_map(|p| p.2)
                .map(|p| p.0)
                .fold(f64::INFINITY, f64::min),
            -400.0
        );
    }
    // Chunk-wise streaming is bit-identical to the kernels on the whole mapping.
    for o in all_opts() {
        for (release, will_need) in [(false, false), (true, false), (true, true)] {
            let mut s = Stream::new();
            s.release_behind(release).will_need(will_need);
            let r = stream::fold_chunks(
                &a,
                o,
                &s,
                |c| (kernels::sum(c), kernels::moments(c)),
                |x, y| (x.0 + y.0, x.1.merge(y.1)),
            )
            .unwrap()
            .unwrap();
            assert_eq!(r.0.to_bits(), kernels::sum_with(&a, o).unwrap().to_bits());
            assert_eq!(r.1, kernels::moments_with(&a, o).unwrap());
        }
    }
    // In place through windows, released behind: the file holds the result.
    drop(a);
    let mut w = MappedArrayMut::<f64>::open(&path).unwrap();
    let mut s = Stream::new();
    s.window_bytes(64 * 1024).release_behind(true);
    stream::windows_mut(&mut w, &s, |_, win| {
        kernels::map_in_place_with(win, &ParOptions::new(), |x| x * 2.0)
    })
    .unwrap();
    drop(w);
    let back = MappedArray::<f64>::open(&path).unwrap();
    assert!(back.iter().zip(&v).all(|(&b, &x)| b == 2.0 * x));
}

/// The `_with` twins of `std` and `nanvar` with default chunks give the plain function's
/// result bit for bit, on 1 and on 2 threads (the data spans several default chunks).
#[test]
fn std_and_nanvar_with_match_the_plain_functions() {
    let n = 3 * ParOptions::new().get_chunk_bytes() / std::mem::size_of::<f64>() + 12_345;
    let v: Vec<f64> = (0..n)
        .map(|i| ((i as u64).wrapping_mul(2_654_435_761) % 1_000_003) as f64 * 1e-3)
        .collect();
    let mut with_nan = v.clone();
    for i in (0..n).step_by(997) {
        with_nan[i] = f64::NAN;
    }
    for threads in [1, 2] {
        let mut o = ParOptions::new();
        o.threads(threads);
        for ddof in [0, 1] {
            assert_eq!(
                kernels::std_with(&v, ddof, &o).unwrap().to_bits(),
                kernels::std(&v, ddof).to_bits(),
                "std_with, {threads} threads, ddof {ddof}"
            );
            assert_eq!(
                kernels::nanvar_with(&with_nan, ddof, &o).unwrap().to_bits(),
                kernels::nanvar(&with_nan, ddof).to_bits(),
                "nanvar_with, {threads} threads, ddof {ddof}"
            );
            assert!(!kernels::nanvar(&with_nan, ddof).is_nan());
        }
    }
}
