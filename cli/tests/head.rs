//! `outcore head` tests: the output is byte for byte what numpy prints.

#[allow(unused_imports)]
use crate::common::*;
use crate::require_numpy;

/// Writes `expr` (numpy, with `rng` a seeded generator) to `dir/name.npy`, and returns the
/// path with what `print(np.load(path, mmap_mode='r')[:n])` prints for each `n`.
fn numpy_case(
    dir: &std::path::Path,
    name: &str,
    expr: &str,
    ns: &[usize],
) -> (String, Vec<String>) {
    let path = p(dir, &format!("{name}.npy"));
    let ns_text: Vec<String> = ns.iter().map(|n| n.to_string()).collect();
    let script = format!(
        "rng = np.random.default_rng(7)\n\
         np.save(sys.argv[1], {expr})\n\
         a = np.load(sys.argv[1], mmap_mode='r')\n\
         print(json.dumps([str(a[:int(n)]) + '\\n' for n in sys.argv[2:]]))"
    );
    let mut args = vec![s(&path)];
    args.extend(ns_text.iter().map(String::as_str));
    let want: Vec<String> = serde_json::from_str(&python(&script, &args)).expect("json");
    (s(&path).to_string(), want)
}

fn check(cases: &[(&str, &str)], ns: &[usize]) {
    let dir = tmpdir();
    let mut failures = Vec::new();
    for (name, expr) in cases {
        let (path, want) = numpy_case(dir.path(), name, expr, ns);
        for (n, w) in ns.iter().zip(&want) {
            let got = outcore(&["head", &path, "-n", &n.to_string()]).ok().stdout;
            if &got != w {
                failures.push(format!(
                    "{name} ({expr}) -n {n}:\n--- numpy\n{w}--- outcore\n{got}"
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn integers_of_every_dtype_match_numpy() {
    require_numpy!();
    let mut cases = Vec::new();
    for (_, np_name) in DTYPES {
        cases.push((
            format!("{np_name}-1d"),
            format!("(rng.integers(-100, 100, 60) * 3).astype(np.{np_name})"),
        ));
        cases.push((
            format!("{np_name}-2d"),
            format!("rng.integers(-5000, 5000, (12, 7)).astype(np.{np_name})"),
        ));
        cases.push((
            format!("{np_name}-extremes"),
            if np_name.starts_with("float") {
                format!("np.array([-1.5, 0, 1, 7, -3], dtype=np.{np_name})")
            } else {
                format!(
                    "np.array([np.iinfo(np.{np_name}).min, np.iinfo(np.{np_name}).max, 0, 1, 7], dtype=np.{np_name})"
                )
            },
        ));
    }
    let cases: Vec<(&str, &str)> = cases
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    check(&cases, &[1, 3, 10, 100]);
}

#[test]
fn floats_match_numpy() {
    require_numpy!();
    check(
        &[
            ("uniform", "rng.random(40)"),
            ("normal", "rng.normal(size=40)"),
            ("normal2d", "rng.normal(size=(15, 4))"),
            ("large", "rng.random(20) * 1e10"),
            ("tiny", "rng.random(20) * 1e-7"),
            ("spread", "np.array([0.5, 1.0, 2000.0, 3.25])"),
            (
                "nan_inf",
                "np.array([1.5, np.nan, -np.inf, 2.0, np.inf, -0.25])",
            ),
            ("only_nan", "np.array([np.nan, np.inf, np.nan])"),
            ("whole", "np.arange(-5, 30, dtype=np.float64)"),
            ("zeros", "np.zeros(30)"),
            ("neg_zero", "np.array([-0.0, 1.0, 2.5])"),
            ("f32_uniform", "rng.random(40).astype(np.float32)"),
            ("f32_normal2d", "rng.normal(size=(9, 5)).astype(np.float32)"),
            ("f32_large", "(rng.random(20) * 1e7).astype(np.float32)"),
            ("f32_tiny", "(rng.random(20) * 1e-6).astype(np.float32)"),
            (
                "f32_nan",
                "np.array([np.nan, 0.1, -np.inf], dtype=np.float32)",
            ),
            ("huge_exp", "np.array([1e-300, 1.0, 1e300])"),
            (
                "rounding",
                "np.array([0.001953125, 1.5, 0.123456789012, 2/3])",
            ),
            ("big_ints_as_floats", "np.array([1e7, 99999999.0, 3.0])"),
            ("sci_neg_2d", "rng.normal(size=(5, 17)) * 1e9"),
            ("bool_2d", "rng.random((4, 5)) > 0.5"),
            ("bool_1d", "np.array([True, False, True])"),
        ],
        &[1, 3, 10, 40],
    );
}

#[test]
fn wide_rows_wrap_and_large_heads_summarise_like_numpy() {
    require_numpy!();
    check(
        &[
            ("wide_int", "rng.integers(-10**6, 10**6, (6, 30))"),
            ("wide_float", "rng.normal(size=(5, 17))"),
            ("long_1d", "rng.normal(size=3000)"),
            ("long_int_1d", "np.arange(5000, dtype=np.int16)"),
            ("summarised_2d", "rng.random((400, 9))"),
            (
                "summarised_cols",
                "rng.integers(0, 9, (4, 600), dtype=np.uint8)",
            ),
            (
                "three_d",
                "np.arange(2 * 3 * 4, dtype=np.int32).reshape(2, 3, 4)",
            ),
            ("three_d_big", "rng.random((20, 10, 10))"),
        ],
        &[2, 10, 2000],
    );
}

#[test]
fn fortran_order_prints_logical_rows() {
    require_numpy!();
    check(
        &[
            (
                "f_int",
                "np.asfortranarray(np.arange(60, dtype=np.int64).reshape(10, 6))",
            ),
            (
                "f_float",
                "np.asfortranarray(rng.normal(size=(8, 3)).astype(np.float32))",
            ),
            (
                "f_3d",
                "np.asfortranarray(np.arange(24, dtype=np.uint16).reshape(2, 3, 4))",
            ),
        ],
        &[1, 4, 10],
    );
}

#[test]
fn raw_files_and_empty_heads() {
    require_numpy!();
    let dir = tmpdir();
    let raw = p(dir.path(), "x.raw");
    python(
        "np.arange(-3, 9, dtype=np.int32).tofile(sys.argv[1])",
        &[s(&raw)],
    );
    let r = outcore(&["head", s(&raw), "--dtype", "i32", "-n", "5"]).ok();
    assert_eq!(r.stdout, "[-3 -2 -1  0  1]\n");
    let r = outcore(&["head", s(&raw), "--dtype", "i32", "-n", "0"]).ok();
    assert_eq!(r.stdout, "[]\n");
    // Default: 10 elements.
    let r = outcore(&["head", s(&raw), "--dtype", "i32"]).ok();
    assert_eq!(r.stdout, "[-3 -2 -1  0  1  2  3  4  5  6]\n");
}
