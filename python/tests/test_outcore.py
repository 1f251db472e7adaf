"""outcore's Python module against numpy: every function, every dtype, memmaps and
non-contiguous arrays, the errors a user would expect, and Ctrl-C."""

import errno
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

import outcore

INTS = [np.uint8, np.uint16, np.uint32, np.uint64, np.int8, np.int16, np.int32, np.int64]
FLOATS = [np.float32, np.float64]
DTYPES = [np.bool_] + INTS + FLOATS
METHODS = ["linear", "lower", "higher", "nearest", "midpoint"]
QS = [0.0, 1.0, 2.5, 25.0, 50.0, 50.5, 75.0, 99.0, 99.9, 100.0]


def sample(dtype, n=10_007, seed=0, nan=False, zeros=False):
    """Random values of `dtype` over (most of) its range; floats with infinities, and NaN
    and signed zeros when asked."""
    rng = np.random.default_rng(seed)
    dtype = np.dtype(dtype)
    if n == 0:
        return np.zeros(0, dtype=dtype)
    if dtype == np.bool_:
        return rng.integers(0, 2, n).astype(np.bool_)
    if dtype.kind in "ui":
        info = np.iinfo(dtype)
        return rng.integers(info.min, info.max, n, dtype=dtype, endpoint=True)
    x = (rng.standard_normal(n) * 1e3).astype(dtype)
    x[rng.integers(0, n, 5)] = np.inf
    x[rng.integers(0, n, 5)] = -np.inf
    x[rng.integers(0, n, 50)] = np.round(x[rng.integers(0, n, 50)])  # duplicates
    if nan:
        x[rng.integers(0, n, 7)] = np.nan
    if zeros:
        x[rng.integers(0, n, 20)] = 0.0
        x[rng.integers(0, n, 20)] = -0.0
    return x


def ids(dtypes):
    return [np.dtype(d).name for d in dtypes]


# ---- sort / argsort ------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES, ids=ids(DTYPES))
@pytest.mark.parametrize("n", [0, 1, 1000, 300_000])
def test_sort_matches_numpy(dtype, n):
    for nan in [False, True] if np.dtype(dtype).kind == "f" else [False]:
        x = sample(dtype, n, seed=n, nan=nan, zeros=True)
        a = x.copy()
        assert outcore.sort(a) is None
        np.testing.assert_array_equal(a, np.sort(x))
        if np.dtype(dtype).kind == "f":
            # NaN last, and -0.0 before 0.0 where both are (numpy treats them as equal).
            assert np.isnan(a[len(a) - np.isnan(x).sum():]).all()


@pytest.mark.parametrize("dtype", DTYPES, ids=ids(DTYPES))
def test_argsort_matches_numpy_stable(dtype):
    x = sample(dtype, 50_000, seed=1, nan=True)
    got = outcore.argsort(x)
    want = np.argsort(x, kind="stable")
    assert got.dtype == np.intp
    # No signed zeros here: the permutation itself is numpy's.
    np.testing.assert_array_equal(got, want)
    # With signed zeros, the order of values is numpy's.
    z = sample(dtype, 50_000, seed=2, nan=True, zeros=True)
    np.testing.assert_array_equal(z[outcore.argsort(z)], z[np.argsort(z, kind="stable")])


def test_sort_threads_and_large():
    x = sample(np.float64, 2_000_000, seed=3, nan=True)
    a = x.copy()
    outcore.sort(a, threads=2)
    np.testing.assert_array_equal(a, np.sort(x))
    b = x.copy()
    outcore.sort(b, threads=1)
    np.testing.assert_array_equal(b, a)


def test_sort_memmap_in_place(tmp_path):
    p = tmp_path / "m.npy"
    x = sample(np.int32, 100_000, seed=4)
    np.save(p, x)
    m = np.load(p, mmap_mode="r+")
    outcore.sort(m)
    m.flush()
    del m
    np.testing.assert_array_equal(np.load(p), np.sort(x))
    raw = tmp_path / "m.raw"
    x.tofile(raw)
    mm = np.memmap(raw, dtype=np.int32, mode="r+")
    outcore.sort(mm)
    np.testing.assert_array_equal(np.asarray(mm), np.sort(x))


