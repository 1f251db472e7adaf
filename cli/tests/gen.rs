//! `outcore gen` tests: numpy reads what it writes (every dtype, its shape, the printed
//! checksum recomputed in numpy), records, determinism over threads and windows, `--force`,
//! every bad argument with its exit status and message, stale temporary files, and SIGINT.

use std::process::Command;

use outcore::datasets::{Checksum, Distribution, Generate, Generator, Record100, BLOCK_LEN};
use outcore::ParOptions;

use crate::common::*;
use crate::require_numpy;
use crate::sort::{has_entry, interrupt_when};

/// Runs `outcore gen ARGS --quiet`; returns (exit status, stdout, stderr).
fn run(args: &[&str]) -> (Option<i32>, String, String) {
    let r = outcore(&[&["gen"][..], args, &["--quiet"]].concat());
    (r.code, r.stdout, r.stderr)
}

/// Runs `outcore gen`, which must succeed; returns the checksum it printed last.
fn run_ok(args: &[&str]) -> Checksum {
    let (code, stdout, stderr) = run(args);
    assert_eq!(code, Some(0), "outcore gen {args:?} failed:\n{stderr}");
    let last = stdout.lines().last().unwrap_or_default();
    let hex = last
        .strip_prefix("checksum: ")
        .unwrap_or_else(|| panic!("no checksum line in:\n{stdout}"));
    Checksum(u64::from_str_radix(hex, 16).expect("hex checksum"))
}

/// The checksum, written out in numpy as datasets/README.md gives it: an oracle
/// independent of the Rust code. Defines `sum64(bytes) -> int`.
const NP_SUM64: &str = r#"
M = (1 << 64) - 1
def fmix(z):
    z = ((z ^ (z >> 30)) * 0xbf58476d1ce4e5b9) & M
    z = ((z ^ (z >> 27)) * 0x94d049bb133111eb) & M
    return z ^ (z >> 31)
def sum64(b):
    w = np.frombuffer(b + bytes(-len(b) % 8), dtype='<u8')
    z = w + np.arange(1, len(w) + 1, dtype=np.uint64) * np.uint64(0x9e3779b97f4a7c15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xbf58476d1ce4e5b9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94d049bb133111eb)
    z = z ^ (z >> np.uint64(31))
    return fmix(int(z.sum(dtype=np.uint64)) ^ len(b))
"#;

fn fill_checksum<T: Generate>(dist: Distribution, seed: u64, n: usize) -> Checksum {
    let mut v = vec![T::zeroed(); n];
    Generator::new(dist, seed)
        .fill(&mut v, &ParOptions::new())
        .unwrap()
}

#[test]
fn numpy_reads_every_generated_npy_with_its_dtype_and_shape() {
    require_numpy!();
    let dir = tmpdir();
    // Every numeric dtype; distributions and shapes rotate so each appears.
    let cases: &[(&str, &str, &str, &[usize])] = &[
        ("u8", "uniform", "uint8", &[70_000]),
        ("u16", "sorted", "uint16", &[300, 250]),
        ("u32", "reverse", "uint32", &[66_000]),
        ("u64", "nearly-sorted", "uint64", &[1000, 70]),
        ("i8", "few-unique", "int8", &[5, 6, 7]),
        ("i16", "zipf", "int16", &[12_345]),
        ("i32", "equal", "int32", &[17, 1]),
        ("i64", "uniform", "int64", &[65_537]),
        ("f32", "normal", "float32", &[1000, 3]),
        ("f64", "sorted", "float64", &[0]),
        ("f64", "uniform", "float64", &[100_000]),
    ];
    let mut script = String::from(NP_SUM64);
    script.push_str(
        r#"
for path in sys.argv[1:]:
    a = np.load(path)
    f = a.ravel()
    prop = 'sorted' if np.all(f[1:] >= f[:-1]) else 'reverse' if np.all(f[1:] <= f[:-1]) else '-'
    print(a.dtype.name, ','.join(map(str, a.shape)), '%016x' % sum64(a.tobytes()), len(np.unique(f)), prop)
"#,
    );
    let mut paths = vec![];
    let mut expected = vec![];
    for (i, (dtype, dist, np_dtype, shape)) in cases.iter().enumerate() {
        let path = dir.path().join(format!("{i}-{dtype}-{dist}.npy"));
        let shape_arg = shape
            .iter()
            .map(|d| d.to_string())
            .collect::<Vec<_>>()
            .join(",");
        let printed = run_ok(&[
            "--dtype",
            dtype,
            "--dist",
            dist,
            "--shape",
            &shape_arg,
            "--seed",
            "5",
            "--out",
            s(&path),
        ]);
        // The file holds exactly what the library fills a Vec with.
        let n: usize = shape.iter().product();
        let dist_v: Distribution = dist.parse().unwrap();
        let d = outcore::DType::from_name(dtype).unwrap();
        let in_memory = outcore::with_dtype!(d, T => fill_checksum::<T>(dist_v, 5, n));
        assert_eq!(printed, in_memory, "{dtype} {dist}");
        paths.push(s(&path).to_owned());
        expected.push((np_dtype, shape, printed, dist));
    }
    let args: Vec<&str> = paths.iter().map(|s| s.as_str()).collect();
    let out = python(&script, &args);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), cases.len(), "{out}");
    for (line, (np_dtype, shape, sum, dist)) in lines.iter().zip(&expected) {
        let f: Vec<&str> = line.split(' ').collect();
        let shape_str = shape
            .iter()
            .map(|d| d.to_string())
            .collect::<Vec<_>>()
            .join(",");
        assert_eq!(f[0], **np_dtype, "{line}");
        assert_eq!(f[1], shape_str, "{line}");
        assert_eq!(
            f[2],
            sum.to_string(),
            "numpy's checksum of the data: {line}"
        );
        let n: usize = shape.iter().product();
        match **dist {
            "sorted" => assert_eq!(f[4], "sorted", "{line}"),
            "reverse" => assert_eq!(f[4], "reverse", "{line}"),
            "few-unique" => assert_eq!(f[3], "16", "{line}"),
            "equal" => assert_eq!(f[3], "1", "{line}"),
            "nearly-sorted" | "uniform" if n > 1000 => assert_eq!(f[4], "-", "{line}"),
            _ => {}
        }
    }
}

