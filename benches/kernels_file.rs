//! The file-scale kernel benchmark's Rust side, driven by `benches/kernels_vs_numpy.py`
//! (which adds numpy, `dd` and cold-cache eviction in the same run). Prints one line per
//! measurement: `name seconds bytes result`.
//!
//! ```text
//! cargo bench -p outcore-bench --bench kernels_file -- hot FILE.npy [OUT_DIR [VEC_MIB]]
//!     # OUT_DIR: default $DATA, else target/bench-data in the repository
//! cargo bench -p outcore-bench --bench kernels_file -- cold FILE.npy KERNEL VARIANT
//!     # KERNEL: sum | min_max | mean_var | map_in_place; VARIANT (sum): plain | sequential | willneed | release | windows | windows_release
//! cargo bench -p outcore-bench --bench kernels_file -- stream FILE.npy release|keep   # windows, for the memcap run
//! ```

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::Instant;

use outcore::kernels::{self, Numeric};
use outcore::stream::{self, Stream};
use outcore::{Advice, MappedArray, MappedArrayMut, ParOptions};
use rayon::prelude::*;

fn report(name: &str, secs: f64, bytes: usize, result: impl std::fmt::Debug) {
    println!("{name} {secs:.6} {bytes} {result:?}");
}

/// Best time of `runs` calls of `f`; the result of the last call.
fn best<R>(runs: usize, mut f: impl FnMut() -> R) -> (f64, R) {
    let mut best = f64::INFINITY;
    let mut out = None;
    for _ in 0..runs {
        let t = Instant::now();
        let r = black_box(f());
        best = best.min(t.elapsed().as_secs_f64());
        out = Some(r);
    }
    (best, out.expect("runs > 0"))
}

/// Both threads reading `v` with 16 independent integer lanes per 4 MiB piece: the read
/// bandwidth a streaming kernel can hope for. Pieces are handed out dynamically like the
/// kernels' chunks, so a thread that the shared machine deschedules does not stall the
/// other (two fixed halves measured up to a third lower under load).
fn read_bw(v: &[u64]) -> u64 {
    v.par_chunks(1 << 19)
        .map(lanes)
        .reduce(|| 0, u64::wrapping_add)
}

fn lanes(v: &[u64]) -> u64 {
    let mut acc = [0u64; 16];
    for c in v.chunks_exact(16) {
        for i in 0..16 {
            acc[i] = acc[i].wrapping_add(c[i]);
        }
    }
    acc.iter().fold(0, |a, &b| a.wrapping_add(b))
}

/// Both threads copying `src` to `dst` (memcpy) in 4 MiB pieces.
fn copy_bw(src: &[u64], dst: &mut [u64]) {
    dst.par_chunks_mut(1 << 19)
        .zip(src.par_chunks(1 << 19))
        .for_each(|(d, s)| d.copy_from_slice(s));
}

