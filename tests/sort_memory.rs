//! The in-memory sort against independent oracles: `slice::sort_by_key` (stable) by the same
//! key, a multiset checksum for "is a permutation", a naive stable index sort for argsort,
//! and numpy's `np.sort` / `np.argsort(kind='stable')`.

use std::fmt::Debug;

use outcore::sort::{self, Record, SortKey};
use outcore::ParOptions;
use proptest::prelude::*;

use crate::common;
use crate::common::multiset;

/// xorshift64*: reproducible test data without a dependency.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

/// Asserts `got == want`, reporting the first difference rather than both vectors.
fn assert_same<K: PartialEq + Debug>(got: &[K], want: &[K], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: lengths differ");
    if let Some(i) = (0..got.len()).find(|&i| got[i] != want[i]) {
        panic!(
            "{what}: first difference at {i}: {:?} != {:?}",
            got[i], want[i]
        );
    }
}

/// The oracle: std's stable sort by the same key.
fn reference<T: SortKey>(v: &[T]) -> Vec<T> {
    let mut r = v.to_vec();
    r.sort_by_key(|x| x.sort_key());
    r
}

/// A copy of raw little-endian bytes as a `Vec<T>` (aligned, unlike the bytes).
fn from_bytes<T: bytemuck::Pod>(b: &[u8]) -> Vec<T> {
    let mut v = vec![T::zeroed(); b.len() / std::mem::size_of::<T>()];
    bytemuck::cast_slice_mut::<T, u8>(&mut v).copy_from_slice(b);
    v
}

fn bytes<T: bytemuck::Pod>(v: &[T]) -> &[u8] {
    bytemuck::cast_slice(v)
}

fn opts(threads: usize) -> ParOptions {
    let mut o = ParOptions::new();
    o.threads(threads);
    o
}

/// Checks every entry point on `v` against the oracle, on 1 and 2 threads.
fn check_all<T: SortKey + Debug>(v: &[T], what: &str) {
    let want = reference(v);
    for threads in [1, 2] {
        let o = opts(threads);
        // Stable variants: exactly the stable oracle, bit for bit (NaN payloads included).
        let mut s = v.to_vec();
        sort::par_sort_stable_with(&mut s, &o).unwrap();
        assert_same(
            bytes(&s),
            bytes(&want),
            &format!("par_sort_stable {what}, n = {}, {threads} threads", v.len()),
        );
        // Unstable: sorted by key, and a permutation of the input.
        let mut u = v.to_vec();
        sort::par_sort_with(&mut u, &o).unwrap();
        let keys = |x: &[T]| x.iter().map(|e| e.sort_key()).collect::<Vec<_>>();
        assert_same(
            &keys(&u),
            &keys(&want),
            &format!("par_sort {what}, n = {}", v.len()),
        );
        assert_eq!(multiset(&u), multiset(v), "par_sort {what} lost elements");
        // argsort: the stable order of indices.
        let idx = sort::argsort_with(v, &o).unwrap();
        let mut naive: Vec<usize> = (0..v.len()).collect();
        naive.sort_by_key(|&i| v[i].sort_key());
        assert_same(&idx, &naive, &format!("argsort {what}, n = {}", v.len()));
    }
}

/// Sizes at the edges: empty, one, the comparison-sort threshold (256), a 12-bit digit, a
/// leaf (2^15). Larger inputs (the parallel threshold, 2^17) are in `large_inputs`.
const SIZES: &[usize] = &[
    0, 1, 2, 3, 255, 256, 257, 4095, 4096, 4097, 32767, 32768, 32769,
];

