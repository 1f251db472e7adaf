//! Criterion benchmarks of the in-memory sort at sizes where criterion's statistics are
//! affordable (10^5 to 10^7 elements; `benches/sort_ratios.rs` runs the 10^8 comparison
//! with numpy).
//!
//! ```text
//! cargo bench -p outcore-bench --bench sort_memory
//! cargo bench -p outcore-bench --bench sort_memory -- 'u64/1000000'     # one group and size
//! ```

use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};
use outcore::sort::{self, Record};
use rayon::prelude::*;
use voracious_radix_sort::RadixSort;

fn random_u64(n: usize, seed: u64) -> Vec<u64> {
    let mut s = seed | 1;
    (0..n)
        .map(|_| {
            s ^= s >> 12;
            s ^= s << 25;
            s ^= s >> 27;
            s.wrapping_mul(0x2545_f491_4f6c_dd1d)
        })
        .collect()
}

fn primitives(c: &mut Criterion) {
    let threads = rayon::current_num_threads();
    for n in [100_000usize, 1_000_000, 10_000_000] {
        let u = random_u64(n, 1);
        let f: Vec<f64> = random_u64(n, 2)
            .into_iter()
            .map(|x| (x >> 11) as f64 / (1u64 << 52) as f64 - 1.0)
            .collect();

        let mut g = c.benchmark_group("u64");
        g.throughput(Throughput::Elements(n as u64));
        g.sample_size(if n >= 10_000_000 { 10 } else { 20 });
        let batch = BatchSize::LargeInput;
        g.bench_function(BenchmarkId::new("outcore_par_sort", n), |b| {
            b.iter_batched_ref(|| u.clone(), |v| sort::par_sort(v), batch)
        });
        g.bench_function(BenchmarkId::new("rayon_par_sort_unstable", n), |b| {
            b.iter_batched_ref(|| u.clone(), |v| v.par_sort_unstable(), batch)
        });
        g.bench_function(BenchmarkId::new("voracious_mt_sort", n), |b| {
            b.iter_batched_ref(|| u.clone(), |v| v.voracious_mt_sort(threads), batch)
        });
        g.bench_function(BenchmarkId::new("slice_sort_unstable", n), |b| {
            b.iter_batched_ref(|| u.clone(), |v| v.sort_unstable(), batch)
        });
        g.finish();

        let mut g = c.benchmark_group("f64");
        g.throughput(Throughput::Elements(n as u64));
        g.sample_size(if n >= 10_000_000 { 10 } else { 20 });
        g.bench_function(BenchmarkId::new("outcore_par_sort", n), |b| {
            b.iter_batched_ref(|| f.clone(), |v| sort::par_sort(v), batch)
        });
        g.bench_function(BenchmarkId::new("rayon_par_sort_unstable_by", n), |b| {
            b.iter_batched_ref(
                || f.clone(),
                |v| v.par_sort_unstable_by(f64::total_cmp),
                batch,
            )
        });
        g.bench_function(BenchmarkId::new("voracious_mt_sort", n), |b| {
            b.iter_batched_ref(|| f.clone(), |v| v.voracious_mt_sort(threads), batch)
        });
        g.finish();
    }
}

/// Sort Benchmark records: 100 bytes, 10-byte key compared as unsigned bytes.
fn records(c: &mut Criterion) {
    let n = 1_000_000;
    let bits = random_u64(n * 13, 3);
    let recs: Vec<Record<100, 10>> = bits
        .chunks_exact(13)
        .map(|w| {
            let mut r = [0u8; 100];
            r.copy_from_slice(&bytemuck::cast_slice::<u64, u8>(w)[..100]);
            Record(r)
        })
        .collect();
    let mut g = c.benchmark_group("record100");
    g.throughput(Throughput::Bytes((n * 100) as u64));
    g.sample_size(10);
    let batch = BatchSize::LargeInput;
    g.bench_function(BenchmarkId::new("outcore_par_sort", n), |b| {
        b.iter_batched_ref(|| recs.clone(), |v| sort::par_sort(v), batch)
    });
    g.bench_function(BenchmarkId::new("outcore_par_sort_stable", n), |b| {
        b.iter_batched_ref(|| recs.clone(), |v| sort::par_sort_stable(v), batch)
    });
    g.bench_function(BenchmarkId::new("rayon_par_sort_unstable_by_key", n), |b| {
        b.iter_batched_ref(
            || recs.clone(),
            |v| v.par_sort_unstable_by_key(|r| <[u8; 10]>::try_from(&r.0[..10]).unwrap()),
            batch,
        )
    });
    g.finish();

    let keys: Vec<f64> = random_u64(n, 4).into_iter().map(|x| x as f64).collect();
    let mut g = c.benchmark_group("argsort_f64");
    g.throughput(Throughput::Elements(n as u64));
    g.sample_size(10);
    g.bench_function(BenchmarkId::new("outcore_argsort", n), |b| {
        b.iter(|| sort::argsort(&keys))
    });
    g.bench_function(BenchmarkId::new("rayon_par_sort_by_indices", n), |b| {
        b.iter(|| {
            let mut idx: Vec<usize> = (0..n).collect();
            idx.par_sort_by(|&i, &j| keys[i].total_cmp(&keys[j]));
            idx
        })
    });
    g.finish();
}

criterion_group!(benches, primitives, records);
criterion_main!(benches);
