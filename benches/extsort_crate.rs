//! The `extsort` crate on the same data as `sort_file`, for benches/external_sort.sh.
//!
//! `cargo bench -p outcore-bench --bench extsort_crate -- INPUT.npy OUTPUT.raw TMPDIR MEMORY_BYTES`
//!
//! Reads the u64 `.npy` INPUT, sorts it with `extsort` (segments of MEMORY_BYTES / 8 items,
//! rayon sort of each segment, its own merge), writes the sorted numbers as a raw file and
//! syncs it. Prints the time and checks the count and the order.

use std::io::{BufWriter, Read, Write};
use std::time::Instant;

use extsort::{ExternalSorter, Sortable};
use outcore::MappedArray;

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct U(u64);

impl Sortable for U {
    fn encode<W: Write>(&self, w: &mut W) -> std::io::Result<()> {
        w.write_all(&self.0.to_le_bytes())
    }
    fn decode<R: Read>(r: &mut R) -> std::io::Result<U> {
        let mut b = [0u8; 8];
        r.read_exact(&mut b)?;
        Ok(U(u64::from_le_bytes(b)))
    }
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let [input, output, tmp, memory] = args.as_slice() else {
        eprintln!("usage: extsort_crate INPUT.npy OUTPUT.raw TMPDIR MEMORY_BYTES");
        std::process::exit(2);
    };
    let memory: usize = memory.parse().expect("MEMORY_BYTES");
    let t = Instant::now();
    let a = MappedArray::<u64>::open(input).expect("open input");
    let n = a.len();
    // A segment holds the items in a Vec<U> that is sorted in place.
    let mut segment = memory / 8;
    // extsort 0.5 returns an empty result, without an error, when the item count is an exact
    // multiple of segment_size + 1.
    if n.is_multiple_of(segment + 1) {
        segment -= 1;
    }
    // extsort leaves its segment files behind in an explicit sort dir: give it its own.
    let dir = tempfile::tempdir_in(tmp).expect("temp dir");
    let sorter = ExternalSorter::new()
        .with_segment_size(segment)
        .with_sort_dir(dir.path().to_path_buf())
        .with_parallel_sort();
    let sorted = sorter.sort(a.iter().map(|&x| U(x))).expect("extsort");
    let f = std::fs::File::create(output).expect("create output");
    let mut w = BufWriter::with_capacity(1 << 20, f);
    let (mut count, mut prev, mut ordered) = (0usize, 0u64, true);
    for x in sorted {
        let x = x.expect("read segment").0;
        ordered &= x >= prev;
        prev = x;
        count += 1;
        w.write_all(&x.to_le_bytes()).expect("write");
    }
    let f = w.into_inner().expect("flush");
    f.sync_all().expect("fsync");
    let secs = t.elapsed().as_secs_f64();
    drop(dir);
    println!(
        "extsort: {n} u64 in {secs:.2} s ({:.0} MB/s), segment {segment} items; count ok: {}, sorted: {}",
        (n * 8) as f64 / 1e6 / secs,
        count == n,
        ordered
    );
    if count != n || !ordered {
        std::process::exit(1);
    }
}
