//! The dataset generator: determinism, the property each distribution claims, numpy reading
//! what `gen-dataset` writes, and the program's argument errors.
#![cfg(feature = "cli")]

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::process::Command;

use outcore::datasets::{
    checksum, record_index, Checksum, Distribution, Generate, Generator, Kind, PartialChecksum,
    Record100, BLOCK_LEN, FEW_UNIQUE, ZIPF_EXPONENT, ZIPF_RANKS,
};
use outcore::sort::SortKey;
use outcore::ParOptions;

use crate::common::{python, tmpdir};
use crate::require_numpy;

fn threads(n: usize) -> ParOptions {
    let mut o = ParOptions::new();
    o.threads(n);
    o
}

fn generate<T: Generate>(dist: Distribution, seed: u64, n: usize) -> Vec<T> {
    let mut v = vec![T::zeroed(); n];
    Generator::new(dist, seed)
        .fill(&mut v, &ParOptions::new())
        .unwrap();
    v
}

// ---------------------------------------------------------------- determinism

/// 1 and 2 threads give the same bytes, the returned checksum is the checksum of those
/// bytes, and another seed gives other bytes. The length is not a multiple of the block, so
/// the short last block is covered too.
fn deterministic<T: Generate + PartialEq + std::fmt::Debug>() {
    let n = BLOCK_LEN + 777;
    for dist in Distribution::ALL {
        if !dist.supports(T::KIND) {
            continue;
        }
        let g = Generator::new(dist, 7);
        let mut a = vec![T::zeroed(); n];
        let mut b = vec![T::zeroed(); n];
        let sa = g.fill(&mut a, &threads(1)).unwrap();
        let sb = g.fill(&mut b, &threads(2)).unwrap();
        let what = format!("{} {dist}", T::KIND);
        assert!(
            bytemuck::cast_slice::<T, u8>(&a) == bytemuck::cast_slice::<T, u8>(&b),
            "{what}: 1 vs 2 threads"
        );
        assert_eq!(sa, sb, "{what}");
        assert_eq!(sa, checksum(&a), "{what}: fill's checksum is the data's");
        let mut c = vec![T::zeroed(); n];
        let sc = Generator::new(dist, 8).fill(&mut c, &threads(2)).unwrap();
        assert_ne!(sa, sc, "{what}: seed 8 differs from seed 7");
    }
}

#[test]
fn identical_bytes_for_1_and_2_threads_every_kind_and_distribution() {
    deterministic::<u8>();
    deterministic::<u16>();
    deterministic::<u32>();
    deterministic::<u64>();
    deterministic::<i8>();
    deterministic::<i16>();
    deterministic::<i32>();
    deterministic::<i64>();
    deterministic::<f32>();
    deterministic::<f64>();
    deterministic::<Record100>();
}

#[test]
fn a_prefix_does_not_depend_on_the_total_for_unordered_distributions() {
    // Blocks are seeded by index: the first 70000 values of a longer uniform dataset are the
    // values of a 70000-element one (ordered distributions scale with the length instead).
    let long: Vec<u32> = generate(Distribution::Uniform, 3, 200_000);
    let short: Vec<u32> = generate(Distribution::Uniform, 3, 70_000);
    assert_eq!(&long[..70_000], &short[..]);
}

#[test]
fn empty_and_single_element() {
    for dist in Distribution::ALL {
        let mut e: Vec<f64> = vec![];
        let s = Generator::new(dist, 1)
            .fill(&mut e, &ParOptions::new())
            .unwrap();
        assert_eq!(s, checksum::<u8>(&[]));
        let one: Vec<f64> = generate(dist, 1, 1);
        assert!(one[0].is_finite());
    }
}

// ---------------------------------------------------------------- properties

fn keys<T: SortKey>(v: &[T]) -> Vec<T::Key> {
    v.iter().map(|x| x.sort_key()).collect()
}

fn sorted_and_reverse<T: Generate + SortKey>(strict: bool) {
    let n = 3 * BLOCK_LEN + 5;
    let s = keys(&generate::<T>(Distribution::Sorted, 11, n));
    let r = keys(&generate::<T>(Distribution::Reverse, 11, n));
    let name = T::KIND;
    if strict {
        assert!(s.windows(2).all(|w| w[0] < w[1]), "{name} sorted, strictly");
        assert!(
            r.windows(2).all(|w| w[0] > w[1]),
            "{name} reverse, strictly"
        );
    } else {
        assert!(s.windows(2).all(|w| w[0] <= w[1]), "{name} sorted");
        assert!(r.windows(2).all(|w| w[0] >= w[1]), "{name} reverse");
    }
}

