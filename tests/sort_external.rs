//! `sort_file` / `sort_raw_file`: the external merge sort against `slice::sort`.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use bytemuck::Pod;
use outcore::sort::{
    remove_stale_sort_files, sort_file, sort_file_with, sort_raw_file, sort_raw_file_with, Phase,
    Record, SortKey, SortOptions, Sorter,
};
use outcore::{DType, Element, Error};

use crate::common::{self, leftovers, splitmix};

/// A `.npy` file of `data` with a v1 header, as numpy writes it (header padded to 64 bytes).
fn write_npy<T: Element>(path: &Path, shape: &[usize], data: &[T]) {
    let shape_s = match shape {
        [n] => format!("({n},)"),
        s => format!(
            "({})",
            s.iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let dict = format!(
        "{{'descr': '{}', 'fortran_order': False, 'shape': {shape_s}, }}",
        T::DTYPE.descr()
    );
    let pad = (64 - (10 + dict.len() + 1) % 64) % 64;
    let text = format!("{dict}{}\n", " ".repeat(pad));
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    bytes.extend_from_slice(&(text.len() as u16).to_le_bytes());
    bytes.extend_from_slice(text.as_bytes());
    bytes.extend_from_slice(bytemuck::cast_slice(data));
    std::fs::write(path, bytes).unwrap();
}

fn from_bytes<T: Pod>(b: &[u8]) -> Vec<T> {
    let mut v = vec![T::zeroed(); b.len() / std::mem::size_of::<T>()];
    bytemuck::cast_slice_mut::<T, u8>(&mut v).copy_from_slice(b);
    v
}

/// The data of a `.npy` written by `write_npy` or `sort_file` (header length from the file).
fn read_npy<T: Pod>(path: &Path) -> Vec<T> {
    let bytes = std::fs::read(path).unwrap();
    let hlen = u16::from_le_bytes([bytes[8], bytes[9]]) as usize + 10;
    from_bytes(&bytes[hlen..])
}

fn patterns(n: usize, seed: u64) -> Vec<(&'static str, Vec<u64>)> {
    let mut s = seed;
    let random: Vec<u64> = (0..n).map(|_| splitmix(&mut s)).collect();
    let sorted: Vec<u64> = (0..n as u64).collect();
    let reverse: Vec<u64> = (0..n as u64).rev().collect();
    let equal = vec![7u64; n];
    let few: Vec<u64> = random.iter().map(|x| x % 3).collect();
    vec![
        ("random", random),
        ("sorted", sorted),
        ("reverse", reverse),
        ("all-equal", equal),
        ("few-unique", few),
    ]
}

fn opts(memory: usize, threads: usize) -> SortOptions {
    let mut o = SortOptions::new();
    o.memory(memory).threads(threads);
    o
}

/// Sorts `data` as a `.npy` through `sort_file` and checks the result against `slice::sort`
/// (by key), that the output is a permutation (bit patterns), and that no temp file remains.
fn check_npy<T: Element + SortKey>(
    data: &[T],
    o: &SortOptions,
    what: &str,
) -> outcore::sort::SortReport {
    let dir = common::tmpdir();
    let (inp, out) = (dir.path().join("in.npy"), dir.path().join("out.npy"));
    write_npy(&inp, &[data.len()], data);
    let report = sort_file(&inp, &out, o).unwrap_or_else(|e| panic!("{what}: {e}"));
    let got: Vec<T> = read_npy(&out);
    let mut expect = data.to_vec();
    expect.sort_by_key(|x| x.sort_key());
    let keys = |v: &[T]| v.iter().map(|x| x.sort_key()).collect::<Vec<_>>();
    assert_eq!(keys(&got), keys(&expect), "{what}: keys in order");
    let mut gb: Vec<&[u8]> = got.iter().map(bytemuck::bytes_of).collect();
    let mut eb: Vec<&[u8]> = expect.iter().map(bytemuck::bytes_of).collect();
    gb.sort();
    eb.sort();
    assert_eq!(gb, eb, "{what}: a permutation of the input");
    assert_eq!(
        leftovers(dir.path(), &["in.npy", "out.npy"]),
        Vec::<String>::new(),
        "{what}"
    );
    assert_eq!(report.elements, data.len() as u64);
    report
}

#[test]
fn u64_patterns_in_memory_and_external() {
    // 1 KiB budget: in memory while data + the radix sort's scratch fit (n <= 64 u64);
    // beyond, runs of 32 elements; the merge reads 1-element buffers at worst.
    let fits = 1024 / (8 + outcore::sort::scratch_bytes::<u64>(1));
    for n in [
        0usize, 1, 2, 31, 32, 33, 63, 64, 65, 96, 97, 128, 129, 1000, 5000,
    ] {
        for (name, data) in patterns(n, n as u64) {
            for threads in [1, 2] {
                let what = format!("{name} n={n} threads={threads}");
                let r = check_npy(&data, &opts(1 << 20, threads), &format!("{what} in memory"));
                assert!(!r.external);
                let r = check_npy(&data, &opts(1024, threads), &format!("{what} external"));
                assert_eq!(r.external, n > fits, "{what}");
            }
        }
    }
}

#[test]
fn many_runs_and_multi_level_merges() {
    let mut s = 5;
    let data: Vec<u64> = (0..20_000).map(|_| splitmix(&mut s)).collect();
    // Run formation holds three pieces (read, sorted, written) and the sort's scratch for one.
    let run = 1024 / (3 * 8 + outcore::sort::scratch_bytes::<u64>(1));
    let runs = data.len().div_ceil(run);
    // Each level merges groups of at most k runs.
    let levels = |k: usize| {
        let (mut r, mut l) = (runs, 0);
        while r > k {
            r = r.div_ceil(k);
            l += 1;
        }
        l
    };
    // By budget alone: 1 KiB gives hundreds of runs, more than one merge takes.
    let r = check_npy(&data, &opts(1024, 2), "budget-limited fan-in");
    assert_eq!(r.runs, runs);
    assert!(r.merge_levels >= 1, "{r:?}");
    // An explicit fan-in cap: 2 means a binary merge tree.
    for (k, levels) in [(2usize, levels(2)), (3, levels(3)), (6, levels(6))] {
        let mut o = opts(1024, 2);
        o.max_fan_in(k);
        let r = check_npy(&data, &o, &format!("fan-in {k}"));
        assert_eq!(r.merge_levels, levels, "fan-in {k}: {r:?}");
    }
    // Few-unique keys through several levels.
    let few: Vec<u64> = data.iter().map(|x| x % 4).collect();
    let mut o = opts(2048, 1);
    o.max_fan_in(3);
    let r = check_npy(&few, &o, "few-unique multi-level");
    assert!(r.merge_levels >= 2);
}

#[test]
fn around_run_and_buffer_boundaries() {
    // 4 KiB budget: runs of 128 u64 (three pieces and the sort's scratch); final-merge
    // buffers of 4096 / 4 workers / (2k+1) bytes.
    let run = 4096 / (3 * 8 + outcore::sort::scratch_bytes::<u64>(1));
    let mut s = 9;
    let mut sizes: Vec<usize> = (1..=3)
        .flat_map(|m| [m * run - 1, m * run, m * run + 1])
        .collect();
    sizes.extend([4096, 4097]);
    for n in sizes {
        let data: Vec<u64> = (0..n).map(|_| splitmix(&mut s) >> 40).collect();
        check_npy(&data, &opts(4096, 2), &format!("n={n}"));
    }
}

#[test]
fn floats_in_numpy_order() {
    let mut s = 11;
    let specials = [
        f64::NAN,
        -f64::NAN,
        f64::INFINITY,
        f64::NEG_INFINITY,
        0.0,
        -0.0,
        f64::MIN_POSITIVE,
        -f64::MIN_POSITIVE,
        f64::MAX,
        f64::MIN,
        1e-310,
    ];
    let data: Vec<f64> = (0..3000)
        .map(|i| {
            if i % 7 == 0 {
                specials[i % specials.len()]
            } else {
                (splitmix(&mut s) as i64 as f64) / 1e10
            }
        })
        .collect();
    for budget in [1 << 20, 1024] {
        check_npy(&data, &opts(budget, 2), &format!("f64 budget {budget}"));
        let f32s: Vec<f32> = data.iter().map(|&x| x as f32).collect();
        check_npy(&f32s, &opts(budget, 2), &format!("f32 budget {budget}"));
    }
    // -0.0 before 0.0, NaN last.
    let dir = common::tmpdir();
    let (inp, out) = (dir.path().join("a.npy"), dir.path().join("b.npy"));
    write_npy(&inp, &[5], &[f64::NAN, 0.0, -0.0, f64::INFINITY, -1.0]);
    sort_file(&inp, &out, &opts(16 << 10, 1)).unwrap();
    let got: Vec<String> = read_npy::<f64>(&out)
        .iter()
        .map(|x| format!("{x:?}"))
        .collect();
    assert_eq!(got, ["-1.0", "-0.0", "0.0", "inf", "NaN"]);
}

#[test]
fn every_integer_dtype() {
    fn go<T: Element + SortKey>(f: impl Fn(u64) -> T) {
        let mut s = 3;
        let data: Vec<T> = (0..2000).map(|_| f(splitmix(&mut s))).collect();
        check_npy(&data, &opts(1024, 2), std::any::type_name::<T>());
    }
    go(|x| x as u8);
    go(|x| x as u16);
    go(|x| x as u32);
    go(|x| x as i8);
    go(|x| x as i16);
    go(|x| x as i32);
    go(|x| x as i64);
}

#[test]
fn numpy_reads_what_sort_file_writes() {
    crate::require_numpy!();
    let dir = common::tmpdir();
    let (inp, out) = (dir.path().join("in.npy"), dir.path().join("out.npy"));
    let (inp_s, out_s) = (inp.to_str().unwrap(), out.to_str().unwrap());
    common::python(
        "rng = np.random.default_rng(1)\n\
         a = rng.standard_normal(30000)\n\
         a[::97] = np.nan; a[::101] = np.inf; a[::103] = -np.inf; a[::107] = -0.0\n\
         np.save(sys.argv[1], a)",
        &[inp_s],
    );
    sort_file(&inp, &out, &opts(16 << 10, 2)).unwrap();
    let verdict = common::python(
        "a = np.load(sys.argv[1]); b = np.load(sys.argv[2])\n\
         print(b.dtype == a.dtype and b.shape == a.shape and np.array_equal(np.sort(a), b, equal_nan=True))",
        &[inp_s, out_s],
    );
    assert_eq!(verdict.trim(), "True");
}

#[test]
fn records_with_equal_keys() {
    type R = Record<100, 10>;
    let mut s = 17;
    let recs: Vec<R> = (0..3000u32)
        .map(|i| {
            let mut r = [0u8; 100];
            // Few distinct keys, so most records tie on their key.
            let k = splitmix(&mut s) % 13;
            r[..8].copy_from_slice(&k.to_be_bytes());
            r[9] = (k as u8) ^ 0x80;
            r[10..14].copy_from_slice(&i.to_le_bytes());
            r[99] = 0xAB;
            Record(r)
        })
        .collect();
    for (budget, threads) in [(1 << 20, 2), (4096, 1), (4096, 2), (1000, 2)] {
        let dir = common::tmpdir();
        let (inp, out) = (dir.path().join("in.dat"), dir.path().join("out.dat"));
        std::fs::write(&inp, bytemuck::cast_slice(&recs)).unwrap();
        let report = sort_raw_file::<R>(&inp, &out, &opts(budget, threads)).unwrap();
        assert_eq!(report.external, budget < 300_000);
        let got: Vec<R> = from_bytes(&std::fs::read(&out).unwrap());
        let mut expect = recs.clone();
        expect.sort_by_key(|r| r.sort_key());
        let keys = |v: &[R]| v.iter().map(|r| r.sort_key()).collect::<Vec<_>>();
        assert_eq!(keys(&got), keys(&expect));
        let mut g = got.iter().map(|r| r.0.to_vec()).collect::<Vec<_>>();
        let mut e = recs.iter().map(|r| r.0.to_vec()).collect::<Vec<_>>();
        g.sort();
        e.sort();
        assert_eq!(g, e, "records kept whole");
        assert_eq!(
            leftovers(dir.path(), &["in.dat", "out.dat"]),
            Vec::<String>::new()
        );
    }
}

/// 64-byte records have alignment 1, so a merge buffer need not have a record at a 4 KiB
/// aligned address: such blocks are read through the page cache. This once panicked in the
/// final merge's direct reads.
#[test]
fn records_of_64_bytes_sort_externally() {
    type R = Record<64, 16>;
    let mut s = 5;
    let recs: Vec<R> = (0..120_000u32)
        .map(|i| {
            let mut r = [0u8; 64];
            for c in r.chunks_mut(8) {
                c.copy_from_slice(&splitmix(&mut s).to_le_bytes());
            }
            r[60..64].copy_from_slice(&i.to_le_bytes());
            Record(r)
        })
        .collect();
    for (budget, threads) in [(2 << 20, 2), (512 << 10, 1)] {
        let dir = common::tmpdir();
        let (inp, out) = (dir.path().join("in.dat"), dir.path().join("out.dat"));
        std::fs::write(&inp, bytemuck::cast_slice(&recs)).unwrap();
        let report = sort_raw_file::<R>(&inp, &out, &opts(budget, threads)).unwrap();
        assert!(report.external);
        let got: Vec<R> = from_bytes(&std::fs::read(&out).unwrap());
        let mut expect = recs.clone();
        expect.sort_by_key(|r| r.0);
        assert!(got == expect, "budget {budget}: not the records sorted");
    }
}

#[test]
fn separate_tmp_dir_and_in_place() {
    let dir = common::tmpdir();
    let tmp = common::tmpdir();
    let path = dir.path().join("a.npy");
    let mut s = 23;
    let data: Vec<i64> = (0..5000).map(|_| splitmix(&mut s) as i64).collect();
    write_npy(&path, &[data.len()], &data);
    let mut o = opts(2048, 2);
    o.tmp_dir(tmp.path());
    let r = sort_file(&path, &path, &o).unwrap();
    assert!(r.external);
    let mut expect = data.clone();
    expect.sort();
    assert_eq!(read_npy::<i64>(&path), expect);
    assert_eq!(leftovers(tmp.path(), &[]), Vec::<String>::new());
    assert_eq!(leftovers(dir.path(), &["a.npy"]), Vec::<String>::new());
}

#[test]
fn progress_reaches_each_total() {
    let dir = common::tmpdir();
    let (inp, out) = (dir.path().join("in.npy"), dir.path().join("out.npy"));
    let data: Vec<u32> = (0..10_000u32).rev().collect();
    write_npy(&inp, &[data.len()], &data);
    let seen: Arc<Mutex<Vec<(Phase, u64, u64)>>> = Arc::default();
    let mut o = opts(4096, 2);
    o.max_fan_in(4);
    let s2 = seen.clone();
    o.progress(move |p, d, t| s2.lock().unwrap().push((p, d, t)));
    let r = sort_file(&inp, &out, &o).unwrap();
    let seen = seen.lock().unwrap();
    let phases: Vec<Phase> = r.phases.iter().map(|p| p.0).collect();
    assert_eq!(phases.first(), Some(&Phase::RunFormation));
    assert_eq!(phases.last(), Some(&Phase::FinalMerge));
    assert!(phases.contains(&Phase::Merge { level: 1 }));
    for p in phases {
        let max = seen.iter().filter(|s| s.0 == p).map(|s| s.1).max().unwrap();
        let total = seen.iter().find(|s| s.0 == p).unwrap().2;
        assert_eq!(max, total, "{p}");
        // Run formation, the final merge and the first level (with runs far beyond the
        // fan-in of 4, every run is in a group there) pass over all the data; a later level
        // merges only the runs it must, which here are fewer.
        match p {
            Phase::Merge { level } if level > 1 => {
                assert!(total > 0 && total < 40_000, "{p}: {total}")
            }
            _ => assert_eq!(total, 40_000, "{p}"),
        }
    }
}

/// Sets up `in.npy` (external-size) and a pre-existing `out.npy`, runs `f`, and checks that
/// the output kept its old content and that nothing else is left in the directory.
fn failing_sort(what: &str, f: impl FnOnce(&Path, &Path, &Path)) {
    let dir = common::tmpdir();
    let (inp, out) = (dir.path().join("in.npy"), dir.path().join("out.npy"));
    let mut s = 29;
    let data: Vec<u64> = (0..4000).map(|_| splitmix(&mut s)).collect();
    write_npy(&inp, &[data.len()], &data);
    std::fs::write(&out, b"old content").unwrap();
    f(&inp, &out, dir.path());
    assert_eq!(
        std::fs::read(&out).unwrap(),
        b"old content",
        "{what}: output untouched"
    );
    assert_eq!(
        leftovers(dir.path(), &["in.npy", "out.npy"]),
        Vec::<String>::new(),
        "{what}"
    );
}

/// The run directory of a sort in progress in `dir`.
fn run_dir(dir: &Path) -> PathBuf {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with(".outcore-sort-")
        })
        .expect("a run directory exists during the sort")
}