#[test]
fn record_files_carry_their_index_and_the_printed_checksum() {
    require_numpy!();
    let dir = tmpdir();
    let path = dir.path().join("records.dat");
    let n = BLOCK_LEN + 10;
    let printed = run_ok(&[
        "--dtype",
        "record100",
        "--dist",
        "nearly-sorted",
        "--count",
        &n.to_string(),
        "--out",
        s(&path),
    ]);
    assert_eq!(
        std::fs::metadata(&path).unwrap().len(),
        100 * n as u64,
        "raw by default: no header"
    );
    assert_eq!(
        printed,
        fill_checksum::<Record100>(Distribution::NearlySorted, 0, n)
    );
    let mut script = String::from(NP_SUM64);
    script.push_str(
        r#"
raw = open(sys.argv[1], 'rb').read()
r = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 100)
idx = np.array([int(bytes(x).decode('ascii'), 16) for x in r[:, 12:44]])
keys = [bytes(k) for k in r[:, :10]]
print(len(r), int(np.all(idx == np.arange(len(r)))), int(keys == sorted(keys)), '%016x' % sum64(raw))
"#,
    );
    let out = python(&script, &[s(&path)]);
    assert_eq!(out.trim(), format!("{n} 1 0 {printed}"));
}

#[test]
fn the_program_writes_identical_files_on_1_and_2_threads_and_in_windows() {
    let dir = tmpdir();
    let n = (2 * BLOCK_LEN + 3).to_string();
    for (dtype, dist) in [
        ("f32", "nearly-sorted"),
        ("i64", "zipf"),
        ("record100", "uniform"),
    ] {
        let a = dir.path().join(format!("{dtype}-1"));
        let b = dir.path().join(format!("{dtype}-2"));
        let common = [
            "--dtype", dtype, "--dist", dist, "--count", &n, "--seed", "99",
        ];
        let sa = run_ok(&[&common[..], &["--threads", "1", "--out", s(&a)]].concat());
        let sb = run_ok(&[&common[..], &["--threads", "2", "--out", s(&b)]].concat());
        // A memory budget writes the same bytes a window at a time.
        let c = dir.path().join(format!("{dtype}-windowed"));
        let budget = ["--memory-budget", "300KiB", "--out", s(&c)];
        let sc = run_ok(&[&common[..], &budget].concat());
        assert_eq!(sa, sb);
        assert_eq!(sa, sc);
        let bytes = std::fs::read(&a).unwrap();
        assert!(
            bytes == std::fs::read(&b).unwrap(),
            "{dtype} {dist}: 1 vs 2 threads"
        );
        assert!(
            bytes == std::fs::read(&c).unwrap(),
            "{dtype} {dist}: windowed"
        );
    }
}

