//! Zarr in and out: round trips, statistics chunk by chunk, bad input, and interop with
//! zarr-python and dask (skipped with a notice when they do not import, required under
//! `OUTCORE_REQUIRE_ZARR=1`).

use std::path::Path;
use std::sync::OnceLock;

use num_traits::NumCast;
use outcore::kernels::{self, Numeric};
use outcore::zarr::{self, ZarrCodec, ZarrReadOptions, ZarrWriteOptions};
use outcore::{open_any, with_any, with_dtype, DType, Element, Error, MappedArrayMut};

use crate::common::{python, python_imports, tmpdir};

/// Whether zarr, dask and distributed import with the test Python ([`python_imports`];
/// `OUTCORE_REQUIRE_ZARR=1` makes a missing one a failure).
fn have_zarr() -> bool {
    static HAVE: OnceLock<bool> = OnceLock::new();
    *HAVE.get_or_init(|| {
        python_imports(
            "numpy, zarr, dask.array, distributed",
            "OUTCORE_REQUIRE_ZARR",
            "pip install zarr 'dask[array]' distributed",
        )
    })
}

macro_rules! require_zarr {
    () => {
        if !have_zarr() {
            eprintln!(
                "skipped: {} needs zarr, dask and distributed",
                module_path!()
            );
            return;
        }
    };
}

/// Deterministic values that fit every dtype: 0/1 for bool, small integers (negative ones
/// for signed types), quarters for floats.
fn values<T: Numeric>(n: usize, bool01: bool) -> Vec<T> {
    let signed = T::min_value() < T::zero();
    (0..n)
        .map(|i| {
            let mut v = ((i * 7919 + 13) % 200) as f64;
            if bool01 {
                v = (v as u64 % 2) as f64;
            } else if signed {
                v -= 100.0;
            }
            if T::IS_FLOAT {
                v += 0.25;
            }
            <T as NumCast>::from(v).unwrap()
        })
        .collect()
}

/// Writes a C-order `.npy` of `dtype` and `shape` with [`values`]; `|b1` for bool.
fn make_npy(path: &Path, dtype: DType, shape: &[usize]) {
    let n = shape.iter().product();
    with_dtype!(dtype, T => {
        let mut a = MappedArrayMut::<T>::create(path, shape).unwrap();
        a.copy_from_slice(&values::<T>(n, dtype == DType::Bool));
        a.persist().unwrap();
    });
    if dtype == DType::Bool {
        let mut bytes = std::fs::read(path).unwrap();
        let pos = bytes.windows(3).position(|w| w == b"|u1").unwrap();
        bytes[pos..pos + 3].copy_from_slice(b"|b1");
        std::fs::write(path, &bytes).unwrap();
    }
}

/// dtype, shape and raw bytes of a `.npy`.
fn npy_contents(path: &Path) -> (DType, Vec<usize>, Vec<u8>) {
    let a = open_any(path).unwrap();
    let bytes = with_any!(&a, x => bytemuck::cast_slice::<_, u8>(x.as_slice()).to_vec());
    (a.dtype(), a.shape().to_vec(), bytes)
}

fn write_opts(chunks: &[u64], codec: ZarrCodec) -> ZarrWriteOptions {
    let mut o = ZarrWriteOptions::new();
    o.chunks(chunks).codec(codec);
    o
}

