//! Chunk planning on real memory: mappings with a header before the data, raw record files,
//! and random layouts.

use std::sync::atomic::{AtomicU8, Ordering};

use outcore::chunk::{page_size, par_chunks, par_chunks_mut, ChunkPlan};
use outcore::{MappedArray, MappedArrayMut, ParOptions};
use proptest::prelude::*;
use rayon::prelude::*;

use crate::common::tmpdir;

/// Every element covered exactly once (by the parallel iterator), interior boundaries on
/// pages of the real memory.
fn check_slice<T: Sync>(data: &[T], chunk_bytes: usize) {
    let mut opts = ParOptions::new();
    opts.chunk_bytes(chunk_bytes);
    let plan = opts.plan(data);
    let page = page_size();
    let base = data.as_ptr() as usize;
    let size = std::mem::size_of::<T>();
    assert!(plan.page_aligned(), "expected an aligned plan");
    for (i, r) in plan.ranges().enumerate() {
        if i > 0 {
            assert_eq!((base + r.start * size) % page, 0, "boundary {i} on a page");
        }
    }
    let seen: Vec<AtomicU8> = (0..data.len()).map(|_| AtomicU8::new(0)).collect();
    par_chunks(data, &opts).for_each(|(start, c)| {
        for k in 0..c.len() {
            seen[start + k].fetch_add(1, Ordering::Relaxed);
        }
    });
    assert!(seen.iter().all(|s| s.load(Ordering::Relaxed) == 1));
}

#[test]
fn npy_mappings_with_header_offsets() {
    let dir = tmpdir();
    let page = page_size();
    for len in [0usize, 1, page - 1, page, page + 1, 5 * page + 3] {
        let p = dir.path().join(format!("a{len}.npy"));
        MappedArrayMut::<f64>::create(&p, &[len])
            .unwrap()
            .persist()
            .unwrap();
        let a = MappedArray::<f64>::open(&p).unwrap();
        let offset = a.as_ptr() as usize % page;
        assert!(
            offset == 64 || offset == 128,
            "data after the header: {offset}"
        );
        check_slice(&a, page);
        check_slice(&a, 3 * page);
    }
    // A 0-d array is one element; a 3-D header with a long shape pushes the data to 128.
    let p = dir.path().join("nd.npy");
    MappedArrayMut::<u8>::create(&p, &[3, 1000, 1001])
        .unwrap()
        .persist()
        .unwrap();
    check_slice(&MappedArray::<u8>::open(&p).unwrap(), page);
}

#[test]
fn raw_records_of_100_bytes() {
    let dir = tmpdir();
    let page = page_size();
    for len in [0usize, 1, page - 1, page, page + 1, 3000] {
        let p = dir.path().join(format!("r{len}.raw"));
        MappedArrayMut::<[u8; 100]>::create_raw(&p, len)
            .unwrap()
            .persist()
            .unwrap();
        let a = MappedArray::<[u8; 100]>::open_raw(&p).unwrap();
        check_slice(&a, page);
        check_slice(&a, 200 * 1024);
    }
}

#[test]
fn mutable_chunks_write_each_element_once() {
    let mut a = MappedArrayMut::<u32>::anonymous(1_000_003).unwrap();
    let mut opts = ParOptions::new();
    opts.chunk_bytes(64 * 1024).threads(2);
    opts.install(|| {
        par_chunks_mut(&mut a, &opts).for_each(|(start, c)| {
            for (k, x) in c.iter_mut().enumerate() {
                *x += (start + k) as u32;
            }
        })
    })
    .unwrap();
    assert!(a.iter().enumerate().all(|(i, &x)| x == i as u32));
}

proptest! {
    #![proptest_config(crate::common::proptest_config(256))]

    #[test]
    fn plans_cover_exactly_and_align(
        addr in 0usize..1 << 40,
        len in 0usize..200_000,
        size in prop::sample::select(vec![1usize, 2, 4, 8, 12, 16, 100, 3, 7]),
        chunk in 1usize..1 << 20,
    ) {
        let page = 4096;
        // As aligned as a slice of such elements would be.
        let align = if size.is_power_of_two() { size } else { 1 };
        let addr = addr / align * align;
        let plan = ChunkPlan::new(addr, len, size, chunk, page);
        let mut next = 0;
        for (i, r) in plan.ranges().enumerate() {
            prop_assert_eq!(r.start, next);
            prop_assert!(!r.is_empty());
            if i > 0 && plan.page_aligned() {
                prop_assert_eq!((addr + r.start * size) % page, 0);
            }
            next = r.end;
        }
        prop_assert_eq!(next, len);
        if size.is_power_of_two() {
            prop_assert!(plan.page_aligned());
        }
    }
}

#[test]
fn absurd_chunk_sizes_still_cover_the_slice() {
    let v: Vec<u64> = (0..100_000).collect();
    for bytes in [0, 1, usize::MAX / 2, usize::MAX] {
        let mut opts = ParOptions::new();
        opts.chunk_bytes(bytes);
        check_slice(&v, bytes);
        assert_eq!(
            outcore::kernels::sum_with(&v, &opts).unwrap(),
            v.iter().map(|&x| x as u128).sum::<u128>()
        );
    }
}