#[test]
fn sorted_is_sorted_and_reverse_is_reverse_sorted() {
    sorted_and_reverse::<u8>(false);
    sorted_and_reverse::<u16>(false);
    sorted_and_reverse::<u32>(true);
    sorted_and_reverse::<u64>(true);
    sorted_and_reverse::<i8>(false);
    sorted_and_reverse::<i16>(false);
    sorted_and_reverse::<i32>(true);
    sorted_and_reverse::<i64>(true);
    sorted_and_reverse::<f32>(false);
    sorted_and_reverse::<f64>(true);
    sorted_and_reverse::<Record100>(true);
}

#[test]
fn sorted_spans_the_uniform_range() {
    let n = 100_000;
    let f: Vec<f64> = generate(Distribution::Sorted, 5, n);
    assert!(f[0] >= 0.0 && f[0] < 1.0 / n as f64, "{}", f[0]);
    assert!(
        f[n - 1] < 1.0 && f[n - 1] >= 1.0 - 1.0 / n as f64,
        "{}",
        f[n - 1]
    );
    let i: Vec<i8> = generate(Distribution::Sorted, 5, n);
    assert_eq!((i[0], i[n - 1]), (i8::MIN, i8::MAX));
    let r: Vec<i32> = generate(Distribution::Reverse, 5, n);
    assert!(r[0] > i32::MAX - (u32::MAX / n as u32) as i32);
    assert!(r[n - 1] < i32::MIN + (u32::MAX / n as u32) as i32);
}

#[test]
fn nearly_sorted_is_sorted_with_one_percent_displaced() {
    let n = 1_000_000;
    let sorted: Vec<u64> = generate(Distribution::Sorted, 9, n);
    let nearly: Vec<u64> = generate(Distribution::NearlySorted, 9, n);
    let displaced = sorted.iter().zip(&nearly).filter(|(a, b)| a != b).count();
    let frac = displaced as f64 / n as f64;
    assert!(
        (0.0095..=0.0105).contains(&frac),
        "{displaced} of {n} displaced"
    );
    let mut resorted = nearly.clone();
    resorted.sort_unstable();
    assert_eq!(resorted, sorted, "sorting nearly-sorted gives sorted back");
    // Displacements stay inside a block.
    for (i, x) in nearly.iter().enumerate() {
        let home = sorted.binary_search(x).unwrap();
        assert_eq!(home / BLOCK_LEN, i / BLOCK_LEN);
    }

    let nearly_f: Vec<f32> = generate(Distribution::NearlySorted, 9, 200_000);
    let out_of_order = nearly_f.windows(2).filter(|w| w[0] > w[1]).count();
    assert!(
        out_of_order > 0 && out_of_order < 200_000 / 50,
        "{out_of_order}"
    );
}

fn distinct<T: Generate + SortKey>(dist: Distribution, n: usize) -> usize
where
    T::Key: std::hash::Hash,
{
    let v = generate::<T>(dist, 21, n);
    v.iter().map(|x| x.sort_key()).collect::<HashSet<_>>().len()
}

#[test]
fn few_unique_has_exactly_16_values_and_equal_has_one() {
    macro_rules! each {
        ($($t:ty),*) => {$(
            assert_eq!(distinct::<$t>(Distribution::FewUnique, 100_000), FEW_UNIQUE, "{}", <$t>::KIND);
            assert_eq!(distinct::<$t>(Distribution::Equal, 10_000), 1, "{}", <$t>::KIND);
        )*};
    }
    each!(u8, u16, u32, u64, i8, i16, i32, i64, Record100);
    for t in [
        generate::<f32>(Distribution::FewUnique, 21, 100_000)
            .iter()
            .map(|x| x.to_bits() as u64)
            .collect::<HashSet<_>>(),
        generate::<f64>(Distribution::FewUnique, 21, 100_000)
            .iter()
            .map(|x| x.to_bits())
            .collect::<HashSet<_>>(),
    ] {
        assert_eq!(t.len(), FEW_UNIQUE);
    }
    let a: Vec<f64> = generate(Distribution::Equal, 1, 10);
    let b: Vec<f64> = generate(Distribution::Equal, 2, 10);
    assert_ne!(a[0], b[0], "the repeated value depends on the seed");
}