fn listing(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

const CODECS: [ZarrCodec; 2] = [ZarrCodec::None, ZarrCodec::Zstd { level: 3 }];

/// (shape, chunks) cases: 1-D and 2-D, with partial edge chunks, one chunk larger than the
/// array, and an exact fit.
const SHAPES: [(&[usize], &[u64]); 4] = [
    (&[100], &[30]),
    (&[13, 7], &[5, 3]),
    (&[4, 6], &[8, 8]),
    (&[6, 4], &[3, 2]),
];

#[test]
fn round_trip_every_dtype_shape_and_codec() {
    let dir = tmpdir();
    for d in DType::ALL {
        for (shape, chunks) in SHAPES {
            for codec in CODECS {
                let tag = format!("{}-{}-{:?}", d.name(), shape.len(), codec)
                    .replace([' ', '{', '}', ':'], "");
                let src = dir.path().join(format!("{tag}-{}.npy", chunks[0]));
                let z = dir.path().join(format!("{tag}-{}.zarr", chunks[0]));
                let back = dir.path().join(format!("{tag}-{}.back.npy", chunks[0]));
                make_npy(&src, d, shape);
                let za = zarr::from_npy(&src, &z, &write_opts(chunks, codec)).unwrap();
                assert_eq!(za.dtype(), d);
                assert_eq!(za.shape(), shape);
                assert_eq!(za.zarr_format(), 3);
                let expect_codecs: &[&str] = match codec {
                    ZarrCodec::None => &["bytes"],
                    _ => &["bytes", "zstd"],
                };
                assert_eq!(za.codecs(), expect_codecs);
                assert_eq!(
                    za.chunk_shape(),
                    chunks.iter().map(|&c| c as usize).collect::<Vec<_>>()
                );
                zarr::to_npy(&z, &back, &ZarrReadOptions::new()).unwrap();
                assert_eq!(npy_contents(&back), npy_contents(&src), "{tag}");
            }
        }
    }
    assert!(!listing(dir.path())
        .iter()
        .any(|n| n.contains(outcore::TEMP_MARKER)));
}

#[test]
fn small_memory_budget_and_one_thread_give_the_same_result() {
    let dir = tmpdir();
    let data = values::<f64>(10_000, false);
    let z = dir.path().join("x.zarr");
    let mut o = write_opts(&[97], ZarrCodec::default());
    o.memory(1); // one chunk at a time
    let za = zarr::write_slice(&data, &[100, 100], &z, o.chunks(&[7, 13])).unwrap();
    let mut r = ZarrReadOptions::new();
    r.memory(1);
    let mut one = outcore::ParOptions::new();
    one.threads(1);
    let s1 = za.summary(&r).unwrap();
    let s2 = za.summary(ZarrReadOptions::new().par(one)).unwrap();
    assert_eq!(s1, s2);
    za.to_npy(dir.path().join("y.npy"), &r).unwrap();
    let y = outcore::MappedArray::<f64>::open(dir.path().join("y.npy")).unwrap();
    assert_eq!(y.as_slice(), &data[..]);
}

#[test]
fn default_chunks_hold_whole_rows_of_about_a_mebibyte() {
    let dir = tmpdir();
    let data = vec![1.5f32; 300_000 * 2];
    let za = zarr::write_slice(
        &data,
        &[300_000, 2],
        dir.path().join("x.zarr"),
        &ZarrWriteOptions::new(),
    )
    .unwrap();
    assert_eq!(za.chunk_shape(), &[131_072, 2]);
    assert_eq!(za.chunk_grid_shape(), &[3, 1]);
}

#[test]
fn fortran_order_input_is_written_as_the_logical_array() {
    crate::require_numpy!();
    let dir = tmpdir();
    let f = dir.path().join("f.npy");
    let c = dir.path().join("c.npy");
    python(
        "a = np.arange(35, dtype='<i4').reshape(5, 7) * 3 - 50\n\
         np.save(sys.argv[1], np.asfortranarray(a)); np.save(sys.argv[2], a)",
        &[f.to_str().unwrap(), c.to_str().unwrap()],
    );
    assert!(open_any(&f).unwrap().is_fortran_order());
    let z = dir.path().join("f.zarr");
    zarr::from_npy(&f, &z, &write_opts(&[2, 3], ZarrCodec::default())).unwrap();
    let back = dir.path().join("back.npy");
    zarr::to_npy(&z, &back, &ZarrReadOptions::new()).unwrap();
    assert_eq!(npy_contents(&back), npy_contents(&c));
}

fn check_summary<T: Numeric + Element>(data: &[T], shape: &[usize], chunks: &[u64]) {
    let dir = tmpdir();
    let za = zarr::write_slice(
        data,
        shape,
        dir.path().join("x.zarr"),
        &write_opts(chunks, ZarrCodec::default()),
    )
    .unwrap();
    let s = za.summary(&ZarrReadOptions::new()).unwrap();
    let m = kernels::moments(data);
    assert_eq!(s.count, data.len() as u64);
    let close =
        |a: f64, b: f64| (a.is_nan() && b.is_nan()) || (a - b).abs() <= 1e-12 * b.abs().max(1.0);
    assert!(close(s.mean, m.mean()), "{} vs {}", s.mean, m.mean());
    assert!(close(s.std, m.std(0)), "{} vs {}", s.std, m.std(0));
    assert_eq!(s.argmin, kernels::argmin(data).map(|i| i as u64));
    assert_eq!(s.argmax, kernels::argmax(data).map(|i| i as u64));
    let (lo, hi) = (-120.0, 130.0);
    let h = za.histogram(17, (lo, hi), &ZarrReadOptions::new()).unwrap();
    assert_eq!(h, kernels::histogram(data, 17, Some((lo, hi))).unwrap());
}

#[test]
fn summary_and_histogram_match_the_kernels() {
    // 2-D chunks: chunk order is not index order, argmin/argmax ties resolve to the first.
    check_summary(&values::<i16>(13 * 7, false), &[13, 7], &[5, 3]);
    check_summary(&values::<u8>(1000, false), &[1000], &[64]);
    check_summary(&values::<f64>(50 * 9, false), &[50, 9], &[7, 4]);
    let mut with_nan = values::<f32>(40 * 5, false);
    with_nan[123] = f32::NAN;
    with_nan[77] = f32::NAN;
    check_summary(&with_nan, &[40, 5], &[6, 2]);
}

fn check_quantiles<T: Numeric + Element + outcore::sort::SortKey>(data: &[T], shape: &[usize]) {
    use outcore::kernels::{QuantileMethod, QuantileOptions};
    let dir = tmpdir();
    let z = dir.path().join("q.zarr");
    let za = zarr::write_slice(
        data,
        shape,
        &z,
        &write_opts(&[7, 3][..shape.len()], ZarrCodec::default()),
    )
    .unwrap();
    let qs = [0.0, 0.1, 0.25, 0.5, 0.9, 0.999, 1.0];
    for method in [
        QuantileMethod::Linear,
        QuantileMethod::Lower,
        QuantileMethod::Nearest,
        QuantileMethod::Midpoint,
    ] {
        for skip_nan in [false, true] {
            let mut qo = QuantileOptions::new();
            qo.method(method).skip_nan(skip_nan).memory(64); // several passes
            let got = za
                .quantiles::<T>(&qs, &qo, &ZarrReadOptions::new())
                .unwrap();
            let want = if skip_nan {
                kernels::nanquantiles(data, &qs, method)
            } else {
                kernels::quantiles(data, &qs, method)
            }
            .unwrap();
            let bits = |v: &[kernels::QuantileValue<T>]| {
                v.iter().map(|x| x.to_f64().to_bits()).collect::<Vec<_>>()
            };
            assert_eq!(
                bits(&got.values),
                bits(&want),
                "{method:?} skip_nan={skip_nan}"
            );
        }
    }
    assert_eq!(
        listing(dir.path()),
        vec!["q.zarr"],
        "the scratch copy is gone"
    );
}

#[test]
fn quantiles_match_the_kernels() {
    check_quantiles(&values::<i32>(13 * 7, false), &[13, 7]);
    check_quantiles(&values::<u64>(500, false), &[500]);
    let mut with_nan = values::<f64>(40 * 5, false);
    with_nan[17] = f64::NAN;
    check_quantiles(&with_nan, &[40, 5]);

    let dir = tmpdir();
    let za = zarr::write_slice(
        &[1i32, 2, 3],
        &[3],
        dir.path().join("i.zarr"),
        &ZarrWriteOptions::new(),
    )
    .unwrap();
    let e = za.quantiles::<f64>(&[0.5], &Default::default(), &ZarrReadOptions::new());
    assert!(matches!(
        e,
        Err(Error::DtypeMismatch {
            expected: DType::F64,
            found: DType::I32,
            ..
        })
    ));
}

#[test]
fn empty_array() {
    let dir = tmpdir();
    let za = zarr::write_slice::<f64>(
        &[],
        &[0, 3],
        dir.path().join("e.zarr"),
        &ZarrWriteOptions::new(),
    )
    .unwrap();
    assert_eq!(za.num_chunks(), 0);
    let s = za.summary(&ZarrReadOptions::new()).unwrap();
    assert_eq!(s.count, 0);
    assert!(s.mean.is_nan());
    assert_eq!(
        za.histogram(3, (0.0, 1.0), &ZarrReadOptions::new())
            .unwrap(),
        vec![0, 0, 0]
    );
    za.to_npy(dir.path().join("e.npy"), &ZarrReadOptions::new())
        .unwrap();
    assert_eq!(open_any(dir.path().join("e.npy")).unwrap().shape(), &[0, 3]);
}

#[test]
fn fold_chunks_sees_each_chunk_once_in_order() {
    let dir = tmpdir();
    let data: Vec<u32> = (0..13 * 7).collect();
    let za = zarr::write_slice(
        &data,
        &[13, 7],
        dir.path().join("x.zarr"),
        &write_opts(&[5, 3], ZarrCodec::None),
    )
    .unwrap();
    let seen = za
        .fold_chunks(
            &ZarrReadOptions::new(),
            |info, chunk: &[u32]| {
                // Every element's value is its flat index.
                for (i, &v) in chunk.iter().enumerate() {
                    assert_eq!(info.global_index(i), v as u64);
                }
                vec![(info.indices().to_vec(), info.shape().to_vec())]
            },
            |mut a, b| {
                a.extend(b);
                a
            },
        )
        .unwrap()
        .unwrap();
    assert_eq!(seen.len(), 9);
    let (info, chunk) = za.read_chunk::<u32>(&[2, 1]).unwrap();
    assert_eq!(
        (info.number(), info.start(), info.shape()),
        (7, &[10, 3][..], &[3, 3][..])
    );
    assert_eq!(chunk, [73, 74, 75, 80, 81, 82, 87, 88, 89]);
    assert!(matches!(
        za.read_chunk::<u32>(&[3, 0]),
        Err(Error::ChunkOutOfGrid { ref chunk, ref grid, .. }) if chunk == &[3, 0] && grid == &[3, 3]
    ));
    assert!(matches!(
        za.read_chunk::<u32>(&[0]),
        Err(Error::ChunkOutOfGrid { ref chunk, .. }) if chunk == &[0]
    ));
    assert_eq!(seen[0], (vec![0, 0], vec![5, 3]));
    assert_eq!(seen[2], (vec![0, 2], vec![5, 1]));
    assert_eq!(seen[8], (vec![2, 2], vec![3, 1]));
    assert!(matches!(
        za.fold_chunks(
            &ZarrReadOptions::new(),
            |_, c: &[i32]| c.len(),
            |a, b| a + b
        ),
        Err(Error::DtypeMismatch { .. })
    ));
}

// ---------------------------------------------------------------------------------------
// Bad input

#[test]
fn existing_destination_is_refused_unless_replaced() {
    let dir = tmpdir();
    let z = dir.path().join("x.zarr");
    let npy = dir.path().join("x.npy");
    zarr::write_slice(&[1u8, 2, 3], &[3], &z, &ZarrWriteOptions::new()).unwrap();
    let e = zarr::write_slice(&[4u8, 5, 6], &[3], &z, &ZarrWriteOptions::new()).unwrap_err();
    assert!(
        matches!(&e, Error::AlreadyExists { path } if path == &z),
        "{e}"
    );
    let za = zarr::write_slice(
        &[4u8, 5, 6],
        &[3],
        &z,
        ZarrWriteOptions::new().replace(true),
    )
    .unwrap();
    za.to_npy(&npy, &ZarrReadOptions::new()).unwrap();
    assert_eq!(npy_contents(&npy).2, vec![4, 5, 6]);
    assert!(matches!(
        za.to_npy(&npy, &ZarrReadOptions::new()),
        Err(Error::AlreadyExists { .. })
    ));
    za.to_npy(&npy, ZarrReadOptions::new().replace(true))
        .unwrap();
    assert_eq!(listing(dir.path()), vec!["x.npy", "x.zarr"]);
}

#[test]
fn stale_temporary_directories_are_removed_and_live_ones_kept() {
    let dir = tmpdir();
    let stale = dir
        .path()
        .join(format!(".x.zarr{}4194399-0", outcore::TEMP_MARKER));
    let live = dir
        .path()
        .join(format!(".y.zarr{}4194399-1", outcore::TEMP_MARKER));
    for d in [&stale, &live] {
        std::fs::create_dir_all(d.join("c")).unwrap();
        std::fs::write(d.join("c").join("0"), b"chunk").unwrap();
    }
    // A live writer holds its directory under an exclusive lock.
    let held = std::fs::File::open(&live).unwrap();
    held.try_lock().unwrap();
    assert_eq!(outcore::remove_stale_temp_files(dir.path()).unwrap(), 1);
    assert!(!stale.exists());
    assert!(live.exists());
}

#[test]
fn bad_chunk_shapes_are_refused_before_anything_is_written() {
    let dir = tmpdir();
    let z = dir.path().join("x.zarr");
    for chunks in [&[0u64, 2][..], &[2], &[1, 1, 1]] {
        let e = zarr::write_slice(
            &[0u16; 6],
            &[2, 3],
            &z,
            &write_opts(chunks, ZarrCodec::None),
        )
        .unwrap_err();
        assert!(
            matches!(&e, Error::BadChunkShape { chunks: c, shape, .. }
                if c == chunks && shape == &[2, 3]),
            "{e}"
        );
    }
    assert!(listing(dir.path()).is_empty());
}

#[test]
fn missing_or_malformed_metadata() {
    let dir = tmpdir();
    let missing = dir.path().join("nope.zarr");
    assert!(matches!(
        zarr::ZarrArray::open(&missing),
        Err(Error::NotFound { .. })
    ));

    let empty = dir.path().join("empty.zarr");
    std::fs::create_dir(&empty).unwrap();
    let e = zarr::ZarrArray::open(&empty).unwrap_err();
    assert!(
        matches!(&e, Error::Zarr { path, chunk: None, .. } if path == &empty),
        "{e}"
    );
    assert!(e.to_string().contains("zarr.json"), "{e}");

    for (name, file, text) in [
        (
            "v3",
            "zarr.json",
            "{\"zarr_format\": 3, \"node_type\": \"array\", \"shape\": [4",
        ),
        (
            "v3b",
            "zarr.json",
            "{\"zarr_format\": 3, \"node_type\": \"array\"}",
        ),
        ("v2", ".zarray", "not json at all"),
    ] {
        let p = dir.path().join(format!("{name}.zarr"));
        std::fs::create_dir(&p).unwrap();
        std::fs::write(p.join(file), text).unwrap();
        let e = zarr::ZarrArray::open(&p).unwrap_err();
        assert!(
            matches!(&e, Error::Zarr { path, chunk: None, .. } if path == &p),
            "{name}: {e}"
        );
        let out = dir.path().join(format!("{name}.npy"));
        assert!(zarr::to_npy(&p, &out, &ZarrReadOptions::new()).is_err());
        assert!(!out.exists());
    }
}

/// A valid zarr.json of a 1-D array of 8 elements in chunks of 4, with `data_type`, `fill`
/// and `codecs` as given.
fn zarr_json(data_type: &str, fill: &str, codecs: &str) -> String {
    format!(
        r#"{{"zarr_format": 3, "node_type": "array", "shape": [8], "data_type": "{data_type}",
  "chunk_grid": {{"name": "regular", "configuration": {{"chunk_shape": [4]}}}},
  "chunk_key_encoding": {{"name": "default", "configuration": {{"separator": "/"}}}},
  "fill_value": {fill}, "codecs": {codecs}}}"#
    )
}