/// Random, few-unique, ascending-ramp and all-equal inputs, built from raw random bits by
/// `from_bits`.
fn patterns<T: Copy>(
    n: usize,
    seed: u64,
    from_bits: impl Fn(u64) -> T,
) -> Vec<(&'static str, Vec<T>)> {
    let mut rng = Rng::new(seed);
    let random: Vec<T> = (0..n).map(|_| from_bits(rng.next())).collect();
    let few: Vec<T> = (0..n)
        .map(|_| from_bits(rng.next() % 5 * 0x0101_0101_0101_0101))
        .collect();
    let ramp: Vec<T> = (0..n as u64).map(|i| from_bits(i << 3)).collect();
    let equal: Vec<T> = random.first().map(|&x| vec![x; n]).unwrap_or_default();
    vec![
        ("random", random),
        ("few unique", few),
        ("ramp", ramp),
        ("all equal", equal),
    ]
}

/// Random, sorted, reverse-sorted, all-equal and few-unique inputs of one type at `sizes`.
fn check_type<T: SortKey + Debug>(name: &str, sizes: &[usize], from_bits: impl Fn(u64) -> T) {
    for (i, &n) in sizes.iter().enumerate() {
        for (what, v) in patterns(n, i as u64 + 1, &from_bits) {
            check_all(&v, &format!("{name} {what}"));
            let sorted = reference(&v);
            check_all(&sorted, &format!("{name} {what} sorted"));
            let rev: Vec<T> = sorted.iter().rev().copied().collect();
            check_all(&rev, &format!("{name} {what} reverse sorted"));
        }
    }
}

#[test]
fn every_primitive_type_every_pattern() {
    // The large sizes on the 64-bit types only, which go through every path; the others at
    // the small sizes (debug builds are slow).
    let small: Vec<usize> = SIZES.iter().copied().filter(|&n| n <= 4097).collect();
    check_type("u8", &small, |b| b as u8);
    check_type("i8", &small, |b| b as i8);
    check_type("u16", &small, |b| b as u16);
    check_type("i16", &small, |b| b as i16);
    check_type("u32", &small, |b| b as u32);
    check_type("i32", &small, |b| b as i32);
    check_type("f32", &small, |b| f32::from_bits(b as u32));
    check_type("u64", SIZES, |b| b);
    check_type("i64", &small, |b| b as i64);
    check_type("f64", &small, f64::from_bits);
}

#[test]
fn large_inputs() {
    let mut rng = Rng::new(7);
    // Beyond the parallel threshold (2^17 elements), at a size that is not a power of two.
    let n = 200_003;
    let v: Vec<u64> = (0..n).map(|_| rng.next()).collect();
    check_all(&v, "u64 random");
    check_all(&reference(&v), "u64 sorted");
    let w: Vec<i64> = (0..n).map(|_| (rng.next() % 1000) as i64 - 500).collect();
    check_all(&w, "i64 few unique");
    {
        // Uniform in [-1, 1): keys concentrated in a few exponents (skewed MSD buckets).
        let v: Vec<f64> = (0..n)
            .map(|_| (rng.next() >> 11) as f64 / (1u64 << 52) as f64 - 1.0)
            .collect();
        check_all(&v, "f64 uniform [-1, 1)");
        // The same keys as integers: the stable sort's MSD pass meets the skew itself and
        // splits by a sampled table.
        let keys: Vec<u64> = v.iter().map(|x| x.sort_key()).collect();
        check_all(&keys, "u64 skewed like floats");
        // NaNs of both signs and several payloads among them: the unstable sort rewrites
        // floats as integers and moves the negative NaNs behind the others.
        let nans = [
            f64::NAN,
            -f64::NAN,
            f64::from_bits(0xfff0_0000_0000_0007),
            f64::from_bits(0x7ff0_0000_0000_0001),
        ];
        let mixed: Vec<f64> = v
            .iter()
            .enumerate()
            .map(|(i, &x)| if i % 97 == 0 { nans[i % 4] } else { x })
            .collect();
        check_all(&mixed, "f64 with NaNs of both signs");
        let single: Vec<f32> = mixed.iter().map(|&x| x as f32).collect();
        check_all(&single, "f32 with NaNs of both signs");
        let n = 40_000;
        // Keys that differ only in their low bits, and only in their high bits.
        let low: Vec<u64> = (0..n)
            .map(|_| 0xdead_0000_0000_0000 | (rng.next() & 0xfff))
            .collect();
        check_all(&low, "u64 low bits only");
        let high: Vec<u64> = (0..n).map(|_| rng.next() & 0xff00_0000_0000_0000).collect();
        check_all(&high, "u64 high bits only");
        // Keys spread over 44 bits of which only the top 4 and low 16 vary: a leaf's pass
        // on its top bits leaves groups of thousands, sorted again on their low bits.
        let groups: Vec<u64> = (0..n)
            .map(|_| {
                let r = rng.next();
                ((r >> 60) << 40) | (r & 0xffff)
            })
            .collect();
        check_all(&groups, "u64 top and low bits");
    }
}