#[test]
fn uniform_floats_are_in_0_1_with_mean_one_half() {
    let n = 1_000_000;
    let f: Vec<f64> = generate(Distribution::Uniform, 4, n);
    assert!(f.iter().all(|x| (0.0..1.0).contains(x)));
    let mean = f.iter().sum::<f64>() / n as f64;
    // The mean of 10^6 U(0,1) has standard deviation 0.000289; 0.002 is 7 of those.
    assert!((mean - 0.5).abs() < 0.002, "{mean}");
    let g: Vec<f32> = generate(Distribution::Uniform, 4, n);
    assert!(g.iter().all(|x| (0.0..1.0).contains(x)));
    let below = g.iter().filter(|&&x| x < 0.25).count() as f64 / n as f64;
    assert!((below - 0.25).abs() < 0.003, "{below}");
}

/// Pearson's chi-square of 256 byte counts against the uniform expectation. With 255
/// degrees of freedom the statistic has mean 255 and standard deviation 22.6; 400 is more
/// than 6 standard deviations out.
fn chi_square_256(bytes: impl Iterator<Item = u8>) -> f64 {
    let mut counts = [0u64; 256];
    let mut n = 0u64;
    for b in bytes {
        counts[b as usize] += 1;
        n += 1;
    }
    let e = n as f64 / 256.0;
    counts.iter().map(|&c| (c as f64 - e).powi(2) / e).sum()
}

#[test]
fn uniform_integers_cover_the_full_range_evenly() {
    let n = 1_000_000;
    let u: Vec<u8> = generate(Distribution::Uniform, 6, n);
    assert!(chi_square_256(u.iter().copied()) < 400.0);
    let i: Vec<i8> = generate(Distribution::Uniform, 6, n);
    assert_eq!(i.iter().min(), Some(&i8::MIN));
    assert_eq!(i.iter().max(), Some(&i8::MAX));
    let w: Vec<u64> = generate(Distribution::Uniform, 6, n);
    assert!(
        chi_square_256(w.iter().map(|x| (x >> 56) as u8)) < 400.0,
        "top byte"
    );
    assert!(
        chi_square_256(w.iter().map(|&x| x as u8)) < 400.0,
        "low byte"
    );
    let s: Vec<i64> = generate(Distribution::Uniform, 6, n);
    let negative = s.iter().filter(|&&x| x < 0).count() as f64 / n as f64;
    assert!((negative - 0.5).abs() < 0.003, "{negative}");
    let h: Vec<i16> = generate(Distribution::Uniform, 6, n);
    assert!(chi_square_256(h.iter().map(|&x| (x >> 8) as u8)) < 400.0);
}

#[test]
fn normal_has_mean_0_and_std_1() {
    // 10^6 samples: the mean's standard error is 0.001 and the standard deviation's 0.0007;
    // tolerances of 0.005 are 5 and 7 standard errors.
    let n = 1_000_000;
    let check = |x: Vec<f64>| {
        let mean = x.iter().sum::<f64>() / n as f64;
        let var = x.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
        assert!(mean.abs() < 0.005, "mean {mean}");
        assert!((var.sqrt() - 1.0).abs() < 0.005, "std {}", var.sqrt());
        // And it is the normal shape, not just any unit-variance one: P(|x| < 1) = 0.6827
        // (binomial standard error 0.00047).
        let within = x.iter().filter(|v| v.abs() < 1.0).count() as f64 / n as f64;
        assert!((within - 0.6827).abs() < 0.003, "P(|x|<1) = {within}");
    };
    check(generate::<f64>(Distribution::Normal, 12, n));
    check(
        generate::<f32>(Distribution::Normal, 12, n)
            .into_iter()
            .map(f64::from)
            .collect(),
    );
}