#[test]
fn unsupported_data_types_and_codecs() {
    let dir = tmpdir();
    let bytes = r#"[{"name": "bytes", "configuration": {"endian": "little"}}]"#;
    let cases = [
        (
            "complex",
            zarr_json("complex128", "[0.0, 0.0]", bytes),
            "complex128",
        ),
        (
            "string",
            zarr_json("string", "\"\"", r#"[{"name": "vlen-utf8"}]"#),
            "string",
        ),
        ("float16", zarr_json("float16", "0.0", bytes), "float16"),
        (
            "gzip",
            zarr_json(
                "int32",
                "0",
                r#"[{"name": "bytes", "configuration": {"endian": "little"}}, {"name": "gzip", "configuration": {"level": 5}}]"#,
            ),
            "gzip",
        ),
    ];
    for (name, json, word) in cases {
        let p = dir.path().join(format!("{name}.zarr"));
        std::fs::create_dir(&p).unwrap();
        std::fs::write(p.join("zarr.json"), json).unwrap();
        let e = zarr::ZarrArray::open(&p).unwrap_err();
        assert!(
            matches!(&e, Error::UnsupportedZarr { path, .. } | Error::Zarr { path, .. } if path == &p),
            "{name}: {e}"
        );
        assert!(e.to_string().contains(word), "{name}: {e}");
        assert!(matches!(e, Error::UnsupportedZarr { .. }), "{name}: {e}");
    }
}

#[test]
fn truncated_or_corrupt_chunks_name_the_chunk() {
    let dir = tmpdir();
    let data: Vec<i64> = (0..12).map(|i| i * 1_000_003).collect();
    for (codec, damage) in [
        (ZarrCodec::None, "truncate"),
        (ZarrCodec::Zstd { level: 3 }, "truncate"),
        (ZarrCodec::Zstd { level: 3 }, "garble"),
    ] {
        let tag = format!("{damage}-{}", matches!(codec, ZarrCodec::None));
        let z = dir.path().join(format!("{tag}.zarr"));
        zarr::write_slice(&data, &[12], &z, &write_opts(&[4], codec)).unwrap();
        let chunk = z.join("c").join("1");
        let mut bytes = std::fs::read(&chunk).unwrap();
        if damage == "truncate" {
            bytes.truncate(bytes.len() - 3);
        } else {
            bytes.iter_mut().skip(4).for_each(|b| *b ^= 0x5a);
        }
        std::fs::write(&chunk, &bytes).unwrap();

        let za = zarr::ZarrArray::open(&z).unwrap();
        let out = dir.path().join(format!("{tag}.npy"));
        let e = za.to_npy(&out, &ZarrReadOptions::new()).unwrap_err();
        assert!(
            matches!(&e, Error::Zarr { path, chunk: Some(c), .. } if path == &z && c == &[1]),
            "{tag}: {e}"
        );
        assert!(e.to_string().contains("chunk [1]"), "{tag}: {e}");
        assert!(!out.exists());
        let e = za.summary(&ZarrReadOptions::new()).unwrap_err();
        assert!(
            matches!(&e, Error::Zarr { chunk: Some(c), .. } if c == &[1]),
            "{tag}: {e}"
        );
    }
    assert!(!listing(dir.path())
        .iter()
        .any(|n| n.contains(outcore::TEMP_MARKER)));
}

// ---------------------------------------------------------------------------------------
// Interop with zarr-python and dask

/// Every dtype, both codecs, 1-D and 2-D, edge chunks: outcore writes, zarr-python reads
/// the same values, dtype and shape as numpy reads from the source `.npy`.
#[test]
fn zarr_python_reads_outcore_output() {
    require_zarr!();
    let dir = tmpdir();
    let mut names = Vec::new();
    for d in DType::ALL {
        for (k, (shape, chunks)) in SHAPES.iter().enumerate() {
            for codec in CODECS {
                let name = format!("{}-{k}-{}", d.name(), matches!(codec, ZarrCodec::None));
                let src = dir.path().join(format!("{name}.npy"));
                make_npy(&src, d, shape);
                zarr::from_npy(
                    &src,
                    dir.path().join(format!("{name}.zarr")),
                    &write_opts(chunks, codec),
                )
                .unwrap();
                names.push(name);
            }
        }
    }
    let out = python(
        r#"
import os, zarr
d = sys.argv[1]
n = 0
for name in sys.argv[2:]:
    want = np.load(os.path.join(d, name + ".npy"))
    z = zarr.open_array(os.path.join(d, name + ".zarr"), mode="r")
    got = z[...]
    assert z.metadata.zarr_format == 3, name
    assert got.dtype == want.dtype, (name, got.dtype, want.dtype)
    assert got.shape == want.shape, (name, got.shape, want.shape)
    assert np.array_equal(got, want), name
    n += 1
print(n)
"#,
        &[dir.path().to_str().unwrap()]
            .into_iter()
            .chain(names.iter().map(String::as_str))
            .collect::<Vec<_>>(),
    );
    assert_eq!(out.trim(), names.len().to_string());
}

/// zarr-python writes v2 and v3, compressed and not, 2-D chunks with partial edge chunks,
/// and arrays with missing chunks and a fill value; outcore decodes each into the `.npy`
/// numpy saves of the same array.
#[test]
fn outcore_reads_zarr_python_output() {
    require_zarr!();
    let dir = tmpdir();
    let out = python(
        r#"
import os, zarr
d = sys.argv[1]
rng = np.random.default_rng(7)
names = []
def case(name, arr, fmt, chunks, compressors="auto", fill=None, part=None):
    z = zarr.create_array(store=os.path.join(d, name + ".zarr"), shape=arr.shape, dtype=arr.dtype,
                          chunks=chunks, zarr_format=fmt, compressors=compressors, fill_value=fill)
    if part is None:
        z[...] = arr
        want = arr
    else:
        z[part] = arr[part]
        want = np.full(arr.shape, fill, dtype=arr.dtype)
        want[part] = arr[part]
    np.save(os.path.join(d, name + ".npy"), want)
    names.append(name)
dtypes = ["bool", "u1", "u2", "u4", "u8", "i1", "i2", "i4", "i8", "f4", "f8"]
for fmt in (2, 3):
    for comp in ("auto", None):
        tag = "z" if comp == "auto" else "raw"
        for dt in dtypes:
            a = (rng.standard_normal((13, 7)) * 50).astype(dt)
            case(f"v{fmt}-{tag}-{dt}-2d", a, fmt, (5, 3), comp)
            b = (rng.standard_normal(100) * 50).astype(dt)
            case(f"v{fmt}-{tag}-{dt}-1d", b, fmt, (30,), comp)
        f = rng.standard_normal((13, 7))
        case(f"v{fmt}-{tag}-fill", f, fmt, (5, 3), comp, fill=7.5, part=(slice(0, 4), slice(0, 5)))
        i = np.arange(100, dtype="i4")
        case(f"v{fmt}-{tag}-fill1d", i, fmt, (30,), comp, fill=-3, part=slice(35, 61))
print(" ".join(names))
"#,
        &[dir.path().to_str().unwrap()],
    );
    let names: Vec<&str> = out.split_whitespace().collect();
    assert_eq!(names.len(), 2 * 2 * (11 * 2 + 2));
    for name in names {
        let z = dir.path().join(format!("{name}.zarr"));
        let za = zarr::ZarrArray::open(&z).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(
            za.zarr_format(),
            if name.starts_with("v2") { 2 } else { 3 },
            "{name}"
        );
        let got = dir.path().join(format!("{name}.outcore.npy"));
        za.to_npy(&got, &ZarrReadOptions::new())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(
            npy_contents(&got),
            npy_contents(&dir.path().join(format!("{name}.npy"))),
            "{name}"
        );
    }
}

/// What outcore is built without — blosc (zarr-python's v2 default before 3.0), v2's
/// `order: "F"` (a transpose), shards — is a typed error naming the array, and `to_npy`
/// writes nothing.
#[test]
fn zarr_python_features_outcore_lacks_are_typed_errors() {
    require_zarr!();
    let dir = tmpdir();
    let out = python(
        r#"
import os, zarr
d = sys.argv[1]
a = np.arange(12.0).reshape(4, 3)
zarr.create_array(store=os.path.join(d, "blosc.zarr"), shape=a.shape, dtype=a.dtype, chunks=(2, 2),
                  compressors=zarr.codecs.BloscCodec())[...] = a
zarr.create_array(store=os.path.join(d, "fortran.zarr"), shape=a.shape, dtype=a.dtype, chunks=(2, 2),
                  zarr_format=2, order="F")[...] = a
zarr.create_array(store=os.path.join(d, "sharded.zarr"), shape=a.shape, dtype=a.dtype, chunks=(2, 1),
                  shards=(2, 2))[...] = a
print("ok")
"#,
        &[dir.path().to_str().unwrap()],
    );
    assert_eq!(out.trim(), "ok");
    for (name, word) in [
        ("blosc", "blosc"),
        ("fortran", "F-order"),
        ("sharded", "sharding"),
    ] {
        let z = dir.path().join(format!("{name}.zarr"));
        let e = zarr::ZarrArray::open(&z).unwrap_err();
        assert!(
            matches!(&e, Error::UnsupportedZarr { path, .. } if path == &z),
            "{name}: {e}"
        );
        assert!(e.to_string().contains(word), "{name}: {e}");
        let npy = dir.path().join(format!("{name}.npy"));
        assert!(zarr::to_npy(&z, &npy, &ZarrReadOptions::new()).is_err());
        assert!(!npy.exists());
    }
}

/// dask on a two-process LocalCluster computes mean, std, min, max and a histogram of
/// outcore's output equal to outcore's own: min, max and the histogram exactly, mean and
/// std within a relative 1e-12 (the summation orders differ).
#[test]
fn dask_distributed_agrees_with_outcore() {
    require_zarr!();
    let dir = tmpdir();
    let n = 200 * 50;
    let data: Vec<f64> = (0..n)
        .map(|i| {
            let x =
                ((i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 11) as f64 / (1u64 << 53) as f64;
            (x - 0.3) * 1000.0
        })
        .collect();
    let z = dir.path().join("x.zarr");
    let za = zarr::write_slice(
        &data,
        &[200, 50],
        &z,
        &write_opts(&[64, 16], ZarrCodec::default()),
    )
    .unwrap();
    let opts = ZarrReadOptions::new();
    let s = za.summary(&opts).unwrap();
    let (lo, hi, bins) = (-400.0, 800.0, 24);
    let h = za.histogram(bins, (lo, hi), &opts).unwrap();
    let out = python(
        r#"
import dask.array as da
from distributed import Client, LocalCluster
if __name__ == "__main__":
    with LocalCluster(n_workers=2, processes=True, threads_per_worker=1, dashboard_address=None) as cluster, Client(cluster):
        x = da.from_zarr(sys.argv[1])
        assert x.shape == (200, 50) and x.dtype == np.float64
        h, _ = da.histogram(x, bins=int(sys.argv[4]), range=(float(sys.argv[2]), float(sys.argv[3])))
        mean, std, mn, mx, h = da.compute(x.mean(), x.std(), x.min(), x.max(), h)
        print(repr(float(mean)), repr(float(std)), repr(float(mn)), repr(float(mx)))
        print(" ".join(str(int(c)) for c in h))
"#,
        &[
            z.to_str().unwrap(),
            &lo.to_string(),
            &hi.to_string(),
            &bins.to_string(),
        ],
    );
    let mut lines = out.lines();
    let f: Vec<f64> = lines
        .next()
        .unwrap()
        .split_whitespace()
        .map(|v| v.parse().unwrap())
        .collect();
    let dh: Vec<u64> = lines
        .next()
        .unwrap()
        .split_whitespace()
        .map(|v| v.parse().unwrap())
        .collect();
    let rel = |a: f64, b: f64| (a - b).abs() / b.abs();
    assert!(
        rel(s.mean, f[0]) < 1e-12,
        "mean {} vs dask {}",
        s.mean,
        f[0]
    );
    assert!(rel(s.std, f[1]) < 1e-12, "std {} vs dask {}", s.std, f[1]);
    assert_eq!(s.min, f[2]);
    assert_eq!(s.max, f[3]);
    assert_eq!(h, dh);
    assert_eq!(
        h.iter().sum::<u64>(),
        data.iter().filter(|&&x| (lo..=hi).contains(&x)).count() as u64
    );
}