fn hot(path: &Path, out_dir: &Path, vec_mib: usize) -> outcore::Result<()> {
    let a = MappedArray::<f64>::open(path)?;
    let n = a.len();
    let bytes = n * 8;
    // Warm the page cache and the page tables of this mapping.
    black_box(kernels::sum(&a));

    // (a) the machine: read and copy bandwidth over plain buffers, 2 threads.
    let vlen = vec_mib << 17;
    let src: Vec<u64> = (0..vlen as u64).collect();
    let mut dst = vec![1u64; vlen];
    let (t, r) = best(5, || read_bw(&src));
    report("bw_read_2t", t, vlen * 8, r);
    let (t, _) = best(5, || copy_bw(&src, &mut dst));
    report("bw_copy_2t", t, vlen * 8, ());
    drop((src, dst));

    // (c) single-threaded plain loops over a Vec holding the file's first VEC_MIB.
    let mut v: Vec<f64> = a[..vlen.min(n)].to_vec();
    let vb = v.len() * 8;
    let (t, r) = best(3, || {
        let mut s = 0.0;
        for &x in &v {
            s += x;
        }
        s
    });
    report("plain_sum", t, vb, r);
    let (t, r) = best(3, || {
        v.iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &x| {
                (lo.min(x), hi.max(x))
            })
    });
    report("plain_min_max", t, vb, r);
    let (t, r) = best(3, || {
        let m = v.iter().sum::<f64>() / v.len() as f64;
        (
            m,
            v.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / v.len() as f64,
        )
    });
    report("plain_mean_var", t, vb, r);
    let (t, r) = best(3, || {
        let mut bi = 0;
        for (i, &x) in v.iter().enumerate() {
            if x < v[bi] {
                bi = i;
            }
        }
        bi
    });
    report("plain_argmin", t, vb, r);
    let (t, r) = best(3, || v.iter().filter(|&&x| x > 0.0).count());
    report("plain_count", t, vb, r);
    let (t, _) = best(4, || {
        for x in v.iter_mut() {
            *x = -*x;
        }
    });
    report("plain_map_in_place", t, vb, ());
    // The same kernels on the Vec, in parallel: the mapping's cost shows as the difference.
    let (t, r) = best(3, || kernels::sum(&v));
    report("vec_sum", t, vb, r);
    let (t, _) = best(4, || kernels::map_in_place(&mut v, |x| -x));
    report("vec_map_in_place", t, vb, ());
    drop(v);

    // The kernels on the mapped file, hot.
    let (t, r) = best(3, || kernels::sum(&a));
    report("sum", t, bytes, r);
    let (t, r) = best(3, || kernels::min_max(&a));
    report("min_max", t, bytes, r);
    let (t, r) = best(3, || {
        let m = kernels::moments(&a);
        (m.mean(), m.variance(0))
    });
    report("mean_var", t, bytes, r);
    let (t, r) = best(3, || kernels::argmin(&a));
    report("argmin", t, bytes, r);
    let (t, r) = best(3, || kernels::count(&a, |&x| x > 0.0));
    report("count", t, bytes, r);
    let (t, r) = best(3, || {
        kernels::histogram(&a, 100, Some((-5.0, 5.0))).map(|h| h[50])
    });
    report("histogram", t, bytes, r);
    let (t, r) = best(3, || kernels::axis_stats(&a, 16, 0).map(|s| s.mean()[0]));
    report("axis0_stats_16col", t, bytes, r);
    {
        let mut out = MappedArrayMut::<f64>::anonymous(n)?;
        let (t, _) = best(3, || kernels::cumsum_into(&a, &mut out));
        report("cumsum_into", t, bytes, out[n - 1]);
        let (t, r) = best(3, || kernels::filter_into(&a, &mut out, |&x| x > 0.0));
        report("filter_into", t, bytes, r);
    }
    drop(a);
    {
        let mut w = MappedArrayMut::<f64>::open(path)?;
        // An even number of runs of an exact involution leaves the file as it was.
        let (t, _) = best(4, || kernels::map_in_place(&mut w, |x| -x));
        report("map_in_place", t, bytes, ());
    }
    // Write the in-place runs back first, so that their write-back does not slow the next
    // writer; then alternate the two ways of writing a new file, twice each.
    std::fs::File::open(path).and_then(|f| f.sync_all()).ok();
    let a = MappedArray::<f64>::open(path)?;
    let out = out_dir.join("kernels_bench_mapped.npy");
    let (mut t_buf, mut t_map) = (f64::INFINITY, f64::INFINITY);
    for _ in 0..2 {
        let (t, _) = best(1, || {
            kernels::map_to_file(&a, a.shape(), &out, |x| x * 2.0).map(drop)
        });
        t_buf = t_buf.min(t);
        std::fs::remove_file(&out).ok();
        let (t, _) = best(1, || map_to_file_mapped(&a, &out));
        t_map = t_map.min(t);
        std::fs::remove_file(&out).ok();
    }
    report("map_to_file", t_buf, bytes, ());
    report("map_to_file_mapped", t_map, bytes, ());

    // Chunk size sweep on the hot file.
    for kib in [64usize, 256, 1024, 4096, 16384, 65536] {
        let mut o = ParOptions::new();
        o.chunk_bytes(kib << 10);
        let (t, _) = best(3, || kernels::sum_with(&a, &o));
        report(&format!("chunk_{kib}k_sum"), t, bytes, ());
        let (t, _) = best(3, || kernels::moments_with(&a, &o));
        report(&format!("chunk_{kib}k_mean_var"), t, bytes, ());
    }
    drop(a);
    let mut w = MappedArrayMut::<f64>::open(path)?;
    for kib in [64usize, 256, 1024, 4096, 16384, 65536] {
        let mut o = ParOptions::new();
        o.chunk_bytes(kib << 10);
        let (t, _) = best(2, || kernels::map_in_place_with(&mut w, &o, |x| -x));
        report(&format!("chunk_{kib}k_map_in_place"), t, bytes, ());
    }
    Ok(())
}

