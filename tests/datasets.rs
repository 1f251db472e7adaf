//! The dataset generator: determinism, the property each distribution claims, numpy reading
//! what the generator writes. (The `outcore gen` program's tests are in cli/tests/gen.rs.)
#![cfg(feature = "datasets")]

use std::collections::{BTreeMap, HashSet};

use outcore::datasets::{
    checksum, record_index, Distribution, Generate, Generator, Kind, PartialChecksum, Record100,
    BLOCK_LEN, FEW_UNIQUE, ZIPF_EXPONENT, ZIPF_RANKS,
};
use outcore::sort::SortKey;
use outcore::ParOptions;

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
            matches!(r, Err(outcore::Error::BadPart { first: f, end, total: t })
                if f == first && end == first.saturating_add(len) && t == total),
            "{first} {len} {total}"
        );
        assert!(v.iter().all(|&x| x == 0), "nothing written");
    }
    // Ending off a word boundary is fine at the end of the dataset: the part holds elements
    // 2..101 of the 101-element dataset, and with the first two it makes up its checksum.
    let tail = g.fill_part(&mut v[..99], 2, 101, &opts, &|_| {}).unwrap();
    let mut head = [0i32; 2];
    let head_sum = g.fill_part(&mut head, 0, 101, &opts, &|_| {}).unwrap();
    let mut whole = vec![0i32; 101];
    let expected = g.fill(&mut whole, &opts).unwrap();
    assert_eq!(&v[..99], &whole[2..]);
    assert_eq!(v[99], 0, "past the part is untouched");
    assert_eq!(head, whole[..2]);
    assert_eq!(head_sum.combine(tail).finish(), expected);
}
