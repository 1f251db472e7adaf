//! The fused summary against the separate kernels, bit for bit (`to_bits`, so `0.0` vs
//! `-0.0` would fail), for 1 and 2 threads, three chunk sizes, a `Vec` and a mapped file;
//! against numpy on every dtype; per-lane summaries of C- and Fortran-ordered 2-D files
//! against numpy's `axis=` reductions; user reducers fused with the built-in ones.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use outcore::kernels::{
    self, reducer, DescribeOptions, MinMaxReducer, Moments, Numeric, QuantileMethod, QuantileValue,
    SumReducer, Summary,
};
use outcore::sort::SortKey;
use outcore::stream::{self, Stream};
use outcore::{Element, Error, MappedArray, MappedArrayMut, ParOptions};

use crate::common;
use crate::require_numpy;

/// One page, three pages, the default chunk; 1 and 2 threads.
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

fn release() -> Stream {
    let mut s = Stream::new();
    s.release_behind(true);
    s
}

fn write<T: Element>(dir: &Path, name: &str, data: &[T]) -> PathBuf {
    let path = dir.join(format!("{name}.npy"));
    let mut a = MappedArrayMut::<T>::create(&path, &[data.len()])
        .expect("create")
        .persist()
        .expect("persist");
    a.copy_from_slice(data);
    path
}

/// Equality of elements: bits for floats (as `f64`, exact for `f32`), value for integers.
fn same_t<T: Numeric>(a: T, b: T) -> bool {
    if T::IS_FLOAT {
        let (x, y): (f64, f64) = (a.as_(), b.as_());
        x.to_bits() == y.to_bits()
    } else {
        a == b
    }
}

fn same_opt<T: Numeric>(a: Option<T>, b: Option<T>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => same_t(a, b),
        (None, None) => true,
        _ => false,
    }
}

fn same_total<T: Numeric>(a: T::Total, b: T::Total) -> bool {
    if T::IS_FLOAT {
        T::total_to_f64(a).to_bits() == T::total_to_f64(b).to_bits()
    } else {
        a == b
    }
}

/// Whether two summaries agree field by field, bit for bit (floats by `to_bits`).
fn same_summary<T: Numeric>(a: &Summary<T>, b: &Summary<T>) -> bool {
    let bits = |x: f64, y: f64| x.to_bits() == y.to_bits();
    let same_moments =
        |x: &Moments, y: &Moments| x.count == y.count && bits(x.mean, y.mean) && bits(x.m2, y.m2);
    let same_histogram = match (&a.histogram, &b.histogram) {
        (Some(x), Some(y)) => {
            x.counts == y.counts
                && x.edges.len() == y.edges.len()
                && x.edges.iter().zip(&y.edges).all(|(&p, &q)| bits(p, q))
        }
        (None, None) => true,
        _ => false,
    };
    let same_value = |x: &QuantileValue<T>, y: &QuantileValue<T>| match (*x, *y) {
        (QuantileValue::Element(p), QuantileValue::Element(q)) => same_t(p, q),
        (QuantileValue::Float(p), QuantileValue::Float(q)) => bits(p, q),
        _ => false,
    };
    let same_percentiles = a.percentiles.len() == b.percentiles.len()
        && a.percentiles
            .iter()
            .zip(&b.percentiles)
            .all(|((p, x), (q, y))| bits(*p, *q) && same_value(x, y));
    a.count == b.count
        && a.nan_count == b.nan_count
        && same_total::<T>(a.sum, b.sum)
        && bits(a.mean, b.mean)
        && a.ddof == b.ddof
        && bits(a.variance, b.variance)
        && bits(a.std, b.std)
        && same_moments(&a.moments, &b.moments)
        && same_opt(a.min, b.min)
        && same_opt(a.max, b.max)
        && a.argmin == b.argmin
        && a.argmax == b.argmax
        && same_histogram
        && same_percentiles
        && a.passes == b.passes
}

