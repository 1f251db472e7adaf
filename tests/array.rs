//! MappedArray / MappedArrayMut: numpy interop both ways, every bad input's error variant,
//! locking within and across processes, and the life cycle of created files.

use std::path::Path;
use std::process::Command;
use std::str::FromStr;

use outcore::{DType, Element, Error, LockKind, MappedArray, MappedArrayMut};

use crate::common::{python, tmpdir};
use crate::require_numpy;

const SHAPES: &[&[usize]] = &[&[], &[0], &[7], &[3, 5], &[2, 3, 4]];

/// numpy's name for each dtype, for scripts.
fn np_name(d: DType) -> &'static str {
    match d {
        DType::Bool => "bool",
        DType::U8 => "uint8",
        DType::U16 => "uint16",
        DType::U32 => "uint32",
        DType::U64 => "uint64",
        DType::I8 => "int8",
        DType::I16 => "int16",
        DType::I32 => "int32",
        DType::I64 => "int64",
        DType::F32 => "float32",
        DType::F64 => "float64",
        _ => unreachable!(),
    }
}

fn shape_str(shape: &[usize]) -> String {
    match shape {
        [] => "()".into(),
        [d] => format!("({d},)"),
        ds => format!(
            "({})",
            ds.iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join(",")
        ),
    }
}

