//! `outcore convert` tests, against numpy's `astype` and `np.asfortranarray`.

use std::path::Path;
use std::time::{Duration, Instant};

#[allow(unused_imports)]
use crate::common::*;
use crate::require_numpy;

/// No output and no temporary file left in `dir` besides `keep`.
fn only(dir: &Path, keep: &[&str]) {
    let mut want: Vec<String> = keep.iter().map(|s| s.to_string()).collect();
    want.sort();
    assert_eq!(listing(dir), want);
}

/// Checks `out` against numpy: `np.load(out)` equals `np.load(src).astype(dtype)` (or
/// `src_raw` read with `np.fromfile`), has that dtype, and its memory order is `order`.
const NP_CHECK: &str = "
ok = []
for line in sys.argv[1:]:
    src, out, dtype, order = line.split('|')
    a = np.load(src)
    want = a.astype(dtype)
    b = np.load(out)
    good = (b.dtype == np.dtype(dtype) and b.shape == want.shape
            and np.array_equal(b, want)
            and (b.ndim < 2 or (b.flags.f_contiguous if order == 'F' else b.flags.c_contiguous)))
    if not good:
        ok.append('%s -> %s: dtype %s order F=%s equal=%s' % (src, out, b.dtype, b.flags.f_contiguous,
                  b.shape == want.shape and np.array_equal(b, want)))
print(json.dumps(ok))
";

fn np_check(lines: &[String]) {
    let args: Vec<&str> = lines.iter().map(String::as_str).collect();
    let bad: Vec<String> = serde_json::from_str(&python(NP_CHECK, &args)).expect("json");
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}

#[test]
fn every_dtype_pair_and_order_matches_astype() {
    require_numpy!();
    let dir = tmpdir();
    // Values that fit every type (0..=100, fractional for floats, so float -> int truncates).
    let names: Vec<&str> = DTYPES.iter().map(|(_, n)| *n).collect();
    python(
        "d = sys.argv[1]
for i, t in enumerate(sys.argv[2:]):
    a = (np.arange(7 * 9).reshape(7, 9) * 1.625 % 100).astype(t)
    if i % 2:
        a = np.asfortranarray(a)
    np.save('%s/%s.npy' % (d, t), a)",
        &[&[s(dir.path())], names.as_slice()].concat(),
    );
    let mut checks = Vec::new();
    for (si, (_, sn)) in DTYPES.iter().enumerate() {
        let src = p(dir.path(), &format!("{sn}.npy"));
        let src_f = si % 2 == 1;
        for (ti, (tshort, tn)) in DTYPES.iter().enumerate() {
            let out = p(dir.path(), &format!("{sn}-to-{tn}.npy"));
            let mut args = vec!["convert", s(&src), s(&out), "--dtype", tshort];
            let order = match (si + ti) % 3 {
                0 => {
                    args.extend(["--order", "F"]);
                    "F"
                }
                1 => {
                    args.extend(["--order", "C"]);
                    "C"
                }
                _ if src_f => "F",
                _ => "C",
            };
            outcore(&args).ok();
            checks.push(format!("{}|{}|{tn}|{order}", s(&src), s(&out)));
        }
    }
    np_check(&checks);
}