#[test]
fn temp_files_gone_after_panic() {
    for phase in [
        Phase::RunFormation,
        Phase::Merge { level: 1 },
        Phase::FinalMerge,
    ] {
        failing_sort(&format!("panic in {phase}"), |inp, out, dir| {
            let mut o = opts(1024, 2);
            o.max_fan_in(4);
            let d = dir.to_path_buf();
            let saw_runs = Arc::new(AtomicBool::new(false));
            let saw = saw_runs.clone();
            o.progress(move |p, done, _| {
                if p == phase && done > 0 {
                    saw.store(
                        run_dir(&d).read_dir().unwrap().count() > 0,
                        Ordering::SeqCst,
                    );
                    panic!("callback gives up");
                }
            });
            let r =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| sort_file(inp, out, &o)));
            let msg = r.expect_err("the panic propagates");
            assert_eq!(msg.downcast_ref::<&str>(), Some(&"callback gives up"));
            assert!(
                saw_runs.load(Ordering::SeqCst),
                "runs existed when it panicked"
            );
        });
    }
}

#[test]
fn temp_files_gone_after_error() {
    // The input shrinks during run formation: a read error in the middle of the sort.
    failing_sort("input truncated", |inp, out, _| {
        let mut o = opts(1024, 2);
        let p = inp.to_path_buf();
        o.progress(move |ph, done, _| {
            if ph == Phase::RunFormation && done > 0 {
                let f = std::fs::OpenOptions::new().write(true).open(&p).unwrap();
                f.set_len(1000).unwrap();
            }
        });
        let e = sort_file(inp, out, &o).unwrap_err();
        assert!(matches!(e, Error::Truncated { .. }), "{e}");
    });
    // Runs disappear before the final merge: an error with runs on disk.
    failing_sort("runs removed", |inp, out, dir| {
        let mut o = opts(1024, 2);
        let d = dir.to_path_buf();
        o.progress(move |ph, done, _| {
            if ph == Phase::FinalMerge && done == 0 {
                for e in run_dir(&d).read_dir().unwrap() {
                    std::fs::remove_file(e.unwrap().path()).unwrap();
                }
            }
        });
        let e = sort_file(inp, out, &o).unwrap_err();
        assert!(matches!(e, Error::NotFound { .. }), "{e}");
    });
    // The temp directory is a file: the runs cannot be created.
    failing_sort("tmp dir unusable", |inp, out, _| {
        let mut o = opts(1024, 1);
        let t = tempfile::NamedTempFile::new().unwrap();
        o.tmp_dir(t.path());
        let e = sort_file(inp, out, &o).unwrap_err();
        assert!(
            matches!(&e, Error::NotADirectory { path } if path == t.path()),
            "{e}"
        );
        let msg = e.to_string();
        assert!(
            msg.contains(&*t.path().to_string_lossy()),
            "names it: {msg}"
        );
        assert!(msg.contains("not a directory"), "{msg}");
    });
    // The temp directory does not exist.
    failing_sort("tmp dir missing", |inp, out, dir| {
        let mut o = opts(1024, 1);
        o.tmp_dir(dir.join("nope"));
        let e = sort_file(inp, out, &o).unwrap_err();
        assert!(matches!(e, Error::NotFound { .. }), "{e}");
    });
}

