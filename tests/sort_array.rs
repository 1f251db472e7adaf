//! `sort_array`: a mapped array sorted where it lies, in memory or out of core, against
//! `slice::sort_by_key` (keys in order) and a multiset checksum of the bit patterns (a
//! permutation); the file it leaves, its locks, its failures; and a sort under a real
//! memory cap with the default budget.

use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use outcore::sort::{sort_array, Phase, Record, SortKey, SortOptions, SortReport};
use outcore::{Element, Error, MappedArray, MappedArrayMut};

use crate::common::{self, leftovers, multiset, splitmix};

fn opts(memory: usize) -> SortOptions {
    let mut o = SortOptions::new();
    o.memory(memory);
    o
}

/// A budget that forces the external sort on the small arrays here: many runs.
const TINY: usize = 64 << 10;

/// A persisted 1-D `.npy` of `data` at `path`.
fn write<T: Element>(path: &Path, data: &[T]) {
    let mut a = MappedArrayMut::<T>::create(path, &[data.len()]).unwrap();
    a.copy_from_slice(data);
    a.persist().unwrap();
}

/// Asserts that `got` is `data` sorted: keys in `slice::sort_by_key`'s order, and the same
/// bit patterns (NaN payloads, -0.0) as a multiset.
fn assert_sorted<T: SortKey>(got: &[T], data: &[T], what: &str) {
    let mut expect = data.to_vec();
    expect.sort_by_key(|x| x.sort_key());
    let keys = |v: &[T]| v.iter().map(|x| x.sort_key()).collect::<Vec<_>>();
    assert!(keys(got) == keys(&expect), "{what}: keys out of order");
    assert_eq!(multiset(got), multiset(data), "{what}: not a permutation");
}

/// Sorts `data` as a mapped `.npy` with `o`; checks the array, the file on disk and the
/// directory (nothing but the file left), and returns the report.
fn check<T: Element + SortKey>(data: &[T], o: &SortOptions, what: &str) -> SortReport {
    let dir = common::tmpdir();
    let path = dir.path().join("x.npy");
    write(&path, data);
    let mut a = MappedArrayMut::<T>::open(&path).unwrap();
    let report = sort_array(&mut a, o).unwrap_or_else(|e| panic!("{what}: {e}"));
    assert_sorted(&a, data, &format!("{what}: the array"));
    assert_eq!(a.shape(), &[data.len()], "{what}");
    assert_eq!(report.elements, data.len() as u64, "{what}");
    a.flush().unwrap();
    drop(a);
    let on_disk = MappedArray::<T>::open(&path).unwrap();
    assert_sorted(&on_disk, data, &format!("{what}: the file"));
    assert_eq!(
        leftovers(dir.path(), &["x.npy"]),
        Vec::<String>::new(),
        "{what}"
    );
    report
}

#[test]
fn a_small_array_sorts_in_memory() {
    let mut s = 1;
    let data: Vec<u64> = (0..50_000).map(|_| splitmix(&mut s)).collect();
    // The default budget (the machine's) and an explicit one.
    for o in [SortOptions::new(), opts(16 << 20)] {
        let r = check(&data, &o, "u64 in memory");
        assert!(!r.external && r.runs == 0, "{r:?}");
        let phases: Vec<Phase> = r.phases.iter().map(|p| p.0).collect();
        assert_eq!(phases, [Phase::InMemory]);
    }
    for n in [0usize, 1, 2, 1000] {
        let r = check(&data[..n], &SortOptions::new(), &format!("n={n}"));
        assert!(!r.external);
    }
}

#[test]
fn a_tiny_budget_sorts_out_of_core_with_many_runs() {
    let mut s = 2;
    let data: Vec<u64> = (0..100_000).map(|_| splitmix(&mut s)).collect();
    for threads in [1, 2] {
        let mut o = opts(TINY);
        o.threads(threads);
        let r = check(&data, &o, &format!("u64 out of core, {threads} threads"));
        assert!(r.external, "{r:?}");
        assert!(r.runs >= 16, "{r:?}");
        let phases: Vec<Phase> = r.phases.iter().map(|p| p.0).collect();
        assert_eq!(phases.first(), Some(&Phase::RunFormation));
        assert_eq!(phases.last(), Some(&Phase::FinalMerge));
    }
    // Sorted, reversed, all equal.
    let sorted: Vec<u64> = (0..20_000).collect();
    let reversed: Vec<u64> = sorted.iter().rev().copied().collect();
    for (name, d) in [
        ("sorted", sorted),
        ("reversed", reversed),
        ("equal", vec![7; 20_000]),
    ] {
        assert!(check(&d, &opts(TINY), name).external, "{name}");
    }
}

