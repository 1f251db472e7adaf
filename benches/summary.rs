//! The fused summary against the fastest single pass over the same file.
//!
//! ```text
//! cargo bench -p outcore-bench --bench summary -- hot FILE.npy [ROUNDS]
//! cargo bench -p outcore-bench --bench summary -- sum FILE.npy
//! cargo bench -p outcore-bench --bench summary -- describe FILE.npy LO HI
//! cargo bench -p outcore-bench --bench summary -- quantiles FILE.npy
//! PARTS_N=32768 PARTS_REPS=2000 cargo bench -p outcore-bench --bench summary -- parts FILE.npy
//! ```
//!
//! FILE is a 1-D `.npy` of `f64` (`outcore gen --dtype f64 --dist normal --size 8GiB --out
//! FILE`).
//!
//! * `hot` maps the file, reads it once into the page cache, then runs ROUNDS rounds (default
//!   5) of: `kernels::sum` (the memory read bandwidth reference: the cheapest pass there is),
//!   the summary with a 64-bin histogram over `[min, max]` (one fused pass), the histogram
//!   alone, and median + p1 + p99. It prints the median GB/s, the range, and each median
//!   ratio to the same round's sum.
//! * `parts` times each statistic of the summary alone and the summary itself, hot, over
//!   the first `PARTS_N` values (default 2^27), each pass repeated `PARTS_REPS` times (default
//!   1), best of 3: with 32768 values (256 KiB, one chunk, so one thread) it measures the
//!   loops in cache. With `PARTS_OFFSET=k` it runs on a copy of those values in a `Vec`
//!   whose first value is `k * 8` bytes past a 64-byte line (the mapping's is on one).
//! * `sum`, `describe` and `quantiles` each run one pass (or the quantiles' passes) and
//!   print one line of JSON with the seconds and the results, so that a driver
//!   (`benches/summary_cold.py`) can time them cold, under a memory cap, one process each.

use std::path::Path;
use std::time::Instant;

use outcore::kernels::{self, DescribeOptions, QuantileOptions};
use outcore::stream::{self, Stream};
use outcore::{MappedArray, ParOptions};

fn open(path: &Path) -> MappedArray<f64> {
    MappedArray::<f64>::open(path).expect("open a 1-D f64 .npy")
}

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn range_of(v: &[f64]) -> (f64, f64) {
    let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    (lo, hi)
}

fn summary_opts(lo: f64, hi: f64) -> DescribeOptions {
    let mut o = DescribeOptions::new();
    o.bins(64).range(lo, hi);
    o
}

/// p1, p50 and p99 (numpy's linear method); `release` pages behind the passes (cold runs) or
/// keeps them cached (hot runs).
fn percentiles(a: &MappedArray<f64>, release: bool) -> Vec<f64> {
    let mut s = Stream::new();
    s.release_behind(release);
    let mut o = QuantileOptions::new();
    o.stream(s);
    let q = stream::percentiles(a, &[1.0, 50.0, 99.0], &o).expect("quantiles");
    q.values.iter().map(|v| v.to_f64()).collect()
}

fn hot(path: &Path, rounds: usize) {
    let a = open(path);
    let gb = (a.len() * 8) as f64 / 1e9;
    let warm = kernels::sum(&a);
    let (lo, hi) = kernels::min_max(&a).expect("non-empty");
    let opts = summary_opts(lo, hi);
    let names = [
        "sum",
        "summary (64 bins)",
        "histogram (64 bins)",
        "median + p1 + p99",
    ];
    let mut rates: Vec<Vec<f64>> = vec![Vec::new(); names.len()];
    let mut ratios: Vec<Vec<f64>> = vec![Vec::new(); names.len()];
    for _ in 0..rounds {
        let mut secs = [0.0; 4];
        let t = Instant::now();
        let s = kernels::sum(&a);
        secs[0] = t.elapsed().as_secs_f64();
        assert_eq!(s.to_bits(), warm.to_bits());
        let t = Instant::now();
        let d = kernels::describe(&a, &opts).expect("describe");
        secs[1] = t.elapsed().as_secs_f64();
        assert_eq!(d.sum.to_bits(), warm.to_bits());
        let t = Instant::now();
        let h = kernels::histogram(&a, 64, Some((lo, hi))).expect("histogram");
        secs[2] = t.elapsed().as_secs_f64();
        assert_eq!(Some(h), d.histogram.map(|h| h.counts));
        let t = Instant::now();
        let q = percentiles(&a, false);
        secs[3] = t.elapsed().as_secs_f64();
        assert_eq!(q.len(), 3);
        for i in 0..names.len() {
            rates[i].push(gb / secs[i]);
            ratios[i].push(secs[i] / secs[0]);
        }
    }
    println!("hot, {gb:.2} GB of f64, {rounds} rounds, all threads");
    println!("| pass | GB/s median | range | time / sum's (median [min, max]) |");
    println!("|---|---|---|---|");
    for i in 0..names.len() {
        let (rl, rh) = range_of(&rates[i]);
        let (ql, qh) = range_of(&ratios[i]);
        println!(
            "| {} | {:.2} | {:.2}–{:.2} | {:.2}× [{:.2}, {:.2}] |",
            names[i],
            median(&rates[i]),
            rl,
            rh,
            median(&ratios[i]),
            ql,
            qh
        );
    }
}

