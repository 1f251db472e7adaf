//! Quantiles, percentiles and medians against numpy, bit for bit: every dtype, the five
//! methods, NaN and the `nan` forms, infinities, duplicates, tiny inputs, on slices (1 and 2
//! threads, two chunk sizes) and on mapped files with budgets far below their size.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use outcore::kernels::{self, Numeric, QuantileMethod, QuantileOptions, QuantileValue};
use outcore::sort::SortKey;
use outcore::stream::{self, Stream};
use outcore::{Element, Error, MappedArray, MappedArrayMut, ParOptions};

use crate::common;
use crate::require_numpy;

const METHODS: [QuantileMethod; 5] = [
    QuantileMethod::Linear,
    QuantileMethod::Lower,
    QuantileMethod::Higher,
    QuantileMethod::Nearest,
    QuantileMethod::Midpoint,
];

/// 1 and 2 threads, one-page and default chunks.
fn opts() -> &'static [ParOptions] {
    static OPTS: OnceLock<Vec<ParOptions>> = OnceLock::new();
    OPTS.get_or_init(|| {
        let mut v = Vec::new();
        for chunk in [4096, outcore::chunk::DEFAULT_CHUNK_BYTES] {
            for threads in [1, 2] {
                let mut o = ParOptions::new();
                o.chunk_bytes(chunk).threads(threads);
                v.push(o);
            }
        }
        v
    })
}

/// splitmix64: the test data's random numbers.
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

/// Percentiles: the ends, halves and quarters, values whose virtual index lands on .5
/// (nearest's ties), and random ones.
fn percents() -> Vec<f64> {
    let mut r = Rng(7);
    let mut p = vec![
        0.0,
        -0.0,
        100.0,
        50.0,
        25.0,
        75.0,
        12.5,
        37.5,
        62.5,
        87.5,
        99.9,
        0.1,
        100.0 / 3.0,
    ];
    p.extend((0..10).map(|_| r.unit() * 100.0));
    p
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

/// One numpy result: a float's bits (as `float64`) or an integer.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Np {
    Bits(u64),
    Int(i128),
}

fn parse(tok: &str) -> Np {
    match tok.strip_prefix("0x") {
        Some(h) => Np::Bits(u64::from_str_radix(h, 16).expect("hex")),
        None => Np::Int(tok.parse().expect("int")),
    }
}

