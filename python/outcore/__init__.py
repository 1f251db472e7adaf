"""outcore: typed arrays larger than RAM, from numpy.

The functions run in Rust (outcore's library) with the GIL released, in parallel, and take
``threads=``. Files are memory-mapped in Rust, never loaded into Python; numpy arrays are
read in place through their data pointer.

* ``sort(a)``, ``argsort(a)``: parallel sort of a 1-D array in place, and its stable
  permutation, in numpy's order (NaN last).
* ``sort_file(src, dst, memory="1GiB")``: the external merge sort of a ``.npy`` (or raw)
  file larger than memory; returns its report.
* ``describe(x, bins=None, percentiles=None, axis=None)``: count, NaN count, sum, mean, std,
  min, max, argmin, argmax, a histogram and exact percentiles of a file or an array.
* ``percentile(x, q, method="linear")``: exact percentiles, equal to ``np.percentile``.
* ``generate(path, dtype, dist, count=...)`` and ``convert(src, dst, dtype=...)``: the
  dataset generator and the npy/raw/dtype conversion of the ``outcore`` command line.

Errors: a missing file raises ``FileNotFoundError``; a malformed header, an unsupported
dtype or a bad argument ``ValueError`` (with outcore's message); a full disk ``OSError``
with ``errno.ENOSPC``; an unwritable file ``PermissionError``; Ctrl-C during a long call
``KeyboardInterrupt`` (after its temporary files are removed).
"""

from . import _core
from ._core import (
    TEMP_MARKER,
    argsort,
    convert,
    describe,
    generate,
    parse_size,
    percentile,
    sort,
)

__version__ = "0.1.0"


def sort_file(src, dst, memory="1GiB", tmp=None, threads=None, progress=False, *,
              dtype=None, record_size=None, key_size=None, max_fan_in=None):
    return _core.sort_file(src, dst, memory, tmp, threads, progress, dtype=dtype,
                           record_size=record_size, key_size=key_size, max_fan_in=max_fan_in)


sort_file.__doc__ = _core.sort_file.__doc__.split("\n\n", 1)[1]

__all__ = [
    "TEMP_MARKER",
    "argsort",
    "convert",
    "describe",
    "generate",
    "parse_size",
    "percentile",
    "sort",
    "sort_file",
]