/// `par_sort` of inputs larger than 8 MiB (floats: 16 MiB): the in-place partition path
/// (the smaller inputs above go to the out-of-place radix sort). Unstable, so checked by
/// key against the oracle and as a permutation by the multiset checksum.
#[test]
fn in_place_path() {
    fn check<T: SortKey + Debug>(v: Vec<T>, what: &str) {
        let want = reference(&v);
        let keys = |x: &[T]| x.iter().map(|e| e.sort_key()).collect::<Vec<_>>();
        for threads in [1, 2] {
            let mut u = v.clone();
            sort::par_sort_with(&mut u, &opts(threads)).unwrap();
            assert_same(
                &keys(&u),
                &keys(&want),
                &format!("{what}, {threads} threads"),
            );
            assert_eq!(multiset(&u), multiset(&v), "{what} lost elements");
        }
    }
    let mut rng = Rng::new(11);
    // A part is 8 MiB (2^20 u64); n: 1.25 parts and a bit, not a multiple of a block.
    let n = (5 << 20) / 4 + 4099;
    check(
        (0..n).map(|_| rng.next()).collect::<Vec<u64>>(),
        "u64 random",
    );
    // Floats are sorted whole (out of place) up to two parts, in place above.
    for n in [n, n + (1 << 20)] {
        check(
            (0..n)
                .map(|_| (rng.next() >> 11) as f64 / (1u64 << 52) as f64 - 1.0)
                .collect::<Vec<f64>>(),
            &format!("f64 uniform [-1, 1), {n}"),
        );
        check(
            (0..n)
                .map(|i| match i % 7 {
                    0 => f64::NAN,
                    1 => -0.0,
                    2 => 0.0,
                    3 => f64::NEG_INFINITY,
                    4 => -f64::NAN,
                    _ => f64::from_bits(rng.next()),
                })
                .collect::<Vec<f64>>(),
            &format!("f64 any bits, NaN of both signs, signed zeros, -inf, {n}"),
        );
    }
    // f32 above two parts (16 MiB): rewritten and sorted part by part.
    let n32 = (17 << 20) / 4 + 4099;
    check(
        (0..n32)
            .map(|i| match i % 9 {
                0 => f32::NAN,
                1 => -f32::NAN,
                2 => -0.0,
                3 => f32::INFINITY,
                _ => f32::from_bits(rng.next() as u32),
            })
            .collect::<Vec<f32>>(),
        "f32 any bits, NaN of both signs, -0.0, inf",
    );
    check(
        (0..n).map(|_| rng.next() % 5).collect::<Vec<u64>>(),
        "u64 few unique",
    );
    check((0..n as u64).rev().collect::<Vec<u64>>(), "u64 reverse");
    // 19 in 20 keys below 2^20, the rest anywhere: the first partition leaves one part of
    // about 0.95 n (more than 2^20 elements), partitioned in place again.
    check(
        (0..n)
            .map(|i| {
                let r = rng.next();
                if i % 10 == 0 {
                    r
                } else {
                    r & 0xf_ffff
                }
            })
            .collect::<Vec<u64>>(),
        "u64 skewed",
    );
    let m = (8 << 20) / 4 + 1001;
    check(
        (0..m).map(|_| rng.next() as i32).collect::<Vec<i32>>(),
        "i32 random",
    );
    // Records over 8 MiB: partitioned in place on their key prefix, each part sorted by
    // index; keys longer than 8 bytes tie on their prefix (parts of equal prefixes).
    for distinct in [3, 1000, u64::MAX] {
        check(records::<100, 10>(90_001, distinct, 21), "record 100/10");
        check(records::<24, 12>(400_003, distinct, 22), "record 24/12");
    }
}

