//! Criterion benchmarks of the kernels on in-memory data.
//!
//! - `serial_in_cache`: one thread, 128 KiB of `f64` (stays in L2), our serial loops
//!   against the plain loops a compiler cannot vectorise (a single float accumulator).
//!   The ratio shows whether the lanes vectorised: memory is not the limit here.
//! - `hot_256MiB`: every kernel on a 256 MiB `Vec<f64>` with the default options
//!   (all threads), next to a single-threaded plain loop, in GB/s.
//!
//! File-scale runs (4 GiB, cold cache, numpy, memory cap) are in `kernels_vs_numpy.py`.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use outcore::kernels::{self, Numeric};
use outcore::ParOptions;

fn data(n: usize) -> Vec<f64> {
    let mut x = 0x2545_f491_4f6c_dd1du64;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
        })
        .collect()
}

fn serial_in_cache(c: &mut Criterion) {
    let v = data(16 * 1024);
    let mut g = c.benchmark_group("serial_in_cache");
    g.throughput(Throughput::Bytes((v.len() * 8) as u64));
    g.bench_function("plain_sum", |b| {
        b.iter(|| {
            let mut s = 0.0;
            for &x in black_box(&v) {
                s += x;
            }
            s
        })
    });
    g.bench_function("pairwise_lanes_sum", |b| {
        b.iter(|| f64::sum_serial(black_box(&v)))
    });
    g.bench_function("plain_min_max", |b| {
        b.iter(|| {
            black_box(&v)
                .iter()
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &x| {
                    (lo.min(x), hi.max(x))
                })
        })
    });
    let one = {
        let mut o = ParOptions::new();
        o.threads(1);
        o
    };
    g.bench_function("lanes_min_max_1t", |b| {
        b.iter(|| kernels::min_max_with(black_box(&v), &one).unwrap())
    });
    g.bench_function("lanes_moments_1t", |b| {
        b.iter(|| kernels::moments_with(black_box(&v), &one).unwrap())
    });
    let iv: Vec<i64> = v.iter().map(|x| (x * 1e15) as i64).collect();
    g.bench_function("plain_i128_sum_i64", |b| {
        b.iter(|| black_box(&iv).iter().map(|&x| x as i128).sum::<i128>())
    });
    g.bench_function("split_lanes_sum_i64", |b| {
        b.iter(|| i64::sum_serial(black_box(&iv)))
    });
    g.finish();
}

fn hot(c: &mut Criterion) {
    let mut v = data(32 << 20);
    let bytes = (v.len() * 8) as u64;
    let mut out = vec![0.0f64; v.len()];
    let mut g = c.benchmark_group("hot_256MiB");
    g.throughput(Throughput::Bytes(bytes));
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(3));
    g.bench_function("plain_sum_1t", |b| {
        b.iter(|| {
            let mut s = 0.0;
            for &x in &v {
                s += x;
            }
            s
        })
    });
    g.bench_function("sum", |b| b.iter(|| kernels::sum(&v)));
    g.bench_function("min_max", |b| b.iter(|| kernels::min_max(&v)));
    g.bench_function("mean_var", |b| b.iter(|| kernels::moments(&v).variance(0)));
    g.bench_function("argmin", |b| b.iter(|| kernels::argmin(&v)));
    g.bench_function("count", |b| b.iter(|| kernels::count(&v, |&x| x > 0.0)));
    g.bench_function("histogram_100", |b| {
        b.iter(|| kernels::histogram(&v, 100, Some((-1.0, 1.0))).unwrap())
    });
    g.bench_function("axis0_stats_16col", |b| {
        b.iter(|| kernels::axis_stats(&v, 16, 0).unwrap())
    });
    g.bench_function("cumsum_into", |b| {
        b.iter(|| kernels::cumsum_into(&v, &mut out).unwrap())
    });
    g.bench_function("filter_into", |b| {
        b.iter(|| kernels::filter_into(&v, &mut out, |&x| x > 0.0).unwrap())
    });
    g.bench_function("plain_map_in_place_1t", |b| {
        b.iter(|| {
            for x in v.iter_mut() {
                *x = -*x;
            }
        })
    });
    g.bench_function("map_in_place", |b| {
        b.iter(|| kernels::map_in_place(&mut v, |x| -x))
    });
    g.bench_function("map_into", |b| {
        b.iter(|| kernels::map_into(&v, &mut out, |x| x * 2.0).unwrap())
    });
    g.finish();
}

criterion_group!(benches, serial_in_cache, hot);
criterion_main!(benches);
