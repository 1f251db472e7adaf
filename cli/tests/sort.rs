//! `outcore sort` tests: every dtype against `np.sort`, raw files and records, `--verify`,
//! every bad input with its exit status and message, and SIGINT mid-sort.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;
use crate::require_numpy;

/// Makes a 1-D `.npy` file of every dtype with numpy: duplicates, the extremes, and for
/// floats NaN, ±inf, -0.0 and 0.0. `dir/<dtype>.npy`, `n` elements each.
fn numpy_files(dir: &Path, n: usize) {
    python(
        r#"
d, n = sys.argv[1], int(sys.argv[2])
rng = np.random.default_rng(7)
for name in sys.argv[3:]:
    dt = np.dtype(name)
    if dt.kind == 'f':
        x = (rng.standard_normal(n) * 1000).astype(dt)
        x[::997] = np.nan
        x[1], x[2], x[3], x[4] = np.inf, -np.inf, -0.0, 0.0
        x[5] = np.finfo(dt).max
        x[6] = np.finfo(dt).min
    else:
        info = np.iinfo(dt)
        x = rng.integers(info.min, info.max, n, dtype=dt, endpoint=True)
        x[1], x[2] = info.min, info.max
    x[100:200] = x[300:400]        # duplicates
    x[::11] = x[0]
    np.save(f'{d}/{name}.npy', x)
"#,
        &[&[s(dir), &n.to_string()][..], &DTYPES.map(|(_, np)| np)[..]].concat(),
    );
}

/// Checks with numpy that `out` is `np.sort(inp)`: same dtype and shape, equal (NaN equal
/// to NaN), and the same multiset of bit patterns (so -0.0 and NaN payloads are kept).
/// `raw` names a dtype for headerless files.
fn check_sorted(inp: &Path, out: &Path, raw: Option<&str>) {
    let got = python(
        r#"
inp, out, raw = sys.argv[1], sys.argv[2], sys.argv[3]
if raw == '-':
    x, y = np.load(inp), np.load(out)
else:
    x, y = np.fromfile(inp, dtype=raw), np.fromfile(out, dtype=raw)
assert y.dtype == x.dtype, (x.dtype, y.dtype)
assert y.shape == x.shape, (x.shape, y.shape)
nan = x.dtype.kind == 'f'
assert np.array_equal(y, np.sort(x), equal_nan=nan), 'not np.sort(x)'
u = np.dtype(f'u{x.dtype.itemsize}')
assert np.array_equal(np.sort(x.view(u)), np.sort(y.view(u))), 'not a permutation'
print('ok')
"#,
        &[s(inp), s(out), raw.unwrap_or("-")],
    );
    assert_eq!(got.trim(), "ok", "{}", out.display());
}

#[test]
fn every_dtype_sorts_like_np_sort_through_runs() {
    require_numpy!();
    let dir = tmpdir();
    numpy_files(dir.path(), 100_000);
    for (name, np_name) in DTYPES {
        let inp = p(dir.path(), &format!("{np_name}.npy"));
        let out = p(dir.path(), &format!("{name}.sorted.npy"));
        // 64 KiB forces the external sort: runs, and merge levels for the wide types.
        let r = outcore(&["sort", s(&inp), s(&out), "--memory", "64KiB"]).ok();
        assert!(
            r.stdout.contains("external,") && r.stdout.contains("runs"),
            "{name}: {}",
            r.stdout
        );
        check_sorted(&inp, &out, None);
    }
}