#[test]
fn zipf_frequencies_follow_the_power_law() {
    let n = 1_000_000;
    let check = |ranks: Vec<u64>, max: u64| {
        let mut counts = BTreeMap::new();
        for &k in &ranks {
            assert!((1..=max).contains(&k), "rank {k} outside 1..={max}");
            *counts.entry(k).or_insert(0u64) += 1;
        }
        let h: f64 = (1..=max).map(|k| (k as f64).powf(-ZIPF_EXPONENT)).sum();
        for k in 1..=4u64 {
            let expected = n as f64 * (k as f64).powf(-ZIPF_EXPONENT) / h;
            let got = counts[&k] as f64;
            // Poisson standard deviation sqrt(expected) ≤ 0.4% of it here; allow 3%.
            assert!(
                (got / expected - 1.0).abs() < 0.03,
                "rank {k}: {got} vs {expected}"
            );
        }
    };
    check(generate::<u64>(Distribution::Zipf, 13, n), ZIPF_RANKS);
    check(
        generate::<u8>(Distribution::Zipf, 13, n)
            .into_iter()
            .map(u64::from)
            .collect(),
        255,
    );
    check(
        generate::<f32>(Distribution::Zipf, 13, n)
            .into_iter()
            .map(|x| x as u64)
            .collect(),
        ZIPF_RANKS,
    );
    let recs: Vec<Record100> = generate(Distribution::Zipf, 13, 100_000);
    assert!(
        recs.iter().all(|r| r.0[..2] == [0, 0]),
        "rank fits the key's low 8 bytes"
    );
}

#[test]
fn records_carry_their_index() {
    for dist in Distribution::ALL {
        if !dist.supports(Kind::Record100) {
            continue;
        }
        let recs: Vec<Record100> = generate(dist, 17, BLOCK_LEN + 300);
        for (i, r) in recs.iter().enumerate() {
            assert_eq!(record_index(r), Some(i as u64), "{dist} record {i}");
            assert_eq!(r.0[10..12], [0x00, 0x11]);
            assert_eq!(r.0[96..], [0xCC, 0xDD, 0xEE, 0xFF]);
        }
    }
}

#[test]
fn uniform_record_keys_are_random_and_sorting_recovers_a_permutation() {
    let mut recs: Vec<Record100> = generate(Distribution::Uniform, 19, 100_000);
    let keys: HashSet<[u8; 10]> = recs.iter().map(|r| r.sort_key()).collect();
    assert_eq!(keys.len(), recs.len(), "80-bit random keys do not collide");
    assert!(
        chi_square_256(recs.iter().map(|r| r.0[9])) < 400.0,
        "last key byte"
    );
    recs.sort_by_key(|r| r.sort_key());
    let mut seen = vec![false; recs.len()];
    for r in &recs {
        let i = record_index(r).unwrap() as usize;
        assert!(!seen[i]);
        seen[i] = true;
    }
}

// ---------------------------------------------------------------- the gen-dataset program

const GEN: &str = env!("CARGO_BIN_EXE_gen-dataset");