def test_sort_rejects_bad_arrays(tmp_path):
    x = sample(np.float64, 1000)
    with pytest.raises(ValueError, match="contiguous"):
        outcore.sort(x[::2])
    ro = x.copy()
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        outcore.sort(ro)
    p = tmp_path / "r.npy"
    np.save(p, x)
    with pytest.raises(ValueError, match="read-only"):
        outcore.sort(np.load(p, mmap_mode="r"))
    with pytest.raises(ValueError, match="1-D"):
        outcore.sort(x.reshape(10, 100))
    with pytest.raises(ValueError, match="unsupported dtype"):
        outcore.sort(np.zeros(4, dtype=np.complex128))
    with pytest.raises(ValueError, match="unsupported dtype"):
        outcore.sort(np.zeros(4, dtype=">f8"))
    with pytest.raises(TypeError):
        outcore.sort([3, 1, 2])
    # The array is untouched by a refused sort.
    np.testing.assert_array_equal(ro, x)


def test_argsort_non_contiguous():
    x = sample(np.int64, 20_001, seed=5)
    v = x[::3]
    np.testing.assert_array_equal(outcore.argsort(v), np.argsort(v, kind="stable"))
    np.testing.assert_array_equal(outcore.argsort([3, 1, 2]), [1, 2, 0])


# ---- describe ------------------------------------------------------------------------------


def numpy_summary(x, bins=None, percentiles=None, ddof=0):
    """What describe must return, from numpy."""
    flat = x.ravel()
    isf = flat.dtype.kind == "f"
    wide = flat.astype(np.float64)
    want = {
        "count": flat.size,
        "nan_count": int(np.isnan(flat).sum()) if isf else 0,
        "sum": float(flat.astype(np.float64).sum()) if isf else sum(int(v) for v in flat.tolist()),
        "mean": float(np.mean(wide)),
        "std": float(np.std(wide, ddof=ddof)),
        "min": flat.min().item(),
        "max": flat.max().item(),
        "argmin": int(np.argmin(x)),
        "argmax": int(np.argmax(x)),
    }
    if bins:
        fin = wide[np.isfinite(wide)]
        counts, edges = np.histogram(fin, bins=bins, range=(fin.min(), fin.max()))
        want["histogram"] = {"edges": edges, "counts": counts}
    if percentiles:
        # numpy cannot interpolate booleans; outcore interpolates them as 0 and 1.
        vals = flat.view(np.uint8) if flat.dtype == np.bool_ else flat
        want["percentiles"] = dict(zip(percentiles, np.percentile(vals, np.asarray(percentiles))))
    return want


def check_summary(got, want, dtype):
    rtol = 1e-5 if np.dtype(dtype) == np.float32 else 1e-9
    assert list(got)[:9] == ["count", "nan_count", "sum", "mean", "std", "min", "max", "argmin", "argmax"]
    assert got["count"] == want["count"]
    assert got["nan_count"] == want["nan_count"]
    for k in ["min", "max", "argmin", "argmax"]:
        if isinstance(want[k], float) and np.isnan(want[k]):
            assert np.isnan(got[k]), k
        else:
            assert got[k] == want[k], (k, got[k], want[k])
            assert type(got[k]) is type(want[k]), (k, type(got[k]), type(want[k]))
    if np.dtype(dtype).kind == "f":
        np.testing.assert_allclose(got["sum"], want["sum"], rtol=rtol)
    else:
        assert got["sum"] == want["sum"]  # exact, also where numpy's int64 sum wraps
    np.testing.assert_allclose(got["mean"], want["mean"], rtol=rtol)
    np.testing.assert_allclose(got["std"], want["std"], rtol=rtol)
    if "histogram" in want:
        np.testing.assert_allclose(got["histogram"]["edges"], want["histogram"]["edges"], rtol=1e-12)
        np.testing.assert_array_equal(got["histogram"]["counts"], want["histogram"]["counts"])
    if "percentiles" in want:
        assert list(got["percentiles"]) == list(want["percentiles"])
        np.testing.assert_array_equal(
            list(got["percentiles"].values()), list(want["percentiles"].values())
        )


