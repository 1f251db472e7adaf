//! Arbitrary bytes as a whole file, opened as `.npy` and raw arrays: `Ok` (and every element
//! readable) or a typed error; never a panic, never a fault.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use outcore::MappedArray;

fn scratch() -> &'static std::path::Path {
    static DIR: OnceLock<std::path::PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let base = if std::path::Path::new("/dev/shm").is_dir() { "/dev/shm" } else { "/tmp" };
        let d = std::path::PathBuf::from(base).join(format!("outcore-fuzz-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        d
    })
}

fuzz_target!(|data: &[u8]| {
    let p = scratch().join("f.npy");
    std::fs::write(&p, data).unwrap();
    if let Ok(a) = MappedArray::<f64>::open(&p) {
        assert_eq!(a.len(), a.shape().iter().product::<usize>());
        std::hint::black_box(a.iter().map(|x| x.to_bits()).fold(0, |x, y| x ^ y));
        std::hint::black_box(a.view().sum());
    }
    if let Ok(a) = MappedArray::<u8>::open(&p) {
        std::hint::black_box(a.iter().map(|&x| x as u64).sum::<u64>());
    }
    if let Ok(a) = MappedArray::<[u8; 7]>::open_raw(&p) {
        assert_eq!(a.len() * 7, data.len());
    }
});