#[test]
fn floats_nan_inf_signed_zero() {
    let specials = [
        f64::NAN,
        -f64::NAN,
        f64::from_bits(0x7ff0_0000_0000_0001), // signalling NaN, another payload
        f64::INFINITY,
        f64::NEG_INFINITY,
        0.0,
        -0.0,
        f64::MIN_POSITIVE,
        -f64::MIN_POSITIVE,
        5e-324, // subnormal
        -5e-324,
        f64::MAX,
        f64::MIN,
        1.0,
        -1.0,
    ];
    let mut rng = Rng::new(3);
    for n in [15, 300, 40_000] {
        let v: Vec<f64> = (0..n)
            .map(|_| specials[(rng.next() % specials.len() as u64) as usize])
            .collect();
        check_all(&v, "f64 specials");
        let w: Vec<f32> = v.iter().map(|&x| x as f32).collect();
        check_all(&w, "f32 specials");
        let mut s = v.clone();
        sort::par_sort(&mut s);
        // The documented order: -inf first, -0.0 before 0.0, every NaN last.
        let first_nan = s.iter().position(|x| x.is_nan()).unwrap_or(s.len());
        assert!(s[first_nan..].iter().all(|x| x.is_nan()));
        assert!(s[..first_nan].windows(2).all(|p| p[0] <= p[1]));
        let zeros: Vec<bool> = s
            .iter()
            .filter(|x| **x == 0.0)
            .map(|x| x.is_sign_negative())
            .collect();
        assert!(zeros.windows(2).all(|p| p[0] >= p[1]), "-0.0 before 0.0");
    }
}

/// Records whose keys repeat, with a payload that tells the input order.
fn records<const N: usize, const K: usize>(
    n: usize,
    distinct: u64,
    seed: u64,
) -> Vec<Record<N, K>> {
    let mut rng = Rng::new(seed);
    (0..n)
        .map(|i| {
            let mut r = [0u8; N];
            let k = rng.next() % distinct;
            for (j, b) in r[..K].iter_mut().enumerate() {
                // Vary the key in its first and last bytes, so that keys longer than 8 bytes
                // also tie on their first 8 bytes.
                *b = (k.wrapping_mul(j as u64 + 1) >> (j % 3)) as u8;
            }
            r[K..]
                .iter_mut()
                .zip((i as u64).to_le_bytes().iter().cycle())
                .for_each(|(b, s)| *b = *s);
            Record(r)
        })
        .collect()
}

#[test]
fn records_with_equal_keys() {
    for n in [0, 1, 300, 5000, 20_000] {
        for distinct in [1, 3, 1000, u64::MAX] {
            // Sort Benchmark records (sorted by index), a short-key record that the radix
            // sort moves itself, and a key longer than 8 bytes with ties on its prefix.
            check_all(&records::<100, 10>(n, distinct, 11), "record 100/10");
            check_all(&records::<16, 4>(n, distinct, 12), "record 16/4");
            check_all(&records::<24, 12>(n, distinct, 13), "record 24/12");
        }
    }
}