#[test]
fn floats_with_nan_and_negative_zero_and_small_integers() {
    let mut s = 3;
    let specials = [
        f64::NAN,
        -f64::NAN,
        0.0,
        -0.0,
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::MIN_POSITIVE,
        -1e-310,
    ];
    let f64s: Vec<f64> = (0..30_000)
        .map(|i| {
            if i % 5 == 0 {
                specials[i % specials.len()]
            } else {
                (splitmix(&mut s) as i64 as f64) / 1e9
            }
        })
        .collect();
    let f32s: Vec<f32> = f64s.iter().map(|&x| x as f32).collect();
    let i32s: Vec<i32> = (0..30_000).map(|_| splitmix(&mut s) as i32).collect();
    let u8s: Vec<u8> = (0..30_000).map(|_| splitmix(&mut s) as u8).collect();
    for (budget, external) in [(16 << 20, false), (TINY, true)] {
        let what = |t: &str| format!("{t} with a budget of {budget}");
        assert_eq!(check(&f64s, &opts(budget), &what("f64")).external, external);
        assert_eq!(check(&f32s, &opts(budget), &what("f32")).external, external);
        assert_eq!(check(&i32s, &opts(budget), &what("i32")).external, external);
        // 30 kB of u8 and its scratch fit 64 KiB; a quarter of it does not.
        let o = opts(if external { TINY / 4 } else { budget });
        assert_eq!(check(&u8s, &o, &what("u8")).external, external);
    }
    // numpy's order, out of core: -0.0 before 0.0, NaN last.
    let dir = common::tmpdir();
    let path = dir.path().join("f.npy");
    let mut few = vec![f64::NAN, 0.0, -0.0, f64::INFINITY, -1.0];
    few.extend((0..5000).map(|i| i as f64));
    write(&path, &few);
    let mut a = MappedArrayMut::<f64>::open(&path).unwrap();
    assert!(sort_array(&mut a, &opts(4096)).unwrap().external);
    let head: Vec<String> = a[..3].iter().map(|x| format!("{x:?}")).collect();
    assert_eq!(head, ["-1.0", "-0.0", "0.0"]);
    assert_eq!(format!("{:?}", &a[a.len() - 2..]), "[inf, NaN]");
}

#[test]
fn raw_records_sort_out_of_core() {
    type R = Record<16, 8>;
    let dir = common::tmpdir();
    let path = dir.path().join("recs.dat");
    let mut s = 4;
    let recs: Vec<R> = (0..20_000)
        .map(|_| {
            let mut r = [0u8; 16];
            r[..8].copy_from_slice(&(splitmix(&mut s) % 1000).to_be_bytes());
            r[8..].copy_from_slice(&splitmix(&mut s).to_le_bytes());
            Record(r)
        })
        .collect();
    std::fs::write(&path, bytemuck::cast_slice(&recs)).unwrap();
    let mut a = MappedArrayMut::<R>::open_raw(&path).unwrap();
    let r = sort_array(&mut a, &opts(TINY)).unwrap();
    assert!(r.external && r.runs > 1, "{r:?}");
    assert_sorted(&a, &recs, "records");
    drop(a);
    let bytes = std::fs::read(&path).unwrap();
    assert_eq!(
        bytes.len(),
        recs.len() * 16,
        "no header added to a raw file"
    );
    let mut on_disk = vec![Record([0u8; 16]); recs.len()];
    bytemuck::cast_slice_mut::<R, u8>(&mut on_disk).copy_from_slice(&bytes);
    assert_sorted(&on_disk, &recs, "records on disk");
    assert_eq!(leftovers(dir.path(), &["recs.dat"]), Vec::<String>::new());
}