#[test]
fn clear_errors_for_bad_input() {
    let dir = common::tmpdir();
    let out = dir.path().join("out.npy");
    let e = sort_file(dir.path().join("missing.npy"), &out, &opts(1024, 1)).unwrap_err();
    assert!(matches!(e, Error::NotFound { .. }), "{e}");

    let nd = dir.path().join("nd.npy");
    write_npy(&nd, &[10, 20], &[0u32; 200]);
    let e = sort_file(&nd, &out, &opts(1024, 1)).unwrap_err();
    assert!(
        matches!(e, Error::BadShape { ref shape, .. } if shape == &[10, 20]),
        "{e}"
    );

    let raw = dir.path().join("odd.dat");
    std::fs::write(&raw, [0u8; 17]).unwrap();
    let e = sort_raw_file::<u64>(&raw, &out, &opts(1024, 1)).unwrap_err();
    assert!(
        matches!(
            e,
            Error::NotAMultiple {
                len: 17,
                elem_size: 8,
                ..
            }
        ),
        "{e}"
    );

    let notnpy = dir.path().join("text.npy");
    std::fs::write(&notnpy, b"hello world, not numpy").unwrap();
    let e = sort_file(&notnpy, &out, &opts(1024, 1)).unwrap_err();
    assert!(matches!(e, Error::BadMagic { .. }), "{e}");

    let small = dir.path().join("s.npy");
    write_npy(&small, &[3], &[3u64, 1, 2]);
    let e = sort_file(&small, &out, &opts(16, 1)).unwrap_err();
    assert!(
        matches!(
            e,
            Error::BudgetTooSmall {
                budget: 16,
                min: 64
            }
        ),
        "{e}"
    );

    assert!(!out.exists());
    let mut left = leftovers(dir.path(), &["nd.npy", "odd.dat", "text.npy", "s.npy"]);
    left.sort();
    assert_eq!(left, Vec::<String>::new());
}