#[test]
fn sort_by_key_of_a_field() {
    // 16-byte records: a u64 id, then an f64 to sort by.
    let mut rng = Rng::new(5);
    for n in [0, 10, 3000, 50_000] {
        let v: Vec<[u64; 2]> = (0..n as u64)
            .map(|i| [i, ((rng.next() % 100) as f64 - 50.0).to_bits()])
            .collect();
        let f = |r: &[u64; 2]| f64::from_bits(r[1]);
        let mut want = v.clone();
        want.sort_by(|a, b| f(a).total_cmp(&f(b)));
        for threads in [1, 2] {
            let mut got = v.clone();
            sort::par_sort_by_key_with(&mut got, f, &opts(threads)).unwrap();
            assert_eq!(got, want, "stable by f64 field, n = {n}");
            // By a byte range: bytes 8..11 as unsigned bytes.
            let mut by_bytes = v.clone();
            let key =
                |r: &[u64; 2]| -> [u8; 3] { bytemuck::bytes_of(r)[8..11].try_into().unwrap() };
            sort::par_sort_by_key_with(&mut by_bytes, key, &opts(threads)).unwrap();
            let mut want_bytes = v.clone();
            want_bytes.sort_by_key(key);
            assert_eq!(by_bytes, want_bytes, "stable by byte range, n = {n}");
        }
    }
}

#[test]
fn reused_scratch_across_sizes_and_types() {
    // One scratch for many runs: growing, shrinking, other element types, records (sorted
    // through (key prefix, index) pairs), and both thread counts; every result against the
    // oracle.
    let mut scratch = sort::SortScratch::new();
    let mut rng = Rng::new(21);
    for (i, n) in [5000usize, 100_000, 40, 0, 70_000, 150_000]
        .into_iter()
        .enumerate()
    {
        let o = opts(1 + i % 2);
        let v: Vec<u64> = (0..n).map(|_| rng.next()).collect();
        let mut s = v.clone();
        sort::par_sort_with_scratch(&mut s, &mut scratch, &o).unwrap();
        assert_same(&s, &reference(&v), &format!("u64 run {i}, n = {n}"));
        let f: Vec<f32> = (0..n).map(|_| f32::from_bits(rng.next() as u32)).collect();
        let mut s = f.clone();
        sort::par_sort_with_scratch(&mut s, &mut scratch, &o).unwrap();
        assert_same(
            bytes(&s),
            bytes(&reference(&f)),
            &format!("f32 run {i}, n = {n}"),
        );
        let r = records::<100, 10>(n / 10, 50, i as u64);
        let mut s = r.clone();
        sort::par_sort_with_scratch(&mut s, &mut scratch, &o).unwrap();
        let keys = |x: &[Record<100, 10>]| x.iter().map(|e| e.sort_key()).collect::<Vec<_>>();
        assert_same(
            &keys(&s),
            &keys(&reference(&r)),
            &format!("records run {i}"),
        );
        assert_eq!(multiset(&s), multiset(&r));
    }
    // Grown to the largest direct sort (150 000 u64), and kept.
    assert!(scratch.allocated_bytes() >= 150_000 * 8);
}

#[test]
fn comparison_fallback() {
    let mut v: Vec<(String, u32)> = (0..2000u32).map(|i| (format!("{}", i % 37), i)).collect();
    let mut want = v.clone();
    want.sort_by(|a, b| a.0.cmp(&b.0));
    sort::par_sort_by(&mut v, |a, b| a.0.cmp(&b.0));
    assert_eq!(v, want);
}