/// Asserts that `s` is, field by field and bit for bit, what the separate kernels give on
/// `data` with `o`.
fn assert_kernels<T: Numeric + SortKey>(
    what: &str,
    s: &Summary<T>,
    data: &[T],
    bins: usize,
    range: Option<(f64, f64)>,
    ddof: u64,
    o: &ParOptions,
) {
    let ctx = format!("{what}: {} elements, {o:?}", data.len());
    assert_eq!(s.count, data.len() as u64, "{ctx}");
    let nans = data
        .iter()
        .filter(|&&x| {
            let f: f64 = x.as_();
            f.is_nan()
        })
        .count() as u64;
    assert_eq!(s.nan_count, nans, "{ctx}");
    assert!(
        same_total::<T>(s.sum, kernels::sum_with(data, o).unwrap()),
        "{ctx}: sum {:?}",
        s.sum
    );
    let mean = kernels::mean_with(data, o).unwrap();
    assert_eq!(
        s.mean.to_bits(),
        mean.to_bits(),
        "{ctx}: mean {} vs {mean}",
        s.mean
    );
    let m = kernels::moments_with(data, o).unwrap();
    assert_eq!(s.moments.count, m.count, "{ctx}");
    assert_eq!(
        s.moments.mean.to_bits(),
        m.mean.to_bits(),
        "{ctx}: moments mean"
    );
    assert_eq!(s.moments.m2.to_bits(), m.m2.to_bits(), "{ctx}: m2");
    let var = kernels::variance_with(data, ddof, o).unwrap();
    assert_eq!(s.variance.to_bits(), var.to_bits(), "{ctx}: variance");
    assert_eq!(s.std.to_bits(), var.sqrt().to_bits(), "{ctx}: std");
    let mm = kernels::min_max_with(data, o).unwrap();
    assert!(
        same_opt(s.min, mm.map(|m| m.0)),
        "{ctx}: min {:?} {mm:?}",
        s.min
    );
    assert!(
        same_opt(s.max, mm.map(|m| m.1)),
        "{ctx}: max {:?} {mm:?}",
        s.max
    );
    assert_eq!(
        s.argmin,
        kernels::argmin_with(data, o).unwrap(),
        "{ctx}: argmin"
    );
    assert_eq!(
        s.argmax,
        kernels::argmax_with(data, o).unwrap(),
        "{ctx}: argmax"
    );
    if bins > 0 {
        let h = s.histogram.as_ref().expect("histogram");
        assert_eq!(
            h.counts,
            kernels::histogram_with(data, bins, range, o).unwrap(),
            "{ctx}: histogram"
        );
        assert_eq!(h.edges.len(), bins + 1);
    } else {
        assert!(s.histogram.is_none());
    }
}

/// Runs [`assert_kernels`] on a `Vec` and on a mapped file, every option set, with and
/// without a histogram range.
fn check_all<T: Numeric + SortKey + Element>(name: &str, data: &[T]) {
    let dir = common::tmpdir();
    let a = MappedArray::<T>::open(write(dir.path(), "d", data)).unwrap();
    let finite = data.iter().all(|&x| {
        let f: f64 = x.as_();
        f.is_finite()
    });
    /// (bins, range, ddof)
    type Case = (usize, Option<(f64, f64)>, u64);
    let mut cases: Vec<Case> = vec![(0, None, 0), (17, Some((-50.0, 120.0)), 1)];
    if finite {
        cases.push((9, None, 2));
    }
    for (bins, range, ddof) in cases {
        let mut d = DescribeOptions::new();
        d.ddof(ddof).bins(bins);
        if let Some((lo, hi)) = range {
            d.range(lo, hi);
        }
        let mut prev: Option<Summary<T>> = None;
        for (i, o) in all_opts().iter().enumerate() {
            let s = kernels::describe_with(data, &d, o).unwrap();
            assert_kernels(&format!("{name} vec"), &s, data, bins, range, ddof, o);
            let f = stream::describe(&a, &d, o, &release()).unwrap();
            assert_kernels(&format!("{name} file"), &f, &a, bins, range, ddof, o);
            let passes = if bins > 0 && range.is_none() && !data.is_empty() {
                2
            } else {
                1
            };
            assert_eq!((s.passes, f.passes), (passes, passes), "{name}");
            // Thread-count independence within a chunk size.
            if i % 2 == 1 {
                let p = prev.take().unwrap();
                assert!(
                    same_summary(&p, &s),
                    "{name}: 1 vs 2 threads: {p:?} vs {s:?}"
                );
            } else {
                prev = Some(s);
            }
        }
    }
}

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[test]
fn fused_equals_the_separate_kernels_bit_for_bit() {
    let mut r = Rng(1);
    for len in [0usize, 1, 2, 511, 512, 513, 4097, 30_000] {
        let f: Vec<f64> = (0..len).map(|_| 1e6 + (r.unit() - 0.5) * 1e3).collect();
        check_all(&format!("f64 len {len}"), &f);
        let g: Vec<f32> = (0..len).map(|_| (r.unit() * 100.0 - 20.0) as f32).collect();
        check_all(&format!("f32 len {len}"), &g);
    }
    let mut special: Vec<f64> = (0..20_000)
        .map(|i| ((i * 37) % 101) as f64 - 50.0)
        .collect();
    special[5] = -0.0;
    special[9000] = f64::INFINITY;
    special[12_000] = f64::NEG_INFINITY;
    check_all("f64 with infinities", &special);
    let mut nan = special.clone();
    nan[7777] = f64::NAN;
    nan[15_000] = f64::NAN;
    check_all("f64 with NaN", &nan);
    check_all("negative zeros", &[-0.0f64; 1000]);
    let ints: Vec<i64> = (0..20_000).map(|_| r.next() as i64).collect();
    check_all("i64", &ints);
    let u: Vec<u64> = (0..20_000).map(|_| r.next()).collect();
    check_all("u64", &u);
    check_all(
        "u8",
        &(0..10_000).map(|_| r.next() as u8).collect::<Vec<_>>(),
    );
    check_all(
        "i8",
        &(0..10_000).map(|_| r.next() as i8).collect::<Vec<_>>(),
    );
    check_all(
        "u16",
        &(0..10_000).map(|_| r.next() as u16).collect::<Vec<_>>(),
    );
    check_all(
        "i16",
        &(0..10_000).map(|_| r.next() as i16).collect::<Vec<_>>(),
    );
    check_all(
        "u32",
        &(0..10_000).map(|_| r.next() as u32).collect::<Vec<_>>(),
    );
    check_all(
        "i32",
        &(0..10_000).map(|_| r.next() as i32).collect::<Vec<_>>(),
    );
}