/// Python that builds a test array `a` of `dtype` and `shape` with extremes and specials,
/// then prints its values in C order, one per line, as exact decimal text.
fn np_make(dtype: &str, shape: &str) -> String {
    format!(
        r#"
dt = np.dtype('{dtype}')
shape = {shape}
n = int(np.prod(shape))
if dt.kind == 'f':
    base = np.array([0.0, -0.0, 1.5, -2.25, np.inf, -np.inf, np.nan, 1e-30, 3.0e30, 0.1], dtype=dt)
elif dt.kind == 'b':
    base = np.array([True, False, False], dtype=dt)
else:
    info = np.iinfo(dt)
    base = np.array([0, 1, info.max, info.min, info.max // 3, 7], dtype=dt)
a = np.resize(base, n).reshape(shape)
"#
    )
}

const NP_PRINT: &str = r#"
def show(a):
    for x in a.ravel(order='C').tolist():
        print(int(x) if isinstance(x, bool) else repr(x))
"#;

trait Parse: Sized {
    fn parse(s: &str) -> Self;
}
macro_rules! parse_impl {
    ($($t:ty),*) => {$(impl Parse for $t {
        fn parse(s: &str) -> Self {
            <$t>::from_str(s).unwrap_or_else(|e| panic!("parse {s:?}: {e}"))
        }
    })*};
}
parse_impl!(u8, u16, u32, u64, i8, i16, i32, i64, f32, f64);

/// Compares element-wise, treating NaN as equal to NaN and -0.0 as distinct from 0.0.
fn same<T: Element + Parse>(got: impl IntoIterator<Item = T>, want_text: &str) {
    let want: Vec<T> = want_text.lines().map(T::parse).collect();
    let got: Vec<T> = got.into_iter().collect();
    assert_eq!(got.len(), want.len(), "element count");
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        assert_eq!(
            bytemuck::bytes_of(g),
            bytemuck::bytes_of(w),
            "element {i}: {g:?} != {w:?}"
        );
    }
}

fn numpy_to_outcore<T: Element + Parse>(dir: &Path) {
    let dtype = if T::DTYPE == DType::U8 {
        // bool is read as u8 too; checked separately below.
        "uint8"
    } else {
        np_name(T::DTYPE)
    };
    for shape in SHAPES {
        let path = dir.join(format!("{dtype}-{}.npy", shape.len()));
        let script = format!(
            "{}{}np.save(sys.argv[1], a)\nshow(a)\n",
            np_make(dtype, &shape_str(shape)),
            NP_PRINT
        );
        let values = python(&script, &[path.to_str().unwrap()]);
        let a = MappedArray::<T>::open(&path).unwrap();
        assert_eq!(a.shape(), *shape, "{dtype} {shape:?}");
        assert_eq!(a.len(), shape.iter().product::<usize>());
        assert_eq!(a.view().shape(), *shape);
        same(a.view().iter().copied(), &values);
    }
    // Fortran order: the slice is column-major, the view is logical.
    let path = dir.join(format!("{dtype}-fortran.npy"));
    let script = format!(
        "{}{}a = np.asfortranarray(a)\nassert a.flags.f_contiguous\nnp.save(sys.argv[1], a)\nshow(a)\nprint('--')\nshow(a.T)\n",
        np_make(dtype, "(3, 4)"),
        NP_PRINT
    );
    let out = python(&script, &[path.to_str().unwrap()]);
    let (logical, memory) = out.split_once("--\n").unwrap();
    let a = MappedArray::<T>::open(&path).unwrap();
    assert!(a.is_fortran_order());
    assert_eq!(a.shape(), &[3, 4]);
    same(a.view2().unwrap().iter().copied(), logical);
    same(a.iter().copied(), memory);
}

fn outcore_to_numpy<T: Element + Parse + num_like::FromI64>(dir: &Path) {
    for shape in SHAPES {
        let path = dir.join(format!("out-{}-{}.npy", T::DTYPE.name(), shape.len()));
        let mut a = MappedArrayMut::<T>::create(&path, shape).unwrap();
        for (i, x) in a.iter_mut().enumerate() {
            *x = T::from_i64(i as i64 * 37 - 50);
        }
        let a = a.persist().unwrap();
        let mine: Vec<T> = a.to_vec();
        drop(a);
        let script = format!(
            "{NP_PRINT}a = np.load(sys.argv[1])\nassert a.dtype == np.dtype('{}'), a.dtype\nassert a.shape == {}, a.shape\nb = np.load(sys.argv[1], mmap_mode='r')\nassert (b == a).all() or a.dtype.kind == 'f'\nshow(a)\n",
            np_name(T::DTYPE),
            shape_str(shape)
        );
        let values = python(&script, &[path.to_str().unwrap()]);
        same(mine, &values);
    }
}

/// Test-only conversion of a small integer to every element type (wrapping like `as`).
mod num_like {
    pub trait FromI64 {
        fn from_i64(v: i64) -> Self;
    }
    macro_rules! imp {
        ($($t:ty),*) => {$(impl FromI64 for $t { fn from_i64(v: i64) -> Self { v as $t } })*};
    }
    imp!(u8, u16, u32, u64, i8, i16, i32, i64, f32, f64);
}

macro_rules! for_each_type {
    ($f:ident, $dir:expr) => {
        $f::<u8>($dir);
        $f::<u16>($dir);
        $f::<u32>($dir);
        $f::<u64>($dir);
        $f::<i8>($dir);
        $f::<i16>($dir);
        $f::<i32>($dir);
        $f::<i64>($dir);
        $f::<f32>($dir);
        $f::<f64>($dir);
    };
}

#[test]
fn numpy_writes_outcore_reads_every_dtype_and_shape() {
    require_numpy!();
    let dir = tmpdir();
    for_each_type!(numpy_to_outcore, dir.path());
}

#[test]
fn outcore_writes_numpy_reads_every_dtype_and_shape() {
    require_numpy!();
    let dir = tmpdir();
    for_each_type!(outcore_to_numpy, dir.path());
}

#[test]
fn numpy_bool_reads_as_u8() {
    require_numpy!();
    let dir = tmpdir();
    let path = dir.path().join("b.npy");
    python(
        "np.save(sys.argv[1], np.array([True, False, True, True]))",
        &[path.to_str().unwrap()],
    );
    let a = MappedArray::<u8>::open(&path).unwrap();
    assert_eq!(&a[..], &[1, 0, 1, 1]);
    assert!(matches!(
        MappedArray::<i8>::open(&path),
        Err(Error::DtypeMismatch {
            expected: DType::I8,
            found: DType::Bool,
            ..
        })
    ));
}

#[test]
fn open_memmap_and_header_versions_2_and_3() {
    require_numpy!();
    let dir = tmpdir();
    let d = dir.path().to_str().unwrap();
    python(
        r#"
d = sys.argv[1]
m = np.lib.format.open_memmap(d + '/mm.npy', mode='w+', dtype='<i4', shape=(100, 3))
m[:] = np.arange(300, dtype='<i4').reshape(100, 3) * 3 - 7
m.flush(); del m
for v in [(2, 0), (3, 0)]:
    with open(d + '/v%d.npy' % v[0], 'wb') as f:
        np.lib.format.write_array(f, np.linspace(-1, 1, 33).reshape(3, 11), version=v)
"#,
        &[d],
    );
    let m = MappedArray::<i32>::open(dir.path().join("mm.npy")).unwrap();
    assert_eq!(m.shape(), &[100, 3]);
    assert!(m.iter().enumerate().all(|(i, &x)| x == i as i32 * 3 - 7));
    for v in ["v2.npy", "v3.npy"] {
        let a = MappedArray::<f64>::open(dir.path().join(v)).unwrap();
        let bytes = std::fs::read(dir.path().join(v)).unwrap();
        assert_eq!(bytes[6], v.as_bytes()[1] - b'0', "written as that version");
        assert_eq!(a.shape(), &[3, 11]);
        assert_eq!(a[0], -1.0);
        assert_eq!(a[32], 1.0);
    }
}

#[test]
fn writes_through_read_write_mapping_reach_numpy() {
    require_numpy!();
    let dir = tmpdir();
    let path = dir.path().join("rw.npy");
    python(
        "np.save(sys.argv[1], np.zeros(10, dtype='<f8'))",
        &[path.to_str().unwrap()],
    );
    {
        let mut a = MappedArrayMut::<f64>::open(&path).unwrap();
        a[3] = 2.5;
        a.flush().unwrap();
    }
    {
        let mut c = MappedArrayMut::<f64>::open_copy_on_write(&path).unwrap();
        c[4] = 9.0;
        assert_eq!(c[4], 9.0);
        c.flush().unwrap();
    }
    let out = python(
        "a = np.load(sys.argv[1])\nprint(a[3], a[4])",
        &[path.to_str().unwrap()],
    );
    assert_eq!(
        out.trim(),
        "2.5 0.0",
        "shared write reached the file, private did not"
    );
}

// ---- bad input: one test per error variant ----

fn write(path: &Path, bytes: &[u8]) {
    std::fs::write(path, bytes).unwrap();
}

fn npy_bytes(version: u8, dict: &str, data: &[u8]) -> Vec<u8> {
    let mut v = b"\x93NUMPY".to_vec();
    v.extend_from_slice(&[version, 0]);
    if version == 1 {
        v.extend_from_slice(&(dict.len() as u16).to_le_bytes());
    } else {
        v.extend_from_slice(&(dict.len() as u32).to_le_bytes());
    }
    v.extend_from_slice(dict.as_bytes());
    v.extend_from_slice(data);
    v
}

/// A header dict padded so the data starts at a multiple of 64.
fn dict(descr: &str, shape: &str) -> String {
    let mut d = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
    while (10 + d.len() + 1) % 64 != 0 {
        d.push(' ');
    }
    d.push('\n');
    d
}

fn open_f64(path: &Path) -> outcore::Result<MappedArray<f64>> {
    MappedArray::<f64>::open(path)
}

#[test]
fn bad_magic() {
    let dir = tmpdir();
    let p = dir.path().join("x.npy");
    write(&p, b"PK\x03\x04 this is a zip file");
    let e = open_f64(&p).unwrap_err();
    assert!(matches!(e, Error::BadMagic { .. }), "{e}");
    assert!(
        e.to_string().contains("x.npy"),
        "message names the file: {e}"
    );
}

#[test]
fn unsupported_version() {
    let dir = tmpdir();
    let p = dir.path().join("x.npy");
    write(&p, &npy_bytes(9, &dict("<f8", "(1,)"), &[0; 8]));
    assert!(matches!(
        open_f64(&p),
        Err(Error::UnsupportedVersion { major: 9, .. })
    ));
}

#[test]
fn truncated_header() {
    let dir = tmpdir();
    let p = dir.path().join("x.npy");
    write(&p, b"\x93NUMPY\x01");
    assert!(matches!(open_f64(&p), Err(Error::TruncatedHeader { .. })));
}

#[test]
fn header_longer_than_the_file() {
    let dir = tmpdir();
    let p = dir.path().join("x.npy");
    let mut b = npy_bytes(1, &dict("<f8", "(1,)"), &[]);
    b[8..10].copy_from_slice(&5000u16.to_le_bytes());
    write(&p, &b);
    let e = open_f64(&p).unwrap_err();
    assert!(
        matches!(e, Error::TruncatedHeader { needed: 5010, .. }),
        "{e}"
    );
}

#[test]
fn header_too_long() {
    let dir = tmpdir();
    let p = dir.path().join("x.npy");
    let mut b = npy_bytes(2, "{}", &[]);
    b[8..12].copy_from_slice(&(100u32 << 20).to_le_bytes());
    write(&p, &b);
    assert!(matches!(open_f64(&p), Err(Error::HeaderTooLong { .. })));
}

#[test]
fn malformed_dict() {
    let dir = tmpdir();
    let p = dir.path().join("x.npy");
    write(
        &p,
        &npy_bytes(1, "{'descr': '<f8', 'shape': (1,)}\n", &[0; 8]),
    );
    let e = open_f64(&p).unwrap_err();
    assert!(matches!(e, Error::MalformedHeader { .. }), "{e}");
    write(&p, &npy_bytes(1, "not a dict at all\n", &[0; 8]));
    assert!(matches!(open_f64(&p), Err(Error::MalformedHeader { .. })));
}

#[test]
fn unsupported_dtypes_from_numpy() {
    require_numpy!();
    let dir = tmpdir();
    let d = dir.path().to_str().unwrap();
    python(
        r#"
d = sys.argv[1]
np.save(d + '/be.npy', np.arange(4, dtype='>f8'))
np.save(d + '/cx.npy', np.arange(4, dtype='<c16'))
np.save(d + '/st.npy', np.zeros(4, dtype=[('a', '<i4'), ('b', '<f8')]))
np.save(d + '/ob.npy', np.array([1, 'x', None], dtype=object), allow_pickle=True)
"#,
        &[d],
    );
    for (f, hint) in [
        ("be.npy", "astype('<f8')"),
        ("cx.npy", "complex"),
        ("st.npy", "structured"),
        ("ob.npy", "object"),
    ] {
        let e = open_f64(&dir.path().join(f)).unwrap_err();
        assert!(matches!(e, Error::UnsupportedDtype { .. }), "{f}: {e}");
        assert!(e.to_string().contains(hint), "{f}: hint in {e}");
    }
}

#[test]
fn dtype_mismatch_names_both() {
    let dir = tmpdir();
    let p = dir.path().join("x.npy");
    MappedArrayMut::<f32>::create(&p, &[3])
        .unwrap()
        .persist()
        .unwrap();
    let e = open_f64(&p).unwrap_err();
    assert!(
        matches!(
            e,
            Error::DtypeMismatch {
                expected: DType::F64,
                found: DType::F32,
                ..
            }
        ),
        "{e}"
    );
    let msg = e.to_string();
    assert!(
        msg.contains("<f4") && msg.contains("<f8") && msg.contains("x.npy"),
        "{msg}"
    );
}

#[test]
fn shape_product_overflow() {
    let dir = tmpdir();
    let p = dir.path().join("x.npy");
    let shape = format!("({}, {})", u64::MAX / 4, 16);
    write(&p, &npy_bytes(1, &dict("<f8", &shape), &[]));
    assert!(matches!(open_f64(&p), Err(Error::ShapeOverflow { .. })));
    // Empty, but with an axis no view can describe; and a size that overflows offset+length.
    for shape in ["(0, 9223372036854775808)", "(2305843009213693951,)"] {
        write(&p, &npy_bytes(1, &dict("<f8", shape), &[]));
        let e = open_f64(&p).unwrap_err();
        assert!(matches!(e, Error::ShapeOverflow { .. }), "{shape}: {e}");
    }
    assert!(matches!(
        MappedArrayMut::<u8>::create(&p, &[1; 65]),
        Err(Error::ShapeOverflow { .. })
    ));
    assert!(matches!(
        MappedArrayMut::<f64>::create(&p, &[usize::MAX / 2, 3]),
        Err(Error::ShapeOverflow { .. })
    ));
}

#[test]
fn file_size_not_matching_shape() {
    let dir = tmpdir();
    let p = dir.path().join("x.npy");
    write(&p, &npy_bytes(1, &dict("<f8", "(4,)"), &[0; 24]));
    let e = open_f64(&p).unwrap_err();
    assert!(
        matches!(e, Error::SizeMismatch { expected, actual, .. } if expected == actual + 8),
        "{e}"
    );
    write(&p, &npy_bytes(1, &dict("<f8", "(4,)"), &[0; 40]));
    assert!(matches!(open_f64(&p), Err(Error::SizeMismatch { .. })));
}

#[test]
fn raw_size_not_a_multiple() {
    let dir = tmpdir();
    let p = dir.path().join("x.raw");
    write(&p, &[0; 13]);
    let e = MappedArray::<u32>::open_raw(&p).unwrap_err();
    assert!(
        matches!(
            e,
            Error::NotAMultiple {
                len: 13,
                elem_size: 4,
                ..
            }
        ),
        "{e}"
    );
}

#[test]
fn misaligned_data_offset() {
    let dir = tmpdir();
    let p = dir.path().join("x.npy");
    // A hand-made header whose data starts at byte 81: not aligned for f64.
    let mut d = "{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }".to_string();
    while 10 + d.len() + 1 < 81 {
        d.push(' ');
    }
    d.push('\n');
    write(&p, &npy_bytes(1, &d, &[0; 16]));
    let e = open_f64(&p).unwrap_err();
    assert!(
        matches!(
            e,
            Error::Misaligned {
                offset: 81,
                align: 8,
                ..
            }
        ),
        "{e}"
    );
    // u8 data needs no alignment: the same layout opens.
    let mut d8 = d.replace("<f8", "|u1");
    d8.insert(d8.len() - 1, ' ');
    d8.remove(d8.len() - 2);
    write(&p, &npy_bytes(1, &d8, &[7; 2]));
    assert_eq!(&MappedArray::<u8>::open(&p).unwrap()[..], &[7, 7]);
}

#[test]
fn missing_file() {
    let dir = tmpdir();
    let p = dir.path().join("nope.npy");
    let e = open_f64(&p).unwrap_err();
    assert!(matches!(e, Error::NotFound { .. }), "{e}");
    assert!(e.to_string().contains("nope.npy"));
    assert!(matches!(
        MappedArrayMut::<f64>::create(dir.path().join("no/such/dir/x.npy"), &[1]),
        Err(Error::NotFound { .. })
    ));
}

#[test]
fn read_only_file_opened_for_writing() {
    let dir = tmpdir();
    let p = dir.path().join("ro.npy");
    MappedArrayMut::<u16>::create(&p, &[5])
        .unwrap()
        .persist()
        .unwrap();
    let mut perms = std::fs::metadata(&p).unwrap().permissions();
    perms.set_readonly(true);
    std::fs::set_permissions(&p, perms).unwrap();
    // root ignores permission bits; the immutable attribute stops root too.
    let immutable = is_root()
        && Command::new("chattr")
            .arg("+i")
            .arg(&p)
            .status()
            .is_ok_and(|s| s.success());
    if !is_root() || immutable {
        let e = MappedArrayMut::<u16>::open(&p).unwrap_err();
        assert!(matches!(e, Error::PermissionDenied { .. }), "{e}");
        // Reading still works.
        assert_eq!(MappedArray::<u16>::open(&p).unwrap().len(), 5);
        assert_eq!(
            MappedArrayMut::<u16>::open_copy_on_write(&p).unwrap().len(),
            5
        );
    } else {
        eprintln!("skipped: running as root without chattr, cannot make a file read-only");
    }
    if immutable {
        Command::new("chattr").arg("-i").arg(&p).status().unwrap();
    }
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

#[test]
fn disk_full_on_create_leaves_nothing() {
    let Some(disk) = crate::common::SmallDisk::mount("1m") else {
        return;
    };
    let dest = disk.path.join("big.npy");
    let e = MappedArrayMut::<f64>::create(&dest, &[1 << 20]).unwrap_err();
    assert!(matches!(e, Error::DiskFull { .. }), "{e}");
    assert!(e.to_string().contains("big.npy"), "{e}");
    assert!(disk.listing().is_empty(), "nothing left behind");
}

#[test]
fn empty_raw_file_is_an_empty_array() {
    let dir = tmpdir();
    let p = dir.path().join("e.raw");
    write(&p, &[]);
    let a = MappedArray::<f64>::open_raw(&p).unwrap();
    assert!(a.is_empty());
    assert_eq!(a.shape(), &[0]);
    assert_eq!(a.view1().unwrap().len(), 0);
}

// ---- created files, raw records, anonymous memory ----

#[test]
fn created_file_appears_only_on_persist() {
    let dir = tmpdir();
    let dest = dir.path().join("out.npy");
    let mut a = MappedArrayMut::<i64>::create(&dest, &[1000]).unwrap();
    a.fill(5);
    assert!(!dest.exists(), "not visible before persist");
    assert!(a.is_pending());
    drop(a);
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "temp removed"
    );

    std::fs::write(&dest, b"old content").unwrap();
    let mut a = MappedArrayMut::<i64>::create(&dest, &[1000]).unwrap();
    a.fill(6);
    assert_eq!(std::fs::read(&dest).unwrap(), b"old content");
    let a = a.into_read_only().unwrap();
    assert!(a.iter().all(|&x| x == 6));
    assert_eq!(a.path(), Some(dest.as_path()));
    drop(a);
    let b = MappedArray::<i64>::open(&dest).unwrap();
    assert!(b.iter().all(|&x| x == 6));
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
}

#[test]
fn raw_records_round_trip() {
    let dir = tmpdir();
    let p = dir.path().join("r.raw");
    let mut a = MappedArrayMut::<[u8; 100]>::create_raw(&p, 50).unwrap();
    for (i, r) in a.iter_mut().enumerate() {
        r[0] = i as u8;
        r[99] = 255 - i as u8;
    }
    a.persist().unwrap();
    assert_eq!(std::fs::metadata(&p).unwrap().len(), 5000);
    let b = MappedArray::<[u8; 100]>::open_raw(&p).unwrap();
    assert_eq!(b.len(), 50);
    assert!(b
        .iter()
        .enumerate()
        .all(|(i, r)| r[0] == i as u8 && r[99] == 255 - i as u8));
    assert!(matches!(
        MappedArray::<[u8; 3]>::open_raw(&p),
        Err(Error::NotAMultiple { .. })
    ));
}

#[test]
fn anonymous_is_zeroed_scratch() {
    let mut a = MappedArrayMut::<u32>::anonymous(10_000).unwrap();
    assert!(a.iter().all(|&x| x == 0));
    a[9_999] = 7;
    assert_eq!(a.path(), None);
    a.flush().unwrap();
    a.release(0..10_000).unwrap();
    assert_eq!(a[9_999], 7, "release never drops anonymous data");
    assert!(MappedArrayMut::<u32>::anonymous(0).unwrap().is_empty());
}

#[test]
fn zero_sized_elements_and_directories_are_refused() {
    assert!(matches!(
        MappedArrayMut::<()>::anonymous(3),
        Err(Error::ZeroSizedElement { op: "mapped" })
    ));
    let dir = tmpdir();
    assert!(matches!(
        MappedArray::<u8>::open_raw(dir.path()),
        Err(Error::NotAFile { ref path }) if path == dir.path()
    ));
    assert!(matches!(
        MappedArrayMut::<u8>::create_raw("/", 1),
        Err(Error::NotAFileName { ref path }) if path == Path::new("/")
    ));
}

#[test]
fn advice_and_release_keep_data() {
    let dir = tmpdir();
    let p = dir.path().join("a.npy");
    let n = 3 << 20;
    let mut a = MappedArrayMut::<u32>::create(&p, &[n]).unwrap();
    for (i, x) in a.iter_mut().enumerate() {
        *x = i as u32;
    }
    a.release(0..n / 2).unwrap();
    let a = a.persist().unwrap();
    drop(a);
    let a = MappedArray::<u32>::open(&p)
        .unwrap()
        .with_advice(outcore::Advice::Sequential)
        .unwrap();
    for adv in [
        outcore::Advice::Sequential,
        outcore::Advice::Random,
        outcore::Advice::WillNeed,
        outcore::Advice::Normal,
    ] {
        a.advise(adv).unwrap();
    }
    a.advise_range(10..20, outcore::Advice::WillNeed).unwrap();
    a.release(0..n).unwrap();
    a.check_size().unwrap();
    assert!(a.iter().enumerate().all(|(i, &x)| x == i as u32));
}

#[test]
fn views_have_the_file_shape() {
    let dir = tmpdir();
    let p = dir.path().join("v.npy");
    let mut a = MappedArrayMut::<f32>::create(&p, &[4, 6]).unwrap();
    a.view2_mut().unwrap()[[3, 5]] = 1.0;
    assert_eq!(a[23], 1.0);
    assert!(matches!(a.view1_mut(), Err(Error::BadShape { .. })));
    let a = a.into_read_only().unwrap();
    assert_eq!(a.view2().unwrap().dim(), (4, 6));
    assert!(matches!(a.view1(), Err(Error::BadShape { .. })));
}

// ---- locking within and across processes ----

#[test]
fn second_writer_is_refused_at_once() {
    let dir = tmpdir();
    let p = dir.path().join("l.npy");
    MappedArrayMut::<u8>::create(&p, &[10])
        .unwrap()
        .persist()
        .unwrap();
    let w = MappedArrayMut::<u8>::open(&p).unwrap();
    assert!(matches!(
        MappedArrayMut::<u8>::open(&p),
        Err(Error::Locked {
            mode: LockKind::Exclusive,
            ..
        })
    ));
    assert!(matches!(
        MappedArray::<u8>::open(&p),
        Err(Error::Locked {
            mode: LockKind::Shared,
            ..
        })
    ));
    drop(w);
    let r1 = MappedArray::<u8>::open(&p).unwrap();
    let r2 = MappedArray::<u8>::open(&p).unwrap();
    assert!(matches!(
        MappedArrayMut::<u8>::open(&p),
        Err(Error::Locked { .. })
    ));
    drop((r1, r2));
    MappedArrayMut::<u8>::open(&p).unwrap();
}

fn spawn_child(args: &str) -> std::process::Output {
    crate::common::run_child("array::child_entry", args)
}

/// The child side of the two-process tests; does nothing unless run by `spawn_child`.
#[test]
#[ignore = "run by the two-process tests as a child process"]
fn child_entry() {
    let Ok(args) = std::env::var("OUTCORE_TEST_CHILD") else {
        return;
    };
    let (cmd, path) = args.split_once(' ').unwrap();
    match cmd {
        "open-writer" => match MappedArrayMut::<u64>::open(path) {
            Err(Error::Locked { .. }) => println!("CHILD: locked"),
            Err(e) => println!("CHILD: error {e}"),
            Ok(_) => println!("CHILD: opened"),
        },
        "write-shared" => {
            // SAFETY: the parent only reads elements 100..200 after this process exits; no
            // one else writes them.
            let mut a = unsafe { MappedArrayMut::<u64>::open_shared(path) }.unwrap();
            for i in 100..200 {
                a[i] = i as u64 * 1000;
            }
            // No flush: a shared mapping's writes are visible to other mappings at once.
            println!("CHILD: wrote");
        }
        _ => panic!("unknown child command {cmd}"),
    }
}

#[test]
fn other_process_writer_is_refused_under_default_policy() {
    let dir = tmpdir();
    let p = dir.path().join("x.npy");
    let a = MappedArrayMut::<u64>::create(&p, &[1000])
        .unwrap()
        .persist()
        .unwrap();
    let start = std::time::Instant::now();
    let out = spawn_child(&format!("open-writer {}", p.display()));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("CHILD: locked"), "{text}");
    assert!(
        start.elapsed() < std::time::Duration::from_secs(60),
        "refused at once, not after a wait"
    );
    drop(a);
    let out = spawn_child(&format!("open-writer {}", p.display()));
    assert!(String::from_utf8_lossy(&out.stdout).contains("CHILD: opened"));
}

