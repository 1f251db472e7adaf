//! `external_sort`: the library's external sort in a few lines: sort a `.npy` file of any
//! size and dtype under a memory budget, then check that the output is sorted.
//!
//! ```text
//! cargo run --release --example external_sort -- INPUT.npy OUTPUT.npy [BUDGET_MIB]
//! ```
//!
//! The `outcore` command-line tool does the same with progress bars, raw files, records and
//! a full verification (`outcore sort IN OUT --memory 256MiB --verify`); this example shows
//! the calls it is built on: [`sort::sort_file`] with [`sort::SortOptions`], then
//! [`open_any`] and [`with_any!`] to check the result whatever its dtype.

use std::time::Instant;

use outcore::sort::{self, SortKey, SortOptions};
use outcore::{open_any, with_any, MappedArray};

/// Whether `a` is in sorted order (numpy's order: NaN last), read chunk by chunk in parallel.
fn is_sorted<T: SortKey>(a: &MappedArray<T>) -> bool {
    use rayon::prelude::*;
    let data = a.as_slice();
    // Overlapping windows, so that the pairs across chunk boundaries are checked too.
    let step = 1 << 20;
    (0..data.len().div_ceil(step)).into_par_iter().all(|i| {
        let part = &data[i * step..((i + 1) * step + 1).min(data.len())];
        part.windows(2).all(|w| w[0].sort_key() <= w[1].sort_key())
    })
}

fn main() -> outcore::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 2 || args.len() > 3 {
        eprintln!(
            "usage: external_sort INPUT.npy OUTPUT.npy [BUDGET_MIB]   (default budget 256 MiB)"
        );
        std::process::exit(2);
    }
    let budget_mib: usize = match args.get(2).map(|s| s.parse()) {
        None => 256,
        Some(Ok(m)) => m,
        Some(Err(_)) => {
            eprintln!("BUDGET_MIB must be a whole number of MiB");
            std::process::exit(2);
        }
    };

    let mut opts = SortOptions::new();
    opts.memory(budget_mib << 20);
    let t = Instant::now();
    let report = sort::sort_file(&args[0], &args[1], &opts)?;
    println!(
        "sorted {} elements ({} bytes) in {:.2} s: {}",
        report.elements,
        report.bytes,
        t.elapsed().as_secs_f64(),
        if report.external {
            format!(
                "external, {} runs, {} extra merge level(s)",
                report.runs, report.merge_levels
            )
        } else {
            "in memory".into()
        }
    );
    for (phase, d) in &report.phases {
        println!("  {phase:<16} {:>8.2} s", d.as_secs_f64());
    }

    let out = open_any(&args[1])?;
    let sorted = with_any!(&out, a => is_sorted(a));
    println!(
        "output {} sorted ({})",
        if sorted { "is" } else { "is NOT" },
        out.dtype()
    );
    if !sorted {
        std::process::exit(1);
    }
    Ok(())
}