/// Several blocks of the fused loop (for `f64`, 32768 elements; its parts, `MOMENT_BLOCK`): the first
/// minimum and maximum in late parts, signed zeros tied for the minimum, values on the
/// histogram's edges (its exact path), a NaN late, and lengths off every block size; with
/// 64 bins (counted in pairs) and 100 (counted one by one) too.
#[test]
fn fused_loop_over_many_blocks_equals_the_kernels() {
    let base: Vec<f64> = (0..100_003u64)
        .map(|i| ((i * 7919) % 1000) as f64 / 8.0 + 1.0)
        .collect();
    let mut v = base.clone();
    v[40_000] = -0.0;
    v[40_001] = 0.0;
    v[70_000] = 0.0;
    v[50_000] = 200.0;
    v[90_000] = 200.0;
    check_all("f64, zeros tied for the minimum", &v);
    let mut w = v.clone();
    w[80_000] = f64::NAN;
    w[99_000] = f64::NAN;
    check_all("f64 with a late NaN", &w);
    let zeros: Vec<f64> = (0..70_001u64)
        .map(|i| {
            if (i * 2_654_435_761) % 7 < 3 {
                -0.0
            } else {
                0.0
            }
        })
        .collect();
    check_all("f64 signed zeros", &zeros);
    let f: Vec<f32> = (0..140_001u64)
        .map(|i| ((i * 7919) % 1000) as f32 / 8.0 - 60.0)
        .collect();
    check_all("f32 on edges", &f);
    for bins in [64, 100] {
        for data in [&base, &w] {
            let mut d = DescribeOptions::new();
            d.bins(bins).range(0.0, 160.0);
            for o in all_opts() {
                let s = kernels::describe_with(data, &d, o).unwrap();
                assert_kernels("bins", &s, data, bins, Some((0.0, 160.0)), 0, o);
            }
        }
    }
}

#[test]
fn percentiles_in_the_summary_equal_the_kernel() {
    let v: Vec<i64> = (0..50_000).map(|i| (i * 7919) % 10_007 - 5000).collect();
    let ps = [0.0, 10.0, 50.0, 99.5, 100.0];
    let mut d = DescribeOptions::new();
    d.percentiles(&ps)
        .method(QuantileMethod::Midpoint)
        .memory(4096);
    let s = kernels::describe(&v, &d).unwrap();
    let k = kernels::percentiles(&v, &ps, QuantileMethod::Midpoint).unwrap();
    assert_eq!(s.percentiles.iter().map(|p| p.1).collect::<Vec<_>>(), k);
    assert_eq!(s.percentiles.iter().map(|p| p.0).collect::<Vec<_>>(), ps);
    // 1 summary pass, then a histogram pass and a collecting pass (budget 512 elements).
    assert_eq!(s.passes, 3);
    d.percentiles(&[101.0]);
    assert!(matches!(
        kernels::describe(&v, &d),
        Err(Error::QuantileOutOfRange { .. })
    ));
}