#[test]
fn the_array_keeps_its_lock_and_its_file_its_mode() {
    use std::os::unix::fs::PermissionsExt;
    let dir = common::tmpdir();
    let path = dir.path().join("x.npy");
    let mut s = 5;
    let data: Vec<i64> = (0..20_000).map(|_| splitmix(&mut s) as i64).collect();
    write(&path, &data);
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
    let mut a = MappedArrayMut::<i64>::open(&path).unwrap();
    assert!(sort_array(&mut a, &opts(TINY)).unwrap().external);
    // The new file is locked by `a` as the old one was.
    assert!(matches!(
        MappedArrayMut::<i64>::open(&path),
        Err(Error::Locked { .. })
    ));
    assert!(matches!(
        MappedArray::<i64>::open(&path),
        Err(Error::Locked { .. })
    ));
    assert_eq!(a.path(), Some(path.as_path()));
    // Still a writable mapping of the file at `path`.
    a[0] = i64::MIN;
    a.flush().unwrap();
    drop(a);
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode, 0o640);
    let on_disk = MappedArray::<i64>::open(&path).unwrap();
    assert_eq!(on_disk[0], i64::MIN);
    let mut expect = data.clone();
    expect.sort();
    assert_eq!(&on_disk[1..], &expect[1..]);
}

#[test]
fn a_created_array_stays_pending() {
    let dir = common::tmpdir();
    let path = dir.path().join("new.npy");
    let mut s = 6;
    let data: Vec<u32> = (0..40_000).map(|_| splitmix(&mut s) as u32).collect();
    let mut a = MappedArrayMut::<u32>::create(&path, &[data.len()]).unwrap();
    a.copy_from_slice(&data);
    assert!(sort_array(&mut a, &opts(TINY)).unwrap().external);
    assert!(a.is_pending());
    assert!(!path.exists(), "not visible before persist");
    // One temporary file: the pending array's.
    assert_eq!(leftovers(dir.path(), &[]).len(), 1);
    assert_sorted(&a, &data, "pending array");
    let a = a.persist().unwrap();
    drop(a);
    assert_sorted(
        &MappedArray::<u32>::open(&path).unwrap(),
        &data,
        "persisted",
    );
    assert_eq!(leftovers(dir.path(), &["new.npy"]), Vec::<String>::new());

    // Dropped unpersisted after an external sort: nothing at all remains.
    let mut a = MappedArrayMut::<u32>::create(dir.path().join("gone.npy"), &[data.len()]).unwrap();
    a.copy_from_slice(&data);
    sort_array(&mut a, &opts(TINY)).unwrap();
    drop(a);
    assert_eq!(leftovers(dir.path(), &["new.npy"]), Vec::<String>::new());
}

#[test]
fn copy_on_write_and_anonymous_arrays_sort_in_memory_only() {
    let dir = common::tmpdir();
    let path = dir.path().join("x.npy");
    let mut s = 7;
    let data: Vec<u64> = (0..20_000).map(|_| splitmix(&mut s)).collect();
    write(&path, &data);

    // Fits: sorted in the private pages; the file is untouched.
    let mut cow = MappedArrayMut::<u64>::open_copy_on_write(&path).unwrap();
    assert!(!sort_array(&mut cow, &SortOptions::new()).unwrap().external);
    assert_sorted(&cow, &data, "copy-on-write");
    drop(cow);
    assert_eq!(&MappedArray::<u64>::open(&path).unwrap()[..], &data[..]);

    // Too large for the budget: refused, untouched.
    let mut cow = MappedArrayMut::<u64>::open_copy_on_write(&path).unwrap();
    let e = sort_array(&mut cow, &opts(TINY)).unwrap_err();
    let Error::NoFileToSortInto { kind, budget, .. } = &e else {
        panic!("{e}")
    };
    assert_eq!((*kind, *budget), ("copy-on-write", TINY as u64));
    assert!(e.to_string().contains(&*path.to_string_lossy()), "{e}");
    assert_eq!(&cow[..], &data[..]);
    drop(cow);

    let mut anon = MappedArrayMut::<u64>::anonymous(data.len()).unwrap();
    anon.copy_from_slice(&data);
    let e = sort_array(&mut anon, &opts(TINY)).unwrap_err();
    assert!(
        matches!(
            &e,
            Error::NoFileToSortInto {
                kind: "anonymous",
                ..
            }
        ),
        "{e}"
    );
    assert!(e.to_string().contains("MappedArrayMut::open"), "{e}");
    assert_eq!(&anon[..], &data[..]);
    assert!(!sort_array(&mut anon, &SortOptions::new()).unwrap().external);
    assert_sorted(&anon, &data, "anonymous");
    assert_eq!(leftovers(dir.path(), &["x.npy"]), Vec::<String>::new());
}

