//! In-memory sort of 10^8 u64 and f64, outcore against the usual alternatives, timed side by
//! side in one run and printed as ratios.
//!
//! ```text
//! cargo bench -p outcore-bench --bench sort_ratios                 # 10^8 elements, best of 3
//! SORT_N=10000000 SORT_REPEATS=5 cargo bench -p outcore-bench --bench sort_ratios
//! ```
//!
//! numpy (`$OUTCORE_PYTHON`, else `python3`) sorts the same data, read from a raw file in
//! `$SORT_DATA_DIR` (default `$DATA`, else `target/bench-data` in the repository, else the
//! temp dir); set `SORT_NUMPY=0` to skip it.
//!
//! outcore also runs on one thread (`ParOptions::threads(1)`), the row to compare with
//! numpy's single-threaded sort. `SORT_ISA=1` adds rows of outcore with its hot loops forced
//! to the portable (baseline) code, to measure what the CPU dispatch gains in the same run.

use std::hint::black_box;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use rayon::prelude::*;
use voracious_radix_sort::RadixSort;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// xorshift64*: reproducible, fast, good enough to make keys uniform.
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

/// Uniform in [-1, 1): the sign and the exponent vary, as in real data.
fn random_f64(n: usize, seed: u64) -> Vec<f64> {
    random_u64(n, seed)
        .into_iter()
        .map(|x| (x >> 11) as f64 / (1u64 << 52) as f64 - 1.0)
        .collect()
}

/// CPU time (user, system) of the whole process so far.
fn cpu_times() -> (Duration, Duration) {
    // SAFETY: getrusage only writes into the struct it is given.
    let ru = unsafe {
        let mut ru: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut ru);
        ru
    };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    (tv(ru.ru_utime), tv(ru.ru_stime))
}

/// Best wall time of `repeats` runs of `sort` on fresh copies of `input`, checked sorted.
fn time<T: Copy + Send + Sync>(
    input: &[T],
    repeats: usize,
    sorted: impl Fn(&[T]) -> bool,
    mut sort: impl FnMut(&mut Vec<T>),
) -> Duration {
    let mut best = Duration::MAX;
    for _ in 0..repeats {
        let mut v: Vec<T> = input.par_iter().copied().collect();
        let t = Instant::now();
        sort(&mut v);
        best = best.min(t.elapsed());
        assert!(sorted(&v), "output not sorted");
        black_box(&v);
    }
    best
}

fn numpy_time(input_bytes: &[u8], dtype: &str, repeats: usize) -> Option<Duration> {
    if std::env::var("SORT_NUMPY").as_deref() == Ok("0") {
        return None;
    }
    let dir = std::env::var("SORT_DATA_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            let d = outcore_bench::data_dir();
            if std::fs::create_dir_all(&d).is_ok() {
                d
            } else {
                std::env::temp_dir()
            }
        });
    let path = dir.join(format!("sort_ratios_{dtype}.raw"));
    std::fs::write(&path, input_bytes).ok()?;
    let python = std::env::var("OUTCORE_PYTHON").unwrap_or_else(|_| "python3".into());
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/sort_numpy.py");
    let out = Command::new(python)
        .args([script, path.to_str()?, dtype, &repeats.to_string()])
        // numpy's sort is single-threaded; pin the BLAS pools anyway so they stay idle.
        .env("OPENBLAS_NUM_THREADS", "1")
        .env("OMP_NUM_THREADS", "1")
        .output()
        .ok();
    let _ = std::fs::remove_file(&path);
    let out = out?;
    if !out.status.success() {
        eprintln!("numpy failed: {}", String::from_utf8_lossy(&out.stderr));
        return None;
    }
    let secs: f64 = String::from_utf8_lossy(&out.stdout).trim().parse().ok()?;
    Some(Duration::from_secs_f64(secs))
}

fn report(name: &str, n: usize, rows: &[(&str, Option<Duration>)]) {
    let ours = rows[0].1.expect("outcore timed");
    println!("\n{name}, n = {n}: time, M elements/s, time / outcore's");
    for (label, t) in rows {
        match t {
            Some(t) => println!(
                "  {label:<34} {:>8.3} s {:>8.1} M/s {:>7.2}x",
                t.as_secs_f64(),
                n as f64 / t.as_secs_f64() / 1e6,
                t.as_secs_f64() / ours.as_secs_f64()
            ),
            None if label.contains("baseline ISA") => {}
            None => println!("  {label:<34} (skipped)"),
        }
    }
}