#[test]
fn histogram_errors_as_the_kernel() {
    let v = [1.0, f64::NAN];
    let mut d = DescribeOptions::new();
    d.bins(4);
    assert!(matches!(
        kernels::histogram(&v, 4, None),
        Err(Error::RangeNotFinite {
            from_data: true,
            ..
        })
    ));
    assert!(matches!(
        kernels::describe(&v, &d),
        Err(ref e @ Error::RangeNotFinite { from_data: true, .. }) if e.to_string().contains("give a range")
    ));
    d.range(0.0, 2.0);
    let s = kernels::describe(&v, &d).unwrap();
    assert_eq!(s.histogram.unwrap().counts, [0, 0, 1, 0]);
    d.bins(0);
    assert!(kernels::describe(&v, &d).unwrap().histogram.is_none());
    let mut bad = DescribeOptions::new();
    bad.bins(3).range(2.0, 1.0);
    assert!(matches!(
        kernels::describe(&v, &bad),
        Err(Error::RangeReversed { lo: 2.0, hi: 1.0 })
    ));
    // Empty data without a range: numpy's (0, 1).
    let e: [f32; 0] = [];
    let mut d = DescribeOptions::new();
    d.bins(2);
    let s = kernels::describe(&e, &d).unwrap();
    assert_eq!(
        s.histogram.unwrap(),
        kernels::Histogram {
            edges: vec![0.0, 0.5, 1.0],
            counts: vec![0, 0]
        }
    );
    assert!(s.mean.is_nan() && s.min.is_none() && s.argmax.is_none());
}

#[test]
fn user_reducers_fuse_with_the_built_in_ones() {
    let v: Vec<u32> = (0..100_000).map(|i| (i * 7919) % 65_536).collect();
    let dir = common::tmpdir();
    let a = MappedArray::<u32>::open(write(dir.path(), "u", &v)).unwrap();
    let evens = reducer(
        |start, c: &[u32]| {
            let n = c.iter().filter(|&&x| x % 2 == 0).count();
            (n, start)
        },
        |a: (usize, usize), b: (usize, usize)| (a.0 + b.0, a.1.min(b.1)),
    );
    let r = (SumReducer, MinMaxReducer, evens);
    for o in all_opts() {
        let (sum, mm, (n, first)) = kernels::reduce_fused_with(&v, &r, o).unwrap().unwrap();
        assert_eq!(sum, kernels::sum(&v));
        assert_eq!(mm, kernels::min_max(&v));
        assert_eq!(n, v.iter().filter(|&&x| x % 2 == 0).count());
        assert_eq!(first, 0);
        let f = stream::reduce_fused(&a, &r, o, &release())
            .unwrap()
            .unwrap();
        assert_eq!(f, (sum, mm, (n, first)));
    }
    assert!(kernels::reduce_fused(&[] as &[u32], &r).is_none());
}