#[test]
fn order_changes_both_ways_for_every_dtype() {
    require_numpy!();
    let dir = tmpdir();
    let mut checks = Vec::new();
    for (short, name) in DTYPES {
        let c = p(dir.path(), &format!("{name}-c.npy"));
        python(
            &format!(
                "np.save(sys.argv[1], (np.arange(13 * 6).reshape(13, 6) % 120).astype(np.{name}))"
            ),
            &[s(&c)],
        );
        let f = p(dir.path(), &format!("{name}-f.npy"));
        let back = p(dir.path(), &format!("{name}-back.npy"));
        outcore(&["convert", s(&c), s(&f), "--order", "F"]).ok();
        outcore(&["convert", s(&f), s(&back), "--order", "c"]).ok();
        checks.push(format!("{}|{}|{name}|F", s(&c), s(&f)));
        checks.push(format!("{}|{}|{name}|C", s(&c), s(&back)));
        let _ = short;
    }
    np_check(&checks);
    // F -> C of a numpy-made Fortran array, and 1-D arrays (no order: accepted, unchanged).
    let f = p(dir.path(), "np-f.npy");
    let one = p(dir.path(), "one.npy");
    python(
        "np.save(sys.argv[1], np.asfortranarray(np.arange(35.0).reshape(5, 7)))\nnp.save(sys.argv[2], np.arange(10))",
        &[s(&f), s(&one)],
    );
    let c = p(dir.path(), "np-c.npy");
    let one_f = p(dir.path(), "one-f.npy");
    outcore(&["convert", s(&f), s(&c), "--order", "C"]).ok();
    outcore(&["convert", s(&one), s(&one_f), "--order", "F"]).ok();
    np_check(&[
        format!("{}|{}|float64|C", s(&f), s(&c)),
        format!("{}|{}|int64|C", s(&one), s(&one_f)),
    ]);
}

#[test]
fn tiny_memory_forces_many_tiles_on_an_odd_shape() {
    require_numpy!();
    let dir = tmpdir();
    let c = p(dir.path(), "c.npy");
    let f = p(dir.path(), "f.npy");
    python(
        "a = np.random.default_rng(3).normal(size=(1001, 37)) * 1000\nnp.save(sys.argv[1], a)\nnp.save(sys.argv[2], np.asfortranarray(a))",
        &[s(&c), s(&f)],
    );
    let mut checks = Vec::new();
    for (src, order, dtype, short) in [
        (&c, "F", "float64", "f64"),
        (&f, "C", "float64", "f64"),
        (&c, "F", "int32", "i32"),
        (&f, "C", "float32", "f32"),
        (&c, "C", "int64", "i64"),
    ] {
        let out = p(
            dir.path(),
            &format!(
                "out-{order}-{short}-{}",
                src.file_name().unwrap().to_str().unwrap()
            ),
        );
        for memory in ["1KiB", "100000", "1MiB"] {
            outcore(&[
                "convert",
                s(src),
                s(&out),
                "--order",
                order,
                "--dtype",
                short,
                "--memory",
                memory,
                "--force",
            ])
            .ok();
            checks.push(format!("{}|{}|{dtype}|{order}", s(src), s(&out)));
            np_check(&checks[checks.len() - 1..]);
        }
    }
}

#[test]
fn raw_round_trips() {
    require_numpy!();
    let dir = tmpdir();
    let npy = p(dir.path(), "a.npy");
    let want_raw = p(dir.path(), "want.raw");
    python(
        "a = np.arange(-20, 40, dtype=np.int16).reshape(6, 10)\nnp.save(sys.argv[1], a)\na.tofile(sys.argv[2])\nnp.asfortranarray(a).ravel(order='K').tofile(sys.argv[3])",
        &[s(&npy), s(&want_raw), s(&p(dir.path(), "want-f.raw"))],
    );
    // npy -> raw, by flag and by extension.
    let raw1 = p(dir.path(), "one.dat");
    let raw2 = p(dir.path(), "two.bin");
    outcore(&["convert", s(&npy), s(&raw1), "--to-raw"]).ok();
    outcore(&["convert", s(&npy), s(&raw2)]).ok();
    let want = std::fs::read(&want_raw).unwrap();
    assert_eq!(std::fs::read(&raw1).unwrap(), want);
    assert_eq!(std::fs::read(&raw2).unwrap(), want);
    // In Fortran order: the elements in column-major order.
    let raw_f = p(dir.path(), "f.raw");
    outcore(&["convert", s(&npy), s(&raw_f), "--order", "F"]).ok();
    assert_eq!(
        std::fs::read(&raw_f).unwrap(),
        std::fs::read(p(dir.path(), "want-f.raw")).unwrap()
    );
    // raw -> npy (1-D), with a cast.
    let back = p(dir.path(), "back.npy");
    outcore(&[
        "convert",
        s(&raw1),
        s(&back),
        "--from-raw",
        "i16",
        "--dtype",
        "f64",
    ])
    .ok();
    let got = python(
        "b = np.load(sys.argv[1]); print(b.dtype, b.shape, np.array_equal(b, np.arange(-20, 40)))",
        &[s(&back)],
    );
    assert_eq!(got.trim(), "float64 (60,) True");
    // A raw input needs --from-raw.
    let r = outcore(&["convert", s(&raw1), s(&p(dir.path(), "x.npy"))]);
    assert_eq!(r.code, Some(2));
    assert!(r.stderr.contains("--from-raw"), "{}", r.stderr);
}