#[test]
fn numpy_sort_and_stable_argsort() {
    crate::require_numpy!();
    let dir = common::tmpdir();
    // numpy writes the input (raw little-endian, no header) and its own results; outcore's
    // must agree. -0.0 is left out: numpy treats it as equal to 0.0, outcore sorts it first.
    let script = r#"
rng = np.random.default_rng(9)
d = sys.argv[1]
n = 100_003
for name, a in [
    ("f64", np.where(rng.random(n) < 0.01, np.nan, np.round(rng.normal(size=n), 2) + 0.0)),
    ("f32", np.concatenate([rng.normal(size=n), [np.inf, -np.inf, np.nan]]).astype(np.float32)),
    ("i64", rng.integers(-50, 50, size=n, dtype=np.int64)),
    ("u64", rng.integers(0, 2**64 - 1, size=n, dtype=np.uint64)),
    ("i16", rng.integers(-2**15, 2**15, size=n, dtype=np.int16)),
    ("u8", rng.integers(0, 255, size=n, dtype=np.uint8)),
]:
    a.tofile(f"{d}/{name}.in")
    np.sort(a).tofile(f"{d}/{name}.sorted")
    np.argsort(a, kind="stable").astype(np.int64).tofile(f"{d}/{name}.argsort")
"#;
    common::python(script, &[dir.path().to_str().unwrap()]);
    fn check<T: SortKey + Debug>(dir: &std::path::Path, name: &str) {
        let read = |ext: &str| std::fs::read(dir.join(format!("{name}.{ext}"))).unwrap();
        let input: Vec<T> = from_bytes(&read("in"));
        let np_sorted: Vec<T> = from_bytes(&read("sorted"));
        let np_idx: Vec<i64> = from_bytes(&read("argsort"));
        let mut ours = input.clone();
        sort::par_sort(&mut ours);
        let keys = |v: &[T]| v.iter().map(|x| x.sort_key()).collect::<Vec<_>>();
        assert_same(&keys(&ours), &keys(&np_sorted), &format!("np.sort, {name}"));
        let idx: Vec<i64> = sort::argsort(&input)
            .into_iter()
            .map(|i| i as i64)
            .collect();
        assert_same(&idx, &np_idx, &format!("np.argsort(kind='stable'), {name}"));
    }
    check::<f64>(dir.path(), "f64");
    check::<f32>(dir.path(), "f32");
    check::<i64>(dir.path(), "i64");
    check::<u64>(dir.path(), "u64");
    check::<i16>(dir.path(), "i16");
    check::<u8>(dir.path(), "u8");
}

proptest! {
    #![proptest_config(crate::common::proptest_config(64))]

    #[test]
    fn prop_u64_matches_reference(v in proptest::collection::vec(any::<u64>(), 0..3000), t in 1usize..=2) {
        let mut s = v.clone();
        sort::par_sort_stable_with(&mut s, &opts(t)).unwrap();
        prop_assert_eq!(s, reference(&v));
    }

    #[test]
    fn prop_f64_bits_match_reference(
        bits in proptest::collection::vec(any::<u64>(), 0..3000),
        narrow in any::<bool>(),
        t in 1usize..=2,
    ) {
        // Arbitrary bit patterns: every NaN payload, subnormals, both zeros; `narrow` keeps
        // only a few exponents so that keys share their top bits.
        let v: Vec<f64> = bits
            .iter()
            .map(|&b| f64::from_bits(if narrow { b & 0x8030_0000_0000_00ff } else { b }))
            .collect();
        let mut s = v.clone();
        sort::par_sort_stable_with(&mut s, &opts(t)).unwrap();
        prop_assert!(bytes(&s) == bytes(&reference(&v)));
        let idx = sort::argsort_with(&v, &opts(t)).unwrap();
        let mut naive: Vec<usize> = (0..v.len()).collect();
        naive.sort_by_key(|&i| v[i].sort_key());
        prop_assert_eq!(idx, naive);
    }

    #[test]
    fn prop_i32_few_values(v in proptest::collection::vec(-3i32..3, 0..3000), t in 1usize..=2) {
        let mut s = v.clone();
        sort::par_sort_with(&mut s, &opts(t)).unwrap();
        prop_assert_eq!(s, reference(&v));
    }

    #[test]
    fn prop_records_stable(keys in proptest::collection::vec(0u8..4, 0..2000), t in 1usize..=2) {
        let v: Vec<Record<12, 9>> = keys
            .iter()
            .enumerate()
            .map(|(i, &k)| {
                let mut r = [k; 12];
                r[9..].copy_from_slice(&(i as u32).to_le_bytes()[..3]);
                Record(r)
            })
            .collect();
        let mut s = v.clone();
        sort::par_sort_stable_with(&mut s, &opts(t)).unwrap();
        prop_assert_eq!(s, reference(&v));
    }
}