/// numpy on every dtype: mean, std (ddof 0 and 1), min, max, argmin, argmax exactly or
/// within the tolerances of the kernel tests, and the histogram's edges and counts exactly
/// (of the data as `float64`: the kernel's histogram is computed in `f64`, numpy's of
/// `float32` data in `float32`).
#[test]
fn matches_numpy_on_every_dtype() {
    require_numpy!();
    let dir = common::tmpdir();
    let mut r = Rng(5);
    let n = 20_011;
    let mut paths = Vec::new();
    macro_rules! ints {
        ($($t:ty),*) => {$({
            let v: Vec<$t> = (0..n).map(|_| r.next() as $t).collect();
            paths.push(write(dir.path(), stringify!($t), &v));
        })*};
    }
    ints!(u8, u16, u32, u64, i8, i16, i32, i64);
    let f: Vec<f64> = (0..n).map(|_| (r.unit() - 0.3) * 1e4).collect();
    paths.push(write(dir.path(), "f64", &f));
    let g: Vec<f32> = (0..n).map(|_| ((r.unit() - 0.3) * 1e4) as f32).collect();
    paths.push(write(dir.path(), "f32", &g));
    let args: Vec<&str> = paths.iter().map(|p| p.to_str().unwrap()).collect();
    let out = common::python(
        "for path in sys.argv[1:]:\n\
         \x20   a = np.load(path)\n\
         \x20   c, e = np.histogram(a.astype(np.float64), 13)\n\
         \x20   print(repr(float(a.mean())), repr(float(a.std())), repr(float(a.std(ddof=1))),\n\
         \x20         repr(int(a.astype(object).sum())) if a.dtype.kind != 'f' else repr(float(a.astype(np.float64).sum())),\n\
         \x20         a.argmin(), a.argmax(), repr(float(a.min())), repr(float(a.max())))\n\
         \x20   print(' '.join(str(x) for x in c))\n\
         \x20   print(' '.join(repr(float(x)) for x in e))",
        &args,
    );
    let lines: Vec<&str> = out.lines().collect();
    fn check<T: Numeric + SortKey + Element>(path: &Path, l: &[&str]) {
        let a = MappedArray::<T>::open(path).unwrap();
        let mut d = DescribeOptions::new();
        d.bins(13);
        let s0 = stream::describe(&a, &d, &ParOptions::new(), &release()).unwrap();
        d.ddof(1);
        let s1 = kernels::describe(&a, &d).unwrap();
        let f: Vec<&str> = l[0].split_whitespace().collect();
        let num = |i: usize| f[i].parse::<f64>().unwrap();
        let rel = |x: f64, y: f64, tol: f64, what: &str| {
            assert!(
                (x - y).abs() <= tol * y.abs().max(1e-300),
                "{path:?} {what}: {x} vs numpy {y}"
            )
        };
        // numpy's float32 mean and std are computed and rounded in float32.
        let f32 = T::IS_FLOAT && std::mem::size_of::<T>() == 4;
        let (tm, ts) = if f32 { (1e-6, 1e-5) } else { (1e-12, 1e-9) };
        rel(s0.mean, num(0), tm, "mean");
        rel(s0.std, num(1), ts, "std");
        rel(s1.std, num(2), ts, "std ddof=1");
        if T::IS_FLOAT {
            rel(
                T::total_to_f64(s0.sum),
                num(3),
                if f32 { 1e-6 } else { 1e-12 },
                "sum",
            );
        } else {
            assert_eq!(format!("{:?}", s0.sum), f[3], "{path:?} sum");
        }
        assert_eq!(s0.argmin, Some(f[4].parse().unwrap()), "{path:?}");
        assert_eq!(s0.argmax, Some(f[5].parse().unwrap()), "{path:?}");
        let (mn, mx): (f64, f64) = (s0.min.unwrap().as_(), s0.max.unwrap().as_());
        assert_eq!((mn, mx), (num(6), num(7)), "{path:?}");
        let h = s0.histogram.unwrap();
        let counts: Vec<u64> = l[1]
            .split_whitespace()
            .map(|x| x.parse().unwrap())
            .collect();
        let edges: Vec<f64> = l[2]
            .split_whitespace()
            .map(|x| x.parse().unwrap())
            .collect();
        assert_eq!(h.counts, counts, "{path:?} histogram");
        assert_eq!(h.edges, edges, "{path:?} edges");
    }
    let per = |i: usize| &lines[3 * i..3 * i + 3];
    check::<u8>(&paths[0], per(0));
    check::<u16>(&paths[1], per(1));
    check::<u32>(&paths[2], per(2));
    check::<u64>(&paths[3], per(3));
    check::<i8>(&paths[4], per(4));
    check::<i16>(&paths[5], per(5));
    check::<i32>(&paths[6], per(6));
    check::<i64>(&paths[7], per(7));
    check::<f64>(&paths[8], per(8));
    check::<f32>(&paths[9], per(9));
}