@pytest.mark.parametrize("dtype", DTYPES, ids=ids(DTYPES))
def test_describe_matches_numpy(dtype, tmp_path):
    x = sample(dtype, 30_011, seed=6)
    ps = [0.0, 1.0, 50.0, 99.0, 100.0]
    want = numpy_summary(x, bins=10, percentiles=ps)
    got = outcore.describe(x, bins=10, percentiles=ps)
    check_summary(got, want, dtype)
    # The same from the .npy file (mapped in Rust) and from a memmap.
    p = tmp_path / "x.npy"
    np.save(p, x)
    check_summary(outcore.describe(str(p), bins=10, percentiles=ps), want, dtype)
    check_summary(outcore.describe(p, bins=10, percentiles=ps), want, dtype)
    check_summary(outcore.describe(np.load(p, mmap_mode="r"), bins=10, percentiles=ps), want, dtype)
    # A raw file with dtype=.
    raw = tmp_path / "x.raw"
    x.tofile(raw)
    check_summary(outcore.describe(raw, dtype=np.dtype(dtype)), numpy_summary(x), dtype)
    # ddof, threads.
    check_summary(outcore.describe(x, ddof=1, threads=1), numpy_summary(x, ddof=1), dtype)


@pytest.mark.parametrize("dtype", FLOATS, ids=ids(FLOATS))
def test_describe_nan_as_numpy(dtype):
    x = sample(dtype, 10_000, seed=7, nan=True)
    got = outcore.describe(x, bins=8, percentiles=[50.0])
    assert got["nan_count"] == int(np.isnan(x).sum()) > 0
    for k in ["sum", "mean", "std", "min", "max"]:
        assert np.isnan(got[k]), k
    assert got["argmin"] == np.argmin(x) == got["argmax"] == np.argmax(x)
    assert np.isnan(got["percentiles"][50.0])
    fin = x[np.isfinite(x)].astype(np.float64)
    counts, _ = np.histogram(fin, bins=8, range=(fin.min(), fin.max()))
    np.testing.assert_array_equal(got["histogram"]["counts"], counts)


def test_describe_empty_and_lists():
    got = outcore.describe(np.zeros(0, dtype=np.float64))
    assert got["count"] == 0 and got["min"] is None and got["argmin"] is None
    got = outcore.describe([1, 2, 3, 4])
    assert got["sum"] == 10 and got["mean"] == 2.5 and got["max"] == 4


@pytest.mark.parametrize("dtype", [np.int16, np.float64], ids=["int16", "float64"])
def test_describe_non_contiguous_and_fortran(dtype, tmp_path):
    x = sample(dtype, 60_000, seed=8).reshape(200, 300)
    for view in [x[::2, 1::3], x.T, np.asfortranarray(x), x[:, ::-1], x[5]]:
        check_summary(outcore.describe(view, bins=5, percentiles=[10.0, 90.0]),
                      numpy_summary(view, bins=5, percentiles=[10.0, 90.0]), dtype)
    # A Fortran-ordered .npy file, mapped: argmin/argmax are C-order flat indices.
    p = tmp_path / "f.npy"
    f = np.asfortranarray(x)
    np.save(p, f)
    check_summary(outcore.describe(p), numpy_summary(f), dtype)