/// Runs gen-dataset; returns (success, stdout, stderr).
fn run(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(GEN)
        .args(args)
        .arg("--quiet")
        .output()
        .expect("run gen-dataset");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs gen-dataset, which must succeed; returns the checksum it printed.
fn run_ok(args: &[&str]) -> Checksum {
    let (ok, stdout, stderr) = run(args);
    assert!(ok, "gen-dataset {args:?} failed:\n{stderr}");
    let last = stdout.lines().last().unwrap_or_default();
    let hex = last
        .strip_prefix("checksum: ")
        .unwrap_or_else(|| panic!("no checksum line in:\n{stdout}"));
    Checksum(u64::from_str_radix(hex, 16).expect("hex checksum"))
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// The checksum, written out in numpy as datasets/README.md gives it: an oracle
/// independent of the Rust code. Defines `sum64(bytes) -> int`.
const NP_SUM64: &str = r#"
M = (1 << 64) - 1
def fmix(z):
    z = ((z ^ (z >> 30)) * 0xbf58476d1ce4e5b9) & M
    z = ((z ^ (z >> 27)) * 0x94d049bb133111eb) & M
    return z ^ (z >> 31)
def sum64(b):
    w = np.frombuffer(b + bytes(-len(b) % 8), dtype='<u8')
    z = w + np.arange(1, len(w) + 1, dtype=np.uint64) * np.uint64(0x9e3779b97f4a7c15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xbf58476d1ce4e5b9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94d049bb133111eb)
    z = z ^ (z >> np.uint64(31))
    return fmix(int(z.sum(dtype=np.uint64)) ^ len(b))
"#;

fn fill_checksum<T: Generate>(dist: Distribution, seed: u64, n: usize) -> Checksum {
    let mut v = vec![T::zeroed(); n];
    Generator::new(dist, seed)
        .fill(&mut v, &ParOptions::new())
        .unwrap()
}

#[test]
fn numpy_reads_every_generated_npy_with_its_dtype_and_shape() {
    require_numpy!();
    let dir = tmpdir();
    // Every numeric dtype; distributions and shapes rotate so each appears.
    let cases: &[(&str, &str, &str, &[usize])] = &[
        ("u8", "uniform", "uint8", &[70_000]),
        ("u16", "sorted", "uint16", &[300, 250]),
        ("u32", "reverse", "uint32", &[66_000]),
        ("u64", "nearly-sorted", "uint64", &[1000, 70]),
        ("i8", "few-unique", "int8", &[5, 6, 7]),
        ("i16", "zipf", "int16", &[12_345]),
        ("i32", "equal", "int32", &[17, 1]),
        ("i64", "uniform", "int64", &[65_537]),
        ("f32", "normal", "float32", &[1000, 3]),
        ("f64", "sorted", "float64", &[0]),
        ("f64", "uniform", "float64", &[100_000]),
    ];
    let mut script = String::from(NP_SUM64);
    script.push_str(
        r#"
for path in sys.argv[1:]:
    a = np.load(path)
    f = a.ravel()
    prop = 'sorted' if np.all(f[1:] >= f[:-1]) else 'reverse' if np.all(f[1:] <= f[:-1]) else '-'
    print(a.dtype.name, ','.join(map(str, a.shape)), '%016x' % sum64(a.tobytes()), len(np.unique(f)), prop)
"#,
    );
    let mut paths = vec![];
    let mut expected = vec![];
    for (i, (dtype, dist, np_dtype, shape)) in cases.iter().enumerate() {
        let path = dir.path().join(format!("{i}-{dtype}-{dist}.npy"));
        let shape_arg = shape
            .iter()
            .map(|d| d.to_string())
            .collect::<Vec<_>>()
            .join(",");
        let printed = run_ok(&[
            "--dtype",
            dtype,
            "--dist",
            dist,
            "--shape",
            &shape_arg,
            "--seed",
            "5",
            "--out",
            path.to_str().unwrap(),
        ]);
        // The file holds exactly what the library fills a Vec with.
        let n: usize = shape.iter().product();
        let dist_v: Distribution = dist.parse().unwrap();
        let in_memory = match *dtype {
            "u8" => fill_checksum::<u8>(dist_v, 5, n),
            "u16" => fill_checksum::<u16>(dist_v, 5, n),
            "u32" => fill_checksum::<u32>(dist_v, 5, n),
            "u64" => fill_checksum::<u64>(dist_v, 5, n),
            "i8" => fill_checksum::<i8>(dist_v, 5, n),
            "i16" => fill_checksum::<i16>(dist_v, 5, n),
            "i32" => fill_checksum::<i32>(dist_v, 5, n),
            "i64" => fill_checksum::<i64>(dist_v, 5, n),
            "f32" => fill_checksum::<f32>(dist_v, 5, n),
            "f64" => fill_checksum::<f64>(dist_v, 5, n),
            _ => unreachable!(),
        };
        assert_eq!(printed, in_memory, "{dtype} {dist}");
        paths.push(path.to_str().unwrap().to_owned());
        expected.push((np_dtype, shape, printed, dist));
    }
    let args: Vec<&str> = paths.iter().map(|s| s.as_str()).collect();
    let out = python(&script, &args);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), cases.len(), "{out}");
    for (line, (np_dtype, shape, sum, dist)) in lines.iter().zip(&expected) {
        let f: Vec<&str> = line.split(' ').collect();
        let shape_str = shape
            .iter()
            .map(|d| d.to_string())
            .collect::<Vec<_>>()
            .join(",");
        assert_eq!(f[0], **np_dtype, "{line}");
        assert_eq!(f[1], shape_str, "{line}");
        assert_eq!(
            f[2],
            sum.to_string(),
            "numpy's checksum of the data: {line}"
        );
        let n: usize = shape.iter().product();
        match **dist {
            "sorted" => assert_eq!(f[4], "sorted", "{line}"),
            "reverse" => assert_eq!(f[4], "reverse", "{line}"),
            "few-unique" => assert_eq!(f[3], "16", "{line}"),
            "equal" => assert_eq!(f[3], "1", "{line}"),
            "nearly-sorted" | "uniform" if n > 1000 => assert_eq!(f[4], "-", "{line}"),
            _ => {}
        }
    }
}