fn main() {
    let n = env_usize("SORT_N", 100_000_000);
    let repeats = env_usize("SORT_REPEATS", 3);
    let threads = rayon::current_num_threads();
    let serial = env_usize("SORT_SERIAL", 1) != 0;
    println!("threads = {threads}, repeats = {repeats} (best time kept)");

    let u = random_u64(n, 42);
    let is_sorted_u = |v: &[u64]| v.windows(2).all(|w| w[0] <= w[1]);
    if std::env::var("SORT_CPU").is_ok() {
        // CPU seconds of each contender (less disturbed than wall time on a busy machine).
        let f = random_f64(n, 43);
        let cpu = |name: &str, run: &dyn Fn()| {
            let (u0, s0) = cpu_times();
            let t0 = Instant::now();
            for _ in 0..repeats {
                run();
            }
            let wall = t0.elapsed();
            let (u1, s1) = cpu_times();
            let per = |d: Duration| d.as_secs_f64() / repeats as f64;
            println!(
                "{name:<28} per sort, clone included: wall {:.3} s, user {:.3} s, system {:.3} s",
                per(wall),
                per(u1 - u0),
                per(s1 - s0)
            );
        };
        cpu("outcore u64", &|| outcore::sort::par_sort(&mut u.clone()));
        let scratch = std::sync::Mutex::new(outcore::sort::SortScratch::new());
        let opts = outcore::ParOptions::new();
        let mut warm = u.clone();
        outcore::sort::par_sort_with_scratch(&mut warm, &mut scratch.lock().unwrap(), &opts)
            .unwrap();
        drop(warm);
        cpu("outcore u64, reused scratch", &|| {
            let mut v = u.clone();
            let mut s = scratch.lock().unwrap();
            outcore::sort::par_sort_with_scratch(&mut v, &mut s, &opts).unwrap();
        });
        cpu("voracious u64", &|| u.clone().voracious_mt_sort(threads));
        cpu("outcore f64", &|| outcore::sort::par_sort(&mut f.clone()));
        cpu("voracious f64", &|| f.clone().voracious_mt_sort(threads));
        cpu("clone only", &|| drop(black_box(f.clone())));
        return;
    }
    let mut one = outcore::ParOptions::new();
    one.threads(1);
    let isa_rows = env_usize("SORT_ISA", 0) != 0;
    let baseline = |run: &mut dyn FnMut()| {
        outcore::cpu::force_isa(Some(outcore::cpu::Isa::Baseline));
        run();
        outcore::cpu::force_isa(None);
    };
    let mut u_base = None;
    let mut u_base1 = None;
    if isa_rows {
        baseline(&mut || {
            u_base = Some(time(&u, repeats, is_sorted_u, |v| {
                outcore::sort::par_sort(v)
            }));
            u_base1 = Some(time(&u, repeats, is_sorted_u, |v| {
                outcore::sort::par_sort_with(v, &one).unwrap()
            }));
        });
    }
    let rows = [
        (
            "outcore par_sort",
            Some(time(&u, repeats, is_sorted_u, |v| {
                outcore::sort::par_sort(v)
            })),
        ),
        (
            "outcore par_sort (1 thread)",
            Some(time(&u, repeats, is_sorted_u, |v| {
                outcore::sort::par_sort_with(v, &one).unwrap()
            })),
        ),
        ("outcore, baseline ISA", u_base),
        ("outcore, baseline ISA (1 thread)", u_base1),
        (
            "rayon par_sort_unstable",
            Some(time(&u, repeats, is_sorted_u, |v| v.par_sort_unstable())),
        ),
        (
            "voracious_mt_sort",
            Some(time(&u, repeats, is_sorted_u, |v| {
                v.voracious_mt_sort(threads)
            })),
        ),
        (
            "slice::sort_unstable (1 thread)",
            serial.then(|| time(&u, 1, is_sorted_u, |v| v.sort_unstable())),
        ),
        (
            "numpy np.sort (1 thread)",
            numpy_time(bytemuck::cast_slice(&u), "u8", repeats),
        ),
    ];
    report("u64 uniform", n, &rows);
    drop(u);

    let f = random_f64(n, 43);
    let is_sorted_f = |v: &[f64]| v.windows(2).all(|w| w[0] <= w[1]);
    let mut f_base = None;
    let mut f_base1 = None;
    if isa_rows {
        baseline(&mut || {
            f_base = Some(time(&f, repeats, is_sorted_f, |v| {
                outcore::sort::par_sort(v)
            }));
            f_base1 = Some(time(&f, repeats, is_sorted_f, |v| {
                outcore::sort::par_sort_with(v, &one).unwrap()
            }));
        });
    }
    let rows = [
        (
            "outcore par_sort",
            Some(time(&f, repeats, is_sorted_f, |v| {
                outcore::sort::par_sort(v)
            })),
        ),
        (
            "outcore par_sort (1 thread)",
            Some(time(&f, repeats, is_sorted_f, |v| {
                outcore::sort::par_sort_with(v, &one).unwrap()
            })),
        ),
        ("outcore, baseline ISA", f_base),
        ("outcore, baseline ISA (1 thread)", f_base1),
        (
            "rayon par_sort_unstable_by(total_cmp)",
            Some(time(&f, repeats, is_sorted_f, |v| {
                v.par_sort_unstable_by(f64::total_cmp)
            })),
        ),
        (
            "voracious_mt_sort",
            Some(time(&f, repeats, is_sorted_f, |v| {
                v.voracious_mt_sort(threads)
            })),
        ),
        (
            "slice::sort_unstable_by(total_cmp)",
            serial.then(|| time(&f, 1, is_sorted_f, |v| v.sort_unstable_by(f64::total_cmp))),
        ),
        (
            "numpy np.sort (1 thread)",
            numpy_time(bytemuck::cast_slice(&f), "f8", repeats),
        ),
    ];
    report("f64 uniform in [-1, 1)", n, &rows);
}
