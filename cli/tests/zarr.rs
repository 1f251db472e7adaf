//! Zarr on the command line (feature `zarr`): `convert` both ways checked by zarr-python,
//! `info` and `stats` of a Zarr array against numpy, `sort` into Zarr against `np.sort`;
//! without the feature, the usage error that says how to get it.

#[cfg(feature = "zarr")]
mod with_zarr {
    use std::path::Path;

    use crate::common::*;
    use crate::require_zarr;

    /// Writes `expr` (numpy, with `rng`) as the `.npy` file `dir/name`.
    fn make(dir: &Path, name: &str, expr: &str) -> std::path::PathBuf {
        let path = p(dir, name);
        python(
            &format!("rng = np.random.default_rng(11)\nnp.save(sys.argv[1], {expr})"),
            &[s(&path)],
        );
        path
    }

    /// argv: the .npy, the .zarr outcore wrote, the codec, the .npy outcore decoded back.
    const ROUND_TRIP: &str = r#"
import zarr
x = np.load(sys.argv[1])
z = zarr.open(sys.argv[2], mode='r')
assert z.dtype == x.dtype, (z.dtype, x.dtype)
assert z.shape == x.shape, (z.shape, x.shape)
assert np.array_equal(z[...], x, equal_nan=(x.dtype.kind == 'f')), 'zarr-python reads other values'
want = 0 if sys.argv[3] == 'none' else 1
assert len(z.compressors) == want, z.compressors
y = np.load(sys.argv[4])
assert y.dtype == x.dtype and y.shape == x.shape, (y.dtype, y.shape)
assert np.array_equal(y, x, equal_nan=(x.dtype.kind == 'f')), 'zarr -> npy differs'
print('ok')
"#;

    fn round_trip(dir: &Path, x: &Path, chunks: Option<&str>, codec: &str) {
        let z = x.with_extension("zarr");
        let y = x.with_extension("back.npy");
        let mut args = vec!["convert", s(x), s(&z), "--codec", codec];
        if let Some(c) = chunks {
            args.extend(["--chunks", c]);
        }
        outcore_in(dir, &args).ok();
        outcore_in(dir, &["convert", s(&z), s(&y)]).ok();
        let out = python(ROUND_TRIP, &[s(x), s(&z), codec, s(&y)]);
        assert_eq!(out.trim(), "ok");
    }

    #[test]
    fn convert_round_trips_every_dtype_with_edge_chunks() {
        require_zarr!();
        let dir = tmpdir();
        for (i, (name, np_name)) in DTYPES.iter().enumerate() {
            let x = make(
                dir.path(),
                &format!("{name}.npy"),
                &format!("(rng.random((37, 13)) * 100).astype('{np_name}')"),
            );
            let codec = if i % 2 == 0 { "zstd" } else { "none" };
            round_trip(dir.path(), &x, Some("10,4"), codec);
        }
        // 1-D with the default chunks; a Fortran-ordered input is written as its logical array.
        let x = make(dir.path(), "one.npy", "rng.standard_normal(100_003)");
        round_trip(dir.path(), &x, None, "zstd:9");
        let x = make(
            dir.path(),
            "fortran.npy",
            "np.asfortranarray(rng.integers(-9, 9, (50, 21), dtype='i2'))",
        );
        round_trip(dir.path(), &x, Some("7,5"), "none");
    }