#[test]
fn record_files_carry_their_index_and_the_printed_checksum() {
    require_numpy!();
    let dir = tmpdir();
    let path = dir.path().join("records.dat");
    let n = BLOCK_LEN + 10;
    let printed = run_ok(&[
        "--dtype",
        "record100",
        "--dist",
        "nearly-sorted",
        "--count",
        &n.to_string(),
        "--out",
        path.to_str().unwrap(),
    ]);
    assert_eq!(
        std::fs::metadata(&path).unwrap().len(),
        100 * n as u64,
        "raw by default: no header"
    );
    assert_eq!(
        printed,
        fill_checksum::<Record100>(Distribution::NearlySorted, 0, n)
    );
    let mut script = String::from(NP_SUM64);
    script.push_str(
        r#"
raw = open(sys.argv[1], 'rb').read()
r = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 100)
idx = np.array([int(bytes(x).decode('ascii'), 16) for x in r[:, 12:44]])
keys = [bytes(k) for k in r[:, :10]]
print(len(r), int(np.all(idx == np.arange(len(r)))), int(keys == sorted(keys)), '%016x' % sum64(raw))
"#,
    );
    let out = python(&script, &[path.to_str().unwrap()]);
    assert_eq!(out.trim(), format!("{n} 1 0 {printed}"));
}

#[test]
fn the_program_writes_identical_files_on_1_and_2_threads_and_in_windows() {
    let dir = tmpdir();
    let n = (2 * BLOCK_LEN + 3).to_string();
    for (dtype, dist) in [
        ("f32", "nearly-sorted"),
        ("i64", "zipf"),
        ("record100", "uniform"),
    ] {
        let a = dir.path().join(format!("{dtype}-1"));
        let b = dir.path().join(format!("{dtype}-2"));
        let common = [
            "--dtype", dtype, "--dist", dist, "--count", &n, "--seed", "99",
        ];
        let sa = run_ok(
            &[
                &common[..],
                &["--threads", "1", "--out", a.to_str().unwrap()],
            ]
            .concat(),
        );
        let sb = run_ok(
            &[
                &common[..],
                &["--threads", "2", "--out", b.to_str().unwrap()],
            ]
            .concat(),
        );
        // A memory budget writes the same bytes a window at a time.
        let c = dir.path().join(format!("{dtype}-windowed"));
        let budget = ["--memory-budget", "300KiB", "--out", c.to_str().unwrap()];
        let sc = run_ok(&[&common[..], &budget].concat());
        assert_eq!(sa, sb);
        assert_eq!(sa, sc);
        let bytes = std::fs::read(&a).unwrap();
        assert!(
            bytes == std::fs::read(&b).unwrap(),
            "{dtype} {dist}: 1 vs 2 threads"
        );
        assert!(
            bytes == std::fs::read(&c).unwrap(),
            "{dtype} {dist}: windowed"
        );
    }
}

#[test]
fn an_existing_output_is_replaced_only_on_success() {
    let dir = tmpdir();
    let path = dir.path().join("out.npy");
    let p = path.to_str().unwrap();
    std::fs::write(&path, b"old").unwrap();
    let (ok, _, _) = run(&[
        "--dtype", "u8", "--dist", "normal", "--count", "9", "--out", p,
    ]);
    assert!(!ok);
    assert_eq!(
        std::fs::read(&path).unwrap(),
        b"old",
        "a failed run leaves it alone"
    );
    run_ok(&[
        "--dtype", "u8", "--dist", "uniform", "--count", "9", "--out", p,
    ]);
    let a = outcore::MappedArray::<u8>::open(&path).unwrap();
    assert_eq!(a.shape(), &[9]);
    assert_eq!(files_in(dir.path()), ["out.npy"]);
}

