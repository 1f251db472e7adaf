//! `outcore demo` tests: on a small dataset, it creates the dataset (the bytes `outcore gen`
//! writes), sorts it (checked against `np.sort`), verifies, and reuses the dataset next time.

use crate::common::*;
use crate::require_numpy;

#[test]
fn demo_creates_sorts_verifies_and_reuses_the_dataset() {
    require_numpy!();
    let dir = tmpdir();
    let d = p(dir.path(), "datasets");
    let args = ["demo", "--dir", s(&d), "--size", "8MiB", "--memory", "1MiB"];
    let r = outcore(&args).ok();
    let data = p(&d, "default-u64.npy");
    let sorted = p(&d, "out/default-u64.sorted.npy");
    assert!(data.is_file() && sorted.is_file(), "{}", r.stdout);
    assert!(r.stdout.contains("checksum: "), "generated: {}", r.stdout);
    assert!(
        r.stdout
            .contains("sorted: yes, permutation of the input (checksum): yes"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("external,"), "{}", r.stdout);
    let got = python(
        r#"
x, y = np.load(sys.argv[1]), np.load(sys.argv[2])
assert x.dtype == np.uint64 and x.shape == (1 << 20,), (x.dtype, x.shape)
assert y.dtype == x.dtype and y.shape == x.shape
assert np.array_equal(np.sort(x), y)
print('ok')
"#,
        &[s(&data), s(&sorted)],
    );
    assert_eq!(got.trim(), "ok");

    // The same bytes as `outcore gen --dtype u64 --dist uniform --seed 0 --size 8MiB`.
    let gen = p(dir.path(), "gen.npy");
    outcore(&[
        "gen",
        "--dtype",
        "u64",
        "--dist",
        "uniform",
        "--seed",
        "0",
        "--size",
        "8MiB",
        "--out",
        s(&gen),
    ])
    .ok();
    assert!(std::fs::read(&gen).unwrap() == std::fs::read(&data).unwrap());

    // A second run reuses the dataset and replaces the output.
    let before = std::fs::metadata(&data).unwrap().modified().unwrap();
    let r = outcore(&args).ok();
    assert!(r.stdout.contains("reusing it"), "{}", r.stdout);
    assert!(!r.stdout.contains("checksum: "), "{}", r.stdout);
    assert_eq!(
        std::fs::metadata(&data).unwrap().modified().unwrap(),
        before
    );
    assert!(r.stdout.contains("sorted: yes"), "{}", r.stdout);
    assert_eq!(listing(&d), ["default-u64.npy", "out"]);
    assert_eq!(listing(&p(&d, "out")), ["default-u64.sorted.npy"]);

    // A dataset of another size is made again.
    let r = outcore(&[
        "demo",
        "--dir",
        s(&d),
        "--size",
        "1MiB",
        "--memory",
        "256KiB",
    ])
    .ok();
    assert!(r.stdout.contains("generating it again"), "{}", r.stdout);
    assert_eq!(std::fs::metadata(&data).unwrap().len(), 128 + (1 << 20));
}

#[test]
fn demo_refuses_a_size_that_is_not_whole_u64s() {
    let dir = tmpdir();
    let r = outcore(&["demo", "--dir", s(dir.path()), "--size", "1001"]);
    assert_eq!(r.code, Some(2), "{}", r.stderr);
    assert!(
        r.stderr.contains("not a positive multiple of 8"),
        "{}",
        r.stderr
    );
    assert!(listing(dir.path()).is_empty());
}