#[test]
fn a_2d_array_is_refused() {
    let dir = common::tmpdir();
    let path = dir.path().join("m.npy");
    let mut a = MappedArrayMut::<f32>::create(&path, &[100, 3]).unwrap();
    for (i, x) in a.iter_mut().enumerate() {
        *x = -(i as f32);
    }
    let mut a = a.persist().unwrap();
    for o in [SortOptions::new(), opts(TINY)] {
        let e = sort_array(&mut a, &o).unwrap_err();
        assert!(
            matches!(&e, Error::BadShape { shape, .. } if shape == &[100, 3]),
            "{e}"
        );
        assert!(e.to_string().contains("m.npy"), "{e}");
    }
    assert_eq!(a[5], -5.0);
}

/// Makes a directory unwritable for as long as it lives: immutable (`chattr +i`, which
/// stops root too) or, for other users, without write permission.
struct Unwritable<'a>(&'a Path, bool);

impl<'a> Unwritable<'a> {
    fn new(dir: &'a Path) -> Option<Unwritable<'a>> {
        use std::os::unix::fs::PermissionsExt;
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } == 0 {
            let ok = Command::new("chattr")
                .arg("+i")
                .arg(dir)
                .status()
                .is_ok_and(|s| s.success());
            if !ok {
                eprintln!(
                    "skipped: running as root without chattr, cannot make a directory unwritable"
                );
                return None;
            }
            Some(Unwritable(dir, true))
        } else {
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o555)).unwrap();
            Some(Unwritable(dir, false))
        }
    }
}

impl Drop for Unwritable<'_> {
    fn drop(&mut self) {
        use std::os::unix::fs::PermissionsExt;
        if self.1 {
            let _ = Command::new("chattr").arg("-i").arg(self.0).status();
        } else {
            let _ = std::fs::set_permissions(self.0, std::fs::Permissions::from_mode(0o755));
        }
    }
}

/// A new directory holding `x.npy`, 30 000 random `u64` (external-size for [`TINY`]), and
/// its data.
fn fixture() -> (tempfile::TempDir, std::path::PathBuf, Vec<u64>) {
    let dir = common::tmpdir();
    let path = dir.path().join("x.npy");
    let mut s = 8;
    let data: Vec<u64> = (0..30_000).map(|_| splitmix(&mut s)).collect();
    write(&path, &data);
    (dir, path, data)
}

/// Asserts that the array `a` of [`fixture`] and its file still hold `data`, and that
/// nothing else is in the directory.
fn assert_untouched(a: MappedArrayMut<u64>, path: &Path, data: &[u64], what: &str) {
    assert_eq!(&a[..], data, "{what}: the array is untouched");
    assert_eq!(a.path(), Some(path));
    drop(a);
    assert_eq!(
        &MappedArray::<u64>::open(path).unwrap()[..],
        data,
        "{what}: the file is untouched"
    );
    let dir = path.parent().unwrap();
    assert_eq!(leftovers(dir, &["x.npy"]), Vec::<String>::new(), "{what}");
}

/// Runs `f` on the open array of a [`fixture`]; it must fail with an error `ok` accepts and
/// leave everything as it was.
fn failing(
    what: &str,
    f: impl FnOnce(&mut MappedArrayMut<u64>, &Path) -> outcore::Result<SortReport>,
    ok: impl Fn(&Error) -> bool,
) {
    let (dir, path, data) = fixture();
    let mut a = MappedArrayMut::<u64>::open(&path).unwrap();
    let e = f(&mut a, dir.path()).expect_err(what);
    assert!(ok(&e), "{what}: {e}");
    assert_untouched(a, &path, &data, what);
}

