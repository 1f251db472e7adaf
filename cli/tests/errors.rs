//! Bad input across subcommands: exit statuses and one-line messages.

#[allow(unused_imports)]
use crate::common::*;

/// Asserts the shared conventions: exit status `code`, one line on stderr starting with
/// `outcore: error:` and containing `needle`, no panic.
fn fails(args: &[&str], code: i32, needle: &str) -> Run {
    let r = outcore(args);
    assert_eq!(r.code, Some(code), "{args:?}: {}", r.stderr);
    assert!(
        r.stderr.starts_with("outcore: error: "),
        "{args:?}: {}",
        r.stderr
    );
    assert_eq!(r.stderr.lines().count(), 1, "{args:?}: {}", r.stderr);
    assert!(!r.stderr.contains("panicked"), "{}", r.stderr);
    assert!(
        r.stderr.contains(needle),
        "{args:?}: want {needle:?} in {}",
        r.stderr
    );
    r
}

/// A small valid `.npy` of 4 `<f8` (written by outcore itself, no numpy needed).
fn small_npy(dir: &std::path::Path) -> std::path::PathBuf {
    let raw = p(dir, "small.raw");
    std::fs::write(&raw, [0u8; 32]).unwrap();
    let npy = p(dir, "small.npy");
    outcore(&["convert", s(&raw), s(&npy), "--from-raw", "f64"]).ok();
    npy
}

#[test]
fn missing_file() {
    let dir = tmpdir();
    let f = p(dir.path(), "nope.npy");
    let out = p(dir.path(), "out.npy");
    fails(&["info", s(&f)], 1, s(&f));
    fails(&["head", s(&f)], 1, s(&f));
    fails(&["convert", s(&f), s(&out)], 1, s(&f));
    assert!(!out.exists());
}

#[test]
fn malformed_npy_header() {
    let dir = tmpdir();
    let f = p(dir.path(), "bad.npy");
    let mut bytes = b"\x93NUMPY\x01\x00\x20\x00".to_vec();
    bytes.extend_from_slice(b"{'descr': '<f8', 'shape': oops}\n");
    bytes.extend_from_slice(&[0u8; 16]);
    std::fs::write(&f, &bytes).unwrap();
    let out = p(dir.path(), "out.npy");
    fails(&["info", s(&f)], 1, s(&f));
    fails(&["head", s(&f)], 1, s(&f));
    fails(&["convert", s(&f), s(&out)], 1, s(&f));
    assert!(!out.exists());
    // Truncated: the magic string and nothing else.
    std::fs::write(&f, b"\x93NUMPY\x01").unwrap();
    fails(&["info", s(&f)], 1, s(&f));
}

#[test]
fn raw_size_not_a_multiple_of_the_element_size() {
    let dir = tmpdir();
    let f = p(dir.path(), "odd.raw");
    std::fs::write(&f, [0u8; 13]).unwrap();
    let out = p(dir.path(), "out.npy");
    fails(&["info", s(&f), "--dtype", "f64"], 1, s(&f));
    fails(&["head", s(&f), "--dtype", "u32"], 1, s(&f));
    fails(&["convert", s(&f), s(&out), "--from-raw", "i16"], 1, s(&f));
    assert!(!out.exists());
}

#[test]
fn dtype_contradicting_the_header() {
    let dir = tmpdir();
    let npy = small_npy(dir.path());
    let out = p(dir.path(), "out.npy");
    fails(&["info", s(&npy), "--dtype", "i32"], 2, "f64");
    fails(&["head", s(&npy), "--dtype", "i32"], 2, s(&npy));
    fails(
        &["convert", s(&npy), s(&out), "--from-raw", "i32"],
        2,
        s(&npy),
    );
    assert!(!out.exists());
    // Agreeing with the header is fine.
    outcore(&["info", s(&npy), "--dtype", "f64"]).ok();
}

#[test]
fn unknown_dtype() {
    let dir = tmpdir();
    let npy = small_npy(dir.path());
    let out = p(dir.path(), "out.npy");
    fails(&["info", s(&npy), "--dtype", "f16"], 2, "f16");
    fails(&["head", s(&npy), "--dtype", "complex"], 2, "complex");
    fails(&["convert", s(&npy), s(&out), "--dtype", "q8"], 2, "q8");
    assert!(!out.exists());
}

#[test]
fn existing_output_without_force() {
    let dir = tmpdir();
    let npy = small_npy(dir.path());
    let out = p(dir.path(), "out.npy");
    std::fs::write(&out, b"precious").unwrap();
    fails(&["convert", s(&npy), s(&out), "--dtype", "f32"], 2, s(&out));
    assert_eq!(std::fs::read(&out).unwrap(), b"precious");
    // The output being the input is refused too.
    fails(&["convert", s(&npy), s(&npy), "--dtype", "f32"], 2, s(&npy));
    // With --force it is replaced.
    outcore(&["convert", s(&npy), s(&out), "--dtype", "f32", "--force"]).ok();
    assert_ne!(std::fs::read(&out).unwrap(), b"precious");
    assert_eq!(listing(dir.path()), ["out.npy", "small.npy", "small.raw"]);
}

#[test]
fn unknown_flag() {
    let dir = tmpdir();
    let npy = small_npy(dir.path());
    fails(&["info", s(&npy), "--frobnicate"], 2, "--frobnicate");
    fails(&["head", s(&npy), "--lines-please"], 2, "--lines-please");
    fails(
        &[
            "convert",
            s(&npy),
            s(&p(dir.path(), "o.npy")),
            "--order",
            "Z",
        ],
        2,
        "Z",
    );
    fails(
        &[
            "convert",
            s(&npy),
            s(&p(dir.path(), "o.npy")),
            "--memory",
            "lots",
        ],
        2,
        "lots",
    );
}

#[test]
fn directory_as_file() {
    let dir = tmpdir();
    let d = p(dir.path(), "adir");
    std::fs::create_dir(&d).unwrap();
    fails(&["info", s(&d)], 1, "directory");
    fails(&["head", s(&d)], 1, "directory");
    fails(
        &["convert", s(&d), s(&p(dir.path(), "o.npy"))],
        1,
        "directory",
    );
    // And as the output.
    let npy = small_npy(dir.path());
    fails(&["convert", s(&npy), s(&d)], 2, "directory");
}
