//! `outcore stats` tests: `--json` against numpy on numpy-made files of every dtype.

use crate::common::*;
use crate::require_numpy;

/// Checks `outcore stats --json` output (argv[2]) against numpy on the file argv[1].
/// Floats: sums and means to 1e-12 relative (the summation order differs from numpy's),
/// std to 1e-9; min, max, argmin, argmax, histogram counts and percentiles exactly.
pub const CHECK: &str = r#"
x = np.load(sys.argv[1]).ravel(order='K')
s = json.loads(sys.argv[2])
bins = int(sys.argv[3]) if len(sys.argv) > 3 and sys.argv[3] else None
pcts = [float(p) for p in sys.argv[4].split(',')] if len(sys.argv) > 4 and sys.argv[4] else []
keys = {'count', 'nan_count', 'sum', 'mean', 'std', 'min', 'max', 'argmin', 'argmax'}
if bins: keys.add('histogram')
if pcts: keys.add('percentiles')
assert set(s) == keys, (sorted(s), sorted(keys))
def same(got, want, rel, what):
    want = float(want)
    if got is None:
        assert np.isnan(want) or np.isinf(want), (what, got, want)
    else:
        assert abs(got - want) <= rel * max(abs(want), 1e-300), (what, got, want)
isf = x.dtype.kind == 'f'
assert s['count'] == x.size, ('count', s['count'])
assert s['nan_count'] == (int(np.isnan(x).sum()) if isf else 0), ('nan_count', s['nan_count'])
if isf:
    same(s['sum'], x.sum(dtype=np.float64), 1e-12 if x.dtype == np.float64 else 1e-5, 'sum')
else:
    assert s['sum'] == sum(int(v) for v in x.tolist()), ('sum', s['sum'])
# float32 sums (and so means) accumulate in float32, as numpy's own x.sum() does.
same(s['mean'], x.mean(dtype=np.float64), 1e-12 if x.dtype != np.float32 else 1e-6, 'mean')
same(s['std'], x.std(dtype=np.float64), 1e-9, 'std')
for k, f in (('min', np.min), ('max', np.max)):
    want = f(x)
    if isf and np.isnan(want): assert s[k] is None, (k, s[k])
    elif isf and np.isinf(want): assert s[k] is None, (k, s[k])
    else: assert s[k] == want.item(), (k, s[k], want)
assert s['argmin'] == int(np.argmin(x)), ('argmin', s['argmin'], np.argmin(x))
assert s['argmax'] == int(np.argmax(x)), ('argmax', s['argmax'], np.argmax(x))
if bins:
    fin = x[np.isfinite(x)] if isf else x
    counts, edges = np.histogram(fin, bins)
    assert s['histogram']['counts'] == counts.tolist(), (s['histogram']['counts'], counts)
    # numpy computes float32 data's edges in float32, outcore in float64 (the counts agree).
    rtol = 1e-12 if x.dtype != np.float32 else 1e-6
    assert np.allclose(s['histogram']['edges'], edges, rtol=rtol, atol=0), (s['histogram']['edges'], edges)
if pcts:
    want = np.percentile(x, pcts)
    for p, w in zip(pcts, want):
        got = s['percentiles'][('%r' % p).rstrip('0').rstrip('.') if p != int(p) else str(int(p))]
        if np.isnan(w): assert got is None, (p, got)
        else: assert got == w.item(), (p, got, w)
print('ok')
"#;

fn make(dir: &std::path::Path, name: &str, expr: &str) -> std::path::PathBuf {
    let path = p(dir, name);
    python(
        &format!("rng = np.random.default_rng(7)\nnp.save(sys.argv[1], {expr})"),
        &[s(&path)],
    );
    path
}

fn check(path: &std::path::Path, bins: Option<u32>, pcts: &str) {
    let mut args = vec!["stats".to_string(), s(path).to_string(), "--json".into()];
    if let Some(b) = bins {
        args.push("--bins".into());
        args.push(b.to_string());
    }
    if !pcts.is_empty() {
        args.push("--percentiles".into());
        args.push(pcts.into());
    }
    let r = outcore(&args).ok();
    let b = bins.map(|b| b.to_string()).unwrap_or_default();
    let out = python(CHECK, &[s(path), r.stdout.trim(), &b, pcts]);
    assert_eq!(out.trim(), "ok");
}

#[test]
fn json_matches_numpy_for_every_dtype() {
    require_numpy!();
    let dir = tmpdir();
    for (ours, np_name) in DTYPES {
        let expr = if np_name.starts_with('f') {
            format!("rng.standard_normal(5003).astype('{np_name}') * 100")
        } else if np_name.starts_with('u') {
            format!("rng.integers(0, 200, 5003).astype('{np_name}')")
        } else {
            format!("rng.integers(-100, 100, 5003).astype('{np_name}')")
        };
        let path = make(dir.path(), &format!("{ours}.npy"), &expr);
        check(&path, Some(13), "0,1,2.5,50,99,100");
    }
}

#[test]
fn nan_and_infinities_follow_numpy() {
    require_numpy!();
    let dir = tmpdir();
    let nan = make(
        dir.path(),
        "nan.npy",
        "np.array([3.0, np.nan, -1.0, np.inf, np.nan, 2.0])",
    );
    check(&nan, Some(4), "50");
    let inf = make(
        dir.path(),
        "inf.npy",
        "np.array([3.0, -np.inf, -1.0, 7.5, 2.0], dtype='f4')",
    );
    check(&inf, Some(3), "10,90");
}