#[test]
fn an_unwritable_directory_leaves_the_original() {
    let (dir, path, data) = fixture();
    let mut a = MappedArrayMut::<u64>::open(&path).unwrap();
    let Some(guard) = Unwritable::new(dir.path()) else {
        return;
    };
    let e = sort_array(&mut a, &opts(TINY)).unwrap_err();
    assert!(matches!(e, Error::PermissionDenied { .. }), "{e}");
    assert_eq!(&a[..], &data[..]);
    assert_eq!(leftovers(dir.path(), &["x.npy"]), Vec::<String>::new());
    // In memory there is no file to create: that works there.
    assert!(!sort_array(&mut a, &SortOptions::new()).unwrap().external);
    assert_sorted(&a, &data, "in memory in an unwritable directory");
    drop(guard);
    drop(a);
    let on_disk = MappedArray::<u64>::open(&path).unwrap();
    assert_sorted(&on_disk, &data, "the file after the in-memory sort");
    assert_eq!(leftovers(dir.path(), &["x.npy"]), Vec::<String>::new());
}

#[test]
fn cancel_panic_and_a_bad_temp_directory_leave_the_original() {
    failing(
        "cancelled in the final merge",
        |a, _| {
            let stop = Arc::new(AtomicBool::new(false));
            let mut o = opts(TINY);
            let flag = stop.clone();
            o.cancel_flag(stop).progress(move |p, done, total| {
                if p == Phase::FinalMerge && done > total / 2 {
                    flag.store(true, Ordering::Relaxed);
                }
            });
            sort_array(a, &o)
        },
        |e| matches!(e, Error::Cancelled),
    );
    failing(
        "a temp directory that is a file",
        |a, dir| sort_array(a, opts(TINY).tmp_dir(dir.join("x.npy"))),
        |e| matches!(e, Error::NotADirectory { .. }),
    );
    let (_dir, path, data) = fixture();
    let mut a = MappedArrayMut::<u64>::open(&path).unwrap();
    let mut o = opts(TINY);
    o.progress(|p, done, _| {
        if p == Phase::FinalMerge && done > 0 {
            panic!("the callback gives up");
        }
    });
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| sort_array(&mut a, &o)));
    assert!(r.is_err(), "the panic propagates");
    assert_untouched(a, &path, &data, "a panic in the final merge");
}

/// The child of [`sorts_a_mapped_array_four_times_its_memory_cap`]: sorts the file with the
/// default budget and prints the budget, the report and a look at the array afterwards (its
/// ends and middle: reading all of it would fill the cgroup with page cache and hide the
/// sort's peak; the parent reads the whole file).
#[test]
#[ignore = "run by sorts_a_mapped_array_four_times_its_memory_cap, in a memory cgroup"]
fn capped_child() {
    let Ok(path) = std::env::var("OUTCORE_TEST_CHILD") else {
        return;
    };
    let mut a = MappedArrayMut::<u64>::open(&path).unwrap();
    let budget = SortOptions::new().get_memory();
    let r = sort_array(&mut a, &SortOptions::new()).unwrap();
    println!(
        "CHILD: budget={budget} external={} runs={} merge_levels={} phases={:?}",
        r.external, r.runs, r.merge_levels, r.phases
    );
    let n = a.len();
    let ends = [&a[..4096], &a[n / 2..n / 2 + 4096], &a[n - 4096..]];
    let sorted = ends.iter().all(|p| p.windows(2).all(|w| w[0] <= w[1]))
        && a[4095] <= a[n / 2]
        && a[n / 2 + 4095] <= a[n - 4096];
    println!("CHILD: len={n} sorted_samples={sorted}");
}

