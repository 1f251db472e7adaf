//! `outcore::convert` on real files, against naive twins: a transpose by indices and casts
//! by `as`, across shapes and memory budgets small enough to force many windows and tiles.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use outcore::convert::{convert_file, CastMode, ConvertOptions, Order, MIN_MEMORY};
use outcore::{DType, Error, MappedArray, MappedArrayMut};
use proptest::prelude::*;

use crate::common::*;

fn write_i32(path: &std::path::Path, shape: &[usize], fortran: bool, f: impl Fn(usize) -> i32) {
    let mut a = if fortran {
        MappedArrayMut::<i32>::create_fortran(path, shape).unwrap()
    } else {
        MappedArrayMut::<i32>::create(path, shape).unwrap()
    };
    for (i, x) in a.iter_mut().enumerate() {
        *x = f(i);
    }
    a.persist().unwrap();
}

/// The elements of a `rows × cols` array stored as `src` (memory order `from`) in memory
/// order `to`.
fn reorder<T: Copy>(src: &[T], rows: usize, cols: usize, from: Order, to: Order) -> Vec<T> {
    let at = |r: usize, c: usize, o: Order| match o {
        Order::C => r * cols + c,
        Order::F => c * rows + r,
    };
    let mut out = src.to_vec();
    for r in 0..rows {
        for c in 0..cols {
            out[at(r, c, to)] = src[at(r, c, from)];
        }
    }
    out
}

proptest! {
    #![proptest_config(proptest_config(24))]

    #[test]
    fn order_changes_and_casts_match_a_naive_transpose(
        rows in 0usize..300,
        cols in 0usize..300,
        from_f in any::<bool>(),
        to_f in any::<bool>(),
        budget in prop_oneof![Just(MIN_MEMORY), Just(200_000usize), Just(1usize << 24)],
    ) {
        let dir = tmpdir();
        let src = p(dir.path(), "src.npy");
        let dst = p(dir.path(), "dst.npy");
        write_i32(&src, &[rows, cols], from_f, |i| (i as i32).wrapping_mul(7919) - 1000);
        let to = if to_f { Order::F } else { Order::C };
        let mut opts = ConvertOptions::new();
        opts.dtype(DType::F64).order(to).memory(budget);
        let r = convert_file(&src, &dst, &opts).unwrap();
        prop_assert_eq!(&r.shape, &vec![rows, cols]);
        let a = MappedArray::<i32>::open(&src).unwrap();
        let from = if a.is_fortran_order() { Order::F } else { Order::C };
        let want: Vec<f64> = reorder(&a, rows, cols, from, to).iter().map(|&x| x as f64).collect();
        let b = MappedArray::<f64>::open(&dst).unwrap();
        prop_assert_eq!(b.is_fortran_order(), to == Order::F);
        prop_assert_eq!(&b[..], &want[..]);
    }
}

#[test]
fn the_first_offender_is_named_in_logical_order_and_nothing_is_written() {
    let dir = tmpdir();
    let src = p(dir.path(), "f.npy");
    // Fortran order, 3 × 4: logical (2, 0) is the third element in memory, (0, 3) the tenth.
    write_i32(&src, &[3, 4], true, |i| match i {
        2 => 1000,
        9 => 300,
        _ => 1,
    });
    let before = std::fs::read_dir(dir.path()).unwrap().count();
    for order in [Order::C, Order::F] {
        let mut opts = ConvertOptions::new();
        opts.dtype(DType::U8).order(order);
        let e = convert_file(&src, p(dir.path(), "out.npy"), &opts).unwrap_err();
        match &e {
            Error::DoesNotFit {
                path,
                index,
                value,
                dtype,
            } => {
                assert_eq!(path, &src);
                assert_eq!(index, &[0, 3]);
                assert_eq!(value, "300");
                assert_eq!(*dtype, DType::U8);
            }
            e => panic!("{e}"),
        }
        let msg = e.to_string();
        assert!(msg.contains("value 300 at index (0, 3)"), "{msg}");
        assert!(msg.contains("u8") && msg.contains("--cast unsafe"), "{msg}");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), before);
    }
    // Unsafe: wraps, as numpy.
    let mut opts = ConvertOptions::new();
    opts.dtype(DType::U8).cast(CastMode::Unsafe).to_raw(true);
    let out = p(dir.path(), "out.raw");
    let r = convert_file(&src, &out, &opts).unwrap();
    assert!(r.raw && r.order == Order::F && r.bytes_written == 12);
    let bytes = std::fs::read(&out).unwrap();
    assert_eq!((bytes[2], bytes[9], bytes[0]), (232, 44, 1));
}

#[test]
fn a_set_cancel_flag_stops_it_and_leaves_nothing() {
    let dir = tmpdir();
    let src = p(dir.path(), "x.npy");
    write_i32(&src, &[64, 64], false, |i| i as i32);
    let flag = Arc::new(AtomicBool::new(true));
    for order in [Order::C, Order::F] {
        let mut opts = ConvertOptions::new();
        opts.order(order).cancel_flag(flag.clone());
        let e = convert_file(&src, p(dir.path(), "y.npy"), &opts).unwrap_err();
        assert!(matches!(e, Error::Cancelled), "{e}");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}

#[test]
fn raw_in_and_out_and_an_order_change_of_3d_is_refused() {
    let dir = tmpdir();
    let raw = p(dir.path(), "x.raw");
    std::fs::write(&raw, bytemuck::cast_slice::<i16, u8>(&[-3, 0, 7])).unwrap();
    let npy = p(dir.path(), "x.npy");
    let mut opts = ConvertOptions::new();
    opts.from_raw(DType::I16).dtype(DType::Bool);
    let e = convert_file(&raw, &npy, &opts).unwrap_err();
    assert!(
        matches!(e, Error::DoesNotFit { ref index, .. } if index == &[0]),
        "{e}"
    );
    opts.cast(CastMode::Unsafe);
    let r = convert_file(&raw, &npy, &opts).unwrap();
    assert_eq!((r.dtype, r.shape.as_slice()), (DType::Bool, &[3][..]));
    let h = outcore::npy::Header::read(&npy).unwrap();
    assert_eq!(h.dtype, DType::Bool);
    assert_eq!(&MappedArray::<u8>::open(&npy).unwrap()[..], &[1, 0, 1]);

    let cube = p(dir.path(), "cube.npy");
    write_i32(&cube, &[2, 3, 4], false, |i| i as i32);
    let mut opts = ConvertOptions::new();
    opts.order(Order::F);
    let e = convert_file(&cube, p(dir.path(), "f.npy"), &opts).unwrap_err();
    assert!(matches!(e, Error::BadShape { .. }), "{e}");
}