#[test]
fn in_memory_and_in_place_sorts() {
    require_numpy!();
    let dir = tmpdir();
    numpy_files(dir.path(), 5_000);
    let inp = p(dir.path(), "float64.npy");
    let orig = p(dir.path(), "orig.npy");
    std::fs::copy(&inp, &orig).unwrap();
    let out = p(dir.path(), "out.npy");
    let r = outcore(&["sort", s(&inp), s(&out)]).ok();
    assert!(r.stdout.contains("in memory"), "{}", r.stdout);
    check_sorted(&inp, &out, None);
    // In place needs --force, then replaces the input with its sorted self.
    let r = outcore(&["sort", s(&inp), s(&inp), "--memory", "64KiB"]);
    assert_eq!(r.code, Some(2), "{}", r.stderr);
    assert!(r.stderr.contains("--force"), "{}", r.stderr);
    outcore(&[
        "sort",
        s(&inp),
        s(&inp),
        "--memory",
        "64KiB",
        "--force",
        "--verify",
    ])
    .ok();
    check_sorted(&orig, &inp, None);
    assert_eq!(
        listing(dir.path()).len(),
        DTYPES.len() + 2,
        "{:?}",
        listing(dir.path())
    );
}

#[test]
fn raw_files_sort_with_their_dtype() {
    require_numpy!();
    let dir = tmpdir();
    for (name, np_name) in [("i16", "int16"), ("f32", "float32"), ("u64", "uint64")] {
        let inp = p(dir.path(), &format!("{name}.raw"));
        python(
            r#"
rng = np.random.default_rng(1)
x = (rng.standard_normal(30_000) * 30_000).astype(sys.argv[2])
if x.dtype.kind == 'f':
    x[::101] = np.nan
    x[3] = -0.0
x.tofile(sys.argv[1])
"#,
            &[s(&inp), np_name],
        );
        let out = p(dir.path(), &format!("{name}.sorted.raw"));
        outcore(&[
            "sort",
            s(&inp),
            s(&out),
            "--dtype",
            name,
            "--memory",
            "64KiB",
        ])
        .ok();
        check_sorted(&inp, &out, Some(np_name));
        // numpy's spelling of the dtype works too.
        let out2 = p(dir.path(), &format!("{name}.sorted2.raw"));
        outcore(&["sort", s(&inp), s(&out2), "--dtype", np_name]).ok();
        assert_eq!(std::fs::read(&out).unwrap(), std::fs::read(&out2).unwrap());
    }
}

#[test]
fn records_sort_by_their_key() {
    require_numpy!();
    let dir = tmpdir();
    let inp = p(dir.path(), "recs.dat");
    let out = p(dir.path(), "recs.sorted");
    // 5000 records of 100 bytes: random keys with many duplicates, random payloads.
    python(
        r#"
rng = np.random.default_rng(5)
r = rng.integers(0, 256, (5000, 100), dtype=np.uint8)
r[::3, :10] = r[1, :10]
r[::7, :9] = r[2, :9]
r.tofile(sys.argv[1])
"#,
        &[s(&inp)],
    );
    let r = outcore(&[
        "sort",
        s(&inp),
        s(&out),
        "--record-size",
        "100",
        "--key-size",
        "10",
        "--memory",
        "64KiB",
        "--verify",
    ])
    .ok();
    assert!(r.stdout.contains("records of 100 bytes"), "{}", r.stdout);
    let got = python(
        r#"
x = open(sys.argv[1], 'rb').read()
y = open(sys.argv[2], 'rb').read()
xs = [x[i:i + 100] for i in range(0, len(x), 100)]
ys = [y[i:i + 100] for i in range(0, len(y), 100)]
assert len(xs) == len(ys)
assert [r[:10] for r in ys] == sorted(r[:10] for r in xs), 'keys not in order'
assert sorted(xs) == sorted(ys), 'not a permutation of the records'
print('ok')
"#,
        &[s(&inp), s(&out)],
    );
    assert_eq!(got.trim(), "ok");
}