#[test]
fn cooperating_processes_share_a_writable_mapping() {
    let dir = tmpdir();
    let p = dir.path().join("shared.npy");
    MappedArrayMut::<u64>::create(&p, &[1000])
        .unwrap()
        .persist()
        .unwrap();
    // SAFETY: the child writes only 100..200, which this process reads only after the child
    // has exited.
    let mut mine = unsafe { MappedArrayMut::<u64>::open_shared(&p) }.unwrap();
    mine[0] = 42;
    let out = spawn_child(&format!("write-shared {}", p.display()));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("CHILD: wrote"), "{text}");
    for i in 100..200 {
        assert_eq!(
            mine[i],
            i as u64 * 1000,
            "seen through the parent's mapping"
        );
    }
    assert_eq!(mine[0], 42);
    assert_eq!(mine[99], 0);
    // An ordinary writer is still refused while cooperating users hold the file.
    assert!(matches!(
        MappedArrayMut::<u64>::open(&p),
        Err(Error::Locked { .. })
    ));
}

#[test]
fn resident_bytes_follows_reads_and_releases() {
    let dir = tmpdir();
    let path = dir.path().join("r.npy");
    let n = 4 << 20; // 32 MiB of f64
    let mut a = MappedArrayMut::<f64>::create(&path, &[n]).unwrap();
    a.iter_mut().enumerate().for_each(|(i, x)| *x = i as f64);
    a.persist().unwrap();
    let a = MappedArray::<f64>::open(&path).unwrap();
    let file_len = std::fs::metadata(&path).unwrap().len();
    // Read every element: the whole file is then in memory.
    let sum: f64 = a.iter().sum();
    assert!(sum > 0.0);
    let (resident, total) = a.resident_bytes().unwrap();
    assert_eq!(total, file_len);
    assert_eq!(resident, total, "a file just read is resident");
    assert_eq!(outcore::resident_bytes(&path).unwrap(), (resident, total));
    a.release(0..a.len()).unwrap();
    let (after, _) = a.resident_bytes().unwrap();
    assert!(
        after < total / 2,
        "after release, {after} of {total} bytes still resident"
    );
    // Asking does not fault pages in.
    assert_eq!(outcore::resident_bytes(&path).unwrap().0, after);
}