    #[test]
    fn zarr_written_by_zarr_python_converts_to_npy() {
        require_zarr!();
        let dir = tmpdir();
        let script = r#"
import zarr, numcodecs
rng = np.random.default_rng(3)
x = rng.standard_normal((300, 17)).astype('f4')
z = zarr.create_array(sys.argv[1], shape=x.shape, chunks=(64, 8), dtype=x.dtype,
                      compressors=zarr.codecs.ZstdCodec(level=1))
z[...] = x
np.save(sys.argv[2], x)
w = rng.integers(-2**40, 2**40, 10_001, dtype='i8')
z2 = zarr.create_array(sys.argv[3], shape=w.shape, chunks=(1000,), dtype=w.dtype,
                       zarr_format=2, compressors=numcodecs.Zstd(level=1))
z2[...] = w
np.save(sys.argv[4], w)
"#;
        let (z3, x3) = (p(dir.path(), "v3.zarr"), p(dir.path(), "v3.npy"));
        let (z2, x2) = (p(dir.path(), "v2.zarr"), p(dir.path(), "v2.npy"));
        python(script, &[s(&z3), s(&x3), s(&z2), s(&x2)]);
        for (z, x) in [(&z3, &x3), (&z2, &x2)] {
            let y = x.with_extension("out.npy");
            outcore(&["convert", s(z), s(&y)]).ok();
            let out = python(
                "a, b = np.load(sys.argv[1]), np.load(sys.argv[2])\n\
                 assert a.dtype == b.dtype and np.array_equal(a, b)\nprint('ok')",
                &[s(x), s(&y)],
            );
            assert_eq!(out.trim(), "ok");
        }
    }

    #[test]
    fn info_json_of_a_zarr_array() {
        require_zarr!();
        let dir = tmpdir();
        let x = make(dir.path(), "x.npy", "rng.standard_normal((100, 6))");
        let z = p(dir.path(), "x.zarr");
        outcore(&["convert", s(&x), s(&z), "--chunks", "32,6"]).ok();
        let r = outcore(&["info", s(&z), "--json"]).ok();
        let v: serde_json::Value = serde_json::from_str(r.stdout.trim()).expect("json");
        assert_eq!(v["format"], "zarr");
        assert_eq!(v["zarr_format"], 3);
        assert_eq!(v["dtype"], "f64");
        assert_eq!(v["descr"], "<f8");
        assert_eq!(v["shape"], serde_json::json!([100, 6]));
        assert_eq!(v["chunks"], serde_json::json!([32, 6]));
        assert_eq!(v["num_chunks"], 4);
        assert_eq!(v["elements"], 600);
        assert_eq!(v["data_bytes"], 4800);
        assert!(v["stored_bytes"].as_u64().unwrap() > 0);
        let text = outcore(&["info", s(&z)]).ok().stdout;
        assert!(
            text.contains("Zarr v3") && text.contains("(32, 6)"),
            "{text}"
        );
    }

    #[test]
    fn stats_json_of_a_zarr_array_equals_numpy() {
        require_zarr!();
        let dir = tmpdir();
        let cases = [
            ("f64", "rng.standard_normal((301, 7))"),
            (
                "f64nan",
                "np.where(rng.random((120, 9)) < 0.01, np.nan, rng.standard_normal((120, 9)))",
            ),
            ("f32", "rng.standard_normal(5000).astype('f4')"),
            ("i64", "rng.integers(-2**62, 2**62, (77, 13), dtype='i8')"),
            ("u8", "rng.integers(0, 256, 4099, dtype='u1')"),
            ("i16", "rng.integers(-300, 300, (64, 64), dtype='i2')"),
        ];
        for (name, expr) in cases {
            let x = make(dir.path(), &format!("{name}.npy"), expr);
            let z = p(dir.path(), &format!("{name}.zarr"));
            let nd = python("print(np.load(sys.argv[1]).ndim)", &[s(&x)]);
            let chunks = if nd.trim() == "2" { "16,5" } else { "1000" };
            outcore(&["convert", s(&x), s(&z), "--chunks", chunks]).ok();
            let pcts = "1,50,99.5";
            let r = outcore(&[
                "stats",
                s(&z),
                "--json",
                "--bins",
                "7",
                "--percentiles",
                pcts,
            ])
            .ok();
            let out = python(crate::stats::CHECK, &[s(&x), r.stdout.trim(), "7", pcts]);
            assert_eq!(out.trim(), "ok", "{name}");
            // The summary alone, and the text output.
            let r = outcore(&["stats", s(&z), "--json"]).ok();
            let out = python(crate::stats::CHECK, &[s(&x), r.stdout.trim()]);
            assert_eq!(out.trim(), "ok", "{name}");
        }
        let text = outcore(&["stats", s(&p(dir.path(), "f64.zarr"))])
            .ok()
            .stdout;
        assert!(text.contains("count      2107"), "{text}");
    }