/// The alternative to `kernels::map_to_file`'s buffered writes: writing through a new
/// mapping (`MappedArrayMut::create`, map in parallel, `persist`). Kept here to compare.
fn map_to_file_mapped(a: &MappedArray<f64>, out: &Path) -> outcore::Result<()> {
    let mut o = MappedArrayMut::<f64>::create(out, a.shape())?;
    kernels::map_into(a, &mut o, |x| x * 2.0)?;
    o.persist().map(drop)
}

fn cold(path: &Path, kernel: &str, variant: &str) -> outcore::Result<()> {
    let t = Instant::now();
    if kernel == "map_in_place" {
        let mut w = MappedArrayMut::<f64>::open(path)?;
        kernels::map_in_place(&mut w, |x| -x);
        report(
            "cold_map_in_place",
            t.elapsed().as_secs_f64(),
            w.len() * 8,
            (),
        );
        return Ok(());
    }
    let a = MappedArray::<f64>::open(path)?;
    let r: f64 = match (kernel, variant) {
        ("sum", "plain") => kernels::sum(&a),
        ("sum", "sequential") => {
            a.advise(Advice::Sequential)?;
            kernels::sum(&a)
        }
        ("sum", "willneed" | "release") => {
            let mut s = Stream::new();
            s.will_need(variant == "willneed")
                .release_behind(variant == "release");
            stream::fold_chunks(&a, &ParOptions::new(), &s, f64::sum_serial, |x, y| x + y)?
                .unwrap_or(0.0)
        }
        ("sum", "windows" | "windows_release") => {
            let mut s = Stream::new();
            s.release_behind(variant == "windows_release");
            stream::windows(&a, &s, |_, w| Ok(kernels::sum(w)))?
                .into_iter()
                .sum()
        }
        ("min_max", _) => kernels::min_max(&a).map_or(f64::NAN, |m| m.1 - m.0),
        ("mean_var", _) => kernels::moments(&a).variance(0),
        _ => panic!("unknown kernel/variant {kernel} {variant}"),
    };
    let name = format!("cold_{kernel}_{variant}");
    report(&name, t.elapsed().as_secs_f64(), a.len() * 8, r);
    Ok(())
}

/// Streaming statistics with release behind: what a memory-capped run does. Results are
/// printed exactly (bit patterns) so that a capped and an uncapped run can be compared.
fn streamed(path: &Path, release: bool) -> outcore::Result<()> {
    let t = Instant::now();
    let a = MappedArray::<f64>::open(path)?;
    let mut s = Stream::new();
    s.release_behind(release);
    let (sum, mm, m) = stream::fold_chunks(
        &a,
        &ParOptions::new(),
        &s,
        |c| (kernels::sum(c), kernels::min_max(c), kernels::moments(c)),
        |x, y| {
            let mm = match (x.1, y.1) {
                (Some(p), Some(q)) => Some((p.0.min(q.0), p.1.max(q.1))),
                (p, q) => p.or(q),
            };
            (x.0 + y.0, mm, x.2.merge(y.2))
        },
    )?
    .expect("a non-empty file");
    let (lo, hi) = mm.expect("a non-empty file");
    let bits = [sum, lo, hi, m.mean(), m.variance(0)].map(f64::to_bits);
    report("stream_stats", t.elapsed().as_secs_f64(), a.len() * 8, bits);
    println!(
        "values sum={sum} min={lo} max={hi} mean={} var={}",
        m.mean(),
        m.variance(0)
    );
    Ok(())
}

fn main() -> outcore::Result<()> {
    // `cargo bench` passes `--bench`; skip flags.
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let arg = |i: usize| args.get(i).map(String::as_str);
    match (arg(0), arg(1)) {
        (Some("hot"), Some(f)) => hot(
            Path::new(f),
            &arg(2).map_or_else(outcore_bench::data_dir, PathBuf::from),
            arg(3).map_or(1024, |s| s.parse().expect("VEC_MIB")),
        ),
        (Some("cold"), Some(f)) => cold(
            Path::new(f),
            arg(2).unwrap_or("sum"),
            arg(3).unwrap_or("plain"),
        ),
        (Some("stream"), Some(f)) => streamed(Path::new(f), arg(2) != Some("keep")),
        _ => {
            eprintln!("usage: kernels_file (hot FILE [OUT_DIR VEC_MIB] | cold FILE KERNEL VARIANT | stream FILE release|keep)");
            Ok(())
        }
    }
}
