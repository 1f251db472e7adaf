//! Hostile input for the `.npy` header parser and the open path: arbitrary and mutated bytes
//! must give `Ok` or a typed error, never a panic, a hang or an out-of-bounds read. A small
//! property-test budget runs in CI; the coverage-guided fuzzer in `tests/fuzz` runs longer
//! (see RELIABILITY.md). Inputs it found that once misbehaved are kept in
//! `tests/fuzz/regressions/` and replayed here.

use std::path::Path;

use outcore::npy::Header;
use outcore::{DType, MappedArray};
use proptest::prelude::*;

use crate::common::tmpdir;

/// Parses and, on success, checks what a successful parse promises.
fn parse_checked(bytes: &[u8]) {
    if let Ok(h) = Header::parse(bytes, bytes.len() as u64, Path::new("fuzz.npy")) {
        assert!(h.data_offset <= bytes.len(), "offset within the input");
        assert!(h.data_len().is_some(), "size computable");
    }
}

/// Writes `bytes` to a file and opens it every way; a successful open must read cleanly.
fn open_checked(dir: &Path, bytes: &[u8]) {
    let p = dir.join("f.npy");
    std::fs::write(&p, bytes).unwrap();
    if let Ok(a) = MappedArray::<f64>::open(&p) {
        let _ = a.iter().map(|x| x.to_bits()).fold(0u64, |a, b| a ^ b);
        let _ = a.view();
    }
    if let Ok(a) = MappedArray::<u8>::open(&p) {
        assert_eq!(a.len(), a.shape().iter().product::<usize>());
        let _ = a.iter().map(|&x| x as u64).sum::<u64>();
    }
    if let Ok(a) = MappedArray::<[u8; 3]>::open_raw(&p) {
        assert_eq!(a.len() * 3, bytes.len());
    }
}

fn valid_header() -> impl Strategy<Value = Vec<u8>> {
    (
        prop::sample::select(DType::ALL.to_vec()),
        prop::collection::vec(0usize..5, 0..4),
        any::<bool>(),
    )
        .prop_map(|(dtype, shape, fortran)| {
            let mut h = Header::new(dtype, &shape);
            h.fortran_order = fortran;
            let mut bytes = h.to_bytes();
            bytes.resize(bytes.len() + h.data_len().unwrap(), 0xAB);
            bytes
        })
}

/// A valid file with a few bytes overwritten, cut short, or with bytes spliced in.
fn mutated() -> impl Strategy<Value = Vec<u8>> {
    (
        valid_header(),
        prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..6),
        any::<prop::sample::Index>(),
        0u8..3,
    )
        .prop_map(|(mut b, edits, cut, mode)| {
            for (i, v) in edits {
                let i = i.index(b.len());
                b[i] = v;
            }
            match mode {
                0 => b.truncate(cut.index(b.len() + 1)),
                1 => {
                    let at = cut.index(b.len() + 1);
                    b.splice(at..at, *b"'shape': (9999999999999999999,), [");
                }
                _ => {}
            }
            b
        })
}

proptest! {
    #![proptest_config(crate::common::proptest_config(
        std::env::var("OUTCORE_FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(3000)
    ))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        parse_checked(&bytes);
    }

    #[test]
    fn magic_prefixed_bytes_never_panic(
        version in prop::sample::select(vec![1u8, 2, 3, 0, 255]),
        len in any::<u32>(),
        rest in prop::collection::vec(any::<u8>(), 0..300),
    ) {
        let mut b = b"\x93NUMPY".to_vec();
        b.extend_from_slice(&[version, 0]);
        b.extend_from_slice(&len.to_le_bytes());
        b.extend_from_slice(&rest);
        parse_checked(&b);
    }

    #[test]
    fn mutated_headers_never_panic(bytes in mutated()) {
        parse_checked(&bytes);
    }
}

proptest! {
    #![proptest_config(crate::common::proptest_config(300))]

    #[test]
    fn opening_mutated_files_never_panics(bytes in mutated()) {
        let dir = tmpdir();
        open_checked(dir.path(), &bytes);
    }
}

#[test]
fn fuzz_regressions_replay() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz/regressions");
    let scratch = tmpdir();
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        parse_checked(&bytes);
        open_checked(scratch.path(), &bytes);
        n += 1;
    }
    assert!(n > 0, "the regression corpus is not empty");
}