@pytest.mark.parametrize("dtype", [np.uint8, np.int64, np.float32], ids=["uint8", "int64", "float32"])
@pytest.mark.parametrize("order", ["C", "F"])
def test_describe_axis(dtype, order):
    x = np.asarray(sample(dtype, 12 * 7, seed=9).reshape(12, 7), order=order)
    for axis in [0, 1, -1]:
        got = outcore.describe(x, axis=axis)
        w = x.astype(np.float64)
        np.testing.assert_array_equal(got["count"], np.full(x.shape[1 - axis % 2], x.shape[axis]))
        np.testing.assert_allclose(got["mean"], w.mean(axis=axis), rtol=1e-6)
        np.testing.assert_allclose(got["std"], w.std(axis=axis), rtol=1e-6)
        np.testing.assert_array_equal(got["min"], x.min(axis=axis))
        np.testing.assert_array_equal(got["max"], x.max(axis=axis))
        assert got["min"].dtype == x.dtype
        np.testing.assert_array_equal(got["argmin"], x.argmin(axis=axis))
        np.testing.assert_array_equal(got["argmax"], x.argmax(axis=axis))
        np.testing.assert_allclose(got["sum"].astype(np.float64), w.sum(axis=axis), rtol=1e-6)
    with pytest.raises(ValueError, match="axis"):
        outcore.describe(x, axis=2)
    with pytest.raises(ValueError, match="2-D"):
        outcore.describe(np.zeros((2, 2, 2)), axis=0)


def test_describe_overhead_small_array():
    x = np.arange(1000, dtype=np.float64)
    outcore.describe(x)
    n = 2000
    t = time.perf_counter()
    for _ in range(n):
        outcore.describe(x)
    per_call = (time.perf_counter() - t) / n
    # The bar is 50 µs; the test allows for a loaded CI machine.
    assert per_call < 500e-6, per_call


# ---- percentile ----------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES, ids=ids(DTYPES))
@pytest.mark.parametrize("method", METHODS)
def test_percentile_matches_numpy(dtype, method, tmp_path):
    if np.dtype(dtype) == np.bool_ and method in ("linear", "midpoint"):
        pytest.skip("numpy cannot interpolate booleans (it raises TypeError)")
    for n in [1, 2, 7, 10_001]:
        x = sample(dtype, n, seed=n)
        if x.dtype.kind == "i":
            # numpy interpolates integers from b - a in their own type, which wraps when the
            # neighbours are more than the type's maximum apart; outcore does not wrap (a
            # documented difference). Stay where numpy is right.
            x //= 2
        want = np.percentile(x, np.asarray(QS), method=method)
        got = outcore.percentile(x, QS, method=method)
        assert got.dtype == want.dtype, (got.dtype, want.dtype)
        np.testing.assert_array_equal(got, want)
        if n > 1000:
            p = tmp_path / "x.npy"
            np.save(p, x)
            np.testing.assert_array_equal(outcore.percentile(p, QS, method=method), want)
            np.testing.assert_array_equal(
                outcore.percentile(np.load(p, mmap_mode="r"), QS, method=method), want)
            v = x[::3]
            np.testing.assert_array_equal(outcore.percentile(v, QS, method=method),
                                          np.percentile(v, np.asarray(QS), method=method))


def test_percentile_shapes_and_nan():
    x = np.arange(101, dtype=np.float64)
    assert outcore.percentile(x, 50) == 50.0
    assert np.ndim(outcore.percentile(x, 50)) == 0
    q = [[10, 20], [30, 40]]
    np.testing.assert_array_equal(outcore.percentile(x, q), np.percentile(x, q))
    x[3] = np.nan
    assert np.isnan(outcore.percentile(x, [1, 99])).all()
    with pytest.raises(ValueError, match="outside"):
        outcore.percentile(x, 101)
    with pytest.raises(ValueError, match="method"):
        outcore.percentile(x, 50, method="cubic")
    with pytest.raises(ValueError, match="empty"):
        outcore.percentile(np.zeros(0), 50)


# ---- generate / convert --------------------------------------------------------------------


@pytest.mark.parametrize("dtype", ["u8", "u16", "u32", "u64", "i8", "i16", "i32", "i64", "f32", "f64"])
def test_generate_npy_every_dtype(dtype, tmp_path):
    p = tmp_path / "g.npy"
    r = outcore.generate(p, dtype, "uniform", count=100_003, seed=7)
    a = np.load(p)
    assert a.dtype == np.dtype(outcore_dtype(dtype)) and a.shape == (100_003,)
    assert r["count"] == 100_003 and r["bytes"] == a.nbytes
    # Reproducible: same seed, same bytes, whatever the threads; another seed differs.
    q = tmp_path / "h.npy"
    assert outcore.generate(q, dtype, "uniform", count=100_003, seed=7, threads=1)["checksum"] == r["checksum"]
    np.testing.assert_array_equal(np.load(q), a)
    assert outcore.generate(q, dtype, "uniform", count=100_003, seed=8)["checksum"] != r["checksum"]