#[test]
fn an_existing_output_is_replaced_only_with_force_and_on_success() {
    let dir = tmpdir();
    let path = dir.path().join("out.npy");
    let p = s(&path);
    std::fs::write(&path, b"old").unwrap();
    // Without --force: refused, untouched.
    let (code, _, stderr) = run(&[
        "--dtype", "u8", "--dist", "uniform", "--count", "9", "--out", p,
    ]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("already exists; pass --force to replace it"),
        "{stderr}"
    );
    assert_eq!(std::fs::read(&path).unwrap(), b"old");
    // With --force but a failing run: untouched.
    let (code, _, _) = run(&[
        "--dtype", "u8", "--dist", "normal", "--count", "9", "--out", p, "--force",
    ]);
    assert_eq!(code, Some(2));
    assert_eq!(
        std::fs::read(&path).unwrap(),
        b"old",
        "a failed run leaves it alone"
    );
    run_ok(&[
        "--dtype", "u8", "--dist", "uniform", "--count", "9", "--out", p, "--force",
    ]);
    let a = outcore::MappedArray::<u8>::open(&path).unwrap();
    assert_eq!(a.shape(), &[9]);
    assert_eq!(listing(dir.path()), ["out.npy"]);
}

/// Each bad argument: its exit status, a one-line message that says what is wrong, and no
/// file (not even a temporary one) in the output directory.
#[test]
fn bad_arguments_are_clear_errors_and_write_nothing() {
    let dir = tmpdir();
    let out = dir.path().join("out.npy");
    let o = s(&out);
    let a_file = dir.path().join("a-file");
    std::fs::create_dir(dir.path().join("sub")).unwrap();
    let sub = dir.path().join("sub");
    let missing = dir.path().join("missing/out.npy");
    let under_file = a_file.join("out.npy");
    let cases: &[(&[&str], i32, &str)] = &[
        (
            &[
                "--dtype", "f16", "--dist", "uniform", "--count", "9", "--out", o,
            ],
            2,
            "unknown dtype \"f16\"",
        ),
        (
            &[
                "--dtype", "f64", "--dist", "gauss", "--count", "9", "--out", o,
            ],
            2,
            "unknown distribution \"gauss\"",
        ),
        (
            &[
                "--dtype", "i32", "--dist", "normal", "--count", "9", "--out", o,
            ],
            2,
            "needs a float dtype",
        ),
        (
            &[
                "--dtype", "f64", "--dist", "uniform", "--size", "1001", "--out", o,
            ],
            2,
            "--size 1001 bytes is not a multiple of the f64 element size (8 bytes)",
        ),
        (
            &[
                "--dtype", "f64", "--dist", "uniform", "--size", "4XB", "--out", o,
            ],
            2,
            "unknown unit",
        ),
        (
            &[
                "--dtype", "u8", "--dist", "uniform", "--shape", "10,10", "--count", "99", "--out",
                o,
            ],
            2,
            "--shape 10,10 holds 100 elements, but --count is 99",
        ),
        (
            &[
                "--dtype", "u16", "--dist", "uniform", "--shape", "10,10", "--size", "100",
                "--out", o,
            ],
            2,
            "--size holds 50 u16 elements",
        ),
        (
            &[
                "--dtype", "u8", "--dist", "uniform", "--shape", "10,x", "--out", o,
            ],
            2,
            "is not a shape",
        ),
        (
            &[
                "--dtype", "u8", "--dist", "uniform", "--shape", "10,10", "--format", "raw",
                "--out", o,
            ],
            2,
            "a raw file has no shape",
        ),
        (
            &[
                "--dtype",
                "record100",
                "--dist",
                "uniform",
                "--count",
                "9",
                "--format",
                "npy",
                "--out",
                o,
            ],
            2,
            "record100 has no .npy dtype",
        ),
        (
            &["--dtype", "u8", "--dist", "uniform", "--out", o],
            2,
            "give the dataset's length",
        ),
        (
            &[
                "--dtype", "u8", "--dist", "uniform", "--count", "9", "--size", "9", "--out", o,
            ],
            2,
            "cannot be used with",
        ),
        (
            &[
                "--dtype", "u8", "--dist", "uniform", "--count", "-9", "--out", o,
            ],
            2,
            "unexpected argument",
        ),
        (
            &[
                "--dtype",
                "u64",
                "--dist",
                "uniform",
                "--count",
                "4611686018427387904",
                "--out",
                o,
            ],
            2,
            "too many bytes",
        ),
        (
            &[
                "--dtype", "f64", "--dist", "uniform", "--size", "1000TiB", "--out", o,
            ],
            1,
            "not enough free disk space",
        ),
        (
            &[
                "--dtype",
                "u8",
                "--dist",
                "uniform",
                "--count",
                "9",
                "--out",
                s(&missing),
            ],
            2,
            "no such directory",
        ),
        (
            &[
                "--dtype",
                "u8",
                "--dist",
                "uniform",
                "--count",
                "9",
                "--out",
                s(&under_file),
            ],
            2,
            "not a directory",
        ),
        (
            &[
                "--dtype",
                "u8",
                "--dist",
                "uniform",
                "--count",
                "9",
                "--out",
                s(&sub),
            ],
            2,
            "is a directory",
        ),
        (
            &["--dtype", "u8", "--dist", "uniform", "--count", "9"],
            2,
            "required arguments were not provided: --out",
        ),
    ];
    std::fs::write(&a_file, b"").unwrap();
    for (args, code, message) in cases {
        let (got, stdout, stderr) = run(args);
        assert_eq!(got, Some(*code), "{args:?}:\n{stdout}{stderr}");
        assert!(
            stderr.contains(message),
            "{args:?}: expected {message:?} in:\n{stderr}"
        );
        assert!(
            stderr.starts_with("outcore: error: ") && stderr.lines().count() == 1,
            "{args:?}: one line: {stderr}"
        );
        assert_eq!(
            listing(dir.path()),
            ["a-file", "sub"],
            "{args:?} left a file"
        );
        assert!(listing(&sub).is_empty());
    }
}