/// The issue this answers: `par_sort` on a mapping four times the memory cgroup's limit
/// thrashes. `sort_array` with the default budget must read the limit from the cgroup, sort
/// out of core, and stay under the cap.
#[test]
fn sorts_a_mapped_array_four_times_its_memory_cap() {
    let Some(tool) = common::memcap() else { return };
    // 128 MiB of u64 under a 32 MiB cap: a default budget of 8 MiB, 64 runs of 2 MiB and a
    // merge level. About 10 s in a debug build on two cores.
    const CAP_MIB: u64 = 32;
    let dir = common::tmpdir();
    let path = dir.path().join("big.npy");
    let n = (4 * CAP_MIB as usize) << 20 >> 3;
    let mut a = MappedArrayMut::<u64>::create(&path, &[n]).unwrap();
    let mut s = 9;
    for x in a.iter_mut() {
        *x = splitmix(&mut s);
    }
    let before = multiset(&a);
    let a = a.persist().unwrap();
    // Out of this process's page cache, so the child reads it in, charged to its cgroup.
    a.release(0..a.len()).unwrap();
    drop(a);

    let (out, report) = common::run_child_capped(
        &tool,
        CAP_MIB,
        "sort_array::capped_child",
        &path.to_string_lossy(),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{report}\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(common::memcap_field(&report, "oom_kill"), 0, "{report}");
    let peak = common::memcap_field(&report, "max_usage_bytes");
    assert!(peak <= CAP_MIB << 20, "{report}");
    // The child's lines, without what the test harness prints before them.
    let line = |key: &str| {
        stdout
            .lines()
            .find_map(|l| Some(l.split_once("CHILD: ")?.1).filter(|l| l.starts_with(key)))
            .unwrap_or_else(|| panic!("no {key} line in:\n{stdout}"))
            .to_string()
    };
    let how = line("budget=");
    let budget = common::memcap_field(&how, "budget");
    assert!(
        budget < CAP_MIB << 20,
        "the budget comes from the cgroup: {how}"
    );
    assert!(how.contains("external=true"), "{how}");
    assert_eq!(line("len="), format!("len={n} sorted_samples=true"));
    eprintln!(
        "{} MiB of u64 under a {CAP_MIB} MiB cap: {how} | {report}",
        (n * 8) >> 20
    );

    let on_disk = MappedArray::<u64>::open(&path).unwrap();
    assert!(
        on_disk.windows(2).all(|w| w[0] <= w[1]),
        "the file is sorted"
    );
    assert_eq!(multiset(&on_disk), before, "a permutation of the input");
    drop(on_disk);
    assert_eq!(leftovers(dir.path(), &["big.npy"]), Vec::<String>::new());
}

/// A file moved away and another put at its path while the array is open: the sorted data
/// must not replace the stranger, and a path through a symbolic link sorts the link's target
/// and keeps the link.
#[test]
fn a_replaced_path_is_not_overwritten_and_a_link_is_kept() {
    let (dir, path, data) = fixture();
    let mut a = MappedArrayMut::<u64>::open(&path).unwrap();
    let moved = dir.path().join("moved.npy");
    std::fs::rename(&path, &moved).unwrap();
    let stranger: Vec<u64> = (0..10u64).collect();
    write(&path, &stranger);
    let e = sort_array(&mut a, &opts(TINY)).unwrap_err();
    assert!(
        matches!(&e, Error::FileReplaced { path: p } if p == &path),
        "{e}"
    );
    assert_eq!(&a[..], &data[..], "the array is untouched");
    assert_eq!(&MappedArray::<u64>::open(&path).unwrap()[..], &stranger[..]);
    drop(a);
    assert_eq!(&MappedArray::<u64>::open(&moved).unwrap()[..], &data[..]);
    assert_eq!(
        leftovers(dir.path(), &["x.npy", "moved.npy"]),
        Vec::<String>::new()
    );

    let link = dir.path().join("link.npy");
    std::os::unix::fs::symlink(&moved, &link).unwrap();
    let mut a = MappedArrayMut::<u64>::open(&link).unwrap();
    assert!(sort_array(&mut a, &opts(TINY)).unwrap().external);
    assert_sorted(&a, &data, "through a link");
    assert_eq!(a.path(), Some(link.as_path()), "the array keeps its path");
    drop(a);
    assert!(std::fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
    assert_sorted(
        &MappedArray::<u64>::open(&moved).unwrap(),
        &data,
        "the link's target",
    );
}
