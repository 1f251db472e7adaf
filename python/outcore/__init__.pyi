"""Types of the outcore module (the functions are documented in their docstrings)."""

import os
from typing import Any, Dict, Literal, Optional, Sequence, Union

import numpy as np
import numpy.typing as npt

__version__: str
TEMP_MARKER: str

Path = Union[str, bytes, "os.PathLike[str]", "os.PathLike[bytes]"]
Size = Union[int, str]
DTypeLike = Union[str, np.dtype, type]
Method = Literal["linear", "lower", "higher", "nearest", "midpoint"]
Distribution = Literal[
    "uniform", "normal", "sorted", "reverse", "nearly-sorted", "few-unique", "zipf", "equal"
]

def sort(a: np.ndarray, *, threads: Optional[int] = None) -> None:
    """Sorts a C-contiguous, writeable 1-D array in place, in parallel (numpy's order, NaN last)."""

def argsort(a: npt.ArrayLike, *, threads: Optional[int] = None) -> npt.NDArray[np.intp]:
    """The stable sorting permutation of a 1-D array, as np.argsort(a, kind="stable")."""

def sort_file(
    src: Path,
    dst: Path,
    memory: Size = "1GiB",
    tmp: Optional[Path] = None,
    threads: Optional[int] = None,
    progress: bool = False,
    *,
    dtype: Optional[DTypeLike] = None,
    record_size: Optional[int] = None,
    key_size: Optional[int] = None,
    max_fan_in: Optional[int] = None,
) -> Dict[str, Any]:
    """External merge sort of a 1-D .npy (or raw) file within about `memory` bytes (default 1 GiB).

    Returns {"elements", "bytes", "external", "runs", "merge_levels",
    "phases": [{"phase", "seconds"}], "seconds"}.
    """

def describe(
    x: Union[Path, npt.ArrayLike],
    bins: Optional[int] = None,
    percentiles: Optional[Sequence[float]] = None,
    axis: Optional[int] = None,
    *,
    ddof: int = 0,
    dtype: Optional[DTypeLike] = None,
    threads: Optional[int] = None,
) -> Dict[str, Any]:
    """count, nan_count, sum, mean, std, min, max, argmin, argmax (+ histogram, percentiles)
    of a .npy path or an array (read in place)."""

def percentile(
    x: Union[Path, npt.ArrayLike],
    q: npt.ArrayLike,
    method: Method = "linear",
    *,
    dtype: Optional[DTypeLike] = None,
    threads: Optional[int] = None,
) -> Any:
    """Exact percentiles, equal to np.percentile(x, np.asarray(q), method=method)."""

def generate(
    path: Path,
    dtype: DTypeLike,
    dist: Distribution = "uniform",
    count: Optional[int] = None,
    size: Optional[Size] = None,
    seed: int = 0,
    shape: Optional[Sequence[int]] = None,
    *,
    threads: Optional[int] = None,
) -> Dict[str, Any]:
    """Writes a reproducible dataset (.npy if `path` ends in .npy, else raw)."""

def convert(
    src: Path,
    dst: Path,
    dtype: Optional[DTypeLike] = None,
    *,
    src_dtype: Optional[DTypeLike] = None,
    threads: Optional[int] = None,
) -> Dict[str, Any]:
    """Copies a .npy or raw file to a .npy or raw file, cast with numpy's unsafe casting."""

def parse_size(s: Size) -> int:
    """A size such as "4GiB", "512M", "1.5GB" or 1000000, in bytes."""