/// The same matrix saved C-ordered and Fortran-ordered: per-column and per-row summaries
/// against numpy's `axis=` reductions, and the two layouts against each other.
#[test]
fn axis_summaries_follow_the_memory_order() {
    require_numpy!();
    let dir = common::tmpdir();
    let c = dir.path().join("c.npy");
    let f = dir.path().join("f.npy");
    let ci = dir.path().join("ci.npy");
    let fi = dir.path().join("fi.npy");
    let out = common::python(
        "rng = np.random.default_rng(3)\n\
         m = rng.normal(0, 1, (3001, 7)) * np.arange(1, 8) + np.arange(7) * 100\n\
         m[1234, 3] = np.nan\n\
         np.save(sys.argv[1], np.ascontiguousarray(m))\n\
         np.save(sys.argv[2], np.asfortranarray(m))\n\
         k = rng.integers(-1000, 1000, (501, 5), dtype=np.int32)\n\
         np.save(sys.argv[3], np.ascontiguousarray(k))\n\
         np.save(sys.argv[4], np.asfortranarray(k))\n\
         assert np.load(sys.argv[2]).flags.f_contiguous\n\
         for a in (m, k):\n\
         \x20   for ax in (0, 1):\n\
         \x20       for v in (a.mean(axis=ax), a.std(axis=ax), a.min(axis=ax), a.max(axis=ax), a.argmin(axis=ax), a.argmax(axis=ax), a.sum(axis=ax)):\n\
         \x20           print(' '.join(repr(float(x)) for x in v))",
        &[
            c.to_str().unwrap(),
            f.to_str().unwrap(),
            ci.to_str().unwrap(),
            fi.to_str().unwrap(),
        ],
    );
    let rows: Vec<Vec<f64>> = out
        .lines()
        .map(|l| l.split_whitespace().map(|x| x.parse().unwrap()).collect())
        .collect();
    let close = |x: f64, y: f64, tol: f64| {
        (x.is_nan() && y.is_nan()) || (x - y).abs() <= tol * y.abs().max(1.0)
    };
    fn lanes<T: Numeric + SortKey + Element>(
        path: &Path,
        axis: usize,
        o: &ParOptions,
    ) -> Vec<Summary<T>> {
        let a = MappedArray::<T>::open(path).unwrap();
        stream::describe_axis(&a, axis, &DescribeOptions::new(), o, &release()).unwrap()
    }
    let mut small = ParOptions::new();
    small.chunk_bytes(4096).threads(2);
    for o in [ParOptions::new(), small] {
        for (file_idx, (cpath, fpath)) in [(&c, &f), (&ci, &fi)].into_iter().enumerate() {
            for axis in [0, 1] {
                let expect = &rows[file_idx * 14 + axis * 7..file_idx * 14 + axis * 7 + 7];
                let check = |s: Vec<(f64, f64, f64, f64, usize, usize, f64)>, what: &str| {
                    assert_eq!(s.len(), expect[0].len(), "{what}");
                    for (j, l) in s.iter().enumerate() {
                        let ctx = format!("{what} axis {axis} lane {j}");
                        assert!(
                            close(l.0, expect[0][j], 1e-12),
                            "{ctx} mean {} vs {}",
                            l.0,
                            expect[0][j]
                        );
                        assert!(close(l.1, expect[1][j], 1e-9), "{ctx} std");
                        assert!(close(l.2, expect[2][j], 0.0), "{ctx} min");
                        assert!(close(l.3, expect[3][j], 0.0), "{ctx} max");
                        assert_eq!(l.4 as f64, expect[4][j], "{ctx} argmin");
                        assert_eq!(l.5 as f64, expect[5][j], "{ctx} argmax");
                        assert!(close(l.6, expect[6][j], 1e-12), "{ctx} sum");
                    }
                };
                macro_rules! flat {
                    ($v:expr, $t:ty) => {
                        $v.iter()
                            .map(|s| {
                                (
                                    s.mean,
                                    s.std,
                                    s.min.unwrap() as f64,
                                    s.max.unwrap() as f64,
                                    s.argmin.unwrap(),
                                    s.argmax.unwrap(),
                                    <$t as Numeric>::total_to_f64(s.sum),
                                )
                            })
                            .collect::<Vec<_>>()
                    };
                }
                if file_idx == 0 {
                    let (cs, fs) = (lanes::<f64>(cpath, axis, &o), lanes::<f64>(fpath, axis, &o));
                    check(flat!(cs, f64), "C f64");
                    check(flat!(fs, f64), "F f64");
                    // Contiguous lanes are slices: bit for bit the 1-D summary of the lane.
                    let (contig, path) = if axis == 0 {
                        (&fs, fpath)
                    } else {
                        (&cs, cpath)
                    };
                    let a = MappedArray::<f64>::open(path).unwrap();
                    let len = if axis == 0 { 3001 } else { 7 };
                    for (j, s) in contig.iter().enumerate() {
                        let one = kernels::describe_with(
                            &a[j * len..(j + 1) * len],
                            &DescribeOptions::new(),
                            &o,
                        )
                        .unwrap();
                        assert_eq!(format!("{s:?}"), format!("{one:?}"), "lane {j}");
                        assert_eq!(s.mean.to_bits(), one.mean.to_bits());
                    }
                } else {
                    let (cs, fs) = (lanes::<i32>(cpath, axis, &o), lanes::<i32>(fpath, axis, &o));
                    check(flat!(cs, i32), "C i32");
                    check(flat!(fs, i32), "F i32");
                    // Integers: both layouts agree exactly on everything but the moments.
                    for (x, y) in cs.iter().zip(&fs) {
                        assert_eq!(
                            (x.sum, x.min, x.max, x.argmin, x.argmax, x.count),
                            (y.sum, y.min, y.max, y.argmin, y.argmax, y.count)
                        );
                        assert_eq!(x.mean.to_bits(), y.mean.to_bits());
                    }
                }
            }
        }
    }
    // The lane with a NaN: NaN mean, the NaN's row as argmin, one NaN counted.
    let fcols = lanes::<f64>(&f, 0, &ParOptions::new());
    assert!(fcols[3].mean.is_nan());
    assert_eq!((fcols[3].argmin, fcols[3].nan_count), (Some(1234), 1));
}