#[test]
fn edge_sizes() {
    require_numpy!();
    let dir = tmpdir();
    let one = make(dir.path(), "one.npy", "np.array([42], dtype='i8')");
    check(&one, Some(2), "50");
    let eq = make(dir.path(), "eq.npy", "np.full(1000, 2.5)");
    check(&eq, Some(5), "0,50,100");
    let big = make(
        dir.path(),
        "big.npy",
        "np.array([2**63 - 1, 2**63 - 2, 5], dtype='u8')",
    );
    check(&big, None, "");
}

#[test]
fn fortran_columns_are_the_logical_columns() {
    require_numpy!();
    let dir = tmpdir();
    let path = make(
        dir.path(),
        "f.npy",
        "np.asfortranarray(rng.standard_normal((501, 7)) + np.arange(7))",
    );
    for axis in ["0", "1"] {
        let r = outcore(&["stats", s(&path), "--axis", axis, "--json"]).ok();
        let out = python(
            r#"
x = np.load(sys.argv[1]); ax = int(sys.argv[3]); s = json.loads(sys.argv[2])
assert x.flags.f_contiguous and not x.flags.c_contiguous
assert s['count'] == [x.shape[ax]] * x.shape[1 - ax]
assert np.allclose(s['mean'], x.mean(axis=ax), rtol=1e-12, atol=0)
assert np.allclose(s['std'], x.std(axis=ax), rtol=1e-9, atol=0)
assert s['min'] == x.min(axis=ax).tolist() and s['max'] == x.max(axis=ax).tolist()
assert s['argmin'] == x.argmin(axis=ax).tolist() and s['argmax'] == x.argmax(axis=ax).tolist()
print('ok')
"#,
            &[s(&path), r.stdout.trim(), axis],
        );
        assert_eq!(out.trim(), "ok");
    }
}

#[test]
fn raw_files_need_and_take_a_dtype() {
    require_numpy!();
    let dir = tmpdir();
    let raw = p(dir.path(), "x.raw");
    let npy = p(dir.path(), "x.npy");
    python(
        "x = np.arange(-50, 50, dtype='<i2'); x.tofile(sys.argv[1]); np.save(sys.argv[2], x)",
        &[s(&raw), s(&npy)],
    );
    let r = outcore(&["stats", s(&raw), "--dtype", "i16", "--json"]).ok();
    let out = python(
        CHECK
            .replace("np.load(sys.argv[1])", "np.load(sys.argv[5])")
            .as_str(),
        &[s(&raw), r.stdout.trim(), "", "", s(&npy)],
    );
    assert_eq!(out.trim(), "ok");
    let r = outcore(&["stats", s(&raw)]);
    assert_eq!(r.code, Some(2), "{}", r.stderr);
    assert!(
        r.stderr.starts_with("outcore: error: ") && r.stderr.contains("--dtype"),
        "{}",
        r.stderr
    );
}

#[test]
fn text_output_has_every_statistic_and_a_histogram() {
    require_numpy!();
    let dir = tmpdir();
    let path = make(dir.path(), "t.npy", "rng.standard_normal(10000)");
    let r = outcore(&["stats", s(&path), "--bins", "8", "--percentiles", "50"]).ok();
    for key in [
        "count",
        "nan_count",
        "sum",
        "mean",
        "std",
        "min",
        "argmin",
        "max",
        "argmax",
        "p50",
        "histogram (8 bins)",
        "█",
    ] {
        assert!(r.stdout.contains(key), "{key} missing in:\n{}", r.stdout);
    }
    let bars: Vec<&str> = r.stdout.lines().filter(|l| l.starts_with("  [")).collect();
    assert_eq!(bars.len(), 8, "{}", r.stdout);
    // The fullest bin's bar is the full width.
    assert!(
        bars.iter().any(|l| l.contains(&"█".repeat(40))),
        "{}",
        r.stdout
    );
}

#[test]
fn bad_arguments() {
    let dir = tmpdir();
    let missing = p(dir.path(), "missing.npy");
    let r = outcore(&["stats", s(&missing)]);
    assert_eq!(r.code, Some(1));
    assert!(r.stderr.contains("missing.npy"), "{}", r.stderr);
    assert_eq!(r.stderr.lines().count(), 1, "{}", r.stderr);
    let r = outcore(&["stats", s(&missing), "--percentiles", "101"]);
    assert_eq!(r.code, Some(2), "{}", r.stderr);
    let r = outcore(&["stats", s(&missing), "--axis", "2"]);
    assert_eq!(r.code, Some(2), "{}", r.stderr);
}

#[test]
fn a_given_range_is_numpys_range() {
    require_numpy!();
    let dir = tmpdir();
    let path = make(dir.path(), "r.npy", "rng.standard_normal(20000)");
    let r = outcore(&[
        "stats",
        s(&path),
        "--json",
        "--bins",
        "7",
        "--range",
        "-1,2.5",
    ])
    .ok();
    let out = python(
        r#"
x = np.load(sys.argv[1]); s = json.loads(sys.argv[2])
c, e = np.histogram(x, 7, range=(-1, 2.5))
assert s['histogram']['counts'] == c.tolist(), (s['histogram'], c)
assert np.allclose(s['histogram']['edges'], e, rtol=1e-15, atol=0)
print('ok')
"#,
        &[s(&path), r.stdout.trim()],
    );
    assert_eq!(out.trim(), "ok");
    let r = outcore(&["stats", s(&path), "--bins", "3", "--range", "2,1"]);
    assert_eq!(r.code, Some(2), "{}", r.stderr);
}