#[test]
fn disk_full_is_checked_up_front() {
    // A sparse 1 TiB raw file: sorting it needs twice that, which this disk does not have.
    failing_sort("disk full", |_, out, dir| {
        let big = dir.join("in.npy");
        let f = std::fs::OpenOptions::new().write(true).open(&big).unwrap();
        f.set_len(1 << 40).unwrap();
        drop(f);
        let e = sort_raw_file::<u64>(&big, out, &opts(1 << 20, 1)).unwrap_err();
        assert!(
            matches!(e, Error::DiskFull { needed: Some(n), available: Some(a), .. } if n > a),
            "{e}"
        );
        std::fs::OpenOptions::new()
            .write(true)
            .open(&big)
            .unwrap()
            .set_len(0)
            .unwrap();
    });
}

#[test]
fn stale_temp_files_are_removed() {
    let dir = common::tmpdir();
    // Left by killed sorts: nobody holds their locks, and their pids (above Linux's
    // largest pid_max, 2^22) run no process.
    let dead = dir.path().join(".outcore-sort-4194399-0");
    std::fs::create_dir(&dead).unwrap();
    std::fs::write(dead.join("run-0-0"), b"x").unwrap();
    std::fs::write(dir.path().join(".out.npy.outcore-tmp-4194399-1"), b"x").unwrap();
    // A running process's directory, not locked yet (just created): kept.
    let mine = format!(".outcore-sort-{}-7", std::process::id());
    std::fs::create_dir(dir.path().join(&mine)).unwrap();
    // A live sort's run directory: locked.
    let live = dir.path().join(".outcore-sort-4194400-0");
    std::fs::create_dir(&live).unwrap();
    let lock = std::fs::File::open(&live).unwrap();
    lock.lock().unwrap();
    std::fs::write(dir.path().join("other"), b"x").unwrap();
    assert_eq!(remove_stale_sort_files(dir.path()).unwrap(), 2);
    let mut left = leftovers(dir.path(), &[]);
    left.sort();
    let mut want = vec![
        ".outcore-sort-4194400-0".to_string(),
        mine.clone(),
        "other".into(),
    ];
    want.sort();
    assert_eq!(left, want);
    drop(lock);
    assert_eq!(remove_stale_sort_files(dir.path()).unwrap(), 1);
    assert!(dir.path().join(&mine).exists());
}