/// Each statistic of the summary alone, hot (a diagnostic for the fused pass).
fn parts(path: &Path) {
    let a = open(path);
    let n = std::env::var("PARTS_N").map_or(1 << 27, |s| s.parse().expect("PARTS_N"));
    let reps: usize = std::env::var("PARTS_REPS").map_or(1, |s| s.parse().expect("PARTS_REPS"));
    let head = &a[..a.len().min(n)];
    // PARTS_OFFSET=k: the values copied into a `Vec` whose first one sits k * 8 bytes past a
    // 64-byte line (a mapped `.npy` file's data starts on a line; glibc's large allocations
    // start 16 bytes past one, k = 2).
    let offset: Option<usize> = std::env::var("PARTS_OFFSET")
        .ok()
        .map(|s| s.parse().expect("PARTS_OFFSET"));
    let mut copy;
    let v: &[f64] = match offset {
        None => head,
        Some(k) => {
            copy = vec![0.0; head.len() + 16];
            let past = (copy.as_ptr() as usize % 64) / 8;
            let start = (8 - past) % 8 + k % 8;
            copy[start..start + head.len()].copy_from_slice(head);
            &copy[start..start + head.len()]
        }
    };
    let gb = (v.len() * 8 * reps) as f64 / 1e9;
    let (lo, hi) = kernels::min_max(v).expect("non-empty");
    let time = |name: &str, f: &dyn Fn() -> f64| {
        let mut best = f64::INFINITY;
        let mut r = 0.0;
        for _ in 0..3 {
            let t = Instant::now();
            for _ in 0..reps {
                r += f();
            }
            best = best.min(t.elapsed().as_secs_f64());
        }
        println!("{name:<24} {:6.2} GB/s  ({r})", gb / best);
    };
    time("sum", &|| kernels::sum(v));
    time("nan count", &|| kernels::count(v, |x| x.is_nan()) as f64);
    time("moments", &|| kernels::moments(v).mean());
    time("min_max", &|| kernels::min_max(v).unwrap().0);
    time("argmin", &|| kernels::argmin(v).unwrap() as f64);
    time("argmax", &|| kernels::argmax(v).unwrap() as f64);
    time("histogram 64", &|| {
        kernels::histogram(v, 64, Some((lo, hi))).unwrap()[3] as f64
    });
    let mut o = DescribeOptions::new();
    o.bins(64).range(lo, hi);
    time("describe 64", &|| kernels::describe(v, &o).unwrap().mean);
    time("describe no hist", &|| {
        kernels::describe(v, &DescribeOptions::new()).unwrap().mean
    });
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let usage =
        "usage: summary hot FILE [ROUNDS] | parts FILE | sum FILE | describe FILE LO HI | quantiles FILE";
    let (mode, path) = match args.as_slice() {
        [m, p, ..] => (m.as_str(), Path::new(p)),
        _ => panic!("{usage}"),
    };
    let t = Instant::now();
    match mode {
        "parts" => parts(path),
        "hot" => hot(path, args.get(2).map_or(5, |r| r.parse().expect("ROUNDS"))),
        "sum" => {
            let s = kernels::sum(&open(path));
            println!(
                "{{\"secs\": {}, \"sum\": {s:?}}}",
                t.elapsed().as_secs_f64()
            );
        }
        "describe" => {
            let lo: f64 = args[2].parse().expect("LO");
            let hi: f64 = args[3].parse().expect("HI");
            let a = open(path);
            // As `outcore stats` does: pages released behind the pass.
            let mut s = Stream::new();
            s.release_behind(true);
            let d = stream::describe(&a, &summary_opts(lo, hi), &ParOptions::new(), &s)
                .expect("describe");
            let h = d.histogram.expect("histogram").counts;
            println!(
                "{{\"secs\": {}, \"count\": {}, \"nan_count\": {}, \"sum\": {:?}, \"mean\": {:?}, \
                 \"std\": {:?}, \"min\": {:?}, \"max\": {:?}, \"argmin\": {}, \"argmax\": {}, \
                 \"hist\": {:?}}}",
                t.elapsed().as_secs_f64(),
                d.count,
                d.nan_count,
                d.sum,
                d.mean,
                d.std,
                d.min.expect("min"),
                d.max.expect("max"),
                d.argmin.expect("argmin"),
                d.argmax.expect("argmax"),
                h
            );
        }
        "quantiles" => {
            let q = percentiles(&open(path), true);
            println!(
                "{{\"secs\": {}, \"p1_50_99\": {q:?}}}",
                t.elapsed().as_secs_f64()
            );
        }
        _ => panic!("{usage}"),
    }
}