/// Each bad argument: a non-zero exit, a message that says what is wrong, and no file (not
/// even a temporary one) in the output directory.
#[test]
fn bad_arguments_are_clear_errors_and_write_nothing() {
    let dir = tmpdir();
    let out = dir.path().join("out.npy");
    let o = out.to_str().unwrap();
    let a_file = dir.path().join("a-file");
    std::fs::create_dir(dir.path().join("sub")).unwrap();
    let sub = dir.path().join("sub");
    let missing = dir.path().join("missing/out.npy");
    let under_file = a_file.join("out.npy");
    let cases: &[(&[&str], &str)] = &[
        (
            &[
                "--dtype", "f16", "--dist", "uniform", "--count", "9", "--out", o,
            ],
            "unknown dtype \"f16\"",
        ),
        (
            &[
                "--dtype", "f64", "--dist", "gauss", "--count", "9", "--out", o,
            ],
            "unknown distribution \"gauss\"",
        ),
        (
            &[
                "--dtype", "i32", "--dist", "normal", "--count", "9", "--out", o,
            ],
            "needs a float dtype",
        ),
        (
            &[
                "--dtype", "f64", "--dist", "uniform", "--size", "1001", "--out", o,
            ],
            "--size 1001 bytes is not a multiple of the f64 element size (8 bytes)",
        ),
        (
            &[
                "--dtype", "f64", "--dist", "uniform", "--size", "4XB", "--out", o,
            ],
            "unknown unit",
        ),
        (
            &[
                "--dtype", "u8", "--dist", "uniform", "--shape", "10,10", "--count", "99", "--out",
                o,
            ],
            "--shape 10,10 holds 100 elements, but --count is 99",
        ),
        (
            &[
                "--dtype", "u16", "--dist", "uniform", "--shape", "10,10", "--size", "100",
                "--out", o,
            ],
            "--size holds 50 u16 elements",
        ),
        (
            &[
                "--dtype", "u8", "--dist", "uniform", "--shape", "10,x", "--out", o,
            ],
            "is not a shape",
        ),
        (
            &[
                "--dtype", "u8", "--dist", "uniform", "--shape", "10,10", "--format", "raw",
                "--out", o,
            ],
            "a raw file has no shape",
        ),
        (
            &[
                "--dtype",
                "record100",
                "--dist",
                "uniform",
                "--count",
                "9",
                "--format",
                "npy",
                "--out",
                o,
            ],
            "record100 has no .npy dtype",
        ),
        (
            &["--dtype", "u8", "--dist", "uniform", "--out", o],
            "give the dataset's length",
        ),
        (
            &[
                "--dtype", "u8", "--dist", "uniform", "--count", "9", "--size", "9", "--out", o,
            ],
            "cannot be used with",
        ),
        (
            &[
                "--dtype", "u8", "--dist", "uniform", "--count", "-9", "--out", o,
            ],
            "unexpected argument",
        ),
        (
            &[
                "--dtype",
                "u64",
                "--dist",
                "uniform",
                "--count",
                "4611686018427387904",
                "--out",
                o,
            ],
            "too many bytes",
        ),
        (
            &[
                "--dtype", "f64", "--dist", "uniform", "--size", "1000TiB", "--out", o,
            ],
            "not enough free disk space",
        ),
        (
            &[
                "--dtype",
                "u8",
                "--dist",
                "uniform",
                "--count",
                "9",
                "--out",
                missing.to_str().unwrap(),
            ],
            "no such directory",
        ),
        (
            &[
                "--dtype",
                "u8",
                "--dist",
                "uniform",
                "--count",
                "9",
                "--out",
                under_file.to_str().unwrap(),
            ],
            "not a directory",
        ),
        (
            &[
                "--dtype",
                "u8",
                "--dist",
                "uniform",
                "--count",
                "9",
                "--out",
                sub.to_str().unwrap(),
            ],
            "is a directory",
        ),
    ];
    std::fs::write(&a_file, b"").unwrap();
    for (args, message) in cases {
        let (ok, stdout, stderr) = run(args);
        assert!(!ok, "{args:?} succeeded:\n{stdout}");
        assert!(
            stderr.contains(message),
            "{args:?}: expected {message:?} in:\n{stderr}"
        );
        assert_eq!(
            files_in(dir.path()),
            ["a-file", "sub"],
            "{args:?} left a file"
        );
        assert!(files_in(&sub).is_empty());
    }
}

#[test]
fn an_unwritable_directory_is_a_clear_error() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tmpdir();
    let locked = dir.path().join("locked");
    std::fs::create_dir(&locked).unwrap();
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o555)).unwrap();
    // root ignores permission bits; the immutable attribute stops it.
    let probe = locked.join("probe");
    let mut immutable = false;
    if std::fs::write(&probe, b"").is_ok() {
        std::fs::remove_file(&probe).unwrap();
        immutable = Command::new("chattr")
            .arg("+i")
            .arg(&locked)
            .status()
            .is_ok_and(|s| s.success());
        if !immutable {
            eprintln!("skipped: cannot make a directory unwritable here (root without chattr)");
            return;
        }
    }
    let out = locked.join("out.npy");
    let result = run(&[
        "--dtype",
        "u8",
        "--dist",
        "uniform",
        "--count",
        "9",
        "--out",
        out.to_str().unwrap(),
    ]);
    if immutable {
        let _ = Command::new("chattr").arg("-i").arg(&locked).status();
    }
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o755)).unwrap();
    let (ok, _, stderr) = result;
    assert!(!ok);
    assert!(
        stderr.contains("is not writable (permission denied)"),
        "{stderr}"
    );
    assert!(files_in(&locked).is_empty());
}