#[test]
fn values_that_do_not_fit_are_errors_naming_the_first_index() {
    require_numpy!();
    let dir = tmpdir();
    let ints = p(dir.path(), "ints.npy");
    let ints_f = p(dir.path(), "ints-f.npy");
    let floats = p(dir.path(), "floats.npy");
    let big = p(dir.path(), "big.npy");
    python(
        "a = np.zeros((4, 5), dtype=np.int64)\na[3, 0] = -1\na[2, 4] = 300\n\
np.save(sys.argv[1], a)\nnp.save(sys.argv[2], np.asfortranarray(a))\n\
np.save(sys.argv[3], np.array([1.5, 2.0, np.nan, 1e30]))\n\
np.save(sys.argv[4], np.array([1.0, -1e300, 1e300]))",
        &[s(&ints), s(&ints_f), s(&floats), s(&big)],
    );
    let before = listing(dir.path());
    let cases: &[(&Path, &[&str], &str)] = &[
        (&ints, &["--dtype", "u8"], "value 300 at index (2, 4)"),
        (&ints, &["--dtype", "u16"], "value -1 at index (3, 0)"),
        // In Fortran order (3, 0) comes first in memory; (2, 4) first logically.
        (&ints_f, &["--dtype", "u8"], "value 300 at index (2, 4)"),
        (
            &ints_f,
            &["--dtype", "u8", "--order", "C"],
            "value 300 at index (2, 4)",
        ),
        (
            &ints,
            &["--dtype", "i8", "--order", "F", "--memory", "1KiB"],
            "value 300 at index (2, 4)",
        ),
        (&floats, &["--dtype", "i32"], "value NaN at index 2"),
        (&big, &["--dtype", "f32"], "value -1e300 at index 1"),
    ];
    for (src, extra, msg) in cases {
        let out = p(dir.path(), "out.npy");
        let mut args = vec!["convert", s(src), s(&out)];
        args.extend(extra.iter());
        let r = outcore(&args);
        assert_eq!(r.code, Some(1), "{args:?}: {}", r.stderr);
        assert!(r.stderr.starts_with("outcore: error: "), "{}", r.stderr);
        assert_eq!(r.stderr.lines().count(), 1, "{}", r.stderr);
        assert!(
            r.stderr.contains(msg),
            "{args:?}: want {msg:?} in {}",
            r.stderr
        );
        assert!(r.stderr.contains(s(src)), "{}", r.stderr);
        assert_eq!(listing(dir.path()), before, "nothing written for {args:?}");
    }
}

#[test]
fn unsafe_casts_match_astype() {
    require_numpy!();
    let dir = tmpdir();
    let src = p(dir.path(), "src.npy");
    let fsrc = p(dir.path(), "fsrc.npy");
    python(
        "np.save(sys.argv[1], np.arange(-70000, 70000, 997, dtype=np.int64).reshape(-1, 1))\n\
np.save(sys.argv[2], np.array([-3.9, -0.5, 0.0, 0.7, 126.99, 5e9]))",
        &[s(&src), s(&fsrc)],
    );
    let mut checks = Vec::new();
    for (short, name) in DTYPES {
        let out = p(dir.path(), &format!("wrap-{name}.npy"));
        outcore(&[
            "convert",
            s(&src),
            s(&out),
            "--dtype",
            short,
            "--cast",
            "unsafe",
        ])
        .ok();
        checks.push(format!("{}|{}|{name}|C", s(&src), s(&out)));
    }
    // Floats to an int type whose range holds them: truncation toward zero, as astype.
    let out = p(dir.path(), "trunc-int64.npy");
    outcore(&[
        "convert",
        s(&fsrc),
        s(&out),
        "--dtype",
        "i64",
        "--cast",
        "unsafe",
    ])
    .ok();
    checks.push(format!("{}|{}|int64|C", s(&fsrc), s(&out)));
    np_check(&checks);
}