def outcore_dtype(name):
    return {"u8": "u1", "u16": "u2", "u32": "u4", "u64": "u8", "i8": "i1", "i16": "i2",
            "i32": "i4", "i64": "i8", "f32": "f4", "f64": "f8"}[name]


def test_generate_distributions_and_shapes(tmp_path):
    p = tmp_path / "s.npy"
    outcore.generate(p, np.float64, "sorted", size="1MiB")
    a = np.load(p)
    assert a.size == (1 << 20) // 8 and (np.diff(a) >= 0).all()
    outcore.generate(p, "i32", "reverse", shape=(300, 7))
    b = np.load(p)
    assert b.shape == (300, 7) and (np.diff(b.ravel()) <= 0).all()
    outcore.generate(p, "f32", "normal", count=200_000, seed=1)
    c = np.load(p)
    assert abs(c.mean()) < 0.02 and abs(c.std() - 1) < 0.02
    raw = tmp_path / "r.dat"
    r = outcore.generate(raw, "record100", "uniform", count=1000)
    assert os.path.getsize(raw) == 100_000 and r["dtype"] == "record100"
    with pytest.raises(ValueError, match="exactly one"):
        outcore.generate(p, "u8", "uniform")
    with pytest.raises(ValueError, match="distribution"):
        outcore.generate(p, "u8", "poisson", count=3)
    with pytest.raises(ValueError):
        outcore.generate(p, "u8", "normal", count=3)  # normal is for floats
    with pytest.raises(ValueError, match="raw"):
        outcore.generate(tmp_path / "r.npy", "record100", "uniform", count=3)


def test_convert(tmp_path):
    x = sample(np.float64, 100_001, seed=11)
    x = x[np.isfinite(x)]
    src = tmp_path / "x.npy"
    np.save(src, x)
    # npy -> raw -> npy, same dtype.
    raw = tmp_path / "x.f64"
    assert outcore.convert(src, raw)["format"] == "raw"
    np.testing.assert_array_equal(np.fromfile(raw, dtype=np.float64), x)
    back = tmp_path / "back.npy"
    outcore.convert(raw, back, src_dtype="f64")
    np.testing.assert_array_equal(np.load(back), x)
    # Casts, as numpy's astype.
    for to in [np.int32, np.int16, np.uint8, np.float32, np.bool_]:
        dst = tmp_path / f"to-{np.dtype(to).name}.npy"
        y = x / 10 if to != np.bool_ else np.round(x / 1000)
        np.save(src, y)
        outcore.convert(src, dst, dtype=to)
        got = np.load(dst)
        assert got.dtype == np.dtype(to)
        in_range = y if np.dtype(to).kind in "fb" else np.clip(y, np.iinfo(to).min, np.iinfo(to).max)
        np.testing.assert_array_equal(got, in_range.astype(to))
    # Shapes are kept; integer wrap-around as numpy.
    m = sample(np.int64, 60, seed=12).reshape(6, 10)
    np.save(src, m)
    outcore.convert(src, tmp_path / "m.npy", dtype="i8")
    np.testing.assert_array_equal(np.load(tmp_path / "m.npy"), m.astype(np.int8))
    with pytest.raises(FileNotFoundError):
        outcore.convert(tmp_path / "missing.npy", tmp_path / "o.npy")