/// For each file: 5 lines of `np.percentile` (one per method), 5 of `np.nanpercentile`,
/// and one with `np.median`, `np.nanmedian`. Floats as the bits of their `float64` value.
fn numpy_results(ps: &[f64], paths: &[PathBuf]) -> Vec<Vec<Vec<Np>>> {
    let ps: Vec<String> = ps.iter().map(|p| format!("{p:?}")).collect();
    let mut args = vec![ps.join(",")];
    args.extend(paths.iter().map(|p| p.to_str().unwrap().to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = common::python(
        "import warnings\n\
         warnings.simplefilter('ignore')\n\
         np.seterr(all='ignore')\n\
         q = np.array([float(x) for x in sys.argv[1].split(',')])\n\
         def show(r):\n\
         \x20   r = np.atleast_1d(np.asarray(r))\n\
         \x20   if r.dtype.kind == 'f':\n\
         \x20       return ' '.join(hex(int(x)) for x in r.astype(np.float64).view(np.uint64))\n\
         \x20   return ' '.join(str(int(x)) for x in r)\n\
         for path in sys.argv[2:]:\n\
         \x20   a = np.load(path)\n\
         \x20   print('FILE')\n\
         \x20   for f in (np.percentile, np.nanpercentile):\n\
         \x20       for m in ['linear', 'lower', 'higher', 'nearest', 'midpoint']:\n\
         \x20           print(show(f(a, q, method=m)))\n\
         \x20   print(show(np.median(a)) + ' ' + show(np.nanmedian(a)))\n",
        &args,
    );
    let mut files = Vec::new();
    for block in out.split("FILE\n").skip(1) {
        files.push(
            block
                .lines()
                .map(|l| l.split_whitespace().map(parse).collect())
                .collect(),
        );
    }
    assert_eq!(files.len(), paths.len());
    files
}

fn ours<T: Numeric>(v: QuantileValue<T>) -> Np {
    match v {
        QuantileValue::Element(x) if !T::IS_FLOAT => Np::Int(x.to_i128().unwrap()),
        v => Np::Bits(v.to_f64().to_bits()),
    }
}

/// Checks every method, both NaN forms and the medians of `data` against numpy's `expect`
/// (from [`numpy_results`]), on the slice with every option set and on the mapped file at
/// `path` with a budget of `memory` bytes and the default.
fn check<T: Numeric + SortKey + Element>(
    name: &str,
    data: &[T],
    path: &Path,
    ps: &[f64],
    expect: &[Vec<Np>],
    memory: usize,
) {
    let a = MappedArray::<T>::open(path).unwrap();
    for (form, skip) in [(0, false), (1, true)] {
        for (mi, &m) in METHODS.iter().enumerate() {
            let want = &expect[form * 5 + mi];
            let mut got_all = Vec::new();
            for o in opts() {
                let r = if skip {
                    kernels::nanpercentiles_with(data, ps, m, o)
                } else {
                    kernels::percentiles_with(data, ps, m, o)
                };
                got_all.push(r.unwrap());
            }
            for mem in [memory, usize::MAX] {
                let mut qo = QuantileOptions::new();
                qo.method(m).skip_nan(skip).memory(mem);
                got_all.push(stream::percentiles(&a, ps, &qo).unwrap().values);
            }
            for got in got_all {
                let got: Vec<Np> = got.into_iter().map(ours).collect();
                for (i, (g, w)) in got.iter().zip(want).enumerate() {
                    assert_eq!(
                        g,
                        w,
                        "{name}: {}percentile({}) method {m:?}: ours {g:x?} numpy {w:x?}",
                        if skip { "nan" } else { "" },
                        ps[i]
                    );
                }
                assert_eq!(got.len(), want.len());
            }
        }
    }
    let med = &expect[10];
    for o in opts() {
        assert_eq!(
            Np::Bits(kernels::median_with(data, o).unwrap().to_bits()),
            med[0],
            "{name}: median"
        );
        assert_eq!(
            Np::Bits(kernels::nanmedian_with(data, o).unwrap().to_bits()),
            med[1],
            "{name}: nanmedian"
        );
    }
    let mut qo = QuantileOptions::new();
    qo.memory(memory);
    assert_eq!(
        Np::Bits(stream::median(&a, &qo).unwrap().to_bits()),
        med[0],
        "{name}: file median"
    );
    qo.skip_nan(true);
    assert_eq!(
        Np::Bits(stream::median(&a, &qo).unwrap().to_bits()),
        med[1],
        "{name}: file nanmedian"
    );
}

/// The integer datasets: duplicates, a wide range (halved for signed types so that
/// numpy's `b - a` cannot wrap), all equal, one and two elements.
fn int_sets<T: Numeric + num_traits::Bounded>(seed: u64) -> Vec<(String, Vec<T>)> {
    let mut r = Rng(seed);
    let bits = 8 * std::mem::size_of::<T>() as u32;
    let signed = T::min_value() < T::zero();
    let wide = |r: &mut Rng| -> T {
        let x = r.next() >> (64 - bits);
        if signed {
            // Two's complement of the top `bits` bits, halved.
            let v = ((x << (64 - bits)) as i64) >> (64 - bits + 1);
            T::from(v).unwrap()
        } else {
            T::from(x).unwrap()
        }
    };
    let dup = |r: &mut Rng| -> T {
        let x = (r.next() % 23) as i64 - if signed { 11 } else { 0 };
        T::from(x).unwrap()
    };
    vec![
        ("dup".into(), (0..1001).map(|_| dup(&mut r)).collect()),
        ("wide".into(), (0..5000).map(|_| wide(&mut r)).collect()),
        ("equal".into(), vec![T::from(7).unwrap(); 64]),
        ("one".into(), vec![T::from(3).unwrap()]),
        ("two".into(), vec![T::from(9).unwrap(), T::from(2).unwrap()]),
        (
            "extremes".into(),
            if signed {
                vec![T::max_value(), T::zero(), T::max_value(), T::zero()]
            } else {
                vec![
                    T::max_value(),
                    T::min_value(),
                    T::max_value(),
                    T::max_value(),
                ]
            },
        ),
    ]
}

/// The float datasets: as for integers, plus infinities, NaN, all NaN, `-0.0`.
fn float_sets<T: Numeric + num_traits::Float>(seed: u64) -> Vec<(String, Vec<T>)> {
    let mut r = Rng(seed);
    let f = |x: f64| T::from(x).unwrap();
    let mut normal: Vec<T> = (0..4000)
        .map(|_| f((r.unit() - 0.5) * 2e3 * r.unit().powi(3)))
        .collect();
    normal.extend((0..500).map(|i| f((i % 7) as f64)));
    let mut special = normal.clone();
    special.extend([f(f64::INFINITY), f(f64::NEG_INFINITY), f(f64::INFINITY)]);
    let mut nan = normal.clone();
    nan[17] = T::nan();
    nan[3000] = T::nan();
    vec![
        ("normal".into(), normal),
        ("special".into(), special),
        ("nan".into(), nan),
        ("allnan".into(), vec![T::nan(); 5]),
        ("equal".into(), vec![f(-2.5); 33]),
        ("one".into(), vec![f(0.1)]),
        ("two".into(), vec![f(1e30), f(-3.0)]),
        ("inf".into(), vec![f(f64::INFINITY)]),
        (
            "infs".into(),
            vec![f(f64::NEG_INFINITY), f(1.0), f(f64::INFINITY)],
        ),
        ("negzero".into(), vec![f(-0.0); 4]),
        ("negzero_one".into(), vec![f(-0.0), f(1.0), f(2.0)]),
        ("one_nan".into(), vec![T::nan()]),
        (
            "tiny".into(),
            if std::mem::size_of::<T>() == 4 {
                vec![f(1.5e-45), f(-1.5e-45), f(1e-40), f(1.2e-38)]
            } else {
                vec![f(5e-324), f(-5e-324), f(1e-310), f(f64::MIN_POSITIVE)]
            },
        ),
    ]
}

fn run_sets<T: Numeric + SortKey + Element>(sets: Vec<(String, Vec<T>)>) {
    let dir = common::tmpdir();
    let ps = percents();
    let paths: Vec<PathBuf> = sets.iter().map(|(n, d)| write(dir.path(), n, d)).collect();
    let expect = numpy_results(&ps, &paths);
    for (((name, data), path), e) in sets.iter().zip(&paths).zip(&expect) {
        let name = format!("{}/{name}", std::any::type_name::<T>());
        // A budget of 3 elements forces histogram passes even on the small sets.
        check(&name, data, path, &ps, e, 3 * std::mem::size_of::<T>());
    }
}

#[test]
fn every_dtype_matches_numpy() {
    require_numpy!();
    run_sets(int_sets::<u8>(1));
    run_sets(int_sets::<u16>(2));
    run_sets(int_sets::<u32>(3));
    run_sets(int_sets::<u64>(4));
    run_sets(int_sets::<i8>(5));
    run_sets(int_sets::<i16>(6));
    run_sets(int_sets::<i32>(7));
    run_sets(int_sets::<i64>(8));
    run_sets(float_sets::<f32>(9));
    run_sets(float_sets::<f64>(10));
}

#[test]
fn quantile_form_divides_nothing() {
    // np.quantile(a, q) == np.percentile(a, 100 q) only where 100 q / 100 == q: compare the
    // quantile form against numpy's quantile directly.
    require_numpy!();
    let dir = common::tmpdir();
    let v: Vec<f64> = (0..1001)
        .map(|i| ((i * 7919) % 1009) as f64 * 0.37)
        .collect();
    let path = write(dir.path(), "q", &v);
    let qs = [0.0, 0.1, 0.3, 0.7, 1.0 / 3.0, 0.999, 1.0];
    let out = common::python(
        "a = np.load(sys.argv[1])\n\
         q = np.array([0.0, 0.1, 0.3, 0.7, 1.0 / 3.0, 0.999, 1.0])\n\
         print(' '.join(hex(int(x)) for x in np.quantile(a, q).view(np.uint64)))",
        &[path.to_str().unwrap()],
    );
    let want: Vec<Np> = out.split_whitespace().map(parse).collect();
    let got: Vec<Np> = kernels::quantiles(&v, &qs, QuantileMethod::Linear)
        .unwrap()
        .into_iter()
        .map(ours)
        .collect();
    assert_eq!(got, want);
}

/// A file of 4 Mi elements with a 64 KiB candidate budget (1/512 of the file): the
/// selection must refine, and still equal numpy.
#[test]
fn large_files_with_small_budgets() {
    require_numpy!();
    let dir = common::tmpdir();
    let n = 4 << 20;
    let mut r = Rng(99);
    // Sums of uniforms: a bell whose centre buckets hold far more than the budget.
    let f: Vec<f64> = (0..n)
        .map(|_| (r.unit() + r.unit() + r.unit()) * 1000.0)
        .collect();
    let u: Vec<u64> = (0..n).map(|_| r.next() >> (r.next() % 64)).collect();
    let g: Vec<f32> = (0..n).map(|i| ((i % 5000) as f32).sqrt()).collect();
    let ps = percents();
    let pf = write(dir.path(), "f", &f);
    let pu = write(dir.path(), "u", &u);
    let pg = write(dir.path(), "g", &g);
    let expect = numpy_results(&ps, &[pf.clone(), pu.clone(), pg.clone()]);
    let mut s = Stream::new();
    s.release_behind(true);
    let budget = 64 << 10;
    fn run<T: Numeric + SortKey + Element>(
        path: &Path,
        ps: &[f64],
        expect: &[Vec<Np>],
        budget: usize,
        min_passes: u32,
    ) {
        let a = MappedArray::<T>::open(path).unwrap();
        for (mi, &m) in METHODS.iter().enumerate() {
            let mut qo = QuantileOptions::new();
            qo.method(m).memory(budget);
            let q = stream::percentiles(&a, ps, &qo).unwrap();
            let got: Vec<Np> = q.values.into_iter().map(ours).collect();
            assert_eq!(got, expect[mi], "{path:?} method {m:?}");
            assert!(
                q.passes >= min_passes,
                "{path:?}: {} passes, expected refinement",
                q.passes
            );
            assert!(q.passes <= 5, "{path:?}: {} passes", q.passes);
        }
        let mut qo = QuantileOptions::new();
        qo.memory(budget);
        assert_eq!(
            Np::Bits(stream::median(&a, &qo).unwrap().to_bits()),
            expect[10][0]
        );
    }
    run::<f64>(&pf, &ps, &expect[0], budget, 3);
    run::<u64>(&pu, &ps, &expect[1], budget, 2);
    // Few distinct values: buckets are single keys, resolved without collecting.
    run::<f32>(&pg, &ps, &expect[2], budget, 2);
}

#[test]
fn errors_and_empty_input() {
    let v = [1.0f64, 2.0];
    for bad in [-0.1, 1.5, f64::NAN, f64::INFINITY] {
        assert!(matches!(
            kernels::quantiles(&v, &[0.5, bad], QuantileMethod::Linear),
            Err(Error::QuantileOutOfRange { max, .. }) if max == 1.0
        ));
    }
    for bad in [-1.0, 100.5, f64::NAN] {
        let e = kernels::percentiles(&v, &[bad], QuantileMethod::Lower).unwrap_err();
        assert!(matches!(e, Error::QuantileOutOfRange { max, .. } if max == 100.0));
        assert!(e.to_string().contains("percentile"), "{e}");
    }
    let empty: [i32; 0] = [];
    assert!(matches!(
        kernels::quantiles(&empty, &[0.5], QuantileMethod::Linear),
        Err(Error::EmptyInput { .. })
    ));
    assert!(matches!(
        kernels::percentiles(&empty, &[50.0], QuantileMethod::Nearest),
        Err(Error::EmptyInput { .. })
    ));
    let r = kernels::nanpercentiles(&empty, &[50.0], QuantileMethod::Nearest).unwrap();
    assert!(r[0].to_f64().is_nan());
    assert!(kernels::median(&empty).is_nan());
    assert!(kernels::nanmedian(&[f32::NAN; 3]).is_nan());
    assert_eq!(
        kernels::quantiles(&v, &[], QuantileMethod::Linear).unwrap(),
        []
    );
    assert!(matches!(
        kernels::kth(&v, 2),
        Err(Error::RankOutOfRange { rank: 2, len }) if len == v.len()
    ));
    assert!(kernels::kth(&[f64::NAN, 1.0], 1).unwrap().is_nan());
    assert_eq!(kernels::kth(&[f64::NAN, 1.0], 0).unwrap(), 1.0);
    let dir = common::tmpdir();
    let a = MappedArray::<f32>::open(write(dir.path(), "e", &[] as &[f32])).unwrap();
    assert!(matches!(
        stream::quantiles(&a, &[0.5], &QuantileOptions::new()),
        Err(Error::EmptyInput { .. })
    ));
    assert!(stream::median(&a, &QuantileOptions::new())
        .unwrap()
        .is_nan());
}

/// numpy's integer interpolation wraps where the neighbours are further apart than the
/// type's maximum; outcore's does not (a documented difference).
#[test]
fn integer_interpolation_does_not_wrap() {
    let v = [-100i8, 100];
    let r = kernels::quantiles(&v, &[0.5], QuantileMethod::Linear).unwrap();
    assert_eq!(r[0], QuantileValue::Float(0.0)); // numpy: 128.0
    let v = [i64::MIN, i64::MAX];
    let r = kernels::quantiles(&v, &[0.5], QuantileMethod::Midpoint).unwrap();
    // (2^64 - 1) rounds to 2^64 in f64, so the exact -0.5 comes out as 0.0; numpy: 9.2e18.
    assert_eq!(r[0], QuantileValue::Float(0.0));
    let u = [u64::MAX, u64::MAX - 1];
    let r = kernels::quantiles(&u, &[0.0, 1.0], QuantileMethod::Lower).unwrap();
    assert_eq!(
        r,
        [
            QuantileValue::Element(u64::MAX - 1),
            QuantileValue::Element(u64::MAX)
        ]
    );
}

/// Throughput on a file of `OUTCORE_PERF_MB` MiB of `f64` (default 1024): a plain sum, the
/// fused summary and three percentiles, each streamed with release-behind. Run with
/// `cargo test --release --test main quantile::throughput -- --ignored --nocapture`.
#[test]
#[ignore]
fn throughput() {
    let mb: usize = std::env::var("OUTCORE_PERF_MB")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1024);
    let n = mb << 17;
    let dir = common::tmpdir();
    let path = dir.path().join("perf.npy");
    let mut w = MappedArrayMut::<f64>::create(&path, &[n]).unwrap();
    let mut r = Rng(1);
    w.iter_mut()
        .for_each(|x| *x = (r.unit() + r.unit() + r.unit()) * 1e3);
    w.persist().unwrap();
    let a = MappedArray::<f64>::open(&path).unwrap();
    let s = {
        let mut s = Stream::new();
        s.release_behind(true);
        s
    };
    let o = ParOptions::new();
    let gbs = |t: std::time::Duration| (n * 8) as f64 / t.as_secs_f64() / 1e9;
    let t = std::time::Instant::now();
    let sum = stream::fold_chunks(&a, &o, &s, kernels::sum::<f64>, |x, y| x + y).unwrap();
    let t0 = t.elapsed();
    println!("sum: {:?} ({:.2} GB/s) {sum:?}", t0, gbs(t0));
    let t = std::time::Instant::now();
    let d = stream::describe(
        &a,
        outcore::kernels::DescribeOptions::new().bins(100),
        &o,
        &s,
    )
    .unwrap();
    let t1 = t.elapsed();
    println!(
        "describe (2 passes): {:?} ({:.2} GB/s per pass) mean {}",
        t1,
        2.0 * gbs(t1),
        d.mean
    );
    for mem in [64 << 20, 1 << 20] {
        let mut qo = QuantileOptions::new();
        qo.memory(mem);
        let t = std::time::Instant::now();
        let q = stream::percentiles(&a, &[1.0, 50.0, 99.0], &qo).unwrap();
        let t2 = t.elapsed();
        println!(
            "percentiles, budget {} KiB: {:?}, {} passes ({:.2} GB/s per pass) {:?}",
            mem >> 10,
            t2,
            q.passes,
            q.passes as f64 * gbs(t2),
            q.values
        );
    }
}