#[test]
fn axis_summary_errors() {
    let dir = common::tmpdir();
    let one = MappedArray::<f64>::open(write(dir.path(), "one", &[1.0, 2.0])).unwrap();
    let d = DescribeOptions::new();
    let (o, s) = (ParOptions::new(), Stream::new());
    assert!(matches!(
        stream::describe_axis(&one, 0, &d, &o, &s),
        Err(Error::BadShape { .. })
    ));
    let path = dir.path().join("two.npy");
    let mut w = MappedArrayMut::<f64>::create(&path, &[3, 2]).unwrap();
    w.copy_from_slice(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    w.persist().unwrap();
    let two = MappedArray::<f64>::open(&path).unwrap();
    assert!(matches!(
        stream::describe_axis(&two, 2, &d, &o, &s),
        Err(Error::BadAxis { axis: 2, ndim: 2 })
    ));
    let mut h = DescribeOptions::new();
    h.bins(2);
    assert!(matches!(
        stream::describe_axis(&two, 0, &h, &o, &s),
        Err(Error::UnsupportedOption {
            op: "describe_axis",
            ..
        })
    ));
    h.range(0.0, 6.0);
    let cols = stream::describe_axis(&two, 0, &h, &o, &s).unwrap();
    assert_eq!(cols[0].histogram.as_ref().unwrap().counts, [1, 2]);
    assert_eq!(cols[1].histogram.as_ref().unwrap().counts, [1, 2]);
    assert_eq!(cols[0].passes, 1);
    // One lane, or lanes of one element: contiguous whatever the order.
    for (shape, axis, lanes) in [
        ([1, 3], 0, 3),
        ([3, 1], 0, 1),
        ([3, 1], 1, 3),
        ([1, 3], 1, 1),
    ] {
        let path = dir.path().join("thin.npy");
        let mut w = MappedArrayMut::<i16>::create(&path, &shape).unwrap();
        w.copy_from_slice(&[4, -1, 9]);
        w.persist().unwrap();
        let a = MappedArray::<i16>::open(&path).unwrap();
        let l = stream::describe_axis(&a, axis, &d, &o, &s).unwrap();
        assert_eq!(l.len(), lanes, "{shape:?} axis {axis}");
        if lanes == 1 {
            assert_eq!((l[0].sum, l[0].min, l[0].argmax), (12, Some(-1), Some(2)));
        } else {
            assert_eq!(l.iter().map(|x| x.sum).collect::<Vec<_>>(), [4, -1, 9]);
        }
    }
    let mut p = DescribeOptions::new();
    p.percentiles(&[50.0]);
    assert!(matches!(
        stream::describe_axis(&two, 1, &p, &o, &s),
        Err(Error::UnsupportedOption {
            op: "describe_axis",
            ..
        })
    ));
}