#[test]
fn bool_npy_outputs_match_astype() {
    require_numpy!();
    let dir = tmpdir();
    let src = p(dir.path(), "src.npy");
    let fsrc = p(dir.path(), "fsrc.npy");
    let bits = p(dir.path(), "bits.npy");
    python(
        "np.save(sys.argv[1], np.array([[0, 1, 2], [-3, 0, 255]], dtype=np.int16))\n\
np.save(sys.argv[2], np.asfortranarray(np.array([[0.0, -0.0], [0.5, np.nan]])))\n\
np.save(sys.argv[3], np.array([0, 1, 1, 0], dtype=np.uint8))",
        &[s(&src), s(&fsrc), s(&bits)],
    );
    let mut checks = Vec::new();
    for (input, order) in [(&src, "C"), (&src, "F"), (&fsrc, "F"), (&fsrc, "C")] {
        let out = p(
            dir.path(),
            &format!(
                "bool-{order}-{}",
                input.file_name().unwrap().to_string_lossy()
            ),
        );
        outcore(&[
            "convert",
            s(input),
            s(&out),
            "--dtype",
            "bool",
            "--cast",
            "unsafe",
            "--order",
            order,
        ])
        .ok();
        checks.push(format!("{}|{}|bool|{order}", s(input), s(&out)));
    }
    // Safe casting: only 0 and 1 fit a bool.
    let out = p(dir.path(), "bits-bool.npy");
    outcore(&["convert", s(&bits), s(&out), "--dtype", "bool"]).ok();
    checks.push(format!("{}|{}|bool|C", s(&bits), s(&out)));
    np_check(&checks);
    let before = listing(dir.path());
    let r = outcore(&[
        "convert",
        s(&src),
        s(&p(dir.path(), "no.npy")),
        "--dtype",
        "bool",
    ]);
    assert_eq!(r.code, Some(1), "{}", r.stderr);
    assert!(r.stderr.contains("value 2 at index (0, 2)"), "{}", r.stderr);
    assert_eq!(listing(dir.path()), before, "nothing written");
}

#[test]
fn sigint_mid_convert_leaves_nothing() {
    require_numpy!();
    let dir = tmpdir();
    let src = p(dir.path(), "big.npy");
    // 128 MiB of f64.
    python(
        "np.save(sys.argv[1], np.arange(4096 * 4096, dtype=np.float64).reshape(4096, 4096))",
        &[s(&src)],
    );
    let outdir = p(dir.path(), "out");
    std::fs::create_dir(&outdir).unwrap();
    let out = p(&outdir, "t.npy");
    let mut child = std::process::Command::new(OUTCORE)
        .args([
            "convert",
            s(&src),
            s(&out),
            "--order",
            "F",
            "--memory",
            "64KiB",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    loop {
        if listing(&outdir).iter().any(|n| n.contains(".outcore-tmp")) {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "no temporary file appeared"
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "convert ended too soon"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    // Let it get into the tiles.
    std::thread::sleep(Duration::from_millis(200));
    let st = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(st.success());
    let out_put = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out_put.stderr);
    assert_eq!(out_put.status.code(), Some(130), "{stderr}");
    assert!(
        stderr.starts_with("outcore: error: interrupted"),
        "{stderr}"
    );
    only(&outdir, &[]);
}
