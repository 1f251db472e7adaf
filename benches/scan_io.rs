//! mmap against `read()`: the same scan (a sum of `f64`) over the same file, through
//! outcore's mapping and through `read()` into a reused buffer (1 MiB and 8 MiB) or
//! `O_DIRECT`, hot (in the page cache) and cold (evicted first), on 1 and 2 threads.
//!
//! ```text
//! outcore gen --dtype f64 --dist uniform --size 4GiB --out FILE.npy
//! cargo bench -p outcore-bench --bench scan_io -- FILE.npy [ROUNDS]
//! ```
//!
//! FILE is a 1-D `.npy` of `f64`. Each configuration runs ROUNDS times (default 3) in turn,
//! interleaved so that the machine's drift hits all of them alike; each table gives the
//! median GB/s, the range, and the ratio to the mapping's median in the same mode. Three
//! modes, in this order:
//!
//! * **hot, as found**: the page cache as the file's history left it (any page missing is
//!   read in first, by the reference scan through a mapping or by `read()`). Run right after
//!   `outcore gen`, this is a file just written through a mapping: on Linux 6.18 here, a
//!   third of it was cached in 2 MiB folios and the rest in folios of 4 KiB to 1 MiB.
//! * **hot, read in**: the file is evicted once, then read back with `read()`. The kernel's
//!   readahead then cached 99% of it in 2 MiB folios, which a mapping maps whole, one fault
//!   per 2 MiB.
//! * **cold**: the file is evicted before every scan.
//!
//! Eviction is `posix_fadvise(DONTNEED)`, which needs no root.
//!
//! The point measured: with `read()` the data is copied from the page cache into the
//! buffer, then summed; through a mapping it is summed where the page cache holds it, but
//! every page costs the mapping a fault (or a share of one).

use std::fs::File;
use std::io::Read;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::os::unix::io::AsRawFd;
use std::path::Path;
use std::time::Instant;

use outcore::kernels::{self, Numeric};
use outcore::{MappedArray, ParOptions};

/// Sums `bytes` as little-endian `f64`s (a whole number of them) with the serial loop the
/// library's parallel sum runs on each chunk, so that every path runs the same arithmetic.
fn sum_bytes(bytes: &[u8]) -> f64 {
    f64::sum_serial(bytemuck::cast_slice(bytes))
}