#[test]
fn create_fortran_writes_a_column_major_npy() {
    require_numpy!();
    let dir = tmpdir();
    let path = dir.path().join("f.npy");
    let mut a = MappedArrayMut::<i32>::create_fortran(&path, &[2, 3]).unwrap();
    {
        let mut v = a.view2_mut().unwrap();
        for i in 0..2 {
            for j in 0..3 {
                v[[i, j]] = (10 * i + j) as i32;
            }
        }
    }
    // Column-major in memory.
    assert_eq!(&a[..], &[0, 10, 1, 11, 2, 12]);
    a.persist().unwrap();
    let out = python(
        "a = np.load(sys.argv[1]); print(a.flags.f_contiguous, a.tolist())",
        &[path.to_str().unwrap()],
    );
    assert_eq!(out.trim(), "True [[0, 1, 2], [10, 11, 12]]");
    let back = MappedArray::<i32>::open(&path).unwrap();
    assert!(back.is_fortran_order());
    // 1-D: no order; the header says C, as numpy writes it.
    let p1 = dir.path().join("one.npy");
    MappedArrayMut::<u8>::create_fortran(&p1, &[4])
        .unwrap()
        .persist()
        .unwrap();
    assert!(!MappedArray::<u8>::open(&p1).unwrap().is_fortran_order());
}