#[test]
fn verify_reports_sorted_and_permutation() {
    require_numpy!();
    let dir = tmpdir();
    numpy_files(dir.path(), 10_000);
    let inp = p(dir.path(), "int32.npy");
    let out = p(dir.path(), "out.npy");
    let r = outcore(&["sort", s(&inp), s(&out), "--memory", "64KiB", "--verify"]).ok();
    assert!(
        r.stdout
            .contains("sorted: yes, permutation of the input (checksum): yes"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("verified in"), "{}", r.stdout);
    for what in ["run formation", "final merge", "total", "MB/s", "peak RSS"] {
        assert!(r.stdout.contains(what), "{what}: {}", r.stdout);
    }
    // Without --verify the report says it did not check.
    std::fs::remove_file(&out).unwrap();
    let r = outcore(&["sort", s(&inp), s(&out)]).ok();
    assert!(r.stdout.contains("not verified"), "{}", r.stdout);
}

#[test]
fn a_huge_thread_count_still_sorts() {
    require_numpy!();
    let dir = tmpdir();
    numpy_files(dir.path(), 200_000);
    let inp = p(dir.path(), "uint64.npy");
    let out = p(dir.path(), "out.npy");
    outcore(&[
        "sort",
        s(&inp),
        s(&out),
        "--memory",
        "256KiB",
        "--threads",
        "1000",
    ])
    .ok();
    check_sorted(&inp, &out, None);
}

#[test]
fn help_has_an_example() {
    let r = outcore(&["sort", "--help"]).ok();
    assert!(
        r.stdout.contains("outcore sort x.npy sorted.npy"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("--record-size"), "{}", r.stdout);
}

/// Every bad input: its exit status, a one-line message saying what is wrong, and no file
/// written.
#[test]
fn bad_inputs_are_refused_with_their_status_and_message() {
    require_numpy!();
    let dir = tmpdir();
    let d = dir.path();
    python(
        r#"
d = sys.argv[1]
np.save(f'{d}/f8.npy', np.arange(100, dtype='f8'))
np.save(f'{d}/2d.npy', np.zeros((10, 10), dtype='i4'))
np.arange(100, dtype='<u4').tofile(f'{d}/raw.u32')
open(f'{d}/odd.raw', 'wb').write(bytes(401))
open(f'{d}/old.npy', 'wb').write(b'old contents')
open(f'{d}/a-file', 'wb').write(b'')
"#,
        &[s(d)],
    );
    let f8 = p(d, "f8.npy");
    let out = p(d, "out.npy");
    let old = p(d, "old.npy");
    let a_file = p(d, "a-file");
    let missing = p(d, "missing.npy");
    let (f8, o) = (s(&f8), s(&out));
    let (raw, odd, two_d, nowhere) = (
        p(d, "raw.u32"),
        p(d, "odd.raw"),
        p(d, "2d.npy"),
        p(d, "nowhere"),
    );
    let (raw, odd, two_d, nowhere) = (s(&raw), s(&odd), s(&two_d), s(&nowhere));
    let tmp_msg = format!("--tmp {}: not a directory", s(&a_file));
    let cases: Vec<(Vec<&str>, i32, &str)> = vec![
        (
            vec!["sort", s(&missing), o],
            1,
            "missing.npy: no such file or directory",
        ),
        (
            vec!["sort", f8, o, "--dtype", "u8"],
            2,
            "the .npy header says the file holds f64, not u8",
        ),
        (
            vec!["sort", raw, o],
            2,
            "not a .npy file; for a raw (headerless) file give its element type with --dtype",
        ),
        (
            vec!["sort", odd, o, "--dtype", "u32"],
            1,
            "file size 401 is not a multiple of the element size 4",
        ),
        (
            vec!["sort", two_d, o],
            1,
            "a 2-D array of shape [10, 10]; sort takes 1-D arrays",
        ),
        (
            vec!["sort", f8, s(&old)],
            2,
            "old.npy: already exists; pass --force to replace it",
        ),
        (
            vec!["sort", f8, o, "--tmp", s(&a_file), "--memory", "64KiB"],
            2,
            &tmp_msg,
        ),
        (
            vec!["sort", f8, o, "--tmp", nowhere],
            2,
            "nowhere: no such directory",
        ),
        (
            vec!["sort", f8, o, "--dtype", "u17"],
            2,
            "unknown dtype \"u17\"",
        ),
        (
            vec!["sort", raw, o, "--record-size", "100"],
            2,
            "the following required arguments were not provided: --key-size",
        ),
        (vec!["sort", raw, o, "--key-size", "10"], 2, "--record-size"),
        (
            vec!["sort", raw, o, "--record-size", "40", "--key-size", "4"],
            2,
            "records of 40 bytes with 4-byte keys are not built in; supported layouts \
             (size/key): 100/10, 16/8, 32/8, 64/16",
        ),
        (
            vec!["sort", f8, o, "--record-size", "100", "--key-size", "10"],
            2,
            "is a .npy file; --record-size/--key-size are for raw record files",
        ),
        (vec!["sort", f8, o, "--memory", "lots"], 2, "unknown unit"),
        (vec!["sort", f8, o, "--memory", "16"], 1, "too small"),
        (
            vec!["sort", f8, o, "--threads", "0"],
            2,
            "--threads must be at least 1",
        ),
        (vec!["sort", f8], 2, "required arguments were not provided"),
        (
            vec!["sort", s(d), o],
            1,
            "is a directory, not an array file",
        ),
    ];
    let before = listing(d);
    for (args, code, message) in &cases {
        let r = outcore(args);
        assert_eq!(r.code, Some(*code), "{args:?}: {}", r.stderr);
        assert!(
            r.stderr.contains(message),
            "{args:?}: expected {message:?} in:\n{}",
            r.stderr
        );
        assert!(
            r.stderr.starts_with("outcore: error: ") && r.stderr.lines().count() == 1,
            "{args:?}: one line: {}",
            r.stderr
        );
        assert!(r.stdout.is_empty(), "{args:?}: {}", r.stdout);
        assert_eq!(listing(d), before, "{args:?} left a file");
    }
    assert_eq!(std::fs::read(&old).unwrap(), b"old contents");
}

/// Spawns `outcore ARGS`, waits until `ready()` (polling; at most 120 s), sends SIGINT and
/// returns the finished run.
pub(crate) fn interrupt_when(args: &[&str], ready: impl Fn() -> bool) -> Run {
    let child = Command::new(OUTCORE)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run outcore");
    let start = Instant::now();
    while !ready() {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "outcore {args:?} never got there"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let pid = libc::pid_t::try_from(child.id()).expect("a pid");
    // SAFETY: kill has no memory-safety preconditions; pid is our own child, not yet waited.
    let rc = unsafe { libc::kill(pid, libc::SIGINT) };
    assert_eq!(rc, 0, "kill");
    child.wait_with_output().expect("wait for outcore").into()
}

/// Whether `dir` holds an entry whose name contains `pat`.
pub(crate) fn has_entry(dir: &Path, pat: &str) -> bool {
    listing(dir).iter().any(|n| n.contains(pat))
}

#[test]
fn sigint_mid_sort_leaves_no_temporary_file_and_no_output() {
    require_numpy!();
    let dir = tmpdir();
    let tmp = p(dir.path(), "tmp");
    std::fs::create_dir(&tmp).unwrap();
    let inp = p(dir.path(), "big.npy");
    // 96 MiB of u64: long enough under a 1 MiB budget to be caught mid-sort.
    python(
        "np.save(sys.argv[1], np.random.default_rng(0).integers(0, 2**63, 12 << 20, dtype=np.uint64))",
        &[s(&inp)],
    );
    let out = p(dir.path(), "out.npy");
    let args = [
        "sort",
        s(&inp),
        s(&out),
        "--memory",
        "1MiB",
        "--tmp",
        s(&tmp),
        "--verify",
    ];
    let r = interrupt_when(&args, || has_entry(&tmp, ".outcore-sort-"));
    assert_eq!(r.code, Some(130), "{}", r.stderr);
    assert_eq!(
        r.stderr.trim(),
        "outcore: error: interrupted; temporary files removed"
    );
    assert!(listing(&tmp).is_empty(), "{:?}", listing(&tmp));
    assert_eq!(listing(dir.path()), ["big.npy", "tmp"]);
}