/// Pushes `data` into a [`Sorter`] in pieces of varying size (and the tail one by one) and
/// returns the sorted stream, checking that no block is empty.
fn streamed<T: SortKey>(data: &[T], o: &SortOptions) -> (Vec<T>, outcore::sort::SortReport) {
    let mut sorter = Sorter::<T>::new(o).unwrap();
    let mut s = data.len() as u64;
    let mut rest = data;
    while rest.len() > 10 {
        let n = (splitmix(&mut s) % 700) as usize % rest.len();
        sorter.push(&rest[..n]).unwrap();
        rest = &rest[n..];
    }
    sorter.push_iter(rest.iter().copied()).unwrap();
    assert_eq!(sorter.len(), data.len() as u64);
    let mut out = Vec::new();
    let report = sorter
        .finish_with(|b: &[T]| {
            assert!(!b.is_empty());
            out.extend_from_slice(b);
            Ok(())
        })
        .unwrap();
    assert_eq!(report.elements, data.len() as u64);
    (out, report)
}

#[test]
fn streamed_sort_matches_numpy_with_tiny_budgets() {
    crate::require_numpy!();
    let dir = common::tmpdir();
    let tmp = common::tmpdir();
    let (inp, out) = (dir.path().join("in.npy"), dir.path().join("out.npy"));
    let (inp_s, out_s) = (inp.to_str().unwrap(), out.to_str().unwrap());
    common::python(
        "rng = np.random.default_rng(5)\n\
         a = rng.standard_normal(40000)\n\
         a[::97] = np.nan; a[::101] = np.inf; a[::103] = -np.inf; a[::107] = -0.0\n\
         a[::5] = np.round(a[::5])\n\
         np.save(sys.argv[1], a)",
        &[inp_s],
    );
    let data: Vec<f64> = read_npy(&inp);
    let verdict = |what: &str| {
        let v = common::python(
            "a = np.load(sys.argv[1]); b = np.load(sys.argv[2])\n\
             print(np.array_equal(np.sort(a), b, equal_nan=True))",
            &[inp_s, out_s],
        );
        assert_eq!(v.trim(), "True", "{what}");
    };
    // (budget, fan-in cap): hundreds of runs; a few runs and the last one merged from
    // memory; one merge level; several levels; in memory.
    for (budget, fan_in) in [
        (2048, None),
        (100_000, None),
        (4096, Some(3)),
        (1024, Some(2)),
        (1 << 20, None),
    ] {
        let mut o = opts(budget, 2);
        o.tmp_dir(tmp.path());
        if let Some(k) = fan_in {
            o.max_fan_in(k);
        }
        let what = format!("budget {budget}, fan-in {fan_in:?}");
        let (got, r) = streamed(&data, &o);
        write_npy(&out, &[got.len()], &got);
        verdict(&format!("Sorter, {what}"));
        assert_eq!(r.external, budget < 1 << 20, "{what}");
        if fan_in.is_some() {
            assert!(r.merge_levels >= 1 && r.runs > 50, "{what}: {r:?}");
        }
        assert_eq!(leftovers(tmp.path(), &[]), Vec::<String>::new(), "{what}");

        let mut got = Vec::new();
        let r = sort_file_with(&inp, &o, |b: &[f64]| {
            got.extend_from_slice(b);
            Ok(())
        })
        .unwrap();
        write_npy(&out, &[got.len()], &got);
        verdict(&format!("sort_file_with, {what}"));
        if fan_in.is_some() {
            assert!(r.merge_levels >= 1, "{what}: {r:?}");
        }
        assert_eq!(leftovers(tmp.path(), &[]), Vec::<String>::new(), "{what}");
    }
}