def test_convert_keeps_fortran_order(tmp_path):
    x = np.asfortranarray(np.arange(7 * 5).reshape(7, 5) * 1.625)
    src = tmp_path / "f.npy"
    np.save(src, x)
    for to in [np.float64, np.int16, np.uint8, np.float32, np.bool_]:
        dst = tmp_path / f"f-{np.dtype(to).name}.npy"
        r = outcore.convert(src, dst, dtype=to)
        got = np.load(dst)
        assert r["shape"] == [7, 5] and got.dtype == np.dtype(to)
        assert got.flags.f_contiguous and not got.flags.c_contiguous
        np.testing.assert_array_equal(got, x.astype(to))
    # A raw output holds the elements in the array's memory order.
    raw = tmp_path / "f.raw"
    outcore.convert(src, raw, dtype="i32")
    np.testing.assert_array_equal(np.fromfile(raw, dtype=np.int32), x.astype(np.int32).ravel(order="F"))


# ---- sort_file -----------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES, ids=ids(DTYPES))
def test_sort_file_matches_numpy(dtype, tmp_path):
    x = sample(dtype, 200_003, seed=13, nan=True)
    src, dst = tmp_path / "in.npy", tmp_path / "out.npy"
    np.save(src, x)
    r = outcore.sort_file(src, dst, memory="256KiB", threads=2)
    np.testing.assert_array_equal(np.load(dst), np.sort(x))
    assert r["external"] and r["runs"] > 1 and r["elements"] == x.size
    assert [p["phase"] for p in r["phases"]][0] == "run formation"
    assert r["seconds"] >= 0
    r = outcore.sort_file(str(src), str(dst))
    assert not r["external"] and r["runs"] == 0
    np.testing.assert_array_equal(np.load(dst), np.sort(x))
    assert sorted(os.listdir(tmp_path)) == ["in.npy", "out.npy"]


def test_sort_file_raw_and_records(tmp_path):
    x = sample(np.uint32, 100_000, seed=14)
    src, dst = tmp_path / "in.u32", tmp_path / "out.u32"
    x.tofile(src)
    outcore.sort_file(src, dst, memory=64 << 10, dtype="u32", tmp=tmp_path)
    np.testing.assert_array_equal(np.fromfile(dst, dtype=np.uint32), np.sort(x))
    rec, out = tmp_path / "r.dat", tmp_path / "r.sorted"
    outcore.generate(rec, "record100", "uniform", count=20_000, seed=3)
    r = outcore.sort_file(rec, out, memory="512KiB", record_size=100, key_size=10, max_fan_in=4)
    assert r["merge_levels"] >= 1
    a = np.fromfile(rec, dtype="V100")
    b = np.fromfile(out, dtype="V100")
    keys = sorted(bytes(v)[:10] for v in a)
    assert [bytes(v)[:10] for v in b] == keys
    assert sorted(bytes(v) for v in a) == sorted(bytes(v) for v in b)
    with pytest.raises(ValueError, match="record_size"):
        outcore.sort_file(rec, out, record_size=100, key_size=7)


def test_sort_file_progress(tmp_path, capfd):
    x = sample(np.int64, 100_000, seed=15)
    np.save(tmp_path / "a.npy", x)
    outcore.sort_file(tmp_path / "a.npy", tmp_path / "b.npy", memory="128KiB", progress=True)
    assert "run formation" in capfd.readouterr().err


# ---- errors --------------------------------------------------------------------------------


def test_missing_files_are_file_not_found(tmp_path):
    missing = tmp_path / "nope.npy"
    for call in [
        lambda: outcore.describe(missing),
        lambda: outcore.percentile(missing, 50),
        lambda: outcore.sort_file(missing, tmp_path / "o.npy"),
        lambda: outcore.convert(missing, tmp_path / "o.npy"),
    ]:
        with pytest.raises(FileNotFoundError) as e:
            call()
        assert e.value.errno == errno.ENOENT
        assert e.value.filename == str(missing)
    with pytest.raises(FileNotFoundError):
        outcore.generate(tmp_path / "no-such-dir" / "x.npy", "u8", count=10)