#[test]
fn an_unwritable_directory_is_a_clear_error() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tmpdir();
    let locked = dir.path().join("locked");
    std::fs::create_dir(&locked).unwrap();
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o555)).unwrap();
    // root ignores permission bits; the immutable attribute stops it.
    let probe = locked.join("probe");
    let mut immutable = false;
    if std::fs::write(&probe, b"").is_ok() {
        std::fs::remove_file(&probe).unwrap();
        immutable = Command::new("chattr")
            .arg("+i")
            .arg(&locked)
            .status()
            .is_ok_and(|s| s.success());
        if !immutable {
            eprintln!("skipped: cannot make a directory unwritable here (root without chattr)");
            return;
        }
    }
    let out = locked.join("out.npy");
    let result = run(&[
        "--dtype",
        "u8",
        "--dist",
        "uniform",
        "--count",
        "9",
        "--out",
        s(&out),
    ]);
    if immutable {
        let _ = Command::new("chattr").arg("-i").arg(&locked).status();
    }
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o755)).unwrap();
    let (code, _, stderr) = result;
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("is not writable (permission denied)"),
        "{stderr}"
    );
    assert!(listing(&locked).is_empty());
}

#[test]
fn a_run_removes_the_temporary_files_of_killed_runs_but_not_of_live_ones() {
    let dir = tmpdir();
    let out = dir.path().join("out.npy");
    let dead = dir.path().join(".out.npy.outcore-tmp-4194399-0");
    let live = dir.path().join(".other.npy.outcore-tmp-4194399-1");
    std::fs::write(&dead, b"left by a killed run").unwrap();
    std::fs::write(&live, b"being written").unwrap();
    // A live writer holds its temporary file's lock.
    let held = std::fs::File::open(&live).unwrap();
    held.lock().unwrap();
    let (code, _, stderr) = run(&[
        "--dtype",
        "u8",
        "--dist",
        "uniform",
        "--count",
        "9",
        "--out",
        s(&out),
    ]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stderr.contains("removed 1 temporary file"), "{stderr}");
    assert_eq!(
        listing(dir.path()),
        [".other.npy.outcore-tmp-4194399-1", "out.npy"]
    );
    drop(held);
}

#[test]
fn help_has_an_example() {
    let r = outcore(&["gen", "--help"]).ok();
    assert!(r.stdout.contains("outcore gen --dtype"), "{}", r.stdout);
    assert!(r.stdout.contains("checksum: "), "{}", r.stdout);
}

#[test]
fn sigint_mid_generation_leaves_no_temporary_file_and_no_output() {
    let dir = tmpdir();
    let out = dir.path().join("big.npy");
    // 512 MiB: many windows of 64 MiB, each a point where Ctrl-C is honoured.
    let args = [
        "gen",
        "--dtype",
        "u64",
        "--dist",
        "uniform",
        "--size",
        "512MiB",
        "--out",
        s(&out),
    ];
    let r = interrupt_when(&args, || has_entry(dir.path(), ".outcore-tmp-"));
    assert_eq!(r.code, Some(130), "{}", r.stderr);
    assert_eq!(
        r.stderr.trim(),
        "outcore: error: interrupted; temporary files removed"
    );
    assert!(r.stdout.is_empty(), "{}", r.stdout);
    assert!(listing(dir.path()).is_empty(), "{:?}", listing(dir.path()));
}