#[test]
fn streamed_sort_of_every_shape_and_records() {
    for n in [0usize, 1, 2, 100, 1000, 5000] {
        for (name, data) in patterns(n, n as u64 + 1) {
            for budget in [1024, 4096, 1 << 20] {
                let (got, _) = streamed(&data, &opts(budget, 2));
                let mut expect = data.clone();
                expect.sort_unstable();
                assert_eq!(got, expect, "{name} n={n} budget {budget}");
            }
        }
    }
    type R = Record<100, 10>;
    let mut s = 31;
    let recs: Vec<R> = (0..3000u32)
        .map(|i| {
            let mut r = [0u8; 100];
            r[..8].copy_from_slice(&(splitmix(&mut s) % 17).to_be_bytes());
            r[10..14].copy_from_slice(&i.to_le_bytes());
            Record(r)
        })
        .collect();
    let dir = common::tmpdir();
    let inp = dir.path().join("in.dat");
    std::fs::write(&inp, bytemuck::cast_slice(&recs)).unwrap();
    let keys = |v: &[R]| v.iter().map(|r| r.sort_key()).collect::<Vec<_>>();
    let mut expect = recs.clone();
    expect.sort_by_key(|r| r.sort_key());
    for budget in [4096, 20_000, 1 << 20] {
        let (got, r) = streamed(&recs, &opts(budget, 2));
        assert_eq!(keys(&got), keys(&expect), "budget {budget}");
        assert_eq!(r.external, budget < 1 << 20);
        let mut got: Vec<R> = Vec::new();
        sort_raw_file_with::<R>(&inp, &opts(budget, 2), |b| {
            got.extend_from_slice(b);
            Ok(())
        })
        .unwrap();
        assert_eq!(keys(&got), keys(&expect), "raw file, budget {budget}");
        let mut g: Vec<_> = got.iter().map(|r| r.0.to_vec()).collect();
        let mut e: Vec<_> = recs.iter().map(|r| r.0.to_vec()).collect();
        g.sort();
        e.sort();
        assert_eq!(g, e, "records kept whole");
    }
    assert_eq!(leftovers(dir.path(), &["in.dat"]), Vec::<String>::new());
}