#[test]
fn parts_fill_what_the_whole_fills_and_their_checksums_combine() {
    let n = 3 * BLOCK_LEN + 98;
    // Boundaries on and off block boundaries, two parts inside one block, a short last part.
    let cuts = [0, 1000, 1002, BLOCK_LEN, 2 * BLOCK_LEN + 6, n - 2, n];
    for dist in [
        Distribution::Sorted,
        Distribution::NearlySorted,
        Distribution::Normal,
        Distribution::Zipf,
    ] {
        let g = Generator::new(dist, 31);
        let mut whole = vec![0f32; n];
        let expected = g.fill(&mut whole, &ParOptions::new()).unwrap();
        let mut pieces = vec![0f32; n];
        let mut parts = vec![];
        let mut rest = &mut pieces[..];
        for w in cuts.windows(2) {
            let (p, tail) = rest.split_at_mut(w[1] - w[0]);
            parts.push((w[0], p));
            rest = tail;
        }
        // Out of order, as windows written by different processes could be.
        parts.reverse();
        let mut sum = PartialChecksum::default();
        for (first, p) in parts {
            sum = sum.combine(g.fill_part(p, first, n, &threads(2), &|_| {}).unwrap());
        }
        assert!(
            bytemuck::cast_slice::<f32, u8>(&pieces) == bytemuck::cast_slice::<f32, u8>(&whole),
            "{dist}"
        );
        assert_eq!(sum.finish(), expected, "{dist}");
    }
    let mut recs = vec![<Record100 as bytemuck::Zeroable>::zeroed(); 10];
    let r = Generator::new(Distribution::Uniform, 2).fill_part(
        &mut recs,
        1234,
        5000,
        &threads(1),
        &|_| {},
    );
    assert!(
        (0..10).all(|i| record_index(&recs[i]) == Some(1234 + i as u64)),
        "records deep in a block carry their global index: {r:?}"
    );
}

#[test]
fn parts_off_word_boundaries_or_outside_the_dataset_are_refused() {
    let g = Generator::new(Distribution::Uniform, 1);
    let opts = ParOptions::new();
    let mut v = vec![0i32; 100];
    for (first, len, total) in [
        (1, 100, 1000),
        (0, 99, 1000),
        (0, 100, 99),
        (usize::MAX, 100, 1000),
    ] {
        let r = g.fill_part(&mut v[..len], first, total, &opts, &|_| {});
        assert!(
            matches!(r, Err(outcore::Error::InvalidArgument(_))),
            "{first} {len} {total}"
        );
        assert!(v.iter().all(|&x| x == 0), "nothing written");
    }
    // Ending off a word boundary is fine at the end of the dataset.
    assert!(g.fill_part(&mut v[..99], 2, 101, &opts, &|_| {}).is_ok());
}

#[test]
fn a_run_removes_the_temporary_files_of_killed_runs_but_not_of_live_ones() {
    let dir = tmpdir();
    let out = dir.path().join("out.npy");
    let dead = dir.path().join(".out.npy.outcore-tmp-999999-0");
    let live = dir.path().join(".other.npy.outcore-tmp-999999-1");
    std::fs::write(&dead, b"left by a killed run").unwrap();
    std::fs::write(&live, b"being written").unwrap();
    // A live writer holds its temporary file's lock.
    let held = std::fs::File::open(&live).unwrap();
    held.lock().unwrap();
    let (ok, _, stderr) = run(&[
        "--dtype",
        "u8",
        "--dist",
        "uniform",
        "--count",
        "9",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(ok, "{stderr}");
    assert!(stderr.contains("removed 1 temporary file"), "{stderr}");
    assert_eq!(
        files_in(dir.path()),
        [".other.npy.outcore-tmp-999999-1", "out.npy"]
    );
    drop(held);
}