    #[test]
    fn sort_npy_into_zarr_equals_np_sort() {
        require_zarr!();
        let dir = tmpdir();
        for (name, expr) in [
            (
                "f",
                "np.where(rng.random(200_000) < 0.001, np.nan, rng.standard_normal(200_000))",
            ),
            ("i", "rng.integers(-1000, 1000, 150_001, dtype='i4')"),
        ] {
            let x = make(dir.path(), &format!("{name}.npy"), expr);
            let z = p(dir.path(), &format!("{name}.sorted.zarr"));
            outcore(&["sort", s(&x), s(&z), "--memory", "1MiB", "--quiet"]).ok();
            let out = python(
                "import zarr\nx = np.load(sys.argv[1])\nz = zarr.open(sys.argv[2], mode='r')\n\
                 assert z.dtype == x.dtype\n\
                 assert np.array_equal(z[...], np.sort(x), equal_nan=(x.dtype.kind == 'f'))\n\
                 print('ok')",
                &[s(&x), s(&z)],
            );
            assert_eq!(out.trim(), "ok");
        }
        // Nothing but the inputs and the outputs is left behind.
        assert_eq!(
            listing(dir.path()),
            ["f.npy", "f.sorted.zarr", "i.npy", "i.sorted.zarr"]
        );
        // An existing output is refused without --force, replaced with it.
        let x = p(dir.path(), "i.npy");
        let z = p(dir.path(), "i.sorted.zarr");
        let r = outcore(&["sort", s(&x), s(&z)]);
        assert_eq!(r.code, Some(2), "{}", r.stderr);
        outcore(&["sort", s(&x), s(&z), "--force", "--quiet"]).ok();
    }

    #[test]
    fn zarr_usage_errors() {
        require_zarr!();
        let dir = tmpdir();
        let x = make(dir.path(), "x.npy", "rng.standard_normal((10, 4))");
        let z = p(dir.path(), "x.zarr");
        for args in [
            vec!["convert", s(&x), s(&z), "--chunks", "3"],
            vec!["convert", s(&x), s(&z), "--codec", "gzip"],
            vec!["convert", s(&x), s(&z), "--dtype", "f32"],
        ] {
            let r = outcore(&args);
            assert_eq!(r.code, Some(2), "{args:?}: {}", r.stderr);
        }
        outcore(&["convert", s(&x), s(&z)]).ok();
        let r = outcore(&["convert", s(&x), s(&z)]);
        assert_eq!(r.code, Some(2), "{}", r.stderr);
        assert!(r.stderr.contains("--force"), "{}", r.stderr);
        let r = outcore(&["stats", s(&z), "--axis", "0"]);
        assert_eq!(r.code, Some(2), "{}", r.stderr);
    }
}

#[cfg(not(feature = "zarr"))]
#[test]
fn without_the_feature_a_zarr_path_is_a_usage_error() {
    use crate::common::*;
    let dir = tmpdir();
    let z = p(dir.path(), "x.zarr");
    std::fs::create_dir(&z).unwrap();
    std::fs::write(z.join("zarr.json"), "{}").unwrap();
    let out = p(dir.path(), "y.zarr");
    for args in [
        vec!["info", s(&z)],
        vec!["stats", s(&z)],
        vec!["convert", s(&z), "y.npy"],
        vec!["convert", "x.npy", s(&out)],
        vec!["sort", "x.npy", s(&out)],
    ] {
        let r = outcore(&args);
        assert_eq!(r.code, Some(2), "{args:?}: {}", r.stderr);
        assert!(
            r.stderr
                .contains("this outcore was built without Zarr support; install it with `cargo install --path cli --features zarr`"),
            "{args:?}: {}",
            r.stderr
        );
    }
}