#[test]
fn streamed_sort_within_the_budget_writes_nothing() {
    let tmp = common::tmpdir();
    // A temp directory that does not exist: never needed when everything fits.
    let mut o = opts(1 << 20, 2);
    o.tmp_dir(tmp.path().join("missing"));
    let mut s = 41;
    let data: Vec<u32> = (0..50_000).map(|_| splitmix(&mut s) as u32).collect();
    let (got, r) = streamed(&data, &o);
    assert!(!r.external && r.runs == 0, "{r:?}");
    assert_eq!(r.phases.len(), 1);
    let mut expect = data.clone();
    expect.sort_unstable();
    assert_eq!(got, expect);
    // Beyond the budget, the missing temp directory is named in the error.
    let mut sorter = Sorter::<u32>::new(&opts(4096, 1)).unwrap();
    let mut o = opts(4096, 1);
    o.tmp_dir(tmp.path().join("missing"));
    sorter.push(&data[..10]).unwrap();
    let mut sorter2 = Sorter::<u32>::new(&o).unwrap();
    let e = sorter2.push(&data).unwrap_err();
    assert!(e.to_string().contains("missing"), "{e}");
    drop(sorter2);
    assert_eq!(sorter.finish_to_vec().unwrap().len(), 10);
    assert_eq!(leftovers(tmp.path(), &[]), Vec::<String>::new());
}

/// A consumer that fails or panics mid-stream, or a cancelled sort: the error or panic
/// reaches the caller and no temporary file remains.
#[test]
fn streamed_consumer_error_or_panic_leaves_no_temp_files() {
    let mut s = 43;
    let data: Vec<u64> = (0..20_000).map(|_| splitmix(&mut s)).collect();
    for budget in [2048, 1 << 20] {
        for fan_in in [None, Some(3)] {
            let tmp = common::tmpdir();
            let dir = common::tmpdir();
            let inp = dir.path().join("in.npy");
            write_npy(&inp, &[data.len()], &data);
            let mut o = opts(budget, 2);
            o.tmp_dir(tmp.path());
            if let Some(k) = fan_in {
                o.max_fan_in(k);
            }
            let what = format!("budget {budget} fan-in {fan_in:?}");
            // The consumer's error, after some blocks, while runs are on disk.
            let failing = |seen: &mut u64, b: &[u64]| -> outcore::Result<()> {
                *seen += b.len() as u64;
                if *seen > 5000 {
                    return Err(Error::InvalidArgument("consumer gives up".into()));
                }
                Ok(())
            };
            let mut sorter = Sorter::<u64>::new(&o).unwrap();
            sorter.push(&data).unwrap();
            assert_eq!(sorter.runs() > 0, budget < 1 << 20);
            let mut seen = 0;
            let e = sorter.finish_with(|b| failing(&mut seen, b)).unwrap_err();
            assert!(e.to_string().contains("consumer gives up"), "{what}: {e}");
            assert_eq!(leftovers(tmp.path(), &[]), Vec::<String>::new(), "{what}");
            let mut seen = 0;
            let e = sort_file_with(&inp, &o, |b: &[u64]| failing(&mut seen, b)).unwrap_err();
            assert!(e.to_string().contains("consumer gives up"), "{what}: {e}");
            assert_eq!(leftovers(tmp.path(), &[]), Vec::<String>::new(), "{what}");

            // The consumer's panic.
            let mut sorter = Sorter::<u64>::new(&o).unwrap();
            sorter.push(&data).unwrap();
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                let mut seen = 0;
                sorter.finish_with(|b| {
                    seen += b.len();
                    if seen > 5000 {
                        panic!("consumer panics");
                    }
                    Ok(())
                })
            }));
            let msg = r.expect_err("the panic propagates");
            assert_eq!(msg.downcast_ref::<&str>(), Some(&"consumer panics"));
            assert_eq!(leftovers(tmp.path(), &[]), Vec::<String>::new(), "{what}");
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                sort_file_with(&inp, &o, |_: &[u64]| panic!("consumer panics"))
            }));
            let msg = r.expect_err("the panic propagates");
            assert_eq!(msg.downcast_ref::<&str>(), Some(&"consumer panics"));
            assert_eq!(leftovers(tmp.path(), &[]), Vec::<String>::new(), "{what}");

            // A sorter dropped unfinished, with a run being written.
            let mut sorter = Sorter::<u64>::new(&o).unwrap();
            sorter.push(&data).unwrap();
            drop(sorter);
            assert_eq!(leftovers(tmp.path(), &[]), Vec::<String>::new(), "{what}");

            // Cancelled during the final merge.
            let stop = Arc::new(AtomicBool::new(false));
            let mut oc = o.clone();
            oc.cancel_flag(stop.clone());
            let mut sorter = Sorter::<u64>::new(&oc).unwrap();
            sorter.push(&data).unwrap();
            let e = sorter
                .finish_with(|_| {
                    stop.store(true, Ordering::Relaxed);
                    Ok(())
                })
                .unwrap_err();
            assert!(matches!(e, Error::Cancelled), "{what}: {e}");
            assert_eq!(leftovers(tmp.path(), &[]), Vec::<String>::new(), "{what}");
        }
    }
}