def test_malformed_and_unsupported_are_value_errors(tmp_path):
    bad = tmp_path / "bad.npy"
    bad.write_bytes(b"not a npy file at all")
    with pytest.raises(ValueError, match="not a .npy file"):
        outcore.describe(bad)
    good = tmp_path / "good.npy"
    np.save(good, np.arange(10, dtype=np.int64))
    data = bytearray(good.read_bytes())
    data[data.index(b"{"):data.index(b"{") + 5] = b"{xxxx"
    bad.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="malformed .npy header"):
        outcore.sort_file(bad, tmp_path / "o.npy")
    cplx = tmp_path / "c.npy"
    np.save(cplx, np.zeros(4, dtype=np.complex64))
    with pytest.raises(ValueError, match="unsupported dtype"):
        outcore.describe(cplx)
    big = tmp_path / "be.npy"
    np.save(big, np.zeros(4, dtype=">i4"))
    with pytest.raises(ValueError, match="unsupported dtype"):
        outcore.percentile(big, 50)
    short = tmp_path / "short.npy"
    short.write_bytes(good.read_bytes()[:-8])
    with pytest.raises(ValueError, match="file is"):
        outcore.describe(short)
    np.save(good, np.zeros((3, 3)))
    with pytest.raises(ValueError, match="1-D"):
        outcore.sort_file(good, tmp_path / "o.npy")
    with pytest.raises(ValueError, match="memory"):
        outcore.sort_file(good, tmp_path / "o.npy", memory="lots")
    with pytest.raises(ValueError, match="not a multiple"):
        raw = tmp_path / "x.raw"
        raw.write_bytes(b"12345")
        outcore.describe(raw, dtype="u32")
    assert not (tmp_path / "o.npy").exists()


def test_permission_denied(tmp_path):
    if os.geteuid() == 0:
        pytest.skip("root reads and writes everything")
    src = tmp_path / "a.npy"
    np.save(src, np.arange(10))
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    with pytest.raises(PermissionError):
        outcore.sort_file(src, ro / "o.npy")


@pytest.fixture
def small_disk(tmp_path):
    """A 4 MiB tmpfs (needs root and mount), else skip."""
    d = tmp_path / "small"
    d.mkdir()
    if os.geteuid() != 0 or subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(d)], capture_output=True
    ).returncode != 0:
        pytest.skip("cannot mount a small tmpfs (needs root)")
    try:
        yield d
    finally:
        subprocess.run(["umount", str(d)], check=False)


def test_full_disk_is_oserror_enospc(tmp_path, small_disk):
    src = tmp_path / "big.npy"
    np.save(src, np.arange(2 << 20, dtype=np.int64))  # 16 MiB
    with pytest.raises(OSError) as e:
        outcore.sort_file(src, small_disk / "sorted.npy")
    assert e.value.errno == errno.ENOSPC and "disk space" in str(e.value)
    with pytest.raises(OSError) as e:
        outcore.generate(small_disk / "g.npy", "f64", count=1 << 21)
    assert e.value.errno == errno.ENOSPC
    with pytest.raises(OSError) as e:
        outcore.convert(src, small_disk / "c.npy")
    assert e.value.errno == errno.ENOSPC
    assert os.listdir(small_disk) == []


# ---- Ctrl-C --------------------------------------------------------------------------------

# A child started from a background job inherits SIGINT ignored, and Python then installs no
# handler of its own: the children set it, so that Ctrl-C raises KeyboardInterrupt wherever
# the tests run.
CHILD = textwrap.dedent("""
    import signal, sys, time, outcore
    signal.signal(signal.SIGINT, signal.default_int_handler)
    src, dst, work = sys.argv[1:4]
    print("ready", flush=True)
    t = time.perf_counter()
    try:
        outcore.sort_file(src, dst, memory="1MiB", tmp=work, max_fan_in=2, threads=1)
    except KeyboardInterrupt:
        print("interrupted after %.2fs" % (time.perf_counter() - t), flush=True)
        sys.exit(130)
    print("finished", flush=True)
""")


