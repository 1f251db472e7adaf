//! Arbitrary bytes as the start of a `.npy` file: `Ok` or a typed error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use outcore::npy::Header;

fuzz_target!(|data: &[u8]| {
    let path = std::path::Path::new("fuzz.npy");
    if let Ok(h) = Header::parse(data, data.len() as u64, path) {
        assert!(h.data_offset <= data.len());
        assert!(h.data_len().is_some());
        // What we parse, we can write and parse back identically.
        let again = h.to_bytes();
        let back = Header::parse(&again, again.len() as u64, path).unwrap();
        assert_eq!((back.dtype, back.fortran_order, &back.shape), (h.dtype, h.fortran_order, &h.shape));
    }
});