#[test]
fn streamed_sort_reports_progress_and_phases() {
    let seen: Arc<Mutex<Vec<(Phase, u64, u64)>>> = Arc::default();
    let mut o = opts(4096, 2);
    o.max_fan_in(4);
    let s2 = seen.clone();
    o.progress(move |p, d, t| s2.lock().unwrap().push((p, d, t)));
    let data: Vec<u32> = (0..10_000u32).rev().collect();
    let (got, r) = streamed(&data, &o);
    assert_eq!(got, (0..10_000).collect::<Vec<u32>>());
    let phases: Vec<Phase> = r.phases.iter().map(|p| p.0).collect();
    assert_eq!(phases.first(), Some(&Phase::RunFormation));
    assert_eq!(phases.last(), Some(&Phase::FinalMerge));
    assert!(
        r.merge_levels >= 1 && phases.contains(&Phase::Merge { level: 1 }),
        "{r:?}"
    );
    let seen = seen.lock().unwrap();
    // Run formation: every pushed byte written as a run, the total being what was pushed.
    let last_rf = seen.iter().rfind(|s| s.0 == Phase::RunFormation).unwrap();
    assert_eq!((last_rf.1, last_rf.2), (40_000, 40_000));
    let fm: Vec<_> = seen.iter().filter(|s| s.0 == Phase::FinalMerge).collect();
    assert_eq!(fm.last().map(|s| (s.1, s.2)), Some((40_000, 40_000)));
}

#[test]
fn sort_file_with_checks_the_dtype_and_shape() {
    let dir = common::tmpdir();
    let p = dir.path().join("a.npy");
    write_npy(&p, &[3], &[3u32, 1, 2]);
    let e = sort_file_with(&p, &opts(1024, 1), |_: &[u64]| Ok(())).unwrap_err();
    assert!(
        matches!(
            e,
            Error::DtypeMismatch {
                expected: DType::U64,
                found: DType::U32,
                ..
            }
        ),
        "{e}"
    );
    let mut got = vec![];
    sort_file_with(&p, &opts(1024, 1), |b: &[u32]| {
        got.extend_from_slice(b);
        Ok(())
    })
    .unwrap();
    assert_eq!(got, [1, 2, 3]);
    write_npy(&p, &[2, 2], &[0u32; 4]);
    let e = sort_file_with(&p, &opts(1024, 1), |_: &[u32]| Ok(())).unwrap_err();
    assert!(matches!(e, Error::BadShape { .. }), "{e}");
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(crate::common::proptest_config(24))]

        /// Any input, budget, thread count and fan-in: the same keys as `slice::sort`, the
        /// same multiset.
        #[test]
        fn equals_slice_sort(
            data in prop::collection::vec(any::<i32>().prop_map(|x| x % 1000), 0..3000),
            budget in 64usize..40_000,
            threads in 1usize..=2,
            fan_in in prop::option::of(2usize..10),
        ) {
            let mut o = opts(budget, threads);
            if let Some(k) = fan_in {
                o.max_fan_in(k);
            }
            check_npy(&data, &o, &format!("budget {budget}, threads {threads}, fan-in {fan_in:?}"));
        }

        /// The streamed sort: the same keys and multiset as `slice::sort`.
        #[test]
        fn streamed_equals_slice_sort(
            data in prop::collection::vec(any::<i32>().prop_map(|x| x % 1000), 0..3000),
            budget in 64usize..40_000,
            fan_in in prop::option::of(2usize..10),
        ) {
            let mut o = opts(budget, 2);
            if let Some(k) = fan_in {
                o.max_fan_in(k);
            }
            let (got, _) = streamed(&data, &o);
            let mut expect = data.clone();
            expect.sort_unstable();
            prop_assert_eq!(got, expect);
        }
    }
}