def test_ctrl_c_stops_sort_file_and_removes_temp_files(tmp_path):
    src = tmp_path / "in.npy"
    outcore.generate(src, "u64", "uniform", size="256MiB", seed=1)
    work = tmp_path / "work"
    work.mkdir()
    dst = work / "out.npy"
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(src), str(dst), str(work)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    assert child.stdout.readline().strip() == "ready"
    # Wait until the sort has written temporary files, then interrupt it.
    deadline = time.time() + 60
    while time.time() < deadline and not os.listdir(work):
        time.sleep(0.02)
    assert os.listdir(work), "the sort never started writing"
    time.sleep(0.2)
    child.send_signal(signal.SIGINT)
    out, err = child.communicate(timeout=60)
    assert child.returncode == 130, (out, err)
    assert "interrupted" in out
    assert float(out.split()[-1].rstrip("s")) < 60
    assert os.listdir(work) == [], os.listdir(work)
    assert sorted(os.listdir(tmp_path)) == ["in.npy", "work"]


CHILD_GEN = textwrap.dedent("""
    import signal, sys, outcore
    signal.signal(signal.SIGINT, signal.default_int_handler)
    print("ready", flush=True)
    try:
        outcore.generate(sys.argv[1], "f64", "normal", size=int(sys.argv[2]), threads=1)
    except KeyboardInterrupt:
        sys.exit(130)
""")


def test_ctrl_c_stops_generate(tmp_path):
    # generate reserves the whole file before it writes (posix_fallocate), so the size must
    # fit the disk: up to 2 GiB, about two seconds on one thread, and at most half the free
    # space. An 8 GiB file once failed here with a full disk, not an interrupt.
    size = min(2 << 30, shutil.disk_usage(tmp_path).free // 2) >> 20 << 20
    if size < 512 << 20:
        pytest.skip("needs 1 GiB free under the temporary directory")
    out = tmp_path / "g.npy"
    child = subprocess.Popen([sys.executable, "-c", CHILD_GEN, str(out), str(size)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == "ready"
    # Wait until generation has created its temporary file (or the child has ended).
    deadline = time.time() + 60
    while time.time() < deadline and child.poll() is None and not os.listdir(tmp_path):
        time.sleep(0.02)
    assert child.poll() is None, child.communicate()
    assert os.listdir(tmp_path), "generate never created its file"
    time.sleep(0.1)
    child.send_signal(signal.SIGINT)
    out_text, err = child.communicate(timeout=60)
    assert child.returncode == 130, (out_text, err)
    assert os.listdir(tmp_path) == []


def test_parse_size():
    assert outcore.parse_size("4GiB") == 4 << 30
    assert outcore.parse_size("1.5KB") == 1500
    assert outcore.parse_size(12) == 12
    with pytest.raises(ValueError):
        outcore.parse_size("12 parsecs")


def test_docstrings():
    for name in outcore.__all__:
        f = getattr(outcore, name)
        if callable(f):
            assert f.__doc__ and len(f.__doc__) > 80, name


@pytest.mark.parametrize("src_dtype", DTYPES, ids=ids(DTYPES))
def test_convert_every_dtype_pair_as_astype(src_dtype, tmp_path):
    x = sample(src_dtype, 5_001, seed=16)
    if x.dtype.kind == "f":
        x = x[np.isfinite(x)]
    src = tmp_path / "x.npy"
    for to in DTYPES:
        to = np.dtype(to)
        y = x
        if x.dtype.kind == "f" and to.kind in "ui":
            # In range only: numpy's float-to-int cast of out-of-range values is undefined.
            info = np.iinfo(to)
            y = np.trunc(np.clip(np.abs(x) if to.kind == "u" else x, info.min, min(info.max, 2**53)))
            y = y.astype(x.dtype)
        np.save(src, y)
        for dst in [tmp_path / "y.npy", tmp_path / "y.raw"]:
            r = outcore.convert(src, dst, dtype=to)
            got = np.load(dst) if dst.suffix == ".npy" else np.fromfile(dst, dtype=to)
            assert got.dtype == to and r["format"] == dst.suffix[1:].replace("raw", "raw")
            np.testing.assert_array_equal(got, y.astype(to), err_msg=f"{x.dtype} -> {to}")