fn evict(path: &Path) {
    let f = File::open(path).expect("open");
    // Dirty pages would survive the eviction.
    f.sync_data().expect("sync");
    // SAFETY: posix_fadvise only reads its integer arguments; the descriptor is open.
    unsafe { libc::posix_fadvise(f.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
}

fn warm(path: &Path) {
    let mut f = File::open(path).expect("open");
    let mut buf = vec![0u8; 8 << 20];
    while f.read(&mut buf).expect("read") > 0 {}
}

/// The mapping: outcore's parallel sum over page-aligned chunks.
fn mmap_scan(path: &Path, threads: usize) -> f64 {
    let a = MappedArray::<f64>::open(path).expect("open");
    let mut o = ParOptions::new();
    o.threads(threads);
    kernels::sum_with(&a, &o).expect("pool")
}

/// `pread` into a reused buffer of `buf` bytes; `threads` threads each read one contiguous
/// share of the data. `direct` opens with `O_DIRECT` (the buffer is then page-aligned).
fn read_scan(path: &Path, offset: u64, len: u64, buf: usize, threads: usize, direct: bool) -> f64 {
    let share = (len / threads as u64 / 4096) * 4096;
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                s.spawn(move || {
                    let mut opts = std::fs::OpenOptions::new();
                    opts.read(true);
                    if direct {
                        opts.custom_flags(libc::O_DIRECT);
                    }
                    let f = opts.open(path).expect("open");
                    // Page-aligned buffer: O_DIRECT needs it, and it costs the others nothing.
                    let mut raw = vec![0u64; buf / 8 + 512];
                    let bytes: &mut [u8] = bytemuck::cast_slice_mut(&mut raw);
                    let skew = bytes.as_ptr().align_offset(4096);
                    let b = &mut bytes[skew..skew + buf];
                    let start = t as u64 * share;
                    let end = if t + 1 == threads { len } else { start + share };
                    // The file bytes of this share; O_DIRECT reads whole aligned blocks around
                    // them (the header is 64-byte aligned, so every block still holds whole
                    // f64s at offsets that are multiples of 8).
                    let (data_lo, data_hi) = (offset + start, offset + end);
                    let mut pos = if direct { data_lo & !4095 } else { data_lo };
                    let mut total = 0.0;
                    while pos < data_hi {
                        let mut want = (buf as u64).min(data_hi - pos);
                        if direct {
                            want = (want.div_ceil(4096) * 4096).min(buf as u64);
                        }
                        let n = f.read_at(&mut b[..want as usize], pos).expect("read") as u64;
                        if n == 0 {
                            break;
                        }
                        let lo = data_lo.saturating_sub(pos).min(n) as usize;
                        let hi = (data_hi - pos).min(n) as usize;
                        assert!(
                            (hi - lo).is_multiple_of(8),
                            "a read ended inside an element"
                        );
                        total += sum_bytes(&b[lo..hi]);
                        pos += n;
                    }
                    total
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("join")).sum()
    })
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let Some(file) = args.first() else {
        eprintln!("usage: cargo bench -p outcore-bench --bench scan_io -- FILE.npy [ROUNDS]");
        std::process::exit(2);
    };
    let rounds: usize = args.get(1).and_then(|r| r.parse().ok()).unwrap_or(3);
    let path = Path::new(file);
    let header = outcore::npy::Header::read(path).expect("a .npy file");
    assert_eq!(header.dtype, outcore::DType::F64, "the file must hold f64");
    let offset = header.data_offset as u64;
    let len = header.data_len().expect("length") as u64;
    let gb = len as f64 / 1e9;

    type Scan<'a> = (&'a str, Box<dyn Fn() -> f64 + 'a>);
    let mut scans: Vec<Scan<'_>> = Vec::new();
    for threads in [1, 2] {
        scans.push((
            if threads == 1 {
                "mmap, 1 thread"
            } else {
                "mmap, 2 threads"
            },
            Box::new(move || mmap_scan(path, threads)),
        ));
        for (name, buf, direct) in [
            ("read 1 MiB", 1 << 20, false),
            ("read 8 MiB", 8 << 20, false),
            ("O_DIRECT 8 MiB", 8 << 20, true),
        ] {
            let label: &'static str = Box::leak(
                format!(
                    "{name}, {threads} thread{}",
                    if threads == 1 { "" } else { "s" }
                )
                .into_boxed_str(),
            );
            scans.push((
                label,
                Box::new(move || read_scan(path, offset, len, buf, threads, direct)),
            ));
        }
    }
    println!(
        "# scan_io: {} ({:.2} GB of f64), {rounds} rounds",
        path.display(),
        gb
    );
    let reference = mmap_scan(path, 2);
    for mode in ["hot, as found", "hot, read in", "cold"] {
        if mode == "hot, read in" {
            evict(path);
        }
        let mut times: Vec<Vec<f64>> = vec![Vec::new(); scans.len()];
        for _ in 0..rounds {
            for (i, (name, scan)) in scans.iter().enumerate() {
                // O_DIRECT bypasses the page cache: it is never warmed.
                if mode == "cold" {
                    evict(path);
                } else if !name.starts_with("O_DIRECT") {
                    warm(path);
                }
                let t = Instant::now();
                let s = scan();
                times[i].push(t.elapsed().as_secs_f64());
                let tol = 1e-9 * reference.abs().max(1.0);
                assert!(
                    (s - reference).abs() <= tol,
                    "{name}: sum {s} vs {reference}"
                );
            }
        }
        println!("\n## {mode}\n");
        println!("| scan | GB/s median | range | ratio to mmap (same threads) |");
        println!("|---|---|---|---|");
        let rates: Vec<Vec<f64>> = times
            .iter()
            .map(|t| t.iter().map(|s| gb / s).collect())
            .collect();
        let mut medians: Vec<f64> = rates.iter().map(|r| median(&mut r.clone())).collect();
        for (i, (name, _)) in scans.iter().enumerate() {
            let base = if i < 4 { medians[0] } else { medians[4] };
            let lo = rates[i].iter().copied().fold(f64::INFINITY, f64::min);
            let hi = rates[i].iter().copied().fold(0.0, f64::max);
            println!(
                "| {name} | {:.2} | {lo:.2}–{hi:.2} | {:.2} |",
                medians[i],
                medians[i] / base
            );
        }
        medians.clear();
    }
}
